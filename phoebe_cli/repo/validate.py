"""Findings about a checkout: what would make Flux fail, found before it does. Pure over a model.

Each finding has a severity, a code (stable, documented in docs/commands/validate.md), a message,
and where possible the file and line it is about.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from phoebe_cli.flux.kinds import HELM_RELEASE, KUSTOMIZATION
from phoebe_cli.flux.objects import ObjectRef
from phoebe_cli.repo.model import BuildState, DeclaredKustomization, DeclaredObject, RepoModel
from phoebe_cli.repo.yamlio import YamlError

ERROR = "error"
WARNING = "warning"

SOURCE_KINDS = ("GitRepository", "OCIRepository", "Bucket", "HelmRepository", "HelmChart", "ExternalArtifact")


@dataclass(frozen=True)
class Finding:
    severity: str
    code: str
    message: str
    file: Path | None = None  # relative to the repository
    line: int | None = None
    object: ObjectRef | None = None

    @property
    def location(self) -> str:
        if self.file is None:
            return ""
        return f"{self.file}:{self.line}" if self.line else str(self.file)


class _Where:
    """The file and line that declare an object: the root file it was read from, else the document
    among the files its parent's build read that has its kind and name (parsed once per run)."""

    def __init__(self, model: RepoModel) -> None:
        self.model = model
        self.documents: dict[str, list[tuple[str, str, int]]] = {}  # file -> (kind, name, line)

    def __call__(self, declared: DeclaredObject | None) -> tuple[Path | None, int | None]:
        if declared is None:
            return None, None
        origin = declared.origin
        if origin.path is not None:
            return origin.path, origin.line
        parent = self.model.kustomizations.get(origin.parent) if origin.parent else None
        if parent is None:
            return None, None
        files = list(parent.output.files) if parent.output is not None else []
        exact = templated = None
        for relative in files:
            for kind, name, line in self._documents(relative):
                if kind != declared.ref.kind:
                    continue
                if name == declared.ref.name:
                    exact = (Path(relative), line)
                    break
                if templated is None and "${" in name:
                    templated = (Path(relative), line)  # its name is made by substitution
            if exact is not None:
                return exact
        return templated or (Path(parent.path.lstrip("./")), None)

    def _documents(self, relative: str) -> list[tuple[str, str, int]]:
        from phoebe_cli.repo.yamlio import YamlError, load_documents

        if relative not in self.documents:
            found = []
            if relative.endswith((".yaml", ".yml")):
                try:
                    for document in load_documents(self.model.root / relative):
                        data = document.data
                        if isinstance(data, dict):
                            meta = data.get("metadata") or {}
                            name = str(meta.get("name") or "") if isinstance(meta, dict) else ""
                            found.append((str(data.get("kind") or ""), name, document.line))
                except YamlError:
                    pass
            self.documents[relative] = found
        return self.documents[relative]


def _cycles(edges: dict[ObjectRef, list[ObjectRef]]) -> list[list[ObjectRef]]:
    """Every elementary cycle once (small graphs: depth-first search from each node)."""
    found: list[list[ObjectRef]] = []
    seen: set[frozenset[ObjectRef]] = set()

    def visit(start: ObjectRef, node: ObjectRef, path: list[ObjectRef]) -> None:
        for nxt in edges.get(node, []):
            if nxt == start:
                key = frozenset(path)
                if key not in seen:
                    seen.add(key)
                    found.append([*path, start])
            elif nxt not in path and nxt in edges:
                visit(start, nxt, [*path, nxt])

    for node in sorted(edges, key=str):
        visit(node, node, [node])
    return found


def findings(
    model: RepoModel, *, all_yaml: Iterable[Path] | None = None, use_cache: bool = True, strict: bool = False
) -> list[Finding]:
    """Every finding about the model's checkout. ``all_yaml``: the files whose syntax is checked
    (default: every YAML file of the checkout). Severity follows Flux: what kustomize-controller
    accepts is at most a warning, unless ``strict``."""
    files = model.files if all_yaml is None else all_yaml
    return sorted(
        _findings(model, files, use_cache, strict), key=lambda f: (f.severity != ERROR, str(f.file or ""), f.line or 0)
    )


