"""Checkpoints (FR-1201): atomic writes that survive a crash mid-write; the lock file (FR-1202)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from mm.clock import SimulatedClock
from mm.state.checkpoint import (
    Checkpoint,
    CheckpointError,
    CheckpointWriter,
    LockFile,
    LockHeldError,
    MarketCheckpoint,
    decode_checkpoint,
    encode_checkpoint,
    live_lock_holder,
    load_checkpoint,
)
from tests.state.test_store import T0

EXAMPLE_FIELDS = {
    "timestamp",
    "market_id",
    "positions",
    "inventory",
    "realized_pnl",
    "open_orders",
    "config_version",
}  # FR-1201's example document, field for field


def state(n: int) -> Checkpoint:
    market = MarketCheckpoint(
        market_id="BTC-hourly-1700",
        positions={"YES": 150 + n, "NO": 0},
        inventory=150 + n,
        realized_pnl=Decimal("12.34") + n,
        open_orders=("order-123", "order-456"),
        config_version="2026-01-17T14:00:00Z",
    )
    return Checkpoint(timestamp_us=T0 + n, markets=(market,), extra={"node": "n1"})


def test_the_document_has_the_fields_of_fr_1201_and_no_floats() -> None:
    doc = orjson.loads(encode_checkpoint(state(0)))
    entry = doc["markets"]["BTC-hourly-1700"]
    assert set(entry) == EXAMPLE_FIELDS
    assert entry["timestamp"] == "2026-01-17T14:30:00.000000Z"
    assert entry["positions"] == {"YES": 150, "NO": 0}
    assert entry["inventory"] == 150
    assert entry["realized_pnl"] == "12.34"  # exact string, never a JSON float
    assert entry["open_orders"] == ["order-123", "order-456"]
    assert doc["checksum"].startswith("sha256:")
    assert decode_checkpoint(encode_checkpoint(state(0))) == state(0)


def test_fractional_quantities_round_trip_exactly() -> None:
    market = MarketCheckpoint("M", {"YES": Decimal("10.5")}, Decimal("10.5"), Decimal("-0.0001"), (), "r3")
    cp = Checkpoint(T0, (market,))
    assert decode_checkpoint(encode_checkpoint(cp)) == cp


def test_a_damaged_document_is_rejected() -> None:
    data = encode_checkpoint(state(0))
    tampered = data.replace(b'"12.34"', b'"99.34"')
    with pytest.raises(CheckpointError, match="checksum"):
        decode_checkpoint(tampered)
    with pytest.raises(CheckpointError):
        decode_checkpoint(data[: len(data) // 2])  # a torn write
    with pytest.raises(CheckpointError):
        decode_checkpoint(b'{"format": 99}')


def test_write_now_then_load(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.json"
    assert load_checkpoint(path) is None
    writer = CheckpointWriter(path, lambda: state(1))
    writer.write_now()
    assert load_checkpoint(path) == state(1)
    assert not list(tmp_path.glob(".*.tmp"))  # no temp files left behind


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_a_crash_mid_write_leaves_the_previous_checkpoint_valid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    path = tmp_path / "checkpoint.json"
    current = [state(1)]
    writer = CheckpointWriter(path, lambda: current[0])
    writer.write_now()

    real_replace = os.replace

    def crash(*args: object) -> None:
        raise OSError("simulated crash")

    def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        if Path(dst) == path:  # the rename that would publish the new checkpoint
            raise OSError("simulated crash")
        real_replace(src, dst)

    if failing == "fsync":
        monkeypatch.setattr("os.fsync", crash)
    else:
        monkeypatch.setattr("os.replace", replace)
    current[0] = state(2)
    with pytest.raises(OSError, match="simulated crash"):
        writer.write_now()
    monkeypatch.undo()
    assert load_checkpoint(path) == state(1)  # the old checkpoint, complete


def test_a_torn_current_file_falls_back_to_the_previous_one(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.json"
    current = [state(1)]
    writer = CheckpointWriter(path, lambda: current[0])
    writer.write_now()
    current[0] = state(2)
    writer.write_now()
    assert load_checkpoint(path) == state(2)
    # Damage at rest (the rename is atomic, the disk under it may not be).
    path.write_bytes(path.read_bytes()[:40])
    assert load_checkpoint(path) == state(1)
    path.unlink()
    assert load_checkpoint(path) == state(1)


async def test_the_periodic_writer_uses_the_injected_sleep_and_survives_failures(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.json"
    calls = [0]
    sleeps: list[float] = []

    def source() -> Checkpoint:
        calls[0] += 1
        if calls[0] == 2:
            raise RuntimeError("ledger busy")
        return state(calls[0])

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 4:
            raise asyncio.CancelledError

    writer = CheckpointWriter(path, source, interval_s=10, sleep=fake_sleep)
    with pytest.raises(asyncio.CancelledError):
        await writer.run()
    assert sleeps == [10, 10, 10, 10]
    assert (writer.written, writer.failures) == (3, 1)
    assert load_checkpoint(path) == state(4)


def dead_pid() -> int:
    script = "import os; print(os.getpid())"
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return int(proc.stdout)


def test_lock_file_holds_pid_and_start_time_and_is_removed_on_clean_shutdown(tmp_path: Path) -> None:
    path = tmp_path / "mmctl.lock"
    lock = LockFile(path, SimulatedClock(T0))
    info = lock.acquire()
    assert info.pid == os.getpid()
    assert orjson.loads(path.read_bytes()) == {"pid": os.getpid(), "host": info.host, "started_us": T0}
    assert not lock.previous_run_crashed
    with pytest.raises(LockHeldError, match="running pid"):
        LockFile(path).acquire()  # a second node on the same state directory
    lock.release()
    assert not path.exists()


def test_a_lock_held_by_another_live_process_refuses_to_start(tmp_path: Path) -> None:
    path = tmp_path / "mmctl.lock"
    script = (
        "import sys, time; from mm.state.checkpoint import LockFile; "
        "LockFile(sys.argv[1]).acquire(); print('held', flush=True); time.sleep(60)"
    )
    holder = subprocess.Popen([sys.executable, "-c", script, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(LockHeldError, match=f"running pid {holder.pid}"):
            LockFile(path).acquire()
        assert live_lock_holder(path) is not None and live_lock_holder(path).pid == holder.pid  # type: ignore[union-attr]
        assert path.exists()
    finally:
        holder.kill()
        holder.wait()
    # killed: the kernel dropped its lock with it — the next start takes over and knows the run crashed
    assert live_lock_holder(path) is None
    lock = LockFile(path)
    lock.acquire()
    assert lock.previous_run_crashed and lock.stale is not None and lock.stale.pid == holder.pid
    lock.release()


def test_a_left_lock_naming_a_live_pid_is_still_a_crash(tmp_path: Path) -> None:
    """A container restarts its node with the same pid (and host name): the pid in the file proves nothing,
    the lock that died with the crashed process decides."""
    path = tmp_path / "mmctl.lock"
    path.write_bytes(orjson.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started_us": T0}))
    assert live_lock_holder(path) is None
    lock = LockFile(path)
    lock.acquire()
    assert lock.previous_run_crashed and lock.stale is not None and lock.stale.started_us == T0
    lock.release()


def test_a_stale_lock_from_a_crashed_run_is_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "mmctl.lock"
    pid = dead_pid()
    path.write_bytes(orjson.dumps({"pid": pid, "host": socket.gethostname(), "started_us": T0}))
    lock = LockFile(path, SimulatedClock(T0 + 1))
    info = lock.acquire()
    assert lock.previous_run_crashed
    assert lock.stale is not None and lock.stale.pid == pid
    assert orjson.loads(path.read_bytes())["pid"] == info.pid == os.getpid()
    lock.release()


def test_a_torn_lock_file_counts_as_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "mmctl.lock"
    path.write_bytes(b'{"pid": 12')
    lock = LockFile(path)
    lock.acquire()
    assert lock.previous_run_crashed
    lock.release()
