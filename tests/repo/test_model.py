"""The checkout read as Flux reads it: builds, postBuild substitution, SOPS masking, the model's
objects and where they come from. Real kustomize; no cluster."""

from __future__ import annotations

from pathlib import Path

import pytest

from phoebe_cli.flux.objects import ObjectRef
from phoebe_cli.repo.model import BuildState, ModelOptions, RepoModel, load_model
from tests.conftest import PhoebeRunner
from tests.repo.conftest import (
    FIXTURE_REPO,
    GIT_REPOSITORY,
    RepoWriter,
    commit_all,
    config_map,
    flux_ks,
    head_of,
    kustomization_yaml,
)

pytestmark = pytest.mark.repo

KS = "Kustomization"


def _load(root: Path, **options: object) -> RepoModel:
    return load_model(root, ModelOptions(**options))  # type: ignore[arg-type]


def _objects(model: RepoModel, namespace: str, name: str) -> list[tuple[str, str, str]]:
    built = model.kustomizations[ObjectRef(KS, namespace, name)]
    return sorted(
        (o["kind"], (o.get("metadata") or {}).get("namespace", ""), o["metadata"]["name"]) for o in built.objects
    )


# --- the sample repository --------------------------------------------------------------------
def test_sample_repository_every_flux_object_with_its_parent() -> None:
    model = _load(FIXTURE_REPO, use_cache=False)

    kinds: dict[str, int] = {}
    for declared in model.objects.values():
        kinds[declared.kind.kind] = kinds.get(declared.kind.kind, 0) + 1
    assert kinds == {
        "Kustomization": 31,
        "HelmRelease": 25,
        "ExternalSecret": 14,
        "HelmRepository": 13,
        "OCIRepository": 9,
        "GitRepository": 1,
    }
    assert [str(r) for r in model.roots] == [
        "Kustomization/flux-system/cluster-meta",
        "Kustomization/flux-system/cluster-apps",
    ]
    assert all(k.state == BuildState.BUILT for k in model.kustomizations.values())
    plex = model.objects[ObjectRef("HelmRelease", "media", "plex")]
    assert plex.declared_by == ObjectRef(KS, "media", "plex")
    assert model.objects[ObjectRef(KS, "media", "plex")].declared_by == ObjectRef(KS, "flux-system", "cluster-apps")
    assert _objects(model, "media", "plex") == [
        ("ExternalSecret", "media", "plex-volsync"),
        ("HelmRelease", "media", "plex"),
        ("OCIRepository", "media", "plex"),
        ("PersistentVolumeClaim", "media", "plex"),
        ("ReplicationDestination", "media", "plex-dst"),
        ("ReplicationSource", "media", "plex"),
    ]
    assert model.overlaps == []
    assert model.kustomize_runs == 31  # one per Kustomization: no two build the same path


def test_sample_repository_substitutes_plain_variables_and_never_shows_sops_values() -> None:
    model = _load(FIXTURE_REPO, use_cache=False)

    plex = model.objects[ObjectRef("HelmRelease", "media", "plex")].obj
    env = plex["spec"]["values"]["controllers"]["plex"]["containers"]["app"]["env"]
    assert env["TZ"] == "Europe/Amsterdam"  # ${TIMEZONE} from the cluster-settings ConfigMap
    secrets = [o for k in model.kustomizations.values() for o in k.objects if o["kind"] == "Secret" and "sops" in o]
    assert secrets == []  # the sops metadata block goes, as the controller's decryption removes it
    encrypted = [
        o
        for k in model.kustomizations.values()
        for o in k.objects
        if o["kind"] == "Secret" and (o["metadata"].get("annotations") or {}).get("phoebe.dev/sops")
    ]
    assert encrypted, "the sample has SOPS-encrypted Secrets"
    for secret in encrypted:
        for field in ("data", "stringData"):
            assert set((secret.get(field) or {}).values()) <= {"***"}
    assert all(not names for k in model.kustomizations.values() for names in k.unresolved.values())


