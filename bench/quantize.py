"""INT8 post-training quantization: xir (power-of-two fix points) against onnxruntime's
``quantize_static``, on the two digits CNNs, plus cross-layer equalization and calibration speed.

    python bench/quantize.py                # about a minute
    python bench/quantize.py --json out.json

In one run, for ``examples/digits/digits_cnn.onnx`` and its depthwise-separable variant
``digits_dwsep.onnx`` (calibration: the first 200 training images; evaluation: the 540 test
images, pixels / 16):

- float accuracy in onnxruntime and in xir's interpreter;
- onnxruntime's ``quantize_static`` as the peer: QDQ, per-tensor, MinMax, int8 activations and
  weights, float scales (asymmetric activations, symmetric weights: its defaults), and the same
  with power-of-two scales and zero point 0 forced through ``TensorQuantOverrides`` (each
  tensor at its non-overflow fix point, ``ActivationSymmetric`` so that ReLUs stay); both quantize the BN-folded float graph xir quantizes;
- xir's ``quantize_module``: its default (diffs, CLE with power-of-two alignment, bias
  correction), without CLE and bias correction, without bias correction, the other two
  calibration methods, and the default with fast finetune, run by the integer executor;
- for each: test accuracy, and the output SQNR 10·log10(Σ f² / Σ (f − q)²) of the logits q
  against the float logits f over the test set;
- for each xir row, its QDQ exports run by onnxruntime: whether the default export (DPU
  rounding) gives the integer executor's logits bit for bit, and the share of test images whose
  class the plain export (QuantizeLinear's ties half to even) agrees on.

CLE: ``digits_dwsep`` with its batch norms folded is rescaled channel-wise (every equalizable
pair, scales 10^U(-2, 2), seeded): the same function (logits checked), per-channel weight
ranges 10³ and more apart. It is quantized with ``cle=False`` and with the default (CLE).

Speed: calibration throughput (samples/s) of ``passes.calibrate.calibrate`` on light ResNet-50
(random weights, ``light_model`` of tests/test_onnx_import.py), 16 random samples; and the
seconds ``quantize_module`` takes on them, by default and without CLE and bias correction.

Bars: xir's default INT8 accuracy within 0.5 points of float and its SQNR at least
onnxruntime's (per model); the default QDQ exports bit-identical; CLE: without it the rescaled
model collapses (loses more than 10 points), with it it is within 1 point of float. Where ``xir.passes.quantize`` is not importable,
the xir rows say so and only float, onnxruntime and throughput are reported.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "tests")]

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402

from xir.frontends.onnx import export_onnx, import_onnx  # noqa: E402
from xir.interpreter import run_module  # noqa: E402
from xir.passes import cle as cle_pass  # noqa: E402
from xir.passes.fixpoint import nonoverflow_fp  # noqa: E402
from xir.passes.fold_bn import fold_batch_norms  # noqa: E402

DIGITS = REPO_ROOT / "examples" / "digits"
MODELS = ("digits_cnn", "digits_dwsep")
CALIBRATION_SAMPLES = 200
ACCURACY_BAR = 0.5  # points below float, xir's default method
CLE_BAR = 1.0  # points below float, with CLE
COLLAPSE = 10.0  # points lost without CLE that count as a collapse
CLE_SPREAD = 2.0  # rescaling factors 10^U(-CLE_SPREAD, CLE_SPREAD)


# -- data and running ----------------------------------------------------------------------------


def load_digits() -> dict:
    data = np.load(DIGITS / "digits.npz")
    return {"calibration": data["x_train"][:CALIBRATION_SAMPLES].astype(np.float32) / 16,
            "x": data["x_test"].astype(np.float32) / 16, "y": data["y_test"]}


def ort_logits(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def xir_logits(module, x: np.ndarray) -> np.ndarray:
    return run_module(module, {"input": x})[0]


def accuracy(logits: np.ndarray, y: np.ndarray) -> float:
    """Percent of samples whose largest logit is the label."""
    return 100.0 * float((logits.argmax(axis=1) == y).mean())


def sqnr_db(reference: np.ndarray, quantized: np.ndarray) -> float:
    """10·log10(Σ f² / Σ (f − q)²) over every logit of the test set."""
    f, q = np.asarray(reference, np.float64), np.asarray(quantized, np.float64)
    noise = float(np.sum((f - q) ** 2))
    return float("inf") if noise == 0 else 10.0 * np.log10(float(np.sum(f * f)) / noise)


def main_func(module):
    return next(op for op in module.walk() if op.name == "func.func")


# -- onnxruntime's quantize_static -----------------------------------------------------------------


class _Reader:
    """onnxruntime's CalibrationDataReader over the calibration images, in batches of 50."""

    def __init__(self, name: str, x: np.ndarray):
        self.batches = iter([{name: x[i:i + 50]} for i in range(0, len(x), 50)])

    def get_next(self):
        return next(self.batches, None)


