"""The simulator's Kalshi REST API (kalshi-api.md §3–5, §8–9, §13–14): :func:`create_rest_router`.

The lead mounts the router at ``/trade-api/v2``. Three modules hold the routes:

* :mod:`mm.sim.rest_public` — exchange, markets, order books, trades, events, series (no auth; auth headers
  are accepted and ignored);
* :mod:`mm.sim.rest_portfolio` — authenticated reads (balance, positions, fills, settlements, orders, limits)
  and the order writes (V2, and the legacy paths answering ``deprecated_endpoint``);
* this module — the shared :class:`RestContext`: the authentication / fault / rate-limit gate every
  authenticated request passes, the fill index, and the router assembly.

The gate, in order, for every authenticated request:

1. ``state.verifier.verify(method, request.url.path, headers)`` — an :class:`~mm.sim.auth.AuthError` answers
   its status (401) and body;
2. injected faults (``state.faults``): ``rest_latency_s`` > 0 sleeps that long (the one sleep in the REST
   layer: it *is* the fault); with probability ``rest_error_rate`` the answer is 500/502/503, with
   probability ``rest_429_rate`` it is 429 — drawn from a ``random.Random`` seeded at construction, and
   counted in ``state.faults.counters``;
3. the JSON body is read (writes) so a batch can be charged whole;
4. ``state.limiter.acquire_request(user, method, path, batch_creates=…, batch_cancels=…)`` — refused →
   429 with ``TOO_MANY_REQUESTS_BODY`` plus top-level ``code``/``message`` copies, and no ``Retry-After``;
5. legacy writes then answer 400 ``deprecated_endpoint`` (they were authenticated and charged first);
6. ``trading_paused`` (an exchange pause, §7: blocks cancels too) refuses every order write with 400
   ``trading_paused``;
7. the handler runs; a :class:`~mm.sim.exchange.SimApiError` becomes its status with the Kalshi error body.

After every request (reads too: a read may move a market along its lifecycle) ``state.publish()`` hands the
exchange's new events to the WebSocket layer.

Times: ``state.clock`` only. ``state.faults.clock_skew_ms`` shifts every timestamp that is a server clock
reading (``ts_ms``, ``updated_ts``, ``created_time`` / ``last_update_time`` of orders, fill and trade times,
``settled_time``, ``updated_time``, ``last_updated_ts``); schedule times (a market's open / close / expiration)
and client-given times (an order's ``expiration_time``) are not shifted. Query filters (``min_ts``…) compare
with unshifted times.

Public routes answer a :class:`~mm.sim.exchange.SimApiError` with its Kalshi body too; FastAPI's own 404 / 405
for unknown paths are the app's business (the router installs no exception handlers).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from mm.sim.auth import AuthError
from mm.sim.exchange import Exchange, ExchangeEvent, SimApiError
from mm.sim.ratelimit import TOO_MANY_REQUESTS_BODY
from mm.sim.rest_portfolio import add_order_routes, add_portfolio_routes
from mm.sim.rest_public import add_public_routes
from mm.sim.state import SimulatorState
from mm.sim.types import Trade
from mm.sim.wire import error_response

__all__ = ["FillIndex", "OrderFills", "OrderIndex", "RestContext", "create_rest_router", "error_response"]

Handler = Callable[[str, Any], Response | Mapping[str, Any]]
GateKind = Literal["read", "write", "legacy"]

_FAULT_STATUSES: Final = (500, 502, 503)
_FAULT_CODES: Final = {500: "internal_server_error", 502: "bad_gateway", 503: "service_unavailable"}


def too_many_requests() -> JSONResponse:
    """429 with the documented ``{"error": "too many requests"}`` plus top-level code/message; no headers."""
    body: dict[str, Any] = {**TOO_MANY_REQUESTS_BODY, "code": "too_many_requests", "message": "too many requests"}
    return JSONResponse(body, status_code=429)


@dataclass(slots=True)
class OrderFills:
    """What one order's fills add up to (from the exchange's fill ground truth)."""

    count: int = 0
    """1/100 contract."""
    value: int = 0
    """Σ YES price × count ($0.0001 × 1/100 contract = micro-dollars of YES notional)."""
    taker_fees: int = 0
    """Micro-dollars."""
    maker_fees: int = 0


@dataclass(slots=True)
class FillIndex:
    """Incremental indexes over ``exchange.fills`` (append-only): per user, per order, public trades.

    :meth:`sync` processes only the entries added since the last call, so requests stay cheap on a long run.
    """

    exchange: Exchange
    by_user: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    """Positions in ``exchange.fills`` of each user's fills, oldest first."""
    by_order: dict[str, OrderFills] = field(default_factory=lambda: defaultdict(OrderFills))
    trades: list[Trade] = field(default_factory=list)
    """Every trade once (the taker's entry), oldest first."""
    trades_by_ticker: dict[str, list[Trade]] = field(default_factory=lambda: defaultdict(list))
    last_fill_us: dict[tuple[str, str], int] = field(default_factory=dict)
    """(user, ticker) → time of the user's last fill there."""
    _seen: int = 0

    def sync(self) -> None:
        fills = self.exchange.fills
        if len(fills) < self._seen:  # the list was replaced: rebuild from scratch
            self.by_user.clear()
            self.by_order.clear()
            self.trades.clear()
            self.trades_by_ticker.clear()
            self.last_fill_us.clear()
            self._seen = 0
        for i in range(self._seen, len(fills)):
            user, trade, taker, fee = fills[i]
            self.by_user[user].append(i)
            agg = self.by_order[trade.taker_order_id if taker else trade.maker_order_id]
            agg.count += trade.count
            agg.value += trade.price * trade.count
            if taker:
                agg.taker_fees += fee
                self.trades.append(trade)
                self.trades_by_ticker[trade.ticker].append(trade)
            else:
                agg.maker_fees += fee
            self.last_fill_us[(user, trade.ticker)] = trade.ts_us
        self._seen = len(fills)

    def order(self, order_id: str) -> OrderFills:
        self.sync()
        return self.by_order.get(order_id) or OrderFills()


