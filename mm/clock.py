"""The one place the system clock is read.

Design rule (design.md §3): time comes only from a :class:`Clock` — the wall clock when trading live,
recorded time in replay and backtest — and nothing outside this module calls ``datetime.now()`` or
``time.time()``. Passing a clock in explicitly is what lets a replay reproduce a session bit for bit.

Units and conventions (NFR-203: microsecond precision, all timestamps UTC):

* **Timestamps** are ``int`` microseconds since the Unix epoch, UTC ("``_us``"). Integers, so they
  compare, hash and subtract exactly; a ``datetime`` is derived from them only for display or I/O.
* **Intervals** are measured with ``monotonic_ns()``: ``int`` nanoseconds from an arbitrary origin,
  never going backwards, so a wall-clock step (NTP slew, leap smear) cannot make a latency negative.
* ``datetime`` values crossing this module's boundary are timezone-aware UTC; naive datetimes are
  refused because a timestamp whose zone is implicit is a bug waiting for a DST change.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Final

__all__ = [
    "Clock",
    "ScaledClock",
    "SimulatedClock",
    "WallClock",
    "datetime_to_us",
    "format_rfc3339_us",
    "us_to_datetime",
]

US_PER_SECOND: Final = 1_000_000
NS_PER_US: Final = 1_000

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US: Final = timedelta(microseconds=1)


def us_to_datetime(us: int) -> datetime:
    """Convert ``us`` (microseconds since the Unix epoch, UTC) to an aware UTC ``datetime``.

    Exact: built with integer ``timedelta`` arithmetic, never through a float timestamp (a float
    holds only ~15-16 significant digits, which loses microseconds for present-day times).
    """
    return _EPOCH + timedelta(microseconds=us)


def datetime_to_us(dt: datetime) -> int:
    """Convert an aware ``datetime`` (any zone) to microseconds since the Unix epoch, UTC. Exact.

    Raises ``ValueError`` for a naive datetime: every timestamp in the system is explicitly UTC.
    """
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"naive datetime {dt.isoformat()} rejected: timestamps must be timezone-aware")
    # timedelta // timedelta is integer division on the exact microsecond count.
    return (dt - _EPOCH) // _ONE_US


def format_rfc3339_us(us: int) -> str:
    """Format ``us`` (microseconds since the epoch, UTC) as RFC 3339 with 6 fraction digits and ``Z``.

    Example: ``"2026-01-17T14:30:00.123456Z"``. Fixed width, so the strings also sort chronologically.
    """
    # isoformat, not strftime: glibc's %Y does not zero-pad years below 1000.
    return us_to_datetime(us).isoformat(timespec="microseconds").removesuffix("+00:00") + "Z"


class Clock(ABC):
    """Source of time. Inject one; never read the system clock directly."""

    @abstractmethod
    def now_us(self) -> int:
        """Current time in microseconds since the Unix epoch, UTC."""

    @abstractmethod
    def monotonic_ns(self) -> int:
        """Nanoseconds from an arbitrary origin for measuring intervals; never decreases."""

    def now(self) -> datetime:
        """Current time as an aware UTC ``datetime`` (microsecond precision), derived from ``now_us``.

        Derived rather than read separately so that ``now()`` and ``now_us()`` can never disagree.
        """
        return us_to_datetime(self.now_us())


class WallClock(Clock):
    """Real time, for live trading. NTP keeps the host clock within NFR-203's 100 ms drift budget."""

    def now_us(self) -> int:
        """Wall-clock microseconds since the Unix epoch, UTC (``time.time_ns() // 1000``)."""
        # time_ns, not time(): an int avoids float rounding at microsecond resolution.
        return time.time_ns() // NS_PER_US

    def monotonic_ns(self) -> int:
        """``time.monotonic_ns()``: immune to wall-clock steps, so safe for latencies."""
        return time.monotonic_ns()

    def __repr__(self) -> str:
        return "WallClock()"


