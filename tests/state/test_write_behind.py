"""The write-behind queue against a real SQLite file, including database outages (NFR-603 "database failure")."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable
from decimal import Decimal
from pathlib import Path

import pytest

from mm.clock import SimulatedClock
from mm.observability.metrics import Metrics
from mm.state.records import AlertRecord, FillRecord, PnlSnapshotRecord, Record
from mm.state.store import Store
from mm.state.write_behind import WriteBehindQueue
from tests.state.test_store import T0, make_fill, on_writer


async def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.002)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    # A short busy timeout: a locked database fails fast and the queue's own retry loop takes over.
    s = await Store.open(tmp_path / "mm.db", busy_timeout_ms=20)
    yield s
    await s.close()


def make_queue(store: Store, **kwargs: object) -> WriteBehindQueue:
    queue = WriteBehindQueue(
        store,
        clock=SimulatedClock(T0),
        backoff_initial_s=0.005,
        backoff_max_s=0.02,
        **kwargs,  # type: ignore[arg-type]
    )
    queue.start()
    return queue


async def fill_ids(store: Store) -> list[str]:
    return [row["fill_id"] for row in await store.rows("fills")]


async def alert_names(store: Store) -> list[str]:
    return [row["name"] for row in await store.rows("alerts")]


async def test_records_are_written_in_enqueue_order(store: Store) -> None:
    queue = make_queue(store, batch_size=7)
    for i in range(100):
        queue.enqueue(FillRecord(make_fill(i)))
    assert await queue.flush(timeout=10)
    assert await fill_ids(store) == [f"fill-{i}" for i in range(100)]
    assert queue.written == 100
    assert queue.depth == 0
    report = await queue.close()
    assert report.complete


async def test_enqueue_never_awaits_the_database(store: Store) -> None:
    queue = make_queue(store)
    blocker = sqlite3.connect(store.path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        for i in range(1000):  # plain synchronous calls while the database is locked
            queue.enqueue(FillRecord(make_fill(i)))
        assert queue.depth >= 1000
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert await queue.flush(timeout=10)
    await queue.close()


async def test_locked_database_mid_run_loses_and_duplicates_nothing(store: Store) -> None:
    alerts: list[AlertRecord] = []
    queue = make_queue(store, batch_size=50, alert=alerts.append)
    for i in range(200):
        queue.enqueue(FillRecord(make_fill(i)))
    await asyncio.sleep(0)
    # Another process takes an exclusive lock while fills keep arriving.
    blocker = sqlite3.connect(store.path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    i = 200
    while queue.healthy or i < 1200:
        queue.enqueue(FillRecord(make_fill(i)))
        i += 1
        if i % 50 == 0:
            await asyncio.sleep(0.001)
        assert i < 100_000, "the queue never noticed the lock"
    stored_during_outage = blocker.execute("SELECT COUNT(*) FROM fills").fetchone()[0]
    assert queue.depth >= i - stored_during_outage
    blocker.execute("ROLLBACK")  # the database comes back
    blocker.close()

    assert await queue.flush(timeout=20)
    ids = await fill_ids(store)
    assert ids == [f"fill-{n}" for n in range(i)]  # every record, once, in order
    assert [a.name for a in alerts] == ["db_unavailable", "db_recovered"]
    assert await queue.flush(timeout=10, drain=True)
    assert await alert_names(store) == ["db_unavailable", "db_recovered"]
    assert queue.healthy
    await queue.close()


async def test_read_only_database_mid_run_then_restored(store: Store) -> None:
    queue = make_queue(store)
    for i in range(10):
        queue.enqueue(FillRecord(make_fill(i)))
    assert await queue.flush(timeout=10)
    # The store's connection becomes read-only (what a remount read-only or revoked permission looks like to
    # SQLite: "attempt to write a readonly database"). Root ignores chmod, so the pragma is the portable way.
    await on_writer(store, "PRAGMA query_only = 1")
    for i in range(10, 500):
        queue.enqueue(FillRecord(make_fill(i)))
    await wait_until(lambda: not queue.healthy)
    for i in range(500, 600):
        queue.enqueue(FillRecord(make_fill(i)))
    assert await store.count("fills") == 10
    await on_writer(store, "PRAGMA query_only = 0")
    assert await queue.flush(timeout=20)
    assert await fill_ids(store) == [f"fill-{n}" for n in range(600)]
    await queue.close()


class CommitThenFail(Store):
    """A store whose commit succeeds but whose caller sees an error (a lost acknowledgement)."""

    failures = 0

    async def write_batch(self, records: Iterable[Record]) -> None:
        await super().write_batch(records)
        if self.failures > 0:
            self.failures -= 1
            raise sqlite3.OperationalError("disk I/O error")


async def test_a_retry_after_a_commit_that_looked_failed_does_not_duplicate(tmp_path: Path) -> None:
    store = await CommitThenFail.open(tmp_path / "mm.db")
    assert isinstance(store, CommitThenFail)
    store.failures = 3
    queue = make_queue(store, batch_size=25)
    for i in range(100):
        queue.enqueue(FillRecord(make_fill(i)))
    assert await queue.flush(timeout=10)
    assert await fill_ids(store) == [f"fill-{n}" for n in range(100)]
    assert store.failures == 0
    await queue.close()
    await store.close()


async def test_over_capacity_alerts_once_and_keeps_everything(store: Store) -> None:
    metrics = Metrics()
    alerts: list[AlertRecord] = []
    queue = make_queue(store, capacity=10, batch_size=5, metrics=metrics, alert=alerts.append)
    blocker = sqlite3.connect(store.path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    for i in range(100):
        queue.enqueue(FillRecord(make_fill(i)))
    assert queue.saturated
    assert [a.name for a in alerts] == ["db_queue_full"]
    assert metrics.db_queue_overflow._value.get() == 90
    await wait_until(lambda: not queue.healthy)
    assert queue.depth == 102  # 100 fills and the two alerts (queue full, database unavailable)
    assert metrics.registry.get_sample_value("mm_db_queue_depth") == 102
    blocker.execute("ROLLBACK")
    blocker.close()
    assert await queue.flush(timeout=20)
    assert await fill_ids(store) == [f"fill-{n}" for n in range(100)]
    assert not queue.saturated
    assert metrics.registry.get_sample_value("mm_db_queue_depth") == 0
    assert "db_queue_full" in await alert_names(store)
    await queue.close()


async def test_a_record_that_can_never_be_written_does_not_block_the_others(store: Store) -> None:
    metrics = Metrics()
    queue = make_queue(store, metrics=metrics)
    poison = PnlSnapshotRecord(T0, "M1", 1.5, Decimal(0))  # type: ignore[arg-type]
    queue.enqueue(FillRecord(make_fill(1)))
    queue.enqueue(poison)
    queue.enqueue(FillRecord(make_fill(2)))
    assert await queue.flush(timeout=10)
    assert await fill_ids(store) == ["fill-1", "fill-2"]
    assert [d.record for d in queue.dead_letters] == [poison]
    assert "TypeError" in queue.dead_letters[0].error
    assert metrics.registry.get_sample_value("mm_db_write_errors_total", {"kind": "poison"}) == 1
    assert await queue.flush(timeout=10, drain=True)  # the alert was queued while flushing
    assert "db_record_rejected" in await alert_names(store)
    await queue.close()


async def test_backoff_is_exponential_and_capped(store: Store) -> None:
    delays: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        delays.append(seconds)
        await asyncio.sleep(0)

    queue = WriteBehindQueue(store, backoff_initial_s=0.1, backoff_max_s=0.5, sleep=fake_sleep)
    queue.start()
    blocker = sqlite3.connect(store.path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    queue.enqueue(FillRecord(make_fill(1)))
    await wait_until(lambda: len(delays) >= 6)
    blocker.execute("ROLLBACK")
    blocker.close()
    assert delays[:6] == [0.1, 0.2, 0.4, 0.5, 0.5, 0.5]
    assert await queue.flush(timeout=10)
    await queue.close()


async def test_close_drains_everything(store: Store) -> None:
    queue = make_queue(store, batch_size=3)
    for i in range(50):
        queue.enqueue(FillRecord(make_fill(i)))
    report = await queue.close(timeout=10)
    assert report.complete
    assert report.written == 50
    assert await store.count("fills") == 50
    with pytest.raises(RuntimeError, match="closed"):
        queue.enqueue(FillRecord(make_fill(99)))


async def test_close_with_the_database_down_reports_what_is_left(store: Store) -> None:
    queue = make_queue(store)
    blocker = sqlite3.connect(store.path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        for i in range(20):
            queue.enqueue(FillRecord(make_fill(i)))
        report = await queue.close(timeout=0.2)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert not report.complete
    remaining_fills = [r for r in report.remaining if isinstance(r, FillRecord)]
    assert [r.fill.fill_id for r in remaining_fills] == [f"fill-{i}" for i in range(20)]
    # The caller can still write them (the keys make it safe even if some were committed).
    await store.write_batch(report.remaining)
    assert await store.count("fills") == 20


async def test_flush_before_start_is_an_error(store: Store) -> None:
    queue = WriteBehindQueue(store)
    with pytest.raises(RuntimeError, match="not running"):
        await queue.flush()
