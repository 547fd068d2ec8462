"""A source stand-in that plays Flux's source-controller on the real API server.

source-controller cannot be built on the test machine, but the real kustomize-controller and
helm-controller only need what it leaves behind: a source object whose status carries an
``artifact`` (a tarball on an HTTP server, with its revision and sha256 digest) and
``Ready=True`` for the current generation. This stand-in watches the source kinds, builds those
artifacts from local directories and the stand-in chart, serves them on 127.0.0.1, and writes the
status through the ``/status`` subresource the way source-controller v1.9.6 does:

==============  ===================================================================================
GitRepository   tarball of a local directory (``git_dirs[(ns, name)]``, else ``default_git_dir``)
                filtered like source-controller (``.git/``, default excludes, ``.sourceignore``,
                ``spec.ignore``); revision ``<branch>@sha1:<40 hex>`` from the directory content
Bucket          the same tarball; revision ``sha256:<hex>`` of the file index
OCIRepository   a Helm chart package when ``spec.layerSelector.mediaType`` is the Helm chart content
                type (or the URL looks like a chart), else the directory tarball; revision
                ``<tag>@sha256:<hex>``
HelmRepository  ``type: oci``: no reconcile loop, the status is left (made) empty, as
                source-controller >= v1.3 does; otherwise an index artifact, revision ``sha256:<hex>``
HelmChart       the stand-in chart (``charts_dir/app-template``) repackaged with ``name = spec.chart``
                and the requested version; from a GitRepository/Bucket: the chart at ``spec.chart``
==============  ===================================================================================

It acts on first sight, on a spec change (generation), on a reconcile request
(``reconcile.fluxcd.io/requestedAt`` not yet handled) and, for a HelmChart, when its source's
revision changes. A test changes files in a directory, annotates the GitRepository, and sees a new
revision; annotating without a change keeps the artifact and only records the token.

    with SourceStandIn(api, default_git_dir=repo) as sources:
        ...
        sources.revision_of("GitRepository", "flux-system", "flux-system")

Watches run on one asyncio loop in a background thread (stopped by cancelling its task);
building artifacts happens on a one-thread executor, so slow work never holds a watch stream.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import fnmatch
import gzip
import hashlib
import http.server
import io
import json
import logging
import os
import re
import shutil
import ssl
import stat
import tarfile
import tempfile
import threading
import urllib.parse
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.cluster.api import Api, ApiError

__all__ = [
    "HELM_CHART_MEDIA_TYPE",
    "SourceStandIn",
    "chart_version_for",
    "pack_directory",
    "package_chart",
    "source_files",
]

log = logging.getLogger(__name__)

Obj = dict[str, Any]
Key = tuple[str, str, str]  # kind, namespace, name

GROUP = "source.toolkit.fluxcd.io"
KINDS = ("GitRepository", "OCIRepository", "HelmRepository", "HelmChart", "Bucket")
FIELD_MANAGER = "source-controller"
REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"
HELM_CHART_MEDIA_TYPE = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
REPO_ROOT = Path(__file__).resolve().parent.parent.parent
CHARTS_DIR = REPO_ROOT / "tests" / "fixtures" / "charts"
STAND_IN_CHART = "app-template"
DEFAULT_CHART_VERSION = "1.0.0"

# source-controller's archive modes (github.com/fluxcd/pkg/artifact storage/archive.go).
DIR_MODE = 0o750
FILE_MODE = 0o600
EXE_FILE_MODE = 0o700

# github.com/fluxcd/pkg/sourceignore v0.18.0
EXCLUDE_VCS = ".git/,.gitignore,.gitmodules,.gitattributes"
EXCLUDE_EXT = "*.jpg,*.jpeg,*.gif,*.png,*.wmv,*.flv,*.tar.gz,*.zip"
EXCLUDE_CI = (
    ".github/,.circleci/,.travis.yml,.gitlab-ci.yml,appveyor.yml,.drone.yml,cloudbuild.yaml,"
    "codeship-services.yml,codeship-steps.yml"
)
EXCLUDE_EXTRA = "**/.goreleaser.yml,**/.sops.yaml,**/.flux.yaml"
IGNORE_FILE = ".sourceignore"


# --- ignore rules: a port of go-git's gitignore matcher as source-controller uses it -----------
@dataclass(frozen=True)
class IgnorePattern:
    domain: tuple[str, ...]
    parts: tuple[str, ...]
    inclusion: bool
    dir_only: bool
    is_glob: bool

    @classmethod
    def parse(cls, text: str, domain: Iterable[str] = ()) -> IgnorePattern:
        inclusion = text.startswith("!")
        if inclusion:
            text = text[1:]
        if not text.endswith("\\ "):
            text = text.rstrip(" ")
        dir_only = text.endswith("/")
        if dir_only:
            text = text[:-1]
        return cls(tuple(domain), tuple(text.split("/")), inclusion, dir_only, "/" in text)

    def match(self, path: tuple[str, ...], is_dir: bool) -> bool | None:
        """True: excluded, False: included, None: no opinion."""
        if len(path) <= len(self.domain) or path[: len(self.domain)] != self.domain:
            return None
        rest = path[len(self.domain) :]
        matched = self._glob_match(rest, is_dir) if self.is_glob else self._name_match(rest, is_dir)
        if not matched:
            return None
        return not self.inclusion

    def _name_match(self, path: tuple[str, ...], is_dir: bool) -> bool:
        for index, name in enumerate(path):
            if not _go_match(self.parts[0], name):
                continue
            return not (self.dir_only and not is_dir and index == len(path) - 1)
        return False

    def _glob_match(self, path: tuple[str, ...], is_dir: bool) -> bool:
        matched = False
        traverse = False
        remaining = list(path)
        for index, part in enumerate(self.parts):
            if part == "":
                traverse = False
                continue
            if part == "**":
                if index == len(self.parts) - 1:
                    break
                traverse = True
                continue
            if "**" in part or not remaining:
                return False
            if traverse:
                traverse = False
                while remaining:
                    name = remaining.pop(0)
                    if _go_match(part, name):
                        matched = True
                        break
                    if not remaining:
                        matched = False
            else:
                if not _go_match(part, remaining[0]):
                    return False
                matched = True
                remaining.pop(0)
        if matched and self.dir_only and not is_dir and not remaining:
            matched = False
        return matched


def _go_match(pattern: str, name: str) -> bool:
    """Go's filepath.Match on one path element (close enough: ``[^`` negation, no escapes)."""
    return fnmatch.fnmatchcase(name, pattern.replace("[^", "[!"))


