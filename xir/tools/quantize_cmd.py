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

import sys

from xir.tools.model_io import arg_parser, command, load_module


def main(argv: list[str] | None = None, prog: str = "xir quantize") -> int:
    """Run ``xir quantize``; returns the exit status."""
    p = arg_parser(prog, "Quantize a float model to INT8 with power-of-two scales (quant dialect).")
    p.add_argument("input", help="the float model: .onnx or textual IR (.xir)")
    p.add_argument("--calib", required=True, metavar="NPZ",
                   help="calibration samples: one array per model input, keyed by its name, "
                        "the first axis indexing samples")
    p.add_argument("--method", choices=("diffs", "nonoverflow", "percentile"), default="diffs",
                   help="how activation fix points are chosen (default: diffs, min-MSE with a "
                        "per-batch vote)")
    p.add_argument("--cle", action="store_true",
                   help="equalize weight ranges across layers first (cross-layer equalization)")
    p.add_argument("--bias-correction", action="store_true",
                   help="subtract each channel's mean quantization error from the biases")
    p.add_argument("--fast-finetune", action="store_true",
                   help="tune each layer's int8 weights and bias against float (AdaQuant)")
    p.add_argument("--batch-size", type=int, default=32, metavar="N",
                   help="calibration batch size (default 32; a model with a fixed batch size "
                        "uses that instead)")
    p.add_argument("-o", "--output", required=True, metavar="FILE",
                   help="the quantized textual IR to write (weights go to FILE.weights)")
    p.add_argument("--onnx", metavar="FILE", help="also write the quantized model as QDQ ONNX")
    p.add_argument("--onnx-dpu-rounding", action="store_true",
                   help="nudge ties in the QDQ export so that onnxruntime rounds as the DPU does "
                        "(bit-identical to xir's integer executor; biases move by half an "
                        "accumulator step)")
    p.add_argument("--report", metavar="FILE",
                   help="also write the per-layer report: .json, or .html (a page with a "
                        "plot of the SQNR per layer)")
    return command(p, _work, argv)


def _work(args, timer) -> int:
    import warnings

    from xir.diagnostics import XirError
    from xir.files import write_atomically
    from xir.tools.run_model import load_inputs

    if args.batch_size < 1:
        raise XirError(f"--batch-size must be at least 1, not {args.batch_size}")
    if args.report is not None and not args.report.endswith((".json", ".html")):
        raise XirError(f"--report: '{args.report}' should end in .json or .html")
    if args.report is not None and args.report.endswith(".html"):
        from xir.tools.quant_report_html import check_libraries

        check_libraries()  # before calibrating: a missing matplotlib is one line, at once
    export_qdq = None
    if args.onnx is not None:
        try:
            from xir.frontends.onnx_qdq import export_qdq
        except ImportError:
            raise XirError("--onnx: the QDQ ONNX exporter is not available yet") from None

    from xir.passes.quantize import quantize_module

    with timer("Read calibration data"):
        data = load_inputs(args.calib)
    module = load_module(args.input, timer)
    with timer("Quantize"), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quantized, report = quantize_module(module, data, method=args.method, cle=args.cle,
                                            batch_size=args.batch_size,
                                            progress=sys.stderr.isatty(),
                                            bias_correction=args.bias_correction,
                                            fast_finetune=args.fast_finetune)
    for warning in caught:
        sys.stderr.write(f"{args.input}: warning: {' '.join(str(warning.message).split())}\n")
    with timer("Output"):
        from xir.weights import save_module

        if export_qdq is not None:
            onnx_bytes = export_qdq(quantized,
                                    dpu_rounding=args.onnx_dpu_rounding).SerializeToString()
        if args.report is not None and args.report.endswith(".html"):
            import os

            from xir.tools.quant_report_html import render_html

            report_text = render_html(report, os.path.basename(args.input))
        elif args.report is not None:
            report_text = report.to_json()
        save_module(quantized, args.output)
        if export_qdq is not None:
            write_atomically(args.onnx, onnx_bytes)
        if args.report is not None:
            write_atomically(args.report, report_text.encode())
    return 0
