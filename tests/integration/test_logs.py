"""`phoebe logs` through the real API server's pods/log, served by a kwok node from fixture log
files (the cases real controllers do not produce on demand)."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.kwok import KwokNode
from tests.conftest import Cluster, PhoebeRunner
from tests.support import manifests

pytestmark = pytest.mark.cluster

T0 = dt.datetime(2026, 11, 26, 10, 0, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="session")
def kwok(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KwokNode]:
    node = KwokNode(cluster.plane, tmp_path_factory.mktemp("kwok"), node_name="phoebe-logs-node").start()
    try:
        yield node
    finally:
        node.stop()


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def record(
    seconds: float,
    level: str,
    msg: str,
    kind: str | None = None,
    namespace: str | None = None,
    name: str | None = None,
    **extra: Any,
) -> str:
    doc: dict[str, Any] = {
        "level": level,
        "ts": at(seconds).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "msg": msg,
    }
    if kind:
        doc.update(
            {
                "controllerKind": kind,
                kind: {"name": name, "namespace": namespace},
                "namespace": namespace,
                "name": name,
                "reconcileID": "r",
            }
        )
    doc.update(extra)
    return json.dumps(doc)


class Controllers:
    """Flux controller Deployments with one Pod each on the kwok node, in a namespace of the test."""

    def __init__(self, cluster: Cluster, node: KwokNode, namespace: str) -> None:
        self.api, self.node, self.namespace = cluster.api, node, namespace
        self.pods: dict[str, str] = {}

    def add(self, name: str, *, pod: str | None = None, running: bool = True) -> str:
        deployment = manifests.flux_controller_deployment(name, self.namespace)
        self.api.apply(deployment)
        pod_name = pod or f"{name}-7d9f8c6b5-abcde"
        if running:
            self.node.run_pod(self.namespace, pod_name, labels={"app": name})
        else:  # not bound to a node: it stays Pending
            self.api.create(
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": pod_name, "namespace": self.namespace, "labels": {"app": name}},
                    "spec": {"containers": [{"name": "manager", "image": "x"}]},
                }
            )
        self.pods[name] = pod_name
        return pod_name

    def write(self, name: str, *lines: tuple[float, str]) -> None:
        for seconds, line in lines:
            self.node.write_log(self.namespace, self.pods[name], line, at=at(seconds))


@pytest.fixture
def controllers(cluster: Cluster, kwok: KwokNode, namespace: str) -> Controllers:
    return Controllers(cluster, kwok, namespace)


def run(phoebe: PhoebeRunner, cluster: Cluster, namespace: str, *args: str):  # type: ignore[no-untyped-def]
    return phoebe("logs", "--flux-namespace", namespace, *args, kubeconfig=cluster.kubeconfig)


def test_merged_in_time_order_across_controllers(
    phoebe: PhoebeRunner, cluster: Cluster, namespace: str, controllers: Controllers
) -> None:
    controllers.add("kustomize-controller")
    controllers.add("helm-controller")
    controllers.write(
        "kustomize-controller",
        (1, record(1, "info", "first", "Kustomization", "apps", "web")),
        (3, record(3, "info", "third", "Kustomization", "apps", "web")),
    )
    controllers.write(
        "helm-controller",
        (2, record(2, "info", "second", "HelmRelease", "apps", "web")),
        (4, record(4, "info", "fourth", "HelmRelease", "apps", "web")),
    )

    result = run(phoebe, cluster, namespace)

    assert result.code == 0, result.stderr
    assert result.lines == [
        "10:00:01.000 info  kustomize ks/apps/web  first",
        "10:00:02.000 info  helm      hr/apps/web  second",
        "10:00:03.000 info  kustomize ks/apps/web  third",
        "10:00:04.000 info  helm      hr/apps/web  fourth",
    ]


def test_filters(phoebe: PhoebeRunner, cluster: Cluster, namespace: str, controllers: Controllers) -> None:
    controllers.add("kustomize-controller")
    controllers.add("helm-controller")
    controllers.write(
        "kustomize-controller",
        (1, record(1, "info", "web applied", "Kustomization", "apps", "web")),
        (2, record(2, "debug", "web details", "Kustomization", "apps", "web")),
        (3, record(3, "error", "db failed", "Kustomization", "data", "db", error="boom")),
        (4, record(4, "info", "other web", "Kustomization", "other", "web")),
    )
    controllers.write("helm-controller", (5, record(5, "info", "release ok", "HelmRelease", "apps", "web")))

    def messages(*args: str) -> list[str]:
        result = run(phoebe, cluster, namespace, "-o", "json", *args)
        assert result.code == 0, result.stderr
        return [json.loads(line)["msg"] for line in result.lines]

    assert messages() == ["web applied", "db failed", "other web", "release ok"]  # info: no debug
    assert messages("--level", "debug") == ["web applied", "web details", "db failed", "other web", "release ok"]
    assert messages("--level", "error") == ["db failed"]
    assert messages("ks") == ["web applied", "db failed", "other web"]  # only kustomize-controller is read
    assert messages("Kustomization/web") == ["web applied", "other web"]  # any namespace
    assert messages("ks/apps/web") == ["web applied"]
    assert messages("ks/web", "-n", "other") == ["other web"]
    assert messages("-n", "apps") == ["web applied", "release ok"]
    assert messages("--controller", "helm") == ["release ok"]
    assert messages("--grep", "failed") == ["db failed"]
    unknown = run(phoebe, cluster, namespace, "pods/x")
    assert unknown.code == 2


def test_raw_and_malformed_lines_and_multiline_errors(
    phoebe: PhoebeRunner, cluster: Cluster, namespace: str, controllers: Controllers
) -> None:
    controllers.add("kustomize-controller")
    controllers.write(
        "kustomize-controller",
        (1, "flag provided but not defined: -bogus"),
        (2, '{"level": "info", "msg": "truncated'),
        (
            3,
            record(
                3,
                "error",
                "Reconciler error",
                "Kustomization",
                "apps",
                "web",
                error="build failed:\naccumulating resources: missing\n",
            ),
        ),
        (4, "panic: runtime error: invalid memory address"),
        (5, "goroutine 1 [running]:"),
        (6, "\tgithub.com/fluxcd/kustomize-controller/internal/controller.(*Reconciler).Reconcile(...)"),
        (7, record(7, "info", "recovered", "Kustomization", "apps", "web")),
    )

    text = run(phoebe, cluster, namespace)
    assert text.code == 0
    indent = " " * (12 + 1 + 5 + 1 + len("kustomize") + 1)
    assert text.lines == [
        "10:00:01.000 -     kustomize flag provided but not defined: -bogus",
        '10:00:02.000 -     kustomize {"level": "info", "msg": "truncated',
        "10:00:03.000 error kustomize ks/apps/web  Reconciler error: build failed:",
        f"{indent}accumulating resources: missing",
        f"{indent}panic: runtime error: invalid memory address",
        f"{indent}goroutine 1 [running]:",
        f"{indent}github.com/fluxcd/kustomize-controller/internal/controller.(*Reconciler).Reconcile(...)",
        "10:00:07.000 info  kustomize ks/apps/web  recovered",
    ]
    # the stack trace stays with its error when filtering by level
    errors = run(phoebe, cluster, namespace, "--level", "error", "-o", "raw")
    assert errors.lines == [
        json.loads(json.dumps(errors.lines[0])),
        "panic: runtime error: invalid memory address",
        "goroutine 1 [running]:",
        "\tgithub.com/fluxcd/kustomize-controller/internal/controller.(*Reconciler).Reconcile(...)",
    ]
    assert json.loads(errors.lines[0])["msg"] == "Reconciler error"
    as_json = [json.loads(line) for line in run(phoebe, cluster, namespace, "-o", "json").lines]
    assert as_json[0] == {
        "ts": "2026-11-26T10:00:01.000000000Z",
        "raw": "flag provided but not defined: -bogus",
        "deployment": "kustomize-controller",
        "pod": controllers.pods["kustomize-controller"],
    }
    assert as_json[3]["continuation"] is True


def test_older_reconciler_kind_and_epoch_times(
    phoebe: PhoebeRunner, cluster: Cluster, namespace: str, controllers: Controllers
) -> None:
    controllers.add("kustomize-controller")
    old = {
        "level": "info",
        "ts": at(1).timestamp(),
        "msg": "old style",
        "reconciler kind": "Kustomization",
        "name": "web",
        "namespace": "apps",
    }
    controllers.write("kustomize-controller", (1, json.dumps(old)))
    result = run(phoebe, cluster, namespace, "ks/apps/web")
    assert result.lines == ["10:00:01.000 info  kustomize ks/apps/web  old style"]


def test_tail_and_since(phoebe: PhoebeRunner, cluster: Cluster, namespace: str, controllers: Controllers) -> None:
    controllers.add("kustomize-controller")
    now = dt.datetime.now(dt.UTC)
    for i in range(5):
        controllers.node.write_log(
            namespace,
            controllers.pods["kustomize-controller"],
            json.dumps({"level": "info", "ts": (now - dt.timedelta(minutes=10 - i)).isoformat(), "msg": f"line {i}"}),
            at=now - dt.timedelta(minutes=10 - i),
        )

    def messages(*args: str) -> list[str]:
        return [json.loads(line)["msg"] for line in run(phoebe, cluster, namespace, "-o", "json", *args).lines]

    assert messages("--tail", "2") == ["line 3", "line 4"]
    assert messages("--since", "7m30s") == ["line 3", "line 4"]
    since = (now - dt.timedelta(minutes=8, seconds=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert messages("--since-time", since) == ["line 2", "line 3", "line 4"]
    bad = run(phoebe, cluster, namespace, "--since-time", "yesterday")
    assert bad.code == 2


def test_follow_across_a_replaced_pod(
    cluster: Cluster, namespace: str, controllers: Controllers, tmp_path: Path
) -> None:
    controllers.add("kustomize-controller", pod="kustomize-controller-aaaaaaaaa-00001")
    controllers.write("kustomize-controller", (1, record(1, "info", "before", "Kustomization", "apps", "web")))
    env = dict(os.environ, HOME=str(tmp_path), KUBECONFIG=str(cluster.kubeconfig))
    process = subprocess.Popen(
        [sys.executable, "-m", "phoebe_cli", "logs", "-f", "--flux-namespace", namespace, "-o", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert json.loads(process.stdout.readline())["msg"] == "before"  # type: ignore[union-attr]
        controllers.write("kustomize-controller", (2, record(2, "info", "live", "Kustomization", "apps", "web")))
        assert json.loads(process.stdout.readline())["msg"] == "live"  # type: ignore[union-attr]
        # a rollout: the Pod is replaced by a new one, followed from its first line
        controllers.node.delete_pod(namespace, "kustomize-controller-aaaaaaaaa-00001")
        new = controllers.add("kustomize-controller", pod="kustomize-controller-bbbbbbbbb-00002")
        controllers.write(
            "kustomize-controller", (3, record(3, "info", "after restart", "Kustomization", "apps", "web"))
        )
        line = json.loads(process.stdout.readline())  # type: ignore[union-attr]
        assert (line["msg"], line["pod"]) == ("after restart", new)
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=15)
    assert process.returncode == 130
    assert err == ""  # Ctrl-C ends a follow quietly


def test_follow_prints_the_backlog_merged_in_time_order(
    cluster: Cluster, namespace: str, controllers: Controllers, tmp_path: Path
) -> None:
    """D5: `logs -f` printed each controller's backlog as its stream delivered it, out of time
    order across controllers (without -f it is merged)."""
    controllers.add("kustomize-controller")
    controllers.add("helm-controller")
    controllers.add("source-controller")
    controllers.write(
        "kustomize-controller",
        *((s, record(s, "info", f"ks {s}", "Kustomization", "apps", "web")) for s in (1, 4, 7, 10)),
    )
    controllers.write(
        "helm-controller", *((s, record(s, "info", f"hr {s}", "HelmRelease", "apps", "web")) for s in (2, 5, 8))
    )
    controllers.write(
        "source-controller", *((s, record(s, "info", f"git {s}", "GitRepository", "apps", "web")) for s in (3, 6, 9))
    )
    env = dict(os.environ, HOME=str(tmp_path), KUBECONFIG=str(cluster.kubeconfig))
    process = subprocess.Popen(
        [sys.executable, "-m", "phoebe_cli", "logs", "-f", "--flux-namespace", namespace, "-o", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        backlog = [json.loads(process.stdout.readline())["msg"] for _ in range(10)]  # type: ignore[union-attr]
        assert backlog == ["ks 1", "hr 2", "git 3", "ks 4", "hr 5", "git 6", "ks 7", "hr 8", "git 9", "ks 10"]
        # then it follows each stream on from its backlog: new lines, none twice
        controllers.write("helm-controller", (11, record(11, "info", "hr 11", "HelmRelease", "apps", "web")))
        assert json.loads(process.stdout.readline())["msg"] == "hr 11"  # type: ignore[union-attr]
        controllers.write("kustomize-controller", (12, record(12, "info", "ks 12", "Kustomization", "apps", "web")))
        assert json.loads(process.stdout.readline())["msg"] == "ks 12"  # type: ignore[union-attr]
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=15)
    assert process.returncode == 130
    assert (out, err) == ("", "")


def test_a_namespace_that_does_not_exist_exits_5(
    phoebe: PhoebeRunner, cluster: Cluster, namespace: str, controllers: Controllers
) -> None:
    """-n filters lines by their object's namespace: a typo printed nothing and exited 0."""
    controllers.add("kustomize-controller")
    controllers.write("kustomize-controller", (1, record(1, "info", "web", "Kustomization", "apps", "web")))
    typo = f"{namespace}-typo"
    result = run(phoebe, cluster, namespace, "-n", typo)
    assert (result.code, result.stdout, result.stderr) == (5, "", f"phoebe: error: namespace {typo} not found\n")
    quiet = run(phoebe, cluster, namespace, "-n", namespace)  # exists; no line about it: fine
    assert (quiet.code, quiet.stdout) == (0, "")
    both = run(phoebe, cluster, namespace, "ks", "web", "-o", "json")  # KIND NAME, as in sync and status
    assert [json.loads(line)["msg"] for line in both.lines] == ["web"]


