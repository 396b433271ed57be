"""Value types shared by the simulator's parts (matching, exchange state, crowd, server).

Everything is in Kalshi's YES-denominated terms (kalshi-api.md §5, §7–8): an order is a ``bid`` (buy
YES) or an ``ask`` (sell YES ≡ buy NO at 1 − p) at a YES price. Prices are ints of $0.0001, counts ints
of 1/100 contract, times ints of µs since the epoch (simulation time), money ints of $0.0001.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from mm.domain.sides import BookSide, TimeInForce

__all__ = [
    "BookChange",
    "BookSide",
    "OrderStatus",
    "SelfTradePrevention",
    "SimOrder",
    "TimeInForce",
    "Trade",
]


class OrderStatus(enum.Enum):
    """Kalshi's order statuses (kalshi-api.md §5): ``pending`` no longer exists."""

    RESTING = "resting"
    EXECUTED = "executed"
    CANCELED = "canceled"


class SelfTradePrevention(enum.Enum):
    TAKER_AT_CROSS = "taker_at_cross"
    """Cancel the incoming order when it would trade with one of the same user's resting orders."""
    MAKER = "maker"
    """Cancel the user's resting order and keep matching."""


@dataclass(slots=True)
class SimOrder:
    """An order inside the simulator. Mutable: the matching engine updates counts and status in place."""

    order_id: str
    user_id: str
    ticker: str
    side: BookSide
    price: int
    """YES price, $0.0001 (for an ask, the YES price it sells at; the NO price is 10000 − price)."""
    initial_count: int
    """1/100 contract."""
    remaining_count: int
    fill_count: int = 0
    client_order_id: str = ""
    time_in_force: TimeInForce = TimeInForce.GOOD_TILL_CANCELED
    post_only: bool = False
    stp: SelfTradePrevention = SelfTradePrevention.TAKER_AT_CROSS
    status: OrderStatus = OrderStatus.RESTING
    created_us: int = 0
    updated_us: int = 0
    priority: int = 0
    """Time priority within a price level: lower goes first. Reassigned when an amend loses priority."""
    expiration_s: int | None = None
    taker_fill_cost: int = 0
    """$0.0001 paid (YES price × count for bids, NO price × count for asks) on fills as taker."""
    maker_fill_cost: int = 0
    taker_fees: int = 0
    maker_fees: int = 0
    order_group_id: str | None = None
    """The order group the order was placed in (kalshi-api.md §4 "Order groups"), if any."""


@dataclass(frozen=True, slots=True)
class Trade:
    """One execution between a taker and a resting maker order, at the maker's price."""

    trade_id: str
    ticker: str
    price: int
    """YES price of the execution, $0.0001 (the resting order's price)."""
    count: int
    """1/100 contract."""
    taker_order_id: str
    maker_order_id: str
    taker_user_id: str
    maker_user_id: str
    taker_side: BookSide
    """BID: the taker bought YES (the maker sold YES / bought NO). ASK: the taker sold YES (bought NO)."""
    ts_us: int


@dataclass(frozen=True, slots=True)
class BookChange:
    """A change of resting size at one level of the YES book: the source of ``orderbook_delta``.

    ``side`` BID is a YES bid at ``price``; ASK is a YES ask at ``price``, which Kalshi publishes as a NO
    bid at 10000 − ``price``. ``delta`` is signed, 1/100 contract.
    """

    side: BookSide
    price: int
    delta: int
