"""The honest test of ``phoebe diff`` for HelmReleases: what it predicts the next upgrade changes
is what the real helm-controller then deploys. The real helm-controller installs chart version A
from the local OCI registry (the real source-controller pulls it); the checkout bumps the chart to
version B and changes a value; ``phoebe diff`` predicts the object changes; Flux upgrades; then
``phoebe diff`` reports no differences."""

from __future__ import annotations

import difflib
import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PhoebeRunner
from tests.e2e.conftest import HR, FluxEnv, sync_cascade

pytestmark = [pytest.mark.e2e, pytest.mark.repo]

APP = Path("kubernetes/apps/kube-system/reloader/app")
NAMESPACE = "kube-system"
RELEASE = "phoebe-web"
REPOSITORY = "phoebe-e2e"  # oci://REGISTRY/phoebe-e2e/web
UPGRADE_TIMEOUT = 240.0

CHART_YAML = "apiVersion: v2\nname: web\nversion: {version}\nappVersion: '{version}'\n"
VALUES = "replicas: 1\nimage: ghcr.io/example/web:1.0.0\n"
DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
  labels:
    app.kubernetes.io/name: web
    helm.sh/chart: web-{{ .Chart.Version | replace "+" "_" }}
spec:
  replicas: {{ .Values.replicas }}
  selector:
    matchLabels:
      app.kubernetes.io/name: web
  template:
    metadata:
      labels:
        app.kubernetes.io/name: web
    spec:
      containers:
        - name: app
          image: "{{ .Values.image }}"
"""
# a hook helm-controller runs at install and upgrade (a ConfigMap: nothing to wait for on kwok)
HOOK = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-hook
  annotations:
    helm.sh/hook: pre-install,pre-upgrade
data:
  image: "{{ .Values.image }}"
"""
SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: {{ .Release.Name }}
spec:
  selector:
    app.kubernetes.io/name: web
  ports:
    - port: 80
"""


@pytest.fixture(scope="session")
def binaries() -> tuple[Path, Path]:
    """helm and kustomize from the build cache, found before a test's isolated HOME is set."""
    from tests.cluster.build import ensure_program, helm_program, kustomize_program

    return ensure_program(helm_program()), ensure_program(kustomize_program())


def _publish(flux_env: FluxEnv, work: Path, version: str, *, service: bool) -> None:
    """Chart web VERSION pushed to the local registry (version B adds a Service template)."""
    from tests.cluster.registry import helm_push
    from tests.support.chartrepo import package_chart

    chart = work / f"web-{version}"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(CHART_YAML.format(version=version))
    (chart / "values.yaml").write_text(VALUES)
    (chart / "templates" / "deployment.yaml").write_text(DEPLOYMENT)
    (chart / "templates" / "hook.yaml").write_text(HOOK)
    if service:
        (chart / "templates" / "service.yaml").write_text(SERVICE)
    packaged = package_chart(chart, work / "packaged", index=False)
    helm_push(packaged, f"oci://{flux_env.sources.registry.host}/{REPOSITORY}")


def _app_files(flux_env: FluxEnv, tag: str, values: dict[str, Any]) -> dict[str, str]:
    source = {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "OCIRepository",
        "metadata": {"name": RELEASE},
        "spec": {
            "interval": "1h",
            "insecure": True,
            "url": f"oci://{flux_env.sources.registry.host}/{REPOSITORY}/web",
            "ref": {"tag": tag},
            "layerSelector": {"mediaType": "application/vnd.cncf.helm.chart.content.v1.tar+gzip", "operation": "copy"},
        },
    }
    release = {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": RELEASE},
        "spec": {
            "interval": "1h",
            "chartRef": {"kind": "OCIRepository", "name": RELEASE},
            "install": {"disableWait": True},
            "upgrade": {"disableWait": True},
            "values": values,
            # post-rendered as helm-controller v1.6.4 (Helm 4, strategy Combined) does: hooks too
            "commonMetadata": {"labels": {"team": "e2e"}},
            "postRenderers": [
                {
                    "kustomize": {
                        "patches": [
                            {
                                "target": {"kind": "ConfigMap"},
                                "patch": "- op: add\n  path: /metadata/annotations/patched\n  value: 'yes'\n",
                            }
                        ]
                    }
                }
            ],
        },
    }
    return {f"{RELEASE}-source.yaml": json.dumps(source), f"{RELEASE}.yaml": json.dumps(release)}


