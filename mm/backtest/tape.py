"""A recorded session's market data, decoded once into flat lists for fast backtests (FR-903).

A backtest walks one market's book and trades many times (a parameter sweep runs the same tape for every grid
point), so the session file is read once — through :class:`~mm.recording.format.SessionReader`, with its
line-numbered errors — into a :class:`SessionTape`: parallel lists of plain ints, one entry per market-data
event, plus what the session_start says about the market and the configuration the node ran.

Events (``kinds[i]``, ``ts_us[i]``, ``arg_a[i]``, ``arg_b[i]``, ``arg_c[i]``):

* ``DELTA``: ``arg_a`` 0 = a YES bid, 1 = a NO bid; ``arg_b`` price ($0.0001); ``arg_c`` the signed size change
  (1/100 contract) — the recorded ``book_delta``, less what of it was our own order (below).
* ``SNAPSHOT``: ``arg_a`` indexes :attr:`SessionTape.snapshots` (the whole book replaced, maybe on a new grid).
* ``TRADE``: ``arg_a`` indexes :attr:`SessionTape.trades` (:class:`~mm.domain.events.PublicTrade` values);
  ``arg_b`` is its YES price, ``arg_c`` 0 when the taker bought YES (lifting asks), 1 when it sold.

Two derived lists save the backtest from asking the book on every event: ``mid_x2[i]`` is twice the YES mid
after event ``i`` ($0.0001 units; ``-1`` when the book is one-sided), and ``top[i]`` says whether the event
changed the best level (price or size) of either side — the only book changes the top-of-book fill rule can
react to. They are computed here by rebuilding the book with :class:`~mm.domain.book.OrderBook`, so a file
whose deltas do not apply (a negative level) is refused with the record's line.

The book is the market's *without our own orders*. A session recorded while trading live (a Market with
``execution: live``) has the node's real orders in its book records; the tape reads the book through an
:class:`~mm.backtest.own_orders.OwnOrderBook` fed the order records too, which recognises the book changes that
were ours and leaves them out (a record that was all ours gives no event). Paper orders never reached the
venue's book: a paper session's book is the recorded one.

Times are the records' ``ts_us`` (the node clock, UTC µs): what the node saw the data at, which is what a
backtest must replay it at.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from mm.backtest.own_orders import ORDER_RECORDS, OwnOrderBook
from mm.domain.errors import BookIntegrityError, MmError
from mm.domain.events import PublicTrade
from mm.domain.price import PRICE_SCALE, Price, Quantity
from mm.domain.sides import OrderSide, Side
from mm.domain.ticks import TickGrid
from mm.recording.format import SessionReader, SessionRecord
from mm.recording.replay import grid_of

__all__ = ["DELTA", "SNAPSHOT", "TRADE", "RecordedActivity", "RecordedMarket", "SessionTape", "TapeError", "load_tape"]

DELTA: Final = 0
SNAPSHOT: Final = 1
TRADE: Final = 2


class TapeError(MmError, ValueError):
    """A session that cannot be backtested: no session_start, no market data, a book that does not rebuild."""


@dataclass(frozen=True, slots=True)
class RecordedMarket:
    """One Market resource the recorded node traded this ticker with, and its effective specs (spec mappings
    as recorded: every default written out, overrides merged)."""

    name: str
    market: Mapping[str, Any]
    strategy: Mapping[str, Any] | None
    risk_policy: Mapping[str, Any] | None


@dataclass(slots=True)
class RecordedActivity:
    """What the recorded node itself did in the session — shown beside a backtest's figures for comparison."""

    quotes: int = 0
    orders_sent: int = 0
    fills: int = 0
    filled_units: int = 0
    config_reloads: int = 0
    final_position_units: int | None = None
    final_net_micros: int | None = None
    """The account's net PnL for the market at session end (realized + unrealized − fees), if recorded."""


