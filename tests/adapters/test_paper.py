"""FR-604: paper trading fills from a fill model fed by live market data, keeps virtual state, emits events like
live and has the live interface."""

from __future__ import annotations

import inspect
from decimal import Decimal

import pytest

from mm.adapters.base import ExchangeAdapter, MarketInfo
from mm.adapters.errors import (
    DuplicateClientOrderIdError,
    ExchangeError,
    MarketInactiveError,
    OrderNotFoundError,
    OrderPriceError,
    OrderRejectedError,
)
from mm.adapters.fill_models import CrossFillModel, QueueFillModel, TradeThroughFillModel
from mm.adapters.mock import MockExchangeAdapter
from mm.adapters.paper import PaperExecution
from mm.clock import SimulatedClock
from mm.domain.book import OrderBook
from mm.domain.events import (
    BookState,
    BookUpdated,
    ConnectionState,
    ExchangeEvent,
    FillEvent,
    MarketLifecycle,
    OrderUpdate,
    PublicTrade,
    ResyncRequired,
    Settlement,
)
from mm.domain.orders import Fill, Order, OrderRequest, OrderStatus
from mm.domain.price import Price, Quantity
from mm.domain.sides import OrderSide, Side, TimeInForce
from mm.domain.ticks import TickGrid

T0 = 1_700_000_000_000_000
GRID = TickGrid.linear_cent()


def book(
    bid: tuple[str, int] | None = ("0.40", 5), ask: tuple[str, int] | None = ("0.60", 5), ts: int = T0
) -> OrderBook:
    """A YES book with one YES bid and one YES ask (= a NO bid at 1 − ask), sizes in contracts."""
    b = OrderBook(GRID)
    yes = [(Price.from_decimal(bid[0]).units, bid[1] * 100)] if bid else []
    no = [(Price.from_decimal(ask[0]).complement().units, ask[1] * 100)] if ask else []
    b.apply_snapshot(yes, no, ts)
    return b


def req(
    cid: str,
    price: str,
    qty: int = 10,
    *,
    side: Side = Side.YES,
    order_side: OrderSide = OrderSide.BUY,
    tif: TimeInForce = TimeInForce.GOOD_TILL_CANCELED,
    post_only: bool = True,
) -> OrderRequest:
    return OrderRequest(
        "M1", side, order_side, Price.from_decimal(price), Quantity.contracts(qty), cid, tif, post_only=post_only
    )


def bid(cid: str, price: str, qty: int = 10) -> OrderRequest:
    return req(cid, price, qty)


def ask(cid: str, price: str, qty: int = 10) -> OrderRequest:
    return req(cid, price, qty, order_side=OrderSide.SELL)


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(T0)


@pytest.fixture
def paper(clock: SimulatedClock) -> PaperExecution:
    """The requirements' top-of-book crossing rule (the tests below were written for it)."""
    return PaperExecution(None, clock, starting_balance=Decimal(100), fill_model=CrossFillModel())


# ---------------------------------------------------------------- the crossing rule


@pytest.mark.parametrize(("price", "fills"), [("0.59", False), ("0.60", True), ("0.65", True)])
async def test_resting_bid_fills_at_best_ask_when_bid_reaches_it(
    paper: PaperExecution, price: str, fills: bool
) -> None:
    await paper.place_order(bid("b", price, 3))
    got = paper.on_book("M1", book(ask=("0.60", 5)))
    assert bool(got) is fills
    if fills:
        [fill] = got
        assert (fill.price, fill.quantity, fill.is_taker, fill.fee) == (
            Price(6000),
            Quantity.contracts(3),
            False,
            Decimal(0),
        )
        assert paper.orders["paper-1"].status is OrderStatus.FILLED
    else:
        assert paper.orders["paper-1"].status is OrderStatus.OPEN


