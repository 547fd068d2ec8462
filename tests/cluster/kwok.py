"""A node stand-in: kwok answers the kubelet's ``containerLogs`` endpoint from files we write.

The control plane has no kubelet, so ``GET pods/{name}/log`` has nobody to ask. ``KwokNode``
runs kwok (``sigs.k8s.io/kwok`` v0.8.0, built from the Go module proxy and cached like the
control plane) as the kubelet of one fake Node, so the REAL API server proxies ``pods/log``
to it and kwok reads the container's log file: ``tailLines``, ``sinceTime``, ``timestamps``,
``limitBytes`` and ``follow`` are all the kubelet's own code (``k8s.io/cri-client/pkg/logs``).

How the pieces fit:

- **Node.** ``start()`` registers the Node itself *before* kwok runs, annotated
  ``phoebe.test/kwok-node=<name>`` (kwok's ``manageNodesWithAnnotationSelector``, so two
  KwokNodes on one plane never fight over a node), with its status addresses already set:
  InternalIP ``127.0.0.1`` *and* Hostname ``127.0.0.1``. The API server dials a node by
  ``--kubelet-preferred-address-types``, Hostname first; kwok's node stage would otherwise add
  ``Hostname: <node name>``, which does not resolve. ``daemonEndpoints.kubeletEndpoint.Port``
  is the relay's port (below; kwok is told it with ``--node-port``, which only feeds its node
  status), so a node re-registered on another port is re-pointed. kwok's node stage then
  marks it Ready (``start()`` waits for that and for /healthz through the relay).
- **Pods.** The node and pod Stages are the module's ``kustomize/stage/fast`` set (node
  initialise, node heartbeat with lease, pod ready/complete/delete), read straight from the
  module: they are plain YAML files listed by ``resources:`` in kustomization files, so no
  kustomize build is needed. A Pod created with ``spec.nodeName`` gets phase Running,
  Ready/ContainersReady/Initialized conditions, containerStatuses ready with ``startedAt``,
  ``hostIP`` 127.0.0.1 and a ``podIP`` from ``10.244.0.0/16``; a deleted Pod (graceful
  deletion, deletionTimestamp set) is finalised by kwok's pod-delete stage.
- **Logs of pods created at run time.** kwok maps a pod's containers to files with ``Logs``
  objects (kwok.x-k8s.io/v1alpha1), matched by the pod's namespace/name. Objects in kwok's
  config file are fixed at start, and ``ClusterLogs`` has no path template, so kwok runs with
  ``--enable-crds=Logs``: ``start()`` installs the ``logs.kwok.x-k8s.io`` CRD (from the module's
  ``kustomize/crd/bases``) and kwok watches Logs objects through the API server. ``run_pod()``
  creates a ``Logs`` object named like the Pod in the Pod's namespace pointing each container
  at ``<workdir>/logs/<namespace>_<pod>/<container>.log``, then the Pod, and returns once the
  Pod is Running and the API server's ``pods/log`` answers 200 for every container (kwok's
  informer has seen the Logs object). No restart of kwok is ever needed. Two kwok quirks are
  handled: its Logs informer lists about 1 s after a fresh CRD, so ``start()`` waits until a
  probe Logs object (in kube-system) is served; and it caches the Logs list by the
  informer's resource version, which can hide a just-created object until the next Logs
  event, so a Logs object not served within a second is touched (an annotation) to make one.
- **Leases.** The fast stages use node leases (``nodeLeaseDurationSeconds: 40``); each kwok
  run has a new holder id, so ``start()`` deletes the node's old Lease, or a restarted kwok
  would leave the node alone until it expired.
- **Files.** Each line is CRI format, ``<RFC 3339 nano time> <stream> F <text>`` (``cri_line``);
  a plain line makes the server answer ``unexpected stream type ""``. Appending to the file is
  all a writer needs to do: followers (``follow=true``) get the line at once (kwok uses the
  kubelet's fsnotify-based follower).
- **Streams end when the pod goes, as with a kubelet.** kwok never ends a ``follow`` stream on
  its own: it asks the container runtime whether the container still runs, has none, and
  takes "unavailable" for "running". A real kubelet ends the stream when the container
  stops, which is what a follower of a replaced pod sees. So the API server does not talk to
  kwok directly but to a small relay in this process (``_StreamRelay``, asyncio in a
  thread): it terminates TLS on the node's port, forwards each request to kwok's own port
  (kwok serves plain HTTP and HTTPS on one port) with ``Connection: close`` so one
  connection carries one request, and remembers which pod each ``containerLogs`` /
  ``exec`` / ``attach`` / ``portForward`` connection is for. ``delete_pod()`` (and
  ``end_streams()``) close those connections; the API server then ends its response to the
  client cleanly (it ignores the upstream read error), exactly like a finished stream.
- **TLS.** The relay and kwok serve a self-signed certificate made here (SANs 127.0.0.1,
  localhost, the node name; its own CA, ``serving_cert``). The API server needs no extra
  flag: without ``--kubelet-certificate-authority`` its kubelet client does not verify the
  kubelet's certificate, and nothing asks the API server for a client certificate.
- **Process.** kwok runs with ``HOME`` set to the work dir (it would otherwise also read
  ``~/.kwok/kwok.yaml``), the plane's admin kubeconfig, its output in ``<workdir>/kwok.log``,
  and ``PR_SET_PDEATHSIG`` like the control plane: it dies with the test process.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import functools
import os
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import yaml

from tests.cluster.api import Api, ApiError
from tests.cluster.build import ensure_program, kwok_program, log, module_dir
from tests.cluster.controlplane import ControlPlane, _die_with_parent, _stop_process, free_port

KWOK_MODULE = "sigs.k8s.io/kwok"
KWOK_GROUP_VERSION = "kwok.x-k8s.io/v1alpha1"
LOGS_CRD_FILE = "kustomize/crd/bases/kwok.x-k8s.io_logs.yaml"
STAGES_DIR = "kustomize/stage/fast"
NODE_ANNOTATION = "phoebe.test/kwok-node"
RESYNC_ANNOTATION = "phoebe.test/kwok-resync"
PROBE_NAMESPACE = "kube-system"
NODE_IP = "127.0.0.1"
POD_CIDR = "10.244.0.0/16"
START_TIMEOUT = 60.0
POD_TIMEOUT = 30.0


def cri_line(text: str, stream: str = "stderr", at: datetime.datetime | None = None) -> str:
    """One or more CRI log lines for ``text`` (one per line of it), each ending in a newline.

    ``<RFC 3339 nano time> <stream> F <text>``; the kubelet (and kwok) parse exactly this.
    """
    if stream not in ("stdout", "stderr"):
        raise ValueError(f"stream must be stdout or stderr, not {stream!r}")
    moment = (at or datetime.datetime.now(datetime.UTC)).astimezone(datetime.UTC)
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"
    lines = text.split("\n") if text else [""]
    if len(lines) > 1 and lines[-1] == "":
        lines.pop()
    return "".join(f"{stamp} {stream} F {line}\n" for line in lines)


def kwok_version() -> str:
    return kwok_program().version()


def _kustomize_resources(directory: Path) -> Iterator[Path]:
    """The YAML files a kustomization lists under ``resources:``, depth first.

    The kwok stage kustomizations are only ``resources:`` lists; anything else (patches,
    generators) would need a real kustomize build, so it is refused rather than ignored.
    """
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unsupported = set(kustomization) - {"apiVersion", "kind", "resources"}
    if unsupported:
        raise RuntimeError(f"{directory}/kustomization.yaml uses {sorted(unsupported)}: needs a kustomize build")
    for entry in kustomization.get("resources") or []:
        path = (directory / entry).resolve()
        if path.is_dir():
            yield from _kustomize_resources(path)
        else:
            yield path


def load_stages(kwok_dir: Path) -> list[dict[str, Any]]:
    """kwok's ``fast`` Stages (node initialise + heartbeat with lease, pod ready/complete/delete)."""
    stages: list[dict[str, Any]] = []
    for path in _kustomize_resources(kwok_dir / STAGES_DIR):
        stages.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    if not stages:
        raise RuntimeError(f"no Stages under {kwok_dir / STAGES_DIR}")
    return stages


