"""``phoebe diff --base`` with rendered HelmReleases (changed-only): the checkout of bench/build.py
(50 HelmReleases from 3 charts served by a Helm HTTP repository on 127.0.0.1), one release's
values changed in the head commit. Only that release is rendered (at both refs); side by side in
the same run with the reference: the same two ``helm template`` calls run directly.

- phoebe diff --base HEAD~1 --head HEAD, warm: trees, builds, charts and renders cached
- phoebe diff, one release's values changed again before each run (its renders are new)

Goal (issue 15): a diff --base where one HelmRelease's values changed re-renders only that
release, in at most 1 s warm.

    python -m bench.diff_render [--releases 50] [--runs 5]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.build import REPO_ROOT, _checkout, publish_charts
from bench.common import Timing, byte_compile, print_table

GOAL_WARM_SECONDS = 1.0
GIT = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.invalid"]


def _reference(helm: Path, chart: Path, name: str, namespace: str, values: Sequence[object], runs: int) -> Timing:
    """The changed release's two renders (base and head values), helm template run directly."""
    samples = []
    for index in range(runs + 1):
        started = time.perf_counter()
        for side in values:
            subprocess.run(
                [str(helm), "template", name, str(chart), "--namespace", namespace, "--values", "-", "--skip-tests"],
                input=json.dumps(side).encode(),
                stdout=subprocess.DEVNULL,
                check=True,
            )
        if index:
            samples.append(time.perf_counter() - started)
    return Timing("helm template x2 of the changed release (reference)", tuple(samples))


def _renders(argv: list[str], env: dict[str, str]) -> str:
    done = subprocess.run([*argv, "-v"], capture_output=True, text=True, env=env, check=False)
    found = re.search(r"(\d+) HelmRelease renders", done.stderr)
    return found.group(1) if found else f"? (exit {done.returncode}: {done.stderr.strip()[-300:]})"


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.diff_render")
    parser.add_argument("--releases", type=int, default=50)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)

    sys.path.insert(0, str(REPO_ROOT))
    from tests.cluster.build import ensure_program, kustomize_program
    from tests.support.chartrepo import ChartRepository, helm_binary

    helm = helm_binary()
    kustomize = ensure_program(kustomize_program())
    byte_compile(REPO_ROOT)
    with tempfile.TemporaryDirectory(prefix="phoebe-bench-diff-render-") as scratch:
        work = Path(scratch)
        unpacked = publish_charts(work)
        with ChartRepository(work / "served") as server:
            root = work / "checkout"
            made = _checkout(root, f"{server.base_url}/charts", args.releases)
            name, namespace, chart, _, values = made[0]
            edited = root / "apps" / f"{name}.yaml"
            original = edited.read_text()
            counter = itertools.count()

            def change_and_commit() -> None:
                edited.write_text(original.replace("hello from", f"hello ({next(counter)}) from"))
                subprocess.run([*GIT, "commit", "-q", "-am", "bench: one release's values"], cwd=root, check=True)

            change_and_commit()
            env = dict(
                os.environ,
                XDG_CACHE_HOME=str(work / "xdg-cache"),
                PHOEBE_HELM=str(helm),
                PHOEBE_KUSTOMIZE=str(kustomize),
            )
            command = [
                *(sys.executable, "-m", "phoebe_cli", "diff", "--repo", str(root)),
                *("--base", "HEAD~1", "--head", "HEAD"),
            ]
            ok = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
            if ok.returncode != 1 or ok.stderr.strip():
                raise RuntimeError(f"phoebe diff: exit {ok.returncode}: {ok.stderr.strip()[-800:]}")
            renders = _renders(command, env)
            changed_values = [values, {**values, "message": f"hello (0) from {name}"}]
            reference = _reference(helm, unpacked[chart], name, namespace, changed_values, args.runs)
            warm = _timed("phoebe diff --base, one release changed, warm", command, env, args.runs, None)
            fresh = _timed(
                "phoebe diff --base, a new change before each run", command, env, args.runs, before=change_and_commit
            )
    print_table(
        f"diff --base with rendered HelmReleases: {len(made)} releases, one changed",
        [reference, warm, fresh],
        reference,
    )
    verdict = "met" if warm.median <= GOAL_WARM_SECONDS else "MISSED"
    print(
        f"\nHelmRelease renders per run (changed-only): {renders} of {2 * len(made)}; "
        f"warm: {warm.median:.3f}s (goal <= {GOAL_WARM_SECONDS}s): {verdict}"
    )
    return 0


def _timed(label: str, argv: list[str], env: dict[str, str], runs: int, before: object) -> Timing:
    """Whole-process wall times; phoebe diff exits 1 (there is a difference), anything else fails."""
    samples = []
    for index in range(runs + 1):
        if callable(before):
            before()
        started = time.perf_counter()
        done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, check=False)
        elapsed = time.perf_counter() - started
        if done.returncode != 1:
            raise RuntimeError(f"{label}: exit {done.returncode}: {done.stderr.decode()[-800:]}")
        if index:
            samples.append(elapsed)
    return Timing(label, tuple(samples))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
