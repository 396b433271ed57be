"""Running a node: start-up in order, the background loops, kill switch and resume, shutdown, the summary.

Start-up order (issue 8, FR-1201): take the lock file → open the store and its write-behind queue → load the
durable kill-switch latch → admit the declared resources into the :class:`ResourceStore` → start the
reconcilers; Exchanges are reconciled first and load our open orders and positions; Markets wait
(``WaitingForExchange``) until their Exchange is loaded — nothing trades before that.

Background: a checkpoint every ``recovery.checkpoint_interval_seconds`` (atomic) and a PnL snapshot every
``persistence.pnl_snapshot_interval_seconds`` (FR-802), both through the state layer. With the TradingNode's
``recording.enabled``, a :class:`~mm.recording.recorder.SessionRecorder` (``node.recorder``) records every
traded market's session (FR-901, docs/recording.md); it is started before the reconcilers and closed at stop,
after the final cancels.

Kill switch (FR-504): :meth:`NodeRuntime.kill` latches the node switch durably first, then batch-cancels every
open order of ours in every account (the rate limiter serves cancels first) and re-enqueues every Market
(which then plans cancels only: ``Halted``). :meth:`resume` requires ``confirm=True`` and a person's name.

Shutdown (:meth:`stop`): ``drain``/``immediate`` cancel our orders, ``pause`` leaves them; then the
queue is flushed, the checkpoint written and the lock released.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from mm.adapters.errors import ExchangeError
from mm.adapters.kalshi.adapter import KalshiAdapter
from mm.alerting import AlertManager
from mm.clock import Clock, WallClock
from mm.controller import operations
from mm.controller import shutdown as shutdown_modes
from mm.controller.alert_checks import AlertChecks
from mm.controller.crash_recovery import CrashRecovery
from mm.controller.degradation import DegradationMonitor
from mm.controller.errors import ControllerError
from mm.controller.event_alerts import alert_for
from mm.controller.manager import ControllerManager
from mm.controller.node import NodeContext, venue_connected
from mm.controller.offline import restore_resources
from mm.controller.operations import ApplyOutcome
from mm.controller.preview import preview_plans
from mm.controller.resources import ResourceStore, key_of
from mm.controller.session_content import session_info, session_state
from mm.controller.time_sync import TimeSyncMonitor
from mm.controller.workqueue import WorkQueue
from mm.observability.metrics import Metrics
from mm.reconcilers.components import NodeReconciler, RiskPolicyReconciler, StrategyReconciler
from mm.reconcilers.exchange import ExchangeReconciler
from mm.reconcilers.market import MarketReconciler
from mm.reconcilers.selector import SelectorReconciler
from mm.recording.recorder import SessionRecorder
from mm.risk.kill_switch import KillSwitch
from mm.specs.admission import AdmittedResource
from mm.specs.exchange import ExchangeSpec
from mm.specs.node import TradingNodeSpec
from mm.state.checkpoint import Checkpoint, CheckpointWriter, LockFile, MarketCheckpoint, load_checkpoint
from mm.state.latch import SqliteKillSwitchLatch
from mm.state.records import (
    AlertRecord,
    ConfigAuditRecord,
    MarketSampleRecord,
    PnlSnapshotRecord,
    Record,
    RevisionRecord,
)
from mm.state.store import Store
from mm.state.write_behind import WriteBehindQueue

__all__ = ["ChangeRateLimitedError", "NodeRuntime", "RuntimeOptions"]


class ChangeRateLimitedError(ControllerError):
    """More configuration changes than ``hot_reload.max_changes_per_minute`` allows (API: 429)."""


_logger = logging.getLogger(__name__)

BuildVenue = Callable[[str, ExchangeSpec], KalshiAdapter]


@dataclass
class RuntimeOptions:
    state_dir: Path
    database: Path | None = None
    """SQLite file; default ``state_dir/mmctl.db``."""
    cycle_s: float = 1.0
    """How often each Market re-plans without events (time to settlement moves)."""
    selector_period_s: float = 5.0
    resync_s: float = 30.0
    recording_dir: Path | None = None
    """Where sessions go when the TradingNode leaves ``recording.output_dir`` at its default (./data/sessions,
    relative to wherever the process runs): ``mmctl run --state-dir DIR`` keeps them in DIR/sessions."""
    exchange_resync_s: float = 30.0
    """Open orders re-read from the venue this often (FR-703); positions every 2×, the balance every 10×."""
    workers: int = 4
    checkpoint_interval_s: float = 10.0
    pnl_snapshot_interval_s: float = 60.0
    prefix: str = "mm"
    extra_records: list[Record] = field(default_factory=list)
    time_sync: bool = True
    """Run the NTP check (NFR-203) on the TradingNode's ``time_sync.ntp_servers``; tests turn it off."""


