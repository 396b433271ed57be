"""The adapter interface's shared behaviour: per-item batch results and clear NotSupportedError."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import pytest

from mm.adapters.base import Capabilities, ExchangeAdapter, MarketInfo
from mm.adapters.errors import ExchangeError, InsufficientBalanceError, NotSupportedError
from mm.domain.orders import Fill, Order, OrderRequest
from mm.domain.portfolio import Balance, Position
from mm.domain.price import Price, Quantity
from mm.domain.sides import OrderSide, Side


class OneShotVenue(ExchangeAdapter):
    """Accepts orders until its cash runs out; knows nothing else."""

    def __init__(self, orders_affordable: int) -> None:
        self.left = orders_affordable
        self.cancelled: list[str] = []

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(False, False, 1, 1, True, True, True, True, True, True)

    async def connect(self) -> None: ...
    async def disconnect(self) -> None: ...
    async def subscribe_market(self, market_id: str) -> None: ...
    async def unsubscribe_market(self, market_id: str) -> None: ...

    async def place_order(self, order: OrderRequest) -> Order:
        if self.left == 0:
            raise InsufficientBalanceError("available balance too low", status=400, code="available_balance_too_low")
        self.left -= 1
        return Order.pending(order, 0).acknowledged(f"ex-{order.client_order_id}", 1)

    async def cancel_order(self, order_id: str) -> None:
        if order_id == "gone":
            raise ExchangeError("not found", status=404)
        if order_id == "bug":
            raise RuntimeError("a bug, not a venue refusal")
        self.cancelled.append(order_id)

    async def get_positions(self) -> list[Position]:
        return []

    async def get_balance(self) -> Balance:
        return Balance(Decimal(0), Decimal(0))

    async def list_markets(self, *, series: Sequence[str] = (), status: str | None = None) -> list[MarketInfo]:
        return []

    async def get_market(self, market_id: str) -> MarketInfo:
        raise ExchangeError("unknown market")

    async def get_open_orders(self, market_id: str | None = None) -> list[Order]:
        return []

    async def get_order_by_client_id(self, client_order_id: str, market_id: str | None = None) -> Order | None:
        return None

    async def get_fills(self, *, since_us: int | None = None, market_id: str | None = None) -> list[Fill]:
        return []


def request(cid: str) -> OrderRequest:
    return OrderRequest("M", Side.YES, OrderSide.BUY, Price(4500), Quantity.contracts(1), cid)


async def test_batch_place_reports_each_item_in_order() -> None:
    results = await OneShotVenue(orders_affordable=1).place_orders([request("a"), request("b")])
    assert isinstance(results[0], Order) and results[0].exchange_order_id == "ex-a"
    assert isinstance(results[1], InsufficientBalanceError) and results[1].code == "available_balance_too_low"


async def test_batch_cancel_reports_refusals_but_lets_bugs_through() -> None:
    venue = OneShotVenue(0)
    assert [type(r).__name__ if r else None for r in await venue.cancel_orders(["x", "gone", "y"])] == [
        None,
        "ExchangeError",
        None,
    ]
    assert venue.cancelled == ["x", "y"]
    with pytest.raises(RuntimeError, match="a bug"):
        await venue.cancel_orders(["bug"])


async def test_amend_is_not_supported_unless_the_adapter_provides_it() -> None:
    with pytest.raises(NotSupportedError, match="OneShotVenue cannot amend"):
        await OneShotVenue(0).amend_order("ex-a", price=Price(4600), quantity=Quantity.contracts(1))
