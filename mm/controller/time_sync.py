"""The NTP clock check (NFR-203): how far the node's clock is from an NTP reference, and what to do about it.

:class:`TimeSyncMonitor` asks the TradingNode's ``time_sync.ntp_servers`` in order — the first that gives a
usable answer wins — every ``time_sync.check_interval_seconds`` (the spec is read on every check, so a hot
reload applies from the next one). A server is ``host`` (port 123), ``host:port``, ``[v6addr]:port`` or a bare
IPv6 address.

**The measurement.** ntplib sends the SNTP request and decodes the reply; it is synchronous, so each query runs
in a daemon thread awaited with ``timeout_s`` (the socket's timeout too). The name is resolved before the
exchange is timed, and the offset and round trip are computed from the server's receive and transmit
timestamps (``t2``, ``t3``) and *our* :class:`~mm.clock.Clock` read just before sending and just after the reply
(``t1``, ``t4``) — never from ntplib's own reading of the system clock::

    offset = ((t2 - t1) + (t3 - t4)) / 2      # reference clock - ours: positive when we are behind
    delay  = (t4 - t1) - (t3 - t2)            # round trip; the true offset is within offset ± delay / 2

A reply that is not a server's (mode 4), comes from stratum 0 (a "kiss of death") or 16+, carries the leap
indicator 3 (server unsynchronised) or no transmit timestamp is refused and the next server is asked.

**The rules** (``time_sync.action_on_drift``; ``max`` = ``max_drift_ms``):

* drifting when the measurement *proves* ``|offset| > max`` (``|offset| - delay/2 > max``, so a slow,
  asymmetric answer never raises a false alarm) → a warning event ``ClockDrift`` (subject ``ntp``; the node
  maps it to the ``clock_drift`` alert), once per episode; with ``pause_trading`` also the node-wide hold
  ``clock_drift/ntp`` (every Market cancels its quotes and waits). Over when the estimate is back within
  ``max`` → ``ClockDriftCleared`` and the hold is cleared. Switching to ``warn`` clears the hold at once;
* ``ignore``: the offset is still measured and exported, but nothing is raised or held;
* no server answers (no network, DNS failure, timeouts, refused replies) → a warning ``TimeSyncUnavailable``
  once per episode and ``TimeSyncRestored`` when one answers again. Never an exception: the drift state and
  any hold are kept as they were (an offset proven wrong is not assumed fixed because we can no longer see it);
* no ``ntp_servers`` → the check is off (any hold of ours is cleared).

Every measured offset is passed to ``set_drift`` (seconds; default the ``mm_clock_drift_seconds`` gauge, whose
help text is "Clock offset from NTP reference"), and NaN while no server answers, so a dashboard shows a gap
rather than a stale number. :meth:`TimeSyncMonitor.startup_check` is one check before trading starts that logs
the offset (or a warning) and reports ``TimeSyncChecked``. Wiring: ``docs/time-sync.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import logging
import math
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, TypeVar

import ntplib  # type: ignore[import-untyped]

from mm.clock import Clock
from mm.controller.node import NodeContext
from mm.specs.node import TimeSync, TradingNodeSpec

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "HOLD_KEY",
    "NTP_PORT",
    "SUBJECT",
    "NtpError",
    "NtpQuery",
    "NtpSample",
    "NtplibQuery",
    "TimeSyncMonitor",
    "parse_server",
]

_logger = logging.getLogger(__name__)

NTP_PORT: Final = 123
HOLD_KEY: Final = "clock_drift/ntp"
"""The hold this monitor sets with ``action_on_drift: pause_trading`` (the exchange-clock one is ``clock_drift``)."""
SUBJECT: Final = "ntp"
"""The subject of this monitor's events (and so of the alerts they raise)."""
DEFAULT_TIMEOUT_S: Final = 1.0
"""Seconds one server has to answer. An NTP round trip is milliseconds; a server silent for a second is down."""
_NTP_VERSION: Final = 3
_MODE_SERVER: Final = 4
_LEAP_ALARM: Final = 3
_MAX_STRATUM: Final = 15
_US: Final = 1_000_000
_NTP_DELTA_S: Final[int] = ntplib.NTP.NTP_DELTA
"""Seconds from the NTP era (1900) to the Unix epoch."""

