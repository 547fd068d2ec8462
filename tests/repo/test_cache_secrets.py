"""Secrets never written to disk, and a cache that is the user's only.

``phoebe diff`` against a cluster reads ``substituteFrom`` Secrets there: nothing substituted from
their values is written to the build cache (neither an entry nor a file name hashed from them),
while everything else is still cached. Every cache file is 0600 in 0700 directories, whatever the
umask, and the Secret digests the cache keeps are HMAC-SHA256 under a per-user key (0600, made
once, atomically): a short value cannot be tried back from them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import multiprocessing
import os
import stat
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from phoebe_cli.repo import cache, digests
from phoebe_cli.repo.model import load_model
from tests.conftest import Cluster, PhoebeRunner
from tests.repo.conftest import GIT_REPOSITORY, RepoWriter, config_map, flux_ks
from tests.support import manifests

pytestmark = pytest.mark.repo

# What a cluster Secret holds: short values (a PIN can be tried back from a plain SHA-256 in
# microseconds), a domain, a token that becomes part of object names.
CLUSTER_SECRET = {
    "SECRET_PIN": "4821",
    "SECRET_DOMAIN": "hidden-7q.example.org",
    "SECRET_TOKEN": "tok9f8e7d6c",
    "SECRET_PASSWORD": "correct-horse-battery-3",
}


def _yaml(*objects: dict[str, Any]) -> str:
    return "---\n".join(yaml.safe_dump(o, sort_keys=False) for o in objects)


def _cm(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def _ks(name: str, namespace: str, path: str, spec: dict[str, Any] | None = None) -> dict[str, Any]:
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
            **(spec or {}),
        },
    }


def _leaks(value: str) -> list[bytes]:
    """A value as it could sit in a file: as it is, base64 (a Secret's data), and its unkeyed
    SHA-256 (what a plain digest would be)."""
    return [value.encode(), base64.b64encode(value.encode()), hashlib.sha256(value.encode()).hexdigest().encode()]


def _cache_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and not p.is_symlink()]


def _assert_private(root: Path) -> None:
    """Every directory 0700, every file 0600."""
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    for path in root.rglob("*"):
        if path.is_symlink():
            continue
        mode = stat.S_IMODE(path.lstat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), f"{path}: {oct(mode)}"


def _checkout(write_repo: RepoWriter, namespace: str) -> Path:
    secret_vars = {"substituteFrom": [{"kind": "ConfigMap", "name": "settings"}, {"kind": "Secret", "name": "vault"}]}
    apps = {
        # substituted from the cluster Secret: in a ConfigMap, a Secret, and a child's build fields
        "domain.yaml": _cm("domain", {"host": "app.${SECRET_DOMAIN}", "zone": "${TIMEZONE}"}),
        "pin.yaml": {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "pin"},
            "stringData": {"pin": "${SECRET_PIN}", "length": "${#SECRET_PASSWORD}"},
        },
        "child.yaml": _ks(
            "child",
            namespace,
            "./child",
            {"namePrefix": "${SECRET_TOKEN}-", "postBuild": {"substitute": {"PASSWORD": "${SECRET_PASSWORD}"}}},
        ),
        # no cluster Secret value in it: built and post-processed from the cache as ever
        "clean.yaml": _ks("clean", namespace, "./clean", {"postBuild": {"substitute": {"GREETING": "hello"}}}),
    }
    files = {f"apps/{name}": _yaml(obj) for name, obj in apps.items()}
    files["apps/kustomization.yaml"] = _yaml(
        {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": sorted(apps)}
    )
    files["child/cm.yaml"] = _yaml(_cm("child-cm", {"password": "${PASSWORD}"}))
    files["clean/cm.yaml"] = _yaml(_cm("clean-cm", {"greeting": "${GREETING}"}))
    files["clean/secret.yaml"] = _yaml(
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "clean-secret"}, "stringData": {"pin": "1234"}}
    )
    files["kubernetes/flux/cluster.yaml"] = _yaml(
        manifests.git_repository("home-ops", namespace), _ks("apps", namespace, "./apps", {"postBuild": secret_vars})
    )
    return write_repo(files)


@pytest.mark.cluster
def test_diff_against_a_cluster_writes_no_secret_value_to_the_cache(
    cluster: Cluster, namespace: str, write_repo: RepoWriter, phoebe: PhoebeRunner, repo_environment: Path
) -> None:
    root = _checkout(write_repo, namespace)
    cluster.api.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "vault", "namespace": namespace},
            "type": "Opaque",
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in CLUSTER_SECRET.items()},
        }
    )
    cluster.api.apply(
        _cm("settings", {"TIMEZONE": "Europe/Paris"}) | {"metadata": {"name": "settings", "namespace": namespace}}
    )

    first = phoebe("diff", "--repo", str(root), "-n", namespace, "-r", "-o", "json", kubeconfig=cluster.kubeconfig)
    second = phoebe("diff", "--repo", str(root), "-n", namespace, "-r", "-o", "json", kubeconfig=cluster.kubeconfig)

    assert first.code == 1, first.stderr
    assert (second.code, second.stdout) == (first.code, first.stdout)  # the same, with the cache warm
    report = json.loads(first.stdout)
    objects = {(k["name"], o["name"]): o for k in report["kustomizations"] for o in k["objects"]}
    # the values were there to substitute (as kustomize-controller substitutes them) ...
    assert ("apps", "domain") in objects and ("child", f"{CLUSTER_SECRET['SECRET_TOKEN']}-child-cm") in objects
    assert objects[("apps", "pin")]["secretKeys"] == {"length": "added", "pin": "added"}
    # ... and none of them, in any form, is in any file of the cache
    files = _cache_files(repo_environment)
    assert files
    for path in files:
        content = path.read_bytes()
        for name, value in CLUSTER_SECRET.items():
            for leak in _leaks(value):
                assert leak not in content, f"{name} in {path}"
    # the rest is cached as before: the clean child's build and its substituted objects
    cached = b"".join(p.read_bytes() for p in files)
    assert b'"greeting":"hello"' in cached and b'"greeting":"${GREETING}"' in cached
    _assert_private(repo_environment / "phoebe")


def test_cached_secret_digests_are_keyed_with_a_private_key(
    write_repo: RepoWriter, phoebe: PhoebeRunner, repo_environment: Path
) -> None:
    """A checkout's own plain Secret: the cache keeps a digest of its value (to tell a change),
    HMAC-SHA256 under the user's key, never a plain SHA-256 of a 4-digit PIN."""
    root = write_repo(
        {
            "kubernetes/flux/cluster.yaml": GIT_REPOSITORY
            + "---\n"
            + flux_ks("apps", "./apps", extra="targetNamespace: default\npostBuild:\n  substitute:\n    A: b\n"),
            "apps/secret.yaml": "apiVersion: v1\nkind: Secret\nmetadata:\n  name: pin\nstringData:\n  pin: '1234'\n",
            "apps/cm.yaml": config_map("cm", "default", {"a": "${A}"}),
        }
    )

    result = phoebe("validate", str(root))

    assert result.code == 0, result.stdout
    key_file = repo_environment / "phoebe" / "builds" / "digest.key"
    key = key_file.read_bytes()
    assert len(key) == 32
    content = b"".join(p.read_bytes() for p in _cache_files(repo_environment / "phoebe"))
    assert hashlib.sha256(b"1234").hexdigest().encode() not in content
    assert hmac.new(key, b"1234", hashlib.sha256).hexdigest().encode() in content
    _assert_private(repo_environment / "phoebe")
    # a second run reads the digests back from the cache, under the same key
    digests._forget()
    again = load_model(root)
    (declared,) = [k for k in again.kustomizations.values() if k.ref.name == "apps"]
    assert declared.secret_digests == {
        "default_pin__Secret": {"pin": hmac.new(key, b"1234", hashlib.sha256).hexdigest()}
    }
    assert key_file.read_bytes() == key


def test_no_cache_writes_no_key_and_digests_still_compare(
    write_repo: RepoWriter, phoebe: PhoebeRunner, repo_environment: Path
) -> None:
    root = write_repo(
        {
            "kubernetes/flux/cluster.yaml": GIT_REPOSITORY + "---\n" + flux_ks("apps", "./apps"),
            "apps/secret.yaml": "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n  namespace: default\n"
            "stringData:\n  pin: '1234'\n",
        }
    )

    result = phoebe("validate", str(root), "--no-cache")

    assert result.code == 0, result.stdout
    assert not (repo_environment / "phoebe" / "builds").exists()
    assert digests.secret_digests({"data": {"pin": base64.b64encode(b"1234").decode()}}) == digests.secret_digests(
        {"stringData": {"pin": "1234"}}
    )


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o077])
def test_cache_files_are_0600_in_0700_directories_whatever_the_umask(umask: int, repo_environment: Path) -> None:
    old = os.umask(umask)
    try:
        cache.write_cached("ab" + "0" * 62, {"a": 1})
        assert digests.keep_key()
    finally:
        os.umask(old)
    assert cache.read_cached("ab" + "0" * 62) == {"a": 1}
    _assert_private(repo_environment / "phoebe")
    assert stat.S_IMODE(repo_environment.stat().st_mode) == 0o700  # made by phoebe: 0700 too


