"""Ledger hot paths (issue 7: apply-fill, target ≤ 10 µs p50).

Run with ``.venv/bin/pytest benchmarks/test_ledger_bench.py --benchmark-only``. No timing assertions. The
ledger books each fill id once, so each benchmark cycles through more distinct fills than the ledger
remembers (its duplicate guard has forgotten a fill by the time it comes round again, and every call books
a fill). Fills alternate between buying YES and buying NO, so the position oscillates around a steady
state and every call runs the closing and the opening paths of the netting arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from itertools import cycle

from pytest_benchmark.fixture import BenchmarkFixture

from mm.domain.fees import FeeRounding, FeeSchedule
from mm.domain.orders import Fill
from mm.domain.price import Price, Quantity
from mm.domain.sides import OrderSide, Side
from mm.state.ledger import FeeSource, Ledger

M = "KXBTCD-26AUG1317-T73249.99"
T0 = 1_786_654_800_000_000  # a whole UTC hour
REMEMBERED = 1_000
DISTINCT = 2 * REMEMBERED


def _fills(fee: str) -> Callable[[], Fill]:
    """A cycle of fills: buy 3 YES at 0.48 / buy 5 NO at 0.51 (= sell 5 YES at 0.49), taker, one order per pair."""
    fills = []
    for k in range(DISTINCT):
        yes = k % 2 == 0
        fills.append(
            Fill(
                fill_id=f"fill-{k}",
                order_id=f"order-{k // 2}",
                client_order_id=None,
                market_id=M,
                side=Side.YES if yes else Side.NO,
                order_side=OrderSide.BUY,
                price=Price(4800 if yes else 5100),
                quantity=Quantity(300 if yes else 500),
                fee=Decimal(fee),
                is_taker=True,
                timestamp_us=T0 + k,
            )
        )
    return cycle(fills).__next__


def _ledger(source: FeeSource, rounding: FeeRounding = "per_fill_centicent") -> Ledger:
    lg = Ledger(
        fee_source=source,
        fees=FeeSchedule("quadratic", Decimal(1), rounding),
        cash_micros=1_000_000_000,
        recent_fills=REMEMBERED,
    )
    lg.mark(M, 4950, T0)
    return lg


def test_apply_fill_formula_fee(benchmark: BenchmarkFixture) -> None:
    """``apply_fill`` with the fee computed by Kalshi's formula, ceiled per fill to $0.0001 (paper trading)."""
    lg = _ledger("formula")
    apply, nxt = lg.apply_fill, _fills("0")
    benchmark(lambda: apply(nxt()))
    assert lg.market(M).fees.trading_micros > 0


def test_apply_fill_per_order_cent(benchmark: BenchmarkFixture) -> None:
    """``apply_fill`` under ``per_order_cent`` rounding: the per-order fee accumulator path."""
    lg = _ledger("formula", "per_order_cent")
    apply, nxt = lg.apply_fill, _fills("0")
    benchmark(lambda: apply(nxt()))
    assert lg.market(M).fees.trading_micros % 10_000 == 0


def test_apply_fill_venue_fee(benchmark: BenchmarkFixture) -> None:
    """``apply_fill`` trusting the venue's reported fee (a Decimal to convert, live trading)."""
    lg = _ledger("venue")
    apply, nxt = lg.apply_fill, _fills("0.0175")
    benchmark(lambda: apply(nxt()))
    assert lg.market(M).fees.trading_micros > 0


def test_mark_to_a_new_mid(benchmark: BenchmarkFixture) -> None:
    """``mark`` with a changed mid (int $0.0001 units): unrealized, nets and peaks recomputed."""
    lg = _ledger("formula")
    nxt = _fills("0")
    for _ in range(3):
        lg.apply_fill(nxt())
    mark, mids = lg.mark, cycle((4950, 4960)).__next__
    benchmark(lambda: mark(M, mids(), T0 + 10))
    assert lg.market(M).net_units != 0


def test_market_view(benchmark: BenchmarkFixture) -> None:
    """``market`` → MarketPnl (what the controller reads for the risk context)."""
    lg = _ledger("formula")
    lg.apply_fill(_fills("0")())
    view = benchmark(lg.market, M, T0 + 20)
    assert view.net_units == 300
