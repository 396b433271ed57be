"""Git-ops benchmark (issue: ownership and git-ops): a resource file saved → its new revision applied by the
watching :class:`~mm.controller.gitops.GitOpsSource` (target ≤ 300 ms p50; ≤ 1 s required). No timing assertions.

Each round saves ``strategy.yaml`` with a new spread (an editor's save: a temporary file renamed over it) and
waits until the Strategy's generation moves, polling every millisecond. The figure includes the watch's
debounce (``STEP_MS`` of quiet after the last event), the digest, ``git rev-parse`` (the directory is not a
checkout, so git answers "not a repository"), loading and admission of the whole bundle, and the apply.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools

from pytest_benchmark.fixture import BenchmarkFixture

from benchmarks.controller_support import SimRound, poll_until
from mm.controller.gitops import GitOpsSource
from mm.specs.admission import admit_or_raise
from mm.specs.yaml_loader import load_sources
from tests.controller.harness import EXCHANGE_YAML, RISK_YAML, market_yaml, strategy_yaml


def test_file_saved_to_revision_applied(benchmark: BenchmarkFixture) -> None:
    round_ = SimRound().open(strikes=3, markets=1)
    folder = round_.tmp / "resources"
    folder.mkdir()
    for name, text in {
        "exchange.yaml": EXCHANGE_YAML,
        "strategy.yaml": strategy_yaml(),
        "risk.yaml": RISK_YAML,
        "market.yaml": market_yaml("m000", round_.tickers[0]),
    }.items():
        (folder / name).write_text(text)
    runtime = round_.h.runtime
    source = GitOpsSource(runtime, [str(folder)])
    stop = asyncio.Event()
    spreads = itertools.cycle(["0.05", "0.06", "0.07", "0.08"])
    tasks: list[asyncio.Task[None]] = []

    async def start() -> None:
        label = await source.source_label()
        await runtime.start(admit_or_raise(load_sources([str(folder)])), source=label)
        await source.rescan("startup")
        tasks.append(asyncio.create_task(source.watch(stop)))
        # Armed: a probe file is rewritten until the watcher has handled a batch.
        probe = folder / "probe.txt"
        seen = source.batches
        count = 0
        while source.batches == seen:
            count += 1
            probe.write_text(str(count))
            await asyncio.sleep(0.05)

    async def save_and_wait() -> None:
        generation = runtime.resources.require("Strategy", "s1").generation
        tmp = folder / ".strategy.yaml.tmp"
        tmp.write_text(strategy_yaml(spread=next(spreads)))
        tmp.replace(folder / "strategy.yaml")
        await poll_until(
            lambda: runtime.resources.require("Strategy", "s1").generation > generation, 5.0, "the new revision"
        )

    async def stop_watch() -> None:
        stop.set()
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    try:
        round_.run(start())
        benchmark.pedantic(lambda: round_.run(save_and_wait()), rounds=15, iterations=1, warmup_rounds=1)
        history = runtime.resources.history("Strategy", "s1")
        assert history[-1].source == f"file:{folder.resolve()}"
    finally:
        with contextlib.suppress(Exception):
            round_.run(stop_watch())
        round_.close()
