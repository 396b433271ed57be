"""Client-side rate limiting (FR-603): token buckets that charge what the venue charges, queue excess requests
(never drop them), send cancels first, and back off after a 429.

:class:`TokenBucket` refills continuously at ``rate_per_s`` tokens up to ``capacity``, measured on the injected
clock's monotonic time. :meth:`TokenBucket.acquire` takes the tokens at once when they are there and nobody is
waiting; otherwise the request joins a queue ordered by **priority, then arrival** and waits (through the
injected ``sleep``) until it is at the head and its tokens have refilled. A request is never dropped. Priorities
(:class:`Priority`): cancels and decreases (they reduce risk) go ahead of amends, which go ahead of creates;
strict priority can delay creates while cancels keep coming, which is the point during a kill switch.

The venue's bucket starts refilling when our first request of a burst *arrives*, later than when we took its
tokens; a cold connection can make that tens of milliseconds, enough for the 11th create of a Basic burst to
be refused. So a request that takes tokens from a **full** bucket freezes refilling until its answer is back
(:meth:`ClientRateLimiter.metered`): our refill then starts no earlier than the venue's, and a client that never
sends faster than its own bucket allows can never be refused by an identical venue bucket.

:meth:`TokenBucket.penalise` (after a venue 429) empties the bucket and holds refilling for a while: every
queued and later request backs off together, instead of each retrying into the wall.

:class:`ClientRateLimiter` holds a read and a write bucket sized from a Kalshi usage tier
(:data:`~mm.adapters.kalshi.costs.TIERS`: Basic refills 200 read / 100 write tokens per second) and charges each
request :func:`~mm.adapters.kalshi.costs.request_cost` (create 10, V2 cancel 2, batches per order...). The refill
rate is scaled by ``headroom`` (default 0.9) because the venue's bucket is measured at *arrival*: network jitter
can bunch requests that left evenly. Capacities stay exact so a full 10-create batch still fits on Basic.

Pressure is reported through ``on_pressure(kind, event, detail)`` and the standard logger:
``approaching`` when a bucket falls below 20% of capacity (once, until it is back above 50%), ``exceeded`` when a
request has to queue (once per episode, until a request passes without waiting), ``rejected`` for a venue 429.
Every wait is also reported through ``on_throttle(kind, seconds)`` and counted in :attr:`ClientRateLimiter.throttled`.
Every charge is reported to :attr:`ClientRateLimiter.on_charge` ``(kind, tokens, seconds waited)`` when set (the
adapter's rate-limit metrics).
"""

from __future__ import annotations

import asyncio
import enum
import heapq
import itertools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal

from mm.adapters.kalshi.costs import DEFAULT_COST, BucketKind, Tier, get_tier, request_cost
from mm.clock import Clock

__all__ = ["ClientRateLimiter", "PressureHook", "Priority", "Sleep", "ThrottleHook", "TokenBucket", "priority_of"]

_logger = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
ThrottleHook = Callable[[str, float], None]
PressureHook = Callable[[str, str, str], None]

APPROACHING_FRACTION = 0.2
"""Below this share of capacity a bucket is "approaching" its limit."""
RECOVERED_FRACTION = 0.5
"""Above this share the approaching warning re-arms."""
DEFAULT_PENALTY_S = 1.0
"""Kalshi's 429 carries no Retry-After: hold refilling this long (a full Basic write bucket's refill time)."""


class Priority(enum.IntEnum):
    """Queue order within one bucket: lower goes first."""

    CANCEL = 0
    """Cancels and decreases: they reduce exposure."""
    AMEND = 1
    CREATE = 2
    READ = 3


def priority_of(method: str, path: str) -> Priority:
    """The queue priority of a Kalshi request (cancels and decreases first, creates last)."""
    verb = method.upper()
    bare = path.split("?", 1)[0].rstrip("/")
    if verb == "GET":
        return Priority.READ
    if verb == "DELETE" or bare.endswith("/decrease"):
        return Priority.CANCEL
    if bare.endswith("/amend"):
        return Priority.AMEND
    return Priority.CREATE


@dataclass(order=True, slots=True)
class _Waiter:
    priority: int
    seq: int
    tokens: float = field(compare=False)
    granted: asyncio.Future[bool] = field(compare=False)
    """Resolved with whether the grant froze the bucket (taken while full)."""


