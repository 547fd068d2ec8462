"""A Git ref of the checkout as a directory, for reading the repository as it was (or will be)
at that ref — without touching the checkout: no worktree registered, no index written, nothing
checked out in place.

The ref's tree is read into a private index file (``GIT_INDEX_FILE``) and checked out from it,
so Git's own filters (LFS smudge, eol) apply as in a clone. Trees are kept by commit in the user
cache directory (a commit's tree never changes): the next run reads a kept one as it is, and a
new commit starts from the newest kept tree (hard links) with only the files that differ written.

Kept trees are the user's only (directories 0700, files 0600) and hold a commit's symlinks as
symlinks: making a tree never follows one, so a commit cannot bring a file from outside the
repository into the cache (the repo model never follows them either: an artifact holds none).
Runs that share the cache never fail because of each other: a tree another run kept or evicted
meanwhile is checked out again, and when the cache cannot be used the ref is read into a
temporary directory.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import stat
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
        # umask 077: what git writes (a private index, a checked-out tree) is the user's only
        return subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, check=False, env=env, timeout=300, umask=0o077
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
LOCK = ".phoebe-lock"  # leased (a shared flock) by every run reading the tree


def trees_dir() -> Path:
    from phoebe_cli.repo.cache import cache_root

    return cache_root() / "trees"


@contextmanager
def checked_out(root: Path, ref: ResolvedRef, *, use_cache: bool = True) -> Iterator[Path]:
    """The tree of ``ref`` as a directory (not to be written to). A kept tree is leased while the
    context lasts: no other run evicts it meanwhile."""
    kept = None
    if use_cache:
        try:
            kept = _kept_tree(root, ref)
        except OSError:
            kept = None  # the cache cannot be used (not writable, full ...): a temporary tree
    if kept is not None:
        tree, lease = kept
        try:
            yield tree
        finally:
            os.close(lease)
        return
    scratch = Path(tempfile.mkdtemp(prefix="phoebe-ref-"))
    try:
        _check_out(root, ref, scratch / "tree", scratch / "index", ())
        yield scratch / "tree"
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


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
    tree.mkdir(parents=True, exist_ok=True, mode=0o700)  # an empty tree checks out nothing
    _private(tree, paths)


def _private(tree: Path, paths: tuple[str, ...]) -> None:
    """The files git wrote (``paths``, or all of them) as 0600: executables lose their x bit
    (nothing in a tree is run); symlinks are left as they are, never followed."""
    from phoebe_cli.repo.cache import FILE_MODE

    def narrow(path: str) -> None:
        try:
            status = os.lstat(path)
            if stat.S_ISREG(status.st_mode) and stat.S_IMODE(status.st_mode) != FILE_MODE:
                os.chmod(path, FILE_MODE)
        except OSError:
            pass

    if paths:
        for path in paths:
            narrow(os.path.join(tree, path))
        return
    for directory, _, files in os.walk(tree):
        for name in files:
            narrow(os.path.join(directory, name))


def _kept_tree(root: Path, ref: ResolvedRef) -> tuple[Path, int]:
    """The kept tree of ``ref`` (made when there is none) and a lease on it (a descriptor holding
    a shared lock: close it when done); OSError when the cache cannot be used."""
    from phoebe_cli.repo.cache import ensure_private_dir, write_private

    trees = trees_dir()
    target = trees / ref.commit
    lease = _lease(target)
    if lease is not None:
        return target / "tree", lease
    ensure_private_dir(trees)
    scratch = Path(tempfile.mkdtemp(prefix=f".{ref.commit[:12]}-", dir=trees))
    try:
        nearest = _newest_kept(trees)
        changed = _changed_paths(root, nearest, ref) if nearest is not None else None
        linked = nearest is not None and changed is not None and _link_kept(trees / nearest, scratch / "tree")
        if linked and changed is not None:
            for _, path in changed:
                _remove(scratch / "tree", path)  # never write through a link
            written = tuple(path for status, path in changed if status != "D")
            if written:
                _check_out(root, ref, scratch / "tree", scratch / "index", written)
        else:
            shutil.rmtree(scratch / "tree", ignore_errors=True)
            _check_out(root, ref, scratch / "tree", scratch / "index", ())
        (scratch / "index").unlink(missing_ok=True)
        write_private(scratch / LOCK, b"")
        write_private(scratch / COMPLETE, ref.commit.encode())
        try:
            scratch.rename(target)
        except OSError:  # another run kept it meanwhile
            shutil.rmtree(scratch, ignore_errors=True)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    lease = _lease(target)
    if lease is None:  # evicted by another run at once: not to be relied on
        raise FileNotFoundError(target)
    _evict(trees, keep=ref.commit)
    return target / "tree", lease


def _lease(kept: Path) -> int | None:
    """A shared lock on a kept tree, held while a run reads it (eviction skips a leased tree); None
    when it is not kept (any more)."""
    try:
        lease = os.open(kept / LOCK, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(lease, fcntl.LOCK_SH)
        # still the kept tree (an evicting run renames it away before removing it)?
        if _same_file(os.fstat(lease), os.stat(kept / LOCK)):
            os.utime(kept / COMPLETE)  # recently used: evicted last
            return lease
    except OSError:
        pass
    os.close(lease)
    return None


def _link_kept(kept: Path, target: Path) -> bool:
    """``target`` made from a kept tree by links, while leasing it; False when it could not be
    (evicted meanwhile): then nothing is to be trusted, and everything is checked out."""
    lease = _lease(kept)
    if lease is None:
        return False
    try:
        _link_tree(kept / "tree", target)
        return True
    except OSError:
        return False
    finally:
        os.close(lease)


def _remove(tree: Path, path: str) -> None:
    """A changed path out of a tree made of links, before git writes it: the file or the symlink
    itself (never followed), or a directory that a file replaces."""
    target = tree / path
    try:
        if stat.S_ISDIR(os.lstat(target).st_mode):
            shutil.rmtree(target)
        else:
            target.unlink()
    except FileNotFoundError:
        pass


def _kept(trees: Path) -> list[tuple[float, Path]]:
    """The kept trees: (when last used, directory). Another run may evict one while they are listed.
    Not the dot directories: another run's scratch (complete, not yet renamed) or an evicted tree."""
    kept = []
    for mark in trees.glob(f"*/{COMPLETE}"):
        if mark.parent.name.startswith("."):  # pathlib's * matches them
            continue
        try:
            kept.append((mark.stat().st_mtime, mark.parent))
        except FileNotFoundError:
            continue
    return kept


