"""The running node's shared state: exchange connections, accounts (paper or live), the ledger per account,
the order trackers, the kill switches, persistence hooks — and the routing of venue events to keys.

Reconcilers read and act on this; nothing here plans. Events only *enqueue keys* (design.md §4) and update
observed state (ledger on a fill, tracker on an order update): the reconcile that follows reads it all.

Accounts: every Exchange connection has one venue adapter (market data, live orders) and, when a paper
Market needs it, one :class:`PaperExecution` on the venue's data. A Market's ``execution`` picks the account;
each account has its own :class:`OrderTracker` and :class:`Ledger`, so paper PnL never mixes with real money.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import structlog

from mm.adapters.base import ExchangeAdapter, MarketInfo
from mm.adapters.errors import ExchangeError, OrderNotFoundError
from mm.adapters.paper import PaperExecution
from mm.clock import Clock, WallClock
from mm.controller.holds import Hold, TradingHolds
from mm.controller.orders import OrderTracker
from mm.controller.resources import ResourceStore, key_of
from mm.domain.events import (
    BookState,
    BookUpdated,
    ConnectionState,
    ExchangeEvent,
    FillEvent,
    MarketLifecycle,
    OrderUpdate,
    PublicTrade,
    ResyncRequired,
)
from mm.domain.fees import FeeSchedule
from mm.domain.orders import Fill, Order
from mm.domain.price import QTY_SCALE
from mm.domain.sides import BookSide, Side, book_side
from mm.observability import audit
from mm.observability.metrics import Metrics
from mm.recording.order_records import order_payload
from mm.recording.recorder import RecordSink
from mm.risk.aggregate import MarketUsage
from mm.risk.kill_switch import InMemoryLatch, KillSwitch, KillSwitchLatch
from mm.specs.exchange import ExchangeSpec
from mm.specs.risk import KillSwitch as KillSwitchSpec
from mm.state.ledger import Ledger
from mm.state.records import EventRecord, FillRecord, OrderRecord, Record

__all__ = ["Account", "ExchangeConnection", "Execution", "ExternalUsage", "NodeContext", "venue_connected"]

_logger = logging.getLogger(__name__)

Execution = Literal["paper", "live"]
ExternalUsage = Callable[["Account", int], Mapping[str, MarketUsage]]
"""(account, now µs) → the usage of markets the ledger does not hold, by market id (see ``external_usage``)."""
PAPER_BALANCE_MICROS = 10_000 * 1_000_000


@dataclass
class Account:
    """Where a Market's orders go and what they did: adapter, our orders, positions and PnL."""

    exchange: str
    execution: Execution
    adapter: ExchangeAdapter
    tracker: OrderTracker
    ledger: Ledger


@dataclass
class ExchangeConnection:
    name: str
    digest: str
    spec: ExchangeSpec
    venue: ExchangeAdapter
    """The venue's adapter: market data, the live account's orders (Kalshi, or a replay's recording)."""
    accounts: dict[str, Account] = field(default_factory=dict)
    markets: dict[str, MarketInfo] = field(default_factory=dict)
    """Market facts by ticker (close time, grid, status), refreshed by get_market / list_markets."""
    connected: bool = False
    loaded: bool = False
    """Positions and open orders were loaded: only then may anything trade (design.md §4)."""
    last_resync_us: int = 0
    fills_stale: bool = False
    """The stream lost or mangled something (a disconnect, a ResyncRequired): fills may have been missed; the
    Exchange reconciler reads them back over REST (``ExchangeReconciler._backfill_fills``)."""
    last_fill_us: int | None = None
    """Venue time of the latest live fill booked (where a fills read-back starts)."""
    fills_during_load: list[Fill] = field(default_factory=list)
    """Live fills that arrived before the positions were imported: stored, booked after the import."""
    positions_imported: bool = False
    """The live positions are imported and the fills around the import primed (``ExchangeReconciler._prime_fills``):
    from then on a live fill is booked as it comes, even while the rest of the load (the first positions check,
    settlements) is still running — ``loaded`` is set only after all of it."""


def venue_connected(venue: ExchangeAdapter) -> bool:
    """Whether a venue adapter's connection is up; adapters without one (replay, paper, mock) always are."""
    return bool(getattr(venue, "connected", True))


