"""Tests of benchmarks/compare.py: the regression gate of ``make bench`` (NFR-602), on synthetic results.

No timing here: every figure is made up, so these tests say what the gate decides, never how fast anything is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks.calibration import CALIBRATION_KEY as CONFTEST_KEY
from benchmarks.compare import (
    BASELINE_SCHEMA,
    CALIBRATION_KEY,
    DEFAULT_GATE,
    MIN_ROUNDS_FOR_P99,
    NFR_602_GATES,
    NO_BASELINE,
    OK,
    REGRESSION,
    REMOVED,
    BenchmarkFileError,
    Entry,
    Gate,
    baseline_document,
    compare,
    judge,
    load_results,
    main,
    merge_runs,
    parse_results,
    percentile_99,
    results_from_baseline,
    results_from_pytest_benchmark,
)

QUOTE = "benchmarks/test_strategy_bench.py::test_quote_default_spec"
BOOK = "benchmarks/test_book_bench.py::test_delta_at_best_level"
STARTUP = "benchmarks/test_controller_bench.py::test_startup_to_first_quote"
MEMORY = "benchmarks/test_controller_bench.py::test_memory_per_market_20_markets"
PLAIN = "benchmarks/test_price_bench.py::test_price_from_units"
REPO = Path(__file__).resolve().parents[2]


def bench(
    name: str,
    median: float,
    *,
    rounds: int = 2000,
    data: list[float] | None = None,
    calibration: float | None = 10e-6,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One benchmark as pytest-benchmark writes it (only the fields compare.py reads, plus some it ignores)."""
    extra_info: dict[str, Any] = dict(extra or {})
    if calibration is not None:
        extra_info[CALIBRATION_KEY] = calibration
    stats: dict[str, Any] = {"median": median, "rounds": rounds, "min": median / 2, "iterations": 1}
    if data is not None:
        stats["data"] = data
    return {"name": name.split("::")[1], "fullname": name, "group": None, "extra_info": extra_info, "stats": stats}


def report(*benches: dict[str, Any]) -> dict[str, Any]:
    return {
        "machine_info": {"node": "ci", "python_implementation": "CPython", "python_version": "3.11.7", "cpu": {}},
        "commit_info": {"id": "abc123", "branch": "main", "dirty": False, "time": "2026-12-07T12:00:00+00:00"},
        "datetime": "2026-12-07T12:00:00+00:00",
        "version": "5.1.0",
        "benchmarks": list(benches),
    }


def entry(median: float, p99: float | None = None, rounds: int = 2000, calibration: float | None = 10e-6) -> Entry:
    return Entry(median=median, p99=p99, rounds=rounds, calibration=calibration)


def samples(median: float, p99: float, n: int = 2000) -> list[float]:
    """``n`` samples whose median is ``median`` and whose p99 (report.py's rule) is ``p99``."""
    tail = n - int(n * 0.99)
    return [median] * (n - tail) + [p99] * tail


# --------------------------------------------------------------------------- reading


def test_p99_follows_report_py() -> None:
    assert percentile_99([float(x) for x in range(1, 201)]) == 199.0  # sorted[int(200 * 0.99)] = sorted[198]
    assert percentile_99([3.0, 1.0, 2.0]) == 3.0  # fewer than 100 samples: the slowest
    with pytest.raises(ValueError, match="no samples"):
        percentile_99([])


def test_reads_median_p99_rounds_calibration_and_numeric_figures() -> None:
    doc = report(
        bench(QUOTE, 12e-6, data=samples(12e-6, 30e-6), extra={"events": 5, "label": "x"}),
        bench(PLAIN, 1e-6, calibration=None),
    )
    results = results_from_pytest_benchmark(doc)
    quote = results.entries[QUOTE]
    assert (quote.median, quote.p99, quote.rounds, quote.calibration) == (12e-6, 30e-6, 2000, 10e-6)
    assert quote.figures == {"events": 5.0}  # strings and the calibration itself are not figures
    assert results.entries[PLAIN].p99 is None  # run without --benchmark-save-data
    assert results.entries[PLAIN].calibration is None
    assert results.commit["id"] == "abc123"
    assert results.machine["python"] == "CPython 3.11.7"


def test_the_calibration_key_is_the_one_conftest_writes() -> None:
    assert CALIBRATION_KEY == CONFTEST_KEY


# --------------------------------------------------------------------------- verdicts


