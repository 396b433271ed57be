"""The ``Market`` and ``MarketSelector`` kinds.

A Market binds one venue market (``ticker``) to an Exchange, a Strategy and a RiskPolicy, with optional
per-market ``overrides`` (partial Strategy / RiskPolicy specs merged over the referenced ones and
validated as a whole at admission — FR-501 "limits configurable per market"). A MarketSelector
discovers markets (FR-1303) and owns the Markets it creates from its ``template``, so hourly markets
roll by themselves.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from pydantic import Field

from mm.specs.types import (
    FieldProblem,
    Minutes,
    Name,
    NonNegativeContracts,
    NonNegativeDecimal,
    PositiveDecimal,
    PositiveInt,
    SpecModel,
    Ticker,
)

Execution = Literal["paper", "live"]
TradingState = Literal["active", "reducing", "halted"]
ShutdownMode = Literal["immediate", "drain", "unwind", "pause"]
DeletionPolicy = Literal["cancel_orders", "flatten", "orphan"]


class Overrides(SpecModel):
    """Partial specs merged (deeply) over the referenced Strategy and RiskPolicy for this market only."""

    strategy: dict[str, Any] = Field(default_factory=dict)
    risk: dict[str, Any] = Field(default_factory=dict)


class Quoting(SpecModel):
    materiality_ticks: PositiveInt = Field(
        1, description="Replace a resting order only when the price moves at least this many ticks (FR-602)."
    )
    max_updates_per_second: PositiveDecimal = Field(
        Decimal(10), le=10, description="Quote updates per second, at most 10 (NFR-102)."
    )


class MarketTemplate(SpecModel):
    """Every Market field except the venue market and the exchange (a selector supplies those)."""

    strategy_ref: Name
    risk_policy_ref: Name
    overrides: Overrides = Overrides()
    execution: Execution = Field("paper", description="paper (simulated fills, the default) or live.")
    trading_state: TradingState = Field("active", description="halted = cancel only; reducing = reduce only.")
    shutdown_mode: ShutdownMode | None = Field(None, description="None = the TradingNode's default mode.")
    cutoff_minutes: Minutes | None = Field(
        None, description="Stop quoting this long before close; None = the policy's settlement_cutoff."
    )
    deletion_policy: DeletionPolicy = Field(
        "cancel_orders", description="What deleting the Market does first: cancel orders, flatten, or orphan."
    )
    quoting: Quoting = Quoting()


class MarketSpec(MarketTemplate):
    exchange_ref: Name
    ticker: Ticker


class SelectionFilters(SpecModel):
    min_volume_24h: NonNegativeContracts = Field(Decimal(0), description="Contracts traded in 24 h.")
    min_open_interest: NonNegativeContracts = Decimal(0)
    max_spread: PositiveDecimal | None = Field(None, description="Widest current spread, dollars.")
    min_time_to_settlement: Minutes = Field(Decimal(30), description="Minutes before close, at least.")
    max_time_to_settlement: Minutes | None = Field(None, description="Minutes before close, at most.")
    categories: list[str] = Field(default_factory=list)
    min_price: NonNegativeDecimal | None = Field(None, description="Skip markets whose mid is below, dollars.")
    max_price: NonNegativeDecimal | None = Field(None, description="Skip markets whose mid is above, dollars.")


class MarketSelectorSpec(SpecModel):
    """FR-1303: discover eligible markets and keep the best ``max_concurrent`` of them active."""

    exchange_ref: Name
    auto_discover: bool = True
    series: list[Ticker] = Field(default_factory=list, description="Series tickers to search, e.g. KXBTCD.")
    filters: SelectionFilters = SelectionFilters()
    max_concurrent: PositiveInt = 3
    selection_strategy: Literal["highest_volume", "lowest_spread", "random", "closest_to_even"] = Field(
        "highest_volume", description="closest_to_even prefers mids near $0.50 (at-the-money strikes)."
    )
    deactivate_before_close_minutes: Minutes = Field(
        Decimal(5), description="Wind a market down this long before it closes."
    )
    include_tickers: list[Ticker] = Field(default_factory=list, description="Always trade these (manual add).")
    exclude_tickers: list[Ticker] = Field(default_factory=list, description="Never trade these (manual remove).")
    template: MarketTemplate

    def check(self) -> list[FieldProblem]:
        problems: list[FieldProblem] = []
        f = self.filters
        if self.auto_discover and not (self.series or f.categories or self.include_tickers):
            problems.append(
                (("series",), "auto_discover needs series, filters.categories or include_tickers to bound the search")
            )
        if f.max_time_to_settlement is not None and f.max_time_to_settlement < f.min_time_to_settlement:
            problems.append((("filters", "max_time_to_settlement"), "must not be below filters.min_time_to_settlement"))
        if f.min_price is not None and f.max_price is not None and f.min_price > f.max_price:
            problems.append((("filters", "min_price"), "must not be above filters.max_price"))
        overlap = sorted(set(self.include_tickers) & set(self.exclude_tickers))
        if overlap:
            problems.append((("exclude_tickers",), f"also in include_tickers: {', '.join(overlap)}"))
        return problems
