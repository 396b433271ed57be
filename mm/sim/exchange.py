"""The simulated exchange's state machine: markets, accounts, orders, fills, fees, settlement.

It sits between the protocol server (which parses Kalshi requests and formats responses) and the
per-market :class:`~mm.sim.matching.MatchingEngine`. Every operation validates the request like Kalshi
does, checks and reserves collateral, runs the matching engine, books each fill on both accounts with
its fee, and appends :class:`ExchangeEvent` records that the WebSocket layer fans out
(``orderbook_delta``, ``trade``, ``fill``, ``user_order``, ``market_position``, ``order_group_updates``). It is
also the
simulator's ground truth: every order and fill is kept for tests to compare with a client's view.

Order groups (kalshi-api.md §4): a group caps the contracts its orders may fill. Every fill of an order
in a group (as taker or maker) adds to the group's filled count; once the count reaches the limit the group
*triggers*: its resting orders are cancelled (book changes, ``user_order`` events, reservations released) and
new orders in it are refused (400 ``order_group_triggered``) until it is reset, which clears the count.
Matching is never interrupted: the order operation whose fills reach the limit completes (a fill may cross
the limit, and a sweep may fill past it), then the group triggers. An unknown, deleted or another user's
group is 404 ``not_found``, on order creation as on the group calls.

Time comes from the injected clock (simulation time); nothing here does IO.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from mm.clock import Clock
from mm.domain.price import PRICE_SCALE
from mm.domain.sides import TimeInForce
from mm.domain.ticks import TickGrid
from mm.sim.accounts import Account, order_cost_micros
from mm.sim.fees import OrderFeeAccumulator
from mm.sim.matching import MatchingEngine, MatchResult
from mm.sim.types import BookChange, BookSide, OrderStatus, SelfTradePrevention, SimOrder, Trade

MarketStatus = Literal["initialized", "active", "inactive", "closed", "determined", "finalized"]
FeeRounding = Literal["per_order_cent", "per_fill_centicent"]


class SimApiError(Exception):
    """A request Kalshi would refuse: HTTP status, Kalshi's snake_case code, a message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


@dataclass(slots=True)
class SimMarket:
    ticker: str
    event_ticker: str
    series_ticker: str
    grid: TickGrid
    engine: MatchingEngine
    open_us: int
    close_us: int
    status: MarketStatus = "initialized"
    result: str = ""
    settlement_value: int | None = None
    """YES payout, $0.0001 units, once determined."""
    fee_type: str = "quadratic"
    fee_multiplier: Decimal = Decimal(1)
    volume: int = 0
    """Contracts traded, 1/100 contract."""
    last_price: int | None = None


@dataclass(frozen=True, slots=True)
class ExchangeEvent:
    """Something the WebSocket layer publishes. ``user_id`` set for private channels."""

    kind: Literal["book", "trade", "fill", "user_order", "position", "lifecycle", "order_group"]
    ticker: str
    ts_us: int
    user_id: str | None = None
    book_change: BookChange | None = None
    trade: Trade | None = None
    order: SimOrder | None = None
    fill_side: BookSide | None = None
    is_taker: bool = False
    fee_micros: int = 0
    detail: str = ""
    """``lifecycle``: the lifecycle step; ``order_group``: created | triggered | reset | deleted | limit_updated."""
    order_group_id: str | None = None
    contracts_limit: int | None = None
    """``order_group``: the group's limit after the event, 1/100 contract (``None`` for ``deleted``)."""


@dataclass(frozen=True, slots=True)
class NewOrder:
    """A validated CreateOrderV2 request in simulator units."""

    ticker: str
    side: BookSide
    price: int
    count: int
    client_order_id: str = ""
    time_in_force: TimeInForce = TimeInForce.GOOD_TILL_CANCELED
    post_only: bool = False
    stp: SelfTradePrevention = SelfTradePrevention.MAKER
    expiration_s: int | None = None
    order_group_id: str | None = None


