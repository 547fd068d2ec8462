"""The desired state of a checkout, read the way Flux reads it.

From the root Flux Kustomizations (the files under ``kubernetes/flux/``, or ``--root-file``) every
Kustomization is built like kustomize-controller builds it (``builder``), its objects are
post-processed like the controller does (SOPS data masked — never decrypted —, ``postBuild``
substitution, ``commonMetadata``), and the Flux Kustomizations a build yields are built in turn,
wave by wave, in parallel. One Kustomization that cannot be built (a remote base offline, a
broken path) never stops the others: it is reported with its reason.

Variables for ``substituteFrom`` come from the ConfigMaps and Secrets the model itself builds
(in the Kustomization's namespace); values of SOPS-encrypted Secrets are unknown offline, so
their variables are left as they are written.
"""

from __future__ import annotations

import base64
import re
import subprocess
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from phoebe_cli.errors import UsageError
from phoebe_cli.flux.inventory import ObjectKey
from phoebe_cli.flux.inventory import inventory_id as key_inventory_id
from phoebe_cli.flux.kinds import ALL_KINDS, KUSTOMIZATION, FluxKind, kind_of
from phoebe_cli.flux.objects import ObjectRef
from phoebe_cli.flux.secrets import SOPS_MARK, data_of, mask_secret
from phoebe_cli.repo import substitute
from phoebe_cli.repo.builder import Builder, BuildOutput
from phoebe_cli.repo.cache import read_cached, write_cached
from phoebe_cli.repo.digests import keep_key, key_id, secret_digests
from phoebe_cli.repo.discovery import checkout_files, find_roots, find_roots_cached, is_flux_kustomization
from phoebe_cli.repo.kustomize import Kustomize
from phoebe_cli.repo.scan import Artifact, Scanner
from phoebe_cli.repo.sourceignore import IgnoreProblem
from phoebe_cli.repo.yamlio import Document, YamlError, load_documents

CLUSTER_SCOPED = frozenset(
    {
        "Namespace",
        "CustomResourceDefinition",
        "ClusterRole",
        "ClusterRoleBinding",
        "ClusterSecretStore",
        "ClusterIssuer",
        "StorageClass",
        "PriorityClass",
        "PersistentVolume",
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
        "APIService",
        "ClusterExternalSecret",
        "IngressClass",
        "RuntimeClass",
        "CSIDriver",
        "VolumeSnapshotClass",
        "ClusterPolicy",
        "CiliumLoadBalancerIPPool",
        "CiliumL2AnnouncementPolicy",
        "CiliumClusterwideNetworkPolicy",
        "Node",
        "GatewayClass",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "MutatingAdmissionPolicy",
        "MutatingAdmissionPolicyBinding",
        "VolumeSnapshotContent",
        "CSINode",
        "CiliumBGPAdvertisement",
        "CiliumBGPPeerConfig",
        "CiliumBGPClusterConfig",
        "CiliumBGPNodeConfig",
        "CiliumBGPNodeConfigOverride",
        "CiliumBGPPeeringPolicy",
        "CiliumEgressGatewayPolicy",
        "CiliumNode",
        "CiliumIdentity",
        "NodeFeatureRule",
        "DeviceClass",
        "VolumeAttributesClass",
        "ClusterPolicyReport",
        "ClusterGenerator",
        "ClusterPushSecret",
        "ClusterComplianceReport",
        "ClusterTask",
        "FlowSchema",
        "PriorityLevelConfiguration",
    }
)
NAMESPACED = frozenset(
    {
        "ConfigMap",
        "Secret",
        "Service",
        "ServiceAccount",
        "Endpoints",
        "EndpointSlice",
        "Pod",
        "PodTemplate",
        "ReplicationController",
        "PersistentVolumeClaim",
        "LimitRange",
        "ResourceQuota",
        "Event",
        "Deployment",
        "StatefulSet",
        "DaemonSet",
        "ReplicaSet",
        "ControllerRevision",
        "Job",
        "CronJob",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "Ingress",
        "NetworkPolicy",
        "Role",
        "RoleBinding",
        "Lease",
        "CSIStorageCapacity",
        "ExternalSecret",
        "SecretStore",
        "PushSecret",
        "Certificate",
        "CertificateRequest",
        "Issuer",
        "ServiceMonitor",
        "PodMonitor",
        "PrometheusRule",
        "Probe",
        "HTTPRoute",
        "GRPCRoute",
        "TCPRoute",
        "TLSRoute",
        "UDPRoute",
        "Gateway",
        "ReferenceGrant",
        "CiliumNetworkPolicy",
        "VolumeSnapshot",
        "ReplicationSource",
        "ReplicationDestination",
        "DNSEndpoint",
        "ScheduledBackup",
    }
)


class BuildState:
    BUILT = "built"
    PARTIAL = "partial"  # remote resources left out offline; everything local is known
    FAILED = "failed"
    NOT_IN_CHECKOUT = "not-in-checkout"  # its source is not this checkout (and not mapped)


@dataclass
class Origin:
    path: Path | None  # the file that declares it (roots), relative to the repository
    line: int | None
    parent: ObjectRef | None  # the Kustomization whose build yields it


