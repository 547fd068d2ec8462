"""``phoebe diff --base REF [--head REF]``: the sample repository (tests/fixtures/gitops) committed
to a fresh Git repository, one change per test — made as a commit or left in the working tree —
and the exact output a user sees. The real entry point, real kustomize, no cluster.

The sample yields 182 objects from 31 Flux Kustomizations; those numbers appear in most summaries.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import CliResult, PhoebeRunner
from tests.repo.conftest import FIXTURE_REPO
from tests.support import mermaid as mermaid_parser

pytestmark = pytest.mark.repo

OBJECTS = 182  # what the sample's 31 Flux Kustomizations yield
NAMESPACES = (
    "cert-manager",
    "database",
    "default",
    "external-secrets",
    "kube-system",
    "media",
    "network",
    "observability",
    "rook-ceph",
    "security",
    "volsync-system",
)


# --- the sample as a Git repository, and editing it -----------------------------------------------
def _git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=phoebe-tests", "-c", "user.email=tests@example.invalid", *args],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


@dataclass
class Sample:
    """A copy of the sample repository, committed once (``first``)."""

    root: Path
    first: str = ""

    def path(self, relative: str) -> Path:
        return self.root / relative

    def edit(self, relative: str, old: str, new: str, *, count: int = 1) -> None:
        """Replace ``old`` by ``new`` in a file; ``old`` must occur exactly ``count`` times."""
        target = self.path(relative)
        text = target.read_text()
        assert text.count(old) == count, f"{relative}: {old!r} occurs {text.count(old)} times"
        target.write_text(text.replace(old, new))

    def write(self, relative: str, text: str) -> None:
        target = self.path(relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)

    def remove(self, relative: str) -> None:
        target = self.path(relative)
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink()

    def commit(self, message: str = "change") -> str:
        _git(self.root, "add", "-A")
        _git(self.root, "commit", "-q", "-m", message)
        return _git(self.root, "rev-parse", "HEAD")

    def label(self, ref: str) -> str:
        """How phoebe names a ref: as given, and its commit's first 8 hex digits."""
        return f"{ref} ({_git(self.root, 'rev-parse', ref)[:8]})"


@pytest.fixture
def sample(tmp_path: Path) -> Sample:
    root = tmp_path / "gitops"
    shutil.copytree(FIXTURE_REPO, root)
    _git(root, "init", "-q", "-b", "main")
    repo = Sample(root)
    repo.first = repo.commit("the sample repository")
    return repo


def diff(
    phoebe: PhoebeRunner, sample: Sample, *args: str, base: str | None = None, head: str | None = None
) -> CliResult:
    """``phoebe diff --repo SAMPLE --base BASE [--head HEAD] --no-render ARGS``; the base defaults to
    the first commit. The spec-and-values view: the sample's charts are not reachable offline
    (rendering is tested in tests/repo/test_diff_render.py with charts in the checkout)."""
    refs = ["--base", base or sample.first] + (["--head", head] if head else [])
    return phoebe("diff", "--repo", str(sample.root), *refs, "--no-render", *args)


def heading(sample: Sample, head: str | None = "HEAD") -> str:
    """The first line: the first commit (named by its SHA) → HEAD, or the working tree."""
    return f"{sample.label(sample.first)} → {sample.label(head) if head else 'working tree'}"


def document(result: CliResult) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


def first_object(doc: dict[str, Any], kustomization: str) -> dict[str, Any]:
    """The first object with a difference in the Kustomization named ``kustomization``."""
    found: dict[str, Any] = next(k for k in doc["kustomizations"] if k["name"] == kustomization)["objects"][0]
    return found


