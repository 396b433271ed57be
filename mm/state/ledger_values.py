"""The ledger's value types and units: money in micro-dollars, marks, PnL views and checkpoint snapshots.

Money is int micro-dollars ($0.000001, ``MICROS_PER_DOLLAR``): one $0.0001 price unit times one 1/100-contract
count unit, so every cost and payout the ledger books is an exact integer (decisions 009, 010). Marks are kept
as twice the YES mid in $0.0001 units (``mark_x2``), because a book's mid can fall on half a $0.0001 unit.
The ``*_units`` helpers give $0.0001 figures for the risk engine (``mm.risk.base.RiskContext``).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Final, Literal

from mm.domain.errors import MmError
from mm.domain.fees import FeeRounding
from mm.domain.portfolio import Position
from mm.domain.price import PRICE_SCALE, Quantity
from mm.state.pnl_windows import WindowState

__all__ = [
    "MICROS_PER_DOLLAR",
    "FeeBreakdown",
    "FeeSource",
    "LedgerError",
    "LedgerSnapshot",
    "MarketPnl",
    "MarketSnapshot",
    "PnlSummary",
    "PositionDiff",
    "dollars_to_micros",
    "mark_x2_of",
    "marked_value_micros",
    "micros_to_dollars",
    "micros_to_units",
]

MICROS_PER_DOLLAR: Final = 1_000_000
"""Money unit: $0.000001 = one $0.0001 price unit × one 1/100-contract count unit."""
_TWO_DOLLAR_X2: Final = 2 * PRICE_SCALE  # $1 in the $0.00005 units marks are kept in

FeeSource = Literal["venue", "formula"]
"""Where a market's trading fees come from: the fill's ``fee`` as reported, or Kalshi's formula."""


class LedgerError(MmError, ValueError):
    """Input the ledger cannot book: a fee finer than a micro-dollar, a mark outside [0, 1], a bad snapshot."""


def dollars_to_micros(value: Decimal) -> int:
    """Exact dollars → micro-dollars; finer than $0.000001 raises :class:`LedgerError`."""
    scaled = value.scaleb(6)
    units = int(scaled)
    if scaled != units:
        raise LedgerError(f"amount {value} is finer than $0.000001")
    return units


def micros_to_dollars(micros: int) -> Decimal:
    """Micro-dollars → exact dollars."""
    return Decimal(micros).scaleb(-6)


def micros_to_units(micros: int) -> int:
    """Micro-dollars → $0.0001 units, rounded toward −∞ (a loss is never understated; for the risk engine)."""
    return micros // 100


def marked_value_micros(net_units: int, mark_x2: int) -> int:
    """What a net position is worth at a mark, micro-dollars, floored.

    ``net_units`` is 1/100 contract (> 0 YES, < 0 NO); ``mark_x2`` is twice the YES mid in $0.0001 units (so a
    mid of $0.50005 is exact). Floor: a half micro-dollar is never counted as value.
    """
    if net_units >= 0:
        return mark_x2 * net_units // 2
    return (_TWO_DOLLAR_X2 - mark_x2) * -net_units // 2


def mark_x2_of(mid: int | Decimal) -> int:
    """A YES mid ($0.0001 units as int, or dollars as Decimal, at most 5 decimals) → twice it, $0.0001 units."""
    if isinstance(mid, bool):
        raise LedgerError("a mark must be an int of $0.0001 units or a Decimal of dollars, not a bool")
    if isinstance(mid, int):
        x2 = 2 * mid
    elif isinstance(mid, Decimal):
        scaled = mid.scaleb(4) * 2
        x2 = int(scaled)
        if scaled != x2:
            raise LedgerError(f"mark {mid} is finer than $0.00005")
    else:
        raise LedgerError(f"a mark must be an int or a Decimal, not {type(mid).__name__}")
    if not 0 <= x2 <= _TWO_DOLLAR_X2:
        raise LedgerError(f"mark {mid} is outside [0, 1] dollars")
    return x2


@dataclass(frozen=True, slots=True)
class FeeBreakdown:
    """Fees by kind (FR-702), micro-dollars."""

    trading_micros: int
    settlement_micros: int
    other_micros: int

    @property
    def total_micros(self) -> int:
        return self.trading_micros + self.settlement_micros + self.other_micros


