"""Turning pydantic validation errors into located, readable spec issues.

Pydantic reports a location as a tuple that can include union tags (``volatility → ewma → params``) and
messages written for programmers ("Extra inputs are not permitted"). Here the tuple is walked against
the document's own data to get the path a person wrote, and the messages are rephrased, with a
"did you mean" for misspelt fields. Input values are never echoed except for short enum-like strings,
so an error can never leak a secret that was put in the wrong field.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel
from pydantic_core import ErrorDetails

Path = tuple[str | int, ...]


def data_path(data: Any, loc: Sequence[str | int]) -> Path:
    """The path in ``data`` that a pydantic ``loc`` refers to, without union tags.

    A segment that is not a key of the current mapping is a union tag and is skipped — except the last
    one, which is a field that was not given (a "missing" error) and is kept so the message can name it.
    """
    out: list[str | int] = []
    cur: Any = data
    for i, seg in enumerate(loc):
        present = (isinstance(cur, Mapping) and seg in cur) or (
            isinstance(cur, list) and isinstance(seg, int) and 0 <= seg < len(cur)
        )
        if present:
            out.append(seg)
            cur = cur[seg]
        elif i == len(loc) - 1:
            out.append(seg)
            cur = None
    return tuple(out)


def dotted(path: Path) -> str:
    """``("spec", "rules", 0, "limit")`` → ``spec.rules[0].limit``."""
    text = ""
    for seg in path:
        text += f"[{seg}]" if isinstance(seg, int) else (f".{seg}" if text else str(seg))
    return text


def friendly_message(error: ErrorDetails, model: type[BaseModel], data: Any, path: Path) -> str:
    """A message for one pydantic error, phrased for someone editing YAML."""
    kind = error["type"]
    ctx: dict[str, Any] = dict(error.get("ctx") or {})
    if kind == "extra_forbidden":
        name = str(path[-1]) if path else "?"
        known = known_fields(model, data, path[:-1])
        text = f"unknown field {name!r}"
        close = difflib.get_close_matches(name, known, n=1)
        if close:
            text += f"; did you mean {close[0]!r}?"
        elif known:
            text += f"; known fields: {', '.join(known)}"
        return text
    if kind == "missing":
        return "required field is missing"
    discriminator = str(ctx.get("discriminator", "type")).strip("'")
    if kind == "union_tag_invalid":
        expected = ctx.get("expected_tags", "")
        return f"unknown {discriminator} {ctx.get('tag')!r}; expected one of {expected}"
    if kind == "union_tag_not_found":
        return f"missing the {discriminator!r} field that selects the implementation"
    if kind in _BOUNDS:
        op, key = _BOUNDS[kind]
        return _DECIMAL_REPR.sub(r"\1", f"must be {op} {ctx.get(key)}")
    if kind == "string_pattern_mismatch":
        if path[-2:] == ("metadata", "name"):
            return "must be lower-case letters, digits, '-' and '.', starting and ending with a letter or digit"
        return f"must match the pattern {ctx.get('pattern')}"
    if kind == "literal_error":
        given = error.get("input")
        shown = f", got {given!r}" if isinstance(given, str) and len(given) <= 40 else ""
        return f"must be {ctx.get('expected')}{shown}"
    if kind in ("string_type", "int_type", "bool_type", "dict_type", "list_type", "model_type", "decimal_type"):
        wanted = {
            "string_type": "a string",
            "int_type": "a whole number",
            "bool_type": "true or false",
            "dict_type": "a mapping",
            "list_type": "a list",
            "model_type": "a mapping",
            "decimal_type": "a number",
        }[kind]
        return f"must be {wanted}, got {_describe(error.get('input'))}"
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    message = message[:1].lower() + message[1:]
    return "must " + message.removeprefix("input should ") if message.startswith("input should ") else message


_DECIMAL_REPR = re.compile(r"Decimal\('([^']*)'\)")
_BOUNDS = {
    "greater_than": ("greater than", "gt"),
    "greater_than_equal": ("at least", "ge"),
    "less_than": ("less than", "lt"),
    "less_than_equal": ("at most", "le"),
    "multiple_of": ("a multiple of", "multiple_of"),
    "string_too_long": ("at most this many characters:", "max_length"),
}


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    return "a number" if isinstance(value, int | float) or type(value).__name__ == "Decimal" else type(value).__name__


def known_fields(model: type[BaseModel], data: Any, path: Path) -> list[str]:
    """Field names accepted at ``path`` (following the data to pick union members), or [] if unknown."""
    target: Any = model
    cur: Any = data
    for seg in path:
        target = _pick_model(target, cur)
        if _is_model(target) and isinstance(seg, str):
            field = target.model_fields.get(seg)
            if field is None:
                return []
            target = field.annotation
        elif typing.get_origin(target) in (list, dict):
            target = typing.get_args(target)[-1]  # list[X] / dict[str, X]: the element type
        else:
            return []
        cur = _child(cur, seg)
    target = _pick_model(target, cur)
    if _is_model(target):
        return [f.alias or n for n, f in target.model_fields.items()]
    return []


def _is_model(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, BaseModel)


def _child(cur: Any, seg: str | int) -> Any:
    if isinstance(cur, Mapping):
        return cur.get(seg)
    if isinstance(cur, list) and isinstance(seg, int) and 0 <= seg < len(cur):
        return cur[seg]
    return None


def _pick_model(annotation: Any, value: Any) -> Any:
    """Unwrap Optional/Annotated/unions to the model class that ``value`` would be validated as."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _pick_model(typing.get_args(annotation)[0], value)
    if origin in (typing.Union, types.UnionType):
        members = [m for m in typing.get_args(annotation) if m is not type(None)]
        models = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]
        tag = value.get("type") if isinstance(value, Mapping) else None
        for m in models:
            field = m.model_fields.get("type")
            if field is not None and tag is not None and tag in typing.get_args(field.annotation):
                return m
        if len(models) == 1:
            return models[0]
        return members[0] if len(members) == 1 else annotation
    return annotation