def _write_app(flux_env: FluxEnv, original: str, tag: str, values: dict[str, Any]) -> None:
    app = flux_env.git_dir / APP
    files = _app_files(flux_env, tag, values)
    for name, text in files.items():
        (app / name).write_text(text)
    (app / "kustomization.yaml").write_text(original + "".join(f"  - ./{name}\n" for name in files))


def _deployed(flux_env: FluxEnv, version: str) -> dict[str, Any]:
    """Wait until helm-controller deployed chart VERSION (conditions, never a fixed sleep)."""
    deadline = time.monotonic() + UPGRADE_TIMEOUT
    seen: dict[str, Any] = {}
    while time.monotonic() < deadline:
        seen = flux_env.api.get_or_none(*HR, NAMESPACE, RELEASE) or {}
        status = seen.get("status") or {}
        history = status.get("history") or []
        ready: dict[str, Any] = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
        latest = history[0] if history else {}
        deployed_version = str(latest.get("chartVersion", "")).partition("+")[0]  # VERSION+<OCI digest>
        current = status.get("observedGeneration") == seen["metadata"]["generation"]
        state = (deployed_version, latest.get("status"), ready.get("status"), current)
        if state == (version, "deployed", "True", True):
            return seen
        time.sleep(1)
    raise AssertionError(f"HelmRelease {NAMESPACE}/{RELEASE} did not deploy {version}: {seen.get('status')}")


def _history_revision(flux_env: FluxEnv, name: str) -> int:
    """The Helm release revision helm-controller last recorded for a HelmRelease."""
    release = flux_env.api.get("helm.toolkit.fluxcd.io/v2", "HelmRelease", NAMESPACE, name)
    return int(((release.get("status") or {}).get("history") or [{}])[0].get("version") or 0)


def _sync(phoebe: PhoebeRunner, flux_env: FluxEnv) -> None:
    _, items = sync_cascade(phoebe, flux_env)
    assert items["kube-system/reloader"]["result"] == "done", items["kube-system/reloader"]


def _release_diff(result: Any) -> dict[str, Any] | None:
    document = json.loads(result.stdout)
    found = [r for k in document["kustomizations"] for r in k["helmReleases"] if r["name"] == RELEASE]
    return found[0] if found else None


