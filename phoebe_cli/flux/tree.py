"""The cluster as Flux sees it: which Kustomization applied what, and why things are blocked.

Pure. Built from the objects of one run:

- **Tree**: roots are the Kustomizations that no other Kustomization lists in its
  ``status.inventory``; a Kustomization's children are the Flux objects (Kustomizations,
  HelmReleases, sources, ExternalSecrets) in its inventory. Objects reachable from no root are
  "unattached" — listed, never dropped.
- **Blocked by**: an object not ready because a dependency is not ready (DependencyNotReady, or a
  ``dependsOn`` target that is not ready) is followed along ``spec.dependsOn`` to the first
  object that is not ready for its own reason; cycles and missing dependencies are reported.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from phoebe_cli.flux.kinds import KUSTOMIZATION, kind_of
from phoebe_cli.flux.objects import DEPENDENCY_NOT_READY, FluxObject, ObjectRef, State


@dataclass(frozen=True)
class Tree:
    roots: tuple[ObjectRef, ...]
    children: Mapping[ObjectRef, tuple[ObjectRef, ...]]
    unattached: tuple[ObjectRef, ...]
    parents: Mapping[ObjectRef, ObjectRef]
    sources: Mapping[ObjectRef, ObjectRef]  # object -> the source it reads from, when known

    def edges(self) -> list[tuple[ObjectRef, ObjectRef]]:
        return [(parent, child) for parent, kids in self.children.items() for child in kids]


def _sort_key(ref: ObjectRef) -> tuple[int, str, str, str]:
    order = {"Kustomization": 0, "HelmRelease": 1}
    return (order.get(ref.kind, 2), ref.namespace, ref.kind, ref.name)


def build_tree(objects: Mapping[ObjectRef, FluxObject], roots: Sequence[ObjectRef] | None = None) -> Tree:
    """The inventory tree over ``objects``; ``roots`` overrides the computed roots."""
    children: dict[ObjectRef, list[ObjectRef]] = {}
    listed: set[ObjectRef] = set()
    for ref, obj in objects.items():
        if obj.kind is not KUSTOMIZATION:
            continue
        kids = []
        for entry in obj.inventory:
            kind = kind_of(entry.group, entry.kind)
            if kind is None:
                continue
            child = ObjectRef(kind.kind, entry.namespace or "", entry.name)
            if child in objects and child != ref:
                kids.append(child)
                listed.add(child)
        if kids:
            children[ref] = sorted(set(kids), key=_sort_key)
    if roots is None:
        roots = sorted(
            (ref for ref, obj in objects.items() if obj.kind is KUSTOMIZATION and ref not in listed), key=_sort_key
        )
    parents: dict[ObjectRef, ObjectRef] = {}
    reached: set[ObjectRef] = set()
    stack = list(reversed(roots))
    kept_children: dict[ObjectRef, tuple[ObjectRef, ...]] = {}
    while stack:
        ref = stack.pop()
        if ref in reached:
            continue
        reached.add(ref)
        kept = tuple(k for k in children.get(ref, ()) if k not in reached and k not in parents)
        for kid in kept:
            parents[kid] = ref
        if kept:
            kept_children[ref] = kept
        stack.extend(reversed(kept))
    # Sources shown beside the objects that read from them (a HelmRelease's HelmChart, that
    # chart's HelmRepository, a Kustomization's GitRepository) are attached through them.
    sources: dict[ObjectRef, ObjectRef] = {}
    for ref, obj in objects.items():
        source = obj.source_ref
        if source is not None:
            sources[ref] = source
    beside: set[ObjectRef] = set()
    frontier = list(reached)
    while frontier:
        source = sources.get(frontier.pop())
        if source is not None and source not in reached and source not in beside:
            beside.add(source)
            frontier.append(source)
    unattached = tuple(sorted((ref for ref in objects if ref not in reached and ref not in beside), key=_sort_key))
    return Tree(tuple(roots), kept_children, unattached, parents, sources)


class BlockProblem(StrEnum):
    CYCLE = "cycle"
    MISSING = "missing"


@dataclass(frozen=True)
class Blocked:
    """Why an object waits on others: the chain from it to the root cause."""

    chain: tuple[ObjectRef, ...]  # the object first, then each dependency followed
    problem: BlockProblem | None = None  # the chain ends in a cycle or a missing object

    @property
    def cause(self) -> ObjectRef:
        return self.chain[-1]


def _not_ready(obj: FluxObject | None) -> bool:
    return obj is not None and obj.state not in (State.READY, State.SUSPENDED)


def blocked_by(obj: FluxObject, objects: Mapping[ObjectRef, FluxObject]) -> Blocked | None:
    """The dependency chain that keeps ``obj`` from being ready, or None if nothing does."""
    if obj.state is State.READY or obj.state is State.SUSPENDED or not obj.depends_on:
        return None
    if obj.reason != DEPENDENCY_NOT_READY and not any(
        _not_ready(objects.get(dep)) or dep not in objects for dep in obj.depends_on
    ):
        return None
    chain = [obj.ref]
    current = obj
    seen = {obj.ref}
    while True:
        next_ref = _first_unready_dependency(current, objects)
        if next_ref is None:
            break
        if next_ref in seen:
            return Blocked((*chain, next_ref), BlockProblem.CYCLE)
        chain.append(next_ref)
        seen.add(next_ref)
        dependency = objects.get(next_ref)
        if dependency is None:
            return Blocked(tuple(chain), BlockProblem.MISSING)
        if dependency.reason != DEPENDENCY_NOT_READY and not any(
            _not_ready(objects.get(d)) or d not in objects for d in dependency.depends_on
        ):
            break  # not ready for its own reason: the root cause
        current = dependency
    if len(chain) == 1:
        return None
    return Blocked(tuple(chain))


def blocked_by_or_source(obj: FluxObject, objects: Mapping[ObjectRef, FluxObject]) -> Blocked | None:
    """``blocked_by``, else, for an object not ready whose source is not ready either (no artifact
    to apply: the controller waits on it), the source as the cause. An object still Ready on the
    source's last artifact is not blocked: it is not shown so."""
    chain = blocked_by(obj, objects)
    if chain is not None or obj.state in (State.READY, State.SUSPENDED):
        return chain
    source = obj.source_ref
    found = None if source is None else objects.get(source)
    if found is None or found.ref == obj.ref or found.state not in (State.FAILED, State.SUSPENDED):
        return None  # an unknown or progressing source is no cause yet
    return Blocked((obj.ref, found.ref))


