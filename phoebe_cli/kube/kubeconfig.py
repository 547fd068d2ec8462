"""Reading kubeconfig files the way kubectl merges them.

``$KUBECONFIG`` (or --kubeconfig) may list several files. For clusters, users and contexts the
first file that defines a name wins; the first file that sets ``current-context`` wins; a
relative path inside an entry is relative to the file that defined the entry. Only reading
happens here: choosing credentials is ``config``'s job.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from phoebe_cli.errors import KubeconfigError


@dataclass(frozen=True)
class Entry:
    """One named cluster, user or context, with the file it came from. ``value`` may hold
    credentials (a user's token, key or password): it is left out of the repr."""

    name: str
    value: dict[str, Any] = field(repr=False)
    source: Path

    def path(self, key: str) -> str | None:
        """A file path field (certificate-authority, tokenFile ...) resolved like kubectl does."""
        raw = self.value.get(key)
        if not raw:
            return None
        path = Path(os.path.expanduser(str(raw)))
        return str(path if path.is_absolute() else self.source.parent / path)


@dataclass
class MergedKubeconfig:
    files: list[Path] = field(default_factory=list)
    clusters: dict[str, Entry] = field(default_factory=dict)
    users: dict[str, Entry] = field(default_factory=dict)
    contexts: dict[str, Entry] = field(default_factory=dict)
    current_context: str | None = None


_SECTIONS = (("clusters", "cluster"), ("users", "user"), ("contexts", "context"))


def read_kubeconfig(paths: str) -> MergedKubeconfig:
    """Merge the existing files of an os.pathsep-separated list; missing ones are skipped, as
    kubectl does, but at least one must exist."""
    listed = [Path(os.path.expanduser(p)) for p in paths.split(os.pathsep) if p]
    existing = [p for p in listed if p.exists()]
    if not existing:
        raise KubeconfigError(f"kubeconfig not found: {paths}")
    merged = MergedKubeconfig()
    for path in existing:
        _merge_file(merged, path)
    return merged


def _load_yaml(path: Path) -> Any:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        text = path.read_text()
    except IsADirectoryError as exc:
        raise KubeconfigError(f"kubeconfig is a directory, not a file: {path}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise KubeconfigError(f"kubeconfig cannot be read: {path}: {exc}") from exc
    try:
        return yaml.load(text, Loader=loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise KubeconfigError(f"kubeconfig is not valid YAML{where}: {path}") from exc


def _merge_file(merged: MergedKubeconfig, path: Path) -> None:
    document = _load_yaml(path)
    if document is None:
        return  # an empty file contributes nothing, as with kubectl
    if not isinstance(document, dict):
        raise KubeconfigError(f"kubeconfig is not a kubeconfig (expected a mapping): {path}")
    merged.files.append(path)
    for section, key in _SECTIONS:
        items = document.get(section)
        if items is None:
            continue
        if not isinstance(items, list):
            raise KubeconfigError(f"kubeconfig {path}: '{section}' must be a list")
        target: dict[str, Entry] = getattr(merged, section)
        for item in items:
            if not isinstance(item, dict) or not item.get("name"):
                raise KubeconfigError(f"kubeconfig {path}: every entry of '{section}' needs a name")
            value = item.get(key) or {}
            if not isinstance(value, dict):
                raise KubeconfigError(f"kubeconfig {path}: {section} entry {item['name']!r} is not a mapping")
            target.setdefault(str(item["name"]), Entry(str(item["name"]), value, path))
    current = document.get("current-context")
    if current and merged.current_context is None:
        merged.current_context = str(current)


def context_names(kubeconfig: str | None) -> list[str]:
    """Every context the kubeconfig kubectl would use defines, in the order of its files."""
    from phoebe_cli.kube.config import kubeconfig_paths

    paths = kubeconfig_paths(kubeconfig)
    if paths is None:
        raise KubeconfigError(
            "no kubeconfig: ~/.kube/config does not exist and $KUBECONFIG is not set (use --kubeconfig PATH)"
        )
    return list(read_kubeconfig(paths).contexts)


def check_contexts(kubeconfig: str | None, wanted: list[str] | tuple[str, ...]) -> None:
    """Each of ``wanted`` is a context of the kubeconfig, else KubeconfigError (exit 2) naming the
    first that is not, worded as for a single --context."""
    known = context_names(kubeconfig)
    for name in wanted:
        if name not in known:
            raise KubeconfigError(
                f"context {name!r} not found in the kubeconfig (contexts: {', '.join(known) or 'none'})"
            )