def dependants(resources: ResourceStore) -> Callable[[str, str], Iterable[str]]:
    """Keys to re-reconcile when ``kind/name`` changes (the Markets and selectors that reference it)."""

    def find(kind: str, name: str) -> Iterable[str]:
        if kind in ("Strategy", "RiskPolicy", "Exchange"):
            field_name = {"Strategy": "strategy_ref", "RiskPolicy": "risk_policy_ref", "Exchange": "exchange_ref"}[kind]
            for market in resources.all("Market"):
                if getattr(market.spec, field_name) == name:
                    yield market.key
        if kind == "Exchange":
            for selector in resources.all("MarketSelector"):
                if selector.spec.exchange_ref == name:
                    yield selector.key
        if kind == "TradingNode":
            for market in resources.all("Market"):
                yield market.key

    return find


class NodeRuntime:
    """One running node (see the module docstring). ``build_venue(name, spec)`` makes each venue adapter."""

    def __init__(
        self,
        clock: Clock,
        options: RuntimeOptions,
        build_venue: BuildVenue,
        *,
        metrics: Metrics | None = None,
        wall_clock: Clock | None = None,
    ) -> None:
        self.clock = clock
        self.options = options
        self._build_venue = build_venue
        self.metrics = metrics if metrics is not None else Metrics()
        self.store: Store | None = None
        self.queue_db: WriteBehindQueue | None = None
        self.latch: SqliteKillSwitchLatch | None = None
        self.lock = LockFile(options.state_dir / "mmctl.lock", clock)
        self.resources = ResourceStore(clock, persist=self._record)
        self._wall = wall_clock if wall_clock is not None else WallClock()
        self.node = NodeContext(
            self.clock,
            self.resources,
            prefix=options.prefix,
            metrics=self.metrics,
            record=self._record,
            wall_clock=self._wall,
        )
        self.queue = WorkQueue(clock)
        self.manager = ControllerManager(
            self.queue,
            self.resources,
            workers=options.workers,
            resync_s=options.resync_s,
            dependants=dependants(self.resources),
        )
        self.node.enqueue = self.queue.add
        self.node.kill = self._kill_from_node
        self.node.state_dir = options.state_dir
        self._down_since_ns: dict[str, int] = {}
        self._changes: list[int] = []
        self._tasks: list[asyncio.Task[None]] = []
        self.checkpoints: CheckpointWriter | None = None
        self.recorder: SessionRecorder | None = None
        self.started = False
        self._stopped = False
        self.recovery: CrashRecovery | None = None
        self.shutdown_outcome: shutdown_modes.ShutdownOutcome | None = None
        self.interrupt_wait = asyncio.Event()
        """Set by a second SIGINT (or SIGQUIT) during a drain or unwind: stop waiting, finish now."""
        self._shutdown_mode: str | None = None
        self._health_reconciles: tuple[int, int] = (-1, 0)
        self.alerts: AlertManager | None = None
        self.alert_checks: AlertChecks | None = None
        self.degradation: DegradationMonitor | None = None
        self.time_sync: TimeSyncMonitor | None = None
        self._degradation_task: asyncio.Task[None] | None = None
        self._stopped_queue = False
        # read when scraped (mm_kill_switch_active, mm_ready): what /status and /ready would say at that moment
        self.metrics.kill_switch.set_function(lambda: 1.0 if self.node.node_switch.tripped else 0.0)
        self.metrics.ready.set_function(lambda: 1.0 if self.is_ready() else 0.0)

    # ------------------------------------------------------------------ start

    def _record(self, record: Record) -> None:
        if self.queue_db is not None:
            self.queue_db.enqueue(record)

    async def start(self, admitted: Sequence[AdmittedResource], *, source: str = "file") -> None:
        options = self.options
        options.state_dir.mkdir(parents=True, exist_ok=True)
        self.lock.acquire()
        if self.lock.previous_run_crashed:
            _logger.warning("the previous run did not shut down cleanly: recovering from the exchange")
        db_path = options.database if options.database is not None else options.state_dir / "mmctl.db"
        self.store = await Store.open(db_path)
        self.queue_db = WriteBehindQueue(
            self.store, clock=self.clock, metrics=self.metrics, alert=self._forward_queue_alert
        )
        self.queue_db.start()
        self.latch = SqliteKillSwitchLatch(db_path)
        self.node.use_latch(self.latch)
        previous = load_checkpoint(options.state_dir / "checkpoint.json")  # before this run overwrites it
        await self._restore_resources()
        for resource in admitted:
            self.resources.apply(resource, source=source)
        node_spec = self.node_spec()
        self._start_alerts(node_spec)
        if self.lock.stale is not None and (node_spec is None or node_spec.recovery.enabled):
            # FR-1202: the crashed run's fills are read back from when it started (its lock says when)
            since = min(self.lock.stale.started_us or 0, previous.timestamp_us if previous is not None else 1 << 62)
            self.recovery = CrashRecovery(
                self.node,
                (node_spec or TradingNodeSpec()).recovery,
                previous,
                since,
                options.state_dir,
            )
            self.recovery.begin()  # the hold is in place before any Market reconciles
        await self._start_recorder()
        self._watch_disk(db_path)
        if options.time_sync:
            # NFR-203: checked before anything trades (a drift under pause_trading holds the Markets from the start)
            self.time_sync = TimeSyncMonitor(self.node, self.node_spec, self._wall)
            await self.time_sync.startup_check()
        self.manager.register(
            ExchangeReconciler(
                self.node,
                self._build_venue,
                orders_resync_s=options.exchange_resync_s,
                positions_resync_s=2 * options.exchange_resync_s,
                balance_resync_s=10 * options.exchange_resync_s,
            )
        )
        self.manager.register(StrategyReconciler(self.node))
        self.manager.register(RiskPolicyReconciler(self.node))
        self.manager.register(NodeReconciler(self.node))
        self.manager.register(MarketReconciler(self.node, cycle_s=options.cycle_s))
        self.manager.register(SelectorReconciler(self.node, period_s=options.selector_period_s))
        await self.manager.start()
        # Exchanges first: Markets wait for their Exchange to load orders and positions anyway.
        self.manager.enqueue_all(["Exchange"])
        self.manager.enqueue_all(["Strategy", "RiskPolicy", "TradingNode", "MarketSelector", "Market"])
        self.checkpoints = CheckpointWriter(
            options.state_dir / "checkpoint.json", self._checkpoint, interval_s=options.checkpoint_interval_s
        )
        self._tasks.append(asyncio.create_task(self.checkpoints.run(), name="checkpoints"))
        self._tasks.append(asyncio.create_task(self._pnl_snapshots(), name="pnl-snapshots"))
        self._tasks.append(asyncio.create_task(self._stream_watchdog(), name="stream-watchdog"))
        if self.recovery is not None:
            self._tasks.append(asyncio.create_task(self._recover(self.recovery), name="crash-recovery"))
        if self.time_sync is not None:
            self._tasks.append(asyncio.create_task(self.time_sync.run(), name="time-sync"))
        if self.alert_checks is not None:
            self._tasks.append(asyncio.create_task(self.alert_checks.run(), name="alert-checks"))
        # NFR-202/204, NFR-203 against the exchange's clock: holds and widening from the links' health
        self.degradation = DegradationMonitor(self.node, self.node_spec, self._wall)
        self._degradation_task = asyncio.create_task(self.degradation.run(), name="degradation")
        self._tasks.append(self._degradation_task)
        if node_spec is not None and node_spec.persistence.market_data_samples.enabled:
            interval = float(node_spec.persistence.market_data_samples.interval_seconds)
            self._tasks.append(asyncio.create_task(self._market_samples(interval), name="market-samples"))
        self.started = True
        if self.node.node_switch.tripped:
            self.node.event(
                "TradingNode", "KillSwitchLatched", f"still tripped: {self.node.node_switch.state.reason}", warning=True
            )

    def _start_alerts(self, node_spec: TradingNodeSpec | None) -> None:
        """NFR-403: the alert manager from the TradingNode's ``alerting`` block; every raised alert is stored
        through the write-behind queue. Node events raise the built-in alerts (mm.controller.event_alerts)."""
        spec = (node_spec or TradingNodeSpec()).alerting
        self.alerts = AlertManager.from_spec(
            spec,
            clock=self.clock,
            record=self._record_alert,
            metrics=self.metrics,
            source=f"mmctl@{socket.gethostname()}",
        )
        self.alerts.start()
        self.node.event_listeners.append(self._alert_on_event)
        self.alert_checks = AlertChecks(self.node, self.node_spec, self.alerts)

    async def detach_degradation_monitor(self) -> None:
        """Stop the node's own degradation monitor and release what it set (for a tool or test that drives a
        monitor of its own: two would report every episode twice)."""
        task, self._degradation_task = self._degradation_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.degradation is not None:
            self.degradation.release()

    def _alert_on_event(self, entry: tuple[int, str, str, str]) -> None:
        name = alert_for(entry[2])
        if name is not None and self.alerts is not None:
            self.alerts.raise_alert(name, None, f"{entry[1]}: {entry[3]}", subject=entry[1])

    def _record_alert(self, record: AlertRecord) -> None:
        if self.queue_db is not None and not self._stopped_queue:
            self.queue_db.enqueue(record)

    def _forward_queue_alert(self, record: AlertRecord) -> None:
        """The database queue's own alerts (it stores them itself): delivered through the channels."""
        if self.alerts is not None:
            self.alerts.forward(record)

    async def _recover(self, recovery: CrashRecovery) -> None:
        try:
            await recovery.run()
        except Exception:  # never trade on a failed recovery: the hold stays, latched, for a person
            _logger.exception("crash recovery failed")
            self.node.holds.set(
                "recovery",
                "crash recovery failed (see the log); run `mmctl resume --confirm`",
                self.clock.now_us(),
                latched=True,
            )

    async def _restore_resources(self) -> None:
        """Resources stored by an earlier run or by an offline ``mmctl apply`` come back first (re-admitted
        today; one that no longer validates is reported and left out), then the files are applied over them."""
        assert self.store is not None
        for problem in await restore_resources(self.store, self.resources):
            self.node.event("TradingNode", "StoredResourceInvalid", problem, warning=True)

    # ------------------------------------------------------------------ operations (API, CLI)

    def _check_change_rate(self, changes: int) -> None:
        node_spec = self.node_spec()
        limit = node_spec.hot_reload.max_changes_per_minute if node_spec is not None else 10
        now = self._wall.monotonic_ns()
        recent = [t for t in self._changes if now - t < 60_000_000_000]
        self._changes = recent
        if changes and len(recent) + changes > limit:
            raise ChangeRateLimitedError(
                f"{len(recent)} changes in the last minute; hot_reload.max_changes_per_minute is {limit}: "
                "nothing applied, try again later"
            )

    def apply_documents(
        self,
        admitted: Sequence[AdmittedResource],
        *,
        manager: str = "api",
        dry_run: bool = False,
        force_conflicts: bool = False,
        change_cause: str = "",
    ) -> list[ApplyOutcome]:
        """``apply`` with conflicts and the per-minute change limit (all-or-nothing)."""
        planned = operations.apply(
            self.resources, admitted, manager=manager, dry_run=True, force_conflicts=force_conflicts
        )
        changes = sum(1 for o in planned if o.action != "unchanged")
        if dry_run:
            return planned
        self._check_change_rate(changes)
        outcomes = operations.apply(
            self.resources, admitted, manager=manager, force_conflicts=force_conflicts, change_cause=change_cause
        )
        now = self._wall.monotonic_ns()
        self._changes.extend([now] * changes)
        for outcome in outcomes:
            if outcome.action != "unchanged":
                self.node.event(f"{outcome.kind}/{outcome.name}", outcome.action.title(), f"by {manager}")
        return outcomes

    def affected_markets(self, kind: str, name: str) -> list[str]:
        """Market names whose behaviour a change to ``kind/name`` alters."""
        if kind == "Market":
            return [name]
        field = {"Strategy": "strategy_ref", "RiskPolicy": "risk_policy_ref", "Exchange": "exchange_ref"}.get(kind)
        if field is None:
            return [m.name for m in self.resources.all("Market")] if kind == "TradingNode" else []
        return [m.name for m in self.resources.all("Market") if getattr(m.spec, field) == name]

    async def cancel_markets(self, names: Sequence[str], reason: str = "rollback") -> int:
        """Cancel our open orders of these Markets (before a rollback, FR-1005; a Market's kill switch)."""
        total = 0
        for market in [self.resources.get("Market", n) for n in names]:
            if market is None:
                continue
            conn = self.node.exchanges.get(market.spec.exchange_ref)
            if conn is None:
                continue
            for account in conn.accounts.values():
                mine = account.tracker.open_orders(market.spec.ticker)
                if mine:
                    total += await self.node.cancel_ours(account, mine, reason)
        return total

    async def rollback(
        self,
        kind: str,
        name: str,
        *,
        to_revision: int | None = None,
        manager: str = "api",
        suspend_source: Callable[[str], bool] | None = None,
    ) -> tuple[ApplyOutcome, RevisionRecord, int]:
        """Cancel the affected Markets' orders, then store the earlier revision as a new one (FR-1005).

        ``suspend_source(reason)`` (the launcher's git-ops source) is called first for an object git-ops manages;
        without it such a rollback is refused."""
        self._check_change_rate(1)
        stored = self.resources.get(kind, name)
        managed = stored.annotations.get(operations.MANAGER, "") if stored is not None else ""
        suspended = False
        if managed.startswith(("git:", "file:")) and suspend_source is not None:
            suspended = suspend_source(f"rollback of {kind}/{name}")
        operations.check_rollback(self.resources, kind, name, to_revision, source_suspended=suspended)
        cancelled = await self.cancel_markets(self.affected_markets(kind, name))
        outcome, target = operations.rollback(
            self.resources, kind, name, to_revision=to_revision, manager=manager, source_suspended=suspended
        )
        self._changes.append(self._wall.monotonic_ns())
        self.node.event(f"{kind}/{name}", "RolledBack", f"to revision {target.revision} by {manager}")
        self._record(
            ConfigAuditRecord(
                self.clock.now_us(), "rollback", f"{kind}/{name}", "api", {}, dict(target.spec), actor=manager
            )
        )
        for market in self.affected_markets(kind, name):
            self.queue.add(key_of("Market", market))
        return outcome, target, cancelled

    def preview_plans(self, admitted: Sequence[AdmittedResource]) -> dict[str, list[str]]:
        """``diff --plan``: the order actions each affected Market would take right now under the candidate
        specs (pure: a scratch copy of the resources, ledgers copied, an in-memory kill-switch latch)."""
        return preview_plans(self, admitted)

    def apply(self, admitted: Sequence[AdmittedResource], *, source: str = "file") -> list[str]:
        """Apply resources while running (hot reload); returns the keys whose spec changed."""
        changed = []
        for resource in admitted:
            if self.resources.apply(resource, source=source):
                changed.append(key_of(resource.kind, resource.name))
        return changed

    # ------------------------------------------------------------------ recording (FR-901)

    async def _start_recorder(self) -> None:
        node_spec = self.node_spec()
        if node_spec is None or not node_spec.recording.enabled:
            return
        settings = node_spec.recording
        default_dir = type(settings).model_fields["output_dir"].default
        if self.options.recording_dir is not None and settings.output_dir == default_dir:
            settings = settings.model_copy(update={"output_dir": str(self.options.recording_dir)})
        recorder = SessionRecorder(
            settings,
            self.clock,
            wall=self._wall,
            session_info=self._recording_session_info,
            state=self._recording_state,
            alert=self._recording_alert,
        )
        await recorder.start()
        self.recorder = recorder
        self.node.recorder = recorder
        if recorder.recording_stopped:
            return  # already over the storage limit (alerted): trading goes on unrecorded
        self.node.event("TradingNode", "RecordingStarted", f"session {recorder.session_id} in {recorder.output_dir}")

    def _watch_disk(self, db_path: Path) -> None:
        """``mm_disk_usage_bytes`` of the database (with its WAL) and the session recordings, and the free space."""
        metrics = self.metrics
        metrics.watch_disk("database", *(db_path.with_name(db_path.name + end) for end in ("", "-wal", "-shm")))
        sessions = self.recorder.output_dir if self.recorder is not None else self.options.recording_dir
        if sessions is not None:
            metrics.watch_disk("sessions", sessions)
        metrics.watch_free_space(self.options.state_dir)

    def _recording_alert(self, reason: str, message: str) -> None:
        self.node.event("TradingNode", "RecordingStopped", f"{reason}: {message}", warning=True)

    def _recording_session_info(self, ticker: str) -> dict[str, Any]:
        return session_info(self.node, self.clock, self.node_spec(), ticker)

    def _recording_state(self, ticker: str) -> dict[str, Any]:
        return session_state(self.node, self.clock.now_us(), ticker)

    # ------------------------------------------------------------------ background

    def _checkpoint(self) -> Checkpoint:
        markets = []
        for account in self.node.accounts():
            for market_id in account.ledger.market_ids():
                pnl = account.ledger.market(market_id)
                markets.append(
                    MarketCheckpoint(
                        market_id=f"{account.exchange}/{account.execution}/{market_id}",
                        positions={"net": pnl.net_units, "cost_basis_micros": pnl.cost_basis_micros},
                        inventory=Decimal(pnl.net_units).scaleb(-2),
                        realized_pnl=Decimal(pnl.realized_micros).scaleb(-6),
                        open_orders=tuple(o.client_order_id for o in account.tracker.open_orders(market_id)),
                        config_version=self._config_version(market_id),
                    )
                )
        extra: dict[str, Any] = {"kill_switch": self.node.node_switch.tripped}
        if self._shutdown_mode is not None:
            extra["shutdown_mode"] = self._shutdown_mode
        return Checkpoint(self.clock.now_us(), tuple(markets), extra)

    def _config_version(self, ticker: str) -> str:
        for market in self.resources.all("Market"):
            if market.spec.ticker == ticker:
                return f"{market.name}@{market.generation}"
        return ""

    async def _pnl_snapshots(self) -> None:
        while True:
            await asyncio.sleep(self.options.pnl_snapshot_interval_s)
            self.snapshot_pnl()

    def snapshot_pnl(self) -> None:
        now = self.clock.now_us()
        for account in self.node.accounts():
            for market_id in account.ledger.market_ids():
                pnl = account.ledger.market(market_id, now)
                self._record(
                    PnlSnapshotRecord(
                        timestamp_us=now,
                        market_id=f"{account.exchange}/{account.execution}/{market_id}",
                        realized_pnl=Decimal(pnl.realized_micros).scaleb(-6),
                        unrealized_pnl=Decimal(pnl.unrealized_micros).scaleb(-6),
                        fees=Decimal(pnl.fees.total_micros).scaleb(-6),
                        positions={"net": pnl.net_units},
                    )
                )

    async def _market_samples(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            self.sample_markets()

    def sample_markets(self) -> int:
        """FR-803: the top of every traded market's book, recorded (optional, ``market_data_samples``)."""
        now = self.clock.now_us()
        count = 0
        for market in self.resources.all("Market"):
            conn = self.node.exchanges.get(market.spec.exchange_ref)
            book = conn.venue.book(market.spec.ticker) if conn is not None else None
            if book is None:
                continue
            snap = book.snapshot(market.spec.ticker, now)
            self._record(
                MarketSampleRecord(
                    market_id=market.spec.ticker,
                    kind="book",
                    timestamp_us=now,
                    data={
                        "best_bid": str(snap.best_bid) if snap.best_bid is not None else None,
                        "best_ask": str(snap.best_ask) if snap.best_ask is not None else None,
                        "bid_size": snap.bid_size.to_fp(),
                        "ask_size": snap.ask_size.to_fp(),
                        "stale": conn.venue.is_stale(market.spec.ticker) if conn is not None else True,
                    },
                )
            )
            count += 1
        return count

    async def _stream_watchdog(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            await self.check_streams()

    async def check_streams(self) -> str | None:
        """Kill switch trigger: an exchange's order/fill stream has been down longer than the strictest
        policy's ``stale_stream_seconds`` (real time) while our orders rest there — we would not see fills."""
        now = self._wall.monotonic_ns()
        policies = [p.spec.kill_switch for p in self.resources.all("RiskPolicy") if p.spec.kill_switch.enabled]
        if not policies or self.node.node_switch.tripped:
            return None
        limit_ns = int(min(p.stale_stream_seconds for p in policies) * 1_000_000_000)
        for name, conn in self.node.exchanges.items():
            ws = conn.venue.ws if isinstance(conn.venue, KalshiAdapter) else None
            if ws is None or ws.connected:
                self._down_since_ns.pop(name, None)
                continue
            since = self._down_since_ns.setdefault(name, now)
            resting = any(a.tracker.open_orders() for a in conn.accounts.values() if a.execution == "live")
            if resting and now - since >= limit_ns:
                reason = f"Exchange/{name} order stream down for {(now - since) / 1e9:.1f} s while orders rest"
                await self.kill(reason, source="rule")
                return reason
        return None

    # ------------------------------------------------------------------ kill switch

    async def kill(self, reason: str, *, source: str = "manual") -> int:
        """Trip the node kill switch (durably, first), then cancel every open order of ours; returns how many."""
        now = self.clock.now_us()
        self.node.node_switch.trigger(reason, source, now)  # type: ignore[arg-type]
        self.node.event("TradingNode", "KillSwitchTripped", f"{source}: {reason}", warning=True)
        cancelled = await self.cancel_everything()
        for market in self.resources.all("Market"):
            self.queue.add(market.key)
        return cancelled

    async def _kill_from_node(self, reason: str, source: str) -> int:
        return await self.kill(reason, source=source)

    async def kill_market(self, name: str, reason: str) -> int:
        """Trip one Market's kill switch (durably) and cancel its orders; the others keep trading."""
        switch = KillSwitch(self.node.latch, f"market/{name}")
        switch.trigger(reason, "manual", self.clock.now_us())
        self.node.event(f"Market/{name}", "KillSwitchTripped", f"manual: {reason}", warning=True)
        cancelled = await self.cancel_markets([name], "kill")
        runtime = self.node.market_state.get(name)
        if runtime is not None:
            runtime.risk.market_switch = switch  # the running engine sees the trip at once
        self.queue.add(key_of("Market", name))
        return cancelled

    def resume_market(self, name: str, *, confirm: bool, operator: str) -> None:
        """Reset one Market's kill switch (a person, explicitly)."""
        switch = KillSwitch(self.node.latch, f"market/{name}")
        switch.reset(confirm=confirm, operator=operator, now_us=self.clock.now_us())
        runtime = self.node.market_state.get(name)
        if runtime is not None:
            runtime.risk.market_switch = switch
        self.node.event(f"Market/{name}", "KillSwitchReset", f"reset by {operator}")
        self.queue.add(key_of("Market", name))

    def resume(self, *, confirm: bool, operator: str) -> None:
        """A person resets the kill switch and clears latched holds (crash recovery outside tolerance)."""
        was_tripped = self.node.node_switch.tripped
        self.node.node_switch.reset(confirm=confirm, operator=operator, now_us=self.clock.now_us())
        if was_tripped:
            self.node.event("TradingNode", "KillSwitchReset", f"reset by {operator}")
        for hold in self.node.holds.clear_latched():
            self.node.event("TradingNode", "HoldReleased", f"{hold.key} released by {operator}")
        for market in self.resources.all("Market"):
            self.queue.add(market.key)

    async def cancel_everything(self, reason: str = "kill") -> int:
        """Cancel every open order of ours (``reason``: kill, shutdown); each recorded market gets a ``node_cancel``."""
        total = 0
        for account in self.node.accounts():
            mine = account.tracker.open_orders()
            if not mine:
                continue
            try:
                total += await self.node.cancel_ours(account, mine, reason)
            except ExchangeError as exc:
                self.node.event("TradingNode", "CancelAllFailed", str(exc), warning=True)
        return total

    # ------------------------------------------------------------------ stop

    async def stop(self, mode: str = "drain", trigger: str = "api") -> shutdown_modes.ShutdownOutcome | None:
        """Shut down (idempotent, FR-1101): stop quoting → cancel our orders → per mode, wait for fills (drain),
        flatten (unwind) or just go (immediate; pause saves the mode in the checkpoint) → flush the database and
        the recording → disconnect → log the final state. Returns what happened (None if not started)."""
        if self._stopped or not self.started:
            return self.shutdown_outcome
        self._stopped = True
        began = self._wall.monotonic_ns()
        options = (self.node_spec() or TradingNodeSpec()).shutdown
        request = shutdown_modes.resolve(
            shutdown_modes.ShutdownRequest(mode, trigger), options, kill_switch_tripped=self.node.node_switch.tripped
        )
        outcome = shutdown_modes.ShutdownOutcome(request.mode, request.trigger)
        self._shutdown_mode = request.mode
        self.node.holds.set("shutdown", f"shutting down ({request.mode}, {request.trigger})", self.clock.now_us())
        self.node.event("TradingNode", "ShuttingDown", f"mode {request.mode}, trigger {request.trigger}")
        await self.manager.stop()  # no more quoting: reconcilers are done before any order handling
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self.time_sync is not None:
            self.time_sync.release()
        outcome.cancelled = await self.cancel_everything("shutdown")
        if request.mode == "drain":
            if not await shutdown_modes.drain(self.node, float(options.drain_timeout_seconds), self.interrupt_wait):
                outcome.notes.append(f"drain timed out after {options.drain_timeout_seconds} s")
        elif request.mode == "unwind":
            await shutdown_modes.drain(self.node, min(5.0, float(options.drain_timeout_seconds)), self.interrupt_wait)
            outcome.unwound_contracts = await shutdown_modes.unwind(
                self.node, options.unwind.max_slippage, float(options.unwind.timeout_seconds), self.interrupt_wait
            )
        if request.mode != "immediate":
            left = await shutdown_modes.verify_with_venue(self.node)
            if left:
                outcome.notes.append(f"{left} orders of ours still open at the venue")
        outcome.open_orders_left = sum(len(a.tracker.open_orders()) for a in self.node.accounts())
        outcome.pending_left = sum(a.tracker.pending_count for a in self.node.accounts())
        if self.checkpoints is not None:
            with contextlib.suppress(OSError):
                self.checkpoints.write_now()
        self.snapshot_pnl()
        self._log_final_state(outcome)
        if self.recorder is not None:
            # after the final cancels (their outcomes are in the files), before the connections go
            self.node.recorder = None
            try:
                await self.recorder.close(f"node stopped ({request.mode})")
            except Exception:  # the recording is not worth a failed shutdown: the queue and lock still need us
                _logger.exception("closing the session recorder failed")
        for conn in list(self.node.exchanges.values()):
            with contextlib.suppress(Exception):
                await conn.venue.disconnect()
        # before the queue closes: the alerts' records still go through it
        if self.alerts is not None and not await self.alerts.aclose(timeout=10.0):
            outcome.notes.append("some alerts could not be delivered before the shutdown")
        self._stopped_queue = True
        if self.queue_db is not None:
            report = await self.queue_db.close(timeout=30.0)
            if not report.complete:
                outcome.flushed = False
                _logger.error("the database queue was not fully flushed: %s", report)
        if self.store is not None:
            await self.store.close()
        if self.latch is not None:
            self.latch.close()
        self.lock.release()
        outcome.seconds = (self._wall.monotonic_ns() - began) / 1e9
        self.shutdown_outcome = outcome
        _logger.info(
            "shutdown complete: mode=%s trigger=%s seconds=%.2f open_orders_left=%d flushed=%s",
            outcome.mode,
            outcome.trigger,
            outcome.seconds,
            outcome.open_orders_left,
            outcome.flushed,
        )
        return outcome

    def exit_code(self) -> int:
        """The process exit code for the finished shutdown (mm.controller.shutdown.ExitCode)."""
        if self.shutdown_outcome is None:
            return int(shutdown_modes.ExitCode.OK)
        return int(shutdown_modes.exit_code(self.shutdown_outcome, kill_switch_tripped=self.node.node_switch.tripped))

    def _log_final_state(self, outcome: shutdown_modes.ShutdownOutcome) -> None:
        """FR-1101 step 7: positions, PnL and open orders, as an event (stored) and in the log."""
        for account in self.summary()["accounts"]:
            positions = ", ".join(f"{m} {q}" for m, q in sorted(account["positions"].items())) or "flat"
            self.node.event(
                "TradingNode",
                "FinalState",
                f"{account['exchange']}/{account['execution']}: positions {positions}; net PnL {account['net_pnl']} "
                f"USD (realized {account['realized_pnl']}, fees {account['fees']}); open orders "
                f"{account['open_orders']}; mode {outcome.mode} ({outcome.trigger})"
                + (f"; {'; '.join(outcome.notes)}" if outcome.notes else ""),
            )

    # ------------------------------------------------------------------ reporting

    def node_spec(self) -> TradingNodeSpec | None:
        nodes = self.resources.all("TradingNode")
        return nodes[0].spec if nodes else None

    def summary(self) -> dict[str, Any]:
        now = self.clock.now_us()
        accounts = []
        for account in self.node.accounts():
            s = account.ledger.summary(now)
            positions = {p.market_id: str(p.net_inventory) for p in account.ledger.positions() if not p.is_flat}
            accounts.append(
                {
                    "exchange": account.exchange,
                    "execution": account.execution,
                    "cash": str(Decimal(s.cash_micros).scaleb(-6)),
                    "realized_pnl": str(Decimal(s.realized_micros).scaleb(-6)),
                    "unrealized_pnl": str(Decimal(s.unrealized_micros).scaleb(-6)),
                    "fees": str(Decimal(s.fees.total_micros).scaleb(-6)),
                    "net_pnl": str(Decimal(s.net_micros).scaleb(-6)),
                    "positions": positions,
                    "open_orders": len(account.tracker.open_orders()),
                }
            )
        markets = {
            m.name: {
                "ticker": m.spec.ticker,
                "phase": m.status.get("phase"),
                "orders_sent": m.status.get("orders_sent", 0),
                "position": m.status.get("position"),
            }
            for m in self.resources.all("Market")
        }
        quoted = sorted({e[3].split(":")[0] for e in self.node.events if e[2] == "MarketActive"})
        return {
            "markets_now": markets,
            "markets_selected": quoted,
            "orders_sent": self.node.orders_sent,
            "fills": self.node.fills_seen,
            "accounts": accounts,
            "kill_switch": self.node.node_switch.tripped,
            "reconciles": self.manager.reconciles,
            "reconcile_failures": dict(self.manager.failures),
            "holds": [{"key": h.key, "reason": h.reason, "latched": h.latched} for h in self.node.holds.active()],
            "recovery": self.recovery.report() if self.recovery is not None else None,
        }

    def not_ready_reasons(self) -> list[str]:
        """Why the node is not ready to trade (empty when it is): /ready and /status say these."""
        reasons = [] if self.started else ["not started"]
        exchanges = self.resources.all("Exchange")
        if not exchanges:
            reasons.append("no Exchange declared")
        if self.node.node_switch.tripped:
            reasons.append(f"kill switch tripped: {self.node.node_switch.state.reason}")
        reasons.extend(f"held: {h.key}: {h.reason}" for h in self.node.holds.active())
        for exchange in exchanges:
            conn = self.node.exchanges.get(exchange.name)
            if conn is None or not conn.loaded or not venue_connected(conn.venue):
                reasons.append(f"Exchange/{exchange.name} not connected and synced")
        return reasons

    def health_problems(self, stalled_after_s: float) -> list[str]:
        """The node's own health (FR-1102's health check; not the network's): its reconcile loop must make
        progress and its database writer must be alive. Empty when healthy. Called about once a second."""
        problems = []
        now = self._wall.monotonic_ns()
        reconciles = self.manager.reconciles
        if reconciles != self._health_reconciles[0]:
            self._health_reconciles = (reconciles, now)
        elif self.resources.all("Market") and (now - self._health_reconciles[1]) / 1e9 > stalled_after_s:
            problems.append(f"no reconcile for {(now - self._health_reconciles[1]) / 1e9:.0f} s")
        if self.queue_db is not None and not self.queue_db.running:
            problems.append("the database writer has stopped")
        return problems

    def is_ready(self) -> bool:
        """Ready: started, every Exchange connected and loaded, the kill switch not tripped."""
        return not self.not_ready_reasons()
