from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mm.specs.canonical import canonical_json, digest
from mm.specs.types import MAX_EXPONENT, normalize_decimal


def test_canonical_json_is_sorted_and_compact() -> None:
    assert canonical_json({"b": 1, "a": [True, None, "x"]}) == b'{"a":[true,null,"x"],"b":1}'


def test_decimals_are_normalised_strings_and_floats_refused() -> None:
    assert canonical_json({"x": Decimal("0.10")}) == b'{"x":"0.1"}'
    with pytest.raises(TypeError, match="floats"):
        canonical_json({"x": [0.1]})


def test_digest_ignores_key_order_but_not_values() -> None:
    assert digest({"a": 1, "b": 2}) == digest({"b": 2, "a": 1})
    assert digest({"a": 1}) != digest({"a": 2})
    assert digest({}).startswith("sha256:") and len(digest({})) == len("sha256:") + 64


@given(st.decimals(allow_nan=False, allow_infinity=False))
def test_normalisation_keeps_the_value_and_is_idempotent(value: Decimal) -> None:
    if not value.is_zero() and abs(value.adjusted()) > MAX_EXPONENT:
        with pytest.raises(ValueError, match="out of range"):
            normalize_decimal(value)
        return
    normal = normalize_decimal(value)
    assert normal == value
    assert normalize_decimal(normal) == normal
    assert str(normal) == str(normalize_decimal(Decimal(str(normal))))


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0.10", "0.1"), ("100.00", "100"), ("-0", "0"), ("1E+2", "100"), ("1.0E-7", "1E-7"), ("-2.50", "-2.5")],
)
def test_normal_forms(text: str, expected: str) -> None:
    assert str(normalize_decimal(Decimal(text))) == expected