@dataclass(slots=True)
class SessionTape:
    """One market's recorded market data and configuration (see the module docstring)."""

    path: Path
    ticker: str
    session_id: str
    start_us: int
    end_us: int
    grid: TickGrid
    close_time_us: int | None
    """The market's close time (UTC µs) from the session_start's market_info; None when not recorded."""
    markets: tuple[RecordedMarket, ...]
    trading_node: Mapping[str, Any] | None
    exchanges: Mapping[str, Mapping[str, Any]]
    kinds: list[int] = field(default_factory=list)
    ts_us: list[int] = field(default_factory=list)
    arg_a: list[int] = field(default_factory=list)
    arg_b: list[int] = field(default_factory=list)
    arg_c: list[int] = field(default_factory=list)
    mid_x2: list[int] = field(default_factory=list)
    top: list[bool] = field(default_factory=list)
    snapshots: list[tuple[TickGrid, tuple[tuple[int, int], ...], tuple[tuple[int, int], ...]]] = field(
        default_factory=list
    )
    trades: list[PublicTrade] = field(default_factory=list)
    recorded: RecordedActivity = field(default_factory=RecordedActivity)
    records: int = 0
    own_adjustments: int = 0
    """Book records the tape changed to take our own (live) orders out of the book: deltas that were wholly or
    partly ours, snapshots that held some of ours (0 for paper sessions)."""
    bad_lines: list[tuple[int, str]] = field(default_factory=list)
    """Lines skipped (``skip_bad=True``): (line number, reason)."""

    @property
    def events(self) -> int:
        return len(self.kinds)

    @property
    def duration_s(self) -> float:
        return (self.end_us - self.start_us) / 1e6

    def market(self, name: str | None = None) -> RecordedMarket:
        """The recorded Market called ``name``, or the only one (the first with effective specs when several)."""
        if name is not None:
            for m in self.markets:
                if m.name == name:
                    return m
            names = ", ".join(m.name for m in self.markets) or "none"
            raise TapeError(f"{self.path}: no Market {name!r} in the session (recorded: {names})")
        with_specs = [m for m in self.markets if m.strategy is not None and m.risk_policy is not None]
        if not with_specs:
            raise TapeError(f"{self.path}: the session_start holds no Market with effective Strategy and RiskPolicy")
        return with_specs[0]


