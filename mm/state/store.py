"""The SQLite store (design.md §7): WAL mode, versioned schema, batched idempotent writes.

Connections: queries go through aiosqlite (a read-only connection); writes go through one plain ``sqlite3``
connection owned by a dedicated single-thread executor, and each batch is one call on that thread — BEGIN,
the inserts, COMMIT — so a transaction never stays open across event-loop turns (decision 013: aiosqlite
would need one loop round trip per statement, holding the write lock while the loop is busy and deadlocking
against the kill-switch latch, which takes the lock synchronously on the loop).

Durability: ``journal_mode=WAL`` (readers never block the writer) and ``synchronous=FULL`` by default, so a
committed batch survives a power cut, not only a process crash. FULL costs one WAL fsync per *commit*, and the
write-behind queue commits a whole batch at once, so the cost is amortised (see docs/persistence.md for the
measured rate); ``NORMAL`` is accepted for hosts with slow disks, where the last commits may roll back after
a power cut (never corrupt). The kill-switch latch always uses FULL on its own connection.

Writes arrive as :mod:`mm.state.records` batches (:meth:`Store.write_batch`), one transaction per batch; every
statement is idempotent, so a retried batch never duplicates a row. Time ranges in queries are half-open,
``since_us <= t < until_us``, in UTC microseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Final, Literal

import aiosqlite
import orjson

from mm.domain.orders import Fill, Order, OrderRequest, OrderStatus
from mm.domain.price import Price, Quantity
from mm.domain.sides import OrderSide, Side, TimeInForce
from mm.state.migrations import migrate_path
from mm.state.records import PnlSnapshotRecord, Record, RevisionRecord

__all__ = ["TABLES", "OrderEventRow", "ResourceRow", "Store", "Synchronous"]

Synchronous = Literal["FULL", "NORMAL"]

TABLES: Final = frozenset(
    {
        "resources",
        "revisions",
        "events",
        "orders",
        "order_events",
        "fills",
        "settlements",
        "pnl_snapshots",
        "market_samples",
        "config_audit",
        "kill_switch",
        "alerts",
    }
)

_PRUNE_REVISIONS: Final = (
    "DELETE FROM revisions WHERE kind = ? AND name = ? AND revision < (SELECT MIN(revision) FROM"
    " (SELECT revision FROM revisions WHERE kind = ? AND name = ? ORDER BY revision DESC LIMIT ?))"
)
_ORDER_COLUMNS: Final = (
    "client_order_id, exchange_order_id, market_id, side, order_side, price_units, quantity_units, filled_units,"
    " status, time_in_force, post_only, reduce_only, reject_reason, created_us, updated_us"
)
_FILL_COLUMNS: Final = (
    "fill_id, order_id, client_order_id, market_id, side, order_side, price_units, quantity_units, fee, is_taker,"
    " timestamp_us"
)


@dataclass(frozen=True, slots=True)
class OrderEventRow:
    """One stored state change of an order, oldest first in :meth:`Store.order_history`."""

    client_order_id: str
    exchange_order_id: str | None
    market_id: str
    status: OrderStatus
    filled: Quantity
    reject_reason: str | None
    timestamp_us: int


@dataclass(frozen=True, slots=True)
class ResourceRow:
    """A resource's current stored spec."""

    kind: str
    name: str
    generation: int
    revision: int
    digest: str
    spec: dict[str, Any]
    updated_us: int


def _range(column: str, since_us: int | None, until_us: int | None) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    args: list[Any] = []
    if since_us is not None:
        where.append(f"{column} >= ?")
        args.append(since_us)
    if until_us is not None:
        where.append(f"{column} < ?")
        args.append(until_us)
    return where, args


def _where(clauses: Sequence[str]) -> str:
    return f" WHERE {' AND '.join(clauses)}" if clauses else ""


