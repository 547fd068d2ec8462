"""`phoebe sync` against the real API server, with the controller stand-in answering."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CliResult, Cluster, PhoebeRunner
from tests.support import manifests
from tests.support.standin import FluxStandIn, Outcome

pytestmark = pytest.mark.cluster

KS = ("kustomize.toolkit.fluxcd.io/v1", "Kustomization")
HR = ("helm.toolkit.fluxcd.io/v2", "HelmRelease")
GIT = ("source.toolkit.fluxcd.io/v1", "GitRepository")
REQUESTED = "reconcile.fluxcd.io/requestedAt"


def doc(result: CliResult) -> dict[str, Any]:
    return json.loads(result.stdout)


def results(result: CliResult) -> dict[str, str]:
    return {f"{i['kind']}/{i['namespace']}/{i['name']}": i["result"] for i in doc(result)["items"]}


def create_all(cluster: Cluster, *objects: dict[str, Any]) -> list[dict[str, Any]]:
    return [cluster.api.create(obj) for obj in objects]


def test_only_the_reconcile_annotation_changes(phoebe: PhoebeRunner, cluster: Cluster, namespace: str) -> None:
    api = cluster.api
    original = api.create(manifests.kustomization("web", namespace, labels={"team": "a"}, annotations={"keep": "me"}))
    # another manager owns a field too
    api.merge_patch(original, {"metadata": {"labels": {"extra": "x"}}}, manager="kubectl-edit")
    before = api.get(*KS, namespace, "web")

    result = phoebe("sync", "ks", "web", "-n", namespace, "--no-wait", "-o", "json", kubeconfig=cluster.kubeconfig)

    assert result.code == 0, result.stderr
    after = api.get(*KS, namespace, "web")
    token = doc(result)["token"]
    assert after["metadata"]["annotations"] == {"keep": "me", REQUESTED: token}
    assert after["spec"] == before["spec"]
    assert after["metadata"]["labels"] == before["metadata"]["labels"]
    managers_before = {(m["manager"], m["operation"]): m["fieldsV1"] for m in before["metadata"]["managedFields"]}
    managers_after = {(m["manager"], m["operation"]): m["fieldsV1"] for m in after["metadata"]["managedFields"]}
    new = managers_after.pop(("flux-client-side-apply", "Update"))
    assert managers_after == managers_before
    assert new == {"f:metadata": {"f:annotations": {f"f:{REQUESTED}": {}}}}


def test_one_token_for_all_and_force_reset_equal_it(phoebe: PhoebeRunner, cluster: Cluster, namespace: str) -> None:
    create_all(cluster, *(manifests.helm_release(f"app{i}", namespace) for i in range(3)))

    result = phoebe(
        "sync", "hr", "-n", namespace, "--force", "--reset", "--no-wait", "-o", "json", kubeconfig=cluster.kubeconfig
    )

    assert result.code == 0, result.stderr
    token = doc(result)["token"]
    assert len(token) == len("2026-11-26T16:41:00.118456499Z") and token.endswith("Z")
    for i in range(3):
        annotations = cluster.api.get(*HR, namespace, f"app{i}")["metadata"]["annotations"]
        assert annotations == {
            REQUESTED: token,
            "reconcile.fluxcd.io/forceAt": token,
            "reconcile.fluxcd.io/resetAt": token,
        }


def test_force_needs_helm_releases(phoebe: PhoebeRunner, cluster: Cluster, namespace: str) -> None:
    result = phoebe("sync", "ks", "-n", namespace, "--force", kubeconfig=cluster.kubeconfig)
    assert (result.code, result.stderr) == (2, "phoebe: error: --force and --reset apply to HelmReleases (kind hr)\n")


def test_waits_for_success_and_reports_failures(phoebe: PhoebeRunner, cluster: Cluster, namespace: str) -> None:
    create_all(cluster, *(manifests.kustomization(n, namespace) for n in ("ok", "broken", "retrying")))
    with FluxStandIn(cluster.api, namespaces={namespace}) as standin:
        standin.expect("Kustomization", namespace, "ok", Outcome.succeed(revision="main@sha1:" + "a" * 40, delay=0.3))
        standin.expect(
            "Kustomization",
            namespace,
            "broken",
            Outcome.fail("ArtifactFailed", "kustomization path not found: ./nope", retrying=False),
        )
        standin.expect(
            "Kustomization",
            namespace,
            "retrying",
            Outcome.fail("ReconciliationFailed", "Service/x dry-run failed: invalid port"),
        )

        result = phoebe("sync", "ks", "-n", namespace, kubeconfig=cluster.kubeconfig)

    assert result.code == 1
    lines = sorted(result.lines[:-1])
    assert lines[0].startswith(f"✓ Kustomization/{namespace}/ok  done  main@sha1:aaaaaaaa  (")
    assert (
        lines[1]
        == f"✗ Kustomization/{namespace}/broken  failed  ArtifactFailed: kustomization path not found: ./nope"
        + lines[1][lines[1].index("  (") :]
    )
    assert lines[2].startswith(
        f"✗ Kustomization/{namespace}/retrying  failed  ReconciliationFailed: Service/x dry-run failed: invalid port"
    )
    assert result.lines[-1].startswith("✗ 3 Kustomizations: 1 done, 2 failed in ")


def test_json_document(phoebe: PhoebeRunner, cluster: Cluster, namespace: str) -> None:
    create_all(
        cluster, manifests.kustomization("ok", namespace), manifests.kustomization("off", namespace, suspend=True)
    )
    with FluxStandIn(cluster.api, namespaces={namespace}, default=Outcome.succeed(revision="main@sha1:" + "c" * 40)):
        result = phoebe("sync", "ks", "-n", namespace, "-o", "json", kubeconfig=cluster.kubeconfig)

    assert result.code == 0, result.stderr
    document = doc(result)
    assert document["kind"] == "SyncResult"
    assert document["summary"] == {"done": 1, "skipped": 1}
    off, ok = document["items"][0], document["items"][1]  # sorted by name
    assert (off["name"], off["result"], off["reason"], off["patched"]) == ("off", "skipped", "Suspended", False)
    assert (ok["name"], ok["result"], ok["revision"], ok["patched"], ok["phase"]) == (
        "ok",
        "done",
        "main@sha1:" + "c" * 40,
        True,
        "target",
    )
    assert ok["message"] == "Applied revision: main@sha1:" + "c" * 40
    assert set(ok) == {
        "kind",
        "namespace",
        "name",
        "phase",
        "result",
        "reason",
        "message",
        "revision",
        "patched",
        "maybePatched",
        "seconds",
    }
    assert "annotations" not in cluster.api.get(*KS, namespace, "off")["metadata"]


def test_selection_by_label_and_failed(phoebe: PhoebeRunner, cluster: Cluster, namespace: str) -> None:
    api = cluster.api
    _a, b, c = create_all(
        cluster,
        manifests.kustomization("a", namespace, labels={"tier": "db"}),
        manifests.kustomization("b", namespace, labels={"tier": "web"}),
        manifests.kustomization("c", namespace, labels={"tier": "web"}),
    )
    from tests.support import fluxstatus

    api.patch_status(b, fluxstatus.ready_status(b))
    api.patch_status(c, fluxstatus.failed_status(c, reason="X", message="y"))

    by_label = phoebe(
        "sync", "ks", "-n", namespace, "-l", "tier=web", "--no-wait", "-o", "json", kubeconfig=cluster.kubeconfig
    )
    assert sorted(results(by_label)) == [f"Kustomization/{namespace}/b", f"Kustomization/{namespace}/c"]

    failed = phoebe("sync", "ks", "-n", namespace, "--failed", "--no-wait", "-o", "json", kubeconfig=cluster.kubeconfig)
    # a: no Ready condition at all; c: Ready=False. b is Ready.
    assert sorted(results(failed)) == [f"Kustomization/{namespace}/a", f"Kustomization/{namespace}/c"]


def test_names_namespaces_and_all_namespaces(
    phoebe: PhoebeRunner, cluster: Cluster, namespace: str, request: pytest.FixtureRequest
) -> None:
    other = f"{namespace}-b"
    cluster.api.ensure_namespace(other)
    create_all(
        cluster,
        manifests.kustomization("x", namespace),
        manifests.kustomization("y", namespace),
        manifests.kustomization("x", other),
    )

    named = phoebe(
        "sync", "ks", "x", f"{other}/x", "-n", namespace, "--no-wait", "-o", "json", kubeconfig=cluster.kubeconfig
    )
    assert set(results(named)) == {f"Kustomization/{namespace}/x", f"Kustomization/{other}/x"}

    everywhere = phoebe("sync", "ks", "-A", "-l", "", "--no-wait", "-o", "json", kubeconfig=cluster.kubeconfig)
    found = results(everywhere)
    assert {f"Kustomization/{namespace}/x", f"Kustomization/{namespace}/y", f"Kustomization/{other}/x"} <= set(found)


def test_default_namespace_is_the_contexts_then_flux_system(
    phoebe: PhoebeRunner, cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    import yaml

    cluster.api.create(manifests.kustomization("here", namespace))
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    config["contexts"][0]["context"]["namespace"] = namespace
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))

    result = phoebe("sync", "ks", "--no-wait", "-o", "json", kubeconfig=path)
    assert list(results(result)) == [f"Kustomization/{namespace}/here"]

    in_flux_system = phoebe("sync", "ks", "here", "--no-wait", kubeconfig=cluster.kubeconfig)
    assert in_flux_system.code == 5
    assert in_flux_system.stderr == "phoebe: error: Kustomization not found in namespace flux-system: here\n"


def test_unknown_names_exit_5(phoebe: PhoebeRunner, cluster: Cluster, namespace: str) -> None:
    cluster.api.create(manifests.kustomization("real", namespace))
    result = phoebe("sync", "ks", "real", "ghost", "phantom", "-n", namespace, kubeconfig=cluster.kubeconfig)
    assert result.code == 5
    assert result.stderr == f"phoebe: error: Kustomization not found in namespace {namespace}: ghost, phantom\n"
    assert "annotations" not in cluster.api.get(*KS, namespace, "real")["metadata"]


def test_a_namespace_that_does_not_exist_exits_5(phoebe: PhoebeRunner, cluster: Cluster, namespace: str) -> None:
    """D1: `sync ks -n typo` exited 0 ("nothing to sync"): a CI step passed on a typo."""
    typo = f"{namespace}-typo"
    for args in (["ks"], ["ks", "-o", "json"], ["all"], ["ks", "--dry-run"], ["ks", "web"], ["ks", "-l", "a=b"]):
        result = phoebe("sync", *args, "-n", typo, kubeconfig=cluster.kubeconfig)
        assert (result.code, result.stdout, result.stderr) == (5, "", f"phoebe: error: namespace {typo} not found\n")
    for verb in ("suspend", "resume"):
        result = phoebe(verb, "ks", "--all", "-n", typo, kubeconfig=cluster.kubeconfig)
        assert (result.code, result.stderr) == (5, f"phoebe: error: namespace {typo} not found\n")
    named = phoebe("sync", "ks", f"{typo}/web", kubeconfig=cluster.kubeconfig)
    assert (named.code, named.stderr) == (5, f"phoebe: error: namespace {typo} not found\n")
    # an empty namespace that exists is still "nothing to sync", exit 0
    empty = phoebe("sync", "ks", "-n", namespace, kubeconfig=cluster.kubeconfig)
    assert (empty.code, empty.stdout) == (0, "nothing to sync: no object matched\n")


def test_bad_selector_is_a_usage_error_before_any_patch(phoebe: PhoebeRunner, cluster: Cluster, namespace: str) -> None:
    """D4: a bad -l was the server's 400, exit 1, in sync and suspend (exit 2 in status)."""
    create_all(cluster, manifests.kustomization("web", namespace))
    for verb in ("sync", "suspend", "resume"):
        result = phoebe(verb, "ks", "-n", namespace, "-l", "tier in (a", kubeconfig=cluster.kubeconfig)
        assert (result.code, result.stdout) == (2, "")
        assert result.stderr == (
            "phoebe: error: invalid label selector 'tier in (a': found the end of the selector, "
            "expected a value, ',' or ')'\n"
        )
    web = cluster.api.get(*KS, namespace, "web")
    assert "annotations" not in web["metadata"] and "suspend" not in web["spec"]


