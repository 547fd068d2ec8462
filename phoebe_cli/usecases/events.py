"""``phoebe events``: recent Kubernetes events for a Flux object and its source, or for every
Flux object in a namespace (or all of them)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from phoebe_cli.errors import NotFound, UsageError
from phoebe_cli.flux.kinds import ALL_KINDS, FLUX_GROUPS, HELM_RELEASE, FluxKind, kind_named
from phoebe_cli.flux.objects import FluxObject, ObjectRef
from phoebe_cli.kube.discovery import EVENTS
from phoebe_cli.kube.session import Session

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
    target: str | None = None  # KIND/NAME or KIND/NAMESPACE/NAME
    namespace: str | None = None
    limit: int = 50
    warnings_only: bool = False


@dataclass(frozen=True)
class EventsReport:
    subjects: tuple[ObjectRef, ...]  # the objects asked about (empty: every Flux object in scope)
    events: tuple[Event, ...]  # oldest first
    omitted: int  # older events beyond --limit


def parse_target(target: str, namespace: str | None) -> tuple[FluxKind, str, str]:
    parts = target.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise UsageError(f"bad object {target!r} (use KIND/NAME or KIND/NAMESPACE/NAME, e.g. ks/apps)")
    kind = kind_named(parts[0])
    if kind is None:
        raise UsageError(f"unknown kind {parts[0]!r} in {target!r}")
    if len(parts) == 3:
        return kind, parts[1], parts[2]
    return kind, namespace or "flux-system", parts[1]


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


async def _events_of(session: Session, ref: ObjectRef) -> list[Event]:
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
    obj = FluxObject.from_api(kind, raw)
    refs = [obj.ref]
    if obj.source_ref is not None:
        refs.append(obj.source_ref)
    if kind is HELM_RELEASE and obj.chart_source_ref is not None:
        refs.append(obj.chart_source_ref)
    return refs


def _sort_key(event: Event) -> str:
    return event.last_seen or ""


async def events(session: Session, options: EventsOptions) -> EventsReport:
    if options.target:
        kind, namespace, name = parse_target(options.target, options.namespace or session.access.namespace)
        subjects = await _subjects(session, kind, namespace, name)
        found = [e for batch in await asyncio.gather(*(_events_of(session, r) for r in subjects)) for e in batch]
    else:
        subjects = []
        items, _ = await session.kube.list_all(
            EVENTS.collection_path(options.namespace), what=f"events in {options.namespace or 'all namespaces'}"
        )
        found = []
        for item in items:
            involved = item.get("involvedObject") or {}
            group = str(involved.get("apiVersion", "")).split("/")[0]
            if group in KNOWN_GROUPS:
                found.append(_event(item))
    if options.warnings_only:
        found = [e for e in found if e.warning]
    found.sort(key=_sort_key)
    omitted = max(0, len(found) - options.limit)
    return EventsReport(tuple(subjects), tuple(found[omitted:]), omitted)
