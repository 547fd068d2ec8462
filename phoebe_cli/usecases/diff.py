"""``phoebe diff``: what a change will do.

Two comparisons, one report (``flux.diff.DiffReport``):

- **refs** (offline, CI): the checkout read at ``--base`` and at ``--head`` (default: the working
  tree) with the repo model; the objects each Flux Kustomization yields are paired by their
  ``ObjectKey`` (API group, kind, namespace, name; not the version), so reordering is never a
  change and two kinds of one name in different groups are two objects.
- **cluster**: the checkout's objects server-side-apply dry-run against the cluster, each result
  compared with the live object; prune candidates from the live inventory (see ``diff_cluster``).
  As kustomize-controller: a failed dry-run stops the apply (the Kustomization is failing; later
  stages and pruning do not happen), and a suspended Kustomization applies nothing (not compared
  unless ``include_suspended``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from phoebe_cli.flux import diff as fluxdiff
from phoebe_cli.flux.helmvalues import Lookup, with_effective_values
from phoebe_cli.flux.inventory import ObjectKey
from phoebe_cli.flux.objects import ObjectRef
from phoebe_cli.flux.secrets import data_of
from phoebe_cli.repo.model import (
    BuildState,
    DeclaredKustomization,
    ModelOptions,
    RepoModel,
    inventory_id,
    object_ref,
)
from phoebe_cli.usecases.repo import RepoOptions, checkout_root, declared_snapshot, model_options, path_under

if TYPE_CHECKING:
    from phoebe_cli.kube.session import Session
    from phoebe_cli.usecases.build import RenderedRelease

KUSTOMIZATION = "Kustomization"
BUILT = (BuildState.BUILT, BuildState.PARTIAL)


@dataclass(frozen=True)
class DiffOptions:
    repo: RepoOptions = field(default_factory=RepoOptions)
    base: str | None = None  # a ref: the offline comparison
    head: str | None = None  # None: the working tree
    names: tuple[str, ...] = ()  # Kustomizations: NAME or NAMESPACE/NAME
    namespace: str | None = None
    path: str | None = None  # only Kustomizations whose spec.path is this directory or below it
    recursive: bool = False
    strip_attrs: tuple[str, ...] = fluxdiff.DEFAULT_STRIP_ATTRS
    limit_bytes: int | None = None
    include_suspended: bool = False  # against the cluster: compare suspended Kustomizations too
    render: bool = True  # HelmReleases rendered from their charts and compared object by object
    kube_version: str | None = None  # helm template --kube-version (refs; the cluster's otherwise)


# --- selection ---------------------------------------------------------------------------------
def _name_matches(ref: ObjectRef, names: Iterable[str]) -> bool:
    for wanted in names:
        namespace, _, name = wanted.rpartition("/")
        if name == ref.name and (not namespace or namespace == ref.namespace):
            return True
    return False


def _descendants(models: Iterable[RepoModel], roots: set[ObjectRef]) -> set[ObjectRef]:
    """The Kustomizations below ``roots``: what their builds yield, and so on (in either model)."""
    found = set(roots)
    changed = True
    while changed:
        changed = False
        for model in models:
            for ref, declared in model.objects.items():
                if declared.kind.kind == KUSTOMIZATION and declared.declared_by in found and ref not in found:
                    found.add(ref)
                    changed = True
    return found


def select(models: list[RepoModel], options: DiffOptions) -> list[ObjectRef]:
    refs: set[ObjectRef] = set()
    for model in models:
        refs.update(model.kustomizations)
    missing = [name for name in options.names if not any(_name_matches(r, [name]) for r in refs)]
    if missing:
        from phoebe_cli.errors import NotFound

        raise NotFound(f"no Flux Kustomization {', '.join(missing)} in the checkout")
    chosen = {r for r in refs if not options.names or _name_matches(r, options.names)}
    if options.names and options.recursive:
        chosen = _descendants(models, chosen) & refs
    if options.namespace:
        chosen = {r for r in chosen if r.namespace == options.namespace}
    if options.path:
        by_path = {r: k.path for m in models for r, k in m.kustomizations.items()}
        chosen = {r for r in chosen if path_under(by_path[r], options.path)}
    return sorted(chosen, key=lambda r: (r.namespace, r.name))


# --- comparing two builds of one Kustomization -------------------------------------------------
def _with_digests(secret: dict[str, Any], digests: Mapping[str, str] | None) -> dict[str, Any]:
    """A masked Secret with each value replaced by its digest, so that comparing two tells a
    changed value from an unchanged one (the comparison never shows Secret values)."""
    if digests is None:
        return secret
    result = {k: v for k, v in secret.items() if k != "stringData"}
    result["data"] = dict(digests)
    return result


def _key(obj: Mapping[str, Any], default_namespace: str) -> ObjectKey:
    """The object's key as the Kustomization applies it: its namespace defaulted."""
    ref = object_ref(obj, default_namespace)
    return ObjectKey(str(obj.get("apiVersion", "")), ref.kind, ref.namespace or None, ref.name)


def _objects(declared: DeclaredKustomization | None) -> dict[ObjectKey, dict[str, Any]]:
    if declared is None or declared.state not in BUILT:
        return {}
    built = {}
    for obj in declared.objects:
        key = _key(obj, declared.ref.namespace)
        digests = declared.secret_digests.get(inventory_id(obj, declared.ref.namespace))
        built[key] = _with_digests(obj, digests) if key.kind == "Secret" else obj
    raw_secrets = {}
    for raw in declared.output.objects if declared.output is not None else []:
        if raw.get("kind") == "Secret" and "sops" not in raw:
            raw_secrets[_key(raw, declared.ref.namespace)] = raw
    # valuesFrom reads Secrets as built (before substitution), so the values they hold can be
    # placed in the release's values — each one masked by helmvalues, never shown
    lookup_in = _build_lookup({**built, **raw_secrets})
    return {
        key: with_effective_values(obj, lookup_in(key.namespace or "")) if obj.get("kind") == "HelmRelease" else obj
        for key, obj in built.items()
    }


def _build_lookup(built: Mapping[ObjectKey, dict[str, Any]]) -> Callable[[str], Lookup]:
    """A release's valuesFrom sources (core ConfigMaps and Secrets) are looked up in its namespace
    among the same build's objects."""

    def lookup_in(namespace: str) -> Lookup:
        return lambda kind, name: built.get(ObjectKey("v1", kind, namespace, name))

    return lookup_in


def _side_problem(declared: DeclaredKustomization | None) -> str | None:
    if declared is None:
        return None
    if declared.state == BuildState.FAILED:
        return declared.message
    if declared.state == BuildState.NOT_IN_CHECKOUT:
        return declared.message
    if declared.state == BuildState.PARTIAL:
        return declared.message
    return None


