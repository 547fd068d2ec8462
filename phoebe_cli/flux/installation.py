"""What is installed: the Flux kinds a cluster serves and the state of the Flux controllers.

Pure model: built from discovery answers and Deployment objects, judged here, rendered elsewhere.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from phoebe_cli.flux.kinds import ALL_KINDS, FluxKind

PART_OF_FLUX_SELECTOR = "app.kubernetes.io/part-of=flux"
MANAGER_CONTAINER = "manager"


class InstallState(StrEnum):
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    NOT_INSTALLED = "not-installed"


@dataclass(frozen=True)
class KindReport:
    kind: str
    group: str
    installed: bool
    versions: tuple[str, ...]  # served, most preferred first
    part_of_flux: bool

    @property
    def preferred_version(self) -> str | None:
        return self.versions[0] if self.versions else None


@dataclass(frozen=True)
class ControllerReport:
    name: str
    namespace: str
    ready: bool
    replicas: int
    ready_replicas: int
    image: str | None
    version: str | None
    message: str


@dataclass(frozen=True)
class CheckReport:
    context: str
    server: str
    server_version: str
    flux_namespace: str
    flux_version: str | None
    kinds: tuple[KindReport, ...]
    controllers: tuple[ControllerReport, ...]
    problems: tuple[str, ...]

    @property
    def state(self) -> InstallState:
        if not any(k.installed and k.part_of_flux for k in self.kinds):
            return InstallState.NOT_INSTALLED
        return InstallState.UNHEALTHY if self.problems else InstallState.HEALTHY


def kind_reports(
    served: Mapping[tuple[str, str], Sequence[str]], kinds: Iterable[FluxKind] = ALL_KINDS
) -> tuple[KindReport, ...]:
    """One report per known kind; ``served`` maps (group, kind) to served versions."""
    reports = []
    for kind in kinds:
        versions = tuple(served.get((kind.group, kind.kind), ()))
        reports.append(KindReport(kind.kind, kind.group, bool(versions), versions, kind.part_of_flux))
    return tuple(reports)


def controller_report(deployment: Mapping[str, Any]) -> ControllerReport:
    """Judge one controller Deployment: ready when every wanted replica is ready and the
    rollout of the current generation is complete."""
    metadata = deployment.get("metadata") or {}
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    wanted = int(spec.get("replicas", 1))
    ready_replicas = int(status.get("readyReplicas") or 0)
    updated = int(status.get("updatedReplicas") or 0)
    generation = int(metadata.get("generation") or 0)
    observed = int(status.get("observedGeneration") or 0)
    conditions = {c.get("type"): c for c in status.get("conditions") or [] if isinstance(c, Mapping)}
    available = conditions.get("Available") or {}

    image = _manager_image(spec)
    version = (metadata.get("labels") or {}).get("app.kubernetes.io/version") or _image_tag(image)

    if wanted == 0:
        ready, message = False, "scaled to zero replicas"
    elif observed < generation:
        ready, message = False, "rollout of the latest spec not yet observed"
    elif ready_replicas < wanted:
        ready, message = False, f"{ready_replicas}/{wanted} replicas ready"
        if available.get("status") == "False" and available.get("message"):
            message += f": {available['message']}"
    elif updated < wanted:
        ready, message = False, f"rollout in progress: {updated}/{wanted} replicas updated"
    else:
        ready, message = True, f"{ready_replicas}/{wanted} replicas ready"

    return ControllerReport(
        name=str(metadata.get("name", "")),
        namespace=str(metadata.get("namespace", "")),
        ready=ready,
        replicas=wanted,
        ready_replicas=ready_replicas,
        image=image,
        version=version,
        message=message,
    )


def _manager_image(spec: Mapping[str, Any]) -> str | None:
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    for container in containers:
        if container.get("name") == MANAGER_CONTAINER:
            return str(container.get("image"))
    return str(containers[0].get("image")) if containers else None


def _image_tag(image: str | None) -> str | None:
    if not image:
        return None
    reference = image.split("@", 1)[0]
    name_part = reference.rsplit("/", 1)[-1]
    return name_part.split(":", 1)[1] if ":" in name_part else None


def flux_version(controllers: Iterable[ControllerReport]) -> str | None:
    """The Flux distribution version the controllers are labelled with, when they agree on one."""
    labelled = Counter(c.version for c in controllers if c.version and c.version.startswith("v2."))
    return labelled.most_common(1)[0][0] if labelled else None


def problems_of(
    kinds: Sequence[KindReport],
    controllers: Sequence[ControllerReport],
    flux_namespace: str,
    namespace_exists: bool | None,
) -> tuple[str, ...]:
    """Why an installed Flux is not healthy; empty when it is."""
    if not any(k.installed and k.part_of_flux for k in kinds):
        return ("no Flux CRDs are served by this cluster",)
    found: list[str] = []
    if not controllers:
        if namespace_exists is False:
            found.append(f"namespace {flux_namespace} does not exist")
        found.append(
            f"no Flux controllers in namespace {flux_namespace} (Deployments labelled {PART_OF_FLUX_SELECTOR})"
        )
    for controller in controllers:
        if not controller.ready:
            found.append(f"{controller.name} is not ready: {controller.message}")
    return tuple(found)


def feature_gates(deployment: Mapping[str, Any]) -> dict[str, bool]:
    """The ``--feature-gates`` a controller Deployment's manager container runs with (each flag a
    comma-separated list of NAME=BOOL; a later setting wins, as Go's featuregate parses them)."""
    gates: dict[str, bool] = {}
    containers = ((deployment.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers") or []
    for container in containers:
        if not isinstance(container, Mapping) or container.get("name") != MANAGER_CONTAINER:
            continue
        args = [str(a) for a in (container.get("args") or [])]
        for index, arg in enumerate(args):
            if arg.startswith("--feature-gates="):
                value = arg.partition("=")[2]
            elif arg == "--feature-gates" and index + 1 < len(args):
                value = args[index + 1]
            else:
                continue
            for entry in value.split(","):
                name, sep, flag = entry.partition("=")
                if sep and flag.strip() in _GO_BOOLS:
                    gates[name.strip()] = _GO_BOOLS[flag.strip()]
    return gates


# strconv.ParseBool
_GO_BOOLS = {
    **dict.fromkeys(("1", "t", "T", "true", "TRUE", "True"), True),
    **dict.fromkeys(("0", "f", "F", "false", "FALSE", "False"), False),
}


STRICT_SUBSTITUTION = "StrictPostBuildSubstitutions"
# kustomize-controller turned the gate on by default in v1.9 (Flux 2.9): opt-out since then.
STRICT_BY_DEFAULT_SINCE = (1, 9)
_IMAGE_VERSION = re.compile(r"kustomize-controller:v?(\d+)\.(\d+)")


def kustomize_controller_version(image: str) -> tuple[int, int] | None:
    """(major, minor) of a kustomize-controller image reference, when its tag says."""
    match = _IMAGE_VERSION.search(image)
    return (int(match.group(1)), int(match.group(2))) if match else None


def strict_substitution(gates: Mapping[str, bool], version: tuple[int, int] | None) -> bool | None:
    """Whether kustomize-controller fails a build on an unset variable: its explicit feature gate,
    else its version's default (on from v1.9); None when neither is known."""
    if STRICT_SUBSTITUTION in gates:
        return gates[STRICT_SUBSTITUTION]
    if version is not None:
        return version >= STRICT_BY_DEFAULT_SINCE
    return None


def helm3_defaults_of(deployment: Mapping[str, Any]) -> bool:
    """Whether a running helm-controller Deployment has the ``UseHelm3Defaults`` gate on (off by
    default in v1.6: Helm 4's behaviours)."""
    return feature_gates(deployment).get("UseHelm3Defaults", False)


def strict_substitution_of(deployment: Mapping[str, Any]) -> bool | None:
    """The same for a running kustomize-controller Deployment (its args and its image)."""
    containers = ((deployment.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers") or []
    image = next(
        (
            str(c.get("image") or "")
            for c in containers
            if isinstance(c, Mapping) and c.get("name") == MANAGER_CONTAINER
        ),
        "",
    )
    return strict_substitution(feature_gates(deployment), kustomize_controller_version(image))
