"""Alert channels: log, Slack, PagerDuty, email (SMTP), generic webhook. The IO side of alerting.

A channel sends one alert once (:meth:`Channel.send`); retrying is the manager's job. ``send`` raises
:class:`DeliveryError` with ``transient`` set when trying again may help (connection refused or reset, a
timeout, HTTP 408/425/429/5xx, an SMTP 4xx reply) and unset when it cannot (HTTP 4xx, SMTP 5xx or refused
authentication, a secret's environment variable not set).

Secrets — the Slack webhook URL, the PagerDuty routing key, the SMTP username and password, a webhook
``url_env`` — are read from the environment variables the spec names, once, when the channel is built. They
are never logged and never put in an error: every error text passes through :meth:`Channel.scrub`, which
replaces each of the channel's secret values and then applies
:func:`~mm.observability.redaction.redact_text`; and because httpx logs each request's URL, a filter on the
``httpx``/``httpcore`` loggers replaces the registered HTTP secrets in their records.

HTTP delivery uses ``httpx`` (async); SMTP uses :mod:`smtplib` in a worker thread (``use_tls``: implicit TLS
on port 465, STARTTLS otherwise; a server that does not offer STARTTLS is refused rather than sent
credentials in the clear).
"""

from __future__ import annotations

import asyncio
import json
import logging
import smtplib
import ssl
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar, Final
from urllib.parse import parse_qsl, urlsplit

import httpx

from mm.alerting.alerts import Alert, Severity
from mm.alerting.payloads import email_message, pagerduty_event, slack_payload, webhook_payload
from mm.observability.logging import get_logger
from mm.observability.redaction import REDACTED, redact_text

__all__ = [
    "PAGERDUTY_EVENTS_URL",
    "Channel",
    "DeliveryError",
    "EmailChannel",
    "LogChannel",
    "PagerDutyChannel",
    "SlackChannel",
    "WebhookChannel",
]

PAGERDUTY_EVENTS_URL: Final = "https://events.pagerduty.com/v2/enqueue"
"""PagerDuty's Events API v2 endpoint (override for tests or a proxy: ``build_channels(pagerduty_url=...)``)."""

_TRANSIENT_HTTP: Final = frozenset({408, 425, 429})
_MAX_ERROR_BODY: Final = 200  # characters of a refusing receiver's answer kept in the error
_MIN_TOKEN: Final = 16  # a URL path segment, query value or SMTP username this long may be a credential

_alert_log = get_logger("mm.alerts")


