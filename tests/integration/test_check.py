"""`phoebe check` against a real kube-apiserver: both CRD sets, no Flux, and every way the
connection or the credentials can be wrong."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import yaml

from tests.cluster.controlplane import free_port, kubeconfig_document
from tests.conftest import CliResult, Cluster, PhoebeRunner
from tests.support import manifests

pytestmark = pytest.mark.cluster


def assert_one_line_error(result: CliResult, code: int, *fragments: str) -> None:
    assert result.code == code, result
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("phoebe: error: ")
    for fragment in fragments:
        assert fragment in lines[0]
    assert "Traceback" not in result.stderr


def served(document: dict, kind: str) -> list[str]:
    return next(k["servedVersions"] for k in document["kinds"] if k["kind"] == kind)


def test_newest_crd_set_is_healthy(phoebe: PhoebeRunner, cluster: Cluster) -> None:
    result = phoebe("check", "-o", "json", kubeconfig=cluster.kubeconfig)

    assert result.code == 0, result.stderr
    assert result.stderr == ""
    doc = json.loads(result.stdout)
    assert doc["apiVersion"] == "phoebe.dev/v1"
    assert doc["kind"] == "CheckReport"
    assert doc["state"] == "healthy"
    assert doc["serverVersion"] == "v1.36.3"
    assert doc["context"] == "phoebe-local"
    assert doc["fluxVersion"] == "v2.6.4"
    assert served(doc, "GitRepository") == ["v1"]
    assert served(doc, "Kustomization") == ["v1"]
    assert served(doc, "HelmRelease") == ["v2"]
    assert served(doc, "ExternalSecret") == ["v1", "v1beta1"]
    assert served(doc, "ImagePolicy") == []
    assert [c["name"] for c in doc["controllers"]] == sorted(
        ["source-controller", "kustomize-controller", "helm-controller", "notification-controller"]
    )
    assert all(c["ready"] and c["message"] == "1/1 replicas ready" for c in doc["controllers"])
    assert doc["problems"] == []


def test_older_crd_set_serves_deprecated_versions(phoebe: PhoebeRunner, older_cluster: Cluster) -> None:
    result = phoebe("check", "-o", "yaml", kubeconfig=older_cluster.kubeconfig)

    assert result.code == 0, result.stderr
    doc = yaml.safe_load(result.stdout)
    assert served(doc, "GitRepository") == ["v1", "v1beta2"]
    assert served(doc, "Kustomization") == ["v1", "v1beta2"]
    assert served(doc, "HelmRelease") == ["v2", "v2beta2"]
    preferred = {k["kind"]: k["preferredVersion"] for k in doc["kinds"]}
    assert preferred["GitRepository"] == "v1"
    assert preferred["HelmRelease"] == "v2"


def test_text_report_on_a_healthy_cluster(phoebe: PhoebeRunner, cluster: Cluster) -> None:
    result = phoebe("check", kubeconfig=cluster.kubeconfig)

    assert result.code == 0
    lines = result.lines
    assert lines[0] == "context  phoebe-local"
    assert lines[1] == f"server   {cluster.plane.server} (Kubernetes v1.36.3)"
    assert lines[2] == "flux     v2.6.4, namespace flux-system"
    assert "✓  kustomize-controller     1/1 replicas ready  v2.6.4" in lines
    assert any(line.startswith("✓  Kustomization ") and line.endswith("v1") for line in lines)
    assert any(line.startswith("·  ImagePolicy ") and line.endswith("not installed") for line in lines)
    assert lines[-1] == "✓ Flux is installed and healthy"
    assert all(line == line.rstrip() for line in lines)
    assert "\x1b[" not in result.stdout  # not a terminal: plain text


def test_no_flux_crds_exits_5(phoebe: PhoebeRunner, bare_cluster: Cluster) -> None:
    result = phoebe("check", kubeconfig=bare_cluster.kubeconfig)

    assert result.code == 5
    assert result.lines[-1] == "✗ Flux is not installed: no Flux CRDs are served"
    assert "controllers" not in result.lines

    as_json = phoebe("check", "-o", "json", kubeconfig=bare_cluster.kubeconfig)
    assert as_json.code == 5
    assert json.loads(as_json.stdout)["state"] == "not-installed"
    assert as_json.stderr == "phoebe: error: Flux is not installed: no Flux CRDs are served by this cluster\n"


def test_unready_controller_exits_1(phoebe: PhoebeRunner, cluster: Cluster, namespace: str) -> None:
    api = cluster.api
    good = api.apply(manifests.flux_controller_deployment("source-controller", namespace))
    api.patch_status(good, manifests.deployment_ready_status(good))
    bad = api.apply(manifests.flux_controller_deployment("kustomize-controller", namespace))
    api.patch_status(bad, manifests.deployment_ready_status(bad, ready=False))

    result = phoebe("check", "--flux-namespace", namespace, "-o", "json", kubeconfig=cluster.kubeconfig)

    assert result.code == 1
    doc = json.loads(result.stdout)
    assert doc["state"] == "unhealthy"
    assert doc["fluxNamespace"] == namespace
    assert doc["problems"] == [
        "kustomize-controller is not ready: 0/1 replicas ready: Deployment does not have minimum availability."
    ]


def test_flux_namespace_from_environment(
    phoebe: PhoebeRunner, cluster: Cluster, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLUX_SYSTEM_NAMESPACE", namespace)

    result = phoebe("check", "-o", "json", kubeconfig=cluster.kubeconfig)

    assert result.code == 1
    assert json.loads(result.stdout)["problems"] == [
        f"no Flux controllers in namespace {namespace} (Deployments labelled app.kubernetes.io/part-of=flux)"
    ]


def test_missing_flux_namespace_is_named(phoebe: PhoebeRunner, cluster: Cluster) -> None:
    result = phoebe("check", "--flux-namespace", "no-such-ns", kubeconfig=cluster.kubeconfig)

    assert result.code == 1
    assert "  - namespace no-such-ns does not exist" in result.lines


def test_options_before_the_command(phoebe: PhoebeRunner, cluster: Cluster) -> None:
    result = phoebe("--kubeconfig", str(cluster.kubeconfig), "--context", "phoebe-local", "check", "-o", "json")

    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["context"] == "phoebe-local"


def test_kubeconfig_from_environment(phoebe: PhoebeRunner, cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", f"/nonexistent/config:{cluster.kubeconfig}")

    result = phoebe("check", "-o", "json")

    assert result.code == 0, result.stderr


def test_unreachable_server_exits_3(phoebe: PhoebeRunner, cluster: Cluster, tmp_path: Path) -> None:
    port = free_port()
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig_document(f"https://127.0.0.1:{port}", cluster.plane.ca_file, "x")))

    result = phoebe("check", kubeconfig=path)

    assert_one_line_error(result, 3, f"cannot reach the cluster at https://127.0.0.1:{port}: connection refused")


def test_unknown_host_exits_3(phoebe: PhoebeRunner, cluster: Cluster, tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(kubeconfig_document("https://no-such-host.invalid:6443", cluster.plane.ca_file, "x"))
    )

    result = phoebe("check", "--request-timeout", "5", kubeconfig=path)

    assert_one_line_error(result, 3, "cannot reach the cluster at https://no-such-host.invalid:6443")


def test_wrong_certificate_authority_exits_3(phoebe: PhoebeRunner, cluster: Cluster, tmp_path: Path) -> None:

    other_ca = tmp_path / "other-ca.crt"
    # Any valid certificate that did not sign the server's: the server's own CA from a
    # different control plane would do; a freshly generated self-signed one is simpler.
    other_ca.write_bytes(_self_signed_certificate())
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig_document(cluster.plane.server, other_ca, cluster.plane.admin_token)))

    result = phoebe("check", kubeconfig=path)

    assert_one_line_error(result, 3, f"TLS verification failed for {cluster.plane.server}")


def test_malformed_kubeconfig_exits_2(phoebe: PhoebeRunner, tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text("apiVersion: v1\nclusters: [\n  - name: x\n")

    result = phoebe("check", kubeconfig=path)

    assert_one_line_error(result, 2, "kubeconfig is not valid YAML", str(path))


def test_kubeconfig_without_clusters_exits_2(phoebe: PhoebeRunner, tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "a",
                "contexts": [{"name": "a", "context": {"cluster": "missing", "user": "u"}}],
            }
        )
    )

    result = phoebe("check", kubeconfig=path)

    assert_one_line_error(result, 2, "kubeconfig context 'a'")


def test_missing_kubeconfig_file_exits_2(phoebe: PhoebeRunner, tmp_path: Path) -> None:
    result = phoebe("check", kubeconfig=tmp_path / "nope")

    assert_one_line_error(result, 2, f"kubeconfig not found: {tmp_path / 'nope'}")


def test_no_kubeconfig_at_all_exits_2(phoebe: PhoebeRunner) -> None:
    result = phoebe("check")

    assert_one_line_error(result, 2, "no kubeconfig: ~/.kube/config does not exist and $KUBECONFIG is not set")


def test_unknown_context_exits_2(phoebe: PhoebeRunner, cluster: Cluster) -> None:
    result = phoebe("check", "--context", "staging", kubeconfig=cluster.kubeconfig)

    assert_one_line_error(result, 2, "context 'staging' not found in the kubeconfig (contexts: phoebe-local)")


def test_invalid_token_exits_3(phoebe: PhoebeRunner, cluster: Cluster, tmp_path: Path) -> None:
    path = cluster.kubeconfig_with_token(tmp_path, "not-a-valid-token")

    result = phoebe("check", kubeconfig=path)

    assert_one_line_error(result, 3, "the cluster rejected the credentials (401 Unauthorized)")


def test_service_account_without_rights_exits_4(
    phoebe: PhoebeRunner, cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    token = cluster.api.service_account_token(namespace, "nobody")
    path = cluster.kubeconfig_with_token(tmp_path, token, name="nobody")

    result = phoebe("check", kubeconfig=path)

    assert_one_line_error(
        result,
        4,
        f'forbidden: deployments.apps is forbidden: User "system:serviceaccount:{namespace}:nobody" '
        'cannot list resource "deployments" in API group "apps" in the namespace "flux-system"',
    )


def test_service_account_allowed_to_read_flux_system(
    phoebe: PhoebeRunner, cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    api = cluster.api
    role_name = f"{namespace}-deployments-reader"
    api.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": role_name, "namespace": "flux-system"},
            "rules": [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["list"]}],
        }
    )
    api.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": role_name, "namespace": "flux-system"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role_name},
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}],
        }
    )
    token = api.service_account_token(namespace, "reader")
    path = cluster.kubeconfig_with_token(tmp_path, token, name="reader")

    result = phoebe("check", "-o", "json", kubeconfig=path)

    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["state"] == "healthy"


def _exec_kubeconfig(cluster: Cluster, tmp_path: Path, script: str) -> Path:
    plugin = tmp_path / "credential-plugin"
    plugin.write_text(script)
    plugin.chmod(plugin.stat().st_mode | stat.S_IEXEC)
    doc = kubeconfig_document(cluster.plane.server, cluster.plane.ca_file, "unused")
    doc["users"] = [
        {
            "name": "phoebe-admin",
            "user": {
                "exec": {
                    "apiVersion": "client.authentication.k8s.io/v1",
                    "command": str(plugin),
                    "interactiveMode": "Never",
                }
            },
        }
    ]
    path = tmp_path / "kubeconfig-exec"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_exec_credential_plugin(phoebe: PhoebeRunner, cluster: Cluster, tmp_path: Path) -> None:
    credential = {
        "apiVersion": "client.authentication.k8s.io/v1",
        "kind": "ExecCredential",
        "status": {"token": cluster.plane.admin_token},
    }
    path = _exec_kubeconfig(cluster, tmp_path, f"#!/bin/sh\necho '{json.dumps(credential)}'\n")

    result = phoebe("check", "-o", "json", kubeconfig=path)

    assert result.code == 0, result.stderr


def test_failing_exec_plugin_exits_2(phoebe: PhoebeRunner, cluster: Cluster, tmp_path: Path) -> None:
    path = _exec_kubeconfig(cluster, tmp_path, "#!/bin/sh\necho 'login expired' >&2\nexit 1\n")

    result = phoebe("check", kubeconfig=path)

    assert_one_line_error(result, 2, "kubeconfig context 'phoebe-local': credential plugin failed")


def test_bad_flag_exits_2(phoebe: PhoebeRunner) -> None:
    result = phoebe("check", "--output", "xml")

    assert_one_line_error(result, 2, "Invalid value for '--output' / '-o'", "(see 'phoebe check --help')")


def test_entry_point_process(phoebe_process: PhoebeRunner, cluster: Cluster) -> None:
    result = phoebe_process("check", "-o", "json", env={"KUBECONFIG": str(cluster.kubeconfig)})

    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["state"] == "healthy"


def _self_signed_certificate() -> bytes:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "not-the-cluster-ca")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)
