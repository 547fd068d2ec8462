"""Which files a GitRepository artifact holds: phoebe's sourceignore port against source-controller's code.

The oracle (tests/support/sourceignore_oracle.py, Go in tests/cluster/go/sourceignore-oracle) loads the
patterns with the real github.com/fluxcd/pkg/sourceignore v0.18.0 the way source-controller v1.9.6's
GitRepositoryReconciler does, and walks the checkout with a line-for-line copy of fluxcd/pkg/artifact's
SourceIgnoreFilter and Storage.Archive (whose tar.gz digests match the ones source-controller's own tests
pin: ``test_the_oracle_is_source_controllers_archive``).

* ``CASES``: hand-written trees, one per rule (defaults, the defaults dropped by any pattern, negation,
  ``dir/``, ``**``, anchoring, nested ``.sourceignore`` scopes and priorities, comments, escapes, trailing
  spaces, CRLF, bad globs, go-git's quirks, symlinks, non-UTF-8 names). Each pins the file list Go
  answered (reviewed by hand), and phoebe must give the same list.
* ``test_random_trees``: seeded random trees and rule sets over a vocabulary that makes patterns hit;
  ``PHOEBE_SOURCEIGNORE_CASES`` sets how many, ``PHOEBE_SOURCEIGNORE_SEED`` replays a run.
"""

from __future__ import annotations

import os
import random
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from phoebe_cli.repo.sourceignore import SPEC_IGNORE, IgnoreProblem, SourceIgnore
from tests.cluster.build import BuildError, module_dir
from tests.repo.conftest import RepoWriter, go_oracle
from tests.support.sourceignore_oracle import Artifact, Request, ask, ensure_oracle

pytestmark = pytest.mark.repo


@pytest.fixture(scope="session")
def oracle() -> Path:
    return go_oracle(ensure_oracle, "sourceignore")


@dataclass(frozen=True)
class Link:
    """A symlink in a tree, pointing at ``target`` (relative to the link's directory)."""

    target: str


Tree = dict[str, "str | Link"]


def write_tree(root: Path, tree: Tree) -> Path:
    """Files (text), symlinks and their parent directories; names may hold surrogate escapes (non-UTF-8)."""
    root.mkdir(parents=True, exist_ok=True)
    for relative, content in tree.items():
        path = Path(os.path.join(root, relative))
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Link):
            path.symlink_to(content.target)
        else:
            path.write_bytes(content.encode("utf-8", "surrogateescape"))
    return root


def phoebe_files(root: Path, spec_ignore: str | None) -> list[str]:
    return SourceIgnore.for_checkout(root, spec_ignore).included_files()


@dataclass(frozen=True)
class Case:
    name: str
    tree: Tree
    spec_ignore: str | None
    go: list[str]  # what source-controller's code keeps, in archive order (pinned)
    problems: list[tuple[str, int]] = field(default_factory=list)  # (file, line) phoebe must report


