"""``phoebe build hr`` on a generated checkout: 50 HelmReleases from 3 charts served by a Helm HTTP
repository on 127.0.0.1 (tests/support/chartrepo.py: real ``helm package``/``helm repo index``),
each release with its own values, side by side in the same run with the floor: the same 50
``helm template`` calls run directly, two at a time, on the already downloaded charts.

- phoebe build hr, cold: phoebe's cache emptied before each run (charts fetched, everything rendered)
- phoebe build hr, warm: charts and renders cached, the checkout unchanged
- phoebe build hr, one release's values changed: only that release is rendered again

Goals (issue 15): warm at most 0.7 s; cold within 1.5x of the floor.

    python -m bench.build [--releases 50] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.common import Timing, byte_compile, print_table, time_command

GOAL_WARM_SECONDS = 0.7
GOAL_COLD_RATIO = 1.5
REPO_ROOT = Path(__file__).resolve().parent.parent
CHARTS = (("widgets", "widgets", "1.0.0"), ("app-template", "app-template", "3.7.3"), ("widgets", "gadgets", "2.1.0"))
NAMESPACES = ("default", "media", "network", "observability", "database")


def _release(index: int, repository: str) -> tuple[str, str, str, str, dict[str, object]]:
    _, chart, version = CHARTS[index % len(CHARTS)]
    namespace = NAMESPACES[index % len(NAMESPACES)]
    name = f"app-{index:02d}"
    values: dict[str, object] = {"message": f"hello from {name}", "replicas": 1 + index % 3}
    if chart == "app-template":
        values = {"controllers": {name: {"containers": {"app": {"image": {"tag": f"1.{index}.0"}}}}}}
    return name, namespace, chart, version, values


def _checkout(root: Path, url: str, releases: int) -> list[tuple[str, str, str, str, dict[str, object]]]:
    made = [_release(i, url) for i in range(releases)]
    files = {
        "kubernetes/flux/cluster.yaml": (
            "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata:\n  name: flux-system\n"
            "  namespace: flux-system\nspec:\n  interval: 1h\n  url: https://example.invalid/home-ops\n"
            "  ref:\n    branch: main\n---\n"
            "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: apps\n"
            "  namespace: flux-system\nspec:\n  interval: 1h\n  path: ./apps\n  prune: true\n"
            "  sourceRef:\n    kind: GitRepository\n    name: flux-system\n"
        ),
        "apps/repository.yaml": (
            "apiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\nmetadata:\n  name: charts\n"
            f"  namespace: flux-system\nspec:\n  interval: 1h\n  url: {url}\n"
        ),
    }
    resources = ["repository.yaml"]
    for name, namespace, chart, version, values in made:
        files[f"apps/{name}.yaml"] = json.dumps(
            {
                "apiVersion": "helm.toolkit.fluxcd.io/v2",
                "kind": "HelmRelease",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {
                    "interval": "1h",
                    "chart": {
                        "spec": {
                            "chart": chart,
                            "version": version,
                            "sourceRef": {"kind": "HelmRepository", "name": "charts", "namespace": "flux-system"},
                        }
                    },
                    "values": values,
                },
            }
        )
        resources.append(f"{name}.yaml")
    files["apps/kustomization.yaml"] = json.dumps(
        {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": resources}
    )
    for relative, text in files.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.invalid"]
    subprocess.run([*git, "init", "-q", "-b", "main"], cwd=root, check=True)
    subprocess.run([*git, "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "bench"], cwd=root, check=True)
    return made


def _floor(
    helm: Path, packages: dict[str, Path], made: Sequence[tuple[str, str, str, str, dict[str, object]]], runs: int
) -> Timing:
    """The same helm template calls, run directly two at a time, on unpacked local charts."""

    def one(release: tuple[str, str, str, str, dict[str, object]]) -> None:
        name, namespace, chart, _, values = release
        subprocess.run(
            [
                str(helm),
                "template",
                name,
                str(packages[chart]),
                "--namespace",
                namespace,
                "--values",
                "-",
                "--include-crds",
                "--skip-tests",
            ],
            input=json.dumps(values).encode(),
            stdout=subprocess.DEVNULL,
            check=True,
        )

    samples = []
    for index in range(runs + 1):
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(one, made))
        if index:
            samples.append(time.perf_counter() - started)
    return Timing(f"helm template x{len(made)}, 2 at a time (the floor)", tuple(samples))


def _phoebe_timing(label: str, argv: list[str], env: dict[str, str], runs: int, before: object = None) -> Timing:
    samples = []
    for index in range(runs + 1):
        if callable(before):
            before()
        started = time.perf_counter()
        done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, check=False)
        elapsed = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"{label}: exit {done.returncode}: {done.stderr.decode()[-800:]}")
        if index:
            samples.append(elapsed)
    return Timing(label, tuple(samples))


def publish_charts(work: Path) -> dict[str, Path]:
    """The bench's charts packaged into ``work/served/charts`` (a Helm repository's directory) and
    unpacked under ``work/unpacked`` (for the direct ``helm template`` reference), by name."""
    from tests.support.chartrepo import CHARTS_DIR, package_chart

    served = work / "served" / "charts"
    unpacked: dict[str, Path] = {}
    for source, name, version in CHARTS:
        package = package_chart(CHARTS_DIR / source, served, name=name, version=version)
        target = work / "unpacked"
        target.mkdir(exist_ok=True)
        subprocess.run(["tar", "-xzf", str(package), "-C", str(target)], check=True)
        unpacked[name] = target / name
    return unpacked


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.build")
    parser.add_argument("--releases", type=int, default=50)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)

    sys.path.insert(0, str(REPO_ROOT))
    from tests.cluster.build import ensure_program, kustomize_program
    from tests.support.chartrepo import ChartRepository, helm_binary

    helm = helm_binary()
    kustomize = ensure_program(kustomize_program())
    byte_compile(REPO_ROOT)
    with tempfile.TemporaryDirectory(prefix="phoebe-bench-build-") as scratch:
        work = Path(scratch)
        unpacked = publish_charts(work)
        with ChartRepository(work / "served") as server:
            root = work / "checkout"
            made = _checkout(root, f"{server.base_url}/charts", args.releases)
            cache = work / "xdg-cache"
            env = dict(os.environ, XDG_CACHE_HOME=str(cache), PHOEBE_HELM=str(helm), PHOEBE_KUSTOMIZE=str(kustomize))
            # the goals are for renders from the checkout and the chart caches: no cluster is asked
            # (a kubeconfig on the machine would add its /version and discovery to every run)
            command = [sys.executable, "-m", "phoebe_cli", "build", "hr", "--repo", str(root), "--no-cluster-read"]

            floor = _floor(helm, unpacked, made, args.runs)
            cold = _phoebe_timing(
                f"phoebe build hr ({len(made)} releases), cold",
                command,
                env,
                args.runs,
                before=lambda: shutil.rmtree(cache, ignore_errors=True),
            )
            warm = time_command(f"phoebe build hr ({len(made)} releases), warm", command, runs=args.runs * 2, env=env)
            edited = root / "apps" / f"{made[0][0]}.yaml"
            original = edited.read_text()
            counter = iter(range(1_000_000))

            def change_one() -> None:
                edited.write_text(original.replace("hello from", f"hello ({next(counter)}) from"))

            one_changed = _phoebe_timing(
                "phoebe build hr, one release's values changed", command, env, args.runs, before=change_one
            )
            edited.write_text(original)
    print_table(f"build: {len(made)} HelmReleases from {len(CHARTS)} charts", [floor, cold, warm, one_changed], floor)
    ratio = cold.median / floor.median
    cold_verdict = "met" if ratio <= GOAL_COLD_RATIO else "MISSED"
    warm_verdict = "met" if warm.median <= GOAL_WARM_SECONDS else "MISSED"
    print(
        f"\ncold: {ratio:.2f}x the floor (goal <= {GOAL_COLD_RATIO}x): {cold_verdict}; "
        f"warm: {warm.median:.3f}s (goal <= {GOAL_WARM_SECONDS}s): {warm_verdict}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
