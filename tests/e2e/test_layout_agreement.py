"""The repo model agrees with the real kustomize-controller on every layout fixture
(tests/fixtures/layouts, one case each; two-clusters once per cluster).

One real-Flux stack of its own (control plane, kustomize-controller v1.9.6, helm-controller v1.6.4,
the source stand-in), started once for the module, takes the fixtures in turn:

1. the fixture is copied into a fresh Git repository and read with phoebe's ``load_model``;
2. the stand-in serves that checkout for the sources phoebe says read it (and nothing else: a
   source elsewhere fails to fetch, as it would offline);
3. the namespaces the model's objects land in are made first (a cluster they are meant for has
   them; without them the controller's first apply would race its own Namespace objects);
4. the roots are created as bootstrap (or flux-operator) leaves them: the source each root
   Kustomization reads (from the checkout when phoebe found it there, a FluxInstance's from its
   ``spec.sync``, otherwise a GitRepository made up for it, counted), then ``model.roots``;
5. the test waits until every Kustomization has applied or failed for good (a failed one gets one
   reconcile request, in case it only lost a race with its siblings);
6. for every Kustomization the controller applied, the (inventory id, version) pairs phoebe's
   model yields must be exactly the controller's ``status.inventory``; every one it failed on must
   be one phoebe cannot build either (failed, remote, source elsewhere), or one whose failure
   phoebe cannot see offline — SOPS data no key here decrypts, blocked behind such a one, never
   created by a parent that failed — which each case lists;
7. everything is deleted again: Namespaces are kept (annotated ``prune: disabled``: no namespace
   controller runs here, so a pruned Namespace would stay Terminating), the Kustomizations prune
   the rest, helm-controller uninstalls, and the next case starts on an empty cluster.

Kinds outside Flux: the Gateway API CRDs come from ``sigs.k8s.io/gateway-api`` (the Go module
proxy, like the Flux CRDs). FluxInstance (flux-operator's module needs Go 1.27 even to download)
and CloudNativePG's Cluster (its module is not served) get open-schema stand-in CRDs: same group,
version, kind and scope, so the API server takes the objects where the real CRDs would (minus
schema validation, which phoebe does not claim to model); inventory ids and versions depend on
nothing else.

The figures (Kustomizations and objects compared, what was not compared and why, time) are printed
per fixture and in total at the end of the module.
"""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.cluster.api import Api, ApiError
from tests.cluster.build import BuildError, GoMissing
from tests.cluster.controlplane import ControlPlane, new_workdir
from tests.cluster.crds import crd_documents, install_crds
from tests.cluster.flux import HR, KS, REPO_ROOT, FluxStack, ready_reason
from tests.cluster.versions import CrdSource

if TYPE_CHECKING:
    from phoebe_cli.repo.model import DeclaredKustomization, RepoModel

pytestmark = [pytest.mark.e2e, pytest.mark.repo]

Obj = dict[str, Any]

LAYOUTS = REPO_ROOT / "tests" / "fixtures" / "layouts"
CLUSTERS = {"two-clusters": ("prod", "staging")}  # checkouts holding several clusters: one case each

GATEWAY_API = CrdSource(
    "sigs.k8s.io/gateway-api",
    "v1.4.1",
    "config/crd/standard",
    ("gateway.networking.k8s.io_gateways.yaml", "gateway.networking.k8s.io_httproutes.yaml"),
)
# (group, version, kind, plural, why the real CRD is not installed)
STAND_IN_CRDS = (
    (
        "fluxcd.controlplane.io",
        "v1",
        "FluxInstance",
        "fluxinstances",
        "flux-operator's module needs Go 1.27 even to download",
    ),
    ("postgresql.cnpg.io", "v1", "Cluster", "clusters", "the Go module proxy does not serve cloudnative-pg"),
)

SOURCE_KINDS = (
    ("source.toolkit.fluxcd.io/v1", "GitRepository"),
    ("source.toolkit.fluxcd.io/v1", "OCIRepository"),
    ("source.toolkit.fluxcd.io/v1", "HelmRepository"),
    ("source.toolkit.fluxcd.io/v1", "HelmChart"),
    ("source.toolkit.fluxcd.io/v1", "Bucket"),
)
MANAGER = "phoebe-e2e"
REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"
BUILT_IN_NAMESPACES = ("default", "kube-system", "kube-public", "flux-system")  # flux-system: the stack's
PRUNE_DISABLED = {"kustomize.toolkit.fluxcd.io/prune": "disabled"}

