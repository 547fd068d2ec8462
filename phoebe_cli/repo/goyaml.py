"""YAML as Flux's Go libraries read it: the one home of Go's YAML rules in phoebe.

Two readers, one for each place YAML enters Flux; every rule below comes from the Go code and is checked
against Go itself by the differential test in tests/repo/test_yaml_go.py.

``read_file``: a file of a checkout, as kustomize reads a resource file and Flux then gets the object.
  kustomize (kyaml ``kio.FromBytes``) cuts the text at every line that starts with ``---`` (anything but a
  comment after it is an error), decodes the first document of each piece with yaml.v3 (a lone ``List`` with
  items is unwrapped) and expands anchors, aliases and ``<<`` merge keys itself (``RNode.DeAnchor``). Writing
  its output, ``RNode.MarshalJSON`` prints each object again and decodes it with yaml.v3 into JSON; Flux reads
  that through go-yaml v2 (sigs.k8s.io/yaml). So:

  - plain scalars resolve by yaml.v3: ``on``/``yes``/``y`` and ``=`` are strings, ``0755`` and ``0o755`` are
    octal, ``1_000`` is 1000, an integer too big for int64 is a uint64 and a bigger one a float, ``1:20`` is a
    string, a timestamp is a time, which JSON writes in RFC 3339 (``"2001-12-14T00:00:00Z"``);
  - what kyaml prints differently: an empty value is ``''`` (a string) in a flow collection and as a key, a
    timestamp with a time is quoted in a flow collection (a string);
  - an anchor may be defined again (later aliases see the later one);
  - merge keys as kyaml merges them: the mapping's own keys win, then the first source; a mapping merges its
    sources as they are at that moment (``_DeAnchor``); every mapping drops its first key named ``<<``;
  - a key twice in a mapping is an error, and so is a null key (kyaml's merge step sets it twice);
  - below the object itself, a mapping with a key that is no string (``80: http``) cannot be written as JSON;
    ``.nan``, ``.inf`` and times with an offset of 24 hours or more neither;
  - in JSON, a string keeps U+0085 raw, which go-yaml v2 then folds like a line break, and C1 controls, which
    it refuses; a key ``"<<"`` that is left is a merge key to it;
  - numbers end as Flux holds them once it decoded the JSON: integers that fit int64 stay integers, any other
    number is a float, and a whole float (``1.0``, ``1e3``) is an integer;
  - null, ``{}`` and ``[]`` documents are dropped; go-yaml knows ``\\'`` in double quotes but not ``\\/``, and
    only ``%YAML 1.1``.

``read_output``: kustomize's output as kustomize-controller reads it (fluxcd/pkg/ssa ``ReadObjects``: the
  stream is cut at ``---`` lines, each document goes through sigs.k8s.io/yaml ``YAMLToJSON``, go-yaml v2):
  YAML 1.1 booleans (``y``, ``on``, ``no``...), timestamps stay strings, a key twice keeps the last value, a
  merge key merges where it stands, keys become strings (``1``, ``true``, ``1.5``), a null key is an error.
  Numbers as above.

Both keep libyaml on the common path: its C composer builds the nodes and calls back into Python only to
resolve tags. libyaml refuses an anchor defined twice; only then a Python composer (on libyaml's events)
takes over. Errors are ``GoYamlError`` (a ``yaml.YAMLError``) with the 1-based line of the file.

The go-yaml v2 resolver also serves the substitution round trip (substitute.py): ``V2Loader`` and ``V2Dumper``.
"""

from __future__ import annotations

import base64
import bisect
import math
import re
import struct
from collections.abc import Callable
from decimal import Decimal
from functools import cmp_to_key, lru_cache
from typing import Any

import yaml
from yaml.composer import Composer, ComposerError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

try:  # libyaml's emitter is the one go-yaml was ported from: same scalar styles, same line folding
    from yaml import CSafeDumper as _BaseDumper
    from yaml import CSafeLoader as _BaseLoader
    from yaml.cyaml import CParser as _Parser  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeDumper as _BaseDumper  # type: ignore[assignment]
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]
    from yaml.parser import Parser as _Parser  # type: ignore[assignment]

__all__ = [
    "GoYamlError",
    "V2Dumper",
    "V2Loader",
    "check_file",
    "read_file",
    "read_output",
    "resolve_v2",
    "resolve_v3",
]

_TAG = "tag:yaml.org,2002:"
STR, BOOL, INT, FLOAT, NULL, TIMESTAMP, MERGE, BINARY = (
    _TAG + name for name in ("str", "bool", "int", "float", "null", "timestamp", "merge", "binary")
)
_SEQ, _MAP = _TAG + "seq", _TAG + "map"
_RESOLVABLE = frozenset((STR, BOOL, INT, FLOAT, NULL, TIMESTAMP))
_INT64 = 1 << 63
_UINT64 = 1 << 64


class GoYamlError(yaml.YAMLError):
    """What Go refuses, with the 1-based line of the text it points at (None when it names none)."""

    def __init__(self, problem: str, line: int | None = None) -> None:
        super().__init__(f"line {line}: {problem}" if line else problem)
        self.problem = problem
        self.line = line


# ---------------------------------------------------------------------------------------------------------
# Plain scalars: resolve() of go-yaml v3 (resolve.go) and of go-yaml v2, which differ in their booleans.

_SPECIAL_V3: dict[str, tuple[str, Any]] = {
    **dict.fromkeys(("true", "True", "TRUE"), (BOOL, True)),
    **dict.fromkeys(("false", "False", "FALSE"), (BOOL, False)),
    **dict.fromkeys(("", "~", "null", "Null", "NULL"), (NULL, None)),
    **dict.fromkeys((".nan", ".NaN", ".NAN"), (FLOAT, math.nan)),
    **dict.fromkeys((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), (FLOAT, math.inf)),
    **dict.fromkeys(("-.inf", "-.Inf", "-.INF"), (FLOAT, -math.inf)),
    "<<": (MERGE, "<<"),
}
_SPECIAL_V2: dict[str, tuple[str, Any]] = {
    **_SPECIAL_V3,
    **dict.fromkeys(("y", "Y", "yes", "Yes", "YES", "on", "On", "ON"), (BOOL, True)),
    **dict.fromkeys(("n", "N", "no", "No", "NO", "off", "Off", "OFF"), (BOOL, False)),
}
_MAP_HINTS = frozenset("yYnNtTfFoO~")
_NUMBER_HINTS = frozenset("+-0123456789")
_DIGITS = frozenset("0123456789")
_YAML_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_GO_DOT_FLOAT = re.compile(r"\.[0-9]+(?:[eE][-+]?[0-9]+)?")
_BASE_DIGITS = {2: "01", 8: "01234567", 10: "0123456789", 16: "0123456789abcdefABCDEF"}


