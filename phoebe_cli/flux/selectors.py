"""Kubernetes label selectors (``a=b,c!=d,e in (x,y),!f,g,h>5``), parsed and matched as the API
server does. Pure.

The grammar and the checks are those of ``k8s.io/apimachinery/pkg/labels.Parse`` (v0.36): the
same lexer (special symbols ``= ! ( ) , > <``, keywords ``in``/``notin``), the same key rules (an
optional DNS-subdomain prefix and ``/``, then a name of at most 63 characters), the same value
rules (at most 63 characters, alphanumeric at both ends), and ``>``/``<`` take an integer. A
selector the server would refuse with 400 is refused here, before any request is sent, as a
usage error; one it accepts is accepted.

``status`` lists whole collections (the tree needs the parents of what is selected), so it
matches labels itself; ``sync`` sends the selector to the server, after checking it here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from phoebe_cli.errors import UsageError

Requirement = Callable[[Mapping[str, str]], bool]

_SPECIAL = frozenset("=!(),><")
_WHITESPACE = frozenset(" \t\r\n")
_OPERATORS = {"!": "!", "!=": "!=", "==": "==", "=": "=", ">": ">", "<": "<", "(": "(", ")": ")", ",": ","}
_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS_SUBDOMAIN = re.compile(rf"^{_DNS_LABEL}(\.{_DNS_LABEL})*$")
_MAX_NAME = 63
_MAX_PREFIX = 253

IDENTIFIER = "identifier"
END = "end"


@dataclass(frozen=True)
class _Token:
    kind: str  # IDENTIFIER, END, "in", "notin", or an operator/punctuation literal
    text: str


class SelectorError(UsageError):
    """A label selector the API server would refuse."""

    def __init__(self, selector: str, why: str) -> None:
        super().__init__(f"invalid label selector {selector!r}: {why}")


def _lex(selector: str) -> list[_Token]:
    tokens: list[_Token] = []
    position, size = 0, len(selector)
    while True:
        while position < size and selector[position] in _WHITESPACE:
            position += 1
        if position >= size:
            tokens.append(_Token(END, ""))
            return tokens
        if selector[position] in _SPECIAL:
            # The longest run of special symbols that is still an operator ("!=" before "!").
            buffer, last = "", None
            while position < size and selector[position] in _SPECIAL:
                candidate = buffer + selector[position]
                if candidate in _OPERATORS:
                    buffer, last = candidate, candidate
                    position += 1
                elif last is not None:
                    break
                else:
                    buffer = candidate
                    position += 1
            if last is None:
                tokens.append(_Token("error", buffer))
                return tokens
            tokens.append(_Token(last, last))
            continue
        start = position
        while position < size and selector[position] not in _SPECIAL and selector[position] not in _WHITESPACE:
            position += 1
        word = selector[start:position]
        tokens.append(_Token(word if word in ("in", "notin") else IDENTIFIER, word))


def _shown(token: _Token) -> str:
    if token.kind == END:
        return "the end of the selector"
    return repr(token.text)


def check_key(key: str) -> str | None:
    """Why ``key`` is not a label key, or None (apimachinery's IsLabelKey)."""
    parts = key.split("/")
    if len(parts) > 2:
        return f"key {key!r} has more than one '/'"
    if len(parts) == 2:
        prefix, name = parts
        if not prefix:
            return f"key {key!r} has an empty prefix before '/'"
        if len(prefix) > _MAX_PREFIX or not _DNS_SUBDOMAIN.match(prefix):
            return f"key {key!r}: the prefix must be a DNS subdomain (lower case, e.g. example.com)"
    else:
        name = parts[0]
    if not name:
        return f"key {key!r} has an empty name"
    if len(name) > _MAX_NAME:
        return f"key {key!r}: the name is longer than {_MAX_NAME} characters"
    if not _NAME.match(name):
        return (
            f"key {key!r}: the name must be letters, digits, '-', '_' or '.', and start and end with a letter or digit"
        )
    return None


def check_value(value: str) -> str | None:
    """Why ``value`` is not a label value, or None (apimachinery's IsValidLabelValue)."""
    if not value:
        return None
    if len(value) > _MAX_NAME:
        return f"value {value!r} is longer than {_MAX_NAME} characters"
    if not _NAME.match(value):
        return f"value {value!r} must be letters, digits, '-', '_' or '.', and start and end with a letter or digit"
    return None


class _Parser:
    def __init__(self, selector: str) -> None:
        self.selector = selector
        self.tokens = _lex(selector)
        self.position = 0

    def fail(self, why: str) -> SelectorError:
        return SelectorError(self.selector, why)

    def peek(self, values: bool = True) -> _Token:
        token = self.tokens[min(self.position, len(self.tokens) - 1)]
        if token.kind == "error":
            raise self.fail(f"{token.text!r} is not an operator")
        if values and token.kind in ("in", "notin"):
            return _Token(IDENTIFIER, token.text)  # "in" is a fine value or key
        return token

    def take(self, values: bool = True) -> _Token:
        token = self.peek(values)
        self.position += 1
        return token

    def parse(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        while True:
            token = self.peek()
            if token.kind == END:
                return requirements
            if token.kind not in (IDENTIFIER, "!"):
                raise self.fail(f"found {_shown(token)}, expected a key or '!'")
            requirements.append(self.requirement())
            after = self.take()
            if after.kind == END:
                return requirements
            if after.kind != ",":
                raise self.fail(f"found {_shown(after)}, expected ',' or the end of the selector")
            following = self.peek()
            if following.kind not in (IDENTIFIER, "!"):
                raise self.fail(f"found {_shown(following)}, expected a key after ','")

    def requirement(self) -> Requirement:
        negated = False
        token = self.take()
        if token.kind == "!":
            negated = True
            token = self.take()
        if token.kind != IDENTIFIER:
            raise self.fail(f"found {_shown(token)}, expected a key")
        key = token.text
        if (why := check_key(key)) is not None:
            raise self.fail(why)
        if self.peek().kind in (END, ","):
            return (lambda labels: key not in labels) if negated else (lambda labels: key in labels)
        if negated:
            raise self.fail(f"'!{key}' takes no operator or value")
        operator = self.take(values=False)
        if operator.kind in ("in", "notin"):
            values = self.value_set()
            if operator.kind == "in":
                return lambda labels: key in labels and labels[key] in values
            return lambda labels: key not in labels or labels[key] not in values
        if operator.kind not in ("=", "==", "!=", ">", "<"):
            raise self.fail(f"found {_shown(operator)} after {key!r}, expected one of: in, notin, =, ==, !=, >, <")
        value = self.exact_value()
        if operator.kind in (">", "<"):
            number = _integer(value)
            if number is None:
                raise self.fail(f"'{operator.kind}' needs an integer, not {value!r}")
        if (why := check_value(value)) is not None:
            raise self.fail(why)
        if operator.kind in (">", "<"):
            return _compare(key, number or 0, operator.kind)
        if operator.kind == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: key in labels and labels[key] == value

    def value_set(self) -> frozenset[str]:
        opening = self.take()
        if opening.kind != "(":
            raise self.fail(f"found {_shown(opening)}, expected '('")
        values: set[str] = set()
        if self.peek().kind == ")":
            self.take()
            return frozenset({""})
        expect_value = True
        while True:
            token = self.take()
            if token.kind == IDENTIFIER and expect_value:
                if (why := check_value(token.text)) is not None:
                    raise self.fail(why)
                values.add(token.text)
                expect_value = False
            elif token.kind == ",":
                if expect_value:
                    values.add("")  # "(a,,b)" and "(,a)" hold the empty value
                expect_value = True
            elif token.kind == ")":
                if expect_value:
                    values.add("")
                return frozenset(values)
            else:
                raise self.fail(f"found {_shown(token)}, expected a value, ',' or ')'")

    def exact_value(self) -> str:
        token = self.peek()
        if token.kind in (END, ","):
            return ""
        self.take()
        if token.kind != IDENTIFIER:
            raise self.fail(f"found {_shown(token)}, expected a value")
        return token.text


_INTEGER = re.compile(r"^[+-]?[0-9]+$")


def _integer(text: str) -> int | None:
    """Go's strconv.ParseInt(text, 10, 64), or None."""
    if not _INTEGER.match(text):
        return None
    number = int(text)
    return number if -(2**63) <= number < 2**63 else None


def _compare(key: str, number: int, operator: str) -> Requirement:
    def matches(labels: Mapping[str, str]) -> bool:
        have = _integer(labels[key]) if key in labels else None
        if have is None:
            return False
        return have > number if operator == ">" else have < number

    return matches


def parse_selector(selector: str | None) -> Requirement:
    """A predicate over an object's labels; every requirement must hold. Raises SelectorError (a
    usage error, exit 2) for a selector the API server would refuse."""
    if not selector or not selector.strip():
        return lambda labels: True
    requirements = _Parser(selector).parse()
    return lambda labels: all(req(labels) for req in requirements)


def check_selector(selector: str | None) -> None:
    """Raise SelectorError when the API server would refuse ``selector``; send nothing."""
    parse_selector(selector)


# --- object names -----------------------------------------------------------------------------
# Names are checked as the API server checks them, so a name that cannot exist is a usage error
# (exit 2), not a lookup that finds nothing (exit 5). Namespaces are DNS labels; the names of
# custom resources (every kind phoebe selects) are DNS subdomains.
_DNS_LABEL_ONLY = re.compile(rf"^{_DNS_LABEL}$")


def namespace_problem(namespace: str) -> str | None:
    """Why ``namespace`` cannot be a namespace's name, or None."""
    if not namespace:
        return "the namespace is empty"
    if len(namespace) > _MAX_NAME or not _DNS_LABEL_ONLY.match(namespace):
        return (
            f"{namespace!r} is not a namespace name "
            f"(lower case letters, digits and '-', at most {_MAX_NAME} characters)"
        )
    return None


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be the name of a Flux object, or None."""
    if not name:
        return "the name is empty"
    if len(name) > _MAX_PREFIX or not _DNS_SUBDOMAIN.match(name):
        return f"{name!r} is not an object name (lower case letters, digits, '-' and '.')"
    return None


def split_name(text: str, *, forms: str = "NAME or NAMESPACE/NAME") -> tuple[str | None, str]:
    """``NAME`` or ``NAMESPACE/NAME`` -> (namespace or None, name), checked; UsageError otherwise."""
    parts = text.split("/")
    why: str | None
    if len(parts) > 2:
        why = "too many '/'"
    elif len(parts) == 2:
        why = namespace_problem(parts[0]) or name_problem(parts[1])
    else:
        why = name_problem(parts[0])
    if why is not None:
        raise UsageError(f"bad object name {text!r}: {why} (use {forms})")
    return (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0])
