"""Time-based rules (FR-502, FR-511, RCR-201): settlement cutoff and trading hours (windows, DST, cache)."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mm.domain.quotes import QuoteSet
from mm.risk.base import ALLOW, RiskAction, RiskContext
from mm.risk.rules.timing import MarketHoursRule, SettlementCutoffRule
from mm.specs.risk import ALL_DAYS, MarketHoursRuleConfig, SettlementCutoffRuleConfig, TradingWindow
from tests.risk.builders import make_context, make_quotes

Ctx = Callable[..., RiskContext]
Quotes = Callable[..., QuoteSet]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NY = "America/New_York"

# ------------------------------------------------------------------------------------ settlement cutoff


@pytest.mark.parametrize(
    ("seconds", "allowed"),
    [(180.0, False), (179.9, False), (180.001, True), (3600.0, True), (math.inf, True), (0.0, False), (-30.0, False)],
)
def test_settlement_cutoff_blocks_inside_the_last_three_minutes(
    ctx: Ctx, quotes: Quotes, seconds: float, allowed: bool
) -> None:
    decision = SettlementCutoffRule(SettlementCutoffRuleConfig()).evaluate(
        quotes(), ctx(time_to_settlement_seconds=seconds)
    )
    assert (decision is ALLOW) is allowed
    if not allowed:
        assert decision.action is RiskAction.BLOCK and not decision.trigger_kill_switch


def test_settlement_cutoff_reason(ctx: Ctx, quotes: Quotes) -> None:
    rule = SettlementCutoffRule(SettlementCutoffRuleConfig())
    assert rule.evaluate(quotes(), ctx(time_to_settlement_seconds=180.0)).reason == (
        "3.0 min to settlement: inside the 3-minute cutoff"
    )
    assert rule.evaluate(quotes(), ctx(time_to_settlement_seconds=-90.0)).reason == (
        "settlement time passed 1.5 min ago: inside the 3-minute cutoff"
    )


def test_settlement_cutoff_fails_safe_on_an_unknown_time(ctx: Ctx, quotes: Quotes) -> None:
    decision = SettlementCutoffRule(SettlementCutoffRuleConfig()).evaluate(
        quotes(), ctx(time_to_settlement_seconds=math.nan)
    )
    assert decision.action is RiskAction.BLOCK
    assert decision.reason is not None and "unknown" in decision.reason


def test_settlement_cutoff_is_configurable(ctx: Ctx, quotes: Quotes) -> None:
    rule = SettlementCutoffRule(SettlementCutoffRuleConfig(cutoff_minutes=Decimal("2.5")))
    assert rule.evaluate(quotes(), ctx(time_to_settlement_seconds=150.001)) is ALLOW
    blocked = rule.evaluate(quotes(), ctx(time_to_settlement_seconds=150.0))
    assert blocked.reason == "2.5 min to settlement: inside the 2.5-minute cutoff"
    at_close = SettlementCutoffRule(SettlementCutoffRuleConfig(cutoff_minutes=Decimal(0)))
    assert at_close.evaluate(quotes(), ctx(time_to_settlement_seconds=0.001)) is ALLOW
    assert at_close.evaluate(quotes(), ctx(time_to_settlement_seconds=0.0)).action is RiskAction.BLOCK


# ------------------------------------------------------------------------------------ market hours


def local_us(
    y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, us: int = 0, *, tz: str = NY, fold: int = 0
) -> int:
    """µs since the epoch of a local wall-clock time."""
    moment = datetime(y, mo, d, h, mi, s, us, tzinfo=ZoneInfo(tz), fold=fold)
    return (moment.astimezone(UTC) - EPOCH) // timedelta(microseconds=1)


def utc_us(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, us: int = 0) -> int:
    return (datetime(y, mo, d, h, mi, s, us, tzinfo=UTC) - EPOCH) // timedelta(microseconds=1)


def hours_rule(*windows: dict[str, Any], tz: str = NY) -> MarketHoursRule:
    config = MarketHoursRuleConfig(windows=[TradingWindow.model_validate(w) for w in windows], timezone=tz)
    return MarketHoursRule(config)


def is_open(rule: MarketHoursRule, now_us: int) -> bool:
    decision = rule.evaluate(make_quotes(), make_context(now_us=now_us))
    assert decision.action in (RiskAction.ALLOW, RiskAction.BLOCK)
    return decision.action is RiskAction.ALLOW


WEEKDAYS = {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:30", "end": "16:00"}


def test_no_windows_means_always_open() -> None:
    rule = MarketHoursRule(MarketHoursRuleConfig())
    for now in (0, utc_us(2026, 3, 8, 7), utc_us(2026, 3, 14, 12), utc_us(2099, 12, 31, 23, 59)):
        assert is_open(rule, now)


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        ((2026, 3, 9, 9, 29, 59, 999_999), False),  # Monday, the day after DST started
        ((2026, 3, 9, 9, 30), True),
        ((2026, 3, 9, 15, 59, 59, 999_999), True),
        ((2026, 3, 9, 16, 0), False),
        ((2026, 3, 14, 12, 0), False),  # Saturday
        ((2026, 3, 6, 10, 0), True),  # Friday before, EST
        ((2026, 3, 6, 16, 0), False),
    ],
)
def test_weekday_window_boundaries(moment: tuple[int, ...], expected: bool) -> None:
    assert is_open(hours_rule(WEEKDAYS), local_us(*moment)) is expected


def test_closed_reason_names_the_windows() -> None:
    decision = hours_rule(WEEKDAYS).evaluate(make_quotes(), make_context(now_us=local_us(2026, 3, 14, 12)))
    assert decision.reason == "outside trading hours (mon/tue/wed/thu/fri 09:30-16:00; America/New_York)"


def test_cache_is_valid_until_the_next_boundary_or_local_midnight() -> None:
    rule = hours_rule(WEEKDAYS)
    calls: list[int] = []
    recompute = rule._recompute

    def counting(now_us: int) -> None:
        calls.append(now_us)
        recompute(now_us)

    rule._recompute = counting  # type: ignore[method-assign]
    assert is_open(rule, local_us(2026, 3, 9, 10))
    assert rule.valid_until_us == local_us(2026, 3, 9, 16)
    assert is_open(rule, local_us(2026, 3, 9, 15, 59, 59, 999_999))
    assert len(calls) == 1  # served from the cache
    assert not is_open(rule, local_us(2026, 3, 9, 16))
    assert rule.valid_until_us == local_us(2026, 3, 10)  # no boundary left today: local midnight
    assert not is_open(rule, local_us(2026, 3, 9, 23, 59))
    assert len(calls) == 2
    assert not is_open(rule, local_us(2026, 3, 10))
    assert rule.valid_until_us == local_us(2026, 3, 10, 9, 30)
    assert is_open(rule, local_us(2026, 3, 10, 9, 30))
    assert len(calls) == 4


def test_cache_recomputes_when_time_goes_backwards() -> None:
    rule = hours_rule(WEEKDAYS)
    assert is_open(rule, local_us(2026, 3, 9, 10))
    assert not is_open(rule, local_us(2026, 3, 9, 9))  # a replay restarting earlier
    assert is_open(rule, local_us(2026, 3, 9, 12))


def test_spring_forward_boundary_inside_the_skipped_hour() -> None:
    # 2026-03-08: 02:00 EST jumps to 03:00 EDT at 07:00 UTC; 02:30 never happens on the wall clock.
    rule = hours_rule({"days": ["sun"], "start": "02:30", "end": "04:00"})
    assert not is_open(rule, utc_us(2026, 3, 8, 6))  # 01:00 EST
    assert rule.valid_until_us == utc_us(2026, 3, 8, 7)  # the cache stops at the transition
    assert not is_open(rule, utc_us(2026, 3, 8, 6, 59, 59, 999_999))
    assert is_open(rule, utc_us(2026, 3, 8, 7))  # 03:00 EDT: past 02:30
    assert rule.valid_until_us == utc_us(2026, 3, 8, 8)  # 04:00 EDT
    assert not is_open(rule, utc_us(2026, 3, 8, 8))


def test_spring_forward_moves_the_utc_time_of_a_window() -> None:
    rule = hours_rule({"days": list(ALL_DAYS), "start": "09:30", "end": "16:00"})
    sequence = [
        (utc_us(2026, 3, 7, 14, 29), False),  # Saturday 09:29 EST
        (utc_us(2026, 3, 7, 14, 30), True),  # 09:30 EST = 14:30 UTC
        (utc_us(2026, 3, 8, 6), False),  # Sunday 01:00 EST, cache spans the transition
        (utc_us(2026, 3, 8, 13, 29), False),  # 09:29 EDT
        (utc_us(2026, 3, 8, 13, 30), True),  # 09:30 EDT = 13:30 UTC
        (utc_us(2026, 3, 8, 19, 59), True),
        (utc_us(2026, 3, 8, 20), False),  # 16:00 EDT
    ]
    for now, expected in sequence:
        assert is_open(rule, now) is expected, now
        assert is_open(hours_rule({"days": list(ALL_DAYS), "start": "09:30", "end": "16:00"}), now) is expected


def test_fall_back_repeats_the_hour_on_the_wall_clock() -> None:
    # 2026-11-01: 02:00 EDT goes back to 01:00 EST at 06:00 UTC; 01:00-01:30 happens twice.
    window = {"days": ["sun"], "start": "00:00", "end": "01:30"}
    rule = hours_rule(window)
    sequence = [
        (local_us(2026, 11, 1, 0, 59, fold=0), True),
        (utc_us(2026, 11, 1, 5, 29, 59, 999_999), True),  # 01:29:59.999999 EDT
        (utc_us(2026, 11, 1, 5, 30), False),  # 01:30 EDT
        (utc_us(2026, 11, 1, 5, 59, 59, 999_999), False),
        (utc_us(2026, 11, 1, 6), True),  # 01:00 EST again
        (utc_us(2026, 11, 1, 6, 29, 59), True),
        (utc_us(2026, 11, 1, 6, 30), False),  # 01:30 EST
        (local_us(2026, 11, 1, 23, 59), False),
    ]
    for now, expected in sequence:
        assert is_open(rule, now) is expected, now
        assert is_open(hours_rule(window), now) is expected, now
    assert not is_open(rule, utc_us(2026, 11, 1, 5, 45))
    assert rule.valid_until_us == utc_us(2026, 11, 1, 6)  # stops at the transition, then recomputes


def test_window_past_midnight_runs_into_the_next_day() -> None:
    window = {"days": ["fri"], "start": "22:00", "end": "02:00"}
    rule = hours_rule(window)
    sequence = [
        (local_us(2026, 3, 12, 23), False),  # Thursday night: not a listed day
        (local_us(2026, 3, 13, 1), False),  # Friday 01:00 belongs to Thursday's night
        (local_us(2026, 3, 13, 21, 59, 59, 999_999), False),
        (local_us(2026, 3, 13, 22), True),
        (local_us(2026, 3, 13, 23, 59, 59, 999_999), True),
        (local_us(2026, 3, 14, 0), True),  # Saturday
        (local_us(2026, 3, 14, 1, 59, 59, 999_999), True),
        (local_us(2026, 3, 14, 2), False),
        (local_us(2026, 3, 14, 23), False),
    ]
    for now, expected in sequence:
        assert is_open(rule, now) is expected, now


def test_end_of_day_is_written_24_00() -> None:
    rule = hours_rule({"days": ["sat"], "start": "00:00", "end": "24:00"})
    assert not is_open(rule, local_us(2026, 3, 13, 23, 59, 59, 999_999))
    assert is_open(rule, local_us(2026, 3, 14))
    assert is_open(rule, local_us(2026, 3, 14, 23, 59, 59, 999_999))
    assert not is_open(rule, local_us(2026, 3, 15))


def test_windows_are_in_the_configured_zone() -> None:
    london = hours_rule({"days": ["mon"], "start": "08:00", "end": "16:30"}, tz="Europe/London")
    assert not is_open(london, utc_us(2026, 3, 9, 7, 59))  # GMT in March before the 29th
    assert is_open(london, utc_us(2026, 3, 9, 8))
    assert not is_open(london, utc_us(2026, 6, 1, 6, 59))  # BST: 08:00 local = 07:00 UTC
    assert is_open(london, utc_us(2026, 6, 1, 7, 0))
    assert not is_open(london, utc_us(2026, 6, 1, 15, 30))  # 16:30 BST


# A reference without any cache or arithmetic of ours: ask zoneinfo for the wall clock every time.
def reference_open(windows: list[dict[str, Any]], tz: str, now_us: int) -> bool:
    wall = datetime.fromtimestamp(now_us // 1_000_000, ZoneInfo(tz))
    weekday = wall.weekday()
    minute = wall.hour * 60 + wall.minute  # windows are whole minutes, so seconds never matter

    def minutes(text: str) -> int:
        h, m = text.split(":")
        return int(h) * 60 + int(m)

    for w in windows:
        start, end = minutes(w["start"]), minutes(w["end"])
        for name in w["days"]:
            day = ALL_DAYS.index(name)
            if end > start:
                if weekday == day and start <= minute < end:
                    return True
            elif (weekday == day and minute >= start) or (weekday == (day + 1) % 7 and minute < end):
                return True
    return False


hhmm = st.builds(lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23), st.sampled_from((0, 1, 15, 30, 59)))
window_dicts = st.fixed_dictionaries(
    {
        "days": st.lists(st.sampled_from(ALL_DAYS), min_size=1, max_size=7, unique=True),
        "start": hhmm,
        "end": st.one_of(hhmm, st.just("24:00")),
    }
)
zones = st.sampled_from((NY, "Europe/London", "Australia/Lord_Howe", "Asia/Kolkata", "America/Sao_Paulo"))
# Around the 2026 transitions of these zones, and anywhere in the year.
anchors = [utc_us(2026, 3, 8, 7), utc_us(2026, 11, 1, 6), utc_us(2026, 3, 29, 1), utc_us(2026, 4, 4, 15)]
HOUR_US = 3_600_000_000
moments = st.one_of(
    st.builds(lambda a, d: a + d, st.sampled_from(anchors), st.integers(-3 * HOUR_US, 3 * HOUR_US)),
    st.builds(lambda a, d: a + d, st.sampled_from(anchors), st.integers(-48 * HOUR_US, 48 * HOUR_US)),
    st.integers(utc_us(2025, 12, 25), utc_us(2027, 1, 5)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(window_dicts, min_size=1, max_size=3), zones, st.lists(moments, min_size=1, max_size=40))
def test_cached_rule_matches_a_fresh_wall_clock_reference(
    windows: list[dict[str, Any]], tz: str, times: list[int]
) -> None:
    rule = hours_rule(*windows, tz=tz)
    for now in sorted(times) + times:  # forwards through the cache, then in any order
        assert is_open(rule, now) is reference_open(windows, tz, now), (now, windows, tz)
