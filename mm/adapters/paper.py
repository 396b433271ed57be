"""Paper trading (FR-604): the :class:`ExchangeAdapter` interface with every order kept in-process.

:class:`PaperExecution` is a drop-in replacement for a live adapter: the core places, cancels and
queries orders exactly as it would live, but no order ever leaves the process. Market *reads*
(``list_markets``, ``get_market``, ``connect``, ``subscribe_market``, ``book``, ``is_stale`` ...) are
delegated to the optional ``data`` adapter, so paper trading runs against real market data.

Fills come from a :mod:`~mm.adapters.fill_models` model shared with backtesting (``trade_through`` by
default; ``cross`` is the requirements' top-of-book rule; ``queue`` estimates our queue position). With a
``data`` adapter, its :class:`~mm.domain.events.BookUpdated` and :class:`~mm.domain.events.PublicTrade`
events drive the model; without one, call :meth:`PaperExecution.on_book` and :meth:`PaperExecution.on_trade`.
In every model an order that crosses the book when placed or amended fills at once, as a taker, against
the top level (unless ``enforce_post_only`` refuses a post-only one).

Events: paper emits its own :class:`~mm.domain.events.OrderUpdate` (every state change of a virtual order)
and :class:`~mm.domain.events.FillEvent` (every virtual fill, before the order's update), so the core sees
paper exactly like live. The data adapter's market events are re-emitted after the fills they caused; its
``OrderUpdate``, ``FillEvent``, ``Settlement`` and order-scope ``ResyncRequired`` events are dropped — they
belong to the real account.

NO orders are mapped onto the YES book with :meth:`OrderRequest.yes_book` (buy NO at q = YES ask at
1 − q) and their fills are reported in the order's own contract price.

Fees: paper fills carry ``fee = Decimal(0)``; fees for paper trading are estimated later by the ledger
from ``is_taker``, price and size, so one fee model serves paper and backtest.

Money is exact: prices and sizes are integer units, cash is ``Decimal``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Final

from mm.adapters.base import Capabilities, ExchangeAdapter, MarketInfo
from mm.adapters.errors import (
    DuplicateClientOrderIdError,
    ExchangeError,
    MarketInactiveError,
    OrderNotFoundError,
    OrderPriceError,
    OrderRejectedError,
    OrderSizeError,
)
from mm.adapters.fill_models import FillModel, SimFill, TradeThroughFillModel, crosses, fully_available, taker_fill
from mm.clock import Clock
from mm.domain.book import OrderBook
from mm.domain.events import (
    BookUpdated,
    ExchangeEvent,
    FillEvent,
    OrderUpdate,
    PublicTrade,
    ResyncRequired,
    Settlement,
)
from mm.domain.orders import Fill, Order, OrderRequest
from mm.domain.portfolio import Balance, Position
from mm.domain.price import PRICE_SCALE, Price, Quantity
from mm.domain.sides import BookSide, Side, TimeInForce
from mm.domain.ticks import TickGrid

__all__ = [
    "PAPER_CAPABILITIES",
    "PaperExecution",
    "VirtualAccount",
    "get_market_via",
    "list_markets_via",
    "matching_fills",
    "matching_markets",
    "order_with_client_id",
    "reserved_for",
    "yes_book_price",
]

PAPER_CAPABILITIES: Final = Capabilities(
    amend=True,
    decrease=True,
    batch_create_limit=20,
    batch_cancel_limit=20,
    unified_book=True,
    fractional_counts=True,
    tick_grids=True,
    post_only=True,
    self_trade_prevention=True,
    client_order_ids=True,
)
"""Kalshi-like: what the core sees when paper trading against Kalshi market data."""

_REAL_ACCOUNT_EVENTS: Final = (OrderUpdate, FillEvent, Settlement)
"""The data venue's events about the real account: paper has no orders, fills or settlements there."""


