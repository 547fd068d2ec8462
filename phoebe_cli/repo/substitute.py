"""Flux's ``spec.postBuild`` variable substitution, in pure Python and faithful to the Go code.

kustomize-controller runs ``SubstituteVariables`` (github.com/fluxcd/pkg/kustomize, kustomize_varsub.go) on
every object a Kustomization builds: it serialises the object to YAML, expands ``${...}`` expressions in the
text with github.com/fluxcd/pkg/envsubst (a fork of drone/envsubst) and parses the result back.  This module
replays that, quirks included:

* the scanner and parser are a line-by-line port of envsubst's ``parse/scan.go`` and ``parse/parse.go``, on
  UTF-8 bytes like Go's (only the text between expressions and the plain ``${NAME}`` / ``${NAME:=word}`` forms
  are read with regular expressions, which give the same tree); every difference checked against the Go code
  has been fixed, down to Go stepping back by the wrong width after ``${v:`` + a multi-byte character;
* the functions (``funcs.go``) work like Go's on bytes where Go works on bytes: ``${#v}`` is the UTF-8 length,
  ``${v:n:len}`` slices bytes, ``# ## % %%`` match byte prefixes with envsubst's own ``path.Match`` (where ``*``
  also matches ``/``) and the ``%`` forms reverse the pattern rune by rune, so ``${v%[0-9]}`` never matches;
  a byte slice that cuts a character in two is kept as surrogate escapes and later fails to parse as YAML,
  as it fails in Go; a slice whose end overflows int64 (``${v:1:9223372036854775807}``) panics in Go and is an
  error here;
* ``${v^^}`` etc. use Go's simple case mapping (``ß`` stays ``ß``);
* operators Go does not know are what Go makes of them: ``${v:?x}`` and ``${v:+x}`` are defaults like
  ``${v:-x}``; ``${v-x}``, ``${v+x}`` and ``${v?x}`` are "missing closing brace" errors; ``$v`` is plain text;
  ``$$`` is a literal ``$`` outside and inside expressions.

Nothing here reads files or talks to a cluster: ConfigMaps and Secrets come from a ``lookup`` callable.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from phoebe_cli.repo.goyaml import V2Dumper as _Dumper
from phoebe_cli.repo.goyaml import V2Loader as _Loader

__all__ = [
    "DISABLED_VALUE",
    "SUBSTITUTE_KEY",
    "VAR_NAME",
    "SubstitutionError",
    "VariableSource",
    "collect_variables",
    "expand",
    "is_disabled",
    "references",
    "substitute_always",
    "substitute_object",
    "unresolved",
    "validate_names",
    "variable_sources",
]

SUBSTITUTE_KEY = "kustomize.toolkit.fluxcd.io/substitute"
DISABLED_VALUE = "disabled"

# kustomize_varsub.go: "^[_[:alpha:]][_[:alpha:][:digit:]]*$". RE2's POSIX classes are ASCII-only, and Go's `$`
# (no multi-line flag) is the end of the text, where Python's `$` would also accept a trailing newline.
VAR_NAME_GO = "^[_[:alpha:]][_[:alpha:][:digit:]]*$"
VAR_NAME = re.compile(r"^[_A-Za-z][_A-Za-z0-9]*\Z")


class SubstitutionError(Exception):
    """Substitution cannot be done; the message says which variable, expression or source is at fault."""

    def __init__(self, message: str, *, variable: str | None = None, expression: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.variable = variable
        self.expression = expression

    def __str__(self) -> str:
        return self.message


# ---------------------------------------------------------------------------------------------------------
# Parse tree (parse/node.go). Text nodes are plain strings; a list node is a Python list.


@dataclass(frozen=True, slots=True)
class _Func:
    """``${param<name>args...}``; ``src`` is the expression as written (for messages)."""

    param: str
    name: str = ""
    args: tuple[_Node, ...] = ()
    src: str = field(default="", compare=False)


_Node = str | _Func


class _ParseError(Exception):
    pass


# Go's error texts (parse/parse.go)
_BAD_SUBSTITUTION = "bad substitution"
_MISSING_CLOSING_BRACE = "missing closing brace"
_PARSE_VARIABLE_NAME = "unable to parse variable name"
_PARSE_FUNC_SUBSTITUTION = "unable to parse substitution within function"
_PARSE_DEFAULT_FUNCTION = "unable to parse default function"

# ---------------------------------------------------------------------------------------------------------
# Scanner (parse/scan.go), on the UTF-8 bytes of the text as in Go: positions and widths are in bytes, which
# shows where Go steps back by the width of the wrong rune (``${v:é}`` is a "bad substitution", as in Go).

_EOF = 0  # Go's eof is rune(0): a NUL in the text ends it, as in Go
_T_ILLEGAL, _T_EOF, _T_IDENT, _T_LBRACK, _T_RBRACK = range(5)
_SCAN_IDENT, _SCAN_LBRACK, _SCAN_RBRACK, _SCAN_ESCAPE = 1, 2, 4, 8
_DOLLAR, _BACKSLASH = 1, 2
_ESCAPE_ALL = _DOLLAR | _BACKSLASH
_R_DOLLAR, _R_LBRACE, _R_RBRACE, _R_BACKSLASH, _R_SLASH = map(ord, "${}\\/")
_R_COLON, _R_EQUAL, _R_HASH, _R_PERCENT, _R_COMMA, _R_CARET, _R_UNDERSCORE = map(ord, ":=#%,^_")
_DEFAULT_OPERATORS = frozenset(map(ord, "=-?+"))
_REPLACE_OPERATORS = frozenset(map(ord, "/#%"))

_Accept = Callable[[int, int], bool]


def _accept_ident(r: int, i: int) -> bool:  # unicode.IsLetter || unicode.IsDigit || '_'
    c = chr(r)
    return c.isalpha() or c.isdecimal() or r == _R_UNDERSCORE


def _accept_colon(r: int, i: int) -> bool:
    return r == _R_COLON


def _accept_one_hash(r: int, i: int) -> bool:
    return r == _R_HASH and i == 1


def _accept_not_closing(r: int, i: int) -> bool:
    return r != _R_RBRACE


def _accept_hash_func(r: int, i: int) -> bool:
    return r == _R_HASH and i < 3


def _accept_percent_func(r: int, i: int) -> bool:
    return r == _R_PERCENT and i < 3


def _accept_default_func(r: int, i: int) -> bool:
    return (i == 1 and r == _R_COLON) or (i == 2 and r in _DEFAULT_OPERATORS)


def _accept_replace_func(r: int, i: int) -> bool:
    return (i == 1 and r == _R_SLASH) or (i == 2 and r in _REPLACE_OPERATORS)


def _accept_one_equal(r: int, i: int) -> bool:
    return i == 1 and r == _R_EQUAL


def _accept_one_colon(r: int, i: int) -> bool:
    return i == 1 and r == _R_COLON


def _reject_colon_close(r: int, i: int) -> bool:
    return r not in (_R_COLON, _R_RBRACE)


def _accept_slash(r: int, i: int) -> bool:
    return r == _R_SLASH


def _accept_not_slash(r: int, i: int) -> bool:
    return r != _R_SLASH


def _accept_casing_func(r: int, i: int) -> bool:
    return r in (_R_COMMA, _R_CARET) and i < 3


class _Parser:
    """The scanner and the expression parser of envsubst, one object as in Go's ``Tree``."""

    __slots__ = ("accept", "buf", "escape", "mode", "pos", "start", "width")

    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.pos = 0
        self.start = 0
        self.width = 0
        self.mode = 0
        self.escape = 0
        self.accept: _Accept = _accept_not_closing

    # -- scanner ------------------------------------------------------------------------------------------

    def read(self) -> int:
        pos = self.pos
        if pos >= len(self.buf):
            self.width = 0
            return _EOF
        r = self.buf[pos]
        if r < 0x80:
            self.width = 1
        else:
            r, self.width = _decode_rune(self.buf[pos : pos + 4])
        self.pos = pos + self.width
        return r

    def unread(self) -> None:
        self.pos -= self.width

    def skip(self) -> None:  # drop the escape character just read from the buffer
        self.buf = self.buf[: self.pos - 1] + self.buf[self.pos :]

    def peek(self) -> int:
        r = self.read()
        self.unread()
        return r

    def string(self) -> str:
        return _s(self.buf[self.start : self.pos])

    def scan(self) -> int:
        self.start = self.pos
        r = self.read()
        if r == _EOF:
            return _T_EOF
        if self.scan_lbrack(r):
            return _T_LBRACK
        if self.scan_rbrack(r):
            return _T_RBRACK
        if self.scan_ident(r):
            return _T_IDENT
        return _T_ILLEGAL

    def scan_ident(self, r: int) -> bool:
        if not self.mode & _SCAN_IDENT:
            return False
        if self.scan_escaped(r):
            self.skip()
        elif not self.accept(r, self.pos - self.start):
            return False
        while True:
            r = self.read()
            if r == _EOF:
                self.unread()
                break
            if self.scan_lbrack(r):
                self.unread()
                self.unread()
                break
            if self.scan_escaped(r):
                self.skip()
                continue
            if not self.accept(r, self.pos - self.start):
                self.unread()
                break
        return True

    def scan_lbrack(self, r: int) -> bool:
        if not self.mode & _SCAN_LBRACK:
            return False
        if r == _R_DOLLAR:
            if self.read() == _R_LBRACE:
                return True
            self.unread()
        return False

    def scan_rbrack(self, r: int) -> bool:
        if not self.mode & _SCAN_RBRACK:
            return False
        return r == _R_RBRACE

    def scan_escaped(self, r: int) -> bool:
        if not self.mode & _SCAN_ESCAPE:
            return False
        if r == _R_DOLLAR and self.escape & _DOLLAR and self.peek() == _R_DOLLAR:
            return True
        if r == _R_BACKSLASH and self.escape & _BACKSLASH:
            return self.peek() in (_R_SLASH, _R_BACKSLASH)
        return False

    # -- parser -------------------------------------------------------------------------------------------

    def parse_func(self) -> _Func:
        """After ``${``: one expression, up to and including its ``}``."""
        begin = self.pos - 2
        node = self._parse_func()
        return _Func(node.param, node.name, node.args, _s(self.buf[begin : self.pos]))

    def _parse_func(self) -> _Func:
        self.escape = _ESCAPE_ALL  # turn on all escape characters
        if self.peek() == _R_HASH:
            return self.parse_len_func()
        self.accept = _accept_ident
        self.mode = _SCAN_IDENT
        if self.scan() != _T_IDENT:
            raise _ParseError(_PARSE_VARIABLE_NAME)
        name = self.string()
        r = self.peek()
        if r == _R_COLON:
            return self.parse_default_or_substr(name)
        if r == _R_EQUAL:
            return self.parse_default_func(name)
        if r in (_R_COMMA, _R_CARET):
            return self.parse_casing_func(name)
        if r == _R_SLASH:
            return self.parse_replace_func(name)
        if r == _R_HASH:
            return self.parse_remove_func(name, _accept_hash_func)
        if r == _R_PERCENT:
            return self.parse_remove_func(name, _accept_percent_func)
        self.accept = _accept_ident
        self.mode = _SCAN_RBRACK
        if self.scan() != _T_RBRACK:
            raise _ParseError(_MISSING_CLOSING_BRACE)
        return _Func(name)

    def parse_param(self, accept: _Accept, mode: int) -> _Node:
        self.accept = accept
        self.mode = mode | _SCAN_LBRACK
        token = self.scan()
        if token == _T_LBRACK:
            return self.parse_func()
        if token in (_T_IDENT, _T_RBRACK):
            return self.string()
        raise _ParseError(_PARSE_FUNC_SUBSTITUTION)

    def parse_default_or_substr(self, name: str) -> _Func:
        self.read()
        r = self.peek()
        self.unread()  # by the width of the peeked rune, not of the ':' (Go does the same)
        if r in _DEFAULT_OPERATORS:
            return self.parse_default_func(name)
        return self.parse_substr_func(name)

    def parse_substr_func(self, name: str) -> _Func:
        self.accept = _accept_one_colon
        self.mode = _SCAN_IDENT
        if self.scan() != _T_IDENT:
            raise _ParseError(_BAD_SUBSTITUTION)
        op = self.string()
        args = [self.parse_param(_reject_colon_close, _SCAN_IDENT)]
        # expect delimiter or close
        self.accept = _accept_colon
        self.mode = _SCAN_IDENT | _SCAN_RBRACK
        token = self.scan()
        if token == _T_RBRACK:
            return _Func(name, op, tuple(args))
        if token != _T_IDENT:
            raise _ParseError(_BAD_SUBSTITUTION)
        args.append(self.parse_param(_accept_not_closing, _SCAN_IDENT))
        self.consume_rbrack()
        return _Func(name, op, tuple(args))

    def parse_remove_func(self, name: str, accept: _Accept) -> _Func:
        self.accept = accept
        self.mode = _SCAN_IDENT
        if self.scan() != _T_IDENT:
            raise _ParseError(_BAD_SUBSTITUTION)
        op = self.string()
        arg = self.parse_param(_accept_not_closing, _SCAN_IDENT)
        self.consume_rbrack()
        return _Func(name, op, (arg,))

    def parse_replace_func(self, name: str) -> _Func:
        self.accept = _accept_replace_func
        self.mode = _SCAN_IDENT
        if self.scan() != _T_IDENT:
            raise _ParseError(_BAD_SUBSTITUTION)
        op = self.string()
        args = [self.parse_param(_accept_not_slash, _SCAN_IDENT | _SCAN_ESCAPE)]
        # expect delimiter
        self.accept = _accept_slash
        self.mode = _SCAN_IDENT
        if self.scan() != _T_IDENT:
            raise _ParseError(_BAD_SUBSTITUTION)
        # check for blank string
        if self.peek() != _R_RBRACE:
            args.append(self.parse_param(_accept_not_closing, _SCAN_IDENT | _SCAN_ESCAPE))
        self.consume_rbrack()
        return _Func(name, op, tuple(args))

    def parse_default_func(self, name: str) -> _Func:
        self.accept = _accept_one_equal if self.peek() == _R_EQUAL else _accept_default_func
        self.mode = _SCAN_IDENT
        if self.scan() != _T_IDENT:
            raise _ParseError(_PARSE_DEFAULT_FUNCTION)
        op = self.string()
        args: list[_Node] = []
        while self.peek() != _R_RBRACE:  # every rune up to the closing brace, nested expressions included
            args.append(self.parse_param(_accept_not_closing, _SCAN_IDENT))
        self.consume_rbrack()
        return _Func(name, op, tuple(args))

    def parse_casing_func(self, name: str) -> _Func:
        self.accept = _accept_casing_func
        self.mode = _SCAN_IDENT
        if self.scan() != _T_IDENT:
            raise _ParseError(_BAD_SUBSTITUTION)
        op = self.string()
        self.consume_rbrack()
        return _Func(name, op)

    def parse_len_func(self) -> _Func:
        self.accept = _accept_one_hash
        self.mode = _SCAN_IDENT
        if self.scan() != _T_IDENT:
            raise _ParseError(_BAD_SUBSTITUTION)
        op = self.string()
        self.accept = _accept_ident
        self.mode = _SCAN_IDENT
        if self.scan() != _T_IDENT:
            raise _ParseError(_BAD_SUBSTITUTION)
        param = self.string()
        self.consume_rbrack()
        return _Func(param, op)

    def consume_rbrack(self) -> None:
        self.mode = _SCAN_RBRACK
        if self.scan() != _T_RBRACK:
            raise _ParseError(_BAD_SUBSTITUTION)


