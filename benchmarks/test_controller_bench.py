"""Controller benchmarks (issue 8; design.md §9). No timing assertions: the numbers are read (``make bench``).

* WebSocket frame → order actions decided (target ≤ 100 µs p50): the synchronous hot path of one market with
  real objects — a raw ``orderbook_delta`` text frame → ``json.loads`` → ``BookFeed.apply`` →
  ``MarketReconciler._plan`` (strategy engine quote → ``RiskEngine.evaluate`` → ``plan_orders``) against our
  two open orders.
* Start-up to first quote (≤ 1.5 s): ``NodeRuntime.start`` → both of our orders rest at the in-process
  simulator (real loopback HTTP + WebSocket) and the Market says Quoting.
* Memory per market with 20 markets (≤ 5 MB): ``tracemalloc``, (node with 20 Markets − node with 1) / 19.
* Kill switch → all of 100 orders cancelled (≤ 100 ms on the simulator): 50 Markets × 2 quotes resting, then
  ``NodeRuntime.kill`` until the simulator shows none of ours resting.

Each also runs, once and quickly, under ``--benchmark-disable`` (``make test``).
"""

from __future__ import annotations

import asyncio
import gc
import io
import itertools
import json
import tracemalloc
from collections.abc import Iterator
from typing import cast

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from benchmarks.controller_support import SimRound, poll_until
from mm.adapters.base import MarketInfo
from mm.adapters.kalshi.adapter import KALSHI_CAPABILITIES, KalshiAdapter
from mm.adapters.kalshi.book_feed import BookFeed
from mm.adapters.mock import MockExchangeAdapter
from mm.clock import SimulatedClock
from mm.controller.node import Account, ExchangeConnection, NodeContext
from mm.controller.orders import OrderTracker
from mm.controller.resources import ResourceStore
from mm.domain.book import OrderBook
from mm.domain.fees import FeeSchedule
from mm.domain.orders import Order
from mm.domain.ticks import TickGrid
from mm.observability.logging import configure_logging, reset_logging
from mm.observability.metrics import Metrics
from mm.reconcilers.market import MarketReconciler, MarketRuntime
from mm.reconcilers.order_plan import Amend, OrderPlan, Place
from mm.specs.exchange import ExchangeSpec
from mm.specs.market import MarketSpec
from mm.state.ledger import Ledger
from tests.controller.harness import EXCHANGE_YAML, START, admitted, market_yaml

US = 1_000_000

# --------------------------------------------------------------------------- 1. frame → order actions

TICKER = "KXBTCD-26AUG1317-T73249.99"
DEFAULT_STRATEGY = "apiVersion: mm/v1alpha1\nkind: Strategy\nmetadata: {name: s1}\nspec: {}\n"
"""The default Strategy: EWMA volatility, Avellaneda-Stoikov reservation, linear skew, fixed spread, asymmetric
sizer (the five components of design.md §9's quote-generation line)."""
DEFAULT_RISK = "apiVersion: mm/v1alpha1\nkind: RiskPolicy\nmetadata: {name: r1}\nspec: {}\n"
"""The default RiskPolicy: all 12 built-in rules enabled."""
FRAME_STEP_US = 10_000
"""Market time between two frames (10 ms): the EWMA sees a mid change with a real interval every frame."""

DELTA_FRAME = (
    '{"type":"orderbook_delta","sid":1,"seq":%d,"msg":{"market_ticker":"' + TICKER + '",'
    '"price_dollars":"0.4800","delta_fp":"%s","side":"yes","ts_ms":%d}}'
)
"""A delta as the socket delivers it (a text frame); seq, size and ts_ms filled in per frame."""


def _snapshot_frame(seq: int, yes: list[list[str]], no: list[list[str]], ts_ms: int) -> str:
    msg = {"market_ticker": TICKER, "yes_dollars_fp": yes, "no_dollars_fp": no, "ts_ms": ts_ms}
    return json.dumps({"type": "orderbook_snapshot", "sid": 1, "seq": seq, "msg": msg})


