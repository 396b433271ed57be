"""The simulator's synthetic crowd: background makers, noise takers and informed takers.

Pure decision code. :meth:`Crowd.step` reads a snapshot of each active market (:class:`MarketView`) and
returns order intents (:class:`Place`, :class:`Cancel`) for the exchange to submit under the crowd's user
ids; it never touches a book. Everything random comes from per-market generators seeded with
``(seed, ticker)``, so the same seed and the same sequence of inputs give the same intents.

* **Makers** (``crowd-maker-1`` …) keep ``maker_levels`` post-only bids and asks around fair value, a few
  cents wide, re-quoted every ``maker_refresh_seconds`` (cancelling the previous quotes by client order
  id first; the exchange should treat a cancel of an already-filled order as a no-op).
* **Noise takers** (``crowd-noise``) arrive as a Poisson process per market and send IOC orders of
  random side and size that cross the spread by a cent or two.
* **Informed takers** (``crowd-informed``) send IOC orders when the best bid is more than
  ``informed_threshold_cents`` above fair value (sell) or the best ask that far below it (buy), after the
  mispricing has been visible for ``informed_reaction_seconds`` (their latency).

Fair value is the probability that the settlement average ends above the strike under the index's
lognormal model, so books drift toward 0 or 1 as the close nears. Floats are fine for these decisions:
every price leaving this module is an int of $0.0001 on the market's grid.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from statistics import NormalDist
from typing import Final, TypeAlias

from mm.domain.price import PRICE_SCALE
from mm.domain.ticks import Rounding, TickGrid
from mm.sim.types import BookSide, TimeInForce
from mm.sim.underlying import SECONDS_PER_YEAR

__all__ = ["Cancel", "Crowd", "CrowdConfig", "Intent", "MarketView", "Place", "fair_value"]

_US_PER_SECOND: Final = 1_000_000
_CENT_UNITS: Final = PRICE_SCALE // 100
_MIN_PRICE: Final = _CENT_UNITS  # $0.01
_MAX_PRICE: Final = PRICE_SCALE - _CENT_UNITS  # $0.99
_NORMAL: Final = NormalDist()
NOISE_USER: Final = "crowd-noise"
INFORMED_USER: Final = "crowd-informed"


def fair_value(
    strike: Decimal, index_price: float, seconds_to_close: float, annual_volatility: float, min_seconds: float = 5.0
) -> float:
    """P(settlement average > strike) ≈ Φ((ln(S/K) − σ²τ/2) / (σ√τ)), τ in years, clamped to [0.01, 0.99].

    τ is floored at ``min_seconds`` (the 60-s average is nearly fixed by then), so close to the close the
    value is ~0.01 or ~0.99 unless the index is within a few dollars of the strike. The −σ²τ/2 term
    matches the driftless (martingale) index of :mod:`mm.sim.underlying`; it is negligible for hours.
    """
    k = float(strike)
    if index_price <= 0 or k <= 0:
        raise ValueError(f"index price and strike must be positive, got S={index_price}, K={k}")
    tau = max(seconds_to_close, min_seconds) / SECONDS_PER_YEAR
    scale = annual_volatility * math.sqrt(tau)
    if scale <= 0:
        p = 1.0 if index_price > k else 0.0 if index_price < k else 0.5
    else:
        p = _NORMAL.cdf((math.log(index_price / k) - 0.5 * scale * scale) / scale)
    return min(max(p, 0.01), 0.99)


@dataclass(frozen=True, slots=True)
class CrowdConfig:
    makers: int = 2
    maker_levels: int = 3
    maker_size_contracts: tuple[int, int] = (10, 60)
    maker_spread_cents: tuple[int, int] = (2, 6)
    """Inclusive range of the distance between a maker's best bid and best ask, before grid rounding."""
    maker_level_step_cents: int = 1
    maker_refresh_seconds: float = 5.0
    noise_taker_rate_per_minute: float = 12.0
    """Per market."""
    noise_size_contracts: tuple[int, int] = (1, 25)
    noise_cross_cents: tuple[int, int] = (1, 2)
    informed_threshold_cents: int = 3
    informed_size_contracts: tuple[int, int] = (5, 40)
    informed_reaction_seconds: float = 0.5
    annual_volatility: float = 0.5
    """Used for fair value when a :class:`MarketView` carries neither ``fair`` nor its own volatility."""

    def __post_init__(self) -> None:
        for name in (
            "maker_size_contracts",
            "maker_spread_cents",
            "noise_size_contracts",
            "noise_cross_cents",
            "informed_size_contracts",
        ):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                raise ValueError(f"{name} must be (lo, hi) with 0 < lo <= hi, got {(lo, hi)}")
        if self.makers < 0 or self.maker_levels < 1 or self.maker_level_step_cents < 1:
            raise ValueError("makers must be >= 0, maker_levels and maker_level_step_cents >= 1")
        if self.maker_refresh_seconds <= 0 or self.noise_taker_rate_per_minute < 0:
            raise ValueError("maker_refresh_seconds must be > 0 and noise_taker_rate_per_minute >= 0")


