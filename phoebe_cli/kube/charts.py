"""Fetching charts over the network: Helm repository indexes and packages over HTTP(S), and the OCI
distribution API (tags, manifests, blobs) for OCI Helm repositories and OCIRepositories.

The only place chart bytes cross the network (httpx lives in ``kube/``). One ``httpx.Client`` per
run, shared by the render threads. Errors become ``FetchFailed`` with one line and the HTTP
status when there was one (401/403: the credentials were refused; 404: not there). Credentials
are sent only to the host they are for and never appear in a message.

OCI registries: a 401 answer's ``WWW-Authenticate`` challenge is followed — ``Bearer`` (a token
from the realm, anonymous or with the basic credentials, as distribution's token auth and
ghcr.io do) or ``Basic`` (distribution's htpasswd) — and the request asked again once.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

if TYPE_CHECKING:
    import httpx

# httpx is imported where a request is made: a run that renders from the cache never pays for it

__all__ = ["ChartFetcher", "FetchFailed", "OciReference", "TlsMaterial"]

HELM_CHART_LAYER = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.index.v1+json",
    )
)


class FetchFailed(Exception):
    def __init__(self, message: str, status: int | None = None, *, refused: bool = False) -> None:
        super().__init__(message)
        self.status = status
        # the server answered and said no (401/403, or TLS: a certificate not trusted, ours not
        # accepted): not a network that is down, where the last cached answer may stand in
        self.refused = refused or status in (401, 403)


@dataclass(frozen=True)
class OciReference:
    """``oci://host[:port]/path``: the registry and the repository in it."""

    host: str
    repository: str
    plain_http: bool = False

    @classmethod
    def parse(cls, url: str, *, plain_http: bool = False) -> OciReference:
        rest = url.removeprefix("oci://").strip("/")
        host, _, repository = rest.partition("/")
        if not host or not repository:
            raise FetchFailed(f"{url} is not an oci://HOST/REPOSITORY URL")
        return cls(host, repository, plain_http)

    def child(self, name: str) -> OciReference:
        return OciReference(self.host, f"{self.repository}/{name}", self.plain_http)

    @property
    def base(self) -> str:
        return f"{'http' if self.plain_http else 'https'}://{self.host}/v2/{self.repository}"

    def __str__(self) -> str:
        return f"oci://{self.host}/{self.repository}"


Credentials = tuple[str, str] | None


@dataclass(frozen=True)
class TlsMaterial:
    """A source's ``certSecretRef`` (``ca.crt``, ``tls.crt``, ``tls.key``), PEM, in memory only."""

    ca: str = field(default="", repr=False)
    cert: str = field(default="", repr=False)
    key: str = field(default="", repr=False)


def _ssl_context(tls: TlsMaterial) -> Any:
    """The system's trust plus the source's CA, and its client certificate: the key is handed to
    OpenSSL through an anonymous memory file (``memfd``), never a file on disk."""
    import os
    import ssl

    context = ssl.create_default_context()
    if tls.ca:
        try:
            context.load_verify_locations(cadata=tls.ca)
        except (ssl.SSLError, ValueError) as exc:
            raise FetchFailed("ca.crt is not a PEM certificate") from exc
    if tls.cert or tls.key:
        if not (tls.cert and tls.key):
            raise FetchFailed("a client certificate needs both tls.crt and tls.key")
        if not hasattr(os, "memfd_create"):
            raise FetchFailed("client certificates need Linux memfd (the key is never written to disk)")
        fds = [os.memfd_create(name) for name in ("phoebe-tls-cert", "phoebe-tls-key")]
        try:
            for fd, pem in zip(fds, (tls.cert, tls.key), strict=True):
                os.write(fd, pem.encode())
            cert_path, key_path = (f"/proc/self/fd/{fd}" for fd in fds)
            context.load_cert_chain(cert_path, key_path)
        except (ssl.SSLError, OSError) as exc:
            raise FetchFailed("tls.crt and tls.key are not a PEM certificate and its key") from exc
        finally:
            for fd in fds:
                os.close(fd)
    return context


