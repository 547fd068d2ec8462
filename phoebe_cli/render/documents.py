"""Machine-readable output: JSON and YAML documents, stable and documented (docs/output.md)."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

DOCUMENT_API_VERSION = "phoebe.dev/v1"


class DataFormat(StrEnum):
    JSON = "json"
    YAML = "yaml"


def document(kind: str, body: dict[str, Any]) -> dict[str, Any]:
    """Wrap a result body with the header every phoebe document carries."""
    return {"apiVersion": DOCUMENT_API_VERSION, "kind": kind, **body}


def serialize(doc: Any, fmt: DataFormat) -> str:
    if fmt is DataFormat.JSON:
        return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    import yaml

    return str(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, default_flow_style=False))
