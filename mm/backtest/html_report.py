"""The FR-903 backtest report as one self-contained HTML page: it opens from the file, with no server, no
script and nothing fetched (the plots are inline SVG drawn by :mod:`mm.backtest.svg_plot`, the styling a few
inline CSS rules).

The page holds the run's identity (file, market, fill model, seed, spec digests), every figure of the
:class:`~mm.backtest.report.BacktestReport` formatted as :meth:`~mm.backtest.report.BacktestReport.to_text`
formats it, three plots over the session's time (net PnL with the max-drawdown segment; inventory against the
strategy's limits; our approved quotes and fills against the mid) and the fills themselves.

Everything that comes from the session file (file name, tickers, kill switch reasons, order ids) is escaped:
a recording is data, not markup. Money in the tables is exact (Decimal); only plot coordinates are floats.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from html import escape
from pathlib import Path
from typing import Any, Final, Literal

from mm.backtest.report import BacktestReport, format_money, format_pct
from mm.backtest.results import BacktestFill, BacktestResult
from mm.backtest.svg_plot import Band, HLine, Line, Markers, Segment, decimals_for, plot
from mm.domain.price import PRICE_SCALE, QTY_SCALE

__all__ = ["MAX_FILL_ROWS", "render_html", "write_html"]

MAX_FILL_ROWS: Final = 500
"""Fills listed in the table; a busy hour can hold tens of thousands, which would make the page unusable."""
_US: Final = 1_000_000
_MINUTE_US: Final = 60 * _US

_CSS: Final = """
body { font-family: system-ui, sans-serif; margin: 24px auto; max-width: 1140px; color: #222; }
h1 { font-size: 20px; margin-bottom: 4px; } h2 { font-size: 16px; margin-top: 28px; }
table { border-collapse: collapse; font-size: 13px; }
td, th { padding: 3px 10px; border-bottom: 1px solid #e4e4e4; text-align: left; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
table.meta td:first-child, table.summary td:first-child { color: #555; }
tr.group td { font-weight: bold; color: #222; padding-top: 12px; }
.summary-wrap { display: flex; gap: 40px; flex-wrap: wrap; align-items: flex-start; }
.warn { background: #fdecea; border: 1px solid #e0a39c; padding: 8px 12px; }
svg.plot { width: 100%; height: auto; display: block; margin: 12px 0; }
code { font-size: 12px; }
"""


def _exact_dollars(micros: int) -> str:
    """A fill's money to the micro-dollar, trailing zeros dropped down to cents (fees are often fractions of one)."""
    text = f"{Decimal(micros).scaleb(-6):.6f}".rstrip("0")
    whole, _, frac = text.partition(".")
    text = f"{whole}.{frac.ljust(2, '0')}"
    return f"-${text[1:]}" if text.startswith("-") else f"${text}"


def _price(units: int) -> str:
    return _exact_dollars(units * (_US // PRICE_SCALE))


def _contracts(units: int) -> str:
    return f"{Decimal(units) / QTY_SCALE:f}"


def _utc(ts_us: int, spec: str = "%H:%M:%S") -> str:
    return (datetime.fromtimestamp(ts_us // _US, UTC) + timedelta(microseconds=ts_us % _US)).strftime(spec)


# The summary table: (BacktestReport field, label, how to show it), grouped as to_text groups them. A field
# added to the report later and missing here still shows (after these), so the table never drops a figure.
_Row = tuple[str, str, Callable[[BacktestReport], str]]
_GROUPS: Final[tuple[tuple[str, tuple[_Row, ...]], ...]] = (
    (
        "Results",
        (
            ("duration_s", "Duration", lambda r: f"{r.duration_s:.0f} seconds"),
            ("events", "Market-data events", lambda r: f"{r.events:,}"),
            ("total_trades", "Total trades", lambda r: str(r.total_trades)),
            ("maker_fills", "Maker fills", lambda r: str(r.maker_fills)),
            ("taker_fills", "Taker fills", lambda r: str(r.taker_fills)),
            ("contracts_traded", "Contracts traded", lambda r: str(r.contracts_traded)),
            ("win_rate", "Win rate", lambda r: format_pct(None if r.win_rate is None else r.win_rate * 100)),
            ("winning_fills", "Winning closing fills", lambda r: str(r.winning_fills)),
            ("closing_fills", "Closing fills", lambda r: str(r.closing_fills)),
            ("gross_pnl", "Gross PnL", lambda r: format_money(r.gross_pnl)),
            ("realized_pnl", "Realized PnL", lambda r: format_money(r.realized_pnl)),
            ("unrealized_pnl", "Unrealized PnL", lambda r: format_money(r.unrealized_pnl)),
            ("fees", "Fees", lambda r: format_money(r.fees)),
            ("net_pnl", "Net PnL", lambda r: format_money(r.net_pnl)),
            ("max_drawdown", "Max drawdown", lambda r: format_money(r.max_drawdown)),
            (
                "sharpe_hourly",
                "Sharpe (hourly)",
                lambda r: "n/a" if r.sharpe_hourly is None else f"{r.sharpe_hourly:.2f}",
            ),
        ),
    ),
    (
        "Quote statistics",
        (
            ("quotes_generated", "Quotes generated", lambda r: str(r.quotes_generated)),
            ("quote_sets", "Approved by risk", lambda r: str(r.quote_sets)),
            ("quotes_filled", "Quotes filled", lambda r: str(r.quotes_filled)),
            ("quotes_filled_pct", "Quotes filled (% of approved)", lambda r: format_pct(r.quotes_filled_pct)),
            ("avg_spread", "Avg spread", lambda r: format_money(r.avg_spread)),
            ("orders_placed", "Orders placed", lambda r: str(r.orders_placed)),
            ("amends", "Amended", lambda r: str(r.amends)),
            ("decreases", "Decreased", lambda r: str(r.decreases)),
            ("cancels", "Cancelled", lambda r: str(r.cancels)),
            ("orders_rejected", "Refused", lambda r: str(r.orders_rejected)),
        ),
    ),
    (
        "Inventory",
        (
            ("max_long", "Max long", lambda r: f"{r.max_long:+} contracts"),
            ("max_short", "Max short", lambda r: f"{r.max_short:+} contracts"),
            ("final_position", "Final position", lambda r: f"{r.final_position:+} contracts"),
            ("settlement_payout", "Settlement payout", lambda r: format_money(r.settlement_payout)),
            ("time_at_limit_pct", "Time at limit", lambda r: format_pct(r.time_at_limit_pct)),
            ("kill_switch", "Kill switch", lambda r: r.kill_switch or "not tripped"),
        ),
    ),
    (
        "Recorded session (what the node did live)",
        (
            ("recorded_quotes", "Quotes", lambda r: str(r.recorded_quotes)),
            ("recorded_orders", "Orders sent", lambda r: str(r.recorded_orders)),
            ("recorded_fills", "Fills", lambda r: str(r.recorded_fills)),
            ("recorded_net_pnl", "Net PnL", lambda r: format_money(r.recorded_net_pnl)),
        ),
    ),
)
_IDENTITY: Final = ("file", "market", "market_name", "fill_model", "seed", "strategy_digest", "risk_digest")
"""Report fields shown in the header rather than the summary table."""


def _summary(report: BacktestReport) -> str:
    shown = set(_IDENTITY)
    groups = [(name, list(items)) for name, items in _GROUPS]
    extra: list[_Row] = []
    for f in dataclasses.fields(report):
        if f.name not in shown and all(f.name != row[0] for _, items in groups for row in items):
            extra.append((f.name, f.name.replace("_", " ").capitalize(), _generic(f.name)))
    if extra:
        groups.append(("Other", extra))
    # Three columns side by side: results, quoting, and the short groups stacked in the last.
    tables = []
    for column in (groups[:1], groups[1:2], groups[2:]):
        rows = []
        for name, items in column:
            rows.append(f'<tr class="group"><td colspan="2">{escape(name)}</td></tr>')
            rows += [
                f'<tr data-field="{field}"><td>{escape(label)}</td><td class="num">{escape(show(report))}</td></tr>'
                for field, label, show in items
            ]
        tables.append('<table class="summary">' + "".join(rows) + "</table>")
    return '<div class="summary-wrap">' + "".join(tables) + "</div>"


def _generic(name: str) -> Callable[[BacktestReport], str]:
    def show(report: BacktestReport) -> str:
        value: Any = getattr(report, name)
        return "n/a" if value is None else str(value)

    return show


def _header(result: BacktestResult, report: BacktestReport, title: str) -> str:
    tape = result.tape
    start, end = tape.start_us, tape.end_us
    rows = [
        ("File", report.file),
        ("Market", f"{report.market} ({report.market_name})"),
        ("Fill model", f"{report.fill_model} (seed {report.seed})"),
        ("Strategy digest", report.strategy_digest),
        ("Risk policy digest", report.risk_digest),
        ("Session", f"{_utc(start, '%Y-%m-%d %H:%M:%S')} – {_utc(end, '%H:%M:%S')} UTC"),
    ]
    body = "".join(f"<tr><td>{escape(k)}</td><td><code>{escape(v)}</code></td></tr>" for k, v in rows)
    out = f'<h1>{escape(title)}</h1>\n<table class="meta">{body}</table>'
    if report.kill_switch:
        out += f'\n<p class="warn">Kill switch tripped: {escape(report.kill_switch)} — nothing was quoted after it.</p>'
    return out


def _dollar_tick(value: float, step: float) -> str:
    # Cents while ticks are under $10 apart; whole dollars beyond, so wide labels do not crowd the axis.
    places = max(2, decimals_for(step)) if step < 10 else 0
    return f"-${-value:,.{places}f}" if value < -(10.0**-places) / 2 else f"${abs(value):,.{places}f}"


def _number_tick(value: float, step: float) -> str:
    places = decimals_for(step)
    return f"{0.0 if abs(value) < (10.0**-places) / 2 else value:,.{places}f}"


_MINUTE_STEPS: Final = (1 / 60, 2 / 60, 5 / 60, 10 / 60, 15 / 60, 30 / 60, 1, 2, 5, 10, 15, 30, 60, 120, 240)
"""Time tick spacings in minutes: whole seconds and minutes as a clock divides them, not 0.2 min (12 s)."""


def _minute_tick(value: float, step: float) -> str:
    if step >= 1:
        return f"{value:.0f}"
    seconds = round(value * 60)
    return f"{seconds // 60}:{seconds % 60:02d}"


def _plots(result: BacktestResult, report: BacktestReport, max_points: int) -> str:
    tape, s = result.tape, result.samples
    start, end = tape.start_us, max(tape.end_us, s.ts_us[-1] if s.ts_us else tape.end_us)
    xs = [(t - start) / _MINUTE_US for t in s.ts_us]
    end_x = (end - start) / _MINUTE_US
    # The curves end where the session ends, at the result's final figures (after any settlement), so the last
    # PnL point is the report's net PnL.
    tail_xs = [*xs, end_x] if xs else []
    axes: dict[str, Any] = {
        "x_range": (0.0, end_x),
        "x_label": f"minutes from the start ({_utc(start)} UTC)",
        "x_format": _minute_tick,
        "x_steps": _MINUTE_STEPS,
        "max_points": max_points,
    }
    nets = [*s.net_micros, result.net_micros] if xs else []
    segments = []
    drawdown = _drawdown_segment(tail_xs, nets)
    if drawdown is not None:
        px0, py0, px1, py1 = drawdown
        label = f"max drawdown {format_money(report.max_drawdown)}"
        segments.append(Segment(label, px0, py0 / _US, px1, py1 / _US, "#d62728"))
    pnl = plot(
        "plot-pnl",
        "Net PnL",
        y_label="net PnL ($)",
        y_format=_dollar_tick,
        lines=[Line("net PnL (realized + unrealized − fees)", tail_xs, [n / _US for n in nets], "#1f77b4", "pnl")],
        segments=segments,
        **axes,
    )
    limit = result.max_inventory_units / QTY_SCALE
    positions = [*s.position_units, result.position_units] if xs else []
    inventory = plot(
        "plot-inventory",
        "Inventory",
        y_label="position (YES contracts)",
        y_format=_number_tick,
        lines=[Line("position", tail_xs, [p / QTY_SCALE for p in positions], "#6a3d9a", "position", step=True)],
        hlines=[HLine(f"max inventory ±{limit:g}", limit, "#999"), HLine("", -limit, "#999")] if limit > 0 else [],
        **axes,
    )
    buys = [f for f in result.fills if f.buy_yes]
    sells = [f for f in result.fills if not f.buy_yes]
    quotes = plot(
        "plot-quotes",
        "Quotes against mid",
        y_label="YES price ($)",
        y_format=_dollar_tick,
        lines=[
            Line("mid", tail_xs, _held(s.mid_x2, 2 * PRICE_SCALE), "#555", "mid", step=True, dash="4 3"),
            Line("our bid", tail_xs, _held(s.bid_units, PRICE_SCALE), "#2ca02c", "bid", step=True),
            Line("our ask", tail_xs, _held(s.ask_units, PRICE_SCALE), "#d62728", "ask", step=True),
        ],
        markers=[
            _fill_markers("buy fill", buys, start, "#1a9850", "fill-buy", "up"),
            _fill_markers("sell fill", sells, start, "#f46d43", "fill-sell", "down"),
        ],
        bands=[Band("one-sided book (no mid)", _no_mid_spans(xs, s.mid_x2, end_x), "#999")],
        **axes,
    )
    return f"<h2>Plots</h2>\n{pnl}\n{inventory}\n{quotes}"


def _held(values: list[int], scale: int) -> list[float | None]:
    """Sampled prices as steps (a mid or a quote holds until the next re-plan, and every mid change re-plans):
    dollars, None where missing (-1), and a None at the session's end, to which the last value holds."""
    return [*(None if v < 0 else v / scale for v in values), None] if values else []


def _fill_markers(
    label: str, fills: list[BacktestFill], start: int, color: str, css: str, shape: Literal["up", "down"]
) -> Markers:
    return Markers(
        f"{label} ({len(fills)})",
        [(f.ts_us - start) / _MINUTE_US for f in fills],
        [f.yes_price_units / PRICE_SCALE for f in fills],
        color,
        css,
        shape,
        [f"{_utc(f.ts_us)} UTC: {label} {_contracts(f.size_units)} @ {_price(f.yes_price_units)}" for f in fills],
    )


def _no_mid_spans(xs: list[float], mids: list[int], end_x: float) -> list[tuple[float, float]]:
    """The periods without a mid: from a sample with none to the next sample with one (or the end)."""
    spans: list[tuple[float, float]] = []
    since: float | None = None
    for x, mid in zip(xs, mids, strict=True):
        if mid < 0 and since is None:
            since = x
        elif mid >= 0 and since is not None:
            spans.append((since, x))
            since = None
    if since is not None:
        spans.append((since, end_x))
    return spans


def _drawdown_segment(xs: list[float], nets: list[int]) -> tuple[float, int, float, int] | None:
    """(peak x, peak, trough x, trough) of the largest fall from a running peak — the report's max drawdown,
    whose running peak starts at 0 at the session start."""
    peak_x, peak, worst = 0.0, 0, 0
    found: tuple[float, int, float, int] | None = None
    for x, net in zip(xs, nets, strict=True):
        if net >= peak:
            peak_x, peak = x, net
        elif peak - net > worst:
            worst = peak - net
            found = (peak_x, peak, x, net)
    return found


def _fills_table(result: BacktestResult) -> str:
    fills, start = result.fills, result.tape.start_us
    shown = fills[:MAX_FILL_ROWS]
    head = "".join(
        f'<th class="{"num" if n else ""}">{h}</th>'
        for h, n in (
            ("time (UTC)", False),
            ("+min:s", True),
            ("side", False),
            ("YES price", True),
            ("contracts", True),
            ("liquidity", False),
            ("fee", True),
            ("realized", True),
            ("position after", True),
            ("order", False),
        )
    )
    rows = []
    for f in shown:
        offset = max(f.ts_us - start, 0) // _US
        cells = (
            (_utc(f.ts_us, "%H:%M:%S.") + f"{f.ts_us % _US // 1000:03d}", False),
            (f"+{offset // 60}:{offset % 60:02d}", True),
            ("buy" if f.buy_yes else "sell", False),
            (_price(f.yes_price_units), True),
            (_contracts(f.size_units), True),
            ("taker" if f.is_taker else "maker", False),
            (_exact_dollars(f.fee_micros), True),
            (_exact_dollars(f.realized_micros), True),
            (f"{Decimal(f.position_units) / QTY_SCALE:+f}", True),
            (f.order_id, False),
        )
        tds = "".join(f'<td class="{"num" if n else ""}">{escape(v)}</td>' for v, n in cells)
        rows.append(f'<tr class="fill">{tds}</tr>')
    if not fills:
        note = "<p>No fills.</p>"
    elif len(fills) > len(shown):
        note = f"<p>The first {len(shown)} of {len(fills)} fills; {len(fills) - len(shown)} more not shown.</p>"
    else:
        note = f"<p>{len(fills)} fills.</p>"
    table = f'<table class="fills"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>' if rows else ""
    return f"<h2>Fills</h2>\n{note}\n{table}"


def render_html(
    result: BacktestResult, report: BacktestReport, *, title: str | None = None, max_points: int = 2000
) -> str:
    """The report of ``result`` (whose figures are ``report``) as one self-contained HTML document.

    ``max_points`` caps the points of each plotted line (each bucket's extremes are kept); at least 4.
    """
    if max_points < 4:
        raise ValueError(f"max_points must be at least 4, not {max_points}")
    title = title if title is not None else f"Backtest report: {report.file}"
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
            _header(result, report, title),
            "<h2>Summary</h2>",
            _summary(report),
            _plots(result, report, max_points),
            _fills_table(result),
            "</body></html>",
        ]
    )


def write_html(path: Path | str, result: BacktestResult, report: BacktestReport, **kw: Any) -> Path:
    """Write :func:`render_html` ``(result, report, **kw)`` to ``path`` (UTF-8); returns the path."""
    path = Path(path)
    path.write_text(render_html(result, report, **kw), encoding="utf-8")
    return path
