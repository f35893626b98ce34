"""Post-training quantization (passes/quantize.py, ``xir quantize``): the digits models keep their
accuracy, every fix point is an integer and every shift is inside the DPU's ranges, random
architectures quantize and run, bad input is one clear message, and the command line works end
to end (``xir quantize`` then ``xir run``)."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest

from fixtures import run_xir
from test_onnx_import import Graph
from xir.diagnostics import XirError
from xir.dialects.graph.constants import constant_attr
from xir.dialects.quant.base import QuantOp, shift_bias_range
from xir.frontends.onnx import import_onnx
from xir.interpreter import run_module
from xir.passes import quant_legalize as L
from xir.passes.quant_lowering import constant_fp
from xir.passes.quantize import quantize_module, sqnr_db
from xir.verifier import verify

DIGITS = Path(__file__).resolve().parent.parent / "examples" / "digits"
CALIBRATION_SAMPLES = 200


@pytest.fixture(scope="module")
def digits():
    data = np.load(DIGITS / "digits.npz")
    calib = data["x_train"][:CALIBRATION_SAMPLES].astype(np.float32) / 16
    return calib, data["x_test"].astype(np.float32) / 16, data["y_test"]


def accuracy(module, x, y) -> float:
    return float((run_module(module, {"input": x})[0].argmax(1) == y).mean() * 100)


def output_sqnr(model, x):
    """A function giving a quantized module's output SQNR (dB) against float ``model`` on ``x``."""
    reference = run_module(model, {"input": x})[0].astype(np.float64)

    def sqnr(module):
        got = run_module(module, {"input": x})[0]
        return 10 * np.log10(np.sum(reference ** 2) / np.sum((reference - got) ** 2))

    return sqnr


def check_dpu_legal(module) -> int:
    """Every fix point an int, every shift inside the DPU's ranges (reference/dpu.md §3), every
    operand read at the fix point it was written at; returns how many quant ops were checked."""
    checked = 0
    for op in module.walk():
        if not isinstance(op, QuantOp):
            continue
        p = op.param
        for key in ("fix_point", "input_fp", "weight_fp", "bias_fp", "output_fp", "hsigmoid_in"):
            assert p.get(key) is None or isinstance(p[key], int), (op.name, key)
        if op.name in ("quant.conv2d", "quant.conv_transpose2d", "quant.dense"):
            target = p["hsigmoid_in"] if p["activation"] == "hard_sigmoid" else p["output_fp"]
            cut = p["input_fp"] + p["weight_fp"] - target
            assert 0 <= cut <= 16, (op.name, cut)
            if p["bias_fp"] is not None:
                low, high = shift_bias_range(cut)
                assert low <= p["input_fp"] + p["weight_fp"] - p["bias_fp"] <= high
            if p["activation"] == "relu6":
                assert p["output_fp"] == L.RELU6_FP
            if p["activation"] == "hard_sigmoid":
                assert p["output_fp"] >= 7 and 0 <= 14 + p["hsigmoid_in"] - p["output_fp"] <= 31
        elif op.name == "quant.add":
            fps = p["input_fps"]
            assert all(0 <= f - min(fps) <= 15 for f in fps)
            assert -15 <= min(fps) - p["output_fp"] <= 15
        elif op.name == "quant.mul":
            assert -15 <= sum(p["input_fps"]) - p["output_fp"] <= 15
        elif op.name == "quant.concat":
            assert set(p["input_fps"]) == {p["output_fp"]}
        elif op.name in ("quant.relu", "quant.relu6", "quant.leaky_relu"):
            assert -15 <= p["input_fp"] - p["output_fp"] <= 15
        for value, fp in zip(op.operands, op.operand_fix_points()):
            owner = getattr(value, "owner", None)
            written = owner.output_fix_point() if isinstance(owner, QuantOp) else None
            assert fp is None or written is None or written == fp
        checked += 1
    return checked


