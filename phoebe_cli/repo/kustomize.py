"""kustomize as a subprocess: found once per run, its version part of every cache key.

Which one: ``$PHOEBE_KUSTOMIZE`` when set, else ``kustomize`` on PATH, else ``kubectl kustomize``.
Builds run as kustomize-controller's do: load restrictions off, no plugins, no Helm inflation.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from phoebe_cli.errors import ToolMissing

INSTALL_HINT = "install kustomize (https://kubectl.docs.kubernetes.io/installation/kustomize/) or kubectl"


class BuildFailed(Exception):
    """kustomize refused the build; the message is kustomize's."""


@dataclass(frozen=True)
class Kustomize:
    command: tuple[str, ...]  # ("kustomize",) or ("kubectl", "kustomize")
    version: str

    @classmethod
    def find(cls, *, remember: bool = True) -> Kustomize:
        explicit = os.environ.get("PHOEBE_KUSTOMIZE")
        if explicit:
            if not Path(explicit).is_file():
                raise ToolMissing(f"PHOEBE_KUSTOMIZE={explicit} does not exist")
            return cls((explicit,), _version((explicit, "version"), remember))
        found = shutil.which("kustomize")
        if found:
            return cls((found,), _version((found, "version"), remember))
        kubectl = shutil.which("kubectl")
        if kubectl:
            return cls((kubectl, "kustomize"), _version((kubectl, "version", "--client", "-o", "yaml"), remember))
        raise ToolMissing(f"neither kustomize nor kubectl is on PATH: {INSTALL_HINT}")

    def build(self, directory: Path, *, timeout: float = 120) -> str:
        """The build's YAML; BuildFailed with kustomize's own message."""
        command = [*self.command, str(directory), "--load-restrictor", "LoadRestrictionsNone"]
        if len(self.command) == 1:
            command.insert(1, "build")
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise BuildFailed(f"kustomize build timed out after {timeout:.0f}s") from exc
        if done.returncode != 0:
            raise BuildFailed(_message(done.stderr) or f"kustomize exited with {done.returncode}")
        return done.stdout


def _version(command: tuple[str, ...], remember: bool) -> str:
    """``kustomize version``'s answer, remembered by the binary's path, size and modification time
    (it is part of every cache key; asking costs a process start on every run)."""
    from phoebe_cli.repo.cache import read_cached, write_cached

    binary = shutil.which(command[0]) or command[0]
    try:
        stat = os.stat(binary)
    except OSError:
        return _ask_version(command)
    key = hashlib.sha256(f"tool-version/{command}/{binary}/{stat.st_size}/{stat.st_mtime_ns}".encode()).hexdigest()
    known = read_cached(key)
    if isinstance(known, str):
        return known
    version = _ask_version(command)
    if remember:
        write_cached(key, version)
    return version


def _ask_version(command: tuple[str, ...]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ToolMissing(f"cannot run {command[0]}: {exc}") from exc
    return (done.stdout or done.stderr).strip()[:200]


def _message(stderr: str) -> str:
    """kustomize's error, without its usage text and the "Error: " prefix."""
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    for line in lines:
        if line.startswith("Error: "):
            return line.removeprefix("Error: ").strip()
    return lines[-1].strip() if lines else ""
