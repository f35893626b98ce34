"""The cycle model's timeline picture: ``xir profile … --svg F``.

One lane per queue (LOAD, SAVE, CONV, MISC), a bar per instruction from its start to the
moment it leaves its engine, coloured by layer, on a time axis in µs; a legend names the
busiest layers. Bars of one layer closer than a pixel are merged first, so a stream of 150k
instructions draws a few thousand rectangles and the file stays small. Drawn as
``xir/tools/inspect_svg.py`` draws: matplotlib's own Figure on its SVG canvas (headless, no
pyplot), text kept as ``<text>``; each lane is a group with id ``lane-LOAD`` … .
"""

from __future__ import annotations

import io

import numpy as np

from xir.diagnostics import XirError

from .cycles import QUEUES, CycleReport

WIDTH, LANE_HEIGHT = 12.0, 0.5  # inches: figure width, height per lane
PIXELS = 1200  # horizontal resolution bars are merged to
LEGEND_LAYERS = 10  # the busiest layers named in the legend
NO_LAYER = "#9a9a9a"
PIP_HINT = "pip install 'xir[svg]'"


def timeline_svg(report: CycleReport, path_or_file=None) -> str:
    """Draw ``report``'s timeline as SVG; write it to ``path_or_file`` (a path or a text file
    object) when given, and return the SVG text. XirError when matplotlib is missing."""
    Figure, FigureCanvasSVG, Patch = _libraries()
    from matplotlib import colormaps, rc_context

    palette = colormaps["tab20"].colors
    colors = [palette[k % len(palette)] for k in range(len(report.layers))]
    us = 1.0 / report.clock_mhz
    fig = Figure(figsize=(WIDTH, 1.6 + LANE_HEIGHT * len(QUEUES)))
    FigureCanvasSVG(fig)
    ax = fig.add_axes((0.07, 0.36, 0.9, 0.54))
    threshold = max(report.cycles / PIXELS, 1.0)
    for lane, name in enumerate(QUEUES):
        starts, ends, layers = merged_bars(report, lane, threshold)
        faces = [colors[k] if k >= 0 else NO_LAYER for k in layers.tolist()]
        bars = ax.broken_barh(list(zip((starts * us).tolist(), ((ends - starts) * us).tolist())),
                              (lane - 0.4, 0.8), facecolors=faces or [NO_LAYER], linewidth=0)
        bars.set_gid(f"lane-{name}")
    ax.set_yticks(range(len(QUEUES)), QUEUES)
    ax.set_ylim(len(QUEUES) - 0.5, -0.5)
    ax.set_xlim(0, max(report.cycles, 1) * us)
    ax.set_xlabel("time (µs)")
    util = report.mac_utilization
    ax.set_title(f"{report.target} at {report.clock_mhz:g} MHz: {report.cycles} cycles, "
                 f"{report.latency_ms:.3f} ms" +
                 (f", MAC utilization {100 * util:.1f} %" if util is not None else ""),
                 fontsize=10)
    busiest = sorted(range(len(report.layers)), key=lambda k: -sum(report.layers[k].busy[q]
                                                                     for q in QUEUES))
    handles = [Patch(color=colors[k], label=report.layers[k].name)
               for k in busiest[:LEGEND_LAYERS]]
    if handles:
        fig.legend(handles=handles, loc="lower center", ncol=min(5, len(handles)), fontsize=8,
                   frameon=False)
    out = io.StringIO()
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": "xir"}):
        fig.savefig(out, format="svg", metadata={"Date": None})
    text = out.getvalue()
    if path_or_file is not None:
        if hasattr(path_or_file, "write"):
            path_or_file.write(text)
        else:
            with open(path_or_file, "w", encoding="utf-8") as f:
                f.write(text)
    return text


def merged_bars(report: CycleReport, lane: int, threshold: float):
    """(starts, ends, layers) of queue ``lane``'s bars after merging neighbours of the same
    layer less than ``threshold`` cycles apart (instructions of a queue are in time order)."""
    idx = np.flatnonzero(report.queue == lane)
    s, e, lay = report.start[idx], report.busy_end[idx], report.layer[idx]
    if not len(idx):
        return s, e, lay
    new = np.ones(len(idx), dtype=bool)
    new[1:] = (lay[1:] != lay[:-1]) | (s[1:] - e[:-1] >= threshold)
    first = np.flatnonzero(new)
    return s[first], np.maximum.reduceat(e, first), lay[first]


def _libraries():
    """The matplotlib pieces, or one XirError saying how to install them."""
    try:
        from matplotlib.backends.backend_svg import FigureCanvasSVG
        from matplotlib.figure import Figure
        from matplotlib.patches import Patch
    except ImportError as e:
        raise XirError(f"the timeline needs matplotlib ({e.name} is not installed): "
                       f"{PIP_HINT}") from None
    return Figure, FigureCanvasSVG, Patch
