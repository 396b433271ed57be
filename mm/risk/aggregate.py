"""Aggregate risk across every market of the node (FR-1302).

Limits: total notional, total contracts, aggregate hourly and daily loss (net PnL), concurrent markets.
The per-market rules still apply; these are checked on top, before any order:

* a loss limit breach halts every market (the node kill switch; :meth:`AggregateRisk.breach`);
* total notional and total contracts cap what one market may *add* (:meth:`AggregateRisk.room`);
* ``max_concurrent_markets`` gates activating another market (:meth:`AggregateRisk.can_activate`);
* :meth:`AggregateRisk.report` shows per-market against aggregate usage.

Units: $0.0001 for money (PnL signed), 1/100 contract for quantities.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from mm.domain.price import QTY_SCALE, dollars_to_units, units_to_dollars
from mm.specs.node import AggregateLimits


@dataclass(frozen=True, slots=True)
class MarketUsage:
    """One market's contribution to the aggregate."""

    market_id: str
    notional_units: int = 0
    contracts_units: int = 0
    """Contracts held, YES plus NO, 1/100 contract."""
    hourly_pnl_units: int = 0
    daily_pnl_units: int = 0
    active: bool = True


@dataclass(frozen=True, slots=True)
class AggregateUsage:
    markets: Mapping[str, MarketUsage] = field(default_factory=dict)

    @property
    def notional_units(self) -> int:
        return sum(m.notional_units for m in self.markets.values())

    @property
    def contracts_units(self) -> int:
        return sum(m.contracts_units for m in self.markets.values())

    @property
    def hourly_pnl_units(self) -> int:
        return sum(m.hourly_pnl_units for m in self.markets.values())

    @property
    def daily_pnl_units(self) -> int:
        return sum(m.daily_pnl_units for m in self.markets.values())

    @property
    def active_markets(self) -> int:
        return sum(1 for m in self.markets.values() if m.active)


@dataclass(frozen=True, slots=True)
class UsageRow:
    """One line of the usage report: a market or the total, against the aggregate limits."""

    name: str
    notional: Decimal
    contracts: Decimal
    hourly_pnl: Decimal
    daily_pnl: Decimal
    notional_share: Decimal
    """Fraction of the aggregate notional limit this row uses (0–1+)."""
    contracts_share: Decimal


@dataclass(frozen=True, slots=True)
class AggregateReport:
    rows: tuple[UsageRow, ...]
    total: UsageRow
    active_markets: int
    max_concurrent_markets: int
    breach: str | None


class AggregateRisk:
    """The node's aggregate limits, in integer units."""

    def __init__(self, limits: AggregateLimits) -> None:
        self.max_notional_units = dollars_to_units(limits.max_total_notional)
        self.max_contracts_units = int(limits.max_total_contracts * QTY_SCALE)
        self.max_daily_loss_units = dollars_to_units(limits.max_daily_loss)
        self.max_hourly_loss_units = dollars_to_units(limits.max_hourly_loss)
        self.max_concurrent_markets = limits.max_concurrent_markets

    def breach(self, usage: AggregateUsage) -> str | None:
        """A loss-limit breach that must halt every market, described; None when within limits."""
        daily_loss = -usage.daily_pnl_units
        if daily_loss >= self.max_daily_loss_units:
            return (
                f"aggregate daily loss ${units_to_dollars(daily_loss)} reached the limit "
                f"${units_to_dollars(self.max_daily_loss_units)}"
            )
        hourly_loss = -usage.hourly_pnl_units
        if hourly_loss >= self.max_hourly_loss_units:
            return (
                f"aggregate hourly loss ${units_to_dollars(hourly_loss)} reached the limit "
                f"${units_to_dollars(self.max_hourly_loss_units)}"
            )
        return None

    def room(self, usage: AggregateUsage) -> tuple[int, int]:
        """(notional $0.0001 units, contracts 1/100) that the node may still add, never negative."""
        return (
            max(0, self.max_notional_units - usage.notional_units),
            max(0, self.max_contracts_units - usage.contracts_units),
        )

    def can_activate(self, usage: AggregateUsage, market_id: str) -> bool:
        """Whether ``market_id`` may quote: it is already active, or there is a free slot."""
        current = usage.markets.get(market_id)
        if current is not None and current.active:
            return True
        return usage.active_markets < self.max_concurrent_markets

    def report(self, usage: AggregateUsage) -> AggregateReport:
        rows = tuple(
            self._row(m.market_id, m.notional_units, m.contracts_units, m.hourly_pnl_units, m.daily_pnl_units)
            for m in sorted(usage.markets.values(), key=lambda m: m.market_id)
        )
        total = self._row(
            "TOTAL", usage.notional_units, usage.contracts_units, usage.hourly_pnl_units, usage.daily_pnl_units
        )
        return AggregateReport(rows, total, usage.active_markets, self.max_concurrent_markets, self.breach(usage))

    def _row(self, name: str, notional: int, contracts: int, hourly: int, daily: int) -> UsageRow:
        return UsageRow(
            name=name,
            notional=units_to_dollars(notional),
            contracts=Decimal(contracts) / QTY_SCALE,
            hourly_pnl=units_to_dollars(hourly),
            daily_pnl=units_to_dollars(daily),
            notional_share=Decimal(notional) / self.max_notional_units,
            contracts_share=Decimal(contracts) / self.max_contracts_units,
        )
