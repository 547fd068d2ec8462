"""yamlio and goyaml without Go: documents, lines, errors and the pieces of Go's rules that have their own code.

What phoebe reads is checked against Go itself in tests/repo/test_yaml_go.py; these tests pin the API
(documents and their lines, one-line errors, load_text's error type) and the helpers (timestamps, float
keys, go-yaml v2's key order) with the answers Go gives.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from phoebe_cli.repo import goyaml
from phoebe_cli.repo.yamlio import Document, YamlError, check_syntax, load_documents, load_text, parse_documents

P = Path("f.yaml")


def values(text: str) -> list[object]:
    return [document.data for document in parse_documents(text, P)]


def test_documents_and_their_lines() -> None:
    text = "# header\n\n---\n# about a\na: 1\n---\n\n\nb: 2\n---\n# only a comment\n---\n{}\n---\nc: [3]\n"
    assert parse_documents(text, P) == [
        Document({"a": 1}, P, 5),
        Document({"b": 2}, P, 9),
        Document({"c": [3]}, P, 15),
    ]


def test_lines_piece_by_piece_match_lines_of_the_whole_text() -> None:
    # a document end marker sends the file down the piece-by-piece path: same lines
    assert [d.line for d in parse_documents("a: 1\n...\n---\nb: 2\n---\nc: 3\n", P)] == [1, 4, 6]
    assert [d.line for d in parse_documents("a: 1\n---\nb: 2\n---\nc: 3\n", P)] == [1, 3, 5]


def test_crlf_lines() -> None:
    assert [d.line for d in parse_documents("a: 1\r\n---\r\nb: 2\r\n", P)] == [1, 3]


def test_anchor_defined_again_later_wins() -> None:
    text = "env:\n- name: &name CF_API_TOKEN\n  key: *name\n- name: &name CF_ZONE_ID\n  key: *name\n"
    assert values(text) == [
        {"env": [{"name": "CF_API_TOKEN", "key": "CF_API_TOKEN"}, {"name": "CF_ZONE_ID", "key": "CF_ZONE_ID"}]}
    ]


def test_values_are_what_flux_applies() -> None:
    text = "a: on\nb: =\nc: 1:20\nd: 0755\ne: 2001-12-14\nf: 1.0\ng: 9223372036854775808\nh: {x: }\ni:\n"
    assert values(text) == [
        {
            "a": "on",
            "b": "=",
            "c": "1:20",
            "d": 493,
            "e": "2001-12-14T00:00:00Z",
            "f": 1,
            "g": 9.223372036854776e18,
            "h": {"x": ""},
            "i": None,
        }
    ]


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("a: 1\nb: 2\na: 3\n", 3, 'mapping key "a" already defined at line 1'),
        ("a: 1\n---\nx:\n  ~: 1\n", 4, 'null key ("~")'),
        ("x:\n  80: http\n", 2, "the key 80 is not a string"),
        ("a: [1,\n  .nan]\n", 2, "json: unsupported value: NaN"),
        ("a: 1\n--- b\n", 2, "invalid document separator: --- b"),
        ("a: 1\nb: *x\n", 2, "found undefined alias"),
        ("a: 1\n---\nb:\n  c: 1\n d: 2\n", 5, "did not find expected key"),
        ('a: "x\\/y"\n', 1, "found unknown escape character"),
        ("m:\n  <<: 1\n", 2, "map merge requires map or sequence of maps"),
    ],
)
def test_what_go_refuses_is_one_line_with_file_and_line(text: str, line: int, message: str) -> None:
    with pytest.raises(YamlError) as raised:
        parse_documents(text, P)
    assert raised.value.line == line
    assert message in raised.value.message
    assert str(raised.value).startswith(f"f.yaml:{line}: not valid YAML: ")
    assert "\n" not in str(raised.value)


def test_an_alias_to_itself_is_an_error_not_a_crash() -> None:
    with pytest.raises(YamlError, match="contains it"):
        parse_documents("a: &a [*a]\n", P)


def test_check_syntax_and_load_documents_agree(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text("a: 1\n---\nb: &x 1\nc: &x 2\n")
    bad.write_text("a: 1\nx:\n  y: 1\n  y: 2\n")
    check_syntax(good)
    assert len(load_documents(good)) == 2
    for read in (check_syntax, load_documents):
        with pytest.raises(YamlError) as raised:
            read(bad)
        assert raised.value.line == 4


def test_encodings(tmp_path: Path) -> None:
    (tmp_path / "bom.yaml").write_bytes("\ufeffa: 1\n".encode())
    (tmp_path / "utf16.yaml").write_bytes("a: 1\n".encode("utf-16"))
    (tmp_path / "latin1.yaml").write_bytes("a: \xe9\n".encode("latin-1"))
    assert [d.data for d in load_documents(tmp_path / "bom.yaml")] == [{"a": 1}]
    assert [d.data for d in load_documents(tmp_path / "utf16.yaml")] == [{"a": 1}]
    with pytest.raises(YamlError, match="cannot be read"):
        load_documents(tmp_path / "latin1.yaml")


def test_load_text_reads_as_go_yaml_v2() -> None:
    assert load_text("a: on\nb: 2001-12-14\nc: 1.0\n1: x\n---\nd: 1\nd: 2\n") == [
        {"a": True, "b": "2001-12-14", "c": 1, "1": "x"},
        {"d": 2},
    ]
    with pytest.raises(yaml.YAMLError, match="unsupported map key of type: <nil>"):
        load_text("~: 1\n")  # builder catches yaml.YAMLError


@pytest.mark.parametrize(
    ("text", "json"),
    [
        ("2001-12-14", "2001-12-14T00:00:00Z"),
        ("2001-1-2", "2001-01-02T00:00:00Z"),
        ("2001-12-14t21:59:43.10-05:00", "2001-12-14T21:59:43.1-05:00"),
        ("2001-12-14 21:59:43.10", "2001-12-14T21:59:43.1Z"),
        ("2001-12-14  21:59:43", "2001-12-14T21:59:43Z"),
        ("2001-12-14T21:59:43,123456789123Z", "2001-12-14T21:59:43.123456789Z"),
        ("2001-12-14T21:59:43-00:00", "2001-12-14T21:59:43Z"),
        ("2000-02-29", "2000-02-29T00:00:00Z"),
        ("2001-02-29", None),
        ("2001-12-14T24:00:00Z", None),
        ("2001-12-14T21:59Z", None),
        ("2001-12-14 21:59:43.10 -5", None),
        ("20011214", None),
    ],
)
def test_timestamps(text: str, json: str | None) -> None:
    assert goyaml.go_timestamp(text) == json


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.5, "1.5"),
        (1000.0, "1000"),
        (1e6, "1e+06"),
        (123456789.0, "1.2345679e+08"),
        (3.14159265358979, "3.1415927"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (-0.0, "-0"),
        (1e40, ".inf"),
    ],
)
def test_float_keys_as_sigs_k8s_yaml_names_them(value: float, text: str) -> None:
    assert goyaml._format_float32(value) == text


def test_go_yaml_v2_key_order() -> None:
    keys = ["b", "<<", "a10", "a9", "-x", " y", "10", "9", "B"]
    assert sorted(keys, key=goyaml._V2_KEY_ORDER) == [" y", "-x", "<<", "9", "10", "B", "a9", "a10", "b"]


def test_resolvers_differ_in_yaml_1_1() -> None:
    assert goyaml.resolve_v3("on") == (goyaml.STR, "on")
    assert goyaml.resolve_v2("on") == (goyaml.BOOL, True)
    assert goyaml.resolve_v3("0o-17") == (goyaml.INT, -15)  # yaml.v3's own 0o branch takes a sign after it
    assert goyaml.resolve_v2("0o-17") == (goyaml.STR, "0o-17")
    assert goyaml.resolve_v3("18446744073709551615") == (goyaml.INT, 18446744073709551615)
    assert goyaml.resolve_v3("18446744073709551616") == (goyaml.FLOAT, 1.8446744073709552e19)
