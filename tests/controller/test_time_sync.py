"""The NTP clock check (mm.controller.time_sync, NFR-203) against a real SNTP server on loopback UDP.

The server below is written from RFC 4330 with ``struct`` (not with ntplib, which is the client under test): it
answers with its clock plus a known offset, and can stay silent, answer late, or answer as an unsynchronised or
kiss-of-death server. ntplib really talks to it, so these tests cover the packet exchange, the offset maths on
the Clock the monitor is given, the fallback order, and the events, holds and gauge that follow.
"""

from __future__ import annotations

import asyncio
import logging
import math
import socket
import struct
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, cast

import pytest

from mm.clock import Clock, SimulatedClock, WallClock
from mm.controller.node import NodeContext
from mm.controller.resources import ResourceStore
from mm.controller.time_sync import (
    HOLD_KEY,
    NTP_PORT,
    NtplibQuery,
    NtpSample,
    TimeSyncMonitor,
    parse_server,
)
from mm.observability.metrics import Metrics
from mm.specs.node import TradingNodeSpec
from tests.controller.harness import wait_until

NTP_EPOCH_OFFSET_S = 2_208_988_800  # 1900-01-01 → 1970-01-01
US = 1_000_000


def ntp_timestamp(us: int) -> bytes:
    seconds, rest = divmod(us, US)
    return struct.pack("!II", seconds + NTP_EPOCH_OFFSET_S, rest * 2**32 // US)


@dataclass(eq=False)
class SntpServer(asyncio.DatagramProtocol):
    """An SNTP server on 127.0.0.1: its time is ``clock`` + ``offset_us``."""

    clock: Clock = field(default_factory=WallClock)
    offset_us: int = 0
    stratum: int = 2
    leap: int = 0
    answer: bool = True
    hold_reply_s: float = 0.0
    """Stamp the transmit time, then wait this long before sending (a slow return path)."""
    requests: int = 0
    request_times_ns: list[int] = field(default_factory=list)
    port: int = 0
    transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        received_us = self.clock.now_us() + self.offset_us
        self.requests += 1
        self.request_times_ns.append(self.clock.monotonic_ns())
        if not self.answer or len(data) < 48 or self.transport is None:
            return
        version = (data[0] >> 3) & 0x7
        header = struct.pack("!BBbbII4s", (self.leap << 6) | (version << 3) | 4, self.stratum, 6, -20, 0, 0, b"TEST")
        transmit_us = self.clock.now_us() + self.offset_us
        # reference time, the client's transmit time echoed as "originate", receive time, transmit time
        reply = header + ntp_timestamp(transmit_us - US) + data[40:48] + ntp_timestamp(received_us)
        reply += ntp_timestamp(transmit_us)
        assert len(reply) == 48
        if self.hold_reply_s:
            asyncio.get_running_loop().call_later(self.hold_reply_s, self.transport.sendto, reply, addr)
        else:
            self.transport.sendto(reply, addr)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


class SkewedClock(Clock):
    """Real time shifted by ``skew_us`` (a node whose clock is off)."""

    def __init__(self, skew_us: int) -> None:
        self.skew_us = skew_us
        self._base = WallClock()

    def now_us(self) -> int:
        return self._base.now_us() + self.skew_us

    def monotonic_ns(self) -> int:
        return self._base.monotonic_ns()


@pytest.fixture
async def ntp_servers() -> AsyncIterator[Callable[..., asyncio.Future[SntpServer]]]:
    loop = asyncio.get_running_loop()
    started: list[SntpServer] = []

    async def start(**options: Any) -> SntpServer:
        server = SntpServer(**options)
        transport, _ = await loop.create_datagram_endpoint(lambda: server, local_addr=("127.0.0.1", 0))
        server.port = transport.get_extra_info("sockname")[1]
        started.append(server)
        return server

    yield start  # type: ignore[misc]
    for server in started:
        if server.transport is not None:
            server.transport.close()


def closed_port() -> str:
    """A loopback UDP port nobody listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"127.0.0.1:{port}"


class Setup:
    """A node (simulated market clock, real metrics) and a mutable TradingNode spec for hot reloads."""

    def __init__(self, **time_sync: Any) -> None:
        clock = SimulatedClock(1_786_000_000_000_000)
        self.metrics = Metrics()
        self.node = NodeContext(clock, ResourceStore(clock), metrics=self.metrics)
        self.spec: TradingNodeSpec | None = None
        self.reload(**time_sync)

    def reload(self, **time_sync: Any) -> None:
        self.spec = TradingNodeSpec.model_validate({"time_sync": time_sync})

    def monitor(self, wall: Clock | None = None, **options: Any) -> TimeSyncMonitor:
        options.setdefault("timeout_s", 0.5)
        return TimeSyncMonitor(self.node, lambda: self.spec, wall or WallClock(), **options)

    def reasons(self, subject: str = "ntp") -> list[str]:
        return [reason for _, subj, reason, _ in self.node.events if subj == subject]

    def message(self, reason: str) -> str:
        return next(msg for _, _, r, msg in self.node.events if r == reason)

    @property
    def gauge(self) -> float | None:
        return self.metrics.registry.get_sample_value("mm_clock_drift_seconds")


# ---------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        ("time.aws.amazon.com", ("time.aws.amazon.com", NTP_PORT)),
        ("pool.ntp.org:1123", ("pool.ntp.org", 1123)),
        ("127.0.0.1:50123", ("127.0.0.1", 50123)),
        ("[::1]:50123", ("::1", 50123)),
        ("[::1]", ("::1", NTP_PORT)),
        ("fd00::123", ("fd00::123", NTP_PORT)),
    ],
)
def test_server_strings(server: str, expected: tuple[str, int]) -> None:
    assert parse_server(server) == expected


@pytest.mark.parametrize("server", ["", "host:", "host:0", "host:70000", "host:ntp", "[::1", "[::1]x", ":123", "a:b:c"])
def test_bad_server_strings_are_refused(server: str) -> None:
    with pytest.raises(ValueError):
        parse_server(server)


# ---------------------------------------------------------------------- the measurement


async def test_the_offset_to_a_real_sntp_server_is_measured_within_its_error_bound(ntp_servers: Any) -> None:
    server = await ntp_servers(offset_us=1_234_567, stratum=3)
    sample = await asyncio.to_thread(NtplibQuery(WallClock()), server.address, 1.0)
    assert server.requests == 1
    assert sample.server == server.address and sample.stratum == 3
    # both ends read the same real clock, so the estimate is off by at most half the round trip (+ rounding)
    assert abs(sample.offset_us - 1_234_567) <= sample.error_us + 2
    assert 0 <= sample.delay_us < 200_000


async def test_the_offset_is_measured_on_the_clock_given_not_the_system_clock(ntp_servers: Any) -> None:
    server = await ntp_servers()  # the true time
    sample = await asyncio.to_thread(NtplibQuery(SkewedClock(+300_000)), server.address, 1.0)
    assert abs(sample.offset_us - -300_000) <= sample.error_us + 2  # our clock is 0.3 s ahead: offset −0.3 s
    assert "ahead of NTP" in sample.describe()


@pytest.mark.parametrize(
    ("options", "why"),
    [
        ({"stratum": 0}, "kiss-of-death"),
        ({"stratum": 16}, "stratum 16"),
        ({"leap": 3}, "leap indicator 3"),
    ],
)
async def test_unusable_replies_are_refused_and_the_next_server_is_asked(
    ntp_servers: Any, options: dict[str, int], why: str
) -> None:
    bad = await ntp_servers(offset_us=50_000_000, **options)
    good = await ntp_servers(offset_us=20_000)
    setup = Setup(ntp_servers=[bad.address, good.address])
    monitor = setup.monitor()
    sample = await monitor.check()
    assert sample is not None and sample.server == good.address
    assert bad.requests == 1 and why in monitor.last_failures[bad.address]
    assert abs(sample.offset_us - 20_000) <= sample.error_us + 2


async def test_servers_are_asked_in_order_and_the_first_answer_wins(ntp_servers: Any) -> None:
    silent = await ntp_servers(answer=False)
    first = await ntp_servers(offset_us=10_000)
    second = await ntp_servers(offset_us=90_000_000)
    unreachable = closed_port()
    setup = Setup(ntp_servers=[silent.address, unreachable, first.address, second.address])
    monitor = setup.monitor(timeout_s=0.3)
    sample = await monitor.check()
    assert sample is not None and sample.server == first.address
    assert silent.requests == 1 and first.requests == 1 and second.requests == 0
    assert set(monitor.last_failures) == {silent.address, unreachable}
    assert monitor.last_failures[silent.address] == "no answer within 0.3 s"
    assert setup.reasons() == []  # one server answered: nothing to report


# ---------------------------------------------------------------------- the rules


async def test_drift_over_the_limit_warns_once_and_clears_when_back_under(ntp_servers: Any) -> None:
    server = await ntp_servers(offset_us=500_000)
    setup = Setup(ntp_servers=[server.address], max_drift_ms=100, action_on_drift="warn")
    monitor = setup.monitor()
    await monitor.check()
    await monitor.check()
    assert setup.reasons() == ["ClockDrift"]  # one episode, one event
    assert "behind NTP" in setup.message("ClockDrift") and "over the 100 ms allowed (warning only)" in (
        setup.message("ClockDrift")
    )
    assert setup.gauge is not None and abs(setup.gauge - 0.5) < 0.05
    assert not setup.node.holds.blocked  # warn: no hold

    server.offset_us = 20_000
    await monitor.check()
    assert setup.reasons() == ["ClockDrift", "ClockDriftCleared"]
    assert setup.gauge is not None and abs(setup.gauge - 0.02) < 0.05
    assert monitor.drift is None


async def test_pause_trading_holds_every_market_and_releases_when_the_clock_is_back(ntp_servers: Any) -> None:
    server = await ntp_servers(offset_us=-2_000_000)  # we are 2 s ahead
    setup = Setup(ntp_servers=[server.address], max_drift_ms=100, action_on_drift="pause_trading")
    setup.node.holds.set("shutdown", "draining", 1)
    monitor = setup.monitor()
    await monitor.check()
    hold = setup.node.holds.get(HOLD_KEY)
    assert hold is not None and "ahead of NTP" in hold.reason
    assert setup.reasons() == ["ClockDrift"] and "(trading paused)" in setup.message("ClockDrift")
    assert setup.reasons("TradingNode")[-1] == "TradingHeld"

    await monitor.check()  # still drifting: the hold stays, no new events
    assert setup.reasons() == ["ClockDrift"] and setup.reasons("TradingNode").count("TradingHeld") == 2

    server.offset_us = 0
    await monitor.check()
    assert setup.node.holds.get(HOLD_KEY) is None
    assert setup.reasons() == ["ClockDrift", "ClockDriftCleared"]
    assert setup.node.holds.get("shutdown") is not None  # someone else's hold is not ours to clear


async def test_a_slow_asymmetric_answer_is_no_proof_of_drift(ntp_servers: Any) -> None:
    # The server's clock is right, but its reply waits 0.4 s after being stamped: the estimate is about
    # −0.2 s with an error bound of about ±0.2 s, which does not prove the clock is 0.1 s off.
    server = await ntp_servers(hold_reply_s=0.4)
    setup = Setup(ntp_servers=[server.address], max_drift_ms=100, action_on_drift="pause_trading")
    sample = await setup.monitor(timeout_s=2.0).check()
    assert sample is not None and sample.offset_us < -100_000  # a naive |offset| > limit would have paused
    assert setup.reasons() == [] and not setup.node.holds.blocked


async def test_hot_reloaded_actions_apply_at_the_next_check(ntp_servers: Any) -> None:
    server = await ntp_servers(offset_us=1_000_000)
    setup = Setup(ntp_servers=[server.address], action_on_drift="pause_trading")
    monitor = setup.monitor()
    await monitor.check()
    assert setup.node.holds.get(HOLD_KEY) is not None

    setup.reload(ntp_servers=[server.address], action_on_drift="warn")
    await monitor.check()
    assert setup.node.holds.get(HOLD_KEY) is None and setup.reasons() == ["ClockDrift"]  # still drifting

    setup.reload(ntp_servers=[server.address], action_on_drift="ignore")
    await monitor.check()
    setup.reload(ntp_servers=[server.address], action_on_drift="pause_trading", max_drift_ms=5000)
    await monitor.check()  # 1 s is within 5 s: a fresh start, nothing to report
    assert setup.reasons() == ["ClockDrift"] and not setup.node.holds.blocked


async def test_ignore_measures_and_exports_but_raises_and_holds_nothing(ntp_servers: Any) -> None:
    server = await ntp_servers(offset_us=3_000_000)
    setup = Setup(ntp_servers=[server.address, closed_port()], action_on_drift="ignore")
    monitor = setup.monitor(timeout_s=0.2)
    await monitor.check()
    assert setup.gauge is not None and abs(setup.gauge - 3.0) < 0.05
    server.answer = False
    await monitor.check()
    assert setup.node.events == [] and not setup.node.holds.blocked


# ---------------------------------------------------------------------- no network


async def test_no_server_answering_is_one_warning_per_episode_never_an_exception(ntp_servers: Any) -> None:
    server = await ntp_servers(answer=False)
    setup = Setup(ntp_servers=[server.address, closed_port(), "ntp.unresolvable.invalid"])
    monitor = setup.monitor(timeout_s=0.2)
    for _ in range(3):
        assert await monitor.check() is None
    assert setup.reasons() == ["TimeSyncUnavailable"] and monitor.available is False
    assert monitor.errors == 0 and monitor.checks == 3  # "no answer" is not an error of ours
    assert len(monitor.last_failures) == 3 and "ntp.unresolvable.invalid" in setup.message("TimeSyncUnavailable")
    assert setup.gauge is not None and math.isnan(setup.gauge)  # a gap, not a stale number

    server.answer = True
    assert await monitor.check() is not None
    assert setup.reasons() == ["TimeSyncUnavailable", "TimeSyncRestored"] and monitor.available is True
    assert setup.gauge is not None and not math.isnan(setup.gauge)

    server.answer = False
    await monitor.check()
    assert setup.reasons() == ["TimeSyncUnavailable", "TimeSyncRestored", "TimeSyncUnavailable"]


async def test_a_drift_hold_is_kept_while_no_server_answers(ntp_servers: Any) -> None:
    server = await ntp_servers(offset_us=1_000_000)
    setup = Setup(ntp_servers=[server.address], action_on_drift="pause_trading")
    monitor = setup.monitor(timeout_s=0.2)
    await monitor.check()
    server.answer = False
    await monitor.check()
    assert setup.node.holds.get(HOLD_KEY) is not None  # proven off, not assumed fixed
    monitor.release()
    assert not setup.node.holds.blocked


async def test_a_query_stuck_in_its_thread_is_not_started_again_until_it_returns() -> None:
    release = threading.Event()
    calls: list[str] = []

    def stuck_query(server: str, timeout_s: float) -> NtpSample:
        calls.append(server)
        release.wait(10)  # a DNS lookup that hangs
        return NtpSample(server, 5_000, 1_000, 2)

    setup = Setup(ntp_servers=["hangs.example"])
    monitor = setup.monitor(query=stuck_query, timeout_s=0.2)
    assert await monitor.check() is None
    assert monitor.last_failures == {"hangs.example": "no answer within 0.2 s"}
    assert await monitor.check() is None
    assert monitor.last_failures == {"hangs.example": "the previous query has not returned yet"}
    assert calls == ["hangs.example"]

    release.set()
    for thread in threading.enumerate():
        if thread.name == "ntp-query hangs.example":
            thread.join(5)
    sample = await monitor.check()
    assert sample is not None and sample.offset_us == 5_000 and len(calls) == 2


async def test_a_broken_query_or_spec_never_raises() -> None:
    def broken(server: str, timeout_s: float) -> NtpSample:
        raise RuntimeError("bug in the query")

    setup = Setup(ntp_servers=["a.example"])
    monitor = setup.monitor(query=broken)
    assert await monitor.check() is None
    assert monitor.last_failures == {"a.example": "bug in the query"} and setup.reasons() == ["TimeSyncUnavailable"]

    def no_spec() -> TradingNodeSpec | None:
        raise RuntimeError("resource store broken")

    odd = TimeSyncMonitor(setup.node, no_spec, WallClock(), query=broken)
    assert await odd.check() is None and odd.errors == 1 and odd.checks == 1
    assert await odd.startup_check() is None and odd.errors == 2


# ---------------------------------------------------------------------- start-up, the loop, wiring


async def test_startup_check_logs_the_offset(ntp_servers: Any, caplog: pytest.LogCaptureFixture) -> None:
    server = await ntp_servers(offset_us=40_000)
    setup = Setup(ntp_servers=[server.address], action_on_drift="pause_trading")
    with caplog.at_level(logging.INFO, logger="mm.controller.node"):
        sample = await setup.monitor().startup_check()
    assert sample is not None and setup.reasons() == ["TimeSyncChecked"]
    assert "start-up: clock 0.04" in caplog.text and f"behind NTP {server.address}" in caplog.text
    assert not setup.node.holds.blocked  # 40 ms is within the 100 ms default


async def test_startup_check_holds_before_trading_when_drifting(ntp_servers: Any) -> None:
    server = await ntp_servers(offset_us=-700_000)
    setup = Setup(ntp_servers=[server.address], action_on_drift="pause_trading")
    await setup.monitor().startup_check()
    assert setup.node.holds.get(HOLD_KEY) is not None
    assert setup.reasons() == ["ClockDrift", "TimeSyncChecked"]


async def test_startup_check_without_network_warns_and_returns(caplog: pytest.LogCaptureFixture) -> None:
    setup = Setup(ntp_servers=[closed_port()])
    with caplog.at_level(logging.WARNING):
        assert await setup.monitor(timeout_s=0.2).startup_check() is None
    assert setup.reasons() == ["TimeSyncUnavailable"]
    assert "start-up clock check: no NTP server answered" in caplog.text and "trading anyway" in caplog.text


async def test_no_servers_configured_turns_the_check_off(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[str] = []

    def query(server: str, timeout_s: float) -> NtpSample:
        calls.append(server)
        return NtpSample(server, 0, 0, 1)

    setup = Setup(ntp_servers=[])
    monitor = setup.monitor(query=query)
    with caplog.at_level(logging.INFO):
        assert await monitor.startup_check() is None
    assert calls == [] and setup.node.events == [] and not monitor.enabled
    assert "time_sync.ntp_servers is empty" in caplog.text


async def test_run_checks_every_interval(ntp_servers: Any) -> None:
    server = await ntp_servers()
    setup = Setup(ntp_servers=[server.address], check_interval_seconds=Decimal("0.2"))
    monitor = setup.monitor()
    task = asyncio.create_task(monitor.run())
    try:
        await wait_until(lambda: server.requests >= 4, timeout=5.0, what="4 NTP requests")
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    gaps = [b - a for a, b in zip(server.request_times_ns, server.request_times_ns[1:], strict=False)]
    assert all(gap >= 190_000_000 for gap in gaps), gaps  # no faster than the interval
    assert monitor.errors == 0


async def test_a_hot_reloaded_interval_cuts_a_long_wait_short(ntp_servers: Any) -> None:
    server = await ntp_servers()
    setup = Setup(ntp_servers=[server.address], check_interval_seconds=3600)
    monitor = setup.monitor()
    task = asyncio.create_task(monitor.run())
    try:
        # the first check runs at once; then an hour's wait begins
        await wait_until(lambda: monitor.checks == 1, timeout=5.0, what="the first check")
        assert server.requests == 1
        setup.reload(ntp_servers=[server.address], check_interval_seconds=Decimal("0.05"))
        await wait_until(lambda: server.requests >= 2, timeout=3.0, what="a second NTP request")  # not an hour later
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_run_survives_a_broken_spec() -> None:
    def no_spec() -> TradingNodeSpec | None:
        raise RuntimeError("resource store broken")

    setup = Setup()
    monitor = TimeSyncMonitor(setup.node, no_spec, WallClock())
    task = asyncio.create_task(monitor.run())
    try:
        await wait_until(lambda: monitor.checks == 1, timeout=5.0, what="the first check")
        for _ in range(5):  # let the loop go round to its next wait
            await asyncio.sleep(0)
        assert not task.done() and monitor.errors == 1
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_set_drift_receives_the_offset_instead_of_the_gauge(ntp_servers: Any) -> None:
    server = await ntp_servers(offset_us=250_000)
    setup = Setup(ntp_servers=[server.address])
    seen: list[float] = []
    await setup.monitor(set_drift=seen.append).check()
    assert len(seen) == 1 and abs(seen[0] - 0.25) < 0.05
    assert setup.gauge == 0.0  # untouched
