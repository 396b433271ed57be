"""The SQLite store against a real file: writes, idempotency, queries (FR-801, FR-802, FR-803, FR-1005, FR-1007)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from mm.domain.events import PublicTrade, Settlement
from mm.domain.orders import Fill, Order, OrderRequest, OrderStatus
from mm.domain.price import Price, Quantity
from mm.domain.sides import OrderSide, Side
from mm.state.records import (
    AlertRecord,
    ConfigAuditRecord,
    EventRecord,
    FillRecord,
    MarketSampleRecord,
    OrderRecord,
    PnlSnapshotRecord,
    Record,
    RevisionRecord,
    SettlementRecord,
)
from mm.state.store import Store

T0 = 1_768_660_200_000_000  # 2026-01-17T14:30:00Z


def make_fill(i: int, market: str = "KXBTC-1700", fee: str = "0.0175", taker: bool = True) -> Fill:
    return Fill(
        fill_id=f"fill-{i}",
        order_id=f"ex-{i}",
        client_order_id=f"mm-{i}",
        market_id=market,
        side=Side.YES,
        order_side=OrderSide.BUY,
        price=Price(5600),
        quantity=Quantity.contracts(1),
        fee=Decimal(fee),
        is_taker=taker,
        timestamp_us=T0 + i,
    )


def make_order(coid: str, market: str = "KXBTC-1700", created_us: int = T0, qty: int = 10) -> Order:
    request = OrderRequest(market, Side.YES, OrderSide.BUY, Price(5500), Quantity.contracts(qty), coid)
    return Order.pending(request, created_us)


async def on_writer(store: Store, sql: str) -> tuple[object, ...] | None:
    """Run ``sql`` on the store's writer connection, on its own thread (test access to internals)."""
    assert store._executor is not None and store._writer is not None
    writer = store._writer

    def run() -> tuple[object, ...] | None:
        row = writer.execute(sql).fetchone()
        return None if row is None else tuple(row)

    return await asyncio.get_running_loop().run_in_executor(store._executor, run)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await Store.open(tmp_path / "mm.db", history_limit=3)
    yield s
    await s.close()


async def test_opens_in_wal_mode_with_full_sync(store: Store, tmp_path: Path) -> None:
    rows = await store.rows("kill_switch")
    assert rows == []
    async with store._db().execute("PRAGMA journal_mode") as cur:
        assert (await cur.fetchone()) == ("wal",)
    assert await on_writer(store, "PRAGMA synchronous") == (2,)  # FULL


async def test_order_lifecycle_one_current_row_and_every_state_change(store: Store) -> None:
    pending = make_order("mm-1")
    opened = pending.acknowledged("ex-1", T0 + 10)
    partial = opened.with_fill(Quantity.contracts(4), T0 + 20)
    filled = partial.with_fill(Quantity.contracts(6), T0 + 30)
    batch = [OrderRecord(o) for o in (pending, opened, partial, filled)]
    await store.write_batch(batch)
    await store.write_batch(batch)  # a retried flush: no duplicates

    orders = await store.orders()
    assert orders == [filled]
    history = await store.order_history("mm-1")
    assert [h.status for h in history] == [
        OrderStatus.PENDING,
        OrderStatus.OPEN,
        OrderStatus.PARTIALLY_FILLED,
        OrderStatus.FILLED,
    ]
    assert [h.filled for h in history] == [Quantity(0), Quantity(0), Quantity.contracts(4), Quantity.contracts(10)]
    assert history[1].exchange_order_id == "ex-1"


async def test_an_older_order_state_does_not_move_the_order_backwards(store: Store) -> None:
    pending = make_order("mm-1")
    opened = pending.acknowledged("ex-1", T0 + 10)
    await store.write_batch([OrderRecord(opened)])
    await store.write_batch([OrderRecord(pending)])  # a late REST poll
    assert [o.status for o in await store.orders()] == [OrderStatus.OPEN]
    assert len(await store.order_history("mm-1")) == 2  # both facts are still in the audit trail


