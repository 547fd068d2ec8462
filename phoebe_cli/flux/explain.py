"""One object's story, the pure part of ``phoebe explain``: the verdict and its root cause, the
chain it hangs on, its source compared with what it applied, a HelmRelease's release history
and what helm-controller does next, and what the user can do about it.

Built from the objects of one run (the status snapshot) and what was read about the object;
no I/O. Blocked-by chains come from flux/tree.py; readiness from flux/objects.py. The
HelmRelease rules are helm-controller v1.6.4's (``api/v2`` ``RetriesExhausted``,
``GetActiveRemediation``; ``internal/reconcile/atomic_release.go`` ``actionForState``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from phoebe_cli.flux.kinds import (
    BUCKET,
    GIT_REPOSITORY,
    HELM_CHART,
    HELM_RELEASE,
    KUSTOMIZATION,
    OCI_REPOSITORY,
    kind_named,
)
from phoebe_cli.flux.objects import DEPENDENCY_NOT_READY, FluxObject, ObjectRef, State
from phoebe_cli.flux.tree import BlockProblem, blocked_by

SUSPENDED_REASON = "Suspended"
RETRIES_EXCEEDED = "RetriesExceeded"


def command_name(ref: ObjectRef) -> str:
    """``hr media/sonarr``: how phoebe's commands take this object."""
    kind = kind_named(ref.kind)
    short = kind.short_name if kind is not None else ref.kind.lower()
    return f"{short} {ref.namespace}/{ref.name}"


def subject(ref: ObjectRef) -> str:
    """``HelmRelease media/sonarr``."""
    return f"{ref.kind} {ref.namespace}/{ref.name}"


# --- the verdict -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Verdict:
    """Ready or not, since when, and the one-line root cause."""

    subject: ObjectRef
    state: State
    since: str | None  # when Ready last changed (else when the object was made)
    cause: ObjectRef | None  # the object whose own reason explains it (None when ready)
    reason: str  # the cause's own reason (its Ready reason, Suspended, NotFound ...)
    message: str  # the cause's own message, one line
    blocked_by: tuple[ObjectRef, ...] = ()  # the dependencies followed, nearest first
    problem: BlockProblem | None = None  # the chain ends in a cycle or a missing object

    @property
    def ready(self) -> bool:
        return self.state is State.READY

    @property
    def line(self) -> str:
        """``not ready: blocked by Kustomization rook-ceph/rook-ceph-cluster — ReconciliationFailed: …``"""
        if self.state is State.READY:
            return "ready" + (f": {self.message}" if self.message else "")
        if self.state is State.SUSPENDED:
            return "suspended: Flux does not reconcile it until it is resumed"
        head = {State.FAILED: "not ready", State.PROGRESSING: "in progress", State.UNKNOWN: "unknown"}[self.state]
        because = f"{self.reason}: {self.message}" if self.message else self.reason
        if self.blocked_by:
            path = " ← ".join(subject(ref) for ref in self.blocked_by)
            return f"{head}: blocked by {path} — {because}"
        if self.cause is not None and self.cause != self.subject:
            return f"{head}: its source {subject(self.cause)} is not ready — {because}"
        return f"{head}: {because}" if because else head


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _own_reason(obj: FluxObject) -> tuple[str, str]:
    if obj.suspended:
        return SUSPENDED_REASON, "spec.suspend is true"
    stalled = obj.condition("Stalled")
    if stalled is not None and stalled.is_true:
        return stalled.reason, _one_line(stalled.message)
    return (obj.reason or obj.state.value), _one_line(obj.message)


def _since(obj: FluxObject) -> str | None:
    ready = obj.ready
    return ready.last_transition if ready is not None and ready.last_transition else obj.created


