"""flux.diff: normalizing, ignore rules, skipping, Secrets, list pairing and the unified text."""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest

from phoebe_cli.errors import UsageError
from phoebe_cli.flux.apply import DEFAULT_STRIP_ATTRS, IgnoreRule, ignore_rules, normalize, skip_reason
from phoebe_cli.flux.diff import (
    CHANGED,
    CREATED,
    DELETED,
    SKIPPED,
    UNCHANGED,
    DiffReport,
    FieldChange,
    KustomizationDiff,
    ObjectDiff,
    ambiguous_keys,
    compare,
)
from phoebe_cli.flux.inventory import ObjectKey
from phoebe_cli.flux.objects import ObjectRef

SECRET_VALUE = "s3cr3t-hunter2-value"
OTHER_VALUE = "an0ther-s3cr3t-value"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def deployment(
    *,
    image: str = "ghcr.io/example/web:1.0.0",
    env: list[dict[str, Any]] | None = None,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    template_labels: dict[str, str] | None = None,
    template_annotations: dict[str, str] | None = None,
    replicas: int = 1,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "web", "namespace": "apps"}
    if labels is not None:
        meta["labels"] = labels
    if annotations is not None:
        meta["annotations"] = annotations
    template_meta: dict[str, Any] = {"labels": {"app": "web", **(template_labels or {})}}
    if template_annotations is not None:
        template_meta["annotations"] = template_annotations
    container: dict[str, Any] = {"name": "app", "image": image}
    if env is not None:
        container["env"] = env
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": template_meta, "spec": {"containers": [container]}},
        },
    }


def secret(
    data: dict[str, str] | None = None,
    string_data: dict[str, str] | None = None,
    *,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    sops: bool = False,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "db", "namespace": "apps"}
    if labels:
        meta["labels"] = labels
    if annotations:
        meta["annotations"] = annotations
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": "Opaque"}
    if data is not None:
        obj["data"] = data
    if string_data is not None:
        obj["stringData"] = string_data
    if sops:
        obj["sops"] = {"age": [{"recipient": "age1xyz", "enc": "-----BEGIN AGE-----"}], "mac": "ENC[mac]"}
    return obj


def configmap(name: str = "web", data: dict[str, Any] | None = None, **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "apps", **meta},
        "data": data if data is not None else {"a": "1"},
    }


# --- every change kind ----------------------------------------------------------------------------
def test_created() -> None:
    diff = compare(None, configmap())
    assert diff.change == CREATED
    assert diff.key == ObjectKey("v1", "ConfigMap", "apps", "web")
    assert diff.fields == ()
    assert diff.unified == (
        "--- /dev/null\n"
        "+++ ConfigMap/apps/web (head)\n"
        "@@ -0,0 +1,7 @@\n"
        "+apiVersion: v1\n"
        "+kind: ConfigMap\n"
        "+metadata:\n"
        "+  name: web\n"
        "+  namespace: apps\n"
        "+data:\n"
        "+  a: '1'\n"
    )


def test_deleted() -> None:
    diff = compare(configmap(), None, sides=("cluster", "checkout"))
    assert diff.change == DELETED
    assert diff.unified.splitlines()[:3] == ["--- ConfigMap/apps/web (cluster)", "+++ /dev/null", "@@ -1,7 +0,0 @@"]


def test_unchanged() -> None:
    assert compare(configmap(), configmap()) == ObjectDiff(ObjectKey("v1", "ConfigMap", "apps", "web"), UNCHANGED)


def test_changed_fields_and_unified_text() -> None:
    diff = compare(deployment(replicas=1), deployment(replicas=3, image="ghcr.io/example/web:1.1.0"))
    assert diff.change == CHANGED
    assert diff.fields == (
        FieldChange("spec.replicas", "changed", 1, 3),
        FieldChange(
            "spec.template.spec.containers[name=app].image",
            "changed",
            "ghcr.io/example/web:1.0.0",
            "ghcr.io/example/web:1.1.0",
        ),
    )
    assert diff.unified == (
        "--- Deployment/apps/web (base)\n"
        "+++ Deployment/apps/web (head)\n"
        "@@ -4,7 +4,7 @@\n"
        "   name: web\n"
        "   namespace: apps\n"
        " spec:\n"
        "-  replicas: 1\n"
        "+  replicas: 3\n"
        "   selector:\n"
        "     matchLabels:\n"
        "       app: web\n"
        "@@ -15,4 +15,4 @@\n"
        "     spec:\n"
        "       containers:\n"
        "       - name: app\n"
        "-        image: ghcr.io/example/web:1.0.0\n"
        "+        image: ghcr.io/example/web:1.1.0\n"
    )
    assert not diff.truncated


