"""The repo model's tests: real kustomize (Go-built, cached like the control plane's binaries),
small repositories written per test, and the sample repository in tests/fixtures/gitops."""

from __future__ import annotations

import os
import subprocess
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.cluster.build import BuildError, GoMissing

FIXTURE_REPO = Path(__file__).resolve().parent.parent / "fixtures" / "gitops"


@pytest.fixture(scope="session")
def kustomize_binary() -> Path:
    from tests.cluster.build import ensure_program, kustomize_program

    try:
        return ensure_program(kustomize_program())
    except GoMissing as error:
        pytest.skip(f"no kustomize: {error}")
    except BuildError as error:
        pytest.fail(f"kustomize build failed: {error}")


@pytest.fixture(autouse=True)
def repo_environment(kustomize_binary: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """phoebe finds the built kustomize; the build cache is this test's own."""
    monkeypatch.setenv("PHOEBE_KUSTOMIZE", str(kustomize_binary))
    cache = tmp_path / "xdg-cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    return cache


# --- helm and the registry, Go-built and cached (build and diff tests) ---------------------------


@pytest.fixture(scope="session")
def helm_path() -> Path:
    """The cached helm, found before a test points XDG_CACHE_HOME at its own cache."""
    from tests.support.chartrepo import helm_binary

    return helm_binary()


@pytest.fixture(scope="session")
def binaries_home(helm_path: Path) -> str:
    """The XDG cache home of the Go-built test binaries (helm, the registry), as the session found it."""
    from tests.cluster.build import cache_root

    registry_binary()
    return str(cache_root().parent)


def registry_binary() -> Path:
    from tests.cluster.build import ensure_program, registry_program

    return ensure_program(registry_program())


@contextmanager
def binaries_env(monkeypatch: pytest.MonkeyPatch, home: str) -> Iterator[None]:
    """The test helpers (helm package, helm push, the registry) find the session's binaries; phoebe
    keeps the test's own cache."""
    own = os.environ.get("XDG_CACHE_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", home)
    try:
        yield
    finally:
        if own is None:
            monkeypatch.delenv("XDG_CACHE_HOME")
        else:
            monkeypatch.setenv("XDG_CACHE_HOME", own)


def served_widgets(monkeypatch: pytest.MonkeyPatch, home: str, served: Path, repository: str, *versions: str) -> Path:
    """The fixture chart widgets packaged in each of ``versions`` into the Helm repository
    ``served/repository`` (index included), with the session's helm; returns ``served``."""
    from tests.support.chartrepo import CHARTS_DIR, package_chart

    with binaries_env(monkeypatch, home):
        for version in versions:
            package_chart(CHARTS_DIR / "widgets", served / repository, version=version)
    return served


def go_oracle(ensure: Callable[[], Path], what: str) -> Path:
    """A Go oracle of a differential test, built (or reused): skipped without Go, failed when it
    does not build."""
    try:
        return ensure()
    except GoMissing as error:
        pytest.skip(f"no Go oracle: {error}")
    except BuildError as error:
        pytest.fail(f"the {what} oracle did not build: {error}")


RepoWriter = Callable[..., Path]


def _git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


@pytest.fixture
def write_repo(tmp_path: Path) -> RepoWriter:
    """``write_repo({"path": "yaml", ...}, git=True)``: a checkout (committed when git=True)."""

    def write(files: dict[str, str], *, git: bool = True, name: str = "checkout") -> Path:
        root = tmp_path / name
        for relative, text in files.items():
            target = root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(textwrap.dedent(text).lstrip("\n"))
        if git:
            _git(root, "init", "-q", "-b", "main")
            _git(root, "add", "-A")
            _git(root, "commit", "-q", "-m", "test")
        return root

    return write


def head_of(root: Path) -> str:
    return _git(root, "rev-parse", "HEAD")


def commit_all(root: Path, message: str = "change") -> str:
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", message)
    return head_of(root)


# --- building blocks for small repositories ---------------------------------------------------
def flux_ks(
    name: str,
    path: str,
    namespace: str = "flux-system",
    *,
    source: str = "flux-system",
    source_kind: str = "GitRepository",
    extra: str = "",
) -> str:
    """A Flux Kustomization document; ``extra`` is more spec, indented by two spaces."""
    spec_extra = textwrap.indent(textwrap.dedent(extra).strip("\n"), "  ") + "\n" if extra else ""
    return (
        "apiVersion: kustomize.toolkit.fluxcd.io/v1\n"
        "kind: Kustomization\n"
        f"metadata:\n  name: {name}\n  namespace: {namespace}\n"
        "spec:\n"
        "  interval: 1h\n"
        f"  path: {path}\n"
        "  prune: true\n"
        f"  sourceRef:\n    kind: {source_kind}\n    name: {source}\n"
        + ("    namespace: flux-system\n" if namespace != "flux-system" else "")
        + spec_extra
    )


GIT_REPOSITORY = """
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: flux-system
  namespace: flux-system
spec:
  interval: 1h
  url: https://example.invalid/home-ops
  ref:
    branch: main
"""


def config_map(name: str, namespace: str, data: dict[str, str]) -> str:
    lines = "".join(f"  {k}: {v!r}\n" for k, v in data.items())
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {namespace}\ndata:\n{lines}"


def kustomization_yaml(*resources: str, extra: str = "") -> str:
    listed = "".join(f"  - {r}\n" for r in resources)
    return (
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n"
        + listed
        + textwrap.dedent(extra)
    )
