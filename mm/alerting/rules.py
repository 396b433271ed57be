"""Custom alert conditions (``alerting.custom_alerts``): a safe expression language over metric values. Pure.

Syntax — a Python-like boolean expression, parsed with :mod:`ast` and never ``eval``'d. Allowed:

* metric names (``mm_fills_total``; ``[A-Za-z_][A-Za-z0-9_:]*``) and numbers (``0.01``, ``5``, ``1e-3``);
* arithmetic ``+ - * /`` and unary minus, parentheses;
* comparisons ``< <= > >= == !=`` (chains like ``0 < x < 5`` too);
* ``and`` / ``or`` between comparisons.

The whole condition must be a comparison or an ``and``/``or`` of comparisons: ``mm_fills_total`` alone or
``a and b`` over plain numbers is refused. Everything else — calls, attributes, subscripts, strings, ``not``,
``**``, ``%``, ``//``, lambdas, comprehensions, ``import`` (a statement, so not even an expression) — is refused
with a :class:`ConditionError` saying what was found where.

Evaluation: names take the values of a snapshot (floats). **A division by zero anywhere makes the whole
condition false** (``mm_fills_total / mm_orders_total < 0.01`` with no orders yet raises no alert). NaN
compares false, as in IEEE arithmetic. :class:`MetricWindow` turns successive snapshots into the values a
windowed rule sees (see its docstring).
"""

from __future__ import annotations

import ast
import operator
import re
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from mm.domain.errors import MmError

__all__ = ["Condition", "ConditionError", "MetricWindow", "parse_condition", "parse_window"]

MAX_CONDITION_LENGTH: Final = 1000
"""Characters; a condition longer than this is refused (bounds the parser's work and recursion)."""

_WINDOW = re.compile(r"^([0-9]+)(s|m|h|d)$")
_WINDOW_UNIT_S: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}

_ARITH: Final[Mapping[type[ast.operator], Callable[[float, float], float]]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}
_COMPARE: Final[Mapping[type[ast.cmpop], Callable[[float, float], bool]]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}


class ConditionError(MmError, ValueError):
    """A custom alert condition that cannot be parsed, or uses something the language does not allow."""


class _DivisionByZeroError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Condition:
    """A parsed condition: its text, the metric names it reads, and its checked syntax tree."""

    text: str
    names: frozenset[str]
    tree: ast.expr

    def evaluate(self, values: Mapping[str, float]) -> bool:
        """True when the condition holds for ``values`` (every name in :attr:`names` must be present).

        A division by zero makes the result False (see the module docstring)."""
        try:
            return _truth(self.tree, values)
        except _DivisionByZeroError:
            return False


def parse_window(text: str) -> int:
    """``"90s"``, ``"5m"``, ``"1h"``, ``"2d"`` → seconds (int, > 0)."""
    m = _WINDOW.match(text.strip())
    if m is None or int(m.group(1)) == 0:
        raise ConditionError(f"window {text!r}: use a positive whole number with s, m, h or d (e.g. 1h)")
    return int(m.group(1)) * _WINDOW_UNIT_S[m.group(2)]


def parse_condition(text: str) -> Condition:
    """Parse and check ``text``; raises :class:`ConditionError` naming what is not allowed."""
    if len(text) > MAX_CONDITION_LENGTH:
        raise ConditionError(f"condition is longer than {MAX_CONDITION_LENGTH} characters")
    if not text.strip():
        raise ConditionError("condition is empty")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ConditionError(f"condition {text!r} is not a valid expression: {exc.msg} (column {exc.offset})") from None
    names: set[str] = set()
    _check_boolean(tree.body, names, text)
    return Condition(text=text, names=frozenset(names), tree=tree.body)


def _where(node: ast.AST, text: str) -> str:
    col = getattr(node, "col_offset", None)
    return f" at column {col + 1}" if isinstance(col, int) else ""


def _refuse(node: ast.AST, text: str, what: str | None = None) -> ConditionError:
    found = what or type(node).__name__
    snippet = ast.get_source_segment(text.strip(), node) or found
    return ConditionError(
        f"condition {text!r}: {found} ({snippet!r}){_where(node, text)} is not allowed; use metric names, numbers, "
        "+ - * /, comparisons, and/or, parentheses"
    )


def _check_boolean(node: ast.expr, names: set[str], text: str) -> None:
    if isinstance(node, ast.BoolOp):
        for value in node.values:
            _check_boolean(value, names, text)
        return
    if isinstance(node, ast.Compare):
        for op in node.ops:
            if type(op) not in _COMPARE:
                raise _refuse(op, text, f"the operator {type(op).__name__}")
        for operand in (node.left, *node.comparators):
            _check_number(operand, names, text)
        return
    if isinstance(node, ast.Name | ast.Constant | ast.BinOp) or (
        isinstance(node, ast.UnaryOp) and not isinstance(node.op, ast.Not)
    ):
        _check_number(node, names, text)  # a clearer error for a disallowed node inside it, if any
        raise ConditionError(
            f"condition {text!r}: {ast.get_source_segment(text.strip(), node)!r} is a number, not a condition; "
            "compare it (e.g. ... < 0.01)"
        )
    raise _refuse(node, text, _describe(node))


