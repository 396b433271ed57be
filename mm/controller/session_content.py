"""What a session recording starts with and snapshots (FR-901): the effective configuration of every Market on a
ticker, the exchanges, the node, the market's facts and the seeds (``session_start``), and per account the
position, PnL and open orders (``state_snapshot`` / ``session_end``), all in exact units — with what a replay
needs to start at a snapshot (:mod:`mm.controller.session_restore`)."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import zlib
from typing import Any

from mm.clock import Clock
from mm.controller.node import NodeContext
from mm.controller.session_restore import account_restore_payload, book_payload, runtime_payload
from mm.reconcilers.cycle_recording import market_facts
from mm.specs.node import TradingNodeSpec
from mm.specs.risk import RiskPolicySpec

__all__ = ["REPLAY_FORMAT", "custom_rule_fingerprints", "session_info", "session_state"]

REPLAY_FORMAT = 3
"""``session_start.replay_format``: 2 = the file marks every reconcile cycle and every order call's answer, and
its snapshots carry the state a replay restores (absent in older recordings: 1); 3 = it also records every order
resync that changed a tracked order, not only those that adopted or dropped one (a format-2 replay infers those
where it can: :mod:`mm.controller.replay_resyncs`)."""


def custom_rule_fingerprints(policy: RiskPolicySpec) -> dict[str, dict[str, str | None]]:
    """Per custom rule, its ``module`` and the sha256 of the module's source file (None when it cannot be read):
    a replay with different rule code would diverge for a reason the recording cannot show."""
    prints: dict[str, dict[str, str | None]] = {}
    for rule in policy.custom_rules:
        module_name = rule.module.rpartition(".")[0]
        sha: str | None = None
        try:
            spec = importlib.util.find_spec(module_name)
            if spec is not None and spec.origin is not None and os.path.isfile(spec.origin):
                with open(spec.origin, "rb") as source:
                    sha = hashlib.sha256(source.read()).hexdigest()
        except (ImportError, ValueError, OSError):
            sha = None
        prints[rule.name or rule.module] = {"module": rule.module, "sha256": sha}
    return prints


def session_info(node: NodeContext, clock: Clock, node_spec: TradingNodeSpec | None, ticker: str) -> dict[str, Any]:
    """``session_start``: the effective specs of every Market trading ``ticker`` (Strategy and RiskPolicy with
    the Market's overrides merged, as the reconciler runs them), the Exchanges, the TradingNode, the market's
    facts, and the seeds that decide anything random."""
    markets: list[dict[str, Any]] = []
    exchanges: dict[str, Any] = {}
    facts: dict[str, Any] = {}
    seeds: dict[str, Any] = {"pythonhashseed": os.environ.get("PYTHONHASHSEED")}
    for market in node.resources.all("Market"):
        if market.spec.ticker != ticker:
            continue
        entry: dict[str, Any] = {
            "name": market.name,
            "generation": market.generation,
            "labels": dict(market.labels),
            "market": market.spec.model_dump(mode="json"),
        }
        runtime = node.market_state.get(market.name)
        if runtime is not None:
            entry["config_digest"] = runtime.config_digest
            entry["strategy"] = runtime.strategy.model_dump(mode="json")
            entry["risk_policy"] = runtime.risk_policy.model_dump(mode="json")
            fingerprints = custom_rule_fingerprints(runtime.risk_policy)
            if fingerprints:
                entry["custom_rules"] = fingerprints
        markets.append(entry)
        selector = market.labels.get("mm/selector")
        stored_selector = node.resources.get("MarketSelector", selector) if selector else None
        if stored_selector is not None:
            # the seed SelectorReconciler ranks with (selection_strategy: random)
            name = stored_selector.name
            seeds.setdefault("selectors", {})[name] = zlib.crc32(f"{name}:{stored_selector.generation}".encode())
        conn = node.exchanges.get(market.spec.exchange_ref)
        if conn is None:
            continue
        exchanges[conn.name] = conn.spec.model_dump(mode="json")
        if conn.spec.venue == "simulator" and conn.spec.simulator is not None:
            seeds.setdefault("simulator", {})[conn.name] = conn.spec.simulator.seed
        info = conn.markets.get(ticker)
        if info is not None:
            facts = market_facts(info)
    return {
        "config": {
            "markets": markets,
            "exchanges": exchanges,
            "trading_node": node_spec.model_dump(mode="json") if node_spec is not None else None,
        },
        "market_info": facts,
        "seeds": seeds,
        "clock": type(clock).__name__,
        "client_id_prefix": node.prefix,
        "attempt_floor": node.attempt_floor_for(ticker),
        "replay_format": REPLAY_FORMAT,
    }


def session_state(node: NodeContext, now: int, ticker: str) -> dict[str, Any]:
    """``state_snapshot`` / ``session_end``: per account trading ``ticker``, the position, PnL and open orders
    (exact: 1/100 contract, $0.0001 and micro-dollar units), with the account's ledger summary."""
    accounts = []
    for account in node.accounts():
        orders = account.tracker.open_orders(ticker)
        if ticker not in account.ledger.market_ids() and not orders:
            continue
        pnl = account.ledger.market(ticker, now)
        summary = account.ledger.summary(now)
        accounts.append(
            {
                "exchange": account.exchange,
                "execution": account.execution,
                "position_units": pnl.net_units,
                "cost_basis_micros": pnl.cost_basis_micros,
                "realized_micros": pnl.realized_micros,
                "unrealized_micros": pnl.unrealized_micros,
                "fees_micros": pnl.fees.total_micros,
                "open_orders": [
                    {
                        "client_order_id": o.request.client_order_id,
                        "exchange_order_id": o.exchange_order_id,
                        "side": o.request.side.value,
                        "order_side": o.request.order_side.value,
                        "price_units": o.request.price.units,
                        "remaining_units": o.remaining.units,
                    }
                    for o in orders
                ],
                "ledger": {
                    "cash_micros": summary.cash_micros,
                    "realized_micros": summary.realized_micros,
                    "unrealized_micros": summary.unrealized_micros,
                    "fees_micros": summary.fees.total_micros,
                    "net_micros": summary.net_micros,
                },
                "restore": account_restore_payload(account, ticker),
            }
        )
    markets = []
    exchange = None
    for market in node.resources.all("Market"):
        runtime = node.market_state.get(market.name)
        if market.spec.ticker == ticker and runtime is not None:
            markets.append(runtime_payload(runtime))
            exchange = exchange or market.spec.exchange_ref
    return {
        "accounts": accounts,
        "kill_switch": node.node_switch.tripped,
        "markets": markets,
        "book": book_payload(node, exchange, ticker) if exchange is not None else None,
    }
