"""mmctl doctor against a running in-process simulator reached over HTTP like a real venue (``embedded: false``,
key id and key through env vars / a key file): every check's line, the fix lines, exit codes, no secret shown."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from mm.cli.doctor_cmd import run_checks
from mm.cli.main import main
from mm.sim.server import Simulator, SimulatorConfig

KEY_ENV = "MM_DOCTOR_KEY_ID"
PEM_ENV = "MM_DOCTOR_KEY_PEM"


@pytest_asyncio.fixture
async def sim(tmp_path: Path) -> AsyncIterator[Simulator]:
    async with Simulator(SimulatorConfig(state_dir=tmp_path / "sim", crowd=False, seed=3)) as running:
        yield running


def exchange_yaml(sim: Simulator, key: str) -> str:
    return f"""\
apiVersion: mm/v1alpha1
kind: Exchange
metadata: {{name: venue}}
spec:
  venue: simulator
  base_url: {sim.rest_url}
  ws_url: {sim.ws_url}
  api_key_env: {KEY_ENV}
  {key}
  allow_live: true
  rate_limits: {{tier: prestige}}
  simulator: {{embedded: false}}
"""


REST = """\
---
apiVersion: mm/v1alpha1
kind: Strategy
metadata: {name: s1}
spec: {preset: conservative}
---
apiVersion: mm/v1alpha1
kind: RiskPolicy
metadata: {name: r1}
spec: {}
---
apiVersion: mm/v1alpha1
kind: Market
metadata: {name: live-one}
spec: {exchange_ref: venue, ticker: KXBTCD-26AUG1317-T73249.99, strategy_ref: s1, risk_policy_ref: r1, execution: live}
---
apiVersion: mm/v1alpha1
kind: Market
metadata: {name: paper-one}
spec: {exchange_ref: venue, ticker: KXBTCD-26AUG1317-T73749.99, strategy_ref: s1, risk_policy_ref: r1}
"""


def key_copy(tmp_path: Path, sim: Simulator, mode: int = 0o600) -> Path:
    """The simulator's key under a neutral name (the simulator names its file after the key id)."""
    path = tmp_path / "keys" / "venue.pem"
    path.parent.mkdir(exist_ok=True)
    shutil.copyfile(sim.api_key.key_file, path)
    path.chmod(mode)
    return path


def bundle(tmp_path: Path, sim: Simulator, key: str) -> Path:
    path = tmp_path / "specs.yaml"
    path.write_text(exchange_yaml(sim, key) + REST)
    return path


