"""What a GitRepository's artifact holds: source-controller's ignore rules, offline.

source-controller (v1.9.6) archives a checkout through ``Storage.Archive`` with
``SourceIgnoreFilter`` (github.com/fluxcd/pkg/artifact/storage), and kustomize-controller only
ever sees that archive. This module answers the same question for a checkout on disk, so that a
file Flux never sees never changes one of phoebe's builds. The rules, as Go applies them:

* **Patterns, lowest priority first.** ``.sourceignore`` files, read by
  ``sourceignore.LoadIgnorePatterns``: the root's first, then depth first through sub-directories
  in byte order of their names (``os.ReadDir``), skipping directories named ``.git`` and never
  following symlinked directories. Each file's patterns are scoped to its directory (the
  *domain*). ``spec.ignore`` comes last, scoped to the root.
* **Defaults.** With no pattern at all, the VCS patterns (``.git/``, ``.gitignore``,
  ``.gitmodules``, ``.gitattributes``) and the default exclusions (images, archives, CI
  configs, ``**/.sops.yaml`` ...) sit under them. With even one pattern (a ``.sourceignore``
  line anywhere or a ``spec.ignore`` line), **only the VCS patterns stay**: ``*.png``,
  ``.github/`` and the rest are no longer excluded.
* **Matching** is go-git's ``plumbing/format/gitignore`` (v5.19.1; sourceignore v0.18.0 carries a
  byte-identical copy): the highest-priority pattern that matches a path decides. It is not
  git's own matcher; the differences are kept on purpose (see ``_PathRule``).
* **The walk** is ``filepath.Walk`` with ``Lstat``: anything that is neither a regular file nor a
  directory (a symlink, to a file or a directory) is left out, and a filtered directory is *not*
  skipped: every path below it is matched on its own, so a higher-priority ``!pattern`` brings a
  file under an excluded directory back.
* **A pattern that cannot match** (a bad glob such as ``[``, go-git's ``a/b**`` quirk, ``/**``)
  is silently never matched by Go; here it is dropped the same way and recorded in ``problems``.

The rules are compiled once into per-directory states, so a directory whose outcome no pattern
can change any more is decided once for everything below it, and one that is excluded for good
is not walked at all (only when that is provably what Go's per-file matching would say).
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Final

__all__ = [
    "DEFAULT_PATTERNS",
    "IGNORE_FILE",
    "SPEC_IGNORE",
    "VCS_PATTERNS",
    "IgnoreProblem",
    "SourceIgnore",
]

IGNORE_FILE: Final = ".sourceignore"
SPEC_IGNORE: Final = "spec.ignore"  # the ``file`` of a problem found in GitRepository.spec.ignore

# github.com/fluxcd/pkg/sourceignore v0.18.0, sourceignore.go: ExcludeVCS, then ExcludeExt, ExcludeCI
# and ExcludeExtra (DefaultPatterns), in this order.
VCS_PATTERNS: Final = (".git/", ".gitignore", ".gitmodules", ".gitattributes")
DEFAULT_PATTERNS: Final = (
    *("*.jpg", "*.jpeg", "*.gif", "*.png", "*.wmv", "*.flv", "*.tar.gz", "*.zip"),
    *(".github/", ".circleci/", ".travis.yml", ".gitlab-ci.yml", "appveyor.yml", ".drone.yml"),
    *("cloudbuild.yaml", "codeship-services.yml", "codeship-steps.yml"),
    *("**/.goreleaser.yml", "**/.sops.yaml", "**/.flux.yaml"),
)

# bufio.Scanner's default limit: a longer line stops the scan, and ReadPatterns ignores the error,
# so that line and every later one are lost.
_MAX_LINE: Final = 64 * 1024
# strings.TrimSpace's notion of white space (unicode.IsSpace), which is not Python's str.isspace
# (that one also counts U+001C..U+001F).
_GO_SPACE: Final = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)


@dataclass(frozen=True)
class IgnoreProblem:
    """Something in the ignore rules Flux silently tolerates; ``validate`` reports it as a warning.

    ``file`` is the posix path of the ``.sourceignore`` relative to the checkout, or ``spec.ignore``;
    ``line`` counts from 1 (0: the whole file).
    """

    file: str
    line: int
    pattern: str
    message: str


# --- Go's filepath.Match ------------------------------------------------------------------------
class _BadPattern(Exception):
    """filepath.ErrBadPattern."""


def _decode_rune(s: bytes) -> tuple[int, int]:
    """utf8.DecodeRune: an invalid or truncated sequence is U+FFFD of width 1."""
    b0 = s[0]
    if b0 < 0x80:
        return b0, 1
    width = 2 if 0xC2 <= b0 <= 0xDF else 3 if 0xE0 <= b0 <= 0xEF else 4 if 0xF0 <= b0 <= 0xF4 else 0
    if width and len(s) >= width:
        try:
            # Python's decoder rejects what Go's does: overlong forms, surrogates, > U+10FFFF.
            return ord(s[:width].decode("utf-8")), width
        except UnicodeDecodeError:
            pass
    return 0xFFFD, 1


def _scan_chunk(pattern: bytes) -> tuple[bool, bytes, bytes]:
    star = False
    while pattern[:1] == b"*":
        pattern = pattern[1:]
        star = True
    in_range = False
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == 0x5C:  # backslash: the next byte is never a separator
            if i + 1 < len(pattern):
                i += 1
        elif c == 0x5B:
            in_range = True
        elif c == 0x5D:
            in_range = False
        elif c == 0x2A and not in_range:
            return star, pattern[:i], pattern[i:]
        i += 1
    return star, pattern, b""


def _get_esc(chunk: bytes) -> tuple[int, bytes]:
    if not chunk or chunk[0] in (0x2D, 0x5D):
        raise _BadPattern
    if chunk[0] == 0x5C:
        chunk = chunk[1:]
        if not chunk:
            raise _BadPattern
    rune, width = _decode_rune(chunk)
    rest = chunk[width:]
    if (rune == 0xFFFD and width == 1) or not rest:
        raise _BadPattern
    return rune, rest


def _match_chunk(chunk: bytes, s: bytes) -> bytes | None:
    """The rest of ``s`` after ``chunk`` matched its start, or None. Like Go's, it reads the whole
    chunk even after a mismatch, so a malformed chunk raises whatever ``s`` is."""
    failed = False
    while chunk:
        failed = failed or not s
        c = chunk[0]
        if c == 0x5B:  # [class]
            rune = 0
            if not failed:
                rune, width = _decode_rune(s)
                s = s[width:]
            chunk = chunk[1:]
            negated = chunk[:1] == b"^"
            if negated:
                chunk = chunk[1:]
            matched = False
            ranges = 0
            while True:
                if chunk[:1] == b"]" and ranges > 0:
                    chunk = chunk[1:]
                    break
                lo, chunk = _get_esc(chunk)
                hi = lo
                if chunk[0] == 0x2D:
                    hi, chunk = _get_esc(chunk[1:])
                matched = matched or lo <= rune <= hi
                ranges += 1
            failed = failed or matched == negated
        elif c == 0x3F:  # ?
            if not failed:
                failed = s[0] == 0x2F
                s = s[_decode_rune(s)[1] :]
            chunk = chunk[1:]
        else:
            if c == 0x5C:
                chunk = chunk[1:]
                if not chunk:
                    raise _BadPattern
            if not failed:
                failed = chunk[0] != s[0]
                s = s[1:]
            chunk = chunk[1:]
    return None if failed else s


def _go_match(pattern: bytes, name: bytes) -> bool:
    """path/filepath.Match on bytes, as Go runs it; raises _BadPattern where Go returns the error.

    Byte-exact matters for non-ASCII names: a star skips *bytes*, so a chunk may start inside a
    multi-byte character (``*??.yaml`` matches ``€.yaml``), which no regular expression over
    characters reproduces.
    """
    while pattern:
        star, chunk, pattern = _scan_chunk(pattern)
        if star and not chunk:
            return b"/" not in name
        rest = _match_chunk(chunk, name)
        if rest is not None and (not rest or pattern):
            name = rest
            continue
        if star:
            for i in range(len(name)):
                if name[i] == 0x2F:
                    break
                rest = _match_chunk(chunk, name[i + 1 :])
                if rest is not None:
                    if not pattern and rest:
                        continue
                    name = rest
                    break
            else:
                return False
            continue
        return False
    return not name


def _is_bad(pattern: bytes) -> bool:
    """Whether Go's Match errors: it does for every name or for none (the chunk is always read to
    its end), and a malformed pattern never matches anything."""
    while pattern:
        _, chunk, pattern = _scan_chunk(pattern)
        try:
            _match_chunk(chunk, b"")
        except _BadPattern:
            return True
    return False


def _regex(pattern: str) -> str:
    """A regular expression that agrees with filepath.Match on ASCII names (for a valid pattern).

    Go matches star-separated fixed-length chunks leftmost first, which is full backtracking's
    answer for such patterns; only the byte-wise star differs, and not on ASCII names.
    """
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        i += 1
        if c == "*":
            if not out or out[-1] != ".*":
                out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "\\":
            out.append(re.escape(pattern[i]))
            i += 1
        elif c == "[":
            negated = pattern[i] == "^"
            i += int(negated)
            items: list[str] = []
            first = True
            while first or pattern[i] != "]":
                first = False
                if pattern[i] == "\\":
                    i += 1
                lo = hi = pattern[i]
                i += 1
                if pattern[i] == "-":
                    if pattern[i + 1] == "\\":
                        i += 1
                    hi = pattern[i + 1]
                    i += 2
                if lo <= hi:  # Go: an inverted range matches nothing; Python would refuse it
                    items.append(f"{re.escape(lo)}-{re.escape(hi)}")
            i += 1
            body = "".join(items)
            out.append(f"[^{body}]" if negated and body else "." if negated else f"[{body}]" if body else "(?!)")
        else:
            out.append(re.escape(c))
    return "".join(out)


_META = re.compile(r"[*?\[\\]")


class _Name:
    """One path element (a valid glob) matched the way filepath.Match matches it."""

    __slots__ = ("literal", "raw", "regex", "regex_text")

    def __init__(self, pattern: str) -> None:
        self.raw = pattern.encode("utf-8", "surrogateescape")
        self.literal = None if _META.search(pattern) else pattern
        self.regex_text = re.escape(pattern) if self.literal is not None else _regex(pattern)
        self.regex = None if self.literal is not None else re.compile(self.regex_text, re.DOTALL)

    def match(self, name: str) -> bool:
        if self.literal is not None:
            return name == self.literal  # byte equality: names are surrogate-escaped like the pattern
        if name.isascii():
            assert self.regex is not None
            return self.regex.fullmatch(name) is not None
        return _go_match(self.raw, name.encode("utf-8", "surrogateescape"))


def _bad(pattern: str) -> bool:
    return _is_bad(pattern.encode("utf-8", "surrogateescape"))


# --- rules --------------------------------------------------------------------------------------
# A rule's state in a directory: _PENDING until the walk is inside its domain, else an int (see
# _PathRule), and after a descent also _STICKY (it matches this directory, hence every path below
# it: a gitignore pattern that matches a directory matches all its descendants) or _DEAD.
_PENDING: Final = -1
_STICKY: Final = -2
_DEAD: Final = -3


class _NameRule:
    """Patterns without a slash (go-git's simpleNameMatch): a path matches when any element below
    the domain matches, except that a dir-only pattern cannot match a file's own name.

    Neighbouring patterns with the same domain and the same verdict share one rule (any of them
    matching decides the same way), so the defaults cost one regular expression per name.
    """

    __slots__ = ("_any_regex", "_file_regex", "domain", "exclude", "members")

    def __init__(self, domain: tuple[str, ...], exclude: bool) -> None:
        self.domain = domain
        self.exclude = exclude
        self.members: list[tuple[_Name, bool]] = []  # (name, dir_only)
        self._any_regex: re.Pattern[str] | None = None
        self._file_regex: re.Pattern[str] | None = None

    def seal(self) -> None:
        def join(members: list[_Name]) -> re.Pattern[str] | None:
            if not members:
                return None
            return re.compile("|".join(f"(?:{m.regex_text})" for m in members), re.DOTALL)

        self._any_regex = join([m for m, _ in self.members])
        self._file_regex = join([m for m, dir_only in self.members if not dir_only])

    def initial(self) -> int:
        return 0

    def match_name(self, name: str, is_dir: bool) -> bool:
        if name.isascii():
            regex = self._any_regex if is_dir else self._file_regex
            return regex is not None and regex.fullmatch(name) is not None
        return any(m.match(name) for m, dir_only in self.members if is_dir or not dir_only)

    def entry(self, state: int, name: str, is_dir: bool) -> bool:
        return self.match_name(name, is_dir)

    def descend(self, state: int, name: str) -> int:
        return _STICKY if self.match_name(name, True) else state


class _PathRule:
    """A pattern with a slash (go-git's globMatch), run one path element at a time.

    The state is ``2 * k + traversing``: waiting for a path element to match element ``k``,
    after a ``**`` (traversing: elements that do not match are skipped) or not. go-git's
    reading, kept as is: the pattern matches a *prefix* of the path; ``**`` takes the first
    element that matches (no backtracking, so ``a/**/b/c`` misses ``a/b/x/b/c``); an empty element
    (``a//b``) cancels a pending ``**``; a trailing ``/**`` also matches the directory itself and a
    file of that name; an element that merely contains ``**`` (``a/b**``) never matches.
    """

    __slots__ = ("_first", "dir_only", "domain", "elements", "exclude")

    def __init__(self, domain: tuple[str, ...], exclude: bool, dir_only: bool, elements: list[str]) -> None:
        self.domain = domain
        self.exclude = exclude
        self.dir_only = dir_only
        self.elements: list[_Name | str] = [e if e in ("", "**") else _Name(e) for e in elements]
        self._first = self._advance(0, matched=False)

    def initial(self) -> int:
        return self._first

    def _advance(self, k: int, *, matched: bool, traversing: bool = False) -> int:
        """Consume control elements from ``k``: the next waiting state, or _STICKY/_DEAD when the
        pattern ends (go-git returns ``matched`` there)."""
        last = len(self.elements) - 1
        while k <= last:
            element = self.elements[k]
            if element == "":
                traversing = False
            elif element == "**":
                if k == last:
                    break
                traversing = True
            else:
                return 2 * k + traversing
            k += 1
        return _STICKY if matched else _DEAD

    def _step(self, state: int, name: str) -> int:
        k, traversing = divmod(state, 2)
        element = self.elements[k]
        assert isinstance(element, _Name)
        if element.match(name):
            return self._advance(k + 1, matched=True)
        return state if traversing else _DEAD

    def entry(self, state: int, name: str, is_dir: bool) -> bool:
        # The path ends with this name: only a finished pattern matches, and a dir-only one not a file.
        return self._step(state, name) == _STICKY and (is_dir or not self.dir_only)

    def descend(self, state: int, name: str) -> int:
        return self._step(state, name)


_Rule = _NameRule | _PathRule


@dataclass(frozen=True)
class _Context:
    """The rules still able to decide something below one directory, highest priority first, and
    the verdict when none does (True: excluded; an ancestor matched by a sticky rule)."""

    live: tuple[tuple[_Rule, int], ...]
    excluded: bool
    depth: int

    def verdict(self, name: str, is_dir: bool) -> bool:
        for rule, state in self.live:
            if state != _PENDING and rule.entry(state, name, is_dir):
                return rule.exclude
        return self.excluded

    def child(self, name: str) -> _Context:
        live: list[tuple[_Rule, int]] = []
        excluded = self.excluded
        depth = self.depth
        for rule, state in self.live:
            if state == _PENDING:
                if rule.domain[depth] != name:
                    continue
                live.append((rule, rule.initial() if len(rule.domain) == depth + 1 else _PENDING))
                continue
            after = rule.descend(state, name)
            if after == _STICKY:
                excluded = rule.exclude
                break
            if after != _DEAD:
                live.append((rule, after))
        return _Context(tuple(live), excluded, depth + 1)

    def settled(self) -> bool:
        """Excluded for good: no rule that could bring anything back below this directory."""
        return self.excluded and all(rule.exclude for rule, _ in self.live)


# --- reading patterns ---------------------------------------------------------------------------
def _scan_lines(data: bytes) -> Iterator[tuple[int, str | None]]:
    """bufio.Scanner with ScanLines: (line number, text), text None for a line too long to scan
    (the scan stops there)."""
    start = 0
    number = 0
    while start < len(data):
        end = data.find(b"\n", start)
        stop = len(data) if end < 0 else end
        number += 1
        if stop - start >= _MAX_LINE:
            yield number, None
            return
        line = data[start:stop]
        if line.endswith(b"\r"):
            line = line[:-1]
        yield number, line.decode("utf-8", "surrogateescape")
        if end < 0:
            return
        start = end + 1


@dataclass(frozen=True)
class _Line:
    file: str
    number: int
    text: str
    domain: tuple[str, ...]


def _read_patterns(data: bytes, file: str, domain: tuple[str, ...], problems: list[IgnoreProblem]) -> list[_Line]:
    """sourceignore.ReadPatterns: every line but comments (``#`` first) and blank ones."""
    lines: list[_Line] = []
    for number, text in _scan_lines(data):
        if text is None:
            problems.append(
                IgnoreProblem(
                    file, number, "", f"line longer than {_MAX_LINE - 1} bytes: Flux stops reading the file here"
                )
            )
            break
        if text.startswith("#") or not text.strip(_GO_SPACE):
            continue
        lines.append(_Line(file, number, text, domain))
    return lines


def _parse(line: _Line) -> tuple[bool, bool, list[str]] | str:
    """gitignore.ParsePattern: (exclude, dir_only, elements), or why the pattern can never match."""
    text = line.text
    inclusion = text.startswith("!")
    if inclusion:
        text = text[1:]
    # Trailing spaces go unless the very last one is escaped; "a\ " keeps all of them.
    if not text.endswith("\\ "):
        text = text.rstrip(" ")
    dir_only = text.endswith("/")
    if dir_only:
        text = text[:-1]
    elements = text.split("/")
    if len(elements) == 1:
        if text == "":
            return "empty pattern: it matches nothing"
        if _bad(text):
            return f"bad glob {text!r}: Go's filepath.Match rejects it, so the pattern matches nothing"
        return not inclusion, dir_only, elements
    for element in elements:
        if element in ("", "**"):
            continue
        if "**" in element:
            return f"{element!r}: in a pattern with a slash, '**' only works as a whole element; this matches nothing"
        if _bad(element):
            return f"bad glob {element!r}: Go's filepath.Match rejects it, so the pattern matches nothing"
    if all(element in ("", "**") for element in elements):
        return "no name in the pattern: go-git matches nothing with it"
    return not inclusion, dir_only, elements


def _compile(lines: Sequence[_Line], problems: list[IgnoreProblem]) -> list[_Rule]:
    """The rules, lowest priority first; neighbouring slash-less patterns merged (see _NameRule)."""
    rules: list[_Rule] = []
    for line in lines:
        parsed = _parse(line)
        if isinstance(parsed, str):
            problems.append(IgnoreProblem(line.file, line.number, line.text, parsed))
            continue
        exclude, dir_only, elements = parsed
        # "**/name" is "name": the ** takes the first element matching name, as simpleNameMatch does.
        if len(elements) == 2 and elements[0] == "**" and elements[1] != "" and "**" not in elements[1]:
            elements = elements[1:]
        if len(elements) == 1:
            last = rules[-1] if rules else None
            if not (isinstance(last, _NameRule) and last.domain == line.domain and last.exclude == exclude):
                last = _NameRule(line.domain, exclude)
                rules.append(last)
            last.members.append((_Name(elements[0]), dir_only))
        else:
            rules.append(_PathRule(line.domain, exclude, dir_only, elements))
    for rule in rules:
        if isinstance(rule, _NameRule):
            rule.seal()
    return rules


# --- the checkout -------------------------------------------------------------------------------
_FILE: Final = 0
_DIR: Final = 1
_OTHER: Final = 2  # symlinks (to anything), sockets, fifos: never in the archive

_Listing = list[tuple[str, int]]


def _list(path: str) -> _Listing:
    """A directory's entries in filepath.Walk's and os.ReadDir's order (byte order of the names),
    typed by lstat: a symlinked directory is not a directory to either of them."""
    with os.scandir(path) as scan:
        entries = [
            (
                entry.name,
                _DIR
                if entry.is_dir(follow_symlinks=False)
                else _FILE
                if entry.is_file(follow_symlinks=False)
                else _OTHER,
            )
            for entry in scan
        ]
    if "".join(name for name, _ in entries).isascii():
        entries.sort()
    else:
        entries.sort(key=lambda item: os.fsencode(item[0]))
    return entries


def _read_ignore_file(path: str, kind: int, file: str, problems: list[IgnoreProblem], root: str) -> bytes:
    """sourceignore.ReadIgnoreFile: os.Open follows a symlink; a missing target is no file; a
    directory opens but yields nothing; any other failure fails the whole reconcile in Flux.
    A symlink out of the checkout is not followed: phoebe never reads outside it."""
    if kind != _FILE and not os.path.realpath(path).startswith(os.path.realpath(root) + os.sep):
        problems.append(
            IgnoreProblem(
                file, 0, "", "a symlink out of the checkout: phoebe does not read it (source-controller would)"
            )
        )
        return b""
    if kind != _FILE:
        try:
            mode = os.stat(path).st_mode
        except FileNotFoundError:
            return b""
        except OSError as error:
            problems.append(IgnoreProblem(file, 0, "", f"Flux cannot read it ({error.strerror}): the artifact fails"))
            return b""
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            problems.append(IgnoreProblem(file, 0, "", "not a regular file: Flux would block reading it"))
            return b""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except (FileNotFoundError, IsADirectoryError):
        return b""
    except OSError as error:
        problems.append(IgnoreProblem(file, 0, "", f"Flux cannot read it ({error.strerror}): the artifact fails"))
        return b""


class SourceIgnore:
    """The ignore rules of one GitRepository (or extracted OCIRepository) artifact.

    ``ignored(path, is_dir)`` is Go's matcher verdict for one path; ``included_files()`` is the
    artifact's file list (the verdicts, plus the walk's own rule that only regular files go in).
    ``problems`` lists patterns Flux silently never matches, and files it cannot read.
    ``uses_default_exclusions`` says whether the default exclusions (images, CI configs, ...) apply:
    they do only when there is no pattern at all.
    """

    def __init__(self, root: Path, lines: Sequence[_Line], listings: dict[str, _Listing]) -> None:
        self.root = root
        self.problems: list[IgnoreProblem] = []
        self.uses_default_exclusions = not lines
        defaults = [_Line("", 0, text, ()) for text in VCS_PATTERNS]
        if not lines:
            defaults += [_Line("", 0, text, ()) for text in DEFAULT_PATTERNS]
        rules = _compile([*defaults, *lines], self.problems)
        live = tuple((rule, rule.initial() if not rule.domain else _PENDING) for rule in reversed(rules))
        self._root_context = _Context(live, excluded=False, depth=0)
        self._contexts: dict[str, _Context] = {"": self._root_context}
        self._listings = listings

    @classmethod
    def for_checkout(cls, root: Path, spec_ignore: str | None = None) -> SourceIgnore:
        """Load every ``.sourceignore`` below ``root`` (as LoadIgnorePatterns does) and append the
        GitRepository's ``spec.ignore``."""
        root = Path(root).resolve()
        problems: list[IgnoreProblem] = []
        listings: dict[str, _Listing] = {}
        lines: list[_Line] = []

        def load(relative: str, domain: tuple[str, ...]) -> None:
            path = os.path.join(root, relative) if relative else str(root)
            try:
                listing = _list(path)
            except OSError as error:
                problems.append(
                    IgnoreProblem(relative or ".", 0, "", f"Flux cannot list it ({error.strerror}): the artifact fails")
                )
                listing = []
            listings[relative] = listing
            prefix = f"{relative}/" if relative else ""
            for name, kind in listing:
                if name == IGNORE_FILE:
                    file = prefix + name
                    data = _read_ignore_file(os.path.join(path, name), kind, file, problems, str(root))
                    lines.extend(_read_patterns(data, file, domain, problems))
            for name, kind in listing:
                # LoadIgnorePatterns reads no .sourceignore inside a directory named .git (the walk
                # still enters it, lazily listed below).
                if kind == _DIR and name != ".git":
                    load(prefix + name, (*domain, name))

        load("", ())
        if spec_ignore is not None:
            lines.extend(_read_patterns(spec_ignore.encode("utf-8", "surrogateescape"), SPEC_IGNORE, (), problems))
        ignore = cls(root, lines, listings)
        ignore.problems[:0] = problems
        return ignore

    def _context(self, directory: str) -> _Context:
        context = self._contexts.get(directory)
        if context is None:
            parent, _, name = directory.rpartition("/")
            context = self._context(parent).child(name)
            self._contexts[directory] = context
        return context

    def ignored(self, relative: str, is_dir: bool) -> bool:
        """Whether source-controller's filter leaves this path out (``relative``: posix, from the root).

        This is the matcher alone: a path that is kept can still be missing from the artifact
        when it is a symlink (see ``included_files``).
        """
        path = PurePosixPath(relative)
        if path.is_absolute() or ".." in path.parts:
            raise ValueError(f"not a path inside the checkout: {relative!r}")
        parts = [part for part in path.parts if part != "."]
        if not parts:
            return False  # the root itself is the domain: nothing matches it
        return self._context("/".join(parts[:-1])).verdict(parts[-1], is_dir)

    def included_files(self) -> list[str]:
        """Every file the artifact holds, posix paths relative to the root, in archive order."""
        files: list[str] = []
        self._walk("", self._root_context, files)
        return files

    def _listing(self, relative: str) -> _Listing:
        listing = self._listings.get(relative)
        if listing is None:
            try:
                listing = _list(os.path.join(self.root, relative))
            except OSError:
                listing = []  # Flux's walk would fail; for_checkout reported the unreadable ones
            self._listings[relative] = listing
        return listing

    def _walk(self, relative: str, context: _Context, files: list[str]) -> None:
        prefix = f"{relative}/" if relative else ""
        for name, kind in self._listing(relative):
            if kind == _FILE:
                if not context.verdict(name, False):
                    files.append(prefix + name)
            elif kind == _DIR:
                # No SkipDir in Go: the walk enters a filtered directory too, unless nothing below
                # it can come back (then every verdict below would be "excluded" anyway).
                child = context.child(name)
                if not child.settled():
                    self._walk(prefix + name, child, files)
