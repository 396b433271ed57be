"""Sides of binary contracts and orders, and how they map onto the single YES book."""

from __future__ import annotations

import enum


class Side(enum.Enum):
    """The contract: YES pays $1 if the event happens, NO pays $1 if it does not."""

    YES = "yes"
    NO = "no"

    @property
    def other(self) -> Side:
        return Side.NO if self is Side.YES else Side.YES


class OrderSide(enum.Enum):
    """Whether an order buys or sells the contract named by its :class:`Side`."""

    BUY = "buy"
    SELL = "sell"

    @property
    def other(self) -> OrderSide:
        return OrderSide.SELL if self is OrderSide.BUY else OrderSide.BUY


class BookSide(enum.Enum):
    """A side of the YES-denominated book (Kalshi V2 ``side``): BID buys YES, ASK sells YES (= buys NO)."""

    BID = "bid"
    ASK = "ask"


def book_side(side: Side, order_side: OrderSide) -> BookSide:
    """Where an order rests in the YES book: buy YES / sell NO bid; sell YES / buy NO ask."""
    if (side is Side.YES) is (order_side is OrderSide.BUY):
        return BookSide.BID
    return BookSide.ASK


class TimeInForce(enum.Enum):
    GOOD_TILL_CANCELED = "good_till_canceled"
    IMMEDIATE_OR_CANCEL = "immediate_or_cancel"
    FILL_OR_KILL = "fill_or_kill"
