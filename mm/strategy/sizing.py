"""Quote sizers (FR-403, FR-415): ``asymmetric``, ``linear``, ``fixed``, ``kelly``. Sizes in contracts.

Sizes here are for the YES side: bid = buy YES (raises q), ask = sell YES (lowers q). The engine gives
the NO quotes the swapped sizes (NO bid ≡ YES ask) and caps each side at the remaining capacity.
"""

from __future__ import annotations

from mm.strategy.base import QuoteSizer, SizingContext, normalised_inventory


class AsymmetricSizer(QuoteSizer):
    """FR-403: bid = base·max(0, 1 − q̂), ask = base·max(0, 1 + q̂); at most 2 × base, never negative."""

    def calculate(
        self, inventory: float, max_inventory: float, base_size: float, context: SizingContext | None = None
    ) -> tuple[float, float]:
        x = normalised_inventory(inventory, max_inventory)
        return base_size * (1.0 - x), base_size * (1.0 + x)


class LinearSizer(QuoteSizer):
    """Both sides base·(1 − |q̂|): shrinks symmetrically as inventory grows either way."""

    def calculate(
        self, inventory: float, max_inventory: float, base_size: float, context: SizingContext | None = None
    ) -> tuple[float, float]:
        size = base_size * (1.0 - abs(normalised_inventory(inventory, max_inventory)))
        return size, size


class FixedSizer(QuoteSizer):
    """Both sides base, always (the engine still caps at remaining capacity)."""

    def calculate(
        self, inventory: float, max_inventory: float, base_size: float, context: SizingContext | None = None
    ) -> tuple[float, float]:
        return base_size, base_size


class KellySizer(QuoteSizer):
    """Fractional Kelly on the edge the quote itself claims, shaped like the asymmetric sizer.

    Edge estimate: the strategy's reservation price r is taken as the probability of YES, so a bid at
    b = r − δ has edge δ and Kelly fraction f = (r − b)/(1 − b) = δ/(1 − b); an ask at a = r + δ (buying
    NO at 1 − a) has f = δ/a. Capital is taken as Q_max dollars (the position limit at $1 a contract),
    so the Kelly size in contracts is ``fraction·f·Q_max/price``. It is then scaled by the asymmetric
    factors (1 ∓ q̂) and capped at 2 × base. Without a context it falls back to the asymmetric sizer.
    """

    def __init__(self, fraction: float = 0.25) -> None:
        if not 0 < fraction <= 1:
            raise ValueError("fraction must be in (0, 1]")
        self.fraction = fraction

    def calculate(
        self, inventory: float, max_inventory: float, base_size: float, context: SizingContext | None = None
    ) -> tuple[float, float]:
        x = normalised_inventory(inventory, max_inventory)
        if context is None:
            return base_size * (1.0 - x), base_size * (1.0 + x)
        delta = max(context.half_spread, 0.0)
        bid = context.reservation_price - delta
        ask = context.reservation_price + delta
        cap = 2.0 * base_size
        bid_size = self._size(delta / (1.0 - bid), bid, max_inventory) * (1.0 - x) if 0 < bid < 1 else 0.0
        ask_size = self._size(delta / ask, 1.0 - ask, max_inventory) * (1.0 + x) if 0 < ask < 1 else 0.0
        # The cap applies to the final size, after the (1 ∓ q̂) factors, which reach 2 (FR-403: ≤ 2 × base).
        return (cap if bid_size > cap else bid_size), (cap if ask_size > cap else ask_size)

    def _size(self, kelly: float, price: float, max_inventory: float) -> float:
        return self.fraction * kelly * max_inventory / price
