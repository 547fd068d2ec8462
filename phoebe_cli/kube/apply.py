"""Server-side apply dry-runs, the way kustomize-controller applies a build.

kustomize-controller v1.9.6 (through ``github.com/fluxcd/pkg/ssa``) normalises the built objects,
then for each one reads the live object and sends a server-side apply with ``dryRun=All``,
field manager ``kustomize-controller`` and forced ownership; the dry-run answer compared with the
live object says whether the object would be created, configured or left unchanged. phoebe does
the same here and writes nothing: every PATCH carries ``dryRun=All``.

    resource_catalog(kube)            every served kind (aggregated discovery, see discovery.py)
    dry_run_apply(kube, catalog, obj) one object: the live object and the server's dry-run answer
    dry_run_all(kube, catalog, objs)  many, concurrently, staged as Flux stages them
    get_objects(kube, catalog, keys)  live objects by key (prune candidates from an inventory)
    parse_inventory_id / inventory_id status.inventory ids <namespace>_<name>_<group>_<kind>
    normalize_object, set_owner_labels, has_drifted   the pure parts, ported from Flux

Per-object problems (a namespace or kind that is not there, an object the server refuses) come
back in ``DryRunResult.error`` and the run goes on; anything that concerns the whole run
(401, 403, the cluster unreachable or failing) is raised as phoebe's exception.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import copy
import re
import ssl
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, TypeVar

from phoebe_cli.errors import ClusterError, ClusterUnreachable, NotFound, RequestRejected
from phoebe_cli.flux.inventory import RBAC_GROUP, ObjectKey, inventory_id, parse_inventory_id
from phoebe_cli.kube.client import JSON, KubeClient
from phoebe_cli.kube.discovery import ResourceCatalog, ServedKind, resource_catalog

__all__ = [
    "FIELD_MANAGER",
    "OWNER_GROUP",
    "Action",
    "DryRunResult",
    "KindNotServed",
    "ObjectKey",
    "ResourceCatalog",
    "dry_run_all",
    "dry_run_apply",
    "get_objects",
    "has_drifted",
    "inventory_id",
    "normalize_object",
    "parse_inventory_id",
    "resource_catalog",
    "set_owner_labels",
]

FIELD_MANAGER = "kustomize-controller"
OWNER_GROUP = "kustomize.toolkit.fluxcd.io"
APPLY_PATCH = "application/apply-patch+yaml"  # JSON is YAML: the body is sent as JSON

Action = Literal["created", "configured", "unchanged", "skipped", "failed"]
BlockedBy = Literal["namespace", "crd"]

_T = TypeVar("_T")


class KindNotServed(NotFound):
    """The object's apiVersion and kind are not served by the cluster (no such CRD, or not in
    that version): nothing was asked of the server for it."""


def set_owner_labels(obj: Mapping[str, Any], name: str, namespace: str) -> JSON:
    """A copy of ``obj`` with the labels kustomize-controller puts on everything it applies
    (``kustomize.toolkit.fluxcd.io/name`` and ``/namespace`` of the Kustomization). Leaving them
    out of a dry-run would show them removed from every object Flux applied."""
    out = copy.deepcopy(dict(obj))
    meta = out.setdefault("metadata", {})
    labels = dict(meta.get("labels") or {})
    labels[f"{OWNER_GROUP}/name"] = name
    labels[f"{OWNER_GROUP}/namespace"] = namespace
    meta["labels"] = labels
    return out


_POD_SPECS: dict[tuple[str, str], tuple[str, ...]] = {
    ("v1", "Pod"): ("spec",),
    ("apps/v1", "Deployment"): ("spec", "template", "spec"),
    ("apps/v1", "StatefulSet"): ("spec", "template", "spec"),
    ("apps/v1", "DaemonSet"): ("spec", "template", "spec"),
    ("apps/v1", "ReplicaSet"): ("spec", "template", "spec"),
    ("batch/v1", "Job"): ("spec", "template", "spec"),
    ("batch/v1", "CronJob"): ("spec", "jobTemplate", "spec", "template", "spec"),
}


def normalize_object(obj: Mapping[str, Any]) -> JSON:
    """A copy of ``obj`` normalised as kustomize-controller does before applying
    (``ssa/normalize.UnstructuredList``):

    - container ports of Pods and of the pod templates of Deployments, StatefulSets, DaemonSets,
      ReplicaSets, Jobs and CronJobs, and Service ports, get ``protocol: TCP`` when they have none
      (ports are keyed by port and protocol in server-side apply);
    - a Secret's ``stringData`` moves into ``data`` (base64), so that keys removed from
      stringData are removed from the object;
    - ``metadata.creationTimestamp`` is null, and ``status`` is dropped except on CRDs;
    - Roles and ClusterRoles are left as they are (Flux skips them: a serialisation bug).

    Flux gets there by converting built-in kinds to their Go types and back, which also drops
    fields those types do not know; phoebe has no Go types and sends such fields, and the server
    refuses them ("field not declared in schema").
    """
    out = copy.deepcopy(dict(obj))
    api_version, kind = out.get("apiVersion"), out.get("kind")
    if api_version == f"{RBAC_GROUP}/v1" and kind in ("Role", "ClusterRole"):
        return out
    pod_spec_path = _POD_SPECS.get((str(api_version), str(kind)))
    if pod_spec_path is not None:
        spec = _nested(out, pod_spec_path)
        if isinstance(spec, dict):
            for container in _dicts(spec.get("containers")):
                _default_protocol(container.get("ports"))
    elif (api_version, kind) == ("v1", "Service"):
        spec = out.get("spec")
        if isinstance(spec, dict):
            _default_protocol(spec.get("ports"))
    elif (api_version, kind) == ("v1", "Secret"):
        _string_data_to_data(out)
    meta = out.get("metadata")
    if meta is None:
        meta = out["metadata"] = {}
    if isinstance(meta, dict):
        meta["creationTimestamp"] = None
    if not _is_crd(out):
        out.pop("status", None)
    return out


def _nested(obj: Mapping[str, Any], path: Iterable[str]) -> Any:
    current: Any = obj
    for step in path:
        if not isinstance(current, Mapping):
            return None
        current = current.get(step)
    return current


def _dicts(items: Any) -> list[dict[str, Any]]:
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def _default_protocol(ports: Any) -> None:
    for port in _dicts(ports):
        if not port.get("protocol"):
            port["protocol"] = "TCP"


def _string_data_to_data(secret: dict[str, Any]) -> None:
    string_data = secret.get("stringData")
    if isinstance(string_data, dict) and not string_data:
        del secret["stringData"]  # an empty map does not survive Flux's typed round trip either
        return
    if not isinstance(string_data, dict) or not all(isinstance(v, str) for v in string_data.values()):
        return  # Flux's conversion to a typed Secret would fail: it leaves the object alone
    data = secret.get("data")
    data = dict(data) if isinstance(data, dict) else {}
    for key, value in string_data.items():
        data[key] = base64.b64encode(value.encode()).decode()
    secret["data"] = data
    del secret["stringData"]


def _is_crd(obj: Mapping[str, Any]) -> bool:
    return str(obj.get("kind", "")).lower() == "customresourcedefinition" and str(obj.get("apiVersion", "")).startswith(
        "apiextensions.k8s.io/"
    )


def _is_namespace(obj: Mapping[str, Any]) -> bool:
    return str(obj.get("kind", "")).lower() == "namespace" and obj.get("apiVersion") == "v1"


def _is_cluster_role(obj: Mapping[str, Any]) -> bool:
    return str(obj.get("kind", "")).lower() == "clusterrole" and str(obj.get("apiVersion", "")).startswith(
        f"{RBAC_GROUP}/"
    )


def _without_invalid_ca_bundle(obj: JSON) -> JSON:
    """Flux removes a CRD's conversion webhook caBundle that Kubernetes 1.31+ would reject
    (``utils.RemoveCABundleFromCRD``): not base64, or no PEM certificate in it."""
    if not _is_crd(obj):
        return obj
    client_config = _nested(obj, ("spec", "conversion", "webhook", "clientConfig"))
    bundle = client_config.get("caBundle") if isinstance(client_config, dict) else None
    if not isinstance(bundle, str) or not bundle or _valid_ca_bundle(bundle):
        return obj
    out = copy.deepcopy(obj)
    del out["spec"]["conversion"]["webhook"]["clientConfig"]["caBundle"]
    return out


def _valid_ca_bundle(bundle: str) -> bool:
    try:
        pem = base64.b64decode(bundle, validate=True).decode()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.load_verify_locations(cadata=pem)
    except (binascii.Error, UnicodeDecodeError, ssl.SSLError, ValueError):
        return False
    return True


# --- skip and force rules (annotations and labels Flux reads) ---------------------------------
_EXCLUDE = {f"{OWNER_GROUP}/reconcile": "disabled", f"{OWNER_GROUP}/ssa": "ignore"}
_IF_NOT_PRESENT = {f"{OWNER_GROUP}/ssa": "ifnotpresent"}
_FORCE = {f"{OWNER_GROUP}/force": "enabled"}
_IMMUTABLE = (re.compile(r"is\simmutable"), re.compile(r"immutable\sfield"))


def _any_in_metadata(obj: Mapping[str, Any] | None, wanted: Mapping[str, str]) -> bool:
    """``utils.AnyInMetadata``: a label or annotation with one of the values, ignoring case."""
    if not obj:
        return False
    meta = obj.get("metadata") or {}
    for source in (meta.get("labels") or {}, meta.get("annotations") or {}):
        for key, value in wanted.items():
            found = source.get(key)
            if isinstance(found, str) and found and found.lower() == value.lower():
                return True
    return False


def _skipped(desired: Mapping[str, Any], live: Mapping[str, Any] | None) -> bool:
    """Objects Flux leaves alone: reconcile disabled or ssa ignored (on either side), or
    ``ssa: IfNotPresent`` on an object that exists."""
    if _any_in_metadata(desired, _EXCLUDE) or _any_in_metadata(live, _EXCLUDE):
        return True
    return bool(live) and _any_in_metadata(desired, _IF_NOT_PRESENT)


def _immutable(error: ClusterError) -> bool:
    """``ssaerrors.IsImmutableError``: a conflict or invalid answer, or an admission/CEL message
    saying a field is immutable."""
    if error.code in (409, 422) or error.reason in ("Conflict", "Invalid"):
        return True
    return any(pattern.search(error.message) for pattern in _IMMUTABLE)


# --- drift ----------------------------------------------------------------------------------
def has_drifted(live: Mapping[str, Any] | None, dry_run: Mapping[str, Any]) -> bool:
    """Whether applying would change the live object (``ssa`` ``hasDrifted``): the dry-run object
    is new, or its labels or annotations differ, or anything outside ``metadata`` and ``status``
    differs. Other metadata (managedFields, resourceVersion, generation, ownerReferences ...) is
    not compared."""
    dry_meta = dry_run.get("metadata") or {}
    if not dry_meta.get("resourceVersion") or live is None:
        return True
    live_meta = live.get("metadata") or {}
    for field in ("labels", "annotations"):
        if not _same(dry_meta.get(field) or {}, live_meta.get(field) or {}):
            return True
    return not _same(_comparable(dry_run), _comparable(live))


def _comparable(obj: Mapping[str, Any]) -> JSON:
    out = {k: v for k, v in obj.items() if k not in ("metadata", "status")}
    if out.get("kind") == "HorizontalPodAutoscaler" and out.get("apiVersion") == "autoscaling/v2":
        # ssa normalize.DryRunUnstructured: Kubernetes < 1.27 answered dry-runs with the first
        # metric repeated and an empty one appended (kubernetes#118293).
        spec = out.get("spec")
        if isinstance(spec, dict) and isinstance(spec.get("metrics"), list):
            metrics: list[Any] = []
            for metric in spec["metrics"]:
                if isinstance(metric, dict) and metric.get("type") and not any(_same(metric, m) for m in metrics):
                    metrics.append(metric)
            out["spec"] = {**spec, "metrics": metrics}
    return out


def _same(a: Any, b: Any) -> bool:
    """Deep equality as Go compares decoded JSON: 1 and 1.0, or true and 1, differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


