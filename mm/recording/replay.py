"""Deterministic replay of a session's quote path (FR-902): recompute every ``quote_generated`` from what was
recorded and compare, field by field, with what the node computed.

The replayer walks a session file in order. ``book_snapshot`` / ``book_delta`` rebuild the order book exactly as
the node quoted on it; ``state_snapshot`` carries the account's position and PnL and the node kill switch;
``config_reload`` swaps the effective specs. At every ``quote_generated`` the market's *quote path* — the same
strategy engine and risk engine the node builds from the session_start's effective Strategy and RiskPolicy specs
— is run with the recorded inputs (the rebuilt book's mid, the inventory, the time to settlement, the recorded
clock as now) and its outputs are compared with the record: exact integer units, floats bit for bit (they are
written shortest-round-trip and read back identical). The first difference stops the replay with a
:class:`Divergence` (record index, seq, type, field, expected, got).

This package may not import the strategy or risk code (import contract: recording knows domain, specs and the
clock only), so the quote path is injected: :class:`QuotePath` / :data:`QuotePathFactory`. ``mmctl replay``
(:mod:`mm.cli.replay_cmd`) provides the node's one, :class:`~mm.cli.replay_cmd.EngineQuotePath`.

Pacing: ``instant`` (no waiting), ``accelerated`` (the recorded gaps between records divided by ``speed``) and
``realtime`` (the recorded gaps), through an injected ``sleep`` and the records' ``ts_us``.

Partial replay (``from_snapshot=N``): the N-th ``state_snapshot`` (1 = the first, written at session start) is
where checking begins. Everything before it is fast-forwarded, not compared: the book is rebuilt, reloads are
applied, and every earlier quote's recorded mid is fed to the volatility estimator, because a ``state_snapshot``
does not carry the estimator's state (see docs/recording.md, "Replay").
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final, Literal, Protocol

import orjson

from mm.domain.book import OrderBook
from mm.domain.errors import BookIntegrityError
from mm.domain.sides import Side
from mm.domain.ticks import PriceRange, TickGrid
from mm.recording.format import SessionReader, SessionRecord

__all__ = [
    "MODES",
    "Divergence",
    "MarketConfig",
    "QuoteCall",
    "QuotePath",
    "QuotePathFactory",
    "ReplayError",
    "ReplayMode",
    "ReplayReport",
    "SessionReplayer",
    "beyond_the_snapshots",
    "checked_speed",
    "compare",
    "grid_of",
]

ReplayMode = Literal["instant", "accelerated", "realtime"]
MODES: Final[tuple[str, ...]] = ("instant", "accelerated", "realtime")
_MISSING: Final = "<missing>"


class ReplayError(ValueError):
    """A session that cannot be replayed (no session_start, no effective spec for a Market, a book delta the
    rebuilt book cannot take, a ``from_snapshot`` beyond the file's snapshots)."""


def checked_speed(mode: str, speed: float, from_snapshot: int | None) -> float:
    """The options every replayer takes, checked (a bad one is a :class:`ReplayError`); returns the speed the
    records are paced at (``realtime`` ignores ``speed``)."""
    if mode not in MODES:
        raise ReplayError(f"unknown replay mode {mode!r}; one of {', '.join(MODES)}")
    if not (math.isfinite(speed) and speed > 0):
        raise ReplayError(f"speed must be a positive number, not {speed}")
    if from_snapshot is not None and from_snapshot < 1:
        raise ReplayError(f"from_snapshot counts state_snapshot records from 1, not {from_snapshot}")
    return 1.0 if mode == "realtime" else speed


def beyond_the_snapshots(path: Path, from_snapshot: int | None, snapshots: int) -> ReplayError:
    """The error of a ``from_snapshot`` the walk never reached: the file has only ``snapshots`` of them."""
    return ReplayError(f"{path}: from_snapshot {from_snapshot} but the file has {snapshots} state_snapshot records")


@dataclass(frozen=True, slots=True)
class Divergence:
    """The first difference between the recording and the replay."""

    index: int
    """Position of the record in the file, from 1 (= its line number)."""
    seq: int
    type: str
    field: str
    """Dotted path into the record's ``data``, e.g. ``strategy.quotes.yes_bid`` or ``risk.state``."""
    expected: Any
    """What the recording says."""
    got: Any
    """What the replay computed (``"<missing>"`` when it has no such field)."""

    def describe(self) -> str:
        return (
            f"divergence at record {self.index} (seq {self.seq}, {self.type}): {self.field}: "
            f"expected {_show(self.expected)}, got {_show(self.got)}"
        )


def _show(value: Any) -> str:
    return orjson.dumps(value).decode() if value != _MISSING else _MISSING


@dataclass(slots=True)
class ReplayReport:
    path: Path
    records: int = 0
    """Records read (up to the divergence, if any)."""
    quotes_checked: int = 0
    """``quote_generated`` records recomputed and found identical."""
    quotes_fast_forwarded: int = 0
    """Quotes before the starting snapshot (``from_snapshot``): fed to the estimator, not compared."""
    start_seq: int | None = None
    """Seq of the state_snapshot checking started at (``from_snapshot``), else None."""
    divergence: Divergence | None = None
    slept_s: float = 0.0
    """Total pacing asked of ``sleep`` (accelerated / realtime)."""

    @property
    def identical(self) -> bool:
        return self.divergence is None

    def describe(self) -> str:
        if self.divergence is not None:
            return self.divergence.describe() + f" ({self.quotes_checked} quotes identical before it)"
        start = f" from the state_snapshot at seq {self.start_seq}" if self.start_seq is not None else ""
        return f"identical: {self.quotes_checked} quotes checked{start} ({self.records} records)"


@dataclass(frozen=True, slots=True)
class MarketConfig:
    """One Market's effective configuration as the session recorded it (session_start / config_reload)."""

    name: str
    ticker: str
    market: Mapping[str, Any]
    """The Market spec (``ticker``, ``exchange_ref``, ``execution``, ``trading_state``...)."""
    strategy: Mapping[str, Any]
    """The effective Strategy spec (overrides merged)."""
    risk_policy: Mapping[str, Any]
    trading_node: Mapping[str, Any] | None


@dataclass(frozen=True, slots=True)
class QuoteCall:
    """The recorded inputs of one ``quote_generated``, with the rebuilt book and the last known account state."""

    index: int
    seq: int
    ticker: str
    resource: str
    mid: Decimal
    """The rebuilt book's mid (the recorded one when the session has no book to rebuild)."""
    inventory_units: int
    time_to_settlement_s: float | None
    """As recorded: seconds (not clamped; may be ≤ 0), None = the market has no close time."""
    now_us: int
    grid: TickGrid
    book: OrderBook | None
    account: Mapping[str, Any] | None
    """This Market's account entry in the latest ``state_snapshot`` (position, PnL, open orders), if any."""
    risk_inputs: Mapping[str, Any] | None = None
    """What the risk engine saw besides the quotes (PnL, aggregate usage, trading states), when recorded."""


class QuotePath(Protocol):
    """One Market's strategy + risk, as the node runs them (see :mod:`mm.cli.replay_cmd`)."""

    def on_mid(self, mid: Decimal, now_us: int) -> None:
        """Fast-forward: the node fed this mid to the volatility estimator (no quote is compared)."""

    def quote(self, call: QuoteCall) -> Mapping[str, Any]:
        """Run one cycle's quote path; return ``{"volatility": σ, "strategy": {...}, "risk": {...}}`` in the
        ``quote_generated`` shapes."""

    def reload(self, config: MarketConfig) -> None:
        """A hot reload reached the Market: rebuild as the node does (keeping the estimator's state)."""

    def restore(self, snapshot: Mapping[str, Any]) -> None:
        """A ``state_snapshot``'s data (the node kill switch)."""


QuotePathFactory = Callable[[MarketConfig], QuotePath]


def compare(expected: Any, got: Any, path: str = "") -> tuple[str, Any, Any] | None:
    """The first (field, expected, got) where ``got`` differs from ``expected`` — exactly: same JSON types
    (an int is not a float, True is not 1), same values; None when identical. Dict keys are visited in the
    recorded order."""
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            return path, expected, got
        for key, value in expected.items():
            sub = f"{path}.{key}" if path else str(key)
            if key not in got:
                return sub, value, _MISSING
            found = compare(value, got[key], sub)
            if found is not None:
                return found
        for key, value in got.items():
            if key not in expected:
                return (f"{path}.{key}" if path else str(key)), _MISSING, value
        return None
    if isinstance(expected, list):
        if not isinstance(got, list):
            return path, expected, got
        if len(expected) != len(got):
            return path, expected, got
        for i, (e, g) in enumerate(zip(expected, got, strict=True)):
            found = compare(e, g, f"{path}[{i}]")
            if found is not None:
                # a quote [price, size] reads best whole
                return (path, expected, got) if not isinstance(e, (dict, list)) else found
        return None
    if type(expected) is not type(got) or expected != got:
        return path, expected, got
    return None


def _json(value: Any) -> Any:
    """As the recorder would write and the reader read it back (tuples → lists, floats round-tripped)."""
    return orjson.loads(orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS))


def grid_of(ranges: Any) -> TickGrid:
    """A tick grid from recorded ``[start, end, step]`` ranges (``market_info.grid``, a book record's ``grid``)."""
    return TickGrid.from_ranges(PriceRange(int(s), int(e), int(st)) for s, e, st in ranges)


@dataclass(slots=True)
class _Market:
    config: MarketConfig
    path: QuotePath | None = None


@dataclass(slots=True)
class _State:
    """What the walk through the file has rebuilt so far."""

    market_info: Mapping[str, Any] = field(default_factory=dict)
    markets: dict[str, _Market] = field(default_factory=dict)
    trading_node: Mapping[str, Any] | None = None
    book: OrderBook | None = None
    books_recorded: bool = True
    snapshot: Mapping[str, Any] | None = None
    snapshots_seen: int = 0
    started: bool = False


class SessionReplayer:
    """Replay one session file's quote path against ``factory``'s quote paths (see the module docstring).

    ``strategy_override``: a Strategy spec (as a mapping) every Market runs instead of the recorded one — the
    replay then shows where the changed parameters make the quotes differ.
    """

    def __init__(
        self,
        path: Path | str,
        factory: QuotePathFactory,
        *,
        mode: ReplayMode = "instant",
        speed: float = 1.0,
        from_snapshot: int | None = None,
        strategy_override: Mapping[str, Any] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.speed = checked_speed(mode, speed, from_snapshot)
        self.path = Path(path)
        self.factory = factory
        self.mode = mode
        self.from_snapshot = from_snapshot
        self.strategy_override = strategy_override
        self._sleep = sleep

    def run(self) -> ReplayReport:
        """Replay to the end or the first divergence. A damaged file raises
        :class:`~mm.recording.format.SessionFormatError` (file, line, reason) when the walk reaches the damage;
        an unreplayable one :class:`ReplayError`."""
        report = ReplayReport(self.path)
        state = _State(started=self.from_snapshot is None)
        last_ts: int | None = None
        with SessionReader(self.path) as reader:
            for index, record in enumerate(reader, start=1):
                report.records = index
                if index == 1 and record.type != "session_start":
                    raise ReplayError(f"{self.path}: the first record is a {record.type}, not the session_start")
                if state.started and self.mode != "instant":
                    if last_ts is not None and record.ts_us > last_ts:
                        delay = (record.ts_us - last_ts) / 1e6 / self.speed
                        report.slept_s += delay
                        self._sleep(delay)
                    last_ts = record.ts_us
                divergence = self._apply(index, record, state, report)
                if divergence is not None:
                    report.divergence = divergence
                    return report
        if not state.started:
            raise beyond_the_snapshots(self.path, self.from_snapshot, state.snapshots_seen)
        return report

    # ------------------------------------------------------------------ one record

    def _apply(self, index: int, record: SessionRecord, state: _State, report: ReplayReport) -> Divergence | None:
        data = record.data
        kind = record.type
        if kind == "session_start":
            self._start(record, state)
        elif kind == "book_snapshot":
            grid = grid_of(data["grid"]) if data.get("grid") else self._info_grid(state)
            if state.book is None or state.book.grid != grid:
                state.book = OrderBook(grid)
            self._book_op(index, lambda b: b.apply_snapshot(data["yes_bids"], data["no_bids"], record.ts_us), state)
        elif kind == "book_delta":
            if state.book is None:
                state.book = OrderBook(self._info_grid(state))
            side = Side.YES if data["side"] == "yes" else Side.NO
            self._book_op(
                index, lambda b: b.apply_delta(side, data["price_units"], data["delta_units"], record.ts_us), state
            )
        elif kind == "state_snapshot":
            state.snapshots_seen += 1
            state.snapshot = data
            for market in state.markets.values():
                if market.path is not None:
                    market.path.restore(data)
            if not state.started and state.snapshots_seen == self.from_snapshot:
                state.started = True
                report.start_seq = record.seq
        elif kind == "config_reload" and data.get("applied"):
            self._reload(record, state)
        elif kind == "quote_generated":
            return self._quote(index, record, state, report)
        return None

    def _start(self, record: SessionRecord, state: _State) -> None:
        data = record.data
        config = data.get("config") or {}
        state.market_info = data.get("market_info") or {}
        state.trading_node = config.get("trading_node")
        events = (data.get("recording") or {}).get("events") or {}
        state.books_recorded = bool(events.get("book_snapshots", True)) and bool(events.get("book_deltas", True))
        for entry in config.get("markets") or []:
            if "strategy" not in entry or "risk_policy" not in entry:
                continue  # the Market had no runtime yet: its first quote fails with a clear error below
            state.markets[entry["name"]] = _Market(self._config(entry, entry, state))

    def _config(self, entry: Mapping[str, Any], specs: Mapping[str, Any], state: _State) -> MarketConfig:
        market = entry.get("market") or {}
        strategy = self.strategy_override if self.strategy_override is not None else specs["strategy"]
        return MarketConfig(
            name=entry["name"],
            ticker=str(market.get("ticker", "")),
            market=market,
            strategy=strategy,
            risk_policy=specs["risk_policy"],
            trading_node=state.trading_node,
        )

    def _reload(self, record: SessionRecord, state: _State) -> None:
        data = record.data
        current = state.markets.get(str(data["resource"]).removeprefix("Market/"))  # recorded as "Market/<name>"
        if current is None or "strategy" not in data or "risk_policy" not in data:
            return
        entry = {"name": current.config.name, "market": current.config.market}
        current.config = self._config(entry, data, state)
        if current.path is not None:
            current.path.reload(current.config)

    def _info_grid(self, state: _State) -> TickGrid:
        ranges = state.market_info.get("grid")
        if not ranges:
            raise ReplayError(f"{self.path}: a book record before any grid (no market_info.grid in session_start)")
        return grid_of(ranges)

    def _book_op(self, index: int, op: Callable[[OrderBook], None], state: _State) -> None:
        assert state.book is not None
        try:
            op(state.book)
        except BookIntegrityError as exc:
            raise ReplayError(f"{self.path}: record {index}: the rebuilt book cannot take it: {exc}") from None

    def _path(self, index: int, resource: str, state: _State) -> QuotePath:
        market = state.markets.get(resource)
        if market is None:
            raise ReplayError(
                f"{self.path}: record {index}: quote of Market {resource!r}, whose effective specs the "
                "session_start does not hold"
            )
        if market.path is None:
            market.path = self.factory(market.config)
            if state.snapshot is not None:
                market.path.restore(state.snapshot)
        return market.path

    def _quote(self, index: int, record: SessionRecord, state: _State, report: ReplayReport) -> Divergence | None:
        data = record.data
        inputs = data["inputs"]
        resource = str(data.get("resource", ""))
        path = self._path(index, resource, state)
        try:
            recorded_mid = Decimal(inputs["mid"])
        except (InvalidOperation, TypeError, KeyError):
            raise ReplayError(f"{self.path}: record {index}: quote_generated without a decimal inputs.mid") from None
        now_us = int(inputs["now_us"])
        if not state.started:
            path.on_mid(recorded_mid, now_us)
            report.quotes_fast_forwarded += 1
            return None

        def diverged(name: str, expected: Any, got: Any) -> Divergence:
            return Divergence(index, record.seq, record.type, name, expected, got)

        book = state.book
        mid = recorded_mid
        if state.books_recorded:
            book_mid = book.mid() if book is not None else None
            if book_mid is None or book_mid != recorded_mid:
                return diverged("inputs.mid", inputs["mid"], None if book_mid is None else str(book_mid))
            mid = book_mid
        grid = grid_of(inputs["grid"]) if inputs.get("grid") else self._info_grid(state)
        market = state.markets[resource]
        call = QuoteCall(
            index=index,
            seq=record.seq,
            ticker=record.market,
            resource=resource,
            mid=mid,
            inventory_units=int(inputs["inventory_units"]),
            time_to_settlement_s=inputs.get("time_to_settlement_s"),
            now_us=now_us,
            grid=grid,
            book=book,
            account=_account(state.snapshot, market.config),
            risk_inputs=inputs.get("risk"),
        )
        got = _json(path.quote(call))
        found = compare(inputs.get("volatility"), got.get("volatility", _MISSING), "inputs.volatility")
        if found is None:
            found = compare(data["strategy"], got.get("strategy", _MISSING), "strategy")
        if found is None:
            found = compare(data["risk"], got.get("risk", _MISSING), "risk")
        if found is not None:
            return diverged(*found)
        report.quotes_checked += 1
        return None


def _account(snapshot: Mapping[str, Any] | None, config: MarketConfig) -> Mapping[str, Any] | None:
    """The Market's account (its exchange and execution) in a state_snapshot."""
    if snapshot is None:
        return None
    exchange = config.market.get("exchange_ref")
    execution = config.market.get("execution")
    for account in snapshot.get("accounts") or []:
        if account.get("exchange") == exchange and account.get("execution") == execution:
            return dict(account)
    return None
