"""The durable kill-switch latch: a trip survives a restart (FR-504) and coexists with the store."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from mm.risk.kill_switch import KillSwitch, KillSwitchState
from mm.state.latch import SqliteKillSwitchLatch
from mm.state.records import FillRecord
from mm.state.store import Store
from mm.state.write_behind import WriteBehindQueue
from tests.state.test_store import T0, make_fill


def test_a_trip_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "mm.db"
    latch = SqliteKillSwitchLatch(path)
    switch = KillSwitch(latch, scope="node")
    assert not switch.tripped
    assert switch.trigger("daily loss limit", "pnl_limit", T0)
    latch.close()  # the process goes away without any shutdown step

    again = KillSwitch(SqliteKillSwitchLatch(path), scope="node")
    assert again.tripped
    assert again.state == KillSwitchState(True, "daily loss limit", "pnl_limit", T0)
    assert not again.trigger("a later reason", "manual", T0 + 1)  # the first reason is kept
    assert KillSwitch(SqliteKillSwitchLatch(path), scope="node").state.reason == "daily loss limit"


def test_a_trip_is_visible_to_another_process(tmp_path: Path) -> None:
    path = tmp_path / "mm.db"
    KillSwitch(SqliteKillSwitchLatch(path), scope="market/btc-5pm").trigger("hourly loss", "pnl_limit", T0)
    script = (
        "import sys; from mm.state.latch import SqliteKillSwitchLatch; "
        "s = SqliteKillSwitchLatch(sys.argv[1]).load('market/btc-5pm'); print(s.tripped, s.reason)"
    )
    out = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True hourly loss"


def test_reset_is_durable_and_scopes_are_independent(tmp_path: Path) -> None:
    path = tmp_path / "mm.db"
    latch = SqliteKillSwitchLatch(path)
    node = KillSwitch(latch, scope="node")
    market = KillSwitch(latch, scope="market/a")
    node.trigger("manual stop", "manual", T0)
    market.trigger("loss", "pnl_limit", T0)
    node.reset(confirm=True, operator="alice", now_us=T0 + 5)
    latch.close()

    reopened = SqliteKillSwitchLatch(path)
    assert reopened.load("node") == KillSwitchState(False, reset_by="alice", reset_at_us=T0 + 5)
    assert reopened.load("market/a") == KillSwitchState(True, "loss", "pnl_limit", T0)
    assert reopened.load("market/b") is None
    assert set(reopened.scopes()) == {"node", "market/a"}
    reopened.close()


async def test_the_latch_shares_the_file_with_a_busy_store(tmp_path: Path) -> None:
    path = tmp_path / "mm.db"
    store = await Store.open(path)
    queue = WriteBehindQueue(store, batch_size=10)
    queue.start()
    latch = SqliteKillSwitchLatch(path, busy_timeout_ms=2000)
    try:
        for i in range(2000):
            queue.enqueue(FillRecord(make_fill(i)))
            if i % 50 == 0:
                await asyncio.sleep(0.0005)  # let the flusher start batches on its writer thread
            if i == 1000:
                # Synchronous, on the loop, while batches are being committed: must neither deadlock nor fail.
                latch.save("node", KillSwitchState(True, "manual", "manual", T0))
        assert await queue.flush(timeout=20)
        assert await store.count("fills") == 2000
        assert (await store.rows("kill_switch"))[0]["tripped"] == 1
    finally:
        await queue.close()
        await store.close()
        latch.close()
    assert SqliteKillSwitchLatch(path).load("node") == KillSwitchState(True, "manual", "manual", T0)


def test_a_latch_that_cannot_save_raises(tmp_path: Path) -> None:
    latch = SqliteKillSwitchLatch(tmp_path / "mm.db")
    latch.close()
    with pytest.raises(Exception, match="closed"):
        latch.save("node", KillSwitchState(True, "x", "manual", T0))
