"""A ref's tree read into a temporary directory, leaving the checkout untouched."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from phoebe_cli.errors import UsageError
from phoebe_cli.repo import refs
from tests.repo.conftest import RepoWriter, commit_all

pytestmark = pytest.mark.repo


def _status(root: Path) -> str:
    return subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True, check=True).stdout


def test_a_ref_checks_out_as_it_was_and_nothing_in_the_checkout_changes(write_repo: RepoWriter) -> None:
    root = write_repo({"a.yaml": "v: 1\n", "dir/b.yaml": "v: 1\n"})
    first = refs.resolve(root, "HEAD")
    (root / "a.yaml").write_text("v: 2\n")
    (root / "dir/b.yaml").unlink()
    commit_all(root)
    (root / "a.yaml").write_text("v: 3 (uncommitted)\n")
    before = (_status(root), sorted(p.name for p in (root / ".git").iterdir()))

    with refs.checked_out(root, first, use_cache=False) as tree:
        assert (tree / "a.yaml").read_text() == "v: 1\n"
        assert (tree / "dir/b.yaml").read_text() == "v: 1\n"
        temporary = tree
    assert not temporary.exists()
    assert (_status(root), sorted(p.name for p in (root / ".git").iterdir())) == before
    assert (root / "a.yaml").read_text() == "v: 3 (uncommitted)\n"
    assert first.label == f"HEAD ({first.commit[:8]})"


def test_an_unknown_ref_is_a_usage_error(write_repo: RepoWriter) -> None:
    root = write_repo({"a.yaml": "v: 1\n"})
    with pytest.raises(UsageError, match=r"'nope' is not a commit in .* \(a branch, tag or SHA, e.g. origin/main\)"):
        refs.resolve(root, "nope")


def test_trees_are_kept_by_commit_and_a_new_one_starts_from_the_newest(write_repo: RepoWriter) -> None:
    root = write_repo({"a.yaml": "v: 1\n", "same.yaml": "s: 1\n", "gone.yaml": "g: 1\n"})
    first = refs.resolve(root, "HEAD")
    with refs.checked_out(root, first) as tree:
        kept = tree
    (root / "a.yaml").write_text("v: 2\n")
    (root / "gone.yaml").unlink()
    (root / "new/c.yaml").parent.mkdir()
    (root / "new/c.yaml").write_text("c: 1\n")
    second = refs.resolve(root, commit_all(root))

    with refs.checked_out(root, first) as again:
        assert again == kept  # read as it is
    with refs.checked_out(root, second) as tree:
        assert sorted(str(p.relative_to(tree)) for p in tree.rglob("*.yaml")) == ["a.yaml", "new/c.yaml", "same.yaml"]
        assert (tree / "a.yaml").read_text() == "v: 2\n"
        assert (tree / "same.yaml").stat().st_ino == (kept / "same.yaml").stat().st_ino  # a hard link
    # the older tree is untouched: nothing was written through a link
    assert (kept / "a.yaml").read_text() == "v: 1\n"
    assert (kept / "gone.yaml").read_text() == "g: 1\n"
    assert kept.parent == refs.trees_dir() / first.commit