class ScaledClock(Clock):
    """Simulation time that runs ``speed`` times as fast as real time, starting at ``start_us``.

    The exchange simulator's clock: ``--speed 60`` plays an hour of market life in a real minute. It is
    driven by a base clock's monotonic time (the wall clock by default), so it never jumps backwards.
    """

    def __init__(self, start_us: int, speed: float = 1.0, base: Clock | None = None) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self._base = base if base is not None else WallClock()
        self._origin_ns = self._base.monotonic_ns()
        self.start_us = start_us
        self.speed = speed

    def now_us(self) -> int:
        """Simulation time, µs since the epoch: start + elapsed real time × speed."""
        return self.start_us + int((self._base.monotonic_ns() - self._origin_ns) * self.speed) // NS_PER_US

    def monotonic_ns(self) -> int:
        """Simulated nanoseconds since the clock was created (scaled like ``now_us``)."""
        return int((self._base.monotonic_ns() - self._origin_ns) * self.speed)

    def real_seconds(self, simulated_seconds: float) -> float:
        """How long ``simulated_seconds`` of simulation time take in real time."""
        return simulated_seconds / self.speed

    def __repr__(self) -> str:
        return f"ScaledClock(start_us={self.start_us}, speed={self.speed})"


def _seconds_to_us(seconds: Decimal | int) -> int:
    """Convert a non-negative duration in seconds to whole microseconds, refusing to round."""
    # bool is an int subclass and float would round silently; neither is a meaningful duration here.
    if isinstance(seconds, bool) or not isinstance(seconds, Decimal | int):
        raise TypeError(f"seconds must be a Decimal or int, not {type(seconds).__name__}")
    if isinstance(seconds, Decimal) and not seconds.is_finite():
        raise ValueError(f"seconds {seconds} is not finite")
    scaled = seconds * US_PER_SECOND
    us = int(scaled)
    if scaled != us:
        raise ValueError(f"seconds {seconds} is finer than one microsecond")
    return us


class SimulatedClock(Clock):
    """A clock that moves only when told, for tests, replay and backtest.

    Time is monotonic: ``advance`` by a negative amount or ``set_us`` to an earlier instant raises
    ``ValueError``, because a replay never rewinds and code downstream (rate limiters, staleness
    checks) may rely on time not going backwards. ``monotonic_ns`` moves in lock-step with ``now_us``
    so intervals measured either way agree.
    """

    __slots__ = ("_monotonic_start_ns", "_now_us", "_start_us")

    def __init__(self, start_us: int, *, monotonic_start_ns: int = 0) -> None:
        """Start at ``start_us`` (microseconds since the epoch, UTC); ``monotonic_ns`` starts at
        ``monotonic_start_ns`` (nanoseconds)."""
        self._start_us = start_us
        self._now_us = start_us
        self._monotonic_start_ns = monotonic_start_ns

    def now_us(self) -> int:
        """Simulated microseconds since the Unix epoch, UTC."""
        return self._now_us

    def monotonic_ns(self) -> int:
        """``monotonic_start_ns`` plus the simulated time elapsed since construction, in nanoseconds."""
        return self._monotonic_start_ns + (self._now_us - self._start_us) * NS_PER_US

    def advance(self, seconds: Decimal | int) -> None:
        """Move time forward by ``seconds`` (Decimal or int, >= 0, whole microseconds)."""
        self.advance_us(_seconds_to_us(seconds))

    def advance_us(self, us: int) -> None:
        """Move time forward by ``us`` microseconds (>= 0)."""
        if us < 0:
            raise ValueError(f"cannot advance a simulated clock by a negative amount ({us} us)")
        self._now_us += us

    def set_us(self, us: int) -> None:
        """Jump to ``us`` (microseconds since the epoch, UTC); it must not be earlier than now."""
        if us < self._now_us:
            raise ValueError(f"simulated time cannot go backwards: {us} us is before now ({self._now_us} us)")
        self._now_us = us

    def __repr__(self) -> str:
        return f"SimulatedClock(now={format_rfc3339_us(self._now_us)})"