_T = TypeVar("_T")


class NtpError(Exception):
    """A server gave no usable answer."""


@dataclass(frozen=True, slots=True)
class NtpSample:
    """One NTP measurement of our clock (the :class:`~mm.clock.Clock` the query was given)."""

    server: str
    offset_us: int
    """Reference clock minus ours, microseconds: positive when our clock is behind."""
    delay_us: int
    """Round trip minus the server's processing time, microseconds (never negative)."""
    stratum: int

    @property
    def error_us(self) -> int:
        """The true offset is within ``offset_us ± error_us`` (half the round trip)."""
        return (self.delay_us + 1) // 2

    @property
    def offset_s(self) -> float:
        return self.offset_us / _US

    def describe(self) -> str:
        """``clock 0.250000 s behind NTP 10.0.0.1 (±0.000120 s, stratum 2)``."""
        way = "behind" if self.offset_us > 0 else "ahead of"
        return (
            f"clock {abs(self.offset_us) / _US:.6f} s {way} NTP {self.server} "
            f"(±{self.error_us / _US:.6f} s, stratum {self.stratum})"
        )


NtpQuery = Callable[[str, float], NtpSample]
"""(server, timeout seconds) → a sample, or an exception. Synchronous: the monitor runs it in a thread."""


def parse_server(server: str) -> tuple[str, int]:
    """``host`` → (host, 123); ``host:port``, ``[v6]:port``, ``[v6]`` and a bare IPv6 address are understood."""
    text = server.strip()
    if not text:
        raise ValueError("empty NTP server")
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not host:
            raise ValueError(f"NTP server {server!r}: unbalanced brackets")
        if not rest:
            return host, NTP_PORT
        if not rest.startswith(":"):
            raise ValueError(f"NTP server {server!r}: expected ':port' after ']'")
        return host, _port(server, rest[1:])
    if text.count(":") > 1:  # a bare IPv6 address: no port possible without brackets
        ipaddress.IPv6Address(text)
        return text, NTP_PORT
    host, sep, port = text.partition(":")
    if not host:
        raise ValueError(f"NTP server {server!r}: no host")
    return host, _port(server, port) if sep else NTP_PORT


def _port(server: str, text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"NTP server {server!r}: port {text!r} is not a number in 1-65535")
    return int(text)


def _ntp_to_us(timestamp: float) -> int:
    """An NTP-era timestamp as ntplib decodes it (seconds since 1900, float) → µs since the Unix epoch."""
    return round((timestamp - _NTP_DELTA_S) * _US)


class NtplibQuery:
    """The default query: one SNTP exchange through ntplib, timed with ``wall`` (see the module docstring)."""

    def __init__(self, wall: Clock) -> None:
        self._wall = wall

    def __call__(self, server: str, timeout_s: float) -> NtpSample:
        host, port = parse_server(server)
        # Resolve first: a DNS lookup inside the timed exchange would count as network delay.
        address = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0][4][0]
        client = ntplib.NTPClient()
        t1 = self._wall.now_us()
        try:
            stats = client.request(address, version=_NTP_VERSION, port=port, timeout=timeout_s)
        except ntplib.NTPException as exc:  # its only two: no reply within the timeout, or a malformed one
            message = f"no answer within {timeout_s:g} s" if "No response" in str(exc) else str(exc)
            raise NtpError(message) from exc
        t4 = self._wall.now_us()
        mode, stratum, leap, tx = int(stats.mode), int(stats.stratum), int(stats.leap), float(stats.tx_timestamp)
        if mode != _MODE_SERVER:
            raise NtpError(f"not a server reply (mode {mode})")
        if stratum == 0:
            raise NtpError("kiss-of-death reply (stratum 0)")
        if stratum > _MAX_STRATUM:
            raise NtpError(f"server unsynchronised (stratum {stratum})")
        if leap == _LEAP_ALARM:
            raise NtpError("server unsynchronised (leap indicator 3)")
        if tx == 0:
            raise NtpError("reply without a transmit timestamp")
        t2, t3 = _ntp_to_us(float(stats.recv_timestamp)), _ntp_to_us(tx)
        offset = ((t2 - t1) + (t3 - t4)) // 2
        delay = max(0, (t4 - t1) - (t3 - t2))
        return NtpSample(server, offset, delay, stratum)


