"""The position and PnL ledger: hand-worked positions, average cost, fees (kalshi-api.md §10), settlement,
marks, windows, drawdown, snapshots, and a conservation property over random fill sequences."""

from __future__ import annotations

import calendar
import itertools
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mm.domain.events import Settlement
from mm.domain.fees import FeeRounding, FeeSchedule
from mm.domain.orders import Fill
from mm.domain.portfolio import Position
from mm.domain.price import Price, Quantity
from mm.domain.sides import OrderSide, Side
from mm.state.ledger import Ledger, LedgerError, micros_to_units

YES, NO = Side.YES, Side.NO
BUY, SELL = OrderSide.BUY, OrderSide.SELL
DOLLAR = 1_000_000  # micro-dollars
CENT = DOLLAR // 100
M = "KXBTCD-26AUG1317-T73249.99"
# 2026-08-13 21:00:00 UTC, a whole UTC hour, computed independently of the code under test.
T0 = calendar.timegm((2026, 8, 13, 21, 0, 0)) * 1_000_000
MINUTE = 60_000_000
HOUR = 60 * MINUTE

_ids = itertools.count(1)


def fill(
    side: Side,
    order_side: OrderSide,
    price: str,
    contracts: str,
    *,
    taker: bool = False,
    ts: int = T0,
    fee: str = "0",
    order_id: str | None = None,
    market: str = M,
) -> Fill:
    n = next(_ids)
    return Fill(
        fill_id=f"fill-{n}",
        order_id=order_id or f"order-{n}",
        client_order_id=None,
        market_id=market,
        side=side,
        order_side=order_side,
        price=Price.from_decimal(price),
        quantity=Quantity.from_decimal(contracts),
        fee=Decimal(fee),
        is_taker=taker,
        timestamp_us=ts,
    )


def ledger(rounding: FeeRounding = "per_fill_centicent", fee_type: str = "quadratic", cash: int = 0) -> Ledger:
    return Ledger(fee_source="formula", fees=FeeSchedule(fee_type, Decimal(1), rounding), cash_micros=cash)


# ---------------------------------------------------------------------------------------------- fees


@pytest.mark.parametrize(
    ("rounding", "expected"),
    [("per_order_cent", 18 * CENT), ("per_fill_centicent", 175_000)],  # $0.175 exact → $0.18 / $0.1750
)
def test_ten_contracts_at_fifty_cents_taker_fee(rounding: FeeRounding, expected: int) -> None:
    lg = ledger(rounding, cash=100 * DOLLAR)
    lg.apply_fill(fill(YES, BUY, "0.50", "10", taker=True))
    m = lg.market(M)
    assert m.fees.trading_micros == expected
    assert lg.cash_micros == 100 * DOLLAR - 5 * DOLLAR - expected
    assert m.net_micros == -expected and m.gross_micros == 0


def test_makers_pay_nothing_on_quadratic_series_and_a_quarter_rate_with_maker_fees() -> None:
    lg = ledger()
    lg.apply_fill(fill(YES, BUY, "0.50", "10", taker=False))
    assert lg.market(M).fees.trading_micros == 0
    lg2 = ledger(fee_type="quadratic_with_maker_fees")
    lg2.apply_fill(fill(YES, BUY, "0.50", "10", taker=False))
    assert lg2.market(M).fees.trading_micros == 43_800  # 0.0175 × 10 × 0.25 = $0.04375 → $0.0438


def test_per_order_cent_rounding_ceils_the_order_total_across_its_fills() -> None:
    lg = ledger("per_order_cent")
    lg.apply_fill(fill(YES, BUY, "0.50", "3", taker=True, order_id="o-1"))
    assert lg.market(M).fees.trading_micros == 6 * CENT  # $0.0525 → $0.06
    lg.apply_fill(fill(YES, BUY, "0.50", "7", taker=True, order_id="o-1"))
    assert lg.market(M).fees.trading_micros == 18 * CENT  # $0.175 in all → $0.18, not $0.06 + $0.13
    lg.apply_fill(fill(YES, BUY, "0.50", "7", taker=True, order_id="o-2"))
    assert lg.market(M).fees.trading_micros == 18 * CENT + 13 * CENT  # a new order: $0.1225 → $0.13


