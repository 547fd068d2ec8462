"""Building one Flux Kustomization from a checkout, as kustomize-controller does, and caching it.

Each build runs on a private copy of just the files it reads (``scan.Closure``, hard links where
possible), with the kustomization.yaml Flux would generate written into the copy — the checkout
is never touched, and builds can run in parallel. The kustomize output is cached (as JSON) under the
user cache directory, keyed by the kustomize version, the Flux Kustomization's build fields and a
hash of every file the build reads; a second run with nothing changed runs no kustomize at all.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
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
        """spec.path inside the source, resolved lexically (an artifact holds no symlinks)."""
        path = str(spec.get("path") or "./")
        return Path(os.path.normpath(self.root / path.lstrip("/")))

    def without_kustomize(self, spec: dict[str, Any]) -> tuple[BuildOutput | None, str]:
        """The output when it needs no kustomize run (from the cache, or an error found by
        looking), else None; and the build's key: Kustomizations with the same key build the
        same objects (only their substitution differs). Cheap: the caller runs it in its thread."""
        early, _, closure, key = self._plan(spec)
        if early is not None and closure is not None and not early.files:
            early.files = _relative_files(closure)
        return early, key

    def _plan(self, spec: dict[str, Any]) -> tuple[BuildOutput | None, Path, Closure | None, str]:
        directory = self.directory_of(spec)
        relative = str(spec.get("path") or "./")
        if not self.artifact.is_dir(self.artifact.relative(directory)):
            why = " (the source's ignore rules leave it out)" if directory.is_dir() else ""
            return BuildOutput(error=f"kustomization path not found: {relative}{why}"), directory, None, ""
        components = [c for c in spec.get("components") or [] if isinstance(c, str)]
        closure = self.scanner.closure(directory, components)
        if closure.problems:
            return BuildOutput(error=closure.problems[0]), directory, closure, ""
        remote = sorted(set(closure.remote)) if not self.allow_remote else []
        key = self._key(spec, closure)
        if self.use_cache:
            cached = read_cached(key)
            if isinstance(cached, list):
                return BuildOutput(objects=cached, remote=remote, cached=True, key=key), directory, closure, key
        return None, directory, closure, key

    def build(self, spec: dict[str, Any]) -> BuildOutput:
        early, directory, closure, key = self._plan(spec)
        if early is not None:
            return early
        assert closure is not None
        remote = sorted(set(closure.remote)) if not self.allow_remote else []
        if self.tool is None:
            from phoebe_cli.errors import ToolMissing

            raise ToolMissing("kustomize is needed to build this repository")
        try:
            text = self._run(directory, spec, closure, strip_remote=not self.allow_remote)
        except (BuildFailed, GeneratorError) as error:
            return BuildOutput(error=str(error), remote=remote, ran_kustomize=True, files=_relative_files(closure))
        try:
            objects = [o for o in load_text(text) if isinstance(o, dict)]
        except yaml.YAMLError as error:
            return BuildOutput(error=f"kustomize output is not YAML: {error}", ran_kustomize=True)
        if self.use_cache:
            write_cached(key, objects)
        return BuildOutput(
            objects=objects,
            remote=remote,
            ran_kustomize=True,
            key=key if self.use_cache else "",
            files=_relative_files(closure),
        )

    # --- running kustomize on a private copy ------------------------------------------------
    def _run(self, directory: Path, spec: dict[str, Any], closure: Closure, *, strip_remote: bool) -> str:
        assert self.tool is not None
        with self._lock:
            self.kustomize_runs += 1
        with tempfile.TemporaryDirectory(prefix="phoebe-build-") as scratch:
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
                return self.tool.build(target)
            except BuildFailed as error:
                if not _looks_missing(str(error)):
                    raise BuildFailed(_in_checkout(str(error), work)) from None
            # the scanner missed a file the build reads: build on a copy of the whole checkout
            return self._run_on_full_copy(directory, kus)

    def _run_on_full_copy(self, directory: Path, kus: dict[str, Any]) -> str:
        assert self.tool is not None
        with tempfile.TemporaryDirectory(prefix="phoebe-build-full-") as scratch:
            work = Path(scratch) / "repo"
            for relative in self.artifact.files:  # the artifact, never what its ignore rules leave out
                _link(self.root / relative, work / relative)
            target = work / directory.relative_to(self.root)
            _write_kustomization(target, kus)
            try:
                return self.tool.build(target)
            except BuildFailed as error:
                raise BuildFailed(_in_checkout(str(error), work)) from None

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
    target.parent.mkdir(parents=True, exist_ok=True)
    _link_or_copy(str(source), str(target))


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


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
