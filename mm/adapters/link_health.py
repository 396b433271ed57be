"""How well a venue connection works (NFR-202/203/204): round-trip times, reachability, the venue's clock.

An adapter that can report this implements :class:`LinkMonitored` (``link_health()`` and ``probe()``); the
controller's degradation monitor reads it to decide when to widen, pause or alert. This module only measures:
it decides nothing.

:class:`LinkStats` is the mutable collector an adapter feeds:

* **REST round trips** of the authenticated API (``/portfolio/...``: the part trading depends on), measured on
  the adapter's wall clock's monotonic time around the HTTP exchange alone (after the client-side rate limiter),
  in seconds. A timed-out request is a sample of the time it was given (a lower bound of its RTT): when every
  request times out, latency must still look bad. The last :data:`RTT_WINDOW` samples are kept.
* **Reachability**: consecutive failures (timeouts, transport errors, HTTP 5xx) and when the venue last answered
  (any other status, 4xx included: the venue is reachable, it just refused).
* **The venue's clock**, as bounds on ``offset = server time - our time`` (µs; "our time" is the adapter's
  market clock, the one the node stamps everything with). A server clock reading ``S`` taken while our request
  was in flight (local send ``t0``, receive ``t1``) bounds the offset NTP-style: ``S - t1 <= offset <= S - t0``
  (widened by the reading's resolution), so the error is about RTT/2 around the request midpoint. A reading
  that can only be in the past — an event's time on a stream message, a "last updated" time — gives a lower
  bound ``S - t1`` alone. :func:`combine_clock` intersects the recent samples, newest first, and stops at the
  first one that contradicts the newer ones (the clock moved: newer evidence wins).
* **The WebSocket**: connected or not, and when a frame (data or control) was last seen — observed whenever
  ``link_health()`` is called, so to the resolution of the caller's polling.
"""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Protocol, runtime_checkable

from mm.clock import Clock

__all__ = [
    "CLOCK_WINDOW",
    "RTT_WINDOW",
    "ClockOffset",
    "ClockSample",
    "LinkHealth",
    "LinkMonitored",
    "LinkStats",
    "combine_clock",
]

RTT_WINDOW: Final = 16
"""REST round trips kept: a median over 16 ignores a few slow outliers yet follows a real change within ~8
requests (the monitor probes every check while an exchange is degraded, so recovery is seen within seconds)."""
CLOCK_WINDOW: Final = 32
"""Clock samples kept (they are also limited by age: see :meth:`LinkStats.snapshot`)."""
NS_PER_S: Final = 1_000_000_000


@dataclass(frozen=True, slots=True)
class ClockSample:
    """Bounds on ``server time - our time`` in µs from one reading; ``high_us`` None = no upper bound."""

    taken_ns: int
    """When it was taken, wall-clock monotonic ns (for its age)."""
    low_us: int
    high_us: int | None


@dataclass(frozen=True, slots=True)
class ClockOffset:
    """What the recent samples say together: ``low_us <= server - ours <= high_us`` (µs)."""

    low_us: int
    high_us: int | None
    """None: only lower bounds were measured (the venue's clock is at least ``low_us`` ahead)."""
    samples: int

    @property
    def estimate_us(self) -> int:
        """The midpoint of the bounds; the lower bound when there is no upper one."""
        return self.low_us if self.high_us is None else (self.low_us + self.high_us) // 2

    @property
    def error_us(self) -> int | None:
        """Half the width of the bounds (the estimate is within this of the truth); None when unbounded."""
        return None if self.high_us is None else (self.high_us - self.low_us + 1) // 2


def combine_clock(samples: Sequence[ClockSample], now_ns: int, max_age_ns: int) -> ClockOffset | None:
    """Intersect the samples (oldest first in ``samples``) no older than ``max_age_ns``, newest first, stopping
    before the first that contradicts the newer ones. None when no sample is recent enough."""
    low: int | None = None
    high: int | None = None
    used = 0
    for sample in reversed(samples):
        if now_ns - sample.taken_ns > max_age_ns:
            break
        new_low = sample.low_us if low is None else max(low, sample.low_us)
        new_high = high if sample.high_us is None else sample.high_us if high is None else min(high, sample.high_us)
        if new_high is not None and new_low > new_high:
            break  # older evidence disagrees with newer: the clock was stepped, trust the newer
        low, high, used = new_low, new_high, used + 1
    return None if low is None else ClockOffset(low, high, used)


@dataclass(frozen=True, slots=True)
class LinkHealth:
    """One venue connection's health at ``measured_wall_ns`` (see the module docstring). Times are the
    adapter's wall clock's monotonic ns; compare them with ``measured_wall_ns``, not another clock."""

    measured_wall_ns: int
    rtt_p50_s: float | None
    """Median REST round trip of the last ``rtt_samples`` authenticated requests, seconds; None before any."""
    rtt_samples: int
    consecutive_failures: int
    """Authenticated requests in a row that timed out, failed in transport or got a 5xx (0 after an answer)."""
    last_success_wall_ns: int | None
    """When the authenticated API last answered (any status below 500); None if it never did."""
    last_failure: str | None
    """Why the last failed request failed (``timed out``, ``HTTP 503``…), for alerts."""
    ws_connected: bool | None
    """The stream's state; None when the adapter has no stream."""
    ws_last_frame_wall_ns: int | None
    """When a stream frame (pings included) or a (re)connection was last seen; None if never."""
    clock: ClockOffset | None
    """The venue's clock against ours from recent samples; None when there are none."""
    clock_sampled_wall_ns: int | None = None
    """When the newest clock sample was taken (however old); None if never."""

    @property
    def clock_offset_us(self) -> int | None:
        """Best estimate of ``server time - our time`` in µs (see :attr:`ClockOffset.estimate_us`)."""
        return None if self.clock is None else self.clock.estimate_us

    def seconds_since(self, wall_ns: int | None) -> float | None:
        """Seconds from ``wall_ns`` (one of the times above) to ``measured_wall_ns``; None for None."""
        return None if wall_ns is None else (self.measured_wall_ns - wall_ns) / NS_PER_S


