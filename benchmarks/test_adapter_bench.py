"""Adapter hot paths (issue 6): a WebSocket delta frame into the book, and building + signing an order."""

from __future__ import annotations

import itertools
import json

from cryptography.hazmat.primitives.asymmetric import rsa
from pytest_benchmark.fixture import BenchmarkFixture

from mm.adapters.kalshi.book_feed import BookFeed
from mm.adapters.kalshi.mapping import order_request_body
from mm.adapters.kalshi.signer import KalshiSigner
from mm.clock import SimulatedClock
from mm.domain.orders import OrderRequest
from mm.domain.price import Price, Quantity
from mm.domain.sides import OrderSide, Side
from mm.domain.ticks import TickGrid

TICKER = "KXBTCD-26AUG1317-T73249.99"


def test_delta_frame_to_book(benchmark: BenchmarkFixture) -> None:
    """Target ≤ 10 µs p50 including JSON parsing (design.md §9: frame in → book updated)."""
    feed = BookFeed(lambda sid, tickers: None, lambda ticker: TickGrid.linear_cent(), SimulatedClock(0))
    feed.apply(
        json.loads(
            json.dumps(
                {
                    "type": "orderbook_snapshot",
                    "sid": 1,
                    "seq": 1,
                    "msg": {
                        "market_ticker": TICKER,
                        "yes_dollars_fp": [["0.4500", "100.00"]],
                        "no_dollars_fp": [["0.5000", "100.00"]],
                    },
                }
            )
        )
    )
    seq = itertools.count(2)
    frames = [  # alternate +/- so the book stays valid however many rounds run
        json.dumps(
            {
                "type": "orderbook_delta",
                "sid": 1,
                "seq": 0,
                "msg": {
                    "market_ticker": TICKER,
                    "price_dollars": "0.4500",
                    "delta_fp": delta,
                    "side": "yes",
                    "ts_ms": 1,
                },
            }
        )
        for delta in ("5.00", "-5.00")
    ]

    def apply_one() -> None:
        n = next(seq)
        message = json.loads(frames[n % 2])
        message["seq"] = n
        feed.apply(message)

    benchmark(apply_one)
    assert not feed.is_stale(TICKER) and feed.gaps == 0


def test_build_and_sign_an_order(benchmark: BenchmarkFixture) -> None:
    signer = KalshiSigner("kid", rsa.generate_private_key(public_exponent=65537, key_size=2048))
    request = OrderRequest(TICKER, Side.YES, OrderSide.BUY, Price(4500), Quantity.contracts(10), "mm-1")

    def build() -> tuple[dict[str, object], dict[str, str]]:
        return order_request_body(request), signer.headers("POST", "/trade-api/v2/portfolio/events/orders", 1)

    body, headers = benchmark(build)
    assert body["price"] == "0.4500" and "KALSHI-ACCESS-SIGNATURE" in headers
