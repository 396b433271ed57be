from decimal import Decimal

import pytest

from mm.domain.errors import InvalidOrderTransition, InvalidQuantityError
from mm.domain.orders import Fill, Order, OrderRequest, OrderStatus, can_transition
from mm.domain.price import Price, Quantity
from mm.domain.sides import BookSide, OrderSide, Side


def request(side: Side = Side.YES, order_side: OrderSide = OrderSide.BUY, qty: int = 10) -> OrderRequest:
    return OrderRequest("KXBTCD-T1", side, order_side, Price(4500), Quantity.contracts(qty), "mm-1")


def test_happy_path_pending_open_partial_filled() -> None:
    order = Order.pending(request(), now_us=1)
    assert order.status is OrderStatus.PENDING and order.remaining == Quantity.contracts(10)
    order = order.acknowledged("ex-1", now_us=2)
    assert order.status is OrderStatus.OPEN and order.exchange_order_id == "ex-1"
    order = order.with_fill(Quantity.contracts(4), now_us=3)
    assert order.status is OrderStatus.PARTIALLY_FILLED and order.remaining == Quantity.contracts(6)
    order = order.with_fill(Quantity.contracts(3), now_us=4)
    assert order.status is OrderStatus.PARTIALLY_FILLED
    order = order.with_fill(Quantity.contracts(3), now_us=5)
    assert order.status is OrderStatus.FILLED and order.remaining.is_zero and order.updated_us == 5


def test_cancel_after_partial_fill_keeps_the_fills() -> None:
    order = Order.pending(request(), 1).acknowledged("ex-1", 2).with_fill(Quantity.contracts(4), 3).cancelled(4)
    assert order.status is OrderStatus.CANCELLED
    assert order.filled == Quantity.contracts(4)
    assert order.remaining.is_zero


def test_taker_fill_before_the_ack_is_allowed() -> None:
    order = Order.pending(request(), 1).with_fill(Quantity.contracts(10), 2)
    assert order.status is OrderStatus.FILLED


@pytest.mark.parametrize("terminal", ["filled", "cancelled", "rejected"])
def test_terminal_states_accept_nothing(terminal: str) -> None:
    order = Order.pending(request(), 1)
    if terminal == "filled":
        order = order.with_fill(Quantity.contracts(10), 2)
    elif terminal == "cancelled":
        order = order.cancelled(2)
    else:
        order = order.rejected("invalid_price", 2)
    assert order.status.is_terminal
    with pytest.raises(InvalidOrderTransition, match=f"from {order.status.value}"):
        order.cancelled(3)
    with pytest.raises(InvalidOrderTransition):
        order.acknowledged("ex-2", 3)


def test_illegal_transitions_raise() -> None:
    opened = Order.pending(request(), 1).acknowledged("ex-1", 2)
    with pytest.raises(InvalidOrderTransition, match="open to rejected"):
        opened.rejected("late", 3)
    with pytest.raises(InvalidOrderTransition, match="open to open"):
        opened.acknowledged("ex-1", 3)
    assert not can_transition(OrderStatus.PARTIALLY_FILLED, OrderStatus.OPEN)


def test_overfill_is_refused() -> None:
    order = Order.pending(request(qty=1), 1)
    with pytest.raises(InvalidQuantityError, match="exceeds"):
        order.with_fill(Quantity.contracts(2), 2)
    with pytest.raises(InvalidQuantityError, match="positive"):
        order.with_fill(Quantity(0), 2)


def test_rejection_keeps_the_reason() -> None:
    order = Order.pending(request(), 1).rejected("available_balance_too_low", 2)
    assert order.reject_reason == "available_balance_too_low"


@pytest.mark.parametrize(
    ("side", "order_side", "book", "yes_units"),
    [
        (Side.YES, OrderSide.BUY, BookSide.BID, 4500),
        (Side.YES, OrderSide.SELL, BookSide.ASK, 4500),
        (Side.NO, OrderSide.BUY, BookSide.ASK, 5500),
        (Side.NO, OrderSide.SELL, BookSide.BID, 5500),
    ],
)
def test_orders_map_onto_the_yes_book(side: Side, order_side: OrderSide, book: BookSide, yes_units: int) -> None:
    assert request(side, order_side).yes_book() == (book, Price(yes_units))


def test_request_validation() -> None:
    with pytest.raises(InvalidQuantityError):
        OrderRequest("M", Side.YES, OrderSide.BUY, Price(100), Quantity(0), "c")
    with pytest.raises(ValueError, match="client_order_id"):
        OrderRequest("M", Side.YES, OrderSide.BUY, Price(100), Quantity(1), "")


def test_fill_notional_and_inventory_direction() -> None:
    fill = Fill("f1", "o1", "mm-1", "M", Side.NO, OrderSide.BUY, Price(3000), Quantity(250), Decimal("0.01"), False, 9)
    assert fill.notional == Decimal("0.75")
    assert fill.inventory_delta_units == -250  # buying NO reduces net YES inventory
    with pytest.raises(TypeError, match="Decimal"):
        Fill("f2", "o1", None, "M", Side.YES, OrderSide.BUY, Price(1), Quantity(1), 0.01, False, 9)  # type: ignore[arg-type]