def ort_quantize(float_model: onnx.ModelProto, calibration: np.ndarray,
                 power_of_two: bool) -> onnx.ModelProto:
    """onnxruntime's QDQ per-tensor MinMax int8 model of ``float_model``; with
    ``power_of_two``, every activation and weight scale forced to 2^-fp (zero point 0)."""
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                          QuantType, quantize_static)

    reader_type = type("Reader", (_Reader, CalibrationDataReader), {})
    name = float_model.graph.input[0].name
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "float.onnx", Path(tmp) / "int8.onnx"
        onnx.save(float_model, src)
        extra = {}
        if power_of_two:
            extra["TensorQuantOverrides"] = _power_of_two_overrides(float_model, src, calibration)
            # zero point 0 is symmetric: onnxruntime must then keep each ReLU as a node (it
            # drops them for asymmetric ranges, whose clamp at the zero point does the ReLU)
            extra["ActivationSymmetric"] = True
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # "consider pre-processing": the graph is already folded
        try:
            quantize_static(str(src), str(dst), reader_type(name, calibration),
                            quant_format=QuantFormat.QDQ, per_channel=False,
                            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                            calibrate_method=CalibrationMethod.MinMax, extra_options=extra)
        finally:
            root.setLevel(level)
        return onnx.load(dst)


def _power_of_two_overrides(float_model, path: Path, calibration: np.ndarray) -> dict:
    """TensorQuantOverrides putting every calibrated tensor and weight at its non-overflow
    fix point: scale 2^-fp, zero point int8 0."""
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod
    from onnxruntime.quantization.calibrate import create_calibrator

    reader_type = type("Reader", (_Reader, CalibrationDataReader), {})
    with tempfile.TemporaryDirectory() as tmp:
        calibrator = create_calibrator(str(path), augmented_model_path=str(Path(tmp) / "aug.onnx"),
                                       calibrate_method=CalibrationMethod.MinMax)
        calibrator.collect_data(reader_type(float_model.graph.input[0].name, calibration))
        ranges = {name: (float(np.min(r.range_value[0])), float(np.max(r.range_value[1])))
                  for name, r in calibrator.compute_data().data.items()}
    for init in float_model.graph.initializer:
        array = onnx.numpy_helper.to_array(init)
        if array.ndim >= 2:  # conv and gemm weights (biases follow: input scale · weight scale)
            ranges[init.name] = (float(array.min()), float(array.max()))
    return {name: [{"scale": np.array(np.ldexp(1.0, -nonoverflow_fp(low, high)), np.float32),
                    "zero_point": np.array(0, np.int8)}]
            for name, (low, high) in ranges.items()}


# -- xir --------------------------------------------------------------------------------------------


def xir_quantizer():
    """``quantize_module``, or the reason it is not available."""
    try:
        from xir.passes.quantize import quantize_module
    except ImportError as e:
        return None, f"xir quantize not available yet ({e})"
    return quantize_module, None


def folded(name: str):
    """The digits model imported into xir, batch norms folded."""
    module = import_onnx(str(DIGITS / f"{name}.onnx"))
    fold_batch_norms(main_func(module))
    return module


def rescaled_dwsep(x: np.ndarray, seed: int = 0):
    """digits_dwsep folded and rescaled channel-wise by 10^U(-2, 2) on every equalizable pair;
    returns (module, largest per-channel weight range ratio of a layer, max logit change)."""
    module = folded("digits_dwsep")
    before = xir_logits(module, x)
    rng = np.random.default_rng(seed)
    for conv1, conv2 in cle_pass.pairs(main_func(module)):
        channels = conv1.operands[1].type.shape[0]
        cle_pass.scale_channels(conv1, conv2, 10.0 ** rng.uniform(-CLE_SPREAD, CLE_SPREAD,
                                                                   channels))
    after = xir_logits(module, x)
    change = float(np.max(np.abs(after - before)) / np.max(np.abs(before)))
    return module, _channel_spread(module), change


