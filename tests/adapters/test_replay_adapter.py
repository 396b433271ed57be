"""The replay adapter (FR-902): the whole ExchangeAdapter interface, answered from recorded records."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest

from mm.adapters.base import ExchangeAdapter, MarketInfo
from mm.adapters.errors import (
    ExchangeError,
    ExchangeUnavailableError,
    InsufficientBalanceError,
    OrderNotFoundError,
    RateLimitedError,
)
from mm.adapters.replay import ReplayExchangeAdapter, error_from_record, market_info_from_facts
from mm.clock import SimulatedClock
from mm.domain.events import BookState, BookUpdated, ExchangeEvent, FillEvent, OrderUpdate, PublicTrade
from mm.domain.orders import Order, OrderRequest, OrderStatus
from mm.domain.price import Price, Quantity
from mm.domain.sides import OrderSide, Side
from mm.recording.format import SessionRecord

T0 = 1_786_653_000_000_000
MARKET = "KXBTCD-26AUG1317-T94749.99"
FACTS = {
    "event_id": "KXBTCD-26AUG1317",
    "series_id": "KXBTCD",
    "status": "active",
    "close_time_us": T0 + 10**9,
    "open_time_us": T0 - 10**9,
    "grid": [[0, 10000, 100]],
    "strike": "94749.99",
}


def rec(seq: int, type_: str, data: dict[str, Any], ts: int = T0) -> SessionRecord:
    return SessionRecord(seq, ts + seq, type_, MARKET, data)


class ScriptedFeed:
    """A recording's answers in order: each call takes the first record it accepts."""

    def __init__(self, records: list[SessionRecord]) -> None:
        self.records = records
        self.calls: list[tuple[str, str]] = []

    async def answer(self, call: str, key: str, accepts: Callable[[SessionRecord], bool]) -> SessionRecord | None:
        self.calls.append((call, key))
        for i, record in enumerate(self.records):
            if accepts(record):
                return self.records.pop(i)
        return None


def request(cid: str = "mm:h:1:yb:0", price: int = 4800) -> OrderRequest:
    return OrderRequest(MARKET, Side.YES, OrderSide.BUY, Price(price), Quantity(500), cid)


def adapter(feed: ScriptedFeed | None = None) -> tuple[ReplayExchangeAdapter, list[ExchangeEvent]]:
    venue = ReplayExchangeAdapter(SimulatedClock(T0), feed=feed)
    venue.set_market(market_info_from_facts(MARKET, FACTS))
    events: list[ExchangeEvent] = []

    async def keep(event: ExchangeEvent) -> None:
        events.append(event)

    venue.on_event(keep)
    return venue, events


def test_it_implements_the_whole_interface() -> None:
    assert not inspect.isabstract(ReplayExchangeAdapter)
    abstract = {n for n, m in inspect.getmembers(ExchangeAdapter) if getattr(m, "__isabstractmethod__", False)}
    optional = {"get_orderbook", "amend_order", "decrease_order", "book", "is_stale", "place_orders", "cancel_orders"}
    assert (abstract | optional) <= set(vars(ReplayExchangeAdapter))


async def test_market_reads_come_from_the_recorded_facts() -> None:
    venue, _ = adapter()
    info = await venue.get_market(MARKET)
    assert isinstance(info, MarketInfo) and info.close_time_us == T0 + 10**9 and info.grid.contains(4800)
    assert [m.market_id for m in await venue.list_markets(series=["KXBTCD"], status="active")] == [MARKET]
    assert await venue.list_markets(status="closed") == []
    with pytest.raises(ExchangeError, match="not in the recording"):
        await venue.get_market("OTHER")
    paper = ReplayExchangeAdapter(SimulatedClock(T0), execution="paper", market_data=venue)
    assert (await paper.get_market(MARKET)) == info and paper.capabilities.batch_create_limit == 20