@dataclass
class DeclaredKustomization:
    ref: ObjectRef
    obj: dict[str, Any]  # as the cluster would get it: parents' patches and substitution applied
    origin: Origin
    state: str = BuildState.BUILT
    message: str = ""
    output: BuildOutput | None = None
    objects: list[dict[str, Any]] = field(default_factory=list)  # post-processed, as applied
    unresolved: dict[str, list[str]] = field(default_factory=dict)  # object id -> ${VARS} left
    # objects without a namespace whose kind phoebe cannot place (Kind/name): namespaced or not?
    unknown_scope: list[str] = field(default_factory=list)
    # substituteFrom sources (Kind/name) the checkout does not declare: made outside it (at
    # bootstrap, by an ExternalSecret ...); offline their variables are unknown
    unknown_sources: list[str] = field(default_factory=list)
    # postBuild variables, and whether substitution runs: in memory only (they may hold Secret values)
    variables: dict[str, str] = field(default_factory=dict, repr=False)
    substitutes: bool = False
    # object id -> key -> keyed digest of the value (repo.digests), for Secrets that are not
    # encrypted: lets a diff tell a changed value from an unchanged one without the model holding
    # (or anyone printing) it
    secret_digests: dict[str, dict[str, str]] = field(default_factory=dict)
    # Values from cluster Secrets (diff against a cluster: substituteFrom read there), never
    # written to the cache: whether this Kustomization itself was substituted with one by its
    # parent (then its build, variables and objects all count as such), and the ids of its objects
    # whose substitution used one
    from_secret: bool = False
    secret_objects: set[str] = field(default_factory=set, repr=False)
    source_dir: Path | None = None  # the checkout (or mapped directory) it builds from

    @property
    def spec(self) -> dict[str, Any]:
        return self.obj.get("spec") or {}

    @property
    def path(self) -> str:
        return str(self.spec.get("path") or "./")


@dataclass
class DeclaredObject:
    """A Flux object (or ExternalSecret) some build yields."""

    kind: FluxKind
    ref: ObjectRef
    obj: dict[str, Any]
    declared_by: ObjectRef | None  # None for the roots read from files
    origin: Origin


@dataclass
class RepoModel:
    root: Path
    revision: str | None  # the checkout's HEAD, when it is a Git repository
    roots: list[ObjectRef]
    kustomizations: dict[ObjectRef, DeclaredKustomization]
    objects: dict[ObjectRef, DeclaredObject]
    yaml_errors: list[YamlError]
    # Objects more than one Kustomization applies (Flux applies both; ownership flips between
    # them): (the object's inventory id, the Kustomizations applying it).
    overlaps: list[tuple[str, list[ObjectRef]]]
    kustomize_runs: int
    cached_builds: int
    files: list[Path] = field(default_factory=list)  # the checkout's YAML files
    cluster: str | None = None  # the cluster read, when the checkout holds several (or names one)
    clusters: list[str] = field(default_factory=list)
    strict_substitution: bool = False  # StrictPostBuildSubstitutions: unset variables fail the build
    strict_reason: str = ""  # what says so (or that it is off): a file of the checkout, the cluster
    # patterns of .sourceignore files and spec.ignore Flux never matches:
    # (the source's directory, its spec.ignore, the problem)
    ignore_problems: list[tuple[Path, str | None, IgnoreProblem]] = field(default_factory=list)


def git_root(start: Path) -> Path:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"], cwd=start, capture_output=True, text=True, check=False
        )
    except OSError:
        done = None
    if done is None or done.returncode != 0:
        raise UsageError(f"{start} is not in a Git repository: say where the checkout is (a PATH)")
    return Path(done.stdout.strip())


def git_revision(root: Path) -> str | None:
    """``<branch>@sha1:<hex>`` of the checkout's HEAD (``sha1:<hex>`` when detached), from one git run."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD", "--abbrev-ref", "HEAD"], cwd=root, capture_output=True, text=True, check=False
        )
    except OSError:
        return None
    lines = done.stdout.split()
    if done.returncode != 0 or len(lines) != 2:
        return None
    sha, name = lines
    return f"{name}@sha1:{sha}" if name != "HEAD" else f"sha1:{sha}"


def regular_files(root: Path, files: Iterable[Path]) -> list[Path]:
    """The files that are regular files of the checkout: not a symlink, and not below one (Git
    tracks a symlink as a file; its target may be anywhere, and is never read)."""
    import os
    import stat

    real_dirs: dict[Path, bool] = {root: True}

    def real_dir(directory: Path) -> bool:
        if directory not in real_dirs:
            try:
                is_dir = stat.S_ISDIR(os.lstat(directory).st_mode)
            except OSError:
                is_dir = False
            real_dirs[directory] = is_dir and directory.parent != directory and real_dir(directory.parent)
        return real_dirs[directory]

    kept = []
    for path in files:
        try:
            regular = stat.S_ISREG(os.lstat(path).st_mode)
        except OSError:
            continue
        if regular and path.is_relative_to(root) and real_dir(path.parent):
            kept.append(path)
    return kept


def root_documents(root: Path, explicit: Iterable[Path]) -> tuple[list[Document], list[YamlError]]:
    """The Flux objects of the files named with --root-file."""
    files = [p if p.is_absolute() else root / p for p in explicit]
    documents: list[Document] = []
    errors: list[YamlError] = []
    for path in files:
        if not path.exists():
            raise UsageError(f"--root-file {path}: no such file")
        try:
            documents.extend(d for d in load_documents(path) if isinstance(d.data, dict) and _flux_kind(d.data))
        except YamlError as error:
            errors.append(error)
    if not any(is_flux_kustomization(d.data) for d in documents) and not errors:
        raise UsageError(f"no Flux Kustomization in {', '.join(str(f) for f in files)} (--root-file)")
    return documents, errors


def object_ref(obj: Mapping[str, Any], default_namespace: str) -> ObjectRef:
    meta = obj.get("metadata") or {}
    namespace = "" if obj.get("kind") in CLUSTER_SCOPED else str(meta.get("namespace") or default_namespace)
    return ObjectRef(str(obj.get("kind", "")), namespace, str(meta.get("name", "")))


def inventory_id(obj: Mapping[str, Any], default_namespace: str) -> str:
    """kustomize-controller's inventory id of a built object (its namespace defaulted)."""
    ref = object_ref(obj, default_namespace)
    return key_inventory_id(ObjectKey(str(obj.get("apiVersion", "")), ref.kind, ref.namespace or None, ref.name))


