"""What helm-controller (v1.6.4) makes of a HelmRelease before Helm runs: names, namespaces, the
chart it asks for, CRD policy, and what its post-renderers do. Pure: no I/O.

- Release name: ``spec.releaseName``, else ``[targetNamespace-]name``, shortened to 53
  characters with a hash (``internal/release.ShortenName``: the first 40 characters, ``-``, the
  first 12 hex digits of its SHA-256).
- Release namespace: ``spec.targetNamespace``, else the HelmRelease's; storage namespace:
  ``spec.storageNamespace``, else the HelmRelease's.
- The chart: ``spec.chartRef`` (an OCIRepository or HelmChart, its namespace defaulting to the
  HelmRelease's), or ``spec.chart.spec`` (chart name or path, version — ``*`` when empty —, a
  HelmRepository, GitRepository or Bucket as ``sourceRef``, ``valuesFiles``). The HelmChart the
  controller makes for a ``spec.chart`` is ``<namespace>-<name>`` in the source's namespace.
- CRDs: the controller installs a chart's ``crds/`` itself, never as part of the manifest
  (Helm's SkipCRDs); ``install.crds`` defaults to ``Create``, ``upgrade.crds`` to ``Skip``.
- Post-renderers (``internal/postrender``): each ``kustomize`` entry (patches, images) in order,
  then ``commonMetadata`` labels and annotations, then the origin labels
  ``helm.toolkit.fluxcd.io/name`` and ``/namespace`` on every object (they win over
  ``commonMetadata`` labels of the same key). CRDs get the origin labels only. Which objects they
  see is ``spec.postRenderStrategy`` (Helm 4's ``PostRenderStrategy``): ``Combined`` (the
  default) the manifest and the hooks in one stream, hooks told apart again afterwards by their
  annotation; ``Separate`` the two as separate streams; ``NoHooks`` the manifest only (hooks
  keep no origin labels: Helm 3's behaviour).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

HELM_GROUP = "helm.toolkit.fluxcd.io"
NAME_LABEL = f"{HELM_GROUP}/name"
NAMESPACE_LABEL = f"{HELM_GROUP}/namespace"
MAX_RELEASE_NAME = 53
CRD_POLICIES = ("Skip", "Create", "CreateReplace")
POST_RENDER_STRATEGIES = ("Combined", "Separate", "NoHooks")


def default_post_render_strategy(helm3_defaults: bool) -> str:
    """helm-controller's strategy for a HelmRelease that names none: Helm 4's ``Combined``, or
    Helm 3's ``NoHooks`` when it runs with the ``UseHelm3Defaults`` feature gate."""
    return "NoHooks" if helm3_defaults else "Combined"


__all__ = [
    "NAMESPACE_LABEL",
    "NAME_LABEL",
    "ChartRequest",
    "HelmReleaseSettings",
    "origin_labels",
    "post_render_kustomization",
    "settings_of",
    "shorten_name",
]


def shorten_name(name: str) -> str:
    """helm-controller's ``release.ShortenName``: names over 53 characters become their first 40,
    a dash and the first 12 hex digits of the SHA-256 of the whole name."""
    if len(name) <= MAX_RELEASE_NAME:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()
    return name[: MAX_RELEASE_NAME - 13] + "-" + digest[:12]


@dataclass(frozen=True)
class ChartRequest:
    """Where the chart comes from. ``source_kind`` is HelmRepository, GitRepository, Bucket (with
    ``chart`` a name or a path and ``version`` a constraint), OCIRepository or HelmChart (a
    ``chartRef``: the source says everything)."""

    source_kind: str
    source_namespace: str
    source_name: str
    chart: str = ""
    version: str = "*"
    values_files: tuple[str, ...] = ()
    via_chart_ref: bool = False

    @property
    def source(self) -> str:
        return f"{self.source_kind}/{self.source_namespace}/{self.source_name}"


