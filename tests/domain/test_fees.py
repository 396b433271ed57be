"""The domain fee formula's precomputed form: :class:`FeeSchedule` agrees with ``exact_fee``/``fee_units``."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mm.domain.fees import FEE_TYPES, FeeRounding, FeeSchedule, exact_fee, fee_units
from mm.sim import fees as sim_fees

multipliers = st.sampled_from([Decimal(0), Decimal("0.5"), Decimal(1), Decimal("1.25"), Decimal("0.3333")])


@given(
    count=st.integers(0, 1_000_000),
    price=st.integers(0, 10_000),
    taker=st.booleans(),
    fee_type=st.sampled_from(sorted(FEE_TYPES)),
    m=multipliers,
    rounding=st.sampled_from(["per_order_cent", "per_fill_centicent"]),
)
def test_the_schedule_equals_the_formula(
    count: int, price: int, taker: bool, fee_type: str, m: Decimal, rounding: FeeRounding
) -> None:
    schedule = FeeSchedule(fee_type, m, rounding)
    exact = exact_fee(count, price, taker=taker, fee_type=fee_type, multiplier=m)
    assert Fraction(schedule.exact_numerator(count, price, taker), schedule.denominator) == exact
    expected = fee_units(count, price, taker=taker, fee_type=fee_type, multiplier=m, rounding=rounding)
    assert schedule.fill_fee_units(count, price, taker=taker) == expected


def test_ten_at_fifty_cents_and_validation() -> None:
    assert FeeSchedule(rounding="per_order_cent").fill_fee_units(1000, 5000, taker=True) == 1800  # $0.18
    assert FeeSchedule().fill_fee_units(1000, 5000, taker=True) == 1750  # $0.1750
    assert FeeSchedule().fill_fee_units(1000, 5000, taker=False) == 0  # quadratic makers pay nothing
    with pytest.raises(ValueError, match="fee_type"):
        FeeSchedule("cubic")
    with pytest.raises(ValueError, match="multiplier"):
        FeeSchedule(multiplier=Decimal(-1))
    with pytest.raises(ValueError, match="rounding"):
        FeeSchedule(rounding="nearest")  # type: ignore[arg-type]


def test_the_simulator_uses_the_domain_implementation() -> None:
    assert sim_fees.fee_units is fee_units and sim_fees.FeeSchedule is FeeSchedule