@dataclass(frozen=True, slots=True)
class Grant:
    """Tokens taken: how long the request waited, and whether it froze refilling until :meth:`TokenBucket.release`."""

    waited_s: float
    froze: bool


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
        self._hold_until_ns = 0
        self._frozen = 0
        self._queue: list[_Waiter] = []
        self._freezes: dict[int, bool] = {}
        self._seq = itertools.count()
        self._dispatcher: asyncio.Task[None] | None = None
        self.waits = 0
        """How many acquisitions had to wait."""
        self.waited_s = 0.0
        """Total seconds waited."""
        self.penalties = 0

    def _refill(self) -> None:
        now = self._clock.monotonic_ns()
        start = max(self._last_ns, self._hold_until_ns)
        if self._frozen == 0 and now > start:
            self._tokens = min(self.capacity, self._tokens + (now - start) / 1e9 * self.rate_per_s)
        self._last_ns = max(self._last_ns, now)

    @property
    def available(self) -> float:
        """Tokens available now."""
        self._refill()
        return self._tokens

    @property
    def queued(self) -> int:
        """Requests waiting for tokens."""
        return len(self._queue)

    def penalise(self, seconds: float = DEFAULT_PENALTY_S) -> None:
        """The venue refused a request (429): empty the bucket and hold refilling for ``seconds``."""
        self._refill()
        self._tokens = 0.0
        self._hold_until_ns = max(self._hold_until_ns, self._clock.monotonic_ns() + int(seconds * 1e9))
        self.penalties += 1

    async def acquire(self, tokens: float = 1, priority: int = Priority.CREATE) -> float:
        """Take ``tokens``, waiting in (priority, arrival) order until they have refilled; returns seconds waited.

        Never freezes: use :meth:`take` / :meth:`release` around a request to the venue."""
        grant = await self.take(tokens, priority, freeze=False)
        return grant.waited_s

    def release(self, grant: Grant) -> None:
        """The request of ``grant`` has its answer: if it froze refilling, refilling resumes from now."""
        if grant.froze:
            self._refill()
            self._frozen -= 1
            self._last_ns = max(self._last_ns, self._clock.monotonic_ns())

    def _take_now(self, need: float, freeze: bool) -> bool:
        froze = freeze and self._tokens >= self.capacity - 1e-9
        if froze:
            self._frozen += 1
        self._tokens = max(0.0, self._tokens - need)
        return froze

    async def take(self, tokens: float = 1, priority: int = Priority.CREATE, *, freeze: bool = True) -> Grant:
        """:meth:`acquire`, returning a :class:`Grant` to :meth:`release` when the request is answered."""
        need = float(tokens)
        if need <= 0:
            raise ValueError("tokens must be positive")
        if need > self.capacity:
            raise ValueError(f"cannot take {need} tokens from a bucket of capacity {self.capacity}")
        self._refill()
        if not self._queue and self._tokens >= need - 1e-9:
            return Grant(0.0, self._take_now(need, freeze))
        started = self._clock.monotonic_ns()
        waiter = _Waiter(int(priority), next(self._seq), need, asyncio.get_running_loop().create_future())
        waiter_freezes = freeze
        heapq.heappush(self._queue, waiter)
        self.waits += 1
        if self._on_wait is not None:
            self._on_wait(max(0.0, (need - self._tokens) / self.rate_per_s))
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = asyncio.get_running_loop().create_task(self._dispatch())
        self._freezes[waiter.seq] = waiter_freezes
        try:
            froze = await waiter.granted
        except asyncio.CancelledError:
            if waiter in self._queue:
                self._queue.remove(waiter)
                heapq.heapify(self._queue)
            if waiter.granted.done() and not waiter.granted.cancelled() and waiter.granted.result():
                self._frozen -= 1  # granted and frozen, but its caller is gone: nothing will release it
            raise
        finally:
            self._freezes.pop(waiter.seq, None)
        waited = max(0.0, (self._clock.monotonic_ns() - started) / 1e9)
        self.waited_s += waited
        return Grant(waited, froze)

    async def _dispatch(self) -> None:
        """Serve the queue head whenever its tokens are there; sleep exactly until they will be."""
        while self._queue:
            self._refill()
            head = self._queue[0]
            if head.granted.done():  # cancelled by its caller
                heapq.heappop(self._queue)
                continue
            if self._tokens >= head.tokens - 1e-9:
                heapq.heappop(self._queue)
                head.granted.set_result(self._take_now(head.tokens, self._freezes.get(head.seq, False)))
                continue
            held_s = max(0, self._hold_until_ns - self._clock.monotonic_ns()) / 1e9
            await self._sleep(held_s + (head.tokens - self._tokens) / self.rate_per_s)