@dataclass(frozen=True)
class HelmReleaseSettings:
    namespace: str
    name: str
    release_name: str  # shortened as helm-controller shortens it
    release_namespace: str
    storage_namespace: str
    chart: ChartRequest | None
    problem: str = ""  # why there is no chart request
    install_crds: str = "Create"
    upgrade_crds: str = "Skip"
    post_renderers: tuple[dict[str, Any], ...] = ()
    common_labels: dict[str, str] = field(default_factory=dict)
    common_annotations: dict[str, str] = field(default_factory=dict)
    disable_hooks: bool = False
    # Combined | Separate | NoHooks; "" when unset: helm-controller's default (``default_post_render_strategy``)
    post_render_strategy: str = ""

    @property
    def helm_chart_name(self) -> str:
        """The HelmChart helm-controller makes for a ``spec.chart`` (``GetHelmChartName``)."""
        return f"{self.namespace}-{self.name}"


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _strings(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in _mapping(value).items()}


def settings_of(release: Mapping[str, Any], default_namespace: str = "default") -> HelmReleaseSettings:
    """The HelmRelease as helm-controller reads it."""
    metadata = _mapping(release.get("metadata"))
    spec = _mapping(release.get("spec"))
    namespace = str(metadata.get("namespace") or default_namespace)
    name = str(metadata.get("name") or "")
    target = str(spec.get("targetNamespace") or "")
    release_name = str(spec.get("releaseName") or "") or (f"{target}-{name}" if target else name)
    chart, problem = _chart_request(spec, namespace)
    install, upgrade = _mapping(spec.get("install")), _mapping(spec.get("upgrade"))
    common = _mapping(spec.get("commonMetadata"))
    post = tuple(dict(p) for p in spec.get("postRenderers") or [] if isinstance(p, Mapping))
    return HelmReleaseSettings(
        namespace=namespace,
        name=name,
        release_name=shorten_name(release_name),
        release_namespace=target or namespace,
        storage_namespace=str(spec.get("storageNamespace") or "") or namespace,
        chart=chart,
        problem=problem,
        install_crds=str(install.get("crds") or "Create"),
        upgrade_crds=str(upgrade.get("crds") or "Skip"),
        post_renderers=post,
        common_labels=_strings(common.get("labels")),
        common_annotations=_strings(common.get("annotations")),
        disable_hooks=bool(install.get("disableHooks")),
        post_render_strategy=str(spec.get("postRenderStrategy") or ""),
    )


def _chart_request(spec: Mapping[str, Any], namespace: str) -> tuple[ChartRequest | None, str]:
    ref = _mapping(spec.get("chartRef"))
    if ref:
        kind = str(ref.get("kind") or "")
        if kind not in ("OCIRepository", "HelmChart"):
            return None, f"chartRef kind {kind or '(none)'} is not OCIRepository or HelmChart"
        return ChartRequest(
            kind, str(ref.get("namespace") or namespace), str(ref.get("name") or ""), via_chart_ref=True
        ), ""
    template = _mapping(_mapping(spec.get("chart")).get("spec"))
    if not template:
        return None, "neither spec.chart nor spec.chartRef is set"
    request = _template_request(template, namespace)
    if request is None:
        kind = str(_mapping(template.get("sourceRef")).get("kind") or "")
        return None, f"chart sourceRef kind {kind or '(none)'} is not HelmRepository, GitRepository or Bucket"
    return request, ""


def _template_request(template: Mapping[str, Any], namespace: str) -> ChartRequest | None:
    """A chart template (``chart.spec`` of a HelmRelease, ``spec`` of a HelmChart) as a request;
    None when its source is of no kind a chart comes from."""
    source = _mapping(template.get("sourceRef"))
    kind = str(source.get("kind") or "")
    if kind not in ("HelmRepository", "GitRepository", "Bucket"):
        return None
    files = template.get("valuesFiles") or []
    if not files and template.get("valuesFile"):
        files = [template["valuesFile"]]
    return ChartRequest(
        kind,
        str(source.get("namespace") or namespace),
        str(source.get("name") or ""),
        chart=str(template.get("chart") or ""),
        version=str(template.get("version") or "*"),
        values_files=tuple(str(f) for f in files),
    )


def chart_request_of_helmchart(helmchart: Mapping[str, Any], default_namespace: str) -> ChartRequest | None:
    """A HelmChart object's own request (``spec.chart``, ``spec.version``, ``spec.sourceRef`` in
    its namespace)."""
    namespace = str(_mapping(helmchart.get("metadata")).get("namespace") or default_namespace)
    spec = _mapping(helmchart.get("spec"))
    source = {**_mapping(spec.get("sourceRef")), "namespace": namespace}  # never another namespace
    return _template_request({**spec, "sourceRef": source}, namespace)


