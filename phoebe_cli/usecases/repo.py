"""The checkout's desired state as a status report (offline), compared with the cluster, or
validated. The model comes from ``repo.model``; this module turns it into the same report the
cluster view renders, so ``status --repo`` looks like ``status``."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from phoebe_cli.errors import UsageError
from phoebe_cli.flux.kinds import HELM_CHART, HELM_RELEASE, KUSTOMIZATION
from phoebe_cli.flux.objects import DEPENDENCY_NOT_READY, FluxObject, ObjectRef, State
from phoebe_cli.repo.model import BuildState, DeclaredKustomization, ModelOptions, RepoModel, git_root, inventory_id
from phoebe_cli.repo.validate import ERROR, Finding

if TYPE_CHECKING:
    from phoebe_cli.kube.session import Session
    from phoebe_cli.usecases.status import Snapshot, StatusOptions, StatusReport

# usecases.status (the cluster views, asyncio) is imported where it is used: validate never needs it.


@dataclass(frozen=True)
class RepoOptions:
    path: str = ""  # "" : the Git root of the current directory
    path_option: str = ""  # how the user gave the path (for messages): "--repo", or "" for an argument
    roots: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()  # NAME=PATH
    use_cache: bool = True
    allow_remote: bool = False
    cluster: str | None = None  # --cluster: which cluster of a checkout that holds several
    narrow: str | None = None  # --path: only Kustomizations whose spec.path is this directory or below


def checkout_root(path: str, option: str = "") -> Path:
    if path:
        root = Path(path).expanduser()
        if not root.is_dir():
            raise UsageError(f"{option + ' ' if option else ''}{path}: no such directory")
        return root.resolve()
    return git_root(Path.cwd())


def model_options(options: RepoOptions) -> ModelOptions:
    sources: dict[str, Path] = {}
    for entry in options.sources:
        name, sep, directory = entry.partition("=")
        if not sep or not name or not directory:
            raise UsageError(f"--source {entry!r}: use NAME=PATH")
        target = Path(directory).expanduser()
        if not target.is_dir():
            raise UsageError(f"--source {entry!r}: {directory} is not a directory")
        sources[name] = target
    roots = tuple(Path(r) if Path(r).is_absolute() else (Path.cwd() / r) for r in options.roots)
    return ModelOptions(
        roots=roots,
        sources=sources,
        use_cache=options.use_cache,
        allow_remote=options.allow_remote,
        cluster=options.cluster,
        workers=(os.cpu_count() or 2) + 2,  # each build is part Python and I/O, part kustomize
    )


def load(options: RepoOptions) -> RepoModel:
    from phoebe_cli.repo.model import load_model

    model_opts = model_options(options)  # flags first: a usage error needs no checkout
    return load_model(checkout_root(options.path, options.path_option), model_opts)


_STATE_CONDITIONS = {
    BuildState.BUILT: ("True", "Built"),
    # Everything local is known; the remote parts are named in the message (and by validate).
    BuildState.PARTIAL: ("True", "RemoteResourceNotBuilt"),
    BuildState.FAILED: ("False", "BuildFailed"),
    BuildState.NOT_IN_CHECKOUT: ("Unknown", "NotInCheckout"),
}


def _kustomization_status(declared: DeclaredKustomization) -> dict[str, Any]:
    status, reason = _STATE_CONDITIONS[declared.state]
    message = declared.message or f"{len(declared.objects)} objects from {declared.path}"
    entries = [{"id": inventory_id(o, declared.ref.namespace), "v": _version(o)} for o in declared.objects]
    return {
        "conditions": [{"type": "Ready", "status": status, "reason": reason, "message": message}],
        "inventory": {"entries": entries},
        "lastAppliedRevision": declared.path,
    }


def _version(obj: dict[str, Any]) -> str:
    api_version = str(obj.get("apiVersion", ""))
    return api_version.split("/", 1)[1] if "/" in api_version else api_version


def declared_snapshot(model: RepoModel) -> Snapshot:
    """The model as objects with a status that says how their build went (for the renderers)."""
    from phoebe_cli.usecases.status import Snapshot

    objects: dict[ObjectRef, FluxObject] = {}
    for ref, declared in model.objects.items():
        raw = dict(declared.obj)
        meta = dict(raw.get("metadata") or {})
        meta["namespace"] = ref.namespace
        meta.setdefault("generation", 0)
        raw["metadata"] = meta
        if declared.kind is KUSTOMIZATION and ref in model.kustomizations:
            raw["status"] = _kustomization_status(model.kustomizations[ref])
        else:
            where = (
                f"declared by {declared.declared_by}" if declared.declared_by else f"declared in {declared.origin.path}"
            )
            raw["status"] = {
                "conditions": [{"type": "Ready", "status": "True", "reason": "Declared", "message": where}]
            }
            if declared.kind is HELM_RELEASE:
                version = (((raw.get("spec") or {}).get("chart") or {}).get("spec") or {}).get("version")
                if version:
                    raw["status"]["history"] = [{"chartVersion": str(version)}]
        objects[ref] = FluxObject.from_api(declared.kind, raw)
    _block_unsatisfiable(objects)
    context = str(model.root) + (f" at {model.revision}" if model.revision else "")
    return Snapshot(objects=objects, context=context, declared=True)


def _block_unsatisfiable(objects: dict[ObjectRef, FluxObject]) -> None:
    """A dependsOn cycle, or a dependency declared nowhere, keeps Flux from ever reconciling an
    object (DependencyNotReady for ever; ``validate`` reports both as errors); so does a
    dependency whose build fails (it never becomes Ready). Such objects are not ready in the
    checkout's view either, and their tree says why."""
    from phoebe_cli.flux.tree import unsatisfiable

    blocked = unsatisfiable(objects)
    failed = {ref for ref, obj in objects.items() if obj.state is State.FAILED}
    changed = True
    while changed:  # a dependent of a failing build waits, and so do its own dependents
        changed = False
        for ref, obj in objects.items():
            if ref in blocked or ref in failed:
                continue
            bad = next((d for d in obj.depends_on if d in failed or d in blocked), None)
            if bad is not None:
                blocked[ref] = f"dependency '{bad.namespace}/{bad.name}' is not ready"
                changed = True
    for ref, why in blocked.items():
        obj = objects[ref]
        if obj.state is not State.READY:
            continue  # failing for its own reason already (its build)
        raw = dict(obj.raw)
        status = dict(raw.get("status") or {})
        status["conditions"] = [{"type": "Ready", "status": "False", "reason": DEPENDENCY_NOT_READY, "message": why}]
        raw["status"] = status
        objects[ref] = FluxObject.from_api(obj.kind, raw)


