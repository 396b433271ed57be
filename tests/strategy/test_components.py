"""Reservation price, skew, spread and sizer components (FR-401, FR-403, FR-412–415) on hand-computed values.

Units: dollars for prices, shifts, skews and half-spreads; σ in dollars/√s; T in seconds; q in contracts.
"""

from __future__ import annotations

import itertools
import math

import pytest

from mm.strategy.base import SizingContext, normalised_inventory
from mm.strategy.reservation import AvellanedaStoikov, Horizon, LinearAdjustment, SimpleMidPrice
from mm.strategy.sizing import AsymmetricSizer, FixedSizer, KellySizer, LinearSizer
from mm.strategy.skew import AdaptiveSkew, ExponentialSkew, LinearSkew, NoSkew
from mm.strategy.spread import AvellanedaStoikovSpread, FixedSpread, InventorySpread, TimeDecaySpread, VolatilitySpread

QMAX = 1000.0
approx = pytest.approx


# --- normalised inventory -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("q", "qmax", "expected"),
    [(300, 1000, 0.3), (-300, 1000, -0.3), (1000, 1000, 1.0), (2500, 1000, 1.0), (-2500, 1000, -1.0), (5, 0, 0.0)],
)
def test_normalised_inventory(q: float, qmax: float, expected: float) -> None:
    assert normalised_inventory(q, qmax) == approx(expected)


# --- reservation price: Avellaneda–Stoikov --------------------------------------------------------


@pytest.mark.parametrize(
    ("horizon", "t", "expected"),
    [
        # q̂ = 0.3, γ = 0.1, σ = 0.005 → q̂·γ·σ² = 0.3·0.1·2.5e-5 = 7.5e-7 per second of τ
        ("settlement_risk", 3600, 0.5 - 7.5e-7 * 3600),  # τ = 3600²/3600 = 3600 → shift 0.0027 → 0.4973
        ("settlement_risk", 1800, 0.5 - 7.5e-7 * 7200),  # τ = 3600²/1800 = 7200 → 0.0054 → 0.4946
        ("settlement_risk", 7200, 0.5 - 7.5e-7 * 1800),  # τ = 3600²/7200 = 1800 → 0.00135 → 0.49865
        ("time_to_settlement", 1800, 0.5 - 7.5e-7 * 1800),  # τ = T = 1800 → 0.00135 → 0.49865
        ("time_to_settlement", 600, 0.5 - 7.5e-7 * 600),  # τ = 600 → 0.00045 → 0.49955
        ("fixed", 1800, 0.5 - 7.5e-7 * 3600),  # τ = H = 3600 → 0.0027 → 0.4973
        ("fixed", 10, 0.5 - 7.5e-7 * 3600),  # τ = H whatever T
    ],
)
def test_avellaneda_stoikov_horizons(horizon: Horizon, t: float, expected: float) -> None:
    a = AvellanedaStoikov(gamma=0.1, horizon=horizon, horizon_seconds=3600, min_time_seconds=60)
    assert a.calculate(0.5, 300, 0.005, t, QMAX) == approx(expected, rel=1e-12)


def test_avellaneda_stoikov_effective_horizon() -> None:
    a = AvellanedaStoikov(horizon="settlement_risk", horizon_seconds=3600, min_time_seconds=60)
    assert a.effective_horizon(3600) == approx(3600)
    assert a.effective_horizon(900) == approx(14400)  # 3600² / 900
    assert a.effective_horizon(30) == approx(216000)  # T floored at 60: 3600² / 60
    assert a.effective_horizon(0) == approx(216000)
    t = AvellanedaStoikov(horizon="time_to_settlement")
    assert t.effective_horizon(-5) == 0.0
    assert AvellanedaStoikov(horizon="fixed", horizon_seconds=1234).effective_horizon(1) == 1234


