"""Hourly crypto events: tickers (§12), strike ladders, REST fields, lifecycle (§13) and settlement."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from mm.clock import datetime_to_us
from mm.domain.ticks import TickGrid
from mm.sim.schedule import (
    MarketDef,
    MarketStatus,
    Schedule,
    event_ticker,
    index_value,
    price_ranges,
    settle,
    strike_ladder,
)

S = 1_000_000
HOUR = 3600 * S


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> int:
    return datetime_to_us(datetime(year, month, day, hour, minute, second, tzinfo=UTC))


def flat(price: float) -> Callable[[int], float]:
    return lambda _t: price


@pytest.mark.parametrize(
    ("close", "ticker"),
    [
        (utc(2026, 8, 13, 21), "KXBTCD-26AUG1317"),  # EDT: UTC−4
        (utc(2026, 12, 1, 5), "KXBTCD-26DEC0100"),  # EST: UTC−5, midnight ET
        (utc(2026, 12, 1, 4), "KXBTCD-26NOV3023"),  # still the previous ET day
        (utc(2027, 1, 1, 4, 59, 59), "KXBTCD-26DEC3123"),
        (utc(2026, 3, 8, 7), "KXBTCD-26MAR0803"),  # first hour after the spring-forward gap
    ],
)
def test_event_ticker_uses_the_new_york_hour_of_the_close(close: int, ticker: str) -> None:
    assert event_ticker("KXBTCD", close) == ticker
    if close % HOUR == 0:
        assert Schedule.close_us_of(ticker) == close


def test_strike_ladder_is_round_strikes_centred_on_the_nearest_multiple() -> None:
    assert strike_ladder(73_310.0) == [Decimal(73_250 + 250 * i) for i in range(-5, 6)]
    assert strike_ladder(73_380.0, Decimal(100), 5) == [Decimal(x) for x in (73_200, 73_300, 73_400, 73_500, 73_600)]
    assert strike_ladder(300.0, Decimal(250), 5) == [Decimal(x) for x in (250, 500, 750)]  # non-positive dropped
    with pytest.raises(ValueError):
        strike_ladder(float("nan"))


def test_events_between_builds_the_ladder_at_open_with_kalshi_fields() -> None:
    schedule = Schedule()
    close = utc(2026, 8, 13, 21)
    asked: list[int] = []

    def price_at(t_us: int) -> float:
        asked.append(t_us)
        return 73_310.0

    events = schedule.events_between(close - 30 * 60 * S, close - 30 * 60 * S + 1, price_at)
    assert [e.event_ticker for e in events] == ["KXBTCD-26AUG1317"]
    event = events[0]
    assert asked == [close - HOUR]
    assert (event.open_time_us, event.close_time_us) == (close - HOUR, close)
    assert event.expected_expiration_us == utc(2026, 8, 13, 21, 5)
    assert event.series_ticker == "KXBTCD"
    assert event.title == "Bitcoin price today at 5pm EDT?"
    assert len(event.markets) == 11
    market = event.markets[5]
    assert market.ticker == "KXBTCD-26AUG1317-T73249.99"
    assert market.floor_strike == Decimal("73249.99")
    assert market.strike_type == "greater"
    assert market.yes_sub_title == "$73,250 or above"
    assert market.event_ticker == "KXBTCD-26AUG1317"
    assert market.price_level_structure == "linear_cent"
    assert market.price_ranges == [{"start": "0.0000", "end": "1.0000", "step": "0.0100"}]
    assert market.grid == TickGrid.linear_cent()
    assert "above 73249.99" in market.rules_primary and "5 PM EDT" in market.rules_primary
    assert [m.ticker for m in event.markets][:2] == ["KXBTCD-26AUG1317-T71999.99", "KXBTCD-26AUG1317-T72249.99"]
    # Cached: asking again (even with another price) returns the same ladder.
    assert schedule.events_between(close - 60 * S, close - 59 * S, flat(99_999.0)) == events


def test_events_between_covers_overlapping_lifetimes_in_close_order() -> None:
    schedule = Schedule(settlement_timer_seconds=5, determination_delay_s=1)
    close = utc(2026, 8, 13, 21)
    tickers = [e.event_ticker for e in schedule.events_between(close, close + 1, flat(95_000.0))]
    # The 21:00Z event is still settling; the 22:00Z event opened at 21:00Z.
    assert tickers == ["KXBTCD-26AUG1317", "KXBTCD-26AUG1318"]
    # The 21:00Z event is finalized at close + 6 s: still listed at exactly +6 s, gone just after.
    at_final = schedule.events_between(close + 6 * S, close + 6 * S + 1, flat(95_000.0))
    assert [e.event_ticker for e in at_final] == tickers
    after = schedule.events_between(close + 6 * S + 1, close + 7 * S, flat(95_000.0))
    assert [e.event_ticker for e in after] == tickers[1:]
    day = schedule.events_between(utc(2026, 8, 14, 4), utc(2026, 8, 15, 4), flat(95_000.0))
    assert len(day) == 25  # 24 opens in the window plus the one closing at its start
    assert [e.close_time_us for e in day] == sorted(e.close_time_us for e in day)


def test_the_repeated_autumn_hour_is_skipped_so_tickers_stay_unique() -> None:
    schedule = Schedule()
    events = schedule.events_between(utc(2026, 11, 1, 3), utc(2026, 11, 1, 8), flat(95_000.0))
    tickers = [e.event_ticker for e in events]
    assert len(tickers) == len(set(tickers))
    assert "KXBTCD-26NOV0101" in tickers and "KXBTCD-26NOV0102" in tickers


def test_price_ranges_follow_the_named_structures() -> None:
    assert price_ranges("linear_cent") == [{"start": "0.0000", "end": "1.0000", "step": "0.0100"}]
    tapered = price_ranges("tapered_deci_cent")
    assert [r["step"] for r in tapered] == ["0.0010", "0.0100", "0.0010"]
    assert TickGrid.from_price_ranges(tapered) == TickGrid.tapered_deci_cent()


def make_market(schedule: Schedule) -> MarketDef:
    close = utc(2026, 8, 13, 21)
    return schedule.events_between(close - HOUR, close - HOUR + 1, flat(73_250.0))[-1].markets[5]


def test_status_transitions_at_exact_boundaries() -> None:
    schedule = Schedule(settlement_timer_seconds=5, determination_delay_s=1)
    m = make_market(schedule)
    assert m.ticker == "KXBTCD-26AUG1317-T73249.99"
    open_, close = m.open_time_us, m.close_time_us
    determined, final = close + S, close + 6 * S
    assert schedule.determination_time_us(m) == determined
    assert schedule.finalization_time_us(m) == final
    cases = [
        (open_ - 1, None, MarketStatus.INITIALIZED),
        (open_, None, MarketStatus.ACTIVE),
        (close - 1, None, MarketStatus.ACTIVE),
        (close, None, MarketStatus.CLOSED),
        (close, "yes", MarketStatus.CLOSED),
        (determined - 1, "yes", MarketStatus.CLOSED),
        (determined, None, MarketStatus.CLOSED),  # no result yet: stays closed
        (determined, "no", MarketStatus.DETERMINED),
        (final - 1, "no", MarketStatus.DETERMINED),
        (final, "no", MarketStatus.FINALIZED),
        (final + HOUR, "yes", MarketStatus.FINALIZED),
    ]
    for now, result, expected in cases:
        assert schedule.status_at(m, now, result) is expected, (now - close, result)
    assert [s.filter_name for s in (MarketStatus.INITIALIZED, MarketStatus.ACTIVE, MarketStatus.DETERMINED)] == [
        "unopened",
        "open",
        "closed",
    ]
    assert MarketStatus.FINALIZED.filter_name == "settled"


def test_settlement_is_strictly_above_the_floor_strike() -> None:
    m = make_market(Schedule())
    assert m.floor_strike == Decimal("73249.99")
    assert settle(m, 73_250.00) == ("yes", 10_000)
    assert settle(m, Decimal("73250.00")) == ("yes", 10_000)
    assert settle(m, 73_249.99) == ("no", 0)
    assert settle(m, 73_100.0) == ("no", 0)
    assert settle(m, 80_000.0) == ("yes", 10_000)
    # The average is published to the cent before comparing.
    assert index_value(73_249.994) == Decimal("73249.99")
    assert settle(m, 73_249.994) == ("no", 0)
    assert settle(m, 73_249.996) == ("yes", 10_000)


def test_schedule_validation_and_series() -> None:
    with pytest.raises(ValueError):
        Schedule(price_level_structure="nope")
    assert Schedule().series_def.ticker == "KXBTCD"
    with pytest.raises(ValueError):
        Schedule.close_us_of("KXBTCD-26XYZ1317")
