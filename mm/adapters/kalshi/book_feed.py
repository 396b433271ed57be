"""Order books per market from Kalshi's ``orderbook_delta`` channel (kalshi-api.md §6, §8).

:class:`BookFeed` is a message handler: feed it every decoded WebSocket message (``await feed.handle(m)``
or ``feed.apply(m)``) and it keeps one :class:`~mm.domain.book.OrderBook` per market. It does no IO: when a
book can no longer be trusted it marks the market STALE and calls ``request_snapshot(sid, tickers)``; the
WebSocket client answers that with ``update_subscription``/``get_snapshot`` and the next snapshot clears
STALE.

Choices:

* ``seq`` is per sid and shared by every market of the sid; ``ok`` / ``unsubscribed`` acks and
  ``get_snapshot`` replies consume seq numbers too, so every message carrying ``sid`` and ``seq`` advances it.
* The first message seen on a sid starts its sequence whatever its seq. After that ``seq != last + 1`` is a
  gap, except ``seq <= last``, which is a **duplicate** (a re-sent message): it is ignored and counted in
  ``duplicates`` — applying it twice would corrupt the book, and nothing was lost.
* A gap marks **every** market of the sid stale (the lost message may have been any of them) and requests a
  snapshot of all of them. A snapshot that arrives after a gap still repairs its own market.
* A delta that would leave a level negative or off the grid (``BookIntegrityError``), or that leaves the book
  crossed, marks that market stale and requests its snapshot. Deltas on a stale market are skipped.
* Malformed messages (missing fields, level strings that are not exact 4-dp prices / 2-dp counts) are counted
  in ``malformed`` and reported through ``log``; a malformed delta also makes its market stale (its change is
  lost), a malformed snapshot leaves the market stale. Nothing raises out of :meth:`apply`.
* Staleness changes are recorded (``(ticker, stale, reason)`` in :meth:`drain_transitions`) and :meth:`apply`
  returns the ticker whose book it changed, so the adapter can publish ``BookState`` / ``BookUpdated`` events.
* :meth:`resync_all` (a frame the client could not even decode: we do not know which market it was for) marks
  every book stale and asks for snapshots of every market of every sid.
* Every snapshot request is counted in ``resyncs`` and reported to ``on_resync(reason)`` when set (the adapter's
  ``mm_book_resyncs_total``), with a reason of a fixed set: ``seq_gap``, ``malformed``, ``integrity``,
  ``crossed``, ``tick_grid``, ``undecodable``.
* NO levels are NO bids at NO-leg prices (``use_yes_price`` false, the default); with ``use_yes_price`` true
  they are YES-ask prices and are converted (NO bid = 1 - price).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from mm.clock import Clock
from mm.domain.book import OrderBook
from mm.domain.errors import BookIntegrityError
from mm.domain.sides import Side
from mm.domain.ticks import TickGrid

PRICE_SCALE: Final = 10_000
"""$0.0001 units per dollar."""
COUNT_SCALE: Final = 100
"""1/100-contract units per contract."""

SnapshotRequester = Callable[[int, list[str]], None]


class MalformedMessageError(ValueError):
    """A message or level that does not have the shape of kalshi-api.md §6."""


def _units(text: object, scale: int, what: str) -> int:
    if not isinstance(text, str):
        raise MalformedMessageError(f"{what} must be a string, got {type(text).__name__}")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise MalformedMessageError(f"{what} {text!r} is not a decimal") from None
    if not value.is_finite():
        raise MalformedMessageError(f"{what} {text!r} is not finite")
    scaled = value * scale
    if scaled != scaled.to_integral_value():
        raise MalformedMessageError(f"{what} {text!r} is finer than 1/{scale}")
    return int(scaled)


def parse_price(text: object) -> int:
    """A dollar string (``"0.0800"``) as exact $0.0001 units."""
    return _units(text, PRICE_SCALE, "price")


def parse_count(text: object) -> int:
    """A count string (``"300.00"``, ``"-1.84"``) as exact 1/100-contract units."""
    return _units(text, COUNT_SCALE, "count")


class BookFeed:
    """Books per market from ``orderbook_snapshot`` / ``orderbook_delta`` messages, with seq checks."""

    def __init__(
        self,
        request_snapshot: SnapshotRequester,
        grid_for: Callable[[str], TickGrid],
        clock: Clock,
        *,
        use_yes_price: bool = False,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self._request = request_snapshot
        self._grid_for = grid_for
        self._clock = clock
        self._use_yes_price = use_yes_price
        self._log = log or (lambda _msg: None)
        self._books: dict[str, OrderBook] = {}
        self._stale: set[str] = set()
        self._last_seq: dict[int, int] = {}
        self._sid_tickers: dict[int, dict[str, None]] = {}
        self._transitions: list[tuple[str, bool, str]] = []
        self.gaps = 0
        self.resyncs = 0
        """Snapshot requests made (one per ``request_snapshot`` call)."""
        self.on_resync: Callable[[str], None] | None = None
        """Called with the reason of every snapshot request (see the module docstring)."""
        self.malformed = 0
        self.duplicates = 0
        self.integrity_errors = 0
        self.snapshots = 0
        self.deltas = 0

    # ------------------------------------------------------------------ queries

    def book(self, ticker: str) -> OrderBook | None:
        return self._books.get(ticker)

    def is_stale(self, ticker: str) -> bool:
        """True until a snapshot arrived, and from a gap / integrity failure until the next snapshot."""
        return ticker in self._stale or ticker not in self._books

    @property
    def tickers(self) -> list[str]:
        return list(self._books)

    # ------------------------------------------------------------------ input

    async def handle(self, message: dict[str, Any]) -> None:
        """A :data:`~mm.adapters.base.MessageHandler`."""
        self.apply(message)

    def connection_reset(self) -> None:
        """The connection was replaced: sids and seqs start over, and every book is stale until re-snapshotted."""
        self._last_seq.clear()
        self._sid_tickers.clear()
        for ticker in list(self._books):
            self._mark_stale(ticker, "connection reset")

    def mark_all_stale(self, reason: str) -> None:
        """Every book is stale (e.g. the connection dropped) until its next snapshot."""
        for ticker in list(self._books):
            self._mark_stale(ticker, reason)

    def resync_all(self, reason: str) -> None:
        """Mark every book stale and request a snapshot of every market of every sid."""
        for ticker in list(self._books):
            self._mark_stale(ticker, reason)
        for sid, tickers in list(self._sid_tickers.items()):
            if tickers:
                self._resync(sid, list(tickers), "undecodable")

    def forget(self, ticker: str) -> None:
        """Stop keeping ``ticker``'s book (unsubscribed): its later messages, if any, start it afresh."""
        self._books.pop(ticker, None)
        self._stale.discard(ticker)
        for tickers in self._sid_tickers.values():
            tickers.pop(ticker, None)

    def regrid(self, ticker: str) -> None:
        """The market's tick grid changed: drop its book (the next snapshot builds it on the new grid) and ask
        for that snapshot."""
        if self._books.pop(ticker, None) is not None:
            self._transitions.append((ticker, True, "tick grid changed"))
        self._stale.add(ticker)
        for sid, tickers in list(self._sid_tickers.items()):
            if ticker in tickers:
                self._resync(sid, [ticker], "tick_grid")

    def drain_transitions(self) -> list[tuple[str, bool, str]]:
        """``(ticker, stale, reason)`` for every staleness change since the last call, in order."""
        out, self._transitions = self._transitions, []
        return out

    def apply(self, message: Mapping[str, Any]) -> str | None:
        """Apply one message; returns the ticker whose book it changed (None if none did)."""
        kind = message.get("type")
        sid = message.get("sid")
        seq = message.get("seq")
        if isinstance(sid, int) and isinstance(seq, int) and kind != "error" and not self._check_seq(sid, seq):
            return None
        if kind == "orderbook_snapshot":
            return self._on_snapshot(sid, message.get("msg"))
        if kind == "orderbook_delta":
            return self._on_delta(sid, message.get("msg"))
        return None

    def _mark_stale(self, ticker: str, reason: str) -> None:
        if ticker not in self._stale and ticker in self._books:
            self._transitions.append((ticker, True, reason))
        self._stale.add(ticker)

    def _mark_fresh(self, ticker: str) -> None:
        if ticker in self._stale or ticker not in self._books:
            self._transitions.append((ticker, False, "snapshot"))
        self._stale.discard(ticker)

    # ------------------------------------------------------------------ internals

    def _check_seq(self, sid: int, seq: int) -> bool:
        """Advance the sid's seq; False for a duplicate to ignore. A gap marks the sid's markets stale."""
        last = self._last_seq.get(sid)
        if last is not None and seq <= last:
            self.duplicates += 1
            return False
        self._last_seq[sid] = seq
        if last is not None and seq != last + 1:
            self.gaps += 1
            self._log(f"seq gap on sid {sid}: {last} -> {seq}")
            tickers = list(self._sid_tickers.get(sid, {}))
            for ticker in tickers:
                self._mark_stale(ticker, f"seq gap {last} -> {seq}")
            if tickers:
                self._resync(sid, tickers, "seq_gap")
        return True

    def _resync(self, sid: int | None, tickers: list[str], reason: str) -> None:
        if sid is None:
            return
        self.resyncs += 1
        if self.on_resync is not None:
            self.on_resync(reason)
        self._request(sid, tickers)

    def _bad(self, sid: int | None, ticker: str | None, why: str) -> None:
        self.malformed += 1
        self._log(f"malformed orderbook message (sid {sid}, {ticker}): {why}")
        if ticker is not None:
            self._mark_stale(ticker, f"malformed message: {why}")
            self._resync(sid, [ticker], "malformed")

    def _levels(self, raw: object, side: Side) -> list[tuple[int, int]]:
        if raw is None:
            return []
        if not isinstance(raw, list):
            raise MalformedMessageError(f"{side.value} levels are not a list")
        out = []
        for level in raw:
            if not isinstance(level, list | tuple) or len(level) != 2:
                raise MalformedMessageError(f"{side.value} level {level!r} is not [price, count]")
            out.append((self._no_bid_price(parse_price(level[0]), side), parse_count(level[1])))
        return out

    def _no_bid_price(self, units: int, side: Side) -> int:
        return PRICE_SCALE - units if side is Side.NO and self._use_yes_price else units

    def _on_snapshot(self, sid: int | None, msg: object) -> str | None:
        ticker = msg.get("market_ticker") if isinstance(msg, dict) else None
        if not isinstance(msg, dict) or not isinstance(ticker, str):
            self._bad(sid, None, "snapshot without a market_ticker")
            return None
        if isinstance(sid, int):
            self._sid_tickers.setdefault(sid, {})[ticker] = None
        try:
            yes = self._levels(msg.get("yes_dollars_fp"), Side.YES)
            no = self._levels(msg.get("no_dollars_fp"), Side.NO)
        except MalformedMessageError as exc:
            self._bad(sid, ticker, str(exc))
            return None
        book = self._books.get(ticker)
        if book is None:
            book = OrderBook(self._grid_for(ticker))
        try:
            book.apply_snapshot(yes, no, self._clock.now_us())
        except BookIntegrityError as exc:
            self._bad(sid, ticker, str(exc))
            return None
        fresh = ticker not in self._books
        self._books[ticker] = book
        self.snapshots += 1
        if book.crossed:
            self._log(f"{ticker}: snapshot is crossed")
            if fresh:
                self._stale.add(ticker)
            else:
                self._mark_stale(ticker, "crossed snapshot")
            self._resync(sid, [ticker], "crossed")
            return ticker
        if fresh:
            self._transitions.append((ticker, False, "snapshot"))
            self._stale.discard(ticker)
        else:
            self._mark_fresh(ticker)
        return ticker

    def _on_delta(self, sid: int | None, msg: object) -> str | None:
        ticker = msg.get("market_ticker") if isinstance(msg, dict) else None
        if not isinstance(msg, dict) or not isinstance(ticker, str):
            self._bad(sid, None, "delta without a market_ticker")
            return None
        if isinstance(sid, int):
            self._sid_tickers.setdefault(sid, {})[ticker] = None
        book = self._books.get(ticker)
        if book is None or ticker in self._stale:
            return None  # waiting for a snapshot
        try:
            side_text = msg.get("side")
            if side_text not in ("yes", "no"):
                raise MalformedMessageError(f"side {side_text!r}")
            side = Side(side_text)
            price = self._no_bid_price(parse_price(msg.get("price_dollars")), side)
            delta = parse_count(msg.get("delta_fp"))
        except MalformedMessageError as exc:
            self._bad(sid, ticker, str(exc))
            return None
        ts_ms = msg.get("ts_ms")
        ts_us = ts_ms * 1000 if isinstance(ts_ms, int) and not isinstance(ts_ms, bool) else self._clock.now_us()
        try:
            book.apply_delta(side, price, delta, ts_us)
        except BookIntegrityError as exc:
            self.integrity_errors += 1
            self._log(f"{ticker}: {exc}")
            self._mark_stale(ticker, f"impossible delta: {exc}")
            self._resync(sid, [ticker], "integrity")
            return None
        self.deltas += 1
        if book.crossed:
            self._log(f"{ticker}: book crossed after a delta")
            self._mark_stale(ticker, "crossed after a delta")
            self._resync(sid, [ticker], "crossed")
        return ticker


def levels_of(book: OrderBook) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(YES bids, NO bids) as ascending ``(price_units, size_units)`` lists: for comparisons in tests and logs."""
    return (_ascending(book, Side.YES), _ascending(book, Side.NO))


def _ascending(book: OrderBook, side: Side) -> list[tuple[int, int]]:
    levels: Iterable[tuple[int, int]] = book.depth(side, len(book.grid.levels))
    return sorted(levels)
