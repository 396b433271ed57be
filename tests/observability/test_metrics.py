"""Tests of mm.observability.metrics against NFR-402's tables."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from mm.observability.metrics import (
    LATENCY_BUCKETS_SECONDS,
    METRIC_SPECS,
    Metrics,
    inc_money,
    render,
    set_contracts,
    set_money,
)

# NFR-402's three tables, copied from the requirement (not from the implementation) on purpose.
NFR_402: dict[str, tuple[str, tuple[str, ...]]] = {
    "mm_pnl_realized": ("gauge", ("market",)),
    "mm_pnl_unrealized": ("gauge", ("market",)),
    "mm_pnl_fees": ("counter", ("market", "fee_type")),
    "mm_inventory": ("gauge", ("market",)),
    "mm_position_yes": ("gauge", ("market",)),
    "mm_position_no": ("gauge", ("market",)),
    "mm_orders_total": ("counter", ("market", "side", "status")),
    "mm_fills_total": ("counter", ("market", "side")),
    "mm_order_latency_seconds": ("histogram", ("market",)),
    "mm_quote_generation_seconds": ("histogram", ("market",)),
    "mm_book_update_seconds": ("histogram", ("market",)),
    "mm_websocket_connected": ("gauge", ("exchange",)),
    "mm_clock_drift_seconds": ("gauge", ()),
}
EXTRA = {
    "mm_db_queue_depth": ("gauge", ()),
    "mm_db_queue_overflow_total": ("counter", ()),
    "mm_db_write_errors_total": ("counter", ("kind",)),
    "mm_risk_decisions_total": ("counter", ("rule", "action")),
    "mm_malformed_messages_total": ("counter", ("exchange", "channel")),
    "mm_spec_admission_errors_total": ("counter", ("kind",)),
    "mm_exchange_rtt_seconds": ("gauge", ("exchange",)),
    "mm_exchange_clock_offset_seconds": ("gauge", ("exchange",)),
}


ATTRIBUTES = {
    "mm_db_queue_depth": "db_queue_depth",
    "mm_db_queue_overflow_total": "db_queue_overflow",
    "mm_db_write_errors_total": "db_write_errors",
    "mm_pnl_realized": "pnl_realized",
    "mm_pnl_unrealized": "pnl_unrealized",
    "mm_pnl_fees": "pnl_fees",
    "mm_inventory": "inventory",
    "mm_position_yes": "position_yes",
    "mm_position_no": "position_no",
    "mm_orders_total": "orders",
    "mm_fills_total": "fills",
    "mm_order_latency_seconds": "order_latency",
    "mm_quote_generation_seconds": "quote_generation",
    "mm_book_update_seconds": "book_update",
    "mm_websocket_connected": "websocket_connected",
    "mm_clock_drift_seconds": "clock_drift",
    "mm_risk_decisions_total": "risk_decisions",
    "mm_malformed_messages_total": "malformed_messages",
    "mm_spec_admission_errors_total": "spec_admission_errors",
    "mm_exchange_rtt_seconds": "exchange_rtt",
    "mm_exchange_clock_offset_seconds": "exchange_clock_offset",
}


def touch_every_metric(metrics: Metrics) -> None:
    """Create one label set per metric so each has samples in the exposition."""
    for name, (kind, labels) in (NFR_402 | EXTRA).items():
        family = getattr(metrics, ATTRIBUTES[name])
        child = family.labels(*(f"{label}-value" for label in labels)) if labels else family
        if kind == "counter":
            assert isinstance(child, Counter)
            child.inc()
        elif kind == "gauge":
            assert isinstance(child, Gauge)
            child.set(1)
        else:
            assert isinstance(child, Histogram)
            child.observe(0.0005)


def families(metrics: Metrics) -> dict[str, Metric]:
    return {f.name: f for f in text_string_to_metric_families(render(metrics).decode())}


def family_name(required: str, kind: str) -> str:
    # Prometheus strips a counter's _total suffix from the family name and adds it to the sample.
    return required.removesuffix("_total") if kind == "counter" else required


def test_specs_are_exactly_nfr_402_plus_the_extras() -> None:
    assert {s.name: (s.kind, s.labels) for s in METRIC_SPECS} == NFR_402 | EXTRA
    assert len({s.name for s in METRIC_SPECS}) == len(METRIC_SPECS)
    for spec in METRIC_SPECS:  # every help text states a unit or meaning
        assert spec.help.endswith(".")


@pytest.mark.parametrize("name", sorted(NFR_402 | EXTRA))
def test_every_metric_is_exported_with_its_type_and_labels(name: str) -> None:
    metrics = Metrics()
    touch_every_metric(metrics)
    kind, labels = (NFR_402 | EXTRA)[name]
    family = families(metrics)[family_name(name, kind)]
    assert family.type == kind
    samples = [s for s in family.samples if not s.name.endswith("_created")]
    assert samples
    for sample in samples:
        assert set(sample.labels) - {"le"} == set(labels)
    exported = {s.name for s in samples}
    if kind == "counter":
        # The name operators query: mm_orders_total stays mm_orders_total; mm_pnl_fees -> mm_pnl_fees_total.
        assert exported == {name if name.endswith("_total") else f"{name}_total"}
    elif kind == "histogram":
        assert exported == {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    else:
        assert exported == {name}


def test_money_and_contract_helpers_take_decimals() -> None:
    metrics = Metrics()
    set_money(metrics.pnl_realized.labels(market="KX"), Decimal("-12.3456"))
    inc_money(metrics.pnl_fees.labels(market="KX", fee_type="taker"), Decimal("0.07"))
    inc_money(metrics.pnl_fees.labels(market="KX", fee_type="taker"), Decimal("0.02"))
    set_contracts(metrics.inventory.labels(market="KX"), Decimal("-3.5"))
    set_contracts(metrics.position_yes.labels(market="KX"), 10)
    got = families(metrics)
    assert got["mm_pnl_realized"].samples[0].value == -12.3456
    fees = [s for s in got["mm_pnl_fees"].samples if s.name == "mm_pnl_fees_total"]
    assert fees[0].value == pytest.approx(0.09)
    assert got["mm_inventory"].samples[0].value == -3.5
    assert got["mm_position_yes"].samples[0].value == 10


def test_money_helpers_refuse_floats_and_negative_counter_increments() -> None:
    metrics = Metrics()
    with pytest.raises(TypeError):
        set_money(metrics.pnl_realized.labels(market="KX"), 1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        set_contracts(metrics.inventory.labels(market="KX"), True)
    with pytest.raises(ValueError, match="only increase"):
        inc_money(metrics.pnl_fees.labels(market="KX", fee_type="maker"), Decimal("-0.01"))


def test_instances_do_not_collide() -> None:
    a, b = Metrics(), Metrics()
    a.fills.labels(market="KX", side="yes").inc(3)
    assert [s.value for s in families(a)["mm_fills"].samples if s.name == "mm_fills_total"] == [3]
    assert [s for s in families(b)["mm_fills"].samples if s.name == "mm_fills_total"] == []


def test_explicit_registry_is_used_and_double_registration_fails_loudly() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    assert metrics.registry is registry
    assert registry.get_sample_value("mm_clock_drift_seconds") == 0.0
    with pytest.raises(ValueError, match="Duplicated"):
        Metrics(registry)


def test_histogram_buckets_cover_microseconds_to_ten_seconds() -> None:
    assert list(LATENCY_BUCKETS_SECONDS) == sorted(set(LATENCY_BUCKETS_SECONDS))
    assert LATENCY_BUCKETS_SECONDS[0] == 1e-6
    assert LATENCY_BUCKETS_SECONDS[-1] == 10.0
    ratios = [b / a for a, b in itertools.pairwise(LATENCY_BUCKETS_SECONDS)]
    assert all(1.9 < r < 3.1 for r in ratios)
    metrics = Metrics()
    metrics.order_latency.labels(market="KX").observe(0.0000015)
    buckets = {
        s.labels["le"]: s.value
        for s in families(metrics)["mm_order_latency_seconds"].samples
        if s.name.endswith("_bucket")
    }
    assert buckets["1e-06"] == 0
    assert buckets["2.5e-06"] == 1
    assert buckets["+Inf"] == 1
