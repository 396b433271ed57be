"""Ghost orders (§5.3 "ghost mode"): the paper fill models run beside our real orders on a recorded live session.

:class:`GhostRun` walks the records in file order (what the node saw, on its clock). Per model, a :class:`Ghost`
copies every real order where the *venue* says it rests: placed by the first live ``order_ack``/``order_update``,
moved by each update (a new price or a larger size re-queues, a decrease keeps its place), ended by a terminal
one — at once if cancelled, ``window_us`` later if filled (a model a little late still matches). The node's
``order_amend``/``order_cancel`` may never apply (a fill can beat them): ghosts ignore them. A ghost fills from
its own remaining size, and the models see the book *without our own size*: each market's book and our real
orders are an :class:`~mm.backtest.own_orders.OwnOrderBook`. See ADR 020.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from mm.adapters.fill_models import FillModel, SimFill, taker_fill
from mm.backtest.own_orders import ORDER_RECORDS, OrderChange, OwnOrderBook
from mm.domain.book import OrderBook
from mm.domain.events import PublicTrade
from mm.domain.orders import Order, OrderRequest, OrderStatus
from mm.domain.price import PRICE_SCALE, Price, Quantity
from mm.domain.sides import OrderSide, Side
from mm.recording.format import SessionRecord
from mm.recording.replay import grid_of

__all__ = ["FillRecord", "Ghost", "GhostRun"]


@dataclass(frozen=True, slots=True)
class FillRecord:
    """One fill, real or ghost: ``order`` is the real order's client order id; YES-book price; 1/100 contracts."""

    order: str
    ts_us: int
    quantity_units: int
    yes_price_units: int
    is_taker: bool


class Ghost:
    """One fill model's virtual copies of our real orders (keyed by client order id) and their fills."""

    def __init__(self, model: FillModel) -> None:
        self.model = model
        self.live: dict[str, Order] = {}
        self.fills: list[FillRecord] = []
        self._seq: dict[str, int] = {}
        self._next = 0
        self._since: dict[str, int] = {}  # venue time from which the ghost rests at its price (a lower bound)
        self._ends: dict[str, int] = {}
        self._done: set[str] = set()

    def resting(self, market: str, venue_us: int | None = None) -> list[Order]:
        """The market's ghosts in time priority (what the models expect); with ``venue_us``, only those resting
        at that venue time (a print recorded late, from before our order rested, cannot have filled it)."""
        orders = [o for o in self.live.values() if o.request.market_id == market]
        if venue_us is not None:
            orders = [o for o in orders if self._since[o.client_order_id] <= venue_us]
        return sorted(orders, key=lambda o: self._seq[o.client_order_id])

    def apply(self, sims: list[SimFill], ts_us: int) -> None:
        for sim in sims:
            order = self.live[sim.order_id].with_fill(Quantity(sim.quantity_units), ts_us)
            self.fills.append(FillRecord(sim.order_id, ts_us, sim.quantity_units, sim.yes_price_units, sim.is_taker))
            self.live[sim.order_id] = order
            if order.status is OrderStatus.FILLED:
                self._finish(sim.order_id)

    def follow(self, request: OrderRequest, book: OrderBook | None, ts_us: int, since_us: int) -> None:
        """The real order rests as ``request`` says (price, total size): place, re-queue or shrink the ghost."""
        key = request.client_order_id
        current = self.live.get(key)
        if key in self._done or (current is not None and current.request == request):
            return  # unchanged, or filled or ended already: a ghost is not reborn
        if current is None:
            order = Order.pending(request, ts_us).acknowledged(key, ts_us)
        else:
            order = replace(current, request=request, updated_us=ts_us)
            if request.quantity <= current.filled:
                self._finish(key)  # shrunk below what the ghost has filled already
                return
            if request.price == current.request.price and request.quantity < current.request.quantity:
                self.live[key] = order  # a decrease keeps its place in the queue
                return
            self.model.on_cancelled(key)  # a new price or a larger size: to the back of the queue
        self.live[key] = order
        self._next += 1
        self._seq[key], self._since[key] = self._next, since_us
        # A post-only order the venue accepted rested: it did not cross, whatever our (lagging) book says.
        taker = taker_fill(order, book) if book is not None and not request.post_only else None
        if taker is not None:
            self.apply([taker], ts_us)
        if key in self.live:
            self.model.on_placed(self.live[key], book)

    def end(self, key: str, at_us: int, now_us: int) -> None:
        """The real order ended: the ghost stops resting at ``at_us`` (the earliest end asked for wins)."""
        at_us = min(at_us, self._ends.get(key, at_us))
        if key not in self.live:
            self._done.add(key)
        elif at_us <= now_us:
            self._finish(key)
        else:
            self._ends[key] = at_us

    def expire(self, now_us: int) -> None:
        for key in [k for k, at in self._ends.items() if at <= now_us]:
            self._finish(key)

    def _finish(self, key: str) -> None:
        self.model.on_cancelled(key)
        self.live.pop(key, None)
        self._ends.pop(key, None)
        self._done.add(key)


