"""diff output: the terminal text (width and colour pinned), the Markdown comment, the JSON shape."""

from __future__ import annotations

import io
import json
from typing import Any

from rich.console import Console
from rich.text import Text

from phoebe_cli.flux.diff import (
    CHANGED,
    SUSPENDED_IN_CHECKOUT,
    SUSPENDED_ON_CLUSTER,
    DiffReport,
    KustomizationDiff,
    ObjectDiff,
    ObjectFailure,
    ObjectKey,
    ReleaseDiff,
    compare,
)
from phoebe_cli.flux.objects import ObjectRef
from phoebe_cli.render.diff import diff_document, diff_markdown, diff_view, summary_line, warning_lines
from phoebe_cli.render.documents import DataFormat, serialize
from tests.unit.test_diff import OTHER_VALUE, SECRET_VALUE, b64, configmap, deployment, secret

APPS = ObjectRef("Kustomization", "flux-system", "apps")
INFRA = ObjectRef("Kustomization", "flux-system", "infra")
BASE, HEAD = "main (1a2b3c4d)", "HEAD (5e6f7a8b)"
BROKEN = f"Kustomization/flux-system/infra at {HEAD}: kustomize build failed: missing resource ./gone.yaml"


def render(renderable: object, width: int = 100) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None, force_terminal=False)
    console.print(renderable)
    return "\n".join(line.rstrip() for line in console.file.getvalue().splitlines())  # type: ignore[attr-defined]


def report() -> DiffReport:
    manual = configmap("manual", annotations={"kustomize.toolkit.fluxcd.io/reconcile": "disabled"})
    apps = KustomizationDiff(
        APPS,
        (
            compare(deployment(replicas=1), deployment(replicas=2), sides=(BASE, HEAD)),
            compare(None, configmap("web-config", data={"a": "x|y"}), sides=(BASE, HEAD)),
            compare(configmap("old"), None, sides=(BASE, HEAD)),
            compare(configmap("manual", data={"a": "0"}), manual, sides=(BASE, HEAD)),
            compare(
                secret({"password": b64(SECRET_VALUE), "user": b64("admin"), "old": b64("x")}),
                secret({"password": b64(OTHER_VALUE), "user": b64("admin"), "token": b64(SECRET_VALUE)}),
                sides=(BASE, HEAD),
            ),
        ),
        unchanged=12,
    )
    infra = KustomizationDiff(INFRA, (), 0, (BROKEN,), "base-only")
    return DiffReport("refs", BASE, HEAD, (apps, infra), (BROKEN, "flux-system/GitRepository/extra is not used"))


# --- terminal -------------------------------------------------------------------------------------
TEXT = """\
main (1a2b3c4d) → HEAD (5e6f7a8b)

Kustomization/flux-system/apps
  ~ changed  Deployment/apps/web
      @@ -4,7 +4,7 @@
         name: web
         namespace: apps
       spec:
      -  replicas: 1
      +  replicas: 2
         selector:
           matchLabels:
             app: web
  + created  ConfigMap/apps/web-config
  - deleted  ConfigMap/apps/old
  · skipped  ConfigMap/apps/manual  (reconcile disabled)
  ~ changed  Secret/apps/db
      data.old: removed
      data.password: changed (***)
      data.token: added (***)

Kustomization/flux-system/infra  (built only at main (1a2b3c4d))

2 changed, 1 created, 1 deleted, 1 skipped, 12 unchanged in 2 Kustomizations; 1 Kustomization built at one side only"""


def test_text_view() -> None:
    assert render(diff_view(report(), color=False), width=200) == TEXT


def test_text_view_without_colour_has_no_styles() -> None:
    view = diff_view(report(), color=False)
    assert isinstance(view, Text)
    assert view.spans == [] and not view.style


def test_text_view_colours_the_diff_lines() -> None:
    view = diff_view(report(), color=True)
    assert isinstance(view, Text)
    styles = {view.plain[span.start : span.end]: str(span.style) for span in view.spans}
    assert styles["-  replicas: 1"] == "red"
    assert styles["+  replicas: 2"] == "green"
    assert styles["@@ -4,7 +4,7 @@"] == "cyan"
    assert styles["~ changed"] == "yellow"
    assert styles["+ created"] == "green"
    assert styles["· skipped"] == "dim"
    assert styles["data.token: added (***)"] == "green"
    assert render(view, width=200) == TEXT  # colours change nothing in the text


