"""``phoebe build``'s output: a YAML stream of the objects (each group headed by a comment naming
the Kustomization or HelmRelease it comes from), or one JSON/YAML document (kind ``Build``), and
the one-line problems for stderr. Secret values never reach here unmasked (``shown_objects``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from phoebe_cli.render.documents import document

if TYPE_CHECKING:
    from phoebe_cli.usecases.build import BuildResult, ClusterRead, RenderedRelease

__all__ = ["build_document", "cluster_note", "problem_lines", "yaml_stream"]


def _dump(objects: list[dict[str, Any]]) -> str:
    from phoebe_cli.repo.yamlio import dump_documents

    return dump_documents(objects) if objects else ""


def yaml_stream(result: BuildResult) -> str:
    """Every object as one YAML stream, ``---`` between documents."""
    parts: list[str] = []
    for built in result.kustomizations:
        if built.objects:
            parts.append(f"# Kustomization {built.ref.namespace}/{built.ref.name}\n" + _dump(built.objects))
    for release in result.releases:
        objects = release.shown_objects()
        if objects:
            parts.append(f"# HelmRelease {release.ref.namespace}/{release.ref.name}\n" + _dump(objects))
    return "---\n".join(parts)


def _release(release: RenderedRelease) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": release.ref.name,
        "namespace": release.ref.namespace,
        "state": release.state,
        "releaseName": release.release_name,
        "targetNamespace": release.target_namespace,
        "storageNamespace": release.storage_namespace,
        "chart": {
            "name": release.chart_name,
            "version": release.chart_version,
            "digest": release.chart_digest,
            "source": release.chart_source,
        },
        "values": release.values,
    }
    if release.reason:
        body["reason"] = release.reason
    if release.notes:
        body["notes"] = list(release.notes)
    body["objects"] = release.shown_objects()
    return body


def build_document(result: BuildResult) -> dict[str, Any]:
    """The ``Build`` document (docs/commands/build.md)."""
    return document(
        "Build",
        {
            "kustomizations": [
                {
                    "name": k.ref.name,
                    "namespace": k.ref.namespace,
                    "path": k.path,
                    "state": k.state,
                    **({"message": k.message} if k.message else {}),
                    "objects": k.objects,
                }
                for k in result.kustomizations
            ],
            "helmReleases": [_release(r) for r in result.releases],
            **({"cluster": _cluster(result.cluster)} if result.cluster is not None else {}),
        },
    )


def _cluster(read: ClusterRead) -> dict[str, Any]:
    return {
        "context": read.context,
        "kubeVersion": read.kube_version,
        "apiVersions": read.api_versions,
        "objectsRead": read.objects_read,
    }


def cluster_note(read: ClusterRead) -> str:
    """One stderr line: which cluster the renders read, and what."""
    found = f"; {read.objects_read} ConfigMap/Secret(s) the checkout lacks read there" if read.objects_read else ""
    return (
        f"rendered for context {read.context!r}: Kubernetes {read.kube_version or '?'}, "
        f"{read.api_versions} API versions{found}"
    )


def problem_lines(result: BuildResult) -> list[tuple[str, str]]:
    """(level, line) for stderr: "error" for what could not be built or rendered, "warning" for
    what was built in part (remote bases offline, sources elsewhere)."""
    from phoebe_cli.repo.model import BuildState

    lines: list[tuple[str, str]] = []
    for built in result.kustomizations:
        where = f"Kustomization {built.ref.namespace}/{built.ref.name}"
        if built.state == BuildState.FAILED:
            lines.append(("error", f"{where}: {built.message}"))
        elif built.state in (BuildState.PARTIAL, BuildState.NOT_IN_CHECKOUT) and built.message:
            lines.append(("warning", f"{where}: {built.message}"))
    for release in result.releases:
        where = f"HelmRelease {release.ref.namespace}/{release.ref.name}"
        if release.state != "rendered":
            lines.append(("error", f"{where}: {release.state}: {release.reason}"))
    return lines
