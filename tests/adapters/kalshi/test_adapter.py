"""KalshiAdapter against the in-process simulator over real loopback (crowd off, waits on conditions)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from mm.adapters.errors import ExchangeError, OrderNotFoundError, OrderPriceError
from mm.adapters.kalshi.adapter import KalshiAdapter, market_info_from_wire, normalise_status
from mm.adapters.kalshi.book_feed import levels_of
from mm.domain.events import ExchangeEvent, OrderUpdate
from mm.domain.orders import Order, OrderStatus
from mm.domain.price import Price, Quantity
from mm.domain.sides import OrderSide
from mm.sim.server import Simulator
from tests.adapters.kalshi.support import active_ticker, request, wait_until


async def test_capabilities_and_list_markets(sim: Simulator, me: KalshiAdapter) -> None:
    caps = me.capabilities
    assert caps.amend and caps.decrease and caps.unified_book and caps.fractional_counts and caps.tick_grids
    assert (caps.batch_create_limit, caps.batch_cancel_limit) == (10, 50)
    assert caps.order_groups and caps.client_order_ids and caps.post_only and caps.self_trade_prevention

    markets = await me.list_markets()
    by_id = {m.market_id: m for m in markets}
    ticker = active_ticker(sim)
    info = by_id[ticker]
    live = sim.state.exchange.markets[ticker]
    assert info.status == "active"
    assert info.grid == live.grid
    assert info.event_id == live.event_ticker
    assert info.series_id == live.series_ticker
    assert (info.open_time_us, info.close_time_us) == (live.open_us, live.close_us)
    assert info.best_bid is None and info.best_ask is None  # crowd off: an empty book

    series = await me.list_markets(series=[live.series_ticker], status="active")
    assert ticker in {m.market_id for m in series}
    assert all(m.series_id == live.series_ticker and m.status == "active" for m in series)
    assert await me.list_markets(series=["NOPE"]) == []
    assert (await me.get_market(ticker)).market_id == ticker


async def test_place_get_amend_cancel(sim: Simulator, me: KalshiAdapter) -> None:
    ticker = active_ticker(sim)
    placed = await me.place_order(request(ticker, "c-1", "0.4000", 10))
    assert placed.status is OrderStatus.OPEN and placed.exchange_order_id
    assert placed.exchange_order_id in sim.state.exchange.orders

    open_orders = await me.get_open_orders(ticker)
    assert [o.exchange_order_id for o in open_orders] == [placed.exchange_order_id]
    assert open_orders[0].request.price == Price.from_dollars("0.4000")
    found = await me.get_order_by_client_id("c-1", ticker)
    assert found is not None and found.exchange_order_id == placed.exchange_order_id
    assert await me.get_order_by_client_id("nope", ticker) is None
    info = await me.get_market(ticker)
    assert info.best_bid == Price.from_dollars("0.4000")

    assert placed.exchange_order_id is not None
    amended = await me.amend_order(
        placed.exchange_order_id, price=Price.from_dollars("0.4100"), quantity=Quantity.contracts(7)
    )
    assert amended.request.price == Price.from_dollars("0.4100")
    assert amended.request.quantity == Quantity.contracts(7)
    assert amended.status is OrderStatus.OPEN

    await me.cancel_order(placed.exchange_order_id)
    assert await me.get_open_orders(ticker) == []
    with pytest.raises(OrderNotFoundError):
        await me.cancel_order("no-such-order")


def _terms(order: Order) -> tuple[object, ...]:
    """What an order read back from the venue must equal (its times are the venue's clock, an ack's are ours)."""
    return (order.request, order.status, order.filled, order.exchange_order_id)


@pytest.fixture
def look_ups(me: KalshiAdapter, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The order ids ``me`` looks up one by one (``GET /portfolio/orders/{id}``, a Read token each)."""
    seen: list[str] = []
    real = me.rest.order

    async def counted(order_id: str) -> dict[str, Any]:
        seen.append(order_id)
        return await real(order_id)

    monkeypatch.setattr(me.rest, "order", counted)
    return seen


