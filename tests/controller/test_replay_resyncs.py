"""VenueReads (format-2 replays): which REST read of an order a resync the file did not record would have stored."""

from __future__ import annotations

from dataclasses import replace

from mm.controller.replay_resyncs import VenueReads
from mm.domain.orders import Order, OrderRequest, OrderStatus
from mm.domain.price import Price, Quantity
from mm.domain.sides import OrderSide, Side

T = 1_786_657_486_688_763
"""The REST read's last update, in µs (the stream reports the same moment as ...688_000)."""


def order(updated_us: int = T, *, post_only: bool = False, filled: int = 0) -> Order:
    request = OrderRequest(
        "M", Side.YES, OrderSide.SELL, Price(5500), Quantity(1059), "mm:x:1:ya:23", post_only=post_only
    )
    status = OrderStatus.PARTIALLY_FILLED if filled else OrderStatus.OPEN
    return Order(request, status, T - 10**6, updated_us, "order-1", Quantity(filled))


def test_a_read_stands_until_the_venue_is_shown_to_move_on() -> None:
    read, held = order(), order(T // 1000 * 1000, post_only=True)  # the stream's copy of the same state
    reads = VenueReads()
    reads.read(read)
    reads.streamed(held)  # same millisecond, same state
    reads.streamed(order(T - 5000, post_only=True))  # an earlier state arriving late
    reads.moved("order-1", T - 1)  # a fill the read already holds
    assert reads.of([held]) == [read]
    assert reads.of([read]) == []  # nothing to replace

    reads.streamed(order(T // 1000 * 1000, post_only=True, filled=100))  # same millisecond, another state
    assert reads.of([held]) == []

    for later in (lambda r: r.streamed(order(T + 1000, post_only=True)), lambda r: r.moved("order-1", T + 1)):
        again = VenueReads()
        again.read(read)
        later(again)
        assert again.of([held]) == []


def test_a_read_of_an_order_over_is_not_stored() -> None:
    reads = VenueReads()
    reads.read(replace(order(), status=OrderStatus.CANCELLED))
    assert reads.of([order(post_only=True)]) == []