def changed_objects(doc: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    """Per Kustomization (namespace/name) with differences: (object, change) for each object."""
    return {
        f"{k['namespace']}/{k['name']}": [
            (f"{o['kind']}/{o['namespace']}/{o['name']}", o["change"]) for o in k["objects"]
        ]
        for k in doc["kustomizations"]
        if k["objects"]
    }


ECHO_RELEASE = "kubernetes/apps/default/echo/app/helmrelease.yaml"
ECHO_APP = "kubernetes/apps/default/echo/app/kustomization.yaml"
CLUSTER_SETTINGS = "kubernetes/flux/vars/cluster-settings.yaml"


def bump_echo_image(sample: Sample) -> None:
    sample.edit(ECHO_RELEASE, 'tag: "38"', 'tag: "39"')


ECHO_TAG_HUNK = """\
      @@ -32,7 +32,7 @@
                     PROMETHEUS_ENABLED: true
                   image:
                     repository: ghcr.io/mendhak/http-https-echo
      -              tag: '38'
      +              tag: '39'
                   probes:
                     liveness:
                       custom: true"""


# --- one change each ------------------------------------------------------------------------------
def test_a_values_change_in_one_helmrelease_changes_that_object_only(sample: Sample, phoebe: PhoebeRunner) -> None:
    bump_echo_image(sample)
    sample.commit()

    result = diff(phoebe, sample, head="HEAD")

    assert result.code == 1, result.stderr
    assert result.stdout == (
        f"{heading(sample)}\n"
        "\n"
        "Kustomization/default/echo\n"
        "  ~ changed  HelmRelease/default/echo\n"
        f"{ECHO_TAG_HUNK}\n"
        "\n"
        f"1 changed, {OBJECTS - 1} unchanged in 31 Kustomizations\n"
    )
    assert result.stderr == ""


def test_a_chart_version_bump_in_a_helmrelease_and_in_an_ocirepository(sample: Sample, phoebe: PhoebeRunner) -> None:
    # cert-manager: chart.spec.version with a HelmRepository; reloader: chartRef to its own OCIRepository
    sample.edit(
        "kubernetes/apps/cert-manager/cert-manager/app/helmrelease.yaml", "version: v1.19.1", "version: v1.19.2"
    )
    sample.edit("kubernetes/apps/kube-system/reloader/app/ocirepository.yaml", "tag: 2.2.5", "tag: 2.2.6")
    sample.commit()

    result = diff(phoebe, sample, head="HEAD")

    assert result.code == 1, result.stderr
    assert result.stdout == (
        f"{heading(sample)}\n"
        "\n"
        "Kustomization/cert-manager/cert-manager\n"
        "  ~ changed  HelmRelease/cert-manager/cert-manager\n"
        "      @@ -13,7 +13,7 @@\n"
        "               kind: HelmRepository\n"
        "               name: jetstack\n"
        "               namespace: flux-system\n"
        "      -      version: v1.19.1\n"
        "      +      version: v1.19.2\n"
        "         install:\n"
        "           disableWait: true\n"
        "           remediation:\n"
        "\n"
        "Kustomization/kube-system/reloader\n"
        "  ~ changed  OCIRepository/kube-system/reloader\n"
        "      @@ -11,5 +11,5 @@\n"
        "           mediaType: application/vnd.cncf.helm.chart.content.v1.tar+gzip\n"
        "           operation: copy\n"
        "         ref:\n"
        "      -    tag: 2.2.5\n"
        "      +    tag: 2.2.6\n"
        "         url: oci://ghcr.io/stakater/charts/reloader\n"
        "\n"
        f"2 changed, {OBJECTS - 2} unchanged in 31 Kustomizations\n"
    )


def test_a_new_app_is_a_created_kustomization_in_its_parent_and_created_objects(
    sample: Sample, phoebe: PhoebeRunner
) -> None:
    # Left in the working tree, untracked: the working tree is the head.
    sample.write(
        "kubernetes/apps/default/whoami/ks.yaml",
        sample.path("kubernetes/apps/default/echo/ks.yaml").read_text().replace("echo", "whoami"),
    )
    sample.write(
        "kubernetes/apps/default/whoami/app/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ./configmap.yaml\n",
    )
    sample.write(
        "kubernetes/apps/default/whoami/app/configmap.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: whoami\ndata:\n  host: ${APP}.${CLUSTER_DOMAIN}\n",
    )
    sample.edit(
        "kubernetes/apps/default/kustomization.yaml",
        "  - ./homepage/ks.yaml\n",
        "  - ./homepage/ks.yaml\n  - ./whoami/ks.yaml\n",
    )

    result = diff(phoebe, sample)
    as_json = document(diff(phoebe, sample, "-o", "json"))

    assert result.code == 1, result.stderr
    assert result.stdout == (
        f"{heading(sample, None)}\n"
        "\n"
        "Kustomization/default/whoami\n"
        "  + created  ConfigMap/default/whoami\n"
        "\n"
        "Kustomization/flux-system/cluster-apps\n"
        "  + created  Kustomization/default/whoami\n"
        "\n"
        f"2 created, {OBJECTS} unchanged in 32 Kustomizations\n"
    )
    created = first_object(as_json, "whoami")
    assert created["fields"] == []
    assert created["diff"] == (
        "--- /dev/null\n"
        "+++ ConfigMap/default/whoami (working tree)\n"
        "@@ -0,0 +1,9 @@\n"
        "+apiVersion: v1\n"
        "+data:\n"
        "+  host: whoami.example.org\n"  # substituted at the head like any other app
        "+kind: ConfigMap\n"
        "+metadata:\n"
        "+  name: whoami\n"
        "+  namespace: default\n"
        "+  labels:\n"
        "+    app.kubernetes.io/name: whoami\n"
    )


def test_a_removed_app_deletes_its_objects_and_its_kustomization(sample: Sample, phoebe: PhoebeRunner) -> None:
    sample.edit("kubernetes/apps/default/kustomization.yaml", "  - ./echo/ks.yaml\n", "")
    sample.remove("kubernetes/apps/default/echo")
    sample.commit()

    result = diff(phoebe, sample, head="HEAD")

    assert result.code == 1, result.stderr
    assert result.stdout == (
        f"{heading(sample)}\n"
        "\n"
        "Kustomization/default/echo\n"
        "  - deleted  ConfigMap/default/echo-scripts\n"
        "  - deleted  HelmRelease/default/echo\n"
        "\n"
        "Kustomization/flux-system/cluster-apps\n"
        "  - deleted  Kustomization/default/echo\n"
        "\n"
        f"3 deleted, {OBJECTS - 3} unchanged in 31 Kustomizations\n"
    )


def test_a_cluster_setting_changes_every_object_that_substitutes_it(sample: Sample, phoebe: PhoebeRunner) -> None:
    # TIMEZONE: in cluster-settings (copied into every namespace by the common component) and
    # substituted by six HelmReleases, each in its own app Kustomization.
    sample.edit(CLUSTER_SETTINGS, "TIMEZONE: Europe/Amsterdam", "TIMEZONE: Europe/Berlin")
    sample.commit()

    result = diff(phoebe, sample, head="HEAD")
    as_json = document(diff(phoebe, sample, "-o", "json", head="HEAD"))

    assert result.code == 1, result.stderr
    assert result.stdout.splitlines()[-1] == f"18 changed, {OBJECTS - 18} unchanged in 31 Kustomizations"
    assert changed_objects(as_json) == {
        "default/homepage": [("HelmRelease/default/homepage", "changed")],
        "flux-system/cluster-apps": [(f"ConfigMap/{ns}/cluster-settings", "changed") for ns in NAMESPACES],
        "flux-system/cluster-meta": [("ConfigMap/flux-system/cluster-settings", "changed")],
        "media/plex": [("HelmRelease/media/plex", "changed")],
        "media/prowlarr": [("HelmRelease/media/prowlarr", "changed")],
        "media/radarr": [("HelmRelease/media/radarr", "changed")],
        "media/sonarr": [("HelmRelease/media/sonarr", "changed")],
        "observability/grafana": [("HelmRelease/observability/grafana", "changed")],
    }
    fields = {
        f"{o['kind']}/{o['namespace']}/{o['name']}": o["fields"]
        for k in as_json["kustomizations"]
        for o in k["objects"]
    }
    tz = {"op": "changed", "before": "Europe/Amsterdam", "after": "Europe/Berlin"}
    assert fields["HelmRelease/media/sonarr"] == [
        {"path": "spec.values.controllers.sonarr.containers.app.env.TZ", **tz}
    ]
    assert fields["HelmRelease/observability/grafana"] == [
        {"path": "spec.values.env.GF_DATE_FORMATS_DEFAULT_TIMEZONE", **tz}
    ]
    assert fields["ConfigMap/flux-system/cluster-settings"] == [{"path": "data.TIMEZONE", **tz}]
    assert all(len(changes) == 1 and changes[0]["after"] == "Europe/Berlin" for changes in fields.values())


def test_a_component_change_reaches_every_app_that_uses_it(sample: Sample, phoebe: PhoebeRunner) -> None:
    sample.edit("kubernetes/components/volsync/replicationsource.yaml", "pruneIntervalDays: 14", "pruneIntervalDays: 7")
    sample.commit()

    result = diff(phoebe, sample, head="HEAD")

    def hunk(app: str, user: int) -> str:
        return (
            f"Kustomization/media/{app}\n"
            f"  ~ changed  ReplicationSource/media/{app}\n"
            "      @@ -18,7 +18,7 @@\n"
            f"             fsGroup: {user}\n"
            f"             runAsGroup: {user}\n"
            f"             runAsUser: {user}\n"
            "      -    pruneIntervalDays: 14\n"
            "      +    pruneIntervalDays: 7\n"
            f"           repository: {app}-volsync-secret\n"
            "           retain:\n"
            "             daily: 7\n"
        )

    assert result.code == 1, result.stderr
    assert result.stdout == (
        f"{heading(sample)}\n\n"
        + "\n".join(
            hunk(app, user) for app, user in (("plex", 568), ("prowlarr", 1000), ("radarr", 1000), ("sonarr", 1000))
        )
        + f"\n4 changed, {OBJECTS - 4} unchanged in 31 Kustomizations\n"
    )


def test_reordering_documents_keys_and_resources_is_no_difference(sample: Sample, phoebe: PhoebeRunner) -> None:
    homepage = "kubernetes/apps/default/homepage/app"
    sample.edit(
        f"{homepage}/kustomization.yaml",
        "  - ./externalsecret.yaml\n  - ./rbac.yaml\n  - ./helmrelease.yaml\n",
        "  - ./helmrelease.yaml\n  - ./rbac.yaml\n  - ./externalsecret.yaml\n",
    )
    documents = [d for d in sample.path(f"{homepage}/rbac.yaml").read_text().split("---\n") if d.strip()]
    sample.write(f"{homepage}/rbac.yaml", "---\n" + "---\n".join(reversed(documents)))
    head, data = sample.path(CLUSTER_SETTINGS).read_text().split("\ndata:\n")
    sample.write(CLUSTER_SETTINGS, f"{head}\ndata:\n" + "".join(reversed(data.splitlines(keepends=True))))
    # keys of a HelmRelease: spec.interval moved last
    sample.edit(ECHO_RELEASE, "spec:\n  interval: 1h\n", "spec:\n")
    sample.write(ECHO_RELEASE, sample.path(ECHO_RELEASE).read_text() + "  interval: 1h\n")
    assert _git(sample.root, "status", "--porcelain") != ""

    result = diff(phoebe, sample)

    assert result.code == 0, result.stderr
    assert result.stdout == f"{heading(sample, None)}\n\nno differences: {OBJECTS} unchanged in 31 Kustomizations\n"
    assert result.stderr == ""


# --- Secrets: which keys, never a value -----------------------------------------------------------
SECRET_BEFORE = """\
apiVersion: v1
kind: Secret
metadata:
  name: echo-secret
type: Opaque
stringData:
  password: hunter2-before
  token: kept-token-value
  legacy: legacy-value-removed
---
apiVersion: v1
kind: Secret
metadata:
  name: echo-old
type: Opaque
data:
  old: {old}
"""
SECRET_AFTER = """\
apiVersion: v1
kind: Secret
metadata:
  name: echo-secret
type: Opaque
stringData:
  password: s3cret-after
  token: kept-token-value
  apikey: brand-new-api-key
---
apiVersion: v1
kind: Secret
metadata:
  name: echo-new
type: Opaque
stringData:
  fresh: created-secret-value
"""
SECRET_VALUES = (
    "hunter2-before",
    "s3cret-after",
    "kept-token-value",
    "legacy-value-removed",
    "brand-new-api-key",
    "created-secret-value",
    "deleted-secret-value",
)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _forms(value: str) -> list[str]:
    """A value as it could leak: plain, base64, and its sha256 digest (what phoebe compares)."""
    return [value, _b64(value), hashlib.sha256(value.encode()).hexdigest()]


@pytest.mark.parametrize("output", ["text", "json", "yaml", "markdown"])
def test_a_secret_change_shows_which_keys_changed_never_a_value(
    sample: Sample, phoebe: PhoebeRunner, output: str
) -> None:
    sample.write("kubernetes/apps/default/echo/app/secret.yaml", SECRET_BEFORE.format(old=_b64("deleted-secret-value")))
    sample.edit(ECHO_APP, "  - ./helmrelease.yaml\n", "  - ./helmrelease.yaml\n  - ./secret.yaml\n")
    sample.commit()
    sample.write("kubernetes/apps/default/echo/app/secret.yaml", SECRET_AFTER)

    result = diff(phoebe, sample, "-o", output, base="HEAD")

    assert result.code == 1, result.stderr
    for value in SECRET_VALUES:
        for form in _forms(value):
            assert form not in result.stdout, (value, form)
            assert form not in result.stderr, (value, form)
    if output == "text":
        assert result.stdout == (
            f"{sample.label('HEAD')} → working tree\n"
            "\n"
            "Kustomization/default/echo\n"
            "  + created  Secret/default/echo-new\n"
            "  - deleted  Secret/default/echo-old\n"
            "  ~ changed  Secret/default/echo-secret\n"
            "      data.apikey: added (***)\n"
            "      data.legacy: removed\n"
            "      data.password: changed (***)\n"
            "\n"
            f"1 changed, 1 created, 1 deleted, {OBJECTS} unchanged in 31 Kustomizations\n"
        )
    elif output in ("json", "yaml"):
        parsed = json.loads(result.stdout) if output == "json" else yaml.safe_load(result.stdout)
        echo = next(k for k in parsed["kustomizations"] if k["name"] == "echo")
        secrets = {o["name"]: o for o in echo["objects"]}
        assert secrets["echo-secret"]["secretKeys"] == {
            "apikey": "added",
            "legacy": "removed",
            "password": "changed",
            "token": "unchanged",
        }
        assert secrets["echo-secret"]["fields"] == [
            {"path": "data.apikey", "op": "added", "before": None, "after": "***"},
            {"path": "data.legacy", "op": "removed", "before": "***", "after": None},
            {"path": "data.password", "op": "changed", "before": "***", "after": "***"},
        ]
        assert secrets["echo-secret"]["diff"] is None  # only data changed: the keys say what
        assert secrets["echo-new"]["secretKeys"] == {"fresh": "added"}
        assert secrets["echo-old"]["secretKeys"] == {"old": "removed"}
        assert "\n+data:" not in secrets["echo-new"]["diff"] and "\n-data:" not in secrets["echo-old"]["diff"]
    else:
        assert "- `data.apikey`: added\n- `data.legacy`: removed\n- `data.password`: changed\n" in result.stdout


SOPS_SECRET = "kubernetes/apps/external-secrets/onepassword-connect/app/secret.sops.yaml"


def test_a_change_to_a_sops_encrypted_secret_shows_key_set_differences_only(
    sample: Sample, phoebe: PhoebeRunner
) -> None:
    # A new ciphertext for an existing key: the value is unknown offline, so nothing to say.
    sample.edit(SOPS_SECRET, "token: ENC[AES256_GCM,data:UE5I", "token: ENC[AES256_GCM,data:XX5I")
    value_only = diff(phoebe, sample)
    # ... and a key added
    sample.edit(
        SOPS_SECRET,
        "\nsops:\n",
        "\n    extra: ENC[AES256_GCM,data:AAAA,iv:BBBB,tag:CCCC==,type:str]\nsops:\n",
    )
    key_added = diff(phoebe, sample)

    assert value_only.code == 0, value_only.stderr
    assert value_only.stdout.splitlines()[-1] == f"no differences: {OBJECTS} unchanged in 31 Kustomizations"
    assert key_added.code == 1, key_added.stderr
    assert key_added.stdout == (
        f"{heading(sample, None)}\n"
        "\n"
        "Kustomization/external-secrets/onepassword-connect\n"
        "  ~ changed  Secret/external-secrets/onepassword-connect-secret\n"
        "      data.extra: added (***)\n"
        "      2 keys not compared: values unknown (SOPS-encrypted or masked)\n"
        "\n"
        f"1 changed, {OBJECTS - 1} unchanged in 31 Kustomizations\n"
    )
    assert "ENC[" not in key_added.stdout and "AAAA" not in key_added.stdout


def test_values_from_a_secret_show_where_its_values_sit_masked(sample: Sample, phoebe: PhoebeRunner) -> None:
    secret = (
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: echo-values\ntype: Opaque\nstringData:\n  values.yaml: |\n{}"
    )
    sample.write("kubernetes/apps/default/echo/app/secret.yaml", secret.format("    auth:\n      password: hunter2\n"))
    sample.edit(ECHO_APP, "  - ./helmrelease.yaml\n", "  - ./helmrelease.yaml\n  - ./secret.yaml\n")
    sample.edit(
        ECHO_RELEASE, "\n  values:\n", "\n  valuesFrom:\n    - kind: Secret\n      name: echo-values\n  values:\n"
    )
    sample.commit()
    sample.write(
        "kubernetes/apps/default/echo/app/secret.yaml",
        secret.format("    auth:\n      password: hunter2\n      user: admin-user\n"),
    )

    result = diff(phoebe, sample, "-o", "json", base="HEAD")

    assert "hunter2" not in result.stdout and "admin-user" not in result.stdout
    assert changed_objects(document(result)) == {
        "default/echo": [("HelmRelease/default/echo", "changed"), ("Secret/default/echo-values", "changed")]
    }
    release = first_object(document(result), "echo")
    assert release["fields"] == [{"path": "spec.values.auth.user", "op": "added", "before": None, "after": "***"}]


# --- output formats ------------------------------------------------------------------------------
def test_markdown_is_a_pull_request_comment(sample: Sample, phoebe: PhoebeRunner) -> None:
    bump_echo_image(sample)
    head = sample.commit()

    result = diff(phoebe, sample, "-o", "markdown", head="HEAD")

    first = sample.label(sample.first)
    assert result.code == 1, result.stderr
    assert result.stdout == (
        f"## phoebe diff: {first} → HEAD ({head[:8]})\n"
        "\n"
        "| Kustomization | created | changed | deleted | skipped |\n"
        "| --- | ---: | ---: | ---: | ---: |\n"
        "| default/echo | 0 | 1 | 0 | 0 |\n"
        "\n"
        f"1 changed, {OBJECTS - 1} unchanged in 31 Kustomizations\n"
        "\n"
        "<details><summary>Graph of what changes</summary>\n"
        "\n"
        "```mermaid\n"
        "flowchart LR\n"
        '  ks__default__echo["Kustomization/default/echo"]:::ready\n'
        '  hr__default__echo["HelmRelease/default/echo"]:::ready\n'
        "  ks__default__echo --> hr__default__echo\n"
        "  classDef ready fill:#d4edda,stroke:#28a745,color:#000\n"
        "```\n"
        "\n"
        "</details>\n"
        "\n"
        "<details><summary>Kustomization default/echo — 1 changed</summary>\n"
        "\n"
        "**~ changed** `HelmRelease/default/echo`\n"
        "\n"
        "```diff\n"
        f"--- HelmRelease/default/echo ({first})\n"
        f"+++ HelmRelease/default/echo (HEAD ({head[:8]}))\n"
        "@@ -32,7 +32,7 @@\n"
        "               PROMETHEUS_ENABLED: true\n"
        "             image:\n"
        "               repository: ghcr.io/mendhak/http-https-echo\n"
        "-              tag: '38'\n"
        "+              tag: '39'\n"
        "             probes:\n"
        "               liveness:\n"
        "                 custom: true\n"
        "```\n"
        "\n"
        "</details>\n"
        "\n"
    )
    assert result.stderr == ""
    graph = result.stdout.split("```mermaid\n", 1)[1].split("```", 1)[0]
    assert mermaid_parser.parse(graph).ok  # GitHub's mermaid draws it


def test_markdown_without_differences(sample: Sample, phoebe: PhoebeRunner) -> None:
    result = diff(phoebe, sample, "-o", "markdown")

    assert result.code == 0, result.stderr
    assert result.stdout == f"## phoebe diff: {heading(sample, None)}\n\nNo differences.\n\n"


def test_json_is_a_diff_report_document(sample: Sample, phoebe: PhoebeRunner) -> None:
    bump_echo_image(sample)
    head = sample.commit()

    result = diff(phoebe, sample, "-o", "json", head="HEAD")
    as_yaml = yaml.safe_load(diff(phoebe, sample, "-o", "yaml", head="HEAD").stdout)

    assert result.code == 1, result.stderr
    doc = document(result)
    assert as_yaml == doc
    kustomizations = doc.pop("kustomizations")
    assert doc == {
        "apiVersion": "phoebe.dev/v1",
        "kind": "DiffReport",
        "mode": "refs",
        "base": sample.label(sample.first),
        "head": f"HEAD ({head[:8]})",
        "differs": True,
        "counts": {"created": 0, "changed": 1, "deleted": 0, "skipped": 0, "unchanged": OBJECTS - 1},
        "warnings": [],
    }
    assert len(kustomizations) == 31
    assert [(k["namespace"], k["name"]) for k in kustomizations] == sorted(
        (k["namespace"], k["name"]) for k in kustomizations
    )
    assert sum(k["unchanged"] for k in kustomizations) == OBJECTS - 1
    echo = next(k for k in kustomizations if k["name"] == "echo")
    assert echo == {
        "kind": "Kustomization",
        "namespace": "default",
        "name": "echo",
        "buildState": None,
        "unchanged": 1,
        "warnings": [],
        "objects": [
            {
                "apiVersion": "helm.toolkit.fluxcd.io/v2",
                "kind": "HelmRelease",
                "namespace": "default",
                "name": "echo",
                "change": "changed",
                "reason": None,
                "fields": [
                    {
                        "path": "spec.values.controllers.echo.containers.app.image.tag",
                        "op": "changed",
                        "before": "38",
                        "after": "39",
                    }
                ],
                "secretKeys": {},
                "diff": (
                    f"--- HelmRelease/default/echo ({sample.label(sample.first)})\n"
                    f"+++ HelmRelease/default/echo (HEAD ({head[:8]}))\n"
                    + "".join(line[6:] + "\n" for line in ECHO_TAG_HUNK.splitlines())
                ),
                "truncated": False,
            }
        ],
        "helmReleases": [],
    }
    others = [k for k in kustomizations if k is not echo]
    assert all(k["objects"] == [] and k["buildState"] is None and k["warnings"] == [] for k in others)


def test_limit_bytes_cuts_a_big_diff_with_a_marker(sample: Sample, phoebe: PhoebeRunner) -> None:
    bump_echo_image(sample)
    sample.edit(ECHO_RELEASE, "cpu: 10m", "cpu: 20m")
    sample.edit(ECHO_RELEASE, "memory: 64Mi", "memory: 128Mi")

    result = diff(phoebe, sample, "--limit-bytes", "300", base="HEAD")
    whole = first_object(document(diff(phoebe, sample, "-o", "json", base="HEAD")), "echo")
    cut = first_object(document(diff(phoebe, sample, "--limit-bytes", "300", "-o", "json", base="HEAD")), "echo")

    assert result.code == 1, result.stderr
    assert result.stdout == (
        f"{sample.label('HEAD')} → working tree\n"
        "\n"
        "Kustomization/default/echo\n"
        "  ~ changed  HelmRelease/default/echo\n"
        + "".join(line + "\n" for line in ECHO_TAG_HUNK.splitlines()[:-2])
        + "      ... truncated (401 more bytes)\n"
        "\n"
        f"1 changed, {OBJECTS - 1} unchanged in 31 Kustomizations\n"
    )
    # whole lines, at most 300 bytes of them (the ---/+++ lines count), then the marker
    *kept, marker = cut["diff"].splitlines(keepends=True)
    kept_text = "".join(kept)
    assert len(kept_text.encode()) <= 300 and whole["diff"].startswith(kept_text)
    assert marker == f"... truncated ({len(whole['diff'].encode()) - len(kept_text.encode())} more bytes)\n"
    assert (cut["truncated"], whole["truncated"]) == (True, False)
    # only the unified text is cut: every field is still listed
    assert (
        [f["path"] for f in cut["fields"]]
        == [f["path"] for f in whole["fields"]]
        == [
            "spec.values.controllers.echo.containers.app.image.tag",
            "spec.values.controllers.echo.containers.app.resources.limits.memory",
            "spec.values.controllers.echo.containers.app.resources.requests.cpu",
        ]
    )


# --- what is compared ----------------------------------------------------------------------------
def kustomizations_shown(result: CliResult) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.startswith("Kustomization/")]


