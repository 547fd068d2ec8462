"""The Kustomization and HelmRelease graph as text: Mermaid (renders in GitHub and Forgejo
markdown), Graphviz DOT, and SVG through Graphviz's ``dot``.

Node ids are made from kind, namespace and name so that any name is safe in both languages and
the same object always gets the same id: letters and digits stay, every other character becomes
``_`` and its two hex digits (``-`` is ``_2d``), and ``__`` separates the parts
(``ks__flux_2dsystem__apps``). Labels are quoted and escaped. The graph model is flux/graph.py;
this module only writes it down (and asks ``dot`` for SVG, a renderer phoebe does not bundle).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from phoebe_cli.errors import PhoebeError, ToolMissing
from phoebe_cli.flux.graph import EdgeKind, Graph, Node, NodeState, build_graph
from phoebe_cli.flux.kinds import KUSTOMIZATION
from phoebe_cli.flux.objects import FluxObject, ObjectRef
from phoebe_cli.flux.tree import blocked_by

GRAPHVIZ_PACKAGE = "graphviz"
DOT_TIMEOUT = 120.0

# fill, stroke: light fills so the black label text reads on every one
COLOURS: dict[NodeState, tuple[str, str]] = {
    NodeState.READY: ("#d4edda", "#28a745"),
    NodeState.FAILING: ("#f8d7da", "#d73a49"),
    NodeState.BLOCKED: ("#ffe5cc", "#e36209"),
    NodeState.RECONCILING: ("#fff5b1", "#b08800"),
    NodeState.SUSPENDED: ("#dbe9f9", "#0366d6"),
    NodeState.UNKNOWN: ("#eeeeee", "#6a737d"),
    NodeState.MISSING: ("#ffffff", "#6a737d"),
}
# mermaid's defaults, which GitHub and Forgejo keep: a longer text is drawn as an error box, more
# edges fail to parse
MERMAID_MAX_TEXT = 50_000
MERMAID_MAX_EDGES = 500
BLOCKING_COLOUR = "#d73a49"
CYCLE_COLOUR = "#6f42c1"


def node_id(ref: ObjectRef) -> str:
    prefix = "ks" if ref.kind == KUSTOMIZATION.kind else "hr"
    return f"{prefix}__{_escape(ref.namespace)}__{_escape(ref.name)}"


def _escape(text: str) -> str:
    out = []
    for char in text:
        if char.isascii() and char.isalnum():
            out.append(char)
        elif ord(char) < 0x100:
            out.append(f"_{ord(char):02x}")
        else:
            out.append(f"_u{ord(char):06x}")  # 'u' is no hex digit: still one way to read it back
    return "".join(out)


def _label_lines(node: Node) -> list[str]:
    lines = [f"{node.ref.kind}/{node.ref.namespace}/{node.ref.name}"]
    notes = [] if node.state is NodeState.READY else [node.state.value]
    if node.cause:
        notes.append("root cause")
    if node.in_cycle:
        notes.append("in a dependency cycle")
    if notes:
        lines.append(", ".join(notes))
    return lines


def _edge_label(edge_kind: EdgeKind, in_cycle: bool) -> str | None:
    if edge_kind is EdgeKind.APPLIES:
        return None
    return "dependsOn (cycle)" if in_cycle else "dependsOn"


# --- Mermaid ---------------------------------------------------------------------------------
def _mermaid_text(text: str) -> str:
    return text.replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")


def mermaid(graph: Graph, *, title: str | None = None) -> str:
    """A ``flowchart`` (no fence): applied objects under the Kustomization that applies them,
    dotted ``dependsOn`` arrows to dependencies, thick red arrows along blocked-by chains,
    purple ones around dependency cycles; nodes filled by state."""
    lines = ["flowchart LR"]
    if title:
        lines.append(f"  %% {' '.join(title.split())}")
    if not graph.nodes:
        lines.append('  empty["no Kustomization or HelmRelease matched"]')
        return "\n".join(lines) + "\n"
    for node in graph.nodes:
        label = "<br/>".join(_mermaid_text(line) for line in _label_lines(node))
        lines.append(f'  {node_id(node.ref)}["{label}"]:::{node.state.value}')
    blocking: list[int] = []
    cyclic: list[int] = []
    for number, edge in enumerate(graph.edges):
        source, target = node_id(edge.source), node_id(edge.target)
        text = _edge_label(edge.kind, edge.in_cycle)
        if text is None:
            lines.append(f"  {source} --> {target}")
        elif edge.blocking and not edge.in_cycle:
            lines.append(f'  {source} ==>|"{text}"| {target}')
        else:
            lines.append(f'  {source} -.->|"{text}"| {target}')
        if edge.in_cycle:
            cyclic.append(number)
        elif edge.blocking:
            blocking.append(number)
    for cycle in graph.cycles:
        lines.append("  %% dependency cycle: " + " ".join(str(ref) for ref in cycle))
    used = sorted({n.state for n in graph.nodes}, key=list(NodeState).index)
    for state in used:
        fill, stroke = COLOURS[state]
        dash = ",stroke-dasharray:4 3" if state is NodeState.MISSING else ""
        lines.append(f"  classDef {state.value} fill:{fill},stroke:{stroke},color:#000{dash}")
    causes = [node_id(n.ref) for n in graph.nodes if n.cause]
    if causes:
        lines.append(f"  classDef cause stroke-width:4px,stroke:{BLOCKING_COLOUR}")
        lines.append(f"  class {','.join(causes)} cause")
    cycle_nodes = [node_id(n.ref) for n in graph.nodes if n.in_cycle]
    if cycle_nodes:
        lines.append(f"  classDef cycle stroke-width:3px,stroke:{CYCLE_COLOUR},stroke-dasharray:6 3")
        lines.append(f"  class {','.join(cycle_nodes)} cycle")
    if blocking:
        lines.append(f"  linkStyle {','.join(map(str, blocking))} stroke:{BLOCKING_COLOUR},stroke-width:3px")
    if cyclic:
        lines.append(f"  linkStyle {','.join(map(str, cyclic))} stroke:{CYCLE_COLOUR},stroke-width:3px")
    return "\n".join(lines) + "\n"


def mermaid_too_big(text: str) -> str | None:
    """Why GitHub's mermaid would not draw ``text`` (too long, too many edges), or None."""
    edges = sum(1 for line in text.splitlines() if " --> " in line or " -.->|" in line or " ==>|" in line)
    problems = []
    if len(text) > MERMAID_MAX_TEXT:
        problems.append(f"{len(text)} characters (mermaid draws up to {MERMAID_MAX_TEXT})")
    if edges > MERMAID_MAX_EDGES:
        problems.append(f"{edges} edges (mermaid draws up to {MERMAID_MAX_EDGES})")
    if not problems:
        return None
    return (
        f"the diagram has {' and '.join(problems)}: GitHub and Forgejo will not draw it; "
        "narrow it (KIND, -n, -l, --failed, --root) or use -o svg"
    )


