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

from mm.adapters.base import MarketInfo
from mm.adapters.errors import ExchangeError
from mm.controller.errors import TerminalError, TransientError
from mm.controller.manager import Result
from mm.controller.node import Account, ExchangeConnection, ExternalUsage, NodeContext
from mm.domain.market import NEVER_UPDATED_US
from mm.domain.price import QTY_SCALE
from mm.domain.sides import book_side
from mm.observability.metrics import MarketSeries
from mm.observability.risk_audit import RiskAudit
from mm.reconcilers.client_ids import Level
from mm.reconcilers.cycle_recording import record_cycle
from mm.reconcilers.market_actions import act, carry_out_deletion
from mm.reconcilers.market_recording import record_quote
from mm.reconcilers.market_reload import transition, validate
from mm.reconcilers.order_plan import OrderPlan, PlanContext, plan_orders
from mm.reconcilers.risk_inputs import market_usage, risk_context
from mm.risk.aggregate import AggregateRisk, AggregateUsage, MarketUsage
from mm.risk.engine import RiskEngine
from mm.risk.kill_switch import KillSwitch
from mm.risk.quote_ops import widen
from mm.risk.registry import build_pipeline
from mm.risk.states import TradingState, most_restrictive
from mm.specs.admission import merge_override
from mm.specs.canonical import digest
from mm.specs.market import MarketSpec
from mm.specs.risk import RiskPolicySpec
from mm.specs.strategy import StrategySpec
from mm.state.ledger_values import MarketPnl
from mm.strategy.engine import QuoteInputs, StrategyEngine
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
    attempt_floor_applied: bool = False
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
    recorded_inputs: dict[str, Any] = field(default_factory=dict)
    """What this Market's ``reconcile`` records last carried (spec digests, market facts): written again on change."""


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
        self._series: dict[str, MarketSeries] = {}
        """Per-market metric children, by ticker (looked up once: see MarketSeries)."""

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
        info = await self._market_info(conn, spec.ticker)
        # The cycle's one clock read: the hot reload, the plan and the ``reconcile`` record all use it, so a
        # replay on the recorded clock sees what this cycle saw.
        now = node.clock.now_us()
        runtime = self._runtime(name, spec, stored.generation, now)
        runtime.deletion_policy = spec.deletion_policy
        recorder = node.recorder
        if recorder is not None:
            # where and when this cycle ran; then no state_snapshot until it is over (snapshots fall between cycles)
            record_cycle(recorder, node, name, spec.ticker, runtime, now, info)
            recorder.hold_snapshots(spec.ticker)
        try:
            account = node.account(spec.exchange_ref, spec.execution)
            await self._subscribe(runtime, conn, account, spec.ticker)
            plan, phase, why = self._plan(name, spec, runtime, conn, account, info, now)
            await self._act(name, plan, runtime, account)
        finally:
            if recorder is not None:
                recorder.release_snapshots(spec.ticker)
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

    def runtime(self, name: str) -> MarketRuntime:
        """The runtime of the stored Market ``name`` for its current effective config (built if needed) — what a
        replay restores a ``state_snapshot``'s Market state into before the first cycle it replays."""
        stored = self.node.resources.get("Market", name)
        if stored is None:
            raise TerminalError(f"Market/{name} does not exist", reason="NotFound")
        return self._runtime(name, stored.spec, stored.generation, self.node.clock.now_us())

    def _runtime(self, name: str, spec: MarketSpec, generation: int, now_us: int) -> MarketRuntime:
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
        return self._transition(name, current, s_spec, r_spec, config_digest, generation, now_us)

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
            runtime.attempt_floor_applied = previous.attempt_floor_applied
            runtime.last_update_us = previous.last_update_us
            runtime.subscribed = previous.subscribed
            runtime.reloads = previous.reloads
            runtime.orders_sent = previous.orders_sent
            runtime.cancels_sent = previous.cancels_sent
            runtime.recorded_sigma = previous.recorded_sigma
            runtime.recorded_inputs = previous.recorded_inputs
        return runtime

    def _transition(
        self,
        name: str,
        current: MarketRuntime,
        s_spec: StrategySpec,
        r_spec: RiskPolicySpec,
        config_digest: str,
        generation: int,
        now_us: int,
    ) -> MarketRuntime:
        return transition(self, name, current, s_spec, r_spec, config_digest, generation, now_us)

    def _validate(self, runtime: MarketRuntime) -> str | None:
        return validate(self, runtime)

    def _ticker(self, name: str) -> str | None:
        stored = self.node.resources.get("Market", name)
        return stored.spec.ticker if stored is not None else None

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
        now: int,
    ) -> tuple[OrderPlan, str, str]:
        node = self.node
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
            context = risk_context(
                ticker,
                now,
                book,
                grid,
                position,
                int(runtime.strategy.max_inventory * QTY_SCALE),
                pnl,
                seconds_left,
                result.volatility,
            )
            runtime.risk.aggregate = self._aggregate()
            usage = _usage(account, now, node.external_usage)
            outcome = runtime.risk.evaluate(
                result.quotes,
                context,
                node_state=node_state,
                policy_state=policy_state,
                market_state=market_state,
                usage=usage,
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
                record_quote(
                    recorder,
                    name,
                    ticker,
                    runtime,
                    mid,
                    position,
                    tts,
                    now,
                    grid,
                    result,
                    outcome,
                    usage=usage,
                    states=(node_state, policy_state, market_state),
                )
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
        elif node.holds.blocked:
            state, phase, why = TradingState.HALTED, "Paused", node.holds.summary()
            desired = None
        elif desired is not None and node.holds.spread_multiplier() > 1.0:
            book_mid = book.mid() if book is not None else None
            centre = int(book_mid.scaleb(4)) if book_mid is not None else None  # $ → 1e-4 $ units
            desired = widen(desired, node.holds.spread_multiplier(), info.grid, centre)
            why = why or f"spreads widened ×{node.holds.spread_multiplier():g} (degraded network)"
        if desired is None and phase == "Quoting":
            phase = "Idle"
        if not runtime.attempt_floor_applied:
            floor = node.attempt_floor_for(ticker)  # a restart never re-uses an earlier run's client order ids
            if floor:
                runtime.attempts = {level: max(runtime.attempts.get(level, 0), floor) for level in Level}
            runtime.attempt_floor_applied = True
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

    # ------------------------------------------------------------------ acting (mm/reconcilers/market_actions.py)

    async def _act(self, name: str, plan: OrderPlan, runtime: MarketRuntime, account: Account) -> None:
        await act(self, name, plan, runtime, account)

    async def _deleted(self, name: str) -> None:
        runtime = self.node.market_state.get(name)
        await carry_out_deletion(self, name)
        if runtime is not None and runtime.subscribed is not None:
            exchange, ticker = runtime.subscribed
            series = self._series.get(ticker)
            if series is not None and not self.node.markets_trading(exchange, ticker):
                del self._series[ticker]
                series.forget()

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
            series = self._series.get(ticker)
            if series is None:
                series = self._series[ticker] = MarketSeries(metrics, ticker)
            net = account.ledger.net_units(ticker)
            series.inventory.set(net / QTY_SCALE)
            series.position_yes.set(max(net, 0) / QTY_SCALE)
            series.position_no.set(max(-net, 0) / QTY_SCALE)
            series.pnl_realized.set(pnl.realized_micros / 1_000_000)
            series.pnl_unrealized.set(pnl.unrealized_micros / 1_000_000)
            _export_market(series, node, spec, runtime.risk_policy, account, pnl, now)
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


def _export_market(
    series: MarketSeries,
    node: NodeContext,
    spec: MarketSpec,
    policy: RiskPolicySpec,
    account: Account,
    pnl: MarketPnl,
    now_us: int,
) -> None:
    """The Market's quoting, timing and limit metrics (the ledger ones are set by the caller)."""
    ticker = spec.ticker
    resting = account.tracker.open_orders(ticker)
    sides = len({book_side(o.request.side, o.request.order_side) for o in resting})
    series.quotes(len(resting), sides, node.wall.monotonic_ns())
    series.pnl_daily.set(pnl.daily_net_micros / 1_000_000)
    rules = policy.rules  # a disabled rule has no limit: NaN (no alert compares true, no line is drawn)
    series.inventory_limit.set(float(rules.max_inventory.limit) if rules.max_inventory.enabled else math.nan)
    series.daily_loss_limit.set(float(rules.daily_loss_limit.limit) if rules.daily_loss_limit.enabled else math.nan)
    series.hourly_loss_limit.set(float(rules.hourly_loss_limit.limit) if rules.hourly_loss_limit.enabled else math.nan)
    conn = node.exchanges.get(spec.exchange_ref)
    if conn is None:
        return
    info = conn.markets.get(ticker)
    if info is not None and info.close_time_us:
        series.time_to_settlement.set(max(info.close_time_us - now_us, 0) / US)
    book = conn.venue.book(ticker)
    if book is not None and book.last_update_us != NEVER_UPDATED_US:
        series.market_data_age.set((now_us - book.last_update_us) / US)


def _usage(account: Account, now_us: int, external: ExternalUsage | None = None) -> AggregateUsage:
    """What every market of the account uses, for the aggregate limits ($0.0001 and 1/100 contract units).
    ``external``: figures of markets this node's ledger does not hold (a replay's other markets), merged in."""
    ledger = account.ledger
    markets: dict[str, MarketUsage] = {}
    for market_id in ledger.market_ids():
        pnl = ledger.market(market_id, now_us)
        markets[market_id] = market_usage(
            pnl, active=pnl.net_units != 0 or bool(account.tracker.open_orders(market_id))
        )
    if external is not None:
        outside = external(account, now_us)
        if outside:
            for market_id, usage in outside.items():
                markets.setdefault(market_id, usage)
            markets = dict(sorted(markets.items()))  # in market order, as one ledger holding them all lists them
    return AggregateUsage(markets)
