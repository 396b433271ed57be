"""Canonical JSON and digests of specs (design.md §2).

The canonical form is the materialised spec dumped in JSON mode (decimals as normalised strings), with
sorted keys and no insignificant whitespace, UTF-8 encoded. Two specs that mean the same thing — ``0.1``
vs ``0.10``, keys in another order, a default written out or left implicit — have the same bytes and so
the same digest, which is what revisions, ``diff`` and change detection compare.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

import orjson

from mm.specs.types import normalize_decimal


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(normalize_decimal(value))
    raise TypeError(f"cannot put a {type(value).__name__} in canonical JSON")


def canonical_json(value: Any) -> bytes:
    """Sorted-key, compact, UTF-8 JSON. Decimals become normalised strings; floats are refused."""
    _refuse_floats(value)
    return orjson.dumps(value, default=_default, option=orjson.OPT_SORT_KEYS)


def digest(value: Any) -> str:
    """``sha256:<hex>`` of the canonical JSON of ``value``."""
    return "sha256:" + hashlib.sha256(canonical_json(value)).hexdigest()


def _refuse_floats(value: Any) -> None:
    # Money never passes through a float; a float here means a caller bypassed the spec models.
    if isinstance(value, float):
        raise TypeError("floats are not allowed in canonical JSON; use Decimal")
    if isinstance(value, dict):
        for item in value.values():
            _refuse_floats(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _refuse_floats(item)
