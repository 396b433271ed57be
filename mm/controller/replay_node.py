"""Full replay (FR-902): the unmodified node's Market reconciler run on a recorded session, checked record by record.

:class:`NodeReplayer` walks the session file once, in order, and plays it to a replayed node
(:mod:`mm.controller.replay_setup`) through :class:`~mm.adapters.replay.ReplayExchangeAdapter`:

* market data and our account's events are delivered at their place in the file;
* at every ``reconcile`` record the real ``MarketReconciler.reconcile(name)`` runs with the
  :class:`~mm.clock.SimulatedClock` at the recorded ``now_us`` — exactly the cycles the live node ran, which its
  work queue decided (a ``config_reload`` or ``component_swap`` written before the record belongs to that cycle);
* the node's order calls are answered from the recording (this class is the adapter's :class:`RecordFeed`): the
  walk goes on to the call's answer, delivering what arrived while the live call was in flight, and sets the clock
  to when the live call returned;
* everything the node decides — the cycle records, reloads, quotes, order actions — is compared, in order, with
  the file by the :class:`~mm.recording.validator.ReplayValidator`, and every ``state_snapshot`` (and the
  ``session_end`` state) with the replayed node's state built by the recorder's own builder.

Older recordings (no ``reconcile`` records, ``replay_format`` 1, like ``tests/recording/sessions``) are replayed on
``quote_generated`` records instead: a cycle at each one's ``inputs.now_us`` (and at an order action no quote
explains, at its time). Their cancels and amends have no recorded answer: the replay assumes they succeeded and
returned as late as they can have (just before the next cycle) — an approximation, which the report notes.

A ``replay_format`` 2 file did not record the order resyncs that only replaced the tracker's copy of an order; the
replay infers them where the file shows one ran (:mod:`mm.controller.replay_resyncs`) and notes it.

Partial replay (``from_snapshot=N``): a recording that carries restore data skips to the N-th ``state_snapshot``
without running anything (only the config, market facts and kill switches are followed), restores the node
there and checks from it; an older one is run from the start with checking off until that snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

from mm.controller.errors import TerminalError, TransientError
from mm.controller.replay_resyncs import VenueReads
from mm.controller.replay_setup import ReplayNode, build_replay_node, changed_custom_rules, external_usage_of
from mm.controller.session_content import session_state
from mm.domain.errors import MmError
from mm.recording.format import SessionFormatError, SessionRecord
from mm.recording.replay import Divergence, ReplayError, ReplayMode, beyond_the_snapshots, checked_speed
from mm.recording.session_cursor import SessionCursor
from mm.recording.validator import DECISIONS, NodeReplayReport, ReplayDiverged, ReplayValidator, summary

__all__ = ["NodeReplayReport", "NodeReplayer"]

_OPENERS: Final = frozenset({"config_reload", "component_swap"})
_ANSWERS: Final = frozenset({"order_ack", "order_rejected", "order_unknown", "order_result"})
_ACTIONS: Final = frozenset({"order_sent", "order_cancel", "order_amend"})
_NEEDED_EVENTS: Final = ("book_snapshots", "book_deltas", "quotes", "orders", "fills")
"""What the node decides on or is answered with: a file recorded without one cannot drive it."""
_OVERRIDE_IGNORES: Final = {
    "quote_generated": frozenset({"config_digest"}),
    "config_reload": frozenset({"digest_before", "digest_after", "strategy"}),
}


class NodeReplayer:
    """Replay one session file through the node (see the module docstring).

    ``strategy_override``: a Strategy spec every Market runs instead of the recorded one (what-if); the replay
    then reports where the node's decisions first differ (digests of the changed config are not compared).
    """

    def __init__(
        self,
        path: Path | str,
        *,
        mode: ReplayMode = "instant",
        speed: float = 1.0,
        from_snapshot: int | None = None,
        strategy_override: Mapping[str, Any] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.speed = checked_speed(mode, speed, from_snapshot)
        self.path = Path(path)
        self.mode = mode
        self.from_snapshot = from_snapshot
        self.strategy_override = strategy_override
        self._sleep = sleep
        self._cursor: SessionCursor | None = None
        self._replay: ReplayNode | None = None
        self._validator: ReplayValidator | None = None
        self._format = 2
        self._driven_to = 0
        self._snapshots = 0
        self._started = False
        self._report = NodeReplayReport(self.path)

    def run(self) -> NodeReplayReport:
        """Replay to the end or the first divergence. A damaged file raises
        :class:`~mm.recording.format.SessionFormatError` when the walk reaches it; an unreplayable one
        :class:`ReplayError`."""
        return asyncio.run(self.run_async())

    async def run_async(self) -> NodeReplayReport:
        self._driven_to, self._snapshots, self._started = 0, 0, False
        self._report = NodeReplayReport(self.path)
        paced = self.mode != "instant"
        cursor = SessionCursor(self.path, speed=self.speed if paced else None, sleep=self._sleep if paced else None)
        self._cursor = cursor
        report = self._report
        try:
            first = cursor.take()
            if first is None or first.type != "session_start":
                what = "nothing" if first is None else f"a {first.type}"
                raise ReplayError(f"{self.path}: the first record is {what}, not the session_start")
            self._open(first)
            if self.from_snapshot is not None and self._format >= 2:
                await self._skip_to_snapshot(self.from_snapshot)
            await self._walk()
            if not self._started:
                raise beyond_the_snapshots(self.path, self.from_snapshot, self._snapshots)
        except ReplayDiverged as exc:
            report.divergence = exc.divergence
        except (ReplayError, SessionFormatError):
            raise
        except (KeyError, TypeError, ValueError, MmError) as exc:
            # a record whose data is not what the node writes (edited by hand, another version): say where
            raise ReplayError(
                f"{self.path}:{cursor.index}: cannot replay this record: {type(exc).__name__}: {exc}"
            ) from exc
        finally:
            cursor.close()
            report.records = cursor.index
            report.slept_s = cursor.slept_s
            if self._validator is not None:
                report.checked = self._validator.checked
        return report

    # ------------------------------------------------------------------ set-up

    @property
    def replay(self) -> ReplayNode:
        assert self._replay is not None
        return self._replay

    @property
    def validator(self) -> ReplayValidator:
        assert self._validator is not None
        return self._validator

    @property
    def cursor(self) -> SessionCursor:
        assert self._cursor is not None
        return self._cursor

    def _open(self, start: SessionRecord) -> None:
        events = (start.data.get("recording") or {}).get("events") or {}
        missing = [flag for flag in _NEEDED_EVENTS if events.get(flag) is False]
        if missing:
            raise ReplayError(
                f"{self.path}: recorded with recording.events {', '.join(missing)} off: the node cannot be replayed "
                "without them (--quotes-only may)"
            )
        self._format = int(start.data.get("replay_format") or 1)
        self._report.replay_format = self._format
        self._replay = build_replay_node(start, self, strategy_override=self.strategy_override)
        if self._format == 2:
            self._replay.venue_reads = VenueReads()  # its resyncs that only replaced copies are not in it
        ignore = _OVERRIDE_IGNORES if self.strategy_override is not None else {}
        old = self._format < 2
        if old:
            self.replay.sink.decisions = DECISIONS - {"reconcile"}
        self._validator = ReplayValidator(
            self.replay.sink, ignore=ignore, override=self.strategy_override is not None, recorded_fields_only=old
        )
        self._started = self.from_snapshot is None
        self._validator.checking = self._started
        self._report.notes.extend(changed_custom_rules(start))
        if self._format < 2:
            self._report.notes.append(
                "an older recording (no reconcile records): cycles run at each quote_generated, and cancels and "
                "amends, whose answers it does not hold, are assumed to have succeeded just before the next cycle"
            )

    async def _skip_to_snapshot(self, number: int) -> None:
        """Follow only the config, facts and switches up to the ``number``-th state_snapshot, and restore there."""
        cursor, replay = self.cursor, self.replay
        while (record := cursor.take()) is not None:
            replay.clock.set_us(max(replay.clock.now_us(), record.ts_us))
            if record.type == "config_reload":
                replay.apply_reload(record.data)
            elif record.type == "reconcile":
                replay.apply_cycle(record.data)
            elif record.type in ("book_snapshot", "book_delta"):
                await replay.venue.apply_book(record, emit=False)
            elif record.type == "state_snapshot":
                self._snapshots += 1
                if self._snapshots == number:
                    self._restore(record)
                    return
            elif record.type == "session_end":
                return
        self._driven_to = cursor.index

    def _restore(self, record: SessionRecord) -> None:
        if "markets" not in record.data:
            raise ReplayError(f"{self.path}: the state_snapshot at seq {record.seq} holds no state to restore")
        self.replay.restore(record)
        self._driven_to = record.seq
        self._started = True
        self.validator.checking = True
        if self.from_snapshot is not None:
            self._report.start_seq = record.seq

    # ------------------------------------------------------------------ the walk

    async def _walk(self) -> None:
        cursor = self.cursor
        while True:
            record = cursor.peek()
            if record is None:
                cursor.finish()
                self.validator.settle(cursor.index + 1, -1, "(end of file)")
                return
            if self._opens_cycle(record, top_level=True):
                await self._cycle()
                continue
            taken = cursor.take()
            assert taken is not None
            await self._handle(taken)
            if taken.type == "session_end":
                return

    def _opens_cycle(self, record: SessionRecord, *, top_level: bool) -> bool:
        if record.seq <= self._driven_to:
            return False
        if self._format >= 2:
            return record.type == "reconcile" or record.type in _OPENERS
        if record.type in _OPENERS or record.type in ("volatility_update", "quote_generated"):
            return True
        # an older recording: an order action no quote explains (a cutoff, a halt) is its own cycle — unless the
        # replay has decisions waiting to be matched, which it may be
        return top_level and record.type in _ACTIONS and not self.replay.sink.captured

    async def _cycle(self) -> None:
        """Run the cycle whose records start at the cursor, at the time and with the inputs they say."""
        cursor, replay = self.cursor, self.replay
        openers: list[SessionRecord] = []
        while (ahead := cursor.peek(len(openers))) is not None and (
            ahead.type in _OPENERS or (self._format < 2 and ahead.type == "volatility_update")
        ):
            openers.append(ahead)
        anchor = cursor.peek(len(openers))
        first = openers[0] if openers else anchor
        assert first is not None
        self.validator.settle(cursor.index_of(0), first.seq, first.type)
        for opener in openers:
            if opener.type == "config_reload":
                replay.apply_reload(opener.data)
        anchored = anchor is not None and (
            anchor.type == "reconcile" if self._format >= 2 else anchor.type in ("quote_generated", *_ACTIONS)
        )
        if anchor is None or not anchored:
            # a cycle that stopped before it planned (an error after its reload): only its reload ran
            self._driven_to = openers[-1].seq
            replay.clock.set_us(max(replay.clock.now_us(), openers[0].ts_us))
            with contextlib.suppress(TransientError, TerminalError):
                replay.reconciler.runtime(str(openers[0].data.get("resource", "")).removeprefix("Market/"))
            return
        self._driven_to = anchor.seq
        quote: SessionRecord | None = None
        if anchor.type == "reconcile":
            name, now = str(anchor.data["resource"]), int(anchor.data["now_us"])
            replay.apply_cycle(anchor.data)
            quote = self._quote_after(len(openers) + 1)
        elif anchor.type == "quote_generated":
            name, now, quote = str(anchor.data.get("resource", "")), int(anchor.data["inputs"]["now_us"]), anchor
        else:
            markets = [r.name for r in replay.store.all("Market")]
            if not markets:
                return
            name, now = markets[0], anchor.ts_us
        replay.external = external_usage_of(quote, replay.ticker)
        replay.clock.set_us(max(replay.clock.now_us(), now))
        self._report.cycles += 1
        with contextlib.suppress(TransientError, TerminalError):  # live, the manager retried it later
            await replay.reconciler.reconcile(name)

    def _quote_after(self, offset: int) -> SessionRecord | None:
        """This cycle's ``quote_generated`` (right after its ``reconcile`` record and any ``volatility_update``)."""
        while (ahead := self.cursor.peek(offset)) is not None and ahead.type == "volatility_update":
            offset += 1
        return ahead if ahead is not None and ahead.type == "quote_generated" else None

    # ------------------------------------------------------------------ the adapter's feed

    async def answer(self, call: str, key: str, accepts: Callable[[SessionRecord], bool]) -> SessionRecord | None:
        """:class:`~mm.adapters.replay.RecordFeed`: play the file up to the answer of the call the node just made."""
        announced = self.replay.sink.announced
        if self._format >= 2:
            if (call, key) not in announced:
                return None  # not a call the Market reconciler recorded: the recording holds no answer
            announced.discard((call, key))
        elif call != "create":
            await self._estimate_return()
            return None
        cursor = self.cursor
        while (record := cursor.peek()) is not None:
            if record.type == "session_end" or self._opens_cycle(record, top_level=False):
                return None
            cursor.take()
            if accepts(record):
                clock = self.replay.clock
                clock.set_us(max(clock.now_us(), record.ts_us))  # when the live call returned
                self.replay.note_venue(record)
                return record
            await self._handle(record)
        return None

    async def _estimate_return(self) -> None:
        """An older recording holds no answer to a cancel or amend, nor when the call returned — which the
        throttle measures from. Take the latest time it can have been: play what the file holds before the next
        answer, order action or cycle; when a cycle comes next, the call returned just before it started (the
        node's worker was busy with this one until then)."""
        cursor, clock = self.cursor, self.replay.clock
        while (ahead := cursor.peek()) is not None:
            if self._opens_cycle(ahead, top_level=False):
                quote = ahead if ahead.type == "quote_generated" else self._quote_after(1)
                if quote is not None:
                    clock.set_us(max(clock.now_us(), int(quote.data["inputs"]["now_us"])))
                return
            if ahead.type in _ANSWERS or ahead.type in ("session_end", "state_snapshot"):
                return
            if ahead.type in _ACTIONS and not self.replay.sink.captured:
                return  # an action this replay has not decided (yet): another cycle's
            taken = cursor.take()
            assert taken is not None
            await self._handle(taken)

    # ------------------------------------------------------------------ one record

    async def _handle(self, record: SessionRecord) -> None:
        replay, kind, index = self.replay, record.type, self.cursor.index
        replay.clock.set_us(max(replay.clock.now_us(), record.ts_us))
        if kind in DECISIONS:
            self.validator.expect(index, record)
        elif kind in ("book_snapshot", "book_delta"):
            await replay.venue.apply_book(record)
        elif kind == "book_state":
            await replay.venue.apply_book_state(record)
        elif kind == "trade":
            await replay.venue.apply_trade(record)
        elif kind == "fill":
            await replay.adapter(str(record.data.get("execution", "live"))).apply_fill(record)
            replay.note_venue(record)
        elif kind == "order_update":
            await replay.adapter(str(record.data.get("execution", "live"))).apply_order_update(record)
            replay.note_venue(record)
        elif kind == "state_snapshot":
            self._state_snapshot(index, record)
        elif kind in _ANSWERS:
            if self._format >= 2 and self.validator.checking:
                # an answer no call of the replay took: the live node made a call the replay did not
                raise ReplayDiverged(
                    Divergence(index, record.seq, kind, "(call)", summary(kind, record.data), "<missing>")
                )
        elif kind == "node_cancel":
            replay.apply_node_cancel(record.data)
        elif kind == "orders_resync":
            inferred = replay.apply_orders_resync(record.data)
            if inferred:
                self._report.notes.append(
                    f"seq {record.seq}: a format-2 recording does not hold the order resync the node ran just before "
                    f"(it replaced only copies): {', '.join(inferred)} taken as the venue last answered for it"
                )
        elif kind == "market_settled":
            account = replay.account(str(record.data["execution"]))
            account.ledger.apply_settlement(record.market, int(record.data["value_units"]), record.ts_us)
        elif kind == "recording_gap":
            raise ReplayError(
                f"{self.path}:{index}: the recorder dropped {record.data['dropped']} records here (overload): "
                "the session cannot be replayed across the gap"
            )
        elif kind == "session_end":
            self.validator.settle(index, record.seq, kind)
            self.validator.check_state(index, record, self._state(record.ts_us), "state")
        elif kind == "session_start":
            raise ReplayError(f"{self.path}:{index}: a second session in one file (replay them one by one)")

    def _state(self, now_us: int) -> dict[str, Any]:
        return session_state(self.replay.node, now_us, self.replay.ticker)

    def _state_snapshot(self, index: int, record: SessionRecord) -> None:
        self._snapshots += 1
        if not self._started and self._format < 2 and self._snapshots == self.from_snapshot:
            self._started = True  # an older recording: the fast-forward is over, checking starts here
            self.validator.checking = True
            self._report.start_seq = record.seq
            return
        if self._report.cycles == 0 and self._snapshots == 1 and "markets" in record.data:
            self._restore(record)  # the session's first snapshot: what the node held when recording began
            return
        self.validator.check_state(index, record, self._state(record.ts_us))
        for entry in record.data.get("accounts") or []:
            cash = (entry.get("ledger") or {}).get("cash_micros")
            if entry.get("exchange") == self.replay.exchange and cash is not None:
                self.replay.adapter(str(entry["execution"])).balance_micros = int(cash)
