"""NFR-603 / FR-1202: ``kill -9`` of ``mmctl run`` at random moments while it quotes and is filled by the
simulator's crowd (``mmctl sim``, another process), restarted each time.

After every restart, once the node is ready and quoting: every exchange fill of ours is in its database exactly
once, its positions (``/status``, and the sum of its stored fills) equal the exchange's, and no order of ours
rests twice or outside the node's Markets. ``MM_CHAOS_KILL9_N`` sets the number of kills of the soak (default
20); the quick set kills once.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from mm.sim.exchange import NewOrder
from mm.sim.types import BookSide as SimBookSide
from tests.chaos.conftest import SEED
from tests.chaos.exchange_client import Admin
from tests.chaos.inproc import EXCHANGE, ChaosNode, assert_nothing_lost, one_market, settled_data
from tests.chaos.procs import External, TakerPump, node_on_sim
from tests.chaos.results import Measurement
from tests.controller.harness import Harness, admitted, make_runtime, simulator, wait_until

pytestmark = pytest.mark.chaos

SOAK_KILLS = int(os.environ.get("MM_CHAOS_KILL9_N", "20"))
ORPHAN = "mm:0123456789ab:1:yb:0"
"""A client order id of ours from an earlier run (our prefix: the restarted node adopts the order)."""
READY_TIMEOUT_S = 60.0


async def kill9_rounds(ext: External, kills: int, record: Measurement) -> None:
    rng = random.Random(SEED)
    node = ext.node
    # in an hour's last minutes the node selects nothing (every market closes too soon): wait for the next hour's
    await ext.wait_clear_of_the_hour()
    await ext.wait_for(lambda o: o.quoting(), READY_TIMEOUT_S, "the first run to quote")
    async with TakerPump(ext.sim, ext.reader, SEED).running() as pump:
        await _rounds(ext, kills, record, rng)
    record.note(taker_orders=pump.sent, taker_fills=pump.filled)
    code = node.terminate()
    record.note(final_exit_code=code)
    assert code == 0, node.log_tail()
    check, problems, _ = await ext.data()
    assert check.ok, f"after the final shutdown: {check.summary()}"
    assert problems == [], f"after the final shutdown: {problems}"
    assert ext.reader.resting() == [], "orders of ours left resting after a drain shutdown"


async def _rounds(ext: External, kills: int, record: Measurement, rng: random.Random) -> None:
    node = ext.node
    to_ready: list[float] = []
    to_quoting: list[float] = []
    recoveries: list[str] = []
    try:
        for round_ in range(1, kills + 1):
            await ext.wait_clear_of_the_hour()
            await ext.wait_for(lambda o: o.quoting(), READY_TIMEOUT_S, f"quoting before kill {round_}")
            await asyncio.sleep(rng.uniform(0.2, 3.0))  # the random moment itself (seeded), quoting and filling
            node.kill9()
            started = node.start()
            await ext.wait_for(lambda o: o.ready, READY_TIMEOUT_S, f"ready after kill {round_}")
            to_ready.append(time.monotonic() - started)
            seen = await ext.wait_for(lambda o: o.quoting(), READY_TIMEOUT_S, f"quoting after kill {round_}")
            to_quoting.append(time.monotonic() - started)
            recovery = seen.status["node"].get("recovery") or {}
            recoveries.append(str(recovery.get("outcome")))
            check, problems, _ = await ext.data()
            record.lost((record.data_lost or 0) + check.lost)
            assert check.ok, f"after kill {round_}: {check.summary()}"
            assert problems == [], f"after kill {round_}: {problems}"
    finally:  # what was measured is reported, also when a round fails
        record.series("restart_to_ready_s", to_ready)
        record.series("restart_to_quoting_s", to_quoting)
        record.note(kills=len(to_quoting), kills_planned=kills, recovery_outcomes=sorted(set(recoveries)))
        if to_quoting:
            record.recovered(max(to_quoting))
    record.note(exchange_fills=len(ext.reader.fills()))
    assert set(recoveries) == {"resumed"}, f"crash recovery outcomes: {recoveries}"


@pytest.mark.chaos_quick
async def test_kill9_once_recovers_without_losing_or_duplicating_anything(
    tmp_path: Path, measure: Callable[[str], Measurement]
) -> None:
    record = measure("kill9")
    async with node_on_sim(tmp_path, seed=SEED % 1000) as ext:
        await kill9_rounds(ext, 1, record)


async def test_kill9_soak(tmp_path: Path, measure: Callable[[str], Measurement]) -> None:
    record = measure("kill9")
    async with node_on_sim(tmp_path, seed=SEED % 1000) as ext:
        await kill9_rounds(ext, SOAK_KILLS, record)


@dataclass
class SlowStart:
    """A node starting over a crashed run's resting bid (ORPHAN, 5 contracts at 0.48) with REST slowed to 0.3 s,
    so the moments of its load can be aimed at; ``fill`` hits that bid for 2 contracts."""

    h: Harness
    node: ChaosNode
    ticker: str
    price: int

    def fill(self) -> None:
        self.h.take(self.ticker, SimBookSide.ASK, self.price, 200)


@asynccontextmanager
async def slow_start(tmp_path: Path) -> AsyncIterator[SlowStart]:
    async with simulator(tmp_path) as (sim, base), httpx.AsyncClient(base_url=sim.base_url) as http:
        exchange = sim.state.exchange
        ticker = sorted(t for t, m in exchange.markets.items() if m.status == "active")[1]
        me = sim.api_key.user_id
        left_behind = exchange.create_order(me, NewOrder(ticker, SimBookSide.BID, 4800, 500, client_order_id=ORPHAN))
        h = Harness(sim, base, make_runtime(sim, tmp_path / "node"), tmp_path / "node")
        h.seed_book(ticker)
        node = ChaosNode(h, Admin(http))
        await node.admin.set_faults(rest_latency_s=0.3)
        await h.runtime.start(admitted(*one_market()([ticker])))
        try:
            yield SlowStart(h, node, ticker, left_behind.price)
        finally:
            await h.runtime.stop("drain")


async def test_a_fill_while_the_restarted_node_loads_does_not_stop_it(
    tmp_path: Path, measure: Callable[[str], Measurement]
) -> None:
    """What the soak hits by chance, made deterministic: a crashed run left an order resting; it is filled after
    the restarted node's stream is up but before the node has imported its positions."""
    record = measure("fill_during_restart")
    async with slow_start(tmp_path) as start:
        h, node = start.h, start.node
        await wait_until(lambda: EXCHANGE in h.runtime.node.exchanges and node.ws.connected, what="the stream up")
        assert not h.runtime.node.exchanges[EXCHANGE].loaded, "loaded already: the fill would not land mid-load"
        start.fill()
        filled = time.monotonic()
        await node.admin.clear_faults()
        await wait_until(lambda: h.runtime.node.exchanges[EXCHANGE].loaded, timeout=15, what="the exchange loaded")
        await node.wait_quoting(timeout=15)
        record.recovered(time.monotonic() - filled)
        check = await settled_data(node)
        assert_nothing_lost(record, check)


@pytest.mark.chaos_quick
async def test_a_fill_after_the_import_while_the_load_finishes_is_booked(tmp_path: Path) -> None:
    """The window the kill -9 soak found (kill 17 of 20): positions imported and the fills around the import primed,
    but the load not finished (its first positions check still reading) — a fill the stream brings then must be
    booked, not parked for an import that has already happened."""
    async with slow_start(tmp_path) as start:
        h, node = start.h, start.node
        await wait_until(lambda: EXCHANGE in h.runtime.node.exchanges, what="the exchange connection")
        conn = h.runtime.node.exchanges[EXCHANGE]
        await wait_until(lambda: conn.positions_imported, timeout=15, what="the positions imported")
        assert not conn.loaded, "loaded already: the fill would not land in the window"
        start.fill()
        await node.admin.clear_faults()
        await wait_until(lambda: conn.loaded, timeout=15, what="the exchange loaded")
        await wait_until(lambda: node.account.ledger.net_units(start.ticker) == 200, what="the fill booked")
        assert conn.fills_during_load == []
        await node.wait_quoting(timeout=15)
        check = await settled_data(node)
        assert check.ok, check.summary()
