"""``phoebe diff`` against the real API server: every object of a checkout server-side-apply
dry-run as kustomize-controller applies it, compared with what the cluster holds."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cluster, PhoebeRunner
from tests.repo.conftest import FIXTURE_REPO, RepoWriter
from tests.support import fluxstatus, manifests

pytestmark = [pytest.mark.repo, pytest.mark.cluster]

OWNER = "kustomize.toolkit.fluxcd.io"
SOPS_FILE = FIXTURE_REPO / "kubernetes/flux/vars/cluster-secrets.sops.yaml"
SECRET_OLD, SECRET_NEW = "old-hunter2", "new-correct-horse"


def _cm(name: str, data: dict[str, str], annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}


def _yaml(*objects: dict[str, Any]) -> str:
    import yaml

    return "---\n".join(yaml.safe_dump(o, sort_keys=False) for o in objects)


def _root_ks(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": "apps", "namespace": namespace},
        "spec": {
            "interval": "1h",
            "path": "./apps",
            "prune": True,
            "targetNamespace": namespace,
            "sourceRef": {"kind": "GitRepository", "name": "home-ops"},
            "postBuild": {"substituteFrom": [{"kind": "ConfigMap", "name": "vars"}]},
            "ignore": [{"paths": ["/data/ignored"], "target": {"kind": "ConfigMap", "name": "ignored"}}],
        },
    }


def _child_ks(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": "child", "namespace": namespace},
        "spec": {
            "interval": "1h",
            "path": "./child",
            "prune": True,
            "targetNamespace": namespace,
            "sourceRef": {"kind": "GitRepository", "name": "home-ops"},
        },
    }


def _checkout(write_repo: RepoWriter, namespace: str) -> Path:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "creds"},
        "stringData": {"password": SECRET_NEW, "user": "app"},
    }
    apps = {
        "same.yaml": _cm("same", {"a": "1"}),
        "changed.yaml": _cm("changed", {"a": "new"}),
        "new.yaml": _cm("new", {"a": "1"}),
        "skipped.yaml": _cm("skipped", {"a": "new"}),
        "owned.yaml": _cm("owned", {"a": "ours"}),
        "ignored.yaml": _cm("ignored", {"kept": "1", "ignored": "checkout"}),
        "subst.yaml": _cm("subst", {"value": "${VALUE}"}),
        "secret.yaml": secret,
        "child.yaml": _child_ks(namespace),
    }
    files = {f"apps/{name}": _yaml(obj) for name, obj in apps.items()}
    files["apps/sops.yaml"] = SOPS_FILE.read_text()
    files["apps/kustomization.yaml"] = _yaml(
        {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": [*sorted(apps), "sops.yaml"],
        }
    )
    files["child/cm.yaml"] = _yaml(_cm("child-cm", {"a": "checkout"}))
    files["kubernetes/flux/cluster.yaml"] = _yaml(manifests.git_repository("home-ops", namespace), _root_ks(namespace))
    return write_repo(files)


def _owned(obj: dict[str, Any], namespace: str, ks: str = "apps") -> dict[str, Any]:
    """As kustomize-controller applies it: in the namespace, with its owner labels."""
    obj = json.loads(json.dumps(obj))
    obj["metadata"]["namespace"] = namespace
    obj["metadata"]["labels"] = {f"{OWNER}/name": ks, f"{OWNER}/namespace": namespace}
    return obj


def _live(cluster: Cluster, namespace: str) -> None:
    """The cluster as Flux left it at an earlier commit."""
    api = cluster.api
    flux = "kustomize-controller"
    api.apply(_cm("vars", {"VALUE": "from-cluster"}) | {"metadata": {"name": "vars", "namespace": namespace}})
    applied = [
        _owned(_cm("same", {"a": "1"}), namespace),
        _owned(_cm("changed", {"a": "old"}), namespace),
        _owned(_cm("skipped", {"a": "old"}, {f"{OWNER}/reconcile": "disabled"}), namespace),
        _owned(_cm("ignored", {"kept": "1", "ignored": "cluster"}), namespace),
        _owned(_cm("subst", {"value": "from-cluster"}), namespace),
        _owned(_cm("old", {"a": "1"}), namespace),
        _owned(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "creds"},
                "type": "Opaque",
                "data": {"password": base64.b64encode(SECRET_OLD.encode()).decode(), "user": "YXBw"},
            },
            namespace,
        ),
        _owned(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "cluster-secrets"},
                "type": "Opaque",
                # as Flux applies it: stringData moved into data, so kustomize-controller owns data.*
                "data": {
                    k: base64.b64encode(v.encode()).decode()
                    for k, v in {
                        "SECRET_ACME_EMAIL": "a@example.org",
                        "SECRET_DOMAIN_PUBLIC": "x",
                        "LEFTOVER": "l",
                    }.items()
                },
            },
            namespace,
        ),
    ]
    for obj in applied:
        api.apply(obj, manager=flux)
    # A field someone else set with kubectl: Flux takes it over (force).
    api.apply(_owned(_cm("owned", {"a": "theirs"}), namespace), manager="kubectl")
    source = api.create(manifests.git_repository("home-ops", namespace))
    api.patch_status(source, fluxstatus.ready_status(source))
    ks = api.create(manifests.kustomization("apps", namespace, source=("GitRepository", "home-ops")))
    status = fluxstatus.ready_status(ks)
    entries = [{"id": f"{namespace}_{o['metadata']['name']}__{o['kind']}", "v": "v1"} for o in applied] + [
        {"id": f"{namespace}_owned__ConfigMap", "v": "v1"}
    ]
    status["inventory"] = {"entries": entries}
    api.patch_status(ks, status)


def test_every_kind_of_change_against_the_cluster(
    cluster: Cluster, namespace: str, write_repo: RepoWriter, phoebe: PhoebeRunner
) -> None:
    root = _checkout(write_repo, namespace)
    _live(cluster, namespace)
    before = {
        o["metadata"]["name"]: o["metadata"]["resourceVersion"] for o in cluster.api.list("v1", "ConfigMap", namespace)
    }

    result = phoebe("diff", "ks", f"{namespace}/apps", "--repo", str(root), kubeconfig=cluster.kubeconfig)

    assert result.code == 1, result.stderr
    after = {
        o["metadata"]["name"]: o["metadata"]["resourceVersion"] for o in cluster.api.list("v1", "ConfigMap", namespace)
    }
    assert after == before  # nothing written
    assert SECRET_OLD not in result.stdout + result.stderr and SECRET_NEW not in result.stdout + result.stderr
    assert result.stderr == ""
    assert result.stdout.replace(namespace, "NS") == EXPECTED


EXPECTED = """\
cluster → checkout

