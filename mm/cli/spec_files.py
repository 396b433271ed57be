"""Strategy and RiskPolicy specs read from ``-f`` files for what-if runs (``mmctl replay``, ``backtest``, ``sweep``).

The files are admitted exactly like ``mmctl apply`` (every problem reported with file, line and field); each may
hold at most one Strategy and one RiskPolicy, which come back as spec mappings with every default written out —
the shape a session recording stores its effective specs in.
"""

from __future__ import annotations

from typing import Any

from mm.domain.errors import MmError
from mm.specs.admission import admit
from mm.specs.errors import AdmissionError
from mm.specs.risk import RiskPolicySpec
from mm.specs.strategy import StrategySpec
from mm.specs.yaml_loader import load_sources

__all__ = ["SpecFileError", "load_strategy_and_policy"]


class SpecFileError(MmError, ValueError):
    """``-f`` files that hold no Strategy or RiskPolicy, or more than one of a kind."""


def load_strategy_and_policy(paths: list[str]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The Strategy and the RiskPolicy in ``paths`` (either may be absent, not both)."""
    result = admit(load_sources(paths))
    if result.issues:
        raise AdmissionError(result.issues)
    found: dict[str, dict[str, Any]] = {}
    for kind, model in (("Strategy", StrategySpec), ("RiskPolicy", RiskPolicySpec)):
        resources = [r for r in result.resources if r.kind == kind]
        if len(resources) > 1:
            names = ", ".join(r.name for r in resources)
            raise SpecFileError(f"several {kind} resources in {', '.join(paths)}: {names}")
        if resources:
            spec = resources[0].spec
            assert isinstance(spec, model)
            found[kind] = spec.model_dump(mode="json")
    if not found:
        raise SpecFileError(f"no Strategy or RiskPolicy in {', '.join(paths)}")
    return found.get("Strategy"), found.get("RiskPolicy")
