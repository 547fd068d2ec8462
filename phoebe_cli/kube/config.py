"""Turn a kubeconfig (or the in-cluster service account) into what the HTTP client needs.

Two paths, chosen by the user entry of the selected context:

- Static credentials (a token, a token file, a client certificate, basic auth, or none): read
  here, from the merged kubeconfig. This is what nearly every kubeconfig holds, and it keeps
  ``kubernetes`` out of the run: importing ``kubernetes.config`` costs ~0.25 s, more than the
  rest of a ``phoebe status`` run.
- Credentials that come from somewhere else (an ``exec`` plugin, an ``auth-provider`` such as
  OIDC) and the in-cluster service account: ``kubernetes.config`` does the authentication, so
  phoebe authenticates exactly as the official client does, refreshes included.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from phoebe_cli.errors import KubeconfigError
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


@dataclass
class StaticCredentials:
    header: str

    def authorization(self) -> str | None:
        return self.header

    def reauthenticate(self) -> bool:
        return False


@dataclass
class TokenFileCredentials:
    """A bearer token read from a file, re-read now and then (it may be rotated)."""

    path: str
    _token: str = ""
    _read_at: float = field(default=-1e9)

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
            raise KubeconfigError(f"token file cannot be read: {self.path}: {exc.strerror}") from exc
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


@dataclass
class KubernetesCredentials:
    """Credentials kept fresh by ``kubernetes.config`` (exec plugins, OIDC, in-cluster)."""

    configuration: _ClientConfiguration
    reload: Callable[[], None] | None = None

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


@dataclass
class ClusterAccess:
    """Where the API server is and how to authenticate to it."""

    server: str
    context: str
    credentials: Credentials = field(default_factory=NoCredentials)
    namespace: str | None = None  # the context's default namespace, when it sets one
    ca_file: str | None = None
    ca_data: str | None = None  # PEM
    client_cert_file: str | None = None
    client_key_file: str | None = None
    client_cert_data: bytes | None = None  # PEM
    client_key_data: bytes | None = None  # PEM
    verify_tls: bool = True
    tls_server_name: str | None = None
    proxy: str | None = None

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


def load_cluster_access(kubeconfig: str | None, context: str | None) -> ClusterAccess:
    """Resolve the cluster to talk to, as kubectl does: --kubeconfig, $KUBECONFIG, ~/.kube/config,
    then the in-cluster service account. Raises KubeconfigError with one clear line."""
    paths = kubeconfig_paths(kubeconfig)
    if paths is None:
        if context is None and _in_cluster_available():
            return _load_in_cluster()
        raise KubeconfigError(
            "no kubeconfig: ~/.kube/config does not exist and $KUBECONFIG is not set (use --kubeconfig PATH)"
        )
    merged = read_kubeconfig(paths)
    chosen = _choose_context(merged, context)
    context_entry = merged.contexts[chosen].value
    cluster_name = context_entry.get("cluster")
    cluster = merged.clusters.get(str(cluster_name)) if cluster_name else None
    if cluster is None:
        raise KubeconfigError(
            f"kubeconfig context {chosen!r} refers to cluster {cluster_name!r}, which the kubeconfig does not define"
        )
    user_name = context_entry.get("user")
    user = merged.users.get(str(user_name)) if user_name else None
    if user is not None and ("exec" in user.value or "auth-provider" in user.value):
        access = _load_with_kubernetes(merged, chosen, user)
    else:
        access = _static_access(chosen, cluster, user)
    namespace = context_entry.get("namespace")
    access.namespace = str(namespace) if namespace else None
    return access


def _choose_context(merged: MergedKubeconfig, context: str | None) -> str:
    names = ", ".join(merged.contexts) or "none"
    chosen = context or merged.current_context
    if not chosen:
        raise KubeconfigError(f"no current context in the kubeconfig; choose one with --context (contexts: {names})")
    if chosen not in merged.contexts:
        raise KubeconfigError(f"context {chosen!r} not found in the kubeconfig (contexts: {names})")
    return chosen


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


def _static_access(context: str, cluster: Entry, user: Entry | None) -> ClusterAccess:
    server = cluster.value.get("server")
    if not server:
        raise KubeconfigError(f"kubeconfig context {context!r} has no cluster server URL")
    access = ClusterAccess(
        server=str(server).rstrip("/"),
        context=context,
        ca_file=_existing(cluster.path("certificate-authority"), "certificate-authority", context),
        verify_tls=not bool(cluster.value.get("insecure-skip-tls-verify")),
        tls_server_name=cluster.value.get("tls-server-name"),
        proxy=cluster.value.get("proxy-url"),
    )
    ca_data = _decode(cluster, "certificate-authority-data", context)
    if ca_data:
        access.ca_data = ca_data.decode(errors="replace")
    if user is None:
        return access
    access.client_cert_file = _existing(user.path("client-certificate"), "client-certificate", context)
    access.client_key_file = _existing(user.path("client-key"), "client-key", context)
    access.client_cert_data = _decode(user, "client-certificate-data", context)
    access.client_key_data = _decode(user, "client-key-data", context)
    token = user.value.get("token")
    token_file = user.path("tokenFile")
    if token:
        access.credentials = StaticCredentials(f"Bearer {token}")
    elif token_file:
        access.credentials = TokenFileCredentials(_existing(token_file, "tokenFile", context) or token_file)
    elif user.value.get("username") is not None and user.value.get("password") is not None:
        pair = f"{user.value['username']}:{user.value['password']}".encode()
        access.credentials = StaticCredentials("Basic " + base64.b64encode(pair).decode())
    return access


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


def _load_with_kubernetes(merged: MergedKubeconfig, context: str, user: Entry) -> ClusterAccess:
    """exec plugins and auth-providers: kubernetes.config authenticates, and refreshes."""
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

    if not configuration.host:
        raise KubeconfigError(f"kubeconfig context {context!r} has no cluster server URL")
    if not configuration.api_key and not configuration.cert_file:
        why = "; ".join(collector.messages) or "it returned no credentials"
        raise KubeconfigError(f"kubeconfig context {context!r}: credential plugin failed: {why}")

    def reload() -> None:
        loader.load_and_set(configuration)

    return ClusterAccess(
        server=configuration.host.rstrip("/"),
        context=context,
        credentials=KubernetesCredentials(configuration, reload),
        ca_file=configuration.ssl_ca_cert,
        client_cert_file=configuration.cert_file,
        client_key_file=configuration.key_file,
        verify_tls=bool(configuration.verify_ssl),
        tls_server_name=configuration.tls_server_name,
        proxy=configuration.proxy,
    )


def _config_message(exc: Exception) -> str:
    text = str(exc)
    # kubernetes.config prefixes most messages with this; it adds nothing for the user.
    for prefix in ("Invalid kube-config file. ", "Invalid kube-config. "):
        text = text.replace(prefix, "")
    return text.strip() or type(exc).__name__
