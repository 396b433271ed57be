"""Tests of mm.observability.metrics against NFR-402's tables."""

from __future__ import annotations

import itertools
from decimal import Decimal
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from mm.observability.metrics import (
    LATENCY_BUCKETS_SECONDS,
    METRIC_SPECS,
    MarketSeries,
    Metrics,
    NetworkCollector,
    bytes_under,
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
    "mm_quote_uptime_seconds_total": ("counter", ("market",)),
    "mm_two_sided_seconds_total": ("counter", ("market",)),
    "mm_market_reconciled_seconds_total": ("counter", ("market",)),
    "mm_quote_sides": ("gauge", ("market",)),
    "mm_open_orders": ("gauge", ("market",)),
    "mm_time_to_settlement_seconds": ("gauge", ("market",)),
    "mm_market_data_age_seconds": ("gauge", ("market",)),
    "mm_pnl_daily": ("gauge", ("market",)),
    "mm_inventory_limit": ("gauge", ("market",)),
    "mm_loss_limit": ("gauge", ("market", "window")),
    "mm_filled_contracts_total": ("counter", ("market", "side")),
    "mm_spread_captured": ("gauge", ("market",)),
    "mm_websocket_messages_total": ("counter", ("exchange",)),
    "mm_websocket_reconnects_total": ("counter", ("exchange",)),
    "mm_websocket_reconnect_failures": ("gauge", ("exchange",)),
    "mm_book_resyncs_total": ("counter", ("exchange", "reason")),
    "mm_reconciliation_drift_total": ("counter", ("exchange", "kind")),
    "mm_reconciliation_mismatched_positions": ("gauge", ("exchange",)),
    "mm_rate_limit_tokens_total": ("counter", ("exchange", "bucket")),
    "mm_rate_limit_refill_rate": ("gauge", ("exchange", "bucket")),
    "mm_rate_limit_usage_ratio": ("gauge", ("exchange", "bucket")),
    "mm_rate_limit_waits_total": ("counter", ("exchange", "bucket")),
    "mm_kill_switch_active": ("gauge", ()),
    "mm_ready": ("gauge", ()),
    "mm_disk_usage_bytes": ("gauge", ("what",)),
    "mm_disk_free_bytes": ("gauge", ()),
    "mm_network_bytes_total": ("counter", ("interface", "direction")),
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
    "mm_quote_uptime_seconds_total": "quote_uptime",
    "mm_two_sided_seconds_total": "two_sided",
    "mm_market_reconciled_seconds_total": "market_reconciled",
    "mm_quote_sides": "quote_sides",
    "mm_open_orders": "open_orders",
    "mm_time_to_settlement_seconds": "time_to_settlement",
    "mm_market_data_age_seconds": "market_data_age",
    "mm_pnl_daily": "pnl_daily",
    "mm_inventory_limit": "inventory_limit",
    "mm_loss_limit": "loss_limit",
    "mm_filled_contracts_total": "filled_contracts",
    "mm_spread_captured": "spread_captured",
    "mm_websocket_messages_total": "websocket_messages",
    "mm_websocket_reconnects_total": "websocket_reconnects",
    "mm_websocket_reconnect_failures": "websocket_reconnect_failures",
    "mm_book_resyncs_total": "book_resyncs",
    "mm_reconciliation_drift_total": "reconciliation_drift",
    "mm_reconciliation_mismatched_positions": "reconciliation_mismatched",
    "mm_rate_limit_tokens_total": "rate_limit_tokens",
    "mm_rate_limit_refill_rate": "rate_limit_refill",
    "mm_rate_limit_usage_ratio": "rate_limit_usage",
    "mm_rate_limit_waits_total": "rate_limit_waits",
    "mm_kill_switch_active": "kill_switch",
    "mm_ready": "ready",
    "mm_disk_usage_bytes": "disk_usage",
    "mm_disk_free_bytes": "disk_free",
}
"""Metrics set through an attribute of :class:`Metrics` (mm_network_bytes_total comes from a collector)."""


def touch_every_metric(metrics: Metrics) -> None:
    """Create one label set per metric so each has samples in the exposition."""
    for name, (kind, labels) in (NFR_402 | EXTRA).items():
        if name not in ATTRIBUTES:
            continue
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


