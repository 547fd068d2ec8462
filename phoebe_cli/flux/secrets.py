"""Secret values never leave phoebe: how they are masked, and the marks that say so — pure, one
home for the repo model (which masks what it builds), diff (which compares masked Secrets by key)
and the cluster side (which dry-runs Secrets without their values).

- ``MASK`` (``***``) stands for a value: what a Secret value is shown as, and in a model's
  object a value that is not known (masked), so never compared as a value.
- ``SOPS_MARK`` (``phoebe.dev/sops: encrypted``) is the annotation the model puts on the masked
  copy of a SOPS-encrypted Secret, whose values cannot be known offline; its top-level ``sops``
  map is dropped, as kustomize-controller drops it once it has decrypted the Secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["MASK", "SOPS_MARK", "has_sops_metadata", "is_secret", "is_sops_encrypted", "mask_secret"]

MASK = "***"
SOPS_MARK = "phoebe.dev/sops"  # the annotation on a SOPS-encrypted Secret, its values masked


def data_of(obj: Mapping[str, Any], field: str = "data") -> Mapping[str, Any]:
    """A ConfigMap's or Secret's ``data`` (or ``stringData``) as a mapping: what a checkout holds
    may be anything (`data: "x"`), which the API server refuses but phoebe must not crash on."""
    value = obj.get(field)
    return value if isinstance(value, Mapping) else {}


def is_secret(obj: Mapping[str, Any]) -> bool:
    """A core ``v1`` Secret (ssa ``utils.IsSecret``)."""
    return str(obj.get("kind", "")).lower() == "secret" and obj.get("apiVersion") == "v1"


def has_sops_metadata(obj: Mapping[str, Any]) -> bool:
    """Encrypted with SOPS as written in Git: a top-level ``sops`` map."""
    return isinstance(obj.get("sops"), Mapping)


def is_sops_encrypted(obj: Mapping[str, Any] | None) -> bool:
    """SOPS-encrypted, as written (``sops`` map) or as the model's masked copy (``SOPS_MARK``):
    its values are unknown offline."""
    if obj is None:
        return False
    meta = obj.get("metadata")
    annotations = meta.get("annotations") if isinstance(meta, Mapping) else None
    marker = annotations.get(SOPS_MARK) if isinstance(annotations, Mapping) else None
    return has_sops_metadata(obj) or str(marker) == "encrypted"


def mask_secret(obj: dict[str, Any]) -> dict[str, Any]:
    """Secret values never leave phoebe: data and stringData values become ***. A SOPS-encrypted
    Secret loses its ``sops`` map and gains ``SOPS_MARK``. Any other object is returned as it is."""
    if obj.get("kind") != "Secret":
        return obj
    masked = dict(obj)
    for key in ("data", "stringData"):
        if isinstance(obj.get(key), dict):
            masked[key] = dict.fromkeys(obj[key], MASK)
    masked.pop("sops", None)
    if has_sops_metadata(obj):
        annotations = dict((masked.get("metadata") or {}).get("annotations") or {})
        annotations[SOPS_MARK] = "encrypted"
        masked["metadata"] = {**(masked.get("metadata") or {}), "annotations": annotations}
    return masked
