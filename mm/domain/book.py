"""The order book of one binary market, in Kalshi's shape (FR-201; kalshi-api.md §8).

Kalshi publishes bids only: YES bids and NO bids. A NO bid at q is a YES ask at 1 − q, so the asks are
derived views: best YES ask = 1 − best NO bid (with that level's size), best NO ask = 1 − best YES bid.

Units throughout: prices are ints of $0.0001 (``PRICE_SCALE`` per dollar), sizes are ints of 1/100
contract, timestamps are ints of microseconds since the Unix epoch passed in by the caller (the book
never reads a clock, so replay is deterministic).

Layout (design.md §9): per side, one list of sizes indexed by the tick grid's level index plus the cached
index of the best (highest) non-empty level, -1 when the side is empty. A delta is an index lookup, an
add and at most a comparison; only a delta that empties the best level scans down to the next one.
Nothing is allocated per delta.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from mm.domain.errors import BookIntegrityError
from mm.domain.market import NEVER_UPDATED_US, MarketSnapshot
from mm.domain.price import PRICE_SCALE, Price, Quantity, units_to_dollars
from mm.domain.sides import Side
from mm.domain.ticks import TickGrid

_YES: Final = Side.YES  # module global: `side is _YES` is the cheapest side test on the hot path
_EMPTY: Final = -1


def _dollars(units: int) -> str:
    """$0.0001 units as a dollar string (``"0.5600"``); works for any int, on or off the grid."""
    return str(units_to_dollars(units))


def _describe(grid: TickGrid) -> str:
    """A grid's ranges in dollars for error messages, e.g. ``0.0000-0.1000 step 0.0010, ...``."""
    return ", ".join(f"{_dollars(r.start)}-{_dollars(r.end)} step {_dollars(r.step)}" for r in grid.ranges)


def _contracts(units: int) -> str:
    """1/100-contract units as a contract count string (``"10.50"``)."""
    return str(Decimal(units).scaleb(-2))


@dataclass(frozen=True, slots=True)
class BookLevel:
    """One price level of the book: ``price`` of the contract named by the view, ``size`` resting there."""

    price: Price
    size: Quantity


class _Ladder:
    """The bids of one side: ``sizes[level index]`` (1/100 contracts); ``best``: top non-empty index or -1."""

    __slots__ = ("best", "sizes")

    def __init__(self, sizes: list[int], best: int) -> None:
        self.sizes = sizes
        self.best = best


