"""The pure logic of the MarketSelector reconciler (FR-1303, design.md §2 and §4).

A MarketSelector discovers venue markets, keeps the best ``max_concurrent`` of them ACTIVE and owns the
Market resources it creates from its ``template``, so hourly markets roll over by themselves. Everything
here is a function of its inputs — the selector's spec, what the venue lists (:class:`MarketInfo`), the
selector's previous :class:`SelectorState` and the time ``now_us`` — with no IO and no clock reads, so a
reconcile gives the same plan after one event or a hundred coalesced ones, and replay is deterministic.

Per ticker the lifecycle is (FR-1303)::

    DISCOVERED → ANALYZING → ACTIVE → SETTLING → SETTLED
                    ↕
                 REJECTED

* DISCOVERED: first seen in a listing; it is analysed in the same reconcile.
* ANALYZING: passes the filters (or is being evaluated) but holds no slot yet.
* REJECTED: fails a filter; re-evaluated on every reconcile (volume grows, the next hour comes within
  ``max_time_to_settlement``), so REJECTED → ANALYZING is legal.
* ACTIVE: a Market resource exists and quotes. An ACTIVE market is *sticky*: the discovery filters
  (volume, spread, price, …) decide only what may *start*; once running, a market is stopped only when it
  comes within ``deactivate_before_close_minutes`` of its close, leaves ``active`` status for good, is
  excluded, disappears, or is displaced because include_tickers / a lower ``max_concurrent`` need its slot.
* SETTLING: winding down — its Market is switched to ``reducing`` (reduce-only) and the Market reconciler
  handles its own settlement cutoff. It no longer counts against ``max_concurrent``. It never goes back to
  ACTIVE.
* SETTLED: the venue determined or settled the market, or stopped listing it. Terminal.
"""

from __future__ import annotations

import enum
import hashlib
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import ROUND_DOWN, ROUND_UP, Decimal
from typing import Any, Final, Literal

from mm.adapters.base import MarketInfo
from mm.domain.events import MarketLifecycle
from mm.domain.price import PRICE_SCALE, Quantity, units_to_dollars
from mm.specs.market import MarketSelectorSpec, MarketSpec, TradingState
from mm.specs.types import NAME_RE, normalize_decimal

__all__ = [
    "LEGAL_TRANSITIONS",
    "IllegalTransitionError",
    "MarketStart",
    "MarketStop",
    "Phase",
    "Rejection",
    "SelectionPlan",
    "SelectionStrategy",
    "SelectorState",
    "TickerState",
    "Transition",
    "apply_lifecycle",
    "filter_markets",
    "market_resource_name",
    "rank",
    "rejection_reasons",
    "select",
    "transition",
]

US_PER_MINUTE: Final = 60_000_000
SELECTOR_LABEL: Final = "mm/selector"
"""Label put on every Market a selector creates: the owning selector's name."""
TICKER_ANNOTATION: Final = "mm/ticker"

SelectionStrategy = Literal["highest_volume", "lowest_spread", "random", "closest_to_even"]

_CLOSED_STATUSES: Final = frozenset({"closed", "determined", "settled"})
"""Venue statuses after which a market can no longer be started (``close_date_updated`` may reopen one)."""
_DONE_STATUSES: Final = frozenset({"determined", "settled"})
"""Venue statuses that end our interest in a market: the result is known."""
_RESTRICTIVENESS: Final[Mapping[str, int]] = {"active": 0, "reducing": 1, "halted": 2}


class Phase(enum.StrEnum):
    """A ticker's place in the FR-1303 lifecycle, as the selector sees it."""

    DISCOVERED = "DISCOVERED"
    ANALYZING = "ANALYZING"
    ACTIVE = "ACTIVE"
    SETTLING = "SETTLING"
    SETTLED = "SETTLED"
    REJECTED = "REJECTED"


