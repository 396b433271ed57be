"""mmctl backtest / sweep: formats, a changed Strategy from a file, exit codes, never a traceback."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from mm.backtest.synthetic import write_synthetic_session
from mm.cli.main import main
from mm.recording.format import read_session
from tests.backtest.sessions import simple_strategy

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = str(next((ROOT / "examples" / "sessions").glob("*.jsonl.gz")))

WIDE_STRATEGY = """\
apiVersion: mm/v1alpha1
kind: Strategy
metadata: {name: wide}
spec:
  preset: conservative
  components:
    spread: {params: {base_spread: 0.2}}
"""


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def busy(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("cli") / "s.jsonl.gz"
    return str(write_synthetic_session(path, events=3000, seconds=300, strategy=simple_strategy(base_spread="0.02")))


def test_backtest_prints_the_report(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "backtest", EXAMPLE)
    assert code == 0, err
    for line in (
        "Backtest Report:",
        "Total Trades:",
        "Net PnL:",
        "Max Drawdown:",
        "Sharpe (hourly):",
        "Time at Limit:",
    ):
        assert line in out
    # What the node did live, beside it (counted from the file).
    counts = Counter(r.type for r in read_session(EXAMPLE))
    assert f"{counts['quote_generated']} quotes, {counts['order_sent']} orders sent, {counts['fill']} fills" in out


def test_json_and_csv_agree(capsys: pytest.CaptureFixture[str], busy: str) -> None:
    code, out, _ = run(capsys, "backtest", busy, "-o", "json", "--fill-model", "optimistic")
    assert code == 0
    data = json.loads(out)
    code, out, _ = run(capsys, "backtest", busy, "-o", "csv", "--fill-model", "optimistic")
    assert code == 0
    row = next(csv.DictReader(io.StringIO(out)))
    assert row["net_pnl"] == data["net_pnl"] and int(row["total_trades"]) == data["total_trades"] > 0


def test_a_strategy_file_replaces_the_recorded_one(
    capsys: pytest.CaptureFixture[str], busy: str, tmp_path: Path
) -> None:
    spec = tmp_path / "wide.yaml"
    spec.write_text(WIDE_STRATEGY)
    _, recorded, _ = run(capsys, "backtest", busy, "-o", "json")
    code, changed, err = run(capsys, "backtest", busy, "-o", "json", "-f", str(spec))
    assert code == 0, err
    before, after = json.loads(recorded), json.loads(changed)
    assert before["strategy_digest"] != after["strategy_digest"]
    assert float(after["avg_spread"]) > float(before["avg_spread"])


def test_an_invalid_strategy_file_names_file_and_field(
    capsys: pytest.CaptureFixture[str], busy: str, tmp_path: Path
) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(WIDE_STRATEGY.replace("base_spread: 0.2", "base_spread: wide"))
    code, _, err = run(capsys, "backtest", busy, "-f", str(spec))
    assert code == 1
    assert "bad.yaml:7" in err and "base_spread" in err and "Traceback" not in err


def test_a_truncated_session_is_exit_1_with_the_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = Path(EXAMPLE).read_bytes()
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(data[: len(data) // 2])
    code, _, err = run(capsys, "backtest", str(cut))
    assert code == 1
    assert "cannot read the session" in err and f"{cut}:" in err and "Traceback" not in err
    code, out, err = run(capsys, "backtest", str(cut), "--skip-bad")
    assert code == 0 and "Backtest Report" in out and "skipped" in err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "backtest", EXAMPLE, "--fill-model", "psychic")[0] == 2
    assert run(capsys, "backtest", EXAMPLE, "--settle", "maybe")[0] == 2
    assert run(capsys, "backtest", EXAMPLE, "-o", "xml")[0] == 2
    assert run(capsys, "backtest", EXAMPLE, "--requote-interval", "soon")[0] == 2
    assert run(capsys, "backtest", "--calibrate", EXAMPLE, "--window", "nan")[0] == 2
    assert run(capsys, "sweep", EXAMPLE, "--grid", "gamma=0.1", "--export", "x.txt")[0] == 2


def test_sweep_ranks_the_grid_and_exports(capsys: pytest.CaptureFixture[str], busy: str, tmp_path: Path) -> None:
    export = tmp_path / "sweep.json"
    code, out, err = run(
        capsys,
        "sweep",
        busy,
        "--grid",
        "base_size=5,10",
        "--grid",
        "base_spread=0.02,0.04",
        "--workers",
        "2",
        "-o",
        "csv",
        "--export",
        str(export),
    )
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 4
    assert {(r["base_size"], r["base_spread"]) for r in rows} == {
        ("5", "0.02"),
        ("5", "0.04"),
        ("10", "0.02"),
        ("10", "0.04"),
    }
    nets = [float(r["net_pnl"]) for r in rows]
    assert nets == sorted(nets, reverse=True)
    assert [r["net_pnl"] for r in json.loads(export.read_text())] == [r["net_pnl"] for r in rows]


def test_sweep_table_and_a_bad_axis(capsys: pytest.CaptureFixture[str], busy: str) -> None:
    code, out, _ = run(capsys, "sweep", busy, "--grid", "base_spread=0.02,0.04", "--workers", "1")
    assert code == 0
    assert "2 backtests, ranked by net_pnl" in out and "base spread" in out
    code, _, err = run(capsys, "sweep", busy, "--grid", "colour=red")
    assert code == 1 and "grid axis colour" in err


def test_html_report_is_written_beside_the_text(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    code, out, err = run(capsys, "backtest", EXAMPLE, "--fill-model", "optimistic", "--html", str(page))
    assert code == 0 and "Backtest Report" in out and f"wrote {page}" in err
    html = page.read_text()
    for plot in ("plot-pnl", "plot-inventory", "plot-quotes"):
        assert f'id="{plot}"' in html
    net = json.loads(run(capsys, "backtest", EXAMPLE, "--fill-model", "optimistic", "-o", "json")[1])["net_pnl"]
    assert f"${Decimal(net):,.2f}" in html  # as the text report rounds it


def test_calibrate_compares_every_fill_mode_with_the_real_fills(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "backtest", "--calibrate", EXAMPLE, "-o", "json")
    assert code == 0, err
    data = json.loads(out)
    fills = Counter(r.type for r in read_session(EXAMPLE))["fill"]
    assert data["real_fills"] == fills > 0
    assert [m["model"] for m in data["models"]] == ["optimistic", "probabilistic", "pessimistic", "queue", "cross"]
    code, out, _ = run(capsys, "backtest", "--calibrate", EXAMPLE)
    assert code == 0 and "Fill-model calibration" in out and "target > 90%" in out
    assert run(capsys, "backtest", "--calibrate", EXAMPLE, "-o", "csv")[0] == 2
