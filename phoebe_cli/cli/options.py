"""The options every command shares, declared once.

``cluster_command`` adds them to a command's signature, so ``phoebe check --context x`` and
``phoebe --context x check`` both work, as they do in kubectl; a value given after the command
wins over one given before it.

No ``from __future__ import annotations`` here: Typer reads these annotations at runtime.
"""

import functools
import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Annotated, Any, TypeVar

import typer

DEFAULT_FLUX_NAMESPACE = "flux-system"
FLUX_NAMESPACE_ENV = "FLUX_SYSTEM_NAMESPACE"


@dataclass(frozen=True)
class GlobalOptions:
    """Options shared by every command, merged from before and after the command name."""

    kubeconfig: str | None = None
    context: str | None = None
    flux_namespace: str = DEFAULT_FLUX_NAMESPACE
    request_timeout: float | None = None
    no_color: bool = False
    verbose: int = 0
    namespace: str | None = None
    all_namespaces: bool = False
    # kubectl's impersonation flags: they replace the kubeconfig's as/as-uid/as-groups
    impersonate_user: str | None = None
    impersonate_uid: str | None = None
    impersonate_groups: tuple[str, ...] = ()
    # --context given more than once after a command that reads several clusters (status)
    contexts: tuple[str, ...] = ()


KubeconfigOption = Annotated[
    str | None,
    typer.Option(
        "--kubeconfig",
        metavar="PATH",
        help="Kubeconfig file(s) to use. (default: $KUBECONFIG, else ~/.kube/config)",
        show_default=False,
    ),
]
ContextOption = Annotated[
    str | None,
    typer.Option(
        "--context",
        metavar="NAME",
        help="Kubeconfig context to use. (default: the current context)",
        show_default=False,
    ),
]
ContextsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--context",
        metavar="NAME",
        help="Kubeconfig context to use; repeat it to look at several clusters at once. (default: the current context)",
        show_default=False,
    ),
]
FluxNamespaceOption = Annotated[
    str | None,
    typer.Option(
        "--flux-namespace",
        metavar="NAMESPACE",
        help=(
            f"Namespace the Flux controllers run in. (default: ${FLUX_NAMESPACE_ENV}, else {DEFAULT_FLUX_NAMESPACE})"
        ),
        show_default=False,
    ),
]
RequestTimeoutOption = Annotated[
    float | None,
    typer.Option(
        "--request-timeout",
        metavar="SECONDS",
        help="Seconds to wait for each API request. (default: 60, connect 10)",
        min=0.1,
        show_default=False,
    ),
]
NoColorOption = Annotated[
    bool,
    typer.Option("--no-color", help="No colour in the output (also: NO_COLOR=1)."),
]
VerboseOption = Annotated[
    int,
    typer.Option(
        "--verbose",
        "-v",
        count=True,
        show_default=False,
        help="Show more detail; errors add their cause.",
    ),
]
NamespaceOption = Annotated[
    str | None,
    typer.Option(
        "--namespace",
        "-n",
        help="Only objects in this namespace.",
        show_default=False,
    ),
]
AllNamespacesOption = Annotated[
    bool,
    typer.Option("--all-namespaces", "-A", help="Objects in every namespace."),
]

AsOption = Annotated[
    str | None,
    typer.Option("--as", metavar="USER", help="Act as this user (impersonation, as kubectl --as)."),
]
AsGroupOption = Annotated[
    list[str] | None,
    typer.Option("--as-group", metavar="GROUP", help="Act as a member of this group (repeatable; needs --as)."),
]
AsUidOption = Annotated[
    str | None,
    typer.Option("--as-uid", metavar="UID", help="Act with this UID (needs --as)."),
]

# Reading a checkout (status --repo, validate, diff).
RootFileOption = Annotated[
    list[str] | None,
    typer.Option("--root-file", metavar="FILE", help="Read the root Kustomizations from FILE (repeatable)."),
]
SourceOption = Annotated[
    list[str] | None,
    typer.Option("--source", metavar="NAME=PATH", help="Build the source NAME from PATH (repeatable)."),
]
ClusterOption = Annotated[
    str | None,
    typer.Option("--cluster", metavar="NAME", help="Which cluster, when the checkout holds several (clusters/NAME)."),
]
PathOption = Annotated[
    str | None,
    typer.Option("--path", metavar="DIR", help="Only Kustomizations whose spec.path is DIR or below it."),
]
NoCacheOption = Annotated[bool, typer.Option("--no-cache", help="Build everything afresh.")]
AllowRemoteOption = Annotated[bool, typer.Option("--allow-remote", help="Let kustomize fetch remote bases.")]