LEGAL_TRANSITIONS: Final[Mapping[Phase, frozenset[Phase]]] = {
    Phase.DISCOVERED: frozenset({Phase.ANALYZING}),
    Phase.ANALYZING: frozenset({Phase.ACTIVE, Phase.REJECTED}),
    Phase.REJECTED: frozenset({Phase.ANALYZING}),
    Phase.ACTIVE: frozenset({Phase.SETTLING}),
    Phase.SETTLING: frozenset({Phase.SETTLED}),
    Phase.SETTLED: frozenset(),
}
"""Every legal move; anything else raises :class:`IllegalTransitionError`. A market that goes from active to
determined between two reconciles passes through SETTLING within one plan (both moves are recorded)."""

OWNED_PHASES: Final = frozenset({Phase.ACTIVE, Phase.SETTLING})
"""Phases in which the selector's Market resource for the ticker exists and must be kept."""
_STARTABLE: Final = frozenset({Phase.DISCOVERED, Phase.ANALYZING, Phase.REJECTED})
"""Phases from which a ticker may still become ACTIVE."""
_OWNED_OR_DONE: Final = frozenset({Phase.ACTIVE, Phase.SETTLING, Phase.SETTLED})


class IllegalTransitionError(ValueError):
    """A lifecycle move not in :data:`LEGAL_TRANSITIONS` (e.g. SETTLED → ACTIVE)."""


@dataclass(frozen=True, slots=True)
class Transition:
    """One lifecycle move, for events, logs and ``mmctl describe``. ``from_phase`` is None for a new ticker."""

    ticker: str
    from_phase: Phase | None
    to_phase: Phase
    reason: str
    at_us: int


@dataclass(frozen=True, slots=True)
class TickerState:
    """Where one ticker is in its lifecycle: the phase, since when, and why it got there."""

    ticker: str
    phase: Phase
    since_us: int
    reason: str = ""
    manual: bool = False
    """ACTIVE because of ``include_tickers`` (manual add), rather than chosen by the selection strategy."""


def transition(record: TickerState, to: Phase, reason: str, now_us: int) -> TickerState:
    """``record`` moved to ``to``; raises :class:`IllegalTransitionError` unless the move is legal."""
    if to not in LEGAL_TRANSITIONS[record.phase]:
        raise IllegalTransitionError(f"{record.ticker}: {record.phase} → {to} is not a legal lifecycle transition")
    return replace(record, phase=to, since_us=now_us, reason=reason, manual=record.manual and to is Phase.ACTIVE)


@dataclass(frozen=True)
class SelectorState:
    """The selector's memory between reconciles: one :class:`TickerState` per ticker it tracks.

    Kept in the MarketSelector's ``status`` (see :meth:`to_status`) so a restarted controller resumes where it
    was. Tickers the venue stopped listing, and never-owned markets that closed, are dropped.
    """

    markets: Mapping[str, TickerState] = field(default_factory=dict)

    def phase(self, ticker: str) -> Phase | None:
        record = self.markets.get(ticker)
        return None if record is None else record.phase

    def tickers(self, phase: Phase) -> tuple[str, ...]:
        """The tickers in ``phase``, sorted."""
        return tuple(sorted(t for t, r in self.markets.items() if r.phase is phase))

    @property
    def active(self) -> tuple[str, ...]:
        return self.tickers(Phase.ACTIVE)

    @property
    def settling(self) -> tuple[str, ...]:
        return self.tickers(Phase.SETTLING)

    def to_status(self) -> dict[str, Any]:
        """JSON-ready form for the selector's ``status.markets`` (sorted by ticker)."""
        return {
            "markets": [
                {"ticker": r.ticker, "phase": r.phase.value, "since_us": r.since_us, "reason": r.reason}
                | ({"manual": True} if r.manual else {})
                for r in sorted(self.markets.values(), key=lambda r: r.ticker)
            ]
        }

    @classmethod
    def from_status(cls, status: Mapping[str, Any]) -> SelectorState:
        """The inverse of :meth:`to_status`."""
        records = [
            TickerState(
                ticker=str(item["ticker"]),
                phase=Phase(item["phase"]),
                since_us=int(item["since_us"]),
                reason=str(item.get("reason", "")),
                manual=bool(item.get("manual", False)),
            )
            for item in status.get("markets", ())
        ]
        return cls({r.ticker: r for r in records})


