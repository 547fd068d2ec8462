"""What a HelmRelease's render reads from a cluster, as helm-controller reads it there: the API
server's version and served API versions (``.Capabilities``), and the ConfigMaps and Secrets
(valuesFrom, chart credentials) the checkout does not hold or holds SOPS-encrypted.

Used by ``phoebe diff`` (against the cluster) and ``phoebe build`` (when a cluster is there).
Secret values stay in memory: the renderer never caches a render that read one and masks them
wherever a chart put them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from phoebe_cli.kube.discovery import ApiCatalog
    from phoebe_cli.kube.session import Session

ObjectLookup = Callable[[str, str, str], Mapping[str, Any] | None]


@dataclass(frozen=True)
class ClusterRenderInputs:
    context: str
    kube_version: str | None  # the API server's gitVersion
    api_versions: tuple[str, ...]  # helm's .Capabilities.APIVersions on that cluster
    lookup: ObjectLookup = field(repr=False)
    objects_read: Callable[[], int] = field(repr=False, default=lambda: 0)  # ConfigMaps/Secrets found there
    post_render_strategy: str = "Combined"  # helm-controller's default (NoHooks with UseHelm3Defaults)


async def kube_version_of(session: Session) -> str:
    """The API server's version (``/version``), for ``helm template --kube-version``."""
    version = await session.kube.get_json("/version", what="the API server's version")
    return str(version.get("gitVersion") or "")


async def api_versions_of(session: Session, catalog: ApiCatalog | None = None) -> tuple[str, ...]:
    """Every API version and version/kind the cluster serves, as Helm lists them."""
    from phoebe_cli.flux.helmrelease import capabilities_api_versions
    from phoebe_cli.kube.discovery import resource_catalog

    if catalog is None:
        catalog = await resource_catalog(session.kube)
    return capabilities_api_versions((s.group, s.kind, s.versions) for s in catalog.kinds.values())


def cluster_objects(session: Session) -> tuple[ObjectLookup, Callable[[], int]]:
    """valuesFrom and credentials ConfigMaps/Secrets as helm-controller and source-controller read
    them: from the cluster (Secret values in memory only), each fetched once; and a count of those
    found. Called from the renderer's threads while this session's event loop runs. A read the
    cluster refuses (403, unreachable) raises ObjectUnreadable: that release is partial."""
    import asyncio

    from phoebe_cli.errors import ClusterError, NotFound
    from phoebe_cli.usecases.build import ObjectUnreadable

    loop = asyncio.get_running_loop()
    fetched: dict[tuple[str, str, str], Mapping[str, Any] | None] = {}

    async def read(namespace: str, kind: str, name: str) -> Mapping[str, Any] | None:
        plural = {"ConfigMap": "configmaps", "Secret": "secrets"}.get(kind)
        if plural is None:
            return None
        try:
            return await session.kube.get_json(f"/api/v1/namespaces/{namespace}/{plural}/{name}")
        except NotFound:
            return None
        except ClusterError as error:
            raise ObjectUnreadable(f"{kind} {namespace}/{name} cannot be read on the cluster: {error}") from None

    def lookup(namespace: str, kind: str, name: str) -> Mapping[str, Any] | None:
        key = (namespace, kind, name)
        if key not in fetched:
            fetched[key] = asyncio.run_coroutine_threadsafe(read(namespace, kind, name), loop).result()
        return fetched[key]

    def found() -> int:
        return sum(v is not None for v in fetched.values())

    return lookup, found


async def default_post_render_strategy_of(session: Session) -> str:
    """The post-render strategy helm-controller uses when a HelmRelease names none: from its
    Deployment's ``UseHelm3Defaults`` gate; Helm 4's default when it cannot be read."""
    from phoebe_cli.errors import ClusterError
    from phoebe_cli.flux.helmrelease import default_post_render_strategy
    from phoebe_cli.flux.installation import helm3_defaults_of
    from phoebe_cli.kube.discovery import DEPLOYMENTS

    try:
        deployment = await session.kube.get_json(
            DEPLOYMENTS.object_path(session.flux_namespace, "helm-controller"), what="the helm-controller Deployment"
        )
    except ClusterError:
        return default_post_render_strategy(False)
    return default_post_render_strategy(helm3_defaults_of(deployment))


async def render_inputs(session: Session, catalog: ApiCatalog | None = None) -> ClusterRenderInputs:
    """Everything a render reads from this cluster; raises the ClusterError of ``/version`` or
    discovery (unreachable, 401, 403) so a caller can tell a cluster that is not there."""
    import asyncio

    version, api_versions, strategy = await asyncio.gather(
        kube_version_of(session), api_versions_of(session, catalog), default_post_render_strategy_of(session)
    )
    lookup, found = cluster_objects(session)
    return ClusterRenderInputs(session.access.context, version or None, api_versions, lookup, found, strategy)
