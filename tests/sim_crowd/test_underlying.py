"""The seeded index: determinism, chunking independence, volatility, jumps and the settlement average."""

from __future__ import annotations

import itertools
import math
import statistics
from decimal import Decimal

import pytest

from mm.sim.underlying import SECONDS_PER_YEAR, Underlying, UnderlyingConfig

T0 = 1_786_650_000_000_000  # 2026-08-13T19:40:00Z, µs
S = 1_000_000


def path(u: Underlying, seconds: int) -> list[float]:
    return [u.price_at(T0 + k * S) for k in range(seconds + 1)]


def log_returns(prices: list[float]) -> list[float]:
    return [math.log(b / a) for a, b in itertools.pairwise(prices)]


def run(config: UnderlyingConfig, seed: int, seconds: int) -> list[float]:
    """Advance second by second (the history only keeps two hours) and collect every sample."""
    u = Underlying(config, seed, T0)
    prices = [u.price]
    for k in range(1, seconds + 1):
        u.advance_to(T0 + k * S)
        prices.append(u.price)
    return prices


def test_same_seed_same_path_and_different_seed_differs() -> None:
    a, b, c = (Underlying(UnderlyingConfig(), seed, T0) for seed in (7, 7, 8))
    for u in (a, b, c):
        u.advance_to(T0 + 3600 * S)
    assert path(a, 3600) == path(b, 3600)
    assert path(a, 3600) != path(c, 3600)


def test_advancing_in_one_call_or_many_gives_the_same_path() -> None:
    config = UnderlyingConfig(jump_intensity_per_hour=30.0)  # make sure jumps happen inside the window
    whole = Underlying(config, 3, T0)
    whole.advance_to(T0 + 3600 * S)
    pieces = Underlying(config, 3, T0)
    t = T0
    for gap_us in [1, 999_999, 1, 2_500_000, 17 * S + 3, 0, 60 * S, 123_456_789] * 12:
        t += gap_us
        pieces.advance_to(min(t, T0 + 3600 * S))
    pieces.advance_to(T0 + 3600 * S)
    pieces.advance_to(T0)  # going back is a no-op
    assert whole.jumps > 0
    assert pieces.jumps == whole.jumps
    assert path(pieces, 3600) == path(whole, 3600)
    assert pieces.price == whole.price
    assert pieces.last_sample_us == T0 + 3600 * S


def test_per_second_volatility_matches_the_configured_annual_volatility() -> None:
    config = UnderlyingConfig(annual_volatility=0.5, jump_intensity_per_hour=0.0)
    returns = log_returns(run(config, 11, 6 * 3600))
    annualised = statistics.pstdev(returns) * math.sqrt(SECONDS_PER_YEAR)
    assert annualised == pytest.approx(0.5, rel=0.03)  # standard error ≈ 0.5 % with 21 600 returns
    assert abs(statistics.fmean(returns)) < 3 * 0.5 / math.sqrt(SECONDS_PER_YEAR) / math.sqrt(len(returns))


def excess_kurtosis(xs: list[float]) -> float:
    m = statistics.fmean(xs)
    var = statistics.fmean([(x - m) ** 2 for x in xs])
    return statistics.fmean([(x - m) ** 4 for x in xs]) / var**2 - 3


def test_zero_intensity_means_no_jumps_and_jumps_fatten_the_tails() -> None:
    calm = Underlying(UnderlyingConfig(jump_intensity_per_hour=0.0), 5, T0)
    calm.advance_to(T0 + 24 * 3600 * S)
    assert calm.jumps == 0

    jumpy_config = UnderlyingConfig(jump_intensity_per_hour=20.0, jump_std=0.004)
    jumpy = Underlying(jumpy_config, 5, T0)
    jumpy.advance_to(T0 + 6 * 3600 * S)
    assert 80 <= jumpy.jumps <= 160  # Poisson, mean 120
    assert abs(excess_kurtosis(log_returns(run(UnderlyingConfig(jump_intensity_per_hour=0.0), 5, 6 * 3600)))) < 0.3
    assert excess_kurtosis(log_returns(run(jumpy_config, 5, 6 * 3600))) > 10


def test_jump_count_over_a_long_window_is_near_the_intensity() -> None:
    u = Underlying(UnderlyingConfig(jump_intensity_per_hour=0.5), 2, T0)
    u.advance_to(T0 + 400 * 3600 * S)
    assert 150 <= u.jumps <= 250  # mean 200, sd ≈ 14


def test_effective_volatility_adds_jump_variance() -> None:
    config = UnderlyingConfig(annual_volatility=0.5, jump_intensity_per_hour=0.5, jump_std=0.004)
    assert config.effective_annual_volatility == pytest.approx(math.sqrt(0.25 + 0.5 * 8760 * 0.004**2))
    assert UnderlyingConfig(jump_intensity_per_hour=0.0).effective_annual_volatility == 0.5


def test_average_is_the_simple_mean_of_the_samples_in_the_half_open_window() -> None:
    u = Underlying(UnderlyingConfig(), 9, T0)
    u.advance_to(T0 + 600 * S)
    samples = path(u, 600)
    close = T0 + 300 * S
    expected = math.fsum(samples[240:300]) / 60  # the 60 samples at close − 60 s … close − 1 s
    assert u.average(close - 60 * S, close) == expected
    # Windows not on the second boundary take the samples whose times fall inside them.
    assert u.average(close - 60 * S + 1, close + 1) == math.fsum(samples[241:301]) / 60
    assert u.average(T0 + 10 * S, T0 + 11 * S) == samples[10]


def test_average_of_a_flat_path_is_the_start_price_even_before_the_start() -> None:
    flat = UnderlyingConfig(start_price=Decimal(73250), annual_volatility=0.0, jump_intensity_per_hour=0.0)
    u = Underlying(flat, 1, T0)
    u.advance_to(T0 + 120 * S)
    assert u.price == 73250.0
    assert u.average(T0 - 30 * S, T0 + 30 * S) == 73250.0
    assert u.price_at(T0 - 3600 * S) == 73250.0


def test_average_refuses_the_future_empty_windows_and_forgotten_history() -> None:
    u = Underlying(UnderlyingConfig(history_seconds=600), 1, T0)
    u.advance_to(T0 + 3600 * S)
    with pytest.raises(ValueError, match="future"):
        u.average(T0 + 3590 * S, T0 + 3602 * S)
    with pytest.raises(ValueError, match="no index sample"):
        u.average(T0 + 10 * S + 1, T0 + 11 * S)
    with pytest.raises(ValueError, match="older"):
        u.average(T0 + 60 * S, T0 + 120 * S)
    assert u.average(T0 + 3100 * S, T0 + 3160 * S) > 0  # within the kept 600 s


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        UnderlyingConfig(start_price=Decimal(0))
    with pytest.raises(ValueError):
        UnderlyingConfig(annual_volatility=-0.1)
    with pytest.raises(ValueError):
        UnderlyingConfig(tick_seconds=0.0)
