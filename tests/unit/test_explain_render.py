"""explain's three outputs from one report, with width, colour and the clock pinned: the text
view, the Markdown to paste into an issue, and the JSON document's shape."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

from rich.console import Console

from phoebe_cli.flux.explain import chain_links, next_steps, release_view, source_view, verdict
from phoebe_cli.flux.health import ContainerProblem, Health, HealthResult
from phoebe_cli.flux.inventory import ObjectKey
from phoebe_cli.flux.kinds import kind_named
from phoebe_cli.flux.objects import FluxObject, ObjectRef
from phoebe_cli.render.explain import explain_document, explain_markdown, explain_view
from phoebe_cli.usecases.events import Event
from phoebe_cli.usecases.explain import AppliedProblem, AppliedSection, ExplainReport, Section

NOW = datetime(2026, 11, 26, 10, 15, tzinfo=UTC)
AT = "2026-11-26T10:00:00Z"
REVISION = "main@sha1:" + "a" * 40


def obj(kind: str, namespace: str, name: str, spec: dict[str, Any], status: dict[str, Any]) -> FluxObject:
    flux_kind = kind_named(kind)
    assert flux_kind is not None
    raw = {
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace, "generation": 2},
        "spec": spec,
        "status": status,
    }
    return FluxObject.from_api(flux_kind, raw)


def ready(message: str) -> dict[str, Any]:
    return {
        "type": "Ready",
        "status": "True",
        "reason": "ReconciliationSucceeded",
        "message": message,
        "observedGeneration": 2,
        "lastTransitionTime": AT,
    }


def report() -> ExplainReport:
    source_spec = {"kind": "GitRepository", "name": "flux-system", "namespace": "flux-system"}
    git = obj(
        "GitRepository",
        "flux-system",
        "flux-system",
        {},
        {
            "artifact": {
                "revision": REVISION,
                "digest": "sha256:" + "b" * 64,
                "lastUpdateTime": "2026-11-26T10:10:00Z",
            },
            "conditions": [ready("stored artifact")],
        },
    )
    database = obj(
        "Kustomization",
        "apps",
        "database",
        {"sourceRef": source_spec},
        {
            "observedGeneration": -1,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "False",
                    "reason": "HealthCheckFailed",
                    "message": "health check failed: Deployment/apps/db not ready",
                    "observedGeneration": 2,
                    "lastTransitionTime": AT,
                }
            ],
            "inventory": {"entries": [{"id": "apps_db_apps_Deployment", "v": "v1"}]},
        },
    )
    app = obj(
        "Kustomization",
        "apps",
        "app",
        {"sourceRef": source_spec, "dependsOn": [{"name": "database"}]},
        {
            "observedGeneration": -1,
            "lastAppliedRevision": "main@sha1:" + "c" * 40,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "False",
                    "reason": "DependencyNotReady",
                    "message": "dependency 'apps/database' is not ready",
                    "observedGeneration": 2,
                    "lastTransitionTime": AT,
                }
            ],
        },
    )
    objects = {o.ref: o for o in (git, database, app)}
    found = verdict(app, objects)
    source = source_view(app, objects)
    problem = AppliedProblem(
        ObjectKey("apps/v1", "Deployment", "apps", "db"),
        HealthResult(Health.IN_PROGRESS, "LessAvailable", "Available: 0/1"),
        (ContainerProblem("db-0", "postgres", "CrashLoopBackOff", "back-off", 4, "Error", 1),),
    )
    event = Event(
        "Normal",
        "DependencyNotReady",
        "Dependencies do not meet ready condition | retrying",
        ObjectRef("Kustomization", "apps", "app"),
        3,
        "2026-11-26T10:14:00Z",
        "kustomize-controller",
    )
    return ExplainReport(
        object=app,
        verdict=found,
        chain=chain_links(app, objects, parent=None, verdict_=found),
        conditions=app.conditions,
        source=source,
        applied=AppliedSection(Section((problem,)), 1, "inventory"),
        release=release_view(app, objects),
        events=Section((event,), ("events in flux-system",)),
        logs=Section(denied=("the kustomize-controller's log",)),
        next_steps=next_steps(
            app, found, objects, parent=None, source=source, release=None, unhealthy=[("Pod", "apps", "db-0")]
        ),
        generated=NOW,
    )


def render(renderable: object, width: int = 200) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None, force_terminal=False)
    console.print(renderable)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    return "\n".join(line.rstrip() for line in out.splitlines()) + "\n"


def test_text_view() -> None:
    assert render(explain_view(report())) == (
        "Kustomization apps/app\n"
        "✗ not ready for 15m: blocked by Kustomization apps/database — HealthCheckFailed: health check failed: "
        "Deployment/apps/db not ready\n"
        "\n"
        "Chain\n"
        "  dependsOn  ✗ Kustomization apps/database            failed: HealthCheckFailed: health check failed: "
        "Deployment/apps/db not ready\n"
        "  source     ✓ GitRepository flux-system/flux-system  ready\n"
        "\n"
        "Conditions\n"
        "  TYPE   STATUS  REASON              GENERATION  CHANGED  MESSAGE\n"
        "  Ready  False   DependencyNotReady  2/2         15m      dependency 'apps/database' is not ready\n"
        "\n"
        "Source: GitRepository flux-system/flux-system\n"
        f"  revision        {REVISION}\n"
        f"  digest          sha256:{'b' * 64}\n"
        "  fetched         5m ago\n"
        f"  last applied    main@sha1:{'c' * 40} (behind the source)\n"
        "  last attempted  -\n"
        "\n"
        "Applied objects that are not healthy\n"
        "  Deployment/apps/db  InProgress  Available: 0/1\n"
        "                                  db-0/postgres: CrashLoopBackOff; last termination: Error, exit code 1; "
        "4 restarts\n"
        "\n"
        "Recent events\n"
        "  AGE  TYPE    REASON              OBJECT                  MESSAGE\n"
        "  1m   Normal  DependencyNotReady  Kustomization/apps/app  Dependencies do not meet ready condition | "
        "retrying (x3)\n"
        "  not allowed: cannot read events in flux-system\n"
        "\n"
        "kustomize-controller log (warnings and errors)\n"
        "  not allowed: cannot read the kustomize-controller's log\n"
        "\n"
        "What to do next\n"
        "  phoebe explain ks apps/database           the root cause is Kustomization apps/database\n"
        "  phoebe sync ks apps/database              after fixing it: reconcile it again now\n"
        "  kubectl -n apps logs pod/db-0 --previous  why its container stopped\n"
    )


def test_markdown_escapes_cells_and_lists_the_commands() -> None:
    markdown = explain_markdown(report())
    assert markdown.startswith(
        "### Kustomization `apps/app`\n\n"
        "**✗ not ready for 15m: blocked by Kustomization apps/database — HealthCheckFailed: health check failed: "
        "Deployment/apps/db not ready**\n\n"
        "#### Chain\n\n"
        "| relation | object | status |\n"
        "|---|---|---|\n"
        "| dependsOn | `Kustomization apps/database` | failed: HealthCheckFailed: health check failed: "
        "Deployment/apps/db not ready |\n"
        "| source | `GitRepository flux-system/flux-system` | ready |\n"
    )
    assert (
        "| `Deployment/apps/db` | InProgress | Available: 0/1; db-0/postgres: CrashLoopBackOff; last termination: "
        "Error, exit code 1; 4 restarts |\n"
    ) in markdown
    assert (
        "| Dependencies do not meet ready condition \\| retrying |\n\n"
        "_not allowed: cannot read events in flux-system_\n" in markdown
    )
    assert (
        "#### kustomize-controller log (warnings and errors)\n\n"
        "_not allowed: cannot read the kustomize-controller's log_\n" in markdown
    )
    assert markdown.endswith(
        "#### What to do next\n\n"
        "- `phoebe explain ks apps/database`: the root cause is Kustomization apps/database\n"
        "- `phoebe sync ks apps/database`: after fixing it: reconcile it again now\n"
        "- `kubectl -n apps logs pod/db-0 --previous`: why its container stopped\n"
    )


def test_json_document_shape() -> None:
    doc = explain_document(report())
    assert list(doc) == [
        "apiVersion",
        "kind",
        "object",
        "verdict",
        "chain",
        "conditions",
        "source",
        "applied",
        "release",
        "events",
        "logs",
        "nextSteps",
    ]
    assert doc["verdict"] == {
        "ready": False,
        "state": "failed",
        "since": AT,
        "line": "not ready: blocked by Kustomization apps/database — HealthCheckFailed: health check failed: "
        "Deployment/apps/db not ready",
        "cause": {
            "kind": "Kustomization",
            "namespace": "apps",
            "name": "database",
            "reason": "HealthCheckFailed",
            "message": "health check failed: Deployment/apps/db not ready",
        },
        "blockedBy": [{"kind": "Kustomization", "namespace": "apps", "name": "database"}],
        "problem": None,
    }
    assert doc["applied"] == {
        "from": "inventory",
        "checked": 1,
        "allowed": True,
        "notAllowed": [],
        "unavailable": None,
        "omitted": 0,
        "items": [
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "namespace": "apps",
                "name": "db",
                "health": "InProgress",
                "reason": "LessAvailable",
                "message": "Available: 0/1",
                "containers": [
                    {
                        "pod": "db-0",
                        "container": "postgres",
                        "waiting": "CrashLoopBackOff",
                        "message": "back-off",
                        "restarts": 4,
                        "lastTerminationReason": "Error",
                        "lastExitCode": 1,
                    }
                ],
            }
        ],
    }
    assert (doc["events"]["allowed"], doc["events"]["notAllowed"]) == (True, ["events in flux-system"])
    assert doc["release"] is None
    assert doc["logs"]["allowed"] is False
    assert doc["source"]["appliedCurrent"] is False
