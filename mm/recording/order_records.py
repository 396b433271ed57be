"""Orders and fills as session records carry them, and back (FR-901/902).

The node writes an order's full state wherever a replay has to rebuild it exactly — ``order_update``, the
``order_result`` of an amend, the open orders of a ``state_snapshot`` — with :func:`order_payload`; the replay
adapter reads them back with :func:`order_from_payload` and the recorded ``fill`` with :func:`fill_from_payload`.
Exact units throughout: prices $0.0001, sizes 1/100 contract, times UTC µs, the fee a decimal string.

Older recordings (before these fields were written) lack the order's request fields; :func:`order_from_payload`
then takes them from ``known`` — the same order as the replay last knew it (from its ack) — in YES-book terms,
which is how a venue reports an order it streams back (Kalshi ``user_order``).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from mm.domain.orders import Fill, Order, OrderRequest, OrderStatus
from mm.domain.price import Price, Quantity
from mm.domain.sides import BookSide, OrderSide, Side, TimeInForce

__all__ = ["fill_from_payload", "order_from_payload", "order_payload", "request_from_payload", "request_payload"]


def request_payload(request: OrderRequest) -> dict[str, Any]:
    return {
        "client_order_id": request.client_order_id,
        "side": request.side.value,
        "order_side": request.order_side.value,
        "price_units": request.price.units,
        "size_units": request.quantity.units,
        "time_in_force": request.time_in_force.value,
        "post_only": request.post_only,
        "reduce_only": request.reduce_only,
    }


def order_payload(order: Order) -> dict[str, Any]:
    """Everything :class:`Order` holds (``remaining_units`` is derived, written for readers of the file)."""
    return {
        **request_payload(order.request),
        "exchange_order_id": order.exchange_order_id,
        "status": order.status.value,
        "filled_units": order.filled.units,
        "remaining_units": order.remaining.units,
        "created_us": order.created_us,
        "updated_us": order.updated_us,
        "reject_reason": order.reject_reason,
    }


def request_from_payload(market_id: str, data: Mapping[str, Any]) -> OrderRequest:
    """An :class:`OrderRequest` from ``order_sent`` / :func:`request_payload` fields; ValueError when unreadable."""
    try:
        return OrderRequest(
            market_id=market_id,
            side=Side(data["side"]),
            order_side=OrderSide(data["order_side"]),
            price=Price(int(data["price_units"])),
            quantity=Quantity(int(data["size_units"])),
            client_order_id=str(data["client_order_id"]),
            time_in_force=TimeInForce(data.get("time_in_force", TimeInForce.GOOD_TILL_CANCELED.value)),
            post_only=bool(data.get("post_only", True)),
            reduce_only=bool(data.get("reduce_only", False)),
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"an order record without a readable {exc}") from None


def order_from_payload(market_id: str, data: Mapping[str, Any], known: Order | None = None) -> Order:
    """An :class:`Order` as recorded. Without the request fields (an older recording), the request is ``known``'s
    in YES-book terms with the recorded price and size; ValueError when neither is there."""
    if "side" in data and "order_side" in data:
        request = request_from_payload(market_id, data)
    elif known is not None:
        book, _ = known.request.yes_book()
        request = OrderRequest(
            market_id=market_id,
            side=Side.YES,
            order_side=OrderSide.BUY if book is BookSide.BID else OrderSide.SELL,
            price=Price(int(data["price_units"])),
            quantity=Quantity(int(data["size_units"])),
            client_order_id=str(data.get("client_order_id") or known.client_order_id),
        )
    else:
        raise ValueError(f"order {data.get('exchange_order_id')!r}: its side is not recorded and was never sent")
    created = data.get("created_us")
    updated = data.get("updated_us", data.get("venue_ts_us"))
    fallback = known.created_us if known is not None else 0
    return Order(
        request=request,
        status=OrderStatus(data["status"]),
        created_us=int(created) if created is not None else fallback,
        updated_us=int(updated) if updated is not None else fallback,
        exchange_order_id=data.get("exchange_order_id"),
        filled=Quantity(int(data.get("filled_units", 0))),
        reject_reason=data.get("reject_reason"),
    )


def fill_from_payload(market_id: str, data: Mapping[str, Any]) -> Fill:
    """A recorded ``fill`` as the :class:`Fill` the node booked; ValueError when unreadable."""
    try:
        fee = Decimal(str(data["fee"]))
    except InvalidOperation:
        raise ValueError(f"fill {data.get('fill_id')!r}: fee {data.get('fee')!r} is not a decimal") from None
    try:
        return Fill(
            fill_id=str(data["fill_id"]),
            order_id=str(data["order_id"]),
            client_order_id=data.get("client_order_id"),
            market_id=market_id,
            side=Side(data["side"]),
            order_side=OrderSide(data["order_side"]),
            price=Price(int(data["price_units"])),
            quantity=Quantity(int(data["size_units"])),
            fee=fee,
            is_taker=bool(data.get("is_taker", False)),
            timestamp_us=int(data["venue_ts_us"]),
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"fill {data.get('fill_id')!r}: no readable {exc}") from None
