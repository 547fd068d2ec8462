"""Flux's own code as the oracle: every Flux Kustomization phoebe's model yields for a checkout is
built again by the real flux CLI (``flux build kustomization --dry-run``, v2.9.5), and the objects
must be the same.

The checkouts are the sample (tests/fixtures/gitops) and the corpus of layouts and patterns in
tests/fixtures/layouts (each with a README saying what it shows and what Flux does with it), each
copied into a fresh Git repository. What is normalised, and why, is in tests/support/flux_oracle.py;
anything else that differs is a finding. The figures (Kustomizations and objects compared, skipped
and why, time) are printed per checkout and in total at the end of the module.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from phoebe_cli.flux.objects import ObjectRef
from phoebe_cli.repo.model import BuildState, DeclaredKustomization, ModelOptions, RepoModel, load_model
from tests.cluster.build import BuildError, GoMissing
from tests.repo.conftest import FIXTURE_REPO
from tests.support.flux_oracle import (
    ELSEWHERE,
    REMOTE,
    ClusterView,
    Normalised,
    Oracle,
    OracleError,
    controller_variables,
    differences,
    git_checkout,
    identity,
    normalise,
    oracle_kustomization,
    skip_reason,
)

pytestmark = pytest.mark.repo

LAYOUTS = Path(__file__).resolve().parent.parent / "fixtures" / "layouts"
KS = "Kustomization"


@dataclass(frozen=True)
class Case:
    """A checkout and what Flux makes of it (written from Flux's behaviour, see each README)."""

    fixture: str  # a directory under tests/fixtures/layouts, or "gitops" for the sample
    roots: tuple[str, ...]  # NAMESPACE/NAME of the root Kustomizations
    kustomizations: int  # how many Flux Kustomizations the checkout yields
    cluster: str | None = None
    skipped: tuple[tuple[str, str], ...] = ()  # (NAMESPACE/NAME, reason) not comparable offline
    overlaps: tuple[str, ...] = ()  # inventory ids applied by more than one Kustomization
    # Known disagreements in code outside generator.py (each reason names where): strict xfails.
    oracle_xfail: str | None = None
    model_xfail: str | None = None

    @property
    def source(self) -> Path:
        return FIXTURE_REPO if self.fixture == "gitops" else LAYOUTS / self.fixture

    @property
    def id(self) -> str:
        return "sample" if self.fixture == "gitops" else self.fixture + (f"-{self.cluster}" if self.cluster else "")


SKIPPED_STATE = {REMOTE: BuildState.PARTIAL, ELSEWHERE: BuildState.NOT_IN_CHECKOUT}

CASES = [
    Case("gitops", ("flux-system/cluster-meta", "flux-system/cluster-apps"), 31),
    Case("bootstrap", ("flux-system/flux-system",), 3, skipped=(("flux-system/podinfo-upstream", ELSEWHERE),)),
    Case("two-clusters", ("flux-system/flux-system",), 2, cluster="prod"),
    Case("two-clusters", ("flux-system/flux-system",), 2, cluster="staging"),
    Case("home-ops", ("flux-system/cluster-apps",), 2),
    Case("flux-config", ("flux-system/cluster",), 2),
    Case("flux-instance", ("flux-system/flux-system",), 3),
    Case(
        "component-children",
        ("flux-system/cluster-apps",),
        5,
    ),
    Case("target-namespace", ("flux-system/cluster-apps",), 3),
    Case(
        "chained-substitution",
        ("flux-system/cluster-apps",),
        3,
    ),
    Case("common-metadata", ("flux-system/cluster-apps",), 3),
    Case("child-patches", ("flux-system/cluster-apps",), 3),
    Case(
        "sops",
        ("flux-system/cluster-meta", "flux-system/cluster-apps"),
        3,
    ),
    Case("substitute-disabled", ("flux-system/tools",), 1),
    Case("remote-base", ("flux-system/cluster-apps",), 3, skipped=(("kube-system/snapshot-controller", REMOTE),)),
    Case("generator-paths", ("flux-system/web",), 1),
    Case("generator-spec", ("flux-system/home-assistant",), 1),
    Case("yaml-anchors", ("flux-system/cluster-apps",), 2),
    Case("yaml-scalars", ("flux-system/plain", "flux-system/substituted"), 2),
    Case(
        "overlap",
        ("flux-system/sonarr", "flux-system/radarr"),
        2,
        overlaps=("_media__Namespace", "media_media-ca__ConfigMap"),
    ),
]


def _params(xfail: str) -> list[Any]:
    params = []
    for case in CASES:
        reason = getattr(case, xfail)
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        params.append(pytest.param(case, id=case.id, marks=marks))
    return params


def test_every_fixture_is_a_case() -> None:
    fixtures = {p.name for p in LAYOUTS.iterdir() if p.is_dir()}
    cases = {case.fixture for case in CASES}
    assert fixtures <= cases
    assert all((LAYOUTS / name / "README.md").is_file() for name in fixtures)


# --- the oracle and the figures ----------------------------------------------------------------
@pytest.fixture(scope="session")
def flux_cli() -> Path:
    from tests.cluster.build import ensure_flux_cli

    try:
        return ensure_flux_cli()
    except GoMissing as error:
        pytest.skip(f"no flux CLI: {error}")
    except BuildError as error:
        pytest.fail(f"flux CLI build failed: {error}")


@dataclass
class Tally:
    checkouts: int = 0
    kustomizations: int = 0  # compared: built by both, or refused by both
    refused_by_both: int = 0
    objects: int = 0
    roots_read: int = 0
    oracle_runs: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    model_seconds: float = 0.0  # phoebe's load_model, without its build cache
    oracle_seconds: float = 0.0  # the flux builds (two at a time) and the comparison

    def line(self, what: str) -> str:
        return (
            f"{what}: {self.kustomizations} Kustomizations ({self.refused_by_both} refused by both) and "
            f"{self.objects} objects compared, {self.roots_read} root files read by Go, {self.oracle_runs} "
            f"flux builds, skipped {dict(self.skipped) or 'none'}; phoebe {self.model_seconds:.2f}s, "
            f"oracle {self.oracle_seconds:.2f}s"
        )

    def add(self, other: Tally) -> None:
        self.checkouts += other.checkouts
        self.kustomizations += other.kustomizations
        self.refused_by_both += other.refused_by_both
        self.objects += other.objects
        self.roots_read += other.roots_read
        self.oracle_runs += other.oracle_runs
        self.skipped.update(other.skipped)
        self.model_seconds += other.model_seconds
        self.oracle_seconds += other.oracle_seconds


@pytest.fixture(scope="module")
def tally(request: pytest.FixtureRequest) -> Iterator[Tally]:
    total = Tally()
    yield total
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None and total.checkouts:
        with capture.global_and_fixture_disabled():
            reporter.write_line("")
            reporter.write_line(total.line(f"flux oracle, {total.checkouts} checkouts"))


def _key(declared: DeclaredKustomization) -> str:
    return f"{declared.ref.namespace}/{declared.ref.name}"


@dataclass
class Outcome:
    declared: DeclaredKustomization
    objects: list[dict[str, Any]] | None = None
    refused: str | None = None  # flux build's error


def _run_oracle(oracle: Oracle, declared: DeclaredKustomization, view: ClusterView) -> Outcome:
    assert declared.source_dir is not None
    try:
        variables = controller_variables(declared, view)
    except Exception as error:  # noqa: BLE001 - reported as the finding it is
        return Outcome(declared, refused=f"the controller would not load its variables: {error}")
    try:
        objects = oracle.build(oracle_kustomization(declared, variables), declared.source_dir, declared.path)
    except OracleError as error:
        return Outcome(declared, refused=str(error))
    return Outcome(declared, objects)


def _compare(outcome: Outcome, tally: Tally) -> list[str]:
    """The findings for one Kustomization (and its figures in ``tally``)."""
    declared = outcome.declared
    name = _key(declared)
    tally.kustomizations += 1
    if declared.state == BuildState.FAILED:
        if outcome.refused is not None:
            tally.refused_by_both += 1
            return []
        return [f"{name}: phoebe fails ({declared.message}) where flux build builds it"]
    if outcome.refused is not None:
        return [f"{name}: flux build refuses it ({outcome.refused}) where phoebe builds it"]
    assert outcome.objects is not None
    tally.objects += len(declared.objects)
    return [f"{name}: {line}" for line in differences(normalise(declared, outcome.objects))]


def _read_roots(oracle: Oracle, model: RepoModel) -> tuple[list[str], int]:
    """The root files as Go reads them (through kustomize, as the Kustomization that applies them
    on a cluster does) against phoebe's reading: the builds above only see phoebe's root objects."""
    findings: list[str] = []
    files: dict[Path, list[dict[str, Any]]] = {}
    for declared in model.objects.values():
        if declared.declared_by is None and declared.origin.path is not None:
            files.setdefault(declared.origin.path, []).append(declared.obj)
    for relative, ours in sorted(files.items()):
        try:
            theirs = {identity(o): o for o in oracle.read_file(model.root / relative)}
        except OracleError as error:
            findings.append(f"{relative}: Go refuses the file ({error}) where phoebe reads it")
            continue
        operator = any(o.get("kind") == "FluxInstance" for o in theirs.values())
        for obj in ours:
            go = theirs.get(identity(obj))
            if go is None and not operator:  # a FluxInstance's sync objects have no document
                findings.append(f"{relative}: Go reads no {'/'.join(identity(obj))}")
            elif go is not None:
                pair = Normalised({identity(obj): obj}, {identity(obj): go}, [])
                findings.extend(f"{relative}: {line}" for line in differences(pair))
    return findings, len(files)


@pytest.mark.parametrize("case", _params("oracle_xfail"))
def test_phoebe_builds_each_kustomization_as_flux_build_does(
    case: Case, flux_cli: Path, tmp_path: Path, tally: Tally
) -> None:
    root = git_checkout(case.source, tmp_path / "checkout")
    figures = Tally(checkouts=1)
    started = time.perf_counter()
    model = load_model(root, ModelOptions(cluster=case.cluster, use_cache=False))
    figures.model_seconds = time.perf_counter() - started

    started = time.perf_counter()
    view = ClusterView.of(model)
    oracle = Oracle(flux_cli, tmp_path / "oracle")
    skipped: list[tuple[str, str]] = []
    comparable: list[DeclaredKustomization] = []
    for declared in model.kustomizations.values():
        reason = skip_reason(declared)
        if reason is not None:
            skipped.append((_key(declared), reason))
        else:
            comparable.append(declared)
    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(lambda d: _run_oracle(oracle, d, view), comparable))
    findings = [finding for outcome in outcomes for finding in _compare(outcome, figures)]
    root_findings, figures.roots_read = _read_roots(oracle, model)
    findings.extend(root_findings)
    figures.oracle_runs = oracle.runs
    figures.skipped.update(reason for _, reason in skipped)
    figures.oracle_seconds = time.perf_counter() - started
    tally.add(figures)
    print(figures.line(case.id))

    assert not findings, "phoebe and flux build disagree:\n" + "\n".join(findings)
    assert sorted(skipped) == sorted(case.skipped)
    assert comparable, "nothing compared"


