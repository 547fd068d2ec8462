from __future__ import annotations

import pytest

from phoebe_cli.flux import kinds


@pytest.mark.parametrize(
    ("typed", "kind"),
    [
        ("ks", "Kustomization"),
        ("Kustomization", "Kustomization"),
        ("kustomizations", "Kustomization"),
        ("kustomization.kustomize.toolkit.fluxcd.io", "Kustomization"),
        ("hr", "HelmRelease"),
        ("HelmReleases", "HelmRelease"),
        ("git", "GitRepository"),
        ("gitrepo", "GitRepository"),
        ("oci", "OCIRepository"),
        ("ocirepository", "OCIRepository"),
        ("helmrepo", "HelmRepository"),
        ("chart", "HelmChart"),
        ("bucket", "Bucket"),
        ("es", "ExternalSecret"),
        ("  EXTERNALSECRET ", "ExternalSecret"),
    ],
)
def test_names_people_type(typed: str, kind: str) -> None:
    found = kinds.kind_named(typed)
    assert found is not None
    assert found.kind == kind


def test_unknown_name() -> None:
    assert kinds.kind_named("deployment") is None


def test_names_are_unambiguous() -> None:
    seen: dict[str, str] = {}
    for kind in kinds.ALL_KINDS:
        for name in kind.names:
            assert seen.setdefault(name, kind.kind) == kind.kind, name


def test_no_reconcile_loop_for_alerts_and_providers() -> None:
    assert not kinds.ALERT.reconcilable
    assert not kinds.PROVIDER.reconcilable
    assert kinds.KUSTOMIZATION.reconcilable


def test_kind_of_group_and_kind() -> None:
    assert kinds.kind_of("helm.toolkit.fluxcd.io", "HelmRelease") is kinds.HELM_RELEASE
    assert kinds.kind_of("apps", "Deployment") is None
    assert "external-secrets.io" not in kinds.FLUX_GROUPS