class ChartFetcher:
    def __init__(self, *, timeout: float = 30, tls: TlsMaterial | None = None) -> None:
        self._timeout = timeout
        self._tls = tls
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()
        # (host, repository, credentials) -> Authorization: one source's token is never another's
        self._tokens: dict[tuple[str, str, Credentials], str] = {}

    def _http(self) -> httpx.Client:
        import httpx

        with self._lock:
            if self._client is None:
                verify: Any = _ssl_context(self._tls) if self._tls is not None else True
                self._client = httpx.Client(
                    timeout=httpx.Timeout(self._timeout, connect=10), follow_redirects=True, verify=verify
                )
            return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def _request(
        self, url: str, *, headers: Mapping[str, str] | None = None, auth: Credentials = None
    ) -> httpx.Response:
        import httpx

        try:
            return self._http().get(url, headers=dict(headers or {}), auth=auth)
        except httpx.TimeoutException as exc:
            raise FetchFailed(f"{_where(url)}: timed out") from exc
        except httpx.HTTPError as exc:
            raise FetchFailed(f"{_where(url)}: {_reason(exc)}", refused=_tls_refusal(exc)) from exc

    def get(self, url: str, auth: Credentials = None) -> bytes:
        """An HTTP(S) GET (a repository index, a chart package); basic auth only to the host of ``url``."""
        response = self._request(url, auth=auth)
        _check(response, url, auth is not None)
        return response.content

    # --- OCI distribution API -------------------------------------------------------------

    def _oci(self, ref: OciReference, path: str, creds: Credentials, accept: str = "") -> httpx.Response:
        url = f"{ref.base}/{path}"
        headers = {"Accept": accept} if accept else {}
        token = self._tokens.get((ref.host, ref.repository, creds))
        if token is not None:
            headers["Authorization"] = token
        response = self._request(url, headers=headers)
        if response.status_code == 401:
            challenge = response.headers.get("www-authenticate", "")
            authorization = self._authorize(ref, challenge, creds)
            if authorization is not None:
                headers["Authorization"] = authorization
                self._tokens[(ref.host, ref.repository, creds)] = authorization
                response = self._request(url, headers=headers)
        _check(response, str(ref), creds is not None)
        return response

    def _authorize(self, ref: OciReference, challenge: str, creds: Credentials) -> str | None:
        import httpx

        scheme, _, params_text = challenge.partition(" ")
        if scheme.lower() == "basic":
            if creds is None:
                return None
            return httpx.BasicAuth(*creds)._auth_header
        if scheme.lower() != "bearer":
            return None
        params = dict(re.findall(r'(\w+)="([^"]*)"', params_text))
        realm = params.get("realm")
        if not realm:
            return None
        query = {
            "service": params.get("service", ""),
            "scope": params.get("scope") or f"repository:{ref.repository}:pull",
        }
        try:
            answer = self._http().get(realm, params=query, auth=creds)
        except httpx.HTTPError as exc:
            raise FetchFailed(f"{_where(realm)}: {_reason(exc)}") from exc
        _check(answer, str(ref), creds is not None)
        try:
            body = answer.json()
        except ValueError as exc:
            raise FetchFailed(f"{ref!s}: the token service answered no JSON") from exc
        token = body.get("token") or body.get("access_token")
        return f"Bearer {token}" if token else None

    def oci_tags(self, ref: OciReference, creds: Credentials) -> list[str]:
        tags: list[str] = []
        path = "tags/list?n=1000"
        for _ in range(50):  # pages
            response = self._oci(ref, path, creds)
            try:
                tags.extend(str(t) for t in response.json().get("tags") or [])
            except (ValueError, AttributeError) as exc:
                raise FetchFailed(f"{ref}: the tag list is no JSON") from exc
            link = response.headers.get("link", "")
            found = re.search(r"<([^>]+)>", link)
            if not found:
                break
            path = found.group(1).split(f"/v2/{ref.repository}/", 1)[-1]
        return tags

    def oci_manifest(self, ref: OciReference, reference: str, creds: Credentials) -> tuple[dict[str, Any], str]:
        """The manifest of a tag or digest, and its digest."""
        response = self._oci(ref, f"manifests/{reference}", creds, accept=MANIFEST_TYPES)
        try:
            manifest = response.json()
        except ValueError as exc:
            raise FetchFailed(f"{ref}:{reference}: the manifest is no JSON") from exc
        digest = response.headers.get("docker-content-digest") or (reference if reference.startswith("sha256:") else "")
        if not digest:
            import hashlib

            digest = "sha256:" + hashlib.sha256(response.content).hexdigest()
        return manifest, digest

    def oci_blob(self, ref: OciReference, digest: str, creds: Credentials) -> bytes:
        return self._oci(ref, f"blobs/{digest}", creds).content


def chart_layer(manifest: Mapping[str, Any], media_type: str = "") -> str | None:
    """The digest of the manifest's Helm chart layer (or the layer of ``media_type``)."""
    wanted = media_type or HELM_CHART_LAYER
    for layer in manifest.get("layers") or []:
        if isinstance(layer, Mapping) and layer.get("mediaType") == wanted:
            return str(layer.get("digest") or "") or None
    return None


def resolve_url(base: str, url: str) -> str:
    """A chart URL of an index entry, relative to the repository's URL as Helm resolves it."""
    if urlsplit(url).scheme:
        return url
    return urljoin(base.rstrip("/") + "/", url)


def same_host(a: str, b: str) -> bool:
    return urlsplit(a).netloc == urlsplit(b).netloc


def _where(url: str) -> str:
    parts = urlsplit(url)
    return (
        f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}{parts.path}"
        if parts.scheme
        else url
    )


def _tls_refusal(exc: BaseException) -> bool:
    """Whether the TLS handshake failed (untrusted certificate, a client certificate refused)."""
    import ssl

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _reason(exc: httpx.HTTPError) -> str:
    text = str(exc) or type(exc).__name__
    if _tls_refusal(exc):
        if "CERTIFICATE_VERIFY_FAILED" in text:
            why = text.partition("certificate verify failed:")[2].partition("(_ssl")[0].strip()
            return f"the server's certificate is not trusted ({why}): give its CA as ca.crt in certSecretRef"
        if "CERTIFICATE_REQUIRED" in text or "HANDSHAKE_FAILURE" in text:
            return "the server wants a client certificate: give tls.crt and tls.key in certSecretRef"
        return f"TLS handshake failed ({text.splitlines()[0]})"
    if "Connection refused" in text or "ConnectError" in type(exc).__name__:
        return "connection refused" if "refused" in text else f"cannot connect ({text})"
    return text.splitlines()[0]


def _check(response: httpx.Response, what: str, with_credentials: bool) -> None:
    status = response.status_code
    if status < 400:
        return
    if status == 401:
        said = "refused the credentials" if with_credentials else "wants credentials (none given)"
        raise FetchFailed(f"{_where(what)}: 401 Unauthorized: the server {said}", 401)
    if status == 403:
        raise FetchFailed(f"{_where(what)}: 403 Forbidden", 403)
    if status == 404:
        raise FetchFailed(f"{_where(what)}: 404 Not Found", 404)
    raise FetchFailed(f"{_where(what)}: HTTP {status}", status)
