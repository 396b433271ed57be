"""Kalshi's WebSocket connection (kalshi-api.md §2, §6): signed upgrade, subscriptions, automatic reconnect.

:class:`KalshiWebSocket` implements :class:`~mm.adapters.base.WebSocketClient`:

* The upgrade carries the ``KALSHI-ACCESS-*`` headers signed over ``timestamp + "GET" + "/trade-api/ws/v2"``
  whatever URL is dialled. HTTP 401/403 on the upgrade raises :class:`AuthenticationFailedError`; anything
  else that prevents the first connection raises :class:`ExchangeUnavailableError`.
* :meth:`subscribe` sends one ``subscribe`` per channel (as a current client does) with incrementing ids and
  records the desired subscriptions; sids are learnt from ``subscribed`` replies (:attr:`sids`).
* One reader task decodes every text frame and awaits each registered handler in order. A frame that is not
  a JSON object is counted in :attr:`malformed_count`, reported through ``log`` and passed to the
  ``on_malformed`` hooks (the book feed resyncs: the lost frame may have been a delta); it never kills the reader.
  A handler that raises is logged and counted in :attr:`handler_errors`; the reader goes on.
* :meth:`unsubscribe` removes markets from a channel (``update_subscription``/``delete_markets``) or the whole
  channel (``unsubscribe``) and forgets them for re-subscription.
* ``on_disconnected`` hooks hear every loss of the connection (with the reason), ``on_connected`` hooks every
  (re)connection: the adapter turns them into ``ConnectionState`` events and the ``mm_websocket_connected``
  gauge.
* When the connection closes or errors (or no frame at all, pings included, arrives within
  ``heartbeat_timeout_s``), the client reconnects with exponential backoff and jitter (:class:`ReconnectPolicy`,
  NFR-204), calls the ``on_connected`` hooks (e.g. :meth:`BookFeed.connection_reset`) and re-subscribes
  everything. :meth:`reconnect` forces that cycle; :meth:`close` ends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.frames import Frame
from websockets.protocol import Event

from mm.adapters.base import MessageHandler, WebSocketClient
from mm.adapters.errors import AuthenticationFailedError, ExchangeUnavailableError
from mm.adapters.kalshi.signer import WS_SIGNING_PATH, KalshiSigner
from mm.clock import Clock

_logger = logging.getLogger(__name__)

Sleep = Callable[[float], Any]


@dataclass(frozen=True, slots=True)
class ReconnectPolicy:
    """Exponential backoff between reconnect attempts (NFR-204).

    Attempt ``n`` (0-based, reset after each successful connection) waits ``min(max, initial * multiplier**n)``,
    multiplied by a uniform factor in [0.5, 1.0] when ``jitter`` is on (so concurrent clients spread out but a
    delay never collapses to zero).
    """

    initial_delay_s: float = 0.1
    max_delay_s: float = 60.0
    multiplier: float = 2.0
    jitter: bool = True

    def delay(self, attempt: int, rng: random.Random) -> float:
        base = min(self.max_delay_s, self.initial_delay_s * self.multiplier ** min(attempt, 64))
        return base * (0.5 + 0.5 * rng.random()) if self.jitter else base


class _Connection(ClientConnection):
    """A client connection that notes when any frame (data, ping, pong, close) last arrived."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.frames = 0

    def process_event(self, event: Event) -> None:
        if isinstance(event, Frame):
            self.frames += 1
        super().process_event(event)


