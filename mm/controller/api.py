"""The node's control API (FastAPI): health, readiness, metrics, status, kill and resume.

Safety defaults: it binds to loopback unless the TradingNode allows otherwise (admission refuses a
non-loopback host without ``allow_non_loopback``), and every endpoint except ``/health`` requires the bearer
token (``/metrics`` too unless ``metrics_public``). The token comes from the env var the TradingNode names or
is generated into ``state_dir/api-token`` (mode 0600); it is never logged.

* ``GET /health`` — the process is up (200).
* ``GET /ready`` — every Exchange connected and loaded and the kill switch not tripped (200), else 503 with why.
* ``GET /metrics`` — Prometheus exposition of the node's metrics.
* ``GET /status`` — the node summary and every resource's status.
* ``POST /kill`` ``{"reason": ...}`` — trip the kill switch: cancel every order of ours, halt (latched).
* ``POST /resume`` ``{"confirm": true, "operator": ...}`` — reset the kill switch (a person, explicitly).
"""

from __future__ import annotations

import asyncio
import hmac
import os
import secrets
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from mm.controller.runtime import NodeRuntime
from mm.observability.metrics import render
from mm.risk.kill_switch import KillSwitchError

__all__ = ["ControlApi", "load_or_create_token"]

_START_TIMEOUT_S = 10.0


def load_or_create_token(state_dir: Path, token_env: str | None, environ: dict[str, str] | None = None) -> str:
    """The API token: from ``token_env`` when named, else ``state_dir/api-token`` (created 0600 if missing)."""
    env = os.environ if environ is None else environ
    if token_env is not None:
        value = env.get(token_env, "")
        if not value:
            raise ValueError(f"environment variable {token_env} (the API token) is not set")
        return value
    path = state_dir / "api-token"
    if path.exists():
        return path.read_text().strip()
    state_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    return token


def create_app(runtime: NodeRuntime, token: str, *, metrics_public: bool = False) -> FastAPI:
    app = FastAPI(title="mmctl control API", docs_url=None, redoc_url=None, openapi_url=None)

    def authorised(request: Request) -> bool:
        header = request.headers.get("authorization", "")
        supplied = header[7:] if header.lower().startswith("bearer ") else ""
        return hmac.compare_digest(supplied.encode(), token.encode())

    def refused() -> JSONResponse:
        return JSONResponse({"error": "missing or wrong bearer token"}, status_code=401)

    @app.get("/health")
    async def health() -> Any:
        return {"status": "ok"}

    @app.get("/ready")
    async def ready(request: Request) -> Any:
        if not authorised(request):
            return refused()
        if runtime.is_ready():
            return {"ready": True}
        reasons = []
        if runtime.node.node_switch.tripped:
            reasons.append(f"kill switch tripped: {runtime.node.node_switch.state.reason}")
        for exchange in runtime.resources.all("Exchange"):
            conn = runtime.node.exchanges.get(exchange.name)
            if conn is None or not conn.loaded or not conn.venue.connected:
                reasons.append(f"Exchange/{exchange.name} not connected and synced")
        return JSONResponse({"ready": False, "reasons": reasons}, status_code=503)

    @app.get("/metrics")
    async def metrics(request: Request) -> Any:
        if not metrics_public and not authorised(request):
            return refused()
        return Response(render(runtime.metrics), media_type="text/plain; version=0.0.4")

    @app.get("/status")
    async def status(request: Request) -> Any:
        if not authorised(request):
            return refused()
        resources = [
            {
                "kind": r.kind,
                "name": r.name,
                "generation": r.generation,
                **runtime.resources.status_json(r.kind, r.name),
            }
            for r in runtime.resources.all()
        ]
        return {"node": runtime.summary(), "resources": resources}

    @app.post("/kill")
    async def kill(request: Request) -> Any:
        if not authorised(request):
            return refused()
        body = await _json(request)
        reason = str(body.get("reason") or "manual kill via the control API")
        cancelled = await runtime.kill(reason, source="manual")
        return {"tripped": True, "cancelled": cancelled}

    @app.post("/resume")
    async def resume(request: Request) -> Any:
        if not authorised(request):
            return refused()
        body = await _json(request)
        try:
            runtime.resume(confirm=body.get("confirm") is True, operator=str(body.get("operator") or "api"))
        except KillSwitchError as exc:
            return JSONResponse({"error": str(exc)}, status_code=409)
        return {"tripped": runtime.node.node_switch.tripped}

    return app


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


class ControlApi:
    """The API served by uvicorn inside the node's event loop."""

    def __init__(self, runtime: NodeRuntime, token: str, *, host: str, port: int, metrics_public: bool) -> None:
        self.app = create_app(runtime, token, metrics_public=metrics_public)
        self._host = host
        self._port = port
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self.port = port

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    async def start(self) -> None:
        server = uvicorn.Server(
            uvicorn.Config(self.app, host=self._host, port=self._port, log_level="warning", lifespan="off")
        )
        self._server = server
        self._task = asyncio.create_task(server.serve())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _START_TIMEOUT_S
        while not server.started:
            if self._task.done():
                self._task.result()
            if loop.time() > deadline:
                raise RuntimeError("the control API did not start")
            await asyncio.sleep(0.01)
        self.port = server.servers[0].sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            await self._task