SETTLE_TIMEOUT = 120.0  # one fixture, applied to settled
CLEAN_TIMEOUT = 90.0  # one fixture, deleted to gone
STABLE_FOR = 0.5  # the states must hold this long before they count as settled
POLL = 0.25

# Why a Kustomization was not compared (the controller applied nothing): the categories a case lists.
AGREED = "phoebe cannot build it either"
SOPS = "SOPS data no key here decrypts"
BLOCKED = "blocked behind one not compared"
NEVER = "never created: its parent did not apply"
SUSPENDED = "suspended: never reconciled"


@dataclass(frozen=True)
class Case:
    fixture: str
    cluster: str | None = None
    not_compared: tuple[tuple[str, str], ...] = ()  # (NAMESPACE/NAME, category)
    # A known disagreement: a strict xfail whose reason says who is right, and the findings it is
    # (a part of each); the case fails outright if the findings are any others.
    xfail: str | None = None
    known: tuple[str, ...] = ()  # patterns (re.search), one per finding

    @property
    def id(self) -> str:
        return self.fixture + (f"-{self.cluster}" if self.cluster else "")


CASES = [
    Case("bootstrap", not_compared=(("flux-system/podinfo-upstream", AGREED),)),  # its source is GitHub's podinfo
    Case("chained-substitution"),
    Case("child-patches"),
    Case("common-metadata"),
    Case(
        "component-children",
        # kustomize-controller v1.9.6 fails default/paperless: StrictPostBuildSubstitutions is on by default
        # since v1.9 and paperless leaves DATABASE_EXTENSIONS unset; phoebe, told so, fails it too
        not_compared=(("default/paperless", AGREED),),
    ),
    Case("flux-config"),
    Case("flux-instance"),
    Case("generator-paths"),
    Case("generator-spec"),
    Case("home-ops"),
    Case("overlap"),
    Case("remote-base", not_compared=(("kube-system/snapshot-controller", AGREED),)),  # a remote base, no network
    Case(
        "sops",  # the fixture's SOPS blocks are well-formed but fake (see its README)
        not_compared=(
            ("flux-system/cluster-meta", SOPS),
            ("flux-system/cluster-apps", BLOCKED),  # dependsOn cluster-meta
            ("flux-system/echo", NEVER),  # applied by cluster-apps
        ),
    ),
    Case("substitute-disabled"),
    Case("target-namespace"),
    Case("two-clusters", cluster="prod"),
    Case("two-clusters", cluster="staging"),
    Case("yaml-anchors"),
    Case(
        "yaml-scalars",
        xfail=(
            "the fixture is wrong for a cluster: ConfigMaps plain-flags and substituted-flags have the data key "
            "'key=value', which the API server refuses (a config key must match [-._a-zA-Z0-9]+), so the "
            "controller's dry-run fails both Kustomizations and applies nothing; phoebe (like flux build) builds "
            "them, as it does not validate objects the way the API server does"
        ),
        known=tuple(
            rf"^flux-system/{name}: the controller did not apply it \(failed \(Ready=False ReconciliationFailed: "
            rf"ConfigMap/default/{name}-flags dry-run failed \(Invalid\): .*data\[key=value\]: Invalid value"
            for name in ("plain", "substituted")
        ),
    ),
]


class KnownDisagreement(AssertionError):
    """Exactly the findings a case's ``known`` lists, and nothing else."""


def _params() -> list[Any]:
    params = []
    for case in CASES:
        marks = [pytest.mark.xfail(strict=True, raises=KnownDisagreement, reason=case.xfail)] if case.xfail else []
        params.append(pytest.param(case, id=case.id, marks=marks))
    return params


def test_every_layout_fixture_is_a_case() -> None:
    fixtures = {p.name for p in LAYOUTS.iterdir() if p.is_dir()}
    cases = {(case.fixture, case.cluster) for case in CASES}
    expected = {(name, cluster) for name in fixtures for cluster in CLUSTERS.get(name, (None,))}
    assert cases == expected