class KalshiWebSocket(WebSocketClient):
    def __init__(
        self,
        url: str,
        signer: KalshiSigner,
        clock: Clock,
        *,
        reconnect: ReconnectPolicy | None = None,
        heartbeat_timeout_s: float = 30.0,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
        log: Callable[[str], None] | None = None,
        open_timeout_s: float = 10.0,
    ) -> None:
        self.url = url
        self._signer = signer
        self._clock = clock
        self._policy = reconnect if reconnect is not None else ReconnectPolicy()
        self._heartbeat_timeout_s = heartbeat_timeout_s
        self._sleep = sleep
        self._rng = rng if rng is not None else random.Random()
        self._log = log if log is not None else _logger.warning
        self._open_timeout_s = open_timeout_s
        self._ws: _Connection | None = None
        self._handlers: list[MessageHandler] = []
        self._on_connected: list[Callable[[], None]] = []
        self._on_disconnected: list[Callable[[str], None]] = []
        self._on_malformed: list[Callable[[], None]] = []
        self.handler_errors = 0
        self._desired: dict[str, tuple[dict[str, Any], dict[str, None] | None]] = {}
        self._next_id = 1
        self._supervisor: asyncio.Task[None] | None = None
        self._closing = False
        self._generation = 0
        self._changed = asyncio.Condition()
        self._pending: set[asyncio.Task[Any]] = set()
        self.sids: dict[str, int] = {}
        """channel -> sid on the current connection, from ``subscribed`` replies."""
        self.connected = False
        self.reconnects = 0
        self.failed_attempts = 0
        """Reconnect attempts that failed in a row since the stream was last connected."""
        self.malformed_count = 0
        self.backoff_delays: list[float] = []
        """Every reconnect delay waited so far, in seconds (observability and tests)."""
        self.last_error: BaseException | None = None

    # ------------------------------------------------------------------ WebSocketClient

    async def connect(self) -> None:
        if self._supervisor is not None:
            return
        self._closing = False
        self._ws = await self._open()
        self._went_up()
        await self._resubscribe()
        await self._notify()
        self._supervisor = asyncio.create_task(self._run(), name="kalshi-ws")

    async def subscribe(self, channels: list[str], market_ids: Sequence[str] = (), **params: Any) -> None:
        """Subscribe ``channels`` (one command each) for ``market_ids`` (all markets if empty).

        Extra ``params`` (e.g. ``use_yes_price``) go into each command. The subscription is remembered and
        re-sent after every reconnect; if currently disconnected it is only remembered.
        """
        for channel in channels:
            extra, tickers = self._desired.get(channel, ({}, {}))
            extra = {**extra, **params}
            if not market_ids:
                tickers = None
            elif tickers is not None:
                tickers = {**tickers, **dict.fromkeys(market_ids)}
            self._desired[channel] = (extra, tickers)
            if self.connected:
                await self._send_subscribe(channel, list(market_ids) if market_ids else None, extra)

    async def on_message(self, handler: MessageHandler) -> None:
        self._handlers.append(handler)

    def on_connected(self, hook: Callable[[], None]) -> None:
        """Call ``hook`` after every (re)connection, before re-subscribing (e.g. to reset seq state)."""
        self._on_connected.append(hook)

    def on_disconnected(self, hook: Callable[[str], None]) -> None:
        """Call ``hook(reason)`` whenever an established connection is lost (not on :meth:`close`)."""
        self._on_disconnected.append(hook)

    def on_malformed(self, hook: Callable[[], None]) -> None:
        """Call ``hook()`` after a frame that could not be decoded into a JSON object."""
        self._on_malformed.append(hook)

    async def unsubscribe(self, channels: list[str], market_ids: Sequence[str] = ()) -> None:
        """Stop ``channels`` for ``market_ids`` (the whole channel if empty); not re-subscribed after reconnects.

        With markets left on the channel the venue gets ``update_subscription``/``delete_markets``; when none
        are left (or no markets were given) the channel's sid is ``unsubscribe``d.
        """
        for channel in channels:
            entry = self._desired.get(channel)
            if entry is None:
                continue
            extra, tickers = entry
            drop_all = not market_ids or tickers is None
            remaining: dict[str, None] = {}
            if not drop_all and tickers is not None:
                remaining = {t: None for t in tickers if t not in set(market_ids)}
                drop_all = not remaining
            sid = self.sids.get(channel)
            if drop_all:
                del self._desired[channel]
                self.sids.pop(channel, None)
                if self.connected and sid is not None:
                    await self.send_command("unsubscribe", {"sids": [sid]})
            else:
                self._desired[channel] = (extra, remaining)
                if self.connected and sid is not None:
                    await self.send_command(
                        "update_subscription",
                        {"sid": sid, "market_tickers": list(market_ids), "action": "delete_markets"},
                    )

    @property
    def frames_received(self) -> int:
        """Frames (data, ping, pong, close) received on the current connection; 0 when there is none. It only
        grows while a connection lasts, so a change (or a new connection) shows the stream is alive."""
        ws = self._ws
        return ws.frames if ws is not None else 0

    def subscribed_tickers(self, channel: str) -> list[str] | None:
        """The markets desired on ``channel`` (None = all markets; [] = not subscribed)."""
        entry = self._desired.get(channel)
        if entry is None:
            return []
        return None if entry[1] is None else list(entry[1])

    async def reconnect(self) -> None:
        """Drop the current connection and wait until the client is connected (and re-subscribed) again."""
        generation = self._generation
        ws = self._ws
        if ws is not None:
            await ws.close()
        async with self._changed:
            await self._changed.wait_for(lambda: self._generation > generation or self._closing)

    async def close(self) -> None:
        self._closing = True
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close()
        task, self._supervisor = self._supervisor, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for pending in list(self._pending):
            pending.cancel()
        self.connected = False
        async with self._changed:
            self._changed.notify_all()

    # ------------------------------------------------------------------ commands

    async def send_command(self, cmd: str, params: dict[str, Any] | None = None) -> int:
        """Send ``{"id", "cmd", "params"}`` on the current connection; returns the id.

        Raises :class:`ExchangeUnavailableError` when not connected.
        """
        ws = self._ws
        if ws is None or not self.connected:
            raise ExchangeUnavailableError(f"cannot send {cmd}: not connected")
        cmd_id = self._next_id
        self._next_id += 1
        command: dict[str, Any] = {"id": cmd_id, "cmd": cmd}
        if params is not None:
            command["params"] = params
        try:
            await ws.send(json.dumps(command))
        except ConnectionClosed as exc:
            raise ExchangeUnavailableError(f"cannot send {cmd}: connection closed") from exc
        return cmd_id

    async def get_snapshot(self, sid: int, tickers: Sequence[str]) -> int:
        return await self.send_command(
            "update_subscription", {"sid": sid, "market_tickers": list(tickers), "action": "get_snapshot"}
        )

    def request_snapshot(self, sid: int, tickers: list[str]) -> None:
        """Synchronous form for :class:`BookFeed`: sends ``get_snapshot`` in the background.

        A request that cannot be sent is dropped: a reconnect re-subscribes and so re-snapshots anyway.
        """
        task = asyncio.get_running_loop().create_task(self._quiet_snapshot(sid, tickers, self._generation))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _quiet_snapshot(self, sid: int, tickers: list[str], generation: int) -> None:
        if generation != self._generation:
            return  # the sid belonged to a connection that is gone; re-subscribing re-snapshots
        try:
            await self.get_snapshot(sid, tickers)
        except ExchangeUnavailableError as exc:
            self._log(f"get_snapshot for sid {sid} not sent: {exc}")

    async def _send_subscribe(self, channel: str, tickers: list[str] | None, extra: dict[str, Any]) -> None:
        params: dict[str, Any] = {"channels": [channel], **extra}
        if tickers:
            params["market_tickers"] = tickers
        await self.send_command("subscribe", params)

    # ------------------------------------------------------------------ connection

    async def _open(self) -> _Connection:
        headers = self._signer.headers("GET", WS_SIGNING_PATH, self._clock.now_us() // 1000)
        try:
            ws = await connect(
                self.url,
                additional_headers=headers,
                create_connection=_Connection,
                ping_interval=20.0,
                ping_timeout=10.0,
                open_timeout=self._open_timeout_s,
                max_queue=None,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status in (401, 403):
                raise AuthenticationFailedError(
                    f"WebSocket upgrade refused with HTTP {status}", status=status
                ) from None
            raise ExchangeUnavailableError(f"WebSocket upgrade answered HTTP {status}", status=status) from None
        except (OSError, TimeoutError, ConnectionClosed) as exc:
            raise ExchangeUnavailableError(f"cannot connect to {self.url}: {exc}") from None
        except Exception as exc:
            raise ExchangeUnavailableError(f"WebSocket handshake with {self.url} failed: {exc}") from None
        assert isinstance(ws, _Connection)
        return ws

    def _went_down(self, reason: str) -> None:
        for hook in self._on_disconnected:
            try:
                hook(reason)
            except Exception as exc:
                self._log(f"on_disconnected hook failed: {exc!r}")

    def _went_up(self) -> None:
        self.connected = True
        self.sids.clear()
        for hook in self._on_connected:
            hook()

    async def _resubscribe(self) -> None:
        for channel, (extra, tickers) in list(self._desired.items()):
            await self._send_subscribe(channel, list(tickers) if tickers is not None else None, extra)

    async def _notify(self) -> None:
        self._generation += 1
        async with self._changed:
            self._changed.notify_all()

    async def _run(self) -> None:
        while not self._closing:
            ws = self._ws
            if ws is not None:
                try:
                    await self._read(ws)
                except (ConnectionClosed, ExchangeUnavailableError) as exc:
                    self.last_error = exc
                except Exception as exc:
                    self.last_error = exc
                    self._log(f"WebSocket reader failed: {exc!r}")
                self.connected = False
                if not self._closing:
                    self._went_down(repr(self.last_error) if self.last_error is not None else "connection lost")
                with contextlib.suppress(Exception):
                    await ws.close()
                self._ws = None
            if self._closing:
                return
            new = await self._reconnect_with_backoff()
            if new is None:
                return
            self._ws = new
            self.reconnects += 1
            self._went_up()
            try:
                await self._resubscribe()
            except ExchangeUnavailableError as exc:
                self.last_error = exc
                continue  # the reader sees the closed connection and the cycle starts again
            await self._notify()

    async def _reconnect_with_backoff(self) -> _Connection | None:
        attempt = 0
        while not self._closing:
            delay = self._policy.delay(attempt, self._rng)
            self.backoff_delays.append(delay)
            await self._sleep(delay)
            if self._closing:
                return None
            try:
                opened = await self._open()
            except (AuthenticationFailedError, ExchangeUnavailableError) as exc:
                self.last_error = exc
                self.failed_attempts = attempt + 1
                self._log(f"reconnect attempt {attempt + 1} failed: {exc}")
            else:
                self.failed_attempts = 0
                return opened
            attempt += 1
        return None

    async def _read(self, ws: _Connection) -> None:
        while True:
            seen = ws.frames
            try:
                raw = await asyncio.wait_for(ws.recv(), self._heartbeat_timeout_s)
            except TimeoutError:
                if ws.frames == seen:
                    self._log(f"no frame for {self._heartbeat_timeout_s} s: reconnecting")
                    self.last_error = TimeoutError(f"no frame for {self._heartbeat_timeout_s} s")
                    return
                continue
            await self._dispatch(raw)

    async def _dispatch(self, raw: str | bytes) -> None:
        try:
            message = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            message = None
        if not isinstance(message, dict):
            self.malformed_count += 1
            self._log(f"malformed WebSocket frame ({len(raw)} bytes): resyncing")
            for hook in self._on_malformed:
                hook()
            return
        if message.get("type") == "subscribed":
            msg = message.get("msg")
            if isinstance(msg, dict) and isinstance(msg.get("channel"), str) and isinstance(msg.get("sid"), int):
                self.sids[msg["channel"]] = msg["sid"]
        elif message.get("type") == "error":
            self._log(f"WebSocket error reply: {message.get('msg')!r}")
        for handler in self._handlers:
            try:
                await handler(message)
            except Exception as exc:  # a consumer's bug must not kill the stream
                self.handler_errors += 1
                self._log(f"WebSocket message handler failed on {message.get('type')!r}: {exc!r}")
