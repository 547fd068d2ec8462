"""Which files a kustomize build reads, without running it.

The closure of a directory: its kustomization file (or, when it has none, what Flux's generator
would list: every YAML file below it and every sub-directory with a kustomization file), and,
recursively, every local file and directory that file points at (resources, components, patches,
generators' files, replacements ...). Remote references (URLs, Git) are collected, not followed.

Files are looked for in the source's artifact (``Artifact``): what source-controller would pack,
after its ignore rules — a file Flux never sees is missing here too.

It serves two purposes: a build can run on a private copy of just these files (so builds are
isolated and can run in parallel), and the hash of these files is the build's cache key.

**Confinement.** kustomize-controller builds inside the artifact's root with a secure file system:
nothing outside it is ever read. phoebe runs kustomize with the same ``LoadRestrictionsNone``, on a
copy, where an absolute path or enough ``../`` would reach the user's files. So every path a build
would read — a kustomization's references, and the files the builtin generators and transformers
it configures read (``files``, ``envs``, ``path`` ...; inline configurations too) — is checked
before kustomize runs: one that is absolute, leaves the root (``../`` that stays inside is fine,
as it is for Flux), or goes through a symlink (an artifact holds none) is an ``escape``, and the
build is refused with it. Checking never opens the file (``lstat`` and ``readlink`` only).
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from phoebe_cli.repo.sourceignore import IgnoreProblem, SourceIgnore
from phoebe_cli.repo.yamlio import YamlError, load_documents, parse_documents

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
    # references that leave the root (absolute, ../ out of it, through a symlink): the build is
    # refused, kustomize never runs (messages naming the reference and where it is)
    escapes: list[str] = field(default_factory=list)
    # (declaring directory, directory) of generators/transformers/validators that are kustomization
    # directories: their output configures plugins, checked only once built (see builder)
    plugin_dirs: list[tuple[str, str]] = field(default_factory=list)

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
        self._configs: dict[str, tuple[list[Any], str | None]] = {}  # plugin configuration files

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
                self._reference(relative, component, closure, "spec.components of the Flux Kustomization")
        return closure

    def symlink_on(self, relative: str) -> str | None:
        """When the path ``relative`` (to the root) goes through a symlink of the checkout: which
        one, and where it points — ``a/link -> /etc (outside the checkout)``. Never follows it."""
        current = self.root
        for part in relative.split("/"):
            if not part:
                continue
            current = current / part
            try:
                status = os.lstat(current)
            except OSError:
                return None
            if stat.S_ISLNK(status.st_mode):
                return _describe_link(self.root, current)
        return None

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
        self._kustomization(directory, kfile, spec, closure)

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

    def _confined(self, base: str, reference: str, closure: Closure, where: str) -> str | None:
        """``reference`` (relative to the directory ``base``) relative to the root, when it stays
        in it; else None, and the escape noted. A path that is not in the artifact because it goes
        through a symlink escapes too (Flux finds nothing there; phoebe must not follow it)."""
        if os.path.isabs(reference):
            closure.escapes.append(f"'{reference}' ({where}) is an absolute path, outside the checkout")
            return None
        target = self.artifact.relative(os.path.join(base, reference))
        if target is None:
            closure.escapes.append(f"'{reference}' ({where}) leaves the checkout")
            return None
        if not self.artifact.is_file(target) and not self.artifact.is_dir(target):
            link = self.symlink_on(target)
            if link is not None:
                closure.escapes.append(
                    f"'{reference}' ({where}) goes through a symlink, {link}: an artifact holds none"
                )
                return None
        return target

    def _reference(self, base: str, reference: str, closure: Closure, where: str) -> None:
        if is_remote(reference):
            closure.remote.append(reference)
            return
        target = self._confined(base, reference, closure, where)
        if target is None:
            return
        if self.artifact.is_dir(target):
            self._directory(target, closure, generated_ok=False)
        elif self.artifact.is_file(target):
            closure.files.add(target)
        else:
            closure.missing.append(target)

    def _file_reference(self, base: str, reference: str, closure: Closure, where: str) -> None:
        """A generator's file source: "path" or "key=path"."""
        path = reference.split("=", 1)[1] if "=" in reference else reference
        self._reference(base, path, closure, where)

    def _kustomization(self, directory: str, kfile: str, spec: dict[str, Any], closure: Closure) -> None:
        for key in ("resources", "bases", "components", "crds", "configurations"):
            for entry in _strings(spec.get(key)):
                self._reference(directory, entry, closure, f"{key} in {kfile}")
        for entry in _strings(spec.get("patchesStrategicMerge")):
            if "\n" not in entry and ":" not in entry:  # a path, not an inline patch
                self._reference(directory, entry, closure, f"patchesStrategicMerge in {kfile}")
        for key in ("patches", "patchesJson6902", "replacements"):
            for entry in spec.get(key) or []:
                if isinstance(entry, dict) and isinstance(entry.get("path"), str):
                    self._reference(directory, entry["path"], closure, f"{key} in {kfile}")
        for key in ("transformers", "generators", "validators"):
            for entry in _strings(spec.get(key)):
                self._plugin_entry(directory, entry, closure, f"{key} in {kfile}")
        for key in ("configMapGenerator", "secretGenerator"):
            for generator in spec.get(key) or []:
                if isinstance(generator, dict):
                    self._generator_files(directory, generator, closure, f"{key} in {kfile}")
        openapi = spec.get("openapi")
        if isinstance(openapi, dict) and isinstance(openapi.get("path"), str):
            self._reference(directory, openapi["path"], closure, f"openapi in {kfile}")
        self._helm(directory, spec, closure, kfile)

    def _generator_files(self, base: str, generator: dict[str, Any], closure: Closure, where: str) -> None:
        for entry in _strings(generator.get("files")) + _strings(generator.get("envs")):
            self._file_reference(base, entry, closure, where)
        if isinstance(generator.get("env"), str):
            self._file_reference(base, generator["env"], closure, where)

    def _helm(self, directory: str, spec: dict[str, Any], closure: Closure, kfile: str) -> None:
        """Helm inflation is off in Flux's builds (kustomize refuses it), but its paths are still
        never allowed out of the checkout."""
        helm = spec.get("helmGlobals")
        home = "charts"
        if isinstance(helm, dict):
            home = helm.get("chartHome", "charts") if isinstance(helm.get("chartHome", "charts"), str) else "charts"
            if isinstance(helm.get("configHome"), str) and not is_remote(helm["configHome"]):
                self._confined(directory, helm["configHome"], closure, f"helmGlobals in {kfile}")
        for chart in spec.get("helmCharts") or []:
            if isinstance(chart, dict):
                self._helm_chart(directory, chart, closure, f"helmCharts in {kfile}")
        if spec.get("helmCharts") is not None:
            chart_home = self._confined(directory, home, closure, f"helmGlobals in {kfile}")
            if chart_home is not None and self.artifact.is_dir(chart_home):
                closure.files.update(f for f in self.artifact.files if f.startswith(chart_home + "/"))

    def _helm_chart(self, base: str, chart: dict[str, Any], closure: Closure, where: str) -> None:
        for key in ("valuesFile", "chartHome"):
            if isinstance(chart.get(key), str) and chart[key] and not is_remote(chart[key]):
                self._confined(base, chart[key], closure, where)
        for entry in _strings(chart.get("additionalValuesFiles")):
            if not is_remote(entry):
                self._confined(base, entry, closure, where)

    # --- generators, transformers, validators ---------------------------------------------------
    def _plugin_entry(self, directory: str, entry: str, closure: Closure, where: str) -> None:
        """An entry of ``generators``/``transformers``/``validators``: a builtin plugin's
        configuration written in line, a file of configurations, or a kustomization directory
        whose output configures them. The files a configuration reads are relative to the
        kustomization that lists it (kustomize gives the plugin that kustomization's loader)."""
        inline = self._inline_configs(entry)
        if inline is not None:
            if isinstance(inline, str):
                closure.problems.append(f"{where}: {inline}")
            for config in inline if isinstance(inline, list) else []:
                self._plugin_config(directory, config, closure, f"an in-line configuration in {where}")
            return
        if is_remote(entry):
            closure.remote.append(entry)
            return
        target = self._confined(directory, entry, closure, where)
        if target is None:
            return
        if self.artifact.is_dir(target):
            closure.plugin_dirs.append((directory, target))
            self._directory(target, closure, generated_ok=False)
        elif self.artifact.is_file(target):
            closure.files.add(target)
            configs, problem = self._config_file(target)
            if problem is not None:
                closure.problems.append(problem)
            for config in configs:
                self._plugin_config(directory, config, closure, f"{config.get('kind', 'a plugin')} in {target}")
        else:
            closure.missing.append(target)

    @staticmethod
    def _inline_configs(entry: str) -> list[dict[str, Any]] | str | None:
        """kustomize reads an entry as in-line YAML first: the configurations it holds; None when
        it is a path; why not, when it is neither (refused: its paths cannot be checked)."""
        if "\n" not in entry and not entry.lstrip().startswith("{"):
            return None
        try:
            documents = parse_documents(entry, Path("<in-line>"))
        except YamlError as error:
            return None if "\n" not in entry else f"an in-line configuration that is not YAML: {error.message}"
        return [d.data for d in documents if isinstance(d.data, dict)] or None

    def _config_file(self, relative: str) -> tuple[list[Any], str | None]:
        if relative not in self._configs:
            try:
                configs = [d.data for d in load_documents(self.root / relative) if isinstance(d.data, dict)]
                self._configs[relative] = (configs, None)
            except YamlError as error:
                self._configs[relative] = ([], str(error))
        return self._configs[relative]

    def plugin_closure(self, base: str, configs: list[dict[str, Any]], where: str) -> Closure:
        """What the plugin configurations ``configs`` (a kustomization directory's output, listed
        in ``base``'s kustomization) read: their files, and their escapes."""
        closure = Closure(self.root)
        for config in configs:
            self._plugin_config(base, config, closure, f"{config.get('kind', 'a plugin')} in {where}")
        return closure

    def _plugin_config(self, base: str, config: dict[str, Any], closure: Closure, where: str) -> None:
        """The paths a builtin plugin's configuration reads (ConfigMap/SecretGenerator ``files``,
        ``envs``, ``env``; Patch*Transformer ``path``/``paths``; ReplacementTransformer
        ``replacements[].path``; HelmChartInflationGenerator's files), followed and confined. Other
        kinds are not builtin: Flux's kustomize refuses them (plugins are off)."""
        self._generator_files(base, config, closure, where)
        if isinstance(config.get("path"), str):
            self._reference(base, config["path"], closure, where)
        for entry in _strings(config.get("paths")):
            if "\n" not in entry and ":" not in entry:
                self._reference(base, entry, closure, where)
        for replacement in config.get("replacements") or []:
            if isinstance(replacement, dict) and isinstance(replacement.get("path"), str):
                self._reference(base, replacement["path"], closure, where)
        self._helm_chart(base, config, closure, where)


def _describe_link(root: Path, link: Path) -> str:
    """``a/link -> target (where it leads)``, from readlink and lstat only."""
    shown = link.relative_to(root).as_posix()
    try:
        pointed = os.readlink(link)
    except OSError:
        pointed = "?"
    try:
        resolved = Path(os.path.realpath(link, strict=True))
    except OSError as error:
        leads = "a loop" if error.errno == errno.ELOOP else "to nothing"
    else:
        leads = "inside the checkout" if resolved == root or root in resolved.parents else "outside the checkout"
    return f"{shown} -> {pointed} ({leads})"


def _strings(value: Any) -> list[str]:
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []
