"""Volatility estimators (FR-301, FR-411): ``ewma``, ``realized`` and ``fixed``.

Mid changes arrive at irregular times, so both data-driven estimators estimate a variance *rate*: the
sum of squared mid changes divided by the time they took (dollars² per second), and σ is its square root
(dollars per √second). A burst of moves in a short time is then correctly high volatility, and a mid
that sits still for a minute lowers the estimate.

FR-301 prints ``σ_t² = α·(Δmid)² + (1−α)·σ²_{t−1}`` with α = 0.94, which puts 94 % of the weight on the
newest change — no smoothing at all. 0.94 is RiskMetrics' decay factor, the weight of *history*; we use
it that way (docs/decisions/007): ``S ← α·S + (1−α)·Δmid²`` and ``D ← α·D + (1−α)·Δt``, σ² = S / D.

State transfer (hot-swap, FR-1002): every estimator exports ``{"kind", "last_mid", "last_ts_us",
"variance_rate", "observations"}`` (plus its own extras). ``ewma`` ← ``realized``: the realized rate seeds
the EWMA as if it had been observed ``observations`` times. ``realized`` ← ``ewma``: the window cannot
be rebuilt from an average, so the EWMA rate is kept as a *prior* that the realized estimator reports
until its own window has ``min_observations`` samples (``realized`` ← ``realized`` carries that prior
too). ``fixed`` has no state to carry.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from typing import Any, Final

from mm.strategy.base import VolatilityEstimator

US_PER_SECOND: Final = 1_000_000
_MIN_DT: Final = 1e-6  # seconds; two updates with the same timestamp still count as a (fast) move


class _RateEstimator(VolatilityEstimator):
    """Shared bookkeeping: the last observation and the change since it."""

    kind = "base"

    def __init__(self) -> None:
        self._last_mid: float | None = None
        self._last_ts_us = 0
        self._observations = 0

    def _step(self, mid_price: float, timestamp_us: int) -> tuple[float, float] | None:
        """(Δmid², Δt seconds) since the previous observation, or None for the first one."""
        last = self._last_mid
        dt = (timestamp_us - self._last_ts_us) / US_PER_SECOND
        if last is not None and dt < 0:  # refuse before touching any state
            raise ValueError(f"volatility update went back in time by {-dt} s")
        self._last_mid, self._last_ts_us = mid_price, timestamp_us
        if last is None:
            return None
        self._observations += 1
        change = mid_price - last
        return change * change, max(dt, _MIN_DT)

    def _common_state(self, rate: float) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "last_mid": self._last_mid,
            "last_ts_us": self._last_ts_us,
            "variance_rate": rate,
            "observations": self._observations,
        }

    def _load_common(self, state: Mapping[str, Any]) -> None:
        last_mid = state.get("last_mid")
        self._last_mid = None if last_mid is None else float(last_mid)
        self._last_ts_us = int(state.get("last_ts_us", 0))
        self._observations = int(state.get("observations", 0))


class EWMAVolatility(_RateEstimator):
    """Exponentially weighted variance rate; ``alpha`` is the weight of history (RiskMetrics' λ)."""

    kind = "ewma"

    def __init__(self, alpha: float = 0.94, min_observations: int = 10, initial_volatility: float | None = None):
        super().__init__()
        if not 0.0 < alpha < 1.0:
            raise ValueError("alpha must be in (0, 1)")
        self.alpha = alpha
        self.min_observations = min_observations
        self.initial_volatility = initial_volatility
        self._sum_sq = 0.0  # S: weighted squared changes, dollars²
        self._sum_dt = 0.0  # D: weighted elapsed time, seconds

    def update(self, mid_price: float, timestamp_us: int) -> None:
        step = self._step(mid_price, timestamp_us)
        if step is None:
            return
        sq, dt = step
        a = self.alpha
        if self._observations == 1:
            self._sum_sq, self._sum_dt = sq, dt  # no history to decay: start from the first change
        else:
            self._sum_sq = a * self._sum_sq + (1.0 - a) * sq
            self._sum_dt = a * self._sum_dt + (1.0 - a) * dt

    def variance_rate(self) -> float:
        return self._sum_sq / self._sum_dt if self._sum_dt > 0 else 0.0

    def get_volatility(self) -> float:
        if self._observations < self.min_observations and self.initial_volatility is not None:
            return self.initial_volatility  # graceful warm-up: the configured prior until enough data
        return math.sqrt(self.variance_rate())

    def is_ready(self) -> bool:
        return self._observations >= self.min_observations or self.initial_volatility is not None

    def get_state(self) -> dict[str, Any]:
        return {**self._common_state(self.variance_rate()), "sum_sq": self._sum_sq, "sum_dt": self._sum_dt}

    def set_state(self, state: Mapping[str, Any]) -> None:
        self._load_common(state)
        if state.get("kind") == "ewma":
            self._sum_sq, self._sum_dt = float(state["sum_sq"]), float(state["sum_dt"])
        else:
            # Another estimator's rate: equivalent to having observed it over one second.
            self._sum_sq, self._sum_dt = float(state.get("variance_rate", 0.0)), 1.0


class RealizedVolatility(_RateEstimator):
    """Variance rate over a rolling window: Σ Δmid² / Σ Δt for the changes in the last ``window_seconds``."""

    kind = "realized"

    def __init__(self, window_seconds: float = 300.0, min_observations: int = 10) -> None:
        super().__init__()
        if window_seconds <= 0:
            raise ValueError("window_seconds must be positive")
        self.window_us = int(window_seconds * US_PER_SECOND)
        self.min_observations = min_observations
        self._samples: deque[tuple[int, float, float]] = deque()  # (timestamp_us, Δmid², Δt)
        self._sum_sq = 0.0
        self._sum_dt = 0.0
        self._prior_rate: float | None = None

    def update(self, mid_price: float, timestamp_us: int) -> None:
        step = self._step(mid_price, timestamp_us)
        # Evict first: the new sample is never outside its own window, and when every older sample has
        # aged out the sums are reset exactly before it is added (no float residue carried on).
        self._evict(timestamp_us - self.window_us)
        if step is not None:
            sq, dt = step
            self._samples.append((timestamp_us, sq, dt))
            self._sum_sq += sq
            self._sum_dt += dt
            if self._prior_rate is not None and len(self._samples) >= self.min_observations:
                self._prior_rate = None  # own data now; an inherited rate must not return after a gap

    def _evict(self, cutoff_us: int) -> None:
        samples = self._samples
        while samples and samples[0][0] < cutoff_us:
            _, sq, dt = samples.popleft()
            self._sum_sq -= sq
            self._sum_dt -= dt
        if not samples:  # reset exactly: no float residue from repeated subtraction
            self._sum_sq = self._sum_dt = 0.0

    def variance_rate(self) -> float:
        if len(self._samples) < self.min_observations and self._prior_rate is not None:
            return self._prior_rate
        return max(self._sum_sq, 0.0) / self._sum_dt if self._sum_dt > 0 else 0.0

    def get_volatility(self) -> float:
        return math.sqrt(self.variance_rate())

    def is_ready(self) -> bool:
        return len(self._samples) >= self.min_observations or self._prior_rate is not None

    def get_state(self) -> dict[str, Any]:
        return {
            **self._common_state(self.variance_rate()),
            "samples": [list(s) for s in self._samples],
            "prior_rate": self._prior_rate,
        }

    def set_state(self, state: Mapping[str, Any]) -> None:
        self._load_common(state)
        self._samples.clear()
        self._sum_sq = self._sum_dt = 0.0
        self._prior_rate = None
        if state.get("kind") == "realized":
            for ts, sq, dt in state.get("samples", ()):
                self._samples.append((int(ts), float(sq), float(dt)))
                self._sum_sq += float(sq)
                self._sum_dt += float(dt)
            prior = state.get("prior_rate")  # still warming up on an inherited rate: keep it
            self._prior_rate = None if prior is None else float(prior)
        elif state.get("variance_rate") is not None:
            self._prior_rate = float(state["variance_rate"])


class FixedVolatility(VolatilityEstimator):
    """A constant σ (dollars per √second), for tests, backtests and operator overrides."""

    def __init__(self, volatility: float) -> None:
        if volatility < 0:
            raise ValueError("volatility must not be negative")
        self.volatility = volatility

    def update(self, mid_price: float, timestamp_us: int) -> None:
        return None  # nothing to learn

    def get_volatility(self) -> float:
        return self.volatility

    def is_ready(self) -> bool:
        return True

    def get_state(self) -> dict[str, Any]:
        return {"kind": "fixed", "variance_rate": self.volatility * self.volatility}

    def set_state(self, state: Mapping[str, Any]) -> None:
        return None  # the configured value wins over anything inherited
