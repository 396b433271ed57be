"""orderbook_delta (kalshi-api.md §6, §8): snapshot shapes, deltas, seq, and an exact rebuild of the book from
snapshot + deltas after thousands of random order operations."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import pytest

from mm.sim.exchange import NewOrder, SimApiError
from mm.sim.types import OrderStatus, SelfTradePrevention, TimeInForce
from tests.sim_ws.conftest import ASK, BID, T1, T2, T3, USERS, Client, Sim

Book = dict[str, dict[str, Decimal]]


def subscribe(tickers: list[str], use_yes_price: bool | None = None, cmd_id: int = 1) -> dict[str, Any]:
    params: dict[str, Any] = {"channels": ["orderbook_delta"], "market_tickers": tickers}
    if use_yes_price is not None:
        params["use_yes_price"] = use_yes_price
    return {"id": cmd_id, "cmd": "subscribe", "params": params}


def expected(sim: Sim, ticker: str, use_yes_price: bool) -> Book:
    """The engine's book as a client should hold it: YES bids, and NO bids at NO-leg (or YES-ask) prices."""
    bids, asks = sim.exchange.markets[ticker].engine.levels()

    def fmt(units: int) -> str:
        return f"{Decimal(units) / 10000:.4f}"

    return {
        "yes": {fmt(p): Decimal(n) / 100 for p, n in bids},
        "no": {fmt(p if use_yes_price else 10000 - p): Decimal(n) / 100 for p, n in asks},
    }


class BookBuilder:
    """A client-side book per market, from snapshots and deltas, checking seq on the way (§6, §8)."""

    def __init__(self) -> None:
        self.books: dict[str, Book] = {}
        self.seq: dict[int, int] = {}

    def apply(self, message: dict[str, Any]) -> None:
        sid, seq, msg = message["sid"], message["seq"], message["msg"]
        assert seq == self.seq.get(sid, 0) + 1, f"seq gap on sid {sid}: {self.seq.get(sid)} -> {seq}"
        self.seq[sid] = seq
        if message["type"] == "orderbook_snapshot":
            book: Book = {"yes": {}, "no": {}}
            for side in ("yes", "no"):
                levels = msg.get(f"{side}_dollars_fp")
                assert levels != [], "an empty side's key is omitted"
                for price, count in levels or []:
                    assert isinstance(price, str) and isinstance(count, str)
                    assert len(price.split(".")[1]) == 4 and len(count.split(".")[1]) == 2
                    book[side][price] = Decimal(count)
            self.books[msg["market_ticker"]] = book
        elif message["type"] == "orderbook_delta":
            assert msg["market_ticker"] in self.books, "delta before snapshot"
            level = self.books[msg["market_ticker"]][msg["side"]]
            price = msg["price_dollars"]
            assert len(price.split(".")[1]) == 4
            level[price] = level.get(price, Decimal(0)) + Decimal(msg["delta_fp"])
            if level[price] <= 0:
                assert level[price] == 0, "a level never goes negative"
                del level[price]
        else:
            raise AssertionError(f"unexpected {message}")

    async def drain(self, client: Client) -> int:
        got = await client.sync(timeout=30)
        for message in got:
            self.apply(message)
        return len(got)


async def test_snapshot_lists_levels_ascending_best_last_at_no_leg_prices(sim: Sim) -> None:
    for price, count in ((4000, 300), (4200, 150), (3900, 1)):
        sim.place("bob", T1, BID, price, count)
    for price, count in ((5500, 200), (5800, 1050)):
        sim.place("carol", T1, ASK, price, count)
    client = await sim.connect()
    got = await client.command(subscribe([T1]))
    snapshot = got[1]["msg"]
    assert snapshot["yes_dollars_fp"] == [["0.3900", "0.01"], ["0.4000", "3.00"], ["0.4200", "1.50"]]
    # YES asks 0.55 / 0.58 are NO bids at 0.45 / 0.42: ascending, best (0.45) last
    assert snapshot["no_dollars_fp"] == [["0.4200", "10.50"], ["0.4500", "2.00"]]


async def test_use_yes_price_quotes_the_no_side_at_yes_ask_prices(sim: Sim) -> None:
    sim.place("carol", T1, ASK, 5500, 200)
    sim.place("carol", T1, ASK, 5800, 1050)
    client = await sim.connect()
    got = await client.command(subscribe([T1], use_yes_price=True))
    assert "yes_dollars_fp" not in got[1]["msg"]  # empty side omitted
    # NO levels at YES-ask prices, descending (best ask last)
    assert got[1]["msg"]["no_dollars_fp"] == [["0.5800", "10.50"], ["0.5500", "2.00"]]
    sim.place("bob", T1, BID, 5500, 50)  # takes 0.5 of the 0.55 ask
    (delta,) = await client.sync()
    assert delta["msg"]["side"] == "no" and delta["msg"]["price_dollars"] == "0.5500"
    assert delta["msg"]["delta_fp"] == "-0.50"


