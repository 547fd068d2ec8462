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


# --- as kustomize-controller decides: suspended, failing dry-runs (issue 13: D7, D12) ----------
def _ks(namespace: str, name: str = "apps", path: str = "./apps", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "interval": "1h",
            "path": path,
            "prune": True,
            "targetNamespace": namespace,
            "sourceRef": {"kind": "GitRepository", "name": "home-ops"},
            **spec,
        },
    }


def _small_checkout(write_repo: RepoWriter, namespace: str, objects: dict[str, dict[str, Any]], **spec: Any) -> Path:
    """A checkout with one Flux Kustomization ``apps`` whose path holds ``objects`` (file name -> object)."""
    files = {f"apps/{name}": _yaml(obj) for name, obj in objects.items()}
    files["apps/kustomization.yaml"] = _yaml(
        {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": sorted(objects)}
    )
    files["kubernetes/flux/cluster.yaml"] = _yaml(
        manifests.git_repository("home-ops", namespace), _ks(namespace, **spec)
    )
    return write_repo(files)


def _live_ks(cluster: Cluster, namespace: str, entries: list[dict[str, str]], **spec: Any) -> None:
    """The Kustomization ``apps`` on the cluster, Ready, with ``entries`` as its inventory."""
    api = cluster.api
    source = api.create(manifests.git_repository("home-ops", namespace))
    api.patch_status(source, fluxstatus.ready_status(source))
    ks = manifests.kustomization("apps", namespace, source=("GitRepository", "home-ops"))
    ks["spec"].update(spec)
    ks = api.create(ks)
    status = fluxstatus.ready_status(ks)
    status["inventory"] = {"entries": entries}
    api.patch_status(ks, status)


def test_a_kustomization_suspended_on_the_cluster_is_not_compared_unless_asked(
    cluster: Cluster, namespace: str, write_repo: RepoWriter, phoebe: PhoebeRunner
) -> None:
    """kustomize-controller applies nothing while a Kustomization is suspended: its objects are
    not "created", and they are no difference unless --include-suspended asks for them."""
    root = _checkout(write_repo, namespace)
    _live(cluster, namespace)
    ks = cluster.api.get("kustomize.toolkit.fluxcd.io/v1", "Kustomization", namespace, "apps")
    cluster.api.merge_patch(ks, {"spec": {"suspend": True}})
    args = ("diff", f"{namespace}/apps", "--repo", str(root))

    plain = phoebe(*args, kubeconfig=cluster.kubeconfig)
    document = phoebe(*args, "-o", "json", kubeconfig=cluster.kubeconfig)
    included = phoebe(*args, "--include-suspended", kubeconfig=cluster.kubeconfig)

    assert (plain.code, plain.stderr) == (0, "")
    assert plain.stdout.replace(namespace, "NS") == (
        "cluster → checkout\n\n"
        "Kustomization/NS/apps  (suspended on the cluster: not compared; --include-suspended compares it)\n\n"
        "no differences: 1 Kustomization suspended, not compared\n"
    )
    (apps,) = json.loads(document.stdout)["kustomizations"]
    assert document.code == 0
    assert (apps["suspended"], apps["compared"], apps["objects"], apps["failing"]) == ("cluster", False, [], False)
    assert included.code == 1, included.stderr
    lines = included.stdout.replace(namespace, "NS").splitlines()
    assert (
        lines[2] == "Kustomization/NS/apps  (suspended on the cluster: Flux applies none of this until it is resumed)"
    )
    assert included.stdout.replace(namespace, "NS").split("\n", 3)[3] == EXPECTED.split("\n", 3)[3]


def test_a_kustomization_suspended_in_the_checkout_is_not_compared(
    cluster: Cluster, namespace: str, write_repo: RepoWriter, phoebe: PhoebeRunner
) -> None:
    root = _small_checkout(write_repo, namespace, {"cm.yaml": _cm("new", {"a": "1"})}, suspend=True)

    result = phoebe("diff", "--repo", str(root), "-n", namespace, "-o", "yaml", kubeconfig=cluster.kubeconfig)
    included = phoebe(
        "diff", "--repo", str(root), "-n", namespace, "--include-suspended", kubeconfig=cluster.kubeconfig
    )

    import yaml

    assert result.code == 0, result.stderr
    (apps,) = yaml.safe_load(result.stdout)["kustomizations"]
    assert (apps["suspended"], apps["compared"], apps["objects"]) == ("checkout", False, [])
    assert included.code == 1
    assert "  + created  ConfigMap/NS/new" in included.stdout.replace(namespace, "NS")


def _invalid_build(namespace: str) -> dict[str, dict[str, Any]]:
    """A ClusterRole (staged first, as Flux stages it), a ConfigMap the server refuses (422: a
    data key it does not allow) and two good objects of the same stage as the refused one."""
    return {
        "role.yaml": {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": f"{namespace}-reader"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}],
        },
        "bad.yaml": _cm("bad", {"bad key!": "1"}),
        "new.yaml": _cm("new", {"a": "1"}),
        "changed.yaml": _cm("changed", {"a": "new"}),
    }


REFUSAL = (
    'dry-run failed (Invalid): ConfigMap "bad" is invalid: data[bad key!]: Invalid value: "bad key!": '
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  "
    "or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
)
FAILING = f"""\
cluster → checkout

Kustomization/NS/apps  (failing)
  ✗ failed   ConfigMap/NS/bad  ({REFUSAL})
  ✗ 3 changes not applied: kustomize-controller stops at a failed dry-run and prunes nothing
  + created  ClusterRole/NS-reader

1 created in 1 Kustomization; 1 Kustomization failing (3 changes not applied)
"""


def test_a_failed_dry_run_fails_the_kustomization(
    cluster: Cluster, namespace: str, write_repo: RepoWriter, phoebe: PhoebeRunner
) -> None:
    """One refused object stops kustomize-controller's apply (ssa ApplyAllStaged: a stage is
    applied only when all its dry-runs pass; nothing is pruned): the other ConfigMaps are not
    "created" or "changed", the ClusterRole of the earlier stage still is, and the pruned one is
    held back too. The reason is in the main output of every format, and the exit code is 1."""
    root = _small_checkout(write_repo, namespace, _invalid_build(namespace))
    cluster.api.apply(_owned(_cm("changed", {"a": "old"}), namespace), manager="kustomize-controller")
    cluster.api.apply(_owned(_cm("pruned", {"a": "1"}), namespace), manager="kustomize-controller")
    _live_ks(
        cluster,
        namespace,
        [{"id": f"{namespace}_changed__ConfigMap", "v": "v1"}, {"id": f"{namespace}_pruned__ConfigMap", "v": "v1"}],
    )
    before = {o["metadata"]["name"] for o in cluster.api.list("v1", "ConfigMap", namespace)}
    args = ("diff", f"{namespace}/apps", "--repo", str(root))

    text = phoebe(*args, kubeconfig=cluster.kubeconfig)
    as_json = phoebe(*args, "-o", "json", kubeconfig=cluster.kubeconfig)
    as_yaml = phoebe(*args, "-o", "yaml", kubeconfig=cluster.kubeconfig)
    markdown = phoebe(*args, "-o", "markdown", kubeconfig=cluster.kubeconfig)

    assert (text.code, text.stderr) == (1, "")
    assert text.stdout.replace(namespace, "NS") == FAILING
    import yaml

    for result, doc in ((as_json, json.loads(as_json.stdout)), (as_yaml, yaml.safe_load(as_yaml.stdout))):
        assert (result.code, result.stderr) == (1, "")
        (apps,) = doc["kustomizations"]
        assert doc["differs"] is True
        assert (apps["failing"], apps["notApplied"]) == (True, 3)
        (failure,) = apps["failures"]
        assert (failure["kind"], failure["name"]) == ("ConfigMap", "bad")
        assert failure["message"].startswith(f"ConfigMap/{namespace}/bad dry-run failed (Invalid): ")
        assert [(o["kind"], o["change"]) for o in apps["objects"]] == [("ClusterRole", "created")]
    assert markdown.code == 1
    assert f"| {namespace}/apps (failing) | 1 | 0 | 0 | 0 |" in markdown.stdout
    assert f"**✗ failed** `ConfigMap/{namespace}/bad`: `dry-run failed (Invalid): " in markdown.stdout
    assert "_3 changes not applied: kustomize-controller stops at a failed dry-run and prunes nothing._" in (
        markdown.stdout
    )
    assert {o["metadata"]["name"] for o in cluster.api.list("v1", "ConfigMap", namespace)} == before  # nothing written
    assert cluster.api.get_or_none("rbac.authorization.k8s.io/v1", "ClusterRole", None, f"{namespace}-reader") is None


def test_a_secret_whose_data_is_not_base64_fails_like_the_server_would(
    cluster: Cluster, namespace: str, write_repo: RepoWriter, phoebe: PhoebeRunner
) -> None:
    """The API server refuses such a Secret (500: "illegal base64 data"), so Flux's dry-run fails.
    phoebe says so without sending the value, and names the key, never the value."""
    value = "hunter2 is not base64!"
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"}, "data": {"password": value}}
    root = _small_checkout(write_repo, namespace, {"secret.yaml": secret, "new.yaml": _cm("new", {"a": "1"})})

    result = phoebe("diff", "--repo", str(root), "-n", namespace, "-o", "json", kubeconfig=cluster.kubeconfig)

    assert (result.code, result.stderr) == (1, "")
    (apps,) = json.loads(result.stdout)["kustomizations"]
    assert apps["failures"] == [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "namespace": namespace,
            "name": "creds",
            "message": f"Secret/{namespace}/creds dry-run failed: data.password is not base64, which the API server "
            "cannot decode (found before sending it)",
        }
    ]
    assert (apps["objects"], apps["notApplied"]) == ([], 1)  # the ConfigMap; the Secret is the failure
    assert "hunter2" not in result.stdout
    # the real server agrees: sent as it is, the Secret is refused
    from tests.cluster.api import ApiError

    with pytest.raises(ApiError, match="illegal base64 data"):
        cluster.api._call(
            "PATCH",
            f"/api/v1/namespaces/{namespace}/secrets/creds",
            params={"dryRun": "All", "fieldManager": "kustomize-controller", "force": "true"},
            content=json.dumps({**secret, "metadata": {"name": "creds", "namespace": namespace}}).encode(),
            headers={"Content-Type": "application/apply-patch+yaml"},
        )


