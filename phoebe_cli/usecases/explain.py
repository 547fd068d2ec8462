"""``phoebe explain``: one Flux object's whole story — verdict, chain, conditions, source,
applied objects that are not healthy, a HelmRelease's history, events, the controller's log
lines about it, and what to do next.

Every read happens at once: the status snapshot (one LIST per kind, as ``phoebe status``), the
object's events and the controller's log start together; once the snapshot names the sources
and the inventory, their events and the applied objects are read together. A section the user
may not read (RBAC) says "not allowed" and the rest is still shown.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from phoebe_cli.errors import Forbidden, NotFound, UsageError
from phoebe_cli.flux.explain import (
    ChainLink,
    NextStep,
    ReleaseView,
    SourceView,
    Verdict,
    chain_links,
    next_steps,
    release_view,
    source_view,
    verdict,
)
from phoebe_cli.flux.health import (
    POD_OWNERS,
    WORKLOAD_KINDS,
    ContainerProblem,
    Health,
    HealthResult,
    compute_health,
    container_problems,
    pod_selector,
)
from phoebe_cli.flux.inventory import ObjectKey
from phoebe_cli.flux.kinds import HELM_RELEASE, KUSTOMIZATION, FluxKind, kind_named
from phoebe_cli.flux.logs import LogLine
from phoebe_cli.flux.objects import Condition, FluxObject, ObjectRef, State
from phoebe_cli.flux.tree import build_tree
from phoebe_cli.kube.discovery import ServedKind
from phoebe_cli.kube.session import Session
from phoebe_cli.usecases.events import Event, event_subjects, events_of, parse_target
from phoebe_cli.usecases.logs import LogsOptions, PodNotStarted, read_logs
from phoebe_cli.usecases.namespaces import namespace_exists
from phoebe_cli.usecases.status import StatusOptions, collect

T = TypeVar("T")

NOT_ALLOWED = "not allowed"
# helm-controller labels every object of a release with these (its origin labels).
HELM_NAME_LABEL = "helm.toolkit.fluxcd.io/name"
HELM_NAMESPACE_LABEL = "helm.toolkit.fluxcd.io/namespace"
_PLURALS = {
    "Deployment": "deployments",
    "StatefulSet": "statefulsets",
    "DaemonSet": "daemonsets",
    "ReplicaSet": "replicasets",
    "Job": "jobs",
    "Pod": "pods",
    "PersistentVolumeClaim": "persistentvolumeclaims",
}
_PODS = ServedKind("", "Pod", "pods", True, ("v1",))


@dataclass(frozen=True)
class ExplainOptions:
    target: str  # KIND/NAME or KIND/NAMESPACE/NAME
    namespace: str | None = None
    events: int = 20  # the newest N events
    log_lines: int = 10  # the last N warning-or-worse lines
    log_tail: int = 5000  # how far back each controller Pod's log is read


@dataclass(frozen=True)
class Section(Generic[T]):
    """What one section could read; ``denied`` names what RBAC did not allow (the rest is
    shown), ``unavailable`` why nothing could be read at all."""

    items: tuple[T, ...] = ()
    denied: tuple[str, ...] = ()
    unavailable: str | None = None
    omitted: int = 0  # older items beyond the limit

    @property
    def not_allowed(self) -> bool:
        """Nothing could be read because RBAC forbids it."""
        return bool(self.denied) and not self.items


@dataclass(frozen=True)
class AppliedProblem:
    """An applied object that is not healthy by kstatus' rules."""

    key: ObjectKey
    health: HealthResult
    containers: tuple[ContainerProblem, ...] = ()


@dataclass(frozen=True)
class AppliedSection:
    problems: Section[AppliedProblem]
    checked: int  # applied objects whose health was read
    origin: str  # "inventory", "release labels", or "" when the kind applies nothing


