"""Order book hot paths (design.md §9: a delta with best bid/ask kept current, target ≤ 0.5 µs p50).

Run with ``.venv/bin/pytest benchmarks --benchmark-only``. No timing assertions: the numbers are read, not
enforced. Each benchmark leaves the book in the state it found it, so the many iterations pytest-benchmark
runs see a steady state (sizes oscillate; nothing grows).
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import cycle

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from mm.domain.book import OrderBook
from mm.domain.sides import Side
from mm.domain.ticks import TickGrid

YES, NO = Side.YES, Side.NO


def _levels(top: int, count: int, step: int) -> list[tuple[int, int]]:
    """``count`` bid levels from ``top`` down by ``step`` ($0.0001 units), sizes 10.00..(10+count-1).00."""
    return [(top - k * step, (10 + k) * 100) for k in range(count)]


@pytest.fixture
def deci_book() -> OrderBook:
    """A deci-cent book with 50 YES bids from 0.450 down and 50 NO bids from 0.540 down (YES ask 0.460)."""
    book = OrderBook(TickGrid.deci_cent())
    book.apply_snapshot(_levels(4500, 50, 10), _levels(5400, 50, 10), ts_us=1)
    return book


def test_noop_closure_baseline(benchmark: BenchmarkFixture) -> None:
    """Harness + closure + ``next(cycle)`` cost, to subtract from the alternating-delta benchmark below."""
    deltas = cycle((500, -500)).__next__

    def step() -> None:
        deltas()

    benchmark(step)


def test_delta_at_best_level(benchmark: BenchmarkFixture, deci_book: OrderBook) -> None:
    """One ``apply_delta`` on the best YES bid, alternating +5 / −5 contracts; the best bid stays put."""
    apply = deci_book.apply_delta
    deltas = cycle((500, -500)).__next__

    def step() -> None:
        apply(YES, 4500, deltas(), 2)

    benchmark(step)
    assert deci_book.best_yes_bid == 4500  # sanity: the book is still in its steady state


def test_delta_pair_below_best(benchmark: BenchmarkFixture, deci_book: OrderBook) -> None:
    """Two deltas (+5 then −5 contracts) on the 2nd YES level, called directly: per delta = median / 2."""
    apply = deci_book.apply_delta

    def pair() -> None:
        apply(YES, 4490, 500, 2)
        apply(YES, 4490, -500, 3)

    benchmark(pair)
    assert deci_book.depth(YES, 2) == [(4500, 1000), (4490, 1100)]


def test_delta_pair_emptying_best_level(benchmark: BenchmarkFixture) -> None:
    """Empty the best YES bid (downward scan over 9 empty deci-cent ticks to the next level), then restore it.

    Benchmarks the pair: one scan-down delta plus one new-best delta.
    """
    book = OrderBook(TickGrid.deci_cent())
    book.apply_snapshot([(4500, 1000), (4400, 2000), (4300, 3000)], [(5400, 1000)], ts_us=1)
    apply = book.apply_delta

    def pair() -> None:
        apply(YES, 4500, -1000, 2)  # best empties → scan down 0.449 … 0.441 to 0.440
        apply(YES, 4500, 1000, 3)  # refill: the level becomes best again

    benchmark(pair)
    assert book.best_yes_bid == 4500


def test_snapshot_100_levels(benchmark: BenchmarkFixture) -> None:
    """``apply_snapshot`` of 100 levels in total: 50 YES + 50 NO bids on a deci-cent grid (999 levels)."""
    book = OrderBook(TickGrid.deci_cent())
    yes = _levels(4500, 50, 10)
    no = _levels(5400, 50, 10)

    benchmark(book.apply_snapshot, yes, no, 1)
    assert book.depth(YES, 100) == yes and book.depth(NO, 100) == no


def test_read_best_bid_ask_and_mid(benchmark: BenchmarkFixture, deci_book: OrderBook) -> None:
    """Read the best YES bid, best YES ask and the exact mid (a Decimal)."""

    def read() -> tuple[object, ...]:
        return deci_book.best_yes_bid, deci_book.best_yes_ask, deci_book.mid()

    result = benchmark(read)
    assert result[0] == 4500 and result[1] == 4600


def test_market_snapshot(benchmark: BenchmarkFixture, deci_book: OrderBook) -> None:
    """``OrderBook.snapshot`` → MarketSnapshot (Price/Quantity objects, Decimal mid and spread)."""
    snap: Callable[[str, int], object] = deci_book.snapshot
    benchmark(snap, "KXBTCD-26AUG1317-T73249.99", 10)
