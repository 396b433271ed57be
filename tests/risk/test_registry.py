"""Building a risk pipeline from an admitted RiskPolicy spec."""

from __future__ import annotations

import pytest

from mm.domain.quotes import QuoteSet
from mm.risk.base import ALLOW, RiskContext, RiskDecision, RiskRule
from mm.risk.custom import RiskConfigError
from mm.risk.registry import build_pipeline
from mm.specs.risk import DEFAULT_RULE_ORDER, CustomRule, RiskPolicySpec
from tests.risk.builders import make_context, near_half


class Passthrough(RiskRule):
    def evaluate(self, proposed_quotes: QuoteSet, context: RiskContext) -> RiskDecision:
        return ALLOW


def test_default_policy_builds_every_builtin_rule_in_order() -> None:
    pipeline = build_pipeline(RiskPolicySpec.model_validate({}))
    assert pipeline.names == DEFAULT_RULE_ORDER
    result = pipeline.evaluate(near_half(), make_context())
    assert result.quotes is not None and len(result.records) == 12


def test_disabled_rules_are_left_out_and_the_order_is_the_specs() -> None:
    spec = RiskPolicySpec.model_validate(
        {"rule_order": ["max_inventory", "stale_data"], "rules": {"market_hours": {"enabled": False}}}
    )
    names = build_pipeline(spec).names
    assert names[:2] == ("max_inventory", "stale_data")
    assert "market_hours" not in names and len(names) == 11


def test_custom_rules_take_their_place_in_rule_order() -> None:
    spec = RiskPolicySpec.model_validate(
        {
            "rule_order": ["stale_data", "flow_guard", "max_inventory"],
            "custom_rules": [
                {"module": "desk.rules.FlowGuard", "name": "flow_guard", "params": {"window": 30}},
                {"module": "desk.rules.Off", "enabled": False},
            ],
        }
    )
    loaded: list[CustomRule] = []

    def loader(config: CustomRule) -> RiskRule:
        loaded.append(config)
        rule = Passthrough(**config.params)
        rule.name = config.name
        return rule

    pipeline = build_pipeline(spec, load_custom=loader)
    assert pipeline.names[:3] == ("stale_data", "flow_guard", "max_inventory")
    assert [c.name for c in loaded] == ["flow_guard"]  # the disabled one is never imported


def test_a_custom_rule_that_cannot_load_fails_the_build_with_its_name() -> None:
    spec = RiskPolicySpec.model_validate({"custom_rules": [{"module": "no_such_pkg_xyz.Rule"}]})
    with pytest.raises(RiskConfigError, match="custom rule 'rule': cannot import module 'no_such_pkg_xyz'"):
        build_pipeline(spec)
