"""The alert value, the built-in alert catalogue (NFR-403) and what the node keeps about each raised alert.

* :class:`Alert` is what a channel delivers: name, severity, message, data, time (µs since the epoch, UTC)
  and optionally the market it concerns. Its ``data`` is plain JSON-able values (floats already turned into
  exact ``Decimal``), redacted on the way in (:func:`plain_data`).
* :data:`BUILTIN_ALERTS` names every alert the node raises, with its default severity: NFR-403's table plus a
  few the node adds (database queue, recording, recovery, the test alert). Code raises alerts *by name*;
  custom rules (``alerting.custom_alerts``) add their own names at load time.
* :class:`AlertEntry` is the history row: the alert, whether the throttle suppressed it, and each channel's
  :class:`ChannelOutcome`. :meth:`AlertEntry.to_record` turns it into the persisted
  :class:`~mm.state.records.AlertRecord`.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Final, Literal

from mm.clock import format_rfc3339_us
from mm.observability.redaction import redact
from mm.specs.node import Severity
from mm.state.records import AlertRecord

__all__ = [
    "BUILTIN_ALERTS",
    "SEVERITIES",
    "Alert",
    "AlertDefinition",
    "AlertEntry",
    "ChannelOutcome",
    "Severity",
    "plain_data",
    "wire_value",
]

SEVERITIES: Final[tuple[Severity, ...]] = ("info", "warning", "critical")
"""Every severity, least to most urgent."""


@dataclass(frozen=True, slots=True)
class AlertDefinition:
    """One named alert: its default severity and what it means (``condition`` is the requirement's wording)."""

    name: str
    severity: Severity
    condition: str
    origin: Literal["NFR-403", "node", "custom"] = "NFR-403"


def _catalogue(*items: AlertDefinition) -> dict[str, AlertDefinition]:
    return {d.name: d for d in items}


BUILTIN_ALERTS: Final[Mapping[str, AlertDefinition]] = _catalogue(
    # --- NFR-403's table
    AlertDefinition("kill_switch_triggered", "critical", "Kill switch activated"),
    AlertDefinition("daily_loss_warning", "warning", "Loss > 50% of daily limit"),
    AlertDefinition("daily_loss_critical", "critical", "Loss > 80% of daily limit"),
    AlertDefinition("high_inventory", "warning", "Inventory > 80% of max"),
    AlertDefinition("websocket_disconnect", "warning", "Connection lost"),
    AlertDefinition("reconnect_failed", "critical", "5+ reconnect failures"),
    AlertDefinition("high_latency", "warning", "Order latency > threshold"),
    AlertDefinition("clock_drift", "warning", "NTP drift > 100ms"),
    AlertDefinition("reconciliation_mismatch", "critical", "Position mismatch with exchange"),
    AlertDefinition("stale_market_data", "warning", "No updates for > 5 seconds"),
    # --- raised by the node's own machinery (names used by mm.state.write_behind and the runtime)
    AlertDefinition("db_queue_full", "critical", "Write-behind queue over capacity", "node"),
    AlertDefinition("db_unavailable", "critical", "Database writes failing (records queued)", "node"),
    AlertDefinition("db_record_rejected", "critical", "A record can never be written (dead-lettered)", "node"),
    AlertDefinition("db_recovered", "info", "Database writes succeed again", "node"),
    AlertDefinition("recording_stopped", "warning", "Session recording stopped (storage limit or error)", "node"),
    AlertDefinition("recovery_discrepancy", "critical", "Crash recovery found positions differing", "node"),
    AlertDefinition("exchange_outage", "critical", "The exchange is unreachable", "node"),
    AlertDefinition("test_alert", "info", "Raised on request (POST /alerts/test, mmctl alerts test)", "node"),
)
"""Every built-in alert by name. The node raises these by name; severity defaults to the one here."""


# --- data values ----------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str | Decimal):
        return value
    if isinstance(value, float):
        # Exact from the shortest repr (0.1 -> Decimal("0.1")); canonical JSON refuses floats.
        return Decimal(repr(value)) if math.isfinite(value) else repr(value)
    if isinstance(value, enum.Enum):
        return _plain(value.value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    return str(value)


def plain_data(data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` as JSON-able values, redacted: floats become exact ``Decimal`` (from their shortest repr;
    NaN/inf become text), enums their value, datetimes ISO text, containers lists/dicts, anything else its
    ``str()``. Values under sensitive keys (``token``, ``password``, ...) are replaced by ``***REDACTED***``."""
    cleaned: dict[str, Any] = redact(_plain(dict(data)))
    return cleaned


def wire_value(value: Any) -> Any:
    """A plain value for a JSON payload: ``Decimal`` becomes its exact text (``"0.015"``), recursively."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Mapping):
        return {k: wire_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [wire_value(v) for v in value]
    return value


# --- the alert ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Alert:
    """An alert as delivered.

    ``timestamp_us``: when it was raised, µs since the Unix epoch (UTC). ``suppressed``: how many alerts of
    the same name the throttle held back since the previous one of that name went out (reported with this
    one so the count is never lost).
    """

    name: str
    severity: Severity
    message: str
    timestamp_us: int
    data: Mapping[str, Any] = field(default_factory=dict)
    market: str | None = None
    suppressed: int = 0

    @property
    def timestamp(self) -> str:
        """RFC 3339 UTC with microseconds (``2026-01-17T14:30:00.123456Z``)."""
        return format_rfc3339_us(self.timestamp_us)

    @property
    def title(self) -> str:
        """One line: ``[CRITICAL] kill_switch_triggered: message`` (market appended when set)."""
        where = f" ({self.market})" if self.market else ""
        return f"[{self.severity.upper()}] {self.name}{where}: {self.message}"

    def to_json(self) -> dict[str, Any]:
        """Every field, JSON-ready (Decimals as exact strings). The generic webhook posts exactly this."""
        return {
            "name": self.name,
            "severity": self.severity,
            "message": self.message,
            "timestamp": self.timestamp,
            "timestamp_us": self.timestamp_us,
            "market": self.market,
            "data": wire_value(dict(self.data)),
            "suppressed": self.suppressed,
        }


OutcomeStatus = Literal["pending", "delivered", "failed"]


@dataclass(slots=True)
class ChannelOutcome:
    """One channel's delivery of one alert. ``attempts``: tries made; ``delivered_us``: when the receiver
    accepted it (µs since the epoch); ``error``: why the last try failed (secrets removed)."""

    channel: str
    status: OutcomeStatus = "pending"
    attempts: int = 0
    error: str | None = None
    delivered_us: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "status": self.status,
            "attempts": self.attempts,
            "error": self.error,
            "delivered_us": self.delivered_us,
        }


EntryStatus = Literal["throttled", "pending", "delivered", "partial", "failed", "unrouted"]


@dataclass(slots=True)
class AlertEntry:
    """A raised alert in the history: ``id`` is its sequence number in this process (1, 2, ...)."""

    id: int
    alert: Alert
    throttled: bool = False
    outcomes: dict[str, ChannelOutcome] = field(default_factory=dict)

    @property
    def status(self) -> EntryStatus:
        """``throttled``; ``unrouted`` (no enabled channel takes its severity); ``pending`` while a channel is
        still trying; then ``delivered`` (every channel), ``partial`` (some) or ``failed`` (none)."""
        if self.throttled:
            return "throttled"
        if not self.outcomes:
            return "unrouted"
        states = [o.status for o in self.outcomes.values()]
        if "pending" in states:
            return "pending"
        delivered = states.count("delivered")
        if delivered == len(states):
            return "delivered"
        return "partial" if delivered else "failed"

    @property
    def done(self) -> bool:
        return self.status != "pending"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            **self.alert.to_json(),
            "status": self.status,
            "throttled": self.throttled,
            "channels": {name: o.to_json() for name, o in self.outcomes.items()},
        }

    def to_record(self) -> AlertRecord:
        """The persisted row: ``data`` holds the alert's own data under ``data`` plus ``market``,
        ``throttled``, ``suppressed`` and ``delivery`` (per channel: status, attempts, error)."""
        a = self.alert
        delivery = {
            name: {"status": o.status, "attempts": o.attempts, "error": o.error} for name, o in self.outcomes.items()
        }
        data = {
            "data": dict(a.data),
            "market": a.market,
            "throttled": self.throttled,
            "suppressed": a.suppressed,
            "delivery": delivery,
        }
        return AlertRecord(a.timestamp_us, a.severity, a.name, a.message, data)
