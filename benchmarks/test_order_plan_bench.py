"""Order planner benchmarks (design.md §9: WS frame → order actions decided ≤ 100 µs p50 in total).

The common case is the first one: two merged levels, two resting orders, nothing material changed.
"""

from __future__ import annotations

from pytest_benchmark.fixture import BenchmarkFixture

from mm.adapters.kalshi.adapter import KALSHI_CAPABILITIES
from mm.domain.orders import Order, OrderRequest
from mm.domain.price import Price, Quantity
from mm.domain.quotes import QuoteSet
from mm.domain.ticks import TickGrid
from mm.reconcilers.order_plan import Amend, Cancel, Place, PlanContext, plan_orders
from mm.risk.states import TradingState

MARKET = "KXBTCD-26AUG1317-T73249.99"
NOW = 1_780_000_000_000_000
CONTEXT = PlanContext(
    MARKET, TickGrid.linear_cent(), KALSHI_CAPABILITIES, generation=3, now_us=NOW, last_update_us=NOW - 1_000_000
)
QUOTES = QuoteSet.from_yes(MARKET, NOW, (Price(4800), Quantity.contracts(100)), (Price(5200), Quantity.contracts(100)))
MOVED = QuoteSet.from_yes(MARKET, NOW, (Price(4700), Quantity.contracts(100)), (Price(5300), Quantity.contracts(100)))


def _resting(plan_actions: tuple[object, ...]) -> list[Order]:
    orders = []
    for i, action in enumerate(plan_actions):
        assert isinstance(action, Place)
        request: OrderRequest = action.request
        orders.append(Order.pending(request, NOW).acknowledged(f"ex-{i}", NOW))
    return orders


OPEN = _resting(plan_orders(QUOTES, [], CONTEXT).actions)


def test_unchanged_two_levels_two_orders(benchmark: BenchmarkFixture) -> None:
    plan = benchmark(plan_orders, QUOTES, OPEN, CONTEXT)
    assert plan.actions == () and len(plan.kept) == 2


def test_both_levels_moved_two_amends(benchmark: BenchmarkFixture) -> None:
    plan = benchmark(plan_orders, MOVED, OPEN, CONTEXT)
    assert [type(a) for a in plan.actions] == [Amend, Amend]


def test_first_placement_two_places(benchmark: BenchmarkFixture) -> None:
    plan = benchmark(plan_orders, QUOTES, [], CONTEXT)
    assert [type(a) for a in plan.actions] == [Place, Place]


def test_halted_two_cancels(benchmark: BenchmarkFixture) -> None:
    halted = PlanContext(
        MARKET, CONTEXT.grid, KALSHI_CAPABILITIES, generation=3, now_us=NOW, trading_state=TradingState.HALTED
    )
    plan = benchmark(plan_orders, QUOTES, OPEN, halted)
    assert [type(a) for a in plan.actions] == [Cancel, Cancel]
