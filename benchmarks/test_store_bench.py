"""Persistence (issue 7): the write-behind enqueue on the trading path, and sustained fills persisted per second.

Targets: enqueue ≤ 5 µs; ≥ 2,000 fills/s written to a real SQLite file (WAL, synchronous=FULL) through the queue.
"""

from __future__ import annotations

import asyncio
import tempfile
from decimal import Decimal
from pathlib import Path

from pytest_benchmark.fixture import BenchmarkFixture

from mm.domain.orders import Fill
from mm.domain.price import Price, Quantity
from mm.domain.sides import OrderSide, Side
from mm.state.records import FillRecord
from mm.state.store import Store
from mm.state.write_behind import WriteBehindQueue

FILLS = 5000
T0 = 1_768_660_200_000_000


def fill(i: int) -> Fill:
    return Fill(
        fill_id=f"fill-{i}",
        order_id=f"ex-{i // 3}",
        client_order_id=f"mm-KXBTC-g1-bid-{i // 3}",
        market_id="KXBTCD-26AUG1317-T73249.99",
        side=Side.YES,
        order_side=OrderSide.BUY,
        price=Price(5600),
        quantity=Quantity.contracts(1),
        fee=Decimal("0.0175"),
        is_taker=bool(i % 2),
        timestamp_us=T0 + i,
    )


def test_enqueue(benchmark: BenchmarkFixture) -> None:
    """Target ≤ 5 µs: what the trading path pays to persist a fill (the flusher is not running here)."""
    store = Store(Path("unused.db"), history_limit=20, synchronous="FULL", busy_timeout_ms=1000)
    queue = WriteBehindQueue(store, capacity=10**9)
    record = FillRecord(fill(1))
    benchmark(queue.enqueue, record)
    assert queue.depth >= 1


async def _persist(path: Path, records: list[FillRecord]) -> None:
    store = await Store.open(path)
    queue = WriteBehindQueue(store, capacity=len(records), batch_size=500)
    queue.start()
    for record in records:
        queue.enqueue(record)
    report = await queue.close(timeout=60)
    assert report.complete
    assert await store.count("fills") == len(records)
    await store.close()


def test_sustained_fills_persisted(benchmark: BenchmarkFixture) -> None:
    """Target ≥ 2,000 fills/s: 5,000 fills enqueued and flushed to a fresh file, per round (open to close)."""
    records = [FillRecord(fill(i)) for i in range(FILLS)]
    rounds = iter(range(1_000_000))

    def session() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            asyncio.run(_persist(Path(tmp) / f"bench-{next(rounds)}.db", records))

    benchmark.pedantic(session, rounds=5, iterations=1, warmup_rounds=1)
    if benchmark.stats is not None:  # None under --benchmark-disable
        benchmark.extra_info["fills_per_second"] = round(FILLS / benchmark.stats.stats.median)
