"""Shared fixtures: real control planes (started once per session, per CRD set), a namespace
per test, the controller stand-in, and runners for the real ``phoebe`` entry point."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.cluster.api import Api
from tests.cluster.build import BuildError, GoMissing
from tests.cluster.controlplane import ControlPlane, new_workdir
from tests.support.flux_install import install_ready_controllers

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Cluster:
    """A running control plane with an admin client and its kubeconfig."""

    plane: ControlPlane
    api: Api
    crd_set: str

    @property
    def kubeconfig(self) -> Path:
        return self.plane.kubeconfig

    def kubeconfig_with_token(self, directory: Path, token: str, name: str = "other") -> Path:
        """A kubeconfig for the same server with another bearer token."""
        import yaml

        from tests.cluster.controlplane import kubeconfig_document

        path = directory / f"kubeconfig-{name}"
        doc = kubeconfig_document(self.plane.server, self.plane.ca_file, token, context=name, user=name)
        path.write_text(yaml.safe_dump(doc))
        return path


@dataclass
class ClusterPool:
    """Control planes by CRD set ("newest", "older", "none"; "sample": newest with the sample
    repository loaded and nothing else), started on first use."""

    clusters: dict[str, Cluster] = field(default_factory=dict)
    failure: str | None = None

    def get(self, crd_set: str) -> Cluster:
        if self.failure:
            pytest.skip(self.failure)
        if crd_set not in self.clusters:
            from tests.cluster.crds import install_crds

            try:
                plane = ControlPlane(new_workdir(f"phoebe-{crd_set}-")).start()
            except GoMissing as error:
                self.failure = f"no control plane: {error}"
                pytest.skip(self.failure)
            except BuildError as error:
                self.failure = f"control plane build failed: {error}"
                pytest.fail(self.failure)
            api = Api(plane.server, plane.admin_token, plane.ca_file)
            self.clusters[crd_set] = Cluster(plane, api, crd_set)
            if crd_set != "none":
                install_crds(api, "newest" if crd_set == "sample" else crd_set)
                install_ready_controllers(api)
            if crd_set == "sample":
                from tests.support.sample import load_sample_repository

                load_sample_repository(api)
        return self.clusters[crd_set]

    def stop_all(self) -> None:
        for cluster in self.clusters.values():
            cluster.api.close()
            cluster.plane.remove()
        self.clusters.clear()


@pytest.fixture(scope="session")
def cluster_pool() -> Iterator[ClusterPool]:
    pool = ClusterPool()
    try:
        yield pool
    finally:
        pool.stop_all()


@pytest.fixture(scope="session")
def cluster(cluster_pool: ClusterPool) -> Cluster:
    """The shared control plane with the newest Flux CRD set and ready controllers."""
    return cluster_pool.get("newest")


@pytest.fixture(scope="session")
def older_cluster(cluster_pool: ClusterPool) -> Cluster:
    """A control plane with the older CRD set (v1beta2/v2beta2 served beside v1/v2)."""
    return cluster_pool.get("older")


@pytest.fixture(scope="session")
def sample_cluster(cluster_pool: ClusterPool) -> Cluster:
    """A control plane holding only the sample repository, with its scenario statuses (tests
    must not change it)."""
    return cluster_pool.get("sample")


@pytest.fixture(scope="session")
def bare_cluster(cluster_pool: ClusterPool) -> Cluster:
    """A control plane with no Flux CRDs at all."""
    return cluster_pool.get("none")


def _namespace_name(request: pytest.FixtureRequest) -> str:
    stem = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    return f"t-{stem}-{secrets.token_hex(3)}"


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> str:
    """A fresh namespace on the shared cluster. Never deleted: with no namespace controller a
    deleted namespace stays Terminating, and unique names keep tests apart."""
    name = _namespace_name(request)
    cluster.api.ensure_namespace(name)
    return name


@dataclass(frozen=True)
class CliResult:
    code: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        return self.stdout.splitlines()


PhoebeRunner = Callable[..., CliResult]


@pytest.fixture
def phoebe(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> PhoebeRunner:
    """Run the real entry point in-process: ``phoebe("check", kubeconfig=path)``.

    The environment is isolated: no KUBECONFIG, a HOME without ~/.kube, no NO_COLOR, and
    FLUX_SYSTEM_NAMESPACE unset, unless a test sets them itself."""
    from phoebe_cli.cli.main import run

    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for variable in ("KUBECONFIG", "NO_COLOR", "FLUX_SYSTEM_NAMESPACE", "KUBERNETES_SERVICE_HOST"):
        monkeypatch.delenv(variable, raising=False)

    def invoke(*args: str, kubeconfig: Path | str | None = None) -> CliResult:
        argv = list(args)
        if kubeconfig is not None:
            argv += ["--kubeconfig", str(kubeconfig)]
        capsys.readouterr()
        code = run(argv)
        out, err = capsys.readouterr()
        return CliResult(code, out, err)

    return invoke


@pytest.fixture
def phoebe_process(tmp_path: Path) -> PhoebeRunner:
    """Run ``python -m phoebe_cli`` as a separate process (entry point, env, exit code)."""

    def invoke(*args: str, env: dict[str, str] | None = None, kubeconfig: Path | str | None = None) -> CliResult:
        argv = [sys.executable, "-m", "phoebe_cli", *args]
        if kubeconfig is not None:
            argv += ["--kubeconfig", str(kubeconfig)]
        base = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "NO_COLOR", "FLUX_SYSTEM_NAMESPACE")}
        base["HOME"] = str(tmp_path)
        base.update(env or {})
        done = subprocess.run(argv, capture_output=True, text=True, env=base, timeout=120, check=False)
        return CliResult(done.returncode, done.stdout, done.stderr)

    return invoke
