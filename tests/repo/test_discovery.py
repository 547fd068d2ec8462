"""Roots in any layout, several clusters, narrowing, severities as Flux decides them, sources of
this same repository, and identical builds done once. Real kustomize, the real entry point."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from phoebe_cli.flux.objects import ObjectRef
from phoebe_cli.repo.model import ModelOptions, RepoModel, load_model
from tests.conftest import PhoebeRunner
from tests.repo.conftest import GIT_REPOSITORY, RepoWriter, config_map, flux_ks, kustomization_yaml

pytestmark = pytest.mark.repo

KS = "Kustomization"


def _load(root: Path, **options: Any) -> RepoModel:
    return load_model(root, ModelOptions(use_cache=False, **options))


def _bootstrap(cluster: str) -> dict[str, str]:
    """What `flux bootstrap` writes for clusters/<cluster>, and an apps Kustomization beside it."""
    sync = GIT_REPOSITORY + "---\n" + flux_ks("flux-system", f"./clusters/{cluster}")
    return {
        f"clusters/{cluster}/flux-system/gotk-sync.yaml": sync,
        f"clusters/{cluster}/flux-system/gotk-components.yaml": (
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: flux-system\n"
        ),
        f"clusters/{cluster}/flux-system/kustomization.yaml": kustomization_yaml(
            "gotk-components.yaml", "gotk-sync.yaml"
        ),
        f"clusters/{cluster}/apps.yaml": flux_ks("apps", f"./apps/{cluster}"),
        f"apps/{cluster}/cm.yaml": config_map(f"settings-{cluster}", "default", {"cluster": cluster}),
    }


def test_the_flux_bootstrap_layout_needs_no_root_file(write_repo: RepoWriter, phoebe: PhoebeRunner) -> None:
    root = write_repo(_bootstrap("home"))

    model = _load(root)
    result = phoebe("validate", str(root))

    assert [str(r) for r in model.roots] == ["Kustomization/flux-system/flux-system"]
    assert model.cluster == "home"
    objects = model.objects
    assert objects[ObjectRef("GitRepository", "flux-system", "flux-system")].declared_by == ObjectRef(
        KS, "flux-system", "flux-system"
    )
    assert objects[ObjectRef(KS, "flux-system", "apps")].declared_by == ObjectRef(KS, "flux-system", "flux-system")
    assert result.code == 0, result.stdout + result.stderr
    assert result.stdout.startswith("✓ 2 Kustomizations, 3 Flux objects: 0 errors, 0 warnings (")


def test_several_clusters_need_cluster(write_repo: RepoWriter, phoebe: PhoebeRunner) -> None:
    root = write_repo({**_bootstrap("prod"), **_bootstrap("staging")})

    unchosen = phoebe("validate", str(root))
    prod = phoebe("status", "--repo", str(root), "--cluster", "prod", "ks", "-o", "table")
    staging = _load(root, cluster="staging")
    unknown = phoebe("validate", str(root), "--cluster", "dev")

    assert (unchosen.code, unchosen.stdout) == (2, "")
    assert unchosen.stderr == (
        f"phoebe: error: {root} holds several clusters (prod, staging): choose one with --cluster NAME\n"
    )
    assert prod.code == 0, prod.stderr
    assert "./apps/prod" in prod.stdout and "./apps/staging" not in prod.stdout
    apps = staging.kustomizations[ObjectRef(KS, "flux-system", "apps")]
    assert apps.objects[0]["data"] == {"cluster": "staging"}
    assert (unknown.code, unknown.stdout) == (2, "")
    assert unknown.stderr == f"phoebe: error: --cluster dev: no such cluster in {root} (clusters: prod, staging)\n"


def test_flux_config_layout(write_repo: RepoWriter) -> None:
    root = write_repo(
        {
            "flux/config/cluster.yaml": GIT_REPOSITORY + "---\n" + flux_ks("cluster", "./flux/apps"),
            "flux/apps/kustomization.yaml": kustomization_yaml("web.yaml"),
            "flux/apps/web.yaml": flux_ks("web", "./deploy/web", "default"),
            "deploy/web/cm.yaml": config_map("web", "default", {"a": "b"}),
        }
    )

    model = _load(root)

    assert [str(r) for r in model.roots] == ["Kustomization/flux-system/cluster"]
    web = model.kustomizations[ObjectRef(KS, "default", "web")]
    assert [o["metadata"]["name"] for o in web.objects] == ["web"]


FLUX_INSTANCE = """
apiVersion: fluxcd.controlplane.io/v1
kind: FluxInstance
metadata:
  name: flux
  namespace: flux-system