def test_path_names_and_namespace_narrow_what_is_compared(sample: Sample, phoebe: PhoebeRunner) -> None:
    sample.edit(CLUSTER_SETTINGS, "TIMEZONE: Europe/Amsterdam", "TIMEZONE: Europe/Berlin")

    by_path = diff(phoebe, sample, "--path", "kubernetes/apps/media")
    by_name = diff(phoebe, sample, "ks", "media/sonarr", "grafana")
    by_namespace = diff(phoebe, sample, "-n", "observability")
    parent_only = diff(phoebe, sample, "cluster-apps")
    parent_and_below = diff(phoebe, sample, "cluster-apps", "--recursive")
    unchanged_app = diff(phoebe, sample, "--path", "./kubernetes/apps/default/echo/")

    media = ["Kustomization/media/plex", "Kustomization/media/prowlarr", "Kustomization/media/radarr"]
    assert (by_path.code, kustomizations_shown(by_path)) == (1, [*media, "Kustomization/media/sonarr"])
    assert by_path.stdout.splitlines()[-1] == "4 changed, 24 unchanged in 4 Kustomizations"
    assert kustomizations_shown(by_name) == ["Kustomization/media/sonarr", "Kustomization/observability/grafana"]
    assert by_name.stdout.splitlines()[-1] == "2 changed, 8 unchanged in 2 Kustomizations"
    assert kustomizations_shown(by_namespace) == ["Kustomization/observability/grafana"]
    assert by_namespace.stdout.splitlines()[-1] == "1 changed, 3 unchanged in 3 Kustomizations"
    assert kustomizations_shown(parent_only) == ["Kustomization/flux-system/cluster-apps"]
    assert parent_only.stdout.splitlines()[-1] == "11 changed, 62 unchanged in 1 Kustomization"
    # everything below cluster-apps: all but cluster-meta
    assert parent_and_below.stdout.splitlines()[-1] == "17 changed, 149 unchanged in 30 Kustomizations"
    assert "Kustomization/flux-system/cluster-meta" not in kustomizations_shown(parent_and_below)
    assert (unchanged_app.code, unchanged_app.stdout.splitlines()[-1]) == (
        0,
        "no differences: 2 unchanged in 1 Kustomization",
    )