def origin_labels(settings: HelmReleaseSettings) -> dict[str, str]:
    return {NAME_LABEL: settings.name, NAMESPACE_LABEL: settings.namespace}


def post_render_kustomization(entry: Mapping[str, Any], resource: str) -> dict[str, Any] | None:
    """The kustomization.yaml helm-controller's Kustomize post-renderer builds in memory for one
    ``postRenderers`` entry (None when the entry has no ``kustomize``)."""
    kustomize = _mapping(entry.get("kustomize"))
    if not kustomize:
        return None
    document: dict[str, Any] = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [resource],
    }
    images = []
    for image in kustomize.get("images") or []:
        if isinstance(image, Mapping):
            images.append(
                {k: str(image[k]) for k in ("name", "newName", "newTag", "digest") if image.get(k) not in (None, "")}
            )
    if images:
        document["images"] = images
    patches = []
    for patch in kustomize.get("patches") or []:
        if not isinstance(patch, Mapping):
            continue
        item: dict[str, Any] = {"patch": str(patch.get("patch") or "")}
        target = _mapping(patch.get("target"))
        if target:
            item["target"] = {
                k: str(target[k])
                for k in ("group", "version", "kind", "name", "namespace", "labelSelector", "annotationSelector")
                if target.get(k)
            }
        patches.append(item)
    if patches:
        document["patches"] = patches
    return document


def apply_common_metadata(obj: dict[str, Any], settings: HelmReleaseSettings, *, crd: bool = False) -> None:
    """commonMetadata's labels and annotations (not on CRDs), then the origin labels, in place."""
    metadata = obj.setdefault("metadata", {})
    if not isinstance(metadata, dict):
        return
    labels = dict(metadata.get("labels") or {})
    if not crd:
        labels.update(settings.common_labels)
        if settings.common_annotations:
            annotations = dict(metadata.get("annotations") or {})
            annotations.update(settings.common_annotations)
            metadata["annotations"] = annotations
    labels.update(origin_labels(settings))
    metadata["labels"] = labels


def oci_chart_version(version: str, revision: str) -> str:
    """The chart version helm-controller installs from an OCIRepository (``chartRef``): the chart's
    version as Masterminds prints it, its build metadata replaced by the first 12 hex digits of the
    artifact's digest (``mutateChartWithSourceRevision``: a moved tag is a new version). The
    revision is source-controller's ``<tag>@sha256:<hex>`` or ``sha256:<hex>``. ValueError with
    helm-controller's reason when the tag is a version other than the chart's."""
    from phoebe_cli.flux.semver import loose_version

    parsed = loose_version(version)
    if parsed is None:
        raise ValueError(f"invalid chart version {version}")
    tag, at, digest = revision.rpartition("@")
    if not at:
        tag, digest = "", revision
    if tag:
        tagged = loose_version(tag.replace("_", "+"))
        if tagged is not None and tagged.compare(parsed) != 0:
            raise ValueError(f"artifact revision {tag} does not match chart version {version}")
    _, _, hexdigest = digest.partition(":")
    if len(hexdigest) < 12:
        raise ValueError(f"invalid artifact revision {revision}")
    text = f"{parsed.major}.{parsed.minor}.{parsed.patch}"
    if parsed.pre:
        text += f"-{parsed.pre}"
    return f"{text}+{hexdigest[:12]}"


def values_digest(values: Mapping[str, Any]) -> str:
    """A digest of values (sorted JSON): a cache key part, never the values."""
    return hashlib.sha256(json.dumps(values, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


def capabilities_api_versions(served: Iterable[tuple[str, str, Iterable[str]]]) -> tuple[str, ...]:
    """``.Capabilities.APIVersions`` as Helm builds it from a cluster's discovery
    (``action.GetVersionSet``): every served ``group/version`` ("v1" for the core group) and
    ``group/version/Kind``, from (group, kind, served versions) triples. Sorted: it is part of
    a render's cache key."""
    found: set[str] = set()
    for group, kind, versions in served:
        for version in versions:
            group_version = f"{group}/{version}" if group else version
            found.add(group_version)
            found.add(f"{group_version}/{kind}")
    return tuple(sorted(found))
