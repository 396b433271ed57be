"""Custom alert rules on the node's metrics: load-time checks against the registry, and periodic evaluation.

A rule (``alerting.custom_alerts`` item: ``name``, ``condition``, ``window``, ``severity``, ``message``) reads
*sample names as Prometheus exposes them*: a counter ``mm_fills_total`` (prometheus_client exports counter
``x`` as ``x_total``), a gauge ``mm_inventory``, a histogram's ``mm_order_latency_seconds_count`` /
``_sum``. A name stands for the **sum over all label sets** of that sample (``mm_fills_total`` = fills of
every market and side; a labelled metric nobody has touched yet sums to 0). Counter and histogram
samples are windowed (their increase over the rule's ``window``, see :class:`~mm.alerting.rules.MetricWindow`);
gauges are their current value. So ``mm_fills_total / mm_orders_total < 0.01`` with ``window: 1h`` is "fewer
than 1 fill per 100 orders over the last hour" (or since evaluation started, until an hour has passed).

:func:`compile_rules` refuses, naming the rule, a condition that does not parse or that reads a name the
registry does not export (with the closest exported names as a hint). :class:`RuleEvaluator` evaluates every
rule every ``interval_s`` seconds and raises the rule's alert when its condition *becomes* true: once per
episode, re-armed when the condition is false again.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from prometheus_client import CollectorRegistry

from mm.alerting.rules import Condition, ConditionError, MetricWindow, parse_condition, parse_window
from mm.clock import Clock
from mm.observability.logging import get_logger
from mm.specs.node import CustomAlert

__all__ = ["CompiledRule", "RuleEvaluator", "compile_rules", "exported_samples", "snapshot"]

_log = get_logger("mm.alerting.rules")

RaiseAlert = Callable[..., object]
"""``raise_alert(name, severity, message, **data)`` — :meth:`mm.alerting.AlertManager.raise_alert`."""
Sleep = Callable[[float], Awaitable[None]]

US_PER_SECOND: Final = 1_000_000

# Sample suffixes per metric family type (prometheus_client's names); True = monotonic (windowed).
_SAMPLES: Final[Mapping[str, tuple[tuple[str, bool], ...]]] = {
    "counter": (("_total", True),),
    "histogram": (("_count", True), ("_sum", True)),
    "summary": (("_count", True), ("_sum", True)),
    "gauge": (("", False),),
    "gaugehistogram": (("_gcount", False), ("_gsum", False)),
    "info": (("_info", False),),
    "stateset": (("", False),),
    "unknown": (("", False),),
}


def exported_samples(registry: CollectorRegistry) -> dict[str, bool]:
    """Every sample name a rule may use → whether it is monotonic (counter/histogram/summary)."""
    names: dict[str, bool] = {}
    for family in registry.collect():
        for suffix, monotonic in _SAMPLES.get(family.type, (("", False),)):
            names[family.name + suffix] = monotonic
    return names


def snapshot(registry: CollectorRegistry, names: Iterable[str]) -> dict[str, float]:
    """The current value of each sample name in ``names``, summed over its label sets (0 when none yet)."""
    wanted = set(names)
    values = dict.fromkeys(wanted, 0.0)
    for family in registry.collect():
        for sample in family.samples:
            if sample.name in wanted:
                values[sample.name] += float(sample.value)
    return values


class AlertRuleError(ConditionError):
    """A custom alert rule that cannot be loaded (the message names the rule)."""


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """A checked rule. ``window_s``: its window in seconds; ``monotonic``: the names that are windowed."""

    spec: CustomAlert
    condition: Condition
    window_s: int
    monotonic: frozenset[str]

    @property
    def name(self) -> str:
        return self.spec.name


def compile_rules(rules: Sequence[CustomAlert], registry: CollectorRegistry) -> tuple[CompiledRule, ...]:
    """Check every rule against ``registry``; the first problem raises :class:`AlertRuleError` naming the rule."""
    exported = exported_samples(registry)
    compiled: list[CompiledRule] = []
    seen: set[str] = set()
    for rule in rules:
        where = f"custom alert {rule.name!r}"
        if rule.name in seen:
            raise AlertRuleError(f"{where}: defined twice")
        seen.add(rule.name)
        try:
            condition = parse_condition(rule.condition)
            window_s = parse_window(rule.window)
        except ConditionError as exc:
            raise AlertRuleError(f"{where}: {exc}") from None
        for name in sorted(condition.names):
            if name not in exported:
                close = difflib.get_close_matches(name, list(exported), n=3, cutoff=0.6)
                hint = f"; did you mean {', '.join(close)}?" if close else ""
                raise AlertRuleError(
                    f"{where}: condition {rule.condition!r} reads {name!r}, which the metrics registry does not "
                    f"export (counters end in _total, histograms have _count/_sum){hint}"
                )
        monotonic = frozenset(n for n in condition.names if exported[n])
        compiled.append(CompiledRule(rule, condition, window_s, monotonic))
    return tuple(compiled)


class _RuleState:
    __slots__ = ("firing", "rule", "window")

    def __init__(self, rule: CompiledRule) -> None:
        self.rule = rule
        self.window = MetricWindow(rule.window_s * US_PER_SECOND, rule.monotonic)
        self.firing = False


class RuleEvaluator:
    """Evaluates compiled rules on the registry and raises their alerts through ``raise_alert``.

    ``interval_s``: seconds between evaluations (default 10: with delivery retries an alert still arrives
    within NFR-403's 30 s of its condition being observed). Rule windows run on ``clock`` (µs).
    """

    def __init__(
        self,
        rules: Sequence[CompiledRule],
        registry: CollectorRegistry,
        raise_alert: RaiseAlert,
        clock: Clock,
        *,
        interval_s: float = 10.0,
        before_snapshot: Callable[[], None] | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        self._states = [_RuleState(r) for r in rules]
        self._registry = registry
        self._raise = raise_alert
        self._clock = clock
        self.interval_s = interval_s
        self._before_snapshot = before_snapshot
        self._sleep = sleep
        self._task: asyncio.Task[None] | None = None
        self.evaluations = 0

    @property
    def rules(self) -> tuple[CompiledRule, ...]:
        return tuple(s.rule for s in self._states)

    @property
    def firing(self) -> frozenset[str]:
        """Names of the rules whose condition held at the last evaluation."""
        return frozenset(s.rule.name for s in self._states if s.firing)

    def evaluate(self) -> list[str]:
        """Evaluate every rule now; raise the alert of each whose condition became true. Returns their names."""
        now_us = self._clock.now_us()
        if self._before_snapshot is not None:
            self._before_snapshot()
        names = {n for s in self._states for n in s.rule.condition.names}
        current = snapshot(self._registry, names)
        raised: list[str] = []
        for state in self._states:
            rule = state.rule
            values = state.window.add(now_us, {n: current[n] for n in rule.condition.names})
            holds = rule.condition.evaluate(values)
            if holds and not state.firing:
                raised.append(rule.name)
                message = rule.spec.message or f"{rule.spec.condition} held over the last {rule.spec.window}"
                self._raise(
                    rule.name,
                    rule.spec.severity,
                    message,
                    condition=rule.spec.condition,
                    window=rule.spec.window,
                    values=values,
                )
            state.firing = holds
        self.evaluations += 1
        return raised

    def start(self) -> None:
        """Evaluate now (the windows' baseline) and then every ``interval_s`` on a background task."""
        if self._task is not None:
            raise RuntimeError("rule evaluator already started")
        self._task = asyncio.get_running_loop().create_task(self._run(), name="mm-alert-rules")

    async def _run(self) -> None:
        while True:
            try:
                self.evaluate()
            except Exception as exc:  # a broken collector must not stop the other rules for good
                _log.error("custom alert evaluation failed", error=f"{type(exc).__name__}: {exc}")
            await self._sleep(self.interval_s)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