def test_market_series_credits_the_time_since_the_last_call_to_what_rested_then() -> None:
    metrics = Metrics()
    series = MarketSeries(metrics, "KX")
    s = 1_000_000_000

    def value(name: str) -> float | None:
        return metrics.registry.get_sample_value(name, {"market": "KX"})

    series.quotes(0, 0, 10 * s)  # first call: nothing to credit yet
    series.quotes(2, 2, 12 * s)  # 2 s with nothing resting
    series.quotes(1, 1, 15 * s)  # 3 s two-sided
    series.quotes(0, 0, 19 * s)  # 4 s one-sided
    series.quotes(0, 0, 25 * s)  # 6 s with nothing
    assert value("mm_market_reconciled_seconds_total") == 15.0
    assert value("mm_quote_uptime_seconds_total") == 7.0
    assert value("mm_two_sided_seconds_total") == 3.0
    assert value("mm_quote_sides") == 0.0 and value("mm_open_orders") == 0.0
    series.quotes(2, 2, 24 * s)  # a clock that went back credits nothing
    assert value("mm_market_reconciled_seconds_total") == 15.0
    assert value("mm_quote_sides") == 2.0 and value("mm_open_orders") == 2.0


def test_a_forgotten_market_series_leaves_only_position_and_pnl() -> None:
    metrics = Metrics()
    series = MarketSeries(metrics, "KX")
    series.quotes(2, 2, 1)
    series.quotes(2, 2, 2_000_000_001)
    series.time_to_settlement.set(60)
    series.daily_loss_limit.set(100)
    series.inventory.set(3)
    series.forget()
    left = {s.name for f in families(metrics).values() for s in f.samples if s.labels.get("market") == "KX"}
    pnl = {"mm_pnl_realized", "mm_pnl_unrealized", "mm_pnl_daily"}
    assert left == {"mm_inventory", "mm_position_yes", "mm_position_no"} | pnl
    MarketSeries(metrics, "KX").forget()  # forgetting what was never set is fine


def test_network_collector_reads_proc_net_dev(tmp_path: Path) -> None:
    dev = tmp_path / "dev"
    dev.write_text(
        "Inter-|   Receive                                                |  Transmit\n"
        " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls "
        "carrier compressed\n"
        "    lo:  1000      10    0    0    0     0          0         0  1000      10    0    0    0     0       0 0\n"
        "  eth0: 52345     100    0    0    0     0          0         0  7890      50    0    0    0     0       0 0\n"
    )
    registry = CollectorRegistry()
    NetworkCollector(registry=registry, path=dev)
    got = {
        (s.labels["interface"], s.labels["direction"]): s.value
        for f in text_string_to_metric_families(generate_latest(registry).decode())
        for s in f.samples
        if s.name == "mm_network_bytes_total"
    }
    assert got == {
        ("lo", "receive"): 1000,
        ("lo", "transmit"): 1000,
        ("eth0", "receive"): 52345,
        ("eth0", "transmit"): 7890,
    }
    missing = CollectorRegistry()
    NetworkCollector(registry=missing, path=tmp_path / "absent")
    assert "mm_network_bytes_total{" not in generate_latest(missing).decode()  # no /proc: no samples, no error


def test_disk_usage_is_measured_when_scraped(tmp_path: Path) -> None:
    metrics = Metrics()
    database = tmp_path / "mmctl.db"
    sessions = tmp_path / "sessions"
    metrics.watch_disk("database", database, tmp_path / "mmctl.db-wal")
    metrics.watch_disk("sessions", sessions)
    metrics.watch_free_space(tmp_path)

    def usage(what: str) -> float | None:
        return metrics.registry.get_sample_value("mm_disk_usage_bytes", {"what": what})

    assert usage("database") == 0 and usage("sessions") == 0  # nothing there yet
    database.write_bytes(b"x" * 1000)
    (sessions / "2026" / "08").mkdir(parents=True)
    (sessions / "a.jsonl.gz").write_bytes(b"y" * 300)
    (sessions / "2026" / "08" / "b.jsonl.gz").write_bytes(b"z" * 200)
    assert usage("database") == 1000
    assert usage("sessions") == 500
    assert bytes_under([database, sessions, tmp_path / "nope"]) == 1500
    free = metrics.registry.get_sample_value("mm_disk_free_bytes")
    assert free is not None and free > 0


def test_the_registry_carries_the_process_metrics() -> None:
    metrics = Metrics()
    got = families(metrics)
    assert got["process_cpu_seconds"].type == "counter"
    resident = got["process_resident_memory_bytes"].samples[0].value
    assert resident > 1_000_000  # a Python process is megabytes, whatever the platform's page size
