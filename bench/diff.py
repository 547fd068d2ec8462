"""phoebe diff --base/--head (offline, ref against ref) on the generated GitOps repository of
bench/repo.py (10 namespaces, N apps), side by side in the same run with the floor.

The repository is committed, then a second commit changes one app (a HelmRelease value).

- floor: `kustomize build` of every Flux Kustomization path, two at a time, for BOTH refs (the
  floor of rendering twice; the base ref's tree is extracted before timing)
- phoebe diff --base HEAD~1 --head HEAD, cold: the build cache emptied before each run
- phoebe diff --base HEAD~1 --head HEAD, nothing changed: the cache filled by the previous run
- phoebe diff --base HEAD~1 --head HEAD, one app changed since the last run: before each run a new
  commit changes one more app, so the cache holds the base's builds (the previous run's head)
  and only that app's Kustomization is built again
and the number of kustomize runs phoebe makes (`-v` prints "N kustomize runs" on stderr), cold and
with one app changed. phoebe diff's summary of the first change is printed first (1 changed
expected).

Goal: cold within 3x of the floor; one app changed under 1 s.

    python -m bench.diff [--apps 100] [--runs 5]
"""

from __future__ import annotations

import argparse
import io
import itertools
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from bench.common import Timing, print_table
from bench.repo import _apps, _floor, _phoebe, _runner, _timed, _verdict, generate

GOAL_COLD_RATIO = 3.0
GOAL_ONE_APP_SECONDS = 1.0
IDENTITY = ["-c", "user.name=bench", "-c", "user.email=bench@example.invalid"]


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", *IDENTITY, *args], cwd=root, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def _extract(root: Path, ref: str, target: Path) -> None:
    """The tree of ``ref`` in ``target`` (git archive: no worktree, nothing written to the repository)."""
    archive = subprocess.run(["git", "archive", ref], cwd=root, check=True, capture_output=True).stdout
    target.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")


def _kustomize_runs(argv: list[str], env: dict[str, str]) -> str:
    done = subprocess.run([*argv, "-v"], capture_output=True, text=True, env=env, check=False)
    found = re.search(r"(\d+) kustomize runs", done.stderr)
    return found.group(1) if found else f"? (exit {done.returncode}: {done.stderr.strip()[-200:]})"


def _summary(argv: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    text = lines[-1] if lines else "?"
    if done.returncode not in (0, 1) or done.stderr.strip():
        text += f" (exit {done.returncode}; stderr: {done.stderr.strip()[-300:]})"
    return text


def _measure(args: argparse.Namespace, kustomize: Path, scratch: Path) -> None:
    root = scratch / "home-ops"
    root.mkdir()
    cache = scratch / "cache"
    paths = generate(root, args.apps)  # committed: the base
    apps = _apps(args.apps)
    edits = itertools.count()

    def change_app_and_commit(index: int) -> None:
        """Append one value to an app's HelmRelease (spec.values.benchEdit) and commit it."""
        release = root / apps[index % len(apps)].directory / "app" / "helmrelease.yaml"
        with release.open("a") as handle:
            handle.write(f'    benchEdit: "{next(edits)}"\n')
        _git(root, "commit", "-q", "-am", f"bench: change {apps[index % len(apps)].name}")

    change_app_and_commit(len(apps) - 1)  # the head: one app changed
    env = dict(os.environ, PHOEBE_KUSTOMIZE=str(kustomize), XDG_CACHE_HOME=str(cache))
    # the kustomize side only: the generated charts are not served here (bench/diff_render.py renders)
    diff = [*_phoebe(), "diff", "--repo", str(root), "--base", "HEAD~1", "--head", "HEAD", "--no-render"]

    def empty_cache() -> None:
        shutil.rmtree(cache, ignore_errors=True)
        cache.mkdir()

    # the floor builds both refs' trees, extracted once, before timing
    trees = scratch / "trees"
    _extract(root, "HEAD~1", trees / "base")
    _extract(root, "HEAD", trees / "head")
    both = [str(trees / side / path) for side in ("base", "head") for path in paths]
    floor = _timed(
        f"floor: kustomize build x{len(both)} (both refs), 2 in parallel",
        _floor(kustomize, Path("/"), both),
        args.runs,
    )

    empty_cache()
    print(f"\nphoebe diff on the generated repository ({args.apps} apps, one changed): {_summary(diff, env)}")
    empty_cache()
    runs = {"cold": _kustomize_runs(diff, env)}

    run_diff = _runner(diff, env)
    cold = _timed("phoebe diff --base HEAD~1 --head HEAD, cold", run_diff, args.runs, before=empty_cache)
    unchanged = _timed("phoebe diff, nothing changed since the last run", run_diff, args.runs)
    counter = itertools.count()

    def one_more_app() -> None:
        change_app_and_commit(next(counter))

    one_app = _timed("phoebe diff, one app changed since the last run", run_diff, args.runs, before=one_more_app)
    one_more_app()
    runs["one app changed"] = _kustomize_runs(diff, env)

    timings: list[Timing] = [floor, cold, unchanged, one_app]
    print_table(
        f"phoebe diff, ref against ref, {args.apps} apps, {len(paths)} Flux Kustomizations per ref",
        timings,
        reference=floor,
    )
    print(
        f"\nkustomize runs by phoebe diff ({len(paths)} Flux Kustomizations per ref): "
        + ", ".join(f"{label} {n}" for label, n in runs.items())
    )
    ratio = cold.median / floor.median
    print(
        f"goal: cold within {GOAL_COLD_RATIO:.0f}x of the floor: {ratio:.2f}x ({_verdict(ratio <= GOAL_COLD_RATIO)}); "
        f"one app changed under {GOAL_ONE_APP_SECONDS:.0f} s: {one_app.median:.2f} s "
        f"({_verdict(one_app.median < GOAL_ONE_APP_SECONDS)})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--apps", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)

    from tests.cluster.build import ensure_program, kustomize_program

    kustomize = ensure_program(kustomize_program())
    with tempfile.TemporaryDirectory(prefix="phoebe-bench-diff-") as scratch:
        _measure(args, kustomize, Path(scratch))
    # the rendered side: HelmReleases re-rendered only where their inputs changed
    from bench import diff_render

    return diff_render.main(["--runs", str(args.runs)])


if __name__ == "__main__":
    sys.exit(main())