def test_a_cache_an_older_phoebe_left_open_is_narrowed(repo_environment: Path) -> None:
    builds = repo_environment / "phoebe" / "builds" / "cd"
    builds.mkdir(parents=True, mode=0o755)
    for directory in (builds, builds.parent, builds.parent.parent):
        directory.chmod(0o755)
    old_entry = builds / ("cd" + "1" * 62 + ".json")
    old_entry.write_text("[]")
    old_entry.chmod(0o644)

    cache.write_cached("cd" + "2" * 62, [])

    _assert_private(repo_environment / "phoebe")


def _write_many(args: tuple[str, int]) -> str:
    """In another process: write entries and make (or read) the key, all at once with the others."""
    base, index = args
    os.environ["XDG_CACHE_HOME"] = base
    for n in range(40):
        cache.write_cached(f"{n % 7:02x}{index:02x}" + "0" * 60, {"n": n})
        cache.write_cached("ff" + "0" * 62, {"shared": True})
    digests.keep_key()
    return digests.key_id()


def test_processes_sharing_a_fresh_cache_never_fail_and_agree_on_one_key(repo_environment: Path) -> None:
    """Eight processes at once on an empty cache: directories made by several at a time, one entry
    written by all, the key made once (the losers read it: their cached digests agree)."""
    with multiprocessing.get_context("spawn").Pool(8) as pool:
        ids = pool.map(_write_many, [(str(repo_environment), i) for i in range(8)])
    key = (repo_environment / "phoebe" / "builds" / "digest.key").read_bytes()
    expected = hmac.new(key, b"phoebe key id", hashlib.sha256).hexdigest()[:16]
    # a process that lost the race kept its own key in memory (and so writes no digest): at least
    # the winner's id is the key file's, and no process crashed
    assert expected in ids
    assert cache.read_cached("ff" + "0" * 62) == {"shared": True}
    assert not [p for p in (repo_environment / "phoebe").rglob("*.tmp")]  # no partial file left
    _assert_private(repo_environment / "phoebe")


def test_threads_making_the_same_directories_never_fail(repo_environment: Path) -> None:
    errors: list[BaseException] = []

    def make() -> None:
        try:
            for n in range(50):
                cache.ensure_private_dir(cache.cache_dir() / f"{n:02x}")
        except BaseException as error:  # noqa: BLE001 - any failure is the test's
            errors.append(error)

    threads = [threading.Thread(target=make) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    _assert_private(repo_environment / "phoebe")
