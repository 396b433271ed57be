"""Position limit rules of FR-501/FR-511: net inventory, per-side holdings, order size, notional.

A BLOCK rejects the whole quote set, so these rules, which each concern one direction of exposure, drop
or shrink only the offending quotes (a MODIFY) and BLOCK only when no quote is left. ``action: block``
means *drop the offending quotes*; ``action: modify`` means *shrink them to fit*.

A quote's direction is its effect on net YES inventory if filled (``quote_ops.DIRECTION``): YES bid and
NO ask +1, YES ask and NO bid −1. On a netting venue (Kalshi) the YES bid and the NO ask at its
complement are one resting order, so within a direction the larger size counts and capping each quote
at the capacity is enough; on a non-netting venue both can fill, the sizes add up, and the capacity is
handed out in slot order (YES bid/ask before NO bid/ask).

Thresholds are converted once, at construction, to integer units ($0.0001, 1/100 contract); the hard
limits of RCR-101 (``mm.domain.limits``) cap the configured ones again here, whatever a config says.
``evaluate`` does a short integer check and returns the shared ``ALLOW`` when nothing needs doing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal
from typing import Final

from mm.domain.limits import MAX_ORDER_SIZE, MAX_POSITION_PER_MARKET
from mm.domain.price import PRICE_SCALE, QTY_SCALE, dollars_to_units
from mm.domain.quotes import Quote, QuoteSet
from mm.domain.sides import OrderSide
from mm.risk.base import ALLOW, RiskContext, RiskDecision, RiskRule, block, modify
from mm.risk.quote_ops import (
    DIRECTION,
    adds_exposure,
    cap_size,
    drop,
    is_empty,
    map_quotes,
    scale_size,
)
from mm.specs.risk import (
    MaxInventoryRuleConfig,
    MaxNotionalRuleConfig,
    MaxOrderSizeRuleConfig,
    MaxPositionPerSideRuleConfig,
)

# ---------------------------------------------------------------------------------------------- text
# Shared by the rule modules: reasons state amounts in contracts and dollars, exactly.


def contracts_text(units: int) -> str:
    """1/100-contract units as contracts: ``85000`` → ``"850"``, ``1050`` → ``"10.50"``."""
    whole, frac = divmod(abs(units), QTY_SCALE)
    sign = "-" if units < 0 else ""
    return f"{sign}{whole}" if frac == 0 else f"{sign}{whole}.{frac:02d}"


def dollars_text(units: int) -> str:
    """$0.0001 units as dollars: ``500000`` → ``"$50.00"``, ``12345`` → ``"$1.2345"``."""
    whole, frac = divmod(abs(units), PRICE_SCALE)
    sign = "-" if units < 0 else ""
    if frac % 100 == 0:
        return f"{sign}${whole}.{frac // 100:02d}"
    return f"{sign}${whole}.{frac:04d}"


def number_text(value: Decimal) -> str:
    """A config number without trailing zeros: ``Decimal("1.50")`` → ``"1.5"``."""
    return f"{value.normalize():f}"


def percent_text(fraction: Decimal) -> str:
    """``Decimal("0.8")`` → ``"80%"``."""
    return f"{number_text(fraction * 100)}%"


def contract_units(contracts: Decimal) -> int:
    """Contracts → 1/100-contract units (configs are validated to steps of 0.01; finer is floored)."""
    return int(contracts * QTY_SCALE)


_SLOT_INFO: Final = (("yes_bid", 1, True), ("yes_ask", -1, False), ("no_bid", -1, True), ("no_ask", 1, False))
"""(slot, direction, is a buy) of each QuoteSet slot."""

_DIRECTION_QUOTES = {1: "YES bid/NO ask", -1: "YES ask/NO bid"}
"""The quotes of each direction, for reasons."""


# ---------------------------------------------------------------------------------------------- helpers


def _fill(a: Quote | None, b: Quote | None, netting: bool) -> int:
    """``max_fill_units`` for the two quotes of one direction, without allocating (hot path)."""
    sa = a.size.units if a is not None else 0
    sb = b.size.units if b is not None else 0
    if netting:
        return sa if sa >= sb else sb
    return sa + sb


def _drop_direction(quotes: QuoteSet, sign: int) -> QuoteSet:
    """The quotes without those of direction ``sign``."""
    return drop(quotes, lambda name, _q: DIRECTION[name] != sign)


def _direction_fill(quotes: QuoteSet, sign: int, netting: bool) -> int:
    """``quote_ops.max_fill_units(quotes, sign, netting=netting)``, cheaper (no list)."""
    if sign > 0:
        return _fill(quotes.yes_bid, quotes.no_ask, netting)
    return _fill(quotes.yes_ask, quotes.no_bid, netting)


def _cap_direction(quotes: QuoteSet, sign: int, capacity: int, netting: bool) -> QuoteSet:
    """Cap the quotes of direction ``sign`` so a worst-case fill adds at most ``capacity`` (dropping at 0).

    Netting: each quote is capped at the capacity (they are one order). Otherwise the capacity is handed
    out in slot order, so the sizes add up to at most the capacity.
    """
    if netting:
        return map_quotes(quotes, lambda name, q: cap_size(q, capacity) if DIRECTION[name] == sign else q)
    remaining = capacity

    def cap(name: str, q: Quote) -> Quote | None:
        nonlocal remaining
        if DIRECTION[name] != sign:
            return q
        new = cap_size(q, remaining)
        remaining -= new.size.units if new is not None else 0
        return new

    return map_quotes(quotes, cap)


def _result(original: QuoteSet, new: QuoteSet, reasons: list[str]) -> RiskDecision:
    """MODIFY with ``new`` (BLOCK when nothing is left, ALLOW when nothing changed)."""
    if new is original:
        return ALLOW
    reason = "; ".join(reasons)
    if is_empty(new):
        return block(f"{reason}; no quote left")
    return modify(new, reason)


# ---------------------------------------------------------------------------------------------- rules


def _limit_directions(
    quotes: QuoteSet,
    inv: int,
    limit: int,
    netting: bool,
    block_whole: bool,
    describe: Callable[[int, int], str],
    reasons: list[str],
) -> QuoteSet:
    """Keep each direction's worst-case fill within ``limit − sign·inv``: drop (block) or cap (modify)."""
    out = quotes
    for sign in (1, -1):
        additional = _direction_fill(out, sign, netting)
        capacity = limit - sign * inv
        if additional > capacity:
            head = describe(sign, additional)
            if block_whole or capacity <= 0:
                out = _drop_direction(out, sign)
                reasons.append(f"{head}: {_DIRECTION_QUOTES[sign]} dropped")
            else:
                out = _cap_direction(out, sign, capacity, netting)
                reasons.append(f"{head}: {_DIRECTION_QUOTES[sign]} capped at {contracts_text(capacity)}")
    return out


