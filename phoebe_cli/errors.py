"""phoebe's exceptions and the one map from them to exit codes.

Every error a user can cause is raised as one of these and turned into one line on stderr
and an exit code by ``cli.main``; nothing else decides an exit code for an error.

    PhoebeError
    ├── UsageError                  bad flags, arguments or input files            2
    │   └── KubeconfigError         missing/malformed kubeconfig, unknown context   2
    ├── ClusterError                the cluster answered badly or not at all
    │   ├── ClusterUnreachable      connection refused, DNS, TLS, server 5xx, 429  3
    │   ├── AuthenticationFailed    401: credentials missing, wrong or expired     3
    │   ├── Forbidden               403: RBAC said no                               4
    │   ├── NotFound                404: an object or API that is not there         5
    │   │   └── FluxNotInstalled    no Flux CRDs served                             5
    │   └── RequestRejected         409/422/other 4xx the server refused            1
    ├── ToolMissing                 a program phoebe needs is not on PATH          5
    ├── OperationTimedOut           --timeout ran out                               6
    └── Interrupted                 Ctrl-C                                        130
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """phoebe's documented, stable exit codes (docs/exit-codes.md)."""

    OK = 0
    NOT_HEALTHY = 1  # not healthy, differences found, reconcile failed
    USAGE = 2
    UNREACHABLE = 3  # cannot reach or authenticate to the cluster
    FORBIDDEN = 4
    NOT_FOUND = 5  # object not found, Flux not installed, tool missing
    TIMED_OUT = 6
    INTERRUPTED = 130


class PhoebeError(Exception):
    """Base of every error phoebe reports to the user as one line.

    ``message`` is the line; ``detail`` is extra text shown only with ``-v``.
    """

    def __init__(self, message: str, *, detail: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail

    def __str__(self) -> str:
        return self.message


class UsageError(PhoebeError):
    """The command line or an input file is wrong."""


class KubeconfigError(UsageError):
    """The kubeconfig cannot be used: missing, malformed, unknown context or user."""


class ClusterError(PhoebeError):
    """The Kubernetes API answered with an error, or could not be reached.

    ``reason`` and ``code`` are the server's ``Status`` reason and HTTP code when there was one.
    """

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        code: int | None = None,
        detail: str | None = None,
    ) -> None:
        super().__init__(message, detail=detail)
        self.reason = reason
        self.code = code


class ClusterUnreachable(ClusterError):
    """No usable answer: connection refused, DNS, TLS verification, timeouts, 5xx, throttled."""


class AuthenticationFailed(ClusterError):
    """401: the server did not accept the credentials."""


class Forbidden(ClusterError):
    """403: authenticated, but RBAC does not allow the request."""


class NotFound(ClusterError):
    """404: the object, namespace or API is not there."""


class FluxNotInstalled(NotFound):
    """None of Flux's CRDs are served by the cluster."""


class RequestRejected(ClusterError):
    """The server refused a request for another reason (409 conflict, 422 invalid, ...)."""


class ToolMissing(PhoebeError):
    """An external program phoebe needs (kustomize, git, helm) is not installed."""


class OperationTimedOut(PhoebeError):
    """A wait ran past its --timeout."""


class Interrupted(PhoebeError):
    """The user pressed Ctrl-C."""

    def __init__(self, message: str = "interrupted") -> None:
        super().__init__(message)


# The one map from errors to exit codes; the most specific class wins (looked up along the MRO).
_EXIT_CODES: dict[type, ExitCode] = {
    PhoebeError: ExitCode.NOT_HEALTHY,
    UsageError: ExitCode.USAGE,
    KubeconfigError: ExitCode.USAGE,
    ClusterError: ExitCode.UNREACHABLE,
    ClusterUnreachable: ExitCode.UNREACHABLE,
    AuthenticationFailed: ExitCode.UNREACHABLE,
    Forbidden: ExitCode.FORBIDDEN,
    NotFound: ExitCode.NOT_FOUND,
    FluxNotInstalled: ExitCode.NOT_FOUND,
    RequestRejected: ExitCode.NOT_HEALTHY,
    ToolMissing: ExitCode.NOT_FOUND,
    OperationTimedOut: ExitCode.TIMED_OUT,
    Interrupted: ExitCode.INTERRUPTED,
}


def exit_code_for(error: PhoebeError) -> ExitCode:
    """The exit code for an error: the entry of its most specific class in the map."""
    for cls in type(error).__mro__:
        code = _EXIT_CODES.get(cls)
        if code is not None:
            return code
    return ExitCode.NOT_HEALTHY