# --- the stack ---------------------------------------------------------------------------------
@dataclass
class Figures:
    fixtures: int = 0
    kustomizations: int = 0  # compared: applied by the controller, inventory checked
    objects: int = 0
    agreed_failures: int = 0
    not_compared: dict[str, int] = field(default_factory=dict)  # category -> count
    made_up_sources: int = 0
    seconds: float = 0.0

    def add(self, other: Figures) -> None:
        self.fixtures += other.fixtures
        self.kustomizations += other.kustomizations
        self.objects += other.objects
        self.agreed_failures += other.agreed_failures
        for category, count in other.not_compared.items():
            self.not_compared[category] = self.not_compared.get(category, 0) + count
        self.made_up_sources += other.made_up_sources
        self.seconds += other.seconds


@dataclass
class LayoutStack:
    plane: ControlPlane
    api: Api
    stack: FluxStack
    crds: list[str]  # what was installed besides Flux's, and from where
    total: Figures = field(default_factory=Figures)


@pytest.fixture(scope="module")
def layout_stack(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[LayoutStack]:
    """Its own control plane and real Flux, shared by the cases of this module (module scope: it
    stops when they are done instead of running beside the sample's stack to the session's end)."""
    placeholder = tmp_path_factory.mktemp("no-checkout")  # the stand-in serves nothing by default
    try:
        plane = ControlPlane(new_workdir("phoebe-layouts-")).start()
    except GoMissing as error:
        pytest.skip(f"no control plane: {error}")
    except BuildError as error:
        pytest.fail(f"control plane build failed: {error}")
    stack = None
    started = time.monotonic()
    try:
        api = Api(plane.server, plane.admin_token, plane.ca_file)
        install_crds(api, "newest", external_secrets=False)
        crds = _install_other_crds(api)
        stack = FluxStack(plane, api, plane.workdir / "flux", git_dir=placeholder, source_mode="stand-in").start()
        assert stack.sources is not None
        stack.sources.default_git_dir = None
        layouts = LayoutStack(plane, api, stack, crds)
        _report(request, f"layouts on real Flux: stack up in {time.monotonic() - started:.1f}s; {'; '.join(crds)}")
        yield layouts
        total = layouts.total
        _report(
            request,
            f"layouts on real Flux, {total.fixtures} checkouts: {total.kustomizations} Kustomizations and "
            f"{total.objects} objects compared, {total.agreed_failures} failed on both sides, not compared "
            f"{total.not_compared or 'none'}, {total.made_up_sources} root sources made up; "
            f"{total.seconds:.1f}s in the cases, {time.monotonic() - started:.1f}s with the stack",
        )
    finally:
        if stack is not None:
            stack.remove()
        plane.remove()


def _report(request: pytest.FixtureRequest, line: str) -> None:
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line("")
        reporter.write_line(line)


def _install_other_crds(api: Api) -> list[str]:
    documents = crd_documents(GATEWAY_API)
    notes = [f"Gateway API CRDs from {GATEWAY_API.module} {GATEWAY_API.version} ({GATEWAY_API.directory})"]
    for group, version, kind, plural, why in STAND_IN_CRDS:
        documents.append(_open_crd(group, version, kind, plural))
        notes.append(f"stand-in CRD for {group}/{version} {kind} ({why})")
    for doc in documents:
        doc.get("metadata", {}).pop("creationTimestamp", None)
        doc.pop("status", None)
        api.apply(doc, manager="phoebe-crds")
    api.wait_established(doc["metadata"]["name"] for doc in documents)
    return notes


def _open_crd(group: str, version: str, kind: str, plural: str) -> Obj:
    """A namespaced CRD that takes any object of the kind (no schema beyond Kubernetes' own)."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}", "annotations": {"phoebe.test/stand-in": "open schema"}},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"kind": kind, "listKind": f"{kind}List", "plural": plural, "singular": kind.lower()},
            "versions": [
                {
                    "name": version,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                }
            ],
        },
    }


# --- what the controller did --------------------------------------------------------------------
APPLIED, FAILED, BLOCKED_STATE, SUSPENDED_STATE, PENDING = "applied", "failed", "blocked", "suspended", "pending"


@dataclass
class Live:
    obj: Obj

    @property
    def key(self) -> str:
        return f"{self.obj['metadata']['namespace']}/{self.obj['metadata']['name']}"

    @property
    def status(self) -> Obj:
        return self.obj.get("status") or {}

    @property
    def inventory(self) -> list[tuple[str, str]] | None:
        entries = (self.status.get("inventory") or {}).get("entries")
        return None if entries is None else sorted((e["id"], e["v"]) for e in entries)

    @property
    def ready(self) -> tuple[str, str, str]:
        for cond in self.status.get("conditions") or []:
            if cond.get("type") == "Ready":
                return cond.get("status", ""), cond.get("reason", ""), cond.get("message", "")
        return "", "", ""

    @property
    def state(self) -> str:
        if self.inventory is not None:
            return APPLIED
        if (self.obj.get("spec") or {}).get("suspend") is True:
            return SUSPENDED_STATE
        status, reason, _ = self.ready
        if status == "False":
            return BLOCKED_STATE if reason == "DependencyNotReady" else FAILED
        return PENDING

    @property
    def handled(self) -> str | None:
        value = self.status.get("lastHandledReconcileAt")
        return str(value) if value else None

    def dependencies(self) -> list[str]:
        namespace = self.obj["metadata"]["namespace"]
        return [
            f"{d.get('namespace') or namespace}/{d['name']}"
            for d in (self.obj.get("spec") or {}).get("dependsOn") or []
        ]

    def child_kustomizations(self) -> list[str]:
        suffix = "_kustomize.toolkit.fluxcd.io_Kustomization"
        return [
            "/".join(entry.removesuffix(suffix).split("_", 1))
            for entry, _ in self.inventory or []
            if entry.endswith(suffix)
        ]

    def describe(self) -> str:
        status, reason, message = self.ready
        return f"{self.state} (Ready={status or '?'} {reason}: {message})".strip()


def listed(api: Api, api_version: str, kind: str) -> list[Obj]:
    """Every object of a kind, each with its apiVersion and kind (list items carry neither)."""
    return [{**obj, "apiVersion": api_version, "kind": kind} for obj in api.list(api_version, kind)]


def observe(api: Api) -> dict[str, Live]:
    return {live.key: live for live in (Live(obj) for obj in listed(api, *KS))}


def _given_up(live: dict[str, Live], key: str) -> bool:
    """Whether a dependency will not become Ready by itself."""
    dependency = live.get(key)
    return (
        dependency is None
        or dependency.state in (FAILED, BLOCKED_STATE, SUSPENDED_STATE)
        or dependency.ready[0] == "False"
    )


def _terminal(live: dict[str, Live], retried: dict[str, str]) -> bool:
    for key, one in live.items():
        if one.state == PENDING:
            return False
        if key in retried and one.handled != retried[key]:
            return False
        if one.state == BLOCKED_STATE and not any(_given_up(live, d) for d in one.dependencies()):
            return False
        if any(child not in live for child in one.child_kustomizations()):
            return False
    return True


class Unsettled(AssertionError):
    pass


def settle(api: Api, timeout: float = SETTLE_TIMEOUT) -> dict[str, Live]:
    """Wait until every Kustomization has applied or failed for good. A failed one is asked to
    reconcile once more (after the rest settled): a first try may only have lost a race."""
    deadline = time.monotonic() + timeout
    retried: dict[str, str] = {}
    last: dict[str, str] | None = None
    since = time.monotonic()
    while True:
        live = observe(api)
        states = {key: one.state for key, one in live.items()}
        if states != last:
            last, since = states, time.monotonic()
        elif live and _terminal(live, retried) and time.monotonic() - since >= STABLE_FOR:
            again = sorted(key for key, one in live.items() if one.state == FAILED and key not in retried)
            if not again:
                return live
            token = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            for key in again:
                api.merge_patch(
                    live[key].obj,
                    {"metadata": {"annotations": {REQUESTED_AT: token}}},
                    manager="flux-client-side-apply",
                )
                retried[key] = token
            last = None
        if time.monotonic() > deadline:
            states_now = "\n".join(f"  {key}: {one.describe()}" for key, one in sorted(live.items()))
            raise Unsettled(f"not settled in {timeout:.0f}s:\n{states_now}")
        time.sleep(POLL)


# --- one fixture ----------------------------------------------------------------------------------
def _key(declared: DeclaredKustomization) -> str:
    return f"{declared.ref.namespace}/{declared.ref.name}"


def _expected(declared: DeclaredKustomization) -> list[tuple[str, str]]:
    from phoebe_cli.repo.model import inventory_id

    return sorted(
        (inventory_id(o, declared.ref.namespace), str(o["apiVersion"]).rpartition("/")[2]) for o in declared.objects
    )


def _namespaces(model: RepoModel) -> set[str]:
    """Where the model's Kustomizations live and their objects land."""
    namespaces = {declared.ref.namespace for declared in model.kustomizations.values()}
    for declared in model.kustomizations.values():
        namespaces.update(_parse_id(entry)[0] for entry, _ in _expected(declared))
    namespaces.discard("")  # cluster-scoped
    return namespaces


def _declared_namespaces(model: RepoModel) -> set[str]:
    return {
        _parse_id(entry)[1]
        for declared in model.kustomizations.values()
        for entry, _ in _expected(declared)
        if entry.endswith("__Namespace")
    }


def _source_of(declared: DeclaredKustomization) -> tuple[str, str, str]:
    ref = declared.spec.get("sourceRef") or {}
    return str(ref.get("kind", "GitRepository")), str(ref.get("namespace") or declared.ref.namespace), str(ref["name"])


def _made_up_source(kind: str, namespace: str, name: str, fixture: str) -> Obj:
    """A source for a root whose source no file of the checkout declares (flux-operator or a Helm
    chart made it): a GitRepository of this checkout."""
    assert kind == "GitRepository", f"no {kind} {namespace}/{name} in the checkout to stand for"
    return {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"interval": "1h", "url": f"https://git.example.invalid/{fixture}.git", "ref": {"branch": "main"}},
    }