spec:
  distribution:
    version: "2.x"
    registry: ghcr.io/fluxcd
  sync:
    kind: GitRepository
    url: https://example.invalid/home-ops.git
    ref: refs/heads/main
    path: kubernetes/flux/cluster
"""


def test_a_flux_instance_sync_is_the_root(write_repo: RepoWriter, phoebe: PhoebeRunner) -> None:
    root = write_repo(
        {
            "kubernetes/flux/cluster/ks.yaml": flux_ks("cluster-apps", "./kubernetes/apps"),
            "kubernetes/apps/kustomization.yaml": kustomization_yaml("flux-system/instance.yaml", "web/ks.yaml"),
            "kubernetes/apps/flux-system/instance.yaml": FLUX_INSTANCE,
            "kubernetes/apps/web/ks.yaml": flux_ks("web", "./kubernetes/apps/web/app", "default"),
            "kubernetes/apps/web/app/cm.yaml": config_map("web", "default", {"a": "b"}),
        }
    )

    model = _load(root)
    result = phoebe("validate", str(root))

    assert [str(r) for r in model.roots] == ["Kustomization/flux-system/flux-system"]
    kustomizations = model.kustomizations
    assert kustomizations[ObjectRef(KS, "flux-system", "flux-system")].path == "kubernetes/flux/cluster"
    assert kustomizations[ObjectRef(KS, "flux-system", "cluster-apps")].origin.parent == ObjectRef(
        KS, "flux-system", "flux-system"
    )
    assert ObjectRef(KS, "default", "web") in kustomizations
    assert result.code == 0, result.stdout + result.stderr


def test_a_checkout_without_flux_objects_is_a_usage_error(write_repo: RepoWriter, phoebe: PhoebeRunner) -> None:
    root = write_repo({"app/cm.yaml": config_map("a", "default", {"k": "v"})})

    result = phoebe("validate", str(root))

    assert (result.code, result.stdout) == (2, "")
    assert result.stderr == (
        f"phoebe: error: no Flux objects in {root}: nothing to read as Flux would (is it a Flux repository? "
        "--root-file FILE names the root Kustomizations)\n"
    )


def _apps_repo(write_repo: RepoWriter, apps: dict[str, str], files: dict[str, str], name: str = "checkout") -> Path:
    return write_repo(
        {
            "kubernetes/flux/cluster.yaml": GIT_REPOSITORY + "---\n" + flux_ks("cluster-apps", "./kubernetes/apps"),
            "kubernetes/apps/kustomization.yaml": kustomization_yaml("ks.yaml"),
            "kubernetes/apps/ks.yaml": "---\n".join(apps.values()),
            **files,
        },
        name=name,
    )


def test_another_git_repository_of_this_same_repository_is_built_from_the_checkout(write_repo: RepoWriter) -> None:
    other_branch = GIT_REPOSITORY.replace("name: flux-system\n  namespace", "name: release\n  namespace").replace(
        "branch: main", "branch: release"
    )
    elsewhere = other_branch.replace("name: release\n", "name: elsewhere\n").replace("home-ops", "another-repo")
    root = _apps_repo(
        write_repo,
        {
            "source": other_branch,
            "other": elsewhere,
            "web": flux_ks("web", "./deploy/web", "default", source="release"),
            "far": flux_ks("far", "./deploy/web", "default", source="elsewhere"),
        },
        {"deploy/web/cm.yaml": config_map("web", "default", {"a": "b"})},
    )

    model = _load(root)

    web = model.kustomizations[ObjectRef(KS, "default", "web")]
    far = model.kustomizations[ObjectRef(KS, "default", "far")]
    assert (web.state, web.source_dir, [o["metadata"]["name"] for o in web.objects]) == ("built", root, ["web"])
    assert far.state == "not-in-checkout"


def test_unset_variables_are_warnings_unless_flux_is_strict(write_repo: RepoWriter, phoebe: PhoebeRunner) -> None:
    """kustomize-controller substitutes "" for an unset variable, unless its StrictPostBuildSubstitutions
    feature gate is on: then the build fails, and validate says so without --strict."""
    apps = {"web": flux_ks("web", "./deploy/web", "default", extra="postBuild:\n  substitute:\n    SET: web\n")}
    cm = config_map("web", "default", {"a": "${SET}", "b": "${UNSET}"})
    lenient = _apps_repo(write_repo, apps, {"deploy/web/cm.yaml": cm})
    patch = textwrap.dedent(
        """\
        apiVersion: kustomize.config.k8s.io/v1beta1
        kind: Kustomization
        resources: [gotk-components.yaml]
        patches:
          - patch: |
              - op: add
                path: /spec/template/spec/containers/0/args/-
                value: --feature-gates=StrictPostBuildSubstitutions=true
            target:
              kind: Deployment
              name: kustomize-controller
        """
    )
    strict = _apps_repo(
        write_repo,
        apps,
        {"deploy/web/cm.yaml": cm, "kubernetes/flux-system/kustomization.yaml": patch},
        name="strict",
    )

    lenient_result = phoebe("validate", str(lenient))
    lenient_model = _load(lenient)
    strict_result = phoebe("validate", str(strict))
    strict_model = _load(strict)

    assert lenient_result.code == 0
    assert lenient_result.stdout.splitlines()[0] == (
        "deploy/web/cm.yaml:8: warning [unset] Kustomization/default/web: ${UNSET} is not set and has no default: "
        'Flux substitutes "" in ConfigMap/default/web'
    )
    (built,) = lenient_model.kustomizations[ObjectRef(KS, "default", "web")].objects
    assert built["data"] == {"a": "web", "b": None}  # `b: ` after substitution: what Flux sends
    assert strict_result.code == 1
    assert strict_result.stdout.splitlines()[0] == (
        "deploy/web/cm.yaml:8: error [unset] Kustomization/default/web: ${UNSET} is not set and has no default: "
        "the build fails (kubernetes/flux-system/kustomization.yaml turns kustomize-controller's "
        "StrictPostBuildSubstitutions on) in ConfigMap/default/web"
    )
    failed = strict_model.kustomizations[ObjectRef(KS, "default", "web")]
    assert failed.state == "failed"
    assert failed.message == (
        "post build failed for 'ConfigMap/web': variable not set (strict mode): \"UNSET\" in ${UNSET}"
    )


GOTK_COMPONENTS = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: kustomize-controller
  namespace: flux-system
spec:
  template:
    spec:
      containers:
        - name: manager
          image: ghcr.io/fluxcd/kustomize-controller:{version}
          args: [--watch-all-namespaces=true{gate}]
"""


