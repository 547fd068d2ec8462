from __future__ import annotations

from typing import Any

import pytest

from phoebe_cli.flux.installation import (
    CheckReport,
    InstallState,
    controller_report,
    flux_version,
    kind_reports,
    problems_of,
    strict_substitution_of,
)


def deployment(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "metadata": {
            "name": "kustomize-controller",
            "namespace": "flux-system",
            "generation": 3,
            "labels": {"app.kubernetes.io/version": "v2.6.4"},
        },
        "spec": {
            "replicas": 1,
            "template": {
                "spec": {
                    "containers": [
                        {"name": "sidecar", "image": "busybox"},
                        {"name": "manager", "image": "ghcr.io/fluxcd/kustomize-controller:v1.6.1"},
                    ]
                }
            },
        },
        "status": {"observedGeneration": 3, "replicas": 1, "readyReplicas": 1, "updatedReplicas": 1},
    }
    for path, value in overrides.items():
        section, key = path.split("__")
        doc[section][key] = value
    return doc


def test_ready_controller() -> None:
    report = controller_report(deployment())
    assert report.ready
    assert report.message == "1/1 replicas ready"
    assert report.image == "ghcr.io/fluxcd/kustomize-controller:v1.6.1"
    assert report.version == "v2.6.4"


def test_version_falls_back_to_the_image_tag() -> None:
    doc = deployment()
    doc["metadata"]["labels"] = {}
    assert controller_report(doc).version == "v1.6.1"


def test_unready_replicas_with_the_available_message() -> None:
    report = controller_report(
        deployment(
            status__readyReplicas=0,
            status__conditions=[
                {"type": "Available", "status": "False", "message": "Deployment does not have minimum availability."}
            ],
        )
    )
    assert not report.ready
    assert report.message == "0/1 replicas ready: Deployment does not have minimum availability."


def test_scaled_to_zero_is_not_ready() -> None:
    report = controller_report(deployment(spec__replicas=0))
    assert (report.ready, report.message) == (False, "scaled to zero replicas")


def test_rollout_not_observed() -> None:
    report = controller_report(deployment(status__observedGeneration=2))
    assert (report.ready, report.message) == (False, "rollout of the latest spec not yet observed")


def test_rollout_in_progress() -> None:
    report = controller_report(deployment(spec__replicas=2, status__readyReplicas=2, status__updatedReplicas=1))
    assert (report.ready, report.message) == (False, "rollout in progress: 1/2 replicas updated")


def test_flux_version_is_the_common_label() -> None:
    a = controller_report(deployment())
    assert flux_version([a, a]) == "v2.6.4"
    doc = deployment()
    doc["metadata"]["labels"] = {}
    assert flux_version([controller_report(doc)]) is None  # a controller tag is not Flux's version


def test_states_and_problems() -> None:
    kinds = kind_reports({("kustomize.toolkit.fluxcd.io", "Kustomization"): ["v1", "v1beta2"]})
    ks = next(k for k in kinds if k.kind == "Kustomization")
    assert (ks.installed, ks.versions, ks.preferred_version) == (True, ("v1", "v1beta2"), "v1")
    assert not next(k for k in kinds if k.kind == "HelmRelease").installed

    assert problems_of(kinds, [], "flux-system", namespace_exists=False) == (
        "namespace flux-system does not exist",
        "no Flux controllers in namespace flux-system (Deployments labelled app.kubernetes.io/part-of=flux)",
    )
    none_installed = kind_reports({("external-secrets.io", "ExternalSecret"): ["v1"]})
    assert problems_of(none_installed, [], "flux-system", None) == ("no Flux CRDs are served by this cluster",)

    report = CheckReport("c", "s", "v1", "flux-system", None, none_installed, (), ("x",))
    assert report.state is InstallState.NOT_INSTALLED
    healthy = CheckReport("c", "s", "v1", "flux-system", None, kinds, (controller_report(deployment()),), ())
    assert healthy.state is InstallState.HEALTHY


def _kustomize_controller(image: str, *args: str) -> dict[str, object]:
    container = {"name": "manager", "image": image, "args": list(args)}
    return {"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "image": "x:v9.9"}, container]}}}}


@pytest.mark.parametrize(
    ("deployment", "expected"),
    [
        (_kustomize_controller("ghcr.io/fluxcd/kustomize-controller:v1.9.6"), True),  # on by default from v1.9
        (_kustomize_controller("ghcr.io/fluxcd/kustomize-controller:v1.8.2"), False),
        (_kustomize_controller("registry.local/kustomize-controller@sha256:abc"), None),  # no version to read
        (
            _kustomize_controller(
                "ghcr.io/fluxcd/kustomize-controller:v1.9.6", "--feature-gates=StrictPostBuildSubstitutions=false"
            ),
            False,
        ),
        (
            _kustomize_controller(
                "ghcr.io/fluxcd/kustomize-controller:v1.7.0",
                "--feature-gates",
                "GroupChangeLog=true,StrictPostBuildSubstitutions=T",
            ),
            True,
        ),
        (
            _kustomize_controller(
                "x/kustomize-controller:v1.7.0",
                "--feature-gates=StrictPostBuildSubstitutions=true",
                "--feature-gates=StrictPostBuildSubstitutions=false",
            ),
            False,  # a later flag wins
        ),
    ],
    ids=["v1.9-default", "v1.8-default", "no-version", "opted-out", "separate-value", "last-wins"],
)
def test_strict_substitution_of_a_kustomize_controller(deployment: dict[str, object], expected: bool | None) -> None:
    assert strict_substitution_of(deployment) is expected
