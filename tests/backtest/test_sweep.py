"""Parameter sweeps: axis names, the grid, parallel runs equal to serial ones, ranking."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from mm.backtest.config import BacktestConfigError
from mm.backtest.sweep import grid_points, parse_axis, run_sweep, sort_results
from mm.backtest.synthetic import write_synthetic_session
from mm.backtest.tape import load_tape
from mm.specs.risk import RiskPolicySpec
from mm.specs.strategy import StrategySpec
from tests.backtest.sessions import simple_strategy

STRATEGY = StrategySpec.model_validate({"preset": "conservative"}).model_dump(mode="json")
RISK = RiskPolicySpec.model_validate({}).model_dump(mode="json")


def test_axis_names_resolve_to_the_spec_field() -> None:
    assert parse_axis("gamma=0.05,0.1", STRATEGY, RISK).path == ("components", "reservation_price", "params", "gamma")
    assert parse_axis("spread.base_spread=0.02", STRATEGY, RISK).path == (
        "components",
        "spread",
        "params",
        "base_spread",
    )
    assert parse_axis("max_inventory=50", STRATEGY, RISK).path == ("max_inventory",)
    axis = parse_axis("risk.rules.max_inventory.limit=100,200", STRATEGY, RISK)
    assert (axis.target, axis.path, axis.values) == ("risk_policy", ("rules", "max_inventory", "limit"), ("100", "200"))
    # Values stay exact decimals as written (no float on the way).
    assert parse_axis("gamma=0.10, 1e-1", STRATEGY, RISK).values == ("0.10", "0.1")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("gamma", "NAME=V1,V2"),
        ("gamma=", "NAME=V1,V2"),
        ("nonsense=1", "no Strategy component parameter"),
        ("spread.gamma=1", "has no parameter gamma"),
        ("risk.rules.no_such_rule.limit=1", "has no field"),
        ("gamma=0.1,0.1", "listed twice"),
    ],
)
def test_bad_axes_are_refused_with_the_axis_named(text: str, message: str) -> None:
    with pytest.raises(BacktestConfigError, match=message):
        parse_axis(text, STRATEGY, RISK)


def test_an_ambiguous_bare_name_asks_for_the_component() -> None:
    strategy = StrategySpec.model_validate(
        {"preset": "conservative", "components": {"spread": {"type": "avellaneda_stoikov", "params": {}}}}
    ).model_dump(mode="json")
    with pytest.raises(BacktestConfigError, match=r"reservation_price\.gamma, spread\.gamma"):
        parse_axis("gamma=0.1", strategy, RISK)


def test_the_grid_is_the_product_of_the_axes() -> None:
    axes = [parse_axis("gamma=0.05,0.1,0.2", STRATEGY, RISK), parse_axis("base_spread=0.02,0.04", STRATEGY, RISK)]
    points = grid_points(axes, STRATEGY, RISK)
    assert [tuple(p.values.values()) for p in points] == [
        ("0.05", "0.02"),
        ("0.05", "0.04"),
        ("0.1", "0.02"),
        ("0.1", "0.04"),
        ("0.2", "0.02"),
        ("0.2", "0.04"),
    ]
    assert points[3].strategy["components"]["reservation_price"]["params"]["gamma"] == "0.1"
    assert points[3].strategy["components"]["spread"]["params"]["base_spread"] == "0.04"
    assert STRATEGY["components"]["reservation_price"]["params"]["gamma"] == "0.3"  # the base is not modified


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sweep") / "s.jsonl.gz"
    return write_synthetic_session(path, events=3000, seconds=300, strategy=simple_strategy(base_spread="0.02"))


def recorded_specs(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    market = load_tape(path).market()
    return dict(market.strategy or {}), dict(market.risk_policy or {})


def test_parallel_workers_give_the_serial_results_in_grid_order(session: Path) -> None:
    strategy, risk = recorded_specs(session)
    axes = [parse_axis("base_spread=0.02,0.04,0.08", strategy, risk), parse_axis("base_size=5,10", strategy, risk)]
    points = grid_points(axes, strategy, risk)
    seen: list[int] = []
    serial = run_sweep(session, points, workers=1, fill_model="probabilistic", seed=3)
    parallel = run_sweep(
        session, points, workers=2, fill_model="probabilistic", seed=3, progress=lambda d, _: seen.append(d)
    )
    assert [r.report for r in parallel] == [r.report for r in serial]
    assert seen == [1, 2, 3, 4, 5, 6]
    assert len({r.report.strategy_digest for r in serial}) == 6
    assert len({r.report.net_pnl for r in serial}) > 1  # the parameters matter


def test_a_bad_value_fails_before_anything_runs(session: Path) -> None:
    points = grid_points([parse_axis("base_spread=0.02,-1", STRATEGY, RISK)], STRATEGY, RISK)
    with pytest.raises(BacktestConfigError, match="base_spread"):
        run_sweep(session, points, workers=2)


def test_ranking_by_a_figure_puts_unknowns_last(session: Path) -> None:
    strategy, risk = recorded_specs(session)
    points = grid_points([parse_axis("base_spread=0.02,0.04,0.08", strategy, risk)], strategy, risk)
    results = run_sweep(session, points, fill_model="optimistic")
    ranked = sort_results(results, "net_pnl")
    assert [r.report.net_pnl for r in ranked] == sorted((r.report.net_pnl for r in results), reverse=True)
    ascending = sort_results(results, "max_drawdown", descending=False)
    assert ascending[0].report.max_drawdown == min(r.report.max_drawdown for r in results)
    with pytest.raises(BacktestConfigError, match="not a report figure"):
        sort_results(results, "happiness")
    assert isinstance(ranked[0].report.net_pnl, Decimal)
