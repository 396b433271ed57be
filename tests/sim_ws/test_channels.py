"""ticker, trade, fill, user_orders, market_positions and market_lifecycle_v2 (kalshi-api.md §6, §13)."""

from __future__ import annotations

from typing import Any

from mm.clock import format_rfc3339_us
from mm.domain.ticks import TickGrid
from mm.sim.ws_messages import market_id
from tests.sim_ws.conftest import ASK, BID, CLOSE_US, EVENT, T1, T2, Sim


def sub(cmd_id: int, *channels: str, **params: Any) -> dict[str, Any]:
    return {"id": cmd_id, "cmd": "subscribe", "params": {"channels": list(channels), **params}}


def of_type(messages: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [m for m in messages if m["type"] == kind]


async def test_ticker_reports_top_of_book_last_trade_volume_and_open_interest(sim: Sim) -> None:
    client = await sim.connect()
    got = await client.command(sub(1, "ticker", market_ticker=T1, send_initial_snapshot=True))
    (initial,) = of_type(got, "ticker")
    assert initial["sid"] == 1 and "seq" not in initial
    assert initial["msg"]["yes_bid_dollars"] == "0.0000" and initial["msg"]["yes_ask_dollars"] == "1.0000"
    sim.place("bob", T1, BID, 4500, 300)
    sim.place("carol", T1, ASK, 5300, 1500)
    sim.place("alice", T1, BID, 5300, 250)  # alice takes 2.5 of carol's 15 at 0.53
    sim.place("bob", T2, BID, 4000, 100)  # another market: filtered out
    tickers = await client.sync()
    assert [m["msg"]["market_ticker"] for m in tickers] == [T1, T1, T1]
    last = tickers[-1]["msg"]
    now_us = sim.state.clock.now_us()
    assert last == {
        "market_ticker": T1,
        "market_id": market_id(T1),
        "price_dollars": "0.5300",
        "yes_bid_dollars": "0.4500",
        "yes_ask_dollars": "0.5300",
        "yes_bid_size_fp": "3.00",
        "yes_ask_size_fp": "12.50",
        "last_trade_size_fp": "2.50",
        "volume_fp": "2.50",
        "open_interest_fp": "2.50",
        "dollar_volume": 2,
        "dollar_open_interest": 2,
        "ts": now_us // 1_000_000,
        "time": format_rfc3339_us(now_us),
        "ts_ms": now_us // 1000,
    }
    # nothing the ticker reports changed: no message
    sim.place("bob", T1, BID, 3000, 100)
    assert await client.sync() == []


async def test_trade_messages_name_the_taker_sides(sim: Sim) -> None:
    client = await sim.connect()
    await client.command(sub(1, "trade"))
    sim.place("bob", T1, BID, 3600, 13600)
    sim.place("carol", T1, ASK, 3500, 13600)  # carol sells YES (buys NO) as taker at the resting 0.36
    (trade,) = await client.sync()
    msg = trade["msg"]
    assert trade["type"] == "trade" and trade["sid"] == 1 and "seq" not in trade
    assert msg["market_ticker"] == T1 and msg["trade_id"].startswith("trade-")
    assert (msg["yes_price_dollars"], msg["no_price_dollars"], msg["count_fp"]) == ("0.3600", "0.6400", "136.00")
    assert (msg["taker_outcome_side"], msg["taker_book_side"], msg["taker_side"]) == ("no", "ask", "no")
    assert msg["is_block_trade"] is False
    assert msg["ts_ms"] == sim.state.clock.now_us() // 1000 and msg["ts"] == msg["ts_ms"] // 1000


async def test_private_channels_only_carry_the_connections_own_user(sim: Sim) -> None:
    alice = await sim.connect("alice")
    bob = await sim.connect("bob")
    for client in (alice, bob):
        await client.command(sub(1, "fill", "user_orders", "market_positions"))
    resting = sim.place("bob", T1, BID, 7500, 50000, client_order_id="bob-1")
    sim.place("alice", T1, ASK, 7000, 27800, client_order_id="alice-1")  # alice sells 278 YES into bob's bid
    alice_got, bob_got = await alice.sync(), await bob.sync()
    for got, user in ((alice_got, "alice"), (bob_got, "bob")):
        assert {m["msg"]["user_id"] for m in of_type(got, "user_order") + of_type(got, "market_position")} == {user}
    (alice_fill,) = of_type(alice_got, "fill")
    (bob_fill,) = of_type(bob_got, "fill")
    assert alice_fill["msg"]["trade_id"] == bob_fill["msg"]["trade_id"]
    a, b = alice_fill["msg"], bob_fill["msg"]
    assert (a["is_taker"], a["book_side"], a["outcome_side"], a["side"], a["purchased_side"], a["action"]) == (
        True,
        "ask",
        "no",
        "no",
        "no",
        "buy",
    )
    assert (b["is_taker"], b["book_side"], b["outcome_side"], b["client_order_id"]) == (False, "bid", "yes", "bob-1")
    assert a["yes_price_dollars"] == "0.7500" and a["count_fp"] == "278.00" and "no_price_dollars" not in a
    assert a["post_position_fp"] == "-278.00" and b["post_position_fp"] == "278.00"
    assert a["order_id"] != b["order_id"] == resting.order_id
    # taker fee 0.07 × 278 × 0.75 × 0.25 = 3.64875 → $3.6488 (ceil to $0.0001); quadratic makers pay 0
    assert a["fee_cost"] == "3.6488" and b["fee_cost"] == "0.0000"
    assert a["exchange_index"] == 0 and a["ts"] == a["ts_ms"] // 1000
    # user_order: bob's order rests, then is partly filled
    orders = of_type(bob_got, "user_order")
    assert [(m["msg"]["status"], m["msg"]["fill_count_fp"], m["msg"]["remaining_count_fp"]) for m in orders] == [
        ("resting", "0.00", "500.00"),
        ("resting", "278.00", "222.00"),
    ]
    order = orders[-1]["msg"]
    assert order["ticker"] == T1 and "market_ticker" not in order and "seq" not in orders[-1]
    assert (order["outcome_side"], order["book_side"], order["is_yes"], order["yes_price_dollars"]) == (
        "yes",
        "bid",
        True,
        "0.7500",
    )
    assert order["client_order_id"] == "bob-1" and order["maker_fill_cost_dollars"] == "208.5000"
    (alice_order,) = of_type(alice_got, "user_order")
    assert alice_order["msg"]["status"] == "executed" and alice_order["msg"]["taker_fees_dollars"] == "3.6488"
    # market_position: one per user and market per batch, the state after it
    (position,) = of_type(alice_got, "market_position")
    assert position["msg"]["market_ticker"] == T1 and position["msg"]["position_fp"] == "-278.00"
    assert position["msg"]["fees_paid_dollars"] == "3.6488" and position["msg"]["volume_fp"] == "278.00"
    assert position["msg"]["position_cost_dollars"] == "69.5000"  # 278 NO at 0.25


async def test_a_private_subscription_can_filter_markets(sim: Sim) -> None:
    alice = await sim.connect("alice")
    await alice.command(sub(1, "user_orders", market_ticker=T2))
    sim.place("alice", T1, BID, 4000, 100)
    sim.place("alice", T2, BID, 4000, 100)
    assert [m["msg"]["ticker"] for m in await alice.sync()] == [T2]


async def test_fill_post_position_is_exact_per_fill_within_one_batch(sim: Sim) -> None:
    alice = await sim.connect("alice")
    await alice.command(sub(1, "fill"))
    sim.place("bob", T1, ASK, 5000, 100)
    sim.place("carol", T1, ASK, 5100, 200)
    sim.place("bob", T1, ASK, 5200, 300)
    sim.place("alice", T1, BID, 5200, 600)  # three fills in one batch
    fills = await alice.sync()
    assert [(m["msg"]["yes_price_dollars"], m["msg"]["post_position_fp"]) for m in fills] == [
        ("0.5000", "1.00"),
        ("0.5100", "3.00"),
        ("0.5200", "6.00"),
    ]


async def test_lifecycle_created_determined_settled_and_a_silent_close(sim: Sim) -> None:
    client = await sim.connect()
    got = await client.command(sub(1, "market_lifecycle_v2", market_ticker=T1))  # tickers are ignored
    assert got[0]["msg"] == {"channel": "market_lifecycle_v2", "sid": 1}
    new = "KXBTCD-26AUG1318-T73249.99"
    sim.exchange.add_market(
        new, "KXBTCD-26AUG1318", "KXBTCD", TickGrid.linear_cent(), CLOSE_US, CLOSE_US + 3_600_000_000
    )
    sim.state.publish()
    assert await client.sync() == []  # not open yet: initialized markets are announced when they activate
    sim.clock.set_us(CLOSE_US)
    sim.exchange.refresh_status(T1)  # T1 closes: silent (§13)
    sim.exchange.refresh_status(new)  # the new market opens
    sim.state.publish()
    event, created = await client.sync()
    assert event["type"] == "event_lifecycle" and event["msg"]["event_ticker"] == "KXBTCD-26AUG1318"
    assert event["msg"]["series_ticker"] == "KXBTCD"
    assert created["type"] == "market_lifecycle_v2" and created["sid"] == 1 and "seq" not in created
    assert created["msg"]["market_ticker"] == new and created["msg"]["event_type"] == "created"
    assert created["msg"]["open_ts"] == CLOSE_US // 1_000_000
    assert created["msg"]["close_ts"] == CLOSE_US // 1_000_000 + 3600
    sim.exchange.determine(T1, "yes")
    sim.state.publish()
    (determined,) = await client.sync()
    assert determined["msg"] == {
        "market_ticker": T1,
        "event_type": "determined",
        "result": "yes",
        "determination_ts": CLOSE_US // 1_000_000,
        "settlement_value": "1.0000",
    }
    sim.exchange.finalize(T1)
    sim.state.publish()
    (settled,) = await client.sync()
    assert settled["msg"] == {"market_ticker": T1, "event_type": "settled", "settled_ts": CLOSE_US // 1_000_000}
    assert EVENT != "KXBTCD-26AUG1318"


async def test_settlement_pushes_a_market_position(sim: Sim) -> None:
    alice = await sim.connect("alice")
    await alice.command(sub(1, "market_positions"))
    sim.place("bob", T1, ASK, 6000, 1000)
    sim.place("alice", T1, BID, 6000, 1000)
    (before,) = await alice.sync()
    assert before["msg"]["position_fp"] == "10.00"
    sim.clock.set_us(CLOSE_US)
    sim.exchange.refresh_status(T1)
    sim.exchange.determine(T1, "yes")
    sim.exchange.finalize(T1)
    sim.state.publish()
    (after,) = await alice.sync()
    assert after["msg"]["position_fp"] == "0.00" and after["msg"]["user_id"] == "alice"


async def test_the_clock_skew_fault_shifts_message_timestamps(sim: Sim) -> None:
    client = await sim.connect()
    await client.command(sub(1, "trade"))
    sim.state.faults.clock_skew_ms = 1500
    sim.place("bob", T1, BID, 5000, 100)
    sim.place("carol", T1, ASK, 5000, 100)
    (trade,) = await client.sync()
    assert trade["msg"]["ts_ms"] == sim.state.clock.now_us() // 1000 + 1500
