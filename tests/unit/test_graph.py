"""The Kustomization and HelmRelease graph (flux/graph.py) and its drawings (render/graph.py):
the text pinned, the Mermaid checked by mermaid's own parser (tests/support/mermaid.py) and the
DOT by Graphviz."""

from __future__ import annotations

import random
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

import pytest

from phoebe_cli.flux.graph import EdgeKind, NodeState, build_graph
from phoebe_cli.flux.objects import FluxObject, ObjectRef
from phoebe_cli.flux.tree import Blocked, blocked_by
from phoebe_cli.render.graph import dot, mermaid, mermaid_block, mermaid_too_big, node_id
from phoebe_cli.render.status import graph_text
from phoebe_cli.usecases.status import Snapshot, StatusOptions, build_report
from tests.support import mermaid as mermaid_parser
from tests.unit.test_tree import hr, index, ks


def cluster() -> dict[ObjectRef, FluxObject]:
    return index(
        ks(
            "cluster-apps",
            "flux-system",
            children=[
                "Kustomization/rook.ceph/ceph",
                "Kustomization/media/sonarr",
                "Kustomization/apps/web",
                "Kustomization/apps/a",
                "Kustomization/apps/b",
            ],
        ),
        ks("ceph", "rook.ceph", ready="False", reason="HealthCheckFailed", message="timeout"),
        ks(
            "sonarr",
            "media",
            depends=["rook.ceph/ceph", "media/gone"],
            ready="False",
            reason="DependencyNotReady",
            message="dependency 'rook.ceph/ceph' is not ready",
        ),
        ks("web", children=["HelmRelease/apps/web-ui.v2"], suspend=True),
        hr("web-ui.v2"),
        ks(
            "a",
            depends=["apps/b"],
            ready="False",
            reason="DependencyNotReady",
            message="dependency 'apps/b' is not ready",
        ),
        ks(
            "b",
            depends=["apps/a"],
            ready="False",
            reason="DependencyNotReady",
            message="dependency 'apps/a' is not ready",
        ),
    )


def blocked_of(objects: Mapping[ObjectRef, FluxObject]) -> dict[ObjectRef, Blocked]:
    return {ref: chain for ref, obj in objects.items() if (chain := blocked_by(obj, objects)) is not None}


SNAPSHOTS = Path(__file__).parent / "graph_snapshots"  # reviewed: the drawings of cluster()


def test_mermaid_text_is_pinned() -> None:
    objects = cluster()
    text = mermaid(build_graph(objects, blocked_of(objects)), title="phoebe status: context home")
    assert text == (SNAPSHOTS / "status.mmd").read_text()


def test_dot_text_is_pinned() -> None:
    objects = cluster()
    assert dot(build_graph(objects, blocked_of(objects))) == (SNAPSHOTS / "status.dot").read_text()


def test_states_edges_chains_and_cycles() -> None:
    objects = cluster()
    graph = build_graph(objects, blocked_of(objects))
    states = {str(n.ref): n.state for n in graph.nodes}
    assert states == {
        "Kustomization/apps/a": NodeState.BLOCKED,
        "Kustomization/apps/b": NodeState.BLOCKED,
        "Kustomization/apps/web": NodeState.SUSPENDED,
        "Kustomization/flux-system/cluster-apps": NodeState.READY,
        "Kustomization/media/gone": NodeState.MISSING,
        "Kustomization/media/sonarr": NodeState.BLOCKED,
        "Kustomization/rook.ceph/ceph": NodeState.FAILING,
        "HelmRelease/apps/web-ui.v2": NodeState.READY,
    }
    assert [str(n.ref) for n in graph.nodes if n.cause] == ["Kustomization/rook.ceph/ceph"]
    assert [[str(r) for r in c] for c in graph.cycles] == [["Kustomization/apps/a", "Kustomization/apps/b"]]
    blocking = [(str(e.source), str(e.target)) for e in graph.edges if e.blocking and not e.in_cycle]
    assert blocking == [("Kustomization/media/sonarr", "Kustomization/rook.ceph/ceph")]
    assert sum(1 for e in graph.edges if e.kind is EdgeKind.APPLIES) == 6


def test_reconciling_and_unknown_states() -> None:
    objects = index(
        ks("r", ready="Unknown", reason="Progressing"),
        ks("u", ready=None),
    )
    graph = build_graph(objects, blocked_of(objects))
    assert {n.ref.name: n.state for n in graph.nodes} == {"r": NodeState.RECONCILING, "u": NodeState.UNKNOWN}


def test_a_self_dependency_is_a_cycle() -> None:
    objects = index(ks("loop", depends=["apps/loop"], ready="False", reason="DependencyNotReady"))
    graph = build_graph(objects, blocked_of(objects))
    assert [[r.name for r in c] for c in graph.cycles] == [["loop"]]
    assert [e.in_cycle for e in graph.edges] == [True]


def test_the_same_objects_in_any_order_draw_the_same() -> None:
    objects = cluster()
    items = list(objects.items())
    expected = mermaid(build_graph(objects, blocked_of(objects)))
    for seed in range(5):
        random.Random(seed).shuffle(items)
        shuffled = dict(items)
        assert mermaid(build_graph(shuffled, blocked_of(shuffled))) == expected