# --- results --------------------------------------------------------------------------------
@dataclass(frozen=True)
class DryRunResult:
    """One object's dry-run.

    ``obj`` is the object as the server would store it (None when the dry-run failed or was
    skipped); ``live`` the current object (None when absent); ``error`` a per-object problem;
    ``desired`` what was sent (owner labels, normalisation). ``skipped``: Flux would not touch it
    (``kustomize.toolkit.fluxcd.io/reconcile: disabled``, ``ssa: Ignore``, ``ssa: IfNotPresent``).
    ``replaced``: the server refused an immutable change and Flux would delete and re-create the
    object (``force``); ``error`` keeps the refusal. ``blocked_by``: the error only means that the
    same build creates the object's namespace ("namespace") or its CRD ("crd") first.
    """

    key: ObjectKey
    desired: JSON
    obj: JSON | None
    live: JSON | None
    error: ClusterError | None = None
    skipped: bool = False
    replaced: bool = False
    blocked_by: BlockedBy | None = None

    @property
    def action(self) -> Action:
        """What kustomize-controller would report: created, configured, unchanged or skipped
        ("failed" when the dry-run failed; "created" when the build also creates the namespace
        or CRD the dry-run missed, or re-creates an object with an immutable change)."""
        if self.skipped:
            return "skipped"
        if self.replaced or self.blocked_by is not None:
            return "created"
        if self.error is not None or self.obj is None:
            return "failed"
        if not (self.obj.get("metadata") or {}).get("resourceVersion"):
            return "created"
        return "configured" if has_drifted(self.live, self.obj) else "unchanged"


