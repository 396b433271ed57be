"""The FR-903 HTML report: one self-contained page, its three inline SVG plots, summary and fills tables."""

from __future__ import annotations

import dataclasses
import re
import xml.etree.ElementTree as ET
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import pytest

from mm.backtest.config import BacktestConfig, backtest_config
from mm.backtest.engine import run_backtest
from mm.backtest.html_report import MAX_FILL_ROWS, render_html, write_html
from mm.backtest.report import BacktestReport, build_report
from mm.backtest.results import BacktestFill, BacktestResult, Samples
from mm.backtest.svg_plot import downsample
from mm.backtest.synthetic import write_synthetic_session
from mm.backtest.tape import SessionTape, load_tape
from mm.domain.ticks import PriceRange, TickGrid
from mm.specs.risk import RiskPolicySpec
from mm.specs.strategy import StrategySpec

START = 1_767_286_800_000_000  # 2026-01-01T17:00:00Z
S = 1_000_000
SVG_NS = "{http://www.w3.org/2000/svg}"
PLOT_IDS = ("plot-pnl", "plot-inventory", "plot-quotes")


# ---------------------------------------------------------------------- building results by hand


def make_result(
    *,
    path: str = "session_test.jsonl.gz",
    ticker: str = "KXTEST-26JAN0117-T1",
    samples: Samples | None = None,
    fills: list[BacktestFill] | None = None,
    duration_s: int = 300,
    max_inventory_units: int = 5000,
    realized: int = 0,
    unrealized: int = 0,
) -> BacktestResult:
    tape = SessionTape(
        path=Path(path),
        ticker=ticker,
        session_id="t",
        start_us=START,
        end_us=START + duration_s * S,
        grid=TickGrid.from_ranges([PriceRange(0, 10_000, 100)]),
        close_time_us=None,
        markets=(),
        trading_node=None,
        exchanges={},
    )
    config = BacktestConfig(
        market_name="test-market",
        strategy=StrategySpec.model_validate({"preset": "conservative"}),
        risk_policy=RiskPolicySpec.model_validate({}),
        fill_model="optimistic",
    )
    result = BacktestResult(tape, config, samples=samples or Samples(), fills=fills or [])
    result.max_inventory_units = max_inventory_units
    result.realized_micros, result.unrealized_micros = realized, unrealized
    if fills:
        result.position_units = fills[-1].position_units
    return result


def make_fill(
    ts_s: float, *, buy: bool, price: int, size: int = 100, position: int = 0, order: str = "o1"
) -> BacktestFill:
    return BacktestFill(
        ts_us=START + int(ts_s * S),
        order_id=order,
        buy_yes=buy,
        yes_price_units=price,
        size_units=size,
        fee_micros=3500,
        is_taker=False,
        realized_micros=0,
        closing=False,
        position_units=position,
    )


def small_result() -> BacktestResult:
    """Five re-plans a minute apart; the mid missing at the third, our ask at the third and fifth."""
    samples = Samples()
    rows = [
        # t (s), mid_x2, bid, ask, position, net (micro-dollars)
        (0, 10_000, 4900, 5100, 0, 0),
        (60, 10_200, 5000, 5200, 1000, 2_000_000),
        (120, -1, -1, -1, 1000, -1_000_000),
        (180, 10_400, 5100, 5300, -500, 500_000),
        (240, 10_600, 5200, -1, -500, 1_500_000),
    ]
    for t, mid, bid, ask, pos, net in rows:
        samples.add(START + t * S, mid, bid, ask, pos, net)
    fills = [
        make_fill(30, buy=True, price=4900, size=1000, position=1000, order="a"),
        make_fill(150, buy=False, price=5200, size=1500, position=-500, order="b"),
        make_fill(200, buy=True, price=5100, size=100, position=-400, order="c"),
    ]
    result = make_result(samples=samples, fills=fills, realized=1_000_000, unrealized=500_000)
    result.position_units = -500
    return result


# ---------------------------------------------------------------------- reading the page


