"""The backtester on hand-built sessions whose outcome is known by construction, and on synthetic ones for
determinism. Strategy: mid ± 0.02, 10 contracts a side (``simple_strategy``); book mid 0.50 → bid 0.48, ask 0.52."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from mm.backtest.config import BacktestConfigError, backtest_config
from mm.backtest.engine import run_backtest
from mm.backtest.report import build_report
from mm.backtest.results import BacktestResult
from mm.backtest.synthetic import write_synthetic_session
from mm.backtest.tape import load_tape
from tests.backtest.sessions import SessionWriter, quiet_book, simple_strategy


def backtest(path: Path, fill_model: str, **kw: object) -> BacktestResult:
    tape = load_tape(path)
    return run_backtest(tape, backtest_config(tape, fill_model=fill_model, **kw))  # type: ignore[arg-type]


def test_the_strategy_quotes_and_rests_both_sides(tmp_path: Path) -> None:
    path = quiet_book(SessionWriter()).delta(2, "yes", 4400, 100, 3100).write(tmp_path / "s.jsonl.gz")
    result = backtest(path, "pessimistic")
    assert result.samples.bid_units[0] == 4800
    assert result.samples.ask_units[0] == 5200
    assert result.orders_placed == 2  # one YES bid, one YES ask (the NO quotes are the same two orders)
    assert result.fills == []


def test_a_trade_strictly_through_our_bid_fills_it_in_every_mode(tmp_path: Path) -> None:
    path = quiet_book(SessionWriter()).trade(1, 4700, 500, "sell").write(tmp_path / "s.jsonl.gz")
    for mode in ("pessimistic", "optimistic", "probabilistic"):
        result = backtest(path, mode)
        assert [(f.buy_yes, f.yes_price_units, f.size_units, f.is_taker) for f in result.fills] == [
            (True, 4800, 500, False)
        ], mode
        assert result.position_units == 500


def test_a_touch_fills_only_the_optimistic_and_queue_modes(tmp_path: Path) -> None:
    # Nobody else bids 0.48, so the queue ahead of us is empty and the print reaches us.
    path = quiet_book(SessionWriter()).trade(1, 4800, 500, "sell").write(tmp_path / "s.jsonl.gz")
    assert backtest(path, "pessimistic").fills == []
    assert len(backtest(path, "optimistic").fills) == 1
    assert len(backtest(path, "probabilistic").fills) == 1


def test_a_print_at_our_price_waits_for_the_queue_ahead(tmp_path: Path) -> None:
    # Mid 0.50 with 30 contracts already bid 0.48: a 5-contract print at 0.48 goes to them, not to us.
    writer = SessionWriter().snapshot(0, [(4800, 3000), (4400, 3000)], [(4800, 3000), (4400, 3000)])
    path = writer.trade(1, 4800, 500, "sell").write(tmp_path / "s.jsonl.gz")
    assert backtest(path, "queue").fills == []
    assert len(backtest(path, "optimistic").fills) == 1


def test_a_book_that_crosses_our_bid_fills_only_the_optimistic_mode(tmp_path: Path) -> None:
    # A NO bid at 0.53 is a YES ask at 0.47: at or below our 0.48 bid.
    path = quiet_book(SessionWriter()).delta(1, "no", 5300, 400, 400).write(tmp_path / "s.jsonl.gz")
    fills = backtest(path, "optimistic").fills
    assert [(f.yes_price_units, f.size_units) for f in fills] == [(4700, 400)]
    assert backtest(path, "pessimistic").fills == []


def test_pnl_is_exact_marked_to_the_last_mid(tmp_path: Path) -> None:
    path = quiet_book(SessionWriter()).trade(1, 4700, 500, "sell").write(tmp_path / "s.jsonl.gz")
    result = backtest(path, "pessimistic")
    # Bought 5 YES at 0.48 as a maker (no fee on this series), marked at the 0.50 mid: +$0.10.
    assert (result.realized_micros, result.unrealized_micros, result.fees_micros) == (0, 100_000, 0)
    report = build_report(result)
    assert report.net_pnl == Decimal("0.1")
    assert report.max_long == Decimal(5)


def test_a_round_trip_realizes_the_spread_and_counts_as_a_win(tmp_path: Path) -> None:
    writer = quiet_book(SessionWriter()).trade(1, 4700, 500, "sell").trade(2, 5300, 500, "buy")
    result = backtest(writer.write(tmp_path / "s.jsonl.gz"), "pessimistic")
    assert [(f.buy_yes, f.yes_price_units, f.closing) for f in result.fills] == [
        (True, 4800, False),
        (False, 5200, True),
    ]
    assert result.realized_micros == 200_000  # (0.52 − 0.48) × 5
    assert result.position_units == 0
    report = build_report(result)
    assert (report.closing_fills, report.winning_fills, report.win_rate) == (1, 1, Decimal(1))


def test_settling_the_final_position(tmp_path: Path) -> None:
    path = quiet_book(SessionWriter()).trade(1, 4700, 500, "sell").write(tmp_path / "s.jsonl.gz")
    result = backtest(path, "pessimistic", settlement_value_units=10_000)
    assert result.settlement_payout_micros == 5_000_000  # 5 YES pay $1 each
    assert (result.position_units, result.realized_micros, result.unrealized_micros) == (0, 2_600_000, 0)


def test_inside_the_settlement_cutoff_everything_is_cancelled(tmp_path: Path) -> None:
    # The market closes 200 s in: from 20 s on we are inside the 3-minute cutoff.
    writer = quiet_book(SessionWriter(close_after_s=200))
    for t in range(1, 30):
        writer.delta(t, "yes", 4400, 100 if t % 2 else -100, 3100 if t % 2 else 3000)
    result = backtest(writer.write(tmp_path / "s.jsonl.gz"), "pessimistic")
    late = [
        b
        for ts, b in zip(result.samples.ts_us, result.samples.bid_units, strict=True)
        if ts > result.tape.start_us + 21_000_000
    ]
    assert late and all(b == -1 for b in late)
    assert result.orders_placed == 2 and result.cancels == 2


def test_a_one_sided_book_is_never_quoted(tmp_path: Path) -> None:
    path = (
        SessionWriter().snapshot(0, [(4500, 2000)], []).delta(1, "yes", 4500, 100, 2100).write(tmp_path / "s.jsonl.gz")
    )
    result = backtest(path, "optimistic")
    assert result.strategy_runs == 0 and result.orders_placed == 0


def test_a_stale_book_blocks_quoting_as_the_risk_policy_says(tmp_path: Path) -> None:
    # No book change for 10 s: past the default stale_data limit of 5 s the quotes are withdrawn.
    path = quiet_book(SessionWriter()).trade(10, 4000, 100, "sell").write(tmp_path / "s.jsonl.gz")
    result = backtest(path, "pessimistic")
    assert result.cancels == 2
    assert result.samples.bid_units[-1] == -1


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Recorded with the tight simple strategy: its quotes sit at the synthetic book's top and get filled.
    path = tmp_path_factory.mktemp("synthetic") / "s.jsonl.gz"
    return write_synthetic_session(path, events=6000, seconds=600, strategy=simple_strategy(base_spread="0.02"))


def test_the_same_inputs_give_the_same_result(synthetic: Path) -> None:
    first = backtest(synthetic, "probabilistic", seed=7)
    second = backtest(synthetic, "probabilistic", seed=7)
    assert first.fills and first.fills == second.fills
    assert first.samples == second.samples
    assert build_report(first) == build_report(second)


def test_the_probabilistic_mode_depends_on_its_seed(synthetic: Path) -> None:
    outcomes = {tuple(backtest(synthetic, "probabilistic", seed=s).fills) for s in range(4)}
    assert len(outcomes) > 1


def test_a_changed_parameter_changes_the_results(synthetic: Path) -> None:
    recorded = backtest(synthetic, "pessimistic")
    wider = backtest(synthetic, "pessimistic", strategy=simple_strategy(base_spread="0.10"))
    narrower = backtest(synthetic, "pessimistic", strategy=simple_strategy(base_spread="0.02"))
    # Rounding onto the cent grid only ever widens (a half-cent mid adds a cent).
    assert Decimal("0.10") <= (build_report(wider).avg_spread or 0) < Decimal("0.11")
    assert Decimal("0.02") <= (build_report(narrower).avg_spread or 0) < Decimal("0.03")
    assert len(narrower.fills) > len(wider.fills)
    assert recorded.config.strategy_digest != wider.config.strategy_digest


def test_fill_modes_are_ordered_on_the_same_data(synthetic: Path) -> None:
    filled = {
        m: sum(f.size_units for f in backtest(synthetic, m).fills) for m in ("pessimistic", "queue", "optimistic")
    }
    assert filled["pessimistic"] <= filled["queue"] <= filled["optimistic"]


def test_an_unknown_fill_model_or_invalid_strategy_is_refused(synthetic: Path) -> None:
    tape = load_tape(synthetic)
    with pytest.raises(BacktestConfigError, match="fill model must be one of"):
        backtest_config(tape, fill_model="psychic")
    bad = simple_strategy()
    bad["components"]["spread"]["params"]["base_spread"] = "wide"
    with pytest.raises(BacktestConfigError, match="base_spread"):
        backtest_config(tape, strategy=bad)
