"""Every version the test control plane uses, pinned in one place.

The kube-apiserver and etcd versions live in the Go modules under ``go/`` (their go.mod is what
is built); the build reads them from there. The Flux CRDs come from the controllers' own Go
modules (``config/crd/bases/``) through the Go module proxy.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CrdSource:
    module: str
    version: str
    directory: str  # inside the module
    files: tuple[str, ...] = ()  # empty: every *.yaml in the directory


FLUX_MODULE = "github.com/fluxcd/{name}"

# The older set still serves the deprecated versions (v1beta2 sources and Kustomizations,
# v2beta2 HelmReleases) beside v1/v2; the newest set serves single-version APIs.
CRD_SETS: dict[str, tuple[CrdSource, ...]] = {
    "newest": (
        CrdSource("github.com/fluxcd/source-controller", "v1.9.6", "config/crd/bases"),
        CrdSource("github.com/fluxcd/kustomize-controller", "v1.9.6", "config/crd/bases"),
        CrdSource("github.com/fluxcd/helm-controller", "v1.6.4", "config/crd/bases"),
        CrdSource("github.com/fluxcd/notification-controller", "v1.6.0", "config/crd/bases"),
    ),
    "older": (
        CrdSource("github.com/fluxcd/source-controller", "v1.7.3", "config/crd/bases"),
        CrdSource("github.com/fluxcd/kustomize-controller", "v1.7.3", "config/crd/bases"),
        CrdSource("github.com/fluxcd/helm-controller", "v1.4.3", "config/crd/bases"),
        CrdSource("github.com/fluxcd/notification-controller", "v1.6.0", "config/crd/bases"),
    ),
}

EXTERNAL_SECRETS_CRDS = CrdSource(
    "github.com/external-secrets/external-secrets",
    "v0.16.2",
    "config/crds/bases",
    ("external-secrets.io_externalsecrets.yaml", "external-secrets.io_clustersecretstores.yaml"),
)

DEFAULT_CRD_SET = "newest"
