"""Good-till-time orders: a GTC order with ``expiration_time`` is cancelled once simulation time reaches it."""

from __future__ import annotations

from datetime import UTC, datetime

from mm.clock import SimulatedClock, datetime_to_us
from mm.domain.ticks import TickGrid
from mm.sim.exchange import Exchange, NewOrder
from mm.sim.market_loop import MarketLoop
from mm.sim.schedule import Schedule
from mm.sim.setup import build_state
from mm.sim.types import BookChange, BookSide, OrderStatus
from mm.sim.underlying import Underlying, UnderlyingConfig

BID, ASK = BookSide.BID, BookSide.ASK
DOLLAR = 1_000_000
SECOND = 1_000_000
T = "KXBTCD-26AUG1317-T73249.99"
OPEN_US = 1_786_000_000_000_000
CLOSE_US = OPEN_US + 3600 * SECOND
NOW_S = OPEN_US // SECOND + 1


def make_exchange() -> tuple[Exchange, SimulatedClock]:
    clock = SimulatedClock(NOW_S * SECOND)
    ex = Exchange(clock)
    for user in ("alice", "bob"):
        ex.open_account(user, 1000 * DOLLAR)
    ex.add_market(T, "KXBTCD-26AUG1317", "KXBTCD", TickGrid.linear_cent(), OPEN_US, CLOSE_US)
    ex.drain_events()
    return ex, clock


def test_an_order_rests_until_its_expiry_and_is_cancelled_after() -> None:
    ex, clock = make_exchange()
    gtt = ex.create_order("alice", NewOrder(T, BID, 5600, 10_00, expiration_s=NOW_S + 30))
    gtc = ex.create_order("alice", NewOrder(T, BID, 5500, 5_00))
    other = ex.create_order("bob", NewOrder(T, ASK, 6000, 2_00, expiration_s=NOW_S + 60))
    assert ex.accounts["alice"].reserved == (10 * 5600 + 5 * 5500) * 100
    ex.drain_events()

    clock.advance_us(29 * SECOND)
    assert ex.expire_orders(clock.now_us()) == 0
    assert gtt.status is OrderStatus.RESTING and not ex.drain_events()

    clock.advance_us(1 * SECOND)  # exactly at expiration_time
    assert ex.expire_orders(clock.now_us()) == 1
    assert gtt.status is OrderStatus.CANCELED and gtt.remaining_count == 0
    assert gtc.status is OrderStatus.RESTING and other.status is OrderStatus.RESTING
    assert ex.accounts["alice"].reserved == 5 * 5500 * 100  # only the plain GTC order still reserves
    events = ex.drain_events()
    assert [e.book_change for e in events if e.kind == "book"] == [BookChange(BID, 5600, -10_00)]
    user_orders = [e for e in events if e.kind == "user_order"]
    assert len(user_orders) == 1 and user_orders[0].order is gtt and user_orders[0].user_id == "alice"
    assert ex.markets[T].engine.levels()[0] == [(5500, 5_00)]

    clock.advance_us(45 * SECOND)  # past bob's expiry
    assert ex.expire_orders(clock.now_us()) == 1
    assert other.status is OrderStatus.CANCELED and ex.accounts["bob"].reserved == 0
    assert gtc.status is OrderStatus.RESTING
    ex.cancel_order("alice", gtc.order_id)
    assert ex.accounts["alice"].reserved == 0


def test_a_filled_or_cancelled_order_does_not_expire_again() -> None:
    ex, clock = make_exchange()
    filled = ex.create_order("alice", NewOrder(T, BID, 5600, 1_00, expiration_s=NOW_S + 10))
    ex.create_order("bob", NewOrder(T, ASK, 5600, 1_00))
    cancelled = ex.create_order("alice", NewOrder(T, BID, 5000, 1_00, expiration_s=NOW_S + 10))
    ex.cancel_order("alice", cancelled.order_id)
    assert filled.status is OrderStatus.EXECUTED
    clock.advance_us(20 * SECOND)
    assert ex.expire_orders(clock.now_us()) == 0
    assert filled.status is OrderStatus.EXECUTED and ex.accounts["alice"].reserved == 0


def test_the_market_loop_expires_orders_each_step() -> None:
    start = datetime_to_us(datetime(2026, 8, 13, 20, 30, tzinfo=UTC))
    clock = SimulatedClock(start)
    state = build_state(clock, auth_clock=SimulatedClock(start))
    loop = MarketLoop(state, Schedule(strikes=3), Underlying(UnderlyingConfig(), 7, start), crowd=None)
    loop.step()
    exchange = state.exchange
    ticker = next(t for t, m in exchange.markets.items() if m.status == "active")
    exchange.open_account("mm", 1000 * DOLLAR)
    expiry_s = start // SECOND + 5
    gtt = exchange.create_order("mm", NewOrder(ticker, BID, 100, 1_00, expiration_s=expiry_s))
    gtc = exchange.create_order("mm", NewOrder(ticker, BID, 100, 1_00))
    for _ in range(4):
        clock.advance_us(SECOND)
        loop.step()
    assert gtt.status is OrderStatus.RESTING
    clock.advance_us(SECOND)
    loop.step()
    assert gtt.status is OrderStatus.CANCELED and gtc.status is OrderStatus.RESTING
    assert exchange.accounts["mm"].reserved == 100 * 100  # 1 contract at $0.01, the GTC order only
