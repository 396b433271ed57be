"""Property tests for the engine (design.md §10): for any mid, inventory, time and σ, with each preset and
the default spec (plus a few other component mixes), on three tick grids:

* the NO quotes are exact complements of the YES quotes (FR-402);
* every price is on the grid and inside price_bounds; YES bid < YES ask by at least min_spread;
* sizes are never negative, never above 2 × base_size (FR-403) and never above the remaining capacity;
* quotes move down monotonically as inventory grows.

Monotonicity: the quote centre c(q) = r(q) − skew(q) is non-increasing in q for every component here —
A–S shifts r by −clamp(q̂·γσ²τ), linear reservation by −k·q, and every skew (linear k·q̂, exponential
k·q̂|q̂|, adaptive k·q̂·σ/σ_ref with σ ≥ 0) is non-decreasing in q̂; IEEE rounding is monotone, so this
holds in floats too. The prices are c ∓ δ rounded down/up, pulled inside the bounds (min/max, also
monotone), so they are monotone whenever δ does not depend on q. The ``inventory`` spread widens with
|q|: for q < 0, as q grows toward 0 the spread narrows faster than the centre falls and the bid can
*rise* (see the explicit counterexample below), so for it only the centre is asserted.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mm.domain.price import PRICE_SCALE, QTY_SCALE
from mm.domain.ticks import TickGrid
from mm.specs.strategy import StrategySpec
from mm.strategy.engine import QuoteInputs, QuoteResult, StrategyEngine
from mm.strategy.registry import build_engine

GRIDS = {
    "linear_cent": TickGrid.linear_cent(),
    "deci_cent": TickGrid.deci_cent(),
    "tapered_deci_cent": TickGrid.tapered_deci_cent(),
}

SPECS: dict[str, dict[str, Any]] = {
    "default": {},
    "conservative": {"preset": "conservative"},
    "aggressive": {"preset": "aggressive"},
    "baseline": {"preset": "baseline"},
    # other mixes, so every component type is exercised
    "inventory-spread": {"components": {"spread": {"type": "inventory"}, "skew": {"type": "exponential"}}},
    "as-spread-kelly": {
        "components": {
            "reservation_price": {"params": {"horizon": "time_to_settlement"}},
            "spread": {"type": "avellaneda_stoikov"},
            "sizer": {"type": "kelly"},
        }
    },
    "linear-adaptive-decay": {
        "components": {
            "volatility": {"type": "realized"},
            "reservation_price": {"type": "linear", "params": {"k": "0.00002"}},
            "skew": {"type": "adaptive"},
            "spread": {"type": "time_decay"},
            "sizer": {"type": "linear"},
        },
        "max_inventory": 500,
    },
    "fixed-horizon-kelly": {
        "components": {
            "volatility": {"type": "fixed", "params": {"volatility": "0.003"}},
            "reservation_price": {"params": {"horizon": "fixed", "gamma": "0.5"}},
            "skew": {"type": "linear", "params": {"intensity": "0.04"}},
            "spread": {"params": {"base_spread": "0.03"}},
            "sizer": {"type": "kelly", "params": {"fraction": "1"}},
        },
        "min_spread": "0.03",
    },
}

ENGINES: dict[str, tuple[StrategyEngine, str]] = {}
for _name, _data in SPECS.items():
    _spec = StrategySpec.model_validate(_data)
    assert _spec.check() == [], (_name, _spec.check())
    ENGINES[_name] = (build_engine(_spec), _spec.components.spread.type)

# Spread types whose half-spread does not depend on inventory (so the prices, not only the centre, are monotone).
Q_INDEPENDENT_SPREADS = {"fixed", "volatility", "time_decay", "avellaneda_stoikov"}

mids = st.floats(min_value=0.02, max_value=0.98, exclude_min=True, exclude_max=True)
fractions = st.floats(min_value=-1.0, max_value=1.0)
times = st.floats(min_value=0.0, max_value=7200.0)
sigmas = st.floats(min_value=0.0, max_value=0.02)
configs = st.sampled_from(sorted(ENGINES))
grids = st.sampled_from(sorted(GRIDS))


def run(config: str, grid: str, mid: float, q: float, t: float, sigma: float) -> QuoteResult:
    eng, _ = ENGINES[config]
    return eng.quote(QuoteInputs("KX-PROP", mid, q, t, 1_700_000_000_000_000, GRIDS[grid], volatility=sigma))


def check_invariants(config: str, grid_name: str, mid: float, q: float, t: float, sigma: float) -> QuoteResult:
    eng, _ = ENGINES[config]
    limits, grid = eng.limits, GRIDS[grid_name]
    r = run(config, grid_name, mid, q, t, sigma)
    qs = r.quotes
    assert qs.is_complementary
    assert qs.market_id == "KX-PROP"
    low = round(limits.price_min * PRICE_SCALE)
    high = round(limits.price_max * PRICE_SCALE)
    for quote in qs.quotes():
        assert grid.contains(quote.price.units), quote
        # bounds are symmetric (0.01, 0.99) in every config here, so NO prices obey them as well
        assert low <= quote.price.units <= high, quote
        assert quote.size.units > 0  # a zero size means no quote at all
    if qs.yes_bid is not None and qs.yes_ask is not None:
        assert qs.yes_bid.price < qs.yes_ask.price
        assert qs.yes_ask.price.units - qs.yes_bid.price.units >= round(limits.min_spread * PRICE_SCALE)
    base, q_max = limits.base_size, limits.max_inventory
    assert 0.0 <= r.bid_size <= 2 * base
    assert 0.0 <= r.ask_size <= 2 * base
    assert r.bid_size <= max(q_max - q, 0.0)
    assert r.ask_size <= max(q_max + q, 0.0)
    if qs.yes_bid is not None:
        assert qs.yes_bid.size.units <= r.bid_size * QTY_SCALE + 1e-6
        assert qs.yes_bid.size.units <= (q_max - q) * QTY_SCALE + 1e-6
    if qs.yes_ask is not None:
        assert qs.yes_ask.size.units <= r.ask_size * QTY_SCALE + 1e-6
        assert qs.yes_ask.size.units <= (q_max + q) * QTY_SCALE + 1e-6
    return r


@settings(max_examples=300, deadline=None)
@given(config=configs, grid=grids, mid=mids, frac=fractions, t=times, sigma=sigmas)
def test_quote_invariants(config: str, grid: str, mid: float, frac: float, t: float, sigma: float) -> None:
    q = round(frac * ENGINES[config][0].limits.max_inventory, 2)
    check_invariants(config, grid, mid, q, t, sigma)


@settings(max_examples=300, deadline=None)
@given(config=configs, grid=grids, mid=mids, f1=fractions, f2=fractions, t=times, sigma=sigmas)
def test_quotes_move_down_as_inventory_grows(
    config: str, grid: str, mid: float, f1: float, f2: float, t: float, sigma: float
) -> None:
    eng, spread_type = ENGINES[config]
    q1, q2 = sorted((round(f1 * eng.limits.max_inventory, 2), round(f2 * eng.limits.max_inventory, 2)))
    r1 = run(config, grid, mid, q1, t, sigma)
    r2 = run(config, grid, mid, q2, t, sigma)
    assert r2.reservation_price - r2.skew <= r1.reservation_price - r1.skew  # the centre, always
    if spread_type not in Q_INDEPENDENT_SPREADS:
        return
    a, b = r1.quotes, r2.quotes
    if a.yes_bid is not None and b.yes_bid is not None:
        assert b.yes_bid.price <= a.yes_bid.price
    if a.yes_ask is not None and b.yes_ask is not None:
        assert b.yes_ask.price <= a.yes_ask.price
    if a.no_bid is not None and b.no_bid is not None:  # mirror image: NO quotes move up
        assert b.no_bid.price >= a.no_bid.price
    if a.no_ask is not None and b.no_ask is not None:
        assert b.no_ask.price >= a.no_ask.price


def test_inventory_spread_bid_is_not_monotone_in_inventory() -> None:
    """Why prices are only asserted for q-independent spreads: inventory spread base 0.04, skew 0.01·q̂.
    q = −1000: centre 0.51, δ = 0.02·2 = 0.04 → bid 0.47; q = −500: centre 0.505, δ = 0.03 → bid 0.475."""
    eng = build_engine(
        StrategySpec.model_validate(
            {
                "components": {
                    "reservation_price": {"type": "simple_mid"},
                    "spread": {"type": "inventory", "params": {"base_spread": "0.04"}},
                }
            }
        )
    )
    grid = TickGrid.deci_cent()

    def bid(q: float) -> int:
        r = eng.quote(QuoteInputs("KX", 0.5, q, 600, 0, grid, volatility=0.0))
        assert r.quotes.yes_bid is not None
        return r.quotes.yes_bid.price.units

    assert bid(-1000) == 4700
    assert bid(-500) == 4750  # higher inventory, higher bid


EDGE_Q = (-1.0, -0.5, 0.0, 0.5, 1.0)  # fractions of Q_max, including ±Q_max


@pytest.mark.parametrize("config", sorted(ENGINES))
@pytest.mark.parametrize("grid", sorted(GRIDS))
def test_edge_cases(config: str, grid: str) -> None:
    """T = 0, σ = 0 and q = ±Q_max, at mids across the range."""
    q_max = ENGINES[config][0].limits.max_inventory
    for mid in (0.021, 0.1, 0.5, 0.9, 0.979):
        for t in (0.0, 7200.0):
            for sigma in (0.0, 0.02):
                results = [check_invariants(config, grid, mid, f * q_max, t, sigma) for f in EDGE_Q]
                centres = [r.reservation_price - r.skew for r in results]
                assert centres == sorted(centres, reverse=True)
                at_max, at_min = results[-1], results[0]
                assert at_max.quotes.yes_bid is None  # no buying at +Q_max
                assert at_min.quotes.yes_ask is None  # no selling at −Q_max
