"""The Avellaneda & Stoikov (2008) §3.3 reproduction: formula pieces, mechanics, determinism, qualitative results."""

from __future__ import annotations

import math

import pytest

from mm.research.avellaneda_stoikov import (
    PUBLISHED,
    ExperimentParams,
    StrategyStats,
    format_table,
    hit_probability,
    optimal_spread,
    reservation_price,
    run_experiment,
)

PATHS = 300
SEED = 7
GAMMAS = (0.1, 0.01, 1.0)


@pytest.fixture(scope="module")
def rows() -> dict[tuple[float, str], StrategyStats]:
    return {(r.gamma, r.strategy): r for r in run_experiment(GAMMAS, paths=PATHS, seed=SEED)}


# --- formula pieces, against hand-computed values ---------------------------------------------------------


def test_reservation_price() -> None:
    assert reservation_price(100.0, 0, 0.1, 2.0, 1.0) == 100.0
    assert reservation_price(100.0, 5, 0.1, 2.0, 1.0) == pytest.approx(98.0)  # 100 - 5*0.1*4*1
    assert reservation_price(100.0, -3, 0.1, 2.0, 0.5) == pytest.approx(100.6)  # 100 + 3*0.1*4*0.5
    assert reservation_price(100.0, 5, 0.1, 2.0, 0.0) == 100.0  # no skew left at T


def test_optimal_spread() -> None:
    # gamma*sigma^2*tau + (2/gamma)*ln(1 + gamma/k) = 0.4 + 20*ln(16/15) = 0.4 + 1.2907704...
    assert optimal_spread(0.1, 2.0, 1.0, 1.5) == pytest.approx(1.6907704, abs=1e-7)
    assert optimal_spread(0.1, 2.0, 0.0, 1.5) == pytest.approx(1.2907704, abs=1e-7)
    assert optimal_spread(1.0, 2.0, 0.0, 1.5) == pytest.approx(2 * math.log(5 / 3))  # 1.0216512...
    # the constant (order-arrival) term falls with gamma towards 2/k; the inventory term rises with it
    consts = [optimal_spread(g, 2.0, 0.0, 1.5) for g in (0.01, 0.1, 1.0)]
    assert consts == sorted(consts, reverse=True)
    assert all(c < 2 / 1.5 for c in consts)


def test_hit_probability() -> None:
    assert hit_probability(0.0, 140.0, 1.5, 0.005) == pytest.approx(0.7)  # A*dt
    assert hit_probability(math.log(2) / 1.5, 140.0, 1.5, 0.005) == pytest.approx(0.35)
    assert hit_probability(-1.0, 140.0, 1.5, 0.005) == 1.0  # 140*e^1.5*0.005 = 3.14, clipped
    assert hit_probability(-1e6, 140.0, 1.5, 0.005) == 1.0  # no overflow however deep through the mid
    assert 0.0 <= hit_probability(1000.0, 140.0, 1.5, 0.005) < 1e-300
    probs = [hit_probability(d / 10, 140.0, 1.5, 0.005) for d in range(-5, 30)]
    assert probs == sorted(probs, reverse=True)


# --- simulation mechanics, in limits where the answer is known exactly ------------------------------------


def test_certain_fills_earn_the_spread_every_step() -> None:
    # lambda*dt >= 1 everywhere: both quotes fill every step, inventory stays 0, profit = sum of spreads quoted.
    result = run_experiment((0.1,), paths=5, seed=1, params=ExperimentParams(A=1e12))
    n = 200
    for row in result:
        assert row.mean_final_q == 0.0
        assert row.std_final_q == 0.0
        assert row.mean_profit == pytest.approx(n * row.spread, rel=1e-9)
        assert row.std_profit == pytest.approx(0.0, abs=1e-9)


def test_no_fills_no_profit() -> None:
    for row in run_experiment((0.1,), paths=5, seed=1, params=ExperimentParams(A=1e-300)):
        assert (row.mean_profit, row.std_profit, row.mean_final_q, row.std_final_q) == (0.0, 0.0, 0.0, 0.0)


def test_invalid_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="paths"):
        run_experiment(paths=1)
    with pytest.raises(ValueError, match="gammas"):
        run_experiment(gammas=(0.1, 0.0), paths=10)
    with pytest.raises(ValueError, match="gammas"):
        run_experiment(gammas=(), paths=10)
    with pytest.raises(ValueError, match="whole number"):
        run_experiment(paths=10, params=ExperimentParams(dt=0.003))


# --- determinism ------------------------------------------------------------------------------------------


def test_same_seed_gives_identical_rows() -> None:
    assert run_experiment(paths=40, seed=3) == run_experiment(paths=40, seed=3)


def test_different_seed_gives_different_rows() -> None:
    a, b = run_experiment(paths=40, seed=3), run_experiment(paths=40, seed=4)
    assert all(x.mean_profit != y.mean_profit for x, y in zip(a, b, strict=True))


def test_a_gammas_rows_do_not_depend_on_the_other_gammas() -> None:
    # common random numbers: every (gamma, strategy) cell is run on the same draws of path i
    alone = run_experiment((1.0,), paths=40, seed=3)
    together = [r for r in run_experiment((0.1, 1.0), paths=40, seed=3) if r.gamma == 1.0]
    assert alone == together


# --- the spread column --------------------------------------------------------------------------------------


