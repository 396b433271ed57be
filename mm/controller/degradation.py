"""The degradation monitor (NFR-202/203/204): network outages, latency and exchange clock drift → holds.

:class:`DegradationMonitor` is the thin IO side of :class:`~mm.controller.degradation_rules.DegradationPolicy`
(the rules, thresholds and events are documented there). Every :meth:`DegradationMonitor.check`:

1. reads the TradingNode spec (defaults when there is none) — a hot reload applies from the next check;
2. probes each connected exchange whose venue adapter reports link health
   (:class:`~mm.adapters.link_health.LinkMonitored`, the Kalshi adapter) when its authenticated API has not
   answered within ``health_check.ping_interval_seconds``, when no reading of its clock came within
   ``time_sync.check_interval_seconds`` (a quiet node sees none: the probe's answer carries one), or on every
   check while it is degraded — a paused node sends nothing, so without probes it would never see the exchange
   recover. A probe is one cheap authenticated read with ``ping_timeout_seconds`` to answer; probes of several
   exchanges run concurrently;
3. reads each adapter's ``link_health`` (clock samples of the last ``time_sync.check_interval_seconds``);
4. applies the policy's decisions to ``node.holds`` — sets the holds and spread multipliers it asks for,
   clears those this monitor set that it no longer asks for (never anyone else's, never the kill switch) —
   and logs its events through ``node.event``;
5. exports ``mm_exchange_rtt_seconds`` and ``mm_exchange_clock_offset_seconds`` per exchange, and
   ``mm_clock_drift_seconds`` as the largest exchange clock offset (the node's clock is judged against the
   exchanges' until an NTP check exists).

A check never raises: an error is logged and counted in :attr:`DegradationMonitor.errors`, and :meth:`run` goes
on with the next one. The lead wires it: ``monitor = DegradationMonitor(node, runtime.node_spec, node.wall)``
and a task running ``monitor.run()``, cancelled at shutdown.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

from mm.adapters.link_health import LinkHealth, LinkMonitored
from mm.clock import Clock
from mm.controller.degradation_rules import Decisions, DegradationPolicy
from mm.controller.node import NodeContext
from mm.specs.node import HealthCheck, TradingNodeSpec

__all__ = ["DegradationMonitor"]

_logger = logging.getLogger(__name__)


class DegradationMonitor:
    """Watch every exchange's link and set or clear the degradation holds (see the module docstring)."""

    def __init__(self, node: NodeContext, node_spec: Callable[[], TradingNodeSpec | None], wall: Clock) -> None:
        """``node_spec`` returns the current TradingNode spec (None: defaults); ``wall`` is real time (the
        node's ``clock`` may be an accelerated market clock), for how long a check takes."""
        self._node = node
        self._node_spec = node_spec
        self._wall = wall
        self.policy = DegradationPolicy()
        self.errors = 0
        """Checks (or probes) that failed with an unexpected error; each was logged."""
        self.checks = 0
        self.probes = 0
        self.last_health: dict[str, LinkHealth] = {}
        """Each monitored exchange's health at the last check (for status pages)."""
        self.last_check_s: float | None = None
        """How long the last check took, seconds of real time (probes included)."""
        self._holds: set[str] = set()
        self._widen: set[str] = set()

    async def run(self, interval_s: float = 0.5) -> None:
        """Check every ``interval_s`` seconds until cancelled."""
        while True:
            await self.check()
            await asyncio.sleep(interval_s)

    async def check(self) -> None:
        """One check (see the module docstring). Never raises, except cancellation."""
        started = self._wall.monotonic_ns()
        try:
            await self._check()
        except asyncio.CancelledError:
            raise
        except Exception:
            self.errors += 1
            _logger.exception("degradation check failed (will retry on the next check)")
        self.checks += 1
        self.last_check_s = (self._wall.monotonic_ns() - started) / 1e9

    async def _check(self) -> None:
        spec = self._node_spec() or TradingNodeSpec()
        venues = self._monitored()
        window_s = float(spec.time_sync.check_interval_seconds)
        await self._probe_idle(venues, spec.network.health_check, window_s)
        health = {name: venue.link_health(clock_window_s=window_s) for name, venue in venues.items()}
        self.last_health = health
        self._apply(self.policy.assess(spec.network, spec.time_sync, health))
        self._export(health)

    def _monitored(self) -> dict[str, LinkMonitored]:
        venues: dict[str, LinkMonitored] = {}
        for name, conn in self._node.exchanges.items():
            venue = conn.venue
            if isinstance(venue, LinkMonitored):
                venues[name] = venue
        return venues

    async def _probe_idle(self, venues: Mapping[str, LinkMonitored], hc: HealthCheck, clock_every_s: float) -> None:
        interval_s = float(hc.ping_interval_seconds)
        due: list[tuple[str, LinkMonitored]] = []
        for name, venue in venues.items():
            if not venue.connected:
                continue  # not opened yet, or closed by the runtime: nothing to probe with
            health = venue.link_health()
            quiet = health.seconds_since(health.last_success_wall_ns)
            unclocked = health.seconds_since(health.clock_sampled_wall_ns)
            if (
                self.policy.degraded(name)
                or quiet is None
                or quiet >= interval_s
                or unclocked is None
                or unclocked >= clock_every_s
            ):
                due.append((name, venue))
        if not due:
            return
        timeout_s = float(hc.ping_timeout_seconds)
        results = await asyncio.gather(*(venue.probe(timeout_s) for _, venue in due), return_exceptions=True)
        self.probes += len(due)
        for (name, _), result in zip(due, results, strict=True):
            if isinstance(result, asyncio.CancelledError):
                raise result
            if isinstance(result, BaseException):
                self.errors += 1
                _logger.warning("probe of exchange %s failed unexpectedly: %r", name, result)

    def _apply(self, decisions: Decisions) -> None:
        """Events first (the cause), then the holds (whose changes the node logs as TradingHeld/HoldCleared)."""
        node = self._node
        for event in decisions.events:
            node.event(event.subject, event.reason, event.message, warning=event.warning)
        holds = node.holds
        for key in sorted(self._widen - set(decisions.widen)):
            holds.set_widen(key, 1.0)
        for key, multiplier in decisions.widen.items():
            holds.set_widen(key, multiplier)
        self._widen = set(decisions.widen)
        for key in sorted(self._holds - set(decisions.holds)):
            holds.clear(key)
        now_us = node.clock.now_us()
        for key, reason in decisions.holds.items():
            holds.set(key, reason, now_us)
        self._holds = set(decisions.holds)

    def _export(self, health: Mapping[str, LinkHealth]) -> None:
        """RTT and the exchange clock offset per exchange (``mm_clock_drift_seconds`` is the NTP check's)."""
        metrics = self._node.metrics
        if metrics is None:
            return
        for name, h in health.items():
            if h.rtt_p50_s is not None:
                metrics.exchange_rtt.labels(exchange=name).set(h.rtt_p50_s)
            offset_us = h.clock_offset_us
            if offset_us is not None:
                metrics.exchange_clock_offset.labels(exchange=name).set(offset_us / 1e6)

    def release(self) -> None:
        """Clear every hold and multiplier this monitor set (when it stops for good, e.g. at shutdown)."""
        for key in sorted(self._widen):
            self._node.holds.set_widen(key, 1.0)
        for key in sorted(self._holds):
            self._node.holds.clear(key)
        self._widen.clear()
        self._holds.clear()
