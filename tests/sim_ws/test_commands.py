"""Commands and their responses (kalshi-api.md §6): subscribe, unsubscribe, update_subscription, list_subscriptions,
and the error codes."""

from __future__ import annotations

from typing import Any

import pytest

from mm.sim.ws_messages import market_id
from tests.sim_ws.conftest import ASK, BID, T1, T2, T3, Client, Sim


def sub(cmd_id: int, *channels: str, **params: Any) -> dict[str, Any]:
    return {"id": cmd_id, "cmd": "subscribe", "params": {"channels": list(channels), **params}}


async def test_one_subscribed_per_channel_with_sids_counting_from_one(sim: Sim) -> None:
    client = await sim.connect()
    got = await client.command(sub(1, "orderbook_delta", "ticker", "trade", market_tickers=[T1, T2]))
    acks = [m for m in got if m["type"] == "subscribed"]
    assert acks == [
        {"id": 1, "type": "subscribed", "msg": {"channel": "orderbook_delta", "sid": 1}},
        {"id": 1, "type": "subscribed", "msg": {"channel": "ticker", "sid": 2}},
        {"id": 1, "type": "subscribed", "msg": {"channel": "trade", "sid": 3}},
    ]
    # orderbook_delta sends a snapshot per market, seq 1, 2 on sid 1 (empty books: both side keys omitted)
    snapshots = [m for m in got if m["type"] == "orderbook_snapshot"]
    assert [(m["sid"], m["seq"], m["msg"]["market_ticker"]) for m in snapshots] == [(1, 1, T1), (1, 2, T2)]
    assert set(snapshots[0]["msg"]) == {"market_ticker", "market_id"}
    # A second connection has its own sids.
    other = await sim.connect("bob")
    assert (await other.command(sub(1, "fill")))[0]["msg"] == {"channel": "fill", "sid": 1}


async def test_every_text_frame_ends_with_a_newline(sim: Sim) -> None:
    client = await sim.connect()
    await client.command(sub(1, "orderbook_delta", market_ticker=T1))
    sim.place("bob", T1, BID, 4000, 100)
    await client.sync()
    assert client.raw and all(text.endswith("\n") and text.count("\n") == 1 for text in client.raw)


async def test_a_repeat_subscribe_joins_the_existing_sid_and_is_answered_subscribed(sim: Sim) -> None:
    sim.place("bob", T2, BID, 3000, 100)
    client = await sim.connect()
    await client.command(sub(1, "orderbook_delta", market_ticker=T1))
    again = await client.command(sub(2, "orderbook_delta", market_tickers=[T1, T2]))
    # same sid; a snapshot only for the market that is new to it; its seq continues the sid's counter
    assert again[0] == {"id": 2, "type": "subscribed", "msg": {"channel": "orderbook_delta", "sid": 1}}
    assert [(m["type"], m["seq"], m["msg"]["market_ticker"]) for m in again[1:]] == [("orderbook_snapshot", 2, T2)]
    assert again[1]["msg"]["yes_dollars_fp"] == [["0.3000", "1.00"]]
    await client.send({"id": 4, "cmd": "list_subscriptions"})
    assert await client.recv() == {"id": 4, "type": "ok", "msg": [{"channel": "orderbook_delta", "sid": 1}]}
    # both markets now reach sid 1, on one shared seq counter
    sim.place("bob", T1, BID, 4000, 100)
    sim.place("bob", T2, BID, 3100, 100)
    deltas = await client.sync()
    assert [(m["msg"]["market_ticker"], m["seq"]) for m in deltas] == [(T1, 3), (T2, 4)]


async def test_a_repeat_subscribe_without_tickers_widens_a_filtered_channel(sim: Sim) -> None:
    client = await sim.connect()
    await client.command(sub(1, "trade", market_ticker=T1))
    await client.command(sub(2, "trade"))
    sim.place("bob", T2, ASK, 5000, 100)
    sim.place("carol", T2, BID, 5000, 100)
    got = await client.sync()
    assert [(m["type"], m["sid"], m["msg"]["market_ticker"]) for m in got] == [("trade", 1, T2)]


async def test_list_subscriptions_and_unsubscribe(sim: Sim) -> None:
    client = await sim.connect()
    await client.command(sub(1, "orderbook_delta", "user_orders", market_ticker=T1))
    await client.send({"id": 2, "cmd": "list_subscriptions"})
    assert await client.recv() == {
        "id": 2,
        "type": "ok",
        "msg": [{"channel": "orderbook_delta", "sid": 1}, {"channel": "user_orders", "sid": 2}],
    }
    # unsubscribe answers per sid, with the sid's next seq (the snapshot was seq 1)
    got = await client.command({"id": 3, "cmd": "unsubscribe", "params": {"sids": [1, 2]}})
    assert got == [
        {"id": 3, "sid": 1, "seq": 2, "type": "unsubscribed"},
        {"id": 3, "sid": 2, "seq": 1, "type": "unsubscribed"},
    ]
    sim.place("alice", T1, BID, 4000, 100)  # nothing arrives any more
    assert await client.sync() == []
    # sids are not reused
    assert (await client.command(sub(4, "orderbook_delta", market_ticker=T1)))[0]["msg"]["sid"] == 3


