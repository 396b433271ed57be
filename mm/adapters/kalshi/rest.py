"""Kalshi Trade API v2 REST client (kalshi-api.md §2–5, §9): signed requests, pagination, errors, retries.

:class:`KalshiRestClient` owns one keep-alive ``httpx.AsyncClient`` (use it as an async context manager). Every
request is signed over the FULL URL path (``urlparse(base_url).path + endpoint``, no query string) at
``clock.now_us() // 1000`` ms and carries ``Content-Type: application/json``. Methods return parsed JSON dicts;
turning them into domain objects is :mod:`mm.adapters.kalshi.mapping`'s job.

Errors (§3) map onto :mod:`mm.adapters.errors` by HTTP status and Kalshi code (nested ``error.code`` or flat
``code``): 401/403 → :class:`AuthenticationFailedError`; 404 → :class:`OrderNotFoundError` on order paths, else
:class:`ExchangeError`; 409 → :class:`DuplicateClientOrderIdError`; 429 → :class:`RateLimitedError`;
5xx / network / timeout → :class:`ExchangeUnavailableError`; 400 by code (balance, price, size, inactive market,
other → :class:`OrderRejectedError`). Messages carry method, path, status and code — never headers or keys.

Rate limits (FR-603): with a :class:`~mm.adapters.ratelimit.ClientRateLimiter`, **every** HTTP request — each
page of a list, each retry, each recovery lookup — first takes its Kalshi cost from the limiter's read or write
bucket (cancels queue ahead of creates). A 429 means the venue refused the request whole and nothing happened,
so it is re-sent whatever the method (creates and batches included), up to ``max_retries`` times: with a limiter
the bucket is penalised and the next acquire waits; without one the client sleeps the backoff below.

Retries: reads and cancels (single and batch) also retry 500/502/503/504, timeouts and network errors up to
``max_retries`` times, sleeping ``Retry-After`` seconds if the answer has one, else 0.5, 1, 2 s (doubling).
The sleep function is injectable so tests record the delays instead of waiting.

Creates — **never a duplicate order**. A create is never blindly re-sent:

* a 4xx other than 429 is raised at once — the venue refused it, nothing was created (429: see above);
* on a timeout, network failure or 5xx the outcome is unknown. Without a ``client_order_id`` the create is not
  retried and :class:`ExchangeUnavailableError` is raised (the caller must reconcile). With one, the client backs
  off, looks the order up (``GET /portfolio/orders?ticker=…`` matching ``client_order_id``) and, if found,
  returns an ack-shaped dict built from it (``"recovered": True``). If not found it re-sends the SAME body (same
  ``client_order_id``); the venue refuses a second order with that id (409), so a 409 on a re-send means the
  first one did arrive: look it up again and return it. After ``max_retries`` rounds it raises
  :class:`ExchangeUnavailableError` (outcome still unknown; at most one order exists).

Amend, decrease and batch create are not retried (a re-sent ``reduce_by`` or batch could act twice); their
transient failures are raised as :class:`ExchangeUnavailableError` / :class:`RateLimitedError`.

Link health (NFR-204): with a :class:`~mm.adapters.link_health.LinkStats` in :attr:`KalshiRestClient.link`, every
HTTP exchange with the authenticated API (``/portfolio/...``) is timed and counted (answered, 5xx, timed out,
transport error); :meth:`KalshiRestClient.balance_probe` is the one-attempt read a health check sends.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Final
from urllib.parse import urlparse

import httpx

from mm.adapters.errors import (
    AuthenticationFailedError,
    DuplicateClientOrderIdError,
    ExchangeError,
    ExchangeUnavailableError,
    InsufficientBalanceError,
    MarketInactiveError,
    OrderNotFoundError,
    OrderPriceError,
    OrderRejectedError,
    OrderSizeError,
    RateLimitedError,
)
from mm.adapters.kalshi.signer import KalshiSigner
from mm.adapters.link_health import LinkStats
from mm.adapters.ratelimit import ClientRateLimiter
from mm.clock import Clock

__all__ = ["KalshiRestClient", "error_from_body", "item_error"]

Json = dict[str, Any]
Sleep = Callable[[float], Awaitable[None]]

RETRYABLE_STATUSES: Final = frozenset({429, 500, 502, 503, 504})
BASE_BACKOFF_S: Final = 0.5
DEFAULT_BATCH_CREATE_LIMIT: Final = 10
"""Basic tier: a batch must fit the write bucket whole — 10 creates (kalshi-api.md §9)."""
DEFAULT_BATCH_CANCEL_LIMIT: Final = 50
PAGE_LIMIT: Final = 1000

_ORDERS: Final = "/portfolio/events/orders"
_AUTHENTICATED: Final = "/portfolio"
"""Endpoints whose round trips and failures feed :attr:`KalshiRestClient.link` (what trading depends on)."""
_BALANCE_CODES: Final = frozenset({"available_balance_too_low", "insufficient_balance", "insufficient_funds"})
_INACTIVE_CODES: Final = frozenset({"market_inactive", "trading_paused", "market_closed", "market_settled"})


def _error_fields(payload: object) -> tuple[str | None, str]:
    """(code, message) from a Kalshi error body: nested ``{"error": {...}}``, else flat ``code``/``message``."""
    if not isinstance(payload, Mapping):
        return None, ""
    err = payload.get("error")
    source: Mapping[str, Any] = err if isinstance(err, Mapping) else payload
    code = source.get("code")
    parts = [str(source[k]) for k in ("message", "details") if source.get(k)]
    if isinstance(err, str) and err:
        parts.append(err)
    return (str(code) if code else None), "; ".join(parts)


def error_from_body(method: str, path: str, status: int | None, payload: object) -> ExchangeError:
    """The :mod:`mm.adapters.errors` exception for an error answer (status may be None for batch items)."""
    code, detail = _error_fields(payload)
    where = f"{method} {path}" + (f" -> HTTP {status}" if status is not None else "")
    message = f"{where} [{code or 'no code'}]" + (f": {detail}" if detail else "")
    lowered = (code or "").lower()
    cls: type[ExchangeError]
    if status in (401, 403):
        cls = AuthenticationFailedError
    elif status == 404 or lowered == "not_found":
        cls = OrderNotFoundError if "/orders" in path else ExchangeError
    elif status == 409 or lowered == "duplicate_client_order_id":
        cls = DuplicateClientOrderIdError
    elif status == 429 or lowered == "too_many_requests":
        cls = RateLimitedError
    elif status is not None and status >= 500:
        cls = ExchangeUnavailableError
    elif lowered in _BALANCE_CODES:
        cls = InsufficientBalanceError
    elif lowered == "invalid_price":
        cls = OrderPriceError
    elif lowered == "invalid_order_size":
        cls = OrderSizeError
    elif lowered in _INACTIVE_CODES or "MARKET_INACTIVE" in detail or "TRADING_PAUSED" in detail:
        cls = MarketInactiveError
    elif status is None or status == 400 or 400 <= status < 500:
        cls = OrderRejectedError
    else:
        cls = ExchangeError
    return cls(message, status=status, code=code)


def item_error(
    item: Mapping[str, Any], *, method: str = "POST", path: str = f"{_ORDERS}/batched"
) -> ExchangeError | None:
    """The error of one batch item (``error`` is a flat ErrorResponse, §4), or None if it succeeded."""
    err = item.get("error")
    if err:
        return error_from_body(method, path, None, err if isinstance(err, Mapping) else {"message": str(err)})
    if not item.get("order_id"):
        return OrderRejectedError(f"{method} {path}: batch item without order_id", code=None)
    return None


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class KalshiRestClient:
    """Async Kalshi REST client. ``signer=None`` sends unsigned requests (public reads only)."""

    def __init__(
        self,
        base_url: str,
        signer: KalshiSigner | None,
        clock: Clock,
        *,
        timeout_s: float = 5.0,
        max_retries: int = 3,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
        batch_limit: int = DEFAULT_BATCH_CREATE_LIMIT,
        batch_cancel_limit: int = DEFAULT_BATCH_CANCEL_LIMIT,
        limiter: ClientRateLimiter | None = None,
    ) -> None:
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if batch_limit < 1 or batch_cancel_limit < 1:
            raise ValueError("batch limits must be >= 1")
        self._base_url = base_url.rstrip("/")
        self._base_path = urlparse(self._base_url).path
        self._signer = signer
        self._clock = clock
        self._max_retries = max_retries
        self._sleep = sleep
        self.batch_limit = batch_limit
        self.batch_cancel_limit = batch_cancel_limit
        self.limiter = limiter
        self._timeout_s = timeout_s
        self._transport = transport
        self._http = httpx.AsyncClient(timeout=timeout_s, transport=transport)
        self.link: LinkStats | None = None
        """Round trips and failures of authenticated requests (set by the adapter; None = not measured)."""

    async def __aenter__(self) -> KalshiRestClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    def reopen(self) -> None:
        """A fresh connection pool after :meth:`aclose` (an adapter reconnecting); no-op while open."""
        if self._http.is_closed:
            self._http = httpx.AsyncClient(timeout=self._timeout_s, transport=self._transport)

    # --- transport ------------------------------------------------------------------------------------------

    def _headers(self, method: str, endpoint: str) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._signer is not None:
            headers.update(self._signer.headers(method, self._base_path + endpoint, self._clock.now_us() // 1000))
        return headers

    async def _send(
        self,
        method: str,
        endpoint: str,
        params: Mapping[str, Any] | None,
        body: object,
        timeout_s: float | None = None,
    ) -> httpx.Response:
        """One HTTP exchange (``timeout_s``: instead of the client's); transport failures become
        :class:`ExchangeUnavailableError`. Authenticated ones are measured in :attr:`link`."""
        content = None if body is None else json.dumps(body, separators=(",", ":"))
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        link = self.link if endpoint.startswith(_AUTHENTICATED) else None
        started = link.begin() if link is not None else 0
        try:
            response = await self._http.request(
                method,
                self._base_url + endpoint,
                params=clean or None,
                content=content,
                headers=self._headers(method, endpoint),
                timeout=httpx.USE_CLIENT_DEFAULT if timeout_s is None else timeout_s,
            )
        except httpx.TimeoutException:
            if link is not None:
                link.failed(started, "timed out", timed_out=True)
            raise ExchangeUnavailableError(f"{method} {endpoint}: timed out") from None
        except httpx.TransportError as exc:
            why = f"network error ({type(exc).__name__})"
            if link is not None:
                link.failed(started, why, timed_out=False)
            raise ExchangeUnavailableError(f"{method} {endpoint}: {why}") from None
        if link is not None:
            link.answered(started, response.status_code)
        return response

    async def _metered_send(
        self,
        method: str,
        endpoint: str,
        params: Mapping[str, Any] | None,
        body: object,
        batch_creates: int,
        batch_cancels: int,
        timeout_s: float | None = None,
    ) -> httpx.Response:
        if self.limiter is None:
            return await self._send(method, endpoint, params, body, timeout_s)
        path = self._base_path + endpoint
        async with self.limiter.metered(method, path, batch_creates=batch_creates, batch_cancels=batch_cancels):
            return await self._send(method, endpoint, params, body, timeout_s)

    @staticmethod
    def _parse(method: str, endpoint: str, response: httpx.Response) -> Any:
        if not response.content.strip():
            return {}
        try:
            return response.json()
        except ValueError:
            if response.status_code >= 400:
                return {}
            raise ExchangeError(
                f"{method} {endpoint} -> HTTP {response.status_code}: body is not JSON", status=response.status_code
            ) from None

    def _backoff(self, attempt: int, response: httpx.Response | None) -> float:
        hinted = _retry_after(response) if response is not None else None
        return hinted if hinted is not None else BASE_BACKOFF_S * (2**attempt)

    async def _request(
        self,
        method: str,
        endpoint: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: object = None,
        retry: bool = True,
        batch_creates: int = 0,
        batch_cancels: int = 0,
        timeout_s: float | None = None,
    ) -> Any:
        """Send (through the rate limiter), retrying transient failures when ``retry`` and 429s always; return
        parsed JSON or raise a mapped error."""
        attempt = 0
        path = self._base_path + endpoint
        while True:
            response: httpx.Response | None = None
            try:
                response = await self._metered_send(
                    method, endpoint, params, body, batch_creates, batch_cancels, timeout_s
                )
            except ExchangeUnavailableError:
                if not retry or attempt >= self._max_retries:
                    raise
            else:
                status = response.status_code
                if status < 400:
                    return self._parse(method, endpoint, response)
                if status == 429:
                    if self.limiter is not None:
                        self.limiter.rate_limited(method, path)
                    if attempt >= self._max_retries:
                        raise error_from_body(method, path, status, self._parse(method, endpoint, response))
                    attempt += 1
                    if self.limiter is None:
                        await self._sleep(self._backoff(attempt - 1, response))
                    continue  # refused whole: re-sending cannot duplicate anything
                if not retry or status not in RETRYABLE_STATUSES or attempt >= self._max_retries:
                    payload = self._parse(method, endpoint, response)
                    raise error_from_body(method, path, status, payload)
            await self._sleep(self._backoff(attempt, response))
            attempt += 1

    async def _pages(self, endpoint: str, key: str, params: Mapping[str, Any]) -> AsyncIterator[Json]:
        query = dict(params)
        query.setdefault("limit", PAGE_LIMIT)
        seen: set[str] = set()
        while True:
            page = await self._request("GET", endpoint, params=query)
            for item in page.get(key) or []:
                yield item
            cursor = page.get("cursor")
            if not cursor:
                return
            if cursor in seen:
                raise ExchangeError(f"GET {self._base_path}{endpoint}: the venue repeated cursor; stopping")
            seen.add(cursor)
            query["cursor"] = cursor

    # --- reads ----------------------------------------------------------------------------------------------

    async def exchange_status(self) -> Json:
        result: Json = await self._request("GET", "/exchange/status")
        return result

    async def markets(self, **filters: Any) -> AsyncIterator[Json]:
        """Every market matching ``filters`` (``status``, ``event_ticker``, ``tickers``=[...], ``limit``…)."""
        params = {k: (",".join(v) if isinstance(v, list | tuple) else v) for k, v in filters.items()}
        async for market in self._pages("/markets", "markets", params):
            yield market

    async def market(self, ticker: str) -> Json:
        result: Json = (await self._request("GET", f"/markets/{ticker}"))["market"]
        return result

    async def orderbook(self, ticker: str, depth: int = 0) -> Json:
        result: Json = await self._request("GET", f"/markets/{ticker}/orderbook", params={"depth": depth})
        return result

    async def balance(self) -> Json:
        result: Json = await self._request("GET", "/portfolio/balance")
        return result

    async def balance_probe(self, timeout_s: float) -> Json:
        """``GET /portfolio/balance`` once (no retry but of a 429), answered within ``timeout_s`` seconds: a
        health check's probe — a cheap authenticated read whose failure is counted, not hidden by retries."""
        result: Json = await self._request("GET", "/portfolio/balance", retry=False, timeout_s=timeout_s)
        return result

    async def positions(self, ticker: str | None = None, *, limit: int = PAGE_LIMIT) -> AsyncIterator[Json]:
        async for pos in self._pages("/portfolio/positions", "market_positions", {"ticker": ticker, "limit": limit}):
            yield pos

    async def fills(
        self, *, ticker: str | None = None, min_ts: int | None = None, limit: int = PAGE_LIMIT
    ) -> AsyncIterator[Json]:
        """Our fills (``min_ts`` in Unix seconds, §3), newest first as the venue sends them."""
        params = {"ticker": ticker, "min_ts": min_ts, "limit": limit}
        async for fill in self._pages("/portfolio/fills", "fills", params):
            yield fill

    async def settlements(
        self, *, ticker: str | None = None, min_ts: int | None = None, limit: int = PAGE_LIMIT
    ) -> AsyncIterator[Json]:
        """Our settlements (``min_ts`` in Unix seconds), newest first as the venue sends them."""
        params = {"ticker": ticker, "min_ts": min_ts, "limit": limit}
        async for row in self._pages("/portfolio/settlements", "settlements", params):
            yield row

    async def orders(
        self, *, ticker: str | None = None, status: str | None = None, limit: int = PAGE_LIMIT
    ) -> AsyncIterator[Json]:
        """Our orders; ``status`` is ``resting|canceled|executed``."""
        params = {"ticker": ticker, "status": status, "limit": limit}
        async for order in self._pages("/portfolio/orders", "orders", params):
            yield order

    async def order(self, order_id: str) -> Json:
        result: Json = (await self._request("GET", f"/portfolio/orders/{order_id}"))["order"]
        return result

    # --- writes ---------------------------------------------------------------------------------------------

    async def create_order(self, body: Mapping[str, Any]) -> Json:
        """POST a CreateOrderV2; returns the ack. Timeout/5xx recovery as in the module docstring."""
        try:
            result: Json = await self._request("POST", _ORDERS, body=dict(body), retry=False)
            return result
        except ExchangeUnavailableError as exc:
            client_order_id = body.get("client_order_id")
            if not client_order_id:
                raise ExchangeUnavailableError(
                    f"POST {self._base_path}{_ORDERS}: outcome unknown and not retried (no client_order_id): {exc}",
                    status=exc.status,
                    code=exc.code,
                ) from exc
            return await self._recover_create(body, str(client_order_id), exc)

    async def _recover_create(self, body: Mapping[str, Any], client_order_id: str, first: ExchangeError) -> Json:
        ticker = body.get("ticker")
        last: ExchangeError = first
        for attempt in range(self._max_retries):
            await self._sleep(BASE_BACKOFF_S * (2**attempt))
            try:
                found = await self._find_by_client_id(ticker, client_order_id)
                if found is not None:
                    return _ack_from_order(found)
                try:
                    result: Json = await self._request("POST", _ORDERS, body=dict(body), retry=False)
                    return result
                except DuplicateClientOrderIdError:
                    found = await self._find_by_client_id(ticker, client_order_id)
                    if found is not None:
                        return _ack_from_order(found)
                    raise
            except (ExchangeUnavailableError, RateLimitedError) as exc:
                last = exc
        raise ExchangeUnavailableError(
            f"POST {self._base_path}{_ORDERS}: outcome of client_order_id {client_order_id!r} unknown after "
            f"{self._max_retries} recovery attempts: {last}",
            status=last.status,
            code=last.code,
        ) from last

    async def _find_by_client_id(self, ticker: object, client_order_id: str) -> Json | None:
        async for order in self.orders(ticker=str(ticker) if ticker else None):
            if order.get("client_order_id") == client_order_id:
                return order
        return None

    async def cancel_order(self, order_id: str) -> Json:
        result: Json = await self._request("DELETE", f"{_ORDERS}/{order_id}")
        return result

    async def amend_order(self, order_id: str, body: Mapping[str, Any]) -> Json:
        """Amend price and/or total ``count`` (filled + desired remaining, §4). Not retried."""
        result: Json = await self._request("POST", f"{_ORDERS}/{order_id}/amend", body=dict(body), retry=False)
        return result

    async def decrease_order(
        self, order_id: str, *, reduce_by: str | None = None, reduce_to: str | None = None
    ) -> Json:
        """Reduce the remaining size by or to a count string (exactly one). Not retried."""
        if (reduce_by is None) == (reduce_to is None):
            raise ValueError("give exactly one of reduce_by and reduce_to")
        body = {"reduce_by": reduce_by} if reduce_by is not None else {"reduce_to": reduce_to}
        result: Json = await self._request("POST", f"{_ORDERS}/{order_id}/decrease", body=body, retry=False)
        return result

    async def batch_create(self, orders: Sequence[Mapping[str, Any]]) -> list[Json]:
        """Create in chunks of ``batch_limit``; one result per order, in order (check each with :func:`item_error`).

        Not retried: a transient failure of a chunk raises, leaving earlier chunks placed.
        """
        results: list[Json] = []
        for chunk in _chunks([dict(o) for o in orders], self.batch_limit):
            answer = await self._request(
                "POST", f"{_ORDERS}/batched", body={"orders": chunk}, retry=False, batch_creates=len(chunk)
            )
            results.extend(answer.get("orders") or [])
        return results

    async def batch_cancel(self, order_ids: Iterable[str]) -> list[Json]:
        """Cancel in chunks of ``batch_cancel_limit`` (retried like reads); one result per id."""
        results: list[Json] = []
        for chunk in _chunks(list(order_ids), self.batch_cancel_limit):
            body = {"orders": [{"order_id": oid} for oid in chunk]}
            answer = await self._request("DELETE", f"{_ORDERS}/batched", body=body, batch_cancels=len(chunk))
            results.extend(answer.get("orders") or [])
        return results


def _ack_from_order(order: Mapping[str, Any]) -> Json:
    """A create ack (§4) rebuilt from a full Order found by lookup after an uncertain create."""
    return {
        "order_id": order.get("order_id"),
        "client_order_id": order.get("client_order_id"),
        "fill_count": order.get("fill_count_fp"),
        "remaining_count": order.get("remaining_count_fp"),
        "status": order.get("status"),
        "ts_ms": None,
        "recovered": True,
    }
