"""Building a simulator's state and its API keys (first start creates, later starts load)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from mm.clock import Clock, WallClock
from mm.sim.auth import KeyRegistry, Verifier
from mm.sim.exchange import Exchange, FeeRounding
from mm.sim.ratelimit import RateLimiter
from mm.sim.state import SimulatorState

KEYS_FILE: Final = "keys.json"
DEFAULT_USER: Final = "sim-user"
DEFAULT_BALANCE_MICROS: Final = 10_000 * 1_000_000
"""A new user's starting cash: $10,000."""


@dataclass(frozen=True, slots=True)
class ApiKey:
    key_id: str
    user_id: str
    key_file: Path


def build_state(
    sim_clock: Clock,
    *,
    keys: KeyRegistry | None = None,
    auth_clock: Clock | None = None,
    tier: str = "basic",
    fee_rounding: FeeRounding = "per_fill_centicent",
) -> SimulatorState:
    """A fresh state. ``sim_clock`` is market time; auth and rate limits use real time (``auth_clock``):
    clients sign with their wall clock and send at real rates, whatever speed the market plays at."""
    real = auth_clock if auth_clock is not None else WallClock()
    registry = keys if keys is not None else KeyRegistry()
    return SimulatorState(
        clock=sim_clock,
        exchange=Exchange(sim_clock, fee_rounding=fee_rounding),
        keys=registry,
        verifier=Verifier(registry, real),
        limiter=RateLimiter({}, real, default_tier=tier),
    )


def load_or_create_key(
    state_dir: Path, state: SimulatorState, *, balance_micros: int = DEFAULT_BALANCE_MICROS
) -> ApiKey:
    """The first key in ``state_dir`` (creating the directory, a key and its 0600 PEM file if none), with
    an account for its user. Every registered key's user gets an account."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / KEYS_FILE
    if path.exists():
        for entry in KeyRegistry.load(path):
            if entry.key_id not in state.keys:
                state.keys.register(entry.public_key, entry.user_id, key_id=entry.key_id)
    if len(state.keys) == 0:
        state.keys.create_key(DEFAULT_USER, state_dir)
        state.keys.save(path)
    entries = list(state.keys)
    for entry in entries:
        state.exchange.open_account(entry.user_id, balance_micros)
    first = entries[0]
    return ApiKey(first.key_id, first.user_id, state_dir / f"{first.key_id}.pem")


def create_additional_key(state_dir: Path, user_id: str) -> ApiKey:
    """``mmctl sim keys create``: a new key (and user) registered in ``state_dir``."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / KEYS_FILE
    registry = KeyRegistry.load(path) if path.exists() else KeyRegistry()
    key_id, key_file = registry.create_key(user_id, state_dir)
    registry.save(path)
    return ApiKey(key_id, user_id, key_file)