# --- what the oracle cannot see: where the checkout starts, and overlaps -------------------------
@pytest.mark.parametrize("case", _params("model_xfail"))
def test_the_model_starts_where_flux_starts(case: Case, tmp_path: Path) -> None:
    root = git_checkout(case.source, tmp_path / "checkout")
    model = load_model(root, ModelOptions(cluster=case.cluster))

    assert [f"{r.namespace}/{r.name}" for r in model.roots if r.kind == KS] == list(case.roots)
    assert len(model.kustomizations) == case.kustomizations
    states = {_key(k): k.state for k in model.kustomizations.values()}
    expected = {**dict.fromkeys(states, BuildState.BUILT), **{k: SKIPPED_STATE[r] for k, r in case.skipped}}
    assert states == expected, {_key(k): k.message for k in model.kustomizations.values() if k.message}
    assert sorted(subject for subject, _ in model.overlaps) == sorted(case.overlaps)


def test_the_two_clusters_are_told_apart(tmp_path: Path) -> None:
    from phoebe_cli.errors import UsageError

    root = git_checkout(LAYOUTS / "two-clusters", tmp_path / "checkout")
    with pytest.raises(UsageError, match=r"several clusters \(prod, staging\)"):
        load_model(root, ModelOptions())
    prod = load_model(root, ModelOptions(cluster="prod"))
    assert prod.kustomizations[ObjectRef(KS, "flux-system", "flux-system")].path == "./clusters/prod"
    assert prod.kustomizations[ObjectRef(KS, "flux-system", "apps")].path == "./apps/prod"