@pytest.mark.parametrize(("price", "fills"), [("0.41", False), ("0.40", True), ("0.35", True)])
async def test_resting_ask_fills_at_best_bid_when_ask_reaches_it(
    paper: PaperExecution, price: str, fills: bool
) -> None:
    await paper.place_order(ask("a", price, 3))
    got = paper.on_book("M1", book(bid=("0.40", 5)))
    assert bool(got) is fills
    if fills:
        assert (got[0].price, got[0].quantity, got[0].order_side) == (
            Price(4000),
            Quantity.contracts(3),
            OrderSide.SELL,
        )


async def test_fill_size_is_min_of_order_and_available(paper: PaperExecution) -> None:
    await paper.place_order(bid("big", "0.60", 10))
    [fill] = paper.on_book("M1", book(ask=("0.60", 4)))
    assert fill.quantity == Quantity.contracts(4)
    order = paper.orders["paper-1"]
    assert (order.status, order.remaining) == (OrderStatus.PARTIALLY_FILLED, Quantity.contracts(6))


async def test_partial_then_full_across_two_updates(paper: PaperExecution, clock: SimulatedClock) -> None:
    await paper.place_order(bid("b", "0.60", 10))
    paper.on_book("M1", book(ask=("0.58", 4)))
    clock.advance(1)
    [second] = paper.on_book("M1", book(ask=("0.59", 20)))
    assert second.quantity == Quantity.contracts(6) and second.price == Price(5900)
    assert second.timestamp_us == T0 + 1_000_000
    assert paper.orders["paper-1"].status is OrderStatus.FILLED
    assert paper.on_book("M1", book(ask=("0.50", 20))) == []
    assert [f.quantity for f in await paper.get_fills()] == [Quantity.contracts(4), Quantity.contracts(6)]
    assert len(await paper.get_fills(since_us=T0 + 1)) == 1


async def test_liquidity_is_shared_by_priority_within_one_update(paper: PaperExecution) -> None:
    await paper.place_order(bid("low", "0.60", 3))
    await paper.place_order(bid("high", "0.62", 3))
    await paper.place_order(bid("low-later", "0.60", 3))
    fills = paper.on_book("M1", book(ask=("0.60", 5)))
    assert [(f.client_order_id, f.quantity) for f in fills] == [
        ("high", Quantity.contracts(3)),
        ("low", Quantity.contracts(2)),
    ]


async def test_no_fills_when_the_book_does_not_cross(paper: PaperExecution) -> None:
    await paper.place_order(bid("b", "0.45"))
    await paper.place_order(ask("a", "0.55"))
    assert paper.on_book("M1", book(bid=("0.44", 50), ask=("0.56", 50))) == []
    assert paper.on_book("M1", book(bid=None, ask=None)) == []
    assert paper.on_book("OTHER", book(bid=("0.90", 50), ask=("0.10", 50))) == []
    assert paper.fills == [] and len(await paper.get_open_orders()) == 2


async def test_crossing_order_fills_immediately_as_taker(paper: PaperExecution) -> None:
    paper.on_book("M1", book(bid=("0.40", 5), ask=("0.60", 5)))
    order = await paper.place_order(bid("t", "0.61", 8))
    assert order.status is OrderStatus.PARTIALLY_FILLED and order.filled == Quantity.contracts(5)
    [fill] = paper.fills
    assert fill.is_taker and fill.price == Price(6000)
    resting = await paper.place_order(ask("m", "0.41", 1))
    assert resting.status is OrderStatus.OPEN


async def test_no_orders_map_onto_the_yes_book(paper: PaperExecution) -> None:
    # Buy NO at 0.45 = YES ask at 0.55: fills against a YES bid of 0.55 at NO price 0.45.
    await paper.place_order(req("n", "0.45", 2, side=Side.NO))
    assert paper.on_book("M1", book(bid=("0.54", 5))) == []
    [fill] = paper.on_book("M1", book(bid=("0.56", 5)))
    assert (fill.side, fill.order_side, fill.price) == (Side.NO, OrderSide.BUY, Price(4400))
    [pos] = await paper.get_positions()
    assert (pos.yes, pos.no) == (Quantity(0), Quantity.contracts(2))
    assert (await paper.get_balance()).total == Decimal("99.12")  # 100 − 2 × 0.44