def _order(row: Any) -> Order:
    request = OrderRequest(
        market_id=row[2],
        side=Side(row[3]),
        order_side=OrderSide(row[4]),
        price=Price(row[5]),
        quantity=Quantity(row[6]),
        client_order_id=row[0],
        time_in_force=TimeInForce(row[9]),
        post_only=bool(row[10]),
        reduce_only=bool(row[11]),
    )
    return Order(
        request=request,
        status=OrderStatus(row[8]),
        created_us=row[13],
        updated_us=row[14],
        exchange_order_id=row[1],
        filled=Quantity(row[7]),
        reject_reason=row[12],
    )


def _fill(row: Any) -> Fill:
    return Fill(
        fill_id=row[0],
        order_id=row[1],
        client_order_id=row[2],
        market_id=row[3],
        side=Side(row[4]),
        order_side=OrderSide(row[5]),
        price=Price(row[6]),
        quantity=Quantity(row[7]),
        fee=Decimal(row[8]),
        is_taker=bool(row[9]),
        timestamp_us=row[10],
    )


def _positions(text: str) -> dict[str, Decimal | int]:
    # Canonical JSON wrote Decimals as strings and ints as ints; read them back the same way.
    loaded: dict[str, Any] = orjson.loads(text)
    return {k: v if isinstance(v, int) else Decimal(v) for k, v in loaded.items()}


