"""PReLU and hard swish in the quant dialect: the executor against results computed by hand
(ties included), the verifier's fix-point rules, the QDQ export against onnxruntime, and
quantize_module on small ONNX models with PRelu, HardSwish and x · HardSigmoid(x).

Expected integers are written out with the arithmetic that gives them (docs/quant.md has the
formulas), never computed by the kernels under test.
"""

from __future__ import annotations

import numpy as np
import pytest

from test_onnx_import import Graph
from test_onnx_qdq import LEVELS, checked_export, compare, grid, one_op_module, ort_session, \
    weights
from test_quant_dialect import CONV_TYPES, i8, run, verify_error
from xir.frontends.onnx import export_qdq, import_onnx
from xir.interpreter import run_module
from xir.parser import parse
from xir.passes.quantize import quantize_module, sqnr_db
from xir.printer import print_ir
from xir.verifier import verify

# -- PReLU ---------------------------------------------------------------------------------------


def test_prelu_per_channel_rounds_the_negative_side_once_with_ties_up():
    # input_fp 2, slope_fp 3, output_fp 2: shift = 2 + 3 - 2 = 3, both sides on the grid 2^-5.
    # channel 0, slope 2 (0.25): -1·2 = -2 -> -2/8 = -0.25 -> 0; -2·2 = -4 -> -0.5 (a tie) -> 0;
    #   -6·2 = -12 -> -1.5 (a tie) -> -1; 5 -> 5·2^3 = 40 -> 5 (the positive side is exact).
    # channel 1, slope -3 (-0.375): -1·-3 = 3 -> 0.375 -> 0; -2·-3 = 6 -> 0.75 -> 1;
    #   -4·-3 = 12 -> 1.5 (a tie) -> 2; -128·-3 = 384 -> 48.
    x = i8([[-1, -2, -6, 5], [-1, -2, -4, -128]], (1, 2, 1, 4))
    slope = i8([2, -3], (2, 1, 1))
    y = run("prelu", [x, slope], (1, 2, 1, 4), {"input_fp": 2, "slope_fp": 3, "output_fp": 2})
    assert y.reshape(2, 4).tolist() == [[0, 0, -1, 5], [0, 1, 2, 48]]


def test_prelu_with_one_slope_and_the_clamp():
    # input_fp 2, slope_fp 3, output_fp 4: shift = 2 + 3 - 4 = 1.
    # 100 -> 800 / 2 = 400 -> 127; -128·-3 = 384 / 2 = 192 -> 127; -5·-3 = 15 / 2 = 7.5 -> 8;
    # 3 -> 24 / 2 = 12 (exact); 0 -> 0
    y = run("prelu", [i8([100, -128, -5, 3, 0]), i8([-3])], (5,),
            {"input_fp": 2, "slope_fp": 3, "output_fp": 4})
    assert y.tolist() == [127, 127, 8, 12, 0]


def test_leaky_relu_is_prelu_with_slope_26_at_fix_point_8():
    # leaky relu from fp 0 to fp 0: -5·26 = -130 / 256 = -0.51 -> -1; -4·26 = -104 -> -0.41 -> 0;
    # the same numbers as a prelu with slope 26 at slope_fp 8
    x = i8([-5, -4, 7])
    leaky = run("leaky_relu", [x], (3,), {"input_fp": 0, "output_fp": 0})
    prelu = run("prelu", [x, i8([26])], (3,), {"input_fp": 0, "slope_fp": 8, "output_fp": 0})
    assert leaky.tolist() == prelu.tolist() == [-1, 0, 7]