async def test_deltas_follow_orders_with_one_seq_per_sid_across_markets(sim: Sim) -> None:
    client = await sim.connect()
    got = await client.command(subscribe([T1, T2]))
    assert [(m["type"], m.get("seq")) for m in got] == [
        ("subscribed", None),
        ("orderbook_snapshot", 1),
        ("orderbook_snapshot", 2),
    ]
    resting = sim.place("bob", T1, BID, 4000, 1000, client_order_id="b-1")
    sim.place("carol", T2, ASK, 6100, 250)
    sim.place("alice", T1, ASK, 3900, 400)  # crosses bob's bid: fills 4 at 0.40
    sim.exchange.cancel_order("bob", resting.order_id)
    sim.state.publish()
    deltas = await client.sync()
    summary = [
        (m["seq"], m["msg"]["market_ticker"], m["msg"]["side"], m["msg"]["price_dollars"], m["msg"]["delta_fp"])
        for m in deltas
    ]
    assert summary == [
        (3, T1, "yes", "0.4000", "10.00"),
        (4, T2, "no", "0.3900", "2.50"),
        (5, T1, "yes", "0.4000", "-4.00"),
        (6, T1, "yes", "0.4000", "-6.00"),
    ]
    delta = deltas[0]
    assert delta["type"] == "orderbook_delta" and delta["sid"] == 1
    assert set(delta["msg"]) == {"market_ticker", "market_id", "price_dollars", "delta_fp", "side", "ts", "ts_ms"}
    now_us = sim.state.clock.now_us()
    assert delta["msg"]["ts_ms"] == now_us // 1000
    assert delta["msg"]["ts"].startswith("2026-08-13T19:40:01")
    # a second orderbook subscriber on another connection has its own counter
    other = await sim.connect("bob")
    got = await other.command(subscribe([T2]))
    assert got[1]["seq"] == 1


def random_operation(sim: Sim, rng: random.Random, tickers: list[str]) -> None:
    exchange = sim.exchange
    ticker = rng.choice(tickers)
    engine = exchange.markets[ticker].engine
    user = rng.choice(USERS)
    roll = rng.random()
    resting = engine.resting()
    try:
        if roll < 0.45 or not resting:  # rest an order near the middle
            side = rng.choice((BID, ASK))
            price = rng.randint(35, 55) * 100 if side is BID else rng.randint(45, 65) * 100
            exchange.create_order(
                user, NewOrder(ticker, side, price, rng.randint(1, 2500), stp=SelfTradePrevention.MAKER)
            )
        elif roll < 0.70:  # cancel
            order = rng.choice(resting)
            exchange.cancel_order(order.user_id, order.order_id)
        elif roll < 0.85:  # cross: an aggressive IOC or GTC that walks the book
            side = rng.choice((BID, ASK))
            price = rng.randint(55, 70) * 100 if side is BID else rng.randint(30, 45) * 100
            tif = rng.choice((TimeInForce.IMMEDIATE_OR_CANCEL, TimeInForce.GOOD_TILL_CANCELED))
            exchange.create_order(
                user,
                NewOrder(ticker, side, price, rng.randint(1, 6000), time_in_force=tif, stp=SelfTradePrevention.MAKER),
            )
        elif roll < 0.93:  # decrease
            order = rng.choice(resting)
            exchange.decrease_order(order.user_id, order.order_id, reduce_by=rng.randint(1, order.remaining_count))
        else:  # amend: new price and total count
            order = rng.choice(resting)
            if order.status is OrderStatus.RESTING:
                exchange.amend_order(
                    order.user_id,
                    order.order_id,
                    price=rng.randint(35, 65) * 100,
                    total_count=order.fill_count + rng.randint(1, 2500),
                )
    except SimApiError:
        pass
    sim.state.publish()


@pytest.mark.parametrize("use_yes_price", [False, True])
async def test_the_book_rebuilt_from_snapshot_and_deltas_matches_the_engine_exactly(
    sim: Sim, use_yes_price: bool
) -> None:
    rng = random.Random(20260813 + use_yes_price)
    tickers = [T1, T2, T3]
    for _ in range(200):  # the snapshots start from a non-trivial book
        random_operation(sim, rng, tickers)
    client = await sim.connect()
    flag = True if use_yes_price else None  # the default (absent) means NO-leg prices
    builder = BookBuilder()
    await client.send(subscribe([T1, T2], use_yes_price=flag))
    assert (await client.recv())["type"] == "subscribed"
    await builder.drain(client)
    checked = 0
    for step in range(1, 3001):
        random_operation(sim, rng, tickers)
        if step % 500 == 0:
            checked += await builder.drain(client)
            for ticker in (T1, T2):
                assert builder.books[ticker] == expected(sim, ticker, use_yes_price), f"{ticker} after {step} ops"
        if step == 1500:  # add a market mid-stream: its snapshot joins the same seq
            await client.send(
                {
                    "id": 2,
                    "cmd": "update_subscription",
                    "params": {"sid": 1, "market_ticker": T3, "action": "add_markets"},
                }
            )
            ack = await client.recv()
            assert ack["type"] == "ok"
            builder.seq[1] = ack["seq"]
    checked += await builder.drain(client)
    for ticker in tickers:
        assert builder.books[ticker] == expected(sim, ticker, use_yes_price)
    assert checked > 3000  # thousands of deltas were applied
    # a get_snapshot now equals the rebuilt book
    await client.send(
        {
            "id": 3,
            "cmd": "update_subscription",
            "params": {"sid": 1, "market_tickers": tickers, "action": "get_snapshot"},
        }
    )
    fresh = BookBuilder()
    fresh.seq = dict(builder.seq)
    for _ in tickers:
        message = await client.recv()
        assert message["id"] == 3
        fresh.apply(message)
    assert fresh.books == builder.books
