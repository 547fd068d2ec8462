"""The kwok node stand-in: ``pods/log`` on the REAL API server returns the lines we write."""

from __future__ import annotations

import datetime
import secrets
import shutil
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cluster.api import Api
from tests.cluster.controlplane import ControlPlane, new_workdir
from tests.cluster.kwok import KwokNode, cri_line, port_open

pytestmark = pytest.mark.cluster

UTC = datetime.UTC


@pytest.fixture(scope="module")
def plane() -> Iterator[ControlPlane]:
    plane = ControlPlane(new_workdir("phoebe-kwok-")).start()
    try:
        yield plane
    finally:
        plane.remove()


@pytest.fixture(scope="module")
def node(plane: ControlPlane) -> Iterator[KwokNode]:
    node = KwokNode(plane, plane.workdir / "kwok").start()
    try:
        yield node
    finally:
        node.close()


@pytest.fixture(scope="module")
def api(plane: ControlPlane) -> Iterator[Api]:
    api = Api(plane.server, plane.admin_token, plane.ca_file)
    yield api
    api.close()


@pytest.fixture(scope="module")
def client(plane: ControlPlane) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=plane.server,
        headers={"Authorization": f"Bearer {plane.admin_token}"},
        verify=ssl.create_default_context(cafile=str(plane.ca_file)),
        timeout=30,
    ) as client:
        yield client


@pytest.fixture
def ns(api: Api) -> str:
    name = f"kwok-{secrets.token_hex(3)}"
    api.ensure_namespace(name)
    return name


def pod_log(client: httpx.Client, namespace: str, pod: str, **params: str) -> httpx.Response:
    return client.get(f"/api/v1/namespaces/{namespace}/pods/{pod}/log", params=params)


class Follower:
    """``follow=true`` through the API server in a thread; lines with the time they arrived."""

    def __init__(self, client: httpx.Client, namespace: str, pod: str, **params: str) -> None:
        self.lines: list[tuple[float, str]] = []
        self.ended = threading.Event()
        self.error: BaseException | None = None
        self._args = (client, f"/api/v1/namespaces/{namespace}/pods/{pod}/log", {"follow": "true", **params})
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        client, path, params = self._args
        try:
            with client.stream("GET", path, params=params, timeout=httpx.Timeout(30, read=None)) as response:
                response.raise_for_status()
                for line in response.iter_lines():
                    self.lines.append((time.monotonic(), line))
        except BaseException as error:  # noqa: BLE001 - reported by the test
            self.error = error
        finally:
            self.ended.set()

    def texts(self) -> list[str]:
        return [line for _, line in self.lines]

    def wait_for(self, count: int, timeout: float = 5) -> None:
        deadline = time.monotonic() + timeout
        while len(self.lines) < count and time.monotonic() < deadline and not self.ended.is_set():
            time.sleep(0.01)
        assert len(self.lines) >= count, (self.texts(), self.error)


def test_node_is_ready_on_the_relay_port(node: KwokNode, api: Api) -> None:
    obj = api.get("v1", "Node", None, node.node_name)
    conditions = {c["type"]: c["status"] for c in obj["status"]["conditions"]}
    assert conditions["Ready"] == "True"
    assert {"type": "InternalIP", "address": "127.0.0.1"} in obj["status"]["addresses"]
    assert obj["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"] == node.port
    assert obj["metadata"]["annotations"]["phoebe.test/kwok-node"] == node.node_name
    assert node.timings["start"] < 30


def test_pod_status_looks_real(node: KwokNode, api: Api, ns: str) -> None:
    owner = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "name": "source-controller-5d8f7c9b4d",
        "uid": "3f1e0a52-0d5c-4f0e-9a3c-6c1d7e8f9a0b",
        "controller": True,
        "blockOwnerDeletion": True,
    }
    labels = {"app": "source-controller", "pod-template-hash": "5d8f7c9b4d"}
    directory = node.run_pod(ns, "source-controller-5d8f7c9b4d-x2x7q", labels=labels, owner=owner)
    assert directory == node.log_file(ns, "source-controller-5d8f7c9b4d-x2x7q").parent
    assert node.log_file(ns, "source-controller-5d8f7c9b4d-x2x7q").exists()

    pod = api.get("v1", "Pod", ns, "source-controller-5d8f7c9b4d-x2x7q")
    assert pod["metadata"]["labels"] == labels
    assert pod["metadata"]["ownerReferences"] == [owner]
    assert pod["spec"]["nodeName"] == node.node_name
    status = pod["status"]
    assert status["phase"] == "Running"
    assert status["hostIP"] == "127.0.0.1"
    assert status["podIP"].startswith("10.244.")
    assert status["startTime"]
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions == {"Initialized": "True", "Ready": "True", "ContainersReady": "True"}
    [container] = status["containerStatuses"]
    assert container["name"] == "manager"
    assert container["ready"] is True
    assert container["restartCount"] == 0
    assert container["state"]["running"]["startedAt"]