def test_avellaneda_stoikov_settlement_risk_floor_and_clamp() -> None:
    a = AvellanedaStoikov(gamma=0.1, horizon="settlement_risk", horizon_seconds=3600, min_time_seconds=60)
    # T = 10 < T_min: τ = 3600²/60 = 216000 → raw shift 7.5e-7·216000 = 0.162 → clamped to max_shift 0.05
    assert a.calculate(0.5, 300, 0.005, 10, QMAX) == approx(0.45)
    assert a.calculate(0.5, 300, 0.005, 0, QMAX) == approx(0.45)  # T = 0: no division by zero


def test_avellaneda_stoikov_max_shift_clamp_both_signs() -> None:
    a = AvellanedaStoikov(gamma=0.1, horizon="fixed", horizon_seconds=3600, max_shift=0.05)
    # q̂ = ±1, σ = 0.02: raw = 1·0.1·0.0004·3600 = 0.144 > 0.05
    assert a.calculate(0.5, 1000, 0.02, 100, QMAX) == approx(0.45)
    assert a.calculate(0.5, -1000, 0.02, 100, QMAX) == approx(0.55)
    assert a.shift(1000, 0.02, 100, QMAX) == approx(-0.05)
    assert a.shift(-1000, 0.02, 100, QMAX) == approx(0.05)
    small = AvellanedaStoikov(gamma=0.1, horizon="fixed", horizon_seconds=3600, max_shift=0.005)
    # q̂ = 0.3, σ = 0.005: raw 0.0027 < 0.005 → not clamped; σ = 0.01: raw 0.0108 → clamped to 0.005
    assert small.shift(300, 0.005, 0, QMAX) == approx(-0.0027)
    assert small.shift(300, 0.01, 0, QMAX) == approx(-0.005)


def test_avellaneda_stoikov_zero_volatility_and_zero_time() -> None:
    horizons: tuple[Horizon, ...] = ("settlement_risk", "time_to_settlement", "fixed")
    for horizon in horizons:
        a = AvellanedaStoikov(horizon=horizon)
        assert a.calculate(0.37, 800, 0.0, 1800, QMAX) == 0.37  # σ = 0 → r = s
        r = a.calculate(0.37, 800, 0.004, 0.0, QMAX)  # T = 0: finite
        assert math.isfinite(r)
    assert AvellanedaStoikov(horizon="time_to_settlement").calculate(0.37, 800, 0.004, 0.0, QMAX) == 0.37


def test_avellaneda_stoikov_inventory_beyond_limit_is_clamped() -> None:
    a = AvellanedaStoikov(gamma=0.1, horizon="fixed", horizon_seconds=3600, max_shift=0.05)
    # q̂ = 1: 1·0.1·2.5e-5·3600 = 0.009 (below the clamp) — and q = 5000 gives the same
    assert a.calculate(0.5, 1000, 0.005, 0, QMAX) == approx(0.491)
    assert a.calculate(0.5, 5000, 0.005, 0, QMAX) == approx(0.491)
    assert a.calculate(0.5, -5000, 0.005, 0, QMAX) == approx(0.509)


def test_avellaneda_stoikov_rejects_non_positive_params() -> None:
    for kwargs in ({"gamma": 0}, {"horizon_seconds": 0}, {"min_time_seconds": -1}, {"max_shift": 0}):
        with pytest.raises(ValueError):
            AvellanedaStoikov(**kwargs)  # type: ignore[arg-type]


# FR-401's acceptance criteria, for the default settlement_risk horizon.
SR = AvellanedaStoikov(gamma=0.1, horizon="settlement_risk", horizon_seconds=3600, min_time_seconds=60)


def test_fr401_shifts_down_when_long_up_when_short() -> None:
    assert SR.calculate(0.5, 300, 0.004, 1800, QMAX) < 0.5
    assert SR.calculate(0.5, -300, 0.004, 1800, QMAX) > 0.5
    assert SR.calculate(0.5, 0, 0.004, 1800, QMAX) == 0.5


