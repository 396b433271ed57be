"""Deterministic client order ids (design.md §4) and the quote levels they name.

An id is derived from ``(prefix, market, generation, level, attempt)`` only, so re-running a plan after a
timed-out create yields the *same* id: the venue refuses the duplicate (Kalshi: 409) or the retry finds the
order by its id, and no second order is placed. The format is::

    {prefix}:{market_hash}:{generation}:{level}:{attempt}        e.g.  mm:5f0c1e9a27b4:3:yb:0

* ``prefix``: 1–16 ASCII letters/digits naming this installation ("mm"); orders without it are foreign.
* ``market_hash``: 12 hex digits of BLAKE2b(market id). Kalshi tickers contain ``.`` (``T73249.99``), which
  ``client_order_id`` does not allow, and ids are unique per account across markets, so the market must be
  in the id; a fixed-length hash keeps every id short.
* ``generation``: the Market spec's generation, decimal, ``0 <= g < 10**12``.
* ``level``: the :class:`Level` code (``yb``, ``ya``, ``nb``, ``na``).
* ``attempt``: decimal, ``0 <= a < 10**12``; a new order on the same level and generation takes a new attempt.

The longest id is 16 + 12 + 12 + 2 + 12 + 4 separators = 58 characters, inside Kalshi's limit of 64 characters
from ``[-\\w:+=/]`` (kalshi-api.md §5). Formatting and parsing are canonical (no leading zeros, no signs), so
``parse(make(...))`` round-trips and every id has exactly one parse.
"""

from __future__ import annotations

import enum
import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

from mm.domain.sides import OrderSide, Side

MAX_CLIENT_ORDER_ID_LENGTH: Final = 64
"""Kalshi's limit on ``client_order_id`` (kalshi-api.md §5)."""
MAX_PREFIX_LENGTH: Final = 16
MARKET_HASH_LENGTH: Final = 12
"""Hex digits of the market hash (48 bits)."""
MAX_COUNTER: Final = 10**12
"""Exclusive upper bound of ``generation`` and ``attempt``."""
SEPARATOR: Final = ":"

_PREFIX_RE: Final = re.compile(r"[A-Za-z0-9]{1,16}\Z")
_HEX_RE: Final = re.compile(r"[0-9a-f]{12}\Z")


class Level(enum.Enum):
    """One quote slot, i.e. one resting order we manage in a market.

    On a unified YES book (Kalshi) only ``YES_BID`` (≡ NO ask) and ``YES_ASK`` (≡ NO bid) are used; on venues
    with a book per contract (Polymarket) all four are separate orders. The value is the code used in ids.
    """

    YES_BID = "yb"
    YES_ASK = "ya"
    NO_BID = "nb"
    NO_ASK = "na"

    # Members are singletons compared by identity, so the identity hash is consistent, and it is a C slot:
    # Enum's own __hash__ is Python code, and levels key the planner's dicts on the hot path.
    __hash__ = object.__hash__

    @property
    def side(self) -> Side:
        """The contract the level's order trades."""
        return Side.YES if self in (Level.YES_BID, Level.YES_ASK) else Side.NO

    @property
    def order_side(self) -> OrderSide:
        return OrderSide.BUY if self in (Level.YES_BID, Level.NO_BID) else OrderSide.SELL

    @property
    def direction(self) -> int:
        """+1 if a fill raises net YES inventory (buy YES, sell NO), −1 otherwise."""
        return 1 if self in (Level.YES_BID, Level.NO_ASK) else -1

    @property
    def opposite(self) -> Level:
        """The other side of the same contract's book (bid ↔ ask)."""
        return _OPPOSITE[self]


_OPPOSITE: Final = {
    Level.YES_BID: Level.YES_ASK,
    Level.YES_ASK: Level.YES_BID,
    Level.NO_BID: Level.NO_ASK,
    Level.NO_ASK: Level.NO_BID,
}
_BY_CODE: Final = {level.value: level for level in Level}


@dataclass(frozen=True, slots=True)
class ClientOrderId:
    """The parts of one of our client order ids."""

    prefix: str
    market_hash: str
    generation: int
    level: Level
    attempt: int

    def __str__(self) -> str:
        return SEPARATOR.join(
            (self.prefix, self.market_hash, str(self.generation), self.level.value, str(self.attempt))
        )


def check_prefix(prefix: str) -> str:
    """Return ``prefix`` if it is 1–16 ASCII letters or digits, else raise ``ValueError``."""
    if not _PREFIX_RE.match(prefix):
        raise ValueError(
            f"client order id prefix {prefix!r} must be 1-{MAX_PREFIX_LENGTH} ASCII letters or digits "
            "(Kalshi allows at most 64 characters from [-\\w:+=/] in the whole id)"
        )
    return prefix


@lru_cache(maxsize=4096)
def market_hash(market_id: str) -> str:
    """12 lowercase hex digits identifying ``market_id`` in ids (BLAKE2b, stable across processes)."""
    if not market_id:
        raise ValueError("market id must not be empty")
    return hashlib.blake2b(market_id.encode(), digest_size=MARKET_HASH_LENGTH // 2).hexdigest()


def _check_counter(name: str, value: int) -> None:
    if type(value) is not int or not 0 <= value < MAX_COUNTER:
        raise ValueError(f"client order id {name} must be an int in [0, 10**12), got {value!r}")


def make_client_order_id(prefix: str, market_id: str, generation: int, level: Level, attempt: int) -> str:
    """The deterministic id of attempt ``attempt`` at ``level`` of ``market_id`` under spec ``generation``."""
    check_prefix(prefix)
    _check_counter("generation", generation)
    _check_counter("attempt", attempt)
    return SEPARATOR.join((prefix, market_hash(market_id), str(generation), level.value, str(attempt)))


def _counter(text: str) -> int | None:
    """A canonical decimal counter (no sign, no leading zero, < 10**12), or None."""
    if not text.isascii() or not text.isdigit() or (len(text) > 1 and text[0] == "0") or len(text) > 12:
        return None
    return int(text)


@lru_cache(maxsize=8192)
def parse_client_order_id(client_order_id: str, prefix: str) -> ClientOrderId | None:
    """The parts of ``client_order_id`` if it is one of ours (made with ``prefix``), else None (foreign).

    Anything not in the exact canonical format counts as foreign: a plan never touches an order it cannot
    prove it placed. Cached: the same resting orders are parsed on every reconcile.
    """
    parts = client_order_id.split(SEPARATOR)
    if len(parts) != 5 or parts[0] != prefix:
        return None
    _, mhash, generation_text, code, attempt_text = parts
    level = _BY_CODE.get(code)
    generation = _counter(generation_text)
    attempt = _counter(attempt_text)
    if level is None or generation is None or attempt is None or not _HEX_RE.match(mhash):
        return None
    return ClientOrderId(prefix, mhash, generation, level, attempt)
