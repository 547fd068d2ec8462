"""Building one Flux Kustomization from a checkout, as kustomize-controller does, and caching it.

Each build runs on a private copy of just the files it reads (``scan.Closure``, hard links where
possible), with the kustomization.yaml Flux would generate written into the copy — the checkout
is never touched, and builds can run in parallel. The kustomize output is cached (as JSON) under the
user cache directory, keyed by the kustomize version, the Flux Kustomization's build fields and a
hash of every file the build reads; a second run with nothing changed runs no kustomize at all.

Builds are confined to the source's root, as kustomize-controller's are: a build whose references
leave it (``scan``: absolute paths, ``../`` out of the root, symlinks) is refused before kustomize
runs, with a ``kustomization path not found`` error naming the reference; the copies hold regular
files only (nothing is linked or copied through a symlink); ``spec.path`` is joined to the root as
Flux joins it (``../`` never climbs above the root).

A Kustomization whose build fields hold values substituted from a cluster Secret (``secret``) is
neither read from nor written to the cache, and its private copy is made in memory where the
system has such a place (``/dev/shm``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from phoebe_cli.repo.cache import read_cached, write_cached
from phoebe_cli.repo.generator import GeneratorError, flux_kustomization
from phoebe_cli.repo.kustomize import BuildFailed, Kustomize
from phoebe_cli.repo.scan import KUSTOMIZATION_FILES, Closure, Scanner, is_remote, kustomization_file
from phoebe_cli.repo.yamlio import YamlError, dump_documents, load_documents, load_text

PATH_NOT_FOUND = "kustomization path not found"  # validate's `path` code: kustomize-controller's words
CACHE_FORMAT = "3"  # entries are JSON; 3: builds read the source artifact (ignore rules), kustomize types
BUILD_FIELDS = (
    "path",
    "targetNamespace",
    "namePrefix",
    "nameSuffix",
    "patches",
    "components",
    "ignoreMissingComponents",
    "patchesStrategicMerge",
    "patchesJson6902",
    "images",
    "buildMetadata",
)


class Refused(Exception):
    """A build refused before kustomize reads outside the root: the reference, and where it is."""


@dataclass
class BuildOutput:
    objects: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None  # why it could not be built (kustomize's message, a missing path ...)
    remote: list[str] = field(default_factory=list)  # remote references left out offline
    cached: bool = False
    ran_kustomize: bool = False
    key: str = ""  # the cache key: what the output is a function of
    files: tuple[str, ...] = ()  # the files the build reads, relative to the checkout

    @property
    def partial(self) -> bool:
        return bool(self.remote) and self.error is None


class Builder:
    """Builds Flux Kustomizations of one checkout; thread-safe."""

    def __init__(
        self,
        root: Path,
        tool: Kustomize | None,
        *,
        use_cache: bool = True,
        allow_remote: bool = False,
        scanner: Scanner | None = None,
    ) -> None:
        self.root = root.resolve()
        self.tool = tool
        self.scanner = scanner if scanner is not None else Scanner(self.root)
        self.artifact = self.scanner.artifact
        self.use_cache = use_cache
        self.allow_remote = allow_remote
        self.kustomize_runs = 0
        self._lock = threading.Lock()

    def directory_of(self, spec: dict[str, Any]) -> Path:
        """spec.path inside the source, as kustomize-controller joins it (securejoin: resolved
        lexically, and ``..`` never climbs above the root; an artifact holds no symlinks)."""
        path = str(spec.get("path") or "./")
        return self.root / os.path.normpath("/" + path.lstrip("/")).lstrip("/")

    def without_kustomize(self, spec: dict[str, Any], *, secret: bool = False) -> tuple[BuildOutput | None, str]:
        """The output when it needs no kustomize run (from the cache, or an error found by
        looking), else None; and the build's key: Kustomizations with the same key build the
        same objects (only their substitution differs). Cheap: the caller runs it in its thread.
        ``secret``: the spec holds values from a cluster Secret — the cache is not used."""
        early, _, closure, key = self._plan(spec, use_cache=self.use_cache and not secret)
        if early is not None and closure is not None and not early.files:
            early.files = _relative_files(closure)
        return early, key

    def _plan(self, spec: dict[str, Any], *, use_cache: bool) -> tuple[BuildOutput | None, Path, Closure | None, str]:
        directory = self.directory_of(spec)
        relative = str(spec.get("path") or "./")
        inside = self.artifact.relative(directory)
        if not self.artifact.is_dir(inside):
            link = self.scanner.symlink_on(inside or "")
            if link is not None:
                why = f" (it goes through a symlink, {link}: an artifact holds none)"
            else:
                why = " (the source's ignore rules leave it out)" if _is_real_dir(directory) else ""
            return BuildOutput(error=f"{PATH_NOT_FOUND}: {relative}{why}"), directory, None, ""
        components = [c for c in spec.get("components") or [] if isinstance(c, str)]
        closure = self.scanner.closure(directory, components)
        if closure.escapes:
            return BuildOutput(error=f"{PATH_NOT_FOUND}: {closure.escapes[0]}"), directory, closure, ""
        if closure.problems:
            return BuildOutput(error=closure.problems[0]), directory, closure, ""
        remote = sorted(set(closure.remote)) if not self.allow_remote else []
        key = self._key(spec, closure)
        if use_cache and _cacheable(closure):
            cached = read_cached(key)
            if isinstance(cached, list):
                return BuildOutput(objects=cached, remote=remote, cached=True, key=key), directory, closure, key
        return None, directory, closure, key

    def build(self, spec: dict[str, Any], *, secret: bool = False) -> BuildOutput:
        """``secret``: the spec holds values from a cluster Secret — the cache is not used."""
        use_cache = self.use_cache and not secret
        early, directory, closure, key = self._plan(spec, use_cache=use_cache)
        if early is not None:
            return early
        assert closure is not None
        remote = sorted(set(closure.remote)) if not self.allow_remote else []
        if self.tool is None:
            from phoebe_cli.errors import ToolMissing

            raise ToolMissing("kustomize is needed to build this repository")
        try:
            text = self._run(directory, spec, closure, strip_remote=not self.allow_remote, in_memory=secret)
        except Refused as refused:
            return BuildOutput(error=f"{PATH_NOT_FOUND}: {refused}", ran_kustomize=True, files=_relative_files(closure))
        except (BuildFailed, GeneratorError) as error:
            return BuildOutput(error=str(error), remote=remote, ran_kustomize=True, files=_relative_files(closure))
        try:
            objects = [o for o in load_text(text) if isinstance(o, dict)]
        except yaml.YAMLError as error:
            return BuildOutput(error=f"kustomize output is not YAML: {error}", ran_kustomize=True)
        cached = use_cache and _cacheable(closure)
        if cached:
            write_cached(key, objects)
        return BuildOutput(
            objects=objects,
            remote=remote,
            ran_kustomize=True,
            key=key if cached else "",
            files=_relative_files(closure),
        )

    # --- running kustomize on a private copy ------------------------------------------------
    def _run(
        self, directory: Path, spec: dict[str, Any], closure: Closure, *, strip_remote: bool, in_memory: bool = False
    ) -> str:
        assert self.tool is not None
        with self._lock:
            self.kustomize_runs += 1
        with tempfile.TemporaryDirectory(prefix="phoebe-build-", dir=_memory_dir() if in_memory else None) as scratch:
            work = Path(scratch)
            for relative in closure.files:
                _link(self.root / relative, work / relative)
            for relative in closure.directories:
                (work / relative).mkdir(parents=True, exist_ok=True)
            target = work / directory.relative_to(self.root)
            target.mkdir(parents=True, exist_ok=True)
            if strip_remote and closure.remote:
                self._strip_remote(work, closure)
            # The copy holds what the artifact holds of the build: a generated kustomization lists it.
            kus, _ = flux_kustomization(target, spec)
            _write_kustomization(target, kus)
            try:
                self._check_plugin_dirs(work, closure)
                return self.tool.build(target)
            except BuildFailed as error:
                if not _looks_missing(str(error)):
                    raise BuildFailed(_in_checkout(str(error), work)) from None
            # the scanner missed a file the build reads: build on a copy of the whole checkout
            return self._run_on_full_copy(directory, kus, closure, in_memory=in_memory)

    def _run_on_full_copy(self, directory: Path, kus: dict[str, Any], closure: Closure, *, in_memory: bool) -> str:
        """The build on a copy of the whole artifact: its regular files, never a symlink (and
        never anything outside the root: every reference was confined before)."""
        assert self.tool is not None
        with tempfile.TemporaryDirectory(
            prefix="phoebe-build-full-", dir=_memory_dir() if in_memory else None
        ) as scratch:
            work = Path(scratch) / "repo"
            for relative in self.artifact.files:  # the artifact, never what its ignore rules leave out
                _link(self.root / relative, work / relative)
            target = work / directory.relative_to(self.root)
            target.mkdir(parents=True, exist_ok=True)
            _write_kustomization(target, kus)
            try:
                self._check_plugin_dirs(work, closure)
                return self.tool.build(target)
            except BuildFailed as error:
                raise BuildFailed(_in_checkout(str(error), work)) from None

    def _check_plugin_dirs(self, work: Path, closure: Closure) -> None:
        """Generators and transformers configured by a kustomization directory's output: that
        output (built alone, which reads only what the scanner confined) is what kustomize will
        configure its plugins with; the paths it names are confined before the real build reads
        them (Refused), and linked into the copy. Innermost first: an inner directory's plugins
        run while an outer one is built."""
        assert self.tool is not None
        for declaring, plugin_dir in reversed(closure.plugin_dirs):
            try:
                text = self.tool.build(work / plugin_dir)
                configs = [c for c in load_text(text) if isinstance(c, dict)]
            except yaml.YAMLError as error:
                raise BuildFailed(f"{plugin_dir}: kustomize output is not YAML: {error}") from None
            found = self.scanner.plugin_closure(declaring, configs, f"the output of {plugin_dir}")
            if found.escapes:
                raise Refused(found.escapes[0])
            for relative in found.files:
                if not (work / relative).exists():
                    _link(self.root / relative, work / relative)

    def _strip_remote(self, work: Path, closure: Closure) -> None:
        """Offline: remote resources and components are left out (and reported), so everything
        local in the build can still be known."""
        for relative in closure.directories:
            kfile = kustomization_file(work / relative)
            if kfile is None:
                continue
            try:
                documents = load_documents(kfile)
            except YamlError:
                continue
            spec = documents[0].data if documents and isinstance(documents[0].data, dict) else None
            if spec is None:
                continue
            changed = False
            for key in ("resources", "bases", "components"):
                entries = spec.get(key)
                if isinstance(entries, list) and any(isinstance(e, str) and is_remote(e) for e in entries):
                    spec[key] = [e for e in entries if not (isinstance(e, str) and is_remote(e))]
                    changed = True
            if changed:
                kfile.unlink()  # a hard link to the checkout: never write through it
                kfile.write_text(dump_documents([spec]))

    # --- the cache ------------------------------------------------------------------------
    def _key(self, spec: dict[str, Any], closure: Closure) -> str:
        fields = {k: spec.get(k) for k in BUILD_FIELDS if spec.get(k) is not None}
        hasher = hashlib.sha256()
        hasher.update(CACHE_FORMAT.encode())
        hasher.update((self.tool.version if self.tool else "no-tool").encode())
        hasher.update(json.dumps(fields, sort_keys=True, default=str).encode())
        hasher.update(str(self.allow_remote).encode())
        hasher.update(self.scanner.digest(closure).encode())
        return hasher.hexdigest()


def _relative_files(closure: Closure) -> tuple[str, ...]:
    return tuple(sorted(str(f) for f in closure.files))


def _link(source: Path, target: Path) -> None:
    """A regular file of the source into a private copy: a hard link (or a copy), never through a
    symlink — what is not a regular file (any more) is left out, so the build finds it missing."""
    try:
        status = os.lstat(source)
    except OSError:
        return
    if not stat.S_ISREG(status.st_mode):
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target, follow_symlinks=False)
    except OSError:
        shutil.copyfile(source, target, follow_symlinks=False)


def _is_real_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def _cacheable(closure: Closure) -> bool:
    """A build whose plugins are configured by a directory's output reads files its key does not
    hash (known only once built): never cached."""
    return not closure.plugin_dirs


def _memory_dir() -> str | None:
    """Where a private copy holding Secret values is made: memory, not disk, when there is one."""
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK) else None


def _write_kustomization(directory: Path, kus: dict[str, Any]) -> None:
    """The kustomization Flux builds with, in place of the copy's own (unlinked first: the copy's
    files are hard links to the checkout's, never written through)."""
    for name in KUSTOMIZATION_FILES:
        (directory / name).unlink(missing_ok=True)
    (directory / "kustomization.yaml").write_text(dump_documents([kus]))


def _in_checkout(message: str, work: Path) -> str:
    """kustomize's message about the private copy, told about the checkout: paths relative to
    its root, and without the retry-as-a-directory noise kustomize appends to a missing file."""
    for prefix in {str(work), str(work.resolve())}:
        message = message.replace(prefix + "/", "")
    noise = message.find("': must build at directory")
    return message[: noise + 1] if noise >= 0 else message


def _looks_missing(message: str) -> bool:
    lowered = message.lower()
    return "no such file" in lowered or "must resolve to a file" in lowered or "does not exist" in lowered