def _build_is_what_was_stored(flux_env: FluxEnv, phoebe: PhoebeRunner) -> None:
    """``phoebe build hr`` (reading this cluster) renders the release's manifest and hooks exactly
    as helm-controller stored them: post-renderers, commonMetadata and origin labels on both."""
    import yaml

    from phoebe_cli.flux.helmstorage import current_secret, decode_release, release_selector

    built = phoebe(
        "build",
        "hr",
        f"{NAMESPACE}/{RELEASE}",
        "--repo",
        str(flux_env.git_dir),
        "-o",
        "json",
        kubeconfig=flux_env.kubeconfig,
    )
    assert built.code == 0, built.stderr
    [release] = json.loads(built.stdout)["helmReleases"]
    secrets = flux_env.api.list("v1", "Secret", NAMESPACE, labelSelector=release_selector(RELEASE))
    current, _ = current_secret(secrets)
    assert current is not None
    stored = decode_release(current)
    documents = [*yaml.safe_load_all(stored.manifest), *(d for h in stored.hooks for d in yaml.safe_load_all(h))]

    def keyed(objects: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
        return {(o["kind"], o["metadata"]["name"]): o for o in objects if o}

    rendered, deployed = keyed(release["objects"]), keyed(documents)
    assert sorted(rendered) == sorted(deployed)
    for key, obj in rendered.items():
        mine, theirs = (json.dumps(o, indent=1, sort_keys=True).splitlines() for o in (obj, deployed[key]))
        assert mine == theirs, "\n".join([str(key), *difflib.unified_diff(theirs, mine, "stored", "phoebe")])
    hook = rendered[("ConfigMap", f"{RELEASE}-hook")]
    assert hook["metadata"]["annotations"]["patched"] == "yes"
    assert hook["metadata"]["labels"]["team"] == "e2e"
    assert hook["metadata"]["labels"]["helm.toolkit.fluxcd.io/name"] == RELEASE


def test_diff_predicts_what_helm_controller_deploys(
    binaries: tuple[Path, Path],
    phoebe: PhoebeRunner,
    flux_env: FluxEnv,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("PHOEBE_HELM", str(binaries[0]))
    monkeypatch.setenv("PHOEBE_KUSTOMIZE", str(binaries[1]))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    def diff(*args: str) -> Any:
        return phoebe(
            "diff", "kube-system/reloader", "--repo", str(flux_env.git_dir), *args, kubeconfig=flux_env.kubeconfig
        )

    _publish(flux_env, tmp_path, "1.0.0", service=False)
    _publish(flux_env, tmp_path, "1.1.0", service=True)
    kustomization = flux_env.git_dir / APP / "kustomization.yaml"
    original = kustomization.read_text()
    try:
        # version A, installed by the real helm-controller
        _write_app(flux_env, original, "1.0.0", {"image": "ghcr.io/example/web:1.0.0"})
        _sync(phoebe, flux_env)
        _deployed(flux_env, "1.0.0")
        installed = diff("-o", "json")
        assert installed.code == 0, installed.stdout + installed.stderr
        assert _release_diff(installed) is None
        _build_is_what_was_stored(flux_env, phoebe)

        # the checkout: version B and a value changed
        _write_app(flux_env, original, "1.1.0", {"image": "ghcr.io/example/web:1.1.0", "replicas": 2})
        predicted = diff("-o", "json")
        assert predicted.code == 1, predicted.stderr
        release = _release_diff(predicted)
        assert release is not None, predicted.stdout
        # helm-controller deploys a chartRef's chart as VERSION+<OCI digest> (its build metadata)
        assert release["chartBefore"].startswith("web 1.0.0+"), release
        assert release["chartAfter"].startswith("web 1.1.0+") and release["note"] is None, release
        # the live objects are as helm-controller applied them (server-side): the upgrade's dry-run
        # finds nothing edited on the cluster to put back, and no failure
        assert (release["live"], release["failures"]) == ([], []), release
        changes = {(o["kind"], o["name"]): o for o in release["objects"]}
        assert sorted((kind, name, o["change"]) for (kind, name), o in changes.items()) == [
            ("ConfigMap", f"{RELEASE}-hook", "changed"),  # the hook: the upgrade stores and runs the new one
            ("Deployment", RELEASE, "changed"),
            ("Service", RELEASE, "created"),
        ]
        assert [(f["path"], f["after"]) for f in changes[("ConfigMap", f"{RELEASE}-hook")]["fields"]] == [
            ("data.image", "ghcr.io/example/web:1.1.0")
        ]
        # (the helm.sh/chart label changes too: left out, as --strip-attrs does by default)
        assert {(f["path"], f["before"], f["after"]) for f in changes[("Deployment", RELEASE)]["fields"]} == {
            ("spec.replicas", 1, 2),
            ("spec.template.spec.containers[name=app].image", "ghcr.io/example/web:1.0.0", "ghcr.io/example/web:1.1.0"),
        }

        # Flux upgrades, as predicted; then nothing is left to change
        _sync(phoebe, flux_env)
        upgraded = _deployed(flux_env, "1.1.0")
        live = flux_env.api.get("apps/v1", "Deployment", NAMESPACE, RELEASE)
        assert live["spec"]["replicas"] == 2
        assert flux_env.api.get_or_none("v1", "Service", NAMESPACE, RELEASE) is not None
        after = diff()
        assert after.code == 0, after.stdout + after.stderr
        assert after.stdout.splitlines()[-1].startswith("no differences"), after.stdout
        assert upgraded["status"]["history"][0]["chartVersion"].startswith("1.1.0+")

        # a forced upgrade makes a new revision of the same chart and values (the sample's chart prints
        # .Release.Revision, which a render as an install cannot know): helm-controller makes no
        # upgrade of it next, so that is no difference
        revision = _history_revision(flux_env, "reloader")
        forced = phoebe(
            "sync", "hr", "kube-system/reloader", "--force", "--timeout", "5m", kubeconfig=flux_env.kubeconfig
        )
        assert forced.code == 0, forced.stdout + forced.stderr
        assert _history_revision(flux_env, "reloader") > revision
        again = diff()
        assert again.code == 0, again.stdout + again.stderr
        assert again.stdout.splitlines()[-1].startswith("no differences"), again.stdout
    finally:
        kustomization.write_text(original)
        for name in _app_files(flux_env, "1.0.0", {}):
            (flux_env.git_dir / APP / name).unlink(missing_ok=True)
        _sync(phoebe, flux_env)