def test_kind_slash_name_and_names_no_object_can_have(phoebe: PhoebeRunner, cluster: Cluster, namespace: str) -> None:
    """D11: `sync ks ''` and `sync ks a/b/c` were exit 5 (not found); KIND/NAME was refused."""
    create_all(cluster, manifests.kustomization("web", namespace), manifests.kustomization("db", namespace))
    for args in (["ks/web", "-n", namespace], [f"ks/{namespace}/web"], ["ks", f"{namespace}/web"]):
        result = phoebe("sync", *args, "--no-wait", "-o", "json", kubeconfig=cluster.kubeconfig)
        assert result.code == 0, result.stderr
        assert results(result) == {f"Kustomization/{namespace}/web": "waiting"}
    both = phoebe(
        "sync", "ks/web", "kustomization/db", "-n", namespace, "--no-wait", "-o", "json", kubeconfig=cluster.kubeconfig
    )
    assert set(results(both)) == {f"Kustomization/{namespace}/web", f"Kustomization/{namespace}/db"}
    for name, why in (("", "the name is empty"), ("a/b/c", "too many '/'"), ("Web", "'Web' is not an object name")):
        result = phoebe("sync", "ks", name, "-n", namespace, kubeconfig=cluster.kubeconfig)
        assert result.code == 2
        assert result.stderr.startswith(f"phoebe: error: bad object name {name!r}: {why}")