def test_fr401_effect_grows_as_settlement_nears() -> None:
    # σ = 0.002 keeps every shift below the clamp: at T = 60, 0.3·0.1·4e-6·216000 = 0.02592 < 0.05
    shifts = [0.5 - SR.calculate(0.5, 300, 0.002, t, QMAX) for t in (7200, 3600, 1800, 600, 60)]
    assert all(later > earlier > 0 for earlier, later in itertools.pairwise(shifts))
    assert shifts[-1] == approx(0.3 * 0.1 * 0.002**2 * 216000)


def test_fr401_effect_grows_with_volatility() -> None:
    shifts = [0.5 - SR.calculate(0.5, 300, s, 1800, QMAX) for s in (0.0, 0.001, 0.002, 0.004)]
    assert shifts[0] == 0.0
    assert all(later > earlier for earlier, later in itertools.pairwise(shifts))
    short = [SR.calculate(0.5, -300, s, 1800, QMAX) - 0.5 for s in (0.001, 0.002, 0.004)]
    assert all(later > earlier > 0 for earlier, later in itertools.pairwise(short))


# --- reservation price: simple mid, linear ---------------------------------------------------------


def test_simple_mid() -> None:
    assert SimpleMidPrice().calculate(0.42, 900, 0.02, 0, QMAX) == 0.42


def test_linear_adjustment() -> None:
    lin = LinearAdjustment(k=0.00001)
    assert lin.calculate(0.5, 300, 0.01, 60, QMAX) == approx(0.497)  # 0.5 − 0.00001·300
    assert lin.calculate(0.5, -300, 0.01, 60, QMAX) == approx(0.503)
    assert lin.calculate(0.5, 3000, 0.01, 60, QMAX) == approx(0.47)  # not clamped to Q_max: k per contract
    with pytest.raises(ValueError):
        LinearAdjustment(k=-1)


# --- skew -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("q", "expected"),
    [(300, 0.003), (-300, -0.003), (0, 0.0), (1000, 0.01), (2000, 0.01), (-2000, -0.01)],  # 0.01·q̂
)
def test_linear_skew(q: float, expected: float) -> None:
    assert LinearSkew(0.01).calculate(q, QMAX, 0.004) == approx(expected)


@pytest.mark.parametrize(
    ("q", "expected"),
    [(300, 0.0009), (-300, -0.0009), (500, 0.0025), (-1000, -0.01), (0, 0.0)],  # 0.01·sign(q̂)·q̂²
)
def test_exponential_skew(q: float, expected: float) -> None:
    assert ExponentialSkew(0.01).calculate(q, QMAX, 0.004) == approx(expected)


def test_adaptive_skew() -> None:
    adaptive = AdaptiveSkew(intensity=0.01, reference_volatility=0.005)
    linear = LinearSkew(0.01)
    for q in (-1000, -300, 0, 300, 700):
        assert adaptive.calculate(q, QMAX, 0.005) == approx(linear.calculate(q, QMAX, 0.005))  # σ = σ_ref
    assert adaptive.calculate(300, QMAX, 0.01) == approx(0.006)  # 0.01·0.3·(0.01/0.005)
    assert adaptive.calculate(-300, QMAX, 0.0025) == approx(-0.0015)  # 0.01·(−0.3)·0.5
    assert adaptive.calculate(300, QMAX, 0.0) == 0.0
    with pytest.raises(ValueError):
        AdaptiveSkew(reference_volatility=0)


def test_no_skew() -> None:
    assert NoSkew().calculate(1000, QMAX, 0.02) == 0.0
    assert NoSkew().calculate(-1000, QMAX, 0.02) == 0.0


# --- spread ---------------------------------------------------------------------------------------


def test_fixed_spread() -> None:
    assert FixedSpread(0.02).calculate(0.01, 900, QMAX, 5) == approx(0.01)


