"""Spread calculators (FR-414): each returns the half-spread δ in dollars.

``base_spread`` is the full spread, so δ starts at ``base_spread / 2``. The engine then enforces the
strategy's ``min_spread`` (δ ≥ min_spread / 2) whatever a calculator returns.
"""

from __future__ import annotations

import math

from mm.strategy.base import SpreadCalculator, normalised_inventory


class FixedSpread(SpreadCalculator):
    """δ = base/2."""

    def __init__(self, base_spread: float = 0.02) -> None:
        self.half = base_spread / 2

    def calculate(self, volatility: float, inventory: float, max_inventory: float, time_to_settlement: float) -> float:
        return self.half


class VolatilitySpread(SpreadCalculator):
    """δ = base/2 + m·σ·√h: widens with the mid's standard deviation over h seconds (default 60)."""

    def __init__(self, base_spread: float = 0.02, vol_multiplier: float = 0.5, vol_horizon_seconds: float = 60.0):
        self.half = base_spread / 2
        self.scale = vol_multiplier * math.sqrt(vol_horizon_seconds)

    def calculate(self, volatility: float, inventory: float, max_inventory: float, time_to_settlement: float) -> float:
        return self.half + self.scale * volatility


class InventorySpread(SpreadCalculator):
    """δ = base/2·(1 + |q̂|): up to twice as wide at full inventory."""

    def __init__(self, base_spread: float = 0.02) -> None:
        self.half = base_spread / 2

    def calculate(self, volatility: float, inventory: float, max_inventory: float, time_to_settlement: float) -> float:
        return self.half * (1.0 + abs(normalised_inventory(inventory, max_inventory)))


class TimeDecaySpread(SpreadCalculator):
    """δ = base/2·√(H / max(T, T_min)): equal to base/2 at T = H, widening as settlement nears."""

    def __init__(self, base_spread: float = 0.02, horizon_seconds: float = 3600.0, min_time_seconds: float = 60.0):
        if horizon_seconds <= 0 or min_time_seconds <= 0:
            raise ValueError("horizon_seconds and min_time_seconds must be positive")
        self.half = base_spread / 2
        self.horizon_seconds = horizon_seconds
        self.min_time_seconds = min_time_seconds

    def calculate(self, volatility: float, inventory: float, max_inventory: float, time_to_settlement: float) -> float:
        return self.half * math.sqrt(self.horizon_seconds / max(time_to_settlement, self.min_time_seconds))


class AvellanedaStoikovSpread(SpreadCalculator):
    """The paper's optimal total spread γσ²τ + (2/γ)·ln(1 + γ/κ), halved; τ = min(T, H) seconds.

    γ is per dollar (as in the reservation price), κ per dollar (λ(δ) = A·e^(−κδ)); with the defaults
    γ = 0.1, κ = 100 the second term is ≈ 2/κ = 2¢ and the first adds the inventory-risk premium.
    """

    def __init__(self, gamma: float = 0.1, k: float = 100.0, horizon_seconds: float = 3600.0) -> None:
        if gamma <= 0 or k <= 0:
            raise ValueError("gamma and k must be positive")
        self.gamma = gamma
        self.horizon_seconds = horizon_seconds
        self.arrival_term = (2.0 / gamma) * math.log1p(gamma / k)

    def calculate(self, volatility: float, inventory: float, max_inventory: float, time_to_settlement: float) -> float:
        tau = min(max(time_to_settlement, 0.0), self.horizon_seconds)
        return (self.gamma * volatility * volatility * tau + self.arrival_term) / 2
