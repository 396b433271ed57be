"""SessionRecorder: buffered non-blocking writes, toggles, naming, snapshots, retention and the size limit.

Time is a SimulatedClock (node clock) and a second one as the wall clock (retention); the snapshot timer runs
on an injected sleep that the test releases tick by tick. Nothing sleeps and hopes: background progress is
awaited with :func:`wait_until` (a timeout) or forced with ``flush()``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from mm.clock import SimulatedClock, datetime_to_us
from mm.domain.book import OrderBook
from mm.domain.sides import Side
from mm.domain.ticks import TickGrid
from mm.recording.format import SessionReader, SessionRecord, read_session
from mm.recording.recorder import MIB, SessionRecorder, sanitise_market, session_file_name
from mm.specs.node import Recording, RecordingEvents

MARKET = "KXBTCD-26AUG1317-T94749.99"
START = datetime_to_us(datetime(2026, 8, 13, 20, 30, 59, 999_999, tzinfo=UTC))
DAY_US = 86_400 * 1_000_000


async def wait_until(condition: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.005)

    try:
        await asyncio.wait_for(poll(), timeout)
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout} s waiting for {what}") from None


class Ticks:
    """An injectable sleep: each ``await sleep(s)`` waits until the test calls :meth:`tick`."""

    def __init__(self) -> None:
        self.intervals: list[float] = []
        self._queue: asyncio.Queue[None] = asyncio.Queue()

    async def sleep(self, seconds: float) -> None:
        self.intervals.append(seconds)
        await self._queue.get()

    def tick(self) -> None:
        self._queue.put_nowait(None)


def config(tmp_path: Path, **overrides: Any) -> Recording:
    return Recording(output_dir=str(tmp_path / "sessions"), **overrides)


def make(
    tmp_path: Path, *, clock: SimulatedClock | None = None, wall: SimulatedClock | None = None, **kw: Any
) -> tuple[SessionRecorder, list[tuple[str, str]]]:
    alerts: list[tuple[str, str]] = []
    cfg = kw.pop("cfg", None) or config(tmp_path)
    recorder = SessionRecorder(
        cfg,
        clock or SimulatedClock(START),
        wall=wall or SimulatedClock(START),
        session_info=lambda m: {"config": {"market": m}, "seeds": {"simulator": 7}},
        state=lambda m: {"accounts": [{"position_units": 0}]},
        alert=lambda reason, message: alerts.append((reason, message)),
        **kw,
    )
    return recorder, alerts


def trade(i: int) -> dict[str, Any]:
    return {"trade_id": f"t{i}", "price_units": 5000 + i, "size_units": 100, "taker_side": "buy"}


def records_of(recorder: SessionRecorder, market: str = MARKET) -> list[SessionRecord]:
    paths = [p for p in recorder.paths if sanitise_market(market) in p.name]
    return [r for p in paths for r in read_session(p)]


async def test_record_never_writes_the_writer_does_and_close_ends_the_session(tmp_path: Path) -> None:
    clock = SimulatedClock(START)
    recorder, _ = make(tmp_path, clock=clock, flush_interval_s=60.0)
    await recorder.start()
    for i in range(100):
        clock.advance_us(7)
        recorder.record("trade", MARKET, trade(i))
    # record() is synchronous and touched no file: nothing can have been written without the loop running
    assert recorder.records_written == 0 and recorder.paths == []
    await recorder.flush()
    assert recorder.records_written == 102  # session_start, state_snapshot, 100 trades
    await recorder.close("test over")
    records = read_session(recorder.paths[0])
    assert [r.type for r in records[:2]] == ["session_start", "state_snapshot"]
    assert records[-1].type == "session_end" and records[-1].data["reason"] == "test over"
    assert [r.seq for r in records] == list(range(1, 104))
    trades = [r for r in records if r.type == "trade"]
    assert [r.ts_us for r in trades] == [START + 7 * (i + 1) for i in range(100)]  # the node clock, in µs
    assert trades[3].data == trade(3)
    start = records[0].data
    assert start["format"] == "mm-session/1" and start["seeds"] == {"simulator": 7}
    assert start["config"] == {"market": MARKET} and start["recording"]["buffer_size"] == 1000


async def test_a_full_buffer_wakes_the_writer(tmp_path: Path) -> None:
    recorder, _ = make(tmp_path, cfg=config(tmp_path, buffer_size=10), flush_interval_s=3600.0)
    await recorder.start()
    for i in range(10):
        recorder.record("trade", MARKET, trade(i))
    await wait_until(lambda: recorder.records_written >= 10, what="the writer to drain a full buffer")
    await recorder.close()


async def test_per_type_toggles(tmp_path: Path) -> None:
    cfg = config(tmp_path, events=RecordingEvents(trades=False, quotes=False, state=False))
    recorder, _ = make(tmp_path, cfg=cfg)
    await recorder.start()
    recorder.record("trade", MARKET, trade(1))
    recorder.record("quote_generated", MARKET, {"inputs": {}, "strategy": {}, "risk": {}})
    recorder.record("volatility_update", MARKET, {"sigma": 0.1})
    recorder.record(
        "fill",
        MARKET,
        {"fill_id": "f", "order_id": "o", "price_units": 1, "size_units": 1, "remaining_units": 0, "fee": "0"},
    )
    recorder.record(
        "config_reload", MARKET, {"resource": "Market/m", "applied": True, "digest_before": "a", "digest_after": "b"}
    )
    assert not recorder.enabled("trade") and recorder.enabled("fill")
    await recorder.close()
    types = [r.type for r in records_of(recorder)]
    assert types == ["session_start", "fill", "config_reload", "session_end"]


async def test_file_naming_sanitising_and_a_second_session_in_the_same_minute(tmp_path: Path) -> None:
    assert session_file_name(MARKET, START) == "session_KXBTCD-26AUG1317-T94749.99_20260813_2030.jsonl.gz"
    assert session_file_name("a_b/c d", START, compressed=False, number=2) == "session_a-b-c-d_20260813_2030_2.jsonl"
    assert sanitise_market("../etc") == "-etc"
    recorder, _ = make(tmp_path)
    await recorder.start()
    recorder.record("trade", MARKET, trade(1))
    recorder.end_market(MARKET, "market deleted")
    recorder.record("trade", MARKET, trade(2))  # a new session of the same market
    recorder.record("trade", "OTHER/1", trade(3))
    await recorder.close()
    names = [p.name for p in recorder.paths]
    assert names == [
        "session_KXBTCD-26AUG1317-T94749.99_20260813_2030.jsonl.gz",
        "session_KXBTCD-26AUG1317-T94749.99_20260813_2030_2.jsonl.gz",
        "session_OTHER-1_20260813_2030.jsonl.gz",
    ]
    assert all(p.parent == tmp_path / "sessions" for p in recorder.paths)
    first = read_session(recorder.paths[0])
    assert first[-1].type == "session_end" and first[-1].data["reason"] == "market deleted"
    assert read_session(recorder.paths[2])[0].market == "OTHER/1"  # the record keeps the real id


def book_with(levels_yes: list[tuple[int, int]], levels_no: list[tuple[int, int]]) -> OrderBook:
    book = OrderBook(TickGrid.for_structure("linear_cent"))
    book.apply_snapshot(levels_yes, levels_no, START)
    return book


def replay_book(records: list[SessionRecord]) -> tuple[dict[int, int], dict[int, int]]:
    """Rebuild the book from book_snapshot + book_delta records, as a replay would."""
    yes: dict[int, int] = {}
    no: dict[int, int] = {}
    for r in records:
        if r.type == "book_snapshot":
            yes = {p: s for p, s in r.data["yes_bids"]}
            no = {p: s for p, s in r.data["no_bids"]}
        elif r.type == "book_delta":
            side = yes if r.data["side"] == "yes" else no
            assert side.get(r.data["price_units"], 0) + r.data["delta_units"] == r.data["size_units"]
            if r.data["size_units"]:
                side[r.data["price_units"]] = r.data["size_units"]
            else:
                del side[r.data["price_units"]]
    return yes, no


async def test_book_snapshot_then_deltas_and_a_snapshot_every_interval(tmp_path: Path) -> None:
    ticks = Ticks()
    recorder, _ = make(tmp_path, cfg=config(tmp_path, snapshot_interval_seconds=Decimal(30)), sleep=ticks.sleep)
    await recorder.start()
    book = book_with([(4500, 5000)], [(4500, 5000)])
    recorder.record_book(MARKET, book)
    book.apply_delta(Side.YES, 4800, 500, START)  # our bid appears
    recorder.record_book(MARKET, book)
    book.apply_delta(Side.NO, 4500, -5000, START)  # the ask leaves...
    book.apply_delta(Side.NO, 4600, 200, START)  # ...for another level (one update, two changes)
    recorder.record_book(MARKET, book)
    await wait_until(lambda: ticks.intervals == [30.0], what="the snapshot timer to wait")
    ticks.tick()
    await wait_until(lambda: len(ticks.intervals) == 2, what="one snapshot tick")
    book.apply_delta(Side.YES, 4800, -100, START)
    recorder.record_book(MARKET, book)  # due: a full snapshot
    book.apply_delta(Side.YES, 4800, -400, START)
    recorder.record_book(MARKET, book)
    await recorder.close()
    records = records_of(recorder)
    types = [r.type for r in records]
    assert types == [
        "session_start",
        "state_snapshot",
        "book_snapshot",
        "book_delta",
        "book_delta",
        "book_delta",
        "state_snapshot",  # the tick
        "book_snapshot",  # the first capture after it
        "book_delta",
        "session_end",
    ]
    assert records[2].data["yes_bids"] == [[4500, 5000]] and records[2].data["grid"] == [[0, 10000, 100]]
    assert records[3].data == {
        "side": "yes",
        "price_units": 4800,
        "size_units": 500,
        "delta_units": 500,
        "action": "add",
        "book_ts_us": START,  # the book's own timestamp, which a stale_data rule measures
    }
    assert {(r.data["price_units"], r.data["action"]) for r in records[4:6]} == {(4600, "add"), (4500, "remove")}
    assert records[7].data["yes_bids"] == [[4800, 400], [4500, 5000]]
    assert records[8].data["action"] == "remove"
    yes, no = replay_book(records)
    assert yes == {4500: 5000} and no == {4600: 200}


async def test_a_capture_that_only_moves_the_book_timestamp_is_written_as_a_snapshot(tmp_path: Path) -> None:
    """An identical resync changes no level but the book's timestamp: a replay must see that time too."""
    recorder, _ = make(tmp_path)
    await recorder.start()
    book = book_with([(4500, 5000)], [(4500, 5000)])
    recorder.record_book(MARKET, book)
    book.apply_snapshot([(4500, 5000)], [(4500, 5000)], START + 7)
    recorder.record_book(MARKET, book)
    recorder.record_book(MARKET, book)  # nothing at all changed: nothing written
    await recorder.close()
    books = [r for r in records_of(recorder) if r.type.startswith("book")]
    assert [r.type for r in books] == ["book_snapshot", "book_snapshot"]
    assert books[1].data["book_ts_us"] == START + 7 and books[1].data["yes_bids"] == [[4500, 5000]]


