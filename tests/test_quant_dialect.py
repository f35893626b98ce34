"""The quant dialect: its integer executor against results computed by hand, its verifier's
messages, and its text form.

Each expected integer is written out with the arithmetic that gives it, so a reader can check
the DPU's rules (reference/dpu.md §3) here without running anything.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from xir.diagnostics import XirError
from xir.dialects.graph import nn_kernels as graph_kernels
from xir.dialects.quant import kernels as K
from xir.interpreter import run_module
from xir.parser import parse
from xir.printer import print_ir
from xir.verifier import verify

# -- helpers -------------------------------------------------------------------------------------


def tensor_type(shape, element="i8") -> str:
    return "tensor<" + "".join(f"{d}x" for d in shape) + f"{element}>"


def attr_text(value) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(map(str, value)) + "]"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


def op_text(op: str, operands, result, attrs: dict) -> str:
    """A function holding one ``quant.<op>`` on its arguments; ``operands`` and ``result`` are
    shapes (i8) or (shape, element) pairs."""
    def typed(t):
        return tensor_type(*t) if len(t) == 2 and isinstance(t[1], str) else tensor_type(t)
    types = [typed(t) for t in operands]
    args = ", ".join(f"%a{i}: {t}" for i, t in enumerate(types))
    names = ", ".join(f"%a{i}" for i in range(len(types)))
    dictionary = ", ".join(f"{k} = {attr_text(v)}" for k, v in attrs.items())
    out = typed(result)
    return (f"func.func @f({args}) -> {out} {{\n"
            f"  %y = \"quant.{op}\"({names}) {{{dictionary}}} : ({', '.join(types)}) -> {out}\n"
            f"  \"func.return\"(%y) : ({out}) -> ()\n"
            f"}}\n")


def build(op: str, operands, result, attrs: dict):
    """The verified op parsed from text."""
    module = parse(op_text(op, operands, result, attrs), filename="q.xir")
    verify(module)
    return next(o for o in module.walk() if o.name == f"quant.{op}")


def run(op: str, inputs, result_shape, attrs: dict) -> np.ndarray:
    """``quant.<op>`` evaluated on int8 ``inputs``."""
    arrays = [np.asarray(x, dtype=np.int8) for x in inputs]
    (out,) = build(op, [a.shape for a in arrays], tuple(result_shape), attrs).evaluate(*arrays)
    assert out.dtype == np.int8
    return out


def verify_error(op: str, operands, result, attrs: dict) -> str:
    with pytest.raises(XirError) as e:
        build(op, operands, result, attrs)
    return str(e.value)


def i8(values, shape=None):
    a = np.array(values, dtype=np.int8)
    return a if shape is None else a.reshape(shape)


# -- rounding ------------------------------------------------------------------------------------

TIES = [-5, -3, -1, 1, 3, 5]  # / 2 = -2.5, -1.5, -0.5, 0.5, 1.5, 2.5


@pytest.mark.parametrize("mode, expected", [
    (K.DPU_ROUND, [-2, -1, 0, 1, 2, 3]),    # half toward +inf: floor(x + 0.5)
    (K.STD_ROUND, [-3, -2, -1, 1, 2, 3]),   # half away from zero
    (K.PY3_ROUND, [-2, -2, 0, 0, 2, 2]),    # half to even
])
def test_each_round_mode_breaks_ties_its_way(mode, expected):
    assert K.round_shift(TIES, 1, mode).tolist() == expected
    assert K.round_float(np.array(TIES) / 2, mode).tolist() == expected
    assert K.fix(np.array(TIES) / 4, 1, 8, mode).tolist() == expected  # x · 2^1 = the ties


def test_round_shift_on_negative_values_and_left_shifts():
    # -7 / 4 = -1.75 -> -2 in every mode; -6 / 4 = -1.5 is a tie; -5 / 4 = -1.25 -> -1
    assert K.round_shift([-7, -6, -5], 2, K.DPU_ROUND).tolist() == [-2, -1, -1]
    assert K.round_shift([-7, -6, -5], 2, K.STD_ROUND).tolist() == [-2, -2, -1]
    assert K.round_shift([-7, -6, -5], 2, K.PY3_ROUND).tolist() == [-2, -2, -1]
    # a negative shift multiplies: -3 · 2^2, and shift 0 is the identity
    assert K.round_shift([-3, 5], -2).tolist() == [-12, 20]
    assert K.round_shift([-3, 5], 0).tolist() == [-3, 5]
    # large accumulators stay exact: (2^40 + 2^15) / 2^16 = 2^24 + 0.5 -> 2^24 + 1
    assert K.round_shift([(1 << 40) + (1 << 15)], 16).tolist() == [(1 << 24) + 1]


def test_fix_clamps_to_the_bit_width():
    # 100 · 2 = 200 -> 127; -100 · 2 -> -128; 3 · 2^2 = 12 -> 7 in 4 bits; -0.3 · 2^3 = -2.4 -> -2
    assert K.fix([100.0, -100.0, -0.3], 1).tolist() == [127, -128, -1]
    assert K.fix([3.0, -3.0, -0.3], 2, bits=4).tolist() == [7, -8, -1]
    assert K.fix([-0.3], 3).tolist() == [-2]


def test_fix_rounds_just_below_a_half_down():
    # floor(x + 0.5) in floats would round 0.49999999999999994 + 0.5 to 1.0
    assert K.fix([0.49999999999999994], 0).tolist() == [0]


def test_quantize_then_dequantize_is_exact_on_the_grid():
    q = np.arange(-128, 128, dtype=np.int8)
    for fp in (-3, 0, 5, 12):
        values = q.astype(np.float64) * 2.0 ** -fp
        x = values.astype(np.float32)
        assert (x.astype(np.float64) == values).all()  # the grid is exact in float32
        (back,) = build("quantize", [((256,), "f32")], (256,), {"fix_point": fp}).evaluate(x)
        assert back.dtype == np.int8 and (back == q).all()
        (y,) = build("dequantize", [(256,)], ((256,), "f32"), {"fix_point": fp}).evaluate(back)
        assert y.dtype == np.float32 and (y == x).all()


def test_quantize_and_fix_take_a_round_mode():
    x = np.array([-2.5, -0.5, 0.5, 2.5], dtype=np.float32)
    shape = [((4,), "f32")]
    assert build("quantize", shape, (4,), {"fix_point": 0}).evaluate(x)[0].tolist() == [-3, -1, 1, 3]
    assert build("quantize", shape, (4,), {"fix_point": 0, "round_mode": "DPU_ROUND"}
                 ).evaluate(x)[0].tolist() == [-2, 0, 1, 3]
    # quant.fix: fp 1, 4 bits -> q in [-8, 7]: 2.5 · 2 = 5; 7.0 · 2 = 14 -> 7 -> 3.5
    fix = build("fix", [((3,), "f32")], ((3,), "f32"),
                {"fix_point": 1, "bit_width": 4, "round_mode": "PY3_ROUND"})
    assert fix.evaluate(np.array([2.5, 7.0, -0.25], np.float32))[0].tolist() == [2.5, 3.5, -0.0]


# -- convolution ---------------------------------------------------------------------------------

# A 1x1 convolution of two channels at two pixels: x = [[3, -4], [5, 6]] (channel, pixel) and
# w = [2, -1] give the accumulators 3·2 + 5·(-1) = 1 and (-4)·2 + 6·(-1) = -14.
X_1X1 = i8([3, -4, 5, 6], (1, 2, 1, 2))
W_1X1 = i8([2, -1], (1, 2, 1, 1))


def conv(x, w, b=None, **attrs):
    """``quant.conv2d`` (stride 1, no dilation) of int8 ``x`` and ``w`` (and bias ``b``)."""
    n, _, h, wd = x.shape
    top, left, bottom, right = attrs.get("pads", [0, 0, 0, 0])
    out = (n, w.shape[0], h + top + bottom - w.shape[2] + 1, wd + left + right - w.shape[3] + 1)
    return run("conv2d", [x, w] + ([b] if b is not None else []), out, attrs)


def test_conv_1x1_with_a_positive_bias_shift():
    # shift_cut = 2 + 3 - 3 = 2; shift_bias = 2 + 3 - 4 = 1, so the bias 3 adds 3 << 1 = 6:
    # (1 + 6) / 4 = 1.75 -> 2, (-14 + 6) / 4 = -2
    y = conv(X_1X1, W_1X1, i8([3]), input_fp=2, weight_fp=3, bias_fp=4, output_fp=3)
    assert y.ravel().tolist() == [2, -2]


def test_conv_1x1_with_a_negative_bias_shift():
    # shift_bias = 2 + 3 - 6 = -1: the accumulator moves up instead, (acc << 1) + 3, and the
    # total shift is shift_cut + 1 = 3: (2 + 3) / 8 = 0.625 -> 1, (-28 + 3) / 8 = -3.125 -> -3
    y = conv(X_1X1, W_1X1, i8([3]), input_fp=2, weight_fp=3, bias_fp=6, output_fp=3)
    assert y.ravel().tolist() == [1, -3]


def test_conv_rounds_ties_toward_plus_infinity():
    # w = [1, 0], x channel 0 = [3, -3]: shift_cut 1 gives 1.5 -> 2 and -1.5 -> -1
    x = i8([3, -3, 7, 7], (1, 2, 1, 2))
    y = conv(x, i8([1, 0], (1, 2, 1, 1)), input_fp=1, weight_fp=0, output_fp=0)
    assert y.ravel().tolist() == [2, -1]


GRID = i8(range(1, 10), (1, 1, 3, 3))  # 1..9; its 3x3 neighbourhood sums with padding 1 are
NEIGHBOURHOOD_SUMS = [12, 21, 16, 27, 45, 33, 24, 39, 28]


def test_conv_3x3_with_shift_cut_0_and_the_clamp():
    ones = np.ones((1, 1, 3, 3), np.int8)
    fps = dict(input_fp=0, weight_fp=0, output_fp=0, pads=[1, 1, 1, 1])
    assert conv(GRID, ones, **fps).ravel().tolist() == NEIGHBOURHOOD_SUMS
    # weights 5: 60, 105, 80, 135 -> 127, 225 -> 127, 165 -> 127, 120, 195 -> 127, 140 -> 127
    assert conv(GRID, ones * 5, **fps).ravel().tolist() == [60, 105, 80, 127, 127, 127, 120, 127, 127]
    # weights -5: -60, -105, -80, then -135 and below -> -128
    assert conv(GRID, ones * -5, **fps).ravel().tolist() == [-60, -105, -80, -128, -128, -128,
                                                             -120, -128, -128]


def test_conv_with_shift_cut_16():
    # shift_cut = 8 + 8 - 0 = 16. Four channels of -128 times weights ±64 accumulate ±32768
    # = ±2^15, which is ±0.5 after the shift: 0.5 -> 1, -0.5 -> 0; 4 · 127 · 127 = 64516
    # is 0.984 -> 1
    x = i8([-128] * 4 + [127] * 4, (2, 4, 1, 1))
    w = np.stack([np.full((4, 1, 1), -64), np.full((4, 1, 1), 64), np.full((4, 1, 1), 127)])
    y = conv(x, w.astype(np.int8), input_fp=8, weight_fp=8, output_fp=0)
    # batch 0 (x = -128): 32768 -> 1, -32768 -> 0, -65024 / 65536 = -0.992 -> -1
    # batch 1 (x = 127): -32512 / 65536 = -0.496 -> 0, 32512 -> 0.496 -> 0, 64516 -> 1
    assert y[:, :, 0, 0].tolist() == [[1, 0, -1], [0, 0, 1]]


def test_depthwise_conv_is_a_grouped_conv():
    # two channels, group 2: channel 0 uses w0 = 1s, channel 1 uses w1 = -1s (no padding)
    x = np.concatenate([GRID, GRID], axis=1)
    w = np.stack([np.ones((1, 3, 3)), -np.ones((1, 3, 3))]).astype(np.int8)
    # Σ 1..9 = 45; shift_cut 1: 22.5 -> 23, -22.5 -> -22
    y = conv(x, w, group=2, input_fp=1, weight_fp=0, output_fp=0)
    assert y.ravel().tolist() == [23, -22]


# -- activations ---------------------------------------------------------------------------------


def test_fused_relu_and_relu6():
    # accumulators 1 and -14 as above, shift_cut 0: relu -> [1, 0]
    relu = conv(X_1X1, W_1X1, input_fp=0, weight_fp=0, output_fp=0, activation="relu")
    assert relu.ravel().tolist() == [1, 0]
    # x · 40 (weights [40, 0]): 120, -160; relu6 at fp 4 clamps at 6 · 16 = 96; at fp 5 the bound
    # 192 is above the int8 clamp 127
    w = i8([40, 0], (1, 2, 1, 1))
    relu6 = dict(input_fp=0, weight_fp=0, activation="relu6")
    assert conv(X_1X1, w, output_fp=0, **relu6).ravel().tolist() == [6, 0]  # 6 · 2^0
    assert conv(X_1X1, w, **{**relu6, "input_fp": 4}, output_fp=4).ravel().tolist() == [96, 0]
    assert conv(X_1X1, w, **{**relu6, "input_fp": 5}, output_fp=5).ravel().tolist() == [120, 0]


def test_standalone_relu_and_relu6():
    # relu from fp 2 to fp 1 (shift 1): -3 -> 0, 3 -> 1.5 -> 2, 5 -> 2.5 -> 3
    assert run("relu", [i8([-3, 3, 5])], (3,), {"input_fp": 2, "output_fp": 1}).tolist() == [0, 2, 3]
    # relu6 at fp 4: bound 96
    y = run("relu6", [i8([-10, 50, 96, 100, 127])], (5,), {"input_fp": 4, "output_fp": 4})
    assert y.tolist() == [0, 50, 96, 96, 96]


def test_leaky_relu_is_26_over_256_with_ties_rounded_up():
    # -5 · 26 / 256 = -0.508 -> -1; -64 · 26 / 256 = -6.5 -> -6 (tie); -128 · 26 / 256 = -13;
    # -1 · 26 / 256 = -0.1 -> 0; positives pass: 10 · 256 / 256 = 10
    y = run("leaky_relu", [i8([-5, -64, -128, -1, 10])], (5,), {"input_fp": 0, "output_fp": 0})
    assert y.tolist() == [-1, -6, -13, 0, 10]
    # from fp 1 to fp 0, the shift grows by 1: -64 · 26 / 512 = -3.25 -> -3; 5 / 2 = 2.5 -> 3
    y = run("leaky_relu", [i8([-64, 5])], (2,), {"input_fp": 1, "output_fp": 0})
    assert y.tolist() == [-3, 3]


def test_fused_leaky_relu_works_on_the_accumulator():
    # accumulators 1 and -14 with shift_cut 1: 0.5 -> 1; -14 · 26 / 2^9 = -0.711 -> -1
    y = conv(X_1X1, W_1X1, input_fp=1, weight_fp=0, output_fp=0, activation="leaky_relu")
    assert y.ravel().tolist() == [1, -1]
    # one rounding, not two: acc -14 at shift 0 gives -14 · 26 / 256 = -1.42 -> -1, and -64 · 26
    # / 256 = -6.5 -> -6
    w = i8([0, 1], (1, 2, 1, 1))
    x = i8([0, 0, -14, -64], (1, 2, 1, 2))
    y = conv(x, w, input_fp=0, weight_fp=0, output_fp=0, activation="leaky_relu")
    assert y.ravel().tolist() == [-1, -6]


def test_standalone_hard_sigmoid():
    # input fp 4, output fp 7: shift_hsigmoid = 14 + 4 - 7 = 11, n = q · 2731 + 3 · 2731 · 16
    # = q · 2731 + 131088. x = 0: 131088 / 2048 = 64.0078 -> 64 (0.5); x = -3 (q -48): 0;
    # x = 3 (q 48): 262176 / 2048 = 128.02 -> 127; x = -4 (q -64): negative -> 0;
    # x = 1 (q 16): 174784 / 2048 = 85.34 -> 85; x = -1 (q -16): 87392 / 2048 = 42.67 -> 43
    y = run("hard_sigmoid", [i8([0, -48, 48, -64, 16, -16])], (6,), {"input_fp": 4, "output_fp": 7})
    assert y.tolist() == [64, 0, 127, 0, 85, 43]


def test_fused_hard_sigmoid_rounds_at_hsigmoid_in_first():
    # 1x1 conv, weight 1, input fp 1, hsigmoid_in 0: shift_cut = 1 + 0 - 0 = 1, so q = 3 (1.5)
    # becomes t = 2 first; then shift_hsigmoid = 14 + 0 - 7 = 7: (2 · 2731 + 8193) / 128 =
    # 13655 / 128 = 106.68 -> 107. q = 0: 8193 / 128 = 64.0 -> 64; q = -7 (-3.5 -> t = -3): 0
    x = i8([3, 0, -7], (1, 1, 1, 3))
    y = conv(x, i8([1], (1, 1, 1, 1)), input_fp=1, weight_fp=0, output_fp=7, hsigmoid_in=0,
             activation="hard_sigmoid")
    assert y.ravel().tolist() == [107, 64, 0]


# -- pooling -------------------------------------------------------------------------------------


def test_avg_pool_multipliers():
    assert K.avg_pool_factor(3, 3) == (7, 6)      # 7/64 for 1/9
    assert K.avg_pool_factor(5, 5) == (10, 8)     # 10/256 for 1/25
    assert K.avg_pool_factor(6, 6) == (7, 8)      # 7/256 for 1/36
    assert K.avg_pool_factor(7, 7) == (21, 10)    # 21/1024 for 1/49
    assert K.avg_pool_factor(14, 14) == (21, 12)  # 21/4096 for 1/196
    assert K.avg_pool_factor(2, 2) == (1, 2)      # powers of two are exact
    assert K.avg_pool_factor(4, 4) == (1, 4)
    assert K.avg_pool_factor(1, 1) == (1, 0)
    # 1/100: s = 12 gives round(40.96) = 41, |41/4096 - 1/100| = 9.77e-6; s = 13 gives 82/8192,
    # the same distance, and the smaller s wins
    assert K.avg_pool_factor(10, 10) == (41, 12)


def test_avg_pool_3x3_uses_7_over_64():
    attrs = {"kernel_shape": [3, 3], "fix_point": 2}
    # sum 32: 32 · 7 / 64 = 3.5 -> 4 (a tie, up); sum -32 -> -3.5 -> -3; sum 81 (all 9):
    # 567 / 64 = 8.86 -> 9; sum 10: 70 / 64 = 1.09 -> 1
    windows = [[4] * 8 + [0], [-4] * 8 + [0], [9] * 9, [2] + [1] * 8]
    x = i8(windows, (1, 4, 3, 3))
    assert run("avg_pool2d", [x], (1, 4, 1, 1), attrs).ravel().tolist() == [4, -3, 9, 1]


def test_avg_pool_2x2_divides_by_4_exactly():
    # [[1, 2], [3, 4]]: 10 / 4 = 2.5 -> 3; negated: -2.5 -> -2; stride 2 over a 2x4 input
    x = i8([1, 2, -1, -2, 3, 4, -3, -4], (1, 1, 2, 4))
    attrs = {"kernel_shape": [2, 2], "strides": [2, 2], "fix_point": 0}
    assert run("avg_pool2d", [x], (1, 1, 1, 2), attrs).ravel().tolist() == [3, -2]


def test_global_avg_pool_7x7_uses_21_over_1024():
    # 49 ones: 49 · 21 / 1024 = 1.005 -> 1; 49 · 100: 4900 · 21 / 1024 = 100.49 -> 100
    x = np.stack([np.ones((7, 7)), np.full((7, 7), 100)]).astype(np.int8)[None]
    y = run("global_avg_pool", [x], (1, 2, 1, 1), {"fix_point": 3})
    assert y.ravel().tolist() == [1, 100]


def test_max_pool_keeps_integers_and_ignores_padding():
    x = i8([-5, -7, -2, -9], (1, 1, 2, 2))
    attrs = {"kernel_shape": [2, 2], "pads": [1, 1, 0, 0], "fix_point": 0}
    # windows (with top/left padding): [-5], [-5, -7], [-5, -2], all four
    assert run("max_pool2d", [x], (1, 1, 2, 2), attrs).ravel().tolist() == [-5, -5, -2, -2]


# -- eltwise -------------------------------------------------------------------------------------


def add(a, b, fps, fo, activation="none"):
    attrs = {"input_fps": list(fps), "output_fp": fo, "activation": activation}
    return run("add", [i8(a), i8(b)], (len(a),), attrs).tolist()


def test_add_aligns_inputs_of_different_fix_points():
    # fa = 3, fb = 1, fo = 1: shift_read = (2, 0), shift_write = 0, total shift 0 + 2.
    # a = 13 (1.625): (13 << 2) >> 2 = 13; b = 3 (1.5): 12; (13 + 12) / 4 = 6.25 -> 6
    # a = -13: -13 + 12 = -1 -> -0.25 -> 0;  a = 7, b = 0: 7 / 4 = 1.75 -> 2
    # a = -6, b = 0: (-24) >> 2 = -6 -> -1.5 -> -1 (tie, up)
    assert add([13, -13, 7, -6], [3, 3, 0, 0], (3, 1), 1) == [6, 0, 2, -1]


def test_add_floors_what_shift_read_drops():
    # fa = 5, fb = 1, fo = 1: shift_read a = 4. a = -10: (-40) >> 4 = -3 (floor of -2.5);
    # b = 1: 4; (-3 + 4) / 4 = 0.25 -> 0. a = 10: 40 >> 4 = 2; (2 + 4) / 4 = 1.5 -> 2
    assert add([-10, 10], [1, 1], (5, 1), 1) == [0, 2]


def test_add_with_a_left_shift_write_and_relu():
    # fa = fb = 2, fo = 4: shift_write = -2: (3 + 2) · 4 = 20 (1.25 at fp 4); -3 + 2 -> relu 0
    assert add([3, -3], [2, 2], (2, 2), 4, "relu") == [20, 0]


def test_mul_shifts_by_the_sum_of_fix_points():
    # fa = fb = fo = 4: shift_write = 4. 24 · -20 / 16 = -30 (1.5 · -1.25 = -1.875);
    # 3 · 8 / 16 = 1.5 -> 2; -3 · 8 / 16 = -1.5 -> -1; 127 · 127 / 16 = 1008 -> 127
    attrs = {"input_fps": [4, 4], "output_fp": 4}
    y = run("mul", [i8([24, 3, -3, 127]), i8([-20, 8, 8, 127])], (4,), attrs)
    assert y.tolist() == [-30, 2, -1, 127]


def test_mul_broadcasts_like_numpy():
    # an SE block's scale (1, 2, 1, 1) times features (1, 2, 1, 2), fps 0: plain products
    attrs = {"input_fps": [0, 0], "output_fp": 0}
    y = run("mul", [i8([2, -3], (1, 2, 1, 1)), i8([1, 2, 3, 4], (1, 2, 1, 2))], (1, 2, 1, 2), attrs)
    assert y.ravel().tolist() == [2, 4, -9, -12]


# -- data movement -------------------------------------------------------------------------------


def test_concat_reshape_flatten_pad_resize():
    a, b = i8([1, 2], (1, 1, 1, 2)), i8([3, 4], (1, 1, 1, 2))
    y = run("concat", [a, b], (1, 2, 1, 2), {"axis": 1, "input_fps": [3, 3], "output_fp": 3})
    assert y.ravel().tolist() == [1, 2, 3, 4]
    assert run("reshape", [y], (2, 2), {"shape": [2, -1], "fix_point": 3}).tolist() == [[1, 2], [3, 4]]
    assert run("flatten", [y], (1, 4), {"fix_point": 3}).tolist() == [[1, 2, 3, 4]]
    padded = run("pad", [a], (1, 1, 1, 4), {"pads": [0, 0, 0, 1, 0, 0, 0, 1], "fix_point": 3})
    assert padded.ravel().tolist() == [0, 1, 2, 0]
    up = run("resize", [a], (1, 1, 2, 4), {"scales": [2, 2], "fix_point": 3})
    assert up[0, 0].tolist() == [[1, 1, 2, 2], [1, 1, 2, 2]]


def test_transposed_conv_and_dense():
    # transposed 2x2 stride 2 of a 1x1 input 3 with weights [[1, 2], [3, 4]] (fps 0): 3 · w
    w = i8([1, 2, 3, 4], (1, 1, 2, 2))
    y = run("conv_transpose2d", [i8([3], (1, 1, 1, 1)), w], (1, 1, 2, 2),
            {"strides": [2, 2], "input_fp": 0, "weight_fp": 0, "output_fp": 0})
    assert y.ravel().tolist() == [3, 6, 9, 12]
    # dense: x (1, 3) = [1, 2, 3] times w [[1, 1, 1], [2, 0, -1]] gives [6, -1] at fp 1 + 0;
    # shift_bias = 1 + 0 - 1 = 0 adds the bias [1, 1] as is, shift_cut = 1 + 0 - 0 = 1:
    # (6 + 1) / 2 = 3.5 -> 4; (-1 + 1) / 2 = 0
    y = run("dense", [i8([[1, 2, 3]]), i8([[1, 1, 1], [2, 0, -1]]), i8([1, 1])], (1, 2),
            {"input_fp": 1, "weight_fp": 0, "bias_fp": 1, "output_fp": 0})
    assert y.tolist() == [[4, 0]]


@pytest.mark.parametrize("strides, pads, dilations, group, output_padding", [
    ((1, 1), (1, 1, 1, 1), (1, 1), 1, (0, 0)),
    ((2, 2), (0, 1, 1, 0), (1, 1), 2, (1, 0)),
    ((1, 2), (2, 0, 1, 1), (2, 1), 4, (0, 1)),
])
def test_integer_accumulators_match_the_graph_kernels(strides, pads, dilations, group,
                                                      output_padding):
    # small integers keep the graph dialect's float32 kernels exact
    rng = np.random.default_rng(group)
    x = rng.integers(-8, 8, (2, 4, 6, 5))
    w = rng.integers(-8, 8, (4, 4 // group, 3, 2))
    acc = K.conv2d_acc(x, w, strides, pads, dilations, group)
    expected = graph_kernels.conv2d(x.astype(np.float32), w.astype(np.float32), None, strides,
                                    pads, dilations, group)
    assert acc.dtype == np.int64 and (acc == expected).all()
    acc = K.conv_transpose2d_acc(x, w, strides, pads, dilations, group, output_padding)
    expected = graph_kernels.conv_transpose2d(x.astype(np.float32), w.astype(np.float32), None,
                                              strides, pads, dilations, group, output_padding)
    assert acc.dtype == np.int64 and (acc == expected).all()


# -- against the real-valued definition ----------------------------------------------------------


def _real_conv_reference(x, w, b, fi, fw, fb, fo, activation):
    """DPU-round of the exact real value (Fractions), one rounding, then the clamp."""
    n, c, h, wd = x.shape
    m = w.shape[0]
    out = np.zeros((n, m, h, wd), dtype=np.int64)
    for idx in np.ndindex(n, m, h, wd):
        i, o, r, s = idx
        total = Fraction(0)
        for ci, dr, ds in np.ndindex(c, 3, 3):
            rr, ss = r + dr - 1, s + ds - 1
            if 0 <= rr < h and 0 <= ss < wd:
                total += Fraction(int(x[i, ci, rr, ss]) * int(w[o, ci, dr, ds]), 2 ** (fi + fw))
        total += Fraction(int(b[o]), 2 ** fb) if fb >= 0 else int(b[o]) * 2 ** -fb
        if activation == "relu":
            total = max(total, Fraction(0))
        elif activation == "leaky_relu" and total < 0:
            total *= Fraction(26, 256)
        scaled = total * Fraction(2) ** fo
        out[idx] = min(max(int(np.floor(scaled + Fraction(1, 2))), -128), 127)
    return out


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("activation", ["none", "relu", "leaky_relu"])
def test_conv_equals_one_dpu_rounding_of_the_exact_value(seed, activation):
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, (1, 3, 4, 4)).astype(np.int8)
    w = rng.integers(-128, 128, (2, 3, 3, 3)).astype(np.int8)
    b = rng.integers(-128, 128, (2,)).astype(np.int8)
    fi, fw = int(rng.integers(0, 8)), int(rng.integers(0, 8))
    fo = fi + fw - int(rng.integers(6, 17))  # shift_cut in [6, 16]
    fb = fi + fw - int(rng.integers(fi + fw - fo - 16, 17))  # shift_bias in range
    y = conv(x, w, b, pads=[1, 1, 1, 1], input_fp=fi, weight_fp=fw, bias_fp=fb, output_fp=fo,
             activation=activation)
    assert (y == _real_conv_reference(x, w, b, fi, fw, fb, fo, activation)).all()


# -- verifier ------------------------------------------------------------------------------------

CONV_TYPES = ([(1, 2, 1, 2), (1, 2, 1, 1)], (1, 1, 1, 2))


def test_shift_cut_out_of_range():
    message = verify_error("conv2d", *CONV_TYPES, {"input_fp": 8, "weight_fp": 8, "output_fp": -1})
    assert message == ("q.xir:2:3: error: 'quant.conv2d' op shift_cut = input_fp + weight_fp - "
                       "output_fp = 17 is outside the DPU's range [0, 16]")
    message = verify_error("conv2d", *CONV_TYPES, {"input_fp": 2, "weight_fp": 2, "output_fp": 5})
    assert message.endswith("shift_cut = input_fp + weight_fp - output_fp = -1 is outside the "
                            "DPU's range [0, 16]")


def test_shift_bias_out_of_range_depends_on_shift_cut():
    types = ([(1, 2, 1, 2), (1, 2, 1, 1), (1,)], (1, 1, 1, 2))
    attrs = {"input_fp": 4, "weight_fp": 4, "output_fp": 6}  # shift_cut 2: shift_bias >= -14
    message = verify_error("conv2d", *types, {**attrs, "bias_fp": 23})
    assert message.endswith("'quant.conv2d' op shift_bias = input_fp + weight_fp - bias_fp = -15 "
                            "is outside the DPU's range [-14, 16]")
    build("conv2d", *types, {**attrs, "bias_fp": 22})
    message = verify_error("conv2d", *types, {**attrs, "bias_fp": -9})
    assert message.endswith("shift_bias = input_fp + weight_fp - bias_fp = 17 is outside the "
                            "DPU's range [-14, 16]")
    assert verify_error("conv2d", *types, attrs).endswith("op has a bias but no 'bias_fp'")


def test_eltwise_shift_ranges():
    message = verify_error("add", [(2,), (2,)], (2,), {"input_fps": [20, 4], "output_fp": 4})
    assert message.endswith("'quant.add' op shift_read #0 = input_fps[k] - min(input_fps) = 16 "
                            "is outside the DPU's range [0, 15]")
    message = verify_error("add", [(2,), (2,)], (2,), {"input_fps": [20, 20], "output_fp": 4})
    assert message.endswith("shift_write = min(input_fps) - output_fp = 16 is outside the DPU's "
                            "range [-15, 15]")


def test_concat_inputs_must_share_the_output_fix_point():
    message = verify_error("concat", [(1, 1, 1, 2), (1, 1, 1, 2)], (1, 2, 1, 2),
                           {"axis": 1, "input_fps": [3, 4], "output_fp": 3})
    assert message == ("q.xir:2:3: error: 'quant.concat' op input #1 has fix point 4, but concat "
                       "needs every input at the output's fix point 3")


def test_activation_rules():
    relu6 = verify_error("relu6", [(2,)], (2,), {"input_fp": -2, "output_fp": -2})
    assert relu6.endswith("op relu6 needs output_fp >= -1 (6 · 2^fp must be an integer), but "
                          "output_fp = -2")
    hsig = verify_error("hard_sigmoid", [(2,)], (2,), {"input_fp": 4, "output_fp": 6})
    assert hsig.endswith("op hard_sigmoid needs output_fp >= 7, but output_fp = 6")
    fused = verify_error("conv2d", *CONV_TYPES, {"input_fp": 0, "weight_fp": 0, "output_fp": 7,
                                                 "activation": "hard_sigmoid"})
    assert fused.endswith("op has a hard_sigmoid activation but no 'hsigmoid_in'")


def test_types_and_attribute_names_are_checked():
    message = verify_error("relu", [((2,), "i32")], ((2,), "i32"), {"input_fp": 0, "output_fp": 0})
    assert message.endswith("'quant.relu' op operand 'input' must be tensor of i8, but got "
                            "'tensor<2xi32>'")
    message = verify_error("relu", [(2,)], (2,), {"input_fp": 0, "output_fp": 0, "fixpoint": 1})
    assert message.endswith("op has no attribute 'fixpoint'")


def test_an_operand_is_read_at_the_fix_point_it_was_written_at():
    text = '''
func.func @f(%x: tensor<4xi8>) -> tensor<4xi8> {
  %a = "quant.relu"(%x) {input_fp = 3, output_fp = 2} : (tensor<4xi8>) -> tensor<4xi8>
  %b = "quant.relu"(%a) {input_fp = 3, output_fp = 3} : (tensor<4xi8>) -> tensor<4xi8>
  "func.return"(%b) : (tensor<4xi8>) -> ()
}
'''
    with pytest.raises(XirError) as e:
        verify(parse(text, filename="m.xir"))
    assert str(e.value) == ("m.xir:4:3: error: 'quant.relu' op reads operand #0 at fix point 3, "
                            "but 'quant.relu' writes it at fix point 2")


def test_fused_activation_attributes_go_together():
    attrs = {"input_fp": 0, "weight_fp": 0, "output_fp": 0, "hsigmoid_in": 0}
    assert verify_error("conv2d", *CONV_TYPES, attrs).endswith(
        "op has 'hsigmoid_in' but its activation is not hard_sigmoid")
    attrs = {"input_fp": 0, "weight_fp": 0, "output_fp": 0, "bias_fp": 0}
    assert verify_error("conv2d", *CONV_TYPES, attrs).endswith("op has 'bias_fp' but no bias")


def test_dense_shapes():
    message = verify_error("dense", [(1, 3), (2, 4)], (1, 2),
                           {"input_fp": 0, "weight_fp": 0, "output_fp": 0})
    assert message.endswith("'quant.dense' op input has 3 features but the weight expects 4")


def test_constant_from_a_resource():
    text = """func.func @f() -> tensor<4xi8> {
  %c = "quant.constant"() {value = dense_resource<w0> : tensor<4xi8>, fix_point = 7} : () -> tensor<4xi8>
  "func.return"(%c) : (tensor<4xi8>) -> ()
}
{-#
  dialect_resources: { builtin: { w0: "0x0100000001FF7F80" } }
#-}"""
    module = parse(text)
    verify(module)
    (w,) = run_module(module, {}, entry="f")
    assert w.dtype == np.int8 and w.tolist() == [1, -1, 127, -128]


# -- text ----------------------------------------------------------------------------------------

MODULE = '''builtin.module {
  func.func @main(%x: tensor<1x2x4x4xf32>) -> tensor<1x4x2x2xf32> {
    %q = "quant.quantize"(%x) {fix_point = 5} : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xi8>
    %w = "quant.constant"() {value = dense<[[[[1]], [[-2]]], [[[3]], [[4]]]]> : tensor<2x2x1x1xi8>, fix_point = 6} : () -> tensor<2x2x1x1xi8>
    %b = "quant.constant"() {value = dense<[7, -7]> : tensor<2xi8>, fix_point = 8} : () -> tensor<2xi8>
    %c = "quant.conv2d"(%q, %w, %b) {input_fp = 5, weight_fp = 6, bias_fp = 8, output_fp = 4, activation = "relu"} : (tensor<1x2x4x4xi8>, tensor<2x2x1x1xi8>, tensor<2xi8>) -> tensor<1x2x4x4xi8> loc("conv1")
    %s = "quant.add"(%c, %q) {input_fps = [4, 5], output_fp = 4} : (tensor<1x2x4x4xi8>, tensor<1x2x4x4xi8>) -> tensor<1x2x4x4xi8>
    %k = "quant.concat"(%c, %s) {axis = 1, input_fps = [4, 4], output_fp = 4} : (tensor<1x2x4x4xi8>, tensor<1x2x4x4xi8>) -> tensor<1x4x4x4xi8>
    %p = "quant.max_pool2d"(%k) {kernel_shape = [2, 2], strides = [2, 2], fix_point = 4} : (tensor<1x4x4x4xi8>) -> tensor<1x4x2x2xi8>
    %y = "quant.dequantize"(%p) {fix_point = 4} : (tensor<1x4x2x2xi8>) -> tensor<1x4x2x2xf32>
    "func.return"(%y) : (tensor<1x4x2x2xf32>) -> ()
  }
}
'''


def test_text_round_trip_and_run():
    module = parse(MODULE)
    verify(module)
    assert print_ir(module) == MODULE
    assert print_ir(parse(print_ir(module))) == MODULE
    x = np.random.default_rng(1).uniform(-3, 3, (1, 2, 4, 4)).astype(np.float32)
    (y,) = run_module(module, {"x": x})
    assert y.shape == (1, 4, 2, 2) and y.dtype == np.float32
    assert (y >= 0).all() and (y * 16 == np.round(y * 16)).all()  # relu'd, on the fp-4 grid