def repo_report(model: RepoModel, options: StatusOptions, narrow: str | None = None) -> StatusReport:
    from phoebe_cli.usecases.status import Snapshot, build_report

    snapshot = declared_snapshot(model)
    if narrow:
        kept = narrowed(model, narrow)
        snapshot = Snapshot(
            objects={r: o for r, o in snapshot.objects.items() if r in kept}, context=snapshot.context, declared=True
        )
    return build_report(snapshot, options)


def path_under(path: str, prefix: str) -> bool:
    """Whether a Kustomization's spec.path is the directory ``prefix`` or below it."""
    clean = os.path.normpath(path.strip("/") or ".")
    wanted = os.path.normpath(prefix.strip("/") or ".")
    return wanted in (".", clean) or clean.startswith(wanted + "/")


def narrowed(model: RepoModel, prefix: str) -> set[ObjectRef]:
    """--path: the Kustomizations whose spec.path is ``prefix`` or below it, and what they declare."""
    chosen = {ref for ref, k in model.kustomizations.items() if path_under(k.path, prefix)}
    return chosen | {ref for ref, d in model.objects.items() if d.declared_by in chosen}


# --- compare with the cluster ----------------------------------------------------------------
class Agreement:
    IN_SYNC = "in-sync"
    MISSING = "missing"  # declared, not on the cluster
    ORPHAN = "orphan"  # on the cluster, declared nowhere
    BEHIND = "behind"  # on the cluster, but not at the checkout's revision or version
    FAILING = "failing"  # on the cluster at the revision, not ready


