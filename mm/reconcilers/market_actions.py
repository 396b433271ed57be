"""The Market reconciler's *act* step: send the planned cancels, amends, decreases and places through the
account's adapter (and so through the venue rate limiter, cancels first), keep the order tracker current from
the answers, and feed the reject-rate kill trigger; and carry out a deleted Market's deletion policy
(``cancel_orders``, ``flatten`` with an IOC reduce-only order, ``orphan``).

A create that timed out is recorded as *unknown*, never assumed rejected; the Exchange reconciler settles it by
client order id. Rate limiting and an unavailable venue become ``TransientError`` (the key is retried).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mm.adapters.base import ExchangeAdapter
from mm.adapters.errors import ExchangeError, ExchangeUnavailableError, OrderNotFoundError, RateLimitedError
from mm.controller.errors import TransientError
from mm.controller.node import Account, ExchangeConnection
from mm.domain.orders import Order, OrderRequest
from mm.domain.price import Price, Quantity
from mm.domain.sides import OrderSide, Side, TimeInForce
from mm.reconcilers.client_ids import Level, make_client_order_id
from mm.reconcilers.market_recording import record_actions, record_results
from mm.reconcilers.order_plan import Amend, Cancel, Decrease, OrderPlan, Place
from mm.state.records import OrderRecord

if TYPE_CHECKING:
    from mm.reconcilers.market import MarketReconciler, MarketRuntime

__all__ = ["act", "carry_out_deletion"]


async def act(
    reconciler: MarketReconciler, name: str, plan: OrderPlan, runtime: MarketRuntime, account: Account
) -> None:
    if plan.is_empty:
        return
    node = reconciler.node
    adapter = account.adapter
    tracker = account.tracker
    cancels = [a for a in plan.actions if isinstance(a, Cancel) and a.order_id]
    changes = [a for a in plan.actions if isinstance(a, Amend | Decrease)]
    places = [a for a in plan.actions if isinstance(a, Place)]
    try:
        recorder = node.recorder
        ticker = runtime.subscribed[1] if runtime.subscribed is not None else ""
        if recorder is not None:
            record_actions(recorder, ticker, plan)
        if cancels:
            ids = [a.order_id for a in cancels if a.order_id]
            results = await adapter.cancel_orders(ids)
            for order_id, error in zip(ids, results, strict=False):
                if error is None or isinstance(error, OrderNotFoundError):
                    tracker.cancelled(order_id)
                else:
                    node.event(f"Market/{name}", "CancelFailed", f"{order_id}: {error}", warning=True)
            runtime.cancels_sent += len(ids)
        for change in changes:
            await _change(reconciler, name, adapter, account, change)
        if places:
            for place in places:
                tracker.sent(place.request, node.clock.now_us())
                runtime.attempts[place.level] = place.attempt + 1
            sent_ns = node.wall.monotonic_ns()
            placed = await adapter.place_orders([p.request for p in places])
            if node.metrics is not None:
                latency_s = (node.wall.monotonic_ns() - sent_ns) / 1e9
                node.metrics.order_latency.labels(market=places[0].request.market_id).observe(latency_s)
            if recorder is not None:
                record_results(recorder, ticker, places, placed)
            for place, result in zip(places, placed, strict=False):
                if isinstance(result, Order):
                    tracker.acked(result)
                    node.record(OrderRecord(result))
                elif isinstance(result, ExchangeUnavailableError):
                    tracker.outcome_unknown(place.request.client_order_id)
                    node.event(f"Market/{name}", "OrderOutcomeUnknown", str(result), warning=True)
                else:
                    tracker.failed(place.request.client_order_id)
                    node.event(f"Market/{name}", "OrderRejected", f"{place.request.client_order_id}: {result}")
                if reconciler.node.metrics is not None:
                    status = "accepted" if isinstance(result, Order) else "rejected"
                    reconciler.node.metrics.orders.labels(
                        market=place.request.market_id, side=place.request.order_side.value, status=status
                    ).inc()
            runtime.orders_sent += len(places)
            node.orders_sent += len(places)
            breach = node.note_order_results(
                (not isinstance(r, Order) for r in placed), runtime.risk_policy.kill_switch
            )
            if breach is not None and node.kill is not None and runtime.risk_policy.kill_switch.enabled:
                await node.kill(breach, "rule")
    except RateLimitedError as exc:
        raise TransientError(f"rate limited: {exc}", delay_s=1.0) from exc
    except ExchangeUnavailableError as exc:
        for place in places:
            tracker.outcome_unknown(place.request.client_order_id)
        raise TransientError(f"exchange unavailable: {exc}") from exc
    if not plan.deferred:
        runtime.last_update_us = node.clock.now_us()


async def _change(
    reconciler: MarketReconciler, name: str, adapter: ExchangeAdapter, account: Account, change: Amend | Decrease
) -> None:
    try:
        if isinstance(change, Decrease):
            await adapter.decrease_order(change.order_id, reduce_to=change.reduce_to)
            current = account.tracker.get(change.order_id)
            if current is not None and change.reduce_to < current.remaining:
                account.tracker.update(current.decreased(change.reduce_to, reconciler.node.clock.now_us()))
            return
        amended = await adapter.amend_order(change.order_id, price=change.price, quantity=change.quantity)
        account.tracker.update(amended)
        reconciler.node.record(OrderRecord(amended))
    except OrderNotFoundError:
        account.tracker.cancelled(change.order_id)
    except (ExchangeUnavailableError, RateLimitedError):
        raise
    except ExchangeError as exc:
        # Typically the order filled or was cancelled meanwhile, or a post-only amend would cross: do not
        # guess — drop our copy (the venue's update or the next resync restores it) and cancel it if it rests.
        reconciler.node.event(f"Market/{name}", "AmendFailed", f"{change.order_id}: {exc}")
        results = await adapter.cancel_orders([change.order_id])
        if results and (results[0] is None or isinstance(results[0], OrderNotFoundError)):
            account.tracker.cancelled(change.order_id)


async def carry_out_deletion(reconciler: MarketReconciler, name: str) -> None:
    """Carry out the deleted Market's ``deletion_policy`` (remembered from its last spec): ``cancel_orders``
    cancels its orders; ``flatten`` also closes the position with an IOC reduce-only order at the best
    opposite price; ``orphan`` leaves both at the venue (reported)."""
    runtime: MarketRuntime | None = reconciler.node.market_state.pop(name, None)
    if runtime is None or runtime.subscribed is None:
        return
    exchange, ticker = runtime.subscribed
    conn = reconciler.node.exchanges.get(exchange)
    if conn is None:
        return
    policy = runtime.deletion_policy
    others = [k for k in reconciler.node.markets_trading(exchange, ticker) if k != f"Market/{name}"]
    if policy == "orphan" or others:
        why = "deletion policy orphan" if policy == "orphan" else f"{ticker} is still traded by {others}"
        reconciler.node.event(f"Market/{name}", "Deleted", f"orders and position of {ticker} left alone: {why}")
        return
    for account in conn.accounts.values():
        mine = account.tracker.open_orders(ticker)
        if mine:
            results = await account.adapter.cancel_orders([o.exchange_order_id or "" for o in mine])
            for order, error in zip(mine, results, strict=False):
                if error is None or isinstance(error, OrderNotFoundError):
                    account.tracker.cancelled(order.exchange_order_id or "")
        if policy == "flatten":
            await _flatten(reconciler, name, conn, account, ticker)
    await conn.venue.unsubscribe_market(ticker)
    reconciler.node.event(f"Market/{name}", "Deleted", f"{policy}: orders of {ticker} cancelled")
    if reconciler.node.recorder is not None:
        reconciler.node.recorder.end_market(ticker, f"Market/{name} deleted")


async def _flatten(
    reconciler: MarketReconciler, name: str, conn: ExchangeConnection, account: Account, ticker: str
) -> None:
    net = account.ledger.net_units(ticker)
    book = conn.venue.book(ticker)
    if net == 0:
        return
    price_units = (book.best_yes_bid if net > 0 else book.best_yes_ask) if book is not None else None
    if price_units is None:
        reconciler.node.event(f"Market/{name}", "FlattenFailed", f"no {ticker} book to close {net} units", warning=True)
        return
    request = OrderRequest(
        market_id=ticker,
        side=Side.YES,
        order_side=OrderSide.SELL if net > 0 else OrderSide.BUY,
        price=Price(price_units),
        quantity=Quantity(abs(net)),
        client_order_id=make_client_order_id(
            reconciler.node.prefix,
            ticker,
            0,
            Level.YES_ASK if net > 0 else Level.YES_BID,
            reconciler.node.clock.now_us() % 1_000_000,
        ),
        time_in_force=TimeInForce.IMMEDIATE_OR_CANCEL,
        post_only=False,
        reduce_only=True,
    )
    try:
        result = await account.adapter.place_order(request)
    except ExchangeError as exc:
        reconciler.node.event(f"Market/{name}", "FlattenFailed", str(exc), warning=True)
        return
    reconciler.node.event(f"Market/{name}", "Flattened", f"{ticker}: IOC {request.order_side.value} {result.filled}")
