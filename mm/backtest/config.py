"""What one backtest runs: the Market's effective Strategy and RiskPolicy (the recorded ones, or changed ones),
how fills are simulated, and the node settings the Market reconciler would have applied (FR-903).

:func:`backtest_config` builds a :class:`BacktestConfig` from a :class:`~mm.backtest.tape.SessionTape`: by
default everything is what the recorded node ran (the session_start holds the effective specs with every
default written out), so a backtest of an unchanged strategy is comparable with the recorded session; a
Strategy or RiskPolicy given as a spec mapping replaces the recorded one whole.

Fill modes (ADR 021): the requirement's three names map onto the paper fill models of
:mod:`mm.adapters.fill_models` — the same code paper trading uses:

* ``optimistic`` → ``touch``: we are at the front of every queue — a print at or through our price fills us,
  and so does an opposite top of book that reaches it (the requirement's crossing rule).
* ``pessimistic`` → ``trade_through``: fills only from public trades printed strictly through its price.
* ``probabilistic`` → ``queue`` with a generator seeded by ``seed``: our queue position is estimated from the
  book; cancels come from ahead of us at random (seeded); prints at our price fill us once the queue ahead
  is gone.

The paper names (``touch``, ``cross``, ``trade_through``, ``queue`` — the last the queue model's deterministic
expected-value form) are accepted too.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from pydantic import ValidationError

from mm.adapters.fill_models import (
    CrossFillModel,
    FillModel,
    QueueFillModel,
    TouchFillModel,
    TradeThroughFillModel,
)
from mm.backtest.tape import SessionTape, TapeError
from mm.domain.fees import FeeRounding, FeeSchedule
from mm.risk.states import TradingState
from mm.specs.canonical import digest
from mm.specs.node import AggregateLimits, TradingNodeSpec
from mm.specs.risk import RiskPolicySpec
from mm.specs.strategy import StrategySpec

__all__ = [
    "DEFAULT_FILL_MODE",
    "FILL_MODES",
    "BacktestConfig",
    "BacktestConfigError",
    "backtest_config",
    "make_fill_model",
]

FILL_MODES: Final[Mapping[str, str]] = {
    "optimistic": "touch",
    "pessimistic": "trade_through",
    "probabilistic": "queue",
    "touch": "touch",
    "cross": "cross",
    "trade_through": "trade_through",
    "queue": "queue",
}
"""Accepted ``fill_model`` names → the paper fill model they run."""
DEFAULT_FILL_MODE: Final = "probabilistic"
"""Measured closest to real fills (docs/calibration.md: 92–97% against 39–67% for pessimistic); ADR 021."""
_DEFAULT_CUTOFF_MINUTES: Final = Decimal(3)
_KALSHI_FEES: Final = FeeSchedule()


class BacktestConfigError(TapeError):
    """A backtest that cannot be configured: an unknown fill model, a spec that does not validate."""


def make_fill_model(name: str, seed: int) -> FillModel:
    """A fresh fill model for ``name`` (see :data:`FILL_MODES`); ``probabilistic`` draws from ``seed``."""
    model = FILL_MODES.get(name)
    if model is None:
        raise BacktestConfigError(f"fill model must be one of {', '.join(FILL_MODES)}, not {name!r}")
    if model == "touch":
        return TouchFillModel()
    if model == "cross":
        return CrossFillModel()
    if model == "trade_through":
        return TradeThroughFillModel()
    return QueueFillModel(rng=random.Random(seed)) if name == "probabilistic" else QueueFillModel()


@dataclass(frozen=True, slots=True)
class BacktestConfig:
    """Everything a backtest depends on besides the tape. Money and sizes in exact units as elsewhere."""

    market_name: str
    strategy: StrategySpec
    risk_policy: RiskPolicySpec
    fill_model: str = DEFAULT_FILL_MODE
    seed: int = 0
    requote_interval_us: int = 1_000_000
    """Quotes are recomputed on every mid change, on every fill, and at least this often (µs of recorded time;
    the node's Market reconcile cycle is 1 s)."""
    materiality_ticks: int = 1
    max_updates_per_second: Decimal = Decimal(10)
    cutoff_minutes: Decimal = _DEFAULT_CUTOFF_MINUTES
    """RCR-200: inside this many minutes of the close every order is cancelled and nothing is quoted."""
    market_state: TradingState = TradingState.ACTIVE
    node_state: TradingState = TradingState.ACTIVE
    aggregate: AggregateLimits | None = None
    fees: FeeSchedule = _KALSHI_FEES
    settlement_value_units: int | None = None
    """Settle what is held at the end at this YES value ($0.0001: 10000 = YES won, 0 = NO won); None = mark the
    position to the last mid instead."""
    starting_cash_micros: int = 10_000 * 1_000_000

    @property
    def strategy_digest(self) -> str:
        return digest(self.strategy.model_dump(mode="json"))

    @property
    def risk_digest(self) -> str:
        return digest(self.risk_policy.model_dump(mode="json"))


def _validated(model: type[Any], data: Mapping[str, Any] | None, what: str) -> Any:
    if data is None:
        raise BacktestConfigError(f"the session does not record the {what}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise BacktestConfigError(f"the {what} does not validate: {exc}") from None


def _fees(tape: SessionTape, exchange_ref: str | None) -> FeeSchedule:
    """The recorded Exchange's fee terms (the venue default where the spec leaves them to the venue)."""
    spec = tape.exchanges.get(exchange_ref or "") or {}
    fees = spec.get("fees") or {}
    fee_type = fees.get("fee_type") or "quadratic"
    multiplier = Decimal(str(fees["multiplier"])) if fees.get("multiplier") is not None else Decimal(1)
    rounding: FeeRounding = "per_order_cent" if fees.get("rounding") == "per_order_cent" else "per_fill_centicent"
    try:
        return FeeSchedule(str(fee_type), multiplier, rounding)
    except (TypeError, ValueError) as exc:
        raise BacktestConfigError(f"the recorded fees of Exchange {exchange_ref!r} are not usable: {exc}") from None


def backtest_config(
    tape: SessionTape,
    *,
    market: str | None = None,
    strategy: Mapping[str, Any] | None = None,
    risk_policy: Mapping[str, Any] | None = None,
    fill_model: str = DEFAULT_FILL_MODE,
    seed: int = 0,
    requote_interval_s: Decimal = Decimal(1),
    settlement_value_units: int | None = None,
) -> BacktestConfig:
    """The configuration of a backtest of ``tape``'s Market ``market`` (the only/first recorded one by default),
    with ``strategy`` / ``risk_policy`` (spec mappings) replacing the recorded effective specs when given."""
    recorded = tape.market(market)
    make_fill_model(fill_model, seed)  # an unknown name fails here, before any work
    if requote_interval_s <= 0:
        raise BacktestConfigError(f"the requote interval must be positive, not {requote_interval_s} s")
    if settlement_value_units is not None and not 0 <= settlement_value_units <= 10_000:
        raise BacktestConfigError(f"a settlement value is in [0, 10000] $0.0001 units, not {settlement_value_units}")
    s_spec: StrategySpec = _validated(
        StrategySpec, strategy if strategy is not None else recorded.strategy, f"Strategy of Market {recorded.name}"
    )
    r_spec: RiskPolicySpec = _validated(
        RiskPolicySpec,
        risk_policy if risk_policy is not None else recorded.risk_policy,
        f"RiskPolicy of Market {recorded.name}",
    )
    node: TradingNodeSpec | None = (
        _validated(TradingNodeSpec, tape.trading_node, "TradingNode spec") if tape.trading_node else None
    )
    spec = recorded.market
    quoting = spec.get("quoting") or {}
    cutoff = spec.get("cutoff_minutes")
    return BacktestConfig(
        market_name=recorded.name,
        strategy=s_spec,
        risk_policy=r_spec,
        fill_model=fill_model,
        seed=seed,
        requote_interval_us=int(requote_interval_s * 1_000_000),
        materiality_ticks=int(quoting.get("materiality_ticks", 1)),
        max_updates_per_second=Decimal(str(quoting.get("max_updates_per_second", 10))),
        cutoff_minutes=Decimal(str(cutoff)) if cutoff is not None else _DEFAULT_CUTOFF_MINUTES,
        market_state=TradingState.parse(str(spec.get("trading_state", "active"))),
        node_state=TradingState.parse(str(node.trading_state)) if node is not None else TradingState.ACTIVE,
        aggregate=node.risk.aggregate if node is not None else None,
        fees=_fees(tape, spec.get("exchange_ref")),
        settlement_value_units=settlement_value_units,
    )
