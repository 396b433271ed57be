"""Strategy, RiskPolicy and TradingNode reconcilers: Ready with what they built; start-up-only TradingNode
settings report RestartRequired instead of half-applying."""

from __future__ import annotations

from mm.clock import SimulatedClock
from mm.controller.node import NodeContext
from mm.controller.resources import ResourceStore
from mm.reconcilers.components import NodeReconciler, RiskPolicyReconciler, StrategyReconciler
from tests.controller.harness import RISK_YAML, admitted, strategy_yaml

NODE = """\
apiVersion: mm/v1alpha1
kind: TradingNode
metadata: {{name: n1}}
spec:
  trading_state: {state}
  api: {{port: {port}}}
"""


def context() -> NodeContext:
    clock = SimulatedClock(1_786_000_000_000_000)
    return NodeContext(clock, ResourceStore(clock))


async def test_strategy_and_risk_policy_report_ready_with_what_they_built() -> None:
    node = context()
    for resource in admitted(strategy_yaml(), RISK_YAML):
        node.resources.apply(resource)
    await StrategyReconciler(node).reconcile("s1")
    await RiskPolicyReconciler(node).reconcile("r1")
    strategy = node.resources.require("Strategy", "s1")
    policy = node.resources.require("RiskPolicy", "r1")
    assert strategy.is_true("Ready") and strategy.observed_generation == 1
    assert policy.is_true("Ready") and "settlement_cutoff" in policy.status["rules"]


async def test_a_start_up_setting_change_reports_restart_required_and_applies_the_rest() -> None:
    node = context()
    reconciler = NodeReconciler(node)
    node.resources.apply(admitted(NODE.format(state="active", port=8080))[0])
    await reconciler.reconcile("n1")
    stored = node.resources.require("TradingNode", "n1")
    assert not stored.is_true("RestartRequired") and stored.status["trading_state"] == "active"

    node.resources.apply(admitted(NODE.format(state="reducing", port=8080))[0])  # applies at once
    await reconciler.reconcile("n1")
    assert not stored.is_true("RestartRequired") and stored.status["trading_state"] == "reducing"

    node.resources.apply(admitted(NODE.format(state="reducing", port=9090))[0])  # the API port: restart only
    await reconciler.reconcile("n1")
    condition = stored.condition("RestartRequired")
    assert condition is not None and condition.status == "True" and "api" in condition.message
    assert stored.observed_generation == 3
