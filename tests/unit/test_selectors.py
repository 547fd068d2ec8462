"""Label selectors and object names checked as the API server checks them (pure). The same
selectors are sent to the real API server in tests/integration/test_selectors.py, which proves
the two agree."""

from __future__ import annotations

import pytest

from phoebe_cli.errors import ExitCode, UsageError, exit_code_for
from phoebe_cli.flux.selectors import check_selector, namespace_problem, parse_selector, split_name

# (selector, labels, matches) — matching as apimachinery's labels.Requirement.Matches
MATCHES = [
    ("", {}, True),
    ("app=web", {"app": "web"}, True),
    ("app==web", {"app": "db"}, False),
    ("app=", {"app": ""}, True),
    ("app=", {}, False),
    ("app!=web", {}, True),
    ("tier in (front, back)", {"tier": "back"}, True),
    ("tier in (front,back)", {}, False),
    ("tier notin (front,back)", {"tier": "back"}, False),
    ("tier notin (front,back)", {}, True),
    ("tier in (a,,b)", {"tier": ""}, True),
    ("tier in ()", {"tier": ""}, True),
    ("app.kubernetes.io/name", {"app.kubernetes.io/name": "x"}, True),
    ("!legacy", {"legacy": "true"}, False),
    ("app=web,tier in (a,b),!legacy", {"app": "web", "tier": "a"}, True),
    ("replicas>2", {"replicas": "3"}, True),
    ("replicas>2", {"replicas": "2"}, False),
    ("replicas<2", {"replicas": "x"}, False),
    ("replicas<2", {}, False),
    ("in in (in)", {"in": "in"}, True),  # keywords are fine keys and values
    ("  app = web , tier  ", {"app": "web", "tier": "a"}, True),
]

# Accepted by the API server (checked against it in the integration test).
VALID = [s for s, _, _ in MATCHES] + ["example.com/team=a", "a-b_c.d=E-f_g.h", "x in (a,)", "y notin ()", "z>0", "z<10"]

# Refused by the API server with 400 (and so here, before any request).
INVALID = [
    "a in (b",
    "=x",
    "a b",
    "a>x",
    "a>",
    "a>-5",  # not a label value
    "a//b",
    "Example.com/a=b",  # the prefix is a DNS subdomain: lower case
    "/a",
    "a/",
    "a=-x",
    "a=b)",
    "!a=b",
    "a,",
    ",a",
    "a!b",
    "a==b==c",
    "a=" + "x" * 64,
    "k" * 64,
    "a in b",
    "a=(b)",
    "a in (b c)",
    "a=b c",
]


@pytest.mark.parametrize(("selector", "labels", "matches"), MATCHES)
def test_matching(selector: str, labels: dict[str, str], matches: bool) -> None:
    assert parse_selector(selector)(labels) is matches


@pytest.mark.parametrize("selector", VALID)
def test_valid(selector: str) -> None:
    check_selector(selector)


@pytest.mark.parametrize("selector", INVALID)
def test_invalid_is_a_one_line_usage_error(selector: str) -> None:
    with pytest.raises(UsageError) as caught:
        check_selector(selector)
    assert exit_code_for(caught.value) is ExitCode.USAGE
    assert caught.value.message.startswith(f"invalid label selector {selector!r}: ")
    assert "\n" not in caught.value.message


def test_messages_say_what_is_wrong() -> None:
    def why(selector: str) -> str:
        with pytest.raises(UsageError) as caught:
            check_selector(selector)
        return caught.value.message.split(": ", 1)[1]

    assert why("a in (b") == "found the end of the selector, expected a value, ',' or ')'"
    assert why("a>x") == "'>' needs an integer, not 'x'"
    assert why("a//b") == "key 'a//b' has more than one '/'"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("web", (None, "web")), ("apps/web", ("apps", "web")), ("a.b-c", (None, "a.b-c"))],
)
def test_names(text: str, expected: tuple[str | None, str]) -> None:
    assert split_name(text) == expected


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "the name is empty"),
        ("a/b/c", "too many '/'"),
        ("/web", "the namespace is empty"),
        ("apps/", "the name is empty"),
        ("Web", "'Web' is not an object name"),
        ("Apps/web", "'Apps' is not a namespace name"),
    ],
)
def test_bad_names_are_usage_errors(text: str, why: str) -> None:
    with pytest.raises(UsageError) as caught:
        split_name(text)
    assert caught.value.message.startswith(f"bad object name {text!r}: {why}")


def test_namespaces() -> None:
    assert namespace_problem("flux-system") is None
    assert namespace_problem("") == "the namespace is empty"
    assert namespace_problem("a.b") is not None  # a DNS label: no dots
    assert namespace_problem("x" * 64) is not None
