"""KalshiAdapter.link_health / probe against the in-process simulator: round trips, failures, the venue's clock.

The adapter's clock is the simulator's own market clock (as in ``mmctl run`` with the embedded simulator), so
the true offset is exactly the injected ``clock_skew_ms``: every bound measured must contain it."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import pytest

from mm.adapters.kalshi.adapter import KalshiAdapter
from mm.adapters.kalshi.rest import KalshiRestClient
from mm.adapters.kalshi.signer import KalshiSigner
from mm.adapters.kalshi.ws import KalshiWebSocket, ReconnectPolicy
from mm.adapters.link_health import LinkMonitored
from mm.clock import WallClock
from mm.sim.exchange import NewOrder
from mm.sim.server import Simulator
from mm.sim.types import BookSide
from tests.adapters.kalshi.support import active_ticker, no_sleep, request, wait_until

S_US = 1_000_000
MS_US = 1_000


@pytest.fixture
async def venue(sim: Simulator) -> AsyncIterator[KalshiAdapter]:
    wall = WallClock()  # signs and times round trips, as in the node; the market clock is the simulator's
    signer = KalshiSigner.from_file(sim.api_key.key_id, sim.api_key.key_file)
    rest = KalshiRestClient(sim.rest_url, signer, wall, sleep=no_sleep)
    ws = KalshiWebSocket(sim.ws_url, signer, wall, reconnect=ReconnectPolicy(jitter=False), rng=random.Random(1))
    adapter = KalshiAdapter(rest, ws, sim.clock, wall_clock=wall)
    await adapter.connect()
    yield adapter
    await adapter.disconnect()


async def test_order_acks_bound_the_exchange_clock_on_both_sides_and_follow_a_skew(
    sim: Simulator, venue: KalshiAdapter
) -> None:
    assert isinstance(venue, LinkMonitored)
    ticker = active_ticker(sim)
    await venue.list_markets()  # public reads are not the authenticated API: not measured
    assert venue.link_health().rtt_samples == 0

    placed = await venue.place_order(request(ticker, "c-1", "0.4000", 1))
    clock = venue.link_health().clock
    assert clock is not None and clock.high_us is not None
    assert clock.low_us <= 0 <= clock.high_us  # no skew: the true offset is 0

    sim.state.faults.clock_skew_ms = 5000
    assert placed.exchange_order_id is not None
    await venue.cancel_order(placed.exchange_order_id)
    h = venue.link_health()
    assert h.clock is not None and h.clock.high_us is not None
    assert h.clock.low_us <= 5 * S_US <= h.clock.high_us  # the older sample contradicts it and is dropped
    assert h.clock.samples == 1
    assert h.rtt_samples == 2 and h.consecutive_failures == 0 and h.last_success_wall_ns is not None


async def test_a_probe_is_one_authenticated_read_whose_failures_are_counted(
    sim: Simulator, venue: KalshiAdapter
) -> None:
    faults = sim.state.faults
    faults.rest_error_rate = 1.0
    assert await venue.probe(5.0) is False
    assert await venue.probe(5.0) is False
    h = venue.link_health()
    assert faults.counters.failed_requests == 2  # one attempt each: a probe is never retried
    assert h.consecutive_failures == 2 and h.last_failure in {"HTTP 500", "HTTP 502", "HTTP 503"}
    assert h.last_success_wall_ns is None

    faults.rest_error_rate = 0.0
    assert await venue.probe(5.0) is True
    h = venue.link_health()
    assert h.consecutive_failures == 0 and h.last_success_wall_ns is not None and h.rtt_samples == 1


async def test_probe_round_trips_include_the_exchange_delay_and_a_late_answer_is_a_timeout(
    sim: Simulator, venue: KalshiAdapter
) -> None:
    sim.state.faults.rest_latency_s = 0.3
    assert await venue.probe(5.0) is True
    rtt = venue.link_health().rtt_p50_s
    assert rtt is not None and rtt >= 0.3  # the simulator sleeps 0.3 s before answering

    assert await venue.probe(0.05) is False  # it cannot answer within 0.05 s
    h = venue.link_health()
    assert h.consecutive_failures == 1 and h.last_failure == "timed out"


async def test_the_balance_time_is_a_lower_bound_of_the_exchange_clock(sim: Simulator, venue: KalshiAdapter) -> None:
    sim.state.faults.clock_skew_ms = 5000
    assert await venue.probe(5.0) is True
    clock = venue.link_health().clock
    # updated_ts is whole seconds and may be a last-update time: only "at least", and conservatively so
    assert clock is not None and clock.high_us is None and clock.samples == 1
    assert 2 * S_US < clock.low_us <= 5 * S_US


async def test_stream_message_times_are_lower_bounds_of_the_exchange_clock(
    sim: Simulator, venue: KalshiAdapter
) -> None:
    ticker = active_ticker(sim)
    await venue.subscribe_market(ticker)
    await wait_until(lambda: venue.book(ticker) is not None)  # the snapshot (it carries no time)
    assert venue.link_health().clock is None
    sim.state.faults.clock_skew_ms = 5000
    exchange = sim.state.exchange
    exchange.open_account("crowd", 1_000_000 * 1_000_000)
    exchange.create_order("crowd", NewOrder(ticker, BookSide.BID, 3000, 100))
    sim.state.publish()  # an orderbook_delta stamped with the (skewed) exchange time
    await wait_until(lambda: venue.link_health().clock is not None)
    clock = venue.link_health().clock
    assert clock is not None and clock.high_us is None
    assert 100 * MS_US < clock.low_us <= 5 * S_US  # a time already past on arrival: at most the true offset


async def test_stream_state_is_reported(venue: KalshiAdapter) -> None:
    up = venue.link_health()
    assert up.ws_connected is True and up.ws_last_frame_wall_ns is not None
    await venue.disconnect()
    assert venue.link_health().ws_connected is False
