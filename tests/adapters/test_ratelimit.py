"""Token buckets (FR-603) on a simulated clock: bursts pass, excess waits exactly the refill time, FIFO."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from mm.adapters.ratelimit import ClientRateLimiter, TokenBucket
from mm.clock import SimulatedClock

START = 1_786_000_000_000_000


class AdvancingSleep:
    """An injected sleep that advances the simulated clock instead of waiting."""

    def __init__(self, clock: SimulatedClock) -> None:
        self.clock = clock
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        self.clock.advance_us(round(seconds * 1_000_000))
        await asyncio.sleep(0)


async def test_burst_up_to_capacity_then_waits_the_refill_time() -> None:
    clock = SimulatedClock(START)
    sleep = AdvancingSleep(clock)
    bucket = TokenBucket(Decimal(10), 10, clock=clock, sleep=sleep)
    for _ in range(10):
        assert await bucket.acquire() == 0.0
    assert sleep.delays == []
    waited = await bucket.acquire()
    assert waited == pytest.approx(0.1)
    assert sleep.delays == [pytest.approx(0.1)]
    assert bucket.waits == 1
    # after a full second idle the bucket is full again (capped at capacity)
    clock.advance(5)
    assert bucket.available == pytest.approx(10)


async def test_multi_token_wait_and_capacity_check() -> None:
    clock = SimulatedClock(START)
    sleep = AdvancingSleep(clock)
    bucket = TokenBucket(2.0, 4, clock=clock, sleep=sleep)
    assert await bucket.acquire(4) == 0.0
    assert await bucket.acquire(3) == pytest.approx(1.5)
    with pytest.raises(ValueError):
        await bucket.acquire(5)
    with pytest.raises(ValueError):
        await bucket.acquire(0)
    with pytest.raises(ValueError):
        TokenBucket(0, 1, clock=clock)


async def test_waiters_are_served_in_fifo_order_and_never_dropped() -> None:
    clock = SimulatedClock(START)
    sleep = AdvancingSleep(clock)
    bucket = TokenBucket(1, 1, clock=clock, sleep=sleep)
    order: list[int] = []

    async def take(i: int, tokens: float) -> None:
        await bucket.acquire(tokens)
        order.append(i)

    await bucket.acquire()
    await asyncio.gather(take(1, 1), take(2, 0.5), take(3, 1), take(4, 0.25))
    assert order == [1, 2, 3, 4]
    assert clock.monotonic_ns() / 1e9 == pytest.approx(2.75)


async def test_limiter_separates_reads_and_writes_and_reports_throttling() -> None:
    clock = SimulatedClock(START)
    sleep = AdvancingSleep(clock)
    events: list[tuple[str, float]] = []
    limiter = ClientRateLimiter(
        Decimal(20), Decimal(10), clock, sleep, on_throttle=lambda kind, s: events.append((kind, s))
    )
    for _ in range(10):
        await limiter.write()
    for _ in range(20):
        await limiter.read()
    assert events == []
    await limiter.read()
    await limiter.write(2)  # the read's wait (0.05 s) refilled 0.5 write tokens
    assert events == [("read", pytest.approx(0.05)), ("write", pytest.approx(0.15))]
    assert limiter.throttled == {"read": 1, "write": 1}