def test_added_and_removed_map_keys() -> None:
    diff = compare(configmap(data={"a": "1", "gone": "x"}), configmap(data={"a": "1", "new": "y"}))
    assert diff.fields == (
        FieldChange("data.new", "added", None, "y"),
        FieldChange("data.gone", "removed", "x", None),
    )


def test_keys_that_are_not_words_are_quoted_in_paths() -> None:
    diff = compare(configmap(labels={"app.kubernetes.io/name": "a"}), configmap(labels={"app.kubernetes.io/name": "b"}))
    assert diff.fields == (FieldChange('metadata.labels["app.kubernetes.io/name"]', "changed", "a", "b"),)


def test_types_are_compared_strictly() -> None:
    before, after = configmap(data={"a": "1", "b": True}), configmap(data={"a": 1, "b": "true"})
    assert compare(before, after).fields == (
        FieldChange("data.a", "changed", "1", 1),
        FieldChange("data.b", "changed", True, "true"),
    )


def test_compare_needs_one_side() -> None:
    with pytest.raises(ValueError, match="at least one side"):
        compare(None, None)


# --- noise ----------------------------------------------------------------------------------------
def test_server_noise_is_ignored() -> None:
    live = configmap()
    live["metadata"].update(
        {
            "uid": "0b1c",
            "resourceVersion": "4711",
            "generation": 3,
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "selfLink": "/api/v1/namespaces/apps/configmaps/web",
            "managedFields": [{"manager": "kustomize-controller", "operation": "Apply"}],
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": '{"data":{"a":"0"}}'},
            "labels": {},
        }
    )
    live["status"] = {"phase": "whatever"}
    assert compare(live, configmap()).change == UNCHANGED
    assert normalize(live) == configmap()


def test_deletion_metadata_is_noise() -> None:
    live = configmap(deletionTimestamp="2026-01-01T00:00:00Z", deletionGracePeriodSeconds=30)
    assert normalize(live) == configmap()


def test_normalize_leaves_its_input_alone() -> None:
    live = configmap(uid="x", labels={"helm.sh/chart": "web-1.0.0"})
    kept = copy.deepcopy(live)
    normalize(live)
    assert live == kept


def test_key_order_is_not_a_change_and_the_text_follows_the_head_order() -> None:
    before = {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "data": {"b": "2", "a": "0"},
        "metadata": {"namespace": "apps", "name": "web"},
    }
    after = configmap(data={"a": "1", "b": "2"})
    assert compare(before, configmap(data={"a": "0", "b": "2"})).change == UNCHANGED
    diff = compare(before, after)
    assert diff.unified == (
        "--- ConfigMap/apps/web (base)\n"
        "+++ ConfigMap/apps/web (head)\n"
        "@@ -4,5 +4,5 @@\n"
        "   name: web\n"
        "   namespace: apps\n"
        " data:\n"
        "-  a: '0'\n"
        "+  a: '1'\n"
        "   b: '2'\n"
    )


def test_multi_line_strings_diff_line_by_line() -> None:
    before = configmap(data={"config.yaml": "log: info\nport: 80\nworkers: 2\n"})
    after = configmap(data={"config.yaml": "log: debug\nport: 80\nworkers: 2\n"})
    diff = compare(before, after)
    assert diff.unified == (
        "--- ConfigMap/apps/web (base)\n"
        "+++ ConfigMap/apps/web (head)\n"
        "@@ -5,6 +5,6 @@\n"
        "   namespace: apps\n"
        " data:\n"
        "   config.yaml: |\n"
        "-    log: info\n"
        "+    log: debug\n"
        "     port: 80\n"
        "     workers: 2\n"
    )
    assert diff.fields == (
        FieldChange(
            'data["config.yaml"]', "changed", "log: info\nport: 80\nworkers: 2\n", "log: debug\nport: 80\nworkers: 2\n"
        ),
    )


def test_long_lines_are_not_folded() -> None:
    long = "x" * 300 + " " + "y" * 300
    diff = compare(configmap(data={"a": "1"}), configmap(data={"a": long}))
    assert f"+  a: {long}\n" in diff.unified


# --- strip attrs ----------------------------------------------------------------------------------
def test_default_strip_attrs() -> None:
    assert DEFAULT_STRIP_ATTRS == ("helm.sh/chart", "checksum/*", "app.kubernetes.io/version", "chart")