# Outside expressions the scanner only ever acts on "$$" (a literal "$"), "${" (an expression) and NUL (the end).
_SPECIAL = re.compile(r"\$[${]|\x00")
_SPECIAL_BYTES = re.compile(rb"\$[${]|\x00")
# ${NAME} and ${NAME=word}, ${NAME:-word} etc. with an ASCII name and a plain word: the parser reads the name up to
# the operator, the word up to the first "}" (a word without "$", "}" or NUL has no nested expression or escape).
_SIMPLE_EXPRESSION = re.compile(rb"\$\{([A-Za-z0-9_]+)(?:(=|:[-=?+])([^$}\x00]*))?\}")


def _snippet(text: str, limit: int = 60) -> str:
    line = text.split("\n", 1)[0]
    return line if len(line) <= limit else line[:limit] + "…"


def _parse(text: str) -> list[_Node]:
    """The parse tree of a whole text, flattened: text runs (merged) and expressions, in order."""
    nodes: list[_Node] = []
    buf = _b(text)
    parser: _Parser | None = None
    pos = 0
    while True:
        match = _SPECIAL_BYTES.search(buf, pos)
        if match is None:
            nodes.append(_s(buf[pos:]))
            break
        nodes.append(_s(buf[pos : match.start()]))
        token = match.group()
        if token == b"$$":
            nodes.append("$")
            pos = match.end()
            continue
        if token == b"\x00":
            break
        simple = _SIMPLE_EXPRESSION.match(buf, match.start())
        if simple is not None:  # what the parser makes of it, without the parser
            name, op, word = (_s(group) for group in simple.groups(b""))
            nodes.append(_Func(name, op, (word,) if word else (), _s(simple.group())))
            pos = simple.end()
            continue
        if parser is None:
            parser = _Parser(buf)
        parser.pos = match.end()
        try:
            nodes.append(parser.parse_func())
        except _ParseError as exc:
            expression = _snippet(_s(parser.buf[match.start() :]))
            raise SubstitutionError(f"{exc} in {expression!r}", expression=expression) from None
        buf = parser.buf  # escapes inside the expression were cut out of the buffer
        pos = parser.pos
    merged: list[_Node] = []
    for node in nodes:
        if isinstance(node, str) and merged and isinstance(merged[-1], str):
            merged[-1] += node
        elif node != "":
            merged.append(node)
    return merged


