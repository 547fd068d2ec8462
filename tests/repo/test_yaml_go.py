"""phoebe reads YAML as Flux's Go libraries do: a differential test against Go itself.

The oracle (tests/support/yaml_oracle.py, Go in tests/cluster/go/yamloracle) reads each case as kustomize
reads a checkout file and answers what Flux would apply for it ("file": yamlio.load_documents), or reads it
as Flux reads kustomize's output ("output": yamlio.load_text). For every case phoebe must accept exactly what
Go accepts, hold the same values (JSON-equal, and of the same type: an integer is no float, a bool no
integer), and, where Go refuses, name the right line:

* a syntax error: libyaml and yaml.v3 (a port of it) must find the problem in the same place; phoebe names the
  line of libyaml's problem mark, Go the line of its context mark (0-based, for parser errors) or problem
  mark, so the line is checked through libyaml's marks;
* an error yaml.v3 reports while decoding (a key twice, a tag the value does not fit): the same line;
* an error Go names no line for (a null key, a merge of a scalar, ``\\/``...): the line in ``ERROR_LINES``
  (or the generated case's own), read off the case by hand.

Cases: one file per case in tests/fixtures/yaml (file mode) and tests/fixtures/yaml/output (output mode), plus
scalars generated below in several places (a value, in a flow collection, a key, a key of the object itself).
``test_oracle_matches_kustomize`` checks the oracle against the kustomize binary the other tests use.
"""

from __future__ import annotations

import json
import os
import random
import re
import secrets
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from phoebe_cli.repo import yamlio
from tests.repo.conftest import go_oracle
from tests.support.yaml_oracle import Answer, ask, ensure_oracle

pytestmark = pytest.mark.repo

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "yaml"

# Lines phoebe must name where Go's error names none (read off the fixture by hand).
ERROR_LINES: dict[str, int] = {
    "anchor_undefined": 2,
    "complex_key_top": 1,
    "control_character_escape": 3,
    "directive": 1,
    "escapes": 1,
    "nel_document_indicator": 3,
    "nel_in_key": 3,
    "tags_mismatch": 1,
    "timestamp_tag_on_text": 1,
    "bad_escape_slash": 3,
    "key_int_nested": 3,
    "key_bool_nested": 2,
    "key_tagged_nested": 3,
    "complex_key_nested": 2,
    "null_key_top": 1,
    "null_key_nested": 2,
    "null_key_tagged": 2,
    "nan_value": 1,
    "inf_in_list": 1,
    "merge_scalar": 3,
    "merge_twice": 4,
    "merge_nested_sequence": 3,
    "merge_list_with_scalar": 3,
    "merge_null": 2,
    "timestamp_unwritable_zone": 1,
    "quoted_merge_key_scalar": 3,
    "binary_invalid": 1,
}

