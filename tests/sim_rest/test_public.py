"""Public REST reads: exchange, markets, order books, trades, events, series (kalshi-api.md §4, §5, §8, §13)."""

from __future__ import annotations

import re
from typing import Any

from mm.domain.ticks import TickGrid
from mm.sim.exchange import NewOrder
from mm.sim.types import BookSide
from tests.sim_rest.conftest import (
    CLOSE_US,
    EVENT,
    LATER,
    NEXT_EVENT,
    SERIES,
    T1,
    T2,
    T3,
    Client,
    Sim,
    assert_error,
)

PRICE = re.compile(r"^\d\.\d{4}$")
COUNT = re.compile(r"^-?\d+\.\d{2}$")
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")

MARKET_REQUIRED = [
    "ticker",
    "event_ticker",
    "market_type",
    "yes_sub_title",
    "no_sub_title",
    "created_time",
    "updated_time",
    "open_time",
    "close_time",
    "latest_expiration_time",
    "settlement_timer_seconds",
    "status",
    "result",
    "yes_bid_dollars",
    "yes_ask_dollars",
    "no_bid_dollars",
    "no_ask_dollars",
    "yes_bid_size_fp",
    "yes_ask_size_fp",
    "last_price_dollars",
    "previous_yes_bid_dollars",
    "previous_yes_ask_dollars",
    "previous_price_dollars",
    "volume_fp",
    "volume_24h_fp",
    "open_interest_fp",
    "notional_value_dollars",
    "expiration_value",
    "can_close_early",
    "rules_primary",
    "rules_secondary",
    "price_level_structure",
    "price_ranges",
    "exchange_index",
]


def rest(sim: Sim, user: str, side: BookSide, price: int, contracts: int, ticker: str = T1) -> None:
    sim.exchange.create_order(user, NewOrder(ticker, side, price, contracts * 100))


async def test_exchange_status_and_schedule(client: Client) -> None:
    status = (await client.get("/exchange/status")).json()
    assert status["exchange_active"] is True and status["trading_active"] is True
    assert isinstance(status["intra_exchange_transfers_active"], bool)
    schedule = (await client.get("/exchange/schedule")).json()["schedule"]
    assert isinstance(schedule["standard_hours"], list) and schedule["maintenance_windows"] == []


async def test_a_market_has_every_required_field_with_the_documented_types(client: Client, sim: Sim) -> None:
    rest(sim, "alice", BookSide.BID, 4500, 3)
    rest(sim, "bob", BookSide.ASK, 5300, 2)
    response = await client.get(f"/markets/{T1}")
    assert response.status_code == 200
    market: dict[str, Any] = response.json()["market"]
    assert set(MARKET_REQUIRED) <= set(market)
    assert market["ticker"] == T1 and market["event_ticker"] == EVENT and market["status"] == "active"
    assert market["market_type"] == "binary" and market["result"] == ""
    assert (market["yes_bid_dollars"], market["yes_ask_dollars"]) == ("0.4500", "0.5300")
    assert (market["no_bid_dollars"], market["no_ask_dollars"]) == ("0.4700", "0.5500")
    assert (market["yes_bid_size_fp"], market["yes_ask_size_fp"]) == ("3.00", "2.00")
    assert market["notional_value_dollars"] == "1.0000" and market["liquidity_dollars"] == "0.0000"
    for name in ("created_time", "updated_time", "open_time", "close_time", "latest_expiration_time"):
        assert RFC3339.match(market[name]), name
    for name in ("volume_fp", "volume_24h_fp", "open_interest_fp", "yes_bid_size_fp"):
        assert COUNT.match(market[name]), name
    assert isinstance(market["settlement_timer_seconds"], int)
    assert market["floor_strike"] == 73249.99 and market["strike_type"] == "greater"
    assert market["price_level_structure"] == "linear_cent"
    assert market["price_ranges"] == [{"start": "0.0000", "end": "1.0000", "step": "0.0100"}]


async def test_an_empty_book_shows_bid_zero_and_ask_one(client: Client) -> None:
    market = (await client.get(f"/markets/{T2}")).json()["market"]
    assert (market["yes_bid_dollars"], market["yes_ask_dollars"]) == ("0.0000", "1.0000")
    assert (market["no_bid_dollars"], market["no_ask_dollars"]) == ("0.0000", "1.0000")


