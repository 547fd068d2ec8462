"""Helm's release storage as the real helm v3.19 writes it, read by phoebe (flux/helmstorage.py):
releases installed and upgraded with the real helm binary against the real API server."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from phoebe_cli.flux.helmstorage import current_secret, decode_release, release_selector
from tests.conftest import Cluster

pytestmark = pytest.mark.cluster

CHART = {
    "Chart.yaml": "apiVersion: v2\nname: web\nversion: 1.0.0\nappVersion: '1.0'\n",
    "values.yaml": "image: ghcr.io/example/web:1.0.0\npassword: hunter2\n",
    "templates/cm.yaml": (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\ndata:\n  image: {{ .Values.image }}\n"
    ),
    "templates/secret.yaml": (
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {{ .Release.Name }}\n"
        "stringData:\n  password: {{ .Values.password }}\n"
    ),
}


def _helm(cluster: Cluster, *args: str) -> str:
    from tests.cluster.build import ensure_program, helm_program

    result = subprocess.run(
        [str(ensure_program(helm_program())), "--kubeconfig", str(cluster.kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _chart(tmp_path: Path) -> Path:
    for relative, text in CHART.items():
        (tmp_path / "web" / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "web" / relative).write_text(text)
    return tmp_path / "web"


def test_the_deployed_revision_as_helm_wrote_it(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    chart = _chart(tmp_path)
    _helm(cluster, "install", "web", str(chart), "-n", namespace)
    _helm(cluster, "upgrade", "web", str(chart), "-n", namespace, "--set", "image=ghcr.io/example/web:1.1.0")

    secrets = cluster.api.list("v1", "Secret", namespace, labelSelector=release_selector("web"))
    current, last = current_secret(secrets)

    assert current is not None and current is last
    stored = decode_release(current)
    assert (stored.name, stored.namespace, stored.revision, stored.status) == ("web", namespace, 2, "deployed")
    assert (stored.chart, stored.chart_version, stored.app_version) == ("web", "1.0.0", "1.0")
    assert stored.manifest.strip() == _helm(cluster, "get", "manifest", "web", "-n", namespace).strip()
    assert "image: ghcr.io/example/web:1.1.0" in stored.manifest
    # the other revision is superseded: not the one an upgrade starts from
    revisions = {decode_release(s).revision: decode_release(s).status for s in secrets}
    assert revisions == {1: "superseded", 2: "deployed"}


def test_a_failed_upgrade_leaves_the_deployed_revision_current(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    chart = _chart(tmp_path)
    _helm(cluster, "install", "web", str(chart), "-n", namespace)
    # an object the server refuses (an invalid name) fails the upgrade: revision 2 is "failed"
    (chart / "templates" / "bad.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Not_Valid\n")
    from tests.cluster.build import ensure_program, helm_program

    helm = [str(ensure_program(helm_program())), "--kubeconfig", str(cluster.kubeconfig)]
    failed = subprocess.run(
        [*helm, "upgrade", "web", str(chart), "-n", namespace],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert failed.returncode != 0

    current, last = current_secret(cluster.api.list("v1", "Secret", namespace, labelSelector=release_selector("web")))

    assert current is not None and last is not None
    assert (decode_release(current).revision, decode_release(current).status) == (1, "deployed")
    assert (decode_release(last).revision, decode_release(last).status) == (2, "failed")
