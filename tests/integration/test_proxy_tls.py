"""Proxies, TLS server names and compression from the kubeconfig and the environment, as
client-go honours them, on the real API server. The proxy is a small CONNECT proxy on
127.0.0.1 (``tunnel.py``) that relays TLS to the real kube-apiserver and records each tunnel."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from phoebe_cli.kube.client import KubeClient
from phoebe_cli.kube.config import load_cluster_access
from tests.conftest import Cluster, PhoebeRunner
from tests.integration.tunnel import TunnelProxy

pytestmark = pytest.mark.cluster

# Not resolvable here (RFC 6761): only a proxy can reach it. The serving certificate does
# not name it either, so these kubeconfigs set tls-server-name to a name it does carry.
UNRESOLVABLE = "kube.phoebe.invalid"
CERTIFIED_NAME = "kubernetes"  # one of the API server certificate's names
PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy")


@pytest.fixture(autouse=True)
def no_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def proxy() -> Iterator[TunnelProxy]:
    with TunnelProxy(hosts={UNRESOLVABLE: "127.0.0.1"}) as running:
        yield running


def port(cluster: Cluster) -> int:
    return cluster.plane.apiserver_port


def kubeconfig(cluster: Cluster, path: Path, *, host: str = "127.0.0.1", **cluster_fields: Any) -> Path:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "ctx",
        "clusters": [
            {
                "name": "c",
                "cluster": {
                    "server": f"https://{host}:{port(cluster)}",
                    "certificate-authority": str(cluster.plane.ca_file),
                    **cluster_fields,
                },
            }
        ],
        "users": [{"name": "u", "user": {"token": cluster.plane.admin_token}}],
        "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u"}}],
    }
    path.write_text(yaml.safe_dump(doc))
    return path


def healthy(result: Any) -> None:
    assert result.code == 0, result.stderr
    assert result.stderr == ""


# --- proxy-url -------------------------------------------------------------------------------


def test_proxy_url_carries_every_request(
    phoebe: PhoebeRunner, cluster: Cluster, proxy: TunnelProxy, tmp_path: Path
) -> None:
    # client-go uses proxy-url even for a loopback server
    path = kubeconfig(cluster, tmp_path / "kc", **{"proxy-url": proxy.url})

    healthy(phoebe("check", kubeconfig=path))

    assert proxy.tunnels
    assert {t.target for t in proxy.tunnels} == {f"127.0.0.1:{port(cluster)}"}


def test_https_proxy_url_is_verified_with_the_clusters_ca(
    phoebe: PhoebeRunner, cluster: Cluster, tmp_path: Path
) -> None:
    # The proxy serves the API server's own certificate (127.0.0.1, signed by the kubeconfig's CA):
    # as with client-go, TLS to an https proxy is checked with the cluster entry's trust settings.
    certs = cluster.plane.ca_file.parent
    with TunnelProxy(tls=(certs / "apiserver.crt", certs / "apiserver.key")) as secure:
        path = kubeconfig(cluster, tmp_path / "kc", **{"proxy-url": secure.url})
        assert secure.url.startswith("https://")

        healthy(phoebe("check", kubeconfig=path))

        assert secure.tunnels


def test_proxy_credentials_are_sent_and_never_shown(phoebe: PhoebeRunner, cluster: Cluster, tmp_path: Path) -> None:
    with TunnelProxy(credentials=("phoebe", "s3cret-proxy-pass")) as guarded:
        good = kubeconfig(cluster, tmp_path / "good", **{"proxy-url": guarded.url})
        healthy(phoebe("check", kubeconfig=good))
        expected = "Basic " + base64.b64encode(b"phoebe:s3cret-proxy-pass").decode()
        assert {t.authorization for t in guarded.tunnels} == {expected}

        wrong_url = guarded.url.replace("s3cret-proxy-pass", "wrong-pass-123")
        bad = kubeconfig(cluster, tmp_path / "bad", **{"proxy-url": wrong_url})
        result = phoebe("-v", "check", kubeconfig=bad)

    assert result.code == 3
    assert result.stderr.startswith(
        f"phoebe: error: the proxy http://phoebe:***@127.0.0.1:{guarded.port} (proxy-url of cluster 'c') "
        f"did not connect to https://127.0.0.1:{port(cluster)}: 407 Proxy Authentication Required"
    )
    assert "wrong-pass-123" not in result.stderr + result.stdout


def test_proxy_url_wins_over_the_environment(
    phoebe: PhoebeRunner, cluster: Cluster, proxy: TunnelProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:1")  # nothing listens there
    path = kubeconfig(
        cluster, tmp_path / "kc", host=UNRESOLVABLE, **{"proxy-url": proxy.url, "tls-server-name": CERTIFIED_NAME}
    )

    healthy(phoebe("check", kubeconfig=path))

    assert {t.target for t in proxy.tunnels} == {f"{UNRESOLVABLE}:{port(cluster)}"}


@pytest.mark.parametrize(
    ("scheme_url", "why"),
    [
        ("ftp://127.0.0.1:21", "unsupported scheme 'ftp', must be http, https or socks5"),
        ("socks4://127.0.0.1:1080", "unsupported scheme 'socks4', must be http, https or socks5"),
        ("http://", "no host"),
    ],
)
def test_a_proxy_url_client_go_refuses_is_a_usage_error(
    phoebe: PhoebeRunner, cluster: Cluster, tmp_path: Path, scheme_url: str, why: str
) -> None:
    path = kubeconfig(cluster, tmp_path / "kc", **{"proxy-url": scheme_url})

    result = phoebe("check", kubeconfig=path)

    assert result.code == 2
    assert (
        result.stderr
        == f"phoebe: error: kubeconfig context 'ctx': cluster 'c' ({path}): proxy-url {scheme_url!r}: {why}\n"
    )


def test_socks5_proxy_url_carries_every_request(phoebe: PhoebeRunner, cluster: Cluster, tmp_path: Path) -> None:
    with TunnelProxy(socks=True) as socks:
        path = kubeconfig(cluster, tmp_path / "kc", **{"proxy-url": socks.url})
        assert socks.url.startswith("socks5://")

        healthy(phoebe("check", kubeconfig=path))

        assert {t.target for t in socks.tunnels} == {f"127.0.0.1:{port(cluster)}"}


# --- the environment ------------------------------------------------------------------------


@pytest.mark.parametrize("variable", ["HTTPS_PROXY", "https_proxy"])
def test_https_proxy_from_the_environment(
    phoebe: PhoebeRunner,
    cluster: Cluster,
    proxy: TunnelProxy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
) -> None:
    monkeypatch.setenv(variable, f"127.0.0.1:{proxy.port}")  # no scheme: http://, as Go reads it
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:1")  # for http:// servers only
    path = kubeconfig(cluster, tmp_path / "kc", host=UNRESOLVABLE, **{"tls-server-name": CERTIFIED_NAME})

    healthy(phoebe("check", kubeconfig=path))

    assert {t.target for t in proxy.tunnels} == {f"{UNRESOLVABLE}:{port(cluster)}"}


@pytest.mark.parametrize("no_proxy", [UNRESOLVABLE, ".invalid", "phoebe.invalid", "*", f"{UNRESOLVABLE}:{{port}}"])
def test_no_proxy_sends_the_request_direct(
    phoebe: PhoebeRunner,
    cluster: Cluster,
    proxy: TunnelProxy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    no_proxy: str,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", f"example.com, {no_proxy.format(port=port(cluster))}")
    path = kubeconfig(cluster, tmp_path / "kc", host=UNRESOLVABLE, **{"tls-server-name": CERTIFIED_NAME})

    result = phoebe("check", kubeconfig=path)

    # direct, the name does not resolve: the proxy was not asked
    assert result.code == 3
    assert result.stderr == (
        f"phoebe: error: cannot reach the cluster at https://{UNRESOLVABLE}:{port(cluster)}: host name not found\n"
    )
    assert proxy.tunnels == []


def test_no_proxy_with_another_port_still_proxies(
    phoebe: PhoebeRunner, cluster: Cluster, proxy: TunnelProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", f"{UNRESOLVABLE}:{port(cluster) + 1}")
    path = kubeconfig(cluster, tmp_path / "kc", host=UNRESOLVABLE, **{"tls-server-name": CERTIFIED_NAME})

    healthy(phoebe("check", kubeconfig=path))
    assert proxy.tunnels


def test_a_loopback_server_is_never_proxied_from_the_environment(
    phoebe: PhoebeRunner, cluster: Cluster, proxy: TunnelProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)  # Go skips localhost and loopback addresses
    path = kubeconfig(cluster, tmp_path / "kc")

    healthy(phoebe("check", kubeconfig=path))

    assert proxy.tunnels == []


def test_an_unreachable_environment_proxy_is_named(
    phoebe: PhoebeRunner, cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:1")
    path = kubeconfig(cluster, tmp_path / "kc", host=UNRESOLVABLE, **{"tls-server-name": CERTIFIED_NAME})

    result = phoebe("check", kubeconfig=path)

    assert result.code == 3
    assert result.stderr == (
        f"phoebe: error: cannot reach the cluster at https://{UNRESOLVABLE}:{port(cluster)} through the proxy "
        "http://127.0.0.1:1 (HTTPS_PROXY): connection refused\n"
    )


# --- tls-server-name ---------------------------------------------------------------------------


def test_tls_server_name_is_the_sni_and_the_name_verified(
    phoebe: PhoebeRunner, cluster: Cluster, proxy: TunnelProxy, tmp_path: Path
) -> None:
    through = kubeconfig(cluster, tmp_path / "kc", **{"tls-server-name": CERTIFIED_NAME, "proxy-url": proxy.url})

    healthy(phoebe("check", kubeconfig=through))

    # every TLS hello the proxy relayed asked for that name (an IP address alone sends no SNI)
    assert {t.sni for t in proxy.tunnels} == {CERTIFIED_NAME}


def test_a_tls_server_name_the_certificate_does_not_carry_fails_verification(
    phoebe: PhoebeRunner, cluster: Cluster, tmp_path: Path
) -> None:
    path = kubeconfig(cluster, tmp_path / "kc", **{"tls-server-name": "not-the-api-server.example"})

    result = phoebe("check", kubeconfig=path)

    assert result.code == 3
    assert result.stderr.startswith(f"phoebe: error: TLS verification failed for https://127.0.0.1:{port(cluster)}: ")
    assert "not-the-api-server.example" in result.stderr


def test_a_direct_connection_without_a_server_name_sends_no_sni(
    phoebe: PhoebeRunner, cluster: Cluster, proxy: TunnelProxy, tmp_path: Path
) -> None:
    healthy(phoebe("check", kubeconfig=kubeconfig(cluster, tmp_path / "kc", **{"proxy-url": proxy.url})))
    assert {t.sni for t in proxy.tunnels} == {None}


# --- disable-compression -----------------------------------------------------------------------


def _crd_list(path: Path) -> httpx.Response:
    """A large answer (the Flux CRDs, well over the server's 128 KiB gzip threshold)."""

    async def main() -> httpx.Response:
        async with KubeClient(load_cluster_access(str(path), None)) as kube:
            return await kube.request("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions")

    return asyncio.run(main())


def test_disable_compression(cluster: Cluster, tmp_path: Path) -> None:
    compressed = _crd_list(kubeconfig(cluster, tmp_path / "default"))
    assert "gzip" in compressed.request.headers["Accept-Encoding"]
    assert compressed.headers.get("Content-Encoding") == "gzip"

    plain = _crd_list(kubeconfig(cluster, tmp_path / "plain", **{"disable-compression": True}))
    assert "Accept-Encoding" not in plain.request.headers
    assert "Content-Encoding" not in plain.headers
    assert plain.json()["items"]
    assert len(plain.content) > 128 * 1024
