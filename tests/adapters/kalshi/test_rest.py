"""KalshiRestClient against the in-process simulator over real loopback HTTP (crowd off, no real sleeps)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from mm.adapters.errors import (
    AuthenticationFailedError,
    DuplicateClientOrderIdError,
    ExchangeUnavailableError,
    MarketInactiveError,
    OrderNotFoundError,
    OrderPriceError,
    RateLimitedError,
)
from mm.adapters.kalshi.rest import KalshiRestClient, error_from_body, item_error
from mm.adapters.kalshi.signer import KalshiSigner
from mm.clock import WallClock, datetime_to_us
from mm.sim.server import Simulator, SimulatorConfig
from mm.sim.setup import DEFAULT_BALANCE_MICROS
from mm.sim.types import OrderStatus as SimOrderStatus

START = datetime_to_us(datetime(2026, 8, 13, 20, 30, tzinfo=UTC))  # the 17:00 EDT event is trading


@dataclass
class Recorder:
    """An injected ``sleep``: records delays, never waits, and may run a hook (to switch faults off)."""

    delays: list[float] = field(default_factory=list)
    hook: object = None

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        if callable(self.hook):
            self.hook()


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[Simulator]:
    config = SimulatorConfig(state_dir=tmp_path / "sim", start_us=START, strikes=3, crowd=False, seed=5)
    async with Simulator(config) as running:
        yield running


def client_for(
    sim: Simulator, signer: KalshiSigner | None, sleep: Recorder | None = None, **kw: Any
) -> KalshiRestClient:
    return KalshiRestClient(sim.rest_url, signer, WallClock(), sleep=sleep or Recorder(), **kw)


def signer_of(sim: Simulator) -> KalshiSigner:
    return KalshiSigner.from_file(sim.api_key.key_id, sim.api_key.key_file)


def second_signer(sim: Simulator, tmp_path: Path) -> KalshiSigner:
    key_id, key_file = sim.state.keys.create_key("user-b", tmp_path / "keys-b")
    sim.state.exchange.open_account("user-b", DEFAULT_BALANCE_MICROS)
    return KalshiSigner.from_file(key_id, key_file)


async def open_tickers(client: KalshiRestClient) -> list[str]:
    return [m["ticker"] async for m in client.markets(status="open")]


def order_body(ticker: str, side: str, price: str, count: str, coid: str, **extra: object) -> dict[str, object]:
    return {
        "ticker": ticker,
        "side": side,
        "price": price,
        "count": count,
        "client_order_id": coid,
        "time_in_force": "good_till_canceled",
        "self_trade_prevention_type": "maker",
        **extra,
    }


async def test_reads_return_simulator_data_and_paginate(sim: Simulator) -> None:
    async with client_for(sim, signer_of(sim)) as client:
        status = await client.exchange_status()
        assert status["trading_active"] is True
        one_per_page = [m["ticker"] async for m in client.markets(status="open", limit=1)]
        assert len(one_per_page) == 3 and one_per_page == await open_tickers(client)
        every = [m["ticker"] async for m in client.markets(limit=2)]
        assert len(every) == len(set(every)) >= 3
        ticker = one_per_page[0]
        assert (await client.market(ticker))["ticker"] == ticker
        book = await client.orderbook(ticker)
        assert "orderbook_fp" in book
        balance = await client.balance()
        assert balance["balance"] == 1_000_000
        assert [p async for p in client.positions()] == []
        assert [f async for f in client.fills()] == []
        assert [o async for o in client.orders()] == []


async def test_public_reads_without_signer(sim: Simulator) -> None:
    async with client_for(sim, None) as client:
        assert len(await open_tickers(client)) == 3
        with pytest.raises(AuthenticationFailedError) as info:
            await client.balance()
        assert info.value.status == 401 and "/trade-api/v2/portfolio/balance" in str(info.value)


async def test_create_rests_then_amend_decrease_cancel(sim: Simulator) -> None:
    async with client_for(sim, signer_of(sim)) as client:
        ticker = (await open_tickers(client))[0]
        ack = await client.create_order(order_body(ticker, "bid", "0.0500", "10", "c-1", post_only=True))
        order_id = ack["order_id"]
        assert ack["client_order_id"] == "c-1"
        order = await client.order(order_id)
        assert order["status"] == "resting" and order["yes_price_dollars"] == "0.0500"
        assert [o["order_id"] async for o in client.orders(ticker=ticker, status="resting")] == [order_id]

        await client.amend_order(order_id, {"ticker": ticker, "side": "bid", "price": "0.0600", "count": "12"})
        order = await client.order(order_id)
        assert order["yes_price_dollars"] == "0.0600" and order["remaining_count_fp"] == "12.00"

        await client.decrease_order(order_id, reduce_by="2")
        assert (await client.order(order_id))["remaining_count_fp"] == "10.00"
        await client.decrease_order(order_id, reduce_to="4")
        assert (await client.order(order_id))["remaining_count_fp"] == "4.00"

        cancel = await client.cancel_order(order_id)
        assert cancel["order_id"] == order_id
        assert (await client.order(order_id))["status"] == "canceled"
        with pytest.raises(OrderNotFoundError):
            await client.order("no-such-order")
        with pytest.raises(ValueError):
            await client.decrease_order(order_id)


async def test_crossing_orders_between_two_keys_fill(sim: Simulator, tmp_path: Path) -> None:
    async with client_for(sim, signer_of(sim)) as maker, client_for(sim, second_signer(sim, tmp_path)) as taker:
        ticker = (await open_tickers(maker))[0]
        resting = await maker.create_order(order_body(ticker, "ask", "0.4000", "5", "m-1"))
        ack = await taker.create_order(order_body(ticker, "bid", "0.4000", "5", "t-1"))
        assert (await taker.order(ack["order_id"]))["status"] == "executed"
        assert (await maker.order(resting["order_id"]))["status"] == "executed"
        fills = [f async for f in taker.fills(ticker=ticker)]
        assert len(fills) == 1 and fills[0]["is_taker"] is True and fills[0]["count_fp"] == "5.00"
        positions = [p async for p in taker.positions(ticker=ticker)]
        assert positions[0]["position_fp"] == "5.00"
        maker_positions = [p async for p in maker.positions()]
        assert maker_positions[0]["position_fp"] == "-5.00"


async def test_batch_create_reports_per_item_errors_and_chunks(sim: Simulator) -> None:
    async with client_for(sim, signer_of(sim), batch_limit=2) as client:
        ticker = (await open_tickers(client))[0]
        bodies = [order_body(ticker, "bid", f"0.0{i}00", "1", f"b-{i}") for i in range(1, 5)]
        bodies.insert(2, order_body(ticker, "bid", "0.0150", "1", "b-bad"))  # off the cent grid
        results = await client.batch_create(bodies)
        assert len(results) == 5
        errors = [item_error(r) for r in results]
        assert isinstance(errors[2], OrderPriceError)
        assert [e for i, e in enumerate(errors) if i != 2] == [None] * 4
        ids = [r["order_id"] for i, r in enumerate(results) if i != 2]
        assert len([o async for o in client.orders(status="resting")]) == 4

        cancelled = await client.batch_cancel(ids)
        assert [c["order_id"] for c in cancelled] == ids and all(item_error(c) is None for c in cancelled)
        assert [o async for o in client.orders(status="resting")] == []


async def test_error_mapping(sim: Simulator, tmp_path: Path) -> None:
    async with client_for(sim, signer_of(sim)) as client:
        ticker = (await open_tickers(client))[0]
        with pytest.raises(OrderPriceError) as price:
            await client.create_order(order_body(ticker, "bid", "0.0150", "1", "e-1"))
        assert price.value.status == 400 and price.value.code == "invalid_price"
        await client.create_order(order_body(ticker, "bid", "0.0100", "1", "e-2"))
        with pytest.raises(DuplicateClientOrderIdError):
            await client.create_order(order_body(ticker, "bid", "0.0100", "1", "e-2"))
        sim.state.faults.trading_paused = True  # every market is active at START; a paused exchange refuses
        with pytest.raises(MarketInactiveError) as inactive:
            await client.create_order(order_body(ticker, "bid", "0.0100", "1", "e-3"))
        assert inactive.value.code == "trading_paused"
    _, other_file = sim.state.keys.create_key("x", tmp_path / "unused")
    bad = KalshiSigner.from_file("not-a-registered-key", other_file)
    async with client_for(sim, bad) as client:
        with pytest.raises(AuthenticationFailedError) as auth:
            await client.balance()
        message = str(auth.value)
        assert "not-a-registered-key" not in message and "KALSHI-ACCESS" not in message


async def test_read_retries_429_with_backoff_then_raises(sim: Simulator) -> None:
    sleep = Recorder()
    async with client_for(sim, signer_of(sim), sleep) as client:
        sim.state.faults.rest_429_rate = 1.0
        with pytest.raises(RateLimitedError) as info:
            await client.balance()
        assert info.value.status == 429
        assert sleep.delays == [0.5, 1, 2]
        assert sim.state.faults.counters.rate_limited_requests == 4


async def test_read_recovers_after_5xx(sim: Simulator) -> None:
    def heal() -> None:
        sim.state.faults.rest_error_rate = 0.0

    sleep = Recorder(hook=heal)
    async with client_for(sim, signer_of(sim), sleep) as client:
        sim.state.faults.rest_error_rate = 1.0
        assert (await client.balance())["balance"] == 1_000_000
        assert sleep.delays == [0.5]


async def test_create_is_resent_after_429_because_nothing_was_created(sim: Simulator) -> None:
    sleep = Recorder()
    async with client_for(sim, signer_of(sim), sleep) as client:
        ticker = (await open_tickers(client))[0]
        sim.state.faults.rest_429_rate = 1.0
        with pytest.raises(RateLimitedError):
            await client.create_order(order_body(ticker, "bid", "0.0100", "1", "r-1"))
        assert sleep.delays == [0.5, 1, 2] and not sim.state.exchange.orders

    def heal() -> None:
        sim.state.faults.rest_429_rate = 0.0

    async with client_for(sim, signer_of(sim), Recorder(hook=heal)) as client:
        sim.state.faults.rest_429_rate = 1.0
        ack = await client.create_order(order_body(ticker, "bid", "0.0100", "1", "r-2"))
        assert [o.client_order_id for o in sim.state.exchange.orders.values()] == ["r-2"]
        assert ack["order_id"] in sim.state.exchange.orders


async def test_timed_out_create_recovers_without_a_duplicate(sim: Simulator) -> None:
    def heal() -> None:
        sim.state.faults.rest_latency_s = 0.0

    sleep = Recorder(hook=heal)
    async with client_for(sim, signer_of(sim), sleep, timeout_s=0.3) as client:
        ticker = (await open_tickers(client))[0]
        sim.state.faults.rest_latency_s = 0.5
        ack = await client.create_order(order_body(ticker, "bid", "0.0700", "3", "slow-1"))
        assert sleep.delays[0] == 0.5
        same = [o for o in sim.state.exchange.orders.values() if o.client_order_id == "slow-1"]
        assert len(same) == 1 and ack["order_id"] == same[0].order_id
        assert (await client.order(ack["order_id"]))["client_order_id"] == "slow-1"


async def test_writes_whose_answer_is_lost_happened_once_and_are_found_or_reported(sim: Simulator) -> None:
    """The venue carried each write out but its answer never came (a 504): the create is found by its client
    order id and not placed again; the cancel's retry finds the order gone; the amend is not retried (in doubt)."""
    async with client_for(sim, signer_of(sim)) as client:
        ticker = (await open_tickers(client))[0]
        faults = sim.state.faults
        faults.rest_lost_response_rate = 1.0
        ack = await client.create_order(order_body(ticker, "bid", "0.0700", "3", "lost-1"))
        same = [o for o in sim.state.exchange.orders.values() if o.client_order_id == "lost-1"]
        assert len(same) == 1 and ack["order_id"] == same[0].order_id and ack["recovered"] is True
        assert faults.counters.lost_responses == 1  # the look-up is a read: its answer arrives

        with pytest.raises(ExchangeUnavailableError) as amend:
            await client.amend_order(
                ack["order_id"], {"ticker": ticker, "side": "bid", "price": "0.0800", "count": "3"}
            )
        assert amend.value.status == 504 and same[0].price == 800  # done at the venue all the same

        with pytest.raises(OrderNotFoundError):  # the re-sent cancel: the first one did cancel it
            await client.cancel_order(ack["order_id"])
        assert same[0].status is SimOrderStatus.CANCELED and faults.counters.lost_responses == 3


