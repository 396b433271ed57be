"""Skew calculators (FR-402, FR-413): ``linear``, ``exponential``, ``adaptive``, ``none``.

All take q̂ = q / Q_max clamped to [−1, 1], so ``intensity`` k is the skew in dollars at full
inventory. Positive skew shifts every quote down (long YES → sell YES, buy NO).
"""

from __future__ import annotations

from mm.strategy.base import SkewCalculator, normalised_inventory


class LinearSkew(SkewCalculator):
    """skew = k·q̂."""

    def __init__(self, intensity: float = 0.01) -> None:
        self.intensity = intensity

    def calculate(self, inventory: float, max_inventory: float, volatility: float) -> float:
        return self.intensity * normalised_inventory(inventory, max_inventory)


class ExponentialSkew(SkewCalculator):
    """skew = k·sign(q̂)·q̂²: gentle near flat, aggressive near the limit."""

    def __init__(self, intensity: float = 0.01) -> None:
        self.intensity = intensity

    def calculate(self, inventory: float, max_inventory: float, volatility: float) -> float:
        x = normalised_inventory(inventory, max_inventory)
        return self.intensity * x * abs(x)


class AdaptiveSkew(SkewCalculator):
    """skew = k·q̂·σ/σ_ref: scales with volatility; equals linear skew when σ = σ_ref (dollars/√s)."""

    def __init__(self, intensity: float = 0.01, reference_volatility: float = 0.005) -> None:
        if reference_volatility <= 0:
            raise ValueError("reference_volatility must be positive")
        self.intensity = intensity
        self.reference_volatility = reference_volatility

    def calculate(self, inventory: float, max_inventory: float, volatility: float) -> float:
        scale = volatility / self.reference_volatility
        return self.intensity * normalised_inventory(inventory, max_inventory) * scale


class NoSkew(SkewCalculator):
    """skew = 0 (baseline, A/B tests of skew)."""

    def calculate(self, inventory: float, max_inventory: float, volatility: float) -> float:
        return 0.0
