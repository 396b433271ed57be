"""The degradation monitor's driver (mm.controller.degradation): when it probes, how it applies decisions to the
node's holds (only its own keys, never the kill switch), and that a failing check never raises.

The venue here is a stand-in reporting hand-made LinkHealth values: these tests are about the driver's choices;
the real adapter against the simulator is in test_degradation_sim.py."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from mm.adapters.link_health import ClockOffset, LinkHealth
from mm.clock import SimulatedClock
from mm.controller.degradation import DegradationMonitor
from mm.controller.node import ExchangeConnection, NodeContext
from mm.controller.resources import ResourceStore
from mm.observability.metrics import Metrics
from mm.specs.exchange import ExchangeSpec
from mm.specs.node import TradingNodeSpec

NS = 1_000_000_000
NOW = 10_000 * NS

HEALTHY = LinkHealth(
    measured_wall_ns=NOW,
    rtt_p50_s=0.02,
    rtt_samples=16,
    consecutive_failures=0,
    last_success_wall_ns=NOW - NS,
    last_failure=None,
    ws_connected=True,
    ws_last_frame_wall_ns=NOW,
    clock=ClockOffset(-1_000, 1_000, 4),
    clock_sampled_wall_ns=NOW - NS,
)
OUT = replace(
    HEALTHY,
    consecutive_failures=5,
    last_success_wall_ns=NOW - 60 * NS,
    last_failure="timed out",
    ws_connected=False,
    ws_last_frame_wall_ns=NOW - 60 * NS,
)


@dataclass
class StandIn:
    """Reports ``health`` (or raises ``broken``); records the probes it was sent, which refresh it."""

    health: LinkHealth = HEALTHY
    connected: bool = True
    broken: Exception | None = None
    probe_error: Exception | None = None
    answers: bool = True
    probes: list[float] = field(default_factory=list)

    def link_health(self, *, clock_window_s: float = 60.0) -> LinkHealth:
        if self.broken is not None:
            raise self.broken
        return self.health

    async def probe(self, timeout_s: float) -> bool:
        self.probes.append(timeout_s)
        if self.probe_error is not None:
            raise self.probe_error
        if not self.answers:
            return False
        # as a real adapter: the answer is a success and carries a clock reading
        self.health = replace(self.health, last_success_wall_ns=NOW, clock_sampled_wall_ns=NOW)
        return True


def node_with(**venues: StandIn) -> NodeContext:
    clock = SimulatedClock(1_786_000_000_000_000)
    node = NodeContext(clock, ResourceStore(clock), metrics=Metrics())
    spec = ExchangeSpec.model_validate({"venue": "simulator", "simulator": {"embedded": True}})
    for name, venue in venues.items():
        node.exchanges[name] = ExchangeConnection(name, "digest", spec, venue)  # type: ignore[arg-type]
    return node


def monitor(node: NodeContext, spec: TradingNodeSpec | None = None) -> DegradationMonitor:
    return DegradationMonitor(node, lambda: spec, SimulatedClock(0))


def reasons(node: NodeContext) -> list[str]:
    return [reason for _, _, reason, _ in node.events]


async def test_an_outage_is_held_and_cleared_without_touching_other_holds_or_the_kill_switch() -> None:
    venue = StandIn(OUT, answers=False)
    node = node_with(sim=venue)
    node.holds.set("shutdown", "draining", 1)
    node.holds.set("recovery", "a person must look", 1, latched=True)
    m = monitor(node)
    await m.check()
    held = node.holds.get("network/sim")
    assert held is not None and "5 requests failed in a row (last: timed out)" in held.reason
    assert reasons(node)[-2:] == ["NetworkOutage", "TradingHeld"]  # the cause, then the hold

    venue.health, venue.answers = HEALTHY, True
    await m.check()
    assert venue.probes == [5.0, 5.0]  # probed on every check while out
    assert node.holds.get("network/sim") is None and "NetworkRestored" in reasons(node)
    assert node.holds.get("shutdown") is not None and node.holds.get("recovery") is not None
    assert not node.node_switch.tripped
    assert m.errors == 0 and m.checks == 2


async def test_idle_exchanges_are_probed_busy_ones_are_not_and_degraded_ones_on_every_check() -> None:
    busy = StandIn()
    idle = StandIn(replace(HEALTHY, last_success_wall_ns=NOW - 31 * NS))  # ping_interval_seconds: 30
    never = StandIn(replace(HEALTHY, last_success_wall_ns=None))
    unclocked = StandIn(replace(HEALTHY, clock_sampled_wall_ns=NOW - 61 * NS))  # check_interval_seconds: 60
    closed = StandIn(replace(HEALTHY, last_success_wall_ns=None), connected=False)
    slow = StandIn(replace(HEALTHY, rtt_p50_s=0.2))  # over the 100 ms warn threshold: degraded
    m = monitor(node_with(busy=busy, idle=idle, never=never, unclocked=unclocked, closed=closed, slow=slow))
    await m.check()
    assert (busy.probes, closed.probes, slow.probes) == ([], [], [])  # slow: not degraded until this check said so
    assert idle.probes == never.probes == unclocked.probes == [5.0]  # ping_timeout_seconds
    await m.check()
    assert slow.probes == [5.0] and busy.probes == []
    assert m.probes == 4


async def test_a_failing_check_or_probe_is_counted_and_the_next_check_works() -> None:
    venue = StandIn(broken=RuntimeError("adapter bug"))
    node = node_with(sim=venue)
    m = monitor(node)
    await m.check()  # does not raise
    assert m.errors == 1 and m.checks == 1

    venue.broken = None
    venue.health = replace(OUT, consecutive_failures=3)
    venue.probe_error = RuntimeError("client closed")
    await m.check()
    assert m.errors == 2  # the probe's error, counted; the check went on
    assert node.holds.get("network/sim") is not None


async def test_holds_of_an_exchange_that_is_gone_are_cleared_and_release_clears_the_rest() -> None:
    spec = TradingNodeSpec.model_validate({"network": {"latency": {"action_on_critical": "pause"}}})
    slow = StandIn(replace(HEALTHY, rtt_p50_s=0.9))
    wide = StandIn(replace(HEALTHY, rtt_p50_s=0.9))
    node = node_with(a=slow, b=wide)
    m = monitor(node, spec)
    await m.check()
    assert {h.key for h in node.holds.active()} == {"latency/a", "latency/b"}
    del node.exchanges["a"]
    await m.check()
    assert {h.key for h in node.holds.active()} == {"latency/b"}
    m.release()
    assert not node.holds.blocked


async def test_metrics_follow_the_link() -> None:
    ahead = replace(HEALTHY, clock=ClockOffset(2_000_000, 2_010_000, 3))
    node = node_with(a=StandIn(ahead), b=StandIn())
    await monitor(node).check()
    assert node.metrics is not None
    registry = node.metrics.registry
    assert registry.get_sample_value("mm_exchange_rtt_seconds", {"exchange": "a"}) == 0.02
    assert registry.get_sample_value("mm_exchange_clock_offset_seconds", {"exchange": "a"}) == 2.005
    assert registry.get_sample_value("mm_exchange_clock_offset_seconds", {"exchange": "b"}) == 0.0
    assert registry.get_sample_value("mm_clock_drift_seconds") == 0.0  # the NTP check's gauge, not this monitor's
    assert "ClockDrift" in reasons(node)
