"""The quantization report as one HTML page: ``xir quantize ... --report R.html``.

The page is self-contained (inline CSS, the plot inline as ``<svg>``, no scripts, no external
assets): a header with the model, the calibration method and samples, the SQNR of each model
output, the bias-correction errors (and fast finetune's, when it ran), the ops kept in float and
the requantizations inserted; a table of layers (fix points, shifts, SQNR, colour-coded when
low); and a plot of each layer's SQNR in layer order against the output SQNR. matplotlib draws
the plot with its SVG canvas, headless (no pyplot), text kept as ``<text>``, as
``xir inspect --svg`` does.
"""

from __future__ import annotations

import io
import math
from html import escape

from xir.diagnostics import XirError
from xir.passes.quant_report import LayerReport, QuantReport
from xir.tools.inspect_svg import PIP_HINT

SQNR_LOW_DB = 20.0  # below: red (the layer loses more than a few bits of its 8)
SQNR_FAIR_DB = 30.0  # below: amber
COLORS = {"low": "#d62728", "fair": "#e8a317", "good": "#1f5fbf", "exact": "#2ca02c"}
OUTPUT_LINE_COLOR = "#000000"

BAR_WIDTH = 0.28  # inches per layer in the plot
PLOT_HEIGHT = 2.8  # inches above the layer names
CHAR_HEIGHT = 0.06  # inches per character of a rotated layer name (6 pt)
LABEL_CHARS = 32  # longer layer names keep their tail in the plot (the table has them whole)
MIN_PLOT_WIDTH = 6.5  # inches
LABEL_LIMIT = 300  # above this many layers the layer names under the bars are left out

