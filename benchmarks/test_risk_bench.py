"""Risk pipeline benchmarks (design.md §9: all built-in rules ≤ 15 µs p50)."""

from __future__ import annotations

from pytest_benchmark.fixture import BenchmarkFixture

from mm.risk.engine import RiskEngine
from mm.risk.kill_switch import InMemoryLatch, KillSwitch
from mm.risk.registry import build_pipeline
from mm.specs.risk import RiskPolicySpec
from tests.risk.builders import contracts, dollars, make_context, near_half

PIPELINE = build_pipeline(RiskPolicySpec.model_validate({}))
QUOTES = near_half(100, 100)


def test_all_builtin_rules_allowing(benchmark: BenchmarkFixture) -> None:
    context = make_context()
    result = benchmark(PIPELINE.evaluate, QUOTES, context)
    assert result.quotes is QUOTES and len(result.records) == 12


def test_all_builtin_rules_with_soft_limits_modifying(benchmark: BenchmarkFixture) -> None:
    # 85 % of max inventory (sizes cut) and 60 % of the hourly loss limit (spreads widened).
    context = make_context(inventory_units=contracts(850), hourly_pnl_units=dollars(-30))
    result = benchmark(PIPELINE.evaluate, QUOTES, context)
    assert result.quotes is not None and result.quotes != QUOTES


def test_all_builtin_rules_blocked_early(benchmark: BenchmarkFixture) -> None:
    context = make_context(time_to_settlement_seconds=60.0)
    result = benchmark(PIPELINE.evaluate, QUOTES, context)
    assert result.blocked_by == "settlement_cutoff"


def test_engine_evaluate_with_every_check(benchmark: BenchmarkFixture) -> None:
    latch = InMemoryLatch()
    engine = RiskEngine(PIPELINE, KillSwitch(latch, "market/M"), KillSwitch(latch, "node"))
    context = make_context(inventory_units=contracts(100))
    outcome = benchmark(engine.evaluate, QUOTES, context)
    assert outcome.quotes is not None
