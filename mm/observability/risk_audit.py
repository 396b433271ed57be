"""Logging and counting every risk decision (FR-510, NFR-302): the IO side of the pure risk engine.

Every rule verdict is counted in ``mm_risk_decisions_total{rule, action}``; MODIFY and BLOCK verdicts
are logged at INFO with the rule, action, reason and the inputs rules look at; ALLOW at DEBUG; a rule
that raised at ERROR with its traceback; a kill switch trip at CRITICAL.
"""

from __future__ import annotations

from typing import Any

from mm.observability.logging import get_logger
from mm.observability.metrics import Metrics
from mm.risk.base import RiskAction, RiskContext
from mm.risk.engine import RiskOutcome


def decision_inputs(context: RiskContext | None) -> dict[str, Any]:
    """The context values rules decide on, in contracts, dollars and seconds, for the audit log."""
    if context is None:
        return {}
    snapshot = context.snapshot
    return {
        "inventory": str(context.current_inventory),
        "max_inventory": str(context.max_inventory),
        "hourly_pnl": str(context.hourly_pnl),
        "daily_pnl": str(context.daily_pnl),
        "time_to_settlement_s": context.time_to_settlement_seconds,
        "volatility": context.volatility,
        "best_bid": None if snapshot.best_bid is None else snapshot.best_bid.to_dollars(),
        "best_ask": None if snapshot.best_ask is None else snapshot.best_ask.to_dollars(),
        "data_age_us": context.now_us - snapshot.last_update_us,
    }


class RiskAudit:
    """Records a :class:`RiskOutcome` in the logs and metrics."""

    def __init__(self, metrics: Metrics, logger_name: str = "mm.risk") -> None:
        self._metrics = metrics
        self._log = get_logger(logger_name)

    def record(self, outcome: RiskOutcome) -> None:
        market = outcome.context.market_id if outcome.context is not None else ""
        inputs: dict[str, Any] | None = None
        for record in outcome.records:
            self._metrics.risk_decisions.labels(rule=record.rule, action=record.action.value).inc()
            if record.error is not None:
                self._log.error(
                    "risk_rule_failed",
                    market=market,
                    rule=record.rule,
                    action=record.action.value,
                    reason=record.reason,
                    traceback=record.error,
                )
            elif record.action is RiskAction.ALLOW:
                self._log.debug("risk_decision", market=market, rule=record.rule, action="ALLOW")
            else:
                inputs = inputs if inputs is not None else decision_inputs(outcome.context)
                self._log.info(
                    "risk_decision",
                    market=market,
                    rule=record.rule,
                    action=record.action.value,
                    reason=record.reason,
                    kill_switch=record.kill_switch,
                    inputs=inputs,
                )
        if outcome.kill_switch_tripped is not None:
            self._log.critical("kill_switch_tripped", market=market, reason=outcome.kill_switch_tripped)
        elif outcome.blocked and outcome.reason:
            self._log.info("risk_blocked", market=market, state=outcome.state.label, reason=outcome.reason)
