"""Admission of whole bundles: every bad input gives a located, readable error and nothing else."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mm.specs.admission import AdmissionResult, admit, admit_or_raise
from mm.specs.errors import AdmissionError
from mm.specs.strategy import StrategySpec
from mm.specs.yaml_loader import load_text
from tests.specs.conftest import AdmitText
from tests.specs.samples import BUNDLE


def messages(result: AdmissionResult) -> list[str]:
    return [str(issue) for issue in result.issues]


def test_valid_bundle_is_admitted_with_defaults_materialised(admit_text: AdmitText) -> None:
    result = admit_text(BUNDLE)
    assert result.ok, messages(result)
    by_key = {r.key: r for r in result.resources}
    assert set(by_key) == {"Exchange/sim", "Strategy/s1", "RiskPolicy/r1", "Market/m1"}
    strategy = by_key["Strategy/s1"].spec_data
    assert strategy["components"]["skew"] == {"type": "none", "params": {}}  # the baseline preset, expanded
    risk = by_key["RiskPolicy/r1"].spec_data
    assert risk["rules"]["daily_loss_limit"]["limit"] == "100"
    assert len(risk["rule_order"]) == 12
    assert by_key["Market/m1"].spec_data["execution"] == "paper"
    assert by_key["Exchange/sim"].spec_data["environment"] == "local"
    assert all(r.digest.startswith("sha256:") for r in result.resources)


def test_decimal_point_one_stays_exactly_point_one(admit_text: AdmitText) -> None:
    result = admit_text(
        """\
        apiVersion: mm/v1alpha1
        kind: Strategy
        metadata: {name: s}
        spec:
          components:
            spread: {type: fixed, params: {base_spread: 0.1}}
          min_spread: 0.10
        """
    )
    assert result.ok, messages(result)
    spec = result.resources[0].spec
    assert isinstance(spec, StrategySpec)
    assert spec.components.spread.params.base_spread == Decimal("0.1")
    assert spec.min_spread + Decimal("0.2") == Decimal("0.3")
    assert result.resources[0].spec_data["min_spread"] == "0.1"  # 0.10 normalised: diff never shows 0.10 vs 0.1


def test_same_meaning_gives_the_same_digest(admit_text: AdmitText) -> None:
    a = admit_text("apiVersion: mm/v1alpha1\nkind: Strategy\nmetadata: {name: s}\nspec: {min_spread: 0.010}\n")
    b = admit_text(
        "apiVersion: mm/v1alpha1\nkind: Strategy\nmetadata: {name: s}\n"
        "spec: {min_spread: 0.01, max_inventory: 1000.00, components: {skew: {type: linear}}}\n"
    )
    c = admit_text("apiVersion: mm/v1alpha1\nkind: Strategy\nmetadata: {name: s}\nspec: {min_spread: 0.02}\n")
    assert a.resources[0].digest == b.resources[0].digest != c.resources[0].digest


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "apiVersion: mm/v1alpha1\nkind: Widget\nmetadata: {name: w}\nspec: {}\n",
            "bundle.yaml:2:1: kind: unknown kind 'Widget'; known kinds: Exchange, Strategy",
        ),
        (
            "apiVersion: mm/v2\nkind: Market\nmetadata: {name: w}\nspec: {}\n",
            "bundle.yaml:1:1: apiVersion: unknown apiVersion 'mm/v2'; supported: mm/v1alpha1",
        ),
        ("kind: Market\nmetadata: {name: w}\nspec: {}\n", "bundle.yaml:1:1: missing apiVersion"),
        ("apiVersion: mm/v1alpha1\nkind: Market\nspec: {}\n", "missing metadata with a name"),
        ("apiVersion: mm/v1alpha1\nkind: Market\nmetadata: {name: w}\n", "missing spec"),
        ("- just\n- a list\n", "a resource must be a mapping"),
        (
            "apiVersion: mm/v1alpha1\nkind: Strategy\nmetadata: {name: Bad_Name}\nspec: {}\n",
            "metadata.name: must be lower-case letters, digits",
        ),
    ],
)
def test_envelope_errors(admit_text: AdmitText, text: str, expected: str) -> None:
    result = admit_text(text)
    assert not result.ok and not result.resources
    assert any(expected in m for m in messages(result)), messages(result)


def test_missing_required_field_points_at_the_enclosing_mapping(admit_text: AdmitText) -> None:
    result = admit_text(
        """\
        apiVersion: mm/v1alpha1
        kind: Market
        metadata: {name: m}
        spec:
          ticker: T
          strategy_ref: s
          risk_policy_ref: r
        """
    )
    assert messages(result) == ["bundle.yaml:4:1: Market/m: spec.exchange_ref: required field is missing"]


def test_wrong_types_are_named_without_echoing_values(admit_text: AdmitText) -> None:
    result = admit_text(
        """\
        apiVersion: mm/v1alpha1
        kind: Strategy
        metadata: {name: s}
        spec:
          max_inventory: lots
          price_bounds: [0.1, 0.9]
          components:
            volatility: {type: ewma, params: {min_observations: 2.5}}
        """
    )
    got = messages(result)
    assert any(m.startswith("bundle.yaml:5:3: Strategy/s: spec.max_inventory: ") for m in got), got
    assert any("spec.price_bounds: must be a mapping, got a list" in m for m in got), got
    assert any("spec.components.volatility.params.min_observations:" in m for m in got), got


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("max_inventory", "0", "must be greater than 0"),
        ("max_inventory", "-5", "greater than 0"),
        ("max_inventory", "0.001", "must be a multiple of 0.01"),
        ("min_spread", "0", "greater than 0"),
    ],
)
def test_negative_or_zero_sizes_are_rejected(admit_text: AdmitText, field: str, value: str, message: str) -> None:
    result = admit_text(f"apiVersion: mm/v1alpha1\nkind: Strategy\nmetadata: {{name: s}}\nspec: {{{field}: {value}}}\n")
    assert any(f"spec.{field}: " in m and message in m for m in messages(result)), messages(result)


@pytest.mark.parametrize("bound", ["0", "1", "1.5", "-0.2"])
def test_prices_outside_the_open_unit_interval_are_rejected(admit_text: AdmitText, bound: str) -> None:
    result = admit_text(
        f"apiVersion: mm/v1alpha1\nkind: Strategy\nmetadata: {{name: s}}\nspec:\n  price_bounds: {{min: {bound}}}\n"
    )
    assert any("spec.price_bounds.min:" in m for m in messages(result)), messages(result)


def test_unknown_component_type_lists_the_known_ones(admit_text: AdmitText) -> None:
    result = admit_text(
        """\
        apiVersion: mm/v1alpha1
        kind: Strategy
        metadata: {name: s}
        spec:
          components:
            skew: {type: quadratic}
        """
    )
    assert messages(result) == [
        "bundle.yaml:6:5: Strategy/s: spec.components.skew: unknown type 'quadratic'; "
        "expected one of 'linear', 'exponential', 'adaptive', 'none'"
    ]


def test_misspelt_field_gets_a_suggestion(admit_text: AdmitText) -> None:
    result = admit_text(
        """\
        apiVersion: mm/v1alpha1
        kind: Strategy
        metadata: {name: s}
        spec:
          components:
            volatility: {type: ewma, params: {alhpa: 0.9}}
        """
    )
    assert messages(result) == [
        "bundle.yaml:6:39: Strategy/s: spec.components.volatility.params.alhpa: unknown field 'alhpa'; "
        "did you mean 'alpha'?"
    ]


def test_unknown_rule_in_rule_order_and_rules(admit_text: AdmitText) -> None:
    result = admit_text(
        """\
        apiVersion: mm/v1alpha1
        kind: RiskPolicy
        metadata: {name: r}
        spec:
          rule_order: [stale_data, max_invntory]
        """
    )
    got = messages(result)
    assert len(got) == 1
    assert got[0].startswith("bundle.yaml:5:28: RiskPolicy/r: spec.rule_order[1]: unknown rule 'max_invntory'")
    result = admit_text(
        "apiVersion: mm/v1alpha1\nkind: RiskPolicy\nmetadata: {name: r}\nspec:\n  rules: {max_invntory: {}}\n"
    )
    assert "unknown field 'max_invntory'; did you mean 'max_inventory'?" in messages(result)[0]


def test_duplicate_names_in_one_apply(admit_text: AdmitText) -> None:
    result = admit_text(BUNDLE + "---\napiVersion: mm/v1alpha1\nkind: Strategy\nmetadata: {name: s1}\nspec: {}\n")
    assert messages(result) == [
        "bundle.yaml:30:12: Strategy/s1: metadata.name: duplicate resource: Strategy/s1 is also declared at "
        "bundle.yaml:10:12"
    ]


def test_references_to_missing_objects_are_named(admit_text: AdmitText) -> None:
    text = BUNDLE.replace("strategy_ref: s1", "strategy_ref: nope").replace("exchange_ref: sim", "exchange_ref: gone")
    got = messages(admit_text(text))
    assert (
        "bundle.yaml:23:3: Market/m1: spec.exchange_ref: Exchange/gone not found: declare it in the same apply "
        "or create it first" in got
    )
    assert any("spec.strategy_ref: Strategy/nope not found" in m for m in got)


def test_references_resolve_against_existing_resources() -> None:
    class Store:
        def get_spec(self, kind: str, name: str) -> dict[str, object] | None:
            return {"allow_live": False} if (kind, name) == ("Exchange", "prod") else {} if name in ("s", "r") else None

    text = (
        "apiVersion: mm/v1alpha1\nkind: Market\nmetadata: {name: m}\n"
        "spec: {exchange_ref: prod, ticker: T, strategy_ref: s, risk_policy_ref: r, execution: live}\n"
    )
    result = admit(load_text(text, "m.yaml"), existing=Store())
    assert [i.message for i in result.issues] == [
        "live execution needs Exchange/prod to set allow_live: true (paper is the default)"
    ]


def test_a_broken_target_is_not_also_reported_missing(admit_text: AdmitText) -> None:
    text = BUNDLE.replace("spec:\n  preset: baseline", "spec:\n  preset: wild")
    got = messages(admit_text(text))
    assert len(got) == 1 and "spec.preset" in got[0], got


def test_live_execution_needs_the_exchange_gate(admit_text: AdmitText) -> None:
    text = BUNDLE.replace("allow_live: true", "allow_live: false").replace(
        "risk_policy_ref: r1", "risk_policy_ref: r1\n  execution: live"
    )
    assert messages(admit_text(text)) == [
        "bundle.yaml:27:3: Market/m1: spec.execution: live execution needs Exchange/sim to set allow_live: true "
        "(paper is the default)"
    ]


def test_overrides_are_validated_merged_over_their_target(admit_text: AdmitText) -> None:
    text = BUNDLE.replace(
        "risk_policy_ref: r1",
        "risk_policy_ref: r1\n  overrides:\n    risk:\n      rules:\n        max_inventory: {limit: 5000}\n"
        "    strategy:\n      components:\n        spread: {params: {base_spread: 0.05}}",
    )
    got = messages(admit_text(text))
    assert got == [
        "bundle.yaml:30:25: Market/m1: spec.overrides.risk.rules.max_inventory.limit: 5000 exceeds the code-level "
        "hard limit of 1000 contracts (RCR-101); hard limits cannot be raised by configuration (after merging the "
        "override)"
    ]


def test_only_one_trading_node(admit_text: AdmitText) -> None:
    text = (
        "apiVersion: mm/v1alpha1\nkind: TradingNode\nmetadata: {name: a}\nspec: {}\n---\n"
        "apiVersion: mm/v1alpha1\nkind: TradingNode\nmetadata: {name: b}\nspec: {}\n"
    )
    result = admit_text(text)
    assert [r.key for r in result.resources] == ["TradingNode/a"]
    assert "only one TradingNode may exist; TradingNode/a is declared at bundle.yaml:1:1" in messages(result)[0]


def test_all_errors_are_reported_at_once(admit_text: AdmitText) -> None:
    text = (
        "apiVersion: mm/v1alpha1\nkind: Widget\nmetadata: {name: a}\nspec: {}\n---\n"
        "apiVersion: mm/v1alpha1\nkind: Strategy\nmetadata: {name: s}\nspec: {max_inventory: 0, min_spread: 0}\n"
    )
    assert len(admit_text(text).issues) == 3


def test_status_and_system_metadata_are_ignored_with_a_warning(admit_text: AdmitText) -> None:
    result = admit_text(
        "apiVersion: mm/v1alpha1\nkind: Strategy\nmetadata: {name: s, generation: 7}\nspec: {}\n"
        "status: {observed_generation: 3}\n"
    )
    assert result.ok
    assert [w.message for w in result.warnings] == [
        "status is written by the controller; the given status was ignored",
        "read-only field set by the store; ignored",
    ]
    assert result.resources[0].metadata.generation is None


def test_inline_secrets_are_refused_without_echoing_them(admit_text: AdmitText) -> None:
    result = admit_text(
        """\
        apiVersion: mm/v1alpha1
        kind: Exchange
        metadata: {name: k}
        spec:
          venue: kalshi
          environment: demo
          api_key: 0b5e-super-secret
          private_key_file: "-----BEGIN RSA PRIVATE KEY-----\\nMIIEow\\n-----END RSA PRIVATE KEY-----"
        """
    )
    got = messages(result)
    assert len(got) == 2 and not result.resources
    assert got[0].startswith("bundle.yaml:7:3: Exchange/k: spec.api_key: credentials must not be written into a spec")
    assert "PEM block" in got[1]
    assert not any("super-secret" in m or "MIIEow" in m for m in got)


def test_admit_or_raise_carries_every_issue() -> None:
    docs = load_text(
        "apiVersion: mm/v1alpha1\nkind: Strategy\nmetadata: {name: s}\nspec: {max_inventory: 0}\n", "x.yaml"
    )
    with pytest.raises(AdmissionError) as info:
        admit_or_raise(docs)
    assert len(info.value.issues) == 1
    assert "1 problem found" in str(info.value)
