"""PnL inputs of the risk rules (issue: "hourly and daily loss on net PnL; drawdown from the running
peak"). Pure functions over $0.0001 integer units; the ledger (state layer) owns the running values
and calls these, so risk rules and the ledger agree on one definition.
"""

from __future__ import annotations


def net_pnl_units(realized_units: int, unrealized_units: int, fees_units: int) -> int:
    """Net PnL = realized + unrealized − fees (FR-702), $0.0001."""
    return realized_units + unrealized_units - fees_units


def window_pnl_units(net_now_units: int, net_at_window_start_units: int) -> int:
    """PnL over a window (the last hour, the trading day): net now minus net at the window's start."""
    return net_now_units - net_at_window_start_units


def update_peak(peak_units: int | None, net_units: int) -> tuple[int, int]:
    """(new running peak, drawdown from it), $0.0001. The first observation is its own peak."""
    peak = net_units if peak_units is None or net_units > peak_units else peak_units
    return peak, peak - net_units
