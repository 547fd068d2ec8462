"""Timing helpers for the benchmarks: whole-process wall times, medians, a printed table."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Timing:
    label: str
    samples: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def best(self) -> float:
        return min(self.samples)

    @property
    def p90(self) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]


def time_command(
    label: str,
    argv: Sequence[str],
    *,
    runs: int = 20,
    warmup: int = 2,
    env: dict[str, str] | None = None,
    ok_codes: tuple[int, ...] = (0,),
) -> Timing:
    """Wall time of a whole process, ``runs`` times after ``warmup`` untimed runs."""
    merged = dict(os.environ, **(env or {}))
    samples = []
    for index in range(warmup + runs):
        started = time.perf_counter()
        done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=merged, check=False)
        elapsed = time.perf_counter() - started
        if done.returncode not in ok_codes:
            raise RuntimeError(f"{label}: exit {done.returncode}: {done.stderr.decode()[-500:]}")
        if index >= warmup:
            samples.append(elapsed)
    return Timing(label, tuple(samples))


def print_table(title: str, timings: Sequence[Timing], reference: Timing | None = None) -> None:
    print(f"\n## {title}")
    print(f"{'command':<58} {'median':>9} {'best':>9} {'p90':>9}" + ("   ratio" if reference else ""))
    for timing in timings:
        ratio = f"   {timing.median / reference.median:5.2f}x" if reference else ""
        print(
            f"{timing.label:<58} {timing.median * 1000:7.1f}ms {timing.best * 1000:7.1f}ms "
            f"{timing.p90 * 1000:7.1f}ms{ratio}"
        )


def which(name: str) -> str | None:
    return shutil.which(name)


def byte_compile(tree: Path) -> None:
    """Write the .pyc files of ``tree``'s phoebe_cli, as an install does: timings then measure
    phoebe, not the compiler (PYTHONDONTWRITEBYTECODE would otherwise recompile on every run)."""
    import compileall

    compileall.compile_dir(str(tree / "phoebe_cli"), quiet=1)