def _parse_int(text: str, base: int, signed: bool) -> int | None:
    """strconv.ParseInt(text, base, 64) (signed) or ParseUint: None when Go returns an error."""
    sign = ""
    if signed and text[:1] in ("+", "-"):
        sign, text = text[0], text[1:]
    if base == 0:
        base = 10
        if text[:2] in ("0x", "0X"):
            base, text = 16, text[2:]
        elif text[:2] in ("0b", "0B"):
            base, text = 2, text[2:]
        elif text[:2] in ("0o", "0O"):
            base, text = 8, text[2:]
        elif text[:1] == "0" and len(text) > 1:
            base, text = 8, text[1:]
    digits = _BASE_DIGITS[base]
    if not text or any(c not in digits for c in text):
        return None
    value = int(text, base)
    if sign == "-":
        value = -value
    if signed:
        return value if -_INT64 <= value < _INT64 else None
    return value if value < _UINT64 else None


def _parse_float(text: str) -> float | None:
    """strconv.ParseFloat on a decimal literal (already matched): None when out of range, as in Go."""
    value = float(text)
    return None if math.isinf(value) else value


def _underscores_ok(text: str) -> bool:
    """strconv's underscoreOK for a literal without a base prefix: each '_' between two digits."""
    saw = "^"
    for c in text.lstrip("+-"):
        if c in _DIGITS:
            saw = "0"
        elif c == "_":
            if saw != "0":
                return False
            saw = "_"
        elif saw == "_":
            return False
        else:
            saw = "!"
    return saw != "_"


def _resolve_number(value: str, timestamps: bool, octal: bool = True) -> tuple[str, Any]:
    """The 'D' and 'S' (digit and sign) branch of resolve(); only yaml.v3 has the 0o branch of its own."""
    if timestamps and (stamp := go_timestamp(value)) is not None:
        return TIMESTAMP, stamp
    plain = value.replace("_", "")
    if (integer := _parse_int(plain, 0, True)) is not None:
        return INT, integer
    if (integer := _parse_int(plain, 0, False)) is not None:
        return INT, integer
    if _YAML_FLOAT.fullmatch(plain) and (number := _parse_float(plain)) is not None:
        return FLOAT, number
    for prefix, base in (("0b", 2), ("0o", 8)) if octal else (("0b", 2),):
        if plain.startswith(prefix):
            rest = plain[2:]
            if (integer := _parse_int(rest, base, True)) is not None:
                return INT, integer
            if (integer := _parse_int(rest, base, False)) is not None:
                return INT, integer
            break
        if plain.startswith("-" + prefix):
            if (integer := _parse_int("-" + plain[3:], base, True)) is not None:
                return INT, integer
            break
    return STR, value


def _resolve(value: str, special: dict[str, tuple[str, Any]], octal: bool) -> tuple[str, Any]:
    if not value:
        return NULL, None
    first = value[0]
    if first in _NUMBER_HINTS:
        found = special.get(value)
        if found is not None:
            return found
        return _resolve_number(value, True, octal)
    if first == ".":
        found = special.get(value)
        if found is not None:
            return found
        plain = value
        if "_" in value:
            if not _underscores_ok(value):
                return STR, value
            plain = value.replace("_", "")
        if _GO_DOT_FLOAT.fullmatch(plain) and (number := _parse_float(plain)) is not None:
            return FLOAT, number
        return STR, value
    if first in _MAP_HINTS or first == "<":
        return special.get(value, (STR, value))
    return STR, value


@lru_cache(maxsize=8192)
def resolve_v3(value: str) -> tuple[str, Any]:
    """yaml.v3's resolve("", value) for a plain scalar: its tag and value (a timestamp as Go writes it in JSON)."""
    return _resolve(value, _SPECIAL_V3, True)


@lru_cache(maxsize=8192)
def resolve_v2(value: str) -> tuple[str, Any]:
    """go-yaml v2's resolve("", value) for a plain scalar (a timestamp as Go writes it in JSON)."""
    return _resolve(value, _SPECIAL_V2, False)


# ---------------------------------------------------------------------------------------------------------
# Timestamps: time.Parse with the layouts go-yaml tries, then time.Time's MarshalJSON (RFC 3339, nanoseconds
# without trailing zeros, "Z" for a zero offset).


def _two_digits(text: str, i: int) -> tuple[int | None, int]:
    """time's getnum(value, false): one or two ASCII digits."""
    if i >= len(text) or text[i] not in _DIGITS:
        return None, i
    if i + 1 < len(text) and text[i + 1] in _DIGITS:
        return int(text[i : i + 2]), i + 2
    return int(text[i]), i + 1


