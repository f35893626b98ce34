"""``xir quantize MODEL --calib calib.npz -o OUT.xir``: post-training INT8 quantization.

MODEL is an ONNX model or float textual IR; ``calib.npz`` holds one array per model input, keyed
by its name, the first axis indexing samples. The quantized module (quant dialect) is written as
textual IR with its weights beside it (``OUT.xir.weights``); ``xir run OUT.xir`` runs it with the
integer executor. ``--report R.json`` writes the per-layer fix points, shifts and SQNR
(``--report R.html``: the same as a page, with a plot of the SQNR per layer),
``--onnx OUT.onnx`` the quantized model as ONNX QuantizeLinear/DequantizeLinear pairs. Too few
calibration samples is one ``warning:`` line on stderr; bad input is one ``error:`` line. On a
terminal, calibration shows a progress bar.
"""

from __future__ import annotations

import argparse
import sys

from xir.tools.model_io import arg_parser, command, load_module, warnings_as_lines


def add_quantize_options(p) -> None:
    """The options that steer quantization (``xir quantize`` and ``xir compile`` share them)."""
    p.add_argument("--method", choices=("diffs", "nonoverflow", "percentile"), default="diffs",
                   help="how activation fix points are chosen (default: diffs, min-MSE with a "
                        "per-batch vote)")
    p.add_argument("--cle", action=argparse.BooleanOptionalAction, default=True,
                   help="equalize weight ranges across layers first and align them to the "
                        "power-of-two grid (cross-layer equalization; default on)")
    p.add_argument("--bias-correction", action=argparse.BooleanOptionalAction, default=True,
                   help="subtract each channel's mean quantization error from the biases "
                        "(default on)")
    p.add_argument("--fast-finetune", action="store_true",
                   help="tune each layer's int8 weights and bias against float (AdaQuant)")
    p.add_argument("--batch-size", type=int, default=32, metavar="N",
                   help="calibration batch size (default 32; a model with a fixed batch size "
                        "uses that instead)")


def quantize_options(args) -> dict:
    """quantize_module's keyword arguments from parsed :func:`add_quantize_options` options
    (XirError for a bad batch size)."""
    from xir.diagnostics import XirError

    if args.batch_size < 1:
        raise XirError(f"--batch-size must be at least 1, not {args.batch_size}")
    return {"method": args.method, "cle": args.cle, "bias_correction": args.bias_correction,
            "fast_finetune": args.fast_finetune, "batch_size": args.batch_size,
            "progress": sys.stderr.isatty()}


def main(argv: list[str] | None = None, prog: str = "xir quantize") -> int:
    """Run ``xir quantize``; returns the exit status."""
    p = arg_parser(prog, "Quantize a float model to INT8 with power-of-two scales (quant dialect).")
    p.add_argument("input", help="the float model: .onnx or textual IR (.xir)")
    p.add_argument("--calib", required=True, metavar="NPZ",
                   help="calibration samples: one array per model input, keyed by its name, "
                        "the first axis indexing samples")
    add_quantize_options(p)
    p.add_argument("-o", "--output", required=True, metavar="FILE",
                   help="the quantized textual IR to write (weights go to FILE.weights)")
    p.add_argument("--onnx", metavar="FILE", help="also write the quantized model as QDQ ONNX")
    p.add_argument("--onnx-rounding", choices=("dpu", "onnx"), default="dpu",
                   help="dpu (default): ties in the QDQ export are nudged so that onnxruntime "
                        "rounds as the DPU does, bit-identical to xir's integer executor; onnx: "
                        "plain QDQ, whose QuantizeLinear rounds ties half to even (one LSB "
                        "apart from the DPU at exact ties)")
    p.add_argument("--report", metavar="FILE",
                   help="also write the per-layer report: .json, or .html (a page with a "
                        "plot of the SQNR per layer)")
    return command(p, _work, argv)


def _work(args, timer) -> int:
    from xir.diagnostics import XirError
    from xir.files import read_npz, write_atomically

    options = quantize_options(args)
    if args.report is not None and not args.report.endswith((".json", ".html")):
        raise XirError(f"--report: '{args.report}' should end in .json or .html")
    if args.report is not None and args.report.endswith(".html"):
        from xir.tools.quant_report_html import check_libraries

        check_libraries()  # before calibrating: a missing matplotlib is one line, at once
    from xir.passes.quantize import quantize_module

    with timer("Read calibration data"):
        data = read_npz(args.calib, "calibration data")
    module = load_module(args.input, timer)
    with timer("Quantize"), warnings_as_lines(args.input):
        quantized, report = quantize_module(module, data, **options)
    with timer("Output"):
        from xir.weights import save_module

        if args.onnx is not None:
            from xir.frontends.onnx_qdq import export_qdq

            onnx_bytes = export_qdq(quantized,
                                    dpu_rounding=args.onnx_rounding == "dpu").SerializeToString()
        if args.report is not None and args.report.endswith(".html"):
            import os

            from xir.tools.quant_report_html import render_html

            report_text = render_html(report, os.path.basename(args.input))
        elif args.report is not None:
            report_text = report.to_json()
        save_module(quantized, args.output)
        if args.onnx is not None:
            write_atomically(args.onnx, onnx_bytes)
        if args.report is not None:
            write_atomically(args.report, report_text.encode())
    return 0
