"""The node a full replay runs (FR-902): built from a session's ``session_start`` around replay adapters, and kept
in step with the recorded inputs that do not come from the venue — spec changes, market facts, kill switches —
or restored from a ``state_snapshot``.

The replayed node is the real one: a :class:`NodeContext` (resource store, accounts with their
:class:`OrderTracker` and :class:`Ledger`, kill switches) and the unmodified :class:`MarketReconciler`, on a
:class:`SimulatedClock`. What differs is only where things come from:

* each Exchange's venue is a :class:`ReplayExchangeAdapter`; a paper account gets its own one reading market data
  from it, as :class:`PaperExecution` does live (its fills are the recorded ones, not a fill model's);
* each Market's Strategy and RiskPolicy are stored under the Market's own name holding the *effective* specs the
  session recorded (overrides already merged), so several Markets sharing a Strategy with different overrides
  replay each with its own. Stored digests are the recorded ones, so the node's own change tracking agrees;
* the node's recorder is the validator's :class:`CaptureSink`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from mm.adapters.replay import RecordFeed, ReplayExchangeAdapter, market_info_from_facts
from mm.clock import SimulatedClock
from mm.controller.node import PAPER_BALANCE_MICROS, Account, ExchangeConnection, Execution, NodeContext
from mm.controller.orders import OrderTracker
from mm.controller.replay_resyncs import VenueReads
from mm.controller.resources import ResourceStore
from mm.controller.session_content import custom_rule_fingerprints
from mm.controller.session_restore import restore_account, restore_runtime
from mm.domain.events import ExchangeEvent
from mm.domain.fees import FeeSchedule
from mm.reconcilers.market import MarketReconciler
from mm.recording.format import SessionRecord
from mm.recording.order_records import order_from_payload
from mm.recording.replay import ReplayError
from mm.recording.validator import CaptureSink
from mm.risk.aggregate import MarketUsage
from mm.risk.kill_switch import KillSwitch
from mm.specs.canonical import digest
from mm.specs.exchange import ExchangeSpec
from mm.specs.market import MarketSpec
from mm.specs.node import TradingNodeSpec
from mm.specs.risk import RiskPolicySpec
from mm.specs.strategy import StrategySpec
from mm.state.ledger import Ledger

__all__ = ["NODE_NAME", "ReplayNode", "build_replay_node", "changed_custom_rules", "external_usage_of"]

NODE_NAME = "replay"
"""The TradingNode's name in the replay's store (a session records its spec, not its name)."""


@dataclass
class ReplayNode:
    """The replayed node and the pieces the driver feeds."""

    clock: SimulatedClock
    node: NodeContext
    reconciler: MarketReconciler
    sink: CaptureSink
    ticker: str
    exchange: str
    venue: ReplayExchangeAdapter
    strategy_override: Mapping[str, Any] | None = None
    external: dict[str, MarketUsage] = field(default_factory=dict)
    """This cycle's usage of the markets outside the recording (the account's other markets)."""
    venue_reads: VenueReads | None = None
    """A ``replay_format`` 2 file: the venue's last REST reads of our orders, for the resyncs it did not record
    (:mod:`mm.controller.replay_resyncs`); None for a file that records them all."""

    @property
    def store(self) -> ResourceStore:
        return self.node.resources

    @property
    def connection(self) -> ExchangeConnection:
        return self.node.exchanges[self.exchange]

    def adapter(self, execution: str) -> ReplayExchangeAdapter:
        account = self.account(execution)
        assert isinstance(account.adapter, ReplayExchangeAdapter)
        return account.adapter

    def account(self, execution: str) -> Account:
        kind: Execution = "paper" if execution == "paper" else "live"
        found = self.connection.accounts.get(kind)
        return found if found is not None else self._open_account(kind)

    def _open_account(self, execution: Execution) -> Account:
        node, exchange = self.node, self.exchange
        if execution == "live":
            adapter = self.venue
            ledger = Ledger(fee_source="venue", fees=FeeSchedule())
        else:
            adapter = ReplayExchangeAdapter(self.clock, execution="paper", feed=self.venue.feed, market_data=self.venue)

            async def to_paper_account(event: ExchangeEvent) -> None:
                await node.on_account_event(exchange, "paper", event)

            adapter.on_event(to_paper_account)
            ledger = Ledger(fee_source="formula", fees=FeeSchedule())
            ledger.cash_micros = PAPER_BALANCE_MICROS
        account = Account(exchange, execution, adapter, OrderTracker(node.prefix), ledger)
        self.connection.accounts[execution] = account
        return account

    # ------------------------------------------------------------------ recorded inputs

    def apply_reload(self, data: Mapping[str, Any]) -> None:
        """A ``config_reload``: the specs the Market changed to (or tried, when it was rolled back) go into the
        store, so the node's own hot reload runs on this cycle exactly as it did."""
        name = str(data.get("resource", "")).removeprefix("Market/")
        if self.store.get("Market", name) is None:
            return
        if data.get("applied") and "strategy" in data and "risk_policy" in data:
            self._put_specs(name, data["strategy"], data["risk_policy"])
        elif not data.get("applied") and "attempted_strategy" in data:
            self._put_specs(name, data["attempted_strategy"], data["attempted_risk_policy"])

    def apply_cycle(self, data: Mapping[str, Any]) -> None:
        """A ``reconcile`` record's inputs, as they were when the cycle started: the Market's spec and generation,
        the TradingNode's spec, the market's facts, the kill switches; a deleted Market leaves the store."""
        name = str(data["resource"])
        if data.get("deleted"):
            self.store.delete("Market", name)
            return
        if "trading_node" in data:
            if data["trading_node"] is None:
                self.store.delete("TradingNode", NODE_NAME)
            else:
                self._put("TradingNode", NODE_NAME, TradingNodeSpec, data["trading_node"])
        if "market" in data:
            self._put_market(name, data["market"])
        stored = self.store.get("Market", name)
        if stored is not None and data.get("generation") is not None:
            stored.generation = int(data["generation"])
        if "market_info" in data:
            self.set_market_info(data["market_info"])
        switches = data.get("kill_switch")
        if switches:
            self._sync_switch(self.node.node_switch, bool(switches[0]))
            runtime = self.node.market_state.get(name)
            market_switch = (
                runtime.risk.market_switch if runtime is not None else KillSwitch(self.node.latch, f"market/{name}")
            )
            self._sync_switch(market_switch, bool(switches[1]))

    def set_market_info(self, facts: Mapping[str, Any]) -> None:
        if not facts:
            return
        info = market_info_from_facts(self.ticker, facts)
        self.connection.markets[self.ticker] = info
        self.venue.set_market(info)

    def _sync_switch(self, switch: KillSwitch, tripped: bool) -> None:
        """A switch tripped or reset outside the Market's cycles (an operator, another market) is given as recorded."""
        now = self.clock.now_us()
        if tripped and not switch.tripped:
            switch.trigger("tripped as recorded", "recovery", now)
        elif not tripped and switch.tripped:
            switch.reset(confirm=True, operator="replay (as recorded)", now_us=now)

    def restore(self, record: SessionRecord) -> None:
        """Put the node into a ``state_snapshot``'s state (partial replay, or the session's first snapshot)."""
        data, now = record.data, record.ts_us
        self._sync_switch(self.node.node_switch, bool(data.get("kill_switch")))
        for entry in data.get("markets") or []:
            stored = self.store.get("Market", str(entry["name"]))
            if stored is None:
                continue
            stored.generation = int(entry["generation"])
            restore_runtime(self.reconciler.runtime(stored.name), entry, now)
        for entry in data.get("accounts") or []:
            if entry.get("exchange") != self.exchange or "restore" not in entry:
                continue
            account = self.account(str(entry["execution"]))
            orders = restore_account(account, self.ticker, entry, now)
            adapter = self.adapter(account.execution)
            adapter.restore(orders, {self.ticker: int(entry["position_units"])})
            adapter.balance_micros = int((entry.get("ledger") or {}).get("cash_micros", account.ledger.cash_micros))
        self.venue.restore_book(self.ticker, data.get("book"))

    def apply_node_cancel(self, data: Mapping[str, Any]) -> None:
        """Our orders cancelled outside the Market reconciler (kill switch, shutdown, rollback), as answered."""
        execution = str(data["execution"])
        account, adapter = self.account(execution), self.adapter(execution)
        done = [str(order_id) for order_id, error in data["orders"] if error is None]
        for order_id in done:
            account.tracker.cancelled(order_id)
        adapter.forget_orders(done)

    def apply_orders_resync(self, data: Mapping[str, Any]) -> list[str]:
        """The Exchange reconciler's resync with the venue's open orders (or a stuck create looked up). Returns the
        exchange ids of the orders whose copy an unrecorded resync of a format-2 file replaced (inferred)."""
        execution, ticker = str(data["execution"]), self.ticker
        account, adapter = self.account(execution), self.adapter(execution)
        reads = self.venue_reads if execution == "live" else None
        inferred: list[str] = []
        if data.get("open_orders") is not None:
            venue_open = [order_from_payload(ticker, o) for o in data["open_orders"]]
            account.tracker.resync(venue_open, market_id=ticker)
            listed = {o.exchange_order_id for o in venue_open}
            adapter.forget_orders([i for i, o in adapter.orders.items() if o.status.is_live and i not in listed])
            adapter.restore(venue_open, {})
            if reads is not None:
                for order in venue_open:
                    reads.read(order)
        elif reads is not None:
            # Stuck creates are looked up right after the open orders were resynced, which a format-2 file recorded
            # only when an order was adopted or dropped: the venue's copies replaced the tracker's just before.
            for order in reads.of(account.tracker.open_orders(ticker)):
                account.tracker.update(order)
                adapter.restore([order], {})
                inferred.append(order.exchange_order_id or "")
        for payload in data.get("resolved") or []:
            order = order_from_payload(ticker, payload)
            account.tracker.acked(order)
            adapter.restore([order], {})
            if reads is not None:
                reads.read(order)
        for client_order_id in data.get("failed") or []:
            account.tracker.failed(str(client_order_id))
        return inferred

    def note_venue(self, record: SessionRecord) -> None:
        """A format-2 file: what ``record`` tells of the venue's copy of our orders (see :attr:`venue_reads`)."""
        reads, data = self.venue_reads, record.data
        if reads is None:
            return
        live = data.get("execution", "live") == "live"
        if record.type == "order_update" and live:
            reads.streamed(order_from_payload(record.market, data))
        elif record.type == "fill" and live:
            reads.moved(str(data["order_id"]), int(data["venue_ts_us"]))
        elif record.type == "order_result" and data.get("error") is None and not data.get("raised"):
            if data.get("action") == "amend" and data.get("order") is not None:
                reads.read(order_from_payload(record.market, data["order"]))  # the adapter re-reads it over REST
            elif data.get("action") == "decrease":
                reads.moved(str(data["exchange_order_id"]))

    # ------------------------------------------------------------------ the store

    def _put(self, kind: str, name: str, model: type[BaseModel], data: Mapping[str, Any]) -> None:
        try:
            spec = model.model_validate(data)
        except ValidationError as exc:
            raise ReplayError(f"the recorded {kind} spec does not validate: {exc}") from None
        self.store.apply_spec(kind, name, spec, dict(data), digest=digest(dict(data)), source="replay")

    def _put_specs(self, name: str, strategy: Mapping[str, Any], risk_policy: Mapping[str, Any]) -> None:
        chosen = self.strategy_override if self.strategy_override is not None else strategy
        self._put("Strategy", name, StrategySpec, chosen)
        self._put("RiskPolicy", name, RiskPolicySpec, risk_policy)

    def _put_market(self, name: str, recorded: Mapping[str, Any]) -> None:
        """The Market as recorded (its data and digest, which the node's ``reconcile`` records carry), its model
        pointing at its own effective Strategy and RiskPolicy (overrides merged already)."""
        data = {**recorded, "strategy_ref": name, "risk_policy_ref": name, "overrides": {"strategy": {}, "risk": {}}}
        try:
            spec = MarketSpec.model_validate(data)
        except ValidationError as exc:
            raise ReplayError(f"the recorded Market {name} does not validate: {exc}") from None
        self.store.apply_spec("Market", name, spec, dict(recorded), digest=digest(dict(recorded)), source="replay")