# --- builds -------------------------------------------------------------------------------------
def _two_level(app_files: dict[str, str], app_spec: str = "") -> dict[str, str]:
    files = {
        "kubernetes/flux/cluster.yaml": GIT_REPOSITORY
        + "---\n"
        + flux_ks(
            "cluster-apps",
            "./kubernetes/apps",
            extra="postBuild:\n  substituteFrom:\n    - kind: ConfigMap\n      name: settings\n",
        ),
        "kubernetes/apps/kustomization.yaml": kustomization_yaml("settings.yaml", "ks.yaml"),
        "kubernetes/apps/settings.yaml": config_map("settings", "flux-system", {"DOMAIN": "example.org"}),
        "kubernetes/apps/ks.yaml": flux_ks("web", "./kubernetes/apps/web", "default", extra=app_spec),
    }
    files.update({f"kubernetes/apps/web/{name}": text for name, text in app_files.items()})
    return files


DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
spec:
  template:
    spec:
      containers:
        - name: web
          image: nginx:${VERSION:=1.27}
          env:
            - name: HOST
              value: web.${DOMAIN}
            - name: ESCAPED
              value: $${NOT_A_VAR}
"""


def test_substitution_from_an_inline_map_and_a_config_map_the_parent_applied(write_repo: RepoWriter) -> None:
    root = write_repo(
        _two_level(
            {"kustomization.yaml": kustomization_yaml("deployment.yaml"), "deployment.yaml": DEPLOYMENT},
            app_spec="""
            postBuild:
              substitute:
                VERSION: "1.29"
              substituteFrom:
                - kind: ConfigMap
                  name: settings
            """,
        )
    )
    # The controller looks for the child's ConfigMap in the child's namespace.
    settings = root / "kubernetes/apps/settings.yaml"
    settings.write_text(settings.read_text() + "---\n" + config_map("settings", "default", {"DOMAIN": "example.org"}))
    model = _load(root)

    web = model.kustomizations[ObjectRef(KS, "default", "web")]
    assert web.state == BuildState.BUILT, web.message
    (deployment,) = web.objects
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "nginx:1.29"
    assert container["env"] == [
        {"name": "HOST", "value": "web.example.org"},
        {"name": "ESCAPED", "value": "${NOT_A_VAR}"},
    ]
    assert web.unresolved == {}


def test_a_variable_nobody_sets_is_left_and_reported(write_repo: RepoWriter) -> None:
    root = write_repo(
        _two_level(
            {"kustomization.yaml": kustomization_yaml("deployment.yaml"), "deployment.yaml": DEPLOYMENT},
            app_spec="postBuild:\n  substitute:\n    VERSION: '2'\n",
        )
    )
    model = _load(root)

    web = model.kustomizations[ObjectRef(KS, "default", "web")]
    assert web.unresolved == {"default_web_apps_Deployment": ["DOMAIN"]}


def test_a_child_without_post_build_is_not_substituted(write_repo: RepoWriter) -> None:
    root = write_repo(
        _two_level({"kustomization.yaml": kustomization_yaml("deployment.yaml"), "deployment.yaml": DEPLOYMENT})
    )
    model = _load(root)

    (deployment,) = model.kustomizations[ObjectRef(KS, "default", "web")].objects
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:${VERSION:=1.27}"


def test_a_path_without_kustomization_yaml_is_generated_as_the_controller_does(write_repo: RepoWriter) -> None:
    root = write_repo(
        _two_level(
            {
                "a.yaml": config_map("a", "default", {"k": "v"}),
                "nested/b.yml": config_map("b", "default", {"k": "v"}),
                "notes.txt": "not yaml",
            },
            app_spec="targetNamespace: apps\ncommonMetadata:\n  labels:\n    team: web\n",
        )
    )
    model = _load(root)

    web = model.kustomizations[ObjectRef(KS, "default", "web")]
    assert web.state == BuildState.BUILT, web.message
    assert sorted((o["metadata"]["name"], o["metadata"]["namespace"]) for o in web.objects) == [
        ("a", "apps"),
        ("b", "apps"),
    ]
    assert all(o["metadata"]["labels"] == {"team": "web"} for o in web.objects)


def test_flux_patches_images_and_components_are_applied(write_repo: RepoWriter) -> None:
    # An image with a ${VAR} in it is not matched by `images` (they run before substitution).
    deployment_yaml = DEPLOYMENT.replace("nginx:${VERSION:=1.27}", "nginx:1.27")
    files = _two_level(
        {"kustomization.yaml": kustomization_yaml("deployment.yaml"), "deployment.yaml": deployment_yaml},
        app_spec="""
        patches:
          - patch: |
              - op: add
                path: /metadata/annotations
                value: {patched: "yes"}
            target:
              kind: Deployment
        images:
          - name: nginx
            newName: ghcr.io/example/nginx
        components:
          - ../../components/labels
        postBuild:
          substitute:
            DOMAIN: example.net
        """,
    )
    files["kubernetes/components/labels/kustomization.yaml"] = (
        "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nlabels:\n  - pairs:\n      component: labels\n"
    )
    root = write_repo(files)
    model = _load(root)

    (deployment,) = model.kustomizations[ObjectRef(KS, "default", "web")].objects
    assert deployment["metadata"]["annotations"] == {"patched": "yes"}
    assert deployment["metadata"]["labels"] == {"component": "labels"}
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "ghcr.io/example/nginx:1.27"


def test_a_parent_patch_reaches_the_child_kustomization(write_repo: RepoWriter) -> None:
    files = _two_level({"kustomization.yaml": kustomization_yaml("deployment.yaml"), "deployment.yaml": DEPLOYMENT})
    files["kubernetes/flux/cluster.yaml"] = (
        GIT_REPOSITORY
        + "---\n"
        + flux_ks(
            "cluster-apps",
            "./kubernetes/apps",
            extra="""
            patches:
              - patch: |
                  apiVersion: kustomize.toolkit.fluxcd.io/v1
                  kind: Kustomization
                  metadata:
                    name: any
                  spec:
                    postBuild:
                      substitute:
                        DOMAIN: from-parent.org
                target:
                  kind: Kustomization
            """,
        )
    )
    root = write_repo(files)
    model = _load(root)

    (deployment,) = model.kustomizations[ObjectRef(KS, "default", "web")].objects
    assert deployment["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] == "web.from-parent.org"


def test_a_missing_path_and_a_failing_build_are_failed_kustomizations(write_repo: RepoWriter) -> None:
    files = _two_level({"kustomization.yaml": kustomization_yaml("missing.yaml")})
    files["kubernetes/apps/ks.yaml"] += "---\n" + flux_ks("gone", "./kubernetes/apps/gone", "default")
    root = write_repo(files)
    model = _load(root)

    web = model.kustomizations[ObjectRef(KS, "default", "web")]
    assert web.state == BuildState.FAILED
    assert "missing.yaml" in web.message
    gone = model.kustomizations[ObjectRef(KS, "default", "gone")]
    assert gone.state == BuildState.FAILED
    assert gone.message.startswith("kustomization path not found")


def test_remote_bases_are_left_out_offline_and_the_rest_is_built(write_repo: RepoWriter) -> None:
    root = write_repo(
        _two_level(
            {
                "kustomization.yaml": kustomization_yaml(
                    "https://github.com/example/crds//config?ref=v1.0.0", "deployment.yaml"
                ),
                "deployment.yaml": DEPLOYMENT,
            },
            app_spec="postBuild:\n  substitute:\n    DOMAIN: x\n",
        )
    )
    model = _load(root)

    web = model.kustomizations[ObjectRef(KS, "default", "web")]
    assert web.state == BuildState.PARTIAL
    assert "https://github.com/example/crds//config?ref=v1.0.0" in web.message
    assert [o["kind"] for o in web.objects] == ["Deployment"]
    # The checkout itself is untouched: the remote entry was removed from a private copy.
    assert "github.com" in (root / "kubernetes/apps/web/kustomization.yaml").read_text()


def test_a_kustomization_of_another_source_is_built_only_when_mapped(write_repo: RepoWriter, tmp_path: Path) -> None:
    files = _two_level({"kustomization.yaml": kustomization_yaml("deployment.yaml"), "deployment.yaml": DEPLOYMENT})
    files["kubernetes/apps/ks.yaml"] += "---\n" + flux_ks("infra", "./deploy", "default", source="infra-repo")
    root = write_repo(files)
    other = write_repo({"deploy/cm.yaml": config_map("from-infra", "default", {"a": "b"})}, name="infra")

    unmapped = _load(root)
    infra = unmapped.kustomizations[ObjectRef(KS, "default", "infra")]
    assert infra.state == BuildState.NOT_IN_CHECKOUT
    assert infra.message == "its source GitRepository/infra-repo is not in this checkout"

    mapped = _load(root, sources={"infra-repo": other})
    assert _objects(mapped, "default", "infra") == [("ConfigMap", "default", "from-infra")]


def test_builds_are_cached_by_content_and_a_change_rebuilds_only_its_kustomization(write_repo: RepoWriter) -> None:
    files = _two_level({"kustomization.yaml": kustomization_yaml("deployment.yaml"), "deployment.yaml": DEPLOYMENT})
    files["kubernetes/apps/ks.yaml"] += "---\n" + flux_ks("other", "./kubernetes/other", "default")
    files["kubernetes/other/cm.yaml"] = config_map("other", "default", {"a": "b"})
    root = write_repo(files)

    cold = _load(root)
    warm = _load(root)
    (root / "kubernetes/apps/web/deployment.yaml").write_text(DEPLOYMENT.replace("nginx", "caddy"))
    changed = _load(root)
    uncached = _load(root, use_cache=False)

    assert (cold.kustomize_runs, cold.cached_builds) == (3, 0)
    assert (warm.kustomize_runs, warm.cached_builds) == (0, 3)
    assert (changed.kustomize_runs, changed.cached_builds) == (1, 2)
    (deployment,) = changed.kustomizations[ObjectRef(KS, "default", "web")].objects
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"].startswith("caddy:")
    assert uncached.kustomize_runs == 3


def test_an_object_applied_by_two_kustomizations_is_an_overlap(write_repo: RepoWriter) -> None:
    files = _two_level(
        {"kustomization.yaml": kustomization_yaml("ks.yaml"), "ks.yaml": flux_ks("dup", "./x", "default")}
    )
    files["kubernetes/apps/ks.yaml"] += "---\n" + flux_ks("dup", "./x", "default")
    files["kubernetes/apps/kustomization.yaml"] = kustomization_yaml("settings.yaml", "ks.yaml")
    files["x/cm.yaml"] = config_map("x", "default", {"a": "b"})
    root = write_repo(files)
    model = _load(root)

    assert model.overlaps == [
        (
            "default_dup_kustomize.toolkit.fluxcd.io_Kustomization",
            [ObjectRef(KS, "flux-system", "cluster-apps"), ObjectRef(KS, "default", "web")],
        )
    ]


def test_the_revision_is_the_checkouts_head(write_repo: RepoWriter) -> None:
    root = write_repo(_two_level({"cm.yaml": config_map("a", "default", {"k": "v"})}))
    first = _load(root)
    (root / "kubernetes/apps/web/cm.yaml").write_text(config_map("a", "default", {"k": "w"}))
    second_head = commit_all(root)

    assert first.revision is not None and first.revision.endswith(head_of(root)) is False
    assert _load(root).revision == f"main@sha1:{second_head}"


def test_without_flux_roots_the_error_says_how_to_point_at_them(write_repo: RepoWriter) -> None:
    from phoebe_cli.errors import UsageError

    root = write_repo({"README.md": "nothing here", "app/cm.yaml": config_map("a", "default", {"k": "v"})})
    with pytest.raises(UsageError, match=r"^no Flux objects in .*checkout: .*--root-file FILE"):
        _load(root)


def test_a_namespaced_object_without_namespace_fails_the_whole_kustomization(write_repo: RepoWriter) -> None:
    crd = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: pools.example.org
spec:
  group: example.org
  scope: Cluster
  names: {kind: Pool, plural: pools}
  versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object}}}]
"""
    pool = "apiVersion: example.org/v1\nkind: Pool\nmetadata:\n  name: p\n"
    cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: loose\n"
    files = _two_level(
        {
            "crd.yaml": crd,
            "pool.yaml": pool,
            "role.yaml": "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: r\n",
        }
    )
    files["kubernetes/apps/ks.yaml"] += "---\n" + flux_ks("loose", "./kubernetes/loose", "default")
    files["kubernetes/apps/ks.yaml"] += "---\n" + flux_ks(
        "placed", "./kubernetes/loose", "default", extra="targetNamespace: apps\n"
    )
    files["kubernetes/loose/cm.yaml"] = cm
    root = write_repo(files)
    model = _load(root)

    assert model.kustomizations[ObjectRef(KS, "default", "web")].state == BuildState.BUILT  # cluster-scoped only
    loose = model.kustomizations[ObjectRef(KS, "default", "loose")]
    assert (loose.state, loose.message) == (BuildState.FAILED, "ConfigMap/loose namespace not specified")
    assert model.kustomizations[ObjectRef(KS, "default", "placed")].state == BuildState.BUILT


