"""Compare a benchmark run against the committed baseline; exit 1 on a regression beyond NFR-602's thresholds.

    python benchmarks/compare.py .benchmarks/latest.json --baseline benchmarks/baseline.json
    python benchmarks/compare.py .benchmarks/latest.json --baseline benchmarks/baseline.json --confirm 2
    python benchmarks/compare.py run1.json run2.json run3.json --baseline benchmarks/baseline.json --update \\
        --note "CI runner, 2 vCPU AMD EPYC, shared"

Inputs are pytest-benchmark JSON files (``--benchmark-json``; with ``--benchmark-save-data`` for p99) or a
baseline written by ``--update``. ``make bench`` and ``make bench-baseline`` drive it; docs/ci.md explains the
thresholds, the normalisation and when to refresh the baseline.

**Thresholds.** NFR-602 gives, per row, a target and a regression threshold — absolute ceilings sized for the
requirement's millisecond budgets: quote generation p50 < 10 ms / > 15 ms, p99 < 50 ms / > 75 ms; book update
p50 < 2 ms / > 5 ms, p99 < 10 ms / > 15 ms; full trading loop p50 < 20 ms / > 30 ms; memory per market < 50 MB /
> 75 MB; startup < 5 s / > 10 s. Our figures are ≈ 30× (start-up) to ≈ 8 000× (a book delta) under the targets,
so the ceilings alone would hardly ever fire. We check them literally on the benchmarks that measure those rows,
*and* apply the requirement's tolerance — threshold ÷ target — to the ratio current ÷ baseline: ×1.5 by default
(five of the seven rows), ×2.5 for the book-update median, ×2 for start-up. p99 is gated where NFR-602 has a p99
row (quote generation, book update; ×1.5) and only when both sides have at least :data:`MIN_ROUNDS_FOR_P99` rounds
(with fewer, the "p99" is the slowest sample or near it); elsewhere it is reported, not gated — on a shared 2-core
machine a p99 measures the neighbours more than the code.

**Normalisation.** Each benchmark's ``extra_info["calibration_s"]`` (benchmarks/calibration.py, timed around it by
benchmarks/conftest.py) says how fast the machine was at that moment; ratios are divided by the ratio of those
figures, so a slow spell on a shared machine (or a slower machine than the baseline's) is not a regression.

**Confirmation.** ``--confirm N`` re-runs only the benchmarks that regressed, up to N more times; a check fails
only if it failed in every attempt (the best attempt counts). A real regression survives re-runs; noise seldom does.

The comparison itself is pure functions over :class:`Entry` values (tests/benchmarks_tooling/test_compare.py); the
CLI at the bottom only reads files, runs pytest for ``--confirm`` and prints.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mm.clock import WallClock, format_rfc3339_us

BASELINE_SCHEMA = "mmctl-benchmark-baseline/1"
CALIBRATION_KEY = "calibration_s"
"""Same key as ``benchmarks.calibration.CALIBRATION_KEY`` (not imported: this file runs as a script)."""

MIN_ROUNDS_FOR_P99 = 1000
"""p99 is gated only when baseline and current both have this many rounds (≥ 10 samples above the p99)."""

DEFAULT_PYTEST_OPTIONS = "--benchmark-only -q --benchmark-warmup=on --benchmark-warmup-iterations=100"
"""As the Makefile's BENCH_OPTS: with warm-up, the iterations per round are calibrated on the fastest call, not on
a first call that happened to be slow (else a sub-µs benchmark sometimes runs 1 iteration a round, sometimes 20,
and its median moves ×2 with the timer overhead)."""

EXTREME_MACHINE_FACTOR = 3.0
"""A calibration ratio beyond ×3 (or under ÷3) means a very different machine: warn, suggest a new baseline."""


class BenchmarkFileError(ValueError):
    """A results or baseline file that cannot be read as one; the message names the file and what is wrong."""


# --------------------------------------------------------------------------- thresholds (NFR-602)


@dataclass(frozen=True)
class FigureGate:
    """A non-time figure from ``extra_info`` (e.g. bytes per market) with its own ratio and absolute ceiling."""

    key: str
    ratio: float
    limit: float | None = None
    unit: str = ""


@dataclass(frozen=True)
class Gate:
    """How one benchmark is judged. Ratios are current ÷ baseline after normalisation; limits are raw and absolute."""

    row: str = "default: NFR-602's p50 tolerance ×1.5; p99 reported, not gated"
    median_ratio: float | None = 1.5
    p99_ratio: float | None = None
    median_limit_s: float | None = None
    p99_limit_s: float | None = None
    figures: tuple[FigureGate, ...] = ()


DEFAULT_GATE = Gate()

_QUOTE = Gate("NFR-602 quote generation", 15 / 10, 75 / 50, median_limit_s=15e-3, p99_limit_s=75e-3)
_BOOK = Gate("NFR-602 book update processing", 5 / 2, 15 / 10, median_limit_s=5e-3, p99_limit_s=15e-3)
_LOOP = Gate("NFR-602 full trading loop", 30 / 20, None, median_limit_s=30e-3)
_STARTUP = Gate("NFR-602 startup time", 10 / 5, None, median_limit_s=10.0)
_MEMORY = Gate(
    "NFR-602 memory per market",
    median_ratio=None,  # the time is the tracemalloc measurement's own, not a figure of ours
    p99_ratio=None,
    figures=(FigureGate("bytes_per_market", 75 / 50, limit=75e6, unit="B"),),
)

NFR_602_GATES: Mapping[str, Gate] = {
    "benchmarks/test_strategy_bench.py::test_quote_default_spec": _QUOTE,
    "benchmarks/test_book_bench.py::test_delta_at_best_level": _BOOK,
    "benchmarks/test_adapter_bench.py::test_delta_frame_to_book": _BOOK,
    "benchmarks/test_controller_bench.py::test_ws_frame_to_order_actions": _LOOP,
    "benchmarks/test_controller_bench.py::test_startup_to_first_quote": _STARTUP,
    "benchmarks/test_controller_bench.py::test_memory_per_market_20_markets": _MEMORY,
}
"""The benchmarks that measure an NFR-602 row (design.md §9 names the same paths); every other one gets the default."""


# --------------------------------------------------------------------------- reading results


@dataclass(frozen=True)
class Entry:
    """One benchmark's figures, as kept in the baseline: seconds per call (median, p99), rounds, calibration."""

    median: float
    p99: float | None
    rounds: int
    calibration: float | None = None
    figures: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Results:
    """A set of entries and where they came from (machine, commit, date) — a run or a baseline."""

    entries: Mapping[str, Entry]
    machine: Mapping[str, Any] = field(default_factory=dict)
    commit: Mapping[str, Any] = field(default_factory=dict)
    created: str = ""
    note: str = ""


