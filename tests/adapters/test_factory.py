"""build_adapter: venue and URL selection, credentials from env/key files, the paper default and live gate."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mm.adapters.errors import NotSupportedError
from mm.adapters.factory import LiveTradingNotAllowedError, build_adapter
from mm.adapters.fill_models import QueueFillModel, TradeThroughFillModel
from mm.adapters.kalshi.adapter import KalshiAdapter
from mm.adapters.kalshi.signer import KeyFileError
from mm.adapters.paper import PaperExecution
from mm.clock import WallClock, datetime_to_us
from mm.domain.events import ExchangeEvent, FillEvent, PublicTrade
from mm.domain.orders import OrderRequest, OrderStatus
from mm.domain.price import Price, Quantity
from mm.domain.sides import OrderSide, Side
from mm.sim.exchange import NewOrder
from mm.sim.server import Simulator, SimulatorConfig
from mm.sim.types import BookSide as SimBookSide
from mm.sim.types import TimeInForce as SimTif
from mm.specs.exchange import KALSHI_ENDPOINTS, ExchangeSpec

START = datetime_to_us(datetime(2026, 8, 13, 20, 30, tzinfo=UTC))


def pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.fixture(scope="module")
def environ() -> dict[str, str]:
    return {"KALSHI_KEY_ID": "key-123", "KALSHI_PEM": pem()}


def kalshi_spec(**kw: Any) -> ExchangeSpec:
    fields: dict[str, Any] = {
        "venue": "kalshi",
        "environment": "demo",
        "api_key_env": "KALSHI_KEY_ID",
        "private_key_env": "KALSHI_PEM",
    }
    fields.update(kw)
    return ExchangeSpec.model_validate(fields)


@pytest.mark.parametrize("environment", ["prod", "demo"])
async def test_kalshi_urls_follow_the_environment(environment: str, environ: dict[str, str]) -> None:
    adapter = build_adapter(
        kalshi_spec(environment=environment, allow_live=True), WallClock(), environ=environ, execution="live"
    )
    try:
        assert isinstance(adapter, KalshiAdapter)
        assert adapter.ws is not None and adapter.ws.url == KALSHI_ENDPOINTS[environment][1]
        assert adapter.limiter is not None
        # basic tier: 200 read / 100 write tokens per second, refilled with 10% headroom
        assert (adapter.limiter.reads.rate_per_s, adapter.limiter.writes.rate_per_s) == (180, 90)
        assert (adapter.limiter.reads.capacity, adapter.limiter.writes.capacity) == (400, 100)
    finally:
        await adapter.rest.aclose()


async def test_custom_urls_and_rate_limits(environ: dict[str, str]) -> None:
    spec = kalshi_spec(
        environment="custom",
        base_url="http://127.0.0.1:9/trade-api/v2",
        ws_url="ws://127.0.0.1:9/trade-api/ws/v2",
        rate_limits={"tier": "advanced", "writes_per_second": "5"},
        allow_live=True,
    )
    adapter = build_adapter(spec, WallClock(), environ=environ, execution="live")
    assert isinstance(adapter, KalshiAdapter)
    assert adapter.ws is not None and adapter.ws.url == "ws://127.0.0.1:9/trade-api/ws/v2"
    assert adapter.limiter is not None
    # advanced: 30 reads/s from the tier, 5 writes/s from the spec, at 10 tokens a request, 10% headroom
    assert (adapter.limiter.reads.rate_per_s, adapter.limiter.writes.rate_per_s) == (270, 45)
    await adapter.rest.aclose()


def test_missing_env_vars_are_named_never_valued(environ: dict[str, str]) -> None:
    with pytest.raises(KeyFileError, match="KALSHI_KEY_ID"):
        build_adapter(kalshi_spec(), WallClock(), environ={"KALSHI_PEM": environ["KALSHI_PEM"]})
    with pytest.raises(KeyFileError, match="KALSHI_PEM") as info:
        build_adapter(kalshi_spec(), WallClock(), environ={"KALSHI_KEY_ID": "key-123"})
    assert "key-123" not in str(info.value)
    with pytest.raises(KeyFileError, match="KALSHI_KEY_ID"):
        build_adapter(kalshi_spec(private_key_env=None, private_key_file="/nonexistent.pem"), WallClock(), environ={})


def test_paper_by_default_and_live_needs_allow_live(environ: dict[str, str]) -> None:
    paper = build_adapter(kalshi_spec(), WallClock(), environ=environ)
    assert isinstance(paper, PaperExecution)
    assert paper.capabilities.batch_create_limit == 10
    with pytest.raises(LiveTradingNotAllowedError, match="allow_live"):
        build_adapter(kalshi_spec(), WallClock(), environ=environ, execution="live")


def test_paper_fill_model_is_chosen_by_name(environ: dict[str, str]) -> None:
    default = build_adapter(kalshi_spec(), WallClock(), environ=environ)
    assert isinstance(default, PaperExecution) and isinstance(default.fill_model, TradeThroughFillModel)
    queue = build_adapter(kalshi_spec(), WallClock(), environ=environ, fill_model="queue")
    assert isinstance(queue, PaperExecution) and isinstance(queue.fill_model, QueueFillModel)
    with pytest.raises(ValueError, match="fill model"):
        build_adapter(kalshi_spec(), WallClock(), environ=environ, fill_model="optimistic")


def test_polymarket_is_not_supported() -> None:
    spec = ExchangeSpec.model_validate(
        {
            "venue": "polymarket",
            "api_key_env": "PM_KEY",
            "api_secret_env": "PM_SECRET",
            "passphrase_env": "PM_PASS",
            "private_key_env": "PM_PK",
        }
    )
    with pytest.raises(NotSupportedError, match="polymarket"):
        build_adapter(spec, WallClock(), environ={})


def test_embedded_simulator_needs_its_urls(environ: dict[str, str]) -> None:
    spec = ExchangeSpec.model_validate(
        {"venue": "simulator", "api_key_env": "KALSHI_KEY_ID", "private_key_env": "KALSHI_PEM"}
    )
    with pytest.raises(ValueError, match="simulator_urls"):
        build_adapter(spec, WallClock(), environ=environ)
    adapter = build_adapter(
        spec, WallClock(), environ=environ, simulator_urls=("http://127.0.0.1:9/trade-api/v2", "ws://127.0.0.1:9/x")
    )
    assert isinstance(adapter, PaperExecution)


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[Simulator]:
    config = SimulatorConfig(state_dir=tmp_path / "sim", start_us=START, strikes=2, crowd=False, seed=3)
    async with Simulator(config) as running:
        yield running


def simulator_spec(sim: Simulator, **kw: Any) -> ExchangeSpec:
    fields: dict[str, Any] = {
        "venue": "simulator",
        "base_url": sim.rest_url,
        "ws_url": sim.ws_url,
        "api_key_env": "SIM_KEY_ID",
        "private_key_file": str(sim.api_key.key_file),
    }
    fields.update(kw)
    return ExchangeSpec.model_validate(fields)


def active_ticker(sim: Simulator) -> str:
    return sorted(t for t, m in sim.state.exchange.markets.items() if m.status == "active")[0]


def bid(ticker: str, cid: str) -> OrderRequest:
    return OrderRequest(ticker, Side.YES, OrderSide.BUY, Price.from_dollars("0.4000"), Quantity.contracts(2), cid)


async def test_simulator_live_reaches_the_simulator(sim: Simulator) -> None:
    spec = simulator_spec(sim, allow_live=True)
    assert spec.simulator is not None and not spec.simulator.embedded
    adapter = build_adapter(spec, WallClock(), environ={"SIM_KEY_ID": sim.api_key.key_id}, execution="live")
    assert isinstance(adapter, KalshiAdapter)
    await adapter.connect()
    try:
        ticker = active_ticker(sim)
        order = await adapter.place_order(bid(ticker, "live-1"))
        assert order.status is OrderStatus.OPEN
        assert order.exchange_order_id in sim.state.exchange.orders
    finally:
        await adapter.disconnect()


async def test_simulator_paper_never_reaches_the_simulator(sim: Simulator) -> None:
    adapter = build_adapter(simulator_spec(sim), WallClock(), environ={"SIM_KEY_ID": sim.api_key.key_id})
    assert isinstance(adapter, PaperExecution)
    await adapter.connect()
    try:
        ticker = active_ticker(sim)
        assert ticker in {m.market_id for m in await adapter.list_markets()}  # market data from the venue
        order = await adapter.place_order(bid(ticker, "paper-1"))
        assert order.status is OrderStatus.OPEN
        assert sim.state.exchange.orders == {}
        assert [o.client_order_id for o in await adapter.get_open_orders()] == ["paper-1"]
    finally:
        await adapter.disconnect()
    with pytest.raises(LiveTradingNotAllowedError):
        build_adapter(simulator_spec(sim), WallClock(), environ={"SIM_KEY_ID": "x"}, execution="live")


async def test_simulator_paper_fills_from_the_venue_tape_and_sends_nothing(sim: Simulator) -> None:
    """trade_through (the default) against real market data: another account's trade printed through our paper
    bid fills it, at our price; the simulator's order log never holds a paper order."""
    adapter = build_adapter(simulator_spec(sim), WallClock(), environ={"SIM_KEY_ID": sim.api_key.key_id})
    assert isinstance(adapter, PaperExecution)
    seen: list[ExchangeEvent] = []

    async def record(event: ExchangeEvent) -> None:
        seen.append(event)

    adapter.on_event(record)
    await adapter.connect()
    try:
        ticker = active_ticker(sim)
        await adapter.subscribe_market(ticker)
        await wait_until(lambda: not adapter.is_stale(ticker))
        mine = await adapter.place_order(bid(ticker, "paper-tt"))  # YES bid 2 @ 0.40
        exchange = sim.state.exchange
        for user in ("c1", "c2"):
            exchange.open_account(user, 1_000_000 * 1_000_000)
        # c1 rests a bid at 0.39 and c2 sells into it: a print at 0.39, strictly through our 0.40 bid
        exchange.create_order("c1", NewOrder(ticker, SimBookSide.BID, 3900, 500))
        exchange.create_order(
            "c2", NewOrder(ticker, SimBookSide.ASK, 3900, 300, time_in_force=SimTif.IMMEDIATE_OR_CANCEL)
        )
        sim.state.publish()
        await wait_until(lambda: any(isinstance(e, FillEvent) for e in seen))
        fill = next(e.fill for e in seen if isinstance(e, FillEvent))
        assert (fill.client_order_id, fill.price, fill.quantity, fill.is_taker) == (
            "paper-tt",
            Price.from_dollars("0.4000"),
            Quantity.contracts(2),
            False,
        )
        assert any(isinstance(e, PublicTrade) for e in seen)  # market data is passed through
        filled = await adapter.get_order_by_client_id("paper-tt")
        assert (
            filled is not None
            and filled.status is OrderStatus.FILLED
            and filled.exchange_order_id == mine.exchange_order_id
        )
        assert all(not o.client_order_id.startswith("paper") for o in exchange.orders.values())
        assert {o.user_id for o in exchange.orders.values()} == {"c1", "c2"}
    finally:
        await adapter.disconnect()


async def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.005)

    await asyncio.wait_for(poll(), timeout)
