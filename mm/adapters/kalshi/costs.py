"""Kalshi's request costs and usage tiers (kalshi-api.md §9), shared by the client-side limiter and the simulator.

Tokens: a request costs 10 by default; a V2 cancel 2; V2 batches 10 per created and 2 per cancelled order; legacy
writes 100 (cancel 20). **Write** = order create/amend/decrease/cancel, order-group changes, RFQ quotes; everything
else is **read**. Tiers give per-second refill rates and capacities per bucket (see :data:`TIERS`); §9 reads
"Capacity: 2 s of budget for Basic/Advanced Read and for Advanced+ Write, 1 s otherwise".
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from mm.domain.errors import MmError

__all__ = [
    "API_PREFIX",
    "DEFAULT_COST",
    "LEGACY_CANCEL_COST",
    "LEGACY_WRITE_COST",
    "TIERS",
    "V2_CANCEL_COST",
    "V2_CREATE_COST",
    "BucketKind",
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