# ---------------------------------------------------------------------------------------------------------
# Functions (funcs.go). Go strings are bytes: invalid UTF-8 produced by byte slicing travels as surrogate escapes.


def _b(s: str) -> bytes:
    try:
        return s.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return s.encode("utf-8", "surrogatepass")


def _s(b: bytes) -> str:
    return b.decode("utf-8", "surrogateescape")


_RUNE_ERROR = 0xFFFD


def _decode_rune(b: bytes) -> tuple[int, int]:
    """utf8.DecodeRune: the first rune and its size; (RuneError, 1) when invalid, (RuneError, 0) when empty."""
    if not b:
        return _RUNE_ERROR, 0
    c = b[0]
    if c < 0x80:
        return c, 1
    if 0xC2 <= c <= 0xDF:
        size = 2
    elif 0xE0 <= c <= 0xEF:
        size = 3
    elif 0xF0 <= c <= 0xF4:
        size = 4
    else:
        return _RUNE_ERROR, 1
    try:
        return ord(b[:size].decode("utf-8")), size
    except UnicodeDecodeError:
        return _RUNE_ERROR, 1


def _reverse(b: bytes) -> bytes:
    """reverse(): by runes, invalid bytes becoming U+FFFD as []rune(s) makes them."""
    runes: list[bytes] = []
    i = 0
    while i < len(b):
        r, n = _decode_rune(b[i:])
        runes.append(b[i : i + n] if r != _RUNE_ERROR or n != 1 else "\ufffd".encode())
        i += n
    return b"".join(reversed(runes))


