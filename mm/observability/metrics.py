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

Hot path: producers look a labelled child up once and keep it (``labels()`` hashes the label values and takes a
lock on every call); the Market reconciler keeps one :class:`MarketSeries` per market. Values that are cheap to
read but change all the time (queue depth, rate-limit buckets, the kill switch, readiness, disk usage) are read
when scraped (``Gauge.set_function``), not pushed on every change. Besides the ``mm_`` metrics each registry
carries prometheus_client's process collector (``process_cpu_seconds_total``, ``process_resident_memory_bytes``,
...) and :class:`NetworkCollector` (``mm_network_bytes_total``). Every metric is documented in docs/metrics.md.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Final, Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = [
    "LATENCY_BUCKETS_SECONDS",
    "METRIC_SPECS",
    "MarketSeries",
    "MetricSpec",
    "Metrics",
    "NetworkCollector",
    "bytes_under",
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
    # --- quoting (Market reconciler, every cycle; real time, so rate() over a window is the fraction of it)
    MetricSpec(
        "mm_quote_uptime_seconds_total",
        "counter",
        ("market",),
        "Time with at least one of our orders resting in the market, seconds (rate = fraction of time quoted).",
    ),
    MetricSpec(
        "mm_two_sided_seconds_total",
        "counter",
        ("market",),
        "Time with our orders resting on both sides of the book, seconds (rate = fraction of time two-sided).",
    ),
    MetricSpec(
        "mm_market_reconciled_seconds_total",
        "counter",
        ("market",),
        "Time the Market was being reconciled (the denominator of quote uptime), seconds.",
    ),
    MetricSpec("mm_quote_sides", "gauge", ("market",), "Sides of the book with an order of ours resting: 0, 1 or 2."),
    MetricSpec("mm_open_orders", "gauge", ("market",), "Our open orders in the market, orders."),
    MetricSpec(
        "mm_time_to_settlement_seconds", "gauge", ("market",), "Time until the market closes (market clock), seconds."
    ),
    MetricSpec(
        "mm_market_data_age_seconds",
        "gauge",
        ("market",),
        "Age of the order book's last update when the Market last reconciled (market clock), seconds.",
    ),
    # --- PnL and limits (risk panels, alerts)
    MetricSpec("mm_pnl_daily", "gauge", ("market",), "Net PnL (realized + unrealized - fees) this UTC day, dollars."),
    MetricSpec("mm_inventory_limit", "gauge", ("market",), "The max_inventory risk rule's limit, contracts."),
    MetricSpec(
        "mm_loss_limit",
        "gauge",
        ("market", "window"),
        "Loss limit of the daily / hourly loss risk rule (window daily|hourly), dollars.",
    ),
    MetricSpec("mm_filled_contracts_total", "counter", ("market", "side"), "Contracts filled, contracts."),
    MetricSpec(
        "mm_spread_captured",
        "gauge",
        ("market",),
        "Average edge of our fills against the book mid when each fill arrived, dollars per contract.",
    ),
    # --- market data stream (Kalshi adapter)
    MetricSpec("mm_websocket_messages_total", "counter", ("exchange",), "WebSocket messages received, messages."),
    MetricSpec("mm_websocket_reconnects_total", "counter", ("exchange",), "WebSocket reconnections, reconnects."),
    MetricSpec(
        "mm_websocket_reconnect_failures",
        "gauge",
        ("exchange",),
        "Reconnect attempts failed in a row since the stream was last connected, attempts.",
    ),
    MetricSpec(
        "mm_book_resyncs_total",
        "counter",
        ("exchange", "reason"),
        "Order book resyncs (snapshot requests, and resubscriptions after a reconnect), by reason.",
    ),
    # --- reconciliation with the exchange (Exchange reconciler's periodic check)
    MetricSpec(
        "mm_reconciliation_drift_total",
        "counter",
        ("exchange", "kind"),
        "Differences found with the exchange (kind position|order_adopted|order_gone), differences.",
    ),
    MetricSpec(
        "mm_reconciliation_mismatched_positions",
        "gauge",
        ("exchange",),
        "Markets whose position differed from the exchange's at the last positions check, markets.",
    ),
    # --- client rate limiter (FR-603)
    MetricSpec("mm_rate_limit_tokens_total", "counter", ("exchange", "bucket"), "Rate-limit tokens spent, tokens."),
    MetricSpec(
        "mm_rate_limit_refill_rate", "gauge", ("exchange", "bucket"), "The bucket's refill rate, tokens per second."
    ),
    MetricSpec(
        "mm_rate_limit_usage_ratio",
        "gauge",
        ("exchange", "bucket"),
        "Share of the bucket's capacity in use when scraped (1 - available / capacity), ratio.",
    ),
    MetricSpec("mm_rate_limit_waits_total", "counter", ("exchange", "bucket"), "Requests that had to wait for tokens."),
    # --- node
    MetricSpec("mm_kill_switch_active", "gauge", (), "Node kill switch tripped (latched): 1 yes, 0 no."),
    MetricSpec("mm_ready", "gauge", (), "Node ready to trade (what /ready answers): 1 yes, 0 no."),
    MetricSpec("mm_disk_usage_bytes", "gauge", ("what",), "Bytes on disk (what database|sessions), bytes."),
    MetricSpec("mm_disk_free_bytes", "gauge", (), "Free space on the state directory's file system, bytes."),
    MetricSpec(
        "mm_network_bytes_total",
        "counter",
        ("interface", "direction"),
        "Bytes through the network interfaces of the process's network namespace (direction receive|transmit).",
    ),
)
"""Every metric the system exports, in one place. The first 13 are NFR-402's three tables verbatim.
(prometheus_client's ``process_*`` metrics come on top: see docs/metrics.md.)"""

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
        self.quote_uptime: Final = self._counter("mm_quote_uptime_seconds_total")
        self.two_sided: Final = self._counter("mm_two_sided_seconds_total")
        self.market_reconciled: Final = self._counter("mm_market_reconciled_seconds_total")
        self.quote_sides: Final = self._gauge("mm_quote_sides")
        self.open_orders: Final = self._gauge("mm_open_orders")
        self.time_to_settlement: Final = self._gauge("mm_time_to_settlement_seconds")
        self.market_data_age: Final = self._gauge("mm_market_data_age_seconds")
        self.pnl_daily: Final = self._gauge("mm_pnl_daily")
        self.inventory_limit: Final = self._gauge("mm_inventory_limit")
        self.loss_limit: Final = self._gauge("mm_loss_limit")
        self.filled_contracts: Final = self._counter("mm_filled_contracts_total")
        self.spread_captured: Final = self._gauge("mm_spread_captured")
        self.websocket_messages: Final = self._counter("mm_websocket_messages_total")
        self.websocket_reconnects: Final = self._counter("mm_websocket_reconnects_total")
        self.websocket_reconnect_failures: Final = self._gauge("mm_websocket_reconnect_failures")
        self.book_resyncs: Final = self._counter("mm_book_resyncs_total")
        self.reconciliation_drift: Final = self._counter("mm_reconciliation_drift_total")
        self.reconciliation_mismatched: Final = self._gauge("mm_reconciliation_mismatched_positions")
        self.rate_limit_tokens: Final = self._counter("mm_rate_limit_tokens_total")
        self.rate_limit_refill: Final = self._gauge("mm_rate_limit_refill_rate")
        self.rate_limit_usage: Final = self._gauge("mm_rate_limit_usage_ratio")
        self.rate_limit_waits: Final = self._counter("mm_rate_limit_waits_total")
        self.kill_switch: Final = self._gauge("mm_kill_switch_active")
        self.ready: Final = self._gauge("mm_ready")
        self.disk_usage: Final = self._gauge("mm_disk_usage_bytes")
        self.disk_free: Final = self._gauge("mm_disk_free_bytes")
        self.network: Final = NetworkCollector(registry=self.registry)
        ProcessCollector(registry=self.registry)

    def watch_disk(self, what: str, *roots: Path) -> None:
        """Report the bytes under ``roots`` (files, or directories summed recursively; missing ones count 0) as
        ``mm_disk_usage_bytes{what=...}``, measured when scraped."""
        self.disk_usage.labels(what=what).set_function(lambda: float(bytes_under(roots)))

    def watch_free_space(self, directory: Path) -> None:
        """Report the free space of ``directory``'s file system as ``mm_disk_free_bytes``, measured when scraped."""

        def free() -> float:
            try:
                return float(shutil.disk_usage(directory).free)
            except OSError:
                return float("nan")

        self.disk_free.set_function(free)

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


