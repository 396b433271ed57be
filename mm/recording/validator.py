"""The replay validator (FR-902): what the replayed node records, captured and compared, in order, with the file.

:class:`CaptureSink` stands where the session recorder stands (``node.recorder``): the replayed node's own code
writes its records into it with the same payload builders as when it recorded. Only the node's *decisions* are
kept — :data:`DECISIONS`: the cycle markers, config reloads, quotes and the order actions it sends; what it
merely echoes from the venue (fills, order updates, books, answers) is what the replay fed it.

:class:`ReplayValidator` pairs them with the file's decision records in order: the k-th one the file holds
against the k-th one the replay wrote, every field exactly (:func:`mm.recording.replay.compare`). A record the
replay did not write, or one it wrote that the file does not hold at that point (``settle``), is a divergence
too. ``state_snapshot`` records are compared with the replayed node's state built by the recorder's own
builder. The first difference raises :class:`ReplayDiverged` with a :class:`~mm.recording.replay.Divergence`.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import orjson

from mm.domain.book import OrderBook
from mm.recording.format import SessionRecord
from mm.recording.replay import Divergence, compare

__all__ = ["DECISIONS", "CaptureSink", "Captured", "NodeReplayReport", "ReplayDiverged", "ReplayValidator"]

DECISIONS: Final = frozenset(
    {
        "reconcile",
        "config_reload",
        "component_swap",
        "volatility_update",
        "quote_generated",
        "order_sent",
        "order_cancel",
        "order_amend",
    }
)
"""Record types the node writes as its own decisions: compared one by one with the file."""
_ORDER_ACTIONS: Final = frozenset({"order_sent", "order_cancel", "order_amend"})
_MISSING: Final = "<missing>"
_SUMMARY_KEYS: Final = ("resource", "now_us", "client_order_id", "exchange_order_id", "price_units", "size_units")


class ReplayDiverged(Exception):  # noqa: N818 - an outcome, not a failure of the replay
    """The replay stopped at the first difference."""

    def __init__(self, divergence: Divergence) -> None:
        super().__init__(divergence.describe())
        self.divergence = divergence


@dataclass(frozen=True, slots=True)
class Captured:
    type: str
    market: str
    data: Any
    """As the file would hold it (JSON round trip: tuples are lists, floats bit for bit)."""


def _json(value: Any) -> Any:
    return orjson.loads(orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS))


class CaptureSink:
    """The replayed node's recorder: keeps its decisions (in order) and which order calls it announced."""

    def __init__(self, markets: frozenset[str], decisions: frozenset[str] = DECISIONS) -> None:
        self._markets = markets
        self.decisions = decisions
        """What is kept (an older recording has no ``reconcile`` records to compare with)."""
        self.captured: deque[Captured] = deque()
        self.announced: set[tuple[str, str]] = set()
        """(call, key) the node recorded before calling the venue: ("create", client id), ("cancel" | "amend" |
        "decrease", exchange order id). The recording holds their answers."""
        self.ended: list[tuple[str, str]] = []

    def enabled(self, type_: str) -> bool:
        return type_ in self.decisions

    def record(self, type_: str, market: str, data: Mapping[str, Any], ts_us: int | None = None) -> None:
        if type_ not in self.decisions:
            return
        if type_ in _ORDER_ACTIONS:
            self.announced.add(_call_of(type_, data))
        self.captured.append(Captured(type_, market, _json(data)))

    def record_book(self, market: str, book: OrderBook) -> None:
        return None  # the replay fed this book: nothing to compare

    def end_market(self, market: str, reason: str) -> None:
        self.ended.append((market, reason))

    def hold_snapshots(self, market: str) -> None:
        return None  # the replay compares the recorded snapshots where they are

    def release_snapshots(self, market: str) -> None:
        return None

    @property
    def markets(self) -> frozenset[str]:
        return self._markets


def _call_of(type_: str, data: Mapping[str, Any]) -> tuple[str, str]:
    if type_ == "order_sent":
        return "create", str(data.get("client_order_id"))
    if type_ == "order_cancel":
        return "cancel", str(data.get("exchange_order_id"))
    return ("decrease" if "reduce_to_units" in data else "amend"), str(data.get("exchange_order_id"))


