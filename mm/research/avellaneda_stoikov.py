"""Reproduction of the numerical experiment of Avellaneda & Stoikov (2008), §3.3.

M. Avellaneda and S. Stoikov, "High-frequency trading in a limit order book", Quantitative Finance 8(3),
217-224, 2008. The paper's simulation section is §3.3 "Numerical simulations" (Tables 1-3); there is no §4.

This is an offline research simulation, not part of the money path: it uses binary floats throughout
(our trading code keeps money in exact integer units, see docs/decisions/001). Output is deterministic:
all randomness comes from one ``random.Random(seed)``, so the same seed and arguments give bit-identical
rows. ``Random.random()`` is guaranteed to give the same sequence for the same seed across Python versions;
``math.exp``/``math.log1p`` come from the platform's C library, so a different platform could in principle
round a last bit differently and flip a rare fill decision.

The model (paper eqs. (29)-(30) of the published version, (3.17)-(3.18) of the 2006 preprint):

* mid price: a binomial walk; each step ``s += sigma*sqrt(dt)`` or ``-= sigma*sqrt(dt)``, probability 1/2
  each (the paper: "the mid-price is updated by a random increment ±σ√dt");
* reservation price ``r = s - q*gamma*sigma**2*(T - t)``;
* total spread ``delta_a + delta_b = gamma*sigma**2*(T - t) + (2/gamma)*ln(1 + gamma/k)``, placed
  symmetrically around ``r``: ``bid = r - spread/2``, ``ask = r + spread/2``; the distances the fill
  intensity sees are measured from the MID: ``delta_b = s - bid``, ``delta_a = ask - s``;
* a quote at distance ``delta`` is hit within a step with probability ``lambda(delta)*dt``,
  ``lambda(delta) = A*exp(-k*delta)``, as the paper writes it (first-order, not ``1 - exp(-lambda*dt)``).

Modelling choices (each one is either the paper's own wording or is stated here because it is not):

1. Order of operations in a step, following the paper's description ("at time t, the agent's quotes are
   computed, given the state variables. At time t+dt, the state variables are updated"): quotes are
   computed from the state ``(s_t, q_t, t)``; the ask is lifted with probability ``lambda(delta_a)*dt``
   (``q -= 1``, ``cash += ask``) and, independently, the bid is hit with probability ``lambda(delta_b)*dt``
   (``q += 1``, ``cash -= bid``), both at the quotes computed from ``s_t`` and ``q_t``, so both sides may
   trade in the same step; then the mid moves. Quotes are computed at ``t_j = j*dt`` for
   ``j = 0..N-1``, ``N = round(T/dt) = 200``; at ``t_N = T`` nothing is quoted and the profit is
   ``cash + q_T * s_T``.
2. ``lambda*dt`` is clipped to [0, 1] (:func:`hit_probability`). Here ``A*dt = 0.7``, so the clip binds
   when ``delta < ln(A*dt)/k ≈ -0.24``, i.e. a quote more than 0.24 through the mid, which a large
   inventory skew can cause. In the simulation loop the clip is implicit: the uniform draw ``u`` is in
   [0, 1), so ``u < p`` is certain for ``p >= 1``.
3. At most one unit per side per step, of size 1; no inventory limit (the paper states none).
4. Symmetric strategy: quotes ``s ± spread/2`` with a constant ``spread`` equal to the inventory
   strategy's average spread for that gamma (paper: it "uses the average bid/ask spread of the inventory
   strategy over the time period, but centres it around the mid-price"). The inventory strategy's spread
   does not depend on ``q`` or ``s``, so that average is the same on every path: the mean over the N
   quoting instants, ``mean_j spread(T - t_j) = gamma*sigma**2*(T - dt*(N-1)/2) + (2/gamma)*ln(1+gamma/k)``.
   It exceeds the continuous-time average ``gamma*sigma**2*T/2 + (2/gamma)*ln(1+gamma/k)`` by
   ``gamma*sigma**2*dt/2`` (0.001 at gamma = 0.1, 0.01 at gamma = 1: 3.03 here against the paper's 3.02).
5. Common random numbers: path ``i`` draws its N steps as (ask uniform, bid uniform, mid-move uniform)
   from the single generator, and every (gamma, strategy) cell is run on that same draw. The cells are
   therefore positively correlated (which sharpens the inventory-vs-symmetric comparison) and a gamma's
   rows do not depend on which other gammas are requested. The paper does not say how it drew its paths.
6. Statistics: mean and SAMPLE standard deviation (n - 1) over paths of the profit and of the final
   inventory ``q_T``; the paper does not say which standard deviation it used (the difference is 0.05%
   at 1,000 paths).
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "PUBLISHED",
    "ExperimentParams",
    "StrategyStats",
    "format_table",
    "hit_probability",
    "optimal_spread",
    "reservation_price",
    "run_experiment",
]

# The published table: Avellaneda & Stoikov (2008), Quantitative Finance 8(3), §3.3, Tables 1-3 (pp. 222-223),
# 1000 simulations each. Per gamma and strategy: (average spread, profit, std(profit), final q, std(final q)).
# Transcribed from the author's copy of the published article (math.nyu.edu/~avellane/HighFrequencyTrading.pdf)
# as quoted, identically, by three independent public sources; the PDF itself was not read here. The October 2006
# preprint has DIFFERENT tables (gamma 0.1 / 0.01 / 0.5, spread column = the constant term only); see
# docs/research/avellaneda-stoikov-2008.md.
PUBLISHED: dict[float, dict[str, tuple[float, float, float, float, float]]] = {
    0.1: {"inventory": (1.49, 65.0, 6.6, 0.08, 2.9), "symmetric": (1.49, 68.4, 12.7, 0.26, 8.4)},
    0.01: {"inventory": (1.35, 68.6, 8.7, 0.12, 5.1), "symmetric": (1.35, 68.8, 12.8, 0.09, 8.7)},
    1.0: {"inventory": (3.02, 31.4, 5.0, 0.02, 1.7), "symmetric": (3.02, 44.0, 11.0, 0.00, 5.1)},
}


@dataclass(frozen=True, slots=True)
class ExperimentParams:
    """The experiment's parameters; the defaults are the paper's (§3.3)."""

    s0: float = 100.0
    T: float = 1.0
    sigma: float = 2.0
    dt: float = 0.005
    q0: int = 0
    A: float = 140.0
    k: float = 1.5


@dataclass(frozen=True, slots=True)
class StrategyStats:
    """One row of the results table: one strategy at one gamma, aggregated over ``paths`` paths."""

    strategy: str  # "inventory" | "symmetric"
    gamma: float
    spread: float  # average total spread quoted
    mean_profit: float
    std_profit: float
    mean_final_q: float
    std_final_q: float
    paths: int = 0  # how many paths the statistics are over (for the table header)
    seed: int | None = None  # the seed of the run (for the table header)


# Exponent cap: e**700 ≈ 1e304, so for any A*dt >= 1e-304 the capped probability is still >= 1 and capping changes
# no fill decision; it only stops math.exp overflowing for a quote absurdly deep through the mid.
_MAX_EXP = 700.0


def reservation_price(s: float, q: float, gamma: float, sigma: float, tau: float) -> float:
    """Indifference price ``r = s - q*gamma*sigma**2*tau``, ``tau = T - t`` the time left."""
    return s - q * gamma * sigma * sigma * tau


def optimal_spread(gamma: float, sigma: float, tau: float, k: float) -> float:
    """Total quoted spread ``gamma*sigma**2*tau + (2/gamma)*ln(1 + gamma/k)``; independent of inventory."""
    return gamma * sigma * sigma * tau + (2.0 / gamma) * math.log1p(gamma / k)


def hit_probability(delta: float, A: float, k: float, dt: float) -> float:  # noqa: N803 - the paper's symbol
    """Probability that a quote ``delta`` from the mid is hit within ``dt``: ``A*exp(-k*delta)*dt`` in [0, 1]."""
    return min(1.0, max(0.0, A * math.exp(min(-k * delta, _MAX_EXP)) * dt))


def _steps(params: ExperimentParams) -> int:
    n = round(params.T / params.dt)
    if n < 1 or not math.isclose(n * params.dt, params.T, rel_tol=1e-9):
        raise ValueError(f"T / dt must be a positive whole number of steps, got T={params.T}, dt={params.dt}")
    return n


def run_experiment(
    gammas: Sequence[float] = (0.1, 0.01, 1.0),
    paths: int = 1000,
    seed: int = 1,
    params: ExperimentParams = ExperimentParams(),
) -> list[StrategyStats]:
    """Simulate both strategies for each gamma; rows in ``gammas`` order, inventory then symmetric."""
    if paths < 2:
        raise ValueError("paths must be at least 2 (a standard deviation needs two samples)")
    if not gammas or any(g <= 0.0 for g in gammas):
        raise ValueError("gammas must be non-empty and all positive")
    if params.A <= 0.0 or params.k <= 0.0 or params.sigma < 0.0:
        raise ValueError("A and k must be positive and sigma non-negative")
    n = _steps(params)
    sigma, k, dt, tt = params.sigma, params.k, params.dt, params.T
    a_dt = params.A * dt
    step = sigma * math.sqrt(dt)
    exp = math.exp

    # Per gamma, precomputed per step: half-spread and skew per unit of inventory (gamma*sigma^2*tau).
    halves: list[list[float]] = []
    skews: list[list[float]] = []
    sym_half: list[float] = []
    sym_p: list[float] = []
    avg_spread: list[float] = []
    for g in gammas:
        taus = [tt - j * dt for j in range(n)]
        spreads = [optimal_spread(g, sigma, tau, k) for tau in taus]
        halves.append([x / 2.0 for x in spreads])
        skews.append([g * sigma * sigma * tau for tau in taus])
        avg = math.fsum(spreads) / n
        avg_spread.append(avg)
        sym_half.append(avg / 2.0)
        sym_p.append(hit_probability(avg / 2.0, params.A, k, dt))

    cells = 2 * len(gammas)
    profit = [[0.0] * paths for _ in range(cells)]
    final_q = [[0.0] * paths for _ in range(cells)]
    mids = [0.0] * (n + 1)  # reused buffers: no allocation inside the step loops
    u_ask = [0.0] * n
    u_bid = [0.0] * n
    rand = random.Random(seed).random

    for i in range(paths):
        s = params.s0
        for j in range(n):
            mids[j] = s
            u_ask[j] = rand()
            u_bid[j] = rand()
            s = s + step if rand() < 0.5 else s - step
        mids[n] = s_end = s

        for c in range(len(gammas)):
            half, skew = halves[c], skews[c]
            q, cash = params.q0, 0.0
            for j in range(n):  # inventory strategy: quotes around the reservation price
                s = mids[j]
                r = s - q * skew[j]
                ask = r + half[j]
                bid = r - half[j]
                x = k * (s - ask)  # the same as hit_probability(ask - s, ...), clip implicit (see docstring)
                if u_ask[j] < a_dt * exp(x if x < _MAX_EXP else _MAX_EXP):
                    q -= 1
                    cash += ask
                x = k * (bid - s)
                if u_bid[j] < a_dt * exp(x if x < _MAX_EXP else _MAX_EXP):
                    q += 1
                    cash -= bid
            profit[2 * c][i] = cash + q * s_end
            final_q[2 * c][i] = q

            h, p = sym_half[c], sym_p[c]
            q, cash = params.q0, 0.0
            for j in range(n):  # symmetric strategy: constant spread around the mid
                if u_ask[j] < p:
                    q -= 1
                    cash += mids[j] + h
                if u_bid[j] < p:
                    q += 1
                    cash -= mids[j] - h
            profit[2 * c + 1][i] = cash + q * s_end
            final_q[2 * c + 1][i] = q

    rows: list[StrategyStats] = []
    for c, g in enumerate(gammas):
        for offset, name in ((0, "inventory"), (1, "symmetric")):
            pr, fq = profit[2 * c + offset], final_q[2 * c + offset]
            rows.append(
                StrategyStats(
                    strategy=name,
                    gamma=g,
                    spread=avg_spread[c],
                    mean_profit=statistics.fmean(pr),
                    std_profit=statistics.stdev(pr),
                    mean_final_q=statistics.fmean(fq),
                    std_final_q=statistics.stdev(fq),
                    paths=paths,
                    seed=seed,
                )
            )
    return rows


def format_table(rows: Sequence[StrategyStats]) -> str:
    """The paper's table layout: per gamma, an Inventory and a Symmetric row; header names paths and seed."""
    if not rows:
        raise ValueError("no rows to format")
    runs = {(r.paths, r.seed) for r in rows}
    if len(runs) != 1:
        raise ValueError(f"rows come from different runs (paths, seed): {sorted(runs, key=str)}")
    paths, seed = runs.pop()
    lines = [
        "Avellaneda & Stoikov (2008) §3.3 reproduction: inventory vs symmetric strategy",
        f"paths: {paths}  seed: {'unknown' if seed is None else seed}",
    ]
    header = f"{'Strategy':<10} {'Spread':>7} {'Profit':>8} {'Std(Profit)':>11} {'Final q':>8} {'Std(Final q)':>12}"
    gammas: list[float] = []
    for r in rows:
        if r.gamma not in gammas:
            gammas.append(r.gamma)
    for g in gammas:
        lines += ["", f"gamma = {g:g}", header, "-" * len(header)]
        for r in rows:
            if r.gamma == g:
                lines.append(
                    f"{r.strategy.capitalize():<10} {r.spread:>7.2f} {r.mean_profit:>8.2f} {r.std_profit:>11.2f} "
                    f"{r.mean_final_q:>8.2f} {r.std_final_q:>12.2f}"
                )
    return "\n".join(lines)
