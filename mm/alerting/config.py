"""Channels from the TradingNode's ``alerting.channels`` block, with secrets read from the environment.

Each enabled channel is built even when a secret's variable is missing: it then carries a ``problem`` (naming
the variable, never a value), every delivery to it fails at once with that problem — visible in the alert
history and in ``mmctl alerts test`` — and :func:`channel_problems` lists it for start-up checks. Pass
``strict=True`` to :func:`build_channels` to refuse such a configuration instead (:class:`AlertConfigError`).

Variables read (names come from the spec): ``slack.webhook_url_env``, ``pagerduty.routing_key_env``,
``email.username_env`` / ``email.password_env``, ``webhook.url_env``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from mm.alerting.channels import (
    PAGERDUTY_EVENTS_URL,
    Channel,
    EmailChannel,
    LogChannel,
    PagerDutyChannel,
    SlackChannel,
    WebhookChannel,
    environment_value,
)
from mm.domain.errors import MmError
from mm.observability.logging import get_logger
from mm.specs.node import AlertChannels

__all__ = ["AlertConfigError", "build_channels", "channel_problems"]

_log = get_logger("mm.alerting")


class AlertConfigError(MmError):
    """An enabled alert channel cannot work (``strict`` mode): the message names the variable, not its value."""


def build_channels(
    spec: AlertChannels,
    *,
    environ: Mapping[str, str] | None = None,
    source: str = "mmctl",
    pagerduty_url: str = PAGERDUTY_EVENTS_URL,
    strict: bool = False,
) -> list[Channel]:
    """Every enabled channel of ``spec``, in the order log, slack, pagerduty, email, webhook.

    ``environ``: where secrets are read (default ``os.environ``). ``source``: this node's name in payloads
    (PagerDuty ``source``, Slack context, email body). ``pagerduty_url``: the Events API v2 endpoint.
    """
    env = os.environ if environ is None else environ
    channels = _build(spec, env, source, pagerduty_url)
    problems = [f"{c.name}: {c.problem}" for c in channels if c.problem is not None]
    if problems and strict:
        raise AlertConfigError("alert channels misconfigured: " + "; ".join(problems))
    for problem in problems:
        _log.warning("alert channel misconfigured; its deliveries will fail", problem=problem)
    return channels


def _build(spec: AlertChannels, env: Mapping[str, str], source: str, pagerduty_url: str) -> list[Channel]:
    channels: list[Channel] = []
    if spec.log.enabled:
        channels.append(LogChannel(spec.log.severities))
    if spec.slack.enabled:
        url, problem = environment_value(env, spec.slack.webhook_url_env, "slack webhook URL")
        channels.append(
            SlackChannel(url, spec.slack.severities, source=source, channel=spec.slack.channel, problem=problem)
        )
    if spec.pagerduty.enabled:
        key, problem = environment_value(env, spec.pagerduty.routing_key_env, "pagerduty routing key")
        channels.append(
            PagerDutyChannel(key, spec.pagerduty.severities, source=source, url=pagerduty_url, problem=problem)
        )
    if spec.email.enabled:
        channels.append(_email(spec, env, source))
    if spec.webhook.enabled:
        hook = spec.webhook
        if hook.url is not None:
            url, problem = hook.url, None
        else:
            url, problem = environment_value(env, hook.url_env, "webhook URL")
        channels.append(WebhookChannel(url, hook.severities, source=source, problem=problem))
    return channels


def _email(spec: AlertChannels, env: Mapping[str, str], source: str) -> EmailChannel:
    mail = spec.email
    problem: str | None = None if mail.smtp_host and mail.recipients else "smtp_host or recipients not set"
    username = password = None
    if mail.username_env is not None or mail.password_env is not None:
        username, user_problem = environment_value(env, mail.username_env, "SMTP username")
        password, password_problem = environment_value(env, mail.password_env, "SMTP password")
        problem = problem or user_problem or password_problem
    return EmailChannel(
        mail.smtp_host or "",
        mail.smtp_port,
        sender=mail.sender,
        recipients=mail.recipients,
        severities=mail.severities,
        use_tls=mail.use_tls,
        username=username,
        password=password,
        source=source,
        problem=problem,
    )


def channel_problems(spec: AlertChannels, environ: Mapping[str, str] | None = None) -> list[str]:
    """Configuration problems of the enabled channels (for ``mmctl doctor``-style checks); empty when fine."""
    env = os.environ if environ is None else environ
    channels = _build(spec, env, "mmctl", PAGERDUTY_EVENTS_URL)
    return [f"{c.name}: {c.problem}" for c in channels if c.problem is not None]
