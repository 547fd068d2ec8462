"""Helm's release storage read as Helm reads it (flux/helmstorage.py): the encoding of
storage/driver/util.go and the revision prepareUpgrade starts from. The same decoding is checked
against Secrets the real helm writes in tests/integration/test_diff_helm_storage.py."""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Mapping
from typing import Any

import pytest

from phoebe_cli.flux.helmstorage import (
    CorruptRelease,
    current_secret,
    decode_release,
    release_selector,
    storage_secret_name,
)

MANIFEST = "---\n# Source: web/templates/cm.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n"


def helm_encoded(record: dict[str, Any], *, compress: bool = True) -> str:
    """What Helm's encodeRelease writes, as the API server serves it in data.release."""
    raw = json.dumps(record).encode()
    if compress:
        raw = gzip.compress(raw, compresslevel=9)
    return base64.b64encode(base64.b64encode(raw)).decode()


def storage_secret(revision: int, status: str, **record: Any) -> dict[str, Any]:
    body = {
        "name": "web",
        "namespace": "apps",
        "version": revision,
        "info": {"status": status},
        "chart": {"metadata": {"name": "web", "version": "1.2.0", "appVersion": "2.0"}},
        "config": {"password": "hunter2"},
        "manifest": MANIFEST,
    } | record
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "helm.sh/release.v1",
        "metadata": {
            "name": storage_secret_name("web", revision),
            "labels": {"owner": "helm", "name": "web", "status": status, "version": str(revision)},
        },
        "data": {"release": helm_encoded(body)},
    }


def test_names_and_selector() -> None:
    assert storage_secret_name("web", 3) == "sh.helm.release.v1.web.v3"
    assert release_selector("web") == "owner=helm,name=web"


def test_a_release_is_decoded_without_its_values() -> None:
    stored = decode_release(storage_secret(2, "deployed"))
    assert (stored.name, stored.namespace, stored.revision, stored.status) == ("web", "apps", 2, "deployed")
    assert (stored.chart, stored.chart_version, stored.app_version) == ("web", "1.2.0", "2.0")
    assert stored.manifest == MANIFEST
    assert "hunter2" not in repr(stored)


def test_an_uncompressed_release_is_read_as_helm_reads_it() -> None:
    secret = storage_secret(1, "deployed")
    secret["data"]["release"] = helm_encoded({"name": "web", "version": 1, "manifest": MANIFEST}, compress=False)
    assert decode_release(secret).manifest == MANIFEST


@pytest.mark.parametrize(
    "data",
    [{}, {"release": "not base64!"}, {"release": base64.b64encode(b"%%%").decode()}, {"release": helm_encoded([])}],  # type: ignore[arg-type]
)
def test_a_corrupt_release_is_one_error(data: dict[str, str]) -> None:
    secret = storage_secret(1, "deployed")
    secret["data"] = data
    with pytest.raises(CorruptRelease, match=r"^Secret sh\.helm\.release\.v1\.web\.v1"):
        decode_release(secret)


def revisions(*statuses: str) -> list[dict[str, Any]]:
    return [storage_secret(i + 1, status) for i, status in enumerate(statuses)]


def chosen(secrets: list[dict[str, Any]]) -> tuple[int | None, int | None]:
    current, last = current_secret(reversed(secrets))  # the API's order is not the revisions'

    def number(secret: Mapping[str, Any] | None) -> int | None:
        return None if secret is None else int(secret["metadata"]["labels"]["version"])

    return number(current), number(last)


def test_the_revision_an_upgrade_starts_from() -> None:
    assert chosen([]) == (None, None)
    assert chosen(revisions("superseded", "deployed")) == (2, 2)
    # a failed upgrade: Helm diffs against the last deployed revision
    assert chosen(revisions("superseded", "deployed", "failed")) == (2, 3)
    # nothing deployed: a failed or superseded last revision stands in
    assert chosen(revisions("failed")) == (1, 1)
    assert chosen(revisions("superseded", "failed")) == (2, 2)
    # uninstalled (kept history) or pending without a deployed one: none to start from
    assert chosen(revisions("uninstalled")) == (None, 1)
    assert chosen(revisions("pending-install")) == (None, 1)
    # revision 10 sorts after 9 (numbers, not strings)
    assert chosen(revisions(*(["superseded"] * 9), "deployed")) == (10, 10)
