"""The Kalshi :class:`~mm.adapters.base.ExchangeAdapter` (FR-110–113): REST + WebSocket in domain types.

:class:`KalshiAdapter` composes the pieces built elsewhere — :class:`KalshiRestClient` (signed REST, V2 writes,
timeout-safe creates), :class:`KalshiWebSocket` (signed stream, reconnects) and :class:`BookFeed` (books from
``orderbook_delta``) — and translates with :mod:`mm.adapters.kalshi.mapping`. It also serves the simulator,
which speaks the same API.

Choices:

* Every REST call first takes a token from the optional :class:`ClientRateLimiter` (reads vs writes, FR-603):
  one token per call (a paginated read takes one token for the call, not per page); a batch create takes one
  write token per order, a batch cancel one per five cancels (Kalshi charges a cancel 0.2 of a create, §9),
  both capped at the bucket's capacity.
* A create ack carries only ``fill_count``/``remaining_count``: the :class:`Order` is the caller's request
  acknowledged with that fill; ``remaining == 0`` with a full fill is FILLED, with less (IOC, post-only cross
  refused by the venue) CANCELLED, a partial fill that still rests PARTIALLY_FILLED, else OPEN.
* Amend re-reads the order afterwards (the amend ack has no price/size); the returned order is in YES terms
  as every order read back from Kalshi (see :mod:`mm.adapters.kalshi.mapping`).
* Market statuses are normalised to initialized/active/paused/closed/determined/settled; the ``status`` filter
  of :meth:`list_markets` takes the normalised names and is applied client-side. ``series_id`` is the market's
  ``series_ticker`` when sent, else the part of ``event_ticker`` before the first ``-``.
* Tick grids of markets seen by :meth:`list_markets` / :meth:`get_market` are cached; :meth:`subscribe_market`
  fetches the market first when its grid is unknown (the book needs it). ``grid_for`` overrides the lookup.
* WebSocket messages of the user channels (``fill``, ``user_order``) are passed to handlers registered with
  :meth:`on_user_message`; book messages go to the :class:`BookFeed`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from mm.adapters.base import Capabilities, ExchangeAdapter, MarketInfo, MessageHandler
from mm.adapters.errors import ExchangeError, OrderRejectedError
from mm.adapters.kalshi.book_feed import BookFeed
from mm.adapters.kalshi.mapping import (
    balance_from_wire,
    fill_from_wire,
    order_from_wire,
    order_request_body,
    parse_rfc3339_us,
    position_from_wire,
)
from mm.adapters.kalshi.rest import KalshiRestClient, item_error
from mm.adapters.kalshi.ws import KalshiWebSocket
from mm.adapters.ratelimit import ClientRateLimiter
from mm.clock import Clock
from mm.domain.book import OrderBook
from mm.domain.orders import Fill, Order, OrderRequest, OrderStatus
from mm.domain.portfolio import Balance, Position
from mm.domain.price import Price, Quantity
from mm.domain.ticks import TickGrid

__all__ = ["KALSHI_CAPABILITIES", "KalshiAdapter", "market_info_from_wire", "normalise_status"]

KALSHI_CAPABILITIES: Final = Capabilities(
    amend=True,
    decrease=True,
    batch_create_limit=10,
    batch_cancel_limit=50,
    unified_book=True,
    fractional_counts=True,
    tick_grids=True,
    post_only=True,
    self_trade_prevention=True,
    client_order_ids=True,
    order_groups=True,
)
"""Kalshi at the Basic tier (kalshi-api.md §4, §9)."""

BOOK_CHANNELS: Final = ["orderbook_delta"]
USER_CHANNELS: Final = ["fill", "user_orders"]
_USER_TYPES: Final = frozenset({"fill", "user_order", "user_orders"})

_STATUS: Final = {
    "unopened": "initialized",
    "initialized": "initialized",
    "open": "active",
    "active": "active",
    "paused": "paused",
    "closed": "closed",
    "determined": "determined",
    "disputed": "determined",
    "amended": "determined",
    "settled": "settled",
    "finalized": "settled",
}


def normalise_status(status: object) -> str:
    """A Kalshi market status → initialized, active, paused, closed, determined or settled."""
    return _STATUS.get(str(status).lower(), str(status).lower())


def _price_or_none(text: object) -> Price | None:
    """A quote price, or None for the venue's "no quote" values (0 and 1, or missing)."""
    if text in (None, ""):
        return None
    try:
        value = Decimal(str(text))
    except InvalidOperation:
        return None
    if not Decimal(0) < value < Decimal(1):
        return None
    return Price.from_dollars(str(text))


