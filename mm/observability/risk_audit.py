"""Logging and counting every risk decision (FR-510, NFR-302): the IO side of the pure risk engine.

Every rule verdict is counted in ``mm_risk_decisions_total{rule, action}``; MODIFY and BLOCK verdicts
are logged at INFO with the rule, action, reason and the inputs rules look at; ALLOW at DEBUG; a rule
that raised at ERROR with its traceback; a kill switch trip at CRITICAL.
"""

from __future__ import annotations

from typing import Any

from mm.observability.logging import get_logger, is_enabled
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
        self._log = get_logger(logger_name).bind()  # bound once: a proxy re-binds on every call otherwise
        self._counters: dict[tuple[str, str], Any] = {}
        self._pending_allows: dict[str, int] = {}
        self._pending_total = 0
        metrics.render_hooks.append(self.flush)

    def flush(self) -> None:
        """Add the batched ALLOW counts to ``mm_risk_decisions_total`` (done before every scrape, on any
        non-ALLOW decision and every 256 batched ones)."""
        pending, self._pending_allows = self._pending_allows, {}
        self._pending_total = 0
        for rule, n in pending.items():
            self._counter(rule, "ALLOW").inc(n)

    def _counter(self, rule: str, action: str) -> Any:
        # The hot path runs every rule every quote cycle: look the labelled child up once per (rule, action).
        key = (rule, action)
        child = self._counters.get(key)
        if child is None:
            child = self._counters[key] = self._metrics.risk_decisions.labels(rule=rule, action=action)
        return child

    def record(self, outcome: RiskOutcome) -> None:
        market = outcome.context.market_id if outcome.context is not None else ""
        inputs: dict[str, Any] | None = None
        debug = is_enabled("DEBUG")
        pending = self._pending_allows
        allows = 0
        allow = RiskAction.ALLOW
        for record in outcome.records:
            if record.action is allow and record.error is None:
                # Every rule allows on almost every cycle: batch these (a counter increment takes a lock).
                pending[record.rule] = pending.get(record.rule, 0) + 1
                allows += 1
                if debug:  # skip building a dropped event: an ALLOW per rule per cycle adds up
                    self._log.debug("risk_decision", market=market, rule=record.rule, action="ALLOW")
                continue
            self._counter(record.rule, record.action.value).inc()
            if record.error is not None:
                self._log.error(
                    "risk_rule_failed",
                    market=market,
                    rule=record.rule,
                    action=record.action.value,
                    reason=record.reason,
                    traceback=record.error,
                )
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
        self._pending_total += allows
        if self._pending_total >= 256 or (allows < len(outcome.records) and pending):
            self.flush()
        if outcome.kill_switch_tripped is not None:
            self._log.critical("kill_switch_tripped", market=market, reason=outcome.kill_switch_tripped)
        elif outcome.blocked and outcome.reason:
            self._log.info("risk_blocked", market=market, state=outcome.state.label, reason=outcome.reason)
