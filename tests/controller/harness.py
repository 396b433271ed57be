"""A node against the in-process simulator, for the controller's integration tests.

The simulator runs on a :class:`SteppedWallClock` base — real time that tests jump forward for cutoffs and
roll-over — with
its crowd off; :func:`seed_book` rests orders of two background accounts so a market has a two-sided book to
quote around. The node's Clock is the simulator's market clock; signing and rate limits use the wall clock,
as in ``mmctl run``. Resources are built from YAML text through the same admission as the CLI.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client import CollectorRegistry

from mm.adapters.factory import build_venue_adapter
from mm.adapters.kalshi.adapter import KalshiAdapter
from mm.adapters.kalshi.signer import KalshiSigner
from mm.clock import Clock, WallClock, datetime_to_us
from mm.controller.runtime import NodeRuntime, RuntimeOptions
from mm.observability.metrics import Metrics
from mm.sim.exchange import NewOrder
from mm.sim.server import Simulator, SimulatorConfig
from mm.sim.types import BookSide as SimBookSide
from mm.sim.types import OrderStatus as SimOrderStatus
from mm.sim.types import TimeInForce
from mm.specs.admission import AdmittedResource, admit_or_raise
from mm.specs.exchange import ExchangeSpec
from mm.specs.yaml_loader import load_text

START = datetime_to_us(datetime(2026, 8, 13, 20, 30, tzinfo=UTC))
"""16:30 ET: the 17:00 ET hourly markets have 30 minutes left."""
TIMEOUT = 10.0
CROWD = ("crowd-a", "crowd-b")


async def wait_until(condition: Callable[[], bool], timeout: float = TIMEOUT, what: str = "condition") -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.01)

    try:
        await asyncio.wait_for(poll(), timeout)
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout} s waiting for {what}") from None


def strategy_yaml(name: str = "s1", *, spread: str = "0.04", size: int = 5, skew: str = "none", extra: str = "") -> str:
    skew_block = "{type: none, params: {}}" if skew == "none" else f"{{type: linear, params: {{intensity: {skew}}}}}"
    return f"""\
apiVersion: mm/v1alpha1
kind: Strategy
metadata: {{name: {name}}}
spec:
  components:
    volatility: {{type: fixed, params: {{volatility: 0.0001}}}}
    reservation_price: {{type: simple_mid, params: {{}}}}
    skew: {skew_block}
    spread: {{type: fixed, params: {{base_spread: {spread}}}}}
    sizer: {{type: fixed, params: {{base_size: {size}}}}}
  max_inventory: 50
{extra}"""


RISK_YAML = """\
apiVersion: mm/v1alpha1
kind: RiskPolicy
metadata: {name: r1}
spec:
  rules:
    settlement_cutoff: {cutoff_minutes: 3}
    stale_data: {max_age_seconds: 100000}
"""

EXCHANGE_YAML = """\
apiVersion: mm/v1alpha1
kind: Exchange
metadata: {name: sim}
spec:
  venue: simulator
  allow_live: true
  simulator: {embedded: true}
  rate_limits: {tier: prestige}
"""


def market_yaml(name: str, ticker: str, *, strategy: str = "s1", extra: str = "") -> str:
    return f"""\
