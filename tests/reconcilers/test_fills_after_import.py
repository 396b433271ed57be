"""Which fills came after a positions import (mm.reconcilers.exchange.newest_fills_explaining, pure)."""

from __future__ import annotations

from decimal import Decimal

from mm.domain.orders import Fill
from mm.domain.price import Price, Quantity
from mm.domain.sides import OrderSide, Side
from mm.reconcilers.exchange import net_effect, newest_fills_explaining

M, OTHER = "KXBTCD-26AUG1317-T94999.99", "KXBTCD-26AUG1317-T95249.99"


def fill(n: int, side: Side, action: OrderSide, units: int, market: str = M) -> Fill:
    return Fill(f"f{n}", f"o{n}", None, market, side, action, Price(5000), Quantity(units), Decimal(0), False, n)


def test_net_effect_on_yes() -> None:
    assert net_effect(fill(1, Side.YES, OrderSide.BUY, 100)) == 100
    assert net_effect(fill(1, Side.NO, OrderSide.SELL, 100)) == 100
    assert net_effect(fill(1, Side.YES, OrderSide.SELL, 100)) == -100
    assert net_effect(fill(1, Side.NO, OrderSide.BUY, 100)) == -100


def test_the_newest_fill_that_explains_the_difference_is_found() -> None:
    fills = [fill(1, Side.YES, OrderSide.SELL, 300), fill(2, Side.YES, OrderSide.BUY, 100)]
    assert newest_fills_explaining(100, M, fills) == [fills[1]]


def test_a_run_of_newest_fills_in_time_order() -> None:
    fills = [
        fill(1, Side.YES, OrderSide.SELL, 300),
        fill(2, Side.YES, OrderSide.BUY, 100),
        fill(3, Side.YES, OrderSide.BUY, 100, OTHER),
        fill(4, Side.YES, OrderSide.BUY, 200),
    ]
    assert newest_fills_explaining(300, M, fills) == [fills[1], fills[3]]


def test_nothing_when_no_newest_run_matches() -> None:
    fills = [fill(1, Side.YES, OrderSide.BUY, 100), fill(2, Side.YES, OrderSide.BUY, 100)]
    assert newest_fills_explaining(-100, M, fills) == []
    assert newest_fills_explaining(100, OTHER, fills) == []
    assert newest_fills_explaining(0, M, fills) == []
