"""A scriptable in-memory venue for unit tests of the core (FR-114).

:class:`MockExchangeAdapter` implements the whole :class:`ExchangeAdapter` interface with no I/O:

* **Markets and books**: :meth:`~MockExchangeAdapter.add_market` registers a :class:`MarketInfo` and,
  optionally, an :class:`OrderBook` of any depth; ``get_market`` reports that book's top of book.
* **Fill behaviour** per order (:class:`FillBehaviour`): ``rest`` (never fills), ``immediate`` (fills
  fully at its own price), ``partial(fraction)`` (fills that fraction at once, rounded down to 1/100
  contract, and rests the rest), ``reject(code)`` (raises ``OrderRejectedError`` or a subclass) and
  ``random`` (one of rest / immediate / partial, drawn from the adapter's seeded RNG, so runs repeat).
  A default plus overrides per client order id. Delayed fills: call :meth:`~MockExchangeAdapter.fill`.
* **Error injection**: :meth:`~MockExchangeAdapter.fail_next` queues an exception for the next call of
  an operation (FIFO per operation); the call after that behaves normally.
* **Latency**: with an injected async ``sleep`` and :meth:`~MockExchangeAdapter.set_latency`, every call
  awaits ``sleep(seconds)`` first (tests inject a fake sleep: no real waiting).
* **Events**: every order change and fill becomes an ``OrderUpdate`` / ``FillEvent`` for the ``on_event``
  handlers, delivered before the interface call returns (scripted :meth:`~MockExchangeAdapter.fill` calls
  queue theirs until :meth:`~MockExchangeAdapter.deliver`); tests emit market events with ``emit``.
  ``settlements`` scripts what ``get_settlements`` answers.
* **State inspection**: ``orders`` (by exchange order id), ``rejected``, ``fills``, ``calls`` (every
  ``(operation, args)`` in order), ``subscribed``, ``connected``; positions and balance follow the fills
  with the same exact Kalshi-style netting as paper trading (:class:`~mm.adapters.paper.VirtualAccount`).

Orders for unregistered markets are accepted (tests need not register markets); for a registered market
the mock checks it is ``active`` and that the price is on its tick grid, as the venue would.
"""

from __future__ import annotations

import enum
import random
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_FLOOR, Decimal
from typing import Any, Final

from mm.adapters.base import Capabilities, ExchangeAdapter, MarketInfo
from mm.adapters.errors import (
    ExchangeError,
    NotSupportedError,
    OrderNotFoundError,
    OrderRejectedError,
    OrderSizeError,
)
from mm.adapters.paper import (
    PAPER_CAPABILITIES,
    VirtualAccount,
    check_on_grid,
    matching_fills,
    matching_markets,
    order_with_client_id,
    validate_virtual_order,
)
from mm.clock import Clock
from mm.domain.book import OrderBook
from mm.domain.events import ExchangeEvent, FillEvent, OrderUpdate, Settlement
from mm.domain.orders import Fill, Order, OrderRequest
from mm.domain.portfolio import Balance, Position
from mm.domain.price import Price, Quantity

__all__ = ["MOCK_CAPABILITIES", "FillBehaviour", "FillMode", "MockExchangeAdapter", "Sleep"]

MOCK_CAPABILITIES: Final = PAPER_CAPABILITIES
"""Kalshi-like by default; pass other ``capabilities`` to test the core's emulation paths."""

Sleep = Callable[[float], Awaitable[None]]


class FillMode(enum.Enum):
    REST = "rest"
    IMMEDIATE = "immediate"
    PARTIAL = "partial"
    REJECT = "reject"
    RANDOM = "random"


@dataclass(frozen=True, slots=True)
class FillBehaviour:
    """What the mock does with a new order. Build with the class methods."""

    mode: FillMode
    fraction: Decimal = Decimal(1)
    """PARTIAL: the share of the order filled at placement, in (0, 1)."""
    code: str | None = None
    """REJECT: the venue error code carried by the raised error."""
    error: type[OrderRejectedError] = OrderRejectedError
    """REJECT: the error class raised (e.g. ``InsufficientBalanceError``)."""

    @classmethod
    def rest(cls) -> FillBehaviour:
        return cls(FillMode.REST)

    @classmethod
    def immediate(cls) -> FillBehaviour:
        return cls(FillMode.IMMEDIATE)

    @classmethod
    def partial(cls, fraction: Decimal | str) -> FillBehaviour:
        value = Decimal(fraction)
        if not Decimal(0) < value < Decimal(1):
            raise ValueError(f"partial fill fraction must be in (0, 1), got {value}")
        return cls(FillMode.PARTIAL, fraction=value)

    @classmethod
    def reject(cls, code: str = "rejected", error: type[OrderRejectedError] = OrderRejectedError) -> FillBehaviour:
        return cls(FillMode.REJECT, code=code, error=error)

    @classmethod
    def random(cls) -> FillBehaviour:
        return cls(FillMode.RANDOM)


