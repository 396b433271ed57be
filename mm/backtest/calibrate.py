"""Fill-model calibration (requirements §5.3: "Fill Simulation Accuracy > 90% match to live — compare ghost mode
vs actual"): how often do the paper fill models' simulated fills match the real ones?

:func:`calibrate` reads a session recorded while the node traded *live* (against the simulator, whose matching
engine is the truth, or against Kalshi), runs every fill model as a ghost beside the real orders on the same
recorded market data (:mod:`mm.backtest.ghost`), and compares each ghost's fills with the recorded real fills.

The match (ADR 020): a ghost fill and a real fill *correspond* when they belong to the same real order and lie
within ``window_s`` of each other (recorded time). Quantities are paired greedily in time order, each real
fill taking the earliest unpaired ghost quantity of its order within its window (optimal for equal windows):
``matched`` contracts. Per model:

* ``recall`` = matched / real, ``precision`` = matched / ghost (contracts);
* **``match_rate``** = 2 · matched / (real + ghost) — the headline, judged against the 90% target: it is 1
  only when the model fills what the venue filled, when it did, and nothing else; missing fills and phantom
  fills cost it alike;
* ``fill_recall`` / ``fill_precision``: the same by count, ignoring quantity (a fill is found when any fill
  of the other kind on its order lies within the window);
* ``order_agreement`` = Σ min(real, ghost) / Σ max(real, ghost) filled per order, whenever it happened;
* ``price_agreement``: the share of matched contracts the ghost filled at the real price.

A recording without real fills (paper execution, or none happened) gives a report with ``comparable`` False and
a reason, every rate ``None``: never a division by zero.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from mm.adapters.fill_models import FILL_MODEL_NAMES, FillModel, fill_model_from_name
from mm.backtest.ghost import FillRecord, GhostRun
from mm.domain.errors import DomainError
from mm.recording.format import SessionFormatError, SessionReader

__all__ = [
    "DEFAULT_MODELS",
    "DEFAULT_WINDOW_S",
    "RATES",
    "TARGET_MATCH_RATE",
    "CalibrationError",
    "CalibrationReport",
    "ModelFactory",
    "ModelFigures",
    "calibrate",
    "match_fills",
    "session_files",
]

DEFAULT_MODELS: Final = ("cross", "trade_through", "queue")
DEFAULT_WINDOW_S: Final = 5.0
"""Seconds of recorded time: a ghost fill this close to a real fill of the same order is the same event."""
TARGET_MATCH_RATE: Final = 0.9

ModelFactory = Callable[[int], FillModel]
"""Builds a fresh model for one file from the seed (a probabilistic model must draw only from it)."""


class CalibrationError(SessionFormatError):
    """A record that reads fine but cannot be calibrated on (a book that does not rebuild, a bad value)."""


def match_fills(model: str, real: Iterable[FillRecord], ghost: Iterable[FillRecord], window_us: int) -> ModelFigures:
    """Pair a model's ghost fills with the real fills, order by order, within ``window_us`` (module docstring)."""
    by_order: dict[str, tuple[list[FillRecord], list[FillRecord]]] = defaultdict(lambda: ([], []))
    for f in real:
        by_order[f.order][0].append(f)
    for f in ghost:
        by_order[f.order][1].append(f)
    totals = [0] * 12
    for reals, ghosts in by_order.values():
        reals.sort(key=lambda f: f.ts_us)  # stable: file order within one time
        ghosts.sort(key=lambda f: f.ts_us)
        for i, value in enumerate(_match_order(reals, ghosts, window_us)):
            totals[i] += value
    return ModelFigures(model, *totals)


def _match_order(reals: list[FillRecord], ghosts: list[FillRecord], w: int) -> tuple[int, ...]:
    """One order's contribution to every count of :class:`ModelFigures`, in field order."""
    left = [g.quantity_units for g in ghosts]
    matched = same = first = 0
    for r in reals:
        # Ghost quantity before this real fill's window is too early for every later one as well.
        while first < len(ghosts) and (ghosts[first].ts_us < r.ts_us - w or left[first] == 0):
            first += 1
        need, k = r.quantity_units, first
        while need and k < len(ghosts) and ghosts[k].ts_us <= r.ts_us + w:
            take = min(need, left[k])
            left[k] -= take
            need -= take
            matched += take
            same += take if ghosts[k].yes_price_units == r.yes_price_units else 0
            k += 1
    g_times, r_times = [g.ts_us for g in ghosts], [r.ts_us for r in reals]
    real_units, ghost_units = sum(r.quantity_units for r in reals), sum(g.quantity_units for g in ghosts)
    return (
        len(reals),
        real_units,
        len(ghosts),
        ghost_units,
        sum(1 for g in ghosts if g.is_taker),
        matched,
        same,
        sum(1 for r in reals if _near(g_times, r.ts_us, w)),
        sum(1 for g in ghosts if _near(r_times, g.ts_us, w)),
        1 if real_units or ghost_units else 0,
        min(real_units, ghost_units),
        max(real_units, ghost_units),
    )