async def test_ioc_remainder_is_cancelled_and_fok_needs_full_size(paper: PaperExecution) -> None:
    paper.on_book("M1", book(ask=("0.60", 5)))
    ioc = await paper.place_order(req("ioc", "0.60", 8, tif=TimeInForce.IMMEDIATE_OR_CANCEL))
    assert (ioc.status, ioc.filled) == (OrderStatus.CANCELLED, Quantity.contracts(5))
    fok = await paper.place_order(req("fok", "0.60", 8, tif=TimeInForce.FILL_OR_KILL))
    assert (fok.status, fok.filled) == (OrderStatus.CANCELLED, Quantity(0))


async def test_post_only_enforcement_is_optional(clock: SimulatedClock) -> None:
    strict = PaperExecution(
        None, clock, starting_balance=Decimal(100), enforce_post_only=True, fill_model=CrossFillModel()
    )
    strict.on_book("M1", book())
    with pytest.raises(OrderRejectedError) as info:
        await strict.place_order(bid("p", "0.60"))
    assert info.value.code == "post_only_cross" and strict.orders == {}
    taker = await strict.place_order(req("t", "0.60", post_only=False))
    assert taker.status is OrderStatus.PARTIALLY_FILLED


# ---------------------------------------------------------------- orders and virtual state


async def test_cancel_removes_from_matching(paper: PaperExecution) -> None:
    await paper.place_order(bid("b", "0.60"))
    await paper.cancel_order("paper-1")
    assert paper.on_book("M1", book()) == []
    assert paper.orders["paper-1"].status is OrderStatus.CANCELLED
    with pytest.raises(OrderNotFoundError):
        await paper.cancel_order("paper-1")
    with pytest.raises(OrderNotFoundError):
        await paper.cancel_order("nope")
    results = await paper.cancel_orders(["paper-1"])
    assert isinstance(results[0], OrderNotFoundError)


async def test_amend_can_make_an_order_cross(paper: PaperExecution) -> None:
    paper.on_book("M1", book(ask=("0.60", 5)))
    await paper.place_order(bid("b", "0.50", 2))
    amended = await paper.amend_order("paper-1", price=Price(6000), quantity=Quantity.contracts(3))
    assert (amended.status, amended.filled, amended.exchange_order_id) == (
        OrderStatus.FILLED,
        Quantity.contracts(3),
        "paper-1",
    )


async def test_positions_balance_and_fills_reflect_virtual_state(paper: PaperExecution) -> None:
    await paper.place_order(bid("b", "0.60", 10))
    await paper.place_order(ask("a", "0.70", 4))
    paper.on_book("M1", book(ask=("0.60", 10)))  # buy 10 YES @ 0.60 → −6.00
    [pos] = await paper.get_positions()
    assert pos.yes == Quantity.contracts(10) and pos.net_inventory == Decimal(10)
    balance = await paper.get_balance()
    assert balance.total == Decimal("94.00")
    assert balance.available == Decimal("92.80")  # the resting ask reserves 4 × (1 − 0.70)
    paper.on_book("M1", book(bid=("0.71", 10)))  # sell 4 YES @ 0.71 → +2.84
    assert (await paper.get_balance()).total == Decimal("96.84")
    [pos] = await paper.get_positions()
    assert pos.yes == Quantity.contracts(6)
    assert [f.client_order_id for f in await paper.get_fills(market_id="M1")] == ["b", "a"]
    assert await paper.get_fills(market_id="M2") == []


async def test_order_queries_and_validation(paper: PaperExecution) -> None:
    paper.add_market(MarketInfo("M1", "E1", "S1", "active", T0, T0 + 1, GRID))
    paper.add_market(MarketInfo("M2", "E1", "S1", "closed", T0, T0 + 1, GRID))
    order = await paper.place_order(bid("b", "0.50"))
    assert await paper.get_order_by_client_id("b") == order
    assert await paper.get_order_by_client_id("b", "M2") is None
    assert await paper.get_open_orders("M2") == []
    with pytest.raises(DuplicateClientOrderIdError):
        await paper.place_order(bid("b", "0.50"))
    with pytest.raises(OrderPriceError):
        await paper.place_order(bid("off", "0.505"))
    with pytest.raises(MarketInactiveError):
        await paper.place_order(OrderRequest("M2", Side.YES, OrderSide.BUY, Price(5000), Quantity(100), "c"))
    assert [m.market_id for m in await paper.list_markets(status="active")] == ["M1"]
    assert (await paper.get_market("M1")).market_id == "M1"
    with pytest.raises(ExchangeError):
        await paper.get_market("nope")


