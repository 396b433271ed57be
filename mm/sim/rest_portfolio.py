"""Authenticated REST: portfolio reads and order writes (kalshi-api.md §4, §5, §7, §9, §14).

Every route goes through :meth:`mm.sim.rest.RestContext.authed` (auth, faults, rate limit, publish).

Reads: ``/portfolio/balance``, ``/portfolio/positions``, ``/portfolio/fills``, ``/portfolio/settlements``,
``/portfolio/orders`` and ``/portfolio/orders/{id}``, ``/account/limits``, queue positions
(``/portfolio/orders/{id}/queue_position``, ``/portfolio/orders/queue_positions``: contracts resting ahead of
the order at its price with earlier time priority; an unknown, another user's or a no-longer-resting order
is 404 ``not_found``, as a cancel of it is; the batch lists the user's resting orders in the markets given by
``market_tickers`` and/or ``event_ticker``, or in every market when neither is given). Orders read back
normalised to the YES book (§5): an ask is ``outcome_side "no"``, ``book_side "ask"``, with its YES price.

V2 writes (``/portfolio/events/orders``…): create (201), cancel, amend (``count`` = new total), decrease,
batched create (201) and batched cancel. Choices where the reference leaves room:

* ``time_in_force`` / ``self_trade_prevention_type`` are required by the spec but a missing one is accepted
  with the defaults a current client uses: ``good_till_canceled`` and ``maker``.
* ``reduce_only`` caps the count at the position the order reduces (bid: the NO position, ask: the YES
  position) and is refused (400 ``invalid_order``) when there is nothing to reduce; it is allowed with any TIF.
* ``expiration_time`` (Unix s) is refused with a non-GTC TIF and when not in the future. The order is cancelled
  when the market loop's step finds the time reached (:meth:`mm.sim.exchange.Exchange.expire_orders`).
* ``subaccount`` must be 0 and ``exchange_index`` 0 or -1 (neither is simulated); ``buy_max_cost_dollars`` and
  unknown keys are ignored. ``order_group_id`` must name one of the user's live groups (404 ``not_found``
  otherwise); a triggered group refuses orders with 400 ``order_group_triggered``.
* Amend: ``ticker``/``side``/``client_order_id``, when sent, must match the order (``order_ticker_mismatch``,
  ``order_side_mismatch``, ``order_id_and_client_order_id_mismatch``); a different
  ``updated_client_order_id`` is refused (the exchange cannot re-key client ids); a post-only amend that would
  cross is refused with 400 ``invalid_order`` (``POST_ONLY_CROSS``) and leaves the order unchanged. The ack's
  counts and averages are the order's totals.
* A post-only create that would cross, and a FOK that cannot fill, answer 201 with ``fill_count`` and
  ``remaining_count`` "0.00": the order exists and reads back ``canceled``.
* Legacy writes (``/portfolio/orders`` POST, DELETE, amend, decrease, batched) are authenticated and charged
  the legacy cost, then answer 400 ``deprecated_endpoint`` "Please switch to the V2 endpoints".

Order groups (``/portfolio/order_groups``, writes charged as writes, reads as reads): ``POST /create``
``{contracts_limit_fp}`` (a positive 2-dp count string; an integer ``contracts_limit`` is accepted too) → 201
``{order_group_id, subaccount: 0, exchange_index: 0}``; ``GET`` lists the user's live groups; ``GET /{id}``
answers ``orders`` = the ids of every order placed in the group (any status, oldest first); ``PUT
/{id}/trigger``, ``/reset``, ``/limit`` (``{contracts_limit_fp}``) and ``DELETE /{id}`` answer 200 ``{}``. Any
other user's or a deleted group is 404 ``not_found``; the ``trading_paused`` fault refuses the group writes
as it does order writes. See :mod:`mm.sim.exchange` for the trigger rules.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, Literal

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from mm.domain.price import PRICE_SCALE
from mm.sim.accounts import Account
from mm.sim.exchange import NewOrder, SimApiError
from mm.sim.types import BookSide, OrderStatus, SelfTradePrevention, SimOrder, TimeInForce, Trade
from mm.sim.wire import (
    body_object,
    count_str,
    flat_error,
    micros_cents,
    micros_str,
    millis,
    paginate,
    parse_count,
    parse_price,
    price_str,
    q_int,
    q_limit,
    q_list,
    q_str,
    rfc3339,
    seconds,
)

if TYPE_CHECKING:
    from mm.sim.rest import OrderFills, RestContext

__all__ = ["add_order_group_routes", "add_order_routes", "add_portfolio_routes", "order_json"]

_US_PER_S: Final = 1_000_000
_CLIENT_ID_RE: Final = re.compile(r"[-\w:+=/]{1,64}", re.ASCII)
_ORDER_STATUSES: Final = frozenset(s.value for s in OrderStatus)
_MAX_EVENT_TICKERS: Final = 10
_NULL_CREATE_ACK: Final = dict.fromkeys(
    ("order_id", "client_order_id", "fill_count", "remaining_count", "average_fill_price", "average_fee_paid", "ts_ms")
)


# --- JSON objects -------------------------------------------------------------------------------------------


def _outcome(side: BookSide) -> str:
    return "yes" if side is BookSide.BID else "no"


def order_json(ctx: RestContext, order: SimOrder) -> dict[str, Any]:
    """The Order object of §5, every required field present, normalised to the YES book."""
    fills = ctx.fills.order(order.order_id)
    skew = ctx.skew_ms
    outcome = _outcome(order.side)
    return {
        "order_id": order.order_id,
        "user_id": order.user_id,
        "client_order_id": order.client_order_id,
        "ticker": order.ticker,
        "outcome_side": outcome,
        "book_side": order.side.value,
        "side": outcome,
        "action": "buy",
        "type": "limit",
        "status": order.status.value,
        "yes_price_dollars": price_str(order.price),
        "no_price_dollars": price_str(PRICE_SCALE - order.price),
        "initial_count_fp": count_str(order.initial_count),
        "fill_count_fp": count_str(order.fill_count),
        "remaining_count_fp": count_str(order.remaining_count),
        "taker_fill_cost_dollars": price_str(order.taker_fill_cost),
        "maker_fill_cost_dollars": price_str(order.maker_fill_cost),
        "taker_fees_dollars": micros_str(fills.taker_fees),
        "maker_fees_dollars": micros_str(fills.maker_fees),
        "created_time": rfc3339(order.created_us, skew),
        "last_update_time": rfc3339(order.updated_us, skew),
        "expiration_time": rfc3339(order.expiration_s * _US_PER_S) if order.expiration_s is not None else None,
        "self_trade_prevention_type": order.stp.value,
        "order_group_id": order.order_group_id,
        "cancel_order_on_pause": ctx.cancel_on_pause.get(order.order_id, False),
        "subaccount_number": 0,
        "exchange_index": 0,
    }


def _fill_side(user_id: str, trade: Trade, taker: bool) -> tuple[str, BookSide]:
    """(order id, book side) of ``user_id``'s part in ``trade``."""
    if taker:
        return trade.taker_order_id, trade.taker_side
    return trade.maker_order_id, BookSide.ASK if trade.taker_side is BookSide.BID else BookSide.BID