_CSS = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; margin-bottom: 0.2em; }
h2 { font-size: 1.1em; margin-top: 1.4em; }
dl.summary { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em; }
dl.summary dt { font-weight: bold; }
dl.summary dd { margin: 0; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; }
th { background: #f0f0f0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.sqnr-low { background: #f8d0d0; }
td.sqnr-fair { background: #fbe8c0; }
td.sqnr-exact { background: #d4efd4; }
.legend span { padding: 0 0.5em; margin-right: 0.5em; }
.plot svg { max-width: 100%; height: auto; }
"""


def render_html(report: QuantReport, model_name: str) -> str:
    """The report as a self-contained HTML page (a str); XirError when matplotlib is missing."""
    svg = render_plot(report)
    title = f"Quantization report: {model_name}"
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             f"<title>{escape(title)}</title>", f"<style>{_CSS}</style>", "</head>", "<body>",
             f"<h1>{escape(title)}</h1>", _summary(report, model_name)]
    if report.bias_errors:
        parts.append(_per_layer_table("Bias correction", "mean |channel error| removed",
                                      report.bias_errors))
    finetune_left = getattr(report, "finetune_left", None)
    if finetune_left:
        parts.append(_per_layer_table("Fast finetune", "share of squared error left",
                                      finetune_left))
    parts += ["<h2>SQNR per layer</h2>", f'<div class="plot">{svg}</div>',
              "<h2>Layers</h2>", _legend(), _layer_table(report.layers), "</body>", "</html>"]
    return "\n".join(parts) + "\n"


def check_libraries() -> None:
    """Raise one XirError saying how to install matplotlib when it is missing."""
    _libraries()


def _libraries():
    try:  # no pyplot and no matplotlib.use(): our own Figure on the SVG canvas is headless
        from matplotlib import rc_context
        from matplotlib.backends.backend_svg import FigureCanvasSVG
        from matplotlib.figure import Figure
    except ImportError as e:
        raise XirError(f"--report R.html needs matplotlib ({e.name} is not installed): "
                       f"{PIP_HINT}") from None
    return Figure, FigureCanvasSVG, rc_context


# -- text ----------------------------------------------------------------------------------------


def format_sqnr(value: float | None) -> str:
    """An SQNR as the page shows it: dB with two decimals, 'exact' without error."""
    if value is None:
        return "–"
    if math.isinf(value):
        return "exact" if value > 0 else "−∞"
    return f"{value:.2f}"


def sqnr_class(value: float | None) -> str | None:
    """'exact', 'low', 'fair' or 'good' (None when there is no SQNR)."""
    if value is None:
        return None
    if value == math.inf:
        return "exact"
    if value < SQNR_LOW_DB:
        return "low"
    return "fair" if value < SQNR_FAIR_DB else "good"


def _summary(report: QuantReport, model_name: str) -> str:
    outputs = ", ".join(f"output {k}: {format_sqnr(s)} dB" if s is not None and math.isfinite(s)
                        else f"output {k}: {format_sqnr(s)}"
                        for k, s in enumerate(report.output_sqnr_db)) or "–"
    rows = [("model", escape(model_name)), ("method", escape(report.method)),
            ("calibration samples", str(report.samples)), ("output SQNR", outputs),
            ("layers", str(len(report.layers))),
            ("kept in float", _name_list(report.float_ops)),
            ("requantizations inserted", _name_list(report.requantized))]
    body = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows)
    return f'<dl class="summary">{body}</dl>'


def _name_list(names: list) -> str:
    if not names:
        return "none"
    return "<ul>" + "".join(f"<li>{escape(str(n))}</li>" for n in names) + "</ul>"


def _per_layer_table(title: str, what: str, values: dict) -> str:
    rows = "".join(f'<tr><td>{escape(str(name))}</td><td class="num">{value:.4g}</td></tr>'
                   for name, value in values.items())
    return (f"<h2>{title}</h2><table><thead><tr><th>layer</th><th>{escape(what)}</th></tr>"
            f"</thead><tbody>{rows}</tbody></table>")


def _legend() -> str:
    return ('<p class="legend">SQNR: '
            f'<span style="background:#f8d0d0">below {SQNR_LOW_DB:g} dB</span>'
            f'<span style="background:#fbe8c0">below {SQNR_FAIR_DB:g} dB</span>'
            '<span style="background:#d4efd4">exact (no error)</span></p>')


_COLUMNS = ("#", "layer", "op", "input fps", "weight fp", "bias fp", "output fp", "activation",
            "shifts", "SQNR (dB)")


def _layer_table(layers: list[LayerReport]) -> str:
    head = "".join(f"<th>{c}</th>" for c in _COLUMNS)
    rows = [f"<table><thead><tr>{head}</tr></thead><tbody>"]
    for k, layer in enumerate(layers):
        shifts = ", ".join(f"{escape(str(n))} {v}" for n, v in layer.shifts.items())
        kind = sqnr_class(layer.sqnr_db)
        sqnr_cell = f' class="num sqnr-{kind}"' if kind else ' class="num"'
        cells = [f'<td class="num">{k}</td>', f"<td>{escape(layer.name)}</td>",
                 f"<td>{escape(layer.op)}</td>",
                 f"<td>{', '.join(str(f) for f in layer.input_fps)}</td>",
                 f'<td class="num">{_opt(layer.weight_fp)}</td>',
                 f'<td class="num">{_opt(layer.bias_fp)}</td>',
                 f'<td class="num">{layer.output_fp}</td>',
                 f"<td>{escape(layer.activation) if layer.activation else ''}</td>",
                 f"<td>{shifts}</td>", f"<td{sqnr_cell}>{format_sqnr(layer.sqnr_db)}</td>"]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    rows.append("</tbody></table>")
    return "\n".join(rows)


def _opt(value) -> str:
    return "" if value is None else str(value)


# -- the plot ------------------------------------------------------------------------------------


def render_plot(report: QuantReport) -> str:
    """Each layer's SQNR as a bar, in layer order, with each output's SQNR as a dashed line:
    an inline ``<svg>`` element (no XML prologue). Exact layers reach the top, hatched."""
    Figure, FigureCanvasSVG, rc_context = _libraries()
    names = [layer.name for layer in report.layers]
    values = [layer.sqnr_db for layer in report.layers]
    finite = [v for v in values + list(report.output_sqnr_db)
              if v is not None and math.isfinite(v)]
    top = max(finite, default=SQNR_FAIR_DB) + 5
    bottom = min(0.0, min(finite, default=0.0) - 2)
    labels = len(names) <= LABEL_LIMIT
    names = [n if len(n) <= LABEL_CHARS else "…" + n[1 - LABEL_CHARS:] for n in names]
    below = 0.25 + (CHAR_HEIGHT * max(map(len, names), default=0) if labels else 0.2)
    width = max(MIN_PLOT_WIDTH, 1.0 + BAR_WIDTH * len(names))
    height = PLOT_HEIGHT + below
    fig = Figure(figsize=(width, height))
    FigureCanvasSVG(fig)
    ax = fig.add_axes((0.7 / width, below / height, 1 - 0.85 / width,
                       (PLOT_HEIGHT - 0.45) / height))  # room for the legend above
    heights, colors, hatches = [], [], []
    for v in values:
        kind = sqnr_class(v)
        finite_v = v is not None and math.isfinite(v)
        heights.append(v if finite_v else (top if v == math.inf else bottom if v else 0.0))
        colors.append(COLORS.get(kind or "low", COLORS["low"]) if v is not None else "none")
        hatches.append("//" if kind == "exact" else None)
    bars = ax.bar(range(len(names)), heights, width=0.8, color=colors, linewidth=0)
    for bar, hatch in zip(bars, hatches):
        if hatch:
            bar.set_hatch(hatch)
            bar.set_edgecolor("white")
    for k, s in enumerate(report.output_sqnr_db):
        if s is not None and math.isfinite(s):
            ax.axhline(s, color=OUTPUT_LINE_COLOR, linestyle="--", linewidth=0.9,
                       label=f"output {k}: {s:.2f} dB")
    ax.set_xlim(-0.6, len(names) - 0.4)
    ax.set_ylim(bottom, top)
    ax.set_ylabel("SQNR (dB)", fontsize=8)
    ax.tick_params(labelsize=7)
    if labels:
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=90, fontsize=6)
    else:
        ax.set_xlabel("layer (in program order)", fontsize=8)
    ax.grid(axis="y", color="#dddddd", linewidth=0.5)
    ax.set_axisbelow(True)
    if any(s is not None and math.isfinite(s) for s in report.output_sqnr_db):
        ax.legend(fontsize=7, loc="lower right", bbox_to_anchor=(1, 1), frameon=False,
                  ncol=min(len(report.output_sqnr_db), 4), borderaxespad=0.2)
    out = io.StringIO()
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": "xir"}):
        fig.savefig(out, format="svg", metadata={"Date": None})
    svg = out.getvalue()
    return svg[svg.index("<svg"):]
