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

Deterministic: time comes only from the injected :class:`~mm.clock.Clock` (``monotonic_ns``), and token counts are
exact integers (1 token = 10⁹ units, so refilling ``rate`` tokens/s adds exactly ``rate`` units per nanosecond).
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from mm.clock import Clock
from mm.domain.errors import MmError

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

API_PREFIX: Final = "/trade-api/v2"

DEFAULT_COST: Final = 10
V2_CREATE_COST: Final = 10
V2_CANCEL_COST: Final = 2
LEGACY_WRITE_COST: Final = 100
LEGACY_CANCEL_COST: Final = 20

TOO_MANY_REQUESTS_BODY: Final[Mapping[str, str]] = {"error": "too many requests"}
"""The documented 429 body (kalshi-api.md §3). Send it without Retry-After / X-RateLimit headers. Treat it as
read-only (copy it before adding fields)."""

_UNITS_PER_TOKEN: Final = 1_000_000_000  # one token = 1e9 units: rate tokens/s = rate units/ns


class BucketKind(enum.StrEnum):
    READ = "read"
    WRITE = "write"


class UnknownTierError(MmError, ValueError):
    """A usage tier name that is not one of Kalshi's (:data:`TIERS`)."""


@dataclass(frozen=True, slots=True)
class Tier:
    """One usage tier: per-second refill rates and bucket capacities, in tokens."""

    name: str
    read_rate: int
    read_capacity: int
    write_rate: int
    write_capacity: int

    def rate(self, kind: BucketKind) -> int:
        return self.read_rate if kind is BucketKind.READ else self.write_rate

    def capacity(self, kind: BucketKind) -> int:
        return self.read_capacity if kind is BucketKind.READ else self.write_capacity


def _tier(name: str, read: int, write: int, *, read_burst_s: int, write_burst_s: int) -> Tier:
    return Tier(name, read, read * read_burst_s, write, write * write_burst_s)


TIERS: Final[Mapping[str, Tier]] = {
    t.name: t
    for t in (
        _tier("basic", 200, 100, read_burst_s=2, write_burst_s=1),
        _tier("advanced", 300, 300, read_burst_s=2, write_burst_s=2),
        _tier("expert", 600, 600, read_burst_s=1, write_burst_s=2),
        _tier("premier", 1000, 1000, read_burst_s=1, write_burst_s=2),
        _tier("paragon", 2000, 2000, read_burst_s=1, write_burst_s=2),
        _tier("prime", 4000, 4000, read_burst_s=1, write_burst_s=2),
        _tier("prestige", 10000, 8000, read_burst_s=1, write_burst_s=2),
    )
}


def get_tier(name: str) -> Tier:
    """The tier called ``name`` (case-insensitive); :class:`UnknownTierError` if there is none."""
    tier = TIERS.get(name.strip().lower())
    if tier is None:
        raise UnknownTierError(f"unknown usage tier {name!r}; expected one of {', '.join(TIERS)}")
    return tier


# --- costs ---------------------------------------------------------------------------------------------------


def _endpoint_segments(path: str) -> list[str]:
    """The path's segments after ``/trade-api/v2`` (if present), without the query string or empty segments."""
    bare = path.split("?", 1)[0]
    if bare == API_PREFIX or bare.startswith(API_PREFIX + "/"):
        bare = bare[len(API_PREFIX) :]
    return [s for s in bare.split("/") if s]


def _batch(count: int, per_order: int) -> int:
    # An empty (invalid) batch still costs one order's worth: the server does the work of rejecting it.
    return per_order * max(count, 1)


def request_cost(method: str, path: str, *, batch_creates: int = 0, batch_cancels: int = 0) -> tuple[BucketKind, int]:
    """The bucket a request draws on and its cost in tokens (kalshi-api.md §9).

    ``path`` may include ``/trade-api/v2`` and a query string. ``batch_creates`` / ``batch_cancels`` are the
    number of orders in a batched create / cancel body (ignored for other endpoints).
    """
    if batch_creates < 0 or batch_cancels < 0:
        raise ValueError("batch sizes must be >= 0")
    verb = method.upper()
    seg = _endpoint_segments(path)
    read = (BucketKind.READ, DEFAULT_COST)
    if verb in {"GET", "HEAD", "OPTIONS"} or len(seg) < 2:
        return read

    top, sub = seg[0], seg[1]
    if top == "portfolio" and sub == "events" and len(seg) >= 3 and seg[2] == "orders":
        rest = seg[3:]  # V2 order endpoints: /portfolio/events/orders[/...]
        if rest == ["batched"]:
            if verb == "POST":
                return BucketKind.WRITE, _batch(batch_creates, V2_CREATE_COST)
            if verb == "DELETE":
                return BucketKind.WRITE, _batch(batch_cancels, V2_CANCEL_COST)
        if not rest and verb == "POST":
            return BucketKind.WRITE, V2_CREATE_COST
        if len(rest) == 1 and verb == "DELETE":
            return BucketKind.WRITE, V2_CANCEL_COST
        if len(rest) == 2 and rest[1] in {"amend", "decrease"} and verb == "POST":
            return BucketKind.WRITE, DEFAULT_COST
        return read
    if top == "portfolio" and sub == "orders":
        rest = seg[2:]  # legacy order writes: /portfolio/orders[/...]
        if rest == ["batched"]:
            if verb == "POST":
                return BucketKind.WRITE, _batch(batch_creates, LEGACY_WRITE_COST)
            if verb == "DELETE":
                return BucketKind.WRITE, _batch(batch_cancels, LEGACY_CANCEL_COST)
        if not rest and verb == "POST":
            return BucketKind.WRITE, LEGACY_WRITE_COST
        if len(rest) == 1 and verb == "DELETE":
            return BucketKind.WRITE, LEGACY_CANCEL_COST
        if len(rest) == 2 and rest[1] in {"amend", "decrease"} and verb == "POST":
            return BucketKind.WRITE, LEGACY_WRITE_COST
        return read
    if (top == "portfolio" and sub == "order_groups") or (top == "communications" and sub == "quotes"):
        return BucketKind.WRITE, DEFAULT_COST
    return read


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
