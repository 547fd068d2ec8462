"""Real Flux in the loop: source-controller, kustomize-controller and helm-controller running
against a local control plane, and controller Pods on a kwok node whose logs (the real
controllers' stderr) come back through the API server's ``pods/log``.

    stack = FluxStack(plane, api, workdir, git_dir=copy_of_the_sample).start()
    stack.bootstrap()
    ...
    stack.repo.commit("a change")     # pushed to the local Git server source-controller reads
    stack.stop()

By default the sources are real (tests/cluster/sample_sources.py): the sample is served by a
local Git server, Helm HTTP repositories and the distribution registry, and ``git_dir`` (a copy:
it is rewritten to point at them, and committed) is the Git work tree. ``sources="stand-in"``
runs the source stand-in (tests/support/sources.py) instead of source-controller, for tests
that serve arbitrary directories (the layout agreement test).

The controllers are local processes (``KUBECONFIG``, ``RUNTIME_NAMESPACE=flux-system``); the
Deployments and Pods that represent them on the cluster are created with the labels
``flux install`` gives them, so phoebe finds them as it would on a real cluster.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from tests.cluster.api import Api
from tests.cluster.build import (
    GoProgram,
    ensure_program,
    helm_controller_program,
    kustomize_controller_program,
    log,
    source_controller_program,
)
from tests.cluster.controlplane import ControlPlane, _die_with_parent, free_port
from tests.cluster.kwok import KwokNode, cri_line
from tests.cluster.sample_sources import SampleSources
from tests.support.gitserver import GitWorkTree
from tests.support.sources import SourceStandIn

FLUX_NAMESPACE = "flux-system"
FLUX_VERSION = "v2.9.5"  # the Flux distribution these controller versions ship in
REPO_ROOT = Path(__file__).resolve().parent.parent.parent
SAMPLE_REPO = REPO_ROOT / "tests" / "fixtures" / "gitops"
AGE_KEY = SAMPLE_REPO / "age.agekey"


KS = ("kustomize.toolkit.fluxcd.io/v1", "Kustomization")
HR = ("helm.toolkit.fluxcd.io/v2", "HelmRelease")
FAILING = ("rook-ceph", "rook-ceph-cluster")
BLOCKED = ("media", "sonarr")
SUSPENDED = ("media", "plex")
SETTLE_TIMEOUT = 240.0


def ready_reason(obj: dict[str, Any]) -> tuple[str, str] | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond.get("status", ""), cond.get("reason", "")
    return None


def settled(api: Api) -> bool:
    """Every Kustomization and HelmRelease of the sample has its expected state."""
    kustomizations = api.list(*KS)
    if len(kustomizations) < 31:
        return False
    for ks in kustomizations:
        key = (ks["metadata"]["namespace"], ks["metadata"]["name"])
        state = ready_reason(ks)
        if key == SUSPENDED:
            continue
        if key == FAILING:
            if state is None or state[0] != "False" or state[1] == "DependencyNotReady":
                return False
        elif key == BLOCKED:
            if state != ("False", "DependencyNotReady"):
                return False
        elif state is None or state[0] != "True":
            return False
    releases = api.list(*HR)
    return len(releases) >= 20 and all((ready_reason(hr) or ("",))[0] == "True" for hr in releases)


_APPEND_LOCK = threading.Lock()


def _append(path: Path, text: str) -> None:
    with _APPEND_LOCK, open(path, "a", encoding="utf-8") as handle:
        handle.write(text)


@dataclass(frozen=True)
class ControllerSpec:
    name: str
    version: str
    program: GoProgram | None  # None: played by a stand-in in this process
    flags: tuple[str, ...] = ()


def controller_specs(storage: tuple[Path, int] | None = None) -> tuple[ControllerSpec, ...]:
    """The three controllers; ``storage`` (directory, port): the real source-controller's
    artifact storage, else (None) source-controller is played by the stand-in."""
    common = (
        "--metrics-addr=127.0.0.1:0",
        "--health-addr=127.0.0.1:0",
        "--enable-leader-election=false",
        "--log-level=info",
        "--log-encoding=json",
        "--concurrent=8",
        # Re-check failed dependencies every few seconds (default 30 s) so the sample settles fast.
        "--requeue-dependency=3s",
    )
    source = ControllerSpec("source-controller", "v1.9.6", None)
    if storage is not None:
        directory, port = storage
        source = ControllerSpec(
            "source-controller",
            "v1.9.6",
            source_controller_program(),
            (
                *common,
                f"--storage-path={directory}",
                f"--storage-addr=127.0.0.1:{port}",
                f"--storage-adv-addr=127.0.0.1:{port}",
                "--watch-all-namespaces=true",
            ),
        )
    return (
        source,
        ControllerSpec("kustomize-controller", "v1.9.6", kustomize_controller_program(), common),
        ControllerSpec("helm-controller", "v1.6.4", helm_controller_program(), common),
    )


def deployment(spec: ControllerSpec) -> dict[str, object]:
    labels = {
        "app.kubernetes.io/part-of": "flux",
        "app.kubernetes.io/component": spec.name,
        "app.kubernetes.io/instance": FLUX_NAMESPACE,
        "app.kubernetes.io/version": FLUX_VERSION,
        "control-plane": "controller",
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": spec.name, "namespace": FLUX_NAMESPACE, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": spec.name}},
            "template": {
                "metadata": {"labels": {"app": spec.name}},
                "spec": {"containers": [{"name": "manager", "image": f"ghcr.io/fluxcd/{spec.name}:{spec.version}"}]},
            },
        },
    }


@dataclass
class ControllerProcess:
    """One real controller, its stderr copied line by line into its Pod's CRI log file."""

    spec: ControllerSpec
    pod: str
    log_file: Path
    raw_log: Path
    process: subprocess.Popen[bytes] | None = None
    _pump: threading.Thread | None = None

    def start(self, binary: Path, kubeconfig: Path) -> None:
        env = dict(os.environ, KUBECONFIG=str(kubeconfig), RUNTIME_NAMESPACE=FLUX_NAMESPACE)
        self.process = subprocess.Popen(
            [str(binary), *self.spec.flags],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=self.raw_log.parent,
            start_new_session=True,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - prctl only, before exec
        )
        assert self.process.stdout is not None
        self._pump = threading.Thread(target=self._copy, args=(self.process.stdout,), daemon=True)
        self._pump.start()

    def _copy(self, stream: IO[bytes]) -> None:
        with open(self.log_file, "a", encoding="utf-8") as cri, open(self.raw_log, "ab") as raw:
            for line in iter(stream.readline, b""):
                raw.write(line)
                raw.flush()
                cri.write(cri_line(line.decode("utf-8", errors="replace").rstrip("\n")))
                cri.flush()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        if self._pump is not None:
            self._pump.join(timeout=5)


