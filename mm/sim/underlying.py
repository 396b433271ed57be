"""A seeded, BTC-like price index for the simulator: the source of every crowd fair value and settlement.

Model (per tick, normally one second): a geometric random walk with Poisson jumps (Merton),

    ln S[k+1] = ln S[k] − σ²·dt/2 + σ·√dt·Z + Σ_{i<N} J_i,   Z ~ N(0, 1),  N ~ Poisson(λ·dt),
    J_i ~ N(−s²/2, s),

with ``σ`` the annual diffusion volatility, ``dt`` the tick in years (a 365-day, 24/7 crypto year), ``λ``
the jump intensity and ``s`` the relative jump size. The ``−σ²dt/2`` and ``−s²/2`` terms make the price a
martingale, so the index has no drift. Floats are used on purpose: this is a synthetic model, not
money; the exchange turns index values into Decimal only at the edge (``expiration_value``, strikes).

One sample is recorded at ``start_us + k·tick`` for every k; :meth:`Underlying.average` is the simple
mean of the samples in a window, which is how CF Benchmarks' 60-second settlement average is built.
The path depends only on the seed and the sample index, so advancing to T in one call or in many gives
bit-identical prices. Memory is bounded: only the last ``history_seconds`` of samples are kept.
"""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

__all__ = ["SECONDS_PER_YEAR", "Underlying", "UnderlyingConfig"]

SECONDS_PER_YEAR: Final = 365 * 24 * 3600
"""Crypto trades around the clock, so a year of volatility is 365 days of seconds."""

_US_PER_SECOND: Final = 1_000_000


@dataclass(frozen=True, slots=True)
class UnderlyingConfig:
    start_price: Decimal = Decimal(95000)
    annual_volatility: float = 0.5
    """Diffusion volatility only; jumps add variance on top (see :attr:`effective_annual_volatility`)."""
    jump_intensity_per_hour: float = 0.5
    jump_std: float = 0.004
    """Standard deviation of one jump's log size (≈ relative size: 0.004 is about ±0.4 %)."""
    tick_seconds: float = 1.0
    history_seconds: float = 7200.0
    """How much of the path is kept for :meth:`Underlying.average` / :meth:`Underlying.price_at`."""

    def __post_init__(self) -> None:
        if not self.start_price > 0:
            raise ValueError(f"start_price must be positive, got {self.start_price}")
        if self.annual_volatility < 0 or self.jump_intensity_per_hour < 0 or self.jump_std < 0:
            raise ValueError("annual_volatility, jump_intensity_per_hour and jump_std must be >= 0")
        if round(self.tick_seconds * _US_PER_SECOND) < 1:
            raise ValueError(f"tick_seconds must be at least one microsecond, got {self.tick_seconds}")
        if self.history_seconds < 120:
            raise ValueError("history_seconds must cover at least two minutes (settlement uses 60 s)")

    @property
    def tick_us(self) -> int:
        return round(self.tick_seconds * _US_PER_SECOND)

    @property
    def effective_annual_volatility(self) -> float:
        """Total volatility, diffusion plus jumps: √(σ² + λ_year·s²). What a fair-value model should use."""
        jumps_per_year = self.jump_intensity_per_hour * SECONDS_PER_YEAR / 3600
        return math.sqrt(self.annual_volatility**2 + jumps_per_year * self.jump_std**2)