CASES = [
    Case(
        "defaults-vcs",
        {
            ".git/HEAD": "",
            ".git/objects/ab/cd": "",
            ".gitignore": "",
            "sub/.gitmodules": "",
            "sub/.gitattributes": "",
            "a.yaml": "",
        },
        None,
        ["a.yaml"],
    ),
    Case(
        "defaults-git-file-is-kept",
        {"sub/.git": "gitdir: ../.git/modules/sub\n", "sub/a.yaml": ""},
        None,
        ["sub/.git", "sub/a.yaml"],
    ),
    Case(
        "defaults-dir-named-gitignore",
        {".gitignore/a.yaml": "", "b.yaml": ""},
        None,
        ["b.yaml"],
    ),
    Case(
        "defaults-extensions",
        {
            "a.png": "",
            "d/b.jpg": "",
            "c.jpeg": "",
            "g.gif": "",
            "v.wmv": "",
            "f.flv": "",
            "t.tar.gz": "",
            "z.zip": "",
            "P.PNG": "",
            "png": "",
            "a.yaml": "",
        },
        None,
        ["P.PNG", "a.yaml", "png"],
    ),
    Case(
        "defaults-ci",
        {
            ".github/workflows/ci.yaml": "",
            "sub/.github/x.yaml": "",
            ".circleci/config.yml": "",
            ".travis.yml": "",
            ".gitlab-ci.yml": "",
            "appveyor.yml": "",
            ".drone.yml": "",
            "cloudbuild.yaml": "",
            "codeship-services.yml": "",
            "codeship-steps.yml": "",
            "k.yaml": "",
        },
        None,
        ["k.yaml"],
    ),
    Case(
        "defaults-ci-github-file-is-kept",
        {".github": "not a directory", "k.yaml": ""},
        None,
        [".github", "k.yaml"],
    ),
    Case(
        "defaults-extra",
        {".goreleaser.yml": "", "a/b/.sops.yaml": "", ".flux.yaml": "", "a/.flux.yaml/x.yaml": "", "a/b/k.yaml": ""},
        None,
        ["a/b/k.yaml"],
    ),
    Case(
        "comment-only-sourceignore-keeps-defaults",
        {".sourceignore": "# nothing\n\n   \n", "a.png": "", ".github/w.yaml": "", "k.yaml": ""},
        None,
        [".sourceignore", "k.yaml"],
    ),
    Case(
        "empty-spec-ignore-keeps-defaults",
        {"a.png": "", "k.yaml": ""},
        "\n# only a comment\n",
        ["k.yaml"],
    ),
    Case(
        "any-pattern-drops-defaults",
        {
            ".sourceignore": "nothing-matches-this\n",
            "a.png": "",
            ".github/w.yaml": "",
            "x/.sops.yaml": "",
            ".git/HEAD": "",
            ".gitignore": "",
            "k.yaml": "",
        },
        None,
        [".github/w.yaml", ".sourceignore", "a.png", "k.yaml", "x/.sops.yaml"],
    ),
    Case(
        "spec-ignore-drops-defaults",
        {"a.png": "", ".github/w.yaml": "", ".git/HEAD": "", "k.yaml": ""},
        "nothing-matches-this\n",
        [".github/w.yaml", "a.png", "k.yaml"],
    ),
    Case(
        "negation-later-wins",
        {"a.yaml": "", "b.yaml": "", "c.txt": ""},
        "!a.yaml\n*.yaml\n",
        ["c.txt"],
    ),
    Case(
        "negation-re-includes",
        {"a.yaml": "", "b.yaml": "", "c.txt": ""},
        "*.yaml\n!a.yaml\n",
        ["a.yaml", "c.txt"],
    ),
    Case(
        "spec-ignore-re-includes-sourceignore",
        {".sourceignore": "*.yaml\n", "keep.yaml": "", "drop.yaml": "", "sub/keep.yaml": ""},
        "!keep.yaml\n",
        [".sourceignore", "keep.yaml", "sub/keep.yaml"],
    ),
    Case(
        "spec-ignore-re-includes-vcs",
        {".git/HEAD": "", ".git/config": "", "k.yaml": ""},
        "!.git/HEAD\n",
        [".git/HEAD", "k.yaml"],
    ),
    Case(
        "negation-under-excluded-dir",
        {
            ".sourceignore": "apps/\n!apps/keep/\n",
            "apps/keep/ks.yaml": "",
            "apps/drop/ks.yaml": "",
            "apps/kustomization.yaml": "",
        },
        None,
        [".sourceignore", "apps/keep/ks.yaml"],
    ),
    Case(
        "negation-file-under-excluded-dir",
        {"dir/keep.yaml": "", "dir/drop.yaml": "", "dir/deeper/keep.yaml": ""},
        "dir/\n!keep.yaml\n",
        ["dir/deeper/keep.yaml", "dir/keep.yaml"],
    ),
    Case(
        "ignored-dir-with-kustomization",
        {
            "apps/kustomization.yaml": "",
            "apps/broken/kustomization.yaml": "",
            "apps/broken/deploy.yaml": "",
            "apps/ok/kustomization.yaml": "",
        },
        "apps/broken/\n",
        ["apps/kustomization.yaml", "apps/ok/kustomization.yaml"],
    ),
    Case(
        "dir-only",
        {"build/a.yaml": "", "build2": "", "sub/build": "", "y/build/x": ""},
        "build/\n",
        ["build2", "sub/build"],
    ),
    Case(
        "dir-only-anchored",
        {"build/a.yaml": "", "sub/build/a.yaml": "", "build2/a": ""},
        "/build/\n",
        ["build2/a", "sub/build/a.yaml"],
    ),
    Case(
        "double-slash-dir-only",
        {"foo/a": "", "foo2": "", "x/foo/b": ""},
        "foo//\n",
        ["foo2", "x/foo/b"],
    ),
    Case(
        "leading-slash-anchors",
        {"a.yaml": "", "sub/a.yaml": ""},
        "/a.yaml\n",
        ["sub/a.yaml"],
    ),
    Case(
        "slash-pattern-anchored-to-domain",
        {"sub/a.yaml": "", "x/sub/a.yaml": ""},
        "sub/a.yaml\n",
        ["x/sub/a.yaml"],
    ),
    Case(
        "no-slash-matches-anywhere",
        {"a.yaml": "", "sub/a.yaml": "", "a.yaml.d/k.yaml": ""},
        "a.yaml\n",
        ["a.yaml.d/k.yaml"],
    ),
    Case(
        "no-slash-matches-a-directory",
        {"tmp/a.yaml": "", "x/tmp/b.yaml": "", "tmpfile": ""},
        "tmp\n",
        ["tmpfile"],
    ),
    Case(
        "double-star-leading",
        {"foo": "", "a/foo": "", "a/b/foo/c": "", "foobar": ""},
        "**/foo\n",
        ["foobar"],
    ),
    Case(
        "double-star-dir-only",
        {"foo": "", "a/foo/c": "", "b/foo": ""},
        "**/foo/\n",
        ["b/foo", "foo"],
    ),
    Case(
        "double-star-middle",
        {"a/b": "", "a/x/b": "", "a/x/y/b": "", "a/w/b/z": "", "b": "", "c/a/b": ""},
        "a/**/b\n",
        ["b", "c/a/b"],
    ),
    Case(
        "double-star-no-backtracking",
        {"a/b/c": "", "a/b/x/b/c": "", "a/x/b/c": ""},
        "a/**/b/c\n",
        ["a/b/x/b/c"],
    ),
    Case(
        "double-star-trailing",
        {"abc/x": "", "abc/y/z": "", "abcd/x": "", "q/abc/x": ""},
        "abc/**\n",
        ["abcd/x", "q/abc/x"],
    ),
    Case(
        "double-star-trailing-matches-a-file",
        {"abc": "", "abd": ""},
        "abc/**\n",
        ["abd"],
    ),
    Case(
        "double-star-trailing-dir-only",
        {"abc": "", "abd/x": ""},
        "abc/**/\nabd/**/\n",
        ["abc"],
    ),
    Case(
        "double-star-inside-element",
        {"a/bxx": "", "a/b": "", "ccb": "", "x/cc": ""},
        "a/b**\nc**\n",
        ["a/b", "a/bxx"],
        [("spec.ignore", 1)],
    ),
    Case(
        "empty-element-cancels-double-star",
        {"a/x/b": "", "b": "", "x/b": ""},
        "**//b\n",
        ["a/x/b", "x/b"],
    ),
    Case(
        "star-does-not-cross-slash",
        {"a/b/c.yaml": "", "a/c.yaml": ""},
        "a/*.yaml\n",
        ["a/b/c.yaml"],
    ),
    Case(
        "question-and-class",
        {"a1.yaml": "", "ab.yaml": "", "a12.yaml": "", "b1.yaml": "", "c1.yaml": ""},
        "a?.yaml\n[bc]1.yaml\n!c?.yaml\n",
        ["a12.yaml", "c1.yaml"],
    ),
    Case(
        "negated-class",
        {"a1": "", "b1": "", "c1": ""},
        "[^a]1\n",
        ["a1"],
    ),
    Case(
        "class-ranges-and-escapes",
        {"a": "", "m": "", "z": "", "-": "", "]": ""},
        "[a-c]\n[\\]]\n[\\-]\n",
        ["m", "z"],
    ),
    Case(
        "inverted-range-matches-nothing",
        {"a": "", "m": "", "z": ""},
        "[z-a]\n",
        ["a", "m", "z"],
    ),
    Case(
        "escaped-hash-and-bang",
        {"#a": "", "!a": "", "a": ""},
        "\\#a\n\\!a\n",
        ["a"],
    ),
    Case(
        "hash-after-space-is-a-pattern",
        {" #a": "", "#a": "", "a": ""},
        " #a\n",
        ["#a", "a"],
    ),
    Case(
        "bang-alone-and-slash-alone",
        {"a": "", "b/c": ""},
        "!\n/\n!/\n*\n",
        [],
        [("spec.ignore", 1), ("spec.ignore", 2), ("spec.ignore", 3)],
    ),
    Case(
        "trailing-spaces-trimmed",
        {"a.yaml": "", "a.yaml  ": "", "b ": "", "b": ""},
        "a.yaml   \nb\\ \n",
        ["a.yaml  ", "b"],
    ),
    Case(
        "trailing-tab-kept",
        {"a.yaml": "", "a.yaml\t": ""},
        "a.yaml\t\n",
        ["a.yaml"],
    ),
    Case(
        "escaped-space-then-space",
        {"b ": "", "b": "", "b\\": ""},
        "b\\  \n",
        ["b", "b ", "b\\"],
        [("spec.ignore", 1)],
    ),
    Case(
        "crlf-lines",
        {
            ".sourceignore": "a.yaml\r\n!b.yaml\r\n*.yaml\r\n!c.yaml\r\n",
            "a.yaml": "",
            "b.yaml": "",
            "c.yaml": "",
            "d.txt": "",
        },
        None,
        [".sourceignore", "c.yaml", "d.txt"],
    ),
    Case(
        "no-final-newline",
        {".sourceignore": "*.txt\n!keep.txt", "a.txt": "", "keep.txt": ""},
        None,
        [".sourceignore", "keep.txt"],
    ),
    Case(
        "nested-sourceignore-scoped",
        {
            "sub/.sourceignore": "*.yaml\n/top.txt\n",
            "sub/a.yaml": "",
            "sub/top.txt": "",
            "sub/deep/top.txt": "",
            "sub/deep/b.yaml": "",
            "a.yaml": "",
            "top.txt": "",
        },
        None,
        ["a.yaml", "sub/.sourceignore", "sub/deep/top.txt", "top.txt"],
    ),
    Case(
        "nested-overrides-root",
        {".sourceignore": "!sub/keep.yaml\n", "sub/.sourceignore": "*.yaml\n", "sub/keep.yaml": "", "keep.yaml": ""},
        None,
        [".sourceignore", "keep.yaml", "sub/.sourceignore"],
    ),
    Case(
        "nested-re-includes-under-excluded-dir",
        {".sourceignore": "sub/\n", "sub/.sourceignore": "!keep.yaml\n", "sub/keep.yaml": "", "sub/drop.yaml": ""},
        None,
        [".sourceignore", "sub/keep.yaml"],
    ),
    Case(
        "nested-priority-by-name-order",
        {
            "a/.sourceignore": "!x/k.yaml\n",
            "a/x/.sourceignore": "k.yaml\n",
            "b/.sourceignore": "k.yaml\n",
            "a/x/k.yaml": "",
            "b/k.yaml": "",
        },
        None,
        ["a/.sourceignore", "a/x/.sourceignore", "b/.sourceignore"],
    ),
    Case(
        "sibling-domain-does-not-leak",
        {"a/.sourceignore": "*.yaml\n", "a/k.yaml": "", "ab/k.yaml": "", "b/k.yaml": ""},
        None,
        ["a/.sourceignore", "ab/k.yaml", "b/k.yaml"],
    ),
    Case(
        "sourceignore-in-git-dir-not-read",
        {".git/.sourceignore": "*.yaml\n", ".git/sub/.sourceignore": "*.yaml\n", "k.yaml": "", "x/k.yaml": ""},
        "!.git/keep\n",
        ["k.yaml", "x/k.yaml"],
    ),
    Case(
        "sourceignore-is-in-the-artifact",
        {".sourceignore": "*.txt\n", "sub/.sourceignore": "x\n", "a.txt": ""},
        None,
        [".sourceignore", "sub/.sourceignore"],
    ),
    Case(
        "sourceignore-directory",
        {".sourceignore/a.yaml": "", "k.png": ""},
        None,
        [".sourceignore/a.yaml"],
    ),
    Case(
        "bad-patterns-never-match",
        {"[": "", "a[b": "", "x\\": "", "]a]": "", "a-": "", "keep.yaml": "", "s/[x": ""},
        "[\na[b\nx\\\n[]a]\n[a-]\ns/[\n*.yaml\n!keep.yaml\n[\n",
        ["[", "]a]", "a-", "a[b", "keep.yaml", "s/[x", "x\\"],
        [
            ("spec.ignore", 1),
            ("spec.ignore", 2),
            ("spec.ignore", 3),
            ("spec.ignore", 4),
            ("spec.ignore", 5),
            ("spec.ignore", 6),
            ("spec.ignore", 9),
        ],
    ),
    Case(
        "bad-negation-does-not-re-include",
        {"a.yaml": "", "[.yaml": ""},
        "*.yaml\n![.yaml\n",
        [],
        [("spec.ignore", 2)],
    ),
    Case(
        "only-control-elements",
        {"a": "", "b/c": ""},
        "/**\n**/**\n",
        ["a", "b/c"],
        [("spec.ignore", 1), ("spec.ignore", 2)],
    ),
    Case(
        "allowlist-style",
        {"a.yaml": "", "a.txt": "", "d/b.yaml": "", "d/c.txt": "", "d/e/f.txt": ""},
        "*\n!*/\n!*.yaml\n",
        ["a.yaml", "d/b.yaml", "d/c.txt", "d/e/f.txt"],
    ),
    Case(
        "exclude-all-but-one-dir",
        {"apps/a.yaml": "", "clusters/c.yaml": "", "docs/d.md": "", "README.md": "", ".git/HEAD": ""},
        "/*\n!/apps/\n!/clusters/\n",
        ["apps/a.yaml", "clusters/c.yaml"],
    ),
    Case(
        "non-ascii-byte-star",
        {"€.yaml": "", "é.yaml": "", "ab.yaml": "", "abc.yaml": ""},
        "*??.yaml\n",
        ["é.yaml"],
    ),
    Case(
        "non-ascii-class",
        {"é": "", "ü": "", "e": "", "日本": ""},
        "[à-ï]\n?本\n",
        ["e", "ü"],
    ),
    Case(
        "non-utf8-name",
        {"bad\udcff.yaml": "", "ok.yaml": ""},
        "bad?.yaml\n",
        ["ok.yaml"],
    ),
    Case(
        "long-line-stops-reading",
        {".sourceignore": "a.txt\n" + "x" * (64 * 1024) + "\nb.txt\n", "a.txt": "", "b.txt": ""},
        None,
        [".sourceignore", "b.txt"],
        [(".sourceignore", 2)],
    ),
    Case(
        "longest-line-is-read",
        {".sourceignore": "a.txt\n" + "x" * (64 * 1024 - 1) + "\nb.txt\n", "a.txt": "", "b.txt": ""},
        None,
        [".sourceignore"],
    ),
    Case(
        "go-whitespace-only-line",
        {".sourceignore": "\xa0\n\x1f\n", "\x1f": "", "a.png": ""},
        None,
        [".sourceignore", "a.png"],
    ),
    Case(
        # Walk and ReadDir order names by bytes: U+FF46 (EF BD 86) before the byte FF, unlike code points;
        # and a directory before its namesake with a suffix.
        "names-in-byte-order",
        {
            "\uff46.yaml": "",
            "\udcff.yaml": "",
            "\uff46/.sourceignore": "!k.yaml\n",
            "\udcff/.sourceignore": "k.yaml\n",
            "\uff46/k.yaml": "",
            "\udcff/k.yaml": "",
        },
        None,
        ["\uff46/.sourceignore", "\uff46/k.yaml", "\uff46.yaml", "\udcff/.sourceignore", "\udcff.yaml"],
    ),
    Case(
        "symlinks-are-left-out",
        {
            "real/app/k.yaml": "",
            "real/app/other.yaml": "",
            "linked": Link("real"),
            "k.yaml": Link("real/app/k.yaml"),
            "dangling.yaml": Link("nowhere"),
            "outside/o.yaml": "",
        },
        None,
        ["outside/o.yaml", "real/app/k.yaml", "real/app/other.yaml"],
    ),
    Case(
        "symlinked-sourceignore-is-read-in-its-directory",
        {
            "real/.sourceignore": Link("../outside/ignore"),
            "outside/ignore": "*.yaml\n",
            "real/app/k.yaml": "",
            "outside/o.yaml": "",
            "x.png": "",
        },
        None,
        ["outside/ignore", "outside/o.yaml", "x.png"],
    ),
    Case(
        "dangling-sourceignore-is-no-file",
        {".sourceignore": Link("nowhere"), "a.png": "", "k.yaml": ""},
        None,
        ["k.yaml"],
    ),
    Case(
        "empty-checkout",
        {},
        "*\n",
        [],
    ),
]


