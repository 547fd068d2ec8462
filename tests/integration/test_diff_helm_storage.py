"""Helm's release storage as the real helm v3.19 writes it, read by phoebe (flux/helmstorage.py):
releases installed and upgraded with the real helm binary against the real API server."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from phoebe_cli.flux.helmstorage import current_secret, decode_release, release_selector
from tests.conftest import Cluster, PhoebeRunner

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


def _helm_binary() -> str:
    """The cached helm (PHOEBE_HELM once a test set it: its own XDG_CACHE_HOME holds none)."""
    import os

    from tests.cluster.build import ensure_program, helm_program

    return os.environ.get("PHOEBE_HELM") or str(ensure_program(helm_program()))


def _helm(cluster: Cluster, *args: str) -> str:
    result = subprocess.run(
        [_helm_binary(), "--kubeconfig", str(cluster.kubeconfig), *args],
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
    helm = [_helm_binary(), "--kubeconfig", str(cluster.kubeconfig)]
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


# --- phoebe diff against what Helm deployed ----------------------------------------------------------
# helm-controller post-renders every object with its origin labels before Helm stores the
# manifest; a helm --post-renderer adds the same here, so the stored manifest is what the
# controller would have stored.
POST_RENDERER = """\
#!{python}
import sys, yaml
docs = [d for d in yaml.safe_load_all(sys.stdin) if d]
for d in docs:
    d.setdefault("metadata", {{}}).setdefault("labels", {{}}).update(
        {{"helm.toolkit.fluxcd.io/name": "{name}", "helm.toolkit.fluxcd.io/namespace": "{namespace}"}}
    )
sys.stdout.write(yaml.safe_dump_all(docs))
"""
SECRET_OLD, SECRET_NEW = "old-hunter2", "new-correct-horse"
OWNER = "kustomize.toolkit.fluxcd.io"


def _web_chart(root: Path, version: str, *, service: bool) -> None:
    from tests.support.webchart import web_chart_files

    (root / "charts/web/templates/service.yaml").unlink(missing_ok=True)
    for relative, text in web_chart_files("charts/web", version, service=service).items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)


def _helmrelease(name: str, namespace: str, values: dict[str, Any]) -> dict[str, Any]:
    release: dict[str, Any] = {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "interval": "1h",
            "chart": {"spec": {"chart": "./charts/web", "sourceRef": {"kind": "GitRepository", "name": "home-ops"}}},
            "values": values,
        },
    }
    if name == "other":  # suspended: still compared, and said so
        release["spec"]["suspend"] = True
    return release


def _checkout(root: Path, namespace: str, version: str, values: dict[str, Any], *, service: bool) -> None:
    import yaml

    from tests.support import manifests

    _web_chart(root, version, service=service)
    releases = [_helmrelease("web", namespace, values), _helmrelease("other", namespace, {"replicas": 2})]
    (root / "apps").mkdir(parents=True, exist_ok=True)
    (root / "apps/releases.yaml").write_text(yaml.safe_dump_all(releases, sort_keys=False))
    (root / "apps/kustomization.yaml").write_text("resources:\n  - releases.yaml\n")
    ks = {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": "apps", "namespace": namespace},
        "spec": {
            "interval": "1h",
            "path": "./apps",
            "prune": True,
            "sourceRef": {"kind": "GitRepository", "name": "home-ops"},
        },
    }
    (root / "kubernetes/flux").mkdir(parents=True, exist_ok=True)
    (root / "kubernetes/flux/cluster.yaml").write_text(
        yaml.safe_dump_all([manifests.git_repository("home-ops", namespace), ks], sort_keys=False)
    )


def _applied_by_flux(cluster: Cluster, namespace: str, releases: list[dict[str, Any]]) -> None:
    """The Kustomization applied these HelmReleases (the kustomize side: unchanged)."""
    for release in releases:
        release["metadata"]["labels"] = {f"{OWNER}/name": "apps", f"{OWNER}/namespace": namespace}
        cluster.api.apply(release, manager="kustomize-controller")


def _applied_checkout(
    cluster: Cluster, tmp_path: Path, namespace: str, version: str, values: dict[str, Any], *, service: bool
) -> Path:
    """The checkout (chart ``version``, release web with ``values``, release other not installed),
    its HelmReleases applied by the Kustomization as they are."""
    checkout = tmp_path / "checkout"
    _checkout(checkout, namespace, version, values, service=service)
    _applied_by_flux(
        cluster, namespace, [_helmrelease("web", namespace, values), _helmrelease("other", namespace, {"replicas": 2})]
    )
    return checkout


def _helm_deploy(
    cluster: Cluster, tmp_path: Path, chart: Path, namespace: str, name: str, values: dict[str, Any]
) -> None:
    import json
    import sys

    renderer = tmp_path / f"post-render-{name}"
    renderer.write_text(POST_RENDERER.format(python=sys.executable, name=name, namespace=namespace))
    renderer.chmod(0o755)
    values_file = tmp_path / f"values-{name}.json"
    values_file.write_text(json.dumps(values))
    _helm(
        cluster,
        "upgrade",
        "--install",
        name,
        str(chart),
        "-n",
        namespace,
        "-f",
        str(values_file),
        "--post-renderer",
        str(renderer),
    )


@pytest.fixture(scope="session")
def binaries() -> tuple[Path, Path]:
    """helm and kustomize from the build cache, found before a test's isolated HOME is set."""
    from tests.cluster.build import ensure_program, helm_program, kustomize_program

    return ensure_program(helm_program()), ensure_program(kustomize_program())


