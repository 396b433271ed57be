"""The chaos suite's pytest wiring: which tests run by default, and where the measurements go.

* Without ``-m`` (``make test``: ``pytest tests benchmarks ...``) only the quick set runs: chaos tests not
  marked ``chaos_quick`` are deselected, unless named by node id on the command line. ``-m chaos`` (``make
  chaos``) selects the whole suite.
* ``measure(scenario_id)`` gives a test its :class:`~tests.chaos.results.Measurement`; at the end of the session
  every measurement is written with the test's outcome (:mod:`tests.chaos.results`).
* ``MM_CHAOS_SEED`` (default 20260813) seeds every random choice of the suite (delays, which order is hit);
  the value is recorded with the results.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import pytest

from tests.chaos.results import Measurement, results_path, write_results
from tests.chaos.scenarios import BY_ID

_MEASUREMENTS = pytest.StashKey[list[Measurement]]()
_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()

SEED = int(os.environ.get("MM_CHAOS_SEED", "20260813"))


def _named_on_command_line(config: pytest.Config, item: pytest.Item) -> bool:
    """The test (or its class or parametrisation family) was given as ``path::name`` on the command line."""
    for arg in config.args:
        path, sep, rest = arg.partition("::")
        if not sep:
            continue
        try:
            relative = Path(path).resolve().relative_to(config.rootpath).as_posix()
        except ValueError:
            continue
        target = f"{relative}::{rest}"
        if item.nodeid == target or item.nodeid.startswith((f"{target}[", f"{target}::")):
            return True
    return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("markexpr"):
        return  # an explicit -m chooses
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        slow = item.get_closest_marker("chaos") is not None and item.get_closest_marker("chaos_quick") is None
        (dropped if slow and not _named_on_command_line(config, item) else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        item.config.stash.setdefault(_REPORTS, {})[item.nodeid] = report
    return report


@pytest.fixture
def measure(request: pytest.FixtureRequest) -> Iterator[Callable[[str], Measurement]]:
    """``record = measure("websocket_disconnect")``: the test's measurement, saved with its outcome."""
    made: list[Measurement] = []

    def make(scenario: str) -> Measurement:
        assert scenario in BY_ID, f"unknown chaos scenario {scenario!r}"
        measurement = Measurement(scenario, request.node.nodeid)
        measurement.note(seed=SEED)
        made.append(measurement)
        return measurement

    yield make
    report = request.config.stash.get(_REPORTS, {}).get(request.node.nodeid)
    for measurement in made:
        if report is None:
            measurement.outcome = "unknown"
        elif hasattr(report, "wasxfail"):
            measurement.outcome = "xfailed" if report.skipped else "xpassed"
            measurement.note(xfail_reason=report.wasxfail)
        else:
            measurement.outcome = report.outcome
            crash = getattr(report.longrepr, "reprcrash", None)
            if report.failed and crash is not None:
                measurement.note(failure=str(crash.message).splitlines()[0][:300])
        request.config.stash.setdefault(_MEASUREMENTS, []).append(measurement)


def pytest_sessionfinish(session: pytest.Session) -> None:
    measurements = session.config.stash.get(_MEASUREMENTS, [])
    if not measurements:
        return
    full = session.config.getoption("markexpr").strip() == "chaos"
    command = "make chaos" if full else "pytest (quick chaos set)"
    write_results(results_path(full), measurements, command=command)