class OrderBook:
    """YES bids and NO bids of one binary market on a :class:`TickGrid`, with derived asks.

    Mutate with :meth:`apply_snapshot`, :meth:`apply_delta`, :meth:`replace_grid`, :meth:`clear`. Any
    input that cannot be right raises :class:`BookIntegrityError` and leaves the book as it was: the
    caller must then resync from the venue rather than trade on a book it knows is wrong.
    """

    __slots__ = ("_grid", "_index_of", "_last_update_us", "_no", "_yes")

    def __init__(self, grid: TickGrid) -> None:
        self._grid = grid
        # Bound once: saves an attribute lookup per delta.
        self._index_of = grid.index_of
        n = len(grid.levels)
        self._yes = _Ladder([0] * n, _EMPTY)
        self._no = _Ladder([0] * n, _EMPTY)
        self._last_update_us = NEVER_UPDATED_US

    # ------------------------------------------------------------------ mutation

    def apply_delta(self, side: Side, price_units: int, delta_units: int, ts_us: int) -> None:
        """Add ``delta_units`` (signed, 1/100 contract) to the ``side`` bid at ``price_units`` ($0.0001).

        A level that reaches exactly 0 is dropped. A result below 0 means our book has diverged from the
        venue's, and an off-grid price cannot be in the venue's book: both raise ``BookIntegrityError``
        with the book unchanged (``last_update_us`` included). A zero delta only advances ``ts_us``.
        """
        i = self._index_of(price_units)
        if i < 0:
            raise self._off_grid_error(side, price_units)
        ladder = self._yes if side is _YES else self._no
        sizes = ladder.sizes
        new = sizes[i] + delta_units
        if new > 0:
            sizes[i] = new
            if i > ladder.best:  # noqa: PLR1730 - a builtin max() call costs more than the compare
                ladder.best = i
        elif new == 0:
            sizes[i] = 0
            if i == ladder.best:
                # The best level emptied: walk down to the next non-empty one (rare, O(levels)).
                j = i - 1
                while j >= 0 and not sizes[j]:
                    j -= 1
                ladder.best = j
        else:
            raise BookIntegrityError(
                f"{side.name} bid at {_dollars(price_units)}: delta {_contracts(delta_units)} on "
                f"{_contracts(sizes[i])} contracts would leave {_contracts(new)}; book is out of sync"
            )
        self._last_update_us = ts_us

    def apply_snapshot(
        self,
        yes_levels: Iterable[tuple[int, int]],
        no_levels: Iterable[tuple[int, int]],
        ts_us: int,
    ) -> None:
        """Replace the whole book with these ``(price_units, size_units)`` bid levels, atomically.

        Every level is validated before anything changes: a price off the grid or outside (0, 1), a size
        that is not a positive int, or a price listed twice on one side raises ``BookIntegrityError`` and
        leaves the book unchanged. Levels may come in any order (Kalshi sends them ascending).
        """
        yes = self._build_ladder(Side.YES, yes_levels)
        no = self._build_ladder(Side.NO, no_levels)
        self._yes, self._no = yes, no
        self._last_update_us = ts_us

    def replace_grid(self, grid: TickGrid) -> None:
        """Move the book onto a new tick grid (``price_level_structure_updated``): resting levels carry over.

        A non-empty level that is not on the new grid raises ``BookIntegrityError``; the book is then
        unchanged and stays on its old grid. ``last_update_us`` is not changed: the levels are the same.
        """
        ladders = []
        for side, old in ((Side.YES, self._yes), (Side.NO, self._no)):
            sizes = [0] * len(grid.levels)
            best = _EMPTY
            for i, size in enumerate(old.sizes):
                if size:
                    price = self._grid.levels[i]
                    j = grid.index_of(price)
                    if j < 0:
                        raise BookIntegrityError(
                            f"{side.name} bid at {_dollars(price)} is not on the new tick grid {_describe(grid)}"
                        )
                    sizes[j] = size
                    best = max(best, j)
            ladders.append(_Ladder(sizes, best))
        self._grid = grid
        self._index_of = grid.index_of
        self._yes, self._no = ladders

    def clear(self) -> None:
        """Empty both sides and forget the last update time (the book then reads as never updated)."""
        n = len(self._grid.levels)
        self._yes = _Ladder([0] * n, _EMPTY)
        self._no = _Ladder([0] * n, _EMPTY)
        self._last_update_us = NEVER_UPDATED_US

    # ------------------------------------------------------------------ views (O(1) unless noted)

    @property
    def grid(self) -> TickGrid:
        return self._grid

    @property
    def last_update_us(self) -> int:
        """µs since the epoch of the last snapshot or delta (``ts_us`` as given); 0 if never updated."""
        return self._last_update_us

    @property
    def best_yes_bid(self) -> int | None:
        """Best YES bid in $0.0001 units, or None."""
        b = self._yes.best
        return self._grid.levels[b] if b >= 0 else None

    @property
    def best_yes_bid_size(self) -> int:
        """Size at the best YES bid in 1/100 contracts; 0 when there is none."""
        b = self._yes.best
        return self._yes.sizes[b] if b >= 0 else 0

    @property
    def best_no_bid(self) -> int | None:
        """Best NO bid in $0.0001 units, or None."""
        b = self._no.best
        return self._grid.levels[b] if b >= 0 else None

    @property
    def best_no_bid_size(self) -> int:
        """Size at the best NO bid in 1/100 contracts; 0 when there is none."""
        b = self._no.best
        return self._no.sizes[b] if b >= 0 else 0

    @property
    def best_yes_ask(self) -> int | None:
        """Best YES ask in $0.0001 units (= 1 − best NO bid), or None."""
        b = self._no.best
        return PRICE_SCALE - self._grid.levels[b] if b >= 0 else None

    @property
    def best_yes_ask_size(self) -> int:
        """Size at the best YES ask (= the best NO bid's size) in 1/100 contracts; 0 when there is none."""
        return self.best_no_bid_size

    @property
    def best_no_ask(self) -> int | None:
        """Best NO ask in $0.0001 units (= 1 − best YES bid), or None."""
        b = self._yes.best
        return PRICE_SCALE - self._grid.levels[b] if b >= 0 else None

    @property
    def best_no_ask_size(self) -> int:
        """Size at the best NO ask (= the best YES bid's size) in 1/100 contracts; 0 when there is none."""
        return self.best_yes_bid_size

    @property
    def yes_bid(self) -> BookLevel | None:
        return self._level(self._yes, complement=False)

    @property
    def yes_ask(self) -> BookLevel | None:
        return self._level(self._no, complement=True)

    @property
    def no_bid(self) -> BookLevel | None:
        return self._level(self._no, complement=False)

    @property
    def no_ask(self) -> BookLevel | None:
        return self._level(self._yes, complement=True)

    def mid(self) -> Decimal | None:
        """(YES bid + YES ask) / 2 in dollars, exact (5 decimals when the sum is odd).

        Returns None unless both a YES bid and a YES ask (a NO bid) exist.
        """
        yb, nb = self._yes.best, self._no.best
        if yb < 0 or nb < 0:
            return None
        levels = self._grid.levels
        total = levels[yb] + PRICE_SCALE - levels[nb]
        # Integer halving keeps the result exact without depending on the Decimal context's precision.
        if total % 2 == 0:
            return Decimal(total // 2).scaleb(-4)
        return Decimal(total * 5).scaleb(-5)

    def spread_units(self) -> int | None:
        """YES ask − YES bid in $0.0001 units (≤ 0 only if crossed), or None if either is missing."""
        yb, nb = self._yes.best, self._no.best
        if yb < 0 or nb < 0:
            return None
        levels = self._grid.levels
        return PRICE_SCALE - levels[nb] - levels[yb]

    def depth(self, side: Side, n: int) -> list[tuple[int, int]]:
        """Up to ``n`` bids of ``side`` as ``(price_units, size_units)``, best (highest) first. O(levels)."""
        if n < 0:
            raise ValueError(f"depth needs n >= 0, got {n}")
        ladder = self._yes if side is _YES else self._no
        sizes, levels = ladder.sizes, self._grid.levels
        out: list[tuple[int, int]] = []
        i = ladder.best
        while i >= 0 and len(out) < n:
            if sizes[i]:
                out.append((levels[i], sizes[i]))
            i -= 1
        return out

    @property
    def is_empty(self) -> bool:
        """True when neither side has a level."""
        return self._yes.best < 0 and self._no.best < 0

    @property
    def crossed(self) -> bool:
        """YES bid ≥ YES ask (YES bid + NO bid ≥ $1). A correct Kalshi feed never shows this: resync."""
        yb, nb = self._yes.best, self._no.best
        if yb < 0 or nb < 0:
            return False
        levels = self._grid.levels
        return levels[yb] + levels[nb] >= PRICE_SCALE

    def snapshot(self, market_id: str, now_us: int) -> MarketSnapshot:
        """The top of the YES book as a :class:`MarketSnapshot` taken at ``now_us`` (µs since the epoch)."""
        spread = self.spread_units()
        return MarketSnapshot(
            market_id=market_id,
            best_bid=_price_or_none(self.best_yes_bid),
            best_ask=_price_or_none(self.best_yes_ask),
            bid_size=Quantity(self.best_yes_bid_size),
            ask_size=Quantity(self.best_yes_ask_size),
            mid_price=self.mid(),
            spread=None if spread is None else units_to_dollars(spread),
            timestamp_us=now_us,
            last_update_us=self._last_update_us,
        )

    def __repr__(self) -> str:
        return f"OrderBook(yes_bid={self.yes_bid}, yes_ask={self.yes_ask}, last_update_us={self._last_update_us})"

    # ------------------------------------------------------------------ helpers

    def _level(self, ladder: _Ladder, *, complement: bool) -> BookLevel | None:
        b = ladder.best
        if b < 0:
            return None
        price = self._grid.levels[b]
        return BookLevel(Price(PRICE_SCALE - price if complement else price), Quantity(ladder.sizes[b]))

    def _off_grid_error(self, side: Side, price_units: int) -> BookIntegrityError:
        if not 0 < price_units < PRICE_SCALE:
            return BookIntegrityError(f"{side.name} bid at {_dollars(price_units)} is outside (0, 1)")
        return BookIntegrityError(
            f"{side.name} bid at {_dollars(price_units)} is off the tick grid {_describe(self._grid)}"
        )

    def _build_ladder(self, side: Side, levels: Iterable[tuple[int, int]]) -> _Ladder:
        sizes = [0] * len(self._grid.levels)
        best = _EMPTY
        for price_units, size_units in levels:
            i = self._index_of(price_units)
            if i < 0:
                raise self._off_grid_error(side, price_units)
            if type(size_units) is not int or size_units <= 0:
                raise BookIntegrityError(
                    f"{side.name} bid at {_dollars(price_units)} has size {size_units!r}; "
                    "snapshot sizes must be positive ints of 1/100 contract"
                )
            if sizes[i]:
                raise BookIntegrityError(f"{side.name} bid at {_dollars(price_units)} appears twice in the snapshot")
            sizes[i] = size_units
            best = max(best, i)
        return _Ladder(sizes, best)


def _price_or_none(units: int | None) -> Price | None:
    return None if units is None else Price(units)
