"""``mmctl alerts list`` and ``mmctl alerts test`` against a control API served on loopback (the alert routes
behind a bearer token, a real AlertManager behind them), registered the way mm.cli.main registers sub-apps."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import typer
import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Request

from mm.alerting import AlertManager
from mm.alerting.channels import LogChannel, WebhookChannel
from mm.api.alert_routes import alert_router
from mm.cli.alerts_cmd import alerts_app
from mm.cli.client import ApiError
from mm.clock import SimulatedClock
from mm.observability.logging import configure_logging, reset_logging
from tests.alerting.receivers import HttpReceiver, closed_port, wait_until

T0 = 1_768_660_200_000_000
TOKEN = "cli-t0ken"

root = typer.Typer()
root.add_typer(alerts_app, name="alerts")


async def mmctl(*argv: str) -> int:
    """Run the CLI in a thread: it makes blocking HTTP calls to the API served on this event loop."""

    def run() -> int:
        return int(root(args=list(argv), standalone_mode=False))

    return await asyncio.to_thread(run)


@asynccontextmanager
async def served(manager: AlertManager) -> AsyncIterator[str]:
    async def require_token(request: Request) -> None:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            raise HTTPException(401, "missing or wrong bearer token")

    app = FastAPI()
    app.include_router(alert_router(lambda: manager), dependencies=[Depends(require_token)])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    await wait_until(lambda: server.started, what="the API")
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("MMCTL_TOKEN", TOKEN)
    monkeypatch.delenv("MMCTL_SERVER", raising=False)
    configure_logging("INFO", json=True, stream=io.StringIO())  # the node's log lines stay off stdout
    try:
        yield
    finally:
        reset_logging()


async def test_list_as_a_table_and_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    manager = AlertManager([LogChannel(["warning", "critical"])], clock=SimulatedClock(T0))
    manager.start()
    manager.raise_alert("high_inventory", message="inventory [85%] of max", market="KXBTCD-T1")
    manager.raise_alert("kill_switch_triggered", message="daily loss limit")
    assert await manager.flush(timeout=10)
    async with served(manager) as url:
        assert await mmctl("alerts", "list", "--server", url) == 0
        table = capsys.readouterr().out.splitlines()
        assert await mmctl("alerts", "list", "--server", url, "--severity", "critical", "-o", "json") == 0
        document = json.loads(capsys.readouterr().out)
        assert await mmctl("alerts", "list", "--server", url, "--name", "nothing_like_it") == 0
        empty = capsys.readouterr().out
    await manager.aclose()
    assert table[0].split() == ["TIME", "SEVERITY", "NAME", "MARKET", "STATUS", "MESSAGE"]
    assert table[1].split() == ["2026-01-17", "14:30:00Z", "critical", "kill_switch_triggered", "delivered", "daily",
                                "loss", "limit"]  # fmt: skip
    assert "inventory [85%] of max" in table[2] and "KXBTCD-T1" in table[2]  # no markup eaten
    assert [i["name"] for i in document["items"]] == ["kill_switch_triggered"]
    assert empty.strip() == "no alerts"


async def test_test_reports_every_channel_and_fails_when_one_does(capsys: pytest.CaptureFixture[str]) -> None:
    async with HttpReceiver() as rx:
        good = AlertManager([LogChannel(["critical"]), WebhookChannel(f"{rx.base}/h", ["critical"])],
                            clock=SimulatedClock(T0))  # fmt: skip
        good.start()
        async with served(good) as url:
            assert await mmctl("alerts", "test", "--server", url, "--message", "from the cli") == 0
            shown = capsys.readouterr().out.splitlines()
        await good.aclose()
    assert shown[0] == "test alert #1: delivered by 2 of 2 channel(s)"
    assert shown[1].split() == ["log", "delivered", "(1", "attempt)"]
    assert shown[2].split() == ["webhook", "delivered", "(1", "attempt)"]
    assert rx.received[0].body["message"] == "from the cli"
    assert rx.received[0].body["data"] == {"requested_by": "cli"}

    dead = AlertManager([WebhookChannel(f"http://127.0.0.1:{closed_port()}/h", ["critical"])],
                        clock=SimulatedClock(T0), max_attempts=2, retry_base_s=0.01)  # fmt: skip
    dead.start()
    async with served(dead) as url:
        assert await mmctl("alerts", "test", "--server", url) == 1
        shown = capsys.readouterr().out.splitlines()
        assert await mmctl("alerts", "test", "--server", url, "-o", "json") == 1
        document = json.loads(capsys.readouterr().out)
    await dead.aclose()
    assert shown[0] == "test alert #1: delivered by 0 of 1 channel(s)"
    assert shown[1].startswith("  webhook    failed    (2 attempts): ConnectError")
    assert document["ok"] is False and document["channels"][0]["status"] == "failed"


async def test_no_running_node_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ApiError, match="no running node"):
        await mmctl("alerts", "list", "--state-dir", str(tmp_path))


async def test_bad_options_are_usage_errors() -> None:
    with pytest.raises(typer.BadParameter, match="--severity"):
        await mmctl("alerts", "list", "--server", "http://127.0.0.1:9", "--severity", "loud")
    with pytest.raises(typer.BadParameter, match="--output"):
        await mmctl("alerts", "test", "--server", "http://127.0.0.1:9", "-o", "yaml")
