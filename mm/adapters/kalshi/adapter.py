"""The Kalshi :class:`~mm.adapters.base.ExchangeAdapter` (FR-110–113): REST + WebSocket in domain types.

:class:`KalshiAdapter` composes the pieces built elsewhere — :class:`KalshiRestClient` (signed REST, V2 writes,
timeout-safe creates), :class:`KalshiWebSocket` (signed stream, reconnects) and :class:`BookFeed` (books from
``orderbook_delta``) — and translates with :mod:`mm.adapters.kalshi.mapping`. It also serves the simulator,
which speaks the same API.

Choices:

* Rate limiting (FR-603) happens in :class:`KalshiRestClient`: every HTTP request it sends, pages and retries
  included, is charged its Kalshi cost by the client's :class:`ClientRateLimiter` (``limiter=`` here attaches
  one to the REST client).
* A create ack carries only ``fill_count``/``remaining_count``: the :class:`Order` is the caller's request
  acknowledged with that fill; ``remaining == 0`` with a full fill is FILLED, with less (IOC, post-only cross
  refused by the venue) CANCELLED, a partial fill that still rests PARTIALLY_FILLED, else OPEN.
* Amend re-reads the order afterwards (the amend ack has no price/size); the returned order is in YES terms
  as every order read back from Kalshi (see :mod:`mm.adapters.kalshi.mapping`).
* Every order read back (REST, the amend answer, ``user_order``) keeps the terms we created it with that the venue
  does not report (``post_only`` above all): the adapter remembers each create's
  :class:`~mm.adapters.kalshi.mapping.SentTerms` by client order id until the order is seen over (or refused).
* Market statuses are normalised to initialized/active/paused/closed/determined/settled; the ``status`` filter
  of :meth:`list_markets` takes the normalised names and is applied client-side. ``series_id`` is the market's
  ``series_ticker`` when sent, else the part of ``event_ticker`` before the first ``-``.
* Tick grids of markets seen by :meth:`list_markets` / :meth:`get_market` are cached; :meth:`subscribe_market`
  fetches the market first when its grid is unknown (the book needs it). ``grid_for`` overrides the lookup.
* Streams become domain events (:mod:`mm.domain.events`) for the handlers registered with :meth:`on_event`:
  ``fill`` → ``FillEvent``, ``user_order`` → ``OrderUpdate``, ``trade`` → ``PublicTrade``,
  ``market_lifecycle_v2`` → ``MarketLifecycle``; book messages go to the :class:`BookFeed` and come out as
  ``BookUpdated`` (usable book changed) and ``BookState`` (stale / fresh); the socket's up and down as
  ``ConnectionState`` (and the ``mm_websocket_connected`` gauge). The user channels (``fill``,
  ``user_orders``) and ``market_lifecycle_v2`` are subscribed for all markets at :meth:`connect`;
  ``orderbook_delta`` and ``trade`` per market by :meth:`subscribe_market`, removed by
  :meth:`unsubscribe_market` (``update_subscription``/``delete_markets``).
* A stream message we cannot read is counted (``mm_malformed_messages_total``), logged and answered with a
  resync: a book message by :class:`BookFeed` (snapshot), an undecodable frame by resyncing every book, a
  ``fill``/``user_order`` by a ``ResyncRequired(scope="orders")`` event telling the core to re-read orders and
  fills over REST. Nothing raises out of the stream task.
* Metrics (``metrics=``, docs/metrics.md): messages received, reconnects, reconnect attempts failing in a row, book
  resyncs by reason (the :class:`BookFeed`'s snapshot requests, and the resubscription after a reconnect), the rate
  limiter's tokens, waits, refill rates and bucket levels.
* :meth:`disconnect` closes the stream and the HTTP connections; :meth:`connect` afterwards opens them again
  with every subscription restored.
* Link health (NFR-203/204, :mod:`mm.adapters.link_health`): :meth:`link_health` reports the REST round trips and
  failures the REST client measures, the stream's state, and the venue's clock against ours (the market
  ``clock``) from the server clock readings it sees: ``ts_ms`` of order acks (create, cancel, amend, decrease,
  batches: taken while our request was in flight, so two-sided bounds), ``ts_ms`` of stream messages and the
  balance's ``updated_ts`` (times already past when they reach us: lower bounds only; Kalshi documents
  ``updated_ts`` as the balance's last update). :meth:`probe` is one cheap authenticated read for when the node
  sends nothing else.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from prometheus_client import Counter, Histogram

from mm.adapters.base import Capabilities, ExchangeAdapter, MarketInfo, MessageHandler
from mm.adapters.errors import ExchangeError, ExchangeUnavailableError, OrderRejectedError
from mm.adapters.kalshi.book_feed import BookFeed, MalformedMessageError, parse_count, parse_price
from mm.adapters.kalshi.mapping import (
    SentTerms,
    WireFormatError,
    balance_from_wire,
    fill_from_wire,
    order_from_wire,
    order_request_body,
    parse_rfc3339_us,
    position_from_wire,
)
from mm.adapters.kalshi.rest import KalshiRestClient, item_error
from mm.adapters.kalshi.stream_mapping import (
    fill_event_from_ws,
    lifecycle_from_ws,
    order_update_from_ws,
    public_trade_from_ws,
    settlement_from_wire,
)
from mm.adapters.kalshi.ws import KalshiWebSocket
from mm.adapters.link_health import LinkHealth, LinkStats
from mm.adapters.ratelimit import ClientRateLimiter, TokenBucket
from mm.clock import Clock
from mm.domain.book import OrderBook
from mm.domain.events import (
    BookState,
    BookUpdated,
    ConnectionState,
    ExchangeEvent,
    PublicTrade,
    ResyncRequired,
    Settlement,
)
from mm.domain.orders import Fill, Order, OrderRequest, OrderStatus
from mm.domain.portfolio import Balance, Position
from mm.domain.price import Price, Quantity
from mm.domain.sides import BookSide, OrderSide, Side
from mm.domain.ticks import TickGrid
from mm.observability.metrics import Metrics

_logger = logging.getLogger(__name__)

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
MARKET_CHANNELS: Final = ["orderbook_delta", "trade"]
"""Subscribed per market by :meth:`KalshiAdapter.subscribe_market`."""
ACCOUNT_CHANNELS: Final = ["fill", "user_orders", "market_lifecycle_v2"]
"""Subscribed for all markets at connect: our orders and fills anywhere, every market's lifecycle."""
_BOOK_TYPES: Final = frozenset({"orderbook_snapshot", "orderbook_delta"})
_MAX_SENT_TERMS: Final = 100_000
"""Creates whose terms are kept at most: an order is forgotten when seen over, so only those whose end was never
seen (a stream message lost) pile up; past this the oldest go (read back later, they get the defaults)."""

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


