"""Which files a kustomize build reads, without running it.

The closure of a directory: its kustomization file (or, when it has none, what Flux's generator
would list: every YAML file below it and every sub-directory with a kustomization file), and,
recursively, every local file and directory that file points at (resources, components, patches,
generators' files, replacements ...). Remote references (URLs, Git) are collected, not followed.

It serves two purposes: a build can run on a private copy of just these files (so builds are
isolated and can run in parallel), and the hash of these files is the build's cache key.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from phoebe_cli.repo.yamlio import YamlError, load_documents

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
REMOTE_PREFIXES = ("git::", "gh:", "ssh://", "https://", "http://", "git@", "github.com:", "github.com/", "oci://")


def is_remote(reference: str) -> bool:
    """As Flux's IsLocalRelativePath, inverted."""
    lowered = reference.lower()
    return any(len(p) < len(reference) and lowered.startswith(p) for p in REMOTE_PREFIXES)


def kustomization_file(directory: Path) -> Path | None:
    for name in KUSTOMIZATION_FILES:
        candidate = directory / name
        if candidate.is_file():
            return candidate
    return None


@dataclass
class Closure:
    """The files a build reads, relative to the repository root."""

    root: Path
    files: set[Path] = field(default_factory=set)  # relative paths
    directories: set[Path] = field(default_factory=set)  # relative dirs whose kustomization was read
    remote: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # local references that do not exist
    problems: list[str] = field(default_factory=list)  # kustomization files that do not parse

    def digest(self, hashes: dict[Path, bytes] | None = None) -> str:
        """A hash of every file's path and content (``hashes``: file hashes already computed)."""
        known = {} if hashes is None else hashes
        hasher = hashlib.sha256()
        for relative in sorted(self.files):
            hasher.update(str(relative).encode() + b"\0")
            file_hash = known.get(relative)
            if file_hash is None:
                try:
                    file_hash = hashlib.sha256((self.root / relative).read_bytes()).digest()
                except OSError:
                    file_hash = b"<unreadable>"
                known[relative] = file_hash
            hasher.update(file_hash)
        for url in sorted(self.remote):
            hasher.update(b"remote\0" + url.encode())
        return hasher.hexdigest()


