"""Build (or reuse) kube-apiserver and etcd from the Go module proxy, and fetch CRD files.

Binaries are cached outside the clone, under ``$XDG_CACHE_HOME/phoebe/bin`` (else
``~/.cache/phoebe/bin``), keyed by the module's version and a hash of its go.mod/go.sum, so a
second run, or CI on the same machine, reuses them. ``KUBEBUILDER_ASSETS`` (the envtest
convention: a folder holding kube-apiserver and etcd) wins when it is set.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

GO_DIR = Path(__file__).resolve().parent / "go"


class BuildError(RuntimeError):
    """A binary could not be built or fetched; the message says why and what to do."""


class GoMissing(BuildError):
    """The machine has no Go toolchain: the control plane cannot be built here."""


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "phoebe"


# Built binaries live where the cache was when this module was first imported (at collection,
# before any test runs): a test that points XDG_CACHE_HOME or HOME at a temp dir for phoebe's own
# caches must not make the harness build minutes of Go again inside it.
BIN_ROOT = cache_root() / "bin"


def go_binary() -> str:
    found = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None)
    if not found:
        raise GoMissing("Go is not installed (need the go command to build kube-apiserver and etcd)")
    return found


def go_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("GOTOOLCHAIN", "local")
    env["GOFLAGS"] = "-mod=mod"
    return env


@dataclass(frozen=True)
class GoProgram:
    """A binary built from one of the small Go modules under go/."""

    name: str
    module_dir: str  # under go/
    package: str  # what `go build` builds
    version_module: str  # whose version keys the cache
    ldflags: tuple[str, ...] = ()
    own_sources: bool = False  # its own .go files (an oracle's main.go) key the cache too

    def version(self) -> str:
        text = (GO_DIR / self.module_dir / "go.mod").read_text()
        match = re.search(rf"^\s*(?:require\s+)?{re.escape(self.version_module)}\s+(v\S+)", text, re.M)
        if not match:
            raise BuildError(f"{self.version_module} is not required in go/{self.module_dir}/go.mod")
        return match.group(1)

    def cache_key(self) -> str:
        digest = hashlib.sha256()
        for name in ("go.mod", "go.sum"):
            path = GO_DIR / self.module_dir / name
            if path.exists():
                digest.update(path.read_bytes())
        digest.update(" ".join(self.ldflags).encode())
        if self.own_sources:
            for source in sorted((GO_DIR / self.module_dir).glob("*.go")):
                digest.update(source.name.encode() + b"\0" + source.read_bytes())
        return f"{self.name}-{self.version()}-{digest.hexdigest()[:10]}"


def _kube_ldflags(version: str) -> tuple[str, ...]:
    major, minor = version.lstrip("v").split(".")[:2]
    pkg = "k8s.io/component-base/version"
    # Without these the server says v0.0.0-master+$Format:%H$, which kubectl cannot parse.
    return (
        "-s",
        "-w",
        f"-X {pkg}.gitVersion={version}",
        f"-X {pkg}.gitMajor={major}",
        f"-X {pkg}.gitMinor={minor}",
        f"-X {pkg}.gitTreeState=clean",
        f"-X {pkg}.buildDate=2026-01-01T00:00:00Z",
    )


def kube_apiserver_program() -> GoProgram:
    base = GoProgram("kube-apiserver", "kube", "k8s.io/kubernetes/cmd/kube-apiserver", "k8s.io/kubernetes")
    return GoProgram(base.name, base.module_dir, base.package, base.version_module, _kube_ldflags(base.version()))


def etcd_program() -> GoProgram:
    return GoProgram("etcd", "etcd", ".", "go.etcd.io/etcd/server/v3", ("-s", "-w"))


def kustomize_controller_program() -> GoProgram:
    return GoProgram(
        "kustomize-controller",
        "kustomize-controller",
        "github.com/fluxcd/kustomize-controller",
        "github.com/fluxcd/kustomize-controller",
        ("-s", "-w"),
    )


def helm_controller_program() -> GoProgram:
    return GoProgram(
        "helm-controller",
        "helm-controller",
        "github.com/fluxcd/helm-controller",
        "github.com/fluxcd/helm-controller",
        ("-s", "-w"),
    )


def source_controller_program() -> GoProgram:
    """source-controller v1.9.6 through a small module (go/source-controller): its go.mod
    repeats the controller's replace directives and pins pkg/artifact to v0.18.0, the version
    the proxy serves (v1.9.6 asks for v0.18.3, which it does not)."""
    return GoProgram(
        "source-controller",
        "source-controller",
        "github.com/fluxcd/source-controller",
        "github.com/fluxcd/source-controller",
        ("-s", "-w"),
    )


def registry_program() -> GoProgram:
    """The CNCF distribution registry (OCI), the OCIRepository and Helm OCI server of the e2e
    stack (tests/cluster/registry.py)."""
    return GoProgram(
        "registry",
        "registry",
        "github.com/distribution/distribution/v3/cmd/registry",
        "github.com/distribution/distribution/v3",
        ("-s", "-w"),
    )


def kwok_program() -> GoProgram:
    return GoProgram("kwok", "kwok", "sigs.k8s.io/kwok/cmd/kwok", "sigs.k8s.io/kwok", ("-s", "-w"))


def kustomize_program() -> GoProgram:
    return GoProgram(
        "kustomize",
        "kustomize",
        "sigs.k8s.io/kustomize/kustomize/v5",
        "sigs.k8s.io/kustomize/kustomize/v5",
        ("-s", "-w"),
    )


def helm_program() -> GoProgram:
    # Stamped as Helm's Makefile stamps a release: without these, `helm version` says "v3.19" and
    # `helm template` assumes Kubernetes v1.20.0 (official v3.19.0 binaries: v1.34.0, its client-go).
    return GoProgram(
        "helm",
        "helm",
        "helm.sh/helm/v3/cmd/helm",
        "helm.sh/helm/v3",
        (
            "-s",
            "-w",
            "-X helm.sh/helm/v3/internal/version.version=v3.19.0",
            "-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1",
            "-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=34",
            "-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1",
            "-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=34",
        ),
    )


def oracle_program(module_dir: str, version_module: str) -> GoProgram:
    """A small Go program under go/ that answers the differential tests with Flux's own code."""
    return GoProgram(module_dir, module_dir, ".", version_module, ("-s", "-w"), own_sources=True)


