"""``phoebe diff --base``: HelmReleases rendered from their charts (the real helm v3.19 and
kustomize), compared object by object; only releases whose inputs changed are rendered."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import CliResult, PhoebeRunner
from tests.repo.conftest import RepoWriter
from tests.support.webchart import web_chart_files

pytestmark = pytest.mark.repo

SECRET_OLD, SECRET_NEW = "old-hunter2", "new-correct-horse"


@pytest.fixture(scope="session")
def helm_binary() -> Path:
    from tests.cluster.build import ensure_program, helm_program

    return ensure_program(helm_program())  # before the test's own XDG_CACHE_HOME is set


@pytest.fixture(autouse=True)
def repo_environment(helm_binary: Path, repo_environment: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The repo tests' environment, and phoebe finds the built helm."""
    monkeypatch.setenv("PHOEBE_HELM", str(helm_binary))
    return repo_environment


def _release(name: str, values: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": name, "namespace": "apps"},
        "spec": {
            "interval": "1h",
            "chart": {"spec": {"chart": "./charts/web", "sourceRef": {"kind": "GitRepository", "name": "home-ops"}}},
            "values": values,
        },
    }


def _files(version: str, web: dict[str, Any], *, service: bool = False) -> dict[str, str]:
    files = {
        **web_chart_files("charts/web", version, service=service),
        "apps/web.yaml": yaml.safe_dump(_release("web", web), sort_keys=False),
        "apps/other.yaml": yaml.safe_dump(_release("other", {"replicas": 2}), sort_keys=False),
        "apps/kustomization.yaml": "resources:\n  - web.yaml\n  - other.yaml\n",
        "kubernetes/flux/cluster.yaml": """\
            apiVersion: source.toolkit.fluxcd.io/v1
            kind: GitRepository
            metadata:
              name: home-ops
              namespace: apps
            spec:
              interval: 1h
              url: https://example.invalid/home-ops.git
              ref:
                branch: main
            ---
            apiVersion: kustomize.toolkit.fluxcd.io/v1
            kind: Kustomization
            metadata:
              name: apps
              namespace: apps
            spec:
              interval: 1h
              path: ./apps
              prune: true
              sourceRef:
                kind: GitRepository
                name: home-ops
            """,
    }
    return files


def _commit(root: Path, files: dict[str, str]) -> None:
    import textwrap

    for relative, text in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(textwrap.dedent(text).lstrip("\n"))
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "bump"], cwd=root, check=True)


BASE_VALUES = {"image": "ghcr.io/example/web:1.0.0", "password": SECRET_OLD}


def _bumped(write_repo: RepoWriter) -> Path:
    """web: chart 1.0.0 → 1.1.0 (a Service template added), image and replicas changed, the
    Secret's value changed; other: untouched (but its chart changed too: it is rendered)."""
    root = write_repo(_files("1.0.0", BASE_VALUES))
    _commit(
        root,
        _files("1.1.0", {"image": "ghcr.io/example/web:1.1.0", "replicas": 3, "password": SECRET_NEW}, service=True),
    )
    return root


def _diff(phoebe: PhoebeRunner, root: Path, *args: str) -> CliResult:
    return phoebe("diff", "--repo", str(root), "--base", "HEAD~1", "--head", "HEAD", *args)


