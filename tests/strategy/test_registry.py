"""The component registry and building an engine from a Strategy spec (FR-410, FR-416)."""

from __future__ import annotations

import typing
from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from mm.specs import strategy as spec_module
from mm.specs.strategy import COMPONENT_SLOTS, PRESETS, Components, StrategySpec
from mm.strategy.base import (
    QuoteSizer,
    ReservationPriceCalculator,
    SkewCalculator,
    SpreadCalculator,
    VolatilityEstimator,
)
from mm.strategy.engine import SLOTS, Slot, StrategyLimits
from mm.strategy.registry import REGISTRY, build_component, build_engine
from mm.strategy.reservation import AvellanedaStoikov, SimpleMidPrice
from mm.strategy.sizing import AsymmetricSizer, FixedSizer, KellySizer
from mm.strategy.skew import LinearSkew, NoSkew
from mm.strategy.spread import FixedSpread, VolatilitySpread
from mm.strategy.volatility import EWMAVolatility, FixedVolatility, RealizedVolatility

ABC_OF_SLOT: dict[str, type] = {
    "volatility": VolatilityEstimator,
    "reservation_price": ReservationPriceCalculator,
    "skew": SkewCalculator,
    "spread": SpreadCalculator,
    "sizer": QuoteSizer,
}

UNION_OF_SLOT = {
    "volatility": spec_module.VolatilityComponent,
    "reservation_price": spec_module.ReservationComponent,
    "skew": spec_module.SkewComponent,
    "spread": spec_module.SpreadComponent,
    "sizer": spec_module.SizerComponent,
}


def spec_configs(slot: str) -> dict[str, type[BaseModel]]:
    """``{type literal: config model}`` for a slot, read from the spec's discriminated union."""
    union, *_ = typing.get_args(UNION_OF_SLOT[slot])  # Annotated[A | B | C, Field(discriminator="type")]
    out: dict[str, type[BaseModel]] = {}
    for model in typing.get_args(union):
        (literal,) = typing.get_args(model.model_fields["type"].annotation)
        out[literal] = model
    return out


def test_slots_agree_everywhere() -> None:
    assert tuple(REGISTRY) == SLOTS == COMPONENT_SLOTS
    assert set(Components.model_fields) == set(SLOTS)
    for slot in SLOTS:  # the module-level unions are the ones the Components model uses
        union, *_ = typing.get_args(UNION_OF_SLOT[slot])
        assert set(typing.get_args(Components.model_fields[slot].annotation)) == set(typing.get_args(union))


@pytest.mark.parametrize("slot", SLOTS)
def test_registry_types_match_the_spec_literals(slot: Slot) -> None:
    assert set(REGISTRY[slot]) == set(spec_configs(slot))


@pytest.mark.parametrize("slot", SLOTS)
def test_registry_types_match_the_json_schema(slot: Slot) -> None:
    schema = StrategySpec.model_json_schema()
    defs = schema["$defs"]
    prop = defs["Components"]["properties"][slot]
    variants = prop.get("oneOf") or prop.get("anyOf")
    assert variants, prop
    names = set()
    for variant in variants:
        model = defs[variant["$ref"].rsplit("/", 1)[-1]]
        type_schema = model["properties"]["type"]
        names.add(type_schema.get("const") or type_schema["enum"][0])
    assert names == set(REGISTRY[slot])


CASES = [(slot, name) for slot in SLOTS for name in REGISTRY[slot]]
EXTRA_REQUIRED: dict[tuple[Slot, str], dict[str, Any]] = {("volatility", "fixed"): {"volatility": Decimal("0.004")}}


@pytest.mark.parametrize(("slot", "type_name"), CASES, ids=[f"{s}.{t}" for s, t in CASES])
def test_every_registered_type_builds_from_spec_defaults(slot: Slot, type_name: str) -> None:
    config = spec_configs(slot)[type_name].model_validate(
        {"type": type_name, "params": EXTRA_REQUIRED.get((slot, type_name), {})}
    )
    params = dict(config.params)  # type: ignore[attr-defined]
    if slot == "sizer":
        params.pop("base_size")
    component = build_component(slot, type_name, params)
    assert isinstance(component, ABC_OF_SLOT[slot])
    assert isinstance(component, REGISTRY[slot][type_name])  # type: ignore[arg-type]  # factories are classes


