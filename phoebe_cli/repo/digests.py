"""Secret values compared, never kept: keyed digests.

phoebe tells a changed Secret value from an unchanged one by comparing digests of the two values,
on both sides: the checkout's Secrets (``repo.model``) and the cluster's (``usecases.diff``). A
digest is HMAC-SHA256 under a random key of this user's — a plain SHA-256 of a short value
(a PIN, a port, ``hunter2``) would give the value back to anyone who tries every candidate.

The key lives in the cache directory (``$XDG_CACHE_HOME/phoebe/builds/digest.key``, 0600), made
once, atomically, the first time a digest is written to the cache. Until then (and with
``--no-cache``, which writes nothing) a process uses a key of its own, in memory: digests are
only ever compared within one run or with cache entries made under the same key (the
post-process cache key holds ``key_id()``).

Use ``secret_digests`` (a Secret's values) or ``value_digest`` (one value) everywhere a digest
of a Secret value is made; never ``hashlib`` directly.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from phoebe_cli.flux.secrets import data_of

__all__ = ["keep_key", "key_id", "secret_digests", "value_digest"]

KEY_FILE = "digest.key"
KEY_BYTES = 32


class _Key:
    def __init__(self, value: bytes, kept: bool) -> None:
        self.value = value
        self.kept = kept  # the key file holds it


_lock = threading.Lock()
_keys: dict[Path, _Key] = {}  # the cache directory -> this process's key for it


def _key_path() -> Path:
    from phoebe_cli.repo.cache import cache_dir

    return cache_dir() / KEY_FILE


def _read_key(path: Path) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            value = handle.read(KEY_BYTES + 1)
    except OSError:
        return None
    return value if len(value) == KEY_BYTES else None


def _key() -> _Key:
    path = _key_path()
    with _lock:
        known = _keys.get(path)
        if known is None:
            value = _read_key(path)
            known = _Key(value, True) if value is not None else _Key(os.urandom(KEY_BYTES), False)
            _keys[path] = known
        return known


def keep_key() -> bool:
    """Make sure the key file holds the key this process digests with (creating it, once,
    atomically: a complete file appears or none). False when it cannot: another process made a
    different key first, or the directory cannot be written — then digests made in this process
    must not be cached."""
    from phoebe_cli.repo.cache import ensure_private_dir, write_private

    path = _key_path()
    key = _key()
    with _lock:
        if key.kept:
            return True
        current = _read_key(path)
        if current is not None:  # another process made one meanwhile: its key is the one kept
            return False
        try:
            ensure_private_dir(path.parent)
            # a damaged file is replaced; otherwise only made when there is none (never overwritten)
            write_private(path, key.value, exclusive=not os.path.lexists(path))
        except OSError:  # FileExistsError: another process was first; or the directory is not writable
            return False
        key.kept = True
        return True


def key_id() -> str:
    """Names the key (not the key): part of the cache key of every entry that holds digests."""
    return hmac.new(_key().value, b"phoebe key id", hashlib.sha256).hexdigest()[:16]


def value_digest(raw: bytes) -> str:
    """The keyed digest of one Secret value (its decoded bytes)."""
    return hmac.new(_key().value, raw, hashlib.sha256).hexdigest()


def secret_digests(secret: Mapping[str, Any]) -> dict[str, str]:
    """The keyed digest of each value of a Secret, ``stringData`` over ``data`` as the API server
    merges them (``data`` decoded from base64; a value that is not base64 digested as written)."""
    digests = {}
    for key, value in data_of(secret).items():
        try:
            raw = base64.b64decode(str(value), validate=True)
        except ValueError:
            raw = str(value).encode()
        digests[str(key)] = value_digest(raw)
    for key, value in data_of(secret, "stringData").items():
        digests[str(key)] = value_digest(str(value).encode())
    return digests


def _forget() -> None:
    """Tests: the next digest reads (or makes) the key again."""
    with _lock:
        _keys.clear()
