"""Property tests: the array book agrees with a naive dict book on every valid sequence of updates."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mm.domain.book import BookLevel, OrderBook
from mm.domain.errors import BookIntegrityError
from mm.domain.price import Price, Quantity
from mm.domain.sides import Side
from mm.domain.ticks import TickGrid

GRIDS = {
    "linear_cent": TickGrid.linear_cent(),
    "tapered_deci_cent": TickGrid.tapered_deci_cent(),
}
SIDES = (Side.YES, Side.NO)


class ReferenceBook:
    """The obvious implementation: a dict price → size per side; best = max of the keys."""

    def __init__(self) -> None:
        self.bids: dict[Side, dict[int, int]] = {Side.YES: {}, Side.NO: {}}
        self.ts = 0

    def snapshot(self, yes: dict[int, int], no: dict[int, int], ts: int) -> None:
        self.bids = {Side.YES: dict(yes), Side.NO: dict(no)}
        self.ts = ts

    def delta(self, side: Side, price: int, delta: int, ts: int) -> None:
        new = self.bids[side].get(price, 0) + delta
        assert new >= 0, "the generator must only produce valid deltas"
        if new:
            self.bids[side][price] = new
        else:
            self.bids[side].pop(price, None)
        self.ts = ts

    def best(self, side: Side) -> tuple[int | None, int]:
        levels = self.bids[side]
        if not levels:
            return None, 0
        p = max(levels)
        return p, levels[p]

    def views(self) -> tuple[Any, ...]:
        yb, yb_size = self.best(Side.YES)
        nb, nb_size = self.best(Side.NO)
        ya = None if nb is None else 10000 - nb
        na = None if yb is None else 10000 - yb
        mid = Decimal(yb + ya) / 2 / 10000 if yb is not None and ya is not None else None
        spread = ya - yb if yb is not None and ya is not None else None
        return (
            yb,
            yb_size,
            nb,
            nb_size,
            ya,
            nb_size,
            na,
            yb_size,
            None if yb is None else BookLevel(Price(yb), Quantity(yb_size)),
            None if ya is None else BookLevel(Price(ya), Quantity(nb_size)),
            None if nb is None else BookLevel(Price(nb), Quantity(nb_size)),
            None if na is None else BookLevel(Price(na), Quantity(yb_size)),
            mid,
            spread,
            sorted(self.bids[Side.YES].items(), reverse=True)[:5],
            sorted(self.bids[Side.NO].items(), reverse=True)[:5],
            not self.bids[Side.YES] and not self.bids[Side.NO],
            yb is not None and ya is not None and yb >= ya,
            self.ts,
        )


def book_views(book: OrderBook) -> tuple[Any, ...]:
    return (
        book.best_yes_bid,
        book.best_yes_bid_size,
        book.best_no_bid,
        book.best_no_bid_size,
        book.best_yes_ask,
        book.best_yes_ask_size,
        book.best_no_ask,
        book.best_no_ask_size,
        book.yes_bid,
        book.yes_ask,
        book.no_bid,
        book.no_ask,
        book.mid(),
        book.spread_units(),
        book.depth(Side.YES, 5),
        book.depth(Side.NO, 5),
        book.is_empty,
        book.crossed,
        book.last_update_us,
    )


sizes = st.integers(min_value=1, max_value=1_000_000)


def side_levels(grid: TickGrid) -> st.SearchStrategy[dict[int, int]]:
    return st.dictionaries(st.sampled_from(grid.levels), sizes, max_size=12)


# A delta step: (side, aim at an existing level?, level selector, raw delta, timestamp increment). It is
# turned into a valid delta against the reference state by `valid_delta`, so the whole sequence is one
# draw (fast, and it shrinks well).
DeltaOp = tuple[Side, bool, int, int, int]
delta_ops = st.tuples(
    st.sampled_from(SIDES),
    st.booleans(),
    st.integers(min_value=0, max_value=10_000),
    st.integers(min_value=-1_000_000, max_value=1_000_000),
    st.integers(min_value=1, max_value=1_000_000),
)


def valid_delta(op: DeltaOp, grid: TickGrid, ref: ReferenceBook) -> tuple[Side, int, int]:
    """A delta the venue could send: it never drives a level below zero."""
    side, at_existing, selector, raw, _ = op
    existing = ref.bids[side]
    if at_existing and existing:
        price = sorted(existing)[selector % len(existing)]
        # Clamping at -size makes "remove the level exactly" common, which exercises the downward scan.
        return side, price, max(raw, -existing[price])
    # Any level, new or not, with a non-negative delta; 0 exercises the no-op path.
    return side, grid.levels[selector % len(grid)], abs(raw)


def steps(grid: TickGrid) -> st.SearchStrategy[list[Any]]:
    snapshot_op = st.tuples(side_levels(grid), side_levels(grid), st.integers(min_value=1, max_value=10**6))
    # Mostly deltas, with an occasional fresh snapshot.
    step = st.one_of(snapshot_op, delta_ops, delta_ops, delta_ops, delta_ops, delta_ops, delta_ops)
    return st.lists(step, min_size=1, max_size=60)


@pytest.mark.parametrize("grid_name", sorted(GRIDS))
@settings(max_examples=120, deadline=None)
@given(data=st.data())
def test_book_matches_reference_on_valid_sequences(grid_name: str, data: st.DataObject) -> None:
    grid = GRIDS[grid_name]
    book = OrderBook(grid)
    ref = ReferenceBook()
    assert book_views(book) == ref.views()
    ts = 0
    for op in data.draw(steps(grid)):
        if len(op) == 3:
            yes, no, dt = op
            ts += dt
            book.apply_snapshot(yes.items(), no.items(), ts)
            ref.snapshot(yes, no, ts)
        else:
            ts += op[4]
            side, price, delta = valid_delta(op, grid, ref)
            book.apply_delta(side, price, delta, ts)
            ref.delta(side, price, delta, ts)
        assert book_views(book) == ref.views()


@pytest.mark.parametrize("grid_name", sorted(GRIDS))
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_rejected_delta_leaves_every_view_unchanged(grid_name: str, data: st.DataObject) -> None:
    grid = GRIDS[grid_name]
    book = OrderBook(grid)
    yes = data.draw(side_levels(grid))
    no = data.draw(side_levels(grid))
    book.apply_snapshot(yes.items(), no.items(), 1_000)
    before = book_views(book)
    full_before = (book.depth(Side.YES, len(grid)), book.depth(Side.NO, len(grid)))

    side = data.draw(st.sampled_from(SIDES))
    current = yes if side is Side.YES else no
    price = data.draw(st.sampled_from(grid.levels))
    have = current.get(price, 0)
    overshoot = data.draw(st.integers(min_value=1, max_value=1_000_000))
    with pytest.raises(BookIntegrityError):
        book.apply_delta(side, price, -(have + overshoot), 2_000)

    assert book_views(book) == before
    assert (book.depth(Side.YES, len(grid)), book.depth(Side.NO, len(grid))) == full_before


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_off_grid_delta_leaves_every_view_unchanged(data: st.DataObject) -> None:
    grid = GRIDS["tapered_deci_cent"]
    book = OrderBook(grid)
    book.apply_snapshot(data.draw(side_levels(grid)).items(), data.draw(side_levels(grid)).items(), 1_000)
    before = book_views(book)
    price = data.draw(st.integers(min_value=-20_000, max_value=20_000).filter(lambda u: not grid.contains(u)))
    with pytest.raises(BookIntegrityError):
        book.apply_delta(data.draw(st.sampled_from(SIDES)), price, data.draw(st.integers()), 2_000)
    assert book_views(book) == before


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_replace_grid_succeeds_iff_every_level_fits(data: st.DataObject) -> None:
    """deci_cent → tapered_deci_cent: levels carry over when all are on the new grid, else nothing changes."""
    old, new = TickGrid.deci_cent(), TickGrid.tapered_deci_cent()
    book = OrderBook(old)
    yes = data.draw(side_levels(old))
    no = data.draw(side_levels(old))
    book.apply_snapshot(yes.items(), no.items(), 1_000)
    before = book_views(book)
    fits = all(new.contains(p) for p in (*yes, *no))
    if fits:
        book.replace_grid(new)
        assert book.grid is new
    else:
        with pytest.raises(BookIntegrityError):
            book.replace_grid(new)
        assert book.grid is old
    assert book_views(book) == before