def test_text_view_with_no_differences() -> None:
    skipped = KustomizationDiff(
        APPS, (ObjectDiff(ObjectKey("v1", "ConfigMap", "apps", "x"), "skipped", reason="ssa: Ignore"),), 4
    )
    assert render(diff_view(DiffReport("cluster", "cluster", "checkout", (skipped,)), color=False)) == (
        "cluster → checkout\n"
        "\n"
        "Kustomization/flux-system/apps\n"
        "  · skipped  ConfigMap/apps/x  (ssa: Ignore)\n"
        "\n"
        "no differences: 1 skipped, 4 unchanged in 1 Kustomization"
    )
    assert render(diff_view(DiffReport("cluster", "cluster", "checkout", ()), color=False)) == (
        "cluster → checkout\n\nno differences"
    )


def test_truncated_diff_and_unknown_secret_keys_in_the_text_view() -> None:
    sops = {"phoebe.dev/sops": "encrypted"}
    diffs = (
        compare(deployment(replicas=1), deployment(replicas=2), limit_bytes=80),
        compare(
            secret(string_data={"a": "***"}, annotations=sops),
            secret(string_data={"a": "***", "b": "***"}, annotations=sops),
        ),
    )
    text = render(diff_view(DiffReport("refs", "a", "b", (KustomizationDiff(APPS, diffs, 0),)), color=False), width=120)
    kept = len("--- Deployment/apps/web (base)\n+++ Deployment/apps/web (head)\n@@ -4,7 +4,7 @@\n")
    whole = len(compare(deployment(replicas=1), deployment(replicas=2)).unified.encode())
    assert text.splitlines()[3:] == [
        "  ~ changed  Deployment/apps/web",
        "      @@ -4,7 +4,7 @@",
        f"      ... truncated ({whole - kept} more bytes)",
        "  ~ changed  Secret/apps/db",
        "      data.b: added (***)",
        "      1 key not compared: values unknown (SOPS-encrypted or masked)",
        "",
        "2 changed in 1 Kustomization",
    ]


def test_warning_lines_are_each_warning_once() -> None:
    assert warning_lines(report()) == [BROKEN, "flux-system/GitRepository/extra is not used"]


def test_summary_line() -> None:
    assert summary_line(report()) == (
        "2 changed, 1 created, 1 deleted, 1 skipped, 12 unchanged in 2 Kustomizations; "
        "1 Kustomization built at one side only"
    )


# --- the document ---------------------------------------------------------------------------------
def test_document_shape() -> None:
    """Offline (refs): nothing about suspension or failing applies, which only the cluster says."""
    doc = diff_document(report())
    assert json.loads(serialize(doc, DataFormat.JSON)) == doc
    assert {k: v for k, v in doc.items() if k != "kustomizations"} == {
        "apiVersion": "phoebe.dev/v1",
        "kind": "DiffReport",
        "mode": "refs",
        "base": BASE,
        "head": HEAD,
        "differs": True,
        "counts": {"created": 1, "changed": 2, "deleted": 1, "skipped": 1, "unchanged": 12},
        "warnings": [BROKEN, "flux-system/GitRepository/extra is not used"],
    }
    apps, infra = doc["kustomizations"]
    assert infra == {
        "kind": "Kustomization",
        "namespace": "flux-system",
        "name": "infra",
        "buildState": "base-only",
        "unchanged": 0,
        "warnings": [BROKEN],
        "objects": [],
        "helmReleases": [],
    }
    assert {k: v for k, v in apps.items() if k != "objects"} == {
        "kind": "Kustomization",
        "namespace": "flux-system",
        "name": "apps",
        "buildState": None,
        "unchanged": 12,
        "warnings": [],
        "helmReleases": [],
    }
    web, created, deleted, skipped, db = apps["objects"]
    assert web == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "namespace": "apps",
        "name": "web",
        "change": "changed",
        "reason": None,
        "fields": [{"path": "spec.replicas", "op": "changed", "before": 1, "after": 2}],
        "secretKeys": {},
        "diff": report().kustomizations[0].objects[0].unified,
        "truncated": False,
    }
    assert web["diff"].startswith(
        f"--- Deployment/apps/web ({BASE})\n+++ Deployment/apps/web ({HEAD})\n@@ -4,7 +4,7 @@\n"
    )
    assert (created["change"], created["fields"], created["diff"].splitlines()[:2]) == (
        "created",
        [],
        ["--- /dev/null", f"+++ ConfigMap/apps/web-config ({HEAD})"],
    )
    assert (deleted["change"], deleted["name"]) == ("deleted", "old")
    assert skipped == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "namespace": "apps",
        "name": "manual",
        "change": "skipped",
        "reason": "reconcile disabled",
        "fields": [],
        "secretKeys": {},
        "diff": None,
        "truncated": False,
    }
    assert db == {
        "apiVersion": "v1",
        "kind": "Secret",
        "namespace": "apps",
        "name": "db",
        "change": "changed",
        "reason": None,
        "fields": [
            {"path": "data.old", "op": "removed", "before": "***", "after": None},
            {"path": "data.password", "op": "changed", "before": "***", "after": "***"},
            {"path": "data.token", "op": "added", "before": None, "after": "***"},
        ],
        "secretKeys": {"old": "removed", "password": "changed", "token": "added", "user": "unchanged"},
        "diff": None,
        "truncated": False,
    }