def write_serving_cert(directory: Path, hosts: tuple[str, ...]) -> tuple[Path, Path]:
    """A self-signed serving certificate (its own CA) for kwok's kubelet-like server."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "phoebe-kwok-kubelet")])
    sans: list[x509.GeneralName] = []
    for host in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "kubelet.crt", directory / "kubelet.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_path.chmod(0o600)
    return cert_path, key_path


def install_logs_crd(api: Api, kwok_dir: Path) -> None:
    """The ``Logs`` CRD kwok watches with ``--enable-crds=Logs`` (idempotent)."""
    docs = [doc for doc in yaml.safe_load_all((kwok_dir / LOGS_CRD_FILE).read_text()) if doc]
    for doc in docs:
        api.apply(doc, manager="phoebe-kwok")
    api.wait_established([doc["metadata"]["name"] for doc in docs])


STREAM_PATHS = frozenset({"containerLogs", "exec", "attach", "portForward"})
HEAD_LIMIT = 64 * 1024


def _rewrite_head(head: bytes) -> tuple[bytes, tuple[str, str] | None]:
    """Force ``Connection: close`` (one request per connection) unless it is an upgrade.

    Returns the head to forward and the (namespace, pod) a per-pod request is for.
    """
    lines = head.rstrip(b"\r\n").split(b"\r\n")
    request_line, headers = lines[0], lines[1:]
    key = None
    parts = request_line.split(b" ")
    if len(parts) == 3:
        segments = [unquote(s) for s in urlsplit(parts[1].decode("latin-1")).path.split("/")]
        if len(segments) >= 4 and segments[1] in STREAM_PATHS:
            key = (segments[2], segments[3])
    names = {h.split(b":", 1)[0].strip().lower() for h in headers}
    if b"upgrade" not in names:
        headers = [h for h in headers if h.split(b":", 1)[0].strip().lower() not in (b"connection", b"keep-alive")]
        headers.append(b"Connection: close")
    return b"\r\n".join([request_line, *headers]) + b"\r\n\r\n", key


class _StreamRelay:
    """The node's kubelet port: TLS in front of kwok, able to end a pod's streams.

    Runs an asyncio loop in a daemon thread of the test process.
    """

    def __init__(self, port: int, backend_port: int, cert: Path, key: Path) -> None:
        self.port = port
        self.backend_port = backend_port
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(str(cert), str(key))
        self.context.set_alpn_protocols(["http/1.1"])  # no HTTP/2: one request per connection
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"kwok-relay-{port}", daemon=True)
        self._server: asyncio.Server | None = None
        self._streams: dict[tuple[str, str], set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(timeout=10)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._serve, NODE_IP, self.port, ssl=self.context, limit=HEAD_LIMIT)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        backend: asyncio.StreamWriter | None = None
        key = None
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=30)
            head, key = _rewrite_head(head)
            backend_reader, backend = await asyncio.open_connection(NODE_IP, self.backend_port)
            pair = (writer, backend)
            if key:
                self._streams.setdefault(key, set()).add(pair)
            backend.write(head)
            pipes = {
                asyncio.ensure_future(_pipe(reader, backend)),
                asyncio.ensure_future(_pipe(backend_reader, writer)),
            }
            _, pending = await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
            for pipe in pending:
                pipe.cancel()
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ssl.SSLError):
            pass
        finally:
            if key and key in self._streams:
                self._streams[key] = {p for p in self._streams[key] if p[0] is not writer}
                if not self._streams[key]:
                    del self._streams[key]
            for side in (backend, writer):
                if side is not None:
                    side.close()
            self._tasks.discard(task)

    def end_streams(self, namespace: str, pod: str) -> int:
        """Close the connections serving this pod's logs/exec/attach; returns how many."""

        def close() -> int:
            pairs = self._streams.pop((namespace, pod), set())
            for client, backend in pairs:
                backend.close()
                client.close()
            return len(pairs)

        async def run() -> int:
            return close()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=10)

    def open_streams(self, namespace: str, pod: str) -> int:
        async def count() -> int:
            return len(self._streams.get((namespace, pod), ()))

        return asyncio.run_coroutine_threadsafe(count(), self._loop).result(timeout=10)

    def stop(self) -> None:
        if not self._thread.is_alive():
            self._loop.close()
            return

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            for pairs in self._streams.values():
                for client, backend in pairs:
                    backend.close()
                    client.close()
            self._streams.clear()
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.wait(list(self._tasks), timeout=5)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, ssl.SSLError):
        while chunk := await source.read(64 * 1024):
            sink.write(chunk)
            await sink.drain()


