"""Reading YAML files of a checkout: every document, its first line, and clear errors.

A file is read as kustomize reads it and each document holds what Flux would apply for it (the rules, from
Go's yaml.v3, kyaml and sigs.k8s.io/yaml, are in goyaml.py); what Go refuses is one ``YamlError`` naming the
file and the line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from phoebe_cli.repo.goyaml import GoYamlError, check_file, read_file, read_output


class YamlError(Exception):
    def __init__(self, path: Path, line: int | None, message: str) -> None:
        super().__init__(f"{path}{f':{line}' if line else ''}: {message}")
        self.path = path
        self.line = line
        self.message = message


@dataclass(frozen=True)
class Document:
    data: Any
    path: Path
    line: int  # 1-based line the document starts on


def load_documents(path: Path) -> list[Document]:
    """Every document of a YAML file kustomize would read (null, {} and [] ones are left out), with its line."""
    text, utf16 = _read(path)
    return _parse(text, path, utf16)


def _invalid(path: Path, error: GoYamlError) -> YamlError:
    return YamlError(path, error.line, f"not valid YAML: {error.problem}")


def _read(path: Path) -> tuple[str, bool]:
    """The text, and whether it was UTF-16 (with a byte-order mark, as yaml.v3 reads it)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise YamlError(path, None, f"cannot be read: {exc}") from exc
    try:
        if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
            return data.decode("utf-16"), True
        return data.decode(), False
    except UnicodeDecodeError as exc:
        raise YamlError(path, None, f"cannot be read: {exc}") from exc


def parse_documents(text: str, path: Path) -> list[Document]:
    return _parse(text, path, False)


def _parse(text: str, path: Path, utf16: bool) -> list[Document]:
    try:
        return [Document(value, path, line) for value, line in read_file(text, one_piece=utf16)]
    except GoYamlError as error:
        raise _invalid(path, error) from error


def check_syntax(path: Path) -> None:
    """Raise YamlError when kustomize would refuse the file."""
    text, utf16 = _read(path)
    try:
        check_file(text, one_piece=utf16)
    except GoYamlError as error:
        raise _invalid(path, error) from error


def dump_documents(objects: list[dict[str, Any]]) -> str:
    dumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump_all(objects, Dumper=dumper, sort_keys=False, default_flow_style=False, allow_unicode=True)


def load_text(text: str) -> list[Any]:
    """kustomize's output, document by document, as Flux reads it; GoYamlError (a yaml.YAMLError) if Go refuses it."""
    return read_output(text)
