"""A session: the cluster access, one API client and the discovered kinds, for one run."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from phoebe_cli.errors import FluxNotInstalled, NotFound
from phoebe_cli.flux.kinds import ALL_KINDS, FLUX_GROUPS, FluxKind
from phoebe_cli.kube.client import ClientSettings, KubeClient
from phoebe_cli.kube.config import ClusterAccess, ImpersonationFlags, load_cluster_access
from phoebe_cli.kube.discovery import ApiCatalog, ServedKind, discover


@dataclass(frozen=True)
class SessionOptions:
    kubeconfig: str | None = None
    context: str | None = None
    flux_namespace: str = "flux-system"
    request_timeout: float | None = None
    impersonate: ImpersonationFlags | None = None  # kubectl-style --as/--as-uid/--as-group


class Session:
    """What a command needs to talk to one cluster. Discovery happens at most once."""

    def __init__(self, access: ClusterAccess, kube: KubeClient, flux_namespace: str) -> None:
        self.access = access
        self.kube = kube
        self.flux_namespace = flux_namespace
        self._catalog: ApiCatalog | None = None

    async def catalog(self) -> ApiCatalog:
        """The Flux (and ExternalSecret) kinds this cluster serves, asked once per run."""
        if self._catalog is None:
            self._catalog = await discover(self.kube, {k.group for k in ALL_KINDS})
        return self._catalog

    async def served(self, kind: FluxKind) -> ServedKind:
        """The served form of ``kind``; NotFound (or FluxNotInstalled) when its CRD is missing."""
        catalog = await self.catalog()
        found = catalog.get(kind.group, kind.kind)
        if found is not None:
            return found
        if kind.part_of_flux and not any(group in FLUX_GROUPS for group, _ in catalog.kinds):
            raise FluxNotInstalled("Flux is not installed in this cluster: none of its CRDs are served")
        raise NotFound(f"{kind.kind} ({kind.group}) is not served by this cluster: its CRD is not installed")


@asynccontextmanager
async def open_session(options: SessionOptions) -> AsyncIterator[Session]:
    access = load_cluster_access(options.kubeconfig, options.context, options.impersonate)
    settings = ClientSettings()
    if options.request_timeout is not None:
        settings = ClientSettings(
            connect_timeout=min(settings.connect_timeout, options.request_timeout),
            request_timeout=options.request_timeout,
        )
    async with KubeClient(access, settings) as kube:
        yield Session(access, kube, options.flux_namespace)