def compare_builds(
    ref: ObjectRef,
    base: DeclaredKustomization | None,
    head: DeclaredKustomization | None,
    labels: tuple[str, str],
    options: DiffOptions,
) -> fluxdiff.KustomizationDiff:
    warnings = []
    for label, declared in zip(labels, (base, head), strict=True):
        problem = _side_problem(declared)
        if problem:
            warnings.append(f"{ref} at {label}: {problem}")
    base_built = base is not None and base.state in BUILT
    head_built = head is not None and head.state in BUILT
    build_state = ""
    if base is not None and head is not None and base_built != head_built:
        build_state = "base-only" if base_built else "head-only"
    # What an unbuildable side yields is unknown: compare nothing rather than invent.
    if (base is not None and head is not None and not (base_built and head_built)) or (
        (base is None and not head_built) or (head is None and not base_built)
    ):
        return fluxdiff.KustomizationDiff(ref, (), 0, tuple(warnings), build_state)
    present = head if head is not None else base
    spec = present.spec if present is not None else {}
    ignore = fluxdiff.ignore_rules(spec)
    prune = bool(spec.get("prune"))
    before, after = _objects(base), _objects(head)
    results, unchanged = fluxdiff.compare_sets(
        before,
        after,
        sides=labels,
        strip_attrs=options.strip_attrs,
        ignore=ignore,
        limit_bytes=options.limit_bytes,
        prune=prune,
    )
    return fluxdiff.KustomizationDiff(ref, results, unchanged, tuple(warnings), build_state)


# --- HelmReleases rendered ----------------------------------------------------------------------
HELMRELEASE = "HelmRelease"


def releases_of(model: RepoModel, ks: ObjectRef) -> list[ObjectRef]:
    """The HelmReleases a Kustomization's build yields."""
    return sorted(
        (ref for ref, d in model.objects.items() if d.kind.kind == HELMRELEASE and d.declared_by == ks),
        key=lambda r: (r.namespace, r.name),
    )


def _digest_of(value: Any) -> str:
    import hashlib
    import json

    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def release_inputs(model: RepoModel, ref: ObjectRef, index: Mapping[tuple[str, str, str], Any]) -> str:
    """A digest of everything a HelmRelease's render depends on, known without rendering: the
    HelmRelease, its valuesFrom sources, its chart's source objects, and the chart's files when
    the chart is in the checkout. Equal at two refs: the render is equal (changed-only). In memory
    only: values from Secrets go into it."""
    from phoebe_cli.flux.helmrelease import chart_request_of_helmchart, settings_of
    from phoebe_cli.repo.charts import ChartProblem, local_chart

    declared = model.objects[ref]
    parts: list[Any] = [declared.obj]
    for entry in (declared.obj.get("spec") or {}).get("valuesFrom") or []:
        if isinstance(entry, Mapping):
            parts.append(index.get((ref.namespace, str(entry.get("kind", "")), str(entry.get("name", "")))))
    request = settings_of(declared.obj, ref.namespace).chart
    seen = 0
    while request is not None and seen < 3:  # a HelmChart names a source in turn
        seen += 1
        source = model.objects.get(ObjectRef(request.source_kind, request.source_namespace, request.source_name))
        parts.append([request.source, request.chart, request.version, source.obj if source else None])
        if request.source_kind in ("GitRepository", "Bucket"):
            for ks in model.kustomizations.values():
                source_ref = ks.spec.get("sourceRef") or {}
                if (
                    source_ref.get("kind") == request.source_kind
                    and source_ref.get("name") == request.source_name
                    and ks.source_dir is not None
                ):
                    try:
                        parts.append(local_chart(ks.source_dir / request.chart).digest)
                    except ChartProblem as exc:
                        parts.append(str(exc))
                    break
        request = (
            chart_request_of_helmchart(source.obj, request.source_namespace)
            if source is not None and request.source_kind == "HelmChart"
            else None
        )
    return _digest_of(parts)


def _release_key(obj: Mapping[str, Any], namespace: str) -> ObjectKey:
    return _key(obj, namespace)


def rendered_objects(release: RenderedRelease, *, hooks: bool = True) -> dict[ObjectKey, dict[str, Any]]:
    """A render's manifest and hooks by key (namespaced kinds in the release namespace, as Helm
    applies them), each Secret with its values replaced by their digests: compared, never shown.
    Hooks are compared like the rest (an upgrade stores and runs the new ones)."""
    return keyed_manifest([*release.objects, *(release.hooks if hooks else ())], release.target_namespace)


def keyed_manifest(manifest: Iterable[Mapping[str, Any]], namespace: str) -> dict[ObjectKey, dict[str, Any]]:
    """Objects of a release manifest by key, namespaced kinds in ``namespace`` when they name none
    (Helm applies them there), Secrets with their values as digests."""
    objects = {}
    for found in manifest:
        key = _release_key(found, namespace)
        obj = dict(found)
        if key.namespace and not (obj.get("metadata") or {}).get("namespace"):
            obj["metadata"] = {**(obj.get("metadata") or {}), "namespace": key.namespace}
        digested = _digest_values(obj) if key.kind == "Secret" and key.group == "" else obj
        objects[key] = digested if digested is not None else obj
    return objects


def _chart_label(release: RenderedRelease | None) -> str:
    return f"{release.chart_name} {release.chart_version}".strip() if release is not None else ""


def _not_rendered(release: RenderedRelease | None, label: str) -> str | None:
    from phoebe_cli.usecases.build import RENDERED

    if release is None or release.state == RENDERED:
        return None
    return f"not rendered at {label} ({release.state}): {release.reason}"


def compare_releases(
    ref: ObjectRef,
    base: RenderedRelease | None,
    head: RenderedRelease | None,
    labels: tuple[str, str],
    options: DiffOptions,
) -> fluxdiff.ReleaseDiff:
    """One HelmRelease's render at two refs (None: not declared there), object by object."""
    charts = (_chart_label(base), _chart_label(head))
    problems = [p for p in (_not_rendered(base, labels[0]), _not_rendered(head, labels[1])) if p]
    if problems:
        return fluxdiff.ReleaseDiff(ref, (), 0, charts, "; ".join(problems), compared=False)
    before = rendered_objects(base) if base is not None else {}
    after = rendered_objects(head) if head is not None else {}
    note = ""
    if head is not None:
        crds_before, crds_after, note = crds_between(base, head)
        before, after = {**crds_before, **before}, {**crds_after, **after}
    objects, unchanged = fluxdiff.compare_sets(
        before, after, sides=labels, strip_attrs=options.strip_attrs, limit_bytes=options.limit_bytes
    )
    return fluxdiff.ReleaseDiff(ref, objects, unchanged, charts, note)


def _crds(release: RenderedRelease | None) -> dict[ObjectKey, dict[str, Any]]:
    """The chart's CRDs (``crds/``) by key: helm-controller applies them itself, by policy."""
    if release is None:
        return {}
    return {_key(c, ""): c for c in release.crds if c.get("kind") == "CustomResourceDefinition"}


