"""Kalshi trading fees (kalshi-api.md §10), exact: integer/``Fraction`` arithmetic, never floats.

This is the one fee implementation: the simulator (``mm.sim.fees`` re-exports it) and the ledger
(``mm.state.ledger``) both charge through it, so a paper or backtest run and the simulator agree to the
$0.0001.

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

:class:`FeeSchedule` is the same formula with the rate fixed once (a series' fee type, multiplier and
rounding): it keeps the rate as an integer numerator over a common denominator, so charging a fill on the
hot path is a few integer operations instead of ``Fraction`` arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from math import lcm
from typing import Final, Literal

from mm.domain.price import PRICE_SCALE, QTY_SCALE

__all__ = [
    "FEE_TYPES",
    "FeeRounding",
    "FeeSchedule",
    "OrderFeeAccumulator",
    "exact_fee",
    "fee_rate",
    "fee_units",
]

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


def fee_rate(*, taker: bool, fee_type: str, multiplier: Decimal) -> Fraction:
    """The rate in front of ``C · P(1 − P)`` for one fill: ``0.07 · M`` for a taker, by ``fee_type`` for a maker."""
    if fee_type not in _MAKER_RATES:
        raise ValueError(f"unknown fee_type {fee_type!r}; known: {', '.join(sorted(FEE_TYPES))}")
    m = Fraction(multiplier)
    if m < 0:
        raise ValueError(f"fee multiplier must be non-negative, got {multiplier}")
    if taker:
        return _TAKER_RATE * m
    if fee_type == "flat":
        return _MAKER_RATES["flat"]  # the reference's flat formula carries no multiplier
    return _MAKER_RATES[fee_type] * m


def _check_fill(count_units: int, price_units: int) -> None:
    if count_units < 0:
        raise ValueError(f"fill count must be non-negative, got {count_units} (1/100 contract)")
    if not 0 <= price_units <= PRICE_SCALE:
        raise ValueError(f"price {price_units} ($0.0001 units) is outside [0, {PRICE_SCALE}]")


def exact_fee(count_units: int, price_units: int, *, taker: bool, fee_type: str, multiplier: Decimal) -> Fraction:
    """The unrounded fee of one fill, in $0.0001 units, as an exact fraction."""
    _check_fill(count_units, price_units)
    rate = fee_rate(taker=taker, fee_type=fee_type, multiplier=multiplier)
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


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    """One market's fee terms: the series' (or the event override's) ``fee_type`` and ``multiplier``, and the
    rounding rule. Validated on construction.

    The taker and maker rates are held as integer numerators over one common denominator, so that the exact
    fee of a fill is ``numerator · count · P · (PRICE_SCALE − P) / denominator`` $0.0001 units — the same
    value :func:`exact_fee` returns, in integers. Per-order accumulation sums these numerators (exact), then
    ceils the total once.
    """

    fee_type: str = "quadratic"
    multiplier: Decimal = Decimal(1)
    rounding: FeeRounding = "per_fill_centicent"
    taker_numerator: int = field(init=False, repr=False, compare=False)
    maker_numerator: int = field(init=False, repr=False, compare=False)
    denominator: int = field(init=False, repr=False, compare=False)
    """Exact fee ($0.0001) = numerator · count · P · (PRICE_SCALE − P) / denominator."""
    step: int = field(init=False, repr=False, compare=False)
    """Rounding step, $0.0001 units: 1 (``per_fill_centicent``) or 100 (``per_order_cent``)."""

    def __post_init__(self) -> None:
        if not isinstance(self.multiplier, Decimal):
            raise TypeError(f"fee multiplier must be a Decimal, not {type(self.multiplier).__name__}")
        taker = fee_rate(taker=True, fee_type=self.fee_type, multiplier=self.multiplier)
        maker = fee_rate(taker=False, fee_type=self.fee_type, multiplier=self.multiplier)
        common = lcm(taker.denominator, maker.denominator)
        object.__setattr__(self, "taker_numerator", taker.numerator * (common // taker.denominator))
        object.__setattr__(self, "maker_numerator", maker.numerator * (common // maker.denominator))
        object.__setattr__(self, "denominator", common * _SCALE_DENOMINATOR)
        object.__setattr__(self, "step", _step(self.rounding))

    def exact_numerator(self, count_units: int, price_units: int, taker: bool) -> int:
        """The fill's exact fee times :attr:`denominator` ($0.0001 units). Inputs are trusted (hot path):
        ``count_units`` ≥ 0 in 1/100 contract, ``price_units`` in [0, PRICE_SCALE]."""
        rate = self.taker_numerator if taker else self.maker_numerator
        return rate * count_units * price_units * (PRICE_SCALE - price_units)

    def ceil_units(self, numerator: int) -> int:
        """An exact fee given as a numerator over :attr:`denominator`, rounded up to :attr:`step` ($0.0001)."""
        units = -(-numerator // self.denominator)
        step = self.step
        return units if step == 1 else -(-units // step) * step

    def fill_fee_units(self, count_units: int, price_units: int, *, taker: bool) -> int:
        """The fee of one fill seen alone, $0.0001 units (equal to :func:`fee_units` with these terms)."""
        _check_fill(count_units, price_units)
        return self.ceil_units(self.exact_numerator(count_units, price_units, taker))


class OrderFeeAccumulator:
    """The fees of one order across its fills, charged incrementally.

    ``add`` returns the fee ($0.0001 units) to charge for the new fill. Under ``per_order_cent`` the running
    total charged always equals the cumulative exact fee rounded up to the next cent; under
    ``per_fill_centicent`` each fill is rounded up to $0.0001 on its own. An order that is taker on its
    first execution and maker afterwards can use one accumulator (``taker`` is per fill).
    """

    __slots__ = ("_exact", "_schedule", "charged")

    def __init__(self, *, fee_type: str, multiplier: Decimal, rounding: FeeRounding) -> None:
        self._schedule = FeeSchedule(fee_type, multiplier, rounding)  # validates up front
        self._exact = 0
        """Cumulative exact fee as a numerator over the schedule's denominator."""
        self.charged = 0
        """Total charged so far, $0.0001 units."""

    def add(self, count_units: int, price_units: int, *, taker: bool) -> int:
        """Record a fill (1/100 contract at $0.0001 price); return the fee to charge for it ($0.0001)."""
        _check_fill(count_units, price_units)
        schedule = self._schedule
        numerator = schedule.exact_numerator(count_units, price_units, taker)
        if schedule.step == 1:
            charge = schedule.ceil_units(numerator)
        else:
            self._exact += numerator
            charge = schedule.ceil_units(self._exact) - self.charged
        self.charged += charge
        return charge