def test_document_values_are_json_even_when_yaml_made_dates() -> None:
    from datetime import date

    diff = compare(configmap(data={"day": date(2026, 1, 1)}), configmap(data={"day": date(2026, 1, 2)}))
    doc = diff_document(DiffReport("refs", "a", "b", (KustomizationDiff(APPS, (diff,), 0),)))
    assert doc["kustomizations"][0]["objects"][0]["fields"] == [
        {"path": "data.day", "op": "changed", "before": "2026-01-01", "after": "2026-01-02"}
    ]
    json.dumps(doc)


# --- Markdown -------------------------------------------------------------------------------------
MARKDOWN = """\
## phoebe diff: main (1a2b3c4d) → HEAD (5e6f7a8b)

| Kustomization | created | changed | deleted | skipped |
| --- | ---: | ---: | ---: | ---: |
| flux-system/apps | 1 | 2 | 1 | 1 |
| flux-system/infra (built only at main (1a2b3c4d)) | 0 | 0 | 0 | 0 |

2 changed, 1 created, 1 deleted, 1 skipped, 12 unchanged in 2 Kustomizations; 1 Kustomization built at one side only

> **warning:** flux-system/GitRepository/extra is not used

<details><summary>Kustomization flux-system/apps — 2 changed, 1 created, 1 deleted, 1 skipped</summary>

**~ changed** `Deployment/apps/web`

```diff
--- Deployment/apps/web (main (1a2b3c4d))
+++ Deployment/apps/web (HEAD (5e6f7a8b))
@@ -4,7 +4,7 @@
   name: web
   namespace: apps
 spec:
-  replicas: 1
+  replicas: 2
   selector:
     matchLabels:
       app: web
```

**+ created** `ConfigMap/apps/web-config`

```diff
--- /dev/null
+++ ConfigMap/apps/web-config (HEAD (5e6f7a8b))
@@ -0,0 +1,7 @@
+apiVersion: v1
+kind: ConfigMap
+metadata:
+  name: web-config
+  namespace: apps
+data:
+  a: x|y
```

**- deleted** `ConfigMap/apps/old`

```diff
--- ConfigMap/apps/old (main (1a2b3c4d))
+++ /dev/null
@@ -1,7 +0,0 @@
-apiVersion: v1
-kind: ConfigMap
-metadata:
-  name: old
-  namespace: apps
-data:
-  a: '1'
```

**· skipped** `ConfigMap/apps/manual` (reconcile disabled)

**~ changed** `Secret/apps/db`

- `data.old`: removed
- `data.password`: changed
- `data.token`: added

</details>

<details><summary>Kustomization flux-system/infra — built only at main (1a2b3c4d)</summary>

> **warning:** Kustomization/flux-system/infra at HEAD (5e6f7a8b): kustomize build failed: missing resource ./gone.yaml

_Built only at main (1a2b3c4d): no objects compared._

</details>

"""


def test_markdown() -> None:
    assert diff_markdown(report()) == MARKDOWN


def test_markdown_without_differences() -> None:
    quiet = DiffReport(
        "refs", "main (1a2b3c4d)", "HEAD (5e6f7a8b)", (KustomizationDiff(APPS, (), 7),), ("one | warning",)
    )
    assert diff_markdown(quiet) == (
        "## phoebe diff: main (1a2b3c4d) → HEAD (5e6f7a8b)\n\nNo differences.\n\n> **warning:** one | warning\n\n"
    )