def _clean_copy(obj: Obj, namespace: str) -> Obj:
    applied = copy.deepcopy(obj)
    applied.pop("status", None)
    applied.setdefault("metadata", {}).setdefault("namespace", namespace)
    return applied


def _wait_sources(api: Api, sources: list[Obj], timeout: float = 30.0) -> None:
    """Until the stand-in has answered each root source (an artifact, or a failure)."""

    def answered(source: Obj) -> bool:
        meta = source["metadata"]
        live = api.get_or_none(source["apiVersion"], source["kind"], meta["namespace"], meta["name"])
        return live is not None and bool((live.get("status") or {}).get("artifact") or ready_reason(live))

    deadline = time.monotonic() + timeout
    pending = list(sources)
    while pending and time.monotonic() < deadline:
        pending = [source for source in pending if not answered(source)]
        if pending:
            time.sleep(0.1)


@dataclass
class Outcome:
    figures: Figures
    findings: list[str]
    not_compared: dict[str, tuple[str, str]]  # key -> (category, detail)
    inventories: list[tuple[str, str]]  # every inventory id applied (for the sweep)


def compare(model: RepoModel, live: dict[str, Live]) -> Outcome:
    from phoebe_cli.repo.model import BuildState

    figures = Figures(fixtures=1)
    findings: list[str] = []
    not_compared: dict[str, tuple[str, str]] = {}
    inventories: list[tuple[str, str]] = []
    declared_by_key = {_key(d): d for d in model.kustomizations.values()}
    for key in sorted(set(live) - set(declared_by_key)):
        findings.append(f"{key}: on the cluster ({live[key].describe()}) but not in phoebe's model")

    def why_not(key: str) -> tuple[str, str] | None:
        """Why a Kustomization the controller did not apply was not compared, or None (a finding)."""
        declared, one = declared_by_key[key], live.get(key)
        if declared.state != BuildState.BUILT:
            detail = f"phoebe: {declared.state} ({declared.message})"
            if one is not None:
                detail += f"; controller: {one.describe()}"
            return AGREED, detail
        if one is not None and one.state == SUSPENDED_STATE:
            return SUSPENDED, "spec.suspend: true"
        if one is None:
            parent = declared.origin.parent
            parent_key = f"{parent.namespace}/{parent.name}" if parent is not None else None
            parent_live = live.get(parent_key) if parent_key is not None else None
            if parent_key in declared_by_key and (parent_live is None or parent_live.state != APPLIED):
                return NEVER, f"parent {parent_key} did not apply"
            return None
        _, reason, message = one.ready
        if one.state == FAILED and "decrypt" in message.lower() and any(_sops(o) for o in declared.objects):
            return SOPS, f"{reason}: {message}"
        if one.state == BLOCKED_STATE:
            behind = [d for d in one.dependencies() if d in declared_by_key]
            if behind and all(d not in live or live[d].state != APPLIED for d in behind):
                return BLOCKED, f"{reason}: {message}"
        return None

    for key, declared in sorted(declared_by_key.items()):
        one = live.get(key)
        if one is not None and one.state == APPLIED:
            applied = one.inventory or []
            inventories.extend(applied)
            if declared.state != BuildState.BUILT:
                findings.append(
                    f"{key}: phoebe says {declared.state} ({declared.message}) where the controller applied it"
                )
                continue
            expected = _expected(declared)
            if expected != applied:
                ours, theirs = set(expected), set(applied)
                findings.append(
                    f"{key}: model and kustomize-controller disagree: only phoebe {sorted(ours - theirs)}, "
                    f"only the controller {sorted(theirs - ours)}"
                    + (" (same set, different order or duplicates)" if ours == theirs else "")
                )
            figures.kustomizations += 1
            figures.objects += len(applied)
            continue
        reason = why_not(key)
        if reason is None:
            state = one.describe() if one is not None else "never created"
            findings.append(f"{key}: the controller did not apply it ({state}) where phoebe builds it")
            continue
        not_compared[key] = reason
        if reason[0] == AGREED:
            figures.agreed_failures += 1
        figures.not_compared[reason[0]] = figures.not_compared.get(reason[0], 0) + 1
    return Outcome(figures, findings, not_compared, inventories)


