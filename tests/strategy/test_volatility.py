"""Volatility estimators (FR-301, FR-411): hand-computed EWMA and realized variance rates, warm-up,
time rules, and state transfer between kinds (FR-1002).

Units: mids in dollars, timestamps in µs, σ in dollars/√s, variance rates in dollars²/s.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest

from mm.strategy.volatility import EWMAVolatility, FixedVolatility, RealizedVolatility

T0 = 1_700_000_000_000_000  # an arbitrary epoch timestamp, µs
S = 1_000_000  # µs per second


def feed(estimator: EWMAVolatility | RealizedVolatility, points: Sequence[tuple[float, float]]) -> None:
    """Feed (seconds after T0, mid) pairs."""
    for seconds, mid in points:
        estimator.update(mid, T0 + round(seconds * S))


# Mids: 0.50 @ 0 s, 0.52 @ 1 s, 0.51 @ 3 s, 0.55 @ 3.5 s
POINTS = [(0.0, 0.50), (1.0, 0.52), (3.0, 0.51), (3.5, 0.55)]


# --- EWMA ---------------------------------------------------------------------------------------


def test_ewma_hand_computed_variance_rate() -> None:
    e = EWMAVolatility(alpha=0.94, min_observations=1)
    e.update(0.50, T0)
    assert e.get_volatility() == 0.0  # one mid, no change yet
    e.update(0.52, T0 + 1 * S)
    # first change initialises directly: S = 0.02² = 0.0004, D = 1 s → rate 0.0004, σ = 0.02
    assert e.variance_rate() == pytest.approx(0.0004, rel=1e-12)
    assert e.get_volatility() == pytest.approx(0.02, rel=1e-12)
    e.update(0.51, T0 + 3 * S)
    # Δ = −0.01, Δt = 2: S = 0.94·0.0004 + 0.06·0.0001 = 0.000376 + 0.000006 = 0.000382
    #                    D = 0.94·1 + 0.06·2 = 1.06           → rate = 0.000382 / 1.06
    assert e.variance_rate() == pytest.approx(0.000382 / 1.06, rel=1e-12)
    e.update(0.55, T0 + 3_500_000)
    # Δ = 0.04, Δt = 0.5: S = 0.94·0.000382 + 0.06·0.0016 = 0.00035908 + 0.000096 = 0.00045508
    #                     D = 0.94·1.06 + 0.06·0.5 = 0.9964 + 0.03 = 1.0264
    assert e.variance_rate() == pytest.approx(0.00045508 / 1.0264, rel=1e-12)
    assert e.get_volatility() == pytest.approx(math.sqrt(0.00045508 / 1.0264), rel=1e-12)
    state = e.get_state()
    assert state["sum_sq"] == pytest.approx(0.00045508, rel=1e-12)
    assert state["sum_dt"] == pytest.approx(1.0264, rel=1e-12)
    assert state["observations"] == 3
    assert state["last_mid"] == 0.55
    assert state["last_ts_us"] == T0 + 3_500_000


def test_ewma_alpha_is_the_weight_of_history() -> None:
    # alpha 0.5, changes 0.02 over 1 s then 0.0 over 1 s: S = 0.5·0.0004 + 0.5·0 = 0.0002, D = 0.5·1 + 0.5·1 = 1
    e = EWMAVolatility(alpha=0.5, min_observations=1)
    feed(e, [(0, 0.50), (1, 0.52), (2, 0.52)])
    assert e.variance_rate() == pytest.approx(0.0002, rel=1e-12)


@pytest.mark.parametrize("alpha", [0.0, 1.0, -0.1, 1.5])
def test_ewma_alpha_outside_open_unit_interval_rejected(alpha: float) -> None:
    with pytest.raises(ValueError, match=r"must be in \(0, 1\)"):
        EWMAVolatility(alpha=alpha)


def test_ewma_warm_up_without_initial_volatility() -> None:
    e = EWMAVolatility(min_observations=3)
    assert not e.is_ready()
    assert e.get_volatility() == 0.0  # no data at all
    e.update(0.50, T0)
    e.update(0.52, T0 + S)
    e.update(0.51, T0 + 3 * S)
    assert not e.is_ready()  # two changes of three
    e.update(0.55, T0 + 3_500_000)
    assert e.is_ready()
    assert e.get_volatility() == pytest.approx(math.sqrt(0.00045508 / 1.0264), rel=1e-12)


def test_ewma_initial_volatility_served_during_warm_up() -> None:
    e = EWMAVolatility(min_observations=3, initial_volatility=0.004)
    assert e.is_ready()  # the prior makes it quotable at once
    assert e.get_volatility() == 0.004
    feed(e, POINTS[:3])  # two changes: still the prior
    assert e.get_volatility() == 0.004
    feed(e, POINTS[3:])  # third change: its own estimate
    assert e.get_volatility() == pytest.approx(math.sqrt(0.00045508 / 1.0264), rel=1e-12)


def test_ewma_time_going_backwards_raises() -> None:
    e = EWMAVolatility(min_observations=1)
    e.update(0.50, T0 + 10 * S)
    with pytest.raises(ValueError, match="back in time"):
        e.update(0.60, T0 + 5 * S)


def test_rejected_backwards_update_leaves_state_unchanged() -> None:
    """A refused observation must not become the reference point of the next change."""
    for est in (EWMAVolatility(min_observations=1), RealizedVolatility(min_observations=1)):
        est.update(0.50, T0 + 10 * S)
        before = est.get_state()
        with pytest.raises(ValueError):
            est.update(0.60, T0 + 5 * S)
        assert est.get_state() == before
        est.update(0.50, T0 + 11 * S)
        # the mid did not move between the two accepted observations (0.50 → 0.50): σ = 0
        assert est.get_volatility() == 0.0


def test_ewma_same_timestamp_counts_with_dt_floor() -> None:
    e = EWMAVolatility(min_observations=2)
    e.update(0.50, T0)
    e.update(0.51, T0)  # Δt = 0 → floored to 1e-6 s: rate = 0.0001 / 1e-6 = 100
    assert e.get_state()["observations"] == 1
    assert e.variance_rate() == pytest.approx(0.0001 / 1e-6, rel=1e-9)
    e.update(0.51, T0)  # a second same-timestamp update still counts
    assert e.is_ready()
    # S = 0.94·0.0001 + 0.06·0 = 0.000094, D = 0.94e-6 + 0.06e-6 = 1e-6
    assert e.variance_rate() == pytest.approx(0.000094 / 1e-6, rel=1e-9)


# --- realized -----------------------------------------------------------------------------------


def test_realized_hand_computed_window_and_eviction() -> None:
    r = RealizedVolatility(window_seconds=10, min_observations=2)
    feed(r, [(0, 0.50), (2, 0.52)])  # sample @2 s: Δ² = 0.0004, Δt = 2
    assert not r.is_ready()
    assert r.variance_rate() == pytest.approx(0.0004 / 2, rel=1e-12)
    feed(r, [(4, 0.51)])  # sample @4 s: Δ² = 0.0001, Δt = 2 → (0.0004 + 0.0001) / 4
    assert r.is_ready()
    assert r.variance_rate() == pytest.approx(0.0005 / 4, rel=1e-12)
    feed(r, [(13, 0.55)])  # sample @13 s: Δ² = 0.0016, Δt = 9; cutoff 3 s evicts the @2 s sample
    # window: @4 (0.0001, 2) and @13 (0.0016, 9) → 0.0017 / 11
    assert r.variance_rate() == pytest.approx(0.0017 / 11, rel=1e-12)
    assert r.get_volatility() == pytest.approx(math.sqrt(0.0017 / 11), rel=1e-12)
    assert [s[0] for s in r.get_state()["samples"]] == [T0 + 4 * S, T0 + 13 * S]
    feed(r, [(30, 0.55)])  # cutoff 20 s evicts both; only @30 (0, 17) is left
    assert len(r.get_state()["samples"]) == 1
    assert not r.is_ready()  # one sample of the two required


def test_realized_sample_exactly_at_the_cutoff_is_kept() -> None:
    r = RealizedVolatility(window_seconds=10, min_observations=1)
    feed(r, [(0, 0.50), (2, 0.52), (12, 0.52)])  # cutoff = 2 s: the @2 s sample is not older than it
    # (0.0004 + 0) / (2 + 10)
    assert r.variance_rate() == pytest.approx(0.0004 / 12, rel=1e-12)


def test_realized_resets_exactly_when_old_samples_age_out() -> None:
    """After every earlier sample has left the window the sums hold exactly the new sample: a mid that
    sat still for a whole window has σ exactly 0, with no residue from repeated float subtraction."""
    # These mids leave a residue of ~1.2e-17 dollars² if the sums are only ever decremented.
    mids = [0.3537, 0.639, 0.6055, 0.402, 0.4982]
    r = RealizedVolatility(window_seconds=10, min_observations=1)
    feed(r, [(i, m) for i, m in enumerate(mids)])
    feed(r, [(100, 0.4982)])  # all four earlier samples age out; the new one is (Δ² = 0, Δt = 96)
    assert r.variance_rate() == 0.0
    assert r.get_volatility() == 0.0


def test_realized_time_going_backwards_raises() -> None:
    r = RealizedVolatility()
    r.update(0.5, T0 + 10 * S)
    with pytest.raises(ValueError, match="back in time"):
        r.update(0.5, T0 + 9 * S)


def test_realized_same_timestamp_uses_dt_floor() -> None:
    r = RealizedVolatility(min_observations=1)
    feed(r, [(0, 0.50), (0, 0.51)])
    assert r.is_ready()
    assert r.variance_rate() == pytest.approx(0.0001 / 1e-6, rel=1e-9)


def test_realized_rejects_non_positive_window() -> None:
    with pytest.raises(ValueError, match="window_seconds"):
        RealizedVolatility(window_seconds=0)


# --- fixed --------------------------------------------------------------------------------------


def test_fixed_volatility() -> None:
    f = FixedVolatility(0.003)
    assert f.is_ready()
    assert f.get_volatility() == 0.003
    f.update(0.9, T0)
    f.update(0.1, T0 + S)
    assert f.get_volatility() == 0.003
    assert f.get_state() == {"kind": "fixed", "variance_rate": pytest.approx(0.003**2)}
    with pytest.raises(ValueError):
        FixedVolatility(-0.001)


# --- state transfer (FR-1002) -------------------------------------------------------------------

LATER = [(5, 0.53), (6, 0.53), (9, 0.49), (9.25, 0.50), (12, 0.58)]


def test_ewma_to_ewma_behaves_identically_afterwards() -> None:
    a = EWMAVolatility(min_observations=2)
    feed(a, POINTS)
    b = EWMAVolatility(min_observations=2)
    b.set_state(a.get_state())
    assert b.get_state() == a.get_state()
    assert b.get_volatility() == a.get_volatility()
    for seconds, mid in LATER:
        a.update(mid, T0 + round(seconds * S))
        b.update(mid, T0 + round(seconds * S))
        assert b.get_volatility() == a.get_volatility()
        assert b.is_ready() == a.is_ready()


def test_realized_to_realized_behaves_identically_afterwards() -> None:
    # dyadic mids and whole seconds: every sum is exact, so "identical" can be asserted bit for bit
    points = [(0, 0.5), (2, 0.625), (4, 0.5), (13, 0.75), (15, 0.5)]  # the @2 s sample is evicted at 13 s
    a = RealizedVolatility(window_seconds=10, min_observations=2)
    feed(a, points)
    b = RealizedVolatility(window_seconds=10, min_observations=2)
    b.set_state(a.get_state())
    assert b.get_state() == a.get_state()
    assert b.get_volatility() == a.get_volatility()
    for seconds, mid in [(16, 0.625), (20, 0.625), (27, 0.375), (40, 0.5)]:
        a.update(mid, T0 + seconds * S)
        b.update(mid, T0 + seconds * S)
        assert b.get_volatility() == a.get_volatility()
        assert b.is_ready() == a.is_ready()


def test_realized_with_a_prior_to_realized_keeps_the_prior() -> None:
    """ewma → realized → realized (e.g. a window change) during the new window's warm-up must not
    lose the inherited rate: the second estimator would otherwise stop quoting (not ready)."""
    e = EWMAVolatility(min_observations=2)
    feed(e, POINTS)
    a = RealizedVolatility(min_observations=3)
    a.set_state(e.get_state())
    b = RealizedVolatility(min_observations=3)
    b.set_state(a.get_state())
    assert b.is_ready()
    assert b.get_volatility() == a.get_volatility() == e.get_volatility()


def test_realized_to_ewma_seeds_the_rate() -> None:
    r = RealizedVolatility(window_seconds=300, min_observations=3)
    feed(r, POINTS)  # 3 samples: (0.0004, 1), (0.0001, 2), (0.0016, 0.5) → 0.0021 / 3.5 = 0.0006
    assert r.variance_rate() == pytest.approx(0.0006, rel=1e-12)
    e = EWMAVolatility(alpha=0.94, min_observations=3)
    e.set_state(r.get_state())
    assert e.is_ready()  # 3 observations carried over
    assert e.get_volatility() == pytest.approx(math.sqrt(0.0006), rel=1e-12)
    # seeded as S = 0.0006 over D = 1 s; next change 0.55 → 0.53 over 0.5 s (Δ² = 0.0004):
    # S = 0.94·0.0006 + 0.06·0.0004 = 0.000564 + 0.000024 = 0.000588; D = 0.94 + 0.03 = 0.97
    e.update(0.53, T0 + 4 * S)
    assert e.variance_rate() == pytest.approx(0.000588 / 0.97, rel=1e-12)


def test_realized_to_ewma_not_ready_if_too_few_observations() -> None:
    r = RealizedVolatility(min_observations=1)
    feed(r, POINTS[:2])  # one observation
    e = EWMAVolatility(min_observations=5)
    e.set_state(r.get_state())
    assert not e.is_ready()


def test_ewma_to_realized_uses_prior_until_own_window_is_ready() -> None:
    e = EWMAVolatility(min_observations=2)
    feed(e, POINTS)
    prior = e.get_volatility()
    r = RealizedVolatility(window_seconds=300, min_observations=3)
    r.set_state(e.get_state())
    assert r.is_ready()
    assert r.get_volatility() == prior
    # the last mid (0.55 @ 3.5 s) carries over, so the first update already makes a sample
    r.update(0.53, T0 + 4 * S)  # (0.0004, 0.5)
    assert r.get_volatility() == prior
    r.update(0.53, T0 + 5 * S)  # (0, 1)
    assert r.get_volatility() == prior
    r.update(0.50, T0 + 7 * S)  # (0.0009, 2): three own samples → own rate 0.0013 / 3.5
    assert r.get_volatility() == pytest.approx(math.sqrt(0.0013 / 3.5), rel=1e-12)


def test_fixed_ignores_set_state() -> None:
    e = EWMAVolatility(min_observations=1)
    feed(e, POINTS)
    f = FixedVolatility(0.001)
    f.set_state(e.get_state())
    assert f.get_volatility() == 0.001
    assert f.get_state() == {"kind": "fixed", "variance_rate": pytest.approx(1e-6)}


def test_fixed_to_ewma_and_realized() -> None:
    f = FixedVolatility(0.002)
    e = EWMAVolatility(min_observations=1)
    e.set_state(f.get_state())
    assert not e.is_ready()  # a fixed estimator observed nothing: observations = 0, no last mid
    assert e.variance_rate() == pytest.approx(0.002**2, rel=1e-12)  # seeded as 4e-6 over 1 s
    # "fixed has no state to carry": with 0 observations inherited, the first change initialises S, D
    # directly (S = 0.01² = 0.0001, D = 1 s), exactly as in a fresh estimator
    feed(e, [(0, 0.50), (1, 0.51)])
    assert e.get_state()["observations"] == 1
    assert e.variance_rate() == pytest.approx(0.0001, rel=1e-12)
    r = RealizedVolatility(min_observations=1)
    r.set_state(f.get_state())
    assert r.is_ready()
    assert r.get_volatility() == pytest.approx(0.002, rel=1e-12)


def test_an_inherited_prior_does_not_come_back_after_a_quiet_gap() -> None:
    ewma = EWMAVolatility(min_observations=1)
    ewma.update(0.50, 0)
    ewma.update(0.52, 1_000_000)
    realized = RealizedVolatility(window_seconds=10, min_observations=3)
    realized.set_state(ewma.get_state())
    assert realized.is_ready()  # warming up on the inherited rate
    for i in range(1, 5):  # four own changes, one per second
        realized.update(0.50 + 0.001 * (i % 2), 1_000_000 + i * 1_000_000)
    assert realized.is_ready() and realized.get_volatility() > 0
    realized.update(0.50, 60_000_000)  # 55 s of silence: the window holds one sample
    assert not realized.is_ready()