def _quantity_or_none(text: object) -> Quantity | None:
    if text in (None, ""):
        return None
    try:
        return Quantity.from_fp(str(text))
    except ValueError:
        return None


def _time_us(text: object) -> int:
    return parse_rfc3339_us(str(text)) if text else 0


def market_info_from_wire(d: Mapping[str, Any]) -> MarketInfo:
    """A Kalshi Market object (§5) → :class:`MarketInfo` with its tick grid from ``price_ranges``."""
    ranges = d.get("price_ranges")
    grid = TickGrid.from_price_ranges(ranges) if ranges else TickGrid.linear_cent()
    event = str(d.get("event_ticker") or "")
    series = str(d.get("series_ticker") or event.split("-", 1)[0])
    strike = d.get("floor_strike")
    if strike is None:
        strike = d.get("cap_strike") if d.get("cap_strike") is not None else d.get("custom_strike")
    return MarketInfo(
        market_id=str(d["ticker"]),
        event_id=event,
        series_id=series,
        status=normalise_status(d.get("status")),
        open_time_us=_time_us(d.get("open_time")),
        close_time_us=_time_us(d.get("close_time")),
        grid=grid,
        title=str(d.get("title") or ""),
        strike="" if strike is None else str(strike),
        best_bid=_price_or_none(d.get("yes_bid_dollars")),
        best_ask=_price_or_none(d.get("yes_ask_dollars")),
        volume_24h=_quantity_or_none(d.get("volume_24h_fp")),
        open_interest=_quantity_or_none(d.get("open_interest_fp")),
    )