# -- the digits models ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["diffs", "nonoverflow", "percentile"])
@pytest.mark.parametrize("name", ["digits_cnn", "digits_dwsep"])
def test_digits_keep_their_accuracy(name, method, digits):
    calib, x, y = digits
    model = import_onnx(str(DIGITS / f"{name}.onnx"))
    reference = accuracy(model, x, y)
    quantized, report = quantize_module(model, {"input": calib}, method=method)
    verify(quantized)
    assert check_dpu_legal(quantized) >= 8
    got = accuracy(quantized, x, y)
    print(f"{name} {method}: float {reference:.2f} %, int8 {got:.2f} %, "
          f"output SQNR {report.output_sqnr_db[0]:.1f} dB")
    assert got >= reference - (1.0 if method == "diffs" else 2.0)
    assert report.samples == CALIBRATION_SAMPLES and report.method == method
    assert report.output_sqnr_db[0] > 20
    # the float model is untouched
    assert accuracy(model, x, y) == reference
    # every output is a multiple of 2^-fp: the scales are exact powers of two
    logits = run_module(quantized, {"input": x[:16]})[0]
    fp = next(op for op in quantized.walk() if op.name == "quant.dequantize").param["fix_point"]
    assert np.array_equal(logits * 2.0 ** fp, np.round(logits * 2.0 ** fp))


@pytest.mark.parametrize("name", ["digits_cnn", "digits_dwsep"])
def test_bias_correction_raises_the_output_sqnr(name, digits):
    calib, x, y = digits
    model = import_onnx(str(DIGITS / f"{name}.onnx"))
    sqnr = output_sqnr(model, x)
    plain, _ = quantize_module(model, {"input": calib}, bias_correction=False)
    corrected, report = quantize_module(model, {"input": calib})  # bias correction: the default
    verify(corrected)
    assert check_dpu_legal(corrected) >= 8
    assert set(report.bias_errors) >= {"conv1", "conv2", "fc"}
    assert all(error > 0 for error in report.bias_errors.values())
    print(f"{name}: output SQNR {sqnr(plain):.2f} dB -> {sqnr(corrected):.2f} dB with bias "
          f"correction; accuracy {accuracy(corrected, x, y):.2f} %")
    assert sqnr(corrected) >= sqnr(plain) + 1.0  # measured (with CLE): +3.6 dB (cnn), +1.8 (dwsep)
    assert accuracy(corrected, x, y) >= accuracy(model, x, y) - 0.5


@pytest.mark.filterwarnings("ignore:calibration data holds only")
@pytest.mark.parametrize("name", ["digits_cnn", "digits_dwsep"])
def test_fast_finetune_raises_the_output_sqnr_and_keeps_shifts_legal(name, digits):
    calib, x, y = digits
    model = import_onnx(str(DIGITS / f"{name}.onnx"))
    sqnr = output_sqnr(model, x)
    plain, _ = quantize_module(model, {"input": calib[:64]}, bias_correction=False)
    tuned, report = quantize_module(model, {"input": calib[:64]}, bias_correction=False,
                                    fast_finetune=True,
                                    finetune_steps=100)  # fewer steps than the default: a test
    verify(tuned)
    assert check_dpu_legal(tuned) >= 8
    assert all(0 < left <= 1.0 for left in report.finetune_left.values())
    print(f"{name}: output SQNR {sqnr(plain):.2f} dB -> {sqnr(tuned):.2f} dB with fast finetune")
    assert sqnr(tuned) >= sqnr(plain) + 1.0
    assert accuracy(tuned, x, y) >= accuracy(model, x, y) - 0.5


def test_the_report_names_each_layer(digits):
    calib, _, _ = digits
    quantized, report = quantize_module(import_onnx(str(DIGITS / "digits_cnn.onnx")),
                                        {"input": calib})
    names = [layer.name for layer in report.layers]
    assert names == ["conv1", "conv2", "pool1", "conv3", "gap", "fc"]
    conv2 = report.layer("conv2")
    assert conv2.op == "quant.conv2d" and conv2.activation == "relu"  # bn2 folded, relu2 fused
    assert conv2.shifts["shift_cut"] == conv2.input_fps[0] + conv2.weight_fp - conv2.output_fp
    assert conv2.shifts["shift_bias"] == conv2.input_fps[0] + conv2.weight_fp - conv2.bias_fp
    assert report.layer("pool1").output_fp == report.layer("pool1").input_fps[0]
    assert all(layer.sqnr_db > 15 for layer in report.layers)
    assert report.float_ops == [] and report.requantized == []
    as_json = json.loads(report.to_json())
    assert as_json["layers"][1]["name"] == "conv2" and as_json["method"] == "diffs"


