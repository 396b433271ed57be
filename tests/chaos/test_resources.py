"""NFR-603 resource scenarios: memory pressure (``mmctl run`` under a 256 MB data limit) and a CPU spike (the
node's event loop busy for 5 s while every core is burnt), both against ``mmctl sim`` in its own process with
a taker filling our orders all along."""

from __future__ import annotations

import asyncio
import contextlib
import resource
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry

from mm.adapters.factory import build_venue_adapter
from mm.adapters.kalshi.adapter import KalshiAdapter
from mm.adapters.kalshi.signer import KalshiSigner
from mm.adapters.kalshi.ws import KalshiWebSocket
from mm.clock import WallClock
from mm.controller.runtime import NodeRuntime, RuntimeOptions
from mm.observability.metrics import Metrics
from mm.specs.exchange import ExchangeSpec
from tests.chaos.conftest import SEED
from tests.chaos.exchange_client import Admin, SignedReader
from tests.chaos.invariants import DataCheck, compare, duplicate_orders, read_db_fills
from tests.chaos.procs import (
    SimProcess,
    TakerPump,
    burn_cpus,
    node_on_sim,
    running_sim,
    seconds_to_the_hour,
    write_bundle,
)
from tests.chaos.results import Measurement
from tests.controller.harness import admitted, wait_until

pytestmark = pytest.mark.chaos

Measure = Callable[[str], Measurement]

# ---------------------------------------------------------------------------------------------- memory

MEMORY_LIMIT = 256 * 1024 * 1024
"""RLIMIT_DATA, bytes. Why DATA and not AS: CPython reserves address space it never touches (8 MB of stack per
thread, a 64 MB malloc arena per thread), so ``mmctl run`` — uvicorn, the SQLite writer, aiosqlite, the
recorder — has ~700 MB of *virtual* memory at rest and cannot even start its threads under a 256 MB RLIMIT_AS.
RLIMIT_DATA (Linux ≥ 4.7) counts the heap and every private writable mapping, i.e. the memory the process can
actually fill: under it Python starts, and an allocation past the limit raises MemoryError (checked below)."""


def limit_memory() -> None:
    """``preexec_fn``: runs in the child between fork and exec."""
    resource.setrlimit(resource.RLIMIT_DATA, (MEMORY_LIMIT, MEMORY_LIMIT))


