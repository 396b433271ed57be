"""A fixed piece of pure-Python work, timed next to every benchmark, so a slow moment does not read as a regression.

The machines that run ``make bench`` have 2 cores and are shared: for seconds to minutes at a time everything runs
up to ~2× slower (neighbours on the host, the other core busy). A regression is a benchmark that got slower than
*the machine* did, so ``benchmarks/conftest.py`` times :func:`calibration_work` immediately before and after each
benchmark and records the figure in the benchmark's ``extra_info[CALIBRATION_KEY]``; ``benchmarks/compare.py``
divides each benchmark's ratio (current / baseline) by the ratio of its calibration figures. The work uses none
of our code, so a change in ``mm`` cannot move it. docs/ci.md, "Normalisation".

Do not change :func:`calibration_work` without refreshing ``benchmarks/baseline.json`` (``make bench-baseline``):
the normalisation assumes both sides timed the same work.
"""

from __future__ import annotations

import statistics
import time

CALIBRATION_KEY = "calibration_s"
"""The ``extra_info`` key: median seconds of one :func:`calibration_work` call around this benchmark."""

CALIBRATION_ROUNDS = 301
"""Timed calls per measurement (~10 µs each here): ~3 ms before and ~3 ms after every benchmark."""


class _Level:
    __slots__ = ("price", "size")

    def __init__(self, price: int, size: int) -> None:
        self.price = price
        self.size = size


_LEVELS = [_Level(4000 + 10 * k, 100 + k) for k in range(200)]
_INDEX = {level.price: k for k, level in enumerate(_LEVELS)}


def calibration_work(levels: list[_Level] = _LEVELS, index: dict[int, int] = _INDEX) -> int:
    """What our hot paths spend their time on: integer arithmetic, attribute and dict access, branches."""
    total = 0
    for level in levels:
        position = index[level.price]
        if level.size > position:
            total += level.size - position
        else:
            total -= (position * 3) // 7
    return total


def measure_calibration(rounds: int = CALIBRATION_ROUNDS) -> float:
    """Median seconds of one :func:`calibration_work` call over ``rounds`` individually timed calls."""
    timer = time.perf_counter
    calibration_work()  # warm up
    samples = []
    for _ in range(rounds):
        start = timer()
        calibration_work()
        samples.append(timer() - start)
    return statistics.median(samples)
