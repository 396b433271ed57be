"""The Market reconciler: book + inventory + time to settlement → strategy → risk → order plan → orders.

observe (no venue call on the hot path: the adapter's live book, the account's tracker and ledger, the cached
market facts) → plan (pure: :func:`~mm.reconcilers.order_plan.plan_orders`) → act (cancels, then amends and
decreases, then places, batched, through the adapter and its rate limiter) → status.

* Runtime objects (strategy engine, risk engine, kill switch) are built per Market from the effective specs
  (the referenced Strategy and RiskPolicy with the Market's overrides merged, as admission merges them).
  A spec change rebuilds them on the next cycle (FR-1001): a parameter change keeps the volatility
  estimator's state; every reload is logged with the digests before and after and recorded as an event.
* Nothing is quoted on a stale book (DataStale), before the exchange loaded our orders and positions, while a
  create's outcome is unknown (only cancels run), inside the settlement cutoff (RCR-200: cancel everything,
  phase Settling), or when the market is not active.
* Execution ``live`` requires the Exchange's ``allow_live``; otherwise the Market is Stalled (no order sent).
* A deleted Market carries out its deletion policy (``cancel_orders`` / ``orphan``) and drops its runtime.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from mm.adapters.base import ExchangeAdapter, MarketInfo
from mm.adapters.errors import ExchangeError, ExchangeUnavailableError, OrderNotFoundError, RateLimitedError
from mm.controller.errors import TerminalError, TransientError
from mm.controller.manager import Result
from mm.controller.node import Account, ExchangeConnection, NodeContext
from mm.domain.orders import Order, OrderRequest
from mm.domain.price import QTY_SCALE, Price, Quantity
from mm.domain.quotes import Quote, QuoteSet
from mm.domain.sides import OrderSide, Side, TimeInForce
from mm.domain.ticks import TickGrid
from mm.observability.risk_audit import RiskAudit
from mm.reconcilers.client_ids import Level, make_client_order_id
from mm.reconcilers.order_plan import Amend, Cancel, Decrease, OrderPlan, Place, PlanContext, plan_orders
from mm.recording.recorder import SessionRecorder
from mm.risk.aggregate import AggregateRisk, AggregateUsage, MarketUsage
from mm.risk.base import RiskAction, RiskContext
from mm.risk.engine import RiskEngine, RiskOutcome
from mm.risk.kill_switch import KillSwitch
from mm.risk.registry import build_pipeline
from mm.risk.states import TradingState, most_restrictive
from mm.specs.admission import merge_override
from mm.specs.canonical import digest
from mm.specs.market import MarketSpec
from mm.specs.risk import RiskPolicySpec
from mm.specs.strategy import StrategySpec
from mm.state.records import ConfigAuditRecord, OrderRecord
from mm.strategy.engine import SLOTS, QuoteInputs, QuoteResult, StrategyEngine
from mm.strategy.registry import build_engine

__all__ = ["MarketReconciler", "MarketRuntime"]

US = 1_000_000
DEFAULT_CUTOFF_MINUTES = Decimal(3)


@dataclass
class MarketRuntime:
    """What one Market keeps between reconciles."""

    name: str
    config_digest: str
    strategy: StrategySpec
    risk_policy: RiskPolicySpec
    engine: StrategyEngine
    risk: RiskEngine
    generation: int
    attempts: dict[Level, int] = field(default_factory=dict)
    last_update_us: int | None = None
    last_plan: OrderPlan | None = None
    subscribed: tuple[str, str] | None = None
    """(exchange, ticker) the market data subscription is for."""
    last_mid_us: int = 0
    quotes: dict[str, Any] = field(default_factory=dict)
    orders_sent: int = 0
    cancels_sent: int = 0
    reloads: list[int] = field(default_factory=list)
    """Times (µs) of the config changes applied in the last minute (hot_reload.max_changes_per_minute)."""
    reload_blocked_until_us: int = 0
    deletion_policy: str = "cancel_orders"
    cutoff_logged: bool = False
    recorded_sigma: float | None = None
    """The volatility last recorded (a ``volatility_update`` is written when it changes)."""


def _state(text: str) -> TradingState:
    return TradingState.parse(text)


class MarketReconciler:
    kind = "Market"

    def __init__(self, node: NodeContext, *, cycle_s: float = 1.0) -> None:
        self.node = node
        self._cycle_s = cycle_s
        self._aggregate_cache: tuple[str, AggregateRisk] | None = None
        self._audit = RiskAudit(node.metrics) if node.metrics is not None else None
        self._fees_reported: dict[tuple[str, str], int] = {}

    # ------------------------------------------------------------------ entry

    async def reconcile(self, name: str) -> Result:
        node = self.node
        stored = node.resources.get("Market", name)
        if stored is None:
            await self._deleted(name)
            return Result()
        spec: MarketSpec = stored.spec
        conn = node.exchanges.get(spec.exchange_ref)
        if conn is None or not conn.loaded:
            self._condition(name, "Ready", "False", "WaitingForExchange", f"Exchange/{spec.exchange_ref} not ready")
            raise TransientError(f"Exchange/{spec.exchange_ref} is not connected and synced yet", delay_s=0.5)
        if spec.execution == "live" and not conn.spec.allow_live:
            raise TerminalError(
                f"execution live refused: Exchange/{spec.exchange_ref} does not set allow_live", reason="LiveNotAllowed"
            )
        runtime = self._runtime(name, spec, stored.generation)
        runtime.deletion_policy = spec.deletion_policy
        account = node.account(spec.exchange_ref, spec.execution)
        info = await self._market_info(conn, spec.ticker)
        await self._subscribe(runtime, conn, account, spec.ticker)
        plan, phase, why = self._plan(name, spec, runtime, conn, account, info)
        await self._act(name, plan, runtime, account)
        self._report(name, spec, stored.generation, runtime, account, plan, phase, why)
        return Result(requeue_after_s=self._cycle_s)

    # ------------------------------------------------------------------ building

    def _effective(self, spec: MarketSpec) -> tuple[StrategySpec, RiskPolicySpec, str]:
        resources = self.node.resources
        strategy = resources.get("Strategy", spec.strategy_ref)
        policy = resources.get("RiskPolicy", spec.risk_policy_ref)
        if strategy is None or policy is None:
            missing = f"Strategy/{spec.strategy_ref}" if strategy is None else f"RiskPolicy/{spec.risk_policy_ref}"
            raise TerminalError(f"{missing} does not exist", reason="DependencyMissing")
        s_data = strategy.spec_data
        r_data = policy.spec_data
        if spec.overrides.strategy:
            s_data = merge_override(StrategySpec, s_data, spec.overrides.strategy)
        if spec.overrides.risk:
            r_data = merge_override(RiskPolicySpec, r_data, spec.overrides.risk)
        try:
            s_spec = StrategySpec.model_validate(s_data) if s_data is not strategy.spec_data else strategy.spec
            r_spec = RiskPolicySpec.model_validate(r_data) if r_data is not policy.spec_data else policy.spec
        except ValueError as exc:
            raise TerminalError(f"overrides do not validate: {exc}", reason="InvalidOverrides") from exc
        return s_spec, r_spec, digest({"strategy": s_data, "risk": r_data})

    def _runtime(self, name: str, spec: MarketSpec, generation: int) -> MarketRuntime:
        """The Market's runtime for its current effective config; a change goes through the safe transition."""
        node = self.node
        s_spec, r_spec, config_digest = self._effective(spec)
        current: MarketRuntime | None = node.market_state.get(name)
        if current is not None and current.config_digest == config_digest:
            current.generation = generation
            return current
        if current is None:
            runtime = self._build(name, s_spec, r_spec, config_digest, generation, None)
            node.market_state[name] = runtime
            return runtime
        return self._transition(name, current, s_spec, r_spec, config_digest, generation)

    def _build(
        self,
        name: str,
        s_spec: StrategySpec,
        r_spec: RiskPolicySpec,
        config_digest: str,
        generation: int,
        previous: MarketRuntime | None,
    ) -> MarketRuntime:
        engine = build_engine(s_spec)
        if previous is not None:
            old = previous.engine.volatility
            same_kind = type(old) is type(engine.volatility)
            if same_kind or s_spec.components.volatility.state_transfer:
                # FR-1002: a parameter change keeps what the estimator learnt; a swap inherits it when asked.
                engine.volatility.set_state(old.get_state())
        switch = KillSwitch(self.node.latch, f"market/{name}")
        risk = RiskEngine(build_pipeline(r_spec), switch, self.node.node_switch)
        runtime = MarketRuntime(name, config_digest, s_spec, r_spec, engine, risk, generation)
        if previous is not None:
            runtime.attempts = previous.attempts
            runtime.last_update_us = previous.last_update_us
            runtime.subscribed = previous.subscribed
            runtime.reloads = previous.reloads
            runtime.orders_sent = previous.orders_sent
            runtime.cancels_sent = previous.cancels_sent
            runtime.recorded_sigma = previous.recorded_sigma
        return runtime

    def _transition(
        self,
        name: str,
        current: MarketRuntime,
        s_spec: StrategySpec,
        r_spec: RiskPolicySpec,
        config_digest: str,
        generation: int,
    ) -> MarketRuntime:
        """FR-1004's safe transition, inside one reconcile (one worker per key, so nothing is in flight):
        pause (no order is sent until the new config is validated) → apply (build it) → validate (a trial
        quote at the current mid) → resume with it; an invalid config is rolled back to the previous
        revision of the resources that changed. At most ``hot_reload.max_changes_per_minute`` per Market."""
        node = self.node
        now = node.clock.now_us()
        limit = self._max_changes_per_minute()
        recent = [t for t in current.reloads if now - t < 60 * US]
        if len(recent) >= limit:
            self._condition(name, "ReloadDeferred", "True", "RateLimited", f"{limit} changes per minute at most")
            current.reload_blocked_until_us = min(recent) + 60 * US
            return current
        self._condition(name, "ReloadDeferred", "False", "Applied")
        try:
            candidate = self._build(name, s_spec, r_spec, config_digest, generation, current)
            problem = self._validate(candidate)
        except (ValueError, TypeError, ArithmeticError) as exc:
            problem = f"{type(exc).__name__}: {exc}"
        if problem is not None:
            self._rollback(name, current, problem)
            return current
        candidate.reloads = [*recent, now]
        node.market_state[name] = candidate
        node.event(f"Market/{name}", "Reloaded", f"config {current.config_digest[:12]} -> {config_digest[:12]}")
        if node.recorder is not None:
            self._record_reload(node.recorder, name, current, candidate, applied=True)
        node.record(
            ConfigAuditRecord(
                now,
                "reload",
                f"Market/{name}",
                "file_watch",
                {"digest": current.config_digest, "strategy": current.strategy.model_dump(mode="json")},
                {"digest": config_digest, "strategy": s_spec.model_dump(mode="json")},
            )
        )
        return candidate

    def _ticker(self, name: str) -> str | None:
        stored = self.node.resources.get("Market", name)
        return stored.spec.ticker if stored is not None else None

    def _record_reload(
        self, recorder: SessionRecorder, name: str, old: MarketRuntime, new: MarketRuntime, *, applied: bool
    ) -> None:
        """``config_reload`` with the new effective specs (a replay must switch to them here), then one
        ``component_swap`` per strategy slot whose component type changed."""
        ticker = self._ticker(name)
        if ticker is None:
            return
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
                )

    def _record_rollback(self, recorder: SessionRecorder, name: str, current: MarketRuntime, problem: str) -> None:
        ticker = self._ticker(name)
        if ticker is None:
            return
        recorder.record(
            "config_reload",
            ticker,
            {
                "resource": f"Market/{name}",
                "applied": False,
                "digest_before": current.config_digest,
                "digest_after": current.config_digest,
                "error": problem,
            },
        )

    def _validate(self, runtime: MarketRuntime) -> str | None:
        """A trial quote with the new components at mid 0.50 (or the live mid): it must build a valid sheet."""
        stored = self.node.resources.get("Market", runtime.name)
        if stored is None:
            return None
        conn = self.node.exchanges.get(stored.spec.exchange_ref)
        info = conn.markets.get(stored.spec.ticker) if conn is not None else None
        book = conn.venue.book(stored.spec.ticker) if conn is not None else None
        mid = book.mid() if book is not None else None
        grid = info.grid if info is not None else None
        if grid is None:
            return None  # nothing to validate against yet: the first real cycle quotes on the venue's grid
        result = runtime.engine.quote(
            QuoteInputs(
                market_id=stored.spec.ticker,
                mid=float(mid) if mid is not None else 0.5,
                inventory=0.0,
                time_to_settlement=3600.0,
                now_us=self.node.clock.now_us(),
                grid=grid,
            )
        )
        for quote in result.quotes.quotes():
            if not grid.contains(quote.price.units):
                return f"trial quote {quote.price} is off the tick grid"
        return None

    def _rollback(self, name: str, current: MarketRuntime, problem: str) -> None:
        """Keep trading the old config and put the changed resources back to their previous revisions."""
        node = self.node
        node.event(f"Market/{name}", "ReloadRolledBack", problem, warning=True)
        if node.recorder is not None:
            self._record_rollback(node.recorder, name, current, problem)
        self._condition(name, "ReloadFailed", "True", "InvalidConfig", problem)
        stored = node.resources.get("Market", name)
        if stored is None:
            return
        for kind, ref in (("Strategy", stored.spec.strategy_ref), ("RiskPolicy", stored.spec.risk_policy_ref)):
            history = node.resources.history(kind, ref)
            if len(history) >= 2 and history[-1].digest != history[-2].digest:
                previous = history[-2]
                model = StrategySpec if kind == "Strategy" else RiskPolicySpec
                node.resources.apply_spec(
                    kind,
                    ref,
                    model.model_validate(previous.spec),
                    previous.spec,
                    digest=previous.digest,
                    source="rollback",
                    change_cause=f"rolled back: {problem}",
                )
        node.record(
            ConfigAuditRecord(
                node.clock.now_us(),
                "rollback",
                f"Market/{name}",
                "file_watch",
                {"digest": current.config_digest},
                {"digest": current.config_digest},
                success=False,
                error=problem,
            )
        )

    def _max_changes_per_minute(self) -> int:
        nodes = self.node.resources.all("TradingNode")
        return int(nodes[0].spec.hot_reload.max_changes_per_minute) if nodes else 10

    async def _market_info(self, conn: ExchangeConnection, ticker: str) -> MarketInfo:
        info = conn.markets.get(ticker)
        if info is None:
            try:
                info = await conn.venue.get_market(ticker)
            except ExchangeError as exc:
                raise TransientError(f"cannot read market {ticker}: {exc}") from exc
            conn.markets[ticker] = info
        return info

    async def _subscribe(self, runtime: MarketRuntime, conn: ExchangeConnection, account: Account, ticker: str) -> None:
        wanted = (conn.name, ticker)
        if runtime.subscribed == wanted:
            return
        try:
            await conn.venue.subscribe_market(ticker)
        except ExchangeError as exc:
            raise TransientError(f"cannot subscribe {ticker}: {exc}") from exc
        runtime.subscribed = wanted

    # ------------------------------------------------------------------ planning

    def _plan(
        self,
        name: str,
        spec: MarketSpec,
        runtime: MarketRuntime,
        conn: ExchangeConnection,
        account: Account,
        info: MarketInfo,
    ) -> tuple[OrderPlan, str, str]:
        node = self.node
        now = node.clock.now_us()
        ticker = spec.ticker
        venue = conn.venue
        book = venue.book(ticker)
        position = account.ledger.net_units(ticker)
        open_orders = account.tracker.open_orders(ticker)
        node_state = _state(self._node_spec_state())
        policy_state = _state(runtime.risk_policy.trading_state)
        market_state = _state(spec.trading_state)
        cutoff = spec.cutoff_minutes if spec.cutoff_minutes is not None else DEFAULT_CUTOFF_MINUTES
        seconds_left = (info.close_time_us - now) / US if info.close_time_us else math.inf
        desired = None
        state = most_restrictive(node_state, policy_state, market_state)
        phase, why = "Quoting", ""
        if info.status != "active":
            phase, why = "Closed", f"market is {info.status}"
        elif seconds_left <= float(cutoff) * 60:
            phase, why = "Settling", f"inside the {cutoff}-minute settlement cutoff ({seconds_left:.0f} s left)"
            if not runtime.cutoff_logged:
                runtime.cutoff_logged = True
                node.event(
                    f"Market/{name}",
                    "SettlementCutoff",
                    f"{ticker}: orders cancelled, inventory left to settle: {Decimal(position).scaleb(-2)} YES",
                )
        elif book is None or venue.is_stale(ticker):
            phase, why = "DataStale", "no trustworthy order book (resyncing)"
        elif book.mid() is None:
            phase, why = "Waiting", "one-sided book: no mid to quote around"
        elif account.tracker.pending_in(ticker):
            phase, why = "Reconciling", "waiting for the outcome of an order sent earlier"
        else:
            mid = book.mid()
            assert mid is not None
            grid = info.grid
            account.ledger.mark(ticker, mid, now)
            runtime.engine.on_mid(float(mid), now)
            quote_started = node.wall.monotonic_ns()
            result = runtime.engine.quote(
                QuoteInputs(
                    market_id=ticker,
                    mid=float(mid),
                    inventory=position / QTY_SCALE,
                    time_to_settlement=max(seconds_left, 0.0),
                    now_us=now,
                    grid=grid,
                )
            )
            if node.metrics is not None:
                node.metrics.quote_generation.labels(market=ticker).observe(
                    (node.wall.monotonic_ns() - quote_started) / 1e9
                )
            pnl = account.ledger.market(ticker, now)
            context = RiskContext(
                market_id=ticker,
                now_us=now,
                snapshot=book.snapshot(ticker, now),
                grid=grid,
                inventory_units=position,
                max_inventory_units=int(runtime.strategy.max_inventory * QTY_SCALE),
                yes_units=max(position, 0),
                no_units=max(-position, 0),
                notional_units=pnl.cost_basis_micros // 100,
                realized_pnl_units=pnl.realized_micros // 100,
                unrealized_pnl_units=pnl.unrealized_micros // 100,
                fees_units=pnl.fees.total_micros // 100,
                hourly_pnl_units=pnl.hourly_net_micros // 100,
                daily_pnl_units=pnl.daily_net_micros // 100,
                drawdown_units=max(0, pnl.peak_net_micros - pnl.net_micros) // 100,
                time_to_settlement_seconds=seconds_left,
                volatility=result.volatility,
            )
            runtime.risk.aggregate = self._aggregate()
            outcome = runtime.risk.evaluate(
                result.quotes,
                context,
                node_state=node_state,
                policy_state=policy_state,
                market_state=market_state,
                usage=_usage(account, now),
            )
            if self._audit is not None:
                self._audit.record(outcome)
            if outcome.kill_switch_tripped:
                node.event(f"Market/{name}", "KillSwitchTripped", outcome.kill_switch_tripped, warning=True)
            state = outcome.state
            desired = outcome.quotes
            recorder = node.recorder
            if recorder is not None:
                tts = seconds_left if math.isfinite(seconds_left) else None
                _record_quote(recorder, name, ticker, runtime, mid, position, tts, now, grid, result, outcome)
            runtime.quotes = {
                "yes_bid": str(desired.yes_bid.price) if desired and desired.yes_bid else None,
                "yes_ask": str(desired.yes_ask.price) if desired and desired.yes_ask else None,
                "mid": str(mid),
                "volatility": result.volatility,
            }
            if desired is None:
                phase, why = (
                    ("Halted", outcome.reason or "halted")
                    if outcome.cancel_all
                    else (
                        "Blocked",
                        outcome.reason or "; ".join(r.reason for r in outcome.records if r.reason) or "risk blocked",
                    )
                )
            elif state is TradingState.HALTED:
                phase = "Halted"
        if node.node_switch.tripped:
            state, phase, why = TradingState.HALTED, "Halted", f"kill switch: {node.node_switch.state.reason}"
            desired = None
        if desired is None and phase == "Quoting":
            phase = "Idle"
        context_plan = PlanContext(
            market_id=ticker,
            grid=info.grid,
            capabilities=account.adapter.capabilities,
            generation=runtime.generation,
            now_us=now,
            trading_state=state,
            position_units=position,
            materiality_ticks=spec.quoting.materiality_ticks,
            client_id_prefix=node.prefix,
            last_update_us=runtime.last_update_us,
            max_updates_per_second=spec.quoting.max_updates_per_second,
            attempts=dict(runtime.attempts),
        )
        plan = plan_orders(desired, open_orders, context_plan)
        runtime.last_plan = plan
        return plan, phase, why

    def _aggregate(self) -> AggregateRisk | None:
        """The TradingNode's FR-1302 limits (rebuilt only when the node spec changes)."""
        nodes = self.node.resources.all("TradingNode")
        if not nodes:
            return None
        node = nodes[0]
        if self._aggregate_cache is None or self._aggregate_cache[0] != node.digest:
            self._aggregate_cache = (node.digest, AggregateRisk(node.spec.risk.aggregate))
        return self._aggregate_cache[1]

    def _node_spec_state(self) -> str:
        nodes = self.node.resources.all("TradingNode")
        return str(nodes[0].spec.trading_state) if nodes else "active"

    # ------------------------------------------------------------------ acting

    async def _act(self, name: str, plan: OrderPlan, runtime: MarketRuntime, account: Account) -> None:
        if plan.is_empty:
            return
        node = self.node
        adapter = account.adapter
        tracker = account.tracker
        cancels = [a for a in plan.actions if isinstance(a, Cancel) and a.order_id]
        changes = [a for a in plan.actions if isinstance(a, Amend | Decrease)]
        places = [a for a in plan.actions if isinstance(a, Place)]
        try:
            recorder = node.recorder
            ticker = runtime.subscribed[1] if runtime.subscribed is not None else ""
            if recorder is not None:
                _record_actions(recorder, ticker, plan)
            if cancels:
                ids = [a.order_id for a in cancels if a.order_id]
                results = await adapter.cancel_orders(ids)
                for order_id, error in zip(ids, results, strict=False):
                    if error is None or isinstance(error, OrderNotFoundError):
                        tracker.cancelled(order_id)
                    else:
                        node.event(f"Market/{name}", "CancelFailed", f"{order_id}: {error}", warning=True)
                runtime.cancels_sent += len(ids)
            for change in changes:
                await self._change(name, adapter, account, change)
            if places:
                for place in places:
                    tracker.sent(place.request, node.clock.now_us())
                    runtime.attempts[place.level] = place.attempt + 1
                sent_ns = node.wall.monotonic_ns()
                placed = await adapter.place_orders([p.request for p in places])
                if node.metrics is not None:
                    latency_s = (node.wall.monotonic_ns() - sent_ns) / 1e9
                    node.metrics.order_latency.labels(market=places[0].request.market_id).observe(latency_s)
                if recorder is not None:
                    _record_results(recorder, ticker, places, placed)
                for place, result in zip(places, placed, strict=False):
                    if isinstance(result, Order):
                        tracker.acked(result)
                        node.record(OrderRecord(result))
                    elif isinstance(result, ExchangeUnavailableError):
                        tracker.outcome_unknown(place.request.client_order_id)
                        node.event(f"Market/{name}", "OrderOutcomeUnknown", str(result), warning=True)
                    else:
                        tracker.failed(place.request.client_order_id)
                        node.event(f"Market/{name}", "OrderRejected", f"{place.request.client_order_id}: {result}")
                    if self.node.metrics is not None:
                        status = "accepted" if isinstance(result, Order) else "rejected"
                        self.node.metrics.orders.labels(
                            market=place.request.market_id, side=place.request.order_side.value, status=status
                        ).inc()
                runtime.orders_sent += len(places)
                node.orders_sent += len(places)
                breach = node.note_order_results(
                    (not isinstance(r, Order) for r in placed), runtime.risk_policy.kill_switch
                )
                if breach is not None and node.kill is not None and runtime.risk_policy.kill_switch.enabled:
                    await node.kill(breach, "rule")
        except RateLimitedError as exc:
            raise TransientError(f"rate limited: {exc}", delay_s=1.0) from exc
        except ExchangeUnavailableError as exc:
            for place in places:
                tracker.outcome_unknown(place.request.client_order_id)
            raise TransientError(f"exchange unavailable: {exc}") from exc
        if not plan.deferred:
            runtime.last_update_us = node.clock.now_us()

    async def _change(self, name: str, adapter: ExchangeAdapter, account: Account, change: Amend | Decrease) -> None:
        try:
            if isinstance(change, Decrease):
                await adapter.decrease_order(change.order_id, reduce_to=change.reduce_to)
                current = account.tracker.get(change.order_id)
                if current is not None and change.reduce_to < current.remaining:
                    account.tracker.update(current.decreased(change.reduce_to, self.node.clock.now_us()))
                return
            amended = await adapter.amend_order(change.order_id, price=change.price, quantity=change.quantity)
            account.tracker.update(amended)
            self.node.record(OrderRecord(amended))
        except OrderNotFoundError:
            account.tracker.cancelled(change.order_id)
        except (ExchangeUnavailableError, RateLimitedError):
            raise
        except ExchangeError as exc:
            # Typically the order filled or was cancelled meanwhile, or a post-only amend would cross: do not
            # guess — drop our copy (the venue's update or the next resync restores it) and cancel it if it rests.
            self.node.event(f"Market/{name}", "AmendFailed", f"{change.order_id}: {exc}")
            results = await adapter.cancel_orders([change.order_id])
            if results and (results[0] is None or isinstance(results[0], OrderNotFoundError)):
                account.tracker.cancelled(change.order_id)

    async def _deleted(self, name: str) -> None:
        """Carry out the deleted Market's ``deletion_policy`` (remembered from its last spec): ``cancel_orders``
        cancels its orders; ``flatten`` also closes the position with an IOC reduce-only order at the best
        opposite price; ``orphan`` leaves both at the venue (reported)."""
        runtime: MarketRuntime | None = self.node.market_state.pop(name, None)
        if runtime is None or runtime.subscribed is None:
            return
        exchange, ticker = runtime.subscribed
        conn = self.node.exchanges.get(exchange)
        if conn is None:
            return
        policy = runtime.deletion_policy
        others = [k for k in self.node.markets_trading(exchange, ticker) if k != f"Market/{name}"]
        if policy == "orphan" or others:
            why = "deletion policy orphan" if policy == "orphan" else f"{ticker} is still traded by {others}"
            self.node.event(f"Market/{name}", "Deleted", f"orders and position of {ticker} left alone: {why}")
            return
        for account in conn.accounts.values():
            mine = account.tracker.open_orders(ticker)
            if mine:
                results = await account.adapter.cancel_orders([o.exchange_order_id or "" for o in mine])
                for order, error in zip(mine, results, strict=False):
                    if error is None or isinstance(error, OrderNotFoundError):
                        account.tracker.cancelled(order.exchange_order_id or "")
            if policy == "flatten":
                await self._flatten(name, conn, account, ticker)
        await conn.venue.unsubscribe_market(ticker)
        self.node.event(f"Market/{name}", "Deleted", f"{policy}: orders of {ticker} cancelled")
        if self.node.recorder is not None:
            self.node.recorder.end_market(ticker, f"Market/{name} deleted")

    async def _flatten(self, name: str, conn: ExchangeConnection, account: Account, ticker: str) -> None:
        net = account.ledger.net_units(ticker)
        book = conn.venue.book(ticker)
        if net == 0:
            return
        price_units = (book.best_yes_bid if net > 0 else book.best_yes_ask) if book is not None else None
        if price_units is None:
            self.node.event(f"Market/{name}", "FlattenFailed", f"no {ticker} book to close {net} units", warning=True)
            return
        request = OrderRequest(
            market_id=ticker,
            side=Side.YES,
            order_side=OrderSide.SELL if net > 0 else OrderSide.BUY,
            price=Price(price_units),
            quantity=Quantity(abs(net)),
            client_order_id=make_client_order_id(
                self.node.prefix,
                ticker,
                0,
                Level.YES_ASK if net > 0 else Level.YES_BID,
                self.node.clock.now_us() % 1_000_000,
            ),
            time_in_force=TimeInForce.IMMEDIATE_OR_CANCEL,
            post_only=False,
            reduce_only=True,
        )
        try:
            result = await account.adapter.place_order(request)
        except ExchangeError as exc:
            self.node.event(f"Market/{name}", "FlattenFailed", str(exc), warning=True)
            return
        self.node.event(f"Market/{name}", "Flattened", f"{ticker}: IOC {request.order_side.value} {result.filled}")

    # ------------------------------------------------------------------ status

    def _condition(self, name: str, type_: str, status: str, reason: str, message: str = "") -> None:
        self.node.resources.set_condition("Market", name, type_, status, reason, message)  # type: ignore[arg-type]

    def _report(
        self,
        name: str,
        spec: MarketSpec,
        generation: int,
        runtime: MarketRuntime,
        account: Account,
        plan: OrderPlan,
        phase: str,
        why: str,
    ) -> None:
        node = self.node
        now = node.clock.now_us()
        ticker = spec.ticker
        pnl = account.ledger.market(ticker, now)
        resources = node.resources
        quoting = phase == "Quoting" and bool(plan.desired)
        self._condition(name, "Ready", "True", "Reconciled")
        self._condition(name, "Quoting", "True" if quoting else "False", phase, why)
        self._condition(name, "DataStale", "True" if phase == "DataStale" else "False", phase, why)
        self._condition(name, "Halted", "True" if phase == "Halted" else "False", phase, why)
        self._condition(name, "Reconciling", "True" if plan.deferred or phase == "Reconciling" else "False", phase)
        resources.set_status(
            "Market",
            name,
            phase=phase,
            message=why,
            ticker=ticker,
            execution=spec.execution,
            quotes=runtime.quotes if quoting else {},
            desired_levels=[(d.level.value, str(d.price), d.size.to_fp()) for d in plan.desired],
            position=str(Decimal(account.ledger.net_units(ticker)) / QTY_SCALE),
            realized_pnl=str(Decimal(pnl.realized_micros).scaleb(-6)),
            unrealized_pnl=str(Decimal(pnl.unrealized_micros).scaleb(-6)),
            fees=str(Decimal(pnl.fees.total_micros).scaleb(-6)),
            open_orders=len(account.tracker.open_orders(ticker)),
            orders_sent=runtime.orders_sent,
            cancels_sent=runtime.cancels_sent,
            last_reconcile_us=now,
        )
        resources.observed("Market", name, generation)
        metrics = node.metrics
        if metrics is not None:
            net = account.ledger.net_units(ticker)
            metrics.inventory.labels(market=ticker).set(net / QTY_SCALE)
            metrics.position_yes.labels(market=ticker).set(max(net, 0) / QTY_SCALE)
            metrics.position_no.labels(market=ticker).set(max(-net, 0) / QTY_SCALE)
            metrics.pnl_realized.labels(market=ticker).set(pnl.realized_micros / 1_000_000)
            metrics.pnl_unrealized.labels(market=ticker).set(pnl.unrealized_micros / 1_000_000)
            for fee_type, total in (
                ("trading", pnl.fees.trading_micros),
                ("settlement", pnl.fees.settlement_micros),
                ("other", pnl.fees.other_micros),
            ):
                key = (ticker, fee_type)
                delta = total - self._fees_reported.get(key, 0)
                if delta > 0:  # a counter: only ever add what was paid since the last report
                    metrics.pnl_fees.labels(market=ticker, fee_type=fee_type).inc(delta / 1_000_000)
                    self._fees_reported[key] = total


