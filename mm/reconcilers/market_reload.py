"""Hot reload of a Market's configuration (FR-1001–1006): the safe transition, validation and rollback.

All inside one reconcile (one worker per key, so nothing is in flight): pause (no order is sent for the new config
before it is validated) → apply (components built; a parameter change keeps the volatility estimator's state, a
swap inherits it when asked) → validate (a trial quote on the current mid must build a valid sheet on the market's
grid) → resume with it. An invalid config is rolled back: the Market keeps its engines and the changed
Strategy/RiskPolicy get their previous revision back as a new revision. At most
``hot_reload.max_changes_per_minute`` per Market; more wait (``ReloadDeferred``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mm.reconcilers.market_recording import record_reload, record_rollback
from mm.specs.risk import RiskPolicySpec
from mm.specs.strategy import StrategySpec
from mm.state.records import ConfigAuditRecord
from mm.strategy.engine import QuoteInputs

if TYPE_CHECKING:
    from mm.reconcilers.market import MarketReconciler, MarketRuntime

__all__ = ["transition", "validate"]

US = 1_000_000


def transition(
    reconciler: MarketReconciler,
    name: str,
    current: MarketRuntime,
    s_spec: StrategySpec,
    r_spec: RiskPolicySpec,
    config_digest: str,
    generation: int,
    now: int,
) -> MarketRuntime:
    """FR-1004's safe transition, inside one reconcile (one worker per key, so nothing is in flight):
    pause (no order is sent until the new config is validated) → apply (build it) → validate (a trial
    quote at the current mid) → resume with it; an invalid config is rolled back to the previous
    revision of the resources that changed. At most ``hot_reload.max_changes_per_minute`` per Market.
    ``now``: the cycle's time (the reload window counts from it; the records carry it)."""
    node = reconciler.node
    limit = _max_changes_per_minute(reconciler)
    recent = [t for t in current.reloads if now - t < 60 * US]
    if len(recent) >= limit:
        reconciler._condition(name, "ReloadDeferred", "True", "RateLimited", f"{limit} changes per minute at most")
        current.reload_blocked_until_us = min(recent) + 60 * US
        return current
    reconciler._condition(name, "ReloadDeferred", "False", "Applied")
    try:
        candidate = reconciler._build(name, s_spec, r_spec, config_digest, generation, current)
        problem = reconciler._validate(candidate)
    except (ValueError, TypeError, ArithmeticError) as exc:
        problem = f"{type(exc).__name__}: {exc}"
    if problem is not None:
        _rollback(reconciler, name, current, problem, (s_spec, r_spec), now)
        return current
    candidate.reloads = [*recent, now]
    node.market_state[name] = candidate
    node.event(f"Market/{name}", "Reloaded", f"config {current.config_digest[:12]} -> {config_digest[:12]}")
    if node.recorder is not None:
        ticker = reconciler._ticker(name)
        if ticker is not None:
            record_reload(node.recorder, ticker, name, current, candidate, applied=True, ts_us=now)
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


def validate(reconciler: MarketReconciler, runtime: MarketRuntime) -> str | None:
    """A trial quote with the new components at mid 0.50 (or the live mid): it must build a valid sheet."""
    stored = reconciler.node.resources.get("Market", runtime.name)
    if stored is None:
        return None
    conn = reconciler.node.exchanges.get(stored.spec.exchange_ref)
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
            now_us=reconciler.node.clock.now_us(),
            grid=grid,
        )
    )
    for quote in result.quotes.quotes():
        if not grid.contains(quote.price.units):
            return f"trial quote {quote.price} is off the tick grid"
    return None


def _rollback(
    reconciler: MarketReconciler,
    name: str,
    current: MarketRuntime,
    problem: str,
    attempted: tuple[StrategySpec, RiskPolicySpec],
    now: int,
) -> None:
    """Keep trading the old config and put the changed resources back to their previous revisions."""
    node = reconciler.node
    node.event(f"Market/{name}", "ReloadRolledBack", problem, warning=True)
    if node.recorder is not None:
        ticker = reconciler._ticker(name)
        if ticker is not None:
            record_rollback(node.recorder, ticker, name, current, problem, attempted, ts_us=now)
    reconciler._condition(name, "ReloadFailed", "True", "InvalidConfig", problem)
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


def _max_changes_per_minute(reconciler: MarketReconciler) -> int:
    nodes = reconciler.node.resources.all("TradingNode")
    return int(nodes[0].spec.hot_reload.max_changes_per_minute) if nodes else 10
