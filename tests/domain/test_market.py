"""MarketSnapshot (FR-202): fields taken from a book, and stale-data detection."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from mm.domain.book import OrderBook
from mm.domain.market import NEVER_UPDATED_US, MarketSnapshot
from mm.domain.price import Price, Quantity
from mm.domain.sides import Side
from mm.domain.ticks import TickGrid

MARKET = "KXBTCD-26AUG1317-T73249.99"


def test_snapshot_of_two_sided_book() -> None:
    book = OrderBook(TickGrid.linear_cent())
    book.apply_snapshot([(4500, 1000), (4400, 200)], [(5300, 750)], ts_us=1_000_000)
    snap = book.snapshot(MARKET, now_us=1_250_000)
    assert snap == MarketSnapshot(
        market_id=MARKET,
        best_bid=Price(4500),
        best_ask=Price(4700),  # 1 − 0.53
        bid_size=Quantity(1000),
        ask_size=Quantity(750),
        mid_price=Decimal("0.46"),
        spread=Decimal("0.02"),
        timestamp_us=1_250_000,
        last_update_us=1_000_000,
    )
    assert snap.age_us(1_250_000) == 250_000


def test_snapshot_with_odd_mid_is_exact() -> None:
    book = OrderBook(TickGrid.for_structure("center_centi_edge_centi_cent"))
    book.apply_snapshot([(4500, 100)], [(5399, 100)], ts_us=5)
    snap = book.snapshot(MARKET, now_us=6)
    assert snap.mid_price == Decimal("0.45505")
    assert snap.spread == Decimal("0.0101")


def test_snapshot_of_one_sided_book() -> None:
    book = OrderBook(TickGrid.linear_cent())
    book.apply_snapshot([(4500, 1000)], [], ts_us=10)
    snap = book.snapshot(MARKET, now_us=20)
    assert snap.best_bid == Price(4500)
    assert snap.best_ask is None
    assert snap.bid_size == Quantity(1000)
    assert snap.ask_size == Quantity(0)
    assert snap.mid_price is None
    assert snap.spread is None


def test_snapshot_of_crossed_book_has_non_positive_spread() -> None:
    book = OrderBook(TickGrid.linear_cent())
    book.apply_snapshot([(5100, 1)], [(5000, 1)], ts_us=10)
    snap = book.snapshot(MARKET, now_us=10)
    assert snap.spread == Decimal("-0.01")
    assert snap.best_bid is not None and snap.best_ask is not None
    assert snap.best_bid > snap.best_ask


def test_snapshot_follows_later_deltas_but_is_itself_immutable() -> None:
    book = OrderBook(TickGrid.linear_cent())
    book.apply_snapshot([(4500, 1000)], [(5300, 750)], ts_us=10)
    first = book.snapshot(MARKET, now_us=10)
    book.apply_delta(Side.YES, 4600, 5, ts_us=30)
    second = book.snapshot(MARKET, now_us=40)
    assert first.best_bid == Price(4500)
    assert second.best_bid == Price(4600)
    assert second.last_update_us == 30
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.market_id = "other"  # type: ignore[misc]


def test_never_updated_book_is_stale() -> None:
    snap = OrderBook(TickGrid.linear_cent()).snapshot(MARKET, now_us=1_000)
    assert snap.last_update_us == NEVER_UPDATED_US
    assert not snap.has_data
    assert snap.is_stale(now_us=1_000, max_age_us=10**12)
    assert snap.best_bid is None and snap.bid_size == Quantity(0)


def test_cleared_book_is_stale_again() -> None:
    book = OrderBook(TickGrid.linear_cent())
    book.apply_snapshot([(4500, 1)], [], ts_us=1_000)
    assert not book.snapshot(MARKET, now_us=1_000).is_stale(1_000, 5_000)
    book.clear()
    assert book.snapshot(MARKET, now_us=1_000).is_stale(1_000, 5_000)


def test_empty_but_updated_book_is_not_stale() -> None:
    book = OrderBook(TickGrid.linear_cent())
    book.apply_snapshot([], [], ts_us=1_000)
    snap = book.snapshot(MARKET, now_us=1_500)
    assert snap.has_data
    assert not snap.is_stale(now_us=1_500, max_age_us=1_000)


@pytest.mark.parametrize(
    ("now_us", "stale"),
    [
        (1_000_000, False),  # age 0
        (3_000_000, False),  # age exactly the limit: still fresh
        (3_000_001, True),  # one microsecond past the limit
        (999_000, False),  # now before the last update (clock skew): negative age is not stale
    ],
)
def test_staleness_boundary(now_us: int, stale: bool) -> None:
    book = OrderBook(TickGrid.linear_cent())
    book.apply_snapshot([(4500, 1)], [(5000, 1)], ts_us=1_000_000)
    snap = book.snapshot(MARKET, now_us=now_us)
    assert snap.age_us(now_us) == now_us - 1_000_000
    assert snap.is_stale(now_us, max_age_us=2_000_000) is stale


def test_staleness_is_judged_at_the_time_asked_not_the_snapshot_time() -> None:
    book = OrderBook(TickGrid.linear_cent())
    book.apply_snapshot([(4500, 1)], [], ts_us=1_000)
    snap = book.snapshot(MARKET, now_us=1_100)
    assert not snap.is_stale(now_us=1_100, max_age_us=500)
    assert snap.is_stale(now_us=2_000, max_age_us=500)
    assert snap.age_us(2_000) == 1_000
