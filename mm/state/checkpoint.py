"""Recovery checkpoints and the lock file (FR-1201, FR-1202).

A checkpoint is one JSON document for the node, rewritten every ``interval_s`` seconds (default 10). Each
entry of ``markets`` has exactly the fields of FR-1201's example (``timestamp``, ``market_id``, ``positions``,
``inventory``, ``realized_pnl``, ``open_orders``, ``config_version``); money and fractional quantities are
exact decimal *strings*, never JSON floats. A ``checksum`` (sha256 of the canonical body) lets
:func:`load_checkpoint` reject a file damaged at rest.

Atomic write: the document goes to a temp file in the same directory, is flushed and fsynced, the current
checkpoint is hard-linked to ``<name>.prev``, the temp file is renamed over the checkpoint, and the directory
is fsynced so the rename itself is durable. A crash at any point leaves a complete checkpoint (the old or the
new one); :func:`load_checkpoint` falls back to ``.prev`` if the current one is missing or invalid.

The lock file (``<state_dir>/mmctl.lock``) holds the pid, host and start time of the running node. Finding
one at start-up from a dead pid means the last run crashed (FR-1202 recovery mode); a live pid means another
node is running on this state directory, and starting is refused. A clean shutdown removes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import orjson

from mm.clock import Clock, WallClock, format_rfc3339_us
from mm.observability.logging import get_logger
from mm.specs.canonical import canonical_json

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "CheckpointWriter",
    "LockFile",
    "LockHeldError",
    "LockInfo",
    "MarketCheckpoint",
    "decode_checkpoint",
    "encode_checkpoint",
    "load_checkpoint",
    "write_atomic",
]

FORMAT: Final = 1
_log = get_logger("mm.state.checkpoint")


class CheckpointError(ValueError):
    """A checkpoint file that is not a complete, valid document."""


@dataclass(frozen=True, slots=True)
class MarketCheckpoint:
    """One market's recovery state (FR-1201's example). Quantities in contracts, money in dollars."""

    market_id: str
    positions: Mapping[str, Decimal | int]
    inventory: Decimal | int
    realized_pnl: Decimal
    open_orders: tuple[str, ...]
    config_version: str


@dataclass(frozen=True, slots=True)
class Checkpoint:
    timestamp_us: int
    markets: tuple[MarketCheckpoint, ...]
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Node-level state the caller wants back on recovery (must be JSON-encodable, no floats)."""


def _number(value: Decimal | int) -> Decimal | int:
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise TypeError(f"checkpoint numbers must be Decimal or int, not {type(value).__name__}")
    return value


def encode_checkpoint(checkpoint: Checkpoint) -> bytes:
    """The checkpoint as canonical JSON bytes with a checksum."""
    timestamp = format_rfc3339_us(checkpoint.timestamp_us)
    markets = {
        m.market_id: {
            "timestamp": timestamp,
            "market_id": m.market_id,
            "positions": {k: _number(v) for k, v in m.positions.items()},
            "inventory": _number(m.inventory),
            "realized_pnl": _number(m.realized_pnl),
            "open_orders": list(m.open_orders),
            "config_version": m.config_version,
        }
        for m in checkpoint.markets
    }
    body = {
        "format": FORMAT,
        "timestamp": timestamp,
        "timestamp_us": checkpoint.timestamp_us,
        "markets": markets,
        "extra": dict(checkpoint.extra),
    }
    return canonical_json(body | {"checksum": _checksum(body)})


def _checksum(body: Mapping[str, Any]) -> str:
    return "sha256:" + hashlib.sha256(canonical_json(body)).hexdigest()


def _exact(value: Any) -> Decimal | int:
    # canonical JSON wrote Decimals as strings; ints stayed ints.
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        return Decimal(value)
    raise CheckpointError(f"expected an exact number, got {value!r}")


def decode_checkpoint(data: bytes) -> Checkpoint:
    """Parse and validate a checkpoint document; raises :class:`CheckpointError` if anything is off."""
    try:
        doc = orjson.loads(data)
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise CheckpointError(f"not a format-{FORMAT} checkpoint")
        checksum = doc.pop("checksum", None)
        if checksum != _checksum(doc):
            raise CheckpointError("checksum mismatch")
        markets = tuple(
            MarketCheckpoint(
                market_id=m["market_id"],
                positions={k: _exact(v) for k, v in m["positions"].items()},
                inventory=_exact(m["inventory"]),
                realized_pnl=Decimal(m["realized_pnl"]),
                open_orders=tuple(m["open_orders"]),
                config_version=m["config_version"],
            )
            for m in doc["markets"].values()
        )
        return Checkpoint(timestamp_us=int(doc["timestamp_us"]), markets=markets, extra=doc["extra"])
    except CheckpointError:
        raise
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError, ArithmeticError, ValueError) as exc:
        raise CheckpointError(f"malformed checkpoint: {type(exc).__name__}: {exc}") from exc


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, *, keep_previous: bool = False) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves either the old or the new file, complete."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)  # the bytes are on disk before the rename can make them visible
        finally:
            os.close(fd)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()  # an error we survive should not leave litter (a real crash may; loads ignore it)
        raise
    if keep_previous and path.exists():
        prev_tmp = path.with_name(f".{path.name}.prev.{os.getpid()}.tmp")
        with contextlib.suppress(FileNotFoundError):
            prev_tmp.unlink()
        try:
            os.link(path, prev_tmp)  # a second name for the current file: no moment without a checkpoint
            os.replace(prev_tmp, path.with_name(path.name + ".prev"))
        except OSError as exc:  # e.g. a filesystem without hard links: the previous copy is a nicety
            _log.warning("checkpoint_prev_not_kept", error=str(exc))
    os.replace(tmp, path)
    _fsync_dir(path.parent)  # makes the rename durable, not just the file contents


