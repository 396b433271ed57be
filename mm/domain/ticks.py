"""Per-market tick grids (Kalshi ``price_level_structure`` / ``price_ranges``, kalshi-api.md §11).

A grid is a list of ranges ``[start, end]`` with a ``step``; a price is on the grid when it lies strictly
inside (0, 1) and within some range at ``start + k·step``. Ranges share their end points (``0.10`` is on
both sides of a tapered grid). Lookups and rounding are O(1): the grid precomputes, for every $0.0001
unit, its level index and the nearest level at or below / at or above it. Grids are immutable and
cached by their ranges, so every market on the same structure shares one.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Final

from mm.domain.errors import InvalidPriceError, InvalidTickGridError
from mm.domain.price import PRICE_SCALE, Price, dollars_to_units


class Rounding(enum.Enum):
    """Direction to move an off-grid price. Bids round DOWN and asks UP, so rounding never tightens a quote."""

    DOWN = "down"
    UP = "up"


@dataclass(frozen=True, slots=True)
class PriceRange:
    """One ``price_ranges`` entry in $0.0001 units: levels ``start, start+step, … ≤ end``."""

    start: int
    end: int
    step: int

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.end <= PRICE_SCALE:
            raise InvalidTickGridError(
                f"price range [{self.start}, {self.end}] (1e-4 $ units) must satisfy 0 <= start < end <= 1"
            )
        if self.step <= 0:
            raise InvalidTickGridError(f"price range step must be positive, got {self.step} units")
        if (self.end - self.start) % self.step:
            raise InvalidTickGridError(
                f"price range [{self.start}, {self.end}] is not a whole number of {self.step}-unit steps"
            )

    @classmethod
    def from_dollars(cls, start: Decimal | str, end: Decimal | str, step: Decimal | str) -> PriceRange:
        try:
            return cls(dollars_to_units(start), dollars_to_units(end), dollars_to_units(step))
        except InvalidPriceError as exc:
            raise InvalidTickGridError(f"price range {start!r}..{end!r} step {step!r}: {exc}") from exc


def _r(start: str, end: str, step: str) -> PriceRange:
    return PriceRange.from_dollars(start, end, step)


def _center_edge(center: str, edge: str) -> tuple[PriceRange, ...]:
    return (_r("0", "0.10", edge), _r("0.10", "0.90", center), _r("0.90", "1", edge))


STRUCTURES: Final[Mapping[str, tuple[PriceRange, ...]]] = {
    "linear_cent": (_r("0", "1", "0.01"),),
    "deci_cent": (_r("0", "1", "0.001"),),
    "tapered_deci_cent": _center_edge("0.01", "0.001"),
    "center_whole_edge_half_cent": _center_edge("0.01", "0.005"),
    "center_whole_edge_quint_cent": _center_edge("0.01", "0.002"),
    "center_whole_edge_deci_cent": _center_edge("0.01", "0.001"),
    "center_half_edge_quint_cent": _center_edge("0.005", "0.002"),
    "center_half_edge_deci_cent": _center_edge("0.005", "0.001"),
    "center_quint_edge_deci_cent": _center_edge("0.002", "0.001"),
    "center_centi_edge_centi_cent": (_r("0", "1", "0.0001"),),
    "center_deci_edge_centi_cent": (_r("0", "0.01", "0.0001"), _r("0.01", "0.99", "0.001"), _r("0.99", "1", "0.0001")),
}
"""Kalshi's named price level structures (kalshi-api.md §11). ``price_ranges`` stays authoritative."""