# --- filters ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why one market may not be started, in words an operator reads ("spread 0.12 > max 0.05")."""

    ticker: str
    reasons: tuple[str, ...]

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)


def _plain(value: Decimal) -> str:
    """``Decimal("1000.00")`` → ``1000``, ``0.1250`` → ``0.125``; never an exponent."""
    return str(normalize_decimal(value))


def _money(value: Decimal) -> str:
    """Dollars with at least two decimals: ``0.1200`` → ``0.12``, ``0.1`` → ``0.10``, ``0.125`` → ``0.125``."""
    plain = normalize_decimal(value)
    exponent = plain.as_tuple().exponent
    assert isinstance(exponent, int)
    return str(plain.quantize(Decimal("0.01"))) if exponent > -2 else str(plain)


def _minutes(remaining_us: int, rounding: str) -> str:
    """Minutes to one decimal, rounded towards the side that violates the limit (so the text never contradicts)."""
    return _plain((Decimal(remaining_us) / US_PER_MINUTE).quantize(Decimal("0.1"), rounding=rounding))


def _within(remaining_us: int, minutes: Decimal) -> bool:
    """True when fewer than ``minutes`` remain (exact: Decimal against int)."""
    return remaining_us < minutes * US_PER_MINUTE


def _quantity(value: Quantity | None) -> str:
    return "unknown" if value is None else _plain(value.to_decimal())


def _spread_units(info: MarketInfo) -> int | None:
    if info.best_bid is None or info.best_ask is None:
        return None
    return info.best_ask.units - info.best_bid.units


def _mid_twice_units(info: MarketInfo) -> int | None:
    """bid + ask in $0.0001 units (twice the mid, so it stays an exact integer)."""
    if info.best_bid is None or info.best_ask is None:
        return None
    return info.best_bid.units + info.best_ask.units


