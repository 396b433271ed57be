"""GET /alerts (history with severity/name/limit filters) and POST /alerts/test (a test alert through every
channel, per-channel outcome), through the ASGI app, with a real AlertManager delivering to real receivers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI, HTTPException, Request

from mm.alerting import AlertManager
from mm.alerting.channels import LogChannel, WebhookChannel
from mm.api.alert_routes import alert_router
from mm.clock import SimulatedClock
from tests.alerting.receivers import HttpReceiver, closed_port

T0 = 1_768_660_200_000_000
TOKEN = "t0ken"


def app_for(manager: AlertManager | None) -> FastAPI:
    """The router mounted as the control API mounts it: behind a bearer-token dependency."""

    async def require_token(request: Request) -> None:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            raise HTTPException(401, "missing or wrong bearer token")

    app = FastAPI()
    app.include_router(alert_router(lambda: manager), dependencies=[Depends(require_token)])
    return app


def client(app: FastAPI, token: str | None = TOKEN) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api", headers=headers)


class DeadHook(WebhookChannel):
    kind = "webhook-dead"  # a second webhook, under its own name


@pytest.fixture
async def receiver() -> AsyncIterator[HttpReceiver]:
    async with HttpReceiver() as rx:
        yield rx


async def test_history_newest_first_with_filters(receiver: HttpReceiver) -> None:
    manager = AlertManager([WebhookChannel(f"{receiver.base}/h", ["critical"]), LogChannel(["warning", "critical"])],
                           clock=SimulatedClock(T0))  # fmt: skip
    manager.start()
    manager.raise_alert("high_inventory", message="inv 85%", market="M1", inventory=425)
    manager.raise_alert("kill_switch_triggered", message="tripped")
    manager.raise_alert("high_inventory", message="inv 90%", market="M2")
    assert await manager.flush(timeout=10)
    async with client(app_for(manager)) as api:
        everything = (await api.get("/alerts")).json()
        critical = (await api.get("/alerts", params={"severity": "critical"})).json()
        by_name = (await api.get("/alerts", params={"name": "high_inventory", "limit": 1})).json()
        bad_severity = await api.get("/alerts", params={"severity": "loud"})
        bad_limit = await api.get("/alerts", params={"limit": 0})
    await manager.aclose()
    assert [i["message"] for i in everything["items"]] == ["inv 90%", "tripped", "inv 85%"]
    first = everything["items"][2]
    assert first == {
        "id": 1,
        "name": "high_inventory",
        "severity": "warning",
        "message": "inv 85%",
        "timestamp": "2026-01-17T14:30:00.000000Z",
        "timestamp_us": T0,
        "market": "M1",
        "data": {"inventory": 425},
        "suppressed": 0,
        "status": "delivered",
        "throttled": False,
        "channels": {
            "log": {"channel": "log", "status": "delivered", "attempts": 1, "error": None, "delivered_us": T0}
        },
    }
    assert [i["name"] for i in critical["items"]] == ["kill_switch_triggered"]
    assert critical["items"][0]["channels"]["webhook"]["status"] == "delivered"
    assert [i["message"] for i in by_name["items"]] == ["inv 90%"]
    assert everything["stats"]["raised"] == 3 and everything["stats"]["delivered"] == 3
    assert bad_severity.status_code == 422 and bad_limit.status_code == 422


async def test_test_alert_reports_each_channel(receiver: HttpReceiver) -> None:
    dead = DeadHook(f"http://127.0.0.1:{closed_port()}/h", ["critical"])
    good = WebhookChannel(f"{receiver.base}/h", ["critical"])
    manager = AlertManager([LogChannel(["critical"]), good], clock=SimulatedClock(T0), retry_base_s=0.01)
    manager.start()
    async with client(app_for(manager)) as api:
        ok = (await api.post("/alerts/test", json={"message": "checking", "severity": "warning"})).json()
        default = (await api.post("/alerts/test")).json()
    await manager.aclose()
    assert ok["ok"] is True
    assert [(c["channel"], c["status"], c["attempts"]) for c in ok["channels"]] == [
        ("log", "delivered", 1), ("webhook", "delivered", 1)]  # fmt: skip
    assert ok["alert"]["name"] == "test_alert" and ok["alert"]["severity"] == "warning"
    assert ok["alert"]["data"] == {"requested_by": "api"}
    assert [r.body["message"] for r in receiver.received] == ["checking", "Test alert from mmctl"]
    assert default["alert"]["severity"] == "info"  # sent to channels that take only critical: a test ignores that

    failing = AlertManager([LogChannel(["critical"]), dead], clock=SimulatedClock(T0), retry_base_s=0.01,
                           max_attempts=2)  # fmt: skip
    failing.start()
    async with client(app_for(failing)) as api:
        answer = await api.post("/alerts/test", json={"requested_by": "alice"})
    await failing.aclose()
    body: dict[str, Any] = answer.json()
    assert answer.status_code == 200 and body["ok"] is False
    outcome = {c["channel"]: c for c in body["channels"]}
    assert outcome["log"]["status"] == "delivered"
    assert outcome["webhook-dead"]["status"] == "failed" and outcome["webhook-dead"]["attempts"] == 2
    assert "ConnectError" in outcome["webhook-dead"]["error"]


async def test_without_an_alert_manager_the_routes_answer_503() -> None:
    async with client(app_for(None)) as api:
        assert (await api.get("/alerts")).status_code == 503
        assert (await api.post("/alerts/test")).status_code == 503


async def test_a_stopped_manager_answers_503_to_a_test() -> None:
    manager = AlertManager([LogChannel(["info"])], clock=SimulatedClock(T0))
    async with client(app_for(manager)) as api:
        answer = await api.post("/alerts/test")
    assert answer.status_code == 503 and "not running" in answer.json()["detail"]


async def test_mounted_behind_the_token() -> None:
    manager = AlertManager([LogChannel(["info"])], clock=SimulatedClock(T0))
    async with client(app_for(manager), token=None) as api:
        assert (await api.get("/alerts")).status_code == 401
        assert (await api.post("/alerts/test")).status_code == 401