def test_unknown_kind_exits_2(phoebe: PhoebeRunner, cluster: Cluster) -> None:
    result = phoebe("sync", "pods", kubeconfig=cluster.kubeconfig)
    assert result.code == 2
    assert result.stderr == (
        "phoebe: error: unknown kind 'pods' (use one of: git, oci, helmrepo, chart, bucket, ks, hr, es, all)\n"
    )


def test_no_flux_crds_exits_5(phoebe: PhoebeRunner, bare_cluster: Cluster) -> None:
    result = phoebe("sync", "ks", "-A", kubeconfig=bare_cluster.kubeconfig)
    assert (result.code, result.stderr) == (
        5,
        "phoebe: error: Flux is not installed in this cluster: none of its CRDs are served\n",
    )


def test_suspended_named_is_an_error_and_unnamed_is_skipped(
    phoebe: PhoebeRunner, cluster: Cluster, namespace: str
) -> None:
    create_all(cluster, manifests.kustomization("paused", namespace, suspend=True))
    named = phoebe("sync", "ks", "paused", "-n", namespace, kubeconfig=cluster.kubeconfig)
    assert named.code == 1
    assert named.lines[0] == (f"✗ Kustomization/{namespace}/paused  failed  suspended: resume it first (phoebe resume)")

    unnamed = phoebe("sync", "ks", "-n", namespace, kubeconfig=cluster.kubeconfig)
    assert unnamed.code == 0
    assert unnamed.lines[0] == f"– Kustomization/{namespace}/paused  skipped  suspended"
    assert "annotations" not in cluster.api.get(*KS, namespace, "paused")["metadata"]