# fmt: off
SCALARS = [
    # YAML 1.1 against 1.2: booleans, null, merge, '=' (kustomize output holds a plain =)
    "on", "off", "yes", "no", "y", "n", "Y", "N", "On", "OFF", "true", "True", "TRUE", "false", "FALSE",
    "~", "null", "Null", "NULL", "=", "==", "<<",
    # integers: octal, hex, binary, underscores, signs, the edges of int64 and uint64
    "0755", "0o755", "0O755", "0o-17", "-0o17", "0b101", "0B101", "0b-101", "-0b101", "0b2", "0x1F", "0X1F",
    "-0x1F", "+0x1F", "0x", "0b", "0o", "1_000", "1__0", "_1", "1_", "0_1", "+12", "-12", "+", "-", "08", "09",
    "00", "9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
    "18446744073709551615", "18446744073709551616", "99999999999999999999", "0xFFFFFFFFFFFFFFFF",
    "0x1FFFFFFFFFFFFFFFF", "0o1777777777777777777777", "123456789012345678",
    "0b1111111111111111111111111111111111111111111111111111111111111111",
    # floats: dots, exponents, range, specials, whole ones (JSON writes 1.0 as 1)
    "0.5", ".5", "-.5", "+.5", "._5", ".5_5", ".e5", ".", "1.", "1e3", "1E3", "1e+3", "1e-3", "1e400", "1e-400",
    "-1e400", ".inf", ".Inf", "-.inf", "+.inf", ".nan", ".NaN", ".5e400", "-0.0", "0.0", "-0", "1.0", "3.0e0",
    "1e20", "1e21", "1.5e300", "0.1", "1e-7", "12e-1", "0x1p3", "inf", "nan", "Infinity", "1_0.5",
    # sexagesimal numbers stay strings in Go
    "1:20", "1:20:30", "-1:20", "190:20:30.15",
    # timestamps: what time.Parse takes, and what JSON writes
    "2001-12-14", "2001-12-14t21:59:43.10-05:00", "2001-12-14T21:59:43.10-05:00", "2001-12-14T21:59:43Z",
    "2001-12-14T21:59:43.123456789123Z", "2001-12-14T21:59:43,5Z", "2001-12-14 21:59:43.10",
    "2001-12-14  21:59:43", "2001-12-14 21:59:43.10 -5", "2001-1-2", "2001-02-29", "2000-02-29", "2001-13-01",
    "2001-12-14T24:00:00Z", "2001-12-14T21:59:60Z", "2001-12-14T21:59:43+23:59", "2001-12-14T21:59:43+00:00",
    "2001-12-14T21:59:43-00:00", "2001-12-14T21:59:43+05:30", "2001-12-14T21:59Z", "0001-01-01", "0000-01-01",
    "2001-12-14x", "20011214",
    # tags
    "!!str 12", "!!int '12'", "!!int abc", "!!int 1.5", "!!float 3", "!!float '3'", "!!float abc", "!!bool yes",
    "!!bool true", "!!null ~", "!!null x", "!!timestamp 2001-12-14", "!!timestamp foo", "!!int 2001-12-14",
    "!!binary aGVsbG8=", "!!binary aGVsbG8", "!!binary /w==", "!foo bar", "!foo 12", "!!str", "'on'", '"12"',
    '""', "''", '"it\\\'s"', '"a\\/b"', '"\\_\\N"',
    # plain strings
    "a b", "x: y", "-x", "a#b", "é", "%x",
]
# fmt: on

# Where a generated scalar stands: (mode, name, template, the scalar's line).
PLACES = [
    ("file", "value", "kind: X\ndata:\n  v: {s}\n", 3),
    ("file", "flow", "kind: X\ndata: {{v: [{s}]}}\n", 2),
    ("file", "key", "kind: X\ndata:\n  {s}: v\n", 3),
    ("file", "object-key", "kind: X\n{s}: v\n", 2),
    ("output", "value", "kind: X\ndata:\n  v: {s}\n", 3),
    ("output", "key", "kind: X\ndata:\n  {s}: v\n", 3),
]
# The generated cases phoebe must refuse, whatever Go names (for those Go gives no line for).
_SLUG = re.compile(r"[^A-Za-z0-9]+")


@dataclass(frozen=True)
class Case:
    id: str
    mode: str  # "file" or "output"
    data: bytes
    line: int | None = None  # the line of a generated case's scalar


def fixture_cases() -> Iterator[Case]:
    for path in sorted(FIXTURES.glob("*.yaml")):
        yield Case(path.stem, "file", path.read_bytes())
    for path in sorted((FIXTURES / "output").glob("*.yaml")):
        yield Case(f"output-{path.stem}", "output", path.read_bytes())


def generated_cases() -> Iterator[Case]:
    for index, scalar in enumerate(SCALARS):
        slug = _SLUG.sub("_", scalar).strip("_") or "x"
        for mode, place, template, line in PLACES:
            if place.endswith("key") and scalar.startswith(("!!binary /", '"a\\/')):
                continue  # the same as elsewhere
            yield Case(f"{mode}-{place}-{index:03d}-{slug}", mode, template.format(s=scalar).encode(), line)


CASES = [*fixture_cases(), *generated_cases()]


@pytest.fixture(scope="session")
def oracle() -> Path:
    return go_oracle(ensure_oracle, "YAML")


@pytest.fixture(scope="session")
def case_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("yaml-cases")
    files = {}
    for number, case in enumerate(CASES):
        path = folder / f"{number:04d}.yaml"
        path.write_bytes(case.data)
        files[case.id] = path
    return files


@pytest.fixture(scope="session")
def answers(oracle: Path, case_files: dict[str, Path]) -> dict[str, Answer]:
    found: dict[str, Answer] = {}
    for mode in ("file", "output"):
        cases = [case for case in CASES if case.mode == mode]
        for case, answer in zip(cases, ask(oracle, mode, [case_files[c.id] for c in cases]), strict=True):
            found[case.id] = answer
    return found


def same(a: Any, b: Any) -> bool:
    """JSON-equal, with types: True is no 1, 1 is no 1.0."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[key], b[key]) for key in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def phoebe(case: Case, path: Path) -> tuple[list[Any] | None, Exception | None]:
    try:
        if case.mode == "file":
            return [document.data for document in yamlio.load_documents(path)], None
        return yamlio.load_text(case.data.decode()), None
    except (yamlio.YamlError, yaml.YAMLError) as error:
        return None, error


_SEPARATOR = re.compile(r"\n---.*\n")


def syntax_line(case: Case, go_line: int) -> int | None:
    """The line phoebe must name for a syntax error, once libyaml's marks agree with the line Go names; None
    when libyaml finds no error (where go-yaml differs from it, as for the \\/ escape).

    kyaml decodes piece by piece; yaml.v3's message names the context mark's line if it has one, else the
    problem mark's (0-based; one more for scanner errors; nothing for line 0), relative to the piece; an
    undefined alias, no line."""
    text = case.data.decode().replace("\r\n", "\n")
    previous = 0
    pieces = []
    for match in _SEPARATOR.finditer(text):
        pieces.append((text[previous : match.start()] + "\n", text.count("\n", 0, previous)))
        previous = match.end()
    pieces.append((text[previous:], text.count("\n", 0, previous)))
    for piece, offset in pieces:
        try:
            loader = yaml.CSafeLoader(piece)
            if loader.check_node():
                loader.get_node()
            continue
        except yaml.reader.ReaderError as error:  # a character YAML does not allow: Go names no line
            assert go_line == 0
            return offset + piece.count("\n", 0, error.position) + 1
        except yaml.MarkedYAMLError as error:
            context, problem = error.context_mark, error.problem_mark
            assert problem is not None
            mark = context if context is not None and context.line != 0 else problem
            number = 0 if isinstance(error, yaml.composer.ComposerError) else mark.line
            if number and isinstance(error, yaml.scanner.ScannerError):
                number += 1
            assert (offset + number if number else 0) == go_line, f"libyaml: {error}\nGo names line {go_line}"
            return offset + problem.line + 1
    return None


def expected_line(case: Case, answer: Answer) -> int:
    if case.id in ERROR_LINES:
        return ERROR_LINES[case.id]
    if answer.error.startswith("MalformedYAMLError") and (line := syntax_line(case, answer.line)) is not None:
        return line
    if answer.line:
        return answer.line
    if case.line is not None:
        return case.line
    pytest.fail(f"Go names no line ({answer.error!r}): add the line phoebe must name to ERROR_LINES")


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_phoebe_reads_yaml_as_go(case: Case, answers: dict[str, Answer], case_files: dict[str, Path]) -> None:
    go = answers[case.id]
    values, error = phoebe(case, case_files[case.id])
    if go.ok:
        assert error is None, f"Go accepts it ({go.documents}), phoebe refuses it: {error}"
        assert values is not None
        assert same(values, go.documents), f"\nphoebe: {values!r}\nGo:     {go.documents!r}"
        return
    assert error is not None, f"Go refuses it ({go.error}), phoebe reads {values!r}"
    if case.mode == "output":
        return  # kustomize's output: phoebe only has to refuse it
    assert isinstance(error, yamlio.YamlError)
    assert "\n" not in str(error), "one line"
    assert error.line == expected_line(case, go), f"Go: {go.error} (line {go.line}); phoebe: {error}"
    if duplicate := re.search(r'mapping key "([^"]*)" already defined', go.error):
        assert f'"{duplicate.group(1)}"' in error.message


def test_every_case_is_used() -> None:
    """ERROR_LINES names cases that exist (a renamed fixture must not leave its line behind)."""
    assert set(ERROR_LINES) <= {case.id for case in CASES}


# ---------------------------------------------------------------------------------------------------------
# The oracle against kustomize itself

_OBJECT = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n"
KUSTOMIZE_CASES = {
    "yaml11": _OBJECT + "data:\n  a: on\n  b: =\n  c: 1:20\n  d: 0755\n  e: 0o755\n  f: y\n",
    "numbers": _OBJECT + "data:\n  a: 99999999999999999999\n  b: 9223372036854775808\n  c: 1.0\n  d: 1e3\n",
    "timestamps": _OBJECT + "data:\n  a: 2001-12-14\n  b: 2001-12-14T21:59:43.10-05:00\n  c: [2001-12-14T21:59:43Z]\n",
    "empty-in-flow": _OBJECT + "data:\n  a: {x: , y}\n  b:\n",
    "anchors": _OBJECT + "data:\n  a: &n x\n  b: *n\n  c: &n y\n  d: *n\n",
    "merge": _OBJECT + "base: &b {x: 1, y: 2}\ndata:\n  <<: *b\n  y: 3\n",
    "quoted-merge-key": _OBJECT + "data:\n  <<: {x: 1}\n  '<<': q\n",
    "duplicate": _OBJECT + "data:\n  a: 1\n  a: 2\n",
    "null-key": _OBJECT + "data:\n  ~: 1\n",
    "empty-key": _OBJECT + "data:\n  ? \n  : 1\n",
    "int-key": _OBJECT + "data:\n  80: http\n",
    "nan": _OBJECT + "data:\n  a: .nan\n",
    "slash-escape": _OBJECT + 'data:\n  a: "x\\/y"\n',
    "quote-escape": _OBJECT + 'data:\n  a: "it\\\'s"\n',
    "separator": _OBJECT + "data: {a: b}\n--- x\n",
    "binary": _OBJECT + "data:\n  a: !!binary aGVsbG8=\n",
    "tag-mismatch": _OBJECT + "data:\n  a: !!int abc\n",
    "timezone": _OBJECT + "data:\n  a: 2001-12-14T21:59:43+24:00\n",
    "documents": _OBJECT + "data: {a: '1'}\n---\n# a comment\n---\n" + _OBJECT.replace("cm", "cm2") + "data: {b: x}\n",
    "list": "apiVersion: v1\nkind: List\nitems:\n- " + _OBJECT.replace("\n", "\n  ").rstrip() + "\n  data: {x: on}\n",
}


def test_oracle_matches_kustomize(oracle: Path, kustomize_binary: Path) -> None:
    """kustomize builds a file (and Flux reads its output) exactly when the oracle accepts it, with the
    same objects (kustomize v5.7.1 here, kyaml v0.20.1; the oracle has Flux's kyaml v0.21.1)."""
    mismatches = []
    with tempfile.TemporaryDirectory() as scratch:
        for name, text in KUSTOMIZE_CASES.items():
            folder = Path(scratch) / name
            folder.mkdir()
            (folder / "r.yaml").write_text(text)
            (folder / "kustomization.yaml").write_text("resources:\n- r.yaml\n")
            built = subprocess.run(
                [str(kustomize_binary), "build", str(folder)], capture_output=True, text=True, check=False
            )
            [file_answer] = ask(oracle, "file", [folder / "r.yaml"])
            if built.returncode == 0:
                (folder / "out.yaml").write_text(built.stdout)
                [read] = ask(oracle, "output", [folder / "out.yaml"])
                flux = read.ok and file_answer.ok
                if read.ok != file_answer.ok or (flux and _sorted(read.documents) != _sorted(file_answer.documents)):
                    mismatches.append(f"{name}: kustomize + Flux read {read}, the oracle {file_answer}")
            elif file_answer.ok:
                mismatches.append(f"{name}: kustomize fails ({built.stderr.strip()[:200]}), the oracle reads it")
    assert not mismatches, "\n".join(mismatches)


def _sorted(documents: list[Any]) -> list[str]:
    return sorted(json.dumps(document, sort_keys=True) for document in documents)


# ---------------------------------------------------------------------------------------------------------
# Random documents: anchors, aliases, merge keys, keys twice, null keys, flow and block collections mixed

DEFAULT_RANDOM = 1000  # documents per mode; PHOEBE_YAML_CASES sets it, PHOEBE_YAML_SEED replays a run
# fmt: off
_RANDOM_SCALARS = [
    "*M", "[*M, {z: 1}]", "on", "1", "0x1F", "=", "~", "", "2001-12-14", "2001-12-14T21:59:43Z", "1.0", ".nan",
    "'q'", '"d\\ne"', "a b", "<<", "!!str 5", "!!int 7", "1:20", "y", "null", "true", "-1", "1e3", "[]", "{}",
    "[a, b]", "{a: 1}", "{a: , b}", "[a: 1]", "|\n  lit\n", ">-\n  fold\n", "&A x", "*A",
]
_RANDOM_KEYS = ["a", "b", "<<", "'<<'", "1", "~", "true", "'k'", "? [x]", "x y", "2001-01-01", "a"]
_RANDOM_BASES = ["", "base: &M {p: 1, q: 2, '<<': 3}\n", "base: &M\n  p: 1\n  q: ~\n"]
# fmt: on


def _random_node(rng: random.Random, depth: int, indent: int) -> str:
    pad, draw = " " * indent, rng.random()
    if depth > 2 or draw < 0.4:
        return " " + rng.choice(_RANDOM_SCALARS)
    if draw < 0.7:
        lines = []
        for _ in range(rng.randint(1, 3)):
            key = rng.choice(_RANDOM_KEYS if rng.random() < 0.2 else ["a", "b", "c", "d", "<<", "e"])
            if key.startswith("? "):
                lines.append(f"{pad}{key}\n{pad}:{_random_node(rng, depth + 1, indent + 2)}")
            else:
                lines.append(f"{pad}{key}:{_random_node(rng, depth + 1, indent + 2)}")
        return "\n" + "\n".join(lines)
    return "\n" + "\n".join(f"{pad}-{_random_node(rng, depth + 1, indent + 2)}" for _ in range(rng.randint(1, 3)))


def random_text(rng: random.Random) -> str:
    documents = []
    for _ in range(rng.randint(1, 3)):
        keys = rng.sample(["kind", "data", "spec", "x", "<<", "a"], rng.randint(1, 3))
        body = "\n".join(f"{key}:{_random_node(rng, 0, 2)}" for key in keys)
        documents.append(rng.choice(_RANDOM_BASES) + body + "\n")
    return rng.choice(["---\n", "--- # c\n", "---\n# only a comment\n---\n"]).join(documents)


@pytest.mark.parametrize("mode", ["file", "output"])
def test_random_documents(oracle: Path, tmp_path: Path, mode: str) -> None:
    seed = int(os.environ.get("PHOEBE_YAML_SEED") or secrets.randbits(32))
    count = int(os.environ.get("PHOEBE_YAML_CASES") or DEFAULT_RANDOM)
    rng = random.Random(seed)
    paths = []
    for number in range(count):
        paths.append(tmp_path / f"{number:05d}.yaml")
        paths[-1].write_text(random_text(rng))
    mismatches = []
    for path, go in zip(paths, ask(oracle, mode, paths), strict=True):
        case = Case(path.stem, mode, path.read_bytes())
        values, error = phoebe(case, path)
        if go.ok != (error is None) or (go.ok and not same(values, go.documents)):
            mismatches.append(f"{case.data.decode()}\n  Go:     {go}\n  phoebe: {values if error is None else error}")
    assert not mismatches, f"PHOEBE_YAML_SEED={seed}: {len(mismatches)} of {count} differ\n\n" + "\n\n".join(
        mismatches[:5]
    )
