"""Starting positions (FR-1401) and average prices (FR-1402): sources, methods, warnings, the inventory guard."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mm.domain.errors import MmError
from mm.domain.orders import Fill
from mm.domain.portfolio import Position
from mm.domain.price import Price, Quantity
from mm.domain.sides import OrderSide, Side
from mm.specs.node import PositionHandling
from mm.state.ledger import Ledger
from mm.state.position_import import (
    ManualAvgPrice,
    ManualPositionEntry,
    PositionImportError,
    StartingInventoryError,
    check_starting_inventory,
    import_from_checkpoint,
    import_from_exchange,
    import_manual,
    manual_config,
    seed_ledger,
)

DOLLAR = 1_000_000
CENT = DOLLAR // 100
A, B = "KXBTCD-26AUG1317-T73249.99", "KXBTCD-26AUG1317-T73499.99"


def held(market: str, yes: int = 0, no: int = 0, avg_yes: str | None = None, avg_no: str | None = None) -> Position:
    return Position(
        market_id=market,
        yes=Quantity.contracts(yes),
        no=Quantity.contracts(no),
        avg_yes_price=None if avg_yes is None else Decimal(avg_yes),
        avg_no_price=None if avg_no is None else Decimal(avg_no),
    )


def test_query_exchange_uses_the_venues_average_then_its_cost() -> None:
    result = import_from_exchange(
        [held(B, no=4), held(A, yes=10, avg_yes="0.52"), held("FLAT")],
        avg_price_method="query_exchange",
        exchange_cost_basis={B: Decimal("1.80")},
        mids={A: 5000, B: 5000},
    )
    assert [(p.market_id, p.net_units, p.cost_basis_micros, p.estimated) for p in result.positions] == [
        (A, 10_00, 520 * CENT, False),
        (B, -4_00, 180 * CENT, False),
    ]
    assert result.warnings == () and not result.estimated and result.has_positions
    assert result.positions[1].avg_entry_price_units == 4500  # NO bought at $0.45 on average
    lines = result.log_lines
    assert lines[0] == "position import from exchange: 2 position(s)"
    assert lines[1] == f"{A}: 10 YES at avg $0.520000, cost $5.200000, method query_exchange"


def test_query_exchange_replays_the_fill_history_when_it_adds_up() -> None:
    def f(n: int, side: Side, price: str, contracts: int) -> Fill:
        return Fill(
            f"f{n}", f"o{n}", None, A, side, OrderSide.BUY, Price.from_decimal(price),
            Quantity.contracts(contracts), Decimal(0), False, n,
        )  # fmt: skip

    history = [f(1, Side.YES, "0.40", 10), f(2, Side.YES, "0.50", 10), f(3, Side.NO, "0.45", 5)]
    result = import_from_exchange(
        [held(A, yes=15)], avg_price_method="query_exchange", exchange_fills={A: history}, mids={A: 6000}
    )
    # 20 YES for $9.00 (avg 0.45), then 5 closed at YES 0.55 retiring $2.25: 15 YES costing $6.75.
    assert result.positions[0].cost_basis_micros == 675 * CENT and not result.estimated
    partial = import_from_exchange(
        [held(A, yes=30)], avg_price_method="query_exchange", exchange_fills={A: history}, mids={A: 6000}
    )
    assert partial.estimated
    assert partial.positions[0].cost_basis_micros == 30 * 60 * CENT
    assert any("does not add up" in w for w in partial.warnings)
    assert any("estimated" in w for w in partial.warnings)


def test_query_exchange_without_any_price_or_mid_is_an_error() -> None:
    with pytest.raises(PositionImportError, match=A):
        import_from_exchange([held(A, yes=1)], avg_price_method="query_exchange")


@pytest.mark.parametrize("method", ["current_price", "mark_to_market"])
def test_current_price_and_mark_to_market_enter_at_the_mid_with_a_warning(method: str) -> None:
    result = import_from_exchange(
        [held(A, yes=10, avg_yes="0.30"), held(B, no=3)],
        avg_price_method=method,  # type: ignore[arg-type]
        mids={A: Decimal("0.45005"), B: 4000},
    )
    a, b = result.positions
    assert a.cost_basis_micros == 4_500_500  # 10 × $0.45005; the venue's $0.30 is ignored
    assert b.cost_basis_micros == 3 * 60 * CENT  # NO at 1 − 0.40
    assert a.estimated and b.estimated and result.estimated
    assert len(result.warnings) == 2 and all("estimated" in w for w in result.warnings)
    lg = Ledger(fee_source="venue")
    seed_ledger(lg, result)
    assert lg.summary().unrealized_micros == 0  # PnL tracked from now
    assert lg.net_units(A) == 10_00 and lg.net_units(B) == -3_00


def test_manual_positions_and_prices_from_the_spec() -> None:
    handling = PositionHandling.model_validate(
        {
            "source": "manual",
            "manual_positions": {A: {"YES": 100, "avg_price_yes": "0.52"}, B: {"NO": "2.5"}},
            "avg_price_method": "manual",
            "manual_avg_prices": {B: {"NO": "0.61"}},
        }
    )
    entries, prices = manual_config(handling)
    result = import_manual(entries, avg_price_method="manual", manual_avg_prices=prices)
    assert [(p.market_id, p.net_units, p.cost_basis_micros) for p in result.positions] == [
        (A, 100_00, 52 * DOLLAR),
        (B, -2_50, 152_500 * 10),  # 2.5 × $0.61
    ]
    assert result.warnings == ()


def test_manual_method_without_a_price_for_the_held_side_is_an_error() -> None:
    entries = [ManualPositionEntry(A, yes=Quantity.contracts(5))]
    with pytest.raises(PositionImportError, match="YES price"):
        import_manual(entries, avg_price_method="manual", manual_avg_prices={A: ManualAvgPrice(no=Price(5000))})


def test_both_sides_at_once_is_refused_on_a_netting_venue() -> None:
    with pytest.raises(PositionImportError, match="nets YES against NO"):
        import_manual([ManualPositionEntry(A, yes=Quantity.contracts(1), no=Quantity.contracts(1))],
                      avg_price_method="current_price", mids={A: 5000})  # fmt: skip


def test_checkpoint_import_is_exact() -> None:
    lg = Ledger(fee_source="formula")
    lg.apply_fill(Fill("f", "o", None, A, Side.NO, OrderSide.BUY, Price(3300), Quantity(7_00), Decimal(0), True, 1))
    lg.mark(A, 6000, 2)
    result = import_from_checkpoint(lg.snapshot())
    (p,) = result.positions
    assert (p.net_units, p.cost_basis_micros, p.mark_x2, p.estimated) == (-7_00, 7 * 33 * CENT, 12_000, False)
    fresh = Ledger(fee_source="formula")
    seed_ledger(fresh, result)
    assert fresh.market(A).unrealized_micros == 7 * (40 - 33) * CENT


def test_max_starting_inventory_guard_names_the_market_and_the_limit() -> None:
    result = import_from_exchange(
        [held(A, yes=500), held(B, no=501)], avg_price_method="current_price", mids={A: 5000, B: 5000}
    )
    check_starting_inventory(result, Decimal(501))
    with pytest.raises(StartingInventoryError) as info:
        check_starting_inventory(result, Decimal(500))
    assert isinstance(info.value, MmError)
    assert info.value.market_id == B and info.value.limit == Decimal("500.00")
    assert B in str(info.value) and "500" in str(info.value) and "501" in str(info.value)
    check_starting_inventory(result, Quantity.contracts(600))


def test_seeding_refuses_a_ledger_that_already_holds_the_market() -> None:
    lg = Ledger(fee_source="venue")
    result = import_from_exchange([held(A, yes=1)], avg_price_method="current_price", mids={A: 5000})
    seed_ledger(lg, result)
    with pytest.raises(MmError):
        seed_ledger(lg, result)
