"""The inspector's graph picture: ``xir inspect MODEL --svg F``.

Every node is a dot colored by where it runs (DPU blue, CPU red, USER black) with its name and op
beside it; edges follow the nodes' ``inputs``; each fused group (a convolution and the BatchNorm
and ReLU its instruction carries) is one box. networkx orders the graph into layers
(``topological_generations``) and matplotlib draws it with its SVG backend, headless, with text
kept as ``<text>`` so the names stay searchable and the file small.

The layout is layered from top to bottom. A fused group takes one slot of its layer and its
members stack inside it, so boxes never overlap other nodes; within a layer, slots are ordered by
the mean position of what they read (one barycenter sweep), which keeps a CNN's chain straight.
"""

from __future__ import annotations

import io

from xir.diagnostics import XirError
from xir.passes.inspection import CPU, DPU, USER, InspectionReport

COLORS = {DPU: "#1f5fbf", CPU: "#d62728", USER: "#000000"}
EDGE_COLOR = "#9a9a9a"
BOX_COLOR = "#555555"

SLOT_WIDTH = 2.6  # inches per slot of a layer: the dot and a label of ~30 characters
ROW_HEIGHT = 0.32  # inches per stacked node
LAYER_GAP = 0.28  # inches between layers
MARGIN = 0.2  # inches left of the first column
TITLE_HEIGHT = 0.6  # inches above the first layer: the title and the legend
MIN_WIDTH = 6.5  # inches: room for the title and the legend above a one-column chain
LABEL_LIMIT = 2000  # above this many nodes the labels are left out (drawing stays well under 1 s)
PIP_HINT = "pip install 'xir[svg]'"


