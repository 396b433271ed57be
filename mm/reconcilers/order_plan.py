"""The pure order planner of the Market reconciler: desired quotes + our open orders → ordered actions.

``plan_orders(desired, open_orders, context)`` is the *plan* step of observe → plan → act (design.md §4). It
reads no clock and does no IO; the time, the throttle state and the id counters come in through
:class:`PlanContext`. Units: prices are :class:`Price` ($0.0001 units, ``Price(5600)`` = $0.56), sizes are
:class:`Quantity` (1/100 contract), positions and size tolerances are ``int`` 1/100-contract units, times
are ``int`` UTC microseconds.

Rules, in the order they apply:

1. **Levels.** On a unified YES book (``capabilities.unified_book``, Kalshi) the four quotes collapse to two
   levels: ``YES_BID`` (≡ NO ask at 1 − p) and ``YES_ASK`` (≡ NO bid at 1 − p). Equivalent quotes merge into one
   order: same YES price → the larger size (exposure is not doubled; risk counts it the same way); different
   prices (risk and strategy never produce this) → the less aggressive quote. Open orders are placed on their
   level by their YES-book side and price (``OrderRequest.yes_book``). Without a unified book each quote is its
   own level and order, compared in its own contract's prices.
2. **Trading state.** ``halted``: cancel every order of ours, place nothing. ``reducing``: only levels whose
   fills bring the net position toward zero survive, their sizes capped (together) at ``|position|``.
3. **Ownership.** An open order whose client id does not parse with our prefix and this market's hash is
   *foreign*: never touched, reported in :attr:`OrderPlan.foreign`.
4. **Duplicates.** Several of our orders on one level: the one closest to the desired quote (fewest ticks
   away, then nearest in size, then oldest for queue priority) is the candidate, the others are cancelled.
5. **Materiality (FR-602).** The candidate keeps its price when it is fewer than ``materiality_ticks`` grid
   levels from the desired price and does not cross (a bid at or above the opposite desired or final ask, an
   ask at or below the bid). Size: resting *more* than desired is always material (never rest more than risk
   approved) and is fixed with a ``Decrease`` at the same price when the venue can (queue priority kept); resting
   *less* is material when the shortfall ≥ ``min(max(size_tolerance_units, size_tolerance_pct % of desired),
   desired / 2)``. A change is an ``Amend`` when the venue can amend and the order is acknowledged, else
   ``Cancel`` + ``Place``.
6. **Throttle (NFR-102).** Within ``1 / max_updates_per_second`` of ``last_update_us`` only safety actions are
   planned — cancels for halted / reducing / not-desired / duplicate / crossing orders, and size reductions
   of orders resting more than approved; the rest is deferred and the plan says so (``deferred``,
   ``deferred_reason``, ``retry_at_us``).
7. **Order.** Cancels, then decreases and amends, then places; within each group what reduces exposure goes
   first: cancels of orders whose fills would grow the position, decreases, then amends that shrink or back
   off before those that grow or tighten, and places that reduce the position before those that add to it.

New orders are post-only GTC makers (``reduce_only`` too while reducing) with a deterministic client id
(:mod:`mm.reconcilers.client_ids`); the attempt is ``max(context.attempts[level], 1 + the highest attempt of
our orders at that level in this generation)`` so a replacement never reuses the id of the order it replaces.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from types import MappingProxyType
from typing import Final, NamedTuple

from mm.adapters.base import Capabilities
from mm.domain.errors import MmError
from mm.domain.orders import Order, OrderRequest, OrderStatus
from mm.domain.price import PRICE_SCALE, Price, Quantity
from mm.domain.quotes import Quote, QuoteSet
from mm.domain.sides import OrderSide, Side, TimeInForce
from mm.domain.ticks import TickGrid
from mm.reconcilers.client_ids import (
    MAX_COUNTER,
    Level,
    check_prefix,
    make_client_order_id,
    market_hash,
    parse_client_order_id,
)
from mm.risk.states import TradingState

__all__ = [
    "Action",
    "Amend",
    "Cancel",
    "Decrease",
    "DesiredLevel",
    "Level",
    "OrderPlan",
    "Place",
    "PlanContext",
    "PlanError",
    "Reason",
    "desired_levels",
    "plan_orders",
]


class PlanError(MmError, ValueError):
    """The inputs of a plan are inconsistent (off-grid or crossed desired quotes, an order of another market)."""


class Reason(enum.Enum):
    """Why an action is planned. :attr:`safety` reasons are never deferred by the throttle."""

    HALTED = "halted"
    """Trading state ``halted``: cancel everything."""
    REDUCING = "reducing"
    """Trading state ``reducing`` and this level would add to the position."""
    NOT_DESIRED = "not_desired"
    """Risk approves no quote at this level."""
    DUPLICATE = "duplicate"
    """A second order of ours on one level."""
    CROSSING = "crossing"
    """At or through the opposite side's price: stale and about to be picked off (or self-crossing)."""
    OVERSIZE = "oversize"
    """Resting more than risk approved."""
    PRICE_MOVED = "price_moved"
    """The desired price is at least ``materiality_ticks`` levels away."""
    SIZE_SHORT = "size_short"
    """Resting materially less than desired."""
    NEW = "new"
    """Nothing of ours rests at this level."""

    @property
    def safety(self) -> bool:
        return self in _SAFETY