@dataclass(frozen=True, slots=True, eq=False)
class TickGrid:
    """The set of valid prices of one market. Build with :meth:`for_structure` or :meth:`from_price_ranges`."""

    ranges: tuple[PriceRange, ...]
    levels: tuple[int, ...] = field(repr=False)
    """Every valid price in $0.0001 units, ascending."""
    _index: list[int] = field(repr=False)
    _floor: list[int] = field(repr=False)
    _ceil: list[int] = field(repr=False)

    @staticmethod
    def from_ranges(ranges: Iterable[PriceRange]) -> TickGrid:
        """Build (or fetch from the cache) the grid for these ranges."""
        key = tuple(sorted(set(ranges), key=lambda r: (r.start, r.end, r.step)))
        if not key:
            raise InvalidTickGridError("a tick grid needs at least one price range")
        return _build_grid(key)

    @staticmethod
    def for_structure(name: str) -> TickGrid:
        """The grid of a named Kalshi ``price_level_structure`` such as ``linear_cent``."""
        try:
            return TickGrid.from_ranges(STRUCTURES[name])
        except KeyError:
            known = ", ".join(sorted(STRUCTURES))
            raise InvalidTickGridError(f"unknown price level structure {name!r}; known: {known}") from None

    @staticmethod
    def from_price_ranges(price_ranges: Sequence[Mapping[str, str]]) -> TickGrid:
        """Build from Kalshi's wire form ``[{"start": "0.0000", "end": "1.0000", "step": "0.0100"}]``."""
        try:
            return TickGrid.from_ranges(PriceRange.from_dollars(r["start"], r["end"], r["step"]) for r in price_ranges)
        except KeyError as exc:
            raise InvalidTickGridError(f"price range entry is missing {exc.args[0]!r}") from None

    @staticmethod
    def linear_cent() -> TickGrid:
        return TickGrid.for_structure("linear_cent")

    @staticmethod
    def deci_cent() -> TickGrid:
        return TickGrid.for_structure("deci_cent")

    @staticmethod
    def tapered_deci_cent() -> TickGrid:
        return TickGrid.for_structure("tapered_deci_cent")

    def __len__(self) -> int:
        return len(self.levels)

    def contains(self, units: int) -> bool:
        """Whether ``units`` ($0.0001) is a valid price on this grid."""
        return 0 < units < PRICE_SCALE and self._index[units] >= 0

    def index_of(self, units: int) -> int:
        """The level index of an on-grid price, or -1 if it is off the grid or outside (0, 1)."""
        if 0 < units < PRICE_SCALE:
            return self._index[units]
        return -1

    def check(self, price: Price) -> Price:
        """Return ``price`` if it is on the grid, else raise ``InvalidPriceError`` naming the nearest levels."""
        if self._index[price.units] < 0:
            below, above = self._floor[price.units], self._ceil[price.units]
            near = [Price(self.levels[i]).to_dollars() for i in (below, above) if i >= 0]
            raise InvalidPriceError(f"price {price} is off the tick grid; nearest valid: {' / '.join(near)}")
        return price

    def round_units(self, units: int, direction: Rounding) -> Price:
        """The nearest grid price at or below (DOWN) or at or above (UP) ``units`` ($0.0001)."""
        if units <= 0 or units >= PRICE_SCALE:
            # Clamp into the open interval first; the table then finds the edge level.
            units = 1 if units <= 0 else PRICE_SCALE - 1
        i = self._floor[units] if direction is Rounding.DOWN else self._ceil[units]
        if i < 0:
            edge = "below the lowest" if direction is Rounding.DOWN else "above the highest"
            raise InvalidPriceError(f"no price on the tick grid {edge} level for {Price(units)}")
        return Price(self.levels[i])

    def round(self, dollars: Decimal, direction: Rounding) -> Price:
        """Round an exact dollar value onto the grid in the given direction.

        Values at or beyond 0 or 1 are clamped to the lowest/highest level before rounding only in the
        direction that keeps them on the grid; otherwise ``InvalidPriceError`` is raised.
        """
        scaled = dollars * PRICE_SCALE
        units = int(scaled)  # truncates toward zero
        if units != scaled and direction is Rounding.UP and scaled > 0:
            units += 1
        elif units != scaled and direction is Rounding.DOWN and scaled < 0:
            units -= 1
        return self.round_units(units, direction)

    def step_at(self, units: int) -> int:
        """The tick size ($0.0001 units) just above the level ``units``: the distance to the next level up."""
        i = self._floor[min(max(units, 1), PRICE_SCALE - 1)]
        if i < 0 or i + 1 >= len(self.levels):
            return self.levels[1] - self.levels[0] if i < 0 else self.levels[-1] - self.levels[-2]
        return self.levels[i + 1] - self.levels[i]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TickGrid) and self.ranges == other.ranges

    def __hash__(self) -> int:
        return hash(self.ranges)


@lru_cache(maxsize=64)
def _build_grid(ranges: tuple[PriceRange, ...]) -> TickGrid:
    valid = sorted({u for r in ranges for u in range(r.start, r.end + 1, r.step) if 0 < u < PRICE_SCALE})
    if len(valid) < 2:
        raise InvalidTickGridError("a tick grid needs at least two price levels inside (0, 1)")
    index = [-1] * (PRICE_SCALE + 1)
    floor = [-1] * (PRICE_SCALE + 1)
    ceil = [-1] * (PRICE_SCALE + 1)
    for i, u in enumerate(valid):
        index[u] = i
    last = -1
    for u in range(PRICE_SCALE + 1):
        if index[u] >= 0:
            last = index[u]
        floor[u] = last
    nxt = -1
    for u in range(PRICE_SCALE, -1, -1):
        if index[u] >= 0:
            nxt = index[u]
        ceil[u] = nxt
    return TickGrid(ranges, tuple(valid), index, floor, ceil)
