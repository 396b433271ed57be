"""Simulated accounts: cash, net positions, collateral for resting orders, and settlement.

Kalshi's model (kalshi-api.md §7): positions are net and fully collateralised. Buying YES at p locks p
per contract; buying NO (selling YES at p) locks 1 − p; buying one side while holding the other closes
the pair, which is worth exactly $1, so the pair's dollar comes back. Per contract, in $0.0001:

* buy YES at p while holding NO:  cash += 10000 − p   (closes one NO; the pair pays $1, we paid p)
* buy YES at p otherwise:         cash −= p           (opens one YES)
* sell YES at p while holding YES: cash += p          (closes one YES)
* sell YES at p otherwise:        cash −= 10000 − p   (opens one NO)

Resting orders reserve their worst-case cost (as if every contract opened a position), so available
cash never goes negative. Settlement pays $1 per winning contract and clears the position.

Money here is in **micro-dollars** ($0.000001, ``MICROS_PER_DOLLAR``): a price in $0.0001 units times a
count in 1/100 contract is exactly a number of micro-dollars, so every cost is exact and a YES/NO pair
always locks exactly $1 per contract — with $0.0001 units, 0.01 contract at $0.0001 would not be
representable and pairs would leak. Kalshi reports portfolio values with up to 6 decimals
(kalshi-api.md §3); the server formats these amounts from micro-dollars.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from mm.domain.price import PRICE_SCALE
from mm.sim.types import BookSide

MICROS_PER_DOLLAR: Final = 1_000_000
"""Account money unit: $0.000001 = one $0.0001 price unit × one 1/100-contract count unit."""


def order_cost_micros(side: BookSide, price: int, count: int) -> int:
    """Worst-case cash an order locks if it fills entirely as an opening trade, micro-dollars."""
    per_contract = price if side is BookSide.BID else PRICE_SCALE - price
    return per_contract * count


@dataclass(slots=True)
class Account:
    user_id: str
    balance: int
    """Cash, micro-dollars (collateral of open positions already deducted; reservations not)."""
    positions: dict[str, int] = field(default_factory=dict)
    """Net position per ticker, 1/100 contract: > 0 long YES, < 0 long NO."""
    reserved: int = 0
    """Cash reserved by resting orders, micro-dollars."""
    fees_paid: dict[str, int] = field(default_factory=dict)
    realized_pnl: dict[str, int] = field(default_factory=dict)
    cost_basis: dict[str, int] = field(default_factory=dict)
    """Cash locked in each position, micro-dollars (for market_exposure and realized PnL)."""
    traded: dict[str, int] = field(default_factory=dict)
    """Dollars traded per ticker, micro-dollars (total_traded_dollars)."""

    @property
    def available(self) -> int:
        return self.balance - self.reserved

    def apply_fill(self, ticker: str, side: BookSide, price: int, count: int, fee: int) -> None:
        """Book one execution of ``count`` (1/100 contract) at YES ``price`` ($0.0001); ``fee`` in micro-dollars."""
        position = self.positions.get(ticker, 0)
        basis = self.cost_basis.get(ticker, 0)
        buying_yes = side is BookSide.BID
        # Closing part: against the opposite holding.
        opposite = -position if buying_yes else position
        closing = min(count, max(opposite, 0))
        opening = count - closing
        cash = 0
        pnl = 0
        if closing:
            released = (PRICE_SCALE - price if buying_yes else price) * closing
            basis_share = basis * closing // abs(position)
            cash += released
            pnl += released - basis_share
            basis -= basis_share
            position += closing if buying_yes else -closing
        if opening:
            cost = (price if buying_yes else PRICE_SCALE - price) * opening
            cash -= cost
            basis += cost
            position += opening if buying_yes else -opening
        self.balance += cash - fee
        self.positions[ticker] = position
        self.cost_basis[ticker] = basis if position else 0
        self.fees_paid[ticker] = self.fees_paid.get(ticker, 0) + fee
        self.realized_pnl[ticker] = self.realized_pnl.get(ticker, 0) + pnl - fee
        self.traded[ticker] = self.traded.get(ticker, 0) + price * count

    def settle(self, ticker: str, yes_value: int) -> tuple[int, int]:
        """Pay out a settled market: ``yes_value`` ($0.0001 units) per YES contract, 10000 − it per NO.

        Returns (position settled in 1/100 contract, revenue in micro-dollars) and clears the position.
        """
        position = self.positions.pop(ticker, 0)
        basis = self.cost_basis.pop(ticker, 0)
        revenue = yes_value * position if position > 0 else (PRICE_SCALE - yes_value) * -position
        self.balance += revenue
        self.realized_pnl[ticker] = self.realized_pnl.get(ticker, 0) + revenue - basis
        return position, revenue
