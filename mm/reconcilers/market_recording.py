"""What the Market reconciler tells the session recorder (FR-901): quotes with their inputs, the orders it acts
on and their results, config reloads and component swaps. Called only when recording is enabled
(``node.recorder is not None``); a replay reads exactly these payloads (docs/recording.md).
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from mm.adapters.errors import ExchangeUnavailableError
from mm.domain.orders import Order, OrderRequest
from mm.domain.quotes import Quote, QuoteSet
from mm.domain.ticks import TickGrid
from mm.reconcilers.client_ids import Level
from mm.reconcilers.order_plan import Amend, Cancel, OrderPlan, Place
from mm.recording.order_records import request_payload
from mm.recording.recorder import RecordSink
from mm.risk.aggregate import AggregateUsage
from mm.risk.base import RiskAction, RiskContext
from mm.risk.engine import RiskOutcome
from mm.risk.states import TradingState
from mm.specs.risk import RiskPolicySpec
from mm.specs.strategy import StrategySpec
from mm.strategy.engine import SLOTS, QuoteResult

if TYPE_CHECKING:
    from mm.reconcilers.market import MarketRuntime

__all__ = [
    "quote_set",
    "quote_units",
    "record_actions",
    "record_order_sent",
    "record_quote",
    "record_reload",
    "record_results",
    "record_rollback",
]


def quote_units(quote: Quote | None) -> tuple[int, int] | None:
    return None if quote is None else (quote.price.units, quote.size.units)


def quote_set(quotes: QuoteSet | None) -> dict[str, tuple[int, int] | None] | None:
    """The four quotes as ``[price_units, size_units]`` (None: not quoted)."""
    if quotes is None:
        return None
    return {
        "yes_bid": quote_units(quotes.yes_bid),
        "yes_ask": quote_units(quotes.yes_ask),
        "no_bid": quote_units(quotes.no_bid),
        "no_ask": quote_units(quotes.no_ask),
    }


def risk_inputs(
    context: RiskContext | None,
    usage: AggregateUsage | None,
    states: tuple[TradingState, TradingState, TradingState] | None,
) -> dict[str, Any] | None:
    """The risk engine's inputs beyond the quotes, in exact units ($0.0001, 1/100 contract)."""
    if context is None:
        return None
    return {
        "notional_units": context.notional_units,
        "realized_pnl_units": context.realized_pnl_units,
        "unrealized_pnl_units": context.unrealized_pnl_units,
        "fees_units": context.fees_units,
        "hourly_pnl_units": context.hourly_pnl_units,
        "daily_pnl_units": context.daily_pnl_units,
        "drawdown_units": context.drawdown_units,
        "states": [s.label for s in states] if states is not None else None,
        "usage": [
            [m.market_id, m.notional_units, m.contracts_units, m.hourly_pnl_units, m.daily_pnl_units, m.active]
            for m in (usage.markets.values() if usage is not None else ())
        ],
    }


def strategy_payload(result: QuoteResult) -> dict[str, Any]:
    """The strategy's outputs as ``quote_generated`` records them (and a replay recomputes them)."""
    return {
        "quotes": quote_set(result.quotes),
        "reservation_price": result.reservation_price,
        "half_spread": result.half_spread,
        "skew": result.skew,
        "bid_size": result.bid_size,
        "ask_size": result.ask_size,
        "note": result.note,
    }


def risk_payload(outcome: RiskOutcome) -> dict[str, Any]:
    """The risk outcome as ``quote_generated`` records it: only the rules that changed something (ALLOW is the
    common case and says nothing)."""
    return {
        "quotes": quote_set(outcome.quotes),
        "state": outcome.state.name.lower(),
        "reason": outcome.reason,
        "cancel_all": outcome.cancel_all,
        "kill_switch_tripped": outcome.kill_switch_tripped,
        "rules": [(r.rule, r.action.value, r.reason) for r in outcome.records if r.action is not RiskAction.ALLOW],
    }


def record_quote(
    recorder: RecordSink,
    name: str,
    ticker: str,
    runtime: MarketRuntime,
    mid: Decimal,
    position: int,
    time_to_settlement: float | None,
    now: int,
    grid: TickGrid,
    result: QuoteResult,
    outcome: RiskOutcome,
    *,
    usage: AggregateUsage | None = None,
    states: tuple[TradingState, TradingState, TradingState] | None = None,
) -> None:
    """``quote_generated``: the strategy's inputs beside its outputs and the risk outcome; ``volatility_update``
    first when σ changed. The mid is the exact book mid (the engine receives ``float(mid)``). ``inputs.risk``
    carries what the risk engine saw besides the quotes — the context's PnL, the aggregate usage and the node,
    policy and market trading states — so a replay evaluates the same rules on the same numbers."""
    sigma = result.volatility
    if sigma != runtime.recorded_sigma:
        runtime.recorded_sigma = sigma
        recorder.record(
            "volatility_update", ticker, {"sigma": sigma, "estimator": type(runtime.engine.volatility).__name__}
        )
    recorder.record(
        "quote_generated",
        ticker,
        {
            "resource": name,
            "generation": runtime.generation,
            "config_digest": runtime.config_digest,
            "inputs": {
                "mid": str(mid),
                "inventory_units": position,
                "time_to_settlement_s": time_to_settlement,
                "volatility": sigma,
                "now_us": now,
                "grid": [(r.start, r.end, r.step) for r in grid.ranges],
                "risk": risk_inputs(outcome.context, usage, states),
            },
            "strategy": strategy_payload(result),
            "risk": risk_payload(outcome),
        },
    )


