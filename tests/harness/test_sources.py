"""The source stand-in plays source-controller on a real API server: artifacts that download and
match their digest, statuses shaped like source-controller's, reconcile requests handled."""

from __future__ import annotations

import hashlib
import io
import re
import secrets
import shutil
import subprocess
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.cluster.api import Api
from tests.cluster.build import BuildError, GoMissing
from tests.cluster.controlplane import ControlPlane, new_workdir
from tests.support import manifests
from tests.support.sources import (
    HELM_CHART_MEDIA_TYPE,
    SourceStandIn,
    chart_version_for,
    source_files,
)

pytestmark = pytest.mark.cluster

SAMPLE_REPO = Path(__file__).resolve().parent.parent / "fixtures" / "gitops"
SOURCE = "source.toolkit.fluxcd.io/v1"
REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"
EMPTY_STATUS = {"observedGeneration": -1}  # what the source CRDs default a status to
GIT_REVISION = re.compile(r"main@sha1:[0-9a-f]{40}")


@pytest.fixture(scope="module")
def api() -> Iterator[Api]:
    from tests.cluster.crds import install_crds

    try:
        plane = ControlPlane(new_workdir("phoebe-sources-")).start()
    except GoMissing as error:
        pytest.skip(f"no control plane: {error}")
    except BuildError as error:
        pytest.fail(f"control plane build failed: {error}")
    client = Api(plane.server, plane.admin_token, plane.ca_file)
    try:
        install_crds(client, "newest", external_secrets=False)
        yield client
    finally:
        client.close()
        plane.remove()


@pytest.fixture
def ns(api: Api) -> str:
    name = f"t-sources-{secrets.token_hex(3)}"
    api.ensure_namespace(name)
    return name


def wait_for(check: Callable[[], Any], timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.05)


