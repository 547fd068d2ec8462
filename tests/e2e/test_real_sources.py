"""phoebe on the real source-controller: Git over smart HTTP, a Helm HTTP repository and the
distribution registry (OCIRepository), each changed for real and synced.

The tests share a playground namespace beside the sample: its own Git server (so stopping it
leaves the sample alone) serving two apps, two Kustomizations reading it (``two`` depends on
``one``), a HelmRelease with a semver range on a Helm HTTP repository, and an OCIRepository with
a semver range on the registry. Every wait is on a condition (phoebe's own, or ``_wait_ready``);
phoebe gets generous timeouts: under load on 2 cores the controllers are slow, never wrong.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.cluster.api import Api
from tests.cluster.registry import helm_push
from tests.conftest import CliResult, PhoebeRunner
from tests.e2e.conftest import HR, KS, FluxEnv
from tests.support.chartrepo import CHARTS_DIR, package_chart
from tests.support.gitserver import GitServer, GitWorkTree

pytestmark = pytest.mark.e2e

NS = "real-sources"
SOURCE = "source.toolkit.fluxcd.io/v1"
TIMEOUT = "4m"  # phoebe's --timeout: generous, phoebe returns as soon as the controllers answer
CHART = "webapp"
CHART_REPO = "e2e-charts"  # the Helm HTTP repository's directory on the chart server
OCI_PATH = "e2e/charts"
WAIT = 180.0


def _configmap(name: str, greeting: str) -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  greeting: {greeting}\n"


@dataclass
class Playground:
    env: FluxEnv
    git: GitServer
    repo: GitWorkTree
    oci_host: str

    @property
    def api(self) -> Api:
        return self.env.api

    def write(self, path: str, text: str) -> None:
        target = self.repo.directory / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)

    def push(self, message: str) -> str:
        self.repo.commit(message)
        return self.repo.revision()

    def publish_helm(self, version: str) -> None:
        self.env.sources.publish_chart(f"helm:{CHART_REPO}", CHART, version)

    def publish_oci(self, version: str) -> str:
        packaged = package_chart(
            CHARTS_DIR / "app-template", self.repo.directory.parent / "oci", name=CHART, version=version, index=False
        )
        return helm_push(packaged, f"oci://{self.oci_host}/{OCI_PATH}")


def _ready(obj: dict[str, Any] | None) -> bool:
    if obj is None:
        return False
    generation = obj["metadata"].get("generation")
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True" and obj["status"].get("observedGeneration") == generation)
    return False


def _wait_ready(api: Api, objects: list[tuple[str, str, str]]) -> None:
    """Until every (apiVersion, kind, name) in the playground is Ready for its generation."""
    deadline = time.monotonic() + WAIT
    pending = list(objects)
    while pending:
        pending = [o for o in pending if not _ready(api.get_or_none(o[0], o[1], NS, o[2]))]
        if pending and time.monotonic() > deadline:
            states = {o[2]: (api.get_or_none(o[0], o[1], NS, o[2]) or {}).get("status") for o in pending}
            pytest.fail(f"not ready within {WAIT:.0f}s: {states}")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def playground(flux_env: FluxEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Playground]:
    api = flux_env.api
    work = tmp_path_factory.mktemp("playground") / "apps"
    work.mkdir()
    (work / "apps/one").mkdir(parents=True)
    (work / "apps/two").mkdir(parents=True)
    (work / "apps/one/configmap.yaml").write_text(_configmap("one", "hello"))
    (work / "apps/two/configmap.yaml").write_text(_configmap("two", "hello"))
    with GitServer(work.parent / "git") as git:
        repo = GitWorkTree.publish(work, git, "apps")
        ground = Playground(flux_env, git, repo, flux_env.sources.registry.host)
        ground.publish_helm("1.0.0")
        ground.publish_oci("1.0.0")
        api.ensure_namespace(NS)
        ks = {"interval": "1h", "prune": True, "targetNamespace": NS, "timeout": "2m"}
        source_ref = {"kind": "GitRepository", "name": "apps"}
        objects: list[dict[str, Any]] = [
            {
                "apiVersion": SOURCE,
                "kind": "GitRepository",
                "metadata": {"name": "apps", "namespace": NS},
                "spec": {"interval": "1h", "url": repo.url, "ref": {"branch": "main"}, "timeout": "20s"},
            },
            {
                "apiVersion": KS[0],
                "kind": "Kustomization",
                "metadata": {"name": "one", "namespace": NS},
                "spec": {**ks, "path": "./apps/one", "sourceRef": source_ref},
            },
            {
                "apiVersion": KS[0],
                "kind": "Kustomization",
                "metadata": {"name": "two", "namespace": NS},
                "spec": {**ks, "path": "./apps/two", "sourceRef": source_ref, "dependsOn": [{"name": "one"}]},
            },
            {
                "apiVersion": SOURCE,
                "kind": "HelmRepository",
                "metadata": {"name": "charts", "namespace": NS},
                "spec": {"interval": "1h", "url": flux_env.sources.helm_url(CHART_REPO)},
            },
            {
                "apiVersion": HR[0],
                "kind": "HelmRelease",
                "metadata": {"name": "web", "namespace": NS},
                "spec": {
                    "interval": "1h",
                    "chart": {
                        "spec": {
                            "chart": CHART,
                            "version": ">=1.0.0 <2.0.0",
                            "sourceRef": {"kind": "HelmRepository", "name": "charts"},
                            "interval": "1h",
                        }
                    },
                },
            },
            {
                "apiVersion": SOURCE,
                "kind": "OCIRepository",
                "metadata": {"name": "artifact", "namespace": NS},
                "spec": {
                    "interval": "1h",
                    "insecure": True,
                    "url": f"oci://{ground.oci_host}/{OCI_PATH}/{CHART}",
                    "ref": {"semver": ">=1.0.0"},
                    "layerSelector": {
                        "mediaType": "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
                        "operation": "copy",
                    },
                },
            },
        ]
        for obj in objects:
            api.apply(obj)
        _wait_ready(api, [(o["apiVersion"], o["kind"], o["metadata"]["name"]) for o in objects])
        yield ground
        _remove_flux_objects(api)


def _remove_flux_objects(api: Api) -> None:
    """Leave the sample's cluster as it was for the next test module: every Flux object of the
    playground deleted (the controllers run their finalizers, kustomize-controller prunes)."""
    kinds = [
        (HR[0], HR[1]),
        (KS[0], KS[1]),
        *((SOURCE, kind) for kind in ("GitRepository", "OCIRepository", "HelmRepository", "HelmChart")),
    ]
    for api_version, kind in kinds:
        for obj in api.list(api_version, kind, NS):
            api.delete(obj)
    deadline = time.monotonic() + WAIT
    while any(api.list(api_version, kind, NS) for api_version, kind in kinds):
        if time.monotonic() > deadline:
            pytest.fail(f"the playground's Flux objects were not deleted within {WAIT:.0f}s")
        time.sleep(0.5)


def _sync(phoebe: PhoebeRunner, env: FluxEnv, *args: str) -> tuple[CliResult, dict[str, dict[str, Any]]]:
    result = phoebe("sync", *args, "-n", NS, "--timeout", TIMEOUT, "-o", "json", kubeconfig=env.kubeconfig)
    assert not result.stderr.strip() or result.code != 0, result.stderr
    items = {f"{i['kind']}/{i['name']}": i for i in json.loads(result.stdout)["items"]}
    return result, items


# --- Git: --cascade ----------------------------------------------------------------------------
def test_cascade_exits_when_every_kustomization_applied_the_pushed_commit(
    phoebe: PhoebeRunner, playground: Playground
) -> None:
    env = playground.env
    playground.write("apps/one/configmap.yaml", _configmap("one", "cascaded"))
    playground.write("apps/two/configmap.yaml", _configmap("two", "cascaded"))
    pushed = playground.push("cascade")

    result, items = _sync(phoebe, env, "git", "apps", "--cascade")

    assert result.code == 0, result.stdout
    assert (items["GitRepository/apps"]["result"], items["GitRepository/apps"]["revision"]) == ("done", pushed)
    for name in ("one", "two"):
        item = items[f"Kustomization/{name}"]
        assert (item["phase"], item["result"], item["revision"]) == ("cascade", "done", pushed)
        assert env.api.get(*KS, NS, name)["status"]["lastAppliedRevision"] == pushed
        assert env.api.get("v1", "ConfigMap", NS, name)["data"] == {"greeting": "cascaded"}
    assert json.loads(result.stdout)["cascade"] == {"unreadSources": []}


def test_failing_cascade_names_the_kustomization_and_the_reason(phoebe: PhoebeRunner, playground: Playground) -> None:
    env = playground.env
    broken = (
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: broken\nspec:\n  ports:\n    - port: 99999\n"
        "  selector:\n    app: two\n"
    )
    playground.write("apps/two/service.yaml", broken)
    pushed = playground.push("break two")

    text = phoebe("sync", "git", "apps", "-n", NS, "--cascade", "--timeout", TIMEOUT, kubeconfig=env.kubeconfig)

    assert text.code == 1, text.stdout
    failed = [line for line in text.lines if "Kustomization/real-sources/two" in line]
    assert len(failed) == 1 and "failed" in failed[0], text.lines
    assert "spec.ports[0].port: Invalid value: 99999" in failed[0]
    assert any("Kustomization/real-sources/one" in line and "done" in line for line in text.lines), text.lines
    two = env.api.get(*KS, NS, "two")
    assert two["status"]["lastAttemptedRevision"] == pushed
    assert two["status"]["lastAppliedRevision"] != pushed  # nothing of the broken commit applied
    assert env.api.get_or_none("v1", "Service", NS, "broken") is None

    (playground.repo.directory / "apps/two/service.yaml").unlink()
    fixed = playground.push("fix two")
    result, items = _sync(phoebe, env, "git", "apps", "--cascade")
    assert result.code == 0, result.stdout
    assert items["Kustomization/two"]["revision"] == fixed


def test_cascade_on_a_source_no_kustomization_reads(phoebe: PhoebeRunner, playground: Playground) -> None:
    env = playground.env
    env.api.apply(
        {
            "apiVersion": SOURCE,
            "kind": "GitRepository",
            "metadata": {"name": "lonely", "namespace": NS},
            "spec": {"interval": "1h", "url": playground.repo.url, "ref": {"branch": "main"}},
        }
    )

    text = phoebe("sync", "git", "lonely", "-n", NS, "--cascade", "--timeout", TIMEOUT, kubeconfig=env.kubeconfig)

    assert text.code == 0, text.stdout
    assert text.lines[-1].endswith("; --cascade: no Kustomization reads GitRepository/real-sources/lonely")
    result, _ = _sync(phoebe, env, "git", "lonely", "--cascade")
    assert json.loads(result.stdout)["cascade"] == {"unreadSources": ["GitRepository/real-sources/lonely"]}


# --- OCI, Helm ----------------------------------------------------------------------------------
def test_sync_oci_waits_for_the_new_tag(phoebe: PhoebeRunner, playground: Playground) -> None:
    digest = playground.publish_oci("1.1.0")

    result, items = _sync(phoebe, playground.env, "oci", "artifact")

    assert result.code == 0, result.stdout
    assert items["OCIRepository/artifact"]["revision"] == f"1.1.0@{digest}"
    live = playground.api.get(SOURCE, "OCIRepository", NS, "artifact")
    assert live["status"]["artifact"]["revision"] == f"1.1.0@{digest}"


def test_sync_helmrepo_chart_and_hr_with_source_upgrade_to_the_new_version(
    phoebe: PhoebeRunner, playground: Playground
) -> None:
    env, api = playground.env, playground.api
    chart_name = f"{NS}-web"
    index_before = api.get(SOURCE, "HelmRepository", NS, "charts")["status"]["artifact"]["revision"]
    playground.publish_helm("1.1.0")

    result, items = _sync(phoebe, env, "helmrepo", "charts")
    assert result.code == 0, result.stdout
    assert items["HelmRepository/charts"]["revision"] not in (None, index_before)
    result, items = _sync(phoebe, env, "chart", chart_name)
    assert result.code == 0, result.stdout
    assert items[f"HelmChart/{chart_name}"]["revision"] == "1.1.0"

    playground.publish_helm("1.2.0")
    result, items = _sync(phoebe, env, "hr", "web", "--with-source")

    assert result.code == 0, result.stdout
    assert items["HelmRepository/charts"]["phase"] == "source"
    assert items[f"HelmChart/{chart_name}"]["revision"] == "1.2.0"
    assert items["HelmRelease/web"]["result"] == "done"
    release = api.get(*HR, NS, "web")
    assert release["status"]["history"][0]["chartVersion"] == "1.2.0"
    assert api.get(SOURCE, "HelmChart", NS, chart_name)["status"]["artifact"]["revision"] == "1.2.0"


# --- status, events, logs on real source objects -------------------------------------------------
def test_status_events_and_logs_of_real_source_objects(phoebe: PhoebeRunner, playground: Playground) -> None:
    env = playground.env
    status = phoebe("status", "chart", "-n", NS, "-o", "json", kubeconfig=env.kubeconfig)
    assert status.code == 0, status.stdout
    charts = {o["name"]: o for o in json.loads(status.stdout)["objects"]}
    chart = charts[f"{NS}-web"]
    assert chart["state"] == "ready" and chart["reason"] == "ChartPullSucceeded"
    assert chart["source"] == {"kind": "HelmRepository", "namespace": NS, "name": "charts"}

    events = phoebe("events", "git/real-sources/apps", "-o", "json", kubeconfig=env.kubeconfig)
    assert events.code == 0, events.stderr
    said = json.loads(events.stdout)["events"]
    assert said and {e["source"] for e in said} == {"source-controller"}
    assert any(e["message"].startswith("stored artifact for commit") for e in said), said

    logs = phoebe("logs", "git/real-sources/apps", kubeconfig=env.kubeconfig)
    assert logs.code == 0, logs.stderr
    assert any(" source git/real-sources/apps " in line and "stored artifact for commit" in line for line in logs.lines)


def test_status_repo_compare_shows_the_helm_charts_the_cluster_has(phoebe: PhoebeRunner, flux_env: FluxEnv) -> None:
    result = phoebe(
        "status", "--repo", str(flux_env.git_dir), "--compare", "chart", "-o", "json", kubeconfig=flux_env.kubeconfig
    )
    assert result.code == 0, result.stdout
    rows = {f"{o['namespace']}/{o['name']}": o for o in json.loads(result.stdout)["objects"]}
    assert rows["flux-system/network-external-dns"] == {
        "kind": "HelmChart",
        "namespace": "flux-system",
        "name": "network-external-dns",
        "state": "in-sync",
        "checkout": "1.19.0",
        "cluster": "1.19.0",
        "message": "pulled for HelmRelease/network/external-dns",
    }
    live = {c["metadata"]["name"] for c in flux_env.api.list(SOURCE, "HelmChart", "flux-system")}
    assert {name for name in live if f"flux-system/{name}" in rows} == live


# --- faults and bad input -----------------------------------------------------------------------
def test_git_server_down_fails_the_sync_with_the_controllers_message(
    phoebe: PhoebeRunner, playground: Playground
) -> None:
    env = playground.env
    playground.git.stop()
    try:
        result, items = _sync(phoebe, env, "git", "apps")

        assert result.code == 1, result.stdout
        item = items["GitRepository/apps"]
        # failed on the controller's answer, not timed out: phoebe did not wait for --timeout
        assert (item["result"], item["reason"]) == ("failed", "GitOperationFailed")
        assert "connection refused" in item["message"]
        status = phoebe("status", "-n", NS, "-o", "json", kubeconfig=env.kubeconfig)
        assert status.code == 1
        objects = {f"{o['kind']}/{o['name']}": o for o in json.loads(status.stdout)["objects"]}
        assert objects["GitRepository/apps"]["state"] == "failed"
        assert "connection refused" in objects["GitRepository/apps"]["message"]
        for name in ("one", "two"):
            # kustomize-controller keeps applying the last artifact while its source fails: the
            # Kustomizations stay ready, shown with the failing source they read from.
            kustomization = objects[f"Kustomization/{name}"]
            assert kustomization["source"] == {"kind": "GitRepository", "namespace": NS, "name": "apps"}
    finally:
        playground.git.start()
    result, _ = _sync(phoebe, env, "git", "apps")
    assert result.code == 0, result.stdout


BAD_SOURCES: dict[str, tuple[str, Callable[[Playground], dict[str, Any]], tuple[str, str]]] = {
    "refused": (
        "GitRepository",
        lambda p: {"url": "http://127.0.0.1:1/nothing.git", "ref": {"branch": "main"}, "timeout": "20s"},
        ("GitOperationFailed", "connect: connection refused"),
    ),
    "no-branch": (
        "GitRepository",
        lambda p: {"url": p.repo.url, "ref": {"branch": "no-such-branch"}},
        ("GitOperationFailed", 'couldn\'t find remote ref "refs/heads/no-such-branch"'),
    ),
    "no-tag": (
        "OCIRepository",
        lambda p: {"url": f"oci://{p.oci_host}/{OCI_PATH}/{CHART}", "insecure": True, "ref": {"tag": "9.9.9"}},
        ("OCIArtifactPullFailed", "MANIFEST_UNKNOWN"),
    ),
    "not-yaml": (
        "HelmRepository",
        lambda p: {"url": p.env.sources.helm_url("not-yaml")},
        ("IndexationFailed", "failed to load Helm repository from index YAML"),
    ),
}
KIND_WORDS = {"GitRepository": "git", "OCIRepository": "oci", "HelmRepository": "helmrepo"}


@pytest.mark.parametrize("name", sorted(BAD_SOURCES))
def test_bad_source_is_one_line_and_exit_1(phoebe: PhoebeRunner, playground: Playground, name: str) -> None:
    kind, spec, (reason, said) = BAD_SOURCES[name]
    if name == "not-yaml":
        index = playground.env.sources.charts.root / "not-yaml" / "index.yaml"
        index.parent.mkdir(parents=True, exist_ok=True)
        index.write_text("{{{ this: is [not yaml\n")
    applied = playground.api.apply(
        {
            "apiVersion": SOURCE,
            "kind": kind,
            "metadata": {"name": name, "namespace": NS},
            "spec": {"interval": "1h", **spec(playground)},
        }
    )

    result = phoebe(
        "sync", KIND_WORDS[kind], name, "-n", NS, "--timeout", TIMEOUT, kubeconfig=playground.env.kubeconfig
    )

    assert result.code == 1, result.stdout
    assert result.stderr == ""
    line = next(line for line in result.lines if f"{kind}/{NS}/{name}" in line)
    assert "failed" in line and reason in line and said in line, line
    assert result.lines[-1].startswith(f"✗ 1 {kind}: 1 failed")
    # nothing half-written: the spec is what was applied; phoebe only annotated it
    live = playground.api.get(SOURCE, kind, NS, name)
    assert live["spec"] == applied["spec"]
    assert live["metadata"]["generation"] == applied["metadata"]["generation"]


# --- credentials ----------------------------------------------------------------------------
def _secret(name: str, data: dict[str, str], type_: str = "Opaque") -> dict[str, Any]:
    import base64

    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": NS},
        "type": type_,
        "data": encoded,
    }


def test_private_helm_repository_and_registry_need_their_credentials(
    phoebe: PhoebeRunner, playground: Playground, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from tests.cluster.registry import Registry
    from tests.support.chartrepo import ChartRepository

    env, api = playground.env, playground.api
    credentials = ("phoebe", "not-a-real-secret")
    root = tmp_path_factory.mktemp("private")
    package_chart(CHARTS_DIR / "app-template", root / "charts" / "private", name=CHART, version="2.0.0")
    with ChartRepository(root / "charts", auth=credentials) as charts, Registry(root / "oci", auth=credentials) as oci:
        packaged = package_chart(CHARTS_DIR / "app-template", root / "out", name=CHART, version="2.0.0", index=False)
        digest = helm_push(packaged, f"oci://{oci.host}/private", auth=credentials)
        docker = json.dumps({"auths": {oci.host: {"username": credentials[0], "password": credentials[1]}}})
        api.apply(_secret("helm-auth", {"username": credentials[0], "password": credentials[1]}))
        api.apply(_secret("oci-auth", {".dockerconfigjson": docker}, "kubernetes.io/dockerconfigjson"))
        for name, secret in (("private", "helm-auth"), ("private-anonymous", None)):
            spec: dict[str, Any] = {"interval": "1h", "url": f"{charts.base_url}/private"}
            if secret:
                spec["secretRef"] = {"name": secret}
            api.apply(
                {
                    "apiVersion": SOURCE,
                    "kind": "HelmRepository",
                    "metadata": {"name": name, "namespace": NS},
                    "spec": spec,
                }
            )
        for name, secret in (("private", "oci-auth"), ("private-anonymous", None)):
            spec = {
                "interval": "1h",
                "insecure": True,
                "url": f"oci://{oci.host}/private/{CHART}",
                "ref": {"tag": "2.0.0"},
            }
            if secret:
                spec["secretRef"] = {"name": secret}
            api.apply(
                {
                    "apiVersion": SOURCE,
                    "kind": "OCIRepository",
                    "metadata": {"name": name, "namespace": NS},
                    "spec": spec,
                }
            )

        result, items = _sync(phoebe, env, "helmrepo", "private")
        assert result.code == 0, result.stdout
        assert items["HelmRepository/private"]["revision"].startswith("sha256:")
        result, items = _sync(phoebe, env, "oci", "private")
        assert result.code == 0, result.stdout
        assert items["OCIRepository/private"]["revision"] == f"2.0.0@{digest}"

        result, items = _sync(phoebe, env, "helmrepo", "private-anonymous")
        assert result.code == 1, result.stdout
        assert "401 Unauthorized" in items["HelmRepository/private-anonymous"]["message"]
        result, items = _sync(phoebe, env, "oci", "private-anonymous")
        assert result.code == 1, result.stdout
        assert "UNAUTHORIZED" in items["OCIRepository/private-anonymous"]["message"]