class MaxInventoryRule(RiskRule):
    """|net inventory| after the worst-case fill of each direction stays ≤ the limit (FR-501, RCR-101).

    For each direction, the most a fill can add is ``quote_ops.max_fill_units``; past the limit, ``action: block``
    drops that direction's quotes and ``action: modify`` caps them at the remaining capacity
    (limit − sign·inventory), dropping them at 0. The limit is capped at ``MAX_POSITION_PER_MARKET``.

    RCR-102 soft limit: once |inventory| ≥ ``warning_threshold`` × limit, the sizes of the quotes that
    *add* exposure are multiplied by ``warning_size_multiplier`` (before the hard check, so a throttled
    quote that then fits is kept). Quotes that reduce the position are left alone: they bring it back
    towards zero, which is what the warning wants.
    """

    name = "max_inventory"

    def __init__(self, config: MaxInventoryRuleConfig) -> None:
        super().__init__()
        self.config = config
        self._limit = contract_units(min(config.limit, MAX_POSITION_PER_MARKET))
        # |inventory| ≥ threshold × limit, for integer inventory: |inventory| ≥ ceil(threshold × limit).
        self._warn = max(math.ceil(config.warning_threshold * self._limit), 1)
        self._warn_factor = float(config.warning_size_multiplier)
        self._block = config.action == "block"
        self._warn_text = (
            f"sizes ×{number_text(config.warning_size_multiplier)} "
            f"(position warning at {percent_text(config.warning_threshold)})"
        )

    def evaluate(self, proposed_quotes: QuoteSet, context: RiskContext) -> RiskDecision:
        inv = context.inventory_units
        limit = self._limit
        q = proposed_quotes
        netting = context.netting
        if (
            -self._warn < inv < self._warn
            and inv + _fill(q.yes_bid, q.no_ask, netting) <= limit
            and _fill(q.yes_ask, q.no_bid, netting) - inv <= limit
        ):
            return ALLOW
        return self._enforce(q, inv, netting)

    def _enforce(self, quotes: QuoteSet, inv: int, netting: bool) -> RiskDecision:
        limit = self._limit
        out = quotes
        reasons: list[str] = []
        if abs(inv) >= self._warn:
            factor = self._warn_factor
            scaled = map_quotes(out, lambda _n, q: scale_size(q, factor) if adds_exposure(q, inv) else q)
            if scaled is not out:
                sign = 1 if inv > 0 else -1
                reasons.append(
                    f"inventory {contracts_text(inv)} of {contracts_text(limit)} contracts: "
                    f"{_DIRECTION_QUOTES[sign]} {self._warn_text}"
                )
                out = scaled

        def describe(sign: int, additional: int) -> str:
            return (
                f"inventory {contracts_text(inv)} {'+' if sign > 0 else '-'} {contracts_text(additional)} "
                f"if filled would pass the {contracts_text(limit)}-contract limit"
            )

        out = _limit_directions(out, inv, limit, netting, self._block, describe, reasons)
        return _result(quotes, out, reasons)


