"""Charts on disk: the chart cache, charts in the checkout, Helm repository indexes.

The cache is ``$XDG_CACHE_HOME/phoebe/charts`` (0700 like the rest of phoebe's cache):
``<sha256>.tgz`` is a packaged chart by the digest of its bytes, ``<sha256>/`` the same chart
unpacked (what helm renders from), ``resolved/`` what a version or tag resolved to last time
(so an exact version already fetched needs no network), ``indexes/`` the last copy of each
Helm repository index and OCI tag list (used when the network is not there), ``renders/`` the
render cache (see ``usecases.build``). Nothing here ever comes from a Secret.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from phoebe_cli.repo.cache import cache_root, ensure_private_dir, write_private

__all__ = ["ChartFiles", "IndexEntry", "chart_cache", "local_chart", "parse_index", "store_package"]


class ChartProblem(Exception):
    """A chart that cannot be used (not there, not a chart, a damaged package); one line."""


@dataclass(frozen=True)
class ChartFiles:
    """A chart ready for ``helm template``: its directory, name, version and digest."""

    path: Path
    name: str
    version: str
    digest: str  # sha256:<hex> of the package, or of the files of a chart in the checkout


@dataclass(frozen=True)
class IndexEntry:
    version: str
    urls: tuple[str, ...]
    digest: str
    created: str


def chart_cache() -> Path:
    return cache_root() / "charts"


def _chart_metadata(directory: Path) -> tuple[str, str]:
    import yaml

    chart_file = directory / "Chart.yaml"
    try:
        data = yaml.safe_load(chart_file.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ChartProblem(f"{directory.name} is not a Helm chart (no readable Chart.yaml)") from exc
    if not isinstance(data, Mapping) or not data.get("name"):
        raise ChartProblem(f"{chart_file} has no chart name")
    return str(data["name"]), str(data.get("version") or "")


def local_chart(directory: Path) -> ChartFiles:
    """A chart directory in the checkout (or a ``--source`` directory), its digest taken over its
    files (names and contents), so an edited template is a new chart."""
    if not directory.is_dir():
        raise ChartProblem(f"{directory} is not a directory")
    name, version = _chart_metadata(directory)
    digest = hashlib.sha256()
    for path in sorted(directory.rglob("*")):
        if path.is_symlink() or not path.is_file():
            continue
        digest.update(str(path.relative_to(directory)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return ChartFiles(directory, name, version, "sha256:" + digest.hexdigest())


def cached_package(digest: str) -> ChartFiles | None:
    """The unpacked chart of a package already in the cache (by ``sha256:<hex>``)."""
    hexdigest = digest.removeprefix("sha256:")
    directory = chart_cache() / hexdigest
    marker = directory / ".chart"
    try:
        name, version = json.loads(marker.read_text())
    except (OSError, ValueError):
        return None
    return ChartFiles(directory / name, name, version, "sha256:" + hexdigest)


def store_package(data: bytes, expected_digest: str = "") -> ChartFiles:
    """A packaged chart (.tgz) into the cache by its digest, unpacked; ChartProblem when its digest is
    not the one the index or manifest promised, or it is no chart."""
    hexdigest = hashlib.sha256(data).hexdigest()
    wanted = expected_digest.removeprefix("sha256:")
    if wanted and wanted != hexdigest:
        raise ChartProblem(f"the chart package's digest is sha256:{hexdigest}, not sha256:{wanted}")
    known = cached_package(hexdigest)
    if known is not None:
        return known
    root = chart_cache()
    try:
        ensure_private_dir(root)
        write_private(root / f"{hexdigest}.tgz", data)
        with _staging(root) as staged:
            name = _unpack(data, staged)
            chart_name, version = _chart_metadata(staged / name)
            if chart_name != name:
                # helm packages a chart in a directory named as the chart; follow what is there
                os.replace(staged / name, staged / chart_name)
            write_private(staged / ".chart", json.dumps([chart_name, version]).encode())
            _publish(staged, root / hexdigest)
    except OSError as exc:
        raise ChartProblem(f"cannot write the chart cache {root}: {exc}") from exc
    found = cached_package(hexdigest)
    if found is None:  # pragma: no cover - published just above
        raise ChartProblem(f"the chart cache {root} lost sha256:{hexdigest}")
    return found


@contextmanager
def _staging(root: Path) -> Iterator[Path]:
    """A private directory beside the cache entries, removed unless published: runs (and threads)
    unpacking the same chart at once never see each other's half-written files."""
    import shutil
    import tempfile

    ensure_private_dir(root)
    staged = Path(tempfile.mkdtemp(prefix=".staging-", dir=root))
    try:
        yield staged
    finally:
        shutil.rmtree(staged, ignore_errors=True)