class MarketSeries:
    """One market's children of the per-market metrics the Market reconciler sets every cycle (looked up once),
    and the quote-time integrator behind ``mm_quote_uptime_seconds_total`` / ``mm_two_sided_seconds_total``.

    :meth:`quotes` is called at every reconcile with what rests now; the real time since the previous call is
    credited to what rested *then*. Our resting orders change when a reconcile acts, or by a fill or cancel that
    itself enqueues a reconcile, so the credit is off by at most one reconcile's delay at each change.
    """

    __slots__ = (
        "_last_ns",
        "_market",
        "_metrics",
        "_reconciled",
        "_sides",
        "_two_sided",
        "_uptime",
        "daily_loss_limit",
        "hourly_loss_limit",
        "inventory",
        "inventory_limit",
        "market_data_age",
        "open_orders",
        "pnl_daily",
        "pnl_realized",
        "pnl_unrealized",
        "position_no",
        "position_yes",
        "quote_sides",
        "time_to_settlement",
    )

    def __init__(self, metrics: Metrics, market: str) -> None:
        self._metrics = metrics
        self._market = market
        self.inventory = metrics.inventory.labels(market=market)
        self.position_yes = metrics.position_yes.labels(market=market)
        self.position_no = metrics.position_no.labels(market=market)
        self.pnl_realized = metrics.pnl_realized.labels(market=market)
        self.pnl_unrealized = metrics.pnl_unrealized.labels(market=market)
        self.pnl_daily = metrics.pnl_daily.labels(market=market)
        self.open_orders = metrics.open_orders.labels(market=market)
        self.quote_sides = metrics.quote_sides.labels(market=market)
        self.time_to_settlement = metrics.time_to_settlement.labels(market=market)
        self.market_data_age = metrics.market_data_age.labels(market=market)
        self.inventory_limit = metrics.inventory_limit.labels(market=market)
        self.daily_loss_limit = metrics.loss_limit.labels(market=market, window="daily")
        self.hourly_loss_limit = metrics.loss_limit.labels(market=market, window="hourly")
        self._uptime = metrics.quote_uptime.labels(market=market)
        self._two_sided = metrics.two_sided.labels(market=market)
        self._reconciled = metrics.market_reconciled.labels(market=market)
        self._last_ns: int | None = None
        self._sides = 0

    def quotes(self, open_orders: int, sides: int, now_ns: int) -> None:
        """Our orders resting now: ``open_orders`` of them, on ``sides`` (0, 1 or 2) sides of the book, at
        ``now_ns`` (monotonic real time)."""
        last = self._last_ns
        if last is not None and now_ns > last:
            elapsed = (now_ns - last) / 1e9
            self._reconciled.inc(elapsed)
            if self._sides:
                self._uptime.inc(elapsed)
                if self._sides > 1:
                    self._two_sided.inc(elapsed)
        self._last_ns = now_ns
        self._sides = sides
        self.quote_sides.set(sides)
        self.open_orders.set(open_orders)

    def forget(self) -> None:
        """The market is no longer traded (its Market was deleted): drop its quoting, timing and limit series —
        frozen, they would say it still quotes, still closes in N seconds. Its position and PnL series stay (the
        position may be held to settlement)."""
        metrics, market = self._metrics, self._market
        for family in (
            metrics.quote_uptime,
            metrics.two_sided,
            metrics.market_reconciled,
            metrics.quote_sides,
            metrics.open_orders,
            metrics.time_to_settlement,
            metrics.market_data_age,
            metrics.inventory_limit,
        ):
            family.remove(market)
        for window in ("daily", "hourly"):
            metrics.loss_limit.remove(market, window)


