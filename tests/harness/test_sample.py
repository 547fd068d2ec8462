"""The sample GitOps repository loads with its scenario statuses."""

from __future__ import annotations

import pytest

from tests.cluster.api import Api
from tests.cluster.controlplane import ControlPlane, new_workdir
from tests.cluster.crds import install_crds
from tests.conftest import ClusterPool
from tests.support.sample import inventory_entry, load_sample_repository, read_sample

KS = ("kustomize.toolkit.fluxcd.io/v1", "Kustomization")


def ready(obj: dict) -> tuple[str, str]:
    cond = next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")
    return cond["status"], cond["reason"]


def test_reading_the_sample() -> None:
    kustomizations = read_sample()
    assert len(kustomizations) == 31
    assert ("flux-system", "cluster-apps") in kustomizations
    sonarr = kustomizations[("media", "sonarr")]
    assert sonarr.obj["spec"]["dependsOn"][0] == {"name": "rook-ceph-cluster", "namespace": "rook-ceph"}
    names = {(o["kind"], o["metadata"]["name"]) for o in sonarr.objects}
    # the volsync component, substituted with APP=sonarr
    assert ("ExternalSecret", "sonarr-volsync") in names
    assert ("HelmRelease", "sonarr") in names
    assert all(o["metadata"]["namespace"] == "media" for o in sonarr.objects)
    children = {inventory_entry(o)["id"] for o in kustomizations[("flux-system", "cluster-apps")].objects}
    assert "media_sonarr_kustomize.toolkit.fluxcd.io_Kustomization" in children
    assert "_media__Namespace" in children


@pytest.mark.cluster
def test_loading_the_sample(cluster_pool: ClusterPool) -> None:
    # its own control plane: the sample's flux-system objects must not meet other tests'
    plane = ControlPlane(new_workdir("phoebe-sample-")).start()
    try:
        api = Api(plane.server, plane.admin_token, plane.ca_file)
        install_crds(api, "newest")
        loaded = load_sample_repository(api)

        assert len(loaded.of_kind("Kustomization")) == 31
        assert ready(api.get(*KS, "rook-ceph", "rook-ceph-cluster")) == ("False", "ReconciliationFailed")
        assert ready(api.get(*KS, "media", "sonarr")) == ("False", "DependencyNotReady")
        plex = api.get(*KS, "media", "plex")
        assert plex["spec"]["suspend"] is True
        apps = api.get(*KS, "flux-system", "cluster-apps")
        assert ready(apps) == ("True", "ReconciliationSucceeded")
        assert {"id": "media_sonarr_kustomize.toolkit.fluxcd.io_Kustomization", "v": "v1"} in apps["status"][
            "inventory"
        ]["entries"]
        # nothing of the failing or blocked apps was applied
        assert api.get_or_none("helm.toolkit.fluxcd.io/v2", "HelmRelease", "media", "sonarr") is None
        assert api.get_or_none("helm.toolkit.fluxcd.io/v2", "HelmRelease", "rook-ceph", "rook-ceph-cluster") is None
        chart = api.get("source.toolkit.fluxcd.io/v1", "HelmChart", "flux-system", "cert-manager-cert-manager")
        assert chart["spec"]["chart"] == "cert-manager"
        # loading again changes nothing that matters (server-side apply)
        again = load_sample_repository(api)
        assert len(again.created) == len(loaded.created)
        api.close()
    finally:
        plane.remove()
