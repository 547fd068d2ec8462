"""``phoebe build``: what the checkout's Kustomizations apply, and HelmReleases rendered from
their charts as helm-controller renders them.

The rendering API (also used by ``diff``)::

    render_helmreleases(model, selected, options) -> list[RenderedRelease]

For each HelmRelease the model declares (or the ``selected`` refs), in parallel:

1. helm-controller's reading of it (``flux.helmrelease.settings_of``): release name (shortened),
   release, storage namespace, the chart request, CRD policy, post-renderers;
2. its values: ``valuesFrom`` then ``values`` (``flux.helmvalues``), looked up among every
   ConfigMap and Secret the checkout applies in the release's namespace, then in
   ``options.lookup`` (e.g. the cluster's). The real values are used for rendering, in memory
   only; ``RenderedRelease.values`` holds them with Secret-sourced leaves masked;
3. the chart: from a HelmRepository (HTTP index + package, or OCI), an OCIRepository, a
   HelmChart, or a GitRepository/Bucket that is this checkout (or a ``--source`` directory),
   cached by digest (``repo.charts``);
4. ``helm template`` (``repo.helm``), the chart's CRDs kept apart (applied per policy by the
   controller, never in the release manifest), hooks apart (stored apart by Helm);
5. the post-renderers: each ``kustomize`` entry with the kustomize binary phoebe uses, then
   ``commonMetadata`` and the origin labels.

A release whose chart cannot be fetched (offline, refused credentials, no such version) is
``partial`` with the reason; one whose templates or post-renderers fail is ``failed``; neither
stops the others. Renders are cached by a digest of everything that makes them (chart digest,
values, post-renderers, names, kube version, helm's and kustomize's versions) — except renders
whose values came from a Secret: those are never written to disk.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from phoebe_cli.flux.helmrelease import (
    POST_RENDER_STRATEGIES,
    ChartRequest,
    HelmReleaseSettings,
    apply_common_metadata,
    chart_request_of_helmchart,
    post_render_kustomization,
    settings_of,
    values_digest,
)
from phoebe_cli.flux.helmvalues import effective_values
from phoebe_cli.flux.objects import ObjectRef
from phoebe_cli.flux.secrets import MASK, data_of, is_sops_encrypted, mask_secret
from phoebe_cli.repo.charts import (
    ChartDependency,
    ChartFiles,
    ChartProblem,
    local_chart,
    missing_dependencies,
    with_dependencies,
)
from phoebe_cli.repo.model import BuildState, RepoModel, object_ref

if TYPE_CHECKING:
    from phoebe_cli.kube.charts import ChartFetcher, OciReference, TlsMaterial
    from phoebe_cli.kube.session import Session
    from phoebe_cli.repo.helm import Helm, Rendered
    from phoebe_cli.repo.kustomize import Kustomize

RENDERED = "rendered"
PARTIAL = "partial"  # the chart (or a values source) could not be had: nothing or not all is known
FAILED = "failed"  # the chart is there, but helm or a post-renderer refused

# (namespace, kind, name) -> the ConfigMap or Secret (real values), e.g. read from the cluster
ObjectLookup = Callable[[str, str, str], Mapping[str, Any] | None]


@dataclass(frozen=True)
class RenderOptions:
    kube_version: str | None = None  # --kube-version; None: helm's default
    api_versions: tuple[str, ...] = ()  # --api-versions (the cluster's, when asked)
    sources: Mapping[str, Path] = field(default_factory=dict)  # --source NAME=DIR for chart sources
    offline: bool = False  # never touch the network: charts only from the cache or the checkout
    use_cache: bool = True  # renders (charts are always cached by digest)
    refresh: bool = False  # resolve tags and exact versions again instead of trusting the last answer
    lookup: ObjectLookup | None = None  # ConfigMaps/Secrets the checkout does not hold
    # for a HelmRelease without spec.postRenderStrategy: the cluster's helm-controller's default
    post_render_strategy: str = "Combined"
    workers: int = 0  # 0: the CPU count


@dataclass
class RenderedRelease:
    ref: ObjectRef
    release_name: str
    target_namespace: str
    storage_namespace: str
    chart_name: str = ""
    chart_version: str = ""
    chart_digest: str = ""
    chart_source: str = ""
    values: dict[str, Any] = field(default_factory=dict)  # Secret-sourced leaves masked: for display
    objects: list[dict[str, Any]] = field(default_factory=list)  # the release manifest, post-rendered
    hooks: list[dict[str, Any]] = field(default_factory=list)
    crds: list[dict[str, Any]] = field(default_factory=list)  # the chart's crds/, with the origin labels
    install_crds: str = "Create"
    upgrade_crds: str = "Skip"
    state: str = RENDERED
    reason: str = ""
    notes: list[str] = field(default_factory=list)
    values_from_secret: bool = False
    cached: bool = False  # the render came from the render cache
    # digest of the real values (sha256 of sorted JSON), in memory only; lets a caller tell a
    # changed input from an unchanged one
    input_digest: str = field(default="", repr=False)
    # digest of the merged values alone (as Helm stores them in a release's config), in memory only
    values_digest: str = field(default="", repr=False)

    # the Secret-sourced value strings, in memory only: scrubbed from what is shown
    secret_strings: frozenset[str] = field(default=frozenset(), repr=False)

    @property
    def manifest_objects(self) -> list[dict[str, Any]]:
        """What ``build`` prints: CRDs (when installed: policy not Skip), the manifest, the hooks."""
        crds = self.crds if self.install_crds != "Skip" else []
        return [*crds, *self.objects, *self.hooks]

    def shown_objects(self) -> list[dict[str, Any]]:
        """``manifest_objects`` safe to print: Secrets' values masked, and every value that came
        from a Secret (valuesFrom) replaced by the mask wherever the chart put it."""
        return [_scrub(mask_secret(obj), self.secret_strings) for obj in self.manifest_objects]


@dataclass(frozen=True)
class BuildOptions:
    """``phoebe build``: which objects, and how releases are rendered."""

    what: str  # "ks", "hr" or "all"
    names: tuple[str, ...] = ()  # NAME or NAMESPACE/NAME
    namespace: str | None = None
    recursive: bool = False  # ks: the Kustomizations below the selected ones too
    narrow: str | None = None  # --path: only Kustomizations whose spec.path is DIR or below (and what they declare)
    render: RenderOptions = field(default_factory=RenderOptions)


@dataclass(frozen=True)
class BuiltKustomization:
    ref: ObjectRef
    path: str
    state: str  # repo.model.BuildState
    message: str
    objects: list[dict[str, Any]]  # as applied: substituted, Secret values masked


@dataclass(frozen=True)
class ClusterRead:
    """What a build read from a cluster for its renders."""

    context: str
    kube_version: str | None
    api_versions: int  # how many API versions and version/kinds charts saw
    objects_read: int  # ConfigMaps and Secrets found there (valuesFrom, credentials)


@dataclass(frozen=True)
class BuildResult:
    kustomizations: list[BuiltKustomization]
    releases: list[RenderedRelease]
    cluster: ClusterRead | None = None  # None: rendered without one

    @property
    def problems(self) -> int:
        """Kustomizations that failed, releases not rendered (partial or failed)."""
        return sum(k.state == BuildState.FAILED for k in self.kustomizations) + sum(
            r.state != RENDERED for r in self.releases
        )


def _matches(ref: ObjectRef, names: tuple[str, ...], namespace: str | None) -> bool:
    if namespace and ref.namespace != namespace:
        return False
    return not names or ref.name in names or f"{ref.namespace}/{ref.name}" in names


def _unknown(kind: str, names: tuple[str, ...], found: Iterable[ObjectRef], namespace: str | None) -> None:
    from phoebe_cli.errors import NotFound

    seen = {r.name for r in found} | {f"{r.namespace}/{r.name}" for r in found}
    missing = [n for n in names if n not in seen]
    if missing:
        where = f" in namespace {namespace}" if namespace else ""
        raise NotFound(f"no {kind} {', '.join(missing)}{where} in the checkout")


def select_kustomizations(
    model: RepoModel, names: tuple[str, ...], namespace: str | None, *, recursive: bool
) -> list[ObjectRef]:
    """The Kustomizations named (all when none are), with those below them when ``recursive``;
    NotFound naming what the checkout does not declare."""
    chosen = [ref for ref in model.kustomizations if _matches(ref, names, namespace)]
    _unknown("Kustomization", names, chosen, namespace)
    if recursive:
        wanted = set(chosen)
        grew = True
        while grew:
            below = {ref for ref, k in model.kustomizations.items() if k.origin.parent in wanted and ref not in wanted}
            wanted |= below
            grew = bool(below)
        chosen = list(wanted)
    return sorted(chosen, key=lambda r: (r.namespace, r.name))


def select_helmreleases(model: RepoModel, names: tuple[str, ...], namespace: str | None) -> list[ObjectRef]:
    chosen = [ref for ref in helmreleases_in(model) if _matches(ref, names, namespace)]
    _unknown("HelmRelease", names, chosen, namespace)
    return chosen


def build(model: RepoModel, options: BuildOptions) -> BuildResult:
    """``phoebe build ks|hr|all`` on a loaded model: the selected Kustomizations' objects and/or
    the selected HelmReleases rendered (``all``: the releases the selected Kustomizations apply)."""
    kustomizations: list[BuiltKustomization] = []
    releases: list[RenderedRelease] = []
    under = _under(model, options.narrow)
    if options.what in ("ks", "all"):
        chosen = select_kustomizations(model, options.names, options.namespace, recursive=options.recursive)
        for ref in chosen:
            if under is not None and ref not in under:
                continue
            declared = model.kustomizations[ref]
            kustomizations.append(
                BuiltKustomization(ref, declared.path, declared.state, declared.message, list(declared.objects))
            )
    if options.what == "hr":
        refs = select_helmreleases(model, options.names, options.namespace)
        if under is not None:
            refs = [r for r in refs if r in under]
        releases = render_helmreleases(model, refs, options.render)
    elif options.what == "all":
        built = {r for k in kustomizations for r in _declared_by(model, k.ref)}
        refs = [r for r in helmreleases_in(model) if r in built]
        releases = render_helmreleases(model, refs, options.render)
    return BuildResult(kustomizations, releases)


def needs_renders(model: RepoModel, options: BuildOptions) -> bool:
    """Whether this build renders a HelmRelease (only then is a cluster worth asking)."""
    return options.what != "ks" and bool(helmreleases_in(model))


async def build_on_cluster(session: Session, model: RepoModel, options: BuildOptions) -> BuildResult:
    """``build`` with the renders reading the cluster as helm-controller does: its version and
    served APIs (``--kube-version`` wins; ``--api-versions`` add to them), and the ConfigMaps and
    Secrets the checkout lacks or holds SOPS-encrypted. Raises the ClusterError of the first
    reads (``/version``, discovery) before rendering anything."""
    import asyncio
    import dataclasses

    from phoebe_cli.usecases.helmcluster import render_inputs

    cluster = await render_inputs(session)
    render = dataclasses.replace(
        options.render,
        kube_version=options.render.kube_version or cluster.kube_version,
        api_versions=tuple(sorted(set(cluster.api_versions) | set(options.render.api_versions))),
        lookup=cluster.lookup,
        post_render_strategy=cluster.post_render_strategy,
    )
    result = await asyncio.to_thread(build, model, dataclasses.replace(options, render=render))
    read = ClusterRead(cluster.context, render.kube_version, len(render.api_versions), cluster.objects_read())
    return dataclasses.replace(result, cluster=read)


def _under(model: RepoModel, prefix: str | None) -> set[ObjectRef] | None:
    if prefix is None:
        return None
    from phoebe_cli.usecases.repo import narrowed

    return narrowed(model, prefix)


def _declared_by(model: RepoModel, parent: ObjectRef) -> list[ObjectRef]:
    return [ref for ref, d in model.objects.items() if d.declared_by == parent]


class _Unavailable(Exception):
    """The chart (or a credential) cannot be had: the release is partial."""


class ObjectUnreadable(Exception):
    """``RenderOptions.lookup`` could not read a ConfigMap or Secret (the cluster refused or did
    not answer): the release that needs it is partial, the others render."""


class _Refused(Exception):
    """helm or a post-renderer refused: the release failed."""


def helmreleases_in(model: RepoModel) -> list[ObjectRef]:
    return sorted((ref for ref in model.objects if ref.kind == "HelmRelease"), key=lambda r: (r.namespace, r.name))


def render_helmreleases(
    model: RepoModel, selected: Iterable[ObjectRef] | None, options: RenderOptions
) -> list[RenderedRelease]:
    """Every selected HelmRelease of the model rendered (all of them when ``selected`` is None), in
    the order given (else by namespace and name). Raises ToolMissing when helm (or, for a release
    with post-renderers, kustomize) is not installed; every other problem stays with its release."""
    refs = list(selected) if selected is not None else helmreleases_in(model)
    if not refs:
        return []
    renderer = _Renderer(model, options)
    try:
        workers = options.workers or max(2, os.cpu_count() or 2)
        with ThreadPoolExecutor(max_workers=min(workers, len(refs))) as pool:
            return list(pool.map(renderer.render, refs))
    finally:
        renderer.close()


class _Renderer:
    def __init__(self, model: RepoModel, options: RenderOptions) -> None:
        from phoebe_cli.repo.helm import Helm

        self.model = model
        self.options = options
        self.helm: Helm = Helm.find()  # ToolMissing: one line, exit 5, before any work
        self._kustomize: Kustomize | None = None
        self._fetcher: ChartFetcher | None = None
        self._lock = threading.Lock()
        self._charts: dict[tuple[Any, ...], Future[ChartFiles]] = {}
        self._tls_fetchers: dict[TlsMaterial, ChartFetcher] = {}
        self._index = model_index(model)

    def close(self) -> None:
        for fetcher in [self._fetcher, *self._tls_fetchers.values()]:
            if fetcher is not None:
                fetcher.close()

    @property
    def fetcher(self) -> ChartFetcher:
        with self._lock:
            if self._fetcher is None:
                from phoebe_cli.kube.charts import ChartFetcher

                self._fetcher = ChartFetcher()
            return self._fetcher

    @property
    def kustomize(self) -> Kustomize:
        with self._lock:
            if self._kustomize is None:
                from phoebe_cli.repo.kustomize import Kustomize

                self._kustomize = Kustomize.find()
            return self._kustomize

    # --- one release -------------------------------------------------------------------------

    def render(self, ref: ObjectRef) -> RenderedRelease:
        declared = self.model.objects.get(ref)
        if declared is None:
            result = RenderedRelease(ref, ref.name, ref.namespace, ref.namespace)
            result.state, result.reason = FAILED, "not declared in the checkout"
            return result
        settings = settings_of(declared.obj, ref.namespace)
        result = RenderedRelease(
            ref,
            settings.release_name,
            settings.release_namespace,
            settings.storage_namespace,
            install_crds=settings.install_crds,
            upgrade_crds=settings.upgrade_crds,
        )
        try:
            return self._render_release(declared.obj, settings, result)
        except ObjectUnreadable as exc:
            result.state, result.reason, result.objects, result.hooks, result.crds = PARTIAL, str(exc), [], [], []
            return result

    def _render_release(
        self, release: Mapping[str, Any], settings: HelmReleaseSettings, result: RenderedRelease
    ) -> RenderedRelease:
        ref = result.ref
        if settings.chart is None:
            result.state, result.reason = FAILED, settings.problem
            return result
        lookup = self._values_lookup(ref.namespace)
        real, notes = effective_values(release, lookup, mask=False)
        shown, _ = effective_values(release, lookup)
        result.values, result.notes = shown, list(notes)
        result.secret_strings = frozenset(_masked_strings(real, shown))
        result.values_from_secret = any(
            isinstance(e, Mapping) and e.get("kind") == "Secret"
            for e in (release.get("spec") or {}).get("valuesFrom") or []
        )
        try:
            chart = self._chart(settings.chart, ref)
        except _Unavailable as exc:
            result.state, result.reason = PARTIAL, str(exc)
            result.chart_source = settings.chart.source
            return result
        result.chart_name, result.chart_version, result.chart_digest = chart.name, chart.version, chart.digest
        result.chart_source = settings.chart.source
        if any(n for n in notes if "not known offline" in n or "is not in this build" in n):
            result.state, result.reason = PARTIAL, "; ".join(notes)
        try:
            rendered, cached = self._render(settings, chart, real, result.values_from_secret)
        except _Refused as exc:
            result.state, result.reason = FAILED, str(exc)
            return result
        result.objects, result.hooks, result.crds, result.cached = (
            rendered.manifest,
            rendered.hooks,
            rendered.crds,
            cached,
        )
        result.values_digest = values_digest(real)
        result.input_digest = values_digest(
            {
                "chart": [chart.digest, chart.version],
                "values": real,
                "post": list(settings.post_renderers),
                "release": [settings.release_name, settings.release_namespace],
                "common": [settings.common_labels, settings.common_annotations],
            }
        )
        return result

    def _values_lookup(self, namespace: str) -> Callable[[str, str], Mapping[str, Any] | None]:
        def find(kind: str, name: str) -> Mapping[str, Any] | None:
            return self._object(namespace, kind, name)

        return find

    def _object(self, namespace: str, kind: str, name: str) -> Mapping[str, Any] | None:
        """A ConfigMap or Secret as the controllers read it: the checkout's, else the lookup's (the
        cluster's); a Secret the checkout holds SOPS-encrypted is the lookup's decrypted one when
        it has it (kustomize-controller applied it decrypted)."""
        found = self._index.get((namespace, kind, name))
        if self.options.lookup is not None and (found is None or is_sops_encrypted(found)):
            found = self.options.lookup(namespace, kind, name) or found
        return found

    # --- rendering -----------------------------------------------------------------------------

    def _render_key(self, settings: HelmReleaseSettings, chart: ChartFiles, values: Mapping[str, Any]) -> str:
        parts = {
            "v": 1,
            "chart": [chart.digest, chart.name, chart.version],
            "values": values_digest(values),
            "release": [settings.namespace, settings.name, settings.release_name, settings.release_namespace],
            "post": [list(settings.post_renderers), self._strategy(settings)],
            "common": [settings.common_labels, settings.common_annotations],
            "kube": [self.options.kube_version, list(self.options.api_versions)],
            "helm": self.helm.version,
            "kustomize": self.kustomize.version if settings.post_renderers else "",
            "files": list(self._values_files(settings)),
        }
        return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()

    def _values_files(self, settings: HelmReleaseSettings) -> tuple[str, ...]:
        """``valuesFiles`` of the chart request, or of the HelmChart a ``chartRef`` names."""
        request = settings.chart
        if request is None:
            return ()
        if request.source_kind == "HelmChart":
            declared = self.model.objects.get(ObjectRef("HelmChart", request.source_namespace, request.source_name))
            inner = chart_request_of_helmchart(declared.obj, request.source_namespace) if declared else None
            return inner.values_files if inner is not None else ()
        return request.values_files

    def _render(
        self, settings: HelmReleaseSettings, chart: ChartFiles, values: Mapping[str, Any], from_secret: bool
    ) -> tuple[Rendered, bool]:
        from phoebe_cli.repo.charts import recall, remember
        from phoebe_cli.repo.helm import Rendered, TemplateFailed, split_manifest, values_text

        cacheable = self.options.use_cache and not from_secret
        key = self._render_key(settings, chart, values) if cacheable else ""
        if cacheable:
            known = recall("renders", key)
            if isinstance(known, dict):
                return Rendered(known["manifest"], known["hooks"], known["crds"]), True
        files = []
        for name in self._values_files(settings):
            path = (chart.path / name).resolve()
            if not path.is_relative_to(chart.path.resolve()) or not path.is_file():
                raise _Refused(f"valuesFiles {name}: no such file in chart {chart.name}")
            files.append(path)
        try:
            text = self.helm.template(
                chart.path,
                release=settings.release_name,
                namespace=settings.release_namespace,
                values_yaml=values_text(values),
                values_files=files,
                kube_version=self.options.kube_version,
                api_versions=self.options.api_versions,
            )
            rendered = split_manifest(text)
        except TemplateFailed as exc:
            raise _Refused(f"helm template: {exc}") from exc
        self._post_render_all(settings, rendered)
        for obj in rendered.crds:
            apply_common_metadata(obj, settings, crd=True)
        if cacheable:
            remember("renders", key, {"manifest": rendered.manifest, "hooks": rendered.hooks, "crds": rendered.crds})
        return rendered, False

    def _strategy(self, settings: HelmReleaseSettings) -> str:
        return settings.post_render_strategy or self.options.post_render_strategy

    def _post_render_all(self, settings: HelmReleaseSettings, rendered: Rendered) -> None:
        """The post-renderers (kustomize entries, commonMetadata, origin labels) over what
        ``spec.postRenderStrategy`` hands them, as Helm 4 in helm-controller runs them."""
        from phoebe_cli.repo.helm import HOOK_ANNOTATION

        strategy = self._strategy(settings)
        if strategy not in POST_RENDER_STRATEGIES:
            raise _Refused(f"unknown post-render strategy: {strategy!r}")
        groups = [rendered.manifest, *([rendered.hooks] if strategy == "Separate" and rendered.hooks else [])]
        if strategy == "Combined":
            groups = [rendered.manifest + rendered.hooks]
        processed = []
        for group in groups:
            post_rendered = self._post_render(settings, group)
            for obj in post_rendered:
                apply_common_metadata(obj, settings)
            processed.extend(post_rendered)
        if strategy == "NoHooks":
            rendered.manifest = processed
            return
        # hooks are told from the manifest by their annotation after post-rendering, as Helm does
        is_hook = [HOOK_ANNOTATION in ((o.get("metadata") or {}).get("annotations") or {}) for o in processed]
        rendered.manifest = [o for o, hook in zip(processed, is_hook, strict=True) if not hook]
        rendered.hooks = [o for o, hook in zip(processed, is_hook, strict=True) if hook]

    def _post_render(self, settings: HelmReleaseSettings, objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Each ``kustomize`` post-renderer in order, run by kustomize on a private copy of the
        rendered objects (in memory when /dev/shm is there: they may hold Secret values)."""
        from phoebe_cli.repo.kustomize import BuildFailed
        from phoebe_cli.repo.yamlio import dump_documents, load_text

        for index, entry in enumerate(settings.post_renderers):
            document = post_render_kustomization(entry, "helm-output.yaml")
            if document is None:
                continue
            shm = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
            with tempfile.TemporaryDirectory(prefix="phoebe-postrender-", dir=shm) as work:
                directory = Path(work)
                (directory / "helm-output.yaml").write_text(dump_documents(objects))
                (directory / "kustomization.yaml").write_text(json.dumps(document))
                try:
                    text = self.kustomize.build(directory)
                except BuildFailed as exc:
                    raise _Refused(f"postRenderers[{index}]: {exc}") from exc
            objects = [o for o in load_text(text) if isinstance(o, dict)]
        return objects

    # --- charts -----------------------------------------------------------------------------------

    def _chart(self, request: ChartRequest, ref: ObjectRef) -> ChartFiles:
        """The chart of a request, fetched once per run however many releases ask for it."""
        key = (request.source_kind, request.source_namespace, request.source_name, request.chart, request.version)
        with self._lock:
            future = self._charts.get(key)
            owner = future is None
            if future is None:
                future = Future()
                self._charts[key] = future
        if owner:
            try:
                future.set_result(self._resolve(request, ref))
            except (_Unavailable, ChartProblem) as exc:
                future.set_exception(_Unavailable(str(exc)))
            except Exception as exc:  # noqa: BLE001 - handed to every release waiting for this chart
                future.set_exception(exc)
        return future.result()

    def _source(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        declared = self.model.objects.get(ObjectRef(kind, namespace, name))
        if declared is None:
            raise _Unavailable(f"{kind} {namespace}/{name} is not declared in the checkout")
        return declared.obj

    def _resolve(self, request: ChartRequest, ref: ObjectRef) -> ChartFiles:
        kind = request.source_kind
        if kind == "HelmChart":
            helmchart = self._source("HelmChart", request.source_namespace, request.source_name)
            inner = chart_request_of_helmchart(helmchart, request.source_namespace)
            if inner is None:
                raise _Unavailable(
                    f"HelmChart {request.source_namespace}/{request.source_name} has no usable sourceRef"
                )
            return self._resolve(inner, ref)
        if kind in ("GitRepository", "Bucket"):
            return self._checkout_chart(request)
        source = self._source(kind, request.source_namespace, request.source_name)
        spec = source.get("spec") or {}
        if kind == "OCIRepository":
            return self._oci_repository(source, request)
        if str(spec.get("type") or "") == "oci" or str(spec.get("url") or "").startswith("oci://"):
            return self._oci_helm_repository(source, request)
        return self._http_helm_repository(source, request)

    def _checkout_chart(self, request: ChartRequest) -> ChartFiles:
        directory = self._source_directory(request)
        chart_path = (directory / request.chart).resolve()
        if not chart_path.is_relative_to(directory.resolve()):
            raise _Unavailable(f"chart path {request.chart} is out of {request.source}")
        if not chart_path.is_dir():
            raise _Unavailable(f"chart path {request.chart} does not exist in {request.source}")
        chart = local_chart(chart_path)
        missing = missing_dependencies(chart_path)
        if not missing:
            return chart
        # source-controller builds the dependencies a chart from Git does not vendor
        root = directory.resolve()
        added = [(dependency, self._dependency(dependency, chart_path, root, request)) for dependency in missing]
        return with_dependencies(chart, added, root)

    def _dependency(
        self, dependency: ChartDependency, chart_path: Path, root: Path, request: ChartRequest
    ) -> ChartFiles:
        """One missing dependency as source-controller's DependencyManager adds it: a local chart
        (``file://`` or ``charts/NAME``, within the source, its version checked against the
        constraint) or a chart from the repository URL, with the credentials of the HelmRepository
        of that URL in the source's namespace (anonymous when there is none)."""
        from phoebe_cli.flux.semver import InvalidConstraint, pick_version

        what = f"dependency {dependency.key!r} of {request.chart}"
        if dependency.local:
            relative = dependency.repository.removeprefix("file://") or f"charts/{dependency.name}"
            path = (chart_path / relative).resolve()
            if not path.is_relative_to(root):
                raise _Unavailable(f"{what}: {dependency.repository} is out of {request.source}")
            if not (path / "Chart.yaml").is_file():
                raise _Unavailable(f"{what}: no chart found at '{relative}'")
            try:
                local = local_chart(path)
                accepted = pick_version(dependency.version, [(local.version, "")])
            except (ChartProblem, InvalidConstraint) as exc:
                raise _Unavailable(f"{what}: {exc}") from exc
            if accepted is None:
                raise _Unavailable(f"{what}: can't get a valid version for constraint '{dependency.version}'")
            return local
        url = dependency.repository.rstrip("/")
        if not url.startswith(("http://", "https://", "oci://")):
            raise _Unavailable(f"{what}: repository {dependency.repository!r} is not an http(s):// or oci:// URL")
        namespace = request.source_namespace
        source = self._repository_at(url, namespace) or {
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "HelmRepository",
            "metadata": {"name": url, "namespace": namespace},
            "spec": {"url": url, **({"type": "oci"} if url.startswith("oci://") else {})},
        }
        name = str((source.get("metadata") or {}).get("name") or url)
        wanted = ChartRequest(
            "HelmRepository", namespace, name, chart=dependency.name, version=dependency.version or "*"
        )
        try:
            if url.startswith("oci://"):
                return self._oci_helm_repository(source, wanted)
            return self._http_helm_repository(source, wanted)
        except _Unavailable as exc:
            raise _Unavailable(f"{what}: {exc}") from exc

    def _repository_at(self, url: str, namespace: str) -> Mapping[str, Any] | None:
        """The HelmRepository of the checkout at ``url`` in ``namespace`` (for its credentials)."""
        for ref, declared in self.model.objects.items():
            spec = declared.obj.get("spec") or {}
            if (
                ref.kind == "HelmRepository"
                and ref.namespace == namespace
                and str(spec.get("url") or "").rstrip("/") == url
            ):
                return declared.obj
        return None

    def _source_directory(self, request: ChartRequest) -> Path:
        names = (request.source_name, f"{request.source_namespace}/{request.source_name}", request.source)
        for name, directory in self.options.sources.items():
            if name in names or name == f"{request.source_kind}/{request.source_namespace}/{request.source_name}":
                return Path(directory)
        for declared in self.model.kustomizations.values():
            source_ref = declared.spec.get("sourceRef") or {}
            if (
                source_ref.get("kind") == request.source_kind
                and source_ref.get("name") == request.source_name
                and (source_ref.get("namespace") or declared.ref.namespace) == request.source_namespace
                and declared.source_dir is not None
            ):
                return declared.source_dir
        raise _Unavailable(f"{request.source} is not this checkout: map it with --source {request.source_name}=DIR")

    # HelmRepository over HTTP(S) ----------------------------------------------------------------

    def _http_helm_repository(self, source: Mapping[str, Any], request: ChartRequest) -> ChartFiles:  # noqa: PLR0915
        from phoebe_cli.flux.semver import InvalidConstraint, pick_version
        from phoebe_cli.kube.charts import FetchFailed, resolve_url, same_host
        from phoebe_cli.repo.charts import cached_package, parse_index, recall, remember, store_package

        spec = source.get("spec") or {}
        url = str(spec.get("url") or "")
        if not url.startswith(("http://", "https://")):
            raise _Unavailable(f"{request.source}: url {url!r} is not http(s):// or oci://")
        # per source object: another HelmRepository at the same URL may hold other credentials
        exact_key = f"http|{request.source}|{url}|{request.chart}|{request.version}"
        known = recall("resolved", exact_key) if not self.options.refresh else None
        if isinstance(known, dict) and _exact(request.version):
            cached = cached_package(str(known.get("digest", "")))
            if cached is not None:
                return cached
        creds = self._credentials(source)
        fetcher = self._fetcher_for(source)
        index_key = f"index|{url}"
        text: str | None = None
        offline_note = ""
        if self.options.offline:
            offline_note = "offline"
        else:
            try:
                text = fetcher.get(url.rstrip("/") + "/index.yaml", creds).decode()
                remember("indexes", index_key, text)
            except FetchFailed as exc:
                if exc.refused:
                    raise _Unavailable(f"{request.source}: {exc}") from exc
                offline_note = str(exc)
        if text is None:
            text = recall("indexes", index_key)
            if not isinstance(text, str):
                raise _Unavailable(f"{request.source}: index not fetched ({offline_note}) and none cached")
        entries = parse_index(text, request.chart)
        if entries is None:
            raise _Unavailable(f"chart {request.chart!r} is not in {request.source} ({url})")
        try:
            version = pick_version(request.version, [(e.version, e.created) for e in entries])
        except InvalidConstraint as exc:
            raise _Unavailable(f"chart version {request.version!r}: {exc}") from exc
        if version is None:
            raise _Unavailable(f"no {request.chart} chart version matches {request.version!r} in {request.source}")
        entry = next(e for e in entries if e.version == version)
        if entry.digest:
            cached = cached_package(entry.digest)
            if cached is not None:
                remember("resolved", exact_key, {"digest": cached.digest})
                return cached
        if self.options.offline or not entry.urls:
            raise _Unavailable(
                f"{request.chart} {version}: not in the chart cache ({offline_note or 'no URL in the index'})"
            )
        package_url = resolve_url(url, entry.urls[0])
        try:
            data = fetcher.get(
                package_url, creds if same_host(url, package_url) or spec.get("passCredentials") else None
            )
        except FetchFailed as exc:
            raise _Unavailable(f"{request.source}: {exc}") from exc
        chart = store_package(data, entry.digest)
        remember("resolved", exact_key, {"digest": chart.digest})
        return chart

    # OCI ----------------------------------------------------------------------------------------

    def _oci_helm_repository(self, source: Mapping[str, Any], request: ChartRequest) -> ChartFiles:
        from phoebe_cli.kube.charts import FetchFailed, OciReference

        spec = source.get("spec") or {}
        try:
            ref = OciReference.parse(str(spec.get("url") or ""), plain_http=bool(spec.get("insecure"))).child(
                request.chart
            )
        except FetchFailed as exc:
            raise _Unavailable(f"{request.source}: {exc}") from exc
        creds = self._credentials(source, ref.host)
        chart, _, _ = self._oci_chart(
            ref,
            creds,
            tag="" if not _exact(request.version) else request.version,
            semver=request.version if not _exact(request.version) else "",
            digest="",
            media_type="",
            what=request.source,
            fetcher=self._fetcher_for(source),
        )
        return chart

    def _oci_repository(self, source: Mapping[str, Any], request: ChartRequest) -> ChartFiles:
        from phoebe_cli.kube.charts import FetchFailed, OciReference

        spec = source.get("spec") or {}
        try:
            ref = OciReference.parse(str(spec.get("url") or ""), plain_http=bool(spec.get("insecure")))
        except FetchFailed as exc:
            raise _Unavailable(f"{request.source}: {exc}") from exc
        wanted = spec.get("ref") or {}
        selector = spec.get("layerSelector") or {}
        creds = self._credentials(source, ref.host)
        # source-controller's precedence: digest, then semver, then tag (default latest)
        digest = str(wanted.get("digest") or "")
        semver = "" if digest else str(wanted.get("semver") or "")
        tag = "" if digest or semver else str(wanted.get("tag") or "latest")
        chart, manifest, used_tag = self._oci_chart(
            ref,
            creds,
            tag=tag,
            semver=semver,
            digest=digest,
            media_type=str(selector.get("mediaType") or ""),
            what=request.source,
            fetcher=self._fetcher_for(source),
        )
        # helm-controller installs it as <version>+<digest>: a moved tag is a new chart version
        from phoebe_cli.flux.helmrelease import oci_chart_version
        from phoebe_cli.repo.charts import with_version

        revision = f"{used_tag}@{manifest}" if used_tag else manifest
        try:
            return with_version(chart, oci_chart_version(chart.version, revision))
        except ValueError as exc:
            raise _Unavailable(f"{request.source}: {exc}") from exc

    def _oci_chart(
        self,
        ref: OciReference,
        creds: tuple[str, str] | None,
        *,
        tag: str,
        semver: str,
        digest: str,
        media_type: str,
        what: str,
        fetcher: ChartFetcher,
    ) -> tuple[ChartFiles, str, str]:
        """The chart, the digest of its manifest, and the tag it was found by ("" for a digest)."""
        from phoebe_cli.flux.semver import InvalidConstraint, pick_version
        from phoebe_cli.kube.charts import FetchFailed, chart_layer
        from phoebe_cli.repo.charts import cached_package, recall, remember, store_package

        resolution_key = f"oci|{what}|{ref}|{tag}|{digest}|{media_type}"
        if not semver and not self.options.refresh:
            known = recall("resolved", resolution_key)
            if isinstance(known, dict):
                cached = cached_package(str(known.get("digest", "")))
                if cached is not None and known.get("manifest"):
                    return cached, str(known["manifest"]), tag
        if self.options.offline:
            raise _Unavailable(f"{what}: {ref} is not in the chart cache (offline)")
        try:
            if semver:
                tags_key = f"tags|{ref}"
                try:
                    tags = fetcher.oci_tags(ref, creds)
                    remember("indexes", tags_key, tags)
                except FetchFailed as exc:
                    if exc.refused:
                        raise
                    tags = recall("indexes", tags_key)
                    if not isinstance(tags, list):
                        raise
                # OCI tags cannot hold "+": Helm pushes 1.0.0+b as 1.0.0_b
                try:
                    chosen = pick_version(semver, [(t.replace("_", "+"), "") for t in tags])
                except InvalidConstraint as exc:
                    raise _Unavailable(f"{what}: semver {semver!r}: {exc}") from exc
                if chosen is None:
                    raise _Unavailable(f"{what}: no tag of {ref} matches {semver!r}")
                tag = chosen.replace("+", "_")
                resolution_key = f"oci|{what}|{ref}|{tag}|{digest}|{media_type}"
            manifest, manifest_digest = fetcher.oci_manifest(ref, digest or tag, creds)
            layer = chart_layer(manifest, media_type)
            if layer is None:
                raise _Unavailable(f"{what}: {ref}:{digest or tag} holds no Helm chart layer")
            cached = cached_package(layer)
            if cached is None:
                cached = store_package(fetcher.oci_blob(ref, layer, creds), layer)
        except FetchFailed as exc:
            raise _Unavailable(f"{what}: {exc}") from exc
        remember("resolved", resolution_key, {"digest": cached.digest, "manifest": manifest_digest})
        return cached, manifest_digest, "" if digest else tag

    # credentials ------------------------------------------------------------------------------------

    def _secret(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return self._object(namespace, "Secret", name)

    def _secret_data(
        self, source: Mapping[str, Any], what: str, field_name: str = "secretRef"
    ) -> dict[str, str] | None:
        secret_ref = ((source.get("spec") or {}).get(field_name) or {}).get("name")
        if not secret_ref:
            return None
        namespace = str((source.get("metadata") or {}).get("namespace") or "")
        secret = self._secret(namespace, str(secret_ref))
        if secret is None:
            raise _Unavailable(
                f"{what}: credentials Secret {namespace}/{secret_ref} is neither in the checkout nor given"
            )
        if is_sops_encrypted(secret):
            raise _Unavailable(
                f"{what}: credentials Secret {namespace}/{secret_ref} is SOPS-encrypted (not known offline)"
            )
        values: dict[str, str] = {}
        for key, value in data_of(secret).items():
            try:
                values[str(key)] = base64.b64decode(str(value)).decode()
            except (ValueError, UnicodeDecodeError):
                continue
        values.update({str(k): str(v) for k, v in data_of(secret, "stringData").items()})
        return values

    def _fetcher_for(self, source: Mapping[str, Any]) -> ChartFetcher:
        """The run's fetcher, or one of its own for a source with TLS material (its CA, its client
        certificate): one per distinct material, kept in memory for the run."""
        tls = self._tls(source)
        if tls is None:
            return self.fetcher
        from phoebe_cli.kube.charts import ChartFetcher

        with self._lock:
            found = self._tls_fetchers.get(tls)
            if found is None:
                found = self._tls_fetchers[tls] = ChartFetcher(tls=tls)
            return found

    def _tls(self, source: Mapping[str, Any]) -> TlsMaterial | None:
        """``spec.certSecretRef`` (``ca.crt``, ``tls.crt``, ``tls.key``) as source-controller reads
        it; for a HelmRepository without one, the deprecated ``caFile``/``certFile``/``keyFile``
        keys of its ``secretRef``."""
        from phoebe_cli.kube.charts import TlsMaterial

        metadata = source.get("metadata") or {}
        what = f"{source.get('kind')} {metadata.get('namespace')}/{metadata.get('name')}"
        data = self._secret_data(source, what, "certSecretRef")
        keys = ("ca.crt", "tls.crt", "tls.key")
        if data is None and source.get("kind") == "HelmRepository":
            data, keys = self._secret_data(source, what), ("caFile", "certFile", "keyFile")
        if not data or not any(data.get(k) for k in keys):
            return None
        return TlsMaterial(*(data.get(k, "") for k in keys))

    def _credentials(self, source: Mapping[str, Any], registry_host: str = "") -> tuple[str, str] | None:
        """Basic credentials from the source's secretRef: ``username``/``password``, else (OCI) the
        ``.dockerconfigjson`` entry for ``registry_host``."""
        metadata = source.get("metadata") or {}
        what = f"{source.get('kind')} {metadata.get('namespace')}/{metadata.get('name')}"
        data = self._secret_data(source, what)
        if not data:
            return None
        if "username" in data and "password" in data:
            return data["username"], data["password"]
        if not registry_host:
            return None
        config_text = data.get(".dockerconfigjson")
        if not config_text:
            return None
        try:
            auths = json.loads(config_text).get("auths") or {}
        except (ValueError, AttributeError):
            raise _Unavailable(f"{what}: .dockerconfigjson is not JSON") from None
        for host, entry in auths.items():
            if str(host).removeprefix("https://").removeprefix("http://").split("/")[0] != registry_host:
                continue
            if entry.get("username") and entry.get("password"):
                return str(entry["username"]), str(entry["password"])
            if entry.get("auth"):
                user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
                return user, password
        return None


def _exact(version: str) -> bool:
    """A version that names one version (no range, no wildcard)."""
    from phoebe_cli.flux.semver import parse_version

    return version not in ("", "*") and parse_version(version) is not None


def model_index(model: RepoModel) -> dict[tuple[str, str, str], Mapping[str, Any]]:
    """Every ConfigMap and Secret the checkout applies, as the cluster would hold it (substituted;
    a plain Secret with its real values, which stay in memory), by (namespace, kind, name)."""
    from phoebe_cli.repo.model import as_applied

    index: dict[tuple[str, str, str], Mapping[str, Any]] = {}
    for declared in model.kustomizations.values():
        if declared.state == BuildState.FAILED:
            continue
        for obj in as_applied(declared):  # kustomize already set targetNamespace
            ref = object_ref(obj, declared.ref.namespace)
            index[(ref.namespace, ref.kind, ref.name)] = obj
    return index


MIN_SCRUBBED = 3  # shorter Secret values ("1", "no") would mask half of any manifest


def _masked_strings(real: Any, shown: Any) -> set[str]:
    """The real leaves where the shown values hold the mask."""
    found: set[str] = set()
    if isinstance(real, Mapping) and isinstance(shown, Mapping):
        for key, value in real.items():
            found |= _masked_strings(value, shown.get(key))
    elif isinstance(real, list) and isinstance(shown, list):
        for value, mask in zip(real, shown, strict=False):
            found |= _masked_strings(value, mask)
    elif shown == MASK and real is not None and not isinstance(real, (Mapping, list)):
        text = str(real)
        if len(text) >= MIN_SCRUBBED:
            found.add(text)
    return found


def _scrub(value: Any, secrets: frozenset[str]) -> Any:
    if not secrets:
        return value
    if isinstance(value, dict):
        return {k: _scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, secrets) for v in value]
    if isinstance(value, str):
        for secret in sorted(secrets, key=len, reverse=True):
            if secret in value:
                value = value.replace(secret, MASK)
    return value
