"""The simulator's matching engine: one price-time priority book per market (kalshi-api.md §5, §7–8).

One YES-denominated book: bids buy YES, asks sell YES (≡ buy NO at 1 − p). Fills print at the resting
order's price; the crossing part of an order is taker and the remainder rests as maker. The engine is
pure: no IO, no clock (``now_us`` is an argument) and trade ids come from an injected callable, so a run
is deterministic. Units: prices ints of $0.0001, counts ints of 1/100 contract, money ints of $0.0001.

Layout: per side a sorted list of active prices (``bisect``; best bid last, best ask first) and per price
a ``_Level`` holding a FIFO deque of ``(priority, order)`` entries plus its exact resting size, and an
order_id → order dict. A cancel is O(1) plus a bisect when its level empties, by lazy deletion: the
entry stays in the deque and is skipped when it reaches the front (it is stale once the order is no
longer RESTING or has a new priority); a level whose live count hits zero is dropped with its deque,
and a deque with many stale entries is compacted (amortised O(1) per cancel).

Semantics chosen where the reference leaves room (see also the method docstrings):

* Counts: ``initial_count`` is the order's current total size (as placed, or as last amended or
  decreased), so a RESTING or EXECUTED order has ``initial = fill + remaining``. A CANCELED order has
  ``remaining_count`` 0 (remaining means "on the book"); ``initial − fill`` is what the cancel removed.
* IOC/FOK: fully filled → EXECUTED, any remainder → CANCELED (even after partial fills).
* FOK + STP: the volume check counts only *other users'* crossing orders, so a FOK never partially fills
  for lack of volume. Under ``taker_at_cross`` it can still meet its own order mid-walk; it then stops
  and keeps its partial fills (§5 "a self-crossing FOK keeps its partial fills"). Under ``maker`` the
  user's resting orders are cancelled as they are met and the FOK fills fully.
* Fill costs (``taker_fill_cost`` / ``maker_fill_cost``): see :func:`fill_costs`; rounding only occurs
  for sub-cent prices with fractional counts, and each fill still funds exactly $1 per contract.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from itertools import count as _counter
from typing import Final

from mm.domain.errors import InvalidPriceError, InvalidQuantityError
from mm.domain.price import PRICE_SCALE, QTY_SCALE
from mm.domain.ticks import TickGrid
from mm.sim.types import BookChange, BookSide, OrderStatus, SelfTradePrevention, SimOrder, TimeInForce, Trade

POST_ONLY_CROSS: Final = "POST_ONLY_CROSS"
FOK_INSUFFICIENT_VOLUME: Final = "FOK_INSUFFICIENT_VOLUME"
SELF_CROSS_ATTEMPT: Final = "SELF_CROSS_ATTEMPT"

# Module globals: `x is _BID` is the cheapest test on the hot path.
_BID: Final = BookSide.BID
_ASK: Final = BookSide.ASK
_RESTING: Final = OrderStatus.RESTING
_EXECUTED: Final = OrderStatus.EXECUTED
_CANCELED: Final = OrderStatus.CANCELED
_GTC: Final = TimeInForce.GOOD_TILL_CANCELED
_FOK: Final = TimeInForce.FILL_OR_KILL
_STP_TAKER: Final = SelfTradePrevention.TAKER_AT_CROSS
_DOLLAR_PER_COUNT: Final = PRICE_SCALE // QTY_SCALE  # $1 per contract, in $0.0001 per 1/100 contract


def fill_costs(price: int, count: int) -> tuple[int, int]:
    """(YES cost, NO cost) in $0.0001 of a fill of ``count`` (1/100 contract) at YES ``price`` ($0.0001).

    The YES cost is ``price × count / 100`` rounded to the nearest unit (ties up); the NO cost is the exact
    complement, so the two always sum to $1 per contract.
    """
    yes = (price * count + 50) // 100
    return yes, count * _DOLLAR_PER_COUNT - yes


@dataclass(frozen=True, slots=True)
class MatchResult:
    """What one submit or amend did.

    ``reject_reason`` (``POST_ONLY_CROSS`` / ``FOK_INSUFFICIENT_VOLUME``) means nothing traded: a submitted
    order is then CANCELED; an amend is refused and the order is left exactly as it was (still RESTING).
    ``cancel_reason`` is ``SELF_CROSS_ATTEMPT`` when ``taker_at_cross`` STP cancelled the remainder (fills
    before that point stand).
    """

    order: SimOrder
    trades: tuple[Trade, ...]
    book_changes: tuple[BookChange, ...]
    """Every change of resting size, in order; consecutive changes at one level are merged."""
    updated_makers: tuple[SimOrder, ...]
    """Resting orders that were filled (partly or fully) or cancelled by ``maker`` STP, in order."""
    reject_reason: str | None = None
    cancel_reason: str | None = None


class _Level:
    """One price level: FIFO of ``(priority, order)`` entries (some possibly stale), exact size, live count."""

    __slots__ = ("live", "queue", "size")

    def __init__(self) -> None:
        self.queue: deque[tuple[int, SimOrder]] = deque()
        self.size = 0  # 1/100 contract resting here: exact even while stale entries linger
        self.live = 0  # RESTING orders whose current entry is in ``queue``


class _Side:
    """The levels of one side of the book; ``prices`` ascending (best bid is last, best ask first)."""

    __slots__ = ("levels", "prices")

    def __init__(self) -> None:
        self.levels: dict[int, _Level] = {}
        self.prices: list[int] = []

    def add(self, order: SimOrder) -> None:
        level = self.levels.get(order.price)
        if level is None:
            level = self.levels[order.price] = _Level()
            insort(self.prices, order.price)
        level.queue.append((order.priority, order))
        level.size += order.remaining_count
        level.live += 1

    def remove(self, order: SimOrder) -> None:
        """Take a RESTING ``order`` (state not yet changed by the caller) off its level."""
        level = self.levels[order.price]
        level.size -= order.remaining_count
        level.live -= 1
        if not level.live:
            self.drop(order.price)
        elif level.queue[0][1] is order:
            level.queue.popleft()
        elif len(level.queue) > 2 * level.live + 16:
            # Bound the garbage a long-lived front order lets accumulate behind it.
            level.queue = deque(e for e in level.queue if e[1] is not order and _live(e))

    def drop(self, price: int) -> None:
        del self.levels[price]
        del self.prices[bisect_left(self.prices, price)]


def _live(entry: tuple[int, SimOrder]) -> bool:
    return entry[1].status is _RESTING and entry[1].priority == entry[0]


def _retire(order: SimOrder, status: OrderStatus, now_us: int) -> None:
    """Close an order. Remaining means "on the book", so it becomes 0; the canceled part is initial − fill."""
    order.status = status
    order.remaining_count = 0
    order.updated_us = now_us


def _push(changes: list[BookChange], side: BookSide, price: int, delta: int) -> None:
    """Append a book change, merging it into the previous one when it is at the same level."""
    if changes:
        last = changes[-1]
        if last.price == price and last.side is side:
            merged = last.delta + delta
            if merged:
                changes[-1] = BookChange(side, price, merged)
            else:
                changes.pop()
            return
    changes.append(BookChange(side, price, delta))


class MatchingEngine:
    """Price-time priority matching for one market. See the module docstring for units and semantics."""

    __slots__ = ("_asks", "_bids", "_grid", "_orders", "_resting", "_seq", "_trade_ids", "ticker")

    def __init__(self, ticker: str, grid: TickGrid, trade_ids: Callable[[], str]) -> None:
        self.ticker = ticker
        self._grid = grid
        self._trade_ids = trade_ids
        self._bids = _Side()
        self._asks = _Side()
        self._orders: dict[str, SimOrder] = {}  # every order ever seen, for `get`
        self._resting: dict[str, SimOrder] = {}
        self._seq = _counter(1).__next__  # time priority: lower goes first

    # -- queries ---------------------------------------------------------------------------------------

    def get(self, order_id: str) -> SimOrder:
        """Any order this engine has seen (resting, executed or canceled); ``KeyError`` if unknown."""
        return self._orders[order_id]

    def forget(self, order_id: str) -> None:
        """Drop a finished (executed or canceled) order from ``get``'s memory, to bound a long run's memory."""
        if order_id in self._resting:
            raise ValueError(f"order {order_id!r} is resting: cancel it first")
        self._orders.pop(order_id, None)

    def resting(self, user_id: str | None = None) -> list[SimOrder]:
        """RESTING orders, of one user if given."""
        return [o for o in self._resting.values() if user_id is None or o.user_id == user_id]

    def levels(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """(YES bids, YES asks) as ``(price $0.0001, size 1/100 contract)``, each sorted best first."""
        bids, asks = self._bids, self._asks
        return (
            [(p, bids.levels[p].size) for p in reversed(bids.prices)],
            [(p, asks.levels[p].size) for p in asks.prices],
        )

    def queue_ahead(self, order_id: str) -> int:
        """Size (1/100 contract) resting ahead of a RESTING order at its price level, i.e. with earlier priority.

        ``KeyError`` if unknown, ``ValueError`` if not resting. Walks the order's level up to the order.
        """
        order = self._resting_order(order_id)
        ahead = 0
        for entry in self._book(order.side).levels[order.price].queue:
            if entry[1] is order and entry[0] == order.priority:
                break
            if _live(entry):
                ahead += entry[1].remaining_count
        return ahead

    def best_bid(self) -> int | None:
        return self._bids.prices[-1] if self._bids.prices else None

    def best_ask(self) -> int | None:
        return self._asks.prices[0] if self._asks.prices else None

    # -- order operations ------------------------------------------------------------------------------

    def submit(self, order: SimOrder, now_us: int) -> MatchResult:
        """Match a new order, then rest (GTC) or cancel (IOC/FOK) the remainder.

        Raises ``ValueError`` (``InvalidPriceError`` / ``InvalidQuantityError`` for price / count) before
        touching anything if the order is invalid or its id is already known.
        """
        if order.ticker != self.ticker:
            raise ValueError(f"order ticker {order.ticker!r} does not match market {self.ticker!r}")
        if order.order_id in self._orders:
            raise ValueError(f"duplicate order id {order.order_id!r}")
        self._check_price(order.price)
        if order.initial_count <= 0:
            raise InvalidQuantityError(f"order count must be positive, got {order.initial_count} (1/100 contract)")
        if order.fill_count or order.remaining_count != order.initial_count:
            raise ValueError("a new order must have fill_count 0 and remaining_count == initial_count")
        order.priority = self._seq()
        order.created_us = order.updated_us = now_us
        order.status = _RESTING
        self._orders[order.order_id] = order
        reason = None
        if order.post_only and self._crosses(order.side, order.price):
            reason = POST_ONLY_CROSS
        elif order.time_in_force is _FOK and not self._fok_fillable(order):
            reason = FOK_INSUFFICIENT_VOLUME
        if reason is not None:
            _retire(order, _CANCELED, now_us)
            return MatchResult(order, (), (), (), reject_reason=reason)
        return self._execute(order, now_us, [])

    def cancel(self, order_id: str, now_us: int) -> tuple[SimOrder, tuple[BookChange, ...]]:
        """Cancel a RESTING order: ``KeyError`` if unknown, ``ValueError`` if it is no longer resting."""
        order = self._resting_order(order_id)
        change = BookChange(order.side, order.price, -order.remaining_count)
        self._book(order.side).remove(order)
        del self._resting[order_id]
        _retire(order, _CANCELED, now_us)
        return order, (change,)

    def decrease(
        self, order_id: str, now_us: int, *, reduce_by: int | None = None, reduce_to: int | None = None
    ) -> tuple[SimOrder, tuple[BookChange, ...]]:
        """Lower a resting order's remaining count (1/100 contract), keeping its queue priority.

        Exactly one of ``reduce_by`` (> 0) / ``reduce_to`` (≥ 0) must be given, and it may not increase
        the order. Reducing to 0 cancels. ``initial_count`` drops by the same amount, as after an amend.
        """
        if (reduce_by is None) == (reduce_to is None):
            raise ValueError("exactly one of reduce_by or reduce_to must be given")
        order = self._resting_order(order_id)
        target = order.remaining_count - reduce_by if reduce_by is not None else reduce_to
        assert target is not None
        if (reduce_by is not None and reduce_by <= 0) or not 0 <= target <= order.remaining_count:
            raise InvalidQuantityError(
                f"invalid decrease of order {order_id!r} (remaining {order.remaining_count}): "
                f"reduce_by={reduce_by}, reduce_to={reduce_to} (1/100 contract; may not increase it)"
            )
        if target == 0:
            return self.cancel(order_id, now_us)
        delta = target - order.remaining_count
        self._book(order.side).levels[order.price].size += delta
        order.remaining_count = target
        order.initial_count += delta
        order.updated_us = now_us
        return order, (BookChange(order.side, order.price, delta),) if delta else ()

    def amend(self, order_id: str, now_us: int, *, price: int, total_count: int) -> MatchResult:
        """Change a resting order's price and/or size; ``total_count`` is the new fill + remaining.

        Same price and a remaining size not larger keeps queue priority; anything else goes to the back of
        the queue at the new price, and a crossing price trades first like a new taker order (the order's
        STP applies). A ``post_only`` order amended to a crossing price is refused with ``POST_ONLY_CROSS``
        and left unchanged. ``initial_count`` becomes ``total_count``.
        """
        order = self._resting_order(order_id)
        self._check_price(price)
        remaining = total_count - order.fill_count
        if remaining <= 0:
            raise InvalidQuantityError(
                f"amended count {total_count} must exceed the filled count {order.fill_count} (1/100 contract)"
            )
        side = order.side
        if price == order.price and remaining <= order.remaining_count:
            delta = remaining - order.remaining_count
            self._book(side).levels[price].size += delta
            order.remaining_count = remaining
            order.initial_count = total_count
            order.updated_us = now_us
            return MatchResult(order, (), (BookChange(side, price, delta),) if delta else (), ())
        if order.post_only and self._crosses(side, price):
            return MatchResult(order, (), (), (), reject_reason=POST_ONLY_CROSS)
        changes = [BookChange(side, order.price, -order.remaining_count)]
        self._book(side).remove(order)
        del self._resting[order_id]
        order.price = price
        order.remaining_count = remaining
        order.initial_count = total_count
        order.priority = self._seq()
        order.updated_us = now_us
        return self._execute(order, now_us, changes)

    def cancel_all(self, now_us: int, user_id: str | None = None) -> list[tuple[SimOrder, tuple[BookChange, ...]]]:
        """Cancel every resting order (of one user if given), in the order they were placed or re-queued."""
        return [self.cancel(o.order_id, now_us) for o in self.resting(user_id)]

    # -- internals -------------------------------------------------------------------------------------

    def _check_price(self, price: int) -> None:
        if not self._grid.contains(price):
            raise InvalidPriceError(
                f"price {price} ($0.0001 units) is off this market's tick grid or outside (0, {PRICE_SCALE})"
            )

    def _book(self, side: BookSide) -> _Side:
        return self._bids if side is _BID else self._asks

    def _resting_order(self, order_id: str) -> SimOrder:
        order = self._orders[order_id]
        if order.status is not _RESTING:
            raise ValueError(f"order {order_id!r} is {order.status.value}, not resting")
        return order

    def _crosses(self, side: BookSide, price: int) -> bool:
        """Whether an order at ``price`` on ``side`` would take (any opposite order, own ones included)."""
        if side is _BID:
            return bool(self._asks.prices) and self._asks.prices[0] <= price
        return bool(self._bids.prices) and self._bids.prices[-1] >= price

    def _fok_fillable(self, order: SimOrder) -> bool:
        """Whether other users' crossing volume covers the whole order (own orders are not counted)."""
        need, user, is_bid = order.remaining_count, order.user_id, order.side is _BID
        book = self._asks if is_bid else self._bids
        prices = book.prices  # the walk order does not matter: this is a sum over every crossing level
        cut = bisect_right(prices, order.price) if is_bid else bisect_left(prices, order.price)
        for price in prices[:cut] if is_bid else prices[cut:]:
            for entry in book.levels[price].queue:
                maker = entry[1]
                if maker.user_id != user and _live(entry):
                    need -= maker.remaining_count
                    if need <= 0:
                        return True
        return False

    def _execute(self, order: SimOrder, now_us: int, changes: list[BookChange]) -> MatchResult:
        """Match ``order`` (already registered, not on the book), then rest, execute or cancel it."""
        trades: list[Trade] = []
        makers: list[SimOrder] = []
        self_cross = self._match(order, now_us, trades, changes, makers)
        cancel_reason = None
        if not order.remaining_count:
            order.status = _EXECUTED
        elif self_cross:
            _retire(order, _CANCELED, now_us)
            cancel_reason = SELF_CROSS_ATTEMPT
        elif order.time_in_force is _GTC:
            self._book(order.side).add(order)
            self._resting[order.order_id] = order
            _push(changes, order.side, order.price, order.remaining_count)
        else:  # IOC / FOK remainder
            _retire(order, _CANCELED, now_us)
        return MatchResult(order, tuple(trades), tuple(changes), tuple(makers), cancel_reason=cancel_reason)

    def _match(
        self, taker: SimOrder, now_us: int, trades: list[Trade], changes: list[BookChange], makers: list[SimOrder]
    ) -> bool:
        """Fill ``taker`` against the opposite side while it crosses; True if stopped by taker_at_cross STP."""
        is_bid = taker.side is _BID
        book = self._asks if is_bid else self._bids
        maker_side = _ASK if is_bid else _BID
        prices, levels, resting = book.prices, book.levels, self._resting
        limit, user, ticker = taker.price, taker.user_id, self.ticker
        while taker.remaining_count and prices:
            price = prices[0] if is_bid else prices[-1]
            if (price > limit) if is_bid else (price < limit):
                break
            level = levels[price]
            queue = level.queue
            while taker.remaining_count and level.live:
                priority, maker = queue[0]
                if maker.status is not _RESTING or maker.priority != priority:
                    queue.popleft()  # stale: cancelled or re-queued since it was appended
                    continue
                if maker.user_id == user:
                    if taker.stp is _STP_TAKER:
                        return True
                    queue.popleft()
                    level.live -= 1
                    level.size -= maker.remaining_count
                    _push(changes, maker_side, price, -maker.remaining_count)
                    _retire(maker, _CANCELED, now_us)
                    del resting[maker.order_id]
                    makers.append(maker)
                    continue
                qty = min(taker.remaining_count, maker.remaining_count)
                yes_cost, no_cost = fill_costs(price, qty)
                taker.remaining_count -= qty
                taker.fill_count += qty
                maker.remaining_count -= qty
                maker.fill_count += qty
                taker.taker_fill_cost += yes_cost if is_bid else no_cost
                maker.maker_fill_cost += no_cost if is_bid else yes_cost
                maker.updated_us = now_us
                level.size -= qty
                if not maker.remaining_count:
                    maker.status = _EXECUTED
                    queue.popleft()
                    level.live -= 1
                    del resting[maker.order_id]
                trade_id = self._trade_ids()
                trades.append(Trade(trade_id, ticker, price, qty, taker.order_id, maker.order_id, user, maker.user_id,
                                    taker.side, now_us))  # fmt: skip
                _push(changes, maker_side, price, -qty)
                makers.append(maker)
            if not level.live:
                book.drop(price)
        return False
