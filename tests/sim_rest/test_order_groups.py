"""Order groups over REST (kalshi-api.md §4 "Order groups", §5 ``order_group_id`` on CreateOrderV2 / Order)."""

from __future__ import annotations

from typing import Any

import httpx

from mm.sim.types import OrderStatus
from tests.sim_rest.conftest import T1, Client, Sim, assert_error

GROUPS = "/portfolio/order_groups"
ORDERS = "/portfolio/events/orders"


async def put(client: Client, path: str, user: str, body: Any = None) -> httpx.Response:
    return await client.request("PUT", path, user, json=body)


async def new_group(client: Client, user: str = "alice", limit: str = "5.00") -> str:
    response = await client.post(f"{GROUPS}/create", user, {"contracts_limit_fp": limit})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body == {"order_group_id": body["order_group_id"], "subaccount": 0, "exchange_index": 0}
    group_id: str = body["order_group_id"]
    return group_id


async def test_create_list_and_get_shapes(client: Client) -> None:
    gid = await new_group(client, limit="5.00")
    await new_group(client, "bob", "1.00")
    listed = await client.get(GROUPS, "alice")
    assert listed.status_code == 200
    expected = {"id": gid, "contracts_limit_fp": "5.00", "is_auto_cancel_enabled": True}
    assert listed.json() == {"order_groups": [expected]}
    got = await client.get(f"{GROUPS}/{gid}", "alice")
    assert got.json() == {"is_auto_cancel_enabled": True, "contracts_limit_fp": "5.00", "orders": []}
    assert_error(await client.get(f"{GROUPS}/{gid}", "bob"), 404, "not_found")
    assert_error(await client.get(f"{GROUPS}/og-999", "alice"), 404, "not_found")


async def test_create_validates_the_limit(client: Client) -> None:
    assert_error(await client.post(f"{GROUPS}/create", "alice", {}), 400, "missing_parameters")
    assert_error(await client.post(f"{GROUPS}/create", "alice", {"contracts_limit_fp": "0.00"}), 400,
                 "invalid_order_size")  # fmt: skip
    assert_error(await client.post(f"{GROUPS}/create", "alice", {"contracts_limit_fp": "1.234"}), 400,
                 "invalid_order_size")  # fmt: skip
    legacy = await client.post(f"{GROUPS}/create", "alice", {"contracts_limit": 3})
    assert legacy.status_code == 201
    assert (await client.get(GROUPS, "alice")).json()["order_groups"][0]["contracts_limit_fp"] == "3.00"


async def test_orders_carry_their_group_and_the_group_lists_them(client: Client, sim: Sim) -> None:
    gid = await new_group(client)
    ack = (await client.create("alice", T1, "bid", "0.4000", "2", order_group_id=gid)).json()
    plain = (await client.create("alice", T1, "bid", "0.3900", "2")).json()
    order = (await client.get(f"/portfolio/orders/{ack['order_id']}", "alice")).json()["order"]
    assert order["order_group_id"] == gid
    plain_order = (await client.get(f"/portfolio/orders/{plain['order_id']}", "alice")).json()["order"]
    assert plain_order["order_group_id"] is None
    assert (await client.get(f"{GROUPS}/{gid}", "alice")).json()["orders"] == [ack["order_id"]]
    assert sim.exchange.orders[ack["order_id"]].order_group_id == gid


async def test_an_unknown_or_foreign_group_on_create_is_404(client: Client) -> None:
    bobs = await new_group(client, "bob")
    assert_error(await client.create("alice", T1, "bid", "0.4000", "1", order_group_id="og-999"), 404, "not_found")
    assert_error(await client.create("alice", T1, "bid", "0.4000", "1", order_group_id=bobs), 404, "not_found")
    assert_error(await client.create("alice", T1, "bid", "0.4000", "1", order_group_id=7), 400, "invalid_parameters")


async def test_reaching_the_limit_triggers_then_reset_reopens(client: Client, sim: Sim) -> None:
    gid = await new_group(client, limit="3.00")
    resting = (await client.create("alice", T1, "bid", "0.4000", "10", order_group_id=gid)).json()
    assert (await client.create("bob", T1, "ask", "0.4000", "3")).status_code == 201  # fills 3: the limit
    order = (await client.get(f"/portfolio/orders/{resting['order_id']}", "alice")).json()["order"]
    assert (order["status"], order["fill_count_fp"]) == ("canceled", "3.00")
    assert sim.exchange.accounts["alice"].reserved == 0
    assert_error(await client.create("alice", T1, "bid", "0.4000", "1", order_group_id=gid), 400,
                 "order_group_triggered")  # fmt: skip
    reset = await put(client, f"{GROUPS}/{gid}/reset", "alice")
    assert reset.status_code == 200 and reset.json() == {}
    again = await client.create("alice", T1, "bid", "0.4000", "1", order_group_id=gid)
    assert again.status_code == 201
    assert sim.exchange.orders[again.json()["order_id"]].status is OrderStatus.RESTING


async def test_trigger_limit_and_delete(client: Client, sim: Sim) -> None:
    gid = await new_group(client, limit="50.00")
    first = (await client.create("alice", T1, "bid", "0.4000", "1", order_group_id=gid)).json()["order_id"]
    response = await put(client, f"{GROUPS}/{gid}/limit", "alice", {"contracts_limit_fp": "20.00"})
    assert response.status_code == 200 and response.json() == {}
    assert (await client.get(f"{GROUPS}/{gid}", "alice")).json()["contracts_limit_fp"] == "20.00"
    assert_error(await put(client, f"{GROUPS}/{gid}/limit", "alice", {}), 400, "missing_parameters")
    assert_error(await put(client, f"{GROUPS}/{gid}/limit", "bob", {"contracts_limit_fp": "1"}), 404, "not_found")
    assert_error(await put(client, f"{GROUPS}/{gid}/trigger", "bob"), 404, "not_found")
    triggered = await put(client, f"{GROUPS}/{gid}/trigger", "alice")
    assert triggered.status_code == 200 and triggered.json() == {}
    assert sim.exchange.orders[first].status is OrderStatus.CANCELED
    await put(client, f"{GROUPS}/{gid}/reset", "alice")
    second = (await client.create("alice", T1, "bid", "0.4000", "1", order_group_id=gid)).json()["order_id"]
    assert_error(await client.delete(f"{GROUPS}/{gid}", "bob"), 404, "not_found")
    deleted = await client.delete(f"{GROUPS}/{gid}", "alice")
    assert deleted.status_code == 200 and deleted.json() == {}
    assert sim.exchange.orders[second].status is OrderStatus.CANCELED
    assert (await client.get(GROUPS, "alice")).json() == {"order_groups": []}
    assert_error(await client.get(f"{GROUPS}/{gid}", "alice"), 404, "not_found")
    kinds = [(e.detail, e.order_group_id) for e in sim.published if e.kind == "order_group"]
    assert kinds == [(k, gid) for k in ("created", "limit_updated", "triggered", "reset", "deleted")]


async def test_order_group_routes_need_auth(client: Client) -> None:
    for method, path in (("GET", GROUPS), ("POST", f"{GROUPS}/create"), ("PUT", f"{GROUPS}/og-1/trigger")):
        response = await client.request(method, path)
        assert response.status_code == 401, (method, path)
