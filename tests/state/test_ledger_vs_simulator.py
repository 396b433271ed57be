"""The ledger against the simulator's ground truth: the fills one account gets from the in-process exchange,
run through the ledger, give that account's balance, position, cost basis, fees and realized PnL exactly
(micro-dollars), through a settlement. Both charge fees through ``mm.domain.fees``; the ledger is driven
once with the formula (paper) and once with the venue's reported fee (live)."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mm.clock import SimulatedClock
from mm.domain.fees import FeeRounding, FeeSchedule
from mm.domain.orders import Fill
from mm.domain.price import Price, Quantity
from mm.domain.sides import OrderSide, Side
from mm.domain.ticks import TickGrid
from mm.sim.exchange import Exchange, NewOrder, SimApiError
from mm.sim.types import BookSide, TimeInForce
from mm.state.ledger import FeeSource, Ledger

BID, ASK = BookSide.BID, BookSide.ASK
DOLLAR = 1_000_000  # micro-dollars
T = "KXBTCD-26AUG1317-T73249.99"
OPEN_US = 1_786_000_000_000_000
CLOSE_US = OPEN_US + 3600 * 1_000_000
START = 200 * DOLLAR
FEE_TYPE = "quadratic_with_maker_fees"  # makers pay too, so both fee paths are exercised
MULTIPLIER = Decimal("0.5")

# (user, side, YES price in cents, count in 1/100 contract, immediate-or-cancel)
Step = tuple[str, BookSide, int, int, bool]


def run_exchange(steps: list[Step], rounding: FeeRounding) -> Exchange:
    ex = Exchange(SimulatedClock(OPEN_US + 1_000_000), fee_rounding=rounding)
    for user in ("alice", "bob"):
        ex.open_account(user, START)
    ex.add_market(
        T, "KXBTCD-26AUG1317", "KXBTCD", TickGrid.linear_cent(), OPEN_US, CLOSE_US,
        fee_type=FEE_TYPE, fee_multiplier=MULTIPLIER,
    )  # fmt: skip
    for user, side, cents, count, ioc in steps:
        tif = TimeInForce.IMMEDIATE_OR_CANCEL if ioc else TimeInForce.GOOD_TILL_CANCELED
        try:
            ex.create_order(user, NewOrder(T, side, cents * 100, count, time_in_force=tif))
        except SimApiError as exc:
            assert exc.code == "available_balance_too_low"  # the only refusal these orders can meet
        ex.clock.advance_us(1_000_000)  # type: ignore[attr-defined]
    return ex


def fills_of(ex: Exchange, user: str, *, venue_fee: bool) -> list[Fill]:
    """The user's fills as an adapter would deliver them; asks alternate between 'sell YES' and 'buy NO'."""
    out = []
    for k, (owner, trade, taker, fee_micros) in enumerate(ex.fills):
        if owner != user:
            continue
        side = trade.taker_side if taker else (ASK if trade.taker_side is BID else BID)
        if side is BID:
            contract, action, price = Side.YES, OrderSide.BUY, trade.price
        elif k % 2:
            contract, action, price = Side.YES, OrderSide.SELL, trade.price
        else:
            contract, action, price = Side.NO, OrderSide.BUY, 10_000 - trade.price
        out.append(
            Fill(
                fill_id=f"{trade.trade_id}:{user}",
                order_id=trade.taker_order_id if taker else trade.maker_order_id,
                client_order_id=None,
                market_id=T,
                side=contract,
                order_side=action,
                price=Price(price),
                quantity=Quantity(trade.count),
                fee=Decimal(fee_micros).scaleb(-6) if venue_fee else Decimal(0),
                is_taker=taker,
                timestamp_us=trade.ts_us,
            )
        )
    return out


