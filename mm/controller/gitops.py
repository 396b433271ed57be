"""Git-ops by file watch (FR-1001): a directory (or files) of resources is the desired state of the node.

:class:`GitOpsSource` watches its paths (``watchfiles``, debounced; editors that save by writing a temporary file
and renaming it are seen as one batch) and treats *any* batch, and SIGHUP, as a full **rescan**:

1. the content digest — sha256 over the sorted spec file paths and their bytes — is compared with the last one
   seen; unchanged (a ``touch``, an editor's swap file, a ``.git`` change) → nothing happens;
2. no spec file at all, or no document in them → the source is ``Stalled`` and **nothing is deleted**: an
   emptied checkout must never prune the node to nothing;
3. every file is loaded and the whole bundle admitted (the same admission as ``mmctl validate``; references may
   point at resources applied by someone else). Any problem → event ``GitOps/Rejected`` (redacted), the source is
   ``Stalled`` with the error, and *nothing* of the bundle is applied: the node keeps trading the last good
   revision;
4. the admitted resources are applied through :meth:`NodeRuntime.apply` with the revision ``source``
   ``git:<short sha>`` when the first path is inside a git checkout (``git:<sha>-dirty`` when the watched files
   differ from that commit), else ``file:<path>``;
5. pruning: resources this source applied earlier that are no longer declared are deleted from the
   :class:`~mm.controller.resources.ResourceStore` — only those: a resource applied by someone else (``mmctl
   apply``, a MarketSelector's Markets) is never touched, nor one someone else re-applied since. A Strategy,
   RiskPolicy or Exchange still referenced by a remaining resource is kept (``PruneDeferred``) until it is not.

``source_status`` (phase ``Ready``/``Stalled``, the last applied digest and commit, the last error, when) is what
``mmctl status`` shows; it is also written into the TradingNode's status under ``gitops`` when there is one, and
:func:`source_statuses` lists every source of a runtime.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from watchfiles import DefaultFilter, awatch

from mm.controller.operations import MANAGER, OVERRIDDEN
from mm.controller.resources import key_of, split_key
from mm.controller.runtime import NodeRuntime
from mm.observability.redaction import redact_text
from mm.specs.admission import AdmittedResource, admit
from mm.specs.yaml_loader import SPEC_SUFFIXES, SourceDocument, load_sources_collect

__all__ = ["FileReloader", "GitOpsSource", "ScanResult", "content_digest", "source_statuses", "spec_files"]

_logger = logging.getLogger(__name__)

SUBJECT = "GitOps"
GIT_TIMEOUT_S = 2.0
DEBOUNCE_MS = 200
"""watchfiles groups changes for at most this long; a single save is seen after ``STEP_MS`` of quiet."""
STEP_MS = 50
RETRY_S = 1.0
"""A watched path that does not exist (yet, or any more) is looked for again this often."""

# Prune order: what references others goes first, so nothing is left pointing at a deleted resource.
_PRUNE_ORDER = {"Market": 0, "MarketSelector": 1, "Strategy": 2, "RiskPolicy": 2, "Exchange": 3, "TradingNode": 4}

_REFERENCES = (("Exchange", "exchange_ref"), ("Strategy", "strategy_ref"), ("RiskPolicy", "risk_policy_ref"))

_SOURCES: weakref.WeakKeyDictionary[NodeRuntime, list[GitOpsSource]] = weakref.WeakKeyDictionary()


def source_statuses(runtime: NodeRuntime) -> list[dict[str, Any]]:
    """The ``source_status`` of every git-ops source attached to ``runtime`` (for ``/status``)."""
    return [dict(source.source_status) for source in _SOURCES.get(runtime, [])]


def spec_files(paths: Sequence[str]) -> list[Path]:
    """The files a rescan reads: each file path as given, and every non-hidden ``*.yaml``/``*.yml``/``*.json``
    below each directory (hidden directories skipped) — the files :func:`mm.specs.yaml_loader.load_sources`
    reads."""
    found: list[Path] = []
    for raw in paths:
        root = Path(raw)
        if root.is_file():
            found.append(root)
            continue
        if not root.is_dir():
            continue
        for directory, subdirectories, files in os.walk(root):
            subdirectories[:] = [name for name in subdirectories if not name.startswith(".")]
            found.extend(
                Path(directory, name)
                for name in files
                if not name.startswith(".") and name.lower().endswith(SPEC_SUFFIXES)
            )
    return sorted(set(found))


def content_digest(files: Sequence[Path]) -> str:
    """sha256 over the sorted file paths and their bytes (an unreadable file counts by its error)."""
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(str(path).encode())
        digest.update(b"\0")
        try:
            data = path.read_bytes()
        except OSError as exc:
            data = f"<unreadable: {exc.strerror or exc}>".encode()
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class ScanResult:
    """What one rescan did. ``outcome``: ``unchanged``, ``applied``, ``rejected`` or ``stalled``."""

    outcome: str
    digest: str
    changed: tuple[str, ...] = ()
    pruned: tuple[str, ...] = ()
    error: str | None = None


@dataclass(slots=True)
class _GitInfo:
    commit: str | None = None
    dirty: bool = False


@dataclass
class _Lookup:
    """Admission's view of what already exists: the store, minus what this rescan would prune."""

    runtime: NodeRuntime
    hidden: set[str] = field(default_factory=set)

    def get_spec(self, kind: str, name: str) -> Mapping[str, Any] | None:
        if key_of(kind, name) in self.hidden:
            return None
        stored = self.runtime.resources.get(kind, name)
        return stored.spec_data if stored is not None else None