def _first_unready_dependency(obj: FluxObject, objects: Mapping[ObjectRef, FluxObject]) -> ObjectRef | None:
    # Prefer what the controller named in its message, then the first dependency not ready.
    message = obj.message
    candidates = list(obj.depends_on)
    named = [d for d in candidates if f"'{d.namespace}/{d.name}'" in message]
    for dep in named + candidates:
        if dep not in objects or _not_ready(objects[dep]):
            return dep
    return None


def unsatisfiable(objects: Mapping[ObjectRef, FluxObject]) -> dict[ObjectRef, str]:
    """Objects whose ``spec.dependsOn`` can never be met among ``objects``, and why: a dependency
    that is not there, a dependency cycle, or a dependency that is itself unsatisfiable. Flux
    keeps such objects ``DependencyNotReady`` for ever (the checkout's view uses this, where
    nothing has a status yet)."""
    found: dict[ObjectRef, str] = {}
    edges = {ref: [d for d in obj.depends_on if d in objects] for ref, obj in objects.items()}
    for ref, obj in objects.items():
        missing = next((d for d in obj.depends_on if d not in objects), None)
        if missing is not None:
            found[ref] = f"dependency '{missing.namespace}/{missing.name}' not found"
    for ref in sorted(objects, key=lambda r: (r.namespace, r.name, r.kind)):
        if ref in found:
            continue
        cycle = _cycle_through(ref, edges)
        if cycle is not None:
            path = " → ".join(f"{r.namespace}/{r.name}" for r in cycle)
            for member in cycle:
                found.setdefault(member, f"dependency cycle: {path}")
    changed = True
    while changed:
        changed = False
        for ref, obj in objects.items():
            if ref in found:
                continue
            bad = next((d for d in obj.depends_on if d in found), None)
            if bad is not None:
                found[ref] = f"dependency '{bad.namespace}/{bad.name}' is not ready"
                changed = True
    return found


def _cycle_through(start: ObjectRef, edges: Mapping[ObjectRef, Sequence[ObjectRef]]) -> list[ObjectRef] | None:
    """The shortest dependency path from ``start`` back to itself (start first and last), or None."""
    previous: dict[ObjectRef, ObjectRef] = {}
    frontier = [start]
    while frontier:
        following: list[ObjectRef] = []
        for ref in frontier:
            for dep in edges.get(ref, ()):
                if dep == start:
                    path = [ref]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [start, *reversed(path[:-1]), start] if len(path) > 1 else [start, start]
                if dep not in previous:
                    previous[dep] = ref
                    following.append(dep)
        frontier = following
    return None


@dataclass
class Counts:
    by_kind: dict[str, dict[State, int]] = field(default_factory=dict)

    def add(self, kind: str, state: State) -> None:
        states = self.by_kind.setdefault(kind, {})
        states[state] = states.get(state, 0) + 1

    def total(self, state: State | None = None) -> int:
        return sum(n for states in self.by_kind.values() for s, n in states.items() if state is None or s is state)


def count(objects: Iterable[FluxObject]) -> Counts:
    counts = Counts()
    for obj in objects:
        counts.add(obj.kind.kind, obj.state)
    return counts
