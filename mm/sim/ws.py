"""The simulator's WebSocket endpoint: Kalshi's ``/trade-api/ws/v2`` protocol (kalshi-api.md §2, §6, §8).

Mount it with FastAPI: ``app.add_api_websocket_route("/trade-api/ws/v2", hub.handle)``. One
:class:`WebSocketHub` per simulator; it registers itself in ``state.listeners`` and turns each batch of
:class:`~mm.sim.exchange.ExchangeEvent` into messages on per-connection queues. Message bodies are in
:mod:`mm.sim.ws_messages`.

Behaviour (choices where Kalshi's docs leave room are marked *sim*):

* **Auth.** Every upgrade must carry valid ``KALSHI-ACCESS-*`` headers signed over
  ``timestamp + "GET" + "/trade-api/ws/v2"``; they are checked *before* accepting. On failure the upgrade is
  answered **HTTP 401** with the REST error body (:meth:`AuthError.body`) through the ASGI WebSocket denial
  response extension (uvicorn supports it); a server without it gets ``websocket.close`` before accept, which
  the server turns into **HTTP 403**. Either way no WebSocket is opened.
* **Subscriptions.** sids count from 1 per connection, one per channel: a repeat subscribe to a channel adds
  its tickers to the existing sid (no new snapshot for tickers already in it) and is answered ``subscribed``
  again; a subscribe without tickers widens a filtered sid to all markets. ``seq`` is per sid, +1 for each
  ``orderbook_snapshot`` / ``orderbook_delta``, each ``order_group_updates`` message and each ``ok`` /
  ``unsubscribed`` ack; other channels carry no seq. ``update_subscription``: ``add_markets`` /
  ``delete_markets`` answer ``ok`` with the sid's markets (``msg: {}`` with ``skip_ticker_ack``) — *sim*:
  error 13 on a channel or sid without a market filter;
  ``get_snapshot`` answers one ``orderbook_snapshot`` per ticker carrying ``id`` and ``seq`` (error 16 for a
  ticker not in the sid). Tickers must exist on the exchange (error 16 with ``market_ticker``). Channels Kalshi
  lists but the simulator has no data for (``communications``, ``multivariate``…) subscribe normally
  and stay quiet.
* **Channels.** ``ticker`` sends one message per market per event batch in which its top of book, last price,
  volume or open interest changed. ``market_positions`` sends one message per user and market per batch (the
  state after the batch). ``fill``'s ``post_position_fp`` is exact per fill. ``market_lifecycle_v2``: the
  exchange's first ``activated`` for a market becomes ``created`` (preceded by ``event_lifecycle`` for a new
  event), a later one ``activated``; ``closed`` is silent (§13); ``determined`` / ``settled`` carry their
  timestamps, result and settlement value. ``order_group_updates`` (private, no market filter) sends the user's
  group events ``created`` / ``triggered`` / ``reset`` / ``deleted`` / ``limit_updated`` with
  ``order_group_id``, ``contracts_limit_fp`` (absent on ``deleted``) and ``ts_ms``. Deltas never carry
  ``client_order_id`` (*sim*).
* **Fan-out.** The listener runs synchronously inside REST handlers and the market loop: it formats messages
  and appends them to each connection's bounded queue; one writer task per connection sends them as text
  frames ending in ``\\n``. A snapshot taken by a command first publishes any unpublished exchange events, so
  snapshot and deltas never overlap.
* **Slow clients** (*sim*). When a connection's queue exceeds ``queue_limit`` messages, its queue is discarded,
  it is sent ``{"type":"error","msg":{"code":25,...}}`` and closed (close code 1008, reason
  ``buffer overflow``); if it cannot take even that within ``close_grace_s``, the TCP connection is aborted.
* **Keep-alive.** A Ping frame with payload ``heartbeat`` every ``ping_interval_s`` (10 s). ASGI cannot send
  pings, so the hub finds uvicorn's protocol object behind the ASGI ``send`` callable (its websockets-sansio,
  legacy websockets and wsproto implementations are supported); under another server no heartbeat is sent.
  uvicorn's own keep-alive pings (``ws_ping_interval``, random payloads) are separate: run uvicorn with
  ``ws_ping_interval=None`` to get Kalshi's behaviour exactly (and a truly silent ``ws_silent``).
* **Faults** (``state.faults``, counted in ``state.faults.counters``): ``ws_drop_message_rate`` skips
  ``orderbook_delta`` messages after they took their seq (the client sees a gap); ``ws_duplicate_message_rate``
  sends an ``orderbook_delta`` twice with the same seq; ``ws_malformed_message_rate`` sends a truncated,
  undecodable frame in place of an ``orderbook_delta`` (its seq is used); ``ws_silent`` sends nothing, pings
  included — messages due meanwhile are discarded (their seqs are used, so the feed resumes with a gap) and
  commands are processed but not answered; pongs to the client's own pings still go out (the server library
  answers them); ``ws_latency_s`` delays every message by that long after it was queued (order kept);
  :meth:`drop_all_connections`
  aborts every connection's TCP stream without a close frame. Draws come from the hub's seeded ``random.Random``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import random
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Final

import orjson
from starlette.responses import JSONResponse
from starlette.websockets import WebSocket

from mm.clock import Clock, WallClock
from mm.sim import ws_messages as wm
from mm.sim.auth import AuthError
from mm.sim.exchange import ExchangeEvent
from mm.sim.state import SimulatorState

__all__ = ["CHANNELS", "PING_PAYLOAD", "WebSocketHub"]

log = logging.getLogger(__name__)

ORDERBOOK: Final = "orderbook_delta"
TICKER: Final = "ticker"
TRADE: Final = "trade"
FILL: Final = "fill"
USER_ORDERS: Final = "user_orders"
POSITIONS: Final = "market_positions"
LIFECYCLE: Final = "market_lifecycle_v2"
ORDER_GROUPS: Final = "order_group_updates"
QUIET_CHANNELS: Final = frozenset(
    {"multivariate", "multivariate_market_lifecycle", "communications"} | {"cfbenchmarks_value", "pyth_value"}
)
"""Channels Kalshi offers that the simulator accepts but has nothing to send on."""
FILTERED_CHANNELS: Final = frozenset({ORDERBOOK, TICKER, TRADE, FILL, USER_ORDERS, POSITIONS})
"""Channels with a market filter (``market_ticker(s)``)."""
CHANNELS: Final = FILTERED_CHANNELS | {LIFECYCLE, ORDER_GROUPS} | QUIET_CHANNELS
ACTIONS: Final = frozenset({"add_markets", "delete_markets", "get_snapshot"})
PING_PAYLOAD: Final = b"heartbeat"
CLOSE_OVERFLOW: Final = 1008


class _CommandError(Exception):
    def __init__(self, code: int, *, market_ticker: str | None = None, detail: str = "") -> None:
        super().__init__(code)
        self.code = code
        self.market_ticker = market_ticker
        self.detail = detail


@dataclass(eq=False, slots=True)
class _Subscription:
    sid: int
    channel: str
    tickers: dict[str, None] | None
    """Ordered set of tickers; ``None`` = every market."""
    use_yes_price: bool = False
    skip_ticker_ack: bool = False
    send_initial_snapshot: bool = False
    seq: int = 0

    def covers(self, ticker: str) -> bool:
        return self.tickers is None or ticker in self.tickers

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq


@dataclass(slots=True)
class _Item:
    text: str
    queued_at: float
    urgent: bool = False
    """Sent at once, even under ``ws_latency_s`` (overflow notices)."""


@dataclass(slots=True)
class _Close:
    code: int
    reason: str


def _encode(message: dict[str, Any]) -> str:
    return orjson.dumps(message).decode() + "\n"


# --- the server connection behind ASGI (pings, aborts) -----------------------------------------------------------


def _find_uvicorn_protocol(send: object) -> Any | None:
    """Walk the ASGI ``send`` callable (wrapped in closures by Starlette / middleware) to uvicorn's protocol."""
    stack: list[object] = [send]
    seen: set[int] = set()
    while stack and len(seen) < 256:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        owner = getattr(obj, "__self__", None)
        if owner is not None:
            if type(owner).__module__.startswith("uvicorn.protocols.websockets") and hasattr(owner, "transport"):
                return owner
            stack.extend(v for v in getattr(owner, "__dict__", {}).values() if callable(v))
        for attr in ("func", "app", "send", "_send"):
            inner = getattr(obj, attr, None)
            if inner is not None and callable(inner):
                stack.append(inner)
        for cell in getattr(obj, "__closure__", None) or ():
            with contextlib.suppress(ValueError):
                if callable(cell.cell_contents):
                    stack.append(cell.cell_contents)
    return None