def crds_between(
    base: RenderedRelease | None, head: RenderedRelease
) -> tuple[dict[ObjectKey, dict[str, Any]], dict[ObjectKey, dict[str, Any]], str]:
    """The chart CRDs one ref and the other compare, as helm-controller applies them on the
    install (``install.crds``, when ``base`` has no release) or the upgrade (``upgrade.crds``):
    Skip applies none, Create only makes missing ones, CreateReplace makes and replaces (never
    deletes). What the policy leaves out is said in the note."""
    before, after = _crds(base), _crds(head)
    policy, field = (head.install_crds, "install.crds") if base is None else (head.upgrade_crds, "upgrade.crds")
    changed = sorted(k.name for k in set(before) | set(after) if before.get(k) != after.get(k))
    if not changed:
        return {}, {}, ""
    if policy == "CreateReplace":
        gone = sorted(k.name for k in before if k not in after)
        note = f"the chart no longer has CRD(s) {', '.join(gone)}: helm-controller never deletes CRDs" if gone else ""
        return {k: v for k, v in before.items() if k in after}, after, note
    if policy == "Create":
        kept = sorted(k.name for k in after if k in before and before[k] != after[k])
        note = f"CRD(s) {', '.join(kept)} change in the chart; {field} Create only creates missing ones" if kept else ""
        return {}, {k: v for k, v in after.items() if k not in before}, note
    return {}, {}, f"CRD(s) {', '.join(changed)} change in the chart; {field} is {policy}: helm-controller leaves them"


def _not_rendered_anywhere(
    owners: Mapping[ObjectRef, ObjectRef], problem: Exception
) -> dict[ObjectRef, list[fluxdiff.ReleaseDiff]]:
    """helm is missing: the rest of the diff stands, each release says it is not rendered and why."""
    note = f"not rendered: {problem}; --no-render compares its spec and values only"
    per_ks: dict[ObjectRef, list[fluxdiff.ReleaseDiff]] = {}
    for release, ks in owners.items():
        per_ks.setdefault(ks, []).append(fluxdiff.ReleaseDiff(release, (), 0, note=note, compared=False))
    return per_ks


def _render_options(options: DiffOptions, model_opts: ModelOptions, **more: Any) -> Any:
    from phoebe_cli.usecases.build import RenderOptions

    return RenderOptions(
        kube_version=options.kube_version,
        sources=dict(model_opts.sources),
        use_cache=options.repo.use_cache,
        **more,
    )


def render_changed(
    base_model: RepoModel,
    head_model: RepoModel,
    chosen: Iterable[ObjectRef],
    labels: tuple[str, str],
    options: DiffOptions,
    model_opts: ModelOptions,
) -> tuple[dict[ObjectRef, list[fluxdiff.ReleaseDiff]], int]:
    """The HelmReleases of the chosen Kustomizations whose inputs differ between the refs,
    rendered at both and compared: per Kustomization, and how many releases were rendered."""
    from phoebe_cli.usecases.build import model_index, render_helmreleases

    base_index, head_index = model_index(base_model), model_index(head_model)
    owners: dict[ObjectRef, ObjectRef] = {}
    for ks in chosen:
        for model in (base_model, head_model):
            for release in releases_of(model, ks):
                owners.setdefault(release, ks)
    changed = []
    for release in sorted(owners, key=lambda r: (r.namespace, r.name)):
        base_in = release_inputs(base_model, release, base_index) if release in base_model.objects else None
        head_in = release_inputs(head_model, release, head_index) if release in head_model.objects else None
        if base_in != head_in:
            changed.append(release)
    if not changed:
        return {}, 0
    from phoebe_cli.errors import ToolMissing

    render_opts = _render_options(options, model_opts)
    base_refs = [r for r in changed if r in base_model.objects]
    head_refs = [r for r in changed if r in head_model.objects]
    per_ks: dict[ObjectRef, list[fluxdiff.ReleaseDiff]] = {}
    try:
        base_renders = {r.ref: r for r in render_helmreleases(base_model, base_refs, render_opts)}
        head_renders = {r.ref: r for r in render_helmreleases(head_model, head_refs, render_opts)}
    except ToolMissing as exc:
        return _not_rendered_anywhere({r: owners[r] for r in changed}, exc), 0
    for release in changed:
        result = compare_releases(release, base_renders.get(release), head_renders.get(release), labels, options)
        if result.differs or not result.compared or result.note:
            per_ks.setdefault(owners[release], []).append(result)
    return per_ks, len(base_refs) + len(head_refs)


# --- ref against ref ---------------------------------------------------------------------------
def _model_options_for(tree: Path, root: Path, options: ModelOptions) -> ModelOptions:
    """The same options for a copy of the checkout at another ref: --root-file paths re-rooted."""

    roots = tuple(tree / p.relative_to(root) if p.is_relative_to(root) else p for p in options.roots)
    return dataclasses.replace(options, roots=roots)


def diff_refs(options: DiffOptions) -> tuple[fluxdiff.DiffReport, int, int]:
    """The report, the number of kustomize runs it took and of HelmRelease renders (changed-only:
    a release whose inputs are equal at both refs is not rendered)."""
    from contextlib import ExitStack

    from phoebe_cli.repo import refs
    from phoebe_cli.repo.model import load_model

    assert options.base is not None
    base_options = model_options(options.repo)
    root = checkout_root(options.repo.path, options.repo.path_option)
    base_ref = refs.resolve(root, options.base)
    head_ref = refs.resolve(root, options.head) if options.head else None
    with ExitStack() as stack:
        use_cache = options.repo.use_cache
        base_tree = stack.enter_context(refs.checked_out(root, base_ref, use_cache=use_cache))
        head_tree = stack.enter_context(refs.checked_out(root, head_ref, use_cache=use_cache)) if head_ref else root
        base_model = load_model(base_tree, _model_options_for(base_tree, root, base_options))
        head_model = load_model(head_tree, _model_options_for(head_tree, root, base_options))
        labels = (base_ref.label, head_ref.label if head_ref else "working tree")
        chosen = select([base_model, head_model], options)
        # rendered while both trees are held: charts in the checkout are read from them
        releases, renders = (
            render_changed(base_model, head_model, chosen, labels, options, base_options) if options.render else ({}, 0)
        )
    kustomizations = []
    for ref in chosen:
        compared = compare_builds(
            ref, base_model.kustomizations.get(ref), head_model.kustomizations.get(ref), labels, options
        )
        kustomizations.append(_with_releases(compared, releases.get(ref, ())))
    report = fluxdiff.DiffReport(
        "refs", labels[0], labels[1], tuple(kustomizations), flux_objects=declared_snapshot(head_model).objects
    )
    return report, base_model.kustomize_runs + head_model.kustomize_runs, renders


# --- the checkout against the cluster ---------------------------------------------------------
CLUSTER, CHECKOUT = "cluster", "checkout"