# Go's unicode.ToUpper / ToLower are simple (one rune to one rune) mappings; Python's are full mappings.
_UPPER_EXCEPTIONS = {
    **{c: c + 8 for base in (0x1F80, 0x1F90, 0x1FA0) for c in range(base, base + 8)},
    0x1FB3: 0x1FBC,
    0x1FC3: 0x1FCC,
    0x1FF3: 0x1FFC,
}
_LOWER_EXCEPTIONS = {0x130: 0x69}


def _upper_rune(c: str) -> str:
    if (mapped := _UPPER_EXCEPTIONS.get(ord(c))) is not None:
        return chr(mapped)
    upper = c.upper()
    return upper if len(upper) == 1 else c


def _lower_rune(c: str) -> str:
    if (mapped := _LOWER_EXCEPTIONS.get(ord(c))) is not None:
        return chr(mapped)
    lower = c.lower()
    return lower if len(lower) == 1 else c


def _to_upper(s: str, args: list[str]) -> str:
    return s.upper() if s.isascii() else "".join(map(_upper_rune, s))


def _to_lower(s: str, args: list[str]) -> str:
    return s.lower() if s.isascii() else "".join(map(_lower_rune, s))


def _to_upper_first(s: str, args: list[str]) -> str:
    return _upper_rune(s[0]) + s[1:] if s else s


