"""Reconcilers of the kinds that configure rather than trade: Strategy, RiskPolicy and TradingNode.

Strategy and RiskPolicy: build the components from the spec (the same builders the Market reconciler uses)
and report ``Ready`` or ``Stalled`` with the reason; a change re-enqueues the Markets that reference them
(the manager's dependants), which rebuild their engines on their next cycle (FR-1001).

TradingNode: most settings are read where they are used (trading state, aggregate risk, intervals); settings
that only take effect at start-up (state dir, persistence path, API bind address) report ``RestartRequired``
instead of half-applying.
"""

from __future__ import annotations

from typing import Any

from mm.controller.errors import TerminalError
from mm.controller.manager import Result
from mm.controller.node import NodeContext
from mm.observability.logging import get_level, set_level
from mm.risk.registry import build_pipeline
from mm.strategy.registry import build_engine

__all__ = ["NodeReconciler", "RiskPolicyReconciler", "StrategyReconciler"]

RESTART_FIELDS = ("state_dir", "persistence", "api", "metrics")


class StrategyReconciler:
    kind = "Strategy"

    def __init__(self, node: NodeContext) -> None:
        self.node = node

    async def reconcile(self, name: str) -> Result:
        stored = self.node.resources.get("Strategy", name)
        if stored is None:
            return Result()
        try:
            build_engine(stored.spec)
        except (ValueError, TypeError) as exc:
            raise TerminalError(f"components cannot be built: {exc}", reason="InvalidComponents") from exc
        self.node.resources.set_condition("Strategy", name, "Ready", "True", "Built")
        self.node.resources.set_condition("Strategy", name, "Stalled", "False", "Built")
        self.node.resources.set_status("Strategy", name, phase="Ready", used_by=self._users("strategy_ref", name))
        self.node.resources.observed("Strategy", name, stored.generation)
        return Result()

    def _users(self, field: str, name: str) -> list[str]:
        return sorted(m.name for m in self.node.resources.all("Market") if getattr(m.spec, field) == name)


class RiskPolicyReconciler(StrategyReconciler):
    kind = "RiskPolicy"

    async def reconcile(self, name: str) -> Result:
        stored = self.node.resources.get("RiskPolicy", name)
        if stored is None:
            return Result()
        try:
            pipeline = build_pipeline(stored.spec)
        except (ValueError, TypeError, ImportError) as exc:
            raise TerminalError(f"rules cannot be built: {exc}", reason="InvalidRules") from exc
        resources = self.node.resources
        resources.set_condition("RiskPolicy", name, "Ready", "True", "Built")
        resources.set_condition("RiskPolicy", name, "Stalled", "False", "Built")
        resources.set_status(
            "RiskPolicy",
            name,
            phase="Ready",
            rules=[rule.name for rule in pipeline.rules],
            used_by=self._users("risk_policy_ref", name),
        )
        resources.observed("RiskPolicy", name, stored.generation)
        return Result()


class NodeReconciler:
    kind = "TradingNode"

    def __init__(self, node: NodeContext) -> None:
        self.node = node
        self._started_with: dict[str, Any] | None = None

    async def reconcile(self, name: str) -> Result:
        resources = self.node.resources
        stored = resources.get("TradingNode", name)
        if stored is None:
            return Result()
        current = {f: stored.spec_data.get(f) for f in RESTART_FIELDS}
        if self._started_with is None:
            self._started_with = current
        changed = [f for f in RESTART_FIELDS if current[f] != self._started_with[f]]
        if changed:
            message = f"{', '.join(changed)} changed: takes effect after a restart"
            resources.set_condition("TradingNode", name, "RestartRequired", "True", "StartupSetting", message)
        else:
            resources.set_condition("TradingNode", name, "RestartRequired", "False", "UpToDate")
        resources.set_condition("TradingNode", name, "Ready", "True", "Running")
        if stored.spec.logging.level != get_level():
            set_level(stored.spec.logging.level)  # hot-reloadable (NFR-401): every logger obeys at once
        switch = self.node.node_switch
        resources.set_status(
            "TradingNode",
            name,
            phase="Halted" if switch.tripped else "Running",
            trading_state=stored.spec.trading_state,
            kill_switch={"tripped": switch.tripped, "reason": switch.state.reason},
            exchanges=sorted(self.node.exchanges),
        )
        resources.observed("TradingNode", name, stored.generation)
        for market in resources.all("Market"):
            self.node.enqueue(market.key)  # trading_state and aggregate limits apply on their next cycle
        return Result()
