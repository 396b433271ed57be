"""Kalshi wire formats for the simulator's REST layer (kalshi-api.md §3, §5): numbers, times, errors, cursors.

Everything that turns simulator units into Kalshi strings (and back) lives here, so every endpoint formats
a value the same way:

* **prices** ($0.0001 units) → 4-dp dollar strings, ``"0.5600"`` (:func:`price_str`);
* **counts** (1/100 contract) → 2-dp strings, ``"10.00"`` (:func:`count_str`);
* **money in $0.0001 units** (order fill costs) → 4-dp dollar strings (:func:`price_str` as well);
* **money in micro-dollars** (account balances, fees, PnL) → dollar strings with **4 dp when the amount is a
  whole number of $0.0001, else 6 dp** (:func:`micros_str`: ``"12.3456"``, ``"0.000001"``), the "up to 6 on
  some portfolio fields" of §3 without trailing noise on ordinary amounts; and → **int cents, floored**
  (:func:`micros_cents`) for the few legacy-style int fields that remain (``balance``, ``portfolio_value``,
  settlement ``revenue``);
* **times**: RFC 3339 with microseconds and ``Z`` (:func:`rfc3339`), Unix seconds and milliseconds, all
  shifted by the injected clock skew where they are server readings.

Parsing is strict: a price must be a decimal string with at most 4 dp, a count a string (or JSON integer)
with at most 2 dp; anything else is a :class:`~mm.sim.exchange.SimApiError` 400 with Kalshi's code.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, TypeVar

from starlette.datastructures import QueryParams
from starlette.responses import JSONResponse

from mm.clock import format_rfc3339_us
from mm.domain.price import PRICE_SCALE
from mm.sim.exchange import SimApiError

__all__ = [
    "CursorKey",
    "count_str",
    "error_body",
    "error_response",
    "micros_cents",
    "micros_str",
    "paginate",
    "parse_count",
    "parse_price",
    "price_str",
    "q_bool",
    "q_int",
    "q_limit",
    "q_list",
    "q_str",
    "rfc3339",
]

_US_PER_S: Final = 1_000_000
_MICROS_PER_PRICE_UNIT: Final = 100
"""Micro-dollars per $0.0001."""
_MICROS_PER_CENT: Final = 10_000

_PRICE_RE: Final = re.compile(r"(?:\d+(?:\.\d{1,4})?|\.\d{1,4})", re.ASCII)
_COUNT_RE: Final = re.compile(r"(?:\d+(?:\.\d{1,2})?|\.\d{1,2})", re.ASCII)

T = TypeVar("T")
CursorKey = tuple[int | str, ...]


# --- numbers ----------------------------------------------------------------------------------------------


def _fixed(units: int, digits: int) -> str:
    sign = "-" if units < 0 else ""
    scale: int = 10**digits
    whole, frac = divmod(abs(units), scale)
    return f"{sign}{whole}.{frac:0{digits}d}"


def price_str(units: int) -> str:
    """$0.0001 units → ``"0.5600"`` (exactly 4 dp). Also used for money held in $0.0001 units."""
    return _fixed(units, 4)


def count_str(units: int) -> str:
    """1/100-contract units → ``"10.00"`` (exactly 2 dp, signed for positions)."""
    return _fixed(units, 2)


def micros_str(micros: int) -> str:
    """Micro-dollars → dollars: 4 dp when exact to $0.0001 (``"12.3400"``), else 6 dp (``"0.000150"``)."""
    if micros % _MICROS_PER_PRICE_UNIT == 0:
        return _fixed(micros // _MICROS_PER_PRICE_UNIT, 4)
    return _fixed(micros, 6)


def micros_cents(micros: int) -> int:
    """Micro-dollars → whole cents, floored (toward −∞), for Kalshi's remaining int-cent fields."""
    return micros // _MICROS_PER_CENT


def _parse_decimal_units(value: object, pattern: re.Pattern[str], digits: int) -> int | None:
    """A non-negative decimal string with at most ``digits`` dp → integer units; ``None`` if malformed."""
    if not isinstance(value, str) or not pattern.fullmatch(value):
        return None
    whole, _, frac = value.partition(".")
    scale: int = 10**digits
    return int(whole or "0") * scale + int(frac.ljust(digits, "0") or "0")


def parse_price(value: object, field: str = "price") -> int:
    """A V2 dollar string (0–4 dp, strictly inside (0, 1)) → $0.0001 units; 400 ``invalid_price`` otherwise.

    The tick grid is checked by the exchange (also ``invalid_price``).
    """
    units = _parse_decimal_units(value, _PRICE_RE, 4)
    if units is None:
        raise SimApiError(400, "invalid_price", f"{field} must be a dollar string with at most 4 decimals")
    if not 0 < units < PRICE_SCALE:
        raise SimApiError(400, "invalid_price", f"{field} must lie strictly between 0 and 1")
    return units


