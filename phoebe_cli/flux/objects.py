"""Read-only views of Flux objects as the API returns them, and what their status means.

Pure: built from the JSON of one object. The rules follow what the controllers write (see
docs/architecture.md): Ready for the current generation is judged by the Ready condition's own
``observedGeneration`` when it has one, because a failing Kustomization keeps
``status.observedGeneration`` at -1 while its Ready condition is for the current generation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from phoebe_cli.flux.inventory import ObjectKey, parse_inventory_id
from phoebe_cli.flux.kinds import (
    HELM_CHART,
    HELM_RELEASE,
    HELM_REPOSITORY,
    KUSTOMIZATION,
    OCI_REPOSITORY,
    FluxKind,
)

REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"
FORCE_AT = "reconcile.fluxcd.io/forceAt"
RESET_AT = "reconcile.fluxcd.io/resetAt"
PROGRESSING_WITH_RETRY = "ProgressingWithRetry"
DEPENDENCY_NOT_READY = "DependencyNotReady"


class State(StrEnum):
    READY = "ready"
    FAILED = "failed"
    PROGRESSING = "progressing"
    SUSPENDED = "suspended"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Condition:
    type: str
    status: str  # "True" | "False" | "Unknown"
    reason: str
    message: str
    last_transition: str | None
    observed_generation: int | None

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> Condition:
        generation = raw.get("observedGeneration")
        return cls(
            type=str(raw.get("type", "")),
            status=str(raw.get("status", "Unknown")),
            reason=str(raw.get("reason", "")),
            message=str(raw.get("message", "")),
            last_transition=raw.get("lastTransitionTime"),
            observed_generation=int(generation) if generation is not None else None,
        )

    @property
    def is_true(self) -> bool:
        return self.status == "True"

    @property
    def is_false(self) -> bool:
        return self.status == "False"


@dataclass(frozen=True)
class ObjectRef:
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}"


@dataclass(frozen=True)
class FluxObject:
    """One Flux object (or ExternalSecret) with the fields phoebe reasons about."""

    kind: FluxKind
    namespace: str
    name: str
    generation: int
    raw: Mapping[str, Any]

    @classmethod
    def from_api(cls, kind: FluxKind, obj: Mapping[str, Any]) -> FluxObject:
        meta = obj.get("metadata") or {}
        return cls(
            kind=kind,
            namespace=str(meta.get("namespace", "")),
            name=str(meta.get("name", "")),
            generation=int(meta.get("generation") or 0),
            raw=obj,
        )

    # --- plain fields ----------------------------------------------------------------------
    @property
    def ref(self) -> ObjectRef:
        return ObjectRef(self.kind.kind, self.namespace, self.name)

    @property
    def spec(self) -> Mapping[str, Any]:
        return self.raw.get("spec") or {}

    @property
    def status(self) -> Mapping[str, Any]:
        return self.raw.get("status") or {}

    @property
    def annotations(self) -> Mapping[str, str]:
        return (self.raw.get("metadata") or {}).get("annotations") or {}

    @property
    def labels(self) -> Mapping[str, str]:
        return (self.raw.get("metadata") or {}).get("labels") or {}

    @property
    def resource_version(self) -> str:
        return str((self.raw.get("metadata") or {}).get("resourceVersion", ""))

    @property
    def created(self) -> str | None:
        return (self.raw.get("metadata") or {}).get("creationTimestamp")

    @property
    def suspended(self) -> bool:
        return bool(self.spec.get("suspend"))

    @property
    def observed_generation(self) -> int | None:
        value = self.status.get("observedGeneration")
        return int(value) if value is not None else None

    @property
    def last_handled_reconcile_at(self) -> str | None:
        return self.status.get("lastHandledReconcileAt")

    @property
    def conditions(self) -> tuple[Condition, ...]:
        return tuple(Condition.from_api(c) for c in self.status.get("conditions") or [] if isinstance(c, Mapping))

    def condition(self, type_: str) -> Condition | None:
        for cond in self.conditions:
            if cond.type == type_:
                return cond
        return None

    @property
    def ready(self) -> Condition | None:
        return self.condition("Ready")

    # --- meaning ---------------------------------------------------------------------------
    @property
    def ready_is_current(self) -> bool:
        """Whether the Ready condition speaks for the current generation."""
        ready = self.ready
        if ready is None:
            return False
        if ready.observed_generation is not None:
            return ready.observed_generation >= self.generation
        observed = self.observed_generation
        return observed is None or observed >= self.generation

    @property
    def retrying(self) -> bool:
        """Failing and retrying (Reconciling=True ProgressingWithRetry): a failure, not progress."""
        reconciling = self.condition("Reconciling")
        return reconciling is not None and reconciling.is_true and reconciling.reason == PROGRESSING_WITH_RETRY

    @property
    def stalled(self) -> bool:
        stalled = self.condition("Stalled")
        return stalled is not None and stalled.is_true

    @property
    def state(self) -> State:
        if self.suspended:
            return State.SUSPENDED
        ready = self.ready
        if self.stalled:
            return State.FAILED
        if ready is None:
            reconciling = self.condition("Reconciling")
            return State.PROGRESSING if reconciling is not None and reconciling.is_true else State.UNKNOWN
        if ready.is_true:
            return State.READY if self.ready_is_current else State.PROGRESSING
        if ready.is_false:
            reconciling = self.condition("Reconciling")
            if reconciling is not None and reconciling.is_true and not self.retrying:
                return State.PROGRESSING
            return State.FAILED
        return State.PROGRESSING

    @property
    def message(self) -> str:
        """The Ready message, else the most telling condition's."""
        for type_ in ("Ready", "Stalled", "Reconciling"):
            cond = self.condition(type_)
            if cond is not None and cond.message:
                return cond.message
        return ""

    @property
    def reason(self) -> str:
        ready = self.ready
        return ready.reason if ready is not None else ""

    @property
    def revision(self) -> str | None:
        """What is applied/stored: the artifact revision for sources, lastAppliedRevision for a
        Kustomization, the chart version of the last release for a HelmRelease."""
        if self.kind is KUSTOMIZATION:
            return self.status.get("lastAppliedRevision")
        if self.kind is HELM_RELEASE:
            history = self.status.get("history") or []
            if history and isinstance(history[0], Mapping) and history[0].get("chartVersion"):
                return str(history[0]["chartVersion"])
            return self.status.get("lastAttemptedRevision")
        artifact = self.status.get("artifact") or {}
        return artifact.get("revision")

    @property
    def depends_on(self) -> tuple[ObjectRef, ...]:
        """spec.dependsOn, the namespace defaulting to the object's own."""
        refs = []
        for dep in self.spec.get("dependsOn") or []:
            if isinstance(dep, Mapping) and dep.get("name"):
                refs.append(ObjectRef(self.kind.kind, str(dep.get("namespace") or self.namespace), str(dep["name"])))
        return tuple(refs)

    @property
    def source_ref(self) -> ObjectRef | None:
        """The source this object reads from (Kustomization sourceRef, HelmRelease chart source,
        HelmChart sourceRef)."""
        if self.kind is KUSTOMIZATION or self.kind is HELM_CHART:
            ref = self.spec.get("sourceRef") or {}
            if ref.get("name"):
                return ObjectRef(
                    str(ref.get("kind", "")), str(ref.get("namespace") or self.namespace), str(ref["name"])
                )
        if self.kind is HELM_RELEASE:
            chart_ref = self.spec.get("chartRef") or {}
            if chart_ref.get("name"):
                return ObjectRef(
                    str(chart_ref.get("kind", OCI_REPOSITORY.kind)),
                    str(chart_ref.get("namespace") or self.namespace),
                    str(chart_ref["name"]),
                )
            chart = self.helm_chart_ref
            if chart is not None:
                return chart
        return None

    @property
    def helm_chart_ref(self) -> ObjectRef | None:
        """For a HelmRelease using chart.spec: the HelmChart helm-controller creates for it,
        ``<namespace>-<name>`` in the namespace of the chart's source."""
        if self.kind is not HELM_RELEASE:
            return None
        chart = (self.spec.get("chart") or {}).get("spec") or {}
        source = chart.get("sourceRef") or {}
        if not source.get("name"):
            return None
        namespace = str(source.get("namespace") or self.namespace)
        return ObjectRef(HELM_CHART.kind, namespace, f"{self.namespace}-{self.name}")

    @property
    def chart_source_ref(self) -> ObjectRef | None:
        """For a HelmRelease using chart.spec: the HelmRepository/GitRepository/Bucket it names."""
        chart = (self.spec.get("chart") or {}).get("spec") or {}
        source = chart.get("sourceRef") or {}
        if self.kind is not HELM_RELEASE or not source.get("name"):
            return None
        return ObjectRef(
            str(source.get("kind", HELM_REPOSITORY.kind)),
            str(source.get("namespace") or self.namespace),
            str(source["name"]),
        )

    @property
    def is_oci_helm_repository(self) -> bool:
        return self.kind is HELM_REPOSITORY and self.spec.get("type") == "oci"

    @property
    def inventory(self) -> tuple[ObjectKey, ...]:
        """``status.inventory.entries`` as object keys; an entry whose id cannot be parsed is
        left out."""
        entries = (self.status.get("inventory") or {}).get("entries") or []
        parsed = []
        for entry in entries:
            if isinstance(entry, Mapping) and entry.get("id"):
                try:
                    parsed.append(parse_inventory_id(str(entry["id"]), str(entry.get("v", ""))))
                except ValueError:
                    continue
        return tuple(parsed)


def short_revision(revision: str | None, digits: int = 8) -> str:
    """main@sha1:1a2b3c4d..., v1.2.3@sha256:abcd..., sha256:abcd... shortened to ``digits`` hex."""
    if not revision:
        return ""
    prefix, sep, digest = revision.rpartition(":")
    if sep and len(digest) > digits and all(c in "0123456789abcdef" for c in digest):
        return f"{prefix}:{digest[:digits]}"
    return revision