def test_no_price_fees_equal_yes_price_fees() -> None:
    a, b = ledger(), ledger()
    a.apply_fill(fill(YES, BUY, "0.30", "10", taker=True))
    b.apply_fill(fill(NO, BUY, "0.70", "10", taker=True))
    assert a.market(M).fees.trading_micros == b.market(M).fees.trading_micros == 147_000  # 0.07·10·0.21


def test_venue_fee_source_books_the_reported_fee_and_formula_ignores_it() -> None:
    venue = Ledger(fee_source="venue")
    formula = ledger()
    f = fill(YES, BUY, "0.50", "10", taker=True, fee="0.0123")
    venue.apply_fill(f)
    formula.apply_fill(f)
    assert venue.market(M).fees.trading_micros == 12_300
    assert formula.market(M).fees.trading_micros == 175_000
    with pytest.raises(LedgerError, match="finer"):
        Ledger(fee_source="venue").apply_fill(fill(YES, BUY, "0.50", "1", fee="0.0000001"))


def test_per_market_fee_terms_and_source() -> None:
    lg = ledger()
    lg.configure_market("OTHER", fees=FeeSchedule("quadratic", Decimal("0.5")))
    lg.apply_fill(fill(YES, BUY, "0.50", "10", taker=True, market="OTHER"))
    lg.apply_fill(fill(YES, BUY, "0.50", "10", taker=True))
    assert lg.market("OTHER").fees.trading_micros == 87_500  # M = 0.5
    assert lg.market(M).fees.trading_micros == 175_000
    lg.configure_market(M, fee_source="venue")
    lg.apply_fill(fill(YES, BUY, "0.50", "10", taker=True, fee="0.01"))
    assert lg.market(M).fees.trading_micros == 175_000 + CENT


# ---------------------------------------------------------------------------------------------- netting


def test_no_buys_net_against_yes_at_average_cost() -> None:
    lg = ledger(cash=100 * DOLLAR)
    lg.apply_fill(fill(YES, BUY, "0.40", "10"))  # long 10 YES, basis $4.00
    lg.apply_fill(fill(YES, BUY, "0.46", "5"))  # long 15 YES, basis $6.30, avg $0.42
    m = lg.market(M)
    assert (m.net_units, m.cost_basis_micros) == (15_00, 630 * CENT)
    assert m.avg_entry_price_units == 4200
    # Buy 6 NO at 0.55 = sell 6 YES at 0.45: closes 6 YES, releasing $2.70, retiring 6 × $0.42 = $2.52.
    lg.apply_fill(fill(NO, BUY, "0.55", "6"))
    m = lg.market(M)
    assert (m.net_units, m.cost_basis_micros, m.realized_micros) == (9_00, 378 * CENT, 18 * CENT)
    assert lg.cash_micros == 100 * DOLLAR - 630 * CENT + 270 * CENT
    pos = lg.position(M)
    assert (pos.yes, pos.no, pos.avg_yes_price, pos.avg_no_price) == (
        Quantity.contracts(9),
        Quantity(0),
        Decimal("0.42"),
        None,
    )


def test_a_fill_larger_than_the_holding_flips_to_the_other_side() -> None:
    lg = ledger(cash=100 * DOLLAR)
    lg.apply_fill(fill(YES, BUY, "0.40", "6"))  # basis $2.40
    lg.apply_fill(fill(NO, BUY, "0.50", "10"))  # closes 6 YES at YES 0.50 (+$3.00), opens 4 NO at 0.50 ($2.00)
    m = lg.market(M)
    assert (m.net_units, m.cost_basis_micros, m.realized_micros) == (-4_00, 200 * CENT, 60 * CENT)
    assert lg.cash_micros == 100 * DOLLAR - 240 * CENT + 300 * CENT - 200 * CENT
    pos = lg.position(M)
    assert (pos.yes, pos.no, pos.avg_no_price) == (Quantity(0), Quantity.contracts(4), Decimal("0.5"))
    # Sell the 4 NO at 0.70 (= buy YES at 0.30): each pair returns 1 − 0.30; paid 0.50 each.
    lg.apply_fill(fill(NO, SELL, "0.70", "4"))
    m = lg.market(M)
    assert (m.net_units, m.cost_basis_micros, m.realized_micros) == (0, 0, 60 * CENT + 80 * CENT)
    assert lg.cash_micros == 100 * DOLLAR + 140 * CENT
    assert lg.positions() == []


