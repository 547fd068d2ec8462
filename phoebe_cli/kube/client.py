"""phoebe's one Kubernetes API client: httpx (async, HTTP/2) over the credentials from ``config``.

One client per run, connections reused, a bound on requests in flight, credentials refreshed
when they expire (and once more after a 401). Every failure leaves here as a phoebe exception
that keeps the server's Status reason and code.

Retries (``_retryable``): an answer of 429 (the server's API Priority and Fairness, or its
in-flight limit, turned the request away before handling it) is asked again whatever the method;
500, 502, 503 and 504 only for a GET — a PATCH, POST, PUT or DELETE that failed there may have
happened, and is never sent twice. Streams (watches, logs) are retried the same way while they are
being established, never once a line has arrived. A request whose connection (or HTTP/2 stream)
is lost before its answer is asked again when it is a read or a dry-run (it changed nothing). At most
``MAX_RETRIES`` more attempts, waiting
``Retry-After`` when the server sends it (at most ``MAX_RETRY_AFTER_SECONDS``), else
``RETRY_BACKOFF_SECONDS`` doubled each time, plus up to half again at random (so that requests
turned away together do not all come back together), and never more than ``MAX_RETRY_WAIT_SECONDS``
of waiting for one request in all.
"""

from __future__ import annotations

import asyncio
import json
import random
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
from phoebe_cli.kube.config import ClusterAccess, Impersonation, NoCredentials, StaticCredentials

USER_AGENT = "phoebe"
DEFAULT_MAX_IN_FLIGHT = 64
MAX_RETRIES = 5  # more attempts after the first: 6 in all
RETRY_BACKOFF_SECONDS = 0.2  # the first wait without Retry-After; doubled for each next one
MAX_RETRY_AFTER_SECONDS = 10.0  # a longer Retry-After is waited this long
MAX_RETRY_WAIT_SECONDS = 15.0  # waiting for one request, all retries together
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD"})

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


