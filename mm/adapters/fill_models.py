"""Simulated fills for orders that never reach a venue (FR-604), shared by paper trading and backtests.

Pure logic: no IO, no clock, no asyncio; randomness only from a generator the caller seeds (the queue
model's optional ``rng``, which backtests use for their ``probabilistic`` mode). A model is fed the same
market data a venue would show us — book states and public trades — plus our virtual orders, and answers
which of those orders filled, how much and at what price, as :class:`SimFill` values. The caller
(``PaperExecution`` live, a backtester replaying recorded books and trades) owns the orders and applies the
fills; a model never mutates an :class:`Order`. Everything is in YES-book terms
(:meth:`OrderRequest.yes_book`): a NO order is the YES-book order it is equivalent to, so one code path
serves both contracts.

Four models (ADR 014, ADR 021):

* :class:`CrossFillModel` (``cross``) — the requirements' top-of-book rule: a resting YES-book bid fills
  when the best YES ask reaches it, at that ask, for ``min(remaining, ask size)``; asks symmetrically.
  Within one book update the liquidity one of our orders took is not offered to the next (price, then
  time priority); the next update offers the levels afresh. Optimistic: it assumes we sit at the front
  of every queue and that a displayed cross would have traded with us.
* :class:`TradeThroughFillModel` (``trade_through``, the default) — a resting order fills only when a
  public trade prints strictly through its price: an ask at P from a taker *buy* printed above P, a bid
  at P from a taker *sell* printed below P. It fills at its own limit price, up to the printed size, which
  is consumed once across all our orders. A touch (a print at our price) never fills; a book that merely
  crosses our price never fills.
* :class:`TouchFillModel` (``touch``) — the optimistic bound: we are always at the front of the queue. A print
  *at or through* our price fills us (up to its size, consumed once across our orders), and the top-of-book
  rule of ``cross`` applies too. On real data a book rarely crosses a resting price (the trade happens
  instead), so ``cross`` alone fills less than a queue estimate; ``touch`` does not. A backtest's
  ``optimistic`` mode.
* :class:`QueueFillModel` (``queue``) — hftbacktest's probabilistic queue position: when an order rests
  we record the size queued ahead of it at its price; trades at our price eat that queue first and then
  fill us; other decreases of the level are split between ahead and behind us by
  ``f(ahead) / (f(ahead) + f(behind))``. Trades strictly through our price fill us as in
  ``trade_through``.

In every model, an order that crosses the book when placed or amended takes liquidity at once, as a
taker, against the top of the book (:func:`taker_fill`) — that is what a real venue does — unless the
caller refuses it as post-only.

Calling convention: ``resting`` holds the live orders of *one* market (the book's or the trade's), in time
priority (oldest first); models sort by price themselves, stably. Passive fills are ``is_taker=False``.
"""

from __future__ import annotations

import math
import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar, Final, Literal, get_args

from mm.domain.book import OrderBook
from mm.domain.events import PublicTrade
from mm.domain.orders import Order
from mm.domain.price import PRICE_SCALE
from mm.domain.sides import BookSide, OrderSide, Side

__all__ = [
    "FILL_MODEL_NAMES",
    "CrossFillModel",
    "FillModel",
    "FillModelName",
    "LogQueueShare",
    "PowerQueueShare",
    "QueueFillModel",
    "QueueShare",
    "SimFill",
    "TouchFillModel",
    "TradeThroughFillModel",
    "by_priority",
    "crosses",
    "fill_model_from_name",
    "fully_available",
    "level_size",
    "order_key",
    "taker_fill",
]

FillModelName = Literal["cross", "trade_through", "queue", "touch"]
FILL_MODEL_NAMES: Final[tuple[str, ...]] = get_args(FillModelName)

_BID: Final = BookSide.BID
_ASK: Final = BookSide.ASK


@dataclass(frozen=True, slots=True)
class SimFill:
    """One simulated execution: ``quantity_units`` (1/100 contract) of order ``order_id`` at a YES-book price.

    The caller turns it into a :class:`~mm.domain.orders.Fill` in the order's own contract (a NO order's
    price is ``1 − yes_price``).
    """

    order_id: str
    yes_price_units: int
    quantity_units: int
    is_taker: bool


# ---------------------------------------------------------------------------------------------- helpers


def order_key(order: Order) -> str:
    """The id a model knows an order by: its exchange order id (client order id before an ack)."""
    return order.exchange_order_id or order.client_order_id


def _opposite(bs: BookSide, book: OrderBook) -> tuple[int, int] | None:
    """The best level an order on ``bs`` would take: (YES price, size) of the best YES ask for a bid, of
    the best YES bid for an ask; None when that side is empty."""
    if bs is _BID:
        price, size = book.best_yes_ask, book.best_yes_ask_size
    else:
        price, size = book.best_yes_bid, book.best_yes_bid_size
    return None if price is None or size <= 0 else (price, size)