def test_strip_attrs_on_the_object_and_its_pod_template() -> None:
    before = deployment(
        labels={"helm.sh/chart": "web-1.0.0", "app.kubernetes.io/version": "1.0.0", "team": "a"},
        template_labels={"helm.sh/chart": "web-1.0.0", "chart": "web-1.0.0"},
        template_annotations={"checksum/config": "aaa", "checksum/secret": "bbb"},
    )
    after = deployment(
        labels={"helm.sh/chart": "web-1.1.0", "app.kubernetes.io/version": "1.1.0", "team": "a"},
        template_labels={"helm.sh/chart": "web-1.1.0", "chart": "web-1.1.0"},
        template_annotations={"checksum/config": "ccc", "checksum/secret": "ddd"},
    )
    assert compare(before, after).change == UNCHANGED
    normalized = normalize(after)
    assert normalized["metadata"]["labels"] == {"team": "a"}
    assert normalized["spec"]["template"]["metadata"] == {"labels": {"app": "web"}}  # empty annotations dropped


def test_strip_attrs_on_cronjob_templates() -> None:
    cronjob = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "backup", "namespace": "apps"},
        "spec": {
            "jobTemplate": {
                "metadata": {"labels": {"helm.sh/chart": "b-1"}},
                "spec": {"template": {"metadata": {"annotations": {"checksum/config": "x"}}, "spec": {}}},
            }
        },
    }
    assert normalize(cronjob)["spec"]["jobTemplate"] == {
        "metadata": {},
        "spec": {"template": {"metadata": {}, "spec": {}}},
    }


def test_strip_attrs_can_be_replaced() -> None:
    before, after = deployment(labels={"helm.sh/chart": "a"}), deployment(labels={"helm.sh/chart": "b"})
    diff = compare(before, after, strip_attrs=())
    assert diff.fields == (FieldChange('metadata.labels["helm.sh/chart"]', "changed", "a", "b"),)
    assert compare(before, after, strip_attrs=("helm.sh/*",)).change == UNCHANGED


# --- ignore rules ---------------------------------------------------------------------------------
def test_ignore_rules_parse_spec_ignore() -> None:
    spec = {
        "ignore": [
            {"paths": ["/spec/replicas"]},
            {
                "paths": ["/metadata/annotations/example.com~1owner"],
                "target": {"kind": "Deployment", "name": "web.*", "labelSelector": "tier=frontend"},
            },
        ]
    }
    assert ignore_rules(spec) == [
        IgnoreRule(paths=("/spec/replicas",)),
        IgnoreRule(
            paths=("/metadata/annotations/example.com~1owner",),
            kind="Deployment",
            name="web.*",
            label_selector="tier=frontend",
        ),
    ]
    assert ignore_rules({}) == []


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"ignore": [{"paths": ["spec/replicas"]}]}, "spec.ignore[0].paths: 'spec/replicas' is not a JSON Pointer"),
        ({"ignore": [{"paths": ["/a"], "target": {"kind": "("}}]}, "spec.ignore[0].target.kind: invalid regular"),
        ({"ignore": [{"paths": ["/a"], "target": {"labelSelector": "a=(b"}}]}, "spec.ignore[0].target: invalid label"),
        ({"ignore": [{"paths": "/a"}]}, "spec.ignore[0].paths: not a list"),
    ],
)
def test_ignore_rules_flux_would_refuse(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace("[", r"\[")):
        ignore_rules(spec)


def test_ignore_rule_without_target_applies_to_every_object() -> None:
    rules = ignore_rules({"ignore": [{"paths": ["/spec/replicas", "/data/a"]}]})
    assert compare(deployment(replicas=1), deployment(replicas=5), ignore=rules).change == UNCHANGED
    assert compare(configmap(data={"a": "1"}), configmap(data={"a": "2"}), ignore=rules).change == UNCHANGED


def test_ignore_rule_with_a_target_applies_to_matching_objects_only() -> None:
    rules = ignore_rules(
        {
            "ignore": [
                {"paths": ["/spec/replicas"], "target": {"kind": "Deploy", "group": "apps"}},
                {"paths": ["/spec/replicas"], "target": {"kind": "Deploy.*", "namespace": "other"}},
                {"paths": ["/spec/replicas"], "target": {"kind": "Deployment", "labelSelector": "team=b"}},
            ]
        }
    )
    # "Deploy" must match the whole kind; the other rules want another namespace or label.
    diff = compare(
        deployment(replicas=1, labels={"team": "a"}), deployment(replicas=2, labels={"team": "a"}), ignore=rules
    )
    assert diff.fields == (FieldChange("spec.replicas", "changed", 1, 2),)
    matching = ignore_rules(
        {
            "ignore": [
                {
                    "paths": ["/spec/replicas"],
                    "target": {
                        "kind": "Deploy.*",
                        "group": "apps",
                        "version": "v1",
                        "name": "web",
                        "namespace": "apps|db",
                        "labelSelector": "team in (a,b)",
                        "annotationSelector": "!skip",
                    },
                }
            ]
        }
    )
    assert (
        compare(
            deployment(replicas=1, labels={"team": "a"}), deployment(replicas=2, labels={"team": "a"}), ignore=matching
        ).change
        == UNCHANGED
    )