@pytest.fixture(scope="module")
def go_answers(oracle: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Artifact]]:
    """Every case's tree written once and asked in one oracle run."""
    base = tmp_path_factory.mktemp("sourceignore-cases")
    roots = {case.name: write_tree(base / case.name, case.tree) for case in CASES}
    answers = ask(oracle, [Request(str(roots[case.name]), case.spec_ignore) for case in CASES])
    return {case.name: (roots[case.name], answer) for case, answer in zip(CASES, answers, strict=True)}


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_phoebe_keeps_what_source_controller_keeps(case: Case, go_answers: dict[str, tuple[Path, Artifact]]) -> None:
    root, go = go_answers[case.name]
    assert go.error is None
    assert go.files == case.go, "source-controller's code answered differently from the pinned list"
    ignore = SourceIgnore.for_checkout(root, case.spec_ignore)
    assert ignore.included_files() == case.go
    assert [(p.file, p.line) for p in ignore.problems] == case.problems


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_ignored_agrees_with_the_file_list(case: Case, go_answers: dict[str, tuple[Path, Artifact]]) -> None:
    """``ignored`` is the filter alone: every regular file is kept exactly when it says so."""
    root, _ = go_answers[case.name]
    ignore = SourceIgnore.for_checkout(root, case.spec_ignore)
    regular = [
        os.path.relpath(os.path.join(directory, name), root)
        for directory, _, names in os.walk(root)  # symlinked directories are not entered
        for name in names
        if stat.S_ISREG(os.lstat(os.path.join(directory, name)).st_mode)
    ]
    kept = sorted(relative for relative in regular if not ignore.ignored(relative, is_dir=False))
    assert kept == sorted(case.go)


