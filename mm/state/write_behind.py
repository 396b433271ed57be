"""The write-behind queue (design.md §7, NFR-603 "database failure"): the trading path never awaits the database.

``enqueue`` is a synchronous O(1) append to an in-memory deque. One background task takes batches from the
front, in enqueue order, and writes each in one transaction; a record leaves the queue only after the commit
that holds it succeeded. When the database is locked, read-only or failing, the batch stays at the front and
is retried with capped exponential backoff while new records keep queueing behind it; when it comes back,
everything is flushed in order. Idempotency keys (:mod:`mm.state.records`) make every retry safe, including
one after a commit whose acknowledgement was lost.

Full queue (decision 012): ``capacity`` is an alarm threshold, not a drop point. Past it, records are still
accepted (losing a fill or an order state to save memory is the worse failure), and the queue raises a
critical alert, counts ``mm_db_queue_overflow_total`` and reports :attr:`WriteBehindQueue.saturated` so the
controller can stop adding risk. The alarm re-arms when the depth falls back to half the capacity.

A record that can never be written (a bug: it fails to serialise, or violates a constraint) must not block
the records behind it forever: after a batch fails with such an error, its records are written one by one
and the offender is moved to :attr:`WriteBehindQueue.dead_letters` with a critical log, alert and metric.

Single-threaded: ``enqueue`` must be called from the event loop's thread (as all trading code is).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Final, Literal

from mm.clock import Clock, WallClock
from mm.observability.logging import get_logger
from mm.observability.metrics import Metrics
from mm.state.records import AlertRecord, Record
from mm.state.store import Store

__all__ = ["CloseReport", "DeadLetter", "WriteBehindQueue"]

Sleep = Callable[[float], Awaitable[None]]
AlertSink = Callable[[AlertRecord], None]
Severity = Literal["info", "warning", "critical"]

# Errors that say "this record is wrong", not "the database is unavailable": retrying cannot help.
_POISON: Final = (
    sqlite3.IntegrityError,
    sqlite3.ProgrammingError,
    sqlite3.DataError,
    sqlite3.NotSupportedError,
    sqlite3.InterfaceError,
)
# Unavailability that the same connection recovers from by itself; anything else reopens the connection
# (a disk I/O error or a replaced file can leave the old handle unusable).
_SELF_HEALING: Final = ("locked", "busy", "readonly")

_log = get_logger("mm.state.write_behind")


@dataclass(frozen=True, slots=True)
class DeadLetter:
    record: Record
    error: str


@dataclass(frozen=True, slots=True)
class CloseReport:
    """What :meth:`WriteBehindQueue.close` could not write before its timeout (empty when all was flushed)."""

    written: int
    remaining: tuple[Record, ...]
    dead_letters: tuple[DeadLetter, ...]

    @property
    def complete(self) -> bool:
        return not self.remaining


class WriteBehindQueue:
    """Ordered, batched, retrying writes to a :class:`Store`. ``start()`` it inside the running loop."""

    def __init__(
        self,
        store: Store,
        *,
        capacity: int = 10_000,
        batch_size: int = 500,
        clock: Clock | None = None,
        metrics: Metrics | None = None,
        alert: AlertSink | None = None,
        backoff_initial_s: float = 0.05,
        backoff_max_s: float = 5.0,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if capacity < 1 or batch_size < 1:
            raise ValueError("capacity and batch_size must be positive")
        self._store = store
        self.capacity: Final = capacity
        self._batch_size = batch_size
        self._clock = clock if clock is not None else WallClock()
        self._metrics = metrics
        self._alert = alert
        self._backoff_initial = backoff_initial_s
        self._backoff_max = backoff_max_s
        self._sleep = sleep
        self._pending: deque[Record] = deque()
        self._wakeup = asyncio.Event()
        self._progress = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._enqueued = 0
        self._resolved = 0  # written or dead-lettered
        self.dead_letters: list[DeadLetter] = []
        self._dead_ids: set[int] = set()
        self._full_alarm = False
        self._outage_since_us: int | None = None
        self._reconnect = False
        if metrics is not None:  # read when scraped: always the live depth, nothing on the trading path
            metrics.db_queue_depth.set_function(lambda: float(len(self._pending)))

    # --- the trading path

    def enqueue(self, record: Record) -> None:
        """Queue ``record`` for writing. Synchronous, O(1), never blocks, never drops."""
        if self._closing:
            # A write after shutdown began would silently miss the final flush; make the ordering bug loud.
            raise RuntimeError(f"write-behind queue is closed; {record.key} not queued")
        self._pending.append(record)
        self._enqueued += 1
        if len(self._pending) > self.capacity:
            self._over_capacity()
        self._wakeup.set()

    @property
    def written(self) -> int:
        """Records committed so far (dead letters excluded)."""
        return self._resolved - len(self.dead_letters)

    @property
    def depth(self) -> int:
        return len(self._pending)

    @property
    def saturated(self) -> bool:
        """Over capacity: the database is not keeping up (or is down). Callers should stop adding risk."""
        return self._full_alarm

    @property
    def healthy(self) -> bool:
        """False while writes are failing."""
        return self._outage_since_us is None

    def _over_capacity(self) -> None:
        if self._metrics is not None:
            self._metrics.db_queue_overflow.inc()
        if not self._full_alarm:
            self._full_alarm = True
            self._raise_alert(
                "critical",
                "db_queue_full",
                f"write-behind queue over capacity ({self.capacity}); records are held in memory, none dropped",
                {"capacity": self.capacity, "depth": len(self._pending)},
            )

    def _raise_alert(self, severity: Severity, name: str, message: str, data: dict[str, int | str]) -> None:
        alert = AlertRecord(self._clock.now_us(), severity, name, message, data)
        log = _log.critical if severity == "critical" else _log.warning if severity == "warning" else _log.info
        log(name, message=message, **data)
        # Persisted through the queue itself (appended directly, so it cannot re-trigger the full alarm).
        self._pending.append(alert)
        self._enqueued += 1
        if self._alert is not None:
            self._alert(alert)

    # --- lifecycle

    def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("write-behind queue already started")
        self._task = asyncio.get_running_loop().create_task(self._run(), name="mm-write-behind")

    @property
    def running(self) -> bool:
        """The writer task is alive (started and not finished): the runtime's health check asks."""
        return self._task is not None and not self._task.done()

    async def flush(self, timeout: float | None = None, *, drain: bool = False) -> bool:
        """Wait until every record enqueued before this call is written (or dead-lettered); with ``drain``,
        until the queue is empty, including records (alerts) queued while flushing.

        Returns False if ``timeout`` seconds passed first; the records stay queued either way.
        """
        if self._task is None or self._task.done():
            raise RuntimeError("write-behind queue is not running")
        target = self._enqueued
        self._wakeup.set()
        try:
            async with asyncio.timeout(timeout):
                while self._pending if drain else self._resolved < target:
                    self._progress.clear()
                    await self._progress.wait()
        except TimeoutError:
            return False
        return True

    async def close(self, timeout: float = 30.0) -> CloseReport:
        """Flush everything (waiting at most ``timeout`` seconds), stop the flusher, report what is left."""
        if self._task is None:
            return CloseReport(self.written, tuple(self._pending), tuple(self.dead_letters))
        flushed = self._task.done() or await self.flush(timeout, drain=True)
        self._closing = True
        self._wakeup.set()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        report = CloseReport(self.written, tuple(self._pending), tuple(self.dead_letters))
        if not flushed or report.remaining:
            _log.critical(
                "db_queue_not_drained",
                remaining=len(report.remaining),
                first_keys=[r.key for r in report.remaining[:10]],
            )
        return report

    # --- the flusher

    async def _run(self) -> None:
        delay = self._backoff_initial
        while True:
            if not self._pending:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            batch = list(islice(self._pending, self._batch_size))
            try:
                await self._write(batch)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._failed(exc, len(batch))
                await self._sleep(delay)
                delay = min(delay * 2, self._backoff_max)
                continue
            delay = self._backoff_initial
            for _ in batch:
                self._dead_ids.discard(id(self._pending.popleft()))
            self._resolved += len(batch)
            self._recovered()
            if self._full_alarm and len(self._pending) <= self.capacity // 2:
                self._full_alarm = False
            self._progress.set()

    async def _write(self, batch: Sequence[Record]) -> None:
        if self._reconnect or not self._store.connected:
            await self._store.connect()
            self._reconnect = False
        try:
            await self._store.write_batch(batch)
        except sqlite3.OperationalError:
            raise  # the database is unavailable: retry the whole batch later
        except Exception:
            # Maybe one bad record: write them one by one to find it. A transient error here propagates
            # and the whole batch is retried (records already written are skipped by their keys).
            await self._isolate(batch)

    async def _isolate(self, batch: Sequence[Record]) -> None:
        for record in batch:
            if id(record) in self._dead_ids:  # already rejected on an earlier pass over this batch
                continue
            try:
                record.writes()
            except Exception as exc:
                self._dead_letter(record, exc)
                continue
            try:
                await self._store.write_batch((record,))
            except _POISON as exc:
                self._dead_letter(record, exc)

    def _dead_letter(self, record: Record, exc: Exception) -> None:
        self._dead_ids.add(id(record))
        self.dead_letters.append(DeadLetter(record, f"{type(exc).__name__}: {exc}"))
        if self._metrics is not None:
            self._metrics.db_write_errors.labels(kind="poison").inc()
        self._raise_alert(
            "critical", "db_record_rejected", f"record {record.key} cannot be written: {exc}", {"key": record.key}
        )

    def _failed(self, exc: Exception, batch_len: int) -> None:
        if self._metrics is not None:
            self._metrics.db_write_errors.labels(kind="transient").inc()
        message = str(exc)
        if not any(word in message for word in _SELF_HEALING):
            self._reconnect = True
        if self._outage_since_us is None:
            self._outage_since_us = self._clock.now_us()
            self._raise_alert(
                "critical",
                "db_unavailable",
                f"database writes failing ({type(exc).__name__}: {message}); records are queued and will be retried",
                {"error": message, "depth": len(self._pending), "batch": batch_len},
            )
        else:
            _log.debug("db_write_retry", error=message, depth=len(self._pending))

    def _recovered(self) -> None:
        if self._outage_since_us is None:
            return
        outage_us = self._clock.now_us() - self._outage_since_us
        self._outage_since_us = None
        self._raise_alert(
            "info", "db_recovered", "database writes succeed again", {"outage_us": outage_us, "depth": self.depth}
        )
