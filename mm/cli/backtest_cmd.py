"""``mmctl backtest FILE`` and ``mmctl sweep FILE --grid ...``: strategies evaluated on recorded sessions (FR-903).

``backtest`` runs the recorded Market's strategy — or a changed Strategy / RiskPolicy from ``-f`` files — on a
session's market data with simulated fills and prints the FR-903 report (text, JSON or CSV; ``--html`` also
writes the report with plots). ``--calibrate`` instead measures how well each fill model would have predicted
the session's real fills (ghost mode, :mod:`mm.backtest.calibrate`). ``sweep`` backtests a grid of parameter
values in parallel processes and ranks them.

Exit codes: 0 done; 1 a file that cannot be read (its line number, never a traceback) or a configuration that
does not validate; 2 usage errors.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mm.backtest.config import DEFAULT_FILL_MODE, FILL_MODES, backtest_config, make_fill_model
from mm.backtest.engine import run_backtest
from mm.backtest.report import CSV_FIELDS, build_report
from mm.backtest.sweep import SweepResult, grid_points, parse_axis, run_sweep, sort_results
from mm.backtest.tape import load_tape
from mm.cli.exit_codes import ExitCode
from mm.cli.spec_files import load_strategy_and_policy
from mm.recording.format import SessionFormatError

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

_SETTLE = {"yes": 10_000, "no": 0}
_TABLE_FIGURES = (
    "net_pnl",
    "fees",
    "total_trades",
    "win_rate",
    "sharpe_hourly",
    "max_drawdown",
    "max_long",
    "max_short",
)
"""The figures the sweep table shows (every figure is in the CSV / JSON export)."""
_MONEY = frozenset({"net_pnl", "gross_pnl", "fees", "max_drawdown", "realized_pnl", "unrealized_pnl", "avg_spread"})


def _choice(value: str, option: str, allowed: Iterable[str]) -> None:
    """A usage error (exit 2) unless ``value`` is one of ``allowed``."""
    choices = list(allowed)
    if value not in choices:
        raise typer.BadParameter(f"must be one of {', '.join(choices)}, not {value!r}", param_hint=option)


def _seconds(value: str, option: str) -> Decimal:
    """A number of seconds given as text, read exactly (a usage error when it is not a finite number)."""
    try:
        seconds = Decimal(value)
    except InvalidOperation:
        raise typer.BadParameter(f"must be a number of seconds, not {value!r}", param_hint=option) from None
    if not seconds.is_finite():
        raise typer.BadParameter(f"must be a finite number of seconds, not {value!r}", param_hint=option)
    return seconds


def _settlement(value: str | None) -> int | None:
    """``--settle yes|no`` → the YES value in $0.0001; None when not given (a usage error when invalid)."""
    if value is None:
        return None
    if value not in _SETTLE:
        raise typer.BadParameter(f"must be yes or no (the market's result), not {value!r}", param_hint="--settle")
    return _SETTLE[value]


def backtest(
    file: Annotated[str, typer.Argument(help="A session file (.jsonl.gz or .jsonl) recorded by the node.")],
    filename: Annotated[
        list[str] | None,
        typer.Option("--filename", "-f", help="A Strategy and/or RiskPolicy to run instead of the recorded ones."),
    ] = None,
    fill_model: Annotated[
        str,
        typer.Option(
            "--fill-model", help="probabilistic (default, seeded), optimistic or pessimistic (or a paper model name)."
        ),
    ] = DEFAULT_FILL_MODE,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the probabilistic fill model.")] = 0,
    output: Annotated[str, typer.Option("--output", "-o", help="text, json or csv.")] = "text",
    html: Annotated[Path | None, typer.Option("--html", help="Also write the report with plots to this file.")] = None,
    market: Annotated[
        str | None, typer.Option("--market", help="The recorded Market to backtest (default: the first).")
    ] = None,
    settle: Annotated[
        str | None, typer.Option("--settle", help="Settle the final position as if the market resolved yes or no.")
    ] = None,
    requote_interval: Annotated[
        str, typer.Option("--requote-interval", help="Re-plan at least this often, seconds of recorded time.")
    ] = "1",
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Skip unreadable lines instead of stopping.")] = False,
    calibrate: Annotated[
        bool,
        typer.Option("--calibrate", help="Ghost mode: how well each fill model predicts the session's real fills."),
    ] = False,
    window: Annotated[
        str, typer.Option("--window", help="--calibrate: seconds within which a simulated fill matches a real one.")
    ] = "5",
) -> int:
    """Backtest a strategy on a recorded session (FR-903) and print the report; or, with --calibrate, measure the
    fill models against the session's real fills."""
    _choice(output, "--output", ("text", "json") if calibrate else ("text", "json", "csv"))
    _choice(fill_model, "--fill-model", FILL_MODES)
    settlement = _settlement(settle)
    try:
        if calibrate:
            return _calibrate(file, output, seed, _seconds(window, "--window"), skip_bad)
        strategy, risk = load_strategy_and_policy(filename) if filename else (None, None)
        tape = load_tape(file, skip_bad=skip_bad)
        config = backtest_config(
            tape,
            market=market,
            strategy=strategy,
            risk_policy=risk,
            fill_model=fill_model,
            seed=seed,
            requote_interval_s=_seconds(requote_interval, "--requote-interval"),
            settlement_value_units=settlement,
        )
        result = run_backtest(tape, config)
    except SessionFormatError as exc:
        err.print(f"error: cannot read the session: {exc}", markup=False)
        return ExitCode.ERROR
    report = build_report(result)
    if tape.bad_lines:
        err.print(f"warning: {len(tape.bad_lines)} unreadable line(s) skipped (first: line {tape.bad_lines[0][0]})")
    if output == "json":
        sys.stdout.write(json.dumps(report.to_json(), indent=2) + "\n")
    elif output == "csv":
        sys.stdout.write(report.to_csv())
    else:
        out.print(report.to_text(), markup=False)
    if html is not None:
        from mm.backtest.html_report import write_html  # noqa: PLC0415 - only when asked for

        write_html(html, result, report)
        err.print(f"wrote {html}", markup=False)
    return ExitCode.OK


