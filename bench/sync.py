"""`phoebe sync` benchmarks on a local control plane, side by side with their references.

1. Bulk request, no wait: 200 Kustomizations in 20 namespaces.
   - phoebe sync ks -A --no-wait
   - the recipe loop: kubectl get ks -A, then one `kubectl annotate` process per object
   - the server's floor: the same 200 merge patches from one curl --http2 --parallel process
   Goal: phoebe within 2x of the floor.
2. Wait, with the controller stand-in answering at once:
   - one object, whole process: phoebe sync ks NAME vs flux reconcile ks NAME (flux polls every 2 s)
     Goal: under 0.5 s.
   - 200 objects: how long after the stand-in's last status write phoebe exits. Goal: 0.3 s.

    python -m bench.sync [--objects 200] [--namespaces 20] [--runs 5] [--recipe-runs 1]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.common import Timing, print_table, time_command

GOAL_FLOOR_RATIO = 2.0
GOAL_ONE_OBJECT = 0.5
GOAL_AFTER_LAST_WRITE = 0.3


def _phoebe() -> list[str]:
    script = Path(sys.executable).parent / "phoebe"
    return [str(script)] if script.exists() else [sys.executable, "-m", "phoebe_cli"]


def _curl_config(path: Path, plane, objects: list[tuple[str, str]]) -> None:  # type: ignore[no-untyped-def]
    entries = []
    body = json.dumps({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "bench"}}})
    for namespace, name in objects:
        url = (
            f"{plane.server}/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/{namespace}/kustomizations/{name}"
            "?fieldManager=flux-client-side-apply"
        )
        entries.append(
            f'url = "{url}"\nrequest = "PATCH"\nheader = "Content-Type: application/merge-patch+json"\n'
            f'header = "Authorization: Bearer {plane.admin_token}"\ncacert = "{plane.ca_file}"\n'
            f"data = '{body}'\noutput = \"/dev/null\"\nsilent\n"
        )
    path.write_text("next\n".join(entries))


def _recipe_loop(kubeconfig: Path) -> None:
    env = dict(os.environ, KUBECONFIG=str(kubeconfig))
    listing = subprocess.run(
        [
            "kubectl",
            "get",
            "ks",
            "-A",
            "-o",
            'jsonpath={range .items[*]}{.metadata.namespace} {.metadata.name}{"\\n"}{end}',
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    for line in listing.splitlines():
        namespace, name = line.split()
        subprocess.run(
            [
                "kubectl",
                "annotate",
                "ks",
                "-n",
                namespace,
                name,
                "--overwrite",
                f"reconcile.fluxcd.io/requestedAt={time.time_ns()}",
            ],
            capture_output=True,
            env=env,
            check=True,
        )


def _timed(label: str, action, runs: int) -> Timing:  # type: ignore[no-untyped-def]
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return Timing(label, tuple(samples))


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def _bulk(args: argparse.Namespace, plane, objects: list[tuple[str, str]], env: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    phoebe = _phoebe()
    timings = [
        time_command(
            f"phoebe sync ks -A --no-wait ({len(objects)} objects)",
            [*phoebe, "sync", "ks", "-A", "--no-wait"],
            runs=args.runs,
            warmup=1,
            env=env,
        )
    ]
    curl_config = Path(tempfile.mkdtemp()) / "curl.cfg"
    _curl_config(curl_config, plane, objects)
    floor = time_command(
        "curl --http2 --parallel --parallel-max 32 (floor)",
        ["curl", "--http2", "--parallel", "--parallel-max", "32", "-K", str(curl_config)],
        runs=args.runs,
        warmup=1,
    )
    timings.append(floor)
    if shutil.which("kubectl") and args.recipe_runs > 0:
        timings.append(
            _timed(
                "recipe loop (kubectl get + 1 annotate per object)",
                lambda: _recipe_loop(plane.kubeconfig),
                args.recipe_runs,
            )
        )
    print_table(
        f"bulk reconcile request, {len(objects)} Kustomizations in {args.namespaces} namespaces",
        timings,
        reference=floor,
    )
    ratio = timings[0].median / floor.median
    verdict = _verdict(ratio <= GOAL_FLOOR_RATIO)
    print(f"goal: phoebe within {GOAL_FLOOR_RATIO:.0f}x of the floor: {ratio:.2f}x ({verdict})")
    if len(timings) > 2:
        print(f"phoebe vs the recipe loop: {timings[2].median / timings[0].median:.1f}x faster")


def _one_object(
    args: argparse.Namespace, api, namespaces: list[str], one: tuple[str, str], env: dict[str, str]
) -> None:  # type: ignore[no-untyped-def]
    from tests.cluster.build import ensure_flux_cli
    from tests.support.standin import FluxStandIn, Outcome

    namespace, name = one
    with FluxStandIn(api, namespaces=set(namespaces), default=Outcome.succeed()):
        waits = [
            time_command(
                "phoebe sync ks NAME (waits)",
                [*_phoebe(), "sync", "ks", name, "-n", namespace],
                runs=args.runs,
                warmup=1,
                env=env,
            )
        ]
        try:
            flux = str(ensure_flux_cli())
            waits.append(
                time_command(
                    "flux reconcile ks NAME (polls every 2 s)",
                    [flux, "reconcile", "ks", name, "-n", namespace, "--timeout", "1m"],
                    runs=max(2, args.runs // 2),
                    warmup=0,
                    env=env,
                )
            )
        except Exception as error:  # noqa: BLE001 - the reference is optional where Go cannot build it
            print(f"(flux CLI not available: {error})")
    print_table("one object, waiting for the stand-in's answer (whole process)", waits)
    median = waits[0].median
    print(f"goal: one object under {GOAL_ONE_OBJECT} s: {median:.2f} s ({_verdict(median < GOAL_ONE_OBJECT)})")


def _all_objects(args: argparse.Namespace, api, namespaces: list[str], env: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    from tests.support.standin import FluxStandIn, Outcome

    lags = []
    for _ in range(max(1, args.runs // 2)):
        with FluxStandIn(api, namespaces=set(namespaces), default=Outcome.succeed()) as standin:
            started = time.monotonic()
            done = subprocess.run(
                [*_phoebe(), "sync", "ks", "-A", "--timeout", "5m", "-o", "json"],
                capture_output=True,
                env=dict(os.environ, **env),
                check=False,
            )
            exited = time.monotonic()
            last = max(t for t, what, _ in standin.journal if what == "answered")
            lags.append((exited - last, exited - started, done.returncode))
    print(f"\n## {args.objects} objects, waiting: phoebe's exit after the stand-in's last status write")
    for lag, total, code in lags:
        print(f"  {lag * 1000:6.0f} ms after the last write (whole run {total:.2f} s, exit {code})")
    median_lag = statistics.median(lag for lag, _, _ in lags)
    print(
        f"goal: within {GOAL_AFTER_LAST_WRITE} s: {median_lag:.3f} s ({_verdict(median_lag <= GOAL_AFTER_LAST_WRITE)})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=200)
    parser.add_argument("--namespaces", type=int, default=20)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--recipe-runs", type=int, default=1)
    args = parser.parse_args(argv)

    from tests.cluster.api import Api
    from tests.cluster.controlplane import ControlPlane, new_workdir
    from tests.cluster.crds import install_crds
    from tests.support import manifests
    from tests.support.flux_install import install_ready_controllers

    plane = ControlPlane(new_workdir("phoebe-bench-sync-")).start()
    try:
        api = Api(plane.server, plane.admin_token, plane.ca_file)
        install_crds(api, "newest")
        install_ready_controllers(api)
        namespaces = [f"bench-{i:02d}" for i in range(args.namespaces)]
        for namespace in namespaces:
            api.ensure_namespace(namespace)
        objects = [(namespaces[i % len(namespaces)], f"app-{i:03d}") for i in range(args.objects)]
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda o: api.create(manifests.kustomization(o[1], o[0])), objects))
        env = {"KUBECONFIG": str(plane.kubeconfig)}
        _bulk(args, plane, objects, env)
        _one_object(args, api, namespaces, objects[0], env)
        _all_objects(args, api, namespaces, env)
    finally:
        plane.remove()
    return 0


if __name__ == "__main__":
    sys.exit(main())