def _days_in(month: int, year: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


class _Unwritable(str):
    """A time that Go reads but cannot write as JSON."""


def _parse_time(text: str, separator: str) -> str | None:
    """One layout: "2006-1-2" + (separator + "15:4:5.999999999" + zone, the zone only after T or t)."""
    year = int(text[:4])
    month, i = _two_digits(text, 5)
    if month is None or text[i : i + 1] != "-":
        return None
    day, i = _two_digits(text, i + 1)
    if day is None:
        return None
    clock = ""
    if separator:
        if separator == " ":
            if text[i : i + 1] != " ":
                return None
            while text[i : i + 1] == " ":
                i += 1
        elif text[i : i + 1] != separator:
            return None
        else:
            i += 1
        hour, i = _two_digits(text, i)
        if hour is None or text[i : i + 1] != ":":
            return None
        minute, i = _two_digits(text, i + 1)
        if minute is None or text[i : i + 1] != ":":
            return None
        second, i = _two_digits(text, i + 1)
        if second is None or hour >= 24 or minute >= 60 or second >= 60:
            return None
        fraction = ""
        if i + 1 < len(text) and text[i] in ".," and text[i + 1] in _DIGITS:
            j = i + 1
            while j < len(text) and text[j] in _DIGITS:
                j += 1
            fraction = text[i + 1 : j][:9].ljust(9, "0").rstrip("0")
            i = j
        zone = "Z"
        if separator in "Tt":
            if text[i : i + 1] == "Z":
                i += 1
            else:
                tz = text[i : i + 6]
                if len(tz) < 6 or tz[3] != ":" or tz[0] not in "+-":
                    return None
                if not all(c in _DIGITS for c in tz[1:3] + tz[4:6]):
                    return None
                hours, minutes = int(tz[1:3]), int(tz[4:6])
                if hours > 24 or minutes > 60:
                    return None
                i += 6
                total = hours * 60 + minutes
                if total:
                    zone = f"{tz[0]}{total // 60:02d}:{total % 60:02d}"
                    if total // 60 >= 24:  # time.Parse takes it, Time.MarshalJSON refuses it
                        return _Unwritable(f"{text} (timezone hour outside of range [0,23])")
        clock = f"T{hour:02d}:{minute:02d}:{second:02d}" + (f".{fraction}" if fraction else "") + zone
    if i != len(text) or not 1 <= month <= 12 or not 1 <= day <= _days_in(month, year):
        return None
    return f"{year:04d}-{month:02d}-{day:02d}" + (clock or "T00:00:00Z")


def go_timestamp(text: str) -> str | None:
    """The JSON text of the time go-yaml reads in ``text``, or None when it is no timestamp."""
    if len(text) < 5 or text[4] != "-" or not all(c in _DIGITS for c in text[:4]):
        return None
    for separator in ("T", "t", " ", ""):
        stamp = _parse_time(text, separator)
        if stamp is not None:
            return stamp
    return None


# ---------------------------------------------------------------------------------------------------------
# Loaders: libyaml composes, a Python hook resolves plain scalars by Go's rules.

# Two kinds of plain scalars get a tag of their own, because kyaml writes the object out again before yaml.v3
# reads it for JSON, and libyaml's emitter quotes them in some places, which makes them strings:
# * an empty one (`a:`, `{a: }`, `? : x`) is written '' in a flow collection and as a key (null elsewhere);
# * a timestamp with a time (a ':') is quoted in a flow collection (a date alone, or one in block style,
#   stays a time).
EMPTY = "tag:phoebe,2024:empty"
TIME = "tag:phoebe,2024:time"


def _tag_hook(resolve: Callable[[str], tuple[str, Any]]) -> Callable[..., str]:
    def hook(self: Any, kind: type[Node], value: Any, implicit: Any) -> str:
        if kind is ScalarNode:
            if not implicit[0]:
                return STR
            if not value:
                return EMPTY
            tag = resolve(value)[0]
            return TIME if tag == TIMESTAMP else tag
        return _SEQ if kind is SequenceNode else _MAP

    return hook


class _Resolving:
    """What the C composer calls besides resolve(): path resolvers, which Go does not have."""

    def descend_resolver(self, parent: Node | None, index: Any) -> None:
        pass

    def ascend_resolver(self) -> None:
        pass


class _V3Composer(_Resolving, _Parser):
    resolve = _tag_hook(resolve_v3)


class _V2Composer(_Resolving, _Parser):
    resolve = _tag_hook(resolve_v2)


class _Redefining(Composer):
    """PyYAML's composer, except that an anchor may be defined again (as in go-yaml: the later one wins)."""

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        if self.check_event(yaml.AliasEvent):  # type: ignore[attr-defined]
            event = self.get_event()  # type: ignore[attr-defined]
            if event.anchor not in self.anchors:
                raise ComposerError(None, None, f"found undefined alias {event.anchor!r}", event.start_mark)
            return self.anchors[event.anchor]
        anchor = self.peek_event().anchor  # type: ignore[attr-defined]
        if anchor is not None:
            self.anchors.pop(anchor, None)
        if self.check_event(yaml.ScalarEvent):  # type: ignore[attr-defined]
            return self.compose_scalar_node(anchor)
        if self.check_event(yaml.SequenceStartEvent):  # type: ignore[attr-defined]
            return self.compose_sequence_node(anchor)
        return self.compose_mapping_node(anchor)


class _V3Redefining(_Redefining, _V3Composer):
    def __init__(self, stream: str) -> None:
        _Parser.__init__(self, stream)
        Composer.__init__(self)


class _V2Redefining(_Redefining, _V2Composer):
    def __init__(self, stream: str) -> None:
        _Parser.__init__(self, stream)
        Composer.__init__(self)


def _syntax_error(error: yaml.YAMLError, offset: int, text: str) -> GoYamlError:
    """libyaml's problem and the line it found it on (yaml.v3 is a port of libyaml: the same marks)."""
    if isinstance(error, yaml.reader.ReaderError):  # a character YAML does not allow
        return GoYamlError(error.reason, offset + text.count("\n", 0, error.position) + 1)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    return GoYamlError(str(problem), offset + mark.line + 1 if mark is not None else None)


_VERSION = re.compile(r"^%YAML[ \t]+([0-9]+)\.([0-9]+)", re.M)


def _compose_with(loader_class: type, text: str, first_only: bool) -> list[Node]:
    loader = loader_class(text)
    try:
        nodes: list[Node] = []
        while loader.check_node():
            nodes.append(loader.get_node())
            if first_only:
                break
        return nodes
    finally:
        loader.dispose()


def _compose(text: str, v3: bool, offset: int, first_only: bool) -> list[Node]:
    """Every document's root node (only the first with ``first_only``), composed by libyaml, or by the
    Python composer when an anchor is defined twice; a syntax error is a GoYamlError.

    The escapes of double-quoted scalars are go-yaml's: ``\\'`` is a quote (libyaml refuses it, so it is
    replaced before libyaml reads the text again) and ``\\/`` is an error (libyaml takes it)."""
    if "%YAML" in text:
        for match in _VERSION.finditer(text):  # go-yaml takes %YAML 1.1 only (libyaml 1.2 too)
            if match.groups() != ("1", "1"):
                raise GoYamlError("found incompatible YAML document", offset + text.count("\n", 0, match.start()) + 1)
    composer: type = _V3Composer if v3 else _V2Composer
    for _ in range(1000):
        try:
            nodes = _compose_with(composer, text, first_only)
        except ComposerError as error:
            if "duplicate anchor" not in (error.context or "") or composer in (_V3Redefining, _V2Redefining):
                raise _syntax_error(error, offset, text) from error
            composer = _V3Redefining if v3 else _V2Redefining
            continue
        except yaml.YAMLError as error:
            escaped = _quote_escape(text, error)
            if escaped is None:
                raise _syntax_error(error, offset, text) from error
            text = escaped
            continue
        if "\\/" in text:
            _refuse_slash_escape(text, nodes, offset)
        return nodes
    raise GoYamlError("too many \\' escapes", None)


def _quote_escape(text: str, error: yaml.YAMLError) -> str | None:
    """The text with the \\' libyaml stopped at replaced by ', or None when the error is another one."""
    mark = getattr(error, "problem_mark", None)
    if mark is None or getattr(error, "problem", "") != "found unknown escape character":
        return None
    lines = text.split("\n")
    line = lines[mark.line] if mark.line < len(lines) else ""
    if line[mark.column : mark.column + 2] != "\\'":
        return None
    lines[mark.line] = line[: mark.column] + line[mark.column + 1 :]
    return "\n".join(lines)


def _refuse_slash_escape(text: str, nodes: list[Node], offset: int) -> None:
    """go-yaml does not know the \\/ escape (YAML 1.2's JSON one): a double-quoted scalar using it is an error."""
    lines = text.split("\n")
    seen: set[int] = set()
    stack = list(nodes)
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, MappingNode):
            stack.extend(part for pair in node.value for part in pair)
        elif isinstance(node, SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, ScalarNode) and node.style == '"' and "/" in node.value:
            start, end = node.start_mark, node.end_mark
            raw = "\n".join(lines[start.line : end.line + 1])[start.column :]
            i = 0
            while i < len(raw) - 1:
                if raw[i] == "\\":
                    if raw[i + 1] == "/":
                        line = start.line + raw.count("\n", 0, i)
                        raise GoYamlError("found unknown escape character", offset + line + 1)
                    i += 1
                elif raw[i] == '"' and i > 0:
                    break  # the closing quote
                i += 1