async def test_an_amend_of_an_order_placed_here_is_one_write_and_what_the_venue_holds(
    sim: Simulator, me: KalshiAdapter, bob: KalshiAdapter, look_ups: list[str]
) -> None:
    ticker = active_ticker(sim)
    mine = await me.place_order(request(ticker, "k-1", "0.4000", 10))
    assert mine.exchange_order_id is not None
    await bob.place_order(request(ticker, "b-1", "0.4000", 3, OrderSide.SELL, post_only=False))

    amended = await me.amend_order(
        mine.exchange_order_id, price=Price.from_dollars("0.3800"), quantity=Quantity.contracts(12)
    )
    assert look_ups == []  # the ticker and side from the create's copy, the counts from the ack
    venue = await me.get_order_by_client_id("k-1", ticker)
    assert venue is not None and _terms(amended) == _terms(venue)
    assert amended.status is OrderStatus.PARTIALLY_FILLED and amended.filled == Quantity.contracts(3)
    assert amended.remaining == Quantity.contracts(9)

    # not post-only, amended through the best offer: it fills whole, and the ack says so
    plain = await me.place_order(request(ticker, "k-2", "0.2000", 2, post_only=False))
    assert plain.exchange_order_id is not None
    await bob.place_order(request(ticker, "b-2", "0.4500", 5, OrderSide.SELL))
    crossed = await me.amend_order(
        plain.exchange_order_id, price=Price.from_dollars("0.4500"), quantity=plain.request.quantity
    )
    assert look_ups == []
    assert crossed.status is OrderStatus.FILLED and crossed.filled == Quantity.contracts(2)
    venue = await me.get_order_by_client_id("k-2", ticker)
    assert venue is not None and _terms(crossed) == _terms(venue)