def test_average_spread_is_the_formula_averaged_over_the_quoting_instants(
    rows: dict[tuple[float, str], StrategyStats],
) -> None:
    for g in GAMMAS:
        inv, sym = rows[(g, "inventory")], rows[(g, "symmetric")]
        assert sym.spread == inv.spread  # the symmetric strategy quotes the inventory strategy's average
        steps = [optimal_spread(g, 2.0, 1.0 - j * 0.005, 1.5) for j in range(200)]
        assert inv.spread == pytest.approx(sum(steps) / 200, rel=1e-12)
        # ... which is the continuous-time average gamma*sigma^2*T/2 + (2/gamma)ln(1+gamma/k), plus gamma*sigma^2*dt/2
        continuous = g * 4.0 / 2 + (2 / g) * math.log1p(g / 1.5)
        assert inv.spread - continuous == pytest.approx(g * 4.0 * 0.005 / 2, abs=1e-12)
        assert round(continuous, 2) == PUBLISHED[g]["inventory"][0]  # the paper's column: 1.49, 1.35, 3.02
    assert rows[(0.1, "inventory")].spread == pytest.approx(1.4918, abs=1e-4)


def test_average_spread_rises_with_gamma_at_the_papers_parameters(
    rows: dict[tuple[float, str], StrategyStats],
) -> None:
    # not monotone in general (the constant term falls with gamma), but here gamma*sigma^2*T/2 dominates
    spreads = [rows[(g, "inventory")].spread for g in (0.01, 0.1, 1.0)]
    assert spreads == sorted(spreads)


def test_symmetric_strategy_matches_its_closed_form(rows: dict[tuple[float, str], StrategyStats]) -> None:
    # Symmetric quotes: each side fills independently with the same p per step, so with N steps
    #   profit = h * (#fills) + sum_j q_{j+1} dS_j,  E = 2Np*h,
    #   Var = 2Np(1-p)*h^2 + sigma^2*dt*2p(1-p)*N(N+1)/2,  Var(q_T) = N*2p(1-p).
    # Tolerances: over seeds 1-100 at 300 paths the worst deviations were 3.0 SE (mean), 21% (std of profit,
    # heavy-tailed) and 12% (std of final q); the seed is fixed, so this is a deterministic check.
    n, dt, sigma = 200, 0.005, 2.0
    for g in GAMMAS:
        row = rows[(g, "symmetric")]
        h = row.spread / 2
        p = 140.0 * dt * math.exp(-1.5 * h)
        v = 2 * p * (1 - p)
        mean = 2 * n * p * h
        std = math.sqrt(2 * n * p * (1 - p) * h * h + sigma * sigma * dt * v * n * (n + 1) / 2)
        assert abs(row.mean_profit - mean) < 4 * std / math.sqrt(PATHS)
        assert row.std_profit == pytest.approx(std, rel=0.25)
        assert row.std_final_q == pytest.approx(math.sqrt(n * v), rel=0.15)


# --- the paper's qualitative findings, at 300 paths ---------------------------------------------------------


def test_inventory_strategy_has_much_less_inventory_risk(rows: dict[tuple[float, str], StrategyStats]) -> None:
    for g in GAMMAS:
        inv, sym = rows[(g, "inventory")], rows[(g, "symmetric")]
        assert inv.std_final_q < 0.75 * sym.std_final_q
        assert inv.std_profit < sym.std_profit


def test_symmetric_strategy_earns_more_when_very_risk_averse(rows: dict[tuple[float, str], StrategyStats]) -> None:
    # paper Table 3: 31.4 against 44.0; the gap is ~20 standard errors at 300 paths
    assert rows[(1.0, "symmetric")].mean_profit > rows[(1.0, "inventory")].mean_profit + 5.0


def test_mean_final_inventory_is_near_zero(rows: dict[tuple[float, str], StrategyStats]) -> None:
    for row in rows.values():  # the model is symmetric between buying and selling
        assert abs(row.mean_final_q) < 4 * row.std_final_q / math.sqrt(PATHS)


def test_mean_profit_is_within_monte_carlo_error_of_the_published_table(
    rows: dict[tuple[float, str], StrategyStats],
) -> None:
    for (g, strategy), row in rows.items():
        published = PUBLISHED[g][strategy][1]
        assert abs(row.mean_profit - published) < 4 * row.std_profit / math.sqrt(PATHS) + 0.05


# --- the table --------------------------------------------------------------------------------------------------


def test_published_table_shape() -> None:
    assert set(PUBLISHED) == {0.1, 0.01, 1.0}
    for by_strategy in PUBLISHED.values():
        assert set(by_strategy) == {"inventory", "symmetric"}
        assert all(len(v) == 5 for v in by_strategy.values())


def test_format_table(rows: dict[tuple[float, str], StrategyStats]) -> None:
    text = format_table(list(rows.values()))
    assert f"paths: {PATHS}  seed: {SEED}" in text
    for label in ("gamma = 0.1", "gamma = 0.01", "gamma = 1", "Spread", "Std(Profit)", "Std(Final q)"):
        assert label in text
    assert text.count("Inventory ") == 3
    assert text.count("Symmetric ") == 3
    inv = rows[(0.1, "inventory")]
    assert f"{inv.mean_profit:.2f}" in text


def test_format_table_refuses_mixed_runs_and_nothing() -> None:
    a = run_experiment((0.1,), paths=10, seed=1)
    b = run_experiment((0.01,), paths=10, seed=2)
    with pytest.raises(ValueError, match="different runs"):
        format_table(a + b)
    with pytest.raises(ValueError, match="no rows"):
        format_table([])