class _FeedVenue:
    """What ``MarketReconciler._plan`` reads of the venue adapter — ``book`` and ``is_stale`` — answered by the
    BookFeed exactly as ``KalshiAdapter.book`` / ``is_stale`` answer them (the adapter delegates to its feed)."""

    def __init__(self, feed: BookFeed) -> None:
        self.feed = feed

    def book(self, market_id: str) -> OrderBook | None:
        return self.feed.book(market_id)

    def is_stale(self, market_id: str) -> bool:
        return self.feed.is_stale(market_id)


class _HotPath:
    """One Market's reconciler state built once: the same objects ``NodeRuntime`` builds, minus the network.

    ``MarketReconciler._plan`` itself is driven (not a re-implementation): a real ``NodeContext`` and
    ``ResourceStore`` holding admitted Exchange / Strategy / RiskPolicy / Market resources, the reconciler's own
    ``MarketRuntime`` (engine via ``build_engine``, ``RiskEngine`` via ``build_pipeline`` + kill switches on an
    ``InMemoryLatch``), a live ``Account`` (``OrderTracker`` + ``Ledger``; a mock adapter with Kalshi's
    capabilities, whose methods ``_plan`` never calls) and the market's facts. Only ``_act`` (the REST calls) is
    left out: the benchmark stops when the actions are decided.
    """

    def __init__(self) -> None:
        self.clock = SimulatedClock(START)
        resources = ResourceStore(self.clock)
        for resource in admitted(EXCHANGE_YAML, DEFAULT_STRATEGY, DEFAULT_RISK, market_yaml("m1", TICKER)):
            resources.apply(resource)
        node = NodeContext(self.clock, resources, prefix="mm", metrics=Metrics())  # as NodeRuntime builds it
        self.reconciler = MarketReconciler(node)
        stored = resources.require("Market", "m1")
        self.spec: MarketSpec = stored.spec
        self.runtime: MarketRuntime = self.reconciler._runtime("m1", self.spec, stored.generation, START)
        grid = TickGrid.linear_cent()
        self.feed = BookFeed(lambda sid, tickers: None, lambda ticker: grid, self.clock)
        exchange: ExchangeSpec = resources.require("Exchange", "sim").spec
        self.conn = ExchangeConnection("sim", "", exchange, cast(KalshiAdapter, _FeedVenue(self.feed)))
        self.conn.connected = self.conn.loaded = True
        self.account = Account(
            "sim",
            "live",
            MockExchangeAdapter(self.clock, capabilities=KALSHI_CAPABILITIES),
            OrderTracker("mm"),
            Ledger(fee_source="venue", fees=FeeSchedule()),
        )
        self.info = MarketInfo(TICKER, "KXBTCD-26AUG1317", "KXBTCD", "active", START, START + 24 * 3600 * US, grid)
        self.seq = itertools.count(1)
        self.level_in = False
        """Whether the alternating 50-contract YES bid at 0.48 is in the book."""

    def ts_ms(self) -> int:
        return self.clock.now_us() // 1000

    def snapshot(self, best_yes_bid: str, best_no_bid: str = "0.5000") -> None:
        """A two-sided book: YES bids at ``best_yes_bid`` and 1 cent below, NO bids at ``best_no_bid`` and 1 cent
        below (YES asks at 1 - those)."""
        self.level_in = False
        yes = [[f"{float(best_yes_bid) - 0.01:.4f}", "300.00"], [best_yes_bid, "200.00"]]
        no = [[f"{float(best_no_bid) - 0.01:.4f}", "300.00"], [best_no_bid, "200.00"]]
        assert self.feed.apply(json.loads(_snapshot_frame(next(self.seq), yes, no, self.ts_ms()))) == TICKER

    def plan(self) -> OrderPlan:
        # The cycle's one clock read, as MarketReconciler.reconcile makes it.
        now = self.clock.now_us()
        plan, _phase, _why = self.reconciler._plan(
            "m1", self.spec, self.runtime, self.conn, self.account, self.info, now
        )
        return plan

    def frame(self) -> OrderPlan:
        """The benchmarked step: the next delta frame arrives, the market decides its order actions."""
        self.clock.advance_us(FRAME_STEP_US)
        self.level_in = not self.level_in  # YES 0.48 appears / disappears: the mid moves 0.485 <-> 0.49
        raw = DELTA_FRAME % (next(self.seq), "50.00" if self.level_in else "-50.00", self.ts_ms())
        self.feed.apply(json.loads(raw))
        return self.plan()