Kustomization/NS/apps
  ~ changed  ConfigMap/NS/changed
      @@ -7,4 +7,4 @@
           kustomize.toolkit.fluxcd.io/name: apps
           kustomize.toolkit.fluxcd.io/namespace: NS
       data:
      -  a: old
      +  a: new
  + created  ConfigMap/NS/new
  ~ changed  ConfigMap/NS/owned
      @@ -7,4 +7,4 @@
           kustomize.toolkit.fluxcd.io/name: apps
           kustomize.toolkit.fluxcd.io/namespace: NS
       data:
      -  a: theirs
      +  a: ours
  · skipped  ConfigMap/NS/skipped  (reconcile disabled)
  ~ changed  Secret/NS/cluster-secrets
      data.LEFTOVER: removed
      data.SECRET_CLOUDFLARE_TUNNEL_ID: added (***)
      2 keys not compared: values unknown (SOPS-encrypted or masked)
  ~ changed  Secret/NS/creds
      data.password: changed (***)
  + created  Kustomization/NS/child
  - deleted  ConfigMap/NS/old

4 changed, 2 created, 1 deleted, 1 skipped, 3 unchanged in 1 Kustomization
"""


def test_recursive_descends_into_the_kustomizations_the_build_yields(
    cluster: Cluster, namespace: str, write_repo: RepoWriter, phoebe: PhoebeRunner
) -> None:
    root = _checkout(write_repo, namespace)
    _live(cluster, namespace)

    alone = phoebe("diff", f"{namespace}/apps", "--repo", str(root), "-o", "json", kubeconfig=cluster.kubeconfig)
    deep = phoebe("diff", f"{namespace}/apps", "-r", "--repo", str(root), "-o", "json", kubeconfig=cluster.kubeconfig)

    assert [k["name"] for k in json.loads(alone.stdout)["kustomizations"]] == ["apps"]
    kustomizations = {k["name"]: k for k in json.loads(deep.stdout)["kustomizations"]}
    assert sorted(kustomizations) == ["apps", "child"]
    (child_cm,) = kustomizations["child"]["objects"]
    assert (child_cm["kind"], child_cm["name"], child_cm["change"]) == ("ConfigMap", "child-cm", "created")
    secret = next(o for o in kustomizations["apps"]["objects"] if o["name"] == "creds")
    assert secret["secretKeys"] == {"password": "changed", "user": "unchanged"}
    assert SECRET_NEW not in deep.stdout and SECRET_OLD not in deep.stdout


def test_no_differences_exits_0(cluster: Cluster, namespace: str, write_repo: RepoWriter, phoebe: PhoebeRunner) -> None:
    root = write_repo(
        {
            "kubernetes/flux/cluster.yaml": _yaml(
                manifests.git_repository("home-ops", namespace),
                {**_child_ks(namespace), "metadata": {"name": "apps", "namespace": namespace}},
            ),
            "child/cm.yaml": _yaml(_cm("child-cm", {"a": "1"})),
        }
    )
    cluster.api.apply(_owned(_cm("child-cm", {"a": "1"}), namespace), manager="kustomize-controller")

    result = phoebe("diff", "--repo", str(root), "-n", namespace, kubeconfig=cluster.kubeconfig)

    assert (result.code, result.stderr) == (0, "")
    assert result.stdout.splitlines()[-1] == "no differences: 1 unchanged in 1 Kustomization"


def test_a_user_who_may_not_dry_run_is_forbidden(
    cluster: Cluster, namespace: str, write_repo: RepoWriter, phoebe: PhoebeRunner, tmp_path: Path
) -> None:
    root = _checkout(write_repo, namespace)
    _live(cluster, namespace)
    api = cluster.api
    api.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": f"{namespace}-reader"},
            "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["get", "list", "watch"]}],
        }
    )
    api.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": f"{namespace}-reader"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": f"{namespace}-reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}],
        }
    )
    kubeconfig = cluster.kubeconfig_with_token(tmp_path, api.service_account_token(namespace, "reader"), name="reader")

    result = phoebe("diff", f"{namespace}/apps", "--repo", str(root), kubeconfig=kubeconfig)

    assert result.code == 4
    assert result.stdout == ""
    assert result.stderr.startswith("phoebe: error: ")
    assert f'User "system:serviceaccount:{namespace}:reader" cannot patch resource' in result.stderr
    assert result.stderr.count("\n") == 1


def test_an_unknown_kustomization_and_flux_not_installed(
    cluster: Cluster, bare_cluster: Cluster, namespace: str, write_repo: RepoWriter, phoebe: PhoebeRunner
) -> None:
    root = _checkout(write_repo, namespace)

    unknown = phoebe("diff", "nope", "--repo", str(root), kubeconfig=cluster.kubeconfig)
    bare = phoebe("diff", "--repo", str(root), kubeconfig=bare_cluster.kubeconfig)

    assert (unknown.code, unknown.stderr) == (5, "phoebe: error: no Flux Kustomization nope in the checkout\n")
    assert bare.code == 5
    assert bare.stderr.count("\n") == 1 and "Flux" in bare.stderr


def test_the_clusters_kustomize_controller_decides_strict_substitution(
    cluster: Cluster, namespace: str, write_repo: RepoWriter, phoebe: PhoebeRunner
) -> None:
    """Offline, nothing says which Flux runs: an unset variable becomes "" (a warning). The test
    cluster's kustomize-controller is v1.9.6, where StrictPostBuildSubstitutions is on by default:
    there the build fails, and diff says so instead of predicting an apply that will not happen."""
    ks = _root_ks(namespace)
    ks["spec"]["postBuild"] = {"substitute": {"SET": "yes-set"}}
    del ks["spec"]["ignore"]
    files = {
        "apps/cm.yaml": _yaml(_cm("vars-used", {"set": "${SET}", "unset": "${UNSET}"})),
        "kubernetes/flux/cluster.yaml": _yaml(manifests.git_repository("home-ops", namespace), ks),
    }
    root = write_repo(files)

    offline = phoebe("validate", str(root))
    against = phoebe("diff", "--repo", str(root), "-n", namespace, kubeconfig=cluster.kubeconfig)

    assert offline.code == 0
    assert "warning [unset]" in offline.stdout
    assert against.stderr.replace(namespace, "NS").splitlines() == [
        "warning: Kustomization/NS/apps: not compared: post build failed for 'ConfigMap/vars-used': "
        'variable not set (strict mode): "UNSET" in ${UNSET}'
    ]
    assert cluster.api.list("v1", "ConfigMap", namespace) == []  # nothing written
