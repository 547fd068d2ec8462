"""Start and stop a real etcd + kube-apiserver on 127.0.0.1 with RBAC and an admin token.

No controller-manager, scheduler or kubelet runs: a Deployment never gets Pods by itself, a
deleted namespace stays Terminating, ownerReferences do not cascade. Tests create what they
need (Pods, status) themselves.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

from tests.cluster.build import ControlPlaneBinaries, ensure_control_plane_binaries, log

ADMIN_USER = "phoebe-admin"
CONTEXT_NAME = "phoebe-local"
READY_TIMEOUT = 90.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    # If the test process is killed outright, the kernel stops the servers too.
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGKILL)


def _write_service_account_key(path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )


def _name(common_name: str, organizations: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


def _certificate(subject, issuer, public_key, signing_key, *, ca: bool) -> bytes:  # type: ignore[no-untyped-def]
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    return builder.sign(signing_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def _key_pem(key) -> bytes:  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def write_client_ca(directory: Path) -> tuple[Path, Path]:
    """A CA the API server trusts for client certificates (--client-ca-file)."""
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    name = _name("phoebe-test-client-ca")
    cert_path, key_path = directory / "client-ca.crt", directory / "client-ca.key"
    cert_path.write_bytes(_certificate(name, name, key.public_key(), key, ca=True))
    key_path.write_bytes(_key_pem(key))
    return cert_path, key_path


def client_certificate(ca_cert: Path, ca_key: Path, user: str, groups: tuple[str, ...] = ()) -> tuple[bytes, bytes]:
    """(certificate PEM, key PEM) for ``user`` in ``groups``, signed by the client CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    issuer = x509.load_pem_x509_certificate(ca_cert.read_bytes())
    signing_key = serialization.load_pem_private_key(ca_key.read_bytes(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _certificate(_name(user, groups), issuer.subject, key.public_key(), signing_key, ca=False)
    return cert, _key_pem(key)


def kubeconfig_document(
    server: str, ca_file: Path, token: str, *, context: str = CONTEXT_NAME, user: str = ADMIN_USER
) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": context, "cluster": {"server": server, "certificate-authority": str(ca_file)}}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": user}}],
        "current-context": context,
    }