def _sops(obj: Obj) -> bool:
    return ((obj.get("metadata") or {}).get("annotations") or {}).get("phoebe.dev/sops") == "encrypted"


# --- cleaning up -----------------------------------------------------------------------------------
def _parse_id(entry: str) -> tuple[str, str, str, str]:
    """An inventory id ``<namespace>_<name>_<group>_<kind>`` (cluster-scoped: empty namespace, core
    group: empty group; ``__`` in a name stands for ``:``) as its four parts."""
    namespace, _, rest = entry.partition("_")
    rest, _, kind = rest.rpartition("_")
    name, _, group = rest.rpartition("_")
    return namespace, name.replace("__", ":"), group, kind


def _name(obj: Obj) -> str:
    return f"{obj['kind']}/{obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}"


def clean(api: Api, applied: list[tuple[str, str]], timeout: float = CLEAN_TIMEOUT) -> list[str]:
    """Delete what the case made, keeping Namespaces; returns what had to be forced (empty: none)."""
    for namespace_obj in listed(api, "v1", "Namespace"):
        annotations = namespace_obj["metadata"].get("annotations") or {}
        if any(annotations.get(k) != v for k, v in PRUNE_DISABLED.items()):
            api.merge_patch(namespace_obj, {"metadata": {"annotations": PRUNE_DISABLED}}, manager=MANAGER)
    deadline = time.monotonic() + timeout
    forced: list[str] = []
    for kinds in ((KS,), (HR,), SOURCE_KINDS):  # Kustomizations prune, helm-controller uninstalls
        unstuck = False
        while True:
            left = [obj for kind in kinds for obj in listed(api, *kind)]
            if not left:
                break
            for obj in left:
                if not obj["metadata"].get("deletionTimestamp"):
                    api.delete(obj)
            if time.monotonic() > deadline + 30:
                raise AssertionError(f"could not delete {[_name(obj) for obj in left]}, finalizers removed or not")
            if time.monotonic() > deadline and not unstuck:
                unstuck = True
                for obj in left:
                    forced.append(_name(obj))
                    try:
                        api.merge_patch(obj, {"metadata": {"finalizers": None}}, manager=MANAGER)
                    except ApiError as error:
                        if error.status_code != 404:
                            raise
            time.sleep(POLL)
    # What the controllers left (an object whose owner labels had moved on, say): the sweep.
    for entry, version in sorted(set(applied)):
        namespace, name, group, kind = _parse_id(entry)
        if kind == "Namespace" or group.endswith(".toolkit.fluxcd.io"):  # kept; swept above
            continue
        api_version = f"{group}/{version}" if group else version
        try:
            leftover = api.get_or_none(api_version, kind, namespace or None, name)
        except KeyError:
            continue  # the kind is not served (any more)
        if leftover is not None:
            api.delete(leftover)
    return forced


