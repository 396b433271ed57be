"""The strategy engine (FR-402, FR-403, FR-410): components → the four-quote sheet.

Prices are checked as exact integer units of $0.0001 (``Price(4810)`` is $0.481); sizes in 1/100 contract.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from mm.domain.price import PRICE_SCALE, Price, Quantity
from mm.domain.quotes import QuoteSet
from mm.domain.sides import OrderSide, Side
from mm.domain.ticks import TickGrid
from mm.strategy.engine import QuoteInputs, QuoteResult, StrategyEngine, StrategyLimits
from mm.strategy.reservation import AvellanedaStoikov, LinearAdjustment, SimpleMidPrice
from mm.strategy.sizing import AsymmetricSizer, FixedSizer, LinearSizer
from mm.strategy.skew import LinearSkew, NoSkew
from mm.strategy.spread import FixedSpread, InventorySpread, VolatilitySpread
from mm.strategy.volatility import EWMAVolatility, FixedVolatility, RealizedVolatility

LINEAR = TickGrid.linear_cent()
DECI = TickGrid.deci_cent()
TAPERED = TickGrid.tapered_deci_cent()
NOW = 1_700_000_000_000_000


def engine(**overrides: Any) -> StrategyEngine:
    """σ = 0 fixed, r = s, no skew, spread 0.02, asymmetric sizes, default limits — unless overridden."""
    parts: dict[str, Any] = {
        "volatility": FixedVolatility(0.0),
        "reservation_price": SimpleMidPrice(),
        "skew": NoSkew(),
        "spread": FixedSpread(0.02),
        "sizer": AsymmetricSizer(),
        "limits": StrategyLimits(),
    }
    parts.update(overrides)
    return StrategyEngine(**parts)


def quote(
    eng: StrategyEngine, mid: float, q: float = 0.0, *, t: float = 3600.0, grid: TickGrid = LINEAR, **kw: Any
) -> QuoteResult:
    return eng.quote(QuoteInputs("KX-TEST", mid, q, t, NOW, grid, **kw))


def units(result: QuoteResult) -> tuple[int | None, int | None, int | None, int | None]:
    qs = result.quotes
    return tuple(None if x is None else x.price.units for x in (qs.yes_bid, qs.yes_ask, qs.no_bid, qs.no_ask))  # type: ignore[return-value]


# --- FR-402: the four quotes ----------------------------------------------------------------------


def test_four_quotes_no_is_the_complement_of_yes_with_sizes_swapped() -> None:
    r = quote(engine(), 0.50, 300)
    qs = r.quotes
    assert qs.yes_bid is not None and qs.yes_ask is not None and qs.no_bid is not None and qs.no_ask is not None
    assert (qs.yes_bid.side, qs.yes_bid.order_side) == (Side.YES, OrderSide.BUY)
    assert (qs.yes_ask.side, qs.yes_ask.order_side) == (Side.YES, OrderSide.SELL)
    assert (qs.no_bid.side, qs.no_bid.order_side) == (Side.NO, OrderSide.BUY)
    assert (qs.no_ask.side, qs.no_ask.order_side) == (Side.NO, OrderSide.SELL)
    assert qs.no_bid.price.units == PRICE_SCALE - qs.yes_ask.price.units  # NO bid = 1 − YES ask
    assert qs.no_ask.price.units == PRICE_SCALE - qs.yes_bid.price.units  # NO ask = 1 − YES bid
    # FR-403: NO_bid_size = ask_size (YES ask), NO_ask_size = bid_size (YES bid); q = +300 → 70 / 130
    assert qs.yes_bid.size == Quantity.contracts(70)
    assert qs.yes_ask.size == Quantity.contracts(130)
    assert qs.no_bid.size == qs.yes_ask.size == Quantity.contracts(130)
    assert qs.no_ask.size == qs.yes_bid.size == Quantity.contracts(70)
    assert qs.is_complementary
    assert r.note == ""


@pytest.mark.parametrize(
    "eng",
    [
        # r = s − k·q with k = 0.009/300 = 0.00003: r = 0.50 − 0.009 = 0.491, no skew
        engine(reservation_price=LinearAdjustment(k=0.00003), spread=FixedSpread(0.02)),
        # r = s, skew = k·q̂ (FR-402's formula) with k = 0.03: 0.03·0.3 = 0.009 → centre 0.491
        engine(skew=LinearSkew(0.03), spread=FixedSpread(0.02)),
    ],
    ids=["linear-reservation", "linear-skew"],
)
def test_fr402_quote_sheet_example(eng: StrategyEngine) -> None:
    # centre 0.491, δ = 0.02/2 = 0.01: YES bid 0.481, ask 0.501; NO bid 1 − 0.501 = 0.499, ask 1 − 0.481 = 0.519
    r = quote(eng, 0.50, 300, grid=DECI)
    assert r.reservation_price - r.skew == pytest.approx(0.491)
    assert r.half_spread == pytest.approx(0.01)
    assert units(r) == (4810, 5010, 4990, 5190)
    qs = r.quotes
    assert qs.yes_bid is not None and qs.no_ask is not None and qs.yes_ask is not None and qs.no_bid is not None
    assert (qs.yes_bid.size, qs.yes_ask.size) == (Quantity.contracts(70), Quantity.contracts(130))
    assert (qs.no_bid.size, qs.no_ask.size) == (Quantity.contracts(130), Quantity.contracts(70))


def test_fr402_inventory_impact_table() -> None:
    eng = engine(
        reservation_price=AvellanedaStoikov(gamma=0.1),
        skew=LinearSkew(0.01),
        volatility=FixedVolatility(0.004),
    )
    yb0, ya0, nb0, na0 = units(quote(eng, 0.50, 0, t=1800, grid=DECI))
    yb_l, ya_l, nb_l, na_l = units(quote(eng, 0.50, 400, t=1800, grid=DECI))
    yb_s, ya_s, nb_s, na_s = units(quote(eng, 0.50, -400, t=1800, grid=DECI))
    assert None not in (yb0, ya0, nb0, na0, yb_l, ya_l, nb_l, na_l, yb_s, ya_s, nb_s, na_s)
    # neutral: symmetric around the mid (5000 units), on both contracts
    assert 5000 - yb0 == ya0 - 5000 > 0  # type: ignore[operator]
    assert 5000 - nb0 == na0 - 5000 > 0  # type: ignore[operator]
    # long YES: YES quotes shift down, NO quotes shift up
    assert yb_l < yb0 and ya_l < ya0  # type: ignore[operator]
    assert nb_l > nb0 and na_l > na0  # type: ignore[operator]
    # short YES: the opposite
    assert yb_s > yb0 and ya_s > ya0  # type: ignore[operator]
    assert nb_s < nb0 and na_s < na0  # type: ignore[operator]
    # with symmetric components the short sheet mirrors the long one around 0.50
    assert (yb_s, ya_s) == (PRICE_SCALE - ya_l, PRICE_SCALE - yb_l)  # type: ignore[operator]


def test_quoteset_carries_market_id_and_timestamp() -> None:
    r = engine().quote(QuoteInputs("KXBTC-26AUG13", 0.4, 0, 60, 1_723_000_000_123_456, LINEAR))
    assert r.quotes.market_id == "KXBTC-26AUG13"
    assert r.quotes.generated_us == 1_723_000_000_123_456


def test_result_carries_the_intermediate_values() -> None:
    eng = engine(
        volatility=FixedVolatility(0.004),
        reservation_price=AvellanedaStoikov(gamma=0.1, horizon="fixed", horizon_seconds=3600),
        skew=LinearSkew(0.01),
        spread=VolatilitySpread(0.02, 0.5, 60),
    )
    r = quote(eng, 0.5, 300, t=900)
    assert r.volatility == 0.004
    assert r.reservation_price == pytest.approx(0.5 - 0.3 * 0.1 * 0.004**2 * 3600)  # 0.5 − 0.001728
    assert r.skew == pytest.approx(0.003)
    assert r.half_spread == pytest.approx(0.01 + 0.5 * math.sqrt(60) * 0.004)
    assert (r.bid_size, r.ask_size) == pytest.approx((70, 130))


# --- rounding never tightens --------------------------------------------------------------------


@pytest.mark.parametrize("grid", [LINEAR, TAPERED], ids=["linear_cent", "tapered_deci_cent"])
@pytest.mark.parametrize("mid", [0.5037, 0.4999, 0.0955, 0.0937, 0.1003, 0.8951, 0.9048, 0.0412, 0.9311])
def test_rounding_never_tightens(grid: TickGrid, mid: float) -> None:
    eng = engine(spread=FixedSpread(0.01), limits=StrategyLimits(min_spread=0.01))
    r = quote(eng, mid, grid=grid)
    qs = r.quotes
    assert qs.yes_bid is not None and qs.yes_ask is not None
    bid, ask = qs.yes_bid.price.units, qs.yes_ask.price.units
    raw_bid, raw_ask = (mid - r.half_spread) * PRICE_SCALE, (mid + r.half_spread) * PRICE_SCALE
    assert bid <= raw_bid + 1e-6  # rounded down
    assert ask >= raw_ask - 1e-6  # rounded up
    assert ask - bid >= 100  # ≥ min_spread ($0.01) after rounding
    assert grid.contains(bid) and grid.contains(ask)
    # ... and by no more than one tick: the next level up from the bid is above the raw bid
    i, j = grid.index_of(bid), grid.index_of(ask)
    assert grid.levels[i + 1] > raw_bid
    assert grid.levels[j - 1] < raw_ask


def test_rounding_example_on_the_tapered_grid() -> None:
    # centre 0.0955, δ = 0.005: bid 0.0905 → 0.090 (edge step 0.001); ask 0.1005 → 0.11 (centre step 0.01)
    r = quote(engine(spread=FixedSpread(0.01)), 0.0955, grid=TAPERED)
    assert units(r)[:2] == (900, 1100)
    # the same on linear_cent: 0.0905 → 0.09, 0.1005 → 0.11
    assert units(quote(engine(spread=FixedSpread(0.01)), 0.0955, grid=LINEAR))[:2] == (900, 1100)
    # deci-cent: 0.0905 → 0.090, 0.1005 → 0.101
    assert units(quote(engine(spread=FixedSpread(0.01)), 0.0955, grid=DECI))[:2] == (900, 1010)


def test_on_grid_prices_are_not_moved() -> None:
    # centre 0.50, δ 0.01: exactly 0.49 / 0.51, already on the grid (float noise tolerated)
    assert units(quote(engine(), 0.50))[:2] == (4900, 5100)
    assert units(quote(engine(), 0.7))[:2] == (6900, 7100)  # 0.7 − 0.01 = 0.69 in float is 0.6899999…


# --- price bounds -------------------------------------------------------------------------------


def test_bid_below_price_min_is_dropped_with_a_note() -> None:
    r = quote(engine(), 0.012)  # bid 0.002 < 0.01
    assert r.quotes.yes_bid is None and r.quotes.no_ask is None
    assert r.quotes.yes_ask is not None and r.quotes.yes_ask.price == Price(300)  # 0.022 → 0.03
    assert "no bid" in r.note and "below the price bound" in r.note


def test_ask_above_price_max_is_dropped_with_a_note() -> None:
    r = quote(engine(), 0.985)  # ask 0.995 > 0.99
    assert r.quotes.yes_ask is None and r.quotes.no_bid is None
    assert r.quotes.yes_bid is not None and r.quotes.yes_bid.price == Price(9700)  # 0.975 → 0.97
    assert "no ask" in r.note and "above the price bound" in r.note


def test_bid_above_price_max_is_pulled_down_to_it() -> None:
    # mid 0.98, q = −Q_max, skew −0.05 → centre 1.03; bid 1.02 → 0.99, ask 1.04 dropped
    r = quote(engine(skew=LinearSkew(0.05)), 0.98, -1000)
    assert r.quotes.yes_bid is not None and r.quotes.yes_bid.price == Price(9900)
    assert r.quotes.yes_ask is None
    assert "no ask" in r.note


def test_ask_below_price_min_is_pulled_up_to_it() -> None:
    # mid 0.02, q = +Q_max, skew +0.05 → centre −0.03; ask −0.02 → 0.01, bid dropped
    r = quote(engine(skew=LinearSkew(0.05)), 0.02, 1000)
    assert r.quotes.yes_ask is not None and r.quotes.yes_ask.price == Price(100)
    assert r.quotes.yes_bid is None


def test_custom_price_bounds() -> None:
    eng = engine(limits=StrategyLimits(price_min=0.05, price_max=0.95))
    r = quote(eng, 0.055)  # bid 0.045 < 0.05 → dropped; ask 0.065 → 0.07
    assert units(r)[:2] == (None, 700)
    r = quote(eng, 0.945)  # ask 0.955 > 0.95 → dropped; bid 0.935 → 0.93
    assert units(r)[:2] == (9300, None)


def test_bid_with_no_grid_level_inside_bounds_is_dropped() -> None:
    # bounds 0.015..0.985 on linear_cent: a bid at 0.0195 rounds down to 0.01, below the bound
    eng = engine(limits=StrategyLimits(price_min=0.015, price_max=0.985))
    r = quote(eng, 0.0295)
    assert r.quotes.yes_bid is None
    assert "no bid" in r.note
    assert r.quotes.yes_ask is not None and r.quotes.yes_ask.price.units >= 150


# --- spread floor -------------------------------------------------------------------------------


def test_min_spread_enforced_when_calculator_returns_less() -> None:
    eng = engine(spread=FixedSpread(0.002), limits=StrategyLimits(min_spread=0.04))
    r = quote(eng, 0.50, grid=DECI)
    assert r.half_spread == pytest.approx(0.02)  # max(0.001, 0.04/2)
    assert units(r)[:2] == (4800, 5200)


# --- capacity -----------------------------------------------------------------------------------


def test_at_max_inventory_no_bid_and_the_note_says_so() -> None:
    r = quote(engine(), 0.50, 1000)
    assert r.quotes.yes_bid is None and r.quotes.no_ask is None
    assert r.quotes.yes_ask is not None and r.quotes.yes_ask.size == Quantity.contracts(200)
    assert "no bid: inventory at its limit" in r.note


def test_at_minus_max_inventory_no_ask_and_the_note_says_so() -> None:
    r = quote(engine(), 0.50, -1000)
    assert r.quotes.yes_ask is None and r.quotes.no_bid is None
    assert r.quotes.yes_bid is not None and r.quotes.yes_bid.size == Quantity.contracts(200)
    assert "no ask: inventory at its limit" in r.note


def test_fixed_sizer_capped_by_remaining_capacity() -> None:
    eng = engine(sizer=FixedSizer())
    r = quote(eng, 0.50, 990)  # bid may add at most 1000 − 990 = 10
    assert (r.bid_size, r.ask_size) == pytest.approx((10, 100))
    assert r.quotes.yes_bid is not None and r.quotes.yes_bid.size == Quantity.contracts(10)
    r = quote(eng, 0.50, -960.5)  # ask may take at most 1000 − 960.5 = 39.5
    assert r.quotes.yes_ask is not None and r.quotes.yes_ask.size == Quantity(3950)
    r = quote(eng, 0.50, 1200)  # beyond the limit: no bid at all
    assert r.quotes.yes_bid is None and r.bid_size == 0.0


def test_linear_sizer_at_the_limit_quotes_nothing() -> None:
    r = quote(engine(sizer=LinearSizer()), 0.50, 1000)
    assert r.quotes.quotes() == ()
    assert "no bid: inventory at its limit" in r.note and "no ask: inventory at its limit" in r.note


def test_sizes_floored_to_a_hundredth_of_a_contract() -> None:
    # q = 333: bid 100·(1 − 0.333) = 66.7 → 6670 units; ask 133.3 → 13330 units (never rounded up)
    r = quote(engine(), 0.50, 333)
    assert r.quotes.yes_bid is not None and r.quotes.yes_ask is not None
    assert r.quotes.yes_bid.size == Quantity(6670)
    assert r.quotes.yes_ask.size == Quantity(13330)
    r = quote(engine(), 0.50, 1 / 3)  # bid 100·(1 − 1/3000) = 99.96667 → 99.96
    assert r.quotes.yes_bid is not None and r.quotes.yes_bid.size == Quantity(9996)


# --- volatility -----------------------------------------------------------------------------------


def test_estimator_not_ready_gives_no_quotes_and_says_warming_up() -> None:
    eng = engine(volatility=EWMAVolatility(min_observations=3))
    r = quote(eng, 0.50)
    assert r.quotes == QuoteSet("KX-TEST", NOW, None, None, None, None)
    assert "warming up" in r.note
    for i, mid in enumerate((0.50, 0.51, 0.50, 0.52)):
        eng.on_mid(mid, NOW + i * 1_000_000)
    r = quote(eng, 0.50)
    assert len(r.quotes.quotes()) == 4
    assert r.volatility == eng.volatility.get_volatility() > 0


def test_volatility_override() -> None:
    eng = engine(volatility=EWMAVolatility(min_observations=3), spread=VolatilitySpread(0.02, 0.5, 60))
    r = quote(eng, 0.50, volatility=0.004)  # not ready, but the override is used
    assert r.volatility == 0.004
    assert r.half_spread == pytest.approx(0.01 + 0.5 * math.sqrt(60) * 0.004)
    assert len(r.quotes.quotes()) == 4
    fixed = engine(volatility=FixedVolatility(0.01), spread=VolatilitySpread(0.02, 0.5, 60))
    assert quote(fixed, 0.5, volatility=0.0).half_spread == pytest.approx(0.01)  # 0.0 is an override too
    assert quote(fixed, 0.5).volatility == 0.01


# --- with_component (FR-1002) -------------------------------------------------------------------


def test_with_component_swaps_exactly_one_slot() -> None:
    eng = engine()
    new_skew = LinearSkew(0.02)
    swapped = eng.with_component("skew", new_skew)
    assert swapped is not eng
    assert swapped.skew is new_skew
    assert eng.skew is not new_skew  # the original engine is untouched
    assert swapped.volatility is eng.volatility
    assert swapped.reservation_price is eng.reservation_price
    assert swapped.spread is eng.spread
    assert swapped.sizer is eng.sizer
    assert swapped.limits is eng.limits


@pytest.mark.parametrize(
    ("slot", "component"),
    [
        ("volatility", FixedVolatility(0.001)),
        ("reservation_price", LinearAdjustment()),
        ("spread", InventorySpread()),
        ("sizer", FixedSizer()),
    ],
)
def test_with_component_every_slot(slot: str, component: object) -> None:
    eng = engine()
    swapped = eng.with_component(slot, component)  # type: ignore[arg-type]
    for other in ("volatility", "reservation_price", "skew", "spread", "sizer"):
        if other == slot:
            assert getattr(swapped, other) is component
        else:
            assert getattr(swapped, other) is getattr(eng, other)


@pytest.mark.parametrize(
    ("slot", "component"),
    [("skew", FixedSpread()), ("volatility", LinearSkew()), ("sizer", "asymmetric"), ("spread", None)],
)
def test_with_component_type_checks(slot: str, component: object) -> None:
    with pytest.raises(TypeError, match=f"a {slot} component must be"):
        engine().with_component(slot, component)  # type: ignore[arg-type]


def test_with_component_transfer_state_carries_the_estimator_state() -> None:
    old = EWMAVolatility(min_observations=2)
    eng = engine(volatility=old)
    for i, mid in enumerate((0.50, 0.52, 0.51, 0.55)):
        eng.on_mid(mid, NOW + i * 1_000_000)
    new = EWMAVolatility(min_observations=2)
    swapped = eng.with_component("volatility", new, transfer_state=True)
    assert swapped.volatility is new
    assert new.get_state() == old.get_state()
    assert quote(swapped, 0.5).volatility == quote(eng, 0.5).volatility
    # into a realized estimator: the EWMA rate is its prior, so it quotes at once
    realized = RealizedVolatility(min_observations=5)
    r = quote(eng.with_component("volatility", realized, transfer_state=True), 0.5)
    assert r.volatility == pytest.approx(old.get_volatility())
    # without transfer_state the new estimator starts empty
    fresh = EWMAVolatility(min_observations=2)
    assert "warming up" in quote(eng.with_component("volatility", fresh), 0.5).note