def _to_lower_first(s: str, args: list[str]) -> str:
    return _lower_rune(s[0]) + s[1:] if s else s


def _to_len(s: str, args: list[str]) -> str:
    return str(len(_b(s)))


def _to_default(s: str, args: list[str]) -> str:
    if not s and args:
        return "".join(args)
    return s


class _GoPanic(Exception):
    """A run-time panic in envsubst's Go code: kustomize-controller fails the reconciliation with it."""


_ATOI = re.compile(r"[+-]?[0-9]+")
_INT64 = 1 << 63


def _atoi(s: str) -> int | None:
    """strconv.Atoi: an optional sign and ASCII digits, within int64; None for an error."""
    if not _ATOI.fullmatch(s):
        return None
    value = int(s)
    return value if -_INT64 <= value < _INT64 else None


def _to_substr(s: str, args: list[str]) -> str:
    if not args:
        return s
    pos = _atoi(args[0])
    if pos is None:
        return s  # bash returns the string if the position cannot be parsed
    b = _b(s)
    if pos < 0:
        pos = max(len(b) + pos, 0)
    if len(args) == 1:
        return _s(b[pos:]) if pos < len(b) else ""
    length = _atoi(args[1])
    if length is None:
        return s
    if length < 0:  # ${var:1:-1} drops the first and the last byte
        end = len(b) + length
        return "" if end < pos else _s(b[pos:end])
    if pos + length >= _INT64:  # Go's int wraps round to a negative end, and slicing with it panics
        raise _GoPanic(f"runtime error: slice bounds out of range [:{pos + length - 2 * _INT64}]")
    if pos + length >= len(b):
        return _s(b[pos:]) if pos < len(b) else ""
    return _s(b[pos : pos + length])


def _replace(s: str, old: str, new: str, count: int) -> str:
    if not old:  # Go inserts at every rune boundary, like Python's str.replace
        return s.replace(old, new, count)
    return _s(_b(s).replace(_b(old), _b(new), count))


def _replace_all(s: str, args: list[str]) -> str:
    if not args:
        return s
    return _replace(s, args[0], args[1] if len(args) > 1 else "", -1)


def _replace_first(s: str, args: list[str]) -> str:
    if not args:
        return s
    return _replace(s, args[0], args[1] if len(args) > 1 else "", 1)


def _replace_prefix(s: str, args: list[str]) -> str:
    if len(args) != 2:  # so ${var/#pattern/} leaves var alone
        return s
    if _b(s).startswith(_b(args[0])):
        return _replace(s, args[0], args[1], 1)
    return s


def _replace_suffix(s: str, args: list[str]) -> str:
    if len(args) != 2:
        return s
    b, old = _b(s), _b(args[0])
    if b.endswith(old):
        return _s(b[: len(b) - len(old)] + _b(args[1]))
    return s


# -- envsubst's path.Match (path/match.go): '*' matches '/' too, and a trailing '*' matches anything -------------


class _BadPattern(Exception):
    pass


_STAR, _LBRACKET, _RBRACKET, _BSLASH, _QUESTION, _CARET, _DASH = b"*[]\\?^-"


def _scan_chunk(pattern: bytes) -> tuple[bool, bytes, bytes]:
    star = False
    while pattern and pattern[0] == _STAR:
        pattern = pattern[1:]
        star = True
    in_range = False
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == _BSLASH:
            if i + 1 < len(pattern):
                i += 1
        elif c == _LBRACKET:
            in_range = True
        elif c == _RBRACKET:
            in_range = False
        elif c == _STAR and not in_range:
            break
        i += 1
    return star, pattern[:i], pattern[i:]


def _get_esc(chunk: bytes) -> tuple[int, bytes]:
    if not chunk or chunk[0] in (_DASH, _RBRACKET):
        raise _BadPattern
    if chunk[0] == _BSLASH:
        chunk = chunk[1:]
        if not chunk:
            raise _BadPattern
    r, n = _decode_rune(chunk)
    if r == _RUNE_ERROR and n == 1:
        raise _BadPattern
    chunk = chunk[n:]
    if not chunk:
        raise _BadPattern
    return r, chunk


