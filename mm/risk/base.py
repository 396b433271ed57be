"""The risk rule interface (FR-510): ``RiskRule``, ``RiskContext``, ``RiskDecision``.

Risk code is pure decision code: a rule gets the proposed quotes and a context of plain values and
returns a decision; it never performs IO, never reads a clock (``now_us`` is in the context), and
never sends or cancels orders itself. Logging, metrics and cancel-all requests are carried out by the
caller from the :class:`RiskOutcome` the pipeline returns (``mm.observability.risk_audit`` logs and
counts every decision).

Units: prices and money are integers of $0.0001 (``*_units`` fields; PnL signed), quantities
integers of 1/100 contract, times µs since the epoch or seconds where named ``*_seconds``; σ is a
float in dollars per √second. The FR-510 field names (``current_inventory``, ``realized_pnl`` …) are
available as properties in contracts and dollars (exact ``Decimal``) for custom rules.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from mm.domain.market import MarketSnapshot
from mm.domain.portfolio import Position
from mm.domain.price import QTY_SCALE, units_to_dollars
from mm.domain.quotes import QuoteSet
from mm.domain.ticks import TickGrid


class RiskAction(enum.Enum):
    ALLOW = "ALLOW"
    MODIFY = "MODIFY"
    BLOCK = "BLOCK"


@dataclass(frozen=True, slots=True)
class RiskDecision:
    """A rule's verdict (FR-510). MODIFY carries the modified quotes; any verdict may ask for the kill switch."""

    action: RiskAction
    reason: str | None = None
    modified_quotes: QuoteSet | None = None
    trigger_kill_switch: bool = False

    def __post_init__(self) -> None:
        if self.action is RiskAction.MODIFY and self.modified_quotes is None:
            raise ValueError("a MODIFY decision must carry modified_quotes")


ALLOW = RiskDecision(RiskAction.ALLOW)


def block(reason: str, *, kill_switch: bool = False) -> RiskDecision:
    return RiskDecision(RiskAction.BLOCK, reason, None, kill_switch)


def modify(quotes: QuoteSet, reason: str) -> RiskDecision:
    return RiskDecision(RiskAction.MODIFY, reason, quotes)


@dataclass(frozen=True, slots=True)
class RiskContext:
    """Everything a rule may look at for one market at one instant."""

    market_id: str
    now_us: int
    snapshot: MarketSnapshot
    grid: TickGrid
    inventory_units: int
    """Net YES inventory, 1/100 contract (YES − NO; positive = long YES)."""
    max_inventory_units: int
    """The strategy's Q_max, 1/100 contract."""
    yes_units: int = 0
    """YES contracts held, 1/100 contract."""
    no_units: int = 0
    """NO contracts held, 1/100 contract."""
    notional_units: int = 0
    """Notional exposure of the holdings (cost basis), $0.0001."""
    realized_pnl_units: int = 0
    unrealized_pnl_units: int = 0
    fees_units: int = 0
    hourly_pnl_units: int = 0
    """Net PnL (realized + unrealized − fees) over the last hour, $0.0001 (negative = loss)."""
    daily_pnl_units: int = 0
    """Net PnL over the trading day, $0.0001."""
    drawdown_units: int = 0
    """Running peak of net PnL minus net PnL now, $0.0001 (≥ 0)."""
    time_to_settlement_seconds: float = float("inf")
    volatility: float = 0.0
    """Current σ, dollars per √second."""
    normal_volatility: float | None = None
    """Learned baseline σ (a slow average), dollars per √second; None until known."""
    normal_spread_units: int | None = None
    """Learned typical book spread, $0.0001; None until known."""
    netting: bool = True
    """True where the venue nets YES against NO and one order serves a YES ask and a NO bid (Kalshi)."""
    positions: Mapping[str, Position] = field(default_factory=dict)
    """All positions of the node, by market (FR-510), for rules that look across markets."""

    # FR-510's names, in contracts and dollars (exact), for custom rules.
    @property
    def current_inventory(self) -> Decimal:
        return Decimal(self.inventory_units) / QTY_SCALE

    @property
    def max_inventory(self) -> Decimal:
        return Decimal(self.max_inventory_units) / QTY_SCALE

    @property
    def realized_pnl(self) -> Decimal:
        return units_to_dollars(self.realized_pnl_units)

    @property
    def unrealized_pnl(self) -> Decimal:
        return units_to_dollars(self.unrealized_pnl_units)

    @property
    def hourly_pnl(self) -> Decimal:
        return units_to_dollars(self.hourly_pnl_units)

    @property
    def daily_pnl(self) -> Decimal:
        return units_to_dollars(self.daily_pnl_units)

    @property
    def time_to_settlement(self) -> float:
        return self.time_to_settlement_seconds

    @property
    def current_volatility(self) -> float:
        return self.volatility

    @property
    def market_snapshot(self) -> MarketSnapshot:
        return self.snapshot


class RiskRule(ABC):
    """A rule that evaluates proposed quotes (FR-510). Subclasses set ``name`` and implement ``evaluate``.

    Custom rules (FR-512) are built with their spec ``params`` as keyword arguments; the base class keeps
    them in ``self.params`` and as attributes, so ``self.normal_volatility`` works without an ``__init__``.
    """

    name: str = ""

    def __init__(self, **params: Any) -> None:
        self.params = dict(params)
        for key, value in params.items():
            setattr(self, key, value)

    @abstractmethod
    def evaluate(self, proposed_quotes: QuoteSet, context: RiskContext) -> RiskDecision:
        """ALLOW, MODIFY (with the modified quotes) or BLOCK the proposed quotes."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