def test_a_name_that_does_not_exist_exits_5_with_one_line(sample: Sample, phoebe: PhoebeRunner) -> None:
    result = diff(phoebe, sample, "ks", "nope")

    assert result.code == 5
    assert result.stdout == ""
    assert result.stderr == "phoebe: error: no Flux Kustomization nope in the checkout\n"


def test_a_name_that_does_not_exist_beside_one_that_does_exits_5(sample: Sample, phoebe: PhoebeRunner) -> None:
    sample.edit(CLUSTER_SETTINGS, "TIMEZONE: Europe/Amsterdam", "TIMEZONE: Europe/Berlin")

    result = diff(phoebe, sample, "grafana", "nope")

    assert result.code == 5
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and "nope" in result.stderr


# --- builds that fail -----------------------------------------------------------------------------
MISSING = (
    "accumulating resources: accumulation err='accumulating resources from './missing.yaml': "
    "open kubernetes/apps/default/echo/app/missing.yaml: no such file or directory'"
)


def break_echo(sample: Sample) -> None:
    sample.edit(ECHO_APP, "  - ./helmrelease.yaml\n", "  - ./helmrelease.yaml\n  - ./missing.yaml\n")


def test_an_app_that_cannot_be_built_at_the_head_warns_and_is_a_difference(
    sample: Sample, phoebe: PhoebeRunner
) -> None:
    break_echo(sample)
    head = sample.commit()

    result = diff(phoebe, sample, head="HEAD")
    as_json = document(diff(phoebe, sample, "-o", "json", head="HEAD"))

    assert result.code == 1
    assert result.stdout == (
        f"{heading(sample)}\n"
        "\n"
        f"Kustomization/default/echo  (built only at {sample.label(sample.first)})\n"
        "\n"
        f"{OBJECTS - 2} unchanged in 31 Kustomizations; 1 Kustomization built at one side only\n"
    )
    warning = f"Kustomization/default/echo at HEAD ({head[:8]}): {MISSING}"
    assert result.stderr == f"warning: {warning}\n"
    echo = next(k for k in as_json["kustomizations"] if k["name"] == "echo")
    assert (echo["buildState"], echo["warnings"], echo["objects"]) == ("base-only", [warning], [])
    assert (as_json["differs"], as_json["warnings"]) == (True, [warning])