def yes_book_price(side: Side, price: Price) -> Price:
    """A contract price expressed as a YES price (a NO price q is the YES price 1 − q)."""
    return price if side is Side.YES else price.complement()


def _contract_price(side: Side, yes_price: Price) -> Price:
    """The inverse of :func:`yes_book_price`: a YES-book price expressed in ``side``'s contract."""
    return yes_price if side is Side.YES else yes_price.complement()


def reserved_for(order: Order) -> Decimal:
    """Dollars an order's unfilled remainder would cost if it filled as an opening trade.

    A YES-book bid at P costs P per contract; an ask at P (sell YES = buy NO at 1 − P) costs 1 − P.
    Conservative for closing orders (Kalshi releases collateral on a close); exact Decimal.
    """
    if not order.status.is_live:
        return Decimal(0)
    bs, yes_price = order.request.yes_book()
    cost_units = yes_price.units if bs is BookSide.BID else PRICE_SCALE - yes_price.units
    return Decimal(cost_units).scaleb(-4) * order.remaining.to_decimal()


class VirtualAccount:
    """Cash and net positions built from fills, Kalshi-style netting (YES and NO held together cancel).

    Bookkeeping is in YES terms: a YES-book bid of c at P adds c to net YES and pays P·c; an ask of c at
    P removes c and receives P·c. Holding n NO contracts is economically short n YES plus $n collateral,
    so cash = starting balance + YES cash flow − $1 × (NO contracts held). Buying NO at q from flat thus
    costs exactly q·c, and buying YES back at p against it returns (1 − p − q)·c net of both legs.
    """

    def __init__(self, starting_balance: Decimal) -> None:
        if not isinstance(starting_balance, Decimal):
            raise TypeError("starting_balance must be a Decimal")
        self.starting_balance = starting_balance
        self._yes_flow = Decimal(0)
        self._net_units: dict[str, int] = {}

    def apply(self, fill: Fill) -> None:
        bs, yes_price = _fill_yes_book(fill)
        value = yes_price.to_decimal() * fill.quantity.to_decimal()
        net = self._net_units.get(fill.market_id, 0)
        if bs is BookSide.BID:
            self._yes_flow -= value
            net += fill.quantity.units
        else:
            self._yes_flow += value
            net -= fill.quantity.units
        self._net_units[fill.market_id] = net
        self._yes_flow -= fill.fee

    @property
    def cash(self) -> Decimal:
        no_contracts = sum((Decimal(max(-n, 0)).scaleb(-2) for n in self._net_units.values()), Decimal(0))
        return self.starting_balance + self._yes_flow - no_contracts

    def net_units(self, market_id: str) -> int:
        """Net YES inventory in 1/100 contracts (negative = long NO)."""
        return self._net_units.get(market_id, 0)

    def positions(self) -> list[Position]:
        """Non-flat positions, sorted by market id (average prices are left to the ledger)."""
        return [
            Position(market_id=m, yes=Quantity(max(n, 0)), no=Quantity(max(-n, 0)))
            for m, n in sorted(self._net_units.items())
            if n != 0
        ]

    def balance(self, live_orders: Sequence[Order]) -> Balance:
        """``total`` = cash; ``available`` = cash minus what the live orders' remainders would cost."""
        cash = self.cash
        reserved = sum((reserved_for(o) for o in live_orders), Decimal(0))
        return Balance(available=cash - reserved, total=cash)


def _fill_yes_book(fill: Fill) -> tuple[BookSide, Price]:
    request_like = OrderRequest(
        market_id=fill.market_id,
        side=fill.side,
        order_side=fill.order_side,
        price=fill.price,
        quantity=fill.quantity,
        client_order_id="fill",
    )
    return request_like.yes_book()


def check_on_grid(order: OrderRequest, grid: TickGrid | None) -> None:
    """Refuse an off-grid price like the venue would (no grid known: accept)."""
    if grid is not None and not grid.contains(order.price.units):
        raise OrderPriceError(f"price {order.price} is off the tick grid", status=400, code="invalid_price")


