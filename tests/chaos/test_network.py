"""NFR-603 network scenarios against the in-process simulator: WebSocket disconnect, high latency, packet loss,
exchange timeouts, lost responses, clock drift (NFR-201, NFR-203, NFR-204)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mm.adapters.errors import ExchangeError
from mm.domain.events import BookState
from mm.sim.types import BookSide as SimBookSide
from mm.sim.types import OrderStatus as SimOrderStatus
from tests.chaos.conftest import SEED
from tests.chaos.inproc import (
    EXCHANGE,
    ChaosNode,
    FillPump,
    OrderMonitor,
    assert_no_duplicates,
    assert_nothing_lost,
    chaos_node,
    node_yaml,
    one_market,
    settled_data,
    start_traffic,
)
from tests.chaos.results import Measurement
from tests.controller.harness import wait_until

pytestmark = pytest.mark.chaos

Measure = Callable[[str], Measurement]


@dataclass
class Spread:
    bid: int
    ask: int


def our_spread(node: ChaosNode) -> Spread | None:
    sides = {o.side: o.price for o in node.h.our_orders(node.ticker)}  # type: ignore[attr-defined]
    if set(sides) != {SimBookSide.BID, SimBookSide.ASK}:
        return None
    return Spread(sides[SimBookSide.BID], sides[SimBookSide.ASK])


# ---------------------------------------------------------------------------------------------- disconnect


@pytest.mark.chaos_quick
async def test_websocket_disconnect_reconnects_recovers_the_missed_fill_and_quotes_again(
    tmp_path: Path, measure: Measure
) -> None:
    record = measure("websocket_disconnect")
    async with chaos_node(tmp_path, one_market()) as node:
        node.h.seed_book(node.ticker)
        await node.wait_quoting()
        pump, monitor = start_traffic(node, SEED)
        await wait_until(lambda: node.account.ledger.net_units(node.ticker) != 0, what="a first fill")
        ws = node.ws
        reconnects = ws.reconnects

        started = time.monotonic()
        dropped = await node.admin.drop_connections()
        assert dropped >= 1
        # the socket is down: this fill's message is lost on the wire, the node must find it over REST
        assert pump.take_one(SimBookSide.BID)
        await wait_until(lambda: ws.reconnects > reconnects and ws.connected, timeout=10, what="a reconnection")
        reconnected = time.monotonic() - started
        await wait_until(lambda: our_spread(node) is not None and node.quoting(), timeout=15, what="quoting again")
        record.recovered(time.monotonic() - started)
        record.note(reconnect_s=reconnected, fill_pump_takes=pump.takes)
        seen = node.h.runtime.node.fills_seen
        await wait_until(lambda: node.h.runtime.node.fills_seen >= seen + 3, what="fills flowing after the reconnect")
        check = await settled_data(node)
        assert_no_duplicates(node, monitor.seen)
        assert_nothing_lost(record, check)


# ---------------------------------------------------------------------------------------------- exchange timeout

ADAPTER_TIMEOUT_S = 5.0
"""The Kalshi REST client's request timeout (``KalshiRestClient(timeout_s=5.0)``, what ``mmctl run`` builds)."""