class _ServerLink:
    """Frame-level access to one connection where the server allows it (uvicorn): pings and aborts."""

    __slots__ = ("_proto",)

    def __init__(self, proto: Any | None) -> None:
        self._proto = proto

    @classmethod
    def of(cls, websocket: WebSocket) -> _ServerLink:
        return cls(_find_uvicorn_protocol(getattr(websocket, "_send", None)))

    @property
    def available(self) -> bool:
        return self._proto is not None

    async def ping(self, payload: bytes) -> bool:
        proto = self._proto
        if proto is None or proto.transport.is_closing():
            return False
        conn = getattr(proto, "conn", None)
        if conn is not None and hasattr(conn, "send_ping"):  # websockets-sansio
            if getattr(proto, "close_sent", False):
                return False
            conn.send_ping(payload)
            proto.transport.write(b"".join(conn.data_to_send()))
        elif hasattr(proto, "write_frame"):  # legacy websockets
            await proto.write_frame(True, 0x9, payload)
        elif conn is not None and type(conn).__module__.startswith("wsproto"):
            ping = importlib.import_module("wsproto.events").Ping
            proto.transport.write(conn.send(ping(payload=payload)))
        else:
            return False
        return True

    def abort(self) -> bool:
        if self._proto is None:
            return False
        self._proto.transport.abort()
        return True


