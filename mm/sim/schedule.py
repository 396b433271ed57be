"""Crypto hourly series, events, strike ladders and their lifecycle (kalshi-api.md §5, §12, §13).

One event per hour closes on the hour (``KXBTCD-26AUG1317`` closes 2026-08-13T21:00Z, 5 PM EDT) and opens
``opens_before_close_s`` earlier with a ladder of ``greater`` markets (``-T73249.99`` = "$73,250 or
above") built around the index price at its open. Everything here is a pure function of time (µs since
the epoch, UTC) plus, for the lifecycle, the market's result: nothing reads a clock.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Final, Literal
from zoneinfo import ZoneInfo

from mm.clock import datetime_to_us, us_to_datetime
from mm.domain.price import PRICE_SCALE
from mm.domain.ticks import STRUCTURES, TickGrid

__all__ = [
    "ET",
    "HourlyEvent",
    "MarketDef",
    "MarketStatus",
    "Schedule",
    "SeriesDef",
    "event_ticker",
    "index_value",
    "price_ranges",
    "settle",
    "strike_ladder",
]

ET: Final = ZoneInfo("America/New_York")
_US_PER_SECOND: Final = 1_000_000
_HOUR_US: Final = 3600 * _US_PER_SECOND
_CENT: Final = Decimal("0.01")
_MONTHS: Final = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
"""Month abbreviations spelled out rather than taken from ``%b``, which depends on the C locale."""

# series → (asset name, CF Benchmarks index name used in the rules text)
_ASSETS: Final = {
    "KXBTCD": ("Bitcoin", "Bitcoin Real-Time Index (BRTI)"),
    "KXETHD": ("Ethereum", "Ether-Dollar Real-Time Index (ETHUSD_RTI)"),
    "KXSOLD": ("Solana", "Solana-Dollar Real-Time Index (SOLUSD_RTI)"),
    "KXXRPD": ("XRP", "XRP-Dollar Real-Time Index (XRPUSD_RTI)"),
    "KXDOGED": ("Dogecoin", "Dogecoin-Dollar Real-Time Index (DOGEUSD_RTI)"),
}


class MarketStatus(enum.Enum):
    """REST ``status`` values (§13). The simulator produces the first five; the rest exist on Kalshi."""

    INITIALIZED = "initialized"
    ACTIVE = "active"
    CLOSED = "closed"
    DETERMINED = "determined"
    FINALIZED = "finalized"
    INACTIVE = "inactive"
    DISPUTED = "disputed"
    AMENDED = "amended"

    @property
    def filter_name(self) -> str:
        """The ``?status=`` query value that selects this status (``unopened|open|paused|closed|settled``)."""
        return _FILTERS[self]


_FILTERS: Final = {
    MarketStatus.INITIALIZED: "unopened",
    MarketStatus.ACTIVE: "open",
    MarketStatus.INACTIVE: "paused",
    MarketStatus.CLOSED: "closed",
    MarketStatus.DETERMINED: "closed",
    MarketStatus.DISPUTED: "closed",
    MarketStatus.AMENDED: "closed",
    MarketStatus.FINALIZED: "settled",
}


def event_ticker(series: str, close_us: int) -> str:
    """``{SERIES}-{YY}{MON}{DD}{HH}`` with the date and 24-h hour of the close in New York time."""
    et = us_to_datetime(close_us).astimezone(ET)
    return f"{series}-{et.year % 100:02d}{_MONTHS[et.month - 1]}{et.day:02d}{et.hour:02d}"


def strike_ladder(center_price: float, spacing: Decimal = Decimal(250), count: int = 11) -> list[Decimal]:
    """``count`` round strikes ``spacing`` apart, centred on the multiple of ``spacing`` nearest the price.

    Non-positive strikes are dropped, so a ladder near zero can be shorter than ``count``.
    """
    if not math.isfinite(center_price) or spacing <= 0 or count < 1:
        raise ValueError(f"need spacing > 0 and count >= 1, got spacing={spacing}, count={count}")
    center = (Decimal(repr(center_price)) / spacing).to_integral_value(ROUND_HALF_EVEN) * spacing
    strikes = [center + (i - count // 2) * spacing for i in range(count)]
    return [s for s in strikes if s > 0]


def price_ranges(structure: str) -> list[dict[str, str]]:
    """Kalshi's wire ``price_ranges`` for a named structure, e.g. linear_cent → one 0–1 range, step 0.01."""

    def fmt(units: int) -> str:
        return f"{Decimal(units).scaleb(-4):.4f}"

    return [{"start": fmt(r.start), "end": fmt(r.end), "step": fmt(r.step)} for r in STRUCTURES[structure]]


def _hour_text(et: datetime) -> str:
    hour = et.hour % 12 or 12
    return f"{hour}{'am' if et.hour < 12 else 'pm'} {et.tzname()}"