class GhostRun:
    """Feed records in file order; the ghosts of every model and the real fills accumulate."""

    def __init__(self, models: Mapping[str, FillModel], *, window_us: int, placed_us: Mapping[str, int]) -> None:
        self.ghosts = {name: Ghost(model) for name, model in models.items()}
        self.window_us, self.placed_us = window_us, placed_us  # client order id → venue time it first rested
        self.real_fills: list[FillRecord] = []
        self.unfollowed_fills = 0  # of orders the recording never showed us placing (before the session started)
        self.paper_fills = 0
        self.orders_followed = 0
        self.gaps = 0
        self.books: dict[str, OwnOrderBook] = {}
        self._grids: dict[str, Any] = {}

    def feed(self, record: SessionRecord) -> None:
        for ghost in self.ghosts.values():
            ghost.expire(record.ts_us)
        if record.type in ORDER_RECORDS:
            self._on_order(record)
            return
        # One method per record type of interest, named after it (_on_trade, _on_book_delta, ...).
        handler: Callable[[SessionRecord], None] | None = getattr(self, f"_on_{record.type}", None)
        if handler is not None:
            handler(record)

    def finish(self, now_us: int) -> None:
        for ghost in self.ghosts.values():
            for key in list(ghost.live):
                ghost.end(key, now_us, now_us)

    # ------------------------------------------------------------------ market data

    def _on_session_start(self, record: SessionRecord) -> None:
        grid = (record.data.get("market_info") or {}).get("grid")
        self._grids.update({str(market): grid for market in record.data.get("market_ids") or [record.market] if grid})

    def _book(self, market: str) -> OwnOrderBook:
        book = self.books.get(market)
        if book is None:
            ranges = self._grids.get(market)  # an empty book on it until the first snapshot
            book = self.books[market] = OwnOrderBook(market, grid_of(ranges) if ranges else None)
        return book

    def _on_book_snapshot(self, record: SessionRecord) -> None:
        data = record.data
        grid = grid_of(data["grid"]) if data.get("grid") else None  # None: the market's (session_start) grid
        self._book(record.market).snapshot(data["yes_bids"], data["no_bids"], grid, record.ts_us)
        self._on_book(record)

    def _on_book_delta(self, record: SessionRecord) -> None:
        data, book = record.data, self._book(record.market)
        side = Side.YES if data["side"] == "yes" else Side.NO
        book.delta(side, int(data["price_units"]), int(data["delta_units"]), record.ts_us)
        self._on_book(record)

    def _on_book(self, record: SessionRecord) -> None:
        others = self.books[record.market].others
        assert others is not None  # just built
        for ghost in self.ghosts.values():
            ghost.apply(ghost.model.on_book(others, ghost.resting(record.market)), record.ts_us)

    def _on_trade(self, record: SessionRecord) -> None:
        d = record.data
        price, size, taker = Price(d["price_units"]), Quantity(d["size_units"]), OrderSide(d["taker_side"])
        trade = PublicTrade(record.market, d["trade_id"], price, size, taker, d.get("venue_ts_us") or record.ts_us)
        for ghost in self.ghosts.values():
            ghost.apply(ghost.model.on_trade(trade, ghost.resting(record.market, trade.timestamp_us)), record.ts_us)

    # ------------------------------------------------------------------ our real orders

    def _on_order(self, record: SessionRecord) -> None:
        """Any order record: the market's :class:`OwnOrderBook` updates the real order (and its claim); the
        ghosts follow what the venue said, and a real fill is kept to compare with."""
        if record.type == "fill" and record.data.get("execution") == "paper":
            self.paper_fills += 1
            return
        change = self._book(record.market).on_record(record)
        if change is None:
            if record.type == "fill":
                self.unfollowed_fills += 1  # of an order the recording never showed us placing (or of no size)
            return
        real, key = change.order, change.order.request.client_order_id
        if change.fill_units:
            self._real_fill(record, change)
        if change.placed:
            self.orders_followed += 1
        if change.rests:
            # From when the venue had it resting: an ack carries no venue time (the first-pass placement does).
            ack = record.type == "order_ack"
            since = self.placed_us.get(key, real.sent_us) if ack else record.data.get("venue_ts_us")
            others = self.books[record.market].others
            for ghost in self.ghosts.values():
                ghost.follow(real.request, others, record.ts_us, since or record.ts_us)
        if change.end is not None:
            grace = self.window_us if change.end == "filled" else 0
            for ghost in self.ghosts.values():
                ghost.end(key, record.ts_us + grace, record.ts_us)

    def _real_fill(self, record: SessionRecord, change: OrderChange) -> None:
        data, request = record.data, change.order.request
        yes_price = int(data["price_units"])
        if Side(data.get("side", request.side.value)) is Side.NO:
            yes_price = PRICE_SCALE - yes_price
        is_taker = bool(data.get("is_taker", False))
        fill = FillRecord(request.client_order_id, record.ts_us, change.fill_units, yes_price, is_taker)
        self.real_fills.append(fill)

    def _on_recording_gap(self, record: SessionRecord) -> None:
        self.gaps += 1
