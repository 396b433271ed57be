"""Versioned migrations: fresh databases, upgrades of older ones, atomicity, refusal of newer ones."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from mm.state import migrations
from mm.state.migrations import LATEST_VERSION, SchemaTooNewError, migrate, migrate_path, schema_version
from mm.state.records import ConfigAuditRecord, FillRecord, MarketSampleRecord
from mm.state.store import TABLES, Store
from tests.state.test_store import T0, make_fill


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return schema_version(conn)
    finally:
        conn.close()


def test_a_new_database_gets_every_table_and_the_latest_version(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    assert migrate_path(path) == LATEST_VERSION == 2
    assert tables(path) == TABLES
    assert migrate_path(path) == LATEST_VERSION  # idempotent


async def test_a_v1_database_is_upgraded_and_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    assert migrate_path(path, target=1) == 1
    assert "market_samples" not in tables(path)
    # What an older mmctl would have written: a fill (through its SQL) and a tripped latch.
    conn = sqlite3.connect(path, isolation_level=None)
    for sql, row in FillRecord(make_fill(1)).writes():
        conn.execute(sql, row)
    conn.execute("INSERT INTO kill_switch VALUES ('node', 1, 'manual stop', 'manual', ?, '', 0)", (T0,))
    conn.close()

    store = await Store.open(path)
    try:
        assert version(path) == LATEST_VERSION
        assert await store.fills() == [make_fill(1)]
        assert (await store.rows("kill_switch"))[0]["reason"] == "manual stop"
        await store.write_batch(
            [
                ConfigAuditRecord(T0, "apply", "Market/m", "cli", {}, {"a": Decimal(1)}),
                MarketSampleRecord.book("M1", T0, [], []),
            ]
        )
        assert await store.count("config_audit") == 1
        assert await store.count("market_samples") == 1
    finally:
        await store.close()


def test_a_failing_migration_leaves_the_previous_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "db"
    migrate_path(path, target=1)
    broken = "CREATE TABLE half_done (a INTEGER);\nTHIS IS NOT SQL;\n"
    monkeypatch.setattr(migrations, "MIGRATIONS", (migrations.MIGRATIONS[0], broken))
    with pytest.raises(sqlite3.OperationalError):
        migrate_path(path, target=2)
    assert version(path) == 1
    assert "half_done" not in tables(path)  # the DDL rolled back with the version bump


def test_a_database_from_a_newer_mmctl_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "db"
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {LATEST_VERSION + 1}")
    with pytest.raises(SchemaTooNewError):
        migrate_path(path)


def test_migrate_needs_an_autocommit_connection_and_a_known_target(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "db")
    try:
        with pytest.raises(ValueError, match="isolation_level"):
            migrate(conn)
        conn.isolation_level = None
        with pytest.raises(ValueError, match="target"):
            migrate(conn, target=LATEST_VERSION + 1)
    finally:
        conn.close()


def test_statements_are_split_the_way_sqlite_reads_them() -> None:
    script = "CREATE TABLE t (a TEXT DEFAULT 'x;y');\nINSERT INTO t VALUES ('1;\n2');\n"
    assert migrations._statements(script) == [
        "CREATE TABLE t (a TEXT DEFAULT 'x;y');",
        "INSERT INTO t VALUES ('1;\n2');",
    ]
    with pytest.raises(ValueError, match="unterminated"):
        migrations._statements("CREATE TABLE t (a)")


def test_two_openers_migrate_once(tmp_path: Path) -> None:
    path = tmp_path / "db"
    first = sqlite3.connect(path, isolation_level=None)
    second = sqlite3.connect(path, isolation_level=None)
    try:
        assert migrate(first) == LATEST_VERSION
        assert migrate(second) == LATEST_VERSION  # sees the version under its write lock, applies nothing
    finally:
        first.close()
        second.close()
    assert tables(path) == TABLES