def test_ignore_rule_selectors_match_the_desired_object() -> None:
    # ssa evaluates the target against the dry-run (desired) object and strips both sides alike.
    rules = ignore_rules({"ignore": [{"paths": ["/spec/replicas"], "target": {"labelSelector": "scaled=hpa"}}]})
    before = deployment(replicas=1)
    after = deployment(replicas=4, labels={"scaled": "hpa"})
    assert compare(before, after, ignore=rules).fields == (
        FieldChange("metadata.labels", "added", None, {"scaled": "hpa"}),
    )


def test_ignore_paths_unescape_tilde_and_slash() -> None:
    rules = [IgnoreRule(paths=("/metadata/annotations/example.com~1owner", "/data/a~0b"))]
    before = configmap(data={"a~b": "1", "c": "1"}, annotations={"example.com/owner": "x", "keep": "1"})
    after = configmap(data={"a~b": "2", "c": "1"}, annotations={"example.com/owner": "y", "keep": "1"})
    assert compare(before, after, ignore=rules).change == UNCHANGED
    assert normalize(after, ignore=rules) == configmap(data={"c": "1"}, annotations={"keep": "1"})


def test_ignore_paths_into_lists_and_missing_paths() -> None:
    rules = [
        IgnoreRule(
            paths=(
                "/spec/template/spec/containers/0/image",
                "/spec/nothing/here",
                "/spec/selector/x/y",
                "/spec/template/spec/containers/7",
            )
        )
    ]
    assert compare(deployment(image="a"), deployment(image="b"), ignore=rules).change == UNCHANGED
    negative = [IgnoreRule(paths=("/spec/template/spec/containers/-1/image",))]
    assert compare(deployment(image="a"), deployment(image="b"), ignore=negative).change == UNCHANGED


def test_ignoring_the_root_ignores_the_object() -> None:
    rules = [IgnoreRule(paths=("",), kind="ConfigMap")]
    assert compare(configmap(data={"a": "1"}), configmap(data={"a": "2"}), ignore=rules).change == UNCHANGED


# --- Secrets --------------------------------------------------------------------------------------
def every_text(diff: ObjectDiff) -> str:
    return repr(diff) + diff.unified + "".join(repr(f) for f in diff.fields)


def test_secret_values_never_appear_and_key_changes_are_reported() -> None:
    before = secret({"password": b64(SECRET_VALUE), "user": b64("admin"), "old": b64(OTHER_VALUE)})
    after = secret(
        {"password": b64(OTHER_VALUE), "user": b64("admin"), "new": b64(SECRET_VALUE)}, labels={"tier": "db"}
    )
    diff = compare(before, after)
    assert diff.change == CHANGED
    assert dict(diff.secret_keys) == {"new": "added", "old": "removed", "password": "changed", "user": "unchanged"}
    assert diff.fields == (
        FieldChange("metadata.labels", "added", None, {"tier": "db"}),
        FieldChange("data.new", "added", None, "***"),
        FieldChange("data.old", "removed", "***", None),
        FieldChange("data.password", "changed", "***", "***"),
    )
    assert diff.unified == (
        "--- Secret/apps/db (base)\n"
        "+++ Secret/apps/db (head)\n"
        "@@ -3,4 +3,6 @@\n"
        " metadata:\n"
        "   name: db\n"
        "   namespace: apps\n"
        "+  labels:\n"
        "+    tier: db\n"
        " type: Opaque\n"
    )
    text = every_text(diff)
    for value in (SECRET_VALUE, OTHER_VALUE, b64(SECRET_VALUE), b64(OTHER_VALUE), "admin", b64("admin")):
        assert value not in text


def test_secret_with_only_a_value_changed_has_no_unified_text() -> None:
    diff = compare(secret({"password": b64(SECRET_VALUE)}), secret({"password": b64(OTHER_VALUE)}))
    assert (diff.change, diff.unified, diff.fields) == (
        CHANGED,
        "",
        (FieldChange("data.password", "changed", "***", "***"),),
    )


