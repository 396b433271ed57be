"""Simulator matching engine hot paths (target: ≥ 5,000 order operations/s from one core).

Run with ``.venv/bin/pytest benchmarks/test_sim_matching_bench.py --benchmark-only``. No timing assertions:
ops/s = 1 / median is stored in ``extra_info`` and read, not enforced. Every benchmark runs against a book
of 20 levels a side with 3 orders per level (3 users), and leaves it in a steady state: what one round
adds, the same round (or the untimed setup of the next) removes.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

from pytest_benchmark.fixture import BenchmarkFixture

from mm.domain.ticks import TickGrid
from mm.sim.matching import MatchingEngine
from mm.sim.types import BookSide, SimOrder

BID, ASK = BookSide.BID, BookSide.ASK
TICKER = "KXBENCH-26AUG1317-T50"
_ids = itertools.count()


def new_order(user: str, side: BookSide, price: int, count: int) -> SimOrder:
    return SimOrder(f"o{next(_ids)}", user, TICKER, side, price, count, count)


def deep_book(best_ask: int = 5100) -> MatchingEngine:
    """YES bids 0.49 down to 0.30 and 20 ask levels up from ``best_ask``, 3 orders of 10 contracts per level."""
    trade_ids = (f"t{i}" for i in itertools.count())
    engine = MatchingEngine(TICKER, TickGrid.linear_cent(), trade_ids.__next__)
    for k in range(20):
        for user in ("mm1", "mm2", "mm3"):
            engine.submit(new_order(user, BID, 4900 - 100 * k, 1000), 1)
            engine.submit(new_order(user, ASK, best_ask + 100 * k, 1000), 1)
    return engine


def record(benchmark: BenchmarkFixture, ops_per_round: int) -> None:
    """Store ops/s (operations per round / median round time); nothing to store under --benchmark-disable."""
    if benchmark.stats is not None:
        benchmark.extra_info["ops_per_s"] = round(ops_per_round / benchmark.stats.stats.median)


def test_submit_that_rests_then_cancel(benchmark: BenchmarkFixture) -> None:
    """One round = a new bid inside the spread (rests) + its cancel: 2 ops. Order construction included."""
    engine = deep_book()
    submit, cancel = engine.submit, engine.cancel

    def pair() -> None:
        order = new_order("taker", BID, 5000, 500)
        submit(order, 2)
        cancel(order.order_id, 3)

    benchmark(pair)
    record(benchmark, 2)
    assert engine.levels()[0][0] == (4900, 3000)


def test_crossing_submit_through_three_levels(benchmark: BenchmarkFixture) -> None:
    """One crossing bid sweeping 3 ask levels (9 makers, 9 trades). Untimed setup refills what it took.

    The standing asks start at 0.54, above the taker's limit, so each round meets exactly the 0.51–0.53
    levels its setup placed and leaves the book as it found it.
    """
    engine = deep_book(best_ask=5400)

    def refill() -> tuple[tuple[SimOrder, int], dict[str, object]]:
        for k in range(3):
            for user in ("mm1", "mm2", "mm3"):
                engine.submit(new_order(user, ASK, 5100 + 100 * k, 1000), 1)
        return (new_order("taker", BID, 5300, 9000), 2), {}

    result = benchmark.pedantic(engine.submit, setup=refill, rounds=3000, iterations=1, warmup_rounds=50)
    record(benchmark, 1)
    assert len(result.trades) == 9 and engine.best_ask() == 5400


def test_amend_price_change_loses_priority(benchmark: BenchmarkFixture) -> None:
    """One amend moving a resting bid between 0.49 and 0.48 (to the back of the queue each time)."""
    engine = deep_book()
    order = new_order("mover", BID, 4900, 500)
    engine.submit(order, 1)
    prices = itertools.cycle((4800, 4900)).__next__
    amend: Callable[..., object] = engine.amend

    benchmark(lambda: amend(order.order_id, 2, price=prices(), total_count=500))
    record(benchmark, 1)
    assert order.status.value == "resting"


def test_amend_size_in_place(benchmark: BenchmarkFixture) -> None:
    """One amend alternating the size: a reduction (keeps priority) then an increase (re-queued)."""
    engine = deep_book()
    order = new_order("mover", ASK, 5100, 500)
    engine.submit(order, 1)
    sizes = itertools.cycle((400, 500)).__next__

    benchmark(lambda: engine.amend(order.order_id, 2, price=5100, total_count=sizes()))
    record(benchmark, 1)


def test_decrease(benchmark: BenchmarkFixture) -> None:
    """One decrease by 0.01 contract of a huge resting order (keeps priority; the level never empties)."""
    engine = deep_book()
    order = new_order("big", BID, 4900, 10**15)
    engine.submit(order, 1)
    decrease = engine.decrease

    benchmark(lambda: decrease(order.order_id, 2, reduce_by=1))
    record(benchmark, 1)
    assert order.remaining_count > 0
