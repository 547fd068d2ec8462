"""``phoebe build ks|hr|all`` on small checkouts: the real entry point, real kustomize and helm
(Go-built, cached), charts from the checkout, from a Helm HTTP repository (with basic auth) and
from the CNCF distribution registry (with htpasswd auth) on 127.0.0.1. Exact output, exit codes,
one line per bad HelmRelease while the others still render, and what the caches spare."""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import PhoebeRunner
from tests.repo.conftest import (
    GIT_REPOSITORY,
    RepoWriter,
    binaries_env,
    config_map,
    flux_ks,
    kustomization_yaml,
    served_widgets,
)
from tests.support.chartrepo import CHARTS_DIR, ChartRepository, package_chart

pytestmark = pytest.mark.repo

ORIGIN = {"helm.toolkit.fluxcd.io/name", "helm.toolkit.fluxcd.io/namespace"}


@pytest.fixture(autouse=True)
def helm(helm_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PHOEBE_HELM", str(helm_path))
    return helm_path


def _chart_files(name: str, into: str = "charts") -> dict[str, str]:
    base = CHARTS_DIR / name
    return {f"{into}/{name}/{p.relative_to(base)}": p.read_text() for p in base.rglob("*") if p.is_file()}


def _hr(name: str, namespace: str, spec: str) -> str:
    return (
        "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\n"
        f"metadata:\n  name: {name}\n  namespace: {namespace}\nspec:\n  interval: 1h\n"
        + "".join(f"  {line}\n" for line in spec.strip("\n").splitlines())
    )


def _local_chart(path: str = "./charts/widgets") -> str:
    return (
        f"chart:\n  spec:\n    chart: {path}\n    sourceRef:\n"
        "      kind: GitRepository\n      name: flux-system\n      namespace: flux-system\n"
    )


def _repo(write_repo: RepoWriter, apps: dict[str, str], *, charts: tuple[str, ...] = ("widgets",)) -> Path:
    """kubernetes/flux: the GitRepository and the root Kustomization ``apps`` over ./apps; ``apps``:
    file name -> text under apps/."""
    files = {"kubernetes/flux/cluster.yaml": GIT_REPOSITORY + "---\n" + flux_ks("apps", "./apps")}
    files["apps/kustomization.yaml"] = kustomization_yaml(*apps)
    files.update({f"apps/{name}": text for name, text in apps.items()})
    for chart in charts:
        files.update(_chart_files(chart))
    return write_repo(files)


def _documents(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


def _helm_template(
    helm: Path, chart: Path, release: str, namespace: str, values: dict[str, Any]
) -> list[dict[str, Any]]:
    done = subprocess.run(
        [str(helm), "template", release, str(chart), "--namespace", namespace, "--values", "-", "--skip-tests"],
        input=json.dumps(values),
        capture_output=True,
        text=True,
        check=True,
    )
    return _documents(done.stdout)


# --- build ks -----------------------------------------------------------------------------------


def test_build_ks_prints_what_each_kustomization_applies(write_repo: RepoWriter, phoebe: PhoebeRunner) -> None:
    child = flux_ks("web", "./web", "default", extra="postBuild:\n  substitute:\n    GREETING: hi\n")
    root = write_repo(
        {
            "kubernetes/flux/cluster.yaml": GIT_REPOSITORY + "---\n" + flux_ks("apps", "./apps"),
            "apps/kustomization.yaml": kustomization_yaml("ks.yaml", "secret.yaml"),
            "apps/ks.yaml": child,
            "apps/secret.yaml": "apiVersion: v1\nkind: Secret\nmetadata:\n  name: token\n  namespace: default\n"
            "stringData:\n  token: s3cr3t-value\n",
            "web/kustomization.yaml": kustomization_yaml("cm.yaml"),
            "web/cm.yaml": config_map("web", "default", {"greeting": "${GREETING}"}),
        }
    )

    web = phoebe("build", "ks", "web", "--repo", str(root))
    assert (web.code, web.stderr) == (0, "")
    assert web.stdout == (
        "# Kustomization default/web\n"
        "apiVersion: v1\ndata:\n  greeting: hi\nkind: ConfigMap\nmetadata:\n  name: web\n  namespace: default\n"
    )

    apps = phoebe("build", "ks", "flux-system/apps", "--repo", str(root), "-o", "json")
    assert apps.code == 0
    document = json.loads(apps.stdout)
    assert [(k["namespace"], k["name"], k["state"]) for k in document["kustomizations"]] == [
        ("flux-system", "apps", "built")
    ]
    objects = document["kustomizations"][0]["objects"]
    assert [(o["kind"], o["metadata"]["name"]) for o in objects] == [("Secret", "token"), ("Kustomization", "web")]
    assert objects[0]["stringData"] == {"token": "***"}
    assert "s3cr3t-value" not in apps.stdout

    recursive = phoebe("build", "ks", "apps", "--recursive", "--repo", str(root))
    assert recursive.stdout.count("# Kustomization ") == 2
    assert "# Kustomization default/web\n" in recursive.stdout

    narrowed = phoebe("build", "ks", "--path", "web", "--repo", str(root))
    assert narrowed.stdout.startswith("# Kustomization default/web\n")
    assert "flux-system/apps" not in narrowed.stdout

    missing = phoebe("build", "ks", "nope", "--repo", str(root))
    assert (missing.code, missing.stdout) == (5, "")
    assert missing.stderr == "phoebe: error: no Kustomization nope in the checkout\n"

    wrong = phoebe("build", "things", "--repo", str(root))
    assert wrong.code == 2
    assert wrong.stderr == "phoebe: error: phoebe build things: say ks, hr or all\n"


# --- build hr from the checkout --------------------------------------------------------------------


def test_a_chart_in_the_checkout_is_rendered_as_helm_controller_renders_it(
    write_repo: RepoWriter, phoebe: PhoebeRunner, helm: Path
) -> None:
    spec = (
        _local_chart()
        + "targetNamespace: web\n"
        + "valuesFrom:\n  - kind: Secret\n    name: widget-secrets\n    valuesKey: values.yaml\n"
        + "values:\n  replicas: 3\n"
        + "commonMetadata:\n  labels:\n    team: blue\n"
        + "postRenderers:\n  - kustomize:\n      images:\n"
        + "        - name: ghcr.io/example/widgets\n          newTag: 2.0.0\n"
        + "      patches:\n        - target:\n            kind: ConfigMap\n          patch: |\n"
        + "            - op: add\n              path: /metadata/annotations\n              value: {patched: 'yes'}\n"
    )
    secret = (
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: widget-secrets\n  namespace: apps\n"
        "stringData:\n  values.yaml: 'message: correct-horse-battery'\n"
    )
    root = _repo(write_repo, {"hr.yaml": _hr("widgets", "apps", spec), "secret.yaml": secret})

    result = phoebe("build", "hr", "--repo", str(root), "-o", "json")
    assert (result.code, result.stderr) == (0, "")
    assert "correct-horse-battery" not in result.stdout
    [release] = json.loads(result.stdout)["helmReleases"]
    chart = release.pop("chart")
    objects = release.pop("objects")
    assert release == {
        "name": "widgets",
        "namespace": "apps",
        "state": "rendered",
        "releaseName": "web-widgets",
        "targetNamespace": "web",
        "storageNamespace": "apps",
        "values": {"message": "***", "replicas": 3},
    }
    assert (chart["name"], chart["version"], chart["source"]) == (
        "widgets",
        "1.0.0",
        "GitRepository/flux-system/flux-system",
    )
    assert chart["digest"].startswith("sha256:")
    assert [(o["kind"], o["metadata"]["name"]) for o in objects] == [
        ("CustomResourceDefinition", "widgets.example.com"),  # install.crds defaults to Create
        ("ConfigMap", "web-widgets-config"),
        ("Deployment", "web-widgets"),
        ("Job", "web-widgets-migrate"),  # the hook
    ]
    crd, config, deployment, hook = objects
    assert crd["metadata"]["labels"] == {
        "helm.toolkit.fluxcd.io/name": "widgets",
        "helm.toolkit.fluxcd.io/namespace": "apps",
    }
    for obj in (config, deployment, hook):
        assert obj["metadata"]["labels"]["team"] == "blue"
        assert {k: obj["metadata"]["labels"][k] for k in ORIGIN} == {
            "helm.toolkit.fluxcd.io/name": "widgets",
            "helm.toolkit.fluxcd.io/namespace": "apps",
        }
        assert obj["metadata"]["namespace"] == "web"
    assert config["metadata"]["annotations"] == {"patched": "yes"}
    assert config["data"]["message"] == "***"  # a value from a Secret, wherever the chart puts it
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "ghcr.io/example/widgets:2.0.0"

    # Helm is the judge of the template itself: the same inputs through helm template directly
    # give the same objects, before the post-renderers and Flux's labels.
    direct = _helm_template(
        helm, root / "charts" / "widgets", "web-widgets", "web", {"message": "correct-horse-battery", "replicas": 3}
    )
    assert [(o["kind"], o["metadata"]["name"]) for o in direct] == [
        ("ConfigMap", "web-widgets-config"),
        ("Deployment", "web-widgets"),
        ("Job", "web-widgets-migrate"),
    ]
    assert direct[1]["spec"] == {
        **deployment["spec"],
        "template": {
            **deployment["spec"]["template"],
            "spec": {"containers": [{"name": "widgets", "image": "ghcr.io/example/widgets:1.0.0"}]},
        },
    }


def test_crd_policy_skip_and_kube_version(write_repo: RepoWriter, phoebe: PhoebeRunner) -> None:
    spec = _local_chart() + "install:\n  crds: Skip\n"
    root = _repo(write_repo, {"hr.yaml": _hr("widgets", "apps", spec)})

    result = phoebe("build", "hr", "widgets", "--repo", str(root), "--kube-version", "1.31.4")
    assert (result.code, result.stderr) == (0, "")
    documents = _documents(result.stdout)
    assert [d["kind"] for d in documents] == ["ConfigMap", "Deployment", "Job"]
    assert documents[0]["data"]["kubeVersion"] == "v1.31.4"
    assert result.stdout.startswith("# HelmRelease apps/widgets\n")

    everything = phoebe("build", "all", "--repo", str(root), "--kube-version", "1.31.4")
    assert (everything.code, everything.stderr) == (0, "")
    kustomization, release = everything.stdout.split("---\n# HelmRelease apps/widgets\n")
    assert kustomization.startswith("# Kustomization flux-system/apps\n")
    assert [d["kind"] for d in _documents(kustomization)] == ["HelmRelease"]
    assert _documents(release) == documents


def test_bad_input_is_one_line_per_helmrelease_and_the_others_render(
    write_repo: RepoWriter, phoebe: PhoebeRunner
) -> None:
    unreachable = (
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\nmetadata:\n  name: gone\n  namespace: apps\n"
        "spec:\n  interval: 1h\n  url: http://127.0.0.1:9/charts\n"
    )
    no_match = (
        "postRenderers:\n  - kustomize:\n      patches:\n        - patch: |\n"
        "            apiVersion: v1\n            kind: ConfigMap\n            metadata:\n"
        "              name: not-there\n            data:\n              x: y\n"
    )
    releases = {
        "good.yaml": _hr("good", "apps", _local_chart()),
        "failing.yaml": _hr("failing", "apps", _local_chart() + "values:\n  fail: true\n"),
        "missing-path.yaml": _hr("missing-path", "apps", _local_chart("./charts/nothing-here")),
        "patch.yaml": _hr("patch", "apps", _local_chart() + no_match),
        "offline.yaml": _hr(
            "offline",
            "apps",
            _from_repository("widgets", "1.0.0", "gone"),
        ),
        "repo.yaml": unreachable,
    }
    root = _repo(write_repo, releases)

    result = phoebe("build", "hr", "--repo", str(root))
    assert result.code == 1
    assert [d["metadata"]["name"] for d in _documents(result.stdout)] == [
        "widgets.example.com",
        "good-config",
        "good",
        "good-migrate",
    ]
    lines = result.stderr.splitlines()
    assert lines[0] == (
        "error: HelmRelease apps/failing: failed: helm template: execution error at "
        "(widgets/templates/deployment.yaml:2:4): widgets: asked to fail (.Values.fail)"
    )
    assert lines[1] == (
        "error: HelmRelease apps/missing-path: partial: chart path ./charts/nothing-here does not exist in "
        "GitRepository/flux-system/flux-system"
    )
    assert lines[2].startswith(
        "error: HelmRelease apps/offline: partial: HelmRepository/apps/gone: index not fetched "
        "(http://127.0.0.1:9/charts/index.yaml: "
    )
    assert lines[2].endswith(") and none cached")
    assert lines[3].startswith("error: HelmRelease apps/patch: failed: postRenderers[0]: ")
    assert "not-there" in lines[3]
    assert len(lines) == 4


def test_helm_missing_is_one_line_exit_5(
    write_repo: RepoWriter, phoebe: PhoebeRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    root = _repo(write_repo, {"hr.yaml": _hr("widgets", "apps", _local_chart())})
    monkeypatch.setenv("PHOEBE_HELM", str(tmp_path / "no-helm"))
    result = phoebe("build", "hr", "--repo", str(root))
    assert (result.code, result.stdout) == (5, "")
    assert result.stderr == f"phoebe: error: PHOEBE_HELM={tmp_path / 'no-helm'} does not exist\n"

    monkeypatch.delenv("PHOEBE_HELM")
    monkeypatch.setenv("PATH", str(tmp_path))
    result = phoebe("build", "hr", "--repo", str(root))
    assert result.code == 5
    assert result.stderr == (
        "phoebe: error: helm is not on PATH: install Helm v3 (https://helm.sh/docs/intro/install/) or set PHOEBE_HELM\n"
    )
    # build ks needs no helm
    assert phoebe("build", "ks", "--repo", str(root)).code == 0


# --- a Helm HTTP repository ------------------------------------------------------------------------


def _basic_secret(name: str, namespace: str, user: str, password: str) -> str:
    return (
        f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: {namespace}\n"
        f"stringData:\n  username: {user}\n  password: {password}\n"
    )


def _helm_repository(name: str, namespace: str, url: str, secret: str | None = None, extra: str = "") -> str:
    text = (
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\n"
        f"metadata:\n  name: {name}\n  namespace: {namespace}\n"
        f"spec:\n  interval: 1h\n  url: {url}\n"
    )
    if secret:
        text += f"  secretRef:\n    name: {secret}\n"
    return text + extra


def _from_repository(chart: str, version: str, repository: str) -> str:
    return (
        f"chart:\n  spec:\n    chart: {chart}\n    version: '{version}'\n    sourceRef:\n"
        f"      kind: HelmRepository\n      name: {repository}\n"
    )


def _counting_helm(helm: Path, directory: Path) -> tuple[Path, Path]:
    """A helm that notes each run in a file, then runs the real one."""
    log = directory / "helm-runs"
    script = directory / "helm"
    script.write_text(f'#!/bin/sh\necho "$1" >> {log}\nexec {helm} "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script, log


def test_http_repository_basic_auth_ranges_and_the_caches(
    write_repo: RepoWriter,
    phoebe: PhoebeRunner,
    helm: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    binaries_home: str,
) -> None:
    served = served_widgets(monkeypatch, binaries_home, tmp_path / "served", "stable", "1.0.0", "1.1.0", "2.0.0-rc.1")
    with ChartRepository(served, auth=("reader", "pa55word")) as server:
        url = f"{server.base_url}/stable"
        apps = {
            "repos.yaml": _helm_repository("stable", "apps", url, "stable-auth")
            + "---\n"
            + _helm_repository("wrong", "apps", url, "wrong-auth")
            + "---\n"
            + _basic_secret("stable-auth", "apps", "reader", "pa55word")
            + "---\n"
            + _basic_secret("wrong-auth", "apps", "reader", "nope"),
            "caret.yaml": _hr("caret", "apps", _from_repository("widgets", "^1", "stable")),
            "exact.yaml": _hr("exact", "apps", _from_repository("widgets", "1.0.0", "stable")),
            "pre.yaml": _hr("pre", "apps", _from_repository("widgets", ">=2.0.0-0", "stable")),
            "none.yaml": _hr("none", "apps", _from_repository("widgets", ">=3", "stable")),
            "unknown.yaml": _hr("unknown", "apps", _from_repository("gadgets", "*", "stable")),
            "refused.yaml": _hr("refused", "apps", _from_repository("widgets", "1.0.0", "wrong")),
        }
        root = _repo(write_repo, apps, charts=())

        result = phoebe("build", "hr", "--repo", str(root), "-o", "json")
        assert result.code == 1
        states = {
            r["name"]: (r["state"], r["chart"]["version"], r.get("reason", ""))
            for r in json.loads(result.stdout)["helmReleases"]
        }
        assert states["caret"] == ("rendered", "1.1.0", "")
        assert states["exact"] == ("rendered", "1.0.0", "")
        assert states["pre"] == ("rendered", "2.0.0-rc.1", "")
        assert states["none"] == (
            "partial",
            "",
            "no widgets chart version matches '>=3' in HelmRepository/apps/stable",
        )
        assert states["unknown"] == ("partial", "", f"chart 'gadgets' is not in HelmRepository/apps/stable ({url})")
        assert states["refused"] == (
            "partial",
            "",
            f"HelmRepository/apps/wrong: {url}/index.yaml: 401 Unauthorized: the server refused the credentials",
        )
        assert "pa55word" not in result.stdout + result.stderr
        assert result.stderr.splitlines() == [
            f"error: HelmRelease apps/{name}: partial: {states[name][2]}" for name in ("none", "refused", "unknown")
        ]

        # Second run of the exact version: nothing fetched, nothing rendered (the render cache).
        counting, log = _counting_helm(helm, tmp_path)
        monkeypatch.setenv("PHOEBE_HELM", str(counting))
        server._server.requests.clear()  # type: ignore[union-attr]
        first = phoebe("build", "hr", "exact", "--repo", str(root))
        assert first.code == 0
        runs_before = log.read_text().split() if log.exists() else []
        again = phoebe("build", "hr", "exact", "--repo", str(root))
        assert (again.code, again.stdout) == (0, first.stdout)
        assert server.requests == []
        runs_after = log.read_text().split() if log.exists() else []
        assert [r for r in runs_after if r == "template"] == [r for r in runs_before if r == "template"]

    # The server is gone: exact versions still render from the caches, ranges from the last index.
    offline = phoebe("build", "hr", "exact", "caret", "--repo", str(root))
    assert offline.code == 0, offline.stderr
    assert offline.stdout.count("# HelmRelease ") == 2


# --- the OCI distribution registry -------------------------------------------------------------------


def _docker_config_secret(name: str, namespace: str, host: str, user: str, password: str) -> str:
    config = {"auths": {host: {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}}}
    return (
        f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: {namespace}\n"
        f"type: kubernetes.io/dockerconfigjson\nstringData:\n  .dockerconfigjson: '{json.dumps(config)}'\n"
    )


def _oci_repository(name: str, namespace: str, url: str, ref: str, secret: str | None) -> str:
    text = (
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: OCIRepository\n"
        f"metadata:\n  name: {name}\n  namespace: {namespace}\n"
        f"spec:\n  interval: 1h\n  insecure: true\n  url: {url}\n  ref:\n    {ref}\n"
        "  layerSelector:\n    mediaType: application/vnd.cncf.helm.chart.content.v1.tar+gzip\n    operation: copy\n"
    )
    if secret:
        text += f"  secretRef:\n    name: {secret}\n"
    return text


def test_oci_registry_tags_semver_digests_and_credentials(
    write_repo: RepoWriter, phoebe: PhoebeRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, binaries_home: str
) -> None:
    from tests.cluster.registry import Registry, helm_push

    auth = ("pusher", "s3cret-pw")
    with binaries_env(monkeypatch, binaries_home):
        registry = Registry(tmp_path / "registry", auth=auth).start()
        digests = {}
        for version in ("1.0.0", "1.1.0"):
            package = package_chart(CHARTS_DIR / "widgets", tmp_path / "packages", version=version, index=False)
            digests[version] = helm_push(package, f"oci://{registry.host}/charts", auth=auth)
    try:
        host = registry.host
        url = f"oci://{host}/charts/widgets"
        apps = {
            "secrets.yaml": _docker_config_secret("registry", "apps", host, *auth)
            + "---\n"
            + _docker_config_secret("bad-registry", "apps", host, "pusher", "wrong")
            + "---\n"
            + _basic_secret("registry-basic", "apps", *auth),
            "sources.yaml": "---\n".join(
                [
                    _oci_repository("by-tag", "apps", url, "tag: 1.0.0", "registry"),
                    _oci_repository("by-semver", "apps", url, "semver: '>=1.0.0'", "registry"),
                    _oci_repository("by-digest", "apps", url, f"digest: {digests['1.0.0']}", "registry"),
                    _oci_repository("refused", "apps", url, "tag: 1.0.0", "bad-registry"),
                    _oci_repository("anonymous", "apps", url, "tag: 1.0.0", None),
                    _helm_repository(
                        "oci-charts",
                        "apps",
                        f"oci://{host}/charts",
                        "registry-basic",
                        "  type: oci\n  insecure: true\n",
                    ),
                ]
            ),
            "releases.yaml": "---\n".join(
                _hr(name, "apps", f"chartRef:\n  kind: OCIRepository\n  name: {name}\n")
                for name in ("by-tag", "by-semver", "by-digest", "refused", "anonymous")
            )
            + "---\n"
            + _hr("from-oci-helmrepository", "apps", _from_repository("widgets", "~1.0", "oci-charts")),
        }
        root = _repo(write_repo, apps, charts=())

        result = phoebe("build", "hr", "--repo", str(root), "-o", "json")
        assert result.code == 1
        found = {
            r["name"]: (r["state"], r["chart"]["version"], r.get("reason", ""))
            for r in json.loads(result.stdout)["helmReleases"]
        }
        # helm-controller installs a chart from an OCIRepository as <version>+<manifest digest[:12]>
        v1, v11 = (f"{v}+{digests[v].removeprefix('sha256:')[:12]}" for v in ("1.0.0", "1.1.0"))
        assert found["by-tag"] == ("rendered", v1, "")
        assert found["by-semver"] == ("rendered", v11, "")
        assert found["by-digest"] == ("rendered", v1, "")
        rendered = {r["name"]: r["objects"] for r in json.loads(result.stdout)["helmReleases"]}
        config = next(o for o in rendered["by-tag"] if o["kind"] == "ConfigMap")
        assert config["metadata"]["name"] == "by-tag-config"
        assert found["from-oci-helmrepository"] == ("rendered", "1.0.0", "")
        assert found["refused"] == (
            "partial",
            "",
            f"OCIRepository/apps/refused: oci://{host}/charts/widgets: "
            "401 Unauthorized: the server refused the credentials",
        )
        assert found["anonymous"] == (
            "partial",
            "",
            f"OCIRepository/apps/anonymous: oci://{host}/charts/widgets: "
            "401 Unauthorized: the server wants credentials (none given)",
        )
        assert "s3cret-pw" not in result.stdout + result.stderr
        assert sorted(result.stderr.splitlines()) == [
            f"error: HelmRelease apps/{name}: partial: {found[name][2]}" for name in ("anonymous", "refused")
        ]
        assert os.listdir(tmp_path / "registry")  # the registry really ran here
    finally:
        registry.stop()


def test_a_helmchart_source_and_values_files(write_repo: RepoWriter, phoebe: PhoebeRunner) -> None:
    helmchart = (
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmChart\nmetadata:\n  name: widgets\n  namespace: apps\n"
        "spec:\n  interval: 1h\n  chart: ./charts/widgets\n  valuesFiles:\n    - values-prod.yaml\n"
        "  sourceRef:\n    kind: GitRepository\n    name: flux-system\n"
    )
    files = {
        "hr.yaml": _hr("widgets", "apps", "chartRef:\n  kind: HelmChart\n  name: widgets\n"),
        "helmchart.yaml": helmchart,
    }
    root = _repo(write_repo, files)
    (root / "charts" / "widgets" / "values-prod.yaml").write_text("message: from values-prod\nreplicas: 4\n")

    result = phoebe("build", "hr", "--repo", str(root), "-o", "json", "--source", "flux-system=" + str(root))
    assert (result.code, result.stderr) == (0, "")
    [release] = json.loads(result.stdout)["helmReleases"]
    assert release["chart"]["source"] == "HelmChart/apps/widgets"
    objects = {o["kind"]: o for o in release["objects"]}
    assert objects["ConfigMap"]["data"]["message"] == "from values-prod"
    assert objects["Deployment"]["spec"]["replicas"] == 4


@pytest.mark.parametrize(
    ("strategy", "hook_image", "hook_labelled"),
    [
        (None, "ghcr.io/example/widgets:2.0.0", True),  # Combined: Helm 4's default in helm-controller v1.6
        ("Combined", "ghcr.io/example/widgets:2.0.0", True),
        ("Separate", "ghcr.io/example/widgets:2.0.0", True),
        ("NoHooks", "ghcr.io/example/widgets:1.0.0", False),  # Helm 3's way: hooks left as rendered
    ],
)
def test_post_render_strategy_decides_what_hooks_get(
    write_repo: RepoWriter, phoebe: PhoebeRunner, strategy: str | None, hook_image: str, hook_labelled: bool
) -> None:
    spec = (
        _local_chart()
        + "commonMetadata:\n  labels:\n    team: blue\n"
        + "postRenderers:\n  - kustomize:\n      images:\n"
        + "        - name: ghcr.io/example/widgets\n          newTag: 2.0.0\n"
        + (f"postRenderStrategy: {strategy}\n" if strategy else "")
    )
    root = _repo(write_repo, {"hr.yaml": _hr("widgets", "apps", spec)})

    result = phoebe("build", "hr", "--repo", str(root), "-o", "json")

    assert (result.code, result.stderr) == (0, "")
    [release] = json.loads(result.stdout)["helmReleases"]
    objects = {o["kind"]: o for o in release["objects"]}
    deployment, hook = objects["Deployment"], objects["Job"]
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "ghcr.io/example/widgets:2.0.0"
    assert deployment["metadata"]["labels"]["team"] == "blue"
    assert hook["spec"]["template"]["spec"]["containers"][0]["image"] == hook_image
    assert hook["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"  # still a hook
    labels = hook["metadata"].get("labels") or {}
    assert ("team" in labels, set(labels) >= ORIGIN) == (hook_labelled, hook_labelled)


def test_an_unknown_post_render_strategy_fails_that_release(write_repo: RepoWriter, phoebe: PhoebeRunner) -> None:
    root = _repo(
        write_repo,
        {
            "bad.yaml": _hr("bad", "apps", _local_chart() + "postRenderStrategy: Sideways\n"),
            "good.yaml": _hr("good", "apps", _local_chart()),
        },
    )

    result = phoebe("build", "hr", "--repo", str(root))

    assert result.code == 1
    assert result.stderr.splitlines() == [
        "error: HelmRelease apps/bad: failed: unknown post-render strategy: 'Sideways'"
    ]
    assert "# HelmRelease apps/good" in result.stdout


# --- a checkout chart's dependencies, built as source-controller builds them -------------------------

WRAPPER_CHART = "apiVersion: v2\nname: wrapper\nversion: 0.3.0\ndependencies:\n{deps}"
WRAPPER_TEMPLATE = (
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-wrapper\n"
    "data:\n  shared: {{ .Values.common.greeting | quote }}\n"
)
COMMON = {
    "charts/common/Chart.yaml": "apiVersion: v2\nname: common\nversion: 0.1.4\n",
    "charts/common/values.yaml": "greeting: hello from common\n",
    "charts/common/templates/cm.yaml": (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-common\n"
        "data:\n  greeting: {{ .Values.greeting | quote }}\n"
    ),
}


def _wrapper(deps: str) -> dict[str, str]:
    return {
        "charts/wrapper/Chart.yaml": WRAPPER_CHART.format(deps=deps),
        "charts/wrapper/values.yaml": "widgets:\n  replicas: 2\ncommon: {}\n",
        "charts/wrapper/templates/cm.yaml": WRAPPER_TEMPLATE,
        **COMMON,
    }


def test_dependencies_a_checkout_chart_does_not_vendor_are_added(
    write_repo: RepoWriter,
    phoebe: PhoebeRunner,
    helm: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    binaries_home: str,
) -> None:
    served = served_widgets(monkeypatch, binaries_home, tmp_path / "served", "stable", "1.0.0", "1.1.0", "2.0.0")
    with ChartRepository(served) as server:
        url = f"{server.base_url}/stable"
        deps = (
            f"  - name: widgets\n    version: '^1'\n    repository: {url}\n"
            "  - name: common\n    version: 0.1.x\n    repository: file://../common\n"
        )
        files = _wrapper(deps)
        spec = _local_chart("./charts/wrapper") + "values:\n  widgets:\n    message: from the release\n"
        root = _repo(write_repo, {"hr.yaml": _hr("app", "apps", spec)}, charts=())
        for relative, text in files.items():
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            (root / relative).write_text(text)

        result = phoebe("build", "hr", "--repo", str(root), "-o", "json")

        assert (result.code, result.stderr) == (0, "")
        [release] = json.loads(result.stdout)["helmReleases"]
        names = sorted((o["kind"], o["metadata"]["name"]) for o in release["objects"])
        assert names == [
            ("ConfigMap", "app-common"),
            ("ConfigMap", "app-config"),
            ("ConfigMap", "app-wrapper"),
            ("CustomResourceDefinition", "widgets.example.com"),  # the subchart's crds/
            ("Deployment", "app"),
            ("Job", "app-migrate"),
        ]
        # Helm is the judge: helm dependency build, then helm template, gives the same objects
        judge = tmp_path / "judge"
        shutil.copytree(root / "charts", judge)
        subprocess.run(
            [str(helm), "dependency", "build", str(judge / "wrapper")],
            check=True,
            capture_output=True,
            env=_helm_env(tmp_path),
        )
        assert sorted(p.name for p in (judge / "wrapper" / "charts").iterdir()) == [
            "common-0.1.4.tgz",
            "widgets-1.1.0.tgz",
        ]
        direct = _helm_template(helm, judge / "wrapper", "app", "apps", {"widgets": {"message": "from the release"}})
        mine = {
            (o["kind"], o["metadata"]["name"]): o for o in release["objects"] if o["kind"] != "CustomResourceDefinition"
        }
        for obj in direct:
            key = (obj["kind"], obj["metadata"]["name"])
            labels = {k: v for k, v in (mine[key]["metadata"].get("labels") or {}).items() if k not in ORIGIN}
            assert {**mine[key], "metadata": {**mine[key]["metadata"], "labels": labels}} == {
                **obj,
                "metadata": {**obj["metadata"], "labels": obj["metadata"].get("labels") or {}},
            }, key

    # the repository gone: the dependency is cached (the last index, the package)
    again = phoebe("build", "hr", "--repo", str(root))
    assert again.code == 0, again.stderr


def _helm_env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "helm-home"
    return {**os.environ, "HELM_CACHE_HOME": str(home), "HELM_CONFIG_HOME": str(home), "HELM_DATA_HOME": str(home)}


@pytest.mark.parametrize(
    ("deps", "reason"),
    [
        (
            "  - name: common\n    version: '>=1.0.0'\n    repository: file://../common\n",
            "dependency 'common' of ./charts/wrapper: can't get a valid version for constraint '>=1.0.0'",
        ),
        (
            "  - name: common\n    version: '*'\n    repository: file://../../../outside\n",
            "dependency 'common' of ./charts/wrapper: file://../../../outside is out of "
            "GitRepository/flux-system/flux-system",
        ),
        (
            "  - name: common\n    version: '*'\n    repository: file://../nowhere\n",
            "dependency 'common' of ./charts/wrapper: no chart found at '../nowhere'",
        ),
        (
            "  - name: widgets\n    version: '*'\n    repository: '@stable'\n",
            "dependency 'widgets' of ./charts/wrapper: repository '@stable' is not an http(s):// or oci:// URL",
        ),
    ],
)
def test_a_dependency_that_cannot_be_added_makes_the_release_partial(
    write_repo: RepoWriter, phoebe: PhoebeRunner, deps: str, reason: str
) -> None:
    root = _repo(
        write_repo,
        {"hr.yaml": _hr("app", "apps", _local_chart("./charts/wrapper")), "ok.yaml": _hr("ok", "apps", _local_chart())},
    )
    for relative, text in _wrapper(deps).items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)

    result = phoebe("build", "hr", "--repo", str(root))

    assert result.code == 1
    assert result.stderr.splitlines() == [f"error: HelmRelease apps/app: partial: {reason}"]
    assert "# HelmRelease apps/ok" in result.stdout


def test_a_dependency_uses_the_credentials_of_the_helmrepository_at_its_url(
    write_repo: RepoWriter, phoebe: PhoebeRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, binaries_home: str
) -> None:
    served = served_widgets(monkeypatch, binaries_home, tmp_path / "served", "private", "1.0.0")
    with ChartRepository(served, auth=("reader", "pa55word")) as server:
        url = f"{server.base_url}/private/"  # source-controller normalises the trailing slash
        deps = f"  - name: widgets\n    version: 1.0.0\n    repository: {url}\n  - name: common\n    version: '*'\n"
        apps = {"hr.yaml": _hr("app", "apps", _local_chart("./charts/wrapper"))}
        root = _repo(write_repo, apps, charts=())
        for relative, text in _wrapper(deps).items():
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            (root / relative).write_text(text)
        # the common chart vendored as a directory: only widgets is missing
        shutil.copytree(root / "charts/common", root / "charts/wrapper/charts/common")

        anonymous = phoebe("build", "hr", "--repo", str(root))
        assert anonymous.code == 1
        assert anonymous.stderr.startswith("error: HelmRelease apps/app: partial: dependency 'widgets' of ")
        assert "401 Unauthorized" in anonymous.stderr

        (root / "apps/repo.yaml").write_text(
            _helm_repository("private", "flux-system", url.rstrip("/"), "private-auth")
            + "---\n"
            + _basic_secret("private-auth", "flux-system", "reader", "pa55word")
        )
        (root / "apps/kustomization.yaml").write_text(kustomization_yaml("hr.yaml", "repo.yaml"))
        result = phoebe("build", "hr", "--repo", str(root), "-o", "json")

    assert (result.code, result.stderr) == (0, "")
    [release] = json.loads(result.stdout)["helmReleases"]
    assert ("Deployment", "app") in {(o["kind"], o["metadata"]["name"]) for o in release["objects"]}
    assert "pa55word" not in result.stdout


# --- TLS: a private CA, client certificates (certSecretRef) ----------------------------------------


def _tls_secret(name: str, namespace: str, data: dict[str, str]) -> str:
    return yaml.safe_dump(
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace}, "stringData": data}
    )


def test_repositories_behind_a_private_ca_and_client_certificates(
    write_repo: RepoWriter, phoebe: PhoebeRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, binaries_home: str
) -> None:
    from tests.support.tlscerts import PrivateCA

    ca = PrivateCA()
    server_cert, client_cert = ca.server(), ca.client()
    served = served_widgets(monkeypatch, binaries_home, tmp_path / "served", "stable", "1.0.0")
    with (
        ChartRepository(served, tls=(server_cert.cert, server_cert.key)) as private,
        ChartRepository(served, tls=(server_cert.cert, server_cert.key), client_ca=ca.cert) as mutual,
    ):
        extra = "  certSecretRef:\n    name: {}\n"
        repos = [
            _helm_repository("ca", "apps", f"{private.base_url}/stable", extra=extra.format("ca-only")),
            _helm_repository("system", "apps", f"{private.base_url}/stable"),  # the system's trust only
            _helm_repository("mtls", "apps", f"{mutual.base_url}/stable", extra=extra.format("client")),
            _helm_repository("nocert", "apps", f"{mutual.base_url}/stable", extra=extra.format("ca-only")),
            # the deprecated form: TLS keys in the secretRef
            _helm_repository("legacy", "apps", f"{mutual.base_url}/stable", "legacy"),
            _tls_secret("ca-only", "apps", {"ca.crt": ca.cert}),
            _tls_secret("client", "apps", {"ca.crt": ca.cert, "tls.crt": client_cert.cert, "tls.key": client_cert.key}),
            _tls_secret(
                "legacy", "apps", {"caFile": ca.cert, "certFile": client_cert.cert, "keyFile": client_cert.key}
            ),
        ]
        apps = {"repos.yaml": "---\n".join(repos)}
        for name in ("ca", "system", "mtls", "nocert", "legacy"):
            apps[f"{name}.yaml"] = _hr(name, "apps", _from_repository("widgets", "1.0.0", name))
        root = _repo(write_repo, apps, charts=())

        result = phoebe("build", "hr", "--repo", str(root), "-o", "json")

    assert result.code == 1
    states = {r["name"]: (r["state"], r.get("reason", "")) for r in json.loads(result.stdout)["helmReleases"]}
    assert {name: state for name, (state, _) in states.items()} == {
        "ca": "rendered",
        "legacy": "rendered",
        "mtls": "rendered",
        "nocert": "partial",
        "system": "partial",
    }
    assert states["system"][1] == (
        f"HelmRepository/apps/system: {private.base_url}/stable/index.yaml: the server's certificate is not trusted "
        "(unable to get local issuer certificate): give its CA as ca.crt in certSecretRef"
    )
    assert states["nocert"][1] == (
        f"HelmRepository/apps/nocert: {mutual.base_url}/stable/index.yaml: the server wants a client certificate: "
        "give tls.crt and tls.key in certSecretRef"
    )
    for pem in (client_cert.key, client_cert.cert):
        assert pem.strip().splitlines()[1] not in result.stdout + result.stderr
    # the key went to OpenSSL through memory: the chart cache holds nothing of it (the build
    # cache holds the checkout's plain Secrets as the checkout does: docs/architecture.md)
    cache = Path(os.environ["XDG_CACHE_HOME"]) / "phoebe" / "charts"
    needle = client_cert.key.strip().splitlines()[1].encode()
    assert not [p for p in cache.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_an_oci_registry_behind_a_private_ca(
    write_repo: RepoWriter, phoebe: PhoebeRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, binaries_home: str
) -> None:
    from tests.cluster.registry import Registry, helm_push
    from tests.support.tlscerts import PrivateCA

    ca = PrivateCA()
    server = ca.server()
    with binaries_env(monkeypatch, binaries_home):
        registry = Registry(tmp_path / "registry").start()  # plain HTTP to push (helm push --plain-http)
        package = package_chart(CHARTS_DIR / "widgets", tmp_path / "packages", version="1.0.0", index=False)
        helm_push(package, f"oci://{registry.host}/charts")
        registry.stop()
        registry = Registry(tmp_path / "registry", port=registry.port, tls=(server.cert, server.key)).start()
    try:
        url = f"oci://{registry.host}/charts/widgets"

        def oci_source(name: str, cert_secret: str | None) -> str:
            text = _oci_repository(name, "apps", url, "tag: 1.0.0", None).replace("  insecure: true\n", "")
            return text + (f"  certSecretRef:\n    name: {cert_secret}\n" if cert_secret else "")

        apps = {
            "sources.yaml": "---\n".join(
                [
                    oci_source("trusted", "registry-ca"),
                    oci_source("untrusted", None),
                    _tls_secret("registry-ca", "apps", {"ca.crt": ca.cert}),
                ]
            ),
            "releases.yaml": "---\n".join(
                _hr(name, "apps", f"chartRef:\n  kind: OCIRepository\n  name: {name}\n")
                for name in ("trusted", "untrusted")
            ),
        }
        root = _repo(write_repo, apps, charts=())

        result = phoebe("build", "hr", "--repo", str(root), "-o", "json")
    finally:
        registry.stop()

    assert result.code == 1
    found = {r["name"]: (r["state"], r.get("reason", "")) for r in json.loads(result.stdout)["helmReleases"]}
    assert found["trusted"] == ("rendered", "")
    assert found["untrusted"][0] == "partial"
    assert "the server's certificate is not trusted" in found["untrusted"][1]
