"""A replay's position in a session file: the records in order, with look-ahead, paced on the recorded clock.

A full replay (FR-902) needs to look a few records ahead — where the next ``reconcile`` record says the cycle ran,
which ``quote_generated`` belongs to it — while it walks the file once, streaming. A damaged line must still be
reported where it is, after every record before it was replayed: the reader's :class:`SessionFormatError` is
kept when look-ahead meets it and raised only when the walk reaches that line (:meth:`SessionCursor.take` or
:meth:`SessionCursor.finish`).

Pacing: in ``accelerated`` and ``realtime`` modes every record taken waits for the recorded gap since the previous
one (divided by ``speed``), through the injected ``sleep``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final

from mm.recording.format import SessionFormatError, SessionReader, SessionRecord

__all__ = ["SessionCursor"]

_END: Final = None


class SessionCursor:
    """Records of one session file, one at a time (``take``), with ``peek(k)`` look-ahead."""

    def __init__(
        self, path: Path | str, *, speed: float | None = None, sleep: Callable[[float], None] | None = None
    ) -> None:
        self.path = Path(path)
        self._reader = SessionReader(self.path)
        self._records: Iterator[SessionRecord] = iter(self._reader)
        self._ahead: deque[SessionRecord] = deque()
        self._error: SessionFormatError | None = None
        self._speed = speed
        self._sleep = sleep
        self._last_ts: int | None = None
        self.index = 0
        """Position (from 1, = the line) of the last record taken."""
        self.slept_s = 0.0

    def close(self) -> None:
        self._reader.close()

    def _fill(self, count: int) -> bool:
        while len(self._ahead) < count:
            if self._error is not None:
                return False
            try:
                record = next(self._records)
            except StopIteration:
                return False
            except SessionFormatError as exc:
                self._error = exc  # raised when the walk gets there, not before
                return False
            self._ahead.append(record)
        return True

    def peek(self, ahead: int = 0) -> SessionRecord | None:
        """The record ``ahead`` positions after the next one (0 = the next), None past the end or a damaged line."""
        return self._ahead[ahead] if self._fill(ahead + 1) else _END

    def index_of(self, ahead: int = 0) -> int:
        """The position in the file of ``peek(ahead)``."""
        return self.index + 1 + ahead

    def take(self) -> SessionRecord | None:
        """The next record (paced), None at the end; raises the reader's error when the next line is damaged."""
        if not self._fill(1):
            self.finish()
            return _END
        record = self._ahead.popleft()
        self.index += 1
        self._pace(record.ts_us)
        return record

    def finish(self) -> None:
        """At the end of the walk: raise the damage that stopped the reading, if any."""
        if not self._ahead and self._error is not None:
            raise self._error

    def _pace(self, ts_us: int) -> None:
        if self._speed is None or self._sleep is None:
            return
        if self._last_ts is not None and ts_us > self._last_ts:
            delay = (ts_us - self._last_ts) / 1e6 / self._speed
            self.slept_s += delay
            self._sleep(delay)
        self._last_ts = ts_us
