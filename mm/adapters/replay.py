"""The replay adapter (FR-902): the full :class:`ExchangeAdapter` interface answered from a recorded session.

The node under replay talks to :class:`ReplayExchangeAdapter` exactly as it talked to the venue:

* **Market data** — ``get_market`` / ``list_markets`` from the session's market facts, ``book()`` the book rebuilt
  from ``book_snapshot`` / ``book_delta`` records (with the venue book's own timestamps), ``is_stale`` from the
  ``book_state`` records. The replay driver feeds the records in file order (:meth:`apply_book`,
  :meth:`apply_book_state`, :meth:`apply_trade`) and the adapter emits ``BookUpdated`` / ``BookState`` /
  ``PublicTrade`` to its handlers, as a venue stream would.
* **Our account** — the recorded ``fill`` and ``order_update`` records become ``FillEvent`` / ``OrderUpdate`` at
  their place in the file (:meth:`apply_fill`, :meth:`apply_order_update`); open orders, positions, fills and the
  balance are what the recording says so far.
* **Order calls** — a create is answered with the recorded ``order_ack`` / ``order_rejected`` / ``order_unknown``
  for its client order id; a cancel, amend or decrease with the recorded ``order_result``; a call that raised
  raises the same error. The :class:`RecordFeed` (the replay driver) plays the file up to that answer first —
  delivering whatever arrived while the live call was in flight — and sets the replay clock to the time the
  live call returned. Where the recording holds no answer (an older recording, a call it never saw) a cancel or
  decrease succeeds, an amend applies to the order as known, and a create is *unknown*
  (``ExchangeUnavailableError``): the node then waits for its outcome as it would live.

One adapter per account: the venue's (``execution="live"``, with the market data) and a paper one reading it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Any, Protocol

from mm.adapters import errors
from mm.adapters.base import Capabilities, ExchangeAdapter, MarketInfo
from mm.adapters.errors import ExchangeError, ExchangeUnavailableError, OrderNotFoundError
from mm.adapters.kalshi.adapter import KALSHI_CAPABILITIES
from mm.adapters.paper import (
    PAPER_CAPABILITIES,
    get_market_via,
    list_markets_via,
    matching_fills,
    order_with_client_id,
)
from mm.clock import Clock
from mm.domain.book import OrderBook
from mm.domain.events import BookState, BookUpdated, FillEvent, OrderUpdate, PublicTrade
from mm.domain.orders import Fill, Order, OrderRequest, OrderStatus
from mm.domain.portfolio import Balance, Position
from mm.domain.price import Price, Quantity
from mm.domain.sides import OrderSide, Side
from mm.domain.ticks import TickGrid
from mm.recording.format import SessionRecord
from mm.recording.order_records import fill_from_payload, order_from_payload
from mm.recording.replay import grid_of

__all__ = ["RecordFeed", "ReplayExchangeAdapter", "error_from_record", "market_info_from_facts"]

_ANSWERS = ("order_ack", "order_rejected", "order_unknown")


class RecordFeed(Protocol):
    """Plays the recording for the adapter (the replay driver)."""

    async def answer(self, call: str, key: str, accepts: Callable[[SessionRecord], bool]) -> SessionRecord | None:
        """Deliver the recording up to the first record ``accepts`` takes — the answer to ``call`` on ``key`` — and
        return it (the replay clock then reads when the live call returned); None when the recording holds no
        answer for it."""
        ...


def market_info_from_facts(market_id: str, facts: Mapping[str, Any]) -> MarketInfo:
    """A :class:`MarketInfo` from ``session_start.market_info`` (or a ``reconcile`` record's ``market_info``)."""
    return MarketInfo(
        market_id=market_id,
        event_id=str(facts.get("event_id", "")),
        series_id=str(facts.get("series_id", "")),
        status=str(facts.get("status", "active")),
        open_time_us=int(facts.get("open_time_us", 0)),
        close_time_us=int(facts.get("close_time_us", 0)),
        grid=grid_of(facts["grid"]) if facts.get("grid") else TickGrid.linear_cent(),
        strike=str(facts.get("strike", "")),
    )


def error_from_record(name: str | None, reason: str | None) -> ExchangeError:
    """The venue error a record names (``error``: its class), with its message; an unknown name is an
    :class:`ExchangeError`."""
    cls = getattr(errors, name or "", None)
    if not (isinstance(cls, type) and issubclass(cls, ExchangeError)):
        cls = ExchangeError
    return cls(reason or name or "recorded error")


class ReplayExchangeAdapter(ExchangeAdapter):
    """One account's venue as a recording tells it (see the module docstring)."""

    def __init__(
        self,
        clock: Clock,
        *,
        execution: str = "live",
        feed: RecordFeed | None = None,
        market_data: ReplayExchangeAdapter | None = None,
        capabilities: Capabilities | None = None,
    ) -> None:
        self._clock = clock
        self.execution = execution
        self.feed = feed
        self._data = market_data
        default = KALSHI_CAPABILITIES if execution == "live" else PAPER_CAPABILITIES
        self._capabilities = capabilities if capabilities is not None else default
        self._markets: dict[str, MarketInfo] = {}
        self._books: dict[str, OrderBook] = {}
        self._stale: dict[str, bool] = {}
        self.subscribed: set[str] = set()
        self.connected = False
        self.orders: dict[str, Order] = {}
        """Our orders by exchange id, as the recording has told so far."""
        self.fills: list[Fill] = []
        self._net: dict[str, int] = {}
        self.balance_micros: int | None = None
        """The account's cash as the last state_snapshot recorded it."""

    # ------------------------------------------------------------------ connection and markets

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    async def connect(self) -> None:
        self.connected = True

    async def disconnect(self) -> None:
        self.connected = False

    async def subscribe_market(self, market_id: str) -> None:
        self.subscribed.add(market_id)

    async def unsubscribe_market(self, market_id: str) -> None:
        self.subscribed.discard(market_id)

    def set_market(self, info: MarketInfo) -> None:
        self._markets[info.market_id] = info

    async def list_markets(self, *, series: Sequence[str] = (), status: str | None = None) -> list[MarketInfo]:
        return await list_markets_via(self._data, self._markets, series, status)

    async def get_market(self, market_id: str) -> MarketInfo:
        return await get_market_via(self._data, self._markets, market_id, "market {!r} is not in the recording")

    # ------------------------------------------------------------------ market data (fed by the replay driver)

    def book(self, market_id: str) -> OrderBook | None:
        if self._data is not None:
            return self._data.book(market_id)
        return self._books.get(market_id)

    def is_stale(self, market_id: str) -> bool:
        if self._data is not None:
            return self._data.is_stale(market_id)
        return market_id not in self._books or self._stale.get(market_id, False)

    async def get_orderbook(self, market_id: str) -> OrderBook:
        live = self.book(market_id)
        if live is None:
            raise ExchangeError(f"the recording has no book of {market_id!r} yet", status=404, code="not_found")
        copy = OrderBook(live.grid)
        n = len(live.grid.levels)
        copy.apply_snapshot(live.depth(Side.YES, n), live.depth(Side.NO, n), live.last_update_us)
        return copy

    def _grid(self, market_id: str, data: Mapping[str, Any]) -> TickGrid:
        if data.get("grid"):
            return grid_of(data["grid"])
        info = self._markets.get(market_id)
        if info is None:
            raise ExchangeError(f"a book of {market_id!r} before any grid is known", code="no_grid")
        return info.grid

    def restore_book(self, market_id: str, data: Mapping[str, Any] | None) -> None:
        """The book a ``state_snapshot`` recorded (levels, timestamp, stale), without an event."""
        if data is None or data.get("yes_bids") is None:
            self._books.pop(market_id, None)
            return
        book = OrderBook(self._grid(market_id, {}))
        book.apply_snapshot(data["yes_bids"], data["no_bids"], int(data["book_ts_us"]))
        self._books[market_id] = book
        self._stale[market_id] = bool(data.get("stale", False))

    async def apply_book(self, record: SessionRecord, *, emit: bool = True) -> None:
        """A ``book_snapshot`` or ``book_delta``: the book changes as the venue's did (at its own timestamp)."""
        data, market = record.data, record.market
        book_ts = int(data.get("book_ts_us", record.ts_us))
        book = self._books.get(market)
        if record.type == "book_snapshot":
            grid = self._grid(market, data)
            if book is None or book.grid != grid:
                book = self._books[market] = OrderBook(grid)
            book.apply_snapshot(data["yes_bids"], data["no_bids"], book_ts)
        else:
            if book is None:
                book = self._books[market] = OrderBook(self._grid(market, {}))
            side = Side.YES if data["side"] == "yes" else Side.NO
            book.apply_delta(side, int(data["price_units"]), int(data["delta_units"]), book_ts)
        self._stale[market] = False  # the node only ever recorded a book it could quote on
        if emit:
            await self._publish(BookUpdated(market, book, record.ts_us))

    async def apply_book_state(self, record: SessionRecord) -> None:
        stale = bool(record.data["stale"])
        self._stale[record.market] = stale
        await self._publish(BookState(record.market, stale, str(record.data.get("reason", "")), record.ts_us))

    async def apply_trade(self, record: SessionRecord) -> None:
        data = record.data
        trade = PublicTrade(
            market_id=record.market,
            trade_id=str(data["trade_id"]),
            price=Price(int(data["price_units"])),
            quantity=Quantity(int(data["size_units"])),
            taker_side=OrderSide(data["taker_side"]),
            timestamp_us=int(data.get("venue_ts_us") or record.ts_us),
        )
        await self._publish(trade)

    # ------------------------------------------------------------------ our account (fed by the replay driver)

    async def apply_fill(self, record: SessionRecord) -> None:
        fill = fill_from_payload(record.market, record.data)
        self.fills.append(fill)
        self._net[fill.market_id] = self._net.get(fill.market_id, 0) + fill.inventory_delta_units
        post = record.data.get("post_position_units")
        await self._publish(FillEvent(fill, Quantity(int(post)) if post is not None and post >= 0 else None))

    async def apply_order_update(self, record: SessionRecord) -> None:
        known = self.orders.get(str(record.data.get("exchange_order_id")))
        if known is None:
            known = next(
                (o for o in self.orders.values() if o.client_order_id == record.data.get("client_order_id")), None
            )
        order = order_from_payload(record.market, record.data, known)
        self._keep(order)
        await self._publish(OrderUpdate(order, int(record.data.get("venue_ts_us") or order.updated_us)))

    def restore(self, orders: Sequence[Order], positions: Mapping[str, int]) -> None:
        """A state_snapshot's open orders and net positions (partial replay)."""
        for order in orders:
            self._keep(order)
        self._net.update(positions)

    def forget_orders(self, exchange_order_ids: Sequence[str]) -> None:
        """Orders the node cancelled outside a recorded call (``node_cancel``): over."""
        now = self._clock.now_us()
        for order_id in exchange_order_ids:
            order = self.orders.get(order_id)
            if order is not None and order.status.is_live:
                self.orders[order_id] = order.cancelled(now)

    def _keep(self, order: Order) -> None:
        if order.exchange_order_id:
            self.orders[order.exchange_order_id] = order

    async def _publish(self, event: Any) -> None:
        for exc in await self.emit(event):
            raise exc  # a replayed node that fails on an event must stop the replay, not hide it

    # ------------------------------------------------------------------ order calls (answered from the recording)

    async def _answer(self, call: str, key: str, accepts: Callable[[SessionRecord], bool]) -> SessionRecord | None:
        if self.feed is None:
            raise ExchangeError(f"{call} {key}: this replay adapter has no recording to answer from")
        return await self.feed.answer(call, key, accepts)

    async def place_order(self, order: OrderRequest) -> Order:
        result = await self._create(order)
        if isinstance(result, ExchangeError):
            raise result
        return result

    async def place_orders(self, orders: Sequence[OrderRequest]) -> list[Order | ExchangeError]:
        return [await self._create(request) for request in orders]

    async def _create(self, request: OrderRequest) -> Order | ExchangeError:
        cid = request.client_order_id

        def accepts(r: SessionRecord) -> bool:
            if r.type in _ANSWERS:
                return bool(r.data.get("client_order_id") == cid)
            return r.type == "order_result" and r.data.get("action") == "create" and bool(r.data.get("raised"))

        record = await self._answer("create", cid, accepts)
        if record is None:
            return ExchangeUnavailableError(f"the recording holds no answer to the create of {cid!r}")
        data = record.data
        if record.type == "order_result":
            raise error_from_record(data.get("error"), data.get("reason"))
        if record.type == "order_unknown":
            return ExchangeUnavailableError(str(data.get("reason", "timed out")))
        if record.type == "order_rejected":
            return error_from_record(data.get("error") or "OrderRejectedError", data.get("reason"))
        created = int(data.get("created_us", record.ts_us))
        order = Order(
            request=request,
            status=OrderStatus(data["status"]),
            created_us=created,
            updated_us=int(data.get("updated_us", created)),
            exchange_order_id=data.get("exchange_order_id"),
            filled=Quantity(int(data.get("filled_units", 0))),
        )
        self._keep(order)
        return order

    def _result_for(self, call: str, order_id: str) -> Callable[[SessionRecord], bool]:
        def accepts(r: SessionRecord) -> bool:
            if r.type != "order_result" or r.data.get("action") != call:
                return False
            return bool(r.data.get("raised")) or r.data.get("exchange_order_id") == order_id

        return accepts

    async def cancel_order(self, order_id: str) -> None:
        result = (await self.cancel_orders([order_id]))[0]
        if result is not None:
            raise result

    async def cancel_orders(self, order_ids: Sequence[str]) -> list[ExchangeError | None]:
        results: list[ExchangeError | None] = []
        for order_id in order_ids:
            record = await self._answer("cancel", order_id, self._result_for("cancel", order_id))
            if record is not None and record.data.get("raised"):
                raise error_from_record(record.data.get("error"), record.data.get("reason"))
            error = None
            if record is not None and record.data.get("error") is not None:
                error = error_from_record(record.data.get("error"), record.data.get("reason"))
            if error is None or isinstance(error, OrderNotFoundError):
                self.forget_orders([order_id])
            results.append(error)
        return results

    async def amend_order(self, order_id: str, *, price: Price, quantity: Quantity) -> Order:
        record = await self._answer("amend", order_id, self._result_for("amend", order_id))
        if record is not None and record.data.get("error") is not None:
            raise error_from_record(record.data.get("error"), record.data.get("reason"))
        known = self.orders.get(order_id)
        if record is not None and record.data.get("order") is not None:
            market = known.request.market_id if known is not None else str(record.market)
            amended = order_from_payload(market, record.data["order"], known)
        elif known is None or not known.status.is_live:
            raise OrderNotFoundError(f"order {order_id!r} is not open in the recording", status=404)
        else:  # an older recording: the amend as asked, on the order as known
            request = replace(known.request, price=price, quantity=quantity)
            amended = replace(known, request=request, updated_us=self._clock.now_us())
        self._keep(amended)
        return amended

    async def decrease_order(self, order_id: str, *, reduce_to: Quantity) -> None:
        record = await self._answer("decrease", order_id, self._result_for("decrease", order_id))
        if record is not None and record.data.get("error") is not None:
            raise error_from_record(record.data.get("error"), record.data.get("reason"))
        known = self.orders.get(order_id)
        if known is not None and known.status.is_live and reduce_to < known.remaining:
            self._keep(known.decreased(reduce_to, self._clock.now_us()))

    # ------------------------------------------------------------------ portfolio reads (what the recording says)

    async def get_open_orders(self, market_id: str | None = None) -> list[Order]:
        return [o for o in self.orders.values() if o.status.is_live and market_id in (None, o.request.market_id)]

    async def get_order_by_client_id(self, client_order_id: str, market_id: str | None = None) -> Order | None:
        return order_with_client_id(self.orders.values(), client_order_id, market_id)

    async def get_fills(self, *, since_us: int | None = None, market_id: str | None = None) -> list[Fill]:
        return matching_fills(self.fills, since_us, market_id)

    async def get_positions(self) -> list[Position]:
        return [
            Position(market_id=m, yes=Quantity(max(n, 0)), no=Quantity(max(-n, 0)))
            for m, n in sorted(self._net.items())
            if n != 0
        ]

    async def get_balance(self) -> Balance:
        if self.balance_micros is None:
            raise ExchangeError("the recording has no state_snapshot with this account's cash yet", code="unknown")
        cash = Decimal(self.balance_micros).scaleb(-6)
        return Balance(available=cash, total=cash)