async def test_reads_delegate_to_data_and_orders_never_do(clock: SimulatedClock) -> None:
    data = MockExchangeAdapter(clock)
    data.add_market(MarketInfo("M1", "E1", "S1", "active", T0, T0 + 1, GRID))
    paper = PaperExecution(data, clock, starting_balance=Decimal(100))
    await paper.connect()
    await paper.subscribe_market("M1")
    assert (await paper.get_market("M1")).market_id == "M1"
    assert len(await paper.list_markets()) == 1
    await paper.place_order(bid("b", "0.50"))
    await paper.place_orders([bid("c", "0.50")])
    await paper.cancel_order("paper-1")
    await paper.unsubscribe_market("M1")
    await paper.disconnect()
    ops = [op for op, _ in data.calls]
    assert ops == [
        "connect",
        "subscribe_market",
        "get_market",
        "list_markets",
        "unsubscribe_market",
        "disconnect",
    ]
    assert data.orders == {} and len(paper.orders) == 2


def test_identical_interface(clock: SimulatedClock) -> None:
    paper = PaperExecution(None, clock, starting_balance=Decimal(0))
    mock = MockExchangeAdapter(clock)
    assert isinstance(paper, ExchangeAdapter) and isinstance(mock, ExchangeAdapter)
    abstract = set(ExchangeAdapter.__abstractmethods__)
    assert abstract  # the interface really is abstract
    for cls in (PaperExecution, MockExchangeAdapter):
        assert not cls.__abstractmethods__
        for name in abstract | {"amend_order", "place_orders", "cancel_orders"}:
            ours = getattr(cls, name)
            base = getattr(ExchangeAdapter, name)
            if isinstance(base, property):
                continue
            assert inspect.signature(ours) == inspect.signature(base), (cls.__name__, name)


# ---------------------------------------------------------------- fill models and live market data


def trade(price: str, qty: int, taker: OrderSide, market: str = "M1", tid: str = "t1") -> PublicTrade:
    return PublicTrade(market, tid, Price.from_decimal(price), Quantity.contracts(qty), taker, T0)


class BookMock(MockExchangeAdapter):
    """A data venue that keeps live books (the plain mock keeps none)."""

    def book(self, market_id: str) -> OrderBook | None:
        return self.books.get(market_id)


def recorder(adapter: PaperExecution) -> list[ExchangeEvent]:
    seen: list[ExchangeEvent] = []

    async def handler(event: ExchangeEvent) -> None:
        seen.append(event)

    adapter.on_event(handler)
    return seen


def kinds(events: list[ExchangeEvent]) -> list[str]:
    return [type(e).__name__ for e in events]


async def test_default_model_is_trade_through(clock: SimulatedClock) -> None:
    paper = PaperExecution(None, clock, starting_balance=Decimal(100))
    assert isinstance(paper.fill_model, TradeThroughFillModel)
    await paper.place_order(bid("b", "0.50", 10))
    assert paper.on_book("M1", book(bid=("0.40", 5), ask=("0.45", 50))) == []  # a displayed cross is not a trade
    assert paper.on_trade(trade("0.50", 50, OrderSide.SELL)) == []  # a touch does not fill
    [fill] = paper.on_trade(trade("0.49", 4, OrderSide.SELL))
    assert (fill.price, fill.quantity, fill.is_taker) == (Price(5000), Quantity.contracts(4), False)
    assert paper.orders["paper-1"].status is OrderStatus.PARTIALLY_FILLED
    # A NO order fills in its own contract's price.
    await paper.place_order(req("n", "0.45", 2, side=Side.NO))  # = YES ask at 0.55
    [no_fill] = paper.on_trade(trade("0.56", 9, OrderSide.BUY))
    assert (no_fill.side, no_fill.price, no_fill.quantity) == (Side.NO, Price(4500), Quantity.contracts(2))