def test_oci_helm_repository_is_not_reconcilable(phoebe: PhoebeRunner, cluster: Cluster, namespace: str) -> None:
    create_all(
        cluster,
        manifests.helm_repository("oci-charts", namespace, oci=True),
        manifests.helm_repository("charts", namespace),
    )
    result = phoebe("sync", "helmrepo", "-n", namespace, "--no-wait", "-o", "json", kubeconfig=cluster.kubeconfig)
    items = {i["name"]: i for i in doc(result)["items"]}
    assert items["oci-charts"]["result"] == "skipped"
    assert items["oci-charts"]["message"] == "not reconcilable: OCI HelmRepositories have no reconcile loop"
    assert items["charts"]["patched"]


def test_forbidden_to_patch_exits_4_and_patches_nothing(
    phoebe: PhoebeRunner, cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    api = cluster.api
    other = f"{namespace}-locked"
    api.ensure_namespace(other)
    create_all(cluster, manifests.kustomization("a", namespace), manifests.kustomization("b", other))
    rules = [
        {
            "apiGroups": ["kustomize.toolkit.fluxcd.io"],
            "resources": ["kustomizations"],
            "verbs": ["get", "list", "watch"],
        }
    ]
    api.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": f"{namespace}-reader"},
            "rules": rules,
        }
    )
    api.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": f"{namespace}-reader"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": f"{namespace}-reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}],
        }
    )
    # patch allowed in the first namespace only
    api.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "patcher", "namespace": namespace},
            "rules": [{**rules[0], "verbs": ["patch"]}],
        }
    )
    api.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "patcher", "namespace": namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "patcher"},
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}],
        }
    )
    kubeconfig = cluster.kubeconfig_with_token(tmp_path, api.service_account_token(namespace, "reader"), "reader")

    result = phoebe("sync", "ks", "a", f"{other}/b", "-n", namespace, kubeconfig=kubeconfig)

    assert result.code == 4
    assert result.stderr == (
        f"phoebe: error: forbidden: you may not patch kustomizations (kustomize.toolkit.fluxcd.io) in the namespace "
        f'"{other}"; nothing was patched\n'
    )
    assert "annotations" not in api.get(*KS, namespace, "a")["metadata"]
    assert "annotations" not in api.get(*KS, other, "b")["metadata"]


def test_timeout_exits_6(phoebe: PhoebeRunner, cluster: Cluster, namespace: str) -> None:
    create_all(cluster, manifests.kustomization("slow", namespace), manifests.kustomization("quick", namespace))
    with FluxStandIn(cluster.api, namespaces={namespace}) as standin:
        standin.expect("Kustomization", namespace, "quick", Outcome.succeed())
        standin.expect("Kustomization", namespace, "slow", Outcome.never())
        started = time.monotonic()
        result = phoebe("sync", "ks", "-n", namespace, "--timeout", "1.5s", "-o", "json", kubeconfig=cluster.kubeconfig)
        elapsed = time.monotonic() - started

    assert result.code == 6
    assert results(result) == {
        f"Kustomization/{namespace}/quick": "done",
        f"Kustomization/{namespace}/slow": "timed-out",
    }
    assert elapsed < 5


def test_failure_beats_timeout(phoebe: PhoebeRunner, cluster: Cluster, namespace: str) -> None:
    create_all(cluster, manifests.kustomization("slow", namespace), manifests.kustomization("bad", namespace))
    with FluxStandIn(cluster.api, namespaces={namespace}) as standin:
        standin.expect("Kustomization", namespace, "bad", Outcome.fail("X", "broken"))
        standin.expect("Kustomization", namespace, "slow", Outcome.never())
        result = phoebe("sync", "ks", "-n", namespace, "--timeout", "1s", kubeconfig=cluster.kubeconfig)
    assert result.code == 1


