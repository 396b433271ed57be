"""Trading states (design.md §4): ``active``, ``reducing`` (only position-reducing orders), ``halted``
(cancels only). The effective state of a market is the most restrictive of the node's, its risk
policy's (a tripped kill switch halts) and its own.
"""

from __future__ import annotations

import enum

from mm.domain.quotes import QuoteSet
from mm.risk.quote_ops import cap_size, direction, is_empty, map_quotes


class TradingState(enum.IntEnum):
    """Ordered by restriction: a larger value is more restrictive."""

    ACTIVE = 0
    REDUCING = 1
    HALTED = 2

    @classmethod
    def parse(cls, name: str) -> TradingState:
        return cls[name.upper()]

    @property
    def label(self) -> str:
        return self.name.lower()


def most_restrictive(*states: TradingState) -> TradingState:
    """The effective state: halted beats reducing beats active."""
    return max(states, default=TradingState.ACTIVE)


def reducing_only(quotes: QuoteSet, inventory_units: int) -> QuoteSet | None:
    """Keep only quotes that bring net inventory toward zero, each capped at |inventory| so a fill can
    flatten the position but never flip it. None when nothing remains (e.g. already flat)."""
    if inventory_units == 0:
        return None
    sign = 1 if inventory_units > 0 else -1
    limit = abs(inventory_units)
    kept = map_quotes(quotes, lambda _, q: cap_size(q, limit) if direction(q) == -sign else None)
    return None if is_empty(kept) else kept
