"""``phoebe sync``: ask Flux to reconcile objects in bulk, then wait for the answers by watching.

The run: resolve the kinds, list each once, select, check that the user may patch, patch every
selected object concurrently with one token, then watch every kind until each object is done,
failed or deleted, or the timeout ends. ``--with-source`` first does the same for the sources
the selected objects read from; ``--cascade`` afterwards waits for the Kustomizations that read
from synced sources to apply their new revision.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from phoebe_cli.errors import FluxNotInstalled, Forbidden, NotFound, UsageError
from phoebe_cli.flux.kinds import (
    ALL_KINDS,
    BUCKET,
    EXTERNAL_SECRET,
    FLUX_GROUPS,
    GIT_REPOSITORY,
    HELM_CHART,
    HELM_RELEASE,
    KUSTOMIZATION,
    OCI_REPOSITORY,
    FluxKind,
    kind_named,
)
from phoebe_cli.flux.objects import FluxObject, ObjectRef, State
from phoebe_cli.flux.reconcile import (
    FIELD_MANAGER,
    Judgement,
    Request,
    Verdict,
    judge,
    judge_applied,
    new_token,
    reads_from,
)
from phoebe_cli.flux.selectors import check_selector, split_name
from phoebe_cli.kube.access import Permission, allowed
from phoebe_cli.kube.discovery import ServedKind
from phoebe_cli.kube.session import Session
from phoebe_cli.kube.watch import DELETED, list_and_watch
from phoebe_cli.usecases.namespaces import namespace_exists

DEFAULT_NAMESPACE = "flux-system"
SYNCABLE_NAMES = "git, oci, helmrepo, chart, bucket, ks, hr, es, all"
FINAL = frozenset({Verdict.DONE, Verdict.FAILED, Verdict.TIMED_OUT, Verdict.SKIPPED, Verdict.DELETED})
# After Ctrl-C: how long patches already sent may take to answer, then how long asking the
# server whether the unanswered ones landed may take.
IN_FLIGHT_GRACE = 2.0
CONFIRM_TIMEOUT = 3.0


class Phase(StrEnum):
    SOURCE = "source"  # --with-source: synced before the objects that read from it
    TARGET = "target"  # what the user asked for
    CASCADE = "cascade"  # --cascade: Kustomizations applying a synced source's new revision


class Mode(StrEnum):
    SYNC = "sync"  # request a reconcile
    RESUME = "resume"  # spec.suspend=false and request a reconcile, in one patch
    SUSPEND = "suspend"  # spec.suspend=true; nothing to wait for


@dataclass(frozen=True)
class SyncOptions:
    kind: str
    mode: Mode = Mode.SYNC
    names: tuple[str, ...] = ()
    namespace: str | None = None
    all_namespaces: bool = False
    label_selector: str | None = None
    failed_only: bool = False
    with_source: bool = False
    force: bool = False
    reset: bool = False
    wait: bool = True
    timeout: float = 300.0
    cascade: bool = False
    dry_run: bool = False


@dataclass
class SyncItem:
    """One object of the run and where it stands."""

    kind: FluxKind
    ref: ObjectRef
    phase: Phase
    named: bool = False
    verdict: Verdict = Verdict.WAITING
    reason: str = ""
    message: str = ""
    revision: str | None = None
    patched: bool = False  # the server holds this run's patch (it answered, or said so when asked)
    maybe_patched: bool = False  # sent, unanswered when interrupted, and the server could not be asked
    interrupted: bool = False  # not final when the run was interrupted
    started: float = 0.0
    finished: float | None = None
    obj: FluxObject | None = field(default=None, repr=False)

    @property
    def final(self) -> bool:
        return self.verdict in FINAL

    @property
    def seconds(self) -> float | None:
        return None if self.finished is None else max(0.0, self.finished - self.started)


@dataclass(frozen=True)
class SyncResult:
    token: str
    items: tuple[SyncItem, ...]
    dry_run: bool
    waited: bool
    seconds: float
    interrupted: bool = False
    cascade: bool = False  # --cascade was asked (and waited for)
    unread_sources: tuple[ObjectRef, ...] = ()  # --cascade: synced sources no Kustomization reads

    def count(self, verdict: Verdict) -> int:
        return sum(1 for item in self.items if item.verdict is verdict)

    @property
    def failed(self) -> bool:
        return any(item.verdict in (Verdict.FAILED, Verdict.DELETED) for item in self.items)

    @property
    def timed_out(self) -> bool:
        return any(item.verdict is Verdict.TIMED_OUT for item in self.items)

    @property
    def patched(self) -> int:
        return sum(1 for item in self.items if item.patched)

    @property
    def maybe_patched(self) -> int:
        return sum(1 for item in self.items if item.maybe_patched)


class SyncListener(Protocol):
    """Told about every item as the run goes (the live view, the line-per-object output)."""

    def planned(self, items: Sequence[SyncItem]) -> None: ...

    def updated(self, item: SyncItem) -> None: ...


class _Quiet:
    def planned(self, items: Sequence[SyncItem]) -> None:
        pass

    def updated(self, item: SyncItem) -> None:
        pass


def resolve_kinds(name: str) -> tuple[FluxKind, ...]:
    """The kinds ``name`` stands for: one kind, or every kind with a reconcile loop for ``all``."""
    if name.strip().lower() == "all":
        return tuple(k for k in ALL_KINDS if k.reconcilable)
    kind = kind_named(name)
    if kind is None:
        raise UsageError(f"unknown kind {name!r} (use one of: {SYNCABLE_NAMES})")
    return (kind,)


@dataclass
class _Selected:
    served: ServedKind
    objects: list[FluxObject]
    list_version: str
    path: str


class SyncRun:
    def __init__(self, session: Session, options: SyncOptions, listener: SyncListener | None = None) -> None:
        self.session = session
        self.kube = session.kube
        self.options = options
        self.listener = listener or _Quiet()
        now_ns = time.time_ns()
        self.request = Request(new_token(now_ns), now_ns // 1_000_000_000, force=options.force, reset=options.reset)
        self.started = time.monotonic()
        self.deadline = self.started + options.timeout
        self.items: dict[ObjectRef, SyncItem] = {}
        self.served: dict[str, ServedKind] = {}
        self.interrupted = False
        self.unread_sources: list[ObjectRef] = []
        # Patches on their way to the server: sent (past the gate below) and not answered yet.
        self._in_flight: dict[ObjectRef, asyncio.Future[Any]] = {}
        self._patch_gate = asyncio.Semaphore(self.kube.settings.max_in_flight)

    # --- the run ---------------------------------------------------------------------------
    async def run(self) -> SyncResult:
        """The result, also after Ctrl-C: the first cancels the run, and what was patched is
        known exactly — every answered patch counts, and a patch in flight is either answered
        within a moment, or the server is asked whether it landed, or it is reported as one that
        may have."""
        try:
            await self._run()
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()  # handled: what follows may wait (with its own timeouts)
            self.interrupted = True
            await self._settle_in_flight()
            for item in self.items.values():
                if not item.final:
                    item.interrupted = True
                    item.message = _interrupted_message(item)
        return self.result()

    def result(self) -> SyncResult:
        return SyncResult(
            token=self.request.token,
            items=tuple(self.items.values()),
            dry_run=self.options.dry_run,
            waited=self.options.wait,
            seconds=time.monotonic() - self.started,
            interrupted=self.interrupted,
            cascade=self.options.cascade and self.options.wait and not self.options.dry_run,
            unread_sources=tuple(self.unread_sources),
        )

    async def _run(self) -> None:
        kinds = resolve_kinds(self.options.kind)
        check_selector(self.options.label_selector)  # a bad selector fails before any request
        self._named_refs(None)  # and so does a bad name
        if self.options.mode is not Mode.SYNC and EXTERNAL_SECRET in kinds:
            if len(kinds) == 1:
                raise UsageError("ExternalSecrets have no spec.suspend: they cannot be suspended or resumed")
            kinds = tuple(k for k in kinds if k is not EXTERNAL_SECRET)
        if (self.options.force or self.options.reset) and HELM_RELEASE not in kinds:
            raise UsageError("--force and --reset apply to HelmReleases (kind hr)")
        if self.options.cascade and not all(k in (GIT_REPOSITORY, OCI_REPOSITORY, BUCKET) for k in kinds):
            raise UsageError("--cascade applies to sources: git, oci or bucket")
        selected = await self._select(kinds)
        targets = [self._item(kind_of, obj, Phase.TARGET) for kind_of, obj in selected]
        sources: list[SyncItem] = []
        if self.options.with_source:
            sources = await self._sources_of([t for t in targets if t.verdict is Verdict.WAITING])
        self.listener.planned(list(self.items.values()))
        if self.options.dry_run:
            return
        await self._check_permissions([i for i in self.items.values() if i.verdict is Verdict.WAITING])
        if sources:
            # Repositories before the HelmCharts made from them: a chart reconciled before its
            # repository has the new index would pick the old version again.
            await self._sync([s for s in sources if s.kind is not HELM_CHART])
            await self._sync([s for s in sources if s.kind is HELM_CHART])
            self._skip_orphans(targets, sources)
        await self._sync([t for t in targets if t.verdict is Verdict.WAITING])
        if self.options.cascade and self.options.wait:
            await self._cascade([t for t in targets if t.verdict is Verdict.DONE])

    # --- selection -------------------------------------------------------------------------
    def _scope(self) -> str | None:
        """None for all namespaces; else -n, the context's namespace, or flux-system."""
        if self.options.all_namespaces:
            return None
        return self.options.namespace or self.session.access.namespace or DEFAULT_NAMESPACE

    async def _served_kinds(self, kinds: Sequence[FluxKind]) -> list[tuple[FluxKind, ServedKind]]:
        if len(kinds) == 1:
            return [(kinds[0], await self.session.served(kinds[0]))]
        catalog = await self.session.catalog()
        found = [(k, s) for k in kinds if (s := catalog.get(k.group, k.kind)) is not None]
        if not any(k.group in FLUX_GROUPS for k, _ in found):
            raise FluxNotInstalled("Flux is not installed in this cluster: none of its CRDs are served")
        return found

    async def _select(self, kinds: Sequence[FluxKind]) -> list[tuple[FluxKind, FluxObject]]:
        served = await self._served_kinds(kinds)
        for kind, served_kind in served:
            self.served[kind.kind] = served_kind
        scope = self._scope()
        wanted = self._named_refs(scope)
        listings = await asyncio.gather(*(self._list(kind, s, scope, wanted) for kind, s in served))
        chosen: list[tuple[FluxKind, FluxObject]] = []
        found_names: set[tuple[str | None, str]] = set()
        for (kind, _), listing in zip(served, listings, strict=True):
            for obj in listing.objects:
                if wanted:
                    key = next((w for w in wanted if w[1] == obj.name and w[0] in (None, obj.namespace)), None)
                    if key is None:
                        continue
                    found_names.add(key)
                if self.options.failed_only and obj.state is State.READY:
                    continue
                chosen.append((kind, obj))
        missing = [w for w in wanted if w not in found_names]
        listed_in = {obj.namespace for listing in listings for obj in listing.objects}
        await self._check_namespaces(scope, wanted, missing, listed_in)
        if missing:
            what = " or ".join(k.kind for k, _ in served)
            namespaces = {ns for ns, _ in missing}
            if len(namespaces) == 1 and None not in namespaces:
                names = ", ".join(name for _, name in missing)
                raise NotFound(f"{what} not found in namespace {next(iter(namespaces))}: {names}")
            names = ", ".join(f"{ns}/{name}" if ns else name for ns, name in missing)
            raise NotFound(f"{what} not found: {names}")
        return chosen

    def _named_refs(self, scope: str | None) -> list[tuple[str | None, str]]:
        refs: list[tuple[str | None, str]] = []
        for text in self.options.names:
            namespace, name = split_name(text)  # UsageError for '', 'a/b/c', names no object can have
            refs.append((namespace or scope, name))
        return refs

    async def _check_namespaces(
        self,
        scope: str | None,
        wanted: Sequence[tuple[str | None, str]],
        missing: Sequence[tuple[str | None, str]],
        listed_in: set[str],
    ) -> None:
        """A namespace that held nothing may not exist at all: that is exit 5, naming it, not
        "nothing matched" (a typo must not pass as a run with nothing to do)."""
        asked = {ns for ns, _ in missing if ns is not None}
        if scope is not None and not wanted and scope not in listed_in:
            asked.add(scope)
        for namespace in sorted(asked):
            if not await namespace_exists(self.session, namespace):
                hint = ""
                if namespace == scope and not self.options.namespace and not any(ns for ns, _ in wanted):
                    hint = (
                        " (the kubeconfig context's namespace; -n or -A to choose)"
                        if self.session.access.namespace
                        else " (the default namespace; -n or -A to choose)"
                    )
                raise NotFound(f"namespace {namespace} not found{hint}")

    async def _list(
        self, kind: FluxKind, served: ServedKind, scope: str | None, wanted: list[tuple[str | None, str]]
    ) -> _Selected:
        namespaces = {ns for ns, _ in wanted}
        namespace = scope
        if wanted and len(namespaces) == 1:
            namespace = next(iter(namespaces))
        elif wanted:
            namespace = None  # names in several namespaces: one cluster-wide list
        params: dict[str, str | int | bool] = {}
        if self.options.label_selector:
            params["labelSelector"] = self.options.label_selector
        if len(wanted) == 1 and namespace is not None:
            params["fieldSelector"] = f"metadata.name={wanted[0][1]}"
        path = served.collection_path(namespace)
        where = f"in namespace {namespace}" if namespace else "in all namespaces"
        items, version = await self.kube.list_all(path, params=params, what=f"{served.plural} {where}")
        objects = [FluxObject.from_api(kind, item) for item in items]
        return _Selected(served, objects, version, path)

    def _item(self, kind: FluxKind, obj: FluxObject, phase: Phase) -> SyncItem:
        # With names, every selected target was named explicitly.
        named = phase is Phase.TARGET and bool(self.options.names)
        item = SyncItem(kind, obj.ref, phase, named=named, started=time.monotonic(), obj=obj, revision=obj.revision)
        mode = self.options.mode
        if mode is Mode.SUSPEND:
            if obj.suspended:
                item.verdict, item.reason, item.message = Verdict.SKIPPED, "Suspended", "already suspended"
                item.finished = item.started
        elif obj.suspended and mode is Mode.SYNC:
            item.verdict = Verdict.FAILED if named else Verdict.SKIPPED
            item.reason = "Suspended"
            item.message = "suspended: resume it first (phoebe resume)" if named else "suspended"
            item.finished = item.started
        elif (not kind.reconcilable or obj.is_oci_helm_repository) and mode is Mode.SYNC:
            item.verdict = Verdict.SKIPPED
            item.reason = "NotReconcilable"
            item.message = (
                "not reconcilable: OCI HelmRepositories have no reconcile loop"
                if obj.is_oci_helm_repository
                else f"not reconcilable: {kind.kind} has no reconcile loop"
            )
            item.finished = item.started
        self.items.setdefault(obj.ref, item)
        return self.items[obj.ref]

    # --- --with-source ---------------------------------------------------------------------
    async def _sources_of(self, targets: Sequence[SyncItem]) -> list[SyncItem]:
        """The sources the targets read from, each once: ks -> its source; hr -> its HelmChart
        and that chart's repository, or its chartRef."""
        refs: dict[ObjectRef, None] = {}
        for target in targets:
            obj = target.obj
            if obj is None:
                continue
            if obj.kind is KUSTOMIZATION and obj.source_ref is not None:
                refs[obj.source_ref] = None
            elif obj.kind is HELM_RELEASE:
                for ref in (obj.source_ref, obj.chart_source_ref):
                    if ref is not None:
                        refs[ref] = None
        items = []
        for ref in refs:
            if ref in self.items:
                continue
            kind = kind_named(ref.kind)
            if kind is None:
                continue
            served = self.served.get(kind.kind) or await self.session.served(kind)
            self.served[kind.kind] = served
            try:
                raw = await self.kube.get_json(served.object_path(ref.namespace, ref.name), what=f"{ref}")
            except NotFound:
                missing = SyncItem(
                    kind,
                    ref,
                    Phase.SOURCE,
                    verdict=Verdict.FAILED,
                    reason="NotFound",
                    message="source not found",
                    started=time.monotonic(),
                )
                missing.finished = missing.started
                self.items[ref] = missing
                items.append(missing)
                continue
            items.append(self._item(kind, FluxObject.from_api(kind, raw), Phase.SOURCE))
        return [i for i in items if i.verdict is Verdict.WAITING]

    def _skip_orphans(self, targets: Sequence[SyncItem], sources: Sequence[SyncItem]) -> None:
        """A target whose source failed is not patched: it would only apply the old artifact."""
        failed = {s.ref: s for s in sources if s.verdict is not Verdict.DONE}
        for target in targets:
            obj = target.obj
            if target.verdict is not Verdict.WAITING or obj is None:
                continue
            for ref in (obj.source_ref, obj.chart_source_ref):
                if ref is not None and ref in failed:
                    source = failed[ref]
                    self._settle(
                        target,
                        Judgement(
                            Verdict.FAILED,
                            f"source {ref} {source.verdict.value}: {source.message}".rstrip(": "),
                            "SourceNotReady",
                        ),
                    )
                    break

    # --- permissions -----------------------------------------------------------------------
    async def _check_permissions(self, items: Sequence[SyncItem]) -> None:
        """Nothing is patched unless every patch is allowed (a 403 halfway would leave half done)."""
        needed: dict[Permission, None] = {}
        for item in items:
            served = self.served[item.kind.kind]
            needed[Permission("patch", served.group, served.plural, item.ref.namespace)] = None
        by_resource: dict[tuple[str, str], list[Permission]] = {}
        for permission in needed:
            by_resource.setdefault((permission.group, permission.resource), []).append(permission)
        checks: list[Permission] = []
        for (group, resource), permissions in by_resource.items():
            if len(permissions) > 1 and await allowed(self.kube, Permission("patch", group, resource, None)):
                continue  # allowed everywhere: one review instead of one per namespace
            checks.extend(permissions)
        answers = await asyncio.gather(*(allowed(self.kube, p) for p in checks))
        denied = [p for p, ok in zip(checks, answers, strict=True) if not ok]
        if denied:
            raise Forbidden(f"forbidden: you may not {denied[0].describe()}; nothing was patched", code=403)

    # --- patch and wait --------------------------------------------------------------------
    async def _sync(self, items: Sequence[SyncItem]) -> None:
        if not items:
            return
        await asyncio.gather(*(self._patch(item) for item in items))
        if self.options.wait and self.options.mode is not Mode.SUSPEND:
            await self._wait([i for i in items if not i.final])

    async def _patch(self, item: SyncItem) -> None:
        served = self.served[item.kind.kind]
        path = served.object_path(item.ref.namespace, item.ref.name)
        patch: dict[str, Any]
        if self.options.mode is Mode.SUSPEND:
            patch = {"spec": {"suspend": True}}
        else:
            patch = self.request.patch(item.kind)
            if self.options.mode is Mode.RESUME:
                patch["spec"] = {"suspend": False}
        async with self._patch_gate:  # as many as the client sends at once: past it, a patch is in flight
            request = asyncio.ensure_future(
                self.kube.merge_patch(path, patch, field_manager=FIELD_MANAGER, what=str(item.ref))
            )
            self._in_flight[item.ref] = request
            try:
                # Shielded: Ctrl-C does not drop a patch already sent; run() collects its answer.
                answer = await asyncio.shield(request)
            except NotFound:
                del self._in_flight[item.ref]
                self._settle(item, Judgement(Verdict.DELETED, "deleted before it could be patched", "NotFound"))
                return
            except asyncio.CancelledError:
                raise
            except BaseException:
                del self._in_flight[item.ref]
                raise
            del self._in_flight[item.ref]
        self._patched(item, answer)

    def _patched(self, item: SyncItem, answer: dict[str, Any]) -> None:
        item.patched = True
        item.maybe_patched = False
        item.started = time.monotonic()
        item.obj = FluxObject.from_api(item.kind, answer)
        if self.options.mode is Mode.SUSPEND:
            self._settle(item, Judgement(Verdict.DONE, "suspended", "Suspended"))
            return
        self.listener.updated(item)

    def _holds_patch(self, obj: FluxObject) -> bool:
        if self.options.mode is Mode.SUSPEND:
            return obj.suspended
        landed = self.request.carried_by(obj)
        if self.options.mode is Mode.RESUME:
            return landed and not obj.suspended
        return landed

    async def _settle_in_flight(self) -> None:
        """After Ctrl-C: the patches that were sent get a moment to be answered; for those that
        are not, the server is asked whether the object holds the patch; when even that gets no
        answer, the item is marked as one that may have been patched."""
        if not self._in_flight:
            return
        pending = dict(self._in_flight)
        self._in_flight.clear()
        done, _ = await asyncio.wait(pending.values(), timeout=IN_FLIGHT_GRACE)
        unanswered: list[SyncItem] = []
        for ref, request in pending.items():
            item = self.items[ref]
            if request in done and not request.cancelled() and request.exception() is None:
                self._patched(item, request.result())
            elif request in done:
                continue  # the server refused it (or the object is gone): not patched
            else:
                request.cancel()
                unanswered.append(item)
        await asyncio.gather(*pending.values(), return_exceptions=True)
        if not unanswered:
            return

        answered: set[ObjectRef] = set()  # the server said whether the object holds the patch

        async def confirm(item: SyncItem) -> None:
            served = self.served[item.kind.kind]
            try:
                raw = await self.kube.get_json(served.object_path(item.ref.namespace, item.ref.name))
            except NotFound:
                answered.add(item.ref)  # gone: it holds nothing
                return
            answered.add(item.ref)
            if self._holds_patch(FluxObject.from_api(item.kind, raw)):
                self._patched(item, raw)

        try:
            async with asyncio.timeout(CONFIRM_TIMEOUT):
                await asyncio.gather(*(confirm(item) for item in unanswered), return_exceptions=True)
        except TimeoutError:
            pass
        for item in unanswered:
            item.maybe_patched = not item.patched and item.ref not in answered

    async def _wait(self, items: Sequence[SyncItem]) -> None:
        remaining = self.deadline - time.monotonic()
        by_kind: dict[str, list[SyncItem]] = {}
        for item in items:
            by_kind.setdefault(item.kind.kind, []).append(item)
        watches = [asyncio.create_task(self._watch_kind(kind_items)) for kind_items in by_kind.values()]
        try:
            async with asyncio.timeout(max(0.0, remaining)):
                await asyncio.gather(*watches)
        except TimeoutError:
            self._finish_waiting(Verdict.TIMED_OUT, f"no answer within {format_duration(self.options.timeout)}")
        finally:
            for task in watches:
                task.cancel()
            await asyncio.gather(*watches, return_exceptions=True)

    async def _watch_kind(self, items: list[SyncItem]) -> None:
        """Watch one kind until every one of ``items`` is final."""
        kind = items[0].kind
        served = self.served[kind.kind]
        namespaces = {item.ref.namespace for item in items}
        namespace = next(iter(namespaces)) if len(namespaces) == 1 else None
        params: dict[str, str] = {}
        if len(items) == 1:
            params["fieldSelector"] = f"metadata.name={items[0].ref.name}"
        mine = {item.ref: item for item in items}
        # A settled item can unblock or fail others (dependencies), so every change re-judges.
        self._judge_all(mine.values())
        if all(item.final for item in mine.values()):
            return
        async for change in list_and_watch(self.kube, served.collection_path(namespace), params=params):
            obj = FluxObject.from_api(kind, change.object)
            item = mine.get(obj.ref)
            if item is None or item.final:
                continue
            if change.type == DELETED:
                self._settle(item, Judgement(Verdict.DELETED, "deleted while waiting", "Deleted"))
            else:
                item.obj = obj
            self._judge_all(self.items.values())
            if all(i.final for i in mine.values()):
                return

    def _judge_all(self, items: Iterable[SyncItem]) -> None:
        for item in items:
            if item.final or item.obj is None or not item.patched:
                continue
            judgement = judge(item.obj, self.request)
            if judgement.verdict is Verdict.BLOCKED:
                judgement = self._blocked(item, judgement)
            if judgement.verdict is not item.verdict or judgement.message != item.message:
                self._settle(item, judgement)

    def _blocked(self, item: SyncItem, judgement: Judgement) -> Judgement:
        """DependencyNotReady is worth waiting on only while a dependency in this run may still
        get ready; otherwise it is this object's failure."""
        obj = item.obj
        assert obj is not None
        deps = [self.items.get(ref) for ref in obj.depends_on]
        in_run = [d for d in deps if d is not None]
        if any(d.verdict in (Verdict.FAILED, Verdict.TIMED_OUT, Verdict.DELETED, Verdict.SKIPPED) for d in in_run):
            bad = next(
                d for d in in_run if d.verdict in (Verdict.FAILED, Verdict.TIMED_OUT, Verdict.DELETED, Verdict.SKIPPED)
            )
            return Judgement(
                Verdict.FAILED, f"{judgement.message} (dependency {bad.ref} {bad.verdict.value})", judgement.reason
            )
        if in_run:
            return judgement  # still blocked: waits for its dependency in this run
        return Judgement(Verdict.FAILED, judgement.message, judgement.reason)

    def _settle(self, item: SyncItem, judgement: Judgement) -> None:
        item.verdict = judgement.verdict
        item.reason = judgement.reason
        item.message = judgement.message
        if item.obj is not None:
            item.revision = item.obj.revision
        if item.final:
            item.finished = time.monotonic()
        self.listener.updated(item)

    def _finish_waiting(self, verdict: Verdict, message: str) -> None:
        for item in self.items.values():
            if not item.final:
                self._settle(item, Judgement(verdict, item.message or message, "Timeout"))

    # --- --cascade -------------------------------------------------------------------------
    async def _cascade(self, sources: Sequence[SyncItem]) -> None:
        if not sources:
            return
        served = await self.session.served(KUSTOMIZATION)
        self.served[KUSTOMIZATION.kind] = served
        try:
            items, version = await self.kube.list_all(served.collection_path(None), what="kustomizations")
        except Forbidden:
            scope = self._scope() or DEFAULT_NAMESPACE
            items, version = await self.kube.list_all(served.collection_path(scope), what=f"kustomizations in {scope}")
        revisions = {s.ref: s.revision for s in sources if s.revision}
        followers: list[tuple[SyncItem, str]] = []
        read: set[ObjectRef] = set()
        for raw in items:
            obj = FluxObject.from_api(KUSTOMIZATION, raw)
            for ref, revision in revisions.items():
                if reads_from(obj, ref.kind, ref.namespace, ref.name):
                    read.add(ref)
                    if obj.ref in self.items:
                        continue
                    item = self._item(KUSTOMIZATION, obj, Phase.CASCADE)
                    if item.verdict is Verdict.WAITING:
                        followers.append((item, revision))
        # Said, not silently passed: a source nothing reads has nothing to cascade to.
        self.unread_sources = [s.ref for s in sources if s.ref not in read]
        if not followers:
            return
        self.listener.planned(list(self.items.values()))
        wanted = {item.ref: (item, revision) for item, revision in followers}

        def judge_followers() -> bool:
            for item, revision in wanted.values():
                if item.final or item.obj is None:
                    continue
                judgement = judge_applied(item.obj, revision)
                if judgement.verdict is Verdict.BLOCKED:
                    judgement = self._blocked(item, judgement)
                if judgement.verdict is not Verdict.WAITING and judgement.verdict is not Verdict.BLOCKED:
                    self._settle(item, judgement)
            return all(item.final for item, _ in wanted.values())

        async def follow() -> None:
            if judge_followers():
                return
            path = served.collection_path(None)
            async for change in list_and_watch(self.kube, path, initial=(items, version)):
                obj = FluxObject.from_api(KUSTOMIZATION, change.object)
                entry = wanted.get(obj.ref)
                if entry is None:
                    continue
                if change.type == DELETED:
                    self._settle(entry[0], Judgement(Verdict.DELETED, "deleted while waiting", "Deleted"))
                else:
                    entry[0].obj = obj
                if judge_followers():
                    return

        try:
            await asyncio.wait_for(follow(), timeout=max(0.0, self.deadline - time.monotonic()))
        except TimeoutError:
            self._finish_waiting(Verdict.TIMED_OUT, f"no answer within {format_duration(self.options.timeout)}")


def format_duration(seconds: float) -> str:
    """As a user writes a --timeout: 300 -> 5m, 90 -> 1m30s, 0.001 -> 1ms."""
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    whole = round(seconds)
    if abs(seconds - whole) > 1e-9 or whole < 60:
        return f"{seconds:g}s"
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return "".join(f"{n}{unit}" for n, unit in ((hours, "h"), (minutes, "m"), (secs, "s")) if n)


def _interrupted_message(item: SyncItem) -> str:
    """Where an unfinished object stands when the run was interrupted."""
    if item.patched:
        said = f" (last said: {item.message})" if item.message else ""
        return f"interrupted: patched, no answer from the controller yet{said}"
    if item.maybe_patched:
        return "interrupted: the patch was sent but not answered, and the server could not be asked; it may have landed"
    return "interrupted: not patched"


async def sync(session: Session, options: SyncOptions, listener: SyncListener | None = None) -> SyncResult:
    return await SyncRun(session, options, listener).run()
