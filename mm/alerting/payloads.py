"""What each alert channel sends, built from an :class:`~mm.alerting.alerts.Alert`. Pure: no IO.

* Slack incoming webhook: ``text`` (the one-line fallback shown in notifications) plus Block Kit ``blocks``
  (header, message, up to 10 data fields, a context line with time, market, source and suppressed count);
  ``channel`` when the spec names one (honoured by legacy webhooks, ignored by app webhooks).
* PagerDuty Events API v2: a ``trigger`` event with ``routing_key``, a ``dedup_key`` of source, alert name and
  market (repeats of one alert update one incident instead of paging again), and ``payload`` with ``summary``
  (≤ 1024 chars), ``source``, ``severity`` (info/warning/critical map to PagerDuty's same-named levels;
  PagerDuty's ``error`` is not used), ``timestamp``, ``component`` (market or ``node``), ``group``, ``class``
  (alert name) and ``custom_details`` (message, market, suppressed, data).
* Generic webhook: :meth:`Alert.to_json` plus ``source``.
* Email: a plain-text message with the title as subject and ``X-MM-Alert`` / ``X-MM-Severity`` headers.

Decimals in data are sent as exact strings (``"0.015"``).
"""

from __future__ import annotations

import email.utils
from collections.abc import Sequence
from email.message import EmailMessage
from typing import Any, Final

from mm.alerting.alerts import Alert, Severity, wire_value
from mm.clock import us_to_datetime

__all__ = [
    "PAGERDUTY_SEVERITY",
    "email_message",
    "pagerduty_dedup_key",
    "pagerduty_event",
    "slack_payload",
    "webhook_payload",
]

PAGERDUTY_SEVERITY: Final[dict[Severity, str]] = {"info": "info", "warning": "warning", "critical": "critical"}
"""Our severity → PagerDuty Events v2 ``payload.severity`` (which also has ``error``, unused here)."""

_SLACK_EMOJI: Final[dict[Severity, str]] = {
    "info": ":information_source:",
    "warning": ":warning:",
    "critical": ":rotating_light:",
}
_SLACK_MAX_FIELDS: Final = 10  # Block Kit's limit per section
_SLACK_MAX_TEXT: Final = 3000  # Block Kit's limit per text object
_PD_MAX_SUMMARY: Final = 1024
_PD_MAX_DEDUP: Final = 255
_SUBJECT_MAX: Final = 200


def _slack_escape(text: str) -> str:
    # Slack's mrkdwn control characters; everything else is sent as is.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _flat(value: Any) -> str:
    plain = wire_value(value)
    if isinstance(plain, dict):
        return ", ".join(f"{k}={_flat(v)}" for k, v in plain.items())
    if isinstance(plain, list):
        return ", ".join(_flat(v) for v in plain)
    return "" if plain is None else str(plain)


def _context(alert: Alert, source: str) -> list[str]:
    parts = [alert.timestamp, f"source {source}"]
    if alert.market:
        parts.append(f"market {alert.market}")
    if alert.suppressed:
        parts.append(f"{alert.suppressed} similar alert(s) suppressed since the last one")
    return parts


def slack_payload(alert: Alert, *, source: str = "mmctl", channel: str | None = None) -> dict[str, Any]:
    """The JSON body for a Slack incoming webhook."""
    text = f"{_SLACK_EMOJI[alert.severity]} {alert.title}"
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": f"{alert.severity.upper()}: {alert.name}"[:150]},
        },
        {"type": "section", "text": {"type": "mrkdwn", "text": _slack_escape(alert.message)[:_SLACK_MAX_TEXT] or " "}},
    ]
    fields = [
        {"type": "mrkdwn", "text": _slack_escape(f"*{key}*\n{_flat(value)}")[:2000]}
        for key, value in list(alert.data.items())[:_SLACK_MAX_FIELDS]
    ]
    if fields:
        blocks.append({"type": "section", "fields": fields})
    blocks.append(
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": _slack_escape(" · ".join(_context(alert, source)))}],
        }
    )
    body: dict[str, Any] = {"text": _slack_escape(text), "blocks": blocks}
    if channel:
        body["channel"] = channel
    return body


def pagerduty_dedup_key(alert: Alert, source: str) -> str:
    """``source/name[/market]`` (≤ 255 chars): one PagerDuty incident per alert name and market."""
    key = f"{source}/{alert.name}" + (f"/{alert.market}" if alert.market else "")
    return key[:_PD_MAX_DEDUP]


def pagerduty_event(alert: Alert, *, routing_key: str, source: str = "mmctl") -> dict[str, Any]:
    """The Events API v2 ``trigger`` event (POST to ``/v2/enqueue``)."""
    details: dict[str, Any] = {"message": alert.message, "market": alert.market, "suppressed": alert.suppressed}
    details.update(wire_value(dict(alert.data)))
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": pagerduty_dedup_key(alert, source),
        "client": "mmctl",
        "payload": {
            "summary": alert.title[:_PD_MAX_SUMMARY],
            "source": source,
            "severity": PAGERDUTY_SEVERITY[alert.severity],
            "timestamp": alert.timestamp,
            "component": alert.market or "node",
            "group": "mmctl",
            "class": alert.name,
            "custom_details": details,
        },
    }


def webhook_payload(alert: Alert, *, source: str = "mmctl") -> dict[str, Any]:
    """The generic webhook body: every field of the alert, and the node it came from."""
    return {**alert.to_json(), "source": source}


def email_message(alert: Alert, *, sender: str, recipients: Sequence[str], source: str = "mmctl") -> EmailMessage:
    """A plain-text email for ``alert`` (subject: its one-line title, without line breaks)."""
    message = EmailMessage()
    subject = " ".join(f"[mmctl {alert.severity.upper()}] {alert.name}: {alert.message}".split())
    message["Subject"] = subject[:_SUBJECT_MAX]
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = email.utils.format_datetime(us_to_datetime(alert.timestamp_us))
    # An explicit domain: make_msgid() would otherwise look up this host's FQDN (a DNS query per mail).
    message["Message-ID"] = email.utils.make_msgid("mmctl-alert", domain="mmctl.invalid")
    message["X-MM-Alert"] = alert.name
    message["X-MM-Severity"] = alert.severity
    lines = [
        f"{alert.name} ({alert.severity})",
        "",
        alert.message,
        "",
        f"Time: {alert.timestamp}",
        f"Source: {source}",
    ]
    if alert.market:
        lines.append(f"Market: {alert.market}")
    if alert.suppressed:
        lines.append(f"Suppressed since the last one: {alert.suppressed}")
    if alert.data:
        lines += ["", "Data:"]
        lines += [f"  {key}: {_flat(value)}" for key, value in alert.data.items()]
    message.set_content("\n".join(lines) + "\n")
    return message
