"""A node and the simulator in one process, with the tools the in-process chaos scenarios share.

Built on :mod:`tests.controller.harness` (the same runtime and adapter wiring as ``mmctl run`` with an embedded
simulator): the node's clock is the simulator's market clock, the Kalshi adapter talks to it over loopback
HTTP/WebSocket, and the node writes a real SQLite file in its state dir. Faults go through the simulator's
admin endpoints, over HTTP, as an operator would inject them.

* :class:`FillPump` — a crowd taker that keeps hitting one of our resting orders (seeded choice), so fills
  happen *during* each fault and "no data lost" is tested on real traffic;
* :class:`OrderMonitor` — samples our resting orders at the exchange every few milliseconds for the whole
  scenario and remembers any duplicate it ever saw (a transient duplicate is a bug too);
* :func:`settled_data` — stops the traffic, waits until the node has caught up, drains the write-behind queue
  and compares the database and the ledger with the exchange (:mod:`tests.chaos.invariants`).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from mm.adapters.kalshi.adapter import KalshiAdapter
from mm.adapters.kalshi.book_feed import BookFeed
from mm.adapters.kalshi.ws import KalshiWebSocket
from mm.controller.node import Account
from mm.sim.server import Simulator, SimulatorConfig
from mm.sim.types import BookSide as SimBookSide
from mm.sim.types import OrderStatus as SimOrderStatus
from tests.chaos.exchange_client import Admin
from tests.chaos.invariants import DataCheck, ExchangeFill, RestingOrder, compare, duplicate_orders, read_db_fills
from tests.chaos.results import Measurement
from tests.controller.harness import (
    EXCHANGE_YAML,
    START,
    Harness,
    SteppedWallClock,
    admitted,
    make_runtime,
    market_yaml,
    strategy_yaml,
    wait_until,
)
from tests.controller.harness import RISK_YAML as HARNESS_RISK_YAML

EXCHANGE = "sim"
"""The Exchange resource's name in the harness documents."""

RISK_YAML = HARNESS_RISK_YAML + "  kill_switch: {stale_stream_seconds: 60}\n"
"""As the controller tests' policy; the stale-stream kill switch waits longer than any fault here lasts (a
disconnect must be recovered from, not halted on)."""


def node_yaml(spec: str) -> str:
    """A TradingNode with ``spec`` (YAML flow mapping body lines, indented two spaces) under ``spec:``."""
    return f"apiVersion: mm/v1alpha1\nkind: TradingNode\nmetadata: {{name: n1}}\nspec:\n{spec}"


