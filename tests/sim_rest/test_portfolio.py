"""Authenticated reads: balance, positions, fills, settlements, orders, account limits (kalshi-api.md §4–5)."""

from __future__ import annotations

import re
from typing import Any

from mm.sim.exchange import NewOrder
from mm.sim.types import BookSide
from tests.sim_rest.conftest import CLOSE_US, EVENT, T1, T2, Client, Sim, assert_error

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
DOLLARS = re.compile(r"^-?\d+\.\d{4}(\d\d)?$")


def trade(sim: Sim, ticker: str, price: int, contracts: int, buyer: str = "bob", seller: str = "alice") -> None:
    sim.exchange.create_order(seller, NewOrder(ticker, BookSide.ASK, price, contracts * 100))
    sim.exchange.create_order(buyer, NewOrder(ticker, BookSide.BID, price, contracts * 100))


async def pages(client: Client, path: str, key: str, user: str, limit: int, **params: Any) -> list[list[Any]]:
    out: list[list[Any]] = []
    cursor = ""
    while True:
        query = {"limit": limit, **params} | ({"cursor": cursor} if cursor else {})
        response = await client.get(path, user, **query)
        assert response.status_code == 200, response.text
        body = response.json()
        out.append(body[key])
        cursor = body["cursor"]
        if not cursor:
            return out


async def test_balance_shape(client: Client, sim: Sim) -> None:
    sim.exchange.create_order("carol", NewOrder(T1, BookSide.BID, 3300, 1))  # 0.01 contract reserves $0.0033
    body = (await client.get("/portfolio/balance", "carol")).json()
    assert body["balance"] == 9999 and isinstance(body["balance"], int)  # $99.9967 floored to cents
    assert body["balance_dollars"] == "99.9967"
    assert isinstance(body["portfolio_value"], int) and isinstance(body["updated_ts"], int)
    assert body["updated_ts"] == sim.clock.now_us() // 1_000_000
    assert body["balance_breakdown"] == [{"exchange_index": 0, "balance": 9999, "balance_dollars": "99.9967"}]


async def test_portfolio_value_marks_positions_at_the_last_price(client: Client, sim: Sim) -> None:
    trade(sim, T1, 4000, 10)
    assert (await client.get("/portfolio/balance", "bob")).json()["portfolio_value"] == 400  # 10 YES × $0.40
    assert (await client.get("/portfolio/balance", "alice")).json()["portfolio_value"] == 600  # 10 NO × $0.60


async def test_positions_shape_filters_and_pagination(client: Client, sim: Sim) -> None:
    trade(sim, T1, 4000, 10)
    trade(sim, T2, 2500, 4)
    body = (await client.get("/portfolio/positions", "bob")).json()
    assert [p["ticker"] for p in body["market_positions"]] == [T1, T2]
    position = body["market_positions"][0]
    assert position["position_fp"] == "10.00" and position["exchange_index"] == 0
    assert position["market_exposure_dollars"] == "4.0000" and position["total_traded_dollars"] == "4.0000"
    assert position["fees_paid_dollars"] == "0.1680"  # 0.07 × 10 × 0.4 × 0.6
    assert position["realized_pnl_dollars"] == "-0.1680"
    assert RFC3339.match(position["last_updated_ts"])
    for name in ("market_exposure_dollars", "total_traded_dollars", "realized_pnl_dollars", "fees_paid_dollars"):
        assert DOLLARS.match(position[name]), name
    event = body["event_positions"]
    assert len(event) == 1 and event[0]["event_ticker"] == EVENT
    assert event[0]["total_cost_shares_fp"] == "14.00" and event[0]["event_exposure_dollars"] == "5.0000"
    only = (await client.get("/portfolio/positions", "bob", ticker=T2)).json()["market_positions"]
    assert [p["ticker"] for p in only] == [T2]
    assert (await client.get("/portfolio/positions", "bob", event_ticker="OTHER")).json()["market_positions"] == []
    split = await pages(client, "/portfolio/positions", "market_positions", "bob", 1)
    assert [[p["ticker"] for p in page] for page in split] == [[T1], [T2]]
    assert (await client.get("/portfolio/positions", "carol")).json()["market_positions"] == []


