"""The running node against the simulator (issue 8's tests): quoting, inventory skew, hot reload without
duplicates, materiality, settlement cutoff, kill switch across a restart, drift repair, market isolation."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest

from mm.domain.price import Quantity
from mm.reconcilers.market import MarketReconciler
from mm.sim.exchange import NewOrder
from mm.sim.types import BookSide as SimBookSide
from mm.state.store import Store
from tests.controller.harness import (
    EXCHANGE_YAML,
    RISK_YAML,
    Harness,
    admitted,
    make_runtime,
    market_yaml,
    running_node,
    simulator,
    strategy_yaml,
    wait_until,
)

US = 1_000_000


def one_market(tickers: list[str]) -> list[str]:
    return [EXCHANGE_YAML, strategy_yaml(), RISK_YAML, market_yaml("m1", tickers[0])]


def prices(h: Harness, ticker: str) -> dict[SimBookSide, int]:
    return {o.side: o.price for o in h.our_orders(ticker)}  # type: ignore[attr-defined]


def assert_one_order_per_side(h: Harness, ticker: str) -> None:
    sides = Counter(o.side for o in h.our_orders(ticker))  # type: ignore[attr-defined]
    assert all(n == 1 for n in sides.values()), f"several of our orders rest on one side: {sides}"


async def test_apply_then_ready_and_quoting_both_sides_within_2_s(tmp_path: Path) -> None:
    async with running_node(tmp_path, one_market) as h:
        ticker = h.tickers()[0]
        h.seed_book(ticker)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await wait_until(lambda: h.quoting("m1", ticker), timeout=2.0, what="quotes on both sides")
        elapsed = loop.time() - started
        assert elapsed < 2.0
        assert h.runtime.is_ready()
        market = h.runtime.resources.get("Market", "m1")
        assert market is not None and market.is_true("Ready") and market.is_true("Quoting")
        assert market.observed_generation == market.generation
        quoted = prices(h, ticker)
        # mid 0.50, spread 0.04: bid 0.48, ask 0.52 (two orders: the NO quotes merged into them)
        assert quoted == {SimBookSide.BID: 4800, SimBookSide.ASK: 5200}
        assert_one_order_per_side(h, ticker)


async def test_inventory_moves_quotes_the_right_way(tmp_path: Path) -> None:
    def skewed(tickers: list[str]) -> list[str]:
        return [EXCHANGE_YAML, strategy_yaml(skew="0.2"), RISK_YAML, market_yaml("m1", tickers[0])]

    async with running_node(tmp_path, skewed) as h:
        ticker = h.tickers()[0]
        h.seed_book(ticker)
        await wait_until(lambda: h.quoting("m1", ticker), what="quoting")
        before = prices(h, ticker)
        h.take(ticker, SimBookSide.ASK, 4800, 500)  # a crowd seller hits our 0.48 bid: we are long 5 YES
        account = h.runtime.node.account("sim", "live")
        await wait_until(lambda: account.ledger.net_units(ticker) == 500, what="the fill in the ledger")

        def moved_down() -> bool:
            now = prices(h, ticker)
            return (
                len(now) == 2
                and now[SimBookSide.BID] < before[SimBookSide.BID]
                and now[SimBookSide.ASK] < before[SimBookSide.ASK]
            )

        await wait_until(moved_down, what="both quotes to move down after buying")
        assert_one_order_per_side(h, ticker)


async def test_a_spec_change_moves_orders_within_a_cycle_without_duplicates(tmp_path: Path) -> None:
    async with running_node(tmp_path, one_market) as h:
        ticker = h.tickers()[0]
        h.seed_book(ticker)
        await wait_until(lambda: h.quoting("m1", ticker), what="quoting")
        assert prices(h, ticker) == {SimBookSide.BID: 4800, SimBookSide.ASK: 5200}
        changed = h.runtime.apply(admitted(strategy_yaml(spread="0.08")))
        assert changed == ["Strategy/s1"]
        await wait_until(
            lambda: prices(h, ticker) == {SimBookSide.BID: 4600, SimBookSide.ASK: 5400}, what="the wider quotes"
        )
        assert_one_order_per_side(h, ticker)
        ids = [o.client_order_id for o in h.exchange.orders.values() if o.client_order_id.startswith("mm:")]
        assert len(ids) == len(set(ids)), "a client order id was used twice"
        assert any(e[2] == "Reloaded" for e in h.runtime.node.events)


async def test_materiality_avoids_churn_on_a_quiet_book(tmp_path: Path) -> None:
    async with running_node(tmp_path, one_market) as h:
        ticker = h.tickers()[0]
        h.seed_book(ticker)
        await wait_until(lambda: h.quoting("m1", ticker), what="quoting")
        sent = h.runtime.node.orders_sent
        reconciles = h.runtime.manager.reconciles
        # a quiet minute of market time, the node re-planning every 10 s of it
        for step in range(1, 7):
            h.base.advance(10)
            await wait_until(lambda s=step: h.runtime.manager.reconciles >= reconciles + s, what="a cycle")
        assert h.runtime.manager.reconciles >= reconciles + 6  # it kept reconciling...
        assert h.runtime.node.orders_sent == sent  # ...and sent nothing
        assert len(h.our_orders(ticker)) == 2


async def test_the_settlement_cutoff_cancels_everything(tmp_path: Path) -> None:
    async with running_node(tmp_path, one_market) as h:
        ticker = h.tickers()[0]
        h.seed_book(ticker)
        await wait_until(lambda: h.quoting("m1", ticker), what="quoting")
        close = h.exchange.markets[ticker].close_us
        h.base.advance_us(close - 2 * 60 * US - h.sim.clock.now_us())  # 2 minutes before the close
        await wait_until(lambda: not h.our_orders(ticker), what="every order cancelled at the cutoff")
        await wait_until(lambda: h.market_status("m1").get("phase") == "Settling", what="phase Settling")


async def test_the_kill_switch_cancels_all_orders_and_stays_halted_across_a_restart(tmp_path: Path) -> None:
    def two_markets(tickers: list[str]) -> list[str]:
        return [
            EXCHANGE_YAML,
            strategy_yaml(),
            RISK_YAML,
            market_yaml("m1", tickers[0]),
            market_yaml("m2", tickers[1]),
        ]

    state_dir = tmp_path / "node"
    async with running_node(tmp_path, two_markets, state_dir=state_dir) as h:
        first, second = h.tickers()[:2]
        h.seed_book(first)
        h.seed_book(second)
        await wait_until(lambda: h.quoting("m1", first) and h.quoting("m2", second), what="both quoting")
        cancelled = await h.runtime.kill("test: manual stop")
        assert cancelled == 4
        assert h.our_orders() == []  # the exchange confirms
        await wait_until(lambda: h.market_status("m1").get("phase") == "Halted", what="Halted")
        sent = h.runtime.node.orders_sent
        reconciles = h.runtime.manager.reconciles
        await wait_until(lambda: h.runtime.manager.reconciles >= reconciles + 4, what="more cycles while halted")
        assert h.runtime.node.orders_sent == sent and h.our_orders() == []
        sim = h.sim
        await h.runtime.stop("pause")

        restarted = make_runtime(sim, state_dir)
        await restarted.start(admitted(*two_markets(h.tickers())))
        try:
            assert restarted.node.node_switch.tripped
            await wait_until(
                lambda: all(
                    restarted.resources.require("Market", m).status.get("phase") == "Halted" for m in ("m1", "m2")
                ),
                what="both markets planned (halted) after the restart",
            )
            assert h.our_orders() == [] and restarted.node.orders_sent == 0
            assert not restarted.is_ready()
            restarted.resume(confirm=True, operator="tester")
            await wait_until(lambda: len(h.our_orders()) == 4, what="quoting again after the reset")
        finally:
            await restarted.stop("drain")


async def test_drift_is_repaired_orphans_recreated_and_unwanted_orders_cancelled(tmp_path: Path) -> None:
    async with running_node(tmp_path, one_market) as h:
        ticker = h.tickers()[0]
        h.seed_book(ticker)
        await wait_until(lambda: h.quoting("m1", ticker), what="quoting")
        bid = next(o for o in h.our_orders(ticker) if o.side is SimBookSide.BID)  # type: ignore[attr-defined]
        h.exchange.cancel_order(bid.user_id, bid.order_id)  # someone cancelled it behind our back
        h.sim.state.publish()
        await wait_until(
            lambda: any(o.side is SimBookSide.BID and o.order_id != bid.order_id for o in h.our_orders(ticker)),
            what="the missing bid recreated",
        )
        assert_one_order_per_side(h, ticker)


async def test_a_market_whose_reconcile_raises_does_not_stop_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def two_markets(tickers: list[str]) -> list[str]:
        return [
            EXCHANGE_YAML,
            strategy_yaml(),
            RISK_YAML,
            market_yaml("good", tickers[0]),
            market_yaml("bad", tickers[1]),
        ]

    original = MarketReconciler._plan

    def exploding(self: MarketReconciler, name: str, *args: object) -> object:
        if name == "bad":
            raise RuntimeError("a bug in one market")
        return original(self, name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(MarketReconciler, "_plan", exploding)
    async with running_node(tmp_path, two_markets) as h:
        good, bad = h.tickers()[:2]
        h.seed_book(good)
        h.seed_book(bad)
        await wait_until(lambda: h.quoting("good", good), what="the good market quoting")
        await wait_until(lambda: h.runtime.manager.failures.get("Market/bad", 0) >= 2, what="the bad one failing")
        assert h.our_orders(bad) == []
        sent = h.runtime.node.orders_sent
        h.take(good, SimBookSide.ASK, 4800, 500)  # the good market keeps trading and re-quoting
        await wait_until(lambda: h.runtime.node.orders_sent > sent, what="the good market re-quoting")
        assert "RuntimeError" in h.runtime.manager.last_error["Market/bad"]


@pytest.mark.parametrize(("policy", "left"), [("cancel_orders", 0), ("orphan", 2)])
async def test_deleting_a_market_carries_out_its_deletion_policy(tmp_path: Path, policy: str, left: int) -> None:
    def docs(tickers: list[str]) -> list[str]:
        extra = f"  deletion_policy: {policy}\n"
        return [EXCHANGE_YAML, strategy_yaml(), RISK_YAML, market_yaml("m1", tickers[0], extra=extra)]

    async with running_node(tmp_path, docs) as h:
        ticker = h.tickers()[0]
        h.seed_book(ticker)
        await wait_until(lambda: h.quoting("m1", ticker), what="quoting")
        assert h.runtime.resources.delete("Market", "m1")
        await wait_until(lambda: any(e[2] == "Deleted" for e in h.runtime.node.events), what="the deletion")
        assert len(h.our_orders(ticker)) == left
        assert "m1" not in h.runtime.node.market_state


async def test_aggregate_limits_cap_what_a_market_may_add(tmp_path: Path) -> None:
    node = """\