def _digest_values(secret: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A live Secret with its values replaced by their digests (compared, never shown): keyed, as
    the model's are (repo.digests)."""
    from phoebe_cli.repo.digests import secret_digests

    return None if secret is None else _with_digests(dict(secret), secret_digests(secret))


def _sent_values(secret: Mapping[str, Any], digests: Mapping[str, str] | None) -> dict[str, str]:
    """What stands for each value of a checkout's Secret in its dry-run: its digest, or the mask
    when the values are unknown (SOPS)."""
    if digests is not None:
        return dict(digests)
    keys = [*_keys_of(secret.get("data")), *_keys_of(secret.get("stringData"))]
    return dict.fromkeys(keys, fluxdiff.MASK)


def _keys_of(data: Any) -> list[str]:
    return [str(k) for k in data] if isinstance(data, Mapping) else []


def _b64(text: str) -> str:
    import base64

    return base64.b64encode(text.encode()).decode()


def _for_dry_run(secret: dict[str, Any], sent: Mapping[str, str]) -> dict[str, Any]:
    """A Secret the server can dry-run without its values: each value stands as its digest (SOPS:
    as a constant — unknown), the phoebe marker removed. Only the key set and metadata count."""
    result = {k: v for k, v in secret.items() if k not in ("stringData", "data")}
    result["data"] = {k: _b64(v) for k, v in sent.items()}
    meta = dict(result.get("metadata") or {})
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k != fluxdiff.SOPS_MARK}
    meta["annotations"] = annotations
    if not annotations:
        meta.pop("annotations")
    result["metadata"] = meta
    return result


def _dry_run_secret_back(result: Mapping[str, Any], sent: Mapping[str, str], encrypted: bool) -> dict[str, Any]:
    """The dry-run answer for such a Secret, its data as the comparison wants it: what was sent
    for each key sent (digests, or the mask for an encrypted one, then compared by key set). A key
    the answer keeps from the live object (another field manager owns it) holds the live value:
    digested, as the live side is (``_digest_values``) — never decoded as text, it may be binary."""
    import base64
    import binascii

    from phoebe_cli.repo.digests import value_digest

    data: dict[str, str] = {}
    for key, value in (result.get("data") or {}).items():
        text = "" if value is None else str(value)
        if key in sent and text == _b64(sent[key]):
            data[key] = sent[key]
            continue
        try:
            data[key] = value_digest(base64.b64decode(text, validate=True))
        except (binascii.Error, ValueError):
            data[key] = value_digest(text.encode())
    answer = dict(result)
    answer["data"] = data
    if encrypted:
        meta = dict(answer.get("metadata") or {})
        meta["annotations"] = {**(meta.get("annotations") or {}), fluxdiff.SOPS_MARK: "encrypted"}
        answer["metadata"] = meta
    return answer


def _undecodable_data(raw: Mapping[str, Any] | None) -> str | None:
    """Why the API server cannot take this Secret's ``data`` (it reads each value as Go's
    encoding/json reads bytes: standard base64 with padding, line breaks skipped), or None.
    ``raw`` is the Secret as kustomize built it; a value postBuild substitution may still change
    (one with a ``$``) is not judged."""
    import base64
    import binascii

    data = None if raw is None else raw.get("data")
    if data is None:
        return None
    if not isinstance(data, Mapping):
        return "data is not a map of keys to base64 values"
    for key, value in data.items():
        path = fluxdiff.join_path("data", str(key))
        if value is None:
            continue
        if not isinstance(value, str):
            return f"{path} is not a base64 string"
        if "$" in value:
            continue
        try:
            base64.b64decode(value.replace("\r", "").replace("\n", ""), validate=True)
        except (binascii.Error, ValueError):
            return f"{path} is not base64"
    return None


async def _read_source(session: Session, namespace: str, kind: str, name: str) -> dict[str, str] | None:
    """A substituteFrom ConfigMap's or Secret's data from the cluster (Secret values decoded, in
    memory only), None when there is none."""
    import base64

    from phoebe_cli.errors import NotFound

    plural = "configmaps" if kind == "ConfigMap" else "secrets"
    try:
        obj = await session.kube.get_json(f"/api/v1/namespaces/{namespace}/{plural}/{name}")
    except NotFound:
        return None
    data = {str(k): str(v) for k, v in data_of(obj).items()}
    if kind == "Secret":
        data = {k: base64.b64decode(v).decode(errors="replace") for k, v in data.items()}
    return data


def _cluster_variables(session: Session) -> Callable[[str], Lookup]:
    """substituteFrom as kustomize-controller reads it — from the cluster, in the Kustomization's
    namespace. The model reads in its own thread; each source is fetched once, on this loop."""
    import asyncio

    loop = asyncio.get_running_loop()
    fetched: dict[tuple[str, str, str], dict[str, str] | None] = {}

    def lookup_in(namespace: str) -> Lookup:
        def lookup(kind: str, name: str) -> dict[str, str] | None:
            key = (namespace, kind, name)
            if key not in fetched:
                future = asyncio.run_coroutine_threadsafe(_read_source(session, namespace, kind, name), loop)
                fetched[key] = future.result()
            return fetched[key]

        return lookup

    return lookup_in


@dataclass(frozen=True)
class _Outgoing:
    """One object of a build on its way to a dry-run: what is sent (a Secret without its values),
    what stands for each value of a Secret (``sent``, None for other kinds), and why the server
    would refuse it when that is known without sending it (``refused``)."""

    obj: dict[str, Any]
    sent: Mapping[str, str] | None = None
    encrypted: bool = False
    refused: str | None = None


def _sendable(declared: DeclaredKustomization) -> list[_Outgoing]:
    """The objects to dry-run, Secrets without their values. A Secret whose ``data`` the API
    server cannot decode is not sent (its values never leave the machine): it is refused here, as
    the server would refuse it (500 "illegal base64 data"), and fails the apply the same way."""
    namespace = declared.ref.namespace
    raw_secrets = {
        _key(raw, namespace): raw
        for raw in (declared.output.objects if declared.output is not None else [])
        if raw.get("kind") == "Secret" and "sops" not in raw
    }
    outgoing = []
    for built in declared.objects:
        if built.get("kind") != "Secret":
            outgoing.append(_Outgoing(built))
            continue
        digests = declared.secret_digests.get(inventory_id(built, namespace))
        sent = _sent_values(built, digests)
        refused = None
        if digests is not None:  # not encrypted: its values as built can be judged
            why = _undecodable_data(raw_secrets.get(_key(built, namespace)))
            if why is not None:
                subject = _key(built, namespace).subject
                refused = (
                    f"{subject} dry-run failed: {why}, which the API server cannot decode (found before sending it)"
                )
        outgoing.append(_Outgoing(_for_dry_run(built, sent), sent, digests is None, refused))
    return outgoing