def _is_sops(obj: Mapping[str, Any]) -> bool:
    return isinstance(obj.get("sops"), dict)


def _common_metadata(obj: dict[str, Any], spec: Mapping[str, Any]) -> dict[str, Any]:
    common = spec.get("commonMetadata") or {}
    if not common:
        return obj
    meta = dict(obj.get("metadata") or {})
    for key in ("labels", "annotations"):
        if common.get(key):
            meta[key] = {**(meta.get(key) or {}), **common[key]}
    return {**obj, "metadata": meta}


class _VariableIndex:
    """ConfigMaps and Secrets the model builds, by (namespace, name), for substituteFrom."""

    def __init__(self) -> None:
        self.configmaps: dict[tuple[str, str], dict[str, str]] = {}
        self.secrets: dict[tuple[str, str], dict[str, str]] = {}

    def add(self, objects: Iterable[dict[str, Any]], default_namespace: str) -> None:
        for obj in objects:
            kind = obj.get("kind")
            if kind not in ("ConfigMap", "Secret"):
                continue
            ref = object_ref(obj, default_namespace)
            if kind == "ConfigMap":
                self.configmaps[(ref.namespace, ref.name)] = {k: str(v) for k, v in data_of(obj).items()}
            elif _is_sops(obj) or _is_masked_sops(obj):
                # Encrypted values are unknown offline: each variable stands for itself.
                keys = list(data_of(obj)) + list(data_of(obj, "stringData"))
                self.secrets[(ref.namespace, ref.name)] = {k: "${" + k + "}" for k in keys}
            else:
                values = {k: _b64(v) for k, v in data_of(obj).items()}
                values.update({k: str(v) for k, v in data_of(obj, "stringData").items()})
                self.secrets[(ref.namespace, ref.name)] = values

    def lookup(self, namespace: str) -> Any:
        def find(kind: str, name: str) -> Mapping[str, str] | None:
            table = self.configmaps if kind == "ConfigMap" else self.secrets
            return table.get((namespace, name))

        return find


def _b64(value: Any) -> str:
    try:
        return base64.b64decode(str(value)).decode(errors="replace")
    except (ValueError, TypeError):
        return str(value)


VariableLookup = Callable[[str, str], Mapping[str, str] | None]  # (kind, name) -> data, in one namespace


@dataclass(frozen=True)
class ModelOptions:
    roots: tuple[Path, ...] = ()
    sources: Mapping[str, Path] = field(default_factory=dict)  # NAME or KIND/NAMESPACE/NAME -> directory
    use_cache: bool = True
    allow_remote: bool = False
    workers: int = 4
    cluster: str | None = None  # which cluster, when the checkout holds several (--cluster)
    # StrictPostBuildSubstitutions: None finds out from the checkout (a feature gate set anywhere in it)
    strict_substitution: bool | None = None
    # Where substituteFrom is read: by default the ConfigMaps and Secrets the checkout's builds
    # hold; given, namespace -> lookup (the cluster's, as kustomize-controller reads them).
    variables: Callable[[str], VariableLookup] | None = None


def load_model(root: Path, options: ModelOptions | None = None, tool: Kustomize | None = None) -> RepoModel:
    """Read the checkout at ``root`` into a model (see the module docstring)."""
    return _ModelLoader(root.resolve(), options or ModelOptions(), tool).load()