def _usage(account: Account, now_us: int) -> AggregateUsage:
    """What every market of the account uses, for the aggregate limits ($0.0001 and 1/100 contract units)."""
    ledger = account.ledger
    markets = {}
    for market_id in ledger.market_ids():
        pnl = ledger.market(market_id, now_us)
        markets[market_id] = MarketUsage(
            market_id=market_id,
            notional_units=pnl.cost_basis_micros // 100,
            contracts_units=abs(pnl.net_units),
            hourly_pnl_units=pnl.hourly_net_micros // 100,
            daily_pnl_units=pnl.daily_net_micros // 100,
            active=pnl.net_units != 0 or bool(account.tracker.open_orders(market_id)),
        )
    return AggregateUsage(markets)


# ---------------------------------------------------------------------- recording (FR-901): only when enabled


def _quote(quote: Quote | None) -> tuple[int, int] | None:
    return None if quote is None else (quote.price.units, quote.size.units)


def _quote_set(quotes: QuoteSet | None) -> dict[str, tuple[int, int] | None] | None:
    """The four quotes as ``[price_units, size_units]`` (None: not quoted)."""
    if quotes is None:
        return None
    return {
        "yes_bid": _quote(quotes.yes_bid),
        "yes_ask": _quote(quotes.yes_ask),
        "no_bid": _quote(quotes.no_bid),
        "no_ask": _quote(quotes.no_ask),
    }


