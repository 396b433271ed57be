"""The simulated exchange's state machine: orders, collateral, fills, fees, lifecycle, settlement."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mm.clock import SimulatedClock
from mm.domain.ticks import TickGrid
from mm.sim.exchange import Exchange, NewOrder, SimApiError
from mm.sim.types import BookSide, OrderStatus, SelfTradePrevention, TimeInForce

BID, ASK = BookSide.BID, BookSide.ASK
DOLLAR = 1_000_000  # micro-dollars
T = "KXBTCD-26AUG1317-T73249.99"
OPEN_US = 1_786_000_000_000_000
CLOSE_US = OPEN_US + 3600 * 1_000_000


def make_exchange(balance: int = 1000 * DOLLAR, users: tuple[str, ...] = ("alice", "bob", "carol")) -> Exchange:
    clock = SimulatedClock(OPEN_US + 1_000_000)
    ex = Exchange(clock)
    for user in users:
        ex.open_account(user, balance)
    ex.add_market(T, "KXBTCD-26AUG1317", "KXBTCD", TickGrid.linear_cent(), OPEN_US, CLOSE_US)
    return ex


def order(side: BookSide, price: int, contracts: int, **kw: object) -> NewOrder:
    return NewOrder(T, side, price, contracts * 100, **kw)  # type: ignore[arg-type]


def test_a_resting_order_reserves_its_cost_and_a_cancel_releases_it() -> None:
    ex = make_exchange()
    o = ex.create_order("alice", order(BID, 5600, 10))
    assert o.status is OrderStatus.RESTING
    assert ex.accounts["alice"].reserved == 10 * 5600 * 100  # 10 × $0.56 in micro-dollars
    _, reduced = ex.cancel_order("alice", o.order_id)
    assert reduced == 10_00 and ex.accounts["alice"].reserved == 0


def test_a_cross_books_both_sides_with_taker_fees_only() -> None:
    ex = make_exchange()
    ex.create_order("alice", order(ASK, 5000, 10))  # alice offers YES at 0.50 (buys NO at 0.50)
    taken = ex.create_order("bob", order(BID, 5200, 4))  # bob lifts 4 at the resting 0.50
    assert taken.status is OrderStatus.EXECUTED
    alice, bob = ex.accounts["alice"], ex.accounts["bob"]
    assert bob.positions[T] == 4_00 and alice.positions[T] == -4_00
    # taker fee: 0.07 × 4 × 0.5 × 0.5 = $0.07, ceil to $0.0001 → $0.0700; quadratic makers pay 0
    assert bob.balance == 1000 * DOLLAR - 4 * DOLLAR // 2 - 70_000
    assert alice.balance == 1000 * DOLLAR - 4 * DOLLAR // 2
    assert alice.reserved == 6 * 5000 * 100  # the 6 still resting
    assert [f[2] for f in ex.fills] == [True, False]
    assert ex.markets[T].volume == 4_00 and ex.markets[T].last_price == 5000


def test_duplicate_client_order_id_is_409() -> None:
    ex = make_exchange()
    ex.create_order("alice", order(BID, 4000, 1, client_order_id="mm-1"))
    with pytest.raises(SimApiError) as info:
        ex.create_order("alice", order(BID, 4100, 1, client_order_id="mm-1"))
    assert (info.value.status, info.value.code) == (409, "duplicate_client_order_id")
    ex.create_order("bob", order(BID, 4100, 1, client_order_id="mm-1"))  # per user
    found = ex.order_by_client_id("alice", "mm-1")
    assert found is not None and found.price == 4000


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (order(BID, 5650, 1), "invalid_price"),  # off the cent grid
        (order(BID, 0, 1), "invalid_price"),
        (NewOrder(T, BID, 5000, 0), "invalid_order_size"),
        (order(BID, 9900, 2000), "available_balance_too_low"),  # $1,980 > $1,000
    ],
)
def test_bad_orders_are_refused_like_kalshi(request_: NewOrder, code: str) -> None:
    ex = make_exchange()
    with pytest.raises(SimApiError) as info:
        ex.create_order("alice", request_)
    assert info.value.code == code and info.value.status == 400
    assert ex.accounts["alice"].reserved == 0


def test_closing_orders_fit_even_when_cash_is_short() -> None:
    ex = make_exchange(balance=10 * DOLLAR)
    ex.create_order("alice", order(ASK, 5000, 20))
    ex.create_order("bob", order(BID, 5000, 20))  # bob long 20 YES, $0 left (taker fee aside)
    ex.accounts["bob"].balance = 0
    ex.create_order("bob", order(ASK, 6000, 20))  # selling what he holds needs no new cash


def test_stp_maker_cancel_releases_the_reservation() -> None:
    ex = make_exchange()
    resting = ex.create_order("alice", order(ASK, 5000, 5))
    ex.create_order("alice", order(BID, 5100, 5, stp=SelfTradePrevention.MAKER))
    assert ex.orders[resting.order_id].status is OrderStatus.CANCELED
    assert ex.accounts["alice"].reserved == 5 * 5100 * 100  # only the new bid's reservation


def test_amend_keeps_the_reservation_exact() -> None:
    ex = make_exchange()
    o = ex.create_order("alice", order(BID, 4000, 10))
    ex.amend_order("alice", o.order_id, price=4500, total_count=20_00)
    assert ex.accounts["alice"].reserved == 20 * 4500 * 100
    ex.decrease_order("alice", o.order_id, reduce_to=5_00)
    assert ex.accounts["alice"].reserved == 5 * 4500 * 100


def test_market_lifecycle_and_settlement() -> None:
    ex = make_exchange()
    ex.create_order("alice", order(ASK, 3000, 10))
    ex.create_order("bob", order(BID, 3000, 10, time_in_force=TimeInForce.IMMEDIATE_OR_CANCEL))
    resting = ex.create_order("carol", order(BID, 2000, 5))
    assert isinstance(ex.clock, SimulatedClock)
    ex.clock.set_us(CLOSE_US)
    with pytest.raises(SimApiError, match="MARKET_INACTIVE"):
        ex.create_order("carol", order(BID, 2000, 1))
    assert ex.orders[resting.order_id].status is OrderStatus.CANCELED  # closing cancels resting orders
    assert ex.accounts["carol"].reserved == 0
    ex.determine(T, "yes")
    paid = dict((user, revenue) for user, _, revenue in ex.finalize(T))
    assert paid == {"bob": 10 * DOLLAR, "alice": 0}
    assert ex.markets[T].status == "finalized" and not ex.accounts["bob"].positions


def test_events_are_published_for_the_websocket_layer() -> None:
    ex = make_exchange()
    ex.drain_events()
    ex.create_order("alice", order(ASK, 5000, 2))
    ex.create_order("bob", order(BID, 5000, 2))
    kinds = [e.kind for e in ex.drain_events()]
    assert kinds.count("fill") == 2 and kinds.count("trade") == 1 and "book" in kinds and "user_order" in kinds
    assert ex.drain_events() == []


ops = st.lists(
    st.tuples(
        st.sampled_from(["alice", "bob", "carol"]),
        st.sampled_from([BID, ASK]),
        st.integers(1, 99),
        st.integers(1, 30),
        st.booleans(),
    ),
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(ops)
def test_conservation_and_exact_reservations(operations: list[tuple[str, BookSide, int, int, bool]]) -> None:
    ex = make_exchange()
    start = sum(a.balance for a in ex.accounts.values())
    placed = []
    for user, side, cents, contracts, cancel_one in operations:
        try:
            placed.append(ex.create_order(user, order(side, cents * 100, contracts)))
        except SimApiError as exc:  # on-grid, positive orders can only fail for want of cash
            assert exc.code == "available_balance_too_low"
        if cancel_one and placed and placed[0].status is OrderStatus.RESTING:
            victim = placed.pop(0)
            ex.cancel_order(victim.user_id, victim.order_id)
    yes = sum(max(a.positions.get(T, 0), 0) for a in ex.accounts.values())
    no = sum(max(-a.positions.get(T, 0), 0) for a in ex.accounts.values())
    assert yes == no
    fees = sum(f[3] for f in ex.fills)
    assert sum(a.balance for a in ex.accounts.values()) + yes * DOLLAR // 100 + fees == start
    for account in ex.accounts.values():
        resting = [o for o in ex.user_orders(account.user_id) if o.status is OrderStatus.RESTING]
        assert account.reserved == sum(
            (o.price if o.side is BID else 10_000 - o.price) * o.remaining_count for o in resting
        )
        assert account.available >= 0
    assert Decimal(ex.markets[T].volume) == Decimal(sum(f[1].count for f in ex.fills if f[2]))
