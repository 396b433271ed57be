"""The audit trail in the logs (NFR-302, NFR-401): every order action, the exchange's answer, every fill.

One logger, ``mm.audit``; every line carries ``audit=true`` and the order's correlation id (its client order id,
or the exchange order id when that is all a call has), plus whatever the context binds — the reconcile's
``reconcile_id`` and ``resource`` (:mod:`mm.controller.manager` binds them around each reconcile). The database
keeps the same facts as rows (orders, fills); the log is what ships to CloudWatch and is searched first.

Prices are logged as exact decimal strings in dollars, quantities in contracts; never floats.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mm.adapters.errors import ExchangeError
from mm.domain.orders import Fill, Order, OrderRequest
from mm.observability.logging import get_logger

__all__ = ["log_answer", "log_call", "log_cancels", "log_fill", "log_order_update"]

_log = get_logger("mm.audit")


def _request(request: OrderRequest) -> dict[str, Any]:
    return {
        "order": request.client_order_id,
        "market": request.market_id,
        "side": request.side.value,
        "action": request.order_side.value,
        "price": str(request.price.to_decimal()),
        "quantity": str(request.quantity.to_decimal()),
        "tif": request.time_in_force.value,
        "post_only": request.post_only,
        "reduce_only": request.reduce_only,
    }


def log_call(action: str, *, order_id: str | None = None, requests: Sequence[OrderRequest] = (), **fields: Any) -> None:
    """An order action about to be sent (``create``, ``cancel``, ``amend``, ``decrease``)."""
    if requests:
        for request in requests:
            _log.info("order_action", audit=True, call=action, **_request(request), **fields)
    else:
        _log.info("order_action", audit=True, call=action, order=order_id, **fields)


def log_answer(action: str, answer: Any, *, order_id: str | None = None, **fields: Any) -> None:
    """The exchange's answer to one call: an order, a list of per-item results, or an error."""
    if isinstance(answer, ExchangeError):
        _log.warning("order_answer", audit=True, call=action, order=order_id, error=str(answer), **fields)
    elif isinstance(answer, Order):
        _log.info("order_answer", audit=True, call=action, **_order(answer), **fields)
    elif isinstance(answer, list):
        for item in answer:
            if isinstance(item, Order):
                _log.info("order_answer", audit=True, call=action, **_order(item), **fields)
            elif isinstance(item, ExchangeError):
                _log.warning("order_answer", audit=True, call=action, order=order_id, error=str(item), **fields)
            else:  # None: a cancel that succeeded
                _log.info("order_answer", audit=True, call=action, order=order_id, ok=True, **fields)
    else:
        _log.info("order_answer", audit=True, call=action, order=order_id, ok=True, **fields)


def log_cancels(ids: Sequence[str], results: Sequence[ExchangeError | None] | None, reason: str) -> None:
    """A node-level batch cancel (kill switch, shutdown, rollback): each order's action and answer; ``results``
    None when the call itself failed (logged by the caller)."""
    for index, order_id in enumerate(ids):
        log_call("cancel", order_id=order_id, reason=reason)
        if results is not None and index < len(results):
            log_answer("cancel", results[index], order_id=order_id, reason=reason)


def _order(order: Order) -> dict[str, Any]:
    return {
        "order": order.client_order_id,
        "exchange_order_id": order.exchange_order_id,
        "market": order.request.market_id,
        "status": order.status.value,
        "price": str(order.request.price.to_decimal()),
        "remaining": str(order.remaining.to_decimal()),
    }


def log_order_update(order: Order, execution: str) -> None:
    """An order's state as the venue's stream reports it (resting, cancelled, executed)."""
    _log.info("order_update", audit=True, execution=execution, **_order(order))


def log_fill(fill: Fill, execution: str) -> None:
    _log.info(
        "fill",
        audit=True,
        execution=execution,
        order=fill.client_order_id or fill.order_id,
        fill_id=fill.fill_id,
        market=fill.market_id,
        side=fill.side.value,
        action=fill.order_side.value,
        price=str(fill.price.to_decimal()),
        quantity=str(fill.quantity.to_decimal()),
        fee=str(fill.fee),
        taker=fill.is_taker,
        ts_us=fill.timestamp_us,
    )
