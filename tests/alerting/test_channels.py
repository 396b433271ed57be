"""Each channel delivers to a real receiver on loopback, and the receiver gets exactly the documented payload:
Slack incoming-webhook JSON, a PagerDuty Events API v2 trigger event, the generic webhook JSON, and an email
(headers and body) through SMTP — with and without authentication."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import pytest

from mm.alerting import PAGERDUTY_EVENTS_URL, Alert, DeliveryError, build_channels
from mm.alerting.channels import EmailChannel, PagerDutyChannel, SlackChannel, WebhookChannel
from mm.specs.node import AlertChannels
from tests.alerting.receivers import HttpReceiver, SmtpReceiver, closed_port

T_US = 1_768_660_200_123_456  # 2026-01-17T14:30:00.123456Z
STAMP = "2026-01-17T14:30:00.123456Z"

ALERT = Alert(
    name="kill_switch_triggered",
    severity="critical",
    message="daily loss limit hit",
    timestamp_us=T_US,
    data={"loss": Decimal("150.25"), "limit": Decimal(200), "reason": "loss"},
    market="KXBTCD-26JAN1714-T100000",
    suppressed=2,
)


def channels(spec: Mapping[str, Any], env: dict[str, str], pagerduty_url: str = PAGERDUTY_EVENTS_URL) -> dict[str, Any]:
    spec_model = AlertChannels.model_validate(spec)
    built = build_channels(spec_model, environ=env, source="node-a", pagerduty_url=pagerduty_url)
    return {c.name: c for c in built}


async def test_slack_receives_text_and_blocks() -> None:
    async with HttpReceiver() as rx:
        url = f"{rx.base}/services/T0/B0/slacksecret"
        spec = {"log": {"enabled": False}, "slack": {"enabled": True, "webhook_url_env": "SLACK_URL",
                                                      "channel": "#trading-alerts"}}  # fmt: skip
        slack = channels(spec, {"SLACK_URL": url})["slack"]
        assert isinstance(slack, SlackChannel)
        await slack.send(ALERT, timeout_s=5)
        await slack.aclose()
    [got] = rx.received
    assert got.path == "/services/T0/B0/slacksecret"
    assert got.headers["content-type"] == "application/json"
    assert got.body == {
        "text": ":rotating_light: [CRITICAL] kill_switch_triggered (KXBTCD-26JAN1714-T100000): daily loss limit hit",
        "channel": "#trading-alerts",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "CRITICAL: kill_switch_triggered"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "daily loss limit hit"}},
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": "*loss*\n150.25"},
                    {"type": "mrkdwn", "text": "*limit*\n200"},
                    {"type": "mrkdwn", "text": "*reason*\nloss"},
                ],
            },
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": f"{STAMP} · source node-a · market KXBTCD-26JAN1714-T100000 · "
                        "2 similar alert(s) suppressed since the last one",
                    }
                ],
            },
        ],
    }


async def test_slack_escapes_its_control_characters() -> None:
    async with HttpReceiver() as rx:
        slack = SlackChannel(f"{rx.base}/hook", ["warning"])
        alert = Alert("high_latency", "warning", "p99 <1s> & rising", T_US)
        await slack.send(alert, timeout_s=5)
        await slack.aclose()
    body = rx.received[0].body
    assert body["blocks"][1]["text"]["text"] == "p99 &lt;1s&gt; &amp; rising"
    assert "channel" not in body


async def test_pagerduty_receives_an_events_v2_trigger() -> None:
    async with HttpReceiver() as rx:
        spec = {"pagerduty": {"enabled": True, "routing_key_env": "PD_KEY"}}
        pd = channels(spec, {"PD_KEY": "R0UT1NGKEY"}, pagerduty_url=f"{rx.base}/v2/enqueue")["pagerduty"]
        assert isinstance(pd, PagerDutyChannel)
        await pd.send(ALERT, timeout_s=5)
        await pd.aclose()
    [got] = rx.received
    assert got.path == "/v2/enqueue"
    assert got.body == {
        "routing_key": "R0UT1NGKEY",
        "event_action": "trigger",
        "dedup_key": "node-a/kill_switch_triggered/KXBTCD-26JAN1714-T100000",
        "client": "mmctl",
        "payload": {
            "summary": "[CRITICAL] kill_switch_triggered (KXBTCD-26JAN1714-T100000): daily loss limit hit",
            "source": "node-a",
            "severity": "critical",
            "timestamp": STAMP,
            "component": "KXBTCD-26JAN1714-T100000",
            "group": "mmctl",
            "class": "kill_switch_triggered",
            "custom_details": {
                "message": "daily loss limit hit",
                "market": "KXBTCD-26JAN1714-T100000",
                "suppressed": 2,
                "loss": "150.25",
                "limit": "200",
                "reason": "loss",
            },
        },
    }


@pytest.mark.parametrize(("severity", "expected"), [("info", "info"), ("warning", "warning")])
async def test_pagerduty_severity_mapping_and_node_component(severity: str, expected: str) -> None:
    async with HttpReceiver() as rx:
        pd = PagerDutyChannel("k", ["info", "warning"], source="n", url=f"{rx.base}/v2/enqueue")
        await pd.send(Alert("clock_drift", severity, "drift 150 ms", T_US), timeout_s=5)  # type: ignore[arg-type]
        await pd.aclose()
    payload = rx.received[0].body["payload"]
    assert payload["severity"] == expected
    assert payload["component"] == "node"
    assert rx.received[0].body["dedup_key"] == "n/clock_drift"


async def test_webhook_receives_every_field() -> None:
    async with HttpReceiver() as rx:
        spec = {"webhook": {"enabled": True, "url": f"{rx.base}/alerts"}}
        hook = channels(spec, {})["webhook"]
        assert isinstance(hook, WebhookChannel)
        await hook.send(ALERT, timeout_s=5)
        await hook.aclose()
    assert rx.received[0].body == {
        "name": "kill_switch_triggered",
        "severity": "critical",
        "message": "daily loss limit hit",
        "timestamp": STAMP,
        "timestamp_us": T_US,
        "market": "KXBTCD-26JAN1714-T100000",
        "data": {"loss": "150.25", "limit": "200", "reason": "loss"},
        "suppressed": 2,
        "source": "node-a",
    }


async def test_email_headers_and_body_through_smtp() -> None:
    async with SmtpReceiver() as rx:
        spec = {"email": {"enabled": True, "smtp_host": "127.0.0.1", "smtp_port": rx.port, "use_tls": False,
                          "sender": "mm@example.com", "recipients": ["a@example.com", "b@example.com"]}}  # fmt: skip
        mail = channels(spec, {})["email"]
        assert isinstance(mail, EmailChannel)
        await mail.send(ALERT, timeout_s=5)
    [got] = rx.received
    assert got.mail_from == "mm@example.com"
    assert got.rcpt_tos == ["a@example.com", "b@example.com"]
    m = got.message
    assert m["Subject"] == "[mmctl CRITICAL] kill_switch_triggered: daily loss limit hit"
    assert m["From"] == "mm@example.com"
    assert m["To"] == "a@example.com, b@example.com"
    assert m["X-MM-Alert"] == "kill_switch_triggered"
    assert m["X-MM-Severity"] == "critical"
    assert m["Date"] == "Sat, 17 Jan 2026 14:30:00 +0000"
    assert m["Message-ID"].endswith("@mmctl.invalid>")
    payload = m.get_payload(decode=True)
    assert isinstance(payload, bytes)
    body = payload.decode().replace("\r\n", "\n")  # SMTP carries CRLF line ends
    assert body == (
        "kill_switch_triggered (critical)\n\ndaily loss limit hit\n\n"
        f"Time: {STAMP}\nSource: node-a\nMarket: KXBTCD-26JAN1714-T100000\n"
        "Suppressed since the last one: 2\n\nData:\n  loss: 150.25\n  limit: 200\n  reason: loss\n"
    )


async def test_email_logs_in_with_credentials_from_the_environment() -> None:
    env = {"SMTP_USER": "alerts", "SMTP_PASSWORD": "hunter2-smtp"}
    async with SmtpReceiver(credentials=("alerts", "hunter2-smtp")) as rx:
        spec = {"email": {"enabled": True, "smtp_host": "127.0.0.1", "smtp_port": rx.port, "use_tls": False,
                          "username_env": "SMTP_USER", "password_env": "SMTP_PASSWORD",
                          "recipients": ["ops@example.com"]}}  # fmt: skip
        mail = channels(spec, env)["email"]
        await mail.send(ALERT, timeout_s=5)
    assert rx.auth_attempts == ["alerts"]
    assert len(rx.received) == 1


async def test_email_with_a_wrong_password_is_a_permanent_failure_without_the_password() -> None:
    env = {"SMTP_USER": "alerts", "SMTP_PASSWORD": "wrong-pass-xyz"}
    async with SmtpReceiver(credentials=("alerts", "right")) as rx:
        mail = EmailChannel("127.0.0.1", rx.port, sender="mm@x", recipients=["o@x"], severities=["critical"],
                            use_tls=False, username=env["SMTP_USER"], password=env["SMTP_PASSWORD"])  # fmt: skip
        with pytest.raises(DeliveryError) as caught:
            await mail.send(ALERT, timeout_s=5)
    assert not caught.value.transient
    assert caught.value.reason == "SMTP authentication refused (535)"
    assert rx.received == []


async def test_email_with_tls_refuses_a_server_without_starttls() -> None:
    async with SmtpReceiver() as rx:  # aiosmtpd without a TLS context offers no STARTTLS
        mail = EmailChannel("127.0.0.1", rx.port, sender="mm@x", recipients=["o@x"], severities=["critical"],
                            use_tls=True, username="u", password="p")  # fmt: skip
        with pytest.raises(DeliveryError) as caught:
            await mail.send(ALERT, timeout_s=5)
    assert not caught.value.transient
    assert "STARTTLS" in caught.value.reason
    assert rx.received == []


async def test_failures_are_classified_transient_or_permanent() -> None:
    async with HttpReceiver(failures=1, fail_status=503) as busy, HttpReceiver(refuse_with=400) as bad:
        hook = WebhookChannel(f"{busy.base}/h", ["warning"], source="n")
        with pytest.raises(DeliveryError) as caught:
            await hook.send(ALERT, timeout_s=5)
        assert caught.value.transient and caught.value.reason.startswith("HTTP 503")
        await hook.send(ALERT, timeout_s=5)  # the second try is accepted
        refused = WebhookChannel(f"{bad.base}/h", ["warning"], source="n")
        with pytest.raises(DeliveryError) as caught:
            await refused.send(ALERT, timeout_s=5)
        assert not caught.value.transient and caught.value.reason.startswith("HTTP 400")
        for channel in (hook, refused):
            await channel.aclose()
    dead = WebhookChannel(f"http://127.0.0.1:{closed_port()}/h", ["warning"])
    with pytest.raises(DeliveryError) as caught:
        await dead.send(ALERT, timeout_s=5)
    assert caught.value.transient and "ConnectError" in caught.value.reason
    await dead.aclose()
    smtp_dead = EmailChannel("127.0.0.1", closed_port(), sender="a@x", recipients=["b@x"], severities=["critical"],
                             use_tls=False)  # fmt: skip
    with pytest.raises(DeliveryError) as caught:
        await smtp_dead.send(ALERT, timeout_s=5)
    assert caught.value.transient


async def test_a_missing_secret_variable_makes_the_channel_fail_naming_the_variable() -> None:
    spec = {"slack": {"enabled": True, "webhook_url_env": "NOT_SET_SLACK"}}
    slack = channels(spec, {})["slack"]
    assert isinstance(slack, SlackChannel)
    assert slack.problem == "slack webhook URL: environment variable NOT_SET_SLACK is not set"
    with pytest.raises(DeliveryError) as caught:
        await slack.send(ALERT, timeout_s=5)
    assert not caught.value.transient
