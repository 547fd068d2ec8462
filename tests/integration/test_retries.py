"""Retries against the real API server (issue 13: D11).

- **429**: API Priority and Fairness set to reject. A FlowSchema sends every request of one
  client-certificate user to a PriorityLevelConfiguration of its own (``Limited``, one nominal
  share, nothing lent or borrowed, ``Reject``): a few seats, and whatever does not fit is answered
  429 at once. ``phoebe status -A`` lists every Flux kind in parallel; the server's own metrics
  (``apiserver_flowcontrol_rejected_requests_total``) count the 429s, and phoebe still succeeds.
- **503**: an aggregated APIService whose Service has no endpoints: the real server answers 503 on
  its path. A kubeconfig whose server URL carries that path (as a proxy's does,
  ``https://rancher/k8s/clusters/c-1``) sends every request there. A GET is retried a bounded
  number of times, then phoebe fails with one line, exit 3; a PATCH is never sent twice.

Every APF object, APIService, Service and namespace made here is deleted again: they are
cluster-wide or shared with the other tests of the session.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from phoebe_cli.errors import ClusterUnreachable, NotFound, RequestRejected
from phoebe_cli.kube import client as kube_client
from phoebe_cli.kube.client import MAX_RETRIES, KubeClient
from phoebe_cli.kube.config import load_cluster_access
from tests.cluster.api import Api, ApiError
from tests.cluster.controlplane import kubeconfig_document
from tests.conftest import Cluster, PhoebeRunner

pytestmark = pytest.mark.cluster

FLOWCONTROL = "flowcontrol.apiserver.k8s.io/v1"
RBAC = "rbac.authorization.k8s.io/v1"
ATTEMPTS = MAX_RETRIES + 1


def _delete(api: Api, api_version: str, kind: str, name: str, namespace: str | None = None) -> None:
    api.delete({"apiVersion": api_version, "kind": kind, "metadata": {"name": name, "namespace": namespace}})


# --- 429 from API Priority and Fairness -----------------------------------------------------------
def _flowcontrol_metric(api: Api, metric: str, priority_level: str) -> int:
    """The sum of ``metric`` over the series of one priority level, from the server's /metrics."""
    text = api._call("GET", "/metrics").text
    pattern = re.compile(rf"^{metric}\{{([^}}]*)\}} (\S+)$", re.MULTILINE)
    return sum(
        int(float(value)) for labels, value in pattern.findall(text) if f'priority_level="{priority_level}"' in labels
    )


