"""Where a checkout starts: its root Flux objects, found as Flux would find them, in any layout.

A root is a Flux Kustomization (or source) in the checkout that no other Kustomization's build
yields: on a cluster, something outside the repository applied it (``flux bootstrap``, a
FluxInstance, a person with kubectl). Which files a Kustomization's build yields is known
without kustomize: the scanner's closure of its ``spec.path`` (the kustomization file's
references, or every YAML file below a path without one). So, from every YAML file of the
checkout that mentions a Flux API group:

- every Flux Kustomization and source document is a candidate;
- a FluxInstance's ``spec.sync`` stands for the GitRepository/OCIRepository and Kustomization the
  operator creates (named after the FluxInstance's namespace, as ``flux bootstrap`` names them),
  when its path is in this checkout (else it syncs another repository);
- a candidate whose file lies in another Kustomization's closure is not a root (a Kustomization
  whose path holds its own file — bootstrap's ``flux-system`` — still is).

Only what the source's artifact holds counts (``.sourceignore``, then the roots' source's
``spec.ignore``): a file Flux never sees declares nothing.

Several clusters in one checkout (``clusters/prod``, ``clusters/staging``) give roots in several
groups: each root belongs to the directory after a ``clusters/`` path component, else (when
roots collide by name) to the first directory in which their files differ; ``--cluster NAME``
picks one group, and roots that belong to no group are shared by all.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from phoebe_cli.errors import UsageError
from phoebe_cli.flux.kinds import ALL_KINDS, kind_of
from phoebe_cli.flux.objects import ObjectRef
from phoebe_cli.repo.scan import Artifact, Scanner
from phoebe_cli.repo.sourceignore import IGNORE_FILE
from phoebe_cli.repo.yamlio import Document, YamlError, load_documents

# Only files that can hold a Flux Kustomization, a source or a FluxInstance are parsed.
FLUX_MARKERS = (b"kustomize.toolkit.fluxcd.io", b"source.toolkit.fluxcd.io", b"fluxcd.controlplane.io")
FLUX_INSTANCE_GROUP = "fluxcd.controlplane.io"
SOURCE_KINDS = frozenset({"GitRepository", "OCIRepository", "Bucket", "HelmRepository", "ExternalArtifact"})


PATTERNS = ("*.yaml", "*.yml", f"*{IGNORE_FILE}")  # for git ls-files


@dataclass(frozen=True)
class CheckoutFiles:
    yaml: list[Path]  # every YAML file (see checkout_files)
    ignore: list[Path]  # every .sourceignore file


def checkout_files(root: Path) -> CheckoutFiles:
    """The checkout's YAML and .sourceignore files, from one `git ls-files`: tracked (and untracked
    but not ignored) when it is a repository, leaving out Helm chart templates (Go templates, not
    YAML) and hidden directories."""
    files = _checkout_files(root)
    return CheckoutFiles(
        [p for p in files if p.suffix in (".yaml", ".yml")], [p for p in files if p.name == IGNORE_FILE]
    )


def checkout_yaml_files(root: Path) -> list[Path]:
    return checkout_files(root).yaml


def _checkout_files(root: Path) -> list[Path]:
    """The checkout's YAML files and .sourceignore files (see checkout_yaml_files)."""
    try:
        done: subprocess.CompletedProcess[bytes] | None = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", *PATTERNS],
            cwd=root,
            capture_output=True,
            check=False,
        )
    except OSError:  # no git: every file counts
        done = None
    if done is not None and done.returncode == 0:
        files = [root / name for name in done.stdout.decode().split("\0") if name]
    else:
        files = [p for p in root.rglob("*") if p.suffix in (".yaml", ".yml") or p.name == IGNORE_FILE]
    files = [
        p for p in files if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parent.parts)
    ]
    files = [p for p in files if p.name == IGNORE_FILE or not p.name.startswith(".")]
    charts = {p.parent for p in files if p.name == "Chart.yaml"}
    return sorted(p for p in files if not any(p.is_relative_to(chart / "templates") for chart in charts))


def flux_kind_of(obj: Any) -> str | None:
    """The kind name of a Flux object phoebe models, else None."""
    if not isinstance(obj, dict):
        return None
    api_version = str(obj.get("apiVersion", ""))
    group = api_version.split("/", 1)[0] if "/" in api_version else ""
    kind = kind_of(group, str(obj.get("kind", "")))
    return kind.kind if kind in ALL_KINDS else None


