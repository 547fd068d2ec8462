"""`just demo`: real Flux reconciling the sample GitOps repository on a local control plane,
and phoebe run against it.

Builds (first time only) or reuses kube-apiserver, etcd, source-controller, kustomize-controller,
helm-controller, the distribution registry and kwok; starts them with a local Git server and Helm
repositories serving the sample (tests/cluster/__main__.py `up --flux`); waits until the sample
repository settles; then runs phoebe. The stack is left running for you to try phoebe yourself;
`just cluster-down` stops it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.cluster.__main__ import default_dir
from tests.cluster.__main__ import main as cluster_main


def banner(text: str) -> None:
    print(f"\n\033[1m$ {text}\033[0m" if sys.stdout.isatty() else f"\n$ {text}", flush=True)


def run_phoebe(*args: str, env: dict[str, str]) -> int:
    banner("phoebe " + " ".join(args))
    phoebe = Path(sys.executable).parent / "phoebe"
    return subprocess.run([str(phoebe), *args], env=env, check=False).returncode


def main() -> int:
    code = cluster_main(["up", "--flux"])
    if code != 0:
        return code
    kubeconfig = default_dir() / "kubeconfig"
    env = dict(os.environ, KUBECONFIG=str(kubeconfig))
    run_phoebe("check", env=env)
    run_phoebe("status", env=env)
    run_phoebe("sync", "ks", "-A", "--timeout", "2m", env=env)
    run_phoebe("sync", "hr", "echo", "-n", "default", "--force", env=env)
    run_phoebe("sync", "git", "flux-system", "--cascade", "--timeout", "3m", env=env)
    run_phoebe("status", "chart", "-A", env=env)
    run_phoebe("status", "--failed", "-o", "table", env=env)
    run_phoebe("events", "ks/rook-ceph/rook-ceph-cluster", "--warnings", env=env)
    run_phoebe("logs", "ks/rook-ceph/rook-ceph-cluster", "--level", "error", "--tail", "200", env=env)
    # The checkout Flux reads, offline, and beside the cluster (kustomize built with the controllers).
    # HelmReleases rendered with the helm built beside them.
    from tests.cluster.build import ensure_program, helm_program, kustomize_program

    checkout = default_dir() / "repo"
    env["PHOEBE_KUSTOMIZE"] = str(ensure_program(kustomize_program()))
    env["PHOEBE_HELM"] = str(ensure_program(helm_program()))
    run_phoebe("validate", str(checkout), env=env)
    run_phoebe("status", "--repo", str(checkout), "--compare", "-n", "media", env=env)
    run_phoebe("diff", "rook-ceph/rook-ceph-cluster", "--repo", str(checkout), env=env)
    run_phoebe("explain", "ks/media/sonarr", env=env)
    run_phoebe("status", "--failed", "-o", "mermaid", env=env)
    print(
        "\nReal source-controller, kustomize-controller and helm-controller are still running on the sample "
        f"repository, served from a local Git server (its work tree: {checkout}; commit there, then "
        "`git push origin HEAD:main` and `phoebe sync git flux-system --cascade`) "
        "(rook-ceph/rook-ceph-cluster fails, media/sonarr is blocked behind it, media/plex is suspended).\n"
        f"Try it yourself:\n  export KUBECONFIG={kubeconfig}\n"
        "  .venv/bin/phoebe status\n  .venv/bin/phoebe sync ks -A\n  .venv/bin/phoebe logs -f\n"
        f"  .venv/bin/phoebe status --repo {default_dir() / 'repo'} --compare\n"
        "Stop it with: just cluster-down",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