def verdict(obj: FluxObject, objects: Mapping[ObjectRef, FluxObject]) -> Verdict:
    state = obj.state
    since = _since(obj)
    if state is State.READY:
        return Verdict(obj.ref, state, since, None, obj.reason, _one_line(obj.message))
    if state is State.SUSPENDED:
        return Verdict(obj.ref, state, since, obj.ref, *_own_reason(obj))
    chain = blocked_by(obj, objects)
    if chain is not None:
        followed = chain.chain[1:]
        if chain.problem is BlockProblem.CYCLE:
            return Verdict(
                obj.ref,
                state,
                since,
                chain.cause,
                "DependencyCycle",
                "the dependencies form a cycle",
                followed,
                chain.problem,
            )
        if chain.problem is BlockProblem.MISSING:
            return Verdict(
                obj.ref, state, since, chain.cause, "NotFound", "the dependency does not exist", followed, chain.problem
            )
        cause = objects[chain.cause]
        return Verdict(obj.ref, state, since, chain.cause, *_own_reason(cause), followed)
    if obj.reason == DEPENDENCY_NOT_READY:
        # Flux waits on a suspended dependency that is not Ready; tree.blocked_by stops there.
        suspended = next((d for d in obj.depends_on if d in objects and objects[d].suspended), None)
        if suspended is not None:
            return Verdict(obj.ref, state, since, suspended, *_own_reason(objects[suspended]), (suspended,))
    source = _failing_source(obj, objects)
    if source is not None:
        return Verdict(obj.ref, state, since, source.ref, *_own_reason(source))
    return Verdict(obj.ref, state, since, obj.ref, *_own_reason(obj))


def _failing_source(obj: FluxObject, objects: Mapping[ObjectRef, FluxObject]) -> FluxObject | None:
    """The source (or the chart's source behind a HelmChart) whose failure keeps ``obj`` from
    its artifact, when the object does not succeed either."""
    found = None
    ref = obj.source_ref
    seen = {obj.ref}
    while ref is not None and ref not in seen:
        seen.add(ref)
        source = objects.get(ref)
        if source is None or source.state in (State.READY, State.PROGRESSING):
            break
        found = source
        ref = source.source_ref if source.kind is HELM_CHART else None
    return found


# --- the chain ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ChainLink:
    relation: str  # dependsOn, blocked by, source, chart, chart source, applied by
    ref: ObjectRef
    state: State | None  # None: not found, or not allowed to read
    reason: str
    message: str
    note: str = ""  # "not found", "not allowed"


def _link(
    relation: str, ref: ObjectRef, objects: Mapping[ObjectRef, FluxObject], denied: frozenset[ObjectRef]
) -> ChainLink:
    obj = objects.get(ref)
    if obj is None:
        return ChainLink(relation, ref, None, "", "", "not allowed" if ref in denied else "not found")
    reason, message = _own_reason(obj)
    return ChainLink(relation, ref, obj.state, reason, message)


def chain_links(
    obj: FluxObject,
    objects: Mapping[ObjectRef, FluxObject],
    *,
    parent: ObjectRef | None,
    verdict_: Verdict,
    denied: frozenset[ObjectRef] = frozenset(),
) -> tuple[ChainLink, ...]:
    """What the object hangs on, each with its status: its dependencies (and, past the first,
    the blocked-by chain to the root cause), its source, a HelmRelease's chart and the chart's
    source, and the Kustomization that applied it."""
    links = [_link("dependsOn", dep, objects, denied) for dep in obj.depends_on]
    direct = set(obj.depends_on)
    links.extend(_link("blocked by", ref, objects, denied) for ref in verdict_.blocked_by if ref not in direct)
    source = obj.source_ref
    if source is not None:
        relation = "chart" if obj.kind is HELM_RELEASE else "source"
        links.append(_link(relation, source, objects, denied))
        chart_source = obj.chart_source_ref
        if chart_source is None and source.kind == HELM_CHART.kind and source in objects:
            chart_source = objects[source].source_ref
        if chart_source is not None:
            links.append(_link("chart source", chart_source, objects, denied))
    if parent is not None:
        links.append(_link("applied by", parent, objects, denied))
    return tuple(links)


# --- the source --------------------------------------------------------------------------------
@dataclass(frozen=True)
class SourceView:
    """The source's artifact against what the object applied."""

    ref: ObjectRef
    state: State | None
    revision: str | None  # the artifact's revision
    digest: str | None
    fetched: str | None  # when the artifact was last updated
    last_applied: str | None  # Kustomization lastAppliedRevision; HelmRelease: the last release's chart
    last_attempted: str | None

    @property
    def applied_current(self) -> bool:
        return bool(self.revision) and _same_revision(self.last_applied, self.revision)

    @property
    def attempted_current(self) -> bool:
        return bool(self.revision) and _same_revision(self.last_attempted, self.revision)


