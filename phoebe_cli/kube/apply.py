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

The pure rules — normalisation, owner labels, skip and force selectors, staging, drift with
``spec.ignore`` rules, equality as Go compares — live in ``flux/apply.py``, shared with the
offline comparison; object keys and inventory ids in ``flux/inventory.py``.

Per-object problems (a namespace or kind that is not there, an object the server refuses) come
back in ``DryRunResult.error`` and the run goes on; anything that concerns the whole run
(401, 403, the cluster unreachable or failing) is raised as phoebe's exception.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, TypeVar

from phoebe_cli.errors import ClusterError, ClusterUnreachable, NotFound, RequestRejected
from phoebe_cli.flux.apply import (
    IgnoreRule,
    apply_skip_reason,
    apply_stage,
    force_enabled,
    has_drifted,
    is_crd,
    is_immutable_error,
    is_namespace,
    normalize_for_apply,
    set_owner_labels,
    without_invalid_ca_bundle,
)
from phoebe_cli.flux.inventory import ObjectKey
from phoebe_cli.kube.client import JSON, KubeClient
from phoebe_cli.kube.discovery import ResourceCatalog, ServedKind, resource_catalog

__all__ = [
    "FIELD_MANAGER",
    "Action",
    "DryRunResult",
    "KindNotServed",
    "ResourceCatalog",
    "dry_run_all",
    "dry_run_apply",
    "get_objects",
    "resource_catalog",
]

FIELD_MANAGER = "kustomize-controller"
APPLY_PATCH = "application/apply-patch+yaml"  # JSON is YAML: the body is sent as JSON

Action = Literal["created", "configured", "unchanged", "skipped", "failed"]
BlockedBy = Literal["namespace", "crd"]

_T = TypeVar("_T")


class KindNotServed(NotFound):
    """The object's apiVersion and kind are not served by the cluster (no such CRD, or not in
    that version): nothing was asked of the server for it."""


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
    ``ignore``: the Kustomization's ``spec.ignore`` rules, left out when judging drift.
    """

    key: ObjectKey
    desired: JSON
    obj: JSON | None
    live: JSON | None
    error: ClusterError | None = None
    skipped: bool = False
    replaced: bool = False
    blocked_by: BlockedBy | None = None
    ignore: tuple[IgnoreRule, ...] = ()

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
        return "configured" if has_drifted(self.live, self.obj, self.ignore) else "unchanged"


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
    ignore: Sequence[IgnoreRule] = (),
) -> DryRunResult:
    """Dry-run a server-side apply of ``obj`` and read the live object (one GET, one PATCH with
    ``dryRun=All``, sent together). Nothing is written.

    ``owner`` (name, namespace of the Flux Kustomization) adds its owner labels first;
    ``normalize`` applies ``flux.apply.normalize_for_apply`` (both as kustomize-controller does;
    normalising twice changes nothing). ``recreate`` is the Kustomization's ``spec.force``: with it
    (or the ``kustomize.toolkit.fluxcd.io/force: enabled`` annotation or label) an immutable
    change is a re-creation (``replaced``) rather than a failure. ``ignore``: the
    Kustomization's ``spec.ignore`` rules, for the result's ``action``.

    Raises AuthenticationFailed, Forbidden and ClusterUnreachable; returns everything about the
    object itself (missing namespace or kind, refused object) in ``error``.
    """
    desired = copy.deepcopy(dict(obj))
    if owner is not None:
        desired = set_owner_labels(desired, *owner)
    if normalize:
        desired = normalize_for_apply(desired)
    desired = without_invalid_ca_bundle(desired)
    key = ObjectKey.of(desired)
    rules = tuple(ignore)
    if not (key.api_version and key.kind and key.name):
        problem = RequestRejected(
            f"an object without apiVersion, kind or name (apiVersion {key.api_version!r}, kind {key.kind!r}, "
            f"name {key.name!r})",
            reason="BadRequest",
            code=400,
        )
        return DryRunResult(key, desired, None, None, problem, ignore=rules)
    served = catalog.resolve(key.api_version, key.kind)
    if served is None:
        missing = KindNotServed(catalog.unserved_message(key.api_version, key.kind), reason="NotFound", code=404)
        return DryRunResult(key, desired, None, None, missing, ignore=rules)
    if not served.namespaced:
        key = replace(key, namespace=None)
    elif key.namespace is None:
        unspecified = RequestRejected(f"{key.subject} namespace not specified", reason="BadRequest", code=400)
        return DryRunResult(key, desired, None, None, unspecified, ignore=rules)

    path = _object_path(served, key)
    reading = asyncio.ensure_future(_get_live(kube, path, key))
    try:
        answer, error = await _dry_run(kube, path, key, desired, field_manager, force)
        live = await reading
    except BaseException:
        reading.cancel()
        await asyncio.gather(reading, return_exceptions=True)
        raise
    if apply_skip_reason(desired, live) is not None:
        return DryRunResult(key, desired, None, live, skipped=True, ignore=rules)
    if error is not None:
        forced = recreate or force_enabled(desired, live)
        replaced = live is not None and forced and is_immutable_error(error.code, error.reason, error.message)
        return DryRunResult(key, desired, None, live, error, replaced=replaced, ignore=rules)
    return DryRunResult(key, desired, answer, live, ignore=rules)


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
    ignore: Sequence[IgnoreRule] = (),
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
                ignore=ignore,
            )

    results: list[DryRunResult | None] = [None] * len(objects)
    for stage in (0, 1, 2):
        indexes = [i for i, obj in enumerate(objects) if apply_stage(obj) == stage]
        for i, result in zip(indexes, await _gather(one(objects[i]) for i in indexes), strict=True):
            results[i] = result
    return _mark_blocked([r for r in results if r is not None])


def _mark_blocked(results: list[DryRunResult]) -> list[DryRunResult]:
    new_namespaces = {
        r.key.name for r in results if is_namespace(r.desired) and r.error is None and r.action == "created"
    }
    new_kinds: set[tuple[str, str]] = set()
    for r in results:
        if is_crd(r.desired) and r.error is None and not r.skipped:
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
            key = replace(key, api_version=served.api_version)
        if served.namespaced and not key.namespace:
            return None
        async with gate:
            return await _get_live(kube, _object_path(served, key), key)

    return await _gather(one(key) for key in keys)
