"""Prometheus metrics (NFR-402), each defined exactly once in :data:`METRIC_SPECS`.

Metrics live in a private ``CollectorRegistry`` per :class:`Metrics` instance, never the global default
registry, so tests and several controllers in one process cannot collide over names.

Exported names: prometheus_client exposes a Counter ``x`` as the sample ``x_total`` (plus ``x_created``).
Counters whose required name already ends in ``_total`` (``mm_orders_total``) are therefore exported
under exactly that name; ``mm_pnl_fees`` and the other counters without the suffix appear as
``mm_pnl_fees_total``. Histograms export ``_bucket``/``_sum``/``_count`` samples as usual.

Units: money in dollars, positions in contracts, durations in seconds. Money and quantities are
``Decimal`` in the code; Prometheus only stores float64, so :func:`set_money`, :func:`inc_money` and
:func:`set_contracts` convert at the last moment. That float is exposition-only and never read back
into any decision.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Final, Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = [
    "LATENCY_BUCKETS_SECONDS",
    "METRIC_SPECS",
    "MetricSpec",
    "Metrics",
    "inc_money",
    "render",
    "set_contracts",
    "set_money",
]

LATENCY_BUCKETS_SECONDS: Final[tuple[float, ...]] = (
    0.000001, 0.0000025, 0.000005,
    0.00001, 0.000025, 0.00005,
    0.0001, 0.00025, 0.0005,
    0.001, 0.0025, 0.005,
    0.01, 0.025, 0.05,
    0.1, 0.25, 0.5,
    1.0, 2.5, 5.0,
    10.0,
)  # fmt: skip
"""Histogram upper bounds in seconds: 1 µs (book update, quote calc) to 10 s (a slow exchange round
trip), in the 1-2.5-5 series (×2-×2.5 steps), i.e. three buckets per decade. Written as literals so
each bound is the exact decimal shown rather than an accumulated float product."""

Kind = Literal["counter", "gauge", "histogram"]


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One metric: its required name, Prometheus type, label names and help text (with the unit)."""

    name: str
    kind: Kind
    labels: tuple[str, ...]
    help: str


METRIC_SPECS: Final[tuple[MetricSpec, ...]] = (
    # --- NFR-402 trading metrics
    MetricSpec("mm_pnl_realized", "gauge", ("market",), "Realized PnL, dollars."),
    MetricSpec("mm_pnl_unrealized", "gauge", ("market",), "Unrealized (mark-to-market) PnL, dollars."),
    MetricSpec("mm_pnl_fees", "counter", ("market", "fee_type"), "Accumulated fees paid, dollars."),
    MetricSpec("mm_inventory", "gauge", ("market",), "Net inventory (YES minus NO), contracts."),
    MetricSpec("mm_position_yes", "gauge", ("market",), "YES contracts held."),
    MetricSpec("mm_position_no", "gauge", ("market",), "NO contracts held."),
    # --- NFR-402 order metrics
    MetricSpec("mm_orders_total", "counter", ("market", "side", "status"), "Orders, by side and status."),
    MetricSpec("mm_fills_total", "counter", ("market", "side"), "Fills received."),
    MetricSpec("mm_order_latency_seconds", "histogram", ("market",), "Order round-trip time, seconds."),
    # --- NFR-402 system metrics
    MetricSpec("mm_quote_generation_seconds", "histogram", ("market",), "Quote calculation time, seconds."),
    MetricSpec("mm_book_update_seconds", "histogram", ("market",), "Order book update processing, seconds."),
    MetricSpec("mm_websocket_connected", "gauge", ("exchange",), "WebSocket connected: 1 yes, 0 no."),
    MetricSpec("mm_clock_drift_seconds", "gauge", (), "Clock offset from NTP reference, seconds."),
    # --- risk and spec layers
    MetricSpec("mm_risk_decisions_total", "counter", ("rule", "action"), "Risk rule decisions, by action."),
    MetricSpec("mm_malformed_messages_total", "counter", ("exchange", "channel"), "Exchange messages rejected."),
    MetricSpec("mm_spec_admission_errors_total", "counter", ("kind",), "Specs refused at admission."),
    # --- state store (write-behind queue, decision 012)
    MetricSpec("mm_db_queue_depth", "gauge", (), "Records waiting in the write-behind queue, records."),
    MetricSpec("mm_db_queue_overflow_total", "counter", (), "Records accepted while the queue was over capacity."),
    MetricSpec("mm_db_write_errors_total", "counter", ("kind",), "Failed database writes (transient or poison)."),
    # --- link health (NFR-203/204, mm.controller.degradation)
    MetricSpec("mm_exchange_rtt_seconds", "gauge", ("exchange",), "Median REST round trip, recent requests, seconds."),
    MetricSpec(
        "mm_exchange_clock_offset_seconds", "gauge", ("exchange",), "Exchange clock minus ours (estimate), seconds."
    ),
)
"""Every metric the system exports, in one place. The first 13 are NFR-402's three tables verbatim."""