def is_flux_kustomization(obj: Any) -> bool:
    return flux_kind_of(obj) == "Kustomization"


@dataclass(frozen=True)
class Candidate:
    document: Document
    ref: ObjectRef
    synthesized_from: Document | None = None  # the FluxInstance it stands for


@dataclass
class Roots:
    documents: list[Document]  # the root Flux objects (FluxInstance syncs as the objects they make)
    cluster: str | None  # the cluster chosen (or the only one), None when the checkout names none
    clusters: list[str] = field(default_factory=list)  # every cluster the checkout holds
    yaml_errors: list[YamlError] = field(default_factory=list)
    spec_ignore: str | None = None  # the roots' source's spec.ignore: what its artifact leaves out
    sources: dict[ObjectRef, dict[str, Any]] = field(default_factory=dict)  # not kept in the cache

    def to_json(self, root: Path) -> dict[str, Any]:
        return {
            "documents": [[str(d.path.relative_to(root)), d.line, d.data] for d in self.documents],
            "cluster": self.cluster,
            "clusters": self.clusters,
            "errors": [[str(e.path.relative_to(root)), e.line, e.message] for e in self.yaml_errors],
            "specIgnore": self.spec_ignore,
        }

    @classmethod
    def from_json(cls, root: Path, data: dict[str, Any]) -> Roots:
        return cls(
            [Document(obj, root / path, line) for path, line, obj in data["documents"]],
            data["cluster"],
            list(data["clusters"]),
            [YamlError(root / path, line, message) for path, line, message in data["errors"]],
            data["specIgnore"],
        )


def _ref(obj: dict[str, Any], default_namespace: str = "flux-system") -> ObjectRef:
    meta = obj.get("metadata") or {}
    namespace = str(meta.get("namespace") or default_namespace)
    return ObjectRef(str(obj.get("kind", "")), namespace, str(meta.get("name", "")))


def _flux_instance_sync(document: Document) -> list[Document]:
    """The source and Kustomization flux-operator makes for a FluxInstance's ``spec.sync``."""
    obj = document.data
    sync = (obj.get("spec") or {}).get("sync")
    if not isinstance(sync, dict):
        return []
    namespace = str((obj.get("metadata") or {}).get("namespace") or "flux-system")
    name = str(sync.get("name") or namespace)
    kind = str(sync.get("kind") or "GitRepository")
    source_spec: dict[str, Any] = {"interval": str(sync.get("interval") or "1m"), "url": str(sync.get("url") or "")}
    ref = str(sync.get("ref") or "")
    if kind == "GitRepository" and ref:
        source_spec["ref"] = {"name": ref} if ref.startswith("refs/") else {"branch": ref}
    elif kind == "OCIRepository" and ref:
        source_spec["ref"] = {"tag": ref}
    source = {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": source_spec,
    }
    kustomization = {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "interval": str(sync.get("interval") or "10m"),
            "path": str(sync.get("path") or "./"),
            "prune": True,
            "sourceRef": {"kind": kind, "name": name},
        },
    }
    return [Document(source, document.path, document.line), Document(kustomization, document.path, document.line)]


def _candidates(root: Path, files: Iterable[Path]) -> tuple[list[Candidate], list[YamlError]]:
    candidates: list[Candidate] = []
    errors: list[YamlError] = []
    for path in files:
        try:
            raw = path.read_bytes()
        except OSError:
            continue
        if not any(marker in raw for marker in FLUX_MARKERS):
            continue  # most files: no Flux object can be in them
        try:
            documents = load_documents(path)
        except YamlError as error:
            errors.append(error)
            continue
        for document in documents:
            obj = document.data
            if not isinstance(obj, dict):
                continue
            if obj.get("kind") == "FluxInstance" and str(obj.get("apiVersion", "")).startswith(FLUX_INSTANCE_GROUP):
                for made in _flux_instance_sync(document):
                    candidates.append(Candidate(made, _ref(made.data), synthesized_from=document))
                continue
            kind = flux_kind_of(obj)
            if kind == "Kustomization" or kind in SOURCE_KINDS:
                candidates.append(Candidate(document, _ref(obj)))
    return candidates, errors


def _spec_path(obj: dict[str, Any]) -> str | None:
    path = str((obj.get("spec") or {}).get("path") or "./")
    return None if "${" in path else path  # substituted by a parent: where it points is not known here


