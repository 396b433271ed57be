"""What "no data lost" means, checked the same way whether the exchange is in-process or another process.

Pure comparisons of ground truth (the exchange's fills, positions and resting orders of our account) with
what the node persisted (its SQLite ``fills`` table) and believes (its ledger's positions):

* every exchange fill of ours is in the database exactly once (by fill id), and the database has no fill the
  exchange does not know;
* the node's positions, and the positions the database's fills add up to, equal the exchange's (markets the
  exchange has settled are left out: settlement moves the position without a fill);
* no two resting orders of ours share a market and side (one level per side is what the specs of this suite
  ask for), and no client order id was used twice.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class ExchangeFill:
    fill_id: str
    ticker: str
    count: int
    """1/100 contract."""


@dataclass
class DataCheck:
    """The outcome of one comparison; ``lost`` is the figure the report shows (0 when nothing is wrong)."""

    exchange_fills: int = 0
    db_fills: int = 0
    missing: list[str] = field(default_factory=list)
    """Exchange fills absent from the database."""
    duplicated: list[str] = field(default_factory=list)
    """Fill ids stored more than once."""
    unknown: list[str] = field(default_factory=list)
    """Database fills the exchange never made."""
    node_positions: dict[str, tuple[int, int]] = field(default_factory=dict)
    """ticker → (node, exchange), where they differ."""
    db_positions: dict[str, tuple[int, int]] = field(default_factory=dict)
    """ticker → (sum of the database's fills, exchange), where they differ."""

    @property
    def lost(self) -> int:
        return (
            len(self.missing)
            + len(self.duplicated)
            + len(self.unknown)
            + len(self.node_positions)
            + len(self.db_positions)
        )

    @property
    def ok(self) -> bool:
        return self.lost == 0

    def summary(self) -> str:
        return (
            f"{self.exchange_fills} exchange fills, {self.db_fills} in the database; missing {self.missing}, "
            f"duplicated {self.duplicated}, unknown {self.unknown}; positions node≠exchange {self.node_positions}, "
            f"database≠exchange {self.db_positions}"
        )


@dataclass(frozen=True, slots=True)
class DbFill:
    fill_id: str
    market_id: str
    side: str
    order_side: str
    quantity_units: int

    @property
    def net_units(self) -> int:
        """Change of net YES: buying YES or selling NO is +, the others − (the domain's ``inventory_delta``)."""
        up = (self.side, self.order_side) in (("yes", "buy"), ("no", "sell"))
        return self.quantity_units if up else -self.quantity_units


def read_db_fills(database: Path) -> list[DbFill]:
    """The node's fills table, read through a separate read-only connection (what a person would see)."""
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10.0)
    try:
        rows = conn.execute("SELECT fill_id, market_id, side, order_side, quantity_units FROM fills").fetchall()
    finally:
        conn.close()
    return [DbFill(*row) for row in rows]


def compare(
    exchange_fills: Iterable[ExchangeFill],
    exchange_positions: Mapping[str, int],
    db_fills: Iterable[DbFill],
    node_positions: Mapping[str, int] | None,
    *,
    settled: Iterable[str] = (),
) -> DataCheck:
    """Ground truth vs the node (see the module docstring). ``node_positions`` None: not compared."""
    theirs = list(exchange_fills)
    ours = list(db_fills)
    check = DataCheck(exchange_fills=len(theirs), db_fills=len(ours))
    stored = Counter(f.fill_id for f in ours)
    known = {f.fill_id for f in theirs}
    check.missing = sorted(f.fill_id for f in theirs if f.fill_id not in stored)
    check.duplicated = sorted(i for i, n in stored.items() if n > 1)
    check.unknown = sorted(i for i in stored if i not in known)
    skip = set(settled)
    db_net: Counter[str] = Counter()
    for f in ours:
        db_net[f.market_id] += f.net_units
    tickers = (set(exchange_positions) | set(db_net) | set(node_positions or {})) - skip
    for ticker in sorted(tickers):
        venue = exchange_positions.get(ticker, 0)
        if db_net.get(ticker, 0) != venue:
            check.db_positions[ticker] = (db_net.get(ticker, 0), venue)
        if node_positions is not None and node_positions.get(ticker, 0) != venue:
            check.node_positions[ticker] = (node_positions.get(ticker, 0), venue)
    return check


@dataclass(frozen=True, slots=True)
class RestingOrder:
    client_order_id: str
    ticker: str
    side: str
    price: int


def duplicate_orders(resting: Iterable[RestingOrder]) -> list[str]:
    """Problems among our resting orders: a client order id twice, or two orders on one market and side."""
    orders = list(resting)
    problems = [
        f"client order id {c} used by {n} resting orders" for c, n in _repeated(o.client_order_id for o in orders)
    ]
    problems += [f"{n} resting orders on {place}" for place, n in _repeated(f"{o.ticker} {o.side}" for o in orders)]
    return problems


def _repeated(items: Iterable[str]) -> list[tuple[str, int]]:
    return sorted((k, n) for k, n in Counter(items).items() if n > 1)