def test_prelu_rules():
    shapes = ([(1, 2, 1, 1), (2, 1, 1)], (1, 2, 1, 1))
    message = verify_error("prelu", *shapes, {"input_fp": 0, "slope_fp": 16, "output_fp": 0})
    assert message.endswith("op slope_fp = slope_fp = 16 is outside the DPU's range [0, 15]")
    message = verify_error("prelu", *shapes, {"input_fp": 20, "slope_fp": 4, "output_fp": 4})
    assert message.endswith("op shift = input_fp - output_fp = 16 is outside the DPU's range "
                            "[-15, 15]")
    message = verify_error("prelu", [(1, 2, 1, 1), (3, 1, 1)], (1, 2, 1, 1),
                           {"input_fp": 0, "slope_fp": 4, "output_fp": 0})
    assert "does not broadcast" in message


# -- hard swish ----------------------------------------------------------------------------------

# hsigmoid_in h = 4, output_fp 4: the inner hard sigmoid goes to fix point 7 with
# shift_hsigmoid = 14 + 4 - 7 = 11 and 3 · 2731 · 2^4 = 131088; shift_hswish = 4 + 7 - 4 = 7.
HSWISH_CASES = [
    # t,   s = clamp(DPU_ROUND((2731 t + 131088) / 2^11)),  out = DPU_ROUND(t · s / 2^7)
    (0, 0),       # s = 131088 / 2048 = 64.008 -> 64; 0
    (16, 11),     # x = 1: s = 174784 / 2048 = 85.34 -> 85; 1360 / 128 = 10.625 -> 11
    (-48, 0),     # x = -3: 2731 · -48 + 131088 = 0 -> s = 0
    (-64, 0),     # x = -4: the numerator is negative -> 0
    (-40, -3),    # x = -2.5: s = 21848 / 2048 = 10.67 -> 11; -440 / 128 = -3.44 -> -3
    (-36, -4),    # s = 32772 / 2048 = 16.002 -> 16; -576 / 128 = -4.5, a tie -> -4
    (-12, -4),    # s = 98316 / 2048 = 48.006 -> 48; -576 / 128 = -4.5, a tie -> -4
    (12, 8),      # s = 163860 / 2048 = 80.01 -> 80; 960 / 128 = 7.5, a tie -> 8
    (36, 32),     # s = 229404 / 2048 = 112.01 -> 112; 4032 / 128 = 31.5, a tie -> 32
    (48, 48),     # x = 3: s = 262176 / 2048 = 128.02 -> 128, clamped to 127; 6096 / 128 = 47.6
    (127, 126),   # s = 477925 / 2048 = 233.4 -> 127; 16129 / 128 = 126.008 -> 126 (not 127:
                  # the inner hard sigmoid is int8, so 1.0 is 127/128)
]


def test_standalone_hard_swish():
    t = [t for t, _ in HSWISH_CASES]
    y = run("hard_swish", [i8(t)], (len(t),), {"input_fp": 4, "output_fp": 4})
    assert y.tolist() == [out for _, out in HSWISH_CASES]


def test_fused_hard_swish_rounds_at_hsigmoid_in_without_clamping():
    # 1x1 conv, weight 4 at fp 1 (2.0), input_fp 3, hsigmoid_in 3: shift_cut = 3 + 1 - 3 = 1,
    # t = 4q / 2 = 2q, not clamped to int8. shift_hsigmoid = 14 + 3 - 7 = 10,
    # 3 · 2731 · 2^3 = 65544; output_fp 1: shift_hswish = 3 + 7 - 1 = 9.
    # q = 100: t = 200, s = (546200 + 65544) / 1024 = 597 -> 127; 200 · 127 / 512 = 49.6 -> 50
    #   (t clamped to 127 first would give 127 · 127 / 512 = 31.5 -> 32)
    # q = -10: t = -20, s = (-54620 + 65544) / 1024 = 10.67 -> 11; -220 / 512 = -0.43 -> 0
    # q = -13: t = -26, s = (-71006 + 65544) < 0 -> 0; 0
    # q = 5: t = 10, s = (27310 + 65544) / 1024 = 90.68 -> 91; 910 / 512 = 1.78 -> 2
    x = i8([100, -10, -13, 5], (1, 1, 1, 4))
    w = i8([4], (1, 1, 1, 1))
    y = run("conv2d", [x, w], (1, 1, 1, 4), {"input_fp": 3, "weight_fp": 1, "output_fp": 1,
                                             "activation": "hard_swish", "hsigmoid_in": 3})
    assert y.ravel().tolist() == [50, 0, 0, 2]