def _covered_files(root: Path, candidates: Sequence[Candidate], scanner: Scanner) -> dict[PurePosixPath, set[int]]:
    """For each file, the candidate Kustomizations (by index) whose build reads it."""
    covered: dict[PurePosixPath, set[int]] = {}
    for index, candidate in enumerate(candidates):
        if candidate.ref.kind != "Kustomization":
            continue
        path = _spec_path(candidate.document.data)
        if path is None:
            continue
        directory = root / path.lstrip("/")
        spec = candidate.document.data.get("spec") or {}
        components = [c for c in spec.get("components") or [] if isinstance(c, str)]
        for relative in scanner.closure(directory, components).files:
            covered.setdefault(PurePosixPath(relative), set()).add(index)
    return covered


def cluster_of(path: PurePosixPath) -> str | None:
    """``clusters/<name>/...`` names a cluster."""
    parts = path.parts
    for index, part in enumerate(parts[:-2]):
        if part == "clusters":
            return parts[index + 1]
    return None


def _group(roots: list[Candidate], root: Path) -> dict[int, str | None]:
    """Each root's cluster (see the module docstring)."""
    files = {i: PurePosixPath(c.document.path.relative_to(root)) for i, c in enumerate(roots)}
    groups = {i: cluster_of(path) for i, path in files.items()}
    clashing: dict[ObjectRef, list[int]] = {}
    for i, candidate in enumerate(roots):
        clashing.setdefault(candidate.ref, []).append(i)
    for members in clashing.values():
        if len(members) < 2 or len({groups[i] for i in members}) == len(members):
            continue
        # Same name twice and no clusters/ directory tells them apart: the first directory that does.
        parts = [files[i].parts for i in members]
        depth = next((d for d in range(min(len(p) for p in parts) - 1) if len({p[d] for p in parts}) > 1), None)
        if depth is None:
            continue
        for i in range(len(roots)):
            if len(files[i].parts) > depth + 1 and groups[i] is None:
                prefix = files[i].parts[:depth]
                if prefix == parts[0][:depth]:
                    groups[i] = files[i].parts[depth]
    return groups


ScannerFor = Callable[[str | None], Scanner]  # a source's spec.ignore -> the checkout's artifact, scanned


def find_roots_cached(
    root: Path,
    files: Sequence[Path],
    *,
    ignore_files: Sequence[Path] = (),
    scanner_for: ScannerFor | None = None,
    cluster: str | None = None,
) -> Roots:
    """``find_roots``, remembered in the build cache while no YAML or .sourceignore file of the
    checkout (``files``, ``ignore_files``) changes, by path, size and modification time: a warm
    run parses none of them."""
    import hashlib
    import json

    from phoebe_cli import __version__
    from phoebe_cli.repo.cache import read_cached, write_cached

    hasher = hashlib.sha256(f"roots/{__version__}/{root}/{cluster}/".encode())
    for path in [*files, *ignore_files]:
        try:
            stat = path.stat()
        except OSError:
            continue
        hasher.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
    key = hasher.hexdigest()
    cached = read_cached(key)
    if isinstance(cached, dict):
        try:
            return Roots.from_json(root, cached)
        except (KeyError, TypeError, ValueError):
            pass  # a damaged entry: found again
    found = find_roots(root, files, scanner_for=scanner_for, cluster=cluster)
    write_cached(key, json.loads(json.dumps(found.to_json(root), default=str)))
    return found


def find_roots(
    root: Path, files: Iterable[Path], *, scanner_for: ScannerFor | None = None, cluster: str | None = None
) -> Roots:
    """The roots of the checkout at ``root`` (see the module docstring); ``files`` are its YAML files.

    Only what the source's artifact holds counts: first with the checkout's ``.sourceignore``
    files, then — when the roots' source has a ``spec.ignore`` — again with it."""
    scanner_for = scanner_for or (lambda spec_ignore: Scanner(root, Artifact.of(root, spec_ignore)[0]))
    files = list(files)
    found = _find(root, files, scanner_for(None), cluster)
    spec_ignore = _source_ignore(found)
    if spec_ignore is not None:
        found = _find(root, files, scanner_for(spec_ignore), cluster)
        found.spec_ignore = spec_ignore
    return found


