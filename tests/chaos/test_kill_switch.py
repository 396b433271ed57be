"""NFR-603 "kill switch": tripped at a seeded random moment while two markets quote and are being filled."""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.chaos.conftest import SEED
from tests.chaos.inproc import (
    RISK_YAML,
    assert_no_duplicates,
    assert_nothing_lost,
    chaos_node,
    settled_data,
    start_traffic,
)
from tests.chaos.results import Measurement
from tests.controller.harness import EXCHANGE_YAML, market_yaml, strategy_yaml, wait_until

pytestmark = pytest.mark.chaos


def two_markets(tickers: list[str]) -> list[str]:
    return [EXCHANGE_YAML, strategy_yaml(), RISK_YAML, market_yaml("m1", tickers[0]), market_yaml("m2", tickers[1])]


def latched_in_database(database: Path) -> bool:
    """What the durable latch says, read by another connection (what a restarted node will read)."""
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10.0)
    try:
        row = conn.execute("SELECT tripped FROM kill_switch WHERE scope = 'node'").fetchone()
    finally:
        conn.close()
    return row is not None and bool(row[0])


async def test_kill_switch_at_a_random_moment_cancels_everything_and_stays_latched(
    tmp_path: Path, measure: Callable[[str], Measurement]
) -> None:
    record = measure("kill_switch")
    delay = random.Random(SEED).uniform(0.5, 3.0)
    async with chaos_node(tmp_path, two_markets) as node:
        first, second = node.h.tickers()[:2]
        node.h.seed_book(first)
        node.h.seed_book(second)
        await wait_until(
            lambda: node.h.quoting("m1", first) and node.h.quoting("m2", second), what="both markets quoting"
        )
        runtime = node.h.runtime
        pump, monitor = start_traffic(node, SEED, interval_s=0.1)
        await asyncio.sleep(delay)  # the random moment itself (seeded): whatever is in flight then
        resting_before = len(node.resting())

        tripped = time.monotonic()
        await runtime.kill("chaos: kill switch at a random moment")
        await wait_until(lambda: not node.resting(), timeout=10, what="no order of ours resting at the exchange")
        record.recovered(time.monotonic() - tripped)
        record.note(delay_s=delay, resting_at_trigger=resting_before, fill_pump_takes=pump.takes)

        assert runtime.node.node_switch.tripped
        assert latched_in_database(node.h.state_dir / "mmctl.db")
        await wait_until(
            lambda: all(node.h.market_status(m).get("phase") == "Halted" for m in ("m1", "m2")), what="both Halted"
        )
        sent, reconciles = runtime.node.orders_sent, runtime.manager.reconciles
        await wait_until(lambda: runtime.manager.reconciles >= reconciles + 6, what="more cycles after the trip")
        assert runtime.node.orders_sent == sent and node.resting() == [], "something was sent after the trip"
        check = await settled_data(node)
        assert_no_duplicates(node, monitor.seen)
        assert_nothing_lost(record, check)
