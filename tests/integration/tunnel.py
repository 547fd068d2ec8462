"""A small HTTP CONNECT proxy on 127.0.0.1 for the proxy tests.

It is a proxy, not a stand-in for the API server: it only relays bytes between phoebe and the
real kube-apiserver (TLS runs end to end through it). It records each tunnel: the CONNECT
target, the Proxy-Authorization it got, and the server name (SNI) in the client's TLS hello.
``hosts`` maps names to addresses, as the proxy's own DNS would; an unknown name gets 502.
With ``tls`` (a certificate and key) it is an https:// proxy: TLS to the proxy, and the
tunnel inside it. With ``socks`` it speaks SOCKS5 (RFC 1928, no authentication) instead of
HTTP CONNECT.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ipaddress
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Tunnel:
    target: str  # host:port from the CONNECT line
    authorization: str | None  # the Proxy-Authorization header
    sni: str | None  # the server name in the TLS ClientHello that went through


@dataclass
class TunnelProxy:
    hosts: dict[str, str] = field(default_factory=dict)
    tls: tuple[Path, Path] | None = None
    credentials: tuple[str, str] | None = None  # required user and password, if any
    socks: bool = False  # a SOCKS5 proxy instead of HTTP CONNECT
    # the first ``cut`` tunnels are closed when the client's first request arrives (its first TLS
    # application record after the handshake), unanswered: a connection lost under a request
    cut: int = 0
    cuts: list[str] = field(default_factory=list)  # the targets of the tunnels cut
    tunnels: list[Tunnel] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # CONNECT targets answered with an error
    port: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def url(self) -> str:
        scheme = "socks5" if self.socks else "https" if self.tls else "http"
        auth = f"{self.credentials[0]}:{self.credentials[1]}@" if self.credentials else ""
        return f"{scheme}://{auth}127.0.0.1:{self.port}"

    def __enter__(self) -> TunnelProxy:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(self._start())
            ready.set()
            self._loop.run_forever()
            self._loop.close()

        self._thread = threading.Thread(target=run, name="tunnel-proxy", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the test proxy did not start")
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._loop is not None and self._thread is not None
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _start(self) -> None:
        context = None
        if self.tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(self.tls[0]), str(self.tls[1]))
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=context)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await (self._socks(reader, writer) if self.socks else self._tunnel(reader, writer))
        except (OSError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _tunnel(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = (await reader.readline()).decode("latin-1").split()
        headers: dict[str, str] = {}
        while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if len(request) != 3 or request[0] != "CONNECT":
            writer.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            return
        target = request[1]
        authorization = headers.get("proxy-authorization")
        if self.credentials and authorization != _basic(*self.credentials):
            self.refused.append(target)
            writer.write(
                b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                b'Proxy-Authenticate: Basic realm="test"\r\nContent-Length: 0\r\n\r\n'
            )
            return
        host, _, port = target.rpartition(":")
        host = host.strip("[]")
        address = self.hosts.get(host) or (host if _is_ip(host) else None)
        if address is None:
            self.refused.append(target)
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return
        upstream_reader, upstream_writer = await asyncio.open_connection(address, int(port))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        hello = await reader.read(65536)
        self.tunnels.append(Tunnel(target, authorization, server_name_indication(hello)))
        upstream_writer.write(hello)
        cutting = len(self.cuts) < self.cut
        if cutting:
            self.cuts.append(target)
        outgoing = _pipe_until_request(reader, upstream_writer) if cutting else _pipe(reader, upstream_writer)
        try:
            if cutting:
                answers = asyncio.ensure_future(_pipe(upstream_reader, writer))
                await outgoing  # the request arrived: drop it and the connection, unanswered
                answers.cancel()
                writer.transport.abort()
                return
            await asyncio.gather(outgoing, _pipe(upstream_reader, writer))
        finally:
            upstream_writer.close()

    async def _socks(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        version, methods = await reader.readexactly(2)
        await reader.readexactly(methods)
        if version != 5:
            return
        writer.write(b"\x05\x00")  # no authentication
        _, command, _, kind = await reader.readexactly(4)
        if kind == 1:
            host = str(ipaddress.IPv4Address(await reader.readexactly(4)))
        elif kind == 3:
            host = (await reader.readexactly((await reader.readexactly(1))[0])).decode()
        else:
            host = str(ipaddress.IPv6Address(await reader.readexactly(16)))
        port = int.from_bytes(await reader.readexactly(2), "big")
        target = f"{host}:{port}"
        address = self.hosts.get(host) or (host if _is_ip(host) else None)
        if command != 1 or address is None:
            self.refused.append(target)
            writer.write(b"\x05\x04\x00\x01" + bytes(6))  # host unreachable
            return
        upstream_reader, upstream_writer = await asyncio.open_connection(address, port)
        writer.write(b"\x05\x00\x00\x01" + bytes(6))
        await writer.drain()
        hello = await reader.read(65536)
        self.tunnels.append(Tunnel(target, None, server_name_indication(hello)))
        upstream_writer.write(hello)
        try:
            await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
        finally:
            upstream_writer.close()


async def _pipe_until_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Relay the client's TLS records up to its first request: in TLS 1.3 the client's first
    application-data record (type 23) is its encrypted Finished, the second carries the request."""
    buffer = b""
    seen = 0
    while chunk := await reader.read(65536):
        buffer += chunk
        while len(buffer) >= 5:
            length = int.from_bytes(buffer[3:5], "big")
            if len(buffer) < 5 + length:
                break
            record, buffer = buffer[: 5 + length], buffer[5 + length :]
            if record[0] == 23:
                seen += 1
                if seen == 2:
                    return
            writer.write(record)
            await writer.drain()


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    finally:
        with contextlib.suppress(Exception):
            writer.write_eof() if writer.can_write_eof() else writer.close()


def server_name_indication(record: bytes) -> str | None:
    """The host name in a TLS ClientHello's server_name extension, or None."""
    try:
        if record[0] != 0x16 or record[5] != 0x01:  # handshake record, ClientHello
            return None
        at = 5 + 4 + 2 + 32  # record header, handshake header, version, random
        at += 1 + record[at]  # session id
        at += 2 + int.from_bytes(record[at : at + 2], "big")  # cipher suites
        at += 1 + record[at]  # compression methods
        end = at + 2 + int.from_bytes(record[at : at + 2], "big")
        at += 2
        while at + 4 <= end:
            kind = int.from_bytes(record[at : at + 2], "big")
            size = int.from_bytes(record[at + 2 : at + 4], "big")
            if kind == 0:  # server_name: list length, type 0 (host_name), name length, name
                name_length = int.from_bytes(record[at + 7 : at + 9], "big")
                return record[at + 9 : at + 9 + name_length].decode("ascii")
            at += 4 + size
    except (IndexError, UnicodeDecodeError):
        return None
    return None
