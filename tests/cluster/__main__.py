"""Command line for the test control plane: build it, bring it up for a person, take it down.

python -m tests.cluster build            build (or reuse) kube-apiserver and etcd
python -m tests.cluster up [--crds SET] [--sample]
                                         start it detached; prints `export KUBECONFIG=...`
python -m tests.cluster down             stop what `up` started
python -m tests.cluster env              print the export line of the running one
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from tests.cluster.build import BuildError, cache_root, ensure_control_plane_binaries, log


def default_dir() -> Path:
    return cache_root() / "cluster"


def cmd_build(_: argparse.Namespace) -> int:
    binaries = ensure_control_plane_binaries()
    print(f"kube-apiserver: {binaries.kube_apiserver}")
    print(f"etcd:           {binaries.etcd}")
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    from tests.cluster.api import Api
    from tests.cluster.controlplane import ControlPlane, stop_pids
    from tests.cluster.crds import install_crds

    workdir: Path = args.dir
    if (workdir / "kubeconfig").exists():
        stop_pids(workdir)
    shutil.rmtree(workdir, ignore_errors=True)
    started = time.monotonic()
    plane = ControlPlane(workdir, attached=False).start()
    api = Api(plane.server, plane.admin_token, plane.ca_file)
    if args.crds != "none":
        from tests.support.flux_install import install_ready_controllers

        install_crds(api, args.crds)
        install_ready_controllers(api)
        log(f"installed the {args.crds} Flux CRD set and ready controller Deployments (no controller runs)")
    if args.sample:
        from tests.support.sample import load_sample_repository

        loaded = load_sample_repository(api)
        log(f"loaded the sample repository: {loaded.summary()}")
    log(f"up in {time.monotonic() - started:.1f}s; stop it with: python -m tests.cluster down")
    print(f"export KUBECONFIG={plane.kubeconfig}")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    from tests.cluster.controlplane import stop_pids

    stopped = stop_pids(args.dir)
    log("stopped " + ", ".join(stopped) if stopped else "nothing was running")
    shutil.rmtree(args.dir, ignore_errors=True)
    return 0


def cmd_env(args: argparse.Namespace) -> int:
    kubeconfig = args.dir / "kubeconfig"
    if not kubeconfig.exists():
        log("no control plane is up (python -m tests.cluster up)")
        return 1
    print(f"export KUBECONFIG={kubeconfig}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.cluster",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--dir", type=Path, default=default_dir(), help="state directory (default: %(default)s)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("build", help="build or reuse the binaries").set_defaults(run=cmd_build)
    up = commands.add_parser("up", help="start a control plane detached")
    up.add_argument("--crds", choices=("newest", "older", "none"), default="newest")
    up.add_argument("--sample", action="store_true", help="load the sample GitOps repository with scenario statuses")
    up.set_defaults(run=cmd_up)
    commands.add_parser("down", help="stop it").set_defaults(run=cmd_down)
    commands.add_parser("env", help="print the export line").set_defaults(run=cmd_env)
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except BuildError as error:
        log(f"error: {error}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