def bytes_under(roots: Iterable[Path]) -> int:
    """Total size of the files at or under ``roots`` (missing paths and unreadable entries count 0)."""
    return sum(_size(Path(root)) for root in roots)


def _size(path: Path) -> int:
    try:
        if not path.is_dir():
            return path.stat().st_size if path.exists() else 0
        total = 0
        for entry in os.scandir(path):
            total += _size(Path(entry.path)) if entry.is_dir(follow_symlinks=False) else entry.stat().st_size
        return total
    except OSError:
        return 0


class NetworkCollector(Collector):
    """``mm_network_bytes_total{interface, direction}`` from ``/proc/self/net/dev`` when scraped: the bytes through
    the interfaces of the process's network namespace (in a container, the container's own traffic). Nothing
    where that file does not exist (not Linux)."""

    def __init__(self, registry: CollectorRegistry | None = None, path: Path = Path("/proc/self/net/dev")) -> None:
        self._path = path
        if registry is not None:
            registry.register(self)

    def describe(self) -> Iterable[Metric]:
        # Described without reading the file: the registry may describe before /proc is readable.
        return [self._family()]

    def collect(self) -> Iterator[Metric]:
        family = self._family()
        for interface, received, transmitted in self._read():
            family.add_metric([interface, "receive"], received)
            family.add_metric([interface, "transmit"], transmitted)
        yield family

    @staticmethod
    def _family() -> CounterMetricFamily:
        spec = _SPECS_BY_NAME["mm_network_bytes_total"]
        return CounterMetricFamily(spec.name, spec.help, labels=spec.labels)

    def _read(self) -> list[tuple[str, float, float]]:
        try:
            lines = self._path.read_text().splitlines()[2:]  # two header lines
        except OSError:
            return []
        out = []
        for line in lines:
            name, _, fields = line.partition(":")
            values = fields.split()
            if len(values) >= 9:
                out.append((name.strip(), float(values[0]), float(values[8])))
        return out


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
