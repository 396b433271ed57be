"""Unit tests of the binary order book (FR-201)."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest

from mm.domain.book import BookLevel, OrderBook
from mm.domain.errors import BookIntegrityError
from mm.domain.price import Price, Quantity
from mm.domain.sides import Side
from mm.domain.ticks import TickGrid

YES, NO = Side.YES, Side.NO


def views(book: OrderBook) -> tuple[Any, ...]:
    """Every observable view of the book, for before/after comparisons."""
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
        book.depth(YES, 1000),
        book.depth(NO, 1000),
        book.is_empty,
        book.crossed,
        book.last_update_us,
        book.grid,
    )


@pytest.fixture
def cent() -> TickGrid:
    return TickGrid.linear_cent()


@pytest.fixture
def book(cent: TickGrid) -> OrderBook:
    """The example book of kalshi-api.md §6: YES bids 0.08/0.22, NO bids 0.54/0.56."""
    b = OrderBook(cent)
    b.apply_snapshot([(800, 30000), (2200, 33300)], [(5400, 2000), (5600, 14600)], ts_us=1_000)
    return b


# ---------------------------------------------------------------- empty book


def test_new_book_is_empty(cent: TickGrid) -> None:
    b = OrderBook(cent)
    assert b.is_empty
    assert b.best_yes_bid is None and b.best_no_bid is None
    assert b.best_yes_ask is None and b.best_no_ask is None
    assert b.best_yes_bid_size == 0 and b.best_no_bid_size == 0
    assert b.best_yes_ask_size == 0 and b.best_no_ask_size == 0
    assert b.yes_bid is None and b.yes_ask is None and b.no_bid is None and b.no_ask is None
    assert b.mid() is None
    assert b.spread_units() is None
    assert b.depth(YES, 5) == [] and b.depth(NO, 5) == []
    assert not b.crossed
    assert b.last_update_us == 0
    assert b.grid is cent


# ---------------------------------------------------------------- snapshot


def test_snapshot_sets_bids_and_derived_asks(book: OrderBook) -> None:
    assert book.best_yes_bid == 2200
    assert book.best_yes_bid_size == 33300
    assert book.best_no_bid == 5600
    assert book.best_no_bid_size == 14600
    # YES ask = 1 − best NO bid, with the NO bid's size; NO ask = 1 − best YES bid.
    assert book.best_yes_ask == 10000 - 5600 == 4400
    assert book.best_yes_ask_size == 14600
    assert book.best_no_ask == 10000 - 2200 == 7800
    assert book.best_no_ask_size == 33300
    assert book.last_update_us == 1_000
    assert not book.is_empty


def test_level_views_are_price_and_quantity(book: OrderBook) -> None:
    assert book.yes_bid == BookLevel(Price(2200), Quantity(33300))
    assert book.yes_ask == BookLevel(Price(4400), Quantity(14600))
    assert book.no_bid == BookLevel(Price(5600), Quantity(14600))
    assert book.no_ask == BookLevel(Price(7800), Quantity(33300))
    level = book.yes_bid
    assert level is not None
    with pytest.raises(AttributeError):
        level.price = Price(100)  # type: ignore[misc]


def test_snapshot_order_does_not_matter(cent: TickGrid) -> None:
    a = OrderBook(cent)
    b = OrderBook(cent)
    a.apply_snapshot([(800, 1), (2200, 2), (1500, 3)], [(5400, 4), (5600, 5)], 7)
    b.apply_snapshot(iter([(2200, 2), (1500, 3), (800, 1)]), ((p, s) for p, s in [(5600, 5), (5400, 4)]), 7)
    assert views(a) == views(b)
    assert a.depth(YES, 5) == [(2200, 2), (1500, 3), (800, 1)]


def test_snapshot_replaces_previous_levels(book: OrderBook) -> None:
    book.apply_snapshot([(3000, 100)], [], ts_us=2_000)
    assert book.depth(YES, 10) == [(3000, 100)]
    assert book.depth(NO, 10) == []
    assert book.best_yes_ask is None
    assert book.mid() is None
    assert book.last_update_us == 2_000


def test_empty_snapshot_empties_book_but_counts_as_update(book: OrderBook) -> None:
    book.apply_snapshot([], [], ts_us=3_000)
    assert book.is_empty
    assert book.last_update_us == 3_000


@pytest.mark.parametrize(
    ("yes", "no", "fragment"),
    [
        ([(4550, 100)], [], "YES bid at 0.4550 is off the tick grid"),
        ([], [(4550, 100)], "NO bid at 0.4550 is off the tick grid"),
        ([(0, 100)], [], "YES bid at 0.0000 is outside (0, 1)"),
        ([], [(10000, 100)], "NO bid at 1.0000 is outside (0, 1)"),
        ([(-100, 100)], [], "YES bid at -0.0100 is outside (0, 1)"),
        ([(4500, 0)], [], "YES bid at 0.4500 has size 0"),
        ([], [(4500, -100)], "NO bid at 0.4500 has size -100"),
        ([(4500, "100")], [], "YES bid at 0.4500 has size '100'"),
        ([(4500, 100), (4400, 5), (4500, 100)], [], "YES bid at 0.4500 appears twice"),
        ([(4500, 100)], [(5000, 1), (5000, 2)], "NO bid at 0.5000 appears twice"),
    ],
)
def test_bad_snapshot_raises_and_leaves_book_unchanged(
    book: OrderBook, yes: list[tuple[int, Any]], no: list[tuple[int, Any]], fragment: str
) -> None:
    before = views(book)
    with pytest.raises(BookIntegrityError) as exc:
        book.apply_snapshot(yes, no, ts_us=9_999)
    assert fragment in str(exc.value)
    assert views(book) == before


def test_same_price_on_both_sides_is_not_a_duplicate(cent: TickGrid) -> None:
    b = OrderBook(cent)
    b.apply_snapshot([(4000, 1)], [(4000, 2)], 1)
    assert b.best_yes_bid == 4000 and b.best_no_bid == 4000


# ---------------------------------------------------------------- deltas


def test_delta_adds_to_existing_level(book: OrderBook) -> None:
    book.apply_delta(YES, 2200, 500, ts_us=2_000)
    assert book.best_yes_bid_size == 33800
    assert book.best_no_ask_size == 33800
    assert book.last_update_us == 2_000


def test_delta_new_level_above_best_becomes_best(book: OrderBook) -> None:
    book.apply_delta(YES, 2500, 100, ts_us=2_000)
    assert book.best_yes_bid == 2500
    assert book.best_yes_bid_size == 100
    assert book.best_no_ask == 7500
    assert book.depth(YES, 5) == [(2500, 100), (2200, 33300), (800, 30000)]


def test_delta_new_level_below_best_keeps_best(book: OrderBook) -> None:
    book.apply_delta(YES, 1000, 100, ts_us=2_000)
    assert book.best_yes_bid == 2200
    assert book.depth(YES, 5) == [(2200, 33300), (1000, 100), (800, 30000)]


def test_delta_to_exactly_zero_drops_level(book: OrderBook) -> None:
    book.apply_delta(YES, 800, -30000, ts_us=2_000)
    assert book.depth(YES, 5) == [(2200, 33300)]
    assert book.best_yes_bid == 2200


def test_emptying_best_level_scans_down_to_next(book: OrderBook) -> None:
    book.apply_delta(YES, 2200, -33300, ts_us=2_000)
    assert book.best_yes_bid == 800
    assert book.best_yes_bid_size == 30000
    assert book.best_no_ask == 9200


def test_emptying_last_level_empties_side(book: OrderBook) -> None:
    book.apply_delta(YES, 2200, -33300, ts_us=2_000)
    book.apply_delta(YES, 800, -30000, ts_us=3_000)
    assert book.best_yes_bid is None
    assert book.best_yes_bid_size == 0
    assert book.best_no_ask is None
    assert book.no_ask is None
    assert book.mid() is None
    assert book.spread_units() is None
    assert not book.is_empty  # NO bids remain
    book.apply_delta(NO, 5600, -14600, ts_us=4_000)
    book.apply_delta(NO, 5400, -2000, ts_us=5_000)
    assert book.is_empty


def test_level_can_be_refilled_after_being_dropped(book: OrderBook) -> None:
    book.apply_delta(YES, 2200, -33300, ts_us=2_000)
    book.apply_delta(YES, 2200, 7, ts_us=3_000)
    assert book.best_yes_bid == 2200
    assert book.best_yes_bid_size == 7


def test_no_delta_moves_yes_ask(book: OrderBook) -> None:
    book.apply_delta(NO, 5700, 900, ts_us=2_000)
    assert book.best_no_bid == 5700
    assert book.best_yes_ask == 4300
    assert book.best_yes_ask_size == 900
    assert book.yes_ask == BookLevel(Price(4300), Quantity(900))
    book.apply_delta(NO, 5700, -900, ts_us=3_000)
    assert book.best_yes_ask == 4400
    assert book.best_yes_ask_size == 14600


def test_negative_result_raises_and_leaves_book_unchanged(book: OrderBook) -> None:
    before = views(book)
    with pytest.raises(BookIntegrityError) as exc:
        book.apply_delta(YES, 2200, -33301, ts_us=2_000)
    assert "YES bid at 0.2200" in str(exc.value)
    assert "out of sync" in str(exc.value)
    assert views(book) == before
    assert book.last_update_us == 1_000


def test_negative_delta_on_absent_level_raises(book: OrderBook) -> None:
    before = views(book)
    with pytest.raises(BookIntegrityError, match=re.escape("NO bid at 0.3000")):
        book.apply_delta(NO, 3000, -1, ts_us=2_000)
    assert views(book) == before
    assert book.depth(NO, 10) == [(5600, 14600), (5400, 2000)]


@pytest.mark.parametrize(
    ("price", "fragment"),
    [
        (2250, "YES bid at 0.2250 is off the tick grid 0.0000-1.0000 step 0.0100"),
        (0, "YES bid at 0.0000 is outside (0, 1)"),
        (10000, "YES bid at 1.0000 is outside (0, 1)"),
        (-1, "YES bid at -0.0001 is outside (0, 1)"),
        (12345, "YES bid at 1.2345 is outside (0, 1)"),
    ],
)
def test_off_grid_delta_raises_and_leaves_book_unchanged(book: OrderBook, price: int, fragment: str) -> None:
    before = views(book)
    with pytest.raises(BookIntegrityError) as exc:
        book.apply_delta(YES, price, 100, ts_us=2_000)
    assert fragment in str(exc.value)
    assert views(book) == before


def test_zero_delta_only_moves_timestamp(book: OrderBook) -> None:
    before = views(book)
    book.apply_delta(YES, 2200, 0, ts_us=2_000)
    book.apply_delta(NO, 3000, 0, ts_us=3_000)  # absent level: must not appear
    after = views(book)
    assert after[:-2] == before[:-2]
    assert book.last_update_us == 3_000
    assert book.depth(NO, 10) == [(5600, 14600), (5400, 2000)]


def test_book_keeps_working_after_a_rejected_delta(book: OrderBook) -> None:
    with pytest.raises(BookIntegrityError):
        book.apply_delta(YES, 800, -30001, ts_us=2_000)
    book.apply_delta(YES, 800, -30000, ts_us=3_000)
    assert book.depth(YES, 5) == [(2200, 33300)]


# ---------------------------------------------------------------- mid, spread, depth


def test_mid_and_spread_even_sum(book: OrderBook) -> None:
    # YES bid 0.22, YES ask 0.44.
    assert book.mid() == Decimal("0.33")
    assert book.spread_units() == 2200


def test_mid_with_odd_sum_is_exact() -> None:
    b = OrderBook(TickGrid.for_structure("center_centi_edge_centi_cent"))
    # YES bid 0.4500; NO bid 0.5399 → YES ask 0.4601; mid 0.45505 (half a $0.0001 unit).
    b.apply_snapshot([(4500, 100)], [(5399, 100)], ts_us=1)
    assert b.best_yes_ask == 4601
    mid = b.mid()
    assert mid == Decimal("0.45505")
    assert isinstance(mid, Decimal)
    assert mid * 2 == Decimal("0.9101")
    assert b.spread_units() == 101


def test_mid_needs_both_yes_bid_and_yes_ask(cent: TickGrid) -> None:
    b = OrderBook(cent)
    b.apply_snapshot([(4500, 100)], [], 1)
    assert b.mid() is None
    b.apply_snapshot([], [(4500, 100)], 2)
    assert b.mid() is None
    b.apply_delta(YES, 4000, 1, 3)
    assert b.mid() == Decimal("0.4750")


def test_depth_is_best_first_and_limited(cent: TickGrid) -> None:
    b = OrderBook(cent)
    b.apply_snapshot([(100, 1), (5000, 2), (2500, 3), (9900, 4)], [(300, 5), (200, 6)], 1)
    assert b.depth(YES, 2) == [(9900, 4), (5000, 2)]
    assert b.depth(YES, 4) == [(9900, 4), (5000, 2), (2500, 3), (100, 1)]
    assert b.depth(YES, 100) == b.depth(YES, 4)
    assert b.depth(NO, 1) == [(300, 5)]
    assert b.depth(NO, 0) == []
    with pytest.raises(ValueError, match="n >= 0"):
        b.depth(NO, -1)


# ---------------------------------------------------------------- crossed


@pytest.mark.parametrize(
    ("yes_bid", "no_bid", "crossed", "spread"),
    [
        (4900, 5000, False, 100),  # bid 0.49, ask 0.50
        (5000, 5000, True, 0),  # bid 0.50 = ask 0.50: locked counts as crossed
        (5100, 5000, True, -100),  # bid 0.51 > ask 0.50
    ],
)
def test_crossed_detection_does_not_raise(
    cent: TickGrid, yes_bid: int, no_bid: int, crossed: bool, spread: int
) -> None:
    b = OrderBook(cent)
    b.apply_snapshot([(yes_bid, 10)], [(no_bid, 10)], 1)
    assert b.crossed is crossed
    assert b.spread_units() == spread


def test_crossed_by_delta_and_uncrossed_again(book: OrderBook) -> None:
    assert not book.crossed
    book.apply_delta(YES, 4400, 1, ts_us=2_000)  # YES bid reaches the YES ask 0.44
    assert book.crossed
    book.apply_delta(YES, 4400, -1, ts_us=3_000)
    assert not book.crossed


def test_one_sided_book_is_not_crossed(cent: TickGrid) -> None:
    b = OrderBook(cent)
    b.apply_snapshot([(9900, 1)], [], 1)
    assert not b.crossed


# ---------------------------------------------------------------- clear


def test_clear_empties_and_forgets_update_time(book: OrderBook) -> None:
    book.clear()
    assert book.is_empty
    assert book.depth(YES, 5) == [] and book.depth(NO, 5) == []
    assert book.last_update_us == 0
    book.apply_delta(YES, 2200, 5, ts_us=2_000)
    assert book.best_yes_bid == 2200 and book.best_yes_bid_size == 5


# ---------------------------------------------------------------- tick grids


def test_tapered_grid_levels_and_scan_across_ranges() -> None:
    b = OrderBook(TickGrid.tapered_deci_cent())
    # 0.001 ticks below 0.10 and above 0.90, 0.01 in between.
    b.apply_snapshot([(950, 10), (1000, 20), (5500, 30)], [(9950, 40), (9000, 50)], 1)
    assert b.best_yes_bid == 5500
    assert b.best_yes_ask == 50  # 1 − 0.995
    b.apply_delta(YES, 5500, -30, 2)
    b.apply_delta(YES, 1000, -20, 3)  # scan crosses from the cent range into the deci-cent range
    assert b.best_yes_bid == 950
    assert b.best_yes_bid_size == 10
    b.apply_delta(YES, 990, 1, 4)
    assert b.best_yes_bid == 990
    before = views(b)
    with pytest.raises(BookIntegrityError, match=re.escape("YES bid at 0.4550 is off the tick grid")):
        b.apply_delta(YES, 4550, 1, 5)
    assert views(b) == before


def test_replace_grid_carries_levels_over(book: OrderBook) -> None:
    before = views(book)
    deci = TickGrid.deci_cent()
    book.replace_grid(deci)
    assert book.grid is deci
    assert views(book)[:-1] == before[:-1]
    book.apply_delta(YES, 2210, 1, ts_us=2_000)  # a deci-cent price is now on the grid
    assert book.best_yes_bid == 2210
    book.apply_delta(YES, 2210, -1, ts_us=3_000)
    book.apply_delta(YES, 2200, -33300, ts_us=4_000)
    assert book.best_yes_bid == 800


def test_replace_grid_keeps_last_update(book: OrderBook) -> None:
    book.replace_grid(TickGrid.deci_cent())
    assert book.last_update_us == 1_000


def test_replace_grid_with_level_off_new_grid_raises_and_keeps_old_grid() -> None:
    deci = TickGrid.deci_cent()
    b = OrderBook(deci)
    b.apply_snapshot([(2200, 1)], [(4510, 2)], 1)
    before = views(b)
    with pytest.raises(BookIntegrityError, match=re.escape("NO bid at 0.4510 is not on the new tick grid")):
        b.replace_grid(TickGrid.linear_cent())
    assert views(b) == before
    assert b.grid is deci
    b.apply_delta(NO, 4510, -2, 2)  # still indexed by the old grid
    assert b.best_no_bid is None


def test_replace_grid_to_coarser_grid_when_levels_fit() -> None:
    b = OrderBook(TickGrid.deci_cent())
    b.apply_snapshot([(500, 1), (2200, 2)], [(9500, 3)], 1)
    tapered = TickGrid.tapered_deci_cent()
    b.replace_grid(tapered)
    assert b.depth(YES, 5) == [(2200, 2), (500, 1)]
    assert b.best_no_bid == 9500
    with pytest.raises(BookIntegrityError, match="off the tick grid"):
        b.apply_delta(YES, 2210, 1, 2)