@dataclass(frozen=True, slots=True)
class MarketPnl:
    """One market's position and PnL at an instant. Money micro-dollars, quantities 1/100 contract."""

    market_id: str
    net_units: int
    """Net YES inventory (> 0 long YES, < 0 long NO)."""
    cost_basis_micros: int
    """Cash locked in the holding (its notional exposure, Kalshi's ``market_exposure``)."""
    mark_x2: int | None
    """Twice the last YES mid, $0.0001 units; None if never marked."""
    realized_micros: int
    unrealized_micros: int
    fees: FeeBreakdown
    hourly_net_micros: int
    """Net PnL in the current UTC hour."""
    daily_net_micros: int
    """Net PnL in the current UTC day."""
    peak_net_micros: int
    traded_micros: int
    """Notional traded, YES price × count summed over fills."""

    @property
    def yes(self) -> Quantity:
        return Quantity(self.net_units if self.net_units > 0 else 0)

    @property
    def no(self) -> Quantity:
        return Quantity(-self.net_units if self.net_units < 0 else 0)

    @property
    def avg_entry_price_units(self) -> Fraction | None:
        """Average entry price of the held contract (YES price if long YES, NO price if long NO), $0.0001
        units, exact; None when flat. Basis micro-dollars / count units is exactly $0.0001 units."""
        if self.net_units == 0:
            return None
        return Fraction(self.cost_basis_micros, abs(self.net_units))

    @property
    def gross_micros(self) -> int:
        return self.realized_micros + self.unrealized_micros

    @property
    def net_micros(self) -> int:
        return self.realized_micros + self.unrealized_micros - self.fees.total_micros

    @property
    def drawdown_micros(self) -> int:
        """Running peak of net PnL minus net PnL now (≥ 0)."""
        return self.peak_net_micros - self.net_micros

    def position(self) -> Position:
        """As a domain :class:`Position`, average price in dollars (rounded to 10 decimals, display only)."""
        avg = self.avg_entry_price_units
        avg_dollars = None if avg is None else (Decimal(avg.numerator) / Decimal(avg.denominator)).scaleb(-4)
        if avg_dollars is not None:
            avg_dollars = avg_dollars.quantize(Decimal("1e-10"))
        return Position(
            market_id=self.market_id,
            yes=self.yes,
            no=self.no,
            avg_yes_price=avg_dollars if self.net_units > 0 else None,
            avg_no_price=avg_dollars if self.net_units < 0 else None,
        )


@dataclass(frozen=True, slots=True)
class PnlSummary:
    """The whole ledger at an instant (all markets plus account-level fees). Money micro-dollars."""

    cash_micros: int
    realized_micros: int
    unrealized_micros: int
    fees: FeeBreakdown
    notional_micros: int
    """Sum of the markets' cost bases."""
    hourly_net_micros: int
    daily_net_micros: int
    peak_net_micros: int

    @property
    def gross_micros(self) -> int:
        return self.realized_micros + self.unrealized_micros

    @property
    def net_micros(self) -> int:
        return self.realized_micros + self.unrealized_micros - self.fees.total_micros

    @property
    def drawdown_micros(self) -> int:
        return self.peak_net_micros - self.net_micros


@dataclass(frozen=True, slots=True)
class MarketSnapshot:
    """A market's ledger state for checkpoints. Money micro-dollars; see :class:`MarketPnl` for fields."""

    market_id: str
    net_units: int
    cost_basis_micros: int
    realized_micros: int
    trading_fees_micros: int
    settlement_fees_micros: int
    other_fees_micros: int
    mark_x2: int | None
    peak_net_micros: int
    traded_micros: int
    fee_type: str
    fee_multiplier: Decimal
    fee_rounding: FeeRounding
    fee_source: FeeSource
    hour: WindowState | None
    day: WindowState | None


@dataclass(frozen=True, slots=True)
class LedgerSnapshot:
    """Everything :meth:`Ledger.from_snapshot` needs to continue exactly (closed window history excepted)."""

    cash_micros: int
    account_other_fees_micros: int
    """Fees not tied to a market (API fees)."""
    peak_net_micros: int
    hour: WindowState | None
    day: WindowState | None
    markets: tuple[MarketSnapshot, ...]
    order_fees: tuple[tuple[str, str, int, int], ...]
    """Open per-order fee accumulators: (order id, market id, exact numerator, charged $0.0001)."""
    recent_fill_ids: tuple[str, ...]
    """Fill ids already booked, oldest first (so a replay after restore skips them)."""


@dataclass(frozen=True, slots=True)
class PositionDiff:
    """A market where the ledger's net position and the venue's differ (FR-703), 1/100 contract."""

    market_id: str
    ledger_units: int
    exchange_units: int

    @property
    def difference_units(self) -> int:
        """Exchange minus ledger."""
        return self.exchange_units - self.ledger_units
