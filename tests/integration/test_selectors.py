"""Label selectors: phoebe's checks and matching against the real API server's (differential).

phoebe refuses a bad selector before any request (exit 2) and matches selectors itself in
`status`; both must agree with the server, which is what `sync` sends them to."""

from __future__ import annotations

import pytest

from phoebe_cli.errors import UsageError
from phoebe_cli.flux.selectors import check_selector, parse_selector
from tests.conftest import Cluster
from tests.unit.test_selectors import INVALID, MATCHES, VALID

pytestmark = pytest.mark.cluster


def _server_accepts(cluster: Cluster, namespace: str, selector: str) -> bool:
    response = cluster.api.http.get(
        cluster.api.path("v1", "ConfigMap", namespace), params={"labelSelector": selector, "limit": "1"}
    )
    assert response.status_code in (200, 400), response.text
    return response.status_code == 200


def _phoebe_accepts(selector: str) -> bool:
    try:
        check_selector(selector)
    except UsageError:
        return False
    return True


def test_phoebe_refuses_what_the_server_refuses(cluster: Cluster, namespace: str) -> None:
    disagree = [
        (selector, _phoebe_accepts(selector))
        for selector in VALID + INVALID
        if _phoebe_accepts(selector) != _server_accepts(cluster, namespace, selector)
    ]
    assert disagree == []
    assert all(_server_accepts(cluster, namespace, s) for s in VALID)
    assert not any(_server_accepts(cluster, namespace, s) for s in INVALID)


def test_phoebe_matches_what_the_server_matches(cluster: Cluster, namespace: str) -> None:
    labelled = {}
    for index, (_, labels, _) in enumerate(MATCHES):
        name = f"cm-{index}"
        labelled[name] = labels
        cluster.api.create(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": namespace, "labels": labels},
            }
        )
    for selector, _, _ in MATCHES:
        served = cluster.api.list("v1", "ConfigMap", namespace, labelSelector=selector)
        by_server = {item["metadata"]["name"] for item in served if item["metadata"]["name"] in labelled}
        by_phoebe = {name for name, labels in labelled.items() if parse_selector(selector)(labels)}
        assert by_phoebe == by_server, selector
