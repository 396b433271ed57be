"""Market-condition rules of FR-511: high volatility, wide (or one-sided) book spread, stale market data."""

from __future__ import annotations

import math

from mm.domain.market import NEVER_UPDATED_US, MarketSnapshot
from mm.domain.price import PRICE_SCALE
from mm.domain.quotes import QuoteSet
from mm.risk.base import ALLOW, RiskContext, RiskDecision, RiskRule, block, modify
from mm.risk.quote_ops import is_empty, map_quotes, scale_size, widen
from mm.risk.rules.position import dollars_text, number_text
from mm.specs.risk import HighVolatilityRuleConfig, StaleDataRuleConfig, WideSpreadRuleConfig


def mid_units(snapshot: MarketSnapshot) -> int | None:
    """The book mid in $0.0001 units (floored to a unit), or None on a one-sided or empty book."""
    bid, ask = snapshot.best_bid, snapshot.best_ask
    if bid is None or ask is None:
        return None
    return (bid.units + ask.units) // 2


class HighVolatilityRule(RiskRule):
    """σ > ``threshold_multiplier`` × normal σ → widen and shrink (``modify``) or BLOCK (``block``).

    Normal σ is ``config.normal_volatility`` when set, else the learned ``context.normal_volatility``;
    with neither (or a non-positive one) the rule cannot judge and ALLOWs. ``modify`` follows RCR-102
    ("widen spreads, reduce size"): the quotes are widened by ``spread_multiplier`` around their centre
    (the book mid when one YES side is missing) and every size is multiplied by ``size_multiplier``.
    A NaN σ counts as tripped (fail safe).
    """

    name = "high_volatility"

    def __init__(self, config: HighVolatilityRuleConfig) -> None:
        super().__init__()
        self.config = config
        self._normal = float(config.normal_volatility) if config.normal_volatility is not None else None
        self._threshold = float(config.threshold_multiplier)
        self._spread = float(config.spread_multiplier)
        self._size = float(config.size_multiplier)
        self._block = config.action == "block"
        self._action_text = (
            "quoting blocked"
            if self._block
            else f"spreads ×{number_text(config.spread_multiplier)}, sizes ×{number_text(config.size_multiplier)}"
        )
        self._threshold_text = number_text(config.threshold_multiplier)

    def evaluate(self, proposed_quotes: QuoteSet, context: RiskContext) -> RiskDecision:
        normal = self._normal if self._normal is not None else context.normal_volatility
        if normal is None or not normal > 0:
            return ALLOW
        sigma = context.volatility
        if sigma <= self._threshold * normal:
            return ALLOW
        reason = f"volatility {sigma:.3g} above {self._threshold_text}× normal {normal:.3g} per √s: {self._action_text}"
        if self._block:
            return block(reason)
        size = self._size
        wider = widen(proposed_quotes, self._spread, context.grid, mid_units(context.snapshot))
        out = map_quotes(wider, lambda _name, q: scale_size(q, size))
        if is_empty(out):
            return block(f"{reason}; no quote left")
        return modify(out, reason)


class WideSpreadRule(RiskRule):
    """BLOCK when the book spread is unusually wide, or the book is one-sided or crossed.

    Trips when the spread exceeds ``max_spread`` (if set) or ``threshold_multiplier`` × normal spread
    (``config.normal_spread``, else the learned ``context.normal_spread_units``; skipped when neither is
    known). A book without a bid or an ask has no spread to trust and BLOCKs; so does a crossed or
    locked book (spread ≤ 0), which a correct feed never shows (the book resyncs). Comparisons are exact
    integer ones: the multiplier is kept as a ratio of integers.
    """

    name = "wide_spread"

    def __init__(self, config: WideSpreadRuleConfig) -> None:
        super().__init__()
        self.config = config
        # spread_units > x  ⟺  spread_units > floor(x) for an integer spread.
        self._max = math.floor(config.max_spread * PRICE_SCALE) if config.max_spread is not None else None
        self._normal_max = (
            math.floor(config.threshold_multiplier * config.normal_spread * PRICE_SCALE)
            if config.normal_spread is not None
            else None
        )
        self._num, self._den = config.threshold_multiplier.as_integer_ratio()
        self._threshold_text = number_text(config.threshold_multiplier)

    def evaluate(self, proposed_quotes: QuoteSet, context: RiskContext) -> RiskDecision:
        snapshot = context.snapshot
        bid, ask = snapshot.best_bid, snapshot.best_ask
        if bid is None or ask is None:
            if bid is None and ask is None:
                return block("book is empty: no bid and no ask")
            return block(f"book is one-sided: {'no bid' if bid is None else 'no ask'}")
        spread = ask.units - bid.units
        if spread <= 0:
            return block(f"book is crossed (bid {bid} ≥ ask {ask}): market data out of sync")
        if self._max is not None and spread > self._max:
            return block(f"book spread {dollars_text(spread)} above the {dollars_text(self._max)} maximum")
        if self._normal_max is not None:
            if spread > self._normal_max:
                return self._too_wide(spread, self._normal_max)
        else:
            normal = context.normal_spread_units
            if normal is not None and spread * self._den > self._num * normal:
                return self._too_wide(spread, self._num * normal // self._den)
        return ALLOW

    def _too_wide(self, spread: int, ceiling: int) -> RiskDecision:
        return block(
            f"book spread {dollars_text(spread)} above {self._threshold_text}× normal ({dollars_text(ceiling)})"
        )


class StaleDataRule(RiskRule):
    """BLOCK when the book never updated or its last update is more than ``max_age_seconds`` old.

    An age exactly equal to the maximum is still fresh (``MarketSnapshot.is_stale``); a negative age
    (clock skew between the caller's clocks) counts as fresh.
    """

    name = "stale_data"

    def __init__(self, config: StaleDataRuleConfig) -> None:
        super().__init__()
        self.config = config
        # age_us > x  ⟺  age_us > floor(x) for an integer age.
        self._max_age_us = math.floor(config.max_age_seconds * 1_000_000)
        self._max_text = f"max {number_text(config.max_age_seconds)} s"

    def evaluate(self, proposed_quotes: QuoteSet, context: RiskContext) -> RiskDecision:
        last = context.snapshot.last_update_us
        age = context.now_us - last
        if last != NEVER_UPDATED_US and age <= self._max_age_us:
            return ALLOW
        if last == NEVER_UPDATED_US:
            return block("no market data received yet")
        text = f"{age / 1_000_000:.1f}"
        if round(float(text) * 1_000_000) <= self._max_age_us:  # just over the limit: show the µs
            text = f"{age / 1_000_000:.6f}"
        return block(f"market data {text} s old ({self._max_text})")
