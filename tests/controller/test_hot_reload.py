"""Hot reload and component swap on a running node (FR-1001–1006): state transfer, rollback of a config whose
first quote is invalid, the per-minute change limit, and the order-reject-rate kill switch trigger."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from mm.reconcilers.market import MarketReconciler, MarketRuntime
from mm.sim.types import BookSide as SimBookSide
from mm.strategy.volatility import EWMAVolatility, RealizedVolatility
from tests.controller.harness import (
    EXCHANGE_YAML,
    RISK_YAML,
    admitted,
    market_yaml,
    running_node,
    strategy_yaml,
    wait_until,
)

EWMA = "    volatility: {type: ewma, params: {alpha: 0.9, min_observations: 2, initial_volatility: 0.0001}}\n"
REALIZED = "    volatility: {type: realized, params: {window_seconds: 600}, state_transfer: true}\n"


def strategy_with(volatility_line: str, spread: str = "0.04") -> str:
    text = strategy_yaml(spread=spread)
    return (
        "\n".join(
            volatility_line.rstrip("\n") if "volatility:" in line and "type: fixed" in line else line
            for line in text.splitlines()
        )
        + "\n"
    )


def node_docs(strategy: str, node: str = "") -> object:
    def build(tickers: list[str]) -> list[str]:
        docs = [EXCHANGE_YAML, strategy, RISK_YAML, market_yaml("m1", tickers[0])]
        return docs + ([node] if node else [])

    return build


def runtime_of(h: object, name: str = "m1") -> MarketRuntime:
    runtime = h.runtime.node.market_state[name]  # type: ignore[attr-defined]
    assert isinstance(runtime, MarketRuntime)
    return runtime


async def test_a_component_swap_keeps_quoting_and_transfers_the_estimator_state(tmp_path: Path) -> None:
    async with running_node(tmp_path, node_docs(strategy_with(EWMA))) as h:  # type: ignore[arg-type]
        ticker = h.tickers()[0]
        h.seed_book(ticker)
        await wait_until(lambda: h.quoting("m1", ticker), what="quoting")
        before = runtime_of(h).engine.volatility
        assert isinstance(before, EWMAVolatility)
        t = h.sim.clock.now_us()
        for i, mid in enumerate((0.50, 0.51, 0.49, 0.52, 0.50)):  # what the estimator has learnt so far
            before.update(mid, t + (i + 1) * 1_000_000)
        learnt = before.variance_rate()
        assert learnt > 0
        changed = h.runtime.apply(admitted(strategy_with(REALIZED)))
        assert changed == ["Strategy/s1"]
        await wait_until(lambda: isinstance(runtime_of(h).engine.volatility, RealizedVolatility), what="the swap")
        after = runtime_of(h).engine.volatility
        assert after.get_state()["variance_rate"] == pytest.approx(learnt)  # inherited, not started from zero
        await wait_until(lambda: h.quoting("m1", ticker), what="quoting after the swap")
        ours = h.our_orders(ticker)
        assert len(ours) == 2 and len({o.side for o in ours}) == 2  # type: ignore[attr-defined]
        assert any(e[2] == "Reloaded" for e in h.runtime.node.events)


async def test_a_config_whose_first_quote_is_invalid_is_rolled_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = MarketReconciler._validate

    def refuse_wide(self: MarketReconciler, runtime: MarketRuntime) -> str | None:
        if runtime.strategy.components.spread.params.base_spread > Decimal("0.5"):  # type: ignore[union-attr]
            return "trial quote crossed the book"
        return original(self, runtime)

    monkeypatch.setattr(MarketReconciler, "_validate", refuse_wide)
    async with running_node(tmp_path, node_docs(strategy_yaml())) as h:  # type: ignore[arg-type]
        ticker = h.tickers()[0]
        h.seed_book(ticker)
        await wait_until(lambda: h.quoting("m1", ticker), what="quoting")
        old_digest = h.runtime.resources.require("Strategy", "s1").digest
        placed = {o.order_id for o in h.our_orders(ticker)}  # type: ignore[attr-defined]
        h.runtime.apply(admitted(strategy_yaml(spread="0.90")))
        await wait_until(
            lambda: any(e[2] == "ReloadRolledBack" for e in h.runtime.node.events), what="the rollback event"
        )
        await wait_until(
            lambda: h.runtime.resources.require("Strategy", "s1").digest == old_digest, what="spec rolled back"
        )
        history = h.runtime.resources.history("Strategy", "s1")
        assert [r.source for r in history][-1] == "rollback" and len(history) == 3
        assert {o.order_id for o in h.our_orders(ticker)} == placed  # no order was sent for the bad config
        market = h.runtime.resources.require("Market", "m1")
        assert market.is_true("ReloadFailed")


async def test_changes_beyond_the_per_minute_limit_wait(tmp_path: Path) -> None:
    node = """\
apiVersion: mm/v1alpha1
kind: TradingNode
metadata: {name: n1}
spec:
  hot_reload: {max_changes_per_minute: 1}
"""
    async with running_node(tmp_path, node_docs(strategy_yaml(), node)) as h:  # type: ignore[arg-type]
        ticker = h.tickers()[0]
        h.seed_book(ticker)
        await wait_until(lambda: h.quoting("m1", ticker), what="quoting")
        h.runtime.apply(admitted(strategy_yaml(spread="0.06")))
        await wait_until(lambda: len(runtime_of(h).reloads) == 1, what="the first change applied")
        await wait_until(
            lambda: (
                {o.side: o.price for o in h.our_orders(ticker)}  # type: ignore[attr-defined]
                == {SimBookSide.BID: 4700, SimBookSide.ASK: 5300}
            ),
            what="the first change's quotes",
        )
        h.runtime.apply(admitted(strategy_yaml(spread="0.08")))
        await wait_until(
            lambda: h.runtime.resources.require("Market", "m1").is_true("ReloadDeferred"), what="the limit"
        )
        assert runtime_of(h).strategy.components.spread.params.base_spread == Decimal("0.06")  # type: ignore[union-attr]
        prices = {o.side: o.price for o in h.our_orders(ticker)}  # type: ignore[attr-defined]
        assert prices == {SimBookSide.BID: 4700, SimBookSide.ASK: 5300}  # still the first change's quotes
        h.base.advance(61)  # a minute later the waiting change goes through
        await wait_until(
            lambda: (
                {o.side: o.price for o in h.our_orders(ticker)}  # type: ignore[attr-defined]
                == {SimBookSide.BID: 4600, SimBookSide.ASK: 5400}
            ),
            what="the deferred change",
        )


async def test_a_high_order_reject_rate_trips_the_kill_switch(tmp_path: Path) -> None:
    async with running_node(tmp_path, node_docs(strategy_yaml())) as h:  # type: ignore[arg-type]
        ticker = h.tickers()[0]
        h.seed_book(ticker)
        await wait_until(lambda: h.quoting("m1", ticker), what="quoting")
        node = h.runtime.node
        policy = h.runtime.resources.require("RiskPolicy", "r1").spec.kill_switch
        assert node.note_order_results([False] * 4, policy) is None
        reason = node.note_order_results([True] * 8, policy)
        assert reason is not None and "reject rate 8/" in reason  # plus the accepted orders placed so far
        assert node.kill is not None
        await node.kill(reason, "rule")
        assert node.node_switch.tripped and h.our_orders(ticker) == []
