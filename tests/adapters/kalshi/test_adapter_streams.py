"""KalshiAdapter streams as domain events, against the in-process simulator over real loopback WebSocket:
order updates, fills, public trades, books, lifecycle and settlements, per-market unsubscribe, connection loss,
malformed frames, and the streamed book after 10,000 deltas compared with REST ``/orderbook``."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from mm.adapters.kalshi.adapter import KalshiAdapter
from mm.adapters.kalshi.book_feed import levels_of
from mm.adapters.kalshi.signer import KalshiSigner
from mm.clock import SimulatedClock
from mm.domain.events import (
    BookState,
    BookUpdated,
    ConnectionState,
    ExchangeEvent,
    FillEvent,
    MarketLifecycle,
    OrderUpdate,
    PublicTrade,
    ResyncRequired,
)
from mm.domain.orders import OrderStatus
from mm.domain.price import Price, Quantity
from mm.domain.sides import OrderSide, Side
from mm.observability.metrics import Metrics
from mm.sim.exchange import NewOrder, SimApiError
from mm.sim.server import Simulator, SimulatorConfig
from mm.sim.types import BookSide as SimBookSide
from mm.sim.types import SelfTradePrevention, TimeInForce
from tests.adapters.kalshi.support import START, active_ticker, make_adapter, request, wait_until


class Recorder:
    """Collects every event an adapter publishes."""

    def __init__(self, adapter: KalshiAdapter) -> None:
        self.events: list[ExchangeEvent] = []
        adapter.on_event(self.record)

    async def record(self, event: ExchangeEvent) -> None:
        self.events.append(event)

    def of(self, kind: type[ExchangeEvent]) -> list[ExchangeEvent]:
        return [e for e in self.events if isinstance(e, kind)]


def engine_levels(sim: Simulator, ticker: str) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """The matching engine's book as (YES bids, NO bids) ascending, like :func:`levels_of`."""
    bids, asks = sim.state.exchange.markets[ticker].engine.levels()
    return sorted(bids), sorted((10_000 - p, n) for p, n in asks)


def crowd_operation(sim: Simulator, rng: random.Random, ticker: str) -> None:
    """One random rest / cancel / cross by the accounts ``c1``/``c2`` straight on the engine (it publishes real
    ``orderbook_delta`` frames to the adapter's socket)."""
    exchange = sim.state.exchange
    engine = exchange.markets[ticker].engine
    user = rng.choice(("c1", "c2"))
    resting = [o for o in engine.resting() if o.user_id in ("c1", "c2")]
    roll = rng.random()
    try:
        if roll < 0.55 or not resting:
            side = rng.choice((SimBookSide.BID, SimBookSide.ASK))
            price = rng.randint(30, 55) * 100 if side is SimBookSide.BID else rng.randint(45, 70) * 100
            exchange.create_order(
                user, NewOrder(ticker, side, price, rng.randint(1, 900), stp=SelfTradePrevention.MAKER)
            )
        elif roll < 0.9:
            order = rng.choice(resting)
            exchange.cancel_order(order.user_id, order.order_id)
        else:
            side = rng.choice((SimBookSide.BID, SimBookSide.ASK))
            price = 6000 if side is SimBookSide.BID else 4000
            exchange.create_order(
                user,
                NewOrder(ticker, side, price, rng.randint(1, 500), time_in_force=TimeInForce.IMMEDIATE_OR_CANCEL),
            )
    except SimApiError:
        pass
    sim.state.publish()


def open_crowd(sim: Simulator) -> None:
    for user in ("c1", "c2"):
        sim.state.exchange.open_account(user, 10_000_000 * 1_000_000)