BLOCKED_REASONS = {"namespace": "its namespace is created by this build", "crd": "its CRD is created by this build"}


def _failure_message(key: ObjectKey, error: Any) -> str:
    """A failed dry-run in kustomize-controller's words (ssa ``DryRunErr``), as its Ready condition
    says it: 'Kind/ns/name dry-run failed (Invalid): <the server's message>', 'Kind/ns/name not
    found: ...'."""
    import re

    from phoebe_cli.errors import NotFound

    subject = key.subject
    text = str(error)
    refused = f"the API server refused the dry-run of {subject} "
    if text.startswith(refused):
        # "(422 Invalid): ..." from kube/: the controller names the reason only
        rest = re.sub(r"^\(\d{3} ([^)]*)\)", r"(\1)", text.removeprefix(refused))
        return f"{subject} dry-run failed {rest}"
    if isinstance(error, NotFound) and error.code == 404 and text.startswith("not found: "):
        return f"{subject} not found: {text.removeprefix('not found: ')}"
    return f"{subject} dry-run failed: {text}"


def _judge(
    result: Any, outgoing: _Outgoing, compare_options: dict[str, Any]
) -> fluxdiff.ObjectDiff | fluxdiff.ObjectFailure:
    """One dry-run result as a diff (unchanged included), or the failure that stops the apply."""
    secret = result.key.kind == "Secret" and result.key.api_version == "v1"
    live = _digest_values(result.live) if secret else result.live
    if result.skipped:
        return fluxdiff.compare(live, result.desired, **compare_options)
    if result.action == "created" and result.obj is None:
        before = None if result.blocked_by else live
        reason = BLOCKED_REASONS.get(result.blocked_by or "", "re-created: an immutable field changes (force)")
        return dataclasses.replace(fluxdiff.compare(before, result.desired, **compare_options), reason=reason)
    if result.error is not None or result.obj is None:
        qualified = result.key in compare_options.get("qualify", ())
        return fluxdiff.ObjectFailure(result.key, _failure_message(result.key, result.error), qualified)
    if result.action == "unchanged" and not secret:
        # Flux's own drift test says there is nothing to apply
        return fluxdiff.ObjectDiff(ObjectKey.of(result.obj), fluxdiff.UNCHANGED)
    after = _dry_run_secret_back(result.obj, outgoing.sent or {}, outgoing.encrypted) if secret else result.obj
    return fluxdiff.compare(live, after, **compare_options)


def _inventory_keys(live_ks: Mapping[str, Any] | None) -> list[ObjectKey]:
    """The objects a live Kustomization's inventory names (ids that cannot be read left out)."""
    from phoebe_cli.flux.inventory import parse_inventory_id

    keys = []
    status = (live_ks or {}).get("status") or {}
    for entry in (status.get("inventory") or {}).get("entries") or []:
        try:
            keys.append(parse_inventory_id(str(entry.get("id", "")), str(entry.get("v", ""))))
        except ValueError:
            continue
    return keys


async def _pruned(
    session: Session,
    catalog: Any,
    ref: ObjectRef,
    live_ks: Mapping[str, Any],
    built_ids: set[str],
    compare_options: dict[str, Any],
) -> tuple[list[fluxdiff.ObjectDiff], list[str]]:
    """What the live inventory holds and the build no longer has: deleted, when prune is on; and
    warnings. An inventory entry that cannot be read fails kustomize-controller's garbage
    collection (``inventory.Diff``), so then nothing is pruned: no deletions, a warning naming it."""
    from phoebe_cli.flux.inventory import inventory_id as key_id
    from phoebe_cli.flux.inventory import parse_inventory_id
    from phoebe_cli.kube.apply import get_objects

    entries = ((live_ks.get("status") or {}).get("inventory") or {}).get("entries") or []
    gone: list[ObjectKey] = []
    unreadable: list[str] = []
    for entry in entries if isinstance(entries, list) else [entries]:
        try:
            if not isinstance(entry, Mapping):
                raise ValueError(entry)
            key = parse_inventory_id(str(entry.get("id", "")), str(entry.get("v", "")))
        except ValueError:
            unreadable.append(repr(str(entry.get("id", "")) if isinstance(entry, Mapping) else entry))
            continue
        if key_id(key) not in built_ids:
            gone.append(key)
    if unreadable:
        return [], [
            f"{ref}: its inventory on the cluster holds {_plural(len(unreadable), 'entry', 'entries')} that cannot "
            f"be read ({', '.join(unreadable)}; an id is <namespace>_<name>_<group>_<kind>): kustomize-controller "
            "prunes nothing while it does, so nothing is shown as deleted"
        ]
    diffs = []
    for key, obj in zip(gone, await get_objects(session.kube, catalog, gone), strict=True):
        if obj is not None:  # None: already gone
            before = _digest_values(obj) if key.kind == "Secret" else obj
            diffs.append(fluxdiff.compare(before, None, **compare_options))
    return diffs, []


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


async def _diff_one(
    session: Session,
    catalog: Any,
    declared: DeclaredKustomization,
    live_ks: Mapping[str, Any] | None,
    options: DiffOptions,
    suspended: str = "",
) -> fluxdiff.KustomizationDiff:
    from phoebe_cli.flux.apply import apply_stage
    from phoebe_cli.flux.inventory import inventory_id as key_id
    from phoebe_cli.kube.apply import dry_run_all

    ref = declared.ref
    warnings: list[str] = []
    if declared.state == BuildState.PARTIAL:
        warnings.append(f"{ref}: {declared.message}")
    spec = declared.spec
    compare_options: dict[str, Any] = {
        "sides": (CLUSTER, CHECKOUT),
        "strip_attrs": options.strip_attrs,
        "ignore": fluxdiff.ignore_rules(spec),
        "limit_bytes": options.limit_bytes,
        "before_is_live": True,
        "prune": bool(spec.get("prune")),
        "owner": (ref.name, ref.namespace),
    }
    outgoing = _sendable(declared)
    sending = [o for o in outgoing if o.refused is None]
    results = iter(
        await dry_run_all(
            session.kube,
            catalog,
            [o.obj for o in sending],
            owner=(ref.name, ref.namespace),
            recreate=bool(spec.get("force")),
            ignore=compare_options["ignore"],
        )
    )
    answered = [(o, None if o.refused else next(results)) for o in outgoing]
    keys = [r.key if r is not None else _key(o.obj, ref.namespace) for o, r in answered]
    # named with their API group where kind, namespace and name alone are ambiguous
    compare_options["qualify"] = fluxdiff.ambiguous_keys([*keys, *_inventory_keys(live_ks)])
    judged: list[tuple[int, fluxdiff.ObjectDiff | fluxdiff.ObjectFailure]] = []
    for (sent, result), key in zip(answered, keys, strict=True):
        if result is None:
            assert sent.refused is not None
            failure = fluxdiff.ObjectFailure(key, sent.refused, key in compare_options["qualify"])
            judged.append((apply_stage(sent.obj), failure))
        else:
            judged.append((apply_stage(result.desired), _judge(result, sent, compare_options)))
    # ssa's ApplyAllStaged: a stage is applied only when every dry-run of it passed; after a
    # failure no later stage is applied and nothing is pruned
    failures = [(stage, f) for stage, f in judged if isinstance(f, fluxdiff.ObjectFailure)]
    stops_at = min((stage for stage, _ in failures), default=None)
    diffs: list[fluxdiff.ObjectDiff] = []
    unchanged = held_back = 0
    for stage, item in judged:
        if isinstance(item, fluxdiff.ObjectFailure):
            continue
        if item.change == fluxdiff.UNCHANGED:
            unchanged += 1
        elif stops_at is not None and stage >= stops_at and item.change in (fluxdiff.CREATED, fluxdiff.CHANGED):
            held_back += 1
        else:
            diffs.append(item)
    if compare_options["prune"] and live_ks is not None:
        built_ids = {key_id(key) for key in keys}
        pruned, problems = await _pruned(session, catalog, ref, live_ks, built_ids, compare_options)
        warnings.extend(problems)
        if stops_at is None:
            diffs.extend(pruned)
        else:
            held_back += sum(1 for d in pruned if d.change == fluxdiff.DELETED)
            diffs.extend(d for d in pruned if d.change != fluxdiff.DELETED)
    return fluxdiff.KustomizationDiff(
        ref,
        tuple(diffs),
        unchanged,
        tuple(warnings),
        failures=tuple(f for _, f in failures),
        not_applied=held_back,
        suspended=suspended,
    )


