"""Flux postBuild substitution: ports of fluxcd/pkg envsubst (eval_test.go, funcs_test.go, parse/parse_test.go)
and kustomize (kustomize_varsub_test.go + testdata), plus cases checked against the Go code itself."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

import pytest

from phoebe_cli.repo.substitute import (
    VAR_NAME,
    SubstitutionError,
    VariableSource,
    _Func,
    _parse,
    collect_variables,
    expand,
    is_disabled,
    references,
    substitute_always,
    substitute_object,
    unresolved,
    variable_sources,
)

# ---------------------------------------------------------------------------------------------------------
# envsubst eval_test.go TestExpand (mapping: params[s], true, i.e. non-strict)


@pytest.mark.parametrize(
    ("params", "text", "output"),
    [
        # text-only
        ({}, "abcdEFGH28ij", "abcdEFGH28ij"),
        # length
        ({"var01": "abcdEFGH28ij"}, "${#var01}", "12"),
        # uppercase first, uppercase, lowercase first, lowercase
        ({"var01": "abcdEFGH28ij"}, "${var01^}", "AbcdEFGH28ij"),
        ({"var01": "abcdEFGH28ij"}, "${var01^^}", "ABCDEFGH28IJ"),
        ({"var01": "ABCDEFGH28IJ"}, "${var01,}", "aBCDEFGH28IJ"),
        ({"var01": "ABCDEFGH28IJ"}, "${var01,,}", "abcdefgh28ij"),
        # substring with position, with position and length
        ({"path_name": "/home/bozo/ideas/thoughts.for.today"}, "${path_name:11}", "ideas/thoughts.for.today"),
        ({"path_name": "/home/bozo/ideas/thoughts.for.today"}, "${path_name:11:5}", "ideas"),
        # default not used, default used
        ({"var": "abc"}, "${var=xyz}", "abc"),
        ({}, "${var=xyz}", "xyz"),
        ({"default_var": "foo"}, "something ${var=${default_var}}", "something foo"),
        ({"default_var": "foo1"}, "foo: ${var=${default_var}-suffix}", "foo: foo1-suffix"),
        ({"default_var": "foo1"}, "foo: ${var=prefix${default_var}-suffix}", "foo: prefixfoo1-suffix"),
        ({}, "${var:=xyz}", "xyz"),
        # replace suffix, prefix, all, first
        ({"stringZ": "abcABC123ABCabc"}, "${stringZ/%abc/XYZ}", "abcABC123ABCXYZ"),
        ({"stringZ": "abcABC123ABCabc"}, "${stringZ/#abc/XYZ}", "XYZABC123ABCabc"),
        ({"stringZ": "abcABC123ABCabc"}, "${stringZ//abc/xyz}", "xyzABC123ABCxyz"),
        ({"stringZ": "abcABC123ABCabc"}, "${stringZ/abc/xyz}", "xyzABC123ABCabc"),
        # delete shortest match prefix
        ({"filename": "bash.string.txt"}, "${filename#*.}", "string.txt"),
        ({"filename": "path/to/file"}, "${filename#*/}", "to/file"),
        ({"filename": "/path/to/file"}, "${filename#*/}", "path/to/file"),
        # delete longest match prefix
        ({"filename": "bash.string.txt"}, "${filename##*.}", "txt"),
        ({"filename": "path/to/file"}, "${filename##*/}", "file"),
        ({"filename": "/path/to/file"}, "${filename##*/}", "file"),
        # delete shortest, longest match suffix
        ({"filename": "bash.string.txt"}, "${filename%.*}", "bash.string"),
        ({"filename": "bash.string.txt"}, "${filename%%.*}", "bash"),
        # nested parameters
        ({"var01": "abcdEFGH28ij"}, "${var=${var01^^}}", "ABCDEFGH28IJ"),
        # escaped
        ({"var01": "abcdEFGH28ij"}, "$${var01}", "${var01}"),
        (
            {"var01": "abcdEFGH28ij"},
            "some text ${var01}$${var$${var01}$var01${var01}",
            "some text abcdEFGH28ij${var${var01}$var01abcdEFGH28ij",
        ),
        ({"default_var": "foo"}, "something $${var=${default_var}}", "something ${var=foo}"),
        # some common escaping use cases
        ({"stringZ": "foo/bar"}, r"${stringZ/\//-}", "foo-bar"),
        ({"stringZ": "foo/bar/baz"}, r"${stringZ//\//-}", "foo-bar-baz"),
        # escape outside of expansion shouldn't be processed
        ({"default_var": "foo"}, "\\\\something ${var=${default_var}}", "\\\\something foo"),
        # substitute with a blank string
        ({"stringZ": "foo.bar"}, "${stringZ/./}", "foobar"),
    ],
)
def test_expand(params: dict[str, str], text: str, output: str) -> None:
    assert expand(text, params) == output


# envsubst eval_test.go TestExpandStrict (mapping: params[s], exists)


@pytest.mark.parametrize(
    ("params", "text", "output"),
    [
        ({}, "abcdEFGH28ij", "abcdEFGH28ij"),
        ({"foo": "bar"}, "${foo}", "bar"),
        ({"foo": ""}, "${foo}", ""),
        ({"foo": "bar"}, "${missing:=default}", "default"),
        # default-providing operators succeed when the variable is missing
        ({}, "${missing:-fallback}", "fallback"),
        ({}, "${missing:=assigned}", "assigned"),
        ({}, "${missing=assigned}", "assigned"),
        # and so do the ones Go only treats as defaults
        ({}, "${missing:?fallback}", "fallback"),
        ({}, "${missing:+fallback}", "fallback"),
    ],
)
def test_expand_strict(params: dict[str, str], text: str, output: str) -> None:
    assert expand(text, params, strict=True) == output


@pytest.mark.parametrize(
    "text",
    [
        "${missing}",
        # a transformation operator still reads the value (fluxcd/flux2#5836)
        "${#missing}",
        "${missing^}",
        "${missing^^}",
        "${missing,}",
        "${missing,,}",
        "${missing:0}",
        "${missing:0:10}",
        "${missing/pattern/replacement}",
        "${missing//pattern/replacement}",
        "${missing/#pattern/replacement}",
        "${missing/%pattern/replacement}",
        "${missing#pattern}",
        "${missing##pattern}",
        "${missing%pattern}",
        "${missing%%pattern}",
        # a nested unset variable inside a default
        "${set:-${missing}}",
    ],
)
def test_expand_strict_missing(text: str) -> None:
    with pytest.raises(SubstitutionError, match=r'variable not set \(strict mode\): "missing"') as caught:
        expand(text, {"set": "x"}, strict=True)
    assert caught.value.variable == "missing"
    assert caught.value.expression is not None
    assert expand(text, {"set": "x"}) in ("", "0", "x")  # non-strict: unset is ""


# ---------------------------------------------------------------------------------------------------------
# envsubst funcs_test.go, through expressions (a negative offset needs a nested one: ${v:-3} is a default)


@pytest.mark.parametrize(
    ("value", "pos", "length", "output"),
    [
        ("123456789123456789", "0", "8", "12345678"),
        ("123456789123456789", "1", "8", "23456789"),
        ("123456789123456789", "9", None, "123456789"),
        ("123456789123456789", "9", "50", "123456789"),
        ("123456789123456789", "-3", "2", "78"),
        ("123456789123456789", "-300", "3", "123"),
        ("12345678", "9", "1", ""),
        ("hello world", "2", "-1", "llo worl"),
        ("hello world", "0", "-3", "hello wo"),
        ("hello world", "8", "-8", ""),
        ("hello world", "-4", "-1", "orl"),
        # strconv.Atoi failing: the value comes back whole
        ("abc", " 1", None, "abc"),
        ("abc", "x", None, "abc"),
        ("abc", "1", "x", "abc"),
        ("abc", "99999999999999999999", None, "abc"),
        ("abc", "+1", None, "bc"),
    ],
)
def test_substr(value: str, pos: str, length: str | None, output: str) -> None:
    variables = {"v": value, "p": pos, "l": length or ""}
    text = "${v:${p}}" if length is None else "${v:${p}:${l}}"
    assert expand(text, variables) == output


@pytest.mark.parametrize(
    ("text", "value", "output"),
    [
        ("${v:1:9223372036854775806}", "abc", "bc"),  # the end is still an int64
        ("${v:0:9223372036854775807}", "abc", "abc"),
        ("${v:1:9223372036854775807}", "abc", None),  # offset + length wraps round in Go, and the slice panics
        ("${v:1:9223372036854775807}", "", None),
        ("${v:9223372036854775807:1}", "abc", None),
        ("${v:-1:9223372036854775807}", "abc", "abc"),  # a default (":-"), not an offset
        ("${v: -1:9223372036854775807}", "abc", "abc"),  # " -1" is no number: the value comes back whole
    ],
)
def test_substr_end_overflow(text: str, value: str, output: str | None) -> None:
    # found by tests/repo/test_envsubst_go.py: Go panics "slice bounds out of range [:-9223372036854775808]"
    for strict in (False, True):
        if output is None:
            with pytest.raises(SubstitutionError, match="slice bounds out of range") as caught:
                expand(text, {"v": value}, strict=strict)
            assert caught.value.expression == text
            assert caught.value.variable is None
        else:
            assert expand(text, {"v": value}, strict=strict) == output


def test_funcs() -> None:
    assert expand("${v}", {"v": "Hello World"}) == "Hello World"
    assert expand("${#v}", {"v": "Hello World"}) == "11"
    assert expand("${v,,}", {"v": "Hello World"}) == "hello world"
    assert expand("${v,}", {"v": "HELLO WORLD"}) == "hELLO WORLD"
    assert expand("${v^^}", {"v": "Hello World"}) == "HELLO WORLD"
    assert expand("${v^}", {"v": "hello world"}) == "Hello world"
    assert expand("${v,}${v^}", {"v": ""}) == ""
    # toDefault: the value when set, else every argument concatenated
    assert expand("${v:-Hola Mundo}", {"v": "Hello World"}) == "Hello World"
    assert expand("${v:-Hola Mundo}", {"v": ""}) == "Hola Mundo"
    assert expand("${v:-Hola ${a}-${b}}", {"a": "Mundo", "b": "Bonjour"}) == "Hola Mundo-Bonjour"


# ---------------------------------------------------------------------------------------------------------
# envsubst parse/parse_test.go (the tree, flattened: text runs and expressions)


def _f(param: str, name: str = "", *args: str | _Func) -> _Func:
    return _Func(param, name, tuple(args))


@pytest.mark.parametrize(
    ("text", "nodes"),
    [
        # text only
        ("text", ["text"]),
        ("}text", ["}text"]),
        ("http://github.com", ["http://github.com"]),
        ("$${string}", ["${string}"]),
        ("$$string", ["$string"]),
        (r"\\.\pipe\pipename", [r"\\.\pipe\pipename"]),
        # variable only
        ("${string}", [_f("string")]),
        # text transform functions
        ("${string,}", [_f("string", ",")]),
        ("${string,,}", [_f("string", ",,")]),
        ("${string^}", [_f("string", "^")]),
        ("${string^^}", [_f("string", "^^")]),
        # substring functions
        ("${string:position}", [_f("string", ":", "position")]),
        ("${string:position:length}", [_f("string", ":", "position", "length")]),
        # string removal functions
        ("${string#substring}", [_f("string", "#", "substring")]),
        ("${string##substring}", [_f("string", "##", "substring")]),
        ("${string%substring}", [_f("string", "%", "substring")]),
        ("${string%%substring}", [_f("string", "%%", "substring")]),
        # string replace functions
        ("${string/substring/replacement}", [_f("string", "/", "substring", "replacement")]),
        ("${string//substring/replacement}", [_f("string", "//", "substring", "replacement")]),
        ("${string/#substring/replacement}", [_f("string", "/#", "substring", "replacement")]),
        ("${string/%substring/replacement}", [_f("string", "/%", "substring", "replacement")]),
        # default value functions
        ("${string=default}", [_f("string", "=", "default")]),
        ("${string:=default}", [_f("string", ":=", "default")]),
        ("${string:-default}", [_f("string", ":-", "default")]),
        ("${string:?default}", [_f("string", ":?", "default")]),
        ("${string:+default}", [_f("string", ":+", "default")]),
        # length function
        ("${#string}", [_f("string", "#")]),
        # special characters in argument
        ("${string#$%:*{}", [_f("string", "#", "$%:*{")]),
        # text before and after function
        ("hello ${#string} world", ["hello ", _f("string", "#"), " world"]),
        (r"\\ hello ${#string} world \\", [r"\\ hello ", _f("string", "#"), r" world \\"]),
        # escaped function arguments
        (r"${string/\/position/length}", [_f("string", "/", "/position", "length")]),
        (r"${string/\/position\\/length}", [_f("string", "/", "/position\\", "length")]),
        (r"${string/position/\/length}", [_f("string", "/", "position", "/length")]),
        (r"${string/position/\/length\\}", [_f("string", "/", "position", "/length\\")]),
        (r"${string/position/\/leng\\th}", [_f("string", "/", "position", "/leng\\th")]),
        # functions in functions
        ("${string:${position}}", [_f("string", ":", _f("position"))]),
        (
            "${string:${stringy:position:length}:${stringz,,}}",
            [_f("string", ":", _f("stringy", ":", "position", "length"), _f("stringz", ",,"))],
        ),
        ("${string#${stringz}}", [_f("string", "#", _f("stringz"))]),
        ("${string=${stringz}}", [_f("string", "=", _f("stringz"))]),
        ("${string=prefix-${var}}", [_f("string", "=", "prefix-", _f("var"))]),
        ("${string=${var}-suffix}", [_f("string", "=", _f("var"), "-suffix")]),
        ("${string=prefix-${var}-suffix}", [_f("string", "=", "prefix-", _f("var"), "-suffix")]),
        ("${string=prefix${var} suffix}", [_f("string", "=", "prefix", _f("var"), " suffix")]),
        ("${string//${stringy}/${stringz}}", [_f("string", "//", _f("stringy"), _f("stringz"))]),
    ],
)
def test_parse(text: str, nodes: list[str | _Func]) -> None:
    assert _parse(text) == nodes


# ---------------------------------------------------------------------------------------------------------
# Behaviour of the Go code beyond its own tests; every expectation here was checked against envsubst v1.8.0.


@pytest.mark.parametrize(
    ("text", "params", "output"),
    [
        # operators Go parses but treats as plain defaults (not bash's :? error or :+ alternative)
        ("${var:?x}", {}, "x"),
        ("${var:?x}", {"var": "v"}, "v"),
        ("${var:+x}", {}, "x"),
        ("${var:+x}", {"var": "v"}, "v"),
        ("${x=}", {}, ""),
        ("${x:-a}b}", {}, "ab}"),
        # no braces, no expansion; a backslash outside an expression is text
        ("$var ${var}", {"var": "v"}, "$var v"),
        ("\\${x}", {"x": "v"}, "\\v"),
        ("}${x}{", {"x": "1"}, "}1{"),
        # $$ pairs up, outside and inside expressions
        ("$$$${x}", {"x": "1"}, "$${x}"),
        ("$$${x}", {"x": "1"}, "$1"),
        ("${x/$$/y}", {"x": "a$b"}, "ayb"),
        ("${x:-$$}", {}, "$$"),  # not in a default: its arguments are scanned without escapes
        # backslashes: literal in defaults, \/ and \\ escapes only in replacements
        ("${x:-a\\b}", {}, "a\\b"),
        ("${x:-\\}}", {}, "\\}"),
        ("${x/\\//\\\\}", {"x": "a/b"}, "a\\b"),
        ("${x/\\\\/q}", {"x": "a\\b"}, "aqb"),
        # a replacement pattern runs up to the next '/', closing braces included
        ("${x/a} path: /foo}", {"x": "a} path: zz"}, "foozz"),
        # an empty pattern (only possible from a nested expression) matches at the start
        ("${x/${e}/-}", {"x": "abc", "e": ""}, "-abc"),
        # /# and /% with an empty replacement leave the value alone; / and // delete
        ("${x/#abc/}", {"x": "abcdef"}, "abcdef"),
        ("${x/%c/}", {"x": "abc"}, "abc"),
        ("${x/abc/}", {"x": "abcdef"}, "def"),
        ("${x/%c/Z}", {"x": "abc"}, "abZ"),
        # glob patterns: '*' matches '/' too; '#*' strips one character (the shortest non-empty prefix)
        ("${x#*}", {"x": "hello"}, "ello"),
        ("${x#*/}", {"x": "/a/b"}, "a/b"),
        ("${x#[0-9]}", {"x": "1abc"}, "abc"),
        ("${x#\\*}", {"x": "*a"}, "a"),
        ("${x#[}", {"x": "[a"}, "[a"),  # a bad pattern leaves the value alone
        # the % forms reverse the pattern, so classes and escapes break there
        ("${x%[0-9]}", {"x": "abc1"}, "abc1"),
        ("${x%\\*}", {"x": "a*"}, "a*"),
        ("${x%.*}", {"x": "a.b.c"}, "a.b"),
        ("${x%%.*}", {"x": "a.b.c"}, "a"),
        # substr: an offset that is not a number returns the value
        ("${x:a}", {"x": "abc"}, "abc"),
        ("${x: -1}", {"x": "abc"}, "abc"),
        ("${x:1:-1}", {"x": "abcd"}, "bc"),
        ("${x:1}", {"x": ""}, ""),
        # bytes, not characters
        ("${#x}", {"x": "héllo"}, "6"),
        ("${x:1:2}", {"x": "héllo"}, "é"),
        # Go's simple case mapping
        ("${x^^}", {"x": "straße"}, "STRAßE"),
        ("${x,,}", {"x": "İX"}, "ix"),
        ("${x^}", {"x": "ᾳbc"}, "ᾼbc"),
        # names are letters, digits and '_' in any order, non-ASCII included
        ("${1abc}", {"1abc": "n"}, "n"),
        ("${é}", {"é": "acc"}, "acc"),
        # a NUL ends the text
        ("a\x00b${x}", {"x": "1"}, "a"),
        # nesting
        ("${x:-${y:-${z}}}", {"z": "deep"}, "deep"),
    ],
)
def test_go_behaviour(text: str, params: dict[str, str], output: str) -> None:
    assert expand(text, params) == output


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # unsupported operators
        ("${var-default}", "missing closing brace"),
        ("${var+x}", "missing closing brace"),
        ("${var?x}", "missing closing brace"),
        ("${x-}", "missing closing brace"),
        # unterminated and malformed
        ("${var", "missing closing brace"),
        ("text ${var:-abc", "unable to parse substitution within function"),
        ("${", "unable to parse variable name"),
        ("${}", "unable to parse variable name"),
        ("${ var}", "unable to parse variable name"),
        ("${var }", "missing closing brace"),
        ("${x#}", "unable to parse substitution within function"),
        ("${#}", "bad substitution"),
        ("${#x:1}", "bad substitution"),
        ("${x::}", "unable to parse substitution within function"),
        ("${x//}", "bad substitution"),
        ("${x#a${b}}", "bad substitution"),
        ("${x:${a}b}", "bad substitution"),
        ("${x/a${b}/c}", "bad substitution"),
        # Go steps back by the width of the peeked rune after ':', and reads the name again
        ("${x:é}", "bad substitution"),
        ("${x:ß=}", "bad substitution"),
    ],
)
def test_go_errors(text: str, message: str) -> None:
    for strict in (False, True):
        with pytest.raises(SubstitutionError, match=message) as caught:
            expand(text, {"x": "abc", "var": "v"}, strict=strict)
        assert caught.value.expression is not None
        assert caught.value.expression in caught.value.message


def test_parse_errors_come_before_strict_errors() -> None:
    # Go parses the whole text first: a bad expression later on wins over an unset variable earlier
    with pytest.raises(SubstitutionError, match="missing closing brace"):
        expand("${missing} ${x", {}, strict=True)


def test_cut_characters_stay_bytes() -> None:
    # Go slices bytes: the half character travels on (and fails later as YAML, as in Go)
    assert expand("${x:0:1}", {"x": "éa"}).encode("utf-8", "surrogateescape") == b"\xc3"
    assert expand("${x#?}", {"x": "éa"}).encode("utf-8", "surrogateescape") == b"\xa9a"
    assert expand("${x#*}", {"x": "éa"}).encode("utf-8", "surrogateescape") == b"\xa9a"


def test_fast_path_returns_the_text() -> None:
    text = "no expressions here: $x $ { } \\"
    assert expand(text, {"x": "1"}) is text


def test_references() -> None:
    assert references("plain") == []
    assert references("${a} ${b:-${c}} ${a} $${d} $e ${#f} ${g/${h}/x}") == ["a", "b", "c", "f", "g", "h"]
    assert references("${ok} ${broken") == ["ok", "broken"]  # unparsable: every ${name


# ---------------------------------------------------------------------------------------------------------
# kustomize_varsub_test.go with its testdata


def _deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "app",
            "namespace": "apps",
            "labels": {"environment": "${cluster_env:=dev}", "region": "${cluster_region}"},
        },
        "spec": {
            "selector": {"matchLabels": {"app": "app"}},
            "template": {
                "metadata": {
                    "annotations": {
                        "prometheus.io/scrape": "${prometheus_scrape:=false}",
                        "prometheus.io/port": "${prometheus_port}",
                    },
                    "labels": {"app": "app"},
                },
                "spec": {
                    "containers": [
                        {
                            "name": "nginx",
                            "image": "${image}",
                            "imagePullPolicy": "IfNotPresent",
                            "resources": {
                                "limits": {"cpu": "2000m", "memory": "512Mi"},
                                "requests": {"cpu": "100m", "memory": "64Mi"},
                            },
                        }
                    ]
                },
            },
        },
    }


def _disabled_configmap() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "labels": {
                "kustomize.toolkit.fluxcd.io/substitute": "disabled",
                "environment": "${cluster_env:=dev}",
                "region": "${cluster_region}",
            },
            "name": "app-vars",
            "namespace": "apps",
        },
        "data": {
            "prometheus_scrape": "${prometheus_scrape:=false}",
            "prometheus_port": "${prometheus_port}",
            "image": "${image}",
        },
    }


def _kustomization(post_build: dict[str, Any] | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"interval": "4m0s", "path": "./kustomize", "prune": True}
    if post_build is not None:
        spec["postBuild"] = post_build
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": "app", "namespace": "apps"},
        "spec": spec,
    }


KUSTOMIZATION_VARSUB = _kustomization(
    {
        "substitute": {"cluster_env": "prod", "cluster_region": "eu-central-1"},
        "substituteFrom": [{"kind": "ConfigMap", "name": "app-vars"}],
    }
)
CLUSTER: dict[tuple[str, str], dict[str, str]] = {
    ("ConfigMap", "app-vars"): {"prometheus_scrape": '"true"', "prometheus_port": '"9797"', "image": "nginx:1.21.4"},
    ("Secret", "app-secret-vars"): {"db_password": "s3cr3t-p@ss"},
    ("ConfigMap", "app-vars-empty"): {"empty_cm": ""},
    ("Secret", "app-vars-empty"): {"empty_secret": ""},
}


def _lookup(kind: str, name: str) -> Mapping[str, str] | None:
    return CLUSTER.get((kind, name))


def test_varsub_testdata() -> None:
    variables = collect_variables(KUSTOMIZATION_VARSUB, _lookup)
    deployment = substitute_object(_deployment(), variables)
    expected = _deployment()
    expected["metadata"]["labels"] = {"environment": "prod", "region": "eu-central-1"}
    expected["spec"]["template"]["metadata"]["annotations"] = {
        "prometheus.io/scrape": "true",  # the ConfigMap's value is '"true"': a YAML string after substitution
        "prometheus.io/port": "9797",
    }
    expected["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.21.4"
    assert deployment == expected
    configmap = _disabled_configmap()
    assert substitute_object(configmap, variables) is configmap


def test_varsub_strict() -> None:
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "labels": {"environment": "${cluster_env:=dev}", "region": "${cluster_region}"},
            "name": "app-vars-strict",
            "namespace": "apps",
        },
        "data": {"missing": "${missing}"},
    }
    variables = collect_variables(KUSTOMIZATION_VARSUB, _lookup)
    with pytest.raises(SubstitutionError, match="variable not set") as caught:
        substitute_object(config, variables, strict=True)
    assert caught.value.variable == "missing"
    result = substitute_object(config, variables, strict=False)
    assert result["data"] == {"missing": None}
    assert result["metadata"]["labels"] == {"environment": "prod", "region": "eu-central-1"}


def test_varsub_strict_empty_values() -> None:
    kustomization = _kustomization(
        {
            "substitute": {"empty_inline": ""},
            "substituteFrom": [
                {"kind": "ConfigMap", "name": "app-vars-empty"},
                {"kind": "Secret", "name": "app-vars-empty"},
            ],
        }
    )
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "labels": {
                "from-inline": "${empty_inline}",
                "from-configmap": "${empty_cm}",
                "from-secret": "${empty_secret}",
            },
            "name": "app-vars-strict-empty",
            "namespace": "apps",
        },
    }
    variables = collect_variables(kustomization, _lookup)
    strict = substitute_object(config, variables, strict=True)
    assert strict["metadata"]["labels"] == {"from-inline": None, "from-configmap": None, "from-secret": None}
    # the same as leaving the variables out, non-strict, with one unrelated variable to make it run
    assert substitute_object(config, {"dummy": "unused"}) == strict


def test_varsub_always() -> None:
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"labels": {"environment": "${cluster_env:=dev}"}, "name": "app-vars-always"},
        "data": {"region": "${cluster_region:=eu-central-1}"},
    }
    novars = _kustomization(None)
    variables = collect_variables(novars, _lookup)
    assert variables == {}
    assert not substitute_always(novars)
    assert substitute_object(config, variables) is config  # no variables: ${...} stays literally
    always = _kustomization({"substituteStrategy": "Always"})
    assert substitute_always(always)
    result = substitute_object(config, collect_variables(always, _lookup), always=True)
    assert result["metadata"]["labels"] == {"environment": "dev"}
    assert result["data"] == {"region": "eu-central-1"}


def test_secret_variables_merge_in() -> None:
    kustomization = _kustomization(
        {
            "substitute": {"cluster_env": "prod", "cluster_region": "eu-central-1"},
            "substituteFrom": [
                {"kind": "ConfigMap", "name": "app-vars"},
                {"kind": "Secret", "name": "app-secret-vars"},
            ],
        }
    )
    variables = collect_variables(kustomization, _lookup)
    assert variables["db_password"] == "s3cr3t-p@ss"
    assert variables["image"] == "nginx:1.21.4"
    assert variables["cluster_env"] == "prod"


# ---------------------------------------------------------------------------------------------------------
# Disabled objects, empty variables, names, newlines, YAML


@pytest.mark.parametrize("where", ["labels", "annotations"])
def test_disabled(where: str) -> None:
    obj = {
        "kind": "ConfigMap",
        "metadata": {"name": "x", where: {"kustomize.toolkit.fluxcd.io/substitute": "disabled"}},
    }
    obj["data"] = {"a": "${x}"}
    assert is_disabled(obj)
    assert substitute_object(obj, {"x": "1"}) is obj
    assert substitute_object(obj, {"bad-name": "1"}) is obj  # names are only checked for objects substituted
    assert unresolved(obj) == []


@pytest.mark.parametrize(
    "metadata",
    [
        {},
        {"labels": {"kustomize.toolkit.fluxcd.io/substitute": "Disabled"}},
        {"annotations": {"kustomize.toolkit.fluxcd.io/substitute": "enabled"}},
        {"labels": None},
        {"labels": "disabled"},
    ],
)
def test_not_disabled(metadata: dict[str, Any]) -> None:
    assert not is_disabled({"metadata": metadata})
    assert not is_disabled({})
    assert not is_disabled({"metadata": None})


def test_empty_variables_leave_text_alone() -> None:
    obj = {"kind": "ConfigMap", "data": {"a": "${X}", "b": "${Y:=default}", "c": "$${Z}"}}
    assert substitute_object(obj, {}) is obj
    assert obj["data"] == {"a": "${X}", "b": "${Y:=default}", "c": "$${Z}"}
    assert unresolved(obj) == ["X", "Y"]


def test_unknown_variable_non_strict_is_empty() -> None:
    obj: dict[str, Any] = {"kind": "ConfigMap", "data": {"a": "x-${UNKNOWN}-y", "b": "${UNKNOWN}", "c": "$${ESCAPED}"}}
    result = substitute_object(obj, {"OTHER": "1"})
    assert result["data"] == {"a": "x--y", "b": None, "c": "${ESCAPED}"}
    assert obj["data"]["a"] == "x-${UNKNOWN}-y"  # the input is not changed
    assert unresolved(result) == ["ESCAPED"]  # an escape becomes a literal ${ESCAPED} after substitution


@pytest.mark.parametrize("name", ["my-var", "1abc", "a.b", "", "é", "abc\n", " abc"])
def test_invalid_variable_name(name: str) -> None:
    assert not VAR_NAME.match(name)
    obj = {"kind": "ConfigMap", "data": {"a": "b"}}  # checked even when nothing is to be substituted
    with pytest.raises(SubstitutionError, match="var name is invalid") as caught:
        substitute_object(obj, {"ok": "1", name: "2"})
    assert caught.value.variable == name
    assert repr(name) in str(caught.value)


@pytest.mark.parametrize("name", ["a", "_", "_a1", "ABC_def_09", "a" * 300])
def test_valid_variable_name(name: str) -> None:
    assert VAR_NAME.match(name)


def test_value_that_breaks_yaml() -> None:
    obj = {"kind": "Pod", "spec": {"containers": [{"image": "${image}"}]}}
    with pytest.raises(SubstitutionError, match="not valid: mapping values are not allowed"):
        substitute_object(obj, {"image": "foo: bar"})
    with pytest.raises(SubstitutionError, match="undefined alias"):
        substitute_object(obj, {"image": "*ref"})
    with pytest.raises(SubstitutionError, match="null key"):
        substitute_object({"kind": "ConfigMap", "data": {"${key}": "v", "x": "y"}}, {"key": "~"})
    with pytest.raises(SubstitutionError, match="invalid UTF-8"):
        substitute_object({"kind": "ConfigMap", "data": {"a": "${x:0:1}"}}, {"x": "é"})
    with pytest.raises(SubstitutionError, match="not an object but NoneType"):
        substitute_object({"${x}": None}, {"x": "#comment"})  # the only line becomes a comment


def test_bad_expression_in_an_object() -> None:
    obj = {"kind": "ConfigMap", "data": {"a": "${broken"}}
    with pytest.raises(SubstitutionError, match="missing closing brace in '\\$\\{broken'"):
        substitute_object(obj, {"x": "1"})


def test_values_are_typed_as_go_yaml_types_them() -> None:
    obj: dict[str, Any] = {
        "kind": "ConfigMap",
        "data": {
            "int": "${i}",
            "bool": "${b}",
            "y": "${y}",
            "sexagesimal": "${t}",
            "exp": "${e}",
            "octal_leading_zero": "${o}",
            "date": "${d}",
            "o_prefix": "${oct}",
            "equals": "${eq}",
            "hex": "${hex}",
            "null": "${n}",
            "list": "${l}",
            "map": "${m}",
            "comment": "${c}",
            "tag": "${tag} x",
        },
    }
    variables = {
        "i": "3",
        "b": "true",
        "y": "y",
        "t": "1:30",
        "e": "1e3",
        "o": "08",
        "d": "2024-01-01",
        "oct": "0o17",
        "eq": "=",
        "hex": "0x1F",
        "n": "~",
        "l": "[a, b]",
        "m": "{a: 1}",
        "c": "a #comment",
        "tag": "!foo",
    }
    assert substitute_object(obj, variables)["data"] == {
        "int": 3,
        "bool": True,
        "y": True,
        "sexagesimal": "1:30",
        "exp": 1000.0,
        "octal_leading_zero": 8.0,
        "date": "2024-01-01",
        "o_prefix": 15,
        "equals": "=",
        "hex": 31,
        "null": None,
        "list": ["a", "b"],
        "map": {"a": 1},
        "comment": "a",
        "tag": "x",
    }


def test_round_trip_keeps_types() -> None:
    obj: dict[str, Any] = {
        "kind": "ConfigMap",
        "data": {
            "s": "${x}",
            "strings": ["y", "no", "1:30", "08", "1e3", "=", "", "null", "2024-01-01", "0o17", "1_000"],
            "numbers": [1, -2, 1.5, 1e20, float("inf"), 10**19],
            "others": [True, False, None, datetime.date(2024, 1, 2)],
            "multi": "line one\n'quoted' \"double\" \\ ${x}\n",
            "long": "word " * 40 + "${x:-a default with spaces}",
            3: "an int key",
        },
    }
    result = substitute_object(obj, {"x": 'it\'s "v"'})
    data = result["data"]
    assert data["s"] == 'it\'s "v"'
    assert data["strings"] == obj["data"]["strings"]
    assert data["numbers"] == obj["data"]["numbers"]
    assert data["others"] == obj["data"]["others"]
    assert data["multi"] == 'line one\n\'quoted\' "double" \\ it\'s "v"\n'
    assert data["long"] == "word " * 40 + 'it\'s "v"'
    assert data[3] == "an int key"


def test_unchanged_objects_come_back_as_they_are() -> None:
    obj = {"kind": "ConfigMap", "data": {"a": "no dollar", "b": 1}}
    assert substitute_object(obj, {"x": "1"}) is obj


def test_unresolved() -> None:
    obj = {
        "kind": "ConfigMap",
        "metadata": {"name": "${name}", "labels": {"${key}": "v"}},
        "data": {"a": "${A:-${B}}", "b": ["$${C}", "${name}", "$D", 3], "c": "${broken"},
    }
    assert unresolved(obj) == ["name", "key", "A", "B", "broken"]
    assert unresolved({"kind": "ConfigMap", "data": {"a": "plain"}}) == []


# ---------------------------------------------------------------------------------------------------------
# Variables: sources, precedence, optional, newlines


def test_variable_sources() -> None:
    kustomization = _kustomization(
        {
            "substituteFrom": [
                {"kind": "ConfigMap", "name": "a"},
                {"kind": "Secret", "name": "b", "optional": True},
                {"kind": "ConfigMap", "name": "c", "optional": False},
            ]
        }
    )
    assert variable_sources(kustomization) == [
        VariableSource("ConfigMap", "a", False),
        VariableSource("Secret", "b", True),
        VariableSource("ConfigMap", "c", False),
    ]
    assert variable_sources(_kustomization(None)) == []
    assert variable_sources(_kustomization({"substitute": {"a": "b"}})) == []
    assert variable_sources({"kind": "Kustomization"}) == []


@pytest.mark.parametrize(
    ("post_build", "message"),
    [
        ({"substituteFrom": {"kind": "ConfigMap"}}, "not a list"),
        ({"substituteFrom": ["ConfigMap/a"]}, r"substituteFrom\[0\] is str"),
        ({"substituteFrom": [{"kind": "ConfigMap", "name": "a", "optional": "true"}]}, "optional must be"),
        ({"substituteFrom": [{"kind": 1, "name": "a"}]}, "must be strings"),
        ("yes", "spec.postBuild is str"),
    ],
)
def test_variable_sources_errors(post_build: Any, message: str) -> None:
    with pytest.raises(SubstitutionError, match=message):
        variable_sources(_kustomization(post_build))


def test_precedence() -> None:
    cluster = {
        ("ConfigMap", "first"): {"a": "cm1", "b": "cm1", "c": "cm1"},
        ("Secret", "second"): {"b": "secret2", "c": "secret2"},
        ("ConfigMap", "third"): {"c": "cm3", "d": "cm3"},
    }
    kustomization = _kustomization(
        {
            "substitute": {"d": "inline", "e": "inline"},
            "substituteFrom": [
                {"kind": "ConfigMap", "name": "first"},
                {"kind": "Secret", "name": "second"},
                {"kind": "ConfigMap", "name": "third"},
            ],
        }
    )
    variables = collect_variables(kustomization, lambda kind, name: cluster.get((kind, name)))
    assert variables == {"a": "cm1", "b": "secret2", "c": "cm3", "d": "inline", "e": "inline"}


def test_optional_sources() -> None:
    looked_up: list[tuple[str, str]] = []

    def lookup(kind: str, name: str) -> Mapping[str, str] | None:
        looked_up.append((kind, name))
        return {"present": "yes"} if name == "present" else None

    kustomization = _kustomization(
        {
            "substituteFrom": [
                {"kind": "Secret", "name": "absent", "optional": True},
                {"kind": "ConfigMap", "name": "present"},
                {"kind": "Bucket", "name": "ignored"},  # kinds other than ConfigMap and Secret are skipped
            ]
        }
    )
    assert collect_variables(kustomization, lookup) == {"present": "yes"}
    assert looked_up == [("Secret", "absent"), ("ConfigMap", "present")]

    missing = _kustomization({"substituteFrom": [{"kind": "ConfigMap", "name": "absent"}]})
    with pytest.raises(SubstitutionError, match="substitute from 'ConfigMap/absent' error: not found"):
        collect_variables(missing, lookup)


def test_newlines_are_removed_from_values() -> None:
    cluster = {("ConfigMap", "cm"): {"a": "line1\nline2\n"}, ("Secret", "s"): {"b": "c2VjcmV0\n"}}
    kustomization = _kustomization(
        {
            "substitute": {"c": "x\ny", "d": "keeps\r"},
            "substituteFrom": [{"kind": "ConfigMap", "name": "cm"}, {"kind": "Secret", "name": "s"}],
        }
    )
    variables = collect_variables(kustomization, lambda kind, name: cluster.get((kind, name)))
    assert variables == {"a": "line1line2", "b": "c2VjcmV0", "c": "xy", "d": "keeps\r"}


def test_inline_values_must_be_strings() -> None:
    with pytest.raises(SubstitutionError, match=r"spec\.postBuild\.substitute\.replicas must be a string, not int"):
        collect_variables(_kustomization({"substitute": {"replicas": 3}}), _lookup)
    with pytest.raises(SubstitutionError, match=r"ConfigMap/cm data\.port must be a string"):
        collect_variables(
            _kustomization({"substituteFrom": [{"kind": "ConfigMap", "name": "cm"}]}),
            lambda kind, name: {"port": 80},  # type: ignore[dict-item]
        )