def _same_revision(applied: str | None, revision: str | None) -> bool:
    """Whether what the object applied is the source's revision. A HelmRelease records a chart
    version: ``1.2.3`` from a HelmChart (whose artifact says ``1.2.3``), and from an
    OCIRepository (``1.2.3@sha256:<hex>``) the version with the digest's first 12 hex digits as
    build metadata, ``1.2.3+<hex[:12]>``, as the real helm-controller v1.6.4 writes it."""
    if not applied or not revision:
        return False
    if applied == revision:
        return True
    version, at, digest = revision.partition("@")
    if not at:
        return False
    base, plus, build = applied.partition("+")
    hexes = digest.rpartition(":")[2]
    return applied == version or (bool(plus) and base == version and len(build) >= 7 and hexes.startswith(build))


def source_view(obj: FluxObject, objects: Mapping[ObjectRef, FluxObject]) -> SourceView | None:
    ref = obj.source_ref
    if ref is None:
        return None
    source = objects.get(ref)
    artifact: Mapping[str, Any] = (source.status.get("artifact") or {}) if source is not None else {}
    if obj.kind is HELM_RELEASE:
        # the newest release that was deployed (a failed one was attempted, not applied)
        deployed = [h for h in _history(obj.status) if h.status == "deployed" and h.chart_version]
        applied = deployed[0].chart_version if deployed else None
    else:
        applied = obj.status.get("lastAppliedRevision")
    return SourceView(
        ref=ref,
        state=source.state if source is not None else None,
        revision=artifact.get("revision"),
        digest=artifact.get("digest"),
        fetched=artifact.get("lastUpdateTime"),
        last_applied=applied,
        last_attempted=obj.status.get("lastAttemptedRevision"),
    )


# --- a HelmRelease -----------------------------------------------------------------------------
@dataclass(frozen=True)
class ReleaseTest:
    name: str
    phase: str  # Succeeded, Failed, Running ...


@dataclass(frozen=True)
class ReleaseSnapshot:
    """One entry of ``status.history``, newest first."""

    version: int
    chart_name: str
    chart_version: str
    app_version: str
    status: str  # deployed, failed, superseded, uninstalled ...
    digest: str
    config_digest: str
    first_deployed: str | None
    last_deployed: str | None
    tests: tuple[ReleaseTest, ...]


@dataclass(frozen=True)
class ReleaseView:
    history: tuple[ReleaseSnapshot, ...]
    install_failures: int
    upgrade_failures: int
    failures: int
    install_retries: int  # spec.install.remediation.retries (negative: for ever)
    upgrade_retries: int
    upgrade_strategy: str  # rollback | uninstall
    last_action: str | None  # status.lastAttemptedReleaseAction: install | upgrade
    retries_exhausted: bool
    next_step: str  # what helm-controller will do next, in words


def _count(status: Mapping[str, Any], key: str) -> int:
    value = status.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _history(status: Mapping[str, Any]) -> tuple[ReleaseSnapshot, ...]:
    found = []
    for entry in status.get("history") or []:
        if not isinstance(entry, Mapping):
            continue
        hooks = entry.get("testHooks") or {}
        tests = (
            tuple(
                ReleaseTest(str(name), str((hook or {}).get("phase", "")))
                for name, hook in sorted(hooks.items())
                if isinstance(hook, Mapping | type(None))
            )
            if isinstance(hooks, Mapping)
            else ()
        )
        found.append(
            ReleaseSnapshot(
                version=_count(entry, "version"),
                chart_name=str(entry.get("chartName", "")),
                chart_version=str(entry.get("chartVersion", "")),
                app_version=str(entry.get("appVersion", "")),
                status=str(entry.get("status", "")),
                digest=str(entry.get("digest", "")),
                config_digest=str(entry.get("configDigest", "")),
                first_deployed=entry.get("firstDeployed"),
                last_deployed=entry.get("lastDeployed"),
                tests=tests,
            )
        )
    return tuple(found)


def _remediation(spec: Mapping[str, Any], action: str) -> Mapping[str, Any]:
    section = spec.get(action) or {}
    remediation = section.get("remediation") if isinstance(section, Mapping) else None
    return remediation if isinstance(remediation, Mapping) else {}