async def test_orders_fills_trades_and_books_arrive_as_domain_events(
    sim: Simulator, me: KalshiAdapter, bob: KalshiAdapter
) -> None:
    ticker = active_ticker(sim)
    seen = Recorder(me)
    await me.subscribe_market(ticker)
    await wait_until(lambda: any(isinstance(e, BookUpdated) and e.market_id == ticker for e in seen.events))

    mine = await me.place_order(request(ticker, "ev-1", "0.4500", 3))
    await bob.place_order(request(ticker, "ev-2", "0.4500", 1, OrderSide.SELL, post_only=False))

    await wait_until(lambda: bool(seen.of(FillEvent)) and bool(seen.of(PublicTrade)))
    fill = seen.of(FillEvent)[0]
    assert isinstance(fill, FillEvent)
    assert (fill.fill.market_id, fill.fill.client_order_id, fill.fill.order_id) == (
        ticker,
        "ev-1",
        mine.exchange_order_id,
    )
    assert (fill.fill.side, fill.fill.order_side, fill.fill.is_taker) == (Side.YES, OrderSide.BUY, False)
    assert (fill.fill.price, fill.fill.quantity) == (Price.from_dollars("0.4500"), Quantity.contracts(1))
    assert fill.post_position == Quantity.contracts(1)

    trade = seen.of(PublicTrade)[0]
    assert isinstance(trade, PublicTrade)
    # bob sold YES into my bid: the aggressor sold
    assert (trade.market_id, trade.price, trade.quantity, trade.taker_side) == (
        ticker,
        Price.from_dollars("0.4500"),
        Quantity.contracts(1),
        OrderSide.SELL,
    )

    def my_updates() -> list[OrderUpdate]:
        return [e for e in seen.events if isinstance(e, OrderUpdate) and e.order.client_order_id == "ev-1"]

    await wait_until(lambda: any(u.order.status is OrderStatus.PARTIALLY_FILLED for u in my_updates()))
    last = my_updates()[-1].order
    assert (last.filled, last.remaining, last.exchange_order_id) == (
        Quantity.contracts(1),
        Quantity.contracts(2),
        mine.exchange_order_id,
    )
    # bob's order is not ours: no update for it reaches me
    assert all(e.order.client_order_id != "ev-2" for e in seen.events if isinstance(e, OrderUpdate))

    def book_shows_my_rest() -> bool:
        book = me.book(ticker)
        return book is not None and book.best_yes_bid == 4500 and book.best_yes_bid_size == 200

    await wait_until(book_shows_my_rest)
    updates = [e for e in seen.events if isinstance(e, BookUpdated) and e.market_id == ticker]
    assert updates and all(u.book is me.book(ticker) for u in updates)


@pytest.fixture
async def clocked_sim(tmp_path: Path) -> AsyncIterator[tuple[Simulator, SimulatedClock]]:
    base = SimulatedClock(START)
    config = SimulatorConfig(state_dir=tmp_path / "sim", start_us=START, strikes=2, crowd=False, seed=5)
    async with Simulator(config, base_clock=base) as running:
        yield running, base


