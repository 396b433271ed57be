"""Unit tests of the simulator's matching engine (kalshi-api.md §5, §7–8).

Prices in $0.0001 units (5500 = $0.55), counts in 1/100 contract (1000 = 10 contracts).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import pytest

from mm.domain.errors import InvalidPriceError, InvalidQuantityError
from mm.domain.ticks import TickGrid
from mm.sim.matching import (
    FOK_INSUFFICIENT_VOLUME,
    POST_ONLY_CROSS,
    SELF_CROSS_ATTEMPT,
    MatchingEngine,
    MatchResult,
    fill_costs,
)
from mm.sim.types import BookChange, BookSide, OrderStatus, SelfTradePrevention, SimOrder, TimeInForce

BID, ASK = BookSide.BID, BookSide.ASK
GTC, IOC, FOK = TimeInForce.GOOD_TILL_CANCELED, TimeInForce.IMMEDIATE_OR_CANCEL, TimeInForce.FILL_OR_KILL
RESTING, EXECUTED, CANCELED = OrderStatus.RESTING, OrderStatus.EXECUTED, OrderStatus.CANCELED
TAKER_AT_CROSS, MAKER = SelfTradePrevention.TAKER_AT_CROSS, SelfTradePrevention.MAKER
TICKER = "KXTEST-26AUG1317-T50"


class Harness:
    """An engine plus a log of every BookChange it reported, and an order factory."""

    def __init__(self, grid: TickGrid | None = None) -> None:
        trade_ids = (f"t{i}" for i in itertools.count(1))
        self.engine = MatchingEngine(TICKER, grid or TickGrid.linear_cent(), trade_ids.__next__)
        self.changes: list[BookChange] = []
        self._ids = itertools.count(1)
        self.now = 1_000

    def tick(self) -> int:
        self.now += 1
        return self.now

    def order(
        self,
        user: str,
        side: BookSide,
        price: int,
        count: int,
        *,
        tif: TimeInForce = GTC,
        post_only: bool = False,
        stp: SelfTradePrevention = TAKER_AT_CROSS,
    ) -> SimOrder:
        return SimOrder(
            order_id=f"o{next(self._ids)}", user_id=user, ticker=TICKER, side=side, price=price,
            initial_count=count, remaining_count=count, time_in_force=tif, post_only=post_only, stp=stp,
        )  # fmt: skip

    def submit(self, user: str, side: BookSide, price: int, count: int, **kw: object) -> MatchResult:
        result = self.engine.submit(self.order(user, side, price, count, **kw), self.tick())  # type: ignore[arg-type]
        self.changes.extend(result.book_changes)
        return result

    def record(self, changes: Iterable[BookChange]) -> None:
        self.changes.extend(changes)

    def cancel(self, order_id: str) -> SimOrder:
        order, changes = self.engine.cancel(order_id, self.tick())
        self.record(changes)
        return order

    def amend(self, order_id: str, price: int, total: int) -> MatchResult:
        result = self.engine.amend(order_id, self.tick(), price=price, total_count=total)
        self.record(result.book_changes)
        return result

    def decrease(self, order_id: str, **kw: int) -> SimOrder:
        order, changes = self.engine.decrease(order_id, self.tick(), **kw)
        self.record(changes)
        return order

    def replayed_levels(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """Apply every BookChange to an empty book (Kalshi delta rules) and list it like ``levels()``."""
        return replay(self.changes)

    def assert_consistent(self) -> None:
        assert self.replayed_levels() == self.engine.levels()


def replay(changes: Iterable[BookChange]) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    book: dict[BookSide, dict[int, int]] = {BID: {}, ASK: {}}
    for change in changes:
        assert change.delta != 0
        size = book[change.side].get(change.price, 0) + change.delta
        assert size >= 0, f"level went negative: {change}"
        if size:
            book[change.side][change.price] = size
        else:
            del book[change.side][change.price]
    bids = sorted(book[BID].items(), reverse=True)
    asks = sorted(book[ASK].items())
    return bids, asks


def fills(result: MatchResult) -> list[tuple[str, int, int]]:
    """(maker order id, price, count) of each trade."""
    return [(t.maker_order_id, t.price, t.count) for t in result.trades]


@pytest.fixture
def h() -> Harness:
    return Harness()


# -- resting and crossing ------------------------------------------------------------------------------


def test_a_non_crossing_order_rests(h: Harness) -> None:
    result = h.submit("a", BID, 5000, 1000)
    assert result.order.status is RESTING
    assert result.trades == () and result.updated_makers == ()
    assert result.book_changes == (BookChange(BID, 5000, 1000),)
    assert h.engine.levels() == ([(5000, 1000)], [])
    assert h.engine.best_bid() == 5000 and h.engine.best_ask() is None
    assert h.engine.resting() == [result.order]
    assert result.order.created_us == result.order.updated_us == h.now


def test_a_full_cross_executes_both_orders(h: Harness) -> None:
    ask = h.submit("a", ASK, 5500, 1000).order
    result = h.submit("b", BID, 5500, 1000)
    assert fills(result) == [(ask.order_id, 5500, 1000)]
    trade = result.trades[0]
    assert (trade.taker_user_id, trade.maker_user_id, trade.taker_side, trade.ts_us) == ("b", "a", BID, h.now)
    assert trade.ticker == TICKER and trade.trade_id == "t1"
    assert result.order.status is EXECUTED and ask.status is EXECUTED
    assert result.order.remaining_count == 0 and result.order.fill_count == 1000
    assert result.updated_makers == (ask,)
    assert result.book_changes == (BookChange(ASK, 5500, -1000),)
    assert h.engine.levels() == ([], [])
    assert h.engine.resting() == []
    h.assert_consistent()


def test_a_partial_cross_rests_the_remainder_as_maker(h: Harness) -> None:
    ask = h.submit("a", ASK, 5500, 400).order
    result = h.submit("b", BID, 6000, 1000)
    assert fills(result) == [(ask.order_id, 5500, 400)]
    assert result.order.status is RESTING
    assert (result.order.fill_count, result.order.remaining_count) == (400, 600)
    assert result.book_changes == (BookChange(ASK, 5500, -400), BookChange(BID, 6000, 600))
    assert h.engine.levels() == ([(6000, 600)], [])
    h.assert_consistent()


def test_price_time_priority_better_price_first_then_earlier_order(h: Harness) -> None:
    first = h.submit("a", ASK, 5500, 500).order
    second = h.submit("b", ASK, 5500, 500).order
    better = h.submit("c", ASK, 5400, 500).order
    result = h.submit("d", BID, 5600, 1200)
    assert fills(result) == [(better.order_id, 5400, 500), (first.order_id, 5500, 500), (second.order_id, 5500, 200)]
    assert result.updated_makers == (better, first, second)
    assert second.status is RESTING and second.remaining_count == 300
    assert result.order.status is EXECUTED
    # Consecutive changes at one level are merged: one delta per level touched.
    assert result.book_changes == (BookChange(ASK, 5400, -500), BookChange(ASK, 5500, -700))
    h.assert_consistent()


def test_an_ask_taker_walks_bids_from_the_highest(h: Harness) -> None:
    low = h.submit("a", BID, 4000, 500).order
    high = h.submit("b", BID, 4500, 500).order
    result = h.submit("c", ASK, 3900, 800)
    assert fills(result) == [(high.order_id, 4500, 500), (low.order_id, 4000, 300)]
    assert h.engine.levels() == ([(4000, 200)], [])
    h.assert_consistent()


def test_fills_print_at_the_resting_price_and_costs_follow_it(h: Harness) -> None:
    ask = h.submit("a", ASK, 5500, 1000).order
    result = h.submit("b", BID, 6000, 1000)
    assert [t.price for t in result.trades] == [5500]
    # 10 contracts: the YES buyer pays 10 × $0.55, the NO buyer (the ask) 10 × $0.45.
    assert result.order.taker_fill_cost == 55_000 and result.order.maker_fill_cost == 0
    assert ask.maker_fill_cost == 45_000 and ask.taker_fill_cost == 0
    bid = h.submit("c", BID, 6000, 500).order
    sold = h.submit("d", ASK, 5000, 500)
    assert [t.price for t in sold.trades] == [6000]
    assert sold.order.taker_fill_cost == 20_000 and bid.maker_fill_cost == 30_000


def test_fill_costs_are_exact_or_rounded_to_nearest_and_always_sum_to_one_dollar() -> None:
    assert fill_costs(5500, 1000) == (55_000, 45_000)
    assert fill_costs(5555, 1) == (56, 44)  # 0.01 contract at $0.5555: $0.005555 → $0.0056 / $0.0044
    assert fill_costs(5550, 1) == (56, 44)  # exact half rounds up on the YES side
    assert fill_costs(1, 1) == (0, 100)
    for price, count in itertools.product((1, 37, 5000, 9999), (1, 3, 100, 12_345)):
        yes, no = fill_costs(price, count)
        assert yes + no == count * 100
        assert abs(yes * 100 - price * count) <= 50


# -- time in force and post-only ------------------------------------------------------------------------


def test_ioc_cancels_the_remainder_even_after_partial_fills(h: Harness) -> None:
    h.submit("a", ASK, 5500, 300)
    result = h.submit("b", BID, 5500, 1000, tif=IOC)
    assert fills(result)[0][1:] == (5500, 300)
    assert result.order.status is CANCELED
    assert (result.order.fill_count, result.order.remaining_count, result.order.initial_count) == (300, 0, 1000)
    assert h.engine.levels() == ([], [])
    assert result.reject_reason is None
    h.assert_consistent()


def test_ioc_fully_filled_is_executed_and_unfilled_is_canceled(h: Harness) -> None:
    h.submit("a", ASK, 5500, 1000)
    assert h.submit("b", BID, 5500, 400, tif=IOC).order.status is EXECUTED
    missed = h.submit("b", BID, 5400, 400, tif=IOC)
    assert missed.order.status is CANCELED and missed.trades == () and missed.book_changes == ()
    assert h.engine.levels() == ([], [(5500, 600)])


def test_fok_with_insufficient_volume_is_rejected_and_trades_nothing(h: Harness) -> None:
    h.submit("a", ASK, 5500, 300)
    h.submit("a", ASK, 5600, 300)
    h.submit("a", ASK, 5800, 1000)  # beyond the limit: does not count
    before = h.engine.levels()
    result = h.submit("b", BID, 5600, 700, tif=FOK)
    assert result.reject_reason == FOK_INSUFFICIENT_VOLUME
    assert result.order.status is CANCELED and result.order.fill_count == 0 and result.order.remaining_count == 0
    assert result.trades == () and result.book_changes == () and result.updated_makers == ()
    assert h.engine.levels() == before
    assert h.engine.get(result.order.order_id) is result.order


def test_fok_exactly_fillable_executes(h: Harness) -> None:
    h.submit("a", ASK, 5500, 300)
    h.submit("a", ASK, 5600, 400)
    result = h.submit("b", BID, 5600, 700, tif=FOK)
    assert result.reject_reason is None and result.order.status is EXECUTED
    assert [t.count for t in result.trades] == [300, 400]
    assert h.engine.levels() == ([], [])


def test_post_only_that_would_cross_is_rejected_not_repriced(h: Harness) -> None:
    h.submit("a", ASK, 5500, 1000)
    result = h.submit("b", BID, 5500, 500, post_only=True)
    assert result.reject_reason == POST_ONLY_CROSS
    assert result.order.status is CANCELED and result.order.price == 5500
    assert result.trades == () and result.book_changes == ()
    assert h.engine.levels() == ([], [(5500, 1000)])


def test_post_only_that_does_not_cross_rests(h: Harness) -> None:
    h.submit("a", ASK, 5500, 1000)
    result = h.submit("b", BID, 5400, 500, post_only=True)
    assert result.reject_reason is None and result.order.status is RESTING
    assert h.engine.levels() == ([(5400, 500)], [(5500, 1000)])


# -- self-trade prevention ------------------------------------------------------------------------------


def test_stp_taker_at_cross_cancels_the_incoming_remainder_and_keeps_fills(h: Harness) -> None:
    other = h.submit("x", ASK, 5400, 300).order
    own = h.submit("a", ASK, 5500, 500).order
    h.submit("x", ASK, 5500, 500)
    result = h.submit("a", BID, 5600, 1000, stp=TAKER_AT_CROSS)
    assert fills(result) == [(other.order_id, 5400, 300)]
    assert result.order.status is CANCELED and result.cancel_reason == SELF_CROSS_ATTEMPT
    assert (result.order.fill_count, result.order.remaining_count) == (300, 0)
    assert own.status is RESTING and own.remaining_count == 500
    assert h.engine.levels() == ([], [(5500, 1000)])
    h.assert_consistent()


def test_stp_maker_cancels_the_resting_order_and_keeps_matching(h: Harness) -> None:
    other = h.submit("x", ASK, 5400, 300).order
    own = h.submit("a", ASK, 5500, 500).order
    later = h.submit("x", ASK, 5500, 400).order
    result = h.submit("a", BID, 5600, 1000, stp=MAKER)
    assert fills(result) == [(other.order_id, 5400, 300), (later.order_id, 5500, 400)]
    assert own.status is CANCELED and own.remaining_count == 0 and own.fill_count == 0
    assert result.updated_makers == (other, own, later)
    assert result.order.status is RESTING and result.order.remaining_count == 300
    assert result.cancel_reason is None
    assert h.engine.levels() == ([(5600, 300)], [])
    assert result.book_changes == (BookChange(ASK, 5400, -300), BookChange(ASK, 5500, -900), BookChange(BID, 5600, 300))
    h.assert_consistent()


def test_fok_volume_check_ignores_own_orders(h: Harness) -> None:
    h.submit("a", ASK, 5500, 500)
    h.submit("x", ASK, 5500, 300)
    before = h.engine.levels()
    # 800 crossing in total, but only 300 tradeable: rejected in both STP modes, nothing cancelled.
    for stp in (TAKER_AT_CROSS, MAKER):
        result = h.submit("a", BID, 5500, 600, tif=FOK, stp=stp)
        assert result.reject_reason == FOK_INSUFFICIENT_VOLUME
    assert h.engine.levels() == before


def test_self_crossing_fok_keeps_its_partial_fills_under_taker_at_cross(h: Harness) -> None:
    first = h.submit("x", ASK, 5500, 300).order
    h.submit("a", ASK, 5500, 500)
    h.submit("x", ASK, 5500, 500)
    result = h.submit("a", BID, 5500, 700, tif=FOK, stp=TAKER_AT_CROSS)
    assert result.reject_reason is None and result.cancel_reason == SELF_CROSS_ATTEMPT
    assert fills(result) == [(first.order_id, 5500, 300)]
    assert result.order.status is CANCELED and result.order.fill_count == 300


def test_fok_under_maker_stp_cancels_own_orders_and_fills_fully(h: Harness) -> None:
    h.submit("x", ASK, 5500, 300)
    own = h.submit("a", ASK, 5500, 500).order
    h.submit("x", ASK, 5500, 500)
    result = h.submit("a", BID, 5500, 700, tif=FOK, stp=MAKER)
    assert result.order.status is EXECUTED and sum(t.count for t in result.trades) == 700
    assert own.status is CANCELED
    assert h.engine.levels() == ([], [(5500, 100)])
    h.assert_consistent()


# -- amend, decrease, cancel -----------------------------------------------------------------------------


def _queue_order(h: Harness, price: int = 5500) -> list[str]:
    """Which resting asks at ``price`` fill first: sweep the level with a probe IOC bid by a fresh user."""
    total = dict(h.engine.levels()[1]).get(price, 0)
    result = h.submit("probe", BID, price, total, tif=IOC)
    return [t.maker_order_id for t in result.trades]


def test_amend_reducing_size_at_the_same_price_keeps_priority(h: Harness) -> None:
    a = h.submit("a", ASK, 5500, 1000).order
    b = h.submit("b", ASK, 5500, 1000).order
    result = h.amend(a.order_id, 5500, 600)
    assert result.order is a and a.status is RESTING
    assert (a.initial_count, a.remaining_count) == (600, 600)
    assert result.book_changes == (BookChange(ASK, 5500, -400),)
    assert h.engine.levels() == ([], [(5500, 1600)])
    assert _queue_order(h) == [a.order_id, b.order_id]
    h.assert_consistent()


def test_amend_increasing_size_loses_priority(h: Harness) -> None:
    a = h.submit("a", ASK, 5500, 1000).order
    b = h.submit("b", ASK, 5500, 1000).order
    result = h.amend(a.order_id, 5500, 1500)
    assert result.book_changes == (BookChange(ASK, 5500, 500),)  # out and back in at one level: merged
    assert h.engine.levels() == ([], [(5500, 2500)])
    assert _queue_order(h) == [b.order_id, a.order_id]
    h.assert_consistent()


def test_amend_changing_price_loses_priority(h: Harness) -> None:
    a = h.submit("a", ASK, 5500, 1000).order
    b = h.submit("b", ASK, 5500, 1000).order
    h.amend(a.order_id, 5600, 1000)
    assert h.engine.levels() == ([], [(5500, 1000), (5600, 1000)])
    h.amend(a.order_id, 5500, 900)  # back at the old price, even smaller: still behind b
    assert _queue_order(h) == [b.order_id, a.order_id]
    h.assert_consistent()


def test_amend_to_a_crossing_price_trades_like_a_taker(h: Harness) -> None:
    ask = h.submit("x", ASK, 5500, 400).order
    bid = h.submit("a", BID, 5000, 1000).order
    result = h.amend(bid.order_id, 5600, 1000)
    assert fills(result) == [(ask.order_id, 5500, 400)]
    assert result.trades[0].taker_order_id == bid.order_id
    assert bid.status is RESTING and (bid.fill_count, bid.remaining_count, bid.price) == (400, 600, 5600)
    assert bid.taker_fill_cost == 22_000
    assert h.engine.levels() == ([(5600, 600)], [])
    h.assert_consistent()
    # The new total counts what is already filled: 400 filled + 200 remaining.
    h.amend(bid.order_id, 5600, 600)
    assert (bid.initial_count, bid.remaining_count) == (600, 200)
    with pytest.raises(InvalidQuantityError):
        h.amend(bid.order_id, 5600, 400)


def test_post_only_amend_to_a_crossing_price_is_refused_and_leaves_the_order(h: Harness) -> None:
    h.submit("x", ASK, 5500, 400)
    bid = h.submit("a", BID, 5000, 1000, post_only=True).order
    result = h.amend(bid.order_id, 5500, 1000)
    assert result.reject_reason == POST_ONLY_CROSS and result.trades == () and result.book_changes == ()
    assert bid.status is RESTING and bid.price == 5000 and bid.remaining_count == 1000
    assert h.engine.levels() == ([(5000, 1000)], [(5500, 400)])


def test_decrease_keeps_priority(h: Harness) -> None:
    a = h.submit("a", ASK, 5500, 1000).order
    b = h.submit("b", ASK, 5500, 1000).order
    assert h.decrease(a.order_id, reduce_by=300).remaining_count == 700
    assert h.decrease(a.order_id, reduce_to=500).remaining_count == 500
    assert a.initial_count == 500 and a.status is RESTING
    assert h.changes[-2:] == [BookChange(ASK, 5500, -300), BookChange(ASK, 5500, -200)]
    assert _queue_order(h) == [a.order_id, b.order_id]
    h.assert_consistent()


def test_decrease_to_zero_is_a_cancel(h: Harness) -> None:
    a = h.submit("a", ASK, 5500, 1000).order
    order, changes = h.engine.decrease(a.order_id, h.tick(), reduce_to=0)
    assert order.status is CANCELED and order.remaining_count == 0
    assert changes == (BookChange(ASK, 5500, -1000),)
    assert h.engine.levels() == ([], [])


@pytest.mark.parametrize(
    "kwargs", [{}, {"reduce_by": 1, "reduce_to": 1}, {"reduce_by": 0}, {"reduce_by": 1001}, {"reduce_to": 1001}]
)
def test_invalid_decreases_raise_and_change_nothing(h: Harness, kwargs: dict[str, int]) -> None:
    a = h.submit("a", ASK, 5500, 1000).order
    with pytest.raises(ValueError, match="reduce"):
        h.engine.decrease(a.order_id, h.tick(), **kwargs)
    assert a.remaining_count == 1000 and h.engine.levels() == ([], [(5500, 1000)])


def test_cancel_removes_the_order_and_reports_the_change(h: Harness) -> None:
    a = h.submit("a", BID, 5000, 1000).order
    h.submit("b", BID, 5000, 200)
    order = h.cancel(a.order_id)
    assert order is a and a.status is CANCELED and a.remaining_count == 0 and a.updated_us == h.now
    assert h.changes[-1] == BookChange(BID, 5000, -1000)
    assert h.engine.levels() == ([(5000, 200)], [])
    assert h.engine.get(a.order_id) is a
    with pytest.raises(ValueError, match="not resting"):
        h.engine.cancel(a.order_id, h.tick())
    with pytest.raises(ValueError, match="is resting"):
        h.engine.forget(h.engine.resting()[0].order_id)
    with pytest.raises(KeyError):
        h.engine.cancel("nope", h.tick())
    with pytest.raises(ValueError, match="not resting"):
        h.engine.amend(a.order_id, h.tick(), price=5000, total_count=100)
    h.engine.forget(a.order_id)  # a finished order can be dropped from memory
    with pytest.raises(KeyError):
        h.engine.get(a.order_id)
    h.assert_consistent()


def test_cancel_all_by_user_and_for_everyone(h: Harness) -> None:
    a1 = h.submit("a", BID, 5000, 100).order
    h.submit("b", BID, 5000, 200)
    a2 = h.submit("a", ASK, 6000, 300).order
    h.submit("b", ASK, 6100, 400)
    done = h.engine.cancel_all(h.tick(), user_id="a")
    assert [o for o, _ in done] == [a1, a2]
    for _, changes in done:
        h.record(changes)
    assert h.engine.levels() == ([(5000, 200)], [(6100, 400)])
    assert [o.user_id for o in h.engine.resting()] == ["b", "b"]
    for _, changes in h.engine.cancel_all(h.tick()):
        h.record(changes)
    assert h.engine.levels() == ([], []) and h.engine.resting() == []
    h.assert_consistent()


# -- validation, queries ---------------------------------------------------------------------------------


@pytest.mark.parametrize("price", [5550, 0, 10_000, -100, 10_100])
def test_off_grid_or_out_of_range_prices_are_rejected(h: Harness, price: int) -> None:
    with pytest.raises(InvalidPriceError):
        h.submit("a", BID, price, 100)
    assert h.engine.levels() == ([], [])


def test_zero_count_wrong_ticker_and_duplicate_ids_are_rejected(h: Harness) -> None:
    with pytest.raises(InvalidQuantityError):
        h.submit("a", BID, 5000, 0)
    wrong = h.order("a", BID, 5000, 100)
    wrong.ticker = "OTHER"
    with pytest.raises(ValueError, match="ticker"):
        h.engine.submit(wrong, h.tick())
    first = h.submit("a", BID, 5000, 100).order
    again = h.order("a", BID, 5000, 100)
    again.order_id = first.order_id
    with pytest.raises(ValueError, match="duplicate"):
        h.engine.submit(again, h.tick())
    with pytest.raises(InvalidPriceError):
        h.engine.amend(first.order_id, h.tick(), price=5001, total_count=100)
    assert h.engine.levels() == ([(5000, 100)], [])


def test_a_finer_grid_accepts_its_own_levels() -> None:
    h = Harness(TickGrid.tapered_deci_cent())
    h.submit("a", ASK, 9550, 150)  # $0.955: on the 0.001 edge of the tapered grid
    with pytest.raises(InvalidPriceError):
        h.submit("a", ASK, 5550, 150)  # $0.555: the centre is whole cents
    result = h.submit("b", BID, 9600, 50)
    assert fills(result)[0][1:] == (9550, 50)
    assert result.order.taker_fill_cost == 4775  # 0.5 contract × $0.955


def test_levels_aggregate_and_sort_best_first(h: Harness) -> None:
    for user, side, price, count in [
        ("a", BID, 4000, 100), ("b", BID, 4500, 200), ("c", BID, 4000, 300),
        ("a", ASK, 6000, 100), ("b", ASK, 5500, 200), ("c", ASK, 6000, 50),
    ]:  # fmt: skip
        h.submit(user, side, price, count)
    assert h.engine.levels() == ([(4500, 200), (4000, 400)], [(5500, 200), (6000, 150)])
    assert (h.engine.best_bid(), h.engine.best_ask()) == (4500, 5500)
    assert len(h.engine.resting("a")) == 2 and len(h.engine.resting()) == 6
    h.assert_consistent()


def test_many_cancels_behind_a_resting_front_order_keep_the_level_exact(h: Harness) -> None:
    front = h.submit("a", ASK, 5500, 100).order
    ids = [h.submit("b", ASK, 5500, 10).order.order_id for _ in range(200)]
    for order_id in ids[:-1]:
        h.cancel(order_id)  # lazily deleted; the deque is compacted along the way
    assert h.engine.levels() == ([], [(5500, 110)])
    assert _queue_order(h) == [front.order_id, ids[-1]]
    h.assert_consistent()
