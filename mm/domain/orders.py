"""Orders, their FR-601 lifecycle, and fills. Exchange-agnostic (FR-111) and immutable.

Lifecycle (FR-601)::

    PENDING ──► OPEN ──► PARTIALLY_FILLED ──► FILLED
       │  │       │            │  ▲ (more fills)
       │  │       └────────────┴──┴──► CANCELLED
       │  └──► PARTIALLY_FILLED / FILLED / CANCELLED   (a taker fill, or an IOC remainder, before the ack)
       └──► REJECTED

FILLED, CANCELLED and REJECTED are terminal. Every change returns a new :class:`Order`; an illegal one
raises :class:`InvalidOrderTransition`, so a bug in event handling cannot silently corrupt order state.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Final

from mm.domain.errors import InvalidOrderTransition, InvalidQuantityError
from mm.domain.price import ZERO_QUANTITY, Price, Quantity
from mm.domain.sides import BookSide, OrderSide, Side, TimeInForce, book_side


class OrderStatus(enum.Enum):
    PENDING = "pending"
    """Sent (or about to be), not yet acknowledged by the venue."""
    OPEN = "open"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL

    @property
    def is_live(self) -> bool:
        """Whether the order may still rest on the book (or is about to)."""
        return self not in _TERMINAL


_TERMINAL: Final = frozenset({OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED})

_ALLOWED: Final[dict[OrderStatus, frozenset[OrderStatus]]] = {
    OrderStatus.PENDING: frozenset(
        {
            OrderStatus.OPEN,
            OrderStatus.PARTIALLY_FILLED,
            OrderStatus.FILLED,
            OrderStatus.CANCELLED,
            OrderStatus.REJECTED,
        }
    ),
    OrderStatus.OPEN: frozenset({OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED, OrderStatus.CANCELLED}),
    OrderStatus.PARTIALLY_FILLED: frozenset({OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED, OrderStatus.CANCELLED}),
    OrderStatus.FILLED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
    OrderStatus.REJECTED: frozenset(),
}


def can_transition(current: OrderStatus, new: OrderStatus) -> bool:
    """Whether FR-601 allows ``current → new``."""
    return new in _ALLOWED[current]


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """What we ask a venue to do: a limit order on one contract side.

    ``price`` is the price of the contract named by ``side`` (a NO price for NO orders); use
    :meth:`yes_book` for the equivalent order on the single YES book.
    """

    market_id: str
    side: Side
    order_side: OrderSide
    price: Price
    quantity: Quantity
    client_order_id: str
    time_in_force: TimeInForce = TimeInForce.GOOD_TILL_CANCELED
    post_only: bool = True
    reduce_only: bool = False

    def __post_init__(self) -> None:
        if self.quantity.is_zero:
            raise InvalidQuantityError(f"order {self.client_order_id!r}: quantity must be positive")
        if not self.market_id:
            raise ValueError("order market_id must not be empty")
        if not self.client_order_id:
            raise ValueError("order client_order_id must not be empty")

    def yes_book(self) -> tuple[BookSide, Price]:
        """The same order expressed on the YES book: (bid|ask, YES price). Buy NO at q = ask YES at 1 − q."""
        yes_price = self.price if self.side is Side.YES else self.price.complement()
        return book_side(self.side, self.order_side), yes_price


@dataclass(frozen=True, slots=True)
class Order:
    """An order's state as we know it. Times are UTC microseconds since the epoch."""

    request: OrderRequest
    status: OrderStatus
    created_us: int
    updated_us: int
    exchange_order_id: str | None = None
    filled: Quantity = ZERO_QUANTITY
    reject_reason: str | None = None

    @classmethod
    def pending(cls, request: OrderRequest, now_us: int) -> Order:
        """A new order that has not been acknowledged yet."""
        return cls(request=request, status=OrderStatus.PENDING, created_us=now_us, updated_us=now_us)

    @property
    def client_order_id(self) -> str:
        return self.request.client_order_id

    @property
    def remaining(self) -> Quantity:
        """Quantity still working (zero once terminal)."""
        if self.status.is_terminal:
            return Quantity(0)
        return self.request.quantity - self.filled

    def _to(self, status: OrderStatus, now_us: int, **changes: object) -> Order:
        if not can_transition(self.status, status):
            raise InvalidOrderTransition(
                f"order {self.client_order_id!r}: cannot go from {self.status.value} to {status.value}"
            )
        return replace(self, status=status, updated_us=now_us, **changes)  # type: ignore[arg-type]

    def acknowledged(self, exchange_order_id: str, now_us: int) -> Order:
        """The venue accepted the order and it rests on the book."""
        if not exchange_order_id:
            raise ValueError("exchange order id must not be empty")
        return self._to(OrderStatus.OPEN, now_us, exchange_order_id=exchange_order_id)

    def with_fill(self, quantity: Quantity, now_us: int) -> Order:
        """Apply a fill of ``quantity`` contracts; FILLED when nothing remains."""
        if quantity.is_zero:
            raise InvalidQuantityError(f"order {self.client_order_id!r}: a fill must have a positive quantity")
        filled = self.filled + quantity
        if filled > self.request.quantity:
            raise InvalidQuantityError(
                f"order {self.client_order_id!r}: fill of {quantity} exceeds the remaining {self.remaining}"
            )
        status = OrderStatus.FILLED if filled == self.request.quantity else OrderStatus.PARTIALLY_FILLED
        return self._to(status, now_us, filled=filled)

    def decreased(self, remaining: Quantity, now_us: int) -> Order:
        """The venue reduced the working size to ``remaining`` (keeping queue priority); status unchanged."""
        if remaining.is_zero or remaining > self.remaining:
            raise InvalidQuantityError(
                f"order {self.client_order_id!r}: cannot decrease the remaining {self.remaining} to {remaining}"
            )
        return replace(self, request=replace(self.request, quantity=self.filled + remaining), updated_us=now_us)

    def cancelled(self, now_us: int) -> Order:
        """Cancelled by us, by expiry, or as an IOC/FOK remainder (fills so far stand)."""
        return self._to(OrderStatus.CANCELLED, now_us)

    def rejected(self, reason: str, now_us: int) -> Order:
        """The venue refused the order; ``reason`` is kept for the audit trail."""
        return self._to(OrderStatus.REJECTED, now_us, reject_reason=reason)


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution of one of our orders. ``fee`` is in dollars (exact); ``price`` is that contract side's."""

    fill_id: str
    order_id: str
    client_order_id: str | None
    market_id: str
    side: Side
    order_side: OrderSide
    price: Price
    quantity: Quantity
    fee: Decimal
    is_taker: bool
    timestamp_us: int

    def __post_init__(self) -> None:
        if self.quantity.is_zero:
            raise InvalidQuantityError(f"fill {self.fill_id!r}: quantity must be positive")
        if not isinstance(self.fee, Decimal):
            raise TypeError(f"fill {self.fill_id!r}: fee must be a Decimal, not {type(self.fee).__name__}")

    @property
    def notional(self) -> Decimal:
        """Price × quantity in dollars, exact."""
        return self.price.to_decimal() * self.quantity.to_decimal()

    @property
    def inventory_delta_units(self) -> int:
        """Change in net YES inventory (1/100 contract units): buying YES or selling NO raises it."""
        bs = book_side(self.side, self.order_side)
        return self.quantity.units if bs is BookSide.BID else -self.quantity.units
