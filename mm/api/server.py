"""Serving the control API: the bearer token and the uvicorn server inside the node's event loop.

The token comes from the env var the TradingNode names (``api.token_env``) or is generated into
``state_dir/api-token`` with mode 0600 on first use; it is never logged. The server binds where the TradingNode
says (loopback by default; admission refuses a non-loopback host without ``allow_non_loopback``).
"""

from __future__ import annotations

import asyncio
import os
import secrets
from pathlib import Path

import uvicorn

from mm.api.app import create_app
from mm.api.hooks import ApiHooks
from mm.controller.runtime import NodeRuntime

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


class ControlApi:
    """The API served by uvicorn inside the node's event loop."""

    def __init__(
        self,
        runtime: NodeRuntime,
        token: str,
        *,
        host: str,
        port: int,
        metrics_public: bool,
        hooks: ApiHooks | None = None,
    ) -> None:
        self.hooks = hooks if hooks is not None else ApiHooks()
        self.app = create_app(runtime, token, metrics_public=metrics_public, hooks=self.hooks)
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
