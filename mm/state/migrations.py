"""Versioned schema migrations for the SQLite store, tracked in ``PRAGMA user_version``.

Each migration is a SQL script; migration *n* (1-based) takes a database from ``user_version = n - 1`` to
``n``. A migration runs inside one ``BEGIN IMMEDIATE`` transaction together with the ``user_version`` bump,
so a crash or an error half-way leaves the database at the previous version, never half-migrated.
``BEGIN IMMEDIATE`` also serialises two processes (or the store and the kill-switch latch) opening the same
file at once: the version is re-read inside the transaction, so each migration is applied exactly once.

Rules for adding a migration: append, never edit a released one; keep scripts free of ``BEGIN``/``COMMIT``
(the runner owns the transaction); money columns are TEXT holding exact decimals, prices and quantities
INTEGER units (decision 001); every append-only table has a UNIQUE ``idempotency_key`` (decision 012).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Final

__all__ = ["LATEST_VERSION", "MIGRATIONS", "SchemaTooNewError", "migrate", "migrate_path", "schema_version"]

_V1: Final = """
CREATE TABLE resources (
    kind        TEXT NOT NULL,
    name        TEXT NOT NULL,
    generation  INTEGER NOT NULL,
    revision    INTEGER NOT NULL,
    digest      TEXT NOT NULL,
    spec_json   TEXT NOT NULL,
    updated_us  INTEGER NOT NULL,
    PRIMARY KEY (kind, name)
);
CREATE TABLE revisions (
    id              INTEGER PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    kind            TEXT NOT NULL,
    name            TEXT NOT NULL,
    revision        INTEGER NOT NULL,
    generation      INTEGER NOT NULL,
    digest          TEXT NOT NULL,
    spec_json       TEXT NOT NULL,
    source          TEXT NOT NULL,
    change_cause    TEXT NOT NULL,
    created_us      INTEGER NOT NULL,
    UNIQUE (kind, name, revision)
);
CREATE TABLE events (
    id              INTEGER PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    timestamp_us    INTEGER NOT NULL,
    type            TEXT NOT NULL,
    subject         TEXT NOT NULL,
    reason          TEXT NOT NULL,
    message         TEXT NOT NULL,
    data_json       TEXT NOT NULL
);
CREATE INDEX events_subject_ts ON events (subject, timestamp_us);
CREATE TABLE orders (
    client_order_id   TEXT PRIMARY KEY,
    exchange_order_id TEXT,
    market_id         TEXT NOT NULL,
    side              TEXT NOT NULL,
    order_side        TEXT NOT NULL,
    price_units       INTEGER NOT NULL,
    quantity_units    INTEGER NOT NULL,
    filled_units      INTEGER NOT NULL,
    status            TEXT NOT NULL,
    time_in_force     TEXT NOT NULL,
    post_only         INTEGER NOT NULL,
    reduce_only       INTEGER NOT NULL,
    reject_reason     TEXT,
    created_us        INTEGER NOT NULL,
    updated_us        INTEGER NOT NULL
);
CREATE INDEX orders_market_created ON orders (market_id, created_us);
CREATE INDEX orders_status_created ON orders (status, created_us);
CREATE TABLE order_events (
    id                INTEGER PRIMARY KEY,
    idempotency_key   TEXT NOT NULL UNIQUE,
    client_order_id   TEXT NOT NULL,
    exchange_order_id TEXT,
    market_id         TEXT NOT NULL,
    status            TEXT NOT NULL,
    filled_units      INTEGER NOT NULL,
    reject_reason     TEXT,
    timestamp_us      INTEGER NOT NULL
);
CREATE INDEX order_events_order ON order_events (client_order_id, id);
CREATE TABLE fills (
    id              INTEGER PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    fill_id         TEXT NOT NULL,
    order_id        TEXT NOT NULL,
    client_order_id TEXT,
    market_id       TEXT NOT NULL,
    side            TEXT NOT NULL,
    order_side      TEXT NOT NULL,
    price_units     INTEGER NOT NULL,
    quantity_units  INTEGER NOT NULL,
    fee             TEXT NOT NULL,
    is_taker        INTEGER NOT NULL,
    timestamp_us    INTEGER NOT NULL
);
CREATE INDEX fills_market_ts ON fills (market_id, timestamp_us);
CREATE TABLE settlements (
    id              INTEGER PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    market_id       TEXT NOT NULL,
    result          TEXT NOT NULL,
    yes_count_units INTEGER NOT NULL,
    no_count_units  INTEGER NOT NULL,
    yes_total_cost  TEXT NOT NULL,
    no_total_cost   TEXT NOT NULL,
    revenue         TEXT NOT NULL,
    value_per_yes   TEXT NOT NULL,
    fee             TEXT NOT NULL,
    settled_us      INTEGER NOT NULL
);
CREATE TABLE pnl_snapshots (
    id              INTEGER PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    timestamp_us    INTEGER NOT NULL,
    market_id       TEXT NOT NULL,
    realized_pnl    TEXT NOT NULL,
    unrealized_pnl  TEXT NOT NULL,
    fees            TEXT NOT NULL,
    positions_json  TEXT NOT NULL
);
CREATE INDEX pnl_market_ts ON pnl_snapshots (market_id, timestamp_us);
CREATE TABLE kill_switch (
    scope         TEXT PRIMARY KEY,
    tripped       INTEGER NOT NULL,
    reason        TEXT NOT NULL,
    source        TEXT NOT NULL,
    tripped_at_us INTEGER NOT NULL,
    reset_by      TEXT NOT NULL,
    reset_at_us   INTEGER NOT NULL
);
"""

# v2: FR-803 market-data samples, the FR-1007 config-change audit and alerts. Kept separate from v1 so the
# upgrade path has had a real test since the first release.
_V2: Final = """
CREATE TABLE market_samples (
    id              INTEGER PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    market_id       TEXT NOT NULL,
    kind            TEXT NOT NULL,
    timestamp_us    INTEGER NOT NULL,
    data_json       TEXT NOT NULL
);
CREATE INDEX market_samples_market_ts ON market_samples (market_id, timestamp_us);
CREATE TABLE config_audit (
    id              INTEGER PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    timestamp_us    INTEGER NOT NULL,
    change_type     TEXT NOT NULL,
    component       TEXT NOT NULL,
    triggered_by    TEXT NOT NULL,
    actor           TEXT NOT NULL,
    before_json     TEXT NOT NULL,
    after_json      TEXT NOT NULL,
    changes_json    TEXT NOT NULL,
    success         INTEGER NOT NULL,
    error           TEXT
);
CREATE INDEX config_audit_component_ts ON config_audit (component, timestamp_us);
CREATE TABLE alerts (
    id              INTEGER PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    timestamp_us    INTEGER NOT NULL,
    severity        TEXT NOT NULL,
    name            TEXT NOT NULL,
    message         TEXT NOT NULL,
    data_json       TEXT NOT NULL
);
CREATE INDEX alerts_ts ON alerts (timestamp_us);
"""

MIGRATIONS: Final[tuple[str, ...]] = (_V1, _V2)
"""Migration scripts in order; index i takes the schema from version i to i + 1."""

LATEST_VERSION: Final = len(MIGRATIONS)


class SchemaTooNewError(RuntimeError):
    """The database was written by a newer mmctl; opening it with this one could corrupt it."""


def schema_version(conn: sqlite3.Connection) -> int:
    """The database's schema version (``PRAGMA user_version``; 0 for a new file)."""
    row = conn.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def _statements(script: str) -> list[str]:
    # executescript() would COMMIT our transaction first, so statements are run one by one; complete_statement
    # finds statement ends the way SQLite does (a ';' inside a string literal does not end one).
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        raise ValueError(f"migration script has an unterminated statement: {buffer.strip()[:80]!r}")
    return statements