class _KnownGood:
    """Files that parsed, by size and modification time: a warm run reads only what changed."""

    def __init__(self, root: Path) -> None:
        import hashlib

        from phoebe_cli.repo.cache import read_cached

        self.key = hashlib.sha256(f"yaml-syntax/{root}".encode()).hexdigest()
        cached = read_cached(self.key)
        self.files: dict[str, list[int]] = cached if isinstance(cached, dict) else {}
        self.changed = False

    @staticmethod
    def _stamp(path: Path) -> list[int]:
        stat = path.stat()
        return [stat.st_size, stat.st_mtime_ns]

    def unchanged(self, path: Path) -> bool:
        try:
            return self.files.get(str(path)) == self._stamp(path)
        except OSError:
            return False

    def add(self, path: Path) -> None:
        try:
            self.files[str(path)] = self._stamp(path)
            self.changed = True
        except OSError:
            pass

    def save(self) -> None:
        from phoebe_cli.repo.cache import write_cached

        if self.changed:
            write_cached(self.key, self.files)


def _read_by_flux(model: RepoModel) -> set[Path]:
    """The files some build reads (or the roots come from): Flux parses these, and no others."""
    read = {model.root / f for k in model.kustomizations.values() if k.output is not None for f in k.output.files}
    read.update(model.root / d.origin.path for d in model.objects.values() if d.origin.path is not None)
    return read


def _yaml_finding(model: RepoModel, error: YamlError, read: set[Path], strict: bool) -> Finding:
    """YAML Go rejects is an error where Flux reads the file; elsewhere Flux never sees it."""
    relative = error.path.relative_to(model.root)
    if error.path in read:
        return Finding(ERROR, "yaml", error.message, relative, error.line)
    message = f"{error.message} (no Flux Kustomization reads this file)"
    return Finding(ERROR if strict else WARNING, "yaml", message, relative, error.line)


def _findings(model: RepoModel, all_yaml: Iterable[Path], use_cache: bool, strict: bool) -> Iterator[Finding]:
    from phoebe_cli.repo.yamlio import YamlError, check_syntax

    where = _Where(model)
    read = _read_by_flux(model)
    for error in model.yaml_errors:
        # A file with Flux objects in it that does not parse: with no roots at all, it must be theirs.
        yield _yaml_finding(model, error, read if model.roots else {error.path}, strict)
    reported = {error.path.resolve() for error in model.yaml_errors}
    known_good = _KnownGood(model.root) if use_cache else None
    for path in all_yaml:
        if path.resolve() in reported or (known_good is not None and known_good.unchanged(path)):
            continue
        try:
            check_syntax(path)
        except YamlError as error:
            yield _yaml_finding(model, error, read, strict)
        else:
            if known_good is not None:
                known_good.add(path)
    if known_good is not None:
        known_good.save()

    objects = model.objects
    yield from _build_findings(model, strict, where)

    # references between Flux objects
    edges: dict[ObjectRef, list[ObjectRef]] = {}
    for ref, declared in objects.items():
        spec = declared.obj.get("spec") or {}
        if declared.kind not in (KUSTOMIZATION, HELM_RELEASE):
            continue
        deps = []
        for dep in spec.get("dependsOn") or []:
            if not isinstance(dep, dict) or not dep.get("name"):
                continue
            target = ObjectRef(ref.kind, str(dep.get("namespace") or ref.namespace), str(dep["name"]))
            deps.append(target)
            if target not in objects:
                file, line = where(declared)
                yield Finding(
                    ERROR, "dependency", f"{ref} depends on {target}, which no Kustomization declares", file, line, ref
                )
        edges[ref] = deps
        yield from _source_findings(model, declared, where)
    for cycle in _cycles(edges):
        first = objects[cycle[0]]
        file, line = where(first)
        chain = " → ".join(f"{r.namespace}/{r.name}" for r in cycle)
        yield Finding(ERROR, "cycle", f"dependency cycle: {chain}", file, line, cycle[0])

    yield from _overlap_findings(model, strict, where)
    yield from _ignore_findings(model, where)


def _ignore_findings(model: RepoModel, where: _Where) -> Iterator[Finding]:
    """Ignore patterns source-controller silently never matches (a bad glob, `a/b**` ...)."""
    for directory, spec_ignore, problem in model.ignore_problems:
        if problem.file == "spec.ignore":
            sources = [d for d in model.objects.values() if (d.obj.get("spec") or {}).get("ignore") == spec_ignore]
            file, line = where(sources[0]) if sources else (None, None)
            subject = f"{sources[0].ref} spec.ignore" if sources else "spec.ignore"
            yield Finding(WARNING, "ignore", f"{subject} line {problem.line}: {problem.message}", file, line)
            continue
        path = directory / problem.file
        relative = path.relative_to(model.root) if path.is_relative_to(model.root) else path
        yield Finding(WARNING, "ignore", problem.message, relative, problem.line or None)


