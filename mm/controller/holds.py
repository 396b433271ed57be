"""Trading holds: node-wide reasons not to quote that are not the kill switch (FR-1101, FR-1202, NFR-202/204).

A hold stops quoting on every Market (they plan cancels only, phase ``Paused``) while it is set; clearing the
last hold lets them quote again on the next cycle. Unlike the kill switch, holds are not latched by default:
the component that set one clears it when its condition is gone (the network is back, latency is normal).
``latched`` holds (crash recovery outside tolerance) are cleared only by a person: ``mmctl resume --confirm``.

Widening: a degradation that does not warrant a pause (latency over the critical threshold with
``action_on_critical: widen_spread``) sets a spread multiplier instead; the Market reconciler widens the
approved quotes by the largest multiplier in force (``mm.risk.quote_ops.widen``).

Keys say who owns a hold: ``shutdown``, ``recovery``, ``network/<exchange>``, ``latency/<exchange>``,
``clock_drift``, ``health``. Every change calls ``on_change`` (the node re-enqueues every Market and logs it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Hold", "TradingHolds"]


@dataclass(frozen=True, slots=True)
class Hold:
    key: str
    reason: str
    since_us: int
    latched: bool = False
    """Cleared only by a person (``resume --confirm``), never by the component that set it."""


class TradingHolds:
    """The set of holds and spread multipliers in force (see the module docstring)."""

    def __init__(self, on_change: Callable[[str, Hold | None], None] | None = None) -> None:
        self._holds: dict[str, Hold] = {}
        self._widen: dict[str, float] = {}
        self.on_change = on_change
        """Called with (key, the new hold or None when cleared) after every change."""

    def set(self, key: str, reason: str, now_us: int, *, latched: bool = False) -> bool:
        """Set (or re-word) a hold; True when it was not set before. The first ``since_us`` is kept."""
        current = self._holds.get(key)
        if current is not None and current.reason == reason and current.latched == latched:
            return False
        hold = Hold(key, reason, current.since_us if current is not None else now_us, latched)
        self._holds[key] = hold
        if self.on_change is not None:
            self.on_change(key, hold)
        return current is None

    def clear(self, key: str, *, by_person: bool = False) -> bool:
        """Clear a hold; a latched one only ``by_person``. True when something was cleared."""
        current = self._holds.get(key)
        if current is None or (current.latched and not by_person):
            return False
        del self._holds[key]
        if self.on_change is not None:
            self.on_change(key, None)
        return True

    def clear_latched(self) -> list[Hold]:
        """A person's ``resume --confirm``: clear every latched hold; returns what was cleared."""
        cleared = [h for h in self._holds.values() if h.latched]
        for hold in cleared:
            self.clear(hold.key, by_person=True)
        return cleared

    def get(self, key: str) -> Hold | None:
        return self._holds.get(key)

    def active(self) -> list[Hold]:
        return sorted(self._holds.values(), key=lambda h: (h.since_us, h.key))

    @property
    def blocked(self) -> bool:
        """Any hold in force: quote nothing."""
        return bool(self._holds)

    def summary(self) -> str:
        """One line for a Market's status: ``network/sim: order stream down; recovery: ...``."""
        return "; ".join(f"{h.key}: {h.reason}" for h in self.active())

    # ------------------------------------------------------------------ widening

    def set_widen(self, key: str, multiplier: float) -> None:
        """Widen every quote by ``multiplier`` (> 1) while ``key`` asks for it; 1 or less removes it."""
        before = self.spread_multiplier()
        if multiplier <= 1.0:
            self._widen.pop(key, None)
        else:
            self._widen[key] = multiplier
        if self.spread_multiplier() != before and self.on_change is not None:
            self.on_change(key, self._holds.get(key))

    def spread_multiplier(self) -> float:
        return max(self._widen.values(), default=1.0)