def _date_text(et: datetime) -> str:
    return f"{_MONTHS[et.month - 1].title()} {et.day}, {et.year}"


def _dollars(strike: Decimal) -> str:
    """``$73,250`` (whole strikes without decimals), ``$0.25`` otherwise."""
    return f"${int(strike):,}" if strike == strike.to_integral_value() else f"${strike:,}"


@dataclass(frozen=True, slots=True)
class SeriesDef:
    ticker: str
    title: str
    frequency: str = "hourly"
    category: str = "Crypto"
    tags: tuple[str, ...] = ()
    settlement_sources: tuple[tuple[str, str], ...] = (("CF Benchmarks", "https://www.cfbenchmarks.com/"),)
    fee_type: str = "quadratic"
    fee_multiplier: int = 1


@dataclass(frozen=True, slots=True)
class MarketDef:
    """The static fields of one strike market (the REST Market object minus book, volume and status)."""

    ticker: str
    event_ticker: str
    series_ticker: str
    title: str
    yes_sub_title: str
    no_sub_title: str
    rules_primary: str
    open_time_us: int
    close_time_us: int
    expected_expiration_us: int
    latest_expiration_us: int
    floor_strike: Decimal
    strike_type: str = "greater"
    market_type: str = "binary"
    price_level_structure: str = "linear_cent"
    settlement_timer_seconds: int = 5
    can_close_early: bool = False

    @property
    def price_ranges(self) -> list[dict[str, str]]:
        return price_ranges(self.price_level_structure)

    @property
    def grid(self) -> TickGrid:
        return TickGrid.for_structure(self.price_level_structure)


@dataclass(frozen=True, slots=True)
class HourlyEvent:
    event_ticker: str
    series_ticker: str
    title: str
    sub_title: str
    open_time_us: int
    close_time_us: int
    expected_expiration_us: int
    markets: tuple[MarketDef, ...] = field(default=())
    mutually_exclusive: bool = False
    strike_period: str = "hour"

    @property
    def strike_date_us(self) -> int:
        return self.close_time_us


def index_value(average_index: float | Decimal) -> Decimal:
    """The settlement index as published: the average rounded to the cent (it goes in ``expiration_value``)."""
    value = average_index if isinstance(average_index, Decimal) else Decimal(repr(average_index))
    return value.quantize(_CENT, ROUND_HALF_EVEN)


def settle(market: MarketDef, average_index: float | Decimal) -> tuple[Literal["yes", "no"], int]:
    """Result and YES settlement value ($0.0001) from the 60-s average before close.

    ``greater``: YES iff the average (rounded to the cent) is strictly above ``floor_strike``, so for
    ``T73249.99`` an average of 73250.00 is YES and 73249.99 is NO.
    """
    value = index_value(average_index)
    if market.strike_type == "greater":
        yes = value > market.floor_strike
    elif market.strike_type == "greater_or_equal":
        yes = value >= market.floor_strike
    else:
        raise ValueError(f"cannot settle strike_type {market.strike_type!r} (only greater / greater_or_equal)")
    return ("yes", PRICE_SCALE) if yes else ("no", 0)


