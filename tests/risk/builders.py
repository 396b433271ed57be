"""Builders for risk tests: contexts, quote sets and market snapshots.

Amounts are given the way people write them — contracts and dollars as strings or ints — and converted
exactly to the engine's units ($0.0001, 1/100 contract). The fixtures are session-scoped factories (pure
functions), so hypothesis tests can use them too.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from mm.domain.book import OrderBook
from mm.domain.market import NEVER_UPDATED_US, MarketSnapshot
from mm.domain.price import PRICE_SCALE, Price, Quantity, dollars_to_units
from mm.domain.quotes import Quote, QuoteSet
from mm.domain.ticks import TickGrid
from mm.risk.base import RiskContext

MARKET = "KXTEST-26MAR08-T50"
NOW_US = 1_780_000_000_000_000
GRID = TickGrid.linear_cent()

Number = str | int | Decimal


def contracts(n: Number) -> int:
    """Signed contracts → 1/100-contract units, exactly (an inventory may be negative)."""
    scaled = Decimal(str(n)) * 100
    if scaled != int(scaled):
        raise ValueError(f"{n} is finer than 0.01 contract")
    return int(scaled)


def dollars(x: Number) -> int:
    """Signed dollars → $0.0001 units, exactly."""
    return dollars_to_units(x)


def size(quote: Quote | None) -> Decimal | None:
    """A quote's size in contracts (None when absent)."""
    return None if quote is None else quote.size.to_decimal()


def price(quote: Quote | None) -> Decimal | None:
    return None if quote is None else quote.price.to_decimal()


def make_snapshot(
    bid: Number | None = "0.45",
    ask: Number | None = "0.55",
    *,
    bid_size: Number = 100,
    ask_size: Number = 100,
    last_update_us: int = NOW_US - 1_000_000,
    now_us: int = NOW_US,
    grid: TickGrid = GRID,
) -> MarketSnapshot:
    """The top of a real ``OrderBook`` holding a YES bid and a YES ask (= a NO bid at 1 − ask)."""
    book = OrderBook(grid)
    yes = [(Price.from_decimal(bid).units, contracts(bid_size))] if bid is not None else []
    no = [(PRICE_SCALE - Price.from_decimal(ask).units, contracts(ask_size))] if ask is not None else []
    if last_update_us != NEVER_UPDATED_US:
        book.apply_snapshot(yes, no, last_update_us)
    return book.snapshot(MARKET, now_us)


def raw_snapshot(bid_units: int | None, ask_units: int | None, *, last_update_us: int = NOW_US) -> MarketSnapshot:
    """A snapshot built directly (any prices, even off-grid or crossed)."""
    spread = None if bid_units is None or ask_units is None else Decimal(ask_units - bid_units).scaleb(-4)
    return MarketSnapshot(
        MARKET,
        Price(bid_units) if bid_units is not None else None,
        Price(ask_units) if ask_units is not None else None,
        Quantity(100),
        Quantity(100),
        None,
        spread,
        NOW_US,
        last_update_us,
    )


def make_quotes(
    bid: tuple[Number, Number] | None = ("0.48", 10),
    ask: tuple[Number, Number] | None = ("0.52", 10),
    *,
    generated_us: int = NOW_US,
) -> QuoteSet:
    """``QuoteSet.from_yes`` from (price in dollars, size in contracts) pairs; NO quotes are the complements."""

    def pair(p: tuple[Number, Number] | None) -> tuple[Price, Quantity] | None:
        if p is None:
            return None
        return Price.from_decimal(p[0]), Quantity(contracts(p[1]))

    return QuoteSet.from_yes(MARKET, generated_us, pair(bid), pair(ask))


def make_context(**overrides: Any) -> RiskContext:
    """A RiskContext for ``MARKET`` at ``NOW_US``: flat, fresh book 0.45/0.55, far from settlement."""
    fields: dict[str, Any] = {
        "market_id": MARKET,
        "now_us": NOW_US,
        "snapshot": make_snapshot(),
        "grid": GRID,
        "inventory_units": 0,
        "max_inventory_units": contracts(1000),
        "time_to_settlement_seconds": 3600.0,
    }
    fields.update(overrides)
    return RiskContext(**fields)


def near_half(bid_size: Number = 10, ask_size: Number = 10) -> QuoteSet:
    """YES 0.49 / 0.51 (NO 0.49 / 0.51) with the given sizes in contracts."""
    return make_quotes(("0.49", bid_size), ("0.51", ask_size))