class Underlying:
    """The index path. Call :meth:`advance_to` with simulation time; read :attr:`price` and :meth:`average`.

    Before ``start_us`` the path is flat at ``start_price`` (so a window that begins before the
    simulation started is still defined).
    """

    __slots__ = (
        "_config",
        "_diffusion_drift",
        "_diffusion_scale",
        "_jump_mean",
        "_jump_probability",
        "_jumps",
        "_last_k",
        "_rng",
        "_samples",
        "_start_price",
        "_start_us",
        "_tick_us",
    )

    def __init__(self, config: UnderlyingConfig, seed: int | str, start_us: int) -> None:
        self._config = config
        self._rng = random.Random(f"underlying:{seed}")
        self._start_us = start_us
        self._tick_us = config.tick_us
        dt_years = self._tick_us / _US_PER_SECOND / SECONDS_PER_YEAR
        sigma = config.annual_volatility
        self._diffusion_drift = -0.5 * sigma * sigma * dt_years
        self._diffusion_scale = sigma * math.sqrt(dt_years)
        self._jump_probability = config.jump_intensity_per_hour * (self._tick_us / _US_PER_SECOND) / 3600
        self._jump_mean = -0.5 * config.jump_std**2
        self._start_price = float(config.start_price)
        self._jumps = 0
        history = max(2, math.ceil(config.history_seconds * _US_PER_SECOND / self._tick_us))
        self._samples: deque[float] = deque([self._start_price], maxlen=history)
        self._last_k = 0

    @property
    def config(self) -> UnderlyingConfig:
        return self._config

    @property
    def start_us(self) -> int:
        return self._start_us

    @property
    def price(self) -> float:
        """The latest sample: the index at :attr:`last_sample_us`."""
        return self._samples[-1]

    @property
    def last_sample_us(self) -> int:
        return self._start_us + self._last_k * self._tick_us

    @property
    def jumps(self) -> int:
        """How many jumps the path has taken so far (for diagnostics and tests)."""
        return self._jumps

    def advance_to(self, now_us: int) -> None:
        """Generate every sample at or before ``now_us``. An earlier ``now_us`` than before is a no-op."""
        target = (now_us - self._start_us) // self._tick_us
        while self._last_k < target:
            self._step()

    def _step(self) -> None:
        rng = self._rng
        log_return = self._diffusion_drift + self._diffusion_scale * rng.gauss(0.0, 1.0)
        # Poisson(p) by inversion, one uniform per tick; p is tiny, so the loop almost never runs.
        u = rng.random()
        p = self._jump_probability
        term = math.exp(-p)
        cumulative = term
        n = 0
        while u > cumulative and term > 0.0:
            n += 1
            term *= p / n
            cumulative += term
        for _ in range(n):
            log_return += rng.gauss(self._jump_mean, self._config.jump_std)
        self._jumps += n
        self._samples.append(self._samples[-1] * math.exp(log_return))
        self._last_k += 1

    def _sample(self, k: int) -> float:
        if k <= 0:
            return self._start_price
        first_k = self._last_k - len(self._samples) + 1
        if k > self._last_k:
            raise ValueError(f"the index at sample {k} is in the future: advance_to() first")
        if k < first_k:
            raise ValueError(f"the index at sample {k} is older than the {self._config.history_seconds} s kept")
        return self._samples[k - first_k]

    def price_at(self, t_us: int) -> float:
        """The sample at or before ``t_us`` (the start price before ``start_us``). Must be kept and generated."""
        return self._sample((t_us - self._start_us) // self._tick_us)

    def average(self, start_us: int, end_us: int) -> float:
        """Simple mean of the samples taken at times in ``[start_us, end_us)``.

        For settlement, ``average(close − 60 s, close)`` averages the 60 one-second samples before the
        close. Raises ``ValueError`` if the window holds no sample, reaches past the last generated sample
        or falls out of the kept history.
        """
        k_lo = -((self._start_us - start_us) // self._tick_us)  # ceil((start_us - origin) / tick)
        k_hi = -((self._start_us - end_us) // self._tick_us)
        if k_hi <= k_lo:
            raise ValueError(f"no index sample in [{start_us}, {end_us})")
        return math.fsum(self._sample(k) for k in range(k_lo, k_hi)) / (k_hi - k_lo)

    def __repr__(self) -> str:
        return f"Underlying(price={self.price:.2f}, last_sample_us={self.last_sample_us}, jumps={self._jumps})"