def proc_status(pid: int) -> dict[str, int]:
    """The ``Vm*`` lines of /proc/PID/status, in kB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Vm"):
            name, value = line.split(":", 1)
            out[name] = int(value.split()[0])
    return out


def data_limit_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max data size"):
            return int(line.split()[3])
    raise AssertionError("no data size limit line")


def test_the_limit_bounds_python() -> None:
    """The limit chosen really binds: a child under it cannot allocate 300 MB, but runs normally below."""
    grab = "import sys; b = bytearray(int(sys.argv[1]) * 1024 * 1024)"
    small = subprocess.run(
        [sys.executable, "-c", grab, "16"], preexec_fn=limit_memory, capture_output=True, check=False
    )
    large = subprocess.run(
        [sys.executable, "-c", grab, "300"], preexec_fn=limit_memory, capture_output=True, check=False
    )
    assert small.returncode == 0, small.stderr
    assert large.returncode != 0 and b"MemoryError" in large.stderr


async def test_memory_pressure_the_node_quotes_under_256_mb_and_shuts_down_cleanly(
    tmp_path: Path, measure: Measure
) -> None:
    record = measure("memory_pressure")
    async with node_on_sim(tmp_path, seed=SEED % 1000 + 1, preexec=limit_memory) as ext:
        node = ext.node
        await ext.wait_clear_of_the_hour()
        await ext.wait_for(lambda o: o.quoting(), 60, "quoting under the memory limit")
        record.recovered(time.monotonic() - node.started_at)
        assert data_limit_of(node.pid) == MEMORY_LIMIT
        async with TakerPump(ext.sim, ext.reader, SEED).running() as pump:
            # "for a while": until a good number of our orders have been filled, and the node still quotes
            await ext.wait_for(lambda o: o.quoting() and len(ext.reader.fills()) >= 20, 180, "20 fills, quoting")
        memory = proc_status(node.pid)
        code = node.terminate()
        record.note(
            limit_mb=MEMORY_LIMIT // 2**20,
            peak_rss_mb=round(memory["VmHWM"] / 1024, 1),
            data_mb=round(memory["VmData"] / 1024, 1),
            virtual_mb=round(memory["VmPeak"] / 1024, 1),
            exit_code=code,
            taker_fills=pump.filled,
        )
        assert code == 0, node.log_tail()
        check, problems, _ = await ext.data()
        record.lost(check.lost)
        assert check.ok, check.summary()
        assert problems == [] and ext.reader.resting() == [], problems


# ---------------------------------------------------------------------------------------------- CPU spike

SPIKE_S = 5.0


@dataclass
class LocalNode:
    """A node in this process (its event loop is the test's) trading on a simulator in another process."""

    runtime: NodeRuntime
    sim: SimProcess
    reader: SignedReader
    admin: Admin
    state_dir: Path

    @property
    def ws(self) -> KalshiWebSocket:
        venue = self.runtime.node.exchanges["kx"].venue
        assert isinstance(venue, KalshiAdapter) and venue.ws is not None
        return venue.ws

    def markets(self) -> dict[str, str]:
        """Market name → ticker."""
        return {m.name: str(m.spec.ticker) for m in self.runtime.resources.all("Market")}

    def quoting(self) -> bool:
        markets = self.markets()
        if not markets:
            return False
        resting = self.reader.resting()
        for name, ticker in markets.items():
            phase = self.runtime.resources.require("Market", name).status.get("phase")
            if phase != "Quoting" or {o.side for o in resting if o.ticker == ticker} != {"bid", "ask"}:
                return False
        return True

    async def data(self, timeout: float = 20.0) -> tuple[DataCheck, list[str]]:
        queue = self.runtime.queue_db
        assert queue is not None
        account = self.runtime.node.account("kx", "live")
        deadline = time.monotonic() + timeout
        while True:
            fills, positions = self.reader.fills(), self.reader.positions()
            await queue.flush(timeout=5.0, drain=True)
            tickers = set(positions) | set(account.ledger.market_ids())
            check = compare(
                fills,
                positions,
                read_db_fills(self.state_dir / "mmctl.db"),
                {t: account.ledger.net_units(t) for t in tickers},
                settled=self.reader.settled(),
            )
            problems = duplicate_orders(self.reader.resting())
            if (check.ok and not problems) or time.monotonic() >= deadline:
                return check, problems
            await asyncio.sleep(0.1)  # polling until both sides agree (fills keep arriving), bounded above


@contextlib.asynccontextmanager
async def local_node(tmp_path: Path, sim: SimProcess) -> AsyncIterator[LocalNode]:
    """What ``mmctl run`` builds for a ``kalshi`` Exchange (wall clock, the factory's adapter), in-process."""
    bundle = write_bundle(tmp_path / "bundle", sim)
    wall = WallClock()
    metrics = Metrics(CollectorRegistry())

    def build(name: str, spec: ExchangeSpec) -> KalshiAdapter:
        signer = KalshiSigner.from_file(sim.key_id, sim.key_file)
        return build_venue_adapter(spec, wall, signer=signer, wall_clock=wall, metrics=metrics, exchange_label=name)

    state_dir = tmp_path / "node"
    runtime = NodeRuntime(
        wall, RuntimeOptions(state_dir=state_dir, recording_dir=state_dir / "sessions"), build, metrics=metrics
    )
    await runtime.start(admitted((bundle / "bundle.yaml").read_text()))
    reader = SignedReader(sim.rest, sim.key_id, sim.key_file)
    async with httpx.AsyncClient(base_url=sim.base_url, timeout=5.0) as http:
        try:
            yield LocalNode(runtime, sim, reader, Admin(http), state_dir)
        finally:
            await runtime.stop("drain")
            reader.close()


def busy(seconds: float) -> None:
    """Keep this thread — the node's event loop — at 100 % CPU for ``seconds``: nothing else runs meanwhile."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


async def test_cpu_spike_the_node_catches_up_and_loses_nothing(tmp_path: Path, measure: Measure) -> None:
    record = measure("cpu_spike")
    with running_sim(tmp_path / "exchange", seed=SEED % 1000 + 2) as sim:
        async with local_node(tmp_path, sim) as node:
            if await seconds_to_the_hour(node.admin) < 240:
                pytest.skip("too close to the hourly roll-over for a clean measurement; rerun in a few minutes")
            await wait_until(node.quoting, timeout=60, what="quoting")
            async with TakerPump(sim, node.reader, SEED, interval_s=0.25).running() as pump:
                await wait_until(lambda: node.runtime.node.fills_seen >= 3, timeout=60, what="fills before the spike")
                fills, frames = node.runtime.node.fills_seen, node.ws.frames_received
                burners = burn_cpus(SPIKE_S)
                busy(SPIKE_S)
                for burner in burners:
                    burner.wait()
                ended = time.monotonic()
                await wait_until(node.quoting, timeout=60, what="quoting after the spike")
                record.recovered(time.monotonic() - ended)
                await wait_until(
                    lambda: node.runtime.node.fills_seen >= fills + 3, timeout=60, what="fills after the spike"
                )
            record.note(
                spike_s=SPIKE_S,
                burners=len(burners),
                ws_frames_after=node.ws.frames_received - frames,
                ws_reconnects=node.ws.reconnects,
                taker_fills=pump.filled,
            )
            check, problems = await node.data()
            record.lost(check.lost)
            assert check.ok, check.summary()
            assert problems == [], problems
