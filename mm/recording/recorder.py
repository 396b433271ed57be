"""The session recorder (FR-901, FR-904): what the node saw and did, per market, as JSON Lines (gzip).

The trading loop only ever calls :meth:`SessionRecorder.record` / :meth:`~SessionRecorder.record_book`:
synchronous, O(1) (a book capture copies the book's levels), never touching a file. Records go into a bounded
in-memory buffer that one background task drains — woken when ``buffer_size`` records wait, or every
``flush_interval_s`` — by handing the batch to a worker thread (``asyncio.to_thread``) that numbers, encodes
(orjson) and compresses (zlib, gzip format) it. Files are flushed (a gzip sync point: everything before it
can be read back after a crash) at most every ``flush_interval_s`` and closed on :meth:`close`.

Files: one per market and session, ``session_{market}_{YYYYMMDD}_{HHMM}.jsonl.gz`` under ``output_dir``
(the market sanitised to ``[A-Za-z0-9.-]``, the time the node clock's at the session's start, UTC; a name
already taken gets ``_2``, ``_3``...). A market's session starts with its first record (``session_start``:
format, session id, the effective specs and seeds from the ``session_info`` callback, then a
``state_snapshot``) and ends with :meth:`end_market` (the Market was deleted) or :meth:`close`
(``session_end`` with the final state).

Books: :meth:`record_book` captures the full levels of both sides; the writer turns consecutive captures
into ``book_delta`` records (one per changed level) and writes a ``book_snapshot`` for the first capture of
a session and the first one after every ``snapshot_interval_seconds`` tick.

Storage (FR-904): session files older than ``retention_days`` (their modification time, by the wall clock)
are deleted at start and daily; only files named like sessions are ever touched. When the session files
under ``output_dir`` exceed ``max_storage_mb`` (MiB), or a write fails (disk full), recording stops
gracefully: every open file gets its ``session_end`` and is closed, :attr:`SessionRecorder.recording_stopped`
is set and the ``alert`` callback called once. Trading is never affected: ``record`` just returns.

Overload: past ``max_pending`` buffered records (the disk cannot keep up), records are dropped and counted
rather than growing memory or blocking the loop; a ``recording_gap`` record in every open file says how many
(the file is then known not to be replayable across the gap).

Single-threaded like the rest of the node: call everything but the worker's internals from the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import uuid
import zlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final, Protocol

from mm.clock import Clock, WallClock, us_to_datetime
from mm.domain.book import OrderBook
from mm.domain.sides import Side
from mm.domain.ticks import TickGrid
from mm.recording.format import FORMAT_VERSION, TOGGLES, encode_record
from mm.specs.node import Recording

__all__ = ["SESSION_FILE", "RecordSink", "SessionRecorder", "sanitise_market", "session_file_name"]

Payload = Mapping[str, Any]
SessionInfo = Callable[[str], Payload]
"""market → what ``session_start`` carries besides the format: ``config`` (effective specs), ``seeds``..."""
StateProvider = Callable[[str], Payload]
"""market → the ``state_snapshot`` payload: ``accounts`` (positions, open orders, ledger summary)."""
Alert = Callable[[str, str], None]
"""(reason, message): recording stopped (storage limit, write failure)."""
Sleep = Callable[[float], Awaitable[None]]

_log = logging.getLogger(__name__)

SESSION_FILE: Final = re.compile(r"^session_[A-Za-z0-9.-]+_\d{8}_\d{4}(?:_\d+)?\.jsonl(?:\.gz)?$")
"""The names the recorder writes, and the only files retention ever deletes."""
MIB: Final = 1024 * 1024
DAY_US: Final = 86_400 * 1_000_000
DAY_NS: Final = 86_400 * 1_000_000_000
_BOOK: Final = "_book"  # internal item kinds, never written as such
_CLOSE: Final = "_close"
_UNSAFE: Final = re.compile(r"[^A-Za-z0-9.-]")

Item = tuple[str, str, int, Any]
"""(record type or internal kind, market, ts_us, data)."""


class RecordSink(Protocol):
    """What the node calls to record (``node.recorder``): the :class:`SessionRecorder`, or a replay's capture of
    what the replayed node records (:mod:`mm.recording.validator`)."""

    def enabled(self, type_: str) -> bool: ...

    def record(self, type_: str, market: str, data: Payload, ts_us: int | None = None) -> None: ...

    def record_book(self, market: str, book: OrderBook) -> None: ...

    def end_market(self, market: str, reason: str) -> None: ...

    def hold_snapshots(self, market: str) -> None: ...

    def release_snapshots(self, market: str) -> None: ...

    @property
    def markets(self) -> frozenset[str]: ...


def sanitise_market(market: str) -> str:
    """A market id usable in a file name: characters outside ``[A-Za-z0-9.-]`` (``_`` included, the name's
    separator) become ``-``; never empty, never starting with a dot."""
    clean = _UNSAFE.sub("-", market).lstrip(".")
    return clean or "market"


def session_file_name(market: str, ts_us: int, *, compressed: bool = True, number: int = 1) -> str:
    """``session_{market}_{YYYYMMDD}_{HHMM}.jsonl.gz`` (``_{number}`` before the suffix from the second)."""
    when = us_to_datetime(ts_us)
    suffix = ".jsonl.gz" if compressed else ".jsonl"
    extra = f"_{number}" if number > 1 else ""
    return f"session_{sanitise_market(market)}_{when:%Y%m%d}_{when:%H%M}{extra}{suffix}"


@dataclass
class _OpenFile:
    """Writer-side state of one session file (touched only by the writer)."""

    path: Path
    raw: IO[bytes]
    compressor: Any  # zlib's compress object (its type is private), or None for compression: none
    seq: int = 0
    yes: dict[int, int] = field(default_factory=dict)
    no: dict[int, int] = field(default_factory=dict)
    book_ts_us: int | None = None
    """The book's own timestamp at the last capture written (``OrderBook.last_update_us``)."""


