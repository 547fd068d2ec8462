"""source-controller's artifact filter as an oracle: the Go program in tests/cluster/go/sourceignore-oracle.

Built like the control plane's binaries (``ensure_program``: cached under ``$XDG_CACHE_HOME/phoebe/bin``,
``GOTOOLCHAIN=local``, ``GOFLAGS=-mod=mod``). It loads patterns with the real
github.com/fluxcd/pkg/sourceignore v0.18.0 exactly as GitRepositoryReconciler.reconcileArtifact does
(source-controller v1.9.6), and walks the directory with a line-for-line copy of
fluxcd/pkg/artifact/storage's SourceIgnoreFilter and Storage.Archive (that module's zip is not served
by the proxy; see main.go). JSON lines in, JSON lines out.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tests.cluster.build import GoProgram, ensure_program
from tests.cluster.build import oracle_program as build_oracle

MODULE_DIR = "sourceignore-oracle"


def oracle_program() -> GoProgram:
    return build_oracle(MODULE_DIR, "github.com/fluxcd/pkg/sourceignore")


def ensure_oracle() -> Path:
    return ensure_program(oracle_program())


@dataclass(frozen=True)
class Request:
    directory: str  # as source-controller gets it: the checkout's path (absolute, or relative to cwd)
    ignore: str | None = None  # GitRepository.spec.ignore; None when unset
    archive: bool = False  # also answer the tar.gz digest


@dataclass(frozen=True)
class Artifact:
    files: list[str]  # regular files, in archive order, relative to the directory
    digest: str | None = None
    error: str | None = None


def ask(binary: Path, requests: Iterable[Request], *, cwd: Path | None = None) -> list[Artifact]:
    """One answer per request, in order, from one process."""
    pending = [
        json.dumps({"dir": r.directory, "ignore": r.ignore, "archive": r.archive}, ensure_ascii=False) + "\n"
        for r in requests
    ]
    if not pending:
        return []
    result = subprocess.run(
        [str(binary)], input="".join(pending), capture_output=True, text=True, check=True, encoding="utf-8", cwd=cwd
    )
    lines = result.stdout.splitlines()
    if len(lines) != len(pending):
        raise RuntimeError(f"the oracle answered {len(lines)} of {len(pending)} requests: {result.stderr}")
    answers = []
    for line in lines:
        reply = json.loads(line)
        files = [os.fsdecode(base64.b64decode(name)) for name in reply.get("files") or []]
        answers.append(Artifact(files, reply.get("digest"), reply.get("error")))
    return answers
