"""Helpers for the controller benchmarks (issue 8): a node against the in-process simulator, one round at a time.

A :class:`SimRound` owns a temporary directory, an event loop (:class:`asyncio.Runner`) and, once
:meth:`SimRound.open` ran, a simulator with ``strikes`` active markets, seeded books and an unstarted
:class:`~mm.controller.runtime.NodeRuntime` wired to it (``tests.controller.harness``'s ``make_runtime``).
The loop outlives each ``run`` call so pytest-benchmark's ``pedantic`` can time only the part it should:
``setup`` opens a round, the target ``run``-s the timed coroutine, ``teardown`` closes the round.
pytest-benchmark does not call ``teardown`` under ``--benchmark-disable``, so callers also close in ``finally``
(:meth:`SimRound.close` is idempotent).
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from mm.sim.server import Simulator, SimulatorConfig
from mm.specs.admission import AdmittedResource
from tests.controller.harness import (
    EXCHANGE_YAML,
    RISK_YAML,
    START,
    Harness,
    SteppedWallClock,
    admitted,
    make_runtime,
    market_yaml,
    strategy_yaml,
)

__all__ = ["SimRound", "market_name", "node_documents", "poll_until"]

T = TypeVar("T")
POLL_S = 0.001
"""Condition polling period while a timed coroutine waits: 1 ms, so it adds at most ~1 ms to a figure."""


def market_name(i: int) -> str:
    return f"m{i:03d}"


def node_documents(tickers: list[str]) -> tuple[AdmittedResource, ...]:
    """The harness's Exchange, Strategy and RiskPolicy, and one Market per ticker (``m000``, ``m001``, ...)."""
    markets = [market_yaml(market_name(i), ticker) for i, ticker in enumerate(tickers)]
    return admitted(EXCHANGE_YAML, strategy_yaml(), RISK_YAML, *markets)


async def poll_until(condition: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    """Like the harness's ``wait_until`` but polling every millisecond (it is inside timed code)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(POLL_S)


class SimRound:
    """One simulator + one (not yet started) node, in their own event loop and temporary directory."""

    def __init__(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="mm-bench-")
        self.tmp = Path(self._tmp.name)
        self._runner = asyncio.Runner()
        self._stack = contextlib.AsyncExitStack()
        self.harness: Harness | None = None
        self.tickers: list[str] = []
        self.documents: tuple[AdmittedResource, ...] = ()
        self._closed = False

    @property
    def h(self) -> Harness:
        assert self.harness is not None, "open() first"
        return self.harness

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._runner.run(coro)

    def open(self, *, strikes: int, markets: int, seed_books: bool = True) -> SimRound:
        """Start a simulator with ``strikes`` active markets; seed ``markets`` books; build the node (unstarted)."""
        self.run(self._open(strikes, markets, seed_books))
        return self

    async def _open(self, strikes: int, markets: int, seed_books: bool) -> None:
        base = SteppedWallClock()
        config = SimulatorConfig(state_dir=self.tmp / "sim", start_us=START, strikes=strikes, crowd=False, seed=7)
        sim = await self._stack.enter_async_context(Simulator(config, base_clock=base))
        state_dir = self.tmp / "node"
        harness = Harness(sim, base, make_runtime(sim, state_dir), state_dir)
        self.harness = harness
        self.tickers = harness.tickers()[:markets]
        assert len(self.tickers) == markets, f"the simulator has {len(harness.tickers())} active markets"
        if seed_books:
            for ticker in self.tickers:
                harness.seed_book(ticker)
        self.documents = node_documents(self.tickers)

    def all_quoting(self) -> bool:
        h = self.h
        return all(h.quoting(market_name(i), ticker) for i, ticker in enumerate(self.tickers))

    async def start_and_quote(self, timeout: float = 20.0) -> None:
        """Start the node and wait until every Market quotes both sides at the simulator."""
        await self.h.runtime.start(self.documents)
        await poll_until(self.all_quoting, timeout, f"{len(self.tickers)} markets quoting both sides")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if self.harness is not None:
                self.run(self._close())
        finally:
            self._runner.close()
            self._tmp.cleanup()

    async def _close(self) -> None:
        try:
            assert self.harness is not None
            await self.harness.runtime.stop("drain")
        finally:
            await self._stack.aclose()