def test_anchors_aliases_comments_and_multi_document_roots(write_repo: RepoWriter) -> None:
    root_file = """
# the roots: an anchor and its alias in one document, a merge key in the next
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {name: flux-system, namespace: flux-system}
spec: {interval: 1h, url: "https://example.invalid/r", ref: {branch: main}}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: one
  namespace: flux-system
  labels: &team {team: a}
spec:
  interval: 1h  # comment
  path: ./apps
  prune: true
  sourceRef: {kind: GitRepository, name: flux-system}
  commonMetadata: {labels: *team}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: two, namespace: flux-system}
spec:
  <<: {interval: 1h, path: ./apps, prune: true, sourceRef: {kind: GitRepository, name: flux-system}}
  targetNamespace: two
"""
    root = write_repo(
        {"kubernetes/flux/cluster.yaml": root_file, "apps/cm.yaml": config_map("cm", "default", {"a": "b"})}
    )
    model = _load(root)

    assert model.yaml_errors == []
    assert [str(r) for r in model.roots] == ["Kustomization/flux-system/one", "Kustomization/flux-system/two"]
    (one,) = model.kustomizations[ObjectRef(KS, "flux-system", "one")].objects
    assert one["metadata"]["labels"] == {"team": "a"}
    assert _objects(model, "flux-system", "two") == [("ConfigMap", "two", "cm")]
    assert model.objects[ObjectRef(KS, "flux-system", "two")].origin.line == 20