def assert_matches(ex: Exchange, user: str, lg: Ledger) -> None:
    account = ex.accounts[user]
    m = lg.market(T)
    assert lg.cash_micros == account.balance
    assert m.net_units == account.positions.get(T, 0)
    assert m.cost_basis_micros == account.cost_basis.get(T, 0)
    assert m.fees.trading_micros == account.fees_paid.get(T, 0)
    assert m.realized_micros - m.fees.total_micros == account.realized_pnl.get(T, 0)


def book(fills: list[Fill], source: FeeSource, rounding: FeeRounding) -> Ledger:
    """Run fills through a fresh ledger, restoring it from a snapshot halfway (a checkpoint mid-session)."""
    fees = FeeSchedule(FEE_TYPE, MULTIPLIER, rounding)
    lg = Ledger(fee_source=source, fees=fees, cash_micros=START)
    half = len(fills) // 2
    for f in fills[:half]:
        assert lg.apply_fill(f)
    lg = Ledger.from_snapshot(lg.snapshot(), fee_source=source, fees=fees)
    for f in fills[half:]:
        assert lg.apply_fill(f)
    return lg


def check(steps: list[Step], rounding: FeeRounding, result: Literal["yes", "no"]) -> int:
    """Compare both users' ledgers (formula and venue fees) with the simulator, then settle; returns fills seen."""
    ex = run_exchange(steps, rounding)
    users = ("alice", "bob")
    sources: tuple[FeeSource, ...] = ("formula", "venue")
    ledgers = {(u, s): book(fills_of(ex, u, venue_fee=s == "venue"), s, rounding) for u in users for s in sources}
    for (user, _), lg in ledgers.items():
        assert_matches(ex, user, lg)
    ex.clock.set_us(CLOSE_US)  # type: ignore[attr-defined]
    ex.refresh_status(T)
    ex.determine(T, result)
    ex.finalize(T)
    value = 10_000 if result == "yes" else 0
    for (user, _), lg in ledgers.items():
        lg.apply_settlement(T, value, CLOSE_US)
        assert_matches(ex, user, lg)
        assert lg.market(T).net_units == 0 and lg.market(T).unrealized_micros == 0
    return sum(1 for owner, *_ in ex.fills if owner == "alice")


def test_a_scripted_session_matches_the_simulator_to_the_micro_dollar() -> None:
    steps: list[Step] = [
        ("alice", ASK, 55, 10_00, False),  # alice offers YES at 0.55 (buys NO at 0.45)
        ("bob", BID, 56, 4_00, False),  # bob lifts 4: alice long 4 NO (maker), bob long 4 YES (taker)
        ("bob", BID, 50, 3_00, False),  # bob bids 0.50 for 3
        ("alice", ASK, 49, 5_00, True),  # alice sells 3 YES at 0.50 into it (opens 3 more NO); IOC rest dies
        ("bob", BID, 57, 8_50, False),  # bob takes alice's remaining 6 at 0.55, rests 2.5 at 0.57
        ("alice", ASK, 57, 2_50, False),  # alice hits it: 2.5 more NO
        ("alice", BID, 40, 20_00, False),  # alice bids 0.40 for 20 (would close NO)
        ("bob", ASK, 39, 7_25, True),  # bob sells 7.25 YES at 0.40: closes his YES
    ]
    assert check(steps, "per_fill_centicent", "no") > 0
    assert check(steps, "per_order_cent", "yes") > 0


step = st.tuples(
    st.sampled_from(["alice", "bob"]),
    st.sampled_from([BID, ASK]),
    st.integers(1, 99),
    st.integers(1, 2_500),
    st.booleans(),
)


@pytest.mark.parametrize("rounding", ["per_fill_centicent", "per_order_cent"])
@settings(max_examples=60, deadline=None)
@given(steps=st.lists(step, min_size=2, max_size=30), result=st.sampled_from(["yes", "no"]))
def test_random_sessions_match_the_simulator(
    steps: list[Step], result: Literal["yes", "no"], rounding: FeeRounding
) -> None:
    check(steps, rounding, result)
