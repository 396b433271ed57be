"""A real loopback simulator for the WebSocket tests: uvicorn in-process on port 0, FastAPI, the hub, and a
``websockets`` client that signs its upgrade exactly as kalshi-api.md §2 says (``cryptography`` directly, not
``mm.sim.auth``, so the tests check the document rather than our own signer)."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from fastapi import FastAPI
from websockets.asyncio.client import ClientConnection, connect
from websockets.frames import Frame, Opcode
from websockets.protocol import Event

from mm.clock import SimulatedClock, WallClock
from mm.domain.ticks import TickGrid
from mm.sim.auth import KeyRegistry, Verifier
from mm.sim.exchange import Exchange, NewOrder
from mm.sim.ratelimit import RateLimiter
from mm.sim.state import SimulatorState
from mm.sim.types import BookSide, SimOrder, TimeInForce
from mm.sim.ws import WebSocketHub

BID, ASK = BookSide.BID, BookSide.ASK
EVENT = "KXBTCD-26AUG1317"
T1 = f"{EVENT}-T73249.99"
T2 = f"{EVENT}-T73499.99"
T3 = f"{EVENT}-T73749.99"
OPEN_US = 1_786_650_000_000_000
CLOSE_US = OPEN_US + 3600 * 1_000_000
USERS = ("alice", "bob", "carol")
WS_PATH = "/trade-api/ws/v2"
TIMEOUT = 5.0


# --- the client side, from kalshi-api.md §2 ---------------------------------------------------------------------


def ws_auth_headers(
    key_id: str, key: rsa.RSAPrivateKey, *, ts_ms: int | None = None, path: str = WS_PATH
) -> dict[str, str]:
    """§2: sign ``timestamp_ms + "GET" + "/trade-api/ws/v2"`` with RSA-PSS (SHA-256, MGF1-SHA-256, salt = digest
    length), standard padded base64, in the three ``KALSHI-ACCESS-*`` headers."""
    timestamp = str(ts_ms if ts_ms is not None else time.time_ns() // 1_000_000)
    signature = key.sign(
        f"{timestamp}GET{path}".encode(),
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH),
        hashes.SHA256(),
    )
    return {
        "KALSHI-ACCESS-KEY": key_id,
        "KALSHI-ACCESS-TIMESTAMP": timestamp,
        "KALSHI-ACCESS-SIGNATURE": base64.b64encode(signature).decode(),
    }


class RecordingConnection(ClientConnection):
    """A ``websockets`` client connection that also records the payload of each Ping frame it receives."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pings: asyncio.Queue[bytes] = asyncio.Queue()

    def process_event(self, event: Event) -> None:
        if isinstance(event, Frame) and event.opcode is Opcode.PING:
            self.pings.put_nowait(bytes(event.data))
        super().process_event(event)


@dataclass
class Client:
    ws: RecordingConnection
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1000))
    raw: list[str] = field(default_factory=list)

    async def send(self, command: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(command))

    async def recv(self, timeout: float = TIMEOUT) -> dict[str, Any]:
        text = await asyncio.wait_for(self.ws.recv(), timeout)
        assert isinstance(text, str), "Kalshi sends text frames"
        self.raw.append(text)
        message: dict[str, Any] = json.loads(text)
        return message

    async def sync(self, timeout: float = TIMEOUT) -> list[dict[str, Any]]:
        """Everything queued for us so far: a ``list_subscriptions`` round trip is a barrier, since the server
        answers commands in order on the same queue as the data."""
        marker = next(self.ids)
        await self.send({"id": marker, "cmd": "list_subscriptions"})
        seen: list[dict[str, Any]] = []
        while True:
            message = await self.recv(timeout)
            if message.get("id") == marker and message["type"] == "ok" and isinstance(message["msg"], list):
                return seen
            seen.append(message)

    async def command(self, command: dict[str, Any]) -> list[dict[str, Any]]:
        """Send ``command`` and return every message up to the barrier after it."""
        await self.send(command)
        return await self.sync()

    async def expect_nothing(self, timeout: float) -> None:
        """No frame at all arrives within ``timeout`` (and the connection stays open)."""
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(self.ws.recv(), timeout)

    async def close(self) -> None:
        await self.ws.close()