def read_patterns(text: str, domain: Iterable[str] = ()) -> list[IgnorePattern]:
    domain = tuple(domain)
    return [
        IgnorePattern.parse(line, domain) for line in text.splitlines() if not line.startswith("#") and line.strip()
    ]


def _csv_patterns(*groups: str) -> list[IgnorePattern]:
    return [IgnorePattern.parse(p) for group in groups for p in group.split(",")]


def _load_ignore_files(directory: Path, domain: tuple[str, ...] = ()) -> list[IgnorePattern]:
    patterns: list[IgnorePattern] = []
    ignore_file = directory / IGNORE_FILE
    if ignore_file.is_file():
        patterns.extend(read_patterns(ignore_file.read_text(), domain))
    for child in sorted(directory.iterdir()):
        if child.is_dir() and not child.is_symlink() and child.name != ".git":
            patterns.extend(_load_ignore_files(child, (*domain, child.name)))
    return patterns


def _excluded(patterns: list[IgnorePattern], path: tuple[str, ...], is_dir: bool) -> bool:
    for pattern in reversed(patterns):
        verdict = pattern.match(path, is_dir)
        if verdict is not None:
            return verdict
    return False


def _walk(directory: Path) -> Iterator[tuple[tuple[str, ...], Path, bool]]:
    """Every regular file and directory under ``directory`` (no symlinks), sorted, as
    (relative parts, path, is_dir)."""
    for current, dirnames, filenames in os.walk(directory):
        dirnames.sort()
        base = Path(current)
        rel = base.relative_to(directory).parts
        for name in dirnames:
            path = base / name
            if not path.is_symlink():
                yield (*rel, name), path, True
        for name in sorted(filenames):
            path = base / name
            mode = path.lstat().st_mode
            if stat.S_ISREG(mode):
                yield (*rel, name), path, False
        dirnames[:] = [d for d in dirnames if not (base / d).is_symlink()]


def tree_files(directory: Path) -> list[tuple[str, Path]]:
    """Every file under ``directory`` except Git's own (what a commit would hold), sorted."""
    return sorted(
        ("/".join(parts), path) for parts, path, is_dir in _walk(directory) if not is_dir and ".git" not in parts
    )


def source_files(directory: Path, ignore: str | None = None) -> list[tuple[str, Path]]:
    """The files source-controller would archive from ``directory``: sorted (relative POSIX path,
    path). Like ``storage.SourceIgnoreFilter``: with no ``.sourceignore`` and no ``spec.ignore``
    the VCS and default excludes apply; otherwise the VCS excludes and those patterns."""
    patterns = _load_ignore_files(directory)
    if ignore:
        patterns.extend(read_patterns(ignore))
    patterns = _csv_patterns(EXCLUDE_VCS) + (patterns or _csv_patterns(EXCLUDE_EXT, EXCLUDE_CI, EXCLUDE_EXTRA))
    files = [
        ("/".join(parts), path)
        for parts, path, is_dir in _walk(directory)
        if not is_dir and not _excluded(patterns, parts, False)
    ]
    return sorted(files)


# --- deterministic archives --------------------------------------------------------------------
def _gzip_tar(entries: Iterable[tuple[str, bytes | None, int]]) -> bytes:
    """A gzip'd tar of (name, content or None for a directory, mode), with no environment data:
    mtime 0, uid/gid 0, no owner names, and a gzip header without a name or time."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content, mode in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mode = mode
            if content is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def pack_directory(files: list[tuple[str, Path]]) -> bytes:
    """A tarball like source-controller's ``Storage.Archive``: paths relative to the directory
    root, parent directories as entries, default modes (0750 dirs, 0600/0700 files)."""
    entries: list[tuple[str, bytes | None, int]] = []
    dirs: set[str] = set()
    for rel, _ in files:
        parts = rel.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            dirs.add("/".join(parts[:depth]))
    for rel in sorted(dirs):
        entries.append((rel, None, DIR_MODE))
    for rel, path in files:
        executable = path.stat().st_mode & 0o111
        entries.append((rel, path.read_bytes(), EXE_FILE_MODE if executable else FILE_MODE))
    entries.sort(key=lambda entry: entry[0])
    return _gzip_tar(entries)


def content_digest(files: list[tuple[str, Path]], algorithm: str) -> str:
    """A digest over file names and contents: stable for the same content."""
    digest = hashlib.new(algorithm)
    for rel, path in files:
        digest.update(rel.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def package_chart(chart_dir: Path, name: str, version: str) -> bytes:
    """A Helm chart package as ``helm package`` makes it: a gzip'd tar whose top directory is the
    chart name, with Chart.yaml's ``name`` and ``version`` set (files in ``.helmignore`` left out)."""
    metadata = yaml.safe_load((chart_dir / "Chart.yaml").read_text()) or {}
    metadata["name"] = name
    metadata["version"] = version
    helmignore = chart_dir / ".helmignore"
    patterns = read_patterns(helmignore.read_text()) if helmignore.is_file() else []
    entries: list[tuple[str, bytes | None, int]] = []
    for parts, path, is_dir in _walk(chart_dir):
        if is_dir or _excluded(patterns, parts, False):
            continue
        rel = "/".join(parts)
        content = yaml.safe_dump(metadata, sort_keys=False).encode() if rel == "Chart.yaml" else path.read_bytes()
        entries.append((f"{name}/{rel}", content, 0o644))
    entries.sort(key=lambda entry: (entry[0] != f"{name}/Chart.yaml", entry[0]))
    return _gzip_tar(entries)