async def doctor(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """``mmctl doctor`` in a thread (it runs its own event loop) while the simulator serves on this one."""
    code = await asyncio.to_thread(main, ["doctor", *args])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def line(output: str, check: str) -> str:
    found = [ln for ln in output.splitlines() if f"  {check}:" in ln]
    assert found, f"no line for {check!r} in:\n{output}"
    return found[0]


def secrets(sim: Simulator) -> list[str]:
    pem = Path(sim.api_key.key_file).read_text()
    body = [ln for ln in pem.splitlines() if ln and not ln.startswith("-----")]
    return [sim.api_key.key_id, *body[:3], body[-1]]


async def test_everything_passes_against_a_reachable_venue(
    tmp_path: Path, sim: Simulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, sim.api_key.key_id)
    specs = bundle(tmp_path, sim, f"private_key_file: {key_copy(tmp_path, sim)}")
    code, output = await doctor(capsys, "-f", str(specs), "--state-dir", str(tmp_path / "state"))
    assert code == 0, output
    checks = [ln for ln in output.splitlines() if ln.startswith(("PASS", "FAIL", "WARN"))]
    assert all(ln.startswith("PASS") for ln in checks), output
    for name in (
        "specs valid",
        "Exchange/venue key file permissions",
        "Exchange/venue credentials resolve",
        "Exchange/venue exchange reachable",
        "Exchange/venue authenticates",
        "Exchange/venue rate tier",
        "Exchange/venue clock drift",
        "state dir writable",
        "live gate",
    ):
        line(output, name)
    assert "mode 0600" in line(output, "Exchange/venue key file permissions")
    assert "the venue says prestige" in line(output, "Exchange/venue rate tier")
    assert "NTP" in line(output, "Exchange/venue clock drift")
    assert "Market/live-one" in line(output, "live gate") and "1 paper" in line(output, "live gate")
    assert "fix:" not in output
    for secret in secrets(sim):
        assert secret not in output


async def test_a_wrong_key_id_fails_authentication_with_a_fix(
    tmp_path: Path, sim: Simulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, "wrong-key-id-123")
    specs = bundle(tmp_path, sim, f"private_key_file: {key_copy(tmp_path, sim)}")
    code, output = await doctor(capsys, "-f", str(specs), "--state-dir", str(tmp_path / "state"))
    assert code == 1
    auth = line(output, "Exchange/venue authenticates")
    assert auth.startswith("FAIL") and "HTTP 401" in auth
    following = output.splitlines()[output.splitlines().index(auth) + 1]
    assert following.startswith("      fix: ") and KEY_ENV in following
    assert line(output, "Exchange/venue exchange reachable").startswith("PASS")
    assert "wrong-key-id-123" not in output
    for secret in secrets(sim):
        assert secret not in output


async def test_a_key_file_readable_by_others_fails(
    tmp_path: Path, sim: Simulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, sim.api_key.key_id)
    loose = key_copy(tmp_path, sim, 0o644)
    specs = bundle(tmp_path, sim, f"private_key_file: {loose}")
    code, output = await doctor(capsys, "-f", str(specs), "--state-dir", str(tmp_path / "state"))
    assert code == 1
    permissions = line(output, "Exchange/venue key file permissions")
    assert permissions.startswith("FAIL") and "0644" in permissions
    assert f"      fix: chmod 600 {loose}" in output
    assert line(output, "Exchange/venue credentials resolve").startswith("FAIL")
    assert line(output, "Exchange/venue authenticates").startswith("WARN")
    for secret in secrets(sim):
        assert secret not in output


async def test_a_key_in_an_env_var_is_never_shown_and_json_output(
    tmp_path: Path, sim: Simulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, sim.api_key.key_id)
    monkeypatch.setenv(PEM_ENV, Path(sim.api_key.key_file).read_text())
    specs = bundle(tmp_path, sim, f"private_key_env: {PEM_ENV}")
    code, output = await doctor(capsys, "-f", str(specs), "--state-dir", str(tmp_path / "state"), "-o", "json")
    assert code == 0, output
    body = json.loads(output)
    assert body["ok"] is True
    statuses = {c["check"]: c["status"] for c in body["checks"]}
    assert statuses["Exchange/venue authenticates"] == "PASS"
    assert f"${PEM_ENV}" in next(c["detail"] for c in body["checks"] if c["check"].endswith("key file permissions"))
    for secret in secrets(sim):
        assert secret not in output


async def test_invalid_specs_and_an_unreachable_venue(
    tmp_path: Path, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, sim.api_key.key_id)
    specs = tmp_path / "specs.yaml"
    text = exchange_yaml(sim, f"private_key_file: {key_copy(tmp_path, sim)}").replace(
        sim.rest_url, "http://127.0.0.1:9/trade-api/v2"
    )
    specs.write_text(text + REST.replace("risk_policy_ref: r1, execution: live", "risk_policy_ref: nope"))
    checks = await run_checks([str(specs)], tmp_path / "state", timeout_s=2.0)
    by_name = {c.check: c for c in checks}
    assert by_name["specs valid"].status == "FAIL"
    assert "RiskPolicy/nope" in by_name["specs valid"].detail and by_name["specs valid"].fix
    reachable = by_name["Exchange/venue exchange reachable"]
    assert reachable.status == "FAIL" and "ConnectError" in reachable.detail and "base_url" in reachable.fix
    assert "Exchange/venue authenticates" not in by_name  # nothing more to ask an unreachable venue


async def test_an_embedded_simulator_needs_nothing(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    checks = await run_checks([str(root / "examples" / "quickstart")], tmp_path / "state")
    assert all(c.status == "PASS" for c in checks), [c.lines() for c in checks]
    reachable = next(c for c in checks if c.check.endswith("exchange reachable"))
    assert reachable.detail == "embedded simulator, started by mmctl run"
