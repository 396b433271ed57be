"""FR-603 against the simulator's own Kalshi token buckets: a 200-create burst on the Basic tier is queued by the
client and sent with no 429, where the same burst without the client limiter is refused; a venue 429 backs the
client off and the order is placed once.

The simulator meters requests in real time (whatever speed its markets play at), as Kalshi does, so 2,000 write
tokens through Basic's 100-token bucket take about 20 real seconds: the cost of testing the real thing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mm.adapters.errors import RateLimitedError
from mm.adapters.kalshi.adapter import KalshiAdapter
from mm.adapters.kalshi.rest import KalshiRestClient
from mm.adapters.kalshi.signer import KalshiSigner
from mm.adapters.ratelimit import ClientRateLimiter
from mm.clock import WallClock
from mm.domain.orders import Order
from mm.sim.server import Simulator, SimulatorConfig
from tests.adapters.kalshi.support import START, active_ticker, request

BURST = 200
CLOCK = WallClock()


@pytest.fixture
async def sim_basic(tmp_path: Path) -> AsyncIterator[Simulator]:
    config = SimulatorConfig(state_dir=tmp_path / "sim", start_us=START, strikes=2, crowd=False, seed=9, tier="basic")
    async with Simulator(config) as running:
        yield running


def adapter_for(sim: Simulator, limiter: ClientRateLimiter | None) -> KalshiAdapter:
    signer = KalshiSigner.from_file(sim.api_key.key_id, sim.api_key.key_file)
    rest = KalshiRestClient(sim.rest_url, signer, CLOCK, limiter=limiter, max_retries=0)
    return KalshiAdapter(rest, None, CLOCK)


async def burst(adapter: KalshiAdapter, ticker: str, prefix: str, size: int = BURST) -> list[Order | BaseException]:
    # Bids far from the action at 1¢: they rest, so every create is a real write the venue must meter.
    requests = [request(ticker, f"{prefix}-{i}", "0.0100", 1) for i in range(size)]
    return await asyncio.gather(*(adapter.place_order(r) for r in requests), return_exceptions=True)


async def test_without_the_client_limiter_the_venue_refuses_part_of_the_burst(sim_basic: Simulator) -> None:
    adapter = adapter_for(sim_basic, None)
    try:
        results = await burst(adapter, active_ticker(sim_basic), "raw", 30)  # Basic's bucket holds 10 creates
    finally:
        await adapter.rest.aclose()
    refused = [r for r in results if isinstance(r, RateLimitedError)]
    assert refused and sim_basic.state.limiter.rejections >= len(refused)


async def test_200_creates_on_basic_are_queued_and_sent_without_a_429(sim_basic: Simulator) -> None:
    limiter = ClientRateLimiter(CLOCK, tier="basic")
    adapter = adapter_for(sim_basic, limiter)
    ticker = active_ticker(sim_basic)
    started = CLOCK.monotonic_ns()
    try:
        results = await burst(adapter, ticker, "q")
    finally:
        await adapter.rest.aclose()
    elapsed_s = (CLOCK.monotonic_ns() - started) / 1e9
    assert all(isinstance(r, Order) for r in results), [r for r in results if not isinstance(r, Order)][:3]
    assert sim_basic.state.limiter.rejections == 0
    mine = [o for o in sim_basic.state.exchange.orders.values() if o.client_order_id.startswith("q-")]
    assert len(mine) == BURST and len({o.client_order_id for o in mine}) == BURST
    assert limiter.throttled["write"] > 0 and limiter.rejected == {"read": 0, "write": 0}
    # 2,000 write tokens through a 100-token bucket refilled at 90/s: the queue really was the constraint
    assert elapsed_s >= (BURST * 10 - 100) / 100


async def test_a_venue_429_backs_off_and_the_create_lands_once(sim_basic: Simulator) -> None:
    limiter = ClientRateLimiter(CLOCK, tier="basic", penalty_s=0.5)
    signer = KalshiSigner.from_file(sim_basic.api_key.key_id, sim_basic.api_key.key_file)
    rest = KalshiRestClient(sim_basic.rest_url, signer, CLOCK, limiter=limiter, max_retries=3)
    adapter = KalshiAdapter(rest, None, CLOCK)
    ticker = active_ticker(sim_basic)
    faults = sim_basic.state.faults
    faults.rest_429_rate = 1.0
    original = limiter.rate_limited

    def heal_after_first(method: str, path: str) -> None:
        original(method, path)
        faults.rest_429_rate = 0.0

    limiter.rate_limited = heal_after_first  # type: ignore[method-assign]
    started = CLOCK.monotonic_ns()
    try:
        placed = await adapter.place_order(request(ticker, "once-1", "0.0200", 1))
    finally:
        await rest.aclose()
    assert placed.exchange_order_id in sim_basic.state.exchange.orders
    assert [o.client_order_id for o in sim_basic.state.exchange.orders.values()] == ["once-1"]
    assert limiter.rejected["write"] == 1 and faults.counters.rate_limited_requests == 1
    assert (CLOCK.monotonic_ns() - started) / 1e9 >= 0.5  # the penalty was waited out
