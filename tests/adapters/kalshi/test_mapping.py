"""Wire ↔ domain mapping on hand-written objects shaped like kalshi-api.md §5."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from mm.adapters.kalshi.mapping import (
    SentTerms,
    WireFormatError,
    balance_from_wire,
    fill_from_wire,
    order_from_wire,
    order_request_body,
    parse_rfc3339_us,
    position_from_wire,
)
from mm.clock import datetime_to_us
from mm.domain.orders import OrderRequest, OrderStatus
from mm.domain.price import Price, Quantity
from mm.domain.sides import OrderSide, Side, TimeInForce

TICKER = "KXBTCD-26AUG1317-T73249.99"


def wire_order(**over: Any) -> dict[str, Any]:
    order: dict[str, Any] = {
        "order_id": "ord-1",
        "user_id": "u",
        "client_order_id": "cid-1",
        "ticker": TICKER,
        "outcome_side": "no",
        "book_side": "ask",
        "side": "no",
        "action": "buy",
        "type": "limit",
        "status": "resting",
        "yes_price_dollars": "0.9900",
        "no_price_dollars": "0.0100",
        "initial_count_fp": "10.00",
        "fill_count_fp": "0.00",
        "remaining_count_fp": "10.00",
        "taker_fill_cost_dollars": "0.0000",
        "maker_fill_cost_dollars": "0.0000",
        "taker_fees_dollars": "0.0000",
        "maker_fees_dollars": "0.0000",
        "created_time": "2026-08-13T20:30:00.123456Z",
        "last_update_time": "2026-08-13T20:31:00Z",
        "expiration_time": None,
        "self_trade_prevention_type": "maker",
    }
    order.update(over)
    return order


def request(side: Side, order_side: OrderSide, price: str, **kw: Any) -> OrderRequest:
    return OrderRequest(TICKER, side, order_side, Price.from_dollars(price), Quantity.from_decimal("3.5"), "cid", **kw)


def test_order_request_body_buy_yes() -> None:
    body = order_request_body(request(Side.YES, OrderSide.BUY, "0.56"))
    assert body == {
        "ticker": TICKER,
        "client_order_id": "cid",
        "side": "bid",
        "price": "0.5600",
        "count": "3.50",
        "time_in_force": "good_till_canceled",
        "self_trade_prevention_type": "maker",
        "post_only": True,
    }


def test_order_request_body_buy_no_is_a_yes_ask_at_the_complement() -> None:
    req = request(
        Side.NO, OrderSide.BUY, "0.01", post_only=False, reduce_only=True, time_in_force=TimeInForce.IMMEDIATE_OR_CANCEL
    )
    body = order_request_body(req, stp="taker_at_cross")
    assert body["side"] == "ask" and body["price"] == "0.9900"
    assert body["time_in_force"] == "immediate_or_cancel" and body["self_trade_prevention_type"] == "taker_at_cross"
    assert "post_only" not in body and body["reduce_only"] is True


def test_sell_no_is_a_yes_bid() -> None:
    body = order_request_body(request(Side.NO, OrderSide.SELL, "0.3000"))
    assert body["side"] == "bid" and body["price"] == "0.7000"


def test_order_from_wire_resting_in_yes_terms() -> None:
    order = order_from_wire(wire_order())
    assert order.status is OrderStatus.OPEN
    assert order.request.side is Side.YES and order.request.order_side is OrderSide.SELL
    assert order.request.price == Price.from_dollars("0.99") and order.request.quantity == Quantity.contracts(10)
    assert order.exchange_order_id == "ord-1" and order.client_order_id == "cid-1"
    assert order.created_us == datetime_to_us(datetime(2026, 8, 13, 20, 30, 0, 123456, tzinfo=UTC))
    assert order.updated_us == datetime_to_us(datetime(2026, 8, 13, 20, 31, tzinfo=UTC))


def test_order_from_wire_terms_are_the_venues_else_the_ones_sent_else_defaults() -> None:
    sent = SentTerms(TimeInForce.IMMEDIATE_OR_CANCEL, True, True)
    unknown = order_from_wire(wire_order()).request  # an order we never sent: the defaults
    assert (unknown.time_in_force, unknown.post_only, unknown.reduce_only) == (
        TimeInForce.GOOD_TILL_CANCELED,
        False,
        False,
    )
    ours = order_from_wire(wire_order(), sent).request  # the venue does not report them: the ones sent
    assert (ours.time_in_force, ours.post_only, ours.reduce_only) == tuple(sent)
    reported = order_from_wire(wire_order(time_in_force="fill_or_kill", post_only=False, reduce_only=False), sent)
    assert (reported.request.time_in_force, reported.request.post_only, reported.request.reduce_only) == (
        TimeInForce.FILL_OR_KILL,
        False,
        False,
    )


@pytest.mark.parametrize(
    ("status", "filled", "expected"),
    [
        ("resting", "2.50", OrderStatus.PARTIALLY_FILLED),
        ("executed", "10.00", OrderStatus.FILLED),
        ("canceled", "0.00", OrderStatus.CANCELLED),
        ("canceled", "4.00", OrderStatus.CANCELLED),
    ],
)
def test_order_status_mapping(status: str, filled: str, expected: OrderStatus) -> None:
    order = order_from_wire(
        wire_order(status=status, fill_count_fp=filled, book_side="bid", yes_price_dollars="0.5600")
    )
    assert order.status is expected and order.filled == Quantity.from_fp(filled)
    assert order.request.order_side is OrderSide.BUY


def test_order_with_empty_client_order_id_and_bad_status() -> None:
    assert order_from_wire(wire_order(client_order_id="")).client_order_id == "ord-1"
    with pytest.raises(WireFormatError):
        order_from_wire(wire_order(status="pending"))
    with pytest.raises(WireFormatError):
        order_from_wire(wire_order(book_side="middle"))


def test_fill_from_wire() -> None:
    fill = fill_from_wire(
        {
            "fill_id": "t-9",
            "trade_id": "t-9",
            "ticker": TICKER,
            "market_ticker": TICKER,
            "order_id": "ord-1",
            "outcome_side": "no",
            "book_side": "ask",
            "side": "no",
            "action": "buy",
            "count_fp": "2.50",
            "yes_price_dollars": "0.4200",
            "no_price_dollars": "0.5800",
            "is_taker": True,
            "fee_cost": "0.0123",
            "created_time": "2026-08-13T20:30:05Z",
            "ts": 1786653005,
        }
    )
    assert fill.fill_id == "t-9" and fill.order_id == "ord-1" and fill.market_id == TICKER
    assert (fill.side, fill.order_side) == (Side.YES, OrderSide.SELL)
    assert fill.price == Price.from_dollars("0.42") and fill.quantity == Quantity.from_decimal("2.5")
    assert fill.fee == Decimal("0.0123") and isinstance(fill.fee, Decimal)
    assert fill.is_taker is True and fill.inventory_delta_units == -250
    assert fill.timestamp_us == datetime_to_us(datetime(2026, 8, 13, 20, 30, 5, tzinfo=UTC))


def test_fill_falls_back_to_ts_seconds() -> None:
    fill = fill_from_wire(
        {
            "trade_id": "t",
            "ticker": TICKER,
            "order_id": "o",
            "book_side": "bid",
            "count_fp": "1.00",
            "yes_price_dollars": "0.5000",
            "is_taker": False,
            "fee_cost": "0.0000",
            "ts": 1786653005,
        }
    )
    assert fill.timestamp_us == 1786653005 * 1_000_000 and fill.order_side is OrderSide.BUY


@pytest.mark.parametrize(
    ("fp", "yes", "no"),
    [("12.50", "12.50", "0.00"), ("-3.00", "0.00", "3.00"), ("0.00", "0.00", "0.00")],
)
def test_position_from_wire(fp: str, yes: str, no: str) -> None:
    position = position_from_wire(
        {
            "ticker": TICKER,
            "exchange_index": 0,
            "position_fp": fp,
            "market_exposure_dollars": "1.0000",
            "total_traded_dollars": "2.0000",
            "realized_pnl_dollars": "0.0000",
            "fees_paid_dollars": "0.0100",
            "last_updated_ts": "2026-08-13T20:30:05Z",
        }
    )
    assert position.market_id == TICKER
    assert position.yes == Quantity.from_fp(yes) and position.no == Quantity.from_fp(no)
    assert position.avg_yes_price is None and position.avg_no_price is None


def test_balance_from_wire() -> None:
    balance = balance_from_wire(
        {"balance": 1_000_050, "balance_dollars": "10000.5012", "portfolio_value": 2_550, "updated_ts": 1786653005}
    )
    assert balance.available == Decimal("10000.5012") and balance.total == Decimal("10026.0012")
    only_cents = balance_from_wire({"balance": 12_345})
    assert only_cents.available == Decimal("123.45") == only_cents.total


def test_parse_rfc3339_offsets() -> None:
    assert parse_rfc3339_us("2026-08-13T16:30:00-04:00") == parse_rfc3339_us("2026-08-13T20:30:00Z")
    with pytest.raises(WireFormatError):
        parse_rfc3339_us("yesterday")