async def test_orders_by_market_status_and_time_range(store: Store) -> None:
    a = make_order("a", market="M1", created_us=T0)
    b = make_order("b", market="M1", created_us=T0 + 100).acknowledged("ex-b", T0 + 101)
    c = make_order("c", market="M2", created_us=T0 + 200).rejected("no funds", T0 + 201)
    await store.write_batch([OrderRecord(o) for o in (a, b, c)])

    assert [o.client_order_id for o in await store.orders(market_id="M1")] == ["a", "b"]
    assert [o.client_order_id for o in await store.orders(statuses=[OrderStatus.OPEN, OrderStatus.REJECTED])] == [
        "b",
        "c",
    ]
    assert [o.client_order_id for o in await store.orders(since_us=T0 + 100, until_us=T0 + 200)] == ["b"]
    assert await store.orders(statuses=[]) == []
    rejected = await store.orders(market_id="M2")
    assert rejected[0].reject_reason == "no funds"
    assert [o.client_order_id for o in await store.orders(limit=1)] == ["a"]


async def test_fills_are_stored_exactly_once_and_read_back(store: Store) -> None:
    fills = [make_fill(i) for i in range(5)]
    await store.write_batch([FillRecord(f) for f in fills])
    await store.write_batch([FillRecord(f) for f in fills[2:]])
    assert await store.fills() == fills
    assert await store.fills(since_us=T0 + 1, until_us=T0 + 3) == fills[1:3]
    assert await store.fills(market_id="other") == []


async def test_fee_totals_per_market_and_kind_are_exact(store: Store) -> None:
    fills = [
        make_fill(1, "M1", "0.0175", taker=True),
        make_fill(2, "M1", "0.0035", taker=True),
        make_fill(3, "M1", "0", taker=False),
        make_fill(4, "M2", "0.01", taker=True),
    ]
    settlement = Settlement(
        market_id="M1",
        result="yes",
        yes_count=Quantity.contracts(10),
        no_count=Quantity(0),
        yes_total_cost=Decimal("5.60"),
        no_total_cost=Decimal(0),
        revenue=Decimal(10),
        value_per_yes=Decimal(1),
        fee=Decimal("0.05"),
        settled_us=T0 + 3_600_000_000,
    )
    await store.write_batch([*(FillRecord(f) for f in fills), SettlementRecord(settlement)])
    await store.write_batch([SettlementRecord(settlement)])
    totals = await store.fee_totals()
    assert totals == {
        ("M1", "taker"): Decimal("0.0210"),
        ("M1", "maker"): Decimal(0),
        ("M2", "taker"): Decimal("0.01"),
        ("M1", "settlement"): Decimal("0.05"),
    }
    assert str(totals[("M1", "taker")]) == "0.0210"  # exact decimal arithmetic, no float residue
    assert await store.fee_totals(since_us=T0 + 2, until_us=T0 + 4) == {
        ("M1", "taker"): Decimal("0.0035"),
        ("M1", "maker"): Decimal(0),
    }
    assert await store.count("settlements") == 1


async def test_pnl_history_by_market_and_time(store: Store) -> None:
    snaps = [
        PnlSnapshotRecord(
            T0 + i * 60_000_000, "M1", Decimal("1.5") * i, Decimal("-0.25"), Decimal("0.01"), {"YES": 150}
        )
        for i in range(4)
    ]
    node = PnlSnapshotRecord(T0, "", Decimal("12.34"), Decimal(0), positions={"YES": Decimal("10.5"), "NO": 0})
    await store.write_batch([*snaps, node])
    await store.write_batch(snaps)
    history = await store.pnl_history(market_id="M1")
    assert history == snaps
    assert await store.pnl_history(market_id="M1", since_us=T0 + 60_000_000, until_us=T0 + 180_000_000) == snaps[1:3]
    assert await store.pnl_history(market_id="") == [node]
    assert (await store.pnl_history(market_id=""))[0].positions == {"YES": Decimal("10.5"), "NO": 0}


def test_money_as_float_is_refused() -> None:
    record = PnlSnapshotRecord(T0, "M1", 1.5, Decimal(0))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        record.writes()