def test_an_alias_to_another_documents_anchor_is_a_yaml_error(write_repo: RepoWriter, phoebe: PhoebeRunner) -> None:
    root_file = GIT_REPOSITORY + "---\n" + flux_ks("one", "./apps") + "  x: &a 1\n---\nkind: Kustomization\nv: *a\n"
    root = write_repo(
        {"kubernetes/flux/cluster.yaml": root_file, "apps/cm.yaml": config_map("cm", "default", {"a": "b"})}
    )

    result = phoebe("validate", str(root))

    assert result.code == 1
    assert result.stdout.splitlines()[0] == (
        "kubernetes/flux/cluster.yaml:27: error [yaml] not valid YAML: found undefined alias"
    )


def test_substitution_disabled_by_label_or_annotation(write_repo: RepoWriter) -> None:
    def cm(name: str, marker: str) -> str:
        return (
            f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: default\n{marker}"
            "data:\n  v: ${DOMAIN}\n"
        )

    root = write_repo(
        _two_level(
            {
                "a.yaml": cm("plain", ""),
                "b.yaml": cm("labelled", "  labels:\n    kustomize.toolkit.fluxcd.io/substitute: disabled\n"),
                "c.yaml": cm("annotated", "  annotations:\n    kustomize.toolkit.fluxcd.io/substitute: disabled\n"),
            },
            app_spec="postBuild:\n  substitute:\n    DOMAIN: example.org\n",
        )
    )
    model = _load(root)

    web = model.kustomizations[ObjectRef(KS, "default", "web")]
    values = {o["metadata"]["name"]: o["data"]["v"] for o in web.objects}
    assert values == {"plain": "example.org", "labelled": "${DOMAIN}", "annotated": "${DOMAIN}"}
    assert web.unresolved == {}
