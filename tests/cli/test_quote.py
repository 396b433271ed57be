"""mmctl quote: the operator's preview of a Strategy's four-quote sheet."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mm.cli.main import main
from mm.cli.quote_cmd import QuoteInputError, parse_duration

ROOT = Path(__file__).resolve().parents[2]
PRESETS = str(ROOT / "examples" / "presets")
QUICKSTART = str(ROOT / "examples" / "quickstart")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_baseline_sheet_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys, "quote", "-f", PRESETS, "--strategy", "baseline", "--mid", "0.50", "--volatility", "0.005", "-o", "json"
    )
    assert code == 0, err
    sheet = json.loads(out)
    # baseline: r = mid, no skew, fixed spread 0.02 → YES 0.49 / 0.51, NO the complements, 100 each side.
    assert sheet["quotes"] == {
        "yes_bid": {"price": "0.4900", "size": "100.00"},
        "yes_ask": {"price": "0.5100", "size": "100.00"},
        "no_bid": {"price": "0.4900", "size": "100.00"},
        "no_ask": {"price": "0.5100", "size": "100.00"},
    }
    assert sheet["model"]["reservation_price"] == "0.500000" and sheet["note"] == ""


def test_long_inventory_shifts_quotes_down_and_swaps_sizes(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["quote", "-f", QUICKSTART, "--mid", "0.50", "-t", "30m", "--volatility", "0.005", "-o", "json"]
    _, flat, _ = run(capsys, *args, "--inventory", "0")
    _, long, _ = run(capsys, *args, "--inventory", "30")
    flat_q, long_q = json.loads(flat)["quotes"], json.loads(long)["quotes"]
    assert long_q["yes_bid"]["price"] < flat_q["yes_bid"]["price"]
    assert long_q["no_ask"]["price"] > flat_q["no_ask"]["price"]
    # FR-403 with base 10, Q_max 100, q +30: bid 7, ask 13; NO sizes swapped.
    assert (long_q["yes_bid"]["size"], long_q["yes_ask"]["size"]) == ("7.00", "13.00")
    assert (long_q["no_bid"]["size"], long_q["no_ask"]["size"]) == ("13.00", "7.00")


def test_table_output(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "quote", "-f", PRESETS, "--strategy", "baseline", "--mid", "0.3", "--volatility", "0")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("Strategy/baseline: mid 0.3000, inventory +0")
    assert any(line.split()[:3] == ["YES", "0.2900", "×"] for line in lines), out
    assert any(line.split()[:3] == ["NO", "0.6900", "×"] for line in lines), out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--mid", "0.5"], "pass --volatility"),
        (["--mid", "1.2", "--volatility", "0.01"], "--mid must be inside (0, 1)"),
        (["--mid", "abc", "--volatility", "0.01"], "--mid 'abc' is not a number"),
        (["--mid", "0.5", "--volatility", "-1"], "must not be negative"),
        (["--mid", "0.5", "--volatility", "0.01", "-t", "soon"], "use seconds or a duration"),
        (["--mid", "0.5", "--volatility", "0.01", "--tick-grid", "quarter"], "unknown price level structure"),
        (["--mid", "0.5", "--volatility", "0.01", "-o", "xml"], "--output must be table or json"),
    ],
)
def test_bad_inputs_are_clear_errors(capsys: pytest.CaptureFixture[str], extra: list[str], message: str) -> None:
    code, out, err = run(capsys, "quote", "-f", QUICKSTART, *extra)
    assert code == 1 and out == ""
    assert message in err


def test_several_strategies_need_a_choice(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "quote", "-f", PRESETS, "--mid", "0.5", "--volatility", "0.01")
    assert code == 1 and "choose one with --strategy" in err
    code, _, err = run(capsys, "quote", "-f", PRESETS, "--strategy", "nope", "--mid", "0.5", "--volatility", "0.01")
    assert code == 1 and "no valid Strategy/nope" in err


def test_invalid_strategy_file_reports_admission_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("apiVersion: mm/v1alpha1\nkind: Strategy\nmetadata: {name: s}\nspec: {max_inventory: 0}\n")
    code, _, err = run(capsys, "quote", "-f", str(path), "--mid", "0.5", "--volatility", "0.01")
    assert code == 1 and "spec.max_inventory: must be greater than 0" in err


@pytest.mark.parametrize(
    ("text", "seconds"), [("1800", 1800.0), ("30m", 1800.0), ("1h30m", 5400.0), ("90s", 90.0), ("0.5h", 1800.0)]
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_parse_duration_rejects_garbage() -> None:
    for text in ("", "h", "10x", "-5m", "-5", "NaN"):
        with pytest.raises(QuoteInputError):
            parse_duration(text)