def test_a_chart_bump_shows_its_real_manifest_changes(write_repo: RepoWriter, phoebe: PhoebeRunner) -> None:
    root = _bumped(write_repo)

    result = _diff(phoebe, root, "-o", "json")

    assert result.code == 1, result.stderr
    assert result.stderr == ""
    (apps,) = json.loads(result.stdout)["kustomizations"]
    releases = {r["name"]: r for r in apps["helmReleases"]}
    web = releases["web"]
    # the values are inline in the HelmRelease (shown there); the rendered Secret never shows them
    assert SECRET_OLD not in json.dumps(web) and SECRET_NEW not in json.dumps(web)
    assert (web["chartBefore"], web["chartAfter"], web["compared"], web["note"]) == (
        "web 1.0.0",
        "web 1.1.0",
        True,
        None,
    )
    changes = {(o["kind"], o["name"]): (o["change"], o["fields"], o["secretKeys"]) for o in web["objects"]}
    assert changes[("Service", "web")][0] == "created"
    deployment = changes[("Deployment", "web")]
    assert deployment[0] == "changed"
    assert {(f["path"], f["before"], f["after"]) for f in deployment[1]} == {
        ("spec.replicas", 1, 3),
        ("spec.template.spec.containers[name=app].image", "ghcr.io/example/web:1.0.0", "ghcr.io/example/web:1.1.0"),
    }
    assert changes[("Secret", "web")][0] == "changed"
    assert changes[("Secret", "web")][2] == {"password": "changed"}
    # other: only its chart changed: the new template's Service is its one change
    assert [(o["kind"], o["change"]) for o in releases["other"]["objects"]] == [("Service", "created")]
    # the rendered Deployment is a workload: diff images sees it
    images = _diff(phoebe, root, "images", "-o", "json")
    assert [(i["workload"], i["before"], i["after"]) for i in json.loads(images.stdout)["images"]] == [
        ("Deployment/apps/web", "ghcr.io/example/web:1.0.0", "ghcr.io/example/web:1.1.0")
    ]


def test_only_releases_whose_inputs_changed_are_rendered(write_repo: RepoWriter, phoebe: PhoebeRunner) -> None:
    root = write_repo(_files("1.0.0", BASE_VALUES))
    _commit(root, _files("1.0.0", {**BASE_VALUES, "replicas": 5}))

    result = _diff(phoebe, root, "-v")

    assert result.code == 1, result.stderr
    # web at both refs: 2 renders; other (same HelmRelease, same chart files) not rendered
    assert result.stderr.splitlines()[-1].endswith("kustomize runs, 2 HelmRelease renders")
    lines = result.stdout.splitlines()
    start = lines.index("  HelmRelease/apps/web rendered (chart web 1.0.0)")
    assert lines[start + 1 : start + 2] == ["    ~ changed  Deployment/apps/web"]
    assert "-  replicas: 1" in [line.strip() for line in lines] or any("+  replicas: 5" in line for line in lines)
    assert "HelmRelease/apps/other rendered" not in result.stdout

    unchanged = phoebe("diff", "--repo", str(root), "--base", "HEAD", "-v")
    assert unchanged.code == 0 and unchanged.stderr.splitlines()[-1].endswith(", 0 HelmRelease renders")


def test_no_render_keeps_the_spec_and_values_view(write_repo: RepoWriter, phoebe: PhoebeRunner) -> None:
    root = _bumped(write_repo)

    result = _diff(phoebe, root, "--no-render")

    assert result.code == 1, result.stderr
    assert "rendered" not in result.stdout
    assert "~ changed  HelmRelease/apps/web" in result.stdout


def test_markdown_groups_rendered_changes_under_their_helmrelease(write_repo: RepoWriter, phoebe: PhoebeRunner) -> None:
    root = _bumped(write_repo)

    result = _diff(phoebe, root, "-o", "markdown")

    assert result.code == 1, result.stderr
    text = result.stdout
    heading = "#### HelmRelease/apps/web rendered (chart web 1.0.0 → web 1.1.0)\n\n"
    assert heading in text
    after = text[text.index(heading) + len(heading) :]
    assert after.startswith("**~ changed** `Deployment/apps/web`")
    assert "**+ created** `Service/apps/web`" in after
    assert "- `data.password`: changed" in after
    assert SECRET_NEW not in after and SECRET_OLD not in after


def test_a_chart_that_cannot_be_rendered_warns_and_the_rest_is_compared(
    write_repo: RepoWriter, phoebe: PhoebeRunner
) -> None:
    root = write_repo(_files("1.0.0", BASE_VALUES))
    broken = _files("1.0.0", {**BASE_VALUES, "replicas": 2})
    broken["charts/web/templates/broken.yaml"] = '{{ fail "no such thing" }}\n'
    _commit(root, broken)

    result = _diff(phoebe, root)

    assert result.code == 1
    warning = next(line for line in result.stderr.splitlines() if "HelmRelease/apps/web" in line)
    assert "not rendered at HEAD (" in warning and "(failed): helm template" in warning and "no such thing" in warning
    assert "~ changed  HelmRelease/apps/web" in result.stdout


