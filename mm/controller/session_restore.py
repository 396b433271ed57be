"""What a ``state_snapshot`` carries so that a replay can start there (FR-902 partial replay), and how a replayed
node is put back into that state.

Besides the positions and PnL FR-901 asks for, a snapshot holds everything the next Market cycle decides on that
a replay could otherwise only rebuild by replaying from the start:

* per Market trading the ticker (``markets``): the volatility estimator's state (``get_state()``), the Market's
  kill switch, the planner's throttle (``last_update_us``) and attempt counters, the reload window, the σ last
  recorded and what its ``reconcile`` records last carried;
* per account (``accounts[].restore``): our open orders in full (client ids, status, fills, timestamps), creates
  awaiting an answer or of unknown outcome, the last orders known to be over (a late update of one is ignored),
  and the market's ledger state (position, basis, PnL, fees, windows, peak, per-order fee accumulators);
* the venue book the node quotes on (``book``: levels, its timestamp, stale or not).

Everything is exact (ints of units, decimal strings) but the estimator's floats, which JSON keeps bit for bit.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from mm.controller.node import Account, NodeContext
from mm.domain.fees import FeeSchedule
from mm.domain.orders import Order
from mm.domain.sides import Side
from mm.reconcilers.client_ids import Level
from mm.reconcilers.market import MarketRuntime
from mm.recording.order_records import order_from_payload, order_payload, request_from_payload, request_payload
from mm.state.ledger import Ledger, LedgerSnapshot, MarketSnapshot
from mm.state.pnl_windows import WindowState

__all__ = [
    "FINISHED_KEPT",
    "account_restore_payload",
    "book_payload",
    "restore_account",
    "restore_runtime",
    "runtime_payload",
]

FINISHED_KEPT = 200
"""Ended orders remembered in a snapshot: enough for the updates still in flight when it was taken."""


# ---------------------------------------------------------------------- writing (the recorder's state provider)


def runtime_payload(runtime: MarketRuntime) -> dict[str, Any]:
    return {
        "name": runtime.name,
        "generation": runtime.generation,
        "config_digest": runtime.config_digest,
        "volatility": runtime.engine.volatility.get_state(),
        "attempts": {level.value: n for level, n in sorted(runtime.attempts.items(), key=lambda i: i[0].value)},
        "last_update_us": runtime.last_update_us,
        "kill_switch": runtime.risk.market_switch.tripped,
        "recorded_sigma": runtime.recorded_sigma,
        "recorded_inputs": dict(runtime.recorded_inputs),
        "reloads": list(runtime.reloads),
        "reload_blocked_until_us": runtime.reload_blocked_until_us,
        "cutoff_logged": runtime.cutoff_logged,
        "orders_sent": runtime.orders_sent,
        "cancels_sent": runtime.cancels_sent,
        "subscribed": list(runtime.subscribed) if runtime.subscribed is not None else None,
    }


def _window(state: WindowState | None) -> list[int] | None:
    return None if state is None else [state.start_us, state.base_net_micros, state.base_fees_micros]


def _market_ledger(m: MarketSnapshot) -> dict[str, Any]:
    return {
        "net_units": m.net_units,
        "cost_basis_micros": m.cost_basis_micros,
        "realized_micros": m.realized_micros,
        "trading_fees_micros": m.trading_fees_micros,
        "settlement_fees_micros": m.settlement_fees_micros,
        "other_fees_micros": m.other_fees_micros,
        "mark_x2": m.mark_x2,
        "peak_net_micros": m.peak_net_micros,
        "traded_micros": m.traded_micros,
        "fee_type": m.fee_type,
        "fee_multiplier": str(m.fee_multiplier),
        "fee_rounding": m.fee_rounding,
        "fee_source": m.fee_source,
        "hour": _window(m.hour),
        "day": _window(m.day),
    }


def account_restore_payload(account: Account, ticker: str) -> dict[str, Any]:
    """The account's orders and ledger state of ``ticker`` (see the module docstring)."""
    tracker = account.tracker
    snapshot = account.ledger.snapshot()
    market = next((m for m in snapshot.markets if m.market_id == ticker), None)
    return {
        "orders": [order_payload(o) for o in tracker.open_orders(ticker)],
        "awaiting": [request_payload(p.request) for p in tracker.awaiting_answer(ticker)],
        "unknown": [request_payload(p.request) for p in tracker.unknown.values() if p.request.market_id == ticker],
        "finished": tracker.finished_ids(FINISHED_KEPT),
        "ledger": _market_ledger(market) if market is not None else None,
        "order_fees": [[oid, num, charged] for oid, mid, num, charged in snapshot.order_fees if mid == ticker],
    }