def test_fused_hard_swish_rounds_its_input_ties_up():
    # weight 1 at fp 1 (0.5), input_fp 3, hsigmoid_in 3, output_fp 3: shift_cut 1, t = q / 2;
    # shift_hswish = 3 + 7 - 3 = 7.
    # q = 5: t = 2.5 -> 3; s = (8193 + 65544) / 1024 = 72.009 -> 72; 216 / 128 = 1.69 -> 2
    # q = -5: t = -2.5 -> -2; s = (-5462 + 65544) / 1024 = 58.67 -> 59; -118 / 128 = -0.92 -> -1
    x = i8([5, -5, 0], (1, 1, 1, 3))
    y = run("conv2d", [x, i8([1], (1, 1, 1, 1))], (1, 1, 1, 3),
            {"input_fp": 3, "weight_fp": 1, "output_fp": 3, "activation": "hard_swish",
             "hsigmoid_in": 3})
    assert y.ravel().tolist() == [2, -1, 0]


def test_hard_swish_rules():
    message = verify_error("hard_swish", [(2,)], (2,), {"input_fp": 4, "output_fp": 12})
    assert message.endswith("op shift_hswish = hsigmoid_in + 7 - output_fp = -1 is outside the "
                            "DPU's range [0, 15]")
    message = verify_error("hard_swish", [(2,)], (2,), {"input_fp": -8, "output_fp": -8})
    assert message.endswith("op shift_hsigmoid = 14 + hsigmoid_in - 7 = -1 is outside the "
                            "DPU's range [0, 31]")
    fused = verify_error("conv2d", *CONV_TYPES, {"input_fp": 0, "weight_fp": 0, "output_fp": 0,
                                                 "activation": "hard_swish"})
    assert fused.endswith("op has a hard_swish activation but no 'hsigmoid_in'")
    # shift_cut is taken to hsigmoid_in: 8 + 8 - (-1) = 17
    cut = verify_error("conv2d", *CONV_TYPES, {"input_fp": 8, "weight_fp": 8, "output_fp": 0,
                                               "activation": "hard_swish", "hsigmoid_in": -1})
    assert cut.endswith("op shift_cut = input_fp + weight_fp - hsigmoid_in = 17 is outside the "
                        "DPU's range [0, 16]")


def test_text_round_trip():
    text = one_op_module("prelu", dict(input_fp=5, slope_fp=6, output_fp=5), [((1, 2, 2, 2), 5)],
                         (1, 2, 2, 2), 5, [(i8([3, -4], (2, 1, 1)), 6)])
    text += one_op_module("hard_swish", dict(input_fp=4, output_fp=4), [((3,), 4)], (3,), 4)
    for one in text.split("builtin.module")[1:]:
        module = parse("builtin.module" + one)
        verify(module)
        assert print_ir(parse(print_ir(module))) == print_ir(module)


# -- QDQ export ----------------------------------------------------------------------------------

X = (2, 4, 6, 6)
W3 = weights((5, 4, 3, 3), 1)
B5 = weights((5,), 2)
SLOPES = (weights((4, 1, 1), 7, -100, 100), 8)