def test_volatility_spread() -> None:
    v = VolatilitySpread(base_spread=0.02, vol_multiplier=0.5, vol_horizon_seconds=60)
    assert v.calculate(0.0, 0, QMAX, 100) == approx(0.01)
    # 0.01 + 0.5·√60·0.004 = 0.01 + 0.5·7.745966692·0.004 = 0.01 + 0.0154919334 = 0.0254919334
    assert v.calculate(0.004, 0, QMAX, 100) == approx(0.0254919334, rel=1e-9)
    v2 = VolatilitySpread(base_spread=0.04, vol_multiplier=1, vol_horizon_seconds=100)
    assert v2.calculate(0.003, 500, QMAX, 100) == approx(0.02 + 1 * 10 * 0.003)  # 0.05


@pytest.mark.parametrize(("q", "expected"), [(0, 0.01), (300, 0.013), (-300, 0.013), (-1000, 0.02), (5000, 0.02)])
def test_inventory_spread(q: float, expected: float) -> None:
    assert InventorySpread(0.02).calculate(0.004, q, QMAX, 100) == approx(expected)  # 0.01·(1 + |q̂|)


@pytest.mark.parametrize(
    ("t", "expected"),
    [
        (3600, 0.01),  # T = H → base/2
        (900, 0.02),  # 0.01·√(3600/900) = 0.01·2
        (14400, 0.005),  # 0.01·√(1/4): narrower far from settlement
        (60, 0.01 * math.sqrt(60)),  # 0.0774596669
        (30, 0.01 * math.sqrt(60)),  # floored at min_time 60
        (0, 0.01 * math.sqrt(60)),
    ],
)
def test_time_decay_spread(t: float, expected: float) -> None:
    s = TimeDecaySpread(base_spread=0.02, horizon_seconds=3600, min_time_seconds=60)
    assert s.calculate(0.004, 0, QMAX, t) == approx(expected, rel=1e-12)


def test_time_decay_spread_rejects_bad_params() -> None:
    with pytest.raises(ValueError):
        TimeDecaySpread(horizon_seconds=0)
    with pytest.raises(ValueError):
        TimeDecaySpread(min_time_seconds=0)


def test_avellaneda_stoikov_spread() -> None:
    s = AvellanedaStoikovSpread(gamma=0.1, k=100, horizon_seconds=3600)
    arrival = 20 * math.log(1.001)  # (2/γ)·ln(1 + γ/κ) = 20·0.000999500333 = 0.01999000666
    assert arrival == approx(0.01999000666, rel=1e-9)
    # T = 1800, σ = 0.005: γσ²τ = 0.1·2.5e-5·1800 = 0.0045 → (0.0045 + 0.01999000666)/2 = 0.01224500333
    assert s.calculate(0.005, 0, QMAX, 1800) == approx(0.01224500333, rel=1e-9)
    # T = 7200 → τ capped at 3600: 0.009 + 0.01999000666 = 0.02899000666 → 0.01449500333
    assert s.calculate(0.005, 0, QMAX, 7200) == approx(0.01449500333, rel=1e-9)
    # σ = 0 or T ≤ 0: only the arrival term
    assert s.calculate(0.0, 0, QMAX, 1800) == approx(arrival / 2)
    assert s.calculate(0.005, 0, QMAX, -5) == approx(arrival / 2)
    with pytest.raises(ValueError):
        AvellanedaStoikovSpread(gamma=0)
    with pytest.raises(ValueError):
        AvellanedaStoikovSpread(k=0)


# --- sizers ---------------------------------------------------------------------------------------


def test_asymmetric_sizer_fr403_worked_example() -> None:
    # bid = 100·max(0, 1 − 300/1000) = 70; ask = 100·max(0, 1 + 300/1000) = 130
    bid, ask = AsymmetricSizer().calculate(300, 1000, 100)
    assert (bid, ask) == approx((70, 130))


@pytest.mark.parametrize(
    ("q", "bid", "ask"),
    [(0, 100, 100), (500, 50, 150), (1000, 0, 200), (-500, 150, 50), (-1000, 200, 0)],  # FR-403's table
)
def test_asymmetric_sizer_fr403_table(q: float, bid: float, ask: float) -> None:
    assert AsymmetricSizer().calculate(q, 1000, 100) == approx((bid, ask))