class TimeSyncMonitor:
    """Measure the node's clock against NTP and warn, hold or ignore (see the module docstring)."""

    def __init__(
        self,
        node: NodeContext,
        node_spec: Callable[[], TradingNodeSpec | None],
        wall: Clock,
        *,
        query: NtpQuery | None = None,
        set_drift: Callable[[float], None] | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        """``node_spec`` returns the current TradingNode spec (None: defaults); ``wall`` is the clock being
        checked and the one that times the checks (real time: the node's ``clock`` may be accelerated);
        ``query`` replaces the ntplib exchange; ``set_drift`` receives every offset in seconds (default: the
        node's ``mm_clock_drift_seconds`` gauge, nothing without metrics); ``timeout_s`` is per server."""
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        self._node = node
        self._node_spec = node_spec
        self._wall = wall
        self._query: NtpQuery = query if query is not None else NtplibQuery(wall)
        if set_drift is None and node.metrics is not None:
            set_drift = node.metrics.clock_drift.set
        self._set_drift = set_drift
        self.timeout_s = timeout_s
        self.checks = 0
        """Checks done (each asks the servers until one answers)."""
        self.errors = 0
        """Checks that failed with an unexpected error (logged); the monitor went on."""
        self.last_sample: NtpSample | None = None
        """The last answer (kept while no server answers)."""
        self.last_failures: dict[str, str] = {}
        """Why each server asked at the last check did not answer."""
        self.enabled = True
        """False while ``time_sync.ntp_servers`` is empty (nothing is checked)."""
        self.available: bool | None = None
        """Whether a server answered at the last check; None before the first (or when the check is off)."""
        self.drift: str | None = None
        """The current drift episode's description, None when the clock is within the limit."""
        self._holding = False
        self._last_check_ns: int | None = None
        self._inflight: dict[str, threading.Event] = {}
        """Per server: set once its last query returned (a thread cannot be stopped, only waited for)."""

    # ------------------------------------------------------------------ entry points

    async def run(self) -> None:
        """Check every ``time_sync.check_interval_seconds`` until cancelled (the interval is re-read at least
        every second, so a hot reload shortens a long wait). Starts at once unless a check already ran."""
        while True:
            try:
                interval = self._spec().check_interval_seconds
            except Exception:  # the check itself reports a broken spec; keep the loop alive on the default
                interval = TimeSync().check_interval_seconds
            interval_ns = int(interval * 1_000_000_000)
            last = self._last_check_ns
            now = self._wall.monotonic_ns()
            if last is None or now - last >= interval_ns:
                await self.check()
            else:
                await asyncio.sleep(min((last + interval_ns - now) / 1e9, 1.0))

    async def startup_check(self) -> NtpSample | None:
        """The check before trading starts: logs the offset (event ``TimeSyncChecked``) or a warning; with
        ``pause_trading`` a drift found here holds trading before any Market quotes. Takes at most
        ``len(ntp_servers) × timeout_s``; never raises."""
        sample = await self.check()
        if sample is not None:
            self._node.event(SUBJECT, "TimeSyncChecked", f"start-up: {sample.describe()}")
        elif not self.enabled:
            _logger.info("clock not checked against NTP: time_sync.ntp_servers is empty")
        else:
            failures = "; ".join(f"{s}: {why}" for s, why in self.last_failures.items()) or "the check failed"
            _logger.warning("start-up clock check: no NTP server answered (%s); trading anyway", failures)
        return sample

    async def check(self) -> NtpSample | None:
        """One check: the sample that decided it, or None (no server answered, check off). Never raises,
        except cancellation."""
        self._last_check_ns = self._wall.monotonic_ns()
        try:
            return await self._check()
        except asyncio.CancelledError:
            raise
        except Exception:
            self.errors += 1
            _logger.exception("NTP clock check failed (will retry on the next check)")
            return None
        finally:
            self.checks += 1

    def release(self) -> None:
        """Clear the hold this monitor set (when it stops for good, e.g. at shutdown)."""
        self._release_hold()

    # ------------------------------------------------------------------ one check

    def _spec(self) -> TimeSync:
        return (self._node_spec() or TradingNodeSpec()).time_sync

    async def _check(self) -> NtpSample | None:
        spec = self._spec()
        self.enabled = bool(spec.ntp_servers)
        if not self.enabled:
            self.available = None
            self.drift = None
            self._release_hold()
            return None
        sample = await self._measure(spec.ntp_servers)
        if sample is None:
            self._unavailable(spec)
            return None
        if self.available is False and spec.action_on_drift != "ignore":
            self._node.event(SUBJECT, "TimeSyncRestored", f"NTP answers again: {sample.describe()}")
        self.available = True
        self.last_sample = sample
        self._export(sample.offset_s)
        self._judge(sample, spec)
        return sample

    async def _measure(self, servers: Sequence[str]) -> NtpSample | None:
        """Ask ``servers`` in order; the first usable answer wins."""
        failures: dict[str, str] = {}
        self.last_failures = failures
        for server in servers:
            try:
                return await self._in_thread(server, functools.partial(self._query, server, self.timeout_s))
            except asyncio.CancelledError:
                raise
            except TimeoutError:
                failures[server] = f"no answer within {self.timeout_s:g} s"
            except Exception as exc:  # DNS, refused reply, unreachable network, a broken query: all "no answer"
                failures[server] = str(exc) or type(exc).__name__
            _logger.debug("NTP server %s did not answer: %s", server, failures[server])
        return None

    async def _in_thread(self, server: str, call: Callable[[], _T]) -> _T:
        """Run ``call`` in a daemon thread and wait ``timeout_s`` for it. A thread cannot be stopped, so a
        server whose previous query is still stuck (a hanging DNS lookup) is not asked again meanwhile."""
        previous = self._inflight.get(server)
        if previous is not None and not previous.is_set():
            raise NtpError("the previous query has not returned yet")
        returned = threading.Event()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_T] = loop.create_future()

        def succeed(result: _T) -> None:
            if not future.done():  # done: wait_for gave up (cancelled it)
                future.set_result(result)

        def fail(exc: BaseException) -> None:
            if not future.done():
                future.set_exception(exc)

        def target() -> None:
            try:
                result = call()
            except BaseException as exc:
                returned.set()
                with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
                    loop.call_soon_threadsafe(fail, exc)
            else:
                returned.set()
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(succeed, result)

        self._inflight[server] = returned
        threading.Thread(target=target, name=f"ntp-query {server}", daemon=True).start()
        return await asyncio.wait_for(future, self.timeout_s)

    def _unavailable(self, spec: TimeSync) -> None:
        self._export(math.nan)
        if self.available is not False and spec.action_on_drift != "ignore":
            failures = "; ".join(f"{s}: {why}" for s, why in self.last_failures.items())
            self._node.event(
                SUBJECT, "TimeSyncUnavailable", f"no NTP server answered, clock unchecked ({failures})", warning=True
            )
        self.available = False

    def _judge(self, sample: NtpSample, spec: TimeSync) -> None:
        if spec.action_on_drift == "ignore":
            self.drift = None
            self._release_hold()
            return
        limit_us = spec.max_drift_ms * 1000
        magnitude = abs(sample.offset_us)
        if self.drift is None and magnitude - sample.error_us > limit_us:
            self.drift = f"{sample.describe()}, over the {spec.max_drift_ms} ms allowed"
            action = "trading paused" if spec.action_on_drift == "pause_trading" else "warning only"
            self._node.event(SUBJECT, "ClockDrift", f"{self.drift} ({action})", warning=True)
        elif self.drift is not None and magnitude <= limit_us:
            self.drift = None
            self._node.event(SUBJECT, "ClockDriftCleared", f"{sample.describe()}: within the limit again")
        if self.drift is not None and spec.action_on_drift == "pause_trading":
            self._node.holds.set(HOLD_KEY, self.drift, self._node.clock.now_us())
            self._holding = True
        else:
            self._release_hold()

    def _release_hold(self) -> None:
        if self._holding:
            self._node.holds.clear(HOLD_KEY)
            self._holding = False

    def _export(self, offset_s: float) -> None:
        if self._set_drift is not None:
            self._set_drift(offset_s)
