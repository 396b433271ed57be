"""The order resyncs a ``replay_format`` 2 recording leaves out, inferred where the file shows them (FR-902).

Until format 3 the node recorded the Exchange reconciler's resync of its open orders (``orders_resync`` with
``open_orders``) only when it adopted or dropped an order. A resync that only replaced the tracker's copy of an
order it knew with the venue's — the REST view: the venue's microsecond times, YES terms, and ``post_only`` false
when the venue's Order object does not report it (the simulator's does not) — left no record, so a replay kept
its own copy and diverged at the next ``state_snapshot`` (or at a decision reading the order's ``created_us``).

Where such a resync certainly ran, the file says so: the Exchange reconciler looks its stuck creates up right
after resyncing the open orders and records each outcome (``orders_resync`` with ``resolved`` / ``failed``, no
``open_orders``). There, :class:`VenueReads` gives what the resync stored for each tracked order *when the file
holds it*: the order's latest REST read — an amend's answer, a recorded resync's ``open_orders``, a looked-up
create — as long as no later record shows the venue changing the order (a stream update of a later state, a
fill after the read, a decrease). An order the file holds no such read of keeps the replay's copy: what the live
resync made of it is not in the file (its venue times, in particular), and a divergence there is reported.
"""

from __future__ import annotations

from collections.abc import Iterable

from mm.domain.orders import Order

__all__ = ["VenueReads"]

_STREAM_TICK_US = 1000
"""The venue's order stream reports times in milliseconds; its REST reads in microseconds."""


def _same_venue_state(update: Order, read: Order) -> bool:
    return (
        update.request.yes_book() == read.request.yes_book()
        and update.request.quantity == read.request.quantity
        and update.status is read.status
        and update.filled == read.filled
    )


class VenueReads:
    """Our orders as the venue's REST last answered them, while nothing recorded since says the venue moved on."""

    def __init__(self) -> None:
        self._reads: dict[str, Order] = {}

    def read(self, order: Order) -> None:
        """The venue's REST answer for ``order`` (what a resync at this moment would store)."""
        if order.exchange_order_id is not None:
            self._reads[order.exchange_order_id] = order

    def streamed(self, update: Order) -> None:
        """The order stream's report: the read stands when the report is of an earlier venue state arriving late,
        or of the same one (its millisecond time and the order's terms agree); a later state replaces it, and a
        REST read of that is not in the file."""
        read = self._reads.get(update.exchange_order_id or "")
        if read is None:
            return
        streamed_tick, read_tick = update.updated_us // _STREAM_TICK_US, read.updated_us // _STREAM_TICK_US
        if streamed_tick < read_tick or (streamed_tick == read_tick and _same_venue_state(update, read)):
            return
        del self._reads[update.exchange_order_id or ""]

    def moved(self, exchange_order_id: str, venue_ts_us: int | None = None) -> None:
        """The venue changed the order (a fill at ``venue_ts_us``, or a decrease): a fill stamped before the read
        is already in it."""
        read = self._reads.get(exchange_order_id)
        if read is not None and (venue_ts_us is None or venue_ts_us > read.updated_us):
            del self._reads[exchange_order_id]

    def of(self, orders: Iterable[Order]) -> list[Order]:
        """The venue's copies of ``orders`` that a resync now would store, where the file holds them and they
        differ from the given copy."""
        found = []
        for order in orders:
            read = self._reads.get(order.exchange_order_id or "")
            if read is not None and read.status.is_live and read != order:
                found.append(read)
        return found
