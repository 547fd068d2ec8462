"""Watches against the real API server: resuming when the server ends the stream, and listing
again after 410 Gone."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from phoebe_cli.kube.client import KubeClient
from phoebe_cli.kube.config import load_cluster_access
from phoebe_cli.kube.watch import DELETED, LISTED, MODIFIED, ResourceExpired, list_and_watch, watch_from
from tests.conftest import Cluster
from tests.support import manifests

pytestmark = pytest.mark.cluster
PATH = "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/{}/kustomizations"


def client(cluster: Cluster) -> KubeClient:
    return KubeClient(load_cluster_access(str(cluster.kubeconfig), None))


def test_a_too_old_resource_version_is_410(cluster: Cluster, namespace: str) -> None:
    async def run() -> None:
        async with client(cluster) as kube:
            with pytest.raises(ResourceExpired):
                async for _ in watch_from(kube, PATH.format(namespace), "1"):
                    pass

    asyncio.run(run())


def test_list_and_watch_lists_again_after_410(
    cluster: Cluster, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = cluster.api
    api.create(manifests.kustomization("a", namespace))
    api.create(manifests.kustomization("b", namespace))
    from phoebe_cli.kube import watch

    real = watch.watch_from
    calls = {"n": 0}

    async def expiring(kube, path, version, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 1:
            # the first watch starts from a version the server no longer has: a real 410
            version = "1"
        async for change in real(kube, path, version, **kwargs):
            yield change

    monkeypatch.setattr(watch, "watch_from", expiring)
    seen: list[tuple[str, str]] = []

    def change_later() -> None:
        time.sleep(1.0)
        api.delete(api.get("kustomize.toolkit.fluxcd.io/v1", "Kustomization", namespace, "b"))
        obj = api.get("kustomize.toolkit.fluxcd.io/v1", "Kustomization", namespace, "a")
        api.merge_patch(obj, {"metadata": {"labels": {"touched": "yes"}}})

    async def run() -> None:
        async with client(cluster) as kube:
            threading.Thread(target=change_later, daemon=True).start()
            async for change in watch.list_and_watch(kube, PATH.format(namespace)):
                seen.append((change.type, change.key[1]))
                if (DELETED, "b") in seen and (MODIFIED, "a") in seen:
                    return

    asyncio.run(asyncio.wait_for(run(), timeout=20))
    # listed, the first watch got a real 410, listed again, then the changes arrived
    assert seen[:4] == [(LISTED, "a"), (LISTED, "b"), (LISTED, "a"), (LISTED, "b")]
    assert calls["n"] == 2
    assert seen[4:] == [(DELETED, "b"), (MODIFIED, "a")]


def test_watch_resumes_after_the_server_ends_it(cluster: Cluster, namespace: str) -> None:
    api = cluster.api
    api.create(manifests.kustomization("a", namespace))

    def change_later() -> None:
        time.sleep(2.5)  # after two server-side timeouts of 1 s
        obj = api.get("kustomize.toolkit.fluxcd.io/v1", "Kustomization", namespace, "a")
        api.merge_patch(obj, {"metadata": {"labels": {"late": "yes"}}})

    async def run() -> str:
        async with client(cluster) as kube:
            _items, version = await kube.list_all(PATH.format(namespace))
            threading.Thread(target=change_later, daemon=True).start()
            async for change in watch_from(kube, PATH.format(namespace), version, timeout_seconds=1):
                if change.type == MODIFIED:
                    return str(change.object["metadata"]["labels"]["late"])
        return ""

    assert asyncio.run(asyncio.wait_for(run(), timeout=20)) == "yes"


def test_list_and_watch_starts_with_every_object(cluster: Cluster, namespace: str) -> None:
    api = cluster.api
    for name in ("x", "y", "z"):
        api.create(manifests.kustomization(name, namespace))

    async def run() -> list[str]:
        found = []
        async with client(cluster) as kube:
            async for change in list_and_watch(kube, PATH.format(namespace)):
                assert change.type == LISTED
                found.append(change.key[1])
                if len(found) == 3:
                    return found
        return found

    assert asyncio.run(asyncio.wait_for(run(), timeout=10)) == ["x", "y", "z"]