def suspended_where(declared: DeclaredKustomization, live_ks: Mapping[str, Any] | None) -> str:
    """Where a Kustomization is suspended, as kustomize-controller sees it: on the cluster (the
    live object's ``spec.suspend``: it applies nothing until resumed), else in the checkout (once
    applied, it is suspended); "" when it is not."""
    if live_ks is not None and (live_ks.get("spec") or {}).get("suspend") is True:
        return fluxdiff.SUSPENDED_ON_CLUSTER
    if declared.spec.get("suspend") is True:
        return fluxdiff.SUSPENDED_IN_CHECKOUT
    return ""


async def _strict_substitution_on(session: Session) -> bool | None:
    """Whether the cluster's kustomize-controller runs with StrictPostBuildSubstitutions (then an
    unset variable fails a build there): its gate, else its version's default. None when it cannot
    be read (then the checkout says)."""
    from phoebe_cli.errors import ClusterError
    from phoebe_cli.flux.installation import strict_substitution_of
    from phoebe_cli.kube.discovery import DEPLOYMENTS

    try:
        deployment = await session.kube.get_json(
            DEPLOYMENTS.object_path(session.flux_namespace, "kustomize-controller"),
            what="the kustomize-controller Deployment",
        )
    except ClusterError:
        return None
    return strict_substitution_of(deployment)


# --- HelmReleases against what helm-controller deployed ---------------------------------------
async def _stored_release(session: Session, release: RenderedRelease) -> tuple[Any, str]:
    """The release revision an upgrade starts from (``flux.helmstorage.StoredRelease``), or None
    with why there is none: the storage Secrets of the release in its storage namespace."""
    from phoebe_cli.errors import ClusterError
    from phoebe_cli.flux.helmstorage import CorruptRelease, current_secret, decode_release, release_selector

    where = f"{release.storage_namespace}/{release.release_name}"
    try:
        secrets, _ = await session.kube.list_all(
            f"/api/v1/namespaces/{release.storage_namespace}/secrets",
            params={"labelSelector": release_selector(release.release_name)},
            what=f"the Helm storage of release {where}",
        )
    except ClusterError as exc:
        return None, f"its Helm storage cannot be read: {exc}"
    current, last = current_secret(secrets)
    if current is None:
        if last is None:
            return None, f"not installed yet (no Helm release {where}): every object is created"
        status = str(((last.get("metadata") or {}).get("labels") or {}).get("status", ""))
        return None, f"Helm release {where} has no deployed revision (last: {status})"
    try:
        stored = decode_release(current)
    except CorruptRelease as exc:
        return None, f"its Helm storage cannot be read: {exc}"
    return stored, ""


async def compare_with_storage(
    session: Session,
    release: RenderedRelease,
    options: DiffOptions,
    same_post_renderers: bool = False,
    catalog: Any = None,
) -> fluxdiff.ReleaseDiff:
    """What the next upgrade changes: the manifest of the deployed revision against the render of
    the checkout (each object, Secrets by digest). Not installed: every object created. No upgrade
    when helm-controller would make none: the deployed revision has the same chart version and the
    same values, and (``same_post_renderers``) the live HelmRelease the same post-renderers. When
    it upgrades, the rendered objects are also dry-run against the live ones (``_upgrade_dry_run``;
    ``catalog``: the cluster's served kinds, read when None)."""
    from phoebe_cli.repo.helm import TemplateFailed, split_manifest
    from phoebe_cli.usecases.build import RENDERED

    after_label = "checkout"
    chart_after = _chart_label(release) if release.state == RENDERED else ""
    if release.state != RENDERED:
        note = f"not rendered ({release.state}): {release.reason}"
        return fluxdiff.ReleaseDiff(release.ref, (), 0, ("", chart_after), note, compared=False)
    stored, why = await _stored_release(session, release)
    options_ = {"strip_attrs": options.strip_attrs, "limit_bytes": options.limit_bytes}
    if stored is None:
        if not why.startswith("not installed yet"):
            return fluxdiff.ReleaseDiff(release.ref, (), 0, ("", chart_after), why, compared=False)
        objects, unchanged = fluxdiff.compare_sets(
            {}, rendered_objects(release), sides=("not installed", after_label), **options_
        )
        crds, crd_failures, crd_note = await _crds_on_cluster(session, catalog, release, options, installing=True)
        note = "; ".join(n for n in (why, crd_note) if n)
        return fluxdiff.ReleaseDiff(
            release.ref, (*crds, *objects), unchanged, ("", chart_after), note, failures=crd_failures
        )
    try:
        deployed = split_manifest(stored.manifest).manifest
        for hook in stored.hooks:
            deployed.extend(split_manifest(hook).hooks)
    except TemplateFailed as exc:
        note = f"the manifest of revision {stored.revision} cannot be read: {exc}"
        return fluxdiff.ReleaseDiff(release.ref, (), 0, ("", chart_after), note, compared=False)
    before_label = f"deployed revision {stored.revision}"
    chart_before = f"{stored.chart} {stored.chart_version}".strip()
    if (
        same_post_renderers
        and stored.status == "deployed"
        and stored.chart_version == release.chart_version
        and stored.config_digest == release.values_digest
    ):
        # helm-controller upgrades only when the chart, the values or the post-renderers change:
        # the render would differ only where the chart prints .Release.Revision or the like
        return fluxdiff.ReleaseDiff(release.ref, (), len(release.objects), (chart_before, chart_after))
    objects, unchanged = fluxdiff.compare_sets(
        keyed_manifest(deployed, stored.namespace or release.target_namespace),
        rendered_objects(release),
        sides=(before_label, after_label),
        **options_,
    )
    # hooks are made afresh when they run: only the manifest's objects meet live ones
    manifest = rendered_objects(release, hooks=False)
    live, failures = await _upgrade_dry_run(session, catalog, release, manifest, objects, options)
    crds, crd_failures, crd_note = await _crds_on_cluster(session, catalog, release, options, installing=False)
    status = "" if stored.status == "deployed" else f"revision {stored.revision} is {stored.status}"
    note = "; ".join(n for n in (status, crd_note) if n)
    return fluxdiff.ReleaseDiff(
        release.ref,
        (*crds, *objects),
        unchanged,
        (chart_before, chart_after),
        note,
        live=live,
        failures=(*crd_failures, *failures),
    )