def external_usage_of(quote: SessionRecord | None, ticker: str) -> dict[str, MarketUsage]:
    """The usage of the account's other markets a ``quote_generated`` recorded (they are in other files)."""
    risk = (quote.data.get("inputs") or {}).get("risk") if quote is not None else None
    usage = (risk or {}).get("usage") or []
    return {
        str(m[0]): MarketUsage(str(m[0]), int(m[1]), int(m[2]), int(m[3]), int(m[4]), bool(m[5]))
        for m in usage
        if m[0] != ticker
    }


def changed_custom_rules(start: SessionRecord) -> list[str]:
    """Notes on the custom risk rules whose source differs now from the recording's (fingerprints)."""
    notes = []
    for entry in (start.data.get("config") or {}).get("markets") or []:
        recorded = entry.get("custom_rules") or {}
        if not recorded:
            continue
        try:
            current = custom_rule_fingerprints(RiskPolicySpec.model_validate(entry.get("risk_policy") or {}))
        except ValidationError:
            continue
        for rule, fingerprint in recorded.items():
            if current.get(rule) != fingerprint:
                notes.append(
                    f"custom risk rule {rule} ({fingerprint.get('module')}) of Market {entry.get('name')}: its source "
                    "differs from the recorded one — a divergence may come from the rule's code"
                )
    return notes


