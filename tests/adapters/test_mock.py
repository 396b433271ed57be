"""FR-114: the mock adapter's fill behaviours, error injection, latency, state inspection and accounting."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mm.adapters.base import Capabilities, ExchangeAdapter, MarketInfo
from mm.adapters.errors import (
    DuplicateClientOrderIdError,
    ExchangeError,
    ExchangeUnavailableError,
    InsufficientBalanceError,
    MarketInactiveError,
    NotSupportedError,
    OrderNotFoundError,
    OrderPriceError,
    OrderRejectedError,
    RateLimitedError,
)
from mm.adapters.mock import FillBehaviour, MockExchangeAdapter
from mm.clock import SimulatedClock
from mm.domain.book import OrderBook
from mm.domain.events import ExchangeEvent, FillEvent, OrderUpdate, Settlement
from mm.domain.orders import OrderRequest, OrderStatus
from mm.domain.price import Price, Quantity
from mm.domain.sides import OrderSide, Side
from mm.domain.ticks import TickGrid

T0 = 1_700_000_000_000_000


def req(
    cid: str, *, side: Side = Side.YES, order_side: OrderSide = OrderSide.BUY, price: str = "0.40", qty: int = 10
) -> OrderRequest:
    return OrderRequest("M1", side, order_side, Price.from_decimal(price), Quantity.contracts(qty), cid)


def market(market_id: str = "M1", status: str = "active") -> MarketInfo:
    return MarketInfo(market_id, "E1", "S1", status, T0, T0 + 10**9, TickGrid.linear_cent())


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(T0)


@pytest.fixture
def mock(clock: SimulatedClock) -> MockExchangeAdapter:
    return MockExchangeAdapter(clock)


async def test_rest_is_the_default_and_never_fills(mock: MockExchangeAdapter) -> None:
    order = await mock.place_order(req("a"))
    assert order.status is OrderStatus.OPEN
    assert order.exchange_order_id == "mock-1"
    assert mock.fills == []
    assert await mock.get_open_orders() == [order]


async def test_immediate_fills_fully_at_its_price(mock: MockExchangeAdapter) -> None:
    mock.default_behaviour = FillBehaviour.immediate()
    order = await mock.place_order(req("a", price="0.37"))
    assert order.status is OrderStatus.FILLED
    [fill] = mock.fills
    assert (fill.price, fill.quantity, fill.is_taker, fill.fee) == (
        Price(3700),
        Quantity.contracts(10),
        True,
        Decimal(0),
    )
    assert fill.client_order_id == "a" and fill.order_id == order.exchange_order_id
    assert await mock.get_open_orders() == []


async def test_partial_fills_the_fraction_rounded_down_and_rests_the_rest(mock: MockExchangeAdapter) -> None:
    mock.set_behaviour("p", FillBehaviour.partial("0.333"))
    order = await mock.place_order(req("p", qty=1))
    assert order.status is OrderStatus.PARTIALLY_FILLED
    assert order.filled == Quantity(33)  # 0.333 × 100 units, floored
    assert order.remaining == Quantity(67)
    assert await mock.get_open_orders("M1") == [order]


def test_partial_fraction_must_be_inside_zero_one() -> None:
    for bad in ("0", "1", "1.5"):
        with pytest.raises(ValueError, match="fraction"):
            FillBehaviour.partial(bad)


async def test_reject_raises_with_code_and_records_the_order(mock: MockExchangeAdapter) -> None:
    mock.set_behaviour("r", FillBehaviour.reject("insufficient_balance", InsufficientBalanceError))
    with pytest.raises(InsufficientBalanceError) as info:
        await mock.place_order(req("r"))
    assert info.value.code == "insufficient_balance"
    assert [o.status for o in mock.rejected] == [OrderStatus.REJECTED]
    assert mock.orders == {}
    with pytest.raises(OrderRejectedError):
        mock.default_behaviour = FillBehaviour.reject()
        await mock.place_order(req("r2"))


async def test_override_is_per_client_order_id(mock: MockExchangeAdapter) -> None:
    mock.set_behaviour("fills", FillBehaviour.immediate())
    rests = await mock.place_order(req("rests"))
    fills = await mock.place_order(req("fills"))
    assert (rests.status, fills.status) == (OrderStatus.OPEN, OrderStatus.FILLED)


async def test_random_behaviour_is_deterministic_per_seed(clock: SimulatedClock) -> None:
    async def run(seed: int) -> list[tuple[OrderStatus, Quantity]]:
        venue = MockExchangeAdapter(clock, seed=seed, default_behaviour=FillBehaviour.random())
        out = []
        for i in range(30):
            o = await venue.place_order(req(f"o{i}"))
            out.append((o.status, o.filled))
        return out

    first = await run(7)
    assert first == await run(7)
    assert {s for s, _ in first} == {OrderStatus.OPEN, OrderStatus.FILLED, OrderStatus.PARTIALLY_FILLED}


async def test_delayed_fill_via_fill(mock: MockExchangeAdapter, clock: SimulatedClock) -> None:
    order = await mock.place_order(req("d"))
    clock.advance(5)
    mock.fill(order.exchange_order_id or "", Quantity.contracts(4))
    fill = mock.fill(order.exchange_order_id or "")
    assert fill.quantity == Quantity.contracts(6) and fill.timestamp_us == T0 + 5_000_000 and not fill.is_taker
    assert mock.orders["mock-1"].status is OrderStatus.FILLED


@pytest.mark.parametrize(
    "error", [ExchangeUnavailableError("down", status=503), RateLimitedError("slow", status=429), OrderPriceError("p")]
)
async def test_injected_error_raises_once_then_normal(mock: MockExchangeAdapter, error: Exception) -> None:
    mock.fail_next("place_order", error)
    with pytest.raises(type(error)) as info:
        await mock.place_order(req("a"))
    assert info.value is error
    assert mock.orders == {}
    order = await mock.place_order(req("a"))
    assert order.status is OrderStatus.OPEN


async def test_injected_errors_queue_per_operation(mock: MockExchangeAdapter) -> None:
    mock.fail_next("get_balance", RateLimitedError("1"))
    mock.fail_next("get_balance", ExchangeUnavailableError("2"))
    await mock.get_positions()  # another operation is unaffected
    with pytest.raises(RateLimitedError):
        await mock.get_balance()
    with pytest.raises(ExchangeUnavailableError):
        await mock.get_balance()
    await mock.get_balance()
    with pytest.raises(ValueError, match="not an ExchangeAdapter operation"):
        mock.fail_next("plaec_order", RateLimitedError("typo"))


async def test_injected_error_in_a_batch_is_that_items_result(mock: MockExchangeAdapter) -> None:
    mock.fail_next("place_order", RateLimitedError("429", status=429))
    results = await mock.place_orders([req("a"), req("b")])
    assert isinstance(results[0], RateLimitedError)
    assert not isinstance(results[1], Exception) and results[1].client_order_id == "b"


async def test_latency_uses_the_injected_sleep(clock: SimulatedClock) -> None:
    slept: list[tuple[float, str]] = []
    venue: MockExchangeAdapter

    async def fake_sleep(seconds: float) -> None:
        slept.append((seconds, venue.calls[-1][0]))

    venue = MockExchangeAdapter(clock, sleep=fake_sleep)
    venue.set_latency(0.05)
    venue.set_latency(0.2, "place_order")
    await venue.get_balance()
    await venue.place_order(req("a"))
    assert slept == [(0.05, "get_balance"), (0.2, "place_order")]
    with pytest.raises(ValueError, match="sleep"):
        MockExchangeAdapter(clock).set_latency(1)


async def test_calls_and_connection_state_are_recorded(mock: MockExchangeAdapter) -> None:
    await mock.connect()
    await mock.subscribe_market("M1")
    await mock.subscribe_market("M2")
    await mock.unsubscribe_market("M2")
    request = req("a")
    await mock.place_order(request)
    await mock.cancel_order("mock-1")
    assert mock.connected and mock.subscribed == {"M1"}
    assert mock.calls == [
        ("connect", ()),
        ("subscribe_market", ("M1",)),
        ("subscribe_market", ("M2",)),
        ("unsubscribe_market", ("M2",)),
        ("place_order", (request,)),
        ("cancel_order", ("mock-1",)),
    ]
    assert mock.orders["mock-1"].status is OrderStatus.CANCELLED
    with pytest.raises(OrderNotFoundError):
        await mock.cancel_order("mock-1")
    await mock.disconnect()
    assert not mock.connected


async def test_positions_and_balance_follow_fills_exactly(clock: SimulatedClock) -> None:
    venue = MockExchangeAdapter(clock, starting_balance=Decimal("100"), default_behaviour=FillBehaviour.immediate())
    await venue.place_order(req("b1", price="0.40", qty=10))  # buy 10 YES @ 0.40: −4.00
    [pos] = await venue.get_positions()
    assert (pos.yes, pos.no, pos.net_inventory) == (Quantity.contracts(10), Quantity(0), Decimal(10))
    assert await venue.get_balance() == venue.account.balance([])
    assert (await venue.get_balance()).total == Decimal("96.00")
    await venue.place_order(req("s1", order_side=OrderSide.SELL, price="0.45", qty=4))  # sell 4 YES @ 0.45: +1.80
    assert (await venue.get_balance()).total == Decimal("97.80")
    await venue.place_order(req("n1", side=Side.NO, price="0.50", qty=10))  # buy 10 NO @ 0.50: nets 6 YES, +4 NO
    [pos] = await venue.get_positions()
    assert (pos.yes, pos.no) == (Quantity(0), Quantity.contracts(4))
    # Paid 5.00 for the NO, got $1 × 6 back from netting: 97.80 − 5.00 + 6.00
    assert (await venue.get_balance()).total == Decimal("98.80")


async def test_available_balance_reserves_resting_orders(mock: MockExchangeAdapter) -> None:
    await mock.place_order(req("bid", price="0.40", qty=10))  # reserves 4.00
    await mock.place_order(req("ask", order_side=OrderSide.SELL, price="0.70", qty=10))  # 1 − 0.70 → 3.00
    balance = await mock.get_balance()
    assert (balance.total, balance.available) == (Decimal(1000), Decimal("993.00"))


async def test_client_id_lookup_and_fills_since(mock: MockExchangeAdapter, clock: SimulatedClock) -> None:
    a = await mock.place_order(req("a"))
    assert await mock.get_order_by_client_id("a") == a
    assert await mock.get_order_by_client_id("a", "M1") == a
    assert await mock.get_order_by_client_id("a", "other") is None
    assert await mock.get_order_by_client_id("zz") is None
    mock.fill("mock-1", Quantity.contracts(1))
    clock.advance(1)
    mock.fill("mock-1", Quantity.contracts(1))
    assert len(await mock.get_fills()) == 2
    assert len(await mock.get_fills(since_us=T0 + 1)) == 1
    assert await mock.get_fills(market_id="other") == []
    with pytest.raises(DuplicateClientOrderIdError):
        await mock.place_order(req("a"))


async def test_amend_keeps_id_and_fills(mock: MockExchangeAdapter, clock: SimulatedClock) -> None:
    await mock.place_order(req("a", qty=10))
    mock.fill("mock-1", Quantity.contracts(3))
    clock.advance(1)
    amended = await mock.amend_order("mock-1", price=Price.from_decimal("0.42"), quantity=Quantity.contracts(5))
    assert amended.exchange_order_id == "mock-1"
    assert (amended.request.price, amended.filled, amended.remaining) == (
        Price(4200),
        Quantity.contracts(3),
        Quantity.contracts(2),
    )
    assert amended.status is OrderStatus.PARTIALLY_FILLED and amended.updated_us == T0 + 1_000_000
    with pytest.raises(OrderRejectedError):
        await mock.amend_order("mock-1", price=Price(4200), quantity=Quantity.contracts(3))


async def test_amend_not_supported_without_the_capability(clock: SimulatedClock) -> None:
    caps = Capabilities(False, False, 1, 1, True, True, True, True, True, True)
    venue = MockExchangeAdapter(clock, capabilities=caps)
    await venue.place_order(req("a"))
    assert venue.capabilities is caps
    with pytest.raises(NotSupportedError):
        await venue.amend_order("mock-1", price=Price(4000), quantity=Quantity.contracts(1))


async def test_registered_markets_validate_and_report_top_of_book(mock: MockExchangeAdapter) -> None:
    book = OrderBook(TickGrid.linear_cent())
    book.apply_snapshot([(4000, 500)], [(5500, 300)], T0)
    mock.add_market(market(), book)
    mock.add_market(market("M2", status="closed"))
    info = await mock.get_market("M1")
    assert (info.best_bid, info.best_ask) == (Price(4000), Price(4500))
    assert [m.market_id for m in await mock.list_markets(status="active")] == ["M1"]
    assert len(await mock.list_markets(series=["S1"])) == 2
    with pytest.raises(OrderPriceError):
        await mock.place_order(req("off", price="0.405"))
    with pytest.raises(MarketInactiveError):
        await mock.place_order(OrderRequest("M2", Side.YES, OrderSide.BUY, Price(4000), Quantity(100), "c"))


def test_mock_is_a_full_exchange_adapter(clock: SimulatedClock) -> None:
    assert isinstance(MockExchangeAdapter(clock), ExchangeAdapter)
    assert not getattr(MockExchangeAdapter, "__abstractmethods__", set())


async def test_order_changes_and_fills_are_delivered_as_events(
    mock: MockExchangeAdapter, clock: SimulatedClock
) -> None:
    seen: list[ExchangeEvent] = []

    async def record(event: ExchangeEvent) -> None:
        seen.append(event)

    mock.on_event(record)
    mock.set_behaviour("half", FillBehaviour.partial("0.5"))
    placed = await mock.place_order(req("half"))
    kinds = [type(e).__name__ for e in seen]
    assert kinds == ["OrderUpdate", "FillEvent", "OrderUpdate"]
    assert isinstance(seen[-1], OrderUpdate) and seen[-1].order.status is OrderStatus.PARTIALLY_FILLED
    assert isinstance(seen[1], FillEvent) and seen[1].fill.quantity == Quantity.contracts(5)

    seen.clear()
    mock.fill(placed.exchange_order_id or "")  # scripted: queued until delivered
    assert seen == [] and len(mock.pending_events) == 2
    assert await mock.deliver() == 2
    assert isinstance(seen[-1], OrderUpdate) and seen[-1].order.status is OrderStatus.FILLED

    seen.clear()
    other = await mock.place_order(req("c"))
    await mock.cancel_order(other.exchange_order_id or "")
    statuses = [e.order.status for e in seen if isinstance(e, OrderUpdate)]
    assert statuses == [OrderStatus.OPEN, OrderStatus.CANCELLED]


async def test_scripted_settlements_and_orderbook(mock: MockExchangeAdapter) -> None:
    row = Settlement(
        "M1",
        "yes",
        Quantity.contracts(3),
        Quantity(0),
        Decimal("1.2"),
        Decimal(0),
        Decimal(3),
        Decimal(1),
        Decimal(0),
        T0 + 10,
    )
    mock.settlements.append(row)
    assert await mock.get_settlements(since_us=T0) == [row]
    assert await mock.get_settlements(since_us=T0 + 11) == []
    assert await mock.get_settlements(market_id="M2") == []
    book = OrderBook(TickGrid.linear_cent())
    mock.add_market(market(), book)
    assert await mock.get_orderbook("M1") is book
    with pytest.raises(ExchangeError):
        await mock.get_orderbook("M9")