def test_selling_yes_while_flat_opens_no() -> None:
    lg = ledger(cash=10 * DOLLAR)
    lg.apply_fill(fill(YES, SELL, "0.56", "10"))
    m = lg.market(M)
    assert (m.net_units, m.cost_basis_micros) == (-10_00, 440 * CENT)
    assert lg.cash_micros == 10 * DOLLAR - 440 * CENT


def test_fractional_contracts_at_deci_cent_prices_are_exact() -> None:
    lg = ledger(cash=DOLLAR)
    lg.apply_fill(fill(YES, BUY, "0.5555", "0.01"))  # $0.005555
    lg.apply_fill(fill(YES, BUY, "0.5556", "0.02"))  # $0.011112
    m = lg.market(M)
    assert m.cost_basis_micros == 5_555 + 11_112
    lg.apply_fill(fill(YES, SELL, "0.6000", "0.01"))  # retires 16_667 // 3 = 5_555 (floor, like the simulator)
    m = lg.market(M)
    assert (m.cost_basis_micros, m.realized_micros) == (16_667 - 5_555, 6_000 - 5_555)


# ---------------------------------------------------------------------------------------------- marks


def test_unrealized_is_marked_to_mid_including_half_units() -> None:
    lg = ledger()
    lg.apply_fill(fill(YES, BUY, "0.40", "10"))
    assert lg.market(M).unrealized_micros == 0  # unmarked: valued at cost
    lg.mark(M, 4500, T0 + 1)
    assert lg.market(M).unrealized_micros == 50 * CENT
    lg.mark(M, Decimal("0.45005"), T0 + 2)  # a mid between two $0.0001 units
    assert lg.market(M).unrealized_micros == 50 * CENT + 500  # 10 × $0.00005
    lg.apply_fill(fill(NO, BUY, "0.50", "14"))  # now 4 NO at 0.50
    lg.mark(M, 4500, T0 + 3)
    m = lg.market(M)
    assert m.net_units == -4_00 and m.unrealized_micros == 4 * (55 - 50) * CENT
    s = lg.summary()
    assert s.gross_micros == m.realized_micros + m.unrealized_micros
    assert s.net_micros == s.gross_micros - s.fees.total_micros
    with pytest.raises(LedgerError):
        lg.mark(M, Decimal("0.450001"), T0 + 4)
    with pytest.raises(LedgerError):
        lg.mark(M, 10_001, T0 + 4)


# ---------------------------------------------------------------------------------------------- settlement


def test_settlement_yes_pays_winners_a_dollar_and_clears_the_position() -> None:
    lg = ledger(cash=100 * DOLLAR)
    lg.apply_fill(fill(YES, BUY, "0.40", "10", taker=True))  # fee 0.07·10·0.24 = $0.168
    lg.mark(M, 9000, T0 + 1)
    paid = lg.apply_settlement(M, 10_000, T0 + HOUR)
    m = lg.market(M)
    assert paid == 10 * DOLLAR
    assert (m.net_units, m.cost_basis_micros, m.unrealized_micros) == (0, 0, 0)
    assert m.realized_micros == 6 * DOLLAR
    assert m.fees.trading_micros == 168_000 and m.fees.settlement_micros == 0
    assert m.net_micros == 6 * DOLLAR - 168_000
    assert lg.cash_micros == 100 * DOLLAR - 4 * DOLLAR - 168_000 + 10 * DOLLAR


def test_settlement_no_pays_no_holders_and_yes_holders_lose_their_cost() -> None:
    lg = ledger(cash=100 * DOLLAR)
    lg.apply_fill(fill(NO, BUY, "0.30", "5", market="A"))
    lg.apply_fill(fill(YES, BUY, "0.70", "5", market="B"))
    assert lg.apply_settlement("A", 0, T0 + HOUR) == 5 * DOLLAR
    assert lg.apply_settlement("B", 0, T0 + HOUR) == 0
    assert lg.market("A").realized_micros == 350 * CENT
    assert lg.market("B").realized_micros == -350 * CENT
    assert lg.summary().realized_micros == 0
    assert lg.cash_micros == 100 * DOLLAR


