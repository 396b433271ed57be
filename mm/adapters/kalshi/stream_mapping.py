"""Kalshi stream and settlement messages → :mod:`mm.domain.events` (kalshi-api.md §5, §6, §13).

Every function takes one decoded ``msg`` body and returns a domain event, or raises
:class:`~mm.adapters.kalshi.mapping.WireFormatError` when a required field is missing or not understood; the
adapter counts and logs those (never fatal). Prices are YES prices, exact.

* ``user_order`` → :class:`OrderUpdate` (it uses ``ticker``, not ``market_ticker``; times in ``*_ts_ms``).
* ``fill`` → :class:`FillEvent` (``post_position_fp`` kept when sent).
* ``trade`` → :class:`PublicTrade` (Kalshi ``taker_book_side`` ``bid`` = the taker bought YES → ``BUY``).
* ``market_lifecycle_v2`` → :class:`MarketLifecycle`.
* A ``/portfolio/settlements`` row → :class:`Settlement` (``revenue`` and ``value`` are int cents).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final, get_args

from mm.adapters.kalshi.mapping import SentTerms, WireFormatError, fill_from_wire, parse_rfc3339_us, request_terms
from mm.domain.events import FillEvent, LifecycleKind, MarketLifecycle, OrderUpdate, PublicTrade, Settlement
from mm.domain.orders import Order, OrderRequest, OrderStatus
from mm.domain.price import PRICE_SCALE, Price, Quantity
from mm.domain.sides import BookSide, OrderSide, Side
from mm.domain.ticks import TickGrid

__all__ = [
    "fill_event_from_ws",
    "lifecycle_from_ws",
    "order_update_from_ws",
    "public_trade_from_ws",
    "settlement_from_wire",
]

_CENTS: Final = Decimal(100)
_LIFECYCLE_KINDS: Final = frozenset(get_args(LifecycleKind))


def _str(d: Mapping[str, Any], name: str) -> str:
    value = d.get(name)
    if value is None or value == "":
        raise WireFormatError(f"missing field {name!r}")
    return str(value)


def _int(d: Mapping[str, Any], name: str) -> int | None:
    value = d.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise WireFormatError(f"{name} {value!r} is not an integer")
    return value


def _count(d: Mapping[str, Any], name: str) -> Quantity:
    try:
        return Quantity.from_fp(_str(d, name))
    except ValueError as exc:
        raise WireFormatError(f"{name}: {exc}") from None


def _price(d: Mapping[str, Any], name: str) -> Price:
    try:
        return Price.from_dollars(_str(d, name))
    except ValueError as exc:
        raise WireFormatError(f"{name}: {exc}") from None


def _book_side(value: object) -> BookSide:
    if value == "bid":
        return BookSide.BID
    if value == "ask":
        return BookSide.ASK
    raise WireFormatError(f"unknown book_side {value!r}")


def order_update_from_ws(msg: Mapping[str, Any], sent: SentTerms | None = None) -> OrderUpdate:
    """A ``user_order`` body → our order as the venue sees it now, in YES terms; the terms it does not report are
    ``sent``'s (an order we never sent: post-only good-till-cancelled, the request's defaults)."""
    order_id = _str(msg, "order_id")
    book_side = _book_side(msg.get("book_side"))
    filled = _count(msg, "fill_count_fp")
    initial = _count(msg, "initial_count_fp")
    status_raw = msg.get("status")
    if status_raw == "resting":
        status = OrderStatus.PARTIALLY_FILLED if not filled.is_zero else OrderStatus.OPEN
    elif status_raw == "executed":
        status = OrderStatus.FILLED
    elif status_raw == "canceled":
        status = OrderStatus.CANCELLED
    else:
        raise WireFormatError(f"unknown order status {status_raw!r}")
    created_ms = _int(msg, "created_ts_ms")
    created_us = parse_rfc3339_us(_str(msg, "created_time")) if created_ms is None else created_ms * 1000
    updated_ms = _int(msg, "last_updated_ts_ms")
    updated_us = updated_ms * 1000 if updated_ms is not None else created_us
    terms = request_terms(msg, sent, default_post_only=True)
    request = OrderRequest(
        market_id=_str(msg, "ticker"),
        side=Side.YES,
        order_side=OrderSide.BUY if book_side is BookSide.BID else OrderSide.SELL,
        price=_price(msg, "yes_price_dollars"),
        quantity=initial,
        client_order_id=str(msg.get("client_order_id") or order_id),
        time_in_force=terms.time_in_force,
        post_only=terms.post_only,
        reduce_only=terms.reduce_only,
    )
    order = Order(
        request=request,
        status=status,
        created_us=created_us,
        updated_us=updated_us,
        exchange_order_id=order_id,
        filled=filled,
    )
    return OrderUpdate(order=order, timestamp_us=updated_us)


def fill_event_from_ws(msg: Mapping[str, Any]) -> FillEvent:
    """A ``fill`` body → :class:`FillEvent` (time from ``ts_ms`` when present: finer than ``ts``)."""
    fill = fill_from_wire(msg)
    post_raw = msg.get("post_position_fp")
    post: Quantity | None = None
    if post_raw not in (None, ""):
        try:
            post = Quantity.from_fp(str(post_raw))
        except ValueError:
            post = None  # the position after the fill is advisory; the fill itself is what counts
    return FillEvent(fill=fill, post_position=post)


def public_trade_from_ws(msg: Mapping[str, Any]) -> PublicTrade:
    """A ``trade`` body → :class:`PublicTrade` at the YES price."""
    taker = _book_side(msg.get("taker_book_side"))
    ts_ms = _int(msg, "ts_ms")
    if ts_ms is None:
        ts_s = _int(msg, "ts")
        if ts_s is None:
            raise WireFormatError("missing field 'ts_ms'")
        ts_ms = ts_s * 1000
    return PublicTrade(
        market_id=_str(msg, "market_ticker"),
        trade_id=_str(msg, "trade_id"),
        price=_price(msg, "yes_price_dollars"),
        quantity=_count(msg, "count_fp"),
        taker_side=OrderSide.BUY if taker is BookSide.BID else OrderSide.SELL,
        timestamp_us=ts_ms * 1000,
    )


def lifecycle_from_ws(msg: Mapping[str, Any], now_us: int) -> MarketLifecycle:
    """A ``market_lifecycle_v2`` body → :class:`MarketLifecycle` (``now_us`` when the message has no time)."""
    kind = _str(msg, "event_type")
    if kind not in _LIFECYCLE_KINDS:
        raise WireFormatError(f"unknown lifecycle event_type {kind!r}")
    market_id = _str(msg, "market_ticker")
    open_s, close_s = _int(msg, "open_ts"), _int(msg, "close_ts")
    stamp_s = _int(msg, "determination_ts") or _int(msg, "settled_ts")
    grid: TickGrid | None = None
    ranges = msg.get("price_ranges")
    if ranges:
        try:
            grid = TickGrid.from_price_ranges(ranges)
        except (ValueError, TypeError, KeyError) as exc:
            raise WireFormatError(f"price_ranges: {exc}") from None
    value_units: int | None = None
    if msg.get("settlement_value") not in (None, ""):
        raw = msg["settlement_value"]
        if not isinstance(raw, str):
            raise WireFormatError("settlement_value must be a dollar string")
        try:
            scaled = Decimal(raw) * PRICE_SCALE
        except ArithmeticError:
            raise WireFormatError(f"settlement_value {raw!r} is not a decimal") from None
        if scaled != scaled.to_integral_value() or not 0 <= scaled <= PRICE_SCALE:
            raise WireFormatError(f"settlement_value {raw!r} is not a price in [0, 1]")
        value_units = int(scaled)
    paused = msg.get("is_deactivated")
    return MarketLifecycle(
        market_id=market_id,
        kind=kind,  # type: ignore[arg-type]  # checked against LifecycleKind above
        timestamp_us=stamp_s * 1_000_000 if stamp_s else now_us,
        open_time_us=open_s * 1_000_000 if open_s is not None else None,
        close_time_us=close_s * 1_000_000 if close_s is not None else None,
        result=str(msg["result"]) if msg.get("result") not in (None, "") else None,
        settlement_value=Price(value_units) if value_units is not None and 0 < value_units < PRICE_SCALE else None,
        settlement_value_units=value_units,
        grid=grid,
        paused=paused if isinstance(paused, bool) else None,
    )


def _dollars(d: Mapping[str, Any], name: str) -> Decimal:
    value = d.get(name)
    if value is None or value == "":
        return Decimal(0)
    if isinstance(value, bool | float):
        raise WireFormatError(f"{name} must be a dollar string")
    try:
        return Decimal(str(value))
    except ArithmeticError:
        raise WireFormatError(f"{name} {value!r} is not a decimal") from None


def settlement_from_wire(d: Mapping[str, Any]) -> Settlement:
    """A ``/portfolio/settlements`` row → :class:`Settlement` (``revenue``/``value`` are int cents, §5)."""
    revenue = _int(d, "revenue")
    value = _int(d, "value")
    yes = Quantity.from_fp(str(d.get("yes_count_fp") or "0"))
    no = Quantity.from_fp(str(d.get("no_count_fp") or "0"))
    return Settlement(
        market_id=_str(d, "ticker"),
        result=str(d.get("market_result") or ""),
        yes_count=yes,
        no_count=no,
        yes_total_cost=_dollars(d, "yes_total_cost_dollars"),
        no_total_cost=_dollars(d, "no_total_cost_dollars"),
        revenue=Decimal(revenue or 0) / _CENTS,
        value_per_yes=Decimal(value or 0) / _CENTS,
        fee=_dollars(d, "fee_cost"),
        settled_us=parse_rfc3339_us(_str(d, "settled_time")),
    )
