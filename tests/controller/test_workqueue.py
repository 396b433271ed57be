"""The work queue: dedupe, one worker per key with dirty re-queue, backoff, delayed adds, shutdown."""

from __future__ import annotations

import asyncio

import pytest

from mm.clock import WallClock
from mm.controller.workqueue import WorkQueue


@pytest.fixture
def queue() -> WorkQueue:
    return WorkQueue(WallClock(), base_delay_s=0.001, max_delay_s=0.004)


async def test_duplicates_collapse_and_order_is_kept(queue: WorkQueue) -> None:
    for key in ("a", "b", "a", "c", "b"):
        queue.add(key)
    assert len(queue) == 3
    assert [await queue.get() for _ in range(3)] == ["a", "b", "c"]
    assert queue.adds == 5


async def test_a_key_being_processed_is_not_handed_out_again_but_is_not_lost(queue: WorkQueue) -> None:
    queue.add("m")
    first = await queue.get()
    assert first == "m" and queue.processing == {"m"}
    queue.add("m")  # an event while it reconciles
    queue.add("m")
    assert len(queue) == 0  # not queued while processing
    queue.done("m")
    assert len(queue) == 1  # re-queued once, after done
    assert await queue.get() == "m"
    queue.done("m")
    assert len(queue) == 0


async def test_backoff_doubles_up_to_the_cap_and_forget_resets(queue: WorkQueue) -> None:
    delays = [queue.add_rate_limited("k") for _ in range(5)]
    assert delays == [0.001, 0.002, 0.004, 0.004, 0.004]
    assert queue.failures("k") == 5
    queue.forget("k")
    assert queue.failures("k") == 0 and queue.add_rate_limited("k") == 0.001
    assert await asyncio.wait_for(queue.get(), 2) == "k"


async def test_add_after_fires_once_and_the_earlier_timer_wins(queue: WorkQueue) -> None:
    queue.add_after("x", 10.0)
    queue.add_after("x", 0.01)  # earlier: replaces the 10 s timer
    queue.add_after("x", 5.0)  # later: ignored
    assert queue.pending_timers() == 1
    assert await asyncio.wait_for(queue.get(), 2) == "x"
    assert queue.pending_timers() == 0


async def test_workers_run_distinct_keys_in_parallel_and_one_key_serially(queue: WorkQueue) -> None:
    running: dict[str, int] = {}
    overlap: list[str] = []
    seen: list[str] = []
    release = asyncio.Event()

    async def worker() -> None:
        while (key := await queue.get()) is not None:
            running[key] = running.get(key, 0) + 1
            if running[key] > 1:
                overlap.append(key)
            seen.append(key)
            await release.wait()
            running[key] -= 1
            queue.done(key)

    tasks = [asyncio.create_task(worker()) for _ in range(3)]
    for key in ("a", "b", "a", "a"):
        queue.add(key)

    async def two_running() -> None:
        while sum(running.values()) < 2:
            await asyncio.sleep(0.001)

    await asyncio.wait_for(two_running(), 2)
    queue.add("a")  # while "a" runs: dirty, not parallel
    release.set()

    async def drained() -> None:
        while len(queue) or queue.processing or seen.count("a") < 2:
            await asyncio.sleep(0.001)

    await asyncio.wait_for(drained(), 2)
    await queue.shutdown()
    await asyncio.wait_for(asyncio.gather(*tasks), 2)
    assert overlap == []
    assert sorted(seen) == ["a", "a", "b"]


async def test_shutdown_releases_blocked_workers(queue: WorkQueue) -> None:
    waiter = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.add_after("late", 10.0)
    await queue.shutdown()
    assert await asyncio.wait_for(waiter, 2) is None
    assert queue.pending_timers() == 0
    queue.add("ignored")
    assert len(queue) == 0