def validate_virtual_order(
    order: OrderRequest, used_client_ids: Container[str], info: MarketInfo | None, grid: TickGrid | None
) -> None:
    """The venue's checks for an order that never leaves the process (paper and mock adapters share them):
    a unique client order id (409: ``used_client_ids`` holds every id used before), an active market, a price
    on the grid."""
    if order.client_order_id in used_client_ids:
        raise DuplicateClientOrderIdError(
            f"client order id {order.client_order_id!r} was used before", status=409, code="order_already_exists"
        )
    if info is not None and info.status != "active":
        raise MarketInactiveError(f"market {order.market_id!r} is {info.status}", status=400, code="market_closed")
    check_on_grid(order, grid)


def matching_markets(markets: Iterable[MarketInfo], series: Sequence[str], status: str | None) -> list[MarketInfo]:
    """``list_markets``' filter over the markets an adapter holds itself (paper, mock and replay share it)."""
    return [m for m in markets if (not series or m.series_id in series) and (status is None or m.status == status)]


def order_with_client_id(orders: Iterable[Order], client_order_id: str, market_id: str | None) -> Order | None:
    """``get_order_by_client_id`` over the orders an adapter holds itself (paper, mock and replay share it)."""
    for order in orders:
        if order.client_order_id == client_order_id and market_id in (None, order.request.market_id):
            return order
    return None


def matching_fills(fills: Iterable[Fill], since_us: int | None, market_id: str | None) -> list[Fill]:
    """``get_fills``' filter over the fills an adapter holds itself (paper, mock and replay share it)."""
    return [f for f in fills if (since_us is None or f.timestamp_us >= since_us) and market_id in (None, f.market_id)]


async def list_markets_via(
    data: ExchangeAdapter | None, own: Mapping[str, MarketInfo], series: Sequence[str], status: str | None
) -> list[MarketInfo]:
    """``list_markets`` of an adapter whose market reads go to its ``data`` adapter when it has one, else to the
    markets it holds (``own``) — paper and replay share it."""
    if data is not None:
        return await data.list_markets(series=series, status=status)
    return matching_markets(own.values(), series, status)


async def get_market_via(
    data: ExchangeAdapter | None, own: Mapping[str, MarketInfo], market_id: str, missing: str
) -> MarketInfo:
    """``get_market`` likewise; a market it does not hold is a 404 whose message is ``missing`` formatted with the
    id's repr."""
    if data is not None:
        return await data.get_market(market_id)
    info = own.get(market_id)
    if info is None:
        raise ExchangeError(missing.format(market_id), status=404, code="not_found")
    return info


