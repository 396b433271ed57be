"""Paper trading (FR-604): the :class:`ExchangeAdapter` interface with every order kept in-process.

:class:`PaperExecution` is a drop-in replacement for a live adapter: the core places, cancels and
queries orders exactly as it would live, but no order ever leaves the process. Market *reads*
(``list_markets``, ``get_market``, ``connect``, ``subscribe_market`` ...) are delegated to the optional
``data`` adapter, so paper trading runs against real market data.

Fill simulation is FR-604's top-of-book crossing rule, applied on every market-data update passed to
:meth:`PaperExecution.on_book` and once when an order is placed (a crossing order fills at once, as a
taker):

* a virtual YES bid fills when ``bid >= best YES ask``, at the best YES ask;
* a virtual YES ask fills when ``ask <= best YES bid``, at the best YES bid;
* fill size = ``min(order remaining, size at that best level)``.

NO orders are mapped onto the YES book with :meth:`OrderRequest.yes_book` (buy NO at q = YES ask at
1 − q) and their fills are reported in the order's own contract price. Within one update, liquidity a
paper order took is not offered again to the next paper order (best price first, then time priority);
a later update offers the book's levels afresh. Only the best level is ever taken (top-of-book rule).

Fees: paper fills carry ``fee = Decimal(0)``; fees for paper trading are estimated later by the ledger
from ``is_taker``, price and size, so one fee model serves paper and backtest.

Money is exact: prices and sizes are integer units, cash is ``Decimal``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
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
from mm.clock import Clock
from mm.domain.book import OrderBook
from mm.domain.orders import Fill, Order, OrderRequest
from mm.domain.portfolio import Balance, Position
from mm.domain.price import PRICE_SCALE, Price, Quantity
from mm.domain.sides import BookSide, Side, TimeInForce
from mm.domain.ticks import TickGrid

__all__ = ["PAPER_CAPABILITIES", "PaperExecution", "VirtualAccount", "reserved_for", "yes_book_price"]

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


@dataclass(slots=True)
class _Level:
    """The best opposite level a paper order may take during one update: YES price and size left."""

    yes_price: int
    size: int


def check_on_grid(order: OrderRequest, grid: TickGrid | None) -> None:
    """Refuse an off-grid price like the venue would (no grid known: accept)."""
    if grid is not None and not grid.contains(order.price.units):
        raise OrderPriceError(f"price {order.price} is off the tick grid", status=400, code="invalid_price")


def validate_virtual_order(
    order: OrderRequest, existing: Iterable[Order], info: MarketInfo | None, grid: TickGrid | None
) -> None:
    """The venue's checks for an order that never leaves the process (paper and mock adapters share them):
    a unique client order id (409), an active market, a price on the grid."""
    if any(o.client_order_id == order.client_order_id for o in existing):
        raise DuplicateClientOrderIdError(
            f"client order id {order.client_order_id!r} was used before", status=409, code="order_already_exists"
        )
    if info is not None and info.status != "active":
        raise MarketInactiveError(f"market {order.market_id!r} is {info.status}", status=400, code="market_closed")
    check_on_grid(order, grid)


class PaperExecution(ExchangeAdapter):
    """Paper trading: live-identical interface, virtual orders, FR-604 crossing fills.

    ``data`` (optional) answers market reads and stream control; without it, markets come from
    :meth:`add_market`. Feed every book update to :meth:`on_book`.
    """

    def __init__(
        self,
        data: ExchangeAdapter | None,
        clock: Clock,
        *,
        starting_balance: Decimal,
        capabilities: Capabilities = PAPER_CAPABILITIES,
        enforce_post_only: bool = False,
    ) -> None:
        self._data = data
        self._clock = clock
        self._capabilities = capabilities
        self._enforce_post_only = enforce_post_only
        self.account = VirtualAccount(starting_balance)
        self.orders: dict[str, Order] = {}
        """Every paper order by its (paper) exchange order id, in placement order."""
        self.fills: list[Fill] = []
        """Every paper fill in time order (the PnL inputs)."""
        self._markets: dict[str, MarketInfo] = {}
        self._books: dict[str, OrderBook] = {}
        self._seq: dict[str, int] = {}
        self._next_order = 0
        self._next_fill = 0

    # ------------------------------------------------------------------ set-up and market data

    def add_market(self, info: MarketInfo) -> None:
        """Register a market locally (used when there is no ``data`` adapter, and for order validation)."""
        self._markets[info.market_id] = info

    def on_book(self, market_id: str, book: OrderBook) -> list[Fill]:
        """A market-data update: remember the book and fill every resting paper order it crosses.

        The book is kept by reference (it is the caller's live book); returns the fills it caused.
        """
        self._books[market_id] = book
        return self._match(book, self._live(market_id))

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

    async def list_markets(self, *, series: Sequence[str] = (), status: str | None = None) -> list[MarketInfo]:
        if self._data is not None:
            return await self._data.list_markets(series=series, status=status)
        return [
            m
            for m in self._markets.values()
            if (not series or m.series_id in series) and (status is None or m.status == status)
        ]

    async def get_market(self, market_id: str) -> MarketInfo:
        if self._data is not None:
            return await self._data.get_market(market_id)
        try:
            return self._markets[market_id]
        except KeyError:
            raise ExchangeError(f"unknown market {market_id!r}", status=404, code="not_found") from None

    async def place_order(self, order: OrderRequest) -> Order:
        now = self._clock.now_us()
        self._validate(order)
        book = self._books.get(order.market_id)
        pending = Order.pending(order, now)
        crosses = book is not None and self._crosses(pending, book)
        if crosses and self._enforce_post_only and order.post_only:
            raise OrderRejectedError(
                f"post-only order {order.client_order_id!r} would cross the book", status=400, code="post_only_cross"
            )
        self._next_order += 1
        order_id = f"paper-{self._next_order}"
        placed = pending.acknowledged(order_id, now)
        self.orders[order_id] = placed
        self._seq[order_id] = self._next_order
        if book is not None and crosses:
            if order.time_in_force is TimeInForce.FILL_OR_KILL and not self._fully_available(placed, book):
                self.orders[order_id] = placed.cancelled(now)
                return self.orders[order_id]
            self._match(book, [placed], is_taker=True)
        if order.time_in_force is not TimeInForce.GOOD_TILL_CANCELED and self.orders[order_id].status.is_live:
            self.orders[order_id] = self.orders[order_id].cancelled(now)
        return self.orders[order_id]

    async def cancel_order(self, order_id: str) -> None:
        order = self.orders.get(order_id)
        if order is None:
            raise OrderNotFoundError(f"no paper order {order_id!r}", status=404, code="not_found")
        if not order.status.is_live:
            raise OrderNotFoundError(f"paper order {order_id!r} is {order.status.value}", status=404, code="not_found")
        self.orders[order_id] = order.cancelled(self._clock.now_us())

    async def amend_order(self, order_id: str, *, price: Price, quantity: Quantity) -> Order:
        """Change price and/or total size (``price`` in the order's contract); it may then cross and fill."""
        order = self.orders.get(order_id)
        if order is None or not order.status.is_live:
            raise OrderNotFoundError(f"no live paper order {order_id!r}", status=404, code="not_found")
        if quantity <= order.filled:
            raise OrderSizeError(f"amended size {quantity} must exceed the filled {order.filled}", status=400)
        request = replace(order.request, price=price, quantity=quantity)
        self._validate_price(request)
        amended = replace(order, request=request, updated_us=self._clock.now_us())
        self.orders[order_id] = amended
        book = self._books.get(request.market_id)
        if book is not None and self._crosses(amended, book):
            self._match(book, [amended], is_taker=True)
        return self.orders[order_id]

    async def get_positions(self) -> list[Position]:
        return self.account.positions()

    async def get_balance(self) -> Balance:
        return self.account.balance(self._live(None))

    async def get_open_orders(self, market_id: str | None = None) -> list[Order]:
        return self._live(market_id)

    async def get_order_by_client_id(self, client_order_id: str, market_id: str | None = None) -> Order | None:
        for order in self.orders.values():
            if order.client_order_id == client_order_id and market_id in (None, order.request.market_id):
                return order
        return None

    async def get_fills(self, *, since_us: int | None = None, market_id: str | None = None) -> list[Fill]:
        return [
            f
            for f in self.fills
            if (since_us is None or f.timestamp_us >= since_us) and market_id in (None, f.market_id)
        ]

    # ------------------------------------------------------------------ internals

    def _validate(self, order: OrderRequest) -> None:
        validate_virtual_order(order, self.orders.values(), self._markets.get(order.market_id), self._grid(order))

    def _validate_price(self, order: OrderRequest) -> None:
        check_on_grid(order, self._grid(order))

    def _grid(self, order: OrderRequest) -> TickGrid | None:
        info = self._markets.get(order.market_id)
        book = self._books.get(order.market_id)
        return info.grid if info is not None else (book.grid if book is not None else None)

    def _live(self, market_id: str | None) -> list[Order]:
        return [o for o in self.orders.values() if o.status.is_live and market_id in (None, o.request.market_id)]

    @staticmethod
    def _opposite(bs: BookSide, book: OrderBook) -> _Level | None:
        """The best level a paper order on ``bs`` would take: the YES ask for a bid, the YES bid for an ask."""
        if bs is BookSide.BID:
            price, size = book.best_yes_ask, book.best_yes_ask_size
        else:
            price, size = book.best_yes_bid, book.best_yes_bid_size
        return None if price is None or size <= 0 else _Level(price, size)

    def _crosses(self, order: Order, book: OrderBook) -> bool:
        bs, yes_price = order.request.yes_book()
        level = self._opposite(bs, book)
        if level is None:
            return False
        return yes_price.units >= level.yes_price if bs is BookSide.BID else yes_price.units <= level.yes_price

    def _fully_available(self, order: Order, book: OrderBook) -> bool:
        bs, _ = order.request.yes_book()
        level = self._opposite(bs, book)
        return level is not None and level.size >= order.remaining.units

    def _match(self, book: OrderBook, candidates: list[Order], *, is_taker: bool = False) -> list[Fill]:
        """Fill crossing ``candidates`` against the book's best levels (price, then time priority)."""
        now = self._clock.now_us()
        levels = {bs: self._opposite(bs, book) for bs in BookSide}
        fills: list[Fill] = []

        def priority(o: Order) -> tuple[int, int]:
            bs, yes_price = o.request.yes_book()
            # Bids: highest price first; asks: lowest first; then placement order.
            key = -yes_price.units if bs is BookSide.BID else yes_price.units
            return key, self._seq[o.exchange_order_id or ""]

        for order in sorted(candidates, key=priority):
            bs, yes_price = order.request.yes_book()
            level = levels[bs]
            if level is None or level.size <= 0:
                continue
            crosses = yes_price.units >= level.yes_price if bs is BookSide.BID else yes_price.units <= level.yes_price
            if not crosses:
                continue
            size = min(order.remaining.units, level.size)
            level.size -= size
            fills.append(self._fill(order, Price(level.yes_price), Quantity(size), is_taker=is_taker, now_us=now))
        return fills

    def _fill(self, order: Order, yes_price: Price, quantity: Quantity, *, is_taker: bool, now_us: int) -> Fill:
        order_id = order.exchange_order_id or ""
        self.orders[order_id] = self.orders[order_id].with_fill(quantity, now_us)
        self._next_fill += 1
        request = order.request
        fill = Fill(
            fill_id=f"paper-fill-{self._next_fill}",
            order_id=order_id,
            client_order_id=request.client_order_id,
            market_id=request.market_id,
            side=request.side,
            order_side=request.order_side,
            price=_contract_price(request.side, yes_price),
            quantity=quantity,
            fee=Decimal(0),
            is_taker=is_taker,
            timestamp_us=now_us,
        )
        self.fills.append(fill)
        self.account.apply(fill)
        return fill