def test_created_and_deleted_secrets_list_keys_without_values() -> None:
    created = compare(None, secret(string_data={"password": SECRET_VALUE}))
    assert created.change == CREATED
    assert dict(created.secret_keys) == {"password": "added"}
    assert SECRET_VALUE not in every_text(created) and b64(SECRET_VALUE) not in every_text(created)
    assert created.unified.splitlines()[-2:] == ["+  namespace: apps", "+type: Opaque"]  # no data
    deleted = compare(secret({"password": b64(SECRET_VALUE)}), None)
    assert dict(deleted.secret_keys) == {"password": "removed"}
    assert b64(SECRET_VALUE) not in every_text(deleted)


def test_last_applied_configuration_of_a_secret_never_leaks() -> None:
    live = secret(
        {"password": b64(SECRET_VALUE)},
        annotations={
            "kubectl.kubernetes.io/last-applied-configuration": f'{{"data":{{"password":"{b64(SECRET_VALUE)}"}}}}'
        },
    )
    diff = compare(live, secret({"password": b64(OTHER_VALUE)}, labels={"a": "b"}))
    assert b64(SECRET_VALUE) not in every_text(diff)


def test_string_data_is_data_as_the_api_server_makes_it() -> None:
    assert (
        compare(secret({"password": b64(SECRET_VALUE)}), secret(string_data={"password": SECRET_VALUE})).change
        == UNCHANGED
    )
    # stringData wins over data for the same key
    mixed = secret({"password": b64("old")}, {"password": SECRET_VALUE})
    assert compare(secret({"password": b64(SECRET_VALUE)}), mixed).change == UNCHANGED
    diff = compare(secret({"password": b64(SECRET_VALUE)}), secret(string_data={"password": OTHER_VALUE}))
    assert dict(diff.secret_keys) == {"password": "changed"}
    assert OTHER_VALUE not in every_text(diff)


def test_sops_secrets_compare_by_key_set() -> None:
    before = secret({"password": "ENC[AES256_GCM,data:aaaa,iv:1,tag:2,type:str]"}, sops=True)
    after = secret({"password": "ENC[AES256_GCM,data:bbbb,iv:3,tag:4,type:str]"}, sops=True)
    after["sops"]["mac"] = "ENC[other mac]"
    assert compare(before, after).change == UNCHANGED  # re-encrypted: values and sops metadata say nothing
    added = secret({"password": "ENC[x]", "token": "ENC[y]"}, sops=True)
    diff = compare(before, added)
    assert diff.change == CHANGED
    assert dict(diff.secret_keys) == {"password": "unknown", "token": "added"}
    assert diff.fields == (FieldChange("data.token", "added", None, "***"),)
    assert "ENC[" not in every_text(diff) and "sops" not in diff.unified


def test_a_sops_secret_on_one_side_is_compared_by_key_set() -> None:
    # The repo model's masked copy of an encrypted Secret, against the decrypted live Secret.
    masked = secret(string_data={"password": "***"}, annotations={"phoebe.dev/sops": "encrypted"})
    live = secret({"password": b64(SECRET_VALUE)})
    assert compare(live, masked, sides=("cluster", "checkout")).change == UNCHANGED
    diff = compare(
        live, secret(string_data={"password": "***", "extra": "***"}, annotations={"phoebe.dev/sops": "encrypted"})
    )
    assert dict(diff.secret_keys) == {"extra": "added", "password": "unknown"}
    assert "phoebe.dev/sops" not in diff.unified  # phoebe's own marker is not a change


def test_masked_values_are_unknown_not_unchanged() -> None:
    diff = compare(secret({"a": "***", "b": "***"}), secret({"a": "***", "c": "***"}))
    assert dict(diff.secret_keys) == {"a": "unknown", "b": "removed", "c": "added"}


def test_other_fields_of_a_secret_diff_normally() -> None:
    before, after = secret({"a": b64("1")}), secret({"a": b64("1")})
    after["type"] = "kubernetes.io/tls"
    diff = compare(before, after)
    assert diff.fields == (FieldChange("type", "changed", "Opaque", "kubernetes.io/tls"),)
    assert dict(diff.secret_keys) == {"a": "unchanged"}


def test_data_keys_that_are_not_words_are_quoted() -> None:
    diff = compare(secret({"tls.crt": b64("a")}), secret({"tls.crt": b64("b")}))
    assert diff.fields == (FieldChange('data["tls.crt"]', "changed", "***", "***"),)


