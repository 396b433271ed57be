"""The rule pipeline (FR-510): rules run in ``rule_order``; the first BLOCK stops and rejects; a MODIFY
hands its modified quotes to the next rule; every verdict is recorded.

A rule that raises is caught: the traceback is kept in its record, and the verdict is BLOCK for this
cycle (fail safe, FR-512) — the system keeps running and the next cycle tries again. The caller logs
and counts the records (``mm.observability.risk_audit``); nothing here does IO.
"""

from __future__ import annotations

import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from mm.domain.quotes import QuoteSet
from mm.risk.base import ALLOW, RiskAction, RiskContext, RiskDecision, RiskRule


class DecisionRecord(NamedTuple):
    """One rule's verdict in one cycle, for the audit trail.

    A NamedTuple: one is built per rule per cycle, and a frozen dataclass's per-field
    ``object.__setattr__`` would cost more than the twelve built-in rules' own checks together.
    """

    rule: str
    action: RiskAction
    reason: str | None = None
    kill_switch: bool = False
    error: str | None = None
    """The traceback, when the rule raised (its verdict is then BLOCK)."""


@dataclass(frozen=True, slots=True)
class PipelineResult:
    quotes: QuoteSet | None
    """The approved quotes, or None when a rule blocked."""
    records: tuple[DecisionRecord, ...]
    blocked_by: str | None = None
    kill_switch_reason: str | None = None
    """Set when a rule asked for the kill switch (the first such reason)."""


class RiskPipeline:
    """An ordered, immutable list of rules."""

    __slots__ = ("_allowed", "rules")

    def __init__(self, rules: Sequence[RiskRule]) -> None:
        names = [r.name for r in rules]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"rule names must be unique in a pipeline: {', '.join(duplicates)}")
        self.rules: tuple[RiskRule, ...] = tuple(rules)
        # Records are immutable: the common "rule allowed" record is built once per rule, not per cycle.
        self._allowed = {r.name: DecisionRecord(r.name, RiskAction.ALLOW) for r in self.rules}

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.rules)

    def evaluate(self, quotes: QuoteSet, context: RiskContext) -> PipelineResult:
        records: list[DecisionRecord] = []
        kill_reason: str | None = None
        current = quotes
        for rule in self.rules:
            try:
                decision = rule.evaluate(current, context)
                if not isinstance(decision, RiskDecision):
                    raise TypeError(f"rule returned {type(decision).__name__}, not a RiskDecision")
            except Exception as exc:  # fail safe: a broken rule blocks this cycle, never crashes the node
                records.append(
                    DecisionRecord(
                        rule.name,
                        RiskAction.BLOCK,
                        f"rule raised {type(exc).__name__}: {exc}; blocking this cycle (fail safe)",
                        error=traceback.format_exc(),
                    )
                )
                return PipelineResult(None, tuple(records), rule.name, kill_reason)
            if decision is ALLOW:
                records.append(self._allowed[rule.name])
                continue
            records.append(DecisionRecord(rule.name, decision.action, decision.reason, decision.trigger_kill_switch))
            if decision.trigger_kill_switch and kill_reason is None:
                kill_reason = f"{rule.name}: {decision.reason or 'kill switch requested'}"
            if decision.action is RiskAction.BLOCK:
                return PipelineResult(None, tuple(records), rule.name, kill_reason)
            if decision.action is RiskAction.MODIFY:
                assert decision.modified_quotes is not None  # RiskDecision guarantees it
                current = decision.modified_quotes
        return PipelineResult(current, tuple(records), None, kill_reason)
