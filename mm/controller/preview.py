"""``mmctl diff --plan``: the order actions a change would cause right now, Terraform-style, without acting.

For every Market the candidate resources affect, the Market reconciler's own planning (strategy → risk →
order plan) runs on a scratch copy of the world: the resources with the candidates applied (no revision, no
persistence), a copy of the account's ledger, the live books and our open orders read-only, and an in-memory
kill-switch latch seeded with the current states — so a preview can never trip the real switch, move the real
ledger or send anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from mm.controller.node import Account, NodeContext
from mm.controller.resources import ResourceStore
from mm.reconcilers.market import MarketReconciler, MarketRuntime
from mm.reconcilers.order_plan import Amend, Cancel, Decrease, OrderPlan, Place
from mm.risk.kill_switch import InMemoryLatch
from mm.specs.admission import AdmittedResource
from mm.state.ledger import Ledger

if TYPE_CHECKING:
    from mm.controller.runtime import NodeRuntime

__all__ = ["describe_plan", "preview_plans"]


def describe_plan(plan: OrderPlan) -> list[str]:
    """One line per action: ``cancel``/``amend``/``decrease``/``place`` with level, price and size."""
    lines = []
    for action in plan.actions:
        if isinstance(action, Cancel):
            lines.append(f"cancel   {action.level.value} {action.client_order_id} ({action.reason.value})")
        elif isinstance(action, Amend):
            lines.append(
                f"amend    {action.level.value} {action.client_order_id} -> {action.price} x "
                f"{action.quantity.to_fp()} ({action.reason.value})"
            )
        elif isinstance(action, Decrease):
            lines.append(
                f"decrease {action.level.value} {action.client_order_id} -> {action.reduce_to.to_fp()} "
                f"({action.reason.value})"
            )
        elif isinstance(action, Place):
            r = action.request
            lines.append(
                f"place    {action.level.value} {r.order_side.value} {r.price} x {r.quantity.to_fp()} "
                f"({action.reason.value})"
            )
    if plan.deferred and plan.deferred_reason:
        lines.append(f"(deferred: {plan.deferred_reason})")
    return lines


def _scratch(runtime: NodeRuntime, admitted: Sequence[AdmittedResource]) -> NodeContext:
    live = runtime.node
    resources = ResourceStore(runtime.clock)
    for stored in runtime.resources.all():
        resources.apply_spec(
            stored.kind, stored.name, stored.spec, stored.spec_data, digest=stored.digest, owner=stored.owner
        )
    for resource in admitted:
        resources.apply(resource)
    latch = InMemoryLatch()
    for scope in ("node", *(f"market/{m.name}" for m in runtime.resources.all("Market"))):
        state = live.latch.load(scope)
        if state is not None:
            latch.save(scope, state)
    scratch = NodeContext(runtime.clock, resources, prefix=live.prefix, latch=latch)
    scratch.exchanges = live.exchanges  # read-only here: books, market facts, trackers
    return scratch


def preview_plans(runtime: NodeRuntime, admitted: Sequence[AdmittedResource]) -> dict[str, list[str]]:
    scratch = _scratch(runtime, admitted)
    reconciler = MarketReconciler(scratch)
    changed = {(r.kind, r.name) for r in admitted}
    affected = sorted({m for kind, name in changed for m in runtime.affected_markets(kind, name)})
    affected += [r.name for r in admitted if r.kind == "Market" and r.name not in affected]
    out: dict[str, list[str]] = {}
    for name in affected:
        stored = scratch.resources.get("Market", name)
        if stored is None:
            out[name] = ["(deleted: its deletion policy runs)"]
            continue
        spec = stored.spec
        conn = scratch.exchanges.get(spec.exchange_ref)
        live_account = conn.accounts.get(spec.execution) if conn is not None else None
        info = conn.markets.get(spec.ticker) if conn is not None else None
        if conn is None or live_account is None or info is None:
            out[name] = ["(not trading yet: no plan to preview)"]
            continue
        ledger = Ledger.from_snapshot(
            live_account.ledger.snapshot(), fee_source="venue" if live_account.execution == "live" else "formula"
        )
        account = Account(
            live_account.exchange, live_account.execution, live_account.adapter, live_account.tracker, ledger
        )
        current: MarketRuntime | None = runtime.node.market_state.get(name)
        s_spec, r_spec, digest = reconciler._effective(spec)  # the same merge the Market uses
        candidate = reconciler._build(name, s_spec, r_spec, digest, stored.generation, current)
        candidate.last_update_us = None  # a preview shows the target, not the throttle
        plan, phase, why = reconciler._plan(name, spec, candidate, conn, account, info, scratch.clock.now_us())
        lines = describe_plan(plan)
        out[name] = lines or [f"(no order changes: {phase}{': ' + why if why else ''})"]
    return out