@dataclass(frozen=True, slots=True)
class MarketView:
    """What the crowd sees of one active market. Prices are YES prices in $0.0001 units."""

    ticker: str
    floor_strike: Decimal
    close_us: int
    index_price: float
    best_bid: int | None = None
    best_ask: int | None = None
    grid: TickGrid = field(default_factory=TickGrid.linear_cent)
    fair: float | None = None
    """Overrides the crowd's own fair value (probability of YES) when given."""
    annual_volatility: float | None = None


@dataclass(frozen=True, slots=True)
class Place:
    user_id: str
    ticker: str
    side: BookSide
    price_units: int
    count_units: int
    """1/100 contract."""
    time_in_force: TimeInForce
    post_only: bool
    client_order_id: str


@dataclass(frozen=True, slots=True)
class Cancel:
    user_id: str
    ticker: str
    client_order_id: str


Intent: TypeAlias = Place | Cancel


@dataclass(slots=True)
class _MarketState:
    rng: random.Random
    next_noise_us: int
    next_refresh_us: list[int]
    quotes: list[list[str]]
    """Client order ids each maker has resting (as far as the crowd knows)."""
    refreshes: list[int]
    mispriced_since_us: int | None = None


class Crowd:
    """Seeded crowd. Call :meth:`step` with simulation time and every active market, as often as you like."""

    fair_value = staticmethod(fair_value)

    def __init__(self, config: CrowdConfig, seed: int | str) -> None:
        self._config = config
        self._seed = seed
        self._markets: dict[str, _MarketState] = {}
        self._next_id = 0
        self._refresh_us = round(config.maker_refresh_seconds * _US_PER_SECOND)

    @property
    def config(self) -> CrowdConfig:
        return self._config

    def step(self, now_us: int, markets: Sequence[MarketView]) -> list[Intent]:
        """Intents due at ``now_us``: takers first (they act on the book as viewed), then maker re-quotes.

        Markets missing from ``markets`` or past their close are forgotten (the exchange cancels resting
        orders at the close).
        """
        intents: list[Intent] = []
        live: set[str] = set()
        for view in markets:
            if now_us >= view.close_us:
                continue
            live.add(view.ticker)
            state = self._markets.get(view.ticker) or self._new_state(view.ticker, now_us)
            fair = self.fair_of(view, now_us)
            self._informed(now_us, view, state, fair, intents)
            self._noise(now_us, view, state, intents)
            self._makers(now_us, view, state, fair, intents)
        for ticker in [t for t in self._markets if t not in live]:
            del self._markets[ticker]
        return intents

    def fair_of(self, view: MarketView, now_us: int) -> float:
        """The fair YES probability the crowd uses for ``view`` at ``now_us``."""
        if view.fair is not None:
            return min(max(view.fair, 0.01), 0.99)
        sigma = self._config.annual_volatility if view.annual_volatility is None else view.annual_volatility
        return fair_value(view.floor_strike, view.index_price, (view.close_us - now_us) / _US_PER_SECOND, sigma)

    # -- roles ------------------------------------------------------------------------------------

    def _new_state(self, ticker: str, now_us: int) -> _MarketState:
        rng = random.Random(f"crowd:{self._seed}:{ticker}")
        makers = self._config.makers
        # Everyone quotes at once when a market appears, then the makers' refreshes are staggered.
        state = _MarketState(
            rng, now_us + self._noise_gap_us(rng), [now_us] * makers, [[] for _ in range(makers)], [0] * makers
        )
        self._markets[ticker] = state
        return state

    def _noise_gap_us(self, rng: random.Random) -> int:
        rate_per_s = self._config.noise_taker_rate_per_minute / 60
        if rate_per_s <= 0:
            return 2**62
        return max(1, round(rng.expovariate(rate_per_s) * _US_PER_SECOND))

    def _informed(self, now_us: int, view: MarketView, state: _MarketState, fair: float, out: list[Intent]) -> None:
        cfg = self._config
        fair_units = fair * PRICE_SCALE
        edge = cfg.informed_threshold_cents * _CENT_UNITS
        sell = view.best_bid is not None and view.best_bid > fair_units + edge
        buy = view.best_ask is not None and view.best_ask < fair_units - edge
        if not (sell or buy):
            state.mispriced_since_us = None
            return
        if state.mispriced_since_us is None:
            state.mispriced_since_us = now_us
        if now_us - state.mispriced_since_us < round(cfg.informed_reaction_seconds * _US_PER_SECOND):
            return
        state.mispriced_since_us = None
        count = state.rng.randint(*cfg.informed_size_contracts) * 100
        if sell:  # hit every bid above fair + threshold
            price = _on_grid(view.grid, math.ceil(fair_units + edge), Rounding.UP)
            out.append(self._place(INFORMED_USER, view.ticker, BookSide.ASK, price, count, ioc=True))
        else:  # lift every ask below fair − threshold
            price = _on_grid(view.grid, math.floor(fair_units - edge), Rounding.DOWN)
            out.append(self._place(INFORMED_USER, view.ticker, BookSide.BID, price, count, ioc=True))

    def _noise(self, now_us: int, view: MarketView, state: _MarketState, out: list[Intent]) -> None:
        cfg = self._config
        while state.next_noise_us <= now_us:
            state.next_noise_us += self._noise_gap_us(state.rng)
            rng = state.rng
            buy = rng.random() < 0.5
            cross = rng.randint(*cfg.noise_cross_cents) * _CENT_UNITS
            count = rng.randint(*cfg.noise_size_contracts) * 100
            if buy and view.best_ask is not None:
                price = _on_grid(view.grid, view.best_ask + cross, Rounding.UP)
                out.append(self._place(NOISE_USER, view.ticker, BookSide.BID, price, count, ioc=True))
            elif not buy and view.best_bid is not None:
                price = _on_grid(view.grid, view.best_bid - cross, Rounding.DOWN)
                out.append(self._place(NOISE_USER, view.ticker, BookSide.ASK, price, count, ioc=True))
            # Nothing to cross on that side: the arrival passes without an order.

    def _makers(self, now_us: int, view: MarketView, state: _MarketState, fair: float, out: list[Intent]) -> None:
        cfg = self._config
        for m in range(cfg.makers):
            if now_us < state.next_refresh_us[m]:
                continue
            user = f"crowd-maker-{m + 1}"
            out.extend(Cancel(user, view.ticker, coid) for coid in state.quotes[m])
            state.quotes[m] = []
            for side, price in self.maker_quotes(view.grid, fair, state.rng):
                count = state.rng.randint(*cfg.maker_size_contracts) * 100
                place = self._place(user, view.ticker, side, price, count, ioc=False)
                state.quotes[m].append(place.client_order_id)
                out.append(place)
            # After the first quote, maker m waits (m + 1)/makers of a period: the refreshes interleave.
            gap = self._refresh_us * (m + 1) // cfg.makers if state.refreshes[m] == 0 else self._refresh_us
            state.refreshes[m] += 1
            nxt = state.next_refresh_us[m] + gap
            state.next_refresh_us[m] = nxt if nxt > now_us else now_us + self._refresh_us

    def maker_quotes(self, grid: TickGrid, fair: float, rng: random.Random) -> list[tuple[BookSide, int]]:
        """One maker's ladder: ``maker_levels`` bids (rounded down) and asks (rounded up) around ``fair``,
        inside [$0.01, $0.99]; levels that would fall outside are dropped."""
        cfg = self._config
        half = rng.randint(*cfg.maker_spread_cents) * _CENT_UNITS / 2
        fair_units = fair * PRICE_SCALE
        quotes: list[tuple[BookSide, int]] = []
        for i in range(cfg.maker_levels):
            offset = half + i * cfg.maker_level_step_cents * _CENT_UNITS
            bid = math.floor(fair_units - offset)
            if bid >= _MIN_PRICE:
                quotes.append((BookSide.BID, grid.round_units(bid, Rounding.DOWN).units))
            ask = math.ceil(fair_units + offset)
            if ask <= _MAX_PRICE:
                quotes.append((BookSide.ASK, grid.round_units(ask, Rounding.UP).units))
        return list(dict.fromkeys(quotes))  # grid rounding can merge levels on coarse grids

    def _place(self, user: str, ticker: str, side: BookSide, price: int, count: int, *, ioc: bool) -> Place:
        self._next_id += 1
        tif = TimeInForce.IMMEDIATE_OR_CANCEL if ioc else TimeInForce.GOOD_TILL_CANCELED
        return Place(user, ticker, side, price, count, tif, not ioc, f"{user}-{self._next_id}")


def _on_grid(grid: TickGrid, units: int, direction: Rounding) -> int:
    """``units`` clamped into the grid's range and rounded onto it in ``direction`` (a taker's limit)."""
    clamped = min(max(units, grid.levels[0]), grid.levels[-1])
    return grid.round_units(clamped, direction).units
