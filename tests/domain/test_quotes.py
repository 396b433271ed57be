from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mm.domain.portfolio import Balance, Position
from mm.domain.price import Price, Quantity
from mm.domain.quotes import Quote, QuoteSet
from mm.domain.sides import OrderSide, Side


def test_fr402_example_sheet() -> None:
    # FR-402: YES 0.481 / 0.501 gives NO 0.499 / 0.519; sizes swap (FR-403).
    qs = QuoteSet.from_yes("M", 0, (Price(4810), Quantity.contracts(70)), (Price(5010), Quantity.contracts(130)))
    assert qs.no_bid == Quote(Side.NO, OrderSide.BUY, Price(4990), Quantity.contracts(130))
    assert qs.no_ask == Quote(Side.NO, OrderSide.SELL, Price(5190), Quantity.contracts(70))
    assert qs.is_complementary
    assert len(qs.quotes()) == 4


def test_zero_size_means_no_quote_on_that_side() -> None:
    qs = QuoteSet.from_yes("M", 0, (Price(4800), Quantity(0)), (Price(5200), Quantity.contracts(5)))
    assert qs.yes_bid is None and qs.no_ask is None
    assert qs.yes_ask is not None and qs.no_bid is not None


def test_crossed_or_mislabelled_quotes_are_refused() -> None:
    with pytest.raises(ValueError, match="below"):
        QuoteSet.from_yes("M", 0, (Price(5200), Quantity(1)), (Price(5200), Quantity(1)))
    wrong = Quote(Side.NO, OrderSide.BUY, Price(100), Quantity(1))
    with pytest.raises(ValueError, match="yes_bid must be a yes buy"):
        QuoteSet("M", 0, wrong, None, None, None)


@given(st.integers(1, 9998), st.integers(1, 9998), st.integers(0, 10_000), st.integers(0, 10_000))
def test_no_quotes_are_always_the_complement_of_yes_quotes(a: int, b: int, sa: int, sb: int) -> None:
    bid, ask = sorted((a, b))
    if bid == ask:
        ask += 1
    qs = QuoteSet.from_yes("M", 0, (Price(bid), Quantity(sa)), (Price(ask), Quantity(sb)))
    assert qs.is_complementary
    for yes, no in ((qs.yes_ask, qs.no_bid), (qs.yes_bid, qs.no_ask)):
        if yes is not None and no is not None:
            assert yes.price.to_decimal() + no.price.to_decimal() == 1
            assert yes.size == no.size


def test_position_net_inventory_and_cost_basis() -> None:
    pos = Position("M", yes=Quantity.contracts(150), no=Quantity.from_decimal("20.5"), avg_yes_price=Decimal("0.52"))
    assert pos.net_units == 12950
    assert pos.net_inventory == Decimal("129.5")
    assert pos.cost_basis == Decimal("78.00")
    assert not pos.is_flat and Position("M").is_flat


def test_balance_is_exact() -> None:
    assert Balance(Decimal("10.0001"), Decimal("12")).available == Decimal("10.0001")
    with pytest.raises(TypeError):
        Balance(10.0, Decimal(1))  # type: ignore[arg-type]
