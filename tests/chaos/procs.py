"""The exchange and the node as separate processes: ``mmctl sim`` and ``mmctl run``, as an operator runs them.

* :func:`start_sim` runs ``mmctl sim`` (crowd on, fixed seed) on a free port and reads the ``rest:``, ``ws:``,
  ``key_id:`` and ``key_file:`` lines it prints;
* :func:`write_bundle` writes the node's resources: a ``kalshi`` Exchange (environment ``custom``) pointed at that
  simulator with ``allow_live: true``, its key by reference (the key id in an env var, the PEM file's path),
  and a MarketSelector whose Markets trade ``live`` — the production code path against a local exchange;
* :class:`NodeProcess` starts ``mmctl run -f DIR --state-dir D --api-port 0`` (optionally under resource limits),
  finds its control API through ``D/api-url`` and ``D/api-token``, and kills it (``-9``) or stops it (SIGTERM);
* :class:`External` gathers ground truth (the simulator's REST, signed) and the node's view (its API, its
  SQLite file) and compares them (:mod:`tests.chaos.invariants`).

The simulator runs at speed 1 from the current time: ``mmctl run`` against a non-embedded venue keeps its clock
on the wall clock, so a faster exchange clock would be clock drift by construction (and the node's time to
settlement would be wrong). Hourly markets close on the hour: :meth:`External.wait_clear_of_the_hour` keeps
kills away from the roll-over minutes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlparse

import httpx

from mm.adapters.kalshi.signer import KalshiSigner
from mm.clock import WallClock
from tests.chaos.exchange_client import Admin, SignedReader
from tests.chaos.invariants import DataCheck, RestingOrder, compare, duplicate_orders, read_db_fills

MMCTL = str(Path(sys.executable).with_name("mmctl"))
KEY_ENV = "CHAOS_SIM_KEY_ID"
HOUR_S = 3600


class LineReader:
    """Reads a pipe in a thread so the test can wait for a line with a timeout."""

    def __init__(self, stream: IO[str]) -> None:
        self._lines: queue.Queue[str] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put(line.rstrip("\n"))

    def next_line(self, timeout: float) -> str:
        try:
            return self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no line within {timeout} s") from None


@dataclass
class SimProcess:
    proc: subprocess.Popen[str]
    rest: str
    ws: str
    key_id: str
    key_file: str
    log: Path
    taker: tuple[str, str]
    """(key id, PEM file) of a second user, ``chaos-taker``, that the tests trade against us with."""

    @property
    def base_url(self) -> str:
        return self.rest.split("/trade-api/")[0]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def create_key(state_dir: Path, user: str) -> tuple[str, str]:
    """``mmctl sim keys create``: (key id, PEM file) of a new user of the simulator in ``state_dir``."""
    out = subprocess.run(
        [MMCTL, "sim", "keys", "create", "--state-dir", str(state_dir), "--user", user],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    fields = dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)
    return fields["key_id"], fields["key_file"]


@contextlib.contextmanager
def running_sim(directory: Path, *, seed: int, speed: float = 1.0, strikes: int = 3) -> Iterator[SimProcess]:
    """``mmctl sim`` with the crowd on, until the block ends."""
    directory.mkdir(parents=True, exist_ok=True)
    keys = directory / "sim"
    # the simulator serves the first registered key as its own: ours first, then the taker's
    create_key(keys, "mm-node")
    taker = create_key(keys, "chaos-taker")
    log = directory / "sim.log"
    cmd = [MMCTL, "sim", "--seed", str(seed), "--speed", str(speed), "--strikes", str(strikes), "--port", "0"]
    cmd += ["--state-dir", str(keys)]
    with log.open("w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
        try:
            assert proc.stdout is not None
            reader = LineReader(proc.stdout)
            fields = dict(reader.next_line(30).split(": ", 1) for _ in range(4))
            sim = SimProcess(proc, fields["rest"], fields["ws"], fields["key_id"], fields["key_file"], log, taker)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        try:
            yield sim
        finally:
            sim.stop()


def write_bundle(directory: Path, sim: SimProcess, *, max_concurrent: int = 2, node_extra: str = "") -> Path:
    """The node's resource files for trading live on ``sim`` (see the module docstring)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "bundle.yaml").write_text(f"""\
apiVersion: mm/v1alpha1
kind: Exchange
metadata: {{name: kx}}
spec:
  venue: kalshi
  environment: custom
  base_url: {sim.rest}
  ws_url: {sim.ws}
  api_key_env: {KEY_ENV}
  private_key_file: {sim.key_file}
  allow_live: true
  rate_limits: {{tier: prestige}}
