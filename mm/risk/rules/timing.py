"""Time-based rules of FR-502/FR-511: the settlement cutoff and trading hours."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Final
from zoneinfo import ZoneInfo

from mm.domain.quotes import QuoteSet
from mm.risk.base import ALLOW, RiskContext, RiskDecision, RiskRule, block
from mm.risk.rules.position import number_text
from mm.specs.risk import MarketHoursRuleConfig, SettlementCutoffRuleConfig, TradingWindow


class SettlementCutoffRule(RiskRule):
    """BLOCK once ``time_to_settlement_seconds`` ≤ ``cutoff_minutes`` × 60 (FR-502, RCR-201).

    FR-502 and RCR-201 also ask to cancel the open orders at the cutoff: a BLOCK already does that, as
    the execution layer cancels whatever rests for a market whose quotes were blocked. An unknown time
    (NaN) is treated as inside the cutoff (fail safe); infinity (no settlement time) never blocks.
    """

    name = "settlement_cutoff"

    def __init__(self, config: SettlementCutoffRuleConfig) -> None:
        super().__init__()
        self.config = config
        self._cutoff_s = float(config.cutoff_minutes * 60)
        self._cutoff_text = f"inside the {number_text(config.cutoff_minutes)}-minute cutoff"

    def evaluate(self, proposed_quotes: QuoteSet, context: RiskContext) -> RiskDecision:
        remaining = context.time_to_settlement_seconds
        if remaining > self._cutoff_s:
            return ALLOW
        if math.isnan(remaining):
            return block(f"time to settlement unknown: {self._cutoff_text} (fail safe)")
        if remaining <= 0:
            return block(f"settlement time passed {-remaining / 60:.1f} min ago: {self._cutoff_text}")
        return block(f"{remaining / 60:.1f} min to settlement: {self._cutoff_text}")


_DAY_US: Final = 86_400_000_000
_DAY_S: Final = 86_400
_WEEKDAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_EPOCH_WEEKDAY: Final = 3
"""1970-01-01 was a Thursday (Monday = 0)."""


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def _day_intervals(windows: list[TradingWindow]) -> tuple[tuple[tuple[int, int], ...], ...]:
    """Per weekday (Monday = 0), the open intervals ``[start_us, end_us)`` of local time of day.

    A window whose end is not after its start runs past midnight into the next day (``22:00``–``02:00``;
    ``start == end`` is 24 hours from ``start``). ``24:00`` is the end of the day.
    """
    days: list[list[tuple[int, int]]] = [[] for _ in range(7)]
    for window in windows:
        start = _minutes(window.start) * 60_000_000
        end = _minutes(window.end) * 60_000_000
        for name in dict.fromkeys(window.days):
            day = _WEEKDAYS.index(name)
            if end > start:
                days[day].append((start, end))
            else:
                days[day].append((start, _DAY_US))
                if end > 0:
                    days[(day + 1) % 7].append((0, end))
    return tuple(tuple(sorted(d)) for d in days)


class MarketHoursRule(RiskRule):
    """BLOCK outside every trading window, in the config's IANA time zone (FR-511).

    No windows (the default) means always open: ``evaluate`` returns ALLOW at once. Windows are in
    local wall-clock time, so 09:30 is 09:30 whether daylight saving time is on or not.

    Caching (hot path): the open/closed state is computed once and kept with the µs interval
    ``[valid_from, valid_until)`` over which it cannot change; ``evaluate`` is then two integer
    comparisons. ``valid_until`` is the next window boundary of the current local day or local
    midnight, whichever is first, converted with the UTC offset in force *now* — and, when the zone's
    offset changes before that instant (a DST transition), the transition itself (found by bisection
    to the second), so the state is recomputed from the new local time there. That covers a boundary
    inside a skipped hour (spring forward) and a repeated hour (fall back: a window is open whenever the
    wall clock reads a time inside it, both times). Any ``now_us`` outside the interval — including a
    clock that moved backwards, as in a replay — recomputes. Assumes at most one offset change per local
    day, true of every IANA zone.
    """

    name = "market_hours"

    def __init__(self, config: MarketHoursRuleConfig) -> None:
        super().__init__()
        self.config = config
        self._always = not config.windows
        self._zone = ZoneInfo(config.timezone)
        self._days = _day_intervals(config.windows)
        self._bounds = tuple(tuple(sorted({b for iv in day for b in iv} | {_DAY_US})) for day in self._days)
        windows = ", ".join(f"{'/'.join(w.days)} {w.start}-{w.end}" for w in config.windows)
        self._reason = f"outside trading hours ({windows or 'none'}; {config.timezone})"
        self._closed = block(self._reason)  # built once: the verdict while closed allocates nothing
        self._open = False
        self._valid_from = 0
        self._valid_until = 0  # empty interval: the first call computes

    @property
    def valid_until_us(self) -> int:
        """The end (exclusive) of the cached state's validity, µs since the epoch (for tests and debugging)."""
        return self._valid_until

    def evaluate(self, proposed_quotes: QuoteSet, context: RiskContext) -> RiskDecision:
        if self._always:
            return ALLOW
        now = context.now_us
        if not self._valid_from <= now < self._valid_until:
            try:
                self._recompute(now)
            except (OverflowError, ValueError, OSError):
                return block(f"time {now} µs cannot be converted to local time: {self._reason} (fail safe)")
        return ALLOW if self._open else self._closed

    def _offset_s(self, epoch_s: int) -> int:
        offset = datetime.fromtimestamp(epoch_s, self._zone).utcoffset()
        return int(offset.total_seconds()) if offset is not None else 0

    def _recompute(self, now_us: int) -> None:
        now_s, frac_us = divmod(now_us, 1_000_000)
        offset = self._offset_s(now_s)
        day, second_of_day = divmod(now_s + offset, _DAY_S)  # local wall clock, as days since the epoch
        weekday = (day + _EPOCH_WEEKDAY) % 7
        tod = second_of_day * 1_000_000 + frac_us
        is_open = any(start <= tod < end for start, end in self._days[weekday])
        boundary = next(b for b in self._bounds[weekday] if b > tod)  # _DAY_US (midnight) is always there
        until_s = day * _DAY_S - offset + boundary // 1_000_000
        if self._offset_s(until_s) != offset:
            # The offset changes in (now, until]: stop the cache at the transition (bisection to the second).
            lo, hi = now_s, until_s
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if self._offset_s(mid) == offset:
                    lo = mid
                else:
                    hi = mid
            until_s = hi
        self._open = is_open
        self._valid_from = now_us
        self._valid_until = until_s * 1_000_000