async def _crds_on_cluster(
    session: Session, catalog: Any, release: RenderedRelease, options: DiffOptions, *, installing: bool
) -> tuple[tuple[fluxdiff.ObjectDiff, ...], tuple[fluxdiff.ObjectFailure, ...], str]:
    """What the install (``install.crds``) or upgrade (``upgrade.crds``) does to the chart's CRDs,
    as helm-controller applies them before the release: each one server-side-apply dry-run as it
    applies them (manager helm-controller, conflicts forced, no Helm ownership). Create makes the
    missing ones; CreateReplace makes them and puts the chart's back over the live ones; Skip
    touches none (the note names those the cluster lacks)."""
    from phoebe_cli.kube.apply import dry_run_all, resource_catalog

    crds = list(_crds(release).values())
    policy, field = (release.install_crds, "install.crds") if installing else (release.upgrade_crds, "upgrade.crds")
    if not crds:
        return (), (), ""
    if catalog is None:
        catalog = await resource_catalog(session.kube)
    results = await dry_run_all(session.kube, catalog, crds, field_manager=HELM_FIELD_MANAGER, force=True)
    missing = sorted(r.key.name for r in results if r.live is None)
    if policy not in ("Create", "CreateReplace"):
        note = f"{field} is {policy}: helm-controller will not create CRD(s) {', '.join(missing)}" if missing else ""
        return (), (), note
    compare_options: dict[str, Any] = {
        "sides": (LIVE, AFTER_UPGRADE),
        "strip_attrs": options.strip_attrs,
        "limit_bytes": options.limit_bytes,
    }
    changes: list[fluxdiff.ObjectDiff] = []
    failures: list[fluxdiff.ObjectFailure] = []
    for result in results:
        if result.live is not None and policy == "Create":
            continue  # Create leaves an existing CRD as it is
        judged = _judge(result, _Outgoing(result.desired), compare_options)
        if isinstance(judged, fluxdiff.ObjectFailure):
            failures.append(judged)
        elif judged.change != fluxdiff.UNCHANGED:
            changes.append(judged)
    return tuple(changes), tuple(failures), ""


def _within(path: str, other: str) -> bool:
    """``path`` is ``other`` or lies under it (``a.b`` under ``a``; ``a[0]``, ``a["x.y"]`` too)."""
    return path == other or path.startswith((other + ".", other + "["))


def _drifted(live_change: fluxdiff.ObjectDiff, manifest_paths: Iterable[str]) -> bool:
    """A change the upgrade makes to a live object that the manifest comparison does not
    explain: some field differs on the cluster from what was deployed."""
    paths = tuple(manifest_paths)
    return any(not any(_within(f.path, p) or _within(p, f.path) for p in paths) for f in live_change.fields)


HELM_FIELD_MANAGER = "helm-controller"  # helm-controller sets Helm's kube.ManagedFieldsManager to its name
LIVE, AFTER_UPGRADE = "cluster", "after upgrade"


def _helm_owned(obj: Mapping[str, Any], release: RenderedRelease) -> dict[str, Any]:
    """An object as Helm applies it: with the ownership metadata Helm's setMetadataVisitor merges
    in (managed-by label, release name and namespace annotations), so that a dry-run does not
    read their absence as removing them."""
    meta = dict(obj.get("metadata") or {})
    meta["labels"] = {**(meta.get("labels") or {}), "app.kubernetes.io/managed-by": "Helm"}
    meta["annotations"] = {
        **(meta.get("annotations") or {}),
        "meta.helm.sh/release-name": release.release_name,
        "meta.helm.sh/release-namespace": release.target_namespace,
    }
    return {**obj, "metadata": meta}


async def _upgrade_dry_run(
    session: Session,
    catalog: Any,
    release: RenderedRelease,
    rendered: Mapping[ObjectKey, dict[str, Any]],
    manifest_changes: Iterable[fluxdiff.ObjectDiff],
    options: DiffOptions,
) -> tuple[tuple[fluxdiff.ObjectDiff, ...], tuple[fluxdiff.ObjectFailure, ...]]:
    """What the upgrade's apply does to the live objects: each rendered object server-side-apply
    dry-run as helm-controller (v1.6, Helm v4) applies it — field manager ``helm-controller``,
    conflicts forced — and the answer compared with the live object. Changed objects, and the
    dry-runs that fail; objects not live are left out (the manifest comparison has them created),
    and so are objects whose every change is one the manifest comparison shows (no drift: the
    live object is as last deployed there). Secrets go without their values (each one's digest
    stands for it), compared by digest."""
    from phoebe_cli.kube.apply import dry_run_all, resource_catalog

    if catalog is None:
        catalog = await resource_catalog(session.kube)
    outgoing = []
    for key, obj in rendered.items():
        owned = _helm_owned(obj, release)
        if key.kind == "Secret" and key.group == "":
            sent = {str(k): str(v) for k, v in (owned.get("data") or {}).items()}
            outgoing.append(_Outgoing(_for_dry_run(owned, sent), sent))
        else:
            outgoing.append(_Outgoing(owned))
    results = await dry_run_all(
        session.kube, catalog, [o.obj for o in outgoing], field_manager=HELM_FIELD_MANAGER, force=True
    )
    compare_options: dict[str, Any] = {
        "sides": (LIVE, AFTER_UPGRADE),
        "strip_attrs": options.strip_attrs,
        "limit_bytes": options.limit_bytes,
        "qualify": fluxdiff.ambiguous_keys([r.key for r in results]),
    }
    explained = {d.key: tuple(f.path for f in d.fields) for d in manifest_changes}
    changed: list[fluxdiff.ObjectDiff] = []
    failures: list[fluxdiff.ObjectFailure] = []
    for result, going in zip(results, outgoing, strict=True):
        if result.live is None:
            continue
        judged = _judge(result, going, compare_options)
        if isinstance(judged, fluxdiff.ObjectFailure):
            failures.append(judged)
        elif judged.change == fluxdiff.CHANGED and _drifted(judged, explained.get(judged.key, ())):
            changed.append(judged)
    by_key = sorted(changed, key=lambda d: d.key.sort_key)
    return tuple(by_key), tuple(sorted(failures, key=lambda f: f.key.sort_key))


