"""Price and tick-grid primitives used on the quoting path. No timing assertions: numbers are read."""

from __future__ import annotations

import operator
from decimal import Decimal

from pytest_benchmark.fixture import BenchmarkFixture

from mm.domain.price import Price
from mm.domain.ticks import Rounding, TickGrid


def test_price_from_units(benchmark: BenchmarkFixture) -> None:
    result = benchmark(Price, 5600)
    assert result.units == 5600


def test_price_from_dollars(benchmark: BenchmarkFixture) -> None:
    result = benchmark(Price.from_dollars, "0.5600")
    assert result == Price(5600)


def test_price_complement(benchmark: BenchmarkFixture) -> None:
    result = benchmark(Price(5600).complement)
    assert result == Price(4400)


def test_price_to_dollars(benchmark: BenchmarkFixture) -> None:
    result = benchmark(Price(5600).to_dollars)
    assert result == "0.5600"


def test_price_less_than(benchmark: BenchmarkFixture) -> None:
    result = benchmark(operator.lt, Price(4400), Price(5600))
    assert result is True


def test_tapered_grid_round_down(benchmark: BenchmarkFixture) -> None:
    grid = TickGrid.tapered_deci_cent()
    result = benchmark(grid.round, Decimal("0.45678"), Rounding.DOWN)
    assert result == Price(4500)


def test_grid_index_of(benchmark: BenchmarkFixture) -> None:
    grid = TickGrid.tapered_deci_cent()
    result = benchmark(grid.index_of, 5600)
    assert grid.levels[result] == 5600