async def test_update_subscription_add_and_delete_markets(sim: Sim) -> None:
    sim.place("bob", T2, ASK, 6000, 250)
    client = await sim.connect()
    await client.command(sub(1, "orderbook_delta", market_ticker=T1))  # snapshot seq 1
    got = await client.command(
        {
            "id": 2,
            "cmd": "update_subscription",
            "params": {"sid": 1, "market_tickers": [T2, T3], "action": "add_markets"},
        }
    )
    assert got[0] == {"id": 2, "sid": 1, "seq": 2, "type": "ok", "msg": {"market_tickers": [T1, T2, T3]}}
    assert [(m["type"], m["seq"], m["msg"]["market_ticker"]) for m in got[1:]] == [
        ("orderbook_snapshot", 3, T2),
        ("orderbook_snapshot", 4, T3),
    ]
    assert got[1]["msg"]["no_dollars_fp"] == [["0.4000", "2.50"]]
    got = await client.command(
        {
            "id": 3,
            "cmd": "update_subscription",
            "params": {"sids": [1], "market_ticker": T1, "action": "delete_markets"},
        }
    )
    assert got == [{"id": 3, "sid": 1, "seq": 5, "type": "ok", "msg": {"market_tickers": [T2, T3]}}]
    sim.place("bob", T1, BID, 4000, 100)  # T1 no longer reaches the sid
    sim.place("bob", T3, BID, 4000, 100)
    assert [(m["msg"]["market_ticker"], m["seq"]) for m in await client.sync()] == [(T3, 6)]
    # skip_ticker_ack: the ok carries no market list
    got = await client.command(
        {
            "id": 4,
            "cmd": "update_subscription",
            "params": {"sid": 1, "market_ticker": T1, "action": "add_markets", "skip_ticker_ack": True},
        }
    )
    assert got[0] == {"id": 4, "sid": 1, "seq": 7, "type": "ok", "msg": {}}


async def test_update_subscription_on_a_private_channel_filters_it(sim: Sim) -> None:
    client = await sim.connect("bob")
    await client.command(sub(1, "user_orders", market_ticker=T1))
    got = await client.command(
        {"id": 2, "cmd": "update_subscription", "params": {"sid": 1, "market_ticker": T2, "action": "add_markets"}}
    )
    assert got == [{"id": 2, "sid": 1, "seq": 1, "type": "ok", "msg": {"market_tickers": [T1, T2]}}]
    sim.place("bob", T3, BID, 4000, 100)
    sim.place("bob", T2, BID, 4000, 100)
    assert [m["msg"]["ticker"] for m in await client.sync()] == [T2]


async def test_get_snapshot_resends_the_book_with_id_and_seq(sim: Sim) -> None:
    client = await sim.connect()
    await client.command(sub(1, "orderbook_delta", market_tickers=[T1, T2]))  # seq 1, 2
    sim.place("bob", T1, BID, 4500, 300)  # seq 3
    sim.place("bob", T1, ASK, 5500, 120)  # seq 4
    assert len(await client.sync()) == 2
    got = await client.command(
        {"id": 9, "cmd": "update_subscription", "params": {"sid": 1, "market_tickers": [T1], "action": "get_snapshot"}}
    )
    assert got == [
        {
            "id": 9,
            "type": "orderbook_snapshot",
            "sid": 1,
            "seq": 5,
            "msg": {
                "market_ticker": T1,
                "market_id": got[0]["msg"]["market_id"],
                "yes_dollars_fp": [["0.4500", "3.00"]],
                "no_dollars_fp": [["0.4500", "1.20"]],
            },
        }
    ]
    # the subscription is unchanged
    await client.send({"id": 10, "cmd": "list_subscriptions"})
    assert (await client.recv())["msg"] == [{"channel": "orderbook_delta", "sid": 1}]


async def error_code(client: Client, command: dict[str, Any] | str) -> dict[str, Any]:
    if isinstance(command, str):
        await client.ws.send(command)
        got = await client.sync()
    else:
        got = await client.command(command)
    assert len(got) == 1 and got[0]["type"] == "error", got
    return got[0]