def _near(times: list[int], t: int, w: int) -> bool:
    return bisect_right(times, t + w) > bisect_left(times, t - w)


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


RATES: Final = (
    "match_rate",
    "recall",
    "precision",
    "fill_recall",
    "fill_precision",
    "order_agreement",
    "price_agreement",
)
"""The :class:`ModelFigures` ratios, headline first (each None when its denominator is zero)."""


@dataclass(frozen=True, slots=True)
class ModelFigures:
    """One model's comparison. Quantities in 1/100 contract (``*_units``)."""

    model: str
    real_fills: int
    real_units: int
    ghost_fills: int
    ghost_units: int
    ghost_taker_fills: int
    matched_units: int
    same_price_units: int
    real_fills_found: int
    ghost_fills_found: int
    orders_with_fills: int
    order_min_units: int
    order_max_units: int

    @property
    def recall(self) -> float | None:
        return _ratio(self.matched_units, self.real_units)

    @property
    def precision(self) -> float | None:
        return _ratio(self.matched_units, self.ghost_units) if self.real_units else None

    @property
    def match_rate(self) -> float | None:
        """The headline: 2 · matched / (real + ghost); None when there is no real fill to compare with."""
        return _ratio(2 * self.matched_units, self.real_units + self.ghost_units) if self.real_units else None

    @property
    def fill_recall(self) -> float | None:
        return _ratio(self.real_fills_found, self.real_fills)

    @property
    def fill_precision(self) -> float | None:
        return _ratio(self.ghost_fills_found, self.ghost_fills) if self.real_fills else None

    @property
    def order_agreement(self) -> float | None:
        return _ratio(self.order_min_units, self.order_max_units) if self.real_units else None

    @property
    def price_agreement(self) -> float | None:
        return _ratio(self.same_price_units, self.matched_units)

    def __add__(self, other: ModelFigures) -> ModelFigures:
        """The figures of two recordings together (counts add up; rates are recomputed from them)."""
        counts = [getattr(self, f.name) + getattr(other, f.name) for f in fields(self)[1:]]
        return ModelFigures(self.model, *counts)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        out.update({name: getattr(self, name) for name in RATES})
        return out


@dataclass(frozen=True, slots=True)
class CalibrationReport:
    """Per-model figures for one or more recordings; :meth:`describe` is the text table, :meth:`to_json` plain JSON."""

    files: tuple[str, ...]
    window_s: float
    seed: int
    records: int
    skipped_lines: int
    markets: tuple[str, ...]
    orders_followed: int
    real_fills: int
    real_units: int
    unfollowed_fills: int
    paper_fills: int
    recording_gaps: int
    models: tuple[ModelFigures, ...]
    target: float = TARGET_MATCH_RATE

    @property
    def comparable(self) -> bool:
        return self.real_units > 0

    @property
    def reason(self) -> str | None:
        """Why there is nothing to compare (None when there is)."""
        if self.comparable:
            return None
        if self.paper_fills:
            return (
                f"nothing to compare: the recording's {self.paper_fills} fills are paper fills (execution: paper), "
                "not a venue's; record a node trading with execution: live"
            )
        if self.unfollowed_fills:
            return "nothing to compare: the real fills belong to orders placed before the recording started"
        return "nothing to compare: no real fill in the recording (no live order of ours executed)"

    def figures(self, model: str) -> ModelFigures:
        for figures in self.models:
            if figures.model == model:
                return figures
        raise KeyError(model)

    def passes(self, model: str) -> bool | None:
        """Whether the model's match rate reaches the target (None: nothing to compare)."""
        rate = self.figures(model).match_rate
        return None if rate is None else rate >= self.target

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        out["files"], out["markets"] = list(self.files), list(self.markets)
        out["models"] = [m.to_json() for m in self.models]
        out["comparable"], out["reason"] = self.comparable, self.reason
        return out

    def describe(self) -> str:
        name = self.files[0] if len(self.files) == 1 else f"{len(self.files)} files"
        lines = [
            f"Fill-model calibration: {name} ({self.records} records, {len(self.markets)} market(s))",
            f"  real orders followed: {self.orders_followed}   real fills: {self.real_fills} "
            f"({_contracts(self.real_units)} contracts)   window: ±{self.window_s:g} s   seed: {self.seed}",
        ]
        notes = [
            (self.unfollowed_fills, "real fills of orders placed before the recording (not compared)"),
            (self.skipped_lines, "bad lines or records skipped (skip_bad)"),
            (self.recording_gaps, "recording gaps (records dropped by the recorder)"),
        ]
        lines += [f"  note: {count} {what}" for count, what in notes if count]
        if not self.comparable:
            lines.append(f"  {self.reason}")
        header = ("model", "match", "recall", "precision", "fill-rec", "fill-prec", "order-qty", "same-px", "ghost")
        rows: list[tuple[str, ...]] = [header]
        for m in self.models:
            ghost = f"{m.ghost_fills} / {_contracts(m.ghost_units)}"
            rows.append((m.model, *(_pct(getattr(m, r)) for r in RATES), ghost))
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        lines += [
            "  "
            + "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
            for row in rows
        ]
        lines.append(
            f"  match = 2·matched/(real+ghost) contracts, same order, within ±{self.window_s:g} s; "
            f"target > {self.target:.0%}. ghost = fills / contracts."
        )
        if self.comparable:
            verdicts = [f"{m.model} {'meets' if self.passes(m.model) else 'misses'}" for m in self.models]
            lines.append(f"  target: {', '.join(verdicts)}")
        return "\n".join(lines)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _contracts(units: int) -> str:
    return str(Decimal(units).scaleb(-2))