async def test_a_periodic_snapshot_waits_for_the_end_of_a_reconcile_cycle(tmp_path: Path) -> None:
    """Snapshots fall between the node's cycles, never between an order call and its answer: a replay can start
    at any of them."""
    recorder, _ = make(tmp_path)
    await recorder.start()
    recorder.record("trade", MARKET, trade(1))  # opens the session (and its first snapshot)
    recorder.hold_snapshots(MARKET)
    recorder.hold_snapshots(MARKET)  # nested: a second Market on the ticker
    recorder.snapshot_now()
    recorder.record("order_sent", MARKET, {"client_order_id": "c", "side": "yes", "order_side": "buy",
                                          "price_units": 4800, "size_units": 500})  # fmt: skip
    recorder.release_snapshots(MARKET)
    recorder.record("order_ack", MARKET, {"client_order_id": "c", "exchange_order_id": "o", "status": "open"})
    recorder.release_snapshots(MARKET)  # the cycle is over: the snapshot due meanwhile is taken now
    recorder.snapshot_now()  # not held: at once
    await recorder.close()
    types = [r.type for r in records_of(recorder)]
    assert types == [
        "session_start",
        "state_snapshot",
        "trade",
        "order_sent",
        "order_ack",
        "state_snapshot",
        "state_snapshot",
        "session_end",
    ]