@pytest.mark.parametrize(
    ("command", "code"),
    [
        ("not json", 1),
        ("[1, 2]", 1),
        ({"id": 1, "cmd": "subscribe_all"}, 5),
        ({"id": 1}, 5),
        ({"id": 1, "cmd": "subscribe"}, 2),
        ({"id": 1, "cmd": "subscribe", "params": {}}, 3),
        ({"id": 1, "cmd": "subscribe", "params": {"channels": []}}, 3),
        ({"id": 1, "cmd": "subscribe", "params": {"channels": ["ticker_v2"]}}, 8),
        ({"id": 1, "cmd": "subscribe", "params": {"channels": ["orderbook_delta"]}}, 14),
        ({"id": 1, "cmd": "subscribe", "params": {"channels": ["ticker"], "market_ticker": 7}}, 11),
        ({"id": 1, "cmd": "subscribe", "params": {"channels": ["ticker"], "use_yes_price": "yes"}}, 11),
        ({"id": 1, "cmd": "unsubscribe", "params": {}}, 4),
        ({"id": 1, "cmd": "unsubscribe", "params": {"sids": [42]}}, 7),
        ({"id": 1, "cmd": "update_subscription", "params": {"sids": [1, 2], "action": "add_markets"}}, 12),
        ({"id": 1, "cmd": "update_subscription", "params": {"market_ticker": T1, "action": "add_markets"}}, 12),
        ({"id": 1, "cmd": "update_subscription", "params": {"sid": 1, "market_ticker": T1}}, 15),
        ({"id": 1, "cmd": "update_subscription", "params": {"sid": 1, "market_ticker": T1, "action": "swap"}}, 13),
        (
            {
                "id": 1,
                "cmd": "update_subscription",
                "params": {"sid": 42, "market_ticker": T1, "action": "add_markets"},
            },
            7,
        ),
        ({"id": 1, "cmd": "update_subscription", "params": {"sid": 1, "action": "add_markets"}}, 14),
        (
            {
                "id": 1,
                "cmd": "update_subscription",
                "params": {"sid": 2, "market_ticker": T1, "action": "get_snapshot"},
            },
            13,
        ),
        (
            {"id": 1, "cmd": "update_subscription", "params": {"sid": 3, "market_ticker": T1, "action": "add_markets"}},
            13,
        ),
    ],
)
async def test_error_codes(sim: Sim, command: dict[str, Any] | str, code: int) -> None:
    client = await sim.connect()
    await client.command(sub(100, "orderbook_delta", market_ticker=T2))  # sid 1
    await client.command(sub(101, "ticker", market_ticker=T2))  # sid 2
    await client.command(sub(102, "market_lifecycle_v2"))  # sid 3
    error = await error_code(client, command)
    assert error["msg"]["code"] == code and isinstance(error["msg"]["msg"], str)
    if isinstance(command, dict):
        assert error["id"] == 1
    else:
        assert "id" not in error


async def test_unknown_markets_are_code_16_and_subscribe_nothing(sim: Sim) -> None:
    client = await sim.connect()
    error = await error_code(client, sub(1, "orderbook_delta", "ticker", market_tickers=[T1, "NOPE-1"]))
    assert error == {
        "id": 1,
        "type": "error",
        "msg": {"code": 16, "msg": "Market not found", "market_ticker": "NOPE-1"},
    }
    await client.send({"id": 2, "cmd": "list_subscriptions"})
    assert (await client.recv())["msg"] == []
    await client.command(sub(3, "orderbook_delta", market_ticker=T1))
    error = await error_code(
        client,
        {"id": 4, "cmd": "update_subscription", "params": {"sid": 1, "market_ticker": "X", "action": "add_markets"}},
    )
    assert error["msg"]["code"] == 16
    # get_snapshot for a market outside the subscription
    error = await error_code(
        client,
        {"id": 5, "cmd": "update_subscription", "params": {"sid": 1, "market_ticker": T3, "action": "get_snapshot"}},
    )
    assert error["msg"]["code"] == 16 and error["msg"]["market_ticker"] == T3


async def test_one_unknown_channel_does_not_stop_the_others(sim: Sim) -> None:
    client = await sim.connect()
    got = await client.command(sub(1, "bogus", "trade"))
    assert got == [
        {"id": 1, "type": "error", "msg": {"code": 8, "msg": "Unknown channel name: bogus"}},
        {"id": 1, "type": "subscribed", "msg": {"channel": "trade", "sid": 1}},
    ]


async def test_ticker_channel_accepts_market_ids(sim: Sim) -> None:
    client = await sim.connect()
    got = await client.command(sub(1, "ticker", market_ids=[market_id(T2)], send_initial_snapshot=True))
    assert got[0]["type"] == "subscribed"
    assert [(m["type"], m["msg"]["market_ticker"]) for m in got[1:]] == [("ticker", T2)]
