"""Kalshi trading fees (kalshi-api.md §10), exact: integer/``Fraction`` arithmetic, never floats.

Units: counts ints of 1/100 contract, prices ints of $0.0001 (YES or NO price: ``P(1 − P)`` is symmetric),
fees ints of $0.0001. With C = contracts, P = price in dollars and M = the fee multiplier:

* taker: ``0.07 · M · C · P(1 − P)`` (at most 1.75¢ per contract, at P = 0.5);
* maker by ``fee_type``: ``quadratic`` 0; ``quadratic_with_maker_fees`` ``0.0175 · M · C · P(1 − P)``;
  ``quadratic_with_combo_maker_fees`` half the taker fee; ``flat`` ``0.035 · C · P(1 − P)`` (no M, as the
  reference states it).

Rounding — our reading of the two rules §10 lists:

* ``per_fill_centicent`` (the current engine): each fill's exact fee is rounded up to $0.0001. The
  balance-level flooring of ``revenue − fee`` and its rounding-fee refund are the exchange's business.
* ``per_order_cent`` (the schedule: "ceil to the next cent per order execution"): the fee of an order
  is the exact fee of all its fills, rounded up to the next cent. ``fee_units`` applies the cent ceiling
  to one fill seen alone (an order that executes in one fill); :class:`OrderFeeAccumulator` charges a
  multi-fill order incrementally so that what it has paid after every fill is exactly the cent ceiling
  of its cumulative exact fee (10 contracts @ $0.50 filled 3 + 7 pay $0.06 then $0.12, $0.18 in all,
  where ceiling each fill alone would give $0.06 + $0.13).
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Final, Literal

from mm.domain.price import PRICE_SCALE, QTY_SCALE

__all__ = ["FEE_TYPES", "FeeRounding", "OrderFeeAccumulator", "exact_fee", "fee_units"]

FeeRounding = Literal["per_order_cent", "per_fill_centicent"]

_TAKER_RATE: Final = Fraction(7, 100)
_MAKER_RATES: Final[dict[str, Fraction]] = {
    "quadratic": Fraction(0),
    "quadratic_with_maker_fees": Fraction(175, 10_000),
    "quadratic_with_combo_maker_fees": _TAKER_RATE / 2,
    "flat": Fraction(35, 1000),
}
FEE_TYPES: Final = frozenset(_MAKER_RATES)
"""The ``fee_type`` values Kalshi series and events use."""

_CENT: Final = PRICE_SCALE // 100  # $0.01 in $0.0001 units
# $0.0001 units: rate·M·(count/QTY_SCALE)·(price/PRICE_SCALE)·((PRICE_SCALE − price)/PRICE_SCALE)·PRICE_SCALE
_SCALE_DENOMINATOR: Final = QTY_SCALE * PRICE_SCALE


def exact_fee(count_units: int, price_units: int, *, taker: bool, fee_type: str, multiplier: Decimal) -> Fraction:
    """The unrounded fee of one fill, in $0.0001 units, as an exact fraction."""
    if count_units < 0:
        raise ValueError(f"fill count must be non-negative, got {count_units} (1/100 contract)")
    if not 0 <= price_units <= PRICE_SCALE:
        raise ValueError(f"price {price_units} ($0.0001 units) is outside [0, {PRICE_SCALE}]")
    if fee_type not in _MAKER_RATES:
        raise ValueError(f"unknown fee_type {fee_type!r}; known: {', '.join(sorted(FEE_TYPES))}")
    m = Fraction(multiplier)
    if m < 0:
        raise ValueError(f"fee multiplier must be non-negative, got {multiplier}")
    if taker:
        rate = _TAKER_RATE * m
    elif fee_type == "flat":
        rate = _MAKER_RATES["flat"]  # the reference's flat formula carries no multiplier
    else:
        rate = _MAKER_RATES[fee_type] * m
    return rate * count_units * price_units * (PRICE_SCALE - price_units) / _SCALE_DENOMINATOR


def _ceil_to(value: Fraction, step: int) -> int:
    """``value`` rounded up to a multiple of ``step`` (both in $0.0001 units)."""
    units = -(-value.numerator // value.denominator)
    return -(-units // step) * step


def fee_units(
    count_units: int,
    price_units: int,
    *,
    taker: bool,
    fee_type: str,
    multiplier: Decimal,
    rounding: FeeRounding,
) -> int:
    """Fee of one fill in $0.0001 units: ``per_fill_centicent`` ceils to $0.0001, ``per_order_cent`` to $0.01.

    ``count_units`` is in 1/100 contract and ``price_units`` in $0.0001 (the YES or the NO price: same fee).
    """
    fee = exact_fee(count_units, price_units, taker=taker, fee_type=fee_type, multiplier=multiplier)
    return _ceil_to(fee, _step(rounding))


def _step(rounding: str) -> int:
    if rounding == "per_fill_centicent":
        return 1
    if rounding == "per_order_cent":
        return _CENT
    raise ValueError(f"unknown fee rounding {rounding!r}; use 'per_order_cent' or 'per_fill_centicent'")


class OrderFeeAccumulator:
    """The fees of one order across its fills, charged incrementally.

    ``add`` returns the fee ($0.0001 units) to charge for the new fill. Under ``per_order_cent`` the running
    total charged always equals the cumulative exact fee rounded up to the next cent; under
    ``per_fill_centicent`` each fill is rounded up to $0.0001 on its own. An order that is taker on its
    first execution and maker afterwards can use one accumulator (``taker`` is per fill).
    """

    __slots__ = ("_exact", "_fee_type", "_multiplier", "_step", "charged")

    def __init__(self, *, fee_type: str, multiplier: Decimal, rounding: FeeRounding) -> None:
        self._step = _step(rounding)
        exact_fee(0, 0, taker=True, fee_type=fee_type, multiplier=multiplier)  # validate up front
        self._fee_type = fee_type
        self._multiplier = multiplier
        self._exact = Fraction(0)
        self.charged = 0
        """Total charged so far, $0.0001 units."""

    def add(self, count_units: int, price_units: int, *, taker: bool) -> int:
        """Record a fill (1/100 contract at $0.0001 price); return the fee to charge for it ($0.0001)."""
        fee = exact_fee(count_units, price_units, taker=taker, fee_type=self._fee_type, multiplier=self._multiplier)
        if self._step == 1:
            charge = _ceil_to(fee, 1)
        else:
            self._exact += fee
            charge = _ceil_to(self._exact, self._step) - self.charged
        self.charged += charge
        return charge