async def test_the_book_is_rebuilt_from_records_at_the_venue_timestamps() -> None:
    venue, events = adapter()
    assert venue.book(MARKET) is None and venue.is_stale(MARKET)
    snapshot = {"yes_bids": [[4500, 5000]], "no_bids": [[4500, 5000]], "grid": [[0, 10000, 100]], "book_ts_us": T0 - 7}
    await venue.apply_book(rec(1, "book_snapshot", snapshot))
    delta = {
        "side": "yes",
        "price_units": 4800,
        "size_units": 500,
        "delta_units": 500,
        "action": "add",
        "book_ts_us": T0 - 3,
    }
    await venue.apply_book(rec(2, "book_delta", delta))
    book = venue.book(MARKET)
    assert book is not None and book.best_yes_bid == 4800 and book.last_update_us == T0 - 3
    assert not venue.is_stale(MARKET)
    await venue.apply_book_state(rec(3, "book_state", {"stale": True, "reason": "seq gap"}))
    assert venue.is_stale(MARKET)
    await venue.apply_trade(
        rec(
            4,
            "trade",
            {"trade_id": "t1", "price_units": 4800, "size_units": 100, "taker_side": "sell", "venue_ts_us": T0},
        )
    )
    assert [type(e) for e in events] == [BookUpdated, BookUpdated, BookState, PublicTrade]
    copy = await venue.get_orderbook(MARKET)
    assert copy is not book and copy.best_yes_bid == 4800


async def test_recorded_fills_and_order_updates_are_delivered_as_domain_events() -> None:
    venue, events = adapter(
        ScriptedFeed(
            [rec(1, "order_ack", {"client_order_id": "mm:h:1:yb:0", "exchange_order_id": "o-1", "status": "open"})]
        )
    )
    placed = await venue.place_order(request())
    assert placed.exchange_order_id == "o-1" and placed.status is OrderStatus.OPEN
    update = {
        "client_order_id": "mm:h:1:yb:0",
        "exchange_order_id": "o-1",
        "status": "partially_filled",
        "price_units": 4800,
        "size_units": 500,
        "filled_units": 200,
        "venue_ts_us": T0 + 9,
    }
    await venue.apply_order_update(rec(2, "order_update", update))  # an older record: the side comes from the ack
    fill = {
        "fill_id": "f-1",
        "order_id": "o-1",
        "client_order_id": "mm:h:1:yb:0",
        "side": "yes",
        "order_side": "buy",
        "price_units": 4800,
        "size_units": 200,
        "remaining_units": 300,
        "fee": "0.0000",
        "is_taker": False,
        "post_position_units": 200,
        "venue_ts_us": T0 + 8,
    }
    await venue.apply_fill(rec(3, "fill", fill))
    order_event, fill_event = events
    assert isinstance(order_event, OrderUpdate) and order_event.order.filled == Quantity(200)
    assert order_event.order.request.order_side is OrderSide.BUY and order_event.timestamp_us == T0 + 9
    assert isinstance(fill_event, FillEvent) and fill_event.fill.quantity == Quantity(200)
    assert fill_event.post_position == Quantity(200)
    assert [o.exchange_order_id for o in await venue.get_open_orders(MARKET)] == ["o-1"]
    assert (await venue.get_order_by_client_id("mm:h:1:yb:0")) == order_event.order
    assert [f.fill_id for f in await venue.get_fills(since_us=T0)] == ["f-1"]
    (position,) = await venue.get_positions()
    assert position.net_units == 200