# --- the generator, where the oracle found phoebe wrong ----------------------------------------------
def test_the_generator_reads_a_kustomization_file_into_kustomizes_type(tmp_path: Path) -> None:
    """pkg/kustomize's GenerateManifest: ``yaml.Unmarshal`` into ``types.Kustomization`` and back, so what
    the type does not know is dropped at any depth (kustomize alone refuses it), and names match the way
    Go's JSON decoding matches them."""
    from phoebe_cli.repo.generator import flux_kustomization

    (tmp_path / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\n"
        "kind: Kustomization\n"
        "Resources: [cm.yaml]\n"
        "commonLabel: {app: typo}\n"
        "namePrefix: null\n"
        "configMapGenerator:\n"
        "  - name: env\n"
        "    literals: [A=b]\n"
        "    option: {disableNameSuffixHash: true}\n"
        "    options: {labels: {a: b}, unknown: 1}\n"
        "patches:\n"
        "  - patch: '[]'\n"
        "    target: {kind: Deployment, labelSelector: app=web, regex: true}\n"
        "helmCharts:\n"
        "  - name: podinfo\n"
        "    valuesInline: {any: {thing: [goes]}}\n"
    )

    kus, generated = flux_kustomization(tmp_path, {"path": "./"})

    assert generated is False
    assert kus == {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": ["cm.yaml"],
        "configMapGenerator": [{"name": "env", "literals": ["A=b"], "options": {"labels": {"a": "b"}}}],
        "patches": [{"patch": "[]", "target": {"kind": "Deployment", "labelSelector": "app=web"}}],
        "helmCharts": [{"name": "podinfo", "valuesInline": {"any": {"thing": ["goes"]}}}],
    }


def test_the_generator_ignores_the_patch_fields_the_v1_api_dropped(tmp_path: Path) -> None:
    """``patchesStrategicMerge`` and ``patchesJson6902`` are not in ``kustomize.toolkit.fluxcd.io/v1``: the API
    server prunes them, the controller never sees them (and ``flux build`` decodes into the v1 type)."""
    from phoebe_cli.repo.generator import flux_kustomization

    (tmp_path / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\n")
    spec = {
        "path": "./",
        "patchesStrategicMerge": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}}],
        "patchesJson6902": [{"target": {"kind": "ConfigMap"}, "patch": [{"op": "add", "path": "/data", "value": {}}]}],
        "patches": [{"patch": "[]", "target": {"kind": "ConfigMap"}}],
    }

    kus, generated = flux_kustomization(tmp_path, spec)

    assert generated is True
    assert kus == {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": ["./cm.yaml"],
        "patches": [{"patch": "[]", "target": {"kind": "ConfigMap"}}],
    }
