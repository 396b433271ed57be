"""The chaos scenarios of NFR-603, in one place: what each injects, what the node must do, what is measured.

The tests record their measurements under these ids (:mod:`tests.chaos.results`) and :mod:`tests.chaos.report`
renders docs/resilience.md's table from them, in this order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class Scenario:
    id: str
    title: str
    injection: str
    """How the fault is produced (the real mechanism, not a mock)."""
    expected: str
    measured: str
    """What the recovery time is the time of."""


SCENARIOS: Final = (
    Scenario(
        "websocket_disconnect",
        "WebSocket disconnect",
        "simulator `POST /admin/drop-connections`; a fill is made while the socket is down",
        "reconnect with backoff, resync, resume quoting; the fill made while disconnected is recovered",
        "drop → both sides quoted again",
    ),
    Scenario(
        "high_latency_widen",
        "High latency (widen)",
        "`rest_latency_s: 0.5` on every authenticated REST request; `action_on_critical: widen_spread`",
        "quotes widened ×2 while latency is over `critical_threshold_ms`; normal quotes after removal",
        "removal → normal spread quoted again",
    ),
    Scenario(
        "high_latency_pause",
        "High latency (pause)",
        "`rest_latency_s: 0.5`; `action_on_critical: pause`",
        "hold `latency/<exchange>`: every order cancelled while latency is high; quoting after removal",
        "removal → both sides quoted again",
    ),
    Scenario(
        "packet_loss",
        "Packet loss",
        "`ws_drop_message_rate: 0.1` on the order-book channel, with the crowd trading",
        "seq gaps detected, books resynced from snapshots, nothing sent on a book known to be stale",
        "removal → every book fresh and quoted",
    ),
    Scenario(
        "exchange_timeout",
        "Exchange timeout",
        "`rest_latency_s: 6` (beyond the adapter's 5 s request timeout) while an order is being replaced",
        "timeouts, look-up by client order id, re-send; never a duplicate order; quoting after removal",
        "removal → quoting, no create in doubt",
    ),
    Scenario(
        "lost_responses",
        "Lost responses",
        "`rest_lost_response_rate: 1` (order writes carried out, answered 504) while one, then both, of our orders "
        "are replaced",
        "creates in doubt settled by the stream or a look-up, cancels' retries find the order gone; never a duplicate "
        "order; quoting after removal",
        "removal → quoting, no create in doubt (the batch of two)",
    ),
    Scenario(
        "database_failure",
        "Database failure",
        "another connection holds `BEGIN EXCLUSIVE` on the node's SQLite file (writes blocked)",
        "trading continues, records queue in memory, all written once the lock is released",
        "unblock → write-behind queue drained",
    ),
    Scenario(
        "memory_pressure",
        "Memory pressure",
        "`mmctl run` in its own process under `RLIMIT_DATA` = 256 MB, against `mmctl sim`",
        "quotes and fills within the limit; clean shutdown (exit 0)",
        "start → quoting, under the limit",
    ),
    Scenario(
        "cpu_spike",
        "CPU spike",
        "the node's event loop busy for 5 s while every core is burnt by other processes",
        "backlog processed, books resynced, quoting again; no data lost",
        "spike end → every market quoted",
    ),
    Scenario(
        "clock_drift",
        "Clock drift",
        "`clock_skew_ms: 5000` on the simulator's timestamps",
        "drift detected and alerted (event `ClockDrift`)",
        "injection → `ClockDrift` event",
    ),
    Scenario(
        "kill_switch",
        "Kill switch",
        "`kill` at a seeded random moment while quoting and being filled",
        "every order of ours cancelled at the exchange; latched (durable); nothing sent afterwards",
        "trigger → no order of ours resting",
    ),
    Scenario(
        "fill_during_restart",
        "Fill during a restart",
        "an order a crashed run left resting is hit while the restarted node loads its orders and positions",
        "the fill is booked once, positions are imported consistently, the node loads and quotes",
        "fill → both sides quoted",
    ),
    Scenario(
        "kill9",
        "kill -9 of the controller",
        "`kill -9` of `mmctl run` at random moments while quoting against `mmctl sim` (separate processes)",
        "crash detected by the lock file, reconciled with the exchange, auto-resumed; no fill lost, no duplicate",
        "restart → quoting",
    ),
)

BY_ID: Final = {s.id: s for s in SCENARIOS}