def migrate(conn: sqlite3.Connection, target: int = LATEST_VERSION) -> int:
    """Apply every pending migration up to ``target``, each in its own transaction; return the new version.

    ``conn`` must be in autocommit mode (``isolation_level=None``) so the runner controls transactions.
    Raises :class:`SchemaTooNewError` if the file is newer than this code knows.
    """
    if not 0 <= target <= LATEST_VERSION:
        raise ValueError(f"target version {target} outside 0..{LATEST_VERSION}")
    if conn.isolation_level is not None:
        raise ValueError("migrate() needs a connection opened with isolation_level=None")
    version = schema_version(conn)
    if version > LATEST_VERSION:
        raise SchemaTooNewError(f"database schema v{version} is newer than this mmctl (v{LATEST_VERSION})")
    while version < target:
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = schema_version(conn)  # re-read under the write lock: another process may have migrated
            if version < target:
                for statement in _statements(MIGRATIONS[version]):
                    conn.execute(statement)
                version += 1
                # PRAGMA user_version is part of the transaction: it rolls back with the migration.
                conn.execute(f"PRAGMA user_version = {version}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return version


def migrate_path(path: str | Path, target: int = LATEST_VERSION) -> int:
    """Open ``path`` (creating it), switch it to WAL and migrate it; return the schema version."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA busy_timeout = 10000")
        # WAL is a property of the file, set once; readers then never block the writer and vice versa.
        conn.execute("PRAGMA journal_mode = WAL")
        return migrate(conn, target)
    finally:
        conn.close()