# --- requests -------------------------------------------------------------------------------
def _object_path(served: ServedKind, key: ObjectKey) -> str:
    namespace = key.namespace if served.namespaced else None
    return f"{served.collection_path(namespace, version=key.version)}/{key.name}"


async def _get_live(kube: KubeClient, path: str, key: ObjectKey) -> JSON | None:
    try:
        return await kube.get_json(path, what=key.subject)
    except NotFound:
        return None


async def _dry_run(
    kube: KubeClient, path: str, key: ObjectKey, body: JSON, field_manager: str, force: bool
) -> tuple[JSON | None, ClusterError | None]:
    params: dict[str, str | int | bool] = {"dryRun": "All", "fieldManager": field_manager}
    if force:
        params["force"] = True
    what = f"the dry-run of {key.subject}"
    try:
        answer = await kube.send_json("PATCH", path, body, content_type=APPLY_PATCH, params=params, what=what)
    except (NotFound, RequestRejected) as error:
        return None, error
    except ClusterUnreachable as error:
        # An object the server cannot turn into a typed patch ("field not declared in schema",
        # a wrong type), a failing admission or conversion webhook: 500 with a Status, a problem
        # of this object. 502/503/504 and transport failures concern the whole run.
        if error.code != 500:
            raise
        message = error.message.replace("the API server failed", f"the API server refused {what}", 1)
        return None, RequestRejected(message, reason=error.reason, code=error.code, detail=error.detail)
    return answer, None


