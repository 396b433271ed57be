"""Reservation price calculators (FR-401, FR-412): ``avellaneda_stoikov``, ``simple_mid``, ``linear``.

Avellaneda & Stoikov (2008): ``r = s − q·γ·σ²·τ``. The requirements print ``r = s − q/(γσ²T)``, which
inverts the risk term — it diverges as σ → 0 and *shrinks* as volatility grows, against FR-401's own
acceptance criteria — so the paper's form is used (docs/decisions/007). Inventory enters normalised,
``q̂ = q / Q_max`` ∈ [−1, 1], so γ (per dollar) means the same thing whatever the position limit, and the
defaults (γ = 0.1, Q_max = 1000) move r by cents, not dollars.

FR-401 also asks that the effect *grow* as settlement nears, which the paper's τ = T − t does not do
(its risk horizon shrinks). The ``horizon`` option makes the choice explicit:

* ``settlement_risk`` (default): τ = H² / max(T, T_min) — equal to H at T = H and growing as settlement
  nears, because a binary's inventory risk concentrates at the end (it jumps to $0 or $1);
* ``time_to_settlement``: τ = T, the paper's finite-horizon form;
* ``fixed``: τ = H, the stationary ("infinite horizon") variant.

|r − s| is clamped to ``max_shift`` so no horizon choice or volatility spike can move quotes by more
than that. T → 0 and σ → 0 never divide by zero.
"""

from __future__ import annotations

from typing import Literal

from mm.strategy.base import ReservationPriceCalculator, normalised_inventory

Horizon = Literal["settlement_risk", "time_to_settlement", "fixed"]


class AvellanedaStoikov(ReservationPriceCalculator):
    def __init__(
        self,
        gamma: float = 0.1,
        horizon: Horizon = "settlement_risk",
        horizon_seconds: float = 3600.0,
        min_time_seconds: float = 60.0,
        max_shift: float = 0.05,
    ) -> None:
        if gamma <= 0 or horizon_seconds <= 0 or min_time_seconds <= 0 or max_shift <= 0:
            raise ValueError("gamma, horizon_seconds, min_time_seconds and max_shift must be positive")
        self.gamma = gamma
        self.horizon = horizon
        self.horizon_seconds = horizon_seconds
        self.min_time_seconds = min_time_seconds
        self.max_shift = max_shift

    def effective_horizon(self, time_to_settlement: float) -> float:
        """τ in seconds for this time to settlement (seconds)."""
        if self.horizon == "fixed":
            return self.horizon_seconds
        if self.horizon == "time_to_settlement":
            return max(time_to_settlement, 0.0)
        h = self.horizon_seconds
        return h * h / max(time_to_settlement, self.min_time_seconds)

    def shift(self, inventory: float, volatility: float, time_to_settlement: float, max_inventory: float) -> float:
        """r − s in dollars: −q̂·γ·σ²·τ, clamped to ±max_shift."""
        raw = normalised_inventory(inventory, max_inventory) * self.gamma * volatility * volatility
        raw *= self.effective_horizon(time_to_settlement)
        m = self.max_shift
        return -(m if raw > m else -m if raw < -m else raw)

    def calculate(
        self,
        mid_price: float,
        inventory: float,
        volatility: float,
        time_to_settlement: float,
        max_inventory: float,
    ) -> float:
        return mid_price + self.shift(inventory, volatility, time_to_settlement, max_inventory)


class SimpleMidPrice(ReservationPriceCalculator):
    """r = s: no inventory adjustment (baseline)."""

    def calculate(
        self,
        mid_price: float,
        inventory: float,
        volatility: float,
        time_to_settlement: float,
        max_inventory: float,
    ) -> float:
        return mid_price


class LinearAdjustment(ReservationPriceCalculator):
    """r = s − k·q with k in dollars per contract."""

    def __init__(self, k: float = 0.00001) -> None:
        if k < 0:
            raise ValueError("k must not be negative")
        self.k = k

    def calculate(
        self,
        mid_price: float,
        inventory: float,
        volatility: float,
        time_to_settlement: float,
        max_inventory: float,
    ) -> float:
        return mid_price - self.k * inventory
