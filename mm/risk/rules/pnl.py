"""PnL rules of FR-503/FR-511: hourly loss, daily loss and drawdown, on net PnL (realized + unrealized − fees).

The context carries the PnL figures in $0.0001 units; the limits are converted once at construction, and
capped by the RCR-101 hard limits (``MAX_HOURLY_LOSS``, ``MAX_DAILY_LOSS``) whatever a config says.
``action: kill_switch`` BLOCKs and asks for the kill switch (FR-504: cancel all, halt, manual reset);
``action: block`` only BLOCKs this cycle.
"""

from __future__ import annotations

import math

from mm.domain.limits import MAX_DAILY_LOSS, MAX_HOURLY_LOSS
from mm.domain.price import PRICE_SCALE, dollars_to_units
from mm.domain.quotes import QuoteSet
from mm.risk.base import ALLOW, RiskContext, RiskDecision, RiskRule, block, modify
from mm.risk.quote_ops import is_empty, widen
from mm.risk.rules.market import mid_units
from mm.risk.rules.position import dollars_text, number_text, percent_text
from mm.specs.risk import DailyLossLimitRuleConfig, DrawdownRuleConfig, HourlyLossLimitRuleConfig


def _verdict(reason: str, kill_switch: bool) -> RiskDecision:
    return block(f"{reason}: kill switch" if kill_switch else f"{reason}: quoting blocked", kill_switch=kill_switch)


class HourlyLossLimitRule(RiskRule):
    """Loss over the last hour (−``hourly_pnl_units``) ≥ limit → BLOCK, with the kill switch by default.

    RCR-102 soft limit: a loss ≥ ``warning_threshold`` × limit (but under the limit) widens the quotes by
    ``warning_spread_multiplier`` around their centre (the book mid when one YES side is missing), on the
    tick grid; NO quotes move with their YES complements (``quote_ops.widen``).
    """

    name = "hourly_loss_limit"

    def __init__(self, config: HourlyLossLimitRuleConfig) -> None:
        super().__init__()
        self.config = config
        limit = min(config.limit, MAX_HOURLY_LOSS)
        self._limit = dollars_to_units(limit)
        # loss ≥ threshold × limit, for integer losses: loss ≥ ceil(threshold × limit).
        self._warn = math.ceil(config.warning_threshold * limit * PRICE_SCALE)
        self._widen = float(config.warning_spread_multiplier)
        self._kill = config.action == "kill_switch"
        self._warn_text = (
            f"{percent_text(config.warning_threshold)} warning of the {dollars_text(self._limit)} limit: "
            f"spreads ×{number_text(config.warning_spread_multiplier)}"
        )

    def evaluate(self, proposed_quotes: QuoteSet, context: RiskContext) -> RiskDecision:
        loss = -context.hourly_pnl_units
        if loss < self._warn:
            return ALLOW
        if loss >= self._limit:
            return _verdict(
                f"hourly loss {dollars_text(loss)} reached the {dollars_text(self._limit)} limit", self._kill
            )
        reason = f"hourly loss {dollars_text(loss)} past the {self._warn_text}"
        wider = widen(proposed_quotes, self._widen, context.grid, mid_units(context.snapshot))
        if is_empty(wider):
            return block(f"{reason}; no quote left on the grid")
        return modify(wider, reason)


class DailyLossLimitRule(RiskRule):
    """Loss over the trading day (−``daily_pnl_units``) ≥ limit → BLOCK, with the kill switch by default."""

    name = "daily_loss_limit"

    def __init__(self, config: DailyLossLimitRuleConfig) -> None:
        super().__init__()
        self.config = config
        self._limit = dollars_to_units(min(config.limit, MAX_DAILY_LOSS))
        self._kill = config.action == "kill_switch"

    def evaluate(self, proposed_quotes: QuoteSet, context: RiskContext) -> RiskDecision:
        loss = -context.daily_pnl_units
        if loss < self._limit:
            return ALLOW
        return _verdict(f"daily loss {dollars_text(loss)} reached the {dollars_text(self._limit)} limit", self._kill)


class DrawdownRule(RiskRule):
    """Drop from the net-PnL peak (``drawdown_units``) ≥ limit → BLOCK, with the kill switch by default."""

    name = "drawdown"

    def __init__(self, config: DrawdownRuleConfig) -> None:
        super().__init__()
        self.config = config
        self._limit = dollars_to_units(config.limit)
        self._kill = config.action == "kill_switch"

    def evaluate(self, proposed_quotes: QuoteSet, context: RiskContext) -> RiskDecision:
        drawdown = context.drawdown_units
        if drawdown < self._limit:
            return ALLOW
        return _verdict(
            f"drawdown {dollars_text(drawdown)} from the PnL peak reached the {dollars_text(self._limit)} limit",
            self._kill,
        )