async def test_snapshots_only_records_no_deltas(tmp_path: Path) -> None:
    recorder, _ = make(tmp_path, cfg=config(tmp_path, events=RecordingEvents(book_deltas=False)))
    await recorder.start()
    book = book_with([(4500, 5000)], [(4500, 5000)])
    recorder.record_book(MARKET, book)
    book.apply_delta(Side.YES, 4800, 500, START)
    recorder.record_book(MARKET, book)  # not due: not even captured
    recorder.snapshot_now()
    recorder.record_book(MARKET, book)
    await recorder.close()
    assert [r.type for r in records_of(recorder) if r.type.startswith("book")] == ["book_snapshot", "book_snapshot"]


async def test_retention_deletes_old_session_files_only(tmp_path: Path) -> None:
    wall = SimulatedClock(START)
    directory = tmp_path / "sessions"
    directory.mkdir()
    old = directory / "session_OLD_20260701_1200.jsonl.gz"
    recent = directory / "session_NEW_20260810_1200.jsonl.gz"
    foreign = directory / "notes.txt"
    for path in (old, recent, foreign):
        path.write_bytes(b"x" * 100)

    def age(path: Path, days: float) -> None:
        seconds = (START - int(days * DAY_US)) / 1e6
        os.utime(path, (seconds, seconds))

    age(old, 31)
    age(foreign, 400)
    age(recent, 29)
    recorder, _ = make(tmp_path, wall=wall, flush_interval_s=0.01)
    await recorder.start()
    assert recorder.deleted == [old]
    assert not old.exists() and recent.exists() and foreign.exists()
    assert recorder.disk_bytes() == 100  # the recent session file (notes.txt is not ours)
    # a day later (wall clock), the running writer sweeps again
    age(recent, 29)
    wall.advance(2 * 86_400)
    await wait_until(lambda: not recent.exists(), what="the daily retention sweep")
    assert foreign.exists()
    await recorder.close()


