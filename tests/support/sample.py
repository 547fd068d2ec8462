"""Load the sample GitOps repository (tests/fixtures/gitops) into a control plane, with the
statuses a cluster running it would have: most things Ready, one failing Kustomization
(rook-ceph/rook-ceph-cluster), one blocked behind it (media/sonarr), one suspended (media/plex).

The repository is read with a deliberately small kustomize reading of its own (resources,
components, namespace, Flux's generated kustomization for a path without one, postBuild
substitution): the test oracle must not share code with phoebe's repo model. Only Flux objects,
ExternalSecrets, HelmCharts (as helm-controller would create them) and Namespaces are created;
everything else a Kustomization would apply is recorded in its inventory.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.cluster.api import Api
from tests.support import fluxstatus

Obj = dict[str, Any]

SAMPLE_ROOT = Path(__file__).resolve().parent.parent / "fixtures" / "gitops"
ROOT_FILES = ("kubernetes/flux/cluster/ks.yaml", "kubernetes/flux/cluster/gitrepository.yaml")
FLUX_MANAGER = "kustomize-controller"
REVISION = f"main@sha1:{fluxstatus.fake_sha('phoebe-sample')}"

FAILING = ("rook-ceph", "rook-ceph-cluster")
BLOCKED = ("media", "sonarr")
SUSPENDED = ("media", "plex")
FAILING_MESSAGE = (
    'Service/rook-ceph/rook-ceph-mgr-dashboard-lb dry-run failed (Invalid): Service "rook-ceph-mgr-dashboard-lb" '
    "is invalid: spec.ports[0].port: Invalid value: 99999: must be between 1 and 65535, inclusive"
)

LOADED_GROUPS = (
    "source.toolkit.fluxcd.io",
    "kustomize.toolkit.fluxcd.io",
    "helm.toolkit.fluxcd.io",
    "external-secrets.io",
)
CLUSTER_SCOPED = {
    "Namespace",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleBinding",
    "ClusterSecretStore",
    "ClusterIssuer",
    "StorageClass",
    "PriorityClass",
    "CiliumLoadBalancerIPPool",
    "CiliumL2AnnouncementPolicy",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
    "ClusterExternalSecret",
}
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[=-])([^}]*))?\}")


def _documents(path: Path) -> Iterator[Obj]:
    for doc in yaml.safe_load_all(path.read_text()):
        if isinstance(doc, dict) and doc.get("kind"):
            yield doc


def _kustomization_file(directory: Path) -> Path | None:
    for name in ("kustomization.yaml", "kustomization.yml", "Kustomization"):
        if (directory / name).exists():
            return directory / name
    return None


def build_directory(directory: Path) -> list[Obj]:
    """What kustomize would build from ``directory`` (enough of it for these fixtures)."""
    kfile = _kustomization_file(directory)
    if kfile is None:
        return _generated(directory)
    spec = yaml.safe_load(kfile.read_text()) or {}
    objects: list[Obj] = []
    for entry in spec.get("resources") or []:
        objects.extend(_resource(directory / entry))
    for entry in spec.get("components") or []:
        objects.extend(build_directory((directory / entry).resolve()))
    generated = spec.get("configMapGenerator") or []
    for generator in generated:
        objects.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": generator["name"]}})
    namespace = spec.get("namespace")
    if namespace:
        for obj in objects:
            if obj["kind"] == "Namespace":
                obj["metadata"]["name"] = namespace
            elif obj["kind"] not in CLUSTER_SCOPED:
                obj["metadata"]["namespace"] = namespace
    return objects


def _resource(path: Path) -> list[Obj]:
    if path.is_dir():
        return build_directory(path)
    return list(_documents(path))


def _generated(directory: Path) -> list[Obj]:
    """Flux's generated kustomization: sub-directories with a kustomization file are built as a
    whole; other YAML files are taken as they are, recursively."""
    objects: list[Obj] = []
    for entry in sorted(directory.iterdir()):
        if entry.is_dir():
            objects.extend(build_directory(entry) if _kustomization_file(entry) else _generated(entry))
        elif entry.suffix in (".yaml", ".yml"):
            objects.extend(_documents(entry))
    return objects


def substitute(obj: Obj, variables: dict[str, str]) -> Obj:
    """postBuild substitution: ${VAR}, ${VAR:=default}, ${VAR:-default}; opt-out respected."""
    meta = obj.get("metadata") or {}
    marker = "kustomize.toolkit.fluxcd.io/substitute"
    if (meta.get("labels") or {}).get(marker) == "disabled" or (meta.get("annotations") or {}).get(
        marker
    ) == "disabled":
        return obj

    def replace(match: re.Match[str]) -> str:
        name, operator, default = match.group(1), match.group(2), match.group(3)
        if name in variables:
            return variables[name]
        return default if operator else ""

    text = yaml.safe_dump(obj, sort_keys=False)
    return dict(yaml.safe_load(_VAR.sub(replace, text)))


@dataclass
class FluxKustomization:
    obj: Obj
    objects: list[Obj] = field(default_factory=list)  # what its build yields (after substitution)

    @property
    def key(self) -> tuple[str, str]:
        return (self.obj["metadata"]["namespace"], self.obj["metadata"]["name"])


@dataclass
class SampleLoad:
    kustomizations: dict[tuple[str, str], FluxKustomization]
    created: list[Obj]

    def summary(self) -> str:
        kinds: dict[str, int] = {}
        for obj in self.created:
            kinds[obj["kind"]] = kinds.get(obj["kind"], 0) + 1
        return ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items()))

    def of_kind(self, kind: str) -> list[Obj]:
        return [obj for obj in self.created if obj["kind"] == kind]


def _cluster_settings(root: Path) -> dict[str, str]:
    for doc in _documents(root / "kubernetes/flux/vars/cluster-settings.yaml"):
        if doc["kind"] == "ConfigMap":
            return {k: str(v) for k, v in (doc.get("data") or {}).items()}
    return {}


def read_sample(root: Path = SAMPLE_ROOT) -> dict[tuple[str, str], FluxKustomization]:
    """Every Flux Kustomization of the sample, from the roots down, with what each builds."""
    settings = _cluster_settings(root)
    found: dict[tuple[str, str], FluxKustomization] = {}
    pending: list[Obj] = [
        doc for name in ROOT_FILES for doc in _documents(root / name) if doc["kind"] == "Kustomization"
    ]
    while pending:
        ks = pending.pop(0)
        spec = ks["spec"]
        directory = (root / spec["path"]).resolve()
        objects = build_directory(directory)
        for component in spec.get("components") or []:
            objects.extend(build_directory((directory / component).resolve()))
        variables = dict(settings)
        variables.update({k: str(v) for k, v in ((spec.get("postBuild") or {}).get("substitute") or {}).items()})
        target = spec.get("targetNamespace")
        built = []
        for raw in objects:
            obj = substitute(raw, variables)
            if obj["kind"] not in CLUSTER_SCOPED:
                if target:
                    obj["metadata"]["namespace"] = target
                obj["metadata"].setdefault("namespace", ks["metadata"]["namespace"])
            built.append(obj)
        entry = FluxKustomization(ks, built)
        found[entry.key] = entry
        pending.extend(
            obj for obj in built if obj["kind"] == "Kustomization" and obj["apiVersion"].startswith("kustomize.toolkit")
        )
    return found


def inventory_entry(obj: Obj) -> Obj:
    """status.inventory entry: id <namespace>_<name>_<group>_<kind>, version in v."""
    api_version = obj["apiVersion"]
    group, version = api_version.split("/", 1) if "/" in api_version else ("", api_version)
    namespace = "" if obj["kind"] in CLUSTER_SCOPED else obj["metadata"].get("namespace", "")
    name = obj["metadata"]["name"].replace(":", "__")
    return {"id": f"{namespace}_{name}_{group}_{obj['kind']}", "v": version}


def _loaded(obj: Obj) -> bool:
    return obj["apiVersion"].split("/")[0] in LOADED_GROUPS and obj["kind"] != "ClusterSecretStore"


def _helm_chart_for(release: Obj) -> Obj | None:
    """The HelmChart helm-controller creates for a chart.spec release: <ns>-<name> in the
    HelmRepository's namespace."""
    chart = (release["spec"].get("chart") or {}).get("spec")
    if not chart:
        return None
    namespace = release["metadata"]["namespace"]
    source = chart["sourceRef"]
    return {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "HelmChart",
        "metadata": {
            "name": f"{namespace}-{release['metadata']['name']}",
            "namespace": source.get("namespace", namespace),
        },
        "spec": {
            "chart": chart["chart"],
            "version": chart.get("version", "*"),
            "sourceRef": {"kind": source["kind"], "name": source["name"]},
            "interval": chart.get("interval", "1h"),
            "reconcileStrategy": "ChartVersion",
        },
    }