# ---------------------------------------------------------------------------------------------------------
# Values as Flux holds them: after Go wrote them as JSON and Flux decoded that JSON into Unstructured.


def _json_number(value: int | float) -> int | float | None:
    """Integers that fit int64 stay integers, any other number is a float64; a whole float is written
    without a fraction (Go's shortest digits, then zeros), so it comes back as an integer when that fits.
    None for NaN and infinities, which JSON cannot hold."""
    if isinstance(value, int):
        return value if -_INT64 <= value < _INT64 else float(value)
    if math.isnan(value) or math.isinf(value):
        return None
    if value.is_integer() and abs(value) < 1e21:
        whole = int(Decimal(repr(value)))
        return whole if -_INT64 <= whole < _INT64 else value
    return value


def _go_string(data: bytes) -> str:
    """Go bytes as encoding/json writes them: each byte that is not valid UTF-8 becomes U+FFFD."""
    try:
        return data.decode()
    except UnicodeDecodeError:
        pass
    out, i = [], 0
    while i < len(data):
        lead = data[i]
        size = 1 if lead < 0x80 else 2 if lead >> 5 == 6 else 3 if lead >> 4 == 14 else 4 if lead >> 3 == 30 else 0
        try:
            out.append(data[i : i + size].decode() if size else "\ufffd")
            i += size or 1
        except UnicodeDecodeError:
            out.append("\ufffd")
            i += 1
    return "".join(out)


def _short(tag: str) -> str:
    return "!!" + tag[len(_TAG) :] if tag.startswith(_TAG) else tag


# Keys that decode to something else than a string (into interface{}).
_TYPED_KEYS = frozenset((BOOL, INT, FLOAT, NULL, TIMESTAMP, TIME))

# Keys after which kyaml's mergeAll is not the identity: merge keys, null keys, collections as keys.
_KEY_TAGS_TO_MERGE = frozenset((MERGE, NULL, EMPTY, _MAP, _SEQ))


def _text(node: Node) -> str:
    """A yaml.Node's Value: a scalar's text, "" for a collection."""
    return node.value if isinstance(node, ScalarNode) else ""


class _Reader:
    """Builds values from composed nodes by the rules of one of Go's decoders."""

    resolve: Callable[[str], tuple[str, Any]]

    def __init__(self, offset: int) -> None:
        self.offset = offset  # lines of the file before the text the nodes come from
        self.unwritable: list[_NotJSON] = []

    def fail(self, problem: str, node: Node) -> GoYamlError:
        return GoYamlError(problem, self.offset + node.start_mark.line + 1)

    def typed(self, node: ScalarNode) -> tuple[str, Any]:
        """decoder.scalar() before the JSON: a plain scalar resolves; with an explicit tag the text must be of
        that type (!!float takes an integer); a tag Go does not know leaves the text."""
        tag = node.tag
        if tag == STR:
            return STR, node.value
        if tag == EMPTY:
            return NULL, None
        if tag == TIME:
            return self.resolve(node.value)
        if tag == BINARY:
            return STR, self.binary(node)
        if tag not in _RESOLVABLE:
            return tag, node.value
        found, value = self.resolve(node.value)
        if found == TIMESTAMP and tag != TIMESTAMP:  # an explicit !!int etc.: Go does not try a time
            found, value = _resolve_number(node.value, False)
        if found == tag:
            return found, value
        if tag == FLOAT and found == INT:
            return FLOAT, float(value)
        raise self.fail(f"cannot decode {_short(found)} `{node.value}` as a {_short(tag)}", node)

    def binary(self, node: ScalarNode) -> str:
        try:
            data = base64.b64decode(node.value.replace("\n", "").replace("\r", ""), validate=True)
        except ValueError:
            raise self.fail("!!binary value contains invalid base64 data", node) from None
        return _go_string(data)

    def scalar(self, node: ScalarNode) -> Any:
        tag, value = self.typed(node)
        if tag in (INT, FLOAT):
            number = _json_number(value)
            if number is None:
                name = "NaN" if math.isnan(value) else ("+Inf" if value > 0 else "-Inf")
                return self.not_json(f"{node.value} cannot be written as JSON (json: unsupported value: {name})", node)
            return number
        if type(value) is _Unwritable:
            return self.not_json(f"the time {value} cannot be written as JSON", node)
        return value

    def not_json(self, problem: str, node: Node) -> _NotJSON:
        """A value Go decodes but encoding/json refuses: an error only if it is still there when the object
        is written (a later key of the same name may replace it)."""
        placeholder = _NotJSON(self.fail(problem, node))
        self.unwritable.append(placeholder)
        return placeholder

    def written(self, value: Any) -> Any:
        """The value, once no placeholder is left in it."""
        if self.unwritable:
            present: set[int] = set()
            stack = [value]
            while stack:
                item = stack.pop()
                if isinstance(item, dict):
                    stack.extend(item.values())
                    stack.extend(key for key in item if isinstance(key, _NotJSON))
                elif isinstance(item, list):
                    stack.extend(item)
                elif isinstance(item, _NotJSON):
                    present.add(id(item))
            for placeholder in self.unwritable:
                if id(placeholder) in present:
                    raise placeholder.error
        return value


