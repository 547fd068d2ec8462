from __future__ import annotations

from phoebe_cli.kube.discovery import ServedKind, _from_aggregated


def test_aggregated_discovery_keeps_preference_order_per_kind() -> None:
    answer = {
        "kind": "APIGroupDiscoveryList",
        "items": [
            {
                "metadata": {"name": "source.toolkit.fluxcd.io"},
                "versions": [
                    {
                        "version": "v1",
                        "resources": [
                            {
                                "resource": "gitrepositories",
                                "responseKind": {"kind": "GitRepository"},
                                "scope": "Namespaced",
                            },
                        ],
                    },
                    {
                        "version": "v1beta2",
                        "resources": [
                            {
                                "resource": "gitrepositories",
                                "responseKind": {"kind": "GitRepository"},
                                "scope": "Namespaced",
                            },
                            {"resource": "buckets", "responseKind": {"kind": "Bucket"}, "scope": "Namespaced"},
                        ],
                    },
                ],
            },
            {
                "metadata": {"name": "apps"},
                "versions": [
                    {
                        "version": "v1",
                        "resources": [
                            {"resource": "deployments", "responseKind": {"kind": "Deployment"}, "scope": "Namespaced"},
                        ],
                    }
                ],
            },
        ],
    }

    found = _from_aggregated(answer, {"source.toolkit.fluxcd.io"})

    assert set(found) == {("source.toolkit.fluxcd.io", "GitRepository"), ("source.toolkit.fluxcd.io", "Bucket")}
    git = found[("source.toolkit.fluxcd.io", "GitRepository")]
    assert git.versions == ("v1", "v1beta2")
    assert git.preferred_version == "v1"
    # a kind served only in an older version prefers that version
    assert found[("source.toolkit.fluxcd.io", "Bucket")].preferred_version == "v1beta2"


def test_paths() -> None:
    ks = ServedKind("kustomize.toolkit.fluxcd.io", "Kustomization", "kustomizations", True, ("v1",))
    assert ks.collection_path() == "/apis/kustomize.toolkit.fluxcd.io/v1/kustomizations"
    assert ks.collection_path("apps") == "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/apps/kustomizations"
    assert ks.object_path("apps", "web", "status") == (
        "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/apps/kustomizations/web/status"
    )
    namespaces = ServedKind("", "Namespace", "namespaces", False, ("v1",))
    assert namespaces.object_path(None, "x") == "/api/v1/namespaces/x"
    assert namespaces.api_version == "v1"