def _newest_kept(trees: Path) -> str | None:
    kept = _kept(trees)
    return max(kept)[1].name if kept else None


def _changed_paths(root: Path, commit: str, ref: ResolvedRef) -> list[tuple[str, str]] | None:
    """(status, path) of what differs between a kept commit and ``ref``; None: cannot tell (a
    kept tree of another repository), check out everything."""
    done = _git(root, "diff", "--name-status", "--no-renames", "-z", commit, ref.commit)
    if done.returncode != 0:
        return None
    fields = done.stdout.split("\0")
    return [(fields[i][:1], fields[i + 1]) for i in range(0, len(fields) - 1, 2) if fields[i]]


def _link_tree(source: Path, target: Path) -> None:
    """A copy of a kept tree made of hard links; a symlink is copied as a symlink (never followed),
    so nothing outside the tree is read, or linked into the cache."""
    from phoebe_cli.repo.cache import DIR_MODE, FILE_MODE

    os.mkdir(target, DIR_MODE)

    def fail(error: OSError) -> None:
        raise error

    for directory, directories, files in os.walk(source, onerror=fail):  # never into a symlinked directory
        here = target / Path(directory).relative_to(source)
        for name in directories:
            origin = os.path.join(directory, name)
            if os.path.islink(origin):
                os.symlink(os.readlink(origin), here / name)
            else:
                os.mkdir(here / name, DIR_MODE)
        for name in files:
            origin = os.path.join(directory, name)
            if os.path.islink(origin):
                os.symlink(os.readlink(origin), here / name)
                continue
            try:
                os.link(origin, here / name, follow_symlinks=False)
            except FileNotFoundError:
                raise
            except OSError:  # another file system, or no hard links there: a private copy
                shutil.copyfile(origin, here / name, follow_symlinks=False)
                os.chmod(here / name, FILE_MODE)


def _evict(trees: Path, keep: str) -> None:
    """All but the most recently used kept trees, except those another run is reading (leased)."""
    kept = sorted(_kept(trees), reverse=True)
    for _, directory in kept[TREES_KEPT:]:
        if directory.name != keep:
            _remove_kept(trees, directory)
    cutoff = time.time() - 3600  # scratch directories of runs that died
    for stale in trees.glob(".*-*"):
        try:
            if stale.is_dir() and stale.stat().st_mtime < cutoff:
                shutil.rmtree(stale, ignore_errors=True)
        except FileNotFoundError:
            continue


def _remove_kept(trees: Path, directory: Path) -> None:
    """A kept tree removed, unless a run leases it: renamed away first (under an exclusive lock),
    so that no run finds half of it."""
    from phoebe_cli.repo.cache import FILE_MODE

    try:
        # made in a tree an older phoebe kept without one; fails when the tree is gone
        lock = os.open(directory / LOCK, os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
    except OSError:
        return
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # the lock may be an evicted tree's, and ``directory`` a tree kept again since and leased
        # by its own lock: only the lock of the tree now there keeps its lessees safe
        if not _same_file(os.fstat(lock), os.stat(directory / LOCK, follow_symlinks=False)):
            return
        evicted = trees / f".evicted-{directory.name}-{os.urandom(4).hex()}"
        directory.rename(evicted)
    except OSError:  # leased (BlockingIOError), or evicted by another run meanwhile
        return
    finally:
        os.close(lock)
    shutil.rmtree(evicted, ignore_errors=True)


def _same_file(one: os.stat_result, other: os.stat_result) -> bool:
    return (one.st_dev, one.st_ino) == (other.st_dev, other.st_ino)