class NodeContext:
    """Shared runtime of one node. ``enqueue(key)`` is the manager's queue; ``record`` the write-behind queue."""

    def __init__(
        self,
        clock: Clock,
        resources: ResourceStore,
        *,
        prefix: str = "mm",
        metrics: Metrics | None = None,
        latch: KillSwitchLatch | None = None,
        record: Callable[[Record], None] | None = None,
        paper_balance_micros: int = PAPER_BALANCE_MICROS,
        wall_clock: Clock | None = None,
    ) -> None:
        self.clock = clock
        self.wall: Clock = wall_clock if wall_clock is not None else WallClock()
        """Real time, for latencies and stream staleness (``clock`` may be an accelerated market clock)."""
        self.resources = resources
        self.prefix = prefix
        self.metrics = metrics
        self.latch: KillSwitchLatch = latch if latch is not None else InMemoryLatch()
        self.node_switch = KillSwitch(self.latch, "node")
        self.attempt_floor: dict[str, int] = {}
        """Per ticker, where this run's client order id attempt counters start (:meth:`attempt_floor_for`)."""
        self.holds = TradingHolds(on_change=self._hold_changed)
        """Node-wide reasons not to quote besides the kill switch (shutdown, recovery, degradation)."""
        self._record = record
        self._paper_balance = paper_balance_micros
        self.exchanges: dict[str, ExchangeConnection] = {}
        self.enqueue: Callable[[str], None] = lambda _key: None
        self.market_state: dict[str, Any] = {}
        """Per-Market runtime objects owned by the Market reconciler (engines, last plan...)."""
        self.event_listeners: list[Callable[[tuple[int, str, str, str]], None]] = []
        """Called with every event (the API's /events stream, webhooks)."""
        self.events: list[tuple[int, str, str, str]] = []
        """Recent notable events (time µs, subject, reason, message) for status and the demo summary."""
        self.fills_seen = 0
        self.orders_sent = 0
        self._fill_edges: dict[str, tuple[Decimal, Decimal]] = {}
        """Per market: our fills' summed edge against the mid (dollars) and contracts filled (mm_spread_captured)."""
        self._settled_markets: dict[str, set[str]] = {}
        self._order_results: deque[tuple[int, bool]] = deque()
        self.state_dir: Path | None = None
        """Where checkpoints live (set by the runtime)."""
        self.kill: Callable[[str, str], Awaitable[int]] | None = None
        """Set by the runtime: trip the node kill switch and cancel everything (reason, source)."""
        self.recorder: RecordSink | None = None
        """The session recorder (FR-901) when the TradingNode's ``recording.enabled``; None otherwise, which is
        all the hot path checks."""
        self.external_usage: ExternalUsage | None = None
        """Replay only: the aggregate usage of markets outside the recording being replayed (as it recorded
        them), for the aggregate risk limits. None when trading: every market is in the ledger."""

    def note_order_results(
        self, results: Iterable[bool], policy: KillSwitchSpec, now_us: int | None = None
    ) -> str | None:
        """Record order outcomes (True = rejected) at ``now_us`` (default: now) and return a reason when the
        reject rate over the policy's window exceeds its limit (a kill switch trigger: something is wrong)."""
        now = self.clock.now_us() if now_us is None else now_us
        window = int(policy.reject_window_seconds * 1_000_000)
        results_deque = self._order_results
        for rejected in results:
            results_deque.append((now, rejected))
        while results_deque and results_deque[0][0] < now - window:
            results_deque.popleft()
        total = len(results_deque)
        if total < policy.min_orders_for_reject_rate:
            return None
        rejected_count = sum(1 for _, r in results_deque if r)
        if Decimal(rejected_count) / total > policy.max_reject_rate:
            return (
                f"order reject rate {rejected_count}/{total} over {policy.reject_window_seconds} s exceeds "
                f"{policy.max_reject_rate}"
            )
        return None

    def use_latch(self, latch: KillSwitchLatch) -> None:
        """Switch to a durable latch (the store's), re-reading the node switch from it."""
        self.latch = latch
        self.node_switch = KillSwitch(latch, "node")

    def attempt_floor_for(self, ticker: str) -> int:
        """The first attempt number of this run's orders on ``ticker``: 100 × the node clock's seconds when first
        asked (below 10**12 until the year 2286). A venue refuses a client order id it has seen, so a restarted
        node must not count from 0 again; each run starts above the last as long as a level made fewer than 100
        orders per second, which the update throttle guarantees. A replay sets it from the recording."""
        floor = self.attempt_floor.get(ticker)
        if floor is None:
            floor = self.attempt_floor[ticker] = (self.clock.now_us() // 1_000_000) * 100 % 10**12
        return floor

    def _hold_changed(self, key: str, hold: Hold | None) -> None:
        if hold is None:
            self.event("TradingNode", "HoldCleared", f"{key}: trading may resume")
        else:
            self.event("TradingNode", "TradingHeld", f"{key}: {hold.reason}", warning=True)
        for market in self.resources.all("Market"):
            self.enqueue(market.key)

    # ------------------------------------------------------------------ persistence and events

    def record(self, record: Record) -> None:
        if self._record is not None:
            self._record(record)

    def event(self, subject: str, reason: str, message: str, *, warning: bool = False) -> None:
        now = self.clock.now_us()
        entry = (now, subject, reason, message)
        self.events.append(entry)
        del self.events[:-500]
        for listener in list(self.event_listeners):
            listener(entry)
        (_logger.warning if warning else _logger.info)("%s %s: %s", subject, reason, message)
        self.record(EventRecord(now, subject, reason, message, "Warning" if warning else "Normal"))

    # ------------------------------------------------------------------ accounts

    def account(self, exchange: str, execution: Execution) -> Account:
        """The account Markets with ``execution`` on ``exchange`` trade through (created on first use)."""
        conn = self.exchanges[exchange]
        found = conn.accounts.get(execution)
        if found is not None:
            return found
        ledger = Ledger(fee_source="venue" if execution == "live" else "formula", fees=FeeSchedule())
        adapter: ExchangeAdapter
        if execution == "live":
            adapter = conn.venue
        else:
            ledger.cash_micros = self._paper_balance
            paper = PaperExecution(
                conn.venue,
                self.clock,
                starting_balance=Decimal(self._paper_balance) / 1_000_000,
                capabilities=conn.venue.capabilities,
            )
            paper.on_event(self._paper_handler(exchange))
            adapter = paper
        account = Account(exchange, execution, adapter, OrderTracker(self.prefix), ledger)
        conn.accounts[execution] = account
        return account

    def _paper_handler(self, exchange: str) -> Callable[[ExchangeEvent], Awaitable[None]]:
        async def handle(event: ExchangeEvent) -> None:
            await self.on_account_event(exchange, "paper", event)

        return handle

    def accounts(self) -> list[Account]:
        return [a for conn in self.exchanges.values() for a in conn.accounts.values()]

    async def cancel_ours(self, account: Account, orders: Sequence[Order], reason: str) -> int:
        """Cancel these orders of ours in one venue call, decided outside the Market reconciler (kill switch,
        shutdown, rollback): audited, recorded, the tracker updated. Returns how many are gone (cancelled, or
        already unknown to the venue). A failed call (``ExchangeError``) is audited and re-raised."""
        ids = [o.exchange_order_id or "" for o in orders]
        try:
            results = await account.adapter.cancel_orders(ids)
        except ExchangeError:
            audit.log_cancels(ids, None, reason)
            raise
        audit.log_cancels(ids, results, reason)
        self.record_node_cancel(account, orders, results, reason)
        gone = 0
        for order_id, error in zip(ids, results, strict=False):
            if error is None or isinstance(error, OrderNotFoundError):
                account.tracker.cancelled(order_id)
                gone += 1
        return gone

    def record_node_cancel(
        self, account: Account, orders: Sequence[Order], results: Sequence[ExchangeError | None], reason: str
    ) -> None:
        """A cancel of our orders decided outside the Market reconciler (kill switch, shutdown, rollback), with
        the venue's answers: ``node_cancel`` in each recorded market's session, which a replay applies as given."""
        recorder = self.recorder
        if recorder is None:
            return
        by_market: dict[str, list[list[str | None]]] = {}
        for order, error in zip(orders, results, strict=False):
            market = order.request.market_id
            if market in recorder.markets:
                ok = error is None or isinstance(error, OrderNotFoundError)
                by_market.setdefault(market, []).append([order.exchange_order_id, None if ok else type(error).__name__])
        for market, answers in by_market.items():
            recorder.record(
                "node_cancel", market, {"execution": account.execution, "reason": reason, "orders": answers}
            )

    # ------------------------------------------------------------------ routing

    def markets_trading(self, exchange: str, ticker: str | None = None) -> list[str]:
        """Market resource keys on ``exchange`` (for ``ticker``, or all)."""
        keys = []
        for r in self.resources.all("Market"):
            if r.spec.exchange_ref == exchange and (ticker is None or r.spec.ticker == ticker):
                keys.append(r.key)
        return keys

    async def on_venue_event(self, exchange: str, event: ExchangeEvent) -> None:
        """Every event of the venue adapter: market data, connection, and the live account's orders."""
        conn = self.exchanges.get(exchange)
        if conn is None:
            return
        if isinstance(event, BookUpdated | PublicTrade):
            keys = self.markets_trading(exchange, event.market_id)
            for key in keys:
                self.enqueue(key)
            recorder = self.recorder
            if recorder is not None and keys:  # only markets we trade are recorded
                _record_market_data(recorder, event)
            return
        if isinstance(event, OrderUpdate | FillEvent):
            await self.on_account_event(exchange, "live", event)
            return
        if isinstance(event, MarketLifecycle):
            info = conn.markets.get(event.market_id)
            self.event(f"Exchange/{exchange}", f"Lifecycle{event.kind.title().replace('_', '')}", event.market_id)
            if event.kind in {"settled", "determined"}:
                self._settle(conn, event)
            if info is not None or event.kind in ("created", "activated"):
                for key in self.markets_trading(exchange, event.market_id):
                    self.enqueue(key)
                for selector in self.resources.all("MarketSelector"):
                    if selector.spec.exchange_ref == exchange:
                        self.enqueue(selector.key)
            return
        if isinstance(event, ConnectionState):
            if event.connected and not conn.connected and conn.loaded:
                conn.fills_stale = True  # back after a gap: fills of that gap come only over REST
            conn.connected = event.connected
            self.event(
                f"Exchange/{exchange}",
                "Connected" if event.connected else "Disconnected",
                event.reason,
                warning=not event.connected,
            )
            self.enqueue(key_of("Exchange", exchange))
            for key in self.markets_trading(exchange):
                self.enqueue(key)
            return
        if isinstance(event, ResyncRequired):
            if event.scope == "orders":
                conn.fills_stale = True
            self.enqueue(key_of("Exchange", exchange))
            return
        if (
            isinstance(event, BookState)
            and self.recorder is not None
            and self.markets_trading(exchange, event.market_id)
        ):
            # a book the node must not quote on (or may again): a replay's book is stale exactly here too
            self.recorder.record("book_state", event.market_id, {"stale": event.stale, "reason": event.reason})
        # BookState and others: the markets re-read their books
        market_id = getattr(event, "market_id", None)
        for key in self.markets_trading(exchange, market_id):
            self.enqueue(key)

    async def on_account_event(self, exchange: str, execution: Execution, event: ExchangeEvent) -> None:
        # the stream's reader task was started inside some reconcile: its ids would mislabel these lines
        with structlog.contextvars.bound_contextvars(reconcile_id=None, resource=f"Exchange/{exchange}"):
            await self._account_event(exchange, execution, event)

    async def _account_event(self, exchange: str, execution: Execution, event: ExchangeEvent) -> None:
        conn = self.exchanges.get(exchange)
        if conn is None:
            return
        account = conn.accounts.get(execution)
        if account is None:
            return
        if isinstance(event, OrderUpdate):
            if account.tracker.update(event.order):
                audit.log_order_update(event.order, execution)
                self.record(OrderRecord(event.order))
                if self.recorder is not None:
                    _record_order_update(self.recorder, execution, event)
                for key in self.markets_trading(exchange, event.order.request.market_id):
                    self.enqueue(key)
        elif isinstance(event, FillEvent):
            fill = event.fill
            if not account.tracker.is_ours(fill.client_order_id):
                return
            if execution == "live" and not conn.positions_imported:
                # positions are not imported yet: booking now would be overwritten (or refused) by the import;
                # stored now; in the import, or booked by the first positions check (ExchangeReconciler._prime_fills)
                if fill.fill_id not in {f.fill_id for f in conn.fills_during_load}:
                    conn.fills_during_load.append(fill)
                    audit.log_fill(fill, execution)
                    self.record(FillRecord(fill))
                return
            if execution == "live" and (conn.last_fill_us is None or fill.timestamp_us > conn.last_fill_us):
                conn.last_fill_us = fill.timestamp_us
            if account.ledger.apply_fill(fill):
                audit.log_fill(fill, execution)
                self.fills_seen += 1
                self.record(FillRecord(fill))
                if self.recorder is not None:
                    _record_fill(self.recorder, account, event)
                if self.metrics is not None:
                    self._count_fill(self.metrics, conn.venue, fill)
            for key in self.markets_trading(exchange, fill.market_id):
                self.enqueue(key)
        elif isinstance(event, BookUpdated | PublicTrade):
            for key in self.markets_trading(exchange, event.market_id):
                self.enqueue(key)

    def _count_fill(self, metrics: Metrics, venue: ExchangeAdapter, fill: Fill) -> None:
        """``mm_fills_total``, ``mm_filled_contracts_total`` and ``mm_spread_captured``: the fill's edge against the
        venue's book mid now (YES terms: mid − price bought at, price sold at − mid), averaged per contract."""
        side = fill.side.value
        metrics.fills.labels(market=fill.market_id, side=side).inc()
        metrics.filled_contracts.labels(market=fill.market_id, side=side).inc(fill.quantity.units / QTY_SCALE)
        book = venue.book(fill.market_id)
        mid = book.mid() if book is not None else None
        if mid is None:
            return
        price = (fill.price if fill.side is Side.YES else fill.price.complement()).to_decimal()
        edge = mid - price if book_side(fill.side, fill.order_side) is BookSide.BID else price - mid
        total, contracts = self._fill_edges.get(fill.market_id, (Decimal(0), Decimal(0)))
        total += edge * fill.quantity.to_decimal()
        contracts += fill.quantity.to_decimal()
        self._fill_edges[fill.market_id] = (total, contracts)
        metrics.spread_captured.labels(market=fill.market_id).set(float(total / contracts))

    def _settle(self, conn: ExchangeConnection, event: MarketLifecycle) -> None:
        """A determined market's value is final for our books: realize PnL and clear positions (FR-502)."""
        value = event.settlement_value_units
        if value is None:
            return
        for account in conn.accounts.values():
            if event.market_id not in account.ledger.market_ids():
                continue
            done = self._settled_markets.setdefault(account.execution, set())
            if event.market_id in done:
                continue
            done.add(event.market_id)
            held = account.ledger.net_units(event.market_id)
            payout = account.ledger.apply_settlement(event.market_id, value, event.timestamp_us)
            if self.recorder is not None and event.market_id in self.recorder.markets:
                self.recorder.record(
                    "market_settled",
                    event.market_id,
                    {"execution": account.execution, "value_units": value, "venue_ts_us": event.timestamp_us},
                )
            self.event(
                f"Exchange/{conn.name}",
                "Settled",
                f"{event.market_id} ({account.execution}) settled at {Decimal(value).scaleb(-4)}: "
                f"held {Decimal(held).scaleb(-2)} YES, paid {Decimal(payout).scaleb(-6)} USD",
            )


# ---------------------------------------------------------------------- recording (FR-901), off the common path


def _record_market_data(recorder: RecordSink, event: BookUpdated | PublicTrade) -> None:
    if isinstance(event, BookUpdated):
        # The event carries the live book, not the change: the recorder copies its levels and its writer derives
        # the book_delta records from consecutive copies (see mm.recording.recorder).
        recorder.record_book(event.market_id, event.book)
        return
    recorder.record(
        "trade",
        event.market_id,
        {
            "trade_id": event.trade_id,
            "price_units": event.price.units,
            "size_units": event.quantity.units,
            "taker_side": event.taker_side.value,
            "venue_ts_us": event.timestamp_us,
        },
    )


def _record_order_update(recorder: RecordSink, execution: Execution, event: OrderUpdate) -> None:
    order = event.order
    # the whole order as the venue reported it (a replay hands the node exactly this Order)
    data = order_payload(order)
    data["execution"] = execution
    data["venue_ts_us"] = event.timestamp_us
    recorder.record("order_update", order.request.market_id, data)


def _record_fill(recorder: RecordSink, account: Account, event: FillEvent) -> None:
    fill = event.fill
    order = account.tracker.get(fill.order_id)
    recorder.record(
        "fill",
        fill.market_id,
        {
            "fill_id": fill.fill_id,
            "order_id": fill.order_id,
            "client_order_id": fill.client_order_id,
            "side": fill.side.value,
            "order_side": fill.order_side.value,
            "price_units": fill.price.units,
            "size_units": fill.quantity.units,
            # the order as the node knew it when the fill arrived (the venue's order update may come later)
            "remaining_units": order.remaining.units if order is not None else None,
            "fee": str(fill.fee),
            "is_taker": fill.is_taker,
            "post_position_units": event.post_position.units if event.post_position is not None else None,
            "execution": account.execution,
            "venue_ts_us": fill.timestamp_us,
        },
    )
