"""The per-market risk engine: states, kill switches, aggregate limits, pipeline, hard limits."""

from __future__ import annotations

from mm.domain.price import Quantity
from mm.domain.quotes import QuoteSet
from mm.risk.aggregate import AggregateRisk, AggregateUsage, MarketUsage
from mm.risk.base import ALLOW, RiskContext, RiskDecision, RiskRule, block
from mm.risk.engine import RiskEngine
from mm.risk.kill_switch import InMemoryLatch, KillSwitch
from mm.risk.pipeline import RiskPipeline
from mm.risk.states import TradingState
from mm.specs.node import AggregateLimits
from tests.risk.builders import make_context, near_half


class Verdict(RiskRule):
    def __init__(self, name: str, decision: RiskDecision) -> None:
        super().__init__()
        self.name, self.decision = name, decision

    def evaluate(self, proposed_quotes: QuoteSet, context: RiskContext) -> RiskDecision:
        return self.decision


def engine(*rules: RiskRule, latch: InMemoryLatch | None = None, aggregate: AggregateRisk | None = None) -> RiskEngine:
    latch = latch or InMemoryLatch()
    return RiskEngine(RiskPipeline(rules), KillSwitch(latch, "market/M"), KillSwitch(latch, "node"), aggregate)


def test_active_and_allowed_passes_the_quotes_through() -> None:
    qs = near_half()
    outcome = engine(Verdict("ok", ALLOW)).evaluate(qs, make_context())
    assert outcome.quotes == qs and outcome.state is TradingState.ACTIVE and not outcome.cancel_all


def test_halted_market_cancels_everything_without_running_rules() -> None:
    outcome = engine(Verdict("ok", ALLOW)).evaluate(near_half(), make_context(), market_state=TradingState.HALTED)
    assert outcome.blocked and outcome.cancel_all and outcome.records == ()
    assert outcome.reason == "trading state is halted: cancel only"


def test_effective_state_is_the_most_restrictive() -> None:
    outcome = engine(Verdict("ok", ALLOW)).evaluate(
        near_half(20, 20),
        make_context(inventory_units=10_00),
        node_state=TradingState.REDUCING,
        market_state=TradingState.ACTIVE,
    )
    assert outcome.state is TradingState.REDUCING
    assert outcome.quotes is not None
    assert outcome.quotes.yes_bid is None and outcome.quotes.no_ask is None  # adding side gone
    assert outcome.quotes.yes_ask is not None and outcome.quotes.yes_ask.size == Quantity.contracts(10)


def test_a_halted_policy_halts_its_markets() -> None:
    outcome = engine(Verdict("ok", ALLOW)).evaluate(near_half(), make_context(), policy_state=TradingState.HALTED)
    assert outcome.blocked and outcome.cancel_all and outcome.state is TradingState.HALTED


def test_a_rule_kill_switch_request_trips_the_market_switch_and_cancels_all() -> None:
    latch = InMemoryLatch()
    eng = engine(Verdict("daily_loss_limit", block("daily loss $120 ≥ $100", kill_switch=True)), latch=latch)
    outcome = eng.evaluate(near_half(), make_context())
    assert outcome.blocked and outcome.cancel_all and outcome.state is TradingState.HALTED
    assert outcome.kill_switch_tripped == "market/M: daily_loss_limit: daily loss $120 ≥ $100"
    # latched: later cycles stay halted even when the rule would allow, also after a restart
    again = engine(Verdict("daily_loss_limit", ALLOW), latch=latch).evaluate(near_half(), make_context())
    assert again.blocked and again.cancel_all and again.kill_switch_tripped is None
    assert "kill switch market/M tripped" in (again.reason or "")


def test_aggregate_breach_halts_every_market() -> None:
    latch = InMemoryLatch()
    limits = AggregateLimits.model_validate({"max_daily_loss": 50, "max_hourly_loss": 50})
    risk = AggregateRisk(limits)
    breach = AggregateUsage(
        {"M": MarketUsage("M", daily_pnl_units=-30_0000), "N": MarketUsage("N", daily_pnl_units=-20_0000)}
    )
    first = engine(Verdict("ok", ALLOW), latch=latch, aggregate=risk).evaluate(
        near_half(), make_context(), usage=breach
    )
    assert (
        first.blocked
        and first.cancel_all
        and (first.kill_switch_tripped or "").startswith("node: aggregate daily loss")
    )
    # another market sharing the node switch is halted too, even with healthy usage
    other = RiskEngine(RiskPipeline([Verdict("ok", ALLOW)]), KillSwitch(latch, "market/N"), KillSwitch(latch, "node"))
    assert other.evaluate(near_half(), make_context(market_id="N")).blocked


def test_aggregate_room_caps_what_a_market_may_add() -> None:
    limits = AggregateLimits.model_validate({"max_total_notional": 1000, "max_total_contracts": 1000})
    risk = AggregateRisk(limits)
    qs = near_half(50, 50)
    # $5 of notional room: at $0.49 a contract that buys 10.20 contracts (exactly: 0.49 × 10.20 = 4.998).
    by_notional = AggregateUsage({"X": MarketUsage("X", notional_units=995_0000)})
    outcome = engine(Verdict("ok", ALLOW), aggregate=risk).evaluate(qs, make_context(), usage=by_notional)
    assert outcome.quotes is not None and outcome.quotes.yes_bid is not None and outcome.quotes.yes_ask is not None
    assert outcome.quotes.yes_bid.size == Quantity.from_decimal("10.20")
    # selling YES at 0.51 = buying NO at 0.49: the same cost per contract
    assert outcome.quotes.yes_ask.size == Quantity.from_decimal("10.20")
    # 7 contracts of room left: the contract limit binds instead
    by_contracts = AggregateUsage({"X": MarketUsage("X", contracts_units=993_00)})
    outcome = engine(Verdict("ok", ALLOW), aggregate=risk).evaluate(qs, make_context(), usage=by_contracts)
    assert outcome.quotes is not None and outcome.quotes.yes_bid is not None
    assert outcome.quotes.yes_bid.size == Quantity.contracts(7)


def test_hard_limits_apply_whatever_the_rules_allow() -> None:
    outcome = engine(Verdict("ok", ALLOW)).evaluate(near_half(800, 800), make_context(inventory_units=900_00))
    assert outcome.quotes is not None and outcome.quotes.yes_bid is not None and outcome.quotes.yes_ask is not None
    assert outcome.quotes.yes_bid.size == Quantity.contracts(100)  # 900 held: only 100 more to the 1,000 ceiling
    assert outcome.quotes.yes_ask.size == Quantity.contracts(500)  # reducing side: the 500 order-size ceiling


def test_a_quote_sheet_with_nothing_left_is_blocked_not_an_error() -> None:
    # Regression: an approved sheet whose every side is empty reached the hard-limit check and raised.
    empty = QuoteSet("M1", 0, None, None, None, None)
    outcome = engine(Verdict("ok", ALLOW)).evaluate(empty, make_context(inventory_units=0))
    assert outcome.quotes is None and not outcome.cancel_all
