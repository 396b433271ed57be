"""BookFeed on hand-written messages shaped like kalshi-api.md §6 (pure: no IO)."""

from __future__ import annotations

from typing import Any

import pytest

from mm.adapters.kalshi.book_feed import BookFeed, levels_of, parse_count, parse_price
from mm.clock import SimulatedClock
from mm.domain.ticks import TickGrid

T1 = "KXBTCD-26AUG1317-T73249.99"
T2 = "KXBTCD-26AUG1317-T73499.99"


class Harness:
    def __init__(self, *, use_yes_price: bool = False) -> None:
        self.requests: list[tuple[int, list[str]]] = []
        self.logs: list[str] = []
        self.feed = BookFeed(
            lambda sid, tickers: self.requests.append((sid, tickers)),
            lambda _t: TickGrid.linear_cent(),
            SimulatedClock(1_786_650_000_000_000),
            use_yes_price=use_yes_price,
            log=self.logs.append,
        )

    def send(self, message: dict[str, Any]) -> None:
        self.feed.apply(message)


def snapshot(sid: int, seq: int, ticker: str, yes: list[list[Any]], no: list[list[Any]]) -> dict[str, Any]:
    msg: dict[str, Any] = {"market_ticker": ticker, "market_id": "9b0f"}
    if yes:
        msg["yes_dollars_fp"] = yes
    if no:
        msg["no_dollars_fp"] = no
    return {"type": "orderbook_snapshot", "sid": sid, "seq": seq, "msg": msg}


def delta(sid: int, seq: int, ticker: str, side: str, price: str, count: str) -> dict[str, Any]:
    return {
        "type": "orderbook_delta",
        "sid": sid,
        "seq": seq,
        "msg": {
            "market_ticker": ticker,
            "market_id": "9b0f",
            "price_dollars": price,
            "delta_fp": count,
            "side": side,
            "ts": "2026-08-13T20:30:00Z",
            "ts_ms": 1_786_653_000_000,
        },
    }


def test_parse_exact_units() -> None:
    assert parse_price("0.0800") == 800
    assert parse_price("0.5") == 5000
    assert parse_count("300.00") == 30000
    assert parse_count("-1.84") == -184
    for bad in ("0.00001", "abc", "NaN", 0.08):
        with pytest.raises(ValueError):
            parse_price(bad)


async def test_snapshot_then_deltas_build_the_book() -> None:
    h = Harness()
    await h.feed.handle({"id": 1, "type": "subscribed", "msg": {"channel": "orderbook_delta", "sid": 2}})
    h.send(
        snapshot(2, 1, T1, [["0.0800", "300.00"], ["0.2200", "333.00"]], [["0.5400", "20.00"], ["0.5600", "146.00"]])
    )
    assert not h.feed.is_stale(T1)
    h.send(delta(2, 2, T1, "yes", "0.0800", "-54.00"))
    h.send(delta(2, 3, T1, "no", "0.5600", "-146.00"))
    h.send(delta(2, 4, T1, "yes", "0.3000", "1.84"))
    book = h.feed.book(T1)
    assert book is not None
    assert levels_of(book) == ([(800, 24600), (2200, 33300), (3000, 184)], [(5400, 2000)])
    assert book.best_yes_bid == 3000
    assert book.best_yes_ask == 10000 - 5400  # NO bids at NO-leg prices: YES ask = 1 - q
    assert book.last_update_us == 1_786_653_000_000_000
    assert (h.feed.gaps, h.feed.resyncs, h.feed.malformed) == (0, 0, 0)
    assert h.requests == []


def test_use_yes_price_converts_no_levels_to_no_bids() -> None:
    h = Harness(use_yes_price=True)
    h.send(snapshot(1, 1, T1, [["0.4000", "1.00"]], [["0.4600", "2.00"]]))
    h.send(delta(1, 2, T1, "no", "0.4600", "1.00"))
    book = h.feed.book(T1)
    assert book is not None
    assert levels_of(book) == ([(4000, 100)], [(5400, 300)])


def test_unknown_market_is_stale_until_snapshot() -> None:
    h = Harness()
    assert h.feed.is_stale(T1)
    assert h.feed.book(T1) is None
    h.send(delta(1, 1, T1, "yes", "0.1000", "1.00"))  # a delta before any snapshot is skipped
    assert h.feed.book(T1) is None


