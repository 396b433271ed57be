"""NFR-603 "database failure": the node's SQLite file is write-locked by another connection (a real outage, the
way a backup tool or a stray ``sqlite3`` shell would cause one) while the node trades and is filled."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.chaos.conftest import SEED
from tests.chaos.inproc import (
    assert_no_duplicates,
    assert_nothing_lost,
    chaos_node,
    one_market,
    settled_data,
    start_traffic,
)
from tests.chaos.results import Measurement
from tests.controller.harness import wait_until

pytestmark = pytest.mark.chaos


@contextmanager
def write_locked(database: Path) -> Iterator[sqlite3.Connection]:
    """Hold SQLite's write lock on ``database`` from another connection until the block ends (WAL: readers go
    on, every writer waits for ``busy_timeout`` and then fails with "database is locked")."""
    # Taking the lock waits for a write of the node's in progress (timeout=0 failed when it caught one); once held,
    # it is the node's writer that waits.
    blocker = sqlite3.connect(database, timeout=10.0, isolation_level=None)
    try:
        blocker.execute("BEGIN EXCLUSIVE")
        yield blocker
    finally:
        if blocker.in_transaction:
            blocker.execute("ROLLBACK")
        blocker.close()


def alert_names(database: Path) -> list[str]:
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10.0)
    try:
        return [r[0] for r in conn.execute("SELECT name FROM alerts ORDER BY timestamp_us")]
    finally:
        conn.close()


async def test_database_failure_trading_continues_writes_queue_and_nothing_is_lost(
    tmp_path: Path, measure: Callable[[str], Measurement]
) -> None:
    record = measure("database_failure")
    async with chaos_node(tmp_path, one_market()) as node:
        node.h.seed_book(node.ticker)
        await node.wait_quoting()
        runtime = node.h.runtime
        queue = runtime.queue_db
        assert queue is not None
        database = node.h.state_dir / "mmctl.db"
        pump, monitor = start_traffic(node, SEED)
        await wait_until(lambda: runtime.node.fills_seen >= 1, what="a first fill")

        def quotes_full() -> bool:
            ours = node.h.our_orders(node.ticker)
            return node.quoting() and all(o.remaining_count == 500 for o in ours)  # type: ignore[attr-defined]

        with write_locked(database):
            blocked = time.monotonic()
            fills = runtime.node.fills_seen
            await wait_until(lambda: not queue.healthy, timeout=15, what="the queue to see the outage")
            # trading goes on while nothing can be written: fills booked, quotes restored, records queued
            await wait_until(
                lambda: runtime.node.fills_seen >= fills + 5 and quotes_full(),
                timeout=30,
                what="fills booked and both quotes back to full size during the outage",
            )
            depth = queue.depth
            assert depth > 0
            outage = time.monotonic() - blocked
        unblocked = time.monotonic()
        await wait_until(lambda: queue.healthy and queue.depth == 0, timeout=30, what="the queue to drain")
        record.recovered(time.monotonic() - unblocked)
        record.note(
            outage_s=outage,
            queued_at_unblock=depth,
            fills_during_outage=runtime.node.fills_seen - fills,
            fill_pump_takes=pump.takes,
        )
        check = await settled_data(node)
        names = alert_names(database)
        assert "db_unavailable" in names and "db_recovered" in names, names
        assert queue.dead_letters == []
        assert_no_duplicates(node, monitor.seen)
        assert_nothing_lost(record, check)
