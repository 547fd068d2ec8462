"""Naming one object, and Flux's inventory ids (``status.inventory.entries[].id``) — pure, shared
by the repo model (which ids a build yields), the cluster side (which objects an inventory
names, what a dry-run answered) and diff (which objects pair up).

An object is who it is by its API group, kind, namespace and name: the Gateway API's ``Gateway``
(gateway.networking.k8s.io) and Istio's ``Gateway`` (networking.istio.io) of one name are two
objects. The version is not part of it: ``apps/v1`` and ``apps/v1beta2`` Deployments of one name
are one object served in two versions, as Flux's inventory ids say (they hold no version).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, eq=False)
class ObjectKey:
    """What names one object: apiVersion, kind, namespace (None when cluster-scoped) and name.

    Equal and hashed by (group, kind, namespace, name) — ``identity`` —, never by the version,
    which the key still carries for the requests that need it (``api_version``, ``version``).
    """

    api_version: str
    kind: str
    namespace: str | None
    name: str

    def __post_init__(self) -> None:
        if self.namespace == "":
            object.__setattr__(self, "namespace", None)

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]

    @property
    def identity(self) -> tuple[str, str, str, str]:
        """(group, kind, namespace or "", name): what makes two keys the same object."""
        return (self.group, self.kind, self.namespace or "", self.name)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ObjectKey):
            return NotImplemented
        return self.identity == other.identity

    def __hash__(self) -> int:
        return hash(self.identity)

    @property
    def sort_key(self) -> tuple[str, str, str, str]:
        """Kind, namespace, name, then the group: the order objects are listed in."""
        return (self.kind, self.namespace or "", self.name, self.group)

    @property
    def subject(self) -> str:
        """Flux's way of naming an object in messages: Kind/namespace/name or Kind/name."""
        return f"{self.kind}/{self.namespace}/{self.name}" if self.namespace else f"{self.kind}/{self.name}"

    @property
    def qualified_subject(self) -> str:
        """The subject with the API group, as kubectl writes a kind with its group
        (``Gateway.gateway.networking.k8s.io/net/main``); core objects have none to add."""
        kind = f"{self.kind}.{self.group}" if self.group else self.kind
        return f"{kind}/{self.namespace}/{self.name}" if self.namespace else f"{kind}/{self.name}"

    def __str__(self) -> str:
        return self.subject

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> ObjectKey:
        meta = obj.get("metadata") or {}
        return cls(
            str(obj.get("apiVersion") or ""),
            str(obj.get("kind") or ""),
            str(meta.get("namespace") or "") or None,
            str(meta.get("name") or ""),
        )


# Kinds whose names may hold ":", which inventory ids write as "__" (cli-utils' RBACGroupKind).
_RBAC_KINDS = {"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"}
RBAC_GROUP = "rbac.authorization.k8s.io"


def parse_inventory_id(entry_id: str, version: str) -> ObjectKey:
    """An inventory entry (``status.inventory.entries[]``: ``id`` and ``v``) as an ObjectKey.

    The id is ``<namespace>_<name>_<group>_<kind>`` (cli-utils ``ParseObjMetadata``): the
    namespace ends at the first ``_``, the kind and group start after the last two; ``__`` in
    the name stands for ``:``. Cluster-scoped ids start with ``_``; core ones have an empty group
    (``apps_podinfo__ConfigMap``). Raises ValueError for an id that has not four fields.
    """
    namespace, sep, rest = entry_id.partition("_")
    rest, sep_kind, kind = rest.rpartition("_")
    name, sep_group, group = rest.rpartition("_")
    if not (sep and sep_kind and sep_group):
        raise ValueError(f"unable to parse stored object metadata: {entry_id}")
    name = name.replace("__", ":")
    api_version = f"{group}/{version}" if group else version
    return ObjectKey(api_version, kind, namespace or None, name)


def inventory_id(key: ObjectKey) -> str:
    """The inventory id of ``key`` (cli-utils ``ObjMetadata.String``): ``:`` is written ``__``
    in RBAC names only, as Flux writes it."""
    name = key.name
    if key.group == RBAC_GROUP and key.kind in _RBAC_KINDS:
        name = name.replace(":", "__")
    return f"{key.namespace or ''}_{name}_{key.group}_{key.kind}"