@pytest.mark.parametrize(
    ("namespace", "name"),
    [("a-b", "c.d"), ("a", "b-c.d"), ("end", "end"), ("x_y", "z"), ("x", "y_z"), ("ns", "o-x"), ("é", 'ü"q')],
)
def test_node_ids_are_safe_and_distinct(namespace: str, name: str) -> None:
    ref = ObjectRef("Kustomization", namespace, name)
    identifier = node_id(ref)
    assert identifier.replace("_", "").isalnum() and identifier.isascii()
    assert identifier.startswith("ks__")


def test_node_ids_never_collide() -> None:
    pieces = ["a", "a-b", "a_b", "a_2db", "a.b", "a__b", "_", "-", "a_", "_a"]
    refs = [ObjectRef(kind, ns, name) for kind in ("Kustomization", "HelmRelease") for ns in pieces for name in pieces]
    assert len({node_id(r) for r in refs}) == len(refs)


def test_failed_keeps_the_failing_part_and_what_leads_to_it() -> None:
    report = build_report(Snapshot(objects=cluster(), context="home"), StatusOptions(failed=True))
    text = graph_text(report, "mermaid")
    assert "apps__web" not in text  # ready and suspended: left out
    assert "ks__flux_2dsystem__cluster_2dapps[" in text  # the Kustomization that applied the failing ones
    assert 'ks__media__sonarr ==>|"dependsOn"| ks__rook_2eceph__ceph' in text


def test_a_kind_selection_keeps_the_blocked_by_chain() -> None:
    objects = cluster()
    graph = build_graph(objects, blocked_of(objects), keep=[ObjectRef("Kustomization", "media", "sonarr")])
    assert [str(n.ref) for n in graph.nodes] == [
        "Kustomization/media/gone",
        "Kustomization/media/sonarr",
        "Kustomization/rook.ceph/ceph",
    ]


def test_mermaid_block_is_a_fenced_block() -> None:
    objects = index(ks("web", children=["HelmRelease/apps/web"]), hr("web"))
    assert mermaid_block(objects) == "\n".join(
        [
            "```mermaid",
            "flowchart LR",
            '  ks__apps__web["Kustomization/apps/web"]:::ready',
            '  hr__apps__web["HelmRelease/apps/web"]:::ready',
            "  ks__apps__web --> hr__apps__web",
            "  classDef ready fill:#d4edda,stroke:#28a745,color:#000",
            "```",
            "",
        ]
    )


def test_nothing_matched_is_still_a_diagram() -> None:
    graph = build_graph({}, {})
    assert mermaid(graph) == 'flowchart LR\n  empty["no Kustomization or HelmRelease matched"]\n'


# --- the drawings parse -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def parse_mermaid():  # type: ignore[no-untyped-def]
    if mermaid_parser.mermaid_parser() is None:
        pytest.fail("node and npm are needed to check the mermaid output (apt install nodejs npm)")
    return mermaid_parser.parse


def test_mermaid_parses(parse_mermaid) -> None:  # type: ignore[no-untyped-def]
    objects = cluster()
    for graph in (build_graph(objects, blocked_of(objects)), build_graph({}, {})):
        parsed = parse_mermaid(mermaid(graph, title="phoebe status: context home"))
        assert parsed.ok, parsed.error
        assert parsed.diagram_type == "flowchart-v2"
    names = index(
        ks("end", "o", depends=["x/graph"]), ks("graph", "x", ready="False", reason="R"), hr("subgraph", "end")
    )
    parsed = parse_mermaid(mermaid(build_graph(names, blocked_of(names))))
    assert parsed.ok, parsed.error


def test_the_parser_rejects_what_mermaid_rejects(parse_mermaid) -> None:  # type: ignore[no-untyped-def]
    # The check can fail: a bare "end" as an id, and a linkStyle past the last edge.
    assert not parse_mermaid("flowchart LR\n  a --> end\n").ok
    assert not parse_mermaid("flowchart LR\n  a --> b\n  linkStyle 1 stroke:#f00\n").ok


def test_dot_renders_to_svg() -> None:
    program = shutil.which("dot")
    assert program is not None, "Graphviz's dot is needed (apt install graphviz)"
    objects = cluster()
    done = subprocess.run(
        [program, "-Tsvg"],
        input=dot(build_graph(objects, blocked_of(objects))),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert "<svg" in done.stdout and "failing, root cause" in done.stdout


def test_a_diagram_mermaid_would_not_draw_is_said() -> None:
    children = [f"HelmRelease/apps/app-{i:03d}" for i in range(600)]
    objects = index(ks("all", children=children), *(hr(f"app-{i:03d}") for i in range(600)))
    text = mermaid(build_graph(objects, blocked_of(objects)))

    assert mermaid_too_big(text) == (
        f"the diagram has {len(text)} characters (mermaid draws up to 50000) and 600 edges (mermaid draws up to 500): "
        "GitHub and Forgejo will not draw it; narrow it (KIND, -n, -l, --failed, --root) or use -o svg"
    )
    small = index(ks("all", children=children[:3]), *(hr(f"app-{i:03d}") for i in range(3)))
    assert mermaid_too_big(mermaid(build_graph(small, blocked_of(small)))) is None


def test_mermaid_refuses_more_than_500_edges(parse_mermaid) -> None:  # type: ignore[no-untyped-def]
    # the limit mermaid_too_big warns about is mermaid's own
    edges = "\n".join(f"  a --> b{i}" for i in range(501))
    assert not parse_mermaid(f"flowchart LR\n{edges}\n").ok
    assert parse_mermaid(f"flowchart LR\n{edges.rsplit(chr(10), 1)[0]}\n").ok
