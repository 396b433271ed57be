"""Alert throttling (NFR-403 "throttling prevents spam; critical alerts bypass it"). Pure: time is passed in.

Rule, per alert *name*, over a sliding window of ``window_us`` microseconds (spec ``alerting.throttle``:
``window_seconds``, ``max_alerts_per_window``):

* An alert is **allowed** when fewer than ``max_per_window`` alerts of that name were allowed in the last
  ``window_us`` (the window ending now, exclusive of alerts exactly ``window_us`` old).
* Otherwise it is **suppressed**: not delivered to any channel, but counted. The count of alerts suppressed
  since the previous allowed one is handed to the next allowed alert of that name
  (:attr:`ThrottleDecision.suppressed_before`), so a receiver learns "and 37 more like this" instead of
  nothing; totals per name are in :meth:`AlertThrottle.stats`.
* A **critical** alert is always allowed (``bypassed`` when the window was full). It still counts toward the
  window, so a burst of criticals quiets the warnings of the same name that follow it.

Different names never affect each other. Memory: at most ``max_per_window`` timestamps per name.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from decimal import Decimal

from mm.specs.node import Severity, Throttle

__all__ = ["AlertThrottle", "ThrottleDecision", "ThrottleStats"]

US_PER_SECOND = 1_000_000


@dataclass(frozen=True, slots=True)
class ThrottleDecision:
    """The throttle's verdict on one alert.

    ``allowed``: deliver it. ``bypassed``: allowed only because it is critical (the window was full).
    ``suppressed_before``: for an allowed alert, how many of its name were suppressed since the previous
    allowed one (0 for a suppressed alert). ``in_window``: alerts of the name allowed in the window,
    including this one when allowed.
    """

    allowed: bool
    bypassed: bool
    suppressed_before: int
    in_window: int


@dataclass(frozen=True, slots=True)
class ThrottleStats:
    """Totals for one alert name since the throttle was created."""

    allowed: int
    suppressed: int
    bypassed: int


class _NameState:
    __slots__ = ("allowed", "bypassed", "pending_suppressed", "suppressed", "times")

    def __init__(self) -> None:
        self.times: deque[int] = deque()
        self.allowed = 0
        self.suppressed = 0
        self.bypassed = 0
        self.pending_suppressed = 0  # suppressed since the last allowed one: reported with the next


class AlertThrottle:
    """Per-name sliding-window limit (see the module docstring). ``window_us``: window length in µs."""

    def __init__(self, window_us: int, max_per_window: int) -> None:
        if window_us <= 0 or max_per_window <= 0:
            raise ValueError("window_us and max_per_window must be positive")
        self.window_us = window_us
        self.max_per_window = max_per_window
        self._names: dict[str, _NameState] = {}

    @classmethod
    def from_spec(cls, spec: Throttle) -> AlertThrottle:
        """From ``alerting.throttle`` (``window_seconds`` may be fractional; kept to the microsecond)."""
        window_us = int(Decimal(spec.window_seconds) * US_PER_SECOND)
        return cls(window_us, spec.max_alerts_per_window)

    def decide(self, name: str, severity: Severity, now_us: int) -> ThrottleDecision:
        """Record an alert of ``name`` raised at ``now_us`` (µs) and say whether it goes out."""
        state = self._names.get(name)
        if state is None:
            state = self._names[name] = _NameState()
        cutoff = now_us - self.window_us
        while state.times and state.times[0] <= cutoff:
            state.times.popleft()
        full = len(state.times) >= self.max_per_window
        if full and severity != "critical":
            state.suppressed += 1
            state.pending_suppressed += 1
            return ThrottleDecision(allowed=False, bypassed=False, suppressed_before=0, in_window=len(state.times))
        state.times.append(now_us)
        if len(state.times) > self.max_per_window:  # a critical past the limit: keep memory bounded
            state.times.popleft()
        state.allowed += 1
        state.bypassed += int(full)
        reported, state.pending_suppressed = state.pending_suppressed, 0
        return ThrottleDecision(allowed=True, bypassed=full, suppressed_before=reported, in_window=len(state.times))

    def stats(self) -> dict[str, ThrottleStats]:
        """Totals per alert name seen so far."""
        return {name: ThrottleStats(s.allowed, s.suppressed, s.bypassed) for name, s in sorted(self._names.items())}

    @property
    def suppressed_total(self) -> int:
        """Alerts suppressed so far, all names."""
        return sum(s.suppressed for s in self._names.values())