@dataclass(frozen=True)
class Comparison:
    ref: ObjectRef
    agreement: str
    declared: str  # what the checkout says (revision, chart version)
    live: str  # what the cluster has
    message: str = ""


@dataclass(frozen=True)
class CompareReport:
    checkout: str
    revision: str | None
    context: str
    rows: tuple[Comparison, ...] = field(default_factory=tuple)

    @property
    def in_sync(self) -> bool:
        return all(row.agreement == Agreement.IN_SYNC for row in self.rows)


def _sha(revision: str | None) -> str:
    return (revision or "").rpartition(":")[2]


def _selected(ref: ObjectRef, options: StatusOptions) -> bool:
    from phoebe_cli.usecases.status import status_kinds

    if options.namespace and ref.namespace != options.namespace:
        return False
    if options.kind and ref.kind not in {k.kind for k in status_kinds(options.kind)}:
        return False
    if options.name:
        namespace, _, name = options.name.rpartition("/")
        if name != ref.name or (namespace and namespace != ref.namespace):
            return False
    return True


async def compare_with_cluster(session: Session, options: RepoOptions, status_options: StatusOptions) -> CompareReport:
    """Read the checkout (in a thread: kustomize runs) while the cluster is listed."""
    import asyncio

    from phoebe_cli.usecases.status import StatusOptions, collect

    model_task = asyncio.create_task(asyncio.to_thread(load, options))
    try:
        live = await collect(session, StatusOptions(kind=status_options.kind, namespace=status_options.namespace))
    except BaseException:
        model_task.cancel()
        raise
    model = await model_task
    return compare(model, live, status_options)


def _why_missing(parent: ObjectRef | None, live: Snapshot) -> str:
    """Declared, not on the cluster: because the Kustomization that would apply it has not."""
    applier = live.objects.get(parent) if parent is not None else None
    if parent is not None and applier is not None and applier.state is not State.READY:
        said = {State.FAILED: "failing", State.UNKNOWN: "not ready"}.get(applier.state, applier.state.value)
        return f"not applied: {parent} is {said}"
    if parent is not None and applier is None:
        return f"not applied: {parent} is not on the cluster"
    return "declared but not on the cluster"


def compare(model: RepoModel, live: Snapshot, options: StatusOptions | None = None) -> CompareReport:
    from phoebe_cli.usecases.status import StatusOptions

    options = options or StatusOptions()
    rows: list[Comparison] = []
    head = _sha(model.revision)
    for ref, declared in sorted(model.objects.items(), key=lambda item: str(item[0])):
        if not _selected(ref, options):
            continue
        obj = live.objects.get(ref)
        built = model.kustomizations.get(ref)
        from_checkout = built is not None and built.source_dir == model.root
        if built is not None:
            wanted = (head[:8] if head else built.path) if from_checkout else ""
        elif declared.kind is HELM_RELEASE:
            wanted = str((((declared.obj.get("spec") or {}).get("chart") or {}).get("spec") or {}).get("version", ""))
        else:
            wanted = ""
        if obj is None:
            rows.append(Comparison(ref, Agreement.MISSING, wanted, "", _why_missing(declared.declared_by, live)))
            continue
        live_revision = obj.revision or ""
        if obj.kind is KUSTOMIZATION and from_checkout:
            applied = _sha(live_revision)
            at_head = bool(head) and applied.startswith(head) if applied else False
            shown = f"{live_revision.partition('@')[0]}@{applied[:8]}" if applied else ""
            # Tried the checkout's commit and failed on it: failing (below), not behind.
            tried_head = bool(head) and _sha(str(obj.status.get("lastAttemptedRevision") or "")).startswith(head)
            if head and not at_head and not (obj.state is State.FAILED and tried_head):
                rows.append(Comparison(ref, Agreement.BEHIND, wanted, shown, "has not applied the checkout's commit"))
                continue
        elif (
            declared.kind is HELM_RELEASE
            and wanted
            and live_revision
            and not live_revision.startswith(wanted.lstrip("v"))
            and not live_revision.startswith(wanted)
        ):
            rows.append(Comparison(ref, Agreement.BEHIND, wanted, live_revision, "another chart version is released"))
            continue
        if obj.state is State.FAILED:
            rows.append(Comparison(ref, Agreement.FAILING, wanted, live_revision, obj.message))
            continue
        rows.append(Comparison(ref, Agreement.IN_SYNC, wanted, live_revision))
    charts = _declared_charts(model)
    for ref, obj in sorted(live.objects.items(), key=lambda item: str(item[0])):
        if ref in model.objects or not _selected(ref, options):
            continue
        if obj.kind is HELM_CHART:
            # Never declared: helm-controller makes one per HelmRelease using chart.spec, and
            # source-controller pulls it; shown beside the release's declared chart version.
            release = charts.get(ref)
            if release is not None:
                rows.append(_chart_comparison(obj, *release))
            continue
        rows.append(Comparison(ref, Agreement.ORPHAN, "", obj.revision or "", "on the cluster, declared nowhere"))
    return CompareReport(str(model.root), model.revision, live.context, tuple(rows))