def parse_count(value: object, field: str = "count", *, allow_zero: bool = False) -> int:
    """A count string with at most 2 dp (or a JSON integer) → 1/100-contract units; 400 ``invalid_order_size``."""
    units: int | None
    if isinstance(value, int) and not isinstance(value, bool):
        units = value * 100 if value >= 0 else None
    else:
        units = _parse_decimal_units(value, _COUNT_RE, 2)
    if units is None:
        raise SimApiError(400, "invalid_order_size", f"{field} must be a count string with at most 2 decimals")
    if units == 0 and not allow_zero:
        raise SimApiError(400, "invalid_order_size", f"{field} must be positive")
    return units


# --- time -------------------------------------------------------------------------------------------------


def rfc3339(us: int, skew_ms: int = 0) -> str:
    """µs since the epoch (plus a skew in ms) → ``"2026-08-13T21:00:00.000000Z"``."""
    return format_rfc3339_us(us + skew_ms * 1000)


def seconds(us: int, skew_ms: int = 0) -> int:
    """µs since the epoch (plus a skew in ms) → whole Unix seconds (floored)."""
    return (us + skew_ms * 1000) // _US_PER_S


def millis(us: int, skew_ms: int = 0) -> int:
    """µs since the epoch (plus a skew in ms) → whole Unix milliseconds (floored)."""
    return (us + skew_ms * 1000) // 1000


# --- errors -----------------------------------------------------------------------------------------------


def error_body(code: str, message: str, details: str = "") -> dict[str, Any]:
    """``{"error": {code, message, details}, "code", "message", "details"}``: the nested object live captures
    show plus top-level copies (kalshi-api.md §3), so clients reading either form find the code."""
    fields = {"code": code, "message": message, "details": details}
    return {"error": dict(fields), **fields}


def flat_error(code: str, message: str, details: str = "") -> dict[str, str]:
    """The flat OpenAPI ``ErrorResponse`` used inside batch items."""
    return {"code": code, "message": message, "details": details}


def error_response(status: int, code: str, message: str, details: str = "") -> JSONResponse:
    """A Kalshi error answer: ``status`` with :func:`error_body`."""
    return JSONResponse(error_body(code, message, details), status_code=status)


# --- query parameters -------------------------------------------------------------------------------------


def _bad(message: str) -> SimApiError:
    return SimApiError(400, "invalid_parameters", message)


def q_str(params: QueryParams, name: str) -> str | None:
    """A query parameter; empty counts as absent."""
    value = params.get(name)
    return value or None


def q_list(params: QueryParams, name: str) -> list[str]:
    """A list parameter given comma-separated, repeated, or both (``?tickers=a,b&tickers=c``)."""
    return [item.strip() for raw in params.getlist(name) for item in raw.split(",") if item.strip()]


def q_int(params: QueryParams, name: str) -> int | None:
    value = q_str(params, name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise _bad(f"{name} must be an integer") from None


def q_bool(params: QueryParams, name: str) -> bool:
    value = q_str(params, name)
    if value is None:
        return False
    lowered = value.lower()
    if lowered not in ("true", "false", "1", "0"):
        raise _bad(f"{name} must be true or false")
    return lowered in ("true", "1")


def q_limit(params: QueryParams, default: int, maximum: int) -> int:
    """``limit`` in ``[1, maximum]`` (``default`` when absent); 400 ``invalid_parameters`` outside."""
    limit = q_int(params, "limit")
    if limit is None:
        return default
    if not 1 <= limit <= maximum:
        raise _bad(f"limit must be between 1 and {maximum}")
    return limit


# --- pagination -------------------------------------------------------------------------------------------


def encode_cursor(key: CursorKey) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key), separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> CursorKey:
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise _bad("invalid cursor") from None
    if not isinstance(raw, list) or not all(isinstance(x, int | str) and not isinstance(x, bool) for x in raw):
        raise _bad("invalid cursor")
    return tuple(raw)


def paginate(items: Sequence[T], key: Callable[[T], CursorKey], limit: int, cursor: str | None) -> tuple[list[T], str]:
    """One page of ``items`` (already sorted by ``key``, ascending, keys unique) after ``cursor``.

    Keyset pagination: the opaque cursor holds the last returned item's key, so items added or removed
    between calls neither repeat nor get skipped. The returned cursor is ``""`` on the last page.
    """
    keys = [key(item) for item in items]
    start = 0
    if cursor:
        after = decode_cursor(cursor)
        if keys and len(after) != len(keys[0]):
            raise _bad("invalid cursor")
        try:
            start = bisect_right(keys, after)
        except TypeError:
            raise _bad("invalid cursor") from None
    page = list(items[start : start + limit])
    more = start + limit < len(items)
    return page, encode_cursor(keys[start + limit - 1]) if more else ""


# --- request bodies ---------------------------------------------------------------------------------------


def body_object(body: object) -> Mapping[str, Any]:
    """The parsed JSON body as an object; 400 ``invalid_parameters`` for anything else."""
    if not isinstance(body, Mapping):
        raise _bad("request body must be a JSON object")
    return body