def test_asymmetric_sizer_beyond_limit_floors_at_zero_and_caps_at_twice_base() -> None:
    assert AsymmetricSizer().calculate(1500, 1000, 100) == approx((0, 200))
    assert AsymmetricSizer().calculate(-1500, 1000, 100) == approx((200, 0))


@pytest.mark.parametrize(("q", "size"), [(0, 100), (300, 70), (-300, 70), (1000, 0), (-2000, 0)])  # 100·(1 − |q̂|)
def test_linear_sizer(q: float, size: float) -> None:
    assert LinearSizer().calculate(q, 1000, 100) == approx((size, size))


def test_fixed_sizer() -> None:
    assert FixedSizer().calculate(900, 1000, 100) == (100, 100)
    assert FixedSizer().calculate(-1000, 1000, 25) == (25, 25)


def test_kelly_sizer_hand_computed() -> None:
    k = KellySizer(fraction=0.25)
    # r = 0.3, δ = 0.05: bid b = 0.25, f = δ/(1 − b) = 0.05/0.75 = 1/15, size = 0.25·(1/15)·1000/0.25 = 66.667
    #                    ask a = 0.35, f = δ/a = 0.05/0.35 = 1/7, price 1 − a = 0.65 → 0.25·(1/7)·1000/0.65 = 54.945
    bid, ask = k.calculate(0, 1000, 100, SizingContext(0.3, 0.05))
    assert bid == approx(1000 / 15)
    assert ask == approx(250 / 7 / 0.65)
    # with q = +300 the asymmetric factors 0.7 / 1.3 apply
    bid, ask = k.calculate(300, 1000, 100, SizingContext(0.3, 0.05))
    assert bid == approx(0.7 * 1000 / 15)
    assert ask == approx(1.3 * 250 / 7 / 0.65)


def test_kelly_sizer_without_context_falls_back_to_asymmetric() -> None:
    assert KellySizer().calculate(300, 1000, 100) == approx((70, 130))
    assert KellySizer().calculate(-1000, 1000, 100) == approx((200, 0))


def test_kelly_sizer_caps_at_twice_base() -> None:
    k = KellySizer(fraction=0.25)
    # r = 0.5, δ = 0.3: bid 0.2, f = 0.3/0.8 = 0.375, raw = 0.25·0.375·1000/0.2 = 468.75 → capped at 200
    assert k.calculate(0, 1000, 100, SizingContext(0.5, 0.3)) == approx((200, 200))


@pytest.mark.parametrize("q", [-1000, -800, -300, 0, 300, 800, 1000])
@pytest.mark.parametrize(("r", "delta"), [(0.03, 0.01), (0.5, 0.1), (0.97, 0.01), (0.5, 0.3)])
def test_kelly_sizer_never_above_twice_base_after_inventory_scaling(q: float, r: float, delta: float) -> None:
    """FR-403 (sizes up to 2× base) and the docstring ("scaled by the asymmetric factors and capped at
    2 × base"): the cap applies to the final size, not to the Kelly size before the (1 ∓ q̂) factor.
    E.g. r = 0.03, δ = 0.01, q = −1000: bid 0.02, raw 0.25·(0.01/0.98)·1000/0.02 = 127.55, ×2 = 255.1."""
    bid, ask = KellySizer(fraction=0.25).calculate(q, 1000, 100, SizingContext(r, delta))
    assert 0 <= bid <= 200
    assert 0 <= ask <= 200


def test_kelly_sizer_no_size_for_prices_outside_the_unit_interval() -> None:
    k = KellySizer()
    bid, ask = k.calculate(0, 1000, 100, SizingContext(0.02, 0.05))  # bid −0.03 → no bid
    assert bid == 0.0
    assert ask > 0
    bid, ask = k.calculate(0, 1000, 100, SizingContext(0.98, 0.05))  # ask 1.03 → no ask
    assert ask == 0.0
    assert bid > 0
    with pytest.raises(ValueError):
        KellySizer(fraction=0)
    with pytest.raises(ValueError):
        KellySizer(fraction=1.5)
