"""Order groups on the exchange (kalshi-api.md §4 "Order groups"): fill caps, triggers, resets, deletes."""

from __future__ import annotations

import pytest

from mm.sim.exchange import Exchange, ExchangeEvent, NewOrder, SimApiError
from mm.sim.types import BookChange, BookSide, OrderStatus, TimeInForce
from tests.sim_exchange.test_exchange import T, make_exchange

BID, ASK = BookSide.BID, BookSide.ASK


def grouped(side: BookSide, price: int, contracts: int, group: str | None, **kw: object) -> NewOrder:
    return NewOrder(T, side, price, contracts * 100, order_group_id=group, **kw)  # type: ignore[arg-type]


def group_events(events: list[ExchangeEvent]) -> list[tuple[str, str | None, int | None]]:
    return [(e.detail, e.order_group_id, e.contracts_limit) for e in events if e.kind == "order_group"]


def test_create_emits_created_and_lists_the_users_groups() -> None:
    ex = make_exchange()
    gid = ex.create_order_group("alice", 10_00)
    other = ex.create_order_group("bob", 5_00)
    assert group_events(ex.drain_events()) == [("created", gid, 10_00), ("created", other, 5_00)]
    assert [g.group_id for g in ex.order_groups("alice")] == [gid]
    group = ex.get_order_group("alice", gid)
    assert (group.limit, group.filled, group.triggered, group.order_ids) == (10_00, 0, False, [])
    with pytest.raises(SimApiError) as err:
        ex.get_order_group("alice", other)
    assert (err.value.status, err.value.code) == (404, "not_found")
    with pytest.raises(SimApiError) as err:
        ex.create_order_group("alice", 0)
    assert err.value.status == 400


def test_orders_naming_an_unknown_or_foreign_group_are_404() -> None:
    ex = make_exchange()
    bobs = ex.create_order_group("bob", 5_00)
    for group in ("og-999", bobs):
        with pytest.raises(SimApiError) as err:
            ex.create_order("alice", grouped(BID, 4000, 1, group))
        assert (err.value.status, err.value.code) == (404, "not_found")
    assert not ex.orders


def test_maker_fills_reaching_the_limit_trigger_and_cancel_the_groups_resting_orders() -> None:
    ex = make_exchange()
    gid = ex.create_order_group("alice", 5_00)
    bid = ex.create_order("alice", grouped(BID, 4000, 10, gid))
    ask = ex.create_order("alice", grouped(ASK, 6000, 10, gid))
    outsider = ex.create_order("alice", grouped(BID, 3000, 1, None))
    assert ex.order_groups("alice")[0].order_ids == [bid.order_id, ask.order_id]
    ex.drain_events()
    ex.create_order("bob", NewOrder(T, ASK, 4000, 3_00))  # fills 3 of alice's bid: under the limit
    assert not ex.get_order_group("alice", gid).triggered
    assert bid.status is OrderStatus.RESTING and ex.get_order_group("alice", gid).filled == 3_00
    ex.drain_events()
    ex.create_order("bob", NewOrder(T, BID, 6000, 2_00))  # 2 of alice's ask: 5 filled = the limit
    events = ex.drain_events()
    group = ex.get_order_group("alice", gid)
    assert group.triggered and group.filled == 5_00
    assert bid.status is OrderStatus.CANCELED and ask.status is OrderStatus.CANCELED
    assert outsider.status is OrderStatus.RESTING  # not in the group
    assert ex.accounts["alice"].reserved == 1 * 3000 * 100  # only the outsider still reserves
    assert group_events(events) == [("triggered", gid, 5_00)]
    # the cancels are published as book changes and user_order events before the group event
    removed = [e.book_change for e in events if e.kind == "book"]
    assert BookChange(BID, 4000, -7_00) in removed and BookChange(ASK, 6000, -8_00) in removed
    cancelled = [e.order.order_id for e in events if e.kind == "user_order" and e.order and e.order.user_id == "alice"]
    assert {bid.order_id, ask.order_id} <= set(cancelled)
    assert [e.kind for e in events].index("order_group") == len(events) - 1
    assert ex.markets[T].engine.best_bid() == 3000 and ex.markets[T].engine.best_ask() is None