# ---------------------------------------------------------------------------------------------- entry point


def _builtin(name: str) -> ModelFactory:
    return lambda _seed: fill_model_from_name(name)  # the built-in models draw no random numbers


def session_files(path: Path | str) -> list[Path]:
    """``path`` itself, or the session files (``*.jsonl.gz``, ``*.jsonl``) of a directory, sorted."""
    p = Path(path)
    if not p.is_dir():
        return [p]
    return sorted(f for f in p.iterdir() if f.name.endswith((".jsonl.gz", ".jsonl")))


def calibrate(
    path: Path | str,
    *,
    models: Sequence[str] = DEFAULT_MODELS,
    window_s: float = DEFAULT_WINDOW_S,
    seed: int = 0,
    skip_bad: bool = False,
    factories: Mapping[str, ModelFactory] | None = None,
) -> CalibrationReport:
    """Compare each model's ghost fills with the real fills of a live session recording (a file, or a directory
    of them: each file runs on fresh models, the figures add up).

    ``factories`` adds or replaces models by name (each called with ``seed`` for every file). A corrupt or
    truncated file raises :class:`~mm.recording.format.SessionFormatError` (file and line) unless ``skip_bad``;
    a record that cannot be calibrated on raises :class:`CalibrationError` (or is skipped and counted).
    """
    known: dict[str, ModelFactory] = {name: _builtin(name) for name in FILL_MODEL_NAMES}
    known.update(factories or {})
    unknown = [m for m in models if m not in known]
    if unknown or not models or len(set(models)) != len(models):
        raise ValueError(f"models must be distinct names among {', '.join(known)}; got {list(models)}")
    if not (isinstance(window_s, int | float) and math.isfinite(window_s) and window_s >= 0):
        raise ValueError(f"window_s must be a finite number of seconds >= 0, got {window_s!r}")
    window_us = round(window_s * 1_000_000)
    files = session_files(path)
    if not files:
        raise FileNotFoundError(f"{path}: no session files (*.jsonl.gz, *.jsonl)")
    counts: dict[str, int] = defaultdict(int)
    figures: dict[str, ModelFigures] = {}
    markets: set[str] = set()
    for file in files:
        run = GhostRun({m: known[m](seed) for m in models}, window_us=window_us, placed_us=_placed(file, skip_bad))
        _walk(file, run, counts, skip_bad)
        # Each file on its own: order ids of two sessions must never pair up.
        for m in models:
            found = match_fills(m, run.real_fills, run.ghosts[m].fills, window_us)
            figures[m] = figures[m] + found if m in figures else found
        markets.update(run.books)
        counts["real_fills"] += len(run.real_fills)
        counts["real_units"] += sum(f.quantity_units for f in run.real_fills)
        counts["orders"] += run.orders_followed
        counts["unfollowed"] += run.unfollowed_fills
        counts["paper"] += run.paper_fills
        counts["gaps"] += run.gaps
    return CalibrationReport(
        files=tuple(str(f) for f in files),
        window_s=float(window_s),
        seed=seed,
        records=counts["records"],
        skipped_lines=counts["skipped"],
        markets=tuple(sorted(markets)),
        orders_followed=counts["orders"],
        real_fills=counts["real_fills"],
        real_units=counts["real_units"],
        unfollowed_fills=counts["unfollowed"],
        paper_fills=counts["paper"],
        recording_gaps=counts["gaps"],
        models=tuple(figures[m] for m in models),
    )


def _placed(file: Path, skip_bad: bool) -> dict[str, int]:
    """Each order's first venue time as resting (its first ``open`` update, recorded later than the ack that places
    the ghost): a print from before it cannot have filled the order, however late it was recorded."""
    placed: dict[str, int] = {}
    with SessionReader(file, skip_bad=skip_bad) as reader:
        for r in reader:
            if r.type == "order_update" and r.data["status"] == "open" and isinstance(r.data.get("venue_ts_us"), int):
                placed.setdefault(str(r.data["client_order_id"]), r.data["venue_ts_us"])
    return placed


def _walk(file: Path, run: GhostRun, counts: dict[str, int], skip_bad: bool) -> None:
    last_ts = 0
    with SessionReader(file, skip_bad=skip_bad) as reader:
        for record in reader:
            counts["records"] += 1
            last_ts = record.ts_us
            try:
                run.feed(record)
            except (ValueError, TypeError, KeyError, DomainError) as exc:
                if not skip_bad:
                    raise CalibrationError(file, reader.lines_read, f"{record.type}: {exc}") from None
                counts["skipped"] += 1
        counts["skipped"] += reader.skipped
    run.finish(last_ts)