# --- random trees -------------------------------------------------------------------------------------
# Few names, so that patterns hit: dots, VCS and CI names, glob metacharacters, spaces, a non-ASCII name
# whose bytes a Go star can split, and elements that are bad globs or go-git quirks.
NAMES = ["a", "b", "ab", "ba", "a.yaml", "x.png", ".git", ".github", "€.yaml", "[x", "a ", "!a", "#a", ".sops.yaml",
         "c\\d", "]", "kustomization.yaml"]  # fmt: skip
ELEMENTS = ["a", "b", "ba", "*", "**", "**", "?", "*.yaml", "a*", "?*", "***", "[ab]", "[^a]", "[c-a]", "[é-ü]",
            "\\!a", "\\#a", "a\\ ", ".git", "*??.yaml", "[", "[]]", "[\\]]", "b**", "x[", "\\"]  # fmt: skip


def random_pattern(rng: random.Random) -> str:
    pattern = "/".join(rng.choice(ELEMENTS) for _ in range(rng.choice([1, 1, 1, 2, 2, 3, 4])))
    if rng.random() < 0.2:
        pattern = "/" + pattern
    if rng.random() < 0.2:
        pattern += "/"
    if rng.random() < 0.05:
        pattern += "//"
    if rng.random() < 0.3:
        pattern = "!" + pattern
    if rng.random() < 0.1:
        pattern += "  "
    if rng.random() < 0.03:
        pattern = "#" + pattern
    return pattern