def test_cle_keeps_accuracy(digits):
    calib, x, y = digits
    model = import_onnx(str(DIGITS / "digits_dwsep.onnx"))
    quantized, _ = quantize_module(model, {"input": calib}, cle=True)
    assert check_dpu_legal(quantized)
    assert accuracy(quantized, x, y) >= accuracy(model, x, y) - 1.0


# -- the legalization rules ----------------------------------------------------------------------


@pytest.mark.parametrize("fps, legal", [
    ((5, 6, 7, 4), (6, 7, 4)),     # already legal: shift_cut 7, shift_bias 4
    ((8, 14, 7, 2), (10, 7, 2)),   # shift_cut 20 > 16: w lowered to 10
    ((2, 3, 4, 8), (3, 4, 5)),     # shift_cut -3 < 0: o lowered to i + w
    ((6, 8, -4, 5), (8, -2, 5)),   # shift_bias 18 > 16: b raised to -2
    ((6, 8, 30, 5), (8, 21, 5)),   # shift_bias -16 < shift_cut - 16 = -7: b lowered to 21
])
def test_accumulate_legalization(fps, legal):
    i, w, b, o = fps
    assert L.accumulate(i, w, b, o) == legal


def test_a_bias_that_would_clip_lowers_the_weights_instead():
    # shift_bias = 6 + 14 - 2 = 18: b = 4 would clip a bias whose non-overflow fp is 3
    w, b, o = L.accumulate(6, 14, 2, 8, b_limit=3)
    assert (w, b, o) == (13, 3, 8) and 6 + w - b == 16


def test_eltwise_and_activation_legalization():
    assert L.add_output((3, 10), 25) == 18 and L.add_output((3, 10), -20) == -12
    assert L.mul_output((5, 6), 30) == 26
    assert L.activation_output("relu6", 2, 6) == 4
    assert L.activation_output("relu", 2, 20) == 17
    assert L.hard_sigmoid_fps(3, 5) == (3, 7)
    assert L.hard_sigmoid_fps(-10, 7) == (-7, 7)
    assert L.activation_output("hard_sigmoid", 4, 6) == 7


def test_sqnr():
    assert sqnr_db(100.0, 1.0) == 20.0 and sqnr_db(1.0, 0.0) == math.inf


# -- random architectures ------------------------------------------------------------------------


def _residual_concat_model(seed: int):
    """Residual add, a concat of two branches, depthwise, max/avg/global pooling, a dense head
    and a softmax left in float."""
    g = Graph(seed)
    y = g.node("Conv", ["x", g.weight((8, 3, 3, 3)), g.weight((8,), 0.1)], name="stem",
               pads=[1, 1, 1, 1])
    y = g.node("Relu", [y], name="stem_relu")
    r = g.node("Conv", [y, g.weight((8, 8, 3, 3)), g.weight((8,), 0.1)], name="res_a",
               pads=[1, 1, 1, 1])
    r = g.node("Relu", [r], name="res_a_relu")
    r = g.node("Conv", [r, g.weight((8, 8, 3, 3)), g.weight((8,), 0.1)], name="res_b",
               pads=[1, 1, 1, 1])
    y = g.node("Add", [y, r], name="residual")
    y = g.node("Relu", [y], name="residual_relu")
    y = g.node("MaxPool", [y], name="maxpool", kernel_shape=[2, 2], strides=[2, 2])
    a = g.node("Conv", [y, g.weight((6, 8, 1, 1)), g.weight((6,), 0.1)], name="branch_a")
    a = g.node("Relu", [a], name="branch_a_relu")
    b = g.node("Conv", [y, g.weight((8, 1, 3, 3)), g.weight((8,), 0.1)], name="depthwise",
               pads=[1, 1, 1, 1], group=8)
    b = g.node("Clip", [b, g.const(np.float32(0)), g.const(np.float32(6))], name="depthwise_relu6")
    y = g.node("Concat", [a, b], name="concat", axis=1)
    y = g.node("AveragePool", [y], name="avgpool", kernel_shape=[2, 2], strides=[2, 2])
    y = g.node("LeakyRelu", [y], name="leaky", alpha=0.1015625)
    y = g.node("GlobalAveragePool", [y], name="gap")
    y = g.node("Flatten", [y], name="flatten")
    y = g.node("Gemm", [y, g.weight((5, 14)), g.weight((5,), 0.1)], name="fc", transB=1)
    y = g.node("Softmax", [y], name="softmax", axis=1)
    return g.model({"x": ["N", 3, 16, 16]}, [y])


