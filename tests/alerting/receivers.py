"""Real receivers on loopback for the alert channels: an HTTP server (uvicorn, in the test's event loop) that
records every JSON body it is sent, and an SMTP server (aiosmtpd) that records every message.

Both can be told to refuse the first N deliveries (HTTP 503 / SMTP 451) to exercise retries; the HTTP one can
also refuse with a fixed status and an answer echoing the request (a hostile receiver, for the secret tests),
or hang until released (for timeouts).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from typing import Any

import uvicorn
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tests.controller.harness import TIMEOUT, wait_until  # noqa: F401 -- re-exported for the alerting tests


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released): connecting to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class HttpReceiver:
    """POST anything → recorded. ``failures``: refuse that many first with ``fail_status`` (503).
    ``refuse_with``: refuse every request with this status and an answer that echoes the path and body.
    ``hang``: hold every request until :meth:`release` (or shutdown)."""

    failures: int = 0
    fail_status: int = 503
    refuse_with: int | None = None
    hang: bool = False
    attempts: int = 0
    received: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._released = asyncio.Event()
        app = FastAPI()

        @app.post("/{path:path}")
        async def hook(path: str, request: Request) -> Any:
            self.attempts += 1
            raw = await request.body()
            if self.hang:
                await self._released.wait()
            if self.refuse_with is not None:
                echo = f"invalid request to /{path}: {raw.decode(errors='replace')}"
                return JSONResponse({"status": "invalid event", "message": echo}, status_code=self.refuse_with)
            if self.attempts <= self.failures:
                return JSONResponse({"busy": True}, status_code=self.fail_status)
            self.received.append(Received("/" + path, dict(request.headers), await request.json()))
            return JSONResponse({"status": "success", "message": "Event processed"}, status_code=202)

        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.base = ""

    def release(self) -> None:
        self._released.set()

    async def __aenter__(self) -> HttpReceiver:
        self._task = asyncio.create_task(self.server.serve())
        await wait_until(lambda: self.server.started, what="the HTTP receiver")
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.base = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release()
        self.server.should_exit = True
        await self._task


@dataclass
class Mail:
    mail_from: str
    rcpt_tos: list[str]
    message: Message


class _Handler:
    def __init__(self, receiver: SmtpReceiver) -> None:
        self.receiver = receiver

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        r = self.receiver
        r.attempts += 1
        if r.attempts <= r.failures:
            return "451 4.3.0 try again later"
        content = envelope.original_content or b""
        r.received.append(Mail(str(envelope.mail_from), list(envelope.rcpt_tos), message_from_bytes(content)))
        return "250 OK"


@dataclass
class SmtpReceiver:
    """An aiosmtpd server on loopback in the test's event loop. ``failures``: answer 451 to that many first
    messages. ``credentials``: (username, password) to require AUTH (over plain text: loopback only)."""

    failures: int = 0
    credentials: tuple[str, str] | None = None
    attempts: int = 0
    received: list[Mail] = field(default_factory=list)
    auth_attempts: list[str] = field(default_factory=list)
    port: int = 0

    def _authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any) -> Any:
        assert isinstance(data, LoginPassword)
        self.auth_attempts.append(data.login.decode())
        ok = self.credentials is not None and (data.login.decode(), data.password.decode()) == self.credentials
        return AuthResult(success=ok, handled=False)  # not handled: aiosmtpd answers 535 itself

    async def __aenter__(self) -> SmtpReceiver:
        handler = _Handler(self)

        def factory() -> SMTP:
            if self.credentials is None:
                return SMTP(handler, hostname="receiver.test")
            return SMTP(handler, hostname="receiver.test", authenticator=self._authenticate,
                        auth_require_tls=False)  # fmt: skip

        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(factory, host="127.0.0.1", port=0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 5)
