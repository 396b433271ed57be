"""The simulator's shared state: what the REST and WebSocket layers read and act on.

One :class:`SimulatorState` per simulator. Everything runs on one asyncio event loop, so handlers
mutate it without locks; the protocol layers never hold a reference across an ``await`` that could let
another handler interleave inside one logical operation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from mm.clock import Clock
from mm.sim.auth import KeyRegistry, Verifier
from mm.sim.exchange import Exchange, ExchangeEvent
from mm.sim.ratelimit import RateLimiter
from mm.sim.schedule import HourlyEvent, MarketDef, SeriesDef


@dataclass
class FaultCounters:
    """How often each injected fault actually happened (tests assert on these)."""

    dropped_connections: int = 0
    silenced_connections: int = 0
    delayed_requests: int = 0
    failed_requests: int = 0
    rate_limited_requests: int = 0
    dropped_messages: int = 0
    duplicated_messages: int = 0
    malformed_messages: int = 0
    lost_responses: int = 0


@dataclass
class Faults:
    """Switchable faults (admin endpoint or config). Probabilities in [0, 1], delays in seconds."""

    rest_latency_s: float = 0.0
    ws_latency_s: float = 0.0
    rest_error_rate: float = 0.0
    """Fraction of authenticated requests answered 500/502/503 (chosen by the seeded generator)."""
    rest_429_rate: float = 0.0
    rest_lost_response_rate: float = 0.0
    """Fraction of authenticated order writes that are carried out and then answered 504, as when the answer is
    lost on the way back (a proxy timeout): the client cannot tell whether its create, cancel or amend happened."""
    ws_drop_message_rate: float = 0.0
    """Fraction of orderbook messages not sent (the client sees a seq gap)."""
    ws_duplicate_message_rate: float = 0.0
    ws_malformed_message_rate: float = 0.0
    """Fraction of orderbook messages sent as a garbled, truncated frame (not JSON) instead."""
    ws_silent: bool = False
    """Stop sending anything (including pings) without closing connections."""
    clock_skew_ms: int = 0
    """Added to server timestamps in responses and messages."""
    trading_paused: bool = False
    counters: FaultCounters = field(default_factory=FaultCounters)


@dataclass
class SimulatorState:
    clock: Clock
    exchange: Exchange
    keys: KeyRegistry
    verifier: Verifier
    limiter: RateLimiter
    series: dict[str, SeriesDef] = field(default_factory=dict)
    events: dict[str, HourlyEvent] = field(default_factory=dict)
    """Hourly events by event ticker."""
    markets: dict[str, MarketDef] = field(default_factory=dict)
    """Static market definitions by ticker (the live part is in ``exchange.markets``)."""
    faults: Faults = field(default_factory=Faults)
    listeners: list[Callable[[list[ExchangeEvent]], None]] = field(default_factory=list)
    """Called with every batch of exchange events (the WebSocket hub subscribes here)."""

    def publish(self) -> None:
        """Hand the exchange's pending events to every listener (call after each state change)."""
        events = self.exchange.drain_events()
        if events:
            for listener in self.listeners:
                listener(events)
