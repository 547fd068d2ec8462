"""Which files a kustomize build reads, without running it.

The closure of a directory: its kustomization file (or, when it has none, what Flux's generator
would list: every YAML file below it and every sub-directory with a kustomization file), and,
recursively, every local file and directory that file points at (resources, components, patches,
generators' files, replacements ...). Remote references (URLs, Git) are collected, not followed.

Files are looked for in the source's artifact (``Artifact``): what source-controller would pack,
after its ignore rules — a file Flux never sees is missing here too.

It serves two purposes: a build can run on a private copy of just these files (so builds are
isolated and can run in parallel), and the hash of these files is the build's cache key.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from phoebe_cli.repo.sourceignore import IgnoreProblem, SourceIgnore
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
    """The files a build reads: posix paths relative to the repository root."""

    root: Path
    files: set[str] = field(default_factory=set)
    directories: set[str] = field(default_factory=set)  # directories whose kustomization was read
    remote: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # local references that are not in the artifact
    problems: list[str] = field(default_factory=list)  # kustomization files that do not parse

    def digest(self, hashes: dict[str, bytes] | None = None) -> str:
        """A hash of every file's path and content (``hashes``: file hashes already computed)."""
        known = {} if hashes is None else hashes
        hasher = hashlib.sha256()
        for relative in sorted(self.files):
            hasher.update(relative.encode() + b"\0")
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


class Artifact:
    """The checkout as source-controller packs it into an artifact: the files its ignore rules keep
    (``sourceignore``), regular files only — no symlink, nothing outside the root. A build sees
    these and nothing else: a path that leaves them is missing, as it is for kustomize-controller."""

    def __init__(self, root: Path, files: Iterable[str]) -> None:
        self.root = root.resolve()
        self.files = frozenset(files)
        self.children: dict[str, dict[str, bool]] = {"": {}}  # directory -> {name: is a directory}
        for file in self.files:
            parent = ""
            parts = file.split("/")
            for index, name in enumerate(parts):
                is_dir = index < len(parts) - 1
                entries = self.children.setdefault(parent, {})
                entries[name] = entries.get(name, False) or is_dir
                parent = f"{parent}/{name}" if parent else name
        self._root_prefix = str(self.root) + os.sep

    @classmethod
    def of(cls, root: Path, spec_ignore: str | None = None) -> tuple[Artifact, list[IgnoreProblem]]:
        """The artifact a GitRepository with ``spec.ignore`` makes of the checkout at ``root``."""
        ignore = SourceIgnore.for_checkout(root, spec_ignore)
        return cls(root, ignore.included_files()), ignore.problems

    def relative(self, path: Path | str) -> str | None:
        """``path`` (absolute, or relative to the root) as a posix path relative to the root,
        resolved lexically as kustomize resolves it inside the artifact; None when it leaves it."""
        text = os.path.normpath(os.path.join(self.root, path))
        if text == str(self.root):
            return ""
        if not text.startswith(self._root_prefix):
            return None
        return text[len(self._root_prefix) :].replace(os.sep, "/")

    def is_file(self, relative: str | None) -> bool:
        return relative is not None and relative in self.files

    def is_dir(self, relative: str | None) -> bool:
        return relative is not None and relative in self.children

    def entries(self, relative: str) -> list[tuple[str, bool]]:
        """A directory's names and whether each is a directory, in byte order (as Go walks)."""
        return sorted(self.children.get(relative, {}).items(), key=lambda item: item[0].encode())

    def kustomization_file(self, relative: str) -> str | None:
        for name in KUSTOMIZATION_FILES:
            candidate = f"{relative}/{name}" if relative else name
            if candidate in self.files:
                return candidate
        return None


class Scanner:
    """Closures of one artifact. Shared directories (components, common bases) are read once:
    parsed kustomization files are remembered, and file hashes (one run, one checkout; the dicts
    are only ever filled with the same values, so threads may share them)."""

    def __init__(self, root: Path, artifact: Artifact | None = None) -> None:
        self.root = root.resolve()
        self.artifact = artifact if artifact is not None else Artifact.of(self.root)[0]
        self.file_hashes: dict[str, bytes] = {}
        self._specs: dict[str, tuple[str | None, dict[str, Any], str | None]] = {}

    def digest(self, closure: Closure) -> str:
        return closure.digest(self.file_hashes)

    def closure(self, directory: Path, extra_components: list[str] | None = None) -> Closure:
        closure = Closure(self.root)
        relative = self.artifact.relative(directory)
        if relative is None:
            return closure
        self._directory(relative, closure, generated_ok=True)
        for component in extra_components or []:
            if is_remote(component):
                closure.remote.append(component)
            else:
                self._reference(relative, component, closure)
        return closure

    def _spec(self, directory: str) -> tuple[str | None, dict[str, Any], str | None]:
        """The directory's kustomization file, its content, and why it could not be read."""
        if directory not in self._specs:
            kfile = self.artifact.kustomization_file(directory)
            spec: dict[str, Any] = {}
            problem = None
            if kfile is not None:
                try:
                    documents = load_documents(self.root / kfile)
                    if documents and isinstance(documents[0].data, dict):
                        spec = documents[0].data
                except YamlError as error:
                    problem = str(error)
            self._specs[directory] = (kfile, spec, problem)
        return self._specs[directory]

    def _directory(self, directory: str, closure: Closure, *, generated_ok: bool) -> None:
        if directory in closure.directories:
            return
        closure.directories.add(directory)
        kfile, spec, problem = self._spec(directory)
        if kfile is None:
            if generated_ok:
                self._generated(directory, closure)
            return
        closure.files.add(kfile)
        if problem is not None:
            closure.problems.append(problem)
            return
        self._kustomization(directory, spec, closure)

    def _generated(self, directory: str, closure: Closure) -> None:
        """What Flux's generator lists when a directory has no kustomization file: every YAML file
        below it, and the sub-directories that have one (not descending into those)."""
        prefix = f"{directory}/" if directory else ""
        for name, is_dir in self.artifact.entries(directory):
            path = prefix + name
            if is_dir:
                if self.artifact.kustomization_file(path) is not None:
                    self._directory(path, closure, generated_ok=False)
                else:
                    self._generated(path, closure)
            elif name.endswith((".yaml", ".yml")):
                closure.files.add(path)

    def _reference(self, base: str, reference: str, closure: Closure) -> None:
        if is_remote(reference):
            closure.remote.append(reference)
            return
        target = self.artifact.relative(os.path.join(base, reference))
        if self.artifact.is_dir(target):
            assert target is not None
            self._directory(target, closure, generated_ok=False)
        elif self.artifact.is_file(target):
            assert target is not None
            closure.files.add(target)
        else:
            closure.missing.append(target if target is not None else reference)

    def _file_reference(self, base: str, reference: str, closure: Closure) -> None:
        """A generator's file source: "path" or "key=path"."""
        path = reference.split("=", 1)[1] if "=" in reference else reference
        self._reference(base, path, closure)

    def _kustomization(self, directory: str, spec: dict[str, Any], closure: Closure) -> None:
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
            chart_home = self.artifact.relative(os.path.join(directory, home))
            if chart_home is not None and self.artifact.is_dir(chart_home):
                closure.files.update(f for f in self.artifact.files if f.startswith(chart_home + "/"))


def _strings(value: Any) -> list[str]:
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []
