"""The whole simulator over real loopback HTTP and WebSocket, driven by a client written from kalshi-api.md."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from mm.clock import WallClock, datetime_to_us
from mm.sim.server import Simulator, SimulatorConfig

TIMEOUT = 10.0
START = datetime_to_us(datetime(2026, 8, 13, 20, 30, tzinfo=UTC))  # the 17:00 EDT event is trading


def signed(key: rsa.RSAPrivateKey, key_id: str, method: str, path: str) -> dict[str, str]:
    """kalshi-api.md §2: RSA-PSS(SHA-256, MGF1 SHA-256, salt = 32) over timestamp_ms + METHOD + path."""
    ts = str(WallClock().now_us() // 1000)  # a client signs with its own wall clock
    message = (ts + method + path.split("?", maxsplit=1)[0]).encode()
    signature = key.sign(
        message, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH), hashes.SHA256()
    )
    return {
        "KALSHI-ACCESS-KEY": key_id,
        "KALSHI-ACCESS-TIMESTAMP": ts,
        "KALSHI-ACCESS-SIGNATURE": base64.b64encode(signature).decode(),
        "Content-Type": "application/json",
    }


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[Simulator]:
    config = SimulatorConfig(state_dir=tmp_path / "sim", start_us=START, strikes=3, seed=5)
    async with Simulator(config) as running:
        yield running


async def test_trade_by_hand_over_rest_and_websocket(sim: Simulator) -> None:
    key = serialization.load_pem_private_key(sim.api_key.key_file.read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    kid = sim.api_key.key_id
    base = "/trade-api/v2"
    async with httpx.AsyncClient(base_url=sim.base_url, timeout=TIMEOUT) as http:
        status = (await http.get(f"{base}/exchange/status")).json()
        assert status["trading_active"] is True
        markets = (await http.get(f"{base}/markets", params={"status": "open"})).json()["markets"]
        assert len(markets) == 3 and all(m["ticker"].startswith("KXBTCD-26AUG1317-T") for m in markets)
        ticker = markets[0]["ticker"]

        balance = await http.get(
            f"{base}/portfolio/balance", headers=signed(key, kid, "GET", f"{base}/portfolio/balance")
        )
        assert balance.status_code == 200 and balance.json()["balance"] == 1_000_000  # $10,000 in cents

        ws_headers = signed(key, kid, "GET", "/trade-api/ws/v2")
        async with websockets.connect(sim.ws_url, additional_headers=ws_headers) as ws:
            await ws.send(json.dumps({"id": 1, "cmd": "subscribe", "params": {"channels": ["user_orders"]}}))
            await ws.send(
                json.dumps(
                    {"id": 2, "cmd": "subscribe", "params": {"channels": ["orderbook_delta"], "market_ticker": ticker}}
                )
            )
            seen = await collect(ws, lambda m: m.get("type") == "orderbook_snapshot")
            assert any(m.get("type") == "subscribed" for m in seen)

            path = f"{base}/portfolio/events/orders"
            body = {
                "ticker": ticker,
                "side": "bid",
                "price": "0.0100",
                "count": "3.00",
                "client_order_id": "hand-1",
                "time_in_force": "good_till_canceled",
                "self_trade_prevention_type": "maker",
            }
            created = await http.post(path, headers=signed(key, kid, "POST", path), json=body)
            assert created.status_code == 201, created.text
            order_id = created.json()["order_id"]
            assert created.json()["remaining_count"] == "3.00"
            seen = await collect(ws, lambda m: m.get("type") == "user_order" and m["msg"]["order_id"] == order_id)
            assert seen[-1]["msg"]["status"] == "resting"

            cancel_path = f"{base}/portfolio/events/orders/{order_id}"
            cancelled = await http.delete(cancel_path, headers=signed(key, kid, "DELETE", cancel_path))
            assert cancelled.status_code == 200 and cancelled.json()["reduced_by"] == "3.00"
            seen = await collect(
                ws,
                lambda m: (
                    m.get("type") == "user_order"
                    and m["msg"]["status"] == "canceled"
                    and m["msg"]["order_id"] == order_id
                ),
            )
        again = await http.post(path, headers=signed(key, kid, "POST", path), json=body)
        assert again.status_code == 409  # client_order_id reuse


async def test_admin_clock_and_faults(sim: Simulator) -> None:
    async with httpx.AsyncClient(base_url=sim.base_url, timeout=TIMEOUT) as http:
        clock = (await http.get("/admin/clock")).json()
        assert clock["now_us"] >= START
        faults = (await http.put("/admin/faults", json={"rest_error_rate": 1.0})).json()
        assert faults["rest_error_rate"] == 1.0
        key = serialization.load_pem_private_key(sim.api_key.key_file.read_bytes(), password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        path = "/trade-api/v2/portfolio/balance"
        failed = await http.get(path, headers=signed(key, sim.api_key.key_id, "GET", path))
        assert failed.status_code in (500, 502, 503)
        counters = (await http.put("/admin/faults", json={"rest_error_rate": 0.0})).json()["counters"]
        assert counters["failed_requests"] >= 1
        assert (await http.put("/admin/faults", json={"nonsense": 1})).status_code == 400


async def collect(ws: Any, done: Any) -> list[dict[str, Any]]:
    """Read messages until one satisfies ``done`` (or fail after TIMEOUT)."""
    seen: list[dict[str, Any]] = []

    async def read() -> None:
        while True:
            message = json.loads(await ws.recv())
            seen.append(message)
            if done(message):
                return

    await asyncio.wait_for(read(), timeout=TIMEOUT)
    return seen