def rejection_reasons(
    info: MarketInfo,
    spec: MarketSelectorSpec,
    now_us: int,
    *,
    series_categories: Mapping[str, str] | None = None,
) -> tuple[str, ...]:
    """Every FR-1303 filter ``info`` fails at ``now_us``; empty when the market may be started.

    Time to settlement is measured to ``close_time`` (when trading stops). ``series_categories`` maps a series
    id to its category label; it is consulted only when ``filters.categories`` is set, and a market whose
    series has no known category is then rejected (the venue's Market object no longer carries one).
    """
    f = spec.filters
    reasons: list[str] = []
    if info.market_id in spec.exclude_tickers:
        reasons.append("excluded by exclude_tickers (manual remove)")
    if spec.series and info.series_id not in spec.series:
        reasons.append(f"series {info.series_id or '(none)'} not in series [{', '.join(spec.series)}]")
    if f.categories:
        wanted = ", ".join(f.categories)
        category = (series_categories or {}).get(info.series_id)
        if category is None:
            reasons.append(f"category of series {info.series_id or '(none)'} unknown; categories [{wanted}]")
        elif category not in f.categories:
            reasons.append(f"category {category} not in categories [{wanted}]")
    if info.status != "active":
        reasons.append(f"status {info.status}, not active")

    remaining = info.close_time_us - now_us
    if remaining <= 0:
        reasons.append("past its close time")
    else:
        if _within(remaining, spec.deactivate_before_close_minutes):
            reasons.append(
                f"closes in {_minutes(remaining, ROUND_DOWN)} min, within deactivate_before_close_minutes "
                f"{_plain(spec.deactivate_before_close_minutes)}"
            )
        if _within(remaining, f.min_time_to_settlement):
            reasons.append(
                f"closes in {_minutes(remaining, ROUND_DOWN)} min < min_time_to_settlement "
                f"{_plain(f.min_time_to_settlement)}"
            )
        if f.max_time_to_settlement is not None and remaining > f.max_time_to_settlement * US_PER_MINUTE:
            reasons.append(
                f"closes in {_minutes(remaining, ROUND_UP)} min > max_time_to_settlement "
                f"{_plain(f.max_time_to_settlement)}"
            )

    if f.min_volume_24h > 0 and (info.volume_24h is None or info.volume_24h.to_decimal() < f.min_volume_24h):
        reasons.append(f"volume_24h {_quantity(info.volume_24h)} < min {_plain(f.min_volume_24h)}")
    if f.min_open_interest > 0 and (
        info.open_interest is None or info.open_interest.to_decimal() < f.min_open_interest
    ):
        reasons.append(f"open_interest {_quantity(info.open_interest)} < min {_plain(f.min_open_interest)}")

    spread = _spread_units(info)
    if spread is not None and spread <= 0:
        reasons.append(f"book crossed or locked (bid {info.best_bid} >= ask {info.best_ask})")
    if f.max_spread is not None:
        if spread is None:
            reasons.append(f"spread unknown (one-sided or empty book), max {_money(f.max_spread)}")
        elif units_to_dollars(spread) > f.max_spread:
            reasons.append(f"spread {_money(units_to_dollars(spread))} > max {_money(f.max_spread)}")

    if f.min_price is not None or f.max_price is not None:
        twice = _mid_twice_units(info)
        if twice is None:
            reasons.append("mid unknown (one-sided or empty book)")
        else:
            mid = units_to_dollars(twice) / 2
            if f.min_price is not None and mid < f.min_price:
                reasons.append(f"mid {_money(mid)} < min_price {_money(f.min_price)}")
            if f.max_price is not None and mid > f.max_price:
                reasons.append(f"mid {_money(mid)} > max_price {_money(f.max_price)}")
    return tuple(reasons)


def filter_markets(
    infos: Iterable[MarketInfo],
    spec: MarketSelectorSpec,
    now_us: int,
    *,
    series_categories: Mapping[str, str] | None = None,
) -> tuple[list[MarketInfo], list[Rejection]]:
    """Split ``infos`` (order kept) into the markets that may be started now and the rejected ones with reasons."""
    eligible: list[MarketInfo] = []
    rejected: list[Rejection] = []
    for info in infos:
        reasons = rejection_reasons(info, spec, now_us, series_categories=series_categories)
        if reasons:
            rejected.append(Rejection(info.market_id, reasons))
        else:
            eligible.append(info)
    return eligible, rejected


# --- ranking ---------------------------------------------------------------------------------------------------


def _random_key(seed: int, ticker: str) -> int:
    # A generator per (seed, ticker): a ticker's draw does not depend on which other markets are listed, so the
    # order of two markets never flips because a third appeared. str seeds hash with SHA-512 (not PYTHONHASHSEED).
    return random.Random(f"{seed}:{ticker}").getrandbits(64)