# --- one connection -------------------------------------------------------------------------------------------


@dataclass(eq=False)
class _Connection:
    hub: WebSocketHub
    websocket: WebSocket
    user_id: str
    link: _ServerLink
    subs: dict[int, _Subscription] = field(default_factory=dict)
    by_channel: dict[str, _Subscription] = field(default_factory=dict)
    outbox: deque[_Item | _Close] = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    next_sid: int = 1
    closing: bool = False
    silenced: bool = False
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _force: asyncio.TimerHandle | None = None

    # -- queueing (synchronous: called from listeners and command handlers) --

    def send(self, message: dict[str, Any], *, faultable: bool = False) -> None:
        if self.closing:
            return
        copies = 1
        if faultable:
            faults, rng = self.hub.state.faults, self.hub.rng
            if faults.ws_drop_message_rate > 0 and rng.random() < faults.ws_drop_message_rate:
                faults.counters.dropped_messages += 1
                return
            if faults.ws_duplicate_message_rate > 0 and rng.random() < faults.ws_duplicate_message_rate:
                faults.counters.duplicated_messages += 1
                copies = 2
            if faults.ws_malformed_message_rate > 0 and rng.random() < faults.ws_malformed_message_rate:
                faults.counters.malformed_messages += 1
                text = _encode(message)
                self._queue(text[: len(text) // 2] + "\x00garbled", 1)  # cut mid-JSON: not decodable
                return
        self._queue(_encode(message), copies)

    def _queue(self, text: str, copies: int) -> None:
        now = self.hub.realtime.monotonic_ns() / 1e9
        for _ in range(copies):
            if len(self.outbox) >= self.hub.queue_limit:
                self.overflow()
                return
            self.outbox.append(_Item(text, now))
        self.wake.set()

    def overflow(self) -> None:
        log.warning("ws connection of %s overflowed its queue (%d messages): closing", self.user_id, len(self.outbox))
        notice = _encode(wm.error_response(None, 25))
        self.kill(CLOSE_OVERFLOW, "buffer overflow", notice=notice)

    def kill(self, code: int, reason: str, *, notice: str | None = None, abrupt: bool = False) -> None:
        """Close this connection: abort the TCP stream (``abrupt``, where the server allows it), or send
        ``notice`` and a close frame, aborting if that is not through within the hub's ``close_grace_s``."""
        if self.closing:
            return
        self.closing = True
        self.outbox.clear()
        if abrupt and self.link.abort():
            return
        if notice is not None:
            self.outbox.append(_Item(notice, 0.0, urgent=True))
        self.outbox.append(_Close(code, reason))
        self.wake.set()
        with contextlib.suppress(RuntimeError):  # no running loop: nothing to time out
            self._force = asyncio.get_running_loop().call_later(self.hub.close_grace_s, self._force_close)

    def _force_close(self) -> None:
        if not self.link.abort():
            for task in self.tasks:
                task.cancel()

    # -- tasks --

    def start(self) -> None:
        self.tasks.append(asyncio.create_task(self._write_loop(), name=f"ws-writer-{self.user_id}"))
        if self.hub.ping_interval_s is not None and self.link.available:
            self.tasks.append(asyncio.create_task(self._ping_loop(), name=f"ws-pinger-{self.user_id}"))

    async def stop(self) -> None:
        self.closing = True
        if self._force is not None:
            self._force.cancel()
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _note_silence(self, silent: bool) -> None:
        if silent and not self.silenced:
            self.hub.state.faults.counters.silenced_connections += 1
        self.silenced = silent

    async def _write_loop(self) -> None:
        faults = self.hub.state.faults
        try:
            while True:
                if not self.outbox:
                    self.wake.clear()
                    await self.wake.wait()
                    continue
                item = self.outbox[0]
                if isinstance(item, _Close):
                    self.outbox.clear()
                    await self.websocket.close(item.code, item.reason)
                    return
                if not item.urgent and faults.ws_latency_s > 0:
                    delay = item.queued_at + faults.ws_latency_s - self.hub.realtime.monotonic_ns() / 1e9
                    if delay > 0:
                        self.wake.clear()
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(self.wake.wait(), delay)
                        continue
                self.outbox.popleft()
                self._note_silence(faults.ws_silent)
                if not faults.ws_silent or item.urgent:
                    await self.websocket.send_text(item.text)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the peer went away mid-send: the reader sees the disconnect
            log.debug("ws writer of %s stopped: %r", self.user_id, exc)
            self.closing = True

    async def _ping_loop(self) -> None:
        interval = self.hub.ping_interval_s
        assert interval is not None
        faults = self.hub.state.faults
        try:
            while not self.closing:
                await asyncio.sleep(interval)
                self._note_silence(faults.ws_silent)
                if not faults.ws_silent and not self.closing:
                    await self.link.ping(PING_PAYLOAD)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.debug("ws pinger of %s stopped: %r", self.user_id, exc)


# --- the hub ----------------------------------------------------------------------------------------------------


class WebSocketHub:
    """Kalshi's WebSocket API over a :class:`SimulatorState` (see the module docstring)."""

    def __init__(
        self,
        state: SimulatorState,
        *,
        ping_interval_s: float | None = 10.0,
        queue_limit: int = 20_000,
        close_grace_s: float = 5.0,
        seed: int = 0,
        realtime: Clock | None = None,
    ) -> None:
        """``realtime`` times the ``ws_latency_s`` fault (real time, not the market's simulated clock; default
        :class:`WallClock`). Pings and close grace periods run on the event loop's timers."""
        self.state = state
        self.realtime = realtime if realtime is not None else WallClock()
        self.ping_interval_s = ping_interval_s
        self.queue_limit = queue_limit
        self.close_grace_s = close_grace_s
        self.rng = random.Random(seed)
        self.refused = 0
        """Upgrades refused for failed authentication."""
        self.messages = wm.MessageFactory(state)
        self._connections: set[_Connection] = set()
        state.listeners.append(self.on_events)

    # -- public API --

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    def users(self) -> list[str]:
        """The user of each open connection."""
        return [c.user_id for c in self._connections if not c.closing]

    def detach(self) -> None:
        """Stop listening to the state's events."""
        with contextlib.suppress(ValueError):
            self.state.listeners.remove(self.on_events)

    def drop_all_connections(self) -> int:
        """Drop every connection (TCP abort, no close frame; a close frame 1012 where aborting is impossible).
        Returns how many were dropped; counted in ``faults.counters.dropped_connections``."""
        dropped = 0
        for conn in list(self._connections):
            if not conn.closing:
                conn.kill(1012, "dropped", abrupt=True)
                dropped += 1
        self.state.faults.counters.dropped_connections += dropped
        return dropped

    async def handle(self, websocket: WebSocket) -> None:
        """The ASGI WebSocket endpoint for ``/trade-api/ws/v2``."""
        try:
            user_id = self.state.verifier.verify_websocket(websocket.headers)
        except AuthError as exc:
            self.refused += 1
            await self._refuse(websocket, exc)
            return
        await websocket.accept()
        conn = _Connection(self, websocket, user_id, _ServerLink.of(websocket))
        self._connections.add(conn)
        conn.start()
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                text = message.get("text")
                if text is None:
                    text = (message.get("bytes") or b"").decode("utf-8", "replace")
                self._command(conn, text)
        finally:
            self._connections.discard(conn)
            await conn.stop()

    @staticmethod
    async def _refuse(websocket: WebSocket, exc: AuthError) -> None:
        if "websocket.http.response" in websocket.scope.get("extensions", {}):
            await websocket.send_denial_response(JSONResponse(exc.body(), status_code=exc.status))
        else:
            await websocket.close(code=1008)  # the server answers the upgrade with HTTP 403

    # -- commands --

    def _command(self, conn: _Connection, text: str) -> None:
        try:
            command = orjson.loads(text)
        except orjson.JSONDecodeError:
            conn.send(wm.error_response(None, 1, detail="invalid JSON"))
            return
        if not isinstance(command, dict):
            conn.send(wm.error_response(None, 1, detail="a command is a JSON object"))
            return
        cmd_id, cmd = command.get("id"), command.get("cmd")
        handlers = {
            "subscribe": self._subscribe,
            "unsubscribe": self._unsubscribe,
            "update_subscription": self._update_subscription,
            "list_subscriptions": self._list_subscriptions,
        }
        handler = handlers.get(cmd) if isinstance(cmd, str) else None
        if handler is None:
            conn.send(wm.error_response(cmd_id, 5))
            return
        try:
            handler(conn, cmd_id, command.get("params"))
        except _CommandError as err:
            conn.send(wm.error_response(cmd_id, err.code, market_ticker=err.market_ticker, detail=err.detail))
        except Exception:  # a simulator bug: answer like Kalshi's internal error rather than drop the socket
            log.exception("ws command %r failed", command)
            conn.send(wm.error_response(cmd_id, 17))

    def _tickers(self, params: dict[str, Any], *, ids: bool) -> list[str]:
        """``market_ticker`` / ``market_tickers`` (and ``market_id(s)`` when ``ids``), validated, in order."""
        found: list[str] = []
        single, many = params.get("market_ticker"), params.get("market_tickers")
        if single is not None:
            if not isinstance(single, str):
                raise _CommandError(11, detail="market_ticker")
            found.append(single)
        if many is not None:
            if not isinstance(many, list) or not all(isinstance(t, str) for t in many):
                raise _CommandError(11, detail="market_tickers")
            found.extend(many)
        if ids:
            found.extend(self._tickers_of_ids(params))
        markets = self.state.exchange.markets
        for ticker in found:
            if ticker not in markets:
                raise _CommandError(16, market_ticker=ticker)
        return list(dict.fromkeys(found))

    def _tickers_of_ids(self, params: dict[str, Any]) -> list[str]:
        single, many = params.get("market_id"), params.get("market_ids")
        wanted = ([single] if single is not None else []) + (many if isinstance(many, list) else [])
        if not wanted:
            return []
        by_id = {wm.market_id(t): t for t in self.state.exchange.markets}
        tickers = []
        for market in wanted:
            if market not in by_id:
                raise _CommandError(16, detail=f"market_id {market}")
            tickers.append(by_id[market])
        return tickers

    @staticmethod
    def _flag(params: dict[str, Any], name: str, default: bool = False) -> bool:
        value = params.get(name, default)
        if not isinstance(value, bool):
            raise _CommandError(11, detail=name)
        return value

    def _subscribe(self, conn: _Connection, cmd_id: Any, params: Any) -> None:
        if not isinstance(params, dict):
            raise _CommandError(2)
        channels = params.get("channels")
        if not channels:
            raise _CommandError(3)
        if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
            raise _CommandError(11, detail="channels")
        self._flush()
        tickers = self._tickers(params, ids=False)
        ticker_ids = self._tickers_of_ids(params)
        use_yes_price = self._flag(params, "use_yes_price")
        skip_ack = self._flag(params, "skip_ticker_ack")
        initial = self._flag(params, "send_initial_snapshot")
        for channel in dict.fromkeys(channels):
            if channel not in CHANNELS:
                conn.send(wm.error_response(cmd_id, 8, detail=channel))
                continue
            wanted: list[str] | None = tickers
            if channel == TICKER:
                wanted = list(dict.fromkeys(tickers + ticker_ids))
            if channel not in FILTERED_CHANNELS:
                wanted = None
            elif not wanted:
                if channel == ORDERBOOK:
                    conn.send(wm.error_response(cmd_id, 14))
                    continue
                wanted = None
            sub = conn.by_channel.get(channel)
            if sub is None:
                sub = _Subscription(conn.next_sid, channel, None, use_yes_price, skip_ack, initial)
                sub.tickers = None if wanted is None else dict.fromkeys(wanted)
                conn.next_sid += 1
                conn.subs[sub.sid] = sub
                conn.by_channel[channel] = sub
                added = wanted
            elif wanted is None or sub.tickers is None:
                added = None if sub.tickers is not None else []
                sub.tickers = None
            else:
                added = [t for t in wanted if t not in sub.tickers]
                sub.tickers.update(dict.fromkeys(added))
            conn.send({"id": cmd_id, "type": "subscribed", "msg": {"channel": channel, "sid": sub.sid}})
            if channel == ORDERBOOK:
                self._send_snapshots(conn, sub, added or [], None)
            elif channel == TICKER and initial:
                self._send_tickers(conn, sub, self._all_markets() if added is None else added)

    def _unsubscribe(self, conn: _Connection, cmd_id: Any, params: Any) -> None:
        if not isinstance(params, dict):
            raise _CommandError(2)
        sids = params.get("sids")
        if sids is None and "sid" in params:
            sids = [params["sid"]]
        if not sids:
            raise _CommandError(4)
        if not isinstance(sids, list) or not all(isinstance(s, int) for s in sids):
            raise _CommandError(11, detail="sids")
        for sid in sids:
            sub = conn.subs.pop(sid, None)
            if sub is None:
                conn.send(wm.error_response(cmd_id, 7, detail=str(sid)))
                continue
            del conn.by_channel[sub.channel]
            conn.send({"id": cmd_id, "sid": sid, "seq": sub.next_seq(), "type": "unsubscribed"})

    def _update_subscription(self, conn: _Connection, cmd_id: Any, params: Any) -> None:
        if not isinstance(params, dict):
            raise _CommandError(2)
        self._flush()
        if "sids" in params:
            sids = params["sids"]
            if not isinstance(sids, list) or len(sids) != 1:
                raise _CommandError(12)
            sid = sids[0]
        elif "sid" in params:
            sid = params["sid"]
        else:
            raise _CommandError(12)
        action = params.get("action")
        if not action:
            raise _CommandError(15)
        if action not in ACTIONS:
            raise _CommandError(13, detail=str(action))
        sub = conn.subs.get(sid) if isinstance(sid, int) else None
        if sub is None:
            raise _CommandError(7, detail=str(sid))
        tickers = self._tickers(params, ids=sub.channel == TICKER)
        if not tickers:
            raise _CommandError(14)
        if action == "get_snapshot":
            if sub.channel != ORDERBOOK:
                raise _CommandError(13, detail="get_snapshot needs an orderbook_delta subscription")
            for ticker in tickers:
                if not sub.covers(ticker):
                    raise _CommandError(16, market_ticker=ticker, detail="not in this subscription")
            self._send_snapshots(conn, sub, tickers, cmd_id)
            return
        if sub.channel not in FILTERED_CHANNELS or sub.tickers is None:
            raise _CommandError(13, detail=f"{action} on a subscription without a market filter")
        added: list[str] = []
        if action == "add_markets":
            added = [t for t in tickers if t not in sub.tickers]
            sub.tickers.update(dict.fromkeys(added))
        else:
            for ticker in tickers:
                sub.tickers.pop(ticker, None)
        skip = self._flag(params, "skip_ticker_ack", sub.skip_ticker_ack)
        msg: dict[str, Any] = {} if skip else {"market_tickers": list(sub.tickers)}
        conn.send({"id": cmd_id, "sid": sub.sid, "seq": sub.next_seq(), "type": "ok", "msg": msg})
        if sub.channel == ORDERBOOK:
            self._send_snapshots(conn, sub, added, None)
        elif sub.channel == TICKER and sub.send_initial_snapshot:
            self._send_tickers(conn, sub, added)

    def _list_subscriptions(self, conn: _Connection, cmd_id: Any, params: Any) -> None:
        listed = [{"channel": s.channel, "sid": s.sid} for s in sorted(conn.subs.values(), key=lambda s: s.sid)]
        conn.send({"id": cmd_id, "type": "ok", "msg": listed})

    # -- snapshots --

    def _flush(self) -> None:
        """Publish pending exchange events first, so a snapshot is never older than the deltas that follow."""
        if self.state.exchange.events:
            self.state.publish()

    def _send_snapshots(self, conn: _Connection, sub: _Subscription, tickers: Iterable[str], cmd_id: Any) -> None:
        tickers = list(tickers)
        if not tickers:
            return
        self._flush()
        for ticker in tickers:
            body = self.messages.snapshot(ticker, sub.use_yes_price)
            message: dict[str, Any] = {"type": "orderbook_snapshot", "sid": sub.sid, "seq": sub.next_seq(), "msg": body}
            if cmd_id is not None:
                message = {"id": cmd_id, **message}
            conn.send(message)

    def _all_markets(self) -> list[str]:
        return list(self.state.exchange.markets)

    def _send_tickers(self, conn: _Connection, sub: _Subscription, tickers: Iterable[str]) -> None:
        tickers = list(tickers)
        if not tickers:
            return
        self._flush()
        for ticker in tickers:
            conn.send({"type": "ticker", "sid": sub.sid, "msg": self.messages.ticker(ticker)})

    # -- events --

    def _subscribers(
        self, channel: str, ticker: str, user_id: str | None = None
    ) -> list[tuple[_Connection, _Subscription]]:
        found = []
        for conn in self._connections:
            sub = conn.by_channel.get(channel)
            if sub is not None and sub.covers(ticker) and (user_id is None or conn.user_id == user_id):
                found.append((conn, sub))
        return found

    def on_events(self, events: list[ExchangeEvent]) -> None:
        """The ``state.listeners`` callback: format each event for every interested connection and queue it.

        Never raises into the REST handler or market loop that published: if formatting fails (a simulator bug),
        every connection gets error 17 and is closed, since its feed can no longer be trusted."""
        try:
            self._fan_out(events)
        except Exception:
            log.exception("ws fan-out failed: closing every connection")
            notice = _encode(wm.error_response(None, 17))
            for conn in list(self._connections):
                conn.kill(1011, "internal error", notice=notice)

    def _fan_out(self, events: list[ExchangeEvent]) -> None:
        factory = self.messages
        post_positions = factory.observe(events)
        last_position = {(e.user_id, e.ticker): i for i, e in enumerate(events) if e.kind == "position"}
        touched: dict[str, None] = {}
        for i, event in enumerate(events):
            kind, ticker = event.kind, event.ticker
            if kind == "book":
                touched[ticker] = None
                bodies: dict[bool, dict[str, Any]] = {}
                for conn, sub in self._subscribers(ORDERBOOK, ticker):
                    body = bodies.get(sub.use_yes_price)
                    if body is None:
                        body = bodies[sub.use_yes_price] = factory.delta(event, sub.use_yes_price)
                    message = {"type": "orderbook_delta", "sid": sub.sid, "seq": sub.next_seq(), "msg": body}
                    conn.send(message, faultable=True)
            elif kind == "trade":
                touched[ticker] = None
                self._fan(TRADE, ticker, None, "trade", partial(factory.trade, event))
            elif kind == "fill":
                self._fan(FILL, ticker, event.user_id, "fill", partial(factory.fill, event, post_positions[i]))
            elif kind == "user_order":
                self._fan(USER_ORDERS, ticker, event.user_id, "user_order", partial(factory.user_order, event))
                factory.order_reported(event)
            elif kind == "position" and last_position.get((event.user_id, ticker)) == i:
                self._fan(POSITIONS, ticker, event.user_id, "market_position", partial(factory.position, event))
            elif kind == "lifecycle":
                self._lifecycle(event)
            elif kind == "order_group":
                self._order_group(event)
        for ticker in touched:
            self._ticker_update(ticker)

    def _fan(
        self, channel: str, ticker: str, user_id: str | None, kind: str, build: Callable[[], dict[str, Any]]
    ) -> None:
        subscribers = self._subscribers(channel, ticker, user_id)
        if subscribers:
            body = build()
            for conn, sub in subscribers:
                conn.send({"type": kind, "sid": sub.sid, "msg": body})

    def _ticker_update(self, ticker: str) -> None:
        subscribers = self._subscribers(TICKER, ticker)
        if subscribers:
            body = self.messages.ticker_if_changed(ticker)
            if body is not None:
                for conn, sub in subscribers:
                    conn.send({"type": "ticker", "sid": sub.sid, "msg": body})

    def _order_group(self, event: ExchangeEvent) -> None:
        subscribers = self._subscribers(ORDER_GROUPS, event.ticker, event.user_id or "")
        if subscribers:
            body = self.messages.order_group(event)
            for conn, sub in subscribers:
                conn.send({"type": ORDER_GROUPS, "sid": sub.sid, "seq": sub.next_seq(), "msg": body})

    def _lifecycle(self, event: ExchangeEvent) -> None:
        messages = self.messages.lifecycle(event)
        for conn in self._connections:
            sub = conn.by_channel.get(LIFECYCLE)
            if sub is not None:
                for kind, body in messages:
                    conn.send({"type": kind, "sid": sub.sid, "msg": body})
