"""Which node events raise which built-in alert (NFR-403): one table, so every raising site is one event.

The node already reports everything notable as an event (``NodeContext.event``: stored, streamed on /events,
logged). :func:`alert_for` maps an event's reason to the catalogue's alert name (``mm.alerting.BUILTIN_ALERTS``)
and the runtime raises it through the :class:`~mm.alerting.AlertManager` — throttled there, critical ones
bypassing the throttle. Events not in the table raise nothing.
"""

from __future__ import annotations

from typing import Final

__all__ = ["EVENT_ALERTS", "alert_for"]

EVENT_ALERTS: Final[dict[str, str]] = {
    "KillSwitchTripped": "kill_switch_triggered",
    # not "Disconnected": a requested disconnect (shutdown, spec change) is one too; StreamDown is the stream
    # lost for the degradation monitor's window
    "StreamDown": "websocket_disconnect",
    "ReconnectFailing": "reconnect_failed",
    "LatencyHigh": "high_latency",
    "LatencyCritical": "high_latency",
    "ClockDrift": "clock_drift",
    "TimeSyncUnavailable": "clock_drift",
    "PositionMismatch": "reconciliation_mismatch",
    "RecoveryNeedsApproval": "recovery_discrepancy",
    "RecoveryDiscrepancy": "recovery_discrepancy",
    "NetworkOutage": "exchange_outage",
    "RecordingStopped": "recording_stopped",
    "DataStale": "stale_market_data",
    "DailyLossWarning": "daily_loss_warning",
    "DailyLossCritical": "daily_loss_critical",
    "HighInventory": "high_inventory",
}


def alert_for(reason: str) -> str | None:
    """The built-in alert an event of ``reason`` raises, if any."""
    return EVENT_ALERTS.get(reason)
