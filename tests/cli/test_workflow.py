"""The kubectl-like workflow against a running node on the simulator (issue 9):
apply → wait Ready → diff exit 0 → edit → diff exit 1 with a plan → apply → orders move → history shows both
→ rollback → the earlier orders are back; and offline apply on a state dir, picked up by the node at start."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mm.api.server import ControlApi, load_or_create_token
from mm.cli.main import main
from mm.sim.types import BookSide as SimBookSide
from tests.controller.harness import (
    EXCHANGE_YAML,
    RISK_YAML,
    Harness,
    admitted,
    make_runtime,
    market_yaml,
    simulator,
    strategy_yaml,
    wait_until,
)


async def mmctl(*argv: str) -> int:
    """Run the CLI in a thread: it makes blocking HTTP calls to the API served on this event loop."""
    return await asyncio.to_thread(main, list(argv))


def prices(h: Harness, ticker: str) -> dict[SimBookSide, int]:
    return {o.side: o.price for o in h.our_orders(ticker)}  # type: ignore[attr-defined]


async def test_apply_diff_plan_history_rollback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    async with simulator(tmp_path) as (sim, base):
        state = tmp_path / "node"
        runtime = make_runtime(sim, state)
        h = Harness(sim, base, runtime, state)
        ticker = h.tickers()[0]
        await runtime.start(())
        api = ControlApi(runtime, load_or_create_token(state, None), host="127.0.0.1", port=0, metrics_public=False)
        await api.start()
        folder = tmp_path / "specs"
        folder.mkdir()
        files = {
            "exchange.yaml": EXCHANGE_YAML,
            "strategy.yaml": strategy_yaml(),
            "risk.yaml": RISK_YAML,
            "market.yaml": market_yaml("m1", ticker),
        }
        for name, text in files.items():
            (folder / name).write_text(text)
        common = ["--server", api.url, "--state-dir", str(state)]
        try:
            h.seed_book(ticker)
            assert await mmctl("apply", "-f", str(folder), *common) == 0
            lines = capsys.readouterr().out.splitlines()
            assert "market/m1 created" in lines and "strategy/s1 created" in lines
            assert await mmctl("wait", "market/m1", "--for", "condition=Ready", "--timeout", "10", *common) == 0
            await wait_until(lambda: prices(h, ticker) == {SimBookSide.BID: 4800, SimBookSide.ASK: 5200}, what="quotes")

            assert await mmctl("diff", "-f", str(folder), *common) == 0
            capsys.readouterr()
            (folder / "strategy.yaml").write_text(strategy_yaml(spread="0.08"))
            assert await mmctl("diff", "-f", str(folder), "--plan", *common) == 1
            shown = capsys.readouterr().out
            assert "-        base_spread: '0.04'" in shown or "base_spread" in shown
            assert "Market/m1:" in shown and "amend" in shown and "0.4600" in shown and "0.5400" in shown
            assert prices(h, ticker) == {SimBookSide.BID: 4800, SimBookSide.ASK: 5200}  # a diff changes nothing

            assert await mmctl("apply", "-f", str(folder), *common) == 0
            assert "strategy/s1 configured" in capsys.readouterr().out.splitlines()
            await wait_until(lambda: prices(h, ticker) == {SimBookSide.BID: 4600, SimBookSide.ASK: 5400}, what="moved")

            assert await mmctl("history", "strategy/s1", *common) == 0
            table = capsys.readouterr().out
            assert "\n1 " in "\n" + table.split("\n", 1)[1] and "\n2 " in table

            assert await mmctl("rollback", "strategy/s1", *common) == 0
            assert "rolled back to revision 1" in capsys.readouterr().out
            await wait_until(lambda: prices(h, ticker) == {SimBookSide.BID: 4800, SimBookSide.ASK: 5200}, what="back")
            assert len(runtime.resources.history("Strategy", "s1")) == 3

            assert await mmctl("get", "markets", "-o", "name", *common) == 0
            assert capsys.readouterr().out.strip() == "market/m1"
            assert await mmctl("status", *common) == 0
            assert "m1" in capsys.readouterr().out
            broken = market_yaml("m1", ticker).replace("execution: live", "execution: warp")
            (folder / "market.yaml").write_text(broken)
            assert await mmctl("apply", "-f", str(folder), *common) == 1
            assert "execution" in capsys.readouterr().err
            assert await mmctl("diff", "-f", str(folder), *common) == 2
        finally:
            await api.stop()
            await runtime.stop("drain")


async def test_offline_apply_is_picked_up_when_the_node_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with simulator(tmp_path) as (sim, base):
        state = tmp_path / "node"
        ticker = sorted(t for t, m in sim.state.exchange.markets.items() if m.status == "active")[0]
        folder = tmp_path / "specs"
        folder.mkdir()
        for name, text in {
            "exchange.yaml": EXCHANGE_YAML,
            "strategy.yaml": strategy_yaml(),
            "risk.yaml": RISK_YAML,
            "market.yaml": market_yaml("m1", ticker),
        }.items():
            (folder / name).write_text(text)
        assert await mmctl("apply", "-f", str(folder), "--state-dir", str(state)) == 0
        assert "market/m1 created" in capsys.readouterr().out
        assert await mmctl("get", "strategy", "s1", "-o", "json", "--state-dir", str(state)) == 0
        assert '"name": "s1"' in capsys.readouterr().out

        runtime = make_runtime(sim, state)
        h = Harness(sim, base, runtime, state)
        await runtime.start(admitted())  # no files: everything comes from the state dir
        try:
            h.seed_book(ticker)
            await wait_until(lambda: h.quoting("m1", ticker), what="quoting what was applied offline")
            assert runtime.resources.require("Market", "m1").generation == 1
        finally:
            await runtime.stop("drain")


async def test_shutdown_through_the_api_stops_run_node_with_that_mode(tmp_path: Path) -> None:
    """`mmctl shutdown --mode pause` against a node started by run_node (no Exchange: nothing to trade)."""
    from mm.controller.launch import RunOptions, run_node  # noqa: PLC0415

    folder = tmp_path / "specs"
    folder.mkdir()
    (folder / "strategy.yaml").write_text(strategy_yaml())
    (folder / "risk.yaml").write_text(RISK_YAML)
    state = tmp_path / "node"
    started = asyncio.Event()

    def on_started(_runtime: object, _api: object) -> None:
        started.set()

    task = asyncio.create_task(
        run_node(RunOptions(paths=[str(folder)], state_dir=state, api_port=0, duration_s=60, on_started=on_started))
    )
    await asyncio.wait_for(started.wait(), 20)
    assert (state / "api-url").exists()
    assert await mmctl("status", "--state-dir", str(state)) == 0  # found through STATE_DIR/api-url
    assert await mmctl("shutdown", "--mode", "pause", "--state-dir", str(state)) == 0
    summary = await asyncio.wait_for(task, 20)
    assert summary["orders_sent"] == 0 and not (state / "api-url").exists() and not (state / "mmctl.lock").exists()


async def test_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "offline"
    missing = str(tmp_path / "nope.yaml")
    assert await mmctl("apply", "-f", missing, "--state-dir", str(state)) == 2  # usage: no such file
    assert await mmctl("diff", "-f", missing, "--state-dir", str(state)) == 2  # diff: errors are > 1
    assert await mmctl("get", "gizmos", "--state-dir", str(state)) == 2  # unknown kind
    assert await mmctl("history", "strategy/none", "--state-dir", str(state)) == 1  # not found
    assert await mmctl("describe", "strategy/none", "--state-dir", str(state)) == 1  # needs a node
    assert await mmctl("rollback", "strategy", "--state-dir", str(state)) == 2  # KIND/NAME expected
    assert await mmctl("resume", "--state-dir", str(state)) == 2  # --confirm required
    capsys.readouterr()
