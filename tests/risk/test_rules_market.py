"""Market-condition rules (FR-511, RCR-102): high volatility, wide or one-sided spread, stale data."""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal

import pytest

from mm.domain.market import NEVER_UPDATED_US
from mm.domain.quotes import QuoteSet
from mm.domain.ticks import TickGrid
from mm.risk.base import ALLOW, RiskAction, RiskContext
from mm.risk.rules.market import HighVolatilityRule, StaleDataRule, WideSpreadRule, mid_units
from mm.specs.risk import HighVolatilityRuleConfig, StaleDataRuleConfig, WideSpreadRuleConfig
from tests.risk.builders import NOW_US, make_snapshot, price, raw_snapshot, size

Ctx = Callable[..., RiskContext]
Quotes = Callable[..., QuoteSet]

# ------------------------------------------------------------------------------------ high volatility


def vol_rule(**fields: object) -> HighVolatilityRule:
    return HighVolatilityRule(HighVolatilityRuleConfig.model_validate(fields))


def test_volatility_at_the_threshold_is_allowed(ctx: Ctx, quotes: Quotes) -> None:
    rule = vol_rule(normal_volatility=Decimal("0.01"))  # trips above 2 × 0.01
    assert rule.evaluate(quotes(), ctx(volatility=0.02)) is ALLOW
    assert rule.evaluate(quotes(), ctx(volatility=0.0199)) is ALLOW


def test_high_volatility_widens_and_shrinks(ctx: Ctx, quotes: Quotes) -> None:
    rule = vol_rule(normal_volatility=Decimal("0.01"))
    decision = rule.evaluate(quotes(("0.48", 10), ("0.52", 30)), ctx(volatility=0.0201))
    out = decision.modified_quotes
    assert decision.action is RiskAction.MODIFY and out is not None
    assert price(out.yes_bid) == Decimal("0.47") and price(out.yes_ask) == Decimal("0.53")
    assert size(out.yes_bid) == 5 and size(out.yes_ask) == 15
    assert out.is_complementary
    assert decision.reason == "volatility 0.0201 above 2× normal 0.01 per √s: spreads ×1.5, sizes ×0.5"
    assert not decision.trigger_kill_switch


def test_high_volatility_block_action(ctx: Ctx, quotes: Quotes) -> None:
    decision = vol_rule(normal_volatility=Decimal("0.01"), action="block").evaluate(quotes(), ctx(volatility=0.05))
    assert decision.action is RiskAction.BLOCK and not decision.trigger_kill_switch
    assert decision.reason is not None and decision.reason.endswith("quoting blocked")


def test_learned_normal_volatility_is_used_when_not_configured(ctx: Ctx, quotes: Quotes) -> None:
    rule = vol_rule()
    assert rule.evaluate(quotes(), ctx(volatility=0.01, normal_volatility=0.005)) is ALLOW
    assert rule.evaluate(quotes(), ctx(volatility=0.0101, normal_volatility=0.005)).action is RiskAction.MODIFY


def test_configured_normal_volatility_wins_over_the_learned_one(ctx: Ctx, quotes: Quotes) -> None:
    rule = vol_rule(normal_volatility=Decimal("0.01"))
    assert rule.evaluate(quotes(), ctx(volatility=0.015, normal_volatility=0.001)) is ALLOW


@pytest.mark.parametrize("normal", [None, 0.0, -1.0, math.nan])
def test_unknown_normal_volatility_allows(ctx: Ctx, quotes: Quotes, normal: float | None) -> None:
    assert vol_rule().evaluate(quotes(), ctx(volatility=10.0, normal_volatility=normal)) is ALLOW


def test_nan_volatility_counts_as_high(ctx: Ctx, quotes: Quotes) -> None:
    decision = vol_rule(normal_volatility=Decimal("0.01")).evaluate(quotes(), ctx(volatility=math.nan))
    assert decision.action is RiskAction.MODIFY


def test_high_volatility_blocks_when_shrinking_leaves_nothing(ctx: Ctx, quotes: Quotes) -> None:
    decision = vol_rule(normal_volatility=Decimal("0.01")).evaluate(
        quotes(("0.48", "0.01"), ("0.52", "0.01")), ctx(volatility=1.0)
    )
    assert decision.action is RiskAction.BLOCK
    assert decision.reason is not None and "no quote left" in decision.reason


# ------------------------------------------------------------------------------------ wide spread


def spread_rule(**fields: object) -> WideSpreadRule:
    return WideSpreadRule(WideSpreadRuleConfig.model_validate(fields))


@pytest.mark.parametrize(
    ("bid", "ask", "reason"),
    [
        ("0.45", None, "book is one-sided: no ask"),
        (None, "0.55", "book is one-sided: no bid"),
        (None, None, "book is empty: no bid and no ask"),
    ],
)
def test_one_sided_book_blocks(ctx: Ctx, quotes: Quotes, bid: str | None, ask: str | None, reason: str) -> None:
    decision = spread_rule().evaluate(quotes(), ctx(snapshot=make_snapshot(bid, ask)))
    assert decision.action is RiskAction.BLOCK
    assert decision.reason == reason