def _reaches(bs: BookSide, yes_price: int, level_price: int) -> bool:
    return yes_price >= level_price if bs is _BID else yes_price <= level_price


def crosses(order: Order, book: OrderBook) -> bool:
    """Whether ``order`` would take liquidity from ``book``'s top level on the other side."""
    bs, yes_price = order.request.yes_book()
    level = _opposite(bs, book)
    return level is not None and _reaches(bs, yes_price.units, level[0])


def fully_available(order: Order, book: OrderBook) -> bool:
    """Whether the top opposite level alone could fill all of ``order``'s remainder (fill-or-kill)."""
    bs, _ = order.request.yes_book()
    level = _opposite(bs, book)
    return level is not None and level[1] >= order.remaining.units


def taker_fill(order: Order, book: OrderBook) -> SimFill | None:
    """What a crossing order takes on arrival: the top opposite level's price, ``min(remaining, size)``.

    Only the best level is taken (the requirements' top-of-book rule); a remainder rests at the order's
    price. None when the order does not cross.
    """
    bs, yes_price = order.request.yes_book()
    level = _opposite(bs, book)
    if level is None or not _reaches(bs, yes_price.units, level[0]):
        return None
    size = min(order.remaining.units, level[1])
    return SimFill(order_key(order), level[0], size, True) if size > 0 else None


def level_size(book: OrderBook, bs: BookSide, yes_price_units: int) -> int:
    """Size others have resting on our side of the book at our YES price (1/100 contracts).

    A YES-book bid at P queues among the YES bids at P; a YES-book ask at P among the NO bids at 1 − P.
    Walks at most from the best level down to ours (``OrderBook`` has no public per-level lookup).
    """
    if bs is _BID:
        side, price, best = Side.YES, yes_price_units, book.best_yes_bid
    else:
        side, price, best = Side.NO, PRICE_SCALE - yes_price_units, book.best_no_bid
    if best is None or price > best:
        return 0
    grid = book.grid
    top, ours = grid.index_of(best), grid.index_of(price)
    if ours < 0:
        return 0
    for level_price, size in book.depth(side, top - ours + 1):
        if level_price == price:
            return size
        if level_price < price:
            break
    return 0


def _price_key(order: Order) -> int:
    bs, yes_price = order.request.yes_book()
    # Bids: highest first; asks: lowest first. Bids and asks never compete for the same liquidity, so
    # one sort serves both.
    return -yes_price.units if bs is _BID else yes_price.units


def by_priority(orders: Iterable[Order]) -> list[Order]:
    """Price priority, then the input order (time priority): ``sorted`` is stable."""
    return sorted(orders, key=_price_key)


# ---------------------------------------------------------------------------------------------- models


class FillModel(ABC):
    """How resting virtual orders fill from market data. Subclasses keep whatever per-order state they need.

    Lifecycle calls, all optional for stateless models: :meth:`on_placed` once an order rests (after any
    taker fill, only when something remains), :meth:`on_cancelled` when it stops resting for any reason
    other than a fill the model reported (cancel, or an amend that loses queue priority — followed by a new
    :meth:`on_placed`).
    """

    name: ClassVar[FillModelName]

    def on_placed(self, order: Order, book: OrderBook | None) -> None:  # noqa: B027 - optional hook
        """``order`` now rests; ``book`` is the market's book at that moment (None when none is known)."""

    def on_cancelled(self, order_id: str) -> None:  # noqa: B027 - optional hook
        """The order with this :func:`order_key` no longer rests."""

    @abstractmethod
    def on_book(self, book: OrderBook, resting: Sequence[Order]) -> list[SimFill]:
        """The market's book changed (read ``book`` now: it may be a live reference)."""

    @abstractmethod
    def on_trade(self, trade: PublicTrade, resting: Sequence[Order]) -> list[SimFill]:
        """A public trade printed; orders of other markets in ``resting`` are ignored."""


class CrossFillModel(FillModel):
    """The top-of-book crossing rule (see the module docstring): fills on book updates, at the book's price."""

    name = "cross"

    def on_book(self, book: OrderBook, resting: Sequence[Order]) -> list[SimFill]:
        levels = {bs: _opposite(bs, book) for bs in BookSide}
        left = {bs: (lv[1] if lv is not None else 0) for bs, lv in levels.items()}
        fills: list[SimFill] = []
        for order in by_priority(resting):
            bs, yes_price = order.request.yes_book()
            level = levels[bs]
            if level is None or left[bs] <= 0 or not _reaches(bs, yes_price.units, level[0]):
                continue
            size = min(order.remaining.units, left[bs])
            if size <= 0:
                continue
            left[bs] -= size
            fills.append(SimFill(order_key(order), level[0], size, False))
        return fills

    def on_trade(self, trade: PublicTrade, resting: Sequence[Order]) -> list[SimFill]:
        return []  # the crossing rule looks at books only