class KalshiAdapter(ExchangeAdapter):
    """Kalshi (or the simulator) through REST and, when given, the WebSocket. Use :meth:`connect` first."""

    def __init__(
        self,
        rest: KalshiRestClient,
        ws: KalshiWebSocket | None,
        clock: Clock,
        *,
        limiter: ClientRateLimiter | None = None,
        grid_for: Callable[[str], TickGrid] | None = None,
        stp: str = "maker",
        capabilities: Capabilities = KALSHI_CAPABILITIES,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.rest = rest
        self.ws = ws
        self._clock = clock
        self.limiter = limiter
        self._stp = stp
        self._capabilities = capabilities
        self._grids: dict[str, TickGrid] = {}
        self._grid_for = grid_for
        self._subscribed: dict[str, None] = {}
        self._user_handlers: list[MessageHandler] = []
        self._connected = False
        self._listening = False
        self.feed: BookFeed | None = None
        if ws is not None:
            self.feed = BookFeed(ws.request_snapshot, self._grid_of, clock, log=log)
            ws.on_connected(self.feed.connection_reset)

    # ------------------------------------------------------------------ helpers

    def _grid_of(self, market_id: str) -> TickGrid:
        if self._grid_for is not None:
            return self._grid_for(market_id)
        grid = self._grids.get(market_id)
        if grid is None:
            raise KeyError(f"no tick grid known for market {market_id!r}")
        return grid

    async def _read(self) -> None:
        if self.limiter is not None:
            await self.limiter.read()

    async def _write(self, tokens: float = 1) -> None:
        if self.limiter is not None:
            await self.limiter.write(min(tokens, self.limiter.writes.capacity))

    def _remember(self, info: MarketInfo) -> MarketInfo:
        self._grids[info.market_id] = info.grid
        return info

    async def _dispatch(self, message: dict[str, Any]) -> None:
        if self.feed is not None:
            await self.feed.handle(message)
        if message.get("type") in _USER_TYPES:
            for handler in list(self._user_handlers):
                await handler(message)

    def _order_from_ack(self, request: OrderRequest, ack: Mapping[str, Any]) -> Order:
        now = self._clock.now_us()
        order_id = ack.get("order_id")
        if not order_id:
            raise OrderRejectedError(f"create of {request.client_order_id!r}: the ack has no order_id")
        filled = Quantity.from_fp(str(ack.get("fill_count") or "0"))
        remaining_raw = ack.get("remaining_count")
        remaining = Quantity.from_fp(str(remaining_raw)) if remaining_raw not in (None, "") else None
        if remaining is not None and remaining.is_zero:
            status = OrderStatus.FILLED if filled >= request.quantity else OrderStatus.CANCELLED
        elif not filled.is_zero:
            status = OrderStatus.PARTIALLY_FILLED
        else:
            status = OrderStatus.OPEN
        return Order(
            request=request,
            status=status,
            created_us=now,
            updated_us=now,
            exchange_order_id=str(order_id),
            filled=filled,
        )

    # ------------------------------------------------------------------ capabilities, connection, streams

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    @property
    def connected(self) -> bool:
        return self._connected

    async def connect(self) -> None:
        if self._connected:
            return
        if self.ws is not None:
            if not self._listening:
                await self.ws.on_message(self._dispatch)
                self._listening = True
            await self.ws.connect()
        self._connected = True

    async def disconnect(self) -> None:
        """Close the stream and the REST client (this adapter cannot be reconnected afterwards)."""
        if self.ws is not None:
            await self.ws.close()
        await self.rest.aclose()
        self._connected = False

    async def on_user_message(self, handler: MessageHandler) -> None:
        """Receive every ``fill`` / ``user_order`` WebSocket message (after subscribing a market)."""
        self._user_handlers.append(handler)

    async def subscribe_market(self, market_id: str) -> None:
        if self.ws is None:
            raise ExchangeError("this KalshiAdapter has no WebSocket: cannot stream market data")
        if self._grid_for is None and market_id not in self._grids:
            await self.get_market(market_id)
        self._subscribed[market_id] = None
        await self.ws.subscribe(BOOK_CHANNELS, [market_id])
        await self.ws.subscribe(USER_CHANNELS, [market_id])

    async def unsubscribe_market(self, market_id: str) -> None:
        """Stop using the market's book here. The venue stream is kept (Kalshi's per-market unsubscribe needs
        ``update_subscription``; its messages for this market are still applied but nobody reads them)."""
        self._subscribed.pop(market_id, None)

    @property
    def subscribed_markets(self) -> list[str]:
        return list(self._subscribed)

    def book(self, market_id: str) -> OrderBook | None:
        return self.feed.book(market_id) if self.feed is not None else None

    def is_stale(self, market_id: str) -> bool:
        return self.feed.is_stale(market_id) if self.feed is not None else True

    # ------------------------------------------------------------------ orders

    async def place_order(self, order: OrderRequest) -> Order:
        await self._write()
        ack = await self.rest.create_order(order_request_body(order, stp=self._stp))
        return self._order_from_ack(order, ack)

    async def cancel_order(self, order_id: str) -> None:
        await self._write(0.2)
        await self.rest.cancel_order(order_id)

    async def amend_order(self, order_id: str, *, price: Price, quantity: Quantity) -> Order:
        """Native V2 amend: ``price`` is the YES price of the order as Kalshi holds it, ``quantity`` the new total."""
        await self._write()
        current = await self._get_order(order_id)
        body = {
            "ticker": current.request.market_id,
            "side": current.request.yes_book()[0].value,
            "price": price.to_dollars(),
            "count": quantity.to_fp(),
        }
        await self.rest.amend_order(order_id, body)
        return await self._get_order(order_id)

    async def _get_order(self, order_id: str) -> Order:
        await self._read()
        return order_from_wire(await self.rest.order(order_id))

    async def place_orders(self, orders: Sequence[OrderRequest]) -> list[Order | ExchangeError]:
        if not orders:
            return []
        await self._write(len(orders))
        answers = await self.rest.batch_create([order_request_body(o, stp=self._stp) for o in orders])
        results: list[Order | ExchangeError] = []
        for i, request in enumerate(orders):
            if i >= len(answers):
                results.append(ExchangeError(f"batch create: no result for {request.client_order_id!r}"))
                continue
            error = item_error(answers[i])
            results.append(error if error is not None else self._order_from_ack(request, answers[i]))
        return results

    async def cancel_orders(self, order_ids: Sequence[str]) -> list[ExchangeError | None]:
        if not order_ids:
            return []
        await self._write(max(1, math.ceil(len(order_ids) / 5)))
        answers = await self.rest.batch_cancel(order_ids)
        results: list[ExchangeError | None] = []
        for i, order_id in enumerate(order_ids):
            if i >= len(answers):
                results.append(ExchangeError(f"batch cancel: no result for {order_id!r}"))
                continue
            results.append(item_error(answers[i], method="DELETE"))
        return results

    async def decrease_order(self, order_id: str, *, reduce_to: Quantity) -> None:
        """Native decrease keeping queue priority (``reduce_to`` = new remaining size)."""
        await self._write()
        await self.rest.decrease_order(order_id, reduce_to=reduce_to.to_fp())

    # ------------------------------------------------------------------ portfolio

    async def get_positions(self) -> list[Position]:
        await self._read()
        positions = [position_from_wire(p) async for p in self.rest.positions()]
        return [p for p in positions if not (p.yes.is_zero and p.no.is_zero)]

    async def get_balance(self) -> Balance:
        await self._read()
        return balance_from_wire(await self.rest.balance())

    async def get_open_orders(self, market_id: str | None = None) -> list[Order]:
        await self._read()
        return [order_from_wire(o) async for o in self.rest.orders(ticker=market_id, status="resting")]

    async def get_order_by_client_id(self, client_order_id: str, market_id: str | None = None) -> Order | None:
        await self._read()
        async for o in self.rest.orders(ticker=market_id):
            if o.get("client_order_id") == client_order_id:
                return order_from_wire(o)
        return None

    async def get_fills(self, *, since_us: int | None = None, market_id: str | None = None) -> list[Fill]:
        """Our fills, oldest first; ``since_us`` is inclusive (the venue filters by whole seconds first)."""
        await self._read()
        min_ts = since_us // 1_000_000 if since_us is not None else None
        fills = [fill_from_wire(f) async for f in self.rest.fills(ticker=market_id, min_ts=min_ts)]
        kept = [f for f in fills if since_us is None or f.timestamp_us >= since_us]
        return sorted(kept, key=lambda f: f.timestamp_us)

    # ------------------------------------------------------------------ markets

    async def list_markets(self, *, series: Sequence[str] = (), status: str | None = None) -> list[MarketInfo]:
        raw: list[dict[str, Any]] = []
        wanted_series: list[str | None] = list(series) or [None]
        for series_ticker in wanted_series:
            await self._read()
            filters = {"series_ticker": series_ticker} if series_ticker else {}
            raw.extend([m async for m in self.rest.markets(**filters)])
        infos = [self._remember(market_info_from_wire(m)) for m in raw]
        if series:
            infos = [i for i in infos if i.series_id in series]
        if status is not None:
            wanted = normalise_status(status)
            infos = [i for i in infos if i.status == wanted]
        return infos

    async def get_market(self, market_id: str) -> MarketInfo:
        await self._read()
        return self._remember(market_info_from_wire(await self.rest.market(market_id)))
