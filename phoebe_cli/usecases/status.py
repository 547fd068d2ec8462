"""``phoebe status``: every Flux object, what state it is in, why, and how they hang together.

One LIST per kind per run (cluster-wide; per namespace only where RBAC forbids the cluster-wide
list), all at once; everything else is computed: the inventory tree, the blocked-by chains,
the counts. ``collect`` does the I/O, ``build_report`` is pure so ``--watch`` can rebuild the
report from what its watches deliver.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from phoebe_cli.errors import ClusterError, Forbidden, NotFound, OperationTimedOut, PhoebeError, UsageError
from phoebe_cli.flux.installation import PART_OF_FLUX_SELECTOR, controller_report, flux_version
from phoebe_cli.flux.kinds import (
    BUCKET,
    EXTERNAL_SECRET,
    GIT_REPOSITORY,
    HELM_CHART,
    HELM_RELEASE,
    HELM_REPOSITORY,
    KUSTOMIZATION,
    OCI_REPOSITORY,
    FluxKind,
    kind_named,
)
from phoebe_cli.flux.objects import FluxObject, ObjectRef, State
from phoebe_cli.flux.selectors import check_selector, parse_selector, split_name
from phoebe_cli.flux.tree import Blocked, Counts, Tree, blocked_by_or_source, build_tree, count

if TYPE_CHECKING:
    # The kube layer (httpx) is imported when a command talks to a cluster, not by the offline
    # views that reuse this module's report.
    from phoebe_cli.kube.discovery import ServedKind
    from phoebe_cli.kube.session import Session

STATUS_KINDS: tuple[FluxKind, ...] = (
    KUSTOMIZATION,
    HELM_RELEASE,
    GIT_REPOSITORY,
    OCI_REPOSITORY,
    HELM_REPOSITORY,
    HELM_CHART,
    BUCKET,
    EXTERNAL_SECRET,
)


@dataclass(frozen=True)
class StatusOptions:
    kind: str | None = None
    name: str | None = None
    namespace: str | None = None
    label_selector: str | None = None
    failed: bool = False
    suspended: bool = False
    root: str | None = None
    depth: int | None = None
    strict: bool = False


@dataclass
class Snapshot:
    """What the cluster holds right now (kept up to date by --watch)."""

    objects: dict[ObjectRef, FluxObject] = field(default_factory=dict)
    served: dict[str, ServedKind] = field(default_factory=dict)
    forbidden_namespaces: tuple[str, ...] = ()
    flux_version: str | None = None
    context: str = ""
    declared: bool = False  # a checkout's desired state (status --repo), not a cluster's


@dataclass(frozen=True)
class StatusReport:
    context: str
    flux_version: str | None
    generated: datetime
    objects: Mapping[ObjectRef, FluxObject]
    tree: Tree
    blocked: Mapping[ObjectRef, Blocked]
    selected: tuple[ObjectRef, ...]  # what the selection kept, in display order
    counts: Counts  # of the selected objects
    strict: bool
    depth: int | None
    shown: frozenset[ObjectRef] = frozenset()  # selected, and their ancestors in the tree
    forbidden_namespaces: tuple[str, ...] = ()
    declared: bool = False  # a checkout's desired state (status --repo), not a cluster's

    def state(self, ref: ObjectRef) -> State:
        return self.objects[ref].state

    @property
    def healthy(self) -> bool:
        """Everything selected is ready (suspended counts as ready unless --strict)."""
        fine = {State.READY} if self.strict else {State.READY, State.SUSPENDED}
        return all(self.objects[ref].state in fine for ref in self.selected)

    @property
    def git_revisions(self) -> list[tuple[ObjectRef, str]]:
        return [
            (ref, obj.revision or "")
            for ref, obj in sorted(self.objects.items(), key=lambda item: (item[0].namespace, item[0].name))
            if obj.kind is GIT_REPOSITORY and obj.revision
        ]

    def visible(self, ref: ObjectRef) -> bool:
        """In the tree: selected, or an ancestor of something selected."""
        return ref in self.shown


@dataclass(frozen=True)
class ClusterStatus:
    """One cluster of ``status --context a --context b``: its report, or why it could not be read."""

    context: str
    report: StatusReport | None = None
    error: PhoebeError | None = None


@dataclass(frozen=True)
class ClustersReport:
    """Several clusters at once, in the order the contexts were given."""

    clusters: tuple[ClusterStatus, ...]

    @property
    def healthy(self) -> bool:
        """Every cluster was read and is healthy."""
        return all(c.report is not None and c.report.healthy for c in self.clusters)

    @property
    def unread(self) -> tuple[ClusterStatus, ...]:
        return tuple(c for c in self.clusters if c.report is None)

    @property
    def counts(self) -> Counts:
        """The selected objects of every cluster read, by kind and state."""
        total = Counts()
        for cluster in self.clusters:
            if cluster.report is not None:
                for ref in cluster.report.selected:
                    total.add(ref.kind, cluster.report.objects[ref].state)
        return total


def clusters_report(results: Sequence[tuple[str, StatusReport | PhoebeError]]) -> ClustersReport:
    return ClustersReport(
        tuple(
            ClusterStatus(context, error=result) if isinstance(result, PhoebeError) else ClusterStatus(context, result)
            for context, result in results
        )
    )


def status_kinds(kind_name: str | None) -> tuple[FluxKind, ...]:
    if kind_name is None:
        return STATUS_KINDS
    kind = kind_named(kind_name)
    if kind is None:
        raise UsageError(f"unknown kind {kind_name!r} (use ks, hr, git, oci, helmrepo, chart, bucket or es)")
    return (kind,)


# --- collecting ------------------------------------------------------------------------------
async def collect(session: Session, options: StatusOptions) -> Snapshot:
    """One LIST per kind, concurrently; the Flux version beside them."""
    catalog = await session.catalog()
    served = [(k, s) for k in STATUS_KINDS if (s := catalog.get(k.group, k.kind)) is not None]
    if not any(k in (KUSTOMIZATION, HELM_RELEASE) for k, _ in served):
        await session.served(status_kinds(options.kind)[0])  # raises FluxNotInstalled / NotFound
    if options.kind:
        await session.served(status_kinds(options.kind)[0])  # the asked-for kind must be served
    snapshot = Snapshot(served={k.kind: s for k, s in served}, context=session.access.context)
    results = await asyncio.gather(
        *(_list_kind(session, kind, s, options.namespace) for kind, s in served),
        _flux_version(session),
        return_exceptions=True,
    )
    for result in results:
        # The first failure in kind order, not whichever answer came first: the same error each run.
        if isinstance(result, BaseException):
            raise result
    forbidden: set[str] = set()
    for listed in results[:-1]:
        assert isinstance(listed, tuple)
        objects, denied = listed
        forbidden.update(denied)
        for obj in objects:
            snapshot.objects[obj.ref] = obj
    version = results[-1]
    snapshot.flux_version = version if isinstance(version, str) else None
    snapshot.forbidden_namespaces = tuple(sorted(forbidden))
    return snapshot


async def _list_kind(
    session: Session, kind: FluxKind, served: ServedKind, namespace: str | None
) -> tuple[list[FluxObject], list[str]]:
    kube = session.kube
    try:
        items, _ = await kube.list_all(served.collection_path(None), what=f"{served.plural} in all namespaces")
        return [FluxObject.from_api(kind, item) for item in items], []
    except Forbidden:
        pass
    # RBAC forbids the cluster-wide list: one list per namespace the user may read.
    if namespace:
        items, _ = await kube.list_all(served.collection_path(namespace), what=f"{served.plural} in {namespace}")
        return [FluxObject.from_api(kind, item) for item in items], []
    try:
        from phoebe_cli.kube.discovery import NAMESPACES

        namespaces, _ = await kube.list_all(NAMESPACES.collection_path(), what="namespaces")
    except Forbidden as error:
        raise Forbidden(
            f"forbidden: cannot list {served.plural} in all namespaces, nor the namespaces; "
            "use -n NAMESPACE for one you may read",
            code=403,
            detail=error.detail,
        ) from error
    names = [str((ns.get("metadata") or {}).get("name", "")) for ns in namespaces]

    async def one(name: str) -> tuple[list[FluxObject], list[str]]:
        try:
            found, _ = await kube.list_all(served.collection_path(name), what=f"{served.plural} in {name}")
        except Forbidden:
            return [], [name]
        return [FluxObject.from_api(kind, item) for item in found], []

    parts = await asyncio.gather(*(one(name) for name in names))
    return [o for objs, _ in parts for o in objs], [n for _, denied in parts for n in denied]


async def _flux_version(session: Session) -> str | None:
    from phoebe_cli.kube.discovery import DEPLOYMENTS

    try:
        deployments, _ = await session.kube.list_all(
            DEPLOYMENTS.collection_path(session.flux_namespace), params={"labelSelector": PART_OF_FLUX_SELECTOR}
        )
    except ClusterError:
        return None  # only the header's; RBAC may not allow it
    return flux_version(controller_report(d) for d in deployments)


# --- the report (pure) -----------------------------------------------------------------------
def _matches_kind(obj: FluxObject, kinds: Sequence[FluxKind]) -> bool:
    return obj.kind in kinds


def _name_refs(options: StatusOptions) -> tuple[str | None, str] | None:
    if options.name is None:
        return None
    namespace, name = split_name(options.name)
    return namespace or options.namespace, name


def check_options(options: StatusOptions) -> None:
    """Usage errors, found before any request: a bad KIND, NAME or label selector."""
    status_kinds(options.kind)
    _name_refs(options)
    check_selector(options.label_selector)


async def _check_namespace(session: Session, snapshot: Snapshot, options: StatusOptions) -> None:
    """-n NAMESPACE that holds no Flux object may not exist at all: exit 5, not "healthy"."""
    namespace = options.namespace
    if namespace is None or any(ref.namespace == namespace for ref in snapshot.objects):
        return
    from phoebe_cli.usecases.namespaces import require_namespace

    await require_namespace(session, namespace)


def build_report(snapshot: Snapshot, options: StatusOptions, now: datetime | None = None) -> StatusReport:
    objects = snapshot.objects
    kinds = status_kinds(options.kind) if options.kind else STATUS_KINDS
    roots = _roots(options, objects)
    tree = build_tree(objects, roots)
    blocked = {ref: chain for ref, obj in objects.items() if (chain := blocked_by_or_source(obj, objects)) is not None}
    matches_labels = parse_selector(options.label_selector)
    named = _name_refs(options)
    selected = []
    for ref, obj in objects.items():
        if not _matches_kind(obj, kinds):
            continue
        if named is not None and (obj.name != named[1] or (named[0] is not None and obj.namespace != named[0])):
            continue
        if named is None and options.namespace and obj.namespace != options.namespace:
            continue
        if not matches_labels(obj.labels):
            continue
        if options.failed and obj.state in (State.READY, State.SUSPENDED):
            continue
        if options.suspended and obj.state is not State.SUSPENDED:
            continue
        selected.append(ref)
    if named is not None and not selected and not options.failed and not options.suspended:
        what = kinds[0].kind if options.kind else "Flux object"
        where = f"{named[0]}/" if named[0] else ""
        raise NotFound(f"{what} not found: {where}{named[1]}")
    if options.root is not None:
        reachable = _reachable(tree)
        selected = [ref for ref in selected if ref in reachable]
    selected.sort(key=lambda ref: _display_order(objects[ref]))
    shown: set[ObjectRef] = set(selected)
    for ref in selected:
        parent = tree.parents.get(ref)
        while parent is not None and parent not in shown:
            shown.add(parent)
            parent = tree.parents.get(parent)
    return StatusReport(
        context=snapshot.context,
        flux_version=snapshot.flux_version,
        generated=now or datetime.now(UTC),
        objects=objects,
        tree=tree,
        blocked=blocked,
        selected=tuple(selected),
        counts=count(objects[ref] for ref in selected),
        strict=options.strict,
        depth=options.depth,
        shown=frozenset(shown),
        forbidden_namespaces=snapshot.forbidden_namespaces,
        declared=snapshot.declared,
    )


def _roots(options: StatusOptions, objects: Mapping[ObjectRef, FluxObject]) -> list[ObjectRef] | None:
    if options.root is None:
        return None
    namespace, _, name = options.root.rpartition("/")
    matches = [
        ref
        for ref in objects
        if ref.kind == KUSTOMIZATION.kind and ref.name == name and (not namespace or ref.namespace == namespace)
    ]
    if not matches:
        raise NotFound(f"Kustomization not found: {options.root} (for --root)")
    return sorted(matches, key=lambda r: (r.namespace, r.name))


def _reachable(tree: Tree) -> set[ObjectRef]:
    found: set[ObjectRef] = set()
    stack = list(tree.roots)
    while stack:
        ref = stack.pop()
        if ref in found:
            continue
        found.add(ref)
        stack.extend(tree.children.get(ref, ()))
    return found


_STATE_ORDER = {State.FAILED: 0, State.PROGRESSING: 1, State.UNKNOWN: 2, State.SUSPENDED: 3, State.READY: 4}


def _display_order(obj: FluxObject) -> tuple[int, str, str, str]:
    """Failing first, then by kind, namespace and name."""
    return (_STATE_ORDER[obj.state], obj.kind.kind, obj.namespace, obj.name)


async def status(session: Session, options: StatusOptions) -> StatusReport:
    check_options(options)  # usage errors before any request
    snapshot = await collect(session, options)
    await _check_namespace(session, snapshot, options)
    return build_report(snapshot, options)


class StatusListener(Protocol):
    def report(self, report: StatusReport) -> None: ...


async def watch_status(
    session: Session,
    options: StatusOptions,
    listener: StatusListener,
    *,
    until_ready: bool = False,
    timeout: float | None = None,
) -> StatusReport:
    """Keep the report current from watches (no polling): every kind is listed, then watched,
    and each burst of changes rebuilds the report. Returns the last report when everything
    selected is ready (``until_ready``), or raises OperationTimedOut after ``timeout``."""
    check_options(options)
    snapshot = await collect(session, options)
    await _check_namespace(session, snapshot, options)
    changed = asyncio.Event()
    latest = build_report(snapshot, options)
    listener.report(latest)
    if until_ready and latest.healthy:
        return latest

    async def follow(kind: FluxKind, served: ServedKind) -> None:
        try:
            await apply_changes(kind, served.collection_path(None))
        except Forbidden:
            if not options.namespace:
                raise Forbidden(
                    f"forbidden: --watch needs to list and watch {served.plural} in all namespaces; use -n NAMESPACE",
                    code=403,
                ) from None
            await apply_changes(kind, served.collection_path(options.namespace))

    from phoebe_cli.kube.watch import DELETED, list_and_watch

    async def apply_changes(kind: FluxKind, path: str) -> None:
        async for change in list_and_watch(session.kube, path):
            obj = FluxObject.from_api(kind, change.object)
            if change.type == DELETED:
                snapshot.objects.pop(obj.ref, None)
            else:
                snapshot.objects[obj.ref] = obj
            changed.set()

    kinds = [(k, snapshot.served[k.kind]) for k in STATUS_KINDS if k.kind in snapshot.served]
    watchers = [asyncio.create_task(follow(kind, served)) for kind, served in kinds]
    deadline = None if timeout is None else asyncio.get_running_loop().time() + timeout
    try:
        while True:
            remaining = None if deadline is None else deadline - asyncio.get_running_loop().time()
            if remaining is not None and remaining <= 0:
                raise OperationTimedOut(f"not everything was ready after {timeout:g}s")
            try:
                await asyncio.wait_for(changed.wait(), timeout=remaining)
            except TimeoutError:
                continue
            await asyncio.sleep(0.05)  # let a burst of events land, then redraw once
            changed.clear()
            for task in watchers:
                if task.done() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
            latest = build_report(snapshot, options)
            listener.report(latest)
            if until_ready and latest.healthy:
                return latest
    finally:
        for task in watchers:
            task.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)