class _NotJSON:
    def __init__(self, error: GoYamlError) -> None:
        self.error = error


class _FileReader(_Reader):
    """A document as kustomize writes it (see the module docstring): kyaml's DeAnchor, then yaml.v3 decoding
    the re-written text for RNode.MarshalJSON."""

    resolve = staticmethod(resolve_v3)
    deanchored = False  # set once _DeAnchor went over the document

    def document(self, node: Node) -> Any:
        if isinstance(node, MappingNode):
            return self.mapping(node, bool(node.flow_style), top=True)
        return self.value(node, False)

    def value(self, node: Node, flow: bool) -> Any:
        kind = type(node)
        if kind is ScalarNode:
            tag = node.tag
            if tag == STR:
                return node.value
            if tag == EMPTY:
                return "" if flow else None
            if tag == TIME and flow and ":" in node.value:
                return node.value
            return self.scalar(node)  # type: ignore[arg-type]
        flow = flow or bool(node.flow_style)  # type: ignore[attr-defined]
        if kind is SequenceNode:
            return [self.value(item, flow) for item in node.value]
        return self.mapping(node, flow, top=False)  # type: ignore[arg-type]

    def mapping(self, node: MappingNode, flow: bool, top: bool) -> dict[str, Any]:
        result, entries = self.decoded(node, flow, top)
        if "<<" in result:
            return self.flux_merge(result, next(key for key, _ in entries if _text(key) == "<<" and key.tag != MERGE))
        return result

    def decoded(
        self, node: MappingNode, flow: bool, top: bool, taken: set[str] | None = None
    ) -> tuple[dict[str, Any], list[tuple[Node, Node]]]:
        """yaml.v3 decoding the mapping: the object itself into map[string]interface{} (a scalar key is its
        text, a null key is left out), anything below into interface{} (which is no JSON object unless every
        key is a string). ``taken``: merging into a map, the keys already there (skipped, values and all)."""
        result: dict[str, Any] = {}
        merge = None
        value = self.value
        entries = self.entries(node)
        for key, item in entries:
            tag = key.tag
            if tag == STR and not top and type(key) is ScalarNode:
                result[key.value] = value(item, flow)
            elif tag == MERGE and key.value == "<<" and type(key) is ScalarNode:
                merge = (key, item)  # one kyaml left, see below
            elif top:
                if not isinstance(key, ScalarNode):
                    kind = "!!map" if isinstance(key, MappingNode) else "!!seq"
                    raise self.fail(f"cannot unmarshal {kind} into string (a key of the object)", key)
                if tag == BINARY:
                    name = self.binary(key)
                elif tag in (STR, EMPTY) or tag not in _RESOLVABLE or self.typed(key)[0] != NULL:
                    name = key.value
                else:
                    continue  # a null key, which yaml.v3 leaves out of a map[string]interface{}
                if taken is not None:
                    if name in taken:
                        continue
                    taken.add(name)
                result[name] = value(item, flow)
            elif self.string_key(key, flow):
                result[key.value] = value(item, flow)
            else:
                what = f"the key {key.value}" if isinstance(key, ScalarNode) else "a key that is a collection"
                raise self.fail(
                    f"{what} is not a string: kustomize cannot write this mapping as JSON"
                    " (json: unsupported type: map[interface {}]interface {})",
                    key,
                )
        if merge is not None:
            # A merge key kyaml left (after a quoted "<<" key, which Clear("<<") removed instead, or one copied
            # in from an inline source): yaml.v3 merges it itself, into this map[string]interface{}, so any
            # scalar key of a source is its text. A source's key is skipped (its value not even decoded) when
            # a key of the mapping decodes to the same string (the merge key itself: "<<"), or an earlier
            # source had it.
            key, merged = merge
            if taken is None:
                taken = {"<<"} | {
                    _text(name) for name, _ in entries if isinstance(name, ScalarNode) and name.tag not in _TYPED_KEYS
                }
            sources = merged.value if isinstance(merged, SequenceNode) else [merged]
            for source in sources:
                if not isinstance(source, MappingNode):
                    raise self.fail("map merge requires map or sequence of maps as the value", key)
                result.update(self.decoded(source, flow or bool(source.flow_style), True, taken)[0])
        return result, entries

    def flux_merge(self, result: dict[str, Any], key: Node) -> dict[str, Any]:
        """A "<<" key kyaml left (a quoted one): go-yaml v2 writes it plain, so Flux reads it as a merge key,
        where it stands among the keys in go-yaml's order."""
        merged: dict[str, Any] = {}
        for name in sorted(result, key=_V2_KEY_ORDER):
            value = result[name]
            if name != "<<":
                merged[name] = value
                continue
            for source in value[::-1] if isinstance(value, list) else [value]:
                if not isinstance(source, dict):
                    raise self.fail(
                        'Flux reads the key "<<" as a merge key: map merge requires map or sequence of maps'
                        " as the value",
                        key,
                    )
                merged.update(source)
        return merged

    @staticmethod
    def string_key(key: Node, flow: bool) -> bool:
        """What ShortTag() says of a key once kyaml wrote it out: a string, or not."""
        if not isinstance(key, ScalarNode):
            return False
        tag = key.tag
        return tag in (STR, EMPTY, MERGE) or (tag == TIME and flow and ":" in key.value)

    def entries(self, node: MappingNode) -> list[tuple[Node, Node]]:
        """The mapping's keys and values after kyaml's DeAnchor (its mergeAll runs on every mapping, and is
        not the identity for a key "<<", a null key or a collection as a key), a key that is there twice
        refused (yaml.v3's uniqueKeys). A document with merge keys went through ``_DeAnchor`` already."""
        pairs: list[tuple[Node, Node]] = node.value
        try:
            names = (
                {key.value for key, _ in pairs} if _KEY_TAGS_TO_MERGE.isdisjoint([k.tag for k, _ in pairs]) else None
            )
        except TypeError:  # a collection with an explicit tag as a key
            names = None
        if names is not None and len(names) == len(pairs) and "<<" not in names:
            return pairs  # the usual mapping: mergeAll leaves it as it is, no key twice
        entries = pairs if self.deanchored else _DeAnchor(self).merged(node, [])
        seen: dict[tuple[bool, str], Node] = {}
        for key, _ in entries:
            name = (isinstance(key, ScalarNode), _text(key))
            first = seen.get(name)
            if first is None:
                seen[name] = key
                continue
            if key.tag == NULL and first.tag == NULL and key.start_mark.line == first.start_mark.line:  # set twice
                raise self.fail(f'a null key ("{key.value}"): kustomize refuses it (mapping key already defined)', key)
            where = self.offset + first.start_mark.line + 1
            raise self.fail(f'mapping key "{name[1]}" already defined at line {where}', key)
        return entries


