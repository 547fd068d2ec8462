"""phoebe's one Kubernetes API client: httpx (async, HTTP/2) over the credentials from ``config``.

One client per run, connections reused, a bound on requests in flight, ``429 Retry-After``
honoured, credentials refreshed when they expire (and once more after a 401). Every failure
leaves here as a phoebe exception that keeps the server's Status reason and code.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Self

from phoebe_cli.errors import (
    AuthenticationFailed,
    ClusterError,
    ClusterUnreachable,
    Forbidden,
    KubeconfigError,
    NotFound,
    RequestRejected,
)
from phoebe_cli.kube._httpx import httpx
from phoebe_cli.kube.config import ClusterAccess, NoCredentials, StaticCredentials

USER_AGENT = "phoebe"
DEFAULT_MAX_IN_FLIGHT = 64
MAX_THROTTLE_RETRIES = 5
MAX_RETRY_AFTER_SECONDS = 10.0

JSON = dict[str, Any]


@dataclass(frozen=True)
class ClientSettings:
    """Knobs a command may set; defaults suit an interactive run."""

    connect_timeout: float = 10.0
    request_timeout: float = 60.0
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT


class _Auth(httpx.Auth):
    """Adds the bearer token per request, refreshing it when it expired; after a 401,
    re-runs authentication once (exec plugins, rotated token files) and retries."""

    def __init__(self, access: ClusterAccess) -> None:
        self._access = access

    def auth_flow(self, request: httpx.Request):  # type: ignore[no-untyped-def]
        header = self._access.authorization()
        if header:
            request.headers["Authorization"] = header
        response = yield request
        if response.status_code == 401 and self._access.reauthenticate():
            header = self._access.authorization()
            if header:
                request.headers["Authorization"] = header
                yield request


def _ssl_context(access: ClusterAccess) -> ssl.SSLContext:
    try:
        if access.verify_tls:
            context = ssl.create_default_context(cafile=access.ca_file, cadata=access.ca_data)
        else:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if access.client_cert_file or access.client_cert_data:
            _load_client_certificate(context, access)
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise KubeconfigError(f"kubeconfig context {access.context!r}: TLS files unusable: {exc}") from exc
    return context


def _load_client_certificate(context: ssl.SSLContext, access: ClusterAccess) -> None:
    """ssl only loads certificates from files: inline data goes through a private temporary
    directory that is removed at once."""
    if access.client_cert_data is None and access.client_key_data is None:
        context.load_cert_chain(str(access.client_cert_file), access.client_key_file)
        return
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory(prefix="phoebe-tls-") as folder:
        cert = Path(folder) / "client.crt"
        key = Path(folder) / "client.key"
        cert.write_bytes(access.client_cert_data or Path(str(access.client_cert_file)).read_bytes())
        key.touch(mode=0o600)
        key.write_bytes(access.client_key_data or Path(str(access.client_key_file)).read_bytes())
        context.load_cert_chain(str(cert), str(key))


class KubeClient:
    """Async client for the Kubernetes API. Use as ``async with KubeClient(access) as kube``."""

    def __init__(self, access: ClusterAccess, settings: ClientSettings | None = None) -> None:
        self.access = access
        self.settings = settings or ClientSettings()
        self._gate = asyncio.Semaphore(self.settings.max_in_flight)
        self._ssl = _ssl_context(access)
        self._http = self._new_http(http2=True)
        self._http1: httpx.AsyncClient | None = None
        self.requests_sent = 0

    def _new_http(self, *, http2: bool) -> httpx.AsyncClient:
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        auth: httpx.Auth | None = None
        if isinstance(self.access.credentials, StaticCredentials | NoCredentials):
            # Fixed credentials go in the default headers: no auth flow to run per request.
            header = self.access.authorization()
            if header:
                headers["Authorization"] = header
        else:
            auth = _Auth(self.access)
        return httpx.AsyncClient(
            base_url=self.access.server,
            http2=http2,
            verify=self._ssl,
            auth=auth,
            timeout=httpx.Timeout(self.settings.request_timeout, connect=self.settings.connect_timeout),
            headers=headers,
            proxy=self.access.proxy,
            trust_env=False,
            limits=httpx.Limits(max_connections=self.settings.max_in_flight, max_keepalive_connections=8),
        )

    def _fallback(self) -> httpx.AsyncClient:
        """An HTTP/1.1 client: for streams, and for answers HTTP/2 cannot deliver (see ``request``)."""
        if self._http1 is None:
            self._http1 = self._new_http(http2=False)
        return self._http1

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()
        if self._http1 is not None:
            await self._http1.aclose()

    def _extensions(self) -> dict[str, Any] | None:
        if self.access.tls_server_name:
            return {"sni_hostname": self.access.tls_server_name}
        return None

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int | bool] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        accept: str | None = None,
        what: str | None = None,
    ) -> httpx.Response:
        """Send one request and return the response; non-2xx raise phoebe errors.

        ``what`` names the thing asked for ("kustomizations in flux-system") for error lines.
        """
        headers = {}
        if accept:
            headers["Accept"] = accept
        content = None
        if body is not None:
            headers["Content-Type"] = content_type
            content = json.dumps(body).encode()
        query = {k: _query_value(v) for k, v in (params or {}).items()}
        http = self._http
        for attempt in range(MAX_THROTTLE_RETRIES + 1):
            async with self._gate:
                try:
                    self.requests_sent += 1
                    response = await http.request(
                        method,
                        path,
                        params=query,
                        content=content,
                        headers=headers,
                        extensions=self._extensions(),
                    )
                except httpx.RemoteProtocolError as exc:
                    # The API server closes HTTP/2 connections of unauthenticated clients with
                    # GOAWAY after one request, and httpcore then loses even the answered
                    # stream. Ask again over HTTP/1.1, where the 401 arrives intact.
                    if http is self._http and _connection_terminated(exc):
                        http = self._fallback()
                        continue
                    raise _transport_error(exc, self.access.server) from exc
                except httpx.HTTPError as exc:
                    raise _transport_error(exc, self.access.server) from exc
            if response.status_code == 429 and attempt < MAX_THROTTLE_RETRIES:
                await asyncio.sleep(_retry_after(response, attempt))
                continue
            if response.is_success:
                return response
            raise _status_error(response, what or path)
        raise AssertionError("unreachable")  # pragma: no cover

    async def get_json(
        self,
        path: str,
        *,
        params: Mapping[str, str | int | bool] | None = None,
        accept: str | None = None,
        what: str | None = None,
    ) -> JSON:
        response = await self.request("GET", path, params=params, accept=accept, what=what)
        return _json_body(response)

    async def send_json(
        self,
        method: str,
        path: str,
        body: Any,
        *,
        content_type: str = "application/json",
        params: Mapping[str, str | int | bool] | None = None,
        what: str | None = None,
    ) -> JSON:
        response = await self.request(method, path, params=params, body=body, content_type=content_type, what=what)
        return _json_body(response)

    async def merge_patch(
        self,
        path: str,
        patch: Mapping[str, Any],
        *,
        field_manager: str,
        dry_run: bool = False,
        what: str | None = None,
    ) -> JSON:
        """A JSON merge patch (RFC 7386) under ``field_manager``; returns the object after it."""
        params: dict[str, str | int | bool] = {"fieldManager": field_manager}
        if dry_run:
            params["dryRun"] = "All"
        return await self.send_json(
            "PATCH", path, patch, content_type="application/merge-patch+json", params=params, what=what
        )

    async def list_all(
        self,
        path: str,
        *,
        params: Mapping[str, str | int | bool] | None = None,
        page_size: int = 500,
        what: str | None = None,
    ) -> tuple[list[JSON], str]:
        """Every item of a collection, following ``continue`` tokens; returns (items, resourceVersion)."""
        items: list[JSON] = []
        query: dict[str, str | int | bool] = dict(params or {})
        query["limit"] = page_size
        while True:
            page = await self.get_json(path, params=query, what=what)
            items.extend(page.get("items") or [])
            metadata = page.get("metadata") or {}
            token = metadata.get("continue")
            if not token:
                return items, str(metadata.get("resourceVersion", ""))
            query["continue"] = token

    async def stream_lines(
        self,
        path: str,
        *,
        params: Mapping[str, str | int | bool] | None = None,
        what: str | None = None,
    ) -> AsyncIterator[str]:
        """Lines of a streaming response (watch events, logs) as they arrive.

        Streams go over HTTP/1.1, one connection each: with several long-lived streams on one
        HTTP/2 connection, httpcore can leave a stream's frames queued while that stream's reader
        waits on the socket for more, delaying events until other traffic arrives.
        """
        query = {k: _query_value(v) for k, v in (params or {}).items()}
        timeout = httpx.Timeout(None, connect=self.settings.connect_timeout)
        try:
            async with self._fallback().stream(
                "GET", path, params=query, timeout=timeout, extensions=self._extensions()
            ) as response:
                self.requests_sent += 1
                if not response.is_success:
                    await response.aread()
                    raise _status_error(response, what or path)
                async for line in response.aiter_lines():
                    yield line
        except httpx.HTTPError as exc:
            raise _transport_error(exc, self.access.server) from exc


def _connection_terminated(exc: httpx.RemoteProtocolError) -> bool:
    return any("ConnectionTerminated" in str(cause) for cause in _causes(exc))


def _query_value(value: str | int | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _json_body(response: httpx.Response) -> JSON:
    try:
        data = response.json()
    except ValueError as exc:
        raise ClusterUnreachable(
            f"the server at {response.request.url.host} did not answer with JSON "
            f"(HTTP {response.status_code}); is this a Kubernetes API server?"
        ) from exc
    if not isinstance(data, dict):
        raise ClusterUnreachable("the server answered with unexpected JSON")
    return data


def _retry_after(response: httpx.Response, attempt: int) -> float:
    header = response.headers.get("Retry-After", "")
    try:
        seconds = float(header)
    except ValueError:
        seconds = 0.5 * (2**attempt)
    return max(0.0, min(seconds, MAX_RETRY_AFTER_SECONDS))


def _status_error(response: httpx.Response, what: str) -> ClusterError:
    """A phoebe error for a non-2xx answer, keeping the Status reason and message."""
    code = response.status_code
    reason: str | None = None
    message: str | None = None
    try:
        body = response.json()
        if isinstance(body, dict) and body.get("kind") == "Status":
            reason = body.get("reason") or None
            message = body.get("message") or None
    except ValueError:
        text = response.text.strip()
        message = text.splitlines()[0][:200] if text else None
    detail = f"HTTP {code} {response.request.method} {response.request.url}"
    suffix = f": {message}" if message and message != reason else ""
    if code == 401:
        return AuthenticationFailed(
            f"the cluster rejected the credentials (401 Unauthorized){suffix}",
            reason=reason or "Unauthorized",
            code=code,
            detail=detail,
        )
    if code == 403:
        return Forbidden(f"forbidden: {message or what}", reason=reason or "Forbidden", code=code, detail=detail)
    if code == 404:
        return NotFound(f"not found: {message or what}", reason=reason or "NotFound", code=code, detail=detail)
    if code == 429:
        return ClusterUnreachable(
            f"the API server is throttling requests (429 TooManyRequests){suffix}",
            reason=reason,
            code=code,
            detail=detail,
        )
    if code >= 500:
        return ClusterUnreachable(
            f"the API server failed ({code} {reason or response.reason_phrase}){suffix}",
            reason=reason,
            code=code,
            detail=detail,
        )
    return RequestRejected(
        f"the API server refused {what} ({code} {reason or response.reason_phrase}){suffix}",
        reason=reason,
        code=code,
        detail=detail,
    )


def _causes(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _transport_error(exc: httpx.HTTPError, server: str) -> ClusterError:
    """Connection, DNS, TLS and timeout failures as one line naming the server."""
    text = str(exc) or type(exc).__name__
    for cause in _causes(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            why = cause.verify_message or cause.reason
            return ClusterUnreachable(f"TLS verification failed for {server}: {why}", detail=text)
        if isinstance(cause, ssl.SSLError):
            return ClusterUnreachable(f"TLS handshake with {server} failed: {cause.reason or cause}", detail=text)
        if isinstance(cause, socket.gaierror):
            return ClusterUnreachable(f"cannot reach the cluster at {server}: host name not found", detail=text)
        if isinstance(cause, ConnectionRefusedError):
            return ClusterUnreachable(f"cannot reach the cluster at {server}: connection refused", detail=text)
    if isinstance(exc, httpx.ConnectTimeout):
        return ClusterUnreachable(f"cannot reach the cluster at {server}: connection timed out", detail=text)
    if isinstance(exc, httpx.TimeoutException):
        return ClusterUnreachable(f"the cluster at {server} did not answer in time", detail=text)
    return ClusterUnreachable(f"cannot reach the cluster at {server}: {text}", detail=text)