def _mixed_model(seed: int):
    """Transposed convolution, hard sigmoid, eltwise multiply, pad, resize, a matmul head and a
    sigmoid left in float; one tensor feeds a concat and an add."""
    g = Graph(seed)
    y = g.node("Conv", ["x", g.weight((4, 2, 3, 3)), g.weight((4,), 0.1)], name="c1",
               strides=[2, 2], pads=[1, 1, 1, 1])
    y = g.node("LeakyRelu", [y], name="c1_leaky", alpha=0.1)
    s = g.node("Conv", [y, g.weight((4, 4, 1, 1)), g.weight((4,), 0.1)], name="gate")
    s = g.node("HardSigmoid", [s], name="gate_hsig", alpha=1 / 6, beta=0.5)
    y = g.node("Mul", [y, s], name="gated")
    u = g.node("ConvTranspose", [y, g.weight((4, 4, 2, 2)), g.weight((4,), 0.1)], name="up",
               strides=[2, 2])
    u = g.node("Relu", [u], name="up_relu")
    r = g.node("Resize", [y, "", g.const(np.array([1, 1, 2, 2], np.float32))], name="resize",
               mode="nearest")
    y = g.node("Concat", [u, r], name="cat", axis=1)
    z = g.node("Add", [u, r], name="sum")
    y = g.node("Concat", [y, z], name="cat2", axis=1)
    y = g.node("Pad", [y, g.const(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64))], name="pad")
    y = g.node("Conv", [y, g.weight((4, 12, 3, 3)), g.weight((4,), 0.1)], name="c2")
    y = g.node("Relu", [y], name="c2_relu")
    y = g.node("GlobalAveragePool", [y], name="gap")
    y = g.node("Flatten", [y], name="flatten")
    y = g.node("MatMul", [y, g.weight((4, 3))], name="head")
    y = g.node("Sigmoid", [y], name="sigmoid")
    return g.model({"x": ["N", 2, 8, 8]}, [y])


@pytest.mark.parametrize("build", [_residual_concat_model, _mixed_model])
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("method", ["diffs", "nonoverflow", "percentile"])
def test_random_architectures_quantize_and_run(build, seed, method):
    model = build(seed)
    module = import_onnx(model)
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim][1:]
    rng = np.random.default_rng(seed)
    calib = rng.standard_normal((120, *shape)).astype(np.float32)
    x = rng.standard_normal((16, *shape)).astype(np.float32)
    quantized, report = quantize_module(module, {"x": calib}, method=method, batch_size=40)
    verify(quantized)
    assert check_dpu_legal(quantized) > 10
    (expected,) = run_module(module, {"x": x})
    (got,) = run_module(quantized, {"x": x})
    assert got.shape == expected.shape and got.dtype == np.float32
    sqnr = sqnr_db(float(np.sum(expected.astype(np.float64) ** 2)),
                   float(np.sum((expected.astype(np.float64) - got) ** 2)))
    assert sqnr > 15, sqnr
    names = {op.name for op in quantized.walk()}
    assert "graph.softmax" in names or "graph.sigmoid" in names  # left in float
    assert not names & {"graph.conv2d", "graph.add", "graph.concat", "graph.gemm",
                        "graph.matmul", "graph.max_pool2d", "graph.relu"}
    assert report.float_ops == [("softmax" if build is _residual_concat_model else "sigmoid")]


