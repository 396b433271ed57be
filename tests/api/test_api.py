"""The control API on a running node: every protected route refuses a missing token (enumerated from the
OpenAPI document), FR-1004 configuration endpoints answer with before/after, invalid changes are 422 with the
field and change nothing, the per-minute limit is 429, git-ops ownership conflicts are 409 unless forced, and the
event stream pushes changes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import websockets

from mm.api.server import ControlApi, load_or_create_token
from mm.controller.operations import MANAGER
from tests.controller.harness import (
    EXCHANGE_YAML,
    RISK_YAML,
    Harness,
    admitted,
    make_runtime,
    market_yaml,
    simulator,
    strategy_yaml,
    wait_until,
)

NODE = """\
apiVersion: mm/v1alpha1
kind: TradingNode
metadata: {name: n1}
spec:
  hot_reload: {max_changes_per_minute: 3}
"""


class Api:
    def __init__(self, h: Harness, api: ControlApi, token: str) -> None:
        self.h = h
        self.url = api.url
        self.auth = {"Authorization": f"Bearer {token}"}
        self.token = token


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with simulator(tmp_path) as (sim, base):
        state = tmp_path / "node"
        runtime = make_runtime(sim, state)
        h = Harness(sim, base, runtime, state)
        ticker = h.tickers()[0]
        await runtime.start(admitted(EXCHANGE_YAML, strategy_yaml(), RISK_YAML, market_yaml("m1", ticker), NODE))
        token = load_or_create_token(state, None)
        server = ControlApi(runtime, token, host="127.0.0.1", port=0, metrics_public=False)
        await server.start()
        try:
            h.seed_book(ticker)
            await wait_until(lambda: h.quoting("m1", ticker), what="quoting")
            yield Api(h, server, token)
        finally:
            await server.stop()
            await runtime.stop("drain")


async def test_every_protected_route_needs_the_token(api: Api) -> None:
    async with httpx.AsyncClient(base_url=api.url) as client:
        assert (await client.get("/openapi.json")).status_code == 401
        document = (await client.get("/openapi.json", headers=api.auth)).json()
        checked = 0
        for path, methods in document["paths"].items():
            for method in methods:
                concrete = path.replace("{kind}", "market").replace("{name}", "m1").replace("{rule}", "max_inventory")
                concrete = concrete.replace("{version}", "1")
                response = await client.request(method.upper(), concrete, json={})
                if path in ("/health", "/ready"):
                    assert response.status_code in (200, 503), path
                else:
                    assert response.status_code == 401, f"{method.upper()} {path} answered {response.status_code}"
                    checked += 1
        assert checked >= 20


async def test_config_endpoints_answer_with_before_and_after(api: Api) -> None:
    async with httpx.AsyncClient(base_url=api.url, headers=api.auth) as client:
        config = (await client.get("/config")).json()
        assert set(config) == {"strategies", "risk_policies", "node"} and "s1" in config["strategies"]
        changed = (
            await client.put("/config/strategy/params", json={"component": "spread", "params": {"base_spread": "0.06"}})
        ).json()
        assert changed["status"] == "applied" and changed["resource"] == "Strategy/s1"
        assert changed["changes"] == [{"param": "components.spread.params.base_spread", "old": "0.04", "new": "0.06"}]
        rule_response = await client.put("/config/risk/rules/max_inventory", json={"settings": {"limit": 900}})
        rule = rule_response.json()
        assert rule_response.status_code == 200, rule
        assert [c["param"] for c in rule["changes"]] == ["rules.max_inventory.limit"]
        history = (await client.get("/config/history")).json()
        assert [i["version"] for i in history["items"]] == [1, 2]
        back = (await client.post("/config/rollback/1")).json()
        assert back["rolled_back_to"] == 1 and back["changes"][0]["new"] == "0.04"

        bad = await client.put("/config/strategy/params", json={"component": "spread", "params": {"base_spread": "-1"}})
        assert bad.status_code == 422 and "base_spread" in " ".join(bad.json()["problems"])
        assert api.h.runtime.resources.require("Strategy", "s1").generation == 3  # nothing applied

        limited = await client.put(
            "/config/strategy/params", json={"component": "spread", "params": {"base_spread": "0.05"}}
        )
        assert limited.status_code == 429 and "max_changes_per_minute" in limited.json()["error"]


async def test_apply_conflicts_with_a_git_ops_owner_unless_forced(api: Api) -> None:
    runtime = api.h.runtime
    runtime.resources.require("Strategy", "s1").annotations[MANAGER] = "git:abc1234"
    document = strategy_yaml(spread="0.06")
    async with httpx.AsyncClient(base_url=api.url, headers=api.auth) as client:
        refused = await client.post("/resources/apply", json={"documents": document, "manager": "cli"})
        assert refused.status_code == 409 and refused.json()["conflicts"] == [["Strategy/s1", "git:abc1234"]]
        assert runtime.resources.require("Strategy", "s1").generation == 1
        forced = await client.post(
            "/resources/apply", json={"documents": document, "manager": "cli", "force_conflicts": True}
        )
        assert forced.json()["results"][0]["action"] == "configured"
        stored = runtime.resources.require("Strategy", "s1")
        assert stored.annotations["mm/overridden-by"] == "cli" and stored.annotations[MANAGER] == "cli"


async def test_the_event_stream_pushes_changes(api: Api) -> None:
    ws_url = api.url.replace("http://", "ws://") + "/events/stream"
    with pytest.raises((websockets.exceptions.InvalidStatus, websockets.exceptions.ConnectionClosed)):
        async with websockets.connect(ws_url) as refused:
            await refused.recv()
    async with websockets.connect(ws_url + f"?token={api.token}") as socket:
        async with httpx.AsyncClient(base_url=api.url, headers=api.auth) as client:
            await client.put("/config/strategy/params", json={"component": "spread", "params": {"base_spread": "0.06"}})
        seen = []
        while not any(e.get("subject") == "Strategy/s1" for e in seen):
            seen.append(json.loads(await asyncio.wait_for(socket.recv(), 10)))
        change = next(e for e in seen if e["subject"] == "Strategy/s1")
        assert change["reason"] == "Configured" and "api" in change["message"]


async def test_a_market_kill_halts_that_market_only_and_is_durable(api: Api) -> None:
    runtime = api.h.runtime
    ticker = api.h.tickers()[0]
    async with httpx.AsyncClient(base_url=api.url, headers=api.auth) as client:
        result = (await client.post("/kill", json={"reason": "bad fills", "market": "m1"})).json()
        assert result == {"tripped": True, "scope": "market/m1", "cancelled": 2}
        assert not runtime.node.node_switch.tripped
        assert api.h.our_orders(ticker) == []
        await wait_until(lambda: api.h.market_status("m1").get("phase") == "Halted", what="m1 halted")
        state = runtime.node.latch.load("market/m1")
        assert state is not None and state.tripped and state.reason == "bad fills"
        missing = await client.post("/kill", json={"reason": "x", "market": "nope"})
        assert missing.status_code == 404
        refused = await client.post("/resume", json={"market": "m1", "operator": "me"})
        assert refused.status_code == 409
        resumed = (await client.post("/resume", json={"market": "m1", "confirm": True, "operator": "me"})).json()
        assert resumed == {"scope": "market/m1", "tripped": False}
    await wait_until(lambda: len(api.h.our_orders(ticker)) == 2, what="m1 quoting again")
