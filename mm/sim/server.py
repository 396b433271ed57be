"""Running the simulator: the HTTP/WebSocket app, the market loop task, and the admin endpoints.

``async with Simulator(state_dir=...) as sim:`` starts everything in-process on an ephemeral loopback
port (tests, the quickstart); ``mmctl sim`` does the same until Ctrl-C. The admin endpoints under
``/admin`` (fault switches, the simulation clock, ground truth) answer loopback clients only.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from mm.clock import Clock, ScaledClock, WallClock, format_rfc3339_us
from mm.sim.market_loop import MarketLoop, default_crowd
from mm.sim.rest import create_rest_router
from mm.sim.schedule import Schedule
from mm.sim.setup import ApiKey, build_state, load_or_create_key
from mm.sim.state import Faults, SimulatorState
from mm.sim.underlying import Underlying, UnderlyingConfig
from mm.sim.ws import WebSocketHub

_START_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    host: str = "127.0.0.1"
    port: int = 0
    """0 = an ephemeral port (read it back from :attr:`Simulator.port`)."""
    speed: float = 1.0
    """Simulation seconds per real second."""
    seed: int = 1
    state_dir: Path = Path("./data/sim")
    start_us: int | None = None
    """Simulation start time, µs since the epoch; None = now."""
    strikes: int = 11
    crowd: bool = True
    tick_seconds: float = 1.0
    """Simulation seconds between market-loop steps."""
    tier: str = "prestige"
    """Rate-limit tier of every user (prestige: effectively unthrottled; basic to test 429 handling)."""


def _is_loopback(host: str | None) -> bool:
    if host in (None, "testclient", "localhost"):
        return True
    try:
        return ipaddress.ip_address(str(host)).is_loopback
    except ValueError:
        return False


def create_app(state: SimulatorState, hub: WebSocketHub) -> FastAPI:
    """The simulator's ASGI app: Kalshi REST under /trade-api/v2, WebSocket at /trade-api/ws/v2, /admin."""
    app = FastAPI(title="mmctl exchange simulator", docs_url=None, redoc_url=None)
    app.include_router(create_rest_router(state), prefix="/trade-api/v2")
    app.add_api_websocket_route("/trade-api/ws/v2", hub.handle)

    def loopback_only(request: Request) -> JSONResponse | None:
        if _is_loopback(request.client.host if request.client else None):
            return None
        return JSONResponse({"error": "admin endpoints answer loopback clients only"}, status_code=403)

    @app.get("/admin/clock")
    async def admin_clock(request: Request) -> Any:
        refused = loopback_only(request)
        if refused is not None:
            return refused
        now = state.clock.now_us()
        return {"now_us": now, "now": format_rfc3339_us(now)}

    @app.get("/admin/faults")
    async def get_faults(request: Request) -> Any:
        refused = loopback_only(request)
        if refused is not None:
            return refused
        return _faults_json(state.faults)

    @app.put("/admin/faults")
    async def put_faults(request: Request) -> Any:
        refused = loopback_only(request)
        if refused is not None:
            return refused
        body = await request.json()
        allowed = {f.name for f in fields(Faults)} - {"counters"}
        unknown = sorted(set(body) - allowed)
        if unknown:
            return JSONResponse({"error": f"unknown fault settings: {', '.join(unknown)}"}, status_code=400)
        for name, value in body.items():
            setattr(state.faults, name, value)
        return _faults_json(state.faults)

    @app.post("/admin/drop-connections")
    async def drop_connections(request: Request) -> Any:
        refused = loopback_only(request)
        if refused is not None:
            return refused
        dropped = hub.drop_all_connections()
        return {"dropped": dropped}

    return app


def _faults_json(faults: Faults) -> dict[str, Any]:
    out = {f.name: getattr(faults, f.name) for f in fields(Faults) if f.name != "counters"}
    out["counters"] = {f.name: getattr(faults.counters, f.name) for f in fields(faults.counters)}
    return out


class Simulator:
    """The whole simulator in-process: state, market loop and server. Use as an async context manager."""

    def __init__(self, config: SimulatorConfig | None = None, *, base_clock: Clock | None = None) -> None:
        self.config = config or SimulatorConfig()
        base = base_clock if base_clock is not None else WallClock()
        start = self.config.start_us if self.config.start_us is not None else base.now_us()
        self.clock = ScaledClock(start, self.config.speed, base)
        self.state = build_state(self.clock, tier=self.config.tier)
        self.api_key: ApiKey = load_or_create_key(self.config.state_dir, self.state)
        self.loop = MarketLoop(
            self.state,
            Schedule(strikes=self.config.strikes),
            Underlying(UnderlyingConfig(), self.config.seed, start),
            default_crowd(self.config.seed) if self.config.crowd else None,
        )
        self.hub = WebSocketHub(self.state, seed=self.config.seed)
        self.app = create_app(self.state, self.hub)
        self._server: uvicorn.Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.port = self.config.port

    @property
    def base_url(self) -> str:
        return f"http://{self.config.host}:{self.port}"

    @property
    def rest_url(self) -> str:
        return f"{self.base_url}/trade-api/v2"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.config.host}:{self.port}/trade-api/ws/v2"

    async def start(self) -> None:
        self.loop.step()  # markets exist before the first client arrives
        server = uvicorn.Server(
            uvicorn.Config(
                self.app,
                host=self.config.host,
                port=self.config.port,
                log_level="warning",
                lifespan="off",
                ws_ping_interval=None,  # the hub sends Kalshi's own "heartbeat" pings
            )
        )
        self._server = server
        self._tasks.append(asyncio.create_task(server.serve()))
        deadline = asyncio.get_running_loop().time() + _START_TIMEOUT_S
        while not server.started:
            if self._tasks[0].done():
                self._tasks[0].result()  # surfaces the startup error (e.g. port in use)
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError("the simulator's server did not start")
            await asyncio.sleep(0.01)
        self.port = server.servers[0].sockets[0].getsockname()[1]
        self._tasks.append(asyncio.create_task(self._run_market()))

    async def _run_market(self) -> None:
        pause = self.clock.real_seconds(self.config.tick_seconds)
        while True:
            await asyncio.sleep(pause)  # pacing the simulation in real time is the point here
            self.loop.step()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        for task in reversed(self._tasks):
            if not task.done() and task is not self._tasks[0]:
                task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