def test_an_app_broken_at_both_refs_warns_and_the_rest_is_still_compared(sample: Sample, phoebe: PhoebeRunner) -> None:
    break_echo(sample)
    sample.commit()
    broken = _git(sample.root, "rev-parse", "HEAD")
    bump_echo_image(sample)  # hidden: echo cannot be built on either side
    sample.edit(
        "kubernetes/apps/cert-manager/cert-manager/app/helmrelease.yaml", "version: v1.19.1", "version: v1.19.2"
    )

    result = diff(phoebe, sample, base="HEAD")

    assert result.code == 1
    assert kustomizations_shown(result) == ["Kustomization/cert-manager/cert-manager"]
    assert result.stdout.splitlines()[-1] == f"1 changed, {OBJECTS - 3} unchanged in 31 Kustomizations"
    assert result.stderr == (
        f"warning: Kustomization/default/echo at HEAD ({broken[:8]}): {MISSING}\n"
        f"warning: Kustomization/default/echo at working tree: {MISSING}\n"
    )


def test_an_app_broken_at_both_refs_and_nothing_else_changed_exits_0(sample: Sample, phoebe: PhoebeRunner) -> None:
    break_echo(sample)
    sample.commit()

    result = diff(phoebe, sample, base="HEAD")

    assert result.code == 0
    assert result.stdout.splitlines()[-1] == f"no differences: {OBJECTS - 2} unchanged in 31 Kustomizations"
    assert len(result.stderr.splitlines()) == 2