def load_checkpoint(path: str | Path) -> Checkpoint | None:
    """The newest valid checkpoint at ``path`` (or its ``.prev``); None if there is none."""
    path = Path(path)
    for candidate in (path, path.with_name(path.name + ".prev")):
        try:
            checkpoint = decode_checkpoint(candidate.read_bytes())
        except FileNotFoundError:
            continue
        except (CheckpointError, OSError) as exc:
            _log.warning("checkpoint_invalid", path=str(candidate), error=str(exc))
            continue
        if candidate != path:
            _log.warning("checkpoint_fallback_to_previous", path=str(candidate))
        return checkpoint
    return None


Sleep = Callable[[float], Awaitable[None]]


class CheckpointWriter:
    """Writes ``source()`` to ``path`` atomically, now (:meth:`write_now`) or every ``interval_s`` (:meth:`run`)."""

    def __init__(
        self,
        path: str | Path,
        source: Callable[[], Checkpoint],
        *,
        interval_s: float = 10.0,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        self.path: Final = Path(path)
        self._source = source
        self.interval_s: Final = interval_s
        self._sleep = sleep
        self.written = 0
        self.failures = 0

    def write_now(self) -> Checkpoint:
        """Take a checkpoint from the source and write it (blocking; a few small writes and fsyncs)."""
        checkpoint = self._source()
        write_atomic(self.path, encode_checkpoint(checkpoint), keep_previous=True)
        self.written += 1
        return checkpoint

    async def run(self) -> None:
        """Checkpoint every ``interval_s`` until cancelled. A failed write is logged and retried next period:
        the previous checkpoint stays valid, and trading does not stop for a checkpoint."""
        while True:
            # The state is read on the loop (a consistent view); encoding and IO run in a worker thread.
            try:
                data = encode_checkpoint(self._source())
                await asyncio.to_thread(write_atomic, self.path, data, keep_previous=True)
                self.written += 1
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.failures += 1
                _log.error("checkpoint_write_failed", path=str(self.path), error=f"{type(exc).__name__}: {exc}")
            await self._sleep(self.interval_s)


class LockHeldError(RuntimeError):
    """Another live process holds the state directory's lock."""


@dataclass(frozen=True, slots=True)
class LockInfo:
    pid: int
    host: str
    started_us: int


def _read_info(path: Path) -> LockInfo | None:
    try:
        doc = orjson.loads(path.read_bytes())
        return LockInfo(pid=int(doc["pid"]), host=str(doc["host"]), started_us=int(doc["started_us"]))
    except (FileNotFoundError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


def live_lock_holder(path: str | Path) -> LockInfo | None:
    """Who holds the lock at ``path`` if a live process holds it (None: free, or left by a crashed run).

    The kernel's ``flock`` decides, not the pid in the file: the lock dies with its process, however the process
    died, and a pid or host name that repeats (a container restarted with the same pid) cannot fake a holder."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _read_info(path) or LockInfo(pid=0, host="", started_us=0)
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


class LockFile:
    """The node's lock file: ``acquire`` at start-up, ``release`` on clean shutdown."""

    def __init__(self, path: str | Path, clock: Clock | None = None) -> None:
        self.path: Final = Path(path)
        self._clock = clock if clock is not None else WallClock()
        self.info: LockInfo | None = None
        self._fd: int | None = None
        self.stale: LockInfo | None = None
        """The lock left by a crashed run, if ``acquire`` found and took over one (FR-1202: recovery mode)."""

    @property
    def previous_run_crashed(self) -> bool:
        return self.stale is not None

    def acquire(self) -> LockInfo:
        """Take the lock (an exclusive ``flock`` held for the process's life) and write who holds it; a file left
        by a crashed run (content, but no holder) is taken over with a warning; a live holder is refused."""
        info = LockInfo(pid=os.getpid(), host=socket.gethostname(), started_us=self._clock.now_us())
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            held = _read_info(self.path)
            who = f"running pid {held.pid} on {held.host} (started {held.started_us} us)" if held else "a running node"
            raise LockHeldError(f"{self.path} is held by {who}") from None
        try:
            left = os.read(fd, 4096)
            if left:
                # a run that ended without releasing: crashed (kill -9, OOM, power) — FR-1202 recovery mode
                try:
                    doc = orjson.loads(left)
                    self.stale = LockInfo(pid=int(doc["pid"]), host=str(doc["host"]), started_us=int(doc["started_us"]))
                except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                    self.stale = LockInfo(pid=0, host=info.host, started_us=0)  # torn while being written
                _log.warning("stale_lock_taken_over", path=str(self.path), pid=self.stale.pid)
            os.ftruncate(fd, 0)
            os.pwrite(fd, orjson.dumps({"pid": info.pid, "host": info.host, "started_us": info.started_us}), 0)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            raise
        _fsync_dir(self.path.parent)
        self._fd = fd
        self.info = info
        return info

    def release(self) -> None:
        """Remove the lock if we hold it (clean shutdown)."""
        if self.info is None:
            return
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        _fsync_dir(self.path.parent)
        if self._fd is not None:
            os.close(self._fd)  # releases the flock
            self._fd = None
        self.info = None