apiVersion: mm/v1alpha1
kind: Market
metadata: {{name: {name}}}
spec:
  exchange_ref: sim
  ticker: {ticker}
  strategy_ref: {strategy}
  risk_policy_ref: r1
  execution: live
{extra}"""


def admitted(*documents: str) -> tuple[AdmittedResource, ...]:
    docs = [d for i, text in enumerate(documents) for d in load_text(text, f"doc{i}.yaml")]
    return admit_or_raise(docs)


@dataclass
class Harness:
    sim: Simulator
    base: SteppedWallClock
    runtime: NodeRuntime
    state_dir: Path

    @property
    def exchange(self):  # type: ignore[no-untyped-def]
        return self.sim.state.exchange

    def tickers(self) -> list[str]:
        return sorted(t for t, m in self.exchange.markets.items() if m.status == "active")

    def our_orders(self, ticker: str | None = None) -> list[object]:
        """Our resting orders as the simulator (the exchange) knows them: the ground truth."""
        return [
            o
            for o in self.exchange.orders.values()
            if o.client_order_id.startswith("mm:")
            and o.status is SimOrderStatus.RESTING
            and (ticker is None or o.ticker == ticker)
        ]

    def seed_book(self, ticker: str, bid: int = 4500, ask: int = 5500, size: int = 5000) -> None:
        """Background liquidity: a bid and an ask (YES, $0.0001 units, 1/100 contract) from two crowd accounts."""
        exchange = self.exchange
        for user in CROWD:
            if user not in exchange.accounts:
                exchange.open_account(user, 10_000_000 * 1_000_000)
        exchange.create_order(CROWD[0], NewOrder(ticker, SimBookSide.BID, bid, size))
        exchange.create_order(CROWD[1], NewOrder(ticker, SimBookSide.ASK, ask, size))
        self.sim.state.publish()

    def take(self, ticker: str, side: SimBookSide, price: int, size: int) -> None:
        """A crowd taker hits the book (e.g. sells into our bid): an IOC order."""
        try:
            self.exchange.create_order(
                CROWD[1] if side is SimBookSide.ASK else CROWD[0],
                NewOrder(ticker, side, price, size, time_in_force=TimeInForce.IMMEDIATE_OR_CANCEL),
            )
        finally:
            self.sim.state.publish()

    def market_status(self, name: str) -> dict[str, object]:
        stored = self.runtime.resources.get("Market", name)
        assert stored is not None
        return stored.status

    def quoting(self, name: str, ticker: str) -> bool:
        """Our bid and ask both rest at the exchange and the Market says Quoting."""
        sides = {o.side for o in self.our_orders(ticker)}  # type: ignore[attr-defined]
        return self.market_status(name).get("phase") == "Quoting" and sides == {SimBookSide.BID, SimBookSide.ASK}


def make_runtime(sim: Simulator, state_dir: Path, **options: object) -> NodeRuntime:
    wall = WallClock()
    metrics = Metrics(CollectorRegistry())

    def build(name: str, spec: ExchangeSpec) -> KalshiAdapter:
        signer = KalshiSigner.from_file(sim.api_key.key_id, sim.api_key.key_file)
        return build_venue_adapter(
            spec,
            sim.clock,
            simulator_urls=(sim.rest_url, sim.ws_url),
            signer=signer,
            wall_clock=wall,
            metrics=metrics,
            exchange_label=name,
        )

    opts = RuntimeOptions(
        state_dir=state_dir,
        cycle_s=0.2,
        selector_period_s=0.5,
        resync_s=5.0,
        exchange_resync_s=1.0,
        recording_dir=state_dir / "sessions",
        time_sync=False,  # no NTP queries to the internet from tests (tests/controller/test_time_sync.py)
        **options,
    )  # type: ignore[arg-type]
    return NodeRuntime(sim.clock, opts, build, metrics=metrics)


class SteppedWallClock(Clock):
    """Real time that tests can jump forward (market time must flow: throttles and cycles measure it)."""

    def __init__(self) -> None:
        self._wall = WallClock()
        self._offset_ns = 0

    def now_us(self) -> int:
        return self._wall.now_us() + self._offset_ns // 1000

    def monotonic_ns(self) -> int:
        return self._wall.monotonic_ns() + self._offset_ns

    def advance(self, seconds: int | float) -> None:
        self._offset_ns += int(seconds * 1e9)

    def advance_us(self, us: int) -> None:
        self._offset_ns += us * 1000


@asynccontextmanager
async def simulator(tmp_path: Path, *, seed: int = 7) -> AsyncIterator[tuple[Simulator, SteppedWallClock]]:
    base = SteppedWallClock()
    config = SimulatorConfig(state_dir=tmp_path / "sim", start_us=START, strikes=3, crowd=False, seed=seed)
    async with Simulator(config, base_clock=base) as sim:
        yield sim, base


@asynccontextmanager
async def running_node(
    tmp_path: Path, *documents_for: Callable[[list[str]], list[str]], state_dir: Path | None = None
) -> AsyncIterator[Harness]:
    """A simulator and a node started with the documents ``documents_for(tickers)`` returns."""
    async with simulator(tmp_path) as (sim, base):
        directory = state_dir or tmp_path / "node"
        runtime = make_runtime(sim, directory)
        harness = Harness(sim, base, runtime, directory)
        docs = [text for build in documents_for for text in build(harness.tickers())]
        await runtime.start(admitted(*docs))
        try:
            yield harness
        finally:
            await runtime.stop("drain")
