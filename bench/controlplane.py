"""The test control plane's warm start (binaries cached), CRD install and stop, and
`phoebe check` against it beside kubectl.

    python -m bench.controlplane [--runs N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from bench.common import print_table, time_command, which


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)

    from tests.cluster.api import Api
    from tests.cluster.build import ensure_control_plane_binaries
    from tests.cluster.controlplane import ControlPlane, new_workdir
    from tests.cluster.crds import install_crds
    from tests.support.flux_install import install_ready_controllers

    binaries = ensure_control_plane_binaries()
    starts, crds, stops = [], [], []
    plane = None
    for index in range(args.runs):
        started = time.perf_counter()
        plane = ControlPlane(new_workdir("phoebe-bench-"), binaries=binaries).start()
        starts.append(time.perf_counter() - started)
        api = Api(plane.server, plane.admin_token, plane.ca_file)
        started = time.perf_counter()
        install_crds(api, "newest")
        crds.append(time.perf_counter() - started)
        if index < args.runs - 1:
            started = time.perf_counter()
            plane.remove()
            stops.append(time.perf_counter() - started)
    assert plane is not None
    print("\n## control plane (binaries cached)")
    runs = ", ".join(f"{s:.2f}" for s in starts)
    print(f"warm start to /readyz: median {statistics.median(starts):.2f}s  (runs: {runs})")
    print(f"install the newest CRD set (Flux + ExternalSecret), Established: median {statistics.median(crds):.2f}s")
    if stops:
        print(f"stop (API server, then etcd): median {statistics.median(stops):.2f}s")

    try:
        api = Api(plane.server, plane.admin_token, plane.ca_file)
        install_ready_controllers(api)
        env = {"KUBECONFIG": str(plane.kubeconfig)}
        phoebe = os.path.join(os.path.dirname(sys.executable), "phoebe")
        timings = [time_command("phoebe check -o json", [phoebe, "check", "-o", "json"], runs=10, env=env)]
        kubectl = which("kubectl")
        if kubectl:
            timings.append(time_command("kubectl get crds", [kubectl, "get", "crds"], runs=10, env=env))
            timings.append(
                time_command(
                    "kubectl get deploy -n flux-system",
                    [kubectl, "get", "deploy", "-n", "flux-system"],
                    runs=10,
                    env=env,
                )
            )
        print_table("phoebe check on the local control plane (whole process)", timings)
    finally:
        plane.remove()
    return 0


if __name__ == "__main__":
    sys.exit(main())
