"""The honest test of ``phoebe diff``: what it predicts is what the real kustomize-controller
then does. Change the checkout, diff, let Flux apply it, diff again: no differences."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import PhoebeRunner
from tests.e2e.conftest import FluxEnv, sync_cascade

pytestmark = [pytest.mark.e2e, pytest.mark.repo]

APP = Path("kubernetes/apps/kube-system/reloader/app")
CONFIGMAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: phoebe-e2e
data:
  greeting: hello
"""


@pytest.fixture
def diff(phoebe: PhoebeRunner, flux_env: FluxEnv, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> PhoebeRunner:
    from tests.cluster.build import ensure_program, kustomize_program

    monkeypatch.setenv("PHOEBE_KUSTOMIZE", str(ensure_program(kustomize_program())))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    def run(*args: str):  # type: ignore[no-untyped-def]
        return phoebe(
            "diff", "kube-system/reloader", "--repo", str(flux_env.git_dir), *args, kubeconfig=flux_env.kubeconfig
        )

    return run  # type: ignore[return-value]


def _push_and_apply(phoebe: PhoebeRunner, flux_env: FluxEnv) -> None:
    """The source picks up the checkout; wait until every Kustomization applied it (the sample's
    failing app makes the sync exit 1 — it is not what this test looks at)."""
    _, items = sync_cascade(phoebe, flux_env)
    assert items["kube-system/reloader"]["result"] == "done", items["kube-system/reloader"]


def _objects(result) -> dict[str, dict]:  # type: ignore[no-untyped-def,type-arg]
    document = json.loads(result.stdout)
    return {f"{o['kind']}/{o['name']}": o for k in document["kustomizations"] for o in k["objects"]}


def test_diff_predicts_what_the_real_controller_applies(
    diff: PhoebeRunner, phoebe: PhoebeRunner, flux_env: FluxEnv
) -> None:
    settled = diff()
    assert (settled.code, settled.stdout.splitlines()[-1]) == (0, "no differences: 2 unchanged in 1 Kustomization")

    # a value changes and an object is added ...
    release = flux_env.git_dir / APP / "helmrelease.yaml"
    kustomization = flux_env.git_dir / APP / "kustomization.yaml"
    original_kustomization = kustomization.read_text()
    release.write_text(release.read_text().replace("reloadOnCreate: false", "reloadOnCreate: true"))
    (flux_env.git_dir / APP / "configmap.yaml").write_text(CONFIGMAP)
    kustomization.write_text(original_kustomization + "  - ./configmap.yaml\n")

    predicted = diff("-o", "json")
    assert predicted.code == 1, predicted.stderr
    objects = _objects(predicted)
    assert sorted((name, o["change"]) for name, o in objects.items()) == [
        ("ConfigMap/phoebe-e2e", "created"),
        ("HelmRelease/reloader", "changed"),
    ]
    assert [(f["path"], f["before"], f["after"]) for f in objects["HelmRelease/reloader"]["fields"]] == [
        ("spec.values.reloader.reloadOnCreate", False, True)
    ]

    # ... Flux applies it, and then there is nothing left to do
    _push_and_apply(phoebe, flux_env)
    applied = diff()
    assert (applied.code, applied.stdout.splitlines()[-1]) == (0, "no differences: 3 unchanged in 1 Kustomization")
    live = flux_env.api.get("v1", "ConfigMap", "kube-system", "phoebe-e2e")
    assert live["data"] == {"greeting": "hello"}

    # an object is removed: prune deletes it
    kustomization.write_text(original_kustomization)
    (flux_env.git_dir / APP / "configmap.yaml").unlink()
    removal = diff("-o", "json")
    assert removal.code == 1
    assert {name: o["change"] for name, o in _objects(removal).items()} == {"ConfigMap/phoebe-e2e": "deleted"}
    _push_and_apply(phoebe, flux_env)
    assert flux_env.api.get_or_none("v1", "ConfigMap", "kube-system", "phoebe-e2e") is None
    final = diff()
    assert (final.code, final.stdout.splitlines()[-1]) == (0, "no differences: 2 unchanged in 1 Kustomization")
