"""A point-in-time view of one market's top of book (FR-202).

Prices are YES prices (``Price``, units of $0.0001), sizes are ``Quantity`` (units of 1/100 contract),
times are integer microseconds since the Unix epoch supplied by the caller: nothing here reads a clock,
so replay and backtests see the same values as live trading.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from mm.domain.price import Price, Quantity

NEVER_UPDATED_US = 0
"""``last_update_us`` of a book that has never received a snapshot or delta (or was cleared)."""


@dataclass(frozen=True, slots=True)
class MarketSnapshot:
    """Top of the YES book of one market at ``timestamp_us``.

    ``best_ask`` is the YES ask, i.e. 1 − the best NO bid. ``bid_size``/``ask_size`` are zero when the
    level is absent. ``mid_price`` (exact, may carry a fifth decimal) needs both a bid and an ask;
    ``spread`` is YES ask − YES bid in dollars and is ≤ 0 only on a crossed book (a resync signal).
    """

    market_id: str
    best_bid: Price | None
    best_ask: Price | None
    bid_size: Quantity
    ask_size: Quantity
    mid_price: Decimal | None
    spread: Decimal | None
    timestamp_us: int
    """When the snapshot was taken (µs since the epoch)."""
    last_update_us: int
    """When the book last changed (µs since the epoch); ``NEVER_UPDATED_US`` if it never did."""

    @property
    def has_data(self) -> bool:
        """Whether the book has ever been filled from the venue (a snapshot or a delta)."""
        return self.last_update_us != NEVER_UPDATED_US

    def age_us(self, now_us: int) -> int:
        """Microseconds since the book last changed, as seen at ``now_us``.

        Negative if ``now_us`` is before the last update (clock skew between the caller's clocks).
        Meaningless when :attr:`has_data` is False; :meth:`is_stale` handles that case.
        """
        return now_us - self.last_update_us

    def is_stale(self, now_us: int, max_age_us: int) -> bool:
        """Whether the data is too old to quote on: the book never updated, or its age exceeds ``max_age_us``.

        An age exactly equal to ``max_age_us`` is still fresh.
        """
        return not self.has_data or now_us - self.last_update_us > max_age_us