def test_no_regression_passes() -> None:
    baseline = {PLAIN: entry(1e-6), QUOTE: entry(12e-6, p99=30e-6)}
    current = {PLAIN: entry(1.3e-6), QUOTE: entry(11e-6, p99=40e-6)}
    comparison = compare(baseline, [current])
    assert not comparison.failed
    assert [row.status for row in comparison.rows] == [OK, OK]
    assert comparison.rows[0].median_ratio == pytest.approx(1.3)


def test_a_median_beyond_the_default_tolerance_fails() -> None:
    assert DEFAULT_GATE.median_ratio == 1.5  # NFR-602: 15 ms / 10 ms, 30 / 20, 75 / 50 ...
    comparison = compare({PLAIN: entry(1e-6)}, [{PLAIN: entry(1.6e-6)}])
    assert comparison.failed
    (row,) = comparison.regressions
    assert row.name == PLAIN
    assert row.reasons == ("median ×1.60 > ×1.5",)
    assert not compare({PLAIN: entry(1e-6)}, [{PLAIN: entry(1.49e-6)}]).failed


def test_book_update_median_has_the_requirements_wider_tolerance() -> None:
    # NFR-602: book update processing p50 target < 2 ms, regression > 5 ms: ×2.5
    assert NFR_602_GATES[BOOK].median_ratio == 2.5
    assert not compare({BOOK: entry(1e-6)}, [{BOOK: entry(2.4e-6)}]).failed
    assert compare({BOOK: entry(1e-6)}, [{BOOK: entry(2.6e-6)}]).failed


def test_p99_regression_fails_on_a_p99_row() -> None:
    baseline = {QUOTE: entry(12e-6, p99=30e-6)}
    comparison = compare(baseline, [{QUOTE: entry(12e-6, p99=46e-6)}])
    (row,) = comparison.regressions
    assert row.reasons == ("p99 ×1.53 > ×1.5",)
    assert not compare(baseline, [{QUOTE: entry(12e-6, p99=44e-6)}]).failed


def test_p99_is_not_gated_with_few_rounds_or_outside_the_p99_rows() -> None:
    few = MIN_ROUNDS_FOR_P99 - 1
    row = compare({QUOTE: entry(12e-6, p99=30e-6, rounds=few)}, [{QUOTE: entry(12e-6, p99=90e-6)}]).rows[0]
    assert row.status == OK
    assert row.p99_ratio is None
    assert any("not gated" in note for note in row.notes)
    # a benchmark outside NFR-602's p99 rows: the p99 is reported, not gated
    row = compare({PLAIN: entry(1e-6, p99=2e-6)}, [{PLAIN: entry(1e-6, p99=9e-6)}]).rows[0]
    assert row.status == OK


def test_normalisation_forgives_a_uniformly_slower_machine() -> None:
    baseline = {PLAIN: entry(1e-6, calibration=10e-6), QUOTE: entry(12e-6, p99=30e-6, calibration=10e-6)}
    slower = {PLAIN: entry(2e-6, calibration=20e-6), QUOTE: entry(24e-6, p99=60e-6, calibration=20e-6)}
    comparison = compare(baseline, [slower])
    assert not comparison.failed
    assert [row.machine for row in comparison.rows] == [2.0, 2.0]
    assert [row.median_ratio for row in comparison.rows] == [1.0, 1.0]
    raw = compare(baseline, [slower], normalise=False)
    assert len(raw.regressions) == 2


def test_normalisation_does_not_hide_a_regression_of_our_code() -> None:
    # the machine was 1.2× slower, the benchmark 2× slower: ×1.67 after normalisation
    comparison = compare({PLAIN: entry(1e-6, calibration=10e-6)}, [{PLAIN: entry(2e-6, calibration=12e-6)}])
    assert comparison.failed
    assert comparison.rows[0].median_ratio == pytest.approx(2 / 1.2)


def test_without_calibration_the_comparison_is_raw_and_says_so() -> None:
    row = compare({PLAIN: entry(1e-6, calibration=None)}, [{PLAIN: entry(1.2e-6, calibration=15e-6)}]).rows[0]
    assert row.machine is None
    assert row.median_ratio == pytest.approx(1.2)
    assert "not normalised (no calibration)" in row.notes


def test_a_very_different_machine_is_warned_about() -> None:
    comparison = compare({PLAIN: entry(1e-6, calibration=10e-6)}, [{PLAIN: entry(4e-6, calibration=40e-6)}])
    assert not comparison.failed
    assert any("very different machine" in warning for warning in comparison.warnings)