async def test_lifecycle_events_and_settlements(clocked_sim: tuple[Simulator, SimulatedClock]) -> None:
    sim, clock = clocked_sim
    me = make_adapter(sim, KalshiSigner.from_file(sim.api_key.key_id, sim.api_key.key_file))
    await me.connect()
    try:
        ticker = active_ticker(sim)
        seen = Recorder(me)
        sim.state.exchange.open_account("seller", 1_000_000 * 1_000_000)
        sim.state.exchange.create_order("seller", NewOrder(ticker, SimBookSide.ASK, 4000, 500))
        sim.state.publish()
        bought = await me.place_order(request(ticker, "lc-1", "0.4000", 5, post_only=False))
        assert bought.status is OrderStatus.FILLED

        clock.advance(int(timedelta(hours=2).total_seconds()))  # past the close and the settlement timer

        def settled() -> bool:
            return any(
                isinstance(e, MarketLifecycle) and e.market_id == ticker and e.kind == "settled" for e in seen.events
            )

        await wait_until(settled)
        kinds = [e.kind for e in seen.events if isinstance(e, MarketLifecycle) and e.market_id == ticker]
        assert kinds.index("determined") < kinds.index("settled")
        determined = next(
            e
            for e in seen.events
            if isinstance(e, MarketLifecycle) and e.market_id == ticker and e.kind == "determined"
        )
        assert isinstance(determined, MarketLifecycle)
        live = sim.state.exchange.markets[ticker]
        assert determined.result == live.result
        assert determined.settlement_value_units == live.settlement_value

        settlements = await me.get_settlements(market_id=ticker)
        assert len(settlements) == 1
        row = settlements[0]
        assert (row.market_id, row.result, row.yes_count, row.no_count) == (
            ticker,
            live.result,
            Quantity.contracts(5),
            Quantity.contracts(0),
        )
        paid = 5 if live.result == "yes" else 0
        assert row.revenue == paid and row.value_per_yes == (1 if live.result == "yes" else 0)
        assert row.yes_total_cost == Price.from_dollars("0.4000").to_decimal() * 5
        later = await me.get_settlements(since_us=row.settled_us + 1_000_000)
        assert later == []
    finally:
        await me.disconnect()


async def test_unsubscribe_stops_the_market_streams(sim: Simulator, me: KalshiAdapter) -> None:
    tickers = sorted(t for t, m in sim.state.exchange.markets.items() if m.status == "active")[:2]
    assert len(tickers) == 2
    keep, drop = tickers
    open_crowd(sim)
    seen = Recorder(me)
    for t in tickers:
        await me.subscribe_market(t)
    await wait_until(lambda: not me.is_stale(keep) and not me.is_stale(drop))
    await me.unsubscribe_market(drop)
    assert me.book(drop) is None and me.subscribed_markets == [keep]
    assert me.ws is not None and me.ws.subscribed_tickers("orderbook_delta") == [keep]

    rng = random.Random(7)
    marker = len(seen.events)
    for _ in range(40):
        crowd_operation(sim, rng, drop)
        crowd_operation(sim, rng, keep)
    await wait_until(lambda: levels_of(me.book(keep) or _empty(me, keep)) == engine_levels(sim, keep))
    later = seen.events[marker:]
    assert any(isinstance(e, BookUpdated) and e.market_id == keep for e in later)
    assert [e for e in later if isinstance(e, BookUpdated | PublicTrade) and e.market_id == drop] == []
    assert me.book(drop) is None


def _empty(me: KalshiAdapter, ticker: str) -> object:
    raise AssertionError(f"no book for {ticker}")


async def test_connection_loss_is_reported_and_recovered_within_5_s(sim: Simulator) -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    me = make_adapter(sim, KalshiSigner.from_file(sim.api_key.key_id, sim.api_key.key_file), metrics=metrics)
    seen = Recorder(me)
    await me.connect()
    try:
        ticker = active_ticker(sim)
        await me.subscribe_market(ticker)
        await wait_until(lambda: not me.is_stale(ticker))

        def gauge() -> float | None:
            return registry.get_sample_value("mm_websocket_connected", {"exchange": "kalshi"})

        assert gauge() == 1.0
        marker = len(seen.events)
        assert sim.hub.drop_all_connections() >= 1

        await wait_until(lambda: any(isinstance(e, ConnectionState) and not e.connected for e in seen.events[marker:]))
        assert any(isinstance(e, BookState) and e.market_id == ticker and e.stale for e in seen.events[marker:])
        assert any(isinstance(e, ResyncRequired) and e.scope == "orders" for e in seen.events[marker:])

        def recovered() -> bool:
            after = seen.events[marker:]
            up = any(isinstance(e, ConnectionState) and e.connected for e in after)
            fresh = any(isinstance(e, BookState) and e.market_id == ticker and not e.stale for e in after)
            return up and fresh and not me.is_stale(ticker)

        await wait_until(recovered, timeout=5.0)
        assert gauge() == 1.0
        assert levels_of(me.book(ticker) or _empty(me, ticker)) == engine_levels(sim, ticker)
    finally:
        await me.disconnect()
    assert registry.get_sample_value("mm_websocket_connected", {"exchange": "kalshi"}) == 0.0