@dataclass
class FluxStack:
    plane: ControlPlane
    api: Api
    workdir: Path
    git_dir: Path = SAMPLE_REPO
    source_mode: str = "real"  # or "stand-in"
    node: KwokNode | None = None
    sources: SourceStandIn | None = None  # source_mode "stand-in"
    real_sources: SampleSources | None = None  # source_mode "real"
    repo: GitWorkTree | None = None  # the Git work tree source-controller reads (real mode)
    controllers: dict[str, ControllerProcess] = field(default_factory=dict)
    pods: dict[str, str] = field(default_factory=dict)  # controller -> pod name

    def start(self) -> FluxStack:
        started = time.monotonic()
        real = self.source_mode == "real"
        if not real and self.source_mode != "stand-in":
            raise ValueError(f"unknown source mode {self.source_mode!r}")
        specs = controller_specs((self.workdir / "artifacts", free_port()) if real else None)
        binaries = {s.name: ensure_program(s.program) for s in specs if s.program is not None}
        (self.workdir / "artifacts").mkdir(parents=True, exist_ok=True)  # source-controller wants it made
        try:
            self.api.ensure_namespace(FLUX_NAMESPACE)
            self._sops_key()
            if real:
                self.real_sources = SampleSources(self.workdir / "sources").start()
                self.repo = self.real_sources.prepare(self.git_dir)
            self.node = KwokNode(self.plane, self.workdir / "kwok").start()
            for spec in specs:
                self._represent(spec)
            if not real:
                source_log = self.node.log_file(FLUX_NAMESPACE, self.pods["source-controller"])
                self.sources = SourceStandIn(
                    self.api,
                    default_git_dir=self.git_dir,
                    workdir=self.workdir / "artifacts",
                    on_reconciled=lambda record: _append(source_log, cri_line(json.dumps(record))),
                )
                self.sources.start()
            for spec in specs:
                if spec.program is None:
                    continue
                pod = self.pods[spec.name]
                process = ControllerProcess(
                    spec, pod, self.node.log_file(FLUX_NAMESPACE, pod), self.workdir / f"{spec.name}.log"
                )
                process.start(binaries[spec.name], self.plane.kubeconfig)
                self.controllers[spec.name] = process
        except BaseException:
            self.stop()
            raise
        what = "source-controller, Git server, Helm repository, registry" if real else "the source stand-in"
        log(f"flux stack up in {time.monotonic() - started:.1f}s (kustomize-controller, helm-controller, {what})")
        return self

    def _sops_key(self) -> None:
        """The age key kustomize-controller decrypts the sample's SOPS files with."""
        key = AGE_KEY.read_bytes()
        self.api.apply(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "sops-age", "namespace": FLUX_NAMESPACE},
                "type": "Opaque",
                "data": {"age.agekey": base64.b64encode(key).decode()},
            }
        )

    def _represent(self, spec: ControllerSpec) -> None:
        """The controller's Deployment (ready) and its one Pod on the kwok node."""
        assert self.node is not None
        applied = self.api.apply(deployment(spec))
        template_hash = hashlib.sha256(spec.version.encode()).hexdigest()[:10]
        pod = f"{spec.name}-{template_hash}-{secrets.token_hex(3)[:5]}"
        self.node.run_pod(FLUX_NAMESPACE, pod, labels={"app": spec.name, "pod-template-hash": template_hash})
        self.pods[spec.name] = pod
        replicas = 1
        self.api.patch_status(
            applied,
            {
                "observedGeneration": applied["metadata"].get("generation", 1),
                "replicas": replicas,
                "updatedReplicas": replicas,
                "readyReplicas": replicas,
                "availableReplicas": replicas,
                "conditions": [
                    {
                        "type": "Available",
                        "status": "True",
                        "reason": "MinimumReplicasAvailable",
                        "message": "Deployment has minimum availability.",
                    },
                    {
                        "type": "Progressing",
                        "status": "True",
                        "reason": "NewReplicaSetAvailable",
                        "message": f'ReplicaSet "{spec.name}-{template_hash}" has successfully progressed.',
                    },
                ],
            },
        )

    def bootstrap(self, root: Path | None = None) -> list[dict[str, object]]:
        """What `flux bootstrap` leaves behind: the GitRepository and the root Kustomizations
        (read from ``root``, by default the stack's work tree)."""
        import yaml

        root = root or self.git_dir
        applied = []
        for name in ("kubernetes/flux/cluster/gitrepository.yaml", "kubernetes/flux/cluster/ks.yaml"):
            for doc in yaml.safe_load_all((root / name).read_text()):
                if isinstance(doc, dict) and doc.get("kind"):
                    applied.append(self.api.apply(doc, manager="flux"))
        return applied

    def check_running(self) -> None:
        """Raise when a controller process has exited (a wait for the sample to settle would
        otherwise run into its timeout): its last output says why."""
        for name, process in self.controllers.items():
            if process.process is not None and process.process.poll() is not None:
                tail = process.raw_log.read_text(errors="replace")[-2000:] if process.raw_log.exists() else ""
                raise RuntimeError(f"{name} exited ({process.process.returncode}):\n{tail}")

    def log_file(self, controller: str) -> Path:
        assert self.node is not None
        return self.node.log_file(FLUX_NAMESPACE, self.pods[controller])

    def stop(self) -> None:
        for process in self.controllers.values():
            process.stop()
        self.controllers.clear()
        if self.sources is not None:
            self.sources.stop()
            self.sources = None
        if self.real_sources is not None:
            self.real_sources.stop()
            self.real_sources = None
        if self.node is not None:
            self.node.stop()
            self.node = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)