def _overlap_findings(model: RepoModel, strict: bool, where: _Where) -> Iterator[Finding]:
    """An object more than one Kustomization applies: Flux applies it from each, and its ownership
    labels flip between them — a smell, not a failure."""
    by_subject = {_inventory_subject(d): d for d in model.objects.values()} if model.overlaps else {}
    for object_id, owners in model.overlaps:
        subject = _subject(object_id)
        appliers = ", ".join(str(o) for o in owners)
        declared = by_subject.get(subject)
        file, line = where(declared)
        yield Finding(
            ERROR if strict else WARNING,
            "overlap",
            f"{subject} is applied by {len(owners)} Kustomizations: {appliers} (its ownership flips between them)",
            file,
            line,
            declared.ref if declared is not None else None,
        )


def _subject(object_id: str) -> str:
    from phoebe_cli.flux.inventory import parse_inventory_id

    try:
        return parse_inventory_id(object_id, "v1").subject
    except ValueError:
        return object_id


def _inventory_subject(declared: DeclaredObject) -> str:
    ref = declared.ref
    return f"{ref.kind}/{ref.namespace}/{ref.name}" if ref.namespace else f"{ref.kind}/{ref.name}"


def _build_findings(model: RepoModel, strict: bool, where: _Where) -> Iterator[Finding]:
    objects = model.objects
    for ref, built in model.kustomizations.items():
        obj = objects.get(ref)
        if built.state == BuildState.BUILT and not (built.unresolved or built.unknown_sources or built.unknown_scope):
            continue
        # Finding the declaring file means reading the parent's files: only when a finding needs it.
        file, line = where(obj) if built.state != BuildState.BUILT else (None, None)
        unset_failed = built.state == BuildState.FAILED and "variable not set (strict mode)" in built.message
        if built.state == BuildState.FAILED and not unset_failed:
            if built.message.startswith("kustomization path not found"):
                code = "path"
            elif built.message.endswith("namespace not specified"):
                code = "namespace"
            else:
                code = "build"
            yield Finding(ERROR, code, f"{ref}: {built.message}", file, line, ref)
        elif built.state == BuildState.PARTIAL:
            yield Finding(WARNING, "remote", f"{ref}: {built.message}", file, line, ref)
        elif built.state == BuildState.NOT_IN_CHECKOUT and _source_declared(model, built.obj):
            yield Finding(
                WARNING, "source", f"{ref}: {built.message} (map it with --source NAME=PATH)", file, line, ref
            )
        yield from _unknown_source_findings(model, built, where)
        if built.unknown_scope:
            listed = ", ".join(built.unknown_scope[:3]) + (" ..." if len(built.unknown_scope) > 3 else "")
            yield Finding(
                ERROR if strict else WARNING,
                "namespace",
                f"{ref}: {listed} has no namespace, and no CustomResourceDefinition in the checkout says whether "
                "its kind is namespaced (if it is, kustomize-controller refuses the apply)",
                file if file else where(obj)[0],
                line if file else where(obj)[1],
                ref,
            )
        if not built.unresolved:
            continue
        severity = ERROR if strict or model.strict_substitution else WARNING
        consequence = (
            f"the build fails ({model.strict_reason or 'StrictPostBuildSubstitutions'})"
            if model.strict_substitution
            else 'Flux substitutes ""'
        )
        for object_id, names in sorted(built.unresolved.items()):
            for name in names:
                used = _variable_use(model, built, name)
                use_file, use_line = used if used is not None else (file, line) if file else where(obj)
                yield Finding(
                    severity,
                    "unset",
                    f"{ref}: ${{{name}}} is not set and has no default: {consequence} in {_subject(object_id)}",
                    use_file,
                    use_line,
                    ref,
                )


