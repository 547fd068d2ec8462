"""``phoebe build`` with a cluster there: the renders read the real API server as helm-controller
does — its version and served APIs (``.Capabilities``), valuesFrom and chart credentials the
checkout lacks or holds SOPS-encrypted — and a cluster that does not answer, or refuses a read,
is one line while the rest renders."""

from __future__ import annotations

import base64
import json
import socket
from pathlib import Path
from typing import Any

import pytest
import yaml

from phoebe_cli.flux.secrets import MASK
from tests.conftest import Cluster, PhoebeRunner
from tests.repo.conftest import GIT_REPOSITORY, RepoWriter, flux_ks, kustomization_yaml, served_widgets
from tests.repo.test_build import _from_repository, _helm_repository, _hr
from tests.support.chartrepo import ChartRepository

pytestmark = [pytest.mark.repo, pytest.mark.cluster]


@pytest.fixture(autouse=True)
def helm(helm_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PHOEBE_HELM", str(helm_path))
    return helm_path


PROBE_CHART = {
    "charts/probe/Chart.yaml": "apiVersion: v2\nname: probe\nversion: 0.1.0\n",
    "charts/probe/values.yaml": "token: none\nplain: none\n",
    "charts/probe/templates/seen.yaml": (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-seen\ndata:\n"
        "  kubeVersion: {{ .Capabilities.KubeVersion.Version | quote }}\n"
        '  fluxServed: {{ .Capabilities.APIVersions.Has "source.toolkit.fluxcd.io/v1/GitRepository" | quote }}\n'
        '  fluxGroup: {{ .Capabilities.APIVersions.Has "kustomize.toolkit.fluxcd.io/v1" | quote }}\n'
        "  token: {{ .Values.token | quote }}\n"
        "  plain: {{ .Values.plain | quote }}\n"
    ),
}
TOKEN = "tok-correct-horse-battery"  # only on the cluster: never printed
SOPS_TOKEN = "sops-decrypted-staple"


def _local(name: str, namespace: str, values_from: list[dict[str, str]]) -> str:
    spec = (
        "chart:\n  spec:\n    chart: ./charts/probe\n    sourceRef:\n"
        "      kind: GitRepository\n      name: flux-system\n      namespace: flux-system\n"
    )
    if values_from:
        spec += "valuesFrom:\n" + "".join(
            f"  - kind: {v['kind']}\n    name: {v['name']}\n    valuesKey: {v.get('key', 'values.yaml')}\n"
            for v in values_from
        )
    return _hr(name, namespace, spec)


def _sops_secret(name: str, namespace: str) -> str:
    """A Secret as SOPS writes it in Git: its values encrypted, a top-level ``sops`` map."""
    return (
        f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: {namespace}\n"
        "stringData:\n  values.yaml: ENC[AES256_GCM,data:Zm9v,iv:YmFy,tag:YmF6,type:str]\n"
        "sops:\n  lastmodified: '2026-01-01T00:00:00Z'\n  mac: ENC[AES256_GCM,data:cXV4,type:str]\n"
        "  version: 3.9.0\n"
    )


def _checkout(write_repo: RepoWriter, apps: dict[str, str]) -> Path:
    files = {"kubernetes/flux/cluster.yaml": GIT_REPOSITORY + "---\n" + flux_ks("apps", "./apps")}
    files["apps/kustomization.yaml"] = kustomization_yaml(*apps)
    files.update({f"apps/{name}": text for name, text in apps.items()})
    files.update(PROBE_CHART)
    return write_repo(files)


def _secret(namespace: str, name: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


def _seen(stdout: str, release: str) -> dict[str, str]:
    for doc in yaml.safe_load_all(stdout):
        if doc and doc.get("kind") == "ConfigMap" and doc["metadata"]["name"] == f"{release}-seen":
            return dict(doc["data"])
    raise AssertionError(f"no {release}-seen ConfigMap in the output")


def _server_version(cluster: Cluster) -> str:
    import ssl

    import httpx

    with httpx.Client(verify=ssl.create_default_context(cafile=str(cluster.plane.ca_file))) as client:
        return str(client.get(f"{cluster.plane.server}/version").json()["gitVersion"])


def test_renders_see_the_cluster_and_read_what_the_checkout_lacks(
    cluster: Cluster,
    namespace: str,
    write_repo: RepoWriter,
    phoebe: PhoebeRunner,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cluster.api.apply(_secret(namespace, "probe-values", {"values.yaml": f"token: {TOKEN}\n"}))
    cluster.api.apply(_secret(namespace, "sops-values", {"values.yaml": f"plain: {SOPS_TOKEN}\n"}))
    root = _checkout(
        write_repo,
        {
            "probe.yaml": _local(
                "probe",
                namespace,
                [{"kind": "Secret", "name": "probe-values"}, {"kind": "Secret", "name": "sops-values"}],
            ),
            "sops.yaml": _sops_secret("sops-values", namespace),
        },
    )
    # the kubeconfig kubectl would use, named by nobody: the build reads that cluster
    monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig))
    version = _server_version(cluster)

    result = phoebe("build", "hr", "--repo", str(root))

    assert result.code == 0, result.stderr
    seen = _seen(result.stdout, "probe")
    assert seen == {
        "kubeVersion": version,
        "fluxServed": "true",
        "fluxGroup": "true",
        "token": MASK,  # from a Secret: masked wherever the chart put it
        "plain": MASK,  # the SOPS Secret's decrypted copy, the cluster's
    }
    assert TOKEN not in result.stdout + result.stderr and SOPS_TOKEN not in result.stdout + result.stderr
    document = json.loads(phoebe("build", "hr", "--repo", str(root), "-o", "json").stdout)
    read = document["cluster"]
    assert (read["kubeVersion"], read["objectsRead"]) == (version, 2)
    assert read["apiVersions"] > 50
    assert result.stderr.splitlines() == [
        f"rendered for context {read['context']!r}: Kubernetes {version}, {read['apiVersions']} API versions; "
        "2 ConfigMap/Secret(s) the checkout lacks read there"
    ]
    assert document["helmReleases"][0]["state"] == "rendered"

    # Without the cluster: helm's defaults, and the values the checkout cannot give are unknown.
    alone = phoebe("build", "hr", "--repo", str(root), "--no-cluster-read")
    assert alone.code == 1
    assert _seen(alone.stdout, "probe") | {"token": "?", "plain": "?"} == {
        "kubeVersion": "v1.34.0",
        "fluxServed": "false",
        "fluxGroup": "false",
        "token": "?",
        "plain": "?",
    }
    assert alone.stderr.splitlines()[0].startswith(f"error: HelmRelease {namespace}/probe: partial: ")
    assert "--kube-version wins" not in alone.stderr
    # --kube-version wins over the cluster's; --api-versions add to its APIs
    pinned = phoebe("build", "hr", "--repo", str(root), "--kube-version", "v1.31.2", "--api-versions", "example.com/v9")
    assert pinned.code == 0
    assert _seen(pinned.stdout, "probe")["kubeVersion"] == "v1.31.2"
    assert (
        json.loads(phoebe("build", "hr", "--repo", str(root), "--api-versions", "example.com/v9", "-o", "json").stdout)[
            "cluster"
        ]["apiVersions"]
        == read["apiVersions"] + 1
    )


def test_chart_credentials_from_the_cluster(
    cluster: Cluster,
    namespace: str,
    write_repo: RepoWriter,
    phoebe: PhoebeRunner,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    binaries_home: str,
) -> None:
    served = served_widgets(monkeypatch, binaries_home, tmp_path / "served", "stable", "1.2.0")
    with ChartRepository(served, auth=("reader", "pa55word")) as server:
        url = f"{server.base_url}/stable"
        root = _checkout(
            write_repo,
            {
                # the Secret is on the cluster only (created there by hand, or by an ExternalSecret)
                "repos.yaml": _helm_repository("stable", namespace, url, "stable-auth")
                + "---\n"
                + _helm_repository("sealed", namespace, url, "sealed-auth"),
                "sealed-auth.yaml": _sops_secret("sealed-auth", namespace),
                "web.yaml": _hr("web", namespace, _from_repository("widgets", "^1", "stable")),
                "sealed.yaml": _hr("sealed", namespace, _from_repository("widgets", "1.2.0", "sealed")),
            },
        )
        offline = phoebe("build", "hr", "--repo", str(root), "-o", "json")
        assert offline.code == 1
        reasons = {r["name"]: r.get("reason") for r in json.loads(offline.stdout)["helmReleases"]}
        assert reasons == {
            "sealed": f"HelmRepository {namespace}/sealed: credentials Secret {namespace}/sealed-auth is "
            "SOPS-encrypted (not known offline)",
            "web": f"HelmRepository {namespace}/stable: credentials Secret {namespace}/stable-auth is neither "
            "in the checkout nor given",
        }

        for name in ("stable-auth", "sealed-auth"):
            cluster.api.apply(_secret(namespace, name, {"username": "reader", "password": "pa55word"}))
        result = phoebe("build", "hr", "--repo", str(root), "-o", "json", kubeconfig=cluster.kubeconfig)

    assert result.code == 0, result.stderr
    releases = {r["name"]: (r["state"], r["chart"]["version"]) for r in json.loads(result.stdout)["helmReleases"]}
    assert releases == {"sealed": ("rendered", "1.2.0"), "web": ("rendered", "1.2.0")}
    assert "pa55word" not in result.stdout + result.stderr


def test_a_secret_the_cluster_refuses_makes_only_its_release_partial(
    cluster: Cluster, namespace: str, write_repo: RepoWriter, phoebe: PhoebeRunner
) -> None:
    cluster.api.apply(_secret(namespace, "probe-values", {"values.yaml": f"token: {TOKEN}\n"}))
    root = _checkout(
        write_repo,
        {
            "probe.yaml": _local("probe", namespace, [{"kind": "Secret", "name": "probe-values"}]),
            "plain.yaml": _local("plain", namespace, []),
        },
    )

    # someone who may read /version and discovery (every authenticated user may), not Secrets
    result = phoebe("build", "hr", "--repo", str(root), "--as", "someone", kubeconfig=cluster.kubeconfig)

    assert result.code == 1
    assert _seen(result.stdout, "plain")["fluxServed"] == "true"
    assert f"# HelmRelease {namespace}/probe" not in result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: HelmRelease {namespace}/probe: partial: Secret {namespace}/probe-values cannot be read on the "
        'cluster: forbidden: secrets "probe-values" is forbidden: User "someone" cannot get resource "secrets" '
        f'in API group "" in the namespace "{namespace}"'
    ]
    assert TOKEN not in result.stdout + result.stderr


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_cluster_that_does_not_answer(
    cluster: Cluster, write_repo: RepoWriter, phoebe: PhoebeRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    root = _checkout(write_repo, {"plain.yaml": _local("plain", "apps", [])})
    gone = tmp_path / "gone.yaml"
    document = yaml.safe_load(cluster.kubeconfig.read_text())
    server = f"https://127.0.0.1:{_closed_port()}"
    document["clusters"][0]["cluster"]["server"] = server
    gone.write_text(yaml.safe_dump(document))

    # the kubeconfig's cluster, named by nobody: a warning, and the build goes on without it
    monkeypatch.setenv("KUBECONFIG", str(gone))
    quiet = phoebe("build", "hr", "--repo", str(root))
    assert quiet.code == 0
    assert _seen(quiet.stdout, "plain")["kubeVersion"] == "v1.34.0"
    [warning] = quiet.stderr.splitlines()
    assert warning.startswith("warning: cluster not read (")
    assert warning.endswith("); rendering with helm's defaults and the checkout's Secrets")

    # named with --kubeconfig (or --context): that cluster or nothing, as in every command
    named = phoebe("build", "hr", "--repo", str(root), kubeconfig=gone)
    assert (named.code, named.stdout) == (3, "")
    [line] = named.stderr.splitlines()
    assert line.startswith("phoebe: error: ") and server in line

    # a build of Kustomizations alone never asks a cluster; nor does --offline
    assert phoebe("build", "ks", "--repo", str(root), kubeconfig=gone).code == 0
    assert phoebe("build", "hr", "--repo", str(root), "--offline", kubeconfig=gone).code == 0


def _helm_controller(namespace: str, args: list[str]) -> dict[str, Any]:
    labels = {"app": "helm-controller"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "helm-controller", "namespace": namespace},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [{"name": "manager", "image": "ghcr.io/fluxcd/helm-controller:v1.6.4", "args": args}]
                },
            },
        },
    }