class _ModelLoader:
    def __init__(self, root: Path, options: ModelOptions, tool: Kustomize | None) -> None:
        self.root = root
        self.options = options
        self.tool = tool
        self.builders: dict[tuple[Path, str | None], Builder] = {}
        self.scanners: dict[tuple[Path, str | None], Scanner] = {}
        # problems of the ignore rules: (the source directory, its spec.ignore, the problem)
        self.ignore_problems: list[tuple[Path, str | None, IgnoreProblem]] = []
        self.spec_ignore: str | None = None  # the roots' source's
        self.builders_lock = threading.Lock()
        # (source directory, its spec.ignore, build key) -> output, this run
        self.built: dict[tuple[Path, str, str], BuildOutput] = {}
        self.scopes = _Scopes()
        self.kustomizations: dict[ObjectRef, DeclaredKustomization] = {}
        self.objects: dict[ObjectRef, DeclaredObject] = {}
        self.applied_by: dict[str, list[ObjectRef]] = {}  # inventory id -> the Kustomizations applying it
        self.strict_substitution = False
        self.strict_reason = ""
        self.index = _VariableIndex()
        self.variables: _VariableIndex | _ExternalVariables = (
            self.index if options.variables is None else _ExternalVariables(options.variables)
        )
        self.checkout_sources: set[tuple[str, str, str]] = set()  # the roots' sources: this checkout
        self._checkout_urls: set[str] | None = None  # normalised URLs of this repository, when asked

    def builder_for(self, directory: Path, spec_ignore: str | None = None) -> Builder:
        """The builder of one source artifact: a directory, filtered by a source's spec.ignore."""
        with self.builders_lock:  # called from the pool's threads
            key = (directory, spec_ignore)
            if key not in self.builders:
                self.builders[key] = Builder(
                    directory,
                    self.tool,
                    use_cache=self.options.use_cache,
                    allow_remote=self.options.allow_remote,
                    scanner=self._scanner_for(directory, spec_ignore),
                )
            return self.builders[key]

    def _scanner_for(self, directory: Path, spec_ignore: str | None) -> Scanner:
        key = (directory, spec_ignore)
        if key not in self.scanners:
            artifact, problems = Artifact.of(directory, spec_ignore)
            self.scanners[key] = Scanner(directory, artifact)
            self.ignore_problems.extend((directory, spec_ignore, p) for p in problems)
        return self.scanners[key]

    def load(self) -> RepoModel:
        listed = checkout_files(self.root)
        files = regular_files(self.root, listed.yaml)  # a symlink is never read (nor in an artifact)
        cluster, clusters = None, []
        if self.options.roots:
            documents, yaml_errors = root_documents(self.root, self.options.roots)
        else:
            scanner_for = lambda spec_ignore: self._scanner_for(self.root, spec_ignore)  # noqa: E731
            if self.options.use_cache:
                found = find_roots_cached(
                    self.root, files, ignore_files=listed.ignore, scanner_for=scanner_for, cluster=self.options.cluster
                )
            else:
                found = find_roots(self.root, files, scanner_for=scanner_for, cluster=self.options.cluster)
            documents, yaml_errors = found.documents, found.yaml_errors
            cluster, clusters = found.cluster, found.clusters
            self.spec_ignore = found.spec_ignore
        if self.options.strict_substitution is not None:
            self.strict_substitution, self.strict_reason = self.options.strict_substitution, "the cluster"
        else:
            strict, why = strict_substitution_in(self.root, files)
            self.strict_substitution, self.strict_reason = bool(strict), why
        self.tool = self.tool or Kustomize.find(remember=self.options.use_cache)
        for builder in self.builders.values():
            builder.tool = self.tool  # the checkout's own, made before kustomize was looked for
        roots: list[ObjectRef] = []
        wave: list[DeclaredKustomization] = []
        for document in documents:
            obj = document.data
            ref = object_ref(obj, "flux-system")
            origin = Origin(document.path.relative_to(self.root), document.line, None)
            kind = _flux_kind(obj)
            assert kind is not None
            self.objects[ref] = DeclaredObject(kind, ref, obj, None, origin)
            if is_flux_kustomization(obj):
                root_ks = DeclaredKustomization(ref, obj, origin)
                self.kustomizations[ref] = root_ks
                roots.append(ref)
                wave.append(root_ks)
        self.checkout_sources = {_source_key(k.obj) for k in wave}
        with ThreadPoolExecutor(max(1, self.options.workers)) as pool:
            while wave:
                wave = self._build_wave(pool, wave)
        overlaps = [(subject, owners) for subject, owners in self.applied_by.items() if len(owners) > 1]
        return RepoModel(
            root=self.root,
            revision=git_revision(self.root),
            roots=roots,
            kustomizations=self.kustomizations,
            objects=self.objects,
            yaml_errors=yaml_errors,
            overlaps=overlaps,
            kustomize_runs=sum(b.kustomize_runs for b in self.builders.values()),
            cached_builds=sum(1 for k in self.kustomizations.values() if k.output is not None and k.output.cached),
            files=files,
            cluster=cluster,
            clusters=clusters,
            strict_substitution=self.strict_substitution,
            strict_reason=self.strict_reason,
            ignore_problems=_unique_problems(self.ignore_problems),
        )

    def _build_wave(self, pool: ThreadPoolExecutor, wave: list[DeclaredKustomization]) -> list[DeclaredKustomization]:
        """Build one generation of Kustomizations in parallel; return the children they yield."""
        for declared in wave:
            declared.source_dir = self._source_dir(declared)
            if declared.source_dir is None:
                declared.state = BuildState.NOT_IN_CHECKOUT
                source = declared.spec.get("sourceRef") or {}
                declared.message = f"its source {source.get('kind')}/{source.get('name')} is not in this checkout"
        buildable = [d for d in wave if d.source_dir is not None]
        # Cache hits in this thread (Python work: threads would only contend for the GIL);
        # the kustomize runs in the pool, once for Kustomizations whose kustomize inputs are the
        # same (a shared component's child in every app: only their substitution differs).
        planned = [self._builder(d).without_kustomize(d.spec, secret=d.from_secret) for d in buildable]
        runs: dict[tuple[Path, str, str], DeclaredKustomization] = {}
        secret_runs: set[tuple[Path, str, str]] = set()  # a cluster Secret's values in the spec: never cached
        for declared, (output, key) in zip(buildable, planned, strict=True):
            build_key = (self._builder(declared).root, str(self._spec_ignore(declared)), key)
            if output is None and build_key not in self.built:
                runs.setdefault(build_key, declared)
                if declared.from_secret:
                    secret_runs.add(build_key)
        build = lambda item: self._build(item[1], secret=item[0] in secret_runs)  # noqa: E731
        for build_key, output in zip(runs, pool.map(build, runs.items()), strict=True):
            self.built[build_key] = output
        outputs = [
            output
            if output is not None
            else self.built[(self._builder(declared).root, str(self._spec_ignore(declared)), key)]
            for declared, (output, key) in zip(buildable, planned, strict=True)
        ]
        for declared, output in zip(buildable, outputs, strict=True):
            declared.output = output
            if output.error is not None:
                declared.state, declared.message = BuildState.FAILED, output.error
            elif output.remote:
                declared.state = BuildState.PARTIAL
                declared.message = "remote resource, not built offline: " + ", ".join(output.remote)
            self.index.add(output.objects, declared.ref.namespace)
        for output in outputs:
            self.scopes.learn(output.objects)
        children: list[DeclaredKustomization] = []
        for declared in buildable:
            _post_process(declared, self.variables, strict=self.strict_substitution)
            _check_namespaces(declared, self.scopes)
            # substituteFrom reads what is applied (substituted), not what was built
            self.index.add(as_applied(declared), declared.ref.namespace)
            children.extend(self._record(declared))
        return children

    def _builder(self, declared: DeclaredKustomization) -> Builder:
        assert declared.source_dir is not None
        return self.builder_for(declared.source_dir, self._spec_ignore(declared))

    def _spec_ignore(self, declared: DeclaredKustomization) -> str | None:
        """The spec.ignore of the source a Kustomization reads (as declared, when it is)."""
        key = _source_key(declared.obj)
        source = self.objects.get(ObjectRef(*key))
        if source is not None:
            ignore = (source.obj.get("spec") or {}).get("ignore")
            return ignore if isinstance(ignore, str) else None
        return self.spec_ignore if key in self.checkout_sources else None

    def _build(self, declared: DeclaredKustomization, *, secret: bool = False) -> BuildOutput:
        return self._builder(declared).build(declared.spec, secret=secret)

    def _record(self, declared: DeclaredKustomization) -> list[DeclaredKustomization]:
        """Note what a build applies; new Flux Kustomizations among it are the next wave."""
        children = []
        for obj in declared.objects:
            owners = self.applied_by.setdefault(inventory_id(obj, declared.ref.namespace), [])
            if declared.ref not in owners:
                owners.append(declared.ref)
            kind = _flux_kind(obj)
            if kind is None:
                continue
            ref = object_ref(obj, declared.ref.namespace)
            if ref in self.objects:
                continue
            origin = Origin(None, None, declared.ref)
            self.objects[ref] = DeclaredObject(kind, ref, obj, declared.ref, origin)
            if kind is KUSTOMIZATION and ref not in self.kustomizations:
                child = DeclaredKustomization(ref, obj, origin)
                child.from_secret = declared.from_secret or (
                    inventory_id(obj, declared.ref.namespace) in declared.secret_objects
                )
                self.kustomizations[ref] = child
                children.append(child)
        return children

    def checkout_urls(self) -> set[str]:
        if self._checkout_urls is None:
            self._checkout_urls = _checkout_urls(self.root, list(self.objects.values()), self.checkout_sources)
        return self._checkout_urls

    def _source_dir(self, declared: DeclaredKustomization) -> Path | None:
        """Where a Kustomization's source lives: a directory mapped with --source; this checkout
        when it reads a root's source, or another source of this same repository (its URL);
        else nowhere (not in this checkout)."""
        key = _source_key(declared.obj)
        for name, directory in self.options.sources.items():
            if name in (key[2], f"{key[1]}/{key[2]}", f"{key[0]}/{key[1]}/{key[2]}"):
                return directory.resolve()
        if key in self.checkout_sources:
            return self.root
        source = self.objects.get(ObjectRef(*key))
        if source is not None and key[0] == "GitRepository":
            url = normalise_url(str((source.obj.get("spec") or {}).get("url") or ""))
            if url and url in self.checkout_urls():
                return self.root
        return None


