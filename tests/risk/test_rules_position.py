"""Position limit rules (FR-501, FR-511, RCR-101/102) and the built-in rule registry."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mm.domain.limits import MAX_ORDER_SIZE, MAX_POSITION_PER_MARKET
from mm.domain.price import Price, Quantity
from mm.domain.quotes import Quote, QuoteSet
from mm.domain.sides import OrderSide, Side
from mm.risk.base import ALLOW, RiskAction, RiskContext, RiskRule
from mm.risk.quote_ops import DIRECTION, SLOT_NAMES, max_fill_units
from mm.risk.rules import BUILTIN_RULES, build_builtin
from mm.risk.rules.position import (
    MaxInventoryRule,
    MaxNotionalRule,
    MaxOrderSizeRule,
    MaxPositionPerSideRule,
    _fill,
    contracts_text,
    dollars_text,
)
from mm.specs.risk import (
    MaxInventoryRuleConfig,
    MaxNotionalRuleConfig,
    MaxOrderSizeRuleConfig,
    MaxPositionPerSideRuleConfig,
    Rules,
    StaleDataRuleConfig,
)
from tests.risk.builders import MARKET, NOW_US, contracts, dollars, make_context, make_quotes, size

Ctx = Callable[..., RiskContext]
Quotes = Callable[..., QuoteSet]


def inventory_rule(limit: int = 100, action: str = "block", **extra: object) -> MaxInventoryRule:
    # warning_threshold 1 keeps the soft limit out of the hard-limit tests (it never fires below the limit)
    fields: dict[str, object] = {"limit": Decimal(limit), "action": action, "warning_threshold": Decimal(1)}
    fields.update(extra)
    return MaxInventoryRule(MaxInventoryRuleConfig.model_validate(fields))


def quote(slot: str, p: str, n: str | int) -> Quote:
    side = Side.YES if slot.startswith("yes") else Side.NO
    order_side = OrderSide.BUY if slot.endswith("bid") else OrderSide.SELL
    return Quote(side, order_side, Price.from_decimal(p), Quantity(contracts(n)))


def only(**slots: Quote) -> QuoteSet:
    return QuoteSet(
        MARKET, NOW_US, slots.get("yes_bid"), slots.get("yes_ask"), slots.get("no_bid"), slots.get("no_ask")
    )


# ------------------------------------------------------------------------------------ text helpers


def test_reason_amounts_are_exact_contracts_and_dollars() -> None:
    assert contracts_text(85000) == "850"
    assert contracts_text(1050) == "10.50"
    assert contracts_text(-85001) == "-850.01"
    assert dollars_text(500000) == "$50.00"
    assert dollars_text(12345) == "$1.2345"
    assert dollars_text(-250) == "-$0.0250"


# ------------------------------------------------------------------------------------ max_inventory


def test_max_inventory_allows_a_fill_that_reaches_the_limit_exactly(ctx: Ctx, quotes: Quotes) -> None:
    rule = inventory_rule()
    assert rule.evaluate(quotes(("0.48", 10), ("0.52", 10)), ctx(inventory_units=contracts(90))) is ALLOW
    assert rule.evaluate(quotes(("0.48", "9.99"), ("0.52", 10)), ctx(inventory_units=contracts(90))) is ALLOW


def test_max_inventory_block_drops_only_the_direction_that_would_pass_the_limit(ctx: Ctx, quotes: Quotes) -> None:
    rule = inventory_rule()
    decision = rule.evaluate(quotes(("0.48", "10.01"), ("0.52", 10)), ctx(inventory_units=contracts(90)))
    assert decision.action is RiskAction.MODIFY
    out = decision.modified_quotes
    assert out is not None
    assert out.yes_bid is None and out.no_ask is None
    assert size(out.yes_ask) == 10 and size(out.no_bid) == 10
    assert decision.reason is not None
    assert "90 + 10.01" in decision.reason and "100-contract limit" in decision.reason
    assert "YES bid/NO ask dropped" in decision.reason


def test_max_inventory_modify_caps_at_the_remaining_capacity(ctx: Ctx, quotes: Quotes) -> None:
    rule = inventory_rule(action="modify")
    decision = rule.evaluate(quotes(("0.48", 15), ("0.52", 15)), ctx(inventory_units=contracts(90)))
    out = decision.modified_quotes
    assert decision.action is RiskAction.MODIFY and out is not None
    assert size(out.yes_bid) == 10 and size(out.no_ask) == 10
    assert size(out.yes_ask) == 15  # selling brings a long position back: untouched
    assert out.is_complementary
    assert decision.reason is not None and "capped at 10" in decision.reason


def test_max_inventory_short_inventory_limits_the_selling_side(ctx: Ctx, quotes: Quotes) -> None:
    rule = inventory_rule(action="modify")
    short = ctx(inventory_units=contracts(-90))
    assert rule.evaluate(quotes(("0.48", 190), ("0.52", 10)), short) is ALLOW  # buying YES first closes the short
    decision = rule.evaluate(quotes(("0.48", "190.01"), ("0.52", "10.01")), short)
    out = decision.modified_quotes
    assert out is not None
    assert size(out.yes_bid) == 190 and size(out.no_ask) == 190
    assert size(out.yes_ask) == 10 and size(out.no_bid) == 10


def test_max_inventory_blocks_when_no_quote_is_left(ctx: Ctx, quotes: Quotes) -> None:
    decision = inventory_rule().evaluate(quotes(("0.48", 150), ("0.52", 150)), ctx())
    assert decision.action is RiskAction.BLOCK
    assert decision.trigger_kill_switch is False
    assert decision.reason is not None and "no quote left" in decision.reason


def test_max_inventory_modify_drops_a_direction_with_no_capacity(ctx: Ctx, quotes: Quotes) -> None:
    decision = inventory_rule(action="modify").evaluate(quotes(), ctx(inventory_units=contracts(100)))
    out = decision.modified_quotes
    assert out is not None and out.yes_bid is None and out.no_ask is None and size(out.yes_ask) == 10


def test_max_inventory_netting_counts_the_yes_bid_and_no_ask_once(ctx: Ctx) -> None:
    both = only(yes_bid=quote("yes_bid", "0.48", 60), no_ask=quote("no_ask", "0.52", 60))
    rule = inventory_rule()
    assert rule.evaluate(both, ctx(netting=True)) is ALLOW
    dropped = rule.evaluate(both, ctx(netting=False))  # two orders on a non-netting venue: 120 > 100
    assert dropped.action is RiskAction.BLOCK
    capped = inventory_rule(action="modify").evaluate(both, ctx(netting=False))
    out = capped.modified_quotes
    assert out is not None
    assert size(out.yes_bid) == 60 and size(out.no_ask) == 40  # capacity handed out in slot order
    assert max_fill_units(out, 1, netting=False) == contracts(100)


@pytest.mark.parametrize(
    ("inventory", "adding", "reducing"), [("800", "yes_bid", "yes_ask"), ("-850", "yes_ask", "yes_bid")]
)
def test_position_warning_halves_only_the_adding_sizes(
    ctx: Ctx, quotes: Quotes, inventory: str, adding: str, reducing: str
) -> None:
    rule = MaxInventoryRule(MaxInventoryRuleConfig())  # 1000 contracts, warning at 80 %, sizes × 0.5
    decision = rule.evaluate(quotes(("0.48", 100), ("0.52", 100)), ctx(inventory_units=contracts(inventory)))
    out = decision.modified_quotes
    assert decision.action is RiskAction.MODIFY and out is not None
    assert size(getattr(out, adding)) == 50
    assert size(getattr(out, reducing)) == 100
    assert out.is_complementary  # the NO quotes follow their YES complements
    assert decision.reason == (
        f"inventory {inventory.lstrip('+')} of 1000 contracts: "
        f"{'YES bid/NO ask' if adding == 'yes_bid' else 'YES ask/NO bid'} sizes ×0.5 (position warning at 80%)"
    )


def test_position_warning_starts_exactly_at_80_percent(ctx: Ctx, quotes: Quotes) -> None:
    rule = MaxInventoryRule(MaxInventoryRuleConfig())
    assert rule.evaluate(quotes(("0.48", 100), ("0.52", 100)), ctx(inventory_units=contracts("799.99"))) is ALLOW
    assert rule.evaluate(quotes(), ctx(inventory_units=contracts(800))).action is RiskAction.MODIFY


def test_position_warning_leaves_a_set_without_adding_quotes_alone(ctx: Ctx, quotes: Quotes) -> None:
    rule = MaxInventoryRule(MaxInventoryRuleConfig())
    assert rule.evaluate(quotes(None, ("0.52", 100)), ctx(inventory_units=contracts(900))) is ALLOW


def test_position_warning_applies_before_the_hard_limit(ctx: Ctx, quotes: Quotes) -> None:
    long850 = ctx(inventory_units=contracts(850))
    blocking = MaxInventoryRule(MaxInventoryRuleConfig())
    kept = blocking.evaluate(quotes(("0.48", 300), ("0.52", 10)), long850).modified_quotes
    assert kept is not None and size(kept.yes_bid) == 150  # 300 halved fits exactly: 850 + 150 = 1000
    over = blocking.evaluate(quotes(("0.48", 400), ("0.52", 10)), long850)
    assert over.modified_quotes is not None and over.modified_quotes.yes_bid is None
    assert over.reason is not None and "position warning" in over.reason and "dropped" in over.reason
    capping = MaxInventoryRule(MaxInventoryRuleConfig(action="modify"))
    capped = capping.evaluate(quotes(("0.48", 400), ("0.52", 10)), long850).modified_quotes
    assert capped is not None and size(capped.yes_bid) == 150


def test_max_inventory_enforces_the_hard_limit_over_a_higher_config(ctx: Ctx, quotes: Quotes) -> None:
    config = MaxInventoryRuleConfig.model_construct(
        limit=MAX_POSITION_PER_MARKET * 2,
        action="block",
        warning_threshold=Decimal(1),
        warning_size_multiplier=Decimal(1),
    )
    rule = MaxInventoryRule(config)
    long990 = ctx(inventory_units=contracts(990))
    assert rule.evaluate(quotes(("0.48", 10), None), long990) is ALLOW
    assert rule.evaluate(quotes(("0.48", "10.01"), None), long990).action is RiskAction.BLOCK


directions = st.sampled_from((1, -1))
sizes = st.integers(0, contracts(1500))


@st.composite
def quote_sets(draw: st.DrawFn) -> QuoteSet:
    bid = draw(st.integers(1, 98))
    ask = draw(st.integers(bid + 1, 99))
    return make_quotes((f"0.{bid:02d}", Decimal(draw(sizes)) / 100), (f"0.{ask:02d}", Decimal(draw(sizes)) / 100))


@given(
    quote_sets(), st.integers(-contracts(1200), contracts(1200)), st.booleans(), st.sampled_from(("block", "modify"))
)
def test_max_inventory_output_never_lets_a_fill_pass_the_limit(
    qs: QuoteSet, inventory: int, netting: bool, action: str
) -> None:
    rule = MaxInventoryRule(MaxInventoryRuleConfig.model_validate({"action": action}))
    context = make_context(inventory_units=inventory, netting=netting)
    decision = rule.evaluate(qs, context)
    out = qs if decision.action is RiskAction.ALLOW else decision.modified_quotes
    if decision.action is RiskAction.BLOCK:
        return
    assert out is not None
    for sign in (1, -1):
        added = max_fill_units(out, sign, netting=netting)
        assert added == 0 or sign * inventory + added <= contracts(1000)
    for name in SLOT_NAMES:  # quotes only ever shrink or disappear
        before, after = getattr(qs, name), getattr(out, name)
        assert after is None or (before is not None and after.price == before.price and after.size <= before.size)
        if abs(inventory) < contracts(800) or (before is not None and DIRECTION[name] * inventory < 0):
            # no warning, or a reducing quote: only the hard limit may touch it
            capacity = contracts(1000) - DIRECTION[name] * inventory
            if before is not None and max_fill_units(qs, DIRECTION[name], netting=netting) <= capacity:
                assert after == before


@given(quote_sets(), st.booleans(), directions)
def test_inline_fill_matches_max_fill_units(qs: QuoteSet, netting: bool, sign: int) -> None:
    a, b = (qs.yes_bid, qs.no_ask) if sign > 0 else (qs.yes_ask, qs.no_bid)
    assert _fill(a, b, netting) == max_fill_units(qs, sign, netting=netting)


# ------------------------------------------------------------------------------------ max_position_per_side


def per_side(limit: int = 100, action: str = "block") -> MaxPositionPerSideRule:
    return MaxPositionPerSideRule(
        MaxPositionPerSideRuleConfig.model_validate({"limit": Decimal(limit), "action": action})
    )


def test_per_side_netting_follows_the_net_position(ctx: Ctx, quotes: Quotes) -> None:
    rule = per_side()
    flat = ctx()
    assert rule.evaluate(quotes(("0.48", 100), ("0.52", 100)), flat) is ALLOW
    over = rule.evaluate(quotes(("0.48", "100.01"), ("0.52", 100)), flat)
    assert over.modified_quotes is not None and over.modified_quotes.yes_bid is None
    assert over.modified_quotes.no_ask is None and size(over.modified_quotes.yes_ask) == 100
    short50 = ctx(inventory_units=contracts(-50), no_units=contracts(50))
    assert rule.evaluate(quotes(("0.48", 150), ("0.52", 50)), short50) is ALLOW  # closes 50 NO, then 100 YES
    blocked = rule.evaluate(quotes(("0.48", "150.01"), ("0.52", "50.01")), short50)
    assert blocked.action is RiskAction.BLOCK
    assert blocked.reason is not None and "NO position 50 could reach 100.01 of 100" in blocked.reason


def test_per_side_netting_modify_caps(ctx: Ctx, quotes: Quotes) -> None:
    decision = per_side(action="modify").evaluate(
        quotes(("0.48", 30), ("0.52", 200)), ctx(inventory_units=contracts(80), yes_units=contracts(80))
    )
    out = decision.modified_quotes
    assert out is not None
    assert size(out.yes_bid) == 20 and size(out.no_ask) == 20  # YES 80 + 20 = 100
    assert size(out.yes_ask) == 180 and size(out.no_bid) == 180  # sells 80 YES, then 100 NO
    assert out.is_complementary


def test_per_side_non_netting_checks_each_side_separately(ctx: Ctx) -> None:
    rule = per_side()
    holdings = ctx(netting=False, inventory_units=contracts(-10), yes_units=contracts(90), no_units=contracts(100))
    buys_yes = only(yes_bid=quote("yes_bid", "0.48", 10))
    assert rule.evaluate(buys_yes, holdings) is ALLOW  # 90 + 10 YES: the NO held does not net against it
    assert rule.evaluate(only(yes_bid=quote("yes_bid", "0.48", "10.01")), holdings).action is RiskAction.BLOCK
    sells = only(yes_ask=quote("yes_ask", "0.52", 500), no_ask=quote("no_ask", "0.60", 500))
    assert rule.evaluate(sells, holdings) is ALLOW  # selling never adds to a side
    buys_no = only(yes_bid=quote("yes_bid", "0.48", 5), no_bid=quote("no_bid", "0.40", "0.01"))
    decision = rule.evaluate(buys_no, holdings)
    assert decision.modified_quotes is not None
    assert decision.modified_quotes.no_bid is None and size(decision.modified_quotes.yes_bid) == 5
    assert decision.reason is not None and "NO holdings 100 + 0.01" in decision.reason


def test_per_side_non_netting_modify_caps_each_bid_at_its_room(ctx: Ctx) -> None:
    holdings = ctx(netting=False, inventory_units=0, yes_units=contracts(70), no_units=contracts(70))
    both = only(yes_bid=quote("yes_bid", "0.48", 50), no_bid=quote("no_bid", "0.40", 20))
    out = per_side(action="modify").evaluate(both, holdings).modified_quotes
    assert out is not None and size(out.yes_bid) == 30 and size(out.no_bid) == 20


def test_per_side_enforces_the_hard_limit_over_a_higher_config(ctx: Ctx, quotes: Quotes) -> None:
    rule = MaxPositionPerSideRule(
        MaxPositionPerSideRuleConfig.model_construct(limit=MAX_POSITION_PER_MARKET + 1, action="block")
    )
    assert rule.evaluate(quotes(("0.48", 1000), None), ctx()) is ALLOW
    assert rule.evaluate(quotes(("0.48", "1000.01"), None), ctx()).action is RiskAction.BLOCK


# ------------------------------------------------------------------------------------ max_order_size


def test_max_order_size_modify_caps_every_oversized_quote(ctx: Ctx, quotes: Quotes) -> None:
    rule = MaxOrderSizeRule(MaxOrderSizeRuleConfig())  # 500, modify
    assert rule.evaluate(quotes(("0.48", 500), ("0.52", 500)), ctx()) is ALLOW
    decision = rule.evaluate(quotes(("0.48", "500.01"), ("0.52", 499)), ctx())
    out = decision.modified_quotes
    assert decision.action is RiskAction.MODIFY and out is not None
    assert size(out.yes_bid) == 500 and size(out.no_ask) == 500
    assert size(out.yes_ask) == 499
    assert decision.reason is not None and "capped at 500 contracts" in decision.reason


def test_max_order_size_block_drops_oversized_quotes(ctx: Ctx, quotes: Quotes) -> None:
    rule = MaxOrderSizeRule(MaxOrderSizeRuleConfig(limit=Decimal(100), action="block"))
    assert rule.evaluate(quotes(("0.48", 100), ("0.52", "99.99")), ctx()) is ALLOW
    decision = rule.evaluate(quotes(("0.48", "100.01"), ("0.52", 100)), ctx())
    out = decision.modified_quotes
    assert out is not None and out.yes_bid is None and out.no_ask is None and size(out.yes_ask) == 100
    assert rule.evaluate(quotes(("0.48", 101), ("0.52", 101)), ctx()).action is RiskAction.BLOCK


@pytest.mark.parametrize("action", ["block", "modify"])
def test_max_order_size_always_caps_at_the_code_limit(
    ctx: Ctx, quotes: Quotes, action: Literal["block", "modify"]
) -> None:
    # A config above MAX_ORDER_SIZE cannot pass admission; build one anyway to show the code-level cap.
    config = MaxOrderSizeRuleConfig.model_construct(limit=MAX_ORDER_SIZE + 300, action=action)
    rule = MaxOrderSizeRule(config)
    assert rule.evaluate(quotes(("0.48", 500), None), ctx()) is ALLOW
    decision = rule.evaluate(quotes(("0.48", 600), ("0.52", 900)), ctx())
    out = decision.modified_quotes
    assert out is not None
    assert size(out.yes_bid) == 500  # within the configured 800 but over the hard 500: capped
    if action == "block":
        assert out.yes_ask is None  # above the configured limit: dropped
    else:
        assert size(out.yes_ask) == 500


# ------------------------------------------------------------------------------------ max_notional


def notional(limit: str = "500", action: str = "block") -> MaxNotionalRule:
    return MaxNotionalRule(MaxNotionalRuleConfig.model_validate({"limit": Decimal(limit), "action": action}))


def test_max_notional_allows_a_fill_up_to_the_limit(ctx: Ctx, quotes: Quotes) -> None:
    rule = notional()
    # YES bid 0.50 × 1000 = $500; YES ask 0.60 × 1000 while flat = NO bought at 0.40: $400
    assert rule.evaluate(quotes(("0.50", 1000), ("0.60", 1000)), ctx()) is ALLOW
    decision = rule.evaluate(quotes(("0.50", "1000.01"), ("0.60", 1000)), ctx())
    out = decision.modified_quotes
    assert decision.action is RiskAction.MODIFY and out is not None
    assert out.yes_bid is None and out.no_ask is None and size(out.yes_ask) == 1000
    assert decision.reason is not None and "$500.00 limit" in decision.reason and "$500.0050" in decision.reason


def test_max_notional_counts_the_existing_exposure(ctx: Ctx, quotes: Quotes) -> None:
    rule = notional()
    held = ctx(inventory_units=contracts(200), notional_units=dollars(100))
    assert rule.evaluate(quotes(("0.50", 800), None), held) is ALLOW
    assert rule.evaluate(quotes(("0.50", "800.01"), None), held).action is RiskAction.BLOCK


def test_max_notional_modify_shrinks_to_the_largest_size_that_fits(ctx: Ctx, quotes: Quotes) -> None:
    decision = notional(action="modify").evaluate(
        quotes(("0.48", 10), ("0.60", 150)), ctx(inventory_units=contracts(100), notional_units=dollars(490))
    )
    out = decision.modified_quotes
    assert out is not None
    # selling closes the 100 long first, the other 50 buy NO at $0.40: room for $10 → 25 contracts
    assert size(out.yes_ask) == 125 and size(out.no_bid) == 125
    # the YES bid costs 0.48 × 10 = $4.80 and fits
    assert size(out.yes_bid) == 10


def test_max_notional_reducing_quotes_pass_even_over_the_limit(ctx: Ctx, quotes: Quotes) -> None:
    over = ctx(inventory_units=contracts(1000), notional_units=dollars(600))
    rule = notional()
    assert rule.evaluate(quotes(None, ("0.60", 1000)), over) is ALLOW
    assert rule.evaluate(quotes(("0.10", 1), None), over).action is RiskAction.BLOCK
    decision = rule.evaluate(quotes(("0.10", 1), ("0.60", 1000)), over)
    assert decision.modified_quotes is not None and decision.modified_quotes.yes_bid is None


def test_max_notional_non_netting_adds_the_costs(ctx: Ctx) -> None:
    bids = only(yes_bid=quote("yes_bid", "0.50", 600), no_bid=quote("no_bid", "0.40", 600))  # $300 + $240
    assert notional().evaluate(bids, ctx(netting=True)) is ALLOW
    dropped = notional().evaluate(bids, ctx(netting=False)).modified_quotes
    assert dropped is not None and size(dropped.yes_bid) == 600 and dropped.no_bid is None
    shrunk = notional(action="modify").evaluate(bids, ctx(netting=False)).modified_quotes
    assert shrunk is not None and size(shrunk.yes_bid) == 600 and size(shrunk.no_bid) == 500  # $200 left at $0.40


def test_max_notional_non_netting_ask_costs_only_beyond_the_holdings(ctx: Ctx) -> None:
    sell = only(yes_ask=quote("yes_ask", "0.50", 1100))
    holds = ctx(netting=False, yes_units=contracts(100), notional_units=dollars(0))
    assert notional().evaluate(sell, holds) is ALLOW  # 1000 beyond the holdings at $0.50 = $500
    assert notional().evaluate(sell, ctx(netting=False)).action is RiskAction.BLOCK


@given(quote_sets(), st.integers(-contracts(1000), contracts(1000)), st.integers(0, dollars(600)), st.booleans())
def test_max_notional_modify_output_fits_the_budget(qs: QuoteSet, inventory: int, held: int, netting: bool) -> None:
    rule = notional(action="modify")
    context = make_context(inventory_units=inventory, notional_units=held, netting=netting)
    decision = rule.evaluate(qs, context)
    if decision.action is RiskAction.BLOCK:
        return
    out = qs if decision.action is RiskAction.ALLOW else decision.modified_quotes
    assert out is not None
    costs = []
    for name in SLOT_NAMES:
        q = getattr(out, name)
        if q is None:
            continue
        _closing, adding, per_contract = MaxNotionalRule._split(name, q, context)
        costs.append(per_contract * adding // 100)
        if adding:
            assert held + per_contract * adding // 100 <= dollars(500)
    if not netting:
        assert sum(costs) == 0 or held + sum(costs) <= dollars(500)


# ------------------------------------------------------------------------------------ registry


def test_builtin_rules_are_exactly_the_configurable_ones() -> None:
    assert tuple(BUILTIN_RULES) == tuple(Rules.model_fields)
    for name, cls in BUILTIN_RULES.items():
        assert cls.name == name
        assert issubclass(cls, RiskRule)


def test_build_builtin_builds_every_default_rule() -> None:
    defaults = Rules()
    for name in BUILTIN_RULES:
        rule = build_builtin(name, getattr(defaults, name))
        assert type(rule) is BUILTIN_RULES[name]
        assert rule.name == name
        assert rule.evaluate(make_quotes(), make_context()).action is RiskAction.ALLOW


def test_build_builtin_refuses_unknown_names_and_mismatched_configs() -> None:
    with pytest.raises(ValueError, match="unknown built-in risk rule 'nope'"):
        build_builtin("nope", StaleDataRuleConfig())
    with pytest.raises(TypeError, match="MaxInventoryRuleConfig"):
        build_builtin("max_inventory", StaleDataRuleConfig())


@given(quote_sets(), st.integers(-contracts(1000), contracts(1000)), st.integers(0, dollars(600)), st.booleans())
def test_max_notional_fast_check_agrees_with_the_full_one(
    qs: QuoteSet, inventory: int, held: int, netting: bool
) -> None:
    rule = notional()
    context = make_context(
        inventory_units=inventory,
        notional_units=held,
        netting=netting,
        yes_units=max(inventory, 0),
        no_units=max(-inventory, 0),
    )
    assert rule._fits(qs, context) is (rule._enforce(qs, context) is ALLOW)