def _check_number(node: ast.expr, names: set[str], text: str) -> None:
    if isinstance(node, ast.Name):
        names.add(node.id)
    elif isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise _refuse(node, text, f"the constant {node.value!r}")
    elif isinstance(node, ast.BinOp):
        if type(node.op) not in _ARITH:
            raise _refuse(node, text, f"the operator {type(node.op).__name__}")
        _check_number(node.left, names, text)
        _check_number(node.right, names, text)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        _check_number(node.operand, names, text)
    elif isinstance(node, ast.Compare | ast.BoolOp):
        raise _refuse(node, text, "a comparison used as a number")
    else:
        raise _refuse(node, text, _describe(node))


def _describe(node: ast.AST) -> str:
    if isinstance(node, ast.UnaryOp):
        return "the operator " + ("not" if isinstance(node.op, ast.Not) else type(node.op).__name__)
    return {
        ast.Call: "a function call",
        ast.Attribute: "attribute access",
        ast.Subscript: "subscripting",
        ast.Lambda: "a lambda",
        ast.IfExp: "a conditional expression",
        ast.NamedExpr: "an assignment",
    }.get(type(node), type(node).__name__)


def _number(node: ast.expr, values: Mapping[str, float]) -> float:
    if isinstance(node, ast.Name):
        return float(values[node.id])
    if isinstance(node, ast.Constant):
        assert isinstance(node.value, int | float)  # checked at parse time
        return float(node.value)
    if isinstance(node, ast.UnaryOp):
        value = _number(node.operand, values)
        return -value if isinstance(node.op, ast.USub) else value
    assert isinstance(node, ast.BinOp)  # checked at parse time
    left, right = _number(node.left, values), _number(node.right, values)
    if isinstance(node.op, ast.Div) and right == 0:
        raise _DivisionByZeroError
    return _ARITH[type(node.op)](left, right)


def _truth(node: ast.expr, values: Mapping[str, float]) -> bool:
    if isinstance(node, ast.BoolOp):
        if isinstance(node.op, ast.And):
            return all(_truth(v, values) for v in node.values)
        return any(_truth(v, values) for v in node.values)
    assert isinstance(node, ast.Compare)  # checked at parse time
    left = _number(node.left, values)
    for op, comparator in zip(node.ops, node.comparators, strict=True):
        right = _number(comparator, values)
        if not _COMPARE[type(op)](left, right):
            return False
        left = right
    return True


class MetricWindow:
    """Successive snapshots of some metrics → the values a rule with a window sees. Pure: times are passed in.

    * A **monotonic** sample (a counter's ``_total``, a histogram's ``_count`` / ``_sum``) is replaced by its
      *increase over the window*: the latest value minus the one at the newest snapshot at least
      ``window_us`` old — or, while the history is shorter than the window, the oldest snapshot kept (the
      increase since evaluation started). A value that went down (the counter was reset) counts from zero.
    * Any other sample (a gauge) is its latest value.

    ``window_us``: window length in µs. Memory: the snapshots inside one window, plus one just before it.
    """

    def __init__(self, window_us: int, monotonic: frozenset[str]) -> None:
        if window_us <= 0:
            raise ValueError("window_us must be positive")
        self.window_us = window_us
        self.monotonic = monotonic
        self._samples: deque[tuple[int, Mapping[str, float]]] = deque()

    def add(self, at_us: int, snapshot: Mapping[str, float]) -> dict[str, float]:
        """Record ``snapshot`` taken at ``at_us`` (µs, not decreasing) and return the windowed values."""
        self._samples.append((at_us, dict(snapshot)))
        cutoff = at_us - self.window_us
        # Keep the newest sample at or before the cutoff as the baseline; drop everything older.
        while len(self._samples) >= 2 and self._samples[1][0] <= cutoff:
            self._samples.popleft()
        baseline = self._samples[0][1]
        values: dict[str, float] = {}
        for name, value in snapshot.items():
            if name in self.monotonic:
                before = baseline.get(name, 0.0)
                values[name] = value - before if value >= before else value
            else:
                values[name] = value
        return values

    @property
    def span_us(self) -> int:
        """Time covered by the kept snapshots, µs (less than the window until enough history exists)."""
        return self._samples[-1][0] - self._samples[0][0] if self._samples else 0
