"""phoebe's build cache: JSON entries by key under ``$XDG_CACHE_HOME/phoebe/builds``.

Entries hold what the checkout holds (Secrets included), so the directories are the user's only.
A damaged or missing entry is a miss; a cache that cannot be written only costs time.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "phoebe" / "builds"


def _cache_path(key: str) -> Path:
    return cache_dir() / key[:2] / f"{key}.json"


def read_cached(key: str) -> Any:
    """A cache entry, or None when there is none (or it is damaged: a miss)."""
    try:
        return json.loads(_cache_path(key).read_bytes())
    except (OSError, ValueError):
        return None


def write_cached(key: str, data: Any) -> None:
    path = _cache_path(key)
    try:
        # Builds hold what the checkout holds, Secrets included: the cache is the user's only.
        cache_dir().mkdir(parents=True, exist_ok=True, mode=0o700)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        partial = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        # default=str: YAML timestamps PyYAML made into datetimes come back as text (Flux's are text too)
        partial.write_text(json.dumps(data, separators=(",", ":"), default=str))
        partial.replace(path)
    except OSError:
        pass  # a cache that cannot be written only costs time
