"""``phoebe events``: recent Kubernetes events for a Flux object and its source, or for every
Flux object in a namespace (or all of them)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from phoebe_cli.errors import NotFound, UsageError
from phoebe_cli.flux.kinds import ALL_KINDS, FLUX_GROUPS, HELM_RELEASE, FluxKind, kind_named
from phoebe_cli.flux.objects import FluxObject, ObjectRef
from phoebe_cli.flux.selectors import split_name
from phoebe_cli.kube.discovery import EVENTS
from phoebe_cli.kube.session import Session
from phoebe_cli.usecases.namespaces import namespace_exists, require_namespace

KNOWN_GROUPS = FLUX_GROUPS | {k.group for k in ALL_KINDS}


@dataclass(frozen=True)
class Event:
    type: str  # Normal | Warning
    reason: str
    message: str
    object: ObjectRef
    count: int
    last_seen: str | None
    source: str  # the component that reported it (kustomize-controller ...)

    @property
    def warning(self) -> bool:
        return self.type == "Warning"


@dataclass(frozen=True)
class EventsOptions:
    target: str | None = None  # KIND, KIND/NAME or KIND/NAMESPACE/NAME
    namespace: str | None = None
    limit: int = 50
    warnings_only: bool = False


@dataclass(frozen=True)
class EventsReport:
    subjects: tuple[ObjectRef, ...]  # the objects asked about (empty: every Flux object in scope)
    events: tuple[Event, ...]  # oldest first
    omitted: int  # older events beyond --limit


def parse_target(target: str, namespace: str | None) -> tuple[FluxKind, str | None, str | None]:
    """``KIND``, ``KIND/NAME`` or ``KIND/NAMESPACE/NAME`` -> (kind, namespace, name); the name is
    None for a kind alone, the namespace defaults to ``namespace``, else flux-system."""
    kind_text, slash, rest = target.partition("/")
    kind = kind_named(kind_text)
    if kind is None:
        where = f" in {target!r}" if target != kind_text else ""
        raise UsageError(
            f"unknown kind {kind_text!r}{where} (use KIND, KIND/NAME or KIND/NAMESPACE/NAME, e.g. ks/apps; "
            "kinds: ks, hr, git, oci, helmrepo, chart, es ...)"
        )
    if not slash:
        return kind, namespace, None
    object_namespace, name = split_name(rest, forms="KIND/NAME or KIND/NAMESPACE/NAME, e.g. ks/apps")
    return kind, object_namespace or namespace or "flux-system", name


def _event(raw: dict[str, Any]) -> Event:
    involved = raw.get("involvedObject") or raw.get("regarding") or {}
    source = raw.get("source") or {}
    return Event(
        type=str(raw.get("type", "Normal")),
        reason=str(raw.get("reason", "")),
        message=str(raw.get("message") or raw.get("note") or ""),
        object=ObjectRef(
            str(involved.get("kind", "")), str(involved.get("namespace", "")), str(involved.get("name", ""))
        ),
        count=int(raw.get("count") or (raw.get("series") or {}).get("count") or 1),
        last_seen=raw.get("lastTimestamp")
        or raw.get("eventTime")
        or raw.get("firstTimestamp")
        or (raw.get("metadata") or {}).get("creationTimestamp"),
        source=str(source.get("component") or raw.get("reportingComponent") or raw.get("reportingController") or ""),
    )


def _field_selector(ref: ObjectRef) -> str:
    return f"involvedObject.kind={ref.kind},involvedObject.name={ref.name},involvedObject.namespace={ref.namespace}"


async def events_of(session: Session, ref: ObjectRef) -> list[Event]:
    """The events about one object (explain reads them too)."""
    items, _ = await session.kube.list_all(
        EVENTS.collection_path(ref.namespace),
        params={"fieldSelector": _field_selector(ref)},
        what=f"events in {ref.namespace}",
    )
    return [_event(item) for item in items]


async def _subjects(session: Session, kind: FluxKind, namespace: str, name: str) -> list[ObjectRef]:
    """The object, the source it reads from, and for a HelmRelease its HelmChart's repository."""
    served = await session.served(kind)
    try:
        raw = await session.kube.get_json(served.object_path(namespace, name), what=f"{kind.kind} {namespace}/{name}")
    except NotFound:
        raise NotFound(f"{kind.kind} not found: {namespace}/{name}") from None
    return event_subjects(FluxObject.from_api(kind, raw))


def event_subjects(obj: FluxObject) -> list[ObjectRef]:
    """The object, the source it reads from, and for a HelmRelease its HelmChart's repository."""
    refs = [obj.ref]
    if obj.source_ref is not None:
        refs.append(obj.source_ref)
    if obj.kind is HELM_RELEASE and obj.chart_source_ref is not None:
        refs.append(obj.chart_source_ref)
    return refs


def _sort_key(event: Event) -> str:
    return event.last_seen or ""


async def events(session: Session, options: EventsOptions) -> EventsReport:
    target = None
    if options.target:  # a bad OBJECT is a usage error before any request
        target = parse_target(options.target, options.namespace or session.access.namespace)
    if target is not None and target[2] is not None:
        kind, namespace, name = target
        assert namespace is not None and name is not None
        try:
            subjects = await _subjects(session, kind, namespace, name)
        except NotFound:
            if not await namespace_exists(session, namespace):
                raise NotFound(f"namespace {namespace} not found") from None
            raise
        found = [e for batch in await asyncio.gather(*(events_of(session, r) for r in subjects)) for e in batch]
    else:
        subjects = []
        params = {}
        if target is not None:
            params["fieldSelector"] = f"involvedObject.kind={target[0].kind}"
        items, _ = await session.kube.list_all(
            EVENTS.collection_path(options.namespace),
            params=params,
            what=f"events in {options.namespace or 'all namespaces'}",
        )
        found = []
        for item in items:
            involved = item.get("involvedObject") or {}
            group = str(involved.get("apiVersion", "")).split("/")[0]
            if group in KNOWN_GROUPS and (target is None or group == target[0].group):
                found.append(_event(item))
        if options.namespace and not items:
            await require_namespace(session, options.namespace)
    if options.warnings_only:
        found = [e for e in found if e.warning]
    found.sort(key=_sort_key)
    omitted = max(0, len(found) - options.limit)
    return EventsReport(tuple(subjects), tuple(found[omitted:]), omitted)