async def _gather(awaitables: Iterable[Awaitable[_T]]) -> list[_T]:
    """All of them concurrently, results in order; on the first exception the others are
    cancelled (and awaited) before it propagates."""
    tasks = [asyncio.ensure_future(a) for a in awaitables]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def dry_run_apply(
    kube: KubeClient,
    catalog: ResourceCatalog,
    obj: Mapping[str, Any],
    *,
    field_manager: str = FIELD_MANAGER,
    force: bool = True,
    normalize: bool = True,
    owner: tuple[str, str] | None = None,
    recreate: bool = False,
) -> DryRunResult:
    """Dry-run a server-side apply of ``obj`` and read the live object (one GET, one PATCH with
    ``dryRun=All``, sent together). Nothing is written.

    ``owner`` (name, namespace of the Flux Kustomization) adds its owner labels first;
    ``normalize`` applies ``normalize_object`` (both as kustomize-controller does; normalising
    twice changes nothing). ``recreate`` is the Kustomization's ``spec.force``: with it (or the
    ``kustomize.toolkit.fluxcd.io/force: enabled`` annotation or label) an immutable change is a
    re-creation (``replaced``) rather than a failure.

    Raises AuthenticationFailed, Forbidden and ClusterUnreachable; returns everything about the
    object itself (missing namespace or kind, refused object) in ``error``.
    """
    desired = copy.deepcopy(dict(obj))
    if owner is not None:
        desired = set_owner_labels(desired, *owner)
    if normalize:
        desired = normalize_object(desired)
    desired = _without_invalid_ca_bundle(desired)
    key = ObjectKey.of(desired)
    if not (key.api_version and key.kind and key.name):
        problem = RequestRejected(
            f"an object without apiVersion, kind or name (apiVersion {key.api_version!r}, kind {key.kind!r}, "
            f"name {key.name!r})",
            reason="BadRequest",
            code=400,
        )
        return DryRunResult(key, desired, None, None, problem)
    served = catalog.resolve(key.api_version, key.kind)
    if served is None:
        missing = KindNotServed(catalog.unserved_message(key.api_version, key.kind), reason="NotFound", code=404)
        return DryRunResult(key, desired, None, None, missing)
    if not served.namespaced:
        key = key._replace(namespace=None)
    elif key.namespace is None:
        unspecified = RequestRejected(f"{key.subject} namespace not specified", reason="BadRequest", code=400)
        return DryRunResult(key, desired, None, None, unspecified)

    path = _object_path(served, key)
    reading = asyncio.ensure_future(_get_live(kube, path, key))
    try:
        answer, error = await _dry_run(kube, path, key, desired, field_manager, force)
        live = await reading
    except BaseException:
        reading.cancel()
        await asyncio.gather(reading, return_exceptions=True)
        raise
    if _skipped(desired, live):
        return DryRunResult(key, desired, None, live, skipped=True)
    if error is not None:
        forced = recreate or _any_in_metadata(desired, _FORCE) or _any_in_metadata(live, _FORCE)
        replaced = live is not None and forced and _immutable(error)
        return DryRunResult(key, desired, None, live, error, replaced=replaced)
    return DryRunResult(key, desired, answer, live)


