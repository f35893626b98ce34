"""What ``xir prune`` shows: the summary tables on stdout, and the report as JSON or one HTML page.

The command hands over one dict (``xir.tools.prune_cmd._result``): the model and options, the
channel groups (channels before and after, the share pruned), the sensitivity table
(:meth:`~xir.passes.prune.sensitivity.SensitivityTable.to_json`), MACs, parameters and the metric
before and after, the convolutions' and dense layers' channels before and after, the recovery
used, the sparsity report in ``--sparse`` mode, and the seconds of each phase. The JSON report
is that dict; the HTML page is self-contained in the house style of
:mod:`xir.tools.quant_report_html` (inline CSS, the sensitivity plot as inline ``<svg>`` drawn by
matplotlib's SVG canvas, no scripts).
"""

from __future__ import annotations

import io
import json
from html import escape

from xir.tools.quant_report_html import _CSS, _libraries, check_libraries

__all__ = ["check_libraries", "layer_rows", "group_rows", "render_json", "render_html",
           "render_plot", "print_summary"]

LAYERS = ("graph.conv2d", "graph.gemm", "graph.matmul")


def layer_rows(original, pruned) -> list[dict]:
    """Each convolution and dense layer of ``original`` (by node name, in program order) with its
    input and output channels (features) before and after."""
    before, after = _layer_channels(original), _layer_channels(pruned)
    return [{"name": name, "op": op,
             "in_before": ins, "in_after": after.get(name, (op, ins, outs))[1],
             "out_before": outs, "out_after": after.get(name, (op, ins, outs))[2]}
            for name, (op, ins, outs) in before.items()]


def _layer_channels(module) -> dict:
    from xir.passes.dpu_rules import node_name

    channels = {}
    for op in module.walk():
        if op.name in LAYERS and op.operands and getattr(op.operands[0].type, "shape", None):
            ins, outs = op.operands[0].type.shape, op.results[0].type.shape
            axis = 1 if op.name == "graph.conv2d" else -1  # NCHW channels; dense features
            if len(ins) >= 2 and len(outs) >= 2:
                channels[node_name(op)] = (op.name.split(".")[-1], int(ins[axis]),
                                           int(outs[axis]))
    return channels


def group_rows(groups, layers: list[dict]) -> list[dict]:
    """Each channel group with its channels before and after (its first producer's output
    channels in the pruned model) and ``ratio``, the share of its channels pruned."""
    outs = {row["name"]: row["out_after"] for row in layers}
    rows = []
    for group in groups:
        after = outs.get(group.producers[0], group.channels) if group.producers else group.channels
        rows.append({"name": group.name, "channels_before": group.channels,
                     "channels_after": after, "ratio": 1 - after / group.channels,
                     "producers": list(group.producers), "consumers": list(group.consumers),
                     "prunable": group.prunable, "reason": group.reason})
    return rows


def render_json(result: dict) -> str:
    """The report as JSON text."""
    return json.dumps(result, indent=1) + "\n"


# -- the summary on stdout -------------------------------------------------------------------------


def _count(n: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.3f} {unit}"
    return f"{n:g}"


def _metric(value: float, name: str) -> str:
    return f"{100 * value:.2f} %" if name == "accuracy" else f"{value:.6g}"