async def test_timed_out_create_without_client_order_id_is_not_resent(sim: Simulator) -> None:
    sleep = Recorder()
    async with client_for(sim, signer_of(sim), sleep, timeout_s=0.3) as client:
        ticker = (await open_tickers(client))[0]
        sim.state.faults.rest_latency_s = 0.5
        body = order_body(ticker, "bid", "0.0700", "3", "")
        with pytest.raises(ExchangeUnavailableError, match="not retried"):
            await client.create_order(body)
        assert sleep.delays == []


async def test_network_failure_maps_to_unavailable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    sleep = Recorder()
    client = KalshiRestClient(
        "http://x/trade-api/v2", None, WallClock(), transport=httpx.MockTransport(refuse), sleep=sleep, max_retries=2
    )
    async with client:
        with pytest.raises(ExchangeUnavailableError):
            await client.exchange_status()
    assert sleep.delays == [0.5, 1]


async def test_retry_after_header_and_signed_full_path() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) == 1:
            return httpx.Response(503, headers={"Retry-After": "7"}, json={"error": {"code": "x"}})
        return httpx.Response(200, json={"exchange_active": True})

    sleep = Recorder()
    async with KalshiRestClient(
        "http://x/trade-api/v2", None, WallClock(), transport=httpx.MockTransport(handler), sleep=sleep
    ) as client:
        assert (await client.exchange_status())["exchange_active"] is True
    assert sleep.delays == [7.0]
    assert seen[0].url.path == "/trade-api/v2/exchange/status"
    assert seen[0].headers["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    ("status", "payload", "path", "expected"),
    [
        (400, {"error": {"code": "available_balance_too_low", "message": "m"}}, "/o", "InsufficientBalanceError"),
        (400, {"code": "insufficient_balance"}, "/o", "InsufficientBalanceError"),
        (400, {"code": "invalid_order_size"}, "/o", "OrderSizeError"),
        (400, {"error": {"code": "invalid_order", "message": "MARKET_INACTIVE: closed"}}, "/o", "MarketInactiveError"),
        (400, {"error": {"code": "trading_paused"}}, "/o", "MarketInactiveError"),
        (400, {"error": {"code": "invalid_order"}}, "/o", "OrderRejectedError"),
        (403, {}, "/o", "AuthenticationFailedError"),
        (404, {"code": "not_found"}, "/portfolio/orders/1", "OrderNotFoundError"),
        (404, {"code": "not_found"}, "/markets/X", "ExchangeError"),
        (409, {}, "/o", "DuplicateClientOrderIdError"),
        (429, {"error": "too many requests"}, "/o", "RateLimitedError"),
        (504, {}, "/o", "ExchangeUnavailableError"),
    ],
)
def test_error_from_body(status: int, payload: object, path: str, expected: str) -> None:
    error = error_from_body("POST", path, status, payload)
    assert type(error).__name__ == expected
    assert error.status == status and path in str(error) and str(status) in str(error)
