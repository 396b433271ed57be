"""KalshiWebSocket + BookFeed against the real simulator over loopback (kalshi-api.md §2, §6, §8)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from mm.adapters.errors import AuthenticationFailedError
from mm.adapters.kalshi.book_feed import BookFeed, levels_of
from mm.adapters.kalshi.signer import KalshiSigner, load_private_key
from mm.adapters.kalshi.ws import KalshiWebSocket, ReconnectPolicy
from mm.clock import WallClock, datetime_to_us
from mm.sim.exchange import NewOrder
from mm.sim.server import Simulator, SimulatorConfig
from mm.sim.types import BookSide

START = datetime_to_us(datetime(2026, 8, 13, 20, 30, tzinfo=UTC))
TIMEOUT = 10.0
CROWD = "crowd-user"


async def wait_until(condition: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.005)

    await asyncio.wait_for(poll(), timeout)


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[Simulator]:
    config = SimulatorConfig(state_dir=tmp_path / "sim", start_us=START, strikes=2, crowd=False, seed=3)
    async with Simulator(config) as running:
        running.state.exchange.open_account(CROWD, 10**15)
        yield running


def signer_for(sim: Simulator) -> KalshiSigner:
    return KalshiSigner(sim.api_key.key_id, load_private_key(sim.api_key.key_file))


class Rig:
    """A client, its BookFeed and a recording sleep."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.delays: list[float] = []
        self.logs: list[str] = []

        async def sleep(seconds: float) -> None:
            self.delays.append(seconds)
            await asyncio.sleep(0)

        self.ws = KalshiWebSocket(
            sim.ws_url,
            signer_for(sim),
            WallClock(),
            reconnect=ReconnectPolicy(initial_delay_s=0.1, max_delay_s=60, multiplier=2, jitter=True),
            sleep=sleep,
            rng=random.Random(1),
            log=self.logs.append,
        )
        self.feed = BookFeed(
            self.ws.request_snapshot,
            lambda t: sim.state.exchange.markets[t].grid,
            WallClock(),
            log=self.logs.append,
        )
        self.ws.on_connected(self.feed.connection_reset)
        self.messages: list[dict[str, Any]] = []

    async def start(self, tickers: list[str]) -> None:
        async def record(message: dict[str, Any]) -> None:
            self.messages.append(message)

        await self.ws.on_message(record)
        await self.ws.on_message(self.feed.handle)
        await self.ws.connect()
        await self.ws.subscribe(["orderbook_delta"], tickers)

    def expected(self, ticker: str) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        bids, asks = self.sim.state.exchange.markets[ticker].engine.levels()
        return sorted(bids), sorted((10000 - p, n) for p, n in asks)

    def matches(self, ticker: str) -> bool:
        book = self.feed.book(ticker)
        return book is not None and not self.feed.is_stale(ticker) and levels_of(book) == self.expected(ticker)

    def place(self, user: str, ticker: str, side: BookSide, price: int, count: int) -> None:
        self.sim.state.exchange.create_order(user, NewOrder(ticker, side, price, count))
        self.sim.state.publish()


def active_tickers(sim: Simulator) -> list[str]:
    tickers = [t for t, m in sim.state.exchange.markets.items() if m.status == "active"]
    assert tickers, "the simulator has no active market"
    return tickers


