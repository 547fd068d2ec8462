"""Flux's own postBuild substitution as an oracle: the Go program in tests/cluster/go/envsubst-oracle.

It is built like the control plane's binaries (``ensure_program``: cached under ``$XDG_CACHE_HOME/phoebe/bin``,
``GOTOOLCHAIN=local``, ``GOFLAGS=-mod=mod``) and answers JSON lines:

* ``text``: ``envsubst.Eval`` (github.com/fluxcd/pkg/envsubst v1.7.1) with the mapping function of
  ``varSubstitution`` (github.com/fluxcd/pkg/kustomize v1.35.7, kustomize_varsub.go);
* ``object``: the real ``kustomize.SubstituteVariables`` on one resource (AsYAML, the variable-name check,
  envsubst, ``YAMLToJSON``, ``UnmarshalJSON``), the variables given as ``spec.postBuild.substitute``.
"""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.cluster.build import GoProgram, ensure_program
from tests.cluster.build import oracle_program as build_oracle

MODULE_DIR = "envsubst-oracle"


def oracle_program() -> GoProgram:
    return build_oracle(MODULE_DIR, "github.com/fluxcd/pkg/envsubst")


def ensure_oracle() -> Path:
    return ensure_program(oracle_program())


@dataclass(frozen=True)
class Answer:
    """Go's answer: ``value`` (bytes for text, the decoded JSON object for objects) or ``error``."""

    value: Any = None
    error: str | None = None


def text_request(text: str, variables: Mapping[str, str], *, strict: bool) -> dict[str, Any]:
    return {"mode": "text", "text": text, "vars": dict(variables), "strict": strict}


def object_request(
    obj: Mapping[str, Any], variables: Mapping[str, str], *, strict: bool, always: bool = False
) -> dict[str, Any]:
    return {"mode": "object", "object": obj, "vars": dict(variables), "strict": strict, "always": always}


def yaml_request(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The YAML text Go expands for the object (Resource.AsYAML), to see where a YAML difference starts."""
    return {"mode": "yaml", "object": obj}


def _answer(line: str) -> Answer:
    reply = json.loads(line)
    if "error" in reply:
        return Answer(error=reply["error"])
    if "out_b64" in reply:
        return Answer(value=base64.b64decode(reply["out_b64"]))
    return Answer(value=reply["object"])


def ask(binary: Path, requests: Iterable[Mapping[str, Any]], *, batch: int = 20_000) -> list[Answer]:
    """One answer per request, in order (one process per batch, stdin and stdout in one go)."""
    answers: list[Answer] = []
    pending: list[str] = []

    def flush() -> None:
        if not pending:
            return
        result = subprocess.run(
            [str(binary)], input="".join(pending), capture_output=True, text=True, check=True, encoding="utf-8"
        )
        lines = result.stdout.splitlines()
        if len(lines) != len(pending):
            raise RuntimeError(f"the oracle answered {len(lines)} of {len(pending)} requests: {result.stderr}")
        answers.extend(map(_answer, lines))
        pending.clear()

    for request in requests:
        pending.append(json.dumps(request, ensure_ascii=False) + "\n")
        if len(pending) >= batch:
            flush()
    flush()
    return answers