def _unknown_source_findings(model: RepoModel, built: DeclaredKustomization, where: _Where) -> Iterator[Finding]:
    """substituteFrom a ConfigMap or Secret the checkout does not declare: made outside it (at
    bootstrap, by an ExternalSecret); Flux fails only if the cluster lacks it, which offline no
    one can tell. Its variables are unknown: left as written."""
    from phoebe_cli.repo.substitute import SubstitutionError, variable_sources

    try:
        optional = {f"{s.kind}/{s.name}": s.optional for s in variable_sources(built.obj)}
    except SubstitutionError:
        return
    for source in dict.fromkeys(built.unknown_sources):
        if optional.get(source, True):
            continue
        maker = _external_secret_making(model, built.ref.namespace, source)
        made = f" ({maker} makes it)" if maker else ""
        file, line = where(model.objects.get(built.ref))
        yield Finding(
            WARNING,
            "variables",
            f"{built.ref}: substituteFrom {source} is not in the checkout{made}: its variables are unknown offline, "
            "left as written (Flux fails if the cluster lacks it)",
            file,
            line,
            built.ref,
        )


def _external_secret_making(model: RepoModel, namespace: str, source: str) -> ObjectRef | None:
    kind, _, name = source.partition("/")
    if kind != "Secret":
        return None
    for ref, declared in model.objects.items():
        if ref.kind == "ExternalSecret" and ref.namespace == namespace:
            target = ((declared.obj.get("spec") or {}).get("target") or {}).get("name") or ref.name
            if target == name:
                return ref
    return None


def _variable_use(model: RepoModel, built: DeclaredKustomization, name: str) -> tuple[Path, int] | None:
    """The first file and line, among those the Kustomization's build reads, that use ${name}
    (not the $${name} escape); else the file that declares the Kustomization, when its own spec
    (a patch) uses it."""
    import re

    pattern = re.compile(r"(?<!\$)\$\{#?" + re.escape(name) + r"(?![A-Za-z0-9_])")
    files = sorted(built.output.files) if built.output is not None else []
    for relative in files:
        try:
            text = (model.root / relative).read_text(errors="replace")
        except OSError:
            continue
        match = pattern.search(text)
        if match is not None:
            return Path(relative), text.count("\n", 0, match.start()) + 1
    return None


def _source_ref(kustomization: dict[str, Any]) -> ObjectRef | None:
    namespace = str((kustomization.get("metadata") or {}).get("namespace") or "")
    return _reference((kustomization.get("spec") or {}).get("sourceRef"), "", namespace)


def _checkout_sources(model: RepoModel) -> set[ObjectRef]:
    """The sources the roots read: this checkout. They may be made outside it (bootstrap,
    a FluxInstance's sync), so they are never reported missing."""
    sources = (_source_ref(model.kustomizations[ref].obj) for ref in model.roots if ref in model.kustomizations)
    return {ref for ref in sources if ref is not None}


def _source_declared(model: RepoModel, kustomization: dict[str, Any]) -> bool:
    """Whether a Kustomization's source is declared (else the "declared nowhere" error says it)."""
    ref = _source_ref(kustomization)
    return ref is None or ref in model.objects or ref in _checkout_sources(model)


def _reference(entry: Any, default_kind: str, namespace: str) -> ObjectRef | None:
    """A sourceRef or chartRef as the object it names (its namespace defaults to ``namespace``)."""
    if not isinstance(entry, dict) or not entry.get("name"):
        return None
    return ObjectRef(str(entry.get("kind", default_kind)), str(entry.get("namespace") or namespace), str(entry["name"]))


def _source_findings(model: RepoModel, declared: DeclaredObject, where: _Where) -> Iterator[Finding]:
    ref = declared.ref
    spec = declared.obj.get("spec") or {}
    if declared.kind is KUSTOMIZATION:
        named = [("source", _reference(spec.get("sourceRef"), "", ref.namespace))]
    else:
        chart = (spec.get("chart") or {}).get("spec") or {}
        named = [
            ("chart source", _reference(chart.get("sourceRef"), "HelmRepository", ref.namespace)),
            ("chartRef", _reference(spec.get("chartRef"), "OCIRepository", ref.namespace)),
        ]
    wanted = [(what, target) for what, target in named if target is not None]
    for what, target in wanted:
        if target in model.objects or target in _checkout_sources(model):
            continue
        if target.kind not in SOURCE_KINDS:
            continue
        file, line = where(declared)
        code = "chart-source" if declared.kind is HELM_RELEASE else "source"
        yield Finding(ERROR, code, f"{ref}: its {what} {target} is declared nowhere in the repository", file, line, ref)