def _match_chunk(chunk: bytes, s: bytes) -> bytes | None:
    """The rest of s after chunk matched its beginning, or None; _BadPattern for a malformed chunk."""
    while chunk:
        if not s:
            return None
        c = chunk[0]
        if c == _LBRACKET:
            r, n = _decode_rune(s)
            s = s[n:]
            chunk = chunk[1:]
            not_negated = True
            if chunk and chunk[0] == _CARET:
                not_negated = False
                chunk = chunk[1:]
            matched = False
            ranges = 0
            while True:
                if chunk and chunk[0] == _RBRACKET and ranges > 0:
                    chunk = chunk[1:]
                    break
                lo, chunk = _get_esc(chunk)
                hi = lo
                if chunk[0] == _DASH:
                    hi, chunk = _get_esc(chunk[1:])
                if lo <= r <= hi:
                    matched = True
                ranges += 1
            if matched != not_negated:
                return None
        elif c == _QUESTION:
            _, n = _decode_rune(s)
            s = s[n:]
            chunk = chunk[1:]
        else:
            if c == _BSLASH:
                chunk = chunk[1:]
                if not chunk:
                    raise _BadPattern
            if chunk[0] != s[0]:
                return None
            s = s[1:]
            chunk = chunk[1:]
    return s


def _match(pattern: bytes, name: bytes) -> bool:
    while pattern:
        star, chunk, pattern = _scan_chunk(pattern)
        if star and not chunk:
            return True  # a trailing * matches the rest of the string, '/' included
        rest = _match_chunk(chunk, name)
        if rest is not None and (not rest or pattern):
            name = rest
            continue
        if not star:
            return False
        for i in range(len(name)):
            rest = _match_chunk(chunk, name[i + 1 :])
            if rest is not None:
                if not pattern and rest:
                    continue
                name = rest
                break
        else:
            return False
    return not name


def _trim_shortest(s: bytes, pattern: bytes) -> bytes:
    shortest = b""
    for i in range(len(s)):  # prefixes from the longest down to one byte; never the empty one
        prefix = s[: len(s) - i]
        try:
            if _match(pattern, prefix):
                shortest = prefix
        except _BadPattern:
            return s
    return s[len(shortest) :]


def _trim_longest(s: bytes, pattern: bytes) -> bytes:
    for i in range(len(s)):
        prefix = s[: len(s) - i]
        try:
            if _match(pattern, prefix):
                return s[len(prefix) :]
        except _BadPattern:
            return s
    return s


def _trim_shortest_prefix(s: str, args: list[str]) -> str:
    return _s(_trim_shortest(_b(s), _b(args[0]))) if args else s


def _trim_longest_prefix(s: str, args: list[str]) -> str:
    return _s(_trim_longest(_b(s), _b(args[0]))) if args else s


def _trim_shortest_suffix(s: str, args: list[str]) -> str:
    return _s(_reverse(_trim_shortest(_reverse(_b(s)), _reverse(_b(args[0]))))) if args else s


def _trim_longest_suffix(s: str, args: list[str]) -> str:
    return _s(_reverse(_trim_longest(_reverse(_b(s)), _reverse(_b(args[0]))))) if args else s


_Function = Callable[[str, list[str]], str]

_FUNCTIONS: dict[str, _Function] = {
    ",": _to_lower_first,
    ",,": _to_lower,
    "^": _to_upper_first,
    "^^": _to_upper,
    "##": _trim_longest_prefix,
    "%": _trim_shortest_suffix,
    "%%": _trim_longest_suffix,
    ":": _to_substr,
    "/#": _replace_prefix,
    "/%": _replace_suffix,
    "/": _replace_first,
    "//": _replace_all,
}  # everything else ("", "=", ":=", ":-", ":?", ":+") is the default function

# Operators that tolerate an unset variable in strict mode (template.go, isDefaultOp).
_DEFAULT_OPS = frozenset({"-", "+", "=", "?", ":-", ":+", ":=", ":?"})


def _function(name: str, nargs: int) -> _Function:
    if name == "#":
        return _trim_shortest_prefix if nargs else _to_len
    return _FUNCTIONS.get(name, _to_default)


# ---------------------------------------------------------------------------------------------------------
# Evaluation (template.go)


def _evaluate(node: _Node, variables: Mapping[str, str], strict: bool) -> str:
    if isinstance(node, str):
        return node
    args = [_evaluate(arg, variables, strict) for arg in node.args]
    value = variables.get(node.param)
    if value is None:
        if strict and node.name not in _DEFAULT_OPS:
            raise SubstitutionError(
                f'variable not set (strict mode): "{node.param}" in {node.src}',
                variable=node.param,
                expression=node.src,
            )
        value = ""
    try:
        return _function(node.name, len(args))(value, args)
    except _GoPanic as panic:
        raise SubstitutionError(f"{panic} in {node.src!r} (envsubst panics)", expression=node.src) from None


