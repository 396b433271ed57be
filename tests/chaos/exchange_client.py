"""Talking to a simulator from a test, over real loopback HTTP: its admin endpoints (faults, dropped
connections, clock) and, for a simulator in another process, signed reads of our account's ground truth.

The signed reader uses the simulator's documented signing (RSA-PSS over ``timestamp + METHOD + path``) through
:class:`~mm.adapters.kalshi.signer.KalshiSigner` — the signer only, not the adapter under test.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import urlparse

import httpx

from mm.adapters.kalshi.signer import KalshiSigner
from mm.clock import WallClock
from tests.chaos.invariants import ExchangeFill, RestingOrder


class Admin:
    """``/admin/faults``, ``/admin/drop-connections``, ``/admin/clock`` of a simulator at ``base_url``."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http

    async def set_faults(self, **settings: Any) -> dict[str, Any]:
        response = await self._http.put("/admin/faults", json=settings)
        response.raise_for_status()
        return dict(response.json())

    async def clear_faults(self) -> dict[str, Any]:
        return await self.set_faults(
            rest_latency_s=0.0,
            ws_latency_s=0.0,
            rest_error_rate=0.0,
            rest_429_rate=0.0,
            rest_lost_response_rate=0.0,
            ws_drop_message_rate=0.0,
            ws_duplicate_message_rate=0.0,
            ws_malformed_message_rate=0.0,
            ws_silent=False,
            clock_skew_ms=0,
            trading_paused=False,
        )

    async def faults(self) -> dict[str, Any]:
        response = await self._http.get("/admin/faults")
        response.raise_for_status()
        return dict(response.json())

    async def drop_connections(self) -> int:
        response = await self._http.post("/admin/drop-connections")
        response.raise_for_status()
        return int(response.json()["dropped"])

    async def now_us(self) -> int:
        response = await self._http.get("/admin/clock")
        response.raise_for_status()
        return int(response.json()["now_us"])


def _units(text: str, scale: int) -> int:
    return int(Decimal(text) * scale)


class SignedReader:
    """Our account as the exchange reports it (``GET /portfolio/...``), every page (synchronous: test code)."""

    def __init__(self, rest_url: str, key_id: str, key_file: str) -> None:
        self._rest = rest_url.rstrip("/")
        self._path = urlparse(self._rest).path
        self._signer = KalshiSigner.from_file(key_id, key_file)
        self._wall = WallClock()
        self._http = httpx.Client(timeout=10.0)

    def close(self) -> None:
        self._http.close()

    def _pages(self, endpoint: str, key: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        cursor = ""
        while True:
            query = {**params, "limit": 1000, **({"cursor": cursor} if cursor else {})}
            headers = self._signer.headers("GET", self._path + endpoint, self._wall.now_us() // 1000)
            response = self._http.get(self._rest + endpoint, params=query, headers=headers)
            response.raise_for_status()
            body = response.json()
            yield from body[key]
            cursor = body.get("cursor") or ""
            if not cursor:
                return

    def fills(self) -> list[ExchangeFill]:
        return [
            ExchangeFill(f["fill_id"], f["ticker"], _units(f["count_fp"], 100))
            for f in self._pages("/portfolio/fills", "fills", {})
        ]

    def positions(self) -> dict[str, int]:
        return {
            p["ticker"]: _units(p["position_fp"], 100)
            for p in self._pages("/portfolio/positions", "market_positions", {})
        }

    def resting(self, prefix: str = "mm:") -> list[RestingOrder]:
        return [
            RestingOrder(o["client_order_id"], o["ticker"], o["book_side"], _units(o["yes_price_dollars"], 10_000))
            for o in self._pages("/portfolio/orders", "orders", {"status": "resting"})
            if o.get("client_order_id", "").startswith(prefix)
        ]

    def settled(self) -> set[str]:
        """Markets that are no longer open (their positions move by settlement, not by fills)."""
        tickers = set()
        for status in ("closed", "settled"):
            response = self._http.get(self._rest + "/markets", params={"status": status, "limit": 1000})
            response.raise_for_status()
            tickers |= {m["ticker"] for m in response.json()["markets"]}
        return tickers