QDQ_CASES = {
    "prelu": ("prelu", dict(input_fp=5, slope_fp=8, output_fp=5), [(X, 5)], X, 5, [SLOPES]),
    "prelu_one_slope": ("prelu", dict(input_fp=5, slope_fp=6, output_fp=6), [(X, 5)], X, 6,
                        [(i8([-21]), 6)]),
    "hard_swish": ("hard_swish", dict(input_fp=4, output_fp=4), [(X, 4)], X, 4, []),
    "hard_swish_to_fp_6": ("hard_swish", dict(input_fp=5, output_fp=6), [(X, 5)], X, 6, []),
    # the accumulator rounded at hsigmoid_in = 4 (shift_cut 7), then the hard swish to fp 3
    "conv_hard_swish": ("conv2d", dict(pads=[1, 1, 1, 1], input_fp=5, weight_fp=6, bias_fp=7,
                                       output_fp=3, activation="hard_swish", hsigmoid_in=4),
                        [(X, 5)], (2, 5, 6, 6), 3, [(W3, 6), (B5, 7)]),
    "dense_hard_swish": ("dense", dict(input_fp=5, weight_fp=7, bias_fp=9, output_fp=4,
                                       activation="hard_swish", hsigmoid_in=5),
                         [((3, 40), 5)], (3, 10), 4, [(weights((10, 40), 7), 7),
                                                      (weights((10,), 8), 9)]),
}


def _feeds(inputs):
    return {f"x{i}": grid(shape, fp, seed=10 + i, low=-80, high=80)
            for i, (shape, fp) in enumerate(inputs)}


@pytest.mark.parametrize("case", QDQ_CASES)
def test_qdq_agrees_with_the_executor_except_at_ties(case):
    op, attrs, inputs, out_shape, out_fp, consts = QDQ_CASES[case]
    compare(one_op_module(op, attrs, inputs, out_shape, out_fp, consts), _feeds(inputs), out_fp)


@pytest.mark.parametrize("case", QDQ_CASES)
def test_qdq_with_dpu_rounding_is_bit_exact(case):
    op, attrs, inputs, out_shape, out_fp, consts = QDQ_CASES[case]
    module, model = checked_export(one_op_module(op, attrs, inputs, out_shape, out_fp, consts),
                                   dpu_rounding=True)
    feeds = _feeds(inputs)
    (ours,) = run_module(module, feeds)
    for level in LEVELS:
        (theirs,) = ort_session(model, level).run(None, feeds)
        assert (theirs == ours).all()


def test_qdq_hard_swish_on_every_int8_input():
    text = one_op_module("hard_swish", dict(input_fp=4, output_fp=4), [((256,), 4)], (256,), 4)
    module, model = checked_export(text, dpu_rounding=True)
    feeds = {"x0": np.ldexp(np.arange(-128, 128, dtype=np.float32), -4).astype(np.float32)}
    (ours,) = run_module(module, feeds)
    for level in LEVELS:
        assert (ort_session(model, level).run(None, feeds)[0] == ours).all()


# -- quantize_module on ONNX models --------------------------------------------------------------


def _activations_model(seed: int):
    """conv → PRelu (per channel), conv → HardSwish (fused), conv → x · HardSigmoid(x) (fused
    as a hard swish), add → HardSwish (standalone), a PRelu with one slope, max pool →
    HardSigmoid(x) · x (a standalone hard swish), conv."""
    g = Graph(seed)
    y = g.node("Conv", ["x", g.weight((6, 3, 3, 3)), g.weight((6,), 0.1)], name="c1",
               pads=[1, 1, 1, 1])
    slopes = g.const(np.linspace(-0.2, 0.6, 6, dtype=np.float32).reshape(6, 1, 1))
    y = g.node("PRelu", [y, slopes], name="prelu1")
    a = g.node("Conv", [y, g.weight((6, 6, 3, 3)), g.weight((6,), 0.1)], name="c2",
               pads=[1, 1, 1, 1])
    a = g.node("HardSwish", [a], name="c2_hswish")
    b = g.node("Conv", [y, g.weight((6, 6, 1, 1)), g.weight((6,), 0.1)], name="c3")
    b = g.node("Mul", [b, g.node("HardSigmoid", [b], name="c3_hsig", alpha=1 / 6, beta=0.5)],
               name="c3_swish")
    s = g.node("Add", [a, b], name="sum")
    s = g.node("HardSwish", [s], name="sum_hswish")
    s = g.node("PRelu", [s, g.const(np.array([0.25], np.float32))], name="prelu2")
    s = g.node("MaxPool", [s], name="pool", kernel_shape=[2, 2], strides=[2, 2])
    s = g.node("Mul", [g.node("HardSigmoid", [s], name="pool_hsig", alpha=1 / 6, beta=0.5), s],
               name="pool_swish")
    s = g.node("Conv", [s, g.weight((4, 6, 3, 3)), g.weight((4,), 0.1)], name="c4",
               pads=[1, 1, 1, 1])
    return g.model({"x": ["N", 3, 8, 8]}, [s])