def conditions(obj: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
    return {
        c["type"]: (c["status"], c["reason"], c["message"]) for c in (obj.get("status") or {}).get("conditions", [])
    }


def ready(api: Api, kind: str, namespace: str, name: str, token: str | None = None) -> dict[str, Any] | None:
    obj = api.get(SOURCE, kind, namespace, name)
    status = obj.get("status") or {}
    if token is not None and status.get("lastHandledReconcileAt") != token:
        return None
    if conditions(obj).get("Ready", ("",))[0] != "True" or status.get("observedGeneration") != obj["metadata"].get(
        "generation"
    ):
        return None
    return obj


def download(artifact: dict[str, Any]) -> bytes:
    response = httpx.get(artifact["url"], timeout=10)
    assert response.status_code == 200
    assert int(response.headers["Content-Length"]) == len(response.content) == artifact["size"]
    assert "sha256:" + hashlib.sha256(response.content).hexdigest() == artifact["digest"]
    return response.content


def members(content: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(content), mode="r:gz") as tar:
        return {m.name: m for m in tar.getmembers()}


def read_member(content: bytes, name: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(content), mode="r:gz") as tar:
        member = tar.extractfile(name)
        assert member is not None
        return member.read()


def request(api: Api, obj: dict[str, Any], token: str) -> None:
    api.merge_patch(obj, {"metadata": {"annotations": {REQUESTED_AT: token}}}, manager="flux-client-side-apply")


# --- GitRepository ---------------------------------------------------------------------------
def test_git_repository_artifact_is_the_directory(api: Api, ns: str) -> None:
    api.create(manifests.git_repository("repo", ns))
    with SourceStandIn(api, default_git_dir=SAMPLE_REPO, namespaces={ns}) as sources:
        obj = wait_for(lambda: ready(api, "GitRepository", ns, "repo"))
        status = obj["status"]
        artifact = status["artifact"]
        revision = artifact["revision"]
        assert GIT_REVISION.fullmatch(revision)
        assert sources.revision_of("GitRepository", ns, "repo") == revision
        assert conditions(obj) == {
            "Ready": ("True", "Succeeded", f"stored artifact for revision '{revision}'"),
            "ArtifactInStorage": ("True", "Succeeded", f"stored artifact for revision '{revision}'"),
        }
        assert [c["type"] for c in status["conditions"]] == ["Ready", "ArtifactInStorage"]
        assert all(c["observedGeneration"] == obj["metadata"]["generation"] for c in status["conditions"])
        sha = revision.rsplit(":", 1)[1]
        assert artifact["path"] == f"gitrepository/{ns}/repo/{sha}.tar.gz"
        assert artifact["url"] == f"{sources.artifact_base_url}/{artifact['path']}"
        assert artifact["url"].startswith("http://127.0.0.1:")
        assert "lastHandledReconcileAt" not in status

        content = download(artifact)
        names = members(content)
        assert "kubernetes/flux/cluster/ks.yaml" in names
        assert "README.md" in names
        assert ".sops.yaml" not in names  # source-controller's default excludes
        assert names["kubernetes"].isdir()
        assert all(m.mtime == 0 and m.uid == 0 and m.uname == "" for m in names.values())
        expected = (SAMPLE_REPO / "kubernetes/flux/cluster/ks.yaml").read_bytes()
        assert read_member(content, "kubernetes/flux/cluster/ks.yaml") == expected
        assert sorted(n for n, m in names.items() if m.isfile()) == [rel for rel, _ in source_files(SAMPLE_REPO)]


def test_git_repository_spec_ignore_and_stable_revision(api: Api, ns: str) -> None:
    repo = manifests.git_repository("only-kubernetes", ns, branch="release")
    repo["spec"]["ignore"] = "# exclude all\n/*\n# include kubernetes directory\n!/kubernetes\n"
    api.create(repo)
    api.create(manifests.git_repository("plain", ns))
    with SourceStandIn(api, default_git_dir=SAMPLE_REPO, namespaces={ns}):
        obj = wait_for(lambda: ready(api, "GitRepository", ns, "only-kubernetes"))
        plain = wait_for(lambda: ready(api, "GitRepository", ns, "plain"))
        content = download(obj["status"]["artifact"])
    artifact = obj["status"]["artifact"]
    assert artifact["revision"].startswith("release@sha1:")
    # the same content, the same commit; a different branch name
    assert artifact["revision"].split("@")[1] == plain["status"]["artifact"]["revision"].split("@")[1]
    assert obj["status"]["observedIgnore"] == repo["spec"]["ignore"]
    names = members(content)
    assert "README.md" not in names
    assert "age.agekey" not in names
    assert "kubernetes/flux/cluster/gitrepository.yaml" in names


def test_reconcile_request_repacks_only_on_change(api: Api, ns: str, tmp_path: Path) -> None:
    repo_dir = tmp_path / "repo"
    shutil.copytree(SAMPLE_REPO, repo_dir)
    git = api.create(manifests.git_repository("flux-system", ns))
    with SourceStandIn(api, git_dirs={(ns, "flux-system"): repo_dir}, namespaces={ns}) as sources:
        first = wait_for(lambda: ready(api, "GitRepository", ns, "flux-system"))["status"]["artifact"]

        request(api, git, "t1")
        same = wait_for(lambda: ready(api, "GitRepository", ns, "flux-system", token="t1"))
        assert same["status"]["lastHandledReconcileAt"] == "t1"
        assert same["status"]["artifact"] == first  # unchanged content: the artifact is kept as it is

        settings = repo_dir / "kubernetes/flux/vars/cluster-settings.yaml"
        settings.write_text(settings.read_text() + "  EXTRA: added-by-test\n")
        request(api, git, "t2")
        changed = wait_for(lambda: ready(api, "GitRepository", ns, "flux-system", token="t2"))
        artifact = changed["status"]["artifact"]
        assert GIT_REVISION.fullmatch(artifact["revision"])
        assert artifact["revision"] != first["revision"]
        assert artifact["digest"] != first["digest"]
        assert sources.revision_of("GitRepository", ns, "flux-system") == artifact["revision"]
        assert conditions(changed)["Ready"][2] == f"stored artifact for revision '{artifact['revision']}'"
        new_content = read_member(download(artifact), "kubernetes/flux/vars/cluster-settings.yaml")
        assert b"EXTRA: added-by-test" in new_content
        download(first)  # the previous artifact stays served, as source-controller keeps a few

        # a spec change (new generation) is handled without a request
        api.merge_patch(git, {"spec": {"ref": {"branch": "other"}}})
        moved = wait_for(
            lambda: (
                (o := ready(api, "GitRepository", ns, "flux-system"))
                and o["status"]["artifact"]["revision"].startswith("other@")
                and o
            )
        )
        assert moved["status"]["observedGeneration"] == 2
        assert moved["status"]["lastHandledReconcileAt"] == "t2"


def test_suspended_and_missing_directory(api: Api, ns: str) -> None:
    api.create(manifests.git_repository("paused", ns, suspend=True))
    api.create(manifests.git_repository("nowhere", ns))
    with SourceStandIn(api, namespaces={ns}) as sources:
        failed = wait_for(
            lambda: (o := api.get(SOURCE, "GitRepository", ns, "nowhere")).get("status", {}).get("conditions") and o
        )
        ready_condition = conditions(failed)["Ready"]
        assert ready_condition[:2] == ("False", "GitOperationFailed")
        assert ready_condition[2].startswith("failed to checkout and determine revision: unable to clone")
        assert conditions(failed)["FetchFailed"][:2] == ("True", "GitOperationFailed")
        assert failed["status"].get("observedGeneration", -1) == -1  # the CRD default: never reconciled
        assert sources.revision_of("GitRepository", ns, "nowhere") is None
        assert api.get(SOURCE, "GitRepository", ns, "paused").get("status") in (None, {}, EMPTY_STATUS)
        assert sources.errors == []


def test_bucket(api: Api, ns: str) -> None:
    bucket = {
        "apiVersion": SOURCE,
        "kind": "Bucket",
        "metadata": {"name": "bucket", "namespace": ns},
        "spec": {"interval": "1h", "bucketName": "home-ops", "endpoint": "minio.example.com"},
    }
    api.create(bucket)
    with SourceStandIn(api, default_git_dir=SAMPLE_REPO, namespaces={ns}):
        obj = wait_for(lambda: ready(api, "Bucket", ns, "bucket"))
        content = download(obj["status"]["artifact"])
    artifact = obj["status"]["artifact"]
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", artifact["revision"])
    assert conditions(obj)["Ready"] == ("True", "Succeeded", f"stored artifact: revision '{artifact['revision']}'")
    assert obj["status"]["url"].endswith(f"/bucket/{ns}/bucket/latest.tar.gz")
    assert "kubernetes/flux/cluster/ks.yaml" in members(content)


# --- Helm ------------------------------------------------------------------------------------
def helm_chart(name: str, namespace: str, chart: str, version: str, repository: str) -> dict[str, Any]:
    """A HelmChart as helm-controller creates it for a HelmRelease's chart.spec."""
    return {
        "apiVersion": SOURCE,
        "kind": "HelmChart",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "chart": chart,
            "version": version,
            "sourceRef": {"kind": "HelmRepository", "name": repository},
            "interval": "1h",
            "reconcileStrategy": "ChartVersion",
        },
    }


