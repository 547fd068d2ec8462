"""``phoebe diff images``: which container images a change moves (flux/images.py, through the
diff engine) and how that is shown (render/diff.py's images views)."""

from __future__ import annotations

import io
import json
from typing import Any

from rich.console import Console

from phoebe_cli.flux.diff import DiffReport, KustomizationDiff, compare
from phoebe_cli.flux.images import ImageChange, container_images, image_changes
from phoebe_cli.flux.objects import ObjectRef
from phoebe_cli.render.diff import images_document, images_markdown, images_view
from phoebe_cli.render.documents import DataFormat, serialize
from tests.unit.test_diff import configmap, deployment

APPS = ObjectRef("Kustomization", "flux-system", "apps")
BASE, HEAD = "main (1a2b3c4d)", "HEAD (5e6f7a8b)"


def pod_spec(*containers: tuple[str, str], init: tuple[tuple[str, str], ...] = ()) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": n, "image": i} for n, i in containers]}
    if init:
        spec["initContainers"] = [{"name": n, "image": i} for n, i in init]
    return spec


def cronjob(image: str, init_image: str = "busybox:1.36") -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "backup", "namespace": "apps"},
        "spec": {
            "schedule": "@daily",
            "jobTemplate": {"spec": {"template": {"spec": pod_spec(("backup", image), init=(("wait", init_image),))}}},
        },
    }


def workload(api_version: str, kind: str, spec: dict[str, Any], *, template: bool = True) -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": "w", "namespace": "apps"},
        "spec": {"template": {"spec": spec}} if template else spec,
    }


def test_every_workload_kind_has_its_pod_spec_read() -> None:
    spec = pod_spec(("app", "a:1"), init=(("setup", "b:2"),))
    expected = {(True, "setup"): "b:2", (False, "app"): "a:1"}
    for api_version, kind in (
        ("apps/v1", "Deployment"),
        ("apps/v1", "StatefulSet"),
        ("apps/v1", "DaemonSet"),
        ("apps/v1", "ReplicaSet"),
        ("batch/v1", "Job"),
    ):
        assert container_images(workload(api_version, kind, spec)) == expected, kind
    assert container_images(workload("v1", "Pod", spec, template=False)) == expected
    assert container_images(cronjob("c:3")) == {(True, "wait"): "busybox:1.36", (False, "backup"): "c:3"}


def test_what_is_not_a_workload_has_no_images() -> None:
    release = {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": "web", "namespace": "apps"},
        "spec": {"values": {"image": {"repository": "ghcr.io/x", "tag": "1"}, "containers": [{"image": "y"}]}},
    }
    assert container_images(release) == {}
    # a kind of another group with the same name is not the Kubernetes workload
    assert container_images(workload("example.com/v1", "Deployment", pod_spec(("app", "a:1")))) == {}
    assert container_images(configmap("x")) == {}
    assert container_images(workload("apps/v1", "Deployment", {"containers": "nonsense"})) == {}


def test_changes_pair_containers_by_name_init_containers_first() -> None:
    before = workload("apps/v1", "Deployment", pod_spec(("app", "a:1"), ("sidecar", "s:1"), init=(("m", "m:1"),)))
    after = workload("apps/v1", "Deployment", pod_spec(("sidecar", "s:1"), ("app", "a:2"), init=(("m", "m:2"),)))
    assert image_changes(before, after) == (
        ImageChange("m", "m:1", "m:2", init=True),
        ImageChange("app", "a:1", "a:2"),
    )
    # a container added, one removed, a workload created and one deleted
    grown = workload("apps/v1", "Deployment", pod_spec(("app", "a:1"), ("proxy", "p:1")))
    assert image_changes(before, grown) == (
        ImageChange("m", "m:1", None, init=True),
        ImageChange("sidecar", "s:1", None),
        ImageChange("proxy", None, "p:1"),
    )
    assert image_changes(None, cronjob("c:1")) == (
        ImageChange("wait", None, "busybox:1.36", init=True),
        ImageChange("backup", None, "c:1"),
    )
    assert image_changes(cronjob("c:1"), None)[1] == ImageChange("backup", "c:1", None)
    assert image_changes(before, before) == ()


