"""The Kustomization and HelmRelease graph, as ``status -o mermaid|dot|svg`` draws it.

Pure. Nodes are Kustomizations and HelmReleases, each in one of the states a picture shows
(ready, failing, blocked, reconciling, suspended, unknown; "missing" for a ``dependsOn`` target
that is not there). Edges:

- **applies**: a Kustomization to each Kustomization or HelmRelease in its inventory (every
  entry, so an object applied by two Kustomizations has two such edges, unlike the tree);
- **dependsOn**: an object to each object in its ``spec.dependsOn``.

Blocked-by chains (flux/tree.py) mark their ``dependsOn`` edges and their root cause; dependency
cycles (strongly connected parts of the dependsOn edges) are kept, drawn and marked, never
followed for ever. Everything is sorted, so the same objects always give the same graph.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from phoebe_cli.flux.kinds import HELM_RELEASE, KUSTOMIZATION, kind_of
from phoebe_cli.flux.objects import FluxObject, ObjectRef, State
from phoebe_cli.flux.tree import Blocked, BlockProblem

GRAPH_KINDS = (KUSTOMIZATION.kind, HELM_RELEASE.kind)


class NodeState(StrEnum):
    READY = "ready"
    FAILING = "failing"  # not ready for its own reason
    BLOCKED = "blocked"  # not ready because a dependency is not
    RECONCILING = "reconciling"
    SUSPENDED = "suspended"
    UNKNOWN = "unknown"
    MISSING = "missing"  # named in a dependsOn, not there


class EdgeKind(StrEnum):
    APPLIES = "applies"
    DEPENDS_ON = "dependsOn"


@dataclass(frozen=True)
class Node:
    ref: ObjectRef
    state: NodeState
    cause: bool = False  # the end of a blocked-by chain: what the blocked objects wait on
    in_cycle: bool = False


@dataclass(frozen=True)
class Edge:
    source: ObjectRef
    target: ObjectRef
    kind: EdgeKind
    blocking: bool = False  # a step of a blocked-by chain
    in_cycle: bool = False


@dataclass(frozen=True)
class Graph:
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    cycles: tuple[tuple[ObjectRef, ...], ...]  # each sorted; drawn and marked

    def node(self, ref: ObjectRef) -> Node | None:
        return next((n for n in self.nodes if n.ref == ref), None)


def graph_key(ref: ObjectRef) -> tuple[int, str, str, str]:
    """Kustomizations first, then by namespace and name."""
    return (0 if ref.kind == KUSTOMIZATION.kind else 1, ref.namespace, ref.name, ref.kind)


def node_state(obj: FluxObject, blocked: Blocked | None) -> NodeState:
    if obj.state is State.READY:
        return NodeState.READY
    if obj.state is State.SUSPENDED:
        return NodeState.SUSPENDED
    if blocked is not None:
        return NodeState.BLOCKED
    if obj.state is State.FAILED:
        return NodeState.FAILING
    if obj.state is State.PROGRESSING:
        return NodeState.RECONCILING
    return NodeState.UNKNOWN


def build_graph(
    objects: Mapping[ObjectRef, FluxObject],
    blocked: Mapping[ObjectRef, Blocked],
    keep: Iterable[ObjectRef] | None = None,
) -> Graph:
    """The graph over the Kustomizations and HelmReleases of ``objects`` (only those in ``keep``
    when given, plus the blocked-by chains of those kept, so that what a failure leads back to is
    always drawn)."""
    wanted = set(objects if keep is None else keep)
    chosen = {ref for ref in wanted if ref.kind in GRAPH_KINDS and ref in objects}
    for ref in list(chosen):
        chain = blocked.get(ref)
        if chain is not None:
            chosen.update(r for r in chain.chain if r.kind in GRAPH_KINDS and r in objects)

    edges: dict[tuple[ObjectRef, ObjectRef, EdgeKind], Edge] = {}
    missing: set[ObjectRef] = set()
    for ref in chosen:
        obj = objects[ref]
        if obj.kind is KUSTOMIZATION:
            for entry in obj.inventory:
                kind = kind_of(entry.group, entry.kind)
                if kind is None or kind.kind not in GRAPH_KINDS:
                    continue
                child = ObjectRef(kind.kind, entry.namespace or "", entry.name)
                if child in chosen and child != ref:
                    edges[(ref, child, EdgeKind.APPLIES)] = Edge(ref, child, EdgeKind.APPLIES)
        for dep in obj.depends_on:
            if dep not in objects:
                missing.add(dep)
            elif dep not in chosen:
                continue
            edges[(ref, dep, EdgeKind.DEPENDS_ON)] = Edge(ref, dep, EdgeKind.DEPENDS_ON)

    steps: set[tuple[ObjectRef, ObjectRef]] = set()
    causes: set[ObjectRef] = set()
    for ref in chosen:
        chain = blocked.get(ref)
        if chain is None:
            continue
        steps.update(zip(chain.chain, chain.chain[1:], strict=False))
        if chain.problem is not BlockProblem.CYCLE:
            causes.add(chain.cause)

    depends: dict[ObjectRef, list[ObjectRef]] = {ref: [] for ref in chosen | missing}
    for source, target, edge_kind in edges:
        if edge_kind is EdgeKind.DEPENDS_ON:
            depends[source].append(target)
    for targets in depends.values():
        targets.sort(key=graph_key)
    cycles = _cycles(depends)
    cyclic = {ref for cycle in cycles for ref in cycle}
    component = {ref: i for i, cycle in enumerate(cycles) for ref in cycle}

    nodes = []
    for ref in sorted(chosen | missing, key=graph_key):
        found = objects.get(ref)
        state = NodeState.MISSING if found is None else node_state(found, blocked.get(ref))
        nodes.append(Node(ref, state, cause=ref in causes and state is not NodeState.READY, in_cycle=ref in cyclic))
    drawn = []
    for (source, target, edge_kind), edge in sorted(
        edges.items(), key=lambda item: (graph_key(item[0][0]), graph_key(item[0][1]), item[0][2].value)
    ):
        if edge_kind is EdgeKind.DEPENDS_ON:
            same = source in component and component.get(target) == component[source]
            drawn.append(Edge(source, target, edge_kind, blocking=(source, target) in steps, in_cycle=same))
        else:
            drawn.append(edge)
    return Graph(tuple(nodes), tuple(drawn), cycles)


def _cycles(edges: Mapping[ObjectRef, list[ObjectRef]]) -> tuple[tuple[ObjectRef, ...], ...]:
    """Strongly connected parts with more than one member (or a member depending on itself),
    by Tarjan's algorithm without recursion (a long chain must not hit Python's stack limit)."""
    index: dict[ObjectRef, int] = {}
    low: dict[ObjectRef, int] = {}
    on_stack: set[ObjectRef] = set()
    stack: list[ObjectRef] = []
    found: list[tuple[ObjectRef, ...]] = []
    counter = 0
    for start in sorted(edges, key=graph_key):
        if start in index:
            continue
        work: list[tuple[ObjectRef, int]] = [(start, 0)]
        while work:
            ref, position = work.pop()
            if position == 0:
                index[ref] = low[ref] = counter
                counter += 1
                stack.append(ref)
                on_stack.add(ref)
            targets = edges.get(ref, [])
            if position < len(targets):
                work.append((ref, position + 1))
                target = targets[position]
                if target not in index:
                    work.append((target, 0))
                elif target in on_stack:
                    low[ref] = min(low[ref], index[target])
                continue
            if low[ref] == index[ref]:
                members = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    members.append(member)
                    if member == ref:
                        break
                if len(members) > 1 or ref in targets:
                    found.append(tuple(sorted(members, key=graph_key)))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[ref])
    return tuple(sorted(found, key=lambda cycle: graph_key(cycle[0])))
