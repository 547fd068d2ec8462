"""flux.inventory: one object key (API group, kind, namespace, name — not the version) and Flux's
inventory ids."""

from __future__ import annotations

import pytest

from phoebe_cli.flux.inventory import ObjectKey, inventory_id, parse_inventory_id

KUSTOMIZE_V1 = "kustomize.toolkit.fluxcd.io/v1"
GATEWAY_API = ObjectKey("gateway.networking.k8s.io/v1", "Gateway", "net", "main")
ISTIO = ObjectKey("networking.istio.io/v1", "Gateway", "net", "main")


# --- the key ----------------------------------------------------------------------------------
def test_object_key_names_namespaced_and_cluster_scoped_objects() -> None:
    assert str(ObjectKey("apps/v1", "Deployment", "apps", "web")) == "Deployment/apps/web"
    assert str(ObjectKey("v1", "Namespace", None, "apps")) == "Namespace/apps"
    key = ObjectKey("apps/v1", "Deployment", "apps", "web")
    assert (key.group, key.version) == ("apps", "v1")
    assert (ObjectKey("v1", "Secret", "a", "b").group, ObjectKey("v1", "Secret", "a", "b").version) == ("", "v1")


def test_the_api_group_is_part_of_the_key() -> None:
    assert GATEWAY_API != ISTIO
    assert len({GATEWAY_API, ISTIO}) == 2
    assert GATEWAY_API.subject == ISTIO.subject == "Gateway/net/main"
    assert GATEWAY_API.identity == ("gateway.networking.k8s.io", "Gateway", "net", "main")


def test_the_version_is_not_part_of_the_key() -> None:
    v1 = ObjectKey("apps/v1", "Deployment", "apps", "web")
    beta = ObjectKey("apps/v1beta2", "Deployment", "apps", "web")
    assert v1 == beta and hash(v1) == hash(beta)
    assert {v1: "x"}[beta] == "x"
    assert beta.version == "v1beta2"  # still carried, for the requests that need it


def test_an_empty_namespace_is_no_namespace() -> None:
    assert ObjectKey("v1", "Namespace", "", "apps").namespace is None
    assert ObjectKey("v1", "Namespace", "", "apps") == ObjectKey("v1", "Namespace", None, "apps")
    assert ObjectKey.of({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"}}).namespace is None


def test_object_key_of_an_object() -> None:
    obj = {"apiVersion": "networking.istio.io/v1", "kind": "Gateway", "metadata": {"name": "main", "namespace": "net"}}
    assert ObjectKey.of(obj) == ISTIO
    assert ObjectKey.of(obj).api_version == "networking.istio.io/v1"
    assert ObjectKey.of({}) == ObjectKey("", "", None, "")


def test_qualified_subject_names_the_group() -> None:
    assert GATEWAY_API.qualified_subject == "Gateway.gateway.networking.k8s.io/net/main"
    assert ObjectKey("rbac.authorization.k8s.io/v1", "ClusterRole", None, "r").qualified_subject == (
        "ClusterRole.rbac.authorization.k8s.io/r"
    )
    assert ObjectKey("v1", "ConfigMap", "a", "b").qualified_subject == "ConfigMap/a/b"  # the core group has none


def test_keys_sort_by_kind_namespace_name_then_group() -> None:
    keys = [ISTIO, ObjectKey("v1", "ConfigMap", "net", "z"), GATEWAY_API, ObjectKey("v1", "ConfigMap", None, "a")]
    assert sorted(keys, key=lambda k: k.sort_key) == [
        ObjectKey("v1", "ConfigMap", None, "a"),
        ObjectKey("v1", "ConfigMap", "net", "z"),
        GATEWAY_API,
        ISTIO,
    ]


# --- inventory ids (moved from tests/integration/test_apply.py: no API server needed) -----------
@pytest.mark.parametrize(
    ("entry_id", "version", "key"),
    [
        ("apps_podinfo-config__ConfigMap", "v1", ObjectKey("v1", "ConfigMap", "apps", "podinfo-config")),
        ("apps_podinfo_apps_Deployment", "v1", ObjectKey("apps/v1", "Deployment", "apps", "podinfo")),
        ("_media__Namespace", "v1", ObjectKey("v1", "Namespace", None, "media")),
        (
            "_flux-view_rbac.authorization.k8s.io_ClusterRole",
            "v1",
            ObjectKey("rbac.authorization.k8s.io/v1", "ClusterRole", None, "flux-view"),
        ),
        (
            "_system__aggregate-to-view_rbac.authorization.k8s.io_ClusterRole",
            "v1",
            ObjectKey("rbac.authorization.k8s.io/v1", "ClusterRole", None, "system:aggregate-to-view"),
        ),
        (
            "flux-system_cluster-apps_kustomize.toolkit.fluxcd.io_Kustomization",
            "v1",
            ObjectKey(KUSTOMIZE_V1, "Kustomization", "flux-system", "cluster-apps"),
        ),
        (
            "_helmreleases.helm.toolkit.fluxcd.io_apiextensions.k8s.io_CustomResourceDefinition",
            "v1",
            ObjectKey(
                "apiextensions.k8s.io/v1", "CustomResourceDefinition", None, "helmreleases.helm.toolkit.fluxcd.io"
            ),
        ),
        (
            "net_main_networking.istio.io_Gateway",
            "v1beta1",
            ObjectKey("networking.istio.io/v1beta1", "Gateway", "net", "main"),
        ),
    ],
)
def test_inventory_ids_round_trip(entry_id: str, version: str, key: ObjectKey) -> None:
    parsed = parse_inventory_id(entry_id, version)
    assert parsed == key
    assert parsed.api_version == key.api_version  # equality leaves the version out: checked apart
    assert (parsed.namespace, parsed.name) == (key.namespace, key.name)
    assert inventory_id(key) == entry_id


def test_inventory_ids_of_two_groups_differ() -> None:
    assert inventory_id(GATEWAY_API) == "net_main_gateway.networking.k8s.io_Gateway"
    assert inventory_id(ISTIO) == "net_main_networking.istio.io_Gateway"


def test_inventory_id_writes_colons_only_in_rbac_names() -> None:
    # cli-utils transcodes ":" for RBAC kinds only (other kinds cannot have it in their names)
    assert inventory_id(ObjectKey("v1", "ConfigMap", "ns", "a:b")) == "ns_a:b__ConfigMap"
    assert inventory_id(ObjectKey("rbac.authorization.k8s.io/v1", "Role", "ns", "a:b")) == (
        "ns_a__b_rbac.authorization.k8s.io_Role"
    )


@pytest.mark.parametrize("entry_id", ["", "nounderscore", "ns_name", "ns_name_Kind"])
def test_malformed_inventory_ids(entry_id: str) -> None:
    with pytest.raises(ValueError, match="unable to parse stored object metadata"):
        parse_inventory_id(entry_id, "v1")
