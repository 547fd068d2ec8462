"""The flux CLI as the oracle for one Flux Kustomization's build.

``flux build kustomization NAME -n NAMESPACE --path DIR --kustomization-file FILE --dry-run``
(github.com/fluxcd/flux2/v2 v2.9.5, ``internal/build/build.go``) runs Flux's own generator
(github.com/fluxcd/pkg/kustomize), kustomize, postBuild substitution and commonMetadata on one
Kustomization, offline. How it differs from kustomize-controller, and what this module does about it:

- ``--dry-run`` skips ``substituteFrom`` (``SubstituteWithDryRun``: only ``postBuild.substitute`` is
  read). The Kustomization handed to it therefore has ``substituteFrom`` replaced by the variables the
  controller would load, inlined into ``postBuild.substitute`` (``controller_variables``).
- It runs with ``--in-memory-build`` and the checkout root as the working directory: the generated
  kustomization.yaml lives in memory (the checkout is never written) and kustomize reads through
  ``MakeFsOnDiskSecure(cwd)``, a filesystem rooted at the checkout — what the controller's
  ``SecureBuild(workDir, ...)`` does with the source's root. The default on-disk backend writes
  into ``--path`` and builds on an unrestricted filesystem.
- It labels every object with ``kustomize.toolkit.fluxcd.io/name`` and ``/namespace`` (the controller
  does the same when it applies; phoebe's model does not carry them) and masks SOPS-encrypted
  Secrets with ``**SOPS**`` (phoebe: ``***`` and the annotation ``phoebe.dev/sops``). Plain Secrets
  keep their values there; phoebe masks every Secret and keeps a sha256 of each value instead.
  ``normalise`` maps exactly these (owner labels checked, then taken out; SOPS masks to ``***``;
  plain Secrets' values to ``***`` once their digests match phoebe's), and nothing else.
- It is handed phoebe's Kustomization objects, so it cannot judge how phoebe read a root file:
  ``Oracle.read_file`` has Go read it (through kustomize, as the Kustomization applying it on a
  cluster reads it) for the test to compare.
- Its output is sigs.k8s.io/yaml's rendering of JSON objects; ``load_go_output`` reads it with JSON's
  types (no timestamps, no YAML 1.1 ``=``), so a difference in types is a real one.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from phoebe_cli.repo import substitute
from phoebe_cli.repo.digests import secret_digests
from phoebe_cli.repo.model import BuildState, DeclaredKustomization, RepoModel, inventory_id, object_ref

OWNER_LABELS = ("kustomize.toolkit.fluxcd.io/name", "kustomize.toolkit.fluxcd.io/namespace")
FLUX_SOPS_MASK = "**SOPS**"
PHOEBE_MASK = "***"
PHOEBE_SOPS_ANNOTATION = "phoebe.dev/sops"
DOCKER_CONFIG_JSON = "kubernetes.io/dockerconfigjson"


class OracleError(Exception):
    """flux build refused the Kustomization (its stderr)."""


# --- a checkout in a temporary Git repository --------------------------------------------------
def git_checkout(source: Path, target: Path) -> Path:
    """A copy of ``source`` at ``target``, committed to a fresh Git repository (discovery lists
    files with ``git ls-files``)."""
    shutil.copytree(source, target)
    environment = {
        **os.environ,
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_SYSTEM": os.devnull,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
    }
    for command in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "fixture"]):
        subprocess.run(["git", *command], cwd=target, env=environment, check=True, capture_output=True)
    return target


# --- the variables the controller would load ---------------------------------------------------
@dataclass
class ClusterView:
    """The ConfigMaps and Secrets a converged cluster holds after every Kustomization of the model
    has applied: where kustomize-controller reads ``substituteFrom``.

    ConfigMaps are taken as applied (substituted, with commonMetadata). Secrets: phoebe's applied
    objects carry no values, so plain Secrets are read from the build before substitution (their
    values in the fixtures hold no variables), and a SOPS-encrypted Secret's variables stand for
    themselves (``${KEY}``), as offline there is no key — the same as the model does.
    """

    configmaps: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    secrets: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)

    @classmethod
    def of(cls, model: RepoModel) -> ClusterView:
        view = cls()
        for declared in model.kustomizations.values():
            namespace = declared.ref.namespace
            for obj in declared.objects:
                ref = object_ref(obj, namespace)
                if obj.get("kind") == "ConfigMap":
                    view.configmaps[(ref.namespace, ref.name)] = dict(obj.get("data") or {})
                elif obj.get("kind") == "Secret" and _phoebe_sops(obj):
                    keys = [*(obj.get("data") or {}), *(obj.get("stringData") or {})]
                    view.secrets[(ref.namespace, ref.name)] = {k: "${" + k + "}" for k in keys}
            for raw in declared.output.objects if declared.output is not None else []:
                if raw.get("kind") != "Secret" or isinstance(raw.get("sops"), dict):
                    continue
                ref = object_ref(raw, namespace)
                values = {str(k): _decode(v) for k, v in (raw.get("data") or {}).items()}
                values.update({str(k): str(v) for k, v in (raw.get("stringData") or {}).items()})
                view.secrets[(ref.namespace, ref.name)] = values
        return view

    def lookup(self, namespace: str) -> Callable[[str, str], Mapping[str, Any] | None]:
        def find(kind: str, name: str) -> Mapping[str, Any] | None:
            table: Mapping[tuple[str, str], Mapping[str, Any]] = (
                self.configmaps if kind == "ConfigMap" else self.secrets
            )
            return table.get((namespace, name))

        return find


def _decode(value: Any) -> str:
    try:
        return base64.b64decode(str(value), validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return str(value)


def controller_variables(declared: DeclaredKustomization, view: ClusterView) -> dict[str, str] | None:
    """What kustomize-controller substitutes with (None without ``spec.postBuild``): LoadVariables'
    ``substituteFrom`` in order, later sources overriding earlier ones, ``substitute`` over all of
    them, newlines removed — phoebe's ``substitute.collect_variables`` over the cluster's objects."""
    if declared.spec.get("postBuild") is None:
        return None
    return substitute.collect_variables(declared.obj, view.lookup(declared.ref.namespace))


def oracle_kustomization(declared: DeclaredKustomization, variables: Mapping[str, str] | None) -> dict[str, Any]:
    """The Kustomization handed to ``flux build``: as the cluster would get it, in its namespace,
    with ``substituteFrom`` replaced by the variables inlined into ``substitute``."""
    obj = _copy(declared.obj)
    obj.setdefault("metadata", {})["namespace"] = declared.ref.namespace
    spec = obj.setdefault("spec", {})
    if variables is not None:
        post_build = dict(spec.get("postBuild") or {})
        post_build.pop("substituteFrom", None)
        post_build["substitute"] = dict(variables)
        spec["postBuild"] = post_build
    return obj


def _copy(obj: Mapping[str, Any]) -> dict[str, Any]:
    copied: dict[str, Any] = json.loads(json.dumps(obj))
    return copied


# --- running the oracle --------------------------------------------------------------------------
@dataclass
class Oracle:
    flux: Path
    scratch: Path  # where the Kustomization files are written (outside the checkout)
    runs: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def build(self, kustomization: Mapping[str, Any], checkout: Path, path: str) -> list[dict[str, Any]]:
        """``flux build ks`` of ``kustomization`` on ``checkout``/``path``: its objects."""
        meta = kustomization.get("metadata") or {}
        name, namespace = str(meta.get("name")), str(meta.get("namespace"))
        with tempfile.NamedTemporaryFile(
            "w", suffix=".json", prefix=f"{namespace}-{name}-", dir=self._scratch(), delete=False
        ) as handle:
            json.dump(kustomization, handle)  # JSON: read as JSON by Flux, no YAML rules involved
        directory = (checkout / path.lstrip("/")).resolve()
        command = [
            str(self.flux),
            "build",
            "kustomization",
            name,
            "--namespace",
            namespace,
            "--path",
            str(directory),
            "--kustomization-file",
            handle.name,
            "--dry-run",
            "--in-memory-build",
        ]
        environment = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(self.scratch),
            "KUBECONFIG": str(self.scratch / "no-kubeconfig"),
        }
        with self._lock:
            self.runs += 1
        done = subprocess.run(
            command, cwd=checkout, env=environment, capture_output=True, text=True, check=False, timeout=120
        )
        if done.returncode != 0:
            raise OracleError(done.stderr.strip() or done.stdout.strip())
        return load_go_output(done.stdout)

    def read_file(self, file: Path) -> list[dict[str, Any]]:
        """The documents of ``file`` as Go reads them on the way to a cluster: through kustomize (the
        file alone in a directory, the kustomization generated), owner labels taken out."""
        directory = Path(tempfile.mkdtemp(prefix="read-", dir=self._scratch()))
        shutil.copyfile(file, directory / "objects.yaml")
        reader = {
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "kind": "Kustomization",
            "metadata": {"name": "read", "namespace": "read"},
            "spec": {
                "interval": "1h",
                "path": "./",
                "prune": False,
                "sourceRef": {"kind": "GitRepository", "name": "read"},
            },
        }
        objects = self.build(reader, directory, ".")
        for obj in objects:
            _without(obj.setdefault("metadata", {}), "labels", OWNER_LABELS)
        return objects

    def _scratch(self) -> Path:
        self.scratch.mkdir(parents=True, exist_ok=True)
        return self.scratch


class _JsonTypedLoader(yaml.SafeLoader):
    """Reads the YAML ``flux build`` prints: sigs.k8s.io/yaml's rendering of JSON objects (goyaml.v2
    quotes every string that would read as anything else), so a plain scalar is a string unless it
    is null, a bool, an int or a float — never a timestamp, never YAML 1.1's ``=`` value."""


