"""Our own orders' size in a recorded book, and the book without it (:class:`OwnOrderBook`).

A session recorded while the node traded *live* holds book records that include the node's own orders: the
venue shows our bid at 0.74 as part of the YES bids at 0.74. A backtest must not quote against itself (its
virtual orders replace the real ones; a resting real bid inside the spread would otherwise sit in front of a
virtual ask forever), and a fill model must not count our own size as queue ahead of us or as liquidity. Both
the tape (:mod:`mm.backtest.tape`) and the calibration's ghosts (:mod:`mm.backtest.ghost`) therefore read the
book through an :class:`OwnOrderBook`, fed every book and order record of one market in file order.

The feed aggregates levels, so which change was ours is inferred by *claims*: each real order claims its size
at its level as soon as the node acts (``order_sent``, ``order_amend``, ``order_cancel``, ``fill``; the venue's
``order_ack`` / ``order_update`` / ``order_rejected`` correct it), and the next change of that level by exactly
the difference between the claim and what we hold there is ours; every other change is other people's.
Claiming from the node's action, not from the venue's order update, matters because the book can show our
change before the order update arrives (0.1–4 s of recorded time on the simulator at 60×); the node's action
always precedes the book change it causes, so our change is recognised whichever stream the recording shows
first. A miss (our change merged with a stranger's in one delta) is taken as other people's — an add of ours
then counts as queue, pessimistic for a queue estimate — and never more of ours is taken out than a level holds.

Levels are bid levels of the recorded book: ``(Side.YES, p)`` the YES bids at ``p``, ``(Side.NO, p)`` the NO
bids at ``p`` ($0.0001); sizes are 1/100 contract.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Final, Literal

from mm.domain.book import OrderBook
from mm.domain.errors import BookIntegrityError
from mm.domain.orders import OrderRequest
from mm.domain.price import PRICE_SCALE, Price, Quantity
from mm.domain.sides import BookSide, OrderSide, Side, TimeInForce
from mm.domain.ticks import TickGrid
from mm.recording.format import SessionRecord

__all__ = ["ORDER_RECORDS", "Level", "Levels", "OrderChange", "OwnOrderBook", "RealOrder", "book_level"]

_RESTING: Final = frozenset({"open", "partially_filled", "resting"})
_CANCELLED: Final = frozenset({"cancelled", "canceled", "rejected", "expired"})
_FILLED: Final = frozenset({"filled", "executed"})
ORDER_RECORDS: Final = frozenset(
    {"order_sent", "order_amend", "order_cancel", "order_ack", "order_update", "order_rejected", "fill"}
)
"""The record types :meth:`OwnOrderBook.on_record` reads."""

Level = tuple[Side, int]
Levels = tuple[tuple[int, int], ...]
"""One side's bid levels, ``(price, size)`` ascending by price."""


def book_level(request: OrderRequest) -> Level:
    """Where an order rests: buying YES at p is a YES bid at p, selling YES at p a NO bid at 1 − p; buying NO at
    q is a NO bid at q, selling NO at q a YES bid at 1 − q."""
    bs, yes_price = request.yes_book()
    return (Side.YES, yes_price.units) if bs is BookSide.BID else (Side.NO, PRICE_SCALE - yes_price.units)


@dataclass(slots=True)
class RealOrder:
    """One of our real orders as the order records describe it."""

    request: OrderRequest  # the price and total size the venue last confirmed (as sent, until then)
    sent_us: int  # the venue cannot have placed it earlier
    intent: OrderRequest | None = None  # an amend or decrease sent, not confirmed yet
    cancel: bool = False  # a cancel sent
    claim: tuple[Level, int] | None = None  # what it claims in the book now
    filled_updates: int = 0
    filled_fills: int = 0
    rested: bool = False  # the venue has said it rests, at least once
    ended: bool = False  # terminal, or the whole size filled: later (stale) updates change nothing

    @property
    def filled(self) -> int:
        return max(self.filled_updates, self.filled_fills)

    @property
    def remaining(self) -> int:
        return max(self.request.quantity.units - self.filled, 0)

    def wanted_claim(self) -> tuple[Level, int] | None:
        """Where the venue holds, or is about to hold, this order's size: a pending intent wins over the last
        confirmed state, which may predate it (an update for a fill while the amend is in flight)."""
        if self.ended or self.cancel:
            return None
        target = self.intent or self.request
        size = target.quantity.units - self.filled
        return (book_level(target), size) if size > 0 else None


