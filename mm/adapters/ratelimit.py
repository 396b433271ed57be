"""Client-side rate limiting (FR-603): token buckets that queue excess requests, never drop them.

:class:`TokenBucket` refills continuously at ``rate_per_s`` up to ``capacity`` tokens, measured on the injected
clock's monotonic time. :meth:`TokenBucket.acquire` takes tokens at once when they are there and otherwise
*waits* (through the injected ``sleep``) exactly until enough have refilled. Waiters are served strictly in
arrival order (FIFO): one lock is held by the waiter at the head of the queue while it sleeps, so a later small
request cannot overtake an earlier large one.

:class:`ClientRateLimiter` holds one bucket for reads and one for writes (Kalshi meters them separately,
kalshi-api.md §9) and reports every wait through ``on_throttle(kind, wait_s)`` — the hook for FR-603's
"log rate limit approaching/exceeded" — and counts them in :attr:`ClientRateLimiter.throttled`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from decimal import Decimal

from mm.clock import Clock

__all__ = ["ClientRateLimiter", "Sleep", "ThrottleHook", "TokenBucket"]

Sleep = Callable[[float], Awaitable[None]]
ThrottleHook = Callable[[str, float], None]


class TokenBucket:
    """``capacity`` tokens (default: one second's worth), refilled at ``rate_per_s``; starts full."""

    def __init__(
        self,
        rate_per_s: Decimal | float,
        capacity: Decimal | float | None = None,
        *,
        clock: Clock,
        sleep: Sleep = asyncio.sleep,
        on_wait: Callable[[float], None] | None = None,
    ) -> None:
        rate = float(rate_per_s)
        cap = float(capacity) if capacity is not None else rate
        if rate <= 0:
            raise ValueError("rate_per_s must be positive")
        if cap <= 0:
            raise ValueError("capacity must be positive")
        self.rate_per_s = rate
        self.capacity = cap
        self._clock = clock
        self._sleep = sleep
        self._on_wait = on_wait
        self._tokens = cap
        self._last_ns = clock.monotonic_ns()
        self._lock = asyncio.Lock()
        self.waits = 0
        """How many acquisitions had to wait."""
        self.waited_s = 0.0
        """Total seconds waited."""

    def _refill(self) -> None:
        now = self._clock.monotonic_ns()
        elapsed = max(0, now - self._last_ns) / 1e9
        self._last_ns = now
        self._tokens = min(self.capacity, self._tokens + elapsed * self.rate_per_s)

    @property
    def available(self) -> float:
        """Tokens available now."""
        self._refill()
        return self._tokens

    async def acquire(self, tokens: float = 1) -> float:
        """Take ``tokens``, waiting (in FIFO order) until they have refilled; returns the seconds waited."""
        need = float(tokens)
        if need <= 0:
            raise ValueError("tokens must be positive")
        if need > self.capacity:
            raise ValueError(f"cannot take {need} tokens from a bucket of capacity {self.capacity}")
        waited = 0.0
        async with self._lock:
            self._refill()
            while self._tokens < need - 1e-12:
                wait_s = (need - self._tokens) / self.rate_per_s
                if waited == 0.0:
                    self.waits += 1
                    if self._on_wait is not None:
                        self._on_wait(wait_s)
                waited += wait_s
                await self._sleep(wait_s)
                self._refill()
            self._tokens = max(0.0, self._tokens - need)
        self.waited_s += waited
        return waited


class ClientRateLimiter:
    """Separate read and write buckets (FR-603); each holds one second of its rate (the venue's burst)."""

    def __init__(
        self,
        reads_per_second: Decimal | float,
        writes_per_second: Decimal | float,
        clock: Clock,
        sleep: Sleep = asyncio.sleep,
        *,
        on_throttle: ThrottleHook | None = None,
        read_capacity: Decimal | float | None = None,
        write_capacity: Decimal | float | None = None,
    ) -> None:
        self._on_throttle = on_throttle
        self.throttled: dict[str, int] = {"read": 0, "write": 0}
        self.reads = TokenBucket(
            reads_per_second, read_capacity, clock=clock, sleep=sleep, on_wait=lambda s: self._throttle("read", s)
        )
        self.writes = TokenBucket(
            writes_per_second, write_capacity, clock=clock, sleep=sleep, on_wait=lambda s: self._throttle("write", s)
        )

    def _throttle(self, kind: str, wait_s: float) -> None:
        self.throttled[kind] += 1
        if self._on_throttle is not None:
            self._on_throttle(kind, wait_s)

    async def read(self, tokens: float = 1) -> float:
        return await self.reads.acquire(tokens)

    async def write(self, tokens: float = 1) -> float:
        return await self.writes.acquire(tokens)