# --- the server side --------------------------------------------------------------------------------------------


@dataclass
class Sim:
    state: SimulatorState
    hub: WebSocketHub
    url: str
    keys: dict[str, tuple[str, rsa.RSAPrivateKey]]
    clients: list[Client] = field(default_factory=list)

    @property
    def exchange(self) -> Exchange:
        return self.state.exchange

    @property
    def clock(self) -> SimulatedClock:
        clock = self.state.clock
        assert isinstance(clock, SimulatedClock)
        return clock

    def headers(self, user: str = "alice", **kwargs: Any) -> dict[str, str]:
        key_id, key = self.keys[user]
        return ws_auth_headers(key_id, key, **kwargs)

    async def connect(self, user: str = "alice", headers: dict[str, str] | None = None) -> Client:
        ws = await connect(
            self.url,
            additional_headers=headers if headers is not None else self.headers(user),
            create_connection=RecordingConnection,
            ping_interval=None,
            max_queue=None,
            open_timeout=TIMEOUT,
        )
        assert isinstance(ws, RecordingConnection)
        client = Client(ws)
        self.clients.append(client)
        return client

    def place(
        self,
        user: str,
        ticker: str,
        side: BookSide,
        price: int,
        count: int,
        *,
        tif: TimeInForce = TimeInForce.GOOD_TILL_CANCELED,
        client_order_id: str = "",
    ) -> SimOrder:
        """Create an order (``price`` $0.0001, ``count`` 1/100 contract) and publish its events."""
        order = self.exchange.create_order(
            user, NewOrder(ticker, side, price, count, client_order_id=client_order_id, time_in_force=tif)
        )
        self.state.publish()
        return order


def make_state() -> SimulatorState:
    clock = SimulatedClock(OPEN_US + 1_000_000)
    registry = KeyRegistry()
    state = SimulatorState(
        clock=clock,
        exchange=Exchange(clock),
        keys=registry,
        verifier=Verifier(registry, WallClock()),
        limiter=RateLimiter({}, WallClock()),
    )
    for user in USERS:
        state.exchange.open_account(user, 10**15)
    for ticker in (T1, T2, T3):
        state.exchange.add_market(ticker, EVENT, "KXBTCD", TickGrid.linear_cent(), OPEN_US, CLOSE_US)
    state.exchange.drain_events()
    return state


async def wait_until(condition: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.005)

    await asyncio.wait_for(poll(), timeout)


@pytest.fixture(scope="session")
def user_keys() -> dict[str, rsa.RSAPrivateKey]:
    return {user: rsa.generate_private_key(public_exponent=65537, key_size=2048) for user in USERS}


SimFactory = Callable[..., Awaitable[Sim]]


@pytest.fixture
async def make_sim(user_keys: dict[str, rsa.RSAPrivateKey]) -> AsyncIterator[SimFactory]:
    """Start simulators: ``await make_sim(ping_interval_s=..., ws="websockets-sansio", **hub_kwargs)``."""
    running: list[tuple[Sim, uvicorn.Server, asyncio.Task[None]]] = []

    async def start(*, ws: str = "auto", ping_interval_s: float | None = None, **hub_kwargs: Any) -> Sim:
        state = make_state()
        keys = {user: (state.keys.register(key.public_key(), user), key) for user, key in user_keys.items()}
        hub = WebSocketHub(state, ping_interval_s=ping_interval_s, seed=7, **hub_kwargs)
        app = FastAPI()
        app.add_api_websocket_route(WS_PATH, hub.handle)
        config = uvicorn.Config(
            app, host="127.0.0.1", port=0, log_level="warning", lifespan="off", ws=ws, ws_ping_interval=None
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        await wait_until(lambda: server.started or task.done())
        assert server.started, "uvicorn did not start"
        port = server.servers[0].sockets[0].getsockname()[1]
        sim = Sim(state, hub, f"ws://127.0.0.1:{port}{WS_PATH}", keys)
        running.append((sim, server, task))
        return sim

    yield start
    for sim, server, task in running:
        for client in sim.clients:
            await client.close()
        server.should_exit = True
        await asyncio.wait_for(task, 10)


@pytest.fixture
async def sim(make_sim: SimFactory) -> Sim:
    return await make_sim()
