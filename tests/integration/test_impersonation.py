"""Impersonation from the kubeconfig (``as``, ``as-uid``, ``as-groups``, ``as-user-extra``) on the
real API server with RBAC: every request, streams included, acts as the impersonated identity."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from phoebe_cli.errors import Forbidden, NotFound
from phoebe_cli.kube.client import KubeClient
from phoebe_cli.kube.config import load_cluster_access
from tests.conftest import Cluster, PhoebeRunner
from tests.support import fluxstatus, manifests

pytestmark = pytest.mark.cluster

KS = ("kustomize.toolkit.fluxcd.io/v1", "Kustomization")
FLUX_GROUPS = [
    "kustomize.toolkit.fluxcd.io",
    "helm.toolkit.fluxcd.io",
    "source.toolkit.fluxcd.io",
    "external-secrets.io",
]
T = TypeVar("T")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def kubeconfig(cluster: Cluster, path: Path, user: dict[str, Any]) -> Path:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "ctx",
        "clusters": [
            {
                "name": "c",
                "cluster": {"server": cluster.plane.server, "certificate-authority": str(cluster.plane.ca_file)},
            }
        ],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u"}}],
    }
    path.write_text(yaml.safe_dump(doc))
    return path


def certificate_user(cluster: Cluster, name: str, **extra: Any) -> dict[str, Any]:
    cert, key = cluster.plane.client_certificate(name)
    return {"client-certificate-data": b64(cert), "client-key-data": b64(key), **extra}


def bind(cluster: Cluster, name: str, user: str, rules: list[dict[str, Any]], namespace: str | None = None) -> None:
    """A Role (or ClusterRole without ``namespace``) with ``rules``, bound to ``user``."""
    kind = "Role" if namespace else "ClusterRole"
    metadata: dict[str, Any] = {"name": name, **({"namespace": namespace} if namespace else {})}
    cluster.api.apply(
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": metadata, "rules": rules}
    )
    cluster.api.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": f"{kind}Binding",
            "metadata": metadata,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": name},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        }
    )


def with_client(path: Path, body: Callable[[KubeClient], Awaitable[T]]) -> T:
    """Run ``body`` with phoebe's own client for the kubeconfig at ``path``."""

    async def main() -> T:
        async with KubeClient(load_cluster_access(str(path), None)) as kube:
            return await body(kube)

    return asyncio.run(main())


@pytest.fixture
def viewer(cluster: Cluster, namespace: str) -> str:
    """A read-only identity: get and list Flux objects in ``namespace`` (no watch, no patch)."""
    name = f"viewer-{namespace}"
    rules = [{"apiGroups": FLUX_GROUPS, "resources": ["*"], "verbs": ["get", "list"]}]
    bind(cluster, "viewer", name, rules, namespace)
    return name


def test_status_works_as_the_impersonated_reader_and_sync_is_refused(
    phoebe: PhoebeRunner, cluster: Cluster, namespace: str, viewer: str, tmp_path: Path
) -> None:
    api = cluster.api
    obj = api.create(manifests.kustomization("app", namespace))
    api.patch_status(obj, fluxstatus.ready_status(obj))
    ops = f"ops-{namespace}"
    # ops may patch Kustomizations itself, and may impersonate the viewer (and no one else)
    kustomizations = {"apiGroups": ["kustomize.toolkit.fluxcd.io"], "resources": ["kustomizations"]}
    bind(cluster, "ops", ops, [{**kustomizations, "verbs": ["get", "list", "watch", "patch"]}], namespace)
    impersonate = {"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"], "resourceNames": [viewer]}
    bind(cluster, f"{namespace}-ops-impersonates", ops, [impersonate])
    as_viewer = kubeconfig(cluster, tmp_path / "as-viewer", certificate_user(cluster, ops, **{"as": viewer}))
    as_ops = kubeconfig(cluster, tmp_path / "ops", certificate_user(cluster, ops))

    status = phoebe("status", "-n", namespace, "-o", "json", kubeconfig=as_viewer)
    assert status.code == 0, status.stderr
    assert [o["name"] for o in json.loads(status.stdout)["objects"]] == ["app"]

    before = api.get(*KS, namespace, "app")
    refused = phoebe("sync", "ks", "app", "-n", namespace, "--no-wait", kubeconfig=as_viewer)
    assert refused.code == 4, refused.stderr
    assert refused.stderr == (
        "phoebe: error: forbidden: you may not patch kustomizations (kustomize.toolkit.fluxcd.io) in the namespace "
        f'"{namespace}"; nothing was patched\n'
    )
    after = api.get(*KS, namespace, "app")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert "annotations" not in after["metadata"]

    # the same certificate without `as` may patch: the refusal above was the viewer's
    allowed = phoebe("sync", "ks", "app", "-n", namespace, "--no-wait", kubeconfig=as_ops)
    assert allowed.code == 0, allowed.stderr
    assert "reconcile.fluxcd.io/requestedAt" in api.get(*KS, namespace, "app")["metadata"]["annotations"]