class MaxPositionPerSideRule(RiskRule):
    """YES holdings and NO holdings each stay ≤ the limit after a fill (FR-501 "per side").

    On a netting venue the holdings follow the net inventory — YES = max(net, 0), NO = max(−net, 0) —
    so buying YES while short first closes NO: a direction's capacity is limit − sign·net. On a
    non-netting venue only buying adds to a side (a YES bid to ``yes_units``, a NO bid to
    ``no_units``) and selling reduces it, so only bids are checked, each against its own side.
    ``action: block`` drops the offending quotes, ``modify`` caps them (dropping at 0). The limit is
    capped at ``MAX_POSITION_PER_MARKET``.
    """

    name = "max_position_per_side"

    def __init__(self, config: MaxPositionPerSideRuleConfig) -> None:
        super().__init__()
        self.config = config
        self._limit = contract_units(min(config.limit, MAX_POSITION_PER_MARKET))
        self._block = config.action == "block"

    def evaluate(self, proposed_quotes: QuoteSet, context: RiskContext) -> RiskDecision:
        q = proposed_quotes
        limit = self._limit
        if context.netting:
            inv = context.inventory_units
            if inv + _fill(q.yes_bid, q.no_ask, True) <= limit and _fill(q.yes_ask, q.no_bid, True) - inv <= limit:
                return ALLOW
            return self._enforce_netting(q, inv)
        yb, nb = q.yes_bid, q.no_bid
        if (yb is None or context.yes_units + yb.size.units <= limit) and (
            nb is None or context.no_units + nb.size.units <= limit
        ):
            return ALLOW
        return self._enforce_separate(q, context.yes_units, context.no_units)

    def _enforce_netting(self, quotes: QuoteSet, inv: int) -> RiskDecision:
        # Netted holdings follow the net, so this is the inventory limit read per side.
        def describe(sign: int, additional: int) -> str:
            held = "YES" if sign > 0 else "NO"
            return (
                f"{held} position {contracts_text(max(sign * inv, 0))} could reach "
                f"{contracts_text(sign * inv + additional)} of {contracts_text(self._limit)} contracts"
            )

        reasons: list[str] = []
        out = _limit_directions(quotes, inv, self._limit, True, self._block, describe, reasons)
        return _result(quotes, out, reasons)

    def _enforce_separate(self, quotes: QuoteSet, yes_units: int, no_units: int) -> RiskDecision:
        reasons: list[str] = []
        limit = self._limit

        def fix(name: str, q: Quote) -> Quote | None:
            if name == "yes_bid":
                held, side = yes_units, "YES"
            elif name == "no_bid":
                held, side = no_units, "NO"
            else:
                return q
            if held + q.size.units <= limit:
                return q
            head = (
                f"{side} holdings {contracts_text(held)} + {contracts_text(q.size.units)} "
                f"would pass the {contracts_text(limit)}-contract limit"
            )
            new = None if self._block else cap_size(q, limit - held)
            reasons.append(
                f"{head}: {side} bid " + ("dropped" if new is None else f"capped at {contracts_text(new.size.units)}")
            )
            return new

        return _result(quotes, map_quotes(quotes, fix), reasons)


