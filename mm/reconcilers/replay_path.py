"""The node's quote path for replay (FR-902): :class:`EngineQuotePath` plugs into
:class:`~mm.recording.replay.SessionReplayer` and recomputes each ``quote_generated`` exactly as
``MarketReconciler._plan`` does — the strategy engine (``build_engine``) and risk engine (``build_pipeline``,
kill switches on an in-memory latch) built from the recorded effective specs — with the payload builders the
recorder itself uses (:mod:`mm.reconcilers.market_recording`), so what is compared is built the same way.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from mm.domain.price import QTY_SCALE
from mm.reconcilers.market_recording import risk_payload, strategy_payload
from mm.recording.replay import MarketConfig, QuoteCall, ReplayError
from mm.risk.aggregate import AggregateRisk, AggregateUsage, MarketUsage
from mm.risk.base import RiskContext
from mm.risk.engine import RiskEngine
from mm.risk.kill_switch import InMemoryLatch, KillSwitch
from mm.risk.registry import build_pipeline
from mm.risk.states import TradingState
from mm.specs.node import TradingNodeSpec
from mm.specs.risk import RiskPolicySpec
from mm.specs.strategy import StrategySpec
from mm.strategy.engine import QuoteInputs, StrategyEngine
from mm.strategy.registry import build_engine

__all__ = ["EngineQuotePath"]

_PNL_FIELDS = (
    "notional_units",
    "realized_pnl_units",
    "unrealized_pnl_units",
    "fees_units",
    "hourly_pnl_units",
    "daily_pnl_units",
    "drawdown_units",
)


def _validated(model: type[Any], data: Mapping[str, Any] | None, what: str) -> Any:
    try:
        return model.model_validate(data or {})
    except ValidationError as exc:
        raise ReplayError(f"the recorded {what} does not validate: {exc}") from None


class EngineQuotePath:
    """One Market's strategy and risk engines, rebuilt from the recorded effective specs."""

    def __init__(self, config: MarketConfig) -> None:
        self.config = config
        self._latch = InMemoryLatch()
        self._node_switch = KillSwitch(self._latch, "node")
        node: TradingNodeSpec | None = (
            _validated(TradingNodeSpec, config.trading_node, "TradingNode spec") if config.trading_node else None
        )
        self._aggregate = AggregateRisk(node.risk.aggregate) if node is not None else None
        self._node_state = TradingState.parse(str(node.trading_state) if node is not None else "active")
        self._market_state = TradingState.parse(str(config.market.get("trading_state", "active")))
        self.engine: StrategyEngine
        self.risk: RiskEngine
        self.strategy: StrategySpec
        self.policy: RiskPolicySpec
        self._build(config, None)

    def _build(self, config: MarketConfig, previous: StrategyEngine | None) -> None:
        self.strategy = _validated(StrategySpec, config.strategy, f"Strategy of Market {config.name}")
        self.policy = _validated(RiskPolicySpec, config.risk_policy, f"RiskPolicy of Market {config.name}")
        engine = build_engine(self.strategy)
        if previous is not None:
            same_kind = type(previous.volatility) is type(engine.volatility)
            if same_kind or self.strategy.components.volatility.state_transfer:
                engine.volatility.set_state(previous.volatility.get_state())  # as MarketReconciler._build
        self.engine = engine
        switch = KillSwitch(self._latch, f"market/{config.name}")
        self.risk = RiskEngine(build_pipeline(self.policy), switch, self._node_switch, self._aggregate)
        self._policy_state = TradingState.parse(str(self.policy.trading_state))
        self.config = config

    def on_mid(self, mid: Decimal, now_us: int) -> None:
        self.engine.on_mid(float(mid), now_us)

    def reload(self, config: MarketConfig) -> None:
        self._build(config, self.engine)

    def restore(self, snapshot: Mapping[str, Any]) -> None:
        if snapshot.get("kill_switch") is True and not self._node_switch.tripped:
            self._node_switch.trigger("tripped when the state_snapshot was taken", "recovery", 0)

    def quote(self, call: QuoteCall) -> Mapping[str, Any]:
        now = call.now_us
        mid = float(call.mid)
        seconds_left = math.inf if call.time_to_settlement_s is None else float(call.time_to_settlement_s)
        self.engine.on_mid(mid, now)
        result = self.engine.quote(
            QuoteInputs(
                market_id=call.ticker,
                mid=mid,
                inventory=call.inventory_units / QTY_SCALE,
                time_to_settlement=max(seconds_left, 0.0),
                now_us=now,
                grid=call.grid,
            )
        )
        book = call.book
        if book is None:
            raise ReplayError(f"record {call.index}: a quote with no book recorded before it (book recording off?)")
        position = call.inventory_units
        recorded = call.risk_inputs
        if recorded is not None:
            # What the node's risk engine saw, as recorded with the quote: the same rules on the same numbers.
            pnl = {k: int(recorded[k]) for k in _PNL_FIELDS}
            usage = AggregateUsage(
                {
                    str(m[0]): MarketUsage(str(m[0]), int(m[1]), int(m[2]), int(m[3]), int(m[4]), bool(m[5]))
                    for m in recorded.get("usage") or []
                }
            )
            states = recorded.get("states")
            node_state, policy_state, market_state = (
                tuple(TradingState.parse(str(x)) for x in states)
                if states
                else (self._node_state, self._policy_state, self._market_state)
            )
        else:
            # An older recording: PnL as of the last state_snapshot, this market alone.
            account = call.account or {}
            cost_basis = int(account.get("cost_basis_micros", 0))
            pnl = dict.fromkeys(_PNL_FIELDS, 0)
            pnl.update(
                notional_units=cost_basis // 100,
                realized_pnl_units=int(account.get("realized_micros", 0)) // 100,
                unrealized_pnl_units=int(account.get("unrealized_micros", 0)) // 100,
                fees_units=int(account.get("fees_micros", 0)) // 100,
            )
            usage = AggregateUsage(
                {
                    call.ticker: MarketUsage(
                        market_id=call.ticker,
                        notional_units=cost_basis // 100,
                        contracts_units=abs(position),
                        active=position != 0 or bool(account.get("open_orders")),
                    )
                }
            )
            node_state, policy_state, market_state = self._node_state, self._policy_state, self._market_state
        context = RiskContext(
            market_id=call.ticker,
            now_us=now,
            snapshot=book.snapshot(call.ticker, now),
            grid=call.grid,
            inventory_units=position,
            max_inventory_units=int(self.strategy.max_inventory * QTY_SCALE),
            yes_units=max(position, 0),
            no_units=max(-position, 0),
            notional_units=pnl["notional_units"],
            realized_pnl_units=pnl["realized_pnl_units"],
            unrealized_pnl_units=pnl["unrealized_pnl_units"],
            fees_units=pnl["fees_units"],
            hourly_pnl_units=pnl["hourly_pnl_units"],
            daily_pnl_units=pnl["daily_pnl_units"],
            drawdown_units=pnl["drawdown_units"],
            time_to_settlement_seconds=seconds_left,
            volatility=result.volatility,
        )
        outcome = self.risk.evaluate(
            result.quotes,
            context,
            node_state=node_state,
            policy_state=policy_state,
            market_state=market_state,
            usage=usage,
        )
        return {"volatility": result.volatility, "strategy": strategy_payload(result), "risk": risk_payload(outcome)}
