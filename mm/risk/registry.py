"""Building a risk pipeline from an admitted RiskPolicy spec."""

from __future__ import annotations

from collections.abc import Callable

from mm.risk.base import RiskRule
from mm.risk.custom import load_custom_rule
from mm.risk.pipeline import RiskPipeline
from mm.risk.rules import build_builtin
from mm.specs.risk import BUILTIN_RULES, CustomRule, RiskPolicySpec


def build_pipeline(
    spec: RiskPolicySpec, *, load_custom: Callable[[CustomRule], RiskRule] = load_custom_rule
) -> RiskPipeline:
    """The enabled rules of ``spec`` in its ``rule_order`` (which admission has completed)."""
    custom = {c.name: c for c in spec.custom_rules}
    rules: list[RiskRule] = []
    for name in spec.rule_order:
        if name in BUILTIN_RULES:
            config = getattr(spec.rules, name)
            if config.enabled:
                rules.append(build_builtin(name, config))
        elif name in custom and custom[name].enabled:
            rules.append(load_custom(custom[name]))
    return RiskPipeline(rules)
