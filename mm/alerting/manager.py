"""The node's single entry point for alerts (NFR-403): throttle, route, deliver in the background, record.

``raise_alert(name, severity, message, **data)`` is synchronous and O(channels): it builds the
:class:`~mm.alerting.alerts.Alert`, asks the :class:`~mm.alerting.throttle.AlertThrottle`, appends the entry
to the in-memory history and schedules delivery on background tasks — the trading loop never awaits a
channel, and no delivery problem is ever raised to it. Call it from the event loop's thread (as all trading
code runs; another thread may call it too, see the method); before :meth:`AlertManager.start` alerts wait and go
out when it starts.

Delivery, per channel whose ``severities`` include the alert's: up to ``max_attempts`` tries, each bounded by
``attempt_timeout_s`` seconds; a transient failure is retried after ``retry_base_s × 2^(n-1)`` seconds (or the
receiver's ``Retry-After`` when longer); nothing is tried after ``delivery_deadline_s`` (30 s: NFR-403's
"delivered within 30 seconds") from the moment delivery started. Defaults: 3 tries, 10 s, 1 s → worst case
about 10 + 1 + 10 + 2 + 7 s, inside the deadline.

Every raised alert — delivered, failed or throttled — is passed once, when its outcome is final, to the
``record`` callback as an :class:`~mm.state.records.AlertRecord` (connect it to the write-behind queue's
``enqueue``), and stays in a bounded history (:meth:`AlertManager.history`) for ``GET /alerts``.
:meth:`AlertManager.aclose` flushes pending deliveries for up to ``timeout`` seconds; what is still pending
then is cancelled and recorded as failed ("abandoned at shutdown").
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from prometheus_client import CollectorRegistry

from mm.alerting.alerts import (
    BUILTIN_ALERTS,
    SEVERITIES,
    Alert,
    AlertDefinition,
    AlertEntry,
    ChannelOutcome,
    Severity,
    plain_data,
)
from mm.alerting.channels import PAGERDUTY_EVENTS_URL, Channel, DeliveryError
from mm.alerting.config import AlertConfigError, build_channels
from mm.alerting.rule_engine import AlertRuleError, CompiledRule, RuleEvaluator, compile_rules
from mm.alerting.throttle import AlertThrottle
from mm.clock import Clock
from mm.observability.logging import get_logger
from mm.observability.metrics import Metrics
from mm.observability.redaction import redact_text
from mm.specs.node import Alerting, Throttle
from mm.state.records import AlertRecord

__all__ = ["AlertManager", "RecordSink"]

RecordSink = Callable[[AlertRecord], None]
"""Receives every raised alert once its outcome is final (e.g. ``WriteBehindQueue.enqueue``)."""
Sleep = Callable[[float], Awaitable[None]]

_log = get_logger("mm.alerting")


class AlertManager:
    """Throttles, routes, delivers and records alerts (see the module docstring for the delivery rules)."""

    def __init__(
        self,
        channels: Sequence[Channel],
        *,
        clock: Clock,
        throttle: AlertThrottle | None = None,
        record: RecordSink | None = None,
        catalogue: Mapping[str, AlertDefinition] = BUILTIN_ALERTS,
        history_size: int = 1000,
        max_attempts: int = 3,
        retry_base_s: float = 1.0,
        attempt_timeout_s: float = 10.0,
        delivery_deadline_s: float = 30.0,
        max_concurrent: int = 32,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if max_attempts < 1 or history_size < 1 or max_concurrent < 1:
            raise ValueError("max_attempts, history_size and max_concurrent must be positive")
        names = [c.name for c in channels]
        if len(set(names)) != len(names):
            raise ValueError(f"two channels with the same name: {names}")
        self.channels: tuple[Channel, ...] = tuple(channels)
        self.clock = clock
        self.throttle = throttle if throttle is not None else AlertThrottle.from_spec(Throttle())
        self.record = record
        self.catalogue: dict[str, AlertDefinition] = dict(catalogue)
        self.max_attempts = max_attempts
        self.retry_base_s = retry_base_s
        self.attempt_timeout_s = attempt_timeout_s
        self.delivery_deadline_s = delivery_deadline_s
        self._sleep = sleep
        self._history: deque[AlertEntry] = deque(maxlen=history_size)
        self._next_id = 1
        self._backlog: list[tuple[AlertEntry, tuple[Channel, ...], bool]] = []
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._semaphore = asyncio.Semaphore(max_concurrent)  # binds to a loop only when first awaited
        self._rules: RuleEvaluator | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = False
        self._closed = False
        self.counts = {"raised": 0, "throttled": 0, "delivered": 0, "failed": 0, "unrouted": 0}

    @classmethod
    def from_spec(
        cls,
        spec: Alerting,
        *,
        clock: Clock,
        record: RecordSink | None = None,
        metrics: Metrics | CollectorRegistry | None = None,
        environ: Mapping[str, str] | None = None,
        source: str = "mmctl",
        pagerduty_url: str = PAGERDUTY_EVENTS_URL,
        strict: bool = False,
        rule_interval_s: float = 10.0,
        **options: Any,
    ) -> AlertManager:
        """A manager for the TradingNode's ``alerting`` block.

        ``metrics``: the node's :class:`~mm.observability.metrics.Metrics` (or a bare registry), needed when
        ``custom_alerts`` are declared: their rules are checked against its registry here
        (:class:`~mm.alerting.rule_engine.AlertRuleError` names a bad rule) and evaluated every
        ``rule_interval_s`` seconds, after its ``render_hooks``. ``options``: the constructor's keyword
        arguments (``max_attempts``, ``retry_base_s``, ...)."""
        channels = build_channels(
            spec.channels, environ=environ, source=source, pagerduty_url=pagerduty_url, strict=strict
        )
        manager = cls(channels, clock=clock, throttle=AlertThrottle.from_spec(spec.throttle), record=record, **options)
        if spec.custom_alerts:
            if metrics is None:
                raise AlertConfigError("alerting.custom_alerts need the node's metrics")
            registry = metrics if isinstance(metrics, CollectorRegistry) else metrics.registry
            hooks = [] if isinstance(metrics, CollectorRegistry) else metrics.render_hooks
            rules = compile_rules(spec.custom_alerts, registry)

            def flush() -> None:  # as GET /metrics does before reading the registry
                for hook in hooks:
                    hook()

            manager.add_rules(rules, registry, interval_s=rule_interval_s, before_snapshot=flush)
        return manager

    def add_rules(
        self,
        rules: Sequence[CompiledRule],
        registry: CollectorRegistry,
        *,
        interval_s: float = 10.0,
        before_snapshot: Callable[[], None] | None = None,
    ) -> None:
        """Evaluate ``rules`` on ``registry`` every ``interval_s`` seconds while the manager runs (see
        :class:`~mm.alerting.rule_engine.RuleEvaluator`)."""
        for rule in rules:
            known = self.catalogue.get(rule.name)
            if known is not None and known.origin != "custom":
                raise AlertRuleError(f"custom alert {rule.name!r}: the name of a built-in alert")
            self.catalogue[rule.name] = AlertDefinition(rule.name, rule.spec.severity, rule.spec.condition, "custom")
        self._rules = RuleEvaluator(
            rules, registry, self.raise_alert, self.clock, interval_s=interval_s, before_snapshot=before_snapshot
        )
        if self._started:
            self._rules.start()

    @property
    def rules(self) -> RuleEvaluator | None:  # the custom rules' evaluator, when there are rules
        return self._rules

    # ------------------------------------------------------------------ raising

    def raise_alert(
        self, name: str, severity: Severity | None = None, message: str = "", *, market: str | None = None, **data: Any
    ) -> AlertEntry:
        """Raise alert ``name`` (severity: the catalogue's default when None; message: its description when
        empty). ``data``: details (plain values; floats become exact decimals, secrets are redacted).
        Returns the history entry (its outcomes fill in as deliveries finish). Never raises.

        Meant for the event loop's thread. Called from another thread once started, it hands the alert to
        the loop and returns a detached entry with ``id`` 0 (the real one appears in :meth:`history`)."""
        definition = self.catalogue.get(name)
        chosen: Severity = severity or (definition.severity if definition else "warning")
        if chosen not in SEVERITIES:
            _log.error("alert raised with an unknown severity; sent as critical", alert=name, severity=str(chosen))
            chosen = "critical"
        text = redact_text(message or (definition.condition if definition else name))
        try:
            details = plain_data(data)
        except Exception as exc:  # an exotic value must not turn an alert into an exception
            details = {"data_error": f"{type(exc).__name__}"}
        alert = Alert(name, chosen, text, self.clock.now_us(), details, market)
        if self._loop is not None and not self._on_loop():
            # From another thread: the loop does the rest (history and throttle belong to it).
            try:
                self._loop.call_soon_threadsafe(functools.partial(self._submit, alert, persist=True))
            except RuntimeError:  # the loop is closed: nothing can deliver it any more
                _log.warning("alert raised after the event loop closed", alert=name, message=text)
            return AlertEntry(0, alert)
        return self._submit(alert, persist=True)

    def _on_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return False

    def forward(self, record: AlertRecord) -> None:
        """Deliver an alert another component has already persisted: the write-behind queue's ``db_*`` alerts
        (``WriteBehindQueue(..., alert=manager.forward)``). Throttled and routed like any; not passed to
        ``record`` (the queue writes it itself); it appears in :meth:`history`."""
        try:
            data = plain_data(record.data)
        except Exception as exc:  # the queue calls this from its writer: it must never fail there
            data = {"data_error": type(exc).__name__}
        alert = Alert(record.name, record.severity, redact_text(record.message), record.timestamp_us, data)
        self._submit(alert, persist=False)

    async def test_alert(
        self, message: str = "Test alert from mmctl", severity: Severity = "info", *, requested_by: str = "api"
    ) -> AlertEntry:
        """Send ``test_alert`` through every enabled channel — whatever its severities, never throttled — and
        wait (up to the delivery deadline) for each outcome. Requires :meth:`start`."""
        if not self._started or self._closed:
            raise RuntimeError("the alert manager is not running")
        alert = Alert("test_alert", severity, redact_text(message), self.clock.now_us(),
                      plain_data({"requested_by": requested_by}))  # fmt: skip
        entry = self._submit(alert, persist=True, every_channel=True)
        task = self._tasks.get(entry.id)
        if task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(task), self.delivery_deadline_s + 5)
        return entry

    def _submit(self, alert: Alert, *, persist: bool, every_channel: bool = False) -> AlertEntry:
        self.counts["raised"] += 1
        entry = AlertEntry(self._next_id, alert)
        self._next_id += 1
        self._history.append(entry)
        if not every_channel:
            decision = self.throttle.decide(alert.name, alert.severity, alert.timestamp_us)
            if not decision.allowed:
                entry.throttled = True
                _log.debug("alert throttled", alert=alert.name, in_window=decision.in_window)
                self._finish(entry, persist)
                return entry
            entry.alert = dataclasses.replace(alert, suppressed=decision.suppressed_before)
        targets = tuple(c for c in self.channels if every_channel or c.accepts(alert.severity))
        entry.outcomes = {c.name: ChannelOutcome(c.name) for c in targets}
        if not targets:
            self._finish(entry, persist)
        elif self._closed:
            _log.warning("alert raised after the alert manager closed", alert=alert.name, message=alert.message)
            for outcome in entry.outcomes.values():
                outcome.status, outcome.error = "failed", "alert manager closed"
            self._finish(entry, persist)
        elif self._started:
            self._spawn(entry, targets, persist)
        else:
            self._backlog.append((entry, targets, persist))
        return entry

    # ------------------------------------------------------------------ delivery

    def _spawn(self, entry: AlertEntry, targets: tuple[Channel, ...], persist: bool) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.delivery_deadline_s
        task = loop.create_task(self._deliver(entry, targets, deadline, persist), name=f"mm-alert-{entry.id}")
        self._tasks[entry.id] = task
        key = entry.id
        task.add_done_callback(lambda _t: self._tasks.pop(key, None))

    async def _deliver(self, entry: AlertEntry, targets: tuple[Channel, ...], deadline: float, persist: bool) -> None:
        try:
            await asyncio.gather(*(self._deliver_one(entry, c, deadline) for c in targets))
        finally:  # also when cancelled at shutdown: what did not finish is recorded as failed
            for outcome in entry.outcomes.values():
                if outcome.status == "pending":
                    before = f"{outcome.error}; " if outcome.error else ""
                    outcome.status, outcome.error = "failed", f"{before}abandoned at shutdown"
            self._finish(entry, persist)

    async def _deliver_one(self, entry: AlertEntry, channel: Channel, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        outcome = entry.outcomes[channel.name]
        for attempt in range(1, self.max_attempts + 1):
            remaining = deadline - loop.time()
            if remaining <= 0:
                outcome.error = f"{outcome.error or 'not sent'}; delivery deadline passed"
                break
            outcome.attempts = attempt
            budget = min(self.attempt_timeout_s, remaining)
            retry_after: float | None = None
            try:
                async with self._semaphore, asyncio.timeout(budget):
                    await channel.send(entry.alert, timeout_s=budget)
            except DeliveryError as exc:
                outcome.error, transient, retry_after = channel.scrub(exc.reason), exc.transient, exc.retry_after_s
            except TimeoutError:
                outcome.error, transient = f"timed out after {budget:.1f} s", True
            except Exception as exc:  # a bug in a channel: recorded, never raised to anyone
                outcome.error, transient = channel.scrub(f"{type(exc).__name__}: {exc}"), False
            else:
                outcome.status, outcome.error, outcome.delivered_us = "delivered", None, self.clock.now_us()
                return
            if not transient or attempt == self.max_attempts:
                break
            delay = max(self.retry_base_s * 2 ** (attempt - 1), retry_after or 0.0)
            if loop.time() + delay >= deadline:
                outcome.error += "; no time left to retry before the delivery deadline"
                break
            await self._sleep(delay)
        outcome.status = "failed"
        _log.warning("alert delivery failed", alert=entry.alert.name, channel=channel.name,
                     attempts=outcome.attempts, error=outcome.error)  # fmt: skip

    def _finish(self, entry: AlertEntry, persist: bool) -> None:
        status = entry.status
        key = {"throttled": "throttled", "unrouted": "unrouted", "delivered": "delivered"}.get(status, "failed")
        self.counts[key] += 1
        if not persist or self.record is None:
            return
        try:
            self.record(entry.to_record())
        except Exception as exc:  # the recorder's problem must not become the caller's
            _log.error("recording an alert failed", alert=entry.alert.name, error=f"{type(exc).__name__}: {exc}")

    # ------------------------------------------------------------------ queries

    def history(
        self, *, severity: Severity | None = None, name: str | None = None, limit: int = 100
    ) -> list[AlertEntry]:
        """The most recent alerts first, optionally only one severity and/or name; at most ``limit``."""
        found: list[AlertEntry] = []
        for entry in reversed(self._history):
            if (severity is None or entry.alert.severity == severity) and (name is None or entry.alert.name == name):
                found.append(entry)
                if len(found) >= limit:
                    break
        return found

    def stats(self) -> dict[str, Any]:
        """Counts (raised, throttled, delivered, failed — partial counts as failed — unrouted), what is pending,
        the throttle's totals per name, and the channels (no secrets)."""
        return {
            **self.counts,
            "pending": len(self._tasks) + len(self._backlog),
            "by_name": {n: dataclasses.asdict(s) for n, s in self.throttle.stats().items()},
            "channels": [c.describe() for c in self.channels],
        }

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start delivering (inside the running event loop): alerts raised before now go out."""
        if self._started:
            raise RuntimeError("alert manager already started")
        if self._closed:
            raise RuntimeError("alert manager closed")
        self._loop = asyncio.get_running_loop()
        self._started = True
        backlog, self._backlog = self._backlog, []
        for entry, targets, persist in backlog:
            self._spawn(entry, targets, persist)
        if self._rules is not None:
            self._rules.start()

    async def flush(self, timeout: float | None = None) -> bool:
        """Wait until every delivery scheduled so far has finished; False if ``timeout`` seconds passed first."""
        tasks = list(self._tasks.values())
        if not tasks:
            return not self._backlog
        _done, pending = await asyncio.wait(tasks, timeout=timeout)
        return not pending and not self._backlog

    async def aclose(self, timeout: float = 10.0) -> bool:
        """Stop rules, wait up to ``timeout`` seconds for pending deliveries, cancel the rest (recorded as failed),
        close the channels. Returns True when nothing had to be abandoned. Idempotent."""
        if self._rules is not None:
            await self._rules.aclose()
        self._closed = True
        for entry, _targets, persist in self._backlog:  # never started: nothing can deliver them now
            for outcome in entry.outcomes.values():
                outcome.status, outcome.error = "failed", "alert manager closed before it started"
            self._finish(entry, persist)
        complete = not self._backlog
        self._backlog = []
        if self._tasks:
            complete = await self.flush(timeout) and complete
            for task in list(self._tasks.values()):
                task.cancel()
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        for channel in self.channels:
            with contextlib.suppress(Exception):
                await channel.aclose()
        return complete