def mermaid_block(
    objects: Mapping[ObjectRef, FluxObject], keep: Iterable[ObjectRef] | None = None, *, title: str | None = None
) -> str:
    """A fenced ```mermaid block of the graph of ``objects`` (only ``keep`` and the blocked-by
    chains that lead from them, when given), for a markdown report: GitHub and Forgejo draw it."""
    blocked = {ref: chain for ref, obj in objects.items() if (chain := blocked_by(obj, objects)) is not None}
    graph = build_graph(objects, blocked, keep)
    return f"```mermaid\n{mermaid(graph, title=title)}```\n"


# --- Graphviz --------------------------------------------------------------------------------
def _dot_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def dot(graph: Graph, *, title: str | None = None) -> str:
    """A Graphviz ``digraph`` with the same nodes, edges, colours and marks as :func:`mermaid`."""
    lines = ["digraph flux {"]
    if title:
        lines.append(f'  label="{_dot_text(" ".join(title.split()))}";')
        lines.append("  labelloc=t;")
    lines.append("  rankdir=LR;")
    lines.append('  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=11];')
    lines.append('  edge [fontname="Helvetica", fontsize=9];')
    if not graph.nodes:
        lines.append('  empty [label="no Kustomization or HelmRelease matched", style=dashed];')
    for node in graph.nodes:
        fill, stroke = COLOURS[node.state]
        label = "\\n".join(_dot_text(line) for line in _label_lines(node))
        attributes = [f'label="{label}"', f'fillcolor="{fill}"', f'color="{stroke}"']
        styles = ["rounded", "filled"]
        if node.state is NodeState.MISSING or node.in_cycle:
            styles.append("dashed")
        if node.in_cycle:
            attributes[2] = f'color="{CYCLE_COLOUR}"'
        attributes.append(f'style="{",".join(styles)}"')
        if node.cause or node.in_cycle:
            attributes.append("penwidth=3")
        lines.append(f'  "{node_id(node.ref)}" [{", ".join(attributes)}];')
    for edge in graph.edges:
        attributes = []
        text = _edge_label(edge.kind, edge.in_cycle)
        if text is not None:
            attributes.extend([f'label="{text}"', "style=dashed"])
        if edge.in_cycle:
            attributes.extend([f'color="{CYCLE_COLOUR}"', "penwidth=2.5"])
        elif edge.blocking:
            attributes.extend([f'color="{BLOCKING_COLOUR}"', "penwidth=2.5", "style=bold"])
            attributes = [a for a in attributes if a != "style=dashed"]
        suffix = f" [{', '.join(attributes)}]" if attributes else ""
        lines.append(f'  "{node_id(edge.source)}" -> "{node_id(edge.target)}"{suffix};')
    for cycle in graph.cycles:
        lines.append("  // dependency cycle: " + " ".join(str(ref) for ref in cycle))
    lines.append("}")
    return "\n".join(lines) + "\n"


def svg(dot_source: str) -> str:
    """SVG from Graphviz's ``dot`` (``$PHOEBE_DOT`` when set, else ``dot`` on PATH); ToolMissing
    (exit 5) naming the package when it is not installed."""
    import os
    import shutil
    import subprocess

    explicit = os.environ.get("PHOEBE_DOT")
    program = explicit or shutil.which("dot")
    if not program:
        raise ToolMissing(
            f"-o svg needs Graphviz's dot, which is not on PATH: install the {GRAPHVIZ_PACKAGE} package "
            "(apt install graphviz, brew install graphviz), or use -o dot or -o mermaid"
        )
    try:
        done = subprocess.run(
            [program, "-Tsvg"], input=dot_source, capture_output=True, text=True, timeout=DOT_TIMEOUT, check=False
        )
    except OSError as exc:
        raise ToolMissing(f"cannot run {program}: install the {GRAPHVIZ_PACKAGE} package") from exc
    except subprocess.TimeoutExpired as exc:
        raise PhoebeError(f"Graphviz's dot did not finish in {DOT_TIMEOUT:.0f}s; use -o dot") from exc
    if done.returncode != 0:
        first = next((line for line in done.stderr.splitlines() if line.strip()), f"exit {done.returncode}")
        raise PhoebeError(f"Graphviz's dot failed: {first.strip()}")
    return done.stdout
