"""The CNCF distribution registry (``github.com/distribution/distribution/v3``, built from the Go
module proxy and cached like the controllers) on 127.0.0.1, and ``helm push`` into it.

It makes OCIRepository and HelmRepository ``type: oci`` real: source-controller pulls from it
over plain HTTP (those objects need ``spec.insecure: true``).

    from tests.cluster.registry import oci_registry, helm_push
    from tests.support.chartrepo import CHARTS_DIR, package_chart

    with oci_registry(tmp_path / "registry", auth=("user", "secret")) as host:   # "127.0.0.1:PORT"
        chart = package_chart(CHARTS_DIR / "app-template", tmp_path / "out", version="3.7.3")
        digest = helm_push(chart, f"oci://{host}/bjw-s-labs/helm", auth=("user", "secret"))
        # OCIRepository url: oci://{host}/bjw-s-labs/helm/app-template, ref.tag: 3.7.3

Without ``auth`` anyone may pull and push. With it, the registry checks an htpasswd file (bcrypt,
made here with the ``bcrypt`` package) and answers 401 otherwise; a source object then needs a
``secretRef`` to a ``kubernetes.io/dockerconfigjson`` Secret (OCIRepository) or a basic-auth
Secret (HelmRepository ``type: oci``). ``Registry`` is the same for code that starts and stops
it explicitly; ``restart()`` brings it back on the same port with the same storage.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import yaml

from tests.cluster.build import BuildError, ensure_program, helm_program, registry_program
from tests.cluster.controlplane import _die_with_parent, free_port

__all__ = ["Registry", "helm_push", "oci_registry", "registry_program"]


def _htpasswd_line(user: str, password: str) -> str:
    import bcrypt

    return f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()}\n"


class Registry:
    """A distribution registry process with its storage under ``workdir``."""

    def __init__(
        self, workdir: Path, *, auth: tuple[str, str] | None = None, port: int = 0, tls: tuple[str, str] | None = None
    ) -> None:
        """``tls``: (certificate PEM, key PEM) to serve HTTPS with (test keys, written in ``workdir``)."""
        self.workdir = workdir
        self.auth = auth
        self.tls = tls
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.workdir / "registry.log"

    def _config(self) -> Path:
        config: dict[str, object] = {
            "version": 0.1,
            "log": {"level": "info", "formatter": "text", "accesslog": {"disabled": True}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.workdir / "storage")},
                "delete": {"enabled": True},
                "maintenance": {"uploadpurging": {"enabled": False}},
            },
            "http": {"addr": self.host, "headers": {"X-Content-Type-Options": ["nosniff"]}},
        }
        if self.tls is not None:
            cert, key = self.workdir / "tls.crt", self.workdir / "tls.key"
            cert.write_text(self.tls[0])
            key.write_text(self.tls[1])
            config["http"]["tls"] = {"certificate": str(cert), "key": str(key)}  # type: ignore[index]
        if self.auth is not None:
            htpasswd = self.workdir / "htpasswd"
            htpasswd.write_text(_htpasswd_line(*self.auth))
            config["auth"] = {"htpasswd": {"realm": "phoebe-tests", "path": str(htpasswd)}}
        path = self.workdir / "config.yml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    def start(self, timeout: float = 30) -> Registry:
        binary = ensure_program(registry_program())
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self._config()
        # No tracing exporter: the registry would otherwise try to reach an OTLP collector.
        env = dict(os.environ, OTEL_TRACES_EXPORTER="none", OTEL_SDK_DISABLED="true")
        with open(self.log_file, "ab") as output:
            self.process = subprocess.Popen(
                [str(binary), "serve", str(config)],
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - prctl only, before exec
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.log_file.read_text(errors="replace")[-2000:]
                raise BuildError(f"the registry exited at start ({self.process.returncode}):\n{tail}")
            try:
                # 200 open, 401 with auth: either way it answers the registry API.
                scheme = "https" if self.tls else "http"
                # readiness only: the test's client verifies the certificate, not this probe
                if httpx.get(f"{scheme}://{self.host}/v2/", timeout=2, verify=False).status_code in (200, 401):
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise BuildError(f"the registry did not answer on {self.host} within {timeout:.0f}s")

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def restart(self) -> Registry:
        self.stop()
        return self.start()

    def __enter__(self) -> Registry:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def oci_registry(workdir: Path | None = None, *, auth: tuple[str, str] | None = None) -> Iterator[str]:
    """A registry on a free 127.0.0.1 port, storage in ``workdir`` (a temp dir, removed after,
    when None); yields ``"127.0.0.1:PORT"``."""
    scratch = None
    if workdir is None:
        scratch = tempfile.mkdtemp(prefix="phoebe-registry-")
        workdir = Path(scratch)
    try:
        with Registry(workdir, auth=auth) as registry:
            yield registry.host
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def helm_push(chart: Path, remote: str, *, auth: tuple[str, str] | None = None) -> str:
    """``helm push CHART.tgz oci://HOST/PATH --plain-http`` (logging in first when ``auth`` is
    given), with helm's config, cache and registry credentials in a temp dir that is removed
    after. Returns the pushed manifest digest (``sha256:...``); the tag is the chart version."""
    helm = str(ensure_program(helm_program()))
    host = remote.removeprefix("oci://").split("/", 1)[0]
    with tempfile.TemporaryDirectory(prefix="phoebe-helm-") as home:
        env = dict(
            os.environ,
            HELM_CONFIG_HOME=f"{home}/config",
            HELM_CACHE_HOME=f"{home}/cache",
            HELM_DATA_HOME=f"{home}/data",
            HELM_REGISTRY_CONFIG=f"{home}/config/registry.json",
        )
        if auth is not None:
            user, password = auth
            login = subprocess.run(
                [helm, "registry", "login", host, "--plain-http", "--username", user, "--password-stdin"],
                input=password,
                capture_output=True,
                text=True,
                env=env,
                check=False,
                timeout=60,
            )
            if login.returncode != 0:
                raise RuntimeError(f"helm registry login {host} failed: {login.stderr.strip()}")
        pushed = subprocess.run(
            [helm, "push", str(chart), remote, "--plain-http"],
            capture_output=True,
            text=True,
            env=env,
            check=False,
            timeout=120,
        )
    if pushed.returncode != 0:
        raise RuntimeError(f"helm push {chart.name} to {remote} failed: {pushed.stderr.strip()}")
    match = re.search(r"Digest:\s*(sha256:[0-9a-f]{64})", pushed.stdout + pushed.stderr)
    if not match:
        raise RuntimeError(f"helm push printed no digest: {pushed.stdout.strip()} {pushed.stderr.strip()}")
    return match.group(1)
