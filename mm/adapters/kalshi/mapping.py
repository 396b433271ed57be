"""Kalshi wire ↔ domain (FR-103), exact: dollar and count strings parse through ``Price``/``Quantity``/``Decimal``,
never a float.

Kalshi's V2 API speaks the single YES book (kalshi-api.md §5): ``bid`` buys YES, ``ask`` sells YES (= buys NO
at 1 − price), and every price is the YES price. Orders and fills read back from the venue are therefore mapped
to YES terms — ``book_side`` bid → (YES, BUY), ask → (YES, SELL), at the YES price — whatever side the request
was phrased in. Positions are signed ``position_fp``: positive is YES held, negative NO held.

Request terms: the venue's Order object and its ``user_order`` stream message need not report every term of the
request we sent (the simulator's carry no ``post_only``). Read back without them, an order would come out with a
default (``post_only`` false over REST) and overwrite the tracker's true copy — the amend answer and every resync
did. The adapter therefore keeps each create's :class:`SentTerms` and hands them to
:func:`order_from_wire` / ``order_update_from_ws``: a term the venue reports wins, one it does not is the term we
sent, and only an order we never sent (placed before a restart, or by hand) gets the default.

Balance: ``balance_dollars`` (or ``balance`` in cents) is the cash that can fund orders → ``available``.
``total`` is ``available`` plus ``portfolio_value`` (int cents: the value of open positions) when the venue
sends it, else ``available``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final, NamedTuple

from mm.clock import datetime_to_us
from mm.domain.orders import Fill, Order, OrderRequest, OrderStatus
from mm.domain.portfolio import Balance, Position
from mm.domain.price import ZERO_QUANTITY, Price, Quantity
from mm.domain.sides import BookSide, OrderSide, Side, TimeInForce

__all__ = [
    "SentTerms",
    "balance_from_wire",
    "fill_from_wire",
    "order_from_wire",
    "order_request_body",
    "parse_rfc3339_us",
    "position_from_wire",
    "request_terms",
]

_CENTS: Final = Decimal(100)
_TIFS: Final = frozenset(t.value for t in TimeInForce)


class SentTerms(NamedTuple):
    """The terms of a create that the venue does not change and may not report back (see the module docstring)."""

    time_in_force: TimeInForce
    post_only: bool
    reduce_only: bool

    @classmethod
    def of(cls, request: OrderRequest) -> SentTerms:
        return cls(request.time_in_force, request.post_only, request.reduce_only)


def request_terms(d: Mapping[str, Any], sent: SentTerms | None, *, default_post_only: bool) -> SentTerms:
    """An order's terms as read back: what the venue reports, else what we sent (``sent``), else the defaults
    (good-till-cancelled, ``default_post_only``, not reduce-only)."""
    fallback = sent if sent is not None else SentTerms(TimeInForce.GOOD_TILL_CANCELED, default_post_only, False)
    tif_raw, post_raw, reduce_raw = d.get("time_in_force"), d.get("post_only"), d.get("reduce_only")
    tif = TimeInForce(tif_raw) if tif_raw in _TIFS else fallback.time_in_force
    post_only = bool(post_raw) if post_raw is not None else fallback.post_only
    reduce_only = bool(reduce_raw) if reduce_raw is not None else fallback.reduce_only
    return SentTerms(tif, post_only, reduce_only)


class WireFormatError(ValueError):
    """A venue object missing a required field or holding a value we do not understand."""


def _field(d: Mapping[str, Any], name: str) -> Any:
    value = d.get(name)
    if value is None:
        raise WireFormatError(f"missing field {name!r}")
    return value


def _decimal(value: object, name: str) -> Decimal:
    if isinstance(value, bool | float):
        raise WireFormatError(f"{name} must be a decimal string, not {type(value).__name__}")
    try:
        return Decimal(str(value).strip())
    except InvalidOperation:
        raise WireFormatError(f"{name} {value!r} is not a decimal number") from None


def parse_rfc3339_us(text: str) -> int:
    """RFC3339 (``Z`` or offset, any fraction up to µs) → UTC microseconds since the epoch."""
    raw = text.strip()
    if raw.endswith(("Z", "z")):
        raw = raw[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(raw)
    except ValueError:
        raise WireFormatError(f"time {text!r} is not RFC3339") from None
    return datetime_to_us(dt)


def order_request_body(req: OrderRequest, *, stp: str = "maker") -> dict[str, Any]:
    """A V2 CreateOrderV2 body (§5) for ``req``, on the YES book."""
    side, yes_price = req.yes_book()
    body: dict[str, Any] = {
        "ticker": req.market_id,
        "client_order_id": req.client_order_id,
        "side": side.value,
        "price": yes_price.to_dollars(),
        "count": req.quantity.to_fp(),
        "time_in_force": req.time_in_force.value,
        "self_trade_prevention_type": stp,
    }
    if req.post_only:
        body["post_only"] = True
    if req.reduce_only:
        body["reduce_only"] = True
    return body


def _book_terms(d: Mapping[str, Any]) -> OrderSide:
    value = _field(d, "book_side")
    if value == BookSide.BID.value:
        return OrderSide.BUY
    if value == BookSide.ASK.value:
        return OrderSide.SELL
    raise WireFormatError(f"unknown book_side {value!r}")


def _order_status(status: object, filled: Quantity) -> OrderStatus:
    if status == "resting":
        return OrderStatus.PARTIALLY_FILLED if not filled.is_zero else OrderStatus.OPEN
    if status == "executed":
        return OrderStatus.FILLED
    if status == "canceled":
        return OrderStatus.CANCELLED
    raise WireFormatError(f"unknown order status {status!r}")


def order_from_wire(d: Mapping[str, Any], sent: SentTerms | None = None) -> Order:
    """A Kalshi Order object (§5) → :class:`Order` in YES terms (``request.quantity`` = ``initial_count_fp``);
    the terms it does not report are ``sent``'s (see :func:`request_terms`)."""
    order_side = _book_terms(d)
    filled = Quantity.from_fp(str(d.get("fill_count_fp") or "0"))
    initial = Quantity.from_fp(str(_field(d, "initial_count_fp")))
    created = parse_rfc3339_us(str(_field(d, "created_time")))
    updated_raw = d.get("last_update_time")
    updated = parse_rfc3339_us(str(updated_raw)) if updated_raw else created
    terms = request_terms(d, sent, default_post_only=False)
    order_id = str(_field(d, "order_id"))
    request = OrderRequest(
        market_id=str(_field(d, "ticker")),
        side=Side.YES,
        order_side=order_side,
        price=Price.from_dollars(str(_field(d, "yes_price_dollars"))),
        quantity=initial,
        client_order_id=str(d.get("client_order_id") or order_id),  # "" is allowed on the wire (§5)
        time_in_force=terms.time_in_force,
        post_only=terms.post_only,
        reduce_only=terms.reduce_only,
    )
    return Order(
        request=request,
        status=_order_status(d.get("status"), filled),
        created_us=created,
        updated_us=updated,
        exchange_order_id=order_id,
        filled=filled,
    )


