"""Wire formatting and parsing helpers (kalshi-api.md §3): one place for every number and cursor."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mm.sim.exchange import SimApiError
from mm.sim.wire import (
    count_str,
    error_body,
    micros_cents,
    micros_str,
    paginate,
    parse_count,
    parse_price,
    price_str,
    rfc3339,
)


def test_prices_counts_and_money() -> None:
    assert price_str(5600) == "0.5600" and price_str(1) == "0.0001" and price_str(10_000) == "1.0000"
    assert count_str(1000) == "10.00" and count_str(5) == "0.05" and count_str(-250) == "-2.50"
    assert micros_str(12_340_000) == "12.3400"  # exact to $0.0001: 4 dp
    assert micros_str(150) == "0.000150" and micros_str(-1) == "-0.000001"  # finer: 6 dp
    assert micros_cents(99_996_700) == 9999 and micros_cents(-1) == -1  # floored


def test_rfc3339_applies_the_skew() -> None:
    assert rfc3339(0) == "1970-01-01T00:00:00.000000Z"
    assert rfc3339(0, skew_ms=-1500) == "1969-12-31T23:59:58.500000Z"


@pytest.mark.parametrize(("text", "units"), [("0.56", 5600), ("0.5600", 5600), (".5", 5000), ("0.0001", 1)])
def test_parse_price(text: str, units: int) -> None:
    assert parse_price(text) == units


@pytest.mark.parametrize("bad", ["0.56001", "1", "0", "-0.5", "0.5e1", " 0.5", "", None, 0.5, 1])
def test_parse_price_refuses(bad: object) -> None:
    with pytest.raises(SimApiError) as info:
        parse_price(bad)
    assert (info.value.status, info.value.code) == (400, "invalid_price")


@pytest.mark.parametrize(("value", "units"), [("10", 1000), ("3.5", 350), ("0.01", 1), (7, 700)])
def test_parse_count(value: object, units: int) -> None:
    assert parse_count(value) == units


@pytest.mark.parametrize("bad", ["1.001", "0", "-1", "1e2", True, None, 1.5, -2])
def test_parse_count_refuses(bad: object) -> None:
    with pytest.raises(SimApiError) as info:
        parse_count(bad)
    assert info.value.code == "invalid_order_size"


@given(st.integers(1, 9999))
def test_price_round_trip(units: int) -> None:
    assert parse_price(price_str(units)) == units


@given(st.integers(1, 10**9))
def test_count_round_trip(units: int) -> None:
    assert parse_count(count_str(units)) == units


def test_error_body_is_nested_with_top_level_copies() -> None:
    assert error_body("not_found", "no such order") == {
        "error": {"code": "not_found", "message": "no such order", "details": ""},
        "code": "not_found",
        "message": "no such order",
        "details": "",
    }


@given(st.lists(st.integers(0, 50), unique=True), st.integers(1, 7))
def test_pagination_visits_every_item_once(values: list[int], limit: int) -> None:
    items = sorted(values)
    seen: list[int] = []
    cursor: str | None = None
    for _ in range(len(items) + 2):
        page, cursor = paginate(items, lambda v: (v,), limit, cursor)
        assert len(page) <= limit
        seen += page
        if not cursor:
            break
    assert seen == items


def test_a_cursor_survives_items_added_before_it() -> None:
    page, cursor = paginate([4, 3, 2, 1], lambda v: (-v,), 2, None)
    assert page == [4, 3]
    rest, last = paginate([5, 4, 3, 2, 1], lambda v: (-v,), 2, cursor)  # 5 arrived meanwhile (newest first)
    assert rest == [2, 1] and last == ""


def test_a_garbage_cursor_is_400() -> None:
    with pytest.raises(SimApiError) as info:
        paginate([1], lambda v: (v,), 1, "not-base64-json")
    assert info.value.code == "invalid_parameters"