async def test_an_unknown_market_is_404_with_a_kalshi_error(client: Client) -> None:
    assert_error(await client.get("/markets/NOPE-1"), 404, "not_found")
    assert_error(await client.get("/markets/NOPE-1/orderbook"), 404, "not_found")


async def test_markets_filter_by_status_event_series_and_tickers(client: Client) -> None:
    async def tickers(**params: Any) -> list[str]:
        response = await client.get("/markets", **params)
        assert response.status_code == 200, response.text
        return [m["ticker"] for m in response.json()["markets"]]

    assert await tickers() == sorted([T1, T2, T3, LATER])
    assert await tickers(status="open") == [T1, T2, T3]
    assert await tickers(status="active") == [T1, T2, T3]  # lifecycle names map to filters (§14)
    assert await tickers(status="unopened") == [LATER]
    assert await tickers(status="closed") == []
    assert await tickers(event_ticker=NEXT_EVENT) == [LATER]
    assert await tickers(series_ticker=SERIES, tickers=f"{T3},{T1}") == [T1, T3]
    assert await tickers(max_close_ts=CLOSE_US // 1_000_000) == [T1, T2, T3]
    assert_error(await client.get("/markets", status="bogus"), 400, "invalid_parameters")


async def test_markets_move_to_closed_when_the_clock_passes_the_close(client: Client, sim: Sim) -> None:
    sim.clock.set_us(CLOSE_US)
    closed = (await client.get("/markets", status="closed")).json()["markets"]
    assert [m["ticker"] for m in closed] == [T1, T2, T3] and {m["status"] for m in closed} == {"closed"}
    assert [m["ticker"] for m in (await client.get("/markets", status="open")).json()["markets"]] == [LATER]


async def test_markets_paginate_with_an_opaque_cursor(client: Client) -> None:
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        body = (await client.get("/markets", **params)).json()
        assert len(body["markets"]) <= 3
        seen += [m["ticker"] for m in body["markets"]]
        pages += 1
        cursor = body["cursor"]
        if not cursor:
            break
    assert pages == 2 and seen == sorted([T1, T2, T3, LATER])
    assert_error(await client.get("/markets", limit=1001), 400, "invalid_parameters")
    assert_error(await client.get("/markets", cursor="!!!"), 400, "invalid_parameters")


async def test_the_orderbook_is_bids_only_ascending_strings(client: Client, sim: Sim) -> None:
    rest(sim, "alice", BookSide.BID, 4000, 1)
    rest(sim, "alice", BookSide.BID, 4500, 3)
    rest(sim, "alice", BookSide.BID, 4500, 2)
    rest(sim, "bob", BookSide.ASK, 5300, 7)
    rest(sim, "bob", BookSide.ASK, 6000, 4)
    book = (await client.get(f"/markets/{T1}/orderbook")).json()["orderbook_fp"]
    assert book["yes_dollars"] == [["0.4000", "1.00"], ["0.4500", "5.00"]]
    # YES asks at 0.53 and 0.60 are NO bids at 0.47 and 0.40, ascending, best (0.47) last.
    assert book["no_dollars"] == [["0.4000", "4.00"], ["0.4700", "7.00"]]
    top = (await client.get(f"/markets/{T1}/orderbook", depth=1)).json()["orderbook_fp"]
    assert top == {"yes_dollars": [["0.4500", "5.00"]], "no_dollars": [["0.4700", "7.00"]]}
    empty = (await client.get(f"/markets/{T2}/orderbook")).json()["orderbook_fp"]
    assert empty == {"yes_dollars": [], "no_dollars": []}
    assert_error(await client.get(f"/markets/{T1}/orderbook", depth=101), 400, "invalid_parameters")


async def test_the_orderbook_equals_the_engine_levels(client: Client, sim: Sim) -> None:
    for i, price in enumerate(range(3000, 5000, 100)):
        rest(sim, "alice", BookSide.BID, price, i + 1)
        rest(sim, "bob", BookSide.ASK, price + 2500, 2 * i + 1)
    rest(sim, "bob", BookSide.ASK, 4800, 5)  # crosses: trades against alice's best bids
    bids, asks = sim.exchange.markets[T1].engine.levels()
    book = (await client.get(f"/markets/{T1}/orderbook")).json()["orderbook_fp"]

    def units(level: list[str]) -> tuple[int, int]:
        return round(float(level[0]) * 10_000), round(float(level[1]) * 100)

    assert [units(lv) for lv in reversed(book["yes_dollars"])] == bids
    assert [(10_000 - p, s) for p, s in map(units, reversed(book["no_dollars"]))] == asks


async def test_several_orderbooks_at_once(client: Client, sim: Sim) -> None:
    rest(sim, "alice", BookSide.BID, 2000, 1, ticker=T2)
    response = await client.http.get("/trade-api/v2/markets/orderbooks", params=[("tickers", T1), ("tickers", T2)])
    books = response.json()["orderbooks"]
    assert [b["ticker"] for b in books] == [T1, T2]
    assert books[1]["orderbook_fp"] == {"yes_dollars": [["0.2000", "1.00"]], "no_dollars": []}
    assert_error(await client.get("/markets/orderbooks"), 400, "missing_parameters")


async def test_trades_are_newest_first_and_paginated(client: Client, sim: Sim) -> None:
    rest(sim, "alice", BookSide.ASK, 5000, 15)
    for n in range(1, 6):
        sim.clock.advance(1)
        rest(sim, "bob", BookSide.BID, 5000, n)  # five trades of 1..5 contracts
    first = (await client.get("/markets/trades", limit=3)).json()
    assert [t["count_fp"] for t in first["trades"]] == ["5.00", "4.00", "3.00"] and first["cursor"]
    second = (await client.get("/markets/trades", limit=3, cursor=first["cursor"])).json()
    assert [t["count_fp"] for t in second["trades"]] == ["2.00", "1.00"] and not second["cursor"]
    trade = first["trades"][0]
    assert trade["ticker"] == T1 and trade["yes_price_dollars"] == "0.5000" and trade["no_price_dollars"] == "0.5000"
    assert (trade["taker_outcome_side"], trade["taker_book_side"], trade["taker_side"]) == ("yes", "bid", "yes")
    assert trade["is_block_trade"] is False and RFC3339.match(trade["created_time"])
    assert isinstance(trade["trade_id"], str)
    assert (await client.get("/markets/trades", ticker=T2)).json()["trades"] == []


async def test_events_list_and_get(client: Client) -> None:
    body = (await client.get("/events")).json()
    assert [e["event_ticker"] for e in body["events"]] == [EVENT, NEXT_EVENT] and body["cursor"] == ""
    event = body["events"][0]
    assert event["series_ticker"] == SERIES and event["mutually_exclusive"] is False
    assert event["available_on_brokers"] is False and event["settlement_sources"][0]["name"] == "CF Benchmarks"
    assert "markets" not in event
    nested = (await client.get("/events", with_nested_markets="true", status="open")).json()["events"]
    assert [e["event_ticker"] for e in nested] == [EVENT] and len(nested[0]["markets"]) == 3
    one = (await client.get(f"/events/{EVENT}")).json()
    assert one["event"]["event_ticker"] == EVENT and [m["ticker"] for m in one["markets"]] == [T1, T2, T3]
    assert_error(await client.get("/events/NOPE"), 404, "not_found")


async def test_series_list_and_get(client: Client, sim: Sim) -> None:
    rest(sim, "alice", BookSide.ASK, 5000, 2)
    rest(sim, "bob", BookSide.BID, 5000, 2)
    series = (await client.get("/series", limit=1, cursor="ignored")).json()["series"]
    assert [s["ticker"] for s in series] == [SERIES]
    one = (await client.get(f"/series/{SERIES}", include_volume="true")).json()["series"]
    assert one["fee_type"] == "quadratic" and isinstance(one["fee_multiplier"], int | float)
    assert one["volume_fp"] == "2.00" and one["tags"] == ["Bitcoin"]
    assert_error(await client.get("/series/NOPE"), 404, "not_found")


async def test_a_market_added_with_a_custom_grid_reports_its_ranges(client: Client, sim: Sim) -> None:
    sim.exchange.add_market("X-1", "X", "XS", TickGrid.deci_cent(), sim.clock.now_us(), CLOSE_US)
    market = (await client.get("/markets/X-1")).json()["market"]
    assert market["price_level_structure"] == "deci_cent" and market["price_ranges"][0]["step"] == "0.0010"
