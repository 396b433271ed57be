"""FR-1007 change webhooks: every configuration change is POSTed with its before/after and param changes,
and a failing receiver is retried with backoff until it accepts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from mm.api.webhooks import ChangeWebhooks
from mm.clock import WallClock
from mm.controller.runtime import NodeRuntime, RuntimeOptions
from mm.specs.node import ChangeWebhook
from tests.controller.harness import RISK_YAML, admitted, strategy_yaml, wait_until


class Receiver:
    """A webhook endpoint that refuses the first ``failures`` deliveries with a 503."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.attempts = 0
        self.received: list[dict[str, Any]] = []
        app = FastAPI()

        @app.post("/hook")
        async def hook(request: Request) -> Any:
            self.attempts += 1
            if self.attempts <= self.failures:
                return JSONResponse({"busy": True}, status_code=503)
            self.received.append(await request.json())
            return {"ok": True}

        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off"))

    async def __aenter__(self) -> str:
        self.task = asyncio.create_task(self.server.serve())
        await wait_until(lambda: self.server.started, what="the receiver")
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/hook"

    async def __aexit__(self, *exc: object) -> None:
        self.server.should_exit = True
        await self.task


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[NodeRuntime]:
    def no_venue(name: str, spec: Any) -> Any:
        raise AssertionError("no Exchange here")

    runtime = NodeRuntime(WallClock(), RuntimeOptions(state_dir=tmp_path / "node"), no_venue)
    await runtime.start(admitted(strategy_yaml(), RISK_YAML))
    try:
        yield runtime
    finally:
        await runtime.stop("pause")


async def test_a_change_is_posted_with_before_after_and_retried(node: NodeRuntime) -> None:
    receiver = Receiver(failures=2)
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)
        await asyncio.sleep(0)

    async with receiver as url:
        hooks = ChangeWebhooks(node, [ChangeWebhook(url=url, max_attempts=4)], sleep=sleep)
        hooks.start()
        try:
            node.apply_documents(admitted(strategy_yaml(spread="0.06")), manager="cli")
            await wait_until(lambda: bool(receiver.received), what="the delivery")
        finally:
            await hooks.stop()
    event = receiver.received[0]
    assert event["component"] == "Strategy/s1" and event["change_type"] == "param_update"
    assert event["changes"] == [{"param": "components.spread.params.base_spread", "old": "0.04", "new": "0.06"}]
    assert event["before"]["components"]["spread"]["params"]["base_spread"] == "0.04"
    assert event["after"]["components"]["spread"]["params"]["base_spread"] == "0.06"
    assert event["triggered_by"] == "cli" and event["success"] is True
    assert receiver.attempts == 3 and delays == [0.5, 1.0] and hooks.delivered == 1


async def test_a_receiver_that_never_accepts_is_given_up_after_max_attempts(node: NodeRuntime) -> None:
    receiver = Receiver(failures=100)

    async def sleep(_seconds: float) -> None:
        await asyncio.sleep(0)

    async with receiver as url:
        hooks = ChangeWebhooks(node, [ChangeWebhook(url=url, max_attempts=3)], sleep=sleep)
        hooks.start()
        try:
            node.apply_documents(admitted(strategy_yaml(spread="0.06")), manager="cli")
            await wait_until(lambda: hooks.failed == 1, what="giving up")
        finally:
            await hooks.stop()
    assert receiver.attempts == 3 and receiver.received == []