def test_decimal_params_become_floats() -> None:
    comp = build_component("reservation_price", "avellaneda_stoikov", {"gamma": Decimal("0.3"), "horizon": "fixed"})
    assert isinstance(comp, AvellanedaStoikov)
    assert type(comp.gamma) is float and comp.gamma == 0.3
    assert comp.horizon == "fixed"
    ewma = build_component("volatility", "ewma", {"alpha": Decimal("0.9"), "min_observations": 5})
    assert isinstance(ewma, EWMAVolatility)
    assert type(ewma.alpha) is float and ewma.min_observations == 5


def test_unknown_type_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown skew type 'quadratic'; known: linear, exponential, adaptive, none"):
        build_component("skew", "quadratic", {})
    with pytest.raises(ValueError, match="unknown spread type 'ewma'; known: fixed, volatility"):
        build_component("spread", "ewma", {})


def test_build_engine_default_spec() -> None:
    eng = build_engine(StrategySpec.model_validate({}))
    assert isinstance(eng.volatility, EWMAVolatility) and eng.volatility.alpha == 0.94
    assert eng.volatility.min_observations == 10 and eng.volatility.initial_volatility is None
    assert isinstance(eng.reservation_price, AvellanedaStoikov) and eng.reservation_price.gamma == 0.1
    assert isinstance(eng.skew, LinearSkew) and eng.skew.intensity == 0.01
    assert isinstance(eng.spread, FixedSpread) and eng.spread.half == 0.01
    assert isinstance(eng.sizer, AsymmetricSizer)
    assert eng.limits == StrategyLimits(1000.0, 100.0, 0.01, 0.01, 0.99)  # FR-404 defaults


def test_build_engine_maps_limits_from_the_spec() -> None:
    spec = StrategySpec.model_validate(
        {
            "components": {"sizer": {"type": "kelly", "params": {"base_size": "50", "fraction": "0.5"}}},
            "max_inventory": "500",
            "min_spread": "0.03",
            "price_bounds": {"min": "0.05", "max": "0.95"},
        }
    )
    eng = build_engine(spec)
    assert eng.limits == StrategyLimits(
        max_inventory=500.0, base_size=50.0, min_spread=0.03, price_min=0.05, price_max=0.95
    )
    assert all(type(v) is float for v in (eng.limits.max_inventory, eng.limits.base_size, eng.limits.price_min))
    assert isinstance(eng.sizer, KellySizer) and eng.sizer.fraction == 0.5


def test_build_engine_presets() -> None:
    conservative = build_engine(StrategySpec.model_validate({"preset": "conservative"}))
    assert isinstance(conservative.spread, VolatilitySpread) and conservative.spread.half == 0.02
    assert isinstance(conservative.reservation_price, AvellanedaStoikov) and conservative.reservation_price.gamma == 0.3
    assert isinstance(conservative.skew, LinearSkew) and conservative.skew.intensity == 0.03
    assert conservative.limits == StrategyLimits(250.0, 25.0, 0.02, 0.01, 0.99)
    aggressive = build_engine(StrategySpec.model_validate({"preset": "aggressive"}))
    assert isinstance(aggressive.volatility, EWMAVolatility) and aggressive.volatility.alpha == 0.9
    assert aggressive.limits == StrategyLimits(1000.0, 200.0, 0.01, 0.01, 0.99)
    baseline = build_engine(StrategySpec.model_validate({"preset": "baseline"}))
    assert isinstance(baseline.reservation_price, SimpleMidPrice)
    assert isinstance(baseline.skew, NoSkew)
    assert isinstance(baseline.sizer, FixedSizer)
    assert baseline.limits == StrategyLimits()


def test_build_engine_gives_a_fresh_estimator_each_time() -> None:
    spec = StrategySpec.model_validate({"components": {"volatility": {"type": "realized"}}})
    a, b = build_engine(spec), build_engine(spec)
    assert isinstance(a.volatility, RealizedVolatility)
    assert a.volatility is not b.volatility