def _calibrate(file: str, output: str, seed: int, window_s: Decimal, skip_bad: bool) -> int:
    """Every backtest fill mode (and the paper models they stand on) as a ghost beside the real orders."""
    from mm.backtest.calibrate import calibrate as run_calibration  # noqa: PLC0415 - ghost mode only

    modes = ("optimistic", "probabilistic", "pessimistic", "queue", "cross")
    factories = {mode: (lambda s, m=mode: make_fill_model(m, s)) for mode in modes}
    try:
        report = run_calibration(
            file, models=modes, window_s=float(window_s), seed=seed, skip_bad=skip_bad, factories=factories
        )
    except (FileNotFoundError, ValueError) as exc:
        if isinstance(exc, SessionFormatError):
            raise
        err.print(f"error: cannot calibrate: {exc}", markup=False)
        return ExitCode.ERROR
    if output == "json":
        sys.stdout.write(json.dumps(report.to_json(), indent=2) + "\n")
    else:
        out.print(report.describe(), markup=False)
    return ExitCode.OK


def sweep(
    file: Annotated[str, typer.Argument(help="A session file (.jsonl.gz or .jsonl) recorded by the node.")],
    grid: Annotated[
        list[str],
        typer.Option("--grid", help="NAME=V1,V2,...: a parameter and its values (repeatable; e.g. gamma=0.05,0.1)."),
    ],
    filename: Annotated[
        list[str] | None, typer.Option("--filename", "-f", help="The base Strategy / RiskPolicy (default: recorded).")
    ] = None,
    fill_model: Annotated[
        str, typer.Option("--fill-model", help="probabilistic (default), optimistic or pessimistic.")
    ] = DEFAULT_FILL_MODE,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the probabilistic fill model.")] = 0,
    workers: Annotated[int, typer.Option("--workers", help="Parallel processes (default: the CPU count).")] = 0,
    sort_by: Annotated[str, typer.Option("--sort-by", help="The report figure to rank by.")] = "net_pnl",
    ascending: Annotated[bool, typer.Option("--ascending", help="Smallest first (e.g. for max_drawdown).")] = False,
    output: Annotated[str, typer.Option("--output", "-o", help="table, csv or json.")] = "table",
    export: Annotated[
        Path | None, typer.Option("--export", help="Also write every result to a .csv or .json file.")
    ] = None,
    market: Annotated[str | None, typer.Option("--market", help="The recorded Market to backtest.")] = None,
    settle: Annotated[str | None, typer.Option("--settle", help="Settle the final position: yes or no.")] = None,
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Skip unreadable lines instead of stopping.")] = False,
) -> int:
    """Backtest a grid of parameter values on one recorded session, in parallel, and rank the results."""
    _choice(output, "--output", ("table", "csv", "json"))
    _choice(fill_model, "--fill-model", FILL_MODES)
    if export is not None:
        _choice(export.suffix, "--export (the file's suffix)", (".csv", ".json"))
    settlement = _settlement(settle)
    try:
        base_strategy, base_risk = load_strategy_and_policy(filename) if filename else (None, None)
        tape = load_tape(file, skip_bad=skip_bad)
        recorded = tape.market(market)
        strategy = base_strategy if base_strategy is not None else dict(recorded.strategy or {})
        risk = base_risk if base_risk is not None else dict(recorded.risk_policy or {})
        axes = [parse_axis(text, strategy, risk) for text in grid]
        points = grid_points(axes, strategy, risk)
        count = workers if workers > 0 else (os.cpu_count() or 1)
        with Progress(
            TextColumn("sweep"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err, transient=True
        ) as bar:
            task = bar.add_task("sweep", total=len(points))
            results = run_sweep(
                file,
                points,
                market=market,
                fill_model=fill_model,
                seed=seed,
                settlement_value_units=settlement,
                workers=count,
                skip_bad=skip_bad,
                progress=lambda done, _total: bar.update(task, completed=done),
            )
        ranked = sort_results(results, sort_by, descending=not ascending)
    except SessionFormatError as exc:
        err.print(f"error: cannot read the session: {exc}", markup=False)
        return ExitCode.ERROR
    names = [axis.name for axis in axes]
    if export is not None:
        export.write_text(_csv(ranked, names) if export.suffix == ".csv" else _json(ranked, names))
        err.print(f"wrote {export}", markup=False)
    if output == "csv":
        sys.stdout.write(_csv(ranked, names))
    elif output == "json":
        sys.stdout.write(_json(ranked, names))
    else:
        # A table wider than a pipe's default 80 columns is still a table: do not squeeze it.
        wide = out if out.is_terminal else Console(highlight=False, width=200)
        wide.print(_table(ranked, names, sort_by))
    return ExitCode.OK


def _row(result: SweepResult, names: list[str]) -> dict[str, Any]:
    return {**{n: result.point.values[n] for n in names}, **result.report.to_json()}


def _csv(results: list[SweepResult], names: list[str]) -> str:
    import csv  # noqa: PLC0415 - export only
    import io  # noqa: PLC0415

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*names, *CSV_FIELDS])
    for result in results:
        row = _row(result, names)
        writer.writerow(["" if row[c] is None else row[c] for c in [*names, *CSV_FIELDS]])
    return buffer.getvalue()


def _json(results: list[SweepResult], names: list[str]) -> str:
    return json.dumps([_row(r, names) for r in results], indent=2) + "\n"


def _table(results: list[SweepResult], names: list[str], sort_by: str) -> Table:
    figures = list(_TABLE_FIGURES) if sort_by in _TABLE_FIGURES else [sort_by, *_TABLE_FIGURES]
    table = Table(title=f"{len(results)} backtests, ranked by {sort_by}")
    for column in ["#", *names, *figures]:
        table.add_column(column.replace("_", " "), justify="right")
    for rank, result in enumerate(results, start=1):
        cells = [str(rank), *(result.point.values[n] for n in names)]
        cells += [_cell(f, getattr(result.report, f)) for f in figures]
        table.add_row(*cells)
    return table


def _cell(figure: str, value: Any) -> str:
    if value is None:
        return "n/a"
    if figure in _MONEY:
        return f"{value:,.2f}"
    if figure == "win_rate":
        return f"{value * 100:.1f}%"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)
