"""flux.apply: the rules kustomize-controller (through fluxcd/pkg/ssa v0.78.0) follows when it
applies an object — normalisation, owner labels, skip/force/prune selectors, staging, drift with
spec.ignore rules, equality as Go compares — shared by kube/apply.py and flux/diff.py.

The normalisation and drift tests were in tests/integration/test_apply.py; they need no API server."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from phoebe_cli.flux.apply import (
    IgnoreRule,
    any_in_metadata,
    apply_skip_reason,
    apply_stage,
    fold_string_data,
    force_enabled,
    has_drifted,
    is_immutable_error,
    json_equal,
    normalize_for_apply,
    owned_by,
    prune_skip_reason,
    set_owner_labels,
    without_invalid_ca_bundle,
)

Obj = dict[str, Any]
FLUX = "kustomize.toolkit.fluxcd.io"


def configmap(name: str = "x", **meta: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "apps", **meta}}


# --- normalisation before applying ------------------------------------------------------------
def test_service_port_protocol_defaults_to_tcp_as_flux_does() -> None:
    """ssa normalize: "adds default port protocol to Service" (normalize_test.go)."""
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "creationTimestamp": "2020-01-01T00:00:00Z"},
        "spec": {"ports": [{"port": 80}, {"port": 443}, {"port": 53, "protocol": "UDP"}]},
        "status": {"loadBalancer": {}},
    }

    normalized = normalize_for_apply(service)

    assert normalized == {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "creationTimestamp": None},
        "spec": {
            "ports": [
                {"port": 80, "protocol": "TCP"},
                {"port": 443, "protocol": "TCP"},
                {"port": 53, "protocol": "UDP"},
            ]
        },
    }
    assert service["spec"]["ports"][0] == {"port": 80}  # the input is not changed


@pytest.mark.parametrize(
    ("api_version", "kind", "path"),
    [
        ("v1", "Pod", ("spec",)),
        ("apps/v1", "Deployment", ("spec", "template", "spec")),
        ("apps/v1", "StatefulSet", ("spec", "template", "spec")),
        ("apps/v1", "DaemonSet", ("spec", "template", "spec")),
        ("apps/v1", "ReplicaSet", ("spec", "template", "spec")),
        ("batch/v1", "Job", ("spec", "template", "spec")),
        ("batch/v1", "CronJob", ("spec", "jobTemplate", "spec", "template", "spec")),
    ],
)
def test_container_port_protocol_defaults_to_tcp(api_version: str, kind: str, path: tuple[str, ...]) -> None:
    pod_spec: Obj = {
        "containers": [{"name": "app", "ports": [{"containerPort": 80}, {"containerPort": 53, "protocol": "UDP"}]}],
        "initContainers": [{"name": "init", "ports": [{"containerPort": 81}]}],  # Flux leaves these
    }
    obj: Obj = {"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}}
    node = obj
    for step in path[:-1]:
        node = node.setdefault(step, {})
    node[path[-1]] = pod_spec

    normalized = normalize_for_apply(obj)

    spec = normalized
    for step in path:
        spec = spec[step]
    assert spec["containers"][0]["ports"] == [
        {"containerPort": 80, "protocol": "TCP"},
        {"containerPort": 53, "protocol": "UDP"},
    ]
    assert spec["initContainers"][0]["ports"] == [{"containerPort": 81}]


def test_normalisation_leaves_roles_and_keeps_crd_status() -> None:
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "r"}}
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "status": {"x": 1}}
    other = {"apiVersion": "test/v1", "kind": "Test", "status": {"foo": "bar"}}

    assert normalize_for_apply(role) == role
    assert normalize_for_apply(crd)["status"] == {"x": 1}
    assert normalize_for_apply(other) == {
        "apiVersion": "test/v1",
        "kind": "Test",
        "metadata": {"creationTimestamp": None},
    }
    secret = {"apiVersion": "v1", "kind": "Secret", "stringData": {"foo": "bar"}, "data": {"keep": "eA=="}}
    assert normalize_for_apply(secret) == {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"creationTimestamp": None},
        "data": {"keep": "eA==", "foo": "YmFy"},
    }


# --- stringData ---------------------------------------------------------------------------------
def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_string_data_wins_over_data() -> None:
    secret: Obj = {"data": {"a": b64("old"), "b": b64("kept")}, "stringData": {"a": "new", "c": "added"}}
    fold_string_data(secret)
    assert secret == {"data": {"a": b64("new"), "b": b64("kept"), "c": b64("added")}}


def test_a_null_string_data_value_is_empty_as_the_go_conversion_makes_it() -> None:
    # runtime.DefaultUnstructuredConverter sets a null to the zero value: "" (kube/apply.py left
    # such a Secret unfolded before, sending stringData to the server)
    secret: Obj = {"stringData": {"a": None, "b": "x"}}
    fold_string_data(secret)
    assert secret == {"data": {"a": "", "b": b64("x")}}


def test_a_string_data_value_that_is_no_string_leaves_the_secret_alone() -> None:
    # the typed conversion fails ("cannot convert int64 to string"): ssa leaves the object as it is
    secret: Obj = {"data": {"a": b64("1")}, "stringData": {"port": 5432, "b": "x"}}
    fold_string_data(secret)
    assert secret == {"data": {"a": b64("1")}, "stringData": {"port": 5432, "b": "x"}}


def test_an_empty_string_data_is_dropped() -> None:
    secret: Obj = {"data": {"a": b64("1")}, "stringData": {}}
    fold_string_data(secret)
    assert secret == {"data": {"a": b64("1")}}


def test_the_mask_stays_the_mask_when_asked() -> None:
    secret: Obj = {"stringData": {"a": "***", "b": "x"}}
    fold_string_data(secret, keep="***")
    assert secret == {"data": {"a": "***", "b": b64("x")}}
    plain: Obj = {"stringData": {"a": "***"}}
    fold_string_data(plain)
    assert plain == {"data": {"a": b64("***")}}


# --- owner labels, CRDs, stages -----------------------------------------------------------------
def test_owner_labels() -> None:
    labelled = set_owner_labels(configmap(labels={"app": "x"}), "apps", "flux-system")
    assert labelled["metadata"]["labels"] == {
        "app": "x",
        f"{FLUX}/name": "apps",
        f"{FLUX}/namespace": "flux-system",
    }
    assert owned_by(labelled, "apps", "flux-system")
    assert not owned_by(labelled, "apps", "other")
    assert not owned_by(configmap(), "apps", "flux-system")


def test_invalid_ca_bundle_is_removed_and_a_valid_one_kept() -> None:
    import certifi

    def crd(bundle: str) -> Obj:
        return {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {"conversion": {"webhook": {"clientConfig": {"caBundle": bundle}}}},
        }

    valid = crd(base64.b64encode(Path(certifi.where()).read_bytes()).decode())
    not_base64 = crd("not base64!")
    not_pem = crd(b64("no certificate here"))

    assert without_invalid_ca_bundle(valid) is valid
    assert without_invalid_ca_bundle(not_base64)["spec"]["conversion"]["webhook"]["clientConfig"] == {}
    assert without_invalid_ca_bundle(not_pem)["spec"]["conversion"]["webhook"]["clientConfig"] == {}
    assert not_pem["spec"]["conversion"]["webhook"]["clientConfig"]["caBundle"]  # the input is not changed
    other = configmap()
    assert without_invalid_ca_bundle(other) is other


def test_apply_stages() -> None:
    assert apply_stage({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition"}) == 0
    assert apply_stage({"apiVersion": "v1", "kind": "Namespace"}) == 0
    assert apply_stage({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole"}) == 0
    assert apply_stage({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass"}) == 1
    assert apply_stage({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass"}) == 1
    assert apply_stage(configmap()) == 2
    assert apply_stage({"apiVersion": "example.com/v1", "kind": "Namespace"}) == 2  # not the core Namespace


# --- skipping, forcing, pruning -------------------------------------------------------------------
def test_any_in_metadata_ignores_case_and_empty_values() -> None:
    assert any_in_metadata(configmap(labels={f"{FLUX}/ssa": "IGNORE"}), {f"{FLUX}/ssa": "Ignore"})
    assert any_in_metadata(configmap(annotations={f"{FLUX}/ssa": "ignore"}), {f"{FLUX}/ssa": "Ignore"})
    assert not any_in_metadata(configmap(labels={f"{FLUX}/ssa": ""}), {f"{FLUX}/ssa": ""})
    assert not any_in_metadata(configmap(labels={f"{FLUX}/ssa": "Merge"}), {f"{FLUX}/ssa": "Ignore"})
    assert not any_in_metadata(None, {f"{FLUX}/ssa": "Ignore"})


def test_apply_skip_reasons() -> None:
    disabled = configmap(annotations={f"{FLUX}/reconcile": "Disabled"})
    if_not_present = configmap(labels={f"{FLUX}/ssa": "IfNotPresent"})

    assert apply_skip_reason(disabled, None) == "reconcile disabled"
    assert apply_skip_reason(configmap(), disabled) == "reconcile disabled"  # on the live object
    assert apply_skip_reason(configmap(), disabled, existing_is_live=False) is None  # another build
    assert apply_skip_reason(if_not_present, None) is None  # created
    assert apply_skip_reason(if_not_present, configmap()) == "ssa: IfNotPresent"
    assert apply_skip_reason(configmap(), configmap()) is None


def test_force_selector() -> None:
    forced = configmap(annotations={f"{FLUX}/force": "enabled"})
    assert force_enabled(forced, None) and force_enabled(configmap(), forced)
    assert not force_enabled(configmap(), None)


def test_prune_skips_objects_without_the_kustomizations_owner_labels() -> None:
    """ssa Delete with kustomize-controller's Inclusions (its owner labels): an object another
    Kustomization has taken over, or whose labels were removed, is not deleted."""
    ours = set_owner_labels(configmap(), "apps", "flux-system")
    theirs = set_owner_labels(configmap(), "other", "infra")
    kept = set_owner_labels(configmap(annotations={f"{FLUX}/prune": "disabled"}), "apps", "flux-system")

    assert prune_skip_reason(ours, ("apps", "flux-system")) is None
    assert prune_skip_reason(theirs, ("apps", "flux-system")) == "owned by Kustomization infra/other"
    assert prune_skip_reason(configmap(), ("apps", "flux-system")) == "without this Kustomization's owner labels"
    assert prune_skip_reason(kept, ("apps", "flux-system")) == "prune disabled"
    assert prune_skip_reason(configmap(), None) is None  # no owner to check (another build)


@pytest.mark.parametrize(
    ("code", "reason", "message", "immutable"),
    [
        (422, "Invalid", "ConfigMap is invalid", True),
        (409, "Conflict", "conflict", True),
        (400, "BadRequest", "spec.selector: field is immutable", True),
        (500, None, "admission webhook: immutable field changed", True),
        (400, "BadRequest", "something else", False),
    ],
)
def test_immutable_errors(code: int, reason: str | None, message: str, immutable: bool) -> None:
    assert is_immutable_error(code, reason, message) is immutable


# --- equality and drift -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [
        ({"a": 1, "b": [1, "x"]}, {"b": [1, "x"], "a": 1}, True),
        (1, 1.0, False),  # int64 and float64
        (1, True, False),
        (0, False, False),
        (None, {}, False),  # a null is no empty map
        ([], [], True),
        ({"a": {}}, {}, False),  # a key with an empty map is not a missing key
        ([1, 2], [2, 1], False),
        ("1", 1, False),
    ],
)
def test_json_equal_as_go_compares(a: Any, b: Any, equal: bool) -> None:
    assert json_equal(a, b) is equal
    assert json_equal(b, a) is equal


def test_drift_rules() -> None:
    live = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "x", "resourceVersion": "5", "generation": 1, "managedFields": [{"manager": "a"}]},
        "data": {"n": 1},
    }
    same_but_metadata = {
        **live,
        "metadata": {"name": "x", "resourceVersion": "5", "generation": 2, "labels": {}, "managedFields": []},
    }
    created = {**live, "metadata": {"name": "x"}}

    assert not has_drifted(live, same_but_metadata)  # empty labels equal missing ones; other metadata ignored
    assert has_drifted(live, created)
    assert has_drifted(None, same_but_metadata)
    assert has_drifted(live, {**same_but_metadata, "metadata": {**same_but_metadata["metadata"], "labels": {"a": "b"}}})
    assert has_drifted(live, {**same_but_metadata, "data": {"n": 1.0}})  # Go compares int64 and float64 apart
    assert has_drifted(live, {**same_but_metadata, "data": {"n": True}})
    assert not has_drifted({**live, "status": {"a": 1}}, same_but_metadata)  # status is not compared


def test_drift_leaves_out_the_ignored_paths() -> None:
    """ssa hasDriftedWithIgnore: the paths of rules whose target selects the dry-run object are
    removed from both sides before comparing."""
    live = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "resourceVersion": "3"}}
    live["spec"] = {"replicas": 5, "paused": False}
    scaled_back = {**live, "spec": {"replicas": 1, "paused": False}}
    annotated = {
        **scaled_back,
        "metadata": {**live["metadata"], "annotations": {"hpa": "yes"}},
    }
    replicas = IgnoreRule(paths=("/spec/replicas",), kind="Deployment")
    other_kind = IgnoreRule(paths=("/spec/replicas",), kind="StatefulSet")
    annotation = IgnoreRule(paths=("/spec/replicas", "/metadata/annotations/hpa"))

    assert has_drifted(live, scaled_back)
    assert not has_drifted(live, scaled_back, [replicas])
    assert has_drifted(live, scaled_back, [other_kind])
    assert has_drifted(live, {**scaled_back, "spec": {"replicas": 1, "paused": True}}, [replicas])
    assert has_drifted(live, annotated, [replicas])
    assert not has_drifted(live, annotated, [annotation])
    assert not has_drifted(live, scaled_back, [IgnoreRule(paths=("",))])  # the whole object
    assert has_drifted(live, {**scaled_back, "metadata": {"name": "web"}}, [replicas])  # new: always
