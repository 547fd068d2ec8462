"""A Git ref of the checkout as a directory, for reading the repository as it was (or will be)
at that ref — without touching the checkout: no worktree registered, no index written, nothing
checked out in place.

The ref's tree is read into a temporary index file (``GIT_INDEX_FILE``) and checked out from it
into a temporary directory, so Git's own filters (LFS smudge, eol) apply as in a clone.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from phoebe_cli.errors import ToolMissing, UsageError


@dataclass(frozen=True)
class ResolvedRef:
    name: str  # as the user gave it ("main", "HEAD~1", "origin/main")
    commit: str  # the full SHA

    @property
    def label(self) -> str:
        return f"{self.name} ({self.commit[:8]})"


def _git(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, check=False, env=env, timeout=300
        )
    except FileNotFoundError as exc:
        raise ToolMissing("git is needed to read another ref of the repository") from exc


def resolve(root: Path, ref: str) -> ResolvedRef:
    """The commit a ref names, or a usage error naming the ref."""
    done = _git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if done.returncode != 0 or not done.stdout.strip():
        raise UsageError(f"{ref!r} is not a commit in {root} (a branch, tag or SHA, e.g. origin/main)")
    return ResolvedRef(ref, done.stdout.strip())


def merge_base(root: Path, base: ResolvedRef, head: ResolvedRef) -> ResolvedRef:
    done = _git(root, "merge-base", base.commit, head.commit)
    if done.returncode != 0 or not done.stdout.strip():
        return base
    return ResolvedRef(f"merge-base of {base.name}", done.stdout.strip())


@contextmanager
def checked_out(root: Path, ref: ResolvedRef) -> Iterator[Path]:
    """The tree of ``ref`` in a temporary directory, removed afterwards."""
    scratch = Path(tempfile.mkdtemp(prefix="phoebe-ref-"))
    try:
        tree = scratch / "tree"
        env = dict(os.environ, GIT_INDEX_FILE=str(scratch / "index"))
        for args in (("read-tree", ref.commit), ("checkout-index", "--all", "--force", f"--prefix={tree}/")):
            done = _git(root, *args, env=env)
            if done.returncode != 0:
                message = (done.stderr.strip().splitlines() or ["failed"])[-1]
                raise UsageError(f"cannot read {ref.label}: git {args[0]}: {message}")
        tree.mkdir(exist_ok=True)  # an empty tree checks out nothing
        yield tree
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