def bootstrap_objects(model: RepoModel, fixture: str) -> tuple[list[Obj], list[Obj], int]:
    """What bootstrap leaves: the source each root reads (the checkout's, a FluxInstance's from its
    ``spec.sync``, else one made up and counted) and the root Kustomizations."""
    from phoebe_cli.flux.objects import ObjectRef

    sources: dict[tuple[str, str, str], Obj] = {}
    roots: list[Obj] = []
    made_up = 0
    for ref in model.roots:
        roots.append(_clean_copy(model.objects[ref].obj, ref.namespace))
        kind, namespace, name = key = _source_of(model.kustomizations[ref])
        if key in sources:
            continue
        source = model.objects.get(ObjectRef(kind, namespace, name))
        if source is None:
            sources[key] = _made_up_source(kind, namespace, name, fixture)
            made_up += 1
        else:
            sources[key] = _clean_copy(source.obj, namespace)
    return list(sources.values()), roots, made_up


def _exactly(findings: list[str], known: tuple[str, ...]) -> bool:
    """Whether the findings are the known ones (patterns), one each."""
    return len(findings) == len(known) and all(any(re.search(k, f) for f in findings) for k in known)


# --- the test -------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", _params())
def test_model_objects_are_the_controllers_inventory(
    case: Case, layout_stack: LayoutStack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from phoebe_cli.repo.model import ModelOptions, load_model
    from tests.cluster.build import ensure_program, kustomize_program
    from tests.support.flux_oracle import git_checkout

    monkeypatch.setenv("PHOEBE_KUSTOMIZE", str(ensure_program(kustomize_program())))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    api, sources = layout_stack.api, layout_stack.stack.sources
    assert sources is not None
    started = time.monotonic()
    checkout = git_checkout(LAYOUTS / case.fixture, tmp_path / "checkout")
    # The controller here is kustomize-controller v1.9.6 with its default gates: StrictPostBuildSubstitutions
    # on (opt-out since v1.9). phoebe reads the checkout as that controller does, as `phoebe diff`
    # reads the gate from a cluster's kustomize-controller.
    model = load_model(checkout, ModelOptions(cluster=case.cluster, use_cache=False, strict_substitution=True))

    # The stand-in serves this checkout for the sources phoebe reads it for, and nothing else.
    served = {_source_of(d) for d in model.kustomizations.values() if d.source_dir == model.root}
    sources.git_dirs = {(namespace, name): checkout for _, namespace, name in served}
    root_sources, roots, made_up = bootstrap_objects(model, case.fixture)
    namespaces = sorted(_namespaces(model))
    undeclared = [n for n in namespaces if n not in _declared_namespaces(model) and n not in BUILT_IN_NAMESPACES]
    outcome: Outcome | None = None
    try:
        for namespace in namespaces:
            api.ensure_namespace(namespace)
        # Created (not server-side applied): as kubectl or bootstrap puts them there, the API server
        # drops fields the CRD does not declare (server-side apply would refuse them).
        for obj in root_sources:
            api.create(obj)
        _wait_sources(api, root_sources)
        for obj in roots:
            api.create(obj)
        live = settle(api)
        settled_in = time.monotonic() - started
        outcome = compare(model, live)
    finally:
        forced = clean(api, outcome.inventories if outcome is not None else [])
        sources.git_dirs = {}
    figures = outcome.figures
    figures.made_up_sources = made_up
    figures.seconds = time.monotonic() - started
    layout_stack.total.add(figures)
    not_compared = {key: f"{category}: {detail}" for key, (category, detail) in sorted(outcome.not_compared.items())}
    print(
        f"{case.id}: {figures.kustomizations} Kustomizations and {figures.objects} objects compared; "
        f"not compared {not_compared or 'none'}; {made_up} root sources made up; namespaces no Namespace object "
        f"declares: {undeclared or 'none'}; settled in {settled_in:.1f}s, "
        f"{figures.seconds:.1f}s with the clean-up"
    )

    assert not forced, f"the clean-up had to force {forced}"
    assert {key: category for key, (category, _) in outcome.not_compared.items()} == dict(case.not_compared), (
        f"not compared: {not_compared}\nfindings: {outcome.findings}"
    )
    disagreement = "phoebe and kustomize-controller disagree:\n" + "\n".join(outcome.findings)
    if case.known and _exactly(outcome.findings, case.known):
        raise KnownDisagreement(disagreement)
    assert not outcome.findings, disagreement
    assert figures.kustomizations == len(model.kustomizations) - len(case.not_compared)
