"""The ``RiskPolicy`` kind: FR-510–513 rules, custom rules, critical rules and the kill switch.

``spec`` is the ``risk:`` block of FR-513. Every built-in rule of FR-511 has a model with its defaults;
an unknown rule name is an error. ``rule_order`` is materialised: rules not listed run after the listed
ones, in the default order, so a short ``rule_order`` can never silently drop a rule (the stored spec
shows the full order). RCR-101 hard limits cap the limits; RCR-102 soft-limit warnings are fields of the
rules they soften.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from mm.domain.limits import MAX_DAILY_LOSS, MAX_HOURLY_LOSS, MAX_ORDER_SIZE, MAX_POSITION_PER_MARKET
from mm.specs.types import (
    Contracts,
    FieldProblem,
    Fraction,
    Minutes,
    Multiplier,
    PositiveDecimal,
    PositiveDollars,
    PositiveInt,
    Seconds,
    SpecModel,
)


class RuleBase(SpecModel):
    enabled: bool = True
    force: bool = Field(False, description="Required to disable a rule listed in critical_rules (FR-1003).")


class MaxInventoryRuleConfig(RuleBase):
    limit: Contracts = Field(Decimal(1000), description="Maximum |net inventory| (YES − NO), contracts.")
    action: Literal["block", "modify"] = "block"
    warning_threshold: Fraction = Field(
        Decimal("0.8"), description="RCR-102: above this fraction of the limit, quote sizes are reduced."
    )
    warning_size_multiplier: Fraction = Field(Decimal("0.5"), description="Size factor past the warning.")


class MaxPositionPerSideRuleConfig(RuleBase):
    limit: Contracts = Field(Decimal(1000), description="Maximum YES or NO contracts held, each side.")
    action: Literal["block", "modify"] = "block"


class MaxOrderSizeRuleConfig(RuleBase):
    limit: Contracts = Field(Decimal(500), description="Largest single order, contracts.")
    action: Literal["block", "modify"] = Field("modify", description="modify = cap the size instead.")


class MaxNotionalRuleConfig(RuleBase):
    limit: PositiveDollars = Field(Decimal(500), description="Maximum notional exposure, dollars.")
    action: Literal["block", "modify"] = "block"


class SettlementCutoffRuleConfig(RuleBase):
    cutoff_minutes: Minutes = Field(Decimal(3), description="Stop quoting this many minutes before close.")
    action: Literal["block"] = "block"


_HHMM = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
ALL_DAYS: Final[tuple[Weekday, ...]] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class TradingWindow(SpecModel):
    days: list[Weekday] = Field(default_factory=lambda: list(ALL_DAYS))
    start: str = Field("00:00", description="HH:MM local time in the rule's timezone.")
    end: str = Field("24:00", description="HH:MM local time; 24:00 means end of day.")

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        if value != "24:00" and not _HHMM.match(value):
            raise ValueError(f"{value!r} is not a HH:MM time")
        return value


class MarketHoursRuleConfig(RuleBase):
    windows: list[TradingWindow] = Field(
        default_factory=list, description="When quoting is allowed; empty = always (the FR-511 default)."
    )
    timezone: str = "America/New_York"
    action: Literal["block"] = "block"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name like America/New_York)") from None
        return value


class HourlyLossLimitRuleConfig(RuleBase):
    limit: PositiveDollars = Field(Decimal(50), description="Loss in a rolling hour that trips the rule, dollars.")
    action: Literal["kill_switch", "block"] = "kill_switch"
    warning_threshold: Fraction = Field(Decimal("0.5"), description="RCR-102: widen spreads past this fraction.")
    warning_spread_multiplier: Multiplier = Field(Decimal("1.5"), description="Spread factor past the warning.")


class DailyLossLimitRuleConfig(RuleBase):
    limit: PositiveDollars = Field(Decimal(100), description="Loss in the trading day that trips the rule, dollars.")
    action: Literal["kill_switch", "block"] = "kill_switch"


class DrawdownRuleConfig(RuleBase):
    limit: PositiveDollars = Field(Decimal(75), description="Drop from the PnL peak that trips the rule, dollars.")
    action: Literal["kill_switch", "block"] = "kill_switch"


class HighVolatilityRuleConfig(RuleBase):
    threshold_multiplier: Multiplier = Field(Decimal(2), description="Trips when σ exceeds this × normal σ.")
    normal_volatility: PositiveDecimal | None = Field(
        None, description="Normal σ per √second; None = learn it from a slow average of observed σ."
    )
    spread_multiplier: Multiplier = Field(Decimal("1.5"), description="Spread factor while tripped.")
    size_multiplier: Fraction = Field(Decimal("0.5"), description="Size factor while tripped.")
    action: Literal["modify", "block"] = "modify"


class WideSpreadRuleConfig(RuleBase):
    threshold_multiplier: Multiplier = Field(
        Decimal(3), description="Trips when the book spread exceeds this × normal."
    )
    normal_spread: PositiveDecimal | None = Field(None, description="Normal spread in dollars; None = learned.")
    max_spread: PositiveDecimal | None = Field(None, description="Absolute ceiling on the book spread, dollars.")
    action: Literal["block"] = "block"


class StaleDataRuleConfig(RuleBase):
    max_age_seconds: Seconds = Field(Decimal(5), description="Oldest market data still traded on, seconds.")
    action: Literal["block"] = "block"


class Rules(SpecModel):
    """One entry per built-in rule of FR-511; each defaults to enabled with the FR-511 defaults."""

    max_inventory: MaxInventoryRuleConfig = MaxInventoryRuleConfig()
    max_position_per_side: MaxPositionPerSideRuleConfig = MaxPositionPerSideRuleConfig()
    max_order_size: MaxOrderSizeRuleConfig = MaxOrderSizeRuleConfig()
    max_notional: MaxNotionalRuleConfig = MaxNotionalRuleConfig()
    settlement_cutoff: SettlementCutoffRuleConfig = SettlementCutoffRuleConfig()
    market_hours: MarketHoursRuleConfig = MarketHoursRuleConfig()
    hourly_loss_limit: HourlyLossLimitRuleConfig = HourlyLossLimitRuleConfig()
    daily_loss_limit: DailyLossLimitRuleConfig = DailyLossLimitRuleConfig()
    drawdown: DrawdownRuleConfig = DrawdownRuleConfig()
    high_volatility: HighVolatilityRuleConfig = HighVolatilityRuleConfig()
    wide_spread: WideSpreadRuleConfig = WideSpreadRuleConfig()
    stale_data: StaleDataRuleConfig = StaleDataRuleConfig()


BUILTIN_RULES: Final = tuple(Rules.model_fields)

DEFAULT_RULE_ORDER: Final = (
    "settlement_cutoff",
    "market_hours",
    "stale_data",
    "daily_loss_limit",
    "hourly_loss_limit",
    "drawdown",
    "max_inventory",
    "max_position_per_side",
    "max_notional",
    "max_order_size",
    "wide_spread",
    "high_volatility",
)
"""Time rules first, then PnL (kill switch), then position limits, then market conditions (MODIFY)."""

DEFAULT_CRITICAL_RULES: Final = ("daily_loss_limit", "hourly_loss_limit", "max_inventory")
POSITION_LIMIT_RULES: Final = ("max_inventory", "max_position_per_side", "max_notional")

_MODULE_CLASS = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class CustomRule(SpecModel):
    """FR-512: a rule class loaded from ``module.Class`` and built with ``params``."""

    module: str = Field(description="Import path of the rule class, e.g. my_rules.MyCustomRule.")
    name: str = Field("", description="Name used in rule_order; default: the class name in snake_case.")
    enabled: bool = True
    force: bool = False
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("module")
    @classmethod
    def _dotted(cls, value: str) -> str:
        if not _MODULE_CLASS.match(value):
            raise ValueError(f"{value!r} is not a 'package.module.ClassName' import path")
        return value

    @model_validator(mode="after")
    def _default_name(self) -> CustomRule:
        if not self.name:
            object.__setattr__(self, "name", _snake(self.module.rsplit(".", 1)[1]))
        return self


class KillSwitch(SpecModel):
    enabled: bool = True
    require_manual_reset: bool = Field(
        True, description="Must stay true: a tripped kill switch stays latched until a person resets it."
    )
    force: bool = Field(False, description="Required to disable the kill switch.")
    max_reject_rate: Fraction = Field(
        Decimal("0.5"), description="Trip when more than this share of orders is rejected within the window."
    )
    reject_window_seconds: PositiveDecimal = Field(Decimal(60), description="Window of the reject rate, seconds.")
    min_orders_for_reject_rate: PositiveInt = Field(10, description="Orders needed in the window before it counts.")
    stale_stream_seconds: PositiveDecimal = Field(
        Decimal(30), description="Trip when the order/fill stream has been down this long while orders rest."
    )


class RiskPolicySpec(SpecModel):
    """FR-513: rule order, per-rule configuration, custom rules, critical rules and the kill switch."""

    rule_order: list[str] = Field(default_factory=lambda: list(DEFAULT_RULE_ORDER))
    rules: Rules = Rules()
    custom_rules: list[CustomRule] = Field(default_factory=list)
    critical_rules: list[str] = Field(default_factory=lambda: list(DEFAULT_CRITICAL_RULES))
    kill_switch: KillSwitch = KillSwitch()
    trading_state: Literal["active", "reducing", "halted"] = Field(
        "active", description="For every market under this policy; the most restrictive of node/policy/market wins."
    )

    @model_validator(mode="after")
    def _complete_rule_order(self) -> RiskPolicySpec:
        listed = set(self.rule_order)
        missing = [r for r in DEFAULT_RULE_ORDER if r not in listed]
        missing += [c.name for c in self.custom_rules if c.name not in listed and c.name not in missing]
        if missing:
            object.__setattr__(self, "rule_order", [*self.rule_order, *missing])
        return self

    def rule_names(self) -> list[str]:
        return [*BUILTIN_RULES, *(c.name for c in self.custom_rules)]

    def is_enabled(self, name: str) -> bool:
        rule = getattr(self.rules, name, None)
        if isinstance(rule, RuleBase):
            return rule.enabled
        return any(c.enabled for c in self.custom_rules if c.name == name)

    def check(self) -> list[FieldProblem]:
        """Business rules: known names, critical-rule protection, hard limits (RCR-101), consistency."""
        problems: list[FieldProblem] = []
        known = set(self.rule_names())
        seen: set[str] = set()
        for i, name in enumerate(self.rule_order):
            if name not in known:
                problems.append((("rule_order", i), f"unknown rule {name!r}; known rules: {_listing(known)}"))
            elif name in seen:
                problems.append((("rule_order", i), f"rule {name!r} is listed twice"))
            seen.add(name)
        custom_seen: set[str] = set()
        for i, custom in enumerate(self.custom_rules):
            if custom.name in BUILTIN_RULES:
                problems.append((("custom_rules", i, "name"), f"{custom.name!r} is the name of a built-in rule"))
            elif custom.name in custom_seen:
                problems.append((("custom_rules", i, "name"), f"custom rule name {custom.name!r} is used twice"))
            custom_seen.add(custom.name)
        for i, name in enumerate(self.critical_rules):
            if name not in known:
                problems.append((("critical_rules", i), f"unknown rule {name!r}; known rules: {_listing(known)}"))
                continue
            if not self.is_enabled(name) and not self._forced(name):
                path: tuple[str | int, ...] = ("rules", name, "enabled") if name in BUILTIN_RULES else ("custom_rules",)
                problems.append((path, f"{name!r} is a critical rule: disabling it requires 'force: true' (FR-1003)"))
        if not self.kill_switch.enabled and not self.kill_switch.force:
            problems.append((("kill_switch", "enabled"), "disabling the kill switch requires 'force: true'"))
        if not self.kill_switch.require_manual_reset:
            problems.append(
                (
                    ("kill_switch", "require_manual_reset"),
                    "must be true: the kill switch stays latched until a person resets it (FR-504)",
                )
            )
        if not any(self.is_enabled(r) for r in POSITION_LIMIT_RULES):
            problems.append(
                (("rules",), f"at least one position limit rule must be enabled ({', '.join(POSITION_LIMIT_RULES)})")
            )
        problems += self._hard_limit_problems()
        r = self.rules
        if (
            r.hourly_loss_limit.enabled
            and r.daily_loss_limit.enabled
            and r.hourly_loss_limit.limit > r.daily_loss_limit.limit
        ):
            problems.append(
                (
                    ("rules", "hourly_loss_limit", "limit"),
                    f"hourly loss limit {r.hourly_loss_limit.limit} is above the daily loss limit "
                    f"{r.daily_loss_limit.limit}",
                )
            )
        if r.max_order_size.limit > r.max_inventory.limit:
            problems.append(
                (
                    ("rules", "max_order_size", "limit"),
                    f"max order size {r.max_order_size.limit} is above max inventory {r.max_inventory.limit}",
                )
            )
        return problems

    def _forced(self, name: str) -> bool:
        rule = getattr(self.rules, name, None)
        if isinstance(rule, RuleBase):
            return rule.force
        return any(c.force for c in self.custom_rules if c.name == name)

    def _hard_limit_problems(self) -> list[FieldProblem]:
        caps: list[tuple[str, Decimal, Decimal, str]] = [
            ("max_inventory", self.rules.max_inventory.limit, MAX_POSITION_PER_MARKET, "contracts"),
            ("max_position_per_side", self.rules.max_position_per_side.limit, MAX_POSITION_PER_MARKET, "contracts"),
            ("max_order_size", self.rules.max_order_size.limit, MAX_ORDER_SIZE, "contracts"),
            ("daily_loss_limit", self.rules.daily_loss_limit.limit, MAX_DAILY_LOSS, "dollars"),
            ("hourly_loss_limit", self.rules.hourly_loss_limit.limit, MAX_HOURLY_LOSS, "dollars"),
        ]
        return [
            (
                ("rules", name, "limit"),
                f"{value} exceeds the code-level hard limit of {cap} {unit} (RCR-101); hard limits cannot be "
                "raised by configuration",
            )
            for name, value, cap, unit in caps
            if value > cap
        ]


def _listing(names: set[str] | Mapping[str, Any]) -> str:
    return ", ".join(sorted(names))
