"""Operations rules use to modify a QuoteSet: which quotes add exposure, capping, scaling, widening.

Every function returns a new QuoteSet (or the same one when nothing changes); prices stay on the tick
grid and widening only ever moves a bid down and an ask up. A quote's *direction* is its effect on net
YES inventory if filled: YES bid and NO ask +1, YES ask and NO bid −1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from mm.domain.price import PRICE_SCALE, Price, Quantity
from mm.domain.quotes import Quote, QuoteSet
from mm.domain.sides import OrderSide, Side
from mm.domain.ticks import Rounding, TickGrid

SLOT_NAMES: Final = ("yes_bid", "yes_ask", "no_bid", "no_ask")
DIRECTION: Final = {"yes_bid": 1, "yes_ask": -1, "no_bid": -1, "no_ask": 1}
"""Effect of a fill on net YES inventory, by QuoteSet slot."""


def direction(quote: Quote) -> int:
    """+1 if filling ``quote`` raises net YES inventory (buy YES, sell NO), −1 otherwise."""
    return 1 if (quote.side is Side.YES) is (quote.order_side is OrderSide.BUY) else -1


def adds_exposure(quote: Quote, inventory_units: int) -> bool:
    """Whether a fill moves net inventory away from zero (or off zero)."""
    d = direction(quote)
    return inventory_units == 0 or (d > 0) is (inventory_units > 0)


def max_fill_units(quotes: QuoteSet, sign: int, *, netting: bool) -> int:
    """Most inventory the quotes of direction ``sign`` can add if filled, 1/100 contract.

    On a netting venue a YES bid and the NO ask at its complement are one resting order, so the
    larger size counts; elsewhere both can fill and the sizes add up.
    """
    sizes = [
        q.size.units for name in SLOT_NAMES if (q := getattr(quotes, name)) is not None and DIRECTION[name] == sign
    ]
    if not sizes:
        return 0
    return max(sizes) if netting else sum(sizes)


def map_quotes(quotes: QuoteSet, fn: Callable[[str, Quote], Quote | None]) -> QuoteSet:
    """Apply ``fn(slot, quote)`` to every present quote; ``None`` drops it. Unchanged → same object."""
    # Built directly rather than with dataclasses.replace: this runs on the hot path of every MODIFY.
    slots = [quotes.yes_bid, quotes.yes_ask, quotes.no_bid, quotes.no_ask]
    changed = False
    for i, name in enumerate(SLOT_NAMES):
        quote = slots[i]
        if quote is not None:
            new = fn(name, quote)
            if new is not quote:
                slots[i] = new
                changed = True
    if not changed:
        return quotes
    return QuoteSet(quotes.market_id, quotes.generated_us, slots[0], slots[1], slots[2], slots[3])


def drop(quotes: QuoteSet, keep: Callable[[str, Quote], bool]) -> QuoteSet:
    """Remove the quotes for which ``keep`` is False."""
    return map_quotes(quotes, lambda name, q: q if keep(name, q) else None)


def cap_size(quote: Quote, max_units: int) -> Quote | None:
    """The quote with its size capped at ``max_units`` (1/100 contract); None when nothing is left."""
    if max_units <= 0:
        return None
    if quote.size.units <= max_units:
        return quote
    return Quote(quote.side, quote.order_side, quote.price, Quantity(max_units))


def scale_size(quote: Quote, factor: float) -> Quote | None:
    """The quote with its size multiplied by ``factor`` (floored to 1/100 contract); None at zero."""
    units = int(quote.size.units * factor)
    if units == quote.size.units:
        return quote
    return Quote(quote.side, quote.order_side, quote.price, Quantity(units)) if units > 0 else None


def is_empty(quotes: QuoteSet) -> bool:
    return all(getattr(quotes, name) is None for name in SLOT_NAMES)


def widen(quotes: QuoteSet, multiplier: float, grid: TickGrid, centre_units: int | None) -> QuoteSet:
    """Multiply each side's distance from the centre by ``multiplier`` (≥ 1), rounding outward.

    The centre is the midpoint of the YES bid and ask when both are quoted, else ``centre_units`` (the
    book mid). NO quotes move with their YES complements (NO bid = 1 − YES ask). A quote that would
    leave the grid is dropped.
    """
    bid, ask = quotes.yes_bid, quotes.yes_ask
    if bid is not None and ask is not None:
        centre2 = bid.price.units + ask.price.units  # twice the centre, keeps halves exact
    elif centre_units is not None:
        centre2 = 2 * centre_units
    else:
        return quotes

    moved: dict[tuple[int, bool], int | None] = {}  # a YES bid and its NO ask share one computation

    def new_yes_units(yes_units: int, is_yes_bid: bool) -> int | None:
        key = (yes_units, is_yes_bid)
        if key not in moved:
            distance2 = abs(2 * yes_units - centre2) * multiplier
            try:
                if is_yes_bid:
                    target = grid.round_units(int((centre2 - distance2) // 2), Rounding.DOWN).units
                    moved[key] = min(target, yes_units)  # never tighten
                else:
                    target = grid.round_units(-int(-(centre2 + distance2) // 2), Rounding.UP).units
                    moved[key] = max(target, yes_units)
            except ValueError:
                moved[key] = None  # off the grid: drop the quote
        return moved[key]

    def move(name: str, quote: Quote) -> Quote | None:
        is_yes = quote.side is Side.YES
        yes_units = quote.price.units if is_yes else PRICE_SCALE - quote.price.units
        units = new_yes_units(yes_units, name in {"yes_bid", "no_ask"})  # a NO ask is the YES bid from the NO side
        if units is None:
            return None
        if units == yes_units:
            return quote
        return Quote(quote.side, quote.order_side, Price(units if is_yes else PRICE_SCALE - units), quote.size)

    return map_quotes(quotes, move)


def purchase_price_units(quote: Quote) -> int:
    """Price paid per contract, $0.0001: buying at p costs p; selling at p is buying the other side at 1 − p."""
    return quote.price.units if quote.order_side is OrderSide.BUY else PRICE_SCALE - quote.price.units


def purchase_cost_units(quote: Quote) -> int:
    """Collateral a fill of the whole quote locks, $0.0001 (floored)."""
    return purchase_price_units(quote) * quote.size.units // 100


def max_size_for_cost(quote: Quote, budget_units: int) -> int:
    """Largest size (1/100 contract) whose purchase cost fits in ``budget_units`` ($0.0001)."""
    if budget_units < 0:
        return 0
    # cost(n) = floor(price·n/100) ≤ budget  ⟺  price·n < (budget + 1)·100
    return ((budget_units + 1) * 100 - 1) // purchase_price_units(quote)