@dataclass(slots=True, eq=False)
class Schedule:
    """Hourly events of one series. Ladders are built lazily and cached, so a ladder never changes."""

    series: str = "KXBTCD"
    opens_before_close_s: int = 3600
    strikes: int = 11
    spacing: Decimal = Decimal(250)
    price_level_structure: str = "linear_cent"
    settlement_timer_seconds: int = 5
    """Seconds from ``determined`` to ``finalized`` (payout)."""
    determination_delay_s: int = 1
    """Seconds from the close to the result being set (the 60-s average is complete at the close)."""
    expected_expiration_s: int = 300
    latest_expiration_s: int = 7 * 24 * 3600
    _events: dict[int, HourlyEvent] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.price_level_structure not in STRUCTURES:
            raise ValueError(f"unknown price level structure {self.price_level_structure!r}")
        if self.opens_before_close_s <= 0 or self.settlement_timer_seconds < 0 or self.determination_delay_s < 0:
            raise ValueError("opens_before_close_s must be > 0; timers must be >= 0")

    @property
    def series_def(self) -> SeriesDef:
        asset = _ASSETS.get(self.series, (self.series, self.series))[0]
        return SeriesDef(self.series, f"{asset} price today", tags=(asset,))

    # -- lifecycle: pure functions of time and the result --------------------------------------------

    def determination_time_us(self, market: MarketDef) -> int:
        return market.close_time_us + self.determination_delay_s * _US_PER_SECOND

    def finalization_time_us(self, market: MarketDef) -> int:
        return self.determination_time_us(market) + market.settlement_timer_seconds * _US_PER_SECOND

    def status_at(self, market: MarketDef, now_us: int, result: str | None = None) -> MarketStatus:
        """``initialized`` before open, ``active`` in ``[open, close)``, then ``closed``; once the result
        is set and the determination time has come, ``determined``; ``finalized`` from the end of the
        settlement timer. Without a result the market stays ``closed``."""
        if now_us < market.open_time_us:
            return MarketStatus.INITIALIZED
        if now_us < market.close_time_us:
            return MarketStatus.ACTIVE
        if not result or now_us < self.determination_time_us(market):
            return MarketStatus.CLOSED
        if now_us < self.finalization_time_us(market):
            return MarketStatus.DETERMINED
        return MarketStatus.FINALIZED

    # -- events -----------------------------------------------------------------------------------

    def events_between(
        self, start_us: int, end_us: int, underlying_price_at: Callable[[int], float]
    ) -> list[HourlyEvent]:
        """Events whose lifetime ``[open, finalization]`` overlaps ``[start_us, end_us)``, by close time.

        A new event's ladder is centred on ``underlying_price_at(open_time_us)``; ask only for windows the
        index has reached. The second 01:00 ET of the autumn DST change is skipped: its ticker would repeat
        the first one's.
        """
        tail_us = (self.determination_delay_s + self.settlement_timer_seconds) * _US_PER_SECOND
        first_close = -(-(start_us - tail_us) // _HOUR_US) * _HOUR_US
        events = []
        close_us = first_close
        while close_us - self.opens_before_close_s * _US_PER_SECOND < end_us:
            if us_to_datetime(close_us).astimezone(ET).fold == 0:
                events.append(self._event(close_us, underlying_price_at))
            close_us += _HOUR_US
        self._prune(start_us - tail_us - 2 * _HOUR_US)
        return events

    def _prune(self, before_us: int) -> None:
        for close_us in [c for c in self._events if c < before_us]:
            del self._events[close_us]

    def _event(self, close_us: int, underlying_price_at: Callable[[int], float]) -> HourlyEvent:
        cached = self._events.get(close_us)
        if cached is not None:
            return cached
        open_us = close_us - self.opens_before_close_s * _US_PER_SECOND
        et = us_to_datetime(close_us).astimezone(ET)
        asset, index_name = _ASSETS.get(self.series, (self.series, f"{self.series} index"))
        ticker = event_ticker(self.series, close_us)
        expected_us = close_us + self.expected_expiration_s * _US_PER_SECOND
        at = f"{et.hour % 12 or 12} {'AM' if et.hour < 12 else 'PM'} {et.tzname()}"
        markets = tuple(
            MarketDef(
                ticker=f"{ticker}-T{floor}",
                event_ticker=ticker,
                series_ticker=self.series,
                title=f"{asset} price on {_date_text(et)}?",
                yes_sub_title=f"{_dollars(strike)} or above",
                no_sub_title=f"{_dollars(strike)} or above",
                rules_primary=(
                    f"If the simple average of the sixty seconds of CF Benchmarks' {index_name} before {at} is "
                    f"above {floor} at {at} on {_date_text(et)}, then the market resolves to Yes."
                ),
                open_time_us=open_us,
                close_time_us=close_us,
                expected_expiration_us=expected_us,
                latest_expiration_us=close_us + self.latest_expiration_s * _US_PER_SECOND,
                floor_strike=floor,
                price_level_structure=self.price_level_structure,
                settlement_timer_seconds=self.settlement_timer_seconds,
            )
            for strike in strike_ladder(underlying_price_at(open_us), self.spacing, self.strikes)
            for floor in [strike - _CENT]
        )
        event = HourlyEvent(
            event_ticker=ticker,
            series_ticker=self.series,
            title=f"{asset} price today at {_hour_text(et)}?",
            sub_title=f"On {_date_text(et)}",
            open_time_us=open_us,
            close_time_us=close_us,
            expected_expiration_us=expected_us,
            markets=markets,
        )
        self._events[close_us] = event
        return event

    @staticmethod
    def close_us_of(event_ticker_text: str) -> int:
        """Inverse of :func:`event_ticker` for the hour part: ``KXBTCD-26AUG1317`` → 2026-08-13T21:00Z (µs)."""
        stamp = event_ticker_text.rsplit("-", 1)[-1]
        if len(stamp) != 9 or stamp[2:5] not in _MONTHS or not (stamp[:2] + stamp[5:]).isdigit():
            raise ValueError(f"not an hourly event ticker: {event_ticker_text!r}")
        year, month = 2000 + int(stamp[:2]), _MONTHS.index(stamp[2:5]) + 1
        return datetime_to_us(datetime(year, month, int(stamp[5:7]), int(stamp[7:9]), tzinfo=ET))
