"""A Helm chart repository over HTTP on 127.0.0.1, and charts packaged by the real helm binary.

A Helm HTTP repository is a directory holding ``index.yaml`` and the packaged charts (``.tgz``)
it names. This module makes such directories with helm itself (``helm package``, ``helm repo
index``: the cached helm from ``tests/cluster/build.py``) and serves them read-only, with
optional HTTP basic auth, so source-controller (or helm) fetches charts the way it would from
any chart site.

    root = tmp_path / "charts"
    package_chart(CHARTS_DIR / "app-template", root / "rook", name="rook-ceph", version="v1.18.7")
    with chart_repository(root, auth=("user", "secret")) as base_url:
        # base_url is "http://127.0.0.1:PORT"; each subdirectory of root is one repository:
        # HelmRepository url: f"{base_url}/rook"
        package_chart(..., root / "rook", version="v1.18.8")  # a new version: served at once

One server may serve many repositories: every directory under ``root`` that holds an
``index.yaml`` is a repository at ``/<its path>``. ``ChartRepository`` is the same server for
code that starts and stops it explicitly (``start()``, ``stop()``, ``base_url``).
"""

from __future__ import annotations

import base64
import functools
import hmac
import http.server
import shutil
import subprocess
import tempfile
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "CHARTS_DIR",
    "ChartRepository",
    "chart_repository",
    "gzipped_tar",
    "helm_binary",
    "index_repository",
    "package_chart",
]

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
CHARTS_DIR = REPO_ROOT / "tests" / "fixtures" / "charts"


def helm_binary() -> Path:
    """The helm binary the test set-up builds and caches (tests/cluster/build.py)."""
    from tests.cluster.build import ensure_program, helm_program

    return ensure_program(helm_program())


def gzipped_tar(files: dict[str, str]) -> bytes:
    """A .tgz of ``files`` (path in the archive -> text), made in memory: a chart package
    without helm."""
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _helm(*args: str, cwd: Path | None = None) -> str:
    result = subprocess.run(
        [str(helm_binary()), *args], capture_output=True, text=True, check=False, cwd=cwd, timeout=120
    )
    if result.returncode != 0:
        raise RuntimeError(f"helm {' '.join(args[:2])} failed: {result.stderr.strip()}")
    return result.stdout


def package_chart(
    chart_dir: Path,
    repository_dir: Path,
    *,
    name: str | None = None,
    version: str | None = None,
    app_version: str | None = None,
    index: bool = True,
) -> Path:
    """Package ``chart_dir`` with ``helm package`` into ``repository_dir`` and return the .tgz.

    ``name``/``version``/``app_version`` override the Chart.yaml fields (on a copy: the fixture is
    left alone), so one fixture chart plays any chart of a sample repository. With ``index`` (the
    default) the repository's index.yaml is regenerated, so a running server serves the new
    version at once.
    """
    repository_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="phoebe-chart-") as scratch:
        chart_yaml = chart_dir / "Chart.yaml"
        meta: dict[str, Any] = yaml.safe_load(chart_yaml.read_text())
        meta["name"] = name or meta["name"]
        meta["version"] = version or meta["version"]
        if app_version is not None:
            meta["appVersion"] = app_version
        # helm wants the directory named like the chart.
        work = Path(scratch) / meta["name"]
        shutil.copytree(chart_dir, work)
        (work / "Chart.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
        _helm("package", str(work), "--destination", str(repository_dir))
    packaged = repository_dir / f"{meta['name']}-{meta['version']}.tgz"
    if not packaged.exists():
        raise RuntimeError(f"helm package did not write {packaged.name}")
    if index:
        index_repository(repository_dir)
    return packaged


def index_repository(repository_dir: Path) -> Path:
    """(Re)write ``index.yaml`` for every .tgz in the directory (``helm repo index``); the chart
    URLs are relative, so the repository works at any address."""
    _helm("repo", "index", str(repository_dir))
    return repository_dir / "index.yaml"


class _Handler(http.server.SimpleHTTPRequestHandler):
    server: _Server

    def _authorized(self) -> bool:
        expected = self.server.expected_authorization
        if expected is None:
            return True
        given = self.headers.get("Authorization", "")
        if hmac.compare_digest(given.encode(), expected.encode()):
            return True
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="charts"')
        self.send_header("Content-Length", "0")
        self.end_headers()
        return False

    def do_GET(self) -> None:
        if self._authorized():
            super().do_GET()

    def do_HEAD(self) -> None:
        if self._authorized():
            super().do_HEAD()

    def list_directory(self, path: str | Any) -> None:
        # A chart site has no directory listings.
        self.send_error(404)

    def log_message(self, format: str, *args: Any) -> None:
        self.server.requests.append(urllib.parse.unquote(self.path))


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    expected_authorization: str | None = None
    requests: list[str]


class ChartRepository:
    """An HTTP server for the Helm repositories under ``root`` (see the module docstring)."""

    def __init__(
        self,
        root: Path,
        *,
        auth: tuple[str, str] | None = None,
        port: int = 0,
        tls: tuple[str, str] | None = None,
        client_ca: str | None = None,
    ) -> None:
        """``tls``: (certificate PEM, key PEM) to serve HTTPS with; ``client_ca``: a CA (PEM) whose
        client certificates the server then demands."""
        self.root = root
        self.auth = auth
        self.port = port
        self.tls = tls
        self.client_ca = client_ca
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def requests(self) -> list[str]:
        """The paths asked for so far (what a test can check source-controller fetched)."""
        return list(self._server.requests) if self._server is not None else []

    def start(self) -> ChartRepository:
        self.root.mkdir(parents=True, exist_ok=True)
        server = _Server(("127.0.0.1", self.port), functools.partial(_Handler, directory=str(self.root)))
        server.requests = []
        if self.auth is not None:
            user, password = self.auth
            server.expected_authorization = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        if self.tls is not None:
            server.socket = _tls_context(self.tls, self.client_ca).wrap_socket(server.socket, server_side=True)
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(target=server.serve_forever, name="chart-repository", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> ChartRepository:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _tls_context(tls: tuple[str, str], client_ca: str | None) -> Any:
    import os
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory(prefix="phoebe-tls-") as scratch:  # test keys, not secrets
        cert, key = os.path.join(scratch, "tls.crt"), os.path.join(scratch, "tls.key")
        for path, pem in ((cert, tls[0]), (key, tls[1])):
            with open(path, "w") as handle:
                handle.write(pem)
        context.load_cert_chain(cert, key)
    if client_ca is not None:
        context.load_verify_locations(cadata=client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


@contextmanager
def chart_repository(root: Path, *, auth: tuple[str, str] | None = None) -> Iterator[str]:
    """Serve the Helm repositories under ``root`` on 127.0.0.1; yields the base URL
    (``http://127.0.0.1:PORT``). With ``auth=(user, password)`` every request needs that basic
    auth (401 otherwise), as a HelmRepository with ``secretRef`` sends it."""
    with ChartRepository(root, auth=auth) as server:
        yield server.base_url