_JsonTypedLoader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag not in ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:value")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_go_output(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.load_all(text, Loader=_JsonTypedLoader) if isinstance(doc, dict)]


# --- normalising both sides ----------------------------------------------------------------------
def identity(obj: Mapping[str, Any]) -> tuple[str, str, str, str]:
    meta = obj.get("metadata") or {}
    return (
        str(obj.get("apiVersion", "")),
        str(obj.get("kind", "")),
        str(meta.get("namespace") or ""),
        str(meta.get("name", "")),
    )


def _phoebe_sops(obj: Mapping[str, Any]) -> bool:
    return ((obj.get("metadata") or {}).get("annotations") or {}).get(PHOEBE_SOPS_ANNOTATION) == "encrypted"


def _flux_masked(obj: Mapping[str, Any]) -> bool:
    """Whether flux build masked this Secret as SOPS-encrypted (every value is the mask)."""
    data = obj.get("data") or {}
    string_data = obj.get("stringData") or {}
    if not data and not string_data:
        return False
    if obj.get("type") == DOCKER_CONFIG_JSON:
        mask = json.dumps({"mask": FLUX_SOPS_MASK}, separators=(",", ":"))
        data_mask, string_mask = base64.b64encode(mask.encode()).decode(), mask
    else:
        data_mask, string_mask = base64.b64encode(FLUX_SOPS_MASK.encode()).decode(), FLUX_SOPS_MASK
    return all(v == data_mask for v in data.values()) and all(v == string_mask for v in string_data.values())


