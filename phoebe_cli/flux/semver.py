"""Chart versions as source-controller picks them: Masterminds semver v3 (v3.4.0) constraints, and
fluxcd/pkg/version's parsing of candidates (three dot-separated parts, then Masterminds' loose,
coercing parse).

The rules kept from Masterminds that matter for ranges:

- a constraint is ``||``-separated alternatives of comparators joined by spaces or commas;
  ``1.2 - 1.4.5`` is ``>= 1.2, <= 1.4.5``; ``x``, ``X`` and ``*`` are wildcards;
- a version with a prerelease (``1.2.3-rc.1``) matches an alternative only when one of its
  comparators names a prerelease itself (``>= 1.2.3-0``);
- ``=`` (or no operator) with a wildcard or missing part is a tilde range, ``^0.x`` pins the
  minor and ``^0.0.x`` the patch, as Masterminds' code does (not as npm documents).

Source-controller: an exact string match of a candidate wins first; an empty version or ``*``
is the latest stable; otherwise the highest version the constraint accepts (ties broken by the
chart's creation time, newest first). Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import total_ordering

__all__ = ["Constraint", "InvalidConstraint", "Version", "parse_version", "pick_version"]

_LOOSE = re.compile(
    r"^v?([0-9]+)(\.[0-9]+)?(\.[0-9]+)?(-([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?(\+([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?$"
)
_CV = (
    r"v?([0-9|x|X|\*]+)(\.[0-9|x|X|\*]+)?(\.[0-9|x|X|\*]+)?"
    r"(-([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?"
    r"(\+([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?"
)
_OPS = r"=||!=|>|<|>=|=>|<=|=<|~|~>|\^"
_CONSTRAINT = re.compile(rf"^\s*({_OPS})\s*({_CV})\s*$")
_RANGE = re.compile(rf"\s*({_CV})\s+-\s+({_CV})\s*")
_FIND = re.compile(rf"({_OPS})\s*({_CV})")
_VALID = re.compile(rf"^(\s*({_OPS})\s*({_CV})\s*)((?:\s+|,\s*)({_OPS})\s*({_CV})\s*)*$")


class InvalidConstraint(ValueError):
    """The version constraint does not parse (Masterminds' "improper constraint")."""


@total_ordering
@dataclass(frozen=True, eq=False)
class Version:
    major: int
    minor: int
    patch: int
    pre: str = ""
    metadata: str = ""
    original: str = ""

    def _key(self) -> tuple[int, int, int]:
        return (self.major, self.minor, self.patch)

    def compare(self, other: Version) -> int:
        """Masterminds' Compare: build metadata is ignored, a prerelease sorts before its release."""
        if self._key() != other._key():
            return -1 if self._key() < other._key() else 1
        if self.pre == other.pre:
            return 0
        if not self.pre:
            return 1
        if not other.pre:
            return -1
        return _compare_prerelease(self.pre, other.pre)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Version) and self.compare(other) == 0

    def __lt__(self, other: Version) -> bool:
        return self.compare(other) < 0

    def __hash__(self) -> int:
        return hash((self._key(), self.pre))

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.pre:
            text += f"-{self.pre}"
        if self.metadata:
            text += f"+{self.metadata}"
        return text


def _compare_prerelease(left: str, right: str) -> int:
    lparts, rparts = left.split("."), right.split(".")
    for index in range(max(len(lparts), len(rparts))):
        a = lparts[index] if index < len(lparts) else ""
        b = rparts[index] if index < len(rparts) else ""
        result = _compare_pre_part(a, b)
        if result:
            return result
    return 0


def _compare_pre_part(a: str, b: str) -> int:
    if a == b:
        return 0
    if a == "":
        return -1 if b != "" else 1
    if b == "":
        return 1
    a_num, b_num = a.isdigit(), b.isdigit()
    if not a_num and not b_num:
        return 1 if a > b else -1
    if not b_num:
        return -1  # a number sorts before a string
    if not a_num:
        return 1
    return 1 if int(a) > int(b) else -1


def _valid_prerelease(pre: str) -> bool:
    return all(not (part.isdigit() and len(part) > 1 and part[0] == "0") for part in pre.split("."))


def loose_version(text: str) -> Version | None:
    """Masterminds' NewVersion (coercing): ``v1``, ``1.2`` and ``1.2.3-rc.1+b`` all parse."""
    match = _LOOSE.match(text)
    if match is None:
        return None
    pre = match.group(5) or ""
    if pre and not _valid_prerelease(pre):
        return None
    return Version(
        int(match.group(1)),
        int((match.group(2) or ".0")[1:]),
        int((match.group(3) or ".0")[1:]),
        pre,
        match.group(8) or "",
        text,
    )


def parse_version(text: str) -> Version | None:
    """A candidate chart version as fluxcd/pkg/version.ParseVersion reads it: three dot-separated
    parts, else not a version (skipped, never an error)."""
    if len(text.split(".", 2)) != 3:
        return None
    return loose_version(text)


def _is_x(part: str) -> bool:
    return part in ("x", "X", "*")