def _source_ignore(found: Roots) -> str | None:
    """The spec.ignore of the source the root Kustomizations read, when the checkout declares it."""
    sources = {_ref(d.data): d.data for d in found.documents if flux_kind_of(d.data) in SOURCE_KINDS}
    sources.update(found.sources)
    for document in found.documents:
        if is_flux_kustomization(document.data):
            spec = document.data.get("spec") or {}
            ref = spec.get("sourceRef") or {}
            namespace = str(ref.get("namespace") or (document.data.get("metadata") or {}).get("namespace") or "")
            source = sources.get(ObjectRef(str(ref.get("kind", "")), namespace, str(ref.get("name", ""))))
            ignore = ((source or {}).get("spec") or {}).get("ignore")
            if isinstance(ignore, str):
                return ignore
    return None


def _find(root: Path, files: list[Path], scanner: Scanner, cluster: str | None) -> Roots:
    artifact = scanner.artifact
    in_artifact = [path for path in files if artifact.is_file(artifact.relative(path))]
    candidates, errors = _candidates(root, in_artifact)
    # A FluxInstance whose sync path is not in this checkout syncs another repository (or nothing).
    elsewhere = {
        id(c.synthesized_from)
        for c in candidates
        if c.synthesized_from is not None
        and c.ref.kind == "Kustomization"
        and not artifact.is_dir(artifact.relative(root / str(_spec_path(c.document.data) or "").lstrip("/")))
    }
    candidates = [c for c in candidates if c.synthesized_from is None or id(c.synthesized_from) not in elsewhere]
    if not candidates:
        if errors:
            return Roots([], None, [], errors)
        raise UsageError(
            f"no Flux objects in {root}: nothing to read as Flux would (is it a Flux repository? "
            "--root-file FILE names the root Kustomizations)"
        )
    covered = _covered_files(root, candidates, scanner)
    roots: list[Candidate] = []
    for index, candidate in enumerate(candidates):
        relative = PurePosixPath(candidate.document.path.relative_to(root))
        # FluxInstance syncs are made by the operator; anything else is a root when no other
        # Kustomization's build yields it (bootstrap's flux-system reads its own file).
        if candidate.synthesized_from is not None or not covered.get(relative, set()) - {index}:
            roots.append(candidate)
    if not any(c.ref.kind == "Kustomization" for c in roots):
        # Kustomizations that yield each other and nothing outside them: the ones that read their
        # own file are the entry points.
        roots = [
            c
            for i, c in enumerate(candidates)
            if c.ref.kind == "Kustomization" and i in covered.get(PurePosixPath(c.document.path.relative_to(root)), ())
        ] or roots
    groups = _group(roots, root)
    names = sorted({g for g in groups.values() if g is not None})
    if cluster is not None:
        matching = [name for name in names if name == cluster or name == PurePosixPath(cluster).name]
        if not matching:
            available = ", ".join(names) if names else "none: this checkout holds one cluster"
            raise UsageError(f"--cluster {cluster}: no such cluster in {root} (clusters: {available})")
        chosen: str | None = matching[0]
    elif len(names) > 1:
        raise UsageError(f"{root} holds several clusters ({', '.join(names)}): choose one with --cluster NAME")
    else:
        chosen = names[0] if names else None
    selected = [c for i, c in enumerate(roots) if groups[i] in (None, chosen)]
    _check_unique(selected, root)
    if not any(c.ref.kind == "Kustomization" for c in selected):
        raise UsageError(f"no root Flux Kustomization found in {root} (--root-file FILE names it)")
    found = Roots([c.document for c in selected], chosen, names, errors)
    # The sources the chosen cluster declares, roots or not: where the roots read from.
    for candidate in candidates:
        if candidate.ref.kind in SOURCE_KINDS:
            group = cluster_of(PurePosixPath(candidate.document.path.relative_to(root)))
            if group in (None, chosen):
                found.sources.setdefault(candidate.ref, candidate.document.data)
    return found


def _check_unique(roots: list[Candidate], root: Path) -> None:
    seen: dict[ObjectRef, Candidate] = {}
    for candidate in roots:
        other = seen.setdefault(candidate.ref, candidate)
        if other is not candidate and other.document.data != candidate.document.data:
            first = other.document.path.relative_to(root)
            second = candidate.document.path.relative_to(root)
            raise UsageError(
                f"two roots are both {candidate.ref} ({first}:{other.document.line} and "
                f"{second}:{candidate.document.line}): name the roots with --root-file FILE"
            )
