"""Which API kinds the cluster serves, in which versions, and which version it prefers.

One request where the server supports aggregated discovery (Kubernetes 1.27+: every group,
version and resource in one answer); otherwise the group list plus one request per group
version that matters to phoebe.

``discover`` asks about the groups a command names (Flux's); ``resource_catalog`` about every
served kind, core included (``/api`` and ``/apis``), for applying arbitrary manifests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field

from phoebe_cli.errors import ClusterUnreachable, NotFound
from phoebe_cli.kube.client import JSON, KubeClient

_AGGREGATED_ACCEPT = ",".join(
    (
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
        "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList",
        "application/json",
    )
)


@dataclass(frozen=True)
class ServedKind:
    """A kind as this cluster serves it."""

    group: str
    kind: str
    plural: str
    namespaced: bool
    versions: tuple[str, ...]  # served versions, most preferred first

    @property
    def preferred_version(self) -> str:
        return self.versions[0]

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.preferred_version}" if self.group else self.preferred_version

    def collection_path(self, namespace: str | None = None, version: str | None = None) -> str:
        """URL path of the collection, in one namespace or across all of them."""
        version = version or self.preferred_version
        base = f"/apis/{self.group}/{version}" if self.group else f"/api/{version}"
        if namespace and self.namespaced:
            return f"{base}/namespaces/{namespace}/{self.plural}"
        return f"{base}/{self.plural}"

    def object_path(self, namespace: str | None, name: str, subresource: str | None = None) -> str:
        path = f"{self.collection_path(namespace)}/{name}"
        return f"{path}/{subresource}" if subresource else path


@dataclass(frozen=True)
class ApiCatalog:
    """The kinds served by the cluster, for the groups that were asked about."""

    kinds: dict[tuple[str, str], ServedKind]  # (group, kind) -> served kind

    def get(self, group: str, kind: str) -> ServedKind | None:
        return self.kinds.get((group, kind))


@dataclass
class _Found:
    plural: str
    namespaced: bool
    versions: list[str] = field(default_factory=list)

    def served(self, group: str, kind: str) -> ServedKind:
        return ServedKind(group, kind, self.plural, self.namespaced, tuple(self.versions))


async def discover(kube: KubeClient, groups: Iterable[str]) -> ApiCatalog:
    """Served kinds of ``groups`` (API group names, e.g. source.toolkit.fluxcd.io)."""
    wanted = set(groups)
    answer = await kube.get_json("/apis", accept=_AGGREGATED_ACCEPT, what="API discovery")
    if answer.get("kind") == "APIGroupDiscoveryList":
        return ApiCatalog(_from_aggregated(answer, wanted))
    return ApiCatalog(await _from_legacy(kube, answer, wanted))


def _from_aggregated(answer: JSON, wanted: set[str] | None) -> dict[tuple[str, str], ServedKind]:
    """Served kinds from an APIGroupDiscoveryList; ``wanted`` None: every group (the core group's
    name is "")."""
    found: dict[tuple[str, str], _Found] = {}
    for group_doc in answer.get("items") or []:
        group = (group_doc.get("metadata") or {}).get("name", "")
        if wanted is not None and group not in wanted:
            continue
        for version_doc in group_doc.get("versions") or []:  # listed most preferred first
            version = version_doc.get("version", "")
            for resource in version_doc.get("resources") or []:
                kind = (resource.get("responseKind") or {}).get("kind")
                if not kind:
                    continue
                entry = found.setdefault(
                    (group, kind), _Found(resource.get("resource", ""), resource.get("scope") == "Namespaced")
                )
                entry.versions.append(version)
    return {key: entry.served(*key) for key, entry in found.items()}


async def _from_legacy(
    kube: KubeClient, groups_doc: JSON, wanted: set[str] | None
) -> dict[tuple[str, str], ServedKind]:
    """Served kinds from an APIGroupList (``/apis``) or APIVersions (``/api``, the core group)
    document, one request per group version. ``wanted`` None: every group, and a group version
    that cannot be listed (an aggregated API whose backend is down answers 503) is left out
    instead of failing the whole catalog, as kubectl does."""
    requests: list[tuple[str, str]] = []
    if groups_doc.get("kind") == "APIVersions":  # /api: the core group
        requests.extend(("", str(v)) for v in groups_doc.get("versions") or [])
    for group_doc in groups_doc.get("groups") or []:
        group = group_doc.get("name", "")
        if wanted is not None and group not in wanted:
            continue
        preferred = (group_doc.get("preferredVersion") or {}).get("version")
        versions = [v.get("version", "") for v in group_doc.get("versions") or []]
        if preferred in versions:
            versions.remove(preferred)
            versions.insert(0, preferred)
        requests.extend((group, v) for v in versions)

    async def fetch(group: str, version: str) -> tuple[str, str, JSON]:
        if not group:
            return group, version, await kube.get_json(f"/api/{version}", what=f"discovery of {version}")
        try:
            doc = await kube.get_json(f"/apis/{group}/{version}", what=f"discovery of {group}/{version}")
        except (ClusterUnreachable, NotFound):
            if wanted is not None:
                raise
            doc = {}
        return group, version, doc

    found: dict[tuple[str, str], _Found] = {}
    for group, version, doc in await asyncio.gather(*(fetch(g, v) for g, v in requests)):
        for resource in doc.get("resources") or []:
            name = resource.get("name", "")
            if "/" in name:  # subresources such as kustomizations/status
                continue
            entry = found.setdefault((group, resource.get("kind", "")), _Found(name, bool(resource.get("namespaced"))))
            entry.versions.append(version)
    return {key: entry.served(*key) for key, entry in found.items()}


@dataclass(frozen=True)
class ResourceCatalog(ApiCatalog):
    """Every kind the cluster serves, in every group, the core group ("") included."""

    def resolve(self, api_version: str, kind: str) -> ServedKind | None:
        """The served kind of ``api_version`` ("apps/v1", "v1") and ``kind``; None unless that
        very version is served."""
        group, _, version = api_version.rpartition("/")
        found = self.kinds.get((group, kind))
        if found is None or version not in found.versions:
            return None
        return found

    def unserved_message(self, api_version: str, kind: str) -> str:
        """Why ``resolve`` found nothing, in one line."""
        group, _, _version = api_version.rpartition("/")
        message = f'no kind "{kind}" in apiVersion "{api_version}" is served by the cluster'
        found = self.kinds.get((group, kind))
        if found is not None:
            served = ", ".join(f"{group}/{v}" if group else v for v in found.versions)
            return f"{message} (it serves {served})"
        return message


async def resource_catalog(kube: KubeClient) -> ResourceCatalog:
    """Every served kind: aggregated discovery of ``/api`` and ``/apis`` (two requests, v2 or
    v2beta1), else legacy discovery, one request per group version."""
    core, groups = await asyncio.gather(
        kube.get_json("/api", accept=_AGGREGATED_ACCEPT, what="API discovery"),
        kube.get_json("/apis", accept=_AGGREGATED_ACCEPT, what="API discovery"),
    )
    kinds: dict[tuple[str, str], ServedKind] = {}
    legacy = [doc for doc in (core, groups) if doc.get("kind") != "APIGroupDiscoveryList"]
    for doc in (core, groups):
        if doc.get("kind") == "APIGroupDiscoveryList":
            kinds.update(_from_aggregated(doc, None))
    for found in await asyncio.gather(*(_from_legacy(kube, doc, None) for doc in legacy)):
        kinds.update(found)
    return ResourceCatalog(kinds)


# Core kinds phoebe uses, served at fixed, stable versions: no discovery needed.
DEPLOYMENTS = ServedKind("apps", "Deployment", "deployments", True, ("v1",))
PODS = ServedKind("", "Pod", "pods", True, ("v1",))
NAMESPACES = ServedKind("", "Namespace", "namespaces", False, ("v1",))
EVENTS = ServedKind("", "Event", "events", True, ("v1",))
CONFIGMAPS = ServedKind("", "ConfigMap", "configmaps", True, ("v1",))
SECRETS = ServedKind("", "Secret", "secrets", True, ("v1",))
