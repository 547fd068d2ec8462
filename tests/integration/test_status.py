"""`phoebe status` against the real API server: the sample repository with scenario statuses,
and scenarios of its own (cycles, missing dependencies, watches, RBAC)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import CliResult, Cluster, PhoebeRunner
from tests.support import fluxstatus, manifests

pytestmark = pytest.mark.cluster

FAILING_MESSAGE = (
    "ReconciliationFailed: Service/rook-ceph/rook-ceph-mgr-dashboard-lb dry-run failed (Invalid): Service "
    '"rook-ceph-mgr-dashboard-lb" is invalid: spec.ports[0].port: Invalid value: 99999: must be between 1 and '
    "65535, inclusive"
)


def doc(result: CliResult) -> dict[str, Any]:
    return json.loads(result.stdout)


def by_name(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f"{o['kind']}/{o['namespace']}/{o['name']}": o for o in document["objects"]}


def strip_ages(line: str) -> str:
    """Ages change between runs: replace them with <age>."""
    import re

    return re.sub(r"  \d+[smhd](?=  |$)", "  <age>", line)


# --- the sample repository --------------------------------------------------------------------
def test_tree_of_the_sample(phoebe: PhoebeRunner, sample_cluster: Cluster) -> None:
    result = phoebe("status", kubeconfig=sample_cluster.kubeconfig)

    assert result.code == 1  # a failing app and one blocked behind it
    lines = [strip_ages(line) for line in result.lines]
    # roots: the Kustomizations no other Kustomization applied, each with its source
    root = "✓ Kustomization/flux-system/cluster-apps  main@sha1:66c1a7ee  <age>"
    assert lines[0] == f"{root}  ← GitRepository/flux-system/flux-system"
    assert "├── ✓ Kustomization/cert-manager/cert-manager  main@sha1:66c1a7ee  <age>" in lines
    assert (
        "│   └── ✓ HelmRelease/cert-manager/cert-manager  1.19.1  <age>  ← HelmRepository/flux-system/jetstack" in lines
    )
    assert (
        "│   ├── ✓ HelmRelease/database/dragonfly-operator  v1.3.0  <age>  ← OCIRepository/database/dragonfly-operator"
        in lines
    )
    assert f"├── ✗ Kustomization/rook-ceph/rook-ceph-cluster  <age>  {FAILING_MESSAGE}" in lines
    assert (
        f"├── ✗ Kustomization/media/sonarr  <age>  blocked by rook-ceph/rook-ceph-cluster ← {FAILING_MESSAGE}" in lines
    )
    assert "├── ⏸ Kustomization/media/plex  main@sha1:66c1a7ee  <age>  suspended" in lines
    meta = lines.index(
        "✓ Kustomization/flux-system/cluster-meta  main@sha1:66c1a7ee  <age>  ← GitRepository/flux-system/flux-system"
    )
    assert lines[meta + 1].startswith("├── ✓ HelmRepository/flux-system/backube  sha256:")
    assert not any("unattached" in line for line in lines)
    assert all("HelmChart/" not in line or "←" in line for line in lines)  # charts only beside releases
    assert result.stderr == ""


def test_json_document_of_the_sample(phoebe: PhoebeRunner, sample_cluster: Cluster) -> None:
    result = phoebe("status", "-o", "json", kubeconfig=sample_cluster.kubeconfig)

    assert result.code == 1
    document = doc(result)
    assert document["kind"] == "StatusReport"
    assert document["healthy"] is False
    assert document["counts"]["Kustomization"] == {"ready": 28, "failed": 2, "suspended": 1}
    assert document["summary"]["failed"] == 2
    objects = by_name(document)
    sonarr = objects["Kustomization/media/sonarr"]
    assert sonarr["state"] == "failed"
    assert sonarr["blockedBy"]["chain"] == [
        {"kind": "Kustomization", "namespace": "rook-ceph", "name": "rook-ceph-cluster"}
    ]
    assert sonarr["blockedBy"]["problem"] is None
    assert sonarr["blockedBy"]["cause"] == f"blocked by rook-ceph/rook-ceph-cluster ← {FAILING_MESSAGE}"
    assert objects["Kustomization/rook-ceph/rook-ceph-cluster"]["blockedBy"] is None
    assert objects["Kustomization/media/plex"]["state"] == "suspended"
    edges = {(e["parent"]["name"], e["child"]["name"]) for e in document["tree"]["edges"]}
    assert ("cluster-apps", "sonarr") in edges
    assert ("sonarr", "sonarr") not in edges
    assert ("radarr", "radarr") in edges  # the Kustomization radarr applied the HelmRelease radarr
    assert [r["name"] for r in document["tree"]["roots"]] == ["cluster-apps", "cluster-meta"]
    assert document["sources"][0]["revision"].startswith("main@sha1:")
    assert objects["HelmChart/flux-system/cert-manager-cert-manager"]["state"] == "ready"


def test_table_sorted_failing_first_and_folded(phoebe: PhoebeRunner, sample_cluster: Cluster) -> None:
    result = phoebe("status", "ks", "-o", "table", kubeconfig=sample_cluster.kubeconfig)

    header, *rows = result.lines
    assert header.split() == ["NAMESPACE", "KIND", "NAME", "READY", "SUSPENDED", "REVISION", "AGE", "MESSAGE"]
    assert len(rows) == 31
    assert [r.split()[2] for r in rows[:3]] == ["sonarr", "rook-ceph-cluster", "plex"]
    assert rows[1].split()[3:5] == ["✗", "False"]
    assert rows[2].split()[3:6] == ["⏸", "True", "yes"]
    assert all(r.split()[3] == "✓" for r in rows[3:])
    assert rows[1].endswith(FAILING_MESSAGE)  # one line, not truncated when piped


def test_failed_filters_every_output(phoebe: PhoebeRunner, sample_cluster: Cluster) -> None:
    tree = phoebe("status", "--failed", kubeconfig=sample_cluster.kubeconfig)
    assert [strip_ages(line)[:60] for line in tree.lines] == [
        "✓ Kustomization/flux-system/cluster-apps  main@sha1:66c1a7ee",  # kept as the parent
        "├── ✗ Kustomization/media/sonarr  <age>  blocked by rook-cep",
        "└── ✗ Kustomization/rook-ceph/rook-ceph-cluster  <age>  Reco",
    ]
    table = phoebe("status", "--failed", "-o", "table", kubeconfig=sample_cluster.kubeconfig)
    assert [r.split()[2] for r in table.lines[1:]] == ["sonarr", "rook-ceph-cluster"]
    as_yaml = yaml.safe_load(phoebe("status", "--failed", "-o", "yaml", kubeconfig=sample_cluster.kubeconfig).stdout)
    assert sorted(o["name"] for o in as_yaml["objects"]) == ["rook-ceph-cluster", "sonarr"]
    assert tree.code == table.code == 1


def test_suspended_and_strict(phoebe: PhoebeRunner, sample_cluster: Cluster) -> None:
    suspended = phoebe("status", "--suspended", "-o", "json", kubeconfig=sample_cluster.kubeconfig)
    assert [o["name"] for o in doc(suspended)["objects"]] == ["plex"]
    assert suspended.code == 0  # suspended counts as ready...
    strict = phoebe("status", "--suspended", "--strict", "-o", "json", kubeconfig=sample_cluster.kubeconfig)
    assert strict.code == 1  # ...unless --strict


def test_namespace_selection_and_exit_0(phoebe: PhoebeRunner, sample_cluster: Cluster) -> None:
    result = phoebe("status", "-n", "default", kubeconfig=sample_cluster.kubeconfig)
    assert result.code == 0
    names = [strip_ages(line) for line in result.lines]
    assert names[0].startswith("✓ Kustomization/flux-system/cluster-apps")  # the parent, for context
    assert any("Kustomization/default/echo" in line for line in names)
    assert not any("media" in line for line in names)


def test_one_object_and_its_errors(phoebe: PhoebeRunner, sample_cluster: Cluster) -> None:
    one = phoebe("status", "ks", "media/sonarr", "-o", "json", kubeconfig=sample_cluster.kubeconfig)
    assert [o["name"] for o in doc(one)["objects"]] == ["sonarr"]
    assert one.code == 1
    missing = phoebe("status", "ks", "nope", "-n", "media", kubeconfig=sample_cluster.kubeconfig)
    assert (missing.code, missing.stderr) == (5, "phoebe: error: Kustomization not found: media/nope\n")
    bad_kind = phoebe("status", "pods", kubeconfig=sample_cluster.kubeconfig)
    assert bad_kind.code == 2
    assert bad_kind.stderr.startswith("phoebe: error: unknown kind 'pods'")


def test_root_and_depth(phoebe: PhoebeRunner, sample_cluster: Cluster) -> None:
    rooted = phoebe("status", "--root", "flux-system/cluster-meta", kubeconfig=sample_cluster.kubeconfig)
    assert rooted.code == 0  # everything cluster-meta applied is ready
    assert rooted.lines[0].startswith("✓ Kustomization/flux-system/cluster-meta")
    assert not any("cluster-apps" in line for line in rooted.lines)
    shallow = phoebe("status", "--root", "cluster-apps", "--depth", "0", kubeconfig=sample_cluster.kubeconfig)
    assert len(shallow.lines) == 2
    assert shallow.lines[1].endswith("… 31 more") or "more" in shallow.lines[1]
    missing = phoebe("status", "--root", "nope", kubeconfig=sample_cluster.kubeconfig)
    assert (missing.code, missing.stderr) == (5, "phoebe: error: Kustomization not found: nope (for --root)\n")


def test_label_selector(phoebe: PhoebeRunner, cluster: Cluster, namespace: str) -> None:
    for name, tier in (("web", "front"), ("api", "back"), ("db", "data")):
        cluster.api.create(manifests.kustomization(name, namespace, labels={"tier": tier}))
    result = phoebe(
        "status",
        "ks",
        "-n",
        namespace,
        "-l",
        "tier in (front,back),tier!=back",
        "-o",
        "json",
        kubeconfig=cluster.kubeconfig,
    )
    assert [o["name"] for o in doc(result)["objects"]] == ["web"]
    bad = phoebe("status", "-l", "a in (b", kubeconfig=cluster.kubeconfig)
    assert bad.code == 2
    assert bad.stderr == (
        "phoebe: error: invalid label selector 'a in (b': found the end of the selector, expected a value, ',' or ')'\n"
    )


def test_header_on_a_terminal(sample_cluster: Cluster, tmp_path: Path) -> None:
    import pty

    env = dict(os.environ, HOME=str(tmp_path), KUBECONFIG=str(sample_cluster.kubeconfig), COLUMNS="200", NO_COLOR="1")
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "phoebe_cli", "status", "-o", "table"], stdout=follower, stderr=subprocess.PIPE, env=env
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
    words = [" ".join(line.split()) for line in screen.splitlines()]
    assert "context phoebe-local, Flux v2.6.4" in words
    assert "source GitRepository/flux-system/flux-system main@sha1:66c1a7ee" in words
    # D9: these read "Kustomization 31 28 ready, ..." and "HelmRelease 23 23 ready"
    assert "Kustomizations 31: 28 ready, 2 failed, 1 suspended" in words
    assert "HelmReleases 23 ready" in words
    assert "HelmRepositories 13 ready" in words


def _on_a_terminal(args: list[str], env: dict[str, str], columns: int) -> str:
    """Run phoebe with stdout on a pseudo-terminal of ``columns`` columns; the screen, without
    escape sequences."""
    import fcntl
    import pty
    import re
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "phoebe_cli", *args], stdout=follower, stderr=subprocess.PIPE, env=env
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
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", b"".join(chunks).decode(errors="replace"))


def test_piped_output_is_never_cut_whatever_columns_says(sample_cluster: Cluster, tmp_path: Path) -> None:
    """D2: `COLUMNS=80 phoebe status … | cat` cut every line at 80 characters, and the failure
    reason with it."""
    env = dict(os.environ, HOME=str(tmp_path), KUBECONFIG=str(sample_cluster.kubeconfig), COLUMNS="80")
    for output in ("tree", "table"):
        done = subprocess.run(
            [sys.executable, "-m", "phoebe_cli", "status", "--failed", "-o", output],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        assert done.returncode == 1, done.stderr
        failing = [line for line in done.stdout.splitlines() if "rook-ceph/rook-ceph-cluster " in line + " "]
        assert failing and failing[-1].endswith(FAILING_MESSAGE), done.stdout
        assert "…" not in done.stdout


def test_an_80_column_terminal_folds_the_message(sample_cluster: Cluster, tmp_path: Path) -> None:
    """D2: on an 80-column terminal the table dropped MESSAGE (cut to '…')."""
    env = dict(os.environ, HOME=str(tmp_path), KUBECONFIG=str(sample_cluster.kubeconfig), NO_COLOR="1")
    env.pop("COLUMNS", None)
    for output in ("table", "tree"):
        screen = _on_a_terminal(["status", "--failed", "-o", output], env, columns=80)
        assert all(len(line) <= 80 for line in screen.splitlines()), screen
        assert "…" not in screen
        assert " ".join(FAILING_MESSAGE.split()) in " ".join(screen.replace("│", " ").split()), screen


def test_a_namespace_that_does_not_exist_exits_5(phoebe: PhoebeRunner, cluster: Cluster, namespace: str) -> None:
    """D1: `status -n typo` exited 0 and said "healthy": true — a CI gate passed on a typo."""
    typo = f"{namespace}-typo"
    for args in (["-n", typo], ["-n", typo, "-o", "json"], ["ks", "-n", typo, "--failed"], ["-n", typo, "-w"]):
        result = phoebe("status", *args, kubeconfig=cluster.kubeconfig)
        assert (result.code, result.stdout, result.stderr) == (5, "", f"phoebe: error: namespace {typo} not found\n")
    empty = phoebe("status", "-n", namespace, "-o", "json", kubeconfig=cluster.kubeconfig)
    assert (empty.code, doc(empty)["healthy"]) == (0, True)  # it exists, and holds nothing: fine


def test_empty_namespace_and_kind_slash_name(phoebe: PhoebeRunner, cluster: Cluster, namespace: str) -> None:
    """D11: `status -n ''` silently meant all namespaces; KIND/NAME works as in events and logs."""
    cluster.api.create(manifests.kustomization("web", namespace))
    empty = phoebe("status", "-n", "", kubeconfig=cluster.kubeconfig)
    assert empty.code == 2
    assert empty.stderr.startswith("phoebe: error: Invalid value for '-n': the namespace is empty")
    for args in (["ks/web", "-n", namespace], [f"ks/{namespace}/web"], ["ks", f"{namespace}/web"]):
        result = phoebe("status", *args, "-o", "json", kubeconfig=cluster.kubeconfig)
        assert [o["name"] for o in doc(result)["objects"]] == ["web"], args


# --- scenarios of its own ---------------------------------------------------------------------
def _status(api: Any, obj: dict[str, Any], status: dict[str, Any]) -> None:
    api.patch_status(obj, status)


def test_cycle_and_missing_dependencies(phoebe: PhoebeRunner, cluster: Cluster, namespace: str) -> None:
    api = cluster.api
    a = api.create(manifests.kustomization("a", namespace, depends_on=["b"]))
    b = api.create(manifests.kustomization("b", namespace, depends_on=["a"]))
    c = api.create(manifests.kustomization("c", namespace, depends_on=["ghost"]))
    _status(api, a, fluxstatus.dependency_not_ready_status(a, f"{namespace}/b"))
    _status(api, b, fluxstatus.dependency_not_ready_status(b, f"{namespace}/a"))
    _status(api, c, fluxstatus.dependency_not_ready_status(c, f"{namespace}/ghost"))

    result = phoebe("status", "-n", namespace, "-o", "json", kubeconfig=cluster.kubeconfig)

    objects = by_name(doc(result))
    assert objects[f"Kustomization/{namespace}/a"]["blockedBy"]["problem"] == "cycle"
    assert (
        objects[f"Kustomization/{namespace}/a"]["blockedBy"]["cause"]
        == "blocked by b ← blocked by a ← dependency cycle"
    )
    assert objects[f"Kustomization/{namespace}/c"]["blockedBy"]["problem"] == "missing"
    assert objects[f"Kustomization/{namespace}/c"]["blockedBy"]["cause"] == "blocked by ghost ← not found"
    tree = phoebe("status", "-n", namespace, kubeconfig=cluster.kubeconfig)
    # Kustomizations applied by no other are roots of their own
    assert [line.split()[1] for line in tree.lines] == [f"Kustomization/{namespace}/{n}" for n in ("a", "b", "c")]
    assert "blocked by ghost ← not found" in tree.lines[2]
    assert tree.code == 1


def test_unattached_objects_are_listed(phoebe: PhoebeRunner, cluster: Cluster, namespace: str) -> None:
    api = cluster.api
    parent = api.create(manifests.kustomization("parent", namespace))
    child = api.create(manifests.helm_release("child", namespace))
    stray = api.create(manifests.helm_release("stray", namespace))
    ready = fluxstatus.ready_status(parent)
    ready["inventory"] = {"entries": [{"id": f"{namespace}_child_helm.toolkit.fluxcd.io_HelmRelease", "v": "v2"}]}
    _status(api, parent, ready)
    _status(api, child, fluxstatus.ready_status(child))
    _status(api, stray, fluxstatus.ready_status(stray))

    result = phoebe("status", "-n", namespace, kubeconfig=cluster.kubeconfig)

    lines = [strip_ages(line) for line in result.lines]
    assert lines[0].startswith(f"✓ Kustomization/{namespace}/parent")
    assert lines[1].startswith(f"└── ✓ HelmRelease/{namespace}/child  3.7.3")
    assert "unattached (applied by no Kustomization)" in lines[2]
    assert f"HelmRelease/{namespace}/stray" in lines[3]
    assert result.code == 0


def test_progressing_is_not_healthy(phoebe: PhoebeRunner, cluster: Cluster, namespace: str) -> None:
    obj = cluster.api.create(manifests.kustomization("busy", namespace))
    _status(cluster.api, obj, fluxstatus.progressing_status(obj))
    result = phoebe("status", "-n", namespace, "-o", "json", kubeconfig=cluster.kubeconfig)
    assert result.code == 1
    assert by_name(doc(result))[f"Kustomization/{namespace}/busy"]["state"] == "progressing"


def test_watch_until_ready(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    api = cluster.api
    obj = api.create(manifests.kustomization("slow", namespace))
    _status(api, obj, fluxstatus.progressing_status(obj))

    def become_ready() -> None:
        time.sleep(1.5)
        _status(
            api,
            api.get("kustomize.toolkit.fluxcd.io/v1", "Kustomization", namespace, "slow"),
            fluxstatus.ready_status(obj),
        )

    threading.Thread(target=become_ready, daemon=True).start()
    env = dict(os.environ, HOME=str(tmp_path), KUBECONFIG=str(cluster.kubeconfig))
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "phoebe_cli", "status", "-n", namespace, "--watch", "--until-ready", "--timeout", "30s"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 15
    lines = done.stdout.splitlines()
    assert "… Kustomization/" in lines[0] and "slow" in lines[0]  # first: progressing
    assert "✓ Kustomization/" in lines[-1] and "slow" in lines[-1]  # then: the change to ready


def test_watch_times_out_with_6(phoebe: PhoebeRunner, cluster: Cluster, namespace: str) -> None:
    obj = cluster.api.create(manifests.kustomization("stuck", namespace))
    _status(cluster.api, obj, fluxstatus.failed_status(obj, reason="X", message="broken"))
    result = phoebe(
        "status",
        "-n",
        namespace,
        "--watch",
        "--until-ready",
        "--timeout",
        "1s",
        "-o",
        "json",
        kubeconfig=cluster.kubeconfig,
    )
    assert result.code == 6
    assert result.stderr == "phoebe: error: not everything was ready after 1s\n"


def test_older_crd_set(phoebe: PhoebeRunner, older_cluster: Cluster) -> None:
    api = older_cluster.api
    namespace = f"t-status-older-{os.getpid()}"
    api.ensure_namespace(namespace)
    obj = api.create(manifests.kustomization("old", namespace, api_version="kustomize.toolkit.fluxcd.io/v1beta2"))
    api.patch_status(obj, fluxstatus.ready_status(obj))
    result = phoebe("status", "-n", namespace, "-o", "json", kubeconfig=older_cluster.kubeconfig)
    assert result.code == 0, result.stderr
    assert [o["name"] for o in doc(result)["objects"]] == ["old"]


def test_service_account_allowed_in_some_namespaces(
    phoebe: PhoebeRunner, cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    api = cluster.api
    obj = api.create(manifests.kustomization("mine", namespace))
    api.patch_status(obj, fluxstatus.ready_status(obj))
    rules = [
        {
            "apiGroups": [
                "kustomize.toolkit.fluxcd.io",
                "helm.toolkit.fluxcd.io",
                "source.toolkit.fluxcd.io",
                "external-secrets.io",
            ],
            "resources": ["*"],
            "verbs": ["get", "list", "watch"],
        }
    ]
    api.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "reader", "namespace": namespace},
            "rules": rules,
        }
    )
    api.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "reader", "namespace": namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "limited", "namespace": namespace}],
        }
    )
    kubeconfig = cluster.kubeconfig_with_token(tmp_path, api.service_account_token(namespace, "limited"), "limited")

    narrowed = phoebe("status", "-n", namespace, "-o", "json", kubeconfig=kubeconfig)
    assert narrowed.code == 0, narrowed.stderr
    assert [o["name"] for o in doc(narrowed)["objects"]] == ["mine"]

    everywhere = phoebe("status", "-o", "json", kubeconfig=kubeconfig)
    assert everywhere.code == 4  # it may not list namespaces either: one clear line
    assert everywhere.stderr.startswith("phoebe: error: forbidden: cannot list ")
    assert "use -n NAMESPACE for one you may read" in everywhere.stderr