def random_rules(rng: random.Random) -> str:
    newline = rng.choice(["\n", "\n", "\r\n"])
    return newline.join(random_pattern(rng) for _ in range(rng.randint(0, 5))) + rng.choice(["", newline])


def random_tree(rng: random.Random) -> Tree:
    tree: Tree = {}
    directories: set[str] = set()

    def grow(prefix: str, depth: int) -> None:
        for _ in range(rng.randint(1, 4)):
            path = prefix + rng.choice(NAMES)
            if path in tree or any(d.startswith(path + "/") for d in directories) or path in directories:
                continue
            if depth < 4 and rng.random() < 0.45:
                directories.add(path)
                grow(path + "/", depth + 1)
            else:
                tree[path] = ""
                if rng.random() < 0.05:
                    tree[path + ".link"] = Link(path.rsplit("/", 1)[-1])

    grow("", 0)
    for directory in ["", *sorted(directories)]:
        if rng.random() < 0.3:
            tree[f"{directory}/.sourceignore".lstrip("/")] = random_rules(rng)
    return tree


def test_random_trees(oracle: Path, tmp_path: Path) -> None:
    seed = int(os.environ.get("PHOEBE_SOURCEIGNORE_SEED") or secrets.randbits(32))
    count = int(os.environ.get("PHOEBE_SOURCEIGNORE_CASES", "400"))
    rng = random.Random(seed)
    cases: list[tuple[Path, str | None]] = []
    for index in range(count):
        root = write_tree(tmp_path / str(index), random_tree(rng))
        cases.append((root, None if rng.random() < 0.4 else random_rules(rng)))
    answers = ask(oracle, [Request(str(root), spec) for root, spec in cases])

    mismatches = []
    excluded_some = kept_some = 0
    for (root, spec), go in zip(cases, answers, strict=True):
        assert go.error is None, go.error
        mine = phoebe_files(root, spec)
        if mine != go.files:
            mismatches.append(f"{root} spec.ignore={spec!r}\n  go:     {go.files}\n  phoebe: {mine}")
        on_disk = sum(1 for p in root.rglob("*") if p.is_file() and not p.is_symlink())
        excluded_some += len(go.files) < on_disk
        kept_some += bool(go.files)
    assert not mismatches, f"seed {seed}: {len(mismatches)} of {count} differ\n" + "\n".join(mismatches[:5])
    # The corpus must be able to tell rules apart: trees where something is left out and something is kept.
    assert excluded_some > count // 3
    assert kept_some > count // 2


