"""Command line for the test control plane: build it, bring it up for a person, take it down.

    python -m tests.cluster build [--flux] [--oracles]
                                             build (or reuse) kube-apiserver and etcd
                                             (--flux: also the Flux controllers, the registry and kwok;
                                             --oracles: the flux CLI and the Go oracles)
    python -m tests.cluster up [--crds SET] [--sample]
                                             a control plane, left running; status written by hand
    python -m tests.cluster up --flux        ... with the real source-controller,
                                             kustomize-controller and helm-controller
                                             reconciling the sample repository, served by a
                                             local Git server, Helm repositories and registry
    python -m tests.cluster down             stop what `up` started
    python -m tests.cluster env              print the export line of the running one

`up` prints `export KUBECONFIG=...` on stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.cluster.build import (
    BuildError,
    cache_root,
    ensure_control_plane_binaries,
    ensure_flux_cli,
    ensure_program,
    helm_controller_program,
    helm_program,
    kustomize_controller_program,
    kustomize_program,
    kwok_program,
    log,
    oracle_programs,
    registry_program,
    source_controller_program,
)

SUPERVISOR_PID = "supervisor.pid"
READY_FILE = "ready"
FAILED_FILE = "failed"


def default_dir() -> Path:
    return cache_root() / "cluster"


def cmd_build(args: argparse.Namespace) -> int:
    binaries = ensure_control_plane_binaries()
    print(f"kube-apiserver:       {binaries.kube_apiserver}")
    print(f"etcd:                 {binaries.etcd}")
    if args.flux:
        programs = (
            kustomize_controller_program(),
            helm_controller_program(),
            source_controller_program(),
            registry_program(),
            kwok_program(),
            kustomize_program(),
            helm_program(),
        )
        for program in programs:
            print(f"{program.name + ':':<22}{ensure_program(program)}")
    if args.oracles:
        # The differential tests' judges: Flux's own code (minutes, cold; cached like the rest)
        for program in oracle_programs():
            print(f"{program.name + ':':<22}{ensure_program(program)}")
        print(f"{'flux:':<22}{ensure_flux_cli()}")
    return 0


def _clear(workdir: Path) -> None:
    """Stop whatever an earlier `up` left in this directory, then empty it."""
    from tests.cluster.controlplane import stop_pids

    _stop_supervisor(workdir)
    if (workdir / "kubeconfig").exists():
        stop_pids(workdir)
    shutil.rmtree(workdir, ignore_errors=True)


def cmd_up(args: argparse.Namespace) -> int:
    workdir: Path = args.dir
    _clear(workdir)
    if args.flux:
        return _up_with_flux(workdir)

    from tests.cluster.api import Api
    from tests.cluster.controlplane import ControlPlane
    from tests.cluster.crds import install_crds

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


def _up_with_flux(workdir: Path) -> int:
    """Start a supervisor process that owns the stack (the Git server, the Helm repositories and
    the log pumps are Python threads: they need a process that lives as long as the stack)."""
    for program in (
        source_controller_program(),
        kustomize_controller_program(),
        helm_controller_program(),
        registry_program(),
        kwok_program(),
        helm_program(),
    ):
        ensure_program(program)
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with open(workdir / "supervisor.log", "wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.cluster", "--dir", str(workdir), "serve"],
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=Path(__file__).resolve().parent.parent.parent,
        )
    (workdir / SUPERVISOR_PID).write_text(str(process.pid))
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if (workdir / READY_FILE).exists():
            settled = (workdir / READY_FILE).read_text().strip()
            log(f"real Flux up and the sample repository settled ({settled}); {time.monotonic() - started:.1f}s in all")
            log("stop it with: python -m tests.cluster down")
            print(f"export KUBECONFIG={workdir / 'kubeconfig'}")
            return 0
        if process.poll() is not None or (workdir / FAILED_FILE).exists():
            break
        time.sleep(0.2)
    tail = (workdir / "supervisor.log").read_text(errors="replace")[-3000:]
    log(f"the stack did not come up:\n{tail}")
    _stop_supervisor(workdir)
    return 1


def cmd_serve(args: argparse.Namespace) -> int:
    """The supervisor: control plane, real Flux, the sample repository; until SIGTERM."""
    from tests.cluster.api import Api
    from tests.cluster.controlplane import ControlPlane
    from tests.cluster.crds import install_crds
    from tests.cluster.flux import SAMPLE_REPO, SETTLE_TIMEOUT, FluxStack, settled

    workdir: Path = args.dir
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    plane = ControlPlane(workdir).start()
    stack = None
    try:
        api = Api(plane.server, plane.admin_token, plane.ca_file)
        install_crds(api, "newest", external_secrets=False)
        git_dir = workdir / "repo"
        shutil.copytree(SAMPLE_REPO, git_dir)
        stack = FluxStack(plane, api, workdir / "flux", git_dir=git_dir).start()
        started = time.monotonic()
        stack.bootstrap()
        while not settled(api) and not stop.is_set():
            stack.check_running()
            if time.monotonic() - started > SETTLE_TIMEOUT:
                (workdir / FAILED_FILE).write_text("did not settle")
                return 1
            time.sleep(0.5)
        (workdir / READY_FILE).write_text(f"in {time.monotonic() - started:.1f}s")
        log(f"sample repository settled in {time.monotonic() - started:.1f}s; serving until SIGTERM")
        stop.wait()
    except BaseException as error:
        (workdir / FAILED_FILE).write_text(str(error))
        raise
    finally:
        if stack is not None:
            stack.stop()
        plane.stop()
    return 0


def _stop_supervisor(workdir: Path) -> bool:
    pid_file = workdir / SUPERVISOR_PID
    if not pid_file.exists():
        return False
    pid = int(pid_file.read_text())
    pid_file.unlink()
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        time.sleep(0.1)
    if Path(f"/proc/{pid}").exists():
        os.killpg(pid, signal.SIGKILL)
    return True


def cmd_down(args: argparse.Namespace) -> int:
    from tests.cluster.controlplane import stop_pids

    stopped = ["supervisor"] if _stop_supervisor(args.dir) else []
    stopped += stop_pids(args.dir)
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
        prog="python -m tests.cluster", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dir", type=Path, default=default_dir(), help="state directory (default: %(default)s)")
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="build or reuse the binaries")
    build.add_argument("--flux", action="store_true", help="also the Flux controllers, kwok, kustomize and helm")
    build.add_argument(
        "--oracles", action="store_true", help="also the flux CLI and the Go oracles of the differential tests"
    )
    build.set_defaults(run=cmd_build)
    up = commands.add_parser("up", help="start a control plane, left running")
    up.add_argument("--crds", choices=("newest", "older", "none"), default="newest")
    up.add_argument("--sample", action="store_true", help="load the sample GitOps repository with scenario statuses")
    up.add_argument("--flux", action="store_true", help="run the real Flux controllers on the sample repository")
    up.set_defaults(run=cmd_up)
    commands.add_parser("serve", help=argparse.SUPPRESS).set_defaults(run=cmd_serve)
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
