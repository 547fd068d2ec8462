"""kustomize as a subprocess: found once per run, its version part of every cache key.

Which one: ``$PHOEBE_KUSTOMIZE`` when set, else ``kustomize`` on PATH, else ``kubectl kustomize``.
Builds run as kustomize-controller's do: load restrictions off, no plugins, no Helm inflation.
"""

from __future__ import annotations

import hashlib
import os
import re
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
    """The tool's version; a tool that does not answer like kustomize (or kubectl) is refused here,
    once, instead of every build failing as if the repository were broken."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ToolMissing(f"cannot run {command[0]}: {exc}") from exc
    answer = (done.stdout or done.stderr).strip()
    if done.returncode != 0 or not _VERSION.search(answer):
        said = f": {_message(answer)}" if answer else ""
        raise ToolMissing(
            f"{command[0]} is not a working kustomize (`{' '.join(command[-2:] if len(command) > 2 else command)}`"
            f" exited {done.returncode}{said}): {INSTALL_HINT}"
        )
    return answer[:200]


_VERSION = re.compile(r"v?\d+\.\d+\.\d+")
# kubectl (klog) prints errors as: E1203 10:33:01.123456   42 run.go:72] "command failed" err="..."
_KLOG = re.compile(r'^[IWEF]\d{4} [\d:.]+\s+\d+ [\w./-]+:\d+\] (?:"[^"]*" )?(?:err=)?(?P<rest>.*)$')


def _message(stderr: str) -> str:
    """kustomize's error, without its usage text, the "Error: " prefix or kubectl's log prefix."""
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    for line in lines:
        if line.startswith(("Error: ", "error: ")):
            return line[len("Error: ") :].strip()
    for line in lines:
        klog = _KLOG.match(line)
        if klog is not None:
            return _unquote(klog.group("rest"))
    return lines[-1] if lines else ""


def _unquote(text: str) -> str:
    """A Go %q string's content (klog quotes err=...); anything else as it is."""
    import json

    if len(text) >= 2 and text[0] == text[-1] == '"':
        try:
            return str(json.loads(text))
        except ValueError:
            return text[1:-1]
    return text
