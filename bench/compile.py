"""Compile time: ``xir compile``'s flow on light ResNet-50 (random weights, 8 calibration
samples) for B4096, each phase timed, against onnxruntime's ``quantize_static`` on the same
model and samples.

    python bench/compile.py                    # ResNet-50, one run (about a minute)
    python bench/compile.py --repeat 3         # medians of three runs
    python bench/compile.py --model inception_v1 --json out.json

The phases are those of :func:`xir.backend.compiler.compile_model` (inspect; quantize, with its
steps fold-bn, cle, calibrate, lower, bias-correction, measure; fuse; partition; verify), plus
the ONNX import before them and writing the ``.xmodel`` after. The peer is onnxruntime's
``quantize_static`` (QDQ, MinMax, per-tensor), which does less (no fusion, no partition, float
scales) but is the quantizer a user would otherwise run; its time is measured in the same run
and the ratio printed. Bar: the whole compile under 60 s on the development machine (2 cores).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "tests")]

import numpy as np  # noqa: E402

BAR_SECONDS = 60.0
TARGET = "DPUCZDX8G_ISA1_B4096"


def compile_once(model, feeds: dict, samples: int, out_dir: Path) -> dict:
    """One compile of ``model``: seconds per phase (import, the compiler's phases, write)."""
    from xir.backend.compiler import compile_model
    from xir.frontends.onnx import import_onnx

    (name, one), = feeds.items()
    data = {name: np.random.default_rng(7).random((samples,) + one.shape[1:], dtype=np.float32)}
    seconds = {}
    start = time.perf_counter()
    module = import_onnx(model)
    seconds["import"] = time.perf_counter() - start
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fewer than 100 calibration samples
        compiled = compile_model(module, TARGET, data)
    seconds.update(compiled.seconds)
    start = time.perf_counter()
    compiled.write(str(out_dir / "model.xmodel"))
    seconds["write"] = time.perf_counter() - start
    seconds["summary"] = compiled.partition.line()
    return seconds


def onnxruntime_quantize(model, feeds: dict, samples: int, out_dir: Path) -> float:
    """Seconds of onnxruntime's quantize_static (QDQ, MinMax, per-tensor int8) on the same
    model and calibration samples."""
    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                          QuantType, quantize_static)

    (name, one), = feeds.items()
    data = np.random.default_rng(7).random((samples,) + one.shape[1:], dtype=np.float32)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{name: data[i:i + 1]} for i in range(samples)])

        def get_next(self):
            return next(self.batches, None)

    from xir.frontends.onnx import export_onnx, import_onnx

    # the light models are opset 6-8 with their weights listed as inputs, which quantize_static's
    # opset upgrade rejects: it gets xir's opset-17 export of the same graph
    src = out_dir / "float.onnx"
    onnx.save(export_onnx(import_onnx(model)), src)
    start = time.perf_counter()
    quantize_static(str(src), str(out_dir / "int8.onnx"), Reader(), quant_format=QuantFormat.QDQ,
                    per_channel=False, activation_type=QuantType.QInt8,
                    weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax)
    return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet50", help="a light_* model (default resnet50)")
    parser.add_argument("--samples", type=int, default=8, help="calibration samples (default 8)")
    parser.add_argument("--repeat", type=int, default=1, help="runs; medians are reported")
    parser.add_argument("--json", help="also write the numbers to this file")
    args = parser.parse_args(argv)

    import logging

    from rich.console import Console
    from rich.table import Table
    from test_onnx_import import light_model

    loaded = light_model(args.model)
    if loaded is None:
        print(f"light_{args.model}.onnx is not installed")
        return 1
    model, feeds = loaded
    runs, peer = [], []
    logging.getLogger().setLevel(logging.ERROR)  # onnxruntime's pre-processing advice
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            runs.append(compile_once(model, feeds, args.samples, Path(tmp)))
            peer.append(onnxruntime_quantize(model, feeds, args.samples, Path(tmp)))
    phases = [k for k in runs[0] if k != "summary"]
    median = {k: statistics.median(r[k] for r in runs) for k in phases}
    top = [k for k in phases if "/" not in k]  # the quantizer's steps are inside "quantize"
    total = sum(median[k] for k in top)
    ort = statistics.median(peer)

    table = Table(title=f"xir compile, light {args.model} (random weights), {args.samples} "
                        f"calibration samples, {TARGET}, median of {args.repeat}")
    for column in ("phase", "seconds", "share %"):
        table.add_column(column, justify="left" if column == "phase" else "right")
    for k in phases:
        label = f"  {k.split('/', 1)[1]}" if "/" in k else k
        table.add_row(label, f"{median[k]:.2f}", f"{100 * median[k] / total:.1f}")
    table.add_row("total", f"{total:.2f}", "100.0")
    console = Console(width=max(Console().width, 100))
    console.print(table)
    slowest = max((k for k in phases if k != "quantize"), key=median.get)
    console.print(f"slowest phase: {slowest} ({median[slowest]:.1f} s)")
    console.print(runs[0]["summary"])
    console.print(f"peer: onnxruntime quantize_static (QDQ, MinMax) on the same samples: "
                  f"{ort:.2f} s; xir compile / onnxruntime quantize = {total / ort:.2f}")
    ok = total < BAR_SECONDS
    console.print(f"{'PASS' if ok else 'FAIL'}  whole compile under {BAR_SECONDS:g} s "
                  f"({total:.1f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": runs, "median": median, "total": total,
                                               "onnxruntime_quantize_s": ort,
                                               "slowest": slowest}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
