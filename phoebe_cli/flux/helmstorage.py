"""What helm-controller last deployed: Helm's release storage, read as Helm v3.19 reads it. Pure.

helm-controller keeps each release revision in a Secret of type ``helm.sh/release.v1`` named
``sh.helm.release.v1.<release>.v<revision>`` in the storage namespace, labelled ``owner=helm``,
``name=<release>``, ``status=<status>``, ``version=<revision>`` (``storage/driver/secrets.go``).
Its ``data.release`` is, under the Secret's own base64, Helm's encoding
(``storage/driver/util.go``): base64 of the gzip of the release as JSON (older releases without
gzip are read too, as Helm reads them: gzip only when the magic bytes are there).

Which revision an upgrade starts from (``action/upgrade.go`` ``prepareUpgrade``): the last
revision when it is ``deployed``; else the latest ``deployed`` one; else, when there is none, the
last one if it ``failed`` or was ``superseded``. A last revision still pending
(``pending-install``/``-upgrade``/``-rollback``) makes Helm refuse to upgrade.

Only what the comparison needs is kept: never ``config`` (the values, which may hold Secret
values) nor the chart's files.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from phoebe_cli.flux.helmrelease import values_digest

STORAGE_TYPE = "helm.sh/release.v1"
OWNER_LABEL, NAME_LABEL, STATUS_LABEL, VERSION_LABEL = "owner", "name", "status", "version"
DEPLOYED, FAILED, SUPERSEDED = "deployed", "failed", "superseded"
PENDING = ("pending-install", "pending-upgrade", "pending-rollback")
GZIP_MAGIC = b"\x1f\x8b\x08"

__all__ = [
    "STORAGE_TYPE",
    "CorruptRelease",
    "StoredRelease",
    "current_secret",
    "decode_release",
    "release_selector",
    "storage_secret_name",
]


class CorruptRelease(ValueError):
    """A storage Secret whose release cannot be read (what Helm would fail on too)."""


@dataclass(frozen=True)
class StoredRelease:
    name: str
    namespace: str  # where the release's objects go
    revision: int
    status: str
    chart: str  # the chart's name
    chart_version: str
    app_version: str
    manifest: str  # the YAML stream Helm applied (hooks and CRDs are not in it)
    config_digest: str = ""  # flux.helmrelease.values_digest of the values it was made with (never the values)
    hooks: tuple[str, ...] = ()  # each hook's manifest (Helm stores them apart, each with its events)

    @property
    def pending(self) -> bool:
        return self.status in PENDING


def storage_secret_name(release: str, revision: int) -> str:
    return f"sh.helm.release.v1.{release}.v{revision}"


def release_selector(release: str) -> str:
    """The label selector Helm lists a release's history with."""
    return f"{OWNER_LABEL}=helm,{NAME_LABEL}={release}"


def _revision(secret: Mapping[str, Any]) -> int:
    labels = (secret.get("metadata") or {}).get("labels") or {}
    try:
        return int(str(labels.get(VERSION_LABEL, "")))
    except ValueError:
        name = str((secret.get("metadata") or {}).get("name", ""))
        suffix = name.rpartition(".v")[2]
        return int(suffix) if suffix.isdigit() else -1


def _status(secret: Mapping[str, Any]) -> str:
    return str(((secret.get("metadata") or {}).get("labels") or {}).get(STATUS_LABEL, ""))


def current_secret(secrets: Iterable[Mapping[str, Any]]) -> tuple[Mapping[str, Any] | None, Mapping[str, Any] | None]:
    """(the revision an upgrade starts from, the last revision) among a release's storage
    Secrets, by Helm's rules; (None, None) when there are none, (None, last) when no revision
    qualifies (the next action is an install)."""
    history = sorted((s for s in secrets if s.get("type", STORAGE_TYPE) == STORAGE_TYPE), key=_revision)
    if not history:
        return None, None
    last = history[-1]
    if _status(last) == DEPLOYED:
        return last, last
    deployed = [s for s in history if _status(s) == DEPLOYED]
    if deployed:
        return deployed[-1], last
    if _status(last) in (FAILED, SUPERSEDED):
        return last, last
    return None, last


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def decode_release(secret: Mapping[str, Any]) -> StoredRelease:
    """The release a storage Secret (as the API serves it) holds."""
    name = str((secret.get("metadata") or {}).get("name", ""))
    data = secret.get("data")
    encoded = data.get("release") if isinstance(data, Mapping) else None
    if not isinstance(encoded, str):
        raise CorruptRelease(f"Secret {name} has no data.release")
    try:
        helm_text = base64.b64decode(encoded, validate=True)
        raw = base64.b64decode(helm_text, validate=True)
        if len(raw) > 3 and raw[:3] == GZIP_MAGIC:
            raw = gzip.decompress(raw)
        record = json.loads(raw)
    except (binascii.Error, ValueError, OSError, EOFError, zlib.error) as exc:
        raise CorruptRelease(f"Secret {name}: the release cannot be decoded ({type(exc).__name__})") from None
    if not isinstance(record, Mapping):
        raise CorruptRelease(f"Secret {name}: the release is not a JSON object")
    info = _mapping(record.get("info"))
    metadata = _mapping(_mapping(record.get("chart")).get("metadata"))
    return StoredRelease(
        name=str(record.get("name", "")),
        namespace=str(record.get("namespace", "")),
        revision=int(record.get("version") or 0),
        status=str(info.get("status", "")),
        chart=str(metadata.get("name", "")),
        chart_version=str(metadata.get("version", "")),
        app_version=str(metadata.get("appVersion", "")),
        manifest=str(record.get("manifest") or ""),
        config_digest=values_digest(_mapping(record.get("config"))),
        hooks=tuple(
            str(hook.get("manifest") or "")
            for hook in record.get("hooks") or []
            if isinstance(hook, Mapping) and hook.get("manifest")
        ),
    )
