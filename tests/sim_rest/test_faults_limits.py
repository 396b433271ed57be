"""Rate limits (kalshi-api.md §9) and injected faults, driven by the simulated clock (no sleeping)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.sim_rest.conftest import T1, Client, Sim, assert_error

ORDERS = "/portfolio/events/orders"


def assert_429(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert response.json()["error"] == "too many requests"
    assert "retry-after" not in response.headers
    assert not any(h.lower().startswith("x-ratelimit") for h in response.headers)


def order(price: str = "0.10") -> dict[str, Any]:
    return {"ticker": T1, "side": "bid", "price": price, "count": "1"}


async def test_a_basic_user_is_limited_until_the_bucket_refills(client: Client, sim: Sim) -> None:
    for _ in range(10):  # basic write bucket: 100 tokens, a create costs 10
        assert (await client.post(ORDERS, "carol", order())).status_code == 201
    assert_429(await client.post(ORDERS, "carol", order()))
    assert len(sim.exchange.orders) == 10
    sim.clock.advance_us(100_000)  # 0.1 s at 100 tokens/s refills one create
    assert (await client.post(ORDERS, "carol", order())).status_code == 201
    assert_429(await client.post(ORDERS, "carol", order()))
    assert (await client.get("/portfolio/balance", "carol")).status_code == 200  # reads use another bucket
    assert (await client.post(ORDERS, "alice", order())).status_code == 201  # and other users their own
    assert sim.state.faults.counters.rate_limited_requests == 0  # real limits are not injected faults


async def test_a_batch_must_fit_in_the_bucket_whole(client: Client, sim: Sim) -> None:
    too_big = {"orders": [order() for _ in range(11)]}  # 110 tokens > 100 capacity
    assert_429(await client.post(f"{ORDERS}/batched", "carol", too_big))
    assert sim.exchange.orders == {}
    fits = {"orders": [order() for _ in range(10)]}
    assert (await client.post(f"{ORDERS}/batched", "carol", fits)).status_code == 201
    assert len(sim.exchange.orders) == 10
    assert_429(await client.post(ORDERS, "carol", order()))  # the batch took all 100 tokens


async def test_reads_are_limited_too(client: Client, sim: Sim) -> None:
    for _ in range(40):  # basic read bucket: 400 tokens at 10 per read
        assert (await client.get("/portfolio/orders", "carol")).status_code == 200
    assert_429(await client.get("/portfolio/orders", "carol"))
    assert (await client.get("/markets")).status_code == 200  # public reads are not limited


async def test_error_rate_one_answers_5xx_with_a_kalshi_body(client: Client, sim: Sim) -> None:
    sim.state.faults.rest_error_rate = 1.0
    statuses = set()
    for _ in range(12):
        response = await client.get("/portfolio/balance", "alice")
        assert response.status_code in (500, 502, 503)
        assert isinstance(response.json()["error"]["code"], str)
        statuses.add(response.status_code)
    assert len(statuses) > 1  # the seeded generator picks among 500/502/503
    assert (await client.post(ORDERS, "alice", order())).status_code in (500, 502, 503)
    assert sim.exchange.orders == {}
    assert sim.state.faults.counters.failed_requests == 13
    assert (await client.get("/markets")).status_code == 200  # public reads are not faulted


async def test_429_rate_one_answers_429(client: Client, sim: Sim) -> None:
    sim.state.faults.rest_429_rate = 1.0
    assert_429(await client.post(ORDERS, "alice", order()))
    assert_429(await client.get("/portfolio/fills", "alice"))
    assert sim.state.faults.counters.rate_limited_requests == 2
    assert sim.exchange.orders == {}


async def test_latency_is_injected_through_the_sleep_function(client: Client, sim: Sim) -> None:
    sim.state.faults.rest_latency_s = 0.25
    assert (await client.get("/portfolio/balance", "alice")).status_code == 200
    assert sim.sleeps == [0.25] and sim.state.faults.counters.delayed_requests == 1


async def test_auth_is_checked_before_faults(client: Client, sim: Sim) -> None:
    sim.state.faults.rest_error_rate = 1.0
    response = await client.http.get("/trade-api/v2/portfolio/balance")
    assert_error(response, 401, "authentication_error")
    assert sim.state.faults.counters.failed_requests == 0


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", ORDERS, order()),
        ("DELETE", f"{ORDERS}/ID", None),
        ("POST", f"{ORDERS}/ID/amend", {"ticker": T1, "side": "bid", "price": "0.20", "count": "1"}),
        ("POST", f"{ORDERS}/ID/decrease", {"reduce_by": "1"}),
        ("POST", f"{ORDERS}/batched", {"orders": [order()]}),
        ("DELETE", f"{ORDERS}/batched", {"orders": [{"order_id": "ID"}]}),
    ],
)
async def test_trading_paused_refuses_every_order_write(
    client: Client, sim: Sim, method: str, path: str, body: Any
) -> None:
    order_id = (await client.post(ORDERS, "alice", {**order(), "count": "2"})).json()["order_id"]
    sim.state.faults.trading_paused = True
    if isinstance(body, dict) and "orders" in body and method == "DELETE":
        body = {"orders": [{"order_id": order_id}]}
    response = await client.request(method, path.replace("ID", order_id), "alice", json=body)
    assert_error(response, 400, "trading_paused")
    resting = sim.exchange.orders[order_id]
    assert (resting.status.value, resting.remaining_count, resting.price) == ("resting", 200, 1000)
    assert len(sim.exchange.orders) == 1
    status = (await client.get("/exchange/status")).json()
    assert status["trading_active"] is False
    assert (await client.get(f"/portfolio/orders/{order_id}", "alice")).status_code == 200  # reads still work


async def test_clock_skew_shifts_emitted_timestamps(client: Client, sim: Sim) -> None:
    sim.state.faults.clock_skew_ms = 1_500
    now_ms = sim.clock.now_us() // 1000
    ack = (await client.post(ORDERS, "alice", order())).json()
    assert ack["ts_ms"] == now_ms + 1_500
    got = (await client.get(f"/portfolio/orders/{ack['order_id']}", "alice")).json()["order"]
    assert got["created_time"] == "2026-08-13T20:01:01.500000Z"  # T0 = 20:01:00 plus the skew
    balance = (await client.get("/portfolio/balance", "alice")).json()
    assert balance["updated_ts"] == (now_ms + 1_500) // 1000