def render_svg(report: InspectionReport) -> str:
    """The report drawn as an SVG document (a str); XirError when networkx or matplotlib is
    missing."""
    nx, Figure, FigureCanvasSVG, Rectangle, LineCollection = _libraries()
    layers, preds, members = _slots(report, nx)
    pos, height, width = _positions(layers, preds, members)
    fig = Figure(figsize=(width, height))
    FigureCanvasSVG(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(-height, 0)
    ax.axis("off")
    _draw_boxes(ax, members, pos, Rectangle)
    _draw_edges(ax, report, pos, LineCollection)
    _draw_nodes(ax, report, pos)
    _draw_title(ax, report)
    out = io.StringIO()
    from matplotlib import rc_context

    with rc_context({"svg.fonttype": "none", "svg.hashsalt": "xir"}):
        fig.savefig(out, format="svg", metadata={"Date": None})
    return out.getvalue()


def _libraries():
    """networkx and the matplotlib pieces, or one XirError saying how to install them."""
    try:  # no pyplot and no matplotlib.use(): our own Figure on the SVG canvas is headless
        import networkx as nx
        from matplotlib.backends.backend_svg import FigureCanvasSVG
        from matplotlib.collections import LineCollection
        from matplotlib.figure import Figure
        from matplotlib.patches import Rectangle
    except ImportError as e:
        raise XirError(f"--svg needs networkx and matplotlib ({e.name} is not installed): "
                       f"{PIP_HINT}") from None
    return nx, Figure, FigureCanvasSVG, Rectangle, LineCollection


def _slots(report: InspectionReport, nx):
    """(layers of slots, each slot's predecessors, members per slot): a slot is a fused group
    (named by its head) or a lone node."""
    owner = {n.name: n.name for n in report.nodes}
    members: dict[str, list[str]] = {n.name: [n.name] for n in report.nodes}
    for head, group in report.groups().items():
        if head not in owner:
            continue
        for name in group[1:]:
            if name in owner:
                owner[name] = head
                members.pop(name, None)
        members[head] = [m for m in group if m in owner]
    graph = nx.DiGraph()
    graph.add_nodes_from(members)
    for n in report.nodes:
        for i in n.inputs:
            if i in owner and owner[i] != owner[n.name]:
                graph.add_edge(owner[i], owner[n.name])
    if not nx.is_directed_acyclic_graph(graph):  # a group read back by its own output's users
        graph = nx.DiGraph()
        graph.add_nodes_from(owner)
        graph.add_edges_from((i, n.name) for n in report.nodes for i in n.inputs if i in owner)
        members = {name: [name] for name in owner}
    preds = {slot: list(graph.predecessors(slot)) for slot in graph}
    return list(nx.topological_generations(graph)), preds, members


def _positions(layers, preds, members):
    """(x, y) of every node in inches (y negative: the picture grows downwards), and the
    picture's height and width."""
    pos: dict[str, tuple[float, float]] = {}
    slot_x: dict[str, float] = {}

    def barycenter(slot):
        xs = [slot_x[p] for p in preds[slot]]
        return sum(xs) / len(xs) if xs else 0.0

    y, widest = TITLE_HEIGHT, 1
    for layer in layers:
        layer = sorted(layer, key=barycenter)
        widest = max(widest, len(layer))
        for k, slot in enumerate(layer):
            slot_x[slot] = MARGIN + k * SLOT_WIDTH
            for r, name in enumerate(members[slot]):
                pos[name] = (slot_x[slot], -(y + (r + 0.5) * ROW_HEIGHT))
        y += max(len(members[s]) for s in layer) * ROW_HEIGHT + LAYER_GAP
    return pos, y, max(MARGIN + widest * SLOT_WIDTH, MIN_WIDTH)


def _draw_boxes(ax, members, pos, Rectangle):
    for group in members.values():
        if len(group) < 2:
            continue
        x, top = pos[group[0]]
        bottom = pos[group[-1]][1]
        ax.add_patch(Rectangle((x - 0.12, bottom - ROW_HEIGHT / 2 + 0.02), SLOT_WIDTH - 0.2,
                               top - bottom + ROW_HEIGHT - 0.04, fill=False,
                               edgecolor=BOX_COLOR, linewidth=0.8, linestyle="--"))


def _draw_edges(ax, report, pos, LineCollection):
    segments = [(pos[i], pos[n.name]) for n in report.nodes for i in n.inputs if i in pos]
    ax.add_collection(LineCollection(segments, colors=EDGE_COLOR, linewidths=0.6, zorder=1))


def _draw_nodes(ax, report, pos):
    xs = [pos[n.name][0] for n in report.nodes]
    ys = [pos[n.name][1] for n in report.nodes]
    ax.scatter(xs, ys, s=30, c=[COLORS.get(n.device, COLORS[USER]) for n in report.nodes],
               zorder=2, linewidths=0)
    if len(report.nodes) > LABEL_LIMIT:
        return
    for n, x, y in zip(report.nodes, xs, ys):
        ax.text(x + 0.1, y, f"{n.name} ({n.op})", fontsize=7, va="center",
                color=COLORS.get(n.device, COLORS[USER]), zorder=3)


def _draw_title(ax, report):
    s = report.summary()
    ax.text(0.05, -0.2, f"{report.target}: DPU {s.ops.get(DPU, 0)} ops, CPU {s.ops.get(CPU, 0)}, "
            f"USER {s.ops.get(USER, 0)}; {s.dpu_mac_fraction:.1%} of MACs on the DPU",
            fontsize=9, va="center", color=COLORS[USER])
    ax.text(0.05, -0.45, "DPU", fontsize=8, va="center", color=COLORS[DPU], weight="bold")
    ax.text(0.45, -0.45, "CPU", fontsize=8, va="center", color=COLORS[CPU], weight="bold")
    ax.text(0.85, -0.45, "USER (model inputs)", fontsize=8, va="center", color=COLORS[USER],
            weight="bold")
    ax.text(2.3, -0.45, "dashed box: one fused DPU instruction", fontsize=8, va="center",
            color=BOX_COLOR)