def _channel_spread(module) -> float:
    """The largest ratio between the largest and smallest per-output-channel weight range of
    one convolution."""
    worst = 1.0
    for op in main_func(module).walk():
        if op.name == "graph.conv2d":
            w = np.abs(cle_pass._weights(op)).reshape(op.operands[1].type.shape[0], -1).max(1)
            worst = max(worst, float(w.max() / max(w.min(), 1e-30)))
    return worst


# -- the rows ---------------------------------------------------------------------------------------


def timed_quantize(quantize_module, module, calibration: dict, **options):
    """``quantize_module`` on ``calibration`` (arrays by input name; its too-few-samples
    warning silenced): the quantized module and the seconds it took."""
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quant, _ = quantize_module(module, calibration, **options)
    return quant, time.perf_counter() - start


def model_rows(name: str, data: dict, quantize_module, missing: str | None) -> list[dict]:
    """Float, onnxruntime and xir rows of one model."""
    x, y, cal = data["x"], data["y"], data["calibration"]
    original = onnx.load(DIGITS / f"{name}.onnx")
    float_ort = ort_logits(original, x)
    module = folded(name)
    float_xir = xir_logits(import_onnx(str(DIGITS / f"{name}.onnx")), x)
    rows = [row(name, "float (onnxruntime)", float_ort, y),
            row(name, "float (xir interpreter)", float_xir, y, float_ort)]
    folded_model = export_onnx(module)
    for label, pow2 in (("onnxruntime QDQ MinMax per-tensor", False),
                        ("onnxruntime QDQ MinMax per-tensor, 2^-fp scales", True)):
        try:
            rows.append(row(name, label, ort_logits(ort_quantize(folded_model, cal, pow2), x), y,
                            float_ort, peer=not pow2))
        except Exception as e:  # an onnxruntime version without the overrides, say
            rows.append({"model": name, "scheme": label, "error": f"{type(e).__name__}: {e}"})
    if quantize_module is None:
        return rows + [{"model": name, "scheme": label, "error": missing}
                       for label, _, _ in XIR_SCHEMES]
    for label, options, flags in XIR_SCHEMES:
        quant, seconds = timed_quantize(quantize_module, module, {"input": cal}, **options)
        logits = xir_logits(quant, x)
        rows.append(row(name, label, logits, y, float_ort, seconds=seconds, **flags,
                        **qdq_agreement(quant, x, logits)))
    return rows


# label, quantize_module options, row flags; the first is the default
XIR_SCHEMES = [
    ("xir default (diffs, CLE, BC)", {}, {"ours": True}),
    ("xir diffs, no CLE, no BC", {"cle": False, "bias_correction": False}, {}),
    ("xir diffs, CLE, no BC", {"bias_correction": False}, {}),
    ("xir nonoverflow (CLE, BC)", {"method": "nonoverflow"}, {}),
    ("xir percentile (CLE, BC)", {"method": "percentile"}, {}),
    ("xir default + fast finetune", {"fast_finetune": True}, {"corrected": True}),
]


def qdq_agreement(quant, x: np.ndarray, logits: np.ndarray) -> dict:
    """onnxruntime on the QDQ exports of ``quant`` against the integer executor's ``logits``:
    whether the default export (DPU rounding) is bit-identical, and the share of classes the
    plain export (ties half to even) agrees on."""
    from xir.frontends.onnx_qdq import export_qdq

    exact = ort_logits(export_qdq(quant, dpu_rounding=True), x)
    plain = ort_logits(export_qdq(quant, dpu_rounding=False), x)
    return {"qdq_bit_exact": bool(np.array_equal(exact, logits)),
            "qdq_plain_same_class": 100.0 * float((plain.argmax(1) == logits.argmax(1)).mean())}