def _stage(obj: Mapping[str, Any]) -> int:
    """``ApplyAllStaged``: CRDs, Namespaces and ClusterRoles first, then kinds named *Class, then
    the rest."""
    if _is_crd(obj) or _is_namespace(obj) or _is_cluster_role(obj):
        return 0
    if str(obj.get("kind", "")).endswith("Class"):
        return 1
    return 2


async def dry_run_all(
    kube: KubeClient,
    catalog: ResourceCatalog,
    objects: Sequence[Mapping[str, Any]],
    *,
    concurrency: int = 16,
    field_manager: str = FIELD_MANAGER,
    force: bool = True,
    normalize: bool = True,
    owner: tuple[str, str] | None = None,
    recreate: bool = False,
) -> list[DryRunResult]:
    """``dry_run_apply`` for every object, at most ``concurrency`` at a time, results in the
    order of ``objects``.

    Staged like kustomize-controller: CRDs, Namespaces and ClusterRoles, then *Class kinds, then
    the rest. A dry-run persists nothing, so a Namespace (or CRD) the build creates is still
    missing for the objects that need it: their results keep the server's NotFound (or the
    unserved kind) and say ``blocked_by`` "namespace" (or "crd"), and their action is "created".
    """
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(obj: Mapping[str, Any]) -> DryRunResult:
        async with gate:
            return await dry_run_apply(
                kube,
                catalog,
                obj,
                field_manager=field_manager,
                force=force,
                normalize=normalize,
                owner=owner,
                recreate=recreate,
            )

    results: list[DryRunResult | None] = [None] * len(objects)
    for stage in (0, 1, 2):
        indexes = [i for i, obj in enumerate(objects) if _stage(obj) == stage]
        for i, result in zip(indexes, await _gather(one(objects[i]) for i in indexes), strict=True):
            results[i] = result
    return _mark_blocked([r for r in results if r is not None])


def _mark_blocked(results: list[DryRunResult]) -> list[DryRunResult]:
    new_namespaces = {
        r.key.name for r in results if _is_namespace(r.desired) and r.error is None and r.action == "created"
    }
    new_kinds: set[tuple[str, str]] = set()
    for r in results:
        if _is_crd(r.desired) and r.error is None and not r.skipped:
            spec = r.desired.get("spec") or {}
            new_kinds.add((str(spec.get("group", "")), str((spec.get("names") or {}).get("kind", ""))))
    marked = []
    for r in results:
        blocked: BlockedBy | None = None
        if isinstance(r.error, KindNotServed):
            if (r.key.group, r.key.kind) in new_kinds:
                blocked = "crd"
        elif isinstance(r.error, NotFound) and r.live is None and r.key.namespace in new_namespaces:
            blocked = "namespace"
        marked.append(r if blocked is None else replace(r, blocked_by=blocked))
    return marked


async def get_objects(
    kube: KubeClient,
    catalog: ResourceCatalog,
    keys: Sequence[ObjectKey],
    *,
    concurrency: int = 16,
) -> list[JSON | None]:
    """The live objects of ``keys`` (in order), None for those that do not exist. An inventory
    version the cluster no longer serves is read in the kind's preferred version; a kind not
    served at all cannot have objects (None)."""
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(key: ObjectKey) -> JSON | None:
        served = catalog.resolve(key.api_version, key.kind)
        if served is None:
            served = catalog.get(key.group, key.kind)
            if served is None:
                return None
            key = key._replace(api_version=served.api_version)
        if served.namespaced and not key.namespace:
            return None
        async with gate:
            return await _get_live(kube, _object_path(served, key), key)

    return await _gather(one(key) for key in keys)
