"""Whether a namespace the user named exists.

Listing objects in a namespace that does not exist is not an error for the API server: it
answers with an empty list. A CI gate (``phoebe status -n typo``) would pass on a typo, so when a
namespace the user named turns out empty, the commands ask whether it exists at all. One GET,
only then; a user who may not read namespaces gets the benefit of the doubt.
"""

from __future__ import annotations

from phoebe_cli.errors import Forbidden, NotFound
from phoebe_cli.kube.discovery import NAMESPACES
from phoebe_cli.kube.session import Session


async def namespace_exists(session: Session, namespace: str) -> bool:
    """False only when the server says the namespace is not there (403: assumed to exist)."""
    try:
        await session.kube.get_json(NAMESPACES.object_path(None, namespace), what=f"namespace {namespace}")
    except NotFound:
        return False
    except Forbidden:
        return True
    return True


async def require_namespace(session: Session, namespace: str, *, hint: str = "") -> None:
    """Raise NotFound (exit 5) naming ``namespace`` when it does not exist."""
    if not await namespace_exists(session, namespace):
        raise NotFound(f"namespace {namespace} not found{hint}")
