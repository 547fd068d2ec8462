"""``phoebe check``: the server, the Flux kinds it serves, and the Flux controllers."""

from __future__ import annotations

import asyncio

from phoebe_cli.errors import ClusterError, NotFound
from phoebe_cli.flux.installation import (
    PART_OF_FLUX_SELECTOR,
    CheckReport,
    ControllerReport,
    controller_report,
    flux_version,
    kind_reports,
    problems_of,
)
from phoebe_cli.flux.kinds import ALL_KINDS
from phoebe_cli.kube.client import KubeClient
from phoebe_cli.kube.discovery import DEPLOYMENTS, NAMESPACES, discover
from phoebe_cli.kube.session import Session


async def check_installation(session: Session) -> CheckReport:
    kube = session.kube
    version_doc, catalog = await asyncio.gather(
        kube.get_json("/version", what="the server version"),
        discover(kube, {k.group for k in ALL_KINDS}),
    )
    kinds = kind_reports({key: served.versions for key, served in catalog.kinds.items()})
    controllers: tuple[ControllerReport, ...] = ()
    namespace_exists: bool | None = None
    if any(k.installed and k.part_of_flux for k in kinds):
        deployments, _ = await kube.list_all(
            DEPLOYMENTS.collection_path(session.flux_namespace),
            params={"labelSelector": PART_OF_FLUX_SELECTOR},
            what=f"Deployments in {session.flux_namespace}",
        )
        controllers = tuple(sorted((controller_report(d) for d in deployments), key=lambda c: c.name))
        if not controllers:
            namespace_exists = await _namespace_exists(kube, session.flux_namespace)
    return CheckReport(
        context=session.access.context,
        server=session.access.server,
        server_version=str(version_doc.get("gitVersion", "unknown")),
        flux_namespace=session.flux_namespace,
        flux_version=flux_version(controllers),
        kinds=kinds,
        controllers=controllers,
        problems=problems_of(kinds, controllers, session.flux_namespace, namespace_exists),
    )


async def _namespace_exists(kube: KubeClient, namespace: str) -> bool | None:
    try:
        await kube.get_json(NAMESPACES.object_path(None, namespace))
    except NotFound:
        return False
    except ClusterError:  # only a hint for the report; RBAC may not allow the GET
        return None
    return True
