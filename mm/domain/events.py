"""What adapters tell the core, as venue-neutral values: order updates, fills, public trades, market
lifecycle, settlements, book state and connection state.

Adapters translate their venue's stream messages into these (Kalshi: ``user_order``, ``fill``, ``trade``,
``market_lifecycle_v2``, book staleness from the ``orderbook_delta`` sequence, the socket's up/down) and hand
them to every handler registered with ``ExchangeAdapter.on_event``. The controller, the ledger and paper
execution consume them without knowing the venue. All prices are YES-book prices ($0.0001 units, see
:class:`~mm.domain.price.Price`), quantities 1/100 contract, times Unix microseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from mm.domain.book import OrderBook
from mm.domain.orders import Fill, Order
from mm.domain.price import Price, Quantity
from mm.domain.sides import OrderSide
from mm.domain.ticks import TickGrid

__all__ = [
    "BookState",
    "BookUpdated",
    "ConnectionState",
    "ExchangeEvent",
    "FillEvent",
    "LifecycleKind",
    "MarketLifecycle",
    "OrderUpdate",
    "PublicTrade",
    "ResyncRequired",
    "Settlement",
]


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """The venue's current view of one of our orders (``user_order`` on Kalshi), in FR-601 terms."""

    order: Order
    timestamp_us: int


@dataclass(frozen=True, slots=True)
class FillEvent:
    """One execution of one of our orders."""

    fill: Fill
    post_position: Quantity | None = None
    """Net YES position after the fill when the venue reports it (Kalshi ``post_position_fp``)."""


@dataclass(frozen=True, slots=True)
class PublicTrade:
    """A trade printed on the public tape (anyone's), at a YES price.

    ``taker_side`` is what the aggressor did in YES terms: ``BUY`` — the taker bought YES, lifting asks (resting
    YES asks at ``price`` or below traded); ``SELL`` — the taker sold YES, hitting bids at ``price`` or above.
    """

    market_id: str
    trade_id: str
    price: Price
    quantity: Quantity
    taker_side: OrderSide
    timestamp_us: int


LifecycleKind = Literal[
    "created",
    "activated",
    "deactivated",
    "close_date_updated",
    "determined",
    "settled",
    "price_level_structure_updated",
    "metadata_updated",
]


@dataclass(frozen=True, slots=True)
class MarketLifecycle:
    """A market changed state (Kalshi ``market_lifecycle_v2``). Fields not carried by the kind are None."""

    market_id: str
    kind: LifecycleKind
    timestamp_us: int
    open_time_us: int | None = None
    close_time_us: int | None = None
    result: str | None = None
    """``yes``, ``no`` or ``scalar`` once determined."""
    settlement_value: Price | None = None
    """What one YES contract pays, once determined (None for 0 or 1 dollar, see ``settlement_value_units``)."""
    settlement_value_units: int | None = None
    """What one YES contract pays in $0.0001 units (0..10000), once determined."""
    grid: TickGrid | None = None
    """The new tick grid (``created``, ``price_level_structure_updated``)."""
    paused: bool | None = None
    """``deactivated``: True when trading was paused, False when it resumed."""


@dataclass(frozen=True, slots=True)
class Settlement:
    """A market we held paid out (Kalshi ``/portfolio/settlements``). Money in exact dollars."""

    market_id: str
    result: str
    """``yes``, ``no`` or ``scalar``."""
    yes_count: Quantity
    no_count: Quantity
    yes_total_cost: Decimal
    no_total_cost: Decimal
    revenue: Decimal
    """What the venue paid out for the position."""
    value_per_yes: Decimal
    """What one YES contract paid, dollars (1, 0, or a fair price for a scalar resolution)."""
    fee: Decimal
    settled_us: int


@dataclass(frozen=True, slots=True)
class BookState:
    """A market's book became usable (``stale=False``: a fresh snapshot) or must not be quoted on (``True``)."""

    market_id: str
    stale: bool
    reason: str
    timestamp_us: int


@dataclass(frozen=True, slots=True)
class BookUpdated:
    """A market's book changed (snapshot or delta applied). ``book`` is the adapter's live book, by reference:
    read it now, do not keep it (it keeps changing)."""

    market_id: str
    book: OrderBook
    timestamp_us: int


@dataclass(frozen=True, slots=True)
class ConnectionState:
    """The venue stream went up or down; while down, books are stale and our order view may lag."""

    connected: bool
    reason: str
    timestamp_us: int
    reconnects: int = 0


@dataclass(frozen=True, slots=True)
class ResyncRequired:
    """The stream lost or mangled something the consumer relies on (a ``fill`` or ``user_order`` message it
    could not read): re-read the venue's orders, fills and positions over REST. ``market_id`` None = all."""

    scope: Literal["orders", "books"]
    market_id: str | None
    reason: str
    timestamp_us: int


ExchangeEvent = (
    OrderUpdate
    | FillEvent
    | PublicTrade
    | MarketLifecycle
    | Settlement
    | BookUpdated
    | BookState
    | ConnectionState
    | ResyncRequired
)
