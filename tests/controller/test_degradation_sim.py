"""The degradation monitor on a running node against the simulator's injected faults (NFR-202/203/204):
latency widens or pauses, a skewed exchange clock is reported (and pauses with pause_trading), a full outage
holds the node — and each clears by itself when the fault is removed.

Each test detaches the node's own monitor and drives one with its own spec, checked in a loop until the condition
holds; effects are asserted at the exchange (our resting orders) and in the Market's status."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mm.clock import WallClock
from mm.controller.degradation import DegradationMonitor
from mm.controller.node import NodeContext
from mm.sim.types import BookSide as SimBookSide
from mm.specs.node import TradingNodeSpec
from tests.controller.harness import (
    EXCHANGE_YAML,
    RISK_YAML,
    Harness,
    market_yaml,
    running_node,
    strategy_yaml,
    wait_until,
)

SLOW = 30.0
"""Waits while every authenticated request takes 0.5 s (a bound on waiting, not a timing assertion)."""


def one_market(tickers: list[str]) -> list[str]:
    return [EXCHANGE_YAML, strategy_yaml(), RISK_YAML, market_yaml("m1", tickers[0])]


def node_spec(**blocks: Any) -> TradingNodeSpec:
    return TradingNodeSpec.model_validate(blocks)


async def monitor_for(h: Harness, spec: TradingNodeSpec) -> DegradationMonitor:
    """A monitor driven by the test (checked in its loop), in place of the node's own."""
    await h.runtime.detach_degradation_monitor()
    return DegradationMonitor(h.runtime.node, lambda: spec, WallClock())


async def check_until(
    monitor: DegradationMonitor, condition: Callable[[], bool], what: str, timeout: float = SLOW
) -> None:
    async def loop() -> None:
        while True:
            await monitor.check()
            if condition():
                return
            await asyncio.sleep(0.05)

    try:
        await asyncio.wait_for(loop(), timeout)
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout} s waiting for {what}") from None


def reasons(node: NodeContext) -> list[str]:
    return [reason for _, _, reason, _ in node.events]


def messages(node: NodeContext, reason: str) -> list[str]:
    return [message for _, _, r, message in node.events if r == reason]


def prices(h: Harness, ticker: str) -> dict[SimBookSide, int]:
    return {o.side: o.price for o in h.our_orders(ticker)}  # type: ignore[attr-defined]


async def quoting(h: Harness) -> str:
    ticker = h.tickers()[0]
    h.seed_book(ticker)
    await wait_until(lambda: h.quoting("m1", ticker), what="quotes on both sides")
    return ticker


LATENCY = {"warn_threshold_ms": 100, "critical_threshold_ms": 300}
PROBE_SLOWLY = {"ping_interval_seconds": 5, "ping_timeout_seconds": 2, "max_missed_pings": 3}


async def test_critical_latency_widens_quotes_at_the_exchange_and_clears_when_latency_is_gone(tmp_path: Path) -> None:
    async with running_node(tmp_path, one_market) as h:
        ticker = await quoting(h)
        node = h.runtime.node
        monitor = await monitor_for(h, node_spec(network={"latency": LATENCY, "health_check": PROBE_SLOWLY}))
        await monitor.check()
        assert node.holds.spread_multiplier() == 1.0 and not node.holds.blocked
        assert prices(h, ticker) == {SimBookSide.BID: 4800, SimBookSide.ASK: 5200}

        h.sim.state.faults.rest_latency_s = 0.5
        await check_until(monitor, lambda: node.holds.spread_multiplier() == 2.0, "spreads widened ×2")
        assert "LatencyCritical" in reasons(node) and not node.holds.blocked
        rtt = h.runtime.metrics.registry.get_sample_value("mm_exchange_rtt_seconds", {"exchange": "sim"})
        assert rtt is not None and rtt > 0.3
        # mid 0.50, half-spread 0.02 doubled: 0.46 / 0.54 at the exchange
        await wait_until(
            lambda: prices(h, ticker) == {SimBookSide.BID: 4600, SimBookSide.ASK: 5400},
            timeout=SLOW,
            what="widened quotes at the exchange",
        )

        h.sim.state.faults.rest_latency_s = 0.0
        await check_until(monitor, lambda: "LatencyNormal" in reasons(node), "latency back to normal")
        assert node.holds.spread_multiplier() == 1.0
        assert reasons(node).count("LatencyCritical") == 1  # one alert for the episode
        await wait_until(
            lambda: prices(h, ticker) == {SimBookSide.BID: 4800, SimBookSide.ASK: 5200},
            timeout=SLOW,
            what="normal quotes again",
        )
        assert monitor.errors == 0


