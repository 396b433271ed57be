"""Holdings: per-market positions and the account balance. Money is exact ``Decimal`` dollars."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from mm.domain.price import QTY_SCALE, ZERO_QUANTITY, Quantity


@dataclass(frozen=True, slots=True)
class Position:
    """YES and NO holdings in one market (FR-701), with average entry prices in dollars when known.

    Kalshi nets positions (buying NO while long YES reduces the YES position), so usually one side is
    zero; the model keeps both because other venues (Polymarket's two token books) do not net.
    """

    market_id: str
    yes: Quantity = ZERO_QUANTITY
    no: Quantity = ZERO_QUANTITY
    avg_yes_price: Decimal | None = None
    avg_no_price: Decimal | None = None

    @property
    def net_units(self) -> int:
        """Net YES inventory in 1/100 contract units (YES − NO); positive = long YES."""
        return self.yes.units - self.no.units

    @property
    def net_inventory(self) -> Decimal:
        """Net YES inventory in contracts (YES − NO), exact."""
        return Decimal(self.net_units) / QTY_SCALE

    @property
    def is_flat(self) -> bool:
        return self.yes.is_zero and self.no.is_zero

    @property
    def cost_basis(self) -> Decimal:
        """Dollars paid for the current holdings, from the average entry prices (0 where unknown)."""
        total = Decimal(0)
        if self.avg_yes_price is not None:
            total += self.avg_yes_price * self.yes.to_decimal()
        if self.avg_no_price is not None:
            total += self.avg_no_price * self.no.to_decimal()
        return total


@dataclass(frozen=True, slots=True)
class Balance:
    """Account cash in dollars: ``available`` can fund new orders; ``total`` includes locked collateral."""

    available: Decimal
    total: Decimal
    currency: str = "USD"

    def __post_init__(self) -> None:
        for name in ("available", "total"):
            if not isinstance(getattr(self, name), Decimal):
                raise TypeError(f"balance {name} must be a Decimal")
