"""The check report as text (width and colour pinned) and as the documented JSON shape."""

from __future__ import annotations

import io

from rich.console import Console

from phoebe_cli.flux.installation import CheckReport, ControllerReport, KindReport
from phoebe_cli.render.check import check_document, check_view


def report(problems: tuple[str, ...] = ()) -> CheckReport:
    return CheckReport(
        context="home",
        server="https://10.0.0.1:6443",
        server_version="v1.36.3",
        flux_namespace="flux-system",
        flux_version="v2.6.4",
        kinds=(
            KindReport("GitRepository", "source.toolkit.fluxcd.io", True, ("v1", "v1beta2"), True),
            KindReport("ImagePolicy", "image.toolkit.fluxcd.io", False, (), True),
        ),
        controllers=(
            ControllerReport(
                "kustomize-controller",
                "flux-system",
                not problems,
                1,
                0 if problems else 1,
                "ghcr.io/fluxcd/kustomize-controller:v1.6.1",
                "v2.6.4",
                "0/1 replicas ready" if problems else "1/1 replicas ready",
            ),
        ),
        problems=problems,
    )


def render(renderable: object, width: int = 80) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None, force_terminal=False)
    console.print(renderable)
    return "\n".join(line.rstrip() for line in console.file.getvalue().splitlines())  # type: ignore[attr-defined]


def test_healthy_report_text() -> None:
    assert render(check_view(report())) == (
        "context  home\n"
        "server   https://10.0.0.1:6443 (Kubernetes v1.36.3)\n"
        "flux     v2.6.4, namespace flux-system\n"
        "\n"
        "controllers\n"
        "✓  kustomize-controller  1/1 replicas ready  v2.6.4\n"
        "\n"
        "kinds\n"
        "✓  GitRepository  source.toolkit.fluxcd.io  v1, v1beta2\n"
        "·  ImagePolicy    image.toolkit.fluxcd.io   not installed\n"
        "\n"
        "✓ Flux is installed and healthy"
    )


def test_unhealthy_report_lists_problems() -> None:
    text = render(check_view(report(("kustomize-controller is not ready: 0/1 replicas ready",))))
    assert text.endswith(
        "✗ Flux is installed but not healthy (1 problem):\n  - kustomize-controller is not ready: 0/1 replicas ready"
    )


def test_document_shape_is_pinned() -> None:
    assert check_document(report()) == {
        "apiVersion": "phoebe.dev/v1",
        "kind": "CheckReport",
        "state": "healthy",
        "context": "home",
        "server": "https://10.0.0.1:6443",
        "serverVersion": "v1.36.3",
        "fluxNamespace": "flux-system",
        "fluxVersion": "v2.6.4",
        "kinds": [
            {
                "kind": "GitRepository",
                "group": "source.toolkit.fluxcd.io",
                "installed": True,
                "servedVersions": ["v1", "v1beta2"],
                "preferredVersion": "v1",
            },
            {
                "kind": "ImagePolicy",
                "group": "image.toolkit.fluxcd.io",
                "installed": False,
                "servedVersions": [],
                "preferredVersion": None,
            },
        ],
        "controllers": [
            {
                "name": "kustomize-controller",
                "namespace": "flux-system",
                "ready": True,
                "replicas": 1,
                "readyReplicas": 1,
                "image": "ghcr.io/fluxcd/kustomize-controller:v1.6.1",
                "version": "v2.6.4",
                "message": "1/1 replicas ready",
            },
        ],
        "problems": [],
    }