class PaperExecution(ExchangeAdapter):
    """Paper trading: live-identical interface, virtual orders, fills from a :class:`FillModel`.

    ``data`` (optional) answers market reads and stream control and drives the fill model through its
    events; without it, markets come from :meth:`add_market` and market data from :meth:`on_book` and
    :meth:`on_trade`. ``log`` receives one line per failing event handler.
    """

    def __init__(
        self,
        data: ExchangeAdapter | None,
        clock: Clock,
        *,
        starting_balance: Decimal,
        capabilities: Capabilities = PAPER_CAPABILITIES,
        enforce_post_only: bool = False,
        fill_model: FillModel | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self._data = data
        self._clock = clock
        self._capabilities = capabilities
        self._enforce_post_only = enforce_post_only
        # A fresh model per adapter: models keep per-order state that must not be shared.
        self.fill_model: FillModel = fill_model if fill_model is not None else TradeThroughFillModel()
        self._log = log if log is not None else (lambda _line: None)
        self.account = VirtualAccount(starting_balance)
        self.orders: dict[str, Order] = {}
        """Every paper order by its (paper) exchange order id, in placement order."""
        self._live_orders: dict[str, Order] = {}
        """The live ones only, in placement order: what fill models and open-order queries walk, so a long
        session (a backtest places thousands of orders) does not walk every order it ever placed."""
        self._client_ids: set[str] = set()
        self.fills: list[Fill] = []
        """Every paper fill in time order (the PnL inputs)."""
        self.handler_failures = 0
        """Event handlers that raised (each is logged; the others still ran)."""
        self._markets: dict[str, MarketInfo] = {}
        self._books: dict[str, OrderBook] = {}
        self._seq: dict[str, int] = {}
        """Time priority: a higher number joined its price level later (an amend that loses priority renews it)."""
        self._next_seq = 0
        self._next_order = 0
        self._next_fill = 0
        self._outbox: deque[ExchangeEvent] = deque()
        self._flushing = False
        if data is not None:
            # Registered once, here rather than in connect(): a reconnect must not register a second time.
            data.on_event(self._on_data_event)

    # ------------------------------------------------------------------ set-up and market data

    def add_market(self, info: MarketInfo) -> None:
        """Register a market locally (used when there is no ``data`` adapter, and for order validation)."""
        self._markets[info.market_id] = info

    def on_book(self, market_id: str, book: OrderBook) -> list[Fill]:
        """A book update: remember the book (by reference) and let the fill model see it.

        Returns the fills it caused. Their events are queued; the data-adapter path delivers them at once,
        a direct caller with handlers awaits :meth:`flush_events` (every async operation also flushes).
        """
        self._books[market_id] = book
        return self._apply(self.fill_model.on_book(book, self._resting(market_id)))

    def on_trade(self, trade: PublicTrade) -> list[Fill]:
        """A public trade: let the fill model see it; returns the fills it caused (events as for :meth:`on_book`)."""
        return self._apply(self.fill_model.on_trade(trade, self._resting(trade.market_id)))

    async def flush_events(self) -> None:
        """Deliver queued events to the handlers, in order.

        Not re-entrant: a handler that places or cancels orders queues their events, and the flush already
        running delivers them once that handler returns (so handlers never nest).
        """
        if self._flushing:
            return
        self._flushing = True
        try:
            while self._outbox:
                event = self._outbox.popleft()
                for exc in await self.emit(event):
                    self.handler_failures += 1
                    self._log(f"paper event handler failed on {type(event).__name__}: {exc!r}")
        finally:
            self._flushing = False

    async def _on_data_event(self, event: ExchangeEvent) -> None:
        if isinstance(event, _REAL_ACCOUNT_EVENTS) or (isinstance(event, ResyncRequired) and event.scope == "orders"):
            return  # about the real account: paper answers order queries from its own state
        if isinstance(event, BookUpdated):
            self.on_book(event.market_id, event.book)
        elif isinstance(event, PublicTrade):
            self.on_trade(event)
        # After the fills it caused: a consumer reacting to market data already knows its new inventory.
        self._outbox.append(event)
        await self.flush_events()

    # ------------------------------------------------------------------ ExchangeAdapter

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    async def connect(self) -> None:
        if self._data is not None:
            await self._data.connect()

    async def disconnect(self) -> None:
        if self._data is not None:
            await self._data.disconnect()

    async def subscribe_market(self, market_id: str) -> None:
        if self._data is not None:
            await self._data.subscribe_market(market_id)

    async def unsubscribe_market(self, market_id: str) -> None:
        if self._data is not None:
            await self._data.unsubscribe_market(market_id)

    def book(self, market_id: str) -> OrderBook | None:
        if self._data is not None:
            return self._data.book(market_id)
        return self._books.get(market_id)

    def is_stale(self, market_id: str) -> bool:
        if self._data is not None:
            return self._data.is_stale(market_id)
        return self.book(market_id) is None

    async def list_markets(self, *, series: Sequence[str] = (), status: str | None = None) -> list[MarketInfo]:
        return await list_markets_via(self._data, self._markets, series, status)

    async def get_market(self, market_id: str) -> MarketInfo:
        return await get_market_via(self._data, self._markets, market_id, "unknown market {!r}")

    async def place_order(self, order: OrderRequest) -> Order:
        now = self._clock.now_us()
        self._validate(order)
        book = self._book(order.market_id)
        pending = Order.pending(order, now)
        crossing = book is not None and crosses(pending, book)
        if crossing and self._enforce_post_only and order.post_only:
            raise OrderRejectedError(
                f"post-only order {order.client_order_id!r} would cross the book", status=400, code="post_only_cross"
            )
        self._next_order += 1
        order_id = f"paper-{self._next_order}"
        placed = self._set(pending.acknowledged(order_id, now))
        self._seq[order_id] = self._take_seq()
        if book is not None and crossing:
            if order.time_in_force is TimeInForce.FILL_OR_KILL and not fully_available(placed, book):
                self._set(placed.cancelled(now))
            else:
                self._take(placed, book)
        current = self.orders[order_id]
        if current.status.is_live:
            if order.time_in_force is not TimeInForce.GOOD_TILL_CANCELED:
                self._set(current.cancelled(now))
            else:
                self.fill_model.on_placed(current, book)
        await self.flush_events()
        return self.orders[order_id]

    async def cancel_order(self, order_id: str) -> None:
        order = self.orders.get(order_id)
        if order is None:
            raise OrderNotFoundError(f"no paper order {order_id!r}", status=404, code="not_found")
        if not order.status.is_live:
            raise OrderNotFoundError(f"paper order {order_id!r} is {order.status.value}", status=404, code="not_found")
        self._set(order.cancelled(self._clock.now_us()))
        self.fill_model.on_cancelled(order_id)
        await self.flush_events()

    async def decrease_order(self, order_id: str, *, reduce_to: Quantity) -> None:
        """Reduce the remaining size to ``reduce_to``, keeping queue priority (an amend at the same price)."""
        order = self.orders.get(order_id)
        if order is None or not order.status.is_live:
            raise OrderNotFoundError(f"no live paper order {order_id!r}", status=404, code="not_found")
        if reduce_to.is_zero or reduce_to >= order.remaining:
            raise OrderSizeError(f"decrease to {reduce_to} must be below the remaining {order.remaining}", status=400)
        await self.amend_order(order_id, price=order.request.price, quantity=order.filled + reduce_to)

    async def amend_order(self, order_id: str, *, price: Price, quantity: Quantity) -> Order:
        """Change price and/or total size (``price`` in the order's contract); it may then cross and fill.

        A new price or a larger size loses queue priority (the order joins the back of its level, as on
        Kalshi); a pure decrease keeps it.
        """
        order = self.orders.get(order_id)
        if order is None or not order.status.is_live:
            raise OrderNotFoundError(f"no live paper order {order_id!r}", status=404, code="not_found")
        if quantity <= order.filled:
            raise OrderSizeError(f"amended size {quantity} must exceed the filled {order.filled}", status=400)
        request = replace(order.request, price=price, quantity=quantity)
        self._validate_price(request)
        requeue = price != order.request.price or quantity > order.request.quantity
        amended = self._set(replace(order, request=request, updated_us=self._clock.now_us()))
        if requeue:
            self._seq[order_id] = self._take_seq()
            self.fill_model.on_cancelled(order_id)
        book = self._book(request.market_id)
        if book is not None and crosses(amended, book):
            self._take(amended, book)
        current = self.orders[order_id]
        if requeue and current.status.is_live:
            self.fill_model.on_placed(current, book)
        await self.flush_events()
        return current

    async def get_positions(self) -> list[Position]:
        return self.account.positions()

    async def get_balance(self) -> Balance:
        return self.account.balance(self._live(None))

    async def get_open_orders(self, market_id: str | None = None) -> list[Order]:
        return self._live(market_id)

    async def get_order_by_client_id(self, client_order_id: str, market_id: str | None = None) -> Order | None:
        return order_with_client_id(self.orders.values(), client_order_id, market_id)

    async def get_fills(self, *, since_us: int | None = None, market_id: str | None = None) -> list[Fill]:
        return matching_fills(self.fills, since_us, market_id)

    # ------------------------------------------------------------------ internals

    def _validate(self, order: OrderRequest) -> None:
        validate_virtual_order(order, self._client_ids, self._markets.get(order.market_id), self._grid(order))

    def _validate_price(self, order: OrderRequest) -> None:
        check_on_grid(order, self._grid(order))

    def _book(self, market_id: str) -> OrderBook | None:
        """The book orders match against: the last one fed to us, else the data adapter's live book."""
        book = self._books.get(market_id)
        if book is None and self._data is not None:
            book = self._data.book(market_id)
        return book

    def _grid(self, order: OrderRequest) -> TickGrid | None:
        info = self._markets.get(order.market_id)
        book = self._book(order.market_id)
        return info.grid if info is not None else (book.grid if book is not None else None)

    def _live(self, market_id: str | None) -> list[Order]:
        return [o for o in self._live_orders.values() if market_id in (None, o.request.market_id)]

    def _resting(self, market_id: str) -> list[Order]:
        """One market's live orders in time priority, as the fill models expect them."""
        live = self._live(market_id)
        if len(live) < 2:
            return live
        return sorted(live, key=lambda o: self._seq[o.exchange_order_id or ""])

    def live_orders(self, market_id: str | None = None) -> list[Order]:
        """The live orders (of ``market_id``, or all), in placement order — ``get_open_orders`` without a
        coroutine, for synchronous drivers such as the backtester."""
        return self._live(market_id)

    def take_events(self) -> list[ExchangeEvent]:
        """Remove and return the queued events, for a synchronous driver with no handlers (the backtester reads
        :attr:`fills` and :attr:`orders` instead): without it, ``on_book``/``on_trade`` fills would queue events
        that only an async operation's flush ever removes."""
        events = list(self._outbox)
        self._outbox.clear()
        return events

    def _take_seq(self) -> int:
        self._next_seq += 1
        return self._next_seq

    def _set(self, order: Order) -> Order:
        """Store a new state of a virtual order and queue its :class:`OrderUpdate`."""
        key = order.exchange_order_id or ""
        self.orders[key] = order
        self._client_ids.add(order.client_order_id)
        if order.status.is_live:
            self._live_orders[key] = order
        else:
            self._live_orders.pop(key, None)
        self._outbox.append(OrderUpdate(order, order.updated_us))
        return order

    def _take(self, order: Order, book: OrderBook) -> None:
        """A crossing order takes the top opposite level at once, as a taker (every model)."""
        sim = taker_fill(order, book)
        if sim is not None:
            self._apply([sim])

    def _apply(self, sims: Iterable[SimFill]) -> list[Fill]:
        now = self._clock.now_us()
        return [self._fill(sim, now) for sim in sims]

    def _fill(self, sim: SimFill, now_us: int) -> Fill:
        order = self.orders[sim.order_id]
        quantity = Quantity(sim.quantity_units)
        after = order.with_fill(quantity, now_us)
        self._next_fill += 1
        request = order.request
        fill = Fill(
            fill_id=f"paper-fill-{self._next_fill}",
            order_id=sim.order_id,
            client_order_id=request.client_order_id,
            market_id=request.market_id,
            side=request.side,
            order_side=request.order_side,
            price=_contract_price(request.side, Price(sim.yes_price_units)),
            quantity=quantity,
            fee=Decimal(0),
            is_taker=sim.is_taker,
            timestamp_us=now_us,
        )
        self.fills.append(fill)
        self.account.apply(fill)
        # The fill first, then the order state that reflects it (as a ledger wants to see them).
        self._outbox.append(FillEvent(fill))
        self._set(after)
        return fill