class _Alias(Node):
    """An alias as yaml.v3 has it: a node of its own pointing at the anchored one (PyYAML puts the anchored
    node itself in its place)."""

    id = "alias"

    def __init__(self, target: Node) -> None:
        super().__init__("", "", target.start_mark, target.end_mark)
        self.target = target


class _DeAnchor:
    """kyaml's RNode.DeAnchor, step by step, on the nodes, for documents with merge keys, where the order
    matters: a mapping merges its sources as they are at that moment (an anchored mapping is processed where
    it is defined, or where an alias to it is reached, whichever comes first; an inline source never on its
    own), before its own children, and works on copies of them (an alias in a copy still points at the
    anchored node)."""

    def __init__(self, reader: _Reader) -> None:
        self.reader = reader

    def run(self, root: Node) -> Node:
        seen: set[int] = set()

        def mark(node: Node) -> Node:
            if id(node) in seen:
                return _Alias(node)
            seen.add(id(node))
            if isinstance(node, MappingNode):
                node.value = [(mark(key), mark(value)) for key, value in node.value]
            elif isinstance(node, SequenceNode):
                node.value = [mark(item) for item in node.value]
            return node

        return self.visit(mark(root))

    def visit(self, node: Node) -> Node:
        if isinstance(node, _Alias):
            return _copy(self.visit(node.target))
        if isinstance(node, MappingNode):
            node.value = self.merged(node, self.remove_merge_tags(node))
            node.value = [(self.visit(key), self.visit(value)) for key, value in node.value]
        elif isinstance(node, SequenceNode):
            node.value = [self.visit(item) for item in node.value]
        return node

    def remove_merge_tags(self, node: MappingNode) -> list[MappingNode]:
        """removeMergeTags: the mappings a merge key names (the first one last, so that it wins); the first
        key named "<<" goes, merge key or not (Clear("<<"))."""
        if not node.value:
            return []
        keys = [key for key, _ in node.value if key.tag == MERGE]
        if len(keys) > 1:
            raise self.reader.fail("duplicate merge key", keys[1])
        sources: list[MappingNode] = []
        if keys:
            value = next(item for key, item in node.value if key is keys[0])
            if isinstance(value, (MappingNode, _Alias)):
                items = [value]
            elif isinstance(value, SequenceNode):
                items = value.value
            else:
                raise self.reader.fail("map merge requires map or sequence of maps as the value", keys[0])
            for item in items:
                target = item.target if isinstance(item, _Alias) else item
                if isinstance(item, SequenceNode):
                    raise self.reader.fail("invalid map merge: received a nested sequence", keys[0])
                if not isinstance(target, MappingNode):
                    raise self.reader.fail("invalid map merge: received alias for a non-map value", keys[0])
                sources.insert(0, target)
        for index, (key, _) in enumerate(node.value):
            if _text(key) == "<<":
                del node.value[index]
                break
        return sources

    def merged(self, node: MappingNode, sources: list[MappingNode]) -> list[tuple[Node, Node]]:
        """mergeAll: a copy of the mapping, then each source's fields and the mapping's own set on it
        (VisitFields takes each field by its name, so the first of a name; MapEntrySetter replaces the first
        key of the same text, a null key's text counting as "", or appends)."""
        result = [(_copy(key), _copy(value)) for key, value in node.value]
        for source in [*sources, node]:
            fields = source.value
            for name in [_text(key) for key, _ in fields]:
                key, value = next((k, v) for k, v in fields if _text(k) == name)
                key, value = _copy(key), _copy(value)
                wanted = "" if key.tag in (NULL, EMPTY) else _text(key)
                for index, (existing, _) in enumerate(result):
                    if _text(existing) == wanted:
                        result[index] = (key, value)
                        break
                else:
                    result.append((key, value))
        return result


def _copy(node: Node) -> Node:
    """CopyYNode: a deep copy, in which an alias stays an alias to the same anchored node."""
    if isinstance(node, ScalarNode):
        return ScalarNode(node.tag, node.value, node.start_mark, node.end_mark, node.style)
    if isinstance(node, SequenceNode):
        return SequenceNode(
            node.tag, [_copy(item) for item in node.value], node.start_mark, node.end_mark, node.flow_style
        )
    if isinstance(node, MappingNode):
        pairs = [(_copy(key), _copy(value)) for key, value in node.value]
        return MappingNode(node.tag, pairs, node.start_mark, node.end_mark, node.flow_style)
    return node  # an alias


# Characters encoding/json leaves as they are that go-yaml v2 then reads as YAML (sigs.k8s.io/yaml's
# JSONToYAML parses the JSON kustomize wrote): NEL is a line break, C1 controls, DEL and U+FFFE/U+FFFF are
# refused. They get into strings only through escapes and !!binary.
_JSON_RAW = re.compile("[\x7f-\x9f\ufffe\uffff]")
_JSON_CONTROL = re.compile("[\x7f-\x84\x86-\x9f\ufffe\uffff]")
_NEL_RUN = re.compile("[ \x85]*\x85[ \x85]*")


class _EscapedFileReader(_FileReader):
    """_FileReader for a text with escapes or !!binary: strings also pass go-yaml v2 reading them in JSON."""

    def value(self, node: Node, flow: bool) -> Any:
        result = super().value(node, flow)
        if type(result) is str and _JSON_RAW.search(result):
            return self.json_string(result, node, key=False)
        return result

    def mapping(self, node: MappingNode, flow: bool, top: bool) -> dict[str, Any]:
        result = super().mapping(node, flow, top)
        for name in result:
            if _JSON_RAW.search(name):
                key = next((key for key, _ in node.value if _text(key) == name), node)
                self.json_string(name, key, key=True)
        return result

    def json_string(self, text: str, node: Node, key: bool) -> str:
        """The string as go-yaml v2 reads it inside double quotes: a raw NEL folds like a line break."""
        if _JSON_CONTROL.search(text):
            raise self.fail("control characters are not allowed (Flux cannot read kustomize's output)", node)
        if key:
            raise self.fail("a key holding U+0085 (NEL): Flux cannot read kustomize's output", node)

        def fold(match: re.Match[str]) -> str:
            after = text[match.end() : match.end() + 4]  # a line that starts with a document marker
            if match.group().endswith("\x85") and after[:3] in ("---", "...") and after[3:4] in (" ", "\x85"):
                raise self.fail("found unexpected document indicator (Flux cannot read kustomize's output)", node)
            breaks = match.group().count("\x85")
            return " " if breaks == 1 else "\n" * (breaks - 1)

        return _NEL_RUN.sub(fold, text)


