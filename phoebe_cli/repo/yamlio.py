"""Reading YAML files of a checkout: every document, its first line, and clear errors.

Anchors, aliases, comments and multi-document files are plain PyYAML; what is added is the line
each document starts on (for findings with file and line) and one error type.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


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
    """Every non-empty document of a YAML file, with the line it starts on."""
    return parse_documents(_read(path), path)


def _invalid(path: Path, exc: yaml.YAMLError) -> YamlError:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return YamlError(path, mark.line + 1 if mark is not None else None, f"not valid YAML: {problem}")


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise YamlError(path, None, f"cannot be read: {exc}") from exc


def parse_documents(text: str, path: Path) -> list[Document]:
    """One pass: compose each document's node (for its line), then construct it."""
    loader = _Loader(text)
    documents = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            value = loader.construct_document(node)
            if value is not None:
                documents.append(Document(value, path, node.start_mark.line + 1))
    except yaml.YAMLError as exc:
        raise _invalid(path, exc) from exc
    finally:
        loader.dispose()
    return documents


def check_syntax(path: Path) -> None:
    """Raise YamlError when a file is not YAML; nothing is constructed (a file nobody reads as
    objects only needs to parse, and composing alone is the C parser's work: several times faster)."""
    loader = _Loader(_read(path))
    try:
        while loader.check_node():
            loader.get_node()
    except yaml.YAMLError as exc:
        raise _invalid(path, exc) from exc
    finally:
        loader.dispose()


def dump_documents(objects: list[dict[str, Any]]) -> str:
    dumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump_all(objects, Dumper=dumper, sort_keys=False, default_flow_style=False, allow_unicode=True)


def load_text(text: str) -> list[Any]:
    return [doc for doc in yaml.load_all(text, Loader=_Loader) if doc is not None]  # a safe loader