def test_concat_inputs_are_written_at_the_concat_fix_point():
    module = import_onnx(_residual_concat_model(0))
    calib = np.random.default_rng(0).standard_normal((100, 3, 16, 16)).astype(np.float32)
    quantized, report = quantize_module(module, {"x": calib})
    concat = next(op for op in quantized.walk() if op.name == "quant.concat")
    for value in concat.operands:
        assert value.owner.output_fix_point() == concat.param["output_fp"]
    # the depthwise branch ends in relu6, which writes at fix point 4: the tie takes it
    assert concat.param["output_fp"] == L.RELU6_FP


def test_a_conflicting_tie_is_requantized():
    # a relu6 (fix point 4) and a hard sigmoid (fix point >= 7) meet in one concat
    g = Graph(3)
    a = g.node("Conv", ["x", g.weight((2, 2, 1, 1))], name="ca")
    a = g.node("Clip", [a, g.const(np.float32(0)), g.const(np.float32(6))], name="relu6")
    b = g.node("Conv", ["x", g.weight((2, 2, 1, 1))], name="cb")
    b = g.node("HardSigmoid", [b], name="hsig", alpha=1 / 6, beta=0.5)
    y = g.node("Concat", [a, b], name="cat", axis=1)
    module = import_onnx(g.model({"x": ["N", 2, 4, 4]}, [y]))
    calib = np.random.default_rng(0).standard_normal((100, 2, 4, 4)).astype(np.float32)
    quantized, report = quantize_module(module, {"x": calib})
    assert check_dpu_legal(quantized)
    assert len(report.requantized) == 1 and "identity quant.conv2d" in report.requantized[0]
    (expected,) = run_module(module, {"x": calib[:8]})
    (got,) = run_module(quantized, {"x": calib[:8]})
    noise = float(np.sum((got - expected.astype(np.float64)) ** 2))
    assert sqnr_db(float(np.sum(expected.astype(np.float64) ** 2)), noise) > 25


# -- bad input -----------------------------------------------------------------------------------


def _small_model(nan_weight: bool = False):
    g = Graph(0)
    w = g.rng.standard_normal((4, 1, 3, 3)).astype(np.float32)
    y = g.node("Conv", ["input", g.const(w, "conv1.weight")], name="conv1", pads=[1, 1, 1, 1])
    y = g.node("Relu", [y], name="relu1")
    module = import_onnx(g.model({"input": ["N", 1, 8, 8]}, [y]))
    if nan_weight:  # (the ONNX importer rejects such an initializer; IR text can hold one)
        constant = next(op for op in module.walk() if op.name == "graph.constant")
        w[1, 0, 2, 2] = np.nan
        constant.attributes["value"] = constant_attr(module, w, "conv1.weight")
    return module


@pytest.mark.parametrize("data, message", [
    ({"x": np.zeros((100, 1, 8, 8), np.float32)},
     "calibration data has no input 'input' (it holds: x)"),
    ({"input": np.zeros((100, 2, 8, 8), np.float32)},
     "calibration data: input 'input' has shape (100, 2, 8, 8); expected (samples, 1, 8, 8)"),
    ({"input": np.zeros((100, 8, 8), np.float32)},
     "calibration data: input 'input' has shape (100, 8, 8); expected (samples, 1, 8, 8)"),
    ({"input": np.full((100, 1, 8, 8), np.inf, np.float32)},
     "calibration data: input 'input' holds 6400 NaN or infinite values"),
])
def test_bad_calibration_data(data, message):
    with pytest.raises(XirError) as info:
        quantize_module(_small_model(), data)
    assert str(info.value) == f"error: {message}"


def test_nan_in_weights_names_the_tensor():
    data = {"input": np.zeros((100, 1, 8, 8), np.float32)}
    with pytest.raises(XirError) as info:
        quantize_module(_small_model(nan_weight=True), data)
    assert str(info.value) == ("error: weight 'conv1.weight' (used by conv1) holds 1 NaN or "
                               "infinite values")


def test_unknown_method():
    with pytest.raises(XirError, match="unknown calibration method 'mse'"):
        quantize_module(_small_model(), {"input": np.zeros((100, 1, 8, 8), np.float32)}, "mse")


