"""What a full replay needs from the Market reconciler besides its decisions (FR-902, docs/recording.md "Replay"):
where every cycle ran and what the venue answered to every order call.

* ``reconcile`` — written once per cycle, with the cycle's ``now_us`` (the clock read the plan uses), when the
  cycle starts to observe. The work queue coalesces triggers nondeterministically, so *when* the node
  reconciled is an input a replay cannot derive: it reconciles exactly here, on this clock. It also carries the
  node and Market kill switches, and — only when they changed since this Market last wrote one — the Market and
  TradingNode specs (trading states, quoting, aggregate limits, generation) and the market's facts (status,
  close time, grid), which change outside any record otherwise.
* ``order_result`` — the venue's answer to each cancel, amend and decrease (creates have ``order_ack`` /
  ``order_rejected`` / ``order_unknown``), or the error the whole call raised. Its ``ts_us`` is the clock read
  taken when the call returned, which is also the time the act step goes on with (the throttle's
  ``last_update_us``, the reject-rate window): a replay sets its clock to it when it answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mm.adapters.base import MarketInfo
from mm.adapters.errors import ExchangeError
from mm.domain.orders import Order
from mm.recording.order_records import order_payload
from mm.recording.recorder import RecordSink

if TYPE_CHECKING:
    from mm.controller.node import NodeContext
    from mm.reconcilers.market import MarketRuntime

__all__ = [
    "market_facts",
    "record_call_failure",
    "record_cancel_of",
    "record_cancel_results",
    "record_cycle",
    "record_deleted_cycle",
    "record_result",
]


def market_facts(info: MarketInfo) -> dict[str, Any]:
    """The market's facts a cycle depends on, as ``session_start.market_info`` records them."""
    return {
        "event_id": info.event_id,
        "series_id": info.series_id,
        "status": info.status,
        "open_time_us": info.open_time_us,
        "close_time_us": info.close_time_us,
        "grid": [[r.start, r.end, r.step] for r in info.grid.ranges],
        "strike": info.strike,
    }


def record_cycle(
    recorder: RecordSink,
    node: NodeContext,
    name: str,
    ticker: str,
    runtime: MarketRuntime,
    now: int,
    info: MarketInfo | None,
) -> None:
    """The ``reconcile`` record of one cycle (see the module docstring), stamped with the cycle's own clock read."""
    data: dict[str, Any] = {
        "resource": name,
        "generation": runtime.generation,
        "now_us": now,
        "kill_switch": [node.node_switch.tripped, runtime.risk.market_switch.tripped],
    }
    seen = runtime.recorded_inputs
    changed: dict[str, Any] = {}
    stored = node.resources.get("Market", name)
    if stored is not None and seen.get("market") != stored.digest:
        changed["market"] = stored.digest
        data["market"] = stored.spec_data
    nodes = node.resources.all("TradingNode")
    node_digest = nodes[0].digest if nodes else ""
    if seen.get("trading_node") != node_digest:
        changed["trading_node"] = node_digest
        data["trading_node"] = nodes[0].spec_data if nodes else None
    # the facts only: quotes and volumes in MarketInfo change all the time and decide nothing here
    facts = market_facts(info) if info is not None else None
    if facts is not None and seen.get("market_info") != facts:
        changed["market_info"] = facts
        data["market_info"] = facts
    recorder.record("reconcile", ticker, data, ts_us=now)
    # after the record: when it opens the session, the session's first snapshot still shows what came before
    seen.update(changed)


def record_deleted_cycle(recorder: RecordSink, name: str, ticker: str, now: int) -> None:
    """The ``reconcile`` record of the cycle that carries out a deleted Market's deletion policy."""
    recorder.record("reconcile", ticker, {"resource": name, "now_us": now, "deleted": True}, ts_us=now)


def record_cancel_of(recorder: RecordSink, ticker: str, order_id: str, client_order_id: str, reason: str) -> None:
    """An ``order_cancel`` the plan did not list (a deleted Market's orders, a cancel after a failed amend)."""
    recorder.record(
        "order_cancel",
        ticker,
        {"exchange_order_id": order_id, "client_order_id": client_order_id, "level": None, "reason": reason},
    )


def record_result(
    recorder: RecordSink,
    ticker: str,
    action: str,
    order_id: str | None,
    error: BaseException | None,
    ts_us: int,
    *,
    order: Order | None = None,
    raised: bool = False,
) -> None:
    """One ``order_result``: ``action`` (cancel, amend, decrease, create) on ``order_id``; ``error`` None = done."""
    recorder.record(
        "order_result",
        ticker,
        {
            "action": action,
            "exchange_order_id": order_id,
            "error": type(error).__name__ if error is not None else None,
            "reason": str(error) if error is not None else None,
            "raised": raised,
            "order": order_payload(order) if order is not None else None,
        },
        ts_us=ts_us,
    )


def record_cancel_results(
    recorder: RecordSink, ticker: str, ids: Sequence[str], results: Sequence[ExchangeError | None], ts_us: int
) -> None:
    """A batch cancel's answers, one ``order_result`` per order, in the order they were asked."""
    for order_id, error in zip(ids, results, strict=False):
        record_result(recorder, ticker, "cancel", order_id, error, ts_us)


def record_call_failure(
    recorder: RecordSink, ticker: str, action: str, order_id: str | None, error: ExchangeError, ts_us: int
) -> None:
    """The whole call raised (rate limited, unavailable, refused): a replay raises the same error there."""
    record_result(recorder, ticker, action, order_id, error, ts_us, raised=True)
