"""Container images of workloads, and how a change moves them (``phoebe diff images``).

Pure: objects in, frozen results out. A workload is an object whose pod template the
Kubernetes API defines: Pod, Deployment, ReplicaSet, StatefulSet, DaemonSet, Job (group
``apps``/``batch``/core) and CronJob (its ``jobTemplate``). Only what such objects declare
counts: an image tag in a HelmRelease's values is not a workload until the chart renders it.

Containers pair by their kind (``initContainers``, ``containers``) and name, as the API server
keys them; a container whose image is the same on both sides is no change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# (group, kind) -> the path from the object to its pod spec
POD_SPEC_PATHS: Mapping[tuple[str, str], tuple[str, ...]] = {
    ("", "Pod"): ("spec",),
    ("apps", "Deployment"): ("spec", "template", "spec"),
    ("apps", "ReplicaSet"): ("spec", "template", "spec"),
    ("apps", "StatefulSet"): ("spec", "template", "spec"),
    ("apps", "DaemonSet"): ("spec", "template", "spec"),
    ("", "ReplicationController"): ("spec", "template", "spec"),
    ("batch", "Job"): ("spec", "template", "spec"),
    ("batch", "CronJob"): ("spec", "jobTemplate", "spec", "template", "spec"),
}
CONTAINER_LISTS = ("initContainers", "containers")  # the order they are listed in
INIT = "init"


@dataclass(frozen=True)
class ImageChange:
    """One container whose image a change moves: ``before``/``after`` None where the container
    (or the whole workload) is not there. ``init``: an init container."""

    container: str
    before: str | None
    after: str | None
    init: bool = False

    @property
    def label(self) -> str:
        return f"{self.container} ({INIT})" if self.init else self.container


def is_workload(obj: Mapping[str, Any] | None) -> bool:
    return obj is not None and _group_kind(obj) in POD_SPEC_PATHS


def _group_kind(obj: Mapping[str, Any]) -> tuple[str, str]:
    return (str(obj.get("apiVersion") or "").rpartition("/")[0], str(obj.get("kind") or ""))


def container_images(obj: Mapping[str, Any] | None) -> dict[tuple[bool, str], str | None]:
    """(init, container name) -> image of every container of a workload; {} for anything else
    (and for a workload without a readable pod spec). An image left out is None."""
    if obj is None:
        return {}
    path = POD_SPEC_PATHS.get(_group_kind(obj))
    if path is None:
        return {}
    spec: Any = obj
    for step in path:
        spec = spec.get(step) if isinstance(spec, Mapping) else None
    if not isinstance(spec, Mapping):
        return {}
    images: dict[tuple[bool, str], str | None] = {}
    for list_name in CONTAINER_LISTS:
        containers = spec.get(list_name)
        for container in containers if isinstance(containers, list) else []:
            if isinstance(container, Mapping):
                image = container.get("image")
                images[(list_name == "initContainers", str(container.get("name", "")))] = (
                    None if image is None else str(image)
                )
    return images


def image_changes(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> tuple[ImageChange, ...]:
    """The containers whose image differs between two versions of one workload (None: the
    workload is created or deleted), init containers first, each list in declared order."""
    old, new = container_images(before), container_images(after)
    order = list(old)
    order.extend(k for k in new if k not in old)
    order.sort(key=lambda k: not k[0])  # stable: init containers first
    return tuple(
        ImageChange(name, old.get((init, name)), new.get((init, name)), init)
        for init, name in order
        if old.get((init, name)) != new.get((init, name))
    )
