"""A MarketSelector rolls the node to the next hourly markets by itself; resource files are watched and
re-applied (a bad edit is refused whole and the node keeps the last good revision)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mm.controller.launch import FileReloader
from mm.sim.types import BookSide as SimBookSide
from tests.controller.harness import (
    EXCHANGE_YAML,
    RISK_YAML,
    Harness,
    admitted,
    make_runtime,
    market_yaml,
    running_node,
    simulator,
    strategy_yaml,
    wait_until,
)

US = 1_000_000

SELECTOR_YAML = """\
apiVersion: mm/v1alpha1
kind: MarketSelector
metadata: {name: hourly}
spec:
  exchange_ref: sim
  series: [KXBTCD]
  filters: {min_time_to_settlement: 10, max_spread: 0.5}
  max_concurrent: 1
  selection_strategy: closest_to_even
  deactivate_before_close_minutes: 5
  template:
    strategy_ref: s1
    risk_policy_ref: r1
    execution: live
"""


def selected(h: Harness) -> list[str]:
    return sorted(m.spec.ticker for m in h.runtime.resources.all("Market") if m.spec.trading_state == "active")


def seed_all(h: Harness) -> None:
    for ticker in h.tickers():
        if not any(o.user_id.startswith("crowd") for o in h.exchange.markets[ticker].engine.resting()):
            h.seed_book(ticker)


async def test_the_selector_quotes_this_hour_then_rolls_to_the_next(tmp_path: Path) -> None:
    def docs(_tickers: list[str]) -> list[str]:
        return [EXCHANGE_YAML, strategy_yaml(), RISK_YAML, SELECTOR_YAML]

    async with running_node(tmp_path, docs) as h:
        seed_all(h)
        await wait_until(lambda: len(selected(h)) == 1, what="a market selected")
        first = selected(h)[0]
        event = h.exchange.markets[first].event_ticker
        await wait_until(lambda: len(h.our_orders(first)) == 2, what="quoting the first hour")

        close = h.exchange.markets[first].close_us
        h.base.advance_us(close + 60 * US - h.sim.clock.now_us())  # a minute past the close: next hour listed
        await wait_until(lambda: any(h.exchange.markets[t].event_ticker != event for t in h.tickers()), what="listing")
        seed_all(h)

        def rolled() -> bool:
            now = selected(h)
            return len(now) == 1 and h.exchange.markets[now[0]].event_ticker != event

        await wait_until(rolled, what="the roll-over to the next hour")
        second = selected(h)[0]
        await wait_until(lambda: len(h.our_orders(second)) == 2, what="quoting the next hour")
        assert h.our_orders(first) == []
        phases = h.runtime.resources.require("MarketSelector", "hourly").status["selection"]
        assert isinstance(phases, dict)
        assert any(e[2] == "MarketActive" and second in e[3] for e in h.runtime.node.events)


async def test_edited_files_are_applied_and_a_bad_edit_is_refused_whole(tmp_path: Path) -> None:
    async with simulator(tmp_path) as (sim, _base):
        runtime = make_runtime(sim, tmp_path / "node")
        harness = Harness(sim, _base, runtime, tmp_path / "node")
        ticker = harness.tickers()[0]
        folder = tmp_path / "resources"
        folder.mkdir()
        for name, text in {
            "exchange.yaml": EXCHANGE_YAML,
            "strategy.yaml": strategy_yaml(),
            "risk.yaml": RISK_YAML,
            "market.yaml": market_yaml("m1", ticker),
        }.items():
            (folder / name).write_text(text)
        await runtime.start(admitted(*(p.read_text() for p in sorted(folder.glob("*.yaml")))))
        reloader = FileReloader(runtime, [str(folder)])
        stop = asyncio.Event()
        watcher = asyncio.create_task(reloader.watch(stop))
        try:
            harness.seed_book(ticker)
            await wait_until(lambda: harness.quoting("m1", ticker), what="quoting")

            (folder / "strategy.yaml").write_text(strategy_yaml(spread="0.08"))
            await wait_until(lambda: ["Strategy/s1"] in reloader.applied, what="the edit applied by the watcher")
            await wait_until(
                lambda: (
                    {o.side: o.price for o in harness.our_orders(ticker)}  # type: ignore[attr-defined]
                    == {SimBookSide.BID: 4600, SimBookSide.ASK: 5400}
                ),
                what="quotes from the edited file",
            )
            good = runtime.resources.require("Strategy", "s1").generation

            (folder / "strategy.yaml").write_text(strategy_yaml(spread="0.02"))
            (folder / "market.yaml").write_text(market_yaml("m1", ticker).replace("execution: live", "execution: warp"))
            await wait_until(lambda: bool(reloader.refused), what="the bad bundle refused")
            assert "market.yaml" in reloader.refused[-1] and "execution" in reloader.refused[-1]
            assert runtime.resources.require("Strategy", "s1").generation == good  # nothing of it was applied
        finally:
            stop.set()
            watcher.cancel()
            await runtime.stop("drain")