@pytest.fixture
def helm_tools(binaries: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """phoebe runs the cached helm and kustomize, with a chart cache of the test's own."""
    monkeypatch.setenv("PHOEBE_HELM", str(binaries[0]))
    monkeypatch.setenv("PHOEBE_KUSTOMIZE", str(binaries[1]))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _installed(cluster: Cluster, tmp_path: Path, namespace: str, values: dict[str, Any]) -> None:
    """Release web installed from chart 1.0.0 with ``values`` (as helm-controller stores it), and
    the Flux source and Kustomization that apply the checkout's HelmReleases, Ready."""
    deployed = tmp_path / "deployed"
    _web_chart(deployed, "1.0.0", service=False)
    _installed_from(cluster, tmp_path, namespace, deployed, values)


def _installed_from(cluster: Cluster, tmp_path: Path, namespace: str, deployed: Path, values: dict[str, Any]) -> None:
    from tests.support import fluxstatus, manifests

    _helm_deploy(cluster, tmp_path, deployed / "charts/web", namespace, "web", values)
    source = cluster.api.create(manifests.git_repository("home-ops", namespace))
    cluster.api.patch_status(source, fluxstatus.ready_status(source))
    ks = cluster.api.create(manifests.kustomization("apps", namespace, source=("GitRepository", "home-ops")))
    cluster.api.patch_status(ks, fluxstatus.ready_status(ks))


def test_diff_predicts_what_the_next_upgrade_changes(
    helm_tools: None, cluster: Cluster, namespace: str, tmp_path: Path, phoebe: PhoebeRunner
) -> None:
    import json

    _installed(cluster, tmp_path, namespace, {"image": "ghcr.io/example/web:1.0.0", "password": SECRET_OLD})
    # the checkout: chart 1.1.0 (a Service added), a new image, 3 replicas, a new password
    new_values = {"image": "ghcr.io/example/web:1.1.0", "replicas": 3, "password": SECRET_NEW}
    checkout = _applied_checkout(cluster, tmp_path, namespace, "1.1.0", new_values, service=True)

    result = phoebe("diff", "-o", "json", "--repo", str(checkout), "-n", namespace, kubeconfig=cluster.kubeconfig)

    assert result.code == 1, result.stderr
    assert SECRET_OLD not in result.stdout + result.stderr and SECRET_NEW not in result.stdout + result.stderr
    (apps,) = json.loads(result.stdout)["kustomizations"]
    assert apps["objects"] == []  # the HelmRelease objects themselves are as the checkout has them
    releases = {r["name"]: r for r in apps["helmReleases"]}
    web = releases["web"]
    assert (web["chartBefore"], web["chartAfter"], web["note"]) == ("web 1.0.0", "web 1.1.0", None)
    changes = {(o["kind"], o["name"]): o for o in web["objects"]}
    assert changes[("Service", "web")]["change"] == "created"
    assert {(f["path"], f["before"], f["after"]) for f in changes[("Deployment", "web")]["fields"]} == {
        ("spec.replicas", 1, 3),
        ("spec.template.spec.containers[name=app].image", "ghcr.io/example/web:1.0.0", "ghcr.io/example/web:1.1.0"),
    }
    assert changes[("Secret", "web")]["secretKeys"] == {"password": "changed"}
    assert web["unchanged"] == 0
    other = releases["other"]
    assert other["note"] == (
        f"not installed yet (no Helm release {namespace}/other): every object is created; "
        "suspended: helm-controller upgrades nothing until it is resumed"
    )
    assert sorted((o["kind"], o["change"]) for o in other["objects"]) == [
        ("Deployment", "created"),
        ("Secret", "created"),
        ("Service", "created"),
    ]
    assert other["objects"][0]["namespace"] == namespace

    # helm-controller's upgrade and install, as predicted: then nothing is left to change
    _helm_deploy(cluster, tmp_path, checkout / "charts/web", namespace, "web", new_values)
    _helm_deploy(cluster, tmp_path, checkout / "charts/web", namespace, "other", {"replicas": 2})

    after = phoebe("diff", "--repo", str(checkout), "-n", namespace, kubeconfig=cluster.kubeconfig)

    assert after.code == 0, after.stdout + after.stderr
    assert after.stdout.splitlines()[-1].startswith("no differences")


SECRET_BY_HAND = "typed-by-hand"


def test_diff_shows_live_fields_the_upgrade_puts_back(
    helm_tools: None, cluster: Cluster, namespace: str, tmp_path: Path, phoebe: PhoebeRunner
) -> None:
    import base64
    import json

    values = {"image": "ghcr.io/example/web:1.0.0", "password": SECRET_OLD}
    _installed(cluster, tmp_path, namespace, values)
    # someone scales the Deployment and types a password on the cluster; the checkout bumps the image
    deployment = cluster.api.get("apps/v1", "Deployment", namespace, "web")
    cluster.api.merge_patch(deployment, {"spec": {"replicas": 5}}, manager="kubectl-edit")
    secret = cluster.api.get("v1", "Secret", namespace, "web")
    typed = base64.b64encode(SECRET_BY_HAND.encode()).decode()
    cluster.api.merge_patch(secret, {"data": {"password": typed}}, manager="kubectl-edit")
    new_values = {**values, "image": "ghcr.io/example/web:1.1.0"}
    checkout = _applied_checkout(cluster, tmp_path, namespace, "1.0.0", new_values, service=False)

    result = phoebe("diff", "-o", "json", "--repo", str(checkout), "-n", namespace, kubeconfig=cluster.kubeconfig)

    assert result.code == 1, result.stderr
    for value in (SECRET_OLD, SECRET_BY_HAND, base64.b64encode(SECRET_BY_HAND.encode()).decode()):
        assert value not in result.stdout + result.stderr
    (apps,) = json.loads(result.stdout)["kustomizations"]
    web = {r["name"]: r for r in apps["helmReleases"]}["web"]
    # the manifest comparison: only the image; the live objects: the hand edits going back too
    assert [(o["kind"], o["change"]) for o in web["objects"]] == [("Deployment", "changed")]
    assert web["failures"] == []
    live = {(o["kind"], o["name"]): o for o in web["live"]}
    assert set(live) == {("Deployment", "web"), ("Secret", "web")}
    assert {(f["path"], f["before"], f["after"]) for f in live[("Deployment", "web")]["fields"]} == {
        ("spec.replicas", 5, 1),
        ("spec.template.spec.containers[name=app].image", "ghcr.io/example/web:1.0.0", "ghcr.io/example/web:1.1.0"),
    }
    assert live[("Secret", "web")]["secretKeys"] == {"password": "changed"}
    assert live[("Secret", "web")]["diff"] is None

    text = phoebe("diff", "--repo", str(checkout), "-n", namespace, kubeconfig=cluster.kubeconfig)
    assert text.code == 1, text.stderr
    assert "put back by the upgrade (server-side apply dry-run):" in text.stdout
    assert "-  replicas: 5" in text.stdout and "+  replicas: 1" in text.stdout
    assert SECRET_BY_HAND not in text.stdout + text.stderr

    # Helm's upgrade puts them back, as predicted: then nothing is left to change
    _helm_deploy(cluster, tmp_path, checkout / "charts/web", namespace, "web", new_values)
    _helm_deploy(cluster, tmp_path, checkout / "charts/web", namespace, "other", {"replicas": 2})
    assert cluster.api.get("apps/v1", "Deployment", namespace, "web")["spec"]["replicas"] == 1

    after = phoebe("diff", "--repo", str(checkout), "-n", namespace, kubeconfig=cluster.kubeconfig)

    assert after.code == 0, after.stdout + after.stderr
    assert after.stdout.splitlines()[-1].startswith("no differences")


def test_a_dry_run_the_server_refuses_is_the_release_failure(
    helm_tools: None, cluster: Cluster, namespace: str, tmp_path: Path, phoebe: PhoebeRunner
) -> None:
    import json

    values = {"image": "ghcr.io/example/web:1.0.0", "password": SECRET_OLD}
    _installed(cluster, tmp_path, namespace, values)
    # the checkout's chart changes the Deployment's selector: immutable, the server refuses it
    new_values = {**values, "replicas": 2}
    checkout = _applied_checkout(cluster, tmp_path, namespace, "1.0.1", new_values, service=False)
    template = checkout / "charts/web/templates/deployment.yaml"
    template.write_text(template.read_text().replace("app: web", "app: web2"))

    result = phoebe("diff", "-o", "json", "--repo", str(checkout), "-n", namespace, kubeconfig=cluster.kubeconfig)

    assert result.code == 1, result.stderr
    (apps,) = json.loads(result.stdout)["kustomizations"]
    web = {r["name"]: r for r in apps["helmReleases"]}["web"]
    (failure,) = web["failures"]
    assert (failure["kind"], failure["name"]) == ("Deployment", "web")
    assert failure["message"].startswith(f"Deployment/{namespace}/web dry-run failed (Invalid): ")
    assert "field is immutable" in failure["message"]

    text = phoebe("diff", "--repo", str(checkout), "-n", namespace, kubeconfig=cluster.kubeconfig)
    assert "1 HelmRelease failing (a dry-run of its objects fails)" in text.stdout.splitlines()[-1]


def _crd(group: str, plural: str, properties: dict[str, Any]) -> dict[str, Any]:
    kind = plural.rstrip("s").capitalize()
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "names": {"kind": kind, "listKind": f"{kind}List", "plural": plural, "singular": kind.lower()},
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {"spec": {"type": "object", "properties": properties}},
                        }
                    },
                }
            ],
        },
    }


