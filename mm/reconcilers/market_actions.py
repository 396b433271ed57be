"""The Market reconciler's *act* step: send the planned cancels, amends, decreases and places through the
account's adapter (and so through the venue rate limiter, cancels first), keep the order tracker current from
the answers, and feed the reject-rate kill trigger; and carry out a deleted Market's deletion policy
(``cancel_orders``, ``flatten`` with an IOC reduce-only order, ``orphan``).

A create that timed out is recorded as *unknown*, never assumed rejected; the Exchange reconciler settles it by
client order id. Rate limiting and an unavailable venue become ``TransientError`` (the key is retried).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from mm.adapters.base import ExchangeAdapter
from mm.adapters.errors import (
    DuplicateClientOrderIdError,
    ExchangeError,
    ExchangeUnavailableError,
    OrderNotFoundError,
    RateLimitedError,
)
from mm.controller.errors import TransientError
from mm.controller.node import Account, ExchangeConnection, NodeContext
from mm.domain.orders import Order, OrderRequest
from mm.domain.price import Price, Quantity
from mm.domain.sides import OrderSide, Side, TimeInForce
from mm.observability import audit
from mm.reconcilers.client_ids import Level, make_client_order_id
from mm.reconcilers.cycle_recording import (
    record_call_failure,
    record_cancel_of,
    record_cancel_results,
    record_deleted_cycle,
    record_result,
)
from mm.reconcilers.market_recording import record_actions, record_order_sent, record_results
from mm.reconcilers.order_plan import Amend, Cancel, Decrease, OrderPlan, Place, Reason
from mm.state.records import OrderRecord

if TYPE_CHECKING:
    from mm.reconcilers.market import MarketReconciler, MarketRuntime

__all__ = ["act", "carry_out_deletion"]

_T = TypeVar("_T")


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
    recorder = node.recorder
    ticker = runtime.subscribed[1] if runtime.subscribed is not None else ""
    calls = _Calls(node, adapter, ticker, node.clock.now_us())
    try:
        if recorder is not None:
            record_actions(recorder, ticker, plan)
        if cancels:
            ids = [a.order_id for a in cancels if a.order_id]
            results = await calls.cancel(ids)
            for order_id, error in zip(ids, results, strict=False):
                if error is None or isinstance(error, OrderNotFoundError):
                    tracker.cancelled(order_id)
                else:
                    node.event(f"Market/{name}", "CancelFailed", f"{order_id}: {error}", warning=True)
            runtime.cancels_sent += len(ids)
        for change in changes:
            await _change(reconciler, name, calls, account, change)
        if places:
            for place in places:
                tracker.sent(place.request, node.clock.now_us())
                runtime.attempts[place.level] = place.attempt + 1
            sent_ns = node.wall.monotonic_ns()
            placed = await calls.place([p.request for p in places])
            if node.metrics is not None:
                latency_s = (node.wall.monotonic_ns() - sent_ns) / 1e9
                node.metrics.order_latency.labels(market=places[0].request.market_id).observe(latency_s)
            if recorder is not None:
                record_results(recorder, ticker, places, placed, ts_us=calls.done_us)
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
                # a duplicate client order id is our bookkeeping's problem, not the venue refusing orders
                (not isinstance(r, Order | DuplicateClientOrderIdError) for r in placed),
                runtime.risk_policy.kill_switch,
                calls.done_us,
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
        # The time the last venue call returned (a plan that is not empty calls the venue: its cancels are of
        # acknowledged orders): the throttle measures from when the update reached the venue. Recorded with that
        # call's answer, so a replay reads it.
        runtime.last_update_us = calls.done_us


class _Calls:
    """The act step's venue calls, each followed by one clock read — ``done_us``, what the act step goes on
    with — and, when recording, by the venue's answer stamped with that read (``order_result``; creates record
    their ``order_ack`` etc. themselves). A call that raises is recorded as such and re-raised."""

    def __init__(self, node: NodeContext, adapter: ExchangeAdapter, ticker: str, now_us: int) -> None:
        self.node = node
        self.adapter = adapter
        self.ticker = ticker
        self.done_us = now_us

    def _returned(self) -> int:
        self.done_us = self.node.clock.now_us()
        return self.done_us

    async def _call(
        self,
        action: str,
        order_id: str | None,
        call: Callable[[], Awaitable[_T]],
        requests: Sequence[OrderRequest] = (),
    ) -> tuple[_T, int]:
        """One venue call and the clock read after it (returned with its answer); a call that raises is recorded
        as such and re-raised. The call and its answer go to the audit log (NFR-302)."""
        if action != "cancel":
            audit.log_call(action, order_id=order_id, requests=requests)
        try:
            answer = await call()
        except ExchangeError as exc:
            done = self._returned()
            audit.log_answer(action, exc, order_id=order_id)
            if self.node.recorder is not None:
                record_call_failure(self.node.recorder, self.ticker, action, order_id, exc, done)
            raise
        if action != "cancel":
            audit.log_answer(action, answer, order_id=order_id)
        return answer, self._returned()

    async def cancel(self, ids: list[str]) -> list[ExchangeError | None]:
        for order_id in ids:
            audit.log_call("cancel", order_id=order_id)
        results, done = await self._call("cancel", None, lambda: self.adapter.cancel_orders(ids))
        for order_id, result in zip(ids, results, strict=False):
            audit.log_answer("cancel", result, order_id=order_id)
        if self.node.recorder is not None:
            record_cancel_results(self.node.recorder, self.ticker, ids, results, done)
        return results

    async def amend(self, order_id: str, price: Price, quantity: Quantity) -> Order:
        amended, done = await self._call(
            "amend", order_id, lambda: self.adapter.amend_order(order_id, price=price, quantity=quantity)
        )
        if self.node.recorder is not None:
            record_result(self.node.recorder, self.ticker, "amend", order_id, None, done, order=amended)
        return amended

    async def decrease(self, order_id: str, reduce_to: Quantity) -> None:
        _, done = await self._call(
            "decrease", order_id, lambda: self.adapter.decrease_order(order_id, reduce_to=reduce_to)
        )
        if self.node.recorder is not None:
            record_result(self.node.recorder, self.ticker, "decrease", order_id, None, done)

    async def place(self, requests: list[OrderRequest]) -> list[Order | ExchangeError]:
        placed, _ = await self._call("create", None, lambda: self.adapter.place_orders(requests), requests)
        return placed

    async def place_one(self, request: OrderRequest) -> Order | ExchangeError:
        """One create (the deletion's flatten order); the venue's refusal is the result, not raised."""
        audit.log_call("create", requests=[request])
        try:
            result: Order | ExchangeError = await self.adapter.place_order(request)
        except ExchangeError as exc:
            result = exc
        audit.log_answer("create", result, order_id=request.client_order_id)
        self._returned()
        return result


async def _change(
    reconciler: MarketReconciler, name: str, calls: _Calls, account: Account, change: Amend | Decrease
) -> None:
    try:
        if isinstance(change, Decrease):
            await calls.decrease(change.order_id, change.reduce_to)
            current = account.tracker.get(change.order_id)
            if current is not None and change.reduce_to < current.remaining:
                account.tracker.update(current.decreased(change.reduce_to, calls.done_us))
            return
        amended = await calls.amend(change.order_id, change.price, change.quantity)
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
        recorder = reconciler.node.recorder
        if recorder is not None:
            record_cancel_of(recorder, calls.ticker, change.order_id, change.client_order_id, "amend_failed")
        results = await calls.cancel([change.order_id])
        if results and (results[0] is None or isinstance(results[0], OrderNotFoundError)):
            account.tracker.cancelled(change.order_id)


async def carry_out_deletion(reconciler: MarketReconciler, name: str) -> None:
    """Carry out the deleted Market's ``deletion_policy`` (remembered from its last spec): ``cancel_orders``
    cancels its orders; ``flatten`` also closes the position with an IOC reduce-only order at the best
    opposite price; ``orphan`` leaves both at the venue (reported)."""
    node = reconciler.node
    runtime: MarketRuntime | None = node.market_state.pop(name, None)
    if runtime is None or runtime.subscribed is None:
        return
    exchange, ticker = runtime.subscribed
    conn = node.exchanges.get(exchange)
    if conn is None:
        return
    now = node.clock.now_us()
    recorder = node.recorder
    if recorder is not None:
        record_deleted_cycle(recorder, name, ticker, now)
        recorder.hold_snapshots(ticker)
    try:
        carried_out = await _delete(reconciler, name, runtime, conn, ticker, now)
    finally:
        if recorder is not None:
            recorder.release_snapshots(ticker)
    if recorder is not None and carried_out:
        recorder.end_market(ticker, f"Market/{name} deleted")


async def _delete(
    reconciler: MarketReconciler, name: str, runtime: MarketRuntime, conn: ExchangeConnection, ticker: str, now: int
) -> bool:
    """The deletion policy; False when the orders and position are left alone (orphan, or another Market)."""
    node = reconciler.node
    recorder = node.recorder
    exchange = conn.name
    policy = runtime.deletion_policy
    others = [k for k in node.markets_trading(exchange, ticker) if k != f"Market/{name}"]
    if policy == "orphan" or others:
        why = "deletion policy orphan" if policy == "orphan" else f"{ticker} is still traded by {others}"
        node.event(f"Market/{name}", "Deleted", f"orders and position of {ticker} left alone: {why}")
        return False
    for account in conn.accounts.values():
        calls = _Calls(node, account.adapter, ticker, now)
        mine = account.tracker.open_orders(ticker)
        if mine:
            ids = [o.exchange_order_id or "" for o in mine]
            if recorder is not None:
                for order_id, order in zip(ids, mine, strict=True):
                    record_cancel_of(recorder, ticker, order_id, order.client_order_id, "deleted")
            results = await calls.cancel(ids)
            for order, error in zip(mine, results, strict=False):
                if error is None or isinstance(error, OrderNotFoundError):
                    account.tracker.cancelled(order.exchange_order_id or "")
        if policy == "flatten":
            await _flatten(reconciler, name, conn, account, calls)
    await conn.venue.unsubscribe_market(ticker)
    node.event(f"Market/{name}", "Deleted", f"{policy}: orders of {ticker} cancelled")
    return True


async def _flatten(
    reconciler: MarketReconciler, name: str, conn: ExchangeConnection, account: Account, calls: _Calls
) -> None:
    ticker = calls.ticker
    net = account.ledger.net_units(ticker)
    book = conn.venue.book(ticker)
    if net == 0:
        return
    price_units = (book.best_yes_bid if net > 0 else book.best_yes_ask) if book is not None else None
    if price_units is None:
        reconciler.node.event(f"Market/{name}", "FlattenFailed", f"no {ticker} book to close {net} units", warning=True)
        return
    level = Level.YES_ASK if net > 0 else Level.YES_BID
    attempt = calls.done_us % 1_000_000  # a fresh id per flatten (the clock as of the last venue answer)
    request = OrderRequest(
        market_id=ticker,
        side=Side.YES,
        order_side=OrderSide.SELL if net > 0 else OrderSide.BUY,
        price=Price(price_units),
        quantity=Quantity(abs(net)),
        client_order_id=make_client_order_id(reconciler.node.prefix, ticker, 0, level, attempt),
        time_in_force=TimeInForce.IMMEDIATE_OR_CANCEL,
        post_only=False,
        reduce_only=True,
    )
    recorder = reconciler.node.recorder
    if recorder is not None:
        record_order_sent(recorder, ticker, request, level, attempt, "flatten")
    result = await calls.place_one(request)
    if recorder is not None:
        record_results(recorder, ticker, [Place(request, Reason.REDUCING, level, attempt)], [result], calls.done_us)
    if not isinstance(result, Order):
        reconciler.node.event(f"Market/{name}", "FlattenFailed", str(result), warning=True)
        return
    reconciler.node.event(f"Market/{name}", "Flattened", f"{ticker}: IOC {request.order_side.value} {result.filled}")