def load_sample_repository(api: Api, root: Path = SAMPLE_ROOT) -> SampleLoad:
    """Create the sample's Flux objects with scenario statuses. Idempotent (server-side apply)."""
    kustomizations = read_sample(root)
    never_applied = {FAILING, BLOCKED}

    to_create: list[Obj] = []
    for doc in (doc for name in ROOT_FILES for doc in _documents(root / name)):
        to_create.append(doc)
    for key, ks in kustomizations.items():
        if key in never_applied:
            continue
        for obj in ks.objects:
            if _loaded(obj):
                to_create.append(obj)
                if obj["kind"] == "HelmRelease":
                    chart = _helm_chart_for(obj)
                    if chart:
                        to_create.append(chart)
    unique: dict[tuple[str, str, str], Obj] = {}
    for obj in to_create:
        unique[(obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"])] = obj
    objects = list(unique.values())

    namespaces = sorted({obj["metadata"]["namespace"] for obj in objects} | {k[0] for k in kustomizations})
    for namespace in namespaces:
        api.ensure_namespace(namespace)

    charts = _chart_ref_charts(objects)

    def create(obj: Obj) -> Obj:
        applied = api.apply(obj, manager=FLUX_MANAGER)
        status = _scenario_status(applied, kustomizations, charts)
        if status is not None:
            applied = api.patch_status(applied, status, manager=FLUX_MANAGER)
        return applied

    with ThreadPoolExecutor(max_workers=8) as pool:
        created = list(pool.map(create, objects))
    return SampleLoad(kustomizations, created)


def _chart_ref_charts(objects: list[Obj]) -> dict[tuple[str, str], tuple[str, str]]:
    """(namespace, OCIRepository name) -> (chart name, tag), for chartRef HelmReleases."""
    charts = {}
    for obj in objects:
        if obj["kind"] == "OCIRepository":
            chart = obj["spec"]["url"].rstrip("/").rsplit("/", 1)[-1]
            tag = str((obj["spec"].get("ref") or {}).get("tag", "latest"))
            charts[(obj["metadata"]["namespace"], obj["metadata"]["name"])] = (chart, tag)
    return charts


def _scenario_status(
    obj: Obj,
    kustomizations: dict[tuple[str, str], FluxKustomization],
    charts: dict[tuple[str, str], tuple[str, str]],
) -> Obj | None:
    key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
    if obj["kind"] == "Kustomization":
        if key == FAILING:
            return fluxstatus.failed_status(obj, reason="ReconciliationFailed", message=FAILING_MESSAGE)
        if key == BLOCKED:
            return fluxstatus.dependency_not_ready_status(obj, f"{FAILING[0]}/{FAILING[1]}")
        status = fluxstatus.ready_status(obj, revision=REVISION)
        ks = kustomizations.get(key)
        if ks is not None:
            status["inventory"] = {"entries": [inventory_entry(o) for o in ks.objects]}
        return status
    if obj["kind"] == "GitRepository":
        return fluxstatus.ready_status(obj, revision=REVISION)
    if obj["kind"] == "HelmRelease" and obj["spec"].get("chartRef"):
        ref = obj["spec"]["chartRef"]
        chart = charts.get((ref.get("namespace") or obj["metadata"]["namespace"], ref["name"]))
        return fluxstatus.ready_status(obj, chart=chart)
    return fluxstatus.ready_status(obj)
