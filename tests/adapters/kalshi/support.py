"""Shared pieces of the KalshiAdapter tests: the in-process simulator (crowd off), adapters for two accounts,
and small builders. Tests wait on conditions, never on fixed sleeps."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from mm.adapters.kalshi.adapter import KalshiAdapter
from mm.adapters.kalshi.rest import KalshiRestClient
from mm.adapters.kalshi.signer import KalshiSigner
from mm.adapters.kalshi.ws import KalshiWebSocket, ReconnectPolicy
from mm.adapters.ratelimit import ClientRateLimiter
from mm.clock import WallClock, datetime_to_us
from mm.domain.orders import OrderRequest
from mm.domain.price import Price, Quantity
from mm.domain.sides import OrderSide, Side
from mm.observability.metrics import Metrics
from mm.sim.server import Simulator, SimulatorConfig

START = datetime_to_us(datetime(2026, 8, 13, 20, 30, tzinfo=UTC))
TIMEOUT = 10.0


async def wait_until(condition: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.005)

    await asyncio.wait_for(poll(), timeout)


async def no_sleep(_seconds: float) -> None:
    await asyncio.sleep(0)


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[Simulator]:
    config = SimulatorConfig(state_dir=tmp_path / "sim", start_us=START, strikes=2, crowd=False, seed=3)
    async with Simulator(config) as running:
        yield running


def make_adapter(
    sim: Simulator, signer: KalshiSigner, *, ws: bool = True, metrics: Metrics | None = None
) -> KalshiAdapter:
    clock = WallClock()
    rest = KalshiRestClient(sim.rest_url, signer, clock, sleep=no_sleep)
    socket = (
        KalshiWebSocket(sim.ws_url, signer, clock, reconnect=ReconnectPolicy(jitter=False), rng=random.Random(1))
        if ws
        else None
    )
    limiter = ClientRateLimiter(clock, tier="prestige")
    return KalshiAdapter(rest, socket, clock, limiter=limiter, metrics=metrics)


@pytest.fixture
async def me(sim: Simulator) -> AsyncIterator[KalshiAdapter]:
    adapter = make_adapter(sim, KalshiSigner.from_file(sim.api_key.key_id, sim.api_key.key_file))
    await adapter.connect()
    yield adapter
    await adapter.disconnect()


@pytest.fixture
async def bob(sim: Simulator) -> AsyncIterator[KalshiAdapter]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_id = sim.state.keys.register(key.public_key(), "bob")
    sim.state.exchange.open_account("bob", 10_000 * 1_000_000)
    adapter = make_adapter(sim, KalshiSigner(key_id, key), ws=False)
    await adapter.connect()
    yield adapter
    await adapter.disconnect()


def active_ticker(sim: Simulator) -> str:
    tickers = sorted(t for t, m in sim.state.exchange.markets.items() if m.status == "active")
    assert tickers, "the simulator has no active market"
    return tickers[0]


def request(ticker: str, cid: str, price: str, qty: int, side: OrderSide = OrderSide.BUY, **kw: Any) -> OrderRequest:
    return OrderRequest(
        market_id=ticker,
        side=Side.YES,
        order_side=side,
        price=Price.from_dollars(price),
        quantity=Quantity.contracts(qty),
        client_order_id=cid,
        **kw,
    )
