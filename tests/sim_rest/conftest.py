"""Fixtures for the simulator's REST API: a hand-built SimulatorState, an ASGI app, and a signing client.

The client signs requests the way kalshi-api.md §2 describes, with ``cryptography`` directly (not
``mm.sim.auth.sign_request``), so these tests check the simulator against the document, not against itself:
``KALSHI-ACCESS-TIMESTAMP`` = Unix ms, signature = base64(RSA-PSS(SHA-256, MGF1(SHA-256), salt 32) over
``timestamp + METHOD + /trade-api/v2/path`` without the query string).
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from fastapi import FastAPI

from mm.clock import SimulatedClock, datetime_to_us
from mm.sim.auth import KeyRegistry, Verifier
from mm.sim.exchange import Exchange, ExchangeEvent
from mm.sim.ratelimit import RateLimiter
from mm.sim.rest import create_rest_router
from mm.sim.schedule import HourlyEvent, MarketDef, SeriesDef
from mm.sim.state import SimulatorState

PREFIX = "/trade-api/v2"
SERIES = "KXBTCD"
EVENT = "KXBTCD-26AUG1317"
NEXT_EVENT = "KXBTCD-26AUG1318"
CLOSE_US = datetime_to_us(datetime(2026, 8, 13, 21, tzinfo=UTC))  # 5 PM EDT
OPEN_US = CLOSE_US - 3600 * 1_000_000
T0_US = OPEN_US + 60 * 1_000_000  # the event has been open for a minute
T1 = f"{EVENT}-T73249.99"
T2 = f"{EVENT}-T73499.99"
T3 = f"{EVENT}-T73749.99"
LATER = f"{NEXT_EVENT}-T73499.99"  # opens at 5 PM: initialized at T0
DOLLAR = 1_000_000  # micro-dollars
USERS = {"alice": "prestige", "bob": "prestige", "carol": "basic"}


def market_def(ticker: str, event: str, floor: str, open_us: int, close_us: int) -> MarketDef:
    return MarketDef(
        ticker=ticker,
        event_ticker=event,
        series_ticker=SERIES,
        title="Bitcoin price on Aug 13, 2026?",
        yes_sub_title=f"${Decimal(floor) + Decimal('0.01'):,} or above",
        no_sub_title=f"${Decimal(floor) + Decimal('0.01'):,} or above",
        rules_primary=f"If the simple average ... is above {floor} ..., then the market resolves to Yes.",
        open_time_us=open_us,
        close_time_us=close_us,
        expected_expiration_us=close_us + 300 * 1_000_000,
        latest_expiration_us=close_us + 7 * 86400 * 1_000_000,
        floor_strike=Decimal(floor),
    )


@dataclass(frozen=True)
class Key:
    key_id: str
    pem_path: Path

    @cached_property
    def private_key(self) -> rsa.RSAPrivateKey:
        key = serialization.load_pem_private_key(self.pem_path.read_bytes(), password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        return key


@pytest.fixture(scope="session")
def key_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Key]:
    """One RSA-2048 key per user, created once (key generation is slow) in a temp directory."""
    directory = tmp_path_factory.mktemp("keys")
    registry = KeyRegistry()
    return {user: Key(*registry.create_key(user, directory)) for user in USERS}


@dataclass
class Sim:
    state: SimulatorState
    clock: SimulatedClock
    app: FastAPI
    keys: dict[str, Key]
    sleeps: list[float] = field(default_factory=list)
    published: list[ExchangeEvent] = field(default_factory=list)

    @property
    def exchange(self) -> Exchange:
        return self.state.exchange


@pytest.fixture
def sim(key_files: dict[str, Key]) -> Sim:
    clock = SimulatedClock(T0_US)
    exchange = Exchange(clock)
    registry = KeyRegistry()
    for user, key in key_files.items():
        registry.register(key.private_key.public_key(), user, key_id=key.key_id)
    state = SimulatorState(
        clock=clock,
        exchange=exchange,
        keys=registry,
        verifier=Verifier(registry, clock),
        limiter=RateLimiter(USERS, clock),
    )
    state.series[SERIES] = SeriesDef(SERIES, "Bitcoin price today", tags=("Bitcoin",))
    defs = [
        market_def(T1, EVENT, "73249.99", OPEN_US, CLOSE_US),
        market_def(T2, EVENT, "73499.99", OPEN_US, CLOSE_US),
        market_def(T3, EVENT, "73749.99", OPEN_US, CLOSE_US),
    ]
    later = market_def(LATER, NEXT_EVENT, "73499.99", CLOSE_US, CLOSE_US + 3600 * 1_000_000)
    state.events[EVENT] = HourlyEvent(
        EVENT, SERIES, "Bitcoin price today at 5pm EDT?", "On Aug 13, 2026", OPEN_US, CLOSE_US, CLOSE_US, tuple(defs)
    )
    state.events[NEXT_EVENT] = HourlyEvent(
        NEXT_EVENT, SERIES, "Bitcoin price today at 6pm EDT?", "On Aug 13, 2026", CLOSE_US, later.close_time_us,
        later.close_time_us, (later,),
    )  # fmt: skip
    for d in [*defs, later]:
        state.markets[d.ticker] = d
        exchange.add_market(d.ticker, d.event_ticker, d.series_ticker, d.grid, d.open_time_us, d.close_time_us)
    exchange.open_account("alice", 1000 * DOLLAR)
    exchange.open_account("bob", 1000 * DOLLAR)
    exchange.open_account("carol", 100 * DOLLAR)
    exchange.drain_events()
    sleeps: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    app = FastAPI()
    app.include_router(create_rest_router(state, seed=7, sleep=fake_sleep), prefix=PREFIX)
    result = Sim(state, clock, app, key_files, sleeps)
    state.listeners.append(result.published.extend)
    return result


class Client:
    """A minimal Kalshi REST client written from kalshi-api.md §2–3 (signing with ``cryptography``)."""

    def __init__(self, http: httpx.AsyncClient, sim: Sim) -> None:
        self.http = http
        self.sim = sim

    def headers(self, user: str, method: str, path: str, *, ts_ms: int | None = None) -> dict[str, str]:
        key = self.sim.keys[user]
        ts = self.sim.clock.now_us() // 1000 if ts_ms is None else ts_ms
        message = f"{ts}{method.upper()}{PREFIX}{path.split('?', maxsplit=1)[0]}".encode()
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
        signature = key.private_key.sign(message, pss, hashes.SHA256())
        return {
            "KALSHI-ACCESS-KEY": key.key_id,
            "KALSHI-ACCESS-TIMESTAMP": str(ts),
            "KALSHI-ACCESS-SIGNATURE": base64.b64encode(signature).decode(),
            "Content-Type": "application/json",
        }

    async def request(
        self, method: str, path: str, user: str | None = None, *, params: Any = None, json: Any = None
    ) -> httpx.Response:
        headers = self.headers(user, method, path) if user else {}
        return await self.http.request(method, PREFIX + path, params=params, json=json, headers=headers)

    async def get(self, path: str, user: str | None = None, **params: Any) -> httpx.Response:
        return await self.request("GET", path, user, params=params or None)

    async def post(self, path: str, user: str, body: Any) -> httpx.Response:
        return await self.request("POST", path, user, json=body)

    async def delete(self, path: str, user: str, body: Any = None, **params: Any) -> httpx.Response:
        return await self.request("DELETE", path, user, json=body, params=params or None)

    async def create(self, user: str, ticker: str, side: str, price: str, count: str, **extra: Any) -> httpx.Response:
        body = {
            "ticker": ticker,
            "side": side,
            "price": price,
            "count": count,
            "time_in_force": "good_till_canceled",
            "self_trade_prevention_type": "taker_at_cross",
            **extra,
        }
        return await self.post("/portfolio/events/orders", user, body)


@pytest.fixture
async def client(sim: Sim) -> AsyncIterator[Client]:
    transport = httpx.ASGITransport(app=sim.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as http:
        yield Client(http, sim)


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """A Kalshi error: the nested object plus top-level copies (kalshi-api.md §3)."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["error"]["code"] == code and body["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["message"] == body["error"]["message"]
    return body
