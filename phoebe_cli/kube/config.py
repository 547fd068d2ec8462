"""Turn a kubeconfig (or the in-cluster service account) into what an HTTP client needs.

``kubernetes.config`` does the parsing and the authentication (client certificates, tokens,
token files, exec plugins, OIDC, in-cluster), so phoebe authenticates exactly as the official
client does; phoebe's own HTTP client then uses the result. It is imported here, inside the
function, because importing it costs ~0.2 s that ``phoebe --help`` must not pay.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from phoebe_cli.errors import KubeconfigError

IN_CLUSTER_CONTEXT = "(in-cluster)"


class _Credentials:
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
class ClusterAccess:
    """Where the API server is and how to authenticate to it."""

    server: str
    context: str
    ca_file: str | None = None
    client_cert_file: str | None = None
    client_key_file: str | None = None
    verify_tls: bool = True
    tls_server_name: str | None = None
    proxy: str | None = None
    _credentials: _Credentials | None = field(default=None, repr=False)
    _reload: Callable[[], None] | None = field(default=None, repr=False)

    def authorization(self) -> str | None:
        """The Authorization header value, refreshed first when the loader says it expired."""
        creds = self._credentials
        if creds is None:
            return None
        if creds.refresh_api_key_hook is not None:
            creds.refresh_api_key_hook(creds)
        return _authorization_header(creds)

    def reauthenticate(self) -> bool:
        """Run the authentication again (exec plugin, token file) after a 401; True if it may help."""
        if self._reload is None:
            return False
        self._reload()
        return True


def _authorization_header(creds: _Credentials) -> str | None:
    for key in ("BearerToken", "authorization"):
        value = creds.api_key.get(key)
        if value:
            if key == "authorization" and creds.api_key_prefix.get(key):
                return f"{creds.api_key_prefix[key]} {value}"
            return value if " " in value else f"Bearer {value}"
    return None


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
    return _load_kubeconfig(paths, context)


def _load_in_cluster() -> ClusterAccess:
    from kubernetes.config import ConfigException, incluster_config

    creds = _Credentials()
    try:
        incluster_config.load_incluster_config(client_configuration=creds, try_refresh_token=True)
    except ConfigException as exc:
        raise KubeconfigError(f"in-cluster configuration: {exc}") from exc
    return ClusterAccess(
        server=str(creds.host),
        context=IN_CLUSTER_CONTEXT,
        ca_file=creds.ssl_ca_cert,
        _credentials=creds,
    )


class _LogCollector(logging.Handler):
    """Keeps what kubernetes.config logs (it logs exec-plugin failures instead of raising them)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING:
            self.messages.append(record.getMessage())


def _read_merged(paths: str) -> tuple[Any, dict[str, Any]]:
    """Read and merge the kubeconfig files as kubectl does (first file wins per entry)."""
    import yaml
    from kubernetes.config import ConfigException, kube_config

    existing = [p for p in paths.split(os.pathsep) if p and Path(p).expanduser().exists()]
    if not existing:
        raise KubeconfigError(f"kubeconfig not found: {paths}")
    for path in existing:
        if Path(path).expanduser().is_dir():
            raise KubeconfigError(f"kubeconfig is a directory, not a file: {path}")
    try:
        merged = kube_config.KubeConfigMerger(os.pathsep.join(existing))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise KubeconfigError(f"kubeconfig is not valid YAML{where}: {paths}") from exc
    except (ConfigException, OSError, AttributeError, TypeError) as exc:
        raise KubeconfigError(f"kubeconfig cannot be read: {_config_message(exc)}") from exc
    config = merged.config
    raw = _plain(config)
    if not isinstance(raw, dict):
        raise KubeconfigError(f"kubeconfig is not a kubeconfig (expected a mapping): {paths}")

    return config, raw


def _load_kubeconfig(paths: str, context: str | None) -> ClusterAccess:
    from kubernetes.config import ConfigException, kube_config

    config, raw = _read_merged(paths)

    contexts = [c.get("name") for c in (raw.get("contexts") or []) if isinstance(c, dict)]
    chosen = context or raw.get("current-context")
    if not chosen:
        raise KubeconfigError(
            "no current context in the kubeconfig; choose one with --context "
            f"(contexts: {', '.join(str(c) for c in contexts) or 'none'})"
        )
    if chosen not in contexts:
        listed = ", ".join(str(c) for c in contexts) or "none"
        raise KubeconfigError(f"context {chosen!r} not found in the kubeconfig (contexts: {listed})")

    collector = _LogCollector()
    root = logging.getLogger()
    # kubernetes.config logs through the root logger; keep its lines for our own error message.
    root.addHandler(collector)
    previous_level = root.level
    root.setLevel(logging.WARNING)
    try:
        loader = kube_config.KubeConfigLoader(config_dict=config, active_context=chosen, config_base_path=None)
        creds = _Credentials()
        loader.load_and_set(creds)
    except ConfigException as exc:
        raise KubeconfigError(f"kubeconfig context {chosen!r}: {_config_message(exc)}") from exc
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise KubeconfigError(f"kubeconfig context {chosen!r}: {exc}") from exc
    finally:
        root.removeHandler(collector)
        root.setLevel(previous_level)

    if not creds.host:
        raise KubeconfigError(f"kubeconfig context {chosen!r} has no cluster server URL")
    user = _context_user(raw, chosen)
    if user and "exec" in user and not creds.api_key and not creds.cert_file:
        why = "; ".join(collector.messages) or "it returned no credentials"
        raise KubeconfigError(f"kubeconfig context {chosen!r}: credential plugin failed: {why}")

    def reload() -> None:
        loader.load_and_set(creds)

    # Only credentials that come from somewhere else can change between two requests.
    refreshable = user is not None and any(k in user for k in ("exec", "auth-provider", "tokenFile"))

    return ClusterAccess(
        server=creds.host.rstrip("/"),
        context=str(chosen),
        ca_file=creds.ssl_ca_cert,
        client_cert_file=creds.cert_file,
        client_key_file=creds.key_file,
        verify_tls=bool(creds.verify_ssl),
        tls_server_name=creds.tls_server_name,
        proxy=creds.proxy,
        _credentials=creds,
        _reload=reload if refreshable else None,
    )


def _plain(node: Any) -> Any:
    """The merged kubeconfig as plain dicts and lists (the merger wraps entries in ConfigNode)."""
    value = getattr(node, "value", node)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _context_user(raw: dict[str, Any], context: str) -> dict[str, Any] | None:
    for ctx in raw.get("contexts") or []:
        if isinstance(ctx, dict) and ctx.get("name") == context:
            user_name = (ctx.get("context") or {}).get("user")
            for user in raw.get("users") or []:
                if isinstance(user, dict) and user.get("name") == user_name:
                    found = user.get("user")
                    return found if isinstance(found, dict) else None
    return None


def _config_message(exc: Exception) -> str:
    text = str(exc)
    # kubernetes.config prefixes most messages with this; it adds nothing for the user.
    for prefix in ("Invalid kube-config file. ", "Invalid kube-config. "):
        text = text.replace(prefix, "")
    return text.strip() or type(exc).__name__