class _Builder:
    """Turns records into tape entries, rebuilding the book (without our own orders) to derive ``mid_x2``, ``top``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tape: SessionTape | None = None
        self.own: OwnOrderBook | None = None
        """The recorded book and, in a live session, our real orders' claims on it: the tape's book is its
        ``others``."""
        self.live = False
        self.last_top: tuple[int, int, int, int] = (-1, 0, -1, 0)
        self.activity = RecordedActivity()

    def start(self, line: int, data: Mapping[str, Any], ts_us: int, market: str) -> None:
        config = data.get("config") or {}
        info = data.get("market_info") or {}
        ranges = info.get("grid")
        if not ranges:
            raise TapeError(f"{self.path}:{line}: the session_start has no market_info.grid (tick grid)")
        markets = tuple(
            RecordedMarket(
                name=str(entry.get("name", "")),
                market=entry.get("market") or {},
                strategy=entry.get("strategy"),
                risk_policy=entry.get("risk_policy"),
            )
            for entry in config.get("markets") or []
        )
        close = info.get("close_time_us")
        self.tape = SessionTape(
            path=self.path,
            ticker=market,
            session_id=str(data.get("session_id", "")),
            start_us=ts_us,
            end_us=ts_us,
            grid=grid_of(ranges),
            close_time_us=int(close) if close else None,
            markets=markets,
            trading_node=config.get("trading_node"),
            exchanges=config.get("exchanges") or {},
        )
        self.own = OwnOrderBook(market, self.tape.grid)
        # Live orders rested in the recorded book: the order records say which of its changes were ours.
        self.live = any(m.market.get("execution") == "live" for m in markets)

    def add(self, line: int, record: SessionRecord) -> None:
        """One record after the session_start."""
        tape, own = self.tape, self.own
        assert tape is not None and own is not None
        activity, kind, ts, data = self.activity, record.type, record.ts_us, record.data
        try:
            if kind == "book_delta":
                side = Side.YES if data["side"] == "yes" else Side.NO
                price = int(data["price_units"])
                change = own.delta(side, price, int(data["delta_units"]), ts)
                if change:
                    self._push(DELTA, ts, 0 if side is Side.YES else 1, price, change)
            elif kind == "book_snapshot":
                grid = grid_of(data["grid"]) if data.get("grid") else None
                yes, no = own.snapshot(data["yes_bids"], data["no_bids"], grid, ts)
                assert own.others is not None  # just built
                tape.snapshots.append((own.others.grid, yes, no))
                self._push(SNAPSHOT, ts, len(tape.snapshots) - 1, 0, 0)
            elif kind == "trade":
                taker = OrderSide.BUY if data["taker_side"] == "buy" else OrderSide.SELL
                trade = PublicTrade(
                    tape.ticker,
                    str(data["trade_id"]),
                    Price(data["price_units"]),
                    Quantity(data["size_units"]),
                    taker,
                    ts,
                )
                tape.trades.append(trade)
                self._push(TRADE, ts, len(tape.trades) - 1, trade.price.units, 0 if taker is OrderSide.BUY else 1)
            elif kind == "quote_generated":
                activity.quotes += 1
            elif kind == "order_sent":
                activity.orders_sent += 1
            elif kind == "fill":
                activity.fills += 1
                activity.filled_units += int(data["size_units"])
            elif kind == "config_reload" and data.get("applied"):
                activity.config_reloads += 1
            elif kind == "session_end":
                _final_state(activity, data.get("state"), tape.markets)
            if self.live and kind in ORDER_RECORDS:
                own.on_record(record)
        except (BookIntegrityError, ValueError, TypeError) as exc:
            raise TapeError(f"{self.path}:{line}: the {kind} record cannot be used: {exc}") from None

    def _push(self, kind: int, ts_us: int, a: int, b: int, c: int) -> None:
        tape, own = self.tape, self.own
        assert tape is not None and own is not None and own.others is not None
        book = own.others
        yb, nb = book.best_yes_bid, book.best_no_bid
        tape.kinds.append(kind)
        tape.ts_us.append(ts_us)
        tape.arg_a.append(a)
        tape.arg_b.append(b)
        tape.arg_c.append(c)
        tape.mid_x2.append(yb + PRICE_SCALE - nb if yb is not None and nb is not None else -1)
        top = (
            yb if yb is not None else -1,
            book.best_yes_bid_size,
            nb if nb is not None else -1,
            book.best_no_bid_size,
        )
        tape.top.append(top != self.last_top)
        self.last_top = top


def load_tape(path: Path | str, *, skip_bad: bool = False) -> SessionTape:
    """Read a session file into a :class:`SessionTape`.

    A damaged line raises :class:`~mm.recording.format.SessionFormatError` (file, line, reason) unless
    ``skip_bad`` (then it is skipped and listed in :attr:`SessionTape.bad_lines`); a session that cannot be
    backtested raises :class:`TapeError` naming the line.
    """
    path = Path(path)
    builder = _Builder(path)
    end_us = 0
    with SessionReader(path, skip_bad=skip_bad) as reader:
        for record in reader:
            line = reader.lines_read
            end_us = max(end_us, record.ts_us)
            if builder.tape is None:
                if record.type != "session_start":
                    raise TapeError(f"{path}:{line}: the first record is a {record.type}, not the session_start")
                builder.start(line, record.data, record.ts_us, record.market)
            else:
                builder.add(line, record)
        bad = list(reader.bad_lines)
        records = reader.records_read
    tape = builder.tape
    if tape is None:
        raise TapeError(f"{path}: no session_start record (an empty session)")
    if not tape.kinds:
        raise TapeError(f"{path}: the session holds no market data (book or trade records) to backtest on")
    tape.end_us = end_us
    tape.own_adjustments = builder.own.adjustments if builder.own is not None else 0
    tape.recorded = builder.activity
    tape.records = records
    tape.bad_lines = bad
    return tape


def _final_state(activity: RecordedActivity, state: Any, markets: tuple[RecordedMarket, ...]) -> None:
    """The session_end's position and net PnL of the account the first recorded Market traded through."""
    if not isinstance(state, Mapping) or not markets:
        return
    market = markets[0].market
    for account in state.get("accounts") or []:
        if account.get("exchange") == market.get("exchange_ref") and account.get("execution") == market.get(
            "execution"
        ):
            activity.final_position_units = int(account.get("position_units", 0))
            activity.final_net_micros = (
                int(account.get("realized_micros", 0))
                + int(account.get("unrealized_micros", 0))
                - int(account.get("fees_micros", 0))
            )
            return