def test_seq_gap_marks_every_market_of_the_sid_stale_and_requests_a_snapshot() -> None:
    h = Harness()
    h.send(snapshot(3, 1, T1, [["0.1000", "1.00"]], []))
    h.send(snapshot(3, 2, T2, [["0.2000", "1.00"]], []))
    h.send(delta(3, 3, T1, "yes", "0.1000", "1.00"))
    h.send(delta(3, 5, T2, "yes", "0.2000", "1.00"))  # seq 4 lost
    assert h.feed.gaps == 1
    assert h.feed.is_stale(T1) and h.feed.is_stale(T2)
    assert h.requests == [(3, [T1, T2])]
    assert h.feed.resyncs == 1
    # deltas on a stale market are skipped (seq still advances, no new gap)
    h.send(delta(3, 6, T1, "yes", "0.1000", "5.00"))
    assert h.feed.gaps == 1
    # the get_snapshot reply (id + seq) repairs each market
    reply = snapshot(3, 7, T1, [["0.1000", "7.00"]], [])
    reply["id"] = 9
    h.send(reply)
    assert not h.feed.is_stale(T1) and h.feed.is_stale(T2)
    h.send(snapshot(3, 8, T2, [["0.2000", "3.00"]], []))
    assert not h.feed.is_stale(T2)
    book = h.feed.book(T1)
    assert book is not None and levels_of(book) == ([(1000, 700)], [])


def test_acks_consume_seq_without_a_gap() -> None:
    h = Harness()
    h.send(snapshot(1, 1, T1, [["0.1000", "1.00"]], []))
    h.send({"id": 3, "sid": 1, "seq": 2, "type": "ok", "msg": {"market_tickers": [T1, T2]}})
    h.send(delta(1, 3, T1, "yes", "0.1000", "1.00"))
    assert h.feed.gaps == 0 and not h.feed.is_stale(T1)


def test_first_seq_on_a_sid_may_be_anything() -> None:
    h = Harness()
    h.send(snapshot(4, 17, T1, [["0.1000", "1.00"]], []))
    h.send(delta(4, 18, T1, "yes", "0.1000", "1.00"))
    assert h.feed.gaps == 0


def test_duplicate_seq_is_ignored_not_applied_twice() -> None:
    """Decision: a message whose seq is not above the last one is a re-send; it is counted and ignored."""
    h = Harness()
    h.send(snapshot(1, 1, T1, [["0.1000", "1.00"]], []))
    h.send(delta(1, 2, T1, "yes", "0.1000", "2.00"))
    h.send(delta(1, 2, T1, "yes", "0.1000", "2.00"))
    h.send(delta(1, 3, T1, "yes", "0.1000", "1.00"))
    book = h.feed.book(T1)
    assert book is not None and levels_of(book) == ([(1000, 400)], [])
    assert h.feed.duplicates == 1 and h.feed.gaps == 0 and not h.feed.is_stale(T1)


def test_negative_level_marks_stale_and_resyncs() -> None:
    h = Harness()
    h.send(snapshot(5, 1, T1, [["0.1000", "1.00"]], []))
    h.send(delta(5, 2, T1, "yes", "0.1000", "-2.00"))
    assert h.feed.is_stale(T1)
    assert h.requests == [(5, [T1])]
    book = h.feed.book(T1)
    assert book is not None and levels_of(book) == ([(1000, 100)], [])  # unchanged
    h.send(snapshot(5, 3, T1, [["0.1000", "3.00"]], []))
    assert not h.feed.is_stale(T1)


def test_crossed_book_marks_stale() -> None:
    h = Harness()
    h.send(snapshot(1, 1, T1, [["0.4000", "1.00"]], [["0.5000", "1.00"]]))
    h.send(delta(1, 2, T1, "no", "0.6000", "1.00"))  # NO bid 0.60 + YES bid 0.40 = 1: crossed
    assert h.feed.is_stale(T1)
    assert h.requests == [(1, [T1])]


def test_malformed_levels_are_counted_not_raised() -> None:
    h = Harness()
    h.send(snapshot(1, 1, T1, [["0.1000", "1.00"]], []))
    h.send(delta(1, 2, T1, "yes", "0.10001", "1.00"))
    assert h.feed.malformed == 1 and h.feed.is_stale(T1)
    h.send(snapshot(1, 3, T1, [["zero", "1.00"]], []))
    h.send(snapshot(1, 4, T1, [["0.1000"]], []))
    h.send(snapshot(1, 5, T1, [[0.1, 1]], []))  # numbers, not strings
    h.send({"type": "orderbook_delta", "sid": 1, "seq": 6, "msg": "nope"})
    h.send(delta(1, 7, T1, "maybe", "0.1000", "1.00"))  # stale market: skipped before it is parsed
    assert h.feed.malformed == 5
    assert h.feed.is_stale(T1)
    assert len(h.logs) == 5
    h.send(snapshot(1, 8, T1, [["0.1000", "2.00"]], []))
    assert not h.feed.is_stale(T1)
    h.send(delta(1, 9, T1, "maybe", "0.1000", "1.00"))
    assert h.feed.malformed == 6 and h.feed.is_stale(T1)


def test_connection_reset_forgets_seq_and_marks_all_stale() -> None:
    h = Harness()
    h.send(snapshot(1, 10, T1, [["0.1000", "1.00"]], []))
    h.feed.connection_reset()
    assert h.feed.is_stale(T1)
    h.send(snapshot(1, 1, T1, [["0.1000", "1.00"]], []))  # new connection: seq starts over, no gap
    assert not h.feed.is_stale(T1) and h.feed.gaps == 0 and h.feed.duplicates == 0
