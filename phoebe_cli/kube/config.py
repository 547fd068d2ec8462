"""Turn a kubeconfig (or the in-cluster service account) into what the HTTP client needs.

Everything a kubeconfig says is either honoured as kubectl (client-go) honours it, or refused
with a ``KubeconfigError`` naming the context and the file; nothing is silently dropped:

- The cluster entry (``server``, ``certificate-authority(-data)``, ``insecure-skip-tls-verify``,
  ``tls-server-name``, ``proxy-url``, ``disable-compression``) is always read here.
- Static credentials (a token, a token file, a client certificate, basic auth, or none) are
  read here too. This is what nearly every kubeconfig holds, and it keeps ``kubernetes`` out
  of the run: importing ``kubernetes.config`` costs ~0.25 s, more than the rest of a
  ``phoebe status`` run.
- Credentials that come from somewhere else (an ``exec`` plugin, an ``auth-provider`` such as
  OIDC) and the in-cluster service account: ``kubernetes.config`` does the authentication, so
  phoebe authenticates exactly as the official client does, refreshes included.
- Impersonation (``as``, ``as-uid``, ``as-groups``, ``as-user-extra``) becomes ``Impersonate-*``
  headers on every request, whichever way the credentials came.
- Without a ``proxy-url``, the proxy comes from ``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY``,
  decided as Go's net/http decides it (``environment_proxy``).

Credentials never appear in a ``repr``: every field that holds one is ``repr=False``.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import SplitResult, urlsplit

from phoebe_cli.errors import KubeconfigError, UsageError
from phoebe_cli.kube.kubeconfig import Entry, MergedKubeconfig, read_kubeconfig

IN_CLUSTER_CONTEXT = "(in-cluster)"
TOKEN_FILE_REREAD_SECONDS = 60.0  # as client-go's cached token source


class Credentials(Protocol):
    def authorization(self) -> str | None:
        """The Authorization header value for the next request, refreshed if needed."""

    def reauthenticate(self) -> bool:
        """Get fresh credentials after a 401; True if that may help."""


class NoCredentials:
    def authorization(self) -> str | None:
        return None

    def reauthenticate(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "NoCredentials()"


@dataclass
class StaticCredentials:
    header: str = field(repr=False)

    def authorization(self) -> str | None:
        return self.header

    def reauthenticate(self) -> bool:
        return False


@dataclass
class TokenFileCredentials:
    """A bearer token read from a file, re-read now and then (it may be rotated).

    As in client-go, an inline ``token`` next to ``tokenFile`` is only used while the file
    cannot be read."""

    path: str
    fallback: str | None = field(default=None, repr=False)
    _token: str = field(default="", repr=False)
    _read_at: float = field(default=-1e9, repr=False)

    def authorization(self) -> str | None:
        if time.monotonic() - self._read_at > TOKEN_FILE_REREAD_SECONDS:
            self._read()
        return f"Bearer {self._token}"

    def reauthenticate(self) -> bool:
        self._read()
        return True

    def _read(self) -> None:
        try:
            self._token = Path(self.path).read_text().strip()
        except OSError as exc:
            if self.fallback is None:
                raise KubeconfigError(f"token file cannot be read: {self.path}: {exc.strerror}") from exc
            self._token = self.fallback
        self._read_at = time.monotonic()


class _ClientConfiguration:
    """Duck-typed stand-in for ``kubernetes.client.Configuration``: the loaders only set attributes."""

    def __init__(self) -> None:
        self.host: str | None = None
        self.ssl_ca_cert: str | None = None
        self.cert_file: str | None = None
        self.key_file: str | None = None
        self.verify_ssl: bool = True
        self.tls_server_name: str | None = None
        self.proxy: str | None = None
        self.api_key: dict[str, str] = {}
        self.api_key_prefix: dict[str, str] = {}
        self.refresh_api_key_hook: Callable[[Any], None] | None = None

    def __repr__(self) -> str:  # api_key holds the token: never shown
        return f"_ClientConfiguration(host={self.host!r})"


@dataclass
class KubernetesCredentials:
    """Credentials kept fresh by ``kubernetes.config`` (exec plugins, OIDC, in-cluster)."""

    configuration: _ClientConfiguration = field(repr=False)
    reload: Callable[[], None] | None = field(default=None, repr=False)

    def authorization(self) -> str | None:
        conf = self.configuration
        if conf.refresh_api_key_hook is not None:
            conf.refresh_api_key_hook(conf)
        for key in ("BearerToken", "authorization"):
            value = conf.api_key.get(key)
            if value:
                prefix = conf.api_key_prefix.get(key)
                if prefix:
                    return f"{prefix} {value}"
                return value if " " in value else f"Bearer {value}"
        return None

    def reauthenticate(self) -> bool:
        if self.reload is None:
            return False
        self.reload()
        return True


# --- impersonation --------------------------------------------------------------------------

# net/http's token characters: an Impersonate-Extra-<key> header keeps these, and
# percent-encodes every other byte of the key (and '%' itself), as client-go's headerKeyEscape.
_TOKEN_BYTES = frozenset(b"!#$&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


def header_key_escape(key: str) -> str:
    """An ``as-user-extra`` key as it goes into a header name (client-go's headerKeyEscape)."""
    return "".join(chr(b) if b in _TOKEN_BYTES else f"%{b:02X}" for b in key.encode())


@dataclass(frozen=True)
class Impersonation:
    """Whom every request acts as: ``Impersonate-*`` headers, as client-go sends them."""

    user: str
    uid: str | None = None
    groups: tuple[str, ...] = ()
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def headers(self) -> list[tuple[str, bytes]]:
        found: list[tuple[str, bytes]] = [("Impersonate-User", self.user.encode())]
        if self.uid:
            found.append(("Impersonate-Uid", self.uid.encode()))
        found.extend(("Impersonate-Group", group.encode()) for group in self.groups)
        for key, values in self.extra:
            found.extend((f"Impersonate-Extra-{header_key_escape(key)}", value.encode()) for value in values)
        return found


@dataclass(frozen=True)
class ImpersonationFlags:
    """kubectl's ``--as``, ``--as-uid`` and ``--as-group``: a value given replaces the
    kubeconfig's (groups as a whole list), as clientcmd's overrides do."""

    user: str | None = None
    uid: str | None = None
    groups: tuple[str, ...] = ()


# --- proxies ----------------------------------------------------------------------------------

KUBECONFIG_PROXY_SCHEMES = ("http", "https", "socks5")  # client-go's parseProxyURL
ENVIRONMENT_PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")  # Go's net/http Transport
_DEFAULT_PORTS = {"http": "80", "https": "443"}


@dataclass(frozen=True)
class Proxy:
    """The proxy every request goes through, and where that was said."""

    url: str = field(repr=False)  # may carry a user name and password
    source: str  # "proxy-url of cluster 'c'", "HTTPS_PROXY"

    @property
    def shown(self) -> str:
        """The URL with its password masked, for messages."""
        return redact_url(self.url)

    def __repr__(self) -> str:
        return f"Proxy({self.shown!r}, source={self.source!r})"


def redact_url(url: str) -> str:
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "(a URL that cannot be parsed)"
    if password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{parts.username}:***@{host}").geturl()


def _socks_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("socksio") is not None


def _checked_proxy(url: str, source: str, schemes: tuple[str, ...], fail: Callable[[str], Exception]) -> Proxy:
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port  # raises ValueError for a port that is not a number
    except ValueError:
        raise fail(f"{redact_url(url)!r}: not a URL") from None
    if parts.scheme not in schemes:
        raise fail(f"{redact_url(url)!r}: unsupported scheme {parts.scheme!r}, must be {_one_of(schemes)}")
    if not host:
        raise fail(f"{redact_url(url)!r}: no host")
    if parts.scheme.startswith("socks") and not _socks_available():
        raise fail(
            f"{redact_url(url)!r}: a SOCKS proxy, which this phoebe cannot use: "
            "the socksio package is not installed (pip install 'httpx[socks]')"
        )
    return Proxy(url, source)


def _one_of(names: tuple[str, ...]) -> str:
    return ", ".join(names[:-1]) + f" or {names[-1]}"


def environment_proxy(server: str, environ: Mapping[str, str] | None = None) -> Proxy | None:
    """The proxy Go's ``http.ProxyFromEnvironment`` picks for ``server`` (what client-go uses
    when the kubeconfig has no ``proxy-url``), or None for a direct connection.

    HTTPS_PROXY (then https_proxy) for https servers, HTTP_PROXY (then http_proxy) for http
    ones; never for localhost or a loopback address; not for hosts NO_PROXY (then no_proxy)
    matches. A value without a scheme means http://."""
    env = os.environ if environ is None else environ
    parts = urlsplit(server)
    if parts.scheme == "https":
        name, value = _first_set(env, "HTTPS_PROXY", "https_proxy")
    elif parts.scheme == "http":
        name, value = _first_set(env, "HTTP_PROXY", "http_proxy")
        if value and env.get("REQUEST_METHOD"):
            raise UsageError(f"refusing to use {name} in a CGI environment (REQUEST_METHOD is set), as Go does")
    else:
        return None
    if not value:
        return None
    host = parts.hostname or ""
    try:
        port = str(parts.port or _DEFAULT_PORTS[parts.scheme])
    except ValueError:
        return None  # the server URL itself is broken: the request will say so
    if not use_proxy(host, port, _first_set(env, "NO_PROXY", "no_proxy")[1]):
        return None
    candidate = urlsplit(value) if "://" in value else SplitResult("", "", "", "", "")
    url = value if candidate.scheme and candidate.netloc else f"http://{value}"
    return _checked_proxy(url, name, ENVIRONMENT_PROXY_SCHEMES, lambda why: UsageError(f"{name}: {why}"))


def _first_set(env: Mapping[str, str], *names: str) -> tuple[str, str]:
    for name in names:
        value = env.get(name)
        if value:
            return name, value
    return names[0], ""


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _split_host_port(text: str) -> tuple[str, str] | None:
    """Go's net.SplitHostPort, for NO_PROXY entries; None where it fails."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or text[end + 1 : end + 2] != ":":
            return None
        return text[1:end], text[end + 2 :]
    if text.count(":") != 1:
        return None
    host, _, port = text.partition(":")
    return host, port


def _ascii(host: str) -> str:
    try:
        return host.encode("idna").decode() if not host.isascii() else host
    except UnicodeError:
        return host


def use_proxy(host: str, port: str, no_proxy: str) -> bool:
    """False when ``host:port`` must be reached directly (golang.org/x/net/http/httpproxy's useProxy)."""
    if host == "localhost":
        return False
    ip = _ip(host)
    if ip is not None and ip.is_loopback:
        return False
    host = _ascii(host.strip().lower())
    for entry in no_proxy.split(","):
        rule = entry.strip().lower()
        if not rule:
            continue
        if rule == "*":
            return False
        if "/" in rule:
            try:
                network = ipaddress.ip_network(rule, strict=False)
            except ValueError:
                pass
            else:
                if ip is not None and ip in network:
                    return False
                continue
        split = _split_host_port(rule)
        rule_host, rule_port = split if split is not None else (rule, "")
        if not rule_host:
            continue
        rule_ip = _ip(rule_host)
        if rule_ip is not None:
            if ip == rule_ip and rule_port in ("", port):
                return False
            continue
        if rule_host.startswith("*."):
            rule_host = rule_host[1:]
        match_host = not rule_host.startswith(".")
        suffix = _ascii("." + rule_host if match_host else rule_host)
        if ip is None and (host.endswith(suffix) or (match_host and host == suffix[1:])) and rule_port in ("", port):
            return False
    return True


# --- the access ------------------------------------------------------------------------------


@dataclass
class ClusterAccess:
    """Where the API server is, how to reach it, and how to authenticate to it."""

    server: str
    context: str
    credentials: Credentials = field(default_factory=NoCredentials, repr=False)
    namespace: str | None = None  # the context's default namespace, when it sets one
    ca_file: str | None = None
    ca_data: str | None = field(default=None, repr=False)  # PEM
    client_cert_file: str | None = None
    client_key_file: str | None = None
    client_cert_data: bytes | None = field(default=None, repr=False)  # PEM
    client_key_data: bytes | None = field(default=None, repr=False)  # PEM
    verify_tls: bool = True
    tls_server_name: str | None = None  # SNI, and the name the certificate must carry
    proxy: Proxy | None = None
    disable_compression: bool = False
    impersonate: Impersonation | None = None

    def authorization(self) -> str | None:
        return self.credentials.authorization()

    def reauthenticate(self) -> bool:
        return self.credentials.reauthenticate()


def kubeconfig_paths(explicit: str | None) -> str | None:
    """The kubeconfig path list kubectl would use, or None when there is none at all."""
    if explicit:
        return explicit
    env = os.environ.get("KUBECONFIG")
    if env:
        return env
    default = Path.home() / ".kube" / "config"
    return str(default) if default.exists() else None


def _in_cluster_available() -> bool:
    return (
        bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
        and Path("/var/run/secrets/kubernetes.io/serviceaccount/token").exists()
    )


def load_cluster_access(
    kubeconfig: str | None, context: str | None, impersonate: ImpersonationFlags | None = None
) -> ClusterAccess:
    """Resolve the cluster to talk to, as kubectl does: --kubeconfig, $KUBECONFIG, ~/.kube/config,
    then the in-cluster service account. ``impersonate`` holds kubectl-style --as flags, which
    win over the kubeconfig's. Raises KubeconfigError (or UsageError) with one clear line."""
    flags = impersonate or ImpersonationFlags()
    paths = kubeconfig_paths(kubeconfig)
    if paths is None:
        if context is None and _in_cluster_available():
            access = _load_in_cluster()
            access.impersonate = _impersonation(IN_CLUSTER_CONTEXT, None, flags)
            access.proxy = environment_proxy(access.server)
            return access
        raise KubeconfigError(
            "no kubeconfig: ~/.kube/config does not exist and $KUBECONFIG is not set (use --kubeconfig PATH)"
        )
    merged = read_kubeconfig(paths)
    chosen = _choose_context(merged, context)
    context_entry = merged.contexts[chosen]
    cluster = _referenced(merged, context_entry, "cluster")
    user = _referenced(merged, context_entry, "user")  # None: the context names no user (anonymous)
    if cluster is None:  # pragma: no cover - _referenced raises for clusters
        raise AssertionError("unreachable")
    access = _cluster_access(chosen, cluster)
    if user is not None:
        _check_user(chosen, user)
        if "exec" in user.value or "auth-provider" in user.value:
            _credentials_from_kubernetes(access, merged, chosen)
        else:
            _static_credentials(access, chosen, user)
    access.impersonate = _impersonation(chosen, user, flags)
    namespace = context_entry.value.get("namespace")
    access.namespace = str(namespace) if namespace else None
    if access.proxy is None:
        access.proxy = environment_proxy(access.server)
    return access


def _choose_context(merged: MergedKubeconfig, context: str | None) -> str:
    names = ", ".join(merged.contexts) or "none"
    chosen = context or merged.current_context
    if not chosen:
        raise KubeconfigError(f"no current context in the kubeconfig; choose one with --context (contexts: {names})")
    if chosen not in merged.contexts:
        raise KubeconfigError(f"context {chosen!r} not found in the kubeconfig (contexts: {names})")
    return chosen


def _referenced(merged: MergedKubeconfig, context: Entry, key: str) -> Entry | None:
    """The cluster or user entry a context names. A named entry that no file defines is an
    error (client-go's validation: 'user "x" was not found for context "y"'); a context that
    names no user at all is anonymous."""
    table: dict[str, Entry] = merged.clusters if key == "cluster" else merged.users
    name = context.value.get(key)
    if not name:
        if key == "user":
            return None
        raise KubeconfigError(f"kubeconfig context {context.name!r} names no cluster ({context.source})")
    entry = table.get(str(name))
    if entry is not None:
        return entry
    known = ", ".join(table) or "none"
    if len(merged.files) == 1:
        where = f"{merged.files[0]} does not define ({key}s: {known})"
    else:
        files = ", ".join(str(f) for f in merged.files)
        where = f"none of the kubeconfig files defines ({files}; {key}s: {known})"
    raise KubeconfigError(f"kubeconfig context {context.name!r} names {key} {str(name)!r}, which {where}")


def _problem(context: str, entry: Entry, kind: str, why: str) -> KubeconfigError:
    return KubeconfigError(f"kubeconfig context {context!r}: {kind} {entry.name!r} ({entry.source}): {why}")


def _check_user(context: str, user: Entry) -> None:
    """What client-go's validateAuthInfo refuses (kubectl will not run with it either)."""
    value = user.value
    problems: list[str] = []
    methods = [name for name, present in (("token", value.get("token")), ("basic auth", _basic(value))) if present]
    if len(methods) > 1:
        problems.append(f"more than one authentication method ({', '.join(methods)}); only one is allowed")
    if value.get("client-certificate") or value.get("client-certificate-data"):
        if value.get("client-certificate") and value.get("client-certificate-data"):
            problems.append("client-certificate and client-certificate-data are both set")
        if value.get("client-key") and value.get("client-key-data"):
            problems.append("client-key and client-key-data are both set")
        if not value.get("client-key") and not value.get("client-key-data"):
            problems.append("a client certificate needs client-key or client-key-data")
    if "exec" in value and "auth-provider" in value:
        problems.append("exec and auth-provider cannot both be set")
    if problems:
        raise _problem(context, user, "user", "; ".join(problems))


def _basic(value: Mapping[str, Any]) -> bool:
    return bool(value.get("username")) or bool(value.get("password"))


def _decode(entry: Entry, key: str, context: str) -> bytes | None:
    raw = entry.value.get(key)
    if not raw:
        return None
    try:
        return base64.b64decode(str(raw), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise KubeconfigError(f"kubeconfig context {context!r}: {key} is not valid base64") from exc


def _existing(path: str | None, what: str, context: str) -> str | None:
    if path is not None and not Path(path).is_file():
        raise KubeconfigError(f"kubeconfig context {context!r}: {what} not found: {path}")
    return path


def _string(entry: Entry, key: str, context: str, kind: str) -> str | None:
    raw = entry.value.get(key)
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise _problem(context, entry, kind, f"{key} must be a string")
    return raw


def _cluster_access(context: str, cluster: Entry) -> ClusterAccess:
    """The cluster entry, read whole: every field client-go honours, whichever credentials follow."""
    value = cluster.value
    server = _string(cluster, "server", context, "cluster")
    if not server:
        raise KubeconfigError(f"kubeconfig context {context!r} has no cluster server URL")
    ca_file = cluster.path("certificate-authority")
    if ca_file and value.get("certificate-authority-data"):
        raise _problem(context, cluster, "cluster", "certificate-authority and certificate-authority-data are both set")
    for flag in ("insecure-skip-tls-verify", "disable-compression"):
        if not isinstance(value.get(flag, False), bool):
            raise _problem(context, cluster, "cluster", f"{flag} must be true or false")
    if value.get("insecure-skip-tls-verify") and (ca_file or value.get("certificate-authority-data")):
        # client-go: "specifying a root certificates file with the insecure flag is not allowed"
        raise _problem(context, cluster, "cluster", "a certificate authority and insecure-skip-tls-verify are both set")
    access = ClusterAccess(
        server=server.rstrip("/"),
        context=context,
        ca_file=_existing(ca_file, "certificate-authority", context),
        verify_tls=not value.get("insecure-skip-tls-verify", False),
        tls_server_name=_string(cluster, "tls-server-name", context, "cluster"),
        disable_compression=bool(value.get("disable-compression", False)),
    )
    ca_data = _decode(cluster, "certificate-authority-data", context)
    if ca_data:
        access.ca_data = ca_data.decode(errors="replace")
    proxy_url = _string(cluster, "proxy-url", context, "cluster")
    if proxy_url:
        access.proxy = _checked_proxy(
            proxy_url,
            f"proxy-url of cluster {cluster.name!r}",
            KUBECONFIG_PROXY_SCHEMES,
            lambda why: _problem(context, cluster, "cluster", f"proxy-url {why}"),
        )
    return access


def _static_credentials(access: ClusterAccess, context: str, user: Entry) -> None:
    access.client_cert_file = _existing(user.path("client-certificate"), "client-certificate", context)
    access.client_key_file = _existing(user.path("client-key"), "client-key", context)
    access.client_cert_data = _decode(user, "client-certificate-data", context)
    access.client_key_data = _decode(user, "client-key-data", context)
    token = _string(user, "token", context, "user")
    token_file = user.path("tokenFile")
    if token_file:  # client-go: the file wins, the inline token is the fallback
        access.credentials = TokenFileCredentials(_existing(token_file, "tokenFile", context) or token_file, token)
    elif token:
        access.credentials = StaticCredentials(f"Bearer {token}")
    elif _basic(user.value):
        pair = f"{user.value.get('username') or ''}:{user.value.get('password') or ''}".encode()
        access.credentials = StaticCredentials("Basic " + base64.b64encode(pair).decode())


def _impersonation(context: str, user: Entry | None, flags: ImpersonationFlags) -> Impersonation | None:
    """``as``/``as-uid``/``as-groups``/``as-user-extra``, with kubectl-style flags over them."""

    def refuse(why: str) -> KubeconfigError:
        if user is None:
            return KubeconfigError(f"impersonation: {why}")
        return _problem(context, user, "user", why)

    value: Mapping[str, Any] = user.value if user is not None else {}
    name = flags.user or value.get("as") or None
    uid = flags.uid or value.get("as-uid") or None
    groups: Any = list(flags.groups) or value.get("as-groups") or []
    extra: Any = value.get("as-user-extra") or {}
    if name is not None and not isinstance(name, str):
        raise refuse("as must be a string")
    if uid is not None and not isinstance(uid, str):
        raise refuse("as-uid must be a string")
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise refuse("as-groups must be a list of strings")
    if not isinstance(extra, dict) or not all(
        isinstance(k, str) and isinstance(v, list) and all(isinstance(x, str) for x in v) for k, v in extra.items()
    ):
        raise refuse("as-user-extra must map names to lists of strings")
    if name is None:
        if uid or groups or extra:
            raise refuse("as-uid, as-groups or as-user-extra need as (the user to impersonate)")
        return None
    texts = [name, uid or "", *groups, *extra, *(x for v in extra.values() for x in v)]
    if any(ch in text for text in texts for ch in "\r\n\0"):
        raise refuse("an impersonation value holds a line break or NUL")
    return Impersonation(
        user=name,
        uid=uid,
        groups=tuple(groups),
        extra=tuple((key, tuple(values)) for key, values in extra.items()),
    )


def _load_in_cluster() -> ClusterAccess:
    from kubernetes.config import ConfigException, incluster_config

    configuration = _ClientConfiguration()
    try:
        incluster_config.load_incluster_config(client_configuration=configuration, try_refresh_token=True)
    except ConfigException as exc:
        raise KubeconfigError(f"in-cluster configuration: {exc}") from exc
    namespace_file = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
    namespace = namespace_file.read_text().strip() if namespace_file.exists() else None
    return ClusterAccess(
        server=str(configuration.host),
        context=IN_CLUSTER_CONTEXT,
        ca_file=configuration.ssl_ca_cert,
        credentials=KubernetesCredentials(configuration),
        namespace=namespace or None,
    )


class _LogCollector(logging.Handler):
    """Keeps what kubernetes.config logs (it logs exec-plugin failures instead of raising them)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING:
            self.messages.append(record.getMessage())


def _credentials_from_kubernetes(access: ClusterAccess, merged: MergedKubeconfig, context: str) -> None:
    """exec plugins and auth-providers: kubernetes.config authenticates, and refreshes. Only
    the credentials are taken from it; the cluster entry has been read already."""
    from kubernetes.config import ConfigException, kube_config

    collector = _LogCollector()
    root = logging.getLogger()
    # kubernetes.config logs through the root logger; keep its lines for our own error message.
    root.addHandler(collector)
    previous_level = root.level
    root.setLevel(logging.WARNING)
    configuration = _ClientConfiguration()
    try:
        files = kube_config.KubeConfigMerger(os.pathsep.join(str(p) for p in merged.files))
        loader = kube_config.KubeConfigLoader(config_dict=files.config, active_context=context, config_base_path=None)
        loader.load_and_set(configuration)
    except ConfigException as exc:
        raise KubeconfigError(f"kubeconfig context {context!r}: {_config_message(exc)}") from exc
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise KubeconfigError(f"kubeconfig context {context!r}: {exc}") from exc
    finally:
        root.removeHandler(collector)
        root.setLevel(previous_level)

    if not configuration.api_key and not configuration.cert_file:
        why = "; ".join(collector.messages) or "it returned no credentials"
        raise KubeconfigError(f"kubeconfig context {context!r}: credential plugin failed: {why}")

    def reload() -> None:
        loader.load_and_set(configuration)

    access.credentials = KubernetesCredentials(configuration, reload)
    access.client_cert_file = configuration.cert_file
    access.client_key_file = configuration.key_file


def _config_message(exc: Exception) -> str:
    text = str(exc)
    # kubernetes.config prefixes most messages with this; it adds nothing for the user.
    for prefix in ("Invalid kube-config file. ", "Invalid kube-config. "):
        text = text.replace(prefix, "")
    return text.strip() or type(exc).__name__


def cluster_configured() -> bool:
    """Whether kubectl would find a cluster without flags: a kubeconfig ($KUBECONFIG or
    ~/.kube/config) or the in-cluster service account."""
    return kubeconfig_paths(None) is not None or _in_cluster_available()