class _TapeModel(FillModel):
    """Shared tape matching: one print's size is handed out once, in price-then-time priority."""

    def _at_price(self, order: Order, printed: int, taken: int) -> int:
        """How much of a print *at* our price may fill ``order`` (after ``taken`` went to better orders)."""
        return 0

    def on_trade(self, trade: PublicTrade, resting: Sequence[Order]) -> list[SimFill]:
        # A taker buying YES lifts asks: it can fill our asks priced at or below the print; a taker selling
        # YES hits bids at or above it.
        ours = _ASK if trade.taker_side is OrderSide.BUY else _BID
        printed, price = trade.quantity.units, trade.price.units
        taken = 0
        fills: list[SimFill] = []
        for order in by_priority(o for o in resting if o.request.market_id == trade.market_id):
            bs, yes_price = order.request.yes_book()
            p = yes_price.units
            if bs is not ours:
                continue
            if p == price:
                available = self._at_price(order, printed, taken)
            elif (p < price) if bs is _ASK else (p > price):
                # Strictly through: had our order been there, the taker would have met it first.
                available = printed - taken
            else:
                continue
            size = min(order.remaining.units, available)
            if size > 0:
                taken += size
                fills.append(SimFill(order_key(order), p, size, False))
                if size == order.remaining.units:
                    self.on_cancelled(order_key(order))  # filled: forget any per-order state
        return fills


class TradeThroughFillModel(_TapeModel):
    """The default: fills only from public trades printed strictly through our price, at our price."""

    name = "trade_through"

    def on_book(self, book: OrderBook, resting: Sequence[Order]) -> list[SimFill]:
        return []  # a displayed cross is not a trade: never fill on the book alone


class TouchFillModel(_TapeModel):
    """Front of every queue: prints at or through our price fill us, and so does a book that crosses us."""

    name = "touch"

    def __init__(self) -> None:
        self._cross = CrossFillModel()

    def _at_price(self, order: Order, printed: int, taken: int) -> int:
        return printed - taken  # nobody ahead of us

    def on_book(self, book: OrderBook, resting: Sequence[Order]) -> list[SimFill]:
        return self._cross.on_book(book, resting)


# ---------------------------------------------------------------------------------------------- queue model

QueueShare = Callable[[int, int], float]
"""``share(ahead, behind)``: the fraction of a level decrease (not explained by trades) taken from the orders
ahead of ours, in [0, 1]."""


@dataclass(frozen=True, slots=True)
class PowerQueueShare:
    """``f(ahead) / (f(ahead) + f(behind))`` with ``f(x) = x ** n`` (hftbacktest's power probability).

    ``n = 0`` splits evenly; larger ``n`` assumes cancels come mostly from the longer side (a big queue ahead
    of us shrinks faster). 1 is proportional to size.
    """

    n: float = 2.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.n) and self.n >= 0):
            raise ValueError(f"queue power n must be a finite number >= 0, got {self.n!r}")

    def __call__(self, ahead: int, behind: int) -> float:
        fa, fb = float(ahead) ** self.n, float(behind) ** self.n
        return fa / (fa + fb) if fa + fb > 0 else 1.0


@dataclass(frozen=True, slots=True)
class LogQueueShare:
    """``f(ahead) / (f(ahead) + f(behind))`` with ``f(x) = log(1 + x)`` (hftbacktest's log probability)."""

    def __call__(self, ahead: int, behind: int) -> float:
        fa, fb = math.log1p(ahead), math.log1p(behind)
        return fa / (fa + fb) if fa + fb > 0 else 1.0


@dataclass(slots=True)
class _QueuePos:
    """Mutable per-order queue estimate (1/100 contracts). ``None``: not known until a book is seen."""

    ahead: int | None
    level: int | None
    """The level's size (others only: we are virtual) when last observed."""
    traded: int = 0
    """Printed at our price since ``level`` was observed: the next book decrease already contains it."""


