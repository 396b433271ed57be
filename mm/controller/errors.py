"""What a reconcile may raise, and what the controller does with it (design.md §4).

* :class:`TransientError` — try again after ``delay_s`` (or the key's exponential backoff when None): the
  venue is down, the book is stale, a dependency is not ready yet.
* :class:`TerminalError` — nothing will change until someone changes the spec: the resource is marked
  ``Stalled`` with the message and is not retried on a timer (a spec change or a manual resync re-enqueues it).

Any other exception is a bug in a reconciler: it is logged with its traceback, counted, and retried with
backoff like a transient error — one market's bug never stops the others (FR-1300).
"""

from __future__ import annotations

from mm.domain.errors import MmError

__all__ = ["ControllerError", "TerminalError", "TransientError"]


class ControllerError(MmError):
    """Root of the controller's errors."""


class TransientError(ControllerError):
    """Retry later: after ``delay_s`` seconds, or with the key's exponential backoff when None."""

    def __init__(self, message: str, *, delay_s: float | None = None) -> None:
        super().__init__(message)
        self.delay_s = delay_s


class TerminalError(ControllerError):
    """Do not retry until the spec changes; the resource is reported ``Stalled`` with this message."""

    def __init__(self, message: str, *, reason: str = "Stalled") -> None:
        super().__init__(message)
        self.reason = reason