def test_requirement_ceilings_apply_to_the_rows_benchmarks() -> None:
    # quote generation p50 over 15 ms fails even when the baseline was as slow (ratio ×1)
    comparison = compare({QUOTE: entry(16e-3)}, [{QUOTE: entry(16e-3)}])
    assert comparison.regressions[0].reasons == ("median 16.000 ms > NFR-602 limit 15.000 ms",)
    assert compare({STARTUP: entry(11.0, rounds=3)}, [{STARTUP: entry(11.0, rounds=3)}]).failed  # > 10 s
    assert not compare({STARTUP: entry(1.0, rounds=3)}, [{STARTUP: entry(1.9, rounds=3)}]).failed  # ×2 allowed


def test_memory_per_market_is_judged_on_its_figure_not_its_time() -> None:
    def memory(seconds: float, per_market: float) -> Entry:
        return Entry(median=seconds, p99=seconds, rounds=1, calibration=10e-6, figures={"bytes_per_market": per_market})

    baseline = {MEMORY: memory(15.0, 60_000)}
    assert not compare(baseline, [{MEMORY: memory(45.0, 70_000)}]).failed  # 3× the time: not gated
    row = compare(baseline, [{MEMORY: memory(15.0, 100_000)}]).regressions[0]
    assert row.reasons == ("bytes_per_market ×1.67 > ×1.5",)
    over = compare({MEMORY: memory(15.0, 60e6)}, [{MEMORY: memory(15.0, 80e6)}]).regressions[0]
    assert "bytes_per_market 80,000,000 B > NFR-602 limit 75,000,000 B" in over.reasons


def test_new_benchmarks_are_informational_and_removed_ones_warn() -> None:
    comparison = compare({PLAIN: entry(1e-6), "benchmarks/old.py::test_gone": entry(1e-6)}, [{QUOTE: entry(1e-6)}])
    assert not comparison.failed
    statuses = {row.name: row.status for row in comparison.rows}
    assert statuses == {QUOTE: NO_BASELINE, PLAIN: REMOVED, "benchmarks/old.py::test_gone": REMOVED}
    assert len(comparison.warnings) == 2
    assert all("in the baseline but not in this run" in warning for warning in comparison.warnings)


def test_a_regression_must_survive_every_attempt() -> None:
    baseline = {PLAIN: entry(1e-6), QUOTE: entry(12e-6)}
    first = {PLAIN: entry(2e-6), QUOTE: entry(24e-6)}
    rerun = {PLAIN: entry(1.1e-6), QUOTE: entry(25e-6)}  # PLAIN was noise, QUOTE was real
    comparison = compare(baseline, [first, rerun])
    assert [row.name for row in comparison.regressions] == [QUOTE]
    assert all(row.attempts == 2 for row in comparison.rows)
    passed = next(row for row in comparison.rows if row.name == PLAIN)
    assert passed.current == rerun[PLAIN]  # the best attempt is the one shown


def test_judge_with_a_custom_gate() -> None:
    gate = Gate("test", median_ratio=1.1, p99_ratio=None)
    assert judge(PLAIN, entry(1e-6), [entry(1.2e-6)], gate).status == REGRESSION
    with pytest.raises(ValueError, match="no attempts"):
        judge(PLAIN, entry(1e-6), [], gate)


# --------------------------------------------------------------------------- the baseline file


def test_baseline_round_trips_and_keeps_machine_and_commit() -> None:
    run = results_from_pytest_benchmark(
        report(
            bench(QUOTE, 12e-6, data=samples(12e-6, 30e-6)),
            bench(MEMORY, 15.0, rounds=1, extra={"bytes_per_market": 6e4}),
        )
    )
    document = baseline_document([run], note="CI runner", created="2026-12-07T12:00:00+00:00")
    assert document["schema"] == BASELINE_SCHEMA
    assert document["note"] == "CI runner"
    assert document["commit"]["id"] == "abc123"
    back = parse_results(json.loads(json.dumps(document)), "baseline")
    assert back.entries == run.entries
    assert back.note == "CI runner"


def test_baseline_from_several_runs_takes_each_benchmarks_middle_run() -> None:
    runs = [
        results_from_pytest_benchmark(report(bench(PLAIN, median, calibration=calibration)))
        for median, calibration in ((1.0e-6, 10e-6), (3.0e-6, 10e-6), (4.0e-6, 20e-6))
    ]
    # medians relative to the calibration: 0.1, 0.3, 0.2 → the middle is the 3rd run, though not the middle median
    assert merge_runs(runs)[PLAIN].median == 4.0e-6
    assert merge_runs(runs[:2])[PLAIN].median == 1.0e-6  # even count: the lower middle


