"""helm-controller's reading of a HelmRelease (names, namespaces, chart request, CRD policy,
post-renderers), helm template's output split as Helm stores a release, index and OCI manifest
handling, the chart package cache, and Secret values kept out of what build prints."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from phoebe_cli.flux.helmrelease import (
    ChartRequest,
    apply_common_metadata,
    oci_chart_version,
    post_render_kustomization,
    settings_of,
    shorten_name,
)
from phoebe_cli.flux.objects import ObjectRef
from phoebe_cli.kube.charts import FetchFailed, OciReference, chart_layer, resolve_url
from phoebe_cli.repo.charts import ChartProblem, parse_index, store_package
from phoebe_cli.repo.helm import split_manifest
from phoebe_cli.usecases.build import RenderedRelease, _masked_strings
from tests.support.chartrepo import gzipped_tar


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # helm-controller v1.6.4 internal/release/name_test.go
        ("release-name", "release-name"),
        (
            "release-name-with-very-long-name-which-is-longer-than-53-characters",
            "release-name-with-very-long-name-which-i-788ca0d0d7b0",
        ),
        (
            "another-release-name-with-very-long-name-which-is-longer-than-53-characters",
            "another-release-name-with-very-long-name-7e72150d5a36",
        ),
        ("", ""),
        ("x" * 53, "x" * 53),
    ],
)
def test_shorten_name_as_helm_controller(name: str, expected: str) -> None:
    assert shorten_name(name) == expected
    assert len(shorten_name(name)) <= 53


def _release(spec: dict[str, Any], name: str = "podinfo", namespace: str = "apps") -> dict[str, Any]:
    return {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


CHART = {"chart": {"spec": {"chart": "podinfo", "sourceRef": {"kind": "HelmRepository", "name": "podinfo"}}}}


def test_names_and_namespaces() -> None:
    plain = settings_of(_release(CHART))
    assert (plain.release_name, plain.release_namespace, plain.storage_namespace) == ("podinfo", "apps", "apps")
    targeted = settings_of(_release({**CHART, "targetNamespace": "web", "storageNamespace": "helm"}))
    assert (targeted.release_name, targeted.release_namespace, targeted.storage_namespace) == (
        "web-podinfo",
        "web",
        "helm",
    )
    named = settings_of(_release({**CHART, "targetNamespace": "web", "releaseName": "pi"}))
    assert named.release_name == "pi"
    assert named.helm_chart_name == "apps-podinfo"


def test_long_target_namespace_name_is_shortened() -> None:
    settings = settings_of(
        _release({**CHART, "targetNamespace": "a-very-long-target-namespace-name"}, name="and-a-long-release-name")
    )
    whole = "a-very-long-target-namespace-name-and-a-long-release-name"
    assert settings.release_name == whole[:40] + "-" + hashlib.sha256(whole.encode()).hexdigest()[:12]
    assert (
        settings.release_name
        == "a-very-long-target-namespace-name-and-a--" + hashlib.sha256(whole.encode()).hexdigest()[:12]
    )


def test_chart_requests() -> None:
    assert settings_of(_release(CHART)).chart == ChartRequest("HelmRepository", "apps", "podinfo", "podinfo", "*")
    versioned = {
        "chart": {
            "spec": {
                "chart": "./charts/x",
                "version": "~1.2",
                "valuesFiles": ["a.yaml"],
                "sourceRef": {"kind": "GitRepository", "name": "repo", "namespace": "flux-system"},
            }
        }
    }
    assert settings_of(_release(versioned)).chart == ChartRequest(
        "GitRepository", "flux-system", "repo", "./charts/x", "~1.2", ("a.yaml",)
    )
    ref = settings_of(_release({"chartRef": {"kind": "OCIRepository", "name": "podinfo"}})).chart
    assert ref == ChartRequest("OCIRepository", "apps", "podinfo", via_chart_ref=True)
    bad = settings_of(_release({"chartRef": {"kind": "GitRepository", "name": "x"}}))
    assert bad.chart is None
    assert bad.problem == "chartRef kind GitRepository is not OCIRepository or HelmChart"
    assert settings_of(_release({})).problem == "neither spec.chart nor spec.chartRef is set"


def test_crd_policy_defaults() -> None:
    default = settings_of(_release(CHART))
    assert (default.install_crds, default.upgrade_crds) == ("Create", "Skip")
    chosen = settings_of(_release({**CHART, "install": {"crds": "Skip"}, "upgrade": {"crds": "CreateReplace"}}))
    assert (chosen.install_crds, chosen.upgrade_crds) == ("Skip", "CreateReplace")


def test_post_render_kustomization_as_helm_controller_builds_it() -> None:
    entry = {
        "kustomize": {
            "patches": [
                {"target": {"kind": "Deployment", "name": "web"}, "patch": "- op: remove\n  path: /spec/replicas\n"}
            ],
            "images": [{"name": "nginx", "newTag": "1.27"}],
        }
    }
    assert post_render_kustomization(entry, "helm-output.yaml") == {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": ["helm-output.yaml"],
        "images": [{"name": "nginx", "newTag": "1.27"}],
        "patches": [
            {"patch": "- op: remove\n  path: /spec/replicas\n", "target": {"kind": "Deployment", "name": "web"}}
        ],
    }
    assert post_render_kustomization({}, "x") is None


def test_origin_labels_win_over_common_metadata() -> None:
    settings = settings_of(
        _release(
            {
                **CHART,
                "commonMetadata": {
                    "labels": {"team": "a", "helm.toolkit.fluxcd.io/name": "other"},
                    "annotations": {"note": "n"},
                },
            }
        )
    )
    obj = {"kind": "ConfigMap", "metadata": {"name": "x", "labels": {"app": "x"}}}
    apply_common_metadata(obj, settings)
    assert obj["metadata"] == {
        "name": "x",
        "labels": {
            "app": "x",
            "team": "a",
            "helm.toolkit.fluxcd.io/name": "podinfo",
            "helm.toolkit.fluxcd.io/namespace": "apps",
        },
        "annotations": {"note": "n"},
    }
    crd = {"kind": "CustomResourceDefinition", "metadata": {"name": "c"}}
    apply_common_metadata(crd, settings, crd=True)
    assert crd["metadata"] == {
        "name": "c",
        "labels": {"helm.toolkit.fluxcd.io/name": "podinfo", "helm.toolkit.fluxcd.io/namespace": "apps"},
    }


HELM_OUTPUT = """---
# Source: demo/crds/widgets.yaml
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
---
# Source: demo/charts/sub/crds/gadgets.yaml
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.example.com
---
# Source: demo/templates/crds/templated.yaml
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: templated.example.com
---
# Source: demo/templates/cm.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: demo
data:
  enabled: yes
