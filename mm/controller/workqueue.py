"""The controller's work queue (design.md §4), after Kubernetes client-go's rate-limited queue.

Keys (``"Market/btc-5pm"``) are what events enqueue; a reconcile reads the current state, so coalescing is
safe and wanted:

* **dedupe**: a key already waiting is not queued twice;
* **one worker per key**: a key being processed is not handed out again; if it is added meanwhile it is
  marked *dirty* and queued again when :meth:`done` is called, so no change is lost and no two reconciles of
  one key ever overlap;
* **per-key exponential backoff**: :meth:`add_rate_limited` delays the key ``base · 2^failures`` (capped);
  :meth:`forget` resets it after a success;
* **delayed adds**: :meth:`add_after` (timers: periodic resync, ``TransientError(delay)``);
* **global token bucket**: :meth:`get` takes one token per reconcile handed out, so a storm of events
  cannot turn into a storm of venue requests.

Time and sleeping are injected (tests drive a simulated clock).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable

from mm.adapters.ratelimit import TokenBucket
from mm.clock import Clock

__all__ = ["WorkQueue"]

Sleep = Callable[[float], Awaitable[None]]


class WorkQueue:
    """Keys to reconcile. ``rate_per_s``/``burst``: the global token bucket (reconciles per second)."""

    def __init__(
        self,
        clock: Clock,
        *,
        base_delay_s: float = 0.005,
        max_delay_s: float = 30.0,
        rate_per_s: float = 200.0,
        burst: float = 400.0,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._base = base_delay_s
        self._max = max_delay_s
        self._queue: deque[str] = deque()
        self._queued: set[str] = set()
        self._processing: set[str] = set()
        self._dirty: set[str] = set()
        self._failures: dict[str, int] = {}
        self._timers: dict[str, tuple[asyncio.TimerHandle, int]] = {}
        """key -> (timer, due on the clock's monotonic ns)."""
        self._available = asyncio.Condition()
        self._bucket = TokenBucket(rate_per_s, burst, clock=clock, sleep=sleep)
        self._closed = False
        self.adds = 0
        """Keys added (before coalescing): for metrics."""

    # ------------------------------------------------------------------ adding

    def add(self, key: str) -> None:
        """Queue ``key`` now (coalesced with a waiting or running one)."""
        if self._closed:
            return
        self.adds += 1
        if key in self._processing:
            self._dirty.add(key)
            return
        if key in self._queued:
            return
        self._queued.add(key)
        self._queue.append(key)
        self._wake()

    def add_after(self, key: str, delay_s: float) -> None:
        """Queue ``key`` after ``delay_s`` seconds (an earlier pending timer for the key wins)."""
        if self._closed:
            return
        if delay_s <= 0:
            self.add(key)
            return
        due_ns = self._clock.monotonic_ns() + int(delay_s * 1e9)
        existing = self._timers.get(key)
        if existing is not None:
            if existing[1] <= due_ns:
                return
            existing[0].cancel()
        handle = asyncio.get_running_loop().call_later(delay_s, self._fire, key)
        self._timers[key] = (handle, due_ns)

    def add_rate_limited(self, key: str) -> float:
        """Queue ``key`` after its exponential backoff; returns the delay chosen (seconds)."""
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        delay: float = min(self._max, self._base * float(2 ** min(failures, 40)))
        self.add_after(key, delay)
        return delay

    def forget(self, key: str) -> None:
        """The key reconciled cleanly: reset its backoff."""
        self._failures.pop(key, None)

    def failures(self, key: str) -> int:
        return self._failures.get(key, 0)

    def _fire(self, key: str) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def _wake(self) -> None:
        async def notify() -> None:
            async with self._available:
                self._available.notify()

        asyncio.get_running_loop().create_task(notify())

    # ------------------------------------------------------------------ taking

    async def get(self) -> str | None:
        """The next key to reconcile (marked processing), or None once the queue is shut down."""
        while True:
            async with self._available:
                await self._available.wait_for(lambda: bool(self._queue) or self._closed)
                if self._closed:
                    return None
                key = self._queue.popleft()
                self._queued.discard(key)
                self._processing.add(key)
            await self._bucket.acquire(1)
            return key

    def done(self, key: str) -> None:
        """The reconcile of ``key`` finished; if it was added meanwhile, queue it again."""
        self._processing.discard(key)
        if key in self._dirty:
            self._dirty.discard(key)
            self.add(key)

    # ------------------------------------------------------------------ state

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def processing(self) -> frozenset[str]:
        return frozenset(self._processing)

    def pending_timers(self) -> int:
        return len(self._timers)

    async def shutdown(self) -> None:
        """Stop handing out keys (workers blocked in :meth:`get` receive None) and drop the timers."""
        self._closed = True
        for timer, _ in self._timers.values():
            timer.cancel()
        self._timers.clear()
        async with self._available:
            self._available.notify_all()