@dataclass(frozen=True, slots=True)
class OrderChange:
    """What one order record did to one of our real orders."""

    order: RealOrder
    rests: bool = False
    """The venue says it rests, with size left, as ``order.request`` (placed, moved or resized)."""
    placed: bool = False
    """... and says so for the first time."""
    end: Literal["filled", "cancelled"] | None = None
    """This record ended the order (filled: completely, or the venue's terminal status)."""
    fill_units: int = 0
    """A ``fill`` record: the size it filled."""


class OwnOrderBook:
    """One market's recorded book, our real orders' claims on it, and :attr:`others`: the book without our size.

    Feed every record of the market in file order: book records through :meth:`snapshot` / :meth:`delta` (each
    returns what it changed in :attr:`others`), the :data:`ORDER_RECORDS` through :meth:`on_record`. Without
    order records nothing is claimed and :attr:`others` is the recorded book.
    """

    def __init__(self, market: str, grid: TickGrid | None = None) -> None:
        self.market = market
        self.others: OrderBook | None = OrderBook(grid) if grid is not None else None
        self.orders: dict[str, RealOrder] = {}
        """Client order id → our real order."""
        self.adjustments = 0
        """Book records whose change to :attr:`others` differs from the recorded one (our size taken out)."""
        self._by_exchange_id: dict[str, str] = {}
        self._raw: dict[Level, int] = {}
        self._ours: dict[Level, int] = {}  # what of each level's recorded size is ours (never more than it holds)
        self._claim: dict[Level, int] = {}  # what our real orders hold, or are about to hold, at each level
        self._handlers: dict[str, Callable[[SessionRecord], OrderChange | None]] = {
            "order_sent": self._sent,
            "order_amend": self._intent,
            "order_cancel": self._intent,
            "order_ack": self._venue,
            "order_update": self._venue,
            "order_rejected": self._rejected,
            "fill": self._fill,
        }

    def claimed(self, level: Level) -> int:
        """What our real orders claim at ``level`` (hold there, or are about to)."""
        return self._claim.get(level, 0)

    # ------------------------------------------------------------------ book records

    def snapshot(
        self, yes_bids: Iterable[Any], no_bids: Iterable[Any], grid: TickGrid | None, ts_us: int
    ) -> tuple[Levels, Levels]:
        """Replace the book (on ``grid``; None: the current one); returns the YES and NO bids of :attr:`others`."""
        if grid is None and self.others is not None:
            grid = self.others.grid
        if grid is None:
            raise BookIntegrityError("a book_snapshot without a grid, and no market_info.grid")
        raw = {(side, int(p)): int(n) for side, levels in ((Side.YES, yes_bids), (Side.NO, no_bids)) for p, n in levels}
        # No history to attribute from: assume the venue shows what we claim (up to what the level holds).
        ours = {lv: min(c, raw.get(lv, 0)) for lv, c in self._claim.items() if c > 0}
        others = {lv: n - ours.get(lv, 0) for lv, n in raw.items()}
        yes = tuple(sorted((p, n) for (s, p), n in others.items() if s is Side.YES and n > 0))
        no = tuple(sorted((p, n) for (s, p), n in others.items() if s is Side.NO and n > 0))
        book = self.others if self.others is not None and self.others.grid == grid else OrderBook(grid)
        book.apply_snapshot(yes, no, ts_us)  # validates: a bad snapshot changes nothing
        self.others, self._raw, self._ours = book, raw, ours
        if any(ours.values()):
            self.adjustments += 1
        return yes, no

    def delta(self, side: Side, price: int, change: int, ts_us: int) -> int:
        """Apply a recorded change of one level; returns the change it made to :attr:`others` (0: all ours)."""
        others = self.others
        if others is None:
            raise BookIntegrityError("a book_delta before any book_snapshot, and no market_info.grid")
        level = (side, price)
        raw_before = self._raw.get(level, 0)
        raw = raw_before + change
        if raw < 0:
            raise BookIntegrityError(f"{side.value} bid at {price}: delta {change} leaves {raw}: out of sync")
        ours_before, claim = self._ours.get(level, 0), self._claim.get(level, 0)
        if not ours_before and not claim:
            # Nothing of ours here (every level of a paper session): all other people's. The book checks the
            # price before it changes anything, so state stays consistent when a bad delta is skipped.
            if change:
                others.apply_delta(side, price, change, ts_us)
            self._raw[level] = raw
            return change
        if others.grid.index_of(price) < 0:
            raise BookIntegrityError(f"{side.value} bid at {price} is off the tick grid")
        # Exactly the change we are waiting for is ours; anything else is other people's.
        mine = change if change == claim - ours_before else 0
        ours = min(max(ours_before + mine, 0), raw)
        self._raw[level], self._ours[level] = raw, ours
        diff = (raw - ours) - (raw_before - ours_before)
        if diff:
            others.apply_delta(side, price, diff, ts_us)
        if diff != change:
            self.adjustments += 1
        return diff

    # ------------------------------------------------------------------ order records

    def on_record(self, record: SessionRecord) -> OrderChange | None:
        """Apply an order record (:data:`ORDER_RECORDS`; others are ignored); None when it concerns no order of
        ours that the recording showed us sending (or is a paper fill)."""
        handler = self._handlers.get(record.type)
        return handler(record) if handler is not None else None

    def _find(self, data: Mapping[str, Any]) -> RealOrder | None:
        real = self.orders.get(str(data.get("client_order_id")))
        if real is None:
            key = self._by_exchange_id.get(str(data.get("exchange_order_id", data.get("order_id"))))
            real = self.orders.get(key) if key is not None else None
        if real is not None and data.get("exchange_order_id"):
            self._by_exchange_id[str(data["exchange_order_id"])] = real.request.client_order_id
        return real

    def _sent(self, record: SessionRecord) -> OrderChange:
        d = record.data
        price, size, tif = Price(d["price_units"]), Quantity(d["size_units"]), d.get("time_in_force")
        request = OrderRequest(
            self.market,
            Side(d["side"]),
            OrderSide(d["order_side"]),
            price,
            size,
            d["client_order_id"],
            time_in_force=TimeInForce(tif or "good_till_canceled"),
            post_only=d.get("post_only", True),
        )
        real = self.orders[request.client_order_id] = RealOrder(request, record.ts_us)
        self._reclaim(real)  # the venue is about to show it
        return OrderChange(real)

    def _intent(self, record: SessionRecord) -> OrderChange | None:
        """order_amend / order_cancel: the venue will (most likely) move our size: claim it now."""
        real, data = self._find(record.data), record.data
        if real is None or real.ended:
            return None
        if record.type == "order_cancel":
            real.cancel = True
        elif isinstance(data.get("reduce_to_units"), int):
            total = real.filled + int(data["reduce_to_units"])
            real.intent = replace(real.intent or real.request, quantity=Quantity(max(total, 1)))
        elif isinstance(data.get("size_units"), int) and isinstance(data.get("price_units"), int):
            price, size = Price(data["price_units"]), Quantity(data["size_units"])
            real.intent = replace(real.request, price=price, quantity=size)
        self._reclaim(real)
        return OrderChange(real)

    def _venue(self, record: SessionRecord) -> OrderChange | None:
        """An ``order_update`` or ``order_ack``: the venue's word on the order (an ack has no price: as sent)."""
        data = record.data
        real = self._find(data)
        if real is None:
            return None
        request = real.request
        price, size = data.get("price_units"), data.get("size_units")
        if isinstance(price, int) and isinstance(size, int):
            request = replace(request, price=Price(price), quantity=Quantity(size))
        real.filled_updates = max(real.filled_updates, int(data.get("filled_units") or 0))
        if real.intent is not None and (real.intent.price, real.intent.quantity) == (request.price, request.quantity):
            real.intent = None  # the venue applied it
        if real.ended:
            return OrderChange(real)
        real.request = request
        status = str(data["status"])
        if status in _RESTING and real.remaining > 0:
            self._reclaim(real)
            placed, real.rested = not real.rested, True
            return OrderChange(real, rests=True, placed=placed)
        if status in _FILLED or status in _CANCELLED or status in _RESTING:  # resting with nothing left
            return self._end(real, "cancelled" if status in _CANCELLED else "filled")
        return OrderChange(real)

    def _rejected(self, record: SessionRecord) -> OrderChange | None:
        """The venue refused the create: it never rests, so its claim goes (a later change there is not ours)."""
        real = self._find(record.data)
        return self._end(real, "cancelled") if real is not None and not real.ended else None

    def _fill(self, record: SessionRecord) -> OrderChange | None:
        data = record.data
        real = None if data.get("execution") == "paper" else self._find(data)
        size = int(data["size_units"])
        if real is None or size <= 0:
            return None
        real.filled_fills += size
        self._reclaim(real)
        if real.remaining == 0 and not real.ended:
            return replace(self._end(real, "filled"), fill_units=size)
        return OrderChange(real, fill_units=size)

    def _end(self, real: RealOrder, how: Literal["filled", "cancelled"]) -> OrderChange:
        real.ended = True
        self._reclaim(real)
        return OrderChange(real, end=how)

    def _reclaim(self, real: RealOrder) -> None:
        claim = real.wanted_claim()
        if claim == real.claim:
            return
        if real.claim is not None:
            self._add_claim(real.claim[0], -real.claim[1])
        real.claim = claim
        if claim is not None:
            self._add_claim(*claim)

    def _add_claim(self, level: Level, change: int) -> None:
        self._claim[level] = self._claim.get(level, 0) + change