async def test_crossing_order_is_a_taker_in_every_model(clock: SimulatedClock) -> None:
    for model in (CrossFillModel(), TradeThroughFillModel(), QueueFillModel()):
        paper = PaperExecution(None, clock, starting_balance=Decimal(100), fill_model=model)
        paper.on_book("M1", book(ask=("0.60", 5)))
        order = await paper.place_order(bid("t", "0.61", 8))
        assert (order.status, order.filled) == (OrderStatus.PARTIALLY_FILLED, Quantity.contracts(5)), model.name
        [fill] = paper.fills
        assert fill.is_taker and fill.price == Price(6000)


async def test_market_data_from_the_data_adapter_drives_paper_fills_and_events(clock: SimulatedClock) -> None:
    data = MockExchangeAdapter(clock)
    paper = PaperExecution(data, clock, starting_balance=Decimal(100))
    seen = recorder(paper)
    await paper.place_order(ask("a", "0.58", 10))
    [opened] = seen
    assert isinstance(opened, OrderUpdate) and opened.order.status is OrderStatus.OPEN
    seen.clear()
    print_ = trade("0.60", 4, OrderSide.BUY)
    await data.emit(print_)
    assert kinds(seen) == ["FillEvent", "OrderUpdate", "PublicTrade"]
    fill_event, update, forwarded = seen
    assert isinstance(fill_event, FillEvent) and isinstance(update, OrderUpdate)
    assert (fill_event.fill.price, fill_event.fill.quantity, fill_event.fill.is_taker) == (
        Price(5800),
        Quantity.contracts(4),
        False,
    )
    assert update.order.status is OrderStatus.PARTIALLY_FILLED and update.order.filled == Quantity.contracts(4)
    assert forwarded is print_
    assert paper.fills == [fill_event.fill]
    assert [op for op, _ in data.calls if op in ("place_order", "amend_order", "cancel_order")] == []
    assert data.orders == {} and data.fills == []


async def test_book_updates_are_remembered_and_forwarded(clock: SimulatedClock) -> None:
    data = MockExchangeAdapter(clock)
    paper = PaperExecution(data, clock, starting_balance=Decimal(100))
    seen = recorder(paper)
    update = BookUpdated("M1", book(ask=("0.60", 5)), T0)
    await data.emit(update)
    assert seen == [update]
    order = await paper.place_order(bid("t", "0.60", 3))  # crosses the book the event carried
    assert order.status is OrderStatus.FILLED and paper.fills[0].is_taker
    assert kinds(seen[1:]) == ["OrderUpdate", "FillEvent", "OrderUpdate"]
    assert "place_order" not in [op for op, _ in data.calls]


async def test_real_account_events_are_not_forwarded_but_market_events_are(clock: SimulatedClock) -> None:
    data = MockExchangeAdapter(clock)
    paper = PaperExecution(data, clock, starting_balance=Decimal(100))
    seen = recorder(paper)
    real = Order.pending(bid("real", "0.50"), T0).acknowledged("venue-1", T0)
    real_fill = Fill(
        "f", "venue-1", "real", "M1", Side.YES, OrderSide.BUY, Price(5000), Quantity(100), Decimal(0), False, T0
    )
    settlement = Settlement(
        "M1", "yes", Quantity(100), Quantity(0), Decimal(1), Decimal(0), Decimal(1), Decimal(1), Decimal(0), T0
    )
    market_events: list[ExchangeEvent] = [
        MarketLifecycle("M1", "deactivated", T0, paused=True),
        BookState("M1", True, "gap", T0),
        ConnectionState(False, "closed", T0),
        ResyncRequired("books", "M1", "gap", T0),
    ]
    account_events: list[ExchangeEvent] = [
        OrderUpdate(real, T0),
        FillEvent(real_fill),
        settlement,
        ResyncRequired("orders", None, "unreadable fill", T0),
    ]
    for event in [*account_events, *market_events]:
        await data.emit(event)
    assert seen == market_events
    assert paper.orders == {} and paper.fills == [] and await paper.get_positions() == []