def hot_path() -> _HotPath:
    """Warm the EWMA volatility up, then rest our two orders where a slightly lower book put them, so every
    benchmarked frame decides real actions: book A (mid 0.48, quotes 0.47 / 0.49) and book B (a YES bid at
    0.48 added: mid 0.49, quotes 0.48 / 0.50) alternate against our orders at 0.46 / 0.49 (from mid 0.475) —
    one amend on A frames, two on B frames."""
    hp = _HotPath()
    hp.snapshot("0.4600")
    for _ in range(30):  # past the EWMA's min_observations (10)
        hp.frame()
    hp.snapshot("0.4500")  # mid 0.475
    places = [a for a in hp.plan().actions if isinstance(a, Place)]
    assert len(places) == 2, f"expected a bid and an ask to place, got {places}"
    now = hp.clock.now_us()
    for i, place in enumerate(places):
        hp.account.tracker.acked(Order.pending(place.request, now).acknowledged(f"bench-{i}", now))
    hp.snapshot("0.4600")  # book A
    return hp


@pytest.fixture(autouse=True)
def production_logging() -> Iterator[io.StringIO]:
    """Logging as ``mmctl run`` configures it (INFO, JSON), for every benchmark here: unconfigured structlog
    would render every DEBUG ``risk_decision`` line of the risk audit. Reset afterwards (process-wide state)."""
    stream = io.StringIO()
    configure_logging("INFO", json=True, stream=stream)
    try:
        yield stream
    finally:
        reset_logging()


def test_ws_frame_to_order_actions(benchmark: BenchmarkFixture) -> None:
    hp = hot_path()
    plan = benchmark(hp.frame)
    assert not hp.feed.is_stale(TICKER) and hp.feed.gaps == 0 and hp.feed.malformed == 0
    assert len(hp.account.tracker.open_orders(TICKER)) == 2
    amends = sum(isinstance(a, Amend) for a in plan.actions)
    assert amends in (1, 2) and amends == len(plan.actions), plan.summary()
    assert amends == (2 if hp.level_in else 1), plan.summary()


# --------------------------------------------------------------------------- 2. start-up to first quote


def test_startup_to_first_quote(benchmark: BenchmarkFixture) -> None:
    """One Market on a seeded book; each round a fresh simulator, node, event loop and state directory."""
    opened: list[SimRound] = []
    resting: list[int] = []

    def setup() -> tuple[tuple[SimRound], dict[str, object]]:
        sim_round = SimRound().open(strikes=3, markets=1)
        opened.append(sim_round)
        return (sim_round,), {}

    def start(sim_round: SimRound) -> None:
        sim_round.run(sim_round.start_and_quote())
        resting.append(len(sim_round.h.our_orders()))

    try:
        benchmark.pedantic(start, setup=setup, teardown=SimRound.close, rounds=3, iterations=1)  # type: ignore[no-untyped-call]
        assert resting and all(n == 2 for n in resting), resting
    finally:
        for sim_round in opened:
            sim_round.close()


# --------------------------------------------------------------------------- 3. memory per market

MEMORY_MARKETS = 20
TRACE_FRAMES = 10
"""Deep enough that a simulator allocation shows a simulator / server frame (20 frames give the same figure)."""
SETTLE_S = 0.3
"""Time the node keeps reconciling (cycle 0.2 s) after every Market quotes, before the snapshot."""
NOT_THE_NODE = ("*/mm/sim/*", "*/uvicorn/*", "*/starlette/*", "*/fastapi/*", "*/h11/*")
"""Allocations with any of these in their stack are the in-process simulator's (server side), not the node's."""