_SHARED: tuple[tuple[str, Any, Any], ...] = (
    ("kubeconfig", KubeconfigOption, None),
    ("context", ContextOption, None),
    ("flux_namespace", FluxNamespaceOption, None),
    ("request_timeout", RequestTimeoutOption, None),
    ("impersonate_user", AsOption, None),
    ("impersonate_groups", AsGroupOption, None),
    ("impersonate_uid", AsUidOption, None),
    ("no_color", NoColorOption, False),
    ("verbose", VerboseOption, 0),
)
_LOCAL: tuple[tuple[str, Any, Any], ...] = (
    ("no_color", NoColorOption, False),
    ("verbose", VerboseOption, 0),
)
_NAMESPACED: tuple[tuple[str, Any, Any], ...] = (
    ("namespace", NamespaceOption, None),
    ("all_namespaces", AllNamespacesOption, False),
)

F = TypeVar("F", bound=Callable[..., Any])
_CTX = "phoebe_typer_context"


def root_options(
    kubeconfig: str | None,
    context: str | None,
    flux_namespace: str | None,
    request_timeout: float | None,
    no_color: bool,
    verbose: int,
    impersonate_user: str | None = None,
    impersonate_groups: list[str] | None = None,
    impersonate_uid: str | None = None,
) -> GlobalOptions:
    return GlobalOptions(
        kubeconfig=kubeconfig,
        context=context,
        flux_namespace=flux_namespace or os.environ.get(FLUX_NAMESPACE_ENV) or DEFAULT_FLUX_NAMESPACE,
        request_timeout=request_timeout,
        no_color=no_color,
        verbose=verbose,
        impersonate_user=impersonate_user,
        impersonate_uid=impersonate_uid,
        impersonate_groups=tuple(impersonate_groups or ()),
    )


def cluster_command(*, namespaced: bool = False, several_contexts: bool = False) -> Callable[[F], F]:
    """Give a command the shared options; it receives them merged as ``options: GlobalOptions``.
    With ``several_contexts`` its --context is repeatable: one value is ``options.context`` as
    for every command, several are ``options.contexts``."""
    shared = _SHARED
    if several_contexts:
        shared = tuple(("context", ContextsOption, None) if entry[0] == "context" else entry for entry in _SHARED)
    return _with_options(shared + (_NAMESPACED if namespaced else ()))


def local_command() -> Callable[[F], F]:
    """For commands that never talk to a cluster: only --no-color and -v."""
    return _with_options(_LOCAL)


def _with_options(extra: tuple[tuple[str, Any, Any], ...]) -> Callable[[F], F]:
    def decorate(func: F) -> F:
        signature = inspect.signature(func)
        own = [p for p in signature.parameters.values() if p.name != "options"]
        added = [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default)
            for name, annotation, default in extra
        ]
        # Typer passes the click context to a parameter annotated typer.Context.
        added.append(inspect.Parameter(_CTX, inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context))

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            ctx = kwargs.pop(_CTX)
            given = {name: kwargs.pop(name) for name, _, _ in extra}
            return func(*args, options=_merge(ctx, given), **kwargs)

        wrapper.__signature__ = signature.replace(parameters=own + added)  # type: ignore[attr-defined]
        annotations = {k: v for k, v in func.__annotations__.items() if k != "options"}
        annotations.update({name: annotation for name, annotation, _ in extra})
        annotations[_CTX] = typer.Context
        wrapper.__annotations__ = annotations
        return wrapper  # type: ignore[return-value]

    return decorate


def _merge(ctx: Any, given: dict[str, Any]) -> GlobalOptions:
    """Options after the command name override those before it (kept in the Typer context)."""
    base = GlobalOptions()
    while ctx is not None:
        if isinstance(ctx.obj, GlobalOptions):
            base = ctx.obj
            break
        ctx = ctx.parent
    changes: dict[str, Any] = {}
    for name, value in given.items():
        if name in ("no_color", "all_namespaces"):
            if value:
                changes[name] = True
        elif name == "verbose":
            changes[name] = max(base.verbose, value)
        elif name == "context" and isinstance(value, list):
            names = tuple(dict.fromkeys(value))  # the same context twice is read once
            if len(names) == 1:
                changes["context"] = names[0]
            elif names:
                changes["contexts"] = names
        elif name == "impersonate_groups":
            if value:
                changes[name] = tuple(value)
        elif value is not None:
            changes[name] = value
    return replace(base, **changes)


_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Seconds from a Go-style duration ("5m", "90s", "1m30s", "1h") or a plain number of seconds."""
    import re

    value = text.strip()
    try:
        seconds = float(value)
    except ValueError:
        parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", value)
        if not parts or "".join(n + u for n, u in parts) != value:
            raise typer.BadParameter(f"{text!r} is not a duration (examples: 90s, 5m, 1h30m)") from None
        seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise typer.BadParameter(f"{text!r} must be more than zero")
    return seconds
