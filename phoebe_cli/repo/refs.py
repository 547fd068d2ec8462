"""A Git ref of the checkout as a directory, for reading the repository as it was (or will be)
at that ref — without touching the checkout: no worktree registered, no index written, nothing
checked out in place.

The ref's tree is read into a private index file (``GIT_INDEX_FILE``) and checked out from it,
so Git's own filters (LFS smudge, eol) apply as in a clone. Trees are kept by commit in the user
cache directory (a commit's tree never changes): the next run reads a kept one as it is, and a
new commit starts from the newest kept tree (hard links) with only the files that differ written.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
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


TREES_KEPT = 4
COMPLETE = ".phoebe-complete"


def trees_dir() -> Path:
    from phoebe_cli.repo.cache import cache_dir

    return cache_dir().parent / "trees"


@contextmanager
def checked_out(root: Path, ref: ResolvedRef, *, use_cache: bool = True) -> Iterator[Path]:
    """The tree of ``ref`` as a directory (not to be written to)."""
    if not use_cache:
        scratch = Path(tempfile.mkdtemp(prefix="phoebe-ref-"))
        try:
            _check_out(root, ref, scratch / "tree", scratch / "index", ())
            yield scratch / "tree"
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return
    yield _kept_tree(root, ref)


def _check_out(root: Path, ref: ResolvedRef, tree: Path, index: Path, paths: tuple[str, ...]) -> None:
    """Write ``ref``'s files (all, or just ``paths``) under ``tree``."""
    env = dict(os.environ, GIT_INDEX_FILE=str(index))
    done = _git(root, "read-tree", ref.commit, env=env)
    if done.returncode == 0:
        for start in range(0, max(len(paths), 1), 500):
            chunk = paths[start : start + 500]
            selection = ("--", *chunk) if paths else ("--all",)
            done = _git(root, "checkout-index", "--force", f"--prefix={tree}/", *selection, env=env)
            if done.returncode != 0:
                break
    if done.returncode != 0:
        message = (done.stderr.strip().splitlines() or ["failed"])[-1]
        raise UsageError(f"cannot read {ref.label}: git: {message}")
    tree.mkdir(parents=True, exist_ok=True)  # an empty tree checks out nothing


def _kept_tree(root: Path, ref: ResolvedRef) -> Path:
    trees = trees_dir()
    target = trees / ref.commit
    if (target / COMPLETE).exists():
        os.utime(target / COMPLETE)  # recently used: evicted last
        return target / "tree"
    trees.mkdir(parents=True, exist_ok=True, mode=0o700)
    scratch = Path(tempfile.mkdtemp(prefix=f".{ref.commit[:12]}-", dir=trees))
    try:
        nearest = _newest_kept(trees)
        changed = _changed_paths(root, nearest, ref) if nearest is not None else None
        if nearest is not None and changed is not None:
            _link_tree(trees / nearest / "tree", scratch / "tree")
            for _, path in changed:
                (scratch / "tree" / path).unlink(missing_ok=True)  # never write through a link
            written = tuple(path for status, path in changed if status != "D")
            if written:
                _check_out(root, ref, scratch / "tree", scratch / "index", written)
        else:
            _check_out(root, ref, scratch / "tree", scratch / "index", ())
        (scratch / "index").unlink(missing_ok=True)
        (scratch / COMPLETE).write_text(ref.commit)
        try:
            scratch.rename(target)
        except OSError:  # another run kept it meanwhile
            shutil.rmtree(scratch, ignore_errors=True)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    _evict(trees, keep=ref.commit)
    return target / "tree"


def _newest_kept(trees: Path) -> str | None:
    kept = [(p.stat().st_mtime, p.parent.name) for p in trees.glob(f"*/{COMPLETE}")]
    return max(kept)[1] if kept else None


def _changed_paths(root: Path, commit: str, ref: ResolvedRef) -> list[tuple[str, str]] | None:
    """(status, path) of what differs between a kept commit and ``ref``; None: cannot tell (a
    kept tree of another repository), check out everything."""
    done = _git(root, "diff", "--name-status", "--no-renames", "-z", commit, ref.commit)
    if done.returncode != 0:
        return None
    fields = done.stdout.split("\0")
    return [(fields[i][:1], fields[i + 1]) for i in range(0, len(fields) - 1, 2) if fields[i]]


def _link_tree(source: Path, target: Path) -> None:
    for directory, _, files in os.walk(source):
        relative = Path(directory).relative_to(source)
        (target / relative).mkdir(parents=True, exist_ok=True)
        for name in files:
            try:
                os.link(Path(directory) / name, target / relative / name)
            except OSError:
                shutil.copy2(Path(directory) / name, target / relative / name)


def _evict(trees: Path, keep: str) -> None:
    kept = sorted(((p.stat().st_mtime, p.parent) for p in trees.glob(f"*/{COMPLETE}")), reverse=True)
    for _, directory in kept[TREES_KEPT:]:
        if directory.name != keep:
            shutil.rmtree(directory, ignore_errors=True)
    cutoff = time.time() - 3600  # scratch directories of runs that died
    for stale in trees.glob(".*-*"):
        if stale.is_dir() and stale.stat().st_mtime < cutoff:
            shutil.rmtree(stale, ignore_errors=True)
