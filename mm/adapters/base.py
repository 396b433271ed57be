"""The exchange adapter interface (FR-110) and what adapters report about themselves (FR-113).

Core code (controller, reconcilers) depends only on these abstractions, in domain types; each venue's
adapter (Kalshi now, Polymarket next, the simulator through the Kalshi adapter, the mock, paper and
replay adapters) implements them and is the only code that knows its wire format. Operations a venue
cannot do raise :class:`~mm.adapters.errors.NotSupportedError`; the core asks :class:`Capabilities`
first and emulates (e.g. amend as cancel + create) where the venue cannot.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from mm.adapters.errors import ExchangeError, NotSupportedError
from mm.domain.book import OrderBook
from mm.domain.events import ExchangeEvent, Settlement
from mm.domain.orders import Fill, Order, OrderRequest
from mm.domain.portfolio import Balance, Position
from mm.domain.price import Price, Quantity
from mm.domain.ticks import TickGrid


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a venue can do (FR-113). The core adapts its behaviour to these, never to the venue's name."""

    amend: bool
    """Native amend (price and/or size) keeping the order id."""
    decrease: bool
    """Native size decrease keeping queue priority."""
    batch_create_limit: int
    """Orders per batched create request; 1 = no batching."""
    batch_cancel_limit: int
    unified_book: bool
    """One YES book where a NO bid is a YES ask (Kalshi): the four quotes are two orders."""
    fractional_counts: bool
    """Counts finer than one contract (0.01 on Kalshi)."""
    tick_grids: bool
    """Per-market tick grids (``price_ranges``) rather than one fixed tick."""
    post_only: bool
    self_trade_prevention: bool
    client_order_ids: bool
    """Orders carry our client order id, so a timed-out create can be looked up instead of re-sent."""
    order_groups: bool = False


@dataclass(frozen=True, slots=True)
class MarketInfo:
    """The static and slowly changing facts about one market the core needs to quote it."""

    market_id: str
    event_id: str
    series_id: str
    status: str
    """The venue's lifecycle state normalised to: initialized, active, paused, closed, determined, settled."""
    open_time_us: int
    close_time_us: int
    grid: TickGrid
    title: str = ""
    strike: str = ""
    best_bid: Price | None = None
    best_ask: Price | None = None
    volume_24h: Quantity | None = None
    open_interest: Quantity | None = None


MessageHandler = Callable[[dict[str, Any]], Awaitable[None]]
EventHandler = Callable[[ExchangeEvent], Awaitable[None]]


class WebSocketClient(ABC):
    """A venue's streaming connection (FR-110): authenticated, resubscribing after reconnects."""

    @abstractmethod
    async def connect(self) -> None: ...

    @abstractmethod
    async def subscribe(self, channels: list[str], market_ids: Sequence[str] = ()) -> None: ...

    @abstractmethod
    async def on_message(self, handler: MessageHandler) -> None:
        """Register the handler that receives every decoded message (in order)."""

    @abstractmethod
    async def reconnect(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...


class ExchangeAdapter(ABC):
    """All interaction with one venue, in domain types (FR-110 plus what the controller needs)."""

    _event_handlers: list[EventHandler]

    @property
    @abstractmethod
    def capabilities(self) -> Capabilities: ...

    # --- FR-110 ------------------------------------------------------------------------------------

    @abstractmethod
    async def connect(self) -> None: ...

    @abstractmethod
    async def disconnect(self) -> None: ...

    @abstractmethod
    async def subscribe_market(self, market_id: str) -> None: ...

    @abstractmethod
    async def unsubscribe_market(self, market_id: str) -> None: ...

    @abstractmethod
    async def place_order(self, order: OrderRequest) -> Order: ...

    @abstractmethod
    async def cancel_order(self, order_id: str) -> None: ...

    @abstractmethod
    async def get_positions(self) -> list[Position]: ...

    @abstractmethod
    async def get_balance(self) -> Balance: ...

    # --- what the controller needs beyond FR-110 -------------------------------------------------

    @abstractmethod
    async def list_markets(self, *, series: Sequence[str] = (), status: str | None = None) -> list[MarketInfo]: ...

    @abstractmethod
    async def get_market(self, market_id: str) -> MarketInfo: ...

    @abstractmethod
    async def get_open_orders(self, market_id: str | None = None) -> list[Order]: ...

    @abstractmethod
    async def get_order_by_client_id(self, client_order_id: str, market_id: str | None = None) -> Order | None: ...

    @abstractmethod
    async def get_fills(self, *, since_us: int | None = None, market_id: str | None = None) -> list[Fill]: ...

    async def get_settlements(self, *, since_us: int | None = None, market_id: str | None = None) -> list[Settlement]:
        """Markets we held that paid out, oldest first; ``since_us`` inclusive."""
        raise NotSupportedError(f"{type(self).__name__} cannot list settlements")

    async def get_orderbook(self, market_id: str) -> OrderBook:
        """A fresh full-depth snapshot of the market's book read from the venue (not the streamed one)."""
        raise NotSupportedError(f"{type(self).__name__} cannot read order books")

    def book(self, market_id: str) -> OrderBook | None:
        """The live book of a subscribed market (by reference), or None when this adapter keeps none."""
        return None

    def is_stale(self, market_id: str) -> bool:
        """True while the market's book must not be quoted on (no snapshot yet, a gap being repaired, offline)."""
        return self.book(market_id) is None

    # --- events -------------------------------------------------------------------------------------

    def on_event(self, handler: EventHandler) -> None:
        """Receive every :data:`~mm.domain.events.ExchangeEvent` this adapter produces, in order.

        Handlers are awaited one after another on the adapter's stream task; one that raises is logged by the
        adapter and does not stop the others or the stream.
        """
        handlers: list[EventHandler] | None = getattr(self, "_event_handlers", None)
        if handlers is None:
            handlers = []
            self._event_handlers = handlers
        handlers.append(handler)

    async def emit(self, event: ExchangeEvent) -> list[BaseException]:
        """Hand ``event`` to every registered handler; returns what the failing handlers raised."""
        failures: list[BaseException] = []
        for handler in list(getattr(self, "_event_handlers", ())):
            try:
                await handler(event)
            except Exception as exc:  # a consumer's bug must not kill the venue stream
                failures.append(exc)
        return failures

    async def amend_order(self, order_id: str, *, price: Price, quantity: Quantity) -> Order:
        """Change an order's price and/or total size; raises NotSupportedError where the venue cannot."""
        raise NotSupportedError(f"{type(self).__name__} cannot amend orders")

    async def decrease_order(self, order_id: str, *, reduce_to: Quantity) -> None:
        """Reduce an order's remaining size to ``reduce_to`` keeping its queue priority (``capabilities.decrease``)."""
        raise NotSupportedError(f"{type(self).__name__} cannot decrease orders")

    async def place_orders(self, orders: Sequence[OrderRequest]) -> list[Order | ExchangeError]:
        """Place several orders (batched where the venue can); one result per request, in order.

        A venue refusal is that item's result, as in a venue batch; anything else (a bug) propagates.
        """
        results: list[Order | ExchangeError] = []
        for request in orders:
            try:
                results.append(await self.place_order(request))
            except ExchangeError as exc:
                results.append(exc)
        return results

    async def cancel_orders(self, order_ids: Sequence[str]) -> list[ExchangeError | None]:
        """Cancel several orders; None for each success, the venue's refusal otherwise."""
        results: list[ExchangeError | None] = []
        for order_id in order_ids:
            try:
                await self.cancel_order(order_id)
                results.append(None)
            except ExchangeError as exc:
                results.append(exc)
        return results
