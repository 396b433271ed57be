"""Kalshi fees (kalshi-api.md §10): counts in 1/100 contract, prices and fees in $0.0001 units."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mm.sim.fees import FEE_TYPES, FeeRounding, OrderFeeAccumulator, exact_fee, fee_units

ONE = Decimal(1)
ROUNDINGS: tuple[FeeRounding, ...] = ("per_order_cent", "per_fill_centicent")


def taker(count: int, price: int, rounding: FeeRounding = "per_fill_centicent", multiplier: Decimal = ONE) -> int:
    return fee_units(count, price, taker=True, fee_type="quadratic", multiplier=multiplier, rounding=rounding)


def maker(count: int, price: int, fee_type: str, rounding: FeeRounding = "per_fill_centicent") -> int:
    return fee_units(count, price, taker=False, fee_type=fee_type, multiplier=ONE, rounding=rounding)


def test_ten_contracts_at_fifty_cents_taker() -> None:
    assert exact_fee(1000, 5000, taker=True, fee_type="quadratic", multiplier=ONE) == 1750  # $0.175
    assert taker(1000, 5000, "per_order_cent") == 1800  # $0.18
    assert taker(1000, 5000, "per_fill_centicent") == 1750  # $0.1750


def test_the_maximum_is_one_and_three_quarter_cents_per_contract_at_fifty_cents() -> None:
    assert taker(100, 5000) == 175
    assert max(taker(100, p) for p in range(1, 10_000)) == 175
    assert taker(100, 4000) == taker(100, 6000) == 168  # 0.07 × 0.4 × 0.6 = $0.0168
    assert exact_fee(100, 4900, taker=True, fee_type="quadratic", multiplier=ONE) < 175  # $0.017493, ceils to 175


def test_fees_round_up() -> None:
    # 1 contract at $0.01: 0.07 × 0.01 × 0.99 = $0.000693 → $0.0007, or $0.01 per order.
    assert taker(100, 100) == 7
    assert taker(100, 100, "per_order_cent") == 100
    assert taker(1, 5000) == 2  # 0.01 contract at $0.50: $0.000175 → $0.0002


def test_multiplier_scales_and_zero_waives() -> None:
    assert taker(1000, 5000, multiplier=Decimal("0.5")) == 875
    assert taker(1000, 5000, multiplier=Decimal(0)) == 0
    assert taker(1000, 5000, "per_order_cent", multiplier=Decimal(0)) == 0


def test_maker_fees_by_fee_type() -> None:
    assert maker(1000, 5000, "quadratic") == 0
    assert maker(1000, 5000, "quadratic", "per_order_cent") == 0
    assert maker(1000, 5000, "quadratic_with_maker_fees") == 438  # 0.0175 × 10 × 0.25 = $0.04375
    assert maker(1000, 5000, "quadratic_with_combo_maker_fees") == 875  # half of the taker's $0.175
    assert maker(1000, 5000, "flat") == 875  # 0.035 × 10 × 0.25
    flat_half = fee_units(
        1000, 5000, taker=False, fee_type="flat", multiplier=Decimal("0.5"), rounding="per_fill_centicent"
    )
    assert flat_half == 875  # the reference's flat formula has no multiplier
    # The taker formula does not depend on the series' maker fee type.
    for fee_type in FEE_TYPES:
        taker_fee = fee_units(1000, 5000, taker=True, fee_type=fee_type, multiplier=ONE, rounding="per_fill_centicent")
        assert taker_fee == 1750


def test_invalid_inputs_raise() -> None:
    with pytest.raises(ValueError, match="fee_type"):
        fee_units(100, 5000, taker=True, fee_type="cubic", multiplier=ONE, rounding="per_fill_centicent")
    with pytest.raises(ValueError, match="rounding"):
        fee_units(100, 5000, taker=True, fee_type="quadratic", multiplier=ONE, rounding="nearest")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="multiplier"):
        taker(100, 5000, multiplier=Decimal(-1))
    with pytest.raises(ValueError, match="count"):
        taker(-1, 5000)
    with pytest.raises(ValueError, match="price"):
        taker(100, 10_001)
    with pytest.raises(ValueError, match="fee_type"):
        OrderFeeAccumulator(fee_type="cubic", multiplier=ONE, rounding="per_order_cent")


def test_the_per_order_accumulator_ceils_the_order_total_not_each_fill() -> None:
    acc = OrderFeeAccumulator(fee_type="quadratic", multiplier=ONE, rounding="per_order_cent")
    assert acc.add(300, 5000, taker=True) == 600  # $0.0525 so far → $0.06
    assert acc.add(700, 5000, taker=True) == 1200  # $0.175 in all → $0.18
    assert acc.charged == 1800
    assert taker(300, 5000, "per_order_cent") + taker(700, 5000, "per_order_cent") == 1900  # ceiling per fill
    assert acc.add(100, 5000, taker=False) == 0  # maker fills on a quadratic series are free


def test_the_centicent_accumulator_rounds_each_fill() -> None:
    acc = OrderFeeAccumulator(fee_type="quadratic", multiplier=ONE, rounding="per_fill_centicent")
    assert [acc.add(1, 5000, taker=True) for _ in range(3)] == [2, 2, 2]
    assert acc.charged == 6


counts = st.integers(0, 1_000_000)
prices = st.integers(1, 9_999)
fee_types = st.sampled_from(sorted(FEE_TYPES))
roundings = st.sampled_from(ROUNDINGS)
multipliers = st.sampled_from([Decimal(0), Decimal("0.5"), ONE, Decimal("1.25"), Decimal(2)])


@given(count=counts, price=prices, is_taker=st.booleans(), fee_type=fee_types, m=multipliers, rounding=roundings)
def test_fees_are_non_negative_symmetric_and_bounded(
    count: int, price: int, is_taker: bool, fee_type: str, m: Decimal, rounding: FeeRounding
) -> None:
    fee = fee_units(count, price, taker=is_taker, fee_type=fee_type, multiplier=m, rounding=rounding)
    assert fee >= 0
    assert fee == fee_units(count, 10_000 - price, taker=is_taker, fee_type=fee_type, multiplier=m, rounding=rounding)
    exact = exact_fee(count, price, taker=is_taker, fee_type=fee_type, multiplier=m)
    step = 100 if rounding == "per_order_cent" else 1
    assert exact <= fee < exact + step
    assert fee % step == 0
    # Never above 1.75¢ per contract × M (before rounding), the taker maximum at P = 0.5.
    assert exact <= Fraction(175, 100) * count * max(Fraction(m), Fraction(1, 2))


@given(a=counts, b=counts, price=prices, is_taker=st.booleans(), fee_type=fee_types, m=multipliers, rounding=roundings)
def test_fees_are_monotone_in_count(
    a: int, b: int, price: int, is_taker: bool, fee_type: str, m: Decimal, rounding: FeeRounding
) -> None:
    small, large = sorted((a, b))
    kw = {"taker": is_taker, "fee_type": fee_type, "multiplier": m, "rounding": rounding}
    assert fee_units(small, price, **kw) <= fee_units(large, price, **kw)  # type: ignore[arg-type]


@given(fills=st.lists(st.tuples(st.integers(1, 5_000), prices, st.booleans()), max_size=20), rounding=roundings)
def test_the_accumulator_total_is_the_rounded_cumulative_exact_fee(
    fills: list[tuple[int, int, bool]], rounding: FeeRounding
) -> None:
    acc = OrderFeeAccumulator(fee_type="quadratic_with_maker_fees", multiplier=ONE, rounding=rounding)
    total, charges = Fraction(0), []
    for count, price, is_taker in fills:
        charges.append(acc.add(count, price, taker=is_taker))
        total += exact_fee(count, price, taker=is_taker, fee_type="quadratic_with_maker_fees", multiplier=ONE)
    assert all(c >= 0 for c in charges) and acc.charged == sum(charges)
    if rounding == "per_order_cent":
        assert acc.charged % 100 == 0 and total <= acc.charged < total + 100
    else:
        assert total <= acc.charged < total + len(fills) + (not fills)