def fill_json(ctx: RestContext, trade: Trade, taker: bool, fee: int, user_id: str) -> dict[str, Any]:
    order_id, side = _fill_side(user_id, trade, taker)
    order = ctx.state.exchange.orders.get(order_id)
    outcome = _outcome(side)
    return {
        "fill_id": trade.trade_id,
        "trade_id": trade.trade_id,
        "order_id": order_id,
        "client_order_id": order.client_order_id if order else "",
        "ticker": trade.ticker,
        "market_ticker": trade.ticker,
        "outcome_side": outcome,
        "book_side": side.value,
        "side": outcome,
        "action": "buy",
        "count_fp": count_str(trade.count),
        "yes_price_dollars": price_str(trade.price),
        "no_price_dollars": price_str(PRICE_SCALE - trade.price),
        "is_taker": taker,
        "fee_cost": micros_str(fee),
        "created_time": rfc3339(trade.ts_us, ctx.skew_ms),
        "ts": seconds(trade.ts_us, ctx.skew_ms),
        "subaccount_number": 0,
        "exchange_index": 0,
    }


def _average_price(fills: OrderFills) -> str | None:
    """Mean YES fill price, rounded half up to $0.0001; ``None`` before any fill."""
    if not fills.count:
        return None
    return price_str((2 * fills.value + fills.count) // (2 * fills.count))


def _average_fee(fills: OrderFills) -> str | None:
    """Mean fee per contract, rounded half up to $0.0001 (micro-dollars / (1/100 contract) = $0.0001 units)."""
    if not fills.count:
        return None
    fee = fills.taker_fees + fills.maker_fees
    return price_str((2 * fee + fills.count) // (2 * fills.count))


def _fill_ack(ctx: RestContext, order: SimOrder) -> dict[str, Any]:
    fills = ctx.fills.order(order.order_id)
    return {
        "order_id": order.order_id,
        "client_order_id": order.client_order_id,
        "fill_count": count_str(order.fill_count),
        "remaining_count": count_str(order.remaining_count),
        "average_fill_price": _average_price(fills),
        "average_fee_paid": _average_fee(fills),
        "ts_ms": millis(ctx.now_us(), ctx.skew_ms),
    }


# --- helpers ------------------------------------------------------------------------------------------------


def _account(ctx: RestContext, user_id: str) -> Account:
    return ctx.state.exchange.accounts.get(user_id) or Account(user_id, 0)


def _event_of(ctx: RestContext, ticker: str) -> str:
    market = ctx.state.exchange.markets.get(ticker)
    if market is not None:
        return market.event_ticker
    spec = ctx.state.markets.get(ticker)
    return spec.event_ticker if spec else ""


def _in_range(value_s: int, low: int | None, high: int | None) -> bool:
    return (low is None or value_s >= low) and (high is None or value_s <= high)


def _own_order(ctx: RestContext, user_id: str, order_id: str) -> SimOrder:
    order = ctx.state.exchange.orders.get(order_id)
    if order is None or order.user_id != user_id:
        raise SimApiError(404, "not_found", "order not found")
    return order


def _check_market_ticker(order: SimOrder, market_ticker: object) -> None:
    if market_ticker not in (None, "") and market_ticker != order.ticker:
        raise SimApiError(400, "order_ticker_mismatch", "market_ticker does not match the order's ticker")


def _optional_bool(body: Mapping[str, Any], name: str) -> bool:
    value = body.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise SimApiError(400, "invalid_parameters", f"{name} must be a boolean")
    return value


def _check_routing(body: Mapping[str, Any]) -> None:
    """``subaccount`` 0 and ``exchange_index`` 0/-1 only (neither is simulated)."""
    if body.get("subaccount") not in (None, 0):
        raise SimApiError(400, "invalid_parameters", "subaccounts are not simulated: subaccount must be 0")
    if body.get("exchange_index") not in (None, 0, -1):
        raise SimApiError(400, "invalid_parameters", "exchange_index must be 0 (or -1 to auto-route)")


def _check_query_routing(request: Request) -> None:
    q = request.query_params
    _check_routing({"subaccount": q_int(q, "subaccount"), "exchange_index": q_int(q, "exchange_index")})


def _enum(value: object, name: str, choices: type[TimeInForce] | type[SelfTradePrevention], default: str) -> Any:
    text = default if value is None else value
    try:
        return choices(text)
    except ValueError:
        allowed = " | ".join(c.value for c in choices)
        raise SimApiError(400, "invalid_order", f"{name} must be one of {allowed}") from None


def parse_create(ctx: RestContext, user_id: str, raw: object) -> tuple[NewOrder, bool]:
    """A CreateOrderV2 body (§5) → (:class:`NewOrder`, cancel_order_on_pause)."""
    body = body_object(raw)
    missing = [name for name in ("ticker", "side", "count", "price") if body.get(name) in (None, "")]
    if missing:
        raise SimApiError(400, "missing_parameters", f"missing required field(s): {', '.join(missing)}")
    ticker = body["ticker"]
    if not isinstance(ticker, str):
        raise SimApiError(400, "invalid_parameters", "ticker must be a string")
    side_text = body["side"]
    if side_text not in ("bid", "ask"):
        raise SimApiError(400, "invalid_order", "side must be bid or ask")
    side = BookSide(side_text)
    price = parse_price(body["price"])
    count = parse_count(body["count"])
    tif: TimeInForce = _enum(body.get("time_in_force"), "time_in_force", TimeInForce, "good_till_canceled")
    stp: SelfTradePrevention = _enum(
        body.get("self_trade_prevention_type"), "self_trade_prevention_type", SelfTradePrevention, "maker"
    )
    post_only = _optional_bool(body, "post_only")
    reduce_only = _optional_bool(body, "reduce_only")
    cancel_on_pause = _optional_bool(body, "cancel_order_on_pause")
    client_order_id = body.get("client_order_id") or ""
    if not isinstance(client_order_id, str) or (client_order_id and not _CLIENT_ID_RE.fullmatch(client_order_id)):
        raise SimApiError(400, "invalid_parameters", "client_order_id must be 1-64 characters of [-A-Za-z0-9_:+=/]")
    expiration = body.get("expiration_time")
    if expiration is not None:
        if not isinstance(expiration, int) or isinstance(expiration, bool):
            raise SimApiError(400, "invalid_order", "expiration_time must be Unix seconds (an integer)")
        if tif is not TimeInForce.GOOD_TILL_CANCELED:
            raise SimApiError(400, "invalid_order", "expiration_time is only allowed with good_till_canceled")
        if expiration <= ctx.now_us() // _US_PER_S:
            raise SimApiError(400, "invalid_order", "expiration_time is in the past")
    _check_routing(body)
    if reduce_only:
        position = _account(ctx, user_id).positions.get(ticker, 0)
        reducible = -position if side is BookSide.BID else position
        if reducible <= 0:
            raise SimApiError(400, "invalid_order", "reduce_only order would not reduce the position")
        count = min(count, reducible)
    group_id = body.get("order_group_id") or None
    if group_id is not None and not isinstance(group_id, str):
        raise SimApiError(400, "invalid_parameters", "order_group_id must be a string")
    order = NewOrder(ticker, side, price, count, client_order_id, tif, post_only, stp, expiration, group_id)
    return order, cancel_on_pause


def _create(ctx: RestContext, user_id: str, raw: object) -> dict[str, Any]:
    request, cancel_on_pause = parse_create(ctx, user_id, raw)
    order = ctx.state.exchange.create_order(user_id, request)
    if cancel_on_pause:
        ctx.cancel_on_pause[order.order_id] = True
    return _fill_ack(ctx, order)


def _cancel(ctx: RestContext, user_id: str, order_id: object, market_ticker: object = None) -> dict[str, Any]:
    if not isinstance(order_id, str) or not order_id:
        raise SimApiError(400, "missing_parameters", "order_id is required")
    _check_market_ticker(_own_order(ctx, user_id, order_id), market_ticker)
    order, reduced = ctx.state.exchange.cancel_order(user_id, order_id)
    return {
        "order_id": order.order_id,
        "client_order_id": order.client_order_id,
        "reduced_by": count_str(reduced),
        "ts_ms": millis(ctx.now_us(), ctx.skew_ms),
    }


def _amend(ctx: RestContext, user_id: str, order_id: str, raw: object) -> dict[str, Any]:
    body = body_object(raw)
    order = _own_order(ctx, user_id, order_id)
    missing = [name for name in ("price", "count") if body.get(name) in (None, "")]
    if missing:
        raise SimApiError(400, "missing_parameters", f"missing required field(s): {', '.join(missing)}")
    if body.get("ticker") not in (None, order.ticker):
        raise SimApiError(400, "order_ticker_mismatch", "ticker does not match the order's ticker")
    if body.get("side") not in (None, order.side.value):
        raise SimApiError(400, "order_side_mismatch", "side does not match the order's side")
    if body.get("client_order_id") not in (None, "", order.client_order_id):
        raise SimApiError(
            400, "order_id_and_client_order_id_mismatch", "client_order_id does not match the order's client_order_id"
        )
    if body.get("updated_client_order_id") not in (None, "", order.client_order_id):
        raise SimApiError(
            400, "invalid_parameters", "changing client_order_id on amend is not supported by the simulator"
        )
    if body.get("exchange_index") not in (None, 0, -1):
        raise SimApiError(400, "invalid_parameters", "exchange_index must be 0 (or -1 to auto-route)")
    price = parse_price(body["price"])
    total = parse_count(body["count"])
    before = (order.price, order.initial_count)
    amended = ctx.state.exchange.amend_order(user_id, order_id, price=price, total_count=total)
    if (price, total) != before and (amended.price, amended.initial_count) == before and amended.post_only:
        raise SimApiError(400, "invalid_order", "POST_ONLY_CROSS: the amended post-only order would take liquidity")
    return _fill_ack(ctx, amended)


def _decrease(ctx: RestContext, user_id: str, order_id: str, raw: object) -> dict[str, Any]:
    body = body_object(raw)
    order = _own_order(ctx, user_id, order_id)
    _check_market_ticker(order, body.get("market_ticker"))
    if body.get("exchange_index") not in (None, 0, -1):
        raise SimApiError(400, "invalid_parameters", "exchange_index must be 0 (or -1 to auto-route)")
    has_by, has_to = body.get("reduce_by") is not None, body.get("reduce_to") is not None
    if has_by == has_to:
        raise SimApiError(400, "invalid_parameters", "exactly one of reduce_by or reduce_to is required")
    reduce_by = parse_count(body["reduce_by"], "reduce_by") if has_by else None
    reduce_to = parse_count(body["reduce_to"], "reduce_to", allow_zero=True) if has_to else None
    decreased = ctx.state.exchange.decrease_order(user_id, order_id, reduce_by=reduce_by, reduce_to=reduce_to)
    return {
        "order_id": decreased.order_id,
        "client_order_id": decreased.client_order_id,
        "remaining_count": count_str(decreased.remaining_count),
        "ts_ms": millis(ctx.now_us(), ctx.skew_ms),
    }


def _batch_items(raw: object, key: str = "orders") -> list[Any]:
    body = body_object(raw)
    items = body.get(key)
    if not isinstance(items, list) or not items:
        raise SimApiError(400, "missing_parameters", f"{key} must be a non-empty list")
    return items


def _batch_create(ctx: RestContext, user_id: str, raw: object) -> Response:
    out: list[dict[str, Any]] = []
    for item in _batch_items(raw):
        try:
            out.append({**_create(ctx, user_id, item), "error": None})
        except SimApiError as exc:
            out.append({**_NULL_CREATE_ACK, "error": flat_error(exc.code, exc.message)})
    return JSONResponse({"orders": out}, status_code=201)


def _batch_cancel(ctx: RestContext, user_id: str, raw: object) -> dict[str, Any]:
    body = body_object(raw)
    if not isinstance(body.get("orders"), list) and isinstance(body.get("ids"), list):
        items: list[Any] = [{"order_id": i} for i in body["ids"]]
    else:
        items = _batch_items(body)
    out: list[dict[str, Any]] = []
    for item in items:
        try:
            if not isinstance(item, Mapping):
                raise SimApiError(400, "invalid_parameters", "each item must be an object with an order_id")
            _check_routing(item)
            out.append({**_cancel(ctx, user_id, item.get("order_id"), item.get("market_ticker")), "error": None})
        except SimApiError as exc:
            failed = {"order_id": None, "client_order_id": None, "reduced_by": count_str(0), "ts_ms": None}
            out.append({**failed, "error": flat_error(exc.code, exc.message)})
    return {"orders": out}


# --- reads --------------------------------------------------------------------------------------------------


def _portfolio_value(ctx: RestContext, account: Account) -> int:
    """Micro-dollars: settled/determined markets at their settlement value, else at the last trade price
    (YES at p, NO at 1 − p), else at cost."""
    total = 0
    for ticker, position in account.positions.items():
        if not position:
            continue
        market = ctx.state.exchange.markets.get(ticker)
        mark = None
        if market is not None:
            mark = market.settlement_value if market.settlement_value is not None else market.last_price
        if mark is None:
            total += account.cost_basis.get(ticker, 0)
        else:
            total += mark * position if position > 0 else (PRICE_SCALE - mark) * -position
    return total


def _balance(ctx: RestContext, user_id: str) -> dict[str, Any]:
    account = _account(ctx, user_id)
    available = account.available
    cents = micros_cents(available)
    return {
        "balance": cents,
        "balance_dollars": micros_str(available),
        "portfolio_value": micros_cents(_portfolio_value(ctx, account)),
        "updated_ts": seconds(ctx.now_us(), ctx.skew_ms),
        "balance_breakdown": [{"exchange_index": 0, "balance": cents, "balance_dollars": micros_str(available)}],
    }


def _positions(ctx: RestContext, user_id: str, request: Request) -> dict[str, Any]:
    q = request.query_params
    limit = q_limit(q, 100, 1000)
    ticker = q_str(q, "ticker")
    events = set(q_list(q, "event_ticker"))
    count_filter = set(q_list(q, "count_filter"))
    if count_filter - {"position", "total_traded"}:
        raise SimApiError(400, "invalid_parameters", "count_filter takes position and/or total_traded")
    account = _account(ctx, user_id)
    ctx.fills.sync()

    def keep(t: str) -> bool:
        if (ticker and t != ticker) or (events and _event_of(ctx, t) not in events):
            return False
        values = {"position": account.positions.get(t, 0), "total_traded": account.traded.get(t, 0)}
        wanted = count_filter or set(values)
        return any(values[name] for name in wanted)

    tickers = sorted(t for t in set(account.positions) | set(account.traded) if keep(t))
    page, cursor = paginate(tickers, lambda t: (t,), limit, q_str(q, "cursor"))

    def updated(t: str) -> str:
        last = max(ctx.fills.last_fill_us.get((user_id, t), 0), ctx.settled_us.get(t, 0)) or ctx.now_us()
        return rfc3339(last, ctx.skew_ms)

    market_positions = [
        {
            "ticker": t,
            "exchange_index": 0,
            "position_fp": count_str(account.positions.get(t, 0)),
            "market_exposure_dollars": micros_str(account.cost_basis.get(t, 0)),
            "total_traded_dollars": micros_str(account.traded.get(t, 0)),
            "realized_pnl_dollars": micros_str(account.realized_pnl.get(t, 0)),
            "fees_paid_dollars": micros_str(account.fees_paid.get(t, 0)),
            "last_updated_ts": updated(t),
        }
        for t in page
    ]
    # Event aggregates cover all of each listed event's (filtered) markets, not just this page's.
    page_events = sorted({_event_of(ctx, t) for t in page})
    event_positions = []
    for event in page_events:
        members = [t for t in tickers if _event_of(ctx, t) == event]
        exposure = sum(account.cost_basis.get(t, 0) for t in members)
        event_positions.append(
            {
                "event_ticker": event,
                "total_cost_dollars": micros_str(exposure),
                "total_cost_shares_fp": count_str(sum(abs(account.positions.get(t, 0)) for t in members)),
                "event_exposure_dollars": micros_str(exposure),
                "realized_pnl_dollars": micros_str(sum(account.realized_pnl.get(t, 0) for t in members)),
                "fees_paid_dollars": micros_str(sum(account.fees_paid.get(t, 0) for t in members)),
            }
        )
    return {"market_positions": market_positions, "event_positions": event_positions, "cursor": cursor}


def _fills(ctx: RestContext, user_id: str, request: Request) -> dict[str, Any]:
    q = request.query_params
    limit = q_limit(q, 100, 1000)
    ticker, order_id = q_str(q, "ticker"), q_str(q, "order_id")
    min_ts, max_ts = q_int(q, "min_ts"), q_int(q, "max_ts")
    ctx.fills.sync()
    all_fills = ctx.state.exchange.fills
    chosen = []
    for i in reversed(ctx.fills.by_user.get(user_id, [])):  # newest first
        _, trade, taker, _fee = all_fills[i]
        if (ticker and trade.ticker != ticker) or (order_id and _fill_side(user_id, trade, taker)[0] != order_id):
            continue
        if _in_range(trade.ts_us // _US_PER_S, min_ts, max_ts):
            chosen.append(i)
    page, cursor = paginate(chosen, lambda i: (-i,), limit, q_str(q, "cursor"))
    items = [fill_json(ctx, all_fills[i][1], all_fills[i][2], all_fills[i][3], user_id) for i in page]
    return {"fills": items, "cursor": cursor}


def _settlements(ctx: RestContext, user_id: str, request: Request) -> dict[str, Any]:
    """One row per finalized market the user held at settlement; the position and its cost are replayed
    from the user's fills there (the account clears them at payout)."""
    q = request.query_params
    limit = q_limit(q, 100, 1000)
    ticker, event = q_str(q, "ticker"), q_str(q, "event_ticker")
    min_ts, max_ts = q_int(q, "min_ts"), q_int(q, "max_ts")
    ctx.fills.sync()
    exchange = ctx.state.exchange
    replay: dict[str, Account] = {}
    for i in ctx.fills.by_user.get(user_id, []):
        _, trade, taker, fee = exchange.fills[i]
        market = exchange.markets.get(trade.ticker)
        if market is None or market.status != "finalized":
            continue
        side = _fill_side(user_id, trade, taker)[1]
        replay.setdefault(trade.ticker, Account(user_id, 0)).apply_fill(
            trade.ticker, side, trade.price, trade.count, fee
        )
    rows: list[tuple[int, str, dict[str, Any]]] = []
    for t, held in replay.items():
        market = exchange.markets[t]
        position, basis = held.positions.get(t, 0), held.cost_basis.get(t, 0)
        value = market.settlement_value
        if not position or value is None or (ticker and t != ticker) or (event and market.event_ticker != event):
            continue
        settled_us = ctx.settled_us.get(t, market.close_us)
        if not _in_range(settled_us // _US_PER_S, min_ts, max_ts):
            continue
        revenue = value * position if position > 0 else (PRICE_SCALE - value) * -position
        row = {
            "ticker": t,
            "exchange_index": 0,
            "event_ticker": market.event_ticker,
            "market_result": market.result,
            "yes_count_fp": count_str(max(position, 0)),
            "no_count_fp": count_str(max(-position, 0)),
            "yes_total_cost_dollars": micros_str(basis if position > 0 else 0),
            "no_total_cost_dollars": micros_str(basis if position < 0 else 0),
            "revenue": micros_cents(revenue),
            "value": value // 100,
            "fee_cost": micros_str(0),
            "settled_time": rfc3339(settled_us, ctx.skew_ms),
        }
        rows.append((settled_us, t, row))
    rows.sort(key=lambda r: (-r[0], r[1]))
    page, cursor = paginate(rows, lambda r: (-r[0], r[1]), limit, q_str(q, "cursor"))
    return {"settlements": [r[2] for r in page], "cursor": cursor}


def _orders(ctx: RestContext, user_id: str, request: Request) -> dict[str, Any]:
    q = request.query_params
    limit = q_limit(q, 100, 1000)
    ticker = q_str(q, "ticker")
    events = set(q_list(q, "event_ticker"))
    if len(events) > _MAX_EVENT_TICKERS:
        raise SimApiError(400, "invalid_parameters", f"at most {_MAX_EVENT_TICKERS} event tickers")
    status = q_str(q, "status")
    if status is not None and status not in _ORDER_STATUSES:
        raise SimApiError(400, "invalid_parameters", "status must be resting, canceled or executed")
    min_ts, max_ts = q_int(q, "min_ts"), q_int(q, "max_ts")
    all_orders = ctx.state.exchange.orders
    chosen = []
    for i, order_id in enumerate(ctx.orders.of(user_id)):
        order = all_orders.get(order_id)
        if order is None or (ticker and order.ticker != ticker):
            continue
        if (status and order.status.value != status) or (events and _event_of(ctx, order.ticker) not in events):
            continue
        if _in_range(order.created_us // _US_PER_S, min_ts, max_ts):
            chosen.append((i, order))
    chosen.reverse()  # newest first
    page, cursor = paginate(chosen, lambda it: (-it[0],), limit, q_str(q, "cursor"))
    return {"orders": [order_json(ctx, o) for _, o in page], "cursor": cursor}


def _queue_position(ctx: RestContext, user_id: str, order_id: str) -> dict[str, Any]:
    return {"queue_position_fp": count_str(ctx.state.exchange.queue_position(user_id, order_id))}


def _queue_positions(ctx: RestContext, user_id: str, request: Request) -> dict[str, Any]:
    q = request.query_params
    _check_query_routing(request)
    exchange = ctx.state.exchange
    tickers = set(q_list(q, "market_tickers"))
    event = q_str(q, "event_ticker")
    out = []
    for ticker, market in exchange.markets.items():
        if (tickers and ticker not in tickers) or (event and market.event_ticker != event):
            continue
        for order in sorted(market.engine.resting(user_id), key=lambda o: o.priority):
            out.append(
                {
                    "order_id": order.order_id,
                    "market_ticker": ticker,
                    "queue_position_fp": count_str(market.engine.queue_ahead(order.order_id)),
                }
            )
    return {"queue_positions": out}


def _limits(ctx: RestContext, user_id: str) -> dict[str, Any]:
    limits = ctx.state.limiter.limits(user_id)
    tier = ctx.state.limiter.tier_of(user_id)
    # read_limit / write_limit: the per-second ints a current client reads (§14), beside the documented buckets.
    return {**limits, "grants": [], "read_limit": tier.read_rate, "write_limit": tier.write_rate}


# --- order groups -------------------------------------------------------------------------------------------


def _group_limit(raw: object) -> int:
    body = body_object(raw)
    if body.get("contracts_limit_fp") not in (None, ""):
        return parse_count(body["contracts_limit_fp"], "contracts_limit_fp")
    if body.get("contracts_limit") is not None:
        return parse_count(body["contracts_limit"], "contracts_limit")
    raise SimApiError(400, "missing_parameters", "missing required field(s): contracts_limit_fp")


def _create_group(ctx: RestContext, user_id: str, raw: object) -> Response:
    limit = _group_limit(raw)
    _check_routing(body_object(raw))
    group_id = ctx.state.exchange.create_order_group(user_id, limit)
    return JSONResponse({"order_group_id": group_id, "subaccount": 0, "exchange_index": 0}, status_code=201)


def _list_groups(ctx: RestContext, user_id: str) -> dict[str, Any]:
    groups = ctx.state.exchange.order_groups(user_id)
    items = [
        {"id": g.group_id, "contracts_limit_fp": count_str(g.limit), "is_auto_cancel_enabled": True} for g in groups
    ]
    return {"order_groups": items}


def _get_group(ctx: RestContext, user_id: str, group_id: str) -> dict[str, Any]:
    group = ctx.state.exchange.get_order_group(user_id, group_id)
    return {
        "is_auto_cancel_enabled": True,
        "contracts_limit_fp": count_str(group.limit),
        "orders": list(group.order_ids),
    }


def add_order_group_routes(router: APIRouter, ctx: RestContext) -> None:
    base = "/portfolio/order_groups"
    exchange = ctx.state.exchange

    @router.post(f"{base}/create")
    async def create_group(request: Request) -> Response:
        return await ctx.authed(request, lambda user, body: _create_group(ctx, user, body), kind="write")

    @router.get(base)
    async def list_groups(request: Request) -> Response:
        return await ctx.authed(request, lambda user, _b: _list_groups(ctx, user))

    @router.get(f"{base}/{{group_id}}")
    async def get_group(group_id: str, request: Request) -> Response:
        return await ctx.authed(request, lambda user, _b: _get_group(ctx, user, group_id))

    @router.put(f"{base}/{{group_id}}/trigger")
    async def trigger(group_id: str, request: Request) -> Response:
        def handle(user: str, _body: object) -> dict[str, Any]:
            exchange.trigger_order_group(user, group_id)
            return {}

        return await ctx.authed(request, handle, kind="write")

    @router.put(f"{base}/{{group_id}}/reset")
    async def reset(group_id: str, request: Request) -> Response:
        def handle(user: str, _body: object) -> dict[str, Any]:
            exchange.reset_order_group(user, group_id)
            return {}

        return await ctx.authed(request, handle, kind="write")

    @router.put(f"{base}/{{group_id}}/limit")
    async def limit(group_id: str, request: Request) -> Response:
        def handle(user: str, body: object) -> dict[str, Any]:
            exchange.get_order_group(user, group_id)  # 404 before a body error
            exchange.set_order_group_limit(user, group_id, _group_limit(body))
            return {}

        return await ctx.authed(request, handle, kind="write")

    @router.delete(f"{base}/{{group_id}}")
    async def delete(group_id: str, request: Request) -> Response:
        def handle(user: str, _body: object) -> dict[str, Any]:
            exchange.delete_order_group(user, group_id)
            return {}

        return await ctx.authed(request, handle, kind="write")


# --- routes -------------------------------------------------------------------------------------------------

Read = Callable[[str, Request], Mapping[str, Any]]


def add_portfolio_routes(router: APIRouter, ctx: RestContext) -> None:
    def read(path: str, handler: Read) -> None:
        async def endpoint(request: Request) -> Response:
            return await ctx.authed(request, lambda user, _body: handler(user, request))

        router.add_api_route(path, endpoint, methods=["GET"])

    read("/portfolio/balance", lambda user, _r: _balance(ctx, user))
    read("/portfolio/positions", lambda user, r: _positions(ctx, user, r))
    read("/portfolio/fills", lambda user, r: _fills(ctx, user, r))
    read("/portfolio/settlements", lambda user, r: _settlements(ctx, user, r))
    read("/portfolio/orders", lambda user, r: _orders(ctx, user, r))
    read("/account/limits", lambda user, _r: _limits(ctx, user))
    read("/portfolio/orders/queue_positions", lambda user, r: _queue_positions(ctx, user, r))

    @router.get("/portfolio/orders/{order_id}/queue_position")
    async def queue_position(order_id: str, request: Request) -> Response:
        return await ctx.authed(request, lambda user, _b: _queue_position(ctx, user, order_id))

    @router.get("/portfolio/orders/{order_id}")
    async def get_order(order_id: str, request: Request) -> Response:
        return await ctx.authed(request, lambda user, _b: {"order": order_json(ctx, _own_order(ctx, user, order_id))})

    add_order_group_routes(router, ctx)


def add_order_routes(router: APIRouter, ctx: RestContext) -> None:
    base = "/portfolio/events/orders"

    # Batched routes first: "/batched" would otherwise match "/{order_id}".
    @router.post(f"{base}/batched")
    async def batch_create(request: Request) -> Response:
        return await ctx.authed(
            request, lambda user, body: _batch_create(ctx, user, body), kind="write", batch="create"
        )

    @router.delete(f"{base}/batched")
    async def batch_cancel(request: Request) -> Response:
        return await ctx.authed(
            request, lambda user, body: _batch_cancel(ctx, user, body), kind="write", batch="cancel"
        )

    @router.post(base)
    async def create(request: Request) -> Response:
        def handle(user: str, body: object) -> Response:
            return JSONResponse(_create(ctx, user, body), status_code=201)

        return await ctx.authed(request, handle, kind="write")

    @router.delete(f"{base}/{{order_id}}")
    async def cancel(order_id: str, request: Request) -> Response:
        def handle(user: str, _body: object) -> dict[str, Any]:
            _check_query_routing(request)
            return _cancel(ctx, user, order_id, q_str(request.query_params, "market_ticker"))

        return await ctx.authed(request, handle, kind="write")

    @router.post(f"{base}/{{order_id}}/amend")
    async def amend(order_id: str, request: Request) -> Response:
        def handle(user: str, body: object) -> dict[str, Any]:
            _check_query_routing(request)
            return _amend(ctx, user, order_id, body)

        return await ctx.authed(request, handle, kind="write")

    @router.post(f"{base}/{{order_id}}/decrease")
    async def decrease(order_id: str, request: Request) -> Response:
        def handle(user: str, body: object) -> dict[str, Any]:
            _check_query_routing(request)
            return _decrease(ctx, user, order_id, body)

        return await ctx.authed(request, handle, kind="write")

    # Legacy writes: authenticated and charged (10x), then refused.
    def refuse(_user: str, _body: object) -> dict[str, Any]:
        raise AssertionError("the gate answers legacy writes before any handler runs")  # pragma: no cover

    def legacy(path: str, method: str, batch: Literal["create", "cancel"] | None = None) -> None:
        async def endpoint(request: Request) -> Response:
            return await ctx.authed(request, refuse, kind="legacy", batch=batch)

        router.add_api_route(path, endpoint, methods=[method])

    legacy("/portfolio/orders/batched", "POST", "create")
    legacy("/portfolio/orders/batched", "DELETE", "cancel")
    legacy("/portfolio/orders", "POST")
    legacy("/portfolio/orders/{order_id}", "DELETE")
    legacy("/portfolio/orders/{order_id}/amend", "POST")
    legacy("/portfolio/orders/{order_id}/decrease", "POST")