def build_replay_node(
    start: SessionRecord, feed: RecordFeed, *, strategy_override: Mapping[str, Any] | None = None
) -> ReplayNode:
    """The node of a ``session_start`` (see the module docstring), its clock at the session's start."""
    data = start.data
    config = data.get("config") or {}
    ticker = start.market
    clock = SimulatedClock(start.ts_us)
    store = ResourceStore(clock)
    node = NodeContext(clock, store, prefix=str(data.get("client_id_prefix") or "mm"), wall_clock=clock)
    node.attempt_floor[ticker] = int(data.get("attempt_floor", 0))  # recordings before it counted from 0
    sink = CaptureSink(frozenset({ticker}))
    node.recorder = sink
    entries = [m for m in config.get("markets") or [] if "strategy" in m and "risk_policy" in m]
    if not entries:
        raise ReplayError(f"the session_start holds no Market with its effective specs for {ticker}")
    exchange = str((entries[0].get("market") or {}).get("exchange_ref", ""))
    exchange_spec = (config.get("exchanges") or {}).get(exchange)
    if exchange_spec is None:
        raise ReplayError(f"the session_start does not record Exchange/{exchange}")
    venue = ReplayExchangeAdapter(clock, execution="live", feed=feed)
    replay = ReplayNode(clock, node, MarketReconciler(node), sink, ticker, exchange, venue, strategy_override)
    replay._put("Exchange", exchange, ExchangeSpec, exchange_spec)
    stored_exchange = store.get("Exchange", exchange)
    assert stored_exchange is not None
    if config.get("trading_node") is not None:
        replay._put("TradingNode", NODE_NAME, TradingNodeSpec, config["trading_node"])
    conn = ExchangeConnection(
        exchange,
        stored_exchange.digest,
        stored_exchange.spec,
        venue,
        connected=True,
        loaded=True,
        positions_imported=True,
    )
    node.exchanges[exchange] = conn

    async def to_node(event: ExchangeEvent) -> None:
        await node.on_venue_event(exchange, event)

    venue.on_event(to_node)
    replay.set_market_info(data.get("market_info") or {})
    replay.account("live")  # the live node always has it (the Exchange reconciler loads it)
    for entry in entries:
        name = str(entry["name"])
        replay._put_specs(name, entry["strategy"], entry["risk_policy"])
        replay._put_market(name, entry["market"])
        stored = store.get("Market", name)
        assert stored is not None
        stored.generation = int(entry.get("generation", 1))
        if entry["market"].get("execution") == "paper":
            replay.account("paper")

    async def kill(reason: str, source: str) -> int:
        # The runtime's kill: trip the node switch; its cancels are in the file (``node_cancel``) and applied there.
        node.node_switch.trigger(reason, "rule" if source == "rule" else "manual", clock.now_us())
        return 0

    node.kill = kill
    node.external_usage = lambda _account, _now: replay.external
    return replay