def _flux_kind(obj: Mapping[str, Any]) -> FluxKind | None:
    api_version = str(obj.get("apiVersion", ""))
    group = api_version.split("/", 1)[0] if "/" in api_version else ""
    kind = kind_of(group, str(obj.get("kind", "")))
    return kind if kind in ALL_KINDS else None


def _source_key(obj: Mapping[str, Any]) -> tuple[str, str, str]:
    spec = obj.get("spec") or {}
    ref = spec.get("sourceRef") or {}
    namespace = str(ref.get("namespace") or (obj.get("metadata") or {}).get("namespace") or "")
    return (str(ref.get("kind", "")), namespace, str(ref.get("name", "")))


def _unique_problems(
    problems: list[tuple[Path, str | None, IgnoreProblem]],
) -> list[tuple[Path, str | None, IgnoreProblem]]:
    """Each problem once: a .sourceignore's under every spec.ignore it was read with, once."""
    seen: set[tuple[Path, str | None, IgnoreProblem]] = set()
    unique = []
    for directory, spec_ignore, problem in problems:
        key = (directory, spec_ignore if problem.file == "spec.ignore" else None, problem)
        if key not in seen:
            seen.add(key)
            unique.append((directory, spec_ignore, problem))
    return unique


def normalise_url(url: str) -> str:
    """A Git URL as host/path, so that the ssh, scp-like and https forms of one repository agree."""
    url = url.strip()
    if not url:
        return ""
    if "://" in url:
        url = url.split("://", 1)[1]
    elif ":" in url.split("/", 1)[0]:
        url = url.replace(":", "/", 1)  # git@github.com:owner/repo
    url = url.rpartition("@")[2] if "@" in url.split("/", 1)[0] else url
    host, _, path = url.partition("/")
    host = host.rpartition(":")[0] if host.count(":") == 1 and host.rpartition(":")[2].isdigit() else host
    path = path.strip("/").removesuffix(".git")
    return f"{host.lower()}/{path}"


