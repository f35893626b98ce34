"""``xir inspect MODEL --target T [--json F] [--svg F] [-v]``: where each layer of a model would run.

It imports the model, checks every op against the target's limits (``xir.passes.inspect``) and
reports: a terminal table of the CPU nodes (all nodes with ``-v``) with the reasons each is not
on the DPU, then the summary (ops per device, the DPU and CPU subgraphs the partition will cut,
the DPU's share of MACs). ``--json F`` writes the report as JSON (``-`` for stdout, then no table;
the shape is docs/inspect.schema.json) and ``--svg F`` the graph picture. A CPU fallback is a
finding, not a failure: the exit status is 0 whenever the model was inspected.
"""

from __future__ import annotations

import sys

from xir.passes.inspection import CPU, DEVICES, DPU, USER, InspectionReport
from xir.tools.model_io import arg_parser, command

DEVICE_STYLES = {DPU: "blue", CPU: "red", USER: ""}
MODEL_SUFFIXES = (".onnx", ".xir", ".mlir")


def main(argv: list[str] | None = None, prog: str = "xir inspect") -> int:
    """Run ``xir inspect``; returns the exit status."""
    p = arg_parser(prog, "Inspect a model against a DPU target: which layers run on the DPU, "
                         "which fall back to the CPU, and why.")
    p.add_argument("input", metavar="MODEL", help="an ONNX model (.onnx) or xir text (.xir)")
    p.add_argument("--target", required=True, metavar="TARGET",
                   help="a target name (B4096, DPUCAHX8H_ISA2 …), a fingerprint 0x… or an arch.json")
    p.add_argument("--json", metavar="FILE", help="write the report as JSON ('-': stdout, no table)")
    p.add_argument("--svg", metavar="FILE", help="write the graph picture as SVG")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="list every node (default: the CPU nodes only), with notes")
    return command(p, _work, argv)


def _work(args, timer) -> int:
    from xir.backend.targets import load_target
    from xir.diagnostics import XirError

    if args.json == "-" and args.svg == "-":
        raise XirError("only one of --json and --svg can write to stdout ('-')")
    target = load_target(args.target)  # before the import: a typo should not wait for a big model
    _check_model_path(args.input)
    from xir.tools.model_io import load_module

    module = load_module(args.input, timer)
    with timer("Inspect"):
        from xir.passes.inspect import inspect_module

        report = inspect_module(module, target)
    outputs = _outputs(args, report, timer)
    _write(outputs)
    if args.json != "-" and args.svg != "-":
        print_report(report, _console(), verbose=args.verbose)
    return 0


def _check_model_path(path: str) -> None:
    """A one-line error for a file that is neither an ONNX model nor xir text, by its name."""
    import os

    from xir.diagnostics import XirError

    if not path.endswith(MODEL_SUFFIXES):
        if not os.path.exists(path):
            raise XirError(f"cannot read model '{path}': no such file")
        raise XirError(f"'{path}' is not an ONNX model: expected a .onnx file (or xir text, .xir)")


def _outputs(args, report: InspectionReport, timer) -> list[tuple[str, str]]:
    """(path, text) of every requested output file, all rendered before any is written."""
    outputs = []
    if args.json:
        with timer("JSON"):
            outputs.append((args.json, report_json(report)))
    if args.svg:
        with timer("SVG"):
            from xir.tools.inspect_svg import render_svg

            outputs.append((args.svg, render_svg(report)))
    return outputs


def _write(outputs: list[tuple[str, str]]) -> None:
    from xir.files import write_files_atomically

    files = [(path, text) for path, text in outputs if path != "-"]
    if files:
        write_files_atomically(files)
    for path, text in outputs:
        if path == "-":
            sys.stdout.write(text)


def report_json(report: InspectionReport) -> str:
    """The report as JSON text (the shape of docs/inspect.schema.json), ending in a newline."""
    import json

    return json.dumps(report.to_json(), indent=2) + "\n"


def _console():
    """A console on stdout: colors only on a terminal, a wide page otherwise (tests, pipes)."""
    from rich.console import Console

    tty = sys.stdout.isatty()
    return Console(highlight=False, soft_wrap=False, width=None if tty else 160,
                   color_system="auto" if tty else None)


def print_report(report: InspectionReport, console, verbose: bool = False) -> None:
    """The terminal report on a rich ``console``: the node table (CPU nodes only unless
    ``verbose``), what was hidden, and the summary."""
    shown = [n for n in report.nodes if verbose or n.device == CPU]
    if shown:
        console.print("nodes" if verbose else "CPU nodes")
        console.print(node_table(shown, verbose))
    elif not any(n.device == CPU for n in report.nodes):
        console.print("No CPU nodes: every op runs on the DPU.")
    hidden = _hidden(report, shown)
    if hidden:
        console.print(f"{hidden} hidden; -v shows every node.", markup=False)
    console.print()
    for line in summary_lines(report):
        console.print(line, markup=False)


def _hidden(report: InspectionReport, shown) -> str:
    """'12 DPU nodes and 1 USER node' for the nodes not in the table ('' when none)."""
    names = {n.name for n in shown}
    counts = {d: sum(1 for n in report.nodes if n.device == d and n.name not in names)
              for d in DEVICES}
    parts = [f"{c} {d} node{'s' if c != 1 else ''}" for d, c in counts.items() if c]
    return " and ".join(parts)


def node_table(nodes, verbose: bool = False):
    """A rich Table of ``nodes``: name, op, device (colored), fused into, reasons; notes when
    ``verbose``."""
    from rich.table import Table
    from rich.text import Text

    table = Table()
    for header in ("name", "op", "device", "fused into", "reasons"):
        table.add_column(header, overflow="fold")
    if verbose:
        table.add_column("notes", overflow="fold")
    for n in nodes:
        row = [Text(n.name), Text(n.op), Text(n.device, style=DEVICE_STYLES.get(n.device, "")),
               Text(n.fused_into or ""), Text("\n".join(n.reasons))]
        if verbose:
            row.append(Text("\n".join(n.notes)))
        table.add_row(*row)
    return table


def summary_lines(report: InspectionReport) -> list[str]:
    """The summary as lines: ops per device, subgraphs, the DPU's share of MACs."""
    s = report.summary()
    total = sum(s.subgraphs.values()) + (1 if s.ops.get(USER) else 0)
    all_macs = s.macs.get(DPU, 0) + s.macs.get(CPU, 0)
    return [f"target     {report.target}",
            "ops        " + ", ".join(f"{d} {s.ops.get(d, 0)}" for d in DEVICES),
            f"subgraphs  DPU {s.subgraphs.get(DPU, 0)}, CPU {s.subgraphs.get(CPU, 0)}; "
            f"total {total}" + (" with the USER (input) subgraph" if s.ops.get(USER) else ""),
            f"DPU MACs   {s.dpu_mac_fraction:.1%} ({s.macs.get(DPU, 0):,} of {all_macs:,})"]