def print_summary(result: dict) -> None:
    """The groups' channels before → after (or the sparsity per layer), then MACs, parameters
    and the metric before → after, on stdout."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if result["mode"] == "sparse":
        table = Table(title=f"{result['model']}: {result['sparsity']['kind']} sparsity")
        for column in ("layer", "weights", "zero"):
            table.add_column(column, justify="left" if column == "layer" else "right")
        for layer in result["sparsity"]["layers"]:
            table.add_row(layer["name"], f"{layer['weights']:,}",
                          f"{100 * layer['sparsity']:.1f} %")
        for skipped in result["sparsity"]["skipped"]:
            table.add_row(skipped["name"], "", f"dense: {skipped['reason']}")
        console.print(table)
        console.print(_sparsity_text(result))
    else:
        table = Table(title=f"{result['model']}: channel groups")
        for column in ("group", "channels", "pruned"):
            table.add_column(column, justify="left" if column == "group" else "right")
        for row in result["groups"]:
            pruned = f"{100 * row['ratio']:.0f} %" if row["prunable"] else "not prunable"
            table.add_row(row["name"], f"{row['channels_before']} → {row['channels_after']}",
                          pruned)
        console.print(table)
    totals = Table(title="model")
    for column in ("", "before", "after", "change"):
        totals.add_column(column, justify="left" if not column else "right")
    for key in ("macs", "params"):
        entry = result[key]
        totals.add_row("MACs" if key == "macs" else "parameters", _count(entry["before"]),
                       _count(entry["after"]), f"× {entry['ratio']:.3f}")
    metric = result["metric"]
    change = metric["after"] - metric["before"]
    totals.add_row(metric["name"], _metric(metric["before"], metric["name"]),
                   _metric(metric["after"], metric["name"]),
                   f"{100 * change:+.2f} points" if metric["name"] == "accuracy"
                   else f"{change:+.6g}")
    console.print(totals)


def _sparsity_text(result: dict) -> str:
    report = result["sparsity"]
    return (f"{report['kind']} sparsity: {report['zeros']:,} of {report['weights']:,} weights "
            f"zero ({100 * report['sparsity']:.1f} %) in {len(report['layers'])} layers; the DPU "
            f"gains no speed from it (it computes every MAC): prune channels for that")


# -- the HTML page ---------------------------------------------------------------------------------


def render_html(result: dict) -> str:
    """The report as a self-contained HTML page (XirError when matplotlib is missing)."""
    title = f"Pruning report: {result['model']}"
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             f"<title>{escape(title)}</title>", f"<style>{_CSS}</style>", "</head>", "<body>",
             f"<h1>{escape(title)}</h1>", _summary(result)]
    if result["sensitivity"] is not None:
        parts += ["<h2>Sensitivity</h2>", f'<div class="plot">{render_plot(result)}</div>']
    if result["groups"]:
        parts += ["<h2>Channel groups</h2>", _groups_table(result["groups"])]
    if result["sparsity"] is not None:
        parts += ["<h2>Sparsity</h2>", f"<p>{escape(_sparsity_text(result))}</p>",
                  _sparsity_table(result["sparsity"])]
    parts += ["<h2>Layers</h2>", _layers_table(result["layers"]), "</body>", "</html>"]
    return "\n".join(parts) + "\n"


def _summary(result: dict) -> str:
    metric = result["metric"]
    rows = [("model", escape(result["model"])), ("output", escape(result["output"]))]
    if result["mode"] == "channels":
        rows += [("MAC ratio asked", f"{result['macs_goal']:g}"),
                 ("divisor", f"{result['divisor']} ({escape(result['target'])})"),
                 ("criterion", escape(result["criterion"])),
                 ("iterations", str(result["iterations"])),
                 ("recovery", escape(result["recovery"]))]
    else:
        rows.append(("sparse pruning", escape(result["sparsity"]["kind"])))
    if result["finetune"]:
        rows.append(("fine-tune hook", escape(result["finetune"])))
    for key, label in (("macs", "MACs"), ("params", "parameters")):
        entry = result[key]
        rows.append((label, f"{entry['before']:,} → {entry['after']:,} "
                            f"({100 * entry['ratio']:.1f} %)"))
    rows.append((escape(metric["name"]), f"{_metric(metric['before'], metric['name'])} → "
                                         f"{_metric(metric['after'], metric['name'])}"))
    rows.append(("seconds", f"{result['seconds'].get('total', 0):.1f}"))
    body = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows)
    return f'<dl class="summary">{body}</dl>'


def _table(columns, rows) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(cell for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _num(value) -> str:
    return f'<td class="num">{value}</td>'


def _groups_table(groups: list[dict]) -> str:
    rows = [(f"<td>{escape(g['name'])}</td>", _num(g["channels_before"]),
             _num(g["channels_after"]), _num(f"{100 * g['ratio']:.1f} %"),
             f"<td>{escape(', '.join(g['producers']))}</td>",
             f"<td>{escape(g['reason']) if not g['prunable'] else ''}</td>") for g in groups]
    return _table(("group", "channels before", "after", "pruned", "producers", "not prunable"),
                  rows)


def _layers_table(layers: list[dict]) -> str:
    rows = [(f"<td>{escape(layer['name'])}</td>", f"<td>{escape(layer['op'])}</td>",
             _num(layer["in_before"]), _num(layer["in_after"]), _num(layer["out_before"]),
             _num(layer["out_after"])) for layer in layers]
    return _table(("layer", "op", "input channels before", "after", "output channels before",
                   "after"), rows)


def _sparsity_table(sparsity: dict) -> str:
    rows = [(f"<td>{escape(layer['name'])}</td>", _num(f"{layer['weights']:,}"),
             _num(f"{layer['zeros']:,}"), _num(f"{100 * layer['sparsity']:.1f} %"))
            for layer in sparsity["layers"]]
    rows += [(f"<td>{escape(s['name'])}</td>", "<td></td>", "<td></td>",
              f"<td>left dense: {escape(s['reason'])}</td>") for s in sparsity["skipped"]]
    return _table(("layer", "weights", "zero", "sparsity"), rows)


def render_plot(result: dict) -> str:
    """The sensitivity table as one line per group, metric against the share of the group's
    channels pruned (0: the baseline): an inline ``<svg>`` element."""
    Figure, FigureCanvasSVG, rc_context = _libraries()
    table = result["sensitivity"]
    ratios = [0.0, *table["ratios"]]
    fig = Figure(figsize=(7.5, 4.2))
    FigureCanvasSVG(fig)
    ax = fig.add_axes((0.1, 0.12, 0.62, 0.8))
    for name, group in table["groups"].items():
        ax.plot(ratios, [table["baseline"], *group["metrics"]], marker="o", markersize=2.5,
                linewidth=1, label=name)
    ax.set_title(f"{table['metric']} with one group's channels zeroed, the least important "
                 f"first ({table['criterion']})", fontsize=8)
    ax.set_xlabel("share of the group's channels pruned", fontsize=8)
    ax.set_ylabel(table["metric"], fontsize=8)
    ax.set_xlim(0, 1)
    ax.tick_params(labelsize=7)
    ax.grid(color="#dddddd", linewidth=0.5)
    ax.set_axisbelow(True)
    columns = 1 if len(table["groups"]) <= 24 else 2
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False,
              ncol=columns)
    out = io.StringIO()
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": "xir"}):
        fig.savefig(out, format="svg", metadata={"Date": None})
    svg = out.getvalue()
    return svg[svg.index("<svg"):]