def test_strict_makes_an_app_that_cannot_be_built_exit_1(sample: Sample, phoebe: PhoebeRunner) -> None:
    break_echo(sample)
    sample.commit()

    result = diff(phoebe, sample, "--strict", base="HEAD")

    assert len(result.stderr.splitlines()) == 2
    assert result.code == 1


# --- prune --------------------------------------------------------------------------------------
ECHO_CONFIGMAP = "kubernetes/apps/default/echo/app/configmap.yaml"


def test_an_object_with_prune_disabled_that_leaves_the_build_is_skipped(sample: Sample, phoebe: PhoebeRunner) -> None:
    sample.edit(
        ECHO_CONFIGMAP, "  labels:\n", "  annotations:\n    kustomize.toolkit.fluxcd.io/prune: disabled\n  labels:\n"
    )
    sample.commit()
    sample.edit(ECHO_APP, "  - ./configmap.yaml\n", "")

    result = diff(phoebe, sample, base="HEAD")

    assert result.code == 0, result.stderr
    assert result.stdout == (
        f"{sample.label('HEAD')} → working tree\n"
        "\n"
        "Kustomization/default/echo\n"
        "  · skipped  ConfigMap/default/echo-scripts  (prune disabled)\n"
        "\n"
        f"no differences: 1 skipped, {OBJECTS - 1} unchanged in 31 Kustomizations\n"
    )