def _quantize(seed: int, **options):
    model = _activations_model(seed)
    module = import_onnx(model)
    rng = np.random.default_rng(seed)
    calib = rng.standard_normal((128, 3, 8, 8)).astype(np.float32)
    x = rng.standard_normal((32, 3, 8, 8)).astype(np.float32)
    quantized, report = quantize_module(module, {"x": calib}, **options)
    verify(quantized)
    (expected,) = run_module(module, {"x": x})
    (got,) = run_module(quantized, {"x": x})
    expected = expected.astype(np.float64)
    sqnr = sqnr_db(float(np.sum(expected ** 2)), float(np.sum((expected - got) ** 2)))
    return quantized, report, x, sqnr


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_prelu_and_hard_swish_models_quantize_close_to_float(seed):
    quantized, report, x, sqnr = _quantize(seed, bias_correction=False)
    ops = {layer.name: (layer.op, layer.activation) for layer in report.layers}
    assert ops["prelu1"] == ("quant.prelu", "prelu")
    assert ops["prelu2"] == ("quant.prelu", "prelu")
    assert ops["c2"] == ("quant.conv2d", "hard_swish")
    assert ops["c3"] == ("quant.conv2d", "hard_swish")  # x · HardSigmoid(x)
    assert ops["sum_hswish"] == ("quant.hard_swish", "hard_swish")
    assert ops["pool_hsig"] == ("quant.hard_swish", "hard_swish")  # HardSigmoid(x) · x
    assert report.float_ops == []
    assert not {op.name for op in quantized.walk()} & {"graph.prelu", "graph.hard_swish",
                                                       "graph.hard_sigmoid", "graph.mul"}
    print(f"seed {seed}: output SQNR {sqnr:.1f} dB")
    # measured: 28.4, 26.4, 22.2 dB (the same net with relu in place of each activation and
    # add in place of mul: 30.5, 28.2, 26.7 dB)
    assert sqnr > 20, sqnr
    # the QDQ export with DPU rounding runs in onnxruntime exactly as the executor does
    (ours,) = run_module(quantized, {"x": x})
    model = export_qdq(quantized, dpu_rounding=True)
    for level in LEVELS:
        (theirs,) = ort_session(model, level).run(None, {"x": x})
        assert (theirs == ours).all()


def test_bias_correction_keeps_hard_swish_layers_close_to_float():
    _, _, _, plain = _quantize(0, bias_correction=False)
    _, _, _, corrected = _quantize(0)
    # measured: 28.3 dB without; with, 17.8 dB while bias correction took a fused hard swish's
    # accumulator for its output
    assert corrected >= plain - 1.0


def test_prelu_with_slopes_along_other_axes_stays_float():
    g = Graph(4)
    y = g.node("Conv", ["x", g.weight((2, 2, 1, 1))], name="c")
    y = g.node("PRelu", [y, g.weight((2, 4, 4), 0.2)], name="per_pixel")
    module = import_onnx(g.model({"x": ["N", 2, 4, 4]}, [y]))
    calib = np.random.default_rng(0).standard_normal((100, 2, 4, 4)).astype(np.float32)
    quantized, report = quantize_module(module, {"x": calib})
    assert report.float_ops == ["per_pixel"]
    assert report.output_sqnr_db[0] > 30, report.output_sqnr_db