_SAFETY: Final = frozenset(
    {Reason.HALTED, Reason.REDUCING, Reason.NOT_DESIRED, Reason.DUPLICATE, Reason.CROSSING, Reason.OVERSIZE}
)
_NO_ATTEMPTS: Final[Mapping[Level, int]] = MappingProxyType({})
_YB: Final = Level.YES_BID
_YA: Final = Level.YES_ASK
_UNIFIED_LEVELS: Final = (_YB, _YA)
_ALL_LEVELS: Final = (_YB, _YA, Level.NO_BID, Level.NO_ASK)
_PAIRS: Final = ((_YB, _YA), (Level.NO_BID, Level.NO_ASK))
_BUYS: Final = frozenset({_YB, Level.NO_BID})
_OPPOSITE: Final = {_YB: _YA, _YA: _YB, Level.NO_BID: Level.NO_ASK, Level.NO_ASK: Level.NO_BID}
_GONE: Final = {
    TradingState.ACTIVE: Reason.NOT_DESIRED,
    TradingState.REDUCING: Reason.REDUCING,
    TradingState.HALTED: Reason.HALTED,
}
_TERMINAL: Final = (OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED)


@lru_cache(maxsize=64)
def _interval_us(max_updates_per_second: Decimal | int) -> int:
    """Shortest gap between two quote updates, µs, rounded up: 10/s → 100 000 µs."""
    if max_updates_per_second <= 0:
        raise ValueError(f"max_updates_per_second must be positive, got {max_updates_per_second}")
    return math.ceil(Decimal(1_000_000) / Decimal(max_updates_per_second))


