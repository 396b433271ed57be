"""The durable kill-switch latch (FR-504): :class:`~mm.risk.kill_switch.KillSwitchLatch` on SQLite.

The risk engine's :class:`~mm.risk.kill_switch.KillSwitch` stores a trip through its latch *before* anything
acts on it, so ``save`` here must not return until the trip is on disk: it uses plain synchronous ``sqlite3``
on its own connection with ``synchronous=FULL`` and commits before returning. This deliberately bypasses the
write-behind queue — a trip that waited behind a backlog, or in memory during a database outage, could be
lost in a crash, and a restart would then trade again.

Blocking the event loop for one fsync (about a millisecond) is acceptable here: a trip is rare and everything
is about to stop anyway. Loads happen at start-up. The file is the store's database; WAL lets this connection
and the store's aiosqlite connection share it, and ``busy_timeout`` waits out a concurrent batch commit.
If the save fails (disk full, database locked for longer than the timeout), the error propagates: the caller
must treat an unsaved trip as tripped in memory and stop trading anyway, never as "not tripped".
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Final

from mm.risk.kill_switch import KillSwitchState
from mm.state.migrations import migrate

__all__ = ["SqliteKillSwitchLatch"]

_UPSERT: Final = (
    "INSERT INTO kill_switch (scope, tripped, reason, source, tripped_at_us, reset_by, reset_at_us)"
    " VALUES (?,?,?,?,?,?,?) ON CONFLICT (scope) DO UPDATE SET tripped = excluded.tripped, reason = excluded.reason,"
    " source = excluded.source, tripped_at_us = excluded.tripped_at_us, reset_by = excluded.reset_by,"
    " reset_at_us = excluded.reset_at_us"
)
_SELECT: Final = "SELECT tripped, reason, source, tripped_at_us, reset_by, reset_at_us FROM kill_switch WHERE scope = ?"


class SqliteKillSwitchLatch:
    """Kill-switch states per scope in the ``kill_switch`` table; every ``save`` is durable when it returns."""

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 10_000) -> None:
        # check_same_thread=False plus our own lock: the latch may be used from the loop thread and from a
        # signal/CLI thread; sqlite3 connections must not be used concurrently.
        self._conn = sqlite3.connect(Path(path), isolation_level=None, check_same_thread=False)
        self._lock = threading.Lock()
        try:
            self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            self._conn.execute("PRAGMA journal_mode = WAL")
            # FULL: the WAL is fsynced at every commit, so a trip survives a power cut, not just a crash.
            self._conn.execute("PRAGMA synchronous = FULL")
            migrate(self._conn)
        except BaseException:
            self._conn.close()
            raise

    def load(self, scope: str) -> KillSwitchState | None:
        with self._lock:
            row = self._conn.execute(_SELECT, (scope,)).fetchone()
        if row is None:
            return None
        return KillSwitchState(
            tripped=bool(row[0]),
            reason=row[1],
            source=row[2],
            tripped_at_us=row[3],
            reset_by=row[4],
            reset_at_us=row[5],
        )

    def save(self, scope: str, state: KillSwitchState) -> None:
        row = (
            scope,
            int(state.tripped),
            state.reason,
            state.source,
            state.tripped_at_us,
            state.reset_by,
            state.reset_at_us,
        )
        with self._lock:
            # Autocommit mode: the single statement is its own transaction, committed (and fsynced) on return.
            self._conn.execute(_UPSERT, row)

    def scopes(self) -> dict[str, KillSwitchState]:
        """Every stored scope's state (for ``mmctl status``)."""
        with self._lock:
            scopes = [r[0] for r in self._conn.execute("SELECT scope FROM kill_switch ORDER BY scope")]
        return {scope: state for scope in scopes if (state := self.load(scope)) is not None}

    def close(self) -> None:
        with self._lock:
            self._conn.close()
