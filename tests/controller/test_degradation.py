"""The degradation rules (mm.controller.degradation_rules): outage, stream, latency with hysteresis, clock drift.

Pure: LinkHealth values are built by hand, the spec blocks from dicts as a TradingNode would give them."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from mm.adapters.link_health import ClockOffset, LinkHealth
from mm.controller.degradation_rules import (
    CLOCK_DRIFT_HOLD,
    WIDEN_ON_CRITICAL_LATENCY,
    Decisions,
    DegradationPolicy,
)
from mm.specs.node import Network, TimeSync

NS = 1_000_000_000
NOW = 10_000 * NS
S_US = 1_000_000
MS_US = 1_000

# window = ping_timeout (5 s) × max_missed_pings (3) = 15 s
NETWORK = Network.model_validate({})


def network(**latency: Any) -> Network:
    return Network.model_validate({"latency": latency})


def time_sync(action: str = "warn", max_drift_ms: int = 100) -> TimeSync:
    return TimeSync.model_validate({"action_on_drift": action, "max_drift_ms": max_drift_ms})


def health(
    *,
    rtt: float | None = None,
    failures: int = 0,
    answered_s_ago: float | None = 0.0,
    ws: bool | None = True,
    frame_s_ago: float | None = 0.0,
    clock: ClockOffset | None = None,
) -> LinkHealth:
    def ago(seconds: float | None) -> int | None:
        return None if seconds is None else NOW - int(seconds * NS)

    return LinkHealth(
        measured_wall_ns=NOW,
        rtt_p50_s=rtt,
        rtt_samples=0 if rtt is None else 16,
        consecutive_failures=failures,
        last_success_wall_ns=ago(answered_s_ago),
        last_failure="HTTP 503" if failures else None,
        ws_connected=ws,
        ws_last_frame_wall_ns=ago(frame_s_ago),
        clock=clock,
    )


def assess(
    policy: DegradationPolicy, h: LinkHealth, *, net: Network = NETWORK, ts: TimeSync | None = None
) -> Decisions:
    return policy.assess(net, ts or time_sync(), {"sim": h})


def reasons(decisions: Decisions) -> list[str]:
    return [e.reason for e in decisions.events]


# ---------------------------------------------------------------------- outage


def test_outage_needs_rest_down_and_stream_dead_and_clears_when_rest_answers_with_stream_connected() -> None:
    policy = DegradationPolicy()
    down = health(failures=3, answered_s_ago=20, ws=False, frame_s_ago=20)
    first = assess(policy, down)
    assert set(first.holds) == {"network/sim"}
    assert "3 requests failed in a row (last: HTTP 503)" in first.holds["network/sim"]
    assert "stream disconnected" in first.holds["network/sim"]
    assert reasons(first) == ["NetworkOutage"]
    assert first.events[0].warning and first.events[0].subject == "Exchange/sim"
    assert policy.degraded("sim")

    again = assess(policy, health(failures=9, answered_s_ago=40, ws=False, frame_s_ago=40))
    assert again.holds == first.holds  # the same reason: re-applying it changes nothing
    assert again.events == ()  # one alert per episode

    still_stream_down = assess(policy, health(failures=0, answered_s_ago=0, ws=False, frame_s_ago=45))
    assert set(still_stream_down.holds) == {"network/sim"}  # REST alone is not enough

    restored = assess(policy, health(failures=0, answered_s_ago=0, ws=True, frame_s_ago=0))
    assert restored.holds == {}
    assert reasons(restored) == ["NetworkRestored"]
    assert not policy.degraded("sim")


@pytest.mark.parametrize(
    ("failures", "answered_s_ago", "ws", "frame_s_ago"),
    [
        (3, 20, True, 1),  # the stream is alive: REST trouble alone is not an outage
        (2, 20, False, 20),  # fewer failures than max_missed_pings (3)
        (3, 10, False, 20),  # answered within the window (15 s)
    ],
)
def test_no_outage_short_of_the_rule(failures: int, answered_s_ago: float, ws: bool, frame_s_ago: float) -> None:
    decisions = assess(
        DegradationPolicy(), health(failures=failures, answered_s_ago=answered_s_ago, ws=ws, frame_s_ago=frame_s_ago)
    )
    assert "network/sim" not in decisions.holds
    assert "NetworkOutage" not in reasons(decisions)


def test_a_connected_but_silent_stream_counts_as_dead_and_never_answered_rest_as_down() -> None:
    decisions = assess(DegradationPolicy(), health(failures=3, answered_s_ago=None, ws=True, frame_s_ago=16))
    assert "stream silent for 16.0 s" in decisions.holds["network/sim"]
    assert "no answer for ever" in decisions.holds["network/sim"]


def test_an_adapter_without_stream_is_out_when_rest_is_down() -> None:
    decisions = assess(DegradationPolicy(), health(failures=3, answered_s_ago=20, ws=None, frame_s_ago=None))
    assert "no stream" in decisions.holds["network/sim"]


def test_stream_down_alone_is_reported_once_after_the_window_and_never_held() -> None:
    policy = DegradationPolicy()
    assert assess(policy, health(ws=False, frame_s_ago=5)).events == ()  # a reconnect in progress: not yet
    down = assess(policy, health(ws=False, frame_s_ago=16))
    assert reasons(down) == ["StreamDown"] and down.events[0].warning
    assert down.holds == {} and down.widen == {}
    assert assess(policy, health(ws=False, frame_s_ago=30)).events == ()
    assert reasons(assess(policy, health(ws=True, frame_s_ago=0))) == ["StreamRestored"]


def test_a_stream_still_making_its_first_connection_is_not_down_until_the_window_has_passed() -> None:
    policy = DegradationPolicy()
    starting = health(ws=False, frame_s_ago=None)  # the node just started: no frame ever, not yet connected
    assert assess(policy, starting).events == ()
    assert assess(policy, replace(starting, measured_wall_ns=NOW + 14 * NS)).events == ()
    down = assess(policy, replace(starting, measured_wall_ns=NOW + 16 * NS))
    assert reasons(down) == ["StreamDown"]
    assert down.events[0].message.startswith("stream never connected in 16.0 s while REST answers")


# ---------------------------------------------------------------------- latency


def test_latency_warn_once_then_critical_widens_with_hysteresis_until_under_warn() -> None:
    policy = DegradationPolicy()  # defaults: warn 100 ms, critical 500 ms, widen_spread
    warn = assess(policy, health(rtt=0.150))
    assert reasons(warn) == ["LatencyHigh"] and warn.events[0].warning
    assert warn.widen == {} and warn.holds == {}
    assert "median REST round trip 150 ms over the last 16 requests" in warn.events[0].message
    assert assess(policy, health(rtt=0.200)).events == ()  # once per episode

    critical = assess(policy, health(rtt=0.600))
    assert reasons(critical) == ["LatencyCritical"]
    assert critical.widen == {"latency/sim": WIDEN_ON_CRITICAL_LATENCY} == {"latency/sim": 2.0}
    assert critical.holds == {}

    between = assess(policy, health(rtt=0.300))  # under critical but over warn: still widened
    assert between.widen == {"latency/sim": 2.0} and between.events == ()

    improved = assess(policy, health(rtt=0.090))  # under warn: the action ends, the episode not yet
    assert improved.widen == {} and reasons(improved) == ["LatencyImproved"]
    assert policy.degraded("sim")
    assert assess(policy, health(rtt=0.095)).events == ()  # hovering near the threshold: no new alert

    normal = assess(policy, health(rtt=0.070))  # under 80 % of warn
    assert reasons(normal) == ["LatencyNormal"] and not normal.events[0].warning
    assert not policy.degraded("sim")


def test_a_warn_episode_does_not_end_at_the_threshold_itself() -> None:
    policy = DegradationPolicy()
    assess(policy, health(rtt=0.120))
    assert assess(policy, health(rtt=0.099)).events == ()
    assert reasons(assess(policy, health(rtt=0.130))) == []  # same episode: no second LatencyHigh
    assert reasons(assess(policy, health(rtt=0.079))) == ["LatencyNormal"]


def test_latency_pause_holds_and_ignore_only_reports() -> None:
    pause = DegradationPolicy()
    decisions = assess(pause, health(rtt=0.700), net=network(action_on_critical="pause"))
    assert set(decisions.holds) == {"latency/sim"} and decisions.widen == {}
    assert "700 ms" in decisions.holds["latency/sim"] and "critical 500 ms" in decisions.holds["latency/sim"]
    assert "trading paused" in decisions.events[0].message
    held = assess(pause, health(rtt=0.800), net=network(action_on_critical="pause"))
    assert held.holds == decisions.holds  # the reason stays the episode's first: no re-wording churn
    assert assess(pause, health(rtt=0.050), net=network(action_on_critical="pause")).holds == {}

    ignore = DegradationPolicy()
    decisions = assess(ignore, health(rtt=0.700), net=network(action_on_critical="ignore"))
    assert decisions.holds == {} and decisions.widen == {}
    assert reasons(decisions) == ["LatencyCritical"]


def test_a_changed_action_applies_mid_episode_and_thresholds_come_from_the_spec() -> None:
    policy = DegradationPolicy()
    tight = {"warn_threshold_ms": 10, "critical_threshold_ms": 20}
    assert assess(policy, health(rtt=0.030), net=network(**tight)).widen == {"latency/sim": 2.0}
    switched = assess(policy, health(rtt=0.030), net=network(**tight, action_on_critical="pause"))
    assert switched.widen == {} and set(switched.holds) == {"latency/sim"}


def test_no_rtt_samples_keeps_the_latency_state() -> None:
    policy = DegradationPolicy()
    assess(policy, health(rtt=0.600))
    assert assess(policy, health(rtt=None)).widen == {"latency/sim": 2.0}


# ---------------------------------------------------------------------- clock drift


def offset(estimate_us: int, error_us: int) -> ClockOffset:
    return ClockOffset(estimate_us - error_us, estimate_us + error_us, 3)


def test_drift_warns_once_and_clears_when_back_within() -> None:
    policy = DegradationPolicy()
    drift = assess(policy, health(clock=offset(5 * S_US, 2 * MS_US)))
    assert reasons(drift) == ["ClockDrift"] and drift.events[0].warning
    assert "exchange clock 5.000 s ahead of ours (±0.002 s, 3 samples)" in drift.events[0].message
    assert "over the 100 ms allowed" in drift.events[0].message
    assert drift.holds == {}  # action warn: no hold
    assert assess(policy, health(clock=offset(5 * S_US, 2 * MS_US))).events == ()
    assert assess(policy, health(clock=None)).events == ()  # no samples: no evidence either way
    assert policy.degraded("sim")
    cleared = assess(policy, health(clock=offset(3 * MS_US, 2 * MS_US)))
    assert reasons(cleared) == ["ClockDriftCleared"]
    assert not policy.degraded("sim")


def test_drift_pause_trading_holds_node_wide_naming_the_exchange() -> None:
    policy = DegradationPolicy()
    ts = time_sync("pause_trading")
    decisions = assess(policy, health(clock=offset(-3 * S_US, 10 * MS_US)), ts=ts)
    assert set(decisions.holds) == {CLOCK_DRIFT_HOLD}
    assert decisions.holds[CLOCK_DRIFT_HOLD].startswith("sim: exchange clock 3.000 s behind ours")
    assert assess(policy, health(clock=offset(0, 10 * MS_US)), ts=ts).holds == {}


def test_drift_ignore_does_nothing() -> None:
    decisions = assess(DegradationPolicy(), health(clock=offset(5 * S_US, 1)), ts=time_sync("ignore"))
    assert decisions.holds == {} and decisions.events == ()


def test_the_measurement_error_never_raises_a_false_alarm() -> None:
    policy = DegradationPolicy()
    # estimate 150 ms but ±100 ms: the offset may be 50 ms, within the 100 ms allowed
    assert assess(policy, health(clock=offset(150 * MS_US, 100 * MS_US))).events == ()
    # estimate 150 ms ±40 ms: at least 110 ms, proven over
    assert reasons(assess(policy, health(clock=offset(150 * MS_US, 40 * MS_US)))) == ["ClockDrift"]


def test_a_lower_bound_alone_proves_an_exchange_clock_ahead_but_never_behind() -> None:
    ahead = assess(DegradationPolicy(), health(clock=ClockOffset(4 * S_US, None, 2)))
    assert reasons(ahead) == ["ClockDrift"]
    assert "at least 4.000 s ahead of ours" in ahead.events[0].message
    # "the exchange is at least 5 s behind... or anything later": proves nothing
    assert assess(DegradationPolicy(), health(clock=ClockOffset(-5 * S_US, None, 2))).events == ()


def test_drift_between_set_and_clear_keeps_the_state() -> None:
    policy = DegradationPolicy()
    assess(policy, health(clock=offset(300 * MS_US, 10 * MS_US)))
    # 150 ms ± 100 ms: not proven over, but the estimate is not within 100 ms either: still drifting
    assert assess(policy, health(clock=offset(150 * MS_US, 100 * MS_US))).events == ()
    assert policy.degraded("sim")


# ---------------------------------------------------------------------- several exchanges


def test_exchanges_are_judged_separately_and_a_removed_one_is_forgotten() -> None:
    policy = DegradationPolicy()
    both = policy.assess(
        network(action_on_critical="pause"),
        time_sync("pause_trading"),
        {"a": health(rtt=0.900), "b": health(clock=offset(2 * S_US, 1 * MS_US))},
    )
    assert set(both.holds) == {"latency/a", CLOCK_DRIFT_HOLD}
    assert both.holds[CLOCK_DRIFT_HOLD].startswith("b: ")
    assert {(e.subject, e.reason) for e in both.events} == {
        ("Exchange/a", "LatencyCritical"),
        ("Exchange/b", "ClockDrift"),
    }
    only_b = policy.assess(network(action_on_critical="pause"), time_sync("pause_trading"), {"b": health()})
    assert set(only_b.holds) == {CLOCK_DRIFT_HOLD}
    assert not policy.degraded("a")