def rank(eligible: Iterable[MarketInfo], strategy: SelectionStrategy, seed: int) -> list[MarketInfo]:
    """Best first by ``strategy``; ties (and markets missing the ranked figure, which go last) by ticker.

    * ``highest_volume``: largest ``volume_24h``.
    * ``lowest_spread``: narrowest best ask − best bid.
    * ``closest_to_even``: mid nearest $0.50 (at-the-money strikes).
    * ``random``: a seeded draw per ticker — the same seed gives the same order, in any input order.
    """
    items = list(eligible)
    if strategy == "highest_volume":
        return sorted(
            items,
            key=lambda i: (i.volume_24h is None, -(i.volume_24h.units if i.volume_24h else 0), i.market_id),
        )
    if strategy == "lowest_spread":

        def by_spread(i: MarketInfo) -> tuple[bool, int, str]:
            spread = _spread_units(i)
            return (spread is None, spread or 0, i.market_id)

        return sorted(items, key=by_spread)
    if strategy == "closest_to_even":

        def by_distance(i: MarketInfo) -> tuple[bool, int, str]:
            twice = _mid_twice_units(i)
            return (twice is None, abs((twice or 0) - PRICE_SCALE), i.market_id)

        return sorted(items, key=by_distance)
    if strategy == "random":
        return sorted(items, key=lambda i: (_random_key(seed, i.market_id), i.market_id))
    raise ValueError(f"unknown selection_strategy {strategy!r}")


# --- resources -------------------------------------------------------------------------------------------------

_NOT_NAME_CHARS: Final = re.compile(r"[^a-z0-9.-]+")
_MAX_NAME: Final = 63


def market_resource_name(selector_name: str, ticker: str) -> str:
    """The deterministic name of the Market a selector creates: ``<selector>-<ticker, lower-cased>``.

    ``btc-hourly`` + ``KXBTCD-26AUG1317-T73249.99`` → ``btc-hourly-kxbtcd-26aug1317-t73249.99``. Characters a
    resource name cannot hold become ``-``; when anything had to be replaced or the name would pass 63
    characters, a short hash of the ticker keeps names of different tickers apart.
    """
    lowered = ticker.lower()
    cleaned = _NOT_NAME_CHARS.sub("-", lowered)
    name = f"{selector_name}-{cleaned}".strip("-.")
    if cleaned != lowered or len(name) > _MAX_NAME:
        digest = hashlib.sha256(ticker.encode()).hexdigest()[:8]
        name = f"{name[: _MAX_NAME - len(digest) - 1].rstrip('-.')}-{digest}"
    if not NAME_RE.fullmatch(name):
        raise ValueError(f"cannot build a resource name from selector {selector_name!r} and ticker {ticker!r}")
    return name


def _market_spec(spec: MarketSelectorSpec, ticker: str, *, winding_down: bool) -> MarketSpec:
    data = spec.template.model_dump()
    if winding_down:
        state: TradingState = spec.template.trading_state
        data["trading_state"] = state if _RESTRICTIVENESS[state] >= _RESTRICTIVENESS["reducing"] else "reducing"
    return MarketSpec.model_validate({**data, "exchange_ref": spec.exchange_ref, "ticker": ticker})


@dataclass(frozen=True, slots=True)
class MarketStart:
    """Create (or re-apply) the Market resource for a newly ACTIVE ticker."""

    ticker: str
    name: str
    spec: MarketSpec
    labels: Mapping[str, str]
    reason: str

    def manifest(self) -> dict[str, Any]:
        """The Market resource as a JSON-ready document (exact decimals as strings)."""
        return {
            "apiVersion": "mm/v1alpha1",
            "kind": "Market",
            "metadata": {
                "name": self.name,
                "labels": dict(self.labels),
                "annotations": {TICKER_ANNOTATION: self.ticker, "mm/change-cause": self.reason},
            },
            "spec": self.spec.model_dump(mode="json"),
        }


@dataclass(frozen=True, slots=True)
class MarketStop:
    """Wind a Market down (ACTIVE → SETTLING): its spec becomes reduce-only; its own cutoff still applies."""

    ticker: str
    name: str
    spec: MarketSpec
    reason: str


