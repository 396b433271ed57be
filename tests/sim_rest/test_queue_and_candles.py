"""Queue positions (authenticated) and candlesticks (public) over REST (kalshi-api.md §4–5)."""

from __future__ import annotations

from typing import Any

from tests.sim_rest.conftest import EVENT, OPEN_US, SERIES, T0_US, T1, T2, T3, Client, Sim, assert_error

SECOND = 1_000_000
OPEN_S = OPEN_US // SECOND
T0_S = T0_US // SECOND  # 20:01:00Z, a minute boundary


async def order_id(client: Client, user: str, ticker: str, side: str, price: str, count: str) -> str:
    response = await client.create(user, ticker, side, price, count)
    assert response.status_code == 201, response.text
    oid: str = response.json()["order_id"]
    return oid


# --- queue positions ----------------------------------------------------------------------------------------


async def queue(client: Client, user: str, oid: str) -> Any:
    return await client.get(f"/portfolio/orders/{oid}/queue_position", user)


async def test_queue_position_counts_the_contracts_ahead_at_the_price(client: Client) -> None:
    first = await order_id(client, "alice", T1, "bid", "0.4000", "3.00")
    second = await order_id(client, "bob", T1, "bid", "0.4000", "5.00")
    third = await order_id(client, "alice", T1, "bid", "0.4000", "2.00")
    await order_id(client, "bob", T1, "bid", "0.3900", "7.00")  # another level: never ahead
    for user, oid, expected in [("alice", first, "0.00"), ("bob", second, "3.00"), ("alice", third, "8.00")]:
        response = await queue(client, user, oid)
        assert response.status_code == 200, response.text
        assert response.json() == {"queue_position_fp": expected}

    assert (await client.delete(f"/portfolio/events/orders/{first}", "alice")).status_code == 200
    assert (await queue(client, "bob", second)).json() == {"queue_position_fp": "0.00"}
    assert (await queue(client, "alice", third)).json() == {"queue_position_fp": "5.00"}


async def test_queue_position_of_an_unknown_foreign_or_finished_order_is_404(client: Client) -> None:
    oid = await order_id(client, "alice", T1, "bid", "0.4000", "1.00")
    assert_error(await queue(client, "alice", "order-nope"), 404, "not_found")
    assert_error(await queue(client, "bob", oid), 404, "not_found")  # another user's order
    await client.delete(f"/portfolio/events/orders/{oid}", "alice")
    assert_error(await queue(client, "alice", oid), 404, "not_found")  # no longer resting
    assert (await client.get(f"/portfolio/orders/{oid}/queue_position")).status_code == 401  # unsigned


async def test_queue_positions_lists_the_users_resting_orders_by_market_or_event(client: Client) -> None:
    await order_id(client, "bob", T1, "bid", "0.4000", "4.00")
    a1 = await order_id(client, "alice", T1, "bid", "0.4000", "1.50")
    a2 = await order_id(client, "alice", T2, "ask", "0.7000", "1.00")
    gone = await order_id(client, "alice", T2, "bid", "0.1000", "1.00")
    await client.delete(f"/portfolio/events/orders/{gone}", "alice")
    both = [
        {"order_id": a1, "market_ticker": T1, "queue_position_fp": "4.00"},
        {"order_id": a2, "market_ticker": T2, "queue_position_fp": "0.00"},
    ]
    path = "/portfolio/orders/queue_positions"
    response = await client.get(path, "alice", market_tickers=f"{T1},{T2}")
    assert response.status_code == 200, response.text
    assert response.json() == {"queue_positions": both}
    assert (await client.get(path, "alice", event_ticker=EVENT)).json() == {"queue_positions": both}
    assert (await client.get(path, "alice", market_tickers=T2)).json() == {"queue_positions": both[1:]}
    assert (await client.get(path, "alice", market_tickers=T3)).json() == {"queue_positions": []}
    assert (await client.get(path, "carol")).json() == {"queue_positions": []}
    assert_error(await client.get(path, "alice", subaccount="1"), 400, "invalid_parameters")


# --- candlesticks -------------------------------------------------------------------------------------------


async def trade(client: Client, price: str, count: str) -> None:
    """alice rests an ask at ``price``; bob lifts all of it (a trade at ``price``, bob long, alice short)."""
    await order_id(client, "alice", T1, "ask", price, count)
    response = await client.create("bob", T1, "bid", price, count)
    assert response.json()["fill_count"] == count, response.text


async def trading_session(client: Client, sim: Sim) -> None:
    """Trades at 20:01:00 (2 @ .50), 20:01:10 (3 @ .55), 20:01:30 (1 @ .45), 20:02:10 (4 @ .52); a bid .40
    rests from 20:02:05; asks .60 then .58 rest from 20:02:20 / 20:02:25; now is 20:02:25."""
    await trade(client, "0.5000", "2.00")
    sim.clock.advance_us(10 * SECOND)
    await trade(client, "0.5500", "3.00")
    sim.clock.advance_us(20 * SECOND)
    await trade(client, "0.4500", "1.00")
    sim.clock.advance_us(35 * SECOND)
    await order_id(client, "carol", T1, "bid", "0.4000", "1.00")
    sim.clock.advance_us(5 * SECOND)
    await trade(client, "0.5200", "4.00")
    sim.clock.advance_us(10 * SECOND)
    await order_id(client, "carol", T1, "ask", "0.6000", "1.00")
    sim.clock.advance_us(5 * SECOND)
    await order_id(client, "carol", T1, "ask", "0.5800", "1.00")


