"""Hourly and daily PnL windows and drawdown from the running peak, for the ledger (FR-702).

Windows are fixed UTC buckets (``[k·length, (k+1)·length)`` µs since the epoch: whole UTC hours and UTC
days) keyed on the timestamps of the events the ledger applies (fills, marks, settlements, fees), not on
a clock: a replay reproduces them exactly. A window's PnL is net PnL now minus net PnL when the window
opened (``mm.risk.pnl.window_pnl_units``'s definition), so marks moving the unrealized part count too.

A tracker rolls lazily: the first event at or past the window's end closes it (recording its PnL) and
opens the bucket that event falls in, with the net PnL *before* that event as the new base. Nothing can
have changed between the last event and that one, so the closed window's figure is exact. An event
stamped before the open window (a late or out-of-order fill) is counted in the open window: closed
windows are never reopened. A query at ``now_us`` past the open window's end reads 0 for "this window"
(nothing has happened in the bucket ``now_us`` falls in).

Money is int micro-dollars ($0.000001), like the ledger.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Final

__all__ = ["DAY_US", "HOUR_US", "PnlWindow", "WindowState", "WindowTracker"]

HOUR_US: Final = 3_600_000_000
DAY_US: Final = 24 * HOUR_US


@dataclass(frozen=True, slots=True)
class PnlWindow:
    """One closed UTC window: ``[start_us, start_us + length_us)``, net PnL and fees over it, micro-dollars."""

    start_us: int
    length_us: int
    net_pnl_micros: int
    """Net PnL (realized + unrealized − all fees) made in the window."""
    fees_micros: int
    """All fees (trading, settlement, other) charged in the window."""

    @property
    def gross_pnl_micros(self) -> int:
        """Gross PnL (before fees) made in the window."""
        return self.net_pnl_micros + self.fees_micros


@dataclass(frozen=True, slots=True)
class WindowState:
    """A tracker's open window, for snapshots: where it starts and the net PnL and fees at its start."""

    start_us: int
    base_net_micros: int
    base_fees_micros: int


class WindowTracker:
    """The open window of one length (an hour or a day) plus a bounded history of closed ones."""

    __slots__ = ("base_fees", "base_net", "end_us", "history", "length_us", "start_us")

    def __init__(self, length_us: int, history: int) -> None:
        if length_us <= 0:
            raise ValueError(f"window length must be positive, got {length_us} µs")
        self.length_us = length_us
        self.start_us = -1
        """Start of the open window, µs; −1 before the first event."""
        self.end_us = -1
        self.base_net = 0
        self.base_fees = 0
        self.history: deque[PnlWindow] = deque(maxlen=history)
        """Closed windows, oldest first (bounded: the store keeps the long history)."""

    def roll(self, ts_us: int, net: int, fees: int) -> None:
        """Call before applying an event stamped ``ts_us``; ``net``/``fees`` are the totals before it."""
        if ts_us < self.end_us:
            return
        if self.start_us >= 0:
            self.history.append(PnlWindow(self.start_us, self.length_us, net - self.base_net, fees - self.base_fees))
        length = self.length_us
        self.start_us = ts_us - ts_us % length
        self.end_us = self.start_us + length
        self.base_net = net
        self.base_fees = fees

    def pnl(self, net: int, now_us: int | None = None) -> int:
        """Net PnL in the open window given the net PnL now; 0 if ``now_us`` is past it or nothing happened."""
        if self.start_us < 0 or (now_us is not None and now_us >= self.end_us):
            return 0
        return net - self.base_net

    def fees(self, fees: int, now_us: int | None = None) -> int:
        """Fees charged in the open window given the fee total now (0 as for :meth:`pnl`)."""
        if self.start_us < 0 or (now_us is not None and now_us >= self.end_us):
            return 0
        return fees - self.base_fees

    def state(self) -> WindowState | None:
        return None if self.start_us < 0 else WindowState(self.start_us, self.base_net, self.base_fees)

    def restore(self, state: WindowState | None) -> None:
        if state is None:
            return
        if state.start_us % self.length_us:
            raise ValueError(f"window start {state.start_us} µs is not on a {self.length_us} µs boundary")
        self.start_us = state.start_us
        self.end_us = state.start_us + self.length_us
        self.base_net = state.base_net_micros
        self.base_fees = state.base_fees_micros
