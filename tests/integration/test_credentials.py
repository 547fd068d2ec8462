"""Every way a kubeconfig can carry credentials, against the real API server."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import yaml

from tests.cluster.controlplane import kubeconfig_document
from tests.conftest import Cluster, PhoebeRunner

pytestmark = pytest.mark.cluster


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def write(path: Path, doc: dict) -> Path:
    path.write_text(yaml.safe_dump(doc))
    return path


def cluster_entry(cluster: Cluster, **fields: object) -> dict:
    return {"name": "c", "cluster": {"server": cluster.plane.server, **fields}}


def config(cluster_fields: dict, user_fields: dict) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "ctx",
        "clusters": [cluster_fields],
        "users": [{"name": "u", "user": user_fields}],
        "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u"}}],
    }


def checked(result) -> dict:  # type: ignore[no-untyped-def]
    assert result.code == 0, result.stderr
    return json.loads(result.stdout)


def test_client_certificate_data_and_ca_data(phoebe: PhoebeRunner, cluster: Cluster, tmp_path: Path) -> None:
    cert, key = cluster.plane.client_certificate("cert-admin", ("system:masters",))
    doc = config(
        cluster_entry(cluster, **{"certificate-authority-data": b64(cluster.plane.ca_file.read_bytes())}),
        {"client-certificate-data": b64(cert), "client-key-data": b64(key)},
    )
    assert checked(phoebe("check", "-o", "json", kubeconfig=write(tmp_path / "kc", doc)))["state"] == "healthy"


def test_client_certificate_files_relative_to_the_kubeconfig(
    phoebe: PhoebeRunner, cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = cluster.plane.client_certificate("cert-admin", ("system:masters",))
    folder = tmp_path / "conf"
    folder.mkdir()
    (folder / "client.crt").write_bytes(cert)
    (folder / "client.key").write_bytes(key)
    (folder / "ca.crt").write_bytes(cluster.plane.ca_file.read_bytes())
    doc = config(
        cluster_entry(cluster, **{"certificate-authority": "ca.crt"}),
        {"client-certificate": "client.crt", "client-key": "client.key"},
    )
    path = write(folder / "config", doc)
    monkeypatch.chdir(tmp_path)  # relative to the file, not to the working directory
    assert checked(phoebe("check", "-o", "json", kubeconfig=path))["state"] == "healthy"


def test_certificate_without_rights_is_forbidden(phoebe: PhoebeRunner, cluster: Cluster, tmp_path: Path) -> None:
    cert, key = cluster.plane.client_certificate("jane")
    doc = config(
        cluster_entry(cluster, **{"certificate-authority": str(cluster.plane.ca_file)}),
        {"client-certificate-data": b64(cert), "client-key-data": b64(key)},
    )
    result = phoebe("check", kubeconfig=write(tmp_path / "kc", doc))
    assert result.code == 4
    assert result.stderr.startswith('phoebe: error: forbidden: deployments.apps is forbidden: User "jane" cannot list')


def test_token_file(phoebe: PhoebeRunner, cluster: Cluster, tmp_path: Path) -> None:
    (tmp_path / "token").write_text(cluster.plane.admin_token + "\n")
    doc = config(
        cluster_entry(cluster, **{"certificate-authority": str(cluster.plane.ca_file)}), {"tokenFile": "token"}
    )
    assert checked(phoebe("check", "-o", "json", kubeconfig=write(tmp_path / "kc", doc)))["state"] == "healthy"


def test_missing_certificate_file_is_a_kubeconfig_error(phoebe: PhoebeRunner, cluster: Cluster, tmp_path: Path) -> None:
    doc = config(cluster_entry(cluster, **{"certificate-authority": "nope.crt"}), {"token": "x"})
    result = phoebe("check", kubeconfig=write(tmp_path / "kc", doc))
    assert result.code == 2
    assert result.stderr == (
        f"phoebe: error: kubeconfig context 'ctx': certificate-authority not found: {tmp_path / 'nope.crt'}\n"
    )


def test_anonymous_user_is_unauthorized(phoebe: PhoebeRunner, cluster: Cluster, tmp_path: Path) -> None:
    doc = config(cluster_entry(cluster, **{"certificate-authority": str(cluster.plane.ca_file)}), {})
    result = phoebe("check", kubeconfig=write(tmp_path / "kc", doc))
    # anonymous requests are allowed to authenticate on this server but not to discover
    assert result.code in (3, 4)
    assert len(result.stderr.splitlines()) == 1


def test_insecure_skip_tls_verify(phoebe: PhoebeRunner, cluster: Cluster, tmp_path: Path) -> None:
    doc = config(cluster_entry(cluster, **{"insecure-skip-tls-verify": True}), {"token": cluster.plane.admin_token})
    assert checked(phoebe("check", "-o", "json", kubeconfig=write(tmp_path / "kc", doc)))["state"] == "healthy"


def test_merged_kubeconfig_files_first_wins(
    phoebe: PhoebeRunner, cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = kubeconfig_document(cluster.plane.server, cluster.plane.ca_file, cluster.plane.admin_token, context="one")
    # the second file defines a user of the same name with a bad token, and another current-context
    second = kubeconfig_document(cluster.plane.server, cluster.plane.ca_file, "bad", context="two")
    second["users"] = [{"name": "phoebe-admin", "user": {"token": "bad"}}] + second["users"]
    monkeypatch.setenv(
        "KUBECONFIG", f"{write(tmp_path / 'a', first)}:{tmp_path / 'missing'}:{write(tmp_path / 'b', second)}"
    )

    result = phoebe("check", "-o", "json")
    assert checked(result)["context"] == "one"
    # context "two" exists (from the second file) and uses the first file's phoebe-admin user
    assert checked(phoebe("check", "--context", "two", "-o", "json"))["context"] == "two"


def test_a_context_whose_user_is_not_defined_is_a_usage_error(
    phoebe: PhoebeRunner, cluster: Cluster, tmp_path: Path
) -> None:
    # it used to fall back to anonymous and end in "forbidden: forbidden:" (exit 4)
    doc = config(cluster_entry(cluster, **{"certificate-authority": str(cluster.plane.ca_file)}), {"token": "x"})
    doc["contexts"][0]["context"]["user"] = "typo"
    path = write(tmp_path / "kc", doc)

    result = phoebe("status", kubeconfig=path)

    assert result.code == 2
    assert result.stdout == ""
    assert (
        result.stderr
        == f"phoebe: error: kubeconfig context 'ctx' names user 'typo', which {path} does not define (users: u)\n"
    )


def test_a_context_whose_cluster_is_not_defined_is_a_usage_error(
    phoebe: PhoebeRunner, cluster: Cluster, tmp_path: Path
) -> None:
    doc = config(cluster_entry(cluster), {"token": "x"})
    doc["contexts"][0]["context"]["cluster"] = "typo"
    path = write(tmp_path / "kc", doc)

    result = phoebe("sync", "ks", "-A", "--no-wait", kubeconfig=path)

    assert result.code == 2
    assert result.stderr == (
        f"phoebe: error: kubeconfig context 'ctx' names cluster 'typo', which {path} does not define (clusters: c)\n"
    )


def test_the_token_never_shows_with_verbose_output(phoebe: PhoebeRunner, cluster: Cluster, tmp_path: Path) -> None:
    good = cluster.kubeconfig_with_token(tmp_path, cluster.plane.admin_token, "good")
    result = phoebe("-v", "-v", "status", "-v", kubeconfig=good)
    assert result.code in (0, 1), result.stderr
    assert "requests to" in result.stderr  # -v -v did add its detail
    assert cluster.plane.admin_token not in result.stdout + result.stderr

    wrong_token = "wrong-" + cluster.plane.admin_token[::-1]
    bad = cluster.kubeconfig_with_token(tmp_path, wrong_token, "bad")
    failed = phoebe("-v", "-v", "status", kubeconfig=bad)
    assert failed.code == 3
    assert "HTTP 401 GET" in failed.stderr  # -v added the cause
    assert wrong_token not in failed.stdout + failed.stderr


def test_exec_credentials_never_show_with_verbose_output(
    phoebe: PhoebeRunner, cluster: Cluster, tmp_path: Path
) -> None:
    plugin = tmp_path / "plugin"
    credential = {
        "apiVersion": "client.authentication.k8s.io/v1",
        "kind": "ExecCredential",
        "status": {"token": cluster.plane.admin_token},
    }
    plugin.write_text(f"#!/bin/sh\necho '{json.dumps(credential)}'\n")
    plugin.chmod(0o700)
    exec_user = {
        "exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": str(plugin), "interactiveMode": "Never"}
    }
    doc = config(cluster_entry(cluster, **{"certificate-authority": str(cluster.plane.ca_file)}), exec_user)

    result = phoebe("-v", "-v", "status", kubeconfig=write(tmp_path / "kc", doc))

    assert result.code in (0, 1), result.stderr
    assert "requests to" in result.stderr
    assert cluster.plane.admin_token not in result.stdout + result.stderr
