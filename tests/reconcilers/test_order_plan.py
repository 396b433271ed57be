"""The pure order planner: hand-worked cases for every rule, and properties of applying a plan.

Prices are written in cents (``48`` = $0.48 = ``Price(4800)``) and sizes in contracts; the planner works in
$0.0001 and 1/100-contract units.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mm.adapters.base import Capabilities
from mm.domain.orders import Order, OrderRequest
from mm.domain.price import Price, Quantity
from mm.domain.quotes import Quote, QuoteSet
from mm.domain.sides import OrderSide, Side, TimeInForce
from mm.domain.ticks import TickGrid
from mm.reconcilers.client_ids import Level, make_client_order_id, parse_client_order_id
from mm.reconcilers.order_plan import (
    Amend,
    Cancel,
    Decrease,
    DesiredLevel,
    OrderPlan,
    Place,
    PlanContext,
    PlanError,
    Reason,
    desired_levels,
    plan_orders,
)
from mm.risk.states import TradingState

MARKET = "KXBTCD-26AUG1317-T73249.99"
GRID = TickGrid.linear_cent()
NOW = 1_780_000_000_000_000
GENERATION = 4
KALSHI = Capabilities(
    amend=True,
    decrease=True,
    batch_create_limit=10,
    batch_cancel_limit=50,
    unified_book=True,
    fractional_counts=True,
    tick_grids=True,
    post_only=True,
    self_trade_prevention=True,
    client_order_ids=True,
)
CANCEL_ONLY = replace(KALSHI, amend=False, decrease=False)
SEPARATE_BOOKS = replace(KALSHI, unified_book=False)  # Polymarket-like: a book per contract


def cents(c: int) -> Price:
    return Price(c * 100)


def qty(contracts: float) -> Quantity:
    return Quantity(round(contracts * 100))


def quotes(bid: tuple[int, float] | None = (48, 10), ask: tuple[int, float] | None = (52, 10)) -> QuoteSet:
    """The four FR-402 quotes from a YES bid and ask, each (cents, contracts)."""
    return QuoteSet.from_yes(
        MARKET,
        NOW,
        (cents(bid[0]), qty(bid[1])) if bid else None,
        (cents(ask[0]), qty(ask[1])) if ask else None,
    )


def ctx(**overrides: Any) -> PlanContext:
    values: dict[str, Any] = {
        "market_id": MARKET,
        "grid": GRID,
        "capabilities": KALSHI,
        "generation": GENERATION,
        "now_us": NOW,
    }
    values.update(overrides)
    return PlanContext(**values)


_SERIAL = iter(range(10**9))


def resting(
    level: Level,
    price_cents: int,
    contracts: float,
    *,
    filled: float = 0,
    attempt: int = 0,
    generation: int = GENERATION,
    client_order_id: str | None = None,
    acknowledged: bool = True,
    created_us: int = NOW - 5_000_000,
    terms: Side | None = None,
) -> Order:
    """One open order at ``level`` (price in the level's contract), expressed in ``terms`` (default: the level's)."""
    side, order_side = level.side, level.order_side
    price = cents(price_cents)
    if terms is not None and terms is not side:  # the same order expressed on the other contract
        side, order_side, price = side.other, order_side.other, price.complement()
    cid = client_order_id or make_client_order_id("mm", MARKET, generation, level, attempt)
    request = OrderRequest(MARKET, side, order_side, price, qty(contracts), cid)
    order = Order.pending(request, created_us)
    if acknowledged:
        order = order.acknowledged(f"ex-{next(_SERIAL)}", created_us)
    if filled:
        order = order.with_fill(qty(filled), created_us)
    return order


def kinds(plan: OrderPlan) -> list[str]:
    return [type(a).__name__ for a in plan.actions]


def places(plan: OrderPlan) -> list[Place]:
    return [a for a in plan.actions if isinstance(a, Place)]


# --- first placement, merge, NO mapping -------------------------------------------------------------------


def test_first_placement_places_two_merged_orders_not_four() -> None:
    plan = plan_orders(quotes(), [], ctx())
    assert kinds(plan) == ["Place", "Place"]
    bid, ask = (p.request for p in places(plan))
    assert (bid.side, bid.order_side, bid.price, bid.quantity) == (Side.YES, OrderSide.BUY, cents(48), qty(10))
    assert (ask.side, ask.order_side, ask.price, ask.quantity) == (Side.YES, OrderSide.SELL, cents(52), qty(10))
    for request in (bid, ask):
        assert request.post_only and not request.reduce_only
        assert request.time_in_force is TimeInForce.GOOD_TILL_CANCELED
        assert request.market_id == MARKET
    assert parse_client_order_id(bid.client_order_id, "mm") is not None
    assert [p.reason for p in places(plan)] == [Reason.NEW, Reason.NEW]
    assert plan.desired == (
        DesiredLevel(Level.YES_BID, cents(48), qty(10)),
        DesiredLevel(Level.YES_ASK, cents(52), qty(10)),
    )
    assert not plan.deferred and plan.kept == () and plan.foreign == ()


def test_place_ids_encode_generation_level_and_attempt() -> None:
    plan = plan_orders(quotes(), [], ctx())
    parsed = [parse_client_order_id(p.request.client_order_id, "mm") for p in places(plan)]
    assert [(c.generation, c.level, c.attempt) for c in parsed if c] == [
        (GENERATION, Level.YES_BID, 0),
        (GENERATION, Level.YES_ASK, 0),
    ]
    # A re-plan (e.g. after a timed-out create that never showed up) gives the same ids: no duplicate order.
    again = plan_orders(quotes(), [], ctx())
    assert [p.request.client_order_id for p in places(again)] == [p.request.client_order_id for p in places(plan)]


def test_no_side_quotes_map_onto_the_yes_book() -> None:
    # Only NO quotes: a NO bid at 0.45 is a YES ask at 0.55; a NO ask at 0.60 is a YES bid at 0.40.
    only_no = QuoteSet(
        MARKET,
        NOW,
        None,
        None,
        Quote(Side.NO, OrderSide.BUY, cents(45), qty(5)),
        Quote(Side.NO, OrderSide.SELL, cents(60), qty(7)),
    )
    plan = plan_orders(only_no, [], ctx())
    bid, ask = (p.request for p in places(plan))
    assert (bid.side, bid.order_side, bid.price, bid.quantity) == (Side.YES, OrderSide.BUY, cents(40), qty(7))
    assert (ask.side, ask.order_side, ask.price, ask.quantity) == (Side.YES, OrderSide.SELL, cents(55), qty(5))


def test_an_open_no_order_is_recognised_on_its_yes_level() -> None:
    # Buy NO at 0.48 rests as a YES ask at 0.52: it satisfies the desired YES ask, nothing to do there.
    no_terms = resting(Level.YES_ASK, 52, 10, terms=Side.NO)
    assert no_terms.request.side is Side.NO and no_terms.request.price == cents(48)
    plan = plan_orders(quotes(), [resting(Level.YES_BID, 48, 10), no_terms], ctx())
    assert plan.actions == ()
    assert no_terms in plan.kept


def test_an_amend_of_a_no_terms_order_is_priced_in_no_terms() -> None:
    no_terms = resting(Level.YES_ASK, 52, 10, terms=Side.NO)
    plan = plan_orders(quotes(ask=(54, 10)), [resting(Level.YES_BID, 48, 10), no_terms], ctx())
    (amend,) = plan.actions
    assert isinstance(amend, Amend) and amend.price == cents(46)  # YES ask 0.54 = NO bid 0.46


def test_equivalent_quotes_merge_into_one_order_sized_for_the_larger() -> None:
    q = QuoteSet(
        MARKET,
        NOW,
        Quote(Side.YES, OrderSide.BUY, cents(48), qty(10)),
        None,
        None,
        Quote(Side.NO, OrderSide.SELL, cents(52), qty(12)),  # ≡ YES bid 0.48 × 12
    )
    assert desired_levels(q, ctx()) == (DesiredLevel(Level.YES_BID, cents(48), qty(12)),)


def test_non_complementary_quotes_merge_to_the_less_aggressive_one() -> None:
    q = QuoteSet(
        MARKET,
        NOW,
        Quote(Side.YES, OrderSide.BUY, cents(48), qty(10)),
        Quote(Side.YES, OrderSide.SELL, cents(52), qty(10)),
        Quote(Side.NO, OrderSide.BUY, cents(49), qty(3)),  # ≡ YES ask 0.51: tighter than 0.52
        Quote(Side.NO, OrderSide.SELL, cents(54), qty(4)),  # ≡ YES bid 0.46: wider than 0.48
    )
    assert desired_levels(q, ctx()) == (
        DesiredLevel(Level.YES_BID, cents(46), qty(4)),
        DesiredLevel(Level.YES_ASK, cents(52), qty(10)),
    )


def test_separate_books_keep_four_orders_in_their_own_prices() -> None:
    plan = plan_orders(quotes(), [], ctx(capabilities=SEPARATE_BOOKS))
    got = [(p.request.side, p.request.order_side, p.request.price, p.level) for p in places(plan)]
    assert got == [
        (Side.YES, OrderSide.BUY, cents(48), Level.YES_BID),
        (Side.YES, OrderSide.SELL, cents(52), Level.YES_ASK),
        (Side.NO, OrderSide.BUY, cents(48), Level.NO_BID),
        (Side.NO, OrderSide.SELL, cents(52), Level.NO_ASK),
    ]


# --- materiality -----------------------------------------------------------------------------------------


def test_unchanged_quotes_give_an_empty_plan() -> None:
    orders = [resting(Level.YES_BID, 48, 10), resting(Level.YES_ASK, 52, 10)]
    plan = plan_orders(quotes(), orders, ctx())
    assert plan.actions == () and plan.is_empty
    assert plan.kept == tuple(orders)


def test_a_move_below_the_threshold_keeps_the_order() -> None:
    orders = [resting(Level.YES_BID, 48, 10), resting(Level.YES_ASK, 52, 10)]
    plan = plan_orders(quotes(bid=(49, 10), ask=(53, 10)), orders, ctx(materiality_ticks=2))
    assert plan.actions == ()


def test_a_move_at_the_threshold_amends() -> None:
    bid, ask = resting(Level.YES_BID, 48, 10), resting(Level.YES_ASK, 52, 10)
    plan = plan_orders(quotes(bid=(46, 10), ask=(53, 10)), [bid, ask], ctx(materiality_ticks=2))
    (amend,) = plan.actions
    assert amend == Amend(
        bid.exchange_order_id or "",
        cents(46),
        qty(10),
        Reason.PRICE_MOVED,
        bid.client_order_id,
        Level.YES_BID,
        qty(10),
    )
    assert plan.kept == (ask,)


def test_the_default_threshold_replaces_on_a_one_tick_move() -> None:
    orders = [resting(Level.YES_BID, 48, 10), resting(Level.YES_ASK, 52, 10)]
    plan = plan_orders(quotes(bid=(47, 10), ask=(53, 10)), orders, ctx())
    assert kinds(plan) == ["Amend", "Amend"]


def test_without_amend_a_move_is_cancel_then_place_with_a_new_attempt() -> None:
    bid = resting(Level.YES_BID, 48, 10, attempt=2)
    plan = plan_orders(quotes(bid=(46, 10), ask=None), [bid], ctx(capabilities=CANCEL_ONLY))
    cancel, place = plan.actions
    assert cancel == Cancel(bid.exchange_order_id, Reason.PRICE_MOVED, bid.client_order_id, Level.YES_BID)
    assert isinstance(place, Place) and place.request.price == cents(46) and place.reason is Reason.PRICE_MOVED
    assert place.attempt == 3 and place.request.client_order_id != bid.client_order_id


def test_amend_quantity_is_the_new_total_including_fills() -> None:
    bid = resting(Level.YES_BID, 48, 10, filled=4)  # 6 remain
    plan = plan_orders(quotes(bid=(47, 10), ask=None), [bid], ctx())
    (amend,) = plan.actions
    assert isinstance(amend, Amend)
    assert (amend.price, amend.quantity, amend.remaining) == (cents(47), qty(14), qty(10))


@pytest.mark.parametrize(
    ("remaining", "desired", "material"),
    [
        (95, 100, False),  # 5 short of 100: under 10 %
        (90.01, 100, False),
        (90, 100, True),  # 10 short: 10 %
        (9.5, 10, False),  # 0.5 short: under 1 contract
        (9, 10, True),  # 1 contract short
        (0.3, 0.5, False),  # tiny orders: tolerance capped at half the size (0.25)
        (0.25, 0.5, True),
    ],
)
def test_size_shortfall_materiality(remaining: float, desired: float, material: bool) -> None:
    bid = resting(Level.YES_BID, 48, remaining)
    plan = plan_orders(quotes(bid=(48, desired), ask=None), [bid], ctx())
    if material:
        (amend,) = plan.actions
        assert isinstance(amend, Amend) and amend.reason is Reason.SIZE_SHORT and amend.remaining == qty(desired)
    else:
        assert plan.actions == () and plan.kept == (bid,)


def test_resting_more_than_approved_is_decreased_at_the_same_price() -> None:
    bid = resting(Level.YES_BID, 48, 10.01)
    plan = plan_orders(quotes(bid=(48, 10), ask=None), [bid], ctx(materiality_ticks=1))
    assert plan.actions == (
        Decrease(bid.exchange_order_id or "", qty(10), Reason.OVERSIZE, bid.client_order_id, Level.YES_BID),
    )
    # A 1-tick move below a threshold of 2 keeps the old price: still a pure decrease (queue priority kept).
    plan = plan_orders(quotes(bid=(49, 10), ask=None), [bid], ctx(materiality_ticks=2))
    assert kinds(plan) == ["Decrease"]


def test_a_decrease_without_the_capability_is_an_amend_at_the_same_price() -> None:
    bid = resting(Level.YES_BID, 48, 12, filled=2)  # 10 remain, 8 wanted
    plan = plan_orders(quotes(bid=(48, 8), ask=None), [bid], ctx(capabilities=replace(KALSHI, decrease=False)))
    (amend,) = plan.actions
    assert isinstance(amend, Amend)
    assert (amend.price, amend.quantity, amend.remaining, amend.reason) == (cents(48), qty(10), qty(8), Reason.OVERSIZE)


def test_an_unacknowledged_order_is_cancelled_by_client_id_and_replaced() -> None:
    pending = resting(Level.YES_BID, 48, 10, acknowledged=False)
    plan = plan_orders(quotes(bid=(46, 10), ask=None), [pending], ctx())
    cancel, place = plan.actions
    assert cancel == Cancel(None, Reason.PRICE_MOVED, pending.client_order_id, Level.YES_BID)
    assert isinstance(place, Place) and place.attempt == 1


def test_a_kept_price_that_crosses_the_other_side_is_replaced() -> None:
    # Threshold 3: the bid at 0.52 is 2 ticks from the desired 0.50, but the desired ask is 0.52.
    bid = resting(Level.YES_BID, 52, 10)
    plan = plan_orders(quotes(bid=(50, 10), ask=(52, 10)), [bid], ctx(materiality_ticks=3))
    amend, place = plan.actions
    assert isinstance(amend, Amend) and amend.reason is Reason.CROSSING and amend.price == cents(50)
    assert isinstance(place, Place) and place.level is Level.YES_ASK


# --- trading states ----------------------------------------------------------------------------------------


def test_halted_cancels_everything_of_ours_and_places_nothing() -> None:
    ours = [resting(Level.YES_BID, 48, 10), resting(Level.YES_ASK, 52, 10), resting(Level.YES_ASK, 53, 1, attempt=1)]
    theirs = resting(Level.YES_BID, 47, 5, client_order_id="manual-order-1")
    plan = plan_orders(quotes(), [*ours, theirs], ctx(trading_state=TradingState.HALTED))
    assert kinds(plan) == ["Cancel"] * 3
    assert {a.client_order_id for a in plan.actions if isinstance(a, Cancel)} == {o.client_order_id for o in ours}
    assert {a.reason for a in plan.actions if isinstance(a, Cancel)} == {Reason.HALTED}
    assert plan.desired == () and plan.foreign == (theirs,)


def test_halted_never_refuses_even_bad_quotes() -> None:
    off_grid = QuoteSet(MARKET, NOW, Quote(Side.YES, OrderSide.BUY, Price(4850), qty(1)), None, None, None)
    plan = plan_orders(off_grid, [resting(Level.YES_BID, 48, 10)], ctx(trading_state=TradingState.HALTED))
    assert kinds(plan) == ["Cancel"]


def test_reducing_long_quotes_only_a_yes_ask_sized_to_the_position() -> None:
    bid = resting(Level.YES_BID, 48, 10)
    plan = plan_orders(quotes(), [bid], ctx(trading_state=TradingState.REDUCING, position_units=300))
    cancel, place = plan.actions
    assert cancel == Cancel(bid.exchange_order_id, Reason.REDUCING, bid.client_order_id, Level.YES_BID)
    assert isinstance(place, Place)
    request = place.request
    assert (request.order_side, request.price, request.quantity) == (OrderSide.SELL, cents(52), qty(3))
    assert request.reduce_only and request.post_only
    assert plan.desired == (DesiredLevel(Level.YES_ASK, cents(52), qty(3)),)


def test_reducing_short_quotes_only_a_yes_bid() -> None:
    plan = plan_orders(quotes(), [], ctx(trading_state=TradingState.REDUCING, position_units=-250))
    (place,) = places(plan)
    assert (place.level, place.request.quantity) == (Level.YES_BID, qty(2.5))


def test_reducing_trims_an_ask_larger_than_the_position() -> None:
    ask = resting(Level.YES_ASK, 52, 10)
    plan = plan_orders(quotes(), [ask], ctx(trading_state=TradingState.REDUCING, position_units=400))
    (decrease,) = plan.actions
    assert isinstance(decrease, Decrease) and decrease.reduce_to == qty(4)


def test_reducing_flat_cancels_everything() -> None:
    orders = [resting(Level.YES_BID, 48, 10), resting(Level.YES_ASK, 52, 10)]
    plan = plan_orders(quotes(), orders, ctx(trading_state=TradingState.REDUCING, position_units=0))
    assert kinds(plan) == ["Cancel", "Cancel"] and plan.desired == ()


def test_reducing_on_separate_books_caps_the_reducing_levels_together() -> None:
    plan = plan_orders(
        quotes(), [], ctx(capabilities=SEPARATE_BOOKS, trading_state=TradingState.REDUCING, position_units=1500)
    )
    assert [(p.level, p.request.quantity) for p in places(plan)] == [(Level.YES_ASK, qty(10)), (Level.NO_BID, qty(5))]


def test_nothing_desired_cancels_our_orders() -> None:
    bid = resting(Level.YES_BID, 48, 10)
    plan = plan_orders(None, [bid], ctx())
    assert plan.actions == (Cancel(bid.exchange_order_id, Reason.NOT_DESIRED, bid.client_order_id, Level.YES_BID),)


# --- throttle ----------------------------------------------------------------------------------------------


def test_throttle_defers_a_price_move() -> None:
    bid, ask = resting(Level.YES_BID, 48, 10), resting(Level.YES_ASK, 52, 10)
    last = NOW - 40_000  # 40 ms ago, the limit is 10 updates/s
    plan = plan_orders(quotes(bid=(46, 10)), [bid, ask], ctx(last_update_us=last))
    assert plan.actions == ()
    assert plan.deferred and plan.retry_at_us == last + 100_000
    assert plan.deferred_reason is not None and "NFR-102" in plan.deferred_reason
    assert set(plan.kept) == {bid, ask}
    # Once the interval has passed the same inputs plan the update.
    later = plan_orders(quotes(bid=(46, 10)), [bid, ask], ctx(last_update_us=last, now_us=last + 100_000))
    assert kinds(later) == ["Amend"] and not later.deferred


def test_throttle_defers_new_placements_but_not_safety_cancels() -> None:
    bid = resting(Level.YES_BID, 48, 10)
    plan = plan_orders(quotes(bid=None, ask=(52, 10)), [bid], ctx(last_update_us=NOW - 1))
    assert plan.actions == (Cancel(bid.exchange_order_id, Reason.NOT_DESIRED, bid.client_order_id, Level.YES_BID),)
    assert plan.deferred  # the ask placement waits


def test_throttle_still_cancels_a_crossing_order() -> None:
    bid = resting(Level.YES_BID, 53, 10)  # the desired ask moved down to 0.52: this bid is stale
    plan = plan_orders(quotes(), [bid], ctx(last_update_us=NOW - 1))
    assert plan.actions == (Cancel(bid.exchange_order_id, Reason.CROSSING, bid.client_order_id, Level.YES_BID),)
    assert plan.deferred


def test_throttle_still_trims_an_oversized_order() -> None:
    bid = resting(Level.YES_BID, 48, 20)
    plan = plan_orders(quotes(bid=(46, 10)), [bid], ctx(last_update_us=NOW - 1))
    (decrease,) = [a for a in plan.actions if a.level is Level.YES_BID]
    assert isinstance(decrease, Decrease) and decrease.reduce_to == qty(10)
    assert plan.deferred


def test_throttle_uses_the_configured_rate() -> None:
    context = ctx(last_update_us=NOW - 300_000, max_updates_per_second=2)
    assert context.update_interval_us == 500_000
    assert plan_orders(quotes(), [], context).deferred


def test_unthrottled_plan_is_not_deferred_when_nothing_waits() -> None:
    orders = [resting(Level.YES_BID, 48, 10), resting(Level.YES_ASK, 52, 10)]
    plan = plan_orders(quotes(), orders, ctx(last_update_us=NOW - 1))
    assert not plan.deferred and plan.deferred_reason is None and plan.retry_at_us is None


# --- duplicates, foreign orders, ordering --------------------------------------------------------------------


def test_duplicates_keep_the_closest_and_cancel_the_rest() -> None:
    good = resting(Level.YES_BID, 48, 10)
    worse = resting(Level.YES_BID, 47, 10, attempt=1)
    plan = plan_orders(quotes(), [worse, good, resting(Level.YES_ASK, 52, 10)], ctx())
    assert plan.actions == (Cancel(worse.exchange_order_id, Reason.DUPLICATE, worse.client_order_id, Level.YES_BID),)
    assert good in plan.kept


def test_duplicates_at_one_price_keep_the_oldest() -> None:
    old = resting(Level.YES_BID, 48, 10, created_us=NOW - 9_000_000)
    new = resting(Level.YES_BID, 48, 10, attempt=1, created_us=NOW - 1_000_000)
    plan = plan_orders(quotes(ask=None), [new, old], ctx())
    assert [a.client_order_id for a in plan.actions if isinstance(a, Cancel)] == [new.client_order_id]


def test_foreign_orders_are_never_touched_and_are_reported() -> None:
    manual = resting(Level.YES_BID, 48, 10, client_order_id="3f1c2d4e-5a6b-4c7d-8e9f-0a1b2c3d4e5f")
    other_tool = resting(Level.YES_ASK, 52, 10, client_order_id="xx:0123456789ab:4:ya:0")
    other_market = resting(
        Level.YES_ASK, 53, 10, client_order_id=make_client_order_id("mm", "OTHER", 4, Level.YES_ASK, 0)
    )
    foreign = [manual, other_tool, other_market]
    plan = plan_orders(quotes(), foreign, ctx())
    assert kinds(plan) == ["Place", "Place"]  # ours are missing; theirs do not count
    assert plan.foreign == tuple(foreign)
    touched = {a.client_order_id for a in plan.actions if not isinstance(a, Place)}
    assert touched.isdisjoint(o.client_order_id for o in foreign)
    halted = plan_orders(quotes(), foreign, ctx(trading_state=TradingState.HALTED))
    assert halted.actions == () and halted.foreign == tuple(foreign)


def test_terminal_orders_are_ignored() -> None:
    done = resting(Level.YES_BID, 48, 10).cancelled(NOW)
    plan = plan_orders(quotes(ask=None), [done], ctx())
    assert kinds(plan) == ["Place"] and plan.kept == ()


def test_actions_are_ordered_cancels_then_amends_then_places_reducing_first() -> None:
    long_position = 500  # 5 contracts long YES: YES bids and NO asks add to it, YES asks and NO bids reduce it
    orders = [
        resting(Level.YES_BID, 48, 12),  # oversize → Decrease
        resting(Level.YES_BID, 40, 10, attempt=1),  # duplicate → Cancel (adds: cancelled first)
        resting(Level.YES_ASK, 60, 10),  # price moved → Amend
        resting(Level.NO_BID, 30, 10, attempt=2),  # no NO bid desired → Cancel (reduces: after the other)
    ]
    q = QuoteSet(
        MARKET,
        NOW,
        Quote(Side.YES, OrderSide.BUY, cents(48), qty(10)),
        Quote(Side.YES, OrderSide.SELL, cents(52), qty(10)),
        None,
        Quote(Side.NO, OrderSide.SELL, cents(55), qty(10)),
    )
    plan = plan_orders(q, orders, ctx(capabilities=SEPARATE_BOOKS, position_units=long_position))
    summary = [(type(a).__name__, a.level, a.reason) for a in plan.actions]
    assert summary == [
        ("Cancel", Level.YES_BID, Reason.DUPLICATE),
        ("Cancel", Level.NO_BID, Reason.NOT_DESIRED),
        ("Decrease", Level.YES_BID, Reason.OVERSIZE),
        ("Amend", Level.YES_ASK, Reason.PRICE_MOVED),
        ("Place", Level.NO_ASK, Reason.NEW),
    ]


def test_places_reducing_the_position_come_before_places_adding_to_it() -> None:
    plan = plan_orders(quotes(), [], ctx(position_units=-700))  # short: bids reduce, asks add
    assert [p.level for p in places(plan)] == [Level.YES_BID, Level.YES_ASK]
    plan = plan_orders(quotes(), [], ctx(position_units=700))
    assert [p.level for p in places(plan)] == [Level.YES_ASK, Level.YES_BID]


def test_amends_that_back_off_come_before_amends_that_tighten() -> None:
    orders = [resting(Level.YES_BID, 48, 10), resting(Level.YES_ASK, 52, 10)]
    plan = plan_orders(quotes(bid=(49, 10), ask=(54, 10)), orders, ctx())  # bid tightens, ask backs off
    assert [a.level for a in plan.actions] == [Level.YES_ASK, Level.YES_BID]


def test_attempt_counter_from_the_context_is_used() -> None:
    plan = plan_orders(quotes(ask=None), [], ctx(attempts={Level.YES_BID: 7}))
    (place,) = places(plan)
    assert place.attempt == 7 and place.request.client_order_id.endswith(":yb:7")


# --- refusals and summary ------------------------------------------------------------------------------------


def test_off_grid_desired_quotes_are_refused() -> None:
    q = QuoteSet(MARKET, NOW, Quote(Side.YES, OrderSide.BUY, Price(4850), qty(1)), None, None, None)
    with pytest.raises(PlanError, match=r"yes_bid at 0\.4850 is off the tick grid"):
        plan_orders(q, [], ctx())


def test_crossed_desired_quotes_are_refused() -> None:
    q = QuoteSet(
        MARKET,
        NOW,
        Quote(Side.YES, OrderSide.BUY, cents(56), qty(1)),
        None,
        Quote(Side.NO, OrderSide.BUY, cents(45), qty(1)),  # YES ask 0.55, below the bid
        None,
    )
    with pytest.raises(PlanError, match="is not below"):
        plan_orders(q, [], ctx())


def test_orders_or_quotes_of_another_market_are_refused() -> None:
    other = QuoteSet.from_yes("OTHER", NOW, (cents(48), qty(1)), None)
    with pytest.raises(PlanError, match="desired quotes are for 'OTHER'"):
        plan_orders(other, [], ctx())
    stray = Order.pending(OrderRequest("OTHER", Side.YES, OrderSide.BUY, cents(48), qty(1), "x"), NOW)
    with pytest.raises(PlanError, match="is in 'OTHER'"):
        plan_orders(None, [stray], ctx())


@pytest.mark.parametrize(
    "overrides",
    [
        {"materiality_ticks": 0},
        {"size_tolerance_pct": 101},
        {"size_tolerance_units": -1},
        {"client_id_prefix": "m:m"},
        {"generation": -1},
        {"max_updates_per_second": 0},
        {"trading_state": "halted"},
    ],
)
def test_bad_contexts_are_refused(overrides: dict[str, Any]) -> None:
    with pytest.raises((ValueError, TypeError)):
        ctx(**overrides)


def test_summary_is_json_friendly() -> None:
    theirs = resting(Level.YES_BID, 47, 5, client_order_id="manual")
    bid = resting(Level.YES_BID, 48, 10)
    summary = plan_orders(quotes(), [bid, theirs], ctx()).summary()
    assert summary == {
        "state": "active",
        "desired": [
            {"level": "yb", "price": "0.4800", "size": "10.00"},
            {"level": "ya", "price": "0.5200", "size": "10.00"},
        ],
        "actions": {"place": 1},
        "kept": [bid.client_order_id],
        "foreign": ["manual"],
        "deferred": False,
        "deferred_reason": None,
        "retry_at_us": None,
    }


# --- properties: apply the plan, check the result ------------------------------------------------------------

_RANK = {Cancel: 0, Decrease: 1, Amend: 1, Place: 2}


def _level_price(order: Order) -> tuple[Level, int]:
    book_side, yes_price = order.request.yes_book()
    return (Level.YES_BID if book_side.value == "bid" else Level.YES_ASK), yes_price.units


def apply(plan: OrderPlan, open_orders: list[Order]) -> list[tuple[str, Level, int, int]]:
    """Simulate the venue: returns our resting orders as (client id, level, YES price units, remaining units)."""
    book: dict[str, tuple[str, Level, int, int, int]] = {}  # key → (cid, level, price, filled, remaining)
    foreign = {o.client_order_id for o in plan.foreign}
    for order in open_orders:
        if order.status.is_live and order.client_order_id not in foreign and not order.remaining.is_zero:
            level, price = _level_price(order)
            key = order.exchange_order_id or order.client_order_id
            book[key] = (order.client_order_id, level, price, order.filled.units, order.remaining.units)
    by_cid = {v[0]: k for k, v in book.items()}
    for action in plan.actions:
        if isinstance(action, Place):
            request = action.request
            assert request.client_order_id not in by_cid, "a new order must not reuse a live id"
            level, price = _level_price(Order.pending(request, NOW))
            book[request.client_order_id] = (request.client_order_id, level, price, 0, request.quantity.units)
            by_cid[request.client_order_id] = request.client_order_id
            continue
        assert action.client_order_id not in foreign, "a foreign order was touched"
        key = action.order_id if action.order_id is not None else by_cid[action.client_order_id]
        cid, level, price, filled, _ = book[key]
        if isinstance(action, Cancel):
            del book[key]
        elif isinstance(action, Decrease):
            book[key] = (cid, level, price, filled, action.reduce_to.units)
        else:
            # Amend prices are in the order's own contract; these test orders are all in YES terms.
            assert action.quantity.units == filled + action.remaining.units
            book[key] = (cid, level, action.price.units, filled, action.remaining.units)
    return [(cid, level, price, remaining) for cid, level, price, _, remaining in book.values()]


@st.composite
def desired_sets(draw: st.DrawFn) -> QuoteSet | None:
    if draw(st.booleans()) and draw(st.booleans()):
        return None
    bid = draw(st.integers(1, 97))
    ask = draw(st.integers(bid + 1, 99))
    sizes = st.integers(1, 5000)  # 0.01 to 50 contracts
    yes_bid = Quote(Side.YES, OrderSide.BUY, cents(bid), Quantity(draw(sizes))) if draw(st.booleans()) else None
    yes_ask = Quote(Side.YES, OrderSide.SELL, cents(ask), Quantity(draw(sizes))) if draw(st.booleans()) else None
    no_bid = Quote(Side.NO, OrderSide.BUY, cents(100 - ask), Quantity(draw(sizes))) if draw(st.booleans()) else None
    no_ask = Quote(Side.NO, OrderSide.SELL, cents(100 - bid), Quantity(draw(sizes))) if draw(st.booleans()) else None
    return QuoteSet(MARKET, NOW, yes_bid, yes_ask, no_bid, no_ask)


@st.composite
def open_order_lists(draw: st.DrawFn) -> list[Order]:
    orders = []
    for i in range(draw(st.integers(0, 5))):
        level = draw(st.sampled_from([Level.YES_BID, Level.YES_ASK]))
        size = draw(st.integers(1, 5000))
        filled = draw(st.integers(0, size - 1))
        ours = draw(st.integers(0, 3)) > 0
        order = resting(
            level,
            draw(st.integers(1, 99)),
            size / 100,
            filled=filled / 100,
            attempt=i,
            generation=draw(st.sampled_from([GENERATION - 1, GENERATION])),
            client_order_id=None if ours else f"foreign-{i}",
            acknowledged=draw(st.integers(0, 4)) > 0,
            created_us=NOW - draw(st.integers(0, 10**7)),
        )
        orders.append(order)
    return orders


def _merged(desired: QuoteSet | None, context: PlanContext) -> dict[Level, tuple[int, int]]:
    return {d.level: (d.price.units, d.size.units) for d in desired_levels(desired, context)}


def _check_structure(plan: OrderPlan, open_orders: list[Order]) -> list[tuple[str, Level, int, int]]:
    ranks = [_RANK[type(a)] for a in plan.actions]
    assert ranks == sorted(ranks), "cancels, then amends/decreases, then places"
    result = apply(plan, open_orders)
    levels = [level for _, level, _, _ in result]
    assert len(levels) == len(set(levels)), "never two of our orders on one level"
    return result


@settings(max_examples=300, deadline=None)
@given(desired=desired_sets(), open_orders=open_order_lists(), amend=st.booleans(), decrease=st.booleans())
def test_applying_the_plan_yields_exactly_the_desired_levels(
    desired: QuoteSet | None, open_orders: list[Order], amend: bool, decrease: bool
) -> None:
    context = ctx(
        capabilities=replace(KALSHI, amend=amend, decrease=decrease), size_tolerance_units=0, size_tolerance_pct=0
    )
    plan = plan_orders(desired, open_orders, context)
    assert not plan.deferred
    result = _check_structure(plan, open_orders)
    assert {level: (price, size) for _, level, price, size in result} == _merged(desired, context)


@settings(max_examples=300, deadline=None)
@given(
    desired=desired_sets(),
    open_orders=open_order_lists(),
    amend=st.booleans(),
    materiality=st.integers(1, 4),
)
def test_with_tolerances_the_result_is_within_them(
    desired: QuoteSet | None, open_orders: list[Order], amend: bool, materiality: int
) -> None:
    context = ctx(capabilities=replace(KALSHI, amend=amend), materiality_ticks=materiality)
    plan = plan_orders(desired, open_orders, context)
    result = _check_structure(plan, open_orders)
    wanted = _merged(desired, context)
    assert {level for _, level, _, _ in result} == set(wanted)
    final = {level: price for _, level, price, _ in result}
    if Level.YES_BID in final and Level.YES_ASK in final:
        assert final[Level.YES_BID] < final[Level.YES_ASK], "our own orders never cross"
    for _, level, price, remaining in result:
        want_price, want_size = wanted[level]
        assert abs(GRID.index_of(price) - GRID.index_of(want_price)) < materiality
        assert remaining <= want_size, "never rest more than approved"
        shortfall = want_size - remaining
        assert shortfall == 0 or shortfall < min(max(100, want_size * 10 // 100), want_size // 2)


@settings(max_examples=200, deadline=None)
@given(
    desired=desired_sets(),
    open_orders=open_order_lists(),
    state=st.sampled_from(TradingState),
    position=st.integers(-3000, 3000),
)
def test_halted_and_reducing_never_add_exposure(
    desired: QuoteSet | None, open_orders: list[Order], state: TradingState, position: int
) -> None:
    context = ctx(trading_state=state, position_units=position)
    plan = plan_orders(desired, open_orders, context)
    result = _check_structure(plan, open_orders)
    if state is TradingState.HALTED:
        assert all(isinstance(a, Cancel) for a in plan.actions) and result == []
    if state is TradingState.REDUCING:
        reducing = Level.YES_ASK if position > 0 else Level.YES_BID
        assert all(level is reducing for _, level, _, _ in result) if position else result == []
        assert sum(size for _, _, _, size in result) <= abs(position)
        assert all(p.request.reduce_only for p in places(plan))


@settings(max_examples=200, deadline=None)
@given(
    desired=desired_sets(),
    open_orders=open_order_lists(),
    since=st.integers(0, 99_999),
    amend=st.booleans(),
    decrease=st.booleans(),
)
def test_throttled_plans_only_reduce_exposure(
    desired: QuoteSet | None, open_orders: list[Order], since: int, amend: bool, decrease: bool
) -> None:
    context = ctx(last_update_us=NOW - since, capabilities=replace(KALSHI, amend=amend, decrease=decrease))
    plan = plan_orders(desired, open_orders, context)
    assert not any(isinstance(a, Place) for a in plan.actions)
    assert all(a.reason.safety for a in plan.actions if not isinstance(a, Place))
    by_cid = {o.client_order_id: o for o in open_orders}
    for action in plan.actions:
        if isinstance(action, Amend):  # only a decrease at the same price, on a venue without native decrease
            order = by_cid[action.client_order_id]
            assert action.price == order.request.price and action.remaining < order.remaining