class MockExchangeAdapter(ExchangeAdapter):
    """An in-memory :class:`ExchangeAdapter` whose behaviour tests script (see the module docstring)."""

    def __init__(
        self,
        clock: Clock,
        *,
        capabilities: Capabilities = MOCK_CAPABILITIES,
        seed: int = 0,
        default_behaviour: FillBehaviour | None = None,
        starting_balance: Decimal = Decimal(1000),
        sleep: Sleep | None = None,
    ) -> None:
        self._clock = clock
        self._capabilities = capabilities
        self._rng = random.Random(seed)
        self.default_behaviour = default_behaviour if default_behaviour is not None else FillBehaviour.rest()
        self._overrides: dict[str, FillBehaviour] = {}
        self._failures: defaultdict[str, deque[BaseException]] = defaultdict(deque)
        self._sleep = sleep
        self._latency: dict[str | None, float] = {}
        self.account = VirtualAccount(starting_balance)
        self.markets: dict[str, MarketInfo] = {}
        self.books: dict[str, OrderBook] = {}
        self.orders: dict[str, Order] = {}
        """Accepted orders by exchange order id, in placement order."""
        self.rejected: list[Order] = []
        """Orders refused by a ``reject`` behaviour (status REJECTED)."""
        self.fills: list[Fill] = []
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        """Every interface call as ``(operation, args)``, failed ones included."""
        self.subscribed: set[str] = set()
        self.connected = False
        self._next_order = 0
        self._next_fill = 0
        self.settlements: list[Settlement] = []
        """What :meth:`get_settlements` answers (scripted by tests)."""
        self.pending_events: list[ExchangeEvent] = []
        """Order and fill events not yet delivered to ``on_event`` handlers (see :meth:`deliver`)."""

    # ------------------------------------------------------------------ scripting

    def add_market(self, info: MarketInfo, book: OrderBook | None = None) -> None:
        self.markets[info.market_id] = info
        if book is not None:
            self.books[info.market_id] = book

    def set_behaviour(self, client_order_id: str, behaviour: FillBehaviour) -> None:
        """Override the fill behaviour for the order with this client order id."""
        self._overrides[client_order_id] = behaviour

    def fail_next(self, operation: str, error: BaseException) -> None:
        """Make the next call of ``operation`` (a method name, e.g. ``"place_order"``) raise ``error``."""
        if not hasattr(ExchangeAdapter, operation):
            raise ValueError(f"{operation!r} is not an ExchangeAdapter operation")
        self._failures[operation].append(error)

    def set_latency(self, seconds: float, operation: str | None = None) -> None:
        """Await the injected ``sleep(seconds)`` before ``operation`` (every operation when None)."""
        if self._sleep is None:
            raise ValueError("latency needs an injected sleep function")
        self._latency[operation] = seconds

    async def deliver(self) -> int:
        """Hand the queued ``OrderUpdate`` / ``FillEvent`` values to the ``on_event`` handlers, in order; returns
        how many. Interface calls deliver on their own; scripting calls (:meth:`fill`) queue until this."""
        events, self.pending_events = self.pending_events, []
        for event in events:
            await self.emit(event)
        return len(events)

    def book(self, market_id: str) -> OrderBook | None:
        return self.books.get(market_id)

    def is_stale(self, market_id: str) -> bool:
        return self.book(market_id) is None

    def _changed(self, order_id: str) -> None:
        order = self.orders[order_id]
        self.pending_events.append(OrderUpdate(order, order.updated_us))

    def fill(
        self, order_id: str, quantity: Quantity | None = None, *, price: Price | None = None, is_taker: bool = False
    ) -> Fill:
        """A (delayed) fill of a resting order: ``quantity`` defaults to all that remains, ``price`` to its own.
        Its ``FillEvent`` and ``OrderUpdate`` are queued for :meth:`deliver`."""
        order = self.orders.get(order_id)
        if order is None or not order.status.is_live:
            raise OrderNotFoundError(f"no live mock order {order_id!r}")
        qty = quantity if quantity is not None else order.remaining
        return self._fill(order_id, qty, price if price is not None else order.request.price, is_taker=is_taker)

    # ------------------------------------------------------------------ ExchangeAdapter

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    async def connect(self) -> None:
        await self._enter("connect")
        self.connected = True

    async def disconnect(self) -> None:
        await self._enter("disconnect")
        self.connected = False

    async def subscribe_market(self, market_id: str) -> None:
        await self._enter("subscribe_market", market_id)
        self.subscribed.add(market_id)

    async def unsubscribe_market(self, market_id: str) -> None:
        await self._enter("unsubscribe_market", market_id)
        self.subscribed.discard(market_id)

    async def list_markets(self, *, series: Sequence[str] = (), status: str | None = None) -> list[MarketInfo]:
        await self._enter("list_markets", tuple(series), status)
        return [self._with_top(m) for m in matching_markets(self.markets.values(), series, status)]

    async def get_market(self, market_id: str) -> MarketInfo:
        await self._enter("get_market", market_id)
        info = self.markets.get(market_id)
        if info is None:
            raise ExchangeError(f"unknown market {market_id!r}", status=404, code="not_found")
        return self._with_top(info)

    async def place_order(self, order: OrderRequest) -> Order:
        await self._enter("place_order", order)
        now = self._clock.now_us()
        self._validate(order)
        behaviour = self._overrides.get(order.client_order_id, self.default_behaviour)
        if behaviour.mode is FillMode.RANDOM:
            behaviour = self._draw()
        if behaviour.mode is FillMode.REJECT:
            code = behaviour.code or "rejected"
            self.rejected.append(Order.pending(order, now).rejected(code, now))
            raise behaviour.error(f"mock rejected {order.client_order_id!r}: {code}", status=400, code=code)
        self._next_order += 1
        order_id = f"mock-{self._next_order}"
        self.orders[order_id] = Order.pending(order, now).acknowledged(order_id, now)
        self._changed(order_id)
        if behaviour.mode is FillMode.IMMEDIATE:
            self._fill(order_id, order.quantity, order.price, is_taker=True)
        elif behaviour.mode is FillMode.PARTIAL:
            units = int((behaviour.fraction * order.quantity.units).to_integral_value(rounding=ROUND_FLOOR))
            if units > 0:
                self._fill(order_id, Quantity(units), order.price, is_taker=True)
        await self.deliver()
        return self.orders[order_id]

    async def cancel_order(self, order_id: str) -> None:
        await self._enter("cancel_order", order_id)
        order = self.orders.get(order_id)
        if order is None or not order.status.is_live:
            raise OrderNotFoundError(f"no live mock order {order_id!r}", status=404, code="not_found")
        self.orders[order_id] = order.cancelled(self._clock.now_us())
        self._changed(order_id)
        await self.deliver()

    async def amend_order(self, order_id: str, *, price: Price, quantity: Quantity) -> Order:
        """Native amend when ``capabilities.amend``; the order keeps its id and fills so far, and rests."""
        await self._enter("amend_order", order_id, price, quantity)
        if not self._capabilities.amend:
            raise NotSupportedError("mock venue configured without amend")
        order = self.orders.get(order_id)
        if order is None or not order.status.is_live:
            raise OrderNotFoundError(f"no live mock order {order_id!r}", status=404, code="not_found")
        if quantity <= order.filled:
            raise OrderSizeError(f"amended size {quantity} must exceed the filled {order.filled}", status=400)
        request = replace(order.request, price=price, quantity=quantity)
        self._check_price(request)
        self.orders[order_id] = replace(order, request=request, updated_us=self._clock.now_us())
        self._changed(order_id)
        await self.deliver()
        return self.orders[order_id]

    async def decrease_order(self, order_id: str, *, reduce_to: Quantity) -> None:
        await self._enter("decrease_order", order_id, reduce_to)
        if not self._capabilities.decrease:
            raise NotSupportedError("mock venue configured without decrease")
        order = self.orders.get(order_id)
        if order is None or not order.status.is_live:
            raise OrderNotFoundError(f"no live mock order {order_id!r}", status=404, code="not_found")
        if reduce_to.is_zero or reduce_to >= order.remaining:
            raise OrderSizeError(f"decrease to {reduce_to} must be below the remaining {order.remaining}", status=400)
        self.orders[order_id] = order.decreased(reduce_to, self._clock.now_us())
        self._changed(order_id)
        await self.deliver()

    async def get_positions(self) -> list[Position]:
        await self._enter("get_positions")
        return self.account.positions()

    async def get_balance(self) -> Balance:
        await self._enter("get_balance")
        return self.account.balance(self._live(None))

    async def get_open_orders(self, market_id: str | None = None) -> list[Order]:
        await self._enter("get_open_orders", market_id)
        return self._live(market_id)

    async def get_order_by_client_id(self, client_order_id: str, market_id: str | None = None) -> Order | None:
        await self._enter("get_order_by_client_id", client_order_id, market_id)
        return order_with_client_id(self.orders.values(), client_order_id, market_id)

    async def get_fills(self, *, since_us: int | None = None, market_id: str | None = None) -> list[Fill]:
        await self._enter("get_fills", since_us, market_id)
        return matching_fills(self.fills, since_us, market_id)

    async def get_settlements(self, *, since_us: int | None = None, market_id: str | None = None) -> list[Settlement]:
        await self._enter("get_settlements", since_us, market_id)
        return [
            r
            for r in self.settlements
            if (since_us is None or r.settled_us >= since_us) and market_id in (None, r.market_id)
        ]

    async def get_orderbook(self, market_id: str) -> OrderBook:
        await self._enter("get_orderbook", market_id)
        book = self.books.get(market_id)
        if book is None:
            raise ExchangeError(f"no book for market {market_id!r}", status=404, code="not_found")
        return book

    # ------------------------------------------------------------------ internals

    async def _enter(self, operation: str, *args: Any) -> None:
        """Record the call, apply latency, then raise a queued failure if there is one."""
        self.calls.append((operation, args))
        seconds = self._latency.get(operation, self._latency.get(None, 0.0))
        if self._sleep is not None and seconds > 0:
            await self._sleep(seconds)
        queue = self._failures.get(operation)
        if queue:
            raise queue.popleft()

    def _draw(self) -> FillBehaviour:
        choice = self._rng.randrange(3)
        if choice == 0:
            return FillBehaviour.rest()
        if choice == 1:
            return FillBehaviour.immediate()
        return FillBehaviour.partial(Decimal(self._rng.randint(1, 99)).scaleb(-2))

    def _validate(self, order: OrderRequest) -> None:
        info = self.markets.get(order.market_id)
        used = {o.client_order_id for o in self.orders.values()}
        validate_virtual_order(order, used, info, info.grid if info is not None else None)

    def _check_price(self, order: OrderRequest) -> None:
        info = self.markets.get(order.market_id)
        check_on_grid(order, info.grid if info is not None else None)

    def _with_top(self, info: MarketInfo) -> MarketInfo:
        book = self.books.get(info.market_id)
        if book is None:
            return info
        snap = book.snapshot(info.market_id, self._clock.now_us())
        return replace(info, best_bid=snap.best_bid, best_ask=snap.best_ask)

    def _live(self, market_id: str | None) -> list[Order]:
        return [o for o in self.orders.values() if o.status.is_live and market_id in (None, o.request.market_id)]

    def _fill(self, order_id: str, quantity: Quantity, price: Price, *, is_taker: bool) -> Fill:
        now = self._clock.now_us()
        order = self.orders[order_id]
        self.orders[order_id] = order.with_fill(quantity, now)
        self._next_fill += 1
        request = order.request
        fill = Fill(
            fill_id=f"mock-fill-{self._next_fill}",
            order_id=order_id,
            client_order_id=request.client_order_id,
            market_id=request.market_id,
            side=request.side,
            order_side=request.order_side,
            price=price,
            quantity=quantity,
            fee=Decimal(0),
            is_taker=is_taker,
            timestamp_us=now,
        )
        self.fills.append(fill)
        self.account.apply(fill)
        self.pending_events.append(FillEvent(fill))
        self._changed(order_id)
        return fill