def _checkout_urls(
    root: Path, declared: Iterable[DeclaredObject], checkout_sources: set[tuple[str, str, str]]
) -> set[str]:
    """The URLs that name this repository: the roots' own sources', and the checkout's Git remotes."""
    urls = set()
    for obj in declared:
        key = (obj.ref.kind, obj.ref.namespace, obj.ref.name)
        if key in checkout_sources:
            urls.add(normalise_url(str((obj.obj.get("spec") or {}).get("url") or "")))
    try:
        done = subprocess.run(["git", "remote", "-v"], cwd=root, capture_output=True, text=True, check=False)
    except OSError:
        done = None
    if done is not None and done.returncode == 0:
        for line in done.stdout.splitlines():
            fields = line.split()
            if len(fields) >= 2:
                urls.add(normalise_url(fields[1]))
    urls.discard("")
    return urls


_STRICT_GATE = re.compile(rb"StrictPostBuildSubstitutions\s*=\s*(1|t|T|true|True|TRUE|0|f|F|false|False|FALSE)\b")
_KC_IMAGE = re.compile(rb"kustomize-controller:v?(\d+)\.(\d+)")
NEWEST = (1, 99)  # "2.x": the newest Flux, whatever its minor
_FLUX_MINOR = re.compile(r"^[\s~^>=v]*2(?:\.(\d+|x|\*))?")


def strict_substitution_in(root: Path, files: Iterable[Path]) -> tuple[bool | None, str]:
    """Whether the kustomize-controller the checkout deploys fails a build on an unset variable,
    and why: the StrictPostBuildSubstitutions gate set anywhere in it (Deployment args, a patch of
    them, a FluxInstance's patches), else the default of the version it deploys (on since
    kustomize-controller v1.9 / Flux 2.9: gotk-components.yaml's image, a FluxInstance's
    distribution version). None when the checkout does not say."""
    from phoebe_cli.flux.installation import STRICT_SUBSTITUTION, strict_substitution

    gates: dict[str, bool] = {}
    version: tuple[int, int] | None = None
    why = version_why = ""
    for path in files:
        try:
            raw = path.read_bytes()
        except OSError:
            continue
        where = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
        gate = _STRICT_GATE.search(raw) if STRICT_SUBSTITUTION.encode() in raw else None
        if gate is not None and STRICT_SUBSTITUTION not in gates:
            gates[STRICT_SUBSTITUTION] = gate.group(1).decode() in ("1", "t", "T", "true", "True", "TRUE")
            state = "on" if gates[STRICT_SUBSTITUTION] else "off"
            why = f"{where} turns kustomize-controller's {STRICT_SUBSTITUTION} {state}"
        if version is None and b"kustomize-controller:" in raw and (image := _KC_IMAGE.search(raw)):
            version = (int(image.group(1)), int(image.group(2)))
            version_why = f"{where} deploys kustomize-controller v{version[0]}.{version[1]}"
        if version is None and b"distribution" in raw and (flux := _flux_distribution(path)) is not None:
            version, version_why = flux, f"{where} deploys Flux {'2.x' if flux == NEWEST else f'2.{flux[1]}'}"
    answer = strict_substitution(gates, version)
    if answer is not None and not why:
        why = version_why + (f" ({STRICT_SUBSTITUTION} on by default since v1.9)" if answer else "")
    return answer, why


def _flux_distribution(path: Path) -> tuple[int, int] | None:
    """The kustomize-controller (1, minor) of a FluxInstance's ``spec.distribution.version`` (or a
    flux-instance chart's ``instance.distribution.version``): Flux 2.N ships kustomize-controller
    1.N; "2.x" is the newest (strict by default)."""
    try:
        documents = load_documents(path)
    except YamlError:
        return None
    for document in documents:
        data = document.data
        if not isinstance(data, dict):
            continue
        spec = data.get("spec") or {}
        distribution = None
        if data.get("kind") == "FluxInstance" and isinstance(spec, dict):
            distribution = spec.get("distribution")
        elif data.get("kind") == "HelmRelease" and isinstance(spec, dict):
            distribution = ((spec.get("values") or {}).get("instance") or {}).get("distribution")
        if isinstance(distribution, dict) and isinstance(distribution.get("version"), str):
            match = _FLUX_MINOR.match(distribution["version"])
            if match is not None:
                minor = match.group(1)
                return (1, int(minor)) if minor and minor.isdigit() else NEWEST
    return None