@pytest.mark.chaos_quick
async def test_exchange_timeouts_are_retried_without_a_duplicate_order(tmp_path: Path, measure: Measure) -> None:
    record = measure("exchange_timeout")
    async with chaos_node(tmp_path, one_market()) as node:
        # the crowd quotes 0.49/0.51, inside our 0.48/0.52: our orders moving does not move the mid, so replacing
        # one is a single create (no amend of the other side first)
        node.h.seed_book(node.ticker, bid=4900, ask=5100)
        await node.wait_quoting()
        monitor = OrderMonitor(node)
        node.background(monitor.run(), "order-monitor")
        tracker = node.account.tracker

        def create_timed_out() -> bool:
            """A create of ours timed out: the node holds it as unknown until a look-up settles it."""
            return any(p.request.market_id == node.ticker for p in tracker.unknown.values())

        faults = await node.admin.set_faults(rest_latency_s=ADAPTER_TIMEOUT_S + 1.0)
        assert faults["rest_latency_s"] > ADAPTER_TIMEOUT_S
        # someone cancels our bid at the exchange: the node must replace it, and that create will time out
        bid = next(
            o
            for o in node.h.exchange.orders.values()
            if o.user_id == node.user and o.side is SimBookSide.BID and o.status is SimOrderStatus.RESTING
        )
        node.h.exchange.cancel_order(bid.user_id, bid.order_id)
        node.h.sim.state.publish()
        await wait_until(create_timed_out, timeout=20, what="a create to time out")
        in_doubt = [p.request.client_order_id for p in tracker.unknown.values()]
        removed = time.monotonic()
        await node.admin.clear_faults()
        await wait_until(
            lambda: node.quoting() and tracker.pending_count == 0, timeout=30, what="quoting with no create in doubt"
        )
        record.recovered(time.monotonic() - removed)
        counters = (await node.admin.faults())["counters"]
        record.note(delayed_requests=counters["delayed_requests"], creates_in_doubt=len(in_doubt))
        ours = [o.client_order_id for o in node.h.exchange.orders.values() if o.user_id == node.user]
        assert all(ours.count(c) <= 1 for c in in_doubt), "a create in doubt was placed twice"
        node.clear_crowd(node.ticker)  # our quotes become the best: the pump's takers reach them
        node.h.seed_book(node.ticker)
        pump = FillPump(node, SEED)
        node.background(pump.run(), "fill-pump")
        seen = node.h.runtime.node.fills_seen
        await wait_until(lambda: node.h.runtime.node.fills_seen >= seen + 3, what="fills flowing after recovery")
        check = await settled_data(node)
        assert_no_duplicates(node, monitor.seen)
        assert_nothing_lost(record, check)


# ---------------------------------------------------------------------------------------------- lost responses