def test_lines_in_order_and_tail_lines(node: KwokNode, client: httpx.Client, ns: str) -> None:
    node.run_pod(ns, "app")
    for number in range(1, 6):
        node.write_log(ns, "app", f"line {number}")

    answer = pod_log(client, ns, "app")
    assert answer.status_code == 200, answer.text
    assert answer.text == "".join(f"line {n}\n" for n in range(1, 6))

    assert pod_log(client, ns, "app", tailLines="2").text == "line 4\nline 5\n"
    assert pod_log(client, ns, "app", container="manager", tailLines="1").text == "line 5\n"


def test_since_time_and_timestamps(node: KwokNode, client: httpx.Client, ns: str) -> None:
    node.run_pod(ns, "app")
    now = datetime.datetime.now(UTC).replace(microsecond=0)
    stamps = [now - datetime.timedelta(seconds=s) for s in (30, 20, 10)]
    for index, at in enumerate(stamps):
        node.write_log(ns, "app", f"event {index}", at=at, stream="stdout" if index == 1 else "stderr")

    since = (now - datetime.timedelta(seconds=15)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert pod_log(client, ns, "app", sinceTime=since).text == "event 2\n"

    stamped = pod_log(client, ns, "app", timestamps="true").text.splitlines()
    assert [line.split(" ", 1)[1] for line in stamped] == ["event 0", "event 1", "event 2"]
    # The kubelet's fixed-width RFC 3339 nano format.
    assert [line.split(" ", 1)[0] for line in stamped] == [at.strftime("%Y-%m-%dT%H:%M:%S.000000000Z") for at in stamps]


def test_follow_gets_a_line_appended_by_another_process(node: KwokNode, client: httpx.Client, ns: str) -> None:
    node.run_pod(ns, "app")
    node.write_log(ns, "app", "before")
    follower = Follower(client, ns, "app")
    follower.wait_for(1)

    # What the process piping a real controller's stderr does: append CRI lines to the file.
    path = node.log_file(ns, "app")
    line = cri_line('{"level":"info","msg":"reconciliation finished"}')
    script = "import sys; f = open(sys.argv[1], 'a'); f.write(sys.argv[2]); f.flush()"
    appended = time.monotonic()
    subprocess.run([sys.executable, "-c", script, str(path), line], check=True)
    follower.wait_for(2, timeout=5)
    arrived, text = follower.lines[1]
    assert text == '{"level":"info","msg":"reconciliation finished"}'
    assert arrived - appended < 1.0

    node.write_log(ns, "app", "after")
    follower.wait_for(3)
    assert follower.texts() == ["before", '{"level":"info","msg":"reconciliation finished"}', "after"]
    assert not follower.ended.is_set()
    assert node.open_streams(ns, "app") == 1


def test_two_pods_and_two_containers_have_their_own_files(node: KwokNode, client: httpx.Client, ns: str) -> None:
    node.run_pod(ns, "one")
    node.run_pod(ns, "two", containers=("manager", "sidecar"))
    assert len({node.log_file(ns, "one"), node.log_file(ns, "two"), node.log_file(ns, "two", "sidecar")}) == 3

    node.write_log(ns, "one", "from one")
    node.write_log(ns, "two", "from two")
    node.write_log(ns, "two", "from the sidecar", container="sidecar")

    assert pod_log(client, ns, "one").text == "from one\n"
    assert pod_log(client, ns, "two", container="manager").text == "from two\n"
    assert pod_log(client, ns, "two", container="sidecar").text == "from the sidecar\n"
    # Two containers and none named: the API server asks which one, as with a real kubelet.
    assert pod_log(client, ns, "two").status_code == 400


def test_pod_replaced_mid_stream(node: KwokNode, client: httpx.Client, api: Api, ns: str) -> None:
    labels = {"app": "kustomize-controller"}
    node.run_pod(ns, "kustomize-controller-aaaaa", labels=labels)
    node.write_log(ns, "kustomize-controller-aaaaa", "old pod")
    follower = Follower(client, ns, "kustomize-controller-aaaaa")
    follower.wait_for(1)

    deleted = time.monotonic()
    node.delete_pod(ns, "kustomize-controller-aaaaa")
    # As when a kubelet stops the container: the stream ends, cleanly.
    assert follower.ended.wait(5)
    assert follower.error is None
    assert time.monotonic() - deleted < 5
    assert follower.texts() == ["old pod"]
    assert api.get_or_none("v1", "Pod", ns, "kustomize-controller-aaaaa") is None
    assert pod_log(client, ns, "kustomize-controller-aaaaa").status_code == 404

    node.run_pod(ns, "kustomize-controller-bbbbb", labels=labels)
    node.write_log(ns, "kustomize-controller-bbbbb", "new pod")
    assert pod_log(client, ns, "kustomize-controller-bbbbb").text == "new pod\n"
    pods = api.list("v1", "Pod", ns, labelSelector="app=kustomize-controller")
    assert [p["metadata"]["name"] for p in pods] == ["kustomize-controller-bbbbb"]

    # A pod re-created under an old name starts with an empty log.
    node.run_pod(ns, "kustomize-controller-aaaaa", labels=labels)
    assert pod_log(client, ns, "kustomize-controller-aaaaa").text == ""


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="no kubectl")
def test_kubectl_logs(node: KwokNode, plane: ControlPlane, ns: str) -> None:
    node.run_pod(ns, "app")
    for word in ("alpha", "beta", "gamma"):
        node.write_log(ns, "app", word)
    result = subprocess.run(
        ["kubectl", "--kubeconfig", str(plane.kubeconfig), "logs", "-n", ns, "app", "--tail", "2"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "beta\ngamma\n"


def test_cri_line_format() -> None:
    at = datetime.datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    assert cri_line("hello", at=at) == "2026-01-02T03:04:05.123456000Z stderr F hello\n"
    assert cri_line("out", "stdout", at) == "2026-01-02T03:04:05.123456000Z stdout F out\n"
    assert cri_line("a\nb\n", at=at).splitlines() == [
        "2026-01-02T03:04:05.123456000Z stderr F a",
        "2026-01-02T03:04:05.123456000Z stderr F b",
    ]
    with pytest.raises(ValueError, match="stream"):
        cri_line("x", "stdin")


def pgrep_kwok() -> set[int]:
    result = subprocess.run(["pgrep", "-x", "kwok"], capture_output=True, text=True, check=False)
    return {int(pid) for pid in result.stdout.split()}


def test_a_second_node_and_stop_leave_no_process(node: KwokNode, plane: ControlPlane, api: Api, tmp_path: Path) -> None:
    second = KwokNode(plane, tmp_path / "second", node_name="phoebe-node-2").start()
    try:
        assert second.process is not None
        pid = second.process.pid
        assert pid in pgrep_kwok()
        obj = api.get("v1", "Node", None, "phoebe-node-2")
        assert obj["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"] == second.port
    finally:
        second.close()
    assert pid not in pgrep_kwok()
    assert not port_open(second.port)
    assert not port_open(second.kwok_port)
    # the first node kept working
    assert node.process is not None
    assert node.process.poll() is None


def test_a_node_taken_over_by_a_new_kwok(
    plane: ControlPlane, api: Api, client: httpx.Client, ns: str, tmp_path: Path
) -> None:
    with KwokNode(plane, tmp_path / "before", node_name="phoebe-node-3") as before:
        before.run_pod(ns, "survivor")
        before.write_log(ns, "survivor", "written before the restart")
    # Same node, new kwok on other ports: the Node is re-pointed, its old lease dropped.
    with KwokNode(plane, tmp_path / "after", node_name="phoebe-node-3") as after:
        assert after.timings["start"] < 10
        obj = api.get("v1", "Node", None, "phoebe-node-3")
        assert obj["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"] == after.port
        after.run_pod(ns, "newcomer")
        after.write_log(ns, "newcomer", "written after")
        assert pod_log(client, ns, "newcomer").text == "written after\n"
        # The old pod's Logs object still points at the old file: kwok serves it too.
        assert pod_log(client, ns, "survivor").text == "written before the restart\n"


def test_stop_on_a_failed_start_leaves_no_process(plane: ControlPlane, tmp_path: Path) -> None:
    class Failing(KwokNode):
        def _wait_logs_synced(self, deadline: float) -> None:
            raise RuntimeError("failed on purpose")

    before = pgrep_kwok()
    failing = Failing(plane, tmp_path / "failing", node_name="phoebe-node-failing")
    with pytest.raises(RuntimeError, match="on purpose"):
        failing.start()
    assert failing.process is None
    assert pgrep_kwok() <= before
    assert not port_open(failing.port)
    failing.api.close()
