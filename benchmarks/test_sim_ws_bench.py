"""WebSocket book messages per second, over real loopback, from one core (issue target: ≥ 20,000/s).

One client subscribes to ``orderbook_delta``; each round publishes 10,000 book changes through the hub
(formatting, per-connection queue, send) and waits until the client has read every one of them.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import websockets
from pytest_benchmark.fixture import BenchmarkFixture

from mm.clock import WallClock, datetime_to_us
from mm.sim.auth import auth_headers, load_private_key
from mm.sim.exchange import ExchangeEvent
from mm.sim.server import Simulator, SimulatorConfig
from mm.sim.types import BookChange, BookSide

MESSAGES = 10_000
START = datetime_to_us(datetime(2026, 8, 13, 20, 30, tzinfo=UTC))


async def _round(tmp: Path) -> float:
    config = SimulatorConfig(state_dir=tmp, start_us=START, strikes=1, crowd=False, tick_seconds=3600)
    async with Simulator(config) as sim:
        ticker = next(iter(sim.state.markets))
        key = load_private_key(sim.api_key.key_file)
        headers = auth_headers(sim.api_key.key_id, key, "GET", "/trade-api/ws/v2", WallClock().now_us() // 1000)
        async with websockets.connect(sim.ws_url, additional_headers=headers, max_queue=None) as ws:
            await ws.send(
                json.dumps(
                    {"id": 1, "cmd": "subscribe", "params": {"channels": ["orderbook_delta"], "market_ticker": ticker}}
                )
            )
            while json.loads(await ws.recv()).get("type") != "orderbook_snapshot":
                pass
            now = sim.state.clock.now_us()
            began = time.perf_counter()
            for i in range(MESSAGES):  # alternate +/- so the (formatted-only) book stays sane
                change = BookChange(BookSide.BID, 100 + (i % 50) * 100, 100 if i % 2 == 0 else -100)
                sim.state.exchange.events.append(ExchangeEvent("book", ticker, now, book_change=change))
                if i % 500 == 499:
                    sim.state.publish()
                    await asyncio.sleep(0)  # let the writer task run, as the market loop does between steps
            sim.state.publish()
            received = 0
            while received < MESSAGES:
                message = json.loads(await asyncio.wait_for(ws.recv(), timeout=30))
                if message.get("type") == "orderbook_delta":
                    received += 1
            return MESSAGES / (time.perf_counter() - began)


def test_websocket_book_messages_per_second(benchmark: BenchmarkFixture, tmp_path: Path) -> None:
    rates: list[float] = []  # each round returns only once the client has read all MESSAGES

    def run() -> None:
        rates.append(asyncio.run(_round(tmp_path / f"r{len(rates)}")))

    benchmark.pedantic(run, rounds=3, iterations=1)
    benchmark.extra_info["messages_per_second"] = sorted(rates)[len(rates) // 2]
