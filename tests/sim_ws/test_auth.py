"""The upgrade is authenticated before it is accepted (kalshi-api.md §2): every connection needs valid headers."""

from __future__ import annotations

import json
import time

import pytest
from websockets.exceptions import InvalidStatus

from tests.sim_ws.conftest import T1, WS_PATH, Sim, ws_auth_headers


async def refused(sim: Sim, headers: dict[str, str]) -> InvalidStatus:
    with pytest.raises(InvalidStatus) as info:
        await sim.connect(headers=headers)
    return info.value


async def test_a_signed_upgrade_is_accepted_and_can_subscribe(sim: Sim) -> None:
    client = await sim.connect("alice")
    await client.send({"id": 1, "cmd": "subscribe", "params": {"channels": ["ticker"]}})
    assert await client.recv() == {"id": 1, "type": "subscribed", "msg": {"channel": "ticker", "sid": 1}}
    assert sim.hub.users() == ["alice"]


async def test_an_unauthenticated_upgrade_gets_401_and_never_a_websocket(sim: Sim) -> None:
    error = await refused(sim, {})
    assert error.response.status_code == 401
    body = json.loads(error.response.body)
    assert body["error"]["code"] == "authentication_error"
    assert body["error"]["details"] == "MISSING_ACCESS_KEY"
    # Nothing was opened, so nothing can be subscribed; the hub never saw a connection.
    assert sim.hub.connection_count == 0 and sim.hub.refused == 1


@pytest.mark.parametrize(
    ("tamper", "details"),
    [
        ("signature", "INCORRECT_API_KEY_SIGNATURE"),
        ("rest_path", "INCORRECT_API_KEY_SIGNATURE"),  # signed like a REST call, not over /trade-api/ws/v2
        ("other_users_key", "INCORRECT_API_KEY_SIGNATURE"),
        ("stale", "header_timestamp_expired"),
        ("unknown_key", "NOT_FOUND"),
    ],
)
async def test_bad_credentials_are_refused_with_401(sim: Sim, tamper: str, details: str) -> None:
    headers = sim.headers("alice")
    if tamper == "signature":
        headers["KALSHI-ACCESS-SIGNATURE"] = sim.headers("alice")["KALSHI-ACCESS-SIGNATURE"][:-8] + "AAAAAAA="
    elif tamper == "rest_path":
        headers = sim.headers("alice", path="/trade-api/v2")
    elif tamper == "other_users_key":
        bob = sim.headers("bob")
        headers["KALSHI-ACCESS-SIGNATURE"] = bob["KALSHI-ACCESS-SIGNATURE"]
        headers["KALSHI-ACCESS-TIMESTAMP"] = bob["KALSHI-ACCESS-TIMESTAMP"]
    elif tamper == "stale":
        headers = sim.headers("alice", ts_ms=time.time_ns() // 1_000_000 - 30_000)
    elif tamper == "unknown_key":
        headers["KALSHI-ACCESS-KEY"] = "00000000-0000-4000-8000-000000000000"
    error = await refused(sim, headers)
    assert error.response.status_code == 401
    assert json.loads(error.response.body)["error"]["details"] == details
    assert sim.hub.connection_count == 0


async def test_the_signature_covers_the_literal_ws_path_whatever_url_is_dialled(sim: Sim) -> None:
    # A client signs "/trade-api/ws/v2" even when it dials the simulator on some other URL (§2); the test's
    # client signs from the document, not with mm.sim.auth.
    key_id, key = sim.keys["bob"]
    client = await sim.connect(headers=ws_auth_headers(key_id, key))
    await client.send({"id": 3, "cmd": "subscribe", "params": {"channels": ["orderbook_delta"], "market_ticker": T1}})
    assert (await client.recv())["type"] == "subscribed"
    assert sim.hub.users() == ["bob"]
    assert WS_PATH == "/trade-api/ws/v2"
