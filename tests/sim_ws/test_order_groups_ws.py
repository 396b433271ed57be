"""``order_group_updates`` (kalshi-api.md §6): private group events with a per-sid ``seq``."""

from __future__ import annotations

from typing import Any

from mm.sim.exchange import NewOrder
from tests.sim_ws.conftest import ASK, BID, T1, Sim


def sub(cmd_id: int, *channels: str) -> dict[str, Any]:
    return {"id": cmd_id, "cmd": "subscribe", "params": {"channels": list(channels)}}


def updates(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in messages if m["type"] == "order_group_updates"]


async def test_created_triggered_reset_with_an_incrementing_seq(sim: Sim) -> None:
    alice = await sim.connect("alice")
    bob = await sim.connect("bob")
    acks = await alice.command(sub(1, "user_orders", "order_group_updates"))
    sid = next(m["msg"]["sid"] for m in acks if m["msg"]["channel"] == "order_group_updates")
    await bob.command(sub(1, "order_group_updates"))
    ex = sim.exchange
    gid = ex.create_order_group("alice", 200)
    sim.state.publish()
    ex.create_order("alice", NewOrder(T1, BID, 4000, 500, order_group_id=gid))
    sim.place("bob", T1, ASK, 4000, 200)  # fills 2 of alice's 5: the limit, so the group triggers
    ex.reset_order_group("alice", gid)
    ex.set_order_group_limit("alice", gid, 300)
    ex.delete_order_group("alice", gid)
    sim.state.publish()
    got = await alice.sync()
    messages = updates(got)
    assert [m["msg"]["event_type"] for m in messages] == ["created", "triggered", "reset", "limit_updated", "deleted"]
    assert [m["seq"] for m in messages] == [1, 2, 3, 4, 5]
    assert {m["sid"] for m in messages} == {sid}
    assert {m["msg"]["order_group_id"] for m in messages} == {gid}
    assert [m["msg"].get("contracts_limit_fp") for m in messages] == ["2.00", "2.00", "2.00", "3.00", None]
    assert "contracts_limit_fp" not in messages[-1]["msg"]
    assert all(m["msg"]["ts_ms"] == sim.clock.now_us() // 1000 for m in messages)
    # the trigger's cancel reaches user_orders before the group update, and shows the group
    orders = [m for m in got if m["type"] == "user_order"]
    assert orders[-1]["msg"]["status"] == "canceled" and orders[-1]["msg"]["order_group_id"] == gid
    assert got.index(orders[-1]) < got.index(messages[1])
    assert updates(await bob.sync()) == []  # private to the group's owner


async def test_order_group_updates_is_a_live_channel(sim: Sim) -> None:
    alice = await sim.connect("alice")
    acks = await alice.command(sub(1, "order_group_updates"))
    assert [m["type"] for m in acks] == ["subscribed"]
    sim.exchange.create_order_group("alice", 100)
    sim.state.publish()
    (message,) = updates(await alice.sync())
    assert message["seq"] == 1 and message["msg"]["event_type"] == "created"
    assert message["msg"]["contracts_limit_fp"] == "1.00"