@dataclass(frozen=True, slots=True)
class PlanContext:
    """Everything besides the desired quotes and open orders that a plan depends on (all values, no clock)."""

    market_id: str
    grid: TickGrid
    capabilities: Capabilities
    generation: int
    """The Market spec generation; part of every new client order id."""
    now_us: int
    """The reconcile's time, UTC µs (from the Clock, never read here)."""
    trading_state: TradingState = TradingState.ACTIVE
    """Effective state (most restrictive of node, policy, market): halted = cancel only, reducing = reduce only."""
    position_units: int = 0
    """Net YES position, 1/100 contract; positive = long YES, negative = long NO."""
    materiality_ticks: int = 1
    """Replace a resting order only when its price is at least this many grid levels from the desired price."""
    size_tolerance_units: int = 100
    """Shortfall (1/100 contract) below which an undersized order is kept: 1 contract by default ..."""
    size_tolerance_pct: int = 10
    """... or this percentage of the desired size, whichever is larger (capped at half the desired size)."""
    client_id_prefix: str = "mm"
    last_update_us: int | None = None
    """When quotes were last updated (UTC µs), None if never: drives the NFR-102 throttle."""
    max_updates_per_second: Decimal | int = 10
    attempts: Mapping[Level, int] = field(default_factory=lambda: _NO_ATTEMPTS)
    """Next attempt number per level for this generation (the controller's counter; see module docs)."""
    _market_hash: str = field(init=False, repr=False, compare=False)
    _interval: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.trading_state, TradingState):
            raise TypeError(f"trading_state must be a TradingState, not {self.trading_state!r}")
        if self.materiality_ticks < 1:
            raise ValueError(f"materiality_ticks must be at least 1, got {self.materiality_ticks}")
        if self.size_tolerance_units < 0 or not 0 <= self.size_tolerance_pct <= 100:
            raise ValueError("size tolerance must be >= 0 units and 0-100 %")
        if not 0 <= self.generation < MAX_COUNTER:
            raise ValueError(f"generation must be in [0, 10**12), got {self.generation}")
        check_prefix(self.client_id_prefix)
        object.__setattr__(self, "_market_hash", market_hash(self.market_id))
        object.__setattr__(self, "_interval", _interval_us(self.max_updates_per_second))

    @property
    def update_interval_us(self) -> int:
        """Minimum gap between quote updates, µs (NFR-102)."""
        return self._interval


@dataclass(frozen=True, slots=True)
class DesiredLevel:
    """One merged level to rest: ``price`` is in the level's contract (YES levels: YES price)."""

    level: Level
    price: Price
    size: Quantity


@dataclass(frozen=True, slots=True)
class Cancel:
    """Cancel ``order_id`` (the venue's id; None when not yet acknowledged: resolve it by client id first)."""

    order_id: str | None
    reason: Reason
    client_order_id: str
    level: Level


@dataclass(frozen=True, slots=True)
class Amend:
    """Amend ``order_id`` to ``price`` (in the order's own contract) and ``quantity`` = new *total* size.

    ``quantity`` is filled + ``remaining`` (Kalshi's amend ``count`` and ``ExchangeAdapter.amend_order``).
    """

    order_id: str
    price: Price
    quantity: Quantity
    reason: Reason
    client_order_id: str
    level: Level
    remaining: Quantity


@dataclass(frozen=True, slots=True)
class Decrease:
    """Reduce ``order_id``'s resting size to ``reduce_to`` at the same price, keeping queue priority."""

    order_id: str
    reduce_to: Quantity
    reason: Reason
    client_order_id: str
    level: Level


@dataclass(frozen=True, slots=True)
class Place:
    """Create ``request`` (post-only GTC; its client id encodes ``level`` and ``attempt``)."""

    request: OrderRequest
    reason: Reason
    level: Level
    attempt: int


Action = Cancel | Amend | Decrease | Place


@dataclass(frozen=True, slots=True)
class OrderPlan:
    """Ordered actions plus what status reporting needs."""

    actions: tuple[Action, ...]
    desired: tuple[DesiredLevel, ...]
    """The merged levels the plan aims at (after the trading state)."""
    kept: tuple[Order, ...]
    """Our orders the plan leaves untouched (including ones whose update was deferred)."""
    foreign: tuple[Order, ...]
    """Live orders in the market without our client id: never touched."""
    state: TradingState
    deferred: bool = False
    """True when the throttle held back non-safety actions; re-plan at ``retry_at_us``."""
    deferred_reason: str | None = None
    retry_at_us: int | None = None

    @property
    def is_empty(self) -> bool:
        return not self.actions

    def summary(self) -> dict[str, object]:
        """A JSON-friendly digest for Market status (prices in dollars, sizes in contracts)."""
        counts: dict[str, int] = {}
        for action in self.actions:
            name = type(action).__name__.lower()
            counts[name] = counts.get(name, 0) + 1
        return {
            "state": self.state.label,
            "desired": [
                {"level": d.level.value, "price": d.price.to_dollars(), "size": d.size.to_fp()} for d in self.desired
            ],
            "actions": counts,
            "kept": [o.client_order_id for o in self.kept],
            "foreign": [o.client_order_id for o in self.foreign],
            "deferred": self.deferred,
            "deferred_reason": self.deferred_reason,
            "retry_at_us": self.retry_at_us,
        }


