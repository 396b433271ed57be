"""Custom alert rules on a real prometheus_client registry (the node's own Metrics): load-time checks naming the
rule, sums over label sets, windowed counters, once per episode and re-armed when false, and the periodic
evaluation raising through a real AlertManager."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Gauge

from mm.alerting import AlertManager, AlertRuleError, RuleEvaluator, compile_rules
from mm.alerting.channels import LogChannel
from mm.clock import SimulatedClock
from mm.observability.metrics import Metrics
from mm.specs.node import Alerting, CustomAlert
from mm.state.records import AlertRecord
from tests.alerting.receivers import wait_until

T0 = 1_768_660_200_000_000
LOW_FILL_RATE = CustomAlert(
    name="low_fill_rate",
    condition="mm_fills_total / mm_orders_total < 0.01",
    window="1h",
    severity="warning",
    message="Fill rate below 1% in last hour",
)


class Raised:
    """Collects what the evaluator raises (the callback it is given; the evaluator is what is tested)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str, dict[str, Any]]] = []

    def __call__(self, name: str, severity: str, message: str, **data: Any) -> None:
        self.calls.append((name, severity, message, data))


def order(metrics: Metrics, n: int, market: str = "M1", side: str = "yes") -> None:
    metrics.orders.labels(market=market, side=side, status="placed").inc(n)


def test_the_requirement_rule_compiles_against_the_node_metrics() -> None:
    [rule] = compile_rules([LOW_FILL_RATE], Metrics().registry)
    assert rule.window_s == 3600
    assert rule.monotonic == {"mm_fills_total", "mm_orders_total"}


def test_gauges_and_histograms_are_usable_names() -> None:
    rules = [
        CustomAlert(name="inv", condition="mm_inventory > 100"),
        CustomAlert(name="lat", condition="mm_order_latency_seconds_sum / mm_order_latency_seconds_count > 0.5"),
    ]
    inv, lat = compile_rules(rules, Metrics().registry)
    assert inv.monotonic == frozenset()
    assert lat.monotonic == {"mm_order_latency_seconds_sum", "mm_order_latency_seconds_count"}


@pytest.mark.parametrize(
    ("condition", "fragment"),
    [
        ("mm_fills / mm_orders_total < 0.01", "reads 'mm_fills', which the metrics registry does not export"),
        ("mm_fils_total / mm_orders_total < 0.01", "did you mean mm_fills_total"),
        ("mm_order_latency_seconds_bucket > 1", "does not export"),
        ("len(mm_fills_total) > 1", "function call"),
    ],
)
def test_a_bad_rule_is_refused_at_load_time_naming_it(condition: str, fragment: str) -> None:
    rule = CustomAlert(name="my_rule", condition=condition)
    with pytest.raises(AlertRuleError) as caught:
        compile_rules([rule], Metrics().registry)
    assert str(caught.value).startswith("custom alert 'my_rule': ")
    assert fragment in str(caught.value)


def test_a_rule_defined_twice_or_named_like_a_builtin_is_refused() -> None:
    registry = Metrics().registry
    with pytest.raises(AlertRuleError, match="defined twice"):
        compile_rules([LOW_FILL_RATE, LOW_FILL_RATE], registry)
    clash = compile_rules([CustomAlert(name="clock_drift", condition="mm_clock_drift_seconds > 1")], registry)
    manager = AlertManager([LogChannel(["warning"])], clock=SimulatedClock(T0))
    with pytest.raises(AlertRuleError, match="built-in"):
        manager.add_rules(clash, registry)