class ClientRateLimiter:
    """Kalshi's read and write buckets for one account at a usage tier (FR-603). See the module docstring.

    ``reads_per_second`` / ``writes_per_second`` (requests per second at the default cost of 10 tokens, as the
    Exchange spec states them) override the tier's refill rates; capacities come from the tier.
    """

    def __init__(
        self,
        clock: Clock,
        sleep: Sleep = asyncio.sleep,
        *,
        tier: str | Tier = "basic",
        reads_per_second: Decimal | float | None = None,
        writes_per_second: Decimal | float | None = None,
        headroom: float = 0.9,
        on_throttle: ThrottleHook | None = None,
        on_pressure: PressureHook | None = None,
        penalty_s: float = DEFAULT_PENALTY_S,
    ) -> None:
        if not 0 < headroom <= 1:
            raise ValueError("headroom must be in (0, 1]")
        self.tier = tier if isinstance(tier, Tier) else get_tier(tier)
        read_rate = float(reads_per_second) * DEFAULT_COST if reads_per_second is not None else self.tier.read_rate
        write_rate = float(writes_per_second) * DEFAULT_COST if writes_per_second is not None else self.tier.write_rate
        self._on_throttle = on_throttle
        self._on_pressure = on_pressure
        self.penalty_s = penalty_s
        self.throttled: dict[str, int] = {"read": 0, "write": 0}
        self.on_charge: Callable[[str, float, float], None] | None = None
        """Called after every charge with the bucket kind, the tokens taken and the seconds waited for them."""
        self.rejected: dict[str, int] = {"read": 0, "write": 0}
        self._approaching: dict[str, bool] = {"read": False, "write": False}
        self._exceeded: dict[str, bool] = {"read": False, "write": False}
        self.buckets: dict[BucketKind, TokenBucket] = {
            BucketKind.READ: TokenBucket(
                read_rate * headroom,
                max(self.tier.read_capacity, DEFAULT_COST),
                clock=clock,
                sleep=sleep,
                on_wait=lambda s: self._throttle("read", s),
            ),
            BucketKind.WRITE: TokenBucket(
                write_rate * headroom,
                max(self.tier.write_capacity, DEFAULT_COST),
                clock=clock,
                sleep=sleep,
                on_wait=lambda s: self._throttle("write", s),
            ),
        }

    @property
    def reads(self) -> TokenBucket:
        return self.buckets[BucketKind.READ]

    @property
    def writes(self) -> TokenBucket:
        return self.buckets[BucketKind.WRITE]

    def _report(self, kind: str, event: str, detail: str) -> None:
        _logger.warning("rate limit %s on the %s bucket: %s", event, kind, detail)
        if self._on_pressure is not None:
            self._on_pressure(kind, event, detail)

    def _throttle(self, kind: str, wait_s: float) -> None:
        self.throttled[kind] += 1
        if not self._exceeded[kind]:
            self._exceeded[kind] = True
            self._report(kind, "exceeded", f"requests queue (first wait {wait_s:.3f} s)")
        if self._on_throttle is not None:
            self._on_throttle(kind, wait_s)

    def _after_take(self, kind: BucketKind, waited: float, tokens: float) -> None:
        name = kind.value
        bucket = self.buckets[kind]
        if self.on_charge is not None:
            self.on_charge(name, tokens, waited)
        if waited == 0.0 and bucket.queued == 0:
            self._exceeded[name] = False
        level = bucket.available / bucket.capacity
        if level < APPROACHING_FRACTION and not self._approaching[name]:
            self._approaching[name] = True
            self._report(name, "approaching", f"{bucket.available:.0f} of {bucket.capacity:.0f} tokens left")
        elif level > RECOVERED_FRACTION:
            self._approaching[name] = False

    async def acquire(self, method: str, path: str, *, batch_creates: int = 0, batch_cancels: int = 0) -> float:
        """Charge one request by :func:`request_cost` (waiting as needed); returns the seconds waited.

        Use :meth:`metered` around the actual request to the venue (it also handles the full-bucket freeze)."""
        kind, tokens = request_cost(method, path, batch_creates=batch_creates, batch_cancels=batch_cancels)
        bucket = self.buckets[kind]
        charged = min(float(tokens), bucket.capacity)
        waited = await bucket.acquire(charged, priority_of(method, path))
        self._after_take(kind, waited, charged)
        return waited

    @asynccontextmanager
    async def metered(
        self, method: str, path: str, *, batch_creates: int = 0, batch_cancels: int = 0
    ) -> AsyncIterator[float]:
        """Charge the request, yield the seconds waited, and release the bucket when the block (the request and
        its answer) is done, whatever happened."""
        kind, tokens = request_cost(method, path, batch_creates=batch_creates, batch_cancels=batch_cancels)
        bucket = self.buckets[kind]
        charged = min(float(tokens), bucket.capacity)
        grant = await bucket.take(charged, priority_of(method, path))
        self._after_take(kind, grant.waited_s, charged)
        try:
            yield grant.waited_s
        finally:
            bucket.release(grant)

    def rate_limited(self, method: str, path: str) -> None:
        """The venue answered 429 to this request: back the whole bucket off (see :meth:`TokenBucket.penalise`)."""
        kind, _ = request_cost(method, path)
        self.rejected[kind.value] += 1
        self.buckets[kind].penalise(self.penalty_s)
        self._report(kind.value, "rejected", f"HTTP 429 on {method} {path}; backing off {self.penalty_s:.1f} s")