class Store:
    """One SQLite database file. Open with :meth:`open`; all methods run on the asyncio loop."""

    def __init__(self, path: Path, *, history_limit: int, synchronous: Synchronous, busy_timeout_ms: int) -> None:
        if history_limit < 1:
            raise ValueError("history_limit must be at least 1")
        self.path: Final = path
        self.history_limit: Final = history_limit
        self._synchronous: Final = synchronous
        self._busy_timeout_ms: Final = busy_timeout_ms
        self._conn: aiosqlite.Connection | None = None  # reads
        self._writer: sqlite3.Connection | None = None  # writes, only ever used on the executor's thread
        self._executor: ThreadPoolExecutor | None = None

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        history_limit: int = 20,
        synchronous: Synchronous = "FULL",
        busy_timeout_ms: int = 5000,
    ) -> Store:
        """Open (creating and migrating) the database at ``path``.

        ``busy_timeout_ms`` is how long one write waits for another process's lock before failing; the
        write-behind queue then keeps the batch and retries, so a short timeout only means earlier retries.
        """
        store = cls(Path(path), history_limit=history_limit, synchronous=synchronous, busy_timeout_ms=busy_timeout_ms)
        await store.connect()
        return store

    async def connect(self) -> None:
        """(Re)open the connections, migrating the file first. Used again by the queue after an IO error."""
        await self._close_quietly()
        # Migration is blocking sqlite3 work; run it off the loop so a slow disk does not stall trading.
        await asyncio.to_thread(migrate_path, self.path)
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mm-store-writer")
        try:
            writer = await asyncio.get_running_loop().run_in_executor(executor, self._open_writer)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        reader = await aiosqlite.connect(self.path, isolation_level=None)
        try:
            await reader.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
            await reader.execute("PRAGMA query_only = 1")  # all writes go through the writer (one transaction each)
        except BaseException:
            await reader.close()
            writer.close()
            executor.shutdown(wait=False)
            raise
        self._executor, self._writer, self._conn = executor, writer, reader

    def _open_writer(self) -> sqlite3.Connection:
        # check_same_thread=False only because close() may run on another thread after the executor is done.
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
        except BaseException:
            conn.close()
            raise
        return conn

    async def close(self) -> None:
        reader, self._conn = self._conn, None
        writer, self._writer = self._writer, None
        executor, self._executor = self._executor, None
        try:
            if reader is not None:
                await reader.close()
        finally:
            if executor is not None and writer is not None:
                await asyncio.get_running_loop().run_in_executor(executor, writer.close)
            if executor is not None:
                executor.shutdown(wait=False)

    async def _close_quietly(self) -> None:
        # A broken connection is being replaced; its close error says nothing new.
        with contextlib.suppress(Exception):
            await self.close()

    @property
    def connected(self) -> bool:
        return self._conn is not None

    def _db(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise RuntimeError("store is not connected")
        return self._conn

    # --- writes

    async def write_batch(self, records: Iterable[Record]) -> None:
        """Write ``records`` in one transaction: all or nothing, and idempotent (safe to retry)."""
        groups: dict[str, list[tuple[Any, ...]]] = {}
        revised: dict[tuple[str, str], None] = {}
        for record in records:
            for sql, row in record.writes():
                groups.setdefault(sql, []).append(row)
            if isinstance(record, RevisionRecord):
                revised[(record.kind, record.name)] = None
        if not groups:
            return
        if self._executor is None or self._writer is None:
            raise RuntimeError("store is not connected")
        await asyncio.get_running_loop().run_in_executor(self._executor, self._write, self._writer, groups, revised)

    def _write(
        self,
        db: sqlite3.Connection,
        groups: dict[str, list[tuple[Any, ...]]],
        revised: dict[tuple[str, str], None],
    ) -> None:
        # The whole transaction runs in one call on the writer thread, never across event-loop turns: a
        # transaction spread over several awaits would hold the write lock while the loop is busy, and would
        # deadlock against anything that takes the lock synchronously *on* the loop (the kill-switch latch).
        # IMMEDIATE takes the write lock up front, so a busy database fails here, before any statement runs.
        db.execute("BEGIN IMMEDIATE")
        try:
            # Grouped by statement (one executemany each); rows keep their enqueue order within a statement,
            # which is what the current-state upserts need. Different tables are independent within a batch.
            for sql, rows in groups.items():
                db.executemany(sql, rows)
            for kind, name in revised:
                db.execute(_PRUNE_REVISIONS, (kind, name, kind, name, self.history_limit))
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                with contextlib.suppress(Exception):  # the original error is the one to report
                    db.execute("ROLLBACK")
            raise

    # --- queries (FR-801, FR-802, FR-1005)

    async def orders(
        self,
        *,
        market_id: str | None = None,
        statuses: Iterable[OrderStatus] | None = None,
        since_us: int | None = None,
        until_us: int | None = None,
        limit: int | None = None,
    ) -> list[Order]:
        """Orders (current state) by market, status and creation time, oldest first."""
        where, args = _range("created_us", since_us, until_us)
        if market_id is not None:
            where.append("market_id = ?")
            args.append(market_id)
        if statuses is not None:
            wanted = [s.value for s in statuses]
            where.append(f"status IN ({','.join('?' * len(wanted))})" if wanted else "0")
            args.extend(wanted)
        sql = f"SELECT {_ORDER_COLUMNS} FROM orders{_where(where)} ORDER BY created_us, client_order_id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        async with self._db().execute(sql, args) as cursor:
            return [_order(row) for row in await cursor.fetchall()]

    async def order_history(self, client_order_id: str) -> list[OrderEventRow]:
        """Every stored state change of one order, in the order they were written."""
        sql = (
            "SELECT client_order_id, exchange_order_id, market_id, status, filled_units, reject_reason, timestamp_us"
            " FROM order_events WHERE client_order_id = ? ORDER BY id"
        )
        async with self._db().execute(sql, (client_order_id,)) as cursor:
            rows = await cursor.fetchall()
        return [OrderEventRow(r[0], r[1], r[2], OrderStatus(r[3]), Quantity(r[4]), r[5], r[6]) for r in rows]

    async def fills(
        self, *, market_id: str | None = None, since_us: int | None = None, until_us: int | None = None
    ) -> list[Fill]:
        where, args = _range("timestamp_us", since_us, until_us)
        if market_id is not None:
            where.append("market_id = ?")
            args.append(market_id)
        sql = f"SELECT {_FILL_COLUMNS} FROM fills{_where(where)} ORDER BY timestamp_us, id"
        async with self._db().execute(sql, args) as cursor:
            return [_fill(row) for row in await cursor.fetchall()]

    async def pnl_history(
        self, *, market_id: str | None = None, since_us: int | None = None, until_us: int | None = None
    ) -> list[PnlSnapshotRecord]:
        """PnL snapshots, oldest first; ``market_id=""`` selects the node-wide series."""
        where, args = _range("timestamp_us", since_us, until_us)
        if market_id is not None:
            where.append("market_id = ?")
            args.append(market_id)
        sql = (
            "SELECT timestamp_us, market_id, realized_pnl, unrealized_pnl, fees, positions_json FROM pnl_snapshots"
            f"{_where(where)} ORDER BY timestamp_us, id"
        )
        async with self._db().execute(sql, args) as cursor:
            rows = await cursor.fetchall()
        return [
            PnlSnapshotRecord(r[0], r[1], Decimal(r[2]), Decimal(r[3]), Decimal(r[4]), _positions(r[5])) for r in rows
        ]

    async def fee_totals(
        self, *, since_us: int | None = None, until_us: int | None = None
    ) -> dict[tuple[str, str], Decimal]:
        """Fees paid per ``(market_id, kind)``, kind ``maker``/``taker`` (fills) or ``settlement``.

        Summed in Python with Decimal: SQLite's SUM() over TEXT would convert the amounts to floats.
        """
        totals: dict[tuple[str, str], Decimal] = {}
        fill_where, fill_args = _range("timestamp_us", since_us, until_us)
        fill_sql = f"SELECT market_id, is_taker, fee FROM fills{_where(fill_where)}"
        async with self._db().execute(fill_sql, fill_args) as cursor:
            async for market, taker, fee in cursor:
                key = (market, "taker" if taker else "maker")
                totals[key] = totals.get(key, Decimal(0)) + Decimal(fee)
        settle_where, settle_args = _range("settled_us", since_us, until_us)
        settle_sql = f"SELECT market_id, fee FROM settlements{_where(settle_where)}"
        async with self._db().execute(settle_sql, settle_args) as cursor:
            async for market, fee in cursor:
                key = (market, "settlement")
                totals[key] = totals.get(key, Decimal(0)) + Decimal(fee)
        return totals

    async def revisions(self, kind: str, name: str) -> list[RevisionRecord]:
        """The retained revisions of one resource (at most ``history_limit``), oldest first."""
        sql = (
            "SELECT kind, name, revision, generation, digest, spec_json, source, change_cause, created_us"
            " FROM revisions WHERE kind = ? AND name = ? ORDER BY revision"
        )
        async with self._db().execute(sql, (kind, name)) as cursor:
            rows = await cursor.fetchall()
        return [RevisionRecord(r[0], r[1], r[2], r[3], r[4], orjson.loads(r[5]), r[6], r[7], r[8]) for r in rows]

    async def resource(self, kind: str, name: str) -> ResourceRow | None:
        sql = "SELECT kind, name, generation, revision, digest, spec_json, updated_us FROM resources"
        async with self._db().execute(f"{sql} WHERE kind = ? AND name = ?", (kind, name)) as cursor:
            r = await cursor.fetchone()
        return None if r is None else ResourceRow(r[0], r[1], r[2], r[3], r[4], orjson.loads(r[5]), r[6])

    async def rows(self, table: str, where: str = "", args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Raw rows of ``table`` as dicts, in insertion order (audit views, tests). ``where`` is trusted SQL."""
        if table not in TABLES:
            raise ValueError(f"unknown table {table!r}")
        sql = f"SELECT * FROM {table}{f' WHERE {where}' if where else ''} ORDER BY rowid"
        async with self._db().execute(sql, tuple(args)) as cursor:
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in await cursor.fetchall()]

    async def count(self, table: str) -> int:
        if table not in TABLES:
            raise ValueError(f"unknown table {table!r}")
        async with self._db().execute(f"SELECT COUNT(*) FROM {table}") as cursor:
            row = await cursor.fetchone()
        return 0 if row is None else int(row[0])
