"""Kalshi's token-bucket rate limits for the simulator (kalshi-api.md §9).

Every user has two buckets, **read** and **write**. Each refills continuously at its tier's per-second budget up
to a capacity; a request costs tokens (:func:`request_cost`) and is admitted only if the whole cost is in the
bucket (:meth:`RateLimiter.try_acquire` is all-or-nothing, so a batch must fit whole or is rejected whole).

Tiers (tokens per second, read/write) and capacities. §9 says "Capacity: 2 s of budget for Basic/Advanced Read and
for Advanced+ Write, 1 s otherwise"; read literally, read buckets hold 2 s on Basic and Advanced and 1 s above,
and write buckets hold 1 s on Basic and 2 s on Advanced and above:

========== ======= ======== ======== =========
tier       read/s  read cap write/s  write cap
========== ======= ======== ======== =========
basic      200     400      100      100
advanced   300     600      300      600
expert     600     600      600      1200
premier    1000    1000     1000     2000
paragon    2000    2000     2000     4000
prime      4000    4000     4000     8000
prestige   10000   10000    8000     16000
========== ======= ======== ======== =========

Costs: 10 tokens by default; V2 cancel 2; V2 batches 10 per created and 2 per cancelled order; legacy writes 10×
(100, cancel 20, and 100 / 20 per order in legacy batches). **Write** = order create/amend/decrease/cancel, order
group changes (any non-GET under ``/portfolio/order_groups``), RFQ quotes and quote accepts (non-GET under
``/communications/quotes``); everything else is **read** (including GETs of orders and order groups).

A rejected request gets HTTP 429 with :data:`TOO_MANY_REQUESTS_BODY` and — like Kalshi — no ``Retry-After`` or
``X-RateLimit-*`` headers, and no penalty: the rejected request consumes nothing.

The tier table and :func:`request_cost` live in :mod:`mm.adapters.kalshi.costs` (re-exported here) so that the
client-side limiter charges exactly what this server charges.

Deterministic: time comes only from the injected :class:`~mm.clock.Clock` (``monotonic_ns``), and token counts are
exact integers (1 token = 10⁹ units, so refilling ``rate`` tokens/s adds exactly ``rate`` units per nanosecond).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from mm.adapters.kalshi.costs import (
    API_PREFIX,
    DEFAULT_COST,
    LEGACY_CANCEL_COST,
    LEGACY_WRITE_COST,
    TIERS,
    V2_CANCEL_COST,
    V2_CREATE_COST,
    BucketKind,
    Tier,
    UnknownTierError,
    get_tier,
    request_cost,
)
from mm.clock import Clock

__all__ = [
    "API_PREFIX",
    "DEFAULT_COST",
    "LEGACY_CANCEL_COST",
    "LEGACY_WRITE_COST",
    "TIERS",
    "TOO_MANY_REQUESTS_BODY",
    "V2_CANCEL_COST",
    "V2_CREATE_COST",
    "BucketKind",
    "RateLimiter",
    "Tier",
    "UnknownTierError",
    "get_tier",
    "request_cost",
]

TOO_MANY_REQUESTS_BODY: Final[Mapping[str, str]] = {"error": "too many requests"}
"""The documented 429 body (kalshi-api.md §3). Send it without Retry-After / X-RateLimit headers. Treat it as
read-only (copy it before adding fields)."""

_UNITS_PER_TOKEN: Final = 1_000_000_000  # one token = 1e9 units: rate tokens/s = rate units/ns


# --- limiter -------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Bucket:
    units: int
    """Current tokens × 1e9."""
    last_ns: int
    """Clock.monotonic_ns() at the last refill."""


class RateLimiter:
    """Per-user read and write token buckets at each user's tier, refilled from ``clock.monotonic_ns()``.

    ``tier_by_user`` is a callable (user id → tier name) or a mapping; users missing from a mapping get
    ``default_tier``. The tier is looked up on every call, so a tier change takes effect at once (the bucket keeps
    its tokens, clamped to the new capacity). A new bucket starts full. With ``enabled`` false every request is
    admitted and nothing is counted. Safe to call from several threads.
    """

    def __init__(
        self,
        tier_by_user: Callable[[str], str] | Mapping[str, str],
        clock: Clock,
        *,
        default_tier: str = "basic",
        enabled: bool = True,
    ) -> None:
        get_tier(default_tier)  # validate early
        self._tier_by_user = tier_by_user
        self._default_tier = default_tier
        self._clock = clock
        self.enabled = enabled
        self._buckets: dict[tuple[str, BucketKind], _Bucket] = {}
        self._lock = threading.Lock()
        self.rejections = 0
        """Requests refused so far (each one answered 429)."""

    def tier_of(self, user_id: str) -> Tier:
        """The user's current tier (:class:`UnknownTierError` if the lookup names no tier)."""
        if isinstance(self._tier_by_user, Mapping):
            name = self._tier_by_user.get(user_id, self._default_tier)
        else:
            name = self._tier_by_user(user_id)
        return get_tier(name)

    def _refilled(self, user_id: str, kind: BucketKind) -> _Bucket:
        """The user's bucket of ``kind`` brought up to now. Call with the lock held."""
        tier = self.tier_of(user_id)
        capacity = tier.capacity(kind) * _UNITS_PER_TOKEN
        now = self._clock.monotonic_ns()
        bucket = self._buckets.get((user_id, kind))
        if bucket is None:
            bucket = self._buckets[(user_id, kind)] = _Bucket(capacity, now)
        elapsed = max(now - bucket.last_ns, 0)
        bucket.units = min(capacity, bucket.units + elapsed * tier.rate(kind))
        bucket.last_ns = now
        return bucket

    def try_acquire(self, user_id: str, kind: BucketKind | str, tokens: int) -> bool:
        """Take ``tokens`` from the user's ``kind`` bucket if all of them are there; return whether it did.

        All or nothing: a request (or batch) that does not fit whole consumes nothing and returns ``False`` —
        including one that costs more than the bucket's capacity, which can never succeed.
        """
        if tokens < 0:
            raise ValueError("tokens must be >= 0")
        kind = BucketKind(kind)
        if not self.enabled:
            return True
        with self._lock:
            bucket = self._refilled(user_id, kind)
            need = tokens * _UNITS_PER_TOKEN
            if bucket.units < need:
                self.rejections += 1
                return False
            bucket.units -= need
            return True

    def acquire_request(
        self, user_id: str, method: str, path: str, *, batch_creates: int = 0, batch_cancels: int = 0
    ) -> bool:
        """:func:`request_cost` then :meth:`try_acquire`: whether the request is admitted."""
        kind, tokens = request_cost(method, path, batch_creates=batch_creates, batch_cancels=batch_cancels)
        return self.try_acquire(user_id, kind, tokens)

    def available(self, user_id: str, kind: BucketKind | str) -> int:
        """Whole tokens in the user's ``kind`` bucket now (its capacity if it has never been used)."""
        kind = BucketKind(kind)
        with self._lock:
            bucket = self._refilled(user_id, kind)
            return bucket.units // _UNITS_PER_TOKEN

    def limits(self, user_id: str) -> dict[str, object]:
        """The ``GET /account/limits`` view: ``{usage_tier, read: {refill_rate, bucket_capacity}, write: {...}}``."""
        tier = self.tier_of(user_id)
        return {
            "usage_tier": tier.name,
            "read": {"refill_rate": tier.read_rate, "bucket_capacity": tier.read_capacity},
            "write": {"refill_rate": tier.write_rate, "bucket_capacity": tier.write_capacity},
        }

    def reset(self, user_id: str | None = None) -> None:
        """Refill (forget) the buckets of ``user_id``, or of every user."""
        with self._lock:
            if user_id is None:
                self._buckets.clear()
            else:
                for kind in BucketKind:
                    self._buckets.pop((user_id, kind), None)
