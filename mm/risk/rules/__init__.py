"""The twelve built-in risk rules of FR-511, by config name.

Each rule is built from its config model in ``mm.specs.risk`` (``SomeRule(config)``) and is named by
its key in ``mm.specs.risk.Rules``. ``build_builtin(name, config)`` checks the pairing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final, cast

from mm.risk.base import RiskRule
from mm.risk.rules.market import HighVolatilityRule, StaleDataRule, WideSpreadRule
from mm.risk.rules.pnl import DailyLossLimitRule, DrawdownRule, HourlyLossLimitRule
from mm.risk.rules.position import MaxInventoryRule, MaxNotionalRule, MaxOrderSizeRule, MaxPositionPerSideRule
from mm.risk.rules.timing import MarketHoursRule, SettlementCutoffRule
from mm.specs.risk import Rules

_CLASSES: Final[tuple[type[RiskRule], ...]] = (
    MaxInventoryRule,
    MaxPositionPerSideRule,
    MaxOrderSizeRule,
    MaxNotionalRule,
    SettlementCutoffRule,
    MarketHoursRule,
    HourlyLossLimitRule,
    DailyLossLimitRule,
    DrawdownRule,
    HighVolatilityRule,
    WideSpreadRule,
    StaleDataRule,
)

BUILTIN_RULES: Final[Mapping[str, type[RiskRule]]] = MappingProxyType({cls.name: cls for cls in _CLASSES})
"""Rule name (the key in ``mm.specs.risk.Rules``) → rule class."""


def build_builtin(name: str, config: Any) -> RiskRule:
    """The built-in rule ``name`` configured by ``config`` (the matching model of ``mm.specs.risk``)."""
    try:
        cls = BUILTIN_RULES[name]
    except KeyError:
        raise ValueError(f"unknown built-in risk rule {name!r}; known: {', '.join(BUILTIN_RULES)}") from None
    expected = Rules.model_fields[name].annotation
    if not isinstance(expected, type) or not isinstance(config, expected):
        raise TypeError(f"rule {name!r} needs a {getattr(expected, '__name__', expected)}, got {type(config).__name__}")
    return cast(Callable[[Any], RiskRule], cls)(config)


__all__ = [
    "BUILTIN_RULES",
    "DailyLossLimitRule",
    "DrawdownRule",
    "HighVolatilityRule",
    "HourlyLossLimitRule",
    "MarketHoursRule",
    "MaxInventoryRule",
    "MaxNotionalRule",
    "MaxOrderSizeRule",
    "MaxPositionPerSideRule",
    "SettlementCutoffRule",
    "StaleDataRule",
    "WideSpreadRule",
    "build_builtin",
]