_EXACT_VERSION = re.compile(r"v?\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]*)?")


def _declared_charts(model: RepoModel) -> dict[ObjectRef, tuple[ObjectRef, str]]:
    """The HelmChart each declared HelmRelease (chart.spec) makes: chart ref -> (release, version)."""
    charts: dict[ObjectRef, tuple[ObjectRef, str]] = {}
    for ref, declared in model.objects.items():
        if declared.kind is not HELM_RELEASE:
            continue
        raw = dict(declared.obj)
        raw["metadata"] = {**(raw.get("metadata") or {}), "namespace": ref.namespace}
        chart = FluxObject.from_api(HELM_RELEASE, raw).helm_chart_ref
        if chart is not None:
            version = (((raw.get("spec") or {}).get("chart") or {}).get("spec") or {}).get("version")
            charts[chart] = (ref, str(version or ""))
    return charts


def _chart_comparison(chart: FluxObject, release: ObjectRef, version: str) -> Comparison:
    pulled = chart.revision or ""
    if chart.state is State.FAILED:
        return Comparison(chart.ref, Agreement.FAILING, version, pulled, chart.message)
    exact = bool(_EXACT_VERSION.fullmatch(version))
    if exact and pulled and pulled.lstrip("v") != version.lstrip("v"):
        return Comparison(
            chart.ref, Agreement.BEHIND, version, pulled, f"another chart version is pulled for {release}"
        )
    return Comparison(chart.ref, Agreement.IN_SYNC, version, pulled, f"pulled for {release}")


# --- validate ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Validation:
    model: RepoModel
    findings: list[Finding]
    seconds: float

    @property
    def errors(self) -> int:
        return sum(1 for f in self.findings if f.severity == ERROR)

    @property
    def warnings(self) -> int:
        return len(self.findings) - self.errors


def validate(options: RepoOptions, *, strict: bool = False) -> Validation:
    import time

    from phoebe_cli.repo.validate import findings

    started = time.monotonic()
    model = load(options)
    found = findings(model, use_cache=options.use_cache, strict=strict)
    if options.narrow:
        found = _narrow_findings(model, found, options.narrow)
    return Validation(model, found, time.monotonic() - started)


def _narrow_findings(model: RepoModel, found: list[Finding], prefix: str) -> list[Finding]:
    """--path: findings about what is under the directory (its files, its Kustomizations and what
    they declare)."""
    kept = narrowed(model, prefix)
    return [
        f
        for f in found
        if (f.object is not None and f.object in kept) or (f.file is not None and path_under(str(f.file), prefix))
    ]