def test_the_committed_baseline_is_valid_and_has_every_nfr_602_benchmark() -> None:
    baseline = load_results(REPO / "benchmarks" / "baseline.json")
    missing = set(NFR_602_GATES) - set(baseline.entries)
    assert not missing, f"NFR_602_GATES names benchmarks the baseline lacks (renamed?): {sorted(missing)}"
    assert baseline.machine.get("cpu_count")


# --------------------------------------------------------------------------- malformed input


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([], "not a pytest-benchmark JSON file"),
        ({"benchmarks": {}}, "not a pytest-benchmark JSON file"),
        ({"benchmarks": [{"name": "x"}]}, r"benchmarks\[0\]: no 'fullname'"),
        ({"benchmarks": [{"fullname": PLAIN}]}, "no 'stats'"),
        ({"benchmarks": [{"fullname": PLAIN, "stats": {"median": "fast", "rounds": 1}}]}, "stats.median"),
        ({"benchmarks": [{"fullname": PLAIN, "stats": {"median": -1.0, "rounds": 1}}]}, "positive number"),
        ({"benchmarks": [{"fullname": PLAIN, "stats": {"median": 1.0, "rounds": 0}}]}, "stats.rounds"),
        ({"benchmarks": [{"fullname": PLAIN, "stats": {"median": 1.0, "rounds": 1, "data": []}}]}, "stats.data"),
        ({"schema": "something-else/1", "benchmarks": {}}, "not a baseline file"),
        ({"schema": BASELINE_SCHEMA, "benchmarks": []}, "object keyed by benchmark fullname"),
        ({"schema": BASELINE_SCHEMA, "benchmarks": {PLAIN: {"median": 1.0}}}, "rounds"),
    ],
)
def test_malformed_input_is_a_clear_error(doc: object, message: str) -> None:
    with pytest.raises(BenchmarkFileError, match=message):
        parse_results(doc, "some.json")


def test_results_from_baseline_rejects_a_pytest_benchmark_file() -> None:
    with pytest.raises(BenchmarkFileError, match="not a baseline file"):
        results_from_baseline(report(), "latest.json")


def test_unreadable_and_invalid_json_files_name_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "latest.json"
    broken.write_text('{"benchmarks": [', encoding="utf-8")
    with pytest.raises(BenchmarkFileError, match=r"latest\.json: not valid JSON: .* line 1"):
        load_results(broken)
    with pytest.raises(BenchmarkFileError, match="cannot read"):
        load_results(tmp_path / "absent.json")


# --------------------------------------------------------------------------- the CLI


def _write(path: Path, doc: object) -> Path:
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def test_cli_update_then_pass_then_fail(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    baseline = tmp_path / "baseline.json"
    first = _write(tmp_path / "first.json", report(bench(PLAIN, 1e-6), bench(QUOTE, 12e-6, data=samples(12e-6, 30e-6))))
    assert main([str(first), "--baseline", str(baseline), "--update", "--note", "test box"]) == 0
    assert json.loads(baseline.read_text())["note"] == "test box"

    same = _write(tmp_path / "same.json", report(bench(PLAIN, 1.1e-6), bench(QUOTE, 12e-6, data=samples(12e-6, 31e-6))))
    assert main([str(same), "--baseline", str(baseline)]) == 0
    out = capsys.readouterr().out
    assert "base median" in out and "verdict" in out and "PASS" in out

    slower = _write(tmp_path / "slow.json", report(bench(PLAIN, 2e-6), bench(QUOTE, 12e-6, data=samples(12e-6, 31e-6))))
    assert main([str(slower), "--baseline", str(baseline)]) == 1
    out = capsys.readouterr().out
    assert "REGRESSION: median ×2.00 > ×1.5" in out and "FAIL: 1 benchmark(s)" in out

    # two attempts given on the command line: the best one counts
    assert main([str(slower), str(same), "--baseline", str(baseline)]) == 0


def test_cli_malformed_input_exits_2_with_the_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = _write(tmp_path / "latest.json", {"benchmarks": [{"fullname": PLAIN}]})
    baseline = _write(tmp_path / "baseline.json", {"schema": BASELINE_SCHEMA, "benchmarks": {}})
    assert main([str(bad), "--baseline", str(baseline)]) == 2
    err = capsys.readouterr().err
    assert "compare.py: error:" in err and "latest.json" in err and "no 'stats'" in err