def test_a_venue_settlement_with_a_fee_books_a_settlement_fee() -> None:
    lg = ledger(cash=10 * DOLLAR)
    lg.apply_fill(fill(YES, BUY, "0.40", "3"))
    event = Settlement(
        market_id=M,
        result="scalar",
        yes_count=Quantity.contracts(3),
        no_count=Quantity(0),
        yes_total_cost=Decimal("1.20"),
        no_total_cost=Decimal(0),
        revenue=Decimal("1.66"),
        value_per_yes=Decimal("0.5555"),
        fee=Decimal("0.006500"),  # the floored sub-cent part of 3 × 0.5555 = 1.6665
        settled_us=T0 + HOUR,
    )
    assert lg.apply_settlement_event(event) == 1_666_500
    m = lg.market(M)
    assert m.fees.settlement_micros == 6_500 and m.fees.trading_micros == 0
    assert m.realized_micros == 1_666_500 - 1_200_000
    assert lg.cash_micros == 10 * DOLLAR - 1_200_000 + 1_660_000


def test_other_fees_to_a_market_or_the_account() -> None:
    lg = ledger(cash=DOLLAR)
    lg.apply_other_fee(5_000, T0, market_id=M)
    lg.apply_other_fee(2_000, T0)
    assert lg.market(M).fees.other_micros == 5_000
    s = lg.summary()
    assert (s.fees.other_micros, s.fees.total_micros, s.net_micros) == (7_000, 7_000, -7_000)
    assert lg.cash_micros == DOLLAR - 7_000


# ---------------------------------------------------------------------------------------------- windows, drawdown


def test_hourly_and_daily_windows_are_utc_buckets_of_event_times() -> None:
    lg = ledger()
    lg.apply_fill(fill(YES, BUY, "0.40", "10", ts=T0 + 5 * MINUTE))
    lg.mark(M, 4500, T0 + 10 * MINUTE)  # +$0.50 in hour 21
    lg.mark(M, 4300, T0 + HOUR + MINUTE)  # −$0.20 in hour 22
    assert lg.market(M, T0 + HOUR + 2 * MINUTE).hourly_net_micros == -20 * CENT
    assert lg.market(M, T0 + 2 * HOUR).hourly_net_micros == 0  # nothing yet in hour 23
    assert lg.summary(T0 + HOUR + 2 * MINUTE).daily_net_micros == 30 * CENT
    lg.apply_fill(fill(YES, SELL, "0.44", "10", taker=True, ts=T0 + 3 * HOUR))  # next UTC day (00:00)
    hours = lg.hourly_history(M)
    assert [(w.start_us, w.net_pnl_micros) for w in hours] == [(T0, 50 * CENT), (T0 + HOUR, -20 * CENT)]
    assert lg.hourly_history() == hours  # one market: the aggregate is the same
    days = lg.daily_history()
    assert [(w.start_us, w.net_pnl_micros) for w in days] == [(T0 - 21 * HOUR, 30 * CENT)]
    fee = 172_500  # 0.07 × 10 × 0.44 × 0.56 = $0.17248, ceiled to $0.1725
    assert lg.summary(T0 + 3 * HOUR).daily_net_micros == 10 * CENT - fee
    assert lg.summary(T0 + 3 * HOUR).hourly_net_micros == 10 * CENT - fee
    assert lg.market(M).realized_micros == 40 * CENT


def test_drawdown_from_the_running_peak_of_net_pnl() -> None:
    lg = ledger()
    lg.apply_fill(fill(YES, BUY, "0.40", "10"))
    lg.mark(M, 4800, T0 + 1)
    lg.mark(M, 4100, T0 + 2)
    m = lg.market(M)
    assert (m.peak_net_micros, m.drawdown_micros) == (80 * CENT, 70 * CENT)
    assert lg.summary().drawdown_micros == 70 * CENT
    lg.mark(M, 5000, T0 + 3)
    assert lg.market(M).drawdown_micros == 0 and lg.summary().peak_net_micros == DOLLAR
    assert micros_to_units(-70 * CENT - 1) == -7001  # risk units round losses outward


# ---------------------------------------------------------------------------------------------- idempotency, snapshots


def test_a_duplicate_fill_id_is_booked_once() -> None:
    lg = ledger(cash=DOLLAR)
    f = fill(YES, BUY, "0.40", "1", taker=True)
    assert lg.apply_fill(f) is True
    assert lg.apply_fill(f) is False
    assert lg.market(M).net_units == 1_00 and lg.cash_micros == DOLLAR - 40 * CENT - 16_800


