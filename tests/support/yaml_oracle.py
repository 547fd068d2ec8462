"""Go's YAML readers as an oracle: the program in tests/cluster/go/yamloracle.

It reads a file as kustomize reads a resource file (sigs.k8s.io/kustomize/kyaml v0.21.1 ``kio.FromBytes``),
writes each object as kustomize writes its output and reads that as Flux does (sigs.k8s.io/yaml v1.6.0), or
reads a stream as Flux reads kustomize's output; see main.go. Built like the control plane's binaries
(``ensure_program``: cached under ``$XDG_CACHE_HOME/phoebe/bin``, ``GOTOOLCHAIN=local``, ``GOFLAGS=-mod=mod``).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.cluster.build import GoProgram, ensure_program
from tests.cluster.build import oracle_program as build_oracle

MODULE_DIR = "yamloracle"
_INT64 = 1 << 63


def oracle_program() -> GoProgram:
    return build_oracle(MODULE_DIR, "sigs.k8s.io/kustomize/kyaml")


def ensure_oracle() -> Path:
    return ensure_program(oracle_program())


@dataclass(frozen=True)
class Answer:
    ok: bool
    documents: list[Any]
    error: str = ""
    line: int = 0  # the file line Go's error names (0: none)


def _number(text: str) -> int | float:
    """A JSON integer as Flux's Unstructured holds it: int64, else float64."""
    value = int(text)
    return value if -_INT64 <= value < _INT64 else float(value)


def ask(binary: Path, mode: str, paths: Sequence[Path]) -> list[Answer]:
    """One answer per file, in order, from one process (``mode``: "file" or "output")."""
    answers: list[Answer] = []
    for start in range(0, len(paths), 500):
        chunk = [str(path) for path in paths[start : start + 500]]
        result = subprocess.run([str(binary), mode, *chunk], capture_output=True, text=True, check=False)
        lines = result.stdout.split("\n")[:-1]  # not splitlines(): a value may hold U+0085
        if result.returncode != 0 or len(lines) != len(chunk):
            raise RuntimeError(f"yamloracle {mode} failed ({result.returncode}): {result.stderr[-2000:]}")
        for line in lines:
            raw = json.loads(line, parse_int=_number)
            answers.append(Answer(raw["ok"], raw["documents"], raw.get("error", ""), raw.get("line", 0)))
    return answers