def _publish(staged: Path, directory: Path) -> None:
    """``staged`` becomes ``directory`` in one rename; when another run got there first its copy
    (complete: it has its marker) stays. A directory without the marker is a crashed run's: replaced."""
    import shutil

    for _ in range(2):
        try:
            os.rename(staged, directory)
            return
        except OSError:
            if (directory / ".chart").is_file():
                return
            shutil.rmtree(directory, ignore_errors=True)
    os.rename(staged, directory)


def with_version(chart: ChartFiles, version: str) -> ChartFiles:
    """The same chart with another ``version`` in its Chart.yaml (what helm-controller does to a
    chart from an OCIRepository), as a cached copy beside the original; the digest stays the
    package's."""
    import re
    import shutil

    if version == chart.version:
        return chart
    key = hashlib.sha256(f"{chart.digest}|{version}".encode()).hexdigest()
    directory = chart_cache() / f"v-{key}"
    target = directory / chart.name
    if (directory / ".chart").is_file():
        return ChartFiles(target, chart.name, version, chart.digest)
    try:
        with _staging(chart_cache()) as staged:
            shutil.copytree(chart.path, staged / chart.name, symlinks=True)
            chart_file = staged / chart.name / "Chart.yaml"
            text = chart_file.read_text()
            chart_file.write_text(re.sub(r"(?m)^version:.*$", f'version: "{version}"', text, count=1))
            write_private(staged / ".chart", json.dumps([chart.name, version]).encode())
            _publish(staged, directory)
    except OSError as exc:
        raise ChartProblem(f"cannot write the chart cache {directory}: {exc}") from exc
    return ChartFiles(target, chart.name, version, chart.digest)


def _unpack(data: bytes, directory: Path) -> str:
    """The package's files under ``directory``; the top directory's name. Links and paths out of
    the directory are refused (a package is untrusted input)."""
    try:
        archive = tarfile.open(fileobj=io.BytesIO(data), mode="r:gz")  # noqa: SIM115 - closed below
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ChartProblem(f"the chart package is not a gzipped tar archive: {exc}") from exc
    tops: set[str] = set()
    with archive:
        members = []
        for member in archive.getmembers():
            parts = Path(member.name).parts
            if not parts or member.name.startswith("/") or ".." in parts:
                raise ChartProblem(f"the chart package holds a path out of it: {member.name}")
            if not (member.isfile() or member.isdir()):
                continue
            tops.add(parts[0])
            members.append(member)
        if len(tops) != 1:
            raise ChartProblem("the chart package has no single top directory")
        try:
            archive.extractall(directory, members=members, filter="data")
        except (tarfile.TarError, OSError) as exc:
            raise ChartProblem(f"the chart package cannot be unpacked: {exc}") from exc
    return tops.pop()


def parse_index(text: str, chart: str) -> list[IndexEntry] | None:
    """A Helm repository ``index.yaml``'s entries for one chart (None when the chart is not in it);
    ChartProblem when it is no index."""
    import yaml

    try:
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise ChartProblem(f"the repository index is not YAML: {exc}") from exc
    if not isinstance(data, Mapping) or not isinstance(data.get("entries"), Mapping):
        raise ChartProblem("the repository index has no entries")
    versions = data["entries"].get(chart)
    if versions is None:
        return None
    entries = []
    for item in versions or []:
        if not isinstance(item, Mapping) or item.get("version") is None:
            continue
        urls = tuple(str(u) for u in item.get("urls") or [])
        entries.append(
            IndexEntry(str(item["version"]), urls, str(item.get("digest") or ""), str(item.get("created") or ""))
        )
    return entries


def remember(kind: str, key: str, value: Any) -> None:
    """A small JSON note under the chart cache (a resolution, an index), by a digest of ``key``."""
    name = hashlib.sha256(key.encode()).hexdigest()
    directory = chart_cache() / kind
    try:
        ensure_private_dir(directory)
        write_private(directory / f"{name}.json", json.dumps(value).encode())
    except OSError:
        pass  # a cache that cannot be written only costs time


def recall(kind: str, key: str) -> Any:
    name = hashlib.sha256(key.encode()).hexdigest()
    try:
        return json.loads((chart_cache() / kind / f"{name}.json").read_bytes())
    except (OSError, ValueError):
        return None


# --- dependencies of a chart in the checkout -------------------------------------------------------


@dataclass(frozen=True)
class ChartDependency:
    """One entry of ``dependencies`` (Chart.lock's when there is one: it takes precedence)."""

    name: str
    version: str  # a constraint (Chart.yaml) or an exact version (Chart.lock)
    repository: str  # "", file://PATH, http(s)://URL or oci://URL
    alias: str = ""

    @property
    def key(self) -> str:
        """What source-controller matches a subchart by: the alias, else the name."""
        return self.alias or self.name

    @property
    def local(self) -> bool:
        return not self.repository or self.repository.startswith("file://")