def test_build_engine_fixed_volatility() -> None:
    spec = StrategySpec.model_validate(
        {"components": {"volatility": {"type": "fixed", "params": {"volatility": "0.002"}}}}
    )
    eng = build_engine(spec)
    assert isinstance(eng.volatility, FixedVolatility) and eng.volatility.get_volatility() == 0.002


@pytest.mark.parametrize("preset", [None, *PRESETS])
def test_presets_and_default_pass_check(preset: str | None) -> None:
    data = {} if preset is None else {"preset": preset}
    assert StrategySpec.model_validate(data).check() == []


# --- spec-level validation ------------------------------------------------------------------------


@pytest.mark.parametrize("alpha", ["0", "1", "1.5", "-0.2"])
def test_alpha_outside_open_unit_interval(alpha: str) -> None:
    with pytest.raises(ValidationError, match=r"must be in \(0, 1\)"):
        StrategySpec.model_validate({"components": {"volatility": {"type": "ewma", "params": {"alpha": alpha}}}})


def test_alpha_inside_accepted() -> None:
    spec = StrategySpec.model_validate({"components": {"volatility": {"params": {"alpha": "0.5"}}}})
    assert spec.components.volatility.params.alpha == Decimal("0.5")  # type: ignore[union-attr]


def test_float_params_refused() -> None:
    with pytest.raises(ValidationError, match="exact decimals"):
        StrategySpec.model_validate({"components": {"skew": {"params": {"intensity": 0.01}}}})


def test_unknown_component_type_rejected_by_the_spec() -> None:
    with pytest.raises(ValidationError):
        StrategySpec.model_validate({"components": {"skew": {"type": "quadratic"}}})


def test_avellaneda_stoikov_gamma_mismatch_rejected() -> None:
    spec = StrategySpec.model_validate(
        {
            "components": {
                "reservation_price": {"type": "avellaneda_stoikov", "params": {"gamma": "0.1"}},
                "spread": {"type": "avellaneda_stoikov", "params": {"gamma": "0.2"}},
            }
        }
    )
    problems = spec.check()
    assert len(problems) == 1
    path, message = problems[0]
    assert path == ("components", "spread", "params", "gamma")
    assert "must equal reservation_price gamma 0.1" in message


def test_avellaneda_stoikov_matching_gamma_accepted() -> None:
    spec = StrategySpec.model_validate(
        {
            "components": {
                "reservation_price": {"type": "avellaneda_stoikov", "params": {"gamma": "0.2"}},
                "spread": {"type": "avellaneda_stoikov", "params": {"gamma": "0.2"}},
            }
        }
    )
    assert spec.check() == []
    # an A–S spread next to a non-A–S reservation has nothing to agree with
    other = StrategySpec.model_validate(
        {"components": {"reservation_price": {"type": "simple_mid"}, "spread": {"type": "avellaneda_stoikov"}}}
    )
    assert other.check() == []


def test_adaptive_skew_on_zero_fixed_volatility_rejected() -> None:
    spec = StrategySpec.model_validate(
        {
            "components": {
                "volatility": {"type": "fixed", "params": {"volatility": "0"}},
                "skew": {"type": "adaptive"},
            }
        }
    )
    problems = spec.check()
    assert [p[0] for p in problems] == [("components", "skew", "type")]
    assert "adaptive skew" in problems[0][1]


@pytest.mark.parametrize(
    "components",
    [
        {"volatility": {"type": "fixed", "params": {"volatility": "0.001"}}, "skew": {"type": "adaptive"}},
        {"volatility": {"type": "fixed", "params": {"volatility": "0"}}, "skew": {"type": "linear"}},
        {
            "volatility": {"type": "fixed", "params": {"volatility": "0"}},
            "skew": {"type": "adaptive", "params": {"intensity": "0"}},
        },
        {"volatility": {"type": "ewma"}, "skew": {"type": "adaptive"}},
    ],
)
def test_adaptive_skew_combinations_that_work(components: dict[str, Any]) -> None:
    assert StrategySpec.model_validate({"components": components}).check() == []
