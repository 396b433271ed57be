"""Exact prices and quantities for binary contracts.

Prices are held as integers in units of $0.0001 (``PRICE_SCALE`` units per dollar) and quantities in
units of 1/100 contract (``QTY_SCALE`` units per contract). Those are the finest grids Kalshi uses
(kalshi-api.md §3, §11), so every wire value converts exactly, and integer arithmetic is both exact and
fast on the hot path. ``Decimal`` is used at the edges (YAML, JSON, display). No float ever holds money:
the constructors below refuse floats outright.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Final

from mm.domain.errors import InvalidPriceError, InvalidQuantityError

PRICE_SCALE: Final = 10_000
"""Price units per dollar: one unit is $0.0001."""

QTY_SCALE: Final = 100
"""Quantity units per contract: one unit is 1/100 contract."""

_PRICE_QUANTUM: Final = Decimal("0.0001")
_QTY_QUANTUM: Final = Decimal("0.01")


def _exact_units(value: Decimal | str | int, scale: int, what: str, error: type[ValueError]) -> int:
    """Convert ``value`` (dollars or contracts) to integer units of ``1/scale``, refusing to round."""
    if isinstance(value, bool | float):
        raise error(f"{what} must be given as a Decimal, string or int, not {type(value).__name__}")
    if isinstance(value, int):
        return value * scale
    try:
        dec = value if isinstance(value, Decimal) else Decimal(value.strip())
    except (InvalidOperation, AttributeError) as exc:
        raise error(f"{what} {value!r} is not a decimal number") from exc
    if not dec.is_finite():
        raise error(f"{what} {value!r} is not a finite number")
    scaled = dec * scale
    units = int(scaled)
    if scaled != units:
        raise error(f"{what} {value!r} is finer than 1/{scale}")
    return units


def _format_units(units: int, scale_digits: int) -> str:
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), 10**scale_digits)
    return f"{sign}{whole}.{frac:0{scale_digits}d}"


@dataclass(frozen=True, slots=True, order=True)
class Price:
    """A binary-contract price strictly inside (0, 1) dollars, in units of $0.0001.

    ``Price(5600)`` is $0.56. A price always refers to the contract it quotes: a YES price for YES
    orders, a NO price for NO orders; ``complement()`` converts between the two (1 − p).
    """

    units: int

    def __post_init__(self) -> None:
        if type(self.units) is not int:
            raise InvalidPriceError(f"price units must be an int, not {type(self.units).__name__}")
        if not 0 < self.units < PRICE_SCALE:
            raise InvalidPriceError(
                f"price {_format_units(self.units, 4)} is outside (0, 1): a binary contract trades strictly "
                "between $0 and $1"
            )

    @classmethod
    def from_decimal(cls, value: Decimal | str | int) -> Price:
        """Build from dollars, exactly: ``Price.from_decimal(Decimal("0.56"))``. Finer than $0.0001 raises."""
        return cls(_exact_units(value, PRICE_SCALE, "price", InvalidPriceError))

    @classmethod
    def from_dollars(cls, text: str) -> Price:
        """Parse a Kalshi dollar string such as ``"0.5600"`` (2 to 4 decimals on the wire)."""
        return cls.from_decimal(text)

    def to_decimal(self) -> Decimal:
        """The price in dollars, exactly (4 decimal places)."""
        return Decimal(self.units).scaleb(-4)

    def to_dollars(self) -> str:
        """Kalshi's wire form: a dollar string with exactly 4 decimals, e.g. ``"0.5600"``."""
        return _format_units(self.units, 4)

    def complement(self) -> Price:
        """``1 − p``: the NO price of a YES price and vice versa. A YES ask at p is a NO bid at 1 − p."""
        return Price(PRICE_SCALE - self.units)

    def __str__(self) -> str:
        return self.to_dollars()

    def __repr__(self) -> str:
        return f"Price({self.to_dollars()})"


@dataclass(frozen=True, slots=True, order=True)
class Quantity:
    """A non-negative number of contracts in units of 1/100 contract. ``Quantity(1050)`` is 10.5 contracts.

    Signed amounts (net inventory, book deltas) are plain ``int`` units where they occur; a Quantity
    is always a count and can never go negative.
    """

    units: int

    def __post_init__(self) -> None:
        if type(self.units) is not int:
            raise InvalidQuantityError(f"quantity units must be an int, not {type(self.units).__name__}")
        if self.units < 0:
            raise InvalidQuantityError(f"quantity {_format_units(self.units, 2)} is negative")

    @classmethod
    def from_decimal(cls, value: Decimal | str | int) -> Quantity:
        """Build from contracts, exactly: ``Quantity.from_decimal("10.5")``. Finer than 0.01 raises."""
        return cls(_exact_units(value, QTY_SCALE, "quantity", InvalidQuantityError))

    @classmethod
    def contracts(cls, count: int) -> Quantity:
        """A whole number of contracts."""
        return cls(count * QTY_SCALE)

    @classmethod
    def from_fp(cls, text: str) -> Quantity:
        """Parse a Kalshi ``*_fp`` count string such as ``"10.00"``."""
        return cls.from_decimal(text)

    def to_decimal(self) -> Decimal:
        """The quantity in contracts, exactly (2 decimal places)."""
        return Decimal(self.units).scaleb(-2)

    def to_fp(self) -> str:
        """Kalshi's wire form: a count string with exactly 2 decimals, e.g. ``"10.00"``."""
        return _format_units(self.units, 2)

    @property
    def is_zero(self) -> bool:
        return self.units == 0

    def __add__(self, other: Quantity) -> Quantity:
        return Quantity(self.units + other.units)

    def __sub__(self, other: Quantity) -> Quantity:
        """Difference of two quantities; raises ``InvalidQuantityError`` if it would be negative."""
        return Quantity(self.units - other.units)

    def __str__(self) -> str:
        return self.to_fp()

    def __repr__(self) -> str:
        return f"Quantity({self.to_fp()})"


def dollars_to_units(value: Decimal | str | int) -> int:
    """Exact dollars → $0.0001 units for any amount (not only prices); finer than $0.0001 raises."""
    return _exact_units(value, PRICE_SCALE, "amount", InvalidPriceError)


def units_to_dollars(units: int) -> Decimal:
    """$0.0001 units → dollars as an exact Decimal."""
    return Decimal(units).scaleb(-4)


ZERO_QUANTITY: Final = Quantity(0)