def percentile_99(data: Sequence[float]) -> float:
    """The p99 as benchmarks/report.py computes it: the sorted sample at index ⌊0.99·n⌋ (the last one if n < 100)."""
    if not data:
        raise ValueError("no samples")
    ordered = sorted(data)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def _number(value: object, what: str, *, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BenchmarkFileError(f"{what}: expected a number, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise BenchmarkFileError(f"{what}: expected a positive number, got {value!r}")
    return float(value)


def _numeric_figures(extra_info: object) -> dict[str, float]:
    if not isinstance(extra_info, dict):
        return {}
    return {
        key: float(value)
        for key, value in extra_info.items()
        if key != CALIBRATION_KEY and isinstance(value, int | float) and not isinstance(value, bool)
    }


def results_from_pytest_benchmark(report: object, source: str = "results") -> Results:
    """Entries from a pytest-benchmark JSON document; p99 from ``stats.data`` when it was saved, else None."""
    if not isinstance(report, dict) or not isinstance(report.get("benchmarks"), list):
        raise BenchmarkFileError(f"{source}: not a pytest-benchmark JSON file (no 'benchmarks' list)")
    entries: dict[str, Entry] = {}
    for index, bench in enumerate(report["benchmarks"]):
        where = f"{source}: benchmarks[{index}]"
        if not isinstance(bench, dict) or not isinstance(bench.get("fullname"), str):
            raise BenchmarkFileError(f"{where}: no 'fullname'")
        name = bench["fullname"]
        stats = bench.get("stats")
        if not isinstance(stats, dict):
            raise BenchmarkFileError(f"{where} ({name}): no 'stats' (was it run with --benchmark-disable?)")
        median = _number(stats.get("median"), f"{where} ({name}) stats.median")
        data = stats.get("data")
        p99: float | None = None
        if data is not None:
            if not isinstance(data, list) or not data:
                raise BenchmarkFileError(f"{where} ({name}): stats.data is not a non-empty list")
            p99 = percentile_99([_number(x, f"{where} ({name}) stats.data", allow_zero=True) for x in data])
        rounds = stats.get("rounds")
        if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
            raise BenchmarkFileError(f"{where} ({name}): stats.rounds: expected a positive integer, got {rounds!r}")
        extra = bench.get("extra_info") or {}
        calibration = extra.get(CALIBRATION_KEY) if isinstance(extra, dict) else None
        entries[name] = Entry(
            median=median,
            p99=p99,
            rounds=rounds,
            calibration=None if calibration is None else _number(calibration, f"{where} ({name}) {CALIBRATION_KEY}"),
            figures=_numeric_figures(extra),
        )
    commit = report.get("commit_info") if isinstance(report.get("commit_info"), dict) else {}
    machine = report.get("machine_info") if isinstance(report.get("machine_info"), dict) else {}
    return Results(entries, _trim_machine(machine or {}), _trim_commit(commit or {}), str(report.get("datetime", "")))


def results_from_baseline(doc: object, source: str = "baseline") -> Results:
    """Entries from a baseline written by :func:`baseline_document`."""
    if not isinstance(doc, dict) or doc.get("schema") != BASELINE_SCHEMA:
        found = doc.get("schema") if isinstance(doc, dict) else type(doc).__name__
        raise BenchmarkFileError(f"{source}: not a baseline file (schema {found!r}, expected {BASELINE_SCHEMA!r})")
    benchmarks = doc.get("benchmarks")
    if not isinstance(benchmarks, dict):
        raise BenchmarkFileError(f"{source}: 'benchmarks' must be an object keyed by benchmark fullname")
    entries: dict[str, Entry] = {}
    for name, item in benchmarks.items():
        where = f"{source}: benchmarks[{name!r}]"
        if not isinstance(item, dict):
            raise BenchmarkFileError(f"{where}: expected an object")
        p99 = item.get("p99")
        calibration = item.get(CALIBRATION_KEY)
        rounds = item.get("rounds")
        if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
            raise BenchmarkFileError(f"{where}.rounds: expected a positive integer, got {rounds!r}")
        figures = item.get("figures", {})
        if not isinstance(figures, dict):
            raise BenchmarkFileError(f"{where}.figures: expected an object")
        entries[name] = Entry(
            median=_number(item.get("median"), f"{where}.median"),
            p99=None if p99 is None else _number(p99, f"{where}.p99", allow_zero=True),
            rounds=rounds,
            calibration=None if calibration is None else _number(calibration, f"{where}.{CALIBRATION_KEY}"),
            figures={key: _number(value, f"{where}.figures.{key}", allow_zero=True) for key, value in figures.items()},
        )
    return Results(
        entries,
        dict(doc.get("machine") or {}),
        dict(doc.get("commit") or {}),
        str(doc.get("created", "")),
        str(doc.get("note", "")),
    )


def parse_results(doc: object, source: str) -> Results:
    """A baseline (has ``schema``) or a pytest-benchmark report (has a ``benchmarks`` list)."""
    if isinstance(doc, dict) and "schema" in doc:
        return results_from_baseline(doc, source)
    return results_from_pytest_benchmark(doc, source)


def load_results(path: Path) -> Results:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BenchmarkFileError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BenchmarkFileError(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    return parse_results(doc, str(path))


def _trim_machine(info: Mapping[str, Any]) -> dict[str, Any]:
    cpu = info.get("cpu") if isinstance(info.get("cpu"), dict) else {}
    return {
        "node": info.get("node"),
        "system": info.get("system"),
        "release": info.get("release"),
        "machine": info.get("machine"),
        "python": f"{info.get('python_implementation', '?')} {info.get('python_version', '?')}",
        "cpu": (cpu or {}).get("brand_raw"),
        "cpu_count": (cpu or {}).get("count"),
        "cpu_hz": (cpu or {}).get("hz_actual_friendly"),
    }


def _trim_commit(info: Mapping[str, Any]) -> dict[str, Any]:
    return {key: info.get(key) for key in ("id", "branch", "dirty", "time")}


# --------------------------------------------------------------------------- the baseline


def _speed(entry: Entry) -> float:
    """Median relative to the machine's speed at the time (raw median when there is no calibration)."""
    return entry.median / entry.calibration if entry.calibration else entry.median


def merge_runs(runs: Sequence[Results]) -> dict[str, Entry]:
    """One entry per benchmark from several runs: the run with the middle calibrated median (lower middle if even).

    For the baseline: neither the luckiest nor the unluckiest run of a benchmark.
    """
    by_name: dict[str, list[Entry]] = {}
    for run in runs:
        for name, entry in run.entries.items():
            by_name.setdefault(name, []).append(entry)
    return {name: sorted(found, key=_speed)[(len(found) - 1) // 2] for name, found in by_name.items()}


def baseline_document(runs: Sequence[Results], note: str, created: str | None = None) -> dict[str, Any]:
    """The baseline JSON: per benchmark median, p99, rounds, calibration, figures; the machine and commit."""
    if not runs:
        raise ValueError("no runs to make a baseline from")
    entries = merge_runs(runs)
    return {
        "schema": BASELINE_SCHEMA,
        "note": note,
        "created": created or format_rfc3339_us(WallClock().now_us()),  # time from the Clock (design.md §3)
        "commit": dict(runs[0].commit),
        "machine": dict(runs[0].machine),
        "runs": len(runs),
        "benchmarks": {
            name: {
                "median": entry.median,
                "p99": entry.p99,
                "rounds": entry.rounds,
                CALIBRATION_KEY: entry.calibration,
                "figures": dict(entry.figures),
            }
            for name, entry in sorted(entries.items())
        },
    }


# --------------------------------------------------------------------------- the comparison


OK, REGRESSION, NO_BASELINE, REMOVED = "ok", "REGRESSION", "no baseline", "removed"


@dataclass(frozen=True)
class Row:
    """One benchmark's verdict. Ratios are current ÷ baseline, normalised by ``machine`` when it is not None."""

    name: str
    status: str
    baseline: Entry | None = None
    current: Entry | None = None
    machine: float | None = None
    median_ratio: float | None = None
    p99_ratio: float | None = None
    reasons: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    gate: Gate = DEFAULT_GATE
    attempts: int = 0


@dataclass(frozen=True)
class Comparison:
    rows: tuple[Row, ...]
    warnings: tuple[str, ...] = ()

    @property
    def regressions(self) -> tuple[Row, ...]:
        return tuple(row for row in self.rows if row.status == REGRESSION)

    @property
    def failed(self) -> bool:
        return bool(self.regressions)


def machine_factor(baseline: Entry, current: Entry, normalise: bool = True) -> float | None:
    """How much slower the machine was for ``current`` than for ``baseline`` (calibration ratio), if known."""
    if not normalise or not baseline.calibration or not current.calibration:
        return None
    return current.calibration / baseline.calibration


@dataclass(frozen=True)
class _Attempt:
    entry: Entry
    machine: float | None
    median_ratio: float
    p99_ratio: float | None


def _attempt(baseline: Entry, current: Entry, normalise: bool) -> _Attempt:
    factor = machine_factor(baseline, current, normalise)
    scale = factor or 1.0
    p99_ratio = None
    if baseline.p99 and current.p99 is not None and min(baseline.rounds, current.rounds) >= MIN_ROUNDS_FOR_P99:
        p99_ratio = current.p99 / baseline.p99 / scale
    return _Attempt(current, factor, current.median / baseline.median / scale, p99_ratio)


def judge(name: str, baseline: Entry, attempts: Sequence[Entry], gate: Gate, normalise: bool = True) -> Row:
    """The verdict for one benchmark over one or more attempts: each check takes its best attempt."""
    if not attempts:
        raise ValueError("no attempts")
    tried = [_attempt(baseline, entry, normalise) for entry in attempts]
    best = min(tried, key=lambda a: a.median_ratio)
    p99_ratios = [a.p99_ratio for a in tried if a.p99_ratio is not None]
    p99_ratio = min(p99_ratios) if p99_ratios else None
    reasons: list[str] = []
    notes: list[str] = []
    if gate.median_ratio is not None and best.median_ratio > gate.median_ratio:
        reasons.append(f"median ×{best.median_ratio:.2f} > ×{gate.median_ratio:g}")
    if gate.p99_ratio is not None and p99_ratio is not None and p99_ratio > gate.p99_ratio:
        reasons.append(f"p99 ×{p99_ratio:.2f} > ×{gate.p99_ratio:g}")
    if gate.median_limit_s is not None:
        fastest = min(entry.median for entry in attempts)
        if fastest > gate.median_limit_s:
            reasons.append(f"median {format_seconds(fastest)} > NFR-602 limit {format_seconds(gate.median_limit_s)}")
    if gate.p99_limit_s is not None:
        p99s = [entry.p99 for entry in attempts if entry.p99 is not None]
        if p99s and min(p99s) > gate.p99_limit_s:
            reasons.append(f"p99 {format_seconds(min(p99s))} > NFR-602 limit {format_seconds(gate.p99_limit_s)}")
    for figure in gate.figures:
        values = [entry.figures[figure.key] for entry in attempts if figure.key in entry.figures]
        if not values:
            notes.append(f"{figure.key} not reported")
            continue
        value = min(values)
        before = baseline.figures.get(figure.key)
        if before:
            figure_ratio = value / before
            notes.append(f"{figure.key} {value:,.0f} {figure.unit} ×{figure_ratio:.2f}")
            if figure_ratio > figure.ratio:
                reasons.append(f"{figure.key} ×{figure_ratio:.2f} > ×{figure.ratio:g}")
        else:
            notes.append(f"{figure.key} {value:,.0f} {figure.unit}, none in baseline")
        if figure.limit is not None and value > figure.limit:
            reasons.append(f"{figure.key} {value:,.0f} {figure.unit} > NFR-602 limit {figure.limit:,.0f} {figure.unit}")
    if gate.median_ratio is None:
        notes.append("time not gated")
    elif best.median_ratio < 1 / gate.median_ratio:
        notes.append("faster: refresh the baseline?")
    if gate.p99_ratio is not None and p99_ratio is None:
        if baseline.p99 is None or any(entry.p99 is None for entry in attempts):
            notes.append("p99 n/a (no --benchmark-save-data)")
        else:
            notes.append(f"p99 not gated (< {MIN_ROUNDS_FOR_P99} rounds)")
    if best.machine is None and normalise:
        notes.append("not normalised (no calibration)")
    return Row(
        name=name,
        status=REGRESSION if reasons else OK,
        baseline=baseline,
        current=best.entry,
        machine=best.machine,
        median_ratio=best.median_ratio,
        p99_ratio=p99_ratio,
        reasons=tuple(reasons),
        notes=tuple(notes),
        gate=gate,
        attempts=len(attempts),
    )


def compare(
    baseline: Mapping[str, Entry],
    attempts: Sequence[Mapping[str, Entry]],
    gates: Mapping[str, Gate] = NFR_602_GATES,
    default: Gate = DEFAULT_GATE,
    normalise: bool = True,
) -> Comparison:
    """Judge every benchmark of ``attempts[0]`` (a full run; later attempts are re-runs of some) against the baseline.

    A benchmark with no baseline is informational; one in the baseline but not run is a warning, not a failure.
    """
    if not attempts:
        raise ValueError("no results to compare")
    rows: list[Row] = []
    warnings: list[str] = []
    for name in sorted(attempts[0]):
        tries = [attempt[name] for attempt in attempts if name in attempt]
        if name not in baseline:
            rows.append(Row(name, NO_BASELINE, current=tries[0], attempts=len(tries), gate=gates.get(name, default)))
            continue
        rows.append(judge(name, baseline[name], tries, gates.get(name, default), normalise))
    for name in sorted(set(baseline) - set(attempts[0])):
        rows.append(Row(name, REMOVED, baseline=baseline[name], gate=gates.get(name, default)))
        warnings.append(f"{name}: in the baseline but not in this run (removed or renamed? refresh the baseline)")
    factors = [row.machine for row in rows if row.machine is not None]
    if factors:
        typical = statistics.median(factors)
        if not 1 / EXTREME_MACHINE_FACTOR <= typical <= EXTREME_MACHINE_FACTOR:
            warnings.append(
                f"this machine ran the calibration ×{typical:.2f} the baseline's time: a very different machine; "
                "ratios are normalised but less trustworthy — refresh the baseline on the machine that gates"
            )
    return Comparison(tuple(rows), tuple(warnings))


def machine_warnings(baseline: Results, current: Results) -> list[str]:
    """Differences between the baseline's machine and this one that make a comparison approximate."""
    found = []
    for key in ("python", "cpu", "cpu_count", "system"):
        before, now = baseline.machine.get(key), current.machine.get(key)
        if before is not None and now is not None and before != now:
            found.append(f"machine differs from the baseline's: {key} {before!r} → {now!r}")
    return found


# --------------------------------------------------------------------------- output


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.3f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.3f} ms"
    return f"{seconds:.3f} s"


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"×{value:.2f}"


def _short(name: str) -> str:
    return name.removeprefix("benchmarks/").replace("_bench.py::", "::").removeprefix("test_")


def render(comparison: Comparison, normalise: bool = True) -> str:
    """The table (benchmark, baseline/current median, ratio, baseline/current p99, ratio, machine, verdict)."""
    width = max([len(_short(row.name)) for row in comparison.rows] + [9])
    header = (
        f"{'benchmark':{width}s} {'base median':>12s} {'median':>12s} {'ratio':>6s} "
        f"{'base p99':>12s} {'p99':>12s} {'ratio':>6s} {'machine':>7s}  verdict"
    )
    lines = [header, "-" * len(header)]
    for row in comparison.rows:
        base, cur = row.baseline, row.current
        if row.status == REGRESSION:
            verdict = "REGRESSION: " + "; ".join(row.reasons)
            if row.gate.row.startswith("NFR-602"):
                verdict += f" [{row.gate.row}]"
        elif row.status == OK:
            verdict = "ok"
        else:
            verdict = row.status
        extra = list(row.notes)
        if row.attempts > 1:
            extra.append(f"best of {row.attempts}")
        if extra:
            verdict += f" ({'; '.join(extra)})"
        lines.append(
            f"{_short(row.name):{width}s} {format_seconds(base.median if base else None):>12s} "
            f"{format_seconds(cur.median if cur else None):>12s} {_ratio(row.median_ratio):>6s} "
            f"{format_seconds(base.p99 if base else None):>12s} {format_seconds(cur.p99 if cur else None):>12s} "
            f"{_ratio(row.p99_ratio):>6s} {_ratio(row.machine):>7s}  {verdict}"
        )
    counts = {status: sum(row.status == status for row in comparison.rows) for status in (OK, REGRESSION)}
    counts[NO_BASELINE] = sum(row.status == NO_BASELINE for row in comparison.rows)
    counts[REMOVED] = sum(row.status == REMOVED for row in comparison.rows)
    lines.append("")
    lines.append(
        "ratios: current ÷ baseline"
        + (", divided by 'machine' (calibration ratio: how much slower the machine was)" if normalise else ", raw")
    )
    lines.append(
        f"{counts[OK]} ok, {counts[REGRESSION]} regressed, {counts[NO_BASELINE]} without baseline, "
        f"{counts[REMOVED]} removed"
    )
    lines.extend(f"warning: {warning}" for warning in comparison.warnings)
    return "\n".join(lines)


# --------------------------------------------------------------------------- CLI


def _rerun(names: Iterable[str], out: Path, pytest_command: Sequence[str]) -> Results:
    """Run only ``names`` again (pytest node ids are the fullnames) into ``out``."""
    command = [*pytest_command, *names, f"--benchmark-json={out}", "--benchmark-save-data"]
    _out(f"$ {' '.join(command)}")
    completed = subprocess.run(command, check=False, stdout=subprocess.DEVNULL)
    if completed.returncode != 0:
        raise BenchmarkFileError(f"re-run failed (pytest exit {completed.returncode}): {' '.join(command)}")
    return load_results(out)


def _out(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Compare pytest-benchmark results against benchmarks/baseline.json (NFR-602 thresholds)."
    )
    parser.add_argument("results", nargs="+", type=Path, help="pytest-benchmark JSON file(s); several: best of")
    parser.add_argument("--baseline", type=Path, default=Path("benchmarks/baseline.json"))
    parser.add_argument("--update", action="store_true", help="write the baseline from the results instead")
    parser.add_argument("--note", default="", help="with --update: the machine and circumstances, kept in the file")
    parser.add_argument("--no-normalise", dest="normalise", action="store_false", help="compare raw timings")
    parser.add_argument("--confirm", type=int, default=0, metavar="N", help="re-run regressed benchmarks ≤ N times")
    parser.add_argument(
        "--pytest",
        default=f"{sys.executable} -m pytest {DEFAULT_PYTEST_OPTIONS}",
        help="pytest command and options for --confirm's re-runs (make bench passes its own)",
    )
    args = parser.parse_args(argv)
    try:
        runs = [load_results(path) for path in args.results]
        if args.update:
            document = baseline_document(runs, args.note)
            args.baseline.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
            _out(f"wrote {args.baseline}: {len(document['benchmarks'])} benchmarks from {len(runs)} run(s)")
            _out("commit it with the note of the machine it was measured on (docs/ci.md)")
            return 0
        baseline = load_results(args.baseline)
        attempts = [run.entries for run in runs]
        comparison = compare(baseline.entries, attempts, normalise=args.normalise)
        for attempt in range(args.confirm):
            if not comparison.failed:
                break
            regressed = [row.name for row in comparison.regressions]
            _out(f"attempt {attempt + 1}: {len(regressed)} regressed; re-running them to confirm:")
            _out("".join(f"  {_short(row.name)}: {'; '.join(row.reasons)}\n" for row in comparison.regressions))
            out = args.results[0].with_name(f"{args.results[0].stem}.confirm{attempt + 1}.json")
            attempts.append(_rerun(regressed, out, args.pytest.split()).entries)
            comparison = compare(baseline.entries, attempts, normalise=args.normalise)
    except BenchmarkFileError as exc:
        sys.stderr.write(f"compare.py: error: {exc}\n")
        return 2
    _out(
        f"baseline: {args.baseline} ({baseline.created}, commit {str(baseline.commit.get('id', '?'))[:10]}"
        f"{'; ' + baseline.note if baseline.note else ''})"
    )
    _out(render(comparison, args.normalise))
    for warning in machine_warnings(baseline, runs[0]):
        _out(f"warning: {warning}")
    if comparison.failed:
        _out(f"\nFAIL: {len(comparison.regressions)} benchmark(s) regressed beyond NFR-602's thresholds")
        return 1
    _out("\nPASS: no regression beyond NFR-602's thresholds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
