"""Flux controller Deployments for control planes where no real controller runs: created with
the labels `flux install` gives them and a ready status written by hand."""

from __future__ import annotations

from tests.cluster.api import Api
from tests.support import manifests

FLUX_CONTROLLERS = ("source-controller", "kustomize-controller", "helm-controller", "notification-controller")


def install_ready_controllers(api: Api, namespace: str = "flux-system") -> None:
    api.ensure_namespace(namespace)
    for name in FLUX_CONTROLLERS:
        deployment = api.apply(manifests.flux_controller_deployment(name, namespace))
        api.patch_status(deployment, manifests.deployment_ready_status(deployment))
