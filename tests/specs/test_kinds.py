"""Per-kind models: defaults, presets, materialisation and business rules."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from mm.specs.exchange import ExchangeSpec
from mm.specs.market import MarketSelectorSpec
from mm.specs.node import TradingNodeSpec
from mm.specs.risk import DEFAULT_RULE_ORDER, RiskPolicySpec
from mm.specs.strategy import PRESETS, StrategySpec


def problems(spec: Any) -> dict[str, str]:
    return {".".join(map(str, path)): message for path, message in spec.check()}


# --- Strategy ---------------------------------------------------------------------------------------


def test_defaults_are_the_requirements_defaults() -> None:
    spec = StrategySpec.model_validate({})
    assert spec.components.volatility.type == "ewma"
    assert spec.components.volatility.params.alpha == Decimal("0.94")  # type: ignore[union-attr]
    assert spec.components.reservation_price.type == "avellaneda_stoikov"
    assert spec.components.reservation_price.params.gamma == Decimal("0.1")  # type: ignore[union-attr]
    assert spec.components.skew.params.intensity == Decimal("0.01")  # type: ignore[union-attr]
    assert spec.components.spread.type == "fixed"
    assert spec.components.sizer.params.base_size == 100
    assert spec.max_inventory == 1000
    assert problems(spec) == {}


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_is_valid_and_fully_materialised(preset: str) -> None:
    spec = StrategySpec.model_validate({"preset": preset})
    assert problems(spec) == {}
    dumped = spec.model_dump(mode="json")
    assert set(dumped["components"]) == {"volatility", "reservation_price", "skew", "spread", "sizer"}
    assert dumped["preset"] == preset


def test_presets_differ_in_the_promised_direction() -> None:
    def spec(name: str) -> StrategySpec:
        return StrategySpec.model_validate({"preset": name})

    conservative, aggressive, baseline = spec("conservative"), spec("aggressive"), spec("baseline")
    assert conservative.components.sizer.params.base_size < aggressive.components.sizer.params.base_size
    spread = {n: s.components.spread.params.base_spread for n, s in (("c", conservative), ("a", aggressive))}  # type: ignore[union-attr]
    assert spread["c"] > spread["a"]
    assert baseline.components.skew.type == "none" and baseline.components.spread.type == "fixed"


def test_component_params_merge_over_the_preset_and_a_new_type_replaces_the_slot() -> None:
    spec = StrategySpec.model_validate(
        {
            "preset": "conservative",
            "components": {
                "spread": {"params": {"base_spread": "0.06"}},
                "skew": {"type": "exponential"},
            },
        }
    )
    spread = spec.components.spread
    assert spread.type == "volatility" and spread.params.base_spread == Decimal("0.06")
    assert spread.params.vol_multiplier == 1  # kept from the preset
    assert spec.components.skew.type == "exponential"
    assert spec.components.skew.params.intensity == Decimal("0.01")  # the type's default, not the preset's


def test_fixed_volatility_needs_its_value() -> None:
    with pytest.raises(ValidationError, match="volatility"):
        StrategySpec.model_validate({"components": {"volatility": {"type": "fixed"}}})


@pytest.mark.parametrize(
    ("data", "path", "fragment"),
    [
        ({"max_inventory": 1500}, "max_inventory", "hard limit of 1000"),
        ({"components": {"sizer": {"params": {"base_size": 600}}}}, "components.sizer.params.base_size", "500"),
        (
            {"max_inventory": 50, "components": {"sizer": {"params": {"base_size": 60}}}},
            "components.sizer.params.base_size",
            "larger than max_inventory",
        ),
        ({"price_bounds": {"min": "0.6", "max": "0.4"}}, "price_bounds.min", "must be below max"),
        ({"min_spread": "0.03"}, "components.spread.params.base_spread", "below min_spread"),
    ],
)
def test_strategy_business_rules(data: dict[str, Any], path: str, fragment: str) -> None:
    found = problems(StrategySpec.model_validate(data))
    assert fragment in found.get(path, ""), found


# --- RiskPolicy -------------------------------------------------------------------------------------


def test_risk_defaults_cover_every_fr511_rule() -> None:
    spec = RiskPolicySpec.model_validate({})
    assert spec.rule_order == list(DEFAULT_RULE_ORDER)
    assert spec.rules.max_inventory.limit == 1000
    assert spec.rules.max_order_size.limit == 500 and spec.rules.max_order_size.action == "modify"
    assert spec.rules.max_notional.limit == 500
    assert spec.rules.settlement_cutoff.cutoff_minutes == 3
    assert spec.rules.hourly_loss_limit.limit == 50 and spec.rules.daily_loss_limit.limit == 100
    assert spec.rules.drawdown.limit == 75
    assert spec.rules.high_volatility.threshold_multiplier == 2
    assert spec.rules.wide_spread.threshold_multiplier == 3
    assert spec.rules.stale_data.max_age_seconds == 5
    assert spec.rules.max_inventory.warning_threshold == Decimal("0.8")  # RCR-102
    assert spec.rules.hourly_loss_limit.warning_threshold == Decimal("0.5")
    assert problems(spec) == {}


def test_short_rule_order_is_completed_never_truncated() -> None:
    spec = RiskPolicySpec.model_validate(
        {"rule_order": ["max_inventory", "stale_data"], "custom_rules": [{"module": "desk.rules.FlowToxicity"}]}
    )
    assert spec.rule_order[:2] == ["max_inventory", "stale_data"]
    assert sorted(spec.rule_order) == sorted([*DEFAULT_RULE_ORDER, "flow_toxicity"])


@pytest.mark.parametrize(
    ("data", "path", "fragment"),
    [
        ({"rules": {"daily_loss_limit": {"limit": 150}}}, "rules.daily_loss_limit.limit", "RCR-101"),
        ({"rules": {"hourly_loss_limit": {"limit": 60}}}, "rules.hourly_loss_limit.limit", "hard limit of 50"),
        ({"rules": {"max_order_size": {"limit": 501}}}, "rules.max_order_size.limit", "hard limit of 500"),
        ({"rules": {"max_position_per_side": {"limit": 1001}}}, "rules.max_position_per_side.limit", "1000"),
        ({"rules": {"max_inventory": {"enabled": False}}}, "rules.max_inventory.enabled", "requires 'force: true'"),
        ({"kill_switch": {"enabled": False}}, "kill_switch.enabled", "force: true"),
        ({"kill_switch": {"require_manual_reset": False}}, "kill_switch.require_manual_reset", "latched"),
        ({"rule_order": ["stale_data", "stale_data"]}, "rule_order.1", "listed twice"),
        ({"critical_rules": ["nope"]}, "critical_rules.0", "unknown rule 'nope'"),
        ({"custom_rules": [{"module": "x.StaleData"}]}, "custom_rules.0.name", "built-in rule"),
        (
            {"rules": {"hourly_loss_limit": {"limit": 40}, "daily_loss_limit": {"limit": 30}}},
            "rules.hourly_loss_limit.limit",
            "above the daily loss limit",
        ),
        (
            {
                "rules": {
                    "max_inventory": {"enabled": False, "force": True},
                    "max_position_per_side": {"enabled": False},
                    "max_notional": {"enabled": False},
                }
            },
            "rules",
            "at least one position limit rule",
        ),
    ],
)
def test_risk_business_rules(data: dict[str, Any], path: str, fragment: str) -> None:
    found = problems(RiskPolicySpec.model_validate(data))
    assert fragment in found.get(path, ""), found


def test_critical_rule_can_be_disabled_with_force() -> None:
    spec = RiskPolicySpec.model_validate({"rules": {"daily_loss_limit": {"enabled": False, "force": True}}})
    assert problems(spec) == {}


def test_bad_custom_rule_module_and_time_zone() -> None:
    with pytest.raises(ValidationError, match="ClassName"):
        RiskPolicySpec.model_validate({"custom_rules": [{"module": "no_dots"}]})
    with pytest.raises(ValidationError, match="unknown time zone"):
        RiskPolicySpec.model_validate({"rules": {"market_hours": {"timezone": "Mars/Olympus"}}})
    with pytest.raises(ValidationError, match="HH:MM"):
        RiskPolicySpec.model_validate({"rules": {"market_hours": {"windows": [{"start": "9:30"}]}}})


# --- Exchange ---------------------------------------------------------------------------------------


def test_kalshi_endpoints_and_rates_are_materialised() -> None:
    spec = ExchangeSpec.model_validate(
        {
            "venue": "kalshi",
            "environment": "prod",
            "api_key_env": "K",
            "private_key_env": "P",
            "rate_limits": {"tier": "advanced"},
        }
    )
    assert spec.base_url == "https://external-api.kalshi.com/trade-api/v2"
    assert spec.ws_url == "wss://external-api-ws.kalshi.com/trade-api/ws/v2"
    assert (spec.rate_limits.reads_per_second, spec.rate_limits.writes_per_second) == (30, 30)
    assert spec.allow_live is False
    assert problems(spec) == {}


@pytest.mark.parametrize(
    ("data", "path", "fragment"),
    [
        ({"venue": "kalshi", "api_key_env": "K", "private_key_env": "P"}, "environment", "required"),
        (
            {"venue": "kalshi", "environment": "local", "api_key_env": "K", "private_key_env": "P"},
            "environment",
            "not valid for venue kalshi",
        ),
        ({"venue": "kalshi", "environment": "demo", "private_key_env": "P"}, "api_key_env", "key id"),
        ({"venue": "kalshi", "environment": "demo", "api_key_env": "K"}, "private_key_env", "exactly one"),
        (
            {"venue": "kalshi", "environment": "custom", "api_key_env": "K", "private_key_env": "P"},
            "base_url",
            "required",
        ),
        ({"venue": "polymarket"}, "api_secret_env", "needs"),
        ({"venue": "simulator", "simulator": {"embedded": False}}, "base_url", "required"),
    ],
)
def test_exchange_business_rules(data: dict[str, Any], path: str, fragment: str) -> None:
    found = problems(ExchangeSpec.model_validate(data))
    assert fragment in found.get(path, ""), found


def test_env_var_references_must_be_names() -> None:
    with pytest.raises(ValidationError, match="api_key_env"):
        ExchangeSpec.model_validate({"venue": "kalshi", "api_key_env": "not a name!"})


# --- MarketSelector and TradingNode ------------------------------------------------------------------


def test_selector_needs_something_to_search() -> None:
    spec = MarketSelectorSpec.model_validate(
        {"exchange_ref": "x", "template": {"strategy_ref": "s", "risk_policy_ref": "r"}}
    )
    assert "bound the search" in problems(spec)["series"]


def test_node_defaults_match_the_requirements() -> None:
    spec = TradingNodeSpec.model_validate({})
    assert spec.shutdown.default_mode == "drain" and spec.shutdown.unwind.enabled is False
    assert spec.recovery.checkpoint_interval_seconds == 10
    assert spec.hot_reload.max_changes_per_minute == 10
    assert spec.risk.aggregate.max_total_notional == 1000 and spec.risk.aggregate.max_concurrent_markets == 5
    assert spec.time_sync.max_drift_ms == 100 and spec.network.reconnect.max_delay_ms == 60000
    assert spec.api.host == "127.0.0.1" and spec.persistence.history_limit == 20
    assert problems(spec) == {}


@pytest.mark.parametrize(
    ("data", "path", "fragment"),
    [
        ({"api": {"host": "0.0.0.0"}}, "api.host", "not a loopback address"),
        ({"shutdown": {"default_mode": "unwind"}}, "shutdown.default_mode", "unwind.enabled"),
        (
            {"alerting": {"channels": {"slack": {"enabled": True}}}},
            "alerting.channels.slack.webhook_url_env",
            "not set",
        ),
        (
            {"startup": {"position_handling": {"source": "manual"}}},
            "startup.position_handling.manual_positions",
            "needs",
        ),
        ({"network": {"reconnect": {"initial_delay_ms": 70000}}}, "network.reconnect.initial_delay_ms", "max_delay"),
    ],
)
def test_node_business_rules(data: dict[str, Any], path: str, fragment: str) -> None:
    found = problems(TradingNodeSpec.model_validate(data))
    assert fragment in found.get(path, ""), found


def test_non_loopback_api_needs_an_explicit_opt_in() -> None:
    spec = TradingNodeSpec.model_validate({"api": {"host": "0.0.0.0", "allow_non_loopback": True}})
    assert problems(spec) == {}
    assert problems(TradingNodeSpec.model_validate({"api": {"host": "::1"}})) == {}


def test_manual_positions_keep_yes_and_no_keys() -> None:
    spec = TradingNodeSpec.model_validate(
        {"startup": {"position_handling": {"source": "manual", "manual_positions": {"T-1": {"YES": 100, "NO": 0}}}}}
    )
    assert spec.startup.position_handling.manual_positions["T-1"].YES == 100


def test_floats_are_refused_everywhere() -> None:
    with pytest.raises(ValidationError, match="exact decimals"):
        StrategySpec.model_validate({"min_spread": 0.01})
    with pytest.raises(ValidationError, match="exact decimals"):
        TradingNodeSpec.model_validate({"api": {"port": 8080.0}})