@dataclass(slots=True)
class OrderIndex:
    """Each user's order ids in creation order, kept up to date incrementally from ``exchange.orders``
    (insertion-ordered, append-only), so listing one user's orders does not scan every order each time."""

    exchange: Exchange
    by_user: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    _seen: int = 0

    def sync(self) -> None:
        orders = self.exchange.orders
        if len(orders) < self._seen:  # orders were forgotten: rebuild
            self.by_user.clear()
            self._seen = 0
        for order in itertools.islice(orders.values(), self._seen, None):
            self.by_user[order.user_id].append(order.order_id)
        self._seen = len(orders)

    def of(self, user_id: str) -> list[str]:
        self.sync()
        return self.by_user.get(user_id, [])


@dataclass(slots=True)
class RestContext:
    """What every route needs: the state, the fault generator, indexes kept beside the exchange."""

    state: SimulatorState
    rng: random.Random
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep
    fills: FillIndex = field(init=False)
    orders: OrderIndex = field(init=False)
    settled_us: dict[str, int] = field(default_factory=dict)
    """Ticker → time its ``settled`` lifecycle event was emitted (for settlements and ``settlement_ts``)."""
    cancel_on_pause: dict[str, bool] = field(default_factory=dict)
    """Order id → its ``cancel_order_on_pause`` flag, echoed on reads (the exchange does not keep it)."""

    def __post_init__(self) -> None:
        self.fills = FillIndex(self.state.exchange)
        self.orders = OrderIndex(self.state.exchange)

    # -- helpers -------------------------------------------------------------------------------------

    def now_us(self) -> int:
        return self.state.clock.now_us()

    @property
    def skew_ms(self) -> int:
        return self.state.faults.clock_skew_ms

    def on_events(self, events: list[ExchangeEvent]) -> None:
        """``state.listeners`` hook: remember when markets settle."""
        for event in events:
            if event.kind == "lifecycle" and event.detail == "settled":
                self.settled_us[event.ticker] = event.ts_us

    # -- gates ---------------------------------------------------------------------------------------

    def public(self, handler: Callable[[], Mapping[str, Any]]) -> Response:
        """Run a public read: SimApiError → Kalshi error body; publish lifecycle events it triggered."""
        try:
            return JSONResponse(dict(handler()))
        except SimApiError as exc:
            return error_response(exc.status, exc.code, exc.message)
        finally:
            self.state.publish()

    async def authed(
        self,
        request: Request,
        handler: Handler,
        *,
        kind: GateKind = "read",
        batch: Literal["create", "cancel"] | None = None,
    ) -> Response:
        """Authenticate, inject faults, rate-limit, then run ``handler(user_id, parsed_json_body)``."""
        state = self.state
        path = request.url.path
        try:
            user = state.verifier.verify(request.method, path, request.headers)
        except AuthError as exc:
            return JSONResponse(exc.body(), status_code=exc.status)

        faults = state.faults
        if faults.rest_latency_s > 0:
            faults.counters.delayed_requests += 1
            await self.sleep(faults.rest_latency_s)
        if faults.rest_error_rate > 0 and self.rng.random() < faults.rest_error_rate:
            faults.counters.failed_requests += 1
            status = self.rng.choice(_FAULT_STATUSES)
            return error_response(status, _FAULT_CODES[status], "injected server error (simulator fault)")
        if faults.rest_429_rate > 0 and self.rng.random() < faults.rest_429_rate:
            faults.counters.rate_limited_requests += 1
            return too_many_requests()

        body: Any = None
        body_ok = True
        if kind != "read":
            raw = await request.body()
            if raw.strip():
                try:
                    body = json.loads(raw)
                except ValueError:
                    body_ok = False
        creates, cancels = _batch_sizes(body, batch)
        if not state.limiter.acquire_request(user, request.method, path, batch_creates=creates, batch_cancels=cancels):
            return too_many_requests()
        if kind == "legacy":
            return error_response(400, "deprecated_endpoint", "Please switch to the V2 endpoints")
        if not body_ok:
            return error_response(400, "invalid_parameters", "request body is not valid JSON")
        if kind == "write" and faults.trading_paused:
            return error_response(400, "trading_paused", "TRADING_PAUSED: the exchange is paused")
        try:
            result = handler(user, body)
        except SimApiError as exc:
            return error_response(exc.status, exc.code, exc.message)
        finally:
            state.publish()
        if (
            kind == "write"
            and faults.rest_lost_response_rate > 0
            and self.rng.random() < faults.rest_lost_response_rate
        ):
            faults.counters.lost_responses += 1  # done, but the client never hears so
            return error_response(504, "gateway_timeout", "injected lost response (simulator fault)")
        return result if isinstance(result, Response) else JSONResponse(dict(result))


def _batch_sizes(body: Any, batch: Literal["create", "cancel"] | None) -> tuple[int, int]:
    """(creates, cancels) in a batch body, for the rate limiter (a malformed body counts as 0)."""
    if batch is None or not isinstance(body, Mapping):
        return 0, 0
    items = body.get("orders")
    if not isinstance(items, list) and batch == "cancel":
        items = body.get("ids")  # the legacy batch-cancel shape
    n = len(items) if isinstance(items, list) else 0
    return (n, 0) if batch == "create" else (0, n)


def create_rest_router(
    state: SimulatorState,
    *,
    seed: int = 0,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> APIRouter:
    """The Kalshi REST API over ``state``, to mount at ``/trade-api/v2``.

    ``seed`` seeds the generator that decides which requests the error/429 faults hit; ``sleep`` is what
    the latency fault awaits (``asyncio.sleep``; tests pass a recorder).
    """
    ctx = RestContext(state, random.Random(seed), sleep)
    state.listeners.append(ctx.on_events)
    router = APIRouter()
    add_public_routes(router, ctx)
    add_portfolio_routes(router, ctx)
    add_order_routes(router, ctx)
    return router