class GitOpsSource:
    """The resources declared in ``paths`` (files or directories) kept applied to ``runtime`` (see the module
    docstring). :meth:`watch` runs until ``stop`` is set; :meth:`rescan` is one pass (SIGHUP, tests)."""

    def __init__(
        self,
        runtime: NodeRuntime,
        paths: Sequence[str],
        *,
        debounce_ms: int = DEBOUNCE_MS,
        step_ms: int = STEP_MS,
    ) -> None:
        self.runtime = runtime
        self.paths = [p for p in paths if p != "-"]
        self.debounce_ms = debounce_ms
        self.step_ms = step_ms
        self.managed: dict[str, int] = {}
        """Key → the revision number current when this source last applied it (what it may prune)."""
        self.applied: list[list[str]] = []
        """The changed keys of every successful rescan that changed something (newest last)."""
        self.refused: list[str] = []
        """The (redacted) error of every rejected or stalled rescan (newest last)."""
        self.pruned: list[str] = []
        self.rescans = 0
        """Rescans that read the files (those skipped for an unchanged digest are not counted)."""
        self.batches = 0
        """Batches of file changes handled by :meth:`watch` (each one rescanned, usually skipped)."""
        self.last_result: ScanResult | None = None
        self.labels: set[str] = set()
        """Every revision ``source`` this source has written (a resource whose last revision is not one of them
        was changed by someone else)."""
        self._earlier_labels: set[str] = set()
        self._adopted = False
        self._last_digest: str | None = None
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[ScanResult]] = set()
        self.suspended: str | None = None
        """Why applying is suspended (a rollback of something this source manages), or None."""
        self.source_status: dict[str, Any] = {
            "source": None,
            "paths": list(self.paths),
            "phase": "Pending",
            "reason": "NotScanned",
            "last_applied_digest": None,
            "last_seen_digest": None,
            "last_error": None,
            "last_commit": None,
            "applied_at_us": None,
            "managed": [],
            "conflicts": {},
        }
        _SOURCES.setdefault(runtime, []).append(self)

    # ------------------------------------------------------------------ revision source

    async def _git(self, directory: Path, *args: str) -> str | None:
        try:
            process = await asyncio.create_subprocess_exec(
                "git",
                "-C",
                str(directory),
                *args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
            )
        except OSError:  # git is not installed
            return None
        try:
            out, _ = await asyncio.wait_for(process.communicate(), GIT_TIMEOUT_S)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            with contextlib.suppress(Exception):
                await process.wait()
            return None
        if process.returncode != 0:
            return None
        return out.decode("utf-8", "replace").strip()

    def _anchor(self) -> Path:
        first = Path(self.paths[0]) if self.paths else Path(".")
        directory = first if first.is_dir() else first.parent
        return directory.resolve() if directory.exists() else directory

    async def git_info(self) -> _GitInfo:
        """The short commit of HEAD when the first path is inside a git checkout, and whether the watched files
        differ from it (tolerates git missing, not a checkout, or a checkout without commits)."""
        directory = self._anchor()
        commit = await self._git(directory, "rev-parse", "--short", "HEAD")
        if not commit:
            return _GitInfo()
        targets = [str(Path(p).resolve()) for p in self.paths if Path(p).exists()]
        status = await self._git(directory, "status", "--porcelain", "--", *targets) if targets else ""
        return _GitInfo(commit, bool(status))

    async def source_label(self) -> str:
        """The revision ``source``: ``git:<short sha>`` (``-dirty`` when the files differ from it) or
        ``file:<path>``."""
        info = await self.git_info()
        return self._label(info)

    def _label(self, info: _GitInfo) -> str:
        if info.commit:
            label = f"git:{info.commit}{'-dirty' if info.dirty else ''}"
        else:
            label = f"file:{self._anchor() if len(self.paths) != 1 else Path(self.paths[0]).resolve()}"
        self.labels.add(label)
        return label

    # ------------------------------------------------------------------ status

    def _set_status(self, **fields: Any) -> None:
        self.source_status.update(fields)
        self.source_status["managed"] = sorted(self.managed)
        for node in self.runtime.resources.all("TradingNode"):
            self.runtime.resources.set_status("TradingNode", node.name, gitops=dict(self.source_status))

    def _stall(self, digest: str, reason: str, message: str, *, event: str, commit: str | None) -> ScanResult:
        text = redact_text(message)
        self.refused.append(text)
        self._set_status(phase="Stalled", reason=reason, last_error=text, last_seen_digest=digest, last_commit=commit)
        self.runtime.node.event(SUBJECT, event, text, warning=True)
        return ScanResult("rejected" if event == "Rejected" else "stalled", digest, error=text)

    # ------------------------------------------------------------------ the rescan

    def adopt(self, resources: Sequence[AdmittedResource]) -> None:
        """Record ``resources`` (applied at start-up with one of :attr:`labels`) as this source's."""
        for resource in resources:
            self.managed[resource.key] = self._revision(resource.key)

    def _revision(self, key: str) -> int:
        kind, name = split_key(key)
        history = self.runtime.resources.history(kind, name)
        return history[-1].revision if history else 0

    def _is_ours(self, manager: str) -> bool:
        """A manager name this source writes: one of this run's labels, or (adopted at the first scan) an earlier
        run's ``git:<sha>`` whose commit is in this checkout / the same ``file:<path>``."""
        return manager in self.labels or manager in self._earlier_labels

    def _manager(self, key: str) -> str:
        """Who manages ``key``: its owner, its ``mm/managed-by`` annotation, else the source of its last revision."""
        kind, name = split_key(key)
        stored = self.runtime.resources.get(kind, name)
        if stored is None:
            return ""
        if stored.owner:
            return stored.owner
        manager = stored.annotations.get(MANAGER)
        if manager:
            return manager
        history = self.runtime.resources.history(kind, name)
        return history[-1].source if history else ""

    def _still_ours(self, key: str) -> bool:
        """``key`` still exists and nobody else has taken it over since this source applied it."""
        kind, name = split_key(key)
        stored = self.runtime.resources.get(kind, name)
        if stored is None or stored.annotations.get(OVERRIDDEN):
            return False
        return self._is_ours(self._manager(key))

    def _yields_to(self, resource: AdmittedResource) -> str | None:
        """Who this source must not overwrite on ``resource`` (None: apply it): a selector that owns it, a forced
        override (``mm/overridden-by``), another git-ops source. ``cli``/``api`` objects are taken over, as
        ``mmctl apply`` takes over ``cli`` objects."""
        stored = self.runtime.resources.get(resource.kind, resource.name)
        if stored is None:
            return None
        if stored.owner:
            return stored.owner
        overridden = stored.annotations.get(OVERRIDDEN)
        if overridden:
            return f"{overridden} (forced override)"
        manager = stored.annotations.get(MANAGER, "")
        if manager.startswith(("git:", "file:", "MarketSelector/")) and not self._is_ours(manager):
            return manager
        return None

    def _manager_after(self, stored: Any, label: str) -> str:
        """The manager of an object this scan applied without changing it: kept when it is already ours (the
        revision that wrote it is the truth), else this source's label."""
        history = self.runtime.resources.history(stored.kind, stored.name)
        previous = history[-1].source if history else ""
        return previous if self._is_ours(previous) else label

    async def _adopt_earlier(self, info: _GitInfo, declared: set[str]) -> None:
        """First scan of this run: resources an earlier run of this source applied (restored from the store with
        their manager) are this source's — those no longer declared are pruned (a file deleted while the node was
        down) and the declared ones are not conflicts."""
        if self._adopted:
            return
        self._adopted = True
        anchor = self._anchor()
        verdicts: dict[str, bool] = {}
        for stored in self.runtime.resources.all():
            manager = stored.annotations.get(MANAGER, "")
            if stored.owner or not manager.startswith(("git:", "file:")):
                continue
            if manager not in verdicts:
                if manager in self.labels:
                    verdicts[manager] = True
                elif manager.startswith("git:") and info.commit:
                    sha = manager.removeprefix("git:").removesuffix("-dirty")
                    verdicts[manager] = await self._git(anchor, "cat-file", "-e", f"{sha}^{{commit}}") is not None
                else:
                    verdicts[manager] = False
            if verdicts[manager]:
                self._earlier_labels.add(manager)
                if stored.key not in declared:
                    self.managed.setdefault(stored.key, self._revision(stored.key))

    def request_rescan(self, trigger: str = "signal", *, force: bool = True) -> None:
        """Schedule a rescan from synchronous code (a signal handler)."""
        task = asyncio.get_running_loop().create_task(self.rescan(trigger, force=force), name=f"gitops-{trigger}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def suspend(self, reason: str) -> None:
        """Stop applying the source (``mmctl rollback --suspend-source``: otherwise the watcher would re-apply
        what was rolled back). Resumed by :meth:`resume` or a restart."""
        self.suspended = reason
        self._set_status(phase="Suspended", reason="Suspended", last_error=reason)
        self.runtime.node.event("GitOps", "Suspended", reason, warning=True)

    def resume(self) -> None:
        self.suspended = None
        self._set_status(phase="Ready", reason="Resumed")
        self.request_rescan("resume")

    async def rescan(self, trigger: str = "file_watch", *, force: bool = False) -> ScanResult:
        """One pass over the paths (see the module docstring); ``force`` ignores an unchanged digest."""
        if self.suspended is not None:
            return ScanResult("unchanged", self._last_digest or "", error=f"suspended: {self.suspended}")
        async with self._lock:
            try:
                self.last_result = await self._rescan(trigger, force=force)
                return self.last_result
            except Exception as exc:  # a failure of the apply itself (a bug): report it, keep watching
                _logger.exception("git-ops rescan failed")
                return self._stall(
                    self._last_digest or "",
                    "ApplyFailed",
                    f"{trigger}: {type(exc).__name__}: {exc}",
                    event="Rejected",
                    commit=None,
                )

    async def _rescan(self, trigger: str, *, force: bool) -> ScanResult:
        files = spec_files(self.paths)
        digest = content_digest(files)
        if digest == self._last_digest and not force:
            return ScanResult("unchanged", digest)
        self._last_digest = digest
        self.rescans += 1
        info = await self.git_info()
        label = self._label(info)
        self.source_status["source"] = label
        where = ", ".join(self.paths)
        if not files:
            return self._stall(
                digest,
                "Empty",
                f"{trigger}: no resource files in {where}: refusing to prune everything; nothing was changed",
                event="Stalled",
                commit=info.commit,
            )
        documents, load_issues = load_sources_collect([str(f) for f in files])
        if load_issues:
            count = len(load_issues)
            lines = "\n".join(f"  {issue}" for issue in load_issues)
            return self._stall(
                digest,
                "Unparsable",
                f"{trigger}: {count} file{'s' if count != 1 else ''} could not be read; nothing was applied, "
                f"nothing deleted:\n{lines}",
                event="Rejected",
                commit=info.commit,
            )
        if not documents:
            return self._stall(
                digest, "Empty", f"{trigger}: no resources in {where}; nothing deleted", event="Stalled", commit=None
            )
        declared = self._declared_keys(documents)
        lookup = _Lookup(self.runtime, hidden={k for k in self.managed if k not in declared})
        result = admit(documents, lookup)
        if result.issues:
            count = len(result.issues)
            lines = "\n".join(f"  {issue}" for issue in result.issues)
            return self._stall(
                digest,
                "Rejected",
                f"{trigger}: {count} problem{'s' if count != 1 else ''} found; nothing was applied, the running "
                f"configuration is unchanged:\n{lines}",
                event="Rejected",
                commit=info.commit,
            )
        await self._adopt_earlier(info, declared)
        admitted: list[AdmittedResource] = []
        conflicts: dict[str, str] = {}
        for resource in result.resources:
            holder = self._yields_to(resource)
            if holder is None:
                admitted.append(resource)
            else:
                conflicts[resource.key] = holder
                self.managed.pop(resource.key, None)
        changed = self.runtime.apply(admitted, source=label)
        for resource in admitted:
            stored = self.runtime.resources.get(resource.kind, resource.name)
            if stored is not None:
                stored.annotations[MANAGER] = label if resource.key in changed else self._manager_after(stored, label)
            self.managed[resource.key] = self._revision(resource.key)
        pruned, deferred = self._prune({r.key for r in result.resources})
        if conflicts and conflicts != self.source_status.get("conflicts"):
            self.runtime.node.event(
                SUBJECT,
                "Conflict",
                "not applied, managed elsewhere: " + ", ".join(f"{k} ({v})" for k, v in sorted(conflicts.items())),
                warning=True,
            )
        self.source_status["conflicts"] = conflicts
        if changed:
            self.applied.append(changed)
        if changed or pruned:
            parts = [f"{trigger} ({label})"]
            if changed:
                parts.append(f"applied {', '.join(changed)}")
            if pruned:
                parts.append(f"pruned {', '.join(pruned)}")
            self.runtime.node.event(SUBJECT, "Applied", "; ".join(parts))
        if deferred:
            self.runtime.node.event(
                SUBJECT,
                "PruneDeferred",
                f"kept {', '.join(deferred)}: still referenced by resources this source does not manage",
                warning=True,
            )
        self._set_status(
            phase="Ready",
            reason="Applied",
            last_applied_digest=digest,
            last_seen_digest=digest,
            last_error=None,
            last_commit=info.commit,
            applied_at_us=self.runtime.node.wall.now_us(),
        )
        return ScanResult("applied", digest, tuple(changed), tuple(pruned))

    @staticmethod
    def _declared_keys(documents: Sequence[SourceDocument]) -> set[str]:
        """Keys the documents declare, valid or not (a broken file must not make its resource look removed)."""
        found: set[str] = set()
        for doc in documents:
            data = doc.data
            if not isinstance(data, Mapping):
                continue
            kind, meta = data.get("kind"), data.get("metadata")
            name = meta.get("name") if isinstance(meta, Mapping) else None
            if isinstance(kind, str) and isinstance(name, str):
                found.add(key_of(kind, name))
        return found

    def _referenced(self) -> set[str]:
        """Keys referenced (``exchange_ref``, ``strategy_ref``, ``risk_policy_ref``, also in a selector's template)
        by any resource in the store."""
        refs: set[str] = set()
        for stored in self.runtime.resources.all():
            for holder in (stored.spec, getattr(stored.spec, "template", None)):
                if holder is None:
                    continue
                for kind, attr in _REFERENCES:
                    value = getattr(holder, attr, None)
                    if isinstance(value, str):
                        refs.add(key_of(kind, value))
        return refs

    def _prune(self, declared: set[str]) -> tuple[list[str], list[str]]:
        """Delete what this source applied and no longer declares; Markets and selectors first, so a Strategy,
        RiskPolicy or Exchange is only deleted when nothing left references it (else deferred)."""
        gone = sorted(
            (k for k in self.managed if k not in declared), key=lambda k: (_PRUNE_ORDER.get(split_key(k)[0], 5), k)
        )
        pruned: list[str] = []
        deferred: list[str] = []
        for key in gone:
            if not self._still_ours(key):
                self.managed.pop(key, None)  # someone else changed (or deleted) it since: no longer ours
                continue
            if key in self._referenced():
                deferred.append(key)
                continue
            kind, name = split_key(key)
            self.runtime.resources.delete(kind, name)
            self.managed.pop(key, None)
            pruned.append(key)
        self.pruned.extend(pruned)
        return pruned, deferred

    # ------------------------------------------------------------------ watching

    async def watch(self, stop: asyncio.Event) -> None:
        """Rescan on every batch of file changes until ``stop`` is set (a rescan first, to start from the truth)."""
        directories = [p for p in self.paths if not Path(p).is_file()]
        files = [p for p in self.paths if Path(p).is_file()]
        groups: list[tuple[list[str], bool]] = []
        if directories:
            groups.append((directories, True))
        if files:
            # A file saved by rename is a new inode: watch its directory (not recursively), filter to the file.
            groups.append((files, False))
        await self.rescan("watch_start")  # changes saved before the watch began (skipped when unchanged)
        await asyncio.gather(*(self._watch_group(paths, recursive, stop) for paths, recursive in groups))

    async def _watch_group(self, paths: list[str], recursive: bool, stop: asyncio.Event) -> None:
        wanted = {str(Path(p).resolve()) for p in paths}
        targets = sorted({str(Path(p).resolve() if recursive else Path(p).resolve().parent) for p in paths})
        default = DefaultFilter()

        def relevant(change: Any, path: str) -> bool:
            if not default(change, path):
                return False
            return recursive or path in wanted

        while not stop.is_set():
            existing = [t for t in targets if Path(t).exists()]
            if not existing:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), RETRY_S)
                await self.rescan("file_watch")  # reports Stalled while the paths are missing
                continue
            try:
                async for _changes in awatch(
                    *existing,
                    watch_filter=relevant,
                    debounce=self.debounce_ms,
                    step=self.step_ms,
                    stop_event=stop,
                    recursive=recursive,
                    ignore_permission_denied=True,
                ):
                    await self.rescan("file_watch")
                    self.batches += 1
            except (OSError, RuntimeError) as exc:  # a watched directory vanished: look for it again
                _logger.warning("git-ops watch of %s stopped (%s); retrying", ", ".join(existing), exc)
            if not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), RETRY_S)
                await self.rescan("file_watch")


FileReloader = GitOpsSource
"""The former name (``mmctl run``'s file watch before git-ops grew out of it)."""