---
# Source: demo/templates/job.yaml
apiVersion: batch/v1
kind: Job
metadata:
  name: migrate
  annotations:
    helm.sh/hook: pre-upgrade
"""


def test_split_manifest_keeps_crds_and_hooks_apart() -> None:
    rendered = split_manifest(HELM_OUTPUT)
    assert [o["metadata"]["name"] for o in rendered.crds] == ["widgets.example.com", "gadgets.example.com"]
    assert [o["metadata"]["name"] for o in rendered.manifest] == ["templated.example.com", "demo"]
    assert [o["metadata"]["name"] for o in rendered.hooks] == ["migrate"]
    # read as Helm hands manifests to the API (sigs.k8s.io/yaml, YAML 1.1): yes is a boolean
    assert rendered.manifest[1]["data"] == {"enabled": True}


INDEX = """apiVersion: v1
entries:
  podinfo:
  - version: 6.5.0
    urls: [podinfo-6.5.0.tgz]
    digest: abc
    created: "2024-01-01T00:00:00Z"
  - version: 6.6.0
    urls: [https://cdn.example.com/podinfo-6.6.0.tgz]
generated: "2024-01-01T00:00:00Z"
"""


def test_index_parsing() -> None:
    entries = parse_index(INDEX, "podinfo")
    assert entries is not None
    assert [(e.version, e.urls, e.digest) for e in entries] == [
        ("6.5.0", ("podinfo-6.5.0.tgz",), "abc"),
        ("6.6.0", ("https://cdn.example.com/podinfo-6.6.0.tgz",), ""),
    ]
    assert parse_index(INDEX, "other") is None
    with pytest.raises(ChartProblem, match="no entries"):
        parse_index("apiVersion: v1\n", "podinfo")
    assert resolve_url("http://h/charts", "podinfo-6.5.0.tgz") == "http://h/charts/podinfo-6.5.0.tgz"
    assert resolve_url("http://h/charts/", "https://cdn/x.tgz") == "https://cdn/x.tgz"


def test_oci_references_and_manifests() -> None:
    ref = OciReference.parse("oci://ghcr.io/bjw-s-labs/helm/", plain_http=False).child("app-template")
    assert (ref.host, ref.repository, ref.base) == (
        "ghcr.io",
        "bjw-s-labs/helm/app-template",
        "https://ghcr.io/v2/bjw-s-labs/helm/app-template",
    )
    assert OciReference.parse("oci://127.0.0.1:5000/charts", plain_http=True).base == "http://127.0.0.1:5000/v2/charts"
    with pytest.raises(FetchFailed):
        OciReference.parse("oci://host-only")
    manifest = {
        "layers": [
            {"mediaType": "application/vnd.cncf.helm.chart.provenance.v1.prov", "digest": "sha256:p"},
            {"mediaType": "application/vnd.cncf.helm.chart.content.v1.tar+gzip", "digest": "sha256:c"},
        ]
    }
    assert chart_layer(manifest) == "sha256:c"
    assert chart_layer(manifest, "application/vnd.cncf.helm.chart.provenance.v1.prov") == "sha256:p"
    assert chart_layer({"layers": []}) is None


def test_chart_packages_are_cached_by_digest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    data = gzipped_tar({"demo/Chart.yaml": "apiVersion: v2\nname: demo\nversion: 1.0.0\n", "demo/templates/a.yaml": ""})
    chart = store_package(data)
    digest = hashlib.sha256(data).hexdigest()
    assert (chart.name, chart.version, chart.digest) == ("demo", "1.0.0", f"sha256:{digest}")
    assert chart.path == tmp_path / "phoebe" / "charts" / digest / "demo"
    assert (tmp_path / "phoebe" / "charts" / f"{digest}.tgz").stat().st_mode & 0o777 == 0o600
    assert store_package(data, f"sha256:{digest}") == chart
    with pytest.raises(ChartProblem, match="digest"):
        store_package(data, "sha256:" + "0" * 64)
    with pytest.raises(ChartProblem, match="out of it"):
        store_package(gzipped_tar({"../evil/Chart.yaml": "name: x\n"}))
    with pytest.raises(ChartProblem, match="gzipped tar"):
        store_package(b"not a chart")


def test_secret_values_are_scrubbed_from_what_is_shown() -> None:
    real = {"db": {"password": "hunter22", "user": "app"}, "pin": "1"}
    shown = {"db": {"password": "***", "user": "app"}, "pin": "***"}
    secrets = frozenset(_masked_strings(real, shown))
    assert secrets == {"hunter22"}  # "1" is too short to scrub safely
    release = RenderedRelease(ObjectRef("HelmRelease", "apps", "x"), "x", "apps", "apps", secret_strings=secrets)
    release.objects = [
        {"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"url": "postgres://app:hunter22@db"}},
        {"kind": "Secret", "metadata": {"name": "s"}, "stringData": {"password": "hunter22"}, "data": {"x": "eHl6"}},
    ]
    assert release.shown_objects() == [
        {"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"url": "postgres://app:***@db"}},
        {"kind": "Secret", "metadata": {"name": "s"}, "stringData": {"password": "***"}, "data": {"x": "***"}},
    ]


def test_oci_chart_version_as_helm_controller_mutates_it() -> None:
    digest = "sha256:b08f1622ce30aa0000000000000000000000000000000000000000000000abcd"
    assert oci_chart_version("v1.3.0", f"v1.3.0@{digest}") == "1.3.0+b08f1622ce30"
    assert oci_chart_version("1.3.0-rc.1+old", f"1.3.0-rc.1_old@{digest}") == "1.3.0-rc.1+b08f1622ce30"
    assert oci_chart_version("1.3.0", digest) == "1.3.0+b08f1622ce30"
    assert oci_chart_version("1.3.0", f"latest@{digest}") == "1.3.0+b08f1622ce30"  # not a version: no check
    with pytest.raises(ValueError, match=r"artifact revision 1\.4\.0 does not match chart version 1\.3\.0"):
        oci_chart_version("1.3.0", f"1.4.0@{digest}")
    with pytest.raises(ValueError, match="invalid chart version"):
        oci_chart_version("one", digest)
