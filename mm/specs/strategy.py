"""The ``Strategy`` kind: the five pluggable components of FR-410–416, or a preset.

``spec`` is the ``strategy:`` block of FR-416. Each component is ``{type, params}``; the ``type`` picks
the implementation and ``params`` are validated against that type's model here, at admission, so a
typo or an out-of-range value is reported with its line before anything runs.

Presets (FR-416) and defaults are *materialised*: after admission every slot holds a concrete
``{type, params}``. A slot written without ``type`` (or with the preset's type) merges its ``params`` over
the preset's; a slot with a different ``type`` replaces the preset's slot. The stored spec therefore
shows exactly what runs.

Units: volatility σ is per √second of the mid price in dollars; times are seconds; prices and spreads
are dollars; sizes and inventory are contracts.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated, Any, Final, Literal

from pydantic import Field, model_validator

from mm.domain.limits import MAX_ORDER_SIZE, MAX_POSITION_PER_MARKET
from mm.specs.types import (
    Contracts,
    FieldProblem,
    Fraction,
    NonNegativeDecimal,
    OpenUnit,
    PositiveDecimal,
    PositiveInt,
    Seconds,
    SpecModel,
)

# --- volatility (FR-411) -------------------------------------------------------------------------


class EwmaVolatilityParams(SpecModel):
    alpha: OpenUnit = Field(Decimal("0.94"), description="EWMA decay factor α of FR-301 (weight of history).")
    min_observations: PositiveInt = Field(10, description="Mid-price changes needed before the estimate is ready.")
    initial_volatility: NonNegativeDecimal | None = Field(
        None, description="σ per √second to use while warming up; None = not ready until warmed up."
    )


class RealizedVolatilityParams(SpecModel):
    window_seconds: Seconds = Field(Decimal(300), description="Rolling window of squared returns, seconds.")
    min_observations: PositiveInt = Field(10, description="Observations in the window before it is ready.")


class FixedVolatilityParams(SpecModel):
    volatility: NonNegativeDecimal = Field(description="Constant σ per √second (testing, backtests).")


class EwmaVolatilityConfig(SpecModel):
    type: Literal["ewma"] = "ewma"
    params: EwmaVolatilityParams = EwmaVolatilityParams()
    state_transfer: bool = Field(False, description="On hot-swap, inherit the previous estimator's state.")


class RealizedVolatilityConfig(SpecModel):
    type: Literal["realized"] = "realized"
    params: RealizedVolatilityParams = RealizedVolatilityParams()
    state_transfer: bool = False


class FixedVolatilityConfig(SpecModel):
    type: Literal["fixed"] = "fixed"
    params: FixedVolatilityParams
    state_transfer: bool = False


VolatilityComponent = Annotated[
    EwmaVolatilityConfig | RealizedVolatilityConfig | FixedVolatilityConfig, Field(discriminator="type")
]

# --- reservation price (FR-412) ------------------------------------------------------------------


class AvellanedaStoikovParams(SpecModel):
    """Avellaneda–Stoikov reservation price ``r = s − (q/Q_max)·γ·σ²·τ`` (docs/decisions/007)."""

    gamma: PositiveDecimal = Field(
        Decimal("0.1"),
        description="Risk aversion γ per dollar, for inventory measured as a fraction of max_inventory.",
    )
    horizon: Literal["settlement_risk", "time_to_settlement", "fixed"] = Field(
        "settlement_risk",
        description="τ: settlement_risk = horizon_seconds²/max(T, min_time_seconds), growing as settlement "
        "nears (FR-401); time_to_settlement = T (the paper's T − t); fixed = horizon_seconds.",
    )
    horizon_seconds: Seconds = Field(Decimal(3600), description="Reference horizon H, seconds.")
    min_time_seconds: Seconds = Field(Decimal(60), description="Floor on T so τ stays finite as T → 0.")
    max_shift: PositiveDecimal = Field(
        Decimal("0.05"), description="Clamp on |r − s|, dollars: the shift never exceeds this."
    )


class LinearReservationParams(SpecModel):
    k: NonNegativeDecimal = Field(
        Decimal("0.00001"), description="Dollars the reservation price moves per contract of inventory."
    )


class EmptyParams(SpecModel):
    pass


class AvellanedaStoikovReservationConfig(SpecModel):
    type: Literal["avellaneda_stoikov"] = "avellaneda_stoikov"
    params: AvellanedaStoikovParams = AvellanedaStoikovParams()


class SimpleMidReservationConfig(SpecModel):
    type: Literal["simple_mid"] = "simple_mid"
    params: EmptyParams = EmptyParams()


class LinearReservationConfig(SpecModel):
    type: Literal["linear"] = "linear"
    params: LinearReservationParams = LinearReservationParams()


ReservationComponent = Annotated[
    AvellanedaStoikovReservationConfig | SimpleMidReservationConfig | LinearReservationConfig,
    Field(discriminator="type"),
]

# --- skew (FR-413) -------------------------------------------------------------------------------


class SkewParams(SpecModel):
    intensity: NonNegativeDecimal = Field(
        Decimal("0.01"), description="k: dollars of skew at full inventory (q = Q_max)."
    )


class AdaptiveSkewParams(SkewParams):
    reference_volatility: PositiveDecimal = Field(
        Decimal("0.005"), description="σ per √second at which adaptive skew equals linear skew."
    )


class LinearSkewConfig(SpecModel):
    type: Literal["linear"] = "linear"
    params: SkewParams = SkewParams()


class ExponentialSkewConfig(SpecModel):
    type: Literal["exponential"] = "exponential"
    params: SkewParams = SkewParams()


class AdaptiveSkewConfig(SpecModel):
    type: Literal["adaptive"] = "adaptive"
    params: AdaptiveSkewParams = AdaptiveSkewParams()


class NoSkewConfig(SpecModel):
    type: Literal["none"] = "none"
    params: EmptyParams = EmptyParams()


SkewComponent = Annotated[
    LinearSkewConfig | ExponentialSkewConfig | AdaptiveSkewConfig | NoSkewConfig, Field(discriminator="type")
]

# --- spread (FR-414) -----------------------------------------------------------------------------


class BaseSpreadParams(SpecModel):
    base_spread: PositiveDecimal = Field(Decimal("0.02"), description="Full base spread in dollars.")


class VolatilitySpreadParams(BaseSpreadParams):
    vol_multiplier: NonNegativeDecimal = Field(
        Decimal("0.5"), description="Half-spread added per σ-over-vol_horizon (δ = base/2 + m·σ·√h)."
    )
    vol_horizon_seconds: Seconds = Field(
        Decimal(60), description="h: σ is scaled to the mid's standard deviation over this many seconds."
    )


class TimeDecaySpreadParams(BaseSpreadParams):
    horizon_seconds: Seconds = Field(
        Decimal(3600), description="H: δ = base/2 · √(H / max(T, min_time_seconds)); equals base/2 at T = H."
    )
    min_time_seconds: Seconds = Field(Decimal(60), description="Floor on T so δ stays finite as T → 0.")


class AvellanedaStoikovSpreadParams(SpecModel):
    gamma: PositiveDecimal = Field(Decimal("0.1"), description="Risk aversion γ per dollar (as the reservation).")
    k: PositiveDecimal = Field(
        Decimal(100), description="Order-arrival decay κ per dollar: λ(δ) = A·e^(−κδ); 100 = e-fold per cent."
    )
    horizon_seconds: Seconds = Field(Decimal(3600), description="Cap on τ = T in γσ²τ, seconds.")


class FixedSpreadConfig(SpecModel):
    type: Literal["fixed"] = "fixed"
    params: BaseSpreadParams = BaseSpreadParams()


class VolatilitySpreadConfig(SpecModel):
    type: Literal["volatility"] = "volatility"
    params: VolatilitySpreadParams = VolatilitySpreadParams()


class InventorySpreadConfig(SpecModel):
    type: Literal["inventory"] = "inventory"
    params: BaseSpreadParams = BaseSpreadParams()


class TimeDecaySpreadConfig(SpecModel):
    type: Literal["time_decay"] = "time_decay"
    params: TimeDecaySpreadParams = TimeDecaySpreadParams()


class AvellanedaStoikovSpreadConfig(SpecModel):
    type: Literal["avellaneda_stoikov"] = "avellaneda_stoikov"
    params: AvellanedaStoikovSpreadParams = AvellanedaStoikovSpreadParams()


SpreadComponent = Annotated[
    FixedSpreadConfig
    | VolatilitySpreadConfig
    | InventorySpreadConfig
    | TimeDecaySpreadConfig
    | AvellanedaStoikovSpreadConfig,
    Field(discriminator="type"),
]

# --- sizer (FR-415) ------------------------------------------------------------------------------


class SizeParams(SpecModel):
    base_size: Contracts = Field(Decimal(100), description="Base contracts per quote.")


class KellySizeParams(SizeParams):
    fraction: Fraction = Field(Decimal("0.25"), description="Fraction of the full Kelly size to quote.")


class AsymmetricSizerConfig(SpecModel):
    type: Literal["asymmetric"] = "asymmetric"
    params: SizeParams = SizeParams()


class LinearSizerConfig(SpecModel):
    type: Literal["linear"] = "linear"
    params: SizeParams = SizeParams()


class FixedSizerConfig(SpecModel):
    type: Literal["fixed"] = "fixed"
    params: SizeParams = SizeParams()


class KellySizerConfig(SpecModel):
    type: Literal["kelly"] = "kelly"
    params: KellySizeParams = KellySizeParams()


SizerComponent = Annotated[
    AsymmetricSizerConfig | LinearSizerConfig | FixedSizerConfig | KellySizerConfig, Field(discriminator="type")
]

# --- the Strategy spec ---------------------------------------------------------------------------


class Components(SpecModel):
    """The five components; each slot's default is the requirements' default (FR-404, FR-411–415)."""

    volatility: VolatilityComponent = EwmaVolatilityConfig()
    reservation_price: ReservationComponent = AvellanedaStoikovReservationConfig()
    skew: SkewComponent = LinearSkewConfig()
    spread: SpreadComponent = FixedSpreadConfig()
    sizer: SizerComponent = AsymmetricSizerConfig()


class PriceBounds(SpecModel):
    min: OpenUnit = Field(Decimal("0.01"), description="Lowest price quoted, dollars.")
    max: OpenUnit = Field(Decimal("0.99"), description="Highest price quoted, dollars.")


COMPONENT_SLOTS: Final = ("volatility", "reservation_price", "skew", "spread", "sizer")

_DEFAULT: Final[dict[str, Any]] = {"components": Components().model_dump()}

PRESETS: Final[Mapping[str, dict[str, Any]]] = {
    # Wide spreads, strong skew, small sizes, a low inventory cap.
    "conservative": {
        "components": {
            "volatility": {"type": "ewma", "params": {"alpha": Decimal("0.94")}},
            "reservation_price": {"type": "avellaneda_stoikov", "params": {"gamma": Decimal("0.3")}},
            "skew": {"type": "linear", "params": {"intensity": Decimal("0.03")}},
            "spread": {"type": "volatility", "params": {"base_spread": Decimal("0.04"), "vol_multiplier": 1}},
            "sizer": {"type": "asymmetric", "params": {"base_size": Decimal(25)}},
        },
        "max_inventory": Decimal(250),
        "min_spread": Decimal("0.02"),
    },
    # Tight spreads, light skew, large sizes.
    "aggressive": {
        "components": {
            "volatility": {"type": "ewma", "params": {"alpha": Decimal("0.9")}},
            "reservation_price": {"type": "avellaneda_stoikov", "params": {"gamma": Decimal("0.05")}},
            "skew": {"type": "linear", "params": {"intensity": Decimal("0.005")}},
            "spread": {
                "type": "volatility",
                "params": {"base_spread": Decimal("0.01"), "vol_multiplier": Decimal("0.25")},
            },
            "sizer": {"type": "asymmetric", "params": {"base_size": Decimal(200)}},
        },
        "max_inventory": Decimal(1000),
        "min_spread": Decimal("0.01"),
    },
    # Fixed spread, no skew, no inventory adjustment: the yardstick the others are compared with.
    "baseline": {
        "components": {
            "volatility": {"type": "ewma", "params": {"alpha": Decimal("0.94")}},
            "reservation_price": {"type": "simple_mid", "params": {}},
            "skew": {"type": "none", "params": {}},
            "spread": {"type": "fixed", "params": {"base_spread": Decimal("0.02")}},
            "sizer": {"type": "fixed", "params": {"base_size": Decimal(100)}},
        },
    },
}


def merge_components(base: Mapping[str, Any], given: Any) -> Any:
    """Overlay the user's component slots on the preset's (see the module docstring)."""
    if not isinstance(given, Mapping):
        return given  # let validation report the wrong type
    merged: dict[str, Any] = copy.deepcopy(dict(base))
    for slot, value in given.items():
        base_slot = merged.get(slot)
        if not isinstance(value, Mapping) or not isinstance(base_slot, Mapping):
            merged[slot] = value
            continue
        if "type" in value and value["type"] != base_slot.get("type"):
            merged[slot] = dict(value)
            continue
        slot_merged = {**base_slot, **{k: v for k, v in value.items() if k != "params"}}
        params = value.get("params")
        if isinstance(params, Mapping):
            slot_merged["params"] = {**base_slot.get("params", {}), **params}
        elif "params" in value:
            slot_merged["params"] = params
        merged[slot] = slot_merged
    return merged


class StrategySpec(SpecModel):
    """FR-416: components (or a preset) plus the strategy-wide limits."""

    preset: Literal["conservative", "aggressive", "baseline"] | None = Field(
        None, description="Start from a preset; components given here override its slots."
    )
    components: Components = Components()
    max_inventory: Contracts = Field(Decimal(1000), description="Q_max: maximum net inventory, contracts.")
    min_spread: PositiveDecimal = Field(Decimal("0.01"), description="Narrowest full spread quoted, dollars.")
    price_bounds: PriceBounds = PriceBounds()

    @model_validator(mode="before")
    @classmethod
    def _materialise_preset(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        preset = data.get("preset")
        base = PRESETS.get(preset, _DEFAULT) if isinstance(preset, str) else _DEFAULT
        out = {k: v for k, v in base.items() if k != "components"}
        out.update(data)
        out["components"] = merge_components(base["components"], data.get("components", {}))
        return out

    def check(self) -> list[FieldProblem]:
        """Business rules beyond single-field constraints."""
        problems: list[FieldProblem] = []
        if self.max_inventory > MAX_POSITION_PER_MARKET:
            problems.append(
                (
                    ("max_inventory",),
                    f"{self.max_inventory} exceeds the code-level hard limit of {MAX_POSITION_PER_MARKET} "
                    "contracts per market (RCR-101); hard limits cannot be raised by configuration",
                )
            )
        base_size = self.components.sizer.params.base_size
        if base_size > MAX_ORDER_SIZE:
            problems.append(
                (
                    ("components", "sizer", "params", "base_size"),
                    f"{base_size} exceeds the code-level maximum order size of {MAX_ORDER_SIZE} contracts (RCR-101)",
                )
            )
        if base_size > self.max_inventory:
            problems.append(
                (
                    ("components", "sizer", "params", "base_size"),
                    f"base_size {base_size} is larger than max_inventory {self.max_inventory}",
                )
            )
        if self.price_bounds.min >= self.price_bounds.max:
            problems.append(
                (
                    ("price_bounds", "min"),
                    f"min {self.price_bounds.min} must be below max {self.price_bounds.max}",
                )
            )
        spread = self.components.spread.params
        base_spread = getattr(spread, "base_spread", None)
        if base_spread is not None and base_spread < self.min_spread:
            problems.append(
                (
                    ("components", "spread", "params", "base_spread"),
                    f"base_spread {base_spread} is below min_spread {self.min_spread}",
                )
            )
        if self.min_spread >= self.price_bounds.max - self.price_bounds.min:
            problems.append((("min_spread",), "min_spread leaves no room inside price_bounds"))
        return problems + self._combination_problems()

    def _combination_problems(self) -> list[FieldProblem]:
        """Component combinations that cannot work together (FR-416: detected before anything runs)."""
        c = self.components
        problems: list[FieldProblem] = []
        if (
            isinstance(c.spread, AvellanedaStoikovSpreadConfig)
            and isinstance(c.reservation_price, AvellanedaStoikovReservationConfig)
            and c.spread.params.gamma != c.reservation_price.params.gamma
        ):
            problems.append(
                (
                    ("components", "spread", "params", "gamma"),
                    f"must equal reservation_price gamma {c.reservation_price.params.gamma}: one "
                    "Avellaneda–Stoikov model has one risk aversion",
                )
            )
        adaptive_on_zero = (
            isinstance(c.skew, AdaptiveSkewConfig)
            and isinstance(c.volatility, FixedVolatilityConfig)
            and c.volatility.params.volatility == 0
            and c.skew.params.intensity > 0
        )
        if adaptive_on_zero:
            problems.append(
                (
                    ("components", "skew", "type"),
                    "adaptive skew scales with volatility, and a fixed volatility of 0 would never skew",
                )
            )
        return problems