async def test_book_follows_the_exchange_then_survives_a_gap_and_a_dropped_connection(sim: Simulator) -> None:
    rig = Rig(sim)
    tickers = active_tickers(sim)[:2]
    t = tickers[0]
    me = sim.api_key.user_id
    await rig.start(tickers)
    try:
        assert rig.ws.connected
        await wait_until(lambda: rig.ws.sids.get("orderbook_delta") is not None)
        await wait_until(lambda: all(rig.matches(x) for x in tickers))

        rig.place(me, t, BookSide.BID, 4000, 300)
        rig.place(me, t, BookSide.BID, 4100, 150)
        rig.place(CROWD, t, BookSide.ASK, 4500, 200)
        rig.place(CROWD, t, BookSide.ASK, 4600, 184)
        rig.place(CROWD, t, BookSide.ASK, 4100, 50)  # trades against the 0.41 bid
        await wait_until(lambda: rig.matches(t) and rig.feed.deltas >= 5)
        assert rig.expected(t)[0] == [(4000, 300), (4100, 100)]
        assert rig.feed.gaps == 0

        # --- a lost message: gap -> stale -> get_snapshot -> equal again
        sim.state.faults.ws_drop_message_rate = 1.0
        rig.place(me, t, BookSide.BID, 3900, 100)
        sim.state.faults.ws_drop_message_rate = 0.0
        rig.place(CROWD, t, BookSide.ASK, 4700, 100)
        await wait_until(lambda: rig.feed.gaps >= 1)
        await wait_until(lambda: rig.matches(t))
        assert rig.feed.resyncs >= 1
        assert any(m.get("type") == "orderbook_snapshot" and "id" in m for m in rig.messages)

        # --- a dropped connection: backoff, reconnect, re-subscribe, equal again
        delays_before = len(rig.delays)
        assert sim.hub.drop_all_connections() == 1
        await wait_until(lambda: rig.ws.reconnects == 1 and rig.ws.connected)
        assert len(rig.delays) > delays_before
        assert 0.05 <= rig.delays[delays_before] <= 0.1  # first attempt: 0.1 s with jitter in [0.5, 1]
        rig.place(me, t, BookSide.BID, 3800, 100)
        await wait_until(
            lambda: all(rig.matches(x) for x in tickers) and rig.ws.sids.get("orderbook_delta") is not None
        )
        assert rig.expected(t)[0][0] == (3800, 100)

        # --- a forced reconnect
        await asyncio.wait_for(rig.ws.reconnect(), TIMEOUT)
        assert rig.ws.reconnects == 2
        await wait_until(lambda: all(rig.matches(x) for x in tickers))
    finally:
        await rig.ws.close()
    assert not rig.ws.connected


async def test_backoff_grows_while_the_server_is_down(sim: Simulator) -> None:
    rig = Rig(sim)
    await rig.start(active_tickers(sim)[:1])
    try:
        rig.ws.url = rig.ws.url.replace(f":{sim.port}/", ":1/")  # nothing listens there: every attempt fails
        sim.hub.drop_all_connections()
        await wait_until(lambda: len(rig.delays) >= 6)
        delays = rig.delays[:6]
        for n, d in enumerate(delays):
            base = min(60.0, 0.1 * 2**n)
            assert base / 2 <= d <= base
        assert not rig.ws.connected
    finally:
        await rig.ws.close()


async def test_malformed_frame_is_counted_not_fatal(sim: Simulator) -> None:
    rig = Rig(sim)
    tickers = active_tickers(sim)[:1]
    await rig.start(tickers)
    try:
        await rig.ws._dispatch("not json")  # as the reader would on a bad frame
        await rig.ws._dispatch("[1, 2]")
        assert rig.ws.malformed_count == 2
        await wait_until(lambda: rig.matches(tickers[0]))
        rig.place(CROWD, tickers[0], BookSide.BID, 2000, 100)
        await wait_until(lambda: rig.feed.deltas >= 1 and rig.matches(tickers[0]))
    finally:
        await rig.ws.close()


async def test_silent_server_triggers_a_reconnect(sim: Simulator) -> None:
    rig = Rig(sim)
    rig.ws = KalshiWebSocket(
        sim.ws_url, signer_for(sim), WallClock(), heartbeat_timeout_s=0.3, sleep=rig.ws._sleep, log=rig.logs.append
    )
    rig.feed = BookFeed(
        rig.ws.request_snapshot, lambda t: sim.state.exchange.markets[t].grid, WallClock(), log=rig.logs.append
    )
    rig.ws.on_connected(rig.feed.connection_reset)
    tickers = active_tickers(sim)[:1]
    await rig.start(tickers)
    try:
        await wait_until(lambda: rig.matches(tickers[0]))
        sim.state.faults.ws_silent = True
        await wait_until(lambda: rig.ws.reconnects >= 1)
        sim.state.faults.ws_silent = False
        rig.place(CROWD, tickers[0], BookSide.BID, 2500, 100)
        await wait_until(lambda: rig.ws.connected and rig.matches(tickers[0]) and bool(rig.expected(tickers[0])[0]))
        assert any("no frame" in line for line in rig.logs)
    finally:
        await rig.ws.close()


async def test_bad_key_fails_with_401(sim: Simulator) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ws = KalshiWebSocket(sim.ws_url, KalshiSigner(sim.api_key.key_id, other), WallClock())
    with pytest.raises(AuthenticationFailedError) as info:
        await ws.connect()
    assert info.value.status == 401
    assert not ws.connected