def test_too_few_samples_is_a_warning():
    data = {"input": np.random.default_rng(0).random((10, 1, 8, 8)).astype(np.float32)}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quantized, _ = quantize_module(_small_model(), data)
    assert [str(w.message) for w in caught] == [
        "calibration data holds only 10 samples; 100 or more give stabler fix points"]
    verify(quantized)


# -- the command line ----------------------------------------------------------------------------


xir = run_xir  # the CLI in this process: (exit status, stdout, stderr)


def test_cli_quantize_then_run(tmp_path, digits):
    calib, x, y = digits
    np.savez(tmp_path / "calib.npz", input=calib)
    np.savez(tmp_path / "in.npz", input=x)
    model = str(DIGITS / "digits_cnn.onnx")
    out, report = tmp_path / "q.xir", tmp_path / "r.json"
    code, stdout, err = xir(["quantize", model, "--calib", str(tmp_path / "calib.npz"),
                             "-o", str(out), "--report", str(report)])
    assert (code, stdout, err) == (0, "", "")
    assert (tmp_path / "q.xir.weights").exists()
    layers = json.loads(report.read_text())["layers"]
    assert [layer["name"] for layer in layers][0] == "conv1"
    code, _, err = xir(["run", str(out), "--input", str(tmp_path / "in.npz"),
                        "-o", str(tmp_path / "out.npz")])
    assert (code, err) == (0, "")
    with np.load(tmp_path / "out.npz") as result:
        assert result.files == ["logits"]
        expected, _ = quantize_module(import_onnx(model), {"input": calib})
        assert np.array_equal(result["logits"], run_module(expected, {"input": x})[0])
        assert (result["logits"].argmax(1) == y).mean() >= 0.97


def test_cli_quantize_from_xir_with_a_method(tmp_path):
    xir_in = tmp_path / "m.xir"
    code, _, _ = xir(["import", str(DIGITS / "digits_dwsep.onnx"), "-o", str(xir_in)])
    assert code == 0
    data = np.load(DIGITS / "digits.npz")["x_train"][:40].astype(np.float32) / 16
    np.savez(tmp_path / "calib.npz", input=data)
    code, _, err = xir(["quantize", str(xir_in), "--calib", str(tmp_path / "calib.npz"),
                        "--method", "nonoverflow", "--cle", "-o", str(tmp_path / "q.xir")])
    assert code == 0
    assert err == (f"{xir_in}: warning: calibration data holds only 40 samples; 100 or more "
                   "give stabler fix points\n")


@pytest.mark.parametrize("extra, message", [
    (["--report", "r.txt"], "--report: 'r.txt' should end in .json or .html"),
    (["--method", "mse"], "argument --method: invalid choice: 'mse' (choose from 'diffs', "
                          "'nonoverflow', 'percentile')"),
])
def test_cli_errors_are_one_line(tmp_path, extra, message):
    np.savez(tmp_path / "calib.npz", input=np.zeros((100, 1, 8, 8), np.float32))
    code, _, err = xir(["quantize", str(DIGITS / "digits_cnn.onnx"), "--calib",
                        str(tmp_path / "calib.npz"), "-o", str(tmp_path / "q.xir"), *extra])
    assert code == 1 and err == f"xir quantize: error: {message}\n"
    assert not (tmp_path / "q.xir").exists()


def test_cli_html_report(tmp_path, digits):
    from html.parser import HTMLParser

    pytest.importorskip("matplotlib")
    calib, _, _ = digits
    np.savez(tmp_path / "calib.npz", input=calib)
    report = tmp_path / "r.html"
    code, stdout, err = xir(["quantize", str(DIGITS / "digits_cnn.onnx"), "--calib",
                             str(tmp_path / "calib.npz"), "-o", str(tmp_path / "q.xir"),
                             "--report", str(report)])
    assert (code, stdout, err) == (0, "", "")
    html = report.read_text()
    parser = HTMLParser()
    parser.feed(html)
    parser.close()
    _, expected = quantize_module(import_onnx(DIGITS / "digits_cnn.onnx"), {"input": calib})
    for layer in expected.layers:
        assert f"<td>{layer.name}</td>" in html and f"{layer.sqnr_db:.2f}" in html
    assert f"{expected.output_sqnr_db[0]:.2f} dB" in html and "<svg" in html


