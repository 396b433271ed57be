"""The custom-alert condition language (pure): what it accepts, what it refuses (calls, attributes, imports,
anything beyond names, numbers, + - * /, comparisons, and/or), how it evaluates (division by zero → false),
windows, and the windowing of monotonic samples."""

from __future__ import annotations

import pytest

from mm.alerting.rules import ConditionError, MetricWindow, parse_condition, parse_window

S = 1_000_000


def test_the_requirement_example_parses_and_evaluates() -> None:
    condition = parse_condition("mm_fills_total / mm_orders_total < 0.01")
    assert condition.names == {"mm_fills_total", "mm_orders_total"}
    assert condition.evaluate({"mm_fills_total": 0, "mm_orders_total": 200})
    assert condition.evaluate({"mm_fills_total": 1, "mm_orders_total": 200})
    assert not condition.evaluate({"mm_fills_total": 2, "mm_orders_total": 200})


def test_division_by_zero_makes_the_whole_condition_false() -> None:
    assert not parse_condition("a / b < 0.01").evaluate({"a": 0, "b": 0})
    assert not parse_condition("a / b < 0.01 or c > 1").evaluate({"a": 0, "b": 0, "c": 5})
    assert parse_condition("c > 1 or a / b < 0.01").evaluate({"a": 0, "b": 0, "c": 5})  # or short-circuits


@pytest.mark.parametrize(
    ("text", "values", "expected"),
    [
        ("a + b * 2 > 10", {"a": 1, "b": 5}, True),
        ("(a + b) * 2 > 10", {"a": 1, "b": 4}, False),
        ("a - b >= -1", {"a": 1, "b": 2}, True),
        ("-a < 0", {"a": 3}, True),
        ("0 < a < 5", {"a": 3}, True),
        ("0 < a < 5", {"a": 7}, False),
        ("a == 1 and b != 2", {"a": 1, "b": 3}, True),
        ("a == 1 and b != 2", {"a": 1, "b": 2}, False),
        ("a > 1 or b > 1", {"a": 0, "b": 2}, True),
        ("a <= 1e-3", {"a": 0.0005}, True),
        (
            "mm_order_latency_seconds_sum / mm_order_latency_seconds_count > 0.5",
            {"mm_order_latency_seconds_sum": 3.0, "mm_order_latency_seconds_count": 4},
            True,
        ),
    ],
)
def test_arithmetic_comparisons_and_boolean_operators(text: str, values: dict[str, float], expected: bool) -> None:
    assert parse_condition(text).evaluate(values) is expected


def test_nan_compares_false() -> None:
    assert not parse_condition("a > 0").evaluate({"a": float("nan")})
    assert not parse_condition("a <= 0").evaluate({"a": float("nan")})


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("__import__('os').system('true') > 0", "function call"),
        ("open('x') > 0", "function call"),
        ("a.b > 0", "attribute access"),
        ("a.__class__ > 0", "attribute access"),
        ("a[0] > 1", "subscripting"),
        ("import os", "not a valid expression"),
        ("a > 1; b", "not a valid expression"),
        ("a ** 2 > 1", "the operator Pow"),
        ("a % 2 > 1", "the operator Mod"),
        ("a // 2 > 1", "the operator FloorDiv"),
        ("a is b", "the operator Is"),
        ("a in b", "the operator In"),
        ("not a > 1", "the operator not"),
        ("~a > 1", "the operator Invert"),
        ("a > 'x'", "the constant 'x'"),
        ("a > True", "the constant True"),
        ("a > None", "the constant None"),
        ("(lambda: 1)() > 0", "function call"),
        ("[x for x in a] > 0", "ListComp"),
        ("(a := 1) > 0", "an assignment"),
        ("a if b else c", "a conditional expression"),
        ("mm_fills_total", "is a number, not a condition"),
        ("a + 1", "is a number, not a condition"),
        ("(a > 1) + 1 > 0", "a comparison used as a number"),
        ("", "empty"),
    ],
)
def test_everything_else_is_refused(text: str, fragment: str) -> None:
    with pytest.raises(ConditionError) as caught:
        parse_condition(text)
    assert fragment in str(caught.value)


def test_an_overlong_condition_is_refused() -> None:
    with pytest.raises(ConditionError, match="longer than"):
        parse_condition("a > " + "1 + " * 400 + "1")


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("5m", 300), ("1h", 3600), ("2d", 172800)])
def test_windows(text: str, seconds: int) -> None:
    assert parse_window(text) == seconds


@pytest.mark.parametrize("text", ["0h", "1w", "h", "1.5h", "-1h", ""])
def test_bad_windows(text: str) -> None:
    with pytest.raises(ConditionError, match="window"):
        parse_window(text)


def test_monotonic_samples_are_their_increase_over_the_window_and_gauges_their_value() -> None:
    window = MetricWindow(600 * S, frozenset({"orders_total"}))
    assert window.add(0, {"orders_total": 100, "inventory": 5}) == {"orders_total": 0, "inventory": 5}
    # Shorter history than the window: the increase since the first snapshot.
    assert window.add(300 * S, {"orders_total": 150, "inventory": 7}) == {"orders_total": 50, "inventory": 7}
    assert window.add(600 * S, {"orders_total": 170, "inventory": 2}) == {"orders_total": 70, "inventory": 2}
    # A full window later the baseline is the snapshot at 300 s (the newest at least 600 s old).
    assert window.add(900 * S, {"orders_total": 180, "inventory": 2})["orders_total"] == 30
    assert window.span_us == 600 * S


def test_a_counter_reset_counts_from_zero() -> None:
    window = MetricWindow(600 * S, frozenset({"c"}))
    window.add(0, {"c": 100})
    assert window.add(10 * S, {"c": 4}) == {"c": 4}
