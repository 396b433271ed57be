"""The Exchange reconciler: one venue connection per Exchange resource, healthy and in sync (FR-112, FR-703).

Each reconcile:

1. builds the venue adapter when there is none or the spec changed (through an injected ``build`` — the
   factory, or a test's), connects it, and registers the node's event routing;
2. the first time after connecting, loads positions and open orders from the venue (design.md §4: never act
   before they are loaded), adopting our orders into the trackers and reporting foreign ones;
3. afterwards, every ``orders_resync_s`` (30 s) re-reads open orders (the exchange is the source of truth:
   ours it no longer has are dropped, ones we did not know are adopted), resolves stuck creates by client
   order id, and compares positions with the ledger every ``positions_resync_s`` (60 s), logging mismatches
   (and counting every difference in ``mm_reconciliation_drift_total``);
4. sets ``Connected``, ``Authenticated`` and ``Ready``.

A deleted Exchange is disconnected. Connection failures are transient (retried with backoff); refused
credentials are terminal until the spec (or key) changes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Any

from mm.adapters.base import ExchangeAdapter
from mm.adapters.errors import AuthenticationFailedError, ExchangeError
from mm.controller.errors import TerminalError, TransientError
from mm.controller.manager import Result
from mm.controller.node import Account, ExchangeConnection, NodeContext, venue_connected
from mm.domain.events import ExchangeEvent, FillEvent
from mm.domain.orders import Fill, Order
from mm.domain.sides import OrderSide, Side
from mm.recording.order_records import order_payload
from mm.specs.exchange import ExchangeSpec
from mm.specs.node import Startup
from mm.state.checkpoint import load_checkpoint
from mm.state.ledger import PositionDiff
from mm.state.position_import import (
    Mid,
    PositionImport,
    PositionImportError,
    StartingPosition,
    check_starting_inventory,
    import_from_exchange,
    import_manual,
    manual_config,
    seed_ledger,
)
from mm.state.records import FillRecord, SettlementRecord

FILL_BACKFILL_MARGIN_US = 60_000_000
"""Fills are read back from a minute before the last one booked: venue timestamps of fills delivered out of order."""

__all__ = ["ExchangeReconciler"]


def net_effect(fill: Fill) -> int:
    """What the fill does to net YES, 1/100 contract: buying YES or selling NO adds, the others subtract."""
    adds = (fill.side is Side.YES) is (fill.order_side is OrderSide.BUY)
    return fill.quantity.units if adds else -fill.quantity.units


def newest_fills_explaining(missing_units: int, market_id: str, fills: Sequence[Fill]) -> list[Fill]:
    """The newest fills of ``market_id`` (``fills`` oldest first) whose net effect is exactly ``missing_units``,
    oldest first; [] when no such newest run exists (the difference has another cause)."""
    newest_first = [f for f in reversed(fills) if f.market_id == market_id]
    effect = 0
    for count, fill in enumerate(newest_first, start=1):
        effect += net_effect(fill)
        if effect == missing_units and missing_units:
            return list(reversed(newest_first[:count]))
    return []


BuildAdapter = Callable[[str, ExchangeSpec], ExchangeAdapter]

US = 1_000_000


class ExchangeReconciler:
    kind = "Exchange"

    def __init__(
        self,
        node: NodeContext,
        build: BuildAdapter,
        *,
        orders_resync_s: float = 30.0,
        positions_resync_s: float = 60.0,
        balance_resync_s: float = 300.0,
        stuck_after_s: float = 10.0,
    ) -> None:
        self.node = node
        self._build = build
        self._orders_resync_us = int(orders_resync_s * US)
        self._positions_resync_us = int(positions_resync_s * US)
        self._stuck_us = int(stuck_after_s * US)
        self._last_positions_us: dict[str, int] = {}
        self._mismatches: dict[str, set[tuple[str, int, int]]] = {}
        self._primed: dict[str, list[Fill]] = {}
        """Per exchange, the fills marked as booked at the load, until the first positions check (newest last)."""
        """Position differences seen at the last check: one seen twice in a row is corrected (FR-1203)."""
        self._last_balance_us: dict[str, int] = {}
        self._balance_resync_us = int(balance_resync_s * US)
        self._settlements_seen: dict[str, int] = {}

    def _router(self, name: str) -> Callable[[ExchangeEvent], Awaitable[None]]:
        async def route(event: ExchangeEvent) -> None:
            await self.node.on_venue_event(name, event)

        return route

    async def reconcile(self, name: str) -> Result:
        node = self.node
        resources = node.resources
        stored = resources.get("Exchange", name)
        current = node.exchanges.get(name)
        if stored is None:
            if current is not None:
                await current.venue.disconnect()
                del node.exchanges[name]
                node.event(f"Exchange/{name}", "Disconnected", "the Exchange was deleted")
            return Result()
        spec: ExchangeSpec = stored.spec
        if current is not None and current.digest != stored.digest:
            node.event(f"Exchange/{name}", "Reconnecting", "the Exchange spec changed")
            await current.venue.disconnect()
            del node.exchanges[name]
            current = None
        if current is None:
            try:
                venue = self._build(name, spec)
            except (ExchangeError, ValueError, OSError) as exc:
                raise TerminalError(f"cannot build the {spec.venue} adapter: {exc}", reason="InvalidSpec") from exc
            venue.on_event(self._router(name))
            current = ExchangeConnection(name=name, digest=stored.digest, spec=spec, venue=venue)
            node.exchanges[name] = current
        if not venue_connected(current.venue):
            try:
                await current.venue.connect()
            except AuthenticationFailedError as exc:
                resources.set_condition("Exchange", name, "Authenticated", "False", "AuthenticationFailed", str(exc))
                resources.set_condition("Exchange", name, "Ready", "False", "AuthenticationFailed", str(exc))
                raise TerminalError(str(exc), reason="AuthenticationFailed") from exc
            except ExchangeError as exc:
                resources.set_condition("Exchange", name, "Connected", "False", "ConnectFailed", str(exc))
                resources.set_condition("Exchange", name, "Ready", "False", "ConnectFailed", str(exc))
                raise TransientError(f"cannot connect: {exc}") from exc
            current.connected = True
            node.event(f"Exchange/{name}", "Connected", f"{spec.venue} ({spec.environment})")
        resources.set_condition("Exchange", name, "Connected", "True", "Connected")
        resources.set_condition("Exchange", name, "Authenticated", "True", "Authenticated")
        now = node.clock.now_us()
        try:
            await self._sync(current, now)
        except ExchangeError as exc:
            resources.set_condition("Exchange", name, "Ready", "False", "SyncFailed", str(exc))
            raise TransientError(f"sync with the venue failed: {exc}") from exc
        resources.set_condition("Exchange", name, "Ready", "True", "Synced")
        resources.set_status(
            "Exchange",
            name,
            phase="Ready",
            connected=venue_connected(current.venue),
            accounts=sorted(current.accounts),
            foreign_orders=sum(len(a.tracker.foreign) for a in current.accounts.values()),
            last_sync_us=current.last_resync_us,
        )
        resources.observed("Exchange", name, stored.generation)
        if not current.loaded:
            current.loaded = True
            for key in node.markets_trading(name):
                node.enqueue(key)
        return Result(requeue_after_s=self._orders_resync_us / US)

    async def _sync(self, conn: ExchangeConnection, now_us: int) -> None:
        """Open orders (and stuck creates) every time; positions on their own period."""
        if conn.loaded and not conn.fills_stale and now_us - conn.last_resync_us < self._orders_resync_us // 2:
            return
        live = conn.accounts.get("live")
        if live is not None or not conn.loaded:
            venue_open = await conn.venue.get_open_orders()
            account = live if live is not None else self.node.account(conn.name, "live")
            known = {o.exchange_order_id: o for o in account.tracker.open_orders()}
            adopted, dropped = account.tracker.resync(venue_open)
            # The venue's copy of an order we knew replaces ours (other timestamps, YES terms, what the venue
            # reports of its terms): a change to the tracker like an adoption, which a replay must see too.
            replaced = [o for o in account.tracker.open_orders() if known.get(o.exchange_order_id, o) != o]
            self._record_resync(account, venue_open, adopted, dropped, replaced)
            if conn.loaded:  # at load, adopting the orders left resting is the normal start, not drift
                self._drift(conn.name, "order_adopted", len(adopted))
                self._drift(conn.name, "order_gone", len(dropped))
            for order in adopted:
                self.node.event(f"Exchange/{conn.name}", "OrderAdopted", f"{order.client_order_id} was resting")
            for order in dropped:
                self.node.event(f"Exchange/{conn.name}", "OrderGone", f"{order.client_order_id} is no longer open")
            for order in account.tracker.foreign.values():
                self.node.event(
                    f"Exchange/{conn.name}",
                    "ForeignOrder",
                    f"order {order.exchange_order_id} ({order.request.market_id}) is not ours: left alone",
                )
            for pending in account.tracker.stuck(now_us, self._stuck_us):
                found = await conn.venue.get_order_by_client_id(
                    pending.request.client_order_id, pending.request.market_id
                )
                if found is not None:
                    account.tracker.acked(found)
                    self._record_stuck(account, found.request.market_id, {"resolved": [order_payload(found)]})
                    self.node.event(f"Exchange/{conn.name}", "StuckResolved", f"{found.client_order_id} exists")
                elif now_us - pending.sent_us > 3 * self._stuck_us:
                    account.tracker.failed(pending.request.client_order_id)
                    failed = {"failed": [pending.request.client_order_id]}
                    self._record_stuck(account, pending.request.market_id, failed)
                    self.node.event(
                        f"Exchange/{conn.name}", "StuckResolved", f"{pending.request.client_order_id} never arrived"
                    )
            if not conn.positions_imported:  # once: a load that fails after it must not import over booked fills
                balance = await conn.venue.get_balance()
                account.ledger.cash_micros = int(balance.available * 1_000_000)
                await self._import_positions(conn, account)
                await self._prime_fills(conn, account, now_us)
            if conn.fills_stale:
                await self._backfill_fills(conn, account)
            last = self._last_positions_us.get(conn.name, 0)
            if now_us - last >= self._positions_resync_us:
                self._last_positions_us[conn.name] = now_us
                if conn.last_fill_us is not None:
                    await self._backfill_fills(conn, account)  # fills explain most differences: book them first
                positions = await conn.venue.get_positions()
                diffs = account.ledger.diff_positions(positions)
                primed = self._primed.pop(conn.name, None)
                if diffs and primed:
                    self._book_fills_after_the_import(conn, account, diffs, primed)
                    diffs = account.ledger.diff_positions(positions)
                seen_before = self._mismatches.get(conn.name, set())
                now_seen = {(d.market_id, d.ledger_units, d.exchange_units) for d in diffs}
                self._mismatches[conn.name] = now_seen
                for diff in diffs:
                    self.node.event(f"Exchange/{conn.name}", "PositionMismatch", str(diff), warning=True)
                    if (diff.market_id, diff.ledger_units, diff.exchange_units) not in seen_before:
                        continue  # maybe a fill in flight (REST ahead of the stream): correct only what persists
                    # FR-1203: the exchange is the source of truth; the ledger follows it
                    account.ledger.correct_position(diff.market_id, diff.exchange_units)
                    self._mismatches[conn.name].discard((diff.market_id, diff.ledger_units, diff.exchange_units))
                    self.node.event(
                        f"Exchange/{conn.name}",
                        "PositionCorrected",
                        f"{diff.market_id}: ledger {diff.ledger_units / 100} → venue {diff.exchange_units / 100} YES",
                    )
                self._drift(conn.name, "position", len(diffs))
                if self.node.metrics is not None:
                    self.node.metrics.reconciliation_mismatched.labels(exchange=conn.name).set(len(diffs))
                await self._settlements(conn)
            last_balance = self._last_balance_us.get(conn.name, 0)
            if conn.loaded and now_us - last_balance >= self._balance_resync_us:
                self._last_balance_us[conn.name] = now_us
                balance = await conn.venue.get_balance()
                ours = Decimal(account.ledger.cash_micros).scaleb(-6)
                if balance.available != ours:
                    # Collateral and venue-side rounding make these differ legitimately; the venue's is the truth.
                    self.node.event(
                        f"Exchange/{conn.name}",
                        "BalanceChecked",
                        f"venue {balance.available} USD, ledger cash {ours} USD",
                    )
        conn.last_resync_us = now_us

    def _drift(self, exchange: str, kind: str, found: int) -> None:
        """``mm_reconciliation_drift_total``: ``found`` differences of ``kind`` with the venue (0 too: the series
        exists from the first check, so that ``increase()`` sees the first difference)."""
        metrics = self.node.metrics
        if metrics is not None:
            metrics.reconciliation_drift.labels(exchange=exchange, kind=kind).inc(found)

    async def _prime_fills(self, conn: ExchangeConnection, account: Account, now_us: int) -> None:
        """Right after the positions import: the fills of the last minute (and those the stream brought during the
        load) are in the imported positions, or just after them — remember them as booked, never book them on top
        (that would count them twice), and let the venue's positions decide at once (the check below runs now)."""
        recent = await conn.venue.get_fills(since_us=now_us - FILL_BACKFILL_MARGIN_US)
        primed = {f.fill_id: f for f in (*recent, *conn.fills_during_load)}
        for fill in primed.values():
            account.ledger.mark_fill_seen(fill.fill_id)
            # stored whatever the ledger does with it (keyed by fill id: once): the stream may bring it after the
            # load, when the ledger will say it was booked and the node would not store it
            self.node.record(FillRecord(fill))
        self._primed[conn.name] = sorted(primed.values(), key=lambda f: (f.timestamp_us, f.fill_id))
        conn.fills_during_load.clear()
        conn.positions_imported = True  # a fill the stream brings from now on is booked as it comes
        conn.last_fill_us = max([now_us, *(f.timestamp_us for f in recent)])
        conn.fills_stale = False
        self._last_positions_us[conn.name] = 0

    def _book_fills_after_the_import(
        self, conn: ExchangeConnection, account: Account, diffs: Sequence[PositionDiff], primed: Sequence[Fill]
    ) -> None:
        """The first positions check after the load: a difference that the newest primed fills of that market
        explain exactly means they came after the import's positions were read — book them now (exact PnL)."""
        for diff in diffs:
            late = newest_fills_explaining(diff.exchange_units - diff.ledger_units, diff.market_id, primed)
            for fill in late:
                account.ledger.forget_fill(fill.fill_id)
                account.ledger.apply_fill(fill)  # stored already (primed fills are), now booked too
            if late:
                self.node.event(
                    f"Exchange/{conn.name}",
                    "FillsAfterImport",
                    f"{diff.market_id}: {len(late)} fill(s) came after the positions import: booked",
                )

    async def _backfill_fills(self, conn: ExchangeConnection, account: Account) -> None:
        """Read back the live account's fills since shortly before the last one we booked (or an hour) and pass
        each to the node as if the stream had delivered it: the ledger books a fill id once, the database stores
        it once, so re-reading is harmless and a fill missed while the stream was down is not lost (NFR-201)."""
        conn.fills_stale = False
        now = self.node.clock.now_us()
        last = conn.last_fill_us if conn.last_fill_us is not None else now - 3_600_000_000
        fills = await conn.venue.get_fills(since_us=last - FILL_BACKFILL_MARGIN_US)
        booked = 0
        for venue_fill in sorted(fills, key=lambda f: (f.timestamp_us, f.fill_id)):
            fill = venue_fill
            if fill.client_order_id is None:
                known = account.tracker.get(fill.order_id)
                if known is not None:
                    fill = replace(fill, client_order_id=known.client_order_id)
            before = self.node.fills_seen
            await self.node.on_account_event(conn.name, "live", FillEvent(fill))
            booked += self.node.fills_seen - before
        if booked:
            self.node.event(f"Exchange/{conn.name}", "FillsRecovered", f"{booked} fills the stream had not delivered")

    def _record_resync(
        self,
        account: Account,
        venue_open: Sequence[Order],
        adopted: Sequence[Order],
        dropped: Sequence[Order],
        replaced: Sequence[Order],
    ) -> None:
        """``orders_resync`` in the session of every recorded market whose tracked orders the venue's list changed
        (adopted, dropped, or known ones whose copy the venue's replaced): the venue's open orders of that market,
        which a replay resyncs to as given."""
        recorder = self.node.recorder
        if recorder is None:
            return
        changed = {o.request.market_id for o in (*adopted, *dropped, *replaced)}
        for market in sorted(changed & recorder.markets):
            data = {
                "execution": account.execution,
                "open_orders": [order_payload(o) for o in venue_open if o.request.market_id == market],
                "adopted": [o.client_order_id for o in adopted if o.request.market_id == market],
                "dropped": [o.exchange_order_id for o in dropped if o.request.market_id == market],
                "replaced": [o.exchange_order_id for o in replaced if o.request.market_id == market],
            }
            recorder.record("orders_resync", market, data)

    def _record_stuck(self, account: Account, market: str, outcome: dict[str, Any]) -> None:
        """A create looked up by client order id (found, or given up): ``orders_resync`` with the outcome."""
        recorder = self.node.recorder
        if recorder is not None and market in recorder.markets:
            recorder.record("orders_resync", market, {"execution": account.execution, **outcome})

    async def _settlements(self, conn: ExchangeConnection) -> None:
        """Record the venue's settlement rows we have not recorded yet (the ledger settled on the lifecycle event)."""
        since = self._settlements_seen.get(conn.name)
        rows = await conn.venue.get_settlements(since_us=since)
        for row in rows:
            self.node.record(SettlementRecord(row))
            self.node.event(
                f"Exchange/{conn.name}",
                "SettlementRecorded",
                f"{row.market_id}: {row.result}, revenue {row.revenue} USD",
            )
        if rows:
            self._settlements_seen[conn.name] = max(r.settled_us for r in rows) + 1

    async def _import_positions(self, conn: ExchangeConnection, account: Account) -> None:
        """FR-1401/1402: seed the live ledger at start-up from ``startup.position_handling`` — the venue's
        positions (priced by ``avg_price_method``), the last checkpoint, or the manual list — and refuse to
        trade above ``max_starting_inventory`` (the Exchange stalls; no Market sends an order)."""
        startup = self._startup()
        handling = startup.position_handling
        method = handling.avg_price_method
        try:
            if handling.source == "checkpoint":
                result = self._from_checkpoint(conn.name)
            elif handling.source == "manual":
                entries, prices = manual_config(handling)
                mids = await self._mids(conn, [e.market_id for e in entries])
                result = import_manual(entries, avg_price_method=method, mids=mids, manual_avg_prices=prices)
            else:
                positions = [p for p in await conn.venue.get_positions() if not p.is_flat]
                if not positions:
                    return
                fills: dict[str, list[Fill]] = {}
                for fill in await conn.venue.get_fills():
                    fills.setdefault(fill.market_id, []).append(fill)
                mids = await self._mids(conn, [p.market_id for p in positions])
                _, prices = manual_config(handling)
                result = import_from_exchange(
                    positions, avg_price_method=method, mids=mids, manual_avg_prices=prices, exchange_fills=fills
                )
            check_starting_inventory(result, startup.max_starting_inventory)
        except PositionImportError as exc:
            self.node.event(f"Exchange/{conn.name}", "PositionImportRefused", str(exc), warning=True)
            raise TerminalError(str(exc), reason="StartingInventory") from exc
        seed_ledger(account.ledger, result)
        for line in result.log_lines:
            self.node.event(f"Exchange/{conn.name}", "PositionImported", line)
        for warning in result.warnings:
            self.node.event(f"Exchange/{conn.name}", "PositionEstimated", warning, warning=True)

    def _startup(self) -> Startup:
        nodes = self.node.resources.all("TradingNode")
        return nodes[0].spec.startup if nodes else Startup()

    async def _mids(self, conn: ExchangeConnection, tickers: list[str]) -> dict[str, Mid]:
        """Current mids from the venue's market data (best bid and ask), for the methods that price at the mid."""
        mids: dict[str, Mid] = {}
        for ticker in tickers:
            try:
                info = await conn.venue.get_market(ticker)
            except ExchangeError:
                continue
            conn.markets[ticker] = info
            if info.best_bid is not None and info.best_ask is not None:
                mids[ticker] = (info.best_bid.to_decimal() + info.best_ask.to_decimal()) / 2
        return mids

    def _from_checkpoint(self, exchange: str) -> PositionImport:
        """The live account's positions and cost bases from the last good checkpoint (exact, not estimated)."""
        directory = self.node.state_dir
        checkpoint = load_checkpoint(directory / "checkpoint.json") if directory is not None else None
        if checkpoint is None:
            raise PositionImportError("startup.position_handling.source is checkpoint, but there is no checkpoint")
        prefix = f"{exchange}/live/"
        positions = []
        for market in checkpoint.markets:
            if not market.market_id.startswith(prefix):
                continue
            net = int(market.positions.get("net", 0))
            if net:
                basis = int(market.positions.get("cost_basis_micros", 0))
                positions.append(
                    StartingPosition(market.market_id[len(prefix) :], net, basis, "checkpoint", False, None)
                )
        return PositionImport("checkpoint", tuple(positions), ())
