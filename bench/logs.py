"""`phoebe logs` benchmarks.

1. Parse, filter and render 100,000 Flux log lines in-process (lines per second), beside
   `jq -c .` over the same lines. Goal: at least 100,000 lines/s parsed and filtered.
2. Whole process: `phoebe logs --tail 1000` for three controller Pods on a kwok node through the
   real API server, beside `kubectl logs --tail 1000` for the same Pods in the same run.
   Goal: within 3x of kubectl while parsing, merging and colouring.

    python -m bench.logs [--lines 100000] [--runs 8]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.common import print_table, time_command

GOAL_LINES_PER_SECOND = 100_000
GOAL_RATIO = 3.0
CONTROLLERS = ("kustomize-controller", "helm-controller", "source-controller")


def sample_lines(count: int, start: datetime, seed: int = 7) -> list[str]:
    """Realistic controller lines: mostly info, some errors with multi-line messages, some debug
    and a few lines that are not JSON."""
    rng = random.Random(seed)
    kinds = [("Kustomization", "kustomization"), ("HelmRelease", "helmrelease"), ("GitRepository", "gitrepository")]
    lines = []
    for i in range(count):
        when = (start + timedelta(milliseconds=37 * i)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        if i % 500 == 499:
            lines.append("I1126 10:00:00.000000       1 leaderelection.go:250] attempting to acquire leader lease")
            continue
        kind, controller = kinds[i % 3]
        namespace, name = f"ns-{i % 20:02d}", f"app-{i % 200:03d}"
        roll = rng.random()
        level = "error" if roll < 0.05 else "debug" if roll < 0.25 else "info"
        record = {
            "level": level,
            "ts": when,
            "msg": "Reconciliation finished in 1.2s, next run in 10m0s" if level != "error" else "Reconciler error",
            "controller": controller,
            "controllerGroup": "kustomize.toolkit.fluxcd.io",
            "controllerKind": kind,
            kind: {"name": name, "namespace": namespace},
            "namespace": namespace,
            "name": name,
            "reconcileID": f"{rng.getrandbits(64):016x}-5b2a-4f7e-9a3d-0c1e2f3a4b5c",
        }
        if level == "error":
            record["error"] = "kustomize build failed: accumulating resources:\nmissing resource ./app"
        lines.append(json.dumps(record))
    return lines


def in_process(lines: list[str]) -> tuple[float, float, int]:
    """(parse+filter lines/s, render lines/s, lines kept)."""
    from phoebe_cli.flux.logs import LogFilter, StreamParser
    from phoebe_cli.render.logs import TextLayout

    keep = LogFilter()
    started = time.perf_counter()
    parser = StreamParser("kustomize-controller", "pod")
    kept = [line for text in lines if (line := parser.kept(text, "", keep)) is not None]
    parse_rate = len(lines) / (time.perf_counter() - started)
    layout = TextLayout(list(CONTROLLERS))
    started = time.perf_counter()
    rendered = "\n".join(layout.plain(line) for line in kept)
    render_rate = len(kept) / (time.perf_counter() - started)
    assert rendered
    return parse_rate, render_rate, len(kept)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=8)
    args = parser.parse_args(argv)

    lines = sample_lines(args.lines, datetime(2026, 11, 26, 10, tzinfo=UTC))
    rates = [in_process(lines) for _ in range(3)]
    parse_rate = sorted(r[0] for r in rates)[1]
    render_rate = sorted(r[1] for r in rates)[1]
    print(f"\n## parse {args.lines:,} controller log lines (median of 3)")
    print(f"phoebe parse + filter (--level info)   {parse_rate:12,.0f} lines/s  ({rates[0][2]:,} kept)")
    print(f"phoebe render kept lines as text      {render_rate:12,.0f} lines/s")
    if shutil.which("jq"):
        path = Path(tempfile.mkdtemp()) / "lines.jsonl"
        path.write_text("\n".join(line for line in lines if line.startswith("{")) + "\n")
        started = time.perf_counter()
        with open(path) as source:
            subprocess.run(["jq", "-c", "."], stdin=source, stdout=subprocess.DEVNULL, check=True)
        jq_rate = args.lines / (time.perf_counter() - started)
        print(f"jq -c . (reference, whole process)    {jq_rate:12,.0f} lines/s")
    met = parse_rate >= GOAL_LINES_PER_SECOND
    print(
        f"goal: at least {GOAL_LINES_PER_SECOND:,} lines/s parsed and filtered: {parse_rate:,.0f} "
        f"({'met' if met else 'MISSED'})"
    )
    _whole_process(args)
    return 0


def _whole_process(args: argparse.Namespace) -> None:
    from tests.cluster.api import Api
    from tests.cluster.controlplane import ControlPlane, new_workdir
    from tests.cluster.kwok import KwokNode
    from tests.support import manifests

    plane = ControlPlane(new_workdir("phoebe-bench-logs-")).start()
    node = None
    try:
        api = Api(plane.server, plane.admin_token, plane.ca_file)
        node = KwokNode(plane, plane.workdir / "kwok").start()
        namespace = "flux-system"
        api.ensure_namespace(namespace)
        start = datetime.now(UTC) - timedelta(hours=1)
        pods = []
        for index, controller in enumerate(CONTROLLERS):
            api.apply(manifests.flux_controller_deployment(controller, namespace))
            pod = f"{controller}-6f7d8c9b5-{index:05d}"
            node.run_pod(namespace, pod, labels={"app": controller})
            with open(node.log_file(namespace, pod), "a") as handle:
                from tests.cluster.kwok import cri_line

                for i, line in enumerate(sample_lines(3000, start + timedelta(milliseconds=11 * index), seed=index)):
                    handle.write(cri_line(line, at=start + timedelta(milliseconds=37 * i + 11 * index)))
            pods.append(pod)
        env = {"KUBECONFIG": str(plane.kubeconfig)}
        script = Path(sys.executable).parent / "phoebe"
        phoebe = [str(script)] if script.exists() else [sys.executable, "-m", "phoebe_cli"]
        selector = f"app in ({','.join(CONTROLLERS)})"
        timings = [
            time_command(
                "phoebe logs --tail 1000 (3 Pods, merged)",
                [*phoebe, "logs", "--tail", "1000"],
                runs=args.runs,
                warmup=1,
                env=env,
            ),
            time_command(
                "phoebe logs --tail 1000 -o json",
                [*phoebe, "logs", "--tail", "1000", "-o", "json"],
                runs=args.runs,
                warmup=1,
                env=env,
            ),
            time_command(
                "kubectl logs --tail 1000 -l (same 3 Pods)",
                ["kubectl", "logs", "-n", namespace, "-l", selector, "--tail", "1000", "--prefix"],
                runs=args.runs,
                warmup=1,
                env=env,
            ),
        ]
        print_table("whole process, 3 controller Pods x 3000 lines on a kwok node", timings, reference=timings[2])
        ratio = timings[0].median / timings[2].median
        print(f"goal: within {GOAL_RATIO:.0f}x of kubectl: {ratio:.2f}x ({'met' if ratio <= GOAL_RATIO else 'MISSED'})")
    finally:
        if node is not None:
            node.stop()
        plane.remove()


if __name__ == "__main__":
    sys.exit(main())
