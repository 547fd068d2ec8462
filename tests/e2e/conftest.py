"""The real-Flux stack, shared by every end-to-end test (marked ``e2e``; opt out with
``-m "not e2e"``): its own control plane, the real source-controller, kustomize-controller and
helm-controller, the sample repository served by a local Git server, Helm HTTP repositories and
the distribution registry (tests/cluster/sample_sources.py), controller Pods on a kwok node, and
the sample bootstrapped and settled.

A test changes the sample by editing files under ``flux_env.git_dir`` and pushing them
(``flux_env.push("message")``; ``sync_cascade`` pushes pending changes itself); it puts back
what it changed the same way, so the next test sees the sample as it was."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.api import Api
from tests.cluster.build import BuildError, GoMissing
from tests.cluster.controlplane import ControlPlane, new_workdir
from tests.cluster.crds import install_crds
from tests.cluster.flux import HR, KS, SAMPLE_REPO, SETTLE_TIMEOUT, FluxStack, ready_reason, settled
from tests.cluster.sample_sources import SampleSources
from tests.support.gitserver import GitWorkTree

__all__ = ["HR", "KS", "FluxEnv", "ready_reason", "sync_cascade"]


@dataclass
class FluxEnv:
    stack: FluxStack
    plane: ControlPlane
    api: Api
    git_dir: Path  # a copy of the sample repository: tests may change it and sync
    settled_in: float

    @property
    def kubeconfig(self) -> Path:
        return self.plane.kubeconfig

    @property
    def repo(self) -> GitWorkTree:
        assert self.stack.repo is not None
        return self.stack.repo

    @property
    def sources(self) -> SampleSources:
        assert self.stack.real_sources is not None
        return self.stack.real_sources

    def push(self, message: str = "change") -> str:
        """Commit what changed under git_dir and push it to the Git server; the new revision
        (``main@sha1:...``) as source-controller will report it."""
        self.repo.commit(message)
        return self.repo.revision()


@pytest.fixture(scope="session")
def flux_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FluxEnv]:
    git_dir = tmp_path_factory.mktemp("gitops") / "repo"
    shutil.copytree(SAMPLE_REPO, git_dir)
    try:
        plane = ControlPlane(new_workdir("phoebe-e2e-")).start()
    except GoMissing as error:
        pytest.skip(f"no control plane: {error}")
    except BuildError as error:
        pytest.fail(f"control plane build failed: {error}")
    stack = None
    try:
        api = Api(plane.server, plane.admin_token, plane.ca_file)
        # No ExternalSecret CRDs up front: the sample's external-secrets app brings its own.
        install_crds(api, "newest", external_secrets=False)
        stack = FluxStack(plane, api, plane.workdir / "flux", git_dir=git_dir).start()
        started = time.monotonic()
        stack.bootstrap()
        deadline = started + SETTLE_TIMEOUT
        while not settled(api):
            try:
                stack.check_running()
            except RuntimeError as error:
                pytest.fail(str(error))
            if time.monotonic() > deadline:
                pytest.fail(f"the sample repository did not settle in {SETTLE_TIMEOUT:.0f}s on real Flux")
            time.sleep(0.5)
        yield FluxEnv(stack, plane, api, git_dir, time.monotonic() - started)
    finally:
        if stack is not None:
            stack.remove()
        plane.remove()


def sync_cascade(phoebe: Any, flux_env: FluxEnv) -> tuple[Any, dict[str, dict[str, Any]]]:
    """`phoebe sync git flux-system --cascade`: the source picks up the pushed commit (pending
    changes under git_dir are pushed first) and every Kustomization applies it. The result, and
    its items by namespace/name."""
    import json

    flux_env.push("sync_cascade")
    result = phoebe(
        "sync",
        "git",
        "flux-system",
        "-n",
        "flux-system",
        "--cascade",
        "--timeout",
        "3m",
        "-o",
        "json",
        kubeconfig=flux_env.kubeconfig,
    )
    items = {f"{i['namespace']}/{i['name']}": i for i in json.loads(result.stdout)["items"]}
    return result, items