async def test_creates_are_answered_with_the_recorded_outcome() -> None:
    feed = ScriptedFeed(
        [
            rec(
                1,
                "order_ack",
                {
                    "client_order_id": "a",
                    "exchange_order_id": "o-1",
                    "status": "open",
                    "created_us": T0 + 5,
                    "updated_us": T0 + 5,
                },
            ),
            rec(
                2, "order_rejected", {"client_order_id": "b", "reason": "no money", "error": "InsufficientBalanceError"}
            ),
            rec(3, "order_unknown", {"client_order_id": "c", "reason": "timed out"}),
        ]
    )
    venue, _ = adapter(feed)
    ok, refused, unknown, unanswered = await venue.place_orders(
        [request("a"), request("b"), request("c"), request("d")]
    )
    assert isinstance(ok, Order) and ok.created_us == T0 + 5 and ok.exchange_order_id == "o-1"
    assert isinstance(refused, InsufficientBalanceError) and str(refused) == "no money"
    assert isinstance(unknown, ExchangeUnavailableError)
    assert isinstance(unanswered, ExchangeUnavailableError) and "no answer" in str(unanswered)
    assert feed.calls == [("create", "a"), ("create", "b"), ("create", "c"), ("create", "d")]


async def test_a_call_that_raised_raises_again() -> None:
    raised = {
        "action": "create",
        "exchange_order_id": None,
        "error": "RateLimitedError",
        "reason": "429",
        "raised": True,
    }
    venue, _ = adapter(ScriptedFeed([rec(1, "order_result", raised)]))
    with pytest.raises(RateLimitedError, match="429"):
        await venue.place_orders([request()])


async def test_cancels_amends_and_decreases_are_answered_from_order_results() -> None:
    amended = {
        "client_order_id": "a",
        "side": "yes",
        "order_side": "buy",
        "price_units": 4700,
        "size_units": 500,
        "exchange_order_id": "o-1",
        "status": "open",
        "filled_units": 0,
        "created_us": T0,
        "updated_us": T0 + 2,
    }
    feed = ScriptedFeed(
        [
            rec(1, "order_ack", {"client_order_id": "a", "exchange_order_id": "o-1", "status": "open"}),
            rec(2, "order_result", {"action": "amend", "exchange_order_id": "o-1", "error": None, "order": amended}),
            rec(3, "order_result", {"action": "decrease", "exchange_order_id": "o-1", "error": None}),
            rec(4, "order_result", {"action": "cancel", "exchange_order_id": "o-1", "error": None}),
            rec(
                5,
                "order_result",
                {"action": "cancel", "exchange_order_id": "o-2", "error": "OrderNotFoundError", "reason": "gone"},
            ),
        ]
    )
    venue, _ = adapter(feed)
    await venue.place_order(request("a"))
    order = await venue.amend_order("o-1", price=Price(4700), quantity=Quantity(500))
    assert order.request.price == Price(4700) and order.updated_us == T0 + 2
    await venue.decrease_order("o-1", reduce_to=Quantity(300))
    assert venue.orders["o-1"].remaining == Quantity(300)
    first, second = await venue.cancel_orders(["o-1", "o-2"])
    assert first is None and isinstance(second, OrderNotFoundError)
    assert await venue.get_open_orders() == []


async def test_where_the_recording_holds_no_answer() -> None:
    venue, _ = adapter(ScriptedFeed([]))
    assert await venue.cancel_orders(["o-9"]) == [None]  # an older recording: assumed done
    await venue.decrease_order("o-9", reduce_to=Quantity(100))
    with pytest.raises(OrderNotFoundError):
        await venue.amend_order("o-9", price=Price(4700), quantity=Quantity(500))
    with pytest.raises(ExchangeError, match="cash"):
        await venue.get_balance()
    venue.balance_micros = 10_000_000_000
    assert str((await venue.get_balance()).total) == "10000.000000"
    bare = ReplayExchangeAdapter(SimulatedClock(T0))
    with pytest.raises(ExchangeError, match="no recording"):
        await bare.place_order(request())
    with pytest.raises(ExchangeError):
        await bare.get_orderbook(MARKET)


def test_recorded_error_names_map_back_to_the_error_tree() -> None:
    assert type(error_from_record("InsufficientBalanceError", "x")) is InsufficientBalanceError
    assert type(error_from_record("NoSuchError", "x")) is ExchangeError
    assert type(error_from_record("ValueError", "x")) is ExchangeError  # only the venue error tree
