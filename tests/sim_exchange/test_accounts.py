"""Simulated accounts: Kalshi's net, fully collateralised positions, exact to $0.0001."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mm.sim.accounts import Account, order_cost_micros
from mm.sim.types import BookSide

BID, ASK = BookSide.BID, BookSide.ASK
DOLLAR = 1_000_000  # micro-dollars
CENT = DOLLAR // 100
T = "KXBTCD-26AUG1317-T73249.99"


def test_opening_and_closing_a_yes_position() -> None:
    a = Account("a", balance=100 * DOLLAR)
    a.apply_fill(T, BID, price=5600, count=10_00, fee=0)  # buy 10 YES at 0.56
    assert (a.balance, a.positions[T], a.cost_basis[T]) == (100 * DOLLAR - 560 * CENT, 10_00, 560 * CENT)
    a.apply_fill(T, ASK, price=6000, count=10_00, fee=0)  # sell them at 0.60
    assert a.balance == 100 * DOLLAR + 40 * CENT
    assert a.positions[T] == 0 and a.cost_basis[T] == 0 and a.realized_pnl[T] == 40 * CENT


def test_selling_yes_while_flat_opens_no_at_one_minus_p() -> None:
    a = Account("a", balance=10 * DOLLAR)
    a.apply_fill(T, ASK, price=5600, count=10_00, fee=0)
    assert a.positions[T] == -10_00 and a.balance == 10 * DOLLAR - 440 * CENT  # 10 × $0.44 locked


def test_buying_yes_while_holding_no_closes_the_pair() -> None:
    a = Account("a", balance=10 * DOLLAR)
    a.apply_fill(T, ASK, price=5600, count=10_00, fee=0)  # long 10 NO at 0.44
    a.apply_fill(T, BID, price=5000, count=4_00, fee=0)  # buy 4 YES at 0.50: closes 4 NO, pair pays $1
    assert a.positions[T] == -6_00
    assert a.balance == 10 * DOLLAR - 440 * CENT + 4 * 50 * CENT  # each closed pair returns 1 − 0.50
    assert a.realized_pnl[T] == 4 * (50 - 44) * CENT  # sold NO at 0.50 having paid 0.44


def test_an_order_crossing_through_zero_closes_then_opens() -> None:
    a = Account("a", balance=10 * DOLLAR)
    a.apply_fill(T, BID, price=4000, count=3_00, fee=0)  # long 3 YES, paid 1.20
    a.apply_fill(T, ASK, price=4500, count=5_00, fee=0)  # sell 5: closes 3 (+1.35), opens 2 NO (−1.10)
    assert a.positions[T] == -2_00
    assert a.balance == 10 * DOLLAR - 120 * CENT + 135 * CENT - 110 * CENT


def test_fees_are_paid_in_cash_and_tracked() -> None:
    a = Account("a", balance=DOLLAR)
    a.apply_fill(T, BID, price=5000, count=1_00, fee=17_500)
    assert a.balance == DOLLAR - 50 * CENT - 17_500 and a.fees_paid[T] == 17_500


def test_settlement_pays_a_dollar_per_winning_contract() -> None:
    yes, no = Account("y", balance=DOLLAR * 10), Account("n", balance=DOLLAR * 10)
    yes.apply_fill(T, BID, 3000, 5_00, 0)
    no.apply_fill(T, ASK, 3000, 5_00, 0)
    assert yes.settle(T, yes_value=10_000) == (5_00, 5 * DOLLAR)
    assert no.settle(T, yes_value=10_000) == (-5_00, 0)
    assert yes.balance + no.balance == 20 * DOLLAR  # the pair's $5 went to the winner
    assert T not in yes.positions and yes.realized_pnl[T] == 5 * DOLLAR - 150 * CENT


def test_order_cost_is_exact_in_micro_dollars() -> None:
    assert order_cost_micros(BID, 5600, 10_00) == 560 * CENT
    assert order_cost_micros(ASK, 5600, 10_00) == 440 * CENT
    assert order_cost_micros(BID, 1, 1) == 1  # $0.0001 × 0.01 contract = $0.000001, not rounded away


trades = st.lists(
    st.tuples(st.integers(0, 2), st.integers(0, 2), st.integers(1, 9999), st.integers(1, 5000), st.integers(0, 300)),
    max_size=60,
)


@given(trades)
def test_conservation_yes_held_equals_no_held_and_cash_plus_pairs_is_constant(
    fills: list[tuple[int, int, int, int, int]],
) -> None:
    accounts = [Account(str(i), balance=1_000_000 * DOLLAR) for i in range(3)]
    start = sum(a.balance for a in accounts)
    fees = 0
    for buyer, seller, price, count, fee in fills:
        if buyer == seller:
            continue
        accounts[buyer].apply_fill(T, BID, price, count, fee)
        accounts[seller].apply_fill(T, ASK, price, count, 0)
        fees += fee
    yes_held = sum(max(a.positions.get(T, 0), 0) for a in accounts)
    no_held = sum(max(-a.positions.get(T, 0), 0) for a in accounts)
    assert yes_held == no_held
    # Every open YES/NO pair holds exactly $1 of the accounts' cash; only fees leave the system.
    assert sum(a.balance for a in accounts) + yes_held * DOLLAR // 100 == start - fees