# --- lists ----------------------------------------------------------------------------------------
def test_named_list_insertion_is_one_added_item() -> None:
    env = [{"name": "A", "value": "1"}, {"name": "C", "value": "3"}, {"name": "D", "value": "4"}]
    inserted = [env[0], {"name": "B", "value": "2"}, *env[1:]]
    diff = compare(deployment(env=env), deployment(env=inserted))
    assert diff.fields == (
        FieldChange("spec.template.spec.containers[name=app].env[name=B]", "added", None, {"name": "B", "value": "2"}),
    )
    assert diff.unified.splitlines()[2:] == [
        "@@ -19,6 +19,8 @@",
        "         env:",
        "         - name: A",
        "           value: '1'",
        "+        - name: B",
        "+          value: '2'",
        "         - name: C",
        "           value: '3'",
        "         - name: D",
    ]


def test_named_list_removal_and_change() -> None:
    before = deployment(env=[{"name": "A", "value": "1"}, {"name": "B", "value": "2"}])
    after = deployment(env=[{"name": "B", "value": "3"}])
    assert compare(before, after).fields == (
        FieldChange("spec.template.spec.containers[name=app].env[name=B].value", "changed", "2", "3"),
        FieldChange(
            "spec.template.spec.containers[name=app].env[name=A]", "removed", {"name": "A", "value": "1"}, None
        ),
    )


def test_named_list_reordering_is_one_change() -> None:
    before = deployment(env=[{"name": "A", "value": "1"}, {"name": "B", "value": "2"}])
    after = deployment(env=[{"name": "B", "value": "2"}, {"name": "A", "value": "1"}])
    assert compare(before, after).fields == (
        FieldChange("spec.template.spec.containers[name=app].env", "changed", ["A", "B"], ["B", "A"]),
    )


def test_lists_without_unique_names_pair_by_index() -> None:
    before = configmap(data=None)
    before["spec"] = {"args": ["--a", "--b"], "rules": [{"name": "x", "v": 1}, {"name": "x", "v": 2}]}
    after = copy.deepcopy(before)
    after["spec"] = {"args": ["--z", "--a", "--b"], "rules": [{"name": "x", "v": 1}, {"name": "x", "v": 3}]}
    assert compare(before, after).fields == (
        FieldChange("spec.args[0]", "changed", "--a", "--z"),
        FieldChange("spec.args[1]", "changed", "--b", "--a"),
        FieldChange("spec.args[2]", "added", None, "--b"),
        FieldChange("spec.rules[1].v", "changed", 2, 3),
    )


# --- skipping -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("meta", "reason"),
    [
        ({"annotations": {"kustomize.toolkit.fluxcd.io/reconcile": "disabled"}}, "reconcile disabled"),
        ({"labels": {"kustomize.toolkit.fluxcd.io/reconcile": "Disabled"}}, "reconcile disabled"),
        ({"annotations": {"kustomize.toolkit.fluxcd.io/ssa": "ignore"}}, "ssa: Ignore"),
        ({"labels": {"kustomize.toolkit.fluxcd.io/ssa": "IfNotPresent"}}, "ssa: IfNotPresent"),
        ({"annotations": {"kustomize.toolkit.fluxcd.io/ssa": "Merge"}}, None),
        ({"annotations": {"kustomize.toolkit.fluxcd.io/reconcile": "enabled"}}, None),
        ({"labels": {"kustomize.toolkit.fluxcd.io/reconcile": ""}}, None),
        ({"annotations": {"kustomize.toolkit.fluxcd.io/prune": "disabled"}}, None),
    ],
)
def test_skip_reason(meta: dict[str, Any], reason: str | None) -> None:
    assert skip_reason(configmap(**meta)) == reason


def test_skip_reason_when_deleting() -> None:
    assert (
        skip_reason(configmap(annotations={"kustomize.toolkit.fluxcd.io/prune": "Disabled"}), deleting=True)
        == "prune disabled"
    )
    assert skip_reason(configmap(labels={"kustomize.toolkit.fluxcd.io/ssa": "Ignore"}), deleting=True) == "ssa: Ignore"
    assert skip_reason(configmap(labels={"kustomize.toolkit.fluxcd.io/ssa": "IfNotPresent"}), deleting=True) is None


def test_excluded_objects_are_skipped_unless_equal() -> None:
    disabled = {"annotations": {"kustomize.toolkit.fluxcd.io/reconcile": "disabled"}}
    diff = compare(configmap(data={"a": "1"}, **disabled), configmap(data={"a": "2"}, **disabled))
    assert diff == ObjectDiff(ObjectKey("v1", "ConfigMap", "apps", "web"), SKIPPED, reason="reconcile disabled")
    assert compare(configmap(**disabled), configmap(**disabled)).change == UNCHANGED
    assert compare(None, configmap(**disabled)).change == SKIPPED