def release_view(obj: FluxObject, objects: Mapping[ObjectRef, FluxObject]) -> ReleaseView | None:
    if obj.kind is not HELM_RELEASE:
        return None
    status = obj.status
    install = _remediation(obj.spec, "install")
    upgrade = _remediation(obj.spec, "upgrade")
    install_retries = _count(install, "retries")
    upgrade_retries = _count(upgrade, "retries")
    strategy = str(upgrade.get("strategy") or "rollback")
    installs, upgrades = _count(status, "installFailures"), _count(status, "upgradeFailures")
    last_action = status.get("lastAttemptedReleaseAction")
    # GetActiveRemediation: the remediation of the last attempted action (upgrade once released).
    history = _history(status)
    action = str(last_action) if last_action in ("install", "upgrade") else ("upgrade" if history else "install")
    failures, retries = (installs, install_retries) if action == "install" else (upgrades, upgrade_retries)
    exhausted = retries >= 0 and failures > retries
    stalled = obj.condition("Stalled")
    if stalled is not None and stalled.is_true and stalled.reason == RETRIES_EXCEEDED:
        exhausted = True
    view = ReleaseView(
        history=history,
        install_failures=installs,
        upgrade_failures=upgrades,
        failures=_count(status, "failures"),
        install_retries=install_retries,
        upgrade_retries=upgrade_retries,
        upgrade_strategy=strategy,
        last_action=str(last_action) if last_action else None,
        retries_exhausted=exhausted,
        next_step="",
    )
    return ReleaseView(**{**view.__dict__, "next_step": _next_release_step(obj, view, action, objects)})


def _attempts(failures: int, retries: int) -> str:
    if retries < 0:
        return f"failure {failures}, retried for ever"
    return f"failure {failures} of {retries + 1} attempts"


def _next_release_step(obj: FluxObject, view: ReleaseView, action: str, objects: Mapping[ObjectRef, FluxObject]) -> str:
    interval = str(obj.spec.get("interval") or "its interval")
    if obj.suspended:
        return "nothing: the HelmRelease is suspended"
    if view.retries_exhausted:
        return (
            f"nothing: the {action} failed {view.install_failures if action == 'install' else view.upgrade_failures} "
            "time(s) and no retries remain; it acts again when the spec or values change, when the failure "
            "counts are reset (resetAt) or when an action is forced (forceAt)"
        )
    if obj.reason == DEPENDENCY_NOT_READY or any(
        d not in objects or objects[d].state is not State.READY for d in obj.depends_on
    ):
        return "wait for its dependencies, then install or upgrade"
    chart = obj.source_ref
    if chart is not None and chart in objects and objects[chart].state is not State.READY:
        return f"wait for {subject(chart)} to have an artifact, then install or upgrade"
    if obj.state is State.READY:
        return f"upgrade when the chart or values change; look for drift every {interval}"
    failures = view.install_failures if action == "install" else view.upgrade_failures
    retries = view.install_retries if action == "install" else view.upgrade_retries
    if failures:
        if action == "install":
            return f"uninstall the failed release and install again ({_attempts(failures, retries)})"
        remedy = "roll back" if view.upgrade_strategy == "rollback" else "uninstall"
        return f"{remedy} the failed release and upgrade again ({_attempts(failures, retries)})"
    return f"{action} the release"


# --- what to do next ---------------------------------------------------------------------------
@dataclass(frozen=True)
class NextStep:
    command: str
    why: str


_CASCADING_SOURCES = frozenset({GIT_REPOSITORY.kind, OCI_REPOSITORY.kind, BUCKET.kind})


def _refresh_command(obj: FluxObject, source: ObjectRef) -> str:
    """Fetch ``source`` again and apply it: ``sync SOURCE --cascade`` waits for the
    Kustomizations reading a Git, OCI or Bucket source (phoebe sync refuses it for other kinds);
    a HelmRelease is synced with its sources first (``--with-source``: its HelmChart and the
    chart's repository, or its chartRef)."""
    if obj.kind is KUSTOMIZATION and source.kind in _CASCADING_SOURCES:
        return f"phoebe sync {command_name(source)} --cascade"
    return f"phoebe sync {command_name(obj.ref)} --with-source"