class Page(HTMLParser):
    """Every element with its attributes, the id of the <svg> it sits in, and the text inside each."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str], str | None]] = []
        self.texts: list[tuple[str, str | None, str]] = []  # (innermost tag, svg id, text)
        self.stack: list[str] = []
        self.svg: str | None = None
        self.rows: dict[str, list[str]] = {}  # summary rows: data-field → the texts of its cells
        self.row: str | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "svg":
            self.svg = a.get("id")
        if tag == "tr" and "data-field" in a:
            self.row = a["data-field"]
            self.rows[self.row] = []
        self.elements.append((tag, a, self.svg))
        self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}, self.svg))

    def handle_endtag(self, tag: str) -> None:
        while self.stack and self.stack.pop() != tag:
            pass
        if tag == "svg":
            self.svg = None
        if tag == "tr":
            self.row = None

    def handle_data(self, data: str) -> None:
        if data.strip() and self.row is not None:
            self.rows[self.row].append(data.strip())
        if data.strip():
            self.texts.append((self.stack[-1] if self.stack else "", self.svg, data.strip()))

    def find(self, tag: str, svg: str | None = None, cls: str | None = None) -> list[dict[str, str]]:
        return [
            a
            for t, a, s in self.elements
            if t == tag and (svg is None or s == svg) and (cls is None or cls in a.get("class", "").split())
        ]

    def text_in(self, svg: str) -> list[str]:
        return [text for _, s, text in self.texts if s == svg]


def points(attrs: dict[str, str]) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in (p.split(",") for p in attrs["points"].split())]


def svgs(html: str) -> dict[str, ET.Element]:
    """Each plot parsed as XML: the SVG must be well-formed on its own."""
    found = {}
    for match in re.finditer(r"<svg\b.*?</svg>", html, re.S):
        root = ET.fromstring(match.group(0))
        found[root.attrib["id"]] = root
    return found


def report_of(result: BacktestResult) -> BacktestReport:
    return build_report(result)


# ---------------------------------------------------------------------- the plots


def test_three_plots_with_ids_titles_and_one_point_per_sample() -> None:
    result = small_result()
    html = render_html(result, report_of(result))
    page = Page(html)
    parsed = svgs(html)
    assert sorted(parsed) == sorted(PLOT_IDS)
    for plot_id, root in parsed.items():
        title = root.find(f"{SVG_NS}title")
        assert title is not None and title.text
        assert page.find("g", plot_id, "legend")
    # Net PnL: the five samples and the final figure at the session's end.
    (pnl,) = page.find("polyline", "plot-pnl", "pnl")
    pnl_points = points(pnl)
    assert len(pnl_points) == 6
    assert [x for x, _ in pnl_points] == sorted(x for x, _ in pnl_points)
    ys = [y for _, y in pnl_points]
    assert ys.index(min(ys)) == 1  # +$2.00 is the highest point (SVG y grows downward)
    assert ys.index(max(ys)) == 2  # −$1.00 the lowest
    # Inventory is a step line: 6 positions → 6 points plus 5 corners.
    (position,) = page.find("polyline", "plot-inventory", "position")
    steps = points(position)
    assert len(steps) == 11
    assert all(steps[i][1] == steps[i + 1][1] for i in range(0, 10, 2))  # level until the next sample
    assert all(steps[i][0] == steps[i + 1][0] for i in range(1, 10, 2))  # vertical moves at a sample's time
    # Quotes and the mid are steps, each value held until the next sample. The mid is missing at the third
    # sample: two pieces, no line across the gap — samples 1-2 held until the gap (4 points), samples 4-5 held
    # until the session's end (4 points).
    mids = [points(p) for p in page.find("polyline", "plot-quotes", "mid")]
    assert [len(p) for p in mids] == [4, 4]
    assert mids[0][-1][0] == steps[4][0]  # the first piece ends at the third sample's time (2 min)
    assert mids[1][-1][0] == pnl_points[-1][0]  # the second at the session's end (5 min)
    assert [len(points(p)) for p in page.find("polyline", "plot-quotes", "bid")] == [4, 4]
    # The ask is missing at the third and fifth: a piece of two samples, then one held for a minute.
    asks = [points(p) for p in page.find("polyline", "plot-quotes", "ask")]
    assert [len(p) for p in asks] == [4, 2]
    assert asks[1][0][1] == asks[1][1][1] and asks[1][0][0] == steps[6][0] and asks[1][1][0] == steps[8][0]
    # The period without a mid is shaded.
    assert len(page.find("rect", "plot-quotes", "band")) == 1


def test_plots_have_time_and_value_tick_labels() -> None:
    result = small_result()
    page = Page(render_html(result, report_of(result)))
    pnl_text = page.text_in("plot-pnl")
    assert "Net PnL" in pnl_text
    assert {"0", "1", "2", "3", "4", "5"} <= set(pnl_text)  # minutes from the start, over 5 minutes
    assert any(t.startswith("minutes from the start (17:00:00 UTC") for t in pnl_text)
    assert "$2.00" in pnl_text and "-$1.00" in pnl_text
    assert "YES price ($)" in page.text_in("plot-quotes")


def test_inventory_limits_are_drawn_symmetric_around_zero() -> None:
    result = small_result()
    page = Page(render_html(result, report_of(result)))
    limits = page.find("line", "plot-inventory", "threshold")
    assert len(limits) == 2
    zero_y = points(page.find("polyline", "plot-inventory", "position")[0])[0][1]  # the first position is 0
    upper, lower = sorted(float(a["y1"]) for a in limits)
    assert upper < zero_y < lower
    assert (upper + lower) / 2 == pytest.approx(zero_y, abs=0.11)
    assert "max inventory ±50" in page.text_in("plot-inventory")

    result.max_inventory_units = 0  # no limit configured: nothing to draw
    assert Page(render_html(result, report_of(result))).find("line", "plot-inventory", "threshold") == []


def test_max_drawdown_segment_runs_from_the_peak_to_the_trough() -> None:
    result = small_result()
    report = report_of(result)
    assert report.max_drawdown == 3  # from +$2.00 down to −$1.00
    page = Page(render_html(result, report))
    (segment,) = page.find("line", "plot-pnl", "segment")
    pnl = points(page.find("polyline", "plot-pnl", "pnl")[0])
    assert (float(segment["x1"]), float(segment["y1"])) == pnl[1]
    assert (float(segment["x2"]), float(segment["y2"])) == pnl[2]
    assert "max drawdown $3.00" in page.text_in("plot-pnl")


def test_every_fill_is_a_marker_buys_up_sells_down() -> None:
    result = small_result()
    page = Page(render_html(result, report_of(result)))
    buys = page.find("polygon", "plot-quotes", "fill-buy")
    sells = page.find("polygon", "plot-quotes", "fill-sell")
    assert (len(buys), len(sells)) == (2, 1)
    for marker, up in [(m, True) for m in buys] + [(m, False) for m in sells]:
        (_, tip_y), *base = points(marker)
        assert all((tip_y < y) is up for _, y in base)
    # A buy at $0.49 sits lower on the price axis than the sell at $0.52.
    assert points(buys[0])[0][1] > points(sells[0])[0][1]
    assert "buy fill (2)" in page.text_in("plot-quotes") and "sell fill (1)" in page.text_in("plot-quotes")


def test_downsampling_caps_every_line_and_keeps_the_spikes() -> None:
    n = 10_000
    samples = Samples()
    for i in range(n):
        net = 50_000_000 if i == 4321 else -50_000_000 if i == 7777 else (i % 7) * 10_000
        mid = 10_000 + (i % 5) * 100 if i % 1000 else -1
        samples.add(START + i * 30_000, mid, 4900, 5100, (i % 11) * 100, net)
    result = make_result(samples=samples, duration_s=300)
    page = Page(render_html(result, report_of(result), max_points=200))
    lines = page.find("polyline")
    assert lines and all(len(points(p)) <= 200 for p in lines)
    assert sum(len(points(p)) for p in page.find("polyline", "plot-quotes", "mid")) <= 200
    (frame,) = page.find("rect", "plot-pnl", "frame")
    top, height = float(frame["y"]), float(frame["height"])
    ys = [y for _, y in points(page.find("polyline", "plot-pnl", "pnl")[0])]
    # Against ±$50 every other value is near the middle; the spike and the dip reach the frame's edges.
    assert min(ys) < top + 0.1 * height
    assert max(ys) > top + 0.9 * height
    assert render_html(result, report_of(result), max_points=200) == render_html(
        result, report_of(result), max_points=200
    )


def test_downsample_keeps_bucket_extremes_endpoints_and_gaps() -> None:
    values: list[float | None] = [float((i * 37) % 101) for i in range(5000)]
    values[1234], values[3456] = 1000.0, -1000.0
    values[2000:2100] = [None] * 100
    kept = downsample(values, 100)
    indices = [i for i in kept if i is not None]
    assert len(indices) <= 100
    assert indices == sorted(indices) and indices[0] == 0 and indices[-1] == 4999
    assert 1234 in indices and 3456 in indices
    assert all(values[i] is not None for i in indices)
    before = [i for i in indices if i < 2000]
    after = [i for i in indices if i >= 2100]
    assert kept.index(None) == len(before) and kept.count(None) == 1  # one break, at the gap
    assert len(before) + len(after) == len(indices)
    assert downsample(values, 100) == kept
    short: list[float | None] = [1.0, None, None, 2.0, 3.0, None]
    assert downsample(short, 10) == [0, None, 3, 4]  # below the cap: everything, gaps as single breaks


# ---------------------------------------------------------------------- the tables


def test_summary_table_has_every_figure_as_the_text_report_writes_it() -> None:
    result = small_result()
    report = report_of(result)
    page = Page(render_html(result, report))
    identity = {"file", "market", "market_name", "fill_model", "seed", "strategy_digest", "risk_digest"}
    assert set(page.rows) == {f.name for f in dataclasses.fields(BacktestReport)} - identity
    cells = [text for tag, svg, text in page.texts if tag == "td" and svg is None]
    assert report.net_pnl == Decimal("1.5")  # realized $1.00 + unrealized $0.50
    assert page.rows["net_pnl"] == ["Net PnL", "$1.50"]
    assert page.rows["max_drawdown"] == ["Max drawdown", "$3.00"]
    assert page.rows["win_rate"] == ["Win rate", "n/a"]  # no closing fill
    assert page.rows["final_position"] == ["Final position", "-5 contracts"]
    for money in re.findall(r"-?\$[\d,]+\.\d\d", report.to_text()):
        assert money in cells
    assert "n/a" in cells  # no closing fill: no win rate; nothing recorded: no recorded PnL
    header = " ".join(text for tag, _, text in page.texts if tag == "code")
    for value in ("session_test.jsonl.gz", "KXTEST-26JAN0117-T1", "optimistic (seed 0)", report.strategy_digest):
        assert value in header


def test_fills_table_lists_each_fill_and_says_how_many_were_left_out() -> None:
    result = small_result()
    page = Page(render_html(result, report_of(result)))
    rows = page.find("tr", cls="fill")
    assert len(rows) == 3
    cells = [text for tag, svg, text in page.texts if tag == "td"]
    for expected in ("17:00:30.000", "buy", "sell", "$0.49", "$0.52", "15", "maker", "$0.0035", "-5", "-4"):
        assert expected in cells

    many = [make_fill(i, buy=i % 2 == 0, price=5000, position=0) for i in range(MAX_FILL_ROWS + 3)]
    big = make_result(fills=many, samples=small_result().samples)
    page = Page(render_html(big, report_of(big)))
    assert len(page.find("tr", cls="fill")) == MAX_FILL_ROWS
    assert any(f"of {MAX_FILL_ROWS + 3} fills; 3 more not shown" in text for _, _, text in page.texts)
    # The markers are not truncated: every fill is on the plot.
    markers = page.find("polygon", "plot-quotes", "fill-buy") + page.find("polygon", "plot-quotes", "fill-sell")
    assert len(markers) == MAX_FILL_ROWS + 3


# ---------------------------------------------------------------------- escaping, empty data, files


def test_strings_from_the_file_are_escaped() -> None:
    result = small_result()
    result.tape.path = Path("<script>alert(1)<script>.jsonl.gz")
    result.tape.ticker = 'KX"&<b>'
    result.kill_switch = "<img src=x onerror=alert(2)>"
    result.fills[0] = dataclasses.replace(result.fills[0], order_id="</td><script>x</script>")
    html = render_html(result, report_of(result))
    page = Page(html)
    assert page.find("script") == [] and page.find("img") == [] and page.find("b") == []
    assert "&lt;script&gt;alert(1)&lt;script&gt;.jsonl.gz" in html
    texts = [text for _, _, text in page.texts]
    assert "Backtest report: <script>alert(1)<script>.jsonl.gz" in texts  # shown as text, verbatim
    assert "</td><script>x</script>" in texts
    svgs(html)  # the plots (with the title in them) still parse as XML


def test_custom_title_is_escaped_in_head_and_heading() -> None:
    result = small_result()
    page = Page(render_html(result, report_of(result), title="A & B <i>"))
    assert [text for tag, _, text in page.texts if tag in ("title", "h1")][:2] == ["A & B <i>", "A & B <i>"]
    assert page.find("i") == []


def test_empty_result_renders_no_data_in_every_plot() -> None:
    result = make_result()
    html = render_html(result, report_of(result))
    page = Page(html)
    assert sorted(svgs(html)) == sorted(PLOT_IDS)
    for plot_id in PLOT_IDS:
        assert "no data" in page.text_in(plot_id)
    assert page.find("polyline") == [] and page.find("polygon", cls="fill-buy") == []
    assert page.find("line", cls="threshold") == []
    assert "No fills." in [text for _, _, text in page.texts]


def test_one_sided_book_throughout_leaves_only_the_quotes_plot_empty() -> None:
    samples = Samples()
    for i in range(10):
        samples.add(START + i * 10 * S, -1, -1, -1, 0, 0)
    result = make_result(samples=samples, duration_s=100)
    page = Page(render_html(result, report_of(result)))
    assert "no data" in page.text_in("plot-quotes")
    assert page.find("polyline", "plot-quotes") == []
    assert len(page.find("rect", "plot-quotes", "band")) == 1  # the whole session without a mid
    assert "no data" not in page.text_in("plot-pnl") and len(page.find("polyline", "plot-pnl")) == 1
    assert "no data" not in page.text_in("plot-inventory")


def test_page_is_self_contained() -> None:
    result = small_result()
    html = render_html(result, report_of(result))
    page = Page(html)
    assert page.find("script") == [] and page.find("link") == [] and page.find("img") == []
    assert not [a for _, a, _ in page.elements if any(k in a for k in ("src", "href"))]
    assert "url(" not in html and "@import" not in html


def test_max_points_below_four_is_refused() -> None:
    result = small_result()
    with pytest.raises(ValueError, match="max_points"):
        render_html(result, report_of(result), max_points=3)


def test_a_busy_synthetic_session_end_to_end(tmp_path: Path) -> None:
    tape = load_tape(write_synthetic_session(tmp_path / "busy.jsonl.gz", events=20_000, seconds=1200))
    result = run_backtest(tape, backtest_config(tape, fill_model="optimistic"))
    report = build_report(result)
    assert len(result.samples.ts_us) > 500  # busy enough to need thinning
    out = write_html(tmp_path / "report.html", result, report, max_points=500)
    html = out.read_text(encoding="utf-8")
    assert html == render_html(result, report, max_points=500)
    page = Page(html)
    assert sorted(svgs(html)) == sorted(PLOT_IDS)
    assert all(len(points(p)) <= 500 for p in page.find("polyline"))
    markers = page.find("polygon", "plot-quotes", "fill-buy") + page.find("polygon", "plot-quotes", "fill-sell")
    assert len(markers) == len(result.fills)
    assert len(page.find("polygon", "plot-quotes", "fill-buy")) == sum(f.buy_yes for f in result.fills)
    net = f"-${-report.net_pnl:,.2f}" if report.net_pnl < 0 else f"${report.net_pnl:,.2f}"
    assert net in [text for tag, svg, text in page.texts if tag == "td"]
    assert len(page.find("tr", cls="fill")) == min(len(result.fills), MAX_FILL_ROWS)
