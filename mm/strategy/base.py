"""The five pluggable strategy component interfaces (FR-410–415) and the conventions they share.

Components are pure: no IO, no clock (time arrives as an argument), the same inputs give the same
outputs. Only the volatility estimator has state, and it can export and import it (FR-1002).

Units, everywhere in this package (docs/decisions/007):

* prices, spreads, skews and shifts: **dollars** (a binary contract trades in (0, 1));
* volatility σ: **dollars per √second** of the YES mid price;
* time to settlement and horizons: **seconds**; timestamps: int **microseconds** since the epoch;
* inventory q: **contracts**, net YES (YES − NO; positive = long YES); sizes: contracts.

The names and parameters follow FR-411–415. The arithmetic is ``float``: these are model quantities
(estimates, not money), and Decimal would cost the ≤ 15 µs quote budget (design.md §9) several times
over. Money stays exact at the edges: inputs come from exact integer units (converted to float
exactly), and the engine turns the outputs into integer price units on the market's tick grid,
rounding bids down and asks up.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, NamedTuple


class VolatilityEstimator(ABC):
    """Estimates the volatility σ of the mid price (FR-411), in dollars per √second."""

    @abstractmethod
    def update(self, mid_price: float, timestamp_us: int) -> None:
        """Process a new mid-price observation (dollars) taken at ``timestamp_us`` (µs since the epoch)."""

    @abstractmethod
    def get_volatility(self) -> float:
        """The current estimate of σ in dollars per √second (0.0 before any data)."""

    @abstractmethod
    def is_ready(self) -> bool:
        """True once the estimate is based on enough data to quote on."""

    @abstractmethod
    def get_state(self) -> dict[str, Any]:
        """Export the internal state for a hot-swap (FR-1002). JSON-safe values only."""

    @abstractmethod
    def set_state(self, state: Mapping[str, Any]) -> None:
        """Import state exported by this or a compatible estimator (see each implementation)."""


class ReservationPriceCalculator(ABC):
    """Inventory-adjusted fair value (FR-412)."""

    @abstractmethod
    def calculate(
        self,
        mid_price: float,
        inventory: float,
        volatility: float,
        time_to_settlement: float,
        max_inventory: float,
    ) -> float:
        """Reservation price in dollars, from the mid (dollars), net inventory (contracts), σ (dollars/√s),
        time to settlement (seconds) and the inventory limit (contracts) that normalises q."""


class SkewCalculator(ABC):
    """Inventory skew (FR-413): positive shifts all quotes down."""

    @abstractmethod
    def calculate(self, inventory: float, max_inventory: float, volatility: float) -> float:
        """Skew in dollars, from net inventory and its limit (contracts) and σ (dollars/√s)."""


class SpreadCalculator(ABC):
    """Half-spread δ (FR-414)."""

    @abstractmethod
    def calculate(self, volatility: float, inventory: float, max_inventory: float, time_to_settlement: float) -> float:
        """Half-spread δ in dollars, from σ (dollars/√s), inventory and limit (contracts), T (seconds)."""


class SizingContext(NamedTuple):
    """What a sizer may know besides inventory: the quote being sized (dollars). Used by ``kelly``.

    A NamedTuple: immutable and cheap to build once per quote.
    """

    reservation_price: float
    half_spread: float


class QuoteSizer(ABC):
    """Bid and ask sizes (FR-415)."""

    @abstractmethod
    def calculate(
        self,
        inventory: float,
        max_inventory: float,
        base_size: float,
        context: SizingContext | None = None,
    ) -> tuple[float, float]:
        """(bid_size, ask_size) in contracts for the YES side, never negative. Buying YES raises q."""


def normalised_inventory(inventory: float, max_inventory: float) -> float:
    """q / Q_max clamped to [−1, 1]: the inventory measure most components use (0 when Q_max ≤ 0)."""
    if max_inventory <= 0:
        return 0.0
    x = inventory / max_inventory
    return 1.0 if x > 1.0 else -1.0 if x < -1.0 else x