def test_a_live_secret_holding_binary_data_of_another_manager(
    cluster: Cluster, namespace: str, write_repo: RepoWriter, phoebe: PhoebeRunner
) -> None:
    """The dry-run answer keeps the keys another field manager owns, with their live values; a
    value that is not UTF-8 text used to end as an internal error, and the others showed as
    changed. They are the same object: no difference."""
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"}, "stringData": {"password": "pw"}}
    root = _small_checkout(write_repo, namespace, {"secret.yaml": secret})
    live = _owned(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "creds"},
            "type": "Opaque",
            "data": {"password": base64.b64encode(b"pw").decode()},
        },
        namespace,
    )
    cluster.api.apply(live, manager="kustomize-controller")
    binary = {"bin": base64.b64encode(b"\xff\xfe\x00").decode(), "text": base64.b64encode(b"hello").decode()}
    other = {**live, "data": binary, "metadata": {"name": "creds", "namespace": namespace}}
    cluster.api.apply(other, manager="cert-manager")

    result = phoebe("diff", "--repo", str(root), "-n", namespace, kubeconfig=cluster.kubeconfig)

    assert (result.code, result.stderr) == (0, "")
    assert result.stdout.splitlines()[-1] == "no differences: 1 unchanged in 1 Kustomization"


def test_an_inventory_id_that_cannot_be_read_prunes_nothing(
    cluster: Cluster, namespace: str, write_repo: RepoWriter, phoebe: PhoebeRunner
) -> None:
    """kustomize-controller's garbage collection fails on such an entry (inventory.Diff), so it
    prunes nothing: no deletion is shown, a warning names the entry, and the rest is compared."""
    root = _small_checkout(write_repo, namespace, {"new.yaml": _cm("new", {"a": "1"})})
    cluster.api.apply(_owned(_cm("old", {"a": "1"}), namespace), manager="kustomize-controller")
    _live_ks(cluster, namespace, [{"id": "not-an-id", "v": "v1"}, {"id": f"{namespace}_old__ConfigMap", "v": "v1"}])

    result = phoebe("diff", "--repo", str(root), "-n", namespace, kubeconfig=cluster.kubeconfig)
    strict = phoebe("diff", "--repo", str(root), "-n", namespace, "-o", "json", kubeconfig=cluster.kubeconfig)

    assert result.code == 1
    assert result.stdout.replace(namespace, "NS").splitlines()[2:] == [
        "Kustomization/NS/apps",
        "  + created  ConfigMap/NS/new",
        "",
        "1 created in 1 Kustomization",
    ]
    assert result.stderr.replace(namespace, "NS") == (
        "warning: Kustomization/NS/apps: its inventory on the cluster holds 1 entry that cannot be read "
        "('not-an-id'; an id is <namespace>_<name>_<group>_<kind>): kustomize-controller prunes nothing while it "
        "does, so nothing is shown as deleted\n"
    )
    (apps,) = json.loads(strict.stdout)["kustomizations"]
    assert len(apps["warnings"]) == 1 and "'not-an-id'" in apps["warnings"][0]