async def test_fills_paginate_newest_first_and_filter(client: Client, sim: Sim) -> None:
    for n in range(1, 8):
        sim.clock.advance(1)
        trade(sim, T1 if n % 2 else T2, 5000, n)
    split = await pages(client, "/portfolio/fills", "fills", "bob", 3)
    assert [len(p) for p in split] == [3, 3, 1]
    counts = [f["count_fp"] for page in split for f in page]
    assert counts == [f"{n}.00" for n in range(7, 0, -1)]
    only_t2 = (await client.get("/portfolio/fills", "bob", ticker=T2)).json()["fills"]
    assert [f["count_fp"] for f in only_t2] == ["6.00", "4.00", "2.00"]
    order_id = only_t2[0]["order_id"]
    by_order = (await client.get("/portfolio/fills", "bob", order_id=order_id)).json()["fills"]
    assert [f["order_id"] for f in by_order] == [order_id]
    newest_ts = split[0][0]["ts"]
    recent = (await client.get("/portfolio/fills", "bob", min_ts=newest_ts - 1)).json()["fills"]
    assert [f["count_fp"] for f in recent] == ["7.00", "6.00"]
    fill = split[0][0]
    required = "fill_id trade_id order_id ticker market_ticker count_fp yes_price_dollars no_price_dollars is_taker"
    assert {*required.split(), "fee_cost", "created_time", "ts", "outcome_side", "book_side"} <= set(fill)


async def test_orders_list_filters_and_paginates(client: Client, sim: Sim) -> None:
    ids = []
    for i in range(5):
        sim.clock.advance(1)
        ids.append(sim.exchange.create_order("alice", NewOrder(T1, BookSide.BID, 3000 + 100 * i, 100)).order_id)
    sim.exchange.cancel_order("alice", ids[0])
    sim.exchange.create_order("alice", NewOrder(T2, BookSide.BID, 2000, 100))
    split = await pages(client, "/portfolio/orders", "orders", "alice", 4)
    assert [len(p) for p in split] == [4, 2]
    listed = [o["order_id"] for page in split for o in page]
    assert listed[1:] == list(reversed(ids))  # newest first
    canceled = (await client.get("/portfolio/orders", "alice", status="canceled")).json()["orders"]
    assert [o["order_id"] for o in canceled] == [ids[0]]
    resting_t1 = (await client.get("/portfolio/orders", "alice", status="resting", ticker=T1)).json()["orders"]
    assert len(resting_t1) == 4
    by_event = (await client.get("/portfolio/orders", "alice", event_ticker=EVENT)).json()["orders"]
    assert len(by_event) == 6
    assert (await client.get("/portfolio/orders", "bob")).json() == {"orders": [], "cursor": ""}
    assert_error(await client.get("/portfolio/orders", "alice", status="pending"), 400, "invalid_parameters")


async def test_settlements_after_the_market_is_finalized(client: Client, sim: Sim) -> None:
    trade(sim, T1, 4000, 10)
    assert (await client.get("/portfolio/settlements", "bob")).json() == {"settlements": [], "cursor": ""}
    sim.clock.set_us(CLOSE_US + 1_000_000)
    sim.exchange.refresh_status(T1)
    sim.exchange.determine(T1, "yes")
    sim.clock.advance(5)
    sim.exchange.finalize(T1)
    sim.state.publish()
    bob = (await client.get("/portfolio/settlements", "bob")).json()["settlements"]
    assert len(bob) == 1
    row = bob[0]
    assert row["ticker"] == T1 and row["event_ticker"] == EVENT and row["market_result"] == "yes"
    assert (row["yes_count_fp"], row["no_count_fp"]) == ("10.00", "0.00")
    assert (row["yes_total_cost_dollars"], row["no_total_cost_dollars"]) == ("4.0000", "0.0000")
    assert row["revenue"] == 1000 and row["value"] == 100 and row["fee_cost"] == "0.0000"
    assert row["settled_time"] == "2026-08-13T21:00:06.000000Z"
    alice = (await client.get("/portfolio/settlements", "alice")).json()["settlements"][0]
    assert (alice["no_count_fp"], alice["no_total_cost_dollars"], alice["revenue"]) == ("10.00", "6.0000", 0)
    market = (await client.get(f"/markets/{T1}")).json()["market"]
    assert market["status"] == "finalized" and market["result"] == "yes"
    assert market["settlement_value_dollars"] == "1.0000" and market["settlement_ts"] == row["settled_time"]
    settled = (await client.get("/markets", status="settled")).json()["markets"]
    assert [m["ticker"] for m in settled] == [T1]


async def test_account_limits(client: Client) -> None:
    body = (await client.get("/account/limits", "carol")).json()
    assert body["usage_tier"] == "basic"
    assert body["read"] == {"refill_rate": 200, "bucket_capacity": 400}
    assert body["write"] == {"refill_rate": 100, "bucket_capacity": 100}
    assert (body["read_limit"], body["write_limit"]) == (200, 100) and body["grants"] == []
