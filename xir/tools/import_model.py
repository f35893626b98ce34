"""``xir import model.onnx -o model.xir``: import an ONNX model, verify it and print it (with
its resources). Large weights go beside the text, to ``model.xir.weights`` (see
:mod:`xir.weights`), unless ``--inline-weights`` or the output is standard output. The output is
written atomically: on any error no file is left behind."""

from __future__ import annotations

import sys

from xir.tools.model_io import arg_parser, command


def main(argv: list[str] | None = None, prog: str = "xir import") -> int:
    """Run ``xir import``; returns the exit status."""
    p = arg_parser(prog, "Import an ONNX model into textual xir IR.")
    p.add_argument("input", help="the ONNX model (.onnx)")
    p.add_argument("-o", "--output", default="-", metavar="FILE",
                   help="output file (written only on success; default: standard output)")
    p.add_argument("--inline-weights", action="store_true",
                   help="keep all weights in the text as hex (one self-contained file) instead of "
                        "in FILE.weights beside it")
    return command(p, _work, argv)


def _work(args, timer) -> int:
    from xir.frontends.onnx import import_onnx
    from xir.verifier import verify

    with timer("Import ONNX"):
        module = import_onnx(args.input)
    with timer("(V) verifier"):
        verify(module)
    with timer("Output"):
        if args.output == "-":
            from xir.printer import print_ir

            sys.stdout.write(print_ir(module))
            sys.stdout.flush()
        else:
            from xir.weights import save_module

            save_module(module, args.output, inline=args.inline_weights)
    return 0
