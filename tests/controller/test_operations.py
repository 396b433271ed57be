"""Operations on a ResourceStore (what the API and offline mmctl share): apply actions, dry runs, managers and
conflicts, diffs with secrets masked, rollback (incl. a target that no longer validates)."""

from __future__ import annotations

import pytest

from mm.clock import SimulatedClock
from mm.controller import operations
from mm.controller.operations import ApplyConflictError, RollbackError
from mm.controller.resources import ResourceStore
from tests.controller.harness import EXCHANGE_YAML, RISK_YAML, market_yaml, strategy_yaml

TICKER = "KXBTCD-26AUG1317-T73249.99"


def store() -> ResourceStore:
    return ResourceStore(SimulatedClock(1_786_000_000_000_000))


def apply(resources: ResourceStore, *docs: str, manager: str = "cli", **kw: bool) -> list[str]:
    admitted = operations.admit_sources(resources, [(f"doc{i}.yaml", d) for i, d in enumerate(docs)])
    return [o.line() for o in operations.apply(resources, admitted, manager=manager, **kw)]


def test_created_configured_unchanged_and_dry_run() -> None:
    resources = store()
    assert apply(resources, strategy_yaml(), RISK_YAML) == ["strategy/s1 created", "riskpolicy/r1 created"]
    assert apply(resources, strategy_yaml(spread="0.040")) == ["strategy/s1 unchanged"]  # 0.040 == 0.04
    assert apply(resources, strategy_yaml(spread="0.06"), dry_run=True) == ["strategy/s1 configured (dry run)"]
    assert resources.require("Strategy", "s1").generation == 1  # a dry run stores nothing
    assert apply(resources, strategy_yaml(spread="0.06")) == ["strategy/s1 configured"]
    assert resources.require("Strategy", "s1").generation == 2


def test_references_resolve_against_what_is_stored() -> None:
    resources = store()
    with pytest.raises(Exception, match="s1"):
        apply(resources, EXCHANGE_YAML, RISK_YAML, market_yaml("m1", TICKER))  # no Strategy/s1 anywhere
    apply(resources, EXCHANGE_YAML, strategy_yaml(), RISK_YAML)
    assert apply(resources, market_yaml("m1", TICKER)) == ["market/m1 created"]  # found in the store


def test_git_ops_objects_conflict_unless_forced_and_record_the_override() -> None:
    resources = store()
    apply(resources, strategy_yaml(), manager="git:abc1234")
    with pytest.raises(ApplyConflictError, match="git:abc1234"):
        apply(resources, strategy_yaml(spread="0.06"))
    assert apply(resources, strategy_yaml()) == ["strategy/s1 unchanged"]  # no change, no conflict
    assert apply(resources, strategy_yaml(spread="0.06"), force_conflicts=True) == ["strategy/s1 configured"]
    stored = resources.require("Strategy", "s1")
    assert stored.annotations[operations.MANAGER] == "cli" and stored.annotations[operations.OVERRIDDEN] == "cli"


def test_diff_shows_changed_objects_only_with_secrets_masked() -> None:
    resources = store()
    apply(resources, strategy_yaml(), RISK_YAML)
    admitted = operations.admit_sources(resources, [("s.yaml", strategy_yaml(spread="0.06")), ("r.yaml", RISK_YAML)])
    diffs = operations.diff(resources, admitted)
    assert [d.kind for d in diffs] == ["Strategy"]
    assert "-      base_spread: '0.04'" in diffs[0].unified and "+      base_spread: '0.06'" in diffs[0].unified


def test_rollback_stores_the_old_spec_as_a_new_revision() -> None:
    resources = store()
    apply(resources, strategy_yaml())
    apply(resources, strategy_yaml(spread="0.06"))
    outcome, target = operations.rollback(resources, "Strategy", "s1")
    assert target.revision == 1 and outcome.action == "configured" and outcome.generation == 3
    assert [r.revision for r in resources.history("Strategy", "s1")] == [1, 2, 3]
    assert resources.require("Strategy", "s1").digest == target.digest
    with pytest.raises(RollbackError, match="no revision 9"):
        operations.rollback(resources, "Strategy", "s1", to_revision=9)


def test_a_rollback_target_that_no_longer_validates_is_refused() -> None:
    resources = store()
    apply(resources, EXCHANGE_YAML, strategy_yaml(), strategy_yaml("s2"), RISK_YAML, market_yaml("m1", TICKER))
    apply(resources, market_yaml("m1", TICKER, strategy="s2"))
    resources.delete("Strategy", "s1")  # revision 1 of the Market referenced it
    with pytest.raises(RollbackError, match="no longer validates"):
        operations.rollback(resources, "Market", "m1")
    assert resources.require("Market", "m1").spec.strategy_ref == "s2"  # untouched