def test_snapshot_round_trip_continues_exactly() -> None:
    lg = ledger("per_order_cent", cash=50 * DOLLAR)
    lg.configure_market("B", fees=FeeSchedule("quadratic_with_maker_fees", Decimal("0.5"), "per_fill_centicent"))
    lg.apply_fill(fill(YES, BUY, "0.40", "3", taker=True, order_id="o-1", ts=T0))
    lg.apply_fill(fill(NO, BUY, "0.30", "2", market="B", ts=T0 + MINUTE))
    lg.mark(M, 4500, T0 + 2 * MINUTE)
    lg.apply_other_fee(1_000, T0 + 3 * MINUTE)
    restored = Ledger.from_snapshot(lg.snapshot(), fee_source="formula")
    assert restored.snapshot() == lg.snapshot()
    later = [
        fill(YES, BUY, "0.40", "7", taker=True, order_id="o-1", ts=T0 + HOUR),  # same order: cent accumulator
        fill(YES, SELL, "0.70", "2", taker=False, market="B", ts=T0 + HOUR),
    ]
    for f in later:
        lg.apply_fill(f)
        restored.apply_fill(f)
    assert restored.snapshot() == lg.snapshot()
    assert restored.summary() == lg.summary()
    assert restored.market(M).fees.trading_micros == 17 * CENT  # 0.07 × 10 × 0.24 = $0.168 → $0.17 per order
    assert restored.apply_fill(later[0]) is False  # the restored ledger remembers booked fill ids


# ---------------------------------------------------------------------------------------------- properties

