"""The Kubernetes-style envelope shared by every kind, and the kind registry.

``spec`` is written by people (apply) and ``status`` only by the controller; the two have separate write
paths. ``metadata.generation`` increases only when ``spec`` changes; it and the other system fields are
set by the store and ignored on input.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from mm.specs.exchange import ExchangeSpec
from mm.specs.market import MarketSelectorSpec, MarketSpec
from mm.specs.node import TradingNodeSpec
from mm.specs.risk import RiskPolicySpec
from mm.specs.strategy import StrategySpec
from mm.specs.types import Name, SpecModel

API_VERSION: Final = "mm/v1alpha1"

LABEL_KEY = r"^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
LABEL_VALUE = r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$"


class Metadata(SpecModel):
    name: Name
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(
        default_factory=dict, description="Free text, e.g. mm/change-cause: 'widen spread'."
    )
    # System fields: written by the store, ignored on input.
    generation: int | None = Field(None, description="Read-only: increases when spec changes.")
    uid: str | None = Field(None, description="Read-only.")
    creation_timestamp: datetime | None = Field(None, description="Read-only.")
    resource_version: int | None = Field(None, description="Read-only.")


class Condition(BaseModel):
    """A Kubernetes-style condition: every kind has at least ``Ready``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str = ""
    message: str = ""
    last_transition_time: datetime | None = None
    observed_generation: int | None = None


class ResourceStatus(BaseModel):
    """Written by the controller only. Kinds add their own fields (phase, positions, ...)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    observed_generation: int | None = None
    conditions: list[Condition] = Field(default_factory=list)


class _Resource(SpecModel):
    api_version: Literal["mm/v1alpha1"] = Field(alias="apiVersion")
    metadata: Metadata
    status: ResourceStatus | None = Field(None, description="Read-only: written by the controller.")


class ExchangeResource(_Resource):
    """A venue connection (FR-112)."""

    kind: Literal["Exchange"]
    spec: ExchangeSpec


class StrategyResource(_Resource):
    """Strategy components or a preset (FR-410–416)."""

    kind: Literal["Strategy"]
    spec: StrategySpec


class RiskPolicyResource(_Resource):
    """Risk rules, order, critical rules, kill switch (FR-510–513)."""

    kind: Literal["RiskPolicy"]
    spec: RiskPolicySpec


class MarketResource(_Resource):
    """One traded market."""

    kind: Literal["Market"]
    spec: MarketSpec


class MarketSelectorResource(_Resource):
    """Market discovery and lifecycle (FR-1303)."""

    kind: Literal["MarketSelector"]
    spec: MarketSelectorSpec


class TradingNodeResource(_Resource):
    """The singleton runtime configuration."""

    kind: Literal["TradingNode"]
    spec: TradingNodeSpec


AnyResource = (
    ExchangeResource
    | StrategyResource
    | RiskPolicyResource
    | MarketResource
    | MarketSelectorResource
    | TradingNodeResource
)


@dataclass(frozen=True, slots=True)
class KindInfo:
    kind: str
    model: type[_Resource]
    plural: str
    short: str

    @property
    def schema_file(self) -> str:
        return f"{self.kind.lower()}.schema.json"


KINDS: Final[dict[str, KindInfo]] = {
    info.kind: info
    for info in (
        KindInfo("Exchange", ExchangeResource, "exchanges", "ex"),
        KindInfo("Strategy", StrategyResource, "strategies", "st"),
        KindInfo("RiskPolicy", RiskPolicyResource, "riskpolicies", "rp"),
        KindInfo("Market", MarketResource, "markets", "mk"),
        KindInfo("MarketSelector", MarketSelectorResource, "marketselectors", "ms"),
        KindInfo("TradingNode", TradingNodeResource, "tradingnodes", "node"),
    )
}


def resolve_kind(name: str) -> KindInfo | None:
    """Find a kind by its name, plural or short name, case-insensitively (``market``, ``mk``, ``Markets``)."""
    wanted = name.strip().lower()
    for info in KINDS.values():
        if wanted in (info.kind.lower(), info.plural, info.short):
            return info
    return None