def _certificate_kubeconfig(cluster: Cluster, path: Path, user: str) -> Path:
    cert, key = cluster.plane.client_certificate(user)
    doc = kubeconfig_document(cluster.plane.server, cluster.plane.ca_file, "unused", context="apf", user="apf")
    doc["users"] = [
        {
            "name": "apf",
            "user": {
                "client-certificate-data": base64.b64encode(cert).decode(),
                "client-key-data": base64.b64encode(key).decode(),
            },
        }
    ]
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture
def rejecting_user(cluster: Cluster, tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A kubeconfig for a user who may read everything, whose requests API Priority and Fairness
    gives a tiny priority level that rejects (429) what does not fit; and that level's name."""
    api = cluster.api
    suffix = secrets.token_hex(3)
    user, name = f"phoebe-apf-{suffix}", f"phoebe-test-reject-{suffix}"
    try:
        api.apply(
            {
                "apiVersion": RBAC,
                "kind": "ClusterRole",
                "metadata": {"name": name},
                "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["get", "list", "watch"]}],
            }
        )
        api.apply(
            {
                "apiVersion": RBAC,
                "kind": "ClusterRoleBinding",
                "metadata": {"name": name},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
                "subjects": [{"kind": "User", "name": user, "apiGroup": "rbac.authorization.k8s.io"}],
            }
        )
        limited = {
            "nominalConcurrencyShares": 1,
            "lendablePercent": 0,
            "borrowingLimitPercent": 0,
            "limitResponse": {"type": "Reject"},
        }
        api.apply(
            {
                "apiVersion": FLOWCONTROL,
                "kind": "PriorityLevelConfiguration",
                "metadata": {"name": name},
                "spec": {"type": "Limited", "limited": limited},
            }
        )
        every = {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"], "clusterScope": True, "namespaces": ["*"]}
        api.apply(
            {
                "apiVersion": FLOWCONTROL,
                "kind": "FlowSchema",
                "metadata": {"name": name},
                "spec": {
                    "priorityLevelConfiguration": {"name": name},
                    "matchingPrecedence": 200,  # before global-default (9900) and catch-all
                    "distinguisherMethod": {"type": "ByUser"},
                    "rules": [
                        {
                            "subjects": [{"kind": "User", "user": {"name": user}}],
                            "resourceRules": [every],
                            "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
                        }
                    ],
                },
            }
        )
        deadline = time.monotonic() + 30
        while _flowcontrol_metric(api, "apiserver_flowcontrol_nominal_limit_seats", name) == 0:
            assert time.monotonic() < deadline, "the priority level never took effect"
            time.sleep(0.2)
        yield _certificate_kubeconfig(cluster, tmp_path / "kubeconfig-apf", user), name
    finally:
        _delete(api, FLOWCONTROL, "FlowSchema", name)
        _delete(api, FLOWCONTROL, "PriorityLevelConfiguration", name)
        _delete(api, RBAC, "ClusterRoleBinding", name)
        _delete(api, RBAC, "ClusterRole", name)


def test_requests_turned_away_by_priority_and_fairness_are_retried(
    cluster: Cluster, phoebe: PhoebeRunner, rejecting_user: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    kubeconfig, level = rejecting_user
    api = cluster.api
    seats = _flowcontrol_metric(api, "apiserver_flowcontrol_nominal_limit_seats", level)
    admin = phoebe("status", "-A", "-o", "json", kubeconfig=cluster.kubeconfig)
    rejected_before = _flowcontrol_metric(api, "apiserver_flowcontrol_rejected_requests_total", level)
    dispatched_before = _flowcontrol_metric(api, "apiserver_flowcontrol_dispatched_requests_total", level)

    runs = []
    for _ in range(8):  # until the server has turned some away, at least three runs
        runs.append(phoebe("-v", "-v", "status", "-A", "-o", "json", kubeconfig=kubeconfig))
        rejected = _flowcontrol_metric(api, "apiserver_flowcontrol_rejected_requests_total", level) - rejected_before
        if rejected and len(runs) >= 3:
            break
    dispatched = _flowcontrol_metric(api, "apiserver_flowcontrol_dispatched_requests_total", level) - dispatched_before

    sent = sum(int(re.search(r"(\d+) requests to ", r.stderr).group(1)) for r in runs)  # type: ignore[union-attr]
    with capsys.disabled():
        print(
            f"\n[apf] priority level {level}: {seats} seats; {len(runs)} runs of `phoebe status -A` sent {sent} "
            f"requests: the server dispatched {dispatched} and rejected {rejected} (429)"
        )
    assert rejected > 0, "the server never answered 429: nothing was shown"
    assert sent == dispatched + rejected  # every request phoebe sent is one the server counted
    for run in runs:
        assert run.code == admin.code, run.stderr
        assert "error" not in run.stderr
        assert _seen(run.stdout) == _seen(admin.stdout)  # the same objects as the admin sees


def test_without_retries_the_same_requests_fail_with_429(
    cluster: Cluster, phoebe: PhoebeRunner, rejecting_user: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The contrast: with retries switched off, the same runs end in the server's 429 (exit 3)."""
    kubeconfig, level = rejecting_user
    monkeypatch.setattr(kube_client, "MAX_RETRIES", 0)
    runs = []
    for _ in range(5):
        runs.append(phoebe("status", "-A", "-o", "json", kubeconfig=kubeconfig))
        if runs[-1].code == 3:
            break
    assert runs[-1].code == 3
    assert runs[-1].stderr.startswith("phoebe: error: the API server is throttling requests (429 TooManyRequests)")
    assert len(runs[-1].stderr.splitlines()) == 1
    assert _flowcontrol_metric(cluster.api, "apiserver_flowcontrol_rejected_requests_total", level) > 0


def _seen(report: str) -> tuple[Any, list[tuple[str, str, str, str]]]:
    doc = json.loads(report)
    return doc["summary"], sorted((o["kind"], o["namespace"], o["name"], o["state"]) for o in doc["objects"])


# --- 503 from an aggregated API without endpoints -------------------------------------------------
@pytest.fixture
def unavailable_api(cluster: Cluster) -> Iterator[str]:
    """The path of an aggregated API (an APIService for a Service with no endpoints) on which the
    real server answers 503 Service Unavailable."""
    api = cluster.api
    suffix = secrets.token_hex(3)
    namespace, group = f"t-probe-{suffix}", f"probe-{suffix}.phoebe.test"
    service: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "probe", "namespace": namespace},
        "spec": {"ports": [{"port": 443, "targetPort": 8443}]},  # no selector, no endpoints
    }
    apiservice = {
        "apiVersion": "apiregistration.k8s.io/v1",
        "kind": "APIService",
        "metadata": {"name": f"v1.{group}"},
        "spec": {
            "group": group,
            "version": "v1",
            "groupPriorityMinimum": 1000,
            "versionPriority": 15,
            "insecureSkipTLSVerify": True,
            "service": {"name": "probe", "namespace": namespace, "port": 443},
        },
    }
    path = f"/apis/{group}/v1"
    try:
        api.ensure_namespace(namespace)
        api.apply(service)
        api.apply(apiservice)
        deadline = time.monotonic() + 30
        while True:
            answer = api.http.get(f"{path}/probe")
            if answer.status_code == 503:
                break
            assert time.monotonic() < deadline, f"no 503 on {path}: {answer.status_code} {answer.text[:200]}"
            time.sleep(0.2)
        yield path
    finally:
        _delete(api, "apiregistration.k8s.io/v1", "APIService", f"v1.{group}")
        api.delete(service)
        # with no namespace controller it stays Terminating, empty
        _delete(api, "v1", "Namespace", namespace)


def _kubeconfig_under(cluster: Cluster, path: str, directory: Path) -> Path:
    """The admin's kubeconfig with ``path`` in the server URL: every request goes below it."""
    doc = kubeconfig_document(cluster.plane.server + path, cluster.plane.ca_file, cluster.plane.admin_token)
    target = directory / "kubeconfig-503"
    target.write_text(yaml.safe_dump(doc))
    return target


def test_a_get_answered_503_is_retried_a_bounded_number_of_times(
    cluster: Cluster, phoebe: PhoebeRunner, unavailable_api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kubeconfig = _kubeconfig_under(cluster, unavailable_api, tmp_path)

    started = time.monotonic()
    verbose = phoebe("-v", "-v", "status", kubeconfig=kubeconfig)
    took = time.monotonic() - started
    monkeypatch.setattr(kube_client, "RETRY_BACKOFF_SECONDS", 0.01)  # the same retries, faster
    plain = phoebe("status", kubeconfig=kubeconfig)

    assert verbose.code == 3
    count, error, cause = verbose.stderr.splitlines()
    assert count.startswith(f"{ATTEMPTS} requests to {cluster.plane.server}{unavailable_api} in ")
    assert re.fullmatch(
        rf"phoebe: error: the API server failed \(503 Service Unavailable\): service unavailable "
        rf"\(asked {ATTEMPTS} times in \d+\.\ds\)",
        error,
    )
    assert cause == f"HTTP 503 GET {cluster.plane.server}{unavailable_api}/apis"
    assert took < kube_client.MAX_RETRY_WAIT_SECONDS + 5  # bounded in time too
    assert plain.code == 3
    assert plain.stdout == ""
    assert len(plain.stderr.splitlines()) == 1 and plain.stderr.startswith("phoebe: error: the API server failed (503")


def test_a_patch_answered_503_is_never_sent_twice_and_streams_are_retried_before_a_line(
    cluster: Cluster, unavailable_api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kube_client, "RETRY_BACKOFF_SECONDS", 0.01)
    thing = f"{unavailable_api}/namespaces/default/things/one"

    async def run() -> dict[str, int]:
        sent = {}
        async with KubeClient(load_cluster_access(str(cluster.kubeconfig), None)) as kube:
            for method in ("PATCH", "POST", "PUT", "DELETE"):
                before = kube.requests_sent
                with pytest.raises(ClusterUnreachable) as failed:
                    await kube.request(method, thing, body={}, content_type="application/merge-patch+json")
                assert failed.value.code == 503
                sent[method] = kube.requests_sent - before
            before = kube.requests_sent
            with pytest.raises(ClusterUnreachable):
                await kube.get_json(thing)
            sent["GET"] = kube.requests_sent - before
            before = kube.requests_sent
            with pytest.raises(ClusterUnreachable):
                async for _ in kube.stream_lines(thing, params={"watch": True}):
                    pass
            sent["watch"] = kube.requests_sent - before
        return sent

    assert asyncio.run(run()) == {"PATCH": 1, "POST": 1, "PUT": 1, "DELETE": 1, "GET": ATTEMPTS, "watch": ATTEMPTS}


def test_other_client_errors_are_not_retried(cluster: Cluster, namespace: str) -> None:
    """A 404 or 422 is the answer: asked once."""

    async def run() -> tuple[int, int]:
        async with KubeClient(load_cluster_access(str(cluster.kubeconfig), None)) as kube:
            with pytest.raises(NotFound):
                await kube.get_json(f"/api/v1/namespaces/{namespace}/configmaps/missing")
            missing = kube.requests_sent
            with pytest.raises(RequestRejected):
                await kube.send_json(
                    "POST",
                    f"/api/v1/namespaces/{namespace}/configmaps",
                    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Not_Valid"}},
                )
            return missing, kube.requests_sent - missing

    assert asyncio.run(run()) == (1, 1)


def test_the_test_api_sees_the_same_503(cluster: Cluster, unavailable_api: str) -> None:
    """The 503 is the server's own answer, not phoebe's making."""
    with pytest.raises(ApiError) as answer:
        cluster.api._call("GET", f"{unavailable_api}/anything")
    assert answer.value.status_code == 503


# --- connections lost under a request ---------------------------------------------------------------
def test_reads_and_dry_runs_on_a_lost_connection_are_asked_again_writes_never(
    cluster: Cluster, namespace: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A proxy that drops the first connections as their first request arrives (unanswered): a GET
    and a server-side dry-run are asked again on a new connection and succeed; a real PATCH is
    never sent twice — one line, and nothing changed on the cluster."""
    from tests.integration.test_proxy_tls import kubeconfig as proxied_kubeconfig
    from tests.integration.tunnel import TunnelProxy

    monkeypatch.setattr(kube_client, "RETRY_BACKOFF_SECONDS", 0.01)
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "lost", "namespace": namespace}}
    cluster.api.apply({**config_map, "data": {"v": "1"}})
    path = f"/api/v1/namespaces/{namespace}/configmaps/lost"

    async def run(kubeconfig: Path) -> tuple[dict[str, Any], dict[str, Any], BaseException | None]:
        async with KubeClient(load_cluster_access(str(kubeconfig), None)) as kube:
            read = await kube.get_json(path)
            patch = {"data": {"v": "2"}}
            dry = await kube.send_json(
                "PATCH", path, patch, content_type="application/merge-patch+json", params={"dryRun": "All"}
            )
            failed = None
            try:
                await kube.send_json("PATCH", path, {"data": {"v": "3"}}, content_type="application/merge-patch+json")
            except ClusterUnreachable as error:
                failed = error
            return read, dry, failed

    # one connection (HTTP/2), cut at its first request; the client opens another
    with TunnelProxy(cut=1) as proxy:
        kubeconfig = proxied_kubeconfig(cluster, tmp_path / "kc-read", **{"proxy-url": proxy.url})
        read, dry, failed = asyncio.run(run(kubeconfig))
    assert len(proxy.cuts) == 1 and len(proxy.tunnels) >= 2  # the first cut, then a new one that answered
    assert read["data"] == {"v": "1"} and dry["data"] == {"v": "2"} and failed is None

    async def write_only(kubeconfig: Path) -> BaseException | None:
        async with KubeClient(load_cluster_access(str(kubeconfig), None)) as kube:
            try:
                await kube.send_json("PATCH", path, {"data": {"v": "4"}}, content_type="application/merge-patch+json")
            except ClusterUnreachable as error:
                return error
            return None

    with TunnelProxy(cut=1) as proxy:
        kubeconfig = proxied_kubeconfig(cluster, tmp_path / "kc-write", **{"proxy-url": proxy.url})
        error = asyncio.run(write_only(kubeconfig))
    assert error is not None and len(proxy.tunnels) == 1  # asked once, never again
    assert str(error).startswith(
        f"cannot reach the cluster at https://127.0.0.1:{cluster.plane.server.rsplit(':', 1)[1]}"
    )
    assert "\n" not in str(error)
    assert cluster.api.get("v1", "ConfigMap", namespace, "lost")["data"] == {"v": "3"}  # the write before: once
