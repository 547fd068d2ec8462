"""`phoebe status` on a local control plane with 200 Kustomizations, 200 HelmReleases and 50
sources, side by side with `kubectl get ks,hr,gitrepo,ocirepo,helmrepo -A` (and `flux get all -A`
when the flux CLI is built) in the same run: whole-process median, peak memory, API requests.

Goal: within 4x of the kubectl call while showing far more, never above 0.8 s, at most 150 MB.

    python -m bench.status [--runs 10]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.common import print_table, time_command

GOAL_RATIO = 4.0
GOAL_SECONDS = 0.8
GOAL_MEGABYTES = 150


def _peak_megabytes(argv: list[str], env: dict[str, str]) -> float:
    done = subprocess.run(
        ["/usr/bin/time", "-f", "%M", *argv], capture_output=True, text=True, env=dict(os.environ, **env), check=False
    )
    return int(done.stderr.strip().splitlines()[-1]) / 1024


def _load(api, kustomizations: int, releases: int, sources: int) -> None:  # type: ignore[no-untyped-def]
    from tests.support import fluxstatus, manifests

    namespaces = [f"bench-{i:02d}" for i in range(20)]
    for namespace in namespaces:
        api.ensure_namespace(namespace)

    def source(i: int) -> None:
        namespace = namespaces[i % len(namespaces)]
        builder = (manifests.git_repository, manifests.oci_repository, manifests.helm_repository)[i % 3]
        obj = api.create(builder(f"src-{i:02d}", namespace))
        api.patch_status(obj, fluxstatus.ready_status(obj))

    def app(i: int) -> None:
        namespace = namespaces[i % len(namespaces)]
        release = api.create(
            manifests.helm_release(f"app-{i:03d}", namespace, repository=f"src-{(i % 16) * 3 + 2:02d}")
        )
        api.patch_status(release, fluxstatus.ready_status(release))
        ks = api.create(
            manifests.kustomization(
                f"app-{i:03d}", namespace, source=("GitRepository", "src-00"), source_namespace=namespaces[0]
            )
        )
        status = fluxstatus.ready_status(ks) if i % 25 else fluxstatus.failed_status(ks, reason="X", message="broken")
        status["inventory"] = {
            "entries": [{"id": f"{namespace}_app-{i:03d}_helm.toolkit.fluxcd.io_HelmRelease", "v": "v2"}]
        }
        api.patch_status(ks, status)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(source, range(sources)))
        list(pool.map(app, range(min(kustomizations, releases))))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args(argv)

    from tests.cluster.api import Api
    from tests.cluster.build import ensure_flux_cli
    from tests.cluster.controlplane import ControlPlane, new_workdir
    from tests.cluster.crds import install_crds
    from tests.support.flux_install import install_ready_controllers

    plane = ControlPlane(new_workdir("phoebe-bench-status-")).start()
    try:
        api = Api(plane.server, plane.admin_token, plane.ca_file)
        install_crds(api, "newest")
        install_ready_controllers(api)
        _load(api, 200, 200, 50)
        env = {"KUBECONFIG": str(plane.kubeconfig)}
        script = Path(sys.executable).parent / "phoebe"
        phoebe = [str(script)] if script.exists() else [sys.executable, "-m", "phoebe_cli"]
        kubectl = ["kubectl", "get", "ks,hr,gitrepo,ocirepo,helmrepo", "-A"]
        commands = {
            "phoebe status -A (tree, 450 objects)": [*phoebe, "status", "-A"],
            "phoebe status -A -o table": [*phoebe, "status", "-A", "-o", "table"],
            "phoebe status -A -o json": [*phoebe, "status", "-A", "-o", "json"],
            "kubectl get ks,hr,gitrepo,ocirepo,helmrepo -A": kubectl,
        }
        try:
            flux = str(ensure_flux_cli())
            commands["flux get all -A"] = [flux, "get", "all", "-A"]
        except Exception as error:  # noqa: BLE001 - the reference is optional
            print(f"(flux CLI not available: {error})")
        timings = [
            time_command(label, argv, runs=args.runs, warmup=2, env=env, ok_codes=(0, 1))
            for label, argv in commands.items()
        ]
        reference = timings[3]
        print_table("phoebe status with 200 Kustomizations, 200 HelmReleases, 50 sources", timings, reference=reference)
        print("\npeak memory (max RSS):")
        for label, command in commands.items():
            print(f"  {label:<56} {_peak_megabytes(command, env):6.1f} MB")
        verbose = subprocess.run(
            [*phoebe, "-vv", "status", "-A", "-o", "json"],
            capture_output=True,
            text=True,
            env=dict(os.environ, **env),
            check=False,
        )
        requests = re.search(r"(\d+) requests to", verbose.stderr)
        print(
            f"\nAPI requests by phoebe status -A: {requests.group(1) if requests else '?'} "
            "(discovery, one LIST per kind, the Flux controllers for the version)"
        )
        tree = timings[0]
        ratio = tree.median / reference.median
        memory = _peak_megabytes(commands["phoebe status -A (tree, 450 objects)"], env)
        print(
            f"goal: within {GOAL_RATIO:.0f}x of kubectl: {ratio:.2f}x ({'met' if ratio <= GOAL_RATIO else 'MISSED'}); "
            f"never above {GOAL_SECONDS} s: median {tree.median:.2f} s, worst {max(tree.samples):.2f} s "
            f"({'met' if max(tree.samples) <= GOAL_SECONDS else 'MISSED'}); "
            f"<= {GOAL_MEGABYTES} MB: {memory:.0f} MB ({'met' if memory <= GOAL_MEGABYTES else 'MISSED'})"
        )
    finally:
        plane.remove()
    return 0


if __name__ == "__main__":
    sys.exit(main())
