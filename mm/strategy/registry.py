"""Component registry: ``{slot: {type name: factory}}`` and building an engine from a Strategy spec.

The spec models (``mm.specs.strategy``) validate a component's ``type`` and ``params`` at admission;
this module turns a validated config into the implementation. Decimal parameters become floats here,
once, at the edge (see :mod:`mm.strategy.base` for why the model arithmetic is float).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Final

from mm.specs.strategy import StrategySpec
from mm.strategy.base import (
    QuoteSizer,
    ReservationPriceCalculator,
    SkewCalculator,
    SpreadCalculator,
    VolatilityEstimator,
)
from mm.strategy.engine import Slot, StrategyEngine, StrategyLimits
from mm.strategy.reservation import AvellanedaStoikov, LinearAdjustment, SimpleMidPrice
from mm.strategy.sizing import AsymmetricSizer, FixedSizer, KellySizer, LinearSizer
from mm.strategy.skew import AdaptiveSkew, ExponentialSkew, LinearSkew, NoSkew
from mm.strategy.spread import AvellanedaStoikovSpread, FixedSpread, InventorySpread, TimeDecaySpread, VolatilitySpread
from mm.strategy.volatility import EWMAVolatility, FixedVolatility, RealizedVolatility

Component = VolatilityEstimator | ReservationPriceCalculator | SkewCalculator | SpreadCalculator | QuoteSizer
Factory = Callable[..., Component]

REGISTRY: Final[Mapping[Slot, Mapping[str, Factory]]] = {
    "volatility": {"ewma": EWMAVolatility, "realized": RealizedVolatility, "fixed": FixedVolatility},
    "reservation_price": {
        "avellaneda_stoikov": AvellanedaStoikov,
        "simple_mid": SimpleMidPrice,
        "linear": LinearAdjustment,
    },
    "skew": {"linear": LinearSkew, "exponential": ExponentialSkew, "adaptive": AdaptiveSkew, "none": NoSkew},
    "spread": {
        "fixed": FixedSpread,
        "volatility": VolatilitySpread,
        "inventory": InventorySpread,
        "time_decay": TimeDecaySpread,
        "avellaneda_stoikov": AvellanedaStoikovSpread,
    },
    "sizer": {"asymmetric": AsymmetricSizer, "linear": LinearSizer, "fixed": FixedSizer, "kelly": KellySizer},
}
"""Every implementation the requirements list, by the ``type`` name used in specs."""


def _plain(value: Any) -> Any:
    return float(value) if isinstance(value, Decimal) else value


def build_component(slot: Slot, type_name: str, params: Mapping[str, Any]) -> Component:
    """Instantiate one component from its spec ``type`` and (validated) ``params``."""
    try:
        factory = REGISTRY[slot][type_name]
    except KeyError:
        known = ", ".join(REGISTRY.get(slot, {}))
        raise ValueError(f"unknown {slot} type {type_name!r}; known: {known}") from None
    return factory(**{name: _plain(value) for name, value in params.items()})


def build_engine(spec: StrategySpec) -> StrategyEngine:
    """A fresh engine (new volatility estimator, no history) for an admitted Strategy spec."""
    parts: dict[str, Any] = {}
    for slot in ("volatility", "reservation_price", "skew", "spread", "sizer"):
        config = getattr(spec.components, slot)
        params = dict(config.params)
        if slot == "sizer":
            params.pop("base_size")  # FR-415 passes base_size on every call; the engine holds it
        parts[slot] = build_component(slot, config.type, params)
    limits = StrategyLimits(
        max_inventory=float(spec.max_inventory),
        base_size=float(spec.components.sizer.params.base_size),
        min_spread=float(spec.min_spread),
        price_min=float(spec.price_bounds.min),
        price_max=float(spec.price_bounds.max),
    )
    return StrategyEngine(limits=limits, **parts)