def test_errors(
    phoebe: PhoebeRunner, cluster: Cluster, namespace: str, controllers: Controllers, tmp_path: Path
) -> None:
    missing = phoebe("logs", "--flux-namespace", "no-such-namespace", kubeconfig=cluster.kubeconfig)
    assert missing.code == 5
    assert missing.stderr.startswith(
        "phoebe: error: namespace no-such-namespace not found: is Flux installed elsewhere?"
    )
    empty = run(phoebe, cluster, namespace)
    assert empty.code == 5
    assert empty.stderr == (
        f"phoebe: error: no Flux controllers in namespace {namespace} "
        "(Deployments labelled app.kubernetes.io/part-of=flux)\n"
    )
    cluster.api.apply(manifests.flux_controller_deployment("helm-controller", namespace))
    no_pods = run(phoebe, cluster, namespace)
    assert (no_pods.code, no_pods.stderr) == (5, f"phoebe: error: no Pods for helm-controller in {namespace}\n")
    controllers.add("source-controller", running=False)
    not_started = run(phoebe, cluster, namespace, "--controller", "source")
    assert not_started.code == 1
    assert "Pod source-controller-7d9f8c6b5-abcde has not started (Pending); it has no log yet" in not_started.stderr
    no_such = run(phoebe, cluster, namespace, "--controller", "image-reflector")
    assert no_such.code == 5
    assert "no Flux controller for image-reflector" in no_such.stderr


def test_forbidden(
    phoebe: PhoebeRunner, cluster: Cluster, namespace: str, controllers: Controllers, tmp_path: Path
) -> None:
    controllers.add("kustomize-controller")
    api = cluster.api
    api.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "no-logs", "namespace": namespace},
            "rules": [
                {
                    "apiGroups": ["", "apps"],
                    "resources": ["pods", "deployments", "namespaces"],
                    "verbs": ["get", "list", "watch"],
                }
            ],
        }
    )
    api.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "no-logs", "namespace": namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "no-logs"},
            "subjects": [{"kind": "ServiceAccount", "name": "viewer", "namespace": namespace}],
        }
    )
    kubeconfig = cluster.kubeconfig_with_token(tmp_path, api.service_account_token(namespace, "viewer"), "viewer")
    result = phoebe("logs", "--flux-namespace", namespace, kubeconfig=kubeconfig)
    assert result.code == 4
    assert result.stderr.startswith(
        'phoebe: error: forbidden: pods "kustomize-controller-7d9f8c6b5-abcde" is forbidden'
    )