def chart_yaml(content: bytes, name: str) -> dict[str, Any]:
    names = members(content)
    assert f"{name}/Chart.yaml" in names
    assert f"{name}/values.yaml" in names
    assert f"{name}/templates/configmap.yaml" in names
    assert all(n.startswith(f"{name}/") for n in names)
    return dict(yaml.safe_load(read_member(content, f"{name}/Chart.yaml")))


def test_helm_repository_and_chart(api: Api, ns: str, tmp_path: Path) -> None:
    api.create(manifests.helm_repository("jetstack", ns, url="https://charts.jetstack.io"))
    api.create(helm_chart(f"{ns}-cert-manager", ns, "cert-manager", "v1.19.1", "jetstack"))
    api.create(helm_chart(f"{ns}-anything", ns, "anything", "*", "jetstack"))
    with SourceStandIn(api, namespaces={ns}) as sources:
        repo = wait_for(lambda: ready(api, "HelmRepository", ns, "jetstack"))
        chart = wait_for(lambda: ready(api, "HelmChart", ns, f"{ns}-cert-manager"))
        anything = wait_for(lambda: ready(api, "HelmChart", ns, f"{ns}-anything"))

        repo_artifact = repo["status"]["artifact"]
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", repo_artifact["revision"])
        assert repo_artifact["path"] == f"helmrepository/{ns}/jetstack/index-{repo_artifact['revision'][7:]}.yaml"
        assert conditions(repo)["Ready"] == (
            "True",
            "Succeeded",
            f"stored artifact: revision '{repo_artifact['revision']}'",
        )
        assert repo["status"]["url"] == f"{sources.artifact_base_url}/helmrepository/{ns}/jetstack/index.yaml"
        index = yaml.safe_load(download(repo_artifact))
        assert index["apiVersion"] == "v1" and index["entries"]

        status = chart["status"]
        artifact = status["artifact"]
        assert artifact["revision"] == "v1.19.1"
        assert artifact["path"] == f"helmchart/{ns}/{ns}-cert-manager/cert-manager-v1.19.1.tgz"
        assert status["observedChartName"] == "cert-manager"
        assert status["observedSourceArtifactRevision"] == repo_artifact["revision"]
        assert status["url"].endswith(f"/helmchart/{ns}/{ns}-cert-manager/latest.tar.gz")
        message = "pulled 'cert-manager' chart with version 'v1.19.1'"
        assert conditions(chart) == {
            "Ready": ("True", "ChartPullSucceeded", message),
            "ArtifactInStorage": ("True", "ChartPullSucceeded", message),
        }
        content = download(artifact)
        meta = chart_yaml(content, "cert-manager")
        assert (meta["name"], meta["version"], meta["apiVersion"]) == ("cert-manager", "v1.19.1", "v2")
        (tmp_path / "cert-manager-v1.19.1.tgz").write_bytes(content)

        assert anything["status"]["artifact"]["revision"] == "1.0.0"
        assert chart_yaml(download(anything["status"]["artifact"]), "anything")["version"] == "1.0.0"

    helm = find_helm()
    if helm is None:
        pytest.skip("no helm: Go is not installed to build it")
    package = str(tmp_path / "cert-manager-v1.19.1.tgz")
    shown = subprocess.run([helm, "show", "chart", package], capture_output=True, text=True, check=True, timeout=60)
    assert yaml.safe_load(shown.stdout)["name"] == "cert-manager"
    assert yaml.safe_load(shown.stdout)["version"] == "v1.19.1"
    subprocess.run([helm, "lint", package], capture_output=True, text=True, check=True, timeout=60)


