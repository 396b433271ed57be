"""The per-market risk engine: everything between a proposed QuoteSet and the orders that may rest.

Order of checks (most restrictive first, each may only remove or shrink quotes):

1. the effective trading state — most restrictive of node, policy, market and kill switches; ``halted`` blocks
   everything and asks execution to cancel all of the market's orders;
2. aggregate limits (FR-1302): a loss breach trips the *node* kill switch (halting every market);
   total notional and contracts cap what this market may add;
3. the configured rule pipeline (FR-510–513); a rule asking for the kill switch trips this market's;
4. ``reducing``: only position-reducing quotes, never flipping the position;
5. the RCR-101 hard limits, which no configuration can lift: no order above 500 contracts, no fill
   that takes |inventory| above 1,000 contracts.

Pure apart from the kill switch latches it is given; the caller acts on the :class:`RiskOutcome`.
"""

from __future__ import annotations

from dataclasses import dataclass

from mm.domain.limits import MAX_ORDER_SIZE, MAX_POSITION_PER_MARKET
from mm.domain.price import PRICE_SCALE, QTY_SCALE
from mm.domain.quotes import Quote, QuoteSet
from mm.risk.aggregate import AggregateRisk, AggregateUsage
from mm.risk.base import RiskContext
from mm.risk.kill_switch import KillSwitch
from mm.risk.pipeline import DecisionRecord, RiskPipeline
from mm.risk.quote_ops import adds_exposure, cap_size, is_empty, map_quotes, max_size_for_cost, purchase_cost_units
from mm.risk.states import TradingState, most_restrictive, reducing_only

_MAX_ORDER_UNITS = int(MAX_ORDER_SIZE * QTY_SCALE)
_MAX_POSITION_UNITS = int(MAX_POSITION_PER_MARKET * QTY_SCALE)


@dataclass(frozen=True, slots=True)
class RiskOutcome:
    """What may be quoted, and what the caller must do."""

    quotes: QuoteSet | None
    """Approved quotes; None = quote nothing."""
    state: TradingState
    """The effective trading state this cycle."""
    records: tuple[DecisionRecord, ...] = ()
    reason: str | None = None
    """Why nothing (or less) is quoted, when it is the engine's own check rather than a rule's."""
    cancel_all: bool = False
    """Execution must cancel every order of this market now (halted / kill switch)."""
    kill_switch_tripped: str | None = None
    """Set when this evaluation tripped a kill switch: its reason (log it, alert, record it)."""
    context: RiskContext | None = None

    @property
    def blocked(self) -> bool:
        return self.quotes is None


class RiskEngine:
    """Risk checks for one market. ``node_switch`` is shared by every market of the node."""

    def __init__(
        self,
        pipeline: RiskPipeline,
        market_switch: KillSwitch,
        node_switch: KillSwitch,
        aggregate: AggregateRisk | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.market_switch = market_switch
        self.node_switch = node_switch
        self.aggregate = aggregate

    def evaluate(
        self,
        quotes: QuoteSet,
        context: RiskContext,
        *,
        node_state: TradingState = TradingState.ACTIVE,
        policy_state: TradingState = TradingState.ACTIVE,
        market_state: TradingState = TradingState.ACTIVE,
        usage: AggregateUsage | None = None,
    ) -> RiskOutcome:
        now = context.now_us
        tripped: str | None = None
        if self.aggregate is not None and usage is not None:
            breach = self.aggregate.breach(usage)
            if breach is not None and self.node_switch.trigger(breach, "aggregate", now):
                tripped = f"node: {breach}"
        state = self._state(node_state, policy_state, market_state)
        if state is TradingState.HALTED:
            return RiskOutcome(None, state, (), self._halt_reason(), True, tripped, context)

        current = quotes
        if self.aggregate is not None and usage is not None:
            current = self._within_aggregate_room(current, context, usage)

        result = self.pipeline.evaluate(current, context)
        if result.kill_switch_reason is not None and self.market_switch.trigger(result.kill_switch_reason, "rule", now):
            tripped = tripped or f"{self.market_switch.scope}: {result.kill_switch_reason}"
        if self.market_switch.tripped:
            return RiskOutcome(None, TradingState.HALTED, result.records, self._halt_reason(), True, tripped, context)
        if result.quotes is None:
            return RiskOutcome(None, state, result.records, None, False, tripped, context)

        approved: QuoteSet | None = result.quotes
        if state is TradingState.REDUCING:
            approved = reducing_only(result.quotes, context.inventory_units)
        if approved is not None:
            approved = self._hard_limits(approved, context.inventory_units)
        reason = None if approved is not None else "nothing left to quote after reducing-only and hard limits"
        return RiskOutcome(approved, state, result.records, reason, False, tripped, context)

    def _state(self, *declared: TradingState) -> TradingState:
        tripped = self.node_switch.tripped or self.market_switch.tripped
        return most_restrictive(*declared, TradingState.HALTED if tripped else TradingState.ACTIVE)

    def _halt_reason(self) -> str:
        for switch in (self.node_switch, self.market_switch):
            if switch.tripped:
                return f"kill switch {switch.scope} tripped: {switch.state.reason}"
        return "trading state is halted: cancel only"

    def _within_aggregate_room(self, quotes: QuoteSet, context: RiskContext, usage: AggregateUsage) -> QuoteSet:
        assert self.aggregate is not None
        notional_room, contracts_room = self.aggregate.room(usage)
        # The usual case, far from every aggregate limit: even the largest quote at the highest price fits, so
        # nothing would be capped (a quote's cost is at most PRICE_SCALE × size / 100).
        largest = max(
            (q.size.units for q in (quotes.yes_bid, quotes.yes_ask, quotes.no_bid, quotes.no_ask) if q), default=0
        )
        if largest <= contracts_room and PRICE_SCALE * largest // 100 <= notional_room:
            return quotes
        inventory = context.inventory_units

        def fit(_: str, quote: Quote) -> Quote | None:
            if not adds_exposure(quote, inventory):
                return quote
            capped = cap_size(quote, contracts_room)
            if capped is None or purchase_cost_units(capped) <= notional_room:
                return capped
            return cap_size(capped, max_size_for_cost(capped, notional_room))

        return map_quotes(quotes, fit)

    @staticmethod
    def _hard_limits(quotes: QuoteSet, inventory_units: int) -> QuoteSet | None:
        room = _MAX_POSITION_UNITS - abs(inventory_units)
        sides = (quotes.yes_bid, quotes.yes_ask, quotes.no_bid, quotes.no_ask)
        largest = max((q.size.units for q in sides if q), default=0)
        if largest == 0:
            return None  # nothing left to quote (e.g. reducing-only removed every side)
        if largest <= min(room, _MAX_ORDER_UNITS):
            return quotes  # the usual case: nothing near a ceiling, nothing to rebuild
        capped = map_quotes(
            quotes,
            lambda _, q: cap_size(
                q, min(_MAX_ORDER_UNITS, room) if adds_exposure(q, inventory_units) else _MAX_ORDER_UNITS
            ),
        )
        return None if is_empty(capped) else capped
