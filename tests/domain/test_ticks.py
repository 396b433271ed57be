from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mm.domain.errors import InvalidPriceError, InvalidTickGridError
from mm.domain.price import PRICE_SCALE, Price
from mm.domain.ticks import STRUCTURES, PriceRange, Rounding, TickGrid


def test_linear_cent_has_the_99_classic_levels() -> None:
    grid = TickGrid.linear_cent()
    assert len(grid) == 99
    assert grid.levels[0] == 100 and grid.levels[-1] == 9900
    assert grid.contains(5600) and not grid.contains(5650)
    assert grid.index_of(100) == 0 and grid.index_of(5650) == -1 and grid.index_of(0) == -1


def test_tapered_deci_cent_is_fine_at_the_tails_only() -> None:
    grid = TickGrid.tapered_deci_cent()
    assert grid.contains(10) and grid.contains(950) and grid.contains(9990)  # 0.001, 0.095, 0.999
    assert not grid.contains(5010)  # 0.501: the centre is whole cents
    assert grid.contains(1000) and grid.contains(9000)  # shared end points
    assert grid.step_at(500) == 10 and grid.step_at(5000) == 100


def test_from_price_ranges_matches_the_named_structure() -> None:
    wire = [
        {"start": "0.0000", "end": "0.1000", "step": "0.0010"},
        {"start": "0.1000", "end": "0.9000", "step": "0.0100"},
        {"start": "0.9000", "end": "1.0000", "step": "0.0010"},
    ]
    grid = TickGrid.from_price_ranges(wire)
    assert grid == TickGrid.for_structure("tapered_deci_cent")
    assert grid is TickGrid.for_structure("tapered_deci_cent")  # cached and shared


def test_every_named_structure_builds() -> None:
    for name in STRUCTURES:
        grid = TickGrid.for_structure(name)
        assert all(0 < u < PRICE_SCALE for u in grid.levels)
        assert list(grid.levels) == sorted(set(grid.levels))


@pytest.mark.parametrize(
    ("ranges", "message"),
    [
        ([{"start": "0.5", "end": "0.4", "step": "0.01"}], "start < end"),
        ([{"start": "0", "end": "1", "step": "0"}], "positive"),
        ([{"start": "0", "end": "1", "step": "0.03"}], "whole number"),
        ([{"start": "0", "end": "1.5", "step": "0.01"}], "start < end <= 1"),
        ([{"start": "0", "end": "1"}], "missing 'step'"),
        ([], "at least one"),
    ],
)
def test_bad_price_ranges_are_rejected_clearly(ranges: list[dict[str, str]], message: str) -> None:
    with pytest.raises(InvalidTickGridError, match=message):
        TickGrid.from_price_ranges(ranges)


def test_unknown_structure_lists_the_known_ones() -> None:
    with pytest.raises(InvalidTickGridError, match="linear_cent"):
        TickGrid.for_structure("quarter_cent")


def test_rounding_moves_bids_down_and_asks_up() -> None:
    grid = TickGrid.linear_cent()
    assert grid.round(Decimal("0.4567"), Rounding.DOWN) == Price(4500)
    assert grid.round(Decimal("0.4567"), Rounding.UP) == Price(4600)
    assert grid.round(Decimal("0.45"), Rounding.UP) == Price(4500)  # on-grid values stay
    assert grid.round(Decimal("1.7"), Rounding.DOWN) == Price(9900)  # clamped to the top level
    assert grid.round(Decimal("-0.2"), Rounding.UP) == Price(100)
    with pytest.raises(InvalidPriceError, match="below the lowest"):
        grid.round(Decimal("0.005"), Rounding.DOWN)
    with pytest.raises(InvalidPriceError, match="above the highest"):
        grid.round(Decimal("0.995"), Rounding.UP)


def test_check_names_the_nearest_valid_prices() -> None:
    grid = TickGrid.linear_cent()
    assert grid.check(Price(4500)) == Price(4500)
    with pytest.raises(InvalidPriceError, match=r"0\.4500 / 0\.4600"):
        grid.check(Price(4567))


@given(st.integers(min_value=1, max_value=PRICE_SCALE - 1), st.sampled_from(sorted(STRUCTURES)))
def test_rounding_brackets_the_value_with_adjacent_levels(units: int, structure: str) -> None:
    grid = TickGrid.for_structure(structure)
    try:
        down = grid.round_units(units, Rounding.DOWN)
    except InvalidPriceError:
        down = None
    try:
        up = grid.round_units(units, Rounding.UP)
    except InvalidPriceError:
        up = None
    assert down is not None or up is not None
    if down is not None:
        assert down.units <= units and grid.contains(down.units)
    if up is not None:
        assert up.units >= units and grid.contains(up.units)
    if down is not None and up is not None and down != up:
        assert grid.index_of(up.units) == grid.index_of(down.units) + 1


def test_price_range_from_dollars_reports_sub_grid_values() -> None:
    with pytest.raises(InvalidTickGridError, match="finer"):
        PriceRange.from_dollars("0", "1", "0.00001")
