"""All benchmarks, each printing its figures: `just bench` (= python -m bench).

Some start their own control plane (built or reused like the tests' one) and stop it after."""

from __future__ import annotations

import sys

from bench import build, controlplane, diff, explain, logs, repo, sources, startup, status, sync


def main() -> int:
    startup.main([])
    controlplane.main([])
    sync.main([])
    status.main([])
    logs.main([])
    repo.main([])
    diff.main([])
    build.main([])
    explain.main([])
    sources.main([])
    return 0


if __name__ == "__main__":
    sys.exit(main())
