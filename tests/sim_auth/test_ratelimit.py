"""Tests of mm.sim.ratelimit: Kalshi's token buckets, driven by a SimulatedClock (no sleeps)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mm.clock import SimulatedClock
from mm.sim.ratelimit import (
    TIERS,
    TOO_MANY_REQUESTS_BODY,
    BucketKind,
    RateLimiter,
    UnknownTierError,
    get_tier,
    request_cost,
)

T0_US = 1_768_660_200_000_000
READ, WRITE = BucketKind.READ, BucketKind.WRITE


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(T0_US, monotonic_start_ns=123_456)


def _drain(limiter: RateLimiter, user: str, kind: BucketKind, tokens: int) -> int:
    """Acquire ``tokens`` at a time until refused (time standing still); return how many succeeded."""
    n = 0
    while limiter.try_acquire(user, kind, tokens):
        n += 1
        assert n < 100_000
    return n


# --- costs ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "expected"),
    [
        # reads: 10 tokens
        ("GET", "/trade-api/v2/markets", {}, (READ, 10)),
        ("GET", "/trade-api/v2/markets/KX-1/orderbook?depth=5", {}, (READ, 10)),
        ("GET", "/trade-api/v2/portfolio/orders", {}, (READ, 10)),
        ("GET", "/trade-api/v2/portfolio/orders/abc", {}, (READ, 10)),
        ("GET", "/trade-api/v2/portfolio/events/orders/abc", {}, (READ, 10)),
        ("GET", "/trade-api/v2/portfolio/order_groups", {}, (READ, 10)),
        ("GET", "/trade-api/v2/portfolio/balance", {}, (READ, 10)),
        ("GET", "/trade-api/v2/account/limits", {}, (READ, 10)),
        ("POST", "/trade-api/v2/account/api_usage_level/upgrade", {}, (READ, 10)),
        # V2 writes
        ("POST", "/trade-api/v2/portfolio/events/orders", {}, (WRITE, 10)),
        ("DELETE", "/trade-api/v2/portfolio/events/orders/abc?subaccount=0", {}, (WRITE, 2)),
        ("POST", "/trade-api/v2/portfolio/events/orders/abc/amend", {}, (WRITE, 10)),
        ("POST", "/trade-api/v2/portfolio/events/orders/abc/decrease", {}, (WRITE, 10)),
        ("POST", "/trade-api/v2/portfolio/events/orders/batched", {"batch_creates": 7}, (WRITE, 70)),
        ("DELETE", "/trade-api/v2/portfolio/events/orders/batched", {"batch_cancels": 7}, (WRITE, 14)),
        ("POST", "/portfolio/events/orders", {}, (WRITE, 10)),  # prefix optional
        ("delete", "/portfolio/events/orders/abc", {}, (WRITE, 2)),  # method case-insensitive
        # legacy writes: 10x
        ("POST", "/trade-api/v2/portfolio/orders", {}, (WRITE, 100)),
        ("DELETE", "/trade-api/v2/portfolio/orders/abc", {}, (WRITE, 20)),
        ("POST", "/trade-api/v2/portfolio/orders/abc/amend", {}, (WRITE, 100)),
        ("POST", "/trade-api/v2/portfolio/orders/abc/decrease", {}, (WRITE, 100)),
        ("POST", "/trade-api/v2/portfolio/orders/batched", {"batch_creates": 3}, (WRITE, 300)),
        ("DELETE", "/trade-api/v2/portfolio/orders/batched", {"batch_cancels": 3}, (WRITE, 60)),
        # order groups and RFQ quotes are writes
        ("POST", "/trade-api/v2/portfolio/order_groups/create", {}, (WRITE, 10)),
        ("PUT", "/trade-api/v2/portfolio/order_groups/g1/trigger", {}, (WRITE, 10)),
        ("DELETE", "/trade-api/v2/portfolio/order_groups/g1", {}, (WRITE, 10)),
        ("POST", "/trade-api/v2/communications/quotes", {}, (WRITE, 10)),
        ("PUT", "/trade-api/v2/communications/quotes/q1/accept", {}, (WRITE, 10)),
    ],
)
def test_cost_table(method: str, path: str, kwargs: dict[str, int], expected: tuple[BucketKind, int]) -> None:
    assert request_cost(method, path, **kwargs) == expected


def test_empty_batch_costs_one_order_and_negative_sizes_are_refused() -> None:
    assert request_cost("POST", "/portfolio/events/orders/batched") == (WRITE, 10)
    assert request_cost("DELETE", "/portfolio/events/orders/batched") == (WRITE, 2)
    with pytest.raises(ValueError):
        request_cost("POST", "/portfolio/events/orders/batched", batch_creates=-1)


# --- tiers ---------------------------------------------------------------------------------------------------


def test_tier_table() -> None:
    table = {n: (t.read_rate, t.read_capacity, t.write_rate, t.write_capacity) for n, t in TIERS.items()}
    assert table == {
        "basic": (200, 400, 100, 100),
        "advanced": (300, 600, 300, 600),
        "expert": (600, 600, 600, 1200),
        "premier": (1000, 1000, 1000, 2000),
        "paragon": (2000, 2000, 2000, 4000),
        "prime": (4000, 4000, 4000, 8000),
        "prestige": (10000, 10000, 8000, 16000),
    }
    assert get_tier(" Basic ") is TIERS["basic"]
    with pytest.raises(UnknownTierError):
        get_tier("platinum")


@pytest.mark.parametrize("tier", sorted(TIERS))
def test_each_tier_bursts_to_capacity(clock: SimulatedClock, tier: str) -> None:
    limiter = RateLimiter({"u": tier}, clock)
    t = TIERS[tier]
    assert _drain(limiter, "u", READ, 10) == t.read_capacity // 10
    assert _drain(limiter, "u", WRITE, 10) == t.write_capacity // 10
    clock.advance(1)  # one second refills one second of budget
    assert _drain(limiter, "u", READ, 10) == t.read_rate // 10
    assert _drain(limiter, "u", WRITE, 10) == t.write_rate // 10


def test_basic_documented_maxima(clock: SimulatedClock) -> None:
    """kalshi-api.md §9: Basic ~ 20 reads/s or 10 creates/s; a batch of at most 10 creates or 50 cancels."""
    limiter = RateLimiter({}, clock)  # everyone defaults to basic
    assert limiter.acquire_request("u", "POST", "/portfolio/events/orders/batched", batch_creates=11) is False
    assert limiter.acquire_request("u", "POST", "/portfolio/events/orders/batched", batch_creates=10) is True
    clock.advance(1)
    assert limiter.acquire_request("u", "DELETE", "/portfolio/events/orders/batched", batch_cancels=51) is False
    assert limiter.acquire_request("u", "DELETE", "/portfolio/events/orders/batched", batch_cancels=50) is True
    assert _drain(limiter, "v", READ, 10) == 40  # 2 s of burst
    clock.advance(1)
    assert _drain(limiter, "v", READ, 10) == 20


# --- buckets -------------------------------------------------------------------------------------------------


def test_burst_then_refuse_then_refill(clock: SimulatedClock) -> None:
    limiter = RateLimiter(lambda _user: "basic", clock)
    for _ in range(10):
        assert limiter.try_acquire("u", WRITE, 10)
    assert not limiter.try_acquire("u", WRITE, 10)
    assert limiter.available("u", WRITE) == 0

    clock.advance(Decimal("0.099"))  # 9.9 tokens: not yet enough
    assert not limiter.try_acquire("u", WRITE, 10)
    clock.advance(Decimal("0.001"))  # exactly 10
    assert limiter.try_acquire("u", WRITE, 10)
    assert not limiter.try_acquire("u", WRITE, 1)

    clock.advance(60)  # a long idle period refills only to capacity
    assert limiter.available("u", WRITE) == 100
    assert _drain(limiter, "u", WRITE, 10) == 10


def test_refill_is_exact_at_sub_token_steps(clock: SimulatedClock) -> None:
    limiter = RateLimiter({"u": "basic"}, clock)
    assert _drain(limiter, "u", WRITE, 1) == 100
    for _ in range(10):  # 10 steps of 1 ms at 100 tokens/s add exactly 1 token
        clock.advance_us(1_000)
    assert limiter.try_acquire("u", WRITE, 1)
    assert not limiter.try_acquire("u", WRITE, 1)


def test_a_batch_must_fit_whole_and_a_refusal_costs_nothing(clock: SimulatedClock) -> None:
    limiter = RateLimiter({"u": "basic"}, clock)
    assert limiter.try_acquire("u", WRITE, 60)
    assert not limiter.try_acquire("u", WRITE, 50)  # 40 left: refused whole, not partly taken
    assert limiter.available("u", WRITE) == 40
    assert limiter.try_acquire("u", WRITE, 40)
    assert not limiter.try_acquire("u", WRITE, 101)  # more than capacity never fits
    clock.advance(100)
    assert not limiter.try_acquire("u", WRITE, 101)
    assert limiter.try_acquire("u", WRITE, 0)


def test_read_and_write_buckets_are_independent(clock: SimulatedClock) -> None:
    limiter = RateLimiter({"u": "basic"}, clock)
    assert _drain(limiter, "u", WRITE, 10) == 10
    assert limiter.available("u", READ) == 400
    assert limiter.acquire_request("u", "GET", "/trade-api/v2/portfolio/orders")
    assert not limiter.acquire_request("u", "POST", "/trade-api/v2/portfolio/events/orders")
    assert _drain(limiter, "u", READ, 10) == 39
    assert not limiter.try_acquire("u", "read", 10)  # kinds may be passed as strings


def test_users_are_isolated(clock: SimulatedClock) -> None:
    limiter = RateLimiter({"a": "basic", "b": "basic"}, clock)
    assert _drain(limiter, "a", WRITE, 10) == 10
    assert _drain(limiter, "b", WRITE, 10) == 10
    assert _drain(limiter, "c", WRITE, 10) == 10  # unknown to the mapping: default tier


def test_tier_lookup_by_callable_and_tier_changes(clock: SimulatedClock) -> None:
    tiers = {"u": "advanced"}
    limiter = RateLimiter(tiers.__getitem__, clock)
    assert limiter.available("u", WRITE) == 600
    tiers["u"] = "basic"  # downgrade: the bucket is clamped to the new capacity
    assert limiter.available("u", WRITE) == 100
    assert limiter.limits("u") == {
        "usage_tier": "basic",
        "read": {"refill_rate": 200, "bucket_capacity": 400},
        "write": {"refill_rate": 100, "bucket_capacity": 100},
    }
    tiers["u"] = "gold"
    with pytest.raises(UnknownTierError):
        limiter.try_acquire("u", WRITE, 1)
    with pytest.raises(UnknownTierError):
        RateLimiter({}, clock, default_tier="gold")


def test_disabled_limiter_admits_everything(clock: SimulatedClock) -> None:
    limiter = RateLimiter({}, clock, enabled=False)
    for _ in range(1000):
        assert limiter.try_acquire("u", WRITE, 100)
    limiter.enabled = True
    assert limiter.available("u", WRITE) == 100  # nothing was counted while disabled
    assert _drain(limiter, "u", WRITE, 100) == 1


def test_reset(clock: SimulatedClock) -> None:
    limiter = RateLimiter({}, clock)
    _drain(limiter, "a", WRITE, 10)
    _drain(limiter, "b", WRITE, 10)
    limiter.reset("a")
    assert limiter.available("a", WRITE) == 100 and limiter.available("b", WRITE) == 0
    limiter.reset()
    assert limiter.available("b", WRITE) == 100


def test_negative_tokens_are_refused(clock: SimulatedClock) -> None:
    with pytest.raises(ValueError):
        RateLimiter({}, clock).try_acquire("u", WRITE, -1)


def test_deterministic_under_a_simulated_clock() -> None:
    def run() -> list[bool]:
        clock = SimulatedClock(T0_US)
        limiter = RateLimiter({}, clock)
        out = []
        for i in range(300):
            clock.advance_us(7_919 * (i % 5))
            out.append(limiter.acquire_request("u", "POST", "/trade-api/v2/portfolio/events/orders"))
        return out

    first = run()
    assert first == run()
    assert any(first) and not all(first)  # some requests admitted, some refused


def test_too_many_requests_body() -> None:
    assert TOO_MANY_REQUESTS_BODY == {"error": "too many requests"}
