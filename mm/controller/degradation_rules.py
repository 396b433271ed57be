"""When a degraded network or a drifting exchange clock should widen, pause or alert (NFR-202/203/204). Pure.

:class:`DegradationPolicy` turns the TradingNode's ``network`` and ``time_sync`` blocks plus each exchange's
:class:`~mm.adapters.link_health.LinkHealth` into :class:`Decisions`: the holds and spread multipliers the
degradation monitor wants in force right now (declarative: a key absent from them is to be cleared) and the
events to log — only on transitions, so one episode gives one alert. It keeps only episode state; no IO, no
clock (every time it compares comes inside a ``LinkHealth``). The driver is :mod:`mm.controller.degradation`.

Rules, per exchange ``E`` (``hc`` = ``network.health_check``, window = ``hc.ping_timeout_seconds ×
hc.max_missed_pings``):

* **Outage**: at least ``max_missed_pings`` authenticated requests in a row failed (timeout, transport error,
  5xx) and none answered for the window, *and* the stream is not alive (disconnected, or no frame — pings
  included — for the window) → hold ``network/E`` and a warning ``NetworkOutage``. Cleared (``NetworkRestored``)
  once an authenticated request answers and the stream is connected: REST answering proves the network is back,
  and a stream that is connected but stays silent is the stream client's heartbeat's business.
* **Stream down alone** (REST answers): not held — the books go stale and each Market already cancels
  (``DataStale``) — but reported once: ``StreamDown`` after the stream has been disconnected for the window,
  ``StreamRestored`` when it reconnects.
* **Latency**, the median REST round trip (:data:`~mm.adapters.link_health.RTT_WINDOW` requests): above
  ``warn_threshold_ms`` → ``LatencyHigh``; above ``critical_threshold_ms`` → ``LatencyCritical`` and
  ``action_on_critical``: ``widen_spread`` widens every quote by :data:`WIDEN_ON_CRITICAL_LATENCY` (key
  ``latency/E``), ``pause`` holds ``latency/E``, ``ignore`` only reports. The action ends when the median falls
  under the warn threshold (``LatencyImproved``), the episode when it falls under :data:`WARN_CLEAR_FRACTION`
  of it (``LatencyNormal``): the gaps are the hysteresis that keeps a median near a threshold from flapping.
* **Clock drift**, from bounds ``low <= exchange clock - ours <= high``: drifting when the bounds prove
  ``|offset| > time_sync.max_drift_ms`` (``low > max`` or ``high < -max``, so the measurement's error never
  raises a false alarm) → ``ClockDrift`` (warning) for ``action_on_drift: warn`` and ``pause_trading``, plus the
  node-wide hold ``clock_drift`` for ``pause_trading``; ``ignore`` does nothing. Over when the estimate is back
  within the limit (``ClockDriftCleared``); with no clock samples the state is kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

from mm.adapters.link_health import ClockOffset, LinkHealth
from mm.specs.node import Network, TimeSync

__all__ = [
    "CLOCK_DRIFT_HOLD",
    "WARN_CLEAR_FRACTION",
    "WIDEN_ON_CRITICAL_LATENCY",
    "Decisions",
    "DegradationPolicy",
    "NodeEvent",
]

WIDEN_ON_CRITICAL_LATENCY: Final = 2.0
"""Spread multiplier while an exchange's latency is critical (``widen_spread``). At critical latency a cancel
or replace lands half a second or more after we decide it, so a quote is exposed to that much more price
movement before we can move it; doubling the spread roughly doubles the adverse move it absorbs while still
quoting (the requirement's "widen spreads" rather than a pause). Latency is not the spread's only input, so a
larger factor would mostly price us out; a smaller one would not cover the slower reaction."""
WARN_CLEAR_FRACTION: Final = 0.8
"""A latency episode ends when the median falls under 80 % of the warn threshold, not at it: a median hovering
at the threshold must not raise and clear alerts on alternate checks."""
CLOCK_DRIFT_HOLD: Final = "clock_drift"

Latency = Literal["normal", "warn", "critical"]


@dataclass(frozen=True, slots=True)
class NodeEvent:
    """An event for ``NodeContext.event``."""

    subject: str
    reason: str
    message: str
    warning: bool


@dataclass(frozen=True, slots=True)
class Decisions:
    """What should be in force now (keys the monitor owns; a key not here is to be cleared) and what to log."""

    holds: Mapping[str, str]
    """Hold key → reason (stable within an episode, so re-applying it changes nothing)."""
    widen: Mapping[str, float]
    """Widen key → spread multiplier (> 1)."""
    events: tuple[NodeEvent, ...]


@dataclass(slots=True)
class _Link:
    """Episode state of one exchange."""

    outage: str | None = None
    stream_down: bool = False
    latency: Latency = "normal"
    latency_reason: str = ""
    drift: str | None = None
    first_seen_wall_ns: int | None = None
    """When the policy first assessed this exchange: a stream that never connected is missing since then."""


@dataclass(slots=True)
class _Pass:
    """One assessment being built."""

    holds: dict[str, str] = field(default_factory=dict)
    widen: dict[str, float] = field(default_factory=dict)
    events: list[NodeEvent] = field(default_factory=list)

    def event(self, exchange: str, reason: str, message: str, *, warning: bool) -> None:
        self.events.append(NodeEvent(f"Exchange/{exchange}", reason, message, warning))


class DegradationPolicy:
    """The rules of the module docstring, with each exchange's episode state between calls."""

    def __init__(self) -> None:
        self._links: dict[str, _Link] = {}

    def degraded(self, exchange: str) -> bool:
        """An episode of ``exchange`` is in progress (the monitor then probes it on every check)."""
        link = self._links.get(exchange)
        return link is not None and (link.outage is not None or link.latency != "normal" or link.drift is not None)

    def assess(self, network: Network, time_sync: TimeSync, health: Mapping[str, LinkHealth]) -> Decisions:
        """Decide from every monitored exchange's health; exchanges no longer given are forgotten (their
        holds are cleared by omission)."""
        for gone in set(self._links) - set(health):
            del self._links[gone]
        out = _Pass()
        drifting: list[str] = []
        for exchange in sorted(health):
            h = health[exchange]
            link = self._links.setdefault(exchange, _Link(first_seen_wall_ns=h.measured_wall_ns))
            self._outage(exchange, link, h, network, out)
            self._latency(exchange, link, h, network, out)
            self._drift(exchange, link, h, time_sync, out)
            if link.drift is not None:
                drifting.append(link.drift)
        if drifting and time_sync.action_on_drift == "pause_trading":
            out.holds[CLOCK_DRIFT_HOLD] = "; ".join(drifting)
        return Decisions(out.holds, out.widen, tuple(out.events))

    # ------------------------------------------------------------------ outage

    def _outage(self, exchange: str, link: _Link, h: LinkHealth, network: Network, out: _Pass) -> None:
        hc = network.health_check
        window = float(hc.ping_timeout_seconds) * hc.max_missed_pings
        silent = h.seconds_since(h.ws_last_frame_wall_ns)
        ws_alive = h.ws_connected is True and silent is not None and silent < window
        unanswered = h.seconds_since(h.last_success_wall_ns)
        rest_down = h.consecutive_failures >= hc.max_missed_pings and (unanswered is None or unanswered >= window)
        if link.outage is None and rest_down and not ws_alive:
            since = "ever" if unanswered is None else f"{unanswered:.1f} s"
            stream = _stream_state(h, silent)
            link.outage = (
                f"exchange unreachable: {h.consecutive_failures} requests failed in a row "
                f"(last: {h.last_failure}), no answer for {since}, {stream}"
            )
            link.stream_down = False  # part of the outage now
            out.event(exchange, "NetworkOutage", f"{link.outage}; trading paused", warning=True)
        elif link.outage is not None and h.consecutive_failures == 0 and h.ws_connected is not False:
            link.outage = None
            out.event(exchange, "NetworkRestored", "the exchange answers and the stream is connected", warning=False)
        if link.outage is not None:
            out.holds[f"network/{exchange}"] = link.outage
            return
        # A stream that never connected (the node is starting) is missing since the policy first looked, not
        # "for ever": no StreamDown while the first connection is being made.
        missing = silent if silent is not None else h.seconds_since(link.first_seen_wall_ns)
        down_long = h.ws_connected is False and missing is not None and missing >= window
        if down_long and not link.stream_down:
            link.stream_down = True
            state = _stream_state(h, silent) if silent is not None else f"stream never connected in {missing:.1f} s"
            message = f"{state} while REST answers: books are stale, Markets wait for it"
            out.event(exchange, "StreamDown", message, warning=True)
        elif link.stream_down and h.ws_connected is not False:
            link.stream_down = False
            out.event(exchange, "StreamRestored", "the stream is connected again", warning=False)

    # ------------------------------------------------------------------ latency

    def _latency(self, exchange: str, link: _Link, h: LinkHealth, network: Network, out: _Pass) -> None:
        lat = network.latency
        rtt = h.rtt_p50_s
        if rtt is not None:
            warn, critical = lat.warn_threshold_ms / 1000, lat.critical_threshold_ms / 1000
            level = _next_level(link.latency, rtt, warn, critical)
            median = f"median REST round trip {rtt * 1000:.0f} ms over the last {h.rtt_samples} requests"
            if level != link.latency:
                self._latency_event(exchange, link.latency, level, median, lat.action_on_critical, out)
                if level == "critical":
                    link.latency_reason = f"{median} exceeds the critical {lat.critical_threshold_ms} ms"
                link.latency = level
        if link.latency == "critical":
            if lat.action_on_critical == "widen_spread":
                out.widen[f"latency/{exchange}"] = WIDEN_ON_CRITICAL_LATENCY
            elif lat.action_on_critical == "pause":
                out.holds[f"latency/{exchange}"] = link.latency_reason

    @staticmethod
    def _latency_event(exchange: str, before: Latency, after: Latency, median: str, action: str, out: _Pass) -> None:
        if after == "critical":
            what = {
                "widen_spread": f"widening every spread ×{WIDEN_ON_CRITICAL_LATENCY:g}",
                "pause": "trading paused",
                "ignore": "no action (action_on_critical: ignore)",
            }[action]
            out.event(exchange, "LatencyCritical", f"{median} is over the critical threshold: {what}", warning=True)
        elif after == "warn" and before == "normal":
            out.event(exchange, "LatencyHigh", f"{median} is over the warn threshold", warning=True)
        elif after == "warn":
            out.event(exchange, "LatencyImproved", f"{median} is back under the warn threshold", warning=False)
        else:
            out.event(exchange, "LatencyNormal", f"{median}: latency is normal again", warning=False)

    # ------------------------------------------------------------------ clock drift

    def _drift(self, exchange: str, link: _Link, h: LinkHealth, time_sync: TimeSync, out: _Pass) -> None:
        if time_sync.action_on_drift == "ignore":
            link.drift = None
            return
        clock = h.clock
        if clock is None:
            return  # no evidence either way: keep the state
        limit_us = time_sync.max_drift_ms * 1000
        proven = clock.low_us > limit_us or (clock.high_us is not None and clock.high_us < -limit_us)
        within = clock.low_us <= limit_us if clock.high_us is None else abs(clock.estimate_us) <= limit_us
        if proven and link.drift is None:
            link.drift = f"{exchange}: {_describe(clock)}, over the {time_sync.max_drift_ms} ms allowed"
            action = "trading paused" if time_sync.action_on_drift == "pause_trading" else "warning only"
            out.event(exchange, "ClockDrift", f"{link.drift} ({action})", warning=True)
        elif within and link.drift is not None:
            link.drift = None
            out.event(exchange, "ClockDriftCleared", f"{_describe(clock)}: within the limit again", warning=False)


def _next_level(current: Latency, rtt: float, warn: float, critical: float) -> Latency:
    """The latency level after a median of ``rtt`` seconds (hysteresis: see the module docstring)."""
    if rtt > critical:
        return "critical"
    if rtt < warn * WARN_CLEAR_FRACTION:
        return "normal"
    if current == "critical":
        return "critical" if rtt >= warn else "warn"
    if current == "warn" or rtt > warn:
        return "warn"
    return "normal"


def _stream_state(h: LinkHealth, silent: float | None) -> str:
    if h.ws_connected is None:
        return "no stream"
    quiet = "ever" if silent is None else f"{silent:.1f} s"
    return f"stream silent for {quiet}" if h.ws_connected else f"stream disconnected (no frame for {quiet})"


def _describe(clock: ClockOffset) -> str:
    """``exchange clock 5.000 s ahead of ours (±0.002 s, 3 samples)`` / ``at least 4.2 s ahead``."""
    offset = clock.estimate_us / 1e6
    way = "ahead of" if offset >= 0 else "behind"
    if clock.error_us is None:
        return f"exchange clock at least {abs(offset):.3f} s {way} ours ({clock.samples} samples)"
    return f"exchange clock {abs(offset):.3f} s {way} ours (±{clock.error_us / 1e6:.3f} s, {clock.samples} samples)"