_EXACT_SEMVER = re.compile(r"v?\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?")
_VERSION_IN = re.compile(r"(>=|<=|!=|>|<|=|~|\^)?\s*v?(\d+)(?:\.(\d+|[xX*]))?(?:\.(\d+|[xX*]))?")


def chart_version_for(constraint: str | None, default: str = DEFAULT_CHART_VERSION) -> str:
    """The version the stand-in serves for a chart version (or constraint): an exact version as
    written (``v1.19.1`` stays, Helm accepts the ``v``); ``*``/empty: ``default``; a range: the
    first bound it names, padded (``>=1.2`` -> ``1.2.0``, ``~3.7`` -> ``3.7.0``, ``>1.0.0`` ->
    ``1.0.1``, ``<2.0.0`` -> ``0.0.0``)."""
    text = (constraint or "").strip()
    if _EXACT_SEMVER.fullmatch(text):
        return text
    found = _VERSION_IN.search(text)
    if not text or text in ("*", "x", "X", "latest") or found is None:
        return default
    operator = found.group(1) or ""
    numbers = [int(n) if n and n.isdigit() else 0 for n in found.group(2, 3, 4)]
    if operator == "<":
        return "0.0.0"
    if operator == ">":
        numbers[2] += 1
    return ".".join(str(n) for n in numbers)


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- the stand-in --------------------------------------------------------------------------------
@dataclass
class Built:
    """What one reconcile produced: the artifact file (or the failure) and the extra status."""

    revision: str = ""
    content: bytes = b""
    filename: str = ""  # source-controller's artifact file name
    alias: str | None = None  # the symlink name source-controller keeps (latest.tar.gz, index.yaml)
    ready_reason: str = "Succeeded"
    ready_message: str = ""
    extra: Obj = field(default_factory=dict)  # other status fields (observedChartName ...)
    artifact_metadata: dict[str, str] | None = None
    failure: tuple[str, str, str] | None = None  # (condition type, reason, message)
    source_revision: str | None = None  # a HelmChart's source revision when built
    path: str = ""  # in storage, once stored
    alias_path: str | None = None


@dataclass
class _State:
    generation: int
    token: str | None
    revision: str | None
    artifact: Obj | None
    source_revision: str | None = None


class _Retry(Exception):
    """A reconcile to try again later (the API server asked us to wait, or was unavailable)."""


class _Countdown:
    def __init__(self, count: int) -> None:
        self.remaining = count
        self.done = threading.Event()
        if count <= 0:
            self.done.set()

    def count_down(self) -> None:
        self.remaining -= 1
        if self.remaining <= 0:
            self.done.set()


class _ArtifactHandler(http.server.BaseHTTPRequestHandler):
    server: _ArtifactServer

    def do_GET(self) -> None:
        self._serve(body=True)

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def _serve(self, *, body: bool) -> None:
        path = self.server.resolve(self.path)
        if path is None:
            self.send_error(404, "artifact not found")
            return
        data = path.read_bytes()
        self.send_response(200)
        content_type = "application/x-yaml" if path.suffix == ".yaml" else "application/octet-stream"
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        return


class _ArtifactServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        super().__init__(("127.0.0.1", 0), _ArtifactHandler)

    def resolve(self, request_path: str) -> Path | None:
        rel = urllib.parse.unquote(urllib.parse.urlsplit(request_path).path).lstrip("/")
        path = (self.root / rel).resolve()
        if not path.is_relative_to(self.root) or not path.is_file():
            return None
        return path


