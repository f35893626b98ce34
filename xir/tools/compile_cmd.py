"""``xir compile MODEL --target T --calib calib.npz -o model.xmodel [--report R.json]``.

The whole flow in one command (:mod:`xir.backend.compiler`): import, inspect against the target,
quantize (fold-bn, CLE, calibration, bias correction: the options of ``xir quantize``), fuse into
dpu-dialect ops, partition into DPU and CPU subgraphs, verify, write the ``.xmodel``. On a
terminal each phase is shown as it runs (and calibration has its progress bar); at the end it
prints the subgraphs (device, ops, workload), the ops per device and the inspector's summary
line. ``--report R.json`` writes all of that with the per-layer quantization report and the
seconds of each phase. ``xir run model.xmodel`` runs the result.
"""

from __future__ import annotations

import sys

from xir.tools.model_io import arg_parser, command, load_module, warnings_as_lines
from xir.tools.quantize_cmd import add_quantize_options, quantize_options


def main(argv: list[str] | None = None, prog: str = "xir compile") -> int:
    """Run ``xir compile``; returns the exit status."""
    p = arg_parser(prog, "Compile a float model for a DPU target: quantize, fuse, partition into "
                         "DPU and CPU subgraphs, and write an .xmodel.")
    p.add_argument("input", metavar="MODEL", help="the float model: .onnx or textual IR (.xir)")
    p.add_argument("--target", required=True, metavar="TARGET",
                   help="a target name (B4096, DPUCAHX8H_ISA2 …), a fingerprint 0x… or an "
                        "arch.json")
    p.add_argument("--calib", required=True, metavar="NPZ",
                   help="calibration samples: one array per model input, keyed by its name, "
                        "the first axis indexing samples")
    add_quantize_options(p)
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="the .xmodel to write")
    p.add_argument("--report", metavar="FILE", help="also write the compile report as JSON")
    return command(p, _work, argv)


def _work(args, timer) -> int:
    import json

    from xir.backend.targets import load_target
    from xir.diagnostics import XirError
    from xir.files import read_npz, write_atomically

    if args.report is not None and not args.report.endswith(".json"):
        raise XirError(f"--report: '{args.report}' should end in .json")
    options = quantize_options(args)
    target = load_target(args.target)  # before the import: a typo should not wait for a model
    with timer("Read calibration data"):
        data = read_npz(args.calib, "calibration data")
    module = load_module(args.input, timer)
    from xir.backend.compiler import compile_model

    with warnings_as_lines(args.input), _Phases(timer) as phases:
        compiled = compile_model(module, target, data, phase=phases, **options)
    with timer("Write"):
        compiled.write(args.output)
        if args.report is not None:
            write_atomically(args.report, json.dumps(report_json(compiled), indent=2) + "\n")
    print_summary(compiled)
    return 0


class _Phases:
    """Each phase of the compile under the tool's timer and, on a terminal, a status line."""

    def __init__(self, timer):
        self.timer = timer
        self.status = None

    def __enter__(self):
        if sys.stderr.isatty():
            from rich.console import Console

            self.status = Console(stderr=True).status("compiling")
            self.status.start()
        return self

    def __exit__(self, *exc):
        if self.status is not None:
            self.status.stop()
        return False

    def __call__(self, name: str):
        if self.status is not None:
            self.status.update(f"{name} …")
        return self.timer(name.capitalize())


def report_json(compiled) -> dict:
    """The compile report: target, phases, subgraphs, ops per device, quantization."""
    from xir.backend.xmodel import target_record

    return {"target": target_record(compiled.target),
            "seconds": {k: round(v, 4) for k, v in compiled.seconds.items()},
            "summary": compiled.partition.line(),
            "subgraphs": compiled.subgraphs,
            "ops_per_device": _ops_per_device(compiled.subgraphs),
            "inspection": compiled.inspection.summary().to_json(),
            "quantization": compiled.quantization.to_dict()}


def _ops_per_device(subgraphs) -> dict:
    counts: dict = {}
    for record in subgraphs:
        counts[record["device"]] = counts.get(record["device"], 0) + record["ops"]
    return counts


def print_summary(compiled) -> None:
    """The subgraph table, the ops per device and the summary line, on stdout."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{compiled.target.name}: subgraphs")
    for column in ("subgraph", "device", "ops", "workload (GOP)"):
        table.add_column(column, justify="left" if column in ("subgraph", "device") else "right")
    for record in compiled.subgraphs:
        table.add_row(record["name"], record["device"], str(record["ops"]),
                      f"{record['workload_ops'] / 1e9:.3f}")
    console = Console()
    console.print(table)
    per_device = ", ".join(f"{d} {n}" for d, n in _ops_per_device(compiled.subgraphs).items())
    console.print(f"ops per device: {per_device}")
    console.print(compiled.partition.line())