@pytest.mark.parametrize(
    ("deployed", "strict", "why"),
    [
        ({}, False, ""),
        (
            {"clusters/home/gotk-components.yaml": GOTK_COMPONENTS.format(version="v1.9.6", gate="")},
            True,
            "clusters/home/gotk-components.yaml deploys kustomize-controller v1.9 "
            "(StrictPostBuildSubstitutions on by default since v1.9)",
        ),
        (
            {"clusters/home/gotk-components.yaml": GOTK_COMPONENTS.format(version="v1.8.2", gate="")},
            False,
            "clusters/home/gotk-components.yaml deploys kustomize-controller v1.8",
        ),
        (
            {
                "clusters/home/gotk-components.yaml": GOTK_COMPONENTS.format(
                    version="v1.9.6", gate=", --feature-gates=StrictPostBuildSubstitutions=false"
                )
            },
            False,
            "clusters/home/gotk-components.yaml turns kustomize-controller's StrictPostBuildSubstitutions off",
        ),
        (
            {"kubernetes/apps/flux-system/instance.yaml": FLUX_INSTANCE},
            True,
            "kubernetes/apps/flux-system/instance.yaml deploys Flux 2.x "
            "(StrictPostBuildSubstitutions on by default since v1.9)",
        ),
        (
            {"kubernetes/apps/flux-system/instance.yaml": FLUX_INSTANCE.replace('"2.x"', '"2.8.x"')},
            False,
            "kubernetes/apps/flux-system/instance.yaml deploys Flux 2.8",
        ),
    ],
    ids=["unknown", "kustomize-controller-1.9", "kustomize-controller-1.8", "gate-off", "flux-2.x", "flux-2.8"],
)
def test_which_flux_the_checkout_deploys_decides_strict_substitution(
    write_repo: RepoWriter, deployed: dict[str, str], strict: bool, why: str
) -> None:
    """kustomize-controller fails a build on an unset variable when StrictPostBuildSubstitutions is on:
    by its flag, else by default from v1.9 (Flux 2.9); an older one, or an unknown one, substitutes ""."""
    root = _apps_repo(write_repo, {"web": flux_ks("web", "./deploy/web", "default")}, deployed)

    model = _load(root)

    assert (model.strict_substitution, model.strict_reason) == (strict, why)


