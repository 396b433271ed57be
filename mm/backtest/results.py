"""What a backtest produces (FR-903): its simulated fills, the state after every re-plan, and its counts —
plain values that :mod:`mm.backtest.report` turns into figures and :mod:`mm.backtest.html_report` into plots.

Units as everywhere: prices $0.0001 (YES-book), sizes 1/100 contract, money micro-dollars, times UTC µs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mm.backtest.config import BacktestConfig
from mm.backtest.tape import SessionTape

__all__ = ["BacktestFill", "BacktestResult", "Samples"]


@dataclass(frozen=True, slots=True)
class BacktestFill:
    """One simulated fill, in YES-book terms."""

    ts_us: int
    order_id: str
    buy_yes: bool
    """True: a YES-book bid filled (we bought YES or sold NO); False: an ask (sold YES / bought NO)."""
    yes_price_units: int
    size_units: int
    fee_micros: int
    is_taker: bool
    realized_micros: int
    """Realized PnL this fill booked (its closing part, before fees; 0 for an opening fill)."""
    closing: bool
    """Whether the fill reduced the position (a round trip's exit)."""
    position_units: int
    """Net YES position after the fill."""


@dataclass(slots=True)
class Samples:
    """The state after every strategy run (parallel lists): for the report's curves."""

    ts_us: list[int] = field(default_factory=list)
    mid_x2: list[int] = field(default_factory=list)
    """Twice the YES mid, $0.0001 units; -1 on a one-sided book."""
    bid_units: list[int] = field(default_factory=list)
    """Our approved YES bid, $0.0001; -1 when none."""
    ask_units: list[int] = field(default_factory=list)
    position_units: list[int] = field(default_factory=list)
    net_micros: list[int] = field(default_factory=list)
    """Net PnL (realized + unrealized − fees), micro-dollars."""

    def add(self, ts: int, mid_x2: int, bid: int, ask: int, position: int, net: int) -> None:
        self.ts_us.append(ts)
        self.mid_x2.append(mid_x2)
        self.bid_units.append(bid)
        self.ask_units.append(ask)
        self.position_units.append(position)
        self.net_micros.append(net)


@dataclass(slots=True)
class BacktestResult:
    """What a backtest did; :mod:`mm.backtest.report` turns it into the FR-903 report."""

    tape: SessionTape
    config: BacktestConfig
    events: int = 0
    strategy_runs: int = 0
    """Times the strategy engine quoted (every re-plan with a two-sided book outside the cutoff)."""
    quote_sets: int = 0
    """Strategy runs whose risk-approved quotes held at least one quote."""
    two_sided: int = 0
    spread_sum_units: int = 0
    """Sum of (approved YES ask − YES bid) over two-sided quote sets, $0.0001."""
    plans: int = 0
    orders_placed: int = 0
    orders_rejected: int = 0
    amends: int = 0
    decreases: int = 0
    cancels: int = 0
    fills: list[BacktestFill] = field(default_factory=list)
    filled_orders: int = 0
    samples: Samples = field(default_factory=Samples)
    max_long_units: int = 0
    max_short_units: int = 0
    """Most negative net position reached (≤ 0)."""
    at_limit_us: int = 0
    """Recorded time spent with |position| at or above the strategy's max_inventory."""
    max_inventory_units: int = 0
    position_units: int = 0
    realized_micros: int = 0
    unrealized_micros: int = 0
    fees_micros: int = 0
    settlement_payout_micros: int | None = None
    kill_switch: str | None = None
    """Why a kill switch tripped during the backtest (everything is cancelled from then on), if one did."""

    @property
    def net_micros(self) -> int:
        return self.realized_micros + self.unrealized_micros - self.fees_micros