def test_deleted_while_waiting(phoebe: PhoebeRunner, cluster: Cluster, namespace: str) -> None:
    (obj,) = create_all(cluster, manifests.kustomization("doomed", namespace))

    def delete_soon() -> None:
        time.sleep(0.8)
        cluster.api.delete(obj)

    threading.Thread(target=delete_soon, daemon=True).start()
    result = phoebe(
        "sync", "ks", "doomed", "-n", namespace, "--timeout", "20s", "-o", "json", kubeconfig=cluster.kubeconfig
    )
    assert result.code == 1
    item = doc(result)["items"][0]
    assert (item["result"], item["message"]) == ("deleted", "deleted while waiting")


def test_watch_resumes_when_the_server_ends_it(
    phoebe: PhoebeRunner, cluster: Cluster, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import phoebe_cli.kube.watch

    monkeypatch.setattr(phoebe_cli.kube.watch, "WATCH_TIMEOUT_SECONDS", 1)  # the server closes every second
    create_all(cluster, manifests.kustomization("later", namespace))
    with FluxStandIn(cluster.api, namespaces={namespace}) as standin:
        standin.expect("Kustomization", namespace, "later", Outcome.succeed(delay=2.5))
        result = phoebe(
            "sync", "ks", "later", "-n", namespace, "--timeout", "30s", "-o", "json", kubeconfig=cluster.kubeconfig
        )
    assert result.code == 0, result.stdout
    assert results(result) == {f"Kustomization/{namespace}/later": "done"}


def test_dependency_in_the_run_is_waited_for(phoebe: PhoebeRunner, cluster: Cluster, namespace: str) -> None:
    create_all(
        cluster, manifests.kustomization("db", namespace), manifests.kustomization("app", namespace, depends_on=["db"])
    )
    with FluxStandIn(cluster.api, namespaces={namespace}) as standin:
        standin.expect("Kustomization", namespace, "db", Outcome.succeed(delay=1.0))
        standin.expect("Kustomization", namespace, "app", Outcome.after_dependencies())
        result = phoebe("sync", "ks", "-n", namespace, "--timeout", "20s", "-o", "json", kubeconfig=cluster.kubeconfig)
    assert result.code == 0, result.stdout
    assert set(results(result).values()) == {"done"}


def test_blocked_by_a_failing_dependency_fails(phoebe: PhoebeRunner, cluster: Cluster, namespace: str) -> None:
    create_all(
        cluster,
        manifests.kustomization("ceph", namespace),
        manifests.kustomization("sonarr", namespace, depends_on=["ceph"]),
    )
    with FluxStandIn(cluster.api, namespaces={namespace}) as standin:
        standin.expect("Kustomization", namespace, "ceph", Outcome.fail("HealthCheckFailed", "ceph is unhealthy"))
        standin.expect("Kustomization", namespace, "sonarr", Outcome.after_dependencies())
        result = phoebe("sync", "ks", "-n", namespace, "--timeout", "20s", "-o", "json", kubeconfig=cluster.kubeconfig)
    assert result.code == 1
    items = {i["name"]: i for i in doc(result)["items"]}
    assert items["sonarr"]["result"] == "failed"
    assert items["sonarr"]["reason"] == "DependencyNotReady"
    assert items["sonarr"]["message"].startswith(f"dependency '{namespace}/ceph' is not ready")


def test_with_source_syncs_the_source_first(phoebe: PhoebeRunner, cluster: Cluster, namespace: str) -> None:
    create_all(
        cluster,
        manifests.git_repository("repo", namespace),
        manifests.kustomization("a", namespace, source=("GitRepository", "repo")),
        manifests.kustomization("b", namespace, source=("GitRepository", "repo")),
    )
    with FluxStandIn(cluster.api, namespaces={namespace}) as standin:
        standin.expect("GitRepository", namespace, "repo", Outcome.succeed(revision="main@sha1:" + "d" * 40, delay=0.5))
        standin.expect("Kustomization", namespace, "a", Outcome.succeed())
        standin.expect("Kustomization", namespace, "b", Outcome.succeed())
        result = phoebe("sync", "ks", "-n", namespace, "--with-source", "-o", "json", kubeconfig=cluster.kubeconfig)
        answered = standin.first("answered", "GitRepository", namespace, "repo")
        seen_a = standin.first("seen", "Kustomization", namespace, "a")
        seen_b = standin.first("seen", "Kustomization", namespace, "b")

    assert result.code == 0, result.stdout
    phases = {i["name"]: (i["phase"], i["result"]) for i in doc(result)["items"]}
    assert phases == {"repo": ("source", "done"), "a": ("target", "done"), "b": ("target", "done")}
    assert answered is not None and seen_a is not None and seen_b is not None
    assert answered < seen_a and answered < seen_b
    assert len(standin.tokens_for("GitRepository", namespace, "repo")) == 1  # once for both


def test_with_source_failure_skips_the_dependants(phoebe: PhoebeRunner, cluster: Cluster, namespace: str) -> None:
    create_all(
        cluster,
        manifests.git_repository("repo", namespace),
        manifests.kustomization("a", namespace, source=("GitRepository", "repo")),
    )
    with FluxStandIn(cluster.api, namespaces={namespace}) as standin:
        standin.expect("GitRepository", namespace, "repo", Outcome.fail("GitOperationFailed", "auth failed"))
        result = phoebe("sync", "ks", "-n", namespace, "--with-source", "-o", "json", kubeconfig=cluster.kubeconfig)
    assert result.code == 1
    items = {i["name"]: i for i in doc(result)["items"]}
    assert items["a"]["result"] == "failed"
    assert items["a"]["message"] == f"source GitRepository/{namespace}/repo failed: auth failed"
    assert not items["a"]["patched"]


def test_cascade_waits_for_the_new_revision(phoebe: PhoebeRunner, cluster: Cluster, namespace: str) -> None:
    api = cluster.api
    from tests.support import fluxstatus

    new = "main@sha1:" + "e" * 40
    _repo, ks = create_all(
        cluster,
        manifests.git_repository("repo", namespace),
        manifests.kustomization("app", namespace, source=("GitRepository", "repo")),
    )
    api.patch_status(ks, fluxstatus.ready_status(ks, revision="main@sha1:" + "0" * 40))

    def controller_applies() -> None:
        # what kustomize-controller does when its source moves: apply the new revision
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            current = api.get(*GIT, namespace, "repo")
            if ((current.get("status") or {}).get("artifact") or {}).get("revision") == new:
                time.sleep(0.5)
                latest = api.get(*KS, namespace, "app")
                api.patch_status(latest, fluxstatus.ready_status(latest, revision=new))
                return
            time.sleep(0.05)

    with FluxStandIn(api, namespaces={namespace}) as standin:
        standin.expect("GitRepository", namespace, "repo", Outcome.succeed(revision=new))
        applier = threading.Thread(target=controller_applies, daemon=True)
        applier.start()
        result = phoebe(
            "sync",
            "git",
            "repo",
            "-n",
            namespace,
            "--cascade",
            "--timeout",
            "20s",
            "-o",
            "json",
            kubeconfig=cluster.kubeconfig,
        )
        applier.join(timeout=10)

    assert result.code == 0, result.stdout
    items = {i["name"]: i for i in doc(result)["items"]}
    assert (items["repo"]["result"], items["repo"]["revision"]) == ("done", new)
    assert (items["app"]["phase"], items["app"]["result"], items["app"]["revision"]) == ("cascade", "done", new)
    assert not items["app"]["patched"]


def test_external_secrets_get_force_sync(phoebe: PhoebeRunner, cluster: Cluster, namespace: str) -> None:
    create_all(cluster, manifests.external_secret("creds", namespace))
    with FluxStandIn(cluster.api, namespaces={namespace}, default=Outcome.succeed()):
        before = int(time.time())
        result = phoebe("sync", "es", "-n", namespace, "-o", "json", kubeconfig=cluster.kubeconfig)
    assert result.code == 0, result.stdout
    annotations = cluster.api.get("external-secrets.io/v1", "ExternalSecret", namespace, "creds")["metadata"][
        "annotations"
    ]
    assert set(annotations) == {"force-sync"}
    assert int(annotations["force-sync"]) >= before
    assert results(result) == {f"ExternalSecret/{namespace}/creds": "done"}


def test_older_crd_set(phoebe: PhoebeRunner, older_cluster: Cluster, request: pytest.FixtureRequest) -> None:
    api = older_cluster.api
    namespace = f"t-older-{os.getpid()}"
    api.ensure_namespace(namespace)
    # created through the deprecated version; phoebe talks to the preferred one (v1)
    api.create(manifests.kustomization("old", namespace, api_version="kustomize.toolkit.fluxcd.io/v1beta2"))
    with FluxStandIn(api, namespaces={namespace}, default=Outcome.succeed()):
        result = phoebe("sync", "ks", "-n", namespace, "-o", "json", kubeconfig=older_cluster.kubeconfig)
    assert result.code == 0, result.stdout
    assert results(result) == {f"Kustomization/{namespace}/old": "done"}


def _interrupt_once_patching(cluster: Cluster, namespace: str, args: list[str], env: dict[str, str]) -> CliResult:
    """Run `phoebe sync` as a process and send it SIGINT as soon as the server holds the first
    of its patches (seen on a watch), so that Ctrl-C lands while patches are in flight."""
    api = cluster.api
    path = api.path(*KS, namespace)
    version = api.http.get(path).json()["metadata"]["resourceVersion"]
    with api.http.stream(
        "GET", path, params={"watch": "true", "resourceVersion": version}, timeout=httpx_timeout()
    ) as stream:
        process = subprocess.Popen(
            [sys.executable, "-m", "phoebe_cli", "sync", "ks", "-n", namespace, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            for line in stream.iter_lines():
                event = json.loads(line)
                if REQUESTED in (event["object"]["metadata"].get("annotations") or {}):
                    process.send_signal(signal.SIGINT)
                    break
            out, err = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
    return CliResult(process.returncode, out, err)


def httpx_timeout():  # type: ignore[no-untyped-def]
    import httpx

    return httpx.Timeout(30, read=60)


def tokens(cluster: Cluster, namespace: str) -> dict[str, str | None]:
    return {
        item["metadata"]["name"]: (item["metadata"].get("annotations") or {}).get(REQUESTED)
        for item in cluster.api.list(*KS, namespace)
    }


def test_ctrl_c_while_patching_reports_exactly_what_was_patched(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    """D3: after Ctrl-C the JSON said 2 were patched while 9 objects carried the run's token, and
    the text ended with a green tick, '30 waiting', no word of the interruption."""
    from concurrent.futures import ThreadPoolExecutor

    count = 400  # patching them takes long enough for Ctrl-C to land among patches in flight
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(cluster.api.create, (manifests.kustomization(f"app{i:03}", namespace) for i in range(count))))
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    env.update(HOME=str(tmp_path), KUBECONFIG=str(cluster.kubeconfig))

    with FluxStandIn(cluster.api, namespaces={namespace}, default=Outcome.never()):
        as_json = _interrupt_once_patching(cluster, namespace, ["-o", "json"], env)
        assert as_json.code == 130, as_json.stderr
        assert "Traceback" not in as_json.stderr
        document = doc(as_json)
        held = {name for name, token in tokens(cluster, namespace).items() if token == document["token"]}
        reported = {i["name"] for i in document["items"] if i["patched"]}
        maybe = {i["name"] for i in document["items"] if i.get("maybePatched")}
        assert document["interrupted"] is True
        assert held, "Ctrl-C came before any patch landed"
        assert reported <= held <= reported | maybe  # every patch the server holds is reported
        assert not maybe, "the server answered: nothing should be left uncertain"
        assert len(held) < count, "Ctrl-C came after every patch: the test did not interrupt patching"
        assert {i["result"] for i in document["items"]} == {"waiting"}
        for entry in document["items"]:
            expected = "interrupted: patched" if entry["patched"] else "interrupted: not patched"
            assert entry["message"].startswith(expected)

        before = tokens(cluster, namespace)
        as_text = _interrupt_once_patching(cluster, namespace, [], env)
        assert as_text.code == 130, as_text.stderr
        changed = [name for name, token in tokens(cluster, namespace).items() if token != before[name]]
        summary = as_text.lines[-1]
        assert summary.startswith(f"✗ {count} Kustomizations: {len(changed)} waiting, ")
        assert summary.endswith("s") and "; interrupted after " in summary
        assert f"{count - len(changed)} not patched" in summary
        lines = as_text.lines[:-1]
        assert len(lines) == count  # every object, with where it stands
        assert sum(1 for line in lines if "  waiting  interrupted: patched" in line) == len(changed)
        assert sum(1 for line in lines if "  not patched  interrupted: not patched" in line) == count - len(changed)


def test_ctrl_c_while_waiting_exits_130(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    create_all(cluster, manifests.kustomization("stuck", namespace))
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    env["HOME"] = str(tmp_path)
    with FluxStandIn(cluster.api, namespaces={namespace}, default=Outcome.never()):
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "phoebe_cli",
                "sync",
                "ks",
                "-n",
                namespace,
                "--kubeconfig",
                str(cluster.kubeconfig),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        deadline = time.monotonic() + 20
        while not tokens(cluster, namespace)["stuck"] and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # patched, and waiting on its watch
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=15)
    assert process.returncode == 130, err
    assert "Traceback" not in err
    lines = out.splitlines()
    assert lines[0] == (
        f"… Kustomization/{namespace}/stuck  waiting  interrupted: patched, no answer from the controller yet"
    )
    assert lines[-1].startswith("✗ 1 Kustomization: 1 waiting; interrupted after ")
    token = cluster.api.get(*KS, namespace, "stuck")["metadata"]["annotations"][REQUESTED]
    assert token  # the patch happened; it is idempotent, nothing half-done


def test_suspend_and_resume(phoebe: PhoebeRunner, cluster: Cluster, namespace: str) -> None:
    api = cluster.api
    create_all(cluster, manifests.kustomization("app", namespace), manifests.kustomization("other", namespace))

    refused = phoebe("suspend", "ks", "-n", namespace, kubeconfig=cluster.kubeconfig)
    assert refused.code == 2
    assert "name the objects to suspend, or use --all" in refused.stderr

    suspended = phoebe("suspend", "ks", "app", "-n", namespace, kubeconfig=cluster.kubeconfig)
    assert suspended.code == 0, suspended.stderr
    assert suspended.lines[0].startswith(f"✓ Kustomization/{namespace}/app  suspended")
    app = api.get(*KS, namespace, "app")
    assert app["spec"]["suspend"] is True
    assert "annotations" not in app["metadata"]  # suspending requests nothing
    assert "suspend" not in api.get(*KS, namespace, "other")["spec"]

    again = phoebe("suspend", "ks", "--all", "-n", namespace, "-o", "json", kubeconfig=cluster.kubeconfig)
    assert results(again) == {f"Kustomization/{namespace}/app": "skipped", f"Kustomization/{namespace}/other": "done"}

    with FluxStandIn(api, namespaces={namespace}, default=Outcome.succeed()):
        resumed = phoebe("resume", "ks", "app", "-n", namespace, "-o", "json", kubeconfig=cluster.kubeconfig)
    assert resumed.code == 0, resumed.stdout
    app = api.get(*KS, namespace, "app")
    assert app["spec"]["suspend"] is False
    assert app["metadata"]["annotations"][REQUESTED] == doc(resumed)["token"]
    assert results(resumed) == {f"Kustomization/{namespace}/app": "done"}
    managers = {m["manager"] for m in app["metadata"]["managedFields"]}
    assert "flux-client-side-apply" in managers


def test_resume_no_wait_and_external_secrets(phoebe: PhoebeRunner, cluster: Cluster, namespace: str) -> None:
    create_all(cluster, manifests.kustomization("app", namespace, suspend=True))
    result = phoebe("resume", "ks", "--all", "-n", namespace, "--no-wait", kubeconfig=cluster.kubeconfig)
    assert result.code == 0
    assert result.lines[0] == f"→ Kustomization/{namespace}/app  requested"
    refused = phoebe("suspend", "es", "--all", "-n", namespace, kubeconfig=cluster.kubeconfig)
    assert (refused.code, refused.stderr) == (
        2,
        "phoebe: error: ExternalSecrets have no spec.suspend: they cannot be suspended or resumed\n",
    )


def test_live_view_on_a_terminal(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    """On a TTY the objects are shown in a live table that stays on screen, then the summary."""
    import pty

    create_all(cluster, manifests.kustomization("one", namespace), manifests.kustomization("two", namespace))
    with FluxStandIn(cluster.api, namespaces={namespace}, default=Outcome.succeed(delay=0.5)):
        env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
        env.update(HOME=str(tmp_path), COLUMNS="120", LINES="40", TERM="xterm")
        leader, follower = pty.openpty()
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "phoebe_cli",
                "sync",
                "ks",
                "-n",
                namespace,
                "--kubeconfig",
                str(cluster.kubeconfig),
            ],
            stdout=follower,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        os.close(follower)
        chunks = []
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        process.wait(timeout=30)
        os.close(leader)
    screen = b"".join(chunks).decode(errors="replace")
    assert process.returncode == 0
    assert "\x1b[" in screen  # colour and cursor movement: a live display
    plain = __import__("re").sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen)
    assert f"Kustomization/{namespace}/one" in plain and f"Kustomization/{namespace}/two" in plain
    assert "2 Kustomizations: 2 done in" in plain


def test_no_color_on_a_terminal(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    import pty

    create_all(cluster, manifests.kustomization("one", namespace))
    env = dict(os.environ, HOME=str(tmp_path), NO_COLOR="1", TERM="xterm")
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "phoebe_cli",
            "sync",
            "ks",
            "-n",
            namespace,
            "--no-wait",
            "--kubeconfig",
            str(cluster.kubeconfig),
        ],
        stdout=follower,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    process.wait(timeout=30)
    os.close(leader)
    screen = b"".join(chunks).decode(errors="replace")
    assert "\x1b[3" not in screen and "\x1b[9" not in screen  # no colour codes (cursor moves are fine)


def test_justfile_drop_in(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    """`just kube sync-ks` from the drop-in module calls phoebe with the old recipe's meaning."""
    import shutil

    root = Path(__file__).resolve().parents[2]
    create_all(cluster, manifests.kustomization("app", namespace))
    (tmp_path / "justfile").write_text(f"mod kube '{root / 'docs/just/kubernetes.just'}'\n")
    just = shutil.which("just") or str(Path(sys.executable).parent / "just")
    env = dict(
        os.environ, KUBECONFIG=str(cluster.kubeconfig), PHOEBE=f"{sys.executable} -m phoebe_cli", HOME=str(tmp_path)
    )
    listing = subprocess.run(
        [just, "--list", "kube"], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
    )
    assert listing.returncode == 0, listing.stderr
    for recipe in (
        "sync-git",
        "sync-oci",
        "sync-ks",
        "sync-hr",
        "sync-es",
        "sync-all",
        "status",
        "logs",
        "validate",
        "compare",
        "diff",
    ):
        assert recipe in listing.stdout

    done = subprocess.run(
        [just, "kube", "sync-ks", f"{namespace}/app", "--no-wait", "-o", "json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    token = json.loads(done.stdout)["token"]
    assert cluster.api.get(*KS, namespace, "app")["metadata"]["annotations"][REQUESTED] == token
