"""What the risk engine is told about one market at one instant, built from the ledger and the book.

One construction serves the Market reconciler and the backtester, so that both evaluate the rules on the same
numbers: the ledger's micro-dollars become the rules' $0.0001 units (floored), the drawdown is measured from
the market's running PnL peak, and a market's aggregate usage is its cost basis, contracts held and windowed PnL.
"""

from __future__ import annotations

from mm.domain.book import OrderBook
from mm.domain.ticks import TickGrid
from mm.risk.aggregate import MarketUsage
from mm.risk.base import RiskContext
from mm.state.ledger_values import MarketPnl

__all__ = ["market_usage", "risk_context"]


def risk_context(
    market_id: str,
    now_us: int,
    book: OrderBook,
    grid: TickGrid,
    position_units: int,
    max_inventory_units: int,
    pnl: MarketPnl,
    seconds_left: float,
    volatility: float,
) -> RiskContext:
    """The rules' view of ``market_id``: the book's top, the position (1/100 contract), the PnL fields ($0.0001)
    and ``seconds_left`` to settlement (``inf`` when the market has no close time)."""
    return RiskContext(
        market_id=market_id,
        now_us=now_us,
        snapshot=book.snapshot(market_id, now_us),
        grid=grid,
        inventory_units=position_units,
        max_inventory_units=max_inventory_units,
        yes_units=max(position_units, 0),
        no_units=max(-position_units, 0),
        notional_units=pnl.cost_basis_micros // 100,
        realized_pnl_units=pnl.realized_micros // 100,
        unrealized_pnl_units=pnl.unrealized_micros // 100,
        fees_units=pnl.fees.total_micros // 100,
        hourly_pnl_units=pnl.hourly_net_micros // 100,
        daily_pnl_units=pnl.daily_net_micros // 100,
        drawdown_units=max(0, pnl.peak_net_micros - pnl.net_micros) // 100,
        time_to_settlement_seconds=seconds_left,
        volatility=volatility,
    )


def market_usage(pnl: MarketPnl, *, active: bool) -> MarketUsage:
    """One market's part of the aggregate limits; ``active``: it holds a position or has orders resting."""
    return MarketUsage(
        market_id=pnl.market_id,
        notional_units=pnl.cost_basis_micros // 100,
        contracts_units=abs(pnl.net_units),
        hourly_pnl_units=pnl.hourly_net_micros // 100,
        daily_pnl_units=pnl.daily_net_micros // 100,
        active=active,
    )