@pytest.mark.parametrize(("args", "hook_labelled"), [([], True), (["--feature-gates=UseHelm3Defaults=true"], False)])
def test_hooks_are_post_rendered_as_the_clusters_helm_controller_does(
    cluster: Cluster,
    namespace: str,
    write_repo: RepoWriter,
    phoebe: PhoebeRunner,
    args: list[str],
    hook_labelled: bool,
) -> None:
    """helm-controller v1.6 post-renders hooks (Helm 4's Combined) unless it runs with the
    UseHelm3Defaults gate (Helm 3's NoHooks): the build reads its Deployment (here in a namespace
    of the test's own, given as --flux-namespace)."""
    from tests.repo.test_build import _chart_files, _local_chart

    cluster.api.apply(_helm_controller(namespace, args))
    files = {
        "kubernetes/flux/cluster.yaml": GIT_REPOSITORY + "---\n" + flux_ks("apps", "./apps"),
        "apps/kustomization.yaml": kustomization_yaml("hr.yaml"),
        "apps/hr.yaml": _hr("widgets", "apps", _local_chart()),
        **_chart_files("widgets"),
    }
    root = write_repo(files)

    result = phoebe(
        "build", "hr", "--repo", str(root), "-o", "json", "--flux-namespace", namespace, kubeconfig=cluster.kubeconfig
    )

    assert result.code == 0, result.stderr
    [release] = json.loads(result.stdout)["helmReleases"]
    hook = next(o for o in release["objects"] if o["kind"] == "Job")
    deployment = next(o for o in release["objects"] if o["kind"] == "Deployment")
    assert "helm.toolkit.fluxcd.io/name" in deployment["metadata"]["labels"]
    assert ("helm.toolkit.fluxcd.io/name" in (hook["metadata"].get("labels") or {})) is hook_labelled