def test_markdown_escapes_table_cells_and_html() -> None:
    key = ObjectKey("v1", "ConfigMap", "a", "b")
    odd = KustomizationDiff(ObjectRef("Kustomization", "ns", "a|b<c>"), (ObjectDiff(key, CHANGED),), 0)
    text = diff_markdown(DiffReport("refs", "x", "y", (odd,)))
    assert "| ns/a\\|b<c> | 0 | 1 | 0 | 0 |\n" in text
    assert "<details><summary>Kustomization ns/a|b&lt;c&gt; — 1 changed</summary>\n" in text


def test_markdown_fences_outlast_backticks_in_the_diff() -> None:
    diff = compare(configmap(data={"README.md": "```sh\nrun\n```\n"}), configmap(data={"README.md": "````\nx\n"}))
    text = diff_markdown(DiffReport("refs", "a", "b", (KustomizationDiff(APPS, (diff,), 0),)))
    assert "\n`````diff\n--- ConfigMap/apps/web (base)\n" in text
    assert text.count("\n`````\n") == 1


def test_markdown_stays_within_the_comment_limit() -> None:
    big = [
        compare(configmap(f"cm-{i}", data={"a": "0"}), configmap(f"cm-{i}", data={"a": "\n".join(["line"] * 200)}))
        for i in range(40)
    ]
    many = DiffReport("refs", "a", "b", (KustomizationDiff(APPS, tuple(big), 0),))
    full = diff_markdown(many, limit=10**9)
    assert "_Truncated" not in full and full.count("**~ changed**") == 40
    limited = diff_markdown(many, limit=8000)
    assert len(limited) <= 8000
    assert limited.count("**~ changed**") < 40
    shown = limited.count("**~ changed**")
    assert limited.endswith(
        f"</details>\n\n_Truncated: {40 - shown} more objects not shown; a comment holds at most 8000 characters. "
        "Run `phoebe diff` to see everything._\n"
    )
    assert "... truncated (" in limited  # the last object shown is cut, not dropped
    assert len(diff_markdown(many)) <= 65536


def test_markdown_table_too_long_for_the_limit() -> None:
    key = ObjectKey("v1", "ConfigMap", "apps", "web")
    many = tuple(
        KustomizationDiff(ObjectRef("Kustomization", "apps", f"ks-{i:03}"), (ObjectDiff(key, CHANGED),), 0)
        for i in range(300)
    )
    text = diff_markdown(DiffReport("refs", "a", "b", many), limit=3000)
    assert len(text) <= 3000
    rows = [line for line in text.splitlines() if line.startswith("| apps/ks-")]
    assert rows == [f"| apps/ks-{i:03} | 0 | 1 | 0 | 0 |" for i in range(len(rows))]
    assert f"| … {300 - len(rows)} more | | | | |" in text
    assert "<details>" not in text
    assert text.endswith(
        "_Truncated: 300 more objects not shown; a comment holds at most 3000 characters. "
        "Run `phoebe diff` to see everything._\n"
    )


def test_secret_values_appear_in_no_output() -> None:
    whole = report()
    texts = [
        repr(whole),
        render(diff_view(whole, color=False), width=200),
        render(diff_view(whole, color=True), width=200),
        serialize(diff_document(whole), DataFormat.JSON),
        serialize(diff_document(whole), DataFormat.YAML),
        diff_markdown(whole),
    ]
    for text in texts:
        for value in (SECRET_VALUE, OTHER_VALUE, b64(SECRET_VALUE), b64(OTHER_VALUE), "admin", b64("admin")):
            assert value not in text
        assert "password" in text or text.startswith("DiffReport(")