def find_helm() -> str | None:
    """The helm the test set-up builds (`python -m tests.cluster build --flux`); None without Go."""
    from tests.cluster.build import GoMissing, ensure_program, helm_program

    try:
        return str(ensure_program(helm_program()))
    except GoMissing:
        return shutil.which("helm")


def test_helm_chart_follows_spec_changes_and_requests(api: Api, ns: str) -> None:
    api.create(manifests.helm_repository("grafana", ns, url="https://grafana.github.io/helm-charts"))
    chart = api.create(helm_chart(f"{ns}-loki", ns, "loki", "6.46.0", "grafana"))
    with SourceStandIn(api, namespaces={ns}) as sources:
        wait_for(lambda: ready(api, "HelmChart", ns, f"{ns}-loki"))
        api.merge_patch(chart, {"spec": {"version": "6.47.0"}})
        upgraded = wait_for(
            lambda: (
                (o := ready(api, "HelmChart", ns, f"{ns}-loki"))
                and o["status"]["artifact"]["revision"] == "6.47.0"
                and o
            )
        )
        assert upgraded["status"]["observedGeneration"] == 2
        assert sources.revision_of("HelmChart", ns, f"{ns}-loki") == "6.47.0"
        request(api, chart, "t1")
        handled = wait_for(lambda: ready(api, "HelmChart", ns, f"{ns}-loki", token="t1"))
        assert handled["status"]["artifact"] == upgraded["status"]["artifact"]


def test_oci_helm_repository_is_static(api: Api, ns: str) -> None:
    """source-controller >= v1.3 does not reconcile OCI HelmRepositories: it empties their status
    (migrationToStatic) and charts are pulled from the registry by the HelmChart."""
    repo = api.create(manifests.helm_repository("coredns", ns, url="oci://ghcr.io/coredns/charts", oci=True))
    api.patch_status(
        repo,
        {"observedGeneration": 1, "conditions": [_condition("Ready", "True", "Succeeded", "old status")]},
    )
    api.create(helm_chart(f"{ns}-coredns", ns, "coredns", "1.45.0", "coredns"))
    with SourceStandIn(api, namespaces={ns}) as sources:
        wait_for(lambda: api.get(SOURCE, "HelmRepository", ns, "coredns").get("status") in (None, {}, EMPTY_STATUS))
        chart = wait_for(lambda: ready(api, "HelmChart", ns, f"{ns}-coredns"))
        assert sources.revision_of("HelmRepository", ns, "coredns") is None
        content = download(chart["status"]["artifact"])
    status = chart["status"]
    assert status["artifact"]["revision"] == "1.45.0"
    assert "observedSourceArtifactRevision" not in status
    assert conditions(chart)["Ready"] == ("True", "ChartPullSucceeded", "pulled 'coredns' chart with version '1.45.0'")
    assert chart_yaml(content, "coredns")["version"] == "1.45.0"


