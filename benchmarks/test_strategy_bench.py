"""Strategy engine and components on the quoting path (design.md §9: a quote ≤ 15 µs p50).

No timing assertions: the numbers are read. Each benchmark asserts only that it computed something real.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from mm.domain.ticks import TickGrid
from mm.specs.strategy import StrategySpec
from mm.strategy.base import SizingContext
from mm.strategy.engine import QuoteInputs, StrategyEngine
from mm.strategy.registry import build_engine
from mm.strategy.reservation import AvellanedaStoikov
from mm.strategy.sizing import AsymmetricSizer, FixedSizer, KellySizer, LinearSizer
from mm.strategy.skew import AdaptiveSkew, ExponentialSkew, LinearSkew, NoSkew
from mm.strategy.spread import AvellanedaStoikovSpread, FixedSpread, InventorySpread, TimeDecaySpread, VolatilitySpread
from mm.strategy.volatility import EWMAVolatility, RealizedVolatility

T0 = 1_700_000_000_000_000
GRID = TickGrid.linear_cent()
MIDS = [0.50, 0.51, 0.505, 0.52, 0.515, 0.50, 0.49, 0.495, 0.50, 0.51]


def warmed(spec: dict[str, Any]) -> StrategyEngine:
    eng = build_engine(StrategySpec.model_validate(spec))
    for i in range(20):  # ~20 mid changes, 0.5 s apart: past min_observations (10)
        eng.on_mid(MIDS[i % len(MIDS)], T0 + i * 500_000)
    assert eng.volatility.is_ready()
    return eng


def inputs_for(eng: StrategyEngine, grid: TickGrid = GRID, mid: float = 0.50) -> QuoteInputs:
    """q = 0.3·Q_max (long, inside every preset's limit), 30 min to settlement."""
    return QuoteInputs("KXBENCH", mid, 0.3 * eng.limits.max_inventory, 1800.0, T0 + 60_000_000, grid)


def test_quote_default_spec(benchmark: BenchmarkFixture) -> None:
    eng = warmed({})
    result = benchmark(eng.quote, inputs_for(eng))
    assert len(result.quotes.quotes()) == 4


@pytest.mark.parametrize("preset", ["conservative", "aggressive", "baseline"])
def test_quote_preset(benchmark: BenchmarkFixture, preset: str) -> None:
    eng = warmed({"preset": preset})
    result = benchmark(eng.quote, inputs_for(eng))
    assert len(result.quotes.quotes()) == 4


def test_quote_default_spec_tapered_grid(benchmark: BenchmarkFixture) -> None:
    eng = warmed({})
    result = benchmark(eng.quote, inputs_for(eng, TickGrid.tapered_deci_cent(), 0.095))
    assert result.quotes.yes_bid is not None


# --- volatility -----------------------------------------------------------------------------------


def _updater(est: EWMAVolatility | RealizedVolatility, start_us: int) -> Callable[[], None]:
    ticks = itertools.count(start_us, 1_000_000)  # one mid change per second
    mids = itertools.cycle(MIDS)

    def step() -> None:
        est.update(next(mids), next(ticks))

    return step


def test_ewma_update(benchmark: BenchmarkFixture) -> None:
    est = EWMAVolatility()
    step = _updater(est, T0)
    for _ in range(20):
        step()
    benchmark(step)
    assert est.is_ready() and est.get_volatility() > 0


def test_realized_update_steady_state(benchmark: BenchmarkFixture) -> None:
    est = RealizedVolatility(window_seconds=300)
    step = _updater(est, T0)
    for _ in range(400):  # the 300 s window is full: every update appends one sample and evicts one
        step()
    full = len(est.get_state()["samples"])
    benchmark(step)
    assert len(est.get_state()["samples"]) == full
    assert est.get_volatility() > 0


def test_ewma_get_volatility(benchmark: BenchmarkFixture) -> None:
    est = EWMAVolatility()
    step = _updater(est, T0)
    for _ in range(20):
        step()
    assert benchmark(est.get_volatility) > 0


# --- reservation, skew, spread, sizer -------------------------------------------------------------


def test_avellaneda_stoikov_reservation(benchmark: BenchmarkFixture) -> None:
    a = AvellanedaStoikov()
    assert benchmark(a.calculate, 0.5, 300.0, 0.004, 1800.0, 1000.0) < 0.5


@pytest.mark.parametrize(
    "skew",
    [LinearSkew(), ExponentialSkew(), AdaptiveSkew(), NoSkew()],
    ids=["linear", "exponential", "adaptive", "none"],
)
def test_skew(benchmark: BenchmarkFixture, skew: Any) -> None:
    assert benchmark(skew.calculate, 300.0, 1000.0, 0.004) >= 0


@pytest.mark.parametrize(
    "spread",
    [FixedSpread(), VolatilitySpread(), InventorySpread(), TimeDecaySpread(), AvellanedaStoikovSpread()],
    ids=["fixed", "volatility", "inventory", "time_decay", "avellaneda_stoikov"],
)
def test_spread(benchmark: BenchmarkFixture, spread: Any) -> None:
    assert benchmark(spread.calculate, 0.004, 300.0, 1000.0, 1800.0) > 0


@pytest.mark.parametrize(
    "sizer",
    [AsymmetricSizer(), LinearSizer(), FixedSizer(), KellySizer()],
    ids=["asymmetric", "linear", "fixed", "kelly"],
)
def test_sizer(benchmark: BenchmarkFixture, sizer: Any) -> None:
    bid, ask = benchmark(sizer.calculate, 300.0, 1000.0, 100.0, SizingContext(0.497, 0.01))
    assert bid > 0 and ask > 0