class _OutputReader(_Reader):
    """go-yaml v2 decoding into interface{}, then sigs.k8s.io/yaml's convertToJSONableObject (YAMLToJSON)."""

    resolve = staticmethod(resolve_v2)

    def value(self, node: Node) -> Any:
        if isinstance(node, ScalarNode):
            tag = node.tag
            if tag == STR:
                return node.value
            if tag == EMPTY:
                return None
            if tag == TIME:
                return node.value  # go-yaml v2 keeps a timestamp as its text
            if tag == TIMESTAMP:
                self.typed(node)  # an explicit !!timestamp must be one
                return node.value
            return self.scalar(node)
        if isinstance(node, SequenceNode):
            return [self.value(item) for item in node.value]
        result: dict[Any, Any] = {}
        self.fill(node, result, set())  # type: ignore[arg-type]
        return result

    def fill(self, node: MappingNode, result: dict[Any, Any], active: set[int]) -> None:
        """decoder.mapping(): keys in order, a merge where it stands (later keys win), a key again replaces."""
        if id(node) in active:
            raise self.fail("anchor value contains itself", node)
        active.add(id(node))
        for key, item in node.value:
            if isinstance(key, ScalarNode) and key.tag == MERGE:
                items = item.value[::-1] if isinstance(item, SequenceNode) else [item]
                for source in items:
                    if not isinstance(source, MappingNode):
                        raise self.fail("map merge requires map or sequence of maps as the value", key)
                    self.fill(source, result, active)
                continue
            result[self.key(key)] = self.value(item)
        active.discard(id(node))

    def key(self, node: Node) -> str | _NotJSON:
        """The key as YAMLToJSON writes it; one it cannot write is an error only if it is still there then."""
        if not isinstance(node, ScalarNode):
            raise self.fail("invalid map key: a mapping or a list", node)
        if node.tag == STR:
            return node.value  # type: ignore[no-any-return]
        tag, value = self.typed(node)
        if tag == NULL:
            return self.not_json("unsupported map key of type: <nil>", node)
        if tag == TIMESTAMP:
            return node.value  # type: ignore[no-any-return]
        if tag == BOOL:
            return "true" if value else "false"
        if tag == INT:
            if value >= _INT64:
                return self.not_json(f"unsupported map key of type: uint64, key: {value}", node)
            return str(value)
        if tag == FLOAT:
            return _format_float32(value)
        return str(value)


def _v2_less(a: str, b: str) -> bool:
    """go-yaml v2's keyList.Less for two string keys (the order it writes a mapping's keys in)."""
    for i in range(min(len(a), len(b))):
        if a[i] == b[i]:
            continue
        a_letter, b_letter = a[i].isalpha(), b[i].isalpha()
        if a_letter and b_letter:
            return a[i] < b[i]
        if a_letter or b_letter:
            return b_letter
        a_number = b_number = 0
        if a[i] == "0" or b[i] == "0":
            for j in range(i - 1, -1, -1):
                if not a[j].isdigit():
                    break
                if a[j] != "0":
                    a_number = b_number = 1
                    break
        a_end = i
        while a_end < len(a) and a[a_end].isdigit():
            a_number = a_number * 10 + ord(a[a_end]) - 48
            a_end += 1
        b_end = i
        while b_end < len(b) and b[b_end].isdigit():
            b_number = b_number * 10 + ord(b[b_end]) - 48
            b_end += 1
        if a_number != b_number:
            return a_number < b_number
        if a_end != b_end:
            return a_end < b_end
        return a[i] < b[i]
    return len(a) < len(b)


def _v2_compare(a: str, b: str) -> int:
    return -1 if _v2_less(a, b) else (1 if _v2_less(b, a) else 0)


_V2_KEY_ORDER = cmp_to_key(_v2_compare)


def _format_float32(value: float) -> str:
    """strconv.FormatFloat(value, 'g', -1, 32), which sigs.k8s.io/yaml uses to turn a float key into a string."""
    try:
        single = struct.unpack("f", struct.pack("f", value))[0]
    except OverflowError:
        single = math.copysign(math.inf, value)
    if math.isnan(single):
        return ".nan"
    if math.isinf(single):
        return ".inf" if single > 0 else "-.inf"
    if single == 0:
        return "-0" if math.copysign(1, single) < 0 else "0"
    text = f"{single:.8e}"
    for precision in range(9):  # the fewest digits that read back as the same float32
        text = f"{single:.{precision}e}"
        if struct.unpack("f", struct.pack("f", float(text)))[0] == single:
            break
    mantissa, exponent = text.split("e")
    sign = "-" if mantissa.startswith("-") else ""
    digits = mantissa.lstrip("-").replace(".", "").rstrip("0") or "0"
    power = int(exponent)
    if power < -4 or power >= 6:  # %e outside [-4, 6): Go's 'g' with the shortest digits
        rest = f".{digits[1:]}" if len(digits) > 1 else ""
        return f"{sign}{digits[0]}{rest}e{'-' if power < 0 else '+'}{abs(power):02d}"
    if power < 0:
        return f"{sign}0.{'0' * (-power - 1)}{digits}"
    whole, fraction = digits[: power + 1].ljust(power + 1, "0"), digits[power + 1 :]
    return f"{sign}{whole}{'.' + fraction if fraction else ''}"


# ---------------------------------------------------------------------------------------------------------
# The two readers.

_SEPARATOR = re.compile(r"\n---.*\n")
_SEPARATOR_LINE = re.compile(r"^---.*$", re.M)
_PLAIN_SEPARATOR = re.compile(r"---(?:[ \t].*)?")
_NEEDS_PIECES = re.compile(r"^(?:%|\.\.\.)", re.M)


def _pieces(text: str) -> list[tuple[str, int]]:
    """kyaml's splitDocuments: each document's text and the 0-based line it starts on."""
    pieces, previous = [], 0
    for match in _SEPARATOR.finditer(text):
        after = match.group()[4:].strip()
        if after and not after.startswith("#"):
            line = text.count("\n", 0, match.start() + 1)
            raise GoYamlError(f"invalid document separator: {match.group().strip()}", line + 1)
        pieces.append((text[previous : match.start()] + "\n", text.count("\n", 0, previous)))
        previous = match.end()
    pieces.append((text[previous:], text.count("\n", 0, previous)))
    return pieces