async def test_critical_latency_with_pause_cancels_and_resumes(tmp_path: Path) -> None:
    async with running_node(tmp_path, one_market) as h:
        ticker = await quoting(h)
        node = h.runtime.node
        latency = {**LATENCY, "action_on_critical": "pause"}
        monitor = await monitor_for(h, node_spec(network={"latency": latency, "health_check": PROBE_SLOWLY}))

        h.sim.state.faults.rest_latency_s = 0.5
        await check_until(monitor, lambda: node.holds.get("latency/sim") is not None, "the latency hold")
        assert node.holds.spread_multiplier() == 1.0
        await wait_until(lambda: not h.our_orders(ticker), timeout=SLOW, what="our orders cancelled")
        await wait_until(lambda: h.market_status("m1").get("phase") == "Paused", what="the Market paused")

        h.sim.state.faults.rest_latency_s = 0.0
        # paused, the node sends nothing: only the monitor's probes can see the latency recover
        await check_until(monitor, lambda: node.holds.get("latency/sim") is None, "the hold cleared")
        assert "HoldCleared" in reasons(node)
        await wait_until(lambda: h.quoting("m1", ticker), timeout=SLOW, what="quoting again")


async def test_a_skewed_exchange_clock_is_reported_with_its_offset(tmp_path: Path) -> None:
    async with running_node(tmp_path, one_market) as h:
        ticker = await quoting(h)
        node = h.runtime.node
        # check_interval_seconds: 1 — with nothing traded, the monitor's probes bring a clock reading every second
        time_sync = {"max_drift_ms": 100, "action_on_drift": "warn", "check_interval_seconds": 1}
        monitor = await monitor_for(h, node_spec(time_sync=time_sync))
        await monitor.check()
        assert "ClockDrift" not in reasons(node)

        h.sim.state.faults.clock_skew_ms = 5000
        await check_until(monitor, lambda: "ClockDrift" in reasons(node), "the drift alert")
        [message] = messages(node, "ClockDrift")
        assert "ahead of ours" in message and "over the 100 ms allowed" in message
        assert not node.holds.blocked  # action warn: reported, not held
        clock = monitor.last_health["sim"].clock
        assert clock is not None and clock.low_us <= 5_000_000  # every bound holds the true offset
        assert clock.high_us is None or clock.high_us >= 5_000_000
        offset = h.runtime.metrics.registry.get_sample_value("mm_exchange_clock_offset_seconds", {"exchange": "sim"})
        assert offset is not None and offset > 0.1
        assert h.quoting("m1", ticker)


async def test_clock_drift_with_pause_trading_pauses_until_the_clock_agrees_again(tmp_path: Path) -> None:
    async with running_node(tmp_path, one_market) as h:
        ticker = await quoting(h)
        node = h.runtime.node
        time_sync = {"max_drift_ms": 100, "action_on_drift": "pause_trading", "check_interval_seconds": 2}
        monitor = await monitor_for(h, node_spec(time_sync=time_sync))

        h.sim.state.faults.clock_skew_ms = 5000
        await check_until(monitor, lambda: node.holds.get("clock_drift") is not None, "the clock_drift hold")
        hold = node.holds.get("clock_drift")
        assert hold is not None and hold.reason.startswith("sim: exchange clock") and not hold.latched
        await wait_until(lambda: not h.our_orders(ticker), what="our orders cancelled")
        assert h.market_status("m1").get("phase") == "Paused"

        h.sim.state.faults.clock_skew_ms = 0
        # the evidence of the skew ages out of the 2 s window; the probes' readings say the clocks agree
        await check_until(monitor, lambda: node.holds.get("clock_drift") is None, "the hold cleared")
        assert "ClockDriftCleared" in reasons(node)
        await wait_until(lambda: h.quoting("m1", ticker), what="quoting again")
        assert not node.node_switch.tripped  # a hold is not the kill switch


async def test_a_full_outage_holds_the_node_and_clears_when_the_exchange_is_back(tmp_path: Path) -> None:
    async with running_node(tmp_path, one_market) as h:
        ticker = await quoting(h)
        node = h.runtime.node
        health_check = {"ping_interval_seconds": 1, "ping_timeout_seconds": "0.5", "max_missed_pings": 2}
        monitor = await monitor_for(h, node_spec(network={"health_check": health_check}))
        await monitor.check()
        assert node.holds.get("network/sim") is None

        faults = h.sim.state.faults
        faults.rest_error_rate = 1.0
        faults.ws_silent = True
        await check_until(monitor, lambda: node.holds.get("network/sim") is not None, "the outage hold")
        [message] = messages(node, "NetworkOutage")
        assert "requests failed in a row" in message and "stream silent" in message
        assert node.holds.blocked and "network/sim: exchange unreachable" in node.holds.summary()
        for _ in range(3):  # the outage goes on: no new alert, the hold stays
            await monitor.check()
        assert reasons(node).count("NetworkOutage") == 1 and node.holds.get("network/sim") is not None

        faults.rest_error_rate = 0.0
        faults.ws_silent = False
        await check_until(monitor, lambda: node.holds.get("network/sim") is None, "the outage hold cleared")
        assert "NetworkRestored" in reasons(node)
        assert not node.node_switch.tripped
        await wait_until(lambda: h.quoting("m1", ticker), timeout=SLOW, what="quoting again")
