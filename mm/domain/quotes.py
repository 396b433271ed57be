"""Quotes: what the strategy wants resting on the book. FR-402's four-quote sheet.

A :class:`QuoteSet` holds a YES bid/ask and a NO bid/ask. The NO quotes are derived from the YES ones
(``NO_bid = 1 − YES_ask``, ``NO_ask = 1 − YES_bid``, sizes swapped per FR-403), so on a unified YES book
(Kalshi) the four quotes are only two distinct orders; the execution layer merges them (design.md §5).
A side can be absent (``None``) when the strategy or risk rules quote nothing there.
"""

from __future__ import annotations

from dataclasses import dataclass

from mm.domain.price import Price, Quantity
from mm.domain.sides import OrderSide, Side


@dataclass(frozen=True, slots=True)
class Quote:
    """One desired resting order: buy or sell ``size`` of ``side`` at ``price`` (that side's price)."""

    side: Side
    order_side: OrderSide
    price: Price
    size: Quantity

    def complement(self) -> Quote:
        """The economically identical quote on the other contract: sell YES at p ≡ buy NO at 1 − p."""
        return Quote(self.side.other, self.order_side.other, self.price.complement(), self.size)


_SLOTS = (
    ("yes_bid", Side.YES, OrderSide.BUY),
    ("yes_ask", Side.YES, OrderSide.SELL),
    ("no_bid", Side.NO, OrderSide.BUY),
    ("no_ask", Side.NO, OrderSide.SELL),
)


@dataclass(frozen=True, slots=True)
class QuoteSet:
    """The four quotes of one market at one instant (FR-402). ``generated_us``: UTC microseconds."""

    market_id: str
    generated_us: int
    yes_bid: Quote | None
    yes_ask: Quote | None
    no_bid: Quote | None
    no_ask: Quote | None

    def __post_init__(self) -> None:
        for name, side, order_side in _SLOTS:
            quote: Quote | None = getattr(self, name)
            if quote is not None and (quote.side is not side or quote.order_side is not order_side):
                raise ValueError(
                    f"{name} must be a {side.value} {order_side.value} quote, got "
                    f"{quote.side.value} {quote.order_side.value}"
                )
        for side_name, bid, ask in (("YES", self.yes_bid, self.yes_ask), ("NO", self.no_bid, self.no_ask)):
            if bid is not None and ask is not None and bid.price >= ask.price:
                raise ValueError(f"{side_name} bid {bid.price} must be below {side_name} ask {ask.price}")

    @classmethod
    def from_yes(
        cls,
        market_id: str,
        generated_us: int,
        bid: tuple[Price, Quantity] | None,
        ask: tuple[Price, Quantity] | None,
    ) -> QuoteSet:
        """Build the four quotes from the YES bid and ask: NO bid = 1 − YES ask, NO ask = 1 − YES bid.

        A zero size means no quote on that side (FR-403: sizes floor at 0 at the inventory limit).
        """
        yes_bid = Quote(Side.YES, OrderSide.BUY, *bid) if bid is not None and not bid[1].is_zero else None
        yes_ask = Quote(Side.YES, OrderSide.SELL, *ask) if ask is not None and not ask[1].is_zero else None
        return cls(
            market_id=market_id,
            generated_us=generated_us,
            yes_bid=yes_bid,
            yes_ask=yes_ask,
            no_bid=yes_ask.complement() if yes_ask is not None else None,
            no_ask=yes_bid.complement() if yes_bid is not None else None,
        )

    def quotes(self) -> tuple[Quote, ...]:
        """The present quotes in the order YES bid, YES ask, NO bid, NO ask."""
        return tuple(q for q in (self.yes_bid, self.yes_ask, self.no_bid, self.no_ask) if q is not None)

    @property
    def is_complementary(self) -> bool:
        """Whether the NO quotes are exactly the complements of the YES quotes (FR-402)."""

        def comp(q: Quote | None) -> Quote | None:
            return q.complement() if q is not None else None

        return self.no_bid == comp(self.yes_ask) and self.no_ask == comp(self.yes_bid)
