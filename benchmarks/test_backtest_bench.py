"""Backtest benchmarks (FR-903: an hour in < 10 s; design.md §9: one market, quotes recomputed on every mid
change, target >= 500k book events/s).

The busy hour is synthetic (:mod:`mm.backtest.synthetic`, seeded): 100k market-data events in an hour, ~6% of
them moving the mid, ~6% trades — the mix of a recorded simulator session, ten times as dense. Every re-plan
runs the node's strategy, risk engine and order planner and the paper adapter, as the live node would.
``events_per_s`` in each benchmark's extra info is events / that round's time; ``make bench`` prints medians.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from mm.backtest.config import backtest_config
from mm.backtest.engine import run_backtest
from mm.backtest.report import build_report
from mm.backtest.synthetic import write_synthetic_session
from mm.backtest.tape import SessionTape, load_tape

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = next((ROOT / "examples" / "sessions").glob("*.jsonl.gz"))


# The conservative preset with a tight fixed spread: its quotes reach the top of the synthetic book, so the
# run pays for fills, amends and the risk rules (a wide preset would sit behind the book and never trade).
BENCH_STRATEGY = {
    "preset": "conservative",
    "components": {"spread": {"type": "fixed", "params": {"base_spread": "0.02"}}},
}


@pytest.fixture(scope="module")
def busy_hour(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bench") / "busy.jsonl.gz"
    return write_synthetic_session(path, events=100_000, seconds=3600, strategy=BENCH_STRATEGY)


@pytest.fixture(scope="module")
def busy_tape(busy_hour: Path) -> SessionTape:
    return load_tape(busy_hour)


@pytest.mark.parametrize("mode", ["pessimistic", "optimistic", "probabilistic"])
def test_backtest_busy_hour_preloaded(benchmark: BenchmarkFixture, busy_tape: SessionTape, mode: str) -> None:
    """The engine alone: the tape is decoded once (as for every point of a sweep)."""
    config = backtest_config(busy_tape, fill_model=mode)
    result = benchmark.pedantic(run_backtest, (busy_tape, config), rounds=3, iterations=1, warmup_rounds=0)
    stats = benchmark.stats
    seconds = stats.stats.median if stats is not None else 0.0
    benchmark.extra_info.update(
        events=busy_tape.events,
        events_per_s=round(busy_tape.events / seconds) if seconds else None,
        strategy_runs=result.strategy_runs,
        plans=result.plans,
        fills=len(result.fills),
    )
    assert result.events == busy_tape.events and result.strategy_runs > 3_600


def test_backtest_busy_hour_from_the_file(benchmark: BenchmarkFixture, busy_hour: Path) -> None:
    """What `mmctl backtest` does: read and decode the session file, backtest, build the report."""

    def whole() -> int:
        tape = load_tape(busy_hour)
        build_report(run_backtest(tape, backtest_config(tape)))
        return tape.events

    events = benchmark.pedantic(whole, rounds=3, iterations=1, warmup_rounds=0)
    assert events >= 100_000


def test_load_busy_hour(benchmark: BenchmarkFixture, busy_hour: Path) -> None:
    """Decoding alone (validated records → tape), for the split of the end-to-end time."""
    tape = benchmark.pedantic(load_tape, (busy_hour,), rounds=3, iterations=1, warmup_rounds=0)
    assert tape.events >= 100_000


def test_backtest_recorded_example(benchmark: BenchmarkFixture) -> None:
    """The committed real recording (15 minutes of one simulator market, sparse)."""
    tape = load_tape(EXAMPLE)
    config = backtest_config(tape, fill_model="probabilistic")
    result = benchmark.pedantic(run_backtest, (tape, config), rounds=5, iterations=1, warmup_rounds=1)
    assert result.strategy_runs > 0