def node_memory(markets: int, *, traced: bool = True) -> tuple[int, int]:
    """(bytes traced in total, bytes traced outside the simulator) held once ``markets`` Markets quote.

    Tracing starts just before ``runtime.start``: the simulator and its seeded books exist already, so what is
    traced is the node (and the simulator's work serving it — filtered out of the second figure)."""
    sim_round = SimRound()
    try:
        sim_round.open(strikes=MEMORY_MARKETS, markets=markets)
        gc.collect()
        if traced:
            tracemalloc.start(TRACE_FRAMES)
        try:
            sim_round.run(sim_round.start_and_quote(timeout=60.0))
            sim_round.run(asyncio.sleep(SETTLE_S))
            assert sim_round.all_quoting()
            gc.collect()
            snapshot = tracemalloc.take_snapshot() if traced else None
        finally:
            tracemalloc.stop()
    finally:
        sim_round.close()
    if snapshot is None:
        return 0, 0
    total = sum(stat.size for stat in snapshot.statistics("filename"))
    node_only = snapshot.filter_traces(
        [tracemalloc.Filter(False, pattern, all_frames=True) for pattern in NOT_THE_NODE]
    )
    return total, sum(stat.size for stat in node_only.statistics("filename"))


def test_memory_per_market_20_markets(benchmark: BenchmarkFixture) -> None:
    """Untimed in spirit: the figure is ``extra_info["bytes_per_market"]`` (the time is the measurement's)."""
    figures: dict[str, int] = {}

    def measure() -> None:
        # First an untraced run: lazy imports, interned caches and first-use allocations would otherwise be
        # charged to whichever run comes first (the 1-market run: it made the difference negative).
        node_memory(1, traced=False)
        one_total, one_node = node_memory(1)
        many_total, many_node = node_memory(MEMORY_MARKETS)
        figures["bytes_per_market"] = (many_node - one_node) // (MEMORY_MARKETS - 1)
        figures["bytes_per_market_incl_simulator"] = (many_total - one_total) // (MEMORY_MARKETS - 1)
        figures["node_bytes_1_market"] = one_node
        figures["node_bytes_20_markets"] = many_node

    benchmark.pedantic(measure, rounds=1, iterations=1)  # type: ignore[no-untyped-call]
    benchmark.extra_info.update(figures)
    per_market = figures["bytes_per_market"]
    print(  # noqa: T201 - the figure is the point of this benchmark
        f"\nmemory per market ({MEMORY_MARKETS} markets, tracemalloc, node only): {per_market / 1e3:.1f} kB "
        f"({figures['bytes_per_market_incl_simulator'] / 1e3:.1f} kB including the simulator's side)"
    )
    assert per_market > 0


# --------------------------------------------------------------------------- 4. kill switch, 100 orders

KILL_MARKETS = 50
"""50 Markets × (bid + ask) = 100 of our orders resting at the simulator."""


def test_kill_switch_cancels_100_orders(benchmark: BenchmarkFixture) -> None:
    opened: list[SimRound] = []
    cancelled: list[int] = []

    def setup() -> tuple[tuple[SimRound], dict[str, object]]:
        sim_round = SimRound().open(strikes=KILL_MARKETS, markets=KILL_MARKETS)
        opened.append(sim_round)
        sim_round.run(sim_round.start_and_quote(timeout=60.0))
        assert len(sim_round.h.our_orders()) == 2 * KILL_MARKETS
        return (sim_round,), {}

    def kill(sim_round: SimRound) -> None:
        async def trigger_and_confirm() -> None:
            cancelled.append(await sim_round.h.runtime.kill("bench"))
            await poll_until(lambda: not sim_round.h.our_orders(), 10.0, "none of our orders resting")

        sim_round.run(trigger_and_confirm())

    try:
        benchmark.pedantic(kill, setup=setup, teardown=SimRound.close, rounds=3, iterations=1)  # type: ignore[no-untyped-call]
        assert cancelled and all(n == 2 * KILL_MARKETS for n in cancelled), cancelled
        benchmark.extra_info["orders_cancelled"] = cancelled[-1]
    finally:
        for sim_round in opened:
            sim_round.close()
