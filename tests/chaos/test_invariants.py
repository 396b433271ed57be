"""The chaos suite's "nothing lost" checks can fail: each kind of loss is caught (plain unit tests, always run)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.chaos.invariants import DbFill, ExchangeFill, RestingOrder, compare, duplicate_orders, read_db_fills

T = "KXBTCD-26AUG1317-T94999.99"
EXCHANGE = [ExchangeFill("trade-1", T, 500), ExchangeFill("trade-2", T, 200)]
POSITIONS = {T: 300}  # bought 5 YES, sold 2
STORED = [DbFill("trade-1", T, "yes", "buy", 500), DbFill("trade-2", T, "yes", "sell", 200)]


def test_agreement_is_ok() -> None:
    check = compare(EXCHANGE, POSITIONS, STORED, {T: 300})
    assert check.ok and check.lost == 0


def test_a_missing_fill_is_lost_and_so_is_the_position_it_moved() -> None:
    check = compare(EXCHANGE, POSITIONS, STORED[:1], {T: 500})
    assert check.missing == ["trade-2"]
    assert check.db_positions == {T: (500, 300)} and check.node_positions == {T: (500, 300)}
    assert check.lost == 3


def test_a_fill_stored_twice_or_never_made_is_caught() -> None:
    twice = compare(EXCHANGE, POSITIONS, [*STORED, STORED[0]], {T: 300})
    assert twice.duplicated == ["trade-1"] and not twice.ok
    invented = compare(EXCHANGE, POSITIONS, [*STORED, DbFill("trade-9", T, "no", "buy", 100)], {T: 300})
    assert invented.unknown == ["trade-9"] and invented.db_positions == {T: (200, 300)}


def test_no_buys_and_yes_sells_lower_the_net_position() -> None:
    stored = [DbFill("a", T, "no", "buy", 100), DbFill("b", T, "no", "sell", 300), DbFill("c", T, "yes", "sell", 50)]
    check = compare([ExchangeFill(f.fill_id, T, f.quantity_units) for f in stored], {T: 150}, stored, None)
    assert check.ok


def test_settled_markets_are_left_out_of_the_position_comparison() -> None:
    check = compare(EXCHANGE, {T: 0}, STORED, {T: 0}, settled=[T])
    assert check.ok


def test_duplicate_resting_orders() -> None:
    bid = RestingOrder("mm:a:1:yb:0", T, "bid", 4800)
    ask = RestingOrder("mm:a:1:ya:0", T, "ask", 5200)
    assert duplicate_orders([bid, ask]) == []
    assert duplicate_orders([bid, ask, RestingOrder("mm:a:1:yb:1", T, "bid", 4700)]) == [f"2 resting orders on {T} bid"]
    assert duplicate_orders([bid, bid]) == [
        "client order id mm:a:1:yb:0 used by 2 resting orders",
        f"2 resting orders on {T} bid",
    ]


def test_fills_are_read_from_the_node_schema(tmp_path: Path) -> None:
    database = tmp_path / "mmctl.db"
    conn = sqlite3.connect(database)
    conn.execute(
        "CREATE TABLE fills (fill_id TEXT, market_id TEXT, side TEXT, order_side TEXT, quantity_units INTEGER)"
    )
    conn.execute("INSERT INTO fills VALUES ('trade-1', ?, 'yes', 'buy', 500)", (T,))
    conn.commit()
    conn.close()
    assert read_db_fills(database) == [DbFill("trade-1", T, "yes", "buy", 500)]