def revision(n: int, name: str = "btc-5pm") -> RevisionRecord:
    spec = {"ticker": "KXBTC-1700", "overrides": {"base_spread": Decimal("0.0") + Decimal(n) / 100}}
    return RevisionRecord("Market", name, n, n, f"sha256:{n}", spec, "cli:alice", f"change {n}", T0 + n)


async def test_revisions_keep_the_last_n_and_the_resource_tracks_the_newest(store: Store) -> None:
    await store.write_batch([revision(n) for n in range(1, 4)])
    await store.write_batch([revision(4), revision(5), revision(1, name="other")])
    kept = await store.revisions("Market", "btc-5pm")
    assert [r.revision for r in kept] == [3, 4, 5]  # history_limit=3
    assert kept[-1].spec == {"ticker": "KXBTC-1700", "overrides": {"base_spread": "0.05"}}
    current = await store.resource("Market", "btc-5pm")
    assert current is not None
    assert (current.revision, current.generation, current.digest) == (5, 5, "sha256:5")
    assert [r.revision for r in await store.revisions("Market", "other")] == [1]
    assert await store.resource("Market", "missing") is None


async def test_config_audit_keeps_before_and_after(store: Store) -> None:
    change = ConfigAuditRecord(
        timestamp_us=T0,
        change_type="param_update",
        component="Strategy/btc-hourly",
        triggered_by="api",
        before={"spread": {"base_spread": Decimal("0.04")}},
        after={"spread": {"base_spread": Decimal("0.05")}},
        changes=({"param": "spread.base_spread", "old_value": Decimal("0.04"), "new_value": Decimal("0.05")},),
        actor="alice",
    )
    failed = ConfigAuditRecord(T0, "reload", "Strategy/btc-hourly", "file_watch", {}, {}, success=False, error="bad")
    await store.write_batch([change, failed, change])
    rows = await store.rows("config_audit")
    assert len(rows) == 2
    assert rows[0]["before_json"] == '{"spread":{"base_spread":"0.04"}}'
    assert rows[0]["after_json"] == '{"spread":{"base_spread":"0.05"}}'
    assert rows[0]["changes_json"] == '[{"new_value":"0.05","old_value":"0.04","param":"spread.base_spread"}]'
    assert (rows[1]["success"], rows[1]["error"]) == (0, "bad")


async def test_events_alerts_and_market_samples(store: Store) -> None:
    trade = PublicTrade("M1", "t-1", Price(5600), Quantity.contracts(3), OrderSide.BUY, T0)
    book = MarketSampleRecord.book("M1", T0, [(5500, 1000)], [(4300, 500)])
    records: list[Record] = [
        EventRecord(T0, "Market/btc-5pm", "Quoting", "started quoting"),
        EventRecord(T0, "Market/btc-5pm", "Quoting", "a different message, same microsecond"),
        AlertRecord(T0, "critical", "kill_switch", "tripped"),
        MarketSampleRecord.from_trade(trade),
        book,
    ]
    await store.write_batch(records)
    await store.write_batch(records)
    assert await store.count("events") == 2
    assert await store.count("alerts") == 1
    samples = await store.rows("market_samples")
    assert [s["kind"] for s in samples] == ["trade", "book"]
    assert samples[0]["data_json"] == '{"price_units":5600,"quantity_units":300,"taker_side":"buy","trade_id":"t-1"}'
    assert samples[1]["data_json"] == '{"no":[[4300,500]],"yes":[[5500,1000]]}'


async def test_a_failed_batch_writes_nothing(store: Store) -> None:
    # The fill's INSERT runs first; the event violates NOT NULL inside the same transaction.
    bad = EventRecord(T0, None, "Reason", "message")  # type: ignore[arg-type]
    with pytest.raises(sqlite3.IntegrityError):
        await store.write_batch([FillRecord(make_fill(1)), bad])
    assert await store.count("fills") == 0
    await store.write_batch([FillRecord(make_fill(1))])  # the connection is usable afterwards
    assert await store.count("fills") == 1


async def test_unknown_table_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="unknown table"):
        await store.count("sqlite_master; DROP TABLE fills")