def _condition(type_: str, status: str, reason: str, message: str) -> dict[str, Any]:
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": "2025-01-01T00:00:00Z",
        "observedGeneration": 1,
    }


def test_oci_repository_chart_and_manifests(api: Api, ns: str) -> None:
    chart_repo = manifests.oci_repository(
        "app-template", ns, url="oci://ghcr.io/bjw-s-labs/helm/app-template", tag="3.7.3"
    )
    chart_repo["spec"]["layerSelector"] = {"mediaType": HELM_CHART_MEDIA_TYPE, "operation": "copy"}
    api.create(chart_repo)
    api.create(manifests.oci_repository("manifests", ns, tag="v2.0.0"))
    with SourceStandIn(api, default_git_dir=SAMPLE_REPO, namespaces={ns}):
        chart = wait_for(lambda: ready(api, "OCIRepository", ns, "app-template"))
        plain = wait_for(lambda: ready(api, "OCIRepository", ns, "manifests"))
        chart_content = download(chart["status"]["artifact"])
        plain_content = download(plain["status"]["artifact"])

    artifact = chart["status"]["artifact"]
    assert re.fullmatch(r"3\.7\.3@sha256:[0-9a-f]{64}", artifact["revision"])
    assert artifact["path"] == f"ocirepository/{ns}/app-template/{artifact['revision'].split(':')[1]}.tar.gz"
    assert conditions(chart)["Ready"] == ("True", "Succeeded", f"stored artifact for digest '{artifact['revision']}'")
    assert chart["status"]["observedLayerSelector"] == chart_repo["spec"]["layerSelector"]
    meta = chart_yaml(chart_content, "app-template")
    assert (meta["name"], meta["version"]) == ("app-template", "3.7.3")

    plain_artifact = plain["status"]["artifact"]
    assert re.fullmatch(r"v2\.0\.0@sha256:[0-9a-f]{64}", plain_artifact["revision"])
    assert "kubernetes/flux/cluster/ks.yaml" in members(plain_content)


# --- lifecycle -------------------------------------------------------------------------------
def test_stop_is_prompt_and_leaves_no_thread(api: Api, ns: str) -> None:
    api.create(manifests.git_repository("repo", ns))
    before = set(threading.enumerate())  # other stand-ins (the e2e stack's) may be running
    sources = SourceStandIn(api, default_git_dir=SAMPLE_REPO, namespaces={ns}).start()
    mine = [t for t in threading.enumerate() if t not in before and t.name.startswith("sources-")]
    assert mine
    obj = wait_for(lambda: ready(api, "GitRepository", ns, "repo"))
    storage = sources.storage
    started = time.monotonic()
    sources.stop()
    elapsed = time.monotonic() - started
    assert elapsed < 1.0, f"stop() took {elapsed:.2f}s"
    assert not [t for t in mine if t.is_alive()]
    assert not storage.exists()  # its own temporary storage is removed
    with pytest.raises(httpx.HTTPError):
        httpx.get(obj["status"]["artifact"]["url"], timeout=2)


# --- pure helpers ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("constraint", "expected"),
    [
        ("v1.19.1", "v1.19.1"),
        ("0.26.1", "0.26.1"),
        ("*", "1.0.0"),
        ("", "1.0.0"),
        (None, "1.0.0"),
        (">=1.2", "1.2.0"),
        ("~3.7", "3.7.0"),
        ("^2.x", "2.0.0"),
        (">1.0.0", "1.0.1"),
        (">=4.0.0 <5.0.0", "4.0.0"),
    ],
)
def test_chart_version_for(constraint: str | None, expected: str) -> None:
    assert chart_version_for(constraint) == expected
