from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from phoebe_cli.errors import KubeconfigError
from phoebe_cli.kube.config import StaticCredentials, TokenFileCredentials, load_cluster_access
from phoebe_cli.kube.kubeconfig import read_kubeconfig


def write(path: Path, doc: object) -> Path:
    path.write_text(yaml.safe_dump(doc))
    return path


def kubeconfig(context: str, server: str, user: dict, current: str | None = None) -> dict:
    doc = {
        "clusters": [{"name": context, "cluster": {"server": server}}],
        "users": [{"name": context, "user": user}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
    }
    if current:
        doc["current-context"] = current
    return doc


def test_merge_first_file_wins_and_missing_files_are_skipped(tmp_path: Path) -> None:
    a = write(tmp_path / "a", kubeconfig("x", "https://a", {"token": "ta"}, current="x"))
    b = write(
        tmp_path / "b",
        kubeconfig("x", "https://b", {"token": "tb"}, current="y")
        | {
            "contexts": [
                {"name": "x", "context": {"cluster": "x", "user": "x"}},
                {"name": "y", "context": {"cluster": "x", "user": "x"}},
            ]
        },
    )
    merged = read_kubeconfig(f"{a}:{tmp_path / 'gone'}:{b}")
    assert merged.current_context == "x"
    assert merged.clusters["x"].value["server"] == "https://a"
    assert set(merged.contexts) == {"x", "y"}
    assert merged.files == [a, b]


def test_static_credentials(tmp_path: Path) -> None:
    path = write(tmp_path / "kc", kubeconfig("x", "https://h:6443/", {"token": "abc"}, current="x"))
    access = load_cluster_access(str(path), None)
    assert (access.server, access.context) == ("https://h:6443", "x")
    assert isinstance(access.credentials, StaticCredentials)
    assert access.authorization() == "Bearer abc"


def test_basic_auth_and_token_file(tmp_path: Path) -> None:
    path = write(tmp_path / "kc", kubeconfig("x", "https://h", {"username": "u", "password": "p"}, current="x"))
    assert load_cluster_access(str(path), None).authorization() == "Basic dTpw"
    (tmp_path / "tok").write_text("t1\n")
    path = write(tmp_path / "kc2", kubeconfig("x", "https://h", {"tokenFile": "tok"}, current="x"))
    access = load_cluster_access(str(path), None)
    assert isinstance(access.credentials, TokenFileCredentials)
    assert access.authorization() == "Bearer t1"
    (tmp_path / "tok").write_text("t2")
    assert access.reauthenticate()
    assert access.authorization() == "Bearer t2"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("a: [", "kubeconfig is not valid YAML (line 2)"),
        ("- just\n- a list\n", "kubeconfig is not a kubeconfig (expected a mapping)"),
        ("clusters: {}\n", "'clusters' must be a list"),
        ("clusters:\n- cluster: {server: x}\n", "every entry of 'clusters' needs a name"),
    ],
)
def test_malformed_files(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "kc").write_text(content)
    with pytest.raises(KubeconfigError, match=r".*") as caught:
        load_cluster_access(str(tmp_path / "kc"), None)
    assert message in caught.value.message


def test_context_errors(tmp_path: Path) -> None:
    path = write(tmp_path / "kc", kubeconfig("x", "https://h", {"token": "t"}))
    with pytest.raises(KubeconfigError) as caught:
        load_cluster_access(str(path), None)
    assert caught.value.message == "no current context in the kubeconfig; choose one with --context (contexts: x)"
    with pytest.raises(KubeconfigError) as caught:
        load_cluster_access(str(path), "y")
    assert caught.value.message == "context 'y' not found in the kubeconfig (contexts: x)"


def test_a_directory_is_not_a_kubeconfig(tmp_path: Path) -> None:
    with pytest.raises(KubeconfigError) as caught:
        load_cluster_access(str(tmp_path), None)
    assert caught.value.message == f"kubeconfig is a directory, not a file: {tmp_path}"


def test_bad_base64(tmp_path: Path) -> None:
    doc = kubeconfig("x", "https://h", {"token": "t"}, current="x")
    doc["clusters"][0]["cluster"]["certificate-authority-data"] = "%%%"
    with pytest.raises(KubeconfigError) as caught:
        load_cluster_access(str(write(tmp_path / "kc", doc)), None)
    assert caught.value.message == "kubeconfig context 'x': certificate-authority-data is not valid base64"


def test_static_path_does_not_import_kubernetes(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = write(tmp_path / "kc", kubeconfig("x", "https://h", {"token": "t"}, current="x"))
    code = (
        "import sys; from phoebe_cli.kube.config import load_cluster_access; "
        f"load_cluster_access({str(path)!r}, None); print('kubernetes' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
