"""The FR-903 backtest report: figures computed from a :class:`~mm.backtest.engine.BacktestResult`, as text,
JSON and CSV (and HTML, :mod:`mm.backtest.html_report`).

Definitions (docs/backtest.md repeats them for readers of the report):

* **Total trades**: our simulated fills. **Win rate**: of the fills that closed part of a position, the share
  whose realized PnL (average cost, before fees) was positive; ``None`` when nothing was closed.
* **Gross PnL** = realized + unrealized (the position marked to the last mid, or settled at the value given);
  **Fees**: Kalshi's formula for the recorded Exchange's fee schedule; **Net PnL** = gross − fees.
* **Max drawdown**: the largest fall of net PnL from a running peak, over the state after every re-plan.
* **Sharpe (hourly)**: mean / standard deviation of the one-minute changes of net PnL, × √60 — a PnL Sharpe
  ratio (no capital base, no risk-free rate); ``None`` with fewer than two minutes or no variation.
* **Quotes generated**: strategy runs; **quotes filled**: our orders that got at least one fill, and their
  share of the quote sets risk approved. **Avg spread**: mean approved YES ask − YES bid over two-sided sets.
* **Time at limit**: share of the session's recorded time with |position| ≥ the strategy's ``max_inventory``.

Money is exact (Decimal dollars from integer micro-dollars); only the Sharpe ratio is a float.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import statistics
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any, Final

from mm.backtest.results import BacktestResult
from mm.domain.price import QTY_SCALE

__all__ = ["CSV_FIELDS", "BacktestReport", "build_report", "format_money", "format_pct"]

_MINUTE_US: Final = 60_000_000


def format_money(value: Decimal | None) -> str:
    """Money as the reports show it: $ and 2 decimals (``-$1.20``), ``n/a`` for None."""
    if value is None:
        return "n/a"
    return f"-${-value:,.2f}" if value < 0 else f"${value:,.2f}"


def format_pct(value: Decimal | None) -> str:
    """A percentage (already × 100) to one decimal, ``n/a`` for None."""
    return "n/a" if value is None else f"{value:.1f}%"


def _dollars(micros: int) -> Decimal:
    return Decimal(micros).scaleb(-6)


def _contracts(units: int) -> Decimal:
    return Decimal(units) / QTY_SCALE


@dataclass(frozen=True, slots=True)
class BacktestReport:
    """Every figure of one backtest (dollars and contracts as exact Decimals)."""

    file: str
    market: str
    market_name: str
    fill_model: str
    seed: int
    strategy_digest: str
    risk_digest: str
    duration_s: Decimal
    events: int
    total_trades: int
    maker_fills: int
    taker_fills: int
    contracts_traded: Decimal
    closing_fills: int
    winning_fills: int
    win_rate: Decimal | None
    gross_pnl: Decimal
    fees: Decimal
    net_pnl: Decimal
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    max_drawdown: Decimal
    sharpe_hourly: float | None
    quotes_generated: int
    quote_sets: int
    quotes_filled: int
    quotes_filled_pct: Decimal | None
    avg_spread: Decimal | None
    orders_placed: int
    amends: int
    decreases: int
    cancels: int
    orders_rejected: int
    max_long: Decimal
    max_short: Decimal
    final_position: Decimal
    time_at_limit_pct: Decimal
    settlement_payout: Decimal | None
    kill_switch: str | None
    recorded_quotes: int
    recorded_orders: int
    recorded_fills: int
    recorded_net_pnl: Decimal | None

    def to_json(self) -> dict[str, Any]:
        """Plain JSON values: Decimals as strings (exact), the rest as they are."""
        return {k: (str(v) if isinstance(v, Decimal) else v) for k, v in asdict(self).items()}

    def to_csv(self, *, header: bool = True) -> str:
        """One CSV row (with a header row first unless ``header`` is False), columns :data:`CSV_FIELDS`."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        if header:
            writer.writerow(CSV_FIELDS)
        data = self.to_json()
        writer.writerow(["" if data[name] is None else data[name] for name in CSV_FIELDS])
        return buffer.getvalue()

    def to_text(self) -> str:
        """The requirement's layout (FR-903 "Backtest Output"), plus what the recorded node did."""

        title = f"Backtest Report: {self.file}"
        payout = self.settlement_payout
        settled = "" if payout is None else f" (settled: {format_money(payout)} paid out)"
        lines = [
            title,
            "━" * max(len(title), 40),
            f"Market:          {self.market} ({self.market_name})",
            f"Fill model:      {self.fill_model} (seed {self.seed})",
            f"Duration:        {self.duration_s:.0f} seconds ({self.events:,} market-data events)",
            f"Total Trades:    {self.total_trades} ({self.maker_fills} maker, {self.taker_fills} taker; "
            f"{self.contracts_traded} contracts)",
            f"Win Rate:        {format_pct(None if self.win_rate is None else self.win_rate * 100)}"
            f" ({self.winning_fills} of {self.closing_fills} closing fills)",
            f"Gross PnL:       {format_money(self.gross_pnl)}",
            f"Fees:            {format_money(self.fees)}",
            f"Net PnL:         {format_money(self.net_pnl)}",
            f"Max Drawdown:    {format_money(self.max_drawdown)}",
            f"Sharpe (hourly): {'n/a' if self.sharpe_hourly is None else f'{self.sharpe_hourly:.2f}'}",
            "",
            "Quote Statistics:",
            f"  Quotes Generated:  {self.quotes_generated} ({self.quote_sets} approved by risk)",
            f"  Quotes Filled:     {self.quotes_filled} ({format_pct(self.quotes_filled_pct)})",
            f"  Avg Spread:        {format_money(self.avg_spread)}",
            f"  Orders:            {self.orders_placed} placed, {self.amends} amended, {self.decreases} decreased, "
            f"{self.cancels} cancelled, {self.orders_rejected} refused",
            "",
            "Inventory:",
            f"  Max Long:          {self.max_long:+} contracts",
            f"  Max Short:         {self.max_short:+} contracts",
            f"  Final Position:    {self.final_position:+} contracts{settled}",
            f"  Time at Limit:     {self.time_at_limit_pct:.1f}%",
        ]
        if self.kill_switch:
            lines += ["", f"Kill switch tripped: {self.kill_switch}"]
        lines += [
            "",
            "Recorded session (what the node did live):",
            f"  {self.recorded_quotes} quotes, {self.recorded_orders} orders sent, {self.recorded_fills} fills, "
            f"net PnL {format_money(self.recorded_net_pnl)}",
        ]
        return "\n".join(lines)