def test_without_the_impersonate_permission_the_server_refuses_in_one_line(
    phoebe: PhoebeRunner, cluster: Cluster, namespace: str, viewer: str, tmp_path: Path
) -> None:
    nobody = f"nobody-{namespace}"
    path = kubeconfig(cluster, tmp_path / "kc", certificate_user(cluster, nobody, **{"as": viewer}))

    result = phoebe("status", "-n", namespace, kubeconfig=path)

    assert result.code == 4
    assert result.stdout == ""
    # Kubernetes 1.36 tries constrained impersonation after the classic `impersonate` verb,
    # and its message names the last check: cannot impersonate-on:user-info:get path "/apis"
    assert result.stderr.startswith(
        f'phoebe: error: forbidden: you may not act as "{viewer}": User "{nobody}" cannot impersonate'
    )
    assert len(result.stderr.splitlines()) == 1


def test_uid_groups_and_extra_reach_the_server(cluster: Cluster, tmp_path: Path) -> None:
    # keys with characters a header name cannot hold are percent-encoded, as client-go does
    extra = {"example.com/scopes": ["read", "write"], "Reason Given%": ["on call"], "ünï": ["x"]}
    user = {
        "token": cluster.plane.admin_token,
        "as": "jane",
        "as-uid": "uid-42",
        "as-groups": ["developers", "on-call"],
        "as-user-extra": extra,
    }
    path = kubeconfig(cluster, tmp_path / "kc", user)
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}

    async def who(kube: KubeClient) -> dict[str, Any]:
        return await kube.send_json("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", review)

    info = with_client(path, who)["status"]["userInfo"]

    assert info["username"] == "jane"
    assert info["uid"] == "uid-42"
    assert info["groups"] == ["developers", "on-call", "system:authenticated"]
    # header names are case-insensitive: the server lower-cases the ASCII letters of a key
    assert info["extra"] == {
        "example.com/scopes": ["read", "write"],
        "reason given%": ["on call"],
        "ünï": ["x"],
    }


def test_watches_and_log_streams_are_impersonated_too(
    cluster: Cluster, namespace: str, viewer: str, tmp_path: Path
) -> None:
    cluster.api.create(manifests.kustomization("app", namespace))
    admin = {"token": cluster.plane.admin_token}
    as_admin = kubeconfig(cluster, tmp_path / "admin", admin)
    as_viewer = kubeconfig(cluster, tmp_path / "viewer", {**admin, "as": viewer})
    watch = f"/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/{namespace}/kustomizations"
    log = f"/api/v1/namespaces/{namespace}/pods/no-such-pod/log"

    async def first_event(kube: KubeClient) -> str:
        async for line in kube.stream_lines(watch, params={"watch": True}):
            return line
        return ""

    async def follow_log(kube: KubeClient) -> None:
        async for _ in kube.stream_lines(log, params={"follow": True}):
            pass

    assert json.loads(with_client(as_admin, first_event))["type"] == "ADDED"
    with pytest.raises(Forbidden, match=f'User "{viewer}" cannot watch resource "kustomizations"'):
        with_client(as_viewer, first_event)
    with pytest.raises(NotFound):  # the admin may read logs; the pod is not there
        with_client(as_admin, follow_log)
    with pytest.raises(Forbidden, match=f'User "{viewer}" cannot get resource "pods/log"'):
        with_client(as_viewer, follow_log)


def test_the_as_flags_act_as_kubectls_do(
    phoebe: PhoebeRunner, cluster: Cluster, namespace: str, viewer: str, tmp_path: Path
) -> None:
    """`--as USER` (before or after the command) acts as USER, over a kubeconfig without `as`;
    `--as-group` replaces the groups; the server sees exactly the identity asked for."""
    api = cluster.api
    obj = api.create(manifests.kustomization("app", namespace))
    api.patch_status(obj, fluxstatus.ready_status(obj))
    ops = f"ops-{namespace}"
    kustomizations = {"apiGroups": ["kustomize.toolkit.fluxcd.io"], "resources": ["kustomizations"]}
    bind(cluster, "ops", ops, [{**kustomizations, "verbs": ["get", "list", "watch", "patch"]}], namespace)
    impersonate = [
        {"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"], "resourceNames": [viewer]},
        {"apiGroups": [""], "resources": ["groups"], "verbs": ["impersonate"], "resourceNames": ["auditors"]},
    ]
    bind(cluster, f"{namespace}-ops-impersonates-flags", ops, impersonate)
    as_ops = kubeconfig(cluster, tmp_path / "ops", certificate_user(cluster, ops))

    status = phoebe("--as", viewer, "status", "-n", namespace, "-o", "json", kubeconfig=as_ops)
    refused = phoebe("sync", "ks", "app", "-n", namespace, "--no-wait", "--as", viewer, kubeconfig=as_ops)
    group_refused = phoebe("--as", viewer, "--as-group", "admins", "status", "-n", namespace, kubeconfig=as_ops)
    grouped = phoebe("--as", viewer, "--as-group", "auditors", "status", "-n", namespace, kubeconfig=as_ops)

    assert status.code == 0, status.stderr
    assert [o["name"] for o in json.loads(status.stdout)["objects"]] == ["app"]
    assert refused.code == 4, refused.stderr
    assert "annotations" not in api.get(*KS, namespace, "app")["metadata"]
    assert group_refused.code == 4  # ops may not act as a member of admins
    assert group_refused.stderr.startswith("phoebe: error: forbidden: ")
    assert grouped.code == 0, grouped.stderr