_SPECS_BY_NAME: Final = {spec.name: spec for spec in METRIC_SPECS}


class Metrics:
    """All metrics of one process (or one test), registered in ``registry`` (a fresh one if None).

    Attributes are the metric families; use ``.labels(...)`` to get the child to update, e.g.
    ``set_money(metrics.pnl_realized.labels(market="KXBTC-25"), Decimal("12.34"))``.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry: Final = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.render_hooks: list[Callable[[], None]] = []
        """Called before every :func:`render`: hot-path producers flush batched counts here."""
        self.pnl_realized: Final = self._gauge("mm_pnl_realized")
        self.pnl_unrealized: Final = self._gauge("mm_pnl_unrealized")
        self.pnl_fees: Final = self._counter("mm_pnl_fees")
        self.inventory: Final = self._gauge("mm_inventory")
        self.position_yes: Final = self._gauge("mm_position_yes")
        self.position_no: Final = self._gauge("mm_position_no")
        self.orders: Final = self._counter("mm_orders_total")
        self.fills: Final = self._counter("mm_fills_total")
        self.order_latency: Final = self._histogram("mm_order_latency_seconds")
        self.quote_generation: Final = self._histogram("mm_quote_generation_seconds")
        self.book_update: Final = self._histogram("mm_book_update_seconds")
        self.websocket_connected: Final = self._gauge("mm_websocket_connected")
        self.clock_drift: Final = self._gauge("mm_clock_drift_seconds")
        self.risk_decisions: Final = self._counter("mm_risk_decisions_total")
        self.malformed_messages: Final = self._counter("mm_malformed_messages_total")
        self.spec_admission_errors: Final = self._counter("mm_spec_admission_errors_total")
        self.db_queue_depth: Final = self._gauge("mm_db_queue_depth")
        self.db_queue_overflow: Final = self._counter("mm_db_queue_overflow_total")
        self.db_write_errors: Final = self._counter("mm_db_write_errors_total")
        self.exchange_rtt: Final = self._gauge("mm_exchange_rtt_seconds")
        self.exchange_clock_offset: Final = self._gauge("mm_exchange_clock_offset_seconds")

    def _spec(self, name: str, kind: Kind) -> MetricSpec:
        spec = _SPECS_BY_NAME[name]
        if spec.kind != kind:  # guards against an attribute wired to the wrong constructor
            raise TypeError(f"{name} is a {spec.kind}, not a {kind}")
        return spec

    def _gauge(self, name: str) -> Gauge:
        spec = self._spec(name, "gauge")
        return Gauge(spec.name, spec.help, spec.labels, registry=self.registry)

    def _counter(self, name: str) -> Counter:
        spec = self._spec(name, "counter")
        return Counter(spec.name, spec.help, spec.labels, registry=self.registry)

    def _histogram(self, name: str) -> Histogram:
        spec = self._spec(name, "histogram")
        return Histogram(spec.name, spec.help, spec.labels, registry=self.registry, buckets=LATENCY_BUCKETS_SECONDS)


def render(metrics: Metrics) -> bytes:
    """The Prometheus text exposition of ``metrics`` (the body of ``GET /metrics``), after the flush hooks of
    producers that batch hot-path increments (:meth:`Metrics.on_render`)."""
    for hook in metrics.render_hooks:
        hook()
    return generate_latest(metrics.registry)


def _exposition_float(value: Decimal | int) -> float:
    # Runtime check as well as the annotation: a float here means money was a float upstream, a bug.
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise TypeError(f"expected Decimal or int, got {type(value).__name__}")
    return float(value)


def set_money(gauge: Gauge, value: Decimal | int) -> None:
    """Set a dollar gauge (e.g. ``pnl_realized.labels(market=...)``) from an exact Decimal.

    The float conversion exists only because Prometheus exposition is float64; the gauge is an output
    and its value is never fed back into trading logic, so the rounding cannot compound.
    """
    gauge.set(_exposition_float(value))


def inc_money(counter: Counter, value: Decimal | int) -> None:
    """Add a non-negative dollar amount (e.g. a fee) to a counter child; exposition-only float."""
    amount = _exposition_float(value)
    if value < 0:
        raise ValueError(f"counters only increase; got {value}")
    counter.inc(amount)


def set_contracts(gauge: Gauge, value: Decimal | int) -> None:
    """Set a contracts gauge (inventory, positions; fractional contracts allowed); exposition-only."""
    gauge.set(_exposition_float(value))
