"""The ``Exchange`` kind: a venue connection (FR-112), its rate limits (FR-603) and fees (FR-702).

Credentials are only ever *references*: the name of an environment variable, or a key file path. A
spec that tries to carry a secret itself is rejected at admission (see ``mm.specs.admission``), so
secrets never reach the resource store, revisions, diffs or logs. ``allow_live`` is the paper-trading
gate: a Market may only trade ``live`` on an Exchange that says so explicitly.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final, Literal

from pydantic import Field, model_validator

from mm.specs.types import (
    EnvVarName,
    FieldProblem,
    Int,
    NonNegativeDecimal,
    PositiveDecimal,
    PositiveInt,
    SpecModel,
)

Venue = Literal["kalshi", "polymarket", "simulator"]
Environment = Literal["prod", "demo", "local", "custom"]
Tier = Literal["basic", "advanced", "expert", "premier", "paragon", "prime", "prestige"]

KALSHI_ENDPOINTS: Final = {
    "prod": ("https://external-api.kalshi.com/trade-api/v2", "wss://external-api-ws.kalshi.com/trade-api/ws/v2"),
    "demo": (
        "https://external-api.demo.kalshi.co/trade-api/v2",
        "wss://external-api-ws.demo.kalshi.co/trade-api/ws/v2",
    ),
}
"""kalshi-api.md §1."""

POLYMARKET_ENDPOINTS: Final = {
    "prod": ("https://clob.polymarket.com", "wss://ws-subscriptions-clob.polymarket.com/ws"),
}

TIER_REQUESTS_PER_SECOND: Final[dict[str, tuple[int, int]]] = {
    # (reads/s, writes/s) at the default cost of 10 tokens a request (kalshi-api.md §9).
    "basic": (20, 10),
    "advanced": (30, 30),
    "expert": (60, 60),
    "premier": (100, 100),
    "paragon": (200, 200),
    "prime": (400, 400),
    "prestige": (1000, 800),
}


class RateLimits(SpecModel):
    """Client-side token buckets (FR-603). Unset rates are materialised from the tier."""

    tier: Tier = "basic"
    writes_per_second: PositiveDecimal | None = Field(None, description="Order writes per second.")
    reads_per_second: PositiveDecimal | None = Field(None, description="Reads per second.")

    @model_validator(mode="after")
    def _from_tier(self) -> RateLimits:
        reads, writes = TIER_REQUESTS_PER_SECOND[self.tier]
        if self.writes_per_second is None:
            object.__setattr__(self, "writes_per_second", Decimal(writes))
        if self.reads_per_second is None:
            object.__setattr__(self, "reads_per_second", Decimal(reads))
        return self


class FeeStructure(SpecModel):
    """FR-702's fee block. Kalshi's formula is taker ``rate·M·C·P·(1−P)`` (kalshi-api.md §10)."""

    taker_rate: NonNegativeDecimal = Decimal("0.07")
    maker_rate: NonNegativeDecimal = Field(Decimal(0), description="Maker fee rate (0 on most Kalshi series).")
    maker_rebate: NonNegativeDecimal = Decimal(0)
    min_fee: NonNegativeDecimal = Decimal(0)
    max_fee_per_contract: NonNegativeDecimal | None = Field(None, description="Cap per contract, dollars.")


class Fees(SpecModel):
    structure: FeeStructure = FeeStructure()
    fee_type: Literal["quadratic", "quadratic_with_maker_fees", "quadratic_with_combo_maker_fees", "flat"] | None = (
        Field(None, description="Override the venue's series fee type; None = use the venue's data.")
    )
    multiplier: NonNegativeDecimal | None = Field(None, description="Override the series fee multiplier.")
    rounding: Literal["per_order_cent", "per_fill_centicent"] = Field(
        "per_fill_centicent", description="Kalshi fee rounding mode (kalshi-api.md §10)."
    )
    track_estimated_fees: bool = Field(True, description="Estimate exit fees in unrealised PnL.")


class SimulatorOptions(SpecModel):
    """For ``venue: simulator``: run the built-in Kalshi-compatible exchange inside the node."""

    embedded: bool = Field(True, description="Start the simulator in-process (no base_url needed).")
    seed: Int = Field(1, description="Seed of the simulator's random generators (reproducible runs).")
    speed: PositiveDecimal = Field(
        Decimal(1), description="Simulated seconds per real second (e.g. 60: an hourly market plays in a minute)."
    )
    start: str | None = Field(
        None,
        pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?Z$",
        description="Simulated start time (UTC, e.g. 2026-08-13T20:40:00Z); None = now.",
    )


class ExchangeSpec(SpecModel):
    """A venue connection. Prod/demo endpoints are filled in from the venue; ``custom`` needs both URLs."""

    venue: Venue
    environment: Environment | None = Field(
        None, description="prod, demo, local (simulator) or custom. Required for kalshi; explicit is safer."
    )
    base_url: str | None = Field(None, pattern=r"^https?://", description="REST base URL including the API path.")
    ws_url: str | None = Field(None, pattern=r"^wss?://", description="WebSocket URL.")
    api_key_env: EnvVarName | None = Field(None, description="Env var holding the API key id.")
    private_key_env: EnvVarName | None = Field(None, description="Env var holding the PEM private key.")
    private_key_file: str | None = Field(None, description="Path of the PEM private key file (mode 0600).")
    api_secret_env: EnvVarName | None = Field(None, description="Env var holding an API secret (Polymarket).")
    passphrase_env: EnvVarName | None = Field(None, description="Env var holding an API passphrase (Polymarket).")
    chain_id: PositiveInt | None = Field(None, description="Polymarket: chain id (137 = Polygon).")
    allow_live: bool = Field(False, description="Allow Markets on this exchange to send real orders.")
    rate_limits: RateLimits = RateLimits()
    fees: Fees = Fees()
    simulator: SimulatorOptions | None = None

    @model_validator(mode="after")
    def _materialise(self) -> ExchangeSpec:
        env = self.environment
        if env is None and self.venue == "simulator":
            env = "local"
        if env is None and self.venue == "polymarket":
            env = "prod"
        object.__setattr__(self, "environment", env)
        endpoints = {"kalshi": KALSHI_ENDPOINTS, "polymarket": POLYMARKET_ENDPOINTS}.get(self.venue, {})
        if env in endpoints:
            rest, ws = endpoints[env]
            if self.base_url is None:
                object.__setattr__(self, "base_url", rest)
            if self.ws_url is None:
                object.__setattr__(self, "ws_url", ws)
        if self.venue == "polymarket" and self.chain_id is None:
            object.__setattr__(self, "chain_id", 137)
        if self.venue == "simulator" and self.simulator is None:
            object.__setattr__(self, "simulator", SimulatorOptions(embedded=self.base_url is None))
        return self

    def check(self) -> list[FieldProblem]:
        problems: list[FieldProblem] = []
        allowed_env = {
            "kalshi": ("prod", "demo", "custom"),
            "polymarket": ("prod", "custom"),
            "simulator": ("local", "custom"),
        }
        if self.environment is None:
            problems.append((("environment",), f"required for venue {self.venue}: one of prod, demo, custom"))
        elif self.environment not in allowed_env[self.venue]:
            problems.append(
                (
                    ("environment",),
                    f"{self.environment!r} is not valid for venue {self.venue}; use one of "
                    f"{', '.join(allowed_env[self.venue])}",
                )
            )
        embedded = self.simulator is not None and self.simulator.embedded
        if self.environment == "custom" or (self.venue == "simulator" and not embedded):
            for name in ("base_url", "ws_url"):
                if getattr(self, name) is None:
                    problems.append(((name,), f"required when environment is {self.environment!r}"))
        if self.venue == "kalshi":
            if self.api_key_env is None:
                problems.append((("api_key_env",), "venue kalshi needs the env var name of the API key id"))
            if (self.private_key_env is None) == (self.private_key_file is None):
                problems.append(
                    (("private_key_env",), "venue kalshi needs exactly one of private_key_env or private_key_file")
                )
        if self.venue == "polymarket":
            for name in ("api_key_env", "api_secret_env", "passphrase_env", "private_key_env"):
                if getattr(self, name) is None:
                    problems.append(((name,), f"venue polymarket needs {name}"))
        if self.venue != "simulator" and self.simulator is not None:
            problems.append((("simulator",), "only valid for venue simulator"))
        return problems