NULL_OHLC = {"open_dollars": None, "low_dollars": None, "high_dollars": None, "close_dollars": None}


def ohlc(o: str, low: str, high: str, c: str) -> dict[str, str]:
    return {"open_dollars": o, "low_dollars": low, "high_dollars": high, "close_dollars": c}


def price(o: str, low: str, high: str, c: str, mean: str, previous: str | None) -> dict[str, str | None]:
    extra = {"mean_dollars": mean, "previous_dollars": previous, "min_dollars": low, "max_dollars": high}
    return {**ohlc(o, low, high, c), **extra}


async def test_minute_candles_bucket_trades_by_their_inclusive_period_end(client: Client, sim: Sim) -> None:
    await trading_session(client, sim)
    path = f"/series/{SERIES}/markets/{T1}/candlesticks"
    response = await client.get(path, start_ts=OPEN_S, end_ts=T0_S + 600, period_interval=1)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["ticker"] == T1
    candles = body["candlesticks"]
    # periods ending 20:00 (the open), 20:01, 20:02 and 20:03 (in progress); none after "now"
    assert [c["end_period_ts"] for c in candles] == [OPEN_S, OPEN_S + 60, OPEN_S + 120, OPEN_S + 180]
    empty, first, second, third = candles
    assert empty == {
        "end_period_ts": OPEN_S,
        "yes_bid": NULL_OHLC,
        "yes_ask": NULL_OHLC,
        "price": {**NULL_OHLC, **dict.fromkeys(("mean_dollars", "previous_dollars", "min_dollars", "max_dollars"))},
        "volume_fp": "0.00",
        "open_interest_fp": "0.00",
    }
    # the trade exactly at 20:01:00 closes the period ending 20:01:00
    assert first["price"] == price("0.5000", "0.5000", "0.5000", "0.5000", "0.5000", None)
    assert (first["volume_fp"], first["open_interest_fp"]) == ("2.00", "2.00")
    # (3 × .55 + 1 × .45) / 4 = .525
    assert second["price"] == price("0.5500", "0.4500", "0.5500", "0.4500", "0.5250", "0.5000")
    assert (second["volume_fp"], second["open_interest_fp"]) == ("4.00", "6.00")
    assert second["yes_bid"] == NULL_OHLC and second["yes_ask"] == NULL_OHLC  # every ask was lifted at once
    assert third["price"] == price("0.5200", "0.5200", "0.5200", "0.5200", "0.5200", "0.4500")
    assert (third["volume_fp"], third["open_interest_fp"]) == ("4.00", "10.00")
    assert third["yes_bid"] == ohlc("0.4000", "0.4000", "0.4000", "0.4000")
    assert third["yes_ask"] == ohlc("0.6000", "0.5800", "0.6000", "0.5800")

    # start_ts / end_ts select by end_period_ts, inclusive
    narrow = await client.get(path, start_ts=OPEN_S + 61, end_ts=OPEN_S + 120, period_interval=1)
    assert [c["end_period_ts"] for c in narrow.json()["candlesticks"]] == [OPEN_S + 120]


async def test_hourly_candles_and_the_batch_endpoint(client: Client, sim: Sim) -> None:
    await trading_session(client, sim)
    params = {"start_ts": OPEN_S, "end_ts": OPEN_S + 7200, "period_interval": 60}
    response = await client.get("/markets/candlesticks", market_tickers=f"{T1},{T2}", **params)
    assert response.status_code == 200, response.text
    markets = response.json()["markets"]
    assert [m["market_ticker"] for m in markets] == [T1, T2]
    hours = markets[0]["candlesticks"]
    assert [c["end_period_ts"] for c in hours] == [OPEN_S, OPEN_S + 3600]
    hour = hours[1]
    assert hour["price"] == price("0.5000", "0.4500", "0.5500", "0.5200", "0.5180", None)  # 5.18 / 10
    assert (hour["volume_fp"], hour["open_interest_fp"]) == ("10.00", "10.00")
    assert hour["yes_bid"] == ohlc("0.4000", "0.4000", "0.4000", "0.4000")
    # an ask lifted at the instant it was placed never shows: the history keeps each instant's final book
    assert hour["yes_ask"] == ohlc("0.6000", "0.5800", "0.6000", "0.5800")
    quiet = markets[1]["candlesticks"]
    assert [c["volume_fp"] for c in quiet] == ["0.00", "0.00"] and quiet[1]["price"]["close_dollars"] is None


async def test_candlestick_parameters_are_validated(client: Client) -> None:
    path = f"/series/{SERIES}/markets/{T1}/candlesticks"
    ok = {"start_ts": OPEN_S, "end_ts": OPEN_S + 60, "period_interval": 1}
    assert (await client.get(path, **ok)).status_code == 200
    assert_error(await client.get(path, **{**ok, "period_interval": 5}), 400, "invalid_parameters")
    assert_error(await client.get(path, **{**ok, "end_ts": OPEN_S - 1}), 400, "invalid_parameters")
    assert_error(await client.get(path, **{**ok, "end_ts": OPEN_S + 60 * 6000}), 400, "invalid_parameters")
    assert_error(await client.get(path, start_ts=OPEN_S, period_interval=1), 400, "missing_parameters")
    assert_error(await client.get(f"/series/KXETHD/markets/{T1}/candlesticks", **ok), 404, "not_found")
    assert_error(await client.get(f"/series/{SERIES}/markets/NOPE/candlesticks", **ok), 404, "not_found")
    assert_error(await client.get("/markets/candlesticks", **ok), 400, "missing_parameters")