def expand(text: str, variables: Mapping[str, str], *, strict: bool = False) -> str:
    """envsubst.Eval on a string: expand every ``${...}`` expression.

    Unset variables expand to "" unless ``strict``, where an unset variable is an error except under a
    default operator (``${v:-x}``, ``${v:=x}``, ``${v=x}``, ``${v:?x}``, ``${v:+x}``). Bad expressions are errors
    in both modes. Unlike ``substitute_object`` this substitutes even with no variables at all.
    """
    if ("$" not in text and "\x00" not in text) or _SPECIAL.search(text) is None:
        return text
    return "".join(_evaluate(node, variables, strict) for node in _parse(text))


def references(text: str) -> list[str]:
    """Names of the variables the ``${...}`` expressions of a text use, nested ones included, in order.

    ``$${x}`` is an escape and ``$x`` plain text, so neither counts. A text envsubst cannot parse falls back
    to every ``${name`` in it.
    """
    if "${" not in text:
        return []
    try:
        nodes = _parse(text)
    except SubstitutionError:
        return list(dict.fromkeys(_LOOSE_REFERENCE.findall(text)))
    names: list[str] = []

    def walk(node: _Node) -> None:
        if isinstance(node, _Func):
            names.append(node.param)
            for arg in node.args:
                walk(arg)

    for node in nodes:
        walk(node)
    return list(dict.fromkeys(names))


_LOOSE_REFERENCE = re.compile(r"\$\{#?(\w+)")

# ---------------------------------------------------------------------------------------------------------
# Objects (kustomize_varsub.go)


# The YAML side. Go writes the object with go-yaml v2 (sigs.k8s.io/yaml JSONToYAML) and reads the result back
# with it (YAMLToJSON); goyaml.py's V2Dumper and V2Loader make PyYAML agree with go-yaml where it matters here:
# multi-line strings are literal blocks (PyYAML would single-quote them, and a substituted quote would break),
# plain scalars resolve as go-yaml v2 resolves them and the dumper quotes by the same rules (a round trip keeps
# every value's type), a tag go-yaml does not know (`!foo x`) is ignored instead of being an error.


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def is_disabled(obj: Mapping[str, Any]) -> bool:
    """``kustomize.toolkit.fluxcd.io/substitute: disabled`` as a label or an annotation (exact value)."""
    metadata = _mapping(obj.get("metadata"))
    return (
        _mapping(metadata.get("labels")).get(SUBSTITUTE_KEY) == DISABLED_VALUE
        or _mapping(metadata.get("annotations")).get(SUBSTITUTE_KEY) == DISABLED_VALUE
    )


def validate_names(variables: Mapping[str, str]) -> None:
    """Every name must match ``VAR_NAME``; Go checks this for each object it substitutes."""
    for name in variables:
        if not isinstance(name, str) or not VAR_NAME.match(name):
            raise SubstitutionError(f"{name!r} var name is invalid, must match {VAR_NAME_GO!r}", variable=str(name))


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def substitute_object(
    obj: dict[str, Any], variables: Mapping[str, str], *, strict: bool = False, always: bool = False
) -> dict[str, Any]:
    """One object through SubstituteVariables.

    A disabled object, or any object when there are no variables (and not ``always``, the Kustomization's
    ``substituteStrategy: Always``), comes back as it is: ``${X}`` stays literally. Otherwise the variable names
    are checked, the object is dumped to YAML, expanded and parsed back into a new dict. An object none of
    whose strings has a ``$`` comes back as it is too (the expansion could not change it).
    """
    if is_disabled(obj) or (not variables and not always):
        return obj
    validate_names(variables)
    if not any("$" in s for s in _strings(obj)):
        return obj
    try:
        text = yaml.dump(obj, Dumper=_Dumper, sort_keys=False, allow_unicode=True)
    except yaml.YAMLError as exc:
        raise SubstitutionError(f"cannot be written as YAML: {exc}") from exc
    expanded = expand(text, variables, strict=strict)
    result = _load_first_document(expanded)
    if not isinstance(result, dict):
        raise SubstitutionError(f"the YAML after substitution is not an object but {type(result).__name__}")
    _check_keys(result)
    return result


def _load_first_document(text: str) -> Any:
    """The first document, as go-yaml's Unmarshal reads it: whatever follows it is not looked at."""
    try:
        loader = _Loader(text)
    except UnicodeEncodeError:  # a byte offset or a pattern cut a character in two (go-yaml: invalid UTF-8)
        raise SubstitutionError(
            "the YAML after substitution is not valid: invalid UTF-8 (an expression cut a character in two)"
        ) from None
    try:
        node = loader.get_node() if loader.check_node() else None
        return None if node is None else loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise SubstitutionError(f"the YAML after substitution is not valid: {_yaml_problem(exc, text)}") from exc
    finally:
        loader.dispose()


