"""Shutdown modes (FR-1101) and crash recovery (FR-1202) against the in-process simulator."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import orjson

from mm.controller.shutdown import drain
from mm.sim.exchange import NewOrder
from mm.sim.types import BookSide as SimBookSide
from mm.sim.types import TimeInForce
from mm.state.store import Store
from tests.controller.harness import (
    EXCHANGE_YAML,
    RISK_YAML,
    Harness,
    admitted,
    make_runtime,
    market_yaml,
    running_node,
    strategy_yaml,
    wait_until,
)


def node_yaml(spec: str) -> str:
    return f"apiVersion: mm/v1alpha1\nkind: TradingNode\nmetadata: {{name: n1}}\nspec:\n{spec}"


def documents(node_spec: str = "") -> Callable[[list[str]], list[str]]:
    def build(tickers: list[str]) -> list[str]:
        docs = [EXCHANGE_YAML, strategy_yaml(), RISK_YAML, market_yaml("m1", tickers[0])]
        return docs + ([node_yaml(node_spec)] if node_spec else [])

    return build


async def quoting(h: Harness) -> str:
    ticker = h.tickers()[0]
    h.seed_book(ticker)
    await wait_until(lambda: h.quoting("m1", ticker), what="quoting")
    return ticker


def buy_for_us(h: Harness, ticker: str, price: int, size: int) -> None:
    """Our account takes the crowd's ask directly at the exchange (as another client of ours would): a fill
    the node did not send."""
    h.exchange.create_order(
        h.sim.api_key.user_id,
        NewOrder(ticker, SimBookSide.BID, price, size, time_in_force=TimeInForce.IMMEDIATE_OR_CANCEL),
    )
    h.sim.state.publish()


async def test_drain_cancels_everything_and_waits_for_the_venue_to_confirm(tmp_path: Path) -> None:
    async with running_node(tmp_path, documents()) as h:
        await quoting(h)
        outcome = await h.runtime.stop("drain", "SIGTERM")
        assert outcome is not None and outcome.mode == "drain" and outcome.trigger == "SIGTERM"
        assert outcome.cancelled == 2 and outcome.open_orders_left == 0 and outcome.flushed
        assert h.our_orders() == []  # the exchange's truth
        assert h.runtime.exit_code() == 0
        assert not (h.state_dir / "mmctl.lock").exists()
        final = [e for e in h.runtime.node.events if e[2] == "FinalState"]
        assert final and "open orders 0" in final[-1][3] and "mode drain (SIGTERM)" in final[-1][3]


async def test_pause_cancels_and_saves_the_mode_in_the_checkpoint(tmp_path: Path) -> None:
    async with running_node(tmp_path, documents()) as h:
        await quoting(h)
        outcome = await h.runtime.stop("pause", "api")
        assert outcome is not None and outcome.mode == "pause" and h.our_orders() == []
        saved = orjson.loads((h.state_dir / "checkpoint.json").read_bytes())
        assert "pause" in json.dumps(saved)


async def test_unwind_flattens_within_the_slippage(tmp_path: Path) -> None:
    spec = "  shutdown: {unwind: {enabled: true, max_slippage: 0.05, timeout_seconds: 10}}\n"
    async with running_node(tmp_path, documents(spec)) as h:
        ticker = await quoting(h)
        # the crowd sells 3 into our bid at 0.48: we are long 3
        h.take(ticker, SimBookSide.ASK, 4800, 300)
        account = h.runtime.node.exchanges["sim"].accounts["live"]
        await wait_until(lambda: account.ledger.net_units(ticker) == 300, what="long 3")
        outcome = await h.runtime.stop("unwind", "api")
        assert outcome is not None and outcome.mode == "unwind"
        assert outcome.unwound_contracts == Decimal(3)
        venue = h.exchange.accounts[h.sim.api_key.user_id].positions.get(ticker, 0)
        assert venue == 0, "flat at the exchange"
        # sold into the crowd's bid at 0.45: inside mid 0.50 − 0.05
        assert h.our_orders() == []


async def test_unwind_without_enabling_drains_instead(tmp_path: Path) -> None:
    async with running_node(tmp_path, documents()) as h:
        ticker = await quoting(h)
        h.take(ticker, SimBookSide.ASK, 4800, 300)
        account = h.runtime.node.exchanges["sim"].accounts["live"]
        await wait_until(lambda: account.ledger.net_units(ticker) == 300, what="long 3")
        outcome = await h.runtime.stop("unwind", "api")
        assert outcome is not None and outcome.mode == "drain"
        assert h.exchange.accounts[h.sim.api_key.user_id].positions.get(ticker, 0) == 300  # position left


async def test_a_drain_stops_waiting_when_interrupted(tmp_path: Path) -> None:
    """A second Ctrl-C during a drain (launch sets ``interrupt_wait``): the wait ends at once, orders or not."""
    async with running_node(tmp_path, documents()) as h:
        await quoting(h)
        interrupt = asyncio.Event()
        waiting = asyncio.create_task(drain(h.runtime.node, 60.0, interrupt))
        await asyncio.sleep(0)
        assert not waiting.done()  # our two orders rest: the drain waits for them
        interrupt.set()
        assert await asyncio.wait_for(waiting, 5.0) is False


async def test_a_kill_switch_forces_immediate_and_its_exit_code(tmp_path: Path) -> None:
    async with running_node(tmp_path, documents()) as h:
        await quoting(h)
        await h.runtime.kill("test")
        outcome = await h.runtime.stop("drain", "SIGTERM")
        assert outcome is not None and outcome.mode == "immediate"
        assert h.runtime.exit_code() == 4


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def leave_crash_marker(state_dir: Path, started_us: int) -> None:
    """What a kill -9 leaves: the lock file of a process that no longer exists."""
    lock = {"pid": dead_pid(), "host": socket.gethostname(), "started_us": started_us}
    (state_dir / "mmctl.lock").write_bytes(orjson.dumps(lock))


async def test_recovery_within_tolerance_resumes_by_itself_and_stores_the_missed_fill(tmp_path: Path) -> None:
    state_dir = tmp_path / "node"
    build = documents("  recovery: {auto_resume_threshold: {position_contracts: 10, pnl_dollars: 5}}\n")
    async with running_node(tmp_path, build, state_dir=state_dir) as h:
        ticker = await quoting(h)
        started = h.runtime.lock.info.started_us if h.runtime.lock.info else 0
        await h.runtime.stop("drain")
        # while no node runs: we buy 3 at the crowd's ask, then the node "crashed" (its lock is left behind)
        buy_for_us(h, ticker, 5500, 300)
        leave_crash_marker(state_dir, started)
        restarted = make_runtime(h.sim, state_dir)
        await restarted.start(admitted(*build(h.tickers())))
        try:
            assert restarted.recovery is not None
            assert restarted.node.holds.get("recovery") is not None  # no trading before reconciling
            await wait_until(
                lambda: restarted.recovery is not None and restarted.recovery.outcome == "resumed", what="auto-resume"
            )
            assert restarted.node.holds.get("recovery") is None
            (assessment,) = restarted.recovery.assessments
            assert assessment.max_position_diff == Decimal(3)
            reasons = [e[2] for e in restarted.node.events]
            assert "RecoveryDiscrepancy" in reasons and "RecoveryComplete" in reasons
            report = orjson.loads((state_dir / "recovery.json").read_bytes())
            assert report["outcome"] == "resumed" and report["seconds"] < 30
            await wait_until(lambda: h.quoting("m1", ticker), what="quoting again")
            assert restarted.node.exchanges["sim"].accounts["live"].ledger.net_units(ticker) == 300
        finally:
            await restarted.stop("drain")
        store = await Store.open(state_dir / "mmctl.db")
        try:
            fills = await store.fills(market_id=ticker)
        finally:
            await store.close()
        venue_fills = [f for f in h.exchange.fills if f[0] == h.sim.api_key.user_id]
        assert len(fills) == len(venue_fills) == 1, "the fill made while no node ran is stored, once"


async def test_recovery_outside_tolerance_waits_for_a_person(tmp_path: Path) -> None:
    state_dir = tmp_path / "node"
    build = documents("  recovery: {auto_resume_threshold: {position_contracts: 1, pnl_dollars: 5}}\n")
    async with running_node(tmp_path, build, state_dir=state_dir) as h:
        ticker = await quoting(h)
        await h.runtime.stop("drain")
        buy_for_us(h, ticker, 5500, 300)
        leave_crash_marker(state_dir, 0)
        restarted = make_runtime(h.sim, state_dir)
        await restarted.start(admitted(*build(h.tickers())))
        try:
            await wait_until(
                lambda: restarted.recovery is not None and restarted.recovery.outcome == "awaiting_confirmation",
                what="recovery to stop for a person",
            )
            hold = restarted.node.holds.get("recovery")
            assert hold is not None and hold.latched and "resume --confirm" in hold.reason
            await wait_until(
                lambda: restarted.resources.require("Market", "m1").status.get("phase") == "Paused",
                what="the market paused",
            )
            reconciles = restarted.manager.reconciles
            await wait_until(lambda: restarted.manager.reconciles >= reconciles + 4, what="more cycles while held")
            assert h.our_orders() == [] and not restarted.is_ready()
            assert any(e[2] == "RecoveryNeedsApproval" for e in restarted.node.events)
            restarted.resume(confirm=True, operator="tester")
            await wait_until(lambda: h.quoting("m1", ticker), what="quoting after the person's resume")
        finally:
            await restarted.stop("drain")


async def test_a_clean_restart_is_not_a_recovery(tmp_path: Path) -> None:
    state_dir = tmp_path / "node"
    async with running_node(tmp_path, documents(), state_dir=state_dir) as h:
        await quoting(h)
        await h.runtime.stop("drain")
        restarted = make_runtime(h.sim, state_dir)
        await restarted.start(admitted(*documents()(h.tickers())))
        try:
            assert restarted.recovery is None and restarted.node.holds.active() == []
        finally:
            await restarted.stop("drain")


async def test_a_stalled_reconcile_loop_fails_the_health_check_and_asks_for_a_pause(tmp_path: Path) -> None:
    """FR-1102: health check failure → shutdown in ``health_failure_mode`` (pause); the watch only asks."""
    from mm.controller.launch import _health_watch  # noqa: PLC0415
    from mm.controller.shutdown import ShutdownRequest  # noqa: PLC0415
    from mm.specs.node import TradingNodeSpec  # noqa: PLC0415

    async with running_node(tmp_path, documents()) as h:
        await quoting(h)
        assert h.runtime.health_problems(60.0) == []
        await h.runtime.manager.stop()  # the reconcile loop stops making progress
        h.runtime.health_problems(0.2)  # the last progress seen
        await wait_until(lambda: bool(h.runtime.health_problems(0.2)), what="the stall to count")
        assert "no reconcile" in h.runtime.health_problems(0.2)[0]
        spec = TradingNodeSpec.model_validate(
            {"network": {"health_check": {"ping_interval_seconds": "0.1", "max_missed_pings": 2}}}
        )
        asked: list[ShutdownRequest] = []
        await asyncio.wait_for(_health_watch(h.runtime, spec, asked.append), 10.0)
        assert asked == [ShutdownRequest("pause", "health")]
        assert any(e[2] == "HealthCheckFailed" for e in h.runtime.node.events)