async def test_an_amend_of_an_order_not_seen_here_or_with_a_thin_ack_looks_it_up(
    sim: Simulator, me: KalshiAdapter, look_ups: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ticker = active_ticker(sim)
    # placed past the adapter (as by an earlier run): its ticker and side are read before the amend
    ack = await me.rest.create_order(
        {"ticker": ticker, "side": "bid", "price": "0.3000", "count": "4.00", "client_order_id": "x-1"}
    )
    order_id = str(ack["order_id"])
    amended = await me.amend_order(order_id, price=Price.from_dollars("0.3100"), quantity=Quantity.contracts(5))
    assert look_ups == [order_id]
    assert amended.request.price == Price.from_dollars("0.3100") and amended.request.quantity == Quantity.contracts(5)

    # the ack's counts are optional on the wire: without them the result is read back
    real = me.rest.amend_order

    async def thin(order_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return {**await real(order_id, body), "fill_count": None, "remaining_count": None}

    monkeypatch.setattr(me.rest, "amend_order", thin)
    again = await me.amend_order(order_id, price=Price.from_dollars("0.3200"), quantity=Quantity.contracts(5))
    assert look_ups == [order_id, order_id]  # the copy the first amend left: no look-up before, one after
    venue = await me.get_order_by_client_id("x-1", ticker)
    assert venue is not None and _terms(again) == _terms(venue) and again.status is OrderStatus.OPEN


async def test_orders_read_back_keep_the_terms_the_venue_does_not_report(sim: Simulator, me: KalshiAdapter) -> None:
    """The simulator's Order object and ``user_order`` carry no ``post_only``: every read-back of an order we placed
    (the amend's answer, the open orders, a look-up, the stream) keeps the terms we sent instead of a default —
    the node's tracker stores these copies over its own."""
    ticker = active_ticker(sim)
    seen: list[OrderUpdate] = []

    async def keep(event: ExchangeEvent) -> None:
        if isinstance(event, OrderUpdate):
            seen.append(event)

    me.on_event(keep)
    maker = await me.place_order(request(ticker, "t-1", "0.4000", 5))  # post-only (the default)
    plain = await me.place_order(request(ticker, "t-2", "0.3000", 5, post_only=False))
    assert maker.exchange_order_id and plain.exchange_order_id

    amended = await me.amend_order(
        maker.exchange_order_id, price=Price.from_dollars("0.4100"), quantity=maker.request.quantity
    )
    assert amended.request.price == Price.from_dollars("0.4100") and amended.request.post_only
    listed = {o.client_order_id: o.request.post_only for o in await me.get_open_orders(ticker)}
    assert listed == {"t-1": True, "t-2": False}
    found = await me.get_order_by_client_id("t-2", ticker)
    assert found is not None and not found.request.post_only
    await wait_until(lambda: {u.order.client_order_id for u in seen} >= {"t-1", "t-2"})
    assert all(u.order.request.post_only is (u.order.client_order_id == "t-1") for u in seen)

    await me.cancel_orders([maker.exchange_order_id, plain.exchange_order_id])
    await wait_until(lambda: sum(not u.order.status.is_live for u in seen) == 2)
    assert me._sent_terms == {}  # an order seen over is forgotten


async def test_crossing_orders_fill(sim: Simulator, me: KalshiAdapter, bob: KalshiAdapter) -> None:
    ticker = active_ticker(sim)
    balance_before = await me.get_balance()
    mine = await me.place_order(request(ticker, "m-1", "0.4000", 10))
    taken = await bob.place_order(request(ticker, "b-1", "0.4000", 4, OrderSide.SELL, post_only=False))
    assert taken.status is OrderStatus.FILLED and taken.filled == Quantity.contracts(4)

    fills = await me.get_fills()
    assert len(fills) == 1
    fill = fills[0]
    assert (fill.order_id, fill.market_id, fill.quantity) == (mine.exchange_order_id, ticker, Quantity.contracts(4))
    assert fill.price == Price.from_dollars("0.4000") and fill.order_side is OrderSide.BUY and not fill.is_taker
    assert await me.get_fills(since_us=fill.timestamp_us + 1) == []
    assert await me.get_fills(market_id=ticker, since_us=fill.timestamp_us) == fills

    positions = {p.market_id: p for p in await me.get_positions()}
    assert positions[ticker].yes == Quantity.contracts(4)
    bob_positions = {p.market_id: p for p in await bob.get_positions()}
    assert bob_positions[ticker].no == Quantity.contracts(4)
    balance = await me.get_balance()
    assert balance.available < balance_before.available
    still = await me.get_order_by_client_id("m-1")
    assert still is not None and still.status is OrderStatus.PARTIALLY_FILLED and still.filled == Quantity.contracts(4)


async def test_batch_place_and_cancel(sim: Simulator, me: KalshiAdapter) -> None:
    ticker = active_ticker(sim)
    results = await me.place_orders(
        [
            request(ticker, "b-1", "0.3000", 1),
            request(ticker, "b-1", "0.3100", 1),  # duplicate client order id: refused, the others placed
            request(ticker, "b-3", "0.3200", 1),
        ]
    )
    assert isinstance(results[0], Order) and isinstance(results[2], Order)
    assert isinstance(results[1], ExchangeError)
    ids = [r.exchange_order_id for r in results if isinstance(r, Order)]
    assert len(await me.get_open_orders(ticker)) == 2
    assert all(i is not None for i in ids)
    cancelled = await me.cancel_orders([i for i in ids if i is not None] + ["missing"])
    assert cancelled[:2] == [None, None]
    assert isinstance(cancelled[2], ExchangeError)
    assert await me.get_open_orders(ticker) == []


async def test_off_grid_price_is_an_order_price_error(sim: Simulator, me: KalshiAdapter) -> None:
    ticker = active_ticker(sim)
    grid = sim.state.exchange.markets[ticker].grid
    off = next(u for u in range(1, 10_000) if not grid.contains(u))
    with pytest.raises(OrderPriceError):
        await me.place_order(request(ticker, "bad", str(Decimal(off) / 10_000), 1))
    assert sim.state.exchange.orders == {} or all(
        o.client_order_id != "bad" for o in sim.state.exchange.orders.values()
    )


async def test_subscribe_market_book_matches_engine(sim: Simulator, me: KalshiAdapter, bob: KalshiAdapter) -> None:
    ticker = active_ticker(sim)
    user_messages: list[dict[str, Any]] = []

    async def record(message: dict[str, Any]) -> None:
        user_messages.append(message)

    await me.on_raw_message(record)
    await me.subscribe_market(ticker)
    assert me.subscribed_markets == [ticker]

    def expected() -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        bids, asks = sim.state.exchange.markets[ticker].engine.levels()
        return sorted(bids), sorted((10000 - p, n) for p, n in asks)

    def matches() -> bool:
        book = me.book(ticker)
        return book is not None and not me.is_stale(ticker) and levels_of(book) == expected()

    await wait_until(matches)
    await me.place_order(request(ticker, "s-1", "0.4500", 3))
    await bob.place_order(request(ticker, "s-2", "0.5500", 2, OrderSide.SELL))
    await wait_until(lambda: matches() and expected() != ([], []))
    await bob.place_order(request(ticker, "s-3", "0.4500", 1, OrderSide.SELL, post_only=False))
    await wait_until(matches)
    await wait_until(lambda: any(m.get("type") == "fill" for m in user_messages))
    await me.unsubscribe_market(ticker)
    assert me.subscribed_markets == []


def test_market_info_from_wire_and_statuses() -> None:
    info = market_info_from_wire(
        {
            "ticker": "S-E-T1",
            "event_ticker": "S-E",
            "status": "open",
            "open_time": "2026-08-13T20:00:00Z",
            "close_time": "2026-08-13T21:00:00Z",
            "price_ranges": [{"start": "0.0000", "end": "1.0000", "step": "0.0100"}],
            "yes_bid_dollars": "0.4200",
            "yes_ask_dollars": "1.0000",
            "volume_24h_fp": "12.00",
            "floor_strike": 73249.99,
        }
    )
    assert (info.series_id, info.status, info.strike) == ("S", "active", "73249.99")
    assert info.best_bid == Price.from_dollars("0.4200") and info.best_ask is None
    assert info.volume_24h == Quantity.contracts(12) and info.open_interest is None
    assert [normalise_status(s) for s in ("unopened", "finalized", "closed", "determined")] == [
        "initialized",
        "settled",
        "closed",
        "determined",
    ]