def _record_quote(
    recorder: SessionRecorder,
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
) -> None:
    """``quote_generated``: the strategy's inputs beside its outputs and the risk outcome; ``volatility_update``
    first when σ changed. The mid is the exact book mid (the engine receives ``float(mid)``)."""
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
            },
            "strategy": {
                "quotes": _quote_set(result.quotes),
                "reservation_price": result.reservation_price,
                "half_spread": result.half_spread,
                "skew": result.skew,
                "bid_size": result.bid_size,
                "ask_size": result.ask_size,
                "note": result.note,
            },
            "risk": {
                "quotes": _quote_set(outcome.quotes),
                "state": outcome.state.name.lower(),
                "reason": outcome.reason,
                "cancel_all": outcome.cancel_all,
                "kill_switch_tripped": outcome.kill_switch_tripped,
                # the rules that changed something (ALLOW is the common case and says nothing)
                "rules": [
                    (r.rule, r.action.value, r.reason) for r in outcome.records if r.action is not RiskAction.ALLOW
                ],
            },
        },
    )


def _record_actions(recorder: SessionRecorder, ticker: str, plan: OrderPlan) -> None:
    """What the act step is about to send, in plan order: ``order_cancel``, ``order_amend`` (amends and
    decreases), ``order_sent`` (places)."""
    for action in plan.actions:
        if isinstance(action, Place):
            request = action.request
            recorder.record(
                "order_sent",
                ticker,
                {
                    "client_order_id": request.client_order_id,
                    "side": request.side.value,
                    "order_side": request.order_side.value,
                    "price_units": request.price.units,
                    "size_units": request.quantity.units,
                    "time_in_force": request.time_in_force.value,
                    "post_only": request.post_only,
                    "reduce_only": request.reduce_only,
                    "level": action.level.value,
                    "attempt": action.attempt,
                    "reason": action.reason.value,
                },
            )
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


def _record_results(recorder: SessionRecorder, ticker: str, places: list[Place], placed: list[Any]) -> None:
    """Each create's outcome: ``order_ack`` (the venue took it), ``order_unknown`` (timed out: neither assumed
    placed nor rejected until a look-up settles it), ``order_rejected`` (a definitive refusal)."""
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
                },
            )
        elif isinstance(result, ExchangeUnavailableError):
            recorder.record("order_unknown", ticker, {"client_order_id": cid, "reason": str(result)})
        else:
            recorder.record(
                "order_rejected",
                ticker,
                {"client_order_id": cid, "reason": str(result), "error": type(result).__name__},
            )
