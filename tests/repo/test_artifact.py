"""What the source would contain: builds read the GitRepository's artifact — `.sourceignore` files,
its `spec.ignore` and source-controller's default exclusions applied — never a file Flux does not
see. Real kustomize, the real entry point."""

from __future__ import annotations

from pathlib import Path

import pytest

from phoebe_cli.flux.objects import ObjectRef
from phoebe_cli.repo.model import ModelOptions, load_model
from tests.conftest import PhoebeRunner
from tests.repo.conftest import GIT_REPOSITORY, RepoWriter, config_map, flux_ks, kustomization_yaml

pytestmark = pytest.mark.repo

KS = "Kustomization"


def _ignoring(spec_ignore: str) -> str:
    lines = "".join(f"    {line}\n" for line in spec_ignore.splitlines())
    return GIT_REPOSITORY.rstrip("\n") + "\n  ignore: |\n" + lines


def _repo(
    write_repo: RepoWriter, files: dict[str, str], *, spec_ignore: str | None = None, name: str = "checkout"
) -> Path:
    source = _ignoring(spec_ignore) if spec_ignore is not None else GIT_REPOSITORY
    return write_repo(
        {
            "kubernetes/flux/cluster.yaml": source + "---\n" + flux_ks("cluster-apps", "./kubernetes/apps"),
            "kubernetes/apps/kustomization.yaml": kustomization_yaml("ks.yaml"),
            **files,
        },
        name=name,
    )


def test_a_sourceignore_file_leaves_files_out_of_generated_builds(write_repo: RepoWriter) -> None:
    root = _repo(
        write_repo,
        {
            "kubernetes/apps/ks.yaml": flux_ks("web", "./kubernetes/web", "default"),
            "kubernetes/web/cm.yaml": config_map("kept", "default", {"a": "b"}),
            "kubernetes/web/drafts/cm.yaml": config_map("draft", "default", {"a": "b"}),
            "kubernetes/web/.sourceignore": "drafts/\n",
        },
    )

    model = load_model(root, ModelOptions(use_cache=False))

    web = model.kustomizations[ObjectRef(KS, "default", "web")]
    assert [o["metadata"]["name"] for o in web.objects] == ["kept"]


def test_a_path_the_source_leaves_out_is_not_found(write_repo: RepoWriter, phoebe: PhoebeRunner) -> None:
    """spec.ignore `/*` then `!/kubernetes`: only kubernetes/ is in the artifact."""
    root = _repo(
        write_repo,
        {
            "kubernetes/apps/ks.yaml": flux_ks("web", "./kubernetes/web", "default")
            + "---\n"
            + flux_ks("outside", "./deploy/outside", "default"),
            "kubernetes/web/cm.yaml": config_map("web", "default", {"a": "b"}),
            "deploy/outside/cm.yaml": config_map("outside", "default", {"a": "b"}),
        },
        spec_ignore="# exclude all\n/*\n# include kubernetes directory\n!/kubernetes",
    )

    result = phoebe("validate", str(root))

    assert result.code == 1
    assert result.stdout.splitlines()[0] == (
        "kubernetes/apps/ks.yaml:15: error [path] Kustomization/default/outside: kustomization path not found: "
        "./deploy/outside (the source's ignore rules leave it out)"
    )


def test_a_resource_the_source_leaves_out_fails_the_build_as_in_flux(
    write_repo: RepoWriter, phoebe: PhoebeRunner
) -> None:
    root = _repo(
        write_repo,
        {
            "kubernetes/apps/ks.yaml": flux_ks("web", "./kubernetes/web", "default"),
            "kubernetes/web/kustomization.yaml": kustomization_yaml("cm.yaml", "secret-notes.yaml"),
            "kubernetes/web/cm.yaml": config_map("web", "default", {"a": "b"}),
            "kubernetes/web/secret-notes.yaml": config_map("notes", "default", {"a": "b"}),
            ".sourceignore": "*-notes.yaml\n",
        },
    )

    result = phoebe("validate", str(root))

    assert result.code == 1
    first = result.stdout.splitlines()[0]
    assert first.startswith("kubernetes/apps/ks.yaml:1: error [build] Kustomization/default/web: ")
    assert "kubernetes/web/secret-notes.yaml" in first


def test_a_pattern_flux_never_matches_is_a_warning(write_repo: RepoWriter, phoebe: PhoebeRunner) -> None:
    root = _repo(
        write_repo,
        {
            "kubernetes/apps/ks.yaml": flux_ks("web", "./kubernetes/web", "default"),
            "kubernetes/web/cm.yaml": config_map("web", "default", {"a": "b"}),
            ".sourceignore": "# notes\n*.md\n[\n",
        },
    )

    result = phoebe("validate", str(root))

    assert result.code == 0
    (finding,) = [line for line in result.stdout.splitlines() if "[ignore]" in line]
    assert finding.startswith(".sourceignore:3: warning [ignore] ")
    assert "[" in finding


def test_default_exclusions_apply_only_without_any_pattern(write_repo: RepoWriter) -> None:
    """source-controller leaves out .sops.yaml, CI files, images ... only when the repository has no
    ignore pattern at all."""
    files = {
        "kubernetes/apps/ks.yaml": flux_ks("web", "./kubernetes/web", "default"),
        "kubernetes/web/cm.yaml": config_map("web", "default", {"a": "b"}),
        "kubernetes/web/.flux.yaml": config_map("flux-yaml", "default", {"a": "b"}),
    }
    plain = _repo(write_repo, files)
    with_pattern = _repo(write_repo, {**files, ".sourceignore": "*.md\n"}, name="with-pattern")

    def names(root: Path) -> list[str]:
        model = load_model(root, ModelOptions(use_cache=False))
        return sorted(o["metadata"]["name"] for o in model.kustomizations[ObjectRef(KS, "default", "web")].objects)

    assert names(plain) == ["web"]
    assert names(with_pattern) == ["flux-yaml", "web"]
