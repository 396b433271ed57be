"""Custom rules loaded from module.Class (FR-512)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from mm.risk.base import RiskAction
from mm.risk.custom import RiskConfigError, load_custom_rule
from mm.risk.engine import RiskEngine
from mm.risk.kill_switch import InMemoryLatch, KillSwitch
from mm.risk.pipeline import RiskPipeline
from mm.specs.risk import CustomRule
from tests.risk.builders import make_context, near_half

MODULE = '''
from mm.risk.base import ALLOW, RiskRule, block


class HighInventoryHighVol(RiskRule):
    """FR-512's example."""

    name = "ignored"

    def evaluate(self, proposed_quotes, context):
        inventory_pct = abs(context.current_inventory) / context.max_inventory
        vol_ratio = context.current_volatility / self.normal_volatility
        if inventory_pct > 0.8 and vol_ratio > 1.5:
            return block(f"High inventory ({inventory_pct:.0%}) + high vol ({vol_ratio:.1f}x)")
        return ALLOW


class Broken(RiskRule):
    def evaluate(self, proposed_quotes, context):
        raise RuntimeError("bug in user code")


class NotARule:
    pass
'''


@pytest.fixture
def desk_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    package = tmp_path / "desk_rules_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "rules.py").write_text(textwrap.dedent(MODULE))
    (package / "broken_import.py").write_text("raise ImportError('missing dependency numpy2')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return "desk_rules_pkg"


def test_the_fr512_example_loads_and_decides(desk_rules: str) -> None:
    config = CustomRule(module=f"{desk_rules}.rules.HighInventoryHighVol", params={"normal_volatility": 0.002})
    rule = load_custom_rule(config)
    assert rule.name == "high_inventory_high_vol"  # the spec's name, which rule_order uses
    hot = make_context(inventory_units=900_00, volatility=0.004)
    assert rule.evaluate(near_half(), hot).action is RiskAction.BLOCK
    assert rule.evaluate(near_half(), make_context(inventory_units=900_00, volatility=0.002)).action is RiskAction.ALLOW


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("rules.Missing", "has no 'Missing'"),
        ("rules.NotARule", "is not a subclass of mm.risk.base.RiskRule"),
        ("broken_import.Anything", "cannot import module 'desk_rules_pkg.broken_import': ImportError"),
        ("nowhere.Rule", "cannot import module 'desk_rules_pkg.nowhere'"),
    ],
)
def test_load_failures_are_clear(desk_rules: str, target: str, message: str) -> None:
    with pytest.raises(RiskConfigError, match=message):
        load_custom_rule(CustomRule(module=f"{desk_rules}.{target}"))


def test_a_custom_rule_that_raises_blocks_that_cycle_and_the_node_keeps_running(desk_rules: str) -> None:
    rule = load_custom_rule(CustomRule(module=f"{desk_rules}.rules.Broken"))
    latch = InMemoryLatch()
    engine = RiskEngine(RiskPipeline([rule]), KillSwitch(latch, "market/M"), KillSwitch(latch, "node"))
    for _ in range(3):  # every cycle: blocked, recorded, never raised, never latched
        outcome = engine.evaluate(near_half(), make_context())
        assert outcome.blocked and not outcome.cancel_all
        assert outcome.records[0].error is not None and "RuntimeError: bug in user code" in outcome.records[0].error
    assert not engine.market_switch.tripped