def record_actions(recorder: RecordSink, ticker: str, plan: OrderPlan) -> None:
    """What the act step is about to send, in plan order: ``order_cancel``, ``order_amend`` (amends and
    decreases), ``order_sent`` (places)."""
    for action in plan.actions:
        if isinstance(action, Place):
            record_order_sent(recorder, ticker, action.request, action.level, action.attempt, action.reason.value)
        elif isinstance(action, Cancel):
            if action.order_id:  # a cancel of an unacknowledged order is not sent (it waits for the look-up)
                recorder.record(
                    "order_cancel",
                    ticker,
                    {
                        "exchange_order_id": action.order_id,
                        "client_order_id": action.client_order_id,
                        "level": action.level.value,
                        "reason": action.reason.value,
                    },
                )
        elif isinstance(action, Amend):
            recorder.record(
                "order_amend",
                ticker,
                {
                    "exchange_order_id": action.order_id,
                    "client_order_id": action.client_order_id,
                    "level": action.level.value,
                    "price_units": action.price.units,
                    "size_units": action.quantity.units,
                    "reason": action.reason.value,
                },
            )
        else:
            recorder.record(
                "order_amend",
                ticker,
                {
                    "exchange_order_id": action.order_id,
                    "client_order_id": action.client_order_id,
                    "level": action.level.value,
                    "reduce_to_units": action.reduce_to.units,
                    "reason": action.reason.value,
                },
            )


def record_order_sent(
    recorder: RecordSink, ticker: str, request: OrderRequest, level: Level, attempt: int, reason: str
) -> None:
    """``order_sent``: a create about to be sent, with the level, attempt and reason behind its client order id."""
    recorder.record(
        "order_sent",
        ticker,
        {**request_payload(request), "level": level.value, "attempt": attempt, "reason": reason},
    )


def record_results(
    recorder: RecordSink, ticker: str, places: list[Place], placed: list[Any], ts_us: int | None = None
) -> None:
    """Each create's outcome: ``order_ack`` (the venue took it), ``order_unknown`` (timed out: neither assumed
    placed nor rejected until a look-up settles it), ``order_rejected`` (a definitive refusal). ``ts_us``: the
    clock read taken when the call returned (what the act step goes on with)."""
    for place, result in zip(places, placed, strict=False):
        cid = place.request.client_order_id
        if isinstance(result, Order):
            recorder.record(
                "order_ack",
                ticker,
                {
                    "client_order_id": cid,
                    "exchange_order_id": result.exchange_order_id,
                    "status": result.status.value,
                    "filled_units": result.filled.units,
                    "remaining_units": result.remaining.units,
                    "created_us": result.created_us,
                    "updated_us": result.updated_us,
                },
                ts_us=ts_us,
            )
        elif isinstance(result, ExchangeUnavailableError):
            recorder.record("order_unknown", ticker, {"client_order_id": cid, "reason": str(result)}, ts_us=ts_us)
        else:
            recorder.record(
                "order_rejected",
                ticker,
                {"client_order_id": cid, "reason": str(result), "error": type(result).__name__},
                ts_us=ts_us,
            )


def record_reload(
    recorder: RecordSink,
    ticker: str,
    name: str,
    old: MarketRuntime,
    new: MarketRuntime,
    *,
    applied: bool,
    ts_us: int | None = None,
) -> None:
    """``config_reload`` with the new effective specs (a replay must switch to them here), then one
    ``component_swap`` per strategy slot whose component type changed."""
    resource = f"Market/{name}"
    recorder.record(
        "config_reload",
        ticker,
        {
            "resource": resource,
            "applied": applied,
            "digest_before": old.config_digest,
            "digest_after": new.config_digest,
            "generation": new.generation,
            "strategy": new.strategy.model_dump(mode="json"),
            "risk_policy": new.risk_policy.model_dump(mode="json"),
        },
        ts_us=ts_us,
    )
    for slot in SLOTS:
        before = getattr(old.strategy.components, slot)
        after = getattr(new.strategy.components, slot)
        if before.type != after.type:
            recorder.record(
                "component_swap",
                ticker,
                {
                    "resource": resource,
                    "slot": slot,
                    "from": before.type,
                    "to": after.type,
                    "state_transfer": bool(getattr(after, "state_transfer", False)),
                },
                ts_us=ts_us,
            )


def record_rollback(
    recorder: RecordSink,
    ticker: str,
    name: str,
    current: MarketRuntime,
    problem: str,
    attempted: tuple[StrategySpec, RiskPolicySpec] | None = None,
    ts_us: int | None = None,
) -> None:
    """A reload that failed validation and was rolled back, with the effective specs it tried (``attempted``),
    so a replay can try them too."""
    data: dict[str, Any] = {
        "resource": f"Market/{name}",
        "applied": False,
        "digest_before": current.config_digest,
        "digest_after": current.config_digest,
        "error": problem,
    }
    if attempted is not None:
        data["attempted_strategy"] = attempted[0].model_dump(mode="json")
        data["attempted_risk_policy"] = attempted[1].model_dump(mode="json")
    recorder.record("config_reload", ticker, data, ts_us=ts_us)