def oracle_programs() -> tuple[GoProgram, ...]:
    return (
        oracle_program("yamloracle", "sigs.k8s.io/kustomize/kyaml"),
        oracle_program("envsubst-oracle", "github.com/fluxcd/pkg/envsubst"),
        oracle_program("sourceignore-oracle", "github.com/fluxcd/pkg/sourceignore"),
    )


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One build at a time per cache entry, across processes (pytest-xdist, a demo beside CI)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def log(message: str) -> None:
    print(f"[cluster] {message}", file=sys.stderr, flush=True)


# Binaries found in this process, by cache key: a test that points XDG_CACHE_HOME (or HOME) at a
# temp dir must not make a later lookup build the same binary again, for minutes, in that dir.
_FOUND: dict[str, Path] = {}


def ensure_program(program: GoProgram) -> Path:
    """The cached binary, built first if it is not there yet."""
    key = program.cache_key()
    if key in _FOUND and _FOUND[key].exists():
        return _FOUND[key]
    target_dir = BIN_ROOT / key
    target = target_dir / program.name
    if target.exists():
        _FOUND[key] = target
        return target
    with _locked(target_dir.with_suffix(".lock")):
        if target.exists():
            return target
        go = go_binary()
        log(f"building {program.name} {program.version()} from the Go module proxy (first time only; minutes)")
        started = time.monotonic()
        partial = target_dir / f".{program.name}.partial"
        target_dir.mkdir(parents=True, exist_ok=True)
        command = [
            go,
            "build",
            "-trimpath",
            "-ldflags",
            " ".join(program.ldflags),
            "-o",
            str(partial),
            program.package,
        ]
        result = subprocess.run(
            command,
            cwd=GO_DIR / program.module_dir,
            env=go_env(),
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise BuildError(f"go build {program.package} failed:\n{result.stderr[-4000:]}")
        partial.rename(target)
        log(f"built {program.name} in {time.monotonic() - started:.0f}s -> {target}")
    _FOUND[key] = target
    return target


@dataclass(frozen=True)
class ControlPlaneBinaries:
    kube_apiserver: Path
    etcd: Path


def ensure_control_plane_binaries() -> ControlPlaneBinaries:
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if assets:
        folder = Path(assets)
        apiserver, etcd = folder / "kube-apiserver", folder / "etcd"
        missing = [p.name for p in (apiserver, etcd) if not p.exists()]
        if missing:
            raise BuildError(f"KUBEBUILDER_ASSETS={assets} has no {', '.join(missing)}")
        return ControlPlaneBinaries(apiserver, etcd)
    etcd = ensure_program(etcd_program())
    apiserver = ensure_program(kube_apiserver_program())
    return ControlPlaneBinaries(apiserver, etcd)


def module_dir(module: str, version: str) -> Path:
    """Download a Go module through the proxy (cached by Go) and return its directory."""
    go = go_binary()
    result = subprocess.run(
        [go, "mod", "download", "-json", f"{module}@{version}"],
        cwd=GO_DIR / "kube",
        env=go_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        info = json.loads(result.stdout)
    except json.JSONDecodeError:
        info = {}
    if result.returncode != 0 or "Dir" not in info:
        raise BuildError(f"cannot download {module}@{version}: {info.get('Error') or result.stderr.strip()}")
    return Path(info["Dir"])


FLUX_CLI_VERSION = "v2.9.5"


def ensure_flux_cli() -> Path:
    """The flux CLI: the oracle of the differential tests (tests/repo/test_flux_oracle.py), and
    the reference of benchmarks side by side with phoebe.

    Built from a writable copy of the module: its go.mod has a replace directive (so `go install`
    refuses it), and it embeds install manifests that `make` generates; a placeholder stands in
    for them (`flux install` is not what the benchmark runs).
    """
    target_dir = BIN_ROOT / f"flux-{FLUX_CLI_VERSION}"
    target = target_dir / "flux"
    if target.exists():
        return target
    with _locked(target_dir.with_suffix(".lock")):
        if target.exists():
            return target
        source = module_dir("github.com/fluxcd/flux2/v2", FLUX_CLI_VERSION)
        log(f"building the flux CLI {FLUX_CLI_VERSION} from the Go module proxy (benchmarks only; minutes)")
        with tempfile.TemporaryDirectory(prefix="phoebe-flux2-") as scratch:
            work = Path(scratch) / "flux2"
            shutil.copytree(source, work)
            for path in work.rglob("*"):
                path.chmod(path.stat().st_mode | 0o200)
            manifests = work / "cmd" / "flux" / "manifests"
            manifests.mkdir(exist_ok=True)
            (manifests / "placeholder.yaml").write_text("# flux install manifests are not built here\n")
            target_dir.mkdir(parents=True, exist_ok=True)
            partial = target_dir / ".flux.partial"
            ldflags = f"-s -w -X main.VERSION={FLUX_CLI_VERSION.lstrip('v')}"
            result = subprocess.run(
                [go_binary(), "build", "-trimpath", "-ldflags", ldflags, "-o", str(partial), "./cmd/flux"],
                cwd=work,
                env=go_env(),
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode != 0:
                raise BuildError(f"go build of the flux CLI failed:\n{result.stderr[-4000:]}")
            partial.rename(target)
    return target
