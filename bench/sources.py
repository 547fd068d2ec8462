"""`phoebe sync git --cascade` on the real source-controller, kustomize-controller and
helm-controller, on the sample repository served by a local Git server.

Each run pushes a commit (a ConfigMap value of one app changes), then times
`phoebe sync git flux-system --cascade` as a process, while a watch on the API server records
when each status write was seen:

- push -> exit: from the push to phoebe's exit (the whole wait a user sees);
- exit after the last status write: phoebe's exit minus the moment the last Kustomization of the
  cascade reached its final state on the new revision (as a watch saw it);
- phoebe's added latency over the controllers' own work: phoebe's whole run minus the controllers'
  own time (from the GitRepository's reconcile request landing to that last status write): its
  start-up and patch before, and its exit after.

Side by side, the reference: `flux reconcile source git flux-system` (the cached flux CLI; it
polls every 2 s) against `phoebe sync git flux-system` (the source alone, no cascade).

    python -m bench.sources [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import ssl
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx

from bench.common import print_table, time_command

KS_PATH = "/apis/kustomize.toolkit.fluxcd.io/v1/kustomizations"
GIT_PATH = "/apis/source.toolkit.fluxcd.io/v1/namespaces/flux-system/gitrepositories"
CHANGED = "kubernetes/apps/default/echo/app/configmap.yaml"


def _phoebe() -> list[str]:
    script = Path(sys.executable).parent / "phoebe"
    return [str(script)] if script.exists() else [sys.executable, "-m", "phoebe_cli"]


class Recorder:
    """Watches Kustomizations and the GitRepository; keeps (seen at, object) for every event."""

    def __init__(self, plane: Any) -> None:
        self.events: list[tuple[float, str, dict[str, Any]]] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._watch, args=(plane, path), daemon=True) for path in (KS_PATH, GIT_PATH)
        ]

    def start(self) -> Recorder:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _watch(self, plane: Any, path: str) -> None:
        verify = ssl.create_default_context(cafile=str(plane.ca_file))
        headers = {"Authorization": f"Bearer {plane.admin_token}"}
        with httpx.Client(base_url=plane.server, headers=headers, verify=verify, timeout=None) as client:
            version = client.get(path).json()["metadata"]["resourceVersion"]
            while not self._stop.is_set():
                params = {"watch": "1", "resourceVersion": version, "timeoutSeconds": "30"}
                try:
                    with client.stream("GET", path, params=params) as answer:
                        for line in answer.iter_lines():
                            if not line:
                                continue
                            event = json.loads(line)
                            obj = event.get("object") or {}
                            version = (obj.get("metadata") or {}).get("resourceVersion", version)
                            with self._lock:
                                self.events.append((time.monotonic(), obj.get("kind", ""), obj))
                            if self._stop.is_set():
                                return
                except httpx.HTTPError:
                    if self._stop.is_set():
                        return  # the control plane is going away after the runs
                    raise

    def since(self, moment: float) -> list[tuple[float, str, dict[str, Any]]]:
        with self._lock:
            return [e for e in self.events if e[0] >= moment]


def _final_on(obj: dict[str, Any], revision: str) -> bool:
    status = obj.get("status") or {}
    if status.get("lastAttemptedRevision") != revision:
        return False
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    return ready is not None and ready.get("status") in ("True", "False")


def _one_run(env: Any, recorder: Recorder, run: int) -> tuple[float, float, float, float, int]:
    target = env.git_dir / CHANGED
    target.write_text(target.read_text().rstrip("\n") + f"\n# bench run {run} {time.time_ns()}\n")
    env.repo.commit(f"bench run {run}")
    revision = env.repo.revision()
    pushed = time.monotonic()
    done = subprocess.run(
        [*_phoebe(), "sync", "git", "flux-system", "-n", "flux-system", "--cascade", "--timeout", "5m", "-o", "json"],
        capture_output=True,
        env=dict(os.environ, KUBECONFIG=str(env.plane.kubeconfig)),
        check=False,
    )
    exited = time.monotonic()
    time.sleep(0.5)  # let the watch deliver what it has
    items = json.loads(done.stdout)["items"]
    followed = {(i["namespace"], i["name"]) for i in items if i["phase"] == "cascade" and i["result"] != "skipped"}
    events = recorder.since(pushed)
    requested = min(
        t
        for t, kind, obj in events
        if kind == "GitRepository" and "reconcile.fluxcd.io/requestedAt" in (obj["metadata"].get("annotations") or {})
    )
    finals: dict[tuple[str, str], float] = {}
    for t, kind, obj in events:
        key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
        if kind == "Kustomization" and key in followed and key not in finals and _final_on(obj, revision):
            finals[key] = t
    last_write = max(finals.values())
    controllers = last_write - requested
    return exited - pushed, exited - last_write, (exited - pushed) - controllers, controllers, done.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)

    from tests.cluster.api import Api
    from tests.cluster.build import ensure_flux_cli
    from tests.cluster.controlplane import ControlPlane, new_workdir
    from tests.cluster.crds import install_crds
    from tests.cluster.flux import SAMPLE_REPO, SETTLE_TIMEOUT, FluxStack, settled

    plane = ControlPlane(new_workdir("phoebe-bench-sources-")).start()
    stack = None
    try:
        api = Api(plane.server, plane.admin_token, plane.ca_file)
        install_crds(api, "newest", external_secrets=False)
        git_dir = plane.workdir / "repo"
        shutil.copytree(SAMPLE_REPO, git_dir)
        stack = FluxStack(plane, api, plane.workdir / "flux", git_dir=git_dir).start()
        started = time.monotonic()
        stack.bootstrap()
        while not settled(api):
            stack.check_running()
            if time.monotonic() - started > SETTLE_TIMEOUT:
                print("the sample did not settle", file=sys.stderr)
                return 1
            time.sleep(0.5)
        print(f"# real sources: the sample settled {time.monotonic() - started:.1f} s after bootstrap")

        env = SimpleNamespace(git_dir=git_dir, repo=stack.repo, plane=plane)
        recorder = Recorder(plane).start()
        rows = [_one_run(env, recorder, run) for run in range(args.runs)]
        recorder.stop()
        print("\n## push -> `phoebe sync git flux-system --cascade` exit, on the sample (31 Kustomizations)")
        print("  push->exit   after last write   phoebe's added   controllers' own   exit")
        for total, lag, added, controllers, code in rows:
            print(f"  {total:8.2f} s   {lag * 1000:11.0f} ms   {added:11.2f} s   {controllers:13.2f} s   {code:4d}")
        print(
            f"median: push->exit {statistics.median(r[0] for r in rows):.2f} s, "
            f"exit after last write {statistics.median(r[1] for r in rows) * 1000:.0f} ms, "
            f"phoebe's added latency {statistics.median(r[2] for r in rows):.2f} s "
            "(exit 1 is the sample's failing app)"
        )

        kube_env = {"KUBECONFIG": str(plane.kubeconfig)}
        flux = ensure_flux_cli()
        timings = [
            time_command(
                "phoebe sync git flux-system",
                [*_phoebe(), "sync", "git", "flux-system", "-n", "flux-system", "--timeout", "2m"],
                runs=args.runs,
                env=kube_env,
            ),
            time_command(
                "flux reconcile source git flux-system",
                [str(flux), "reconcile", "source", "git", "flux-system", "-n", "flux-system", "--timeout", "2m"],
                runs=args.runs,
                env=kube_env,
            ),
        ]
        print_table("one source, whole process, real source-controller", timings, reference=timings[1])
    finally:
        if stack is not None:
            stack.remove()
        plane.remove()
    return 0


if __name__ == "__main__":
    sys.exit(main())