def test_an_object_two_kustomizations_apply_is_an_overlap_warning(write_repo: RepoWriter, phoebe: PhoebeRunner) -> None:
    """A namespace-level kustomization pulls in a shared component, and an app pulls it in again:
    Flux applies both (the object's ownership labels flip); a smell, not a failure."""
    component = "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nresources:\n  - cm.yaml\n"
    root = _apps_repo(
        write_repo,
        {"web": flux_ks("web", "./deploy/web", "default")},
        {
            "kubernetes/apps/kustomization.yaml": kustomization_yaml(
                "ks.yaml", extra="components:\n  - ../components/shared\n"
            ),
            "kubernetes/components/shared/kustomization.yaml": component,
            "kubernetes/components/shared/cm.yaml": config_map("shared", "default", {"a": "b"}),
            "deploy/web/kustomization.yaml": kustomization_yaml(
                "own.yaml", extra="components:\n  - ../../kubernetes/components/shared\n"
            ),
            "deploy/web/own.yaml": config_map("own", "default", {"a": "b"}),
        },
    )

    result = phoebe("validate", str(root))
    strict = phoebe("validate", str(root), "--strict")

    message = (
        "ConfigMap/default/shared is applied by 2 Kustomizations: Kustomization/flux-system/cluster-apps, "
        "Kustomization/default/web (its ownership flips between them)"
    )
    assert result.code == 0
    assert f"warning [overlap] {message}" in result.stdout.splitlines()[0]
    assert strict.code == 1
    assert f"error [overlap] {message}" in strict.stdout.splitlines()[0]


def test_path_narrows_what_is_reported(write_repo: RepoWriter, phoebe: PhoebeRunner) -> None:
    root = _apps_repo(
        write_repo,
        {
            "web": flux_ks("web", "./deploy/web", "default"),
            "api": flux_ks("api", "./deploy/api", "default"),
        },
        {"deploy/web/cm.yaml": config_map("web", "default", {"a": "b"})},
    )

    everything = phoebe("validate", str(root))
    web_only = phoebe("validate", str(root), "--path", "deploy/web")
    api_only = phoebe("validate", str(root), "--path", "./deploy/api")
    status = phoebe("status", "--repo", str(root), "--path", "deploy/web", "-o", "table")

    assert everything.code == 1
    assert web_only.code == 0, web_only.stdout
    assert api_only.code == 1
    assert api_only.stdout.splitlines()[0].endswith(
        "error [path] Kustomization/default/api: kustomization path not found: ./deploy/api"
    )
    names = [line.split()[2] for line in status.stdout.splitlines()[1:]]
    assert names == ["web"]


def test_kustomizations_with_the_same_inputs_are_built_once(write_repo: RepoWriter) -> None:
    """A shared component adds a child Kustomization to every app: each child builds the same path
    and differs only in its substitution, so kustomize runs once for all of them."""
    child = flux_ks(
        "${APP}-db", "./kubernetes/components/db/app", "default", extra="postBuild:\n  substitute:\n    APP: ${APP}\n"
    )
    component = "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nresources:\n  - ks.yaml\n"
    apps = {
        name: flux_ks(
            name,
            f"./deploy/{name}",
            "default",
            extra=f"components:\n  - ../../kubernetes/components/db\npostBuild:\n  substitute:\n    APP: {name}\n",
        )
        for name in ("a", "b", "c")
    }
    files = {
        "kubernetes/components/db/kustomization.yaml": component,
        "kubernetes/components/db/ks.yaml": child,
        "kubernetes/components/db/app/cm.yaml": config_map("${APP}-db", "default", {"app": "${APP}"}),
    }
    for name in apps:
        files[f"deploy/{name}/cm.yaml"] = config_map(name, "default", {"a": "b"})
    root = _apps_repo(write_repo, apps, files)

    model = _load(root)

    dbs = {name: model.kustomizations[ObjectRef(KS, "default", f"{name}-db")] for name in apps}
    assert {name: [o["metadata"]["name"] for o in k.objects] for name, k in dbs.items()} == {
        "a": ["a-db"],
        "b": ["b-db"],
        "c": ["c-db"],
    }
    # cluster-apps, the three apps (their components make each different), one for the three children
    assert model.kustomize_runs == 5


