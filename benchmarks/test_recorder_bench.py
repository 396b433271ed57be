"""Session recorder benchmarks (FR-901: recording adds < 5 ms to the trading loop; design.md §9).

What the trading loop pays is the synchronous part: ``record()`` (a toggle check, the node clock, a list
append) and ``record_book()`` (copying the book's levels). Encoding and gzip happen in the writer's thread.
The last benchmark measures the sustained rate the writer puts on disk (records/s, encoded and compressed).
Median and p99: ``make bench`` / ``benchmarks/report.py``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from pytest_benchmark.fixture import BenchmarkFixture

from mm.clock import WallClock
from mm.domain.book import OrderBook
from mm.domain.sides import Side
from mm.domain.ticks import TickGrid
from mm.recording.format import read_session
from mm.recording.recorder import SessionRecorder
from mm.specs.node import Recording

MARKET = "KXBTCD-26AUG1317-T73249.99"
TRADE = {"trade_id": "t-1", "price_units": 5100, "size_units": 500, "taker_side": "buy", "venue_ts_us": 1}


def started(tmp_path: Path, loop: asyncio.AbstractEventLoop, **kw: object) -> SessionRecorder:
    config = Recording(output_dir=str(tmp_path / "sessions"), buffer_size=10**9)
    # No drain while the benchmark loop holds the thread: an unbounded buffer keeps record() on its normal
    # (append) path instead of the cheaper drop path.
    recorder = SessionRecorder(config, WallClock(), max_pending=10**9, **kw)  # type: ignore[arg-type]
    loop.run_until_complete(recorder.start())
    return recorder


def book() -> OrderBook:
    """A realistic hourly-market book: 20 levels a side on the cent grid."""
    b = OrderBook(TickGrid.for_structure("linear_cent"))
    b.apply_snapshot([(3000 + 100 * i, 500 + i) for i in range(20)], [(2900 + 100 * i, 700 + i) for i in range(20)], 1)
    return b


def _drained(recorder: SessionRecorder) -> None:
    """pedantic setup: empty the buffer every ``buffer_size`` records, as the writer does, so the benchmark
    measures the loop's side with a realistically small buffer (not a million-entry list and its GC)."""
    if len(recorder._buf) >= 1000:
        recorder._buf.clear()


def test_record_call(benchmark: BenchmarkFixture, tmp_path: Path) -> None:
    loop = asyncio.new_event_loop()
    recorder = started(tmp_path, loop)
    recorder.record("trade", MARKET, TRADE)  # the session's first record opens it (once per market)
    benchmark.pedantic(
        recorder.record, ("trade", MARKET, TRADE), setup=lambda: _drained(recorder), rounds=50_000, iterations=1
    )
    recorder._buf.clear()
    loop.run_until_complete(recorder.close())
    loop.close()


def test_record_call_type_disabled(benchmark: BenchmarkFixture, tmp_path: Path) -> None:
    loop = asyncio.new_event_loop()
    config = Recording(output_dir=str(tmp_path / "s"), events={"trades": False})  # type: ignore[arg-type]
    recorder = SessionRecorder(config, WallClock())
    loop.run_until_complete(recorder.start())
    benchmark(recorder.record, "trade", MARKET, TRADE)
    loop.run_until_complete(recorder.close())
    loop.close()


def test_record_quote_generated_with_payload(benchmark: BenchmarkFixture, tmp_path: Path) -> None:
    """The per-cycle record the Market reconciler builds: the payload's construction is on the loop too."""
    loop = asyncio.new_event_loop()
    recorder = started(tmp_path, loop)
    grid = [(0, 10000, 100)]
    quotes = {"yes_bid": (4800, 500), "yes_ask": (5200, 500), "no_bid": (4800, 500), "no_ask": (5200, 500)}

    def quote() -> None:
        recorder.record(
            "quote_generated",
            MARKET,
            {
                "resource": "m1",
                "generation": 3,
                "config_digest": "abc",
                "inputs": {
                    "mid": "0.5000",
                    "inventory_units": 500,
                    "time_to_settlement_s": 1799.5,
                    "volatility": 0.0001,
                    "now_us": 1,
                    "grid": grid,
                },
                "strategy": {"quotes": dict(quotes), "reservation_price": 0.5, "half_spread": 0.02, "skew": 0.0},
                "risk": {"quotes": dict(quotes), "state": "active", "reason": None, "rules": []},
            },
        )

    benchmark.pedantic(quote, setup=lambda: _drained(recorder), rounds=50_000, iterations=1)
    recorder._buf.clear()
    loop.run_until_complete(recorder.close())
    loop.close()


def test_record_book_capture(benchmark: BenchmarkFixture, tmp_path: Path) -> None:
    loop = asyncio.new_event_loop()
    recorder = started(tmp_path, loop)
    live = book()
    recorder.record_book(MARKET, live)
    benchmark.pedantic(
        recorder.record_book, (MARKET, live), setup=lambda: _drained(recorder), rounds=20_000, iterations=1
    )
    recorder._buf.clear()
    loop.run_until_complete(recorder.close())
    loop.close()


def test_sustained_write_rate(benchmark: BenchmarkFixture, tmp_path: Path) -> None:
    """The writer's throughput: 100k trade records and 10k book updates (diffed into book_delta records)
    buffered, then drained by the writer thread — encoded, gzip-compressed, written, closed. The time is the
    drain's; ``records_per_s`` is what the disk side sustains."""
    counter = iter(range(10**9))

    def run() -> tuple[SessionRecorder, float]:
        directory = tmp_path / f"run{next(counter)}"
        config = Recording(output_dir=str(directory))
        recorder = SessionRecorder(config, WallClock(), max_pending=10**9)
        live = book()

        async def go() -> float:
            await recorder.start()
            for i in range(100_000):
                recorder.record("trade", MARKET, TRADE)
                if i % 10 == 0:
                    live.apply_delta(Side.YES, 3000 + 100 * (i % 20), 1, i)
                    recorder.record_book(MARKET, live)
            loop = asyncio.get_running_loop()
            started_at = loop.time()
            await recorder.close()
            return loop.time() - started_at

        return recorder, asyncio.run(go())

    recorder, elapsed = benchmark.pedantic(run, rounds=3, iterations=1)
    written = recorder.records_written
    benchmark.extra_info["records_written"] = written
    benchmark.extra_info["records_per_s"] = round(written / elapsed)
    benchmark.extra_info["bytes_per_record"] = round(recorder.bytes_written / written, 1)
    assert recorder.dropped == 0
    records = read_session(recorder.paths[0])
    assert len(records) == written