apiVersion: mm/v1alpha1
kind: TradingNode
metadata: {name: n1}
spec:
  risk: {aggregate: {max_total_contracts: 3}}
"""

    def docs(tickers: list[str]) -> list[str]:
        return [EXCHANGE_YAML, strategy_yaml(size=5), RISK_YAML, market_yaml("m1", tickers[0]), node]

    async with running_node(tmp_path, docs) as h:
        ticker = h.tickers()[0]
        h.seed_book(ticker)
        await wait_until(lambda: h.quoting("m1", ticker), what="quoting")
        sizes = {o.side: o.remaining_count for o in h.our_orders(ticker)}  # type: ignore[attr-defined]
        assert sizes == {SimBookSide.BID: 300, SimBookSide.ASK: 300}  # 5 wanted, 3 contracts of room node-wide


async def test_metrics_follow_real_events(tmp_path: Path) -> None:
    async with running_node(tmp_path, one_market) as h:
        ticker = h.tickers()[0]
        h.seed_book(ticker)
        await wait_until(lambda: h.quoting("m1", ticker), what="quoting")
        h.take(ticker, SimBookSide.ASK, 4800, 200)
        await wait_until(lambda: h.runtime.node.fills_seen == 1, what="the fill")
        registry = h.runtime.metrics.registry

        def value(name: str, **labels: str) -> float | None:
            return registry.get_sample_value(name, labels)

        await wait_until(lambda: value("mm_position_yes", market=ticker) == 2.0, what="the position gauge")
        assert value("mm_fills_total", market=ticker, side="yes") == 1.0
        assert (value("mm_orders_total", market=ticker, side="buy", status="accepted") or 0) >= 1
        assert (value("mm_quote_generation_seconds_count", market=ticker) or 0) >= 1
        assert (value("mm_order_latency_seconds_count", market=ticker) or 0) >= 1
        assert value("mm_inventory", market=ticker) == 2.0
        assert value("mm_websocket_connected", exchange="sim") == 1.0
        assert (value("mm_book_update_seconds_count", market=ticker) or 0) >= 1


async def test_what_the_node_did_is_in_the_database_after_it_stops(tmp_path: Path) -> None:
    async with running_node(tmp_path, one_market) as h:
        ticker = h.tickers()[0]
        h.seed_book(ticker)
        await wait_until(lambda: h.quoting("m1", ticker), what="quoting")
        h.take(ticker, SimBookSide.ASK, 4800, 200)
        await wait_until(lambda: h.runtime.node.fills_seen == 1, what="the fill")
        assert h.runtime.sample_markets() == 1
        database = h.state_dir / "mmctl.db"
        await h.runtime.stop("drain")
    store = await Store.open(database)
    try:
        assert await store.count("fills") == 1
        assert await store.count("orders") == 2  # our two quotes (one row per order: its latest state)
        assert await store.count("order_events") >= 3  # every state change: placed x2, the partial fill
        assert await store.count("revisions") == 4  # one per applied resource
        assert await store.count("pnl_snapshots") >= 1  # the final snapshot at shutdown
        assert await store.count("market_samples") == 1
        assert await store.count("events") >= 2
        fills = await store.fills(market_id=ticker)
        assert [f.quantity for f in fills] == [Quantity.contracts(2)]
    finally:
        await store.close()


async def test_settlement_realizes_pnl_clears_the_position_and_is_recorded(tmp_path: Path) -> None:
    async with running_node(tmp_path, one_market) as h:
        ticker = h.tickers()[0]
        h.seed_book(ticker)
        await wait_until(lambda: h.quoting("m1", ticker), what="quoting")
        h.take(ticker, SimBookSide.ASK, 4800, 300)  # we buy 3 YES at 0.48
        ledger = h.runtime.node.account("sim", "live").ledger
        await wait_until(lambda: ledger.net_units(ticker) == 300, what="long 3 YES")
        close = h.exchange.markets[ticker].close_us
        h.base.advance_us(close + 3600 * US - h.sim.clock.now_us())  # past the close and the settlement timer
        await wait_until(lambda: h.exchange.markets[ticker].status == "finalized", what="the venue settles")
        await wait_until(lambda: ledger.net_units(ticker) == 0, what="the position cleared")
        result = h.exchange.markets[ticker].result
        pnl = ledger.market(ticker)
        expected = (3 * 1_000_000 if result == "yes" else 0) - 3 * 480_000  # payout − cost, micro-dollars
        assert pnl.realized_micros == expected
        await wait_until(
            lambda: any(e[2] == "SettlementRecorded" and ticker in e[3] for e in h.runtime.node.events),
            what="the venue's settlement row recorded",
        )
        assert any(e[2] == "SettlementCutoff" and "3.00 YES" in e[3] for e in h.runtime.node.events)
        database = h.state_dir / "mmctl.db"
        await h.runtime.stop("drain")
    store = await Store.open(database)
    try:
        assert await store.count("settlements") == 1
    finally:
        await store.close()


def _held_before_start(h_sim: object, ticker: str, user: str) -> None:
    """Our account (the API key's user) buys 7 YES at 0.40 from the crowd before the node starts."""
    exchange = h_sim.state.exchange  # type: ignore[attr-defined]
    for crowd in ("crowd-a", "crowd-b"):
        exchange.open_account(crowd, 10_000_000 * 1_000_000)
    exchange.create_order("crowd-b", NewOrder(ticker, SimBookSide.ASK, 4000, 700))
    exchange.create_order(user, NewOrder(ticker, SimBookSide.BID, 4000, 700))
    h_sim.state.publish()  # type: ignore[attr-defined]


@pytest.mark.parametrize("limit", [5, 50])
async def test_start_up_imports_venue_positions_and_guards_the_starting_inventory(tmp_path: Path, limit: int) -> None:
    node_doc = f"""\
apiVersion: mm/v1alpha1
kind: TradingNode
metadata: {{name: n1}}
spec:
  startup: {{max_starting_inventory: {limit}}}
"""
    async with simulator(tmp_path) as (sim, base):
        ticker = sorted(t for t, m in sim.state.exchange.markets.items() if m.status == "active")[0]
        _held_before_start(sim, ticker, sim.api_key.user_id)
        runtime = make_runtime(sim, tmp_path / "node")
        h = Harness(sim, base, runtime, tmp_path / "node")
        await runtime.start(admitted(*one_market([ticker]), node_doc))
        try:
            h.seed_book(ticker)
            if limit == 5:
                await wait_until(
                    lambda: runtime.resources.require("Exchange", "sim").is_true("Stalled"), what="the refusal"
                )
                reconciles = runtime.manager.reconciles
                await wait_until(lambda: runtime.manager.reconciles >= reconciles + 3, what="markets retried meanwhile")
                assert h.our_orders() == [] and runtime.node.orders_sent == 0
                assert any(e[2] == "PositionImportRefused" and "7" in e[3] for e in runtime.node.events)
            else:
                await wait_until(lambda: h.quoting("m1", ticker), what="quoting after the import")
                pnl = runtime.node.account("sim", "live").ledger.market(ticker)
                assert pnl.net_units == 700 and pnl.cost_basis_micros == 7 * 400_000  # exact, from our fills
                assert any(e[2] == "PositionImported" for e in runtime.node.events)
        finally:
            await runtime.stop("drain")
