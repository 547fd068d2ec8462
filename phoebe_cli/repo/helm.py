"""helm as a subprocess: ``helm template`` of one release, its output split as Helm stores a
release (the manifest, the hooks, the chart's ``crds/``).

Which helm: ``$PHOEBE_HELM`` when set, else ``helm`` on PATH; Helm v3 (v4 works the same for
``template``). Values go to helm on its standard input (``--values -``), never to a file: they may
hold Secret values.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from phoebe_cli.errors import ToolMissing

INSTALL_HINT = "install Helm v3 (https://helm.sh/docs/intro/install/) or set PHOEBE_HELM"
HOOK_ANNOTATION = "helm.sh/hook"

__all__ = ["Helm", "Rendered", "TemplateFailed", "split_manifest"]


class TemplateFailed(Exception):
    """helm refused to render; the message is helm's own, one line."""


@dataclass
class Rendered:
    manifest: list[dict[str, Any]] = field(default_factory=list)  # what Helm stores as the release manifest
    hooks: list[dict[str, Any]] = field(default_factory=list)  # helm.sh/hook objects (stored apart)
    crds: list[dict[str, Any]] = field(default_factory=list)  # the chart's crds/ (helm-controller applies them)


@dataclass(frozen=True)
class Helm:
    command: str
    version: str

    @classmethod
    def find(cls) -> Helm:
        explicit = os.environ.get("PHOEBE_HELM")
        if explicit:
            if not Path(explicit).is_file():
                raise ToolMissing(f"PHOEBE_HELM={explicit} does not exist")
            return cls(explicit, _version(explicit))
        found = shutil.which("helm")
        if found is None:
            raise ToolMissing(f"helm is not on PATH: {INSTALL_HINT}")
        return cls(found, _version(found))

    def template(
        self,
        chart: Path,
        *,
        release: str,
        namespace: str,
        values_yaml: str,
        values_files: Iterable[Path] = (),
        kube_version: str | None = None,
        api_versions: Iterable[str] = (),
        timeout: float = 120,
    ) -> str:
        """``helm template``'s output for one release (CRDs included, tests left out, as an install
        renders them); TemplateFailed with helm's own message."""
        command = [self.command, "template", release, str(chart), "--namespace", namespace]
        command += ["--include-crds", "--skip-tests"]
        for extra in values_files:
            command += ["--values", str(extra)]
        command += ["--values", "-"]
        if kube_version:
            command += ["--kube-version", kube_version]
        for api in api_versions:
            command += ["--api-versions", api]
        env = {k: v for k, v in os.environ.items() if not k.startswith("HELM_")}
        env["HELM_CACHE_HOME"] = env["HELM_CONFIG_HOME"] = env["HELM_DATA_HOME"] = str(_empty_home())
        try:
            done = subprocess.run(
                command, input=values_yaml, capture_output=True, text=True, timeout=timeout, check=False, env=env
            )
        except subprocess.TimeoutExpired as exc:
            raise TemplateFailed(f"helm template timed out after {timeout:.0f}s") from exc
        except OSError as exc:
            raise ToolMissing(f"cannot run {self.command}: {exc}") from exc
        if done.returncode != 0:
            raise TemplateFailed(_message(done.stderr) or f"helm template exited with {done.returncode}")
        return done.stdout


def _empty_home() -> Path:
    """Helm's config, cache and data homes: an empty private directory, so no repositories.yaml or
    registry login of the user's changes what is rendered."""
    from phoebe_cli.repo.cache import cache_root, ensure_private_dir

    home = cache_root() / "helm-home"
    try:
        ensure_private_dir(home)
    except OSError:
        return Path("/nonexistent")
    return home


def _version(binary: str) -> str:
    """``helm version --short``, remembered by the binary's path, size and modification time."""
    from phoebe_cli.repo.cache import read_cached, write_cached

    try:
        stat = os.stat(binary)
    except OSError as exc:
        raise ToolMissing(f"cannot run {binary}: {exc}") from exc
    key = hashlib.sha256(f"helm-version/{binary}/{stat.st_size}/{stat.st_mtime_ns}".encode()).hexdigest()
    known = read_cached(key)
    if isinstance(known, str):
        return known
    try:
        done = subprocess.run([binary, "version", "--short"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ToolMissing(f"cannot run {binary}: {exc}") from exc
    answer = done.stdout.strip()
    if done.returncode != 0 or not re.match(r"v?\d+\.\d+", answer):
        raise ToolMissing(
            f"{binary} is not a working helm (`helm version --short` exited {done.returncode}): {INSTALL_HINT}"
        )
    write_cached(key, answer[:100])
    return answer[:100]


def _message(stderr: str) -> str:
    """helm's error without its prefix, on one line."""
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    for line in lines:
        if line.startswith("Error: "):
            rest = line[len("Error: ") :]
            return rest
    return lines[-1] if lines else ""


_SOURCE = re.compile(r"^# Source: (.+)$", re.MULTILINE)


def _is_crd_file(source: str) -> bool:
    """``chart/crds/x.yaml`` or a subchart's ``chart/charts/sub/crds/x.yaml`` (not a template that
    happens to live under ``templates/crds/``)."""
    parts = source.split("/")
    index = 1
    while index + 1 < len(parts) and parts[index] == "charts":
        index += 2
    return index < len(parts) and parts[index] == "crds"


def split_manifest(text: str) -> Rendered:
    """helm template's stream split into the manifest, the hooks and the CRDs, each document read
    as Flux reads kustomize's output (Go's YAML rules)."""
    from phoebe_cli.repo.goyaml import GoYamlError
    from phoebe_cli.repo.yamlio import load_text

    rendered = Rendered()
    for chunk in re.split(r"^---[ \t]*$", text, flags=re.MULTILINE):
        if not chunk.strip():
            continue
        source = _SOURCE.search(chunk)
        try:
            documents = load_text(chunk)
        except GoYamlError as exc:
            where = f" ({source.group(1)})" if source else ""
            raise TemplateFailed(f"the chart rendered YAML that does not parse{where}: {exc}") from exc
        for obj in documents:
            if not isinstance(obj, dict) or not obj:
                continue
            if source and _is_crd_file(source.group(1)):
                rendered.crds.append(obj)
            elif HOOK_ANNOTATION in ((obj.get("metadata") or {}).get("annotations") or {}):
                rendered.hooks.append(obj)
            else:
                rendered.manifest.append(obj)
    return rendered


def values_text(values: Mapping[str, Any]) -> str:
    import json

    return json.dumps(values)  # JSON is YAML; no PyYAML quirks in what helm reads