def _yaml_file(path: Path) -> Any:
    import yaml

    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None


def chart_dependencies(directory: Path) -> list[ChartDependency]:
    """The dependencies a chart directory declares (Chart.lock's when it has one)."""
    declared = _yaml_file(directory / "Chart.yaml")
    lock = _yaml_file(directory / "Chart.lock") if (directory / "Chart.lock").is_file() else None
    entries = (lock if isinstance(lock, Mapping) else declared if isinstance(declared, Mapping) else {}).get(
        "dependencies"
    )
    aliases = {
        str(d.get("name")): str(d.get("alias") or "")
        for d in (declared.get("dependencies") or [] if isinstance(declared, Mapping) else [])
        if isinstance(d, Mapping)
    }
    found = []
    for entry in entries or []:
        if not isinstance(entry, Mapping) or not entry.get("name"):
            continue
        name = str(entry["name"])
        found.append(
            ChartDependency(
                name=name,
                version=str(entry.get("version") or ""),
                repository=str(entry.get("repository") or ""),
                alias=str(entry.get("alias") or aliases.get(name, "")),
            )
        )
    return found


def subchart_names(directory: Path) -> list[str]:
    """The names of the charts in a chart's ``charts/`` (directories and packages), as Helm loads them."""
    names: list[str] = []
    charts = directory / "charts"
    if not charts.is_dir():
        return names
    for entry in sorted(charts.iterdir()):
        if entry.is_dir():
            data = _yaml_file(entry / "Chart.yaml")
            if isinstance(data, Mapping) and data.get("name"):
                names.append(str(data["name"]))
        elif entry.suffix == ".tgz" and entry.is_file():
            name = _package_chart_name(entry.read_bytes())
            if name:
                names.append(name)
    return names


def _package_chart_name(data: bytes) -> str:
    import yaml

    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
            for member in archive.getmembers():
                parts = Path(member.name).parts
                if len(parts) == 2 and parts[1] == "Chart.yaml" and member.isfile():
                    handle = archive.extractfile(member)
                    meta = yaml.safe_load(handle.read()) if handle else None
                    return str(meta.get("name") or "") if isinstance(meta, Mapping) else ""
    except (tarfile.TarError, OSError, EOFError, yaml.YAMLError):
        return ""
    return ""


def missing_dependencies(directory: Path) -> list[ChartDependency]:
    """The dependencies source-controller would add to a chart from a Git or Bucket source
    (``DependencyManager.Build``): none when as many subcharts as dependencies are there; else
    those whose alias (or name) no subchart has."""
    wanted = chart_dependencies(directory)
    present = subchart_names(directory)
    if len(present) == len(wanted):
        return []
    return [d for d in wanted if d.key not in present]


def with_dependencies(chart: ChartFiles, added: list[tuple[ChartDependency, ChartFiles]], root: Path) -> ChartFiles:
    """A copy of a checkout chart with the dependencies source-controller would have added in its
    ``charts/`` (a package as ``NAME-VERSION.tgz``, a local chart as a directory), cached by the
    chart's digest and theirs; the digest is of all of them. Links are followed only within
    ``root`` (the checkout), as source-controller's secure loader follows them."""
    import shutil

    def outside(directory: str, names: list[str]) -> set[str]:
        return {
            n
            for n in names
            if (Path(directory) / n).is_symlink() and not (Path(directory) / n).resolve().is_relative_to(root)
        }

    if not added:
        return chart
    combined = hashlib.sha256(
        "|".join([chart.digest, *(f"{d.key}={files.digest}" for d, files in added)]).encode()
    ).hexdigest()
    directory = chart_cache() / f"d-{combined}"
    target = directory / chart.name
    if (directory / ".chart").is_file():
        return ChartFiles(target, chart.name, chart.version, "sha256:" + combined)
    try:
        with _staging(chart_cache()) as staged:
            shutil.copytree(chart.path, staged / chart.name, ignore=outside)
            charts = staged / chart.name / "charts"
            charts.mkdir(exist_ok=True)
            for dependency, files in added:
                package = chart_cache() / f"{files.digest.removeprefix('sha256:')}.tgz"
                if package.is_file():
                    shutil.copyfile(package, charts / f"{files.name}-{files.version}.tgz")
                else:  # a local chart: its directory
                    shutil.copytree(files.path, charts / dependency.key, ignore=outside)
            write_private(staged / ".chart", json.dumps([chart.name, chart.version]).encode())
            _publish(staged, directory)
    except OSError as exc:
        raise ChartProblem(f"cannot write the chart cache {directory}: {exc}") from exc
    return ChartFiles(target, chart.name, chart.version, "sha256:" + combined)