@pytest.mark.chaos_quick
async def test_lost_responses_never_duplicate_an_order_and_quoting_resumes(tmp_path: Path, measure: Measure) -> None:
    """Order writes are carried out but answered 504 (the answer lost on its way back) while our orders fill and
    one, then both, are replaced: the creates in doubt are settled by the stream's ``user_order`` or a look-up (the
    Market pulls its quotes meanwhile, market.py); cancels' retries find the order gone; amends in doubt are
    corrected by the stream. Never two orders for one client order id, never two on one level, nothing lost."""
    record = measure("lost_responses")
    async with chaos_node(tmp_path, one_market()) as node:
        node.h.seed_book(node.ticker)
        await node.wait_quoting()
        _pump, monitor = start_traffic(node, SEED)
        await wait_until(lambda: node.account.ledger.net_units(node.ticker) != 0, what="a first fill")
        counters = node.h.sim.state.faults.counters
        tracker = node.account.tracker
        rest = node.venue.rest
        creates: list[str] = []  # how each create request the node sent ended (observed, passed through)
        batch_create = rest.batch_create

        async def observed(orders: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
            try:
                answers = await batch_create(orders)
            except ExchangeError as exc:
                creates.append(f"{len(orders)}: {type(exc).__name__}")
                raise
            creates.append(f"{len(orders)}: answered")
            return answers

        rest.batch_create = observed  # type: ignore[method-assign]

        def cancel_ours_at_the_exchange(*sides: SimBookSide) -> None:
            for o in node.h.our_orders(node.ticker):  # type: ignore[attr-defined]
                if o.side in sides:
                    node.h.exchange.cancel_order(o.user_id, o.order_id)
            node.h.sim.state.publish()

        async def lose_the_answer_of(what: str, *sides: SimBookSide) -> float:
            """Lose every write's answer until a create of ``what`` is answered 504, then heal: seconds from the
            heal to quoting with nothing in doubt."""
            await node.admin.set_faults(rest_lost_response_rate=1.0)
            cancel_ours_at_the_exchange(*sides)  # "someone" cancels: the node must re-create
            await wait_until(lambda: what in creates, timeout=15, what=f"a create ({what}) answered 504")
            creates.clear()
            healed = time.monotonic()
            await node.admin.clear_faults()
            await wait_until(
                lambda: node.quoting() and tracker.pending_count == 0, timeout=40, what="quoting, no create in doubt"
            )
            return time.monotonic() - healed

        one_s = await lose_the_answer_of("1: ExchangeUnavailableError", SimBookSide.BID)
        record.recovered(await lose_the_answer_of("2: ExchangeUnavailableError", SimBookSide.BID, SimBookSide.ASK))
        record.note(one_create_s=one_s, lost_responses=counters.lost_responses)
        ours = [o.client_order_id for o in node.h.exchange.orders.values() if o.user_id == node.user]
        assert ours and all(ours.count(c) == 1 for c in ours), "a client order id was placed twice"
        seen = node.h.runtime.node.fills_seen
        await wait_until(lambda: node.h.runtime.node.fills_seen >= seen + 3, what="fills flowing after recovery")
        check = await settled_data(node)
        assert_no_duplicates(node, monitor.seen)
        assert_nothing_lost(record, check)


# ---------------------------------------------------------------------------------------------- high latency


def latency_node(action: str) -> str:
    return node_yaml(
        "  network:\n"
        f"    latency: {{warn_threshold_ms: 100, critical_threshold_ms: 500, action_on_critical: {action}}}\n"
        "    health_check: {ping_interval_seconds: 1, ping_timeout_seconds: 0.9, max_missed_pings: 3}\n"
    )


@pytest.mark.parametrize("action", ["widen_spread", "pause"])
async def test_high_latency_widens_or_pauses_then_returns_to_normal(
    tmp_path: Path, measure: Measure, action: str
) -> None:
    record = measure("high_latency_widen" if action == "widen_spread" else "high_latency_pause")
    async with chaos_node(tmp_path, one_market(latency_node(action))) as node:
        node.h.seed_book(node.ticker)
        await node.wait_quoting()
        normal = our_spread(node)
        assert normal == Spread(4800, 5200)
        pump, monitor = start_traffic(node, SEED, interval_s=0.5)
        holds = node.h.runtime.node.holds

        injected = time.monotonic()
        await node.admin.set_faults(rest_latency_s=0.5)
        if action == "widen_spread":
            # ×2 around the mid: 0.50 ± 0.04
            await wait_until(lambda: our_spread(node) == Spread(4600, 5400), timeout=30, what="quotes widened ×2")
            assert holds.spread_multiplier() == 2.0
        else:
            await wait_until(
                lambda: holds.get(f"latency/{EXCHANGE}") is not None and not node.resting(),
                timeout=30,
                what="the latency hold and every order cancelled",
            )
            assert node.h.market_status("m1").get("phase") == "Paused"
        detected = time.monotonic() - injected
        assert any(e[2] == "LatencyCritical" for e in node.h.runtime.node.events)

        removed = time.monotonic()
        await node.admin.clear_faults()
        await wait_until(lambda: our_spread(node) == normal and node.quoting(), timeout=60, what="normal quotes")
        record.recovered(time.monotonic() - removed)
        record.note(detected_s=detected, fill_pump_takes=pump.takes)
        assert holds.spread_multiplier() == 1.0 and holds.get(f"latency/{EXCHANGE}") is None
        check = await settled_data(node)
        assert_no_duplicates(node, monitor.seen)
        assert_nothing_lost(record, check)


# ---------------------------------------------------------------------------------------------- packet loss


@dataclass
class Sent:
    ticker: str
    stale: bool


class SendSpy:
    """Records, for every create and amend the node sends, whether the adapter knew that market's book was stale
    at that moment (it delegates to the real adapter: nothing is changed)."""

    def __init__(self, node: ChaosNode) -> None:
        self.sent: list[Sent] = []
        venue = node.venue
        place, amend = venue.place_orders, venue.amend_order
        exchange = node.h.exchange

        async def place_orders(orders: list[Any]) -> list[Any]:
            self.sent += [Sent(o.market_id, venue.is_stale(o.market_id)) for o in orders]
            return await place(orders)

        async def amend_order(order_id: str, **terms: Any) -> Any:
            ticker = exchange.orders[order_id].ticker
            self.sent.append(Sent(ticker, venue.is_stale(ticker)))
            return await amend(order_id, **terms)

        venue.place_orders = place_orders  # type: ignore[method-assign,assignment]
        venue.amend_order = amend_order  # type: ignore[method-assign]

    def on_stale_books(self) -> list[Sent]:
        return [s for s in self.sent if s.stale]


async def test_packet_loss_is_detected_and_books_resynced_without_quoting_on_a_bad_book(
    tmp_path: Path, measure: Measure
) -> None:
    record = measure("packet_loss")
    async with chaos_node(tmp_path, one_market(), crowd=True, speed=5.0) as node:
        await node.wait_quoting(timeout=30)
        spy = SendSpy(node)
        monitor = OrderMonitor(node)
        node.background(monitor.run(), "order-monitor")
        feed = node.feed
        gaps, resyncs = feed.gaps, feed.resyncs
        transitions: list[tuple[str, bool]] = []

        async def on_event(event: object) -> None:
            if isinstance(event, BookState) and event.market_id == node.ticker:
                transitions.append((event.reason, event.stale))

        node.venue.on_event(on_event)
        await node.admin.set_faults(ws_drop_message_rate=0.1)
        # gaps detected, and books repaired from snapshots while the loss goes on
        await wait_until(
            lambda: feed.gaps >= gaps + 5 and sum(1 for _, stale in transitions if not stale) >= 3,
            timeout=60,
            what="several gaps detected and books resynced",
        )
        removed = time.monotonic()
        dropped = (await node.admin.clear_faults())["counters"]["dropped_messages"]
        await wait_until(
            lambda: not node.venue.is_stale(node.ticker) and node.quoting(), timeout=30, what="a fresh book, quoted"
        )
        record.recovered(time.monotonic() - removed)
        record.note(
            dropped_messages=dropped,
            gaps_detected=feed.gaps - gaps,
            resyncs=feed.resyncs - resyncs,
            orders_sent=len(spy.sent),
            stale_transitions=sum(1 for _, stale in transitions if stale),
        )
        assert feed.resyncs > resyncs
        assert spy.sent, "the node sent nothing: the check below would be vacuous"
        assert spy.on_stale_books() == [], f"orders sent while the book was known to be stale: {spy.on_stale_books()}"
        check = await settled_data(node)
        assert_no_duplicates(node, monitor.seen)
        assert_nothing_lost(record, check)


# ---------------------------------------------------------------------------------------------- clock drift

DRIFT_NODE = node_yaml("  time_sync: {max_drift_ms: 100, check_interval_seconds: 1, action_on_drift: warn}\n")


async def test_clock_drift_is_detected_and_alerted(tmp_path: Path, measure: Measure) -> None:
    record = measure("clock_drift")
    async with chaos_node(tmp_path, one_market(DRIFT_NODE)) as node:
        node.h.seed_book(node.ticker)
        await node.wait_quoting()
        pump, _ = start_traffic(node, SEED)
        events = node.h.runtime.node.events
        assert not any(e[2] == "ClockDrift" for e in events), "drift reported before any was injected"
        injected = time.monotonic()
        await node.admin.set_faults(clock_skew_ms=5000)
        await wait_until(lambda: any(e[2] == "ClockDrift" for e in events), timeout=30, what="a ClockDrift event")
        record.recovered(time.monotonic() - injected)
        drift = next(e for e in events if e[2] == "ClockDrift")
        record.note(event=drift[3], fill_pump_takes=pump.takes)
        await node.admin.clear_faults()
        await wait_until(
            lambda: any(e[2] == "ClockDriftCleared" for e in events), timeout=30, what="the drift to clear"
        )
        check = await settled_data(node)
        assert_nothing_lost(record, check)