def cle_rows(data: dict, quantize_module, missing: str | None) -> tuple[list[dict], dict]:
    x, y, cal = data["x"], data["y"], data["calibration"]
    module, spread, change = rescaled_dwsep(x)
    reference = xir_logits(module, x)
    name = "digits_dwsep rescaled"
    rows = [row(name, "float (xir interpreter)", reference, y)]
    facts = {"channel_range_ratio": spread, "max_relative_logit_change": change}
    try:
        rows.append(row(name, "onnxruntime QDQ MinMax per-tensor",
                        ort_logits(ort_quantize(export_onnx(module), cal, False), x), y, reference))
    except Exception as e:
        rows.append({"model": name, "scheme": "onnxruntime QDQ MinMax per-tensor",
                     "error": f"{type(e).__name__}: {e}"})
    for use_cle in (False, True):
        label = "xir default (CLE)" if use_cle else "xir --no-cle"
        if quantize_module is None:
            rows.append({"model": name, "scheme": label, "error": missing})
            continue
        quant, seconds = timed_quantize(quantize_module, module, {"input": cal}, cle=use_cle)
        rows.append(row(name, label, xir_logits(quant, x), y, reference, cle=use_cle,
                        seconds=seconds))
    return rows, facts


def row(model: str, scheme: str, logits, y, reference=None, **flags) -> dict:
    out = {"model": model, "scheme": scheme, "accuracy": accuracy(logits, y)}
    if reference is not None:
        out["sqnr_db"] = sqnr_db(reference, logits)
        out["agree_with_float"] = 100.0 * float((logits.argmax(1) == reference.argmax(1)).mean())
    out.update(flags)
    return out