async def test_book_and_staleness_come_from_the_data_adapter(clock: SimulatedClock) -> None:
    data = BookMock(clock)
    paper = PaperExecution(data, clock, starting_balance=Decimal(100))
    assert paper.book("M1") is None and paper.is_stale("M1")
    live = book(ask=("0.60", 5))
    data.books["M1"] = live
    assert paper.book("M1") is live and not paper.is_stale("M1")
    # No BookUpdated seen yet: a crossing order still matches against the venue's live book.
    order = await paper.place_order(bid("t", "0.60", 2))
    assert order.status is OrderStatus.FILLED
    alone = PaperExecution(None, clock, starting_balance=Decimal(100))
    assert alone.book("M1") is None and alone.is_stale("M1")
    alone.on_book("M1", live)
    assert alone.book("M1") is live and not alone.is_stale("M1")


async def test_queue_model_through_paper(clock: SimulatedClock) -> None:
    data = MockExchangeAdapter(clock)
    model = QueueFillModel()
    paper = PaperExecution(data, clock, starting_balance=Decimal(100), fill_model=model)
    await data.emit(BookUpdated("M1", book(bid=("0.40", 5), ask=("0.60", 5)), T0))
    await paper.place_order(bid("b", "0.40", 10))
    assert model.queue_ahead("paper-1") == Quantity.contracts(5).units
    await data.emit(trade("0.40", 3, OrderSide.SELL))
    assert paper.fills == []
    await data.emit(trade("0.40", 4, OrderSide.SELL, tid="t2"))
    assert [f.quantity for f in paper.fills] == [Quantity.contracts(2)]
    # A new price loses queue priority: the order re-queues behind the 0.39 level.
    await data.emit(BookUpdated("M1", book(bid=("0.39", 7), ask=("0.60", 5)), T0))
    await paper.amend_order("paper-1", price=Price(3900), quantity=Quantity.contracts(10))
    assert model.queue_ahead("paper-1") == Quantity.contracts(7).units
    # A pure decrease keeps it.
    await data.emit(trade("0.39", 2, OrderSide.SELL, tid="t3"))
    await paper.amend_order("paper-1", price=Price(3900), quantity=Quantity.contracts(9))
    assert model.queue_ahead("paper-1") == Quantity.contracts(5).units
    await paper.cancel_order("paper-1")
    assert model.queue_ahead("paper-1") is None


async def test_handlers_do_not_nest_and_a_failing_one_is_counted(clock: SimulatedClock) -> None:
    data = MockExchangeAdapter(clock)
    lines: list[str] = []
    paper = PaperExecution(data, clock, starting_balance=Decimal(100), log=lines.append)
    order_of_delivery: list[str] = []

    async def requote(event: ExchangeEvent) -> None:
        order_of_delivery.append(type(event).__name__)
        if isinstance(event, BookUpdated):
            await paper.place_order(bid("q", "0.45"))  # its OrderUpdate is delivered after this handler
            order_of_delivery.append("requote done")

    async def broken(event: ExchangeEvent) -> None:
        raise RuntimeError("consumer bug")

    paper.on_event(requote)
    paper.on_event(broken)
    await data.emit(BookUpdated("M1", book(), T0))
    assert order_of_delivery == ["BookUpdated", "requote done", "OrderUpdate"]
    assert paper.handler_failures == 2 and len(lines) == 2 and "consumer bug" in lines[0]


async def test_direct_feed_queues_events_until_flushed(clock: SimulatedClock) -> None:
    paper = PaperExecution(None, clock, starting_balance=Decimal(100))
    await paper.place_order(bid("b", "0.50"))
    seen = recorder(paper)
    paper.on_trade(trade("0.49", 10, OrderSide.SELL))
    assert seen == []
    await paper.flush_events()
    assert kinds(seen) == ["FillEvent", "OrderUpdate"]
    assert isinstance(seen[1], OrderUpdate) and seen[1].order.status is OrderStatus.FILLED