class _ExternalVariables:
    def __init__(self, lookup_in: Callable[[str], VariableLookup]) -> None:
        self._lookup_in = lookup_in

    def lookup(self, namespace: str) -> VariableLookup:
        return self._lookup_in(namespace)


def _post_process(
    declared: DeclaredKustomization, index: _VariableIndex | _ExternalVariables, *, strict: bool = False
) -> None:
    """What the controller does to each built object: decryption (here: masking), postBuild
    substitution, commonMetadata. An unset variable without a default becomes "" as in Flux,
    and is noted (by the object's name after substitution); with ``strict`` (the
    StrictPostBuildSubstitutions feature gate) it fails the Kustomization, as it fails there."""
    output = declared.output
    if output is None:
        return
    spec = declared.spec
    post_build = spec.get("postBuild")
    collected = _variables(declared, index)
    if collected is None:
        return
    variables, from_secrets = collected
    always = post_build is not None and substitute.substitute_always(declared.obj)
    # A source the checkout does not declare holds variables on the cluster: substitution runs
    substitutes = post_build is not None and (bool(variables) or always or bool(declared.unknown_sources))
    declared.variables, declared.substitutes = variables, substitutes
    # Substituting is the costly part of a run whose builds all come from the cache: its result
    # is cached too, keyed by the build and everything the substitution reads — unless it holds
    # values from a cluster Secret: those are never written (nor hashed into a file name).
    secret = declared.from_secret or bool(from_secrets)
    cacheable = substitutes and bool(output.key) and not secret
    key = _post_process_key(declared, output, variables, strict) if cacheable else ""
    if key and _from_cache(declared, key):
        return
    processed = []
    failed = ""
    for built in output.objects:
        obj = built
        # What Flux silently replaces with "": referenced, set by nobody, no default. A SOPS object
        # is decrypted, then substituted like any other: offline its values stay encrypted (they
        # hold no ${...}), its name and labels are substituted.
        unset = substitute.unset_variables(obj, variables) if substitutes else []
        known = variables
        if unset and declared.unknown_sources:
            # They may come from the source not in the checkout: unknown, left as written.
            known, unset = {**variables, **{name: "${" + name + "}" for name in unset}}, []
        if post_build is not None:
            try:
                obj = substitute.substitute_object(obj, known, always=always or substitutes, strict=strict)
            except substitute.SubstitutionError as error:
                meta = obj.get("metadata") or {}
                failed = f"post build failed for '{obj.get('kind')}/{meta.get('name')}': {error}"
                if unset:
                    declared.unresolved[inventory_id(obj, declared.ref.namespace)] = unset
                break
        if unset:
            declared.unresolved[inventory_id(obj, declared.ref.namespace)] = unset
        if secret and (declared.from_secret or _uses(built, from_secrets)):
            declared.secret_objects.add(inventory_id(obj, declared.ref.namespace))
        if obj.get("kind") == "Secret" and not _is_sops(obj):
            declared.secret_digests[inventory_id(obj, declared.ref.namespace)] = secret_digests(obj)
        processed.append(_common_metadata(mask_secret(obj), spec))
    if failed:
        declared.state, declared.message = BuildState.FAILED, failed
        processed = []
    declared.objects = processed
    if key:
        _to_cache(declared, key, failed)


def _variables(
    declared: DeclaredKustomization, index: _VariableIndex | _ExternalVariables
) -> tuple[dict[str, str], set[str]] | None:
    """The Kustomization's postBuild variables, and the names of those a cluster Secret gave;
    None when collecting them fails the Kustomization (as it fails in the controller)."""
    from_secrets: set[str] = set()
    if declared.spec.get("postBuild") is None:
        return {}, from_secrets
    lookup = index.lookup(declared.ref.namespace)
    if isinstance(index, _VariableIndex):
        lookup = _unknown_as_empty(lookup, declared.unknown_sources)
    else:
        lookup = _noting_secrets(lookup, from_secrets)
    try:
        return substitute.collect_variables(declared.obj, lookup), from_secrets
    except substitute.SubstitutionError as error:
        declared.state, declared.message = BuildState.FAILED, f"post build failed: {error}"
        return None


def _to_cache(declared: DeclaredKustomization, key: str, failed: str) -> None:
    """A post-processed Kustomization into the cache. Its Secret digests are keyed: the key they
    were made with is kept first, or nothing is written."""
    if not keep_key():
        return
    entry = {
        "objects": declared.objects,
        "unresolved": declared.unresolved,
        "failed": failed,
        "unknownSources": declared.unknown_sources,
        "secretDigests": declared.secret_digests,
    }
    write_cached(key, entry)