class MaxOrderSizeRule(RiskRule):
    """No single quote larger than the limit: ``modify`` caps it, ``block`` drops it (FR-511).

    Whatever the configuration, every quote is also capped at ``MAX_ORDER_SIZE`` (RCR-101, code level):
    a quote above the configured limit is dropped under ``block``; one between ``MAX_ORDER_SIZE`` and a
    (hypothetical, admission refuses it) higher configured limit is capped.
    """

    name = "max_order_size"

    def __init__(self, config: MaxOrderSizeRuleConfig) -> None:
        super().__init__()
        self.config = config
        self._configured = contract_units(config.limit)
        self._limit = min(self._configured, contract_units(MAX_ORDER_SIZE))
        self._block = config.action == "block"

    def evaluate(self, proposed_quotes: QuoteSet, context: RiskContext) -> RiskDecision:
        q = proposed_quotes
        limit = self._limit
        if (
            (q.yes_bid is None or q.yes_bid.size.units <= limit)
            and (q.yes_ask is None or q.yes_ask.size.units <= limit)
            and (q.no_bid is None or q.no_bid.size.units <= limit)
            and (q.no_ask is None or q.no_ask.size.units <= limit)
        ):
            return ALLOW
        dropped: list[str] = []
        capped: list[str] = []

        def fix(name: str, quote: Quote) -> Quote | None:
            size = quote.size.units
            if size <= limit:
                return quote
            if self._block and size > self._configured:
                dropped.append(f"{name} {contracts_text(size)}")
                return None
            capped.append(f"{name} {contracts_text(size)}")
            return cap_size(quote, limit)

        out = map_quotes(q, fix)
        reasons: list[str] = []
        if dropped:
            reasons.append(
                f"orders above the {contracts_text(self._configured)}-contract limit dropped: " + ", ".join(dropped)
            )
        if capped:
            reasons.append(f"orders capped at {contracts_text(limit)} contracts: " + ", ".join(capped))
        return _result(q, out, reasons)


