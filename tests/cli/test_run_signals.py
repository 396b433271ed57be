"""`mmctl run` as its own process: signals choose the shutdown mode and the exit code says why it stopped
(FR-1101/1102). The quickstart's resources, with its embedded simulator, in a temporary state dir."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 60.0


def wait_for(condition: object, what: str, timeout: float = TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class Node:
    def __init__(self, tmp_path: Path) -> None:
        specs = tmp_path / "specs"
        shutil.copytree(ROOT / "examples" / "quickstart", specs)
        self.state = tmp_path / "state"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mm.cli.main",
                "run",
                "-f",
                str(specs),
                "--state-dir",
                str(self.state),
                "--api-port",
                "0",
                "-o",
                "json",
            ],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )

    def orders_sent(self) -> int:
        url_file, token_file = self.state / "api-url", self.state / "api-token"
        if not url_file.exists() or not token_file.exists():
            return 0
        try:
            response = httpx.get(
                url_file.read_text().strip() + "/status",
                headers={"Authorization": f"Bearer {token_file.read_text().strip()}"},
                timeout=5,
            )
        except httpx.HTTPError:
            return 0
        return int(response.json()["node"]["orders_sent"]) if response.status_code == 200 else 0

    def quoting(self) -> None:
        wait_for(lambda: self.process.poll() is not None or self.orders_sent() > 0, "the node to send orders")
        assert self.process.poll() is None, self.process.stderr.read() if self.process.stderr else ""

    def finish(self) -> tuple[int, str]:
        out, err = self.process.communicate(timeout=TIMEOUT_S)
        assert out, f"no summary; stderr: {err[-2000:]}"
        return self.process.returncode, out


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    started = Node(tmp_path)
    yield started
    if started.process.poll() is None:
        started.process.kill()
        started.process.wait()


def test_sigterm_drains_and_exits_0(node: Node) -> None:

    node.quoting()
    node.process.send_signal(signal.SIGTERM)
    code, out = node.finish()
    summary = json.loads(out)
    assert code == 0 and summary["exit_code"] == 0
    assert summary["shutdown"]["mode"] == "drain" and summary["shutdown"]["trigger"] == "SIGTERM"
    assert summary["shutdown"]["open_orders_left"] == 0 and summary["shutdown"]["flushed"]
    assert not (node.state / "mmctl.lock").exists()


def test_sigquit_is_immediate_and_exits_3(node: Node) -> None:

    node.quoting()
    node.process.send_signal(signal.SIGQUIT)
    code, out = node.finish()
    assert code == 3
    assert json.loads(out)["shutdown"]["mode"] == "immediate"