class KwokNode:
    """One fake Node, served by one kwok process, whose pods' logs are files under ``workdir``."""

    def __init__(self, plane: ControlPlane, workdir: Path, node_name: str = "phoebe-node") -> None:
        self.plane = plane
        self.workdir = Path(workdir)
        self.node_name = node_name
        self.port = free_port()  # the node's kubelet port: the relay
        self.kwok_port = free_port()  # kwok's own server, behind the relay
        self.api = Api(plane.server, plane.admin_token, plane.ca_file)
        self.process: subprocess.Popen[bytes] | None = None
        self.relay: _StreamRelay | None = None
        self.serving_cert: Path | None = None
        self.timings: dict[str, float] = {}

    # --- life cycle ------------------------------------------------------------------------
    @property
    def logs_root(self) -> Path:
        return self.workdir / "logs"

    @property
    def log_path(self) -> Path:
        """kwok's own output."""
        return self.workdir / "kwok.log"

    def start(self) -> KwokNode:
        if self.process is not None:
            raise RuntimeError(f"kwok for {self.node_name} is already running")
        started = time.monotonic()
        binary = ensure_program(kwok_program())
        kwok_dir = module_dir(KWOK_MODULE, kwok_version())
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.logs_root.mkdir(exist_ok=True)
        try:
            install_logs_crd(self.api, kwok_dir)
            self.serving_cert, key = write_serving_cert(self.workdir / "pki", (NODE_IP, "localhost", self.node_name))
            config = self.workdir / "kwok.yaml"
            config.write_text(yaml.safe_dump_all([self._configuration(), *load_stages(kwok_dir)], sort_keys=False))
            self._register_node()
            self.relay = _StreamRelay(self.port, self.kwok_port, self.serving_cert, key)
            self.relay.start()
            self._spawn(binary, config, self.serving_cert, key)
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        self.timings["start"] = time.monotonic() - started
        log(f"kwok node {self.node_name} ready on {NODE_IP}:{self.port} in {self.timings['start']:.1f}s")
        return self

    def _configuration(self) -> dict[str, Any]:
        return {
            "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
            "kind": "KwokConfiguration",
            "options": {
                "cidr": POD_CIDR,
                "nodeIP": NODE_IP,
                "manageNodesWithAnnotationSelector": f"{NODE_ANNOTATION}={self.node_name}",
                "enableDebuggingHandlers": True,
                "enableProfilingHandler": False,
                "enableCRDs": ["Logs"],
                "podPlayStageParallelism": 4,
                "nodePlayStageParallelism": 1,
                "nodeLeaseParallelism": 1,
                "nodeLeaseDurationSeconds": 40,
                "podsOnNodeSyncParallelism": 1,
            },
        }

    def _register_node(self) -> None:
        """Create (or re-point) the Node before kwok runs, with addresses the API server can dial."""
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.node_name,
                "annotations": {NODE_ANNOTATION: self.node_name, "node.alpha.kubernetes.io/ttl": "0"},
                "labels": {
                    "kubernetes.io/hostname": self.node_name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "type": "kwok",
                },
            },
            "spec": {},
        }
        status = {
            "addresses": [{"type": "InternalIP", "address": NODE_IP}, {"type": "Hostname", "address": NODE_IP}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.port}},
            # Not Ready until this kwok says so (kwok's node-initialize stage), also on a restart.
            "conditions": [],
        }
        # A lease left by an earlier kwok (each run has a new holder id) would keep this one
        # off the node until it expires (40 s).
        self.api.delete(
            {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.node_name, "namespace": "kube-node-lease"},
            }
        )
        existing = self.api.get_or_none("v1", "Node", None, self.node_name)
        if existing is None:
            node["status"] = status
            self.api.create(node)
        else:
            self.api.apply(node, manager="phoebe-kwok")
            self.api.patch_status(existing, status, manager="phoebe-kwok")

    def _spawn(self, binary: Path, config: Path, cert: Path, key: Path) -> None:
        command = [
            str(binary),
            "--config",
            str(config),
            "--kubeconfig",
            str(self.plane.kubeconfig),
            "--server-address",
            f"{NODE_IP}:{self.kwok_port}",
            "--node-port",
            str(self.port),
            "--tls-cert-file",
            str(cert),
            "--tls-private-key-file",
            str(key),
        ]
        env = {**os.environ, "HOME": str(self.workdir)}  # kwok also reads ~/.kwok/kwok.yaml
        with open(self.log_path, "wb") as output:
            self.process = subprocess.Popen(
                command,
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.workdir,
                env=env,
                start_new_session=True,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - dies with the test process
            )
        (self.workdir / "kwok.pid").write_text(str(self.process.pid))

    def _check_running(self) -> None:
        if self.process is None:
            raise RuntimeError("kwok is not started")
        if self.process.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"kwok exited with {self.process.returncode}:\n{tail}")

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        context = ssl.create_default_context(cafile=str(self.serving_cert))
        last = "no answer"
        healthy = False
        while time.monotonic() < deadline:
            self._check_running()
            if not healthy:
                try:
                    answer = httpx.get(f"https://{NODE_IP}:{self.port}/healthz", verify=context, timeout=2)
                    healthy = answer.status_code == 200
                    last = f"/healthz {answer.status_code} {answer.text[:100]}"
                except httpx.HTTPError as error:
                    last = f"/healthz {error}"
            if healthy:
                node = self.api.get("v1", "Node", None, self.node_name)
                if node_ready(node):
                    self._wait_logs_synced(deadline)
                    return
                last = f"node {self.node_name} not Ready yet"
            time.sleep(0.05)
        raise RuntimeError(f"kwok not ready after {START_TIMEOUT:.0f}s: {last}")

    def stop(self) -> None:
        """Stop kwok (SIGTERM, then SIGKILL after 5 s) and the relay. The Node and pods stay."""
        if self.process is not None:
            _stop_process(self.process)
            self.process = None
        if self.relay is not None:
            self.relay.stop()
            self.relay = None
        with contextlib.suppress(FileNotFoundError):
            (self.workdir / "kwok.pid").unlink()

    def close(self) -> None:
        self.stop()
        self.api.close()

    def __enter__(self) -> KwokNode:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- pods ------------------------------------------------------------------------------
    def log_dir(self, namespace: str, pod: str) -> Path:
        return self.logs_root / f"{namespace}_{pod}"

    def log_file(self, namespace: str, pod: str, container: str = "manager") -> Path:
        return self.log_dir(namespace, pod) / f"{container}.log"

    def run_pod(
        self,
        namespace: str,
        name: str,
        *,
        labels: Mapping[str, str] | None = None,
        containers: tuple[str, ...] = ("manager",),
        owner: Mapping[str, Any] | None = None,
        image: str | None = None,
        timeout: float = POD_TIMEOUT,
    ) -> Path:
        """Create a Pod on this node and its ``Logs`` mapping; return when it runs and its logs answer.

        Each container's log file starts empty (a pod re-created with an old name starts over).
        Returns the pod's log directory; ``log_file()`` names each container's file.
        """
        self._check_running()
        started = time.monotonic()
        directory = self.log_dir(namespace, name)
        directory.mkdir(parents=True, exist_ok=True)
        for container in containers:
            self.log_file(namespace, name, container).write_bytes(b"")
        self.api.apply(self._logs_object(namespace, name, containers), manager="phoebe-kwok")
        metadata: dict[str, Any] = {"name": name, "namespace": namespace}
        if labels:
            metadata["labels"] = dict(labels)
        if owner:
            metadata["ownerReferences"] = [dict(owner)]
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": metadata,
            "spec": {
                "nodeName": self.node_name,
                "containers": [
                    {"name": container, "image": image or f"registry.example.invalid/{container}:v0.0.0"}
                    for container in containers
                ],
                "terminationGracePeriodSeconds": 10,
            },
        }
        self.api.create(pod)
        self._wait_pod_running(namespace, name, containers, time.monotonic() + timeout)
        self._wait_logs_served(namespace, name, containers, time.monotonic() + timeout)
        self.timings[f"pod {namespace}/{name}"] = time.monotonic() - started
        return directory

    def _logs_object(self, namespace: str, name: str, containers: tuple[str, ...]) -> dict[str, Any]:
        return {
            "apiVersion": KWOK_GROUP_VERSION,
            "kind": "Logs",
            "metadata": {"name": name, "namespace": namespace, "labels": {NODE_ANNOTATION: self.node_name}},
            "spec": {
                "logs": [
                    {
                        "containers": [container],
                        "logsFile": str(self.log_file(namespace, name, container)),
                        "previousLogsFile": str(self.log_dir(namespace, name) / f"{container}.previous.log"),
                        "follow": True,
                    }
                    for container in containers
                ]
            },
        }

    def _wait_pod_running(self, namespace: str, name: str, containers: tuple[str, ...], deadline: float) -> None:
        last: dict[str, Any] = {}
        while time.monotonic() < deadline:
            self._check_running()
            last = self.api.get("v1", "Pod", namespace, name)
            if pod_running(last, containers):
                return
            time.sleep(0.05)
        raise TimeoutError(f"pod {namespace}/{name} not Running on {self.node_name}: {last.get('status')}")

    def _wait_logs_served(self, namespace: str, name: str, containers: tuple[str, ...], deadline: float) -> None:
        """Until kwok's watch has the Logs object, the API server answers 400 "no logs found"."""
        path = f"/api/v1/namespaces/{namespace}/pods/{name}/log"
        for container in containers:
            params = {"container": container, "limitBytes": "1"}
            self._wait_served(namespace, name, functools.partial(self.api.http.get, path, params=params), deadline)

    def _wait_served(self, namespace: str, name: str, request: Callable[[], httpx.Response], deadline: float) -> None:
        """Poll ``request`` until 200, nudging kwok's Logs cache every second.

        kwok caches its Logs list keyed by the informer's last resource version, which the
        reflector sets *before* the new object reaches the informer's store: a log request in
        that instant caches the list without it until the next Logs event. Touching the Logs
        object makes that next event.
        """
        last = ""
        nudge = time.monotonic() + 1
        nudges = 0
        while True:
            self._check_running()
            response = request()
            if response.status_code == 200:
                return
            last = f"{response.status_code} {response.text[:300]}"
            now = time.monotonic()
            if now > deadline:
                raise TimeoutError(f"logs of {namespace}/{name} not served by kwok: {last}")
            if now > nudge:
                nudges += 1
                path = self.api.path(KWOK_GROUP_VERSION, "Logs", namespace, name)
                self.api.merge_patch(path, {"metadata": {"annotations": {RESYNC_ANNOTATION: str(nudges)}}})
                nudge = now + 1
            time.sleep(0.05)

    def _wait_logs_synced(self, deadline: float) -> None:
        """kwok's Logs informer has listed (about 1 s after start): a probe Logs object answers."""
        probe = f"phoebe-kwok-probe-{self.node_name}"
        probe_file = self.logs_root / "probe.log"
        probe_file.write_bytes(b"")
        obj = {
            "apiVersion": KWOK_GROUP_VERSION,
            "kind": "Logs",
            "metadata": {"name": probe, "namespace": PROBE_NAMESPACE},
            "spec": {"logs": [{"containers": ["probe"], "logsFile": str(probe_file)}]},
        }
        self.api.apply(obj, manager="phoebe-kwok")
        context = ssl.create_default_context(cafile=str(self.serving_cert))
        with httpx.Client(base_url=f"https://{NODE_IP}:{self.kwok_port}", verify=context, timeout=5) as kwok:
            self._wait_served(
                PROBE_NAMESPACE,
                probe,
                lambda: kwok.get(f"/containerLogs/{PROBE_NAMESPACE}/{probe}/probe"),
                deadline,
            )
        self.api.delete(obj)

    def write_log(
        self,
        namespace: str,
        pod: str,
        line: str,
        *,
        container: str = "manager",
        stream: str = "stderr",
        at: datetime.datetime | None = None,
    ) -> None:
        """Append one CRI-format line (several if ``line`` has newlines) to the container's file."""
        with open(self.log_file(namespace, pod, container), "a", encoding="utf-8") as handle:
            handle.write(cri_line(line, stream, at))

    def end_streams(self, namespace: str, pod: str) -> int:
        """End the pod's open log (and exec/attach) streams, as when its containers stop."""
        return self.relay.end_streams(namespace, pod) if self.relay else 0

    def open_streams(self, namespace: str, pod: str) -> int:
        """How many log (exec/attach) connections the API server holds open to this pod."""
        return self.relay.open_streams(namespace, pod) if self.relay else 0

    def delete_pod(self, namespace: str, name: str, timeout: float = POD_TIMEOUT) -> None:
        """Delete the Pod as a kubelet would see it go: graceful delete, its streams end, gone.

        Followers of the pod's logs see their stream end right after the DELETE (the pod is
        Terminating then, as when a kubelet stops the containers); this returns once the Pod
        is gone from the API (kwok's pod-delete stage finalises it). Its Logs object goes too.
        """
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace}}
        self.api.delete(pod)
        self.end_streams(namespace, name)
        deadline = time.monotonic() + timeout
        while self.api.get_or_none("v1", "Pod", namespace, name) is not None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"pod {namespace}/{name} still there after {timeout:.0f}s")
            self._check_running()
            time.sleep(0.05)
        with contextlib.suppress(ApiError):
            self.api.delete({"apiVersion": KWOK_GROUP_VERSION, "kind": "Logs", "metadata": pod["metadata"]})


def node_ready(node: Mapping[str, Any]) -> bool:
    conditions = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def pod_running(pod: Mapping[str, Any], containers: tuple[str, ...]) -> bool:
    status = pod.get("status") or {}
    if status.get("phase") != "Running" or not status.get("podIP"):
        return False
    statuses = {s.get("name"): s for s in status.get("containerStatuses") or []}
    return all(
        (statuses.get(c) or {}).get("ready") and ((statuses.get(c) or {}).get("state") or {}).get("running")
        for c in containers
    )


def port_open(port: int, host: str = NODE_IP) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0