def summary(type_: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """A record named by its type and identifying fields (for a missing or extra record's report)."""
    return {"type": type_, **{k: data[k] for k in _SUMMARY_KEYS if k in data}}


class ReplayValidator:
    """Compares the replay's decisions and states with the file's (see the module docstring).

    ``ignore``: per record type, top-level fields not compared (the config digests when replaying another
    Strategy on purpose; ``override`` then also leaves the runtime's digest out of state snapshots).
    ``checking`` False: a fast-forward — the replay runs, nothing is compared.
    """

    def __init__(
        self,
        sink: CaptureSink,
        *,
        ignore: Mapping[str, frozenset[str]] | None = None,
        override: bool = False,
        recorded_fields_only: bool = False,
    ) -> None:
        self.sink = sink
        self.ignore: Mapping[str, frozenset[str]] = ignore or {}
        self.override = override
        self.recorded_fields_only = recorded_fields_only
        """An older recording: compare the fields it has (the node writes more today)."""
        self.checking = True
        self.checked: Counter[str] = Counter()

    def expect(self, index: int, record: SessionRecord) -> None:
        """The file's next decision: the replay must have written the same one, next."""
        captured = self.sink.captured
        if not self.checking:
            if captured:
                captured.popleft()
            return
        if not captured:
            raise _diverged(index, record.seq, record.type, summary(record.type, record.data), _MISSING)
        got = captured.popleft()
        if got.type != record.type:
            raise _diverged(
                index, record.seq, record.type, summary(record.type, record.data), summary(got.type, got.data)
            )
        skip = self.ignore.get(record.type, frozenset())
        mine, theirs = _without(record.data, skip), _without(got.data, skip)
        if self.recorded_fields_only:
            theirs = _project(theirs, mine)
        found = compare(mine, theirs)
        if found is not None:
            raise ReplayDiverged(Divergence(index, record.seq, record.type, *found))
        self.checked[record.type] += 1

    def settle(self, index: int, seq: int, type_: str) -> None:
        """Everything the replay decided so far is in the file before this record: an extra decision otherwise."""
        captured = self.sink.captured
        if not captured:
            return
        if not self.checking:
            captured.clear()
            return
        extra = captured[0]
        raise _diverged(index, seq, type_, _MISSING, summary(extra.type, extra.data))

    def check_state(self, index: int, record: SessionRecord, got: Mapping[str, Any], field: str = "") -> None:
        """A recorded ``state_snapshot`` (or ``session_end.state``) against the replayed node's state."""
        if not self.checking:
            return
        expected = record.data if not field else record.data.get(field)
        if not isinstance(expected, Mapping):
            return
        mine = _comparable_state(expected, self.override)
        theirs = _project(_comparable_state(_json(got), self.override), mine)
        found = compare(mine, theirs, field)
        if found is not None:
            raise ReplayDiverged(Divergence(index, record.seq, record.type, *found))
        self.checked["state_snapshot"] += 1


def _diverged(index: int, seq: int, type_: str, expected: Any, got: Any) -> ReplayDiverged:
    """A missing (``got`` is ``<missing>``) or extra (``expected`` is) record."""
    return ReplayDiverged(Divergence(index, seq, type_, "(record)", expected, got))


def _without(data: Any, skip: frozenset[str]) -> Any:
    if not skip or not isinstance(data, Mapping):
        return data
    return {k: v for k, v in data.items() if k not in skip}


def _comparable_state(state: Mapping[str, Any], override: bool) -> dict[str, Any]:
    """A state without what this file cannot reproduce: per account, the account-wide totals and the ended
    orders of every market (the account may trade markets recorded in other files); with a Strategy override,
    the config digests."""
    out = dict(state)
    if "accounts" in state:
        accounts = []
        for account in state["accounts"] or []:
            entry = {k: v for k, v in account.items() if k != "ledger"}
            if isinstance(entry.get("restore"), Mapping):
                entry["restore"] = {k: v for k, v in entry["restore"].items() if k != "finished"}
            accounts.append(entry)
        out["accounts"] = accounts
    if override and isinstance(state.get("markets"), list):
        out["markets"] = [{k: v for k, v in m.items() if k != "config_digest"} for m in state["markets"]]
    return out


def _project(got: Any, expected: Any) -> Any:
    """``got`` restricted to the keys ``expected`` has, at every level: an older recording's snapshot holds fewer
    fields than the node writes today, and only what it holds can be compared."""
    if isinstance(got, dict) and isinstance(expected, Mapping):
        return {k: _project(v, expected[k]) for k, v in got.items() if k in expected}
    if isinstance(got, list) and isinstance(expected, list) and len(got) == len(expected):
        return [_project(g, e) for g, e in zip(got, expected, strict=True)]
    return got


@dataclass(slots=True)
class NodeReplayReport:
    path: Path
    records: int = 0
    """Records walked (up to the divergence, if any)."""
    cycles: int = 0
    """Market reconcile cycles run."""
    checked: Counter[str] = field(default_factory=Counter)
    """Records found identical, by type."""
    start_seq: int | None = None
    """Seq of the state_snapshot checking started at (``from_snapshot``)."""
    replay_format: int = 2
    divergence: Divergence | None = None
    slept_s: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        return self.divergence is None

    @property
    def quotes_checked(self) -> int:
        return self.checked["quote_generated"]

    @property
    def orders_checked(self) -> int:
        return sum(self.checked[t] for t in _ORDER_ACTIONS)

    def _counts(self) -> str:
        return (
            f"{self.quotes_checked} quotes, {self.orders_checked} order actions, "
            f"{self.checked['state_snapshot']} state snapshots"
        )

    def describe(self) -> str:
        if self.divergence is not None:
            return self.divergence.describe() + f" ({self._counts()} identical before it)"
        start = f" from the state_snapshot at seq {self.start_seq}" if self.start_seq is not None else ""
        return (
            f"identical: {self._counts()} checked over {self.cycles} reconcile cycles{start} ({self.records} records)"
        )
