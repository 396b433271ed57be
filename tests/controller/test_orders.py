"""OrderTracker: creates with definite and unknown outcomes, stream updates (ours, foreign, stale), and the
REST resync where the exchange is the source of truth."""

from __future__ import annotations

from dataclasses import replace

from mm.controller.orders import OrderTracker
from mm.domain.orders import Order, OrderRequest, OrderStatus
from mm.domain.price import Price, Quantity
from mm.domain.sides import OrderSide, Side

T0 = 1_786_000_000_000_000


def order(cid: str, oid: str, market: str = "M1", status: OrderStatus = OrderStatus.OPEN) -> Order:
    request = OrderRequest(market, Side.YES, OrderSide.BUY, Price.from_dollars("0.4000"), Quantity.contracts(5), cid)
    return replace(Order.pending(request, T0).acknowledged(oid, T0), status=status)


def test_creates_pending_acked_failed_and_unknown() -> None:
    tracker = OrderTracker("mm")
    a, b, c = order("mm:a", "1"), order("mm:b", "2"), order("mm:c", "3")
    for o in (a, b, c):
        tracker.sent(o.request, T0)
    assert tracker.pending_count == 3 and [p.request.client_order_id for p in tracker.pending_in("M1")] == [
        "mm:a",
        "mm:b",
        "mm:c",
    ]
    tracker.acked(a)
    tracker.failed("mm:b")
    tracker.outcome_unknown("mm:c")
    assert tracker.open_orders() == [a]
    assert [p.request.client_order_id for p in tracker.stuck(T0 + 1, older_than_us=10**9)] == ["mm:c"]
    tracker.update(c)  # the stream shows it after all: settled
    assert tracker.pending_count == 0 and {o.exchange_order_id for o in tracker.open_orders()} == {"1", "3"}


def test_foreign_orders_are_reported_never_tracked_as_ours() -> None:
    tracker = OrderTracker("mm")
    theirs = order("someone-else", "9")
    assert tracker.update(theirs) is False
    assert tracker.open_orders() == [] and list(tracker.foreign) == ["9"]
    tracker.update(replace(theirs, status=OrderStatus.CANCELLED))
    assert tracker.foreign == {}


def test_a_late_resting_update_does_not_resurrect_a_cancelled_order() -> None:
    tracker = OrderTracker("mm")
    mine = order("mm:a", "1")
    tracker.acked(mine)
    tracker.cancelled("1")
    tracker.update(mine)  # the stream's "resting" from before the cancel arrives late
    assert tracker.open_orders() == []
    filled = replace(mine, status=OrderStatus.FILLED, filled=Quantity.contracts(5))
    tracker.update(filled)
    assert tracker.open_orders() == []


def test_resync_adopts_what_the_venue_has_and_drops_what_it_does_not() -> None:
    tracker = OrderTracker("mm")
    kept, gone = order("mm:a", "1"), order("mm:b", "2")
    tracker.acked(kept)
    tracker.acked(gone)
    tracker.cancelled("3")
    unknown_to_us = order("mm:c", "3")  # we thought it cancelled; the venue says it rests: the venue wins
    other_market = order("mm:d", "4", market="M2")
    adopted, dropped = tracker.resync([kept, unknown_to_us, order("x", "8"), other_market], market_id="M1")
    assert [o.exchange_order_id for o in adopted] == ["3"] and [o.exchange_order_id for o in dropped] == ["2"]
    assert {o.exchange_order_id for o in tracker.open_orders("M1")} == {"1", "3"}
    assert tracker.open_orders("M2") == [] and "8" in tracker.foreign