def _without(meta: dict[str, Any], key: str, names: Iterable[str]) -> None:
    values = meta.get(key)
    if not isinstance(values, dict):
        return
    for name in names:
        values.pop(name, None)
    if not values:
        meta.pop(key)


@dataclass
class Normalised:
    phoebe: dict[tuple[str, str, str, str], dict[str, Any]]
    flux: dict[tuple[str, str, str, str], dict[str, Any]]
    problems: list[str]  # what the normalisation itself found wrong (wrong owner labels, digests ...)


def normalise(declared: DeclaredKustomization, flux_objects: list[dict[str, Any]]) -> Normalised:
    """Both sides keyed by identity (order is not Flux's business here), with only the legitimate
    differences taken out (see the module docstring)."""
    problems: list[str] = []
    phoebe: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for built in declared.objects:
        obj = _copy(built)
        if obj.get("kind") == "Secret" and _phoebe_sops(obj):
            _without(obj.setdefault("metadata", {}), "annotations", [PHOEBE_SOPS_ANNOTATION])
        phoebe[identity(obj)] = obj
    flux: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for obj in flux_objects:
        meta = obj.setdefault("metadata", {})
        labels = meta.get("labels") or {}
        expected = {OWNER_LABELS[0]: declared.ref.name, OWNER_LABELS[1]: declared.ref.namespace}
        for label, value in expected.items():
            if labels.get(label) != value:
                problems.append(f"{identity(obj)}: flux build set {label}={labels.get(label)!r}, not {value!r}")
        _without(meta, "labels", OWNER_LABELS)
        key = identity(obj)
        mine = phoebe.get(key)
        if mine is not None and "labels" not in meta and (mine.get("metadata") or {}).get("labels") == {}:
            meta["labels"] = {}  # emptied by taking out the owner labels
        if obj.get("kind") == "Secret":
            _mask_like_phoebe(declared, obj, mine, problems)
        flux[key] = obj
    return Normalised(phoebe, flux, problems)