@dataclass(frozen=True, slots=True)
class SelectionPlan:
    """What one reconcile of a MarketSelector decided. Applying it is the controller's job."""

    active: tuple[str, ...]
    """Tickers ACTIVE after this plan: include_tickers first (in their order), then by the strategy."""
    start: tuple[MarketStart, ...]
    """Tickers that became ACTIVE in this plan: create their Market resources."""
    stop: tuple[MarketStop, ...]
    """Tickers that moved ACTIVE → SETTLING in this plan: switch their Markets to the wind-down spec."""
    finished: tuple[str, ...]
    """Tickers that reached SETTLED in this plan: their Markets may be deleted after their own settlement."""
    desired: Mapping[str, MarketSpec]
    """Resource name → spec of every Market the selector owns now (ACTIVE and SETTLING), level-triggered."""
    rejected: tuple[Rejection, ...]
    """Every listed market that may not be started now, with its reasons."""
    unmet_includes: tuple[Rejection, ...]
    """include_tickers that cannot be ACTIVE now, and why (not listed, closing, no slot left, …)."""
    transitions: tuple[Transition, ...]
    state: SelectorState


# --- the plan --------------------------------------------------------------------------------------------------


def _done_reason(info: MarketInfo | None) -> str | None:
    """Why an owned market is finished (SETTLED), or None while it is not."""
    if info is None:
        return "no longer listed by the venue"
    if info.status in _DONE_STATUSES:
        return f"status {info.status}"
    return None


def _stop_reason(info: MarketInfo, spec: MarketSelectorSpec, now_us: int) -> str | None:
    """Why an ACTIVE market must wind down now, or None. The discovery filters deliberately do not apply."""
    if info.market_id in spec.exclude_tickers:
        return "excluded by exclude_tickers (manual remove)"
    if info.status in _CLOSED_STATUSES:
        return f"status {info.status}"
    remaining = info.close_time_us - now_us
    if remaining <= 0:
        return "past its close time"
    if _within(remaining, spec.deactivate_before_close_minutes):
        return (
            f"closes in {_minutes(remaining, ROUND_DOWN)} min, within deactivate_before_close_minutes "
            f"{_plain(spec.deactivate_before_close_minutes)}"
        )
    return None


def _include_blocker(
    ticker: str, record: TickerState | None, info: MarketInfo | None, spec: MarketSelectorSpec, now_us: int
) -> str | None:
    """Why an include_tickers market cannot be ACTIVE now (includes bypass the filters, not the venue's facts)."""
    if record is not None and record.phase in (Phase.SETTLING, Phase.SETTLED):
        return f"already {record.phase.value}; a market never returns to ACTIVE"
    if info is None:
        return "not listed by the venue"
    if info.status != "active":
        return f"status {info.status}, not active"
    return _stop_reason(info, spec, now_us)


class _Recorder:
    """Applies legal transitions to a working copy of the state and keeps the log."""

    def __init__(self, state: SelectorState, now_us: int) -> None:
        self.records: dict[str, TickerState] = dict(state.markets)
        self.log: list[Transition] = []
        self.now_us = now_us

    def discover(self, ticker: str) -> TickerState:
        record = TickerState(ticker, Phase.DISCOVERED, self.now_us, "listed by the venue")
        self.records[ticker] = record
        self.log.append(Transition(ticker, None, Phase.DISCOVERED, record.reason, self.now_us))
        return record

    def move(self, ticker: str, to: Phase, reason: str, *, manual: bool = False) -> TickerState:
        before = self.records[ticker]
        after = transition(before, to, reason, self.now_us)
        if manual:
            after = replace(after, manual=True)
        self.records[ticker] = after
        self.log.append(Transition(ticker, before.phase, to, reason, self.now_us))
        return after


def _index(infos: Sequence[MarketInfo]) -> dict[str, MarketInfo]:
    by_ticker: dict[str, MarketInfo] = {}
    for info in infos:
        if by_ticker.get(info.market_id, info) != info:
            raise ValueError(f"market {info.market_id} is listed twice with different facts")
        by_ticker[info.market_id] = info
    return by_ticker