# --- the oracle itself --------------------------------------------------------------------------------
# source-controller v1.9.6, internal/controller/gitrepository_controller_test.go,
# TestGitRepositoryReconciler_reconcileArtifact: the artifact digests of its testdata checkouts.
SOURCE_CONTROLLER_DIGESTS = [
    ("testdata/git/repository", None, "sha256:34d9af1a2fcfaef3ee9487d67dc2d642bc7babdb9444a5f60d1f32df32e4de7d"),
    ("testdata/git/repository", "!**.txt\n", "sha256:a17037f96f541a47bdadcd12ab40b943c50a9ffd25dc8a30a5e9af52971fd94f"),
    ("testdata/git/repowithsubdirs", None, "sha256:ad9943d761b30e943e2a770ea9083a40fc03f09846efd61f6c442cc48fefad11"),
]


def test_the_oracle_is_source_controllers_archive(oracle: Path) -> None:
    """The reproduced SourceIgnoreFilter + Storage.Archive write the very tarballs source-controller's tests
    expect (same files, headers and bytes), and phoebe keeps the same files."""
    try:
        source = module_dir("github.com/fluxcd/source-controller", "v1.9.6")
    except BuildError as error:
        pytest.skip(f"no source-controller module: {error}")
    controller = source / "internal" / "controller"
    pinned = (controller / "gitrepository_controller_test.go").read_text()
    requests = [Request(directory, spec, archive=True) for directory, spec, _ in SOURCE_CONTROLLER_DIGESTS]
    answers = ask(oracle, requests, cwd=controller)
    for (directory, spec, digest), answer in zip(SOURCE_CONTROLLER_DIGESTS, answers, strict=True):
        assert digest in pinned
        assert answer.digest == digest, (directory, spec)
        # The archive's names are relative to source-controller's working directory here, as in its test.
        assert phoebe_files(controller / directory, spec) == [f.removeprefix(directory + "/") for f in answer.files]