def _check_keys(value: Any) -> None:
    """sigs.k8s.io/yaml turns keys into JSON strings and refuses a null key (``${EMPTY}: x``)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key is None:
                raise SubstitutionError("the YAML after substitution has a null key, which JSON cannot have")
            _check_keys(item)
    elif isinstance(value, list):
        for item in value:
            _check_keys(item)


def _yaml_problem(exc: yaml.YAMLError, text: str) -> str:
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    mark = getattr(exc, "problem_mark", None)
    lines = text.splitlines()
    if mark is None or not 0 <= mark.line < len(lines):
        return str(problem)
    return f"{problem}, line {mark.line + 1}: {lines[mark.line].strip()!r}"


def unresolved(obj: dict[str, Any]) -> list[str]:
    """Names of the variables ``${...}`` expressions in the object's strings (keys too) still use, in order.

    For objects with substitution disabled the answer is ``[]``. Run on objects before substitution this is
    what the expansion would touch; after it, an escaped ``$${X}`` has become a literal ``${X}`` and counts.
    """
    if is_disabled(obj):
        return []
    names: dict[str, None] = {}
    for s in _strings(obj):
        if "${" in s:
            names.update(dict.fromkeys(references(s)))
    return list(names)


def unset_variables(obj: dict[str, Any], variables: Mapping[str, str]) -> list[str]:
    """Names a substitution of ``obj`` would replace with "" because nobody sets them and no default
    operator covers them (run before substitution; ``$${X}`` escapes do not count), in order."""
    if is_disabled(obj):
        return []
    found: dict[str, None] = {}
    for text in _strings(obj):
        if "${" not in text:
            continue
        known = dict(variables)
        for _ in range(len(text)):
            try:
                expand(text, known, strict=True)
                break
            except SubstitutionError as error:
                if error.variable is None:
                    break  # a bad expression: substituting reports it
                found[error.variable] = None
                known[error.variable] = ""
    return list(found)


# ---------------------------------------------------------------------------------------------------------
# Variables of a Kustomization (LoadVariables and the in-line map)


@dataclass(frozen=True)
class VariableSource:
    kind: str  # "ConfigMap" or "Secret"; other kinds are skipped as kustomize-controller skips them
    name: str
    optional: bool = False


def _post_build(kustomization: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = kustomization.get("spec")
    if spec is None:
        return {}
    if not isinstance(spec, Mapping):
        raise SubstitutionError(f"spec is {type(spec).__name__}, not an object")
    post_build = spec.get("postBuild")
    if post_build is None:
        return {}
    if not isinstance(post_build, Mapping):
        raise SubstitutionError(f"spec.postBuild is {type(post_build).__name__}, not an object")
    return post_build


def substitute_always(kustomization: Mapping[str, Any]) -> bool:
    """``spec.postBuild.substituteStrategy: Always``: substitute even with no variables (defaults apply)."""
    return _post_build(kustomization).get("substituteStrategy") == "Always"


def variable_sources(kustomization: Mapping[str, Any]) -> list[VariableSource]:
    """``spec.postBuild.substituteFrom``, in order."""
    entries = _post_build(kustomization).get("substituteFrom")
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise SubstitutionError(f"spec.postBuild.substituteFrom is {type(entries).__name__}, not a list")
    sources = []
    for index, entry in enumerate(entries):
        where = f"spec.postBuild.substituteFrom[{index}]"
        if not isinstance(entry, Mapping):
            raise SubstitutionError(f"{where} is {type(entry).__name__}, not an object")
        kind, name, optional = entry.get("kind", ""), entry.get("name", ""), entry.get("optional", False)
        if not isinstance(kind, str) or not isinstance(name, str):
            raise SubstitutionError(f"{where}: kind and name must be strings")
        if optional is None:
            optional = False
        if not isinstance(optional, bool):
            raise SubstitutionError(f"{where}.optional must be true or false, not {optional!r}")
        sources.append(VariableSource(kind, name, optional))
    return sources


def _string_values(data: Mapping[Any, Any], where: str) -> Iterator[tuple[str, str]]:
    for key, value in data.items():
        if not isinstance(value, str):
            raise SubstitutionError(f"{where}.{key} must be a string, not {type(value).__name__} {value!r}")
        yield str(key), value.replace("\n", "")


def collect_variables(
    kustomization: Mapping[str, Any], lookup: Callable[[str, str], Mapping[str, str] | None]
) -> dict[str, str]:
    """The variables of a Kustomization, as LoadVariables and SubstituteVariables merge them.

    ``substituteFrom`` in order, later sources overriding earlier ones (``lookup(kind, name)`` gives a ConfigMap's
    data or a Secret's decoded data, None when there is none: skipped when ``optional``, an error otherwise),
    then ``spec.postBuild.substitute`` over all of them. Newlines are removed from every value. Names are not
    checked here: ``substitute_object`` checks them, for the objects it substitutes.
    """
    variables: dict[str, str] = {}
    for source in variable_sources(kustomization):
        if source.kind not in ("ConfigMap", "Secret"):
            continue
        data = lookup(source.kind, source.name)
        if data is None:
            if source.optional:
                continue
            raise SubstitutionError(f"substitute from '{source.kind}/{source.name}' error: not found")
        variables.update(_string_values(data, f"{source.kind}/{source.name} data"))
    inline = _post_build(kustomization).get("substitute")
    if inline is not None:
        if not isinstance(inline, Mapping):
            raise SubstitutionError(f"spec.postBuild.substitute is {type(inline).__name__}, not an object")
        variables.update(_string_values(inline, "spec.postBuild.substitute"))
    return variables
