"""Naming one object, and Flux's inventory ids (``status.inventory.entries[].id``) — pure, shared
by the repo model (which ids a build yields) and the cluster side (which objects an inventory
names)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple


class ObjectKey(NamedTuple):
    """What names one object: (apiVersion, kind, namespace or None when cluster-scoped, name)."""

    api_version: str
    kind: str
    namespace: str | None
    name: str

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]

    @property
    def subject(self) -> str:
        """Flux's way of naming an object in messages: Kind/namespace/name or Kind/name."""
        return f"{self.kind}/{self.namespace}/{self.name}" if self.namespace else f"{self.kind}/{self.name}"

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


# --- what Flux does to an object before applying it -------------------------------------------