def test_cli_bad_calibration_file(tmp_path):
    np.savez(tmp_path / "calib.npz", image=np.zeros((100, 1, 8, 8), np.float32))
    code, _, err = xir(["quantize", str(DIGITS / "digits_cnn.onnx"), "--calib",
                        str(tmp_path / "calib.npz"), "-o", str(tmp_path / "q.xir")])
    assert code == 1
    assert err == ("xir quantize: error: calibration data has no input 'input' (it holds: "
                   "image)\n")


@pytest.mark.parametrize("dpu_rounding", [False, True])
def test_cli_onnx_export_runs_in_onnxruntime_like_the_integer_executor(tmp_path, digits,
                                                                       dpu_rounding):
    """By default the QDQ export rounds as the DPU does (bit-identical); with
    ``--onnx-rounding onnx`` it is plain QDQ, one LSB apart at ties."""
    import onnx
    import onnxruntime as ort

    calib, x, _ = digits
    np.savez(tmp_path / "calib.npz", input=calib)
    extra = [] if dpu_rounding else ["--onnx-rounding", "onnx"]
    code, _, err = xir(["quantize", str(DIGITS / "digits_cnn.onnx"), "--calib",
                        str(tmp_path / "calib.npz"), "-o", str(tmp_path / "q.xir"),
                        "--onnx", str(tmp_path / "q.onnx"), *extra])
    assert (code, err) == (0, "")
    model = onnx.load(tmp_path / "q.onnx")
    onnx.checker.check_model(model)
    ours = run_module(parse_file(tmp_path / "q.xir"), {"input": x})[0]
    theirs = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]
                                  ).run(None, {"input": x})[0]
    if dpu_rounding:
        assert np.array_equal(ours, theirs)
    else:  # ties round half to even in QuantizeLinear: the classes still agree
        assert np.mean(ours.argmax(1) == theirs.argmax(1)) >= 0.99
        assert not np.array_equal(ours, theirs)  # the flag does change the export


def parse_file(path):
    from xir.parser import parse

    return parse(Path(path).read_text(), str(path))


def test_a_fixed_batch_larger_than_the_samples_is_an_error():
    g = Graph(0)
    y = g.node("Relu", ["input"], name="relu")
    module = import_onnx(g.model({"input": [4, 3]}, [y]))
    with pytest.raises(XirError) as info, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantize_module(module, {"input": np.ones((3, 3), np.float32)})
    assert str(info.value) == ("error: calibration data holds 3 samples, fewer than the model's "
                               "fixed batch of 4")


def test_matmul_and_a_constant_add_become_one_dense():
    g = Graph(5)
    y = g.node("MatMul", ["x", g.weight((6, 4))], name="mm")
    y = g.node("Add", [y, g.weight((4,), 0.1)], name="bias")
    y = g.node("Relu", [y], name="relu")
    module = import_onnx(g.model({"x": ["N", 6]}, [y]))
    calib = np.random.default_rng(0).standard_normal((100, 6)).astype(np.float32)
    quantized, report = quantize_module(module, {"x": calib})
    dense = next(op for op in quantized.walk() if op.name == "quant.dense")
    assert len(dense.operands) == 3 and dense.param["activation"] == "relu"
    assert [layer.name for layer in report.layers] == ["mm"] and report.float_ops == []
    assert report.output_sqnr_db[0] > 25


def test_a_long_positive_dot_product_is_legalized():
    # 4096 positive products: the sum is ~2^12 times one product, so the calibrated fix points
    # give shift_cut > 16, and a bias of 100 wants shift_bias > 16
    g = Graph(7)
    w = g.rng.uniform(0, 0.02, (3, 4096)).astype(np.float32)
    y = g.node("Gemm", ["x", g.const(w), g.const(np.full(3, 100, np.float32))], name="fc",
               transB=1)
    module = import_onnx(g.model({"x": ["N", 4096]}, [y]))
    calib = np.random.default_rng(0).uniform(0, 1, (100, 4096)).astype(np.float32)
    quantized, report = quantize_module(module, {"x": calib})
    assert check_dpu_legal(quantized)
    fc = report.layer("fc")
    assert fc.weight_fp < constant_fp(w, "diffs")  # lowered by legalization
    assert fc.shifts["shift_cut"] <= 16 and fc.shifts["shift_bias"] <= 16
    assert fc.bias_fp == 0  # 100 at fix point 0 does not clip; raising it would
    assert report.output_sqnr_db[0] > 30


