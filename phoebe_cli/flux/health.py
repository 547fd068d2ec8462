"""Health of applied objects by kstatus' rules, as kustomize-controller's health checks judge
them (``fluxcd/cli-utils`` ``pkg/kstatus/status``: ``Compute``, the generic checks, then the
per-kind rules). Pure: built from the JSON of one object.

The statuses are kstatus' own: Current, InProgress, Failed, Terminating. A Pod's containers that
keep failing are reported with their last termination (reason, exit code), which kstatus does not
say but is what a user needs next.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

# The kinds kstatus has its own rules for and whose health can change (ConfigMap, Secret,
# CronJob and PodDisruptionBudget are always Current; Secrets are never read).
WORKLOAD_KINDS: tuple[tuple[str, str], ...] = (
    ("apps", "Deployment"),
    ("apps", "StatefulSet"),
    ("apps", "DaemonSet"),
    ("apps", "ReplicaSet"),
    ("batch", "Job"),
    ("", "Pod"),
    ("", "PersistentVolumeClaim"),
)
# Kinds whose Pods are worth reading when they are not healthy (they run Pods from a selector).
POD_OWNERS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"})
# Waiting reasons that mean a container will not start on its own.
STUCK_WAITING = frozenset(
    {
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)


class Health(StrEnum):
    CURRENT = "Current"
    IN_PROGRESS = "InProgress"
    FAILED = "Failed"
    TERMINATING = "Terminating"
    NOT_FOUND = "NotFound"  # in the inventory, gone from the cluster


@dataclass(frozen=True)
class HealthResult:
    status: Health
    reason: str
    message: str

    @property
    def healthy(self) -> bool:
        return self.status is Health.CURRENT


def _int(obj: Mapping[str, Any], *path: str, default: int = 0) -> int:
    value: Any = obj
    for key in path:
        if not isinstance(value, Mapping):
            return default
        value = value.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        return default
    return value


def _str(obj: Mapping[str, Any], *path: str, default: str = "") -> str:
    value: Any = obj
    for key in path:
        if not isinstance(value, Mapping):
            return default
        value = value.get(key)
    return value if isinstance(value, str) else default


def _conditions(obj: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    found = (obj.get("status") or {}).get("conditions") if isinstance(obj.get("status"), Mapping) else None
    return [c for c in found or [] if isinstance(c, Mapping)]


def _current(message: str) -> HealthResult:
    return HealthResult(Health.CURRENT, "", message)


def _in_progress(reason: str, message: str) -> HealthResult:
    return HealthResult(Health.IN_PROGRESS, reason, message)


def _failed(reason: str, message: str) -> HealthResult:
    return HealthResult(Health.FAILED, reason, message)


def compute_health(obj: Mapping[str, Any]) -> HealthResult:
    """kstatus ``Compute``: deletion, generation, Reconciling/Stalled, then the kind's rules,
    then a Ready condition; anything else is Current."""
    meta = obj.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        return HealthResult(Health.TERMINATING, "", "Resource scheduled for deletion")
    kind = str(obj.get("kind", ""))
    generation = meta.get("generation")
    observed = (obj.get("status") or {}).get("observedGeneration") if isinstance(obj.get("status"), Mapping) else None
    if isinstance(generation, int) and isinstance(observed, int) and observed != generation:
        return _in_progress(
            "LatestGenerationNotObserved",
            f"{kind} generation is {generation}, but latest observed generation is {observed}",
        )
    for cond in _conditions(obj):
        if cond.get("type") == "Reconciling" and cond.get("status") == "True":
            return _in_progress(str(cond.get("reason", "")), str(cond.get("message", "")))
        if cond.get("type") == "Stalled" and cond.get("status") == "True":
            return _failed(str(cond.get("reason", "")), str(cond.get("message", "")))
    group = str(obj.get("apiVersion", "")).rpartition("/")[0]
    rule = _RULES.get((group, kind))
    if rule is not None:
        return rule(obj)
    for cond in _conditions(obj):
        if cond.get("type") == "Ready":
            if cond.get("status") == "True":
                return _current("Resource is Ready")
            return _in_progress(str(cond.get("reason", "")), str(cond.get("message", "")))
    return _current("Resource is current")


def _deployment(obj: Mapping[str, Any]) -> HealthResult:
    spec_deadline = (obj.get("spec") or {}).get("progressDeadlineSeconds")
    progressing = not isinstance(spec_deadline, int)
    available = False
    for cond in _conditions(obj):
        if cond.get("type") == "Progressing":
            if cond.get("reason") == "ProgressDeadlineExceeded":
                return _failed("ProgressDeadlineExceeded", str(cond.get("message") or "Progress deadline exceeded"))
            if cond.get("status") == "True" and cond.get("reason") == "NewReplicaSetAvailable":
                progressing = True
        elif cond.get("type") == "Available" and cond.get("status") == "True":
            available = True
    spec = _int(obj, "spec", "replicas", default=1)
    replicas = _int(obj, "status", "replicas")
    updated = _int(obj, "status", "updatedReplicas")
    ready = _int(obj, "status", "readyReplicas")
    available_replicas = _int(obj, "status", "availableReplicas")
    if spec > replicas:
        return _in_progress("LessReplicas", f"Replicas: {replicas}/{spec}")
    if spec > updated:
        return _in_progress("LessUpdated", f"Updated: {updated}/{spec}")
    if replicas > spec:
        return _in_progress("ExtraPods", f"Pending termination: {replicas - spec}")
    if updated > available_replicas:
        return _in_progress("LessAvailable", f"Available: {available_replicas}/{updated}")
    if spec > ready:
        return _in_progress("LessReady", f"Ready: {ready}/{spec}")
    if not progressing:
        return _in_progress("ReplicaSetNotAvailable", "ReplicaSet not Available")
    if not available:
        return _in_progress("DeploymentNotAvailable", "Deployment not Available")
    return _current(f"Deployment is available. Replicas: {replicas}")


def _statefulset(obj: Mapping[str, Any]) -> HealthResult:
    if _str(obj, "spec", "updateStrategy", "type") == "OnDelete":
        return _current("StatefulSet is using the ondelete update strategy")
    spec = _int(obj, "spec", "replicas", default=1)
    ready = _int(obj, "status", "readyReplicas")
    current = _int(obj, "status", "currentReplicas")
    updated = _int(obj, "status", "updatedReplicas")
    replicas = _int(obj, "status", "replicas")
    partition = _int(obj, "spec", "updateStrategy", "rollingUpdate", "partition", default=-1)
    if spec > replicas:
        return _in_progress("LessReplicas", f"Replicas: {replicas}/{spec}")
    if spec > ready:
        return _in_progress("LessReady", f"Ready: {ready}/{spec}")
    if replicas > spec:
        return _in_progress("ExtraPods", f"Pending termination: {replicas - spec}")
    if partition != -1:
        if updated < spec - partition:
            return _in_progress("PartitionRollout", f"updated: {updated}/{spec - partition}")
        return _current(f"Partition rollout complete. updated: {updated}")
    if spec > current:
        return _in_progress("LessCurrent", f"current: {current}/{spec}")
    if _str(obj, "status", "currentRevision") != _str(obj, "status", "updateRevision"):
        return _in_progress("RevisionMismatch", "Waiting for updated revision to match current")
    return _current(f"All replicas scheduled as expected. Replicas: {replicas}")


def _daemonset(obj: Mapping[str, Any]) -> HealthResult:
    if not isinstance((obj.get("metadata") or {}).get("generation"), int):
        return _in_progress("NoGeneration", "DaemonSet metadata.generation not found")
    if not isinstance((obj.get("status") or {}).get("observedGeneration"), int):
        return _in_progress("NoObservedGeneration", "DaemonSet status.observedGeneration not found")
    desired = _int(obj, "status", "desiredNumberScheduled", default=-1)
    if desired == -1:
        return _in_progress("NoDesiredNumber", "Missing .status.desiredNumberScheduled")
    for field, reason, label in (
        ("currentNumberScheduled", "LessCurrent", "Current"),
        ("updatedNumberScheduled", "LessUpdated", "Updated"),
        ("numberAvailable", "LessAvailable", "Available"),
        ("numberReady", "LessReady", "Ready"),
    ):
        have = _int(obj, "status", field)
        if desired > have:
            return _in_progress(reason, f"{label}: {have}/{desired}")
    return _current(f"All replicas scheduled as expected. Replicas: {desired}")


def _replicaset(obj: Mapping[str, Any]) -> HealthResult:
    for cond in _conditions(obj):
        if cond.get("type") == "ReplicaFailure" and cond.get("status") == "True":
            return _in_progress("ReplicaFailure", "Replica Failure condition. Check Pods")
    spec = _int(obj, "spec", "replicas", default=1)
    labelled = _int(obj, "status", "fullyLabeledReplicas")
    available = _int(obj, "status", "availableReplicas")
    ready = _int(obj, "status", "readyReplicas")
    replicas = _int(obj, "status", "replicas")
    if spec > labelled:
        return _in_progress("LessLabelled", f"Labelled: {labelled}/{spec}")
    if spec > available:
        return _in_progress("LessAvailable", f"Available: {available}/{spec}")
    if spec > ready:
        return _in_progress("LessReady", f"Ready: {ready}/{spec}")
    if replicas > spec:
        return _in_progress("ExtraPods", f"Pending termination: {replicas - spec}")
    return _current(f"ReplicaSet is available. Replicas: {replicas}")


def _job(obj: Mapping[str, Any]) -> HealthResult:
    parallelism = _int(obj, "spec", "parallelism", default=1)
    completions = _int(obj, "spec", "completions", default=parallelism)
    succeeded = _int(obj, "status", "succeeded")
    active = _int(obj, "status", "active")
    failed = _int(obj, "status", "failed")
    for cond in _conditions(obj):
        if cond.get("type") == "Complete" and cond.get("status") == "True":
            return _current(f"Job Completed. succeeded: {succeeded}/{completions}")
        if cond.get("type") == "Failed" and cond.get("status") == "True":
            detail = str(cond.get("reason") or "")
            message = f"Job Failed. failed: {failed}/{completions}"
            return _failed("JobFailed", f"{message} ({detail})" if detail else message)
    if not _str(obj, "status", "startTime"):
        return _in_progress("JobNotStarted", "Job not started")
    return _current(f"Job in progress. success:{succeeded}, active: {active}, failed: {failed}")


def _pod(obj: Mapping[str, Any]) -> HealthResult:
    phase = _str(obj, "status", "phase")
    conditions = _conditions(obj)
    if phase == "Succeeded":
        return _current("Pod has completed successfully")
    if phase == "Failed":
        return _current("Pod has completed, but not successfully")
    if phase == "Running":
        if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
            return _current("Pod is Ready")
        looping = [p.container for p in container_problems(obj) if p.waiting == "CrashLoopBackOff"]
        if looping:
            return _failed("ContainerCrashLooping", f"Containers in CrashLoop state: {','.join(looping)}")
        return _in_progress("PodRunningNotReady", "Pod is running but is not Ready")
    if phase == "Pending":
        for cond in conditions:
            unschedulable = cond.get("reason") == "Unschedulable"
            if cond.get("type") == "PodScheduled" and cond.get("status") == "False" and unschedulable:
                # kstatus waits 15 s after creation before calling it Failed; phoebe reads a
                # snapshot, where an unschedulable Pod is the answer either way.
                return _failed("PodUnschedulable", str(cond.get("message") or "Pod could not be scheduled"))
        return _in_progress("PodPending", "Pod is in the Pending phase")
    if not phase:
        return _in_progress("PodNotObserved", "Pod phase not available")
    return _in_progress("UnknownPhase", f"unknown phase {phase}")


def _pvc(obj: Mapping[str, Any]) -> HealthResult:
    phase = _str(obj, "status", "phase", default="unknown")
    if phase != "Bound":
        return _in_progress("NotBound", f"PVC is not Bound. phase: {phase}")
    return _current("PVC is Bound")


_RULES = {
    ("apps", "Deployment"): _deployment,
    ("extensions", "Deployment"): _deployment,
    ("apps", "StatefulSet"): _statefulset,
    ("apps", "DaemonSet"): _daemonset,
    ("extensions", "DaemonSet"): _daemonset,
    ("apps", "ReplicaSet"): _replicaset,
    ("extensions", "ReplicaSet"): _replicaset,
    ("batch", "Job"): _job,
    ("", "Pod"): _pod,
    ("", "PersistentVolumeClaim"): _pvc,
}


@dataclass(frozen=True)
class ContainerProblem:
    """A container that is not running as it should: stuck waiting, or restarting."""

    pod: str
    container: str
    waiting: str  # CrashLoopBackOff, ImagePullBackOff ... ("" when not waiting)
    message: str
    restarts: int
    last_reason: str  # the last termination's reason (Error, OOMKilled ...)
    last_exit_code: int | None

    def describe(self) -> str:
        parts = [f"{self.pod}/{self.container}: {self.waiting or 'restarting'}"]
        if self.last_reason or self.last_exit_code is not None:
            last = self.last_reason or "terminated"
            if self.last_exit_code is not None:
                last += f", exit code {self.last_exit_code}"
            parts.append(f"last termination: {last}")
        if self.restarts:
            parts.append(f"{self.restarts} restarts")
        return "; ".join(parts)


def container_problems(pod: Mapping[str, Any]) -> list[ContainerProblem]:
    """Containers (init containers too) stuck waiting for a reason that will not go away by
    itself, with the last termination's reason and exit code."""
    name = str((pod.get("metadata") or {}).get("name", ""))
    status = pod.get("status") or {}
    found = []
    statuses: Sequence[Any] = [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]
    for container in statuses:
        if not isinstance(container, Mapping):
            continue
        waiting = (
            ((container.get("state") or {}).get("waiting") or {}) if isinstance(container.get("state"), Mapping) else {}
        )
        reason = str(waiting.get("reason") or "")
        if reason not in STUCK_WAITING:
            continue
        last = (
            ((container.get("lastState") or {}).get("terminated") or {})
            if isinstance(container.get("lastState"), Mapping)
            else {}
        )
        code = last.get("exitCode")
        found.append(
            ContainerProblem(
                pod=name,
                container=str(container.get("name", "")),
                waiting=reason,
                message=str(waiting.get("message") or ""),
                restarts=int(container.get("restartCount") or 0),
                last_reason=str(last.get("reason") or ""),
                last_exit_code=code if isinstance(code, int) and not isinstance(code, bool) else None,
            )
        )
    return found


def pod_selector(obj: Mapping[str, Any]) -> str | None:
    """The label selector (``k=v,...``) of a workload's Pods, from spec.selector.matchLabels;
    None when it has none phoebe can send as a plain selector."""
    selector = (obj.get("spec") or {}).get("selector") or {}
    labels = selector.get("matchLabels") if isinstance(selector, Mapping) else None
    if not isinstance(labels, Mapping) or not labels:
        return None
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))