@dataclass
class ControlPlane:
    """One etcd and one kube-apiserver. ``start()`` returns when /readyz answers ok."""

    workdir: Path
    binaries: ControlPlaneBinaries | None = None
    attached: bool = True  # children die with this process; False for `cluster up`
    etcd_port: int = field(default_factory=free_port)
    etcd_peer_port: int = field(default_factory=free_port)
    apiserver_port: int = field(default_factory=free_port)
    admin_token: str = field(default_factory=lambda: secrets.token_hex(16))
    _processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.apiserver_port}"

    @property
    def ca_file(self) -> Path:
        # The self-signed serving certificate carries its CA in the same file.
        return self.workdir / "certs" / "apiserver.crt"

    def client_certificate(self, user: str, groups: tuple[str, ...] = ()) -> tuple[bytes, bytes]:
        return client_certificate(self.workdir / "client-ca.crt", self.workdir / "client-ca.key", user, groups)

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    def start(self) -> ControlPlane:
        binaries = self.binaries or ensure_control_plane_binaries()
        self.binaries = binaries
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "certs").mkdir(exist_ok=True)
        key = self.workdir / "service-account.key"
        _write_service_account_key(key)
        client_ca, _ = write_client_ca(self.workdir)
        tokens = self.workdir / "tokens.csv"
        tokens.write_text(f'{self.admin_token},{ADMIN_USER},{ADMIN_USER},"system:masters"\n')
        started = time.monotonic()
        try:
            self._spawn(
                "etcd",
                [
                    str(binaries.etcd),
                    "--data-dir",
                    str(self.workdir / "etcd"),
                    "--listen-client-urls",
                    f"http://127.0.0.1:{self.etcd_port}",
                    "--advertise-client-urls",
                    f"http://127.0.0.1:{self.etcd_port}",
                    "--listen-peer-urls",
                    f"http://127.0.0.1:{self.etcd_peer_port}",
                    "--initial-advertise-peer-urls",
                    f"http://127.0.0.1:{self.etcd_peer_port}",
                    "--initial-cluster",
                    f"default=http://127.0.0.1:{self.etcd_peer_port}",
                    "--unsafe-no-fsync",
                    "--log-level",
                    "error",
                ],
            )
            self._spawn(
                "kube-apiserver",
                [
                    str(binaries.kube_apiserver),
                    "--etcd-servers",
                    f"http://127.0.0.1:{self.etcd_port}",
                    "--bind-address",
                    "127.0.0.1",
                    "--advertise-address",
                    "127.0.0.1",
                    "--secure-port",
                    str(self.apiserver_port),
                    "--cert-dir",
                    str(self.workdir / "certs"),
                    "--service-cluster-ip-range",
                    "10.0.0.0/24",
                    "--service-account-issuer",
                    self.server,
                    "--service-account-key-file",
                    str(key),
                    "--service-account-signing-key-file",
                    str(key),
                    "--authorization-mode",
                    "RBAC",
                    "--token-auth-file",
                    str(tokens),
                    "--client-ca-file",
                    str(client_ca),
                    "--allow-privileged=true",
                    "--disable-admission-plugins",
                    "ServiceAccount",
                ],
            )
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        self.kubeconfig.write_text(yaml.safe_dump(kubeconfig_document(self.server, self.ca_file, self.admin_token)))
        log(f"control plane ready at {self.server} in {time.monotonic() - started:.1f}s")
        return self

    def _spawn(self, name: str, command: list[str]) -> None:
        log_file = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115 - lives as long as the process
        process = subprocess.Popen(
            command,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.workdir,
            start_new_session=True,
            # Called before any helper thread starts its work; prctl is async-signal-safe.
            preexec_fn=_die_with_parent if self.attached else None,  # noqa: PLW1509
        )
        log_file.close()
        self._processes.append(process)
        (self.workdir / f"{name}.pid").write_text(str(process.pid))

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        headers = {"Authorization": f"Bearer {self.admin_token}"}
        last = "no answer"
        while time.monotonic() < deadline:
            for process in self._processes:
                if process.poll() is not None:
                    name = Path(process.args[0]).name  # type: ignore[index]
                    tail = (self.workdir / f"{name}.log").read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"{name} exited with {process.returncode} while starting:\n{tail}")
            if self.ca_file.exists():
                try:
                    answer = httpx.get(
                        f"{self.server}/readyz",
                        headers=headers,
                        verify=ssl.create_default_context(cafile=str(self.ca_file)),
                        timeout=2,
                    )
                    if answer.status_code == 200:
                        return
                    last = f"{answer.status_code} {answer.text[:200]}"
                except httpx.HTTPError as exc:
                    last = str(exc)
            time.sleep(0.1)
        raise RuntimeError(f"kube-apiserver not ready after {READY_TIMEOUT:.0f}s: {last}")

    def stop(self) -> None:
        """Stop the API server first (it lingers on SIGTERM), then etcd; no process left behind."""
        for process in reversed(self._processes):
            _stop_process(process)
        self._processes.clear()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def _stop_process(process: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        process.wait(timeout=10)


def stop_pids(workdir: Path) -> list[str]:
    """Stop servers started detached (``cluster up``) from their pid files; returns what was stopped."""
    stopped = []
    for name in ("kube-apiserver", "etcd"):
        pid_file = workdir / f"{name}.pid"
        if not pid_file.exists():
            continue
        pid = int(pid_file.read_text())
        if _signal_and_wait(pid, name):
            stopped.append(f"{name} ({pid})")
        pid_file.unlink()
    return stopped


def _signal_and_wait(pid: int, name: str) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
    except OSError:
        return False
    if Path(cmdline).name != name:  # the pid was reused by something else
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        time.sleep(0.05)
    if Path(f"/proc/{pid}").exists():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return True


def new_workdir(prefix: str = "phoebe-cp-") -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))