def test_a_git_checkout(oracle: Path, write_repo: RepoWriter) -> None:
    """A real clone: .git holds hooks, objects and refs; none reach the artifact, except what a pattern
    brings back (the walk enters .git like any excluded directory)."""
    root = write_repo(
        {
            "kubernetes/apps/kustomization.yaml": "resources: []\n",
            "kubernetes/apps/logo.png": "png",
            ".github/workflows/ci.yaml": "on: push\n",
            "README.md": "# home-ops\n",
        }
    )
    for spec in (None, "/*\n!/kubernetes/\n", "!.git/HEAD\n!.git/refs/\n"):
        go = ask(oracle, [Request(str(root), spec)])[0]
        assert go.error is None
        assert phoebe_files(root, spec) == go.files
    assert phoebe_files(root, None) == ["README.md", "kubernetes/apps/kustomization.yaml"]
    brought_back = phoebe_files(root, "!.git/HEAD\n!.git/refs/\n")
    assert ".git/HEAD" in brought_back
    assert any(f.startswith(".git/refs/heads/") for f in brought_back)


def test_an_unreadable_sourceignore_fails_in_flux_and_is_a_problem_here(oracle: Path, tmp_path: Path) -> None:
    root = write_tree(tmp_path / "loop", {"a/.sourceignore": Link(".sourceignore"), "a/k.yaml": ""})
    go = ask(oracle, [Request(str(root))])[0]
    assert go.error is not None and "failed to load source ignore patterns" in go.error
    problems = SourceIgnore.for_checkout(root).problems
    assert [(p.file, p.line) for p in problems] == [("a/.sourceignore", 0)]
    assert "the artifact fails" in problems[0].message


