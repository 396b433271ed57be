"""The kill switch (FR-504): latched until a person resets it, never automatically, not after a restart.

A trip is stored through a :class:`KillSwitchLatch` *before* anything acts on it, so a crash between
tripping and cancelling still comes back tripped. Here the latch is in memory; the state layer provides
a durable one (SQLite) with the same interface. Scopes: ``node`` (the whole node: aggregate breaches,
manual stops) and ``market/<name>`` (one market's PnL rules).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from mm.domain.errors import MmError

TripSource = Literal["manual", "pnl_limit", "rule", "aggregate", "recovery"]


class KillSwitchError(MmError):
    """A kill switch operation that is not allowed (e.g. a reset without confirmation)."""


@dataclass(frozen=True, slots=True)
class KillSwitchState:
    tripped: bool
    reason: str = ""
    source: str = ""
    tripped_at_us: int = 0
    reset_by: str = ""
    reset_at_us: int = 0


class KillSwitchLatch(Protocol):
    """Where kill switch states live between restarts."""

    def load(self, scope: str) -> KillSwitchState | None: ...

    def save(self, scope: str, state: KillSwitchState) -> None: ...


class InMemoryLatch:
    """A latch that lives as long as the object (tests, and until the state store provides a durable one)."""

    def __init__(self) -> None:
        self._states: dict[str, KillSwitchState] = {}

    def load(self, scope: str) -> KillSwitchState | None:
        return self._states.get(scope)

    def save(self, scope: str, state: KillSwitchState) -> None:
        self._states[scope] = state


class KillSwitch:
    """One scope's switch. Reads its latch on construction, so a restart keeps a trip."""

    def __init__(self, latch: KillSwitchLatch, scope: str = "node") -> None:
        self._latch = latch
        self.scope = scope
        self._state = latch.load(scope) or KillSwitchState(tripped=False)

    @property
    def tripped(self) -> bool:
        return self._state.tripped

    @property
    def state(self) -> KillSwitchState:
        return self._state

    def trigger(self, reason: str, source: TripSource, now_us: int) -> bool:
        """Trip the switch (stored first). Returns True if this call tripped it, False if already tripped.

        An already-tripped switch keeps its first reason: that is the one an operator needs to read.
        """
        if self._state.tripped:
            return False
        state = KillSwitchState(tripped=True, reason=reason, source=source, tripped_at_us=now_us)
        self._latch.save(self.scope, state)
        self._state = state
        return True

    def reset(self, *, confirm: bool, operator: str, now_us: int) -> None:
        """Clear a trip. Only a person does this: ``confirm=True`` and who it was are required."""
        if not confirm:
            raise KillSwitchError(f"resetting kill switch {self.scope!r} needs explicit confirmation")
        if not operator.strip():
            raise KillSwitchError(f"resetting kill switch {self.scope!r} needs the operator's name")
        if not self._state.tripped:
            return
        state = KillSwitchState(tripped=False, reset_by=operator, reset_at_us=now_us)
        self._latch.save(self.scope, state)
        self._state = state