def next_steps(
    obj: FluxObject,
    verdict_: Verdict,
    objects: Mapping[ObjectRef, FluxObject],
    *,
    parent: ObjectRef | None,
    source: SourceView | None,
    release: ReleaseView | None,
    unhealthy: Sequence[tuple[str, str, str]] = (),  # (kind, namespace, name) of applied objects not healthy
) -> tuple[NextStep, ...]:
    """Concrete commands, most useful first. Only commands phoebe (or kubectl) accepts as written."""
    steps: list[NextStep] = []
    me = command_name(obj.ref)
    if obj.suspended:
        steps.append(NextStep(f"phoebe resume {me}", "it is suspended: resume it and reconcile it now"))
    parent_obj = objects.get(parent) if parent is not None else None
    if parent_obj is not None and parent_obj.suspended:
        steps.append(
            NextStep(
                f"phoebe resume {command_name(parent_obj.ref)}",
                f"{subject(parent_obj.ref)}, which applies it, is suspended: changes in Git do not reach it",
            )
        )
    cause = verdict_.cause
    if cause is not None and cause != obj.ref:
        cause_obj = objects.get(cause)
        if cause_obj is None:
            steps.append(
                NextStep(
                    f"phoebe status {command_name(cause).split(' ')[0]} {cause.namespace}/{cause.name}",
                    f"{subject(cause)} does not exist (or cannot be read): check the dependsOn names",
                )
            )
        elif cause_obj.suspended:
            steps.append(
                NextStep(f"phoebe resume {command_name(cause)}", f"{subject(cause)} is suspended and holds it back")
            )
        else:
            steps.append(NextStep(f"phoebe explain {command_name(cause)}", f"the root cause is {subject(cause)}"))
            if cause_obj.kind.is_source:
                steps.append(
                    NextStep(
                        _refresh_command(obj, cause),
                        "after fixing the source: fetch it again and apply what reads from it",
                    )
                )
            else:
                steps.append(NextStep(f"phoebe sync {command_name(cause)}", "after fixing it: reconcile it again now"))
    if release is not None and release.retries_exhausted and not obj.suspended:
        steps.append(
            NextStep(
                f"phoebe sync {me} --reset",
                "the retries are exhausted: reset the failure counts so helm-controller tries again",
            )
        )
    # A blocked object cannot apply anything: its source is not what holds it back.
    if source is not None and not obj.suspended and source.state is State.READY and not verdict_.blocked_by:
        applied = source.applied_current or (obj.kind is HELM_RELEASE and release is not None and not release.history)
        # Attempted but not applied is the object's own failure (the steps below); not even
        # attempted means it is behind its source.
        attempted = source.last_applied or source.last_attempted
        if not applied and source.revision and attempted and not source.attempted_current:
            steps.append(
                NextStep(
                    _refresh_command(obj, source.ref), f"it has not applied the source's revision {source.revision} yet"
                )
            )
        elif verdict_.ready and source.ref.kind in (GIT_REPOSITORY.kind, OCI_REPOSITORY.kind):
            steps.append(
                NextStep(
                    _refresh_command(obj, source.ref),
                    "to fetch the source now and apply what changed, not at the next interval",
                )
            )
    own_failure = verdict_.cause == obj.ref and not obj.suspended and verdict_.state is not State.READY
    if own_failure and not (release is not None and release.retries_exhausted):
        steps.append(
            NextStep(
                f"phoebe logs {obj.kind.short_name}/{obj.namespace}/{obj.name} --level error",
                "the controller's errors for it",
            )
        )
        steps.append(NextStep(f"phoebe sync {me}", "after fixing the cause: reconcile it again now"))
    for kind, namespace, name in unhealthy:
        if kind == "Pod":
            steps.append(NextStep(f"kubectl -n {namespace} logs pod/{name} --previous", "why its container stopped"))
        else:
            steps.append(
                NextStep(f"kubectl -n {namespace} describe {kind.lower()} {name}", f"{kind} {name} is not healthy")
            )
    seen: set[str] = set()
    unique = []
    for step in steps:
        if step.command not in seen:
            seen.add(step.command)
            unique.append(step)
    return tuple(unique)
