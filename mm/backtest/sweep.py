"""Parameter sweeps (FR-903): the same recorded session backtested over a grid of Strategy / RiskPolicy values,
in parallel processes, ranked by a chosen figure.

A grid axis is ``NAME=V1,V2,...``. ``NAME`` is

* a component parameter by its bare name when exactly one component of the Strategy has it (``gamma``,
  ``base_spread``), or as ``SLOT.PARAM`` (``spread.base_spread``, ``reservation_price.gamma``);
* a Strategy field (``max_inventory``, ``min_spread``, ``price_bounds.max``);
* any path into the Strategy or RiskPolicy spec, dotted: ``strategy.components.skew.params.intensity``,
  ``risk.rules.max_position.limit``.

Values are written into the spec mapping as exact decimal strings (``0.1`` stays ``0.1``) and every point is
validated before anything runs, so a typo fails at once with the axis named. The points are the Cartesian
product of the axes, in the order given. Each worker process loads the tape once; the result of a point does
not depend on which worker ran it or in what order (a backtest is deterministic for its seed).
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final

from mm.backtest.config import DEFAULT_FILL_MODE, BacktestConfig, BacktestConfigError, backtest_config
from mm.backtest.engine import run_backtest
from mm.backtest.report import BacktestReport, build_report
from mm.backtest.tape import SessionTape, load_tape

__all__ = ["GridAxis", "SweepPoint", "SweepResult", "grid_points", "parse_axis", "run_sweep", "sort_results"]

_SLOTS: Final = ("volatility", "reservation_price", "skew", "spread", "sizer")


@dataclass(frozen=True, slots=True)
class GridAxis:
    """One swept parameter: the name as typed, where it lives, and its values (decimal strings or text)."""

    name: str
    target: str
    """``strategy`` or ``risk_policy``."""
    path: tuple[str, ...]
    """Keys into that spec mapping."""
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SweepPoint:
    """One grid point: the value of every axis, by axis name, and the specs it makes."""

    values: Mapping[str, str]
    strategy: Mapping[str, Any]
    risk_policy: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class SweepResult:
    point: SweepPoint
    report: BacktestReport


def _value(text: str) -> str:
    text = text.strip()
    try:
        return str(Decimal(text))
    except InvalidOperation:
        return text  # a type name or another text parameter


def _has(spec: Mapping[str, Any], path: Sequence[str]) -> bool:
    node: Any = spec
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return False
        node = node[key]
    return True


def parse_axis(text: str, strategy: Mapping[str, Any], risk_policy: Mapping[str, Any]) -> GridAxis:
    """``NAME=V1,V2,...`` resolved against the base specs (see the module docstring)."""
    name, sep, raw = text.partition("=")
    name = name.strip()
    values = tuple(_value(v) for v in raw.split(",") if v.strip())
    if not sep or not name or not values:
        raise BacktestConfigError(f"a grid axis is NAME=V1,V2,... (got {text!r})")
    if len(set(values)) != len(values):
        raise BacktestConfigError(f"grid axis {name}: a value is listed twice")
    parts = tuple(name.split("."))
    if parts[0] in ("strategy", "risk", "risk_policy") and len(parts) > 1:
        target = "strategy" if parts[0] == "strategy" else "risk_policy"
        spec = strategy if target == "strategy" else risk_policy
        if not _has(spec, parts[1:]):
            raise BacktestConfigError(f"grid axis {name}: the {target} spec has no field {'.'.join(parts[1:])}")
        return GridAxis(name, target, parts[1:], values)
    components = strategy.get("components") or {}
    if len(parts) == 2 and parts[0] in _SLOTS:
        path = ("components", parts[0], "params", parts[1])
        if not _has(strategy, path):
            kind = (components.get(parts[0]) or {}).get("type", "?")
            raise BacktestConfigError(
                f"grid axis {name}: the {parts[0]} component ({kind}) has no parameter {parts[1]}"
            )
        return GridAxis(name, "strategy", path, values)
    if len(parts) == 1:
        owners = [s for s in _SLOTS if parts[0] in ((components.get(s) or {}).get("params") or {})]
        if len(owners) == 1:
            return GridAxis(name, "strategy", ("components", owners[0], "params", parts[0]), values)
        if len(owners) > 1:
            options = ", ".join(f"{s}.{parts[0]}" for s in owners)
            raise BacktestConfigError(f"grid axis {name}: several components have it; write one of {options}")
    if _has(strategy, parts):
        return GridAxis(name, "strategy", parts, values)
    raise BacktestConfigError(
        f"grid axis {name}: no Strategy component parameter or field of that name "
        "(write SLOT.PARAM, or a full path strategy.… / risk.…)"
    )


def _set(spec: dict[str, Any], path: Sequence[str], value: str) -> None:
    node = spec
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


def grid_points(
    axes: Sequence[GridAxis], strategy: Mapping[str, Any], risk_policy: Mapping[str, Any]
) -> list[SweepPoint]:
    """Every combination of the axes' values (first axis slowest), as complete spec mappings."""
    points = []
    for combo in itertools.product(*(axis.values for axis in axes)):
        s_spec, r_spec = copy.deepcopy(dict(strategy)), copy.deepcopy(dict(risk_policy))
        for axis, value in zip(axes, combo, strict=True):
            _set(s_spec if axis.target == "strategy" else r_spec, axis.path, value)
        points.append(SweepPoint({a.name: v for a, v in zip(axes, combo, strict=True)}, s_spec, r_spec))
    return points