def test_an_object_that_leaves_a_kustomization_without_prune_is_skipped(sample: Sample, phoebe: PhoebeRunner) -> None:
    sample.edit("kubernetes/apps/default/echo/ks.yaml", "prune: true", "prune: false")
    sample.commit()
    sample.edit(ECHO_APP, "  - ./configmap.yaml\n", "")

    result = diff(phoebe, sample, base="HEAD")

    assert result.stdout == (
        f"{sample.label('HEAD')} → working tree\n"
        "\n"
        "Kustomization/default/echo\n"
        "  · skipped  ConfigMap/default/echo-scripts  (prune disabled on the Kustomization)\n"
        "\n"
        f"no differences: 1 skipped, {OBJECTS - 1} unchanged in 31 Kustomizations\n"
    )
    assert result.code == 0


# --- refs ----------------------------------------------------------------------------------------
def test_head_ref_instead_of_the_working_tree(sample: Sample, phoebe: PhoebeRunner) -> None:
    bump_echo_image(sample)
    echo_bumped = sample.commit("echo 39")
    sample.edit(
        "kubernetes/apps/cert-manager/cert-manager/app/helmrelease.yaml", "version: v1.19.1", "version: v1.19.2"
    )
    sample.commit("cert-manager v1.19.2")
    sample.edit(
        "kubernetes/apps/kube-system/reloader/app/ocirepository.yaml", "tag: 2.2.5", "tag: 2.2.6"
    )  # uncommitted

    by_sha = diff(phoebe, sample, head=echo_bumped)
    by_name = diff(phoebe, sample, head="HEAD~1")
    to_head = diff(phoebe, sample, head="HEAD")
    to_working_tree = diff(phoebe, sample)

    first = sample.label(sample.first)
    assert by_sha.stdout.splitlines()[0] == f"{first} → {echo_bumped} ({echo_bumped[:8]})"
    assert kustomizations_shown(by_sha) == ["Kustomization/default/echo"]
    assert by_name.stdout.splitlines()[0] == f"{first} → HEAD~1 ({echo_bumped[:8]})"
    assert by_name.stdout.splitlines()[1:] == by_sha.stdout.splitlines()[1:]
    assert kustomizations_shown(to_head) == ["Kustomization/cert-manager/cert-manager", "Kustomization/default/echo"]
    assert to_working_tree.stdout.splitlines()[0] == f"{first} → working tree"
    assert kustomizations_shown(to_working_tree) == [
        "Kustomization/cert-manager/cert-manager",
        "Kustomization/default/echo",
        "Kustomization/kube-system/reloader",
    ]
    assert to_working_tree.stdout.splitlines()[-1] == f"3 changed, {OBJECTS - 3} unchanged in 31 Kustomizations"


def test_a_bad_ref_exits_2_with_one_line(sample: Sample, phoebe: PhoebeRunner) -> None:
    bad_base = diff(phoebe, sample, base="nope")
    bad_head = diff(phoebe, sample, head="nope")
    head_alone = phoebe("diff", "--repo", str(sample.root), "--head", "HEAD")

    message = f"phoebe: error: 'nope' is not a commit in {sample.root} (a branch, tag or SHA, e.g. origin/main)\n"
    assert (bad_base.code, bad_base.stdout, bad_base.stderr) == (2, "", message)
    assert (bad_head.code, bad_head.stdout, bad_head.stderr) == (2, "", message)
    assert (head_alone.code, head_alone.stdout) == (2, "")
    assert head_alone.stderr == (
        "phoebe: error: Invalid value for '--head': --head goes with --base (see 'phoebe diff --help')\n"
    )