def fill_from_wire(d: Mapping[str, Any]) -> Fill:
    """A Kalshi Fill (§5) → :class:`Fill` in YES terms from ``book_side``; price = ``yes_price_dollars``."""
    fill_id = d.get("trade_id") or d.get("fill_id")
    if not fill_id:
        raise WireFormatError("missing field 'trade_id'")
    ticker = d.get("ticker") or d.get("market_ticker")
    if not ticker:
        raise WireFormatError("missing field 'ticker'")
    created = d.get("created_time")
    ts_ms = d.get("ts_ms")
    if created:
        ts_us = parse_rfc3339_us(str(created))
    elif isinstance(ts_ms, int) and not isinstance(ts_ms, bool):
        ts_us = ts_ms * 1000  # the stream's millisecond time is finer than its deprecated ``ts`` seconds
    else:
        ts = _field(d, "ts")
        if isinstance(ts, bool) or not isinstance(ts, int):
            raise WireFormatError(f"fill ts {ts!r} is not an int of seconds")
        ts_us = ts * 1_000_000
    fee_raw = d.get("fee_cost")
    return Fill(
        fill_id=str(fill_id),
        order_id=str(_field(d, "order_id")),
        client_order_id=str(d["client_order_id"]) if d.get("client_order_id") else None,
        market_id=str(ticker),
        side=Side.YES,
        order_side=_book_terms(d),
        price=Price.from_dollars(str(_field(d, "yes_price_dollars"))),
        quantity=Quantity.from_fp(str(_field(d, "count_fp"))),
        fee=_decimal(fee_raw, "fee_cost") if fee_raw not in (None, "") else Decimal(0),
        is_taker=bool(d.get("is_taker", False)),
        timestamp_us=ts_us,
    )


def position_from_wire(d: Mapping[str, Any]) -> Position:
    """A ``market_positions`` item (§5) → :class:`Position`: ``position_fp`` > 0 YES held, < 0 NO held.

    Kalshi does not send an average entry price, so ``avg_yes_price``/``avg_no_price`` are None.
    """
    net = _decimal(_field(d, "position_fp"), "position_fp")
    size = Quantity.from_decimal(abs(net))
    return Position(
        market_id=str(_field(d, "ticker")),
        yes=size if net > 0 else ZERO_QUANTITY,
        no=size if net < 0 else ZERO_QUANTITY,
    )


def balance_from_wire(d: Mapping[str, Any]) -> Balance:
    """``GET /portfolio/balance`` → :class:`Balance` (see the module docstring for ``total``)."""
    if d.get("balance_dollars") not in (None, ""):
        available = _decimal(d["balance_dollars"], "balance_dollars")
    else:
        cents = _field(d, "balance")
        if isinstance(cents, bool) or not isinstance(cents, int):
            raise WireFormatError(f"balance {cents!r} is not an int of cents")
        available = Decimal(cents) / _CENTS
    value = d.get("portfolio_value")
    total = available
    if isinstance(value, int) and not isinstance(value, bool):
        total += Decimal(value) / _CENTS
    return Balance(available=available, total=total)
