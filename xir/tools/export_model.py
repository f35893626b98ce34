"""``xir export model.xir -o model.onnx``: parse and verify textual IR and write it as an ONNX
model (``frontends.onnx.export_onnx``; the file is written atomically, never partially)."""

from __future__ import annotations

from xir.tools.model_io import arg_parser, command, load_module


def main(argv: list[str] | None = None, prog: str = "xir export") -> int:
    """Run ``xir export``; returns the exit status."""
    p = arg_parser(prog, "Export textual xir IR (graph dialect) as an ONNX model.")
    p.add_argument("input", help="the textual IR (.xir), or an ONNX model to re-export")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="the ONNX file to write")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset to target (default 17)")
    return command(p, _work, argv)


def _work(args, timer) -> int:
    from xir.frontends.onnx import export_onnx
    from xir.files import write_atomically

    module = load_module(args.input, timer)
    with timer("Export ONNX"):
        data = export_onnx(module, opset=args.opset).SerializeToString()
    with timer("Output"):
        write_atomically(args.output, data)
    return 0