def one_market(*extra: str, spread: str = "0.04") -> Callable[[list[str]], list[str]]:
    """Documents for Market ``m1`` on the middle strike (the one nearest 50¢), plus ``extra`` documents."""

    def build(tickers: list[str]) -> list[str]:
        return [
            EXCHANGE_YAML,
            strategy_yaml(spread=spread),
            RISK_YAML,
            market_yaml("m1", tickers[len(tickers) // 2]),
            *extra,
        ]

    return build


@dataclass
class ChaosNode:
    """The harness plus the admin client and the background tools of one scenario."""

    h: Harness
    admin: Admin
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def ticker(self) -> str:
        market = self.h.runtime.resources.require("Market", "m1")
        return str(market.spec.ticker)

    @property
    def venue(self) -> KalshiAdapter:
        venue = self.h.runtime.node.exchanges[EXCHANGE].venue
        assert isinstance(venue, KalshiAdapter)
        return venue

    @property
    def ws(self) -> KalshiWebSocket:
        ws = self.venue.ws
        assert ws is not None
        return ws

    @property
    def feed(self) -> BookFeed:
        feed = self.venue.feed
        assert feed is not None
        return feed

    @property
    def account(self) -> Account:
        return self.h.runtime.node.account(EXCHANGE, "live")

    @property
    def user(self) -> str:
        return self.h.sim.api_key.user_id

    def background(self, work: Coroutine[Any, Any, None], name: str) -> None:
        self._tasks.append(asyncio.create_task(work, name=name))

    async def stop_background(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    def resting(self) -> list[RestingOrder]:
        """Our resting orders as the exchange knows them (ground truth)."""
        return [
            RestingOrder(o.client_order_id, o.ticker, o.side.value, o.price)
            for o in self.h.exchange.orders.values()
            if o.user_id == self.user and o.status is SimOrderStatus.RESTING
        ]

    def client_ids_reused(self) -> list[str]:
        """Client order ids the exchange accepted more than once from us (it should refuse the second)."""
        ids = Counter(o.client_order_id for o in self.h.exchange.orders.values() if o.user_id == self.user)
        return sorted(c for c, n in ids.items() if n > 1 and c)

    def clear_crowd(self, ticker: str) -> None:
        """Cancel every resting order in ``ticker`` that is not ours (the crowd steps back)."""
        for order in list(self.h.exchange.orders.values()):
            if order.ticker == ticker and order.user_id != self.user and order.status is SimOrderStatus.RESTING:
                self.h.exchange.cancel_order(order.user_id, order.order_id)
        self.h.sim.state.publish()

    def quoting(self, ticker: str | None = None) -> bool:
        return self.h.quoting("m1", ticker or self.ticker)

    def exchange_fills(self) -> list[ExchangeFill]:
        return [
            ExchangeFill(trade.trade_id, trade.ticker, trade.count)
            for user, trade, _taker, _fee in self.h.exchange.fills
            if user == self.user
        ]

    async def wait_quoting(self, timeout: float = 15.0, what: str = "quoting") -> float:
        """Wait until m1 quotes both sides; returns the seconds it took."""
        started = time.monotonic()
        await wait_until(self.quoting, timeout=timeout, what=what)
        return time.monotonic() - started


@asynccontextmanager
async def chaos_node(
    tmp_path: Path,
    documents_for: Callable[[list[str]], list[str]],
    *,
    crowd: bool = False,
    speed: float = 1.0,
    seed: int = 7,
) -> AsyncIterator[ChaosNode]:
    """The simulator (crowd on or off) and a node started with ``documents_for(tickers)``; faults cleared and
    the node stopped (drain) on exit."""
    base = SteppedWallClock()
    config = SimulatorConfig(state_dir=tmp_path / "sim", start_us=START, strikes=3, crowd=crowd, seed=seed, speed=speed)
    async with Simulator(config, base_clock=base) as sim, httpx.AsyncClient(base_url=sim.base_url) as http:
        directory = tmp_path / "node"
        runtime = make_runtime(sim, directory)
        h = Harness(sim, base, runtime, directory)
        node = ChaosNode(h, Admin(http))
        await runtime.start(admitted(*documents_for(h.tickers())))
        try:
            yield node
        finally:
            await node.stop_background()
            await node.admin.clear_faults()
            await runtime.stop("drain")


class FillPump:
    """Hits one of our resting orders (seeded choice) with a crowd IOC every ``interval_s``: fills all along."""

    def __init__(self, node: ChaosNode, seed: int, *, interval_s: float = 0.25, size: int = 100) -> None:
        self.node = node
        self.rng = random.Random(seed)
        self.interval_s = interval_s
        self.size = size
        self.takes = 0

    def take_one(self, side: SimBookSide | None = None, size: int | None = None) -> bool:
        """Fill (part of) one of our resting orders now; ``side`` picks ours on that side. False if none rests."""
        ours = sorted(
            (
                o
                for o in self.node.h.exchange.orders.values()
                if o.user_id == self.node.user
                and o.status is SimOrderStatus.RESTING
                and (side is None or o.side is side)
            ),
            key=lambda o: o.order_id,
        )
        if not ours:
            return False
        order = self.rng.choice(ours)
        taker_side = SimBookSide.ASK if order.side is SimBookSide.BID else SimBookSide.BID
        self.node.h.take(order.ticker, taker_side, order.price, min(size or self.size, order.remaining_count))
        self.takes += 1
        return True

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)  # the pump's pace, not a wait for an outcome
            self.take_one()


class OrderMonitor:
    """Samples our resting orders every ``period_s`` and keeps every duplicate seen, with when it was seen."""

    def __init__(self, node: ChaosNode, period_s: float = 0.005) -> None:
        self.node = node
        self.period_s = period_s
        self.samples = 0
        self.seen: list[tuple[float, list[str]]] = []

    async def run(self) -> None:
        while True:
            problems = duplicate_orders(self.node.resting())
            self.samples += 1
            if problems:
                self.seen.append((time.monotonic(), problems))
            await asyncio.sleep(self.period_s)  # the sampling period


def start_traffic(node: ChaosNode, seed: int, *, interval_s: float = 0.25) -> tuple[FillPump, OrderMonitor]:
    pump = FillPump(node, seed, interval_s=interval_s)
    monitor = OrderMonitor(node)
    node.background(pump.run(), "fill-pump")
    node.background(monitor.run(), "order-monitor")
    return pump, monitor


async def settled_data(node: ChaosNode, timeout: float = 20.0) -> DataCheck:
    """Stop the traffic (pump, crowd), then compare the database and the ledger with the exchange until they
    agree or ``timeout`` passes; returns the last comparison (``.ok`` when nothing is lost)."""
    await node.stop_background()
    node.h.sim.loop.crowd = None  # the market goes quiet: no new fills can arrive
    queue = node.h.runtime.queue_db
    assert queue is not None
    database = node.h.state_dir / "mmctl.db"
    ledger = node.account.ledger
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        fills = node.exchange_fills()
        positions = dict(node.h.exchange.accounts[node.user].positions) if node.user in node.h.exchange.accounts else {}
        await queue.flush(timeout=5.0, drain=True)
        tickers = set(positions) | set(ledger.market_ids())
        check = compare(fills, positions, read_db_fills(database), {t: ledger.net_units(t) for t in tickers})
        if check.ok or loop.time() >= deadline:
            return check
        await asyncio.sleep(0.05)  # polling the condition (node caught up with the exchange), bounded above


def assert_nothing_lost(record: Measurement, check: DataCheck) -> None:
    """Record the data-loss figure, then require it to be 0."""
    record.lost(check.lost)
    record.note(fills=check.exchange_fills)
    assert check.ok, check.summary()


def assert_no_duplicates(node: ChaosNode, monitor_seen: list[tuple[float, list[str]]]) -> None:
    """No duplicate resting order was ever sampled, and no client order id was accepted twice."""
    assert not monitor_seen, f"duplicate resting orders seen during the scenario: {monitor_seen[:5]}"
    assert node.client_ids_reused() == []