@runtime_checkable
class LinkMonitored(Protocol):
    """An adapter that reports its connection's health and can be probed (the Kalshi adapter)."""

    @property
    def connected(self) -> bool: ...

    def link_health(self, *, clock_window_s: float = 60.0) -> LinkHealth: ...

    async def probe(self, timeout_s: float) -> bool: ...


class LinkStats:
    """The collector an adapter feeds (see the module docstring). ``wall`` times round trips and ages."""

    def __init__(self, wall: Clock) -> None:
        self._wall = wall
        self._rtts: deque[float] = deque(maxlen=RTT_WINDOW)
        self._clock: deque[ClockSample] = deque(maxlen=CLOCK_WINDOW)
        self.consecutive_failures = 0
        self.failures = 0
        """All failed requests so far."""
        self.last_success_ns: int | None = None
        self.last_failure: str | None = None
        self.stream_time_wanted = True
        """Whether the next stream message's time is wanted (see :meth:`stream_time`)."""
        self._frames_seen = -1
        self._ws_was_up = False
        self._last_frame_ns: int | None = None

    # ------------------------------------------------------------------ REST

    def begin(self) -> int:
        """Call just before sending; pass the result to :meth:`answered` or :meth:`failed`."""
        return self._wall.monotonic_ns()

    def answered(self, started_ns: int, status: int) -> None:
        """The venue answered ``status``: a 5xx is a failure, anything else proves it reachable."""
        now = self._wall.monotonic_ns()
        if status >= 500:
            self._fail(f"HTTP {status}")
            return
        self._rtts.append((now - started_ns) / NS_PER_S)
        self.consecutive_failures = 0
        self.last_success_ns = now

    def failed(self, started_ns: int, why: str, *, timed_out: bool) -> None:
        """No answer: a timeout (its duration is a lower bound of the RTT, so it is a sample) or a transport
        error (no sample: a refused connection says nothing about latency)."""
        if timed_out:
            self._rtts.append((self._wall.monotonic_ns() - started_ns) / NS_PER_S)
        self._fail(why)

    def _fail(self, why: str) -> None:
        self.consecutive_failures += 1
        self.failures += 1
        self.last_failure = why

    # ------------------------------------------------------------------ the venue's clock

    def clock_reading(self, server_us: int, resolution_us: int, sent_us: int, received_us: int) -> None:
        """A server clock reading taken while our request was in flight (local ``sent_us``..``received_us``,
        our clock), truncated or rounded to ``resolution_us``: two-sided bounds."""
        low = server_us - resolution_us - received_us
        high = server_us + resolution_us - sent_us
        self._clock.append(ClockSample(self._wall.monotonic_ns(), low, high))

    def server_time_at_least(self, server_us: int, resolution_us: int, received_us: int) -> None:
        """A venue time that was already past when we received it at ``received_us``: a lower bound."""
        self._clock.append(ClockSample(self._wall.monotonic_ns(), server_us - resolution_us - received_us, None))

    def stream_time(self, server_ms: int, received_us: int) -> None:
        """A stream message's time (ms, the venue's clock) received at ``received_us``: a lower bound. One per
        snapshot is plenty, so an adapter reads the message only while :attr:`stream_time_wanted` — the hot
        path pays one attribute read, not the ~1.5 µs a sample costs."""
        self.stream_time_wanted = False
        self.server_time_at_least(server_ms * 1000, 1000, received_us)

    # ------------------------------------------------------------------ snapshot

    def snapshot(self, ws_connected: bool | None, ws_frames: int, *, clock_window_s: float) -> LinkHealth:
        """The health now; ``ws_frames`` is the stream's frame count on its current connection (a change, or
        a new connection, means it is alive). Clock samples older than ``clock_window_s`` are ignored."""
        now = self._wall.monotonic_ns()
        self.stream_time_wanted = True
        if ws_connected:
            if not self._ws_was_up or ws_frames != self._frames_seen:
                self._last_frame_ns = now
            self._frames_seen = ws_frames
        self._ws_was_up = bool(ws_connected)
        rtts = list(self._rtts)
        return LinkHealth(
            measured_wall_ns=now,
            rtt_p50_s=statistics.median(rtts) if rtts else None,
            rtt_samples=len(rtts),
            consecutive_failures=self.consecutive_failures,
            last_success_wall_ns=self.last_success_ns,
            last_failure=self.last_failure,
            ws_connected=ws_connected,
            ws_last_frame_wall_ns=self._last_frame_ns,
            clock=combine_clock(list(self._clock), now, int(clock_window_s * NS_PER_S)),
            clock_sampled_wall_ns=self._clock[-1].taken_ns if self._clock else None,
        )
