"""Schemathesis against the control API's own OpenAPI document: whatever it sends (valid, invalid, odd), the API
never answers 5xx. The node runs in a thread with its own event loop (schemathesis calls synchronously)."""

from __future__ import annotations

import asyncio
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from mm.api.app import create_app
from mm.api.server import ControlApi
from mm.clock import WallClock
from mm.controller.runtime import NodeRuntime, RuntimeOptions
from tests.controller.harness import RISK_YAML, admitted, strategy_yaml

TOKEN = "fuzz-token-0123456789"


def _no_venue(name: str, spec: Any) -> Any:
    raise AssertionError("the fuzzed node has no Exchange")


def _runtime(state_dir: Path) -> NodeRuntime:
    return NodeRuntime(WallClock(), RuntimeOptions(state_dir=state_dir, cycle_s=0.5), _no_venue)


# The schema comes from the app itself (no node needs to run for that).
schema = schemathesis.openapi.from_dict(
    create_app(_runtime(Path(tempfile.gettempdir()) / "mm-fuzz-schema"), TOKEN).openapi()
)


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    ready = threading.Event()
    stop: list[asyncio.Event] = []
    url: list[str] = []

    async def serve(state_dir: Path) -> None:
        runtime = _runtime(state_dir)
        await runtime.start(admitted(strategy_yaml(), RISK_YAML))
        api = ControlApi(runtime, TOKEN, host="127.0.0.1", port=0, metrics_public=False)
        await api.start()
        stop.append(asyncio.Event())
        url.append(api.url)
        ready.set()
        try:
            await stop[0].wait()
        finally:
            await api.stop()
            await runtime.stop("pause")

    with tempfile.TemporaryDirectory() as directory:
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_until_complete, args=(serve(Path(directory)),), daemon=True)
        thread.start()
        assert ready.wait(30), "the node did not start"
        try:
            yield url[0]
        finally:
            loop.call_soon_threadsafe(stop[0].set)
            thread.join(30)
            loop.close()


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_makes_the_api_fail(case: Any, served: str) -> None:
    response = case.call(base_url=served, headers={"Authorization": f"Bearer {TOKEN}"})
    if case.path == "/ready" and response.status_code == 503:
        return  # readiness's own answer: this node has no Exchange
    assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.status_code} {response.text}"
