"""An hour and more of simulated market life, stepped with a SimulatedClock (no real time passes)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from mm.clock import SimulatedClock, datetime_to_us
from mm.sim.market_loop import MarketLoop, default_crowd
from mm.sim.schedule import Schedule
from mm.sim.setup import build_state, create_additional_key, load_or_create_key
from mm.sim.types import OrderStatus
from mm.sim.underlying import Underlying, UnderlyingConfig

START = datetime_to_us(datetime(2026, 8, 13, 20, 30, tzinfo=UTC))  # 16:30 EDT: the 17:00 event is open
SECOND = 1_000_000


def run_loop(seconds: int, seed: int = 7) -> tuple[MarketLoop, SimulatedClock]:
    clock = SimulatedClock(START)
    state = build_state(clock, auth_clock=SimulatedClock(START))
    loop = MarketLoop(state, Schedule(strikes=5), Underlying(UnderlyingConfig(), seed, START), default_crowd(seed))
    for _ in range(seconds):
        loop.step()
        clock.advance_us(SECOND)
    return loop, clock


def test_markets_open_trade_close_determine_and_settle() -> None:
    loop, _ = run_loop(40 * 60)  # 16:30 → 17:10 EDT: the 17:00 event closes and settles, the 18:00 one opens
    exchange = loop.state.exchange
    first = [t for t in exchange.markets if t.startswith("KXBTCD-26AUG1317-")]
    second = [t for t in exchange.markets if t.startswith("KXBTCD-26AUG1318-")]
    assert len(first) == 5 and len(second) == 5
    assert {exchange.markets[t].status for t in first} == {"finalized"}
    assert {exchange.markets[t].status for t in second} == {"active"}
    results = Counter(exchange.markets[t].result for t in first)
    assert set(results) <= {"yes", "no"} and sum(results.values()) == 5
    trades = [f for f in exchange.fills if f[2]]
    assert len(trades) > 100  # a trade every few seconds across the ladder
    # nothing of a settled market is left: no positions, no resting orders
    for account in exchange.accounts.values():
        assert not any(account.positions.get(t) for t in first)
    assert not any(o.status is OrderStatus.RESTING for o in exchange.orders.values() if o.ticker in first)


def test_books_look_like_a_thin_prediction_market() -> None:
    loop, _ = run_loop(10 * 60)
    spreads = []
    for market in loop.state.exchange.markets.values():
        bid, ask = market.engine.best_bid(), market.engine.best_ask()
        if bid is not None and ask is not None:
            assert bid < ask
            spreads.append(ask - bid)
    assert spreads and max(spreads) <= 1500  # a few cents, never a 15-cent gap on a two-sided book


def test_cash_and_contracts_are_conserved_across_the_whole_run() -> None:
    loop, _ = run_loop(35 * 60)
    exchange = loop.state.exchange
    start = len(exchange.accounts) * 10_000_000 * 1_000_000
    fees = sum(f[3] for f in exchange.fills)
    open_pairs = 0
    for ticker in exchange.markets:
        yes = sum(max(a.positions.get(ticker, 0), 0) for a in exchange.accounts.values())
        no = sum(max(-a.positions.get(ticker, 0), 0) for a in exchange.accounts.values())
        assert yes == no
        open_pairs += yes
    assert sum(a.balance for a in exchange.accounts.values()) + open_pairs * 10_000 + fees == start


def test_same_seed_same_market() -> None:
    a, _ = run_loop(5 * 60, seed=3)
    b, _ = run_loop(5 * 60, seed=3)
    assert [(f[1].price, f[1].count) for f in a.state.exchange.fills] == [
        (f[1].price, f[1].count) for f in b.state.exchange.fills
    ]


def test_keys_are_created_once_and_loaded_after(tmp_path: Path) -> None:
    clock = SimulatedClock(START)
    first = load_or_create_key(tmp_path, build_state(clock))
    assert first.key_file.exists() and (first.key_file.stat().st_mode & 0o777) == 0o600
    again = load_or_create_key(tmp_path, build_state(clock))
    assert again == first
    extra = create_additional_key(tmp_path, "desk-2")
    state = build_state(clock)
    load_or_create_key(tmp_path, state)
    assert extra.key_id in state.keys and set(state.exchange.accounts) == {"sim-user", "desk-2"}