# --- desired levels --------------------------------------------------------------------------------------


def _off_grid(context: PlanContext, level: Level, units: int) -> PlanError:
    return PlanError(
        f"market {context.market_id}: desired {level.name.lower()} at {Price(units)} is off the tick grid; quotes "
        "must be rounded onto the grid before planning"
    )


def _merge(yes: Quote | None, no: Quote | None, buy: bool) -> tuple[Price, int] | None:
    """One YES-book level from a YES quote and the equivalent NO quote (NO ask ≡ YES bid at 1 − p)."""
    if no is None or no.size.units <= 0:
        return (yes.price, yes.size.units) if yes is not None and yes.size.units > 0 else None
    if yes is None or yes.size.units <= 0:
        return no.price.complement(), no.size.units
    yes_units, no_units = yes.price.units, PRICE_SCALE - no.price.units
    if yes_units == no_units:  # the usual case: complements, one order sized for the larger
        return yes.price, max(yes.size.units, no.size.units)
    # Not complements (strategy and risk never produce this): the less aggressive quote wins.
    if (yes_units < no_units) is buy:
        return yes.price, yes.size.units
    return no.price.complement(), no.size.units


def _raw_levels(desired: QuoteSet, unified: bool) -> list[tuple[Level, Price, int]]:
    out: list[tuple[Level, Price, int]] = []
    if unified:
        bid = _merge(desired.yes_bid, desired.no_ask, True)
        if bid is not None:
            out.append((_YB, bid[0], bid[1]))
        ask = _merge(desired.yes_ask, desired.no_bid, False)
        if ask is not None:
            out.append((_YA, ask[0], ask[1]))
        return out
    quotes = (desired.yes_bid, desired.yes_ask, desired.no_bid, desired.no_ask)
    for level, quote in zip(_ALL_LEVELS, quotes, strict=True):
        if quote is not None and quote.size.units > 0:
            out.append((level, quote.price, quote.size.units))
    return out


def _reduce_only(raw: list[tuple[Level, Price, int]], position: int) -> list[tuple[Level, Price, int]]:
    """Levels whose fills bring ``position`` (1/100 contract) toward zero, capped together at ``|position|``."""
    room = abs(position)
    wanted = -1 if position > 0 else 1
    kept: list[tuple[Level, Price, int]] = []
    for level, price, size in raw:
        if room > 0 and level.direction == wanted:
            take = min(size, room)
            room -= take
            kept.append((level, price, take))
    return kept


@lru_cache(maxsize=4096)
def _desired_level(level: Level, price_units: int, size_units: int) -> DesiredLevel:
    """Interned: quotes repeat from plan to plan, and a frozen dataclass costs ~1 µs to build."""
    return DesiredLevel(level, Price(price_units), Quantity(size_units))


def desired_levels(desired: QuoteSet | None, context: PlanContext) -> tuple[DesiredLevel, ...]:
    """The merged levels ``desired`` asks for under ``context`` (trading state applied), checked on the grid."""
    return tuple(_desired_level(lvl, p.units, s) for lvl, p, s, _ in _desired(desired, context))


def _desired(desired: QuoteSet | None, context: PlanContext) -> list[tuple[Level, Price, int, int]]:
    """(level, price, size in 1/100 contract, grid index) per desired level, validated."""
    state = context.trading_state
    if desired is None or state is TradingState.HALTED:
        return []
    if desired.market_id != context.market_id:
        raise PlanError(f"desired quotes are for {desired.market_id!r}, the plan for {context.market_id!r}")
    raw = _raw_levels(desired, context.capabilities.unified_book)
    if state is TradingState.REDUCING:
        raw = _reduce_only(raw, context.position_units)
    index_of = context.grid.index_of
    out: list[tuple[Level, Price, int, int]] = []
    for level, price, size in raw:
        index = index_of(price.units)
        if index < 0:
            raise _off_grid(context, level, price.units)
        out.append((level, price, size, index))
    if len(out) > 1:
        prices = {level: price.units for level, price, _, _ in out}
        for buy, sell in _PAIRS:
            if buy in prices and sell in prices and prices[buy] >= prices[sell]:
                raise PlanError(
                    f"market {context.market_id}: desired {buy.name.lower()} {Price(prices[buy])} is not below "
                    f"{sell.name.lower()} {Price(prices[sell])}"
                )
    return out


