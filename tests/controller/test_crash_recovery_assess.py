"""FR-1202's comparison of the crashed run's checkpoint with the venue (pure)."""

from __future__ import annotations

from decimal import Decimal

from mm.controller.crash_recovery import RecoveryAssessment, assess, within_tolerance
from mm.domain.orders import Fill
from mm.domain.price import Price, Quantity
from mm.domain.sides import OrderSide, Side
from mm.specs.node import AutoResumeThreshold, Recovery
from mm.state.checkpoint import Checkpoint, MarketCheckpoint

TICKER = "KXBTCD-26AUG1317-T94999.99"


def checkpoint(net_units: int, basis_micros: int, orders: tuple[str, ...] = ()) -> Checkpoint:
    market = MarketCheckpoint(
        market_id=f"sim/live/{TICKER}",
        positions={"net": net_units, "cost_basis_micros": basis_micros},
        inventory=Decimal(net_units).scaleb(-2),
        realized_pnl=Decimal(0),
        open_orders=orders,
        config_version="m@1",
    )
    return Checkpoint(1_000_000, (market,))


def fill(fill_id: str, order_side: OrderSide, price: int, units: int, fee: str = "0.01") -> Fill:
    return Fill(
        fill_id,
        "o" + fill_id,
        "mm:x",
        TICKER,
        Side.YES,
        order_side,
        Price(price),
        Quantity(units),
        Decimal(fee),
        False,
        2_000_000,
    )


def test_no_difference_means_no_discrepancy() -> None:
    result = assess("sim", checkpoint(500, 2_500_000), {TICKER: 500}, [], [])
    assert result.discrepancies == [] and result.max_position_diff == 0 and result.pnl_diff == 0


def test_fills_while_down_explain_the_position_and_their_pnl_is_counted() -> None:
    # long 5 @ $0.50, then sold 5 @ $0.60 while no node ran: flat at the venue, +$0.50 realized, $0.01 fee
    result = assess("sim", checkpoint(500, 2_500_000), {}, [fill("f1", OrderSide.SELL, 6000, 500)], [])
    (d,) = result.discrepancies
    assert d.kind == "position" and d.contracts == Decimal(5) and "explained by the fills" in d.detail
    assert result.max_position_diff == Decimal(5)
    assert result.pnl_diff == Decimal("0.49")


def test_an_unexplained_difference_is_flagged() -> None:
    result = assess("sim", checkpoint(0, 0), {TICKER: 1200}, [], [])
    (d,) = result.discrepancies
    assert d.contracts == Decimal(12) and "NOT explained" in d.detail


def test_checkpointed_orders_gone_from_the_venue_are_reported() -> None:
    result = assess("sim", checkpoint(0, 0, ("mm:a", "mm:b")), {}, [], ["mm:b"])
    (d,) = result.discrepancies
    assert d.kind == "orders" and "mm:a" in d.detail and "mm:b" not in d.detail


def test_without_a_checkpoint_the_venue_is_compared_with_flat() -> None:
    result = assess("sim", None, {TICKER: -300}, [], [])
    assert result.max_position_diff == Decimal(3)


def test_tolerance_and_manual_approval() -> None:
    small = RecoveryAssessment("sim", max_position_diff=Decimal(10), pnl_diff=Decimal(5))
    big = RecoveryAssessment("sim", max_position_diff=Decimal("10.01"))
    costly = RecoveryAssessment("sim", pnl_diff=Decimal("5.01"))
    options = Recovery(auto_resume_threshold=AutoResumeThreshold(position_contracts=Decimal(10), pnl_dollars=5))
    assert within_tolerance([small], options)
    assert not within_tolerance([small, big], options)
    assert not within_tolerance([costly], options)
    assert not within_tolerance([small], options.model_copy(update={"require_manual_approval": True}))