class SourceStandIn:
    """Plays source-controller: see the module docstring."""

    def __init__(
        self,
        api: Api,
        *,
        git_dirs: dict[tuple[str, str], Path] | None = None,
        default_git_dir: Path | None = None,
        charts_dir: Path = CHARTS_DIR,
        namespaces: set[str] | None = None,
        workdir: Path | None = None,
        on_reconciled: Callable[[Obj], None] | None = None,
    ) -> None:
        self.api = api
        # Called with one log record (source-controller's JSON log shape) per reconcile.
        self.on_reconciled = on_reconciled
        self.git_dirs = {key: Path(path) for key, path in (git_dirs or {}).items()}
        self.default_git_dir = Path(default_git_dir) if default_git_dir else None
        self.charts_dir = Path(charts_dir)
        self.namespaces = namespaces
        self._owns_storage = workdir is None
        self.storage = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="phoebe-sources-"))
        self.errors: list[str] = []  # unexpected errors while reconciling (a test may assert none)
        self._objects: dict[Key, Obj] = {}  # the latest seen, owned by the loop thread
        self._states: dict[Key, _State] = {}
        self._lock = threading.Lock()
        self._collections: dict[str, str] = {}  # kind -> collection path (cluster-wide)
        self._server: _ArtifactServer | None = None
        self._threads: list[threading.Thread] = []
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._main: asyncio.Task[None] | None = None
        self._queue: asyncio.Queue[Key] | None = None
        self._queued: set[Key] = set()
        self._failures: dict[Key, int] = {}  # consecutive transport failures, for the retry backoff

    # --- public ------------------------------------------------------------------------------
    @property
    def artifact_base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the source stand-in is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def revision_of(self, kind: str, namespace: str, name: str) -> str | None:
        """The last artifact revision written for an object (None: none yet)."""
        with self._lock:
            state = self._states.get((kind, namespace, name))
            return state.revision if state else None

    def artifact_of(self, kind: str, namespace: str, name: str) -> Obj | None:
        """The last ``status.artifact`` written for an object."""
        with self._lock:
            state = self._states.get((kind, namespace, name))
            return dict(state.artifact) if state and state.artifact else None

    def start(self) -> SourceStandIn:
        self.storage.mkdir(parents=True, exist_ok=True)
        self._server = _ArtifactServer(self.storage)
        server_thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True, name="sources-http"
        )
        server_thread.start()
        self._threads.append(server_thread)
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="sources-build")
        for kind in KINDS:
            with contextlib.suppress(KeyError, ApiError):
                self._collections[kind] = self._collection(kind)
        listed = _Countdown(len(self._collections))
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run_loop() -> None:
            loop = self._loop
            assert loop is not None
            asyncio.set_event_loop(loop)
            self._queue = asyncio.Queue()
            self._main = loop.create_task(self._run(listed))
            ready.set()
            with contextlib.suppress(asyncio.CancelledError):
                loop.run_until_complete(self._main)
            loop.close()

        watcher = threading.Thread(target=run_loop, daemon=True, name="sources-watch")
        watcher.start()
        self._threads.append(watcher)
        ready.wait(timeout=10)
        listed.done.wait(timeout=30)
        return self

    def stop(self) -> None:
        if self._loop is not None and self._main is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._main.cancel)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads.clear()
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        if self._owns_storage:
            shutil.rmtree(self.storage, ignore_errors=True)

    def __enter__(self) -> SourceStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- discovery -----------------------------------------------------------------------------
    def _collection(self, kind: str) -> str:
        version = self.api.http.get(f"/apis/{GROUP}").json()["preferredVersion"]["version"]
        return self.api.path(f"{GROUP}/{version}", kind)

    def _object_path(self, kind: str, namespace: str, name: str) -> str:
        collection = self._collections[kind]  # /apis/<group>/<version>/<plural>
        prefix, plural = collection.rsplit("/", 1)
        return f"{prefix}/namespaces/{namespace}/{plural}/{name}"

    # --- the loop ----------------------------------------------------------------------------
    async def _run(self, listed: _Countdown) -> None:
        client = httpx.AsyncClient(
            base_url=self.api.server,
            headers={"Authorization": f"Bearer {self.api.token}", "Accept": "application/json"},
            verify=ssl.create_default_context(cafile=self.api.ca_file),
            timeout=httpx.Timeout(30, read=None),
        )
        try:
            watches = [self._watch(client, kind, listed) for kind in self._collections]
            await asyncio.gather(*watches, self._worker(client, listed))
        finally:
            await client.aclose()

    async def _watch(self, client: httpx.AsyncClient, kind: str, listed: _Countdown) -> None:
        path = self._collections[kind]
        first = True
        while True:
            try:
                response = await client.get(path)
                if response.status_code != 200:  # e.g. 429 while a new CRD's storage initialises
                    await asyncio.sleep(0.2)
                    continue
                listing = response.json()
                seen: set[Key] = set()
                for item in listing.get("items") or []:
                    item.setdefault("kind", kind)
                    seen.add(self._remember(item))
                for key in [k for k in self._objects if k[0] == kind and k not in seen]:
                    self._forget(key)
                if first:
                    first = False
                    listed.count_down()
                version = listing["metadata"]["resourceVersion"]
                while True:
                    params = {"watch": "1", "resourceVersion": version, "allowWatchBookmarks": "true"}
                    gone = False
                    async with client.stream("GET", path, params=params) as stream:
                        if stream.status_code != 200:
                            await asyncio.sleep(0.2)
                            break  # 410 Gone or worse: re-list
                        async for line in stream.aiter_lines():
                            if not line:
                                continue
                            event = json.loads(line)
                            obj = event.get("object") or {}
                            kind_of_event = event.get("type")
                            if kind_of_event == "ERROR":
                                gone = obj.get("code") == 410
                                break
                            version = obj.get("metadata", {}).get("resourceVersion", version)
                            if kind_of_event in ("ADDED", "MODIFIED"):
                                obj.setdefault("kind", kind)
                                self._remember(obj)
                            elif kind_of_event == "DELETED":
                                obj.setdefault("kind", kind)
                                self._forget(_key(obj))
                        if gone:
                            break  # re-list
            except (httpx.HTTPError, KeyError, ValueError):
                await asyncio.sleep(0.2)

    def _remember(self, obj: Obj) -> Key:
        key = _key(obj)
        cached = self._objects.get(key)
        if cached is None or _newer(obj, cached):
            self._objects[key] = obj
        self._enqueue(key)
        return key

    def _forget(self, key: Key) -> None:
        self._objects.pop(key, None)
        with self._lock:
            self._states.pop(key, None)

    def _enqueue(self, key: Key) -> None:
        if key not in self._queued and self._queue is not None:
            self._queued.add(key)
            self._queue.put_nowait(key)

    async def _worker(self, client: httpx.AsyncClient, listed: _Countdown) -> None:
        assert self._queue is not None
        while not listed.done.is_set():  # first every kind is listed, so sources are known to charts
            await asyncio.sleep(0.02)
        loop = asyncio.get_running_loop()
        while True:
            key = await self._queue.get()
            self._queued.discard(key)
            try:
                await self._reconcile(client, key)
                self._failures.pop(key, None)
            except asyncio.CancelledError:
                raise
            except (httpx.TransportError, _Retry) as error:  # a dropped connection, a 429: retry later
                failures = self._failures[key] = self._failures.get(key, 0) + 1
                log.info("source stand-in: %s: %s (retry %d)", "/".join(key), error, failures)
                loop.call_later(min(0.1 * 2**failures, 5.0), self._enqueue, key)
            except Exception as error:  # noqa: BLE001 - a stand-in keeps serving; errors are recorded
                self.errors.append(f"{'/'.join(key)}: {type(error).__name__}: {error}")
                log.warning("source stand-in: %s: %s", "/".join(key), error)

    # --- reconciling -------------------------------------------------------------------------
    def _in_scope(self, namespace: str) -> bool:
        return self.namespaces is None or namespace in self.namespaces

    async def _reconcile(self, client: httpx.AsyncClient, key: Key) -> None:
        obj = self._objects.get(key)
        kind, namespace, _ = key
        if obj is None or not self._in_scope(namespace):
            return
        spec = obj.get("spec") or {}
        if spec.get("suspend"):
            return
        status = obj.get("status") or {}
        if kind == "HelmRepository" and spec.get("type") == "oci":
            # source-controller's migrationToStatic: no artifact, no conditions, no finalizer. The
            # CRD defaults an empty status to {observedGeneration: -1}.
            if _static(status) != status:
                await self._patch_status(client, key, None)
            return
        generation = int(obj["metadata"].get("generation", 1))
        token = (obj["metadata"].get("annotations") or {}).get(REQUESTED_AT)
        with self._lock:
            state = self._states.get(key)
        source_revision = await self._source_revision(client, obj) if kind == "HelmChart" else None
        needed = (
            state is None
            or state.generation != generation
            or (token is not None and token != state.token)
            or (state.artifact is not None and not status.get("artifact"))
            or (kind == "HelmChart" and source_revision != state.source_revision)
        )
        if not needed:
            return
        loop = asyncio.get_running_loop()
        assert self._executor is not None
        source = self._source_of(obj) if kind == "HelmChart" else None
        built: Built = await loop.run_in_executor(self._executor, self._build, obj, source, source_revision)
        new_status, artifact = self._status_for(obj, built, token)
        previous = state.revision if state else None
        # What revision_of answers is set before the status is written: a test that sees the
        # status on the server sees the same revision here (it raced the other way round).
        with self._lock:
            self._states[key] = _State(
                generation=generation,
                token=token,
                revision=artifact["revision"] if artifact else previous,
                artifact=artifact or (state.artifact if state else None),
                source_revision=source_revision,
            )
        try:
            await self._patch_status(client, key, new_status)
        except BaseException:
            with self._lock:
                if state is None:
                    self._states.pop(key, None)
                else:
                    self._states[key] = state
            raise
        self._journal(key, new_status, changed=bool(artifact) and artifact["revision"] != previous)
        if artifact and artifact["revision"] != previous:
            for dependant in self._helm_charts_using(key):
                self._enqueue(dependant)

    def _journal(self, key: Key, status: Obj | None, *, changed: bool) -> None:
        """A log line as source-controller writes it, for the controller Pod's log."""
        if self.on_reconciled is None:
            return
        kind, namespace, name = key
        conditions = (status or {}).get("conditions") or []
        ready = next((c for c in conditions if c.get("type") == "Ready"), {})
        revision = ((status or {}).get("artifact") or {}).get("revision", "")
        failed = ready.get("status") == "False"
        if failed or changed:
            message = ready.get("message", "")
        else:
            message = f"no changes since last reconcilation: observed revision '{revision}'"
        record: Obj = {
            "level": "error" if failed else "info",
            "ts": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "msg": message if not failed else "Reconciler error",
            "controller": kind.lower(),
            "controllerGroup": "source.toolkit.fluxcd.io",
            "controllerKind": kind,
            kind: {"name": name, "namespace": namespace},
            "namespace": namespace,
            "name": name,
            "reconcileID": str(uuid.uuid4()),
        }
        if failed:
            record["error"] = message
        self.on_reconciled(record)

    async def _source_revision(self, client: httpx.AsyncClient, chart: Obj) -> str | None:
        """A HelmChart's source artifact revision; reconciles a source not yet handled first."""
        ref = (chart.get("spec") or {}).get("sourceRef") or {}
        key = (str(ref.get("kind", "HelmRepository")), chart["metadata"]["namespace"], str(ref.get("name", "")))
        source = self._objects.get(key)
        if source is None:
            return None
        if self._in_scope(key[1]) and key not in self._states and key[0] in KINDS:
            await self._reconcile(client, key)
        with self._lock:
            state = self._states.get(key)
        if state is not None:
            return state.revision
        return ((source.get("status") or {}).get("artifact") or {}).get("revision")

    def _source_of(self, chart: Obj) -> Obj | None:
        ref = (chart.get("spec") or {}).get("sourceRef") or {}
        return self._objects.get(
            (str(ref.get("kind", "HelmRepository")), chart["metadata"]["namespace"], str(ref.get("name", "")))
        )

    def _helm_charts_using(self, source: Key) -> list[Key]:
        found = []
        for key, obj in list(self._objects.items()):
            if key[0] != "HelmChart" or key[1] != source[1]:
                continue
            ref = (obj.get("spec") or {}).get("sourceRef") or {}
            if (ref.get("kind"), ref.get("name")) == (source[0], source[2]):
                found.append(key)
        return found

    async def _patch_status(self, client: httpx.AsyncClient, key: Key, status: Obj | None) -> None:
        path = self._object_path(*key) + "/status"
        response = await client.patch(
            path,
            params={"fieldManager": FIELD_MANAGER},
            content=json.dumps({"status": status}).encode(),
            headers={"Content-Type": "application/merge-patch+json"},
        )
        if response.status_code == 404:
            return  # deleted meanwhile
        if response.status_code == 429 or response.status_code >= 500:
            raise _Retry(f"PATCH {path}: {response.status_code} {response.text[:200]}")
        response.raise_for_status()
        updated = response.json()
        updated.setdefault("kind", key[0])
        cached = self._objects.get(key)
        if cached is None or _newer(updated, cached):
            self._objects[key] = updated  # so a stale event queued meanwhile does not look unhandled

    # --- building (executor thread: files only, no API calls) ----------------------------------
    def _git_dir(self, namespace: str, name: str) -> Path | None:
        return self.git_dirs.get((namespace, name), self.default_git_dir)

    def _build(self, obj: Obj, source: Obj | None, source_revision: str | None) -> Built:
        """Build the artifact and put it (and its alias) in storage."""
        kind = obj["kind"]
        if kind == "GitRepository":
            built = self._build_git(obj)
        elif kind == "Bucket":
            built = self._build_bucket(obj)
        elif kind == "OCIRepository":
            built = self._build_oci(obj)
        elif kind == "HelmRepository":
            built = self._build_helm_repository(obj)
        else:
            built = self._build_helm_chart(obj, source, source_revision)
        if built.failure is None:
            namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
            built.path = self._store(kind, namespace, name, built.filename, built.content)
            if built.alias:
                built.alias_path = self._store(kind, namespace, name, built.alias, built.content)
        return built

    def _directory_or_failure(self, obj: Obj) -> tuple[Path | None, Built | None]:
        meta = obj["metadata"]
        directory = self._git_dir(meta["namespace"], meta["name"])
        if directory is not None and directory.is_dir():
            return directory, None
        url = (obj.get("spec") or {}).get("url") or (obj.get("spec") or {}).get("bucketName", "")
        why = f"no directory for {meta['namespace']}/{meta['name']} in the source stand-in"
        if directory is not None:
            why = f"directory {directory} does not exist"
        if obj["kind"] == "GitRepository":
            message = f"failed to checkout and determine revision: unable to clone '{url}': {why}"
            return None, Built(failure=("FetchFailed", "GitOperationFailed", message))
        if obj["kind"] == "Bucket":
            message = f"failed to confirm existence of '{url}' bucket: {why}"
            return None, Built(failure=("FetchFailed", "BucketOperationFailed", message))
        message = f"failed to determine artifact digest: {why}"
        return None, Built(failure=("FetchFailed", "OCIArtifactPullFailed", message))

    def _build_git(self, obj: Obj) -> Built:
        directory, failure = self._directory_or_failure(obj)
        if failure is not None or directory is None:
            return failure or Built()
        spec = obj.get("spec") or {}
        ref = spec.get("ref") or {}
        # The commit id: the whole tree (the ignore rules shape the artifact, not the commit).
        sha = ref.get("commit") or content_digest(tree_files(directory), "sha1")
        if ref.get("name"):
            revision = f"{ref['name']}@sha1:{sha}"
        elif ref.get("commit") and not ref.get("branch"):
            revision = f"sha1:{sha}"
        else:
            reference = ref.get("tag") or (chart_version_for(ref["semver"]) if ref.get("semver") else None)
            revision = f"{reference or ref.get('branch') or 'main'}@sha1:{sha}"
        content = pack_directory(source_files(directory, spec.get("ignore")))
        extra: Obj = {
            "observedIgnore": spec.get("ignore"),
            "observedRecurseSubmodules": spec.get("recurseSubmodules"),
            "observedInclude": spec.get("include"),
            "observedSparseCheckout": spec.get("sparseCheckout"),
        }
        return Built(
            revision=revision,
            content=content,
            filename=f"{sha}.tar.gz",
            ready_message=f"stored artifact for revision '{revision}'",
            extra=extra,
        )

    def _build_bucket(self, obj: Obj) -> Built:
        directory, failure = self._directory_or_failure(obj)
        if failure is not None or directory is None:
            return failure or Built()
        spec = obj.get("spec") or {}
        files = source_files(directory, spec.get("ignore"))
        index = content_digest(files, "sha256")
        revision = f"sha256:{index}"
        return Built(
            revision=revision,
            content=pack_directory(files),
            filename=f"{index}.tar.gz",
            alias="latest.tar.gz",
            ready_message=f"stored artifact: revision '{revision}'",
            extra={"observedIgnore": spec.get("ignore")},
        )

    def _oci_is_chart(self, obj: Obj) -> bool:
        spec = obj.get("spec") or {}
        selector = spec.get("layerSelector") or {}
        if selector:
            return selector.get("mediaType") == HELM_CHART_MEDIA_TYPE
        meta = obj["metadata"]
        if (meta["namespace"], meta["name"]) in self.git_dirs:
            return False
        segments = urllib.parse.urlsplit(str(spec.get("url", ""))).path.split("/")
        return any(s in ("charts", "helm", "helm-charts", "chart") for s in segments[:-1])

    def _build_oci(self, obj: Obj) -> Built:
        spec = obj.get("spec") or {}
        ref = spec.get("ref") or {}
        url = str(spec.get("url", ""))
        tag = ref.get("tag") or (chart_version_for(ref["semver"]) if ref.get("semver") else None)
        chart = self._oci_is_chart(obj)
        if chart:
            name = url.rstrip("/").rsplit("/", 1)[-1]
            version = tag or DEFAULT_CHART_VERSION
            tag = tag or version
            content = package_chart(self.charts_dir / STAND_IN_CHART, name, version)
            metadata = {
                "org.opencontainers.image.title": name,
                "org.opencontainers.image.version": version,
            }
        else:
            directory, failure = self._directory_or_failure(obj)
            if failure is not None or directory is None:
                return failure or Built()
            content = pack_directory(source_files(directory, spec.get("ignore")))
            metadata = {"org.opencontainers.image.source": url}
        tag = tag or "latest"
        # The manifest digest: not the artifact file's digest, but as stable as its content.
        manifest = hashlib.sha256(b"manifest\0" + hashlib.sha256(content).digest()).hexdigest()
        if ref.get("digest"):
            manifest = str(ref["digest"]).removeprefix("sha256:")
            revision = f"{ref['tag']}@sha256:{manifest}" if ref.get("tag") else f"sha256:{manifest}"
        else:
            revision = f"{tag}@sha256:{manifest}"
        metadata["org.opencontainers.image.revision"] = revision
        return Built(
            revision=revision,
            content=content,
            filename=f"{manifest}.tar.gz",
            alias="latest.tar.gz",
            ready_message=f"stored artifact for digest '{revision}'",
            extra={"observedIgnore": spec.get("ignore"), "observedLayerSelector": spec.get("layerSelector")},
            artifact_metadata=metadata,
        )

    def _build_helm_repository(self, obj: Obj) -> Built:
        spec = obj.get("spec") or {}
        chart_meta = yaml.safe_load((self.charts_dir / STAND_IN_CHART / "Chart.yaml").read_text()) or {}
        base = str(spec.get("url", "")).rstrip("/")
        name = chart_meta.get("name", STAND_IN_CHART)
        version = str(chart_meta.get("version", DEFAULT_CHART_VERSION))
        index = {
            "apiVersion": "v1",
            "entries": {
                name: [
                    {
                        "apiVersion": chart_meta.get("apiVersion", "v2"),
                        "name": name,
                        "version": version,
                        "appVersion": str(chart_meta.get("appVersion", version)),
                        "description": chart_meta.get("description", ""),
                        "type": chart_meta.get("type", "application"),
                        "urls": [f"{base}/{name}-{version}.tgz"],
                        "created": "1970-01-01T00:00:00Z",
                    }
                ]
            },
            "generated": "1970-01-01T00:00:00Z",
        }
        content = json.dumps(index, sort_keys=True).encode()  # source-controller stores the index as JSON
        hex_digest = hashlib.sha256(content).hexdigest()
        revision = f"sha256:{hex_digest}"
        return Built(
            revision=revision,
            content=content,
            filename=f"index-{hex_digest}.yaml",
            alias="index.yaml",
            ready_message=f"stored artifact: revision '{revision}'",
        )

    def _build_helm_chart(self, obj: Obj, source: Obj | None, source_revision: str | None) -> Built:
        spec = obj.get("spec") or {}
        namespace = obj["metadata"]["namespace"]
        ref = spec.get("sourceRef") or {}
        source_kind = str(ref.get("kind", "HelmRepository"))
        source_name = str(ref.get("name", ""))
        chart = str(spec.get("chart", ""))
        values_files = list(spec.get("valuesFiles") or [])
        if source is None:
            plural = {"HelmRepository": "helmrepositories", "GitRepository": "gitrepositories", "Bucket": "buckets"}
            resource = f"{plural.get(source_kind, source_kind.lower())}.{GROUP}"
            message = f'failed to get source: {resource} "{source_name}" not found'
            return Built(failure=("FetchFailed", "SourceUnavailable", message))
        oci_repository = source_kind == "HelmRepository" and (source.get("spec") or {}).get("type") == "oci"
        if source_revision is None and not oci_repository:
            message = f"no artifact available for {source_kind} source '{source_name}'"
            return Built(failure=("FetchFailed", "NoSourceArtifact", message))
        generation = int(obj["metadata"].get("generation", 1))
        if source_kind == "HelmRepository":
            name = chart
            version = chart_version_for(spec.get("version"))
            if values_files:
                version = f"{version}+{generation}"
            content = package_chart(self.charts_dir / STAND_IN_CHART, name, version)
            packaged = bool(values_files)
        else:
            directory = self._git_dir(namespace, source_name)
            chart_dir = (directory / chart).resolve() if directory else None
            if chart_dir is None or not (chart_dir / "Chart.yaml").is_file():
                message = f"invalid chart reference: path '{chart}' not found in {source_kind} '{source_name}'"
                return Built(failure=("FetchFailed", "InvalidChartReference", message))
            chart_meta = yaml.safe_load((chart_dir / "Chart.yaml").read_text()) or {}
            name = str(chart_meta.get("name", chart_dir.name))
            version = str(chart_meta.get("version", DEFAULT_CHART_VERSION))
            metadata = []
            if spec.get("reconcileStrategy") == "Revision" and source_revision:
                metadata.append(source_revision.rsplit(":", 1)[-1][:12])
            if values_files:
                metadata.append(str(generation))
            if metadata:
                version = f"{version}+{'.'.join(metadata)}"
            content = package_chart(chart_dir, name, version)
            packaged = True
        action = "packaged" if packaged else "pulled"
        message = f"{action} '{name}' chart with version '{version}'"
        if values_files:
            message += f" and merged values files [{' '.join(values_files)}]"
        extra: Obj = {
            "observedChartName": name,
            "observedSourceArtifactRevision": None if oci_repository else source_revision,
            "observedValuesFiles": values_files if spec.get("ignoreMissingValuesFiles") else None,
        }
        return Built(
            revision=version,
            content=content,
            filename=f"{name}-{version}.tgz",
            alias="latest.tar.gz",
            ready_reason="ChartPackageSucceeded" if packaged else "ChartPullSucceeded",
            ready_message=message,
            extra=extra,
            source_revision=source_revision,
        )

    # --- status ------------------------------------------------------------------------------
    def _store(self, kind: str, namespace: str, name: str, filename: str, content: bytes) -> str:
        rel = f"{kind.lower()}/{namespace}/{name}/{filename}"
        target = self.storage / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.is_file() or target.read_bytes() != content:
            partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
            partial.write_bytes(content)
            partial.replace(target)
        return rel

    def _status_for(self, obj: Obj, built: Built, token: str | None) -> tuple[Obj, Obj | None]:
        """The status document for a built (or failed) reconcile, and the artifact written."""
        meta = obj["metadata"]
        generation = int(meta.get("generation", 1))
        current = obj.get("status") or {}
        status: Obj = {}
        if token is not None:
            status["lastHandledReconcileAt"] = token
        if built.failure is not None:
            condition_type, reason, message = built.failure
            status["conditions"] = _conditions(
                current,
                generation,
                [
                    ("Ready", "False", reason, message),
                    (condition_type, "True", reason, message),
                    ("Reconciling", "True", "ProgressingWithRetry", "reconciliation in progress"),
                ],
            )
            kept = [c for c in current.get("conditions") or [] if c.get("type") == "ArtifactInStorage"]
            if current.get("artifact") and kept:  # the last artifact stays served and in status
                status["conditions"] = sorted(
                    [*status["conditions"], kept[0]], key=lambda c: (c["type"] != "Ready", c["type"])
                )
            return status, None
        base = self.artifact_base_url
        previous = current.get("artifact") or {}
        digest = "sha256:" + hashlib.sha256(built.content).hexdigest()
        if (
            previous.get("revision") == built.revision
            and previous.get("url") == f"{base}/{built.path}"
            and previous.get("digest") == digest
        ):
            artifact = dict(previous)  # source-controller keeps an up-to-date artifact as it is
        else:
            artifact = {
                "path": built.path,
                "url": f"{base}/{built.path}",
                "revision": built.revision,
                "digest": digest,
                "lastUpdateTime": now(),
                "size": len(built.content),
                "metadata": built.artifact_metadata,
            }
        if built.alias_path:
            status["url"] = f"{base}/{built.alias_path}"
        status["artifact"] = artifact
        status["observedGeneration"] = generation
        status.update(built.extra)
        status["conditions"] = _conditions(
            current,
            generation,
            [
                ("Ready", "True", built.ready_reason, built.ready_message),
                ("ArtifactInStorage", "True", built.ready_reason, built.ready_message),
            ],
        )
        return status, {k: v for k, v in artifact.items() if v is not None}


