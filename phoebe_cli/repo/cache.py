"""phoebe's build cache: JSON entries by key under ``$XDG_CACHE_HOME/phoebe/builds``.

Entries hold what the checkout holds (its plain Secrets included), never a value that came from a
cluster Secret (``repo.model`` does not write those entries), so the cache is the user's only:
every directory phoebe makes under ``$XDG_CACHE_HOME/phoebe`` is 0700 and every file 0600,
whatever the umask, and a directory an older phoebe left wider is narrowed (its files too).

Entries are written whole or not at all (a private temporary file, renamed into place), so
processes sharing the cache never see half an entry, and a directory another process made
first is no error. A damaged or missing entry is a miss; a cache that cannot be written only
costs time.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import threading
from pathlib import Path
from typing import Any

DIR_MODE = 0o700
FILE_MODE = 0o600


def cache_root() -> Path:
    """``$XDG_CACHE_HOME/phoebe`` (``~/.cache/phoebe``): the builds and the kept ref trees."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "phoebe"


def cache_dir() -> Path:
    return cache_root() / "builds"


def _cache_path(key: str) -> Path:
    return cache_dir() / key[:2] / f"{key}.json"


def ensure_private_dir(path: Path) -> None:
    """``path`` as a directory, made with its missing parents as 0700; the directories of the
    cache root and below it are narrowed to 0700 when they are wider. Another process making the
    same directory at the same time is no error. OSError when it cannot be made."""
    root = cache_root()
    missing: list[Path] = []
    current = path
    while not current.is_dir():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, DIR_MODE)
        except FileExistsError:
            if not directory.is_dir():
                raise
            continue
        _narrow(directory)  # a umask cannot widen 0700, but one may have narrowed it further
    for directory in (path, *path.parents):
        if directory == root or root in directory.parents:
            _narrow(directory, tighten=directory != root)
        else:
            break


def _narrow(directory: Path, *, tighten: bool = False) -> None:
    """A directory of the cache as 0700; with ``tighten``, when it was wider (made by an older
    phoebe), the files and directories in it too."""
    try:
        status = os.lstat(directory)
    except OSError:
        return
    if not stat.S_ISDIR(status.st_mode) or stat.S_IMODE(status.st_mode) == DIR_MODE:
        return
    try:
        os.chmod(directory, DIR_MODE)
    except OSError:
        return  # not ours: leave it
    if tighten:
        _tighten(directory)


def _tighten(top: Path) -> None:
    for parent, directories, files in os.walk(top):
        for name in directories:
            _chmod(Path(parent) / name, DIR_MODE, stat.S_ISDIR)
        for name in files:
            _chmod(Path(parent) / name, FILE_MODE, stat.S_ISREG)


def _chmod(path: Path, mode: int, kind: Any) -> None:
    try:
        status = os.lstat(path)
        if kind(status.st_mode) and stat.S_IMODE(status.st_mode) != mode:
            os.chmod(path, mode)
    except OSError:
        pass


def write_private(path: Path, data: bytes, *, exclusive: bool = False) -> None:
    """``data`` as the file ``path`` (0600), whole or not at all: written to a private temporary
    file beside it, then renamed into place — or, ``exclusive``, linked into place only when there
    is no such file yet (FileExistsError otherwise). The directory must exist."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.{os.urandom(4).hex()}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    descriptor = os.open(partial, flags, FILE_MODE)
    try:
        try:
            os.fchmod(descriptor, FILE_MODE)  # exactly 0600, whatever the umask
            view = memoryview(data)
            while view:
                view = view[os.write(descriptor, view) :]
        finally:
            os.close(descriptor)
        if exclusive:
            os.link(partial, path)
        else:
            os.replace(partial, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial)


def read_cached(key: str) -> Any:
    """A cache entry, or None when there is none (or it is damaged: a miss)."""
    try:
        return json.loads(_cache_path(key).read_bytes())
    except (OSError, ValueError):
        return None


def write_cached(key: str, data: Any) -> None:
    path = _cache_path(key)
    try:
        # default=str: YAML timestamps PyYAML made into datetimes come back as text (Flux's are text too)
        text = json.dumps(data, separators=(",", ":"), default=str)
        ensure_private_dir(path.parent)
        write_private(path, text.encode())
    except OSError:
        pass  # a cache that cannot be written only costs time