def test_standalone_activations():
    g = Graph(8)
    a = g.node("Conv", ["x", g.weight((3, 3, 1, 1))], name="ca")
    b = g.node("Conv", ["x", g.weight((3, 3, 1, 1))], name="cb")
    s = g.node("Add", [a, b], name="add")
    h = g.node("HardSigmoid", [s], name="hsig", alpha=1 / 6, beta=0.5)
    p = g.node("MaxPool", [a], name="pool", kernel_shape=[2, 2], strides=[2, 2])
    p = g.node("Clip", [p, g.const(np.float32(0)), g.const(np.float32(6))], name="relu6")
    c = g.node("Concat", [a, b], name="cat", axis=1)
    c = g.node("LeakyRelu", [c], name="leaky", alpha=0.1)
    module = import_onnx(g.model({"x": ["N", 3, 4, 4]}, [h, p, c]))
    calib = np.random.default_rng(0).standard_normal((100, 3, 4, 4)).astype(np.float32) * 3
    quantized, report = quantize_module(module, {"x": calib})
    assert check_dpu_legal(quantized)
    kinds = {layer.name: (layer.op, layer.output_fp) for layer in report.layers}
    assert kinds["hsig"] == ("quant.hard_sigmoid", 7)
    assert kinds["relu6"] == ("quant.relu6", L.RELU6_FP)
    assert kinds["leaky"][0] == "quant.leaky_relu"
    assert all(s > 20 for s in report.output_sqnr_db), report.output_sqnr_db


def test_the_inspectors_devices_follow_each_layer_into_the_quant_ops():
    """``inspect`` marks graph ops with ``xir.device``; each quant compute op takes its layer's
    mark (a standalone batch norm's goes to the depthwise conv it becomes), and the quantize /
    dequantize boundary ops take none: they are host glue."""
    from xir.passes.inspect import Inspect

    g = Graph(1)
    y = g.node("Conv", ["x", g.weight((8, 3, 3, 3)), g.weight((8,), 0.1)], name="c1",
               pads=[1, 1, 1, 1])
    y = g.node("Relu", [y], name="r1")
    y = g.node("BatchNormalization", [y, g.weight((8,), 1.0), g.weight((8,), 0.1),
                                      g.weight((8,), 0.1), g.const(np.ones(8, np.float32))],
               name="bn")
    y = g.node("Conv", [y, g.weight((4, 8, 17, 17))], name="big", pads=[8, 8, 8, 8])
    y = g.node("Softmax", [y], name="sm", axis=1)
    module = import_onnx(g.model({"x": [1, 3, 20, 20]}, [y]))
    Inspect(target="B512").run(module)
    calib = np.random.default_rng(0).random((8, 3, 20, 20), dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantized, _ = quantize_module(module, {"x": calib})
    marks = [(op.name, str(op.location), op.attributes.get("xir.device"))
             for op in quantized.walk() if op.name not in ("quant.constant", "graph.constant",
                                                           "func.func", "func.return",
                                                           "builtin.module")]
    assert [(name, loc, None if d is None else d.value) for name, loc, d in marks] == [
        ("quant.quantize", "None", None),
        ("quant.conv2d", 'loc("c1")', "DPU"),  # relu r1 fused
        ("quant.conv2d", 'loc("bn")', "DPU"),  # after the relu: a depthwise conv of its own
        ("quant.conv2d", 'loc("big")', "CPU"),  # a 17x17 kernel is beyond the DPU
        ("quant.dequantize", 'loc("sm")', None),
        ("graph.softmax", 'loc("sm")', "CPU")]