@dataclass(slots=True)
class OrderGroup:
    """An order group: a cap on the contracts its orders may fill before they are all cancelled."""

    group_id: str
    user_id: str
    limit: int
    """``contracts_limit``, 1/100 contract."""
    filled: int = 0
    """Contracts (1/100) filled by the group's orders since it was created or last reset."""
    triggered: bool = False
    order_ids: list[str] = field(default_factory=list)
    """Every order placed in the group, oldest first."""


@dataclass(slots=True)
class Exchange:
    clock: Clock
    fee_rounding: FeeRounding = "per_fill_centicent"
    markets: dict[str, SimMarket] = field(default_factory=dict)
    accounts: dict[str, Account] = field(default_factory=dict)
    events: list[ExchangeEvent] = field(default_factory=list)
    orders: dict[str, SimOrder] = field(default_factory=dict)
    """Every order ever accepted (ground truth), by order id."""
    fills: list[tuple[str, Trade, bool, int]] = field(default_factory=list)
    """Ground truth: (user_id, trade, is_taker, fee micro-dollars) for every fill of every user."""
    _client_ids: dict[tuple[str, str], str] = field(default_factory=dict)
    _reserved: dict[str, int] = field(default_factory=dict)
    """Cash each resting order reserves, micro-dollars (kept per order so every path stays exact)."""
    _fees: dict[str, OrderFeeAccumulator] = field(default_factory=dict)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _expiries: list[tuple[int, str]] = field(default_factory=list)
    """Heap of (expiry µs, order id) of resting good-till-time orders; entries of finished orders are skipped."""
    quotes: dict[str, list[tuple[int, int | None, int | None]]] = field(default_factory=dict)
    """Per market, (time µs, best YES bid, best YES ask) each time the top of the book changed (for candles)."""
    groups: dict[str, OrderGroup] = field(default_factory=dict)
    """Live order groups by id (deleted ones are removed)."""
    _group_ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _filled_groups: dict[str, None] = field(default_factory=dict)
    """Groups whose orders filled during the current operation (checked against their limit afterwards)."""

    # --- setup ------------------------------------------------------------------------------------

    def open_account(self, user_id: str, balance_micros: int) -> Account:
        account = self.accounts.get(user_id)
        if account is None:
            account = self.accounts[user_id] = Account(user_id, balance_micros)
        return account

    def add_market(
        self,
        ticker: str,
        event_ticker: str,
        series_ticker: str,
        grid: TickGrid,
        open_us: int,
        close_us: int,
        *,
        fee_type: str = "quadratic",
        fee_multiplier: Decimal = Decimal(1),
    ) -> SimMarket:
        engine = MatchingEngine(ticker, grid, self._trade_id)
        market = SimMarket(
            ticker,
            event_ticker,
            series_ticker,
            grid,
            engine,
            open_us,
            close_us,
            fee_type=fee_type,
            fee_multiplier=fee_multiplier,
        )
        self.markets[ticker] = market
        self.refresh_status(ticker)
        return market

    def _trade_id(self) -> str:
        return f"trade-{next(self._ids)}"

    def _order_id(self) -> str:
        return f"order-{next(self._ids)}"

    # --- lifecycle --------------------------------------------------------------------------------

    def refresh_status(self, ticker: str) -> MarketStatus:
        """Move a market along initialized → active → closed by time; closing cancels resting orders."""
        market = self._market(ticker)
        now = self.clock.now_us()
        if market.status == "initialized" and now >= market.open_us:
            market.status = "active"
            self._lifecycle(market, "activated")
        if market.status in ("active", "inactive") and now >= market.close_us:
            market.status = "closed"
            self._cancel_everything(market, now)
            self._lifecycle(market, "closed")
        return market.status

    def determine(self, ticker: str, result: Literal["yes", "no"]) -> None:
        market = self._market(ticker)
        if market.status not in ("closed", "determined"):
            raise SimApiError(400, "invalid_state", f"market {ticker} is {market.status}, not closed")
        market.status = "determined"
        market.result = result
        market.settlement_value = PRICE_SCALE if result == "yes" else 0
        self._lifecycle(market, "determined")

    def finalize(self, ticker: str) -> list[tuple[str, int, int]]:
        """Pay out a determined market: (user, position settled, revenue micro-dollars) per holder."""
        market = self._market(ticker)
        if market.status != "determined" or market.settlement_value is None:
            raise SimApiError(400, "invalid_state", f"market {ticker} is {market.status}, not determined")
        paid = []
        for account in self.accounts.values():
            if account.positions.get(ticker):
                position, revenue = account.settle(ticker, market.settlement_value)
                paid.append((account.user_id, position, revenue))
                self._emit("position", market.ticker, user_id=account.user_id)
        market.status = "finalized"
        self._lifecycle(market, "settled")
        return paid

    # --- orders -----------------------------------------------------------------------------------

    def create_order(self, user_id: str, request: NewOrder) -> SimOrder:
        market = self._tradable(request.ticker)
        account = self._account(user_id)
        if request.client_order_id:
            key = (user_id, request.client_order_id)
            if key in self._client_ids:
                raise SimApiError(409, "duplicate_client_order_id", "client_order_id already used")
        self._check_price_and_count(market, request.price, request.count)
        group = None
        if request.order_group_id is not None:
            group = self._own_group(user_id, request.order_group_id)
            if group.triggered:
                raise SimApiError(400, "order_group_triggered", "the order group is triggered: reset it first")
        cost = order_cost_micros(request.side, request.price, request.count)
        if cost > account.available + self._closing_credit(account, request):
            raise SimApiError(400, "available_balance_too_low", "available balance too low for this order")
        now = self.clock.now_us()
        order = SimOrder(
            order_id=self._order_id(),
            user_id=user_id,
            ticker=request.ticker,
            side=request.side,
            price=request.price,
            initial_count=request.count,
            remaining_count=request.count,
            client_order_id=request.client_order_id,
            time_in_force=request.time_in_force,
            post_only=request.post_only,
            stp=request.stp,
            created_us=now,
            updated_us=now,
            expiration_s=request.expiration_s,
            order_group_id=request.order_group_id,
        )
        if group is not None:
            group.order_ids.append(order.order_id)
        if request.client_order_id:
            self._client_ids[(user_id, request.client_order_id)] = order.order_id
        self.orders[order.order_id] = order
        try:
            result = market.engine.submit(order, now)
        except ValueError as exc:
            raise SimApiError(400, "invalid_order", str(exc)) from None
        self._apply(market, result, now)
        if result.order.status is OrderStatus.RESTING and request.expiration_s is not None:
            heapq.heappush(self._expiries, (request.expiration_s * 1_000_000, result.order.order_id))
        return result.order

    def expire_orders(self, now_us: int) -> int:
        """Cancel every resting good-till-time order whose ``expiration_time`` is at or before ``now_us``.

        Each is cancelled like a user cancel (status canceled, reservation released, book change and
        ``user_order`` events). Returns how many orders expired.
        """
        expired = 0
        heap = self._expiries
        while heap and heap[0][0] <= now_us:
            _, order_id = heapq.heappop(heap)
            order = self.orders.get(order_id)
            if order is None or order.status is not OrderStatus.RESTING:
                continue  # already filled or cancelled
            market = self._market(order.ticker)
            order, changes = market.engine.cancel(order_id, now_us)
            self._after_removal(market, order, changes)
            expired += 1
        return expired

    def cancel_order(self, user_id: str, order_id: str) -> tuple[SimOrder, int]:
        """Cancel a resting order; returns it and the count reduced (1/100 contract)."""
        order = self._own_order(user_id, order_id)
        market = self._market(order.ticker)
        self._require_open_for_cancels(market)
        if order.status is not OrderStatus.RESTING:
            raise SimApiError(404, "not_found", "order is not resting")
        reduced = order.remaining_count
        order, changes = market.engine.cancel(order_id, self.clock.now_us())
        self._after_removal(market, order, changes)
        return order, reduced

    def decrease_order(
        self, user_id: str, order_id: str, *, reduce_by: int | None = None, reduce_to: int | None = None
    ) -> SimOrder:
        if (reduce_by is None) == (reduce_to is None):
            raise SimApiError(400, "invalid_parameters", "exactly one of reduce_by or reduce_to is required")
        order = self._own_order(user_id, order_id)
        market = self._market(order.ticker)
        self._require_open_for_cancels(market)
        try:
            order, changes = market.engine.decrease(
                order_id, self.clock.now_us(), reduce_by=reduce_by, reduce_to=reduce_to
            )
        except ValueError as exc:
            raise SimApiError(400, "invalid_parameters", str(exc)) from None
        self._after_removal(market, order, changes)
        return order

    def amend_order(self, user_id: str, order_id: str, *, price: int, total_count: int) -> SimOrder:
        order = self._own_order(user_id, order_id)
        market = self._tradable(order.ticker)
        self._check_price_and_count(market, price, total_count)
        if order.status is not OrderStatus.RESTING:
            raise SimApiError(404, "not_found", "order is not resting")
        if total_count <= order.fill_count:
            raise SimApiError(400, "invalid_order_size", "count must exceed the filled count")
        account = self._account(user_id)
        extra = order_cost_micros(order.side, price, total_count - order.fill_count) - self._reserved.get(order_id, 0)
        if extra > account.available:
            raise SimApiError(400, "available_balance_too_low", "available balance too low for this amend")
        now = self.clock.now_us()
        try:
            result = market.engine.amend(order_id, now, price=price, total_count=total_count)
        except ValueError as exc:
            raise SimApiError(400, "invalid_order", str(exc)) from None
        self._apply(market, result, now)
        return result.order

    # --- order groups -----------------------------------------------------------------------------

    def create_order_group(self, user_id: str, limit_units: int) -> str:
        """A new, untriggered group capping its orders' fills at ``limit_units`` (1/100 contract)."""
        self._account(user_id)
        self._check_group_limit(limit_units)
        group = OrderGroup(f"og-{next(self._group_ids)}", user_id, limit_units)
        self.groups[group.group_id] = group
        self._group_event(group, "created")
        return group.group_id

    def get_order_group(self, user_id: str, group_id: str) -> OrderGroup:
        return self._own_group(user_id, group_id)

    def order_groups(self, user_id: str) -> list[OrderGroup]:
        return [g for g in self.groups.values() if g.user_id == user_id]

    def trigger_order_group(self, user_id: str, group_id: str) -> None:
        """Trigger by hand: cancel the group's resting orders and refuse new ones until a reset."""
        self._trigger(self._own_group(user_id, group_id))

    def reset_order_group(self, user_id: str, group_id: str) -> None:
        """Clear the filled count and accept orders again."""
        group = self._own_group(user_id, group_id)
        group.filled = 0
        group.triggered = False
        self._group_event(group, "reset")

    def set_order_group_limit(self, user_id: str, group_id: str, limit_units: int) -> None:
        """Change the limit; a limit at or below the filled count triggers the group at once."""
        group = self._own_group(user_id, group_id)
        self._check_group_limit(limit_units)
        group.limit = limit_units
        self._group_event(group, "limit_updated")
        if not group.triggered and group.filled >= group.limit:
            self._trigger(group)

    def delete_order_group(self, user_id: str, group_id: str) -> None:
        """Cancel the group's resting orders and forget the group (its orders keep its id)."""
        group = self._own_group(user_id, group_id)
        self._cancel_group_orders(group)
        del self.groups[group_id]
        self._group_event(group, "deleted", limit=False)

    # --- queries ----------------------------------------------------------------------------------

    def queue_position(self, user_id: str, order_id: str) -> int:
        """Contracts (1/100) resting ahead of the user's order at its price; 404 if unknown or not resting."""
        order = self._own_order(user_id, order_id)
        if order.status is not OrderStatus.RESTING:
            raise SimApiError(404, "not_found", "order is not resting")
        return self._market(order.ticker).engine.queue_ahead(order_id)

    def order_by_client_id(self, user_id: str, client_order_id: str) -> SimOrder | None:
        order_id = self._client_ids.get((user_id, client_order_id))
        return None if order_id is None else self.orders[order_id]

    def user_orders(self, user_id: str) -> list[SimOrder]:
        return [o for o in self.orders.values() if o.user_id == user_id]

    def drain_events(self) -> list[ExchangeEvent]:
        events, self.events = self.events, []
        return events

    # --- internals --------------------------------------------------------------------------------

    def _apply(self, market: SimMarket, result: MatchResult, now: int) -> None:
        order = result.order
        for trade in result.trades:
            maker_side = BookSide.ASK if trade.taker_side is BookSide.BID else BookSide.BID
            self._book_fill(market, trade, trade.taker_order_id, trade.taker_user_id, trade.taker_side, True)
            self._book_fill(market, trade, trade.maker_order_id, trade.maker_user_id, maker_side, False)
        for change in result.book_changes:
            self._emit("book", market.ticker, book_change=change)
        for maker_order in result.updated_makers:
            self._sync_reservation(maker_order)
            self._emit("user_order", market.ticker, user_id=maker_order.user_id, order=maker_order)
        self._sync_reservation(order)
        detail = result.reject_reason or result.cancel_reason or ""
        self._emit("user_order", market.ticker, user_id=order.user_id, order=order, detail=detail)
        if result.book_changes:
            self._note_quote(market, now)
        self._check_groups()

    def _note_quote(self, market: SimMarket, now: int) -> None:
        """Record the top of the book if it changed (the yes_bid / yes_ask history candlesticks read)."""
        engine = market.engine
        quote = (now, engine.best_bid(), engine.best_ask())
        history = self.quotes.get(market.ticker)
        if history is None:
            self.quotes[market.ticker] = [quote]
        elif history[-1][1:] != quote[1:]:
            if history[-1][0] == now:
                history[-1] = quote
            else:
                history.append(quote)

    def _sync_reservation(self, order: SimOrder) -> None:
        """Reserve exactly what a resting order could cost; release it all once the order stops resting."""
        resting = order.status is OrderStatus.RESTING
        new = order_cost_micros(order.side, order.price, order.remaining_count) if resting else 0
        old = self._reserved.pop(order.order_id, 0)
        if new:
            self._reserved[order.order_id] = new
        self._account(order.user_id).reserved += new - old
        if not resting:
            self._fees.pop(order.order_id, None)

    def _book_fill(
        self, market: SimMarket, trade: Trade, order_id: str, user_id: str, side: BookSide, taker: bool
    ) -> None:
        accumulator = self._fees.get(order_id)
        if accumulator is None:
            accumulator = self._fees[order_id] = OrderFeeAccumulator(
                fee_type=market.fee_type, multiplier=market.fee_multiplier, rounding=self.fee_rounding
            )
        # P(1−P) is symmetric, so the YES price gives the NO side's fee too; $0.0001 → micro-dollars.
        fee = accumulator.add(trade.count, trade.price, taker=taker) * 100
        self._account(user_id).apply_fill(market.ticker, side, trade.price, trade.count, fee)
        self.fills.append((user_id, trade, taker, fee))
        filled = self.orders.get(order_id)
        group = self.groups.get(filled.order_group_id) if filled and filled.order_group_id else None
        if group is not None:
            group.filled += trade.count
            self._filled_groups[group.group_id] = None
        if taker:
            market.volume += trade.count
            market.last_price = trade.price
            self._emit("trade", market.ticker, trade=trade)
        self._emit("fill", market.ticker, user_id=user_id, trade=trade, fill_side=side, is_taker=taker, fee_micros=fee)
        self._emit("position", market.ticker, user_id=user_id)

    def _after_removal(self, market: SimMarket, order: SimOrder, changes: tuple[BookChange, ...]) -> None:
        self._sync_reservation(order)
        for change in changes:
            self._emit("book", market.ticker, book_change=change)
        self._emit("user_order", market.ticker, user_id=order.user_id, order=order)
        if changes:
            self._note_quote(market, self.clock.now_us())

    def _cancel_everything(self, market: SimMarket, now: int) -> None:
        for order, changes in market.engine.cancel_all(now):
            self._after_removal(market, order, changes)

    def _check_groups(self) -> None:
        """Trigger every group whose orders' fills reached its limit during the operation just applied."""
        touched, self._filled_groups = self._filled_groups, {}
        for group_id in touched:
            group = self.groups.get(group_id)
            if group is not None and not group.triggered and group.filled >= group.limit:
                self._trigger(group)

    def _trigger(self, group: OrderGroup) -> None:
        group.triggered = True
        self._cancel_group_orders(group)
        self._group_event(group, "triggered")

    def _cancel_group_orders(self, group: OrderGroup) -> None:
        now = self.clock.now_us()
        for order_id in group.order_ids:
            order = self.orders[order_id]
            if order.status is OrderStatus.RESTING:
                market = self._market(order.ticker)
                order, changes = market.engine.cancel(order_id, now)
                self._after_removal(market, order, changes)

    def _group_event(self, group: OrderGroup, event_type: str, *, limit: bool = True) -> None:
        self._emit(
            "order_group",
            "",
            user_id=group.user_id,
            detail=event_type,
            order_group_id=group.group_id,
            contracts_limit=group.limit if limit else None,
        )

    def _own_group(self, user_id: str, group_id: str) -> OrderGroup:
        group = self.groups.get(group_id)
        if group is None or group.user_id != user_id:
            raise SimApiError(404, "not_found", "order group not found")
        return group

    @staticmethod
    def _check_group_limit(limit_units: int) -> None:
        if limit_units <= 0:
            raise SimApiError(400, "invalid_parameters", "contracts_limit must be positive")

    def _closing_credit(self, account: Account, request: NewOrder) -> int:
        """Cash a fill would release by closing an existing opposite position (so closing orders fit)."""
        position = account.positions.get(request.ticker, 0)
        opposite = -position if request.side is BookSide.BID else position
        return order_cost_micros(request.side, request.price, min(max(opposite, 0), request.count))

    def _check_price_and_count(self, market: SimMarket, price: int, count: int) -> None:
        if not 0 < price < PRICE_SCALE or not market.grid.contains(price):
            raise SimApiError(400, "invalid_price", "price is not on the market's price grid")
        if count <= 0:
            raise SimApiError(400, "invalid_order_size", "count must be positive")

    def _tradable(self, ticker: str) -> SimMarket:
        market = self._market(ticker)
        status = self.refresh_status(ticker)
        if status != "active":
            raise SimApiError(400, "market_inactive", f"MARKET_INACTIVE: market {ticker} is {status}")
        return market

    def _require_open_for_cancels(self, market: SimMarket) -> None:
        if self.refresh_status(market.ticker) not in ("active", "inactive"):
            raise SimApiError(400, "market_inactive", f"MARKET_INACTIVE: market {market.ticker} is {market.status}")

    def _market(self, ticker: str) -> SimMarket:
        market = self.markets.get(ticker)
        if market is None:
            raise SimApiError(404, "not_found", f"market {ticker} not found")
        return market

    def _account(self, user_id: str) -> Account:
        account = self.accounts.get(user_id)
        if account is None:
            raise SimApiError(401, "authentication_error", "unknown user")
        return account

    def _own_order(self, user_id: str, order_id: str) -> SimOrder:
        order = self.orders.get(order_id)
        if order is None or order.user_id != user_id:
            raise SimApiError(404, "not_found", "order not found")
        return order

    def _lifecycle(self, market: SimMarket, detail: str) -> None:
        self._emit("lifecycle", market.ticker, detail=detail)

    def _emit(self, kind: str, ticker: str, **fields: object) -> None:
        self.events.append(ExchangeEvent(kind, ticker, self.clock.now_us(), **fields))  # type: ignore[arg-type]