# --- the plan --------------------------------------------------------------------------------------------


class _Ours(NamedTuple):
    """One of our live orders placed on its level (scratch; built with ``tuple.__new__``, the fast way)."""

    order: Order
    level: Level
    price_units: int
    """Price in the level's contract (YES price for YES levels)."""
    remaining: int


_new_ours: Final = tuple.__new__


def _classify(
    open_orders: Sequence[Order], context: PlanContext, unified: bool
) -> tuple[dict[Level, list[_Ours]], list[Order], dict[Level, int]]:
    ours: dict[Level, list[_Ours]] = {}
    foreign: list[Order] = []
    seen: dict[Level, int] = {}
    prefix, mhash, generation = context.client_id_prefix, context._market_hash, context.generation
    for order in open_orders:
        request = order.request
        if request.market_id != context.market_id:
            raise PlanError(
                f"open order {request.client_order_id!r} is in {request.market_id!r}, not {context.market_id!r}"
            )
        if order.status in _TERMINAL:  # a tuple: identity checks, not Enum's Python-level hash
            continue
        parsed = parse_client_order_id(request.client_order_id, prefix)
        if parsed is None or parsed.market_hash != mhash:
            foreign.append(order)
            continue
        if parsed.generation == generation and parsed.attempt >= seen.get(parsed.level, -1):
            seen[parsed.level] = parsed.attempt
        remaining = request.quantity.units - order.filled.units
        if remaining <= 0:
            continue
        if unified:
            yes = request.side is Side.YES
            price = request.price.units if yes else PRICE_SCALE - request.price.units
            level = Level.YES_BID if yes is (request.order_side is OrderSide.BUY) else Level.YES_ASK
        else:
            price = request.price.units
            level = _level_of(request.side, request.order_side)
        ours.setdefault(level, []).append(_new_ours(_Ours, (order, level, price, remaining)))
    return ours, foreign, seen


def _level_of(side: Side, order_side: OrderSide) -> Level:
    if side is Side.YES:
        return Level.YES_BID if order_side is OrderSide.BUY else Level.YES_ASK
    return Level.NO_BID if order_side is OrderSide.BUY else Level.NO_ASK