def _objects(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [o for k in doc["kustomizations"] for o in k["objects"]]


def test_document_is_deterministic() -> None:
    assert serialize(diff_document(report()), DataFormat.JSON) == serialize(diff_document(report()), DataFormat.JSON)
    assert [o["name"] for o in _objects(diff_document(report()))] == ["web", "web-config", "old", "manual", "db"]


# --- against the cluster: failing and suspended Kustomizations ------------------------------------
INVALID = ObjectKey("v1", "ConfigMap", "apps", "bad")
INVALID_MESSAGE = (
    'ConfigMap/apps/bad dry-run failed (Invalid): ConfigMap "bad" is invalid: data[bad key]: Invalid value: '
    '"bad key": a valid config key must consist of alphanumeric characters'
)
MEDIA = ObjectRef("Kustomization", "media", "plex")
PAUSED = ObjectRef("Kustomization", "media", "paused")


def cluster_report() -> DiffReport:
    """One failing Kustomization (a Namespace of an earlier stage still applied), one suspended
    on the cluster and left uncompared, one suspended in the checkout and compared."""
    failing = KustomizationDiff(
        APPS,
        (
            compare(
                None,
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"}},
                sides=("cluster", "checkout"),
            ),
        ),
        2,
        failures=(ObjectFailure(INVALID, INVALID_MESSAGE),),
        not_applied=3,
    )
    suspended = KustomizationDiff(PAUSED, (), 0, suspended=SUSPENDED_ON_CLUSTER, compared=False)
    included = KustomizationDiff(
        MEDIA,
        (
            compare(
                configmap("plex", data={"a": "1"}), configmap("plex", data={"a": "2"}), sides=("cluster", "checkout")
            ),
        ),
        1,
        suspended=SUSPENDED_IN_CHECKOUT,
    )
    return DiffReport("cluster", "cluster", "checkout", (failing, suspended, included))


CLUSTER_TEXT = """\
cluster → checkout

Kustomization/flux-system/apps  (failing)
  ✗ failed   ConfigMap/apps/bad  (dry-run failed (Invalid): ConfigMap "bad" is invalid: data[bad key]: Invalid value:
"bad key": a valid config key must consist of alphanumeric characters)
  ✗ 3 changes not applied: kustomize-controller stops at a failed dry-run and prunes nothing
  + created  Namespace/apps

Kustomization/media/paused  (suspended on the cluster: not compared; --include-suspended compares it)

Kustomization/media/plex  (suspended in the checkout: Flux applies none of this until it is resumed)
  ~ changed  ConfigMap/apps/plex
      @@ -4,4 +4,4 @@
         name: plex
         namespace: apps
       data:
      -  a: '1'
      +  a: '2'

1 changed, 1 created, 3 unchanged in 2 Kustomizations; 1 Kustomization failing (3 changes not applied); 1 Kustomization
suspended, not compared"""


def test_text_view_of_failing_and_suspended_kustomizations() -> None:
    assert render(diff_view(cluster_report(), color=False), width=120) == CLUSTER_TEXT


def test_the_failure_is_red_in_colour() -> None:
    view = diff_view(cluster_report(), color=True)
    assert isinstance(view, Text)
    styles = {view.plain[span.start : span.end]: str(span.style) for span in view.spans}
    assert styles["  (failing)"] == "bold red"
    assert styles["✗ failed"] == "bold red"
    assert styles["  (suspended on the cluster: not compared; --include-suspended compares it)"] == "yellow"


def test_a_failing_kustomization_is_a_difference_even_with_nothing_else() -> None:
    alone = KustomizationDiff(APPS, (), 4, failures=(ObjectFailure(INVALID, INVALID_MESSAGE),))
    report_ = DiffReport("cluster", "cluster", "checkout", (alone,))
    assert alone.differs and report_.differs and report_.failing == 1
    assert summary_line(report_) == "4 unchanged in 1 Kustomization; 1 Kustomization failing (0 changes not applied)"
    assert render(diff_view(report_, color=False), width=200).splitlines()[2:5] == [
        "Kustomization/flux-system/apps  (failing)",
        f"  ✗ failed   ConfigMap/apps/bad  ({INVALID_MESSAGE.removeprefix('ConfigMap/apps/bad ')})",
        "  ✗ nothing applied: kustomize-controller stops at a failed dry-run and prunes nothing",
    ]


def test_suspended_and_not_compared_is_no_difference() -> None:
    suspended = KustomizationDiff(PAUSED, (), 0, suspended=SUSPENDED_ON_CLUSTER, compared=False)
    compared = KustomizationDiff(APPS, (), 5)
    quiet = DiffReport("cluster", "cluster", "checkout", (compared, suspended))
    assert not quiet.differs and quiet.not_compared == 1
    assert (
        summary_line(quiet) == "no differences: 5 unchanged in 1 Kustomization; 1 Kustomization suspended, not compared"
    )
    assert diff_markdown(quiet) == (
        "## phoebe diff: cluster → checkout\n\nNo differences.\n\n"
        "- Kustomization `media/paused`: suspended on the cluster: not compared; --include-suspended compares it\n\n"
    )


def test_document_of_failing_and_suspended_kustomizations() -> None:
    doc = diff_document(cluster_report())
    assert json.loads(serialize(doc, DataFormat.JSON)) == doc
    assert serialize(doc, DataFormat.YAML)  # the same document as YAML
    failing, suspended, included = doc["kustomizations"]
    assert {k: v for k, v in failing.items() if k != "objects"} == {
        "kind": "Kustomization",
        "namespace": "flux-system",
        "name": "apps",
        "buildState": None,
        "suspended": None,
        "compared": True,
        "failing": True,
        "failures": [
            {"apiVersion": "v1", "kind": "ConfigMap", "namespace": "apps", "name": "bad", "message": INVALID_MESSAGE}
        ],
        "notApplied": 3,
        "unchanged": 2,
        "warnings": [],
        "helmReleases": [],
    }
    assert [(o["kind"], o["change"]) for o in failing["objects"]] == [("Namespace", "created")]
    assert (suspended["suspended"], suspended["compared"], suspended["objects"]) == ("cluster", False, [])
    assert (included["suspended"], included["compared"], len(included["objects"])) == ("checkout", True, 1)
    assert doc["differs"] is True


CLUSTER_MARKDOWN_HEAD = """\
## phoebe diff: cluster → checkout

| Kustomization | created | changed | deleted | skipped |
| --- | ---: | ---: | ---: | ---: |
| flux-system/apps (failing) | 1 | 0 | 0 | 0 |
| media/paused (suspended on the cluster: not compared; --include-suspended compares it) | 0 | 0 | 0 | 0 |
| media/plex (suspended in the checkout: Flux applies none of this until it is resumed) | 0 | 1 | 0 | 0 |

1 changed, 1 created, 3 unchanged in 2 Kustomizations; 1 Kustomization failing (3 changes not applied); \
1 Kustomization suspended, not compared

<details><summary>Kustomization flux-system/apps — 1 created, failing</summary>

**✗ failed** `ConfigMap/apps/bad`: `dry-run failed (Invalid): ConfigMap "bad" is invalid: data[bad key]: \
Invalid value: "bad key": a valid config key must consist of alphanumeric characters`

_3 changes not applied: kustomize-controller stops at a failed dry-run and prunes nothing._

**+ created** `Namespace/apps`
"""


def test_markdown_of_failing_and_suspended_kustomizations() -> None:
    text = diff_markdown(cluster_report())
    assert text.startswith(CLUSTER_MARKDOWN_HEAD)
    assert (
        "<details><summary>Kustomization media/paused — suspended on the cluster: not compared; "
        "--include-suspended compares it</summary>\n\n"
        "_Suspended on the cluster: not compared; --include-suspended compares it._\n\n</details>\n"
    ) in text


def test_server_text_with_backticks_stays_literal_in_markdown() -> None:
    odd = ObjectFailure(INVALID, "ConfigMap/apps/bad dry-run failed: `x` is\nbad ``")
    text = diff_markdown(DiffReport("cluster", "c", "k", (KustomizationDiff(APPS, (), 0, failures=(odd,)),)))
    assert "**✗ failed** `ConfigMap/apps/bad`: ``` dry-run failed: `x` is bad `` ```\n" in text


# --- HelmReleases against the cluster: live drift the upgrade puts back, failed dry-runs ---------
WEB = ObjectRef("HelmRelease", "apps", "web")
LIVE_SIDES = ("cluster", "after upgrade")


def release_report(*, failing: bool = False) -> DiffReport:
    """A HelmRelease whose upgrade changes one value, while a ConfigMap and a Secret were edited
    on the cluster (put back by the upgrade); ``failing``: a dry-run of its objects fails."""
    manifest = compare(
        configmap("web", data={"a": "1"}), configmap("web", data={"a": "2"}), sides=("deployed revision 3", "checkout")
    )
    drift = compare(configmap("web", data={"a": "9"}), configmap("web", data={"a": "2"}), sides=LIVE_SIDES)
    typed = compare(secret({"password": b64(OTHER_VALUE)}), secret({"password": b64(SECRET_VALUE)}), sides=LIVE_SIDES)
    failures = (ObjectFailure(INVALID, INVALID_MESSAGE),) if failing else ()
    release = ReleaseDiff(WEB, (manifest,), 1, ("web 1.0.0", "web 1.1.0"), live=(drift, typed), failures=failures)
    return DiffReport("cluster", "cluster", "checkout", (KustomizationDiff(APPS, (), 2, releases=(release,)),))


RELEASE_TEXT = """\
cluster → checkout

Kustomization/flux-system/apps
  HelmRelease/apps/web rendered (chart web 1.0.0 → web 1.1.0)
    ~ changed  ConfigMap/apps/web
        @@ -4,4 +4,4 @@
           name: web
           namespace: apps
         data:
        -  a: '1'
        +  a: '2'
    live objects changed on the cluster, put back by the upgrade (server-side apply dry-run):
      ~ changed  ConfigMap/apps/web
          @@ -4,4 +4,4 @@
             name: web
             namespace: apps
           data:
          -  a: '9'
          +  a: '2'
      ~ changed  Secret/apps/db
          data.password: changed (***)

1 changed, 3 unchanged in 1 Kustomization; 2 live objects put back by an upgrade"""


def test_text_view_of_live_objects_an_upgrade_puts_back() -> None:
    assert render(diff_view(release_report(), color=False), width=120) == RELEASE_TEXT


def test_a_failed_release_dry_run_is_its_failure_line() -> None:
    report_ = release_report(failing=True)
    lines = render(diff_view(report_, color=False), width=300).splitlines()
    assert lines[3:5] == [
        "  HelmRelease/apps/web rendered (chart web 1.0.0 → web 1.1.0)",
        f"    ✗ failed   ConfigMap/apps/bad  ({INVALID_MESSAGE.removeprefix('ConfigMap/apps/bad ')})",
    ]
    assert lines[-1] == (
        "1 changed, 3 unchanged in 1 Kustomization; 1 HelmRelease failing (a dry-run of its objects fails); "
        "2 live objects put back by an upgrade"
    )
    alone = ReleaseDiff(WEB, (), 3, failures=(ObjectFailure(INVALID, INVALID_MESSAGE),))
    assert (
        alone.differs
        and DiffReport("cluster", "cluster", "checkout", (KustomizationDiff(APPS, (), 0, releases=(alone,)),)).differs
    )
    assert ReleaseDiff(WEB, (), 3, live=(release_report().kustomizations[0].releases[0].live[0],)).differs
    assert not ReleaseDiff(WEB, (), 3).differs


def test_document_of_live_objects_and_failures() -> None:
    doc = diff_document(release_report(failing=True))
    assert json.loads(serialize(doc, DataFormat.JSON)) == doc
    (release,) = doc["kustomizations"][0]["helmReleases"]
    assert [(o["kind"], o["change"]) for o in release["objects"]] == [("ConfigMap", "changed")]
    live = {o["kind"]: o for o in release["live"]}
    assert [(f["path"], f["before"], f["after"]) for f in live["ConfigMap"]["fields"]] == [("data.a", "9", "2")]
    assert live["Secret"]["secretKeys"] == {"password": "changed"}
    assert live["Secret"]["fields"] == [{"path": "data.password", "op": "changed", "before": "***", "after": "***"}]
    assert release["failures"] == [
        {"apiVersion": "v1", "kind": "ConfigMap", "namespace": "apps", "name": "bad", "message": INVALID_MESSAGE}
    ]


def test_markdown_of_live_objects_and_failures() -> None:
    text = diff_markdown(release_report(failing=True))
    assert (
        f"**✗ failed** `ConfigMap/apps/bad`: `{INVALID_MESSAGE.removeprefix('ConfigMap/apps/bad ')}`\n\n"
        "#### HelmRelease/apps/web rendered (chart web 1.0.0 → web 1.1.0)\n\n**~ changed** `ConfigMap/apps/web`"
    ) in text
    assert (
        "#### HelmRelease/apps/web rendered (chart web 1.0.0 → web 1.1.0): live objects changed on the cluster, "
        "put back by the upgrade (server-side apply dry-run)\n\n**~ changed** `ConfigMap/apps/web`"
    ) in text
    assert "**~ changed** `Secret/apps/db`\n\n- `data.password`: changed\n" in text


def test_secret_values_of_live_objects_appear_in_no_output() -> None:
    report_ = release_report()
    outputs = [
        render(diff_view(report_, color=False)),
        serialize(diff_document(report_), DataFormat.JSON),
        serialize(diff_document(report_), DataFormat.YAML),
        diff_markdown(report_),
    ]
    for output in outputs:
        for value in (SECRET_VALUE, OTHER_VALUE, b64(SECRET_VALUE), b64(OTHER_VALUE)):
            assert value not in output