CSV_FIELDS: Final[tuple[str, ...]] = (
    *(name for name in BacktestReport.__dataclass_fields__ if name not in ("file", "kill_switch")),
    "kill_switch",
)
"""The CSV columns: every figure, the free-text kill switch reason last."""


def _drawdown(nets: list[int]) -> int:
    peak, worst = 0, 0
    for net in nets:
        peak = max(peak, net)
        worst = max(worst, peak - net)
    return worst


def _sharpe_hourly(start_us: int, end_us: int, ts: list[int], nets: list[int]) -> float | None:
    """One-minute changes of net PnL (carried forward over quiet minutes), mean / stdev × √60."""
    minutes = (end_us - start_us) // _MINUTE_US
    if minutes < 2 or not ts:
        return None
    closes = [0] * (minutes + 1)
    i, last = 0, 0
    for m in range(minutes + 1):
        boundary = start_us + m * _MINUTE_US
        while i < len(ts) and ts[i] <= boundary:
            last = nets[i]
            i += 1
        closes[m] = last
    changes = [(b - a) / 1e6 for a, b in itertools.pairwise(closes)]
    if len(changes) < 2:
        return None
    spread = statistics.pstdev(changes)
    if spread == 0:
        return None
    return statistics.fmean(changes) / spread * math.sqrt(60)


def build_report(result: BacktestResult) -> BacktestReport:
    """The report of one backtest (see the module docstring for the definitions)."""
    tape, config = result.tape, result.config
    fills = result.fills
    closing = [f for f in fills if f.closing]
    wins = sum(1 for f in closing if f.realized_micros > 0)
    samples = result.samples
    nets = [*samples.net_micros, result.net_micros]
    duration_us = max(tape.end_us - tape.start_us, 0)
    gross = result.realized_micros + result.unrealized_micros
    recorded = tape.recorded
    return BacktestReport(
        file=tape.path.name,
        market=tape.ticker,
        market_name=config.market_name,
        fill_model=config.fill_model,
        seed=config.seed,
        strategy_digest=config.strategy_digest,
        risk_digest=config.risk_digest,
        duration_s=Decimal(duration_us).scaleb(-6),
        events=result.events,
        total_trades=len(fills),
        maker_fills=sum(1 for f in fills if not f.is_taker),
        taker_fills=sum(1 for f in fills if f.is_taker),
        contracts_traded=_contracts(sum(f.size_units for f in fills)),
        closing_fills=len(closing),
        winning_fills=wins,
        win_rate=(Decimal(wins) / len(closing)).quantize(Decimal("0.0001")) if closing else None,
        gross_pnl=_dollars(gross),
        fees=_dollars(result.fees_micros),
        net_pnl=_dollars(result.net_micros),
        realized_pnl=_dollars(result.realized_micros),
        unrealized_pnl=_dollars(result.unrealized_micros),
        max_drawdown=_dollars(_drawdown(nets)),
        sharpe_hourly=_sharpe_hourly(tape.start_us, tape.end_us, samples.ts_us, samples.net_micros),
        quotes_generated=result.strategy_runs,
        quote_sets=result.quote_sets,
        quotes_filled=result.filled_orders,
        quotes_filled_pct=(
            (Decimal(100 * result.filled_orders) / result.quote_sets).quantize(Decimal("0.01"))
            if result.quote_sets
            else None
        ),
        avg_spread=(
            (Decimal(result.spread_sum_units) / result.two_sided).scaleb(-4).quantize(Decimal("0.000001"))
            if result.two_sided
            else None
        ),
        orders_placed=result.orders_placed,
        amends=result.amends,
        decreases=result.decreases,
        cancels=result.cancels,
        orders_rejected=result.orders_rejected,
        max_long=_contracts(result.max_long_units),
        max_short=_contracts(result.max_short_units),
        final_position=_contracts(result.position_units),
        time_at_limit_pct=(
            (Decimal(100 * result.at_limit_us) / duration_us).quantize(Decimal("0.01")) if duration_us else Decimal(0)
        ),
        settlement_payout=None
        if result.settlement_payout_micros is None
        else _dollars(result.settlement_payout_micros),
        kill_switch=result.kill_switch,
        recorded_quotes=recorded.quotes,
        recorded_orders=recorded.orders_sent,
        recorded_fills=recorded.fills,
        recorded_net_pnl=None if recorded.final_net_micros is None else _dollars(recorded.final_net_micros),
    )