def calibration_throughput(samples: int = 16) -> dict:
    """Samples per second of ``calibrate`` on light ResNet-50 (random weights)."""
    from test_onnx_import import light_model

    from xir.passes.calibrate import calibrate

    loaded = light_model("resnet50")
    if loaded is None:
        return {"error": "light_resnet50.onnx is not installed"}
    model, feeds = loaded
    (name, one), = feeds.items()
    func = main_func(import_onnx(model))
    data = {name: np.random.default_rng(2).random((samples,) + one.shape[1:], dtype=np.float32)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fewer than 100 samples
        start = time.perf_counter()
        calibrate(func, data)
        seconds = time.perf_counter() - start
    from xir.passes.quantize import quantize_module

    module = import_onnx(model)
    _, plain = timed_quantize(quantize_module, module, data)
    _, bare = timed_quantize(quantize_module, module, data, cle=False, bias_correction=False)
    return {"samples": samples, "seconds": seconds, "samples_per_s": samples / seconds,
            "quantize_s": plain, "quantize_bare_s": bare}


# -- the verdict and the table ----------------------------------------------------------------------


def verdicts(rows: list[dict]) -> list[tuple[str, bool | None]]:
    """(bar, passed) pairs; None where a row is missing."""
    out = []
    for name in MODELS:
        mine = [r for r in rows if r["model"] == name]
        by = {r["scheme"]: r for r in mine}
        float_acc = by["float (onnxruntime)"]["accuracy"]
        ours = next((r for r in mine if r.get("ours") and "accuracy" in r), None)
        peer = next((r for r in mine if r.get("peer") and "sqnr_db" in r), None)
        pow2 = next((r for r in mine if "2^-fp" in r["scheme"] and "sqnr_db" in r), None)
        if ours is None:
            out.append((f"{name}: xir default within {ACCURACY_BAR} points of float", None))
            out.append((f"{name}: xir SQNR >= onnxruntime's", None))
            continue
        out.append((f"{name}: xir default within {ACCURACY_BAR} points of float "
                    f"({ours['accuracy'] - float_acc:+.2f})",
                    bool(ours["accuracy"] >= float_acc - ACCURACY_BAR)))
        if peer is not None:
            out.append((f"{name}: xir SQNR >= onnxruntime's ({ours['sqnr_db']:.1f} vs "
                        f"{peer['sqnr_db']:.1f} dB)", bool(ours["sqnr_db"] >= peer["sqnr_db"])))
        corrected = next((r for r in mine if r.get("corrected") and "sqnr_db" in r), None)
        if peer is not None and corrected is not None:
            out.append((f"{name}: xir default + fast finetune SQNR >= onnxruntime's "
                        f"({corrected['sqnr_db']:.1f} vs {peer['sqnr_db']:.1f} dB)",
                        bool(corrected["sqnr_db"] >= peer["sqnr_db"])))
        exported = [r for r in mine if "qdq_bit_exact" in r]
        if exported:
            out.append((f"{name}: onnxruntime on every default QDQ export is bit-identical to "
                        "the integer executor", all(r["qdq_bit_exact"] for r in exported)))
        if pow2 is not None:  # shown, not part of the bar: the peer on xir's own terms
            out.append((f"{name}: (info) xir SQNR >= onnxruntime's with 2^-fp scales "
                        f"({ours['sqnr_db']:.1f} vs {pow2['sqnr_db']:.1f} dB)",
                        bool(ours["sqnr_db"] >= pow2["sqnr_db"])))
    cle = [r for r in rows if r["model"] == "digits_dwsep rescaled"]
    float_acc = cle[0]["accuracy"]
    without = next((r for r in cle if r.get("cle") is False and "accuracy" in r), None)
    with_ = next((r for r in cle if r.get("cle") is True and "accuracy" in r), None)
    out.append((f"CLE: collapses without (loses > {COLLAPSE:g} points)",
                None if without is None else bool(without["accuracy"] < float_acc - COLLAPSE)))
    out.append((f"CLE: --cle within {CLE_BAR:g} point of float",
                None if with_ is None else bool(with_["accuracy"] >= float_acc - CLE_BAR)))
    return out


def print_report(rows, facts, speed, checks) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="INT8 post-training quantization, digits test set (540 images)")
    for column in ("model", "scheme", "accuracy %", "Δ vs float", "SQNR dB", "same class %",
                   "QDQ exact", "plain QDQ class %", "quantize s"):
        table.add_column(column, justify="left" if column in ("model", "scheme") else "right")
    floats: dict = {}
    for r in rows:
        if r["scheme"].startswith("float"):
            floats.setdefault(r["model"], r["accuracy"])
    for r in rows:
        if "error" in r:
            table.add_row(r["model"], r["scheme"], r["error"], "", "", "", "", "", "")
            continue
        sqnr = r.get("sqnr_db")
        table.add_row(r["model"], r["scheme"], f"{r['accuracy']:.2f}",
                      f"{r['accuracy'] - floats[r['model']]:+.2f}",
                      "" if sqnr is None else f"{sqnr:.1f}",
                      "" if "agree_with_float" not in r else f"{r['agree_with_float']:.1f}",
                      "" if "qdq_bit_exact" not in r else ("yes" if r["qdq_bit_exact"] else "NO"),
                      "" if "qdq_plain_same_class" not in r
                      else f"{r['qdq_plain_same_class']:.1f}",
                      "" if "seconds" not in r else f"{r['seconds']:.1f}")
    console = Console(width=max(Console().width, 150))
    console.print(table)
    console.print("BC: bias correction. QDQ exact: onnxruntime on the default QDQ export gives the "
                  "integer executor's logits bit for bit; plain QDQ class %: test images whose "
                  "class the plain export (ties half to even) agrees on")
    console.print(f"CLE model: per-channel weight ranges up to {facts['channel_range_ratio']:.3g}x "
                  f"apart in one layer; logits changed by {facts['max_relative_logit_change']:.2g}"
                  " (relative) by the rescaling")
    if "error" in speed:
        console.print(f"calibration throughput: {speed['error']}")
    else:
        console.print(f"calibration throughput, light ResNet-50 (random weights): "
                      f"{speed['samples_per_s']:.2f} samples/s ({speed['samples']} samples in "
                      f"{speed['seconds']:.1f} s); quantize_module on them: "
                      f"{speed['quantize_s']:.1f} s by default, "
                      f"{speed['quantize_bare_s']:.1f} s without CLE and bias correction")
    for text, ok in checks:
        console.print(f"{'PASS' if ok else 'FAIL' if ok is False else 'n/a '}  {text}")
    bars = [ok for text, ok in checks if "(info)" not in text]
    known = [ok for ok in bars if ok is not None]
    verdict = "FAIL" if not all(known) else "PASS" if len(known) == len(bars) else "INCOMPLETE"
    console.print(f"bar: {verdict}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write the numbers to this file")
    parser.add_argument("--throughput-samples", type=int, default=16)
    args = parser.parse_args(argv)
    data = load_digits()
    quantize_module, missing = xir_quantizer()
    rows = [r for name in MODELS for r in model_rows(name, data, quantize_module, missing)]
    more, facts = cle_rows(data, quantize_module, missing)
    rows += more
    speed = calibration_throughput(args.throughput_samples)
    checks = verdicts(rows)
    print_report(rows, facts, speed, checks)
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "cle": facts, "throughput": speed,
                                               "bars": checks}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