# --- the API ------------------------------------------------------------------------------------------
def test_problems_name_the_file_and_the_line(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path / "r",
        {
            ".sourceignore": "# comment\n\n*.txt\n[\n",
            "apps/x/.sourceignore": "ok\n\n!a/b**\n",
        },
    )
    ignore = SourceIgnore.for_checkout(root, "ok\n/**\n")
    assert ignore.problems == [
        IgnoreProblem(
            ".sourceignore", 4, "[", "bad glob '[': Go's filepath.Match rejects it, so the pattern matches nothing"
        ),
        IgnoreProblem(
            "apps/x/.sourceignore",
            3,
            "!a/b**",
            "'b**': in a pattern with a slash, '**' only works as a whole element; this matches nothing",
        ),
        IgnoreProblem(SPEC_IGNORE, 2, "/**", "no name in the pattern: go-git matches nothing with it"),
    ]


def test_a_bad_pattern_is_a_problem_not_an_error(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "r", {"[": "", "a.yaml": ""})
    ignore = SourceIgnore.for_checkout(root, "[\n")
    assert ignore.included_files() == ["[", "a.yaml"]
    assert not ignore.ignored("[", is_dir=False)
    assert [p.pattern for p in ignore.problems] == ["["]


def test_ignored_answers_for_directories_and_files(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "r", {".sourceignore": "build/\n!build/keep.yaml\n/docs\n"})
    ignore = SourceIgnore.for_checkout(root)
    assert ignore.ignored("build", is_dir=True)
    assert not ignore.ignored("build", is_dir=False)  # dir-only
    assert ignore.ignored("src/build/x.yaml", is_dir=False)
    assert not ignore.ignored("build/keep.yaml", is_dir=False)
    assert ignore.ignored("docs", is_dir=True) and ignore.ignored("docs/a/b.md", is_dir=False)
    assert not ignore.ignored("src/docs", is_dir=True)
    assert ignore.ignored("./.git", is_dir=True)  # the paths need not exist; "./" is the root
    assert not ignore.ignored("", is_dir=True)
    with pytest.raises(ValueError, match="not a path inside"):
        ignore.ignored("../x", is_dir=False)
    with pytest.raises(ValueError, match="not a path inside"):
        ignore.ignored("/etc/passwd", is_dir=False)


def test_default_exclusions_apply_only_without_any_pattern(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "r", {".sourceignore": "# just a comment\n", "a.png": ""})
    assert SourceIgnore.for_checkout(root).uses_default_exclusions
    assert SourceIgnore.for_checkout(root, "").uses_default_exclusions
    without = SourceIgnore.for_checkout(root, "*.md\n")
    assert not without.uses_default_exclusions
    assert without.included_files() == [".sourceignore", "a.png"]


def test_a_sourceignore_symlinked_out_of_the_checkout_is_not_read(tmp_path: Path) -> None:
    """source-controller would follow it; phoebe never reads outside the checkout: the rules in it
    do not apply, and a warning says why (without a word of the file)."""
    outside = tmp_path / "outside.txt"
    outside.write_text("secret-marker-1234\n*.yaml\n")
    root = tmp_path / "checkout"
    (root / "apps").mkdir(parents=True)
    (root / "apps" / "cm.yaml").write_text("kind: ConfigMap\n")
    (root / ".sourceignore").symlink_to(outside)

    ignore = SourceIgnore.for_checkout(root)

    assert ignore.included_files() == ["apps/cm.yaml"]
    assert [(p.file, p.message) for p in ignore.problems] == [
        (".sourceignore", "a symlink out of the checkout: phoebe does not read it (source-controller would)")
    ]
    assert "secret-marker-1234" not in repr(ignore.problems)