def _conditions(current: Obj, generation: int, wanted: list[tuple[str, str, str, str]]) -> list[Obj]:
    """Conditions in source-controller's order (Ready first, then by type), keeping a condition's
    lastTransitionTime while its status does not change."""
    before = {c.get("type"): c for c in current.get("conditions") or []}
    out = []
    for type_, status, reason, message in wanted:
        old = before.get(type_)
        since = old["lastTransitionTime"] if old and old.get("status") == status else now()
        out.append(
            {
                "type": type_,
                "status": status,
                "observedGeneration": generation,
                "lastTransitionTime": since,
                "reason": reason,
                "message": message,
            }
        )
    out.sort(key=lambda c: (c["type"] != "Ready", c["type"]))
    return out


def _static(status: Obj) -> Obj:
    """What an emptied status reads back as (the CRDs default it to observedGeneration -1)."""
    return {"observedGeneration": -1} if status else {}


def _newer(candidate: Obj, than: Obj) -> bool:
    try:
        return int(candidate["metadata"]["resourceVersion"]) > int(than["metadata"]["resourceVersion"])
    except (KeyError, ValueError):
        return True


def _key(obj: Obj) -> Key:
    meta = obj["metadata"]
    return (obj["kind"], meta.get("namespace", ""), meta["name"])