async def test_disconnect_then_connect_again_restores_everything(sim: Simulator, me: KalshiAdapter) -> None:
    ticker = active_ticker(sim)
    await me.subscribe_market(ticker)
    await wait_until(lambda: not me.is_stale(ticker))
    await me.disconnect()
    assert me.is_stale(ticker)
    await me.connect()
    await wait_until(lambda: not me.is_stale(ticker))
    placed = await me.place_order(request(ticker, "again-1", "0.3000", 1))
    assert placed.status is OrderStatus.OPEN


async def test_malformed_frames_are_counted_and_resynced_without_killing_the_stream(
    sim: Simulator, me: KalshiAdapter
) -> None:
    ticker = active_ticker(sim)
    open_crowd(sim)
    seen = Recorder(me)
    await me.subscribe_market(ticker)
    await wait_until(lambda: not me.is_stale(ticker))
    ws = me.ws
    assert ws is not None
    reconnects = ws.reconnects
    sim.state.faults.ws_malformed_message_rate = 0.2
    rng = random.Random(11)
    for _ in range(60):
        crowd_operation(sim, rng, ticker)
    await wait_until(lambda: me.malformed.get("unknown", 0) > 0)
    sim.state.faults.ws_malformed_message_rate = 0.0
    assert sim.state.faults.counters.malformed_messages >= me.malformed["unknown"]
    crowd_operation(sim, rng, ticker)  # one clean message after the storm: the book must catch up

    def healed() -> bool:
        book = me.book(ticker)
        return book is not None and not me.is_stale(ticker) and levels_of(book) == engine_levels(sim, ticker)

    await wait_until(healed)
    assert any(isinstance(e, BookState) and e.stale and e.market_id == ticker for e in seen.events)
    assert any(isinstance(e, ResyncRequired) for e in seen.events)
    assert ws.reconnects == reconnects and ws.connected  # the same connection survived


async def test_streamed_book_equals_rest_orderbook_after_10000_deltas(sim: Simulator, me: KalshiAdapter) -> None:
    ticker = active_ticker(sim)
    open_crowd(sim)
    await me.subscribe_market(ticker)
    await wait_until(lambda: not me.is_stale(ticker))
    feed = me.feed
    assert feed is not None
    start = feed.deltas
    rng = random.Random(20261125)
    while feed.deltas - start < 10_000:
        for _ in range(200):
            crowd_operation(sim, rng, ticker)
        await wait_until(lambda: levels_of(me.book(ticker) or _empty(me, ticker)) == engine_levels(sim, ticker))
    assert feed.deltas - start >= 10_000
    assert feed.gaps == 0 and feed.malformed == 0 and feed.integrity_errors == 0
    from_rest = await me.get_orderbook(ticker)
    streamed = me.book(ticker)
    assert streamed is not None
    assert levels_of(streamed) == levels_of(from_rest) == engine_levels(sim, ticker)
    assert levels_of(from_rest) != ([], [])


async def test_decrease_keeps_the_order_and_reduces_it(sim: Simulator, me: KalshiAdapter) -> None:
    ticker = active_ticker(sim)
    placed = await me.place_order(request(ticker, "dec-1", "0.3500", 10))
    assert placed.exchange_order_id is not None
    await me.decrease_order(placed.exchange_order_id, reduce_to=Quantity.contracts(4))
    after = await me.get_order_by_client_id("dec-1", ticker)
    assert after is not None and after.exchange_order_id == placed.exchange_order_id
    assert after.remaining == Quantity.contracts(4) and after.status is OrderStatus.OPEN
    assert sim.state.exchange.orders[placed.exchange_order_id].remaining_count == 400
