"""Times the calibration work (benchmarks/calibration.py) around every benchmark, into its ``extra_info``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from benchmarks.calibration import CALIBRATION_KEY, measure_calibration


@pytest.fixture(autouse=True)
def _calibration_around_benchmark(request: pytest.FixtureRequest) -> Iterator[None]:
    timed = "benchmark" in request.fixturenames and not request.config.getoption("benchmark_disable", False)
    before = measure_calibration() if timed else 0.0
    yield
    benchmark = request.node.funcargs.get("benchmark") if timed else None
    if benchmark is not None:
        # The mean of the two: a slow spell that starts or ends during the benchmark counts half.
        benchmark.extra_info[CALIBRATION_KEY] = (before + measure_calibration()) / 2