def _from_cache(declared: DeclaredKustomization, key: str) -> bool:
    """A post-processed Kustomization from the cache, when it is there."""
    cached = read_cached(key)
    if not isinstance(cached, dict) or not isinstance(cached.get("objects"), list):
        return False
    declared.objects = cached["objects"]
    declared.unresolved = dict(cached.get("unresolved") or {})
    declared.secret_digests = dict(cached.get("secretDigests") or {})
    declared.unknown_sources = list(cached.get("unknownSources") or [])
    if cached.get("failed"):
        declared.state, declared.message = BuildState.FAILED, str(cached["failed"])
    return True


def _noting_secrets(lookup: VariableLookup, names: set[str]) -> VariableLookup:
    """The cluster's lookup, noting in ``names`` the variables a Secret gives."""

    def find(kind: str, name: str) -> Mapping[str, str] | None:
        found = lookup(kind, name)
        if found is not None and kind == "Secret":
            names.update(str(k) for k in found)
        return found

    return find


def _uses(obj: Any, names: set[str]) -> bool:
    """Whether a substitution of ``obj`` reads one of the variables ``names`` (anywhere in a key or
    a value, nested and in a default or a length too)."""
    if isinstance(obj, str):
        return "${" in obj and not names.isdisjoint(substitute.references(obj))
    if isinstance(obj, Mapping):
        return any(_uses(k, names) or _uses(v, names) for k, v in obj.items())
    if isinstance(obj, list | tuple):
        return any(_uses(item, names) for item in obj)
    return False


def _unknown_as_empty(lookup: VariableLookup, unknown: list[str]) -> VariableLookup:
    """Offline, a substituteFrom source the checkout does not declare is not an error (the cluster
    may hold it): noted in ``unknown``, read as empty."""

    def find(kind: str, name: str) -> Mapping[str, str] | None:
        found = lookup(kind, name)
        if found is None:
            unknown.append(f"{kind}/{name}")
            return {}
        return found

    return find


def as_applied(declared: DeclaredKustomization) -> list[dict[str, Any]]:
    """The ConfigMaps and Secrets a Kustomization applies, as substituteFrom reads them on the
    cluster: substituted; a plain Secret's values are the real ones (the model's are masked)."""
    if declared.state == BuildState.FAILED or declared.output is None:
        return []
    applied = [o for o in declared.objects if o.get("kind") == "ConfigMap" or _is_masked_sops(o)]
    for raw in declared.output.objects:
        if raw.get("kind") != "Secret" or _is_sops(raw):
            continue
        try:
            applied.append(
                substitute.substitute_object(raw, declared.variables, always=True) if declared.substitutes else raw
            )
        except substitute.SubstitutionError:
            continue
    return applied


def _is_masked_sops(obj: Mapping[str, Any]) -> bool:
    return obj.get("kind") == "Secret" and bool(((obj.get("metadata") or {}).get("annotations") or {}).get(SOPS_MARK))


def _check_namespaces(declared: DeclaredKustomization, scopes: _Scopes) -> None:
    """kustomize-controller refuses the whole apply when a namespaced object has no namespace
    and the Kustomization sets no targetNamespace ("ConfigMap/x namespace not specified"). Of a
    kind phoebe cannot place (no CRD in the checkout, not a kind it knows), it cannot tell: noted."""
    if declared.state == BuildState.FAILED or declared.spec.get("targetNamespace"):
        return
    for obj in declared.objects:
        meta = obj.get("metadata") or {}
        kind = str(obj.get("kind"))
        if kind in scopes.cluster or meta.get("namespace"):
            continue
        if kind in scopes.namespaced:
            declared.state = BuildState.FAILED
            declared.message = f"{kind}/{meta.get('name')} namespace not specified"
            declared.unknown_scope = []
            return
        declared.unknown_scope.append(f"{kind}/{meta.get('name')}")


@dataclass
class _Scopes:
    """Which kinds are cluster-scoped and which namespaced: the built-in ones phoebe knows, and
    those of every CustomResourceDefinition the checkout builds."""

    cluster: set[str] = field(default_factory=lambda: set(CLUSTER_SCOPED))
    namespaced: set[str] = field(default_factory=lambda: set(NAMESPACED) | {k.kind for k in ALL_KINDS})

    def learn(self, objects: Iterable[dict[str, Any]]) -> None:
        for obj in objects:
            spec = obj.get("spec") or {}
            if obj.get("kind") != "CustomResourceDefinition" or not isinstance(spec, dict):
                continue
            kind = str((spec.get("names") or {}).get("kind", ""))
            (self.cluster if spec.get("scope") == "Cluster" else self.namespaced).add(kind)


def _post_process_key(
    declared: DeclaredKustomization, output: BuildOutput, variables: Mapping[str, str], strict: bool
) -> str:
    import hashlib
    import json

    from phoebe_cli import __version__

    spec = declared.spec
    fields = {
        "postBuild": spec.get("postBuild"),
        "commonMetadata": spec.get("commonMetadata"),
        "namespace": declared.ref.namespace,
        "variables": variables,
        "strict": strict,
        "unknown": declared.unknown_sources,
    }
    # the Secret digests in the entry are keyed: entries made under another key are not these
    hasher = hashlib.sha256(f"post-process/{__version__}/{output.key}/{key_id()}/".encode())
    hasher.update(json.dumps(fields, sort_keys=True, default=str).encode())
    return hasher.hexdigest()