def test_fires_once_per_episode_and_re_arms_when_false() -> None:
    metrics, clock, raised = Metrics(), SimulatedClock(T0), Raised()
    evaluator = RuleEvaluator(compile_rules([LOW_FILL_RATE], metrics.registry), metrics.registry, raised, clock)
    assert evaluator.evaluate() == []  # no orders: 0 / 0 is a division by zero, so false
    order(metrics, 150, "M1")
    order(metrics, 50, "M2", "no")  # summed over every label set
    clock.advance(10)
    assert evaluator.evaluate() == ["low_fill_rate"]
    [(name, severity, message, data)] = raised.calls
    assert (name, severity, message) == ("low_fill_rate", "warning", "Fill rate below 1% in last hour")
    assert data["values"] == {"mm_fills_total": 0.0, "mm_orders_total": 200.0}
    assert data["condition"] == LOW_FILL_RATE.condition and data["window"] == "1h"
    for _ in range(3):  # still true: the same episode, no new alert
        clock.advance(10)
        assert evaluator.evaluate() == []
    assert evaluator.firing == {"low_fill_rate"}
    metrics.fills.labels(market="M1", side="yes").inc(5)  # 5 / 200: false, re-armed
    clock.advance(10)
    assert evaluator.evaluate() == []
    assert evaluator.firing == frozenset()
    order(metrics, 1000)  # 5 / 1200 < 1%: a new episode
    clock.advance(10)
    assert evaluator.evaluate() == ["low_fill_rate"]
    assert len(raised.calls) == 2


def test_counters_count_only_what_happened_inside_the_window() -> None:
    metrics, clock, raised = Metrics(), SimulatedClock(T0), Raised()
    rule = CustomAlert(name="many_orders", condition="mm_orders_total > 100", window="10m")
    evaluator = RuleEvaluator(compile_rules([rule], metrics.registry), metrics.registry, raised, clock)
    order(metrics, 500)  # before evaluation started: part of the baseline
    evaluator.evaluate()
    order(metrics, 60)
    clock.advance(300)
    assert evaluator.evaluate() == []  # 60 in the window so far
    order(metrics, 60)
    clock.advance(300)
    assert evaluator.evaluate() == ["many_orders"]  # 120 in the last 10 minutes
    clock.advance(300)
    assert evaluator.evaluate() == []  # the first 60 have left the window: 60
    assert evaluator.firing == frozenset()


def test_before_snapshot_runs_before_each_reading() -> None:
    registry = CollectorRegistry()
    gauge = Gauge("queue_depth", "depth", registry=registry)
    pending = [7.0]

    def flush() -> None:  # a producer that batches its updates until asked
        gauge.set(pending[0])

    rule = CustomAlert(name="deep", condition="queue_depth > 5")
    raised = Raised()
    clock = SimulatedClock(T0)
    evaluator = RuleEvaluator(compile_rules([rule], registry), registry, raised, clock, before_snapshot=flush)
    assert evaluator.evaluate() == ["deep"]


async def test_the_manager_evaluates_rules_periodically_and_records_their_alerts() -> None:
    metrics = Metrics()
    records: list[AlertRecord] = []
    spec = Alerting.model_validate({"custom_alerts": [LOW_FILL_RATE.model_dump()]})
    manager = AlertManager.from_spec(
        spec, clock=SimulatedClock(T0), record=records.append, metrics=metrics, rule_interval_s=0.02
    )
    assert manager.catalogue["low_fill_rate"].origin == "custom"
    rendered: list[int] = []
    metrics.render_hooks.append(lambda: rendered.append(1))
    manager.start()
    try:
        await wait_until(lambda: manager.rules is not None and manager.rules.evaluations >= 1, what="a baseline")
        order(metrics, 300)
        await wait_until(lambda: bool(records), what="the rule's alert")
    finally:
        assert await manager.aclose(timeout=5)
    [record] = records
    assert (record.name, record.severity, record.message) == ("low_fill_rate", "warning", LOW_FILL_RATE.message)
    assert record.data["delivery"] == {"log": {"status": "delivered", "attempts": 1, "error": None}}
    assert rendered  # the render hooks ran before the registry was read


def test_custom_alerts_without_metrics_are_refused() -> None:
    spec = Alerting.model_validate({"custom_alerts": [LOW_FILL_RATE.model_dump()]})
    with pytest.raises(Exception, match="need the node's metrics"):
        AlertManager.from_spec(spec, clock=SimulatedClock(T0))
