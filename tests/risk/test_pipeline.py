"""The rule pipeline: order, first BLOCK stops, MODIFY chains, fail-safe on exceptions."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mm.domain.price import Quantity
from mm.domain.quotes import QuoteSet
from mm.risk.base import ALLOW, RiskAction, RiskContext, RiskDecision, RiskRule, block, modify
from mm.risk.pipeline import RiskPipeline
from tests.risk.builders import make_context, near_half


class Recorder(RiskRule):
    """Records that it ran, then returns a fixed verdict."""

    def __init__(self, name: str, verdict: str = "allow", *, log: list[str]) -> None:
        super().__init__()
        self.name = name
        self.verdict = verdict
        self.log = log

    def evaluate(self, proposed_quotes: QuoteSet, context: RiskContext) -> RiskDecision:
        self.log.append(self.name)
        if self.verdict == "block":
            return block(f"{self.name} says no")
        if self.verdict == "kill":
            return block(f"{self.name} loss limit", kill_switch=True)
        if self.verdict == "halve":
            assert proposed_quotes.yes_bid is not None
            bid = replace(proposed_quotes.yes_bid, size=Quantity(proposed_quotes.yes_bid.size.units // 2))
            return modify(replace(proposed_quotes, yes_bid=bid), "halved the bid")
        return ALLOW


class Exploding(RiskRule):
    name = "exploding"

    def evaluate(self, proposed_quotes: QuoteSet, context: RiskContext) -> RiskDecision:
        raise ZeroDivisionError("division by zero in a custom rule")


def test_rules_run_in_order_and_all_allow() -> None:
    log: list[str] = []
    pipeline = RiskPipeline([Recorder(n, log=log) for n in ("a", "b", "c")])
    qs = near_half()
    result = pipeline.evaluate(qs, make_context())
    assert log == ["a", "b", "c"]
    assert result.quotes is qs and result.blocked_by is None
    assert [r.action for r in result.records] == [RiskAction.ALLOW] * 3


def test_first_block_stops_later_rules() -> None:
    log: list[str] = []
    pipeline = RiskPipeline([Recorder("a", log=log), Recorder("b", "block", log=log), Recorder("c", log=log)])
    result = pipeline.evaluate(near_half(), make_context())
    assert log == ["a", "b"]
    assert result.quotes is None and result.blocked_by == "b"
    assert result.records[-1].reason == "b says no"


def test_modify_hands_its_quotes_to_the_next_rule() -> None:
    log: list[str] = []
    pipeline = RiskPipeline([Recorder("h1", "halve", log=log), Recorder("h2", "halve", log=log)])
    result = pipeline.evaluate(near_half(40, 10), make_context())
    assert result.quotes is not None and result.quotes.yes_bid is not None
    assert result.quotes.yes_bid.size == Quantity.contracts(10)  # 40 → 20 → 10: the second saw the first's output
    assert [r.action for r in result.records] == [RiskAction.MODIFY, RiskAction.MODIFY]


def test_a_rule_can_request_the_kill_switch() -> None:
    log: list[str] = []
    result = RiskPipeline([Recorder("daily", "kill", log=log)]).evaluate(near_half(), make_context())
    assert result.quotes is None
    assert result.kill_switch_reason == "daily: daily loss limit"
    assert result.records[0].kill_switch


def test_a_rule_that_raises_blocks_the_cycle_and_keeps_the_traceback() -> None:
    log: list[str] = []
    pipeline = RiskPipeline([Exploding(), Recorder("after", log=log)])
    result = pipeline.evaluate(near_half(), make_context())
    assert result.quotes is None and result.blocked_by == "exploding"
    record = result.records[0]
    assert record.action is RiskAction.BLOCK
    assert "ZeroDivisionError" in (record.reason or "") and "fail safe" in (record.reason or "")
    assert record.error is not None and "Traceback" in record.error and "in evaluate" in record.error
    assert log == []  # nothing after it ran
    # and the next cycle runs again (no latch): a fresh evaluation behaves the same, no crash
    assert pipeline.evaluate(near_half(), make_context()).blocked_by == "exploding"


def test_a_rule_returning_garbage_is_treated_like_one_that_raised() -> None:
    class Garbage(RiskRule):
        name = "garbage"

        def evaluate(self, proposed_quotes: QuoteSet, context: RiskContext) -> RiskDecision:
            return "ALLOW"  # type: ignore[return-value]

    result = RiskPipeline([Garbage()]).evaluate(near_half(), make_context())
    assert result.quotes is None and "not a RiskDecision" in (result.records[0].reason or "")


def test_duplicate_rule_names_are_refused() -> None:
    with pytest.raises(ValueError, match="unique"):
        RiskPipeline([Recorder("a", log=[]), Recorder("a", log=[])])


def test_modify_without_quotes_is_invalid() -> None:
    with pytest.raises(ValueError, match="modified_quotes"):
        RiskDecision(RiskAction.MODIFY, "oops")


def test_custom_rules_get_params_as_attributes() -> None:
    class HighVolHighInventory(RiskRule):
        name = "high_inventory_high_vol"

        def evaluate(self, proposed_quotes: QuoteSet, context: RiskContext) -> RiskDecision:
            ratio = context.current_volatility / self.normal_volatility  # type: ignore[attr-defined]
            return block("too hot") if ratio > 1.5 else ALLOW

    rule = HighVolHighInventory(normal_volatility=0.002)
    assert rule.params == {"normal_volatility": 0.002}
    assert rule.evaluate(near_half(), make_context(volatility=0.005)).action is RiskAction.BLOCK
    assert rule.evaluate(near_half(), make_context(volatility=0.001)).action is RiskAction.ALLOW
