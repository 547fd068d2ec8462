"""The kept ref trees of ``phoebe diff --base``: the user's only, symlinks never followed, and
runs that share them never fail because of each other."""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from phoebe_cli.repo import refs
from tests.repo.conftest import RepoWriter, commit_all

pytestmark = pytest.mark.repo


def _modes(tree: Path) -> set[tuple[str, int]]:
    return {
        ("dir" if p.is_dir() else "file", stat.S_IMODE(p.lstat().st_mode))
        for p in tree.rglob("*")
        if not p.is_symlink()
    }


def test_kept_trees_are_private_and_keep_symlinks_as_symlinks(write_repo: RepoWriter, tmp_path: Path) -> None:
    outside = tmp_path / "outside.yaml"
    outside.write_text("secret: outside\n")
    root = write_repo({"a.yaml": "v: 1\n", "dir/b.yaml": "v: 1\n", "run.sh": "#!/bin/sh\n"}, git=False)
    (root / "run.sh").chmod(0o755)
    (root / "dir/link.yaml").symlink_to(outside)
    (root / "up").symlink_to("..")
    (root / "dangling.yaml").symlink_to("nowhere.yaml")
    first = refs.resolve(_git_init(root), "HEAD")
    (root / "a.yaml").write_text("v: 2\n")
    second = refs.resolve(root, commit_all(root))

    with refs.checked_out(root, first) as one:
        pass
    with refs.checked_out(root, second) as two:  # made from the first by links
        pass

    for tree in (one, two):
        assert _modes(tree) == {("dir", 0o700), ("file", 0o600)}
        assert os.readlink(tree / "dir/link.yaml") == str(outside)
        assert os.readlink(tree / "up") == ".."
        assert os.readlink(tree / "dangling.yaml") == "nowhere.yaml"
        assert all(p.stat().st_ino != outside.stat().st_ino for p in tree.rglob("*") if not p.is_symlink())
    assert (two / "a.yaml").read_text() == "v: 2\n"
    assert _modes(refs.trees_dir()) >= {("dir", 0o700)}
    assert {mode for kind, mode in _modes(refs.trees_dir())} <= {0o700, 0o600}
    assert outside.read_text() == "secret: outside\n"


def test_a_cache_that_cannot_be_used_reads_the_ref_into_a_temporary_tree(
    write_repo: RepoWriter, repo_environment: Path
) -> None:
    root = write_repo({"a.yaml": "v: 1\n"})
    ref = refs.resolve(root, "HEAD")
    (repo_environment / "phoebe").mkdir(parents=True)
    (repo_environment / "phoebe" / "trees").write_text("not a directory")

    with refs.checked_out(root, ref) as tree:
        assert (tree / "a.yaml").read_text() == "v: 1\n"
        temporary = tree
    assert not temporary.exists()


