"""HelmRelease values as helm-controller merges them: valuesFrom in order, then spec.values."""

from __future__ import annotations

import base64
from typing import Any

from phoebe_cli.flux.helmvalues import effective_values, with_effective_values


def _release(values_from: list[dict[str, Any]], values: dict[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"valuesFrom": values_from}
    if values is not None:
        spec["values"] = values
    return {"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease", "metadata": {"name": "r"}, "spec": spec}


OBJECTS: dict[tuple[str, str], dict[str, Any]] = {
    ("ConfigMap", "base"): {"kind": "ConfigMap", "data": {"values.yaml": "a: {b: 1, c: 2}\nlist: [1, 2]\n"}},
    ("ConfigMap", "other-key"): {"kind": "ConfigMap", "data": {"extra.yaml": "a: {c: 3}\n"}},
    ("Secret", "creds"): {
        "kind": "Secret",
        "data": {"values.yaml": base64.b64encode(b"db: {password: hunter2, user: app}\n").decode()},
    },
    ("Secret", "token"): {"kind": "Secret", "stringData": {"token": "s3cr3t"}},
    ("Secret", "sealed"): {
        "kind": "Secret",
        "metadata": {"annotations": {"phoebe.dev/sops": "encrypted"}},
        "data": {"values.yaml": "***"},
    },
}


def lookup(kind: str, name: str) -> dict[str, Any] | None:
    return OBJECTS.get((kind, name))


def test_sources_merge_in_order_then_inline_values_win() -> None:
    release = _release(
        [
            {"kind": "ConfigMap", "name": "base"},
            {"kind": "ConfigMap", "name": "other-key", "valuesKey": "extra.yaml"},
        ],
        {"list": [9], "a": {"d": 4}},
    )

    values, notes = effective_values(release, lookup)

    assert values == {"a": {"b": 1, "c": 3, "d": 4}, "list": [9]}
    assert notes == []


def test_secret_values_are_masked_leaf_by_leaf_and_target_path_is_set() -> None:
    release = _release(
        [
            {"kind": "Secret", "name": "creds"},
            {"kind": "Secret", "name": "token", "valuesKey": "token", "targetPath": "auth.token"},
        ]
    )

    values, _ = effective_values(release, lookup)

    assert values == {"db": {"password": "***", "user": "***"}, "auth": {"token": "***"}}
    assert "hunter2" not in repr(values) and "s3cr3t" not in repr(values)


def test_missing_encrypted_and_optional_sources_are_noted_not_fatal() -> None:
    release = _release(
        [
            {"kind": "ConfigMap", "name": "absent"},
            {"kind": "ConfigMap", "name": "absent-ok", "optional": True},
            {"kind": "Secret", "name": "sealed"},
            {"kind": "ConfigMap", "name": "base", "valuesKey": "nope.yaml"},
        ],
        {"x": 1},
    )

    values, notes = effective_values(release, lookup)

    assert values == {"x": 1}
    assert notes == [
        "valuesFrom ConfigMap/absent is not in this build",
        "valuesFrom Secret/sealed is SOPS-encrypted: its values are not known offline",
        "valuesFrom ConfigMap/base has no key 'nope.yaml'",
    ]


def test_a_release_without_values_from_is_returned_as_it_is() -> None:
    release = {"kind": "HelmRelease", "spec": {"values": {"a": 1}}}
    assert with_effective_values(release, lookup) == release
    merged = with_effective_values(_release([{"kind": "ConfigMap", "name": "base"}]), lookup)
    assert merged["spec"]["values"] == {"a": {"b": 1, "c": 2}, "list": [1, 2]}
    assert merged["spec"]["valuesFrom"] == [{"kind": "ConfigMap", "name": "base"}]
