"""FR-604 fill models, pure: hand-worked examples per model and the invariants every tape model keeps."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mm.adapters.fill_models import (
    CrossFillModel,
    FillModel,
    LogQueueShare,
    PowerQueueShare,
    QueueFillModel,
    SimFill,
    TradeThroughFillModel,
    crosses,
    fill_model_from_name,
    fully_available,
    level_size,
    taker_fill,
)
from mm.domain.book import OrderBook
from mm.domain.events import PublicTrade
from mm.domain.orders import Order, OrderRequest
from mm.domain.price import Price, Quantity
from mm.domain.sides import BookSide, OrderSide, Side
from mm.domain.ticks import TickGrid

T0 = 1_700_000_000_000_000
GRID = TickGrid.linear_cent()
C = 100  # quantity units per contract


def order(
    oid: str, price: str, qty: int = 10, *, side: Side = Side.YES, order_side: OrderSide = OrderSide.BUY
) -> Order:
    request = OrderRequest("M1", side, order_side, Price.from_decimal(price), Quantity.contracts(qty), f"c-{oid}")
    return Order.pending(request, T0).acknowledged(oid, T0)


def bid(oid: str, price: str, qty: int = 10) -> Order:
    return order(oid, price, qty)


def ask(oid: str, price: str, qty: int = 10) -> Order:
    return order(oid, price, qty, order_side=OrderSide.SELL)


def trade(price: str, qty: int, taker: OrderSide, market: str = "M1") -> PublicTrade:
    """``taker`` BUY: the aggressor bought YES (lifted asks); SELL: it sold YES (hit bids)."""
    return PublicTrade(market, "t", Price.from_decimal(price), Quantity.contracts(qty), taker, T0)


def book(yes: Sequence[tuple[str, int]] = (), asks: Sequence[tuple[str, int]] = ()) -> OrderBook:
    """YES bids and YES asks (stored as NO bids at 1 − ask), sizes in contracts."""
    b = OrderBook(GRID)
    b.apply_snapshot(
        [(Price.from_decimal(p).units, n * C) for p, n in yes],
        [(Price.from_decimal(p).complement().units, n * C) for p, n in asks],
        T0,
    )
    return b


def fills_of(sims: Sequence[SimFill]) -> list[tuple[str, int, int]]:
    assert all(not s.is_taker for s in sims)  # resting orders fill passively
    return [(s.order_id, s.yes_price_units, s.quantity_units) for s in sims]


def apply(orders: list[Order], sims: Sequence[SimFill]) -> list[Order]:
    by_id = {s.order_id: s for s in sims}
    out = []
    for o in orders:
        s = by_id.get(o.exchange_order_id or "")
        out.append(o.with_fill(Quantity(s.quantity_units), T0) if s else o)
    return [o for o in out if o.status.is_live]


# ---------------------------------------------------------------- shared helpers


def test_taker_fill_takes_the_top_level_only() -> None:
    b = book(yes=[("0.40", 5)], asks=[("0.60", 5), ("0.61", 50)])
    o = bid("t", "0.61", 8)
    assert crosses(o, b) and not fully_available(o, b)
    assert taker_fill(o, b) == SimFill("t", 6000, 5 * C, True)
    assert taker_fill(bid("n", "0.59"), b) is None
    assert taker_fill(ask("a", "0.40", 3), b) == SimFill("a", 4000, 3 * C, True)
    # Buy NO at 0.60 = YES ask at 0.40: takes the YES bid.
    assert taker_fill(order("no", "0.60", 2, side=Side.NO), b) == SimFill("no", 4000, 2 * C, True)


def test_level_size_reads_our_side_of_the_book() -> None:
    b = book(yes=[("0.40", 5), ("0.38", 7)], asks=[("0.60", 3), ("0.62", 9)])
    assert level_size(b, BookSide.BID, 4000) == 5 * C
    assert level_size(b, BookSide.BID, 3800) == 7 * C
    assert level_size(b, BookSide.BID, 3900) == 0
    assert level_size(b, BookSide.BID, 4100) == 0  # above the best bid
    assert level_size(b, BookSide.ASK, 6200) == 9 * C  # NO bids at 0.38
    assert level_size(b, BookSide.ASK, 6000) == 3 * C
    assert level_size(b, BookSide.ASK, 5900) == 0
    assert level_size(OrderBook(GRID), BookSide.BID, 4000) == 0


def test_models_by_name() -> None:
    assert isinstance(fill_model_from_name("cross"), CrossFillModel)
    assert isinstance(fill_model_from_name("trade_through"), TradeThroughFillModel)
    assert isinstance(fill_model_from_name("queue"), QueueFillModel)
    with pytest.raises(ValueError, match="trade_through"):
        fill_model_from_name("optimistic")


# ---------------------------------------------------------------- cross


def test_cross_fills_on_the_book_at_the_book_price_sharing_the_level() -> None:
    model = CrossFillModel()
    resting = [bid("low", "0.60", 3), bid("high", "0.62", 3), bid("low-later", "0.60", 3)]
    got = model.on_book(book(asks=[("0.60", 5)]), resting)
    assert fills_of(got) == [("high", 6000, 3 * C), ("low", 6000, 2 * C)]
    assert model.on_book(book(asks=[("0.61", 5)]), [bid("x", "0.60")]) == []
    assert model.on_trade(trade("0.55", 50, OrderSide.SELL), resting) == []


# ---------------------------------------------------------------- trade_through


def test_a_touch_never_fills_but_a_print_strictly_through_does() -> None:
    model = TradeThroughFillModel()
    a, b = ask("a", "0.60", 10), bid("b", "0.40", 10)
    assert model.on_trade(trade("0.60", 50, OrderSide.BUY), [a, b]) == []  # at our ask
    assert model.on_trade(trade("0.40", 50, OrderSide.SELL), [a, b]) == []  # at our bid
    assert fills_of(model.on_trade(trade("0.61", 4, OrderSide.BUY), [a, b])) == [("a", 6000, 4 * C)]
    assert fills_of(model.on_trade(trade("0.39", 3, OrderSide.SELL), [a, b])) == [("b", 4000, 3 * C)]


def test_only_the_takers_direction_fills() -> None:
    model = TradeThroughFillModel()
    # A taker selling YES at 0.61 hits bids, never our ask below it; a taker buying at 0.39 never our bid.
    assert model.on_trade(trade("0.61", 5, OrderSide.SELL), [ask("a", "0.60")]) == []
    assert model.on_trade(trade("0.39", 5, OrderSide.BUY), [bid("b", "0.40")]) == []
    # Our bid above a taker-sell print would have been hit first.
    assert fills_of(model.on_trade(trade("0.39", 5, OrderSide.SELL), [bid("b", "0.45")])) == [("b", 4500, 5 * C)]


def test_printed_size_is_consumed_once_in_price_then_time_priority() -> None:
    model = TradeThroughFillModel()
    resting = [ask("a1", "0.58", 3), ask("a2", "0.55", 3), ask("a3", "0.58", 3), ask("far", "0.65", 3)]
    got = model.on_trade(trade("0.60", 7, OrderSide.BUY), resting)
    assert fills_of(got) == [("a2", 5500, 3 * C), ("a1", 5800, 3 * C), ("a3", 5800, 1 * C)]


def test_no_orders_map_onto_the_yes_book() -> None:
    model = TradeThroughFillModel()
    buy_no = order("bn", "0.45", 4, side=Side.NO)  # = YES ask at 0.55
    sell_no = order("sn", "0.45", 4, side=Side.NO, order_side=OrderSide.SELL)  # = YES bid at 0.55
    assert model.on_trade(trade("0.55", 9, OrderSide.BUY), [buy_no, sell_no]) == []
    assert fills_of(model.on_trade(trade("0.56", 2, OrderSide.BUY), [buy_no, sell_no])) == [("bn", 5500, 2 * C)]
    assert fills_of(model.on_trade(trade("0.54", 9, OrderSide.SELL), [buy_no, sell_no])) == [("sn", 5500, 4 * C)]


def test_partial_fills_accumulate_to_the_order_size() -> None:
    model = TradeThroughFillModel()
    resting = [bid("b", "0.50", 10)]
    first = model.on_trade(trade("0.49", 4, OrderSide.SELL), resting)
    assert fills_of(first) == [("b", 5000, 4 * C)]
    resting = apply(resting, first)
    second = model.on_trade(trade("0.48", 20, OrderSide.SELL), resting)
    assert fills_of(second) == [("b", 5000, 6 * C)]  # only what remains
    assert apply(resting, second) == []


def test_trade_through_ignores_books_and_other_markets() -> None:
    model = TradeThroughFillModel()
    resting = [bid("b", "0.50")]
    assert model.on_book(book(asks=[("0.40", 50)]), resting) == []  # a displayed cross is not a trade
    assert model.on_trade(trade("0.40", 5, OrderSide.SELL, market="M2"), resting) == []


# ---------------------------------------------------------------- queue


def test_queue_ahead_is_eaten_by_trades_at_our_price_then_we_fill() -> None:
    model = QueueFillModel()
    a = ask("a", "0.60", 10)
    model.on_placed(a, book(asks=[("0.60", 5)]))
    assert model.queue_ahead("a") == 5 * C
    assert model.on_trade(trade("0.60", 3, OrderSide.BUY), [a]) == []
    assert model.queue_ahead("a") == 2 * C
    assert fills_of(model.on_trade(trade("0.60", 4, OrderSide.BUY), [a])) == [("a", 6000, 2 * C)]
    assert model.queue_ahead("a") == 0
    # Strictly through fills regardless of the queue, up to the print.
    through = ask("t", "0.58", 10)
    model.on_placed(through, book(asks=[("0.58", 50)]))
    assert fills_of(model.on_trade(trade("0.59", 4, OrderSide.BUY), [through])) == [("t", 5800, 4 * C)]


def test_queue_prints_are_shared_with_our_earlier_orders_at_the_same_price() -> None:
    model = QueueFillModel()
    first, second = bid("b1", "0.40", 4), bid("b2", "0.40", 10)
    model.on_placed(first, book(yes=[("0.40", 5)]))
    model.on_placed(second, book(yes=[("0.40", 8)]))  # three more joined between them
    got = model.on_trade(trade("0.40", 20, OrderSide.SELL), [first, second])
    # 5 real, our 4, 3 real, then the second gets 20 − 8 − 4 = 8.
    assert fills_of(got) == [("b1", 4000, 4 * C), ("b2", 4000, 8 * C)]
    assert model.queue_ahead("b1") is None  # fully filled: forgotten


def test_queue_book_decrease_is_split_by_the_power_share() -> None:
    model = QueueFillModel(PowerQueueShare(2))
    b = bid("b", "0.40")
    model.on_placed(b, book(yes=[("0.40", 5)]))
    model.on_book(book(yes=[("0.40", 15)]), [b])  # 10 join behind us
    assert model.queue_ahead("b") == 5 * C
    # 4 cancelled: ahead's share = 5² / (5² + 10²) = 0.2 → 0.8 contracts from ahead.
    model.on_book(book(yes=[("0.40", 11)]), [b])
    assert model.queue_ahead("b") == 420


def test_queue_decrease_beyond_those_behind_comes_from_ahead() -> None:
    model = QueueFillModel(PowerQueueShare(0))  # even split
    b = bid("b", "0.40")
    model.on_placed(b, book(yes=[("0.40", 5)]))
    model.on_book(book(yes=[("0.40", 6)]), [b])  # one behind us
    model.on_book(book(yes=[("0.40", 2)]), [b])  # 4 gone: half would be 2 from behind, but only 1 is there
    assert model.queue_ahead("b") == 2 * C


def test_queue_does_not_count_a_trade_twice_when_the_book_then_shows_it() -> None:
    model = QueueFillModel()
    b = bid("b", "0.40")
    model.on_placed(b, book(yes=[("0.40", 5)]))
    model.on_book(book(yes=[("0.40", 15)]), [b])
    model.on_trade(trade("0.40", 3, OrderSide.SELL), [b])
    assert model.queue_ahead("b") == 2 * C
    model.on_book(book(yes=[("0.40", 12)]), [b])  # exactly the trade's effect
    assert model.queue_ahead("b") == 2 * C
    model.on_book(book(yes=[("0.40", 1)]), [b])  # the level can never hold less than what is ahead of us
    assert model.queue_ahead("b") == 1 * C


def test_queue_position_unknown_until_a_book_is_seen() -> None:
    model = QueueFillModel(LogQueueShare())
    a = ask("a", "0.60", 10)
    model.on_placed(a, None)
    assert model.on_trade(trade("0.60", 50, OrderSide.BUY), [a]) == []  # a touch cannot be credited blindly
    model.on_book(book(asks=[("0.60", 5)]), [a])
    assert model.queue_ahead("a") == 5 * C
    assert fills_of(model.on_trade(trade("0.60", 6, OrderSide.BUY), [a])) == [("a", 6000, 1 * C)]
    model.on_cancelled("a")
    assert model.queue_ahead("a") is None


def test_queue_model_is_deterministic() -> None:
    def run(seed: int) -> list[list[SimFill]]:
        rng = random.Random(seed)
        model = QueueFillModel()
        resting = [bid(f"b{i}", f"0.{40 + i}", 10) for i in range(3)] + [
            ask(f"a{i}", f"0.{50 + i}", 10) for i in range(3)
        ]
        for o in resting:
            model.on_placed(o, book(yes=[("0.41", 5)], asks=[("0.51", 5)]))
        out = []
        for _ in range(200):
            if rng.random() < 0.5:
                out.append(
                    model.on_book(
                        book(yes=[("0.41", rng.randint(1, 20))], asks=[("0.51", rng.randint(1, 20))]), resting
                    )
                )
            else:
                taker = rng.choice([OrderSide.BUY, OrderSide.SELL])
                sims = model.on_trade(trade(f"0.{rng.randint(38, 54)}", rng.randint(1, 8), taker), resting)
                out.append(sims)
                resting = apply(resting, sims)
        return out

    assert run(7) == run(7)
    assert any(run(7))  # the run exercised fills


# ---------------------------------------------------------------- properties

orders_st = st.lists(
    st.tuples(
        st.sampled_from(list(Side)),
        st.sampled_from(list(OrderSide)),
        st.integers(1, 99),
        st.integers(1, 20_00),
    ),
    min_size=1,
    max_size=8,
)
events_st = st.lists(
    st.one_of(
        st.tuples(st.just("trade"), st.integers(1, 99), st.integers(1, 30_00), st.sampled_from(list(OrderSide))),
        st.tuples(st.just("book"), st.integers(1, 99), st.integers(1, 30_00), st.sampled_from(list(OrderSide))),
    ),
    max_size=30,
)


@pytest.mark.parametrize("make", [TradeThroughFillModel, QueueFillModel, lambda: QueueFillModel(LogQueueShare())])
@settings(max_examples=150, deadline=None)
@given(specs=orders_st, events=events_st, initial=st.integers(0, 50_00))
def test_fills_never_exceed_the_print_nor_the_order(
    make: Callable[[], FillModel],
    specs: list[tuple[Side, OrderSide, int, int]],
    events: list[tuple[str, int, int, OrderSide]],
    initial: int,
) -> None:
    model = make()
    resting: list[Order] = []
    for i, (side, order_side, cents, qty) in enumerate(specs):
        request = OrderRequest("M1", side, order_side, Price(cents * 100), Quantity(qty), f"c{i}")
        o = Order.pending(request, T0).acknowledged(f"o{i}", T0)
        bs, yp = request.yes_book()
        start = OrderBook(GRID)
        if initial:  # others already queued at our price: YES bids for a bid, NO bids at 1 − P for an ask
            if bs is BookSide.BID:
                start.apply_snapshot([(yp.units, initial)], [], T0)
            else:
                start.apply_snapshot([], [(10_000 - yp.units, initial)], T0)
        model.on_placed(o, start)
        resting.append(o)
    sizes = {o.exchange_order_id: o.request.quantity.units for o in resting}
    filled = dict.fromkeys(sizes, 0)
    printed = 0
    for kind, cents, qty, taker in events:
        if kind == "book":
            b = OrderBook(GRID)
            # A random book on both sides at one price: a level size change the queue model must absorb.
            b.apply_snapshot([(cents * 100, qty)], [(10_000 - cents * 100, qty)], T0)
            assert model.on_book(b, resting) == []  # tape models never fill on the book alone
            continue
        tr = PublicTrade("M1", "t", Price(cents * 100), Quantity(qty), taker, T0)
        sims = model.on_trade(tr, resting)
        printed += qty
        assert sum(s.quantity_units for s in sims) <= qty
        for s in sims:
            o = next(x for x in resting if x.exchange_order_id == s.order_id)
            bs, yp = o.request.yes_book()
            assert s.yes_price_units == yp.units and not s.is_taker  # passive, at its own price
            through_or_at = yp.units <= tr.price.units if taker is OrderSide.BUY else yp.units >= tr.price.units
            assert (bs is BookSide.ASK) is (taker is OrderSide.BUY) and through_or_at
            if isinstance(model, TradeThroughFillModel):
                assert yp.units != tr.price.units  # never on a touch
            filled[s.order_id] += s.quantity_units
        resting = apply(resting, sims)
    for oid, n in filled.items():
        assert n <= sizes[oid]
    assert sum(filled.values()) <= printed
