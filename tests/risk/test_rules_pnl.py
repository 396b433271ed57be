"""PnL rules (FR-503, FR-511, RCR-101/102): hourly and daily loss limits, drawdown."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mm.domain.limits import MAX_DAILY_LOSS, MAX_HOURLY_LOSS
from mm.domain.quotes import QuoteSet
from mm.domain.ticks import TickGrid
from mm.risk.base import ALLOW, RiskAction, RiskContext
from mm.risk.rules.pnl import DailyLossLimitRule, DrawdownRule, HourlyLossLimitRule
from mm.specs.risk import DailyLossLimitRuleConfig, DrawdownRuleConfig, HourlyLossLimitRuleConfig
from tests.risk.builders import dollars, make_context, make_quotes, make_snapshot, price, size

Ctx = Callable[..., RiskContext]
Quotes = Callable[..., QuoteSet]

# ------------------------------------------------------------------------------------ hourly loss


@pytest.mark.parametrize(
    ("pnl", "expected"),
    [
        ("100", RiskAction.ALLOW),
        ("-24.9999", RiskAction.ALLOW),
        ("-25", RiskAction.MODIFY),  # 50 % of $50: RCR-102 warning
        ("-49.9999", RiskAction.MODIFY),
        ("-50", RiskAction.BLOCK),
        ("-50.0001", RiskAction.BLOCK),
    ],
)
def test_hourly_loss_thresholds(ctx: Ctx, quotes: Quotes, pnl: str, expected: RiskAction) -> None:
    decision = HourlyLossLimitRule(HourlyLossLimitRuleConfig()).evaluate(quotes(), ctx(hourly_pnl_units=dollars(pnl)))
    assert decision.action is expected
    assert decision.trigger_kill_switch is (expected is RiskAction.BLOCK)  # default action: kill_switch


def test_hourly_loss_reasons(ctx: Ctx, quotes: Quotes) -> None:
    rule = HourlyLossLimitRule(HourlyLossLimitRuleConfig())
    assert rule.evaluate(quotes(), ctx(hourly_pnl_units=dollars("-52.3"))).reason == (
        "hourly loss $52.30 reached the $50.00 limit: kill switch"
    )
    assert rule.evaluate(quotes(), ctx(hourly_pnl_units=dollars(-30))).reason == (
        "hourly loss $30.00 past the 50% warning of the $50.00 limit: spreads ×1.5"
    )


def test_hourly_loss_block_action_blocks_without_the_kill_switch(ctx: Ctx, quotes: Quotes) -> None:
    rule = HourlyLossLimitRule(HourlyLossLimitRuleConfig(action="block"))
    decision = rule.evaluate(quotes(), ctx(hourly_pnl_units=dollars(-50)))
    assert decision.action is RiskAction.BLOCK and decision.trigger_kill_switch is False
    assert decision.reason is not None and decision.reason.endswith("quoting blocked")


def test_hourly_loss_warning_widens_outward_on_the_grid(ctx: Ctx, quotes: Quotes) -> None:
    rule = HourlyLossLimitRule(HourlyLossLimitRuleConfig())
    proposed = quotes(("0.48", 10), ("0.52", 20))
    decision = rule.evaluate(proposed, ctx(hourly_pnl_units=dollars(-25)))
    out = decision.modified_quotes
    assert decision.action is RiskAction.MODIFY and out is not None
    # centre 0.50, half-spread 0.02 × 1.5 = 0.03
    assert price(out.yes_bid) == Decimal("0.47") and price(out.yes_ask) == Decimal("0.53")
    assert price(out.no_bid) == Decimal("0.47") and price(out.no_ask) == Decimal("0.53")
    assert out.is_complementary
    assert size(out.yes_bid) == 10 and size(out.yes_ask) == 20  # sizes untouched


def test_hourly_loss_warning_rounds_outward_onto_a_coarse_grid(ctx: Ctx, quotes: Quotes) -> None:
    rule = HourlyLossLimitRule(HourlyLossLimitRuleConfig(warning_spread_multiplier=Decimal("1.25")))
    proposed = quotes(("0.47", 10), ("0.52", 10))  # centre 0.495, half-spread 0.025 × 1.25 = 0.03125
    out = rule.evaluate(proposed, ctx(hourly_pnl_units=dollars(-40))).modified_quotes
    assert out is not None and out.yes_bid is not None and out.yes_ask is not None
    assert price(out.yes_bid) == Decimal("0.46")  # 0.46375 rounded down
    assert price(out.yes_ask) == Decimal("0.53")  # 0.52625 rounded up
    grid = TickGrid.linear_cent()
    assert all(grid.contains(q.price.units) for q in out.quotes())
    assert out.is_complementary


def test_hourly_loss_warning_uses_the_book_mid_for_a_one_sided_set(ctx: Ctx, quotes: Quotes) -> None:
    rule = HourlyLossLimitRule(HourlyLossLimitRuleConfig())
    context = ctx(hourly_pnl_units=dollars(-30), snapshot=make_snapshot("0.45", "0.55"))  # mid 0.50
    out = rule.evaluate(quotes(("0.48", 10), None), context).modified_quotes
    assert out is not None and price(out.yes_bid) == Decimal("0.47") and price(out.no_ask) == Decimal("0.53")
    assert out.yes_ask is None and out.no_bid is None


def test_hourly_loss_warning_blocks_when_widening_leaves_the_grid(ctx: Ctx, quotes: Quotes) -> None:
    rule = HourlyLossLimitRule(HourlyLossLimitRuleConfig(warning_spread_multiplier=Decimal(10)))
    decision = rule.evaluate(quotes(("0.01", 10), ("0.99", 10)), ctx(hourly_pnl_units=dollars(-30)))
    assert decision.action is RiskAction.BLOCK
    assert decision.reason is not None and "no quote left" in decision.reason


def test_hourly_loss_limit_is_capped_by_the_code_limit(ctx: Ctx, quotes: Quotes) -> None:
    config = HourlyLossLimitRuleConfig.model_construct(
        limit=MAX_HOURLY_LOSS + 30,
        action="kill_switch",
        warning_threshold=Decimal("0.5"),
        warning_spread_multiplier=Decimal("1.5"),
    )
    rule = HourlyLossLimitRule(config)
    assert rule.evaluate(quotes(), ctx(hourly_pnl_units=dollars("-49.9999"))).action is RiskAction.MODIFY
    decision = rule.evaluate(quotes(), ctx(hourly_pnl_units=-dollars(MAX_HOURLY_LOSS)))
    assert decision.action is RiskAction.BLOCK and decision.trigger_kill_switch


@given(st.integers(-dollars(60), dollars(60)), st.integers(1, 97), st.integers(1, 50))
def test_hourly_warning_never_tightens_and_keeps_no_quotes_complementary(pnl: int, bid: int, width: int) -> None:
    ask = min(bid + width, 99)
    proposed = make_quotes((f"0.{bid:02d}", 5), (f"0.{ask:02d}", 7))
    decision = HourlyLossLimitRule(HourlyLossLimitRuleConfig()).evaluate(proposed, make_context(hourly_pnl_units=pnl))
    if decision.action is not RiskAction.MODIFY:
        return
    out = decision.modified_quotes
    assert out is not None and out.is_complementary
    if out.yes_bid is not None:
        assert proposed.yes_bid is not None and out.yes_bid.price <= proposed.yes_bid.price
    if out.yes_ask is not None:
        assert proposed.yes_ask is not None and out.yes_ask.price >= proposed.yes_ask.price


# ------------------------------------------------------------------------------------ daily loss


@pytest.mark.parametrize(
    ("pnl", "blocked"), [("0", False), ("-99.9999", False), ("-100", True), ("-100.0001", True), ("-500", True)]
)
def test_daily_loss_limit_triggers_the_kill_switch(ctx: Ctx, quotes: Quotes, pnl: str, blocked: bool) -> None:
    decision = DailyLossLimitRule(DailyLossLimitRuleConfig()).evaluate(quotes(), ctx(daily_pnl_units=dollars(pnl)))
    if not blocked:
        assert decision is ALLOW
    else:
        assert decision.action is RiskAction.BLOCK and decision.trigger_kill_switch
        assert decision.reason is not None and decision.reason.startswith("daily loss $")


def test_daily_loss_has_no_soft_warning(ctx: Ctx, quotes: Quotes) -> None:
    rule = DailyLossLimitRule(DailyLossLimitRuleConfig())
    assert rule.evaluate(quotes(), ctx(daily_pnl_units=dollars(-90))) is ALLOW


def test_daily_loss_block_action(ctx: Ctx, quotes: Quotes) -> None:
    rule = DailyLossLimitRule(DailyLossLimitRuleConfig(limit=Decimal(40), action="block"))
    assert rule.evaluate(quotes(), ctx(daily_pnl_units=dollars("-39.9999"))) is ALLOW
    decision = rule.evaluate(quotes(), ctx(daily_pnl_units=dollars(-40)))
    assert decision.action is RiskAction.BLOCK and not decision.trigger_kill_switch
    assert decision.reason == "daily loss $40.00 reached the $40.00 limit: quoting blocked"


def test_daily_loss_limit_is_capped_by_the_code_limit(ctx: Ctx, quotes: Quotes) -> None:
    rule = DailyLossLimitRule(DailyLossLimitRuleConfig.model_construct(limit=MAX_DAILY_LOSS * 3, action="kill_switch"))
    assert rule.evaluate(quotes(), ctx(daily_pnl_units=dollars("-99.9999"))) is ALLOW
    assert rule.evaluate(quotes(), ctx(daily_pnl_units=-dollars(MAX_DAILY_LOSS))).trigger_kill_switch


def test_loss_rules_read_only_their_own_window(ctx: Ctx, quotes: Quotes) -> None:
    hourly = HourlyLossLimitRule(HourlyLossLimitRuleConfig())
    daily = DailyLossLimitRule(DailyLossLimitRuleConfig())
    assert hourly.evaluate(quotes(), ctx(daily_pnl_units=dollars(-200))) is ALLOW
    assert daily.evaluate(quotes(), ctx(hourly_pnl_units=dollars(-200))) is ALLOW


# ------------------------------------------------------------------------------------ drawdown


@pytest.mark.parametrize(("drawdown", "blocked"), [("0", False), ("74.9999", False), ("75", True), ("75.0001", True)])
def test_drawdown_thresholds(ctx: Ctx, quotes: Quotes, drawdown: str, blocked: bool) -> None:
    decision = DrawdownRule(DrawdownRuleConfig()).evaluate(quotes(), ctx(drawdown_units=dollars(drawdown)))
    assert (decision.action is RiskAction.BLOCK) is blocked
    assert decision.trigger_kill_switch is blocked


def test_drawdown_block_action_and_reason(ctx: Ctx, quotes: Quotes) -> None:
    rule = DrawdownRule(DrawdownRuleConfig(action="block"))
    decision = rule.evaluate(quotes(), ctx(drawdown_units=dollars("80.5")))
    assert decision.action is RiskAction.BLOCK and not decision.trigger_kill_switch
    assert decision.reason == "drawdown $80.50 from the PnL peak reached the $75.00 limit: quoting blocked"