def test_a_taker_fill_crossing_the_limit_completes_then_the_rest_is_cancelled() -> None:
    ex = make_exchange()
    gid = ex.create_order_group("alice", 4_00)
    ex.create_order("bob", NewOrder(T, ASK, 5000, 3_00))
    ex.create_order("bob", NewOrder(T, ASK, 5100, 3_00))
    taker = ex.create_order("alice", grouped(BID, 5200, 10, gid))
    # the sweep is not interrupted: 6 fill (past the limit of 4), then the resting 4 are cancelled
    assert taker.fill_count == 6_00 and taker.status is OrderStatus.CANCELED and taker.remaining_count == 0
    assert ex.get_order_group("alice", gid).triggered and ex.get_order_group("alice", gid).filled == 6_00
    assert ex.accounts["alice"].reserved == 0 and ex.markets[T].engine.best_bid() is None


def test_a_triggered_group_refuses_orders_until_reset() -> None:
    ex = make_exchange()
    gid = ex.create_order_group("alice", 1_00)
    ex.create_order("bob", NewOrder(T, ASK, 5000, 1_00))
    ex.create_order("alice", grouped(BID, 5000, 1, gid, time_in_force=TimeInForce.IMMEDIATE_OR_CANCEL))
    assert ex.get_order_group("alice", gid).triggered
    with pytest.raises(SimApiError) as err:
        ex.create_order("alice", grouped(BID, 4000, 1, gid))
    assert (err.value.status, err.value.code) == (400, "order_group_triggered")
    ex.drain_events()
    ex.reset_order_group("alice", gid)
    assert group_events(ex.drain_events()) == [("reset", gid, 1_00)]
    group = ex.get_order_group("alice", gid)
    assert (group.triggered, group.filled) == (False, 0)
    again = ex.create_order("alice", grouped(BID, 4000, 1, gid))
    assert again.status is OrderStatus.RESTING and again.order_group_id == gid


def test_manual_trigger_cancels_resting_orders_and_refuses_new_ones() -> None:
    ex = make_exchange()
    gid = ex.create_order_group("alice", 100_00)
    resting = ex.create_order("alice", grouped(BID, 4000, 10, gid))
    ex.drain_events()
    ex.trigger_order_group("alice", gid)
    events = ex.drain_events()
    assert resting.status is OrderStatus.CANCELED and ex.accounts["alice"].reserved == 0
    assert group_events(events) == [("triggered", gid, 100_00)]
    assert any(e.kind == "book" and e.book_change == BookChange(BID, 4000, -10_00) for e in events)
    with pytest.raises(SimApiError):
        ex.create_order("alice", grouped(BID, 4000, 1, gid))
    with pytest.raises(SimApiError) as err:
        ex.trigger_order_group("bob", gid)
    assert err.value.status == 404


def test_a_limit_change_applies_to_later_fills_and_triggers_at_once_when_already_reached() -> None:
    ex = make_exchange()
    gid = ex.create_order_group("alice", 10_00)
    resting = ex.create_order("alice", grouped(BID, 4000, 10, gid))
    ex.create_order("bob", NewOrder(T, ASK, 4000, 2_00))
    ex.drain_events()
    ex.set_order_group_limit("alice", gid, 5_00)
    assert group_events(ex.drain_events()) == [("limit_updated", gid, 5_00)]
    assert resting.status is OrderStatus.RESTING
    ex.set_order_group_limit("alice", gid, 2_00)  # 2 already filled: triggers now
    assert group_events(ex.drain_events()) == [("limit_updated", gid, 2_00), ("triggered", gid, 2_00)]
    assert resting.status is OrderStatus.CANCELED and ex.accounts["alice"].reserved == 0
    with pytest.raises(SimApiError):
        ex.set_order_group_limit("alice", gid, 0)


def test_delete_cancels_the_groups_orders_and_forgets_it() -> None:
    ex = make_exchange()
    gid = ex.create_order_group("alice", 10_00)
    resting = ex.create_order("alice", grouped(ASK, 6000, 3, gid))
    ex.drain_events()
    ex.delete_order_group("alice", gid)
    events = ex.drain_events()
    assert resting.status is OrderStatus.CANCELED and ex.accounts["alice"].reserved == 0
    assert group_events(events) == [("deleted", gid, None)]
    assert ex.order_groups("alice") == [] and resting.order_group_id == gid
    with pytest.raises(SimApiError) as err:
        ex.create_order("alice", grouped(BID, 4000, 1, gid))
    assert err.value.status == 404


def test_fills_of_orders_outside_the_group_do_not_count() -> None:
    ex: Exchange = make_exchange()
    gid = ex.create_order_group("alice", 1_00)
    ex.create_order("alice", grouped(BID, 3000, 1, gid))
    ex.create_order("alice", NewOrder(T, BID, 4000, 5_00))
    ex.create_order("bob", NewOrder(T, ASK, 4000, 5_00))
    group = ex.get_order_group("alice", gid)
    assert (group.filled, group.triggered) == (0, False)