fills_strategy = st.lists(
    st.tuples(
        st.sampled_from([YES, NO]),
        st.sampled_from([BUY, SELL]),
        st.integers(1, 9_999),  # price, $0.0001
        st.integers(1, 5_000),  # count, 1/100 contract
        st.booleans(),  # taker
        st.integers(0, 3),  # order id (per-order fees)
        st.integers(0, 2 * 86_400),  # seconds after T0
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(
    fills=fills_strategy,
    marks=st.lists(st.integers(0, 10_000), min_size=1, max_size=4),
    rounding=st.sampled_from(["per_order_cent", "per_fill_centicent"]),
    fee_type=st.sampled_from(["quadratic", "quadratic_with_maker_fees", "flat"]),
)
def test_cash_plus_marked_value_is_conserved_and_positions_are_the_sum_of_fills(
    fills: list[tuple[Side, OrderSide, int, int, bool, int, int]],
    marks: list[int],
    rounding: FeeRounding,
    fee_type: str,
) -> None:
    start = 1_000 * DOLLAR
    lg = ledger(rounding, fee_type, cash=start)
    signed: list[tuple[int, int]] = []  # (YES-book price, signed count): + buys YES, − sells YES
    for k, (side, order_side, price, count, taker, order, seconds) in enumerate(fills):
        f = Fill(
            f"f{k}",
            f"o{order}",
            None,
            M,
            side,
            order_side,
            Price(price),
            Quantity(count),
            Decimal(0),
            taker,
            T0 + seconds * 1_000_000,
        )
        assert lg.apply_fill(f)
        yes_price = price if side is YES else 10_000 - price
        buys_yes = (side is YES) == (order_side is BUY)
        signed.append((yes_price, count if buys_yes else -count))
    net = sum(c for _, c in signed)
    m = lg.market(M)
    assert m.net_units == net
    fees = m.fees.trading_micros
    assert fees >= 0
    for p in marks:
        # Every fill is a trade worth (p − y)·c at YES price p; cash change + holding value at p must equal it.
        trade_pnl = sum((p - y) * c for y, c in signed)
        value = p * net if net >= 0 else (10_000 - p) * -net
        assert lg.cash_micros - start + value == trade_pnl - fees
        lg.mark(M, p, T0 + 3 * 86_400 * 1_000_000)
        assert lg.market(M).net_micros == trade_pnl - fees == lg.summary().net_micros
    # Settling at 1 or 0 realizes exactly the same identity, with nothing left unrealized.
    v = marks[0] if marks[0] in (0, 10_000) else 10_000
    lg.apply_settlement(M, v, T0 + 4 * 86_400 * 1_000_000)
    trade_pnl = sum((v - y) * c for y, c in signed)
    s = lg.summary()
    assert lg.cash_micros - start == trade_pnl - fees == s.realized_micros - s.fees.total_micros
    assert s.unrealized_micros == 0 and lg.market(M).net_units == 0


@settings(max_examples=100, deadline=None)
@given(
    fills=st.lists(
        st.tuples(st.sampled_from(["A", "B", "C"]), st.booleans(), st.integers(1, 9_999), st.integers(1, 3_000)),
        max_size=30,
    ),
    mark=st.integers(1, 9_999),
)
def test_aggregates_are_the_sum_of_markets(fills: list[tuple[str, bool, int, int]], mark: int) -> None:
    lg = ledger(cash=0)
    for k, (market, buy, price, count) in enumerate(fills):
        lg.apply_fill(
            Fill(
                f"f{k}",
                f"o{k}",
                None,
                market,
                YES,
                BUY if buy else SELL,
                Price(price),
                Quantity(count),
                Decimal(0),
                k % 2 == 0,
                T0 + k * MINUTE,
            )
        )
    for market in lg.market_ids():
        lg.mark(market, mark, T0 + HOUR)
    per_market = [lg.market(market) for market in lg.market_ids()]
    s = lg.summary()
    assert s.realized_micros == sum(m.realized_micros for m in per_market)
    assert s.unrealized_micros == sum(m.unrealized_micros for m in per_market)
    assert s.fees.total_micros == sum(m.fees.total_micros for m in per_market)
    assert s.notional_micros == sum(m.cost_basis_micros for m in per_market)
    assert s.peak_net_micros >= s.net_micros


def test_positions_are_compared_with_the_exchange() -> None:
    lg = ledger()
    lg.apply_fill(fill(YES, BUY, "0.40", "3", market="A"))
    lg.apply_fill(fill(NO, BUY, "0.40", "2", market="B"))
    venue = [
        Position("A", yes=Quantity.contracts(3)),
        Position("B", no=Quantity.contracts(1)),
        Position("C", yes=Quantity.contracts(4)),
    ]
    diffs = lg.diff_positions(venue)
    assert [(d.market_id, d.ledger_units, d.exchange_units, d.difference_units) for d in diffs] == [
        ("B", -2_00, -1_00, 1_00),
        ("C", 0, 4_00, 4_00),
    ]
    assert lg.diff_positions([Position("A", yes=Quantity.contracts(3)), Position("B", no=Quantity.contracts(2))]) == ()


# ---------------------------------------------------------------------------------------------- corrections (FR-1203)


def test_a_fill_marked_seen_is_never_booked() -> None:
    book = ledger()
    f = fill(YES, BUY, "0.40", "5")
    book.mark_fill_seen(f.fill_id)
    assert book.apply_fill(f) is False and book.net_units(M) == 0


def test_correcting_down_keeps_the_average_cost_of_what_is_still_held() -> None:
    book = ledger()
    book.apply_fill(fill(YES, BUY, "0.40", "10"))
    assert book.correct_position(M, 400) == 1000
    held = book.market(M)
    assert held.net_units == 400 and held.cost_basis_micros == 4 * 40 * CENT  # 4 contracts at $0.40


def test_correcting_up_values_the_added_units_at_the_mark() -> None:
    book = ledger()
    book.apply_fill(fill(YES, BUY, "0.40", "2"))
    book.mark(M, Decimal("0.60"), T0)
    book.correct_position(M, 500)
    # 2 at $0.40 plus 3 at the $0.60 mark
    assert book.market(M).cost_basis_micros == 2 * 40 * CENT + 3 * 60 * CENT


def test_correcting_through_zero_prices_the_short_as_no_at_the_mark() -> None:
    book = ledger()
    book.apply_fill(fill(YES, BUY, "0.40", "2"))
    book.mark(M, Decimal("0.70"), T0)
    realized_before = book.market(M).realized_micros
    book.correct_position(M, -300)
    pnl = book.market(M)
    assert pnl.net_units == -300 and pnl.cost_basis_micros == 3 * 30 * CENT  # NO at 1 − 0.70
    assert pnl.realized_micros == realized_before, "a correction is not a trade"
    assert book.correct_position(M, 0) == -300 and book.market(M).cost_basis_micros == 0