class Scanner:
    """Closures of one checkout. Shared directories (components, common bases) are read once:
    parsed kustomization files, resolved paths and file hashes are remembered (one run, one
    checkout; the dicts are only ever filled with the same values, so threads may share them)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.file_hashes: dict[Path, bytes] = {}
        self._relatives: dict[str, Path | None] = {}
        self._reals: dict[str, str] = {}
        self._specs: dict[Path, tuple[Path | None, dict[str, Any], str | None]] = {}

    def digest(self, closure: Closure) -> str:
        return closure.digest(self.file_hashes)

    def closure(self, directory: Path, extra_components: list[str] | None = None) -> Closure:
        closure = Closure(self.root)
        directory = Path(self._realpath(str(directory)))
        self._directory(directory, closure, generated_ok=True)
        for component in extra_components or []:
            if is_remote(component):
                closure.remote.append(component)
            else:
                self._reference(directory, component, closure)
        return closure

    def _realpath(self, path: str) -> str:
        """os.path.realpath with the directories' answers remembered: one lstat per new path."""
        path = os.path.normpath(path)
        known = self._reals.get(path)
        if known is not None:
            return known
        parent, name = os.path.split(path)
        if not name or parent == path:
            real = path
        else:
            candidate = os.path.join(self._realpath(parent), name)
            real = os.path.realpath(candidate) if os.path.islink(candidate) else candidate
        self._reals[path] = real
        return real

    def _relative(self, path: Path) -> Path | None:
        key = str(path)
        if key not in self._relatives:
            real = Path(self._realpath(key))
            self._relatives[key] = real.relative_to(self.root) if real.is_relative_to(self.root) else None
        return self._relatives[key]  # None: outside the repository, Flux could not read it either

    def _spec(self, directory: Path) -> tuple[Path | None, dict[str, Any], str | None]:
        """The directory's kustomization file, its content, and why it could not be read."""
        if directory not in self._specs:
            kfile = kustomization_file(directory)
            spec: dict[str, Any] = {}
            problem = None
            if kfile is not None:
                try:
                    documents = load_documents(kfile)
                    if documents and isinstance(documents[0].data, dict):
                        spec = documents[0].data
                except YamlError as error:
                    problem = str(error)
            self._specs[directory] = (kfile, spec, problem)
        return self._specs[directory]

    def _add_file(self, path: Path, closure: Closure) -> None:
        relative = self._relative(path)
        if relative is not None:
            closure.files.add(relative)

    def _directory(self, directory: Path, closure: Closure, *, generated_ok: bool) -> None:
        relative = self._relative(directory)
        if relative is None or relative in closure.directories:
            return
        closure.directories.add(relative)
        kfile, spec, problem = self._spec(directory)
        if kfile is None:
            if generated_ok:
                self._generated(directory, closure)
            return
        self._add_file(kfile, closure)
        if problem is not None:
            closure.problems.append(problem)
            return
        self._kustomization(directory, spec, closure)

    def _generated(self, directory: Path, closure: Closure) -> None:
        """What Flux's generator lists when a directory has no kustomization file."""
        for entry in sorted(directory.iterdir()):
            if entry.name.startswith(".") and entry.is_dir():
                continue
            if entry.is_dir():
                if kustomization_file(entry) is not None:
                    self._directory(entry, closure, generated_ok=False)
                else:
                    self._generated(entry, closure)
            elif entry.suffix in (".yaml", ".yml"):
                self._add_file(entry, closure)

    def _reference(self, base: Path, reference: str, closure: Closure) -> None:
        if is_remote(reference):
            closure.remote.append(reference)
            return
        target = Path(self._realpath(os.path.join(base, reference)))
        if target.is_dir():
            self._directory(target, closure, generated_ok=False)
        elif target.is_file():
            self._add_file(target, closure)
        else:
            closure.missing.append(str(self._relative(target) or reference))

    def _file_reference(self, base: Path, reference: str, closure: Closure) -> None:
        """A generator's file source: "path" or "key=path"."""
        path = reference.split("=", 1)[1] if "=" in reference else reference
        self._reference(base, path, closure)

    def _kustomization(self, directory: Path, spec: dict[str, Any], closure: Closure) -> None:
        for key in ("resources", "bases", "components", "crds", "configurations"):
            for entry in _strings(spec.get(key)):
                self._reference(directory, entry, closure)
        for entry in _strings(spec.get("patchesStrategicMerge")):
            if "\n" not in entry and ":" not in entry:  # a path, not an inline patch
                self._reference(directory, entry, closure)
        for key in ("patches", "patchesJson6902", "replacements"):
            for entry in spec.get(key) or []:
                if isinstance(entry, dict) and isinstance(entry.get("path"), str):
                    self._reference(directory, entry["path"], closure)
        for key in ("transformers", "generators", "validators"):
            for entry in _strings(spec.get(key)):
                if "\n" not in entry:
                    self._reference(directory, entry, closure)
        for key in ("configMapGenerator", "secretGenerator"):
            for generator in spec.get(key) or []:
                if not isinstance(generator, dict):
                    continue
                for entry in _strings(generator.get("files")) + _strings(generator.get("envs")):
                    self._file_reference(directory, entry, closure)
                if isinstance(generator.get("env"), str):
                    self._file_reference(directory, generator["env"], closure)
        openapi = spec.get("openapi")
        if isinstance(openapi, dict) and isinstance(openapi.get("path"), str):
            self._reference(directory, openapi["path"], closure)
        helm = spec.get("helmGlobals")
        if spec.get("helmCharts") is not None:
            home = helm.get("chartHome", "charts") if isinstance(helm, dict) else "charts"
            if (directory / home).is_dir():
                for path in (directory / home).rglob("*"):
                    if path.is_file():
                        self._add_file(path, closure)


def _strings(value: Any) -> list[str]:
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []
