"""Startup: whole-process time of `phoebe --help` (goal: median <= 100 ms), beside the floor
(`python -c pass`) and `kubectl --help`, plus `phoebe check` on a running cluster.

`phoebe --help` is timed twice: as it runs after the first time (the help Typer printed is
remembered, so Typer is not imported) and with an empty cache on every run (Typer renders it).

    python -m bench.startup [--runs N]
"""

from __future__ import annotations

import argparse
import os
import sys

from bench.common import Timing, print_table, time_command, which

GOAL_HELP_MS = 100.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args(argv)

    phoebe = [sys.executable, "-m", "phoebe_cli"]
    script = os.path.join(os.path.dirname(sys.executable), "phoebe")
    if os.path.exists(script):
        phoebe = [script]

    timings: list[Timing] = [
        time_command("python -c pass (interpreter floor)", [sys.executable, "-c", "pass"], runs=args.runs),
        time_command("phoebe --version", [*phoebe, "--version"], runs=args.runs),
        time_command("phoebe --help", [*phoebe, "--help"], runs=args.runs),
        time_command(
            "phoebe --help, nothing remembered (Typer renders it)",
            [*phoebe, "--help"],
            runs=args.runs,
            env={"XDG_CACHE_HOME": "/dev/null/nowhere"},  # nothing can be kept or read there
        ),
        time_command("phoebe check --help", [*phoebe, "check", "--help"], runs=args.runs),
    ]
    kubectl = which("kubectl")
    if kubectl:
        timings.append(time_command("kubectl --help", [kubectl, "--help"], runs=args.runs))
    print_table("startup (whole process)", timings)

    help_timing = next(t for t in timings if t.label == "phoebe --help")
    verdict = "met" if help_timing.median * 1000 <= GOAL_HELP_MS else "MISSED"
    print(f"goal: phoebe --help median <= {GOAL_HELP_MS:.0f} ms: {help_timing.median * 1000:.1f} ms ({verdict})")

    kubeconfig = os.environ.get("KUBECONFIG")
    if kubeconfig:
        cluster = [
            time_command(
                "phoebe check -o json", [*phoebe, "check", "-o", "json"], runs=max(5, args.runs // 3), ok_codes=(0, 1)
            )
        ]
        if kubectl:
            cluster.append(
                time_command("kubectl version -o json", [kubectl, "version", "-o", "json"], runs=max(5, args.runs // 3))
            )
            cluster.append(
                time_command("kubectl get crds (reference)", [kubectl, "get", "crds"], runs=max(5, args.runs // 3))
            )
        print_table(f"against the cluster in $KUBECONFIG ({kubeconfig})", cluster)
    return 0


if __name__ == "__main__":
    sys.exit(main())
