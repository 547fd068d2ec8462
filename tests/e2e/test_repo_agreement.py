"""The repo model agrees with the real kustomize-controller: for every Kustomization the
controller applied, the objects phoebe says the checkout yields are exactly the controller's
inventory (ids and versions)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import PhoebeRunner
from tests.e2e.conftest import KS, FluxEnv

pytestmark = [pytest.mark.e2e, pytest.mark.repo]


def test_model_objects_are_the_controllers_inventory(
    flux_env: FluxEnv, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from phoebe_cli.flux.objects import ObjectRef
    from phoebe_cli.repo.model import ModelOptions, inventory_id, load_model
    from tests.cluster.build import ensure_program, kustomize_program

    monkeypatch.setenv("PHOEBE_KUSTOMIZE", str(ensure_program(kustomize_program())))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    model = load_model(flux_env.git_dir, ModelOptions(use_cache=False))

    compared = 0
    for live in flux_env.api.list(*KS[:2], None):
        meta, status = live["metadata"], live.get("status") or {}
        entries = (status.get("inventory") or {}).get("entries")
        if entries is None:
            continue  # never applied (failing, blocked or suspended from the start)
        ref = ObjectRef("Kustomization", meta["namespace"], meta["name"])
        declared = model.kustomizations[ref]
        expected = sorted(
            (inventory_id(o, ref.namespace), o["apiVersion"].rpartition("/")[2]) for o in declared.objects
        )
        applied = sorted((e["id"], e["v"]) for e in entries)
        assert expected == applied, f"{ref}: model and kustomize-controller disagree"
        compared += 1
    assert compared >= 25  # all but the failing, blocked and suspended ones


def test_status_repo_compare_against_real_flux(
    phoebe: PhoebeRunner, flux_env: FluxEnv, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from tests.cluster.build import ensure_program, kustomize_program

    monkeypatch.setenv("PHOEBE_KUSTOMIZE", str(ensure_program(kustomize_program())))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    result = phoebe(
        "status", "--repo", str(flux_env.git_dir), "--compare", "-o", "json", kubeconfig=flux_env.kubeconfig
    )

    assert result.code == 1, result.stderr  # the sample has a failing app
    rows = {f"{o['kind']}/{o['namespace']}/{o['name']}": o for o in json.loads(result.stdout)["objects"]}
    assert rows["Kustomization/rook-ceph/rook-ceph-cluster"]["state"] == "failing"
    assert rows["HelmRelease/default/homepage"]["state"] == "in-sync"
    # Only what the failing, blocked and suspended Kustomizations would apply is missing; nothing is orphaned.
    missing = {name: row["message"] for name, row in rows.items() if row["state"] in ("missing", "orphan")}
    assert missing == {
        "ExternalSecret/media/plex-volsync": "not applied: Kustomization/media/plex is suspended",
        "HelmRelease/media/plex": "not applied: Kustomization/media/plex is suspended",
        "OCIRepository/media/plex": "not applied: Kustomization/media/plex is suspended",
        "ExternalSecret/media/sonarr": "not applied: Kustomization/media/sonarr is failing",
        "ExternalSecret/media/sonarr-volsync": "not applied: Kustomization/media/sonarr is failing",
        "HelmRelease/media/sonarr": "not applied: Kustomization/media/sonarr is failing",
        "OCIRepository/media/sonarr": "not applied: Kustomization/media/sonarr is failing",
        "HelmRelease/rook-ceph/rook-ceph-cluster": "not applied: Kustomization/rook-ceph/rook-ceph-cluster is failing",
    }
