"""`just demo`: a control plane with the sample GitOps repository, and phoebe run against it.

Builds (first time only) or reuses kube-apiserver and etcd, starts them detached, loads the
sample repository with its scenario statuses, then runs phoebe. The control plane is left
running for you to try phoebe yourself; `just cluster-down` stops it.
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
    code = cluster_main(["up", "--sample"])
    if code != 0:
        return code
    kubeconfig = default_dir() / "kubeconfig"
    env = dict(os.environ, KUBECONFIG=str(kubeconfig))
    run_phoebe("check", env=env)
    print(
        "\nThe control plane is still running, with the sample repository loaded "
        "(rook-ceph/rook-ceph-cluster failing, media/sonarr blocked behind it, media/plex suspended).\n"
        f"Try it yourself:\n  export KUBECONFIG={kubeconfig}\n  .venv/bin/phoebe check\n"
        "Stop it with: just cluster-down",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