def _snapshot(root: Path) -> dict[str, Any]:
    """Everything a diff must leave alone: files, the index, refs, worktrees, stashes, status."""
    files = {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(root).parts
    }
    return {
        "files": files,
        "index": (root / ".git" / "index").read_bytes(),
        "status": _git(root, "status", "--porcelain=v1", "--untracked-files=all"),
        "refs": _git(root, "for-each-ref"),
        "worktrees": _git(root, "worktree", "list", "--porcelain"),
        "stashes": _git(root, "stash", "list"),
        "HEAD": _git(root, "rev-parse", "HEAD"),
    }


def test_the_checkout_is_left_as_it_was(
    sample: Sample, phoebe: PhoebeRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    bump_echo_image(sample)
    sample.commit()
    sample.edit(CLUSTER_SETTINGS, "TIMEZONE: Europe/Amsterdam", "TIMEZONE: Europe/Berlin")  # modified
    sample.write("kubernetes/apps/default/echo/app/notes.yaml", "untracked: true\n")  # untracked
    sample.edit(ECHO_RELEASE, 'tag: "39"', 'tag: "40"')
    _git(sample.root, "add", ECHO_RELEASE)  # staged
    before = _snapshot(sample.root)

    working_tree = diff(phoebe, sample)
    refs_only = diff(phoebe, sample, head="HEAD")

    assert (working_tree.code, refs_only.code) == (1, 1)
    assert "+              tag: '40'" in working_tree.stdout  # staged and unstaged changes both count
    assert "+              tag: '39'" in refs_only.stdout
    assert _snapshot(sample.root) == before
    assert list(scratch.iterdir()) == []  # the refs' temporary trees are gone


def test_verbose_counts_kustomize_runs_and_a_second_run_builds_nothing(sample: Sample, phoebe: PhoebeRunner) -> None:
    bump_echo_image(sample)

    cold = diff(phoebe, sample, "-v")
    warm = diff(phoebe, sample, "-v")

    # 31 Kustomizations at the base; at the head only echo's build differs (the cache is keyed by content)
    assert cold.stderr == "32 kustomize runs, 0 HelmRelease renders\n"
    assert warm.stderr == "0 kustomize runs, 0 HelmRelease renders\n"
    assert warm.stdout == cold.stdout


# --- one object key: the API group is part of it -------------------------------------------------
GATEWAYS = """\
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: main
spec:
  gatewayClassName: cilium
  listeners:
    - name: https
      protocol: HTTPS
      port: 443
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: main
spec:
  selector:
    istio: ingressgateway
  servers:
    - hosts: ["*.example.org"]
      port:
        name: https
        number: 443
        protocol: HTTPS
"""


def add_gateways(sample: Sample) -> None:
    """An app whose build holds two Gateways of one name: the Gateway API's and Istio's."""
    sample.write(
        "kubernetes/apps/default/gateways/ks.yaml",
        sample.path("kubernetes/apps/default/echo/ks.yaml").read_text().replace("echo", "gateways"),
    )
    sample.write(
        "kubernetes/apps/default/gateways/app/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ./gateways.yaml\n",
    )
    sample.write("kubernetes/apps/default/gateways/app/gateways.yaml", GATEWAYS)
    sample.edit(
        "kubernetes/apps/default/kustomization.yaml",
        "  - ./homepage/ks.yaml\n",
        "  - ./homepage/ks.yaml\n  - ./gateways/ks.yaml\n",
    )


def test_two_kinds_of_one_name_in_different_groups_are_two_objects(sample: Sample, phoebe: PhoebeRunner) -> None:
    """Objects pair by API group, kind, namespace and name: Istio's Gateway changing is not the
    Gateway API's Gateway, and neither is dropped."""
    add_gateways(sample)
    base = sample.commit("two gateways")
    sample.edit("kubernetes/apps/default/gateways/app/gateways.yaml", "istio: ingressgateway", "istio: internal")

    result = diff(phoebe, sample, base=base)
    as_json = document(diff(phoebe, sample, "-o", "json", base=base))

    assert result.code == 1, result.stderr
    assert result.stdout == (
        f"{sample.label(base)} → working tree\n"
        "\n"
        "Kustomization/default/gateways\n"
        "  ~ changed  Gateway.networking.istio.io/default/main\n"
        "      @@ -7,7 +7,7 @@\n"
        "           app.kubernetes.io/name: gateways\n"
        "       spec:\n"
        "         selector:\n"
        "      -    istio: ingressgateway\n"
        "      +    istio: internal\n"
        "         servers:\n"
        "         - hosts:\n"
        "           - '*.example.org'\n"
        "\n"
        f"1 changed, {OBJECTS + 2} unchanged in 32 Kustomizations\n"  # the Kustomization and the other Gateway
    )
    gateways = next(k for k in as_json["kustomizations"] if k["name"] == "gateways")
    assert gateways["unchanged"] == 1
    [changed] = gateways["objects"]
    assert (changed["apiVersion"], changed["kind"], changed["namespace"], changed["name"], changed["change"]) == (
        "networking.istio.io/v1",
        "Gateway",
        "default",
        "main",
        "changed",
    )
    assert changed["fields"] == [
        {"path": "spec.selector.istio", "op": "changed", "before": "ingressgateway", "after": "internal"}
    ]
    assert changed["diff"].splitlines()[:2] == [
        f"--- Gateway.networking.istio.io/default/main ({sample.label(base)})",
        "+++ Gateway.networking.istio.io/default/main (working tree)",
    ]


def test_a_new_app_with_two_gateways_of_one_name_creates_both(sample: Sample, phoebe: PhoebeRunner) -> None:
    add_gateways(sample)

    result = diff(phoebe, sample, "-o", "json")

    assert result.code == 1, result.stderr
    gateways = next(k for k in document(result)["kustomizations"] if k["name"] == "gateways")
    assert [(o["apiVersion"], o["kind"], o["name"], o["change"]) for o in gateways["objects"]] == [
        ("gateway.networking.k8s.io/v1", "Gateway", "main", "created"),
        ("networking.istio.io/v1", "Gateway", "main", "created"),
    ]
