"""Git-ops (``mm.controller.gitops``) against the in-process simulator: a saved file is applied as a new revision
with its source recorded; a broken file is rejected and the node keeps trading the old config; an emptied
directory prunes nothing; only what the source applied is ever pruned; an unchanged digest is skipped."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from mm.controller.gitops import GitOpsSource, content_digest, source_statuses, spec_files
from mm.controller.launch import RunOptions, run_node
from mm.controller.operations import RollbackError, admit_text
from mm.sim.types import BookSide as SimBookSide
from mm.specs.admission import admit_or_raise
from mm.specs.yaml_loader import load_sources
from tests.controller.harness import (
    EXCHANGE_YAML,
    RISK_YAML,
    Harness,
    make_runtime,
    market_yaml,
    simulator,
    strategy_yaml,
    wait_until,
)


@dataclass
class GitOpsNode:
    h: Harness
    source: GitOpsSource
    folder: Path
    tickers: list[str]

    def status(self) -> dict[str, object]:
        return self.source.source_status

    def events(self, reason: str) -> list[str]:
        return [e[3] for e in self.h.runtime.node.events if e[1] == "GitOps" and e[2] == reason]

    def generation(self, kind: str, name: str) -> int:
        return self.h.runtime.resources.require(kind, name).generation

    def prices(self, ticker: str) -> dict[SimBookSide, int]:
        return {o.side: o.price for o in self.h.our_orders(ticker)}  # type: ignore[attr-defined]


def write_bundle(folder: Path, tickers: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "exchange.yaml": EXCHANGE_YAML,
        "strategy.yaml": strategy_yaml(),
        "risk.yaml": RISK_YAML,
        "market-m1.yaml": market_yaml("m1", tickers[0]),
    }
    for name, text in files.items():
        (folder / name).write_text(text)


async def watching(node: GitOpsNode) -> None:
    """Wait until the watcher sees changes: rewrite a probe file (not a spec file: its digest is not affected)
    until a batch has been handled."""
    probe = node.folder / "probe.txt"
    seen = node.source.batches

    async def poll() -> None:
        count = 0
        while node.source.batches == seen:
            count += 1
            probe.write_text(str(count))
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), 10.0)


@asynccontextmanager
async def gitops_node(tmp_path: Path, *, watch: bool = True, folder: Path | None = None) -> AsyncIterator[GitOpsNode]:
    """A node started from ``folder`` the way ``mmctl run`` does: the start-up revisions carry the source's label,
    a first rescan claims what the files declare, then the watcher runs."""
    async with simulator(tmp_path) as (sim, base):
        runtime = make_runtime(sim, tmp_path / "node")
        harness = Harness(sim, base, runtime, tmp_path / "node")
        tickers = harness.tickers()
        directory = folder if folder is not None else tmp_path / "resources"
        if not directory.exists():
            write_bundle(directory, tickers)
        source = GitOpsSource(runtime, [str(directory)], debounce_ms=100, step_ms=30)
        label = await source.source_label()
        await runtime.start(admit_or_raise(load_sources([str(directory)])), source=label)
        startup = await source.rescan("startup")
        assert startup.outcome == "applied", startup
        stop = asyncio.Event()
        watcher = asyncio.create_task(source.watch(stop)) if watch else None
        node = GitOpsNode(harness, source, directory, tickers)
        try:
            for ticker in tickers[:2]:
                harness.seed_book(ticker)
            if watcher is not None:
                await watching(node)
            yield node
        finally:
            stop.set()
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            await runtime.stop("drain")


async def test_a_saved_file_is_applied_as_a_new_revision_and_the_orders_move(tmp_path: Path) -> None:
    async with gitops_node(tmp_path) as n:
        ticker = n.tickers[0]
        await wait_until(lambda: n.h.quoting("m1", ticker), what="quoting")
        assert n.prices(ticker) == {SimBookSide.BID: 4800, SimBookSide.ASK: 5200}
        assert n.status()["phase"] == "Ready"
        before = n.generation("Strategy", "s1")

        # An editor's save: a temporary file renamed over the original.
        tmp = n.folder / ".strategy.yaml.swp"
        tmp.write_text(strategy_yaml(spread="0.08"))
        tmp.replace(n.folder / "strategy.yaml")

        await wait_until(lambda: n.generation("Strategy", "s1") == before + 1, what="the new revision")
        revision = n.h.runtime.resources.history("Strategy", "s1")[-1]
        assert revision.source == f"file:{n.folder.resolve()}"
        stored = n.h.runtime.resources.require("Strategy", "s1")
        assert stored.annotations["mm/managed-by"] == revision.source
        await wait_until(
            lambda: n.prices(ticker) == {SimBookSide.BID: 4600, SimBookSide.ASK: 5400}, what="quotes from the new file"
        )
        assert n.events("Applied") and "Strategy/s1" in n.events("Applied")[-1]
        assert n.status()["last_applied_digest"] == content_digest(spec_files([str(n.folder)]))
        assert source_statuses(n.h.runtime)[0]["phase"] == "Ready"


async def test_a_broken_file_is_rejected_and_the_old_config_keeps_trading(tmp_path: Path) -> None:
    async with gitops_node(tmp_path) as n:
        ticker = n.tickers[0]
        await wait_until(lambda: n.h.quoting("m1", ticker), what="quoting")
        good_strategy = n.generation("Strategy", "s1")
        good_market = n.generation("Market", "m1")

        # Two files change together; one of them is invalid: nothing of the batch may be applied.
        (n.folder / "strategy.yaml").write_text(strategy_yaml(spread="0.02"))
        (n.folder / "market-m1.yaml").write_text(
            market_yaml("m1", ticker).replace("execution: live", "execution: warp")
        )

        await wait_until(lambda: n.status()["phase"] == "Stalled", what="the source Stalled")
        assert n.status()["reason"] == "Rejected"
        error = str(n.status()["last_error"])
        assert "market-m1.yaml" in error and "execution" in error
        assert n.events("Rejected") and "market-m1.yaml" in n.events("Rejected")[-1]
        assert n.generation("Strategy", "s1") == good_strategy
        assert n.generation("Market", "m1") == good_market
        assert n.h.quoting("m1", ticker)
        assert n.prices(ticker) == {SimBookSide.BID: 4800, SimBookSide.ASK: 5200}

        # A YAML syntax error is rejected the same way.
        (n.folder / "market-m1.yaml").write_text("apiVersion: mm/v1alpha1\nkind: Market\nmetadata: {name: m1\n")
        await wait_until(lambda: n.status()["reason"] == "Unparsable", what="the unparsable file reported")
        assert n.h.runtime.resources.get("Market", "m1") is not None

        # Fixing the file applies the whole bundle (the strategy edit included) and the source is Ready again.
        (n.folder / "market-m1.yaml").write_text(market_yaml("m1", ticker))
        await wait_until(lambda: n.status()["phase"] == "Ready", what="Ready again")
        assert n.generation("Strategy", "s1") == good_strategy + 1
        assert n.status()["last_error"] is None


async def test_deleting_every_file_prunes_nothing(tmp_path: Path) -> None:
    async with gitops_node(tmp_path) as n:
        ticker = n.tickers[0]
        await wait_until(lambda: n.h.quoting("m1", ticker), what="quoting")
        keys = sorted(n.h.runtime.resources.keys())
        for path in n.folder.glob("*.yaml"):
            path.unlink()
        await wait_until(lambda: n.status()["phase"] == "Stalled", what="the source Stalled")
        assert n.status()["reason"] == "Empty"
        assert "refusing to prune" in str(n.status()["last_error"])
        assert sorted(n.h.runtime.resources.keys()) == keys
        assert n.source.pruned == []
        assert n.h.quoting("m1", ticker)


async def test_only_what_the_source_applied_is_pruned(tmp_path: Path) -> None:
    async with gitops_node(tmp_path) as n:
        first, second = n.tickers[0], n.tickers[1]
        (n.folder / "market-m2.yaml").write_text(market_yaml("m2", second))
        await wait_until(lambda: n.h.runtime.resources.get("Market", "m2") is not None, what="m2 applied")
        # Someone else (the CLI) applies a Market and a Strategy: the source must never prune them.
        text = strategy_yaml("s-cli") + "---\n" + market_yaml("m3", n.tickers[2], strategy="s-cli")
        by_cli = admit_text(n.h.runtime.resources, text)
        n.h.runtime.apply(by_cli, source="cli")
        await wait_until(lambda: n.h.quoting("m1", first) and n.h.quoting("m2", second), what="m1 and m2 quoting")

        (n.folder / "market-m1.yaml").unlink()
        await wait_until(lambda: n.h.runtime.resources.get("Market", "m1") is None, what="m1 pruned")
        assert n.source.pruned == ["Market/m1"]
        assert n.events("Applied") and "pruned Market/m1" in n.events("Applied")[-1]
        await wait_until(lambda: n.h.our_orders(first) == [], what="m1's orders cancelled")
        for kind, name in (("Market", "m2"), ("Market", "m3"), ("Strategy", "s-cli"), ("Strategy", "s1")):
            assert n.h.runtime.resources.get(kind, name) is not None, f"{kind}/{name}"
        assert n.h.quoting("m2", second)

        # Removing strategy.yaml while m2's file still references s1 is refused whole: nothing pruned.
        (n.folder / "strategy.yaml").unlink()
        await wait_until(lambda: n.status()["reason"] == "Rejected", what="the dangling reference rejected")
        assert "s1" in str(n.status()["last_error"])
        assert n.h.runtime.resources.get("Strategy", "s1") is not None


async def test_a_resource_someone_else_took_over_is_not_pruned(tmp_path: Path) -> None:
    async with gitops_node(tmp_path, watch=False) as n:
        (n.folder / "market-m2.yaml").write_text(market_yaml("m2", n.tickers[1]))
        assert (await n.source.rescan()).changed == ("Market/m2",)
        # The CLI re-applies m2 with another spec: it is the CLI's now.
        halted = admit_text(n.h.runtime.resources, market_yaml("m2", n.tickers[1], extra="  trading_state: halted\n"))
        n.h.runtime.apply(halted, source="cli")
        (n.folder / "market-m2.yaml").unlink()
        result = await n.source.rescan()
        assert result.outcome == "applied" and result.pruned == ()
        assert n.h.runtime.resources.get("Market", "m2") is not None


async def test_an_unchanged_digest_is_skipped_and_sighup_forces_a_rescan(tmp_path: Path) -> None:
    async with gitops_node(tmp_path) as n:
        path = n.folder / "strategy.yaml"
        history = len(n.h.runtime.resources.history("Strategy", "s1"))
        rescans = n.source.rescans
        batches = n.source.batches
        os.utime(path)  # touch
        path.write_bytes(path.read_bytes())  # rewritten with the same bytes
        await wait_until(lambda: n.source.batches > batches, what="the watcher to see the touch")
        assert n.source.last_result is not None and n.source.last_result.outcome == "unchanged"
        assert n.source.rescans == rescans
        assert len(n.h.runtime.resources.history("Strategy", "s1")) == history

        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, n.source.request_rescan, "signal")
        try:
            os.kill(os.getpid(), signal.SIGHUP)
            await wait_until(lambda: n.source.rescans == rescans + 1, what="the SIGHUP rescan")
        finally:
            loop.remove_signal_handler(signal.SIGHUP)
        assert n.source.last_result is not None and n.source.last_result.outcome == "applied"
        assert n.source.last_result.changed == ()
        assert len(n.h.runtime.resources.history("Strategy", "s1")) == history


def git(folder: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    done = subprocess.run(["git", "-C", str(folder), *args], check=True, capture_output=True, text=True, env=env)
    return done.stdout.strip()


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
async def test_a_git_checkout_records_the_commit_as_the_revision_source(tmp_path: Path) -> None:
    async with simulator(tmp_path / "probe") as (sim, _base):
        tickers = sorted(t for t, m in sim.state.exchange.markets.items() if m.status == "active")
    folder = tmp_path / "checkout"
    write_bundle(folder, tickers)
    git(folder, "init", "-q")
    git(folder, "add", ".")
    git(folder, "commit", "-q", "-m", "first")
    first = git(folder, "rev-parse", "--short", "HEAD")
    async with gitops_node(tmp_path, watch=False, folder=folder) as n:
        assert n.h.runtime.resources.history("Strategy", "s1")[-1].source == f"git:{first}"
        assert n.status()["last_commit"] == first

        (folder / "strategy.yaml").write_text(strategy_yaml(spread="0.08"))
        git(folder, "commit", "-q", "-am", "wider")
        second = git(folder, "rev-parse", "--short", "HEAD")
        result = await n.source.rescan()
        assert result.changed == ("Strategy/s1",)
        assert n.h.runtime.resources.history("Strategy", "s1")[-1].source == f"git:{second}"
        assert n.status()["last_commit"] == second

        # An uncommitted edit says so: the files are not that commit.
        (folder / "strategy.yaml").write_text(strategy_yaml(spread="0.06"))
        await n.source.rescan()
        assert n.h.runtime.resources.history("Strategy", "s1")[-1].source == f"git:{second}-dirty"

        # m1, applied at the first commit, is pruned when a later commit removes its file.
        (folder / "market-m1.yaml").unlink()
        git(folder, "commit", "-q", "-am", "drop m1")
        result = await n.source.rescan()
        assert result.pruned == ("Market/m1",)


async def test_mmctl_run_watch_applies_a_saved_file(tmp_path: Path) -> None:
    """``run_node`` with ``watch``: the embedded simulator, the start-up revisions from the watched files, a save
    applied by the watcher; SIGINT stops it."""
    folder = tmp_path / "resources"
    folder.mkdir()
    node = (
        "apiVersion: mm/v1alpha1\nkind: TradingNode\nmetadata: {name: local}\n"
        f"spec:\n  state_dir: {tmp_path / 'state'}\n  persistence: {{path: {tmp_path / 'state' / 'mm.db'}}}\n"
        "  api: {port: 0}\n"
    )
    for name, text in {
        "exchange.yaml": EXCHANGE_YAML,
        "strategy.yaml": strategy_yaml(),
        "risk.yaml": RISK_YAML,
        "node.yaml": node,
    }.items():
        (folder / name).write_text(text)
    sources: list[GitOpsSource] = []

    # The option plumbing is what this checks; quoting is covered above.
    started: list[bool] = []
    options = RunOptions(
        paths=[str(folder)],
        state_dir=tmp_path / "state",
        api_port=0,
        watch=[str(folder)],
        on_gitops=sources.append,
        on_started=lambda _runtime, _api: started.append(True),  # signal handlers are installed right after
    )
    task = asyncio.create_task(run_node(options))
    try:
        await wait_until(lambda: bool(started), what="the node started")
        source = sources[0]
        assert source.source_status["phase"] == "Ready"
        assert source.source_status["source"] == f"file:{folder.resolve()}"
        runtime = source.runtime
        assert runtime.resources.history("Strategy", "s1")[-1].source == f"file:{folder.resolve()}"
        node_status = runtime.resources.require("TradingNode", "local").status
        assert node_status["gitops"]["phase"] == "Ready"
        generation = runtime.resources.require("Strategy", "s1").generation

        async def saved() -> None:
            # Rewritten until seen: the watcher gives no signal that it is armed (identical rewrites are skipped).
            while runtime.resources.require("Strategy", "s1").generation == generation:
                (folder / "strategy.yaml").write_text(strategy_yaml(spread="0.08"))
                await asyncio.sleep(0.2)

        await asyncio.wait_for(saved(), 10.0)
        assert runtime.resources.history("Strategy", "s1")[-1].source == f"file:{folder.resolve()}"
    finally:
        if started:
            os.kill(os.getpid(), signal.SIGINT)  # run_node's own handler: a clean stop
        else:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            summary = await asyncio.wait_for(task, 30.0)
    assert "final" in summary


async def test_a_rollback_of_what_git_ops_manages_needs_the_source_suspended(tmp_path: Path) -> None:
    async with gitops_node(tmp_path, watch=False) as n:
        path = n.folder / "strategy.yaml"
        path.write_text(strategy_yaml(spread="0.08"))
        await n.source.rescan()
        assert n.generation("Strategy", "s1") == 2
        with pytest.raises(RollbackError, match="--suspend-source"):
            await n.h.runtime.rollback("Strategy", "s1")
        assert n.generation("Strategy", "s1") == 2  # refused before anything was done

        def suspend(reason: str) -> bool:
            n.source.suspend(reason)
            return True

        _outcome, target, _cancelled = await n.h.runtime.rollback("Strategy", "s1", suspend_source=suspend)
        assert target.revision == 1 and n.generation("Strategy", "s1") == 3
        assert n.status()["phase"] == "Suspended"
        path.write_text(strategy_yaml(spread="0.10"))  # the source keeps changing: nothing is applied now
        result = await n.source.rescan(force=True)
        assert result.changed == () and n.generation("Strategy", "s1") == 3