class _SecretScrubber(logging.Filter):
    """Removes registered secret values from the records of the HTTP client's own loggers: httpx logs every
    request's full URL at INFO, and a Slack webhook URL *is* the credential. Only records containing a
    registered value are rewritten; levels and everything else are left alone."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            text = record.getMessage()
            found = sorted((s for s in self.secrets if s in text), key=len, reverse=True)
            if found:
                for secret in found:
                    text = text.replace(secret, REDACTED)
                record.msg, record.args = text, None
        return True


_SCRUBBER: Final = _SecretScrubber()
for _name in ("httpx", "httpcore"):
    logging.getLogger(_name).addFilter(_SCRUBBER)


class DeliveryError(Exception):
    """One delivery attempt failed. ``reason`` carries no secret; ``retry_after_s``: the receiver's hint."""

    def __init__(self, reason: str, *, transient: bool, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.transient = transient
        self.retry_after_s = retry_after_s


class Channel(ABC):
    """One destination. ``severities``: the alert severities it takes; ``problem``: a configuration problem
    (a secret's variable not set) that makes every send fail without trying."""

    kind: ClassVar[str]

    def __init__(
        self, severities: Iterable[Severity], *, secrets: Iterable[str] = (), problem: str | None = None
    ) -> None:
        self.severities: frozenset[Severity] = frozenset(severities)
        self._secrets = tuple(s for s in secrets if s)
        self.problem = problem

    @property
    def name(self) -> str:
        return self.kind

    def accepts(self, severity: Severity) -> bool:
        return severity in self.severities

    def scrub(self, text: str) -> str:
        """``text`` with this channel's secret values and anything credential-like replaced by a marker."""
        for secret in sorted(self._secrets, key=len, reverse=True):  # a whole URL before its parts
            text = text.replace(secret, REDACTED)
        return redact_text(text)

    async def send(self, alert: Alert, *, timeout_s: float) -> None:
        """Deliver ``alert`` once, within ``timeout_s`` seconds; raises :class:`DeliveryError`."""
        if self.problem is not None:
            raise DeliveryError(self.problem, transient=False)
        await self._send(alert, timeout_s)

    @abstractmethod
    async def _send(self, alert: Alert, timeout_s: float) -> None: ...

    async def aclose(self) -> None:  # noqa: B027 -- most channels hold nothing to release
        """Release connections (idempotent)."""

    def describe(self) -> dict[str, Any]:
        """Non-secret facts for status output."""
        return {"channel": self.name, "severities": sorted(self.severities), "problem": self.problem}


class LogChannel(Channel):
    """Writes the alert as one structured log line on ``mm.alerts`` (level by severity). Never fails."""

    kind = "log"

    async def _send(self, alert: Alert, timeout_s: float) -> None:
        method = {"info": _alert_log.info, "warning": _alert_log.warning, "critical": _alert_log.critical}
        method[alert.severity](
            "alert",
            alert=alert.name,
            severity=alert.severity,
            message=alert.message,
            market=alert.market,
            suppressed=alert.suppressed,
            data=dict(alert.data),
            alert_time=alert.timestamp,
        )


class _HttpChannel(Channel):
    """POSTs a JSON body to ``url``; 2xx is delivered. ``url_is_secret``: the URL carries a credential (Slack,
    webhooks — treated so by default); PagerDuty's public endpoint is not, its routing key is."""

    def __init__(
        self,
        url: str,
        severities: Iterable[Severity],
        *,
        source: str = "mmctl",
        secrets: Iterable[str] = (),
        url_is_secret: bool = True,
        problem: str | None = None,
    ) -> None:
        super().__init__(severities, secrets=(*_url_secrets(url), *secrets) if url_is_secret else secrets,
                         problem=problem)  # fmt: skip
        _SCRUBBER.secrets.update(self._secrets)
        self.url = url
        self.source = source
        self._client: httpx.AsyncClient | None = None

    @abstractmethod
    def body(self, alert: Alert) -> dict[str, Any]:
        """The JSON payload for ``alert``."""

    async def _send(self, alert: Alert, timeout_s: float) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(follow_redirects=False)
        content = json.dumps(self.body(alert), ensure_ascii=False).encode()
        try:
            response = await self._client.post(
                self.url, content=content, headers={"Content-Type": "application/json"}, timeout=timeout_s
            )
        except httpx.TimeoutException as exc:
            raise DeliveryError(f"timed out ({type(exc).__name__})", transient=True) from None
        except httpx.HTTPError as exc:  # connection refused/reset, protocol errors: the receiver may come back
            raise DeliveryError(self.scrub(f"{type(exc).__name__}: {exc}"), transient=True) from None
        if 200 <= response.status_code < 300:
            return
        status = response.status_code
        # Scrub before cutting: a secret straddling the cut would otherwise leave its first part visible.
        answer = self.scrub(" ".join(response.text[: _MAX_ERROR_BODY * 20].split()))[:_MAX_ERROR_BODY]
        reason = f"HTTP {status}" + (f": {answer}" if answer else "")
        transient = status in _TRANSIENT_HTTP or status >= 500
        raise DeliveryError(reason, transient=transient, retry_after_s=_retry_after(response))

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _url_secrets(url: str) -> tuple[str, ...]:
    """A secret URL and the parts of it a receiver might echo on their own: its path (with the query), every
    path segment or query value long enough to be a token (≥ 16 characters), and a password in it."""
    parts = urlsplit(url)
    found = [url]
    if len(parts.path) > 1:
        found.append(parts.path + (f"?{parts.query}" if parts.query else ""))
    found += [segment for segment in parts.path.split("/") if len(segment) >= _MIN_TOKEN]
    found += [value for _key, value in parse_qsl(parts.query) if len(value) >= _MIN_TOKEN]
    if parts.password:
        found.append(parts.password)
    return tuple(found)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    return float(value) if value.isdigit() else None


class SlackChannel(_HttpChannel):
    """Slack incoming webhook (the URL is the secret). ``channel``: optional ``#channel`` override."""

    kind = "slack"

    def __init__(self, url: str, severities: Iterable[Severity], *, source: str = "mmctl", channel: str | None = None,
                 problem: str | None = None) -> None:  # fmt: skip
        super().__init__(url, severities, source=source, problem=problem)
        self.channel = channel

    def body(self, alert: Alert) -> dict[str, Any]:
        return slack_payload(alert, source=self.source, channel=self.channel)


class PagerDutyChannel(_HttpChannel):
    """PagerDuty Events API v2 (``routing_key`` is the secret); ``url`` defaults to PagerDuty's endpoint."""

    kind = "pagerduty"

    def __init__(self, routing_key: str, severities: Iterable[Severity], *, source: str = "mmctl",
                 url: str = PAGERDUTY_EVENTS_URL, problem: str | None = None) -> None:  # fmt: skip
        super().__init__(url, severities, source=source, secrets=(routing_key,), url_is_secret=False, problem=problem)
        self._routing_key = routing_key

    def body(self, alert: Alert) -> dict[str, Any]:
        return pagerduty_event(alert, routing_key=self._routing_key, source=self.source)


class WebhookChannel(_HttpChannel):
    """Generic webhook: the alert's every field as JSON (:func:`~mm.alerting.payloads.webhook_payload`)."""

    kind = "webhook"

    def body(self, alert: Alert) -> dict[str, Any]:
        return webhook_payload(alert, source=self.source)


class EmailChannel(Channel):
    """Email through an SMTP server (``smtplib`` in a worker thread). Credentials optional (both or neither)."""

    kind = "email"

    def __init__(
        self,
        host: str,
        port: int,
        *,
        sender: str,
        recipients: Sequence[str],
        severities: Iterable[Severity],
        use_tls: bool = True,
        username: str | None = None,
        password: str | None = None,
        source: str = "mmctl",
        problem: str | None = None,
    ) -> None:
        # An SMTP username is scrubbed only when it looks like a key (SES access key ids, API-key logins).
        login = username if username is not None and len(username) >= _MIN_TOKEN else ""
        super().__init__(severities, secrets=(password or "", login), problem=problem)
        self.host, self.port, self.use_tls = host, port, use_tls
        self.sender, self.recipients = sender, list(recipients)
        self._username, self._password = username, password
        self.source = source

    async def _send(self, alert: Alert, timeout_s: float) -> None:
        message = email_message(alert, sender=self.sender, recipients=self.recipients, source=self.source)
        try:
            await asyncio.to_thread(self._send_sync, message, timeout_s)
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(f"SMTP authentication refused ({exc.smtp_code})", transient=False) from None
        except smtplib.SMTPNotSupportedError:
            raise DeliveryError("the SMTP server does not offer STARTTLS (use_tls is true)", transient=False) from None
        except smtplib.SMTPRecipientsRefused as exc:
            refused = ", ".join(f"{r} ({code})" for r, (code, _) in exc.recipients.items())
            raise DeliveryError(self.scrub(f"recipients refused: {refused}"), transient=False) from None
        except smtplib.SMTPResponseException as exc:
            reply = (
                exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
            )
            reason = self.scrub(f"SMTP {exc.smtp_code}: {' '.join(reply.split())}")[: _MAX_ERROR_BODY + 10]
            raise DeliveryError(reason, transient=400 <= exc.smtp_code < 500) from None
        except (smtplib.SMTPException, OSError) as exc:  # disconnects, refused connections, timeouts, TLS errors
            raise DeliveryError(self.scrub(f"{type(exc).__name__}: {exc}"), transient=True) from None

    def _send_sync(self, message: Any, timeout_s: float) -> None:
        implicit_tls = self.use_tls and self.port == 465
        smtp: smtplib.SMTP
        if implicit_tls:
            smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=timeout_s, context=ssl.create_default_context())
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=timeout_s)
        with smtp:
            smtp.ehlo()
            if self.use_tls and not implicit_tls:
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if self._username is not None and self._password is not None:
                smtp.login(self._username, self._password)
            smtp.send_message(message)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "smtp_host": self.host, "smtp_port": self.port, "recipients": self.recipients}


def environment_value(environ: Mapping[str, str], variable: str | None, what: str) -> tuple[str, str | None]:
    """``(value, problem)``: the variable's value, or ``""`` and a message naming the variable (not a value)."""
    if variable is None:
        return "", f"{what}: no environment variable configured"
    value = environ.get(variable, "")
    return (value, None) if value else ("", f"{what}: environment variable {variable} is not set")
