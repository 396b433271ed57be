"""mmctl validate / schema / version: output, exit codes, and never a traceback on bad input."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from mm import __version__
from mm.cli.main import main
from tests.specs.samples import BUNDLE, billion_laughs

ROOT = Path(__file__).resolve().parents[2]


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_validate_the_quickstart(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "validate", "-f", str(ROOT / "examples" / "quickstart"))
    assert code == 0, err
    assert sorted(out.splitlines()) == sorted(
        [
            "Exchange/sim valid",
            "Strategy/btc-hourly valid",
            "RiskPolicy/small-book valid",
            "MarketSelector/btc-hourly-strikes valid",
            "TradingNode/local valid",
        ]
    )


def test_validate_several_paths_and_stdin(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(BUNDLE))
    code, out, _ = run(capsys, "validate", "-f", "-", "-f", str(ROOT / "examples" / "presets"))
    assert code == 0
    assert "Market/m1 valid" in out and "Strategy/aggressive valid" in out


def test_validate_lists_every_error_and_exits_1(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "apiVersion: mm/v1alpha1\nkind: Strategy\nmetadata: {name: s}\nspec:\n  max_inventory: 0\n"
        "  components: {skew: {type: quadratic}}\n"
        "---\napiVersion: mm/v1alpha1\nkind: Gadget\nmetadata: {name: g}\nspec: {}\n"
    )
    code, out, err = run(capsys, "validate", "-f", str(path))
    assert code == 1 and out == ""
    lines = err.splitlines()
    assert f"error: {path}:5:3: Strategy/s: spec.max_inventory: must be greater than 0" in lines
    assert any(line.startswith(f"error: {path}:6:16: Strategy/s: spec.components.skew: unknown type") for line in lines)
    assert f"error: {path}:9:1: kind: unknown kind 'Gadget'; known kinds: " in err
    assert lines[-1] == "3 problems found"


def test_warnings_do_not_fail_validation(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("apiVersion: mm/v1alpha1\nkind: Strategy\nmetadata: {name: s}\nspec: {}\nstatus: {phase: x}\n")
    code, out, err = run(capsys, "validate", "-f", str(path))
    assert code == 0 and out == "Strategy/s valid\n"
    assert "warning: " in err and "status is written by the controller" in err


BAD_INPUTS = {
    "empty": ("", "file is empty"),
    "not-yaml": ("{{{ [unclosed\n", "error: "),
    "tabs": ("apiVersion: mm/v1alpha1\nspec:\n\tventure: x\n", "tab character used for indentation"),
    "binary": ("\x00\x01\x02garbage", "error: "),
    "alias-bomb": (billion_laughs(), "alias bomb"),
    "unknown-kind": ("apiVersion: mm/v1alpha1\nkind: Nope\nmetadata: {name: n}\nspec: {}\n", "unknown kind"),
    "duplicate-key": ("apiVersion: mm/v1alpha1\napiVersion: mm/v1alpha1\n", "duplicate key 'apiVersion'"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_a_clear_error_never_a_traceback(case: str, tmp_path: Path) -> None:
    text, expected = BAD_INPUTS[case]
    path = tmp_path / f"{case}.yaml"
    path.write_text(text)
    proc = subprocess.run(
        [sys.executable, "-m", "mm.cli.main", "validate", "-f", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert expected in proc.stderr
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout


def test_a_ten_megabyte_file_is_refused_by_size(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_bytes(b"a: 1\n" * (2 * 1024 * 1024))
    code, _, err = run(capsys, "validate", "-f", str(path))
    assert code == 1
    assert "10.0 MiB; spec files are limited to 1 MiB" in err


def test_missing_path_and_usage_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "validate", "-f", str(tmp_path / "nope.yaml"))
    assert code == 1 and "no such file or directory" in err
    code, _, err = run(capsys, "validate")
    assert code == 2 and "Missing option" in err
    code, _, err = run(capsys, "frobnicate")
    assert code == 2


def test_schema_prints_a_kind_by_any_of_its_names(capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("Market", "markets", "mk"):
        code, out, _ = run(capsys, "schema", name)
        assert code == 0
        assert json.loads(out)["title"] == "Market (mm/v1alpha1)"
    code, out, _ = run(capsys, "schema")
    assert len(json.loads(out)["oneOf"]) == 6
    code, _, err = run(capsys, "schema", "widgets")
    assert code == 2 and "unknown kind 'widgets'" in err


def test_schema_output_dir_writes_the_files(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(capsys, "schema", "--output-dir", str(tmp_path))
    assert code == 0 and out.count("wrote ") == 7
    assert (tmp_path / "tradingnode.schema.json").read_text() == (
        ROOT / "specs" / "v1alpha1" / "tradingnode.schema.json"
    ).read_text()


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "version")
    assert code == 0 and out == f"mmctl {__version__} (resources mm/v1alpha1)\n"
    code, out, _ = run(capsys, "version", "-o", "json")
    assert json.loads(out)["version"] == __version__


def test_help_is_useful(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for command in ("validate", "schema", "version"):
        assert command in out
    code, out, _ = run(capsys, "validate", "--help")
    assert code == 0 and "--filename" in out and "stdin" in out


def test_console_script_is_installed() -> None:
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "mmctl"), "version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0 and proc.stdout.startswith("mmctl ")