class QueueFillModel(_TapeModel):
    """hftbacktest-style probabilistic queue position (``ProbQueueModel``), deterministic expected values.

    * On placement, ``ahead`` = the size others have at our price (we join the back of the queue). An order
      placed before any book is known learns it from the first book (everyone there counted ahead).
    * A trade printed at our price, on our side, consumes ``ahead`` first; what the print has left fills us
      (less what our better-priced or earlier orders took from the same print).
    * A book decrease at our level not explained by those trades, ``chg``, takes
      ``floor(share(ahead, behind) × chg)`` from ahead (rounded in favour of the queue, against us). An
      increase joins behind us. ``ahead`` never exceeds the level's size, so a decrease larger than those
      behind us can absorb comes from ahead.
    * Trades strictly through our price fill us as in ``trade_through``; the book alone never fills.

    Assumes a trade is seen before the book change it caused (as hftbacktest does); a feed that delivers the
    book change first advances our queue position twice for that size (optimistic).

    With ``rng`` (a seeded generator) the model is *random* instead of taking expected values: each decrease is
    one cancel that came wholly from ahead of us with probability ``share(ahead, behind)``, else from behind —
    the same expectation, but runs differ by seed the way real queue luck does (a backtest's
    ``probabilistic`` mode). The same seed gives the same fills.
    """

    name = "queue"

    def __init__(self, share: QueueShare | None = None, *, rng: random.Random | None = None) -> None:
        self.share: QueueShare = share if share is not None else PowerQueueShare()
        self._rng = rng
        self._queue: dict[str, _QueuePos] = {}

    def queue_ahead(self, order_id: str) -> int | None:
        """The estimated size ahead of a resting order (None when unknown or not resting)."""
        pos = self._queue.get(order_id)
        return None if pos is None else pos.ahead

    def on_placed(self, order: Order, book: OrderBook | None) -> None:
        if book is None:
            self._queue[order_key(order)] = _QueuePos(None, None)
            return
        bs, yes_price = order.request.yes_book()
        size = level_size(book, bs, yes_price.units)
        self._queue[order_key(order)] = _QueuePos(size, size)

    def on_cancelled(self, order_id: str) -> None:
        self._queue.pop(order_id, None)

    def on_book(self, book: OrderBook, resting: Sequence[Order]) -> list[SimFill]:
        sizes: dict[tuple[BookSide, int], int] = {}
        for order in resting:
            bs, yes_price = order.request.yes_book()
            key = (bs, yes_price.units)
            new = sizes.get(key)
            if new is None:
                new = sizes[key] = level_size(book, bs, yes_price.units)
            pos = self._queue.get(order_key(order))
            if pos is None or pos.level is None or pos.ahead is None:
                # First sight of this order's level: everyone there is (pessimistically) ahead of us.
                ahead = new if pos is None or pos.ahead is None else min(pos.ahead, new)
                self._queue[order_key(order)] = _QueuePos(ahead, new)
                continue
            if new != pos.level:
                # An update elsewhere in the book says nothing about our queue; it must not drop the prints
                # at our price that the level's own decrease has yet to reflect.
                self._advance(pos, new)
        return []

    def _advance(self, pos: _QueuePos, new: int) -> None:
        assert pos.ahead is not None and pos.level is not None  # guaranteed by the caller
        after_trades = max(pos.level - pos.traded, 0)
        chg = after_trades - new  # not explained by prints at our price (already taken off ``ahead``)
        pos.level, pos.traded = new, 0
        if chg > 0:  # growth joins the back of the queue: only a decrease can move us up
            behind = max(after_trades - pos.ahead, 0)
            share = self.share(pos.ahead, behind)
            if self._rng is None:
                pos.ahead -= math.floor(share * chg)
            elif self._rng.random() < share:
                pos.ahead -= chg
        # The level cannot hold less than what is ahead of us. This also covers a decrease larger than
        # ``share`` leaves for those behind us when they hold less: the excess came from ahead.
        pos.ahead = max(min(pos.ahead, new), 0)

    def _at_price(self, order: Order, printed: int, taken: int) -> int:
        pos = self._queue.get(order_key(order))
        if pos is None or pos.ahead is None:
            return 0  # queue position unknown: a touch cannot be credited to us
        # The print consumed real orders ahead of us first (our virtual fills do not change the real queue).
        available = printed - pos.ahead - taken
        pos.ahead = max(pos.ahead - printed, 0)
        pos.traded += printed
        return available


_MODELS: Final[dict[str, Callable[[], FillModel]]] = {
    "cross": CrossFillModel,
    "trade_through": TradeThroughFillModel,
    "queue": QueueFillModel,
    "touch": TouchFillModel,
}


def fill_model_from_name(name: str) -> FillModel:
    """A fresh model for a configuration name: ``cross``, ``trade_through``, ``queue`` or ``touch`` (default
    parameters)."""
    factory = _MODELS.get(name)
    if factory is None:
        raise ValueError(f"fill model must be one of {', '.join(FILL_MODEL_NAMES)}, not {name!r}")
    return factory()