async def test_max_storage_stops_recording_with_an_alert(tmp_path: Path) -> None:
    cfg = config(tmp_path, max_storage_mb=1, compression="none")
    recorder, alerts = make(tmp_path, cfg=cfg)
    await recorder.start()
    blob = "y" * 10_000
    for i in range(200):  # ~2 MB of records, uncompressed
        recorder.record("trade", MARKET, {**trade(i), "note": blob})
        if i % 20 == 0:
            await recorder.flush()
    await recorder.flush()
    assert recorder.recording_stopped
    assert [a[0] for a in alerts] == ["storage_limit"]
    assert "max_storage_mb 1" in alerts[0][1]
    records = records_of(recorder)
    assert records[-1].type == "session_end" and records[-1].data["reason"] == "storage_limit"
    written = recorder.records_written
    recorder.record("trade", MARKET, trade(999))  # a no-op now: the caller (trading) is not affected
    assert not recorder.enabled("trade")
    await recorder.close()
    assert recorder.records_written == written
    assert recorder.paths[0].stat().st_size < 2 * MIB
    assert len(alerts) == 1


async def test_over_the_limit_at_start_does_not_record(tmp_path: Path) -> None:
    directory = tmp_path / "sessions"
    directory.mkdir()
    (directory / "session_X_20260813_2000.jsonl.gz").write_bytes(b"z" * (MIB + 1))
    recorder, alerts = make(tmp_path, cfg=config(tmp_path, max_storage_mb=1))
    await recorder.start()
    assert recorder.recording_stopped and alerts and alerts[0][0] == "storage_limit"
    recorder.record("trade", MARKET, trade(1))
    await recorder.close()
    assert recorder.paths == []


async def test_overload_drops_and_counts_then_marks_the_gap(tmp_path: Path) -> None:
    recorder, _ = make(tmp_path, max_pending=5, flush_interval_s=3600.0)
    await recorder.start()
    for i in range(10):  # session_start + state_snapshot + 3 trades fit; 7 trades are dropped
        recorder.record("trade", MARKET, trade(i))
    assert recorder.dropped == 7
    await recorder.close()
    records = records_of(recorder)
    gap = [r for r in records if r.type == "recording_gap"]
    assert len(gap) == 1 and gap[0].data == {"dropped": 7}
    assert [r.seq for r in records] == list(range(1, len(records) + 1))


async def test_async_write_false_writes_through(tmp_path: Path) -> None:
    recorder, _ = make(tmp_path, cfg=config(tmp_path, async_write=False))
    await recorder.start()
    recorder.record("trade", MARKET, trade(1))
    assert recorder.records_written == 3  # written before record() returned
    assert [r.type for r in read_session_prefix(recorder.paths[0])] == ["session_start", "state_snapshot", "trade"]
    await recorder.close()


def read_session_prefix(path: Path) -> list[SessionRecord]:
    """An open file's records up to its last flush (a sync point: the stream has no end yet)."""
    with SessionReader(path, skip_bad=True) as reader:
        records = list(reader)
    assert reader.skipped <= 1 and all("truncated" in why for _, why in reader.bad_lines)
    return records


async def test_flushed_data_survives_a_crash(tmp_path: Path) -> None:
    recorder, _ = make(tmp_path)
    await recorder.start()
    for i in range(5):
        recorder.record("trade", MARKET, trade(i))
    await recorder.flush()
    # no close(): as if the process died here; the flushed records read back, then the truncation is reported
    records = read_session_prefix(recorder.paths[0])
    assert [r.type for r in records].count("trade") == 5
    await recorder.close()


@pytest.mark.parametrize("compression", ["gzip", "none"])
async def test_both_compressions_read_back(tmp_path: Path, compression: str) -> None:
    recorder, _ = make(tmp_path, cfg=config(tmp_path, compression=compression))
    await recorder.start()
    recorder.record("trade", MARKET, trade(1))
    await recorder.close()
    assert recorder.paths[0].name.endswith(".jsonl.gz" if compression == "gzip" else ".jsonl")
    assert [r.type for r in records_of(recorder)] == ["session_start", "state_snapshot", "trade", "session_end"]
