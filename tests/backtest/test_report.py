"""Report figures from hand-made results: drawdown, Sharpe, win rate, percentages, and the three formats."""

from __future__ import annotations

import csv
import io
import json
import math
from decimal import Decimal
from pathlib import Path

import pytest

from mm.backtest.config import backtest_config
from mm.backtest.report import CSV_FIELDS, build_report
from mm.backtest.results import BacktestFill, BacktestResult
from mm.backtest.tape import load_tape
from tests.backtest.sessions import START_US, SessionWriter, quiet_book

MIN = 60_000_000


@pytest.fixture
def result(tmp_path: Path) -> BacktestResult:
    writer = quiet_book(SessionWriter())
    writer.delta(600, "yes", 4400, 100, 3100)  # a ten-minute session
    tape = load_tape(writer.write(tmp_path / "s.jsonl.gz"))
    return BacktestResult(tape, backtest_config(tape))


def fill(ts_s: int, realized: int, *, closing: bool, taker: bool = False, size: int = 100) -> BacktestFill:
    return BacktestFill(START_US + ts_s * 1_000_000, "o", True, 5000, size, 0, taker, realized, closing, 0)


def test_drawdown_is_the_largest_fall_from_a_running_peak(result: BacktestResult) -> None:
    for i, net in enumerate([0, 300, 100, 400, -200, 50]):
        result.samples.add(START_US + i * MIN, 10_000, -1, -1, 0, net)
    result.realized_micros = 50
    assert build_report(result).max_drawdown == Decimal("0.0006")  # 400 → −200 micro-dollars


def test_sharpe_uses_minute_changes_carried_over_quiet_minutes(result: BacktestResult) -> None:
    # Net PnL by minute close: 0, 1, 1 (quiet minute), 3, 3, ... ($): changes 1, 0, 2, 0 × 6
    for minute, net in [(0, 0), (1, 1_000_000), (3, 3_000_000)]:
        result.samples.add(START_US + minute * MIN, 10_000, -1, -1, 0, net)
    changes = [1.0, 0.0, 2.0] + [0.0] * 7
    mean = sum(changes) / len(changes)
    sd = math.sqrt(sum((c - mean) ** 2 for c in changes) / len(changes))
    assert build_report(result).sharpe_hourly == pytest.approx(mean / sd * math.sqrt(60))


def test_no_variation_or_too_short_has_no_sharpe(result: BacktestResult) -> None:
    assert build_report(result).sharpe_hourly is None


def test_win_rate_counts_closing_fills_only(result: BacktestResult) -> None:
    result.fills = [fill(1, 0, closing=False), fill(2, 500, closing=True), fill(3, -20, closing=True, taker=True)]
    report = build_report(result)
    assert (report.closing_fills, report.winning_fills, report.win_rate) == (2, 1, Decimal("0.5"))
    assert (report.maker_fills, report.taker_fills, report.contracts_traded) == (2, 1, Decimal(3))


def test_quote_statistics_and_time_at_limit(result: BacktestResult) -> None:
    result.quote_sets, result.filled_orders = 400, 10
    result.two_sided, result.spread_sum_units = 4, 4 * 400 + 100
    result.at_limit_us = 60_000_000
    report = build_report(result)
    assert report.quotes_filled_pct == Decimal("2.50")
    assert report.avg_spread == Decimal("0.042500")
    assert report.time_at_limit_pct == Decimal("10.00")  # one minute of ten


def test_json_csv_and_text_carry_the_same_numbers(result: BacktestResult) -> None:
    result.realized_micros, result.fees_micros = 1_234_567, 34_567
    report = build_report(result)
    data = report.to_json()
    assert data["net_pnl"] == "1.200000" and data["fees"] == "0.034567" and data["win_rate"] is None
    json.dumps(data)  # plain JSON values only
    rows = list(csv.DictReader(io.StringIO(report.to_csv())))
    assert list(rows[0]) == list(CSV_FIELDS) and rows[0]["net_pnl"] == "1.200000" and rows[0]["win_rate"] == ""
    assert report.to_csv(header=False).count("\n") == 1
    text = report.to_text()
    assert "Net PnL:         $1.20" in text and "Fees:            $0.03" in text and "Win Rate:        n/a" in text
