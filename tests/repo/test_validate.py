"""``phoebe validate`` and ``phoebe status --repo``: findings with files and lines, output formats,
exit codes, and the errors a user can cause. The real entry point, real kustomize, no cluster."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.conftest import PhoebeRunner
from tests.repo.conftest import FIXTURE_REPO, GIT_REPOSITORY, RepoWriter, config_map, flux_ks, kustomization_yaml

pytestmark = pytest.mark.repo


def _repo(write_repo: RepoWriter, apps: dict[str, str], extra: dict[str, str] | None = None) -> Path:
    """A root Kustomization over kubernetes/apps, whose ks.yaml declares the given app Kustomizations."""
    files = {
        "kubernetes/flux/cluster.yaml": GIT_REPOSITORY + "---\n" + flux_ks("cluster-apps", "./kubernetes/apps"),
        "kubernetes/apps/kustomization.yaml": kustomization_yaml("ks.yaml"),
        "kubernetes/apps/ks.yaml": "---\n".join(apps.values()),
    }
    files.update(extra or {})
    return write_repo(files)


CM = config_map("cm", "default", {"a": "b"})


def test_a_valid_checkout_exits_0_with_a_summary(write_repo: RepoWriter, phoebe: PhoebeRunner) -> None:
    root = _repo(write_repo, {"web": flux_ks("web", "./apps/web", "default")}, {"apps/web/cm.yaml": CM})

    result = phoebe("validate", str(root))

    assert result.code == 0, result.stderr
    assert result.stdout.startswith("✓ 2 Kustomizations, 3 Flux objects: 0 errors, 0 warnings (2 kustomize runs, ")
    assert result.stderr == ""


BROKEN_APPS = {
    "gone": flux_ks("gone", "./apps/gone", "default"),
    "bad-build": flux_ks("bad-build", "./apps/bad-build", "default"),
    "waits": flux_ks("waits", "./apps/ok", "default", extra="dependsOn:\n  - name: nobody\n"),
    "a": flux_ks("a", "./apps/ok2", "default", extra="dependsOn:\n  - name: b\n"),
    "b": flux_ks("b", "./apps/ok3", "default", extra="dependsOn:\n  - name: a\n"),
    "vars": flux_ks("vars", "./apps/vars", "default", extra="postBuild:\n  substitute:\n    SET: 'yes'\n"),
    "elsewhere": flux_ks("elsewhere", "./x", "default", source="nowhere"),
}
BROKEN_FILES = {
    "apps/bad-build/kustomization.yaml": kustomization_yaml("missing.yaml"),
    "apps/ok/cm.yaml": CM,
    "apps/ok2/cm.yaml": config_map("cm2", "default", {"a": "b"}),
    "apps/ok3/cm.yaml": config_map("cm3", "default", {"a": "b"}),
    "apps/vars/cm.yaml": config_map("vars", "default", {"a": "${SET} ${UNSET} ${DEFAULTED:=x} $${ESCAPED}"}),
    "docs/broken.yaml": "a: [1, 2\nb: c\n",
    "charts/demo/Chart.yaml": "apiVersion: v2\nname: demo\nversion: 0.1.0\n",
    "charts/demo/templates/deployment.yaml": "{{- if .Values.enabled }}\nkind: {{ .Values.kind }}\n{{- end }}\n",
}


def test_every_kind_of_finding_with_its_file_and_line(write_repo: RepoWriter, phoebe: PhoebeRunner) -> None:
    root = _repo(write_repo, BROKEN_APPS, BROKEN_FILES)

    result = phoebe("validate", str(root))

    assert result.code == 1
    *findings, summary = result.stdout.splitlines()
    assert findings == [
        "kubernetes/apps/ks.yaml:1: error [path] Kustomization/default/gone: kustomization path not found: ./apps/gone",
        "kubernetes/apps/ks.yaml:15: error [build] Kustomization/default/bad-build: accumulating resources: "
        "accumulation err='accumulating resources from 'missing.yaml': "
        "open apps/bad-build/missing.yaml: no such file or directory'",
        "kubernetes/apps/ks.yaml:29: error [dependency] Kustomization/default/waits depends on "
        "Kustomization/default/nobody, which no Kustomization declares",
        "kubernetes/apps/ks.yaml:45: error [cycle] dependency cycle: default/a → default/b → default/a",
        "kubernetes/apps/ks.yaml:94: error [source] Kustomization/default/elsewhere: its source "
        "GitRepository/flux-system/nowhere is declared nowhere in the repository",
        # Flux substitutes "" for an unset variable: a warning, where the file uses it
        "apps/vars/cm.yaml:7: warning [unset] Kustomization/default/vars: ${UNSET} is not set and has no default: "
        'Flux substitutes "" in ConfigMap/default/vars',
        # YAML Go rejects, in a file Flux never reads: a warning
        "docs/broken.yaml:2: warning [yaml] not valid YAML: did not find expected ',' or ']' "
        "(no Flux Kustomization reads this file)",
    ]
    assert summary.startswith("8 Kustomizations, 9 Flux objects: 5 errors, 2 warnings (6 kustomize runs, ")
    strict = phoebe("validate", str(root), "--strict")
    assert strict.code == 1
    assert strict.stdout.splitlines()[0] == (
        "apps/vars/cm.yaml:7: error [unset] Kustomization/default/vars: ${UNSET} is not set and has no default: "
        'Flux substitutes "" in ConfigMap/default/vars'
    )
    # The chart template is not YAML and is not read; the escaped and defaulted variables are fine.


def test_github_annotations(write_repo: RepoWriter, phoebe: PhoebeRunner) -> None:
    root = _repo(write_repo, {"waits": BROKEN_APPS["waits"]}, {"apps/ok/cm.yaml": CM})

    result = phoebe("validate", str(root), "-o", "github")

    assert result.code == 1
    assert result.stdout == (
        "::error file=kubernetes/apps/ks.yaml,line=1,title=phoebe validate (dependency)::"
        "Kustomization/default/waits depends on Kustomization/default/nobody, which no Kustomization declares\n"
    )
    assert result.stderr.startswith("2 Kustomizations, 3 Flux objects: 1 error, 0 warnings")


def test_json_document_and_strict(write_repo: RepoWriter, phoebe: PhoebeRunner) -> None:
    remote = "https://github.com/example/crds//config?ref=v1"
    root = _repo(
        write_repo,
        {"web": flux_ks("web", "./apps/web", "default")},
        {"apps/web/kustomization.yaml": kustomization_yaml(remote, "cm.yaml"), "apps/web/cm.yaml": CM},
    )

    result = phoebe("validate", str(root), "-o", "json")

    assert result.code == 0  # a warning only
    document = json.loads(result.stdout)
    assert document["kind"] == "ValidationReport"
    assert document["valid"] is True
    assert document["kustomizations"] == 2
    assert document["findings"] == [
        {
            "severity": "warning",
            "code": "remote",
            "message": f"Kustomization/default/web: remote resource, not built offline: {remote}",
            "file": "kubernetes/apps/ks.yaml",
            "line": 1,
            "object": {"kind": "Kustomization", "namespace": "default", "name": "web"},
        }
    ]
    assert phoebe("validate", str(root), "--strict").code == 1


def test_a_source_of_another_repository_is_built_from_a_mapped_directory(
    write_repo: RepoWriter, phoebe: PhoebeRunner
) -> None:
    infra_source = GIT_REPOSITORY.replace("name: flux-system\n  namespace", "name: infra\n  namespace").replace(
        "home-ops", "infra"
    )
    root = _repo(
        write_repo,
        {"infra": flux_ks("infra", "./deploy", "default", source="infra"), "source": infra_source},
    )
    infra = write_repo({"deploy/kustomization.yaml": kustomization_yaml("missing.yaml")}, name="infra")

    unmapped = phoebe("validate", str(root))
    mapped = phoebe("validate", str(root), "--source", f"infra={infra}")

    assert unmapped.code == 0
    assert unmapped.stdout.splitlines()[0] == (
        "kubernetes/apps/ks.yaml:1: warning [source] Kustomization/default/infra: its source GitRepository/infra "
        "is not in this checkout (map it with --source NAME=PATH)"
    )
    assert mapped.code == 1
    assert mapped.stdout.splitlines()[0].startswith(
        "kubernetes/apps/ks.yaml:1: error [build] Kustomization/default/infra: accumulating resources"
    )


def test_status_repo_shows_the_checkout_as_the_cluster_view_does(phoebe: PhoebeRunner) -> None:
    result = phoebe("status", "--repo", str(FIXTURE_REPO), "ks", "-n", "media", "-o", "table")

    assert result.code == 0  # every build succeeds; plex is suspended (ready unless --strict)
    rows = [line.split()[:5] for line in result.stdout.splitlines()]
    assert rows == [
        ["NAMESPACE", "KIND", "NAME", "READY", "SUSPENDED"],
        ["media", "Kustomization", "plex", "⏸", "True"],
        ["media", "Kustomization", "prowlarr", "✓", "True"],
        ["media", "Kustomization", "radarr", "✓", "True"],
        ["media", "Kustomization", "sonarr", "✓", "True"],
    ]
    assert phoebe("status", "--repo", str(FIXTURE_REPO), "ks", "-n", "media", "--strict").code == 1


def test_status_repo_document_lists_what_each_kustomization_would_apply(phoebe: PhoebeRunner) -> None:
    result = phoebe("status", "--repo", str(FIXTURE_REPO), "ks", "media/radarr", "-o", "yaml")

    assert result.code == 0, result.stderr
    document = yaml.safe_load(result.stdout)
    assert document["healthy"] is True
    (radarr,) = document["objects"]
    assert (radarr["name"], radarr["ready"], radarr["reason"]) == ("radarr", "True", "Built")
    assert radarr["message"] == "7 objects from ./kubernetes/apps/media/radarr/app"
    assert radarr["source"] == {"kind": "GitRepository", "namespace": "flux-system", "name": "flux-system"}


def test_status_repo_failing_build_exits_1(write_repo: RepoWriter, phoebe: PhoebeRunner) -> None:
    root = _repo(write_repo, {"gone": BROKEN_APPS["gone"]})

    result = phoebe("status", "--repo", str(root), "-o", "table")

    assert result.code == 1
    (gone,) = [line for line in result.stdout.splitlines() if " gone " in line]
    assert "kustomization path not found: ./apps/gone" in gone


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["validate", "/no/such/dir"], 2, "phoebe: error: /no/such/dir: no such directory"),
        (["status", "--repo", "/no/such/dir"], 2, "phoebe: error: --repo /no/such/dir: no such directory"),
        (["status", "--compare"], 2, "phoebe: error: Invalid value for '--repo': --compare goes with --repo"),
        (["status", "--repo", ".", "--watch"], 2, "--watch looks at the cluster; it does not go with --repo"),
        (["validate", "-o", "xml"], 2, "'xml' is not one of"),
        (["validate", "--source", "novalue"], 2, "--source 'novalue': use NAME=PATH"),
    ],
)
def test_usage_errors_are_one_line(phoebe: PhoebeRunner, args: list[str], code: int, message: str) -> None:
    result = phoebe(*args)

    assert result.code == code
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""


def test_not_a_git_checkout(phoebe: PhoebeRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))

    result = phoebe("validate")

    assert result.code == 2
    assert (
        result.stderr == f"phoebe: error: {tmp_path} is not in a Git repository: say where the checkout is (a PATH)\n"
    )


def test_without_kustomize_the_error_names_what_to_install(
    write_repo: RepoWriter, phoebe: PhoebeRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    root = _repo(write_repo, {"web": flux_ks("web", "./apps/web", "default")}, {"apps/web/cm.yaml": CM})
    monkeypatch.delenv("PHOEBE_KUSTOMIZE")
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))

    result = phoebe("validate", str(root))

    assert result.code == 5
    assert result.stderr.count("\n") == 1
    assert "kustomize" in result.stderr


def test_a_missing_phoebe_kustomize_is_named(
    write_repo: RepoWriter, phoebe: PhoebeRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _repo(write_repo, {"web": flux_ks("web", "./apps/web", "default")}, {"apps/web/cm.yaml": CM})
    monkeypatch.setenv("PHOEBE_KUSTOMIZE", "/nonexistent/kustomize")

    result = phoebe("validate", str(root))

    assert result.code == 5
    assert result.stderr == "phoebe: error: PHOEBE_KUSTOMIZE=/nonexistent/kustomize does not exist\n"


def test_an_object_without_namespace_is_a_namespace_error(write_repo: RepoWriter, phoebe: PhoebeRunner) -> None:
    root = _repo(
        write_repo,
        {"web": flux_ks("web", "./apps/web", "default")},
        {"apps/web/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: loose\n"},
    )

    result = phoebe("validate", str(root))

    assert result.code == 1
    assert result.stdout.splitlines()[0] == (
        "kubernetes/apps/ks.yaml:1: error [namespace] Kustomization/default/web: "
        "ConfigMap/loose namespace not specified"
    )


def test_root_files_named_on_the_command_line(write_repo: RepoWriter, phoebe: PhoebeRunner) -> None:
    root = write_repo(
        {
            "clusters/home/flux.yaml": GIT_REPOSITORY + "---\n" + flux_ks("apps", "./apps"),
            "apps/cm.yaml": CM,
        }
    )

    without = phoebe("validate", str(root))
    named = phoebe("validate", str(root), "--root", str(root / "clusters/home/flux.yaml"))
    status = phoebe("status", "--repo", str(root), "--root-file", str(root / "clusters/home/flux.yaml"), "-o", "json")

    assert without.code == 0, without.stdout + without.stderr  # found: nothing else applies clusters/home/flux.yaml
    assert without.stdout.startswith("✓ 1 Kustomization, 2 Flux objects: 0 errors, 0 warnings (")
    assert named.code == 0, named.stdout + named.stderr
    assert named.stdout.startswith("✓ 1 Kustomization, 2 Flux objects: 0 errors, 0 warnings (0 kustomize runs, ")
    assert status.code == 0
    assert sorted(o["name"] for o in json.loads(status.stdout)["objects"]) == ["apps", "flux-system"]


def test_yaml_go_rejects_is_an_error_only_where_flux_reads_it(write_repo: RepoWriter, phoebe: PhoebeRunner) -> None:
    root = _repo(
        write_repo,
        {"web": flux_ks("web", "./apps/web", "default")},
        {"apps/web/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a\n", "notes/x.yaml": "a: [\n"},
    )

    result = phoebe("validate", str(root))
    strict = phoebe("validate", str(root), "--strict")

    assert result.code == 1
    lines = result.stdout.splitlines()
    assert [line.split(" [")[0] for line in lines[:-1]] == [
        "apps/web/cm.yaml:4: error",  # read by the Kustomization web: Flux fails on it too
        "kubernetes/apps/ks.yaml:1: error",  # ... as the build says
        "notes/x.yaml:2: warning",  # read by nobody
    ]
    assert lines[1].startswith("kubernetes/apps/ks.yaml:1: error [build] Kustomization/default/web: ")
    assert lines[2].endswith("(no Flux Kustomization reads this file)")
    assert "notes/x.yaml:2: error [yaml]" in strict.stdout


@pytest.mark.parametrize("binary", ["/bin/false", "/bin/true"])
def test_a_broken_kustomize_is_named_not_blamed_on_the_repository(
    write_repo: RepoWriter, phoebe: PhoebeRunner, monkeypatch: pytest.MonkeyPatch, binary: str
) -> None:
    root = _repo(write_repo, {"web": flux_ks("web", "./apps/web", "default")}, {"apps/web/cm.yaml": CM})
    monkeypatch.setenv("PHOEBE_KUSTOMIZE", binary)

    result = phoebe("validate", str(root))

    assert (result.code, result.stdout) == (5, "")
    assert result.stderr.startswith(f"phoebe: error: {binary} is not a working kustomize (`{binary} version` exited ")
    assert result.stderr.count("\n") == 1


def test_data_that_is_not_a_map_is_no_internal_error(write_repo: RepoWriter, phoebe: PhoebeRunner) -> None:
    """`data: "x"` on a Secret, `data: [1, 2]` on a ConfigMap: the API server refuses them at the
    controller's dry-run (which `phoebe diff` shows); reading the checkout must not crash on them."""
    odd = (
        'apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n  namespace: default\ndata: "not-a-map"\n---\n'
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: default\ndata: [1, 2]\n"
    )
    extra = "postBuild:\n  substitute:\n    A: b\n  substituteFrom:\n    - kind: Secret\n      name: s\n"
    root = _repo(
        write_repo,
        {
            "odd": flux_ks("odd", "./apps/odd", "default"),
            "reader": flux_ks("reader", "./apps/r", "default", extra=extra),
        },
        {"apps/odd/odd.yaml": odd, "apps/r/cm.yaml": CM},
    )

    validated = phoebe("validate", str(root))
    shown = phoebe("status", "--repo", str(root), "-o", "json")

    assert validated.code == 0, validated.stdout + validated.stderr
    assert "internal error" not in validated.stderr + shown.stderr
    assert shown.code == 0, shown.stderr