class SessionRecorder:
    """Records one node's sessions (see the module docstring). Start with :meth:`start`, end with :meth:`close`."""

    def __init__(
        self,
        config: Recording,
        clock: Clock,
        *,
        wall: Clock | None = None,
        session_info: SessionInfo | None = None,
        state: StateProvider | None = None,
        alert: Alert | None = None,
        sleep: Sleep = asyncio.sleep,
        flush_interval_s: float = 1.0,
        max_pending: int | None = None,
        session_id: str | None = None,
        compress_level: int = 6,
    ) -> None:
        self.config = config
        self.output_dir = Path(config.output_dir)
        self.session_id = session_id or uuid.uuid4().hex
        self._clock = clock
        self._wall: Clock = wall if wall is not None else WallClock()
        self._session_info = session_info
        self._state = state
        self._alert = alert
        self._sleep = sleep
        self._flush_interval_s = flush_interval_s
        self._flush_interval_ns = int(flush_interval_s * 1e9)
        self._buffer_size = config.buffer_size
        # The hard bound: far above the flush trigger, so only a disk that stopped keeping up reaches it.
        self._max_pending = max_pending if max_pending is not None else max(50 * config.buffer_size, 10_000)
        self._sync = not config.async_write
        self._compressed = config.compression == "gzip"
        self._level = compress_level
        events = config.events.model_dump()
        self._disabled: frozenset[str] = frozenset(t for t, flag in TOGGLES.items() if not events[flag])
        self._book_snapshots = bool(events["book_snapshots"])
        self._book_deltas = bool(events["book_deltas"])
        self._books = self._book_snapshots or self._book_deltas
        self._state_on = bool(events["state"])
        self._limit_bytes = config.max_storage_mb * MIB
        # loop side
        self._off = True
        """record() returns at once: not started, stopped or closed (one check on the hot path)."""
        self._buf: list[Item] = []
        self._active: set[str] = set()
        self._book_due: set[str] = set()
        self._held: dict[str, int] = {}
        """Markets in the middle of a reconcile cycle (count): their periodic snapshot waits for its end."""
        self._state_due: set[str] = set()
        self._gap = 0
        self._wake: asyncio.Event | None = None
        self._lock: asyncio.Lock | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self._closed = False
        self._next_sweep_ns = 0
        # writer side (under the lock, in the worker thread)
        self._files: dict[str, _OpenFile] = {}
        self._last_flush_ns = 0
        self._disk_bytes_at_sweep = 0
        self._written_at_sweep = 0
        self.recording_stopped = False
        self.stop_reason: str | None = None
        self.records_written = 0
        self.bytes_written = 0
        """Compressed bytes handed to the files this run."""
        self.dropped = 0
        self.deleted: list[Path] = []
        """Files removed by retention (this run)."""
        self.paths: list[Path] = []
        """Every session file opened (this run), in order."""

    # ------------------------------------------------------------------ life cycle

    async def start(self) -> None:
        """Create the directory, apply retention, check the storage limit, start the writer and snapshots."""
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        try:
            await asyncio.to_thread(self.output_dir.mkdir, parents=True, exist_ok=True)
        except OSError as exc:
            self._stopped("write_error", f"cannot create {self.output_dir}: {exc}")
            return
        await self.sweep()
        if self.disk_bytes() > self._limit_bytes:
            self._stopped(
                "storage_limit",
                f"session files in {self.output_dir} already use {self.disk_bytes() / MIB:.1f} MiB "
                f"> max_storage_mb {self.config.max_storage_mb}: not recording",
            )
            return
        self._off = False
        self._last_flush_ns = self._wall.monotonic_ns()
        self._next_sweep_ns = self._wall.monotonic_ns() + DAY_NS
        if not self._sync:
            self._tasks.append(asyncio.create_task(self._run(), name="recorder-writer"))
        interval = float(self.config.snapshot_interval_seconds)
        if interval > 0:
            self._tasks.append(asyncio.create_task(self._snapshots(interval), name="recorder-snapshots"))

    async def close(self, reason: str = "shutdown") -> None:
        """End every session (``session_end`` with the final state), write everything, close the files."""
        if self._closed:
            return
        self._closed = True
        if not self._off:
            for market in sorted(self._active):
                self._end(market, reason)
        self._off = True
        self._closing = True
        if self._wake is not None:
            self._wake.set()
        for task in self._tasks:
            if task.get_name() == "recorder-snapshots":
                task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._lock is None:
            return
        async with self._lock:
            await self._drain(flush=True, finish=True)

    async def flush(self) -> None:
        """Write and flush everything recorded so far (tests, shutdown paths)."""
        if self._lock is None:
            return
        async with self._lock:
            await self._drain(flush=True)

    # ------------------------------------------------------------------ the hot path

    def enabled(self, type_: str) -> bool:
        """Would a record of this type be written now? (Lets a caller skip building an expensive payload.)"""
        return not self._off and type_ not in self._disabled

    def record(self, type_: str, market: str, data: Payload, ts_us: int | None = None) -> None:
        """Record one event of ``market`` (``ts_us``: now on the node clock). O(1), never blocks, never raises
        for IO: the payload is kept by reference, so pass values that no longer change (ints, strings, new
        dicts). A type whose ``recording.events`` toggle is off is ignored."""
        if self._off or type_ in self._disabled:
            return
        ts = self._clock.now_us() if ts_us is None else ts_us
        if market not in self._active:
            self._begin(market, ts)
        self._put((type_, market, ts, data))

    def record_book(self, market: str, book: OrderBook) -> None:
        """Capture ``book`` (the adapter's live book: its levels are copied now). The writer records the change
        since the previous capture as ``book_delta`` records, or a ``book_snapshot`` when one is due."""
        if self._off or not self._books:
            return
        if market not in self._active:
            self._begin(market)
        snapshot = market in self._book_due
        if not snapshot and not self._book_deltas:
            return  # snapshots only: nothing to capture until the next one is due
        self._book_due.discard(market)
        # depth() walks the ladder once; the copies are what the writer diffs, off the loop.
        n = len(book.grid.levels)
        levels = (snapshot, book.depth(Side.YES, n), book.depth(Side.NO, n), book.grid, book.last_update_us)
        self._put((_BOOK, market, self._clock.now_us(), levels))

    def end_market(self, market: str, reason: str) -> None:
        """The market's session is over (its Market was deleted, it settled): ``session_end`` and close its file.
        A later record of the market starts a new session (a new file)."""
        if self._off or market not in self._active:
            return
        self._end(market, reason)

    def snapshot_now(self) -> None:
        """A ``state_snapshot`` of every recorded market now, and a ``book_snapshot`` at its next book capture
        (called every ``snapshot_interval_seconds``)."""
        if self._off:
            return
        for market in sorted(self._active):
            if self._book_snapshots:
                self._book_due.add(market)
            if market in self._held:
                self._state_due.add(market)
            else:
                self._record_state(market)

    def hold_snapshots(self, market: str) -> None:
        """A reconcile cycle of ``market`` starts: a periodic ``state_snapshot`` due before it ends waits for
        :meth:`release_snapshots`, so snapshots always fall between cycles (where a replay can start)."""
        self._held[market] = self._held.get(market, 0) + 1

    def release_snapshots(self, market: str) -> None:
        left = self._held.get(market, 0) - 1
        if left > 0:
            self._held[market] = left
            return
        self._held.pop(market, None)
        if market in self._state_due:
            self._state_due.discard(market)
            if not self._off and market in self._active:
                self._record_state(market)

    @property
    def markets(self) -> frozenset[str]:
        """Markets with a session open."""
        return frozenset(self._active)

    def disk_bytes(self) -> int:
        """Session files' size under ``output_dir``: measured at the last sweep, plus what was written since."""
        return self._disk_bytes_at_sweep + self.bytes_written - self._written_at_sweep

    # ------------------------------------------------------------------ loop side helpers

    def _put(self, item: Item, *, force: bool = False) -> None:
        buf = self._buf
        if len(buf) >= self._max_pending and not force:
            self.dropped += 1
            self._gap += 1
            return
        buf.append(item)
        if self._sync:
            self._write_sync()
        elif len(buf) >= self._buffer_size and self._wake is not None:
            self._wake.set()

    def _begin(self, market: str, ts_us: int | None = None) -> None:
        """Open the market's session: ``session_start`` and a ``state_snapshot``, stamped ``ts_us`` (the time of
        the record that starts it, so stamps never go back) or now."""
        self._active.add(market)
        self._book_due.add(market)
        data: dict[str, Any] = {
            "format": FORMAT_VERSION,
            "session_id": self.session_id,
            "market_ids": [market],
            "config": {},
            "seeds": {},
        }
        if self._session_info is not None:
            try:
                data.update(self._session_info(market))
            except Exception:  # a bug in the callback must not stop trading: record what we have
                _log.exception("recording: session info for %s failed", market)
        data["recording"] = self.config.model_dump(mode="json")
        ts = self._clock.now_us() if ts_us is None else ts_us
        self._put(("session_start", market, ts, data), force=True)
        self._record_state(market, ts)

    def _record_state(self, market: str, ts_us: int | None = None) -> None:
        if self._state is None or not self._state_on:
            return
        try:
            data = dict(self._state(market))
        except Exception:
            _log.exception("recording: state snapshot of %s failed", market)
            return
        self._put(("state_snapshot", market, self._clock.now_us() if ts_us is None else ts_us, data))

    def _end(self, market: str, reason: str) -> None:
        self._mark_gap()  # while the session is still open
        data: dict[str, Any] = {"reason": reason}
        if self._state is not None:
            try:
                data["state"] = dict(self._state(market))
            except Exception:
                _log.exception("recording: final state of %s failed", market)
        now = self._clock.now_us()
        self._put(("session_end", market, now, data), force=True)
        self._put((_CLOSE, market, now, None), force=True)
        self._active.discard(market)
        self._book_due.discard(market)

    def _mark_gap(self) -> None:
        """The dropped records came after everything buffered: a gap marker after them, in every open session."""
        if self._gap:
            now = self._clock.now_us()
            self._buf.extend(("recording_gap", m, now, {"dropped": self._gap}) for m in sorted(self._active))
            self._gap = 0

    def _take(self) -> list[Item]:
        self._mark_gap()
        batch, self._buf = self._buf, []
        return batch

    def _stopped(self, reason: str, message: str) -> None:
        self._off = True
        self.recording_stopped = True
        self.stop_reason = message
        _log.error("recording stopped (%s): %s", reason, message)
        if self._alert is not None:
            try:
                self._alert(reason, message)
            except Exception:
                _log.exception("recording: the alert callback failed")

    def _halt_items(self, reason: str) -> list[Item]:
        """What is still buffered, then a session_end per open session: the files end cleanly."""
        self._off = True
        batch = self._take()
        now = self._clock.now_us()
        for market in sorted(self._active):
            batch.append(("session_end", market, now, {"reason": reason}))
        self._active.clear()
        self._book_due.clear()
        return batch

    # ------------------------------------------------------------------ background

    async def _run(self) -> None:
        assert self._wake is not None and self._lock is not None
        wake, lock = self._wake, self._lock
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=self._flush_interval_s)
            wake.clear()
            if self._closing:
                return
            async with lock:
                due = self._wall.monotonic_ns() - self._last_flush_ns >= self._flush_interval_ns
                await self._drain(flush=due)
            if self._wall.monotonic_ns() >= self._next_sweep_ns:
                self._next_sweep_ns = self._wall.monotonic_ns() + DAY_NS
                await self.sweep()

    async def _snapshots(self, interval_s: float) -> None:
        while True:
            await self._sleep(interval_s)
            self.snapshot_now()

    async def _drain(self, *, flush: bool = False, finish: bool = False) -> None:
        """Write what is buffered (caller holds the lock); stop recording on a write error or the size limit."""
        if self.recording_stopped and not self._files:
            self._buf.clear()
            return
        batch = self._take()
        if not batch and not flush and not finish:
            return
        try:
            await asyncio.to_thread(self._write, batch, flush, finish)
        except OSError as exc:
            await self._halt("write_error", f"cannot write session files in {self.output_dir}: {exc}")
            return
        if not finish and self.disk_bytes() > self._limit_bytes:
            await self._halt(
                "storage_limit",
                f"session files in {self.output_dir} use {self.disk_bytes() / MIB:.1f} MiB > max_storage_mb "
                f"{self.config.max_storage_mb}: recording stopped, trading continues",
            )

    async def _halt(self, reason: str, message: str) -> None:
        batch = self._halt_items(reason)
        await asyncio.to_thread(self._write_last, batch)
        self._stopped(reason, message)

    def _write_sync(self) -> None:
        """``async_write: false``: write through, on the loop (debugging; costs the loop the disk latency)."""
        try:
            self._write(self._take(), True, False)
        except OSError as exc:
            self._write_last(self._halt_items("write_error"))
            self._stopped("write_error", f"cannot write session files in {self.output_dir}: {exc}")
            return
        if self.disk_bytes() > self._limit_bytes:
            self._write_last(self._halt_items("storage_limit"))
            self._stopped("storage_limit", f"session files exceed max_storage_mb {self.config.max_storage_mb}")

    async def sweep(self) -> list[Path]:
        """Retention: delete session files older than ``retention_days``; re-measure the directory."""
        lock = self._lock
        if lock is None:
            return []
        async with lock:
            deleted, total = await asyncio.to_thread(self._sweep, self._wall.now_us())
            self._disk_bytes_at_sweep = total
            self._written_at_sweep = self.bytes_written
        for path in deleted:
            _log.info("recording: deleted %s (older than %d days)", path, self.config.retention_days)
        self.deleted.extend(deleted)
        return deleted

    # ------------------------------------------------------------------ writer (worker thread)

    def _sweep(self, now_us: int) -> tuple[list[Path], int]:
        cutoff_us = now_us - self.config.retention_days * DAY_US
        open_paths = {f.path for f in self._files.values()}
        deleted: list[Path] = []
        total = 0
        try:
            entries = list(self.output_dir.iterdir())
        except OSError:
            return [], 0
        for path in entries:
            if not SESSION_FILE.match(path.name):
                continue
            try:
                stat = path.stat()
                if path not in open_paths and stat.st_mtime_ns // 1000 < cutoff_us:
                    path.unlink()
                    deleted.append(path)
                else:
                    total += stat.st_size
            except OSError:
                continue
        return deleted, total

    def _write(self, batch: list[Item], flush: bool, finish: bool) -> None:
        files = self._files
        for kind, market, ts_us, data in batch:
            if kind == _CLOSE:
                self._close_file(market)
                continue
            f = files.get(market)
            if f is None:
                f = self._open(market, ts_us)
            if kind == _BOOK:
                self._write_book(f, market, ts_us, data)
            else:
                self._emit(f, kind, market, ts_us, data)
        if finish:
            for market in list(files):
                self._close_file(market)
        elif flush:
            for f in files.values():
                self._flush(f)
            self._last_flush_ns = self._wall.monotonic_ns()

    def _write_last(self, batch: list[Item]) -> None:
        """Best effort (recording is stopping): write what can be written, close every file whatever happens."""
        with contextlib.suppress(OSError):
            self._write(batch, False, False)
        for market in list(self._files):
            with contextlib.suppress(OSError):
                self._close_file(market)
        self._files.clear()

    def _open(self, market: str, ts_us: int) -> _OpenFile:
        number = 1
        while True:
            path = self.output_dir / session_file_name(market, ts_us, compressed=self._compressed, number=number)
            try:
                raw = open(path, "xb")  # noqa: SIM115 - kept open across batches, closed by _close_file
            except FileExistsError:
                number += 1
                continue
            break
        compressor = zlib.compressobj(self._level, zlib.DEFLATED, 31) if self._compressed else None  # 31: gzip
        opened = _OpenFile(path, raw, compressor)
        self._files[market] = opened
        self.paths.append(path)
        return opened

    def _emit(self, f: _OpenFile, type_: str, market: str, ts_us: int, data: Payload) -> None:
        f.seq += 1
        line = encode_record(f.seq, ts_us, type_, market, data)
        out = f.compressor.compress(line) if f.compressor is not None else line
        if out:
            f.raw.write(out)
            self.bytes_written += len(out)
        self.records_written += 1

    def _write_book(self, f: _OpenFile, market: str, ts_us: int, data: Any) -> None:
        snapshot, yes, no, grid, book_ts = data
        new_yes, new_no = dict(yes), dict(no)
        # The book's timestamp (when the feed applied the change) is what a stale_data rule measures: a capture
        # that moved no level but the timestamp (an identical resync) is written as a snapshot so it is not lost.
        touched = not snapshot and book_ts != f.book_ts_us and new_yes == f.yes and new_no == f.no
        f.book_ts_us = book_ts
        if (snapshot and self._book_snapshots) or touched:
            f.yes, f.no = new_yes, new_no
            payload = {"yes_bids": yes, "no_bids": no, "grid": _ranges(grid), "book_ts_us": book_ts}
            self._emit(f, "book_snapshot", market, ts_us, payload)
            return
        for side, new, previous in (("yes", new_yes, f.yes), ("no", new_no, f.no)):
            if new == previous:
                continue
            for price, size in new.items():
                old = previous.get(price, 0)
                if old != size:
                    action = "add" if old == 0 else "update"
                    delta = {"side": side, "price_units": price, "size_units": size, "delta_units": size - old}
                    delta["action"] = action
                    delta["book_ts_us"] = book_ts
                    self._emit(f, "book_delta", market, ts_us, delta)
            for price, old in previous.items():
                if price not in new:
                    delta = {"side": side, "price_units": price, "size_units": 0, "delta_units": -old}
                    delta["action"] = "remove"
                    delta["book_ts_us"] = book_ts
                    self._emit(f, "book_delta", market, ts_us, delta)
            if side == "yes":
                f.yes = new
            else:
                f.no = new

    def _flush(self, f: _OpenFile) -> None:
        if f.compressor is not None:
            out = f.compressor.flush(zlib.Z_SYNC_FLUSH)
            if out:
                f.raw.write(out)
                self.bytes_written += len(out)
        f.raw.flush()

    def _close_file(self, market: str) -> None:
        f = self._files.pop(market, None)
        if f is None:
            return
        try:
            if f.compressor is not None:
                out = f.compressor.flush(zlib.Z_FINISH)
                f.raw.write(out)
                self.bytes_written += len(out)
        finally:
            f.raw.close()


def _ranges(grid: TickGrid) -> list[tuple[int, int, int]]:
    return [(r.start, r.end, r.step) for r in grid.ranges]