async def _live_release(session: Session, ref: ObjectRef) -> Mapping[str, Any] | None:
    """The HelmRelease as the cluster has it, or None (not there, or not readable)."""
    from phoebe_cli.errors import ClusterError
    from phoebe_cli.flux.kinds import HELM_RELEASE

    try:
        served = await session.served(HELM_RELEASE)
        found = await session.kube.get_json(served.object_path(ref.namespace, ref.name), what=str(ref))
    except ClusterError:  # not there (not installed yet), or not readable
        return None
    return found if isinstance(found, Mapping) else None


def _post_renderers(release: Mapping[str, Any] | None) -> Any:
    """A HelmRelease's post-renderers (a sentinel when there is no HelmRelease: never equal)."""
    if release is None:
        return object()
    return (release.get("spec") or {}).get("postRenderers") or []


async def releases_against_cluster(
    session: Session, model: RepoModel, compared: Iterable[ObjectRef], options: DiffOptions, catalog: Any = None
) -> dict[ObjectRef, list[fluxdiff.ReleaseDiff]]:
    """Every HelmRelease of the compared Kustomizations rendered (valuesFrom the checkout applies,
    else the cluster's) and compared with its deployed revision: per Kustomization, the releases
    with differences or that could not be compared."""
    import asyncio

    from phoebe_cli.errors import ClusterError, ToolMissing
    from phoebe_cli.usecases.build import RenderOptions, render_helmreleases
    from phoebe_cli.usecases.helmcluster import ClusterRenderInputs, cluster_objects, render_inputs

    owners = {release: ks for ks in compared for release in releases_of(model, ks)}
    if not owners:
        return {}
    # helm-controller renders with the cluster's version and served APIs (.Capabilities); when
    # discovery cannot be read, helm's defaults (the comparison still runs)
    try:
        cluster = await render_inputs(session, catalog)
    except ClusterError:
        cluster = ClusterRenderInputs(session.access.context, None, (), cluster_objects(session)[0])
    render_opts = RenderOptions(
        kube_version=options.kube_version or cluster.kube_version,
        api_versions=cluster.api_versions,
        sources=dict(model_options(options.repo).sources),
        use_cache=options.repo.use_cache,
        lookup=cluster.lookup,
        post_render_strategy=cluster.post_render_strategy,
    )
    per_ks: dict[ObjectRef, list[fluxdiff.ReleaseDiff]] = {}
    try:
        renders = await asyncio.to_thread(render_helmreleases, model, list(owners), render_opts)
    except ToolMissing as exc:
        return _not_rendered_anywhere(owners, exc)
    live = await asyncio.gather(*(_live_release(session, r.ref) for r in renders))
    results = await asyncio.gather(
        *(
            compare_with_storage(
                session, r, options, _post_renderers(model.objects[r.ref].obj) == _post_renderers(on), catalog
            )
            for r, on in zip(renders, live, strict=True)
        )
    )
    for index, result in enumerate(results):
        if (model.objects[result.ref].obj.get("spec") or {}).get("suspend") is True:
            held = "suspended: helm-controller upgrades nothing until it is resumed"
            results[index] = dataclasses.replace(result, note="; ".join(n for n in (result.note, held) if n))
    for result in results:
        if result.differs or not result.compared:
            per_ks.setdefault(owners[result.ref], []).append(result)
    return per_ks


async def diff_cluster(session: Session, options: DiffOptions) -> fluxdiff.DiffReport:
    """Every selected Flux Kustomization of the checkout, dry-run against the cluster."""
    import asyncio

    from phoebe_cli.flux.kinds import KUSTOMIZATION as KUSTOMIZATION_KIND
    from phoebe_cli.kube.discovery import resource_catalog
    from phoebe_cli.repo.model import load_model

    model_options_ = dataclasses.replace(model_options(options.repo), variables=_cluster_variables(session))
    root = checkout_root(options.repo.path, options.repo.path_option)
    on_cluster = await _strict_substitution_on(session)
    if on_cluster is not None:
        model_options_ = dataclasses.replace(model_options_, strict_substitution=on_cluster)
    model_task = asyncio.create_task(asyncio.to_thread(load_model, root, model_options_))
    try:
        served = await session.served(KUSTOMIZATION_KIND)
        catalog, (listed, _) = await asyncio.gather(
            resource_catalog(session.kube), session.kube.list_all(served.collection_path(options.namespace))
        )
    except BaseException:
        model_task.cancel()
        raise
    model = await model_task
    live_ks = {
        ObjectRef(KUSTOMIZATION, str(o["metadata"].get("namespace", "")), str(o["metadata"]["name"])): o for o in listed
    }
    chosen = select([model], options)
    warnings = []
    comparable = []
    for ref in chosen:
        declared = model.kustomizations[ref]
        if declared.state in BUILT:
            comparable.append(ref)
        else:
            warnings.append(f"{ref}: not compared: {declared.message}")
    gate = asyncio.Semaphore(4)

    async def one(ref: ObjectRef) -> fluxdiff.KustomizationDiff:
        declared, live = model.kustomizations[ref], live_ks.get(ref)
        suspended = suspended_where(declared, live)
        if suspended and not options.include_suspended:
            return fluxdiff.KustomizationDiff(ref, (), 0, suspended=suspended, compared=False)
        async with gate:
            return await _diff_one(session, catalog, declared, live, options, suspended)

    results = await asyncio.gather(*(one(ref) for ref in comparable))
    if options.render:
        compared = [k.ref for k in results if k.compared]
        releases = await releases_against_cluster(session, model, compared, options, catalog)
        results = [_with_releases(k, releases.get(k.ref, ())) for k in results]
    return fluxdiff.DiffReport(
        "cluster", CLUSTER, CHECKOUT, tuple(results), tuple(warnings), flux_objects=declared_snapshot(model).objects
    )


def _with_releases(
    kustomization: fluxdiff.KustomizationDiff, releases: Iterable[fluxdiff.ReleaseDiff]
) -> fluxdiff.KustomizationDiff:
    """A Kustomization's comparison with its rendered HelmReleases; one warning for each release
    not compared (and the not-installed note is in the release's heading, not a warning)."""
    found = tuple(releases)
    if not found:
        return kustomization
    notes = tuple(f"HelmRelease/{r.ref.namespace}/{r.ref.name}: {r.note}" for r in found if not r.compared)
    return dataclasses.replace(kustomization, releases=found, warnings=kustomization.warnings + notes)