def test_if_not_present_is_created_when_absent_and_skipped_otherwise() -> None:
    meta = {"annotations": {"kustomize.toolkit.fluxcd.io/ssa": "IfNotPresent"}}
    assert compare(None, configmap(**meta)).change == CREATED
    skipped = compare(configmap(data={"a": "0"}), configmap(**meta))
    assert (skipped.change, skipped.reason) == (SKIPPED, "ssa: IfNotPresent")


def test_exclusion_on_the_live_object_counts_in_cluster_mode_only() -> None:
    live = configmap(data={"a": "0"}, annotations={"kustomize.toolkit.fluxcd.io/reconcile": "disabled"})
    in_cluster = compare(live, configmap(), before_is_live=True)
    assert (in_cluster.change, in_cluster.reason) == (SKIPPED, "reconcile disabled")
    # Between refs the base is not the live object: removing the annotation is a change Flux applies.
    assert compare(live, configmap()).change == CHANGED


def test_pruning_skips() -> None:
    kept = compare(configmap(annotations={"kustomize.toolkit.fluxcd.io/prune": "disabled"}), None)
    assert (kept.change, kept.reason) == (SKIPPED, "prune disabled")
    no_prune = compare(configmap(), None, prune=False)
    assert (no_prune.change, no_prune.reason) == (SKIPPED, "prune disabled on the Kustomization")


# --- truncation -----------------------------------------------------------------------------------
def test_limit_bytes_cuts_whole_lines_and_says_how_much_is_left() -> None:
    full = compare(deployment(replicas=1), deployment(replicas=3, image="ghcr.io/example/web:1.1.0"))
    cut = compare(deployment(replicas=1), deployment(replicas=3, image="ghcr.io/example/web:1.1.0"), limit_bytes=100)
    assert cut.truncated and not full.truncated
    kept = "--- Deployment/apps/web (base)\n+++ Deployment/apps/web (head)\n@@ -4,7 +4,7 @@\n   name: web\n"
    assert len(kept.encode()) <= 100
    assert cut.unified == kept + f"... truncated ({len(full.unified.encode()) - len(kept.encode())} more bytes)\n"
    assert cut.fields == full.fields
    same = compare(deployment(replicas=1), deployment(replicas=3), limit_bytes=10_000)
    assert not same.truncated


def test_limit_bytes_shorter_than_a_line() -> None:
    diff = compare(None, configmap(), limit_bytes=5)
    assert diff.unified == f"--- /\n... truncated ({len(compare(None, configmap()).unified.encode()) - 5} more bytes)\n"
    assert diff.truncated


# --- determinism and the report -------------------------------------------------------------------
def test_comparing_is_deterministic() -> None:
    before = deployment(env=[{"name": "A", "value": "1"}], labels={"b": "1", "a": "1"})
    after = deployment(env=[{"name": "B", "value": "2"}, {"name": "A", "value": "2"}], labels={"a": "2", "c": "1"})
    first = compare(before, after)
    assert all(compare(copy.deepcopy(before), copy.deepcopy(after)) == first for _ in range(5))
    assert [f.path for f in first.fields] == [
        "metadata.labels.a",
        "metadata.labels.c",
        "metadata.labels.b",
        "spec.template.spec.containers[name=app].env[name=B]",
        "spec.template.spec.containers[name=app].env[name=A].value",
    ]


def test_report_counts_and_differs() -> None:
    key = ObjectKey("v1", "ConfigMap", "apps", "web")
    ref = ObjectRef("Kustomization", "flux-system", "apps")
    skipped_only = KustomizationDiff(ref, (ObjectDiff(key, SKIPPED, reason="ssa: Ignore"),), 3)
    assert not skipped_only.differs
    assert skipped_only.counts == {"created": 0, "changed": 0, "deleted": 0, "skipped": 1, "unchanged": 3}
    one_sided = KustomizationDiff(ref, (), 0, ("could not build",), "head-only")
    assert one_sided.differs
    changed = KustomizationDiff(ref, (ObjectDiff(key, CHANGED), ObjectDiff(key, CREATED)), 2)
    report = DiffReport("refs", "main", "HEAD", (skipped_only, changed))
    assert report.differs
    assert report.counts == {"created": 1, "changed": 1, "deleted": 0, "skipped": 1, "unchanged": 5}
    assert not DiffReport("cluster", "cluster", "checkout", (skipped_only,)).differs


# --- one object key: group, kind, namespace, name -------------------------------------------------
def gateway(api_version: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": "Gateway",
        "metadata": {"name": "main", "namespace": "net"},
        "spec": spec,
    }


GATEWAY_API_V1 = "gateway.networking.k8s.io/v1"
ISTIO_V1 = "networking.istio.io/v1"