HOOK_JOB = """\
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ .Release.Name }}-migrate
  annotations:
    helm.sh/hook: pre-upgrade
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: migrate
          image: "{{ .Values.image }}"
"""


def test_hooks_are_compared_like_the_rest(write_repo: RepoWriter, phoebe: PhoebeRunner) -> None:
    """A chart's hooks (stored apart by Helm, run by the upgrade) change with the values too: the
    migration Job's image bump is a change, and a workload for diff images."""
    hook = {"charts/web/templates/hook.yaml": HOOK_JOB}
    root = write_repo({**_files("1.0.0", BASE_VALUES), **hook})
    _commit(root, {**_files("1.0.0", {**BASE_VALUES, "image": "ghcr.io/example/web:1.1.0"}), **hook})

    result = _diff(phoebe, root, "-o", "json")

    assert result.code == 1, result.stderr
    (apps,) = json.loads(result.stdout)["kustomizations"]
    [web] = [r for r in apps["helmReleases"] if r["name"] == "web"]
    changes = {(o["kind"], o["name"]): [(f["path"], f["after"]) for f in o["fields"]] for o in web["objects"]}
    image = "spec.template.spec.containers[name={}].image"
    assert changes == {
        ("Deployment", "web"): [(image.format("app"), "ghcr.io/example/web:1.1.0")],
        ("Job", "web-migrate"): [(image.format("migrate"), "ghcr.io/example/web:1.1.0")],
    }
    images = _diff(phoebe, root, "images", "-o", "json")
    assert [(i["workload"], i["after"]) for i in json.loads(images.stdout)["images"]] == [
        ("Deployment/apps/web", "ghcr.io/example/web:1.1.0"),
        ("Job/apps/web-migrate", "ghcr.io/example/web:1.1.0"),
    ]


def _crd(plural: str, properties: dict[str, Any]) -> str:
    kind = plural.rstrip("s").capitalize()
    return yaml.safe_dump(
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.example.com"},
            "spec": {
                "group": "example.com",
                "names": {"kind": kind, "plural": plural},
                "scope": "Namespaced",
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "schema": {"openAPIV3Schema": {"type": "object", "properties": properties}},
                    }
                ],
            },
        }
    )


@pytest.mark.parametrize(
    ("policy", "changes", "note"),
    [
        (
            None,
            [],
            "CRD(s) gadgets.example.com, things.example.com change in the chart; upgrade.crds is Skip: "
            "helm-controller leaves them",
        ),
        (
            "Create",
            [("gadgets.example.com", "created")],
            "CRD(s) things.example.com change in the chart; upgrade.crds Create only creates missing ones",
        ),
        ("CreateReplace", [("gadgets.example.com", "created"), ("things.example.com", "changed")], None),
    ],
)
def test_chart_crds_change_as_the_upgrade_policy_says(
    write_repo: RepoWriter,
    phoebe: PhoebeRunner,
    policy: str | None,
    changes: list[tuple[str, str]],
    note: str | None,
) -> None:
    """crds/ is applied by helm-controller itself, by upgrade.crds: Skip (the default) none, Create
    the new ones only, CreateReplace all. What the policy leaves is the release's note."""
    values = BASE_VALUES
    base = {**_files("1.0.0", values), "charts/web/crds/things.yaml": _crd("things", {"size": {"type": "integer"}})}
    head = {
        **_files("1.0.0", values),
        "charts/web/crds/things.yaml": _crd("things", {"size": {"type": "integer"}, "color": {"type": "string"}}),
        "charts/web/crds/gadgets.yaml": _crd("gadgets", {}),
    }
    if policy is not None:
        for files in (base, head):
            release = _release("web", values)
            release["spec"]["upgrade"] = {"crds": policy}
            files["apps/web.yaml"] = yaml.safe_dump(release, sort_keys=False)
    root = write_repo(base)
    _commit(root, head)

    result = _diff(phoebe, root, "-o", "json")

    assert result.code == (1 if changes else 0), result.stderr
    (apps,) = json.loads(result.stdout)["kustomizations"]
    web = {r["name"]: r for r in apps["helmReleases"]}["web"]
    assert [(o["name"], o["change"]) for o in web["objects"]] == changes
    assert web["note"] == note