@dataclass(frozen=True)
class ExplainReport:
    object: FluxObject
    verdict: Verdict
    chain: tuple[ChainLink, ...]
    conditions: tuple[Condition, ...]
    source: SourceView | None
    applied: AppliedSection
    release: ReleaseView | None
    events: Section[Event]
    logs: Section[LogLine]
    next_steps: tuple[NextStep, ...]
    generated: datetime

    @property
    def healthy(self) -> bool:
        return self.verdict.state in (State.READY, State.SUSPENDED)


def parse_explain_target(target: str, namespace: str | None) -> tuple[FluxKind, str, str]:
    kind, object_namespace, name = parse_target(target, namespace)
    if name is None or object_namespace is None:
        raise UsageError(f"name the object to explain: {target}/NAME or {target}/NAMESPACE/NAME (e.g. hr/media/sonarr)")
    return kind, object_namespace, name


async def explain(session: Session, options: ExplainOptions) -> ExplainReport:
    kind, namespace, name = parse_explain_target(options.target, options.namespace or session.access.namespace)
    ref = ObjectRef(kind.kind, namespace, name)
    own_events = asyncio.ensure_future(_events(session, [ref]))
    logs = asyncio.ensure_future(_logs(session, kind, namespace, name, options))
    try:
        snapshot = await collect(session, StatusOptions(namespace=namespace))
        objects = dict(snapshot.objects)
        if ref not in objects:
            objects[ref] = await _get_object(session, kind, ref)
    except BaseException:
        await _cancel(own_events, logs)
        raise
    obj = objects[ref]
    try:
        denied, (source_events, applied) = await asyncio.gather(
            _fill_chain(session, obj, objects),
            asyncio.gather(_events(session, event_subjects(obj)[1:]), _applied(session, obj, objects)),
        )
        events_read = await own_events
        logs_read = await logs
    except BaseException:
        await _cancel(own_events, logs)
        raise
    parent = build_tree(objects).parents.get(ref)
    found = verdict(obj, objects)
    source = source_view(obj, objects)
    release = release_view(obj, objects)
    unhealthy = _unhealthy_targets(applied.problems.items)
    return ExplainReport(
        object=obj,
        verdict=found,
        chain=chain_links(obj, objects, parent=parent, verdict_=found, denied=frozenset(denied)),
        conditions=obj.conditions,
        source=source,
        applied=applied,
        release=release,
        events=_merge_events(events_read, source_events, options.events),
        logs=_last_lines(logs_read, options.log_lines),
        next_steps=next_steps(obj, found, objects, parent=parent, source=source, release=release, unhealthy=unhealthy),
        generated=datetime.now(UTC),
    )


