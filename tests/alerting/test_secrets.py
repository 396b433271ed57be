"""Secrets — the Slack webhook URL, the PagerDuty routing key, a webhook URL from url_env, SMTP credentials —
never appear in logs (ours or the HTTP client's, at DEBUG), in delivery errors, in records or in the history,
even when a hostile receiver echoes them back in its error answer."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
import structlog

from mm.alerting import AlertManager
from mm.clock import WallClock
from mm.observability.logging import configure_logging, reset_logging
from mm.specs.node import Alerting
from mm.state.records import AlertRecord
from tests.alerting.receivers import HttpReceiver, SmtpReceiver

SLACK_SECRET = "SLACKSECRET111xyz"
PD_KEY = "PDROUTINGKEY222xyz"
HOOK_SECRET = "WEBHOOKSECRET333xyz"
SMTP_PASSWORD = "SMTPPASS444xyz"
SECRETS = (SLACK_SECRET, PD_KEY, HOOK_SECRET, SMTP_PASSWORD)


@pytest.fixture
def log_text() -> Iterator[io.StringIO]:
    out = io.StringIO()
    configure_logging("DEBUG", json=True, stream=out)
    try:
        yield out
    finally:
        structlog.contextvars.clear_contextvars()
        reset_logging()


async def test_no_secret_reaches_logs_errors_records_or_history(log_text: io.StringIO) -> None:
    records: list[AlertRecord] = []
    async with (
        HttpReceiver(refuse_with=400) as hostile,
        HttpReceiver() as friendly,
        SmtpReceiver(credentials=("alerts", "the-right-one")) as smtp,
    ):
        env = {
            "SLACK_URL": f"{hostile.base}/services/T0/B0/{SLACK_SECRET}",
            "PD_KEY": PD_KEY,
            "HOOK_URL": f"{friendly.base}/hooks/{HOOK_SECRET}",
            "SMTP_USER": "alerts",
            "SMTP_PASSWORD": SMTP_PASSWORD,
        }
        spec = Alerting.model_validate(
            {
                "channels": {
                    "slack": {"enabled": True, "webhook_url_env": "SLACK_URL", "severities": ["critical"]},
                    "pagerduty": {"enabled": True, "routing_key_env": "PD_KEY"},
                    "email": {
                        "enabled": True,
                        "smtp_host": "127.0.0.1",
                        "smtp_port": smtp.port,
                        "use_tls": False,
                        "username_env": "SMTP_USER",
                        "password_env": "SMTP_PASSWORD",
                        "recipients": ["ops@example.com"],
                    },
                    "webhook": {"enabled": True, "url_env": "HOOK_URL", "severities": ["critical"]},
                }
            }
        )
        alerts = AlertManager.from_spec(
            spec, clock=WallClock(), environ=env, record=records.append,
            pagerduty_url=f"{hostile.base}/v2/enqueue", retry_base_s=0.01,
        )  # fmt: skip
        alerts.start()
        entry = alerts.raise_alert("kill_switch_triggered", message="halted", password=SMTP_PASSWORD)
        assert await alerts.flush(timeout=10)
        await alerts.aclose()

    # The deliveries really happened, and failed where they should: the test is not vacuous.
    assert hostile.attempts == 2 and set(smtp.auth_attempts) == {"alerts"}  # smtplib tries PLAIN, then LOGIN
    assert [r.path for r in friendly.received] == [f"/hooks/{HOOK_SECRET}"]
    statuses = {name: o.status for name, o in entry.outcomes.items()}
    assert statuses == {"log": "delivered", "slack": "failed", "pagerduty": "failed", "email": "failed",
                        "webhook": "delivered"}  # fmt: skip
    errors = {name: o.error or "" for name, o in entry.outcomes.items()}
    assert errors["slack"].startswith("HTTP 400") and "***REDACTED***" in errors["slack"]
    assert errors["pagerduty"].startswith("HTTP 400") and "***REDACTED***" in errors["pagerduty"]
    assert errors["email"] == "SMTP authentication refused (535)"
    logged = log_text.getvalue()
    assert "HTTP Request: POST" in logged  # httpx's own request lines were captured, scrubbed
    assert "alert delivery failed" in logged

    surfaces = {
        "logs": logged,
        "errors": json.dumps(errors),
        "records": repr(records) + "".join(str(w) for r in records for w in r.writes()),
        "history": json.dumps([e.to_json() for e in alerts.history()], default=str),
        "stats": json.dumps(alerts.stats(), default=str),
    }
    for where, text in surfaces.items():
        for secret in SECRETS:
            assert secret not in text, f"{secret} leaked into {where}"