def test_the_diff_engine_carries_image_changes_of_workloads_only() -> None:
    changed = compare(deployment(image="ghcr.io/example/web:1.0.0"), deployment(image="ghcr.io/example/web:1.1.0"))
    assert changed.images == (ImageChange("app", "ghcr.io/example/web:1.0.0", "ghcr.io/example/web:1.1.0"),)
    assert compare(deployment(replicas=1), deployment(replicas=3)).images == ()
    assert compare(deployment(), deployment()).images == ()
    # an ignore rule on the image path leaves the image out, as Flux leaves it alone
    from phoebe_cli.flux.apply import ignore_rules

    image_path = "/spec/template/spec/containers/0/image"
    rules = ignore_rules({"ignore": [{"paths": [image_path], "target": {"kind": "Deployment"}}]})
    assert compare(deployment(image="a:1"), deployment(image="a:2"), ignore=rules).images == ()


def sample_report() -> DiffReport:
    apps = KustomizationDiff(
        APPS,
        (
            compare(deployment(image="ghcr.io/example/web:1.0.0"), deployment(image="ghcr.io/example/web:1.1.0")),
            compare(None, cronjob("ghcr.io/example/backup:2.0|x")),
            compare(configmap("a", data={"x": "1"}), configmap("a", data={"x": "2"})),
        ),
        unchanged=3,
    )
    return DiffReport("refs", BASE, HEAD, (apps,))


def render(renderable: object, width: int = 140) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None, force_terminal=False)
    console.print(renderable)
    return "\n".join(line.rstrip() for line in console.file.getvalue().splitlines())  # type: ignore[attr-defined]


def test_the_table() -> None:
    assert render(images_view(sample_report(), color=False)) == (
        "main (1a2b3c4d) → HEAD (5e6f7a8b)\n"
        "KUSTOMIZATION     WORKLOAD             CONTAINER    BEFORE                     AFTER\n"
        "flux-system/apps  Deployment/apps/web  app          ghcr.io/example/web:1.0.0  ghcr.io/example/web:1.1.0\n"
        "flux-system/apps  CronJob/apps/backup  wait (init)  ·                          busybox:1.36\n"
        "flux-system/apps  CronJob/apps/backup  backup       ·                          ghcr.io/example/backup:2.0|x\n"
        "3 image changes in 2 workloads"
    )
    empty = DiffReport("refs", BASE, HEAD, (KustomizationDiff(APPS, (), 4),))
    assert render(images_view(empty, color=False)) == "main (1a2b3c4d) → HEAD (5e6f7a8b)\nno image changes"


def test_the_document() -> None:
    doc = json.loads(serialize(images_document(sample_report()), DataFormat.JSON))
    assert doc["kind"] == "ImageDiff"
    assert {k: doc[k] for k in ("mode", "base", "head", "differs", "warnings")} == {
        "mode": "refs",
        "base": BASE,
        "head": HEAD,
        "differs": True,
        "warnings": [],
    }
    assert doc["images"][0] == {
        "kustomization": "flux-system/apps",
        "workload": "Deployment/apps/web",
        "change": "changed",
        "container": "app",
        "before": "ghcr.io/example/web:1.0.0",
        "after": "ghcr.io/example/web:1.1.0",
    }
    assert [(i["change"], i["before"], i["after"]) for i in doc["images"][1:]] == [
        ("created", None, "busybox:1.36"),
        ("created", None, "ghcr.io/example/backup:2.0|x"),
    ]


def test_the_markdown_comment() -> None:
    assert images_markdown(sample_report()) == (
        "## phoebe diff images: main (1a2b3c4d) → HEAD (5e6f7a8b)\n\n"
        "| Kustomization | Workload | Container | Before | After |\n"
        "| --- | --- | --- | --- | --- |\n"
        "| flux-system/apps | `Deployment/apps/web` | app "
        "| `ghcr.io/example/web:1.0.0` | `ghcr.io/example/web:1.1.0` |\n"
        "| flux-system/apps | `CronJob/apps/backup` | wait (init) | · | `busybox:1.36` |\n"
        "| flux-system/apps | `CronJob/apps/backup` | backup | · | `ghcr.io/example/backup:2.0\\|x` |\n"
        "\n3 image changes in 2 workloads\n\n"
    )
    empty = DiffReport("refs", BASE, HEAD, (KustomizationDiff(APPS, (), 4),), ("a warning",))
    assert images_markdown(empty) == (
        "## phoebe diff images: main (1a2b3c4d) → HEAD (5e6f7a8b)\n\nNo image changes.\n\n> **warning:** a warning\n\n"
    )
