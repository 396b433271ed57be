"""mmctl sim: config files and key creation (running the server is covered in tests/sim_e2e)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mm.cli.main import main
from mm.cli.sim_cmd import SimConfigError, load_sim_config
from mm.sim.auth import KeyRegistry


def test_config_file_settings_and_faults(tmp_path: Path) -> None:
    path = tmp_path / "sim.yaml"
    path.write_text(
        "speed: 60\nseed: 7\nstrikes: 5\nstate_dir: ./sim-state\nfaults:\n  rest_error_rate: 0.1\n  ws_silent: false\n"
    )
    settings, faults = load_sim_config(path)
    assert settings == {"speed": 60, "seed": 7, "strikes": 5, "state_dir": Path("./sim-state")}
    assert faults == {"rest_error_rate": 0.1, "ws_silent": False}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sped: 60\n", "unknown setting 'sped'"),
        ("faults: {rest_eror_rate: 1}\n", "faults: unknown settings rest_eror_rate"),
        ("- 1\n", "expected a mapping"),
    ],
)
def test_config_file_errors_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "sim.yaml"
    path.write_text(text)
    with pytest.raises(SimConfigError, match=message):
        load_sim_config(path)


def test_keys_create_writes_a_private_pem_and_registers_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "keys", "create", "--state-dir", str(tmp_path), "--user", "desk-2"]) == 0
    lines = dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines())
    key_file = Path(lines["key_file"])
    assert key_file.exists() and (key_file.stat().st_mode & 0o777) == 0o600
    registry = KeyRegistry.load(tmp_path / "keys.json")
    assert lines["key_id"] in registry and lines["user"] == "desk-2"