class _ServerNameContext(ssl.SSLContext):
    """TLS that always uses one server name (the kubeconfig's ``tls-server-name``) for SNI and
    for checking the server's certificate, whatever host the connection is for.

    httpx's ``sni_hostname`` extension is not enough: httpcore ignores it inside a proxy tunnel.
    This works for direct and tunnelled connections alike."""

    server_name: str = ""

    def wrap_bio(
        self,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLObject:
        return super().wrap_bio(incoming, outgoing, server_side, self.server_name, session)

    def wrap_socket(
        self,
        sock: socket.socket,
        server_side: bool = False,
        do_handshake_on_connect: bool = True,
        suppress_ragged_eofs: bool = True,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLSocket:
        return super().wrap_socket(
            sock, server_side, do_handshake_on_connect, suppress_ragged_eofs, self.server_name, session
        )


def _ssl_context(access: ClusterAccess, *, server_name: str | None = None) -> ssl.SSLContext:
    """The TLS settings of the cluster entry. As with client-go, a CA in the kubeconfig is the
    only one trusted; without one, the system's CAs are.

    Each HTTP client gets a context of its own: httpcore sets the ALPN protocols on the context
    it is given, and the HTTP/2 client and the HTTP/1.1 one want different ones."""
    try:
        context: ssl.SSLContext
        if server_name:
            named = _ServerNameContext(ssl.PROTOCOL_TLS_CLIENT)
            named.server_name = server_name
            context = named
        else:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if not access.verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        elif access.ca_file or access.ca_data:
            context.load_verify_locations(cafile=access.ca_file, cadata=access.ca_data)
        else:
            context.load_default_certs(ssl.Purpose.SERVER_AUTH)
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
        self._http = self._new_http(http2=True)
        self._http1: httpx.AsyncClient | None = None
        self.requests_sent = 0

    def _new_http(self, *, http2: bool) -> httpx.AsyncClient:
        """A client with everything the kubeconfig asks for on every request, streams included:
        credentials, impersonation, proxy, TLS server name, compression."""
        access = self.access
        headers: list[tuple[bytes, bytes]] = [(b"User-Agent", USER_AGENT.encode()), (b"Accept", b"application/json")]
        auth: httpx.Auth | None = None
        if isinstance(access.credentials, StaticCredentials | NoCredentials):
            # Fixed credentials go in the default headers: no auth flow to run per request.
            header = access.authorization()
            if header:
                headers.append((b"Authorization", header.encode()))
        else:
            auth = _Auth(access)
        if access.impersonate is not None:
            headers.extend((name.encode(), value) for name, value in access.impersonate.headers())
        proxy: httpx.Proxy | None = None
        if access.proxy is not None:
            # As Go's transport: TLS to an https proxy is checked with the cluster's trust settings.
            proxy_tls = _ssl_context(access) if access.proxy.url.startswith("https:") else None
            proxy = httpx.Proxy(access.proxy.url, ssl_context=proxy_tls)
        client = httpx.AsyncClient(
            base_url=access.server,
            http2=http2,
            verify=_ssl_context(access, server_name=access.tls_server_name),
            auth=auth,
            timeout=httpx.Timeout(self.settings.request_timeout, connect=self.settings.connect_timeout),
            headers=headers,
            proxy=proxy,
            trust_env=False,  # the proxy was decided in config, as client-go decides it
            limits=httpx.Limits(max_connections=self.settings.max_in_flight, max_keepalive_connections=8),
        )
        if access.disable_compression:
            del client.headers["Accept-Encoding"]  # client-go: no Accept-Encoding: gzip
        return client

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
        retries = _Retries()
        while True:
            async with self._gate:
                try:
                    self.requests_sent += 1
                    response = await http.request(
                        method,
                        path,
                        params=query,
                        content=content,
                        headers=headers,
                    )
                except httpx.RemoteProtocolError as exc:
                    # The API server closes HTTP/2 connections of unauthenticated clients with
                    # GOAWAY after one request, and httpcore then loses even the answered
                    # stream. Ask again over HTTP/1.1, where the 401 arrives intact.
                    if http is self._http and _connection_terminated(exc):
                        http = self._fallback()
                        continue
                    # a stream the connection lost before its answer: a read, or a dry-run, has
                    # changed nothing and is asked again; a write is never sent twice
                    if _resendable(method, query) and await retries.lost():
                        continue
                    raise retries.told(_transport_error(exc, self.access)) from exc
                except (httpx.ReadError, httpx.WriteError) as exc:  # the connection reset under it
                    if _resendable(method, query) and await retries.lost():
                        continue
                    raise retries.told(_transport_error(exc, self.access)) from exc
                except httpx.LocalProtocolError as exc:
                    # h2 refuses to go on with a stream the server closed while the request was
                    # still being sent (the API server answers a refused write before reading
                    # its body): ask again over HTTP/1.1, where that answer arrives whole
                    if _stream_closed(exc) and _resendable(method, query) and await retries.lost():
                        http = self._fallback()
                        continue
                    raise retries.told(_transport_error(exc, self.access)) from exc
                except httpx.HTTPError as exc:
                    raise _transport_error(exc, self.access) from exc
            if response.is_success:
                return response
            if await retries.wait(method, response):
                continue
            raise retries.told(_status_error(response, what or path, self.access.impersonate))

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
        retries = _Retries()
        while True:
            try:
                async with self._fallback().stream("GET", path, params=query, timeout=timeout) as response:
                    self.requests_sent += 1
                    if not response.is_success:
                        await response.aread()
                        # not yet established: nothing was yielded, so asking again is safe
                        if not retries.should_retry("GET", response):
                            raise retries.told(_status_error(response, what or path, self.access.impersonate))
                    else:
                        async for line in response.aiter_lines():
                            yield line
                        return
            except httpx.HTTPError as exc:
                raise _transport_error(exc, self.access) from exc
            await retries.sleep()


def _resendable(method: str, query: Mapping[str, str]) -> bool:
    return method.upper() in IDEMPOTENT_METHODS or query.get("dryRun") == "All"


def _stream_closed(exc: BaseException) -> bool:
    return any(type(cause).__name__ == "StreamClosedError" for cause in _causes(exc))


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


def _retryable(method: str, status: int) -> bool:
    """Whether an answer may be asked again: 429 always (turned away before it was handled),
    500/502/503/504 only for idempotent methods (a write that failed there may have happened)."""
    if status == 429:
        return True
    return status in RETRY_STATUSES and method.upper() in IDEMPOTENT_METHODS


def _retry_after(response: httpx.Response, attempt: int) -> float:
    """How long to wait before attempt ``attempt + 1``: the server's ``Retry-After`` (seconds;
    at most ``MAX_RETRY_AFTER_SECONDS``), else the doubling backoff; plus up to half again."""
    header = response.headers.get("Retry-After", "")
    try:
        seconds = min(max(0.0, float(header)), MAX_RETRY_AFTER_SECONDS)
    except ValueError:
        seconds = RETRY_BACKOFF_SECONDS * (2**attempt)
    return seconds * (1 + random.uniform(0.0, 0.5))  # jitter: requests turned away together spread out


class _Retries:
    """The retry budget of one request: ``MAX_RETRIES`` attempts more, ``MAX_RETRY_WAIT_SECONDS``
    of waiting in all."""

    def __init__(self) -> None:
        self.attempts = 1
        self.waited = 0.0
        self._next_wait = 0.0

    def should_retry(self, method: str, response: httpx.Response) -> bool:
        """Whether ``response`` is asked again; if so, ``sleep()`` waits the time it takes."""
        if not _retryable(method, response.status_code) or self.attempts > MAX_RETRIES:
            return False
        wait = _retry_after(response, self.attempts - 1)
        if self.waited + wait > MAX_RETRY_WAIT_SECONDS:
            return False
        self._next_wait = wait
        return True

    async def sleep(self) -> None:
        await asyncio.sleep(self._next_wait)
        self.waited += self._next_wait
        self.attempts += 1

    async def wait(self, method: str, response: httpx.Response) -> bool:
        """``should_retry`` and, when it says so, ``sleep``."""
        if not self.should_retry(method, response):
            return False
        await self.sleep()
        return True

    async def lost(self) -> bool:
        """Another attempt after a lost stream (no answer to wait on: the doubling backoff)."""
        if self.attempts > MAX_RETRIES:
            return False
        wait = RETRY_BACKOFF_SECONDS * (2 ** (self.attempts - 1)) * (1 + random.uniform(0.0, 0.5))
        if self.waited + wait > MAX_RETRY_WAIT_SECONDS:
            return False
        self._next_wait = wait
        await self.sleep()
        return True

    def told(self, error: ClusterError) -> ClusterError:
        """``error``, saying how often it was asked when that was more than once."""
        if self.attempts > 1:
            error.message = f"{error.message} (asked {self.attempts} times in {self.waited:.1f}s)"
        return error


def _status_error(response: httpx.Response, what: str, impersonate: Impersonation | None = None) -> ClusterError:
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
        # For paths (not resources) the server's own message starts with "forbidden: " already.
        text = message.removeprefix("forbidden: ") if message else what
        if impersonate is not None and message and "impersonate" in message:
            text = f'you may not act as "{impersonate.user}": {text}'
        return Forbidden(f"forbidden: {text}", reason=reason or "Forbidden", code=code, detail=detail)
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


def _transport_error(exc: httpx.HTTPError, access: ClusterAccess) -> ClusterError:
    """Connection, DNS, TLS, proxy and timeout failures as one line naming the server (and the
    proxy, when one is in the way)."""
    text = str(exc) or type(exc).__name__
    server = access.server
    proxy = access.proxy
    if proxy is not None:
        if isinstance(exc, httpx.ProxyError):
            return ClusterUnreachable(
                f"the proxy {proxy.shown} ({proxy.source}) did not connect to {server}: {text}", detail=text
            )
        server = f"{server} through the proxy {proxy.shown} ({proxy.source})"
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
        if _stream_closed(cause):  # h2: the server reset or dropped the stream
            return ClusterUnreachable(
                f"the connection to {server} lost the request (HTTP/2 stream closed)", detail=text
            )
    if isinstance(exc, httpx.ConnectTimeout):
        return ClusterUnreachable(f"cannot reach the cluster at {server}: connection timed out", detail=text)
    if isinstance(exc, httpx.TimeoutException):
        return ClusterUnreachable(f"the cluster at {server} did not answer in time", detail=text)
    return ClusterUnreachable(f"cannot reach the cluster at {server}: {text}", detail=text)
