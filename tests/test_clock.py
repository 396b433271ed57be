"""Tests of mm.clock: simulated time, conversions at microsecond precision, the wall clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mm.clock import (
    Clock,
    ScaledClock,
    SimulatedClock,
    WallClock,
    datetime_to_us,
    format_rfc3339_us,
    us_to_datetime,
)

T0 = datetime_to_us(datetime(2026, 1, 17, 14, 30, tzinfo=UTC))
MIN_US = datetime_to_us(datetime.min.replace(tzinfo=UTC))
MAX_US = datetime_to_us(datetime.max.replace(tzinfo=UTC))
representable_us = st.integers(min_value=MIN_US, max_value=MAX_US)


# --- SimulatedClock -----------------------------------------------------------------------------------


def test_simulated_clock_starts_where_told_and_stands_still() -> None:
    clock = SimulatedClock(T0, monotonic_start_ns=7)
    assert clock.now_us() == T0
    assert clock.now_us() == T0
    assert clock.monotonic_ns() == 7
    assert clock.now() == datetime(2026, 1, 17, 14, 30, tzinfo=UTC)


def test_advance_by_seconds_and_microseconds() -> None:
    clock = SimulatedClock(T0)
    clock.advance(2)
    assert clock.now_us() == T0 + 2_000_000
    clock.advance(Decimal("0.000001"))
    assert clock.now_us() == T0 + 2_000_001
    clock.advance_us(999_999)
    assert clock.now_us() == T0 + 3_000_000
    clock.advance_us(0)
    assert clock.now_us() == T0 + 3_000_000


def test_advance_refuses_backwards_and_inexact_durations() -> None:
    clock = SimulatedClock(T0)
    with pytest.raises(ValueError, match="negative"):
        clock.advance_us(-1)
    with pytest.raises(ValueError, match="negative"):
        clock.advance(Decimal("-0.5"))
    with pytest.raises(ValueError, match="finer than one microsecond"):
        clock.advance(Decimal("0.0000001"))
    with pytest.raises(ValueError, match="not finite"):
        clock.advance(Decimal("Infinity"))
    with pytest.raises(TypeError):
        clock.advance(0.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        clock.advance(True)
    assert clock.now_us() == T0  # failed calls left time untouched


def test_set_us_jumps_forward_but_never_back() -> None:
    clock = SimulatedClock(T0)
    clock.set_us(T0 + 500)
    assert clock.now_us() == T0 + 500
    clock.set_us(T0 + 500)  # staying put is allowed
    with pytest.raises(ValueError, match="backwards"):
        clock.set_us(T0 + 499)
    assert clock.now_us() == T0 + 500


@given(
    steps=st.lists(st.integers(min_value=0, max_value=10**9), max_size=30),
    start_ns=st.integers(0, 10**12),
)
def test_monotonic_moves_in_step_with_now(steps: list[int], start_ns: int) -> None:
    clock = SimulatedClock(T0, monotonic_start_ns=start_ns)
    previous = clock.monotonic_ns()
    for i, step in enumerate(steps):
        if i % 2:
            clock.advance_us(step)
        else:
            clock.set_us(clock.now_us() + step)
        assert clock.monotonic_ns() >= previous
        assert clock.monotonic_ns() - start_ns == (clock.now_us() - T0) * 1000
        previous = clock.monotonic_ns()


def test_clocks_are_clocks() -> None:
    assert isinstance(SimulatedClock(0), Clock)
    assert isinstance(WallClock(), Clock)
    assert "2026-01-17T14:30:00.000000Z" in repr(SimulatedClock(T0))


# --- conversions --------------------------------------------------------------------------------------


@given(us=representable_us)
def test_us_datetime_round_trip_is_exact(us: int) -> None:
    dt = us_to_datetime(us)
    assert dt.tzinfo is UTC
    assert datetime_to_us(dt) == us


@given(dt=st.datetimes(timezones=st.just(UTC)))
def test_datetime_us_round_trip_is_exact(dt: datetime) -> None:
    assert us_to_datetime(datetime_to_us(dt)) == dt


def test_aware_non_utc_datetimes_convert_to_the_same_instant() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert datetime_to_us(datetime(2026, 1, 17, 16, 30, tzinfo=plus_two)) == T0


def test_naive_datetime_rejected() -> None:
    with pytest.raises(ValueError, match="naive"):
        datetime_to_us(datetime(2026, 1, 17, 14, 30))  # noqa: DTZ001 -- the point of the test


def test_epoch_and_negative_times() -> None:
    assert us_to_datetime(0) == datetime(1970, 1, 1, tzinfo=UTC)
    assert us_to_datetime(-1) == datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)


def test_format_rfc3339_us() -> None:
    assert format_rfc3339_us(T0 + 123_456) == "2026-01-17T14:30:00.123456Z"
    assert format_rfc3339_us(0) == "1970-01-01T00:00:00.000000Z"
    assert format_rfc3339_us(MIN_US) == "0001-01-01T00:00:00.000000Z"  # zero-padded year


@given(us=representable_us)
def test_format_rfc3339_us_is_fixed_width_and_parses_back(us: int) -> None:
    text = format_rfc3339_us(us)
    assert len(text) == 27
    assert datetime_to_us(datetime.fromisoformat(text)) == us


# --- WallClock ----------------------------------------------------------------------------------------


def test_wall_clock_now_agrees_with_now_us() -> None:
    clock = WallClock()
    before = clock.now_us()
    dt = clock.now()
    after = clock.now_us()
    assert dt.tzinfo is UTC
    # now() is derived from now_us(), so it falls between two surrounding reads (NTP steps aside,
    # which is why the bound is loose rather than exact).
    assert before - 1_000_000 <= datetime_to_us(dt) <= after + 1_000_000
    assert abs(dt.timestamp() - before / 1_000_000) < 5


def test_wall_clock_monotonic_never_decreases() -> None:
    clock = WallClock()
    readings = [clock.monotonic_ns() for _ in range(1000)]
    assert readings == sorted(readings)


def test_scaled_clock_runs_speed_times_faster_than_its_base() -> None:
    base = SimulatedClock(0)
    clock = ScaledClock(start_us=1_000_000_000, speed=60, base=base)
    assert clock.now_us() == 1_000_000_000 and clock.monotonic_ns() == 0
    base.advance_us(1_000_000)  # one real second
    assert clock.now_us() == 1_000_000_000 + 60_000_000  # one simulated minute
    assert clock.monotonic_ns() == 60_000_000_000
    assert clock.real_seconds(3600) == 60