def _dropped(node: Node) -> bool:
    """IsNilOrEmpty: null, {} and [] documents are left out."""
    if isinstance(node, ScalarNode):
        return node.tag in (NULL, EMPTY)
    return not node.value


def _file_nodes(text: str, one_piece: bool) -> tuple[list[tuple[Node, int]], bool]:
    """The root node of each document kyaml keeps, with the line offset of the text it was composed from.

    kyaml decodes piece by piece, and only the first document of each piece. When the separators are plain
    `---` lines and no `...` or directive can start a document inside a piece, libyaml composing the whole
    text at once finds the same documents (checked: at most one per piece), which is faster; an error there
    is looked for again piece by piece, where Go finds it. The flag says whether the text is one piece.
    """
    if one_piece:
        pieces = [(text, 0)]
    else:
        if "\r" in text:
            text = text.replace("\r\n", "\n")
        pieces = _pieces(text)
    if (
        len(pieces) > 1
        and not _NEEDS_PIECES.search(text)
        and all(_PLAIN_SEPARATOR.fullmatch(line) for line in _SEPARATOR_LINE.findall(text))
    ):
        try:
            nodes = [node for node in _compose(text, True, 0, False) if not _dropped(node)]
        except GoYamlError:
            pass
        else:
            starts = [start for _, start in pieces]
            owners = [bisect.bisect_right(starts, node.start_mark.line) for node in nodes]
            if len(set(owners)) == len(owners):
                return [(node, 0) for node in nodes], False
    found = []
    for piece, offset in pieces:
        for node in _compose(piece, True, offset, True):
            if not _dropped(node):
                found.append((node, offset))
    return found, len(pieces) == 1


def _field(node: Node, name: str) -> Node | None:
    """RNode.Field: the value of the first key of that text."""
    if isinstance(node, MappingNode):
        for key, value in node.value:
            if _text(key) == name:
                return value  # type: ignore[no-any-return]
    return None


def _unwrapped(node: Node) -> list[Node] | None:
    """ByteReader unwraps a file's only document when it is a List (or a ResourceList) with items: its items
    are the objects. None when the document is no such list."""
    kind = _field(node, "kind")
    if not isinstance(kind, ScalarNode) or kind.value not in ("List", "ResourceList"):
        return None
    items = _field(node, "items")
    if items is None and _field(node, "functionConfig") is None:
        return None
    if isinstance(items, MappingNode):
        return [part for pair in items.value for part in pair]
    return list(items.value) if isinstance(items, SequenceNode) else []


def read_file(text: str, *, one_piece: bool = False) -> list[tuple[Any, int]]:
    """Each object kustomize reads in a checkout file, as Flux gets it, with the 1-based line it starts on.

    ``one_piece``: the file was UTF-16, where kyaml finds no `---` line to cut at (it looks for UTF-8 bytes):
    yaml.v3 reads its first document only."""
    documents = []
    nodes, single = _file_nodes(text, one_piece)
    if single and len(nodes) == 1 and (items := _unwrapped(nodes[0][0])) is not None:
        offset = nodes[0][1]
        nodes = [(item, offset) for item in items if not _dropped(item)]
    try:
        reader_class = _EscapedFileReader if "\\" in text or "!!binary" in text else _FileReader
        for node, offset in nodes:
            reader = reader_class(offset)
            line = offset + node.start_mark.line + 1
            root = node
            if "<<" in text:
                root = _DeAnchor(reader).run(node)
                reader.deanchored = True
                if _dropped(root):  # {} once merged
                    continue
            documents.append((reader.written(reader.document(root)), line))
    except RecursionError:
        raise GoYamlError("an alias refers to a node that contains it: kustomize cannot expand it") from None
    return documents


def check_file(text: str, *, one_piece: bool = False) -> None:
    """Raise GoYamlError when kustomize would refuse the file."""
    read_file(text, one_piece=one_piece)


def read_output(text: str) -> list[Any]:
    """Each document of kustomize's output as Flux reads it (YAMLToJSON); null documents are left out."""
    for match in _SEPARATOR_LINE.finditer(text):
        after = match.group()[3:].strip()
        if after and not after.startswith("#"):  # apimachinery's YAMLReader
            raise GoYamlError(f"invalid Yaml document separator: {after}", text.count("\n", 0, match.start()) + 1)
    values = []
    try:
        for node in _compose(text, False, 0, False):
            if not (isinstance(node, ScalarNode) and node.tag in (NULL, EMPTY)):
                reader = _OutputReader(0)
                values.append(reader.written(reader.value(node)))
    except RecursionError:
        raise GoYamlError("an alias refers to a node that contains it") from None
    return values


# ---------------------------------------------------------------------------------------------------------
# go-yaml v2 as PyYAML classes, for the substitution round trip (substitute.py): the dumper quotes what v2
# would not read back as a string, the loader types plain scalars as v2 does (a timestamp stays a string),
# multi-line strings are literal blocks, and a tag v2 does not know is ignored.


def _v2_tag(value: str) -> str:
    tag = resolve_v2(value)[0]
    return STR if tag == TIMESTAMP else tag


def _round_trip_resolve(self: Any, kind: type[Node], value: Any, implicit: Any) -> str:
    if kind is ScalarNode:
        return _v2_tag(value) if implicit[0] else STR
    return _SEQ if kind is SequenceNode else _MAP


class V2Dumper(_BaseDumper):
    resolve = _round_trip_resolve

    def ignore_aliases(self, data: Any) -> bool:
        return True  # Go writes no anchors


class V2Loader(_BaseLoader):
    resolve = _round_trip_resolve


def _represent_str(dumper: V2Dumper, data: str) -> yaml.ScalarNode:
    if "\n" in data:
        return dumper.represent_scalar(STR, data, style="|")
    return dumper.represent_str(data)


def _construct_resolved(loader: V2Loader, node: yaml.ScalarNode) -> Any:
    value = loader.construct_scalar(node)
    tag, resolved = resolve_v2(value)
    if tag == node.tag:
        return resolved
    if tag == INT and node.tag == FLOAT:  # an explicit !!float 3
        return float(resolved)
    return value


def _construct_unknown(loader: V2Loader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)  # type: ignore[arg-type]


V2Dumper.add_representer(str, _represent_str)
for _tag in (BOOL, INT, FLOAT):
    V2Loader.add_constructor(_tag, _construct_resolved)
V2Loader.add_constructor(None, _construct_unknown)