# ---------------------------------------------------------------------------------------------- running

_TAPE: SessionTape | None = None
"""The worker process's tape, loaded once by :func:`_load_worker_tape`."""


def _load_worker_tape(path: str, skip_bad: bool) -> None:
    global _TAPE  # noqa: PLW0603 - one tape per worker process, loaded by the pool's initializer
    _TAPE = load_tape(path, skip_bad=skip_bad)


def _configure(
    tape: SessionTape, point: SweepPoint, market: str | None, fill_model: str, seed: int, settlement: int | None
) -> BacktestConfig:
    return backtest_config(
        tape,
        market=market,
        strategy=point.strategy,
        risk_policy=point.risk_policy,
        fill_model=fill_model,
        seed=seed,
        settlement_value_units=settlement,
    )


def _run_point(
    index: int, point: SweepPoint, market: str | None, fill_model: str, seed: int, settlement: int | None
) -> tuple[int, BacktestReport]:
    assert _TAPE is not None, "the worker's tape was not loaded"
    config = _configure(_TAPE, point, market, fill_model, seed, settlement)
    return index, build_report(run_backtest(_TAPE, config))


def run_sweep(
    path: Path | str,
    points: Sequence[SweepPoint],
    *,
    market: str | None = None,
    fill_model: str = DEFAULT_FILL_MODE,
    seed: int = 0,
    settlement_value_units: int | None = None,
    workers: int = 1,
    skip_bad: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> list[SweepResult]:
    """Backtest every point (in ``workers`` processes; 1 = in this process) and return the results in point
    order. ``progress(done, total)`` is called as points finish. Every point is configured (validated) here
    first, so a bad value fails before any process starts."""
    tape = load_tape(path, skip_bad=skip_bad)
    args = (market, fill_model, seed, settlement_value_units)
    for point in points:
        _configure(tape, point, *args)
    reports: dict[int, BacktestReport] = {}
    total = len(points)
    if workers <= 1 or total <= 1:
        global _TAPE  # noqa: PLW0603 - the in-process path uses the same worker function
        _TAPE = tape
        try:
            for done, (i, point) in enumerate(enumerate(points), start=1):
                reports[i] = _run_point(i, point, *args)[1]
                if progress is not None:
                    progress(done, total)
        finally:
            _TAPE = None
    else:
        with ProcessPoolExecutor(
            max_workers=min(workers, total), initializer=_load_worker_tape, initargs=(str(path), skip_bad)
        ) as pool:
            futures = [pool.submit(_run_point, i, point, *args) for i, point in enumerate(points)]
            for done, future in enumerate(as_completed(futures), start=1):
                i, report = future.result()
                reports[i] = report
                if progress is not None:
                    progress(done, total)
    return [SweepResult(point, reports[i]) for i, point in enumerate(points)]


def sort_results(results: Sequence[SweepResult], by: str, *, descending: bool = True) -> list[SweepResult]:
    """Rank by a report figure (e.g. ``net_pnl``, ``sharpe_hourly``, ``max_drawdown``); points where it is
    n/a come last; ties keep the grid order."""
    if by not in BacktestReport.__dataclass_fields__:
        raise BacktestConfigError(f"cannot sort by {by!r}: not a report figure")
    known = [r for r in results if getattr(r.report, by) is not None]
    unknown = [r for r in results if getattr(r.report, by) is None]
    known.sort(key=lambda r: getattr(r.report, by), reverse=descending)
    return known + unknown