@dataclass(frozen=True)
class _Comparator:
    op: str
    con: Version
    dirty: bool = False
    minor_dirty: bool = False
    patch_dirty: bool = False

    def check(self, v: Version, include_pre: bool) -> bool:
        if v.pre and not include_pre:
            return False
        c = self.con
        op = self.op
        if op in ("", "="):
            if self.dirty:
                return self._tilde(v)
            return v.compare(c) == 0
        if op == "!=":
            if self.dirty:
                if c.major != v.major:
                    return True
                if c.minor != v.minor and not self.minor_dirty:
                    return True
                if self.minor_dirty:
                    return False
                if c.patch != v.patch and not self.patch_dirty:
                    return True
                if self.patch_dirty:
                    if v.pre or c.pre:
                        return _compare_prerelease(v.pre, c.pre) != 0
                    return False
            return v.compare(c) != 0
        if op == ">":
            if not self.dirty:
                return v.compare(c) == 1
            if v.major != c.major:
                return v.major > c.major
            if self.minor_dirty:
                return False
            if self.patch_dirty:
                return v.minor > c.minor
            return v.compare(c) == 1
        if op == "<":
            return v.compare(c) < 0
        if op in (">=", "=>"):
            return v.compare(c) >= 0
        if op in ("<=", "=<"):
            if not self.dirty:
                return v.compare(c) <= 0
            if v.major > c.major:
                return False
            return not (v.major == c.major and v.minor > c.minor and not self.minor_dirty)
        if op in ("~", "~>"):
            return self._tilde(v)
        return self._caret(v)

    def _tilde(self, v: Version) -> bool:
        c = self.con
        if v.compare(c) < 0:
            return False
        if c.major == 0 and c.minor == 0 and c.patch == 0 and not self.minor_dirty and not self.patch_dirty:
            return True
        if v.major != c.major:
            return False
        return not (v.minor != c.minor and not self.minor_dirty)

    def _caret(self, v: Version) -> bool:
        c = self.con
        if v.compare(c) < 0:
            return False
        if c.major > 0 or self.minor_dirty:
            return v.major == c.major
        if v.major > 0:
            return False
        if c.minor > 0 or self.patch_dirty:
            return v.minor == c.minor
        if v.minor > 0:
            return False
        return c.patch == v.patch


def _comparator(text: str) -> _Comparator:
    match = _CONSTRAINT.match(text)
    if match is None:
        raise InvalidConstraint(f"improper constraint: {text}")
    op = match.group(1)
    major, minor, patch = match.group(3), match.group(4) or "", match.group(5) or ""
    pre_part = match.group(6) or ""
    dirty = minor_dirty = patch_dirty = False
    if _is_x(major):
        ver, dirty = f"0.0.0{pre_part}", True
    elif _is_x(minor[1:]) or minor == "":
        ver, dirty, minor_dirty = f"{major}.0.0{pre_part}", True, True
    elif _is_x(patch[1:]) or patch == "":
        ver, dirty, patch_dirty = f"{major}{minor}.0{pre_part}", True, True
    else:
        ver = match.group(2)
    con = loose_version(ver)
    if con is None:
        raise InvalidConstraint(f"improper constraint: {text}")
    return _Comparator(op, con, dirty, minor_dirty, patch_dirty)


@dataclass(frozen=True)
class Constraint:
    text: str
    alternatives: tuple[tuple[_Comparator, ...], ...]
    has_pre: tuple[bool, ...]

    @classmethod
    def parse(cls, text: str) -> Constraint:
        rewritten = text
        for match in _RANGE.finditer(text):
            rewritten = rewritten.replace(match.group(0), f">= {match.group(1)}, <= {match.group(11)} ", 1)
        alternatives: list[tuple[_Comparator, ...]] = []
        has_pre: list[bool] = []
        for alternative in rewritten.split("||"):
            if not _VALID.match(alternative):
                raise InvalidConstraint(f"improper constraint: {alternative.strip() or text}")
            found = [m.group(0) for m in _FIND.finditer(alternative)] or [alternative]
            comparators = tuple(_comparator(part) for part in found)
            alternatives.append(comparators)
            has_pre.append(any(c.con.pre for c in comparators))
        return cls(text, tuple(alternatives), tuple(has_pre))

    def check(self, version: Version) -> bool:
        return any(
            all(c.check(version, pre) for c in alternative)
            for alternative, pre in zip(self.alternatives, self.has_pre, strict=True)
        )


def pick_version(wanted: str, candidates: Iterable[tuple[str, str]]) -> str | None:
    """source-controller's choice among a chart's versions, given as (version, created) pairs:
    the exact string first, else the highest the constraint accepts (``""``/``*``: the latest
    stable), the newest ``created`` first among equal versions. None when nothing matches;
    InvalidConstraint when ``wanted`` is no constraint."""
    listed = list(candidates)
    if wanted:
        for version, _ in listed:
            if version == wanted:
                return version
    constraint = Constraint.parse("*" if wanted in ("", "*") else wanted)
    matched: list[tuple[Version, str, str]] = []
    for version, created in listed:
        parsed = parse_version(version)
        if parsed is not None and constraint.check(parsed):
            matched.append((parsed, created, version))
    if not matched:
        return None
    best = matched[0]
    for entry in matched[1:]:
        order = entry[0].compare(best[0])
        if order > 0 or (order == 0 and entry[1] > best[1]):
            best = entry
    return best[2]