async def _cancel(*tasks: asyncio.Future[Any]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _get_object(session: Session, kind: FluxKind, ref: ObjectRef) -> FluxObject:
    """The object itself when the status lists did not hold it (a kind status does not list)."""
    served = await session.served(kind)
    try:
        raw = await session.kube.get_json(
            served.object_path(ref.namespace, ref.name), what=f"{kind.kind} {ref.namespace}/{ref.name}"
        )
    except NotFound:
        if not await namespace_exists(session, ref.namespace):
            raise NotFound(f"namespace {ref.namespace} not found") from None
        raise NotFound(f"{kind.kind} not found: {ref.namespace}/{ref.name}") from None
    return FluxObject.from_api(kind, raw)


async def _fill_chain(session: Session, obj: FluxObject, objects: dict[ObjectRef, FluxObject]) -> set[ObjectRef]:
    """Reads the chain's objects the status lists did not hold (RBAC let only the object's own
    namespace be listed); returns those the user may not read."""
    denied: set[ObjectRef] = set()
    asked: set[ObjectRef] = set()
    frontier = [obj]
    while frontier:
        wanted: list[ObjectRef] = []
        for current in frontier:
            for ref in (*current.depends_on, current.source_ref, current.chart_source_ref):
                if ref is not None and ref not in objects and ref not in asked:
                    asked.add(ref)
                    wanted.append(ref)
        results = await asyncio.gather(*(_maybe_get(session, ref) for ref in wanted))
        frontier = []
        for ref, result in zip(wanted, results, strict=True):
            if result is NOT_ALLOWED:
                denied.add(ref)
            elif isinstance(result, FluxObject):
                objects[ref] = result
                frontier.append(result)
    return denied


async def _maybe_get(session: Session, ref: ObjectRef) -> FluxObject | str | None:
    kind = kind_named(ref.kind)
    if kind is None:
        return None
    try:
        served = await session.served(kind)
        raw = await session.kube.get_json(
            served.object_path(ref.namespace, ref.name), what=f"{ref.kind} {ref.namespace}/{ref.name}"
        )
    except Forbidden:
        return NOT_ALLOWED
    except NotFound:
        return None
    return FluxObject.from_api(kind, raw)


# --- events and logs -----------------------------------------------------------------------------
async def _events(session: Session, refs: Sequence[ObjectRef]) -> Section[Event]:
    async def one(ref: ObjectRef) -> list[Event] | str:
        try:
            return await events_of(session, ref)
        except Forbidden:
            return f"events in {ref.namespace}"

    found: list[Event] = []
    denied: list[str] = []
    for result in await asyncio.gather(*(one(ref) for ref in refs)):
        if isinstance(result, str):
            if result not in denied:
                denied.append(result)
        else:
            found.extend(result)
    return Section(tuple(found), tuple(denied))


def _merge_events(own: Section[Event], sources: Section[Event], limit: int) -> Section[Event]:
    found = sorted((*own.items, *sources.items), key=lambda e: e.last_seen or "")
    denied = tuple(dict.fromkeys((*own.denied, *sources.denied)))
    omitted = max(0, len(found) - limit)
    return Section(tuple(found[omitted:]), denied, omitted=omitted)


async def _logs(
    session: Session, kind: FluxKind, namespace: str, name: str, options: ExplainOptions
) -> Section[LogLine]:
    wanted = LogsOptions(object=f"{kind.short_name}/{namespace}/{name}", level="warn", tail=options.log_tail)
    try:
        result = await read_logs(session, wanted)
    except Forbidden:
        return Section(denied=(f"the {kind.controller.value}'s log",))
    except (NotFound, PodNotStarted) as error:
        return Section(unavailable=str(error))
    return Section(result.lines)


def _last_lines(section: Section[LogLine], limit: int) -> Section[LogLine]:
    omitted = max(0, len(section.items) - limit)
    return Section(section.items[omitted:], section.denied, section.unavailable, omitted)


# --- applied objects -----------------------------------------------------------------------------
def _served_workload(key: ObjectKey) -> ServedKind:
    return ServedKind(key.group, key.kind, _PLURALS[key.kind], True, (key.version or "v1",))


async def _applied(session: Session, obj: FluxObject, objects: Mapping[ObjectRef, FluxObject]) -> AppliedSection:
    if obj.kind not in (KUSTOMIZATION, HELM_RELEASE):
        return AppliedSection(Section(), 0, "")
    inventory = obj.inventory
    problems: list[AppliedProblem] = []
    checked = 0
    # Flux objects it applied are in the snapshot already: their state is their health.
    for key in inventory:
        child_kind = kind_named(key.kind)
        if child_kind is None or child_kind.group != key.group:
            continue
        child = objects.get(ObjectRef(key.kind, key.namespace or "", key.name))
        if child is None:
            continue
        checked += 1
        if child.state not in (State.READY, State.SUSPENDED):
            reason = child.reason or child.state.value
            problems.append(
                AppliedProblem(
                    key,
                    HealthResult(
                        Health.IN_PROGRESS if child.state is State.PROGRESSING else Health.FAILED,
                        reason,
                        " ".join(child.message.split()),
                    ),
                )
            )
    workloads = [k for k in inventory if (k.group, k.kind) in WORKLOAD_KINDS and k.namespace]
    if inventory:
        origin = "inventory"
        reads: list[Awaitable[_Read]] = [_get_workload(session, key) for key in workloads]
    elif obj.kind is HELM_RELEASE:
        # helm-controller v1.6.4 leaves status.inventory empty: its origin labels say what it released.
        origin = "release labels"
        target = str(obj.spec.get("targetNamespace") or obj.namespace)
        selector = f"{HELM_NAME_LABEL}={obj.name},{HELM_NAMESPACE_LABEL}={obj.namespace}"
        reads = [
            _list_workloads(session, group, kind, target, selector) for group, kind in WORKLOAD_KINDS if kind != "Pod"
        ]
    else:
        return AppliedSection(Section(tuple(problems)), checked, "inventory")
    denied: list[str] = []
    unhealthy: list[tuple[ObjectKey, HealthResult, Mapping[str, Any] | None]] = []
    for found, refused in await asyncio.gather(*reads):
        denied.extend(d for d in refused if d not in denied)
        checked += len(found)
        for key, raw in found:
            health = compute_health(raw) if raw is not None else _GONE
            if not health.healthy:
                unhealthy.append((key, health, raw))
    with_pods = await asyncio.gather(*(_with_pods(session, key, health, raw) for key, health, raw in unhealthy))
    for problem, refused in with_pods:
        problems.append(problem)
        denied.extend(d for d in refused if d not in denied)
    return AppliedSection(Section(tuple(problems), tuple(denied)), checked, origin)


_GONE = HealthResult(Health.NOT_FOUND, "NotFound", "in the inventory, but not in the cluster")
_Read = tuple[list[tuple[ObjectKey, Mapping[str, Any] | None]], list[str]]


async def _get_workload(session: Session, key: ObjectKey) -> _Read:
    served = _served_workload(key)
    try:
        raw = await session.kube.get_json(served.object_path(key.namespace, key.name), what=key.subject)
    except Forbidden:
        return [], [f"{served.plural} in {key.namespace}"]
    except NotFound:
        return [(key, None)], []
    return [(key, raw)], []


async def _list_workloads(session: Session, group: str, kind: str, namespace: str, selector: str) -> _Read:
    served = ServedKind(group, kind, _PLURALS[kind], True, ("v1",))
    try:
        items, _ = await session.kube.list_all(
            served.collection_path(namespace),
            params={"labelSelector": selector},
            what=f"{served.plural} in {namespace}",
        )
    except Forbidden:
        return [], [f"{served.plural} in {namespace}"]
    # list items carry no apiVersion and kind: kstatus' rules go by them
    typed = [{**item, "apiVersion": served.api_version, "kind": kind} for item in items]
    return [(ObjectKey.of(item), item) for item in typed], []


async def _with_pods(
    session: Session, key: ObjectKey, health: HealthResult, raw: Mapping[str, Any] | None
) -> tuple[AppliedProblem, list[str]]:
    """A workload that is not healthy, with its Pods' containers that keep failing."""
    if raw is None or key.kind not in POD_OWNERS or not key.namespace:
        return AppliedProblem(key, health), []
    selector = pod_selector(raw)
    if selector is None:
        return AppliedProblem(key, health), []
    try:
        pods, _ = await session.kube.list_all(
            _PODS.collection_path(key.namespace), params={"labelSelector": selector}, what=f"pods in {key.namespace}"
        )
    except Forbidden:
        return AppliedProblem(key, health), [f"pods in {key.namespace}"]
    found = [problem for pod in pods for problem in container_problems(pod)]
    return AppliedProblem(key, health, tuple(found)), []


def _unhealthy_targets(problems: Sequence[AppliedProblem]) -> list[tuple[str, str, str]]:
    targets: list[tuple[str, str, str]] = []
    for problem in problems:
        if problem.containers:
            pods = dict.fromkeys(c.pod for c in problem.containers)
            targets.extend(("Pod", problem.key.namespace or "", pod) for pod in pods)
        elif problem.key.kind in _PLURALS:
            targets.append((problem.key.kind, problem.key.namespace or "", problem.key.name))
    return targets[:3]