def test_chart_crds_go_as_the_crd_policy_says(
    helm_tools: None, cluster: Cluster, namespace: str, tmp_path: Path, phoebe: PhoebeRunner
) -> None:
    """The chart's crds/, applied by helm-controller itself before an upgrade: CreateReplace puts
    the chart's over the live CRD (dry-run as it applies them) and creates the missing one; Skip
    (the default) touches none, and says which the cluster lacks."""
    import json

    import yaml

    group = f"{namespace}.example.com"
    things_v1 = _crd(group, "things", {"size": {"type": "integer"}})
    things_v2 = _crd(group, "things", {"size": {"type": "integer"}, "color": {"type": "string"}})
    gadgets = _crd(group, "gadgets", {"size": {"type": "integer"}})
    deployed = tmp_path / "deployed"
    _web_chart(deployed, "1.0.0", service=False)
    (deployed / "charts/web/crds").mkdir()
    (deployed / "charts/web/crds/things.yaml").write_text(yaml.safe_dump(things_v1))
    values = {"image": "ghcr.io/example/web:1.0.0"}
    _installed_from(cluster, tmp_path, namespace, deployed, values)  # helm creates the CRD from crds/
    assert cluster.api.get_or_none("apiextensions.k8s.io/v1", "CustomResourceDefinition", None, f"things.{group}")

    new_values = {"image": "ghcr.io/example/web:1.1.0"}

    def diff_with(upgrade: dict[str, Any]) -> dict[str, Any]:
        checkout = tmp_path / f"checkout-{len(upgrade)}"
        _checkout(checkout, namespace, "1.0.0", new_values, service=False)
        (checkout / "charts/web/crds").mkdir()
        (checkout / "charts/web/crds/things.yaml").write_text(yaml.safe_dump(things_v2))
        (checkout / "charts/web/crds/gadgets.yaml").write_text(yaml.safe_dump(gadgets))
        web = _helmrelease("web", namespace, new_values)
        web["spec"].update(upgrade)
        (checkout / "apps/releases.yaml").write_text(yaml.safe_dump(web, sort_keys=False))
        _applied_by_flux(cluster, namespace, [web])
        result = phoebe("diff", "-o", "json", "--repo", str(checkout), "-n", namespace, kubeconfig=cluster.kubeconfig)
        assert result.code == 1, result.stdout + result.stderr
        (apps,) = json.loads(result.stdout)["kustomizations"]
        return {r["name"]: r for r in apps["helmReleases"]}["web"]

    replacing = diff_with({"upgrade": {"crds": "CreateReplace"}})
    changes = {(o["kind"], o["name"]): o for o in replacing["objects"]}
    assert sorted((kind, name, o["change"]) for (kind, name), o in changes.items()) == [
        ("CustomResourceDefinition", f"gadgets.{group}", "created"),
        ("CustomResourceDefinition", f"things.{group}", "changed"),
        ("Deployment", "web", "changed"),
    ]
    # helm installed it without Flux's origin labels: helm-controller's apply adds them too
    origin = {"helm.toolkit.fluxcd.io/name": "web", "helm.toolkit.fluxcd.io/namespace": namespace}
    assert [(f["path"], f["after"]) for f in changes[("CustomResourceDefinition", f"things.{group}")]["fields"]] == [
        ("metadata.labels", origin),
        ("spec.versions[name=v1].schema.openAPIV3Schema.properties.spec.properties.color", {"type": "string"}),
    ]
    assert (replacing["failures"], replacing["note"]) == ([], None)

    skipping = diff_with({})  # upgrade.crds defaults to Skip
    assert [(o["kind"], o["change"]) for o in skipping["objects"]] == [("Deployment", "changed")]
    assert skipping["note"] == f"upgrade.crds is Skip: helm-controller will not create CRD(s) gadgets.{group}"
    # nothing was written: the CRDs are as helm installed them
    assert (
        cluster.api.get_or_none("apiextensions.k8s.io/v1", "CustomResourceDefinition", None, f"gadgets.{group}") is None
    )
