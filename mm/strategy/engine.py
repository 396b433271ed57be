"""The strategy engine: five injected components → the four-quote sheet (FR-402, FR-410).

For one market at one instant::

    σ     = volatility.get_volatility()                      (or an override, e.g. an operator preview)
    r     = reservation_price.calculate(s, q, σ, T, Q_max)
    δ     = max(spread.calculate(σ, q, Q_max, T), min_spread / 2)
    skew  = skew.calculate(q, Q_max, σ)
    YES bid = r − skew − δ  (rounded DOWN onto the tick grid)
    YES ask = r − skew + δ  (rounded UP)
    NO bid = 1 − YES ask, NO ask = 1 − YES bid, sizes swapped (FR-403)

Prices outside ``price_bounds`` are pulled back only in the direction that widens (a bid above the
upper bound comes down to it); a quote that would have to move *toward* the other side is dropped.
Rounding never tightens the spread. Sizes come from the sizer and are capped by the remaining capacity
(a bid may add at most Q_max − q contracts, an ask at most Q_max + q), floored to 0.01 contract.

The engine is pure and holds no state except its volatility estimator; time and the tick grid arrive
as arguments. :meth:`StrategyEngine.with_component` returns a new engine with one component swapped
(FR-1002), so the swap is a single reference assignment by the caller.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Final, Literal, NamedTuple

from mm.domain.price import PRICE_SCALE, QTY_SCALE, Price, Quantity
from mm.domain.quotes import QuoteSet
from mm.domain.ticks import Rounding, TickGrid
from mm.strategy.base import (
    QuoteSizer,
    ReservationPriceCalculator,
    SizingContext,
    SkewCalculator,
    SpreadCalculator,
    VolatilityEstimator,
)

Slot = Literal["volatility", "reservation_price", "skew", "spread", "sizer"]
SLOTS: Final[tuple[Slot, ...]] = ("volatility", "reservation_price", "skew", "spread", "sizer")
_EPS_UNITS: Final = 1e-6  # float noise tolerance when converting dollars to $0.0001 units


@dataclass(frozen=True, slots=True)
class StrategyLimits:
    """Strategy-wide parameters (FR-404/416) in contracts and dollars."""

    max_inventory: float = 1000.0
    base_size: float = 100.0
    min_spread: float = 0.01
    price_min: float = 0.01
    price_max: float = 0.99


@dataclass(frozen=True, slots=True)
class QuoteInputs:
    """What the engine needs to quote one market at one instant."""

    market_id: str
    mid: float
    """YES mid price, dollars."""
    inventory: float
    """Net YES inventory, contracts (positive = long YES)."""
    time_to_settlement: float
    """Seconds until the market closes."""
    now_us: int
    """Timestamp of the quote, µs since the epoch (stamped on the QuoteSet)."""
    grid: TickGrid
    volatility: float | None = None
    """σ override in dollars/√s (previews, tests); None = ask the estimator."""


class QuoteResult(NamedTuple):
    """The quote sheet and the intermediate values that produced it (for status, recording, previews).

    A NamedTuple rather than a frozen dataclass: equally immutable, and built on every quote, where a
    frozen dataclass's per-field ``object.__setattr__`` costs about a microsecond.
    """

    quotes: QuoteSet
    volatility: float
    reservation_price: float
    half_spread: float
    skew: float
    bid_size: float
    ask_size: float
    note: str = ""
    """Why a side (or everything) is missing, empty when all four quotes are present."""


@dataclass(frozen=True, slots=True)
class StrategyEngine:
    """Composes injected components into quotes. Immutable: swap components with :meth:`with_component`."""

    volatility: VolatilityEstimator
    reservation_price: ReservationPriceCalculator
    skew: SkewCalculator
    spread: SpreadCalculator
    sizer: QuoteSizer
    limits: StrategyLimits = StrategyLimits()

    def on_mid(self, mid: float, timestamp_us: int) -> None:
        """Feed a mid-price change (dollars) to the volatility estimator."""
        self.volatility.update(mid, timestamp_us)

    def with_component(self, slot: Slot, component: object, *, transfer_state: bool = False) -> StrategyEngine:
        """A new engine with ``slot`` replaced; the others are the same objects (FR-1002).

        With ``transfer_state`` a new volatility estimator imports the old one's state (FR-1002 state
        transfer; see :mod:`mm.strategy.volatility` for what carries over between kinds).
        """
        expected = {
            "volatility": VolatilityEstimator,
            "reservation_price": ReservationPriceCalculator,
            "skew": SkewCalculator,
            "spread": SpreadCalculator,
            "sizer": QuoteSizer,
        }[slot]
        if not isinstance(component, expected):
            raise TypeError(f"a {slot} component must be a {expected.__name__}, not {type(component).__name__}")
        if transfer_state and isinstance(component, VolatilityEstimator):
            component.set_state(self.volatility.get_state())
        changes: dict[str, Any] = {slot: component}
        return replace(self, **changes)

    def quote(self, inputs: QuoteInputs) -> QuoteResult:
        """The four-quote sheet for ``inputs``. Never raises for market conditions: a side that cannot be
        quoted is left out and ``note`` says why."""
        limits = self.limits
        if inputs.volatility is not None:
            sigma = inputs.volatility
        elif self.volatility.is_ready():
            sigma = self.volatility.get_volatility()
        else:
            empty = QuoteSet(inputs.market_id, inputs.now_us, None, None, None, None)
            return QuoteResult(empty, 0.0, inputs.mid, 0.0, 0.0, 0.0, 0.0, "volatility estimator warming up")
        q, q_max, tau = inputs.inventory, limits.max_inventory, inputs.time_to_settlement
        r = self.reservation_price.calculate(inputs.mid, q, sigma, tau, q_max)
        delta = self.spread.calculate(sigma, q, q_max, tau)
        half_min = limits.min_spread / 2
        delta = max(delta, half_min)
        skew = self.skew.calculate(q, q_max, sigma)
        centre = r - skew
        bid_size, ask_size = self.sizer.calculate(q, q_max, limits.base_size, SizingContext(centre, delta))
        # Capacity: a filled bid adds to q, a filled ask takes from it.
        bid_size = _clip_size(bid_size, q_max - q)
        ask_size = _clip_size(ask_size, q_max + q)
        notes: list[str] = []
        bid = self._bid_price(centre - delta, inputs.grid, notes)
        ask = self._ask_price(centre + delta, inputs.grid, notes)
        bid_qty = Quantity(_contracts_to_units(bid_size))
        ask_qty = Quantity(_contracts_to_units(ask_size))
        if bid is not None and bid_qty.is_zero:
            notes.append("no bid: inventory at its limit")
        if ask is not None and ask_qty.is_zero:
            notes.append("no ask: inventory at its limit")
        quotes = QuoteSet.from_yes(
            inputs.market_id,
            inputs.now_us,
            None if bid is None else (bid, bid_qty),
            None if ask is None else (ask, ask_qty),
        )
        return QuoteResult(quotes, sigma, r, delta, skew, bid_size, ask_size, "; ".join(notes))

    def _bid_price(self, dollars: float, grid: TickGrid, notes: list[str]) -> Price | None:
        low, high = self.limits.price_min, self.limits.price_max
        dollars = min(dollars, high)  # moving a bid down only widens
        if dollars < low:
            notes.append(f"no bid: {dollars:.4f} is below the price bound {low}")
            return None
        units = math.floor(dollars * PRICE_SCALE + _EPS_UNITS)
        price = grid.round_units(units, Rounding.DOWN) if units >= grid.levels[0] else None
        if price is None or price.units < math.ceil(low * PRICE_SCALE - _EPS_UNITS):
            notes.append("no bid: no tick-grid price inside the bounds")
            return None
        return price

    def _ask_price(self, dollars: float, grid: TickGrid, notes: list[str]) -> Price | None:
        low, high = self.limits.price_min, self.limits.price_max
        dollars = max(dollars, low)  # moving an ask up only widens
        if dollars > high:
            notes.append(f"no ask: {dollars:.4f} is above the price bound {high}")
            return None
        units = math.ceil(dollars * PRICE_SCALE - _EPS_UNITS)
        price = grid.round_units(units, Rounding.UP) if units <= grid.levels[-1] else None
        if price is None or price.units > math.floor(high * PRICE_SCALE + _EPS_UNITS):
            notes.append("no ask: no tick-grid price inside the bounds")
            return None
        return price


def _clip_size(size: float, capacity: float) -> float:
    if capacity <= 0 or size <= 0:
        return 0.0
    return capacity if size > capacity else size


def _contracts_to_units(contracts: float) -> int:
    """Contracts → 1/100 contract units, rounded down (never quote more than computed)."""
    return max(0, math.floor(contracts * QTY_SCALE + _EPS_UNITS))
