"""Every risk decision is counted, and the non-trivial ones are logged with their inputs."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest

from mm.observability.logging import configure_logging, reset_logging
from mm.observability.metrics import Metrics
from mm.observability.risk_audit import RiskAudit
from mm.risk.base import RiskAction
from mm.risk.engine import RiskOutcome
from mm.risk.pipeline import DecisionRecord
from mm.risk.states import TradingState
from tests.risk.builders import MARKET, make_context, near_half


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    out = io.StringIO()
    configure_logging("DEBUG", json=True, stream=out)
    try:
        yield out
    finally:
        reset_logging()


def parsed(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]


def count(metrics: Metrics, rule: str, action: str) -> float:
    value = metrics.registry.get_sample_value("mm_risk_decisions_total", {"rule": rule, "action": action})
    return value or 0.0


def test_decisions_are_counted_and_logged_with_inputs(log_lines: io.StringIO) -> None:
    metrics = Metrics()
    outcome = RiskOutcome(
        near_half(),
        TradingState.ACTIVE,
        (
            DecisionRecord("stale_data", RiskAction.ALLOW),
            DecisionRecord("max_inventory", RiskAction.MODIFY, "inventory 850 of 1000: bid sizes halved"),
        ),
        context=make_context(inventory_units=850_00),
    )
    RiskAudit(metrics).record(outcome)
    RiskAudit(metrics).record(outcome)
    assert count(metrics, "stale_data", "ALLOW") == 2
    assert count(metrics, "max_inventory", "MODIFY") == 2
    lines = [line for line in parsed(log_lines) if line["event"] == "risk_decision"]
    modify = next(line for line in lines if line["action"] == "MODIFY")
    assert modify["rule"] == "max_inventory" and modify["market"] == MARKET
    assert modify["reason"] == "inventory 850 of 1000: bid sizes halved"
    assert modify["inputs"]["inventory"] == "850" and modify["inputs"]["best_bid"] == "0.4500"
    assert any(line["action"] == "ALLOW" and line["level"] == "debug" for line in lines)


def test_a_failed_rule_is_logged_with_its_traceback_and_kill_switch_trips_are_critical(log_lines: io.StringIO) -> None:
    metrics = Metrics()
    outcome = RiskOutcome(
        None,
        TradingState.HALTED,
        (DecisionRecord("custom", RiskAction.BLOCK, "rule raised RuntimeError", error="Traceback ...RuntimeError"),),
        cancel_all=True,
        kill_switch_tripped="market/M: daily_loss_limit: loss $120",
        context=make_context(),
    )
    RiskAudit(metrics).record(outcome)
    lines = parsed(log_lines)
    failed = next(line for line in lines if line["event"] == "risk_rule_failed")
    assert failed["level"] == "error" and "RuntimeError" in failed["traceback"]
    tripped = next(line for line in lines if line["event"] == "kill_switch_tripped")
    assert tripped["level"] == "critical" and "daily_loss_limit" in tripped["reason"]
    assert count(metrics, "custom", "BLOCK") == 1
