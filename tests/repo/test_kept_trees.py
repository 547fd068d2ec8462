"""The kept ref trees of ``phoebe diff --base``: the user's only, symlinks never followed, and
runs that share them never fail because of each other."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

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


def _git_init(root: Path) -> Path:
    import subprocess

    for args in (("init", "-q", "-b", "main"), ("add", "-A"), ("commit", "-q", "-m", "first")):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args], cwd=root, check=True)
    return root
