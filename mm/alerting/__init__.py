"""Alerting (NFR-403): alerts raised by name, throttled, delivered to log, Slack, PagerDuty, email and webhook
channels on background tasks, recorded, and queryable; custom alert rules over the node's metrics.

Pure parts: :mod:`~mm.alerting.alerts` (values, the built-in catalogue), :mod:`~mm.alerting.throttle`,
:mod:`~mm.alerting.rules` (the condition language), :mod:`~mm.alerting.payloads`. IO parts:
:mod:`~mm.alerting.channels`, :mod:`~mm.alerting.config` (secrets from the environment),
:mod:`~mm.alerting.manager`, :mod:`~mm.alerting.rule_engine` (periodic evaluation). See docs/alerting.md.
"""

from mm.alerting.alerts import BUILTIN_ALERTS, SEVERITIES, Alert, AlertDefinition, AlertEntry, ChannelOutcome, Severity
from mm.alerting.channels import (
    PAGERDUTY_EVENTS_URL,
    Channel,
    DeliveryError,
    EmailChannel,
    LogChannel,
    PagerDutyChannel,
    SlackChannel,
    WebhookChannel,
)
from mm.alerting.config import AlertConfigError, build_channels, channel_problems
from mm.alerting.manager import AlertManager, RecordSink
from mm.alerting.rule_engine import AlertRuleError, CompiledRule, RuleEvaluator, compile_rules
from mm.alerting.rules import ConditionError, parse_condition
from mm.alerting.throttle import AlertThrottle, ThrottleDecision

__all__ = [
    "BUILTIN_ALERTS",
    "PAGERDUTY_EVENTS_URL",
    "SEVERITIES",
    "Alert",
    "AlertConfigError",
    "AlertDefinition",
    "AlertEntry",
    "AlertManager",
    "AlertRuleError",
    "AlertThrottle",
    "Channel",
    "ChannelOutcome",
    "CompiledRule",
    "ConditionError",
    "DeliveryError",
    "EmailChannel",
    "LogChannel",
    "PagerDutyChannel",
    "RecordSink",
    "RuleEvaluator",
    "Severity",
    "SlackChannel",
    "ThrottleDecision",
    "WebhookChannel",
    "build_channels",
    "channel_problems",
    "compile_rules",
    "parse_condition",
]
