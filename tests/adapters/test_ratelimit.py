"""Token buckets (FR-603) on a simulated clock: bursts pass, excess waits exactly the refill time, FIFO."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from mm.adapters.ratelimit import ClientRateLimiter, Priority, TokenBucket, priority_of
from mm.clock import SimulatedClock

START = 1_786_000_000_000_000
ORDERS = "/trade-api/v2/portfolio/events/orders"


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


async def test_limiter_charges_kalshi_costs_per_tier_and_reports_throttling() -> None:
    clock = SimulatedClock(START)
    sleep = AdvancingSleep(clock)
    events: list[tuple[str, float]] = []
    limiter = ClientRateLimiter(
        clock, sleep, tier="basic", headroom=1.0, on_throttle=lambda kind, s: events.append((kind, s))
    )
    # Basic: write 100 tokens/s, capacity 100; read 200/s, capacity 400. A create costs 10, a V2 cancel 2.
    assert (limiter.writes.capacity, limiter.reads.capacity) == (100, 400)
    for _ in range(10):
        assert await limiter.acquire("POST", ORDERS) == 0.0
    for _ in range(40):
        assert await limiter.acquire("GET", "/trade-api/v2/portfolio/balance") == 0.0
    assert events == []
    await limiter.acquire("GET", "/trade-api/v2/markets")  # 10 read tokens at 200/s
    await limiter.acquire("DELETE", f"{ORDERS}/abc")  # 2 write tokens; the read's 0.05 s refilled 5
    assert events == [("read", pytest.approx(0.05))]
    await limiter.acquire("POST", f"{ORDERS}/batched", batch_creates=10)  # 100 tokens: must wait for a full bucket
    assert events[-1] == ("write", pytest.approx(0.97))
    assert limiter.throttled == {"read": 1, "write": 1}


async def test_spec_rates_override_the_tier_and_headroom_slows_refill() -> None:
    clock = SimulatedClock(START)
    limiter = ClientRateLimiter(clock, tier="basic", writes_per_second=Decimal(5), headroom=0.9)
    assert limiter.writes.rate_per_s == pytest.approx(45.0)  # 5 creates/s × 10 tokens × 0.9
    assert limiter.reads.rate_per_s == pytest.approx(180.0)  # tier 200 × 0.9
    with pytest.raises(ValueError):
        ClientRateLimiter(clock, headroom=0)


def test_priority_of_kalshi_requests() -> None:
    assert priority_of("DELETE", f"{ORDERS}/x") is Priority.CANCEL
    assert priority_of("DELETE", f"{ORDERS}/batched") is Priority.CANCEL
    assert priority_of("POST", f"{ORDERS}/x/decrease") is Priority.CANCEL
    assert priority_of("POST", f"{ORDERS}/x/amend") is Priority.AMEND
    assert priority_of("POST", ORDERS) is Priority.CREATE
    assert priority_of("GET", "/trade-api/v2/markets") is Priority.READ


async def test_queued_cancels_go_ahead_of_queued_creates() -> None:
    clock = SimulatedClock(START)
    sleep = AdvancingSleep(clock)
    limiter = ClientRateLimiter(clock, sleep, tier="basic", headroom=1.0)
    for _ in range(10):
        await limiter.acquire("POST", ORDERS)  # drain the write bucket
    served: list[str] = []

    async def send(name: str, method: str, path: str) -> None:
        await limiter.acquire(method, path)
        served.append(name)

    await asyncio.gather(
        send("create-1", "POST", ORDERS),
        send("create-2", "POST", ORDERS),
        send("cancel-1", "DELETE", f"{ORDERS}/a"),
        send("amend-1", "POST", f"{ORDERS}/b/amend"),
        send("cancel-2", "DELETE", f"{ORDERS}/c"),
    )
    assert served == ["cancel-1", "cancel-2", "amend-1", "create-1", "create-2"]
    assert limiter.writes.queued == 0


async def test_a_429_penalises_the_bucket_and_everyone_backs_off() -> None:
    clock = SimulatedClock(START)
    sleep = AdvancingSleep(clock)
    pressure: list[tuple[str, str]] = []
    limiter = ClientRateLimiter(
        clock, sleep, tier="basic", headroom=1.0, penalty_s=2.0, on_pressure=lambda k, e, _d: pressure.append((k, e))
    )
    await limiter.acquire("POST", ORDERS)
    limiter.rate_limited("POST", ORDERS)
    assert limiter.writes.available == 0.0 and limiter.rejected == {"read": 0, "write": 1}
    start = clock.monotonic_ns()
    await limiter.acquire("POST", ORDERS)  # 2 s held, then 0.1 s to refill 10 tokens
    assert (clock.monotonic_ns() - start) / 1e9 == pytest.approx(2.1)
    assert ("write", "rejected") in pressure and ("write", "exceeded") in pressure
    assert limiter.reads.available == limiter.reads.capacity  # the read bucket is untouched


async def test_approaching_and_exceeded_are_reported_once_per_episode() -> None:
    clock = SimulatedClock(START)
    sleep = AdvancingSleep(clock)
    pressure: list[tuple[str, str]] = []
    limiter = ClientRateLimiter(
        clock, sleep, tier="basic", headroom=1.0, on_pressure=lambda k, e, _d: pressure.append((k, e))
    )
    for _ in range(9):
        await limiter.acquire("POST", ORDERS)  # 10 tokens left of 100: below 20%
    assert pressure == [("write", "approaching")]
    for _ in range(5):
        await limiter.acquire("POST", ORDERS)  # these queue
    assert pressure == [("write", "approaching"), ("write", "exceeded")]
    clock.advance(2)  # refilled: the next request passes at once and re-arms both warnings
    await limiter.acquire("POST", ORDERS)
    for _ in range(12):
        await limiter.acquire("POST", ORDERS)
    assert pressure.count(("write", "approaching")) == 2 and pressure.count(("write", "exceeded")) == 2


async def test_a_cancelled_waiter_leaves_the_queue() -> None:
    clock = SimulatedClock(START)
    bucket = TokenBucket(1, 1, clock=clock, sleep=AdvancingSleep(clock))
    await bucket.acquire()
    blocked = asyncio.ensure_future(bucket.acquire())
    await asyncio.sleep(0)
    assert bucket.queued == 1
    blocked.cancel()
    with pytest.raises(asyncio.CancelledError):
        await blocked
    assert bucket.queued == 0


async def test_a_request_taken_from_a_full_bucket_freezes_refill_until_answered() -> None:
    clock = SimulatedClock(START)
    limiter = ClientRateLimiter(clock, AdvancingSleep(clock), tier="basic", headroom=1.0)
    async with limiter.metered("POST", ORDERS):
        clock.advance_us(50_000)  # the venue may only see the request now: its bucket refills from here
        assert limiter.writes.available == 90.0
    clock.advance_us(50_000)
    assert limiter.writes.available == pytest.approx(95.0)  # 50 ms of refill after the answer, not 100 ms
    async with limiter.metered("POST", ORDERS):  # not full: no freeze
        clock.advance_us(50_000)
        assert limiter.writes.available == pytest.approx(90.0)
