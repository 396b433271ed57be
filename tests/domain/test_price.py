from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mm.domain.errors import InvalidPriceError, InvalidQuantityError
from mm.domain.price import PRICE_SCALE, Price, Quantity, dollars_to_units, units_to_dollars

prices = st.integers(min_value=1, max_value=PRICE_SCALE - 1).map(Price)


def test_price_round_trips_kalshi_dollar_strings() -> None:
    p = Price.from_dollars("0.5600")
    assert p.units == 5600
    assert p.to_dollars() == "0.5600"
    assert Price.from_dollars("0.56") == p
    assert p.to_decimal() == Decimal("0.56")
    assert str(Price(1)) == "0.0001"


@pytest.mark.parametrize("bad", ["0", "1", "1.0000", "-0.01", "0.00001", "abc", "NaN", "Infinity"])
def test_price_rejects_values_outside_the_open_interval_or_finer_than_the_grid(bad: str) -> None:
    with pytest.raises(InvalidPriceError):
        Price.from_dollars(bad)


def test_price_refuses_floats_and_bools() -> None:
    with pytest.raises(InvalidPriceError, match="float"):
        Price.from_decimal(0.5)  # type: ignore[arg-type]
    with pytest.raises(InvalidPriceError):
        Price(True)
    with pytest.raises(InvalidPriceError):
        Price(5000.0)  # type: ignore[arg-type]


def test_decimal_point_one_is_exact() -> None:
    assert Price.from_decimal(Decimal("0.1")).units == 1000
    assert Price.from_decimal(Decimal("0.1")).to_decimal() + Price.from_decimal("0.2").to_decimal() == Decimal("0.3")


@given(prices)
def test_complement_is_an_involution_and_sums_to_one_dollar(p: Price) -> None:
    assert p.complement().complement() == p
    assert p.to_decimal() + p.complement().to_decimal() == 1


@given(prices)
def test_dollar_string_round_trip(p: Price) -> None:
    assert Price.from_dollars(p.to_dollars()) == p
    assert len(p.to_dollars()) == 6


@given(prices, prices)
def test_ordering_follows_units(a: Price, b: Price) -> None:
    assert (a < b) == (a.units < b.units)


def test_quantity_wire_form_and_arithmetic() -> None:
    q = Quantity.from_fp("10.50")
    assert q.units == 1050
    assert q.to_fp() == "10.50"
    assert Quantity.contracts(3).to_decimal() == Decimal(3)
    assert (q + Quantity(50)).to_fp() == "11.00"
    assert (q - Quantity(1050)).is_zero
    with pytest.raises(InvalidQuantityError, match="negative"):
        Quantity(50) - Quantity(51)
    with pytest.raises(InvalidQuantityError, match="finer"):
        Quantity.from_decimal("0.001")
    with pytest.raises(InvalidQuantityError):
        Quantity.from_decimal(1.5)  # type: ignore[arg-type]


def test_amount_conversions_are_exact_for_any_dollar_amount() -> None:
    assert dollars_to_units("12.3456") == 123456
    assert units_to_dollars(-50) == Decimal("-0.005")
    with pytest.raises(InvalidPriceError):
        dollars_to_units("0.00005")