def book_payload(node: NodeContext, exchange: str, ticker: str) -> dict[str, Any] | None:
    conn = node.exchanges.get(exchange)
    if conn is None:
        return None
    book = conn.venue.book(ticker)
    stale = conn.venue.is_stale(ticker)
    if book is None:
        return {"stale": stale, "yes_bids": None, "no_bids": None, "book_ts_us": None}
    n = len(book.grid.levels)
    return {
        "stale": stale,
        "yes_bids": book.depth(Side.YES, n),
        "no_bids": book.depth(Side.NO, n),
        "book_ts_us": book.last_update_us,
    }


# ---------------------------------------------------------------------- restoring (the replay)


def restore_runtime(runtime: MarketRuntime, data: Mapping[str, Any], now_us: int) -> None:
    """Put a freshly built Market runtime into the recorded state (its kill switch too)."""
    runtime.engine.volatility.set_state(data["volatility"])
    runtime.attempts = {Level(k): int(v) for k, v in (data.get("attempts") or {}).items()}
    last = data.get("last_update_us")
    runtime.last_update_us = int(last) if last is not None else None
    runtime.recorded_sigma = data.get("recorded_sigma")
    runtime.recorded_inputs = dict(data.get("recorded_inputs") or {})
    runtime.reloads = [int(t) for t in data.get("reloads") or []]
    runtime.reload_blocked_until_us = int(data.get("reload_blocked_until_us", 0))
    runtime.cutoff_logged = bool(data.get("cutoff_logged", False))
    runtime.orders_sent = int(data.get("orders_sent", 0))
    runtime.cancels_sent = int(data.get("cancels_sent", 0))
    subscribed = data.get("subscribed")
    runtime.subscribed = (str(subscribed[0]), str(subscribed[1])) if subscribed else None
    switch = runtime.risk.market_switch
    if data.get("kill_switch") and not switch.tripped:
        switch.trigger("tripped when the state_snapshot was taken", "recovery", now_us)


def _window_state(value: Any) -> WindowState | None:
    return None if value is None else WindowState(int(value[0]), int(value[1]), int(value[2]))


def _ledger(ticker: str, data: Mapping[str, Any] | None, fees: list[Any], cash_micros: int, source: str) -> Ledger:
    markets: tuple[MarketSnapshot, ...] = ()
    if data is not None:
        markets = (
            MarketSnapshot(
                market_id=ticker,
                net_units=int(data["net_units"]),
                cost_basis_micros=int(data["cost_basis_micros"]),
                realized_micros=int(data["realized_micros"]),
                trading_fees_micros=int(data["trading_fees_micros"]),
                settlement_fees_micros=int(data["settlement_fees_micros"]),
                other_fees_micros=int(data["other_fees_micros"]),
                mark_x2=data.get("mark_x2"),
                peak_net_micros=int(data["peak_net_micros"]),
                traded_micros=int(data["traded_micros"]),
                fee_type=str(data["fee_type"]),
                fee_multiplier=Decimal(str(data["fee_multiplier"])),
                fee_rounding=data["fee_rounding"],
                fee_source=data["fee_source"],
                hour=_window_state(data.get("hour")),
                day=_window_state(data.get("day")),
            ),
        )
    snapshot = LedgerSnapshot(
        cash_micros=cash_micros,
        account_other_fees_micros=0,
        peak_net_micros=0,
        hour=None,
        day=None,
        markets=markets,
        order_fees=tuple((str(f[0]), ticker, int(f[1]), int(f[2])) for f in fees),
        recent_fill_ids=(),
    )
    return Ledger.from_snapshot(snapshot, fee_source="venue" if source == "venue" else "formula", fees=FeeSchedule())


def restore_account(account: Account, ticker: str, entry: Mapping[str, Any], now_us: int) -> list[Order]:
    """Put the account's ``ticker`` orders and ledger into a snapshot's state; returns the open orders (the
    replay's venue holds them too). The account-wide totals (cash) come back as recorded; other markets do not."""
    restore = entry["restore"]
    cash = int((entry.get("ledger") or {}).get("cash_micros", account.ledger.cash_micros))
    source = "venue" if account.execution == "live" else "formula"
    account.ledger = _ledger(ticker, restore.get("ledger"), restore.get("order_fees") or [], cash, source)
    tracker = account.tracker
    tracker.restore_finished(str(i) for i in restore.get("finished") or [])
    orders = [order_from_payload(ticker, o) for o in restore.get("orders") or []]
    for order in orders:
        tracker.acked(order)
    for request in restore.get("awaiting") or []:
        tracker.sent(request_from_payload(ticker, request), now_us)
    for request in restore.get("unknown") or []:
        parsed = request_from_payload(ticker, request)
        tracker.sent(parsed, now_us)
        tracker.outcome_unknown(parsed.client_order_id)
    return orders
