"""Inline SVG line charts for the HTML backtest report (FR-903): drawn in Python, so the report needs no script,
stylesheet or image beside it and shows its plots in any browser, from the file, offline.

One chart is :func:`plot`: lines (with gaps where a value is missing, optionally drawn as steps), point markers,
horizontal threshold lines and marked segments over a shared pair of axes, with tick labels, a title and a
legend. The output is well-formed XML (it parses with :mod:`xml.etree`), every text escaped.

Long lines are thinned by :func:`downsample`, which keeps each bucket's lowest and highest point: a backtest's
interesting moments are its spikes (a fill that moved the PnL, an inventory excursion), which striding or
averaging would hide.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape
from typing import Final, Literal

__all__ = ["Band", "HLine", "Line", "Markers", "Segment", "downsample", "nice_ticks", "plot"]

WIDTH: Final = 1100
HEIGHT: Final = 330
_LEFT: Final = 84
_RIGHT: Final = 24
_TOP: Final = 58
_BOTTOM: Final = 46
_CHAR_PX: Final = 6.6  # rough width of a 12px sans-serif character, for laying out the legend


@dataclass(frozen=True, slots=True)
class Line:
    """A polyline; ``None`` in ``ys`` is a gap. ``step``: each value holds until the next point's time, a gap's
    included (a position, a resting quote: what a sample says stays true until the next sample)."""

    label: str
    xs: Sequence[float]
    ys: Sequence[float | None]
    color: str
    css_class: str
    step: bool = False
    dash: str = ""


@dataclass(frozen=True, slots=True)
class Markers:
    """Point markers (never thinned: each is an event the reader may want to find), with hover tooltips."""

    label: str
    xs: Sequence[float]
    ys: Sequence[float]
    color: str
    css_class: str
    shape: Literal["up", "down"]
    tips: Sequence[str] = ()


@dataclass(frozen=True, slots=True)
class HLine:
    """A horizontal threshold; one with an empty label is left out of the legend."""

    label: str
    y: float
    color: str


@dataclass(frozen=True, slots=True)
class Band:
    """Shaded spans of the x axis (periods in which something holds, e.g. the book had no mid)."""

    label: str
    spans: Sequence[tuple[float, float]]
    color: str


@dataclass(frozen=True, slots=True)
class Segment:
    label: str
    x0: float
    y0: float
    x1: float
    y1: float
    color: str


def downsample(ys: Sequence[float | None], max_points: int) -> list[int | None]:
    """The indices of the points to draw, in order, ``None`` where a gap breaks the line; at most ``max_points``.

    Up to ``max_points`` points all are kept. Beyond, the first and last are kept and the rest are cut into equal
    runs of indices, each keeping its lowest and highest point (the first of equals), so the global extremes
    and every spike wider than a bucket's share survive. A run holding a missing value keeps a break at it, so
    no line is drawn across missing data. Deterministic: the same values give the same indices.
    """
    if max_points < 2:
        raise ValueError(f"max_points must be at least 2, not {max_points}")
    n = len(ys)
    if n <= max_points:
        return _collapse([i if y is not None else None for i, y in enumerate(ys)])
    buckets = (max_points - 2) // 2
    inner = n - 2
    out: list[int | None] = [0 if ys[0] is not None else None]
    for b in range(buckets):
        lo, hi = 1 + b * inner // buckets, 1 + (b + 1) * inner // buckets
        low_i = high_i = gap_i = -1
        low = high = 0.0
        for i in range(lo, hi):
            y = ys[i]
            if y is None:
                if gap_i < 0:
                    gap_i = i
            else:
                if low_i < 0 or y < low:
                    low_i, low = i, y
                if high_i < 0 or y > high:
                    high_i, high = i, y
        for i in sorted({i for i in (low_i, high_i, gap_i) if i >= 0}):
            out.append(None if i == gap_i else i)
    out.append(n - 1 if ys[n - 1] is not None else None)
    return _collapse(out)


def _collapse(indices: list[int | None]) -> list[int | None]:
    """Drop leading, trailing and repeated breaks (they draw nothing)."""
    out: list[int | None] = []
    for i in indices:
        if i is None and (not out or out[-1] is None):
            continue
        out.append(i)
    if out and out[-1] is None:
        out.pop()
    return out


def nice_ticks(lo: float, hi: float, target: int = 6, steps: Sequence[float] = ()) -> tuple[list[float], float]:
    """Round tick values covering [lo, hi], about ``target`` of them, and their step: the first of ``steps``
    (ascending) wide enough, else 1, 2 or 5 × 10^k."""
    span = hi - lo if hi > lo else 1.0
    raw = span / target
    power = 10.0 ** math.floor(math.log10(raw))
    step = next((c for c in steps if c >= raw * 0.999), 0.0) or next(
        m * power for m in (1, 2, 5, 10) if m * power >= raw * 0.999
    )
    # Integer multiples, so 0.1 + 0.2 noise never makes a tick label "0.30000000000000004".
    first, last = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    return [k * step for k in range(first, last + 1)], step


def decimals_for(step: float) -> int:
    """Digits after the point that tell ticks ``step`` apart."""
    return max(0, -math.floor(math.log10(step) + 1e-9))


def _f(v: float) -> str:
    return f"{v:.1f}"


def plot(
    svg_id: str,
    title: str,
    *,
    x_range: tuple[float, float],
    x_label: str,
    y_label: str,
    x_format: Callable[[float, float], str],
    y_format: Callable[[float, float], str],
    lines: Sequence[Line] = (),
    markers: Sequence[Markers] = (),
    hlines: Sequence[HLine] = (),
    segments: Sequence[Segment] = (),
    bands: Sequence[Band] = (),
    x_steps: Sequence[float] = (),
    max_points: int = 2000,
) -> str:
    """One chart as an ``<svg>`` element. ``x_format``/``y_format`` render a tick value given the tick step;
    ``x_steps`` are the x tick spacings to choose from (e.g. clock-like ones for time), see :func:`nice_ticks`.

    Every line is thinned to at most ``max_points`` points (a step line's corners included). When no line has a
    point and there is no marker, the plot area says "no data" (thresholds and segments alone are not data).
    """
    x0, x1 = x_range
    if x1 <= x0:
        x1 = x0 + 1.0
    left, right, top, bottom = _LEFT, WIDTH - _RIGHT, _TOP, HEIGHT - _BOTTOM
    # Which points each line keeps; a step line gets half the budget, as each point becomes two corners.
    kept = [downsample(line.ys, max(max_points // 2 if line.step else max_points, 2)) for line in lines]
    has_data = any(k for k in kept) or any(m.xs for m in markers)
    values = [y for line in lines for y in line.ys if y is not None]
    values += [y for m in markers for y in m.ys]
    if has_data:
        values += [h.y for h in hlines] + [v for s in segments for v in (s.y0, s.y1)]
    y_lo, y_hi = (min(values), max(values)) if values else (-1.0, 1.0)
    if y_hi - y_lo < 1e-12:
        y_lo, y_hi = y_lo - 1.0, y_hi + 1.0
    pad = (y_hi - y_lo) * 0.05
    y_ticks, y_step = nice_ticks(y_lo - pad, y_hi + pad)
    y0, y1 = y_ticks[0], y_ticks[-1]

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * (right - left)

    def py(y: float) -> float:
        return bottom - (y - y0) / (y1 - y0) * (bottom - top)

    e = escape
    out = [
        f'<svg id="{e(svg_id)}" class="plot" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-labelledby="{e(svg_id)}-title" font-family="system-ui, sans-serif" font-size="12">',
        f'<title id="{e(svg_id)}-title">{e(title)}</title>',
        f'<text x="{left}" y="20" font-size="15" font-weight="bold">{e(title)}</text>',
        f'<rect class="frame" x="{left}" y="{top}" width="{right - left}" height="{bottom - top}" '
        'fill="#fff" stroke="#888"/>',
    ]
    x_ticks, x_step = nice_ticks(x0, x1, 8, x_steps)
    for t in x_ticks:
        if x0 - 1e-9 <= t <= x1 + 1e-9:
            tx = _f(px(t))
            out.append(f'<line x1="{tx}" y1="{top}" x2="{tx}" y2="{bottom}" stroke="#eee"/>')
            out.append(f'<text x="{tx}" y="{bottom + 16}" text-anchor="middle">{e(x_format(t, x_step))}</text>')
    out.append(f'<text x="{(left + right) / 2}" y="{HEIGHT - 8}" text-anchor="middle">{e(x_label)}</text>')
    out.append(
        f'<text transform="translate(14 {(top + bottom) / 2}) rotate(-90)" text-anchor="middle">{e(y_label)}</text>'
    )
    for band in bands:
        for a, b in band.spans:
            out.append(
                f'<rect class="band" x="{_f(px(a))}" y="{top}" width="{_f(max(px(b) - px(a), 0.5))}" '
                f'height="{bottom - top}" fill="{band.color}" fill-opacity="0.18"/>'
            )
    if not has_data:
        out.append(
            f'<text class="no-data" x="{(left + right) / 2}" y="{(top + bottom) / 2}" text-anchor="middle" '
            f'font-size="18" fill="#888">no data</text>'
        )
    else:
        for t in y_ticks:
            ty = _f(py(t))
            out.append(f'<line x1="{left}" y1="{ty}" x2="{right}" y2="{ty}" stroke="#eee"/>')
            out.append(f'<text x="{left - 6}" y="{ty}" dy="4" text-anchor="end">{e(y_format(t, y_step))}</text>')
        for h in hlines:
            hy = _f(py(h.y))
            out.append(
                f'<line class="threshold" x1="{left}" y1="{hy}" x2="{right}" y2="{hy}" stroke="{h.color}" '
                f'stroke-dasharray="6 4"/>'
            )
        for line, indices in zip(lines, kept, strict=True):
            out.extend(_polylines(line, indices, px, py))
        for s in segments:
            # A band over the segment's time span as well: a drawdown that is small against the whole curve
            # would otherwise be a dot.
            out.append(
                f'<rect class="segment-span" x="{_f(px(s.x0))}" y="{top}" width="{_f(px(s.x1) - px(s.x0))}" '
                f'height="{bottom - top}" fill="{s.color}" fill-opacity="0.08"/>'
            )
            out.append(
                f'<line class="segment" x1="{_f(px(s.x0))}" y1="{_f(py(s.y0))}" x2="{_f(px(s.x1))}" '
                f'y2="{_f(py(s.y1))}" stroke="{s.color}" stroke-width="3" stroke-opacity="0.7"/>'
            )
            for x, y in ((s.x0, s.y0), (s.x1, s.y1)):
                out.append(f'<circle cx="{_f(px(x))}" cy="{_f(py(y))}" r="4" fill="{s.color}"/>')
        # Thousands of full-size markers would bury the lines under them: smaller ones the more there are.
        count = sum(len(m.xs) for m in markers)
        size = 5.0 if count <= 200 else 3.5 if count <= 2000 else 2.5
        for m in markers:
            for i, (x, y) in enumerate(zip(m.xs, m.ys, strict=True)):
                tip = f"<title>{e(m.tips[i])}</title>" if i < len(m.tips) else ""
                out.append(
                    f'<polygon class="{m.css_class}" points="{_triangle(px(x), py(y), m.shape, size)}" '
                    f'fill="{m.color}" stroke="#222" stroke-width="{size / 8:.2f}">{tip}</polygon>'
                )
    out.extend(_legend(lines, markers, hlines, segments, bands, left))
    out.append("</svg>")
    return "\n".join(out)


def _polylines(
    line: Line, indices: list[int | None], px: Callable[[float], float], py: Callable[[float], float]
) -> list[str]:
    out: list[str] = []
    run: list[int] = []
    for i in [*indices, None]:
        if i is not None:
            run.append(i)
            continue
        points: list[tuple[float, float]] = []
        for k in run:
            x, y = px(line.xs[k]), py(line.ys[k] or 0.0)
            if line.step and points:
                points.append((x, points[-1][1]))  # hold the previous value until this point's time
            points.append((x, y))
        if line.step and run and run[-1] + 1 < len(line.xs):
            # The last value held until the next sample (the one that broke the line, or the next not kept).
            points.append((px(line.xs[run[-1] + 1]), points[-1][1]))
        if len(points) == 1:
            # A lone point between gaps: a dot, since a one-point polyline draws nothing.
            out.append(f'<circle class="{line.css_class}" cx="{_f(x)}" cy="{_f(y)}" r="1.8" fill="{line.color}"/>')
        elif points:
            dash = f' stroke-dasharray="{line.dash}"' if line.dash else ""
            coords = " ".join(f"{_f(x)},{_f(y)}" for x, y in points)
            out.append(
                f'<polyline class="{line.css_class}" points="{coords}" fill="none" stroke="{line.color}" '
                f'stroke-width="1.5" stroke-linejoin="round"{dash}/>'
            )
        run = []
    return out


def _triangle(x: float, y: float, shape: str, size: float = 5.0) -> str:
    """A triangle pointing up (a buy) or down (a sell), centred on (x, y)."""
    d = size * 1.2 if shape == "up" else -size * 1.2
    return f"{_f(x)},{_f(y - d)} {_f(x + size)},{_f(y + d * 0.6)} {_f(x - size)},{_f(y + d * 0.6)}"


def _legend(
    lines: Sequence[Line],
    markers: Sequence[Markers],
    hlines: Sequence[HLine],
    segments: Sequence[Segment],
    bands: Sequence[Band],
    x: float,
) -> list[str]:
    out = ['<g class="legend">']
    y = 42
    for line in lines:
        dash = f' stroke-dasharray="{line.dash}"' if line.dash else ""
        out.append(
            f'<line x1="{_f(x)}" y1="{y}" x2="{_f(x + 20)}" y2="{y}" stroke="{line.color}" stroke-width="2"{dash}/>'
        )
        x = _legend_text(out, x + 24, y, line.label)
    for m in markers:
        out.append(
            f'<polygon points="{_triangle(x + 6, y, m.shape)}" fill="{m.color}" stroke="#222" stroke-width="0.6"/>'
        )
        x = _legend_text(out, x + 16, y, m.label)
    for h in hlines:
        if not h.label:
            continue  # drawn, but told about by another entry (the two sides of one limit)
        out.append(
            f'<line x1="{_f(x)}" y1="{y}" x2="{_f(x + 20)}" y2="{y}" stroke="{h.color}" stroke-dasharray="6 4"/>'
        )
        x = _legend_text(out, x + 24, y, h.label)
    for s in segments:
        out.append(
            f'<line x1="{_f(x)}" y1="{y}" x2="{_f(x + 20)}" y2="{y}" stroke="{s.color}" stroke-width="3" '
            f'stroke-opacity="0.7"/>'
        )
        x = _legend_text(out, x + 24, y, s.label)
    for band in bands:
        if band.spans:
            out.append(
                f'<rect x="{_f(x)}" y="{y - 6}" width="20" height="12" fill="{band.color}" fill-opacity="0.18"/>'
            )
            x = _legend_text(out, x + 24, y, band.label)
    out.append("</g>")
    return out


def _legend_text(out: list[str], x: float, y: float, label: str) -> float:
    out.append(f'<text x="{_f(x)}" y="{y}" dy="4">{escape(label)}</text>')
    return x + len(label) * _CHAR_PX + 18