def select(
    spec: MarketSelectorSpec,
    infos: Sequence[MarketInfo],
    current_state: SelectorState,
    now_us: int,
    seed: int,
    *,
    selector_name: str,
    series_categories: Mapping[str, str] | None = None,
) -> SelectionPlan:
    """Decide which markets should be ACTIVE at ``now_us`` and how to get there. Pure: same inputs, same plan.

    ``infos`` is what the venue lists for the selector's series (any status), plus the markets the selector
    owns and include_tickers even when the listing omits them — an owned market missing from ``infos`` is
    taken as gone (SETTLED).

    1. Owned markets wind down: ACTIVE → SETTLING when excluded, closed, past close, or within
       ``deactivate_before_close_minutes`` of close; ACTIVE/SETTLING → SETTLED when the venue reports
       ``determined``/``settled`` or stops listing the market.
    2. Slots (``max_concurrent``, ACTIVE only): include_tickers first, then the still-ACTIVE markets (sticky:
       no churn when a better market appears; displaced only if includes or a lower ``max_concurrent`` need
       the slot), then — with ``auto_discover`` — eligible markets in ``selection_strategy`` order. Because
       step 1 frees the slots of the hour that is closing, the next hour's markets start in the same plan.
    3. Every other listed market is ANALYZING (eligible, waiting for a slot) or REJECTED (with its reasons).
    """
    by_ticker = _index(infos)
    listed = list(by_ticker.values())  # an identical duplicate counts once
    eligible, rejected = filter_markets(listed, spec, now_us, series_categories=series_categories)
    eligible_ids = {i.market_id for i in eligible}
    rejected_by = {r.ticker: r for r in rejected}
    rec = _Recorder(current_state, now_us)
    stops: dict[str, str] = {}
    finished: list[str] = []

    # 1. Wind down what must stop, finish what is done.
    for ticker in sorted(rec.records):
        record = rec.records[ticker]
        if record.phase not in OWNED_PHASES:
            continue
        info = by_ticker.get(ticker)
        done = _done_reason(info)
        if record.phase is Phase.ACTIVE:
            why = done if done is not None or info is None else _stop_reason(info, spec, now_us)
            if why is not None:
                rec.move(ticker, Phase.SETTLING, why)
                stops[ticker] = why
        if done is not None:
            rec.move(ticker, Phase.SETTLED, done)
            finished.append(ticker)

    # 2. Fill the slots: includes, then sticky ACTIVE markets, then new ones by the strategy.
    limit = spec.max_concurrent
    chosen: list[str] = []
    manual: set[str] = set()
    unmet: list[Rejection] = []
    for ticker in dict.fromkeys(spec.include_tickers):
        if ticker in spec.exclude_tickers:
            continue  # admission refuses the overlap; never trade an excluded market regardless
        blocker = _include_blocker(ticker, rec.records.get(ticker), by_ticker.get(ticker), spec, now_us)
        if blocker is None and len(chosen) >= limit:
            blocker = f"include_tickers beyond max_concurrent {limit}"
        if blocker is not None:
            unmet.append(Rejection(ticker, (blocker,)))
            continue
        chosen.append(ticker)
        manual.add(ticker)

    sticky = [by_ticker[t] for t, r in rec.records.items() if r.phase is Phase.ACTIVE and t not in manual]
    for info in rank(sticky, spec.selection_strategy, seed):
        if len(chosen) < limit:
            chosen.append(info.market_id)
        else:
            why = f"displaced: more than max_concurrent {limit} ACTIVE markets"
            rec.move(info.market_id, Phase.SETTLING, why)
            stops[info.market_id] = why

    if spec.auto_discover:
        for info in rank(eligible, spec.selection_strategy, seed):
            if len(chosen) >= limit:
                break
            known = rec.records.get(info.market_id)
            if info.market_id in chosen or (known is not None and known.phase not in _STARTABLE):
                continue
            chosen.append(info.market_id)

    # 3. Lifecycle of every listed market that the selector does not own (yet).
    chosen_set = set(chosen)
    started: dict[str, str] = {}
    for ticker in sorted(by_ticker):
        info = by_ticker[ticker]
        known = rec.records.get(ticker)
        if known is None and info.status in _CLOSED_STATUSES:
            continue  # never owned and over: reported in ``rejected``, not tracked
        record = rec.discover(ticker) if known is None else known
        if record.phase is Phase.DISCOVERED:
            record = rec.move(ticker, Phase.ANALYZING, "evaluating the filters")
        if record.phase is Phase.ACTIVE:
            if (ticker in manual) != record.manual:
                rec.records[ticker] = replace(record, manual=ticker in manual)
            continue
        if record.phase not in _STARTABLE:
            continue
        if ticker in chosen_set:
            if ticker in manual:
                why = "include_tickers (manual add)"
            else:
                why = f"selected by {spec.selection_strategy} (slot {chosen.index(ticker) + 1} of {limit})"
            if record.phase is Phase.REJECTED:
                rec.move(ticker, Phase.ANALYZING, "re-evaluated")
            rec.move(ticker, Phase.ACTIVE, why, manual=ticker in manual)
            started[ticker] = why
        elif ticker in eligible_ids:
            if record.phase is Phase.REJECTED:
                rec.move(ticker, Phase.ANALYZING, "passes the filters")
        elif record.phase is Phase.ANALYZING:
            rec.move(ticker, Phase.REJECTED, rejected_by[ticker].reason)

    # 4. Forget what needs no memory: settled or never-owned markets the venue no longer lists or has closed.
    for ticker, record in list(rec.records.items()):
        info = by_ticker.get(ticker)
        if record.phase in OWNED_PHASES:
            continue
        if info is None or (record.phase is not Phase.SETTLED and info.status in _CLOSED_STATUSES):
            del rec.records[ticker]

    state = SelectorState(dict(sorted(rec.records.items())))
    labels = {SELECTOR_LABEL: selector_name}
    start = tuple(
        MarketStart(t, market_resource_name(selector_name, t), _market_spec(spec, t, winding_down=False), labels, why)
        for t, why in ((t, started[t]) for t in chosen if t in started)
    )
    stop = tuple(
        MarketStop(t, market_resource_name(selector_name, t), _market_spec(spec, t, winding_down=True), why)
        for t, why in sorted(stops.items())
    )
    desired = {
        market_resource_name(selector_name, t): _market_spec(spec, t, winding_down=r.phase is Phase.SETTLING)
        for t, r in state.markets.items()
        if r.phase in OWNED_PHASES
    }
    return SelectionPlan(
        active=tuple(chosen),
        start=start,
        stop=stop,
        finished=tuple(finished),
        desired=desired,
        rejected=tuple(r for r in rejected if state.phase(r.ticker) not in _OWNED_OR_DONE),
        unmet_includes=tuple(unmet),
        transitions=tuple(rec.log),
        state=state,
    )


def apply_lifecycle(state: SelectorState, event: MarketLifecycle) -> tuple[SelectorState, tuple[Transition, ...]]:
    """React at once to a venue lifecycle event for an owned market (the next :func:`select` would see it too).

    ``determined``/``settled`` finish an ACTIVE or SETTLING market (ACTIVE passes through SETTLING). Other
    kinds change nothing here: close-time moves and pauses arrive with the next listing.
    """
    record = state.markets.get(event.market_id)
    if record is None or record.phase not in OWNED_PHASES or event.kind not in ("determined", "settled"):
        return state, ()
    rec = _Recorder(state, event.timestamp_us)
    reason = f"lifecycle event {event.kind}"
    if record.phase is Phase.ACTIVE:
        rec.move(event.market_id, Phase.SETTLING, reason)
    rec.move(event.market_id, Phase.SETTLED, reason)
    return SelectorState(dict(sorted(rec.records.items()))), tuple(rec.log)