def test_a_kind_phoebe_cannot_place_without_namespace_is_a_warning(
    write_repo: RepoWriter, phoebe: PhoebeRunner
) -> None:
    """kustomize-controller refuses objects without a namespace only for namespaced kinds; of a kind
    with no CustomResourceDefinition in the checkout, phoebe cannot tell, so it does not fail the
    Kustomization (Cilium's BGP kinds are cluster-scoped, for one)."""
    peer = "apiVersion: example.org/v1\nkind: Peer\nmetadata:\n  name: upstream\n"
    crd = textwrap.dedent(
        """\
        apiVersion: apiextensions.k8s.io/v1
        kind: CustomResourceDefinition
        metadata:
          name: peers.example.org
        spec:
          group: example.org
          scope: Namespaced
          names: {kind: Peer, plural: peers}
          versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object}}}]
        """
    )
    unknown = _apps_repo(write_repo, {"net": flux_ks("net", "./deploy/net", "default")}, {"deploy/net/peer.yaml": peer})
    known = _apps_repo(
        write_repo,
        {"crds": flux_ks("crds", "./deploy/crds", "default"), "net": flux_ks("net", "./deploy/net", "default")},
        {"deploy/net/peer.yaml": peer, "deploy/crds/crd.yaml": crd},
        name="with-crd",
    )

    unknown_result = phoebe("validate", str(unknown))
    known_model = _load(known)

    assert unknown_result.code == 0
    assert unknown_result.stdout.splitlines()[0] == (
        "kubernetes/apps/ks.yaml:1: warning [namespace] Kustomization/default/net: Peer/upstream has no namespace, "
        "and no CustomResourceDefinition in the checkout says whether its kind is namespaced (if it is, "
        "kustomize-controller refuses the apply)"
    )
    net = known_model.kustomizations[ObjectRef(KS, "default", "net")]
    assert (net.state, net.message) == ("failed", "Peer/upstream namespace not specified")


def test_substitute_from_a_source_made_outside_the_checkout(write_repo: RepoWriter, phoebe: PhoebeRunner) -> None:
    """A Secret made at bootstrap, or by an ExternalSecret: Flux fails only if the cluster lacks it.
    Offline its variables are unknown: left as written, no unset-variable finding."""
    extra = "postBuild:\n  substituteFrom:\n    - kind: Secret\n      name: tunnel-id\n"
    external_secret = textwrap.dedent(
        """\
        apiVersion: external-secrets.io/v1
        kind: ExternalSecret
        metadata:
          name: tunnel
          namespace: default
        spec:
          target:
            name: tunnel-id
          dataFrom:
            - extract:
                key: cloudflare-tunnel
        """
    )
    root = _apps_repo(
        write_repo,
        {"tunnel": flux_ks("tunnel", "./deploy/tunnel", "default", extra=extra)},
        {
            "deploy/tunnel/cm.yaml": config_map("tunnel", "default", {"id": "${TUNNEL_ID}", "d": "${X:=dflt}"}),
            "deploy/tunnel/externalsecret.yaml": external_secret,
        },
    )

    result = phoebe("validate", str(root))
    model = _load(root)

    assert result.code == 0, result.stdout
    assert result.stdout.splitlines()[0] == (
        "kubernetes/apps/ks.yaml:1: warning [variables] Kustomization/default/tunnel: substituteFrom Secret/tunnel-id "
        "is not in the checkout (ExternalSecret/default/tunnel makes it): its variables are unknown offline, left as "
        "written (Flux fails if the cluster lacks it)"
    )
    tunnel = model.kustomizations[ObjectRef(KS, "default", "tunnel")]
    cm = next(o for o in tunnel.objects if o["kind"] == "ConfigMap")
    assert cm["data"] == {"id": "${TUNNEL_ID}", "d": "dflt"}
    assert tunnel.unresolved == {}