def test_without_a_known_normal_only_a_broken_book_blocks(ctx: Ctx, quotes: Quotes) -> None:
    assert spread_rule().evaluate(quotes(), ctx(snapshot=make_snapshot("0.05", "0.95"))) is ALLOW


@pytest.mark.parametrize(("bid", "ask"), [(5500, 5000), (5000, 5000)])
def test_crossed_or_locked_book_blocks(ctx: Ctx, quotes: Quotes, bid: int, ask: int) -> None:
    decision = spread_rule().evaluate(quotes(), ctx(snapshot=raw_snapshot(bid, ask)))
    assert decision.action is RiskAction.BLOCK
    assert decision.reason is not None and "crossed" in decision.reason


def test_max_spread_ceiling(ctx: Ctx, quotes: Quotes) -> None:
    rule = spread_rule(max_spread=Decimal("0.10"))
    assert rule.evaluate(quotes(), ctx(snapshot=make_snapshot("0.45", "0.55"))) is ALLOW
    assert rule.evaluate(quotes(), ctx(snapshot=raw_snapshot(4500, 5499))) is ALLOW
    decision = rule.evaluate(quotes(), ctx(snapshot=raw_snapshot(4500, 5501)))
    assert decision.action is RiskAction.BLOCK
    assert decision.reason == "book spread $0.1001 above the $0.10 maximum"
    deci = make_snapshot("0.450", "0.551", grid=TickGrid.deci_cent())
    assert rule.evaluate(quotes(), ctx(snapshot=deci)).action is RiskAction.BLOCK


def test_learned_normal_spread_times_the_multiplier(ctx: Ctx, quotes: Quotes) -> None:
    rule = spread_rule()  # 3 × normal
    assert rule.evaluate(quotes(), ctx(snapshot=raw_snapshot(4500, 5400), normal_spread_units=300)) is ALLOW
    decision = rule.evaluate(quotes(), ctx(snapshot=raw_snapshot(4500, 5401), normal_spread_units=300))
    assert decision.action is RiskAction.BLOCK
    assert decision.reason == "book spread $0.0901 above 3× normal ($0.09)"


def test_fractional_multiplier_is_compared_exactly(ctx: Ctx, quotes: Quotes) -> None:
    rule = spread_rule(threshold_multiplier=Decimal("2.5"))  # 2.5 × 333 = 832.5
    assert rule.evaluate(quotes(), ctx(snapshot=raw_snapshot(4000, 4832), normal_spread_units=333)) is ALLOW
    blocked = rule.evaluate(quotes(), ctx(snapshot=raw_snapshot(4000, 4833), normal_spread_units=333))
    assert blocked.action is RiskAction.BLOCK


def test_configured_normal_spread_wins_over_the_learned_one(ctx: Ctx, quotes: Quotes) -> None:
    rule = spread_rule(normal_spread=Decimal("0.02"))  # ceiling 0.06
    assert rule.evaluate(quotes(), ctx(snapshot=raw_snapshot(4500, 5100), normal_spread_units=1000)) is ALLOW
    decision = rule.evaluate(quotes(), ctx(snapshot=raw_snapshot(4500, 5101), normal_spread_units=1000))
    assert decision.action is RiskAction.BLOCK


def test_mid_units() -> None:
    assert mid_units(make_snapshot("0.45", "0.55")) == 5000
    assert mid_units(raw_snapshot(4501, 4502)) == 4501  # floored
    assert mid_units(make_snapshot("0.45", None)) is None


# ------------------------------------------------------------------------------------ stale data


@pytest.mark.parametrize(
    ("age_us", "reason"),
    [
        (0, None),
        (-2_000_000, None),  # clock skew: fresh
        (4_999_999, None),
        (5_000_000, None),  # exactly the maximum is still fresh
        (5_000_001, "market data 5.000001 s old (max 5 s)"),
        (7_200_000, "market data 7.2 s old (max 5 s)"),
    ],
)
def test_stale_data_threshold(ctx: Ctx, quotes: Quotes, age_us: int, reason: str | None) -> None:
    snap = make_snapshot(last_update_us=NOW_US - age_us)
    decision = StaleDataRule(StaleDataRuleConfig()).evaluate(quotes(), ctx(snapshot=snap, now_us=NOW_US))
    if reason is None:
        assert decision is ALLOW
    else:
        assert decision.action is RiskAction.BLOCK and decision.reason == reason


def test_never_updated_book_is_stale(ctx: Ctx, quotes: Quotes) -> None:
    snap = make_snapshot(last_update_us=NEVER_UPDATED_US)
    assert not snap.has_data
    decision = StaleDataRule(StaleDataRuleConfig()).evaluate(quotes(), ctx(snapshot=snap))
    assert decision.action is RiskAction.BLOCK and decision.reason == "no market data received yet"


def test_fractional_max_age(ctx: Ctx, quotes: Quotes) -> None:
    rule = StaleDataRule(StaleDataRuleConfig(max_age_seconds=Decimal("0.5")))
    assert rule.evaluate(quotes(), ctx(snapshot=make_snapshot(last_update_us=NOW_US - 500_000))) is ALLOW
    late = rule.evaluate(quotes(), ctx(snapshot=make_snapshot(last_update_us=NOW_US - 500_001)))
    assert late.reason == "market data 0.500001 s old (max 0.5 s)"