def _short_is_material(remaining: int, wanted: int, context: PlanContext) -> bool:
    """Whether resting ``remaining`` < ``wanted`` (1/100 contract) is materially short (module rule 5)."""
    shortfall = wanted - remaining
    if shortfall <= 0:
        return False
    threshold = min(max(context.size_tolerance_units, wanted * context.size_tolerance_pct // 100), wanted // 2)
    return shortfall >= threshold


def _own_price(order: Order, level: Level, price: Price) -> Price:
    """``price`` (level terms) in the contract the venue holds ``order`` in."""
    return price if order.request.side is level.side else price.complement()


class _Builder:
    """Collects actions in their groups while the plan is worked out."""

    __slots__ = (
        "adding_amends",
        "adding_cancels",
        "adding_places",
        "context",
        "decreases",
        "deferred",
        "kept",
        "reducing_amends",
        "reducing_cancels",
        "reducing_places",
        "seen",
    )

    def __init__(self, context: PlanContext, seen: dict[Level, int]) -> None:
        self.context = context
        self.seen = seen
        self.adding_cancels: list[Action] = []
        self.reducing_cancels: list[Action] = []
        self.decreases: list[Action] = []
        self.reducing_amends: list[Action] = []
        self.adding_amends: list[Action] = []
        self.reducing_places: list[Action] = []
        self.adding_places: list[Action] = []
        self.kept: list[Order] = []
        self.deferred = 0

    def _adds(self, level: Level) -> bool:
        position = self.context.position_units
        return position == 0 or (level.direction > 0) is (position > 0)

    def cancel(self, ours: _Ours, reason: Reason) -> None:
        order = ours.order
        target = self.adding_cancels if self._adds(ours.level) else self.reducing_cancels
        target.append(Cancel(order.exchange_order_id, reason, order.request.client_order_id, ours.level))

    def place(self, level: Level, price: Price, size: int, reason: Reason) -> None:
        context = self.context
        attempt = max(context.attempts.get(level, 0), self.seen.get(level, -1) + 1)
        client_order_id = make_client_order_id(
            context.client_id_prefix, context.market_id, context.generation, level, attempt
        )
        unified = context.capabilities.unified_book
        request = OrderRequest(
            market_id=context.market_id,
            side=Side.YES if unified else level.side,
            order_side=level.order_side,
            price=price,
            quantity=Quantity(size),
            client_order_id=client_order_id,
            time_in_force=TimeInForce.GOOD_TILL_CANCELED,
            post_only=True,
            reduce_only=context.trading_state is TradingState.REDUCING,
        )
        target = self.adding_places if self._adds(level) else self.reducing_places
        target.append(Place(request, reason, level, attempt))

    def decrease(self, ours: _Ours, size: int, reason: Reason) -> bool:
        """Shrink ``ours`` to ``size`` at its price (Decrease, else Amend); False if the venue cannot."""
        order, caps = ours.order, self.context.capabilities
        exchange_id = order.exchange_order_id
        if exchange_id is None:
            return False
        cid = order.request.client_order_id
        if caps.decrease:
            self.decreases.append(Decrease(exchange_id, Quantity(size), reason, cid, ours.level))
        elif caps.amend:
            total = Quantity(order.filled.units + size)
            self.decreases.append(
                Amend(exchange_id, order.request.price, total, reason, cid, ours.level, Quantity(size))
            )
        else:
            return False
        return True

    def replace(self, ours: _Ours, price: Price, size: int, reason: Reason) -> None:
        """Move ``ours`` to ``price``/``size``: Amend where possible, else Cancel + Place."""
        order, level = ours.order, ours.level
        exchange_id = order.exchange_order_id
        if self.context.capabilities.amend and exchange_id is not None:
            grows = size > ours.remaining or (
                price.units > ours.price_units if level in _BUYS else price.units < ours.price_units
            )
            amend = Amend(
                exchange_id,
                _own_price(order, level, price),
                Quantity(order.filled.units + size),
                reason,
                order.request.client_order_id,
                level,
                Quantity(size),
            )
            (self.adding_amends if grows else self.reducing_amends).append(amend)
            return
        self.cancel(ours, reason)
        self.place(level, price, size, reason)

    def actions(self) -> tuple[Action, ...]:
        return (
            *self.adding_cancels,
            *self.reducing_cancels,
            *self.decreases,
            *self.reducing_amends,
            *self.adding_amends,
            *self.reducing_places,
            *self.adding_places,
        )


def _closeness(ours: _Ours, grid: TickGrid, index: int, size: int) -> tuple[int, int, int, str]:
    own_index = grid.index_of(ours.price_units)
    distance = abs(own_index - index) if own_index >= 0 else PRICE_SCALE
    order = ours.order
    return (distance, abs(ours.remaining - size), order.created_us, order.request.client_order_id)


def plan_orders(desired: QuoteSet | None, open_orders: Sequence[Order], context: PlanContext) -> OrderPlan:
    """Plan the actions that take ``open_orders`` to ``desired`` under ``context`` (pure; module docs).

    ``desired``: the risk-approved quotes of ``context.market_id`` (None = nothing may rest), prices on
    ``context.grid``. ``open_orders``: live orders of that market as the adapter reports them (ours and maybe
    others'; terminal ones are ignored). Raises :class:`PlanError` for off-grid or crossed desired quotes and
    for an order of another market.
    """
    unified = context.capabilities.unified_book
    wanted = _desired(desired, context)
    ours, foreign, seen = _classify(open_orders, context, unified)
    state = context.trading_state
    last = context.last_update_us
    throttled = last is not None and context.now_us - last < context._interval
    build = _Builder(context, seen)
    grid, threshold = context.grid, context.materiality_ticks
    targets: dict[Level, tuple[Price, int, int]] = {lvl: (p, s, i) for lvl, p, s, i in wanted}

    # Pass 1: per level, the candidate order and whether it may keep its price.
    candidates: dict[Level, tuple[_Ours, bool, bool]] = {}  # level → (candidate, keep price, crossing)
    for level, mine in ours.items():
        target = targets.get(level)
        if target is None:
            gone = _GONE[state]
            for o in mine:
                build.cancel(o, gone)
            continue
        price, size, index = target
        if len(mine) > 1:
            mine.sort(key=lambda o: _closeness(o, grid, index, size))
            for extra in mine[1:]:
                build.cancel(extra, Reason.DUPLICATE)
        best = mine[0]
        own_index = grid.index_of(best.price_units)
        opposite = targets.get(_OPPOSITE[level])
        crossing = opposite is not None and (
            best.price_units >= opposite[0].units if level in _BUYS else best.price_units <= opposite[0].units
        )
        keep = own_index >= 0 and -threshold < own_index - index < threshold and not crossing
        candidates[level] = (best, keep, crossing)

    # Pass 2: a kept price must not cross the opposite level's final price (kept or desired).
    if len(candidates) > 1:
        for buy, sell in _PAIRS:
            if buy in targets and sell in targets:
                b, s = candidates.get(buy), candidates.get(sell)
                final_buy = b[0].price_units if b and b[1] else targets[buy][0].units
                final_sell = s[0].price_units if s and s[1] else targets[sell][0].units
                if final_buy >= final_sell:
                    for lvl, c in ((buy, b), (sell, s)):
                        if c is not None and c[1]:
                            candidates[lvl] = (c[0], False, True)

    # Pass 3: actions per level.
    for level, (price, size, _) in targets.items():
        candidate = candidates.get(level)
        if candidate is None:
            if throttled:
                build.deferred += 1
            else:
                build.place(level, price, size, Reason.NEW)
            continue
        best, keep, crossing = candidate
        oversize = best.remaining > size
        if keep:
            if oversize:
                if not build.decrease(best, size, Reason.OVERSIZE):
                    build.cancel(best, Reason.OVERSIZE)
                    if throttled:
                        build.deferred += 1
                    else:
                        build.place(level, price, size, Reason.OVERSIZE)
            elif not _short_is_material(best.remaining, size, context):
                build.kept.append(best.order)
            elif throttled:
                build.deferred += 1
                build.kept.append(best.order)
            else:
                build.replace(best, price, size, Reason.SIZE_SHORT)
            continue
        if not throttled:
            build.replace(best, price, size, Reason.CROSSING if crossing else Reason.PRICE_MOVED)
            continue
        # Throttled and the price must move: only safety now, the move waits.
        build.deferred += 1
        if crossing:
            build.cancel(best, Reason.CROSSING)
        elif oversize and not build.decrease(best, size, Reason.OVERSIZE):
            build.cancel(best, Reason.OVERSIZE)
        elif not oversize:
            build.kept.append(best.order)

    deferred = build.deferred > 0
    retry_at = last + context._interval if deferred and last is not None else None
    reason = (
        f"NFR-102 throttle: {build.deferred} quote update(s) deferred until {retry_at} µs "
        f"(at most {context.max_updates_per_second} updates/s per market)"
        if deferred
        else None
    )
    return OrderPlan(
        actions=build.actions(),
        desired=tuple([_desired_level(lvl, p.units, s) for lvl, p, s, _ in wanted]),
        kept=tuple(build.kept),
        foreign=tuple(foreign),
        state=state,
        deferred=deferred,
        deferred_reason=reason,
        retry_at_us=retry_at,
    )