def _mask_like_phoebe(
    declared: DeclaredKustomization, obj: dict[str, Any], mine: Mapping[str, Any] | None, problems: list[str]
) -> None:
    if _flux_masked(obj):
        for field_name in ("data", "stringData"):
            if isinstance(obj.get(field_name), dict):
                obj[field_name] = dict.fromkeys(obj[field_name], PHOEBE_MASK)
        return
    if mine is None or _phoebe_sops(mine):
        return  # left as it is: the comparison reports it
    # A plain Secret: phoebe keeps digests of its values, not the values.
    subject = inventory_id(obj, declared.ref.namespace)
    theirs, ours = secret_digests(obj), declared.secret_digests.get(subject)
    if ours != theirs:
        keys = sorted(k for k in (ours or {}).keys() | theirs.keys() if (ours or {}).get(k) != theirs.get(k))
        problems.append(f"{subject}: the values of {keys} differ (sha256; values not shown)")
    for field_name in ("data", "stringData"):
        if isinstance(obj.get(field_name), dict):
            obj[field_name] = dict.fromkeys(obj[field_name], PHOEBE_MASK)


def differences(normalised: Normalised) -> list[str]:
    """Every difference left, one line each (paths into the objects)."""
    lines = list(normalised.problems)
    for key in sorted(normalised.phoebe.keys() - normalised.flux.keys()):
        lines.append(f"only phoebe has {'/'.join(key)}")
    for key in sorted(normalised.flux.keys() - normalised.phoebe.keys()):
        lines.append(f"only flux build has {'/'.join(key)}")
    for key in sorted(normalised.phoebe.keys() & normalised.flux.keys()):
        for path, ours, theirs in _diff(normalised.phoebe[key], normalised.flux[key], ""):
            lines.append(f"{'/'.join(key)} {path or '.'}: phoebe {ours!r} != flux build {theirs!r}")
    return lines


def _diff(ours: Any, theirs: Any, path: str) -> Iterable[tuple[str, Any, Any]]:
    if isinstance(ours, dict) and isinstance(theirs, dict):
        for key in sorted(ours.keys() | theirs.keys(), key=str):
            here = f"{path}.{key}"
            if key not in ours:
                yield here, "<absent>", theirs[key]
            elif key not in theirs:
                yield here, ours[key], "<absent>"
            else:
                yield from _diff(ours[key], theirs[key], here)
    elif isinstance(ours, list) and isinstance(theirs, list) and len(ours) == len(theirs):
        for index, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            yield from _diff(a, b, f"{path}[{index}]")
    elif not _same_scalar(ours, theirs):
        yield path, ours, theirs


def _same_scalar(ours: Any, theirs: Any) -> bool:
    """Equal as JSON values: a bool is never a number, and ints equal floats of the same value
    (Go decodes kustomize's ``1.0`` as float64 1 and prints ``1``)."""
    if isinstance(ours, bool) or isinstance(theirs, bool):
        return type(ours) is type(theirs) and ours == theirs
    if isinstance(ours, int | float) and isinstance(theirs, int | float):
        return float(ours) == float(theirs)
    return type(ours) is type(theirs) and bool(ours == theirs)


# --- skipping ---------------------------------------------------------------------------------------
REMOTE = "remote base (neither side fetches it offline)"
ELSEWHERE = "source not in the checkout"


def skip_reason(declared: DeclaredKustomization) -> str | None:
    """Why a Kustomization cannot be compared offline, or None."""
    if declared.state == BuildState.NOT_IN_CHECKOUT:
        return ELSEWHERE
    if declared.state == BuildState.PARTIAL:
        return REMOTE
    return None
