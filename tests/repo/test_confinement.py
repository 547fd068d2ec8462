"""Builds confined to the checkout, as kustomize-controller confines them to the artifact's root.

phoebe runs kustomize with ``--load-restrictor LoadRestrictionsNone`` (as Flux does) on a private
copy, where an absolute path or enough ``../`` would reach the user's own files. Every reference
that leaves the checkout — absolute, ``../`` out of it, through a symlink — fails its
Kustomization with ``error [path]`` naming it, and the file is never read.

"Never read" is proven twice: a file with a unique marker (the marker appears in no output and no
cache file), and a named pipe beside it, which a writer in the test holds open: whoever opens the
pipe for reading — phoebe, kustomize, anything — wakes the writer, and the test sees it.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from phoebe_cli.flux.objects import ObjectRef
from phoebe_cli.repo.builder import Builder
from phoebe_cli.repo.kustomize import Kustomize
from phoebe_cli.repo.model import BuildState, load_model
from tests.conftest import CliResult, PhoebeRunner
from tests.repo.conftest import (
    GIT_REPOSITORY,
    RepoWriter,
    commit_all,
    config_map,
    flux_ks,
    head_of,
    kustomization_yaml,
)

pytestmark = pytest.mark.repo

MARKER = "PHOEBE-OUTSIDE-MARKER-5c1e9b"
UP = "../" * 40  # from any directory of a test's checkout (or a private copy of it) up to /


@dataclass
class Outside:
    """Files outside the checkout: ``file`` holds the marker, ``pipe`` notices being opened."""

    directory: Path
    file: Path
    pipe: Path
    opened: threading.Event = field(default_factory=threading.Event)

    def relative(self, path: Path) -> str:
        """``path`` as a ``../``-path that reaches it from any directory of the checkout."""
        return UP + str(path).lstrip("/")


@pytest.fixture
def outside(tmp_path: Path) -> Iterator[Outside]:
    directory = tmp_path / "outside"
    directory.mkdir()
    file = directory / "secret.yaml"
    file.write_text(config_map("leaked", "default", {"marker": MARKER}))
    pipe = directory / "pipe.yaml"
    os.mkfifo(pipe)
    found = Outside(directory, file, pipe)
    stopping = threading.Event()

    def writer() -> None:
        try:
            with pipe.open("w") as handle:  # blocks until someone opens the pipe for reading
                if not stopping.is_set():
                    found.opened.set()
                handle.write(PIPE_TEXT)
        except OSError:
            pass

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    yield found
    stopping.set()
    reader = os.open(pipe, os.O_RDONLY | os.O_NONBLOCK)  # lets the writer go
    thread.join(10)
    os.close(reader)
    assert not thread.is_alive()


def _repo(write_repo: RepoWriter, files: dict[str, str], *, extra: str = "") -> Path:
    """One Flux Kustomization, ``evil``, over ``apps/evil``."""
    return write_repo(
        {
            "kubernetes/flux/cluster.yaml": GIT_REPOSITORY
            + "---\n"
            + flux_ks("evil", "./apps/evil", extra="targetNamespace: default\n" + extra),
            **files,
        }
    )


def _cache_files(cache: Path) -> list[Path]:
    return [p for p in cache.rglob("*") if p.is_file() and not p.is_symlink()]


PIPE_TEXT = config_map("leaked-pipe", "default", {"marker": MARKER})


def _assert_never_read(outside: Outside, cache: Path, *results: CliResult) -> None:
    """Neither file's content in any output or cache file (as written, or base64 as a Secret holds
    it), and the pipe never opened."""
    leaks = [MARKER] + [base64.b64encode(text.encode()).decode() for text in (outside.file.read_text(), PIPE_TEXT)]
    for result in results:
        for leak in leaks:
            assert leak not in _flat(result.stdout + result.stderr)
    for path in _cache_files(cache):
        content = _flat(path.read_bytes().decode(errors="replace"))
        for leak in leaks:
            assert leak not in content, path
    assert not outside.opened.is_set(), "the pipe outside the checkout was opened"


def _flat(text: str) -> str:
    """Without line breaks (kustomize wraps base64 at 76 characters; JSON escapes them)."""
    return text.replace("\\n", "").replace("\n", "")


def _kustomization(body: str) -> str:
    return "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n" + body


# (name, files of apps/evil/... given the Outside, the reference the finding names)
def _cases(o: Outside) -> list[tuple[str, dict[str, str], str]]:
    return [
        (
            "generator-absolute",
            {"kustomization.yaml": _kustomization(f"configMapGenerator:\n  - name: x\n    files:\n      - {o.file}\n")},
            f"'{o.file}' (configMapGenerator in apps/evil/kustomization.yaml) is an absolute path, outside the "
            "checkout",
        ),
        (
            "generator-relative",
            {
                "kustomization.yaml": _kustomization(
                    f"secretGenerator:\n  - name: x\n    files:\n      - key={o.relative(o.file)}\n"
                )
            },
            f"'{o.relative(o.file)}' (secretGenerator in apps/evil/kustomization.yaml) leaves the checkout",
        ),
        (
            "envs-pipe",
            {"kustomization.yaml": _kustomization(f"configMapGenerator:\n  - name: x\n    envs:\n      - {o.pipe}\n")},
            f"'{o.pipe}' (configMapGenerator in apps/evil/kustomization.yaml) is an absolute path",
        ),
        (
            "resource-absolute",
            {"kustomization.yaml": _kustomization(f"resources:\n  - {o.pipe}\n  - {o.file}\n")},
            f"'{o.pipe}' (resources in apps/evil/kustomization.yaml) is an absolute path",
        ),
        (
            "resource-relative",
            {"kustomization.yaml": _kustomization(f"resources:\n  - {o.relative(o.pipe)}\n")},
            f"'{o.relative(o.pipe)}' (resources in apps/evil/kustomization.yaml) leaves the checkout",
        ),
        (
            "patch-absolute",
            {
                "kustomization.yaml": _kustomization(
                    f"resources: [cm.yaml]\npatches:\n  - path: {o.file}\n    target: {{kind: ConfigMap}}\n"
                ),
                "cm.yaml": config_map("cm", "default", {"a": "b"}),
            },
            f"'{o.file}' (patches in apps/evil/kustomization.yaml) is an absolute path",
        ),
        (
            "generator-config-file",
            {
                "kustomization.yaml": _kustomization("generators:\n  - gen.yaml\n"),
                "gen.yaml": "apiVersion: builtin\nkind: ConfigMapGenerator\nmetadata:\n  name: x\n"
                f"files:\n  - {o.pipe}\n",
            },
            f"'{o.pipe}' (ConfigMapGenerator in apps/evil/gen.yaml) is an absolute path",
        ),
        (
            "generator-in-line",
            {
                "kustomization.yaml": _kustomization(
                    "generators:\n  - |-\n    apiVersion: builtin\n    kind: SecretGenerator\n"
                    f"    metadata:\n      name: x\n    envs:\n      - {o.relative(o.file)}\n"
                )
            },
            f"'{o.relative(o.file)}' (an in-line configuration in generators in apps/evil/kustomization.yaml) "
            "leaves the checkout",
        ),
        (
            "transformer-config-file",
            {
                "kustomization.yaml": _kustomization("resources: [cm.yaml]\ntransformers:\n  - patch.yaml\n"),
                "cm.yaml": config_map("cm", "default", {"a": "b"}),
                "patch.yaml": f"apiVersion: builtin\nkind: PatchTransformer\nmetadata:\n  name: x\npath: {o.file}\n",
            },
            f"'{o.file}' (PatchTransformer in apps/evil/patch.yaml) is an absolute path",
        ),
        (
            # The configuration is a kustomization's output, made by a patch: no file says the path.
            # It is checked once that directory is built, before the plugin runs.
            "generator-directory-patched",
            {
                "kustomization.yaml": _kustomization("generators:\n  - gen\n"),
                "gen/kustomization.yaml": _kustomization(
                    "resources: [config.yaml]\npatches:\n  - target: {kind: ConfigMapGenerator}\n"
                    f"    patch: |-\n      - op: add\n        path: /files\n        value: ['{o.file}']\n"
                ),
                "gen/config.yaml": "apiVersion: builtin\nkind: ConfigMapGenerator\nmetadata:\n  name: x\n",
            },
            f"'{o.file}' (ConfigMapGenerator in the output of apps/evil/gen) is an absolute path",
        ),
        (
            "openapi",
            {"kustomization.yaml": _kustomization(f"openapi:\n  path: {o.relative(o.pipe)}\n")},
            f"'{o.relative(o.pipe)}' (openapi in apps/evil/kustomization.yaml) leaves the checkout",
        ),
    ]


CASES = [name for name, _, _ in _cases(Outside(Path("/x"), Path("/x/f"), Path("/x/p")))]


@pytest.mark.parametrize("case", CASES)
def test_a_reference_out_of_the_checkout_is_a_path_error_and_never_read(
    case: str, write_repo: RepoWriter, outside: Outside, phoebe: PhoebeRunner, repo_environment: Path
) -> None:
    files, reference = next((f, r) for name, f, r in _cases(outside) if name == case)
    root = _repo(write_repo, {f"apps/evil/{name}": text for name, text in files.items()})

    result = phoebe("validate", str(root))
    status = phoebe("status", "--repo", str(root), "-o", "json")

    _assert_never_read(outside, repo_environment, result, status)
    assert result.code == 1, result.stdout + result.stderr
    (finding, _summary) = result.stdout.splitlines()
    assert finding.startswith(
        "kubernetes/flux/cluster.yaml:12: error [path] Kustomization/flux-system/evil: kustomization path not found: "
    )
    assert reference in finding
    assert result.stderr == ""


def test_symlinks_out_of_the_checkout_and_loops_are_path_errors(
    write_repo: RepoWriter, outside: Outside, phoebe: PhoebeRunner, repo_environment: Path
) -> None:
    """A symlink is never part of an artifact (source-controller leaves it out); phoebe never follows
    one: not to a file outside, not to a directory outside, not round a loop."""
    apps = {
        "file": flux_ks("file", "./apps/file", "default"),
        "dir": flux_ks("dir", "./apps/dir", "default"),
        "loop": flux_ks("loop", "./apps/loop", "default"),
        "linked-path": flux_ks("linked-path", "./apps/linked/deeper", "default"),
        "loop-unused": flux_ks("loop-unused", "./apps/unused", "default"),
    }
    root = write_repo(
        {
            "kubernetes/flux/cluster.yaml": GIT_REPOSITORY + "---\n" + flux_ks("cluster-apps", "./kubernetes/apps"),
            "kubernetes/apps/kustomization.yaml": kustomization_yaml("ks.yaml"),
            "kubernetes/apps/ks.yaml": "---\n".join(apps.values()),
            "apps/file/kustomization.yaml": kustomization_yaml("leak.yaml", "pipe.yaml"),
            "apps/dir/kustomization.yaml": kustomization_yaml("elsewhere/secret.yaml"),
            "apps/loop/kustomization.yaml": kustomization_yaml("a/x.yaml"),
            "apps/unused/cm.yaml": config_map("cm", "default", {"a": "b"}),
        },
        git=False,
    )
    (root / "apps/file/leak.yaml").symlink_to(outside.file)
    (root / "apps/file/pipe.yaml").symlink_to(outside.pipe)
    (root / "apps/dir/elsewhere").symlink_to(outside.directory)
    (root / "apps/loop/a").symlink_to("b")
    (root / "apps/loop/b").symlink_to("a")
    (root / "apps/linked").symlink_to(outside.directory)
    (root / "apps/unused/a").symlink_to("b")  # a loop no build reads: Flux never sees it either
    (root / "apps/unused/b").symlink_to("a")
    (root / "apps/unused/up.yaml").symlink_to("..")
    (root / "kubernetes/apps/leak.yaml").symlink_to(outside.file)  # a YAML file Flux never reads
    _git_commit(root)

    result = phoebe("validate", str(root))

    assert result.code == 1, result.stderr
    findings = sorted(result.stdout.splitlines()[:-1])
    assert [f.split(": ", 1)[0] for f in findings] == [
        "kubernetes/apps/ks.yaml:15",
        "kubernetes/apps/ks.yaml:1",
        "kubernetes/apps/ks.yaml:29",
        "kubernetes/apps/ks.yaml:43",
    ]
    assert all(" error [path] " in f for f in findings)
    text = "\n".join(findings)
    assert (
        "'leak.yaml' (resources in apps/file/kustomization.yaml) goes through a symlink, "
        f"apps/file/leak.yaml -> {outside.file} (outside the checkout)" in text
    )
    assert (
        "'elsewhere/secret.yaml' (resources in apps/dir/kustomization.yaml) goes through a symlink, "
        f"apps/dir/elsewhere -> {outside.directory} (outside the checkout)" in text
    )
    assert (
        "'a/x.yaml' (resources in apps/loop/kustomization.yaml) goes through a symlink, apps/loop/a -> b (a loop)"
        in text
    )
    assert (
        f"./apps/linked/deeper (it goes through a symlink, apps/linked -> {outside.directory} (outside the checkout)"
        in text
    )
    assert "internal error" not in result.stdout + result.stderr
    assert result.stdout.splitlines()[-1].startswith("6 Kustomizations, 7 Flux objects: 4 errors, 0 warnings")
    _assert_never_read(outside, repo_environment, result)


def test_references_that_stay_inside_the_checkout_keep_working(write_repo: RepoWriter, phoebe: PhoebeRunner) -> None:
    """Flux is the judge: ``../`` that resolves inside the root is fine, from a kustomization, a
    generator, a plugin configuration and spec.components; spec.path's ``../`` is joined as Flux
    joins it (never above the root)."""
    root = _repo(
        write_repo,
        {
            "apps/evil/kustomization.yaml": _kustomization(
                "resources:\n  - ../../shared/cm.yaml\n"
                "configMapGenerator:\n  - name: gen\n    files:\n      - ../../shared/data.txt\n"
                "generators:\n  - ../../shared/gen.yaml\n"
            ),
            "shared/cm.yaml": config_map("shared", "default", {"a": "b"}),
            "shared/data.txt": "hello\n",
            # a plugin's paths are relative to the kustomization that lists it: apps/evil
            "shared/gen.yaml": "apiVersion: builtin\nkind: ConfigMapGenerator\nmetadata:\n  name: plugin\n"
            "files:\n  - ../../shared/data.txt\n",
            "components/extra/kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n"
            "resources:\n  - ../../shared/other.yaml\n",
            "shared/other.yaml": config_map("other", "default", {"c": "d"}),
        },
        extra="components:\n  - ../../components/extra\n",
    )
    (root / "kubernetes/flux/cluster.yaml").write_text(
        (root / "kubernetes/flux/cluster.yaml").read_text().replace("./apps/evil", "../../../apps/evil")
    )
    commit_all(root)

    validate = phoebe("validate", str(root))
    evil = load_model(root).kustomizations[ObjectRef("Kustomization", "flux-system", "evil")]

    assert validate.code == 0, validate.stdout
    assert evil.state == BuildState.BUILT, evil.message
    data = {o["metadata"]["name"].split("-")[0]: o["data"] for o in evil.objects}
    assert data == {
        "shared": {"a": "b"},
        "gen": {"data.txt": "hello\n"},
        "plugin": {"data.txt": "hello\n"},
        "other": {"c": "d"},
    }


def test_the_full_copy_holds_regular_files_only(write_repo: RepoWriter, outside: Outside, tmp_path: Path) -> None:
    """When the scanner misses a file a build reads, the build runs on a copy of the whole
    artifact: made of its regular files, never a symlink, never a file through one."""
    root = write_repo({"apps/cm.yaml": config_map("cm", "default", {"a": "b"}), "other/x.yaml": "a: b\n"}, git=False)
    (root / "apps/leak.yaml").symlink_to(outside.file)
    (root / "apps/dir").symlink_to(outside.directory)
    (root / "apps/loop").symlink_to("loop")
    (root / "other/up").symlink_to("..")
    seen: list[tuple[str, bool]] = []

    class Inspecting(Kustomize):
        def build(self, directory: Path, *, timeout: float = 120) -> str:
            work = directory.parent
            for path in work.rglob("*"):
                seen.append((str(path.relative_to(work)), path.is_symlink()))
            return ""

    builder = Builder(root, Inspecting(("kustomize",), "test"), use_cache=False)
    closure = builder.scanner.closure(root / "apps")
    builder._run_on_full_copy(root / "apps", {"resources": ["cm.yaml"]}, closure, in_memory=False)

    assert sorted(seen) == [
        ("apps", False),
        ("apps/cm.yaml", False),
        ("apps/kustomization.yaml", False),
        ("other", False),
        ("other/x.yaml", False),
    ]
    assert not outside.opened.is_set()


def test_diff_of_a_pull_request_never_prints_a_file_from_outside(
    write_repo: RepoWriter, outside: Outside, phoebe: PhoebeRunner, repo_environment: Path
) -> None:
    """A fork's pull request adds references out of the repository, each in a Kustomization of its
    own — an absolute path, ``../``, a symlink to a file, to a directory —, and a second commit on
    top: the CI job ``phoebe diff --base main -o markdown`` shows path errors and never a byte of
    those files, and the kept trees (the second made from the first by links) hold the symlinks as
    symlinks, never the files they point at."""
    apps = ("absolute", "relative", "symlink", "linked", "ok")
    cluster = "---\n".join(flux_ks(app, f"./apps/{app}", extra="targetNamespace: default\n") for app in apps)
    root = write_repo(
        {
            "kubernetes/flux/cluster.yaml": GIT_REPOSITORY + "---\n" + cluster,
            **{f"apps/{app}/cm.yaml": config_map(app, "default", {"a": "b"}) for app in apps},
        }
    )
    main = head_of(root)
    subprocess.run(["git", "checkout", "-q", "-b", "pr"], cwd=root, check=True)
    (root / "apps/absolute/kustomization.yaml").write_text(
        _kustomization(f"resources: [cm.yaml]\nconfigMapGenerator:\n  - name: a\n    files:\n      - {outside.file}\n")
    )
    (root / "apps/relative/kustomization.yaml").write_text(
        _kustomization(f"resources:\n  - cm.yaml\n  - {outside.relative(outside.pipe)}\n")
    )
    (root / "apps/symlink/kustomization.yaml").write_text(_kustomization("resources: [cm.yaml, leak.yaml]\n"))
    (root / "apps/symlink/leak.yaml").symlink_to(outside.file)
    (root / "apps/ok/more.yaml").symlink_to(outside.file)  # no kustomization file: every YAML file below
    shutil.rmtree(root / "apps/linked")
    (root / "apps/linked").symlink_to(outside.directory)
    (root / "apps/ok/cm.yaml").write_text(config_map("ok", "default", {"a": "changed"}))
    pr = commit_all(root, "pull request")
    (root / "apps/ok/cm.yaml").write_text(config_map("ok", "default", {"a": "changed again"}))
    pr2 = commit_all(root, "pull request, second commit")

    against_main = phoebe("diff", "--base", "main", "--repo", str(root), "-o", "markdown")
    two_refs = phoebe("diff", "--base", main, "--head", pr, "--repo", str(root), "-o", "markdown")
    second = phoebe("diff", "--base", pr, "--head", pr2, "--repo", str(root), "-o", "markdown")
    as_json = phoebe("diff", "--base", main, "--head", pr2, "--repo", str(root), "-o", "json")

    _assert_never_read(outside, repo_environment, against_main, two_refs, second, as_json)
    for result in (against_main, two_refs, as_json):
        assert result.code == 1, result.stderr
        for app in ("absolute", "relative", "symlink", "linked"):
            assert f"Kustomization/flux-system/{app} at " in result.stderr
        assert result.stderr.count("kustomization path not found") == 4
    assert "+  a: changed" in two_refs.stdout  # the rest is still compared
    assert "+  a: changed again" in second.stdout
    trees = repo_environment / "phoebe" / "trees"
    links = {str(p.relative_to(trees)) for p in trees.rglob("*") if p.is_symlink()}
    assert {link.split("/", 2)[2] for link in links} == {"apps/symlink/leak.yaml", "apps/linked", "apps/ok/more.yaml"}
    assert {link.split("/", 1)[0] for link in links} == {pr, pr2}
    assert all(os.readlink(trees / link) in (str(outside.file), str(outside.directory)) for link in links)


def _git_commit(root: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args], cwd=root, check=True)

    git("init", "-q", "-b", "main")
    git("add", "-A")
    git("commit", "-q", "-m", "test")


def test_the_outside_fixture_notices_a_reader(outside: Outside) -> None:
    """The proof works: reading the pipe is seen."""
    with contextlib.closing(os.fdopen(os.open(outside.pipe, os.O_RDONLY))) as handle:
        assert MARKER in handle.read()
    assert outside.opened.wait(5)