def test_runs_sharing_the_kept_trees_never_fail_each_other(
    write_repo: RepoWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Eight threads, eight commits, one tree kept: every run makes, reads, links from and evicts
    trees the others are making and reading at the same time."""
    monkeypatch.setattr(refs, "TREES_KEPT", 1)
    root = write_repo({"a.yaml": "v: 0\n", "same.yaml": "s: 1\n"})
    commits = [refs.resolve(root, "HEAD")]
    for n in range(1, 8):
        (root / "a.yaml").write_text(f"v: {n}\n")
        commits.append(refs.resolve(root, commit_all(root)))
    errors: list[BaseException] = []

    def run(offset: int) -> None:
        try:
            for n in range(8):
                index = (n + offset) % 8
                with refs.checked_out(root, commits[index]) as tree:
                    # leased: no other run evicts it while it is read
                    assert (tree / "a.yaml").read_text() == f"v: {index}\n"
                    assert (tree / "same.yaml").read_text() == "s: 1\n"
        except BaseException as error:  # noqa: BLE001 - any failure is the test's
            errors.append(error)

    threads = [threading.Thread(target=run, args=(offset,)) for offset in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_an_evicting_run_spares_a_tree_kept_again_after_it_opened_the_evicted_ones_lock(
    write_repo: RepoWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race the test above once lost: run A opens a kept tree's lock to evict it; before A takes
    the lock, run B evicts that tree and run C keeps the commit again and reads it. A's lock is now
    the evicted tree's, which nobody holds: A must not take it for the lock of C's tree."""
    root = write_repo({"a.yaml": "v: 0\n"})
    ref = refs.resolve(root, "HEAD")
    with refs.checked_out(root, ref):
        pass
    trees = refs.trees_dir()
    kept = trees / ref.commit
    reading: list[Path] = []  # C's tree, once the race is staged
    runs = contextlib.ExitStack()  # C reads while A evicts

    def flock(descriptor: int, operation: int) -> None:
        if operation & fcntl.LOCK_EX and not reading:  # A, its lock open, about to take it
            reading.append(kept)  # set first: B's and C's own locks pass straight through
            refs._remove_kept(trees, kept)  # B
            reading[0] = runs.enter_context(refs.checked_out(root, ref))  # C, leasing it
        fcntl.flock(descriptor, operation)

    locks = {name: getattr(fcntl, name) for name in ("LOCK_SH", "LOCK_EX", "LOCK_NB", "LOCK_UN")}
    monkeypatch.setattr(refs, "fcntl", SimpleNamespace(flock=flock, **locks))
    with runs:
        refs._remove_kept(trees, kept)  # A
        assert reading == [kept / "tree"], "the race was not staged (C read a kept tree)"
        assert (reading[0] / "a.yaml").read_text() == "v: 0\n"  # C's leased tree is still there


def test_an_evicting_run_leaves_another_runs_scratch_alone(
    write_repo: RepoWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run's scratch tree, complete but not yet renamed into place, is no kept tree: another
    run's eviction leaves it, and the run keeps it rather than reading the ref again elsewhere."""
    from phoebe_cli.repo import cache

    monkeypatch.setattr(refs, "TREES_KEPT", 1)
    root = write_repo({"a.yaml": "v: 0\n"})
    first = refs.resolve(root, "HEAD")
    (root / "a.yaml").write_text("v: 1\n")
    second = refs.resolve(root, commit_all(root))
    write_private = cache.write_private
    staged: list[bool] = []

    def complete_then_another_run(path: Path, data: bytes, *, exclusive: bool = False) -> None:
        write_private(path, data, exclusive=exclusive)
        if path.name == refs.COMPLETE and not staged:  # the first run, before its rename
            staged.append(True)
            with refs.checked_out(root, first):  # the other run, evicting all but its own tree
                pass

    monkeypatch.setattr(cache, "write_private", complete_then_another_run)
    with refs.checked_out(root, second) as tree:
        assert staged
        assert tree == refs.trees_dir() / second.commit / "tree"
        assert (tree / "a.yaml").read_text() == "v: 1\n"


def test_a_tree_an_older_phoebe_kept_without_a_lock_is_still_evicted(
    write_repo: RepoWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(refs, "TREES_KEPT", 1)
    root = write_repo({"a.yaml": "v: 0\n"})
    first = refs.resolve(root, "HEAD")
    (root / "a.yaml").write_text("v: 1\n")
    second = refs.resolve(root, commit_all(root))
    with refs.checked_out(root, first):
        pass
    old = refs.trees_dir() / first.commit
    (old / refs.LOCK).unlink()
    os.utime(old / refs.COMPLETE, (1, 1))  # used long ago: the first to go

    with refs.checked_out(root, second):
        pass
    assert sorted(p.name for p in refs.trees_dir().iterdir()) == [second.commit]


def _git_init(root: Path) -> Path:
    import subprocess

    for args in (("init", "-q", "-b", "main"), ("add", "-A"), ("commit", "-q", "-m", "first")):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args], cwd=root, check=True)
    return root