def _usage_of(bucket: TokenBucket) -> Callable[[], float]:
    """The share of ``bucket``'s capacity in use, read when scraped (``mm_rate_limit_usage_ratio``)."""
    return lambda: 1.0 - bucket.available / bucket.capacity


def _counts_of(request: OrderRequest, ack: Mapping[str, Any]) -> tuple[Quantity, OrderStatus]:
    """The filled quantity and status an order ack (create or amend) reports for ``request`` (its total size)."""
    filled = Quantity.from_fp(str(ack.get("fill_count") or "0"))
    remaining_raw = ack.get("remaining_count")
    remaining = Quantity.from_fp(str(remaining_raw)) if remaining_raw not in (None, "") else None
    if remaining is not None and remaining.is_zero:
        return filled, OrderStatus.FILLED if filled >= request.quantity else OrderStatus.CANCELLED
    return filled, OrderStatus.PARTIALLY_FILLED if not filled.is_zero else OrderStatus.OPEN


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
        metrics: Metrics | None = None,
        exchange_label: str = "kalshi",
        wall_clock: Clock | None = None,
    ) -> None:
        self.rest = rest
        if limiter is not None:
            rest.limiter = limiter
        self.ws = ws
        self._clock = clock
        self._stp = stp
        self._capabilities = capabilities
        self._grids: dict[str, TickGrid] = {}
        self._grid_for = grid_for
        self._subscribed: dict[str, None] = {}
        self._raw_handlers: list[MessageHandler] = []
        self._connected = False
        self._listening = False
        self._log = log if log is not None else _logger.warning
        self._metrics = metrics
        self._label = exchange_label
        self._wall = wall_clock if wall_clock is not None else clock
        """Real time for processing latencies (``clock`` may be an accelerated market clock)."""
        self._tasks: set[asyncio.Task[Any]] = set()
        self.malformed: dict[str, int] = {}
        """Stream messages we could not read, by message type."""
        self.handler_failures = 0
        self._sent_terms: dict[str, SentTerms] = {}
        """The terms of our creates by client order id, for the orders read back (see the module docstring)."""
        self._live_orders: dict[str, Order] = {}
        """The last copy of each live order by exchange id: an amend's ticker and side without a look-up."""
        self.link = LinkStats(self._wall)
        """Round trips, failures and clock samples (see :meth:`link_health`)."""
        rest.link = self.link
        self.feed: BookFeed | None = None
        if ws is not None:
            self.feed = BookFeed(ws.request_snapshot, self._grid_of, clock, log=log)
            ws.on_connected(self._stream_up)
            ws.on_disconnected(self._stream_down)
            ws.on_malformed(self._undecodable_frame)
        self._ws_messages: Counter | None = None
        self._ws_reconnects: Counter | None = None
        self._book_update_children: dict[str, Histogram] = {}  # per market: the label lookup costs ~2 µs a message
        self._reconnects_counted = 0
        if metrics is not None:
            self._export_metrics(metrics)

    # ------------------------------------------------------------------ helpers

    def _export_metrics(self, metrics: Metrics) -> None:
        """The stream, resync and rate-limit metrics: children looked up once; the reconnect failures and bucket
        levels read when scraped (a rebuilt adapter takes the same children over)."""
        label = self._label
        self._ws_messages = metrics.websocket_messages.labels(exchange=label)
        self._ws_reconnects = metrics.websocket_reconnects.labels(exchange=label)
        ws, feed, limiter = self.ws, self.feed, self.rest.limiter
        if ws is not None:
            metrics.websocket_reconnect_failures.labels(exchange=label).set_function(lambda: float(ws.failed_attempts))
        if feed is not None:
            resyncs: dict[str, Counter] = {}

            def resynced(reason: str) -> None:
                child = resyncs.get(reason)
                if child is None:
                    child = resyncs[reason] = metrics.book_resyncs.labels(exchange=label, reason=reason)
                child.inc()

            feed.on_resync = resynced
        if limiter is not None:
            tokens: dict[str, Counter] = {}
            waits: dict[str, Counter] = {}
            for kind, bucket in limiter.buckets.items():
                name = kind.value
                tokens[name] = metrics.rate_limit_tokens.labels(exchange=label, bucket=name)
                waits[name] = metrics.rate_limit_waits.labels(exchange=label, bucket=name)
                metrics.rate_limit_refill.labels(exchange=label, bucket=name).set(bucket.rate_per_s)
                metrics.rate_limit_usage.labels(exchange=label, bucket=name).set_function(_usage_of(bucket))

            def charged(kind: str, spent: float, waited_s: float) -> None:
                tokens[kind].inc(spent)
                if waited_s > 0:
                    waits[kind].inc()

            limiter.on_charge = charged

    def _grid_of(self, market_id: str) -> TickGrid:
        if self._grid_for is not None:
            return self._grid_for(market_id)
        grid = self._grids.get(market_id)
        if grid is None:
            raise KeyError(f"no tick grid known for market {market_id!r}")
        return grid

    def _remember(self, info: MarketInfo) -> MarketInfo:
        self._grids[info.market_id] = info.grid
        return info

    async def _publish(self, event: ExchangeEvent) -> None:
        for exc in await self.emit(event):
            self.handler_failures += 1
            self._log(f"event handler failed on {type(event).__name__}: {exc!r}")

    def _publish_soon(self, event: ExchangeEvent) -> None:
        """From a synchronous hook: publish on the loop (connection changes must not wait for the next frame)."""
        task = asyncio.get_running_loop().create_task(self._publish(event))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _count_malformed(self, channel: str, why: str) -> None:
        self.malformed[channel] = self.malformed.get(channel, 0) + 1
        if self._metrics is not None:
            self._metrics.malformed_messages.labels(exchange=self._label, channel=channel).inc()
        self._log(f"malformed {channel} message: {why}")

    def _set_connected_gauge(self, up: bool) -> None:
        if self._metrics is not None:
            self._metrics.websocket_connected.labels(exchange=self._label).set(1 if up else 0)

    def _stream_up(self) -> None:
        if self.feed is not None:
            self.feed.connection_reset()
        self._set_connected_gauge(True)
        reconnects = self.ws.reconnects if self.ws is not None else 0
        if reconnects > self._reconnects_counted and self._ws_reconnects is not None:
            self._ws_reconnects.inc(reconnects - self._reconnects_counted)
            if self.feed is not None and self.feed.tickers and self.feed.on_resync is not None:
                self.feed.on_resync("reconnect")  # the books come back as snapshots of the resubscription
        self._reconnects_counted = reconnects
        self._publish_soon(ConnectionState(True, "connected", self._clock.now_us(), reconnects))
        self._publish_transitions()

    def _stream_down(self, reason: str) -> None:
        self._set_connected_gauge(False)
        reconnects = self.ws.reconnects if self.ws is not None else 0
        self._publish_soon(ConnectionState(False, reason, self._clock.now_us(), reconnects))
        if self.feed is not None:
            self.feed.mark_all_stale("disconnected")
            self._publish_transitions()
        # Fills and order updates sent while we were away are lost with the socket: re-read them over REST.
        self._publish_soon(ResyncRequired("orders", None, f"stream lost: {reason}", self._clock.now_us()))

    def _undecodable_frame(self) -> None:
        self._count_malformed("unknown", "frame is not a JSON object")
        if self.feed is not None:
            self.feed.resync_all("undecodable frame")
            self._publish_transitions()
        # It may have been a fill or an order update.
        self._publish_soon(ResyncRequired("orders", None, "undecodable frame", self._clock.now_us()))

    def _publish_transitions(self) -> None:
        if self.feed is None:
            return
        now = self._clock.now_us()
        for ticker, stale, reason in self.feed.drain_transitions():
            self._publish_soon(BookState(ticker, stale, reason, now))

    async def _dispatch(self, message: dict[str, Any]) -> None:
        if self._ws_messages is not None:
            self._ws_messages.inc()
        kind = message.get("type")
        for handler in list(self._raw_handlers):
            await handler(message)
        if self.link.stream_time_wanted:
            self._stream_time(message)
        if kind in _BOOK_TYPES or kind in ("ok", "unsubscribed"):
            await self._on_book_message(message)
            return
        body = message.get("msg")
        if kind not in ("fill", "user_order", "trade", "market_lifecycle_v2"):
            return
        if not isinstance(body, dict):
            self._on_unreadable(str(kind), "msg is not an object")
            return
        event: ExchangeEvent
        try:
            if kind == "fill":
                event = fill_event_from_ws(body)
            elif kind == "user_order":
                event = order_update_from_ws(body, self._sent_terms.get(str(body.get("client_order_id") or "")))
                self._seen(event.order)
            elif kind == "trade":
                event = public_trade_from_ws(body)
            else:
                event = lifecycle_from_ws(body, self._clock.now_us())
        except (WireFormatError, ValueError, KeyError, TypeError) as exc:
            self._on_unreadable(str(kind), str(exc))
            return
        if kind == "market_lifecycle_v2":
            self._on_lifecycle_grid(body)
        elif isinstance(event, PublicTrade) and event.market_id not in self._subscribed:
            return  # in flight when the market was unsubscribed
        await self._publish(event)

    def _stream_time(self, message: Mapping[str, Any]) -> None:
        """The message's ``ts_ms``, the event's time: already past on arrival, so the venue's clock is at least
        that (a lower bound for :meth:`link_health`)."""
        msg = message.get("msg")
        if isinstance(msg, Mapping):
            stamp = msg.get("ts_ms")
            if type(stamp) is int:
                self.link.stream_time(stamp, self._clock.now_us())

    def _on_unreadable(self, kind: str, why: str) -> None:
        self._count_malformed(kind, why)
        if kind in ("fill", "user_order"):
            self._publish_soon(ResyncRequired("orders", None, f"unreadable {kind}: {why}", self._clock.now_us()))

    def _on_lifecycle_grid(self, body: Mapping[str, Any]) -> None:
        ranges = body.get("price_ranges")
        ticker = body.get("market_ticker")
        if not ranges or not isinstance(ticker, str):
            return
        grid = TickGrid.from_price_ranges(ranges)
        old = self._grids.get(ticker)
        self._grids[ticker] = grid
        if old is not None and old != grid and self.feed is not None and self._grid_for is None:
            self.feed.regrid(ticker)
            self._publish_transitions()

    async def _on_book_message(self, message: dict[str, Any]) -> None:
        feed = self.feed
        if feed is None:
            return
        malformed_before = feed.malformed
        started = self._wall.monotonic_ns()
        ticker = feed.apply(message)  # always: the sid's seq counts every message, whatever its market
        if ticker is not None and self._metrics is not None:
            child = self._book_update_children.get(ticker)
            if child is None:
                child = self._book_update_children[ticker] = self._metrics.book_update.labels(market=ticker)
            child.observe((self._wall.monotonic_ns() - started) / 1e9)
        if ticker is not None and ticker not in self._subscribed:
            feed.forget(ticker)  # in flight when the market was unsubscribed
            feed.drain_transitions()
            ticker = None
        if feed.malformed != malformed_before:
            self._count_malformed(str(message.get("type")), "see the book feed log")
        now = self._clock.now_us()
        for changed, stale, reason in feed.drain_transitions():
            await self._publish(BookState(changed, stale, reason, now))
        if ticker is not None and not feed.is_stale(ticker):
            book = feed.book(ticker)
            if book is not None:
                await self._publish(BookUpdated(ticker, book, now))

    def _order_from_ack(self, request: OrderRequest, ack: Mapping[str, Any]) -> Order:
        now = self._clock.now_us()
        order_id = ack.get("order_id")
        if not order_id:
            raise OrderRejectedError(f"create of {request.client_order_id!r}: the ack has no order_id")
        filled, status = _counts_of(request, ack)
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
    def limiter(self) -> ClientRateLimiter | None:
        return self.rest.limiter

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    @property
    def connected(self) -> bool:
        return self._connected

    async def connect(self) -> None:
        """Open the HTTP client and the stream (again, after :meth:`disconnect`), subscribing the account
        channels and every market subscribed before."""
        if self._connected:
            return
        self.rest.reopen()
        if self.ws is not None:
            if not self._listening:
                await self.ws.on_message(self._dispatch)
                self._listening = True
            await self.ws.subscribe(ACCOUNT_CHANNELS)
            await self.ws.connect()
        self._connected = True

    async def disconnect(self) -> None:
        """Close the stream and the HTTP connections; :meth:`connect` reopens both."""
        if self.ws is not None:
            await self.ws.close()
            self._set_connected_gauge(False)
            if self.feed is not None:
                self.feed.mark_all_stale("disconnected")
                for ticker, stale, reason in self.feed.drain_transitions():
                    await self._publish(BookState(ticker, stale, reason, self._clock.now_us()))
            await self._publish(ConnectionState(False, "disconnect requested", self._clock.now_us()))
        for task in list(self._tasks):
            task.cancel()
        await self.rest.aclose()
        self._connected = False

    async def on_raw_message(self, handler: MessageHandler) -> None:
        """Receive every decoded WebSocket message before it is mapped (diagnostics, recording)."""
        self._raw_handlers.append(handler)

    async def subscribe_market(self, market_id: str) -> None:
        if self.ws is None:
            raise ExchangeError("this KalshiAdapter has no WebSocket: cannot stream market data")
        if self._grid_for is None and market_id not in self._grids:
            await self.get_market(market_id)
        self._subscribed[market_id] = None
        for channel in MARKET_CHANNELS:
            await self.ws.subscribe([channel], [market_id])

    async def unsubscribe_market(self, market_id: str) -> None:
        """Stop the market's book and trade streams at the venue and drop its book here."""
        self._subscribed.pop(market_id, None)
        if self.ws is not None:
            await self.ws.unsubscribe(MARKET_CHANNELS, [market_id])
        if self.feed is not None:
            self.feed.forget(market_id)

    @property
    def subscribed_markets(self) -> list[str]:
        return list(self._subscribed)

    def book(self, market_id: str) -> OrderBook | None:
        return self.feed.book(market_id) if self.feed is not None else None

    def is_stale(self, market_id: str) -> bool:
        return self.feed.is_stale(market_id) if self.feed is not None else True

    # ------------------------------------------------------------------ link health

    def link_health(self, *, clock_window_s: float = 60.0) -> LinkHealth:
        """REST round trips and failures, the stream's state and the venue's clock offset (clock samples of the
        last ``clock_window_s`` seconds); see :mod:`mm.adapters.link_health`."""
        ws = self.ws
        if ws is None:
            return self.link.snapshot(None, 0, clock_window_s=clock_window_s)
        return self.link.snapshot(ws.connected, ws.frames_received, clock_window_s=clock_window_s)

    async def probe(self, timeout_s: float) -> bool:
        """One ``GET /portfolio/balance`` within ``timeout_s`` seconds, no retry: measures the link when the node
        sends nothing else (a paused node would never see the venue recover). True when it got a 2xx answer;
        failures are counted in :meth:`link_health`, not raised."""
        try:
            answer = await self.rest.balance_probe(timeout_s)
        except ExchangeError:
            return False
        updated = answer.get("updated_ts")
        if type(updated) is int:  # whole seconds; a last-update time, so only a lower bound on the venue's now
            self.link.server_time_at_least(updated * 1_000_000, 1_000_000, self._clock.now_us())
        return True

    def _ack_time(self, answer: Mapping[str, Any] | Sequence[Mapping[str, Any]], sent_us: int) -> None:
        """The ``ts_ms`` of an order ack (a batch's first item carrying one) sent at ``sent_us``: a server clock
        reading taken while the request was in flight. A recovered create's ack has none: nothing is recorded."""
        for item in [answer] if isinstance(answer, Mapping) else answer:
            stamp = item.get("ts_ms")
            if type(stamp) is int:
                self.link.clock_reading(stamp * 1000, 1000, sent_us, self._clock.now_us())
                return

    # ------------------------------------------------------------------ orders

    async def place_order(self, order: OrderRequest) -> Order:
        added = self._expect([order])
        try:
            sent = self._clock.now_us()
            ack = await self.rest.create_order(order_request_body(order, stp=self._stp))
            self._ack_time(ack, sent)
            placed = self._order_from_ack(order, ack)
        except ExchangeError as exc:
            self._refused(added, [exc])
            raise
        self._seen(placed)
        return placed

    async def cancel_order(self, order_id: str) -> None:
        sent = self._clock.now_us()
        self._ack_time(await self.rest.cancel_order(order_id), sent)

    async def amend_order(self, order_id: str, *, price: Price, quantity: Quantity) -> Order:
        """Native V2 amend: ``price`` is the YES price of the order as Kalshi holds it, ``quantity`` the new total.

        One write and, for an order this adapter has seen, no read: the ticker and side come from its last copy and
        the result from the ack's counts (a look-up before and after would spend two Read tokens per amend, half of
        Basic's 20 reads/s on a few quoted markets). An order never seen here, or an ack without its counts
        (optional on the wire), is looked up instead.
        """
        current = self._live_orders.get(order_id)
        if current is None:
            current = await self._get_order(order_id)
        book, _ = current.request.yes_book()
        body = {
            "ticker": current.request.market_id,
            "side": book.value,
            "price": price.to_dollars(),
            "count": quantity.to_fp(),
        }
        sent = self._clock.now_us()
        ack = await self.rest.amend_order(order_id, body)
        self._ack_time(ack, sent)
        if ack.get("fill_count") in (None, "") or ack.get("remaining_count") in (None, ""):
            return await self._get_order(order_id)
        request = OrderRequest(
            market_id=current.request.market_id,
            side=Side.YES,  # in YES terms, as every order read back from Kalshi
            order_side=OrderSide.BUY if book is BookSide.BID else OrderSide.SELL,
            price=price,
            quantity=quantity,
            client_order_id=current.client_order_id,
            time_in_force=current.request.time_in_force,
            post_only=current.request.post_only,
            reduce_only=current.request.reduce_only,
        )
        filled, status = _counts_of(request, ack)
        now = self._clock.now_us()
        amended = Order(request, status, current.created_us, now, order_id, filled)
        self._seen(amended)
        return amended

    async def _get_order(self, order_id: str) -> Order:
        return self._read_back(await self.rest.order(order_id))

    def _read_back(self, d: Mapping[str, Any]) -> Order:
        """A venue Order object as our order: the terms the venue does not report are the ones we sent."""
        order = order_from_wire(d, self._sent_terms.get(str(d.get("client_order_id") or "")))
        self._seen(order)
        return order

    def _expect(self, requests: Sequence[OrderRequest]) -> list[str]:
        """Remember the terms of creates about to be sent (before: their ``user_order`` may come before the
        answer); returns the client order ids remembered now (a duplicate id keeps the first order's)."""
        added = []
        for request in requests:
            cid = request.client_order_id
            if cid not in self._sent_terms:
                self._sent_terms[cid] = SentTerms.of(request)
                added.append(cid)
        while len(self._sent_terms) > _MAX_SENT_TERMS:
            del self._sent_terms[next(iter(self._sent_terms))]
        return added

    def _refused(self, added: Sequence[str], errors: Sequence[BaseException | None]) -> None:
        """Forget the terms of creates the venue definitely refused (a timed-out one may exist: kept)."""
        for cid, error in zip(added, errors, strict=False):
            if error is not None and not isinstance(error, ExchangeUnavailableError):
                self._sent_terms.pop(cid, None)

    def _seen(self, order: Order) -> None:
        """An order read back: once it is over, nothing reads its terms again."""
        order_id = order.exchange_order_id
        if not order.status.is_live:
            self._sent_terms.pop(order.client_order_id, None)
            if order_id is not None:
                self._live_orders.pop(order_id, None)
        elif order_id is not None:
            self._live_orders[order_id] = order
            while len(self._live_orders) > _MAX_SENT_TERMS:  # orders that ended unseen (a settlement) age out
                del self._live_orders[next(iter(self._live_orders))]

    async def place_orders(self, orders: Sequence[OrderRequest]) -> list[Order | ExchangeError]:
        """A batch create, even of one order: a timed-out single create would hold the market's reconcile through
        its look-up rounds (ADR 025); a batch in doubt is settled by the stream or the Exchange reconciler."""
        if not orders:
            return []
        added = self._expect(orders)
        try:
            sent = self._clock.now_us()
            answers = await self.rest.batch_create([order_request_body(o, stp=self._stp) for o in orders])
            self._ack_time(answers, sent)
            results: list[Order | ExchangeError] = []
            for i, request in enumerate(orders):
                if i >= len(answers):
                    results.append(ExchangeError(f"batch create: no result for {request.client_order_id!r}"))
                    continue
                error = item_error(answers[i])
                results.append(error if error is not None else self._order_from_ack(request, answers[i]))
        except ExchangeError as exc:
            self._refused(added, [exc] * len(added))
            raise
        first: dict[str, Order | ExchangeError] = {}
        for request, result in zip(orders, results, strict=True):
            first.setdefault(request.client_order_id, result)  # a duplicate id's refusal is not the first's
        self._refused(added, [r if isinstance(r, ExchangeError) else None for r in map(first.get, added)])
        for result in results:
            if isinstance(result, Order):
                self._seen(result)
        return results

    async def cancel_orders(self, order_ids: Sequence[str]) -> list[ExchangeError | None]:
        if not order_ids:
            return []
        sent = self._clock.now_us()
        answers = await self.rest.batch_cancel(order_ids)
        self._ack_time(answers, sent)
        results: list[ExchangeError | None] = []
        for i, order_id in enumerate(order_ids):
            if i >= len(answers):
                results.append(ExchangeError(f"batch cancel: no result for {order_id!r}"))
                continue
            results.append(item_error(answers[i], method="DELETE"))
        return results

    async def decrease_order(self, order_id: str, *, reduce_to: Quantity) -> None:
        """Native decrease keeping queue priority (``reduce_to`` = new remaining size)."""
        sent = self._clock.now_us()
        self._ack_time(await self.rest.decrease_order(order_id, reduce_to=reduce_to.to_fp()), sent)

    # ------------------------------------------------------------------ portfolio

    async def get_positions(self) -> list[Position]:
        positions = [position_from_wire(p) async for p in self.rest.positions()]
        return [p for p in positions if not (p.yes.is_zero and p.no.is_zero)]

    async def get_balance(self) -> Balance:
        return balance_from_wire(await self.rest.balance())

    async def get_open_orders(self, market_id: str | None = None) -> list[Order]:
        return [self._read_back(o) async for o in self.rest.orders(ticker=market_id, status="resting")]

    async def get_order_by_client_id(self, client_order_id: str, market_id: str | None = None) -> Order | None:
        async for o in self.rest.orders(ticker=market_id):
            if o.get("client_order_id") == client_order_id:
                return self._read_back(o)
        return None

    async def get_fills(self, *, since_us: int | None = None, market_id: str | None = None) -> list[Fill]:
        """Our fills, oldest first; ``since_us`` is inclusive (the venue filters by whole seconds first)."""
        min_ts = since_us // 1_000_000 if since_us is not None else None
        fills = [fill_from_wire(f) async for f in self.rest.fills(ticker=market_id, min_ts=min_ts)]
        kept = [f for f in fills if since_us is None or f.timestamp_us >= since_us]
        return sorted(kept, key=lambda f: f.timestamp_us)

    # ------------------------------------------------------------------ markets

    async def list_markets(self, *, series: Sequence[str] = (), status: str | None = None) -> list[MarketInfo]:
        raw: list[dict[str, Any]] = []
        wanted_series: list[str | None] = list(series) or [None]
        for series_ticker in wanted_series:
            filters = {"series_ticker": series_ticker} if series_ticker else {}
            raw.extend([m async for m in self.rest.markets(**filters)])
        infos = [self._remember(market_info_from_wire(m)) for m in raw]
        if series:
            infos = [i for i in infos if i.series_id in series]
        if status is not None:
            wanted = normalise_status(status)
            infos = [i for i in infos if i.status == wanted]
        return infos

    async def get_settlements(self, *, since_us: int | None = None, market_id: str | None = None) -> list[Settlement]:
        """Markets we held that paid out, oldest first; ``since_us`` inclusive (the venue filters by seconds)."""
        min_ts = since_us // 1_000_000 if since_us is not None else None
        rows = [settlement_from_wire(r) async for r in self.rest.settlements(ticker=market_id, min_ts=min_ts)]
        kept = [r for r in rows if since_us is None or r.settled_us >= since_us]
        return sorted(kept, key=lambda r: (r.settled_us, r.market_id))

    async def get_orderbook(self, market_id: str) -> OrderBook:
        """``GET /markets/{ticker}/orderbook`` (full depth) as an :class:`OrderBook` on the market's grid."""
        if self._grid_for is None and market_id not in self._grids:
            await self.get_market(market_id)
        answer = await self.rest.orderbook(market_id)
        levels = answer.get("orderbook_fp") or answer.get("orderbook") or {}
        try:
            yes = [(parse_price(p), parse_count(c)) for p, c in levels.get("yes_dollars") or []]
            no = [(parse_price(p), parse_count(c)) for p, c in levels.get("no_dollars") or []]
        except (MalformedMessageError, ValueError, TypeError) as exc:
            raise ExchangeError(f"GET /markets/{market_id}/orderbook: unreadable levels ({exc})") from None
        book = OrderBook(self._grid_of(market_id))
        book.apply_snapshot(yes, no, self._clock.now_us())
        return book

    async def get_market(self, market_id: str) -> MarketInfo:
        return self._remember(market_info_from_wire(await self.rest.market(market_id)))
