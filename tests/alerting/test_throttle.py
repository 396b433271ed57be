"""The throttle (pure): at most N alerts per name per sliding window, the (N+1)th suppressed and counted and
reported with the next one that goes out, critical alerts never held back, names independent."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mm.alerting import AlertThrottle
from mm.specs.node import Throttle

S = 1_000_000  # µs per second
T0 = 1_768_660_200_000_000


def test_each_alert_fires_once_and_the_next_in_the_window_is_suppressed_and_counted() -> None:
    throttle = AlertThrottle(window_us=300 * S, max_per_window=1)
    first = throttle.decide("high_inventory", "warning", T0)
    other = throttle.decide("stale_market_data", "warning", T0)
    assert first.allowed and other.allowed  # different names never affect each other
    again = throttle.decide("high_inventory", "warning", T0 + 10 * S)
    assert not again.allowed and not again.bypassed
    assert throttle.stats()["high_inventory"].suppressed == 1
    assert throttle.stats()["stale_market_data"].suppressed == 0
    assert throttle.suppressed_total == 1


def test_the_n_plus_first_in_a_window_is_suppressed() -> None:
    throttle = AlertThrottle(window_us=300 * S, max_per_window=10)
    decisions = [throttle.decide("high_latency", "warning", T0 + i * S) for i in range(12)]
    assert [d.allowed for d in decisions] == [True] * 10 + [False, False]
    assert decisions[9].in_window == 10
    assert throttle.stats()["high_latency"].allowed == 10
    assert throttle.stats()["high_latency"].suppressed == 2


def test_the_window_slides_and_the_next_allowed_alert_reports_what_was_suppressed() -> None:
    throttle = AlertThrottle(window_us=300 * S, max_per_window=2)
    assert throttle.decide("x", "warning", T0).allowed
    assert throttle.decide("x", "warning", T0 + 100 * S).allowed
    for i in range(3):
        assert not throttle.decide("x", "warning", T0 + (200 + i) * S).allowed
    # Exactly one window after the first: that one has left the window (exclusive boundary).
    back = throttle.decide("x", "warning", T0 + 300 * S)
    assert back.allowed and back.suppressed_before == 3
    # The count is handed over once.
    assert not throttle.decide("x", "warning", T0 + 301 * S).allowed
    later = throttle.decide("x", "warning", T0 + 400 * S)
    assert later.allowed and later.suppressed_before == 1


def test_critical_alerts_bypass_the_throttle() -> None:
    throttle = AlertThrottle(window_us=300 * S, max_per_window=1)
    decisions = [throttle.decide("kill_switch_triggered", "critical", T0 + i) for i in range(5)]
    assert all(d.allowed for d in decisions)
    assert [d.bypassed for d in decisions] == [False, True, True, True, True]
    assert throttle.stats()["kill_switch_triggered"].bypassed == 4
    assert throttle.suppressed_total == 0


def test_criticals_count_toward_the_window_of_their_name() -> None:
    throttle = AlertThrottle(window_us=300 * S, max_per_window=1)
    assert throttle.decide("daily_loss", "critical", T0).allowed
    assert not throttle.decide("daily_loss", "warning", T0 + 1).allowed


def test_from_spec_uses_window_seconds_and_max_alerts_per_window() -> None:
    throttle = AlertThrottle.from_spec(Throttle(window_seconds=Decimal("1.5"), max_alerts_per_window=3))
    assert throttle.window_us == 1_500_000
    assert throttle.max_per_window == 3


def test_invalid_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        AlertThrottle(window_us=0, max_per_window=1)
    with pytest.raises(ValueError, match="positive"):
        AlertThrottle(window_us=1, max_per_window=0)


@given(
    gaps=st.lists(st.integers(min_value=0, max_value=120 * S), min_size=1, max_size=200),
    limit=st.integers(min_value=1, max_value=5),
)
def test_never_more_than_the_limit_of_non_critical_alerts_in_any_window(gaps: list[int], limit: int) -> None:
    window = 300 * S
    throttle = AlertThrottle(window_us=window, max_per_window=limit)
    now, sent = T0, []
    for gap in gaps:
        now += gap
        if throttle.decide("n", "warning", now).allowed:
            sent.append(now)
    for i, start in enumerate(sent):
        assert sum(1 for t in sent[i:] if t < start + window) <= limit
    stats = throttle.stats()["n"]
    assert stats.allowed + stats.suppressed == len(gaps)