---
apiVersion: mm/v1alpha1
kind: Strategy
metadata: {{name: s1}}
spec:
  components:
    volatility: {{type: fixed, params: {{volatility: 0.0001}}}}
    reservation_price: {{type: simple_mid, params: {{}}}}
    skew: {{type: none, params: {{}}}}
    spread: {{type: fixed, params: {{base_spread: 0.02}}}}
    sizer: {{type: fixed, params: {{base_size: 5}}}}
  max_inventory: 50
---
apiVersion: mm/v1alpha1
kind: RiskPolicy
metadata: {{name: r1}}
spec:
  rules:
    settlement_cutoff: {{cutoff_minutes: 1}}
    stale_data: {{max_age_seconds: 30}}
---
apiVersion: mm/v1alpha1
kind: MarketSelector
metadata: {{name: sel}}
spec:
  exchange_ref: kx
  series: [KXBTCD]
  filters: {{min_time_to_settlement: 3}}
  max_concurrent: {max_concurrent}
  selection_strategy: closest_to_even
  deactivate_before_close_minutes: 2
  template:
    strategy_ref: s1
    risk_policy_ref: r1
    execution: live
    deletion_policy: cancel_orders
---
apiVersion: mm/v1alpha1
kind: TradingNode
metadata: {{name: n1}}
spec:
  recovery:
    checkpoint_interval_seconds: 1
    auto_resume_threshold: {{position_contracts: 50, pnl_dollars: 50}}
{node_extra}""")
    return directory


@dataclass
class NodeProcess:
    """One ``mmctl run`` at a time over the same state dir (restartable)."""

    bundle: Path
    state_dir: Path
    sim: SimProcess
    preexec: Callable[[], None] | None = None
    proc: subprocess.Popen[bytes] | None = None
    started_ns: int = 0
    started_at: float = 0.0
    """Monotonic time of the last start."""
    runs: int = 0
    exit_codes: list[int] = field(default_factory=list)

    def start(self) -> float:
        """Start the node; returns the monotonic time it was started at."""
        assert self.proc is None or self.proc.poll() is not None, "a node is already running"
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.runs += 1
        env = {**os.environ, KEY_ENV: self.sim.key_id}
        cmd = [MMCTL, "run", "-f", str(self.bundle), "--state-dir", str(self.state_dir), "--api-port", "0"]
        log = (self.state_dir / f"run-{self.runs}.log").open("wb")
        self.started_ns = time.time_ns()
        self.started_at = time.monotonic()
        # preexec_fn only calls setrlimit (no lock, no allocation that a fork in a threaded parent could deadlock on)
        self.proc = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            preexec_fn=self.preexec,  # noqa: PLW1509
        )
        log.close()
        return self.started_at

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        """``kill -9``, then reap it (a zombie's pid still looks alive to the next run's lock check)."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.exit_codes.append(self.proc.wait())

    def terminate(self, timeout: float = 60.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        self.exit_codes.append(code)
        return code

    def api(self) -> tuple[str, str] | None:
        """(URL, token) once this run has written its api-url (an older run's file does not count)."""
        url_file = self.state_dir / "api-url"
        try:
            if url_file.stat().st_mtime_ns < self.started_ns:
                return None
            return url_file.read_text().strip(), (self.state_dir / "api-token").read_text().strip()
        except FileNotFoundError:
            return None

    def log_tail(self, lines: int = 40) -> str:
        path = self.state_dir / f"run-{self.runs}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


@dataclass
class Observation:
    """One look at both sides: the node's status and the exchange's resting orders of ours."""

    ready: bool
    not_ready: list[str]
    """``/ready``'s reasons when it is not."""
    status: dict[str, Any]
    resting: list[RestingOrder]

    @property
    def markets(self) -> dict[str, dict[str, Any]]:
        return dict(self.status.get("node", {}).get("markets_now", {}))

    def open_markets(self) -> set[str]:
        """The Markets not closed yet (a closed hour's Markets stay until the selector retires them)."""
        return {name for name, m in self.markets.items() if m["phase"] != "Closed"}

    def quoting(self) -> bool:
        """Ready, and every open Market quotes both sides at the exchange."""
        open_markets = self.open_markets()
        if not self.ready or not open_markets:
            return False
        for name in open_markets:
            market = self.markets[name]
            sides = {o.side for o in self.resting if o.ticker == market["ticker"]}
            if market["phase"] != "Quoting" or sides != {"bid", "ask"}:
                return False
        return True

    def positions(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for account in self.status.get("node", {}).get("accounts", []):
            if account.get("execution") == "live":
                for ticker, qty in account.get("positions", {}).items():
                    out[ticker] = int(Decimal(qty) * 100)
        return out

    def open_orders(self) -> int:
        return sum(a.get("open_orders", 0) for a in self.status.get("node", {}).get("accounts", []))


class External:
    """The test's view of a node process and its exchange process (see the module docstring)."""

    def __init__(self, sim: SimProcess, node: NodeProcess) -> None:
        self.sim = sim
        self.node = node
        self.reader = SignedReader(sim.rest, sim.key_id, sim.key_file)
        self.http = httpx.AsyncClient(timeout=5.0)
        self._admin_http = httpx.AsyncClient(base_url=sim.base_url, timeout=5.0)
        self.admin = Admin(self._admin_http)

    async def aclose(self) -> None:
        await self.http.aclose()
        await self._admin_http.aclose()
        self.reader.close()

    async def observe(self) -> Observation | None:
        api = self.node.api()
        if api is None or not self.node.alive():
            return None
        url, token = api
        headers = {"Authorization": f"Bearer {token}"}
        try:
            answer = await self.http.get(f"{url}/ready", headers=headers)
            status = (await self.http.get(f"{url}/status", headers=headers)).json()
        except httpx.HTTPError:
            return None
        reasons = [] if answer.status_code == 200 else list(answer.json().get("reasons", []))
        return Observation(answer.status_code == 200, reasons, status, self.reader.resting())

    async def wait_for(self, predicate: Callable[[Observation], bool], timeout: float, what: str) -> Observation:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            seen = await self.observe()
            if seen is not None and predicate(seen):
                return seen
            if seen is not None and seen.status.get("node", {}).get("kill_switch"):
                raise AssertionError(f"the node tripped its kill switch waiting for {what}: {seen.not_ready}")
            if not self.node.alive():
                raise AssertionError(
                    f"the node exited ({self.node.proc and self.node.proc.returncode}) waiting for "
                    f"{what}:\n{self.node.log_tail()}"
                )
            if loop.time() >= deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}; last: {seen and seen.markets}")
            await asyncio.sleep(0.05)  # polling the node's API for the condition, bounded by the deadline

    async def seconds_to_the_hour(self) -> float:
        return await seconds_to_the_hour(self.admin)

    async def wait_clear_of_the_hour(self, margin_s: float = 240.0) -> None:
        """If the hourly markets are within ``margin_s`` of closing, wait until the next hour's are quoted."""
        left = await self.seconds_to_the_hour()
        if left >= margin_s:
            return
        before = (await self.wait_for(lambda o: o.ready, 30, "ready")).open_markets()
        await self.wait_for(
            lambda o: o.quoting() and not o.open_markets() & before, left + 120, "the next hour's markets quoted"
        )

    async def data(self, timeout: float = 20.0) -> tuple[DataCheck, list[str], Observation | None]:
        """Compare the exchange with the node (running or stopped) until they agree or ``timeout`` passes:
        (the data check, problems with our resting orders, the last observation)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        database = self.node.state_dir / "mmctl.db"
        while True:
            fills = self.reader.fills()
            positions = self.reader.positions()
            seen = await self.observe() if self.node.alive() else None
            node_positions = seen.positions() if seen is not None else None
            check = compare(fills, positions, read_db_fills(database), node_positions, settled=self.reader.settled())
            resting = seen.resting if seen is not None else self.reader.resting()
            problems = duplicate_orders(resting)
            if seen is not None:
                wanted = {m["ticker"] for m in seen.markets.values()}
                problems += [
                    f"{o.client_order_id} rests on {o.ticker}, not a Market of the node"
                    for o in resting
                    if o.ticker not in wanted
                ]
                if seen.open_orders() != len(resting):
                    problems.append(
                        f"the node tracks {seen.open_orders()} open orders, the exchange has {len(resting)}"
                    )
            if (check.ok and not problems) or loop.time() >= deadline:
                return check, problems, seen
            await asyncio.sleep(0.1)  # polling until both sides agree (fills keep arriving), bounded above


class TakerPump:
    """The ``chaos-taker`` user hits one of our resting orders (seeded choice) with an IOC order every
    ``interval_s``, over the simulator's signed REST API: fills happen all along, whoever else trades."""

    def __init__(self, sim: SimProcess, reader: SignedReader, seed: int, interval_s: float = 0.5) -> None:
        self.sim = sim
        self.reader = reader
        self.rng = random.Random(seed)
        self.interval_s = interval_s
        key_id, key_file = sim.taker
        self.signer = KalshiSigner.from_file(key_id, key_file)
        self.path = urlparse(sim.rest).path + "/portfolio/events/orders"
        self.http = httpx.Client(timeout=5.0)
        self.wall = WallClock()
        self.sent = 0
        self.filled = 0

    def hit(self) -> bool:
        ours = sorted(self.reader.resting(), key=lambda o: o.client_order_id)
        if not ours:
            return False
        order = self.rng.choice(ours)
        self.sent += 1
        body = {
            "ticker": order.ticker,
            "client_order_id": f"taker-{self.sent}-{self.rng.randrange(1 << 30)}",
            "side": "ask" if order.side == "bid" else "bid",
            "price": str(Decimal(order.price).scaleb(-4)),
            "count": "1.00",
            "time_in_force": "immediate_or_cancel",
            "self_trade_prevention_type": "maker",
        }
        headers = self.signer.headers("POST", self.path, self.wall.now_us() // 1000)
        response = self.http.post(self.sim.rest + "/portfolio/events/orders", json=body, headers=headers)
        if response.status_code == 201 and Decimal(response.json().get("fill_count", "0")) > 0:
            self.filled += 1
        return True

    async def run(self) -> None:
        try:
            while True:
                await asyncio.sleep(self.interval_s)  # the taker's pace
                with contextlib.suppress(httpx.HTTPError):
                    self.hit()
        finally:
            self.http.close()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[TakerPump]:
        task = asyncio.create_task(self.run(), name="taker-pump")
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def seconds_to_the_hour(admin: Admin) -> float:
    """Until the hourly markets close (on the simulator's clock)."""
    now_s = await admin.now_us() / 1e6
    return HOUR_S - now_s % HOUR_S


def burn_cpus(seconds: float, count: int | None = None) -> list[subprocess.Popen[bytes]]:
    """``count`` (default: every CPU) processes spinning at 100 % for ``seconds``."""
    code = f"import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end:\n    pass\n"
    return [subprocess.Popen([sys.executable, "-c", code]) for _ in range(count or os.cpu_count() or 1)]


@contextlib.asynccontextmanager
async def node_on_sim(
    tmp_path: Path, *, seed: int, preexec: Callable[[], None] | None = None, node_extra: str = ""
) -> AsyncIterator[External]:
    """``mmctl sim`` and a started ``mmctl run`` against it; on exit the node is stopped (SIGTERM, or killed if
    it will not stop) and then the simulator."""
    with running_sim(tmp_path / "exchange", seed=seed) as sim:
        bundle = write_bundle(tmp_path / "bundle", sim, node_extra=node_extra)
        node = NodeProcess(bundle, tmp_path / "node", sim, preexec=preexec)
        node.start()
        ext = External(sim, node)
        try:
            yield ext
        finally:
            if node.alive():
                try:
                    node.terminate(60)
                except subprocess.TimeoutExpired:
                    node.kill9()
            await ext.aclose()