def test_ambiguous_keys_are_those_sharing_a_name_across_groups() -> None:
    gateway_api = ObjectKey(GATEWAY_API_V1, "Gateway", "net", "main")
    istio = ObjectKey(ISTIO_V1, "Gateway", "net", "main")
    other = ObjectKey(ISTIO_V1, "Gateway", "net", "edge")
    same_group_other_version = ObjectKey("networking.istio.io/v1beta1", "Gateway", "net", "main")
    assert ambiguous_keys([gateway_api, istio, other]) == {gateway_api, istio}
    assert ambiguous_keys([istio, same_group_other_version, other]) == frozenset()  # one object, two versions


def test_a_qualified_object_is_named_with_its_group() -> None:
    before, after = gateway(ISTIO_V1, selector={"istio": "a"}), gateway(ISTIO_V1, selector={"istio": "b"})
    qualify = ambiguous_keys([ObjectKey.of(before), ObjectKey(GATEWAY_API_V1, "Gateway", "net", "main")])

    plain = compare(before, after)
    qualified = compare(before, after, qualify=qualify)

    assert (plain.subject, qualified.subject) == ("Gateway/net/main", "Gateway.networking.istio.io/net/main")
    assert qualified.unified.splitlines()[:2] == [
        "--- Gateway.networking.istio.io/net/main (base)",
        "+++ Gateway.networking.istio.io/net/main (head)",
    ]
    assert qualified.fields == plain.fields


def test_builds_pair_objects_by_group_kind_namespace_and_name() -> None:
    """Two Gateways of one name, the Gateway API's and Istio's, in one Kustomization: Istio's
    changes; both are compared, neither replaces the other."""
    from phoebe_cli.repo.model import DeclaredKustomization, Origin
    from phoebe_cli.usecases.diff import DiffOptions, compare_builds

    ref = ObjectRef("Kustomization", "net", "gateways")
    spec = {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization", "spec": {"prune": True}}

    def built(*objects: dict[str, Any]) -> DeclaredKustomization:
        return DeclaredKustomization(ref, spec, Origin(None, None, None), objects=list(objects))

    gateway_api = gateway(GATEWAY_API_V1, gatewayClassName="cilium")
    base = built(gateway_api, gateway(ISTIO_V1, selector={"istio": "ingressgateway"}))
    head = built(gateway(ISTIO_V1, selector={"istio": "internal"}), copy.deepcopy(gateway_api))

    result = compare_builds(ref, base, head, ("base", "head"), DiffOptions())

    assert result.unchanged == 1
    [changed] = result.objects
    assert (changed.change, changed.key.api_version, changed.subject) == (
        CHANGED,
        ISTIO_V1,
        "Gateway.networking.istio.io/net/main",
    )
    assert changed.fields == (FieldChange("spec.selector.istio", "changed", "ingressgateway", "internal"),)

    # a new one of the other group is created, not a change of the first
    added = compare_builds(ref, built(gateway_api), built(gateway_api, gateway(ISTIO_V1)), ("b", "h"), DiffOptions())
    assert [(o.change, o.key.group) for o in added.objects] == [(CREATED, "networking.istio.io")]
    assert added.unchanged == 1
    # and one version for another of the same group is the same object
    moved = compare_builds(
        ref,
        built(gateway("networking.istio.io/v1beta1", selector={"istio": "a"})),
        built(gateway(ISTIO_V1, selector={"istio": "a"})),
        ("b", "h"),
        DiffOptions(),
    )
    assert [(o.change, [f.path for f in o.fields]) for o in moved.objects] == [(CHANGED, ["apiVersion"])]


def test_a_live_object_another_kustomization_owns_is_not_pruned() -> None:
    """ssa deletes only objects with the Kustomization's owner labels (kustomize-controller's
    DeleteOptions.Inclusions): an object another Kustomization has taken over stays."""
    owner = ("apps", "flux-system")
    ours = configmap(
        labels={"kustomize.toolkit.fluxcd.io/name": "apps", "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}
    )
    theirs = configmap(
        labels={"kustomize.toolkit.fluxcd.io/name": "web", "kustomize.toolkit.fluxcd.io/namespace": "apps"}
    )

    assert compare(ours, None, before_is_live=True, owner=owner).change == DELETED
    taken = compare(theirs, None, before_is_live=True, owner=owner)
    assert (taken.change, taken.reason) == (SKIPPED, "owned by Kustomization apps/web")
    unlabelled = compare(configmap(), None, before_is_live=True, owner=owner)
    assert (unlabelled.change, unlabelled.reason) == (SKIPPED, "without this Kustomization's owner labels")
    # between refs the base is a build, not the live object: no owner labels to read
    assert compare(configmap(), None, owner=owner).change == DELETED
