"""A Git server over smart HTTP on 127.0.0.1: ``git http-backend`` (git's own CGI) behind a
small Python HTTP server, so source-controller clones the way it clones from any Git host.

    server = GitServer(tmp_path / "git").start()
    repo = GitWorkTree.publish(work_dir, server, "home-ops")   # git init + commit + bare copy
    # GitRepository url: repo.url ("http://127.0.0.1:PORT/home-ops.git"), ref.branch: main
    (work_dir / "file.yaml").write_text(...)
    sha = repo.commit("change")                                   # commit and push
    server.stop(); server.start()                                 # same port again

Pushes go straight to the bare repository on disk; only clones and fetches go over HTTP. The
server may be stopped (the port then refuses connections) and started again on the same port.
"""

from __future__ import annotations

import http.server
import os
import shutil
import subprocess
import threading
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["GitServer", "GitWorkTree"]

_IDENTITY = {
    "GIT_AUTHOR_NAME": "phoebe tests",
    "GIT_AUTHOR_EMAIL": "tests@phoebe.invalid",
    "GIT_COMMITTER_NAME": "phoebe tests",
    "GIT_COMMITTER_EMAIL": "tests@phoebe.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
}


def git(*args: str, cwd: Path, stdin: bytes | None = None) -> str:
    result = subprocess.run(
        ["git", *args], cwd=cwd, input=stdin, capture_output=True, env=dict(os.environ, **_IDENTITY), check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {result.stderr.decode(errors='replace').strip()}")
    return result.stdout.decode().strip()


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._cgi(b"")

    def do_POST(self) -> None:
        self._cgi(self._body())

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _cgi(self, body: bytes) -> None:
        path, _, query = self.path.partition("?")
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(self.server.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": urllib.parse.unquote(path),
            "QUERY_STRING": query,
            "REQUEST_METHOD": self.command,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": self.client_address[0],
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
        }
        if self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        if self.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
        result = subprocess.run(["git", "http-backend"], input=body, capture_output=True, env=env, check=False)
        head, _, payload = result.stdout.partition(b"\r\n\r\n")
        if not _:
            head, _, payload = result.stdout.partition(b"\n\n")
        status = 200 if result.returncode == 0 else 500
        headers: list[tuple[str, str]] = []
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.strip().split()[0])
            elif name:
                headers.append((name.strip(), value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        # One request per connection: a kept-alive connection would outlive stop(), and a
        # stopped server must refuse the very next request.
        self.send_header("Connection", "close")
        self.close_connection = True
        self.end_headers()
        self.wfile.write(payload)
        self.server.requests.append(f"{self.command} {path}")

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    root: Path
    requests: list[str]


class GitServer:
    """Serves every bare repository under ``root`` (``root/NAME.git`` at ``/NAME.git``)."""

    def __init__(self, root: Path, port: int = 0) -> None:
        self.root = root
        self.port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._server is not None

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}.git"

    @property
    def requests(self) -> list[str]:
        """``METHOD /path`` of every request answered so far."""
        return list(self._server.requests) if self._server is not None else []

    def start(self) -> GitServer:
        if self._server is not None:
            return self
        self.root.mkdir(parents=True, exist_ok=True)
        _Server.allow_reuse_address = True
        server = _Server(("127.0.0.1", self.port), _Handler)
        server.root = self.root
        server.requests = []
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(target=server.serve_forever, name="git-server", daemon=True)
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

    def __enter__(self) -> GitServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class GitWorkTree:
    """A working directory whose commits are pushed to a bare repository the server serves."""

    directory: Path
    server: GitServer
    name: str
    branch: str = "main"

    @property
    def url(self) -> str:
        return self.server.url(self.name)

    @property
    def bare(self) -> Path:
        return self.server.root / f"{self.name}.git"

    @classmethod
    def publish(
        cls, directory: Path, server: GitServer, name: str, *, branch: str = "main", message: str = "initial"
    ) -> GitWorkTree:
        """Make ``directory`` a Git work tree (if it is not one), commit everything, and create
        ``NAME.git`` on the server from it."""
        tree = cls(directory, server, name, branch)
        if not (directory / ".git").exists():
            git("init", "-q", "-b", branch, cwd=directory)
        git("add", "-A", cwd=directory)
        git("commit", "-q", "--allow-empty", "-m", message, cwd=directory)
        if tree.bare.exists():
            shutil.rmtree(tree.bare)
        git("clone", "-q", "--bare", str(directory), str(tree.bare), cwd=directory)
        if "origin" in git("remote", cwd=directory).split():
            git("remote", "remove", "origin", cwd=directory)
        git("remote", "add", "origin", str(tree.bare), cwd=directory)
        return tree

    def commit(self, message: str = "change") -> str:
        """Commit every change in the work tree, push it, and return the new commit's sha."""
        git("add", "-A", cwd=self.directory)
        git("commit", "-q", "--allow-empty", "-m", message, cwd=self.directory)
        git("push", "-q", "origin", f"HEAD:{self.branch}", cwd=self.directory)
        return self.head()

    def head(self) -> str:
        return git("rev-parse", "HEAD", cwd=self.directory)

    def revision(self) -> str:
        """The revision source-controller reports for the branch: ``<branch>@sha1:<sha>``."""
        return f"{self.branch}@sha1:{self.head()}"
