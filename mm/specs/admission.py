"""The one admission function: every way a resource enters the system goes through :func:`admit`.

``mmctl validate``, ``apply --dry-run``, the control API and the file watcher all call it, so they agree
on what is valid. It runs, for every document, and reports *all* problems at once:

1. envelope — a mapping with ``apiVersion: mm/v1alpha1``, a known ``kind`` and ``metadata.name``;
2. credentials — no inline secrets (a secret in a spec would end up in revisions, diffs and logs);
3. model validation — field types, ranges, unknown fields, component types (pydantic models);
4. business rules — each kind's ``check()`` (hard limits, critical rules, consistency);
5. across documents — duplicate names, a single TradingNode, references to other resources, the
   live-trading gate, and per-market overrides validated merged over what they override.

Admitted resources carry their materialised spec (every default written out), its canonical JSON
digest and where they came from.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError

from mm.specs.canonical import digest
from mm.specs.credentials import find_inline_credentials
from mm.specs.envelope import API_VERSION, KINDS, KindInfo, Metadata
from mm.specs.error_paths import Path, data_path, dotted, friendly_message
from mm.specs.errors import AdmissionError, SourceLocation, SpecIssue
from mm.specs.market import MarketSelectorSpec, MarketSpec, MarketTemplate
from mm.specs.risk import RiskPolicySpec
from mm.specs.strategy import StrategySpec, merge_components
from mm.specs.types import FieldProblem
from mm.specs.yaml_loader import SourceDocument


class ResourceLookup(Protocol):
    """Resources that already exist (the store): their materialised spec data, or None."""

    def get_spec(self, kind: str, name: str) -> Mapping[str, Any] | None: ...


@dataclass(frozen=True, slots=True)
class AdmittedResource:
    kind: str
    name: str
    metadata: Metadata
    spec: BaseModel
    spec_data: dict[str, Any]
    """The materialised spec in canonical JSON form (decimals as normalised strings)."""
    digest: str
    location: SourceLocation

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.name}"


@dataclass(frozen=True, slots=True)
class AdmissionResult:
    resources: tuple[AdmittedResource, ...]
    issues: tuple[SpecIssue, ...]
    warnings: tuple[SpecIssue, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.issues

    def raise_for_issues(self) -> tuple[AdmittedResource, ...]:
        if self.issues:
            raise AdmissionError(self.issues)
        return self.resources


@dataclass
class _Context:
    issues: list[SpecIssue] = field(default_factory=list)
    warnings: list[SpecIssue] = field(default_factory=list)
    admitted: dict[tuple[str, str], tuple[AdmittedResource, SourceDocument]] = field(default_factory=dict)
    declared: dict[tuple[str, str], SourceLocation] = field(default_factory=dict)
    """Every (kind, name) seen with a valid envelope, admitted or not (so a broken target is not also 'missing')."""

    def add(self, doc: SourceDocument, path: Path, message: str, resource: str = "", *, warn: bool = False) -> None:
        issue = SpecIssue(doc.locate(path), message, resource, dotted(path))
        (self.warnings if warn else self.issues).append(issue)


SYSTEM_METADATA = ("generation", "uid", "creation_timestamp", "resource_version")


def admit(documents: Iterable[SourceDocument], existing: ResourceLookup | None = None) -> AdmissionResult:
    """Admit a bundle of documents (one apply). Never raises for bad input: problems are in the result."""
    ctx = _Context()
    docs = list(documents)
    for doc in docs:
        _admit_one(doc, ctx)
    _check_bundle(ctx, existing)
    flagged = {issue.resource for issue in ctx.issues}
    resources = tuple(r for r, _ in ctx.admitted.values() if r.key not in flagged)
    return AdmissionResult(resources, tuple(ctx.issues), tuple(ctx.warnings))


def _admit_one(doc: SourceDocument, ctx: _Context) -> None:
    data = doc.data
    if not isinstance(data, Mapping):
        ctx.add(doc, (), "a resource must be a mapping with apiVersion, kind, metadata and spec")
        return
    info = _check_envelope(doc, data, ctx)
    if info is None:
        return
    name = data["metadata"]["name"]
    label = f"{info.kind}/{name}"
    key = (info.kind, name)
    if key in ctx.declared:
        ctx.add(
            doc, ("metadata", "name"), f"duplicate resource: {label} is also declared at {ctx.declared[key]}", label
        )
        return
    ctx.declared[key] = doc.locate(("metadata", "name"))
    clean = dict(data)
    if "status" in clean:
        clean.pop("status")
        ctx.add(doc, ("status",), "status is written by the controller; the given status was ignored", label, warn=True)
    metadata = dict(clean["metadata"])
    for system_field in SYSTEM_METADATA:
        if metadata.pop(system_field, None) is not None:
            ctx.add(doc, ("metadata", system_field), "read-only field set by the store; ignored", label, warn=True)
    clean["metadata"] = metadata
    leaks = find_inline_credentials(clean.get("spec"))
    for path, message in leaks:
        ctx.add(doc, ("spec", *path), message, label)
    if leaks:
        return  # do not validate further: a later message could echo the secret
    try:
        resource = info.model.model_validate(clean)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            path = data_path(clean, error["loc"])
            ctx.add(doc, path, friendly_message(error, info.model, clean, path), label)
        return
    spec: Any = resource.spec  # type: ignore[attr-defined]
    problems: list[FieldProblem] = spec.check() if hasattr(spec, "check") else []
    for path, message in problems:
        ctx.add(doc, ("spec", *path), message, label)
    if problems:
        return
    spec_data = spec.model_dump(mode="json", by_alias=True)
    admitted = AdmittedResource(
        kind=info.kind,
        name=name,
        metadata=resource.metadata,
        spec=spec,
        spec_data=spec_data,
        digest=digest(spec_data),
        location=doc.start,
    )
    ctx.admitted[key] = (admitted, doc)


def _check_envelope(doc: SourceDocument, data: Mapping[str, Any], ctx: _Context) -> KindInfo | None:
    ok = True
    version = data.get("apiVersion")
    if version is None:
        ctx.add(doc, (), f"missing apiVersion (expected {API_VERSION})")
        ok = False
    elif version != API_VERSION:
        ctx.add(doc, ("apiVersion",), f"unknown apiVersion {version!r}; supported: {API_VERSION}")
        ok = False
    kind = data.get("kind")
    info = KINDS.get(kind) if isinstance(kind, str) else None
    if kind is None:
        ctx.add(doc, (), f"missing kind (one of {', '.join(KINDS)})")
        ok = False
    elif info is None:
        ctx.add(doc, ("kind",), f"unknown kind {kind!r}; known kinds: {', '.join(KINDS)}")
        ok = False
    metadata = data.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    label = f"{kind}/{name}" if info is not None and isinstance(name, str) else ""
    if not isinstance(metadata, Mapping):
        ctx.add(doc, ("metadata",) if "metadata" in data else (), "missing metadata with a name", label)
        ok = False
    elif not isinstance(name, str) or not name:
        ctx.add(doc, ("metadata", "name") if "name" in metadata else ("metadata",), "missing metadata.name", label)
        ok = False
    if "spec" not in data:
        ctx.add(doc, (), "missing spec", label)
        ok = False
    return info if ok else None


def _check_bundle(ctx: _Context, existing: ResourceLookup | None) -> None:
    nodes = [(r, d) for (kind, _), (r, d) in ctx.admitted.items() if kind == "TradingNode"]
    for resource, doc in nodes[1:]:
        ctx.add(
            doc,
            ("metadata", "name"),
            f"only one TradingNode may exist; TradingNode/{nodes[0][0].name} is declared at {nodes[0][0].location}",
            resource.key,
        )
    for resource, doc in list(ctx.admitted.values()):
        spec = resource.spec
        if isinstance(spec, MarketSpec | MarketSelectorSpec):
            template: MarketTemplate = spec if isinstance(spec, MarketSpec) else spec.template
            base: Path = ("spec",) if isinstance(spec, MarketSpec) else ("spec", "template")
            _check_market_refs(ctx, existing, resource, doc, spec.exchange_ref, template, base)


def _lookup(
    ctx: _Context, existing: ResourceLookup | None, kind: str, name: str
) -> tuple[bool, Mapping[str, Any] | None]:
    """(declared anywhere, materialised spec data if valid)."""
    if (kind, name) in ctx.admitted:
        return True, ctx.admitted[(kind, name)][0].spec_data
    if (kind, name) in ctx.declared:
        return True, None
    found = existing.get_spec(kind, name) if existing is not None else None
    return found is not None, found


def _check_market_refs(
    ctx: _Context,
    existing: ResourceLookup | None,
    resource: AdmittedResource,
    doc: SourceDocument,
    exchange_ref: str,
    template: MarketTemplate,
    base: Path,
) -> None:
    refs = (
        ("Exchange", exchange_ref, ("spec", "exchange_ref")),
        ("Strategy", template.strategy_ref, (*base, "strategy_ref")),
        ("RiskPolicy", template.risk_policy_ref, (*base, "risk_policy_ref")),
    )
    specs: dict[str, Mapping[str, Any] | None] = {}
    for kind, name, path in refs:
        exists, data = _lookup(ctx, existing, kind, name)
        if not exists:
            ctx.add(
                doc, path, f"{kind}/{name} not found: declare it in the same apply or create it first", resource.key
            )
        specs[kind] = data
    exchange = specs["Exchange"]
    if template.execution == "live" and exchange is not None and not exchange.get("allow_live", False):
        ctx.add(
            doc,
            (*base, "execution"),
            f"live execution needs Exchange/{exchange_ref} to set allow_live: true (paper is the default)",
            resource.key,
        )
    overrides = (
        ("strategy", specs["Strategy"], StrategySpec),
        ("risk", specs["RiskPolicy"], RiskPolicySpec),
    )
    for name, target, model in overrides:
        patch = getattr(template.overrides, name)
        if patch and target is not None:
            _check_override(ctx, doc, resource, (*base, "overrides", name), target, patch, model)


def _check_override(
    ctx: _Context,
    doc: SourceDocument,
    resource: AdmittedResource,
    base: Path,
    target: Mapping[str, Any],
    patch: Mapping[str, Any],
    model: type[StrategySpec] | type[RiskPolicySpec],
) -> None:
    merged = merge_override(model, target, patch)
    try:
        spec = model.model_validate(merged)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            path = data_path(merged, error["loc"])
            message = friendly_message(error, model, merged, path)
            ctx.add(doc, (*base, *path), f"{message} (after merging the override)", resource.key)
        return
    for path, message in spec.check():
        ctx.add(doc, (*base, *path), f"{message} (after merging the override)", resource.key)


def merge_override(model: type[BaseModel], base: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """A Market's override merged over the spec it overrides (the controller uses the same merge).

    Strategy components merge like presets do (a new ``type`` replaces the slot, else params merge);
    everything else merges with :func:`deep_merge`.
    """
    if model is not StrategySpec:
        return deep_merge(base, patch)
    merged = deep_merge(
        {k: v for k, v in base.items() if k != "components"}, {k: v for k, v in patch.items() if k != "components"}
    )
    merged["components"] = merge_components(base.get("components", {}), patch.get("components", {}))
    return merged


def deep_merge(base: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """``patch`` over ``base``: mappings merge key by key, anything else (lists included) replaces."""
    out = copy.deepcopy(dict(base))
    for key, value in patch.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def admit_or_raise(
    documents: Sequence[SourceDocument], existing: ResourceLookup | None = None
) -> tuple[AdmittedResource, ...]:
    """:func:`admit`, raising :class:`AdmissionError` with every issue if any document is invalid."""
    return admit(documents, existing).raise_for_issues()
