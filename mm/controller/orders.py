"""Our view of our orders at one exchange, kept from acks, stream updates and REST resyncs (FR-601, FR-703).

:class:`OrderTracker` is what the Market reconciler reads as "observed orders" — no REST call on the hot path.
It is fed by:

* :meth:`sent` / :meth:`acked` / :meth:`failed` around every create (a create whose answer never came stays
  *pending*: :meth:`stuck` lists those older than a threshold so the controller looks them up by client order
  id — an ambiguous submit is unknown, never assumed rejected);
* :meth:`update` for every ``OrderUpdate`` from the stream (the venue's truth wins; terminal orders leave);
* :meth:`resync` with the venue's open orders from REST (FR-703: the exchange is the source of truth — ours
  that the venue no longer has are dropped, ones it has that we did not know are adopted);
* only orders whose client order id carries our ``prefix`` are ours; others are recorded in :attr:`foreign`
  and never touched (design.md §4).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from mm.domain.orders import Order, OrderRequest

__all__ = ["OrderTracker", "PendingCreate"]

_MAX_FINISHED = 100_000


@dataclass(frozen=True, slots=True)
class PendingCreate:
    request: OrderRequest
    sent_us: int


class OrderTracker:
    """Live orders by exchange order id, pending creates by client order id, foreign orders apart."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._live: dict[str, Order] = {}
        self._pending: dict[str, PendingCreate] = {}
        self.foreign: dict[str, Order] = {}
        """Live orders at the venue that are not ours, by exchange order id (reported, never touched)."""
        self.unknown: dict[str, PendingCreate] = {}
        """Creates whose outcome could not be established yet (looked up again on the next resync)."""
        self._finished: dict[str, None] = {}
        """Exchange ids of orders we know are over (cancelled, filled): a late "resting" update for one of
        them (the stream lags REST) must not bring it back. Bounded: the oldest are forgotten."""

    def is_ours(self, client_order_id: str | None) -> bool:
        return bool(client_order_id) and str(client_order_id).startswith(self.prefix)

    # ------------------------------------------------------------------ creates

    def sent(self, request: OrderRequest, now_us: int) -> None:
        self._pending[request.client_order_id] = PendingCreate(request, now_us)

    def acked(self, order: Order) -> None:
        self._pending.pop(order.client_order_id, None)
        self.unknown.pop(order.client_order_id, None)
        self._store(order)

    def failed(self, client_order_id: str) -> None:
        """The venue refused the create (a definite answer): nothing rests."""
        self._pending.pop(client_order_id, None)
        self.unknown.pop(client_order_id, None)

    def outcome_unknown(self, client_order_id: str) -> None:
        """No definite answer (timeout after retries): keep it until a lookup settles it."""
        pending = self._pending.pop(client_order_id, None)
        if pending is not None:
            self.unknown[client_order_id] = pending

    def stuck(self, now_us: int, older_than_us: int) -> list[PendingCreate]:
        """Creates sent more than ``older_than_us`` ago without an answer, plus the unknown ones."""
        old = [p for p in self._pending.values() if now_us - p.sent_us >= older_than_us]
        return old + list(self.unknown.values())

    @property
    def pending_count(self) -> int:
        return len(self._pending) + len(self.unknown)

    def pending_in(self, market_id: str) -> list[PendingCreate]:
        return [p for p in (*self._pending.values(), *self.unknown.values()) if p.request.market_id == market_id]

    def awaiting_answer(self, market_id: str) -> list[PendingCreate]:
        """Creates of ``market_id`` sent and not answered yet (not the unknown ones)."""
        return [p for p in self._pending.values() if p.request.market_id == market_id]

    def finished_ids(self, limit: int) -> list[str]:
        """The exchange ids of the last ``limit`` orders known to be over, oldest first (for a snapshot)."""
        return list(self._finished)[-limit:] if limit > 0 else []

    def restore_finished(self, exchange_order_ids: Iterable[str]) -> None:
        """Remember these orders as over (restoring a snapshot): late "resting" updates of them are ignored."""
        for order_id in exchange_order_ids:
            self._finish(order_id)

    # ------------------------------------------------------------------ venue truth

    def update(self, order: Order) -> bool:
        """An order as the venue reports it now; returns whether it is ours."""
        oid = order.exchange_order_id
        if oid is None:
            return False
        if not self.is_ours(order.client_order_id):
            if order.status.is_live:
                self.foreign[oid] = order
            else:
                self.foreign.pop(oid, None)
            return False
        self._pending.pop(order.client_order_id, None)
        self.unknown.pop(order.client_order_id, None)
        if oid in self._finished and order.status.is_live:
            return True  # a stale update of an order we know is over (e.g. cancelled meanwhile)
        self._store(order)
        return True

    def cancelled(self, exchange_order_id: str) -> None:
        self._live.pop(exchange_order_id, None)
        self._finish(exchange_order_id)

    def _finish(self, exchange_order_id: str) -> None:
        finished = self._finished
        finished[exchange_order_id] = None
        if len(finished) > _MAX_FINISHED:
            del finished[next(iter(finished))]

    def resync(self, venue_open: Iterable[Order], market_id: str | None = None) -> tuple[list[Order], list[Order]]:
        """Replace our live orders (of ``market_id``, or all) with the venue's; returns (adopted, dropped)."""
        seen: dict[str, Order] = {}
        for order in venue_open:
            if order.exchange_order_id is None or (market_id is not None and order.request.market_id != market_id):
                continue
            if self.is_ours(order.client_order_id):
                seen[order.exchange_order_id] = order
            else:
                self.foreign[order.exchange_order_id] = order
        scope = [o for o in self._live.values() if market_id is None or o.request.market_id == market_id]
        dropped = [o for o in scope if o.exchange_order_id not in seen]
        adopted = [o for oid, o in seen.items() if oid not in self._live]
        for order in dropped:
            self._live.pop(order.exchange_order_id or "", None)
        for order in seen.values():
            self._finished.pop(order.exchange_order_id or "", None)  # REST says it rests: it is not over
            self._store(order)
            self._pending.pop(order.client_order_id, None)
            self.unknown.pop(order.client_order_id, None)
        return adopted, dropped

    def _store(self, order: Order) -> None:
        oid = order.exchange_order_id
        if oid is None:
            return
        if order.status.is_live:
            self._live[oid] = order
        else:
            self._live.pop(oid, None)
            self._finish(oid)

    # ------------------------------------------------------------------ reading

    def open_orders(self, market_id: str | None = None) -> list[Order]:
        return [o for o in self._live.values() if market_id is None or o.request.market_id == market_id]

    def get(self, exchange_order_id: str) -> Order | None:
        return self._live.get(exchange_order_id)

    def __len__(self) -> int:
        return len(self._live)
