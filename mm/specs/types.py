"""Field types and the base model shared by every resource kind.

Numbers in specs are exact ``Decimal`` values: the YAML loader reads them from their text, and the
types here refuse floats outright (a float can only arrive through a careless caller, and a float that
touches money is a bug). Decimals are normalised on validation (``0.10`` → ``0.1``, ``100.0`` → ``100``)
so the stored, canonical form of a spec — and its digest, and ``diff`` — never distinguishes two ways
of writing the same number.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field


def _refuse_float(value: Any) -> Any:
    if isinstance(value, float):
        raise ValueError("numbers must be exact decimals; a binary float was given (write it as text)")
    if isinstance(value, bool):
        raise ValueError("expected a number, got a boolean")
    return value


MAX_EXPONENT = 100
"""Spec numbers are bounded to 1e±100: far beyond any real setting, and no huge-exponent surprises."""


def normalize_decimal(value: Decimal) -> Decimal:
    """``0.10`` → ``0.1``, ``100.0`` → ``100``, ``-0`` → ``0``; refuses NaN and infinities."""
    if not value.is_finite():
        raise ValueError("must be a finite number")
    if value.is_zero():
        return Decimal(0)
    if abs(value.adjusted()) > MAX_EXPONENT:
        raise ValueError(f"number out of range (beyond 1e±{MAX_EXPONENT})")
    # Strip trailing fractional zeros by hand: Decimal.normalize() would round to the context precision.
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # finite, checked above
    if exponent >= 0:
        return Decimal(int(value))  # exact for any size; no exponent form ("1E+2" -> "100")
    kept = list(digits)
    while exponent < 0 and len(kept) > 1 and kept[-1] == 0:
        kept.pop()
        exponent += 1
    return Decimal((sign, tuple(kept), exponent))


ExactDecimal = Annotated[Decimal, BeforeValidator(_refuse_float), AfterValidator(normalize_decimal)]
"""A Decimal read exactly from YAML/JSON text (number or string), normalised."""

PositiveDecimal = Annotated[ExactDecimal, Field(gt=0)]
NonNegativeDecimal = Annotated[ExactDecimal, Field(ge=0)]


def _in_interval(low_open: bool, high_open: bool) -> Any:
    text = f"{'(' if low_open else '['}0, 1{')' if high_open else ']'}"

    def check(value: Decimal) -> Decimal:
        if value < 0 or value > 1 or (low_open and value == 0) or (high_open and value == 1):
            raise ValueError(f"must be in {text}")
        return value

    return AfterValidator(check)


Fraction = Annotated[
    ExactDecimal, _in_interval(True, False), Field(json_schema_extra={"exclusiveMinimum": 0, "maximum": 1})
]
"""A ratio in (0, 1]."""
OpenUnit = Annotated[
    ExactDecimal, _in_interval(True, True), Field(json_schema_extra={"exclusiveMinimum": 0, "exclusiveMaximum": 1})
]
"""A value strictly inside (0, 1): a probability, a binary-contract price, a decay factor."""
Dollars = Annotated[ExactDecimal, Field(ge=0, multiple_of=Decimal("0.0001"))]
"""A non-negative dollar amount on the $0.0001 grid."""
PositiveDollars = Annotated[ExactDecimal, Field(gt=0, multiple_of=Decimal("0.0001"))]
Contracts = Annotated[ExactDecimal, Field(gt=0, multiple_of=Decimal("0.01"))]
"""A positive number of contracts, in steps of 0.01 (the finest Kalshi count)."""
NonNegativeContracts = Annotated[ExactDecimal, Field(ge=0, multiple_of=Decimal("0.01"))]
Seconds = Annotated[ExactDecimal, Field(gt=0)]
Minutes = Annotated[ExactDecimal, Field(ge=0)]
Multiplier = Annotated[ExactDecimal, Field(ge=1)]
Int = Annotated[int, BeforeValidator(_refuse_float)]
PositiveInt = Annotated[Int, Field(gt=0)]
NonNegativeInt = Annotated[Int, Field(ge=0)]

NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$")
Name = Annotated[
    str,
    Field(
        min_length=1,
        max_length=63,
        pattern=NAME_RE.pattern,
        description="A resource name: lower-case letters, digits, '-' and '.', at most 63 characters.",
    ),
]
"""A resource name, as in Kubernetes (DNS-1123 label with dots)."""

EnvVarName = Annotated[
    str,
    Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=128, description="The NAME of an environment variable."),
]
"""The name of an environment variable holding a secret (never the secret itself)."""

Ticker = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$",
        max_length=128,
        description="A venue market identifier, e.g. KXBTCD-26AUG1317-T73249.99.",
    ),
]

ComponentParams = dict[str, Any]


class SpecModel(BaseModel):
    """Base of every spec model: unknown fields are errors, values are immutable once admitted."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, populate_by_name=True)


FieldProblem = tuple[tuple[str | int, ...], str]
"""A business-rule problem: (path relative to ``spec``, message)."""