class MaxNotionalRule(RiskRule):
    """Notional exposure after a fill stays ≤ the limit in dollars (FR-501).

    A fill's cost is what it pays for the contracts it adds: a bid pays its price, an ask sells — and
    selling a contract one does not hold is buying its complement, so an ask costs 1 − price per
    contract. Only the *adding* part counts (``quote_ops.adds_exposure``, extended to a quote that
    closes the position and flips it: the part beyond the closed position adds): on a netting venue a
    fill of direction d first closes the opposite net position; on a non-netting venue a bid always
    adds and an ask adds only beyond the holdings of its contract. Cost in $0.0001 units, exactly:
    ``price_units × size_units // 100``. The reduction of notional by the closing part is not credited
    (conservative).

    Exposure after a fill = ``context.notional_units`` + the cost: netting, per quote (one order per
    direction fills, the costlier counts); non-netting, all adding quotes may fill, the costs add up and
    the budget is handed out in slot order. ``block`` drops the quotes that do not fit, ``modify``
    shrinks their adding part to the largest size that fits.
    """

    name = "max_notional"

    def __init__(self, config: MaxNotionalRuleConfig) -> None:
        super().__init__()
        self.config = config
        self._limit = dollars_to_units(config.limit)
        self._block = config.action == "block"

    def evaluate(self, proposed_quotes: QuoteSet, context: RiskContext) -> RiskDecision:
        q = proposed_quotes
        # Cheap bound first: every contract costs < $1, so the total size bounds any fill's cost.
        total = (
            (q.yes_bid.size.units if q.yes_bid is not None else 0)
            + (q.yes_ask.size.units if q.yes_ask is not None else 0)
            + (q.no_bid.size.units if q.no_bid is not None else 0)
            + (q.no_ask.size.units if q.no_ask is not None else 0)
        )
        if context.notional_units + total * PRICE_SCALE // QTY_SCALE <= self._limit or self._fits(q, context):
            return ALLOW
        return self._enforce(q, context)

    def _fits(self, quotes: QuoteSet, context: RiskContext) -> bool:
        """Whether every fill fits the budget: ``_enforce``'s test, without building anything."""
        budget = self._limit - context.notional_units
        netting = context.netting
        inv = context.inventory_units
        spent = 0
        for name, sign, buy in _SLOT_INFO:
            quote = getattr(quotes, name)
            if quote is None:
                continue
            if netting:
                against = -sign * inv if sign * inv < 0 else 0
            elif buy:
                against = 0
            else:
                against = context.yes_units if name == "yes_ask" else context.no_units
            adding = quote.size.units - against
            if adding <= 0:
                continue
            cost = (quote.price.units if buy else PRICE_SCALE - quote.price.units) * adding // QTY_SCALE
            if netting:
                if cost > budget:
                    return False
            else:
                spent += cost
                if spent > budget:
                    return False
        return True

    @staticmethod
    def _split(name: str, quote: Quote, context: RiskContext) -> tuple[int, int, int]:
        """(closing units, adding units, cost per contract in $0.0001) of a fill of ``quote``."""
        size = quote.size.units
        if context.netting:
            against = max(-DIRECTION[name] * context.inventory_units, 0)
        elif quote.order_side is OrderSide.BUY:
            against = 0
        else:
            against = context.yes_units if name == "yes_ask" else context.no_units
        closing = min(size, against)
        per_contract = quote.price.units if quote.order_side is OrderSide.BUY else PRICE_SCALE - quote.price.units
        return closing, size - closing, per_contract

    def _enforce(self, quotes: QuoteSet, context: RiskContext) -> RiskDecision:
        notional = context.notional_units
        budget = self._limit - notional  # may be negative when already over
        shared = not context.netting
        changed: list[str] = []
        worst = 0

        def fit(name: str, quote: Quote) -> Quote | None:
            nonlocal budget, worst
            closing, adding, per_contract = self._split(name, quote, context)
            cost = per_contract * adding // QTY_SCALE
            worst = max(worst, cost)
            if adding == 0 or cost <= budget:
                if shared:
                    budget -= cost
                return quote
            if self._block:
                new = None
            else:
                # Largest a with per_contract·a // 100 ≤ budget.
                room = max((QTY_SCALE * budget + QTY_SCALE - 1) // per_contract, 0)
                new = cap_size(quote, closing + min(adding, room))
                if shared and new is not None:
                    budget -= per_contract * (new.size.units - closing) // QTY_SCALE
            changed.append(f"{name} {'dropped' if new is None else f'cut to {contracts_text(new.size.units)}'}")
            return new

        out = map_quotes(quotes, fit)
        reason = (
            f"notional {dollars_text(notional)} + up to {dollars_text(worst)} if filled would pass the "
            f"{dollars_text(self._limit)} limit: " + ", ".join(changed)
        )
        return _result(quotes, out, [reason])
