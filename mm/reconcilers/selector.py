"""The MarketSelector reconciler: discover markets, choose them, own their Market resources (FR-1303).

observe (the venue's listing of the selector's series, plus the markets it already owns) → plan (pure:
:func:`~mm.reconcilers.market_selection.select`) → act: create or update the Market resources of ACTIVE and
SETTLING tickers (owned by the selector, so hourly markets roll by themselves), and delete the Markets of
SETTLED tickers once they have no open orders left (their deletion policy runs in the Market reconciler).
The selector's lifecycle state lives in its status (``markets``), so a restart resumes where it was.
"""

from __future__ import annotations

import zlib

from mm.adapters.base import ExchangeAdapter, MarketInfo
from mm.adapters.errors import ExchangeError
from mm.controller.errors import TransientError
from mm.controller.manager import Result
from mm.controller.node import NodeContext
from mm.controller.resources import ResourceStore, key_of
from mm.reconcilers.market_selection import SelectorState, select
from mm.specs.market import MarketSelectorSpec

__all__ = ["SelectorReconciler"]


class SelectorReconciler:
    kind = "MarketSelector"

    def __init__(self, node: NodeContext, *, period_s: float = 5.0) -> None:
        self.node = node
        self._period_s = period_s

    async def reconcile(self, name: str) -> Result:
        node = self.node
        resources = node.resources
        stored = resources.get("MarketSelector", name)
        owner = key_of("MarketSelector", name)
        if stored is None:
            for market in resources.owned_by(owner):
                resources.delete("Market", market.name)
            return Result()
        spec: MarketSelectorSpec = stored.spec
        conn = node.exchanges.get(spec.exchange_ref)
        if conn is None or not conn.loaded:
            resources.set_condition("MarketSelector", name, "Ready", "False", "WaitingForExchange")
            raise TransientError(f"Exchange/{spec.exchange_ref} is not ready", delay_s=0.5)
        infos = await self._listing(conn.venue, spec, [r.spec.ticker for r in resources.owned_by(owner)])
        for info in infos:
            conn.markets[info.market_id] = info
        state = SelectorState.from_status(stored.status.get("selection", {}))
        now = node.clock.now_us()
        seed = zlib.crc32(f"{name}:{stored.generation}".encode())
        plan = select(spec, infos, state, now, seed, selector_name=name)
        for transition in plan.transitions:
            node.event(
                f"MarketSelector/{name}",
                f"Market{transition.to_phase.value.title()}",
                f"{transition.ticker}: {transition.reason}",
            )
        for market_name, market_spec in plan.desired.items():
            resources.apply_spec(
                "Market",
                market_name,
                market_spec,
                market_spec.model_dump(mode="json"),
                labels={"mm/selector": name},
                source=f"MarketSelector/{name}",
                change_cause="selected" if market_name not in _names(resources, owner) else "updated by the selector",
                owner=owner,
            )
        desired_names = set(plan.desired)
        for market in resources.owned_by(owner):
            if market.name in desired_names:
                continue
            if self._has_orders(market.spec.exchange_ref, market.spec.ticker):
                continue  # its Market reconciler cancels them first (cutoff, wind-down)
            resources.delete("Market", market.name)
            node.event(f"MarketSelector/{name}", "MarketReleased", f"{market.spec.ticker} done")
        resources.set_status(
            "MarketSelector",
            name,
            phase="Selecting",
            active=list(plan.active),
            selection=plan.state.to_status(),
            rejected=[f"{r.ticker}: {r.reason}" for r in plan.rejected[:20]],
            unmet_includes=[f"{r.ticker}: {r.reason}" for r in plan.unmet_includes],
            last_reconcile_us=now,
        )
        resources.set_condition("MarketSelector", name, "Ready", "True", "Selecting")
        resources.observed("MarketSelector", name, stored.generation)
        return Result(requeue_after_s=self._period_s)

    async def _listing(self, venue: ExchangeAdapter, spec: MarketSelectorSpec, owned: list[str]) -> list[MarketInfo]:
        try:
            infos = await venue.list_markets(series=spec.series)
            listed = {i.market_id for i in infos}
            for ticker in [*owned, *spec.include_tickers]:
                if ticker not in listed:
                    try:
                        infos.append(await venue.get_market(ticker))
                    except ExchangeError:
                        continue  # gone from the venue: select() treats it as settled
            return infos
        except ExchangeError as exc:
            raise TransientError(f"cannot list markets: {exc}") from exc

    def _has_orders(self, exchange: str, ticker: str) -> bool:
        conn = self.node.exchanges.get(exchange)
        if conn is None:
            return False
        return any(a.tracker.open_orders(ticker) for a in conn.accounts.values())


def _names(resources: ResourceStore, owner: str) -> set[str]:
    return {r.name for r in resources.owned_by(owner)}
