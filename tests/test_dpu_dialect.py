"""The dpu dialect (dialects/dpu): each op's evaluate against hand-computed NHWC numbers and
against the quant op it stands for, the verifier's messages for shifts out of range or out of
step with the fix points, the layout folds, and a printer/parser round trip."""

from __future__ import annotations

import numpy as np
import pytest

from xir import attributes as A
from xir.diagnostics import XirError
from xir.dialects.dpu.base import to_nchw_array, to_nhwc_array
from xir.dialects.dpu.nn import Conv2dFixOp, DepthwiseConv2dFixOp, TransposedConv2dFixOp
from xir.dialects.graph.base import ints_attr
from xir.dialects.quant import kernels as K
from xir.interpreter import run_module
from xir.ir import Operation
from xir.parser import parse
from xir.passes.canonicalize import Canonicalize
from xir.printer import print_ir
from xir.verifier import verify


def run_op(op_text: str, inputs: dict, arg_types: str, result_type: str):
    """Run one op (its generic text, reading %a, %b, ...) on ``inputs`` (int8 arrays)."""
    args = ", ".join(f"%{name}: {t}" for name, t in zip(inputs, arg_types.split(";")))
    text = (f"func.func @main({args}) -> {result_type} {{\n  %y = {op_text}\n"
            f"  \"func.return\"(%y) : ({result_type}) -> ()\n}}\n")
    module = parse(text)
    verify(module)
    return run_module(module, {k: np.asarray(v, np.int8) for k, v in inputs.items()})[0]


# -- evaluate: hand-computed -----------------------------------------------------------------------

CONV_1x1 = ('"dpu.conv2d_fix"(%x, %w, %b) {kernel = [1, 1], nonlinear = "leaky_relu", '
            'input_fp = 2, weight_fp = 3, bias_fp = 4, output_fp = 3, shift_cut = 2, '
            'shift_bias = 1} : (tensor<1x1x2x2xi8>, tensor<1x1x1x2xi8>, tensor<1xi8>) -> '
            'tensor<1x1x2x1xi8>')


def test_conv_with_bias_and_leaky_relu_by_hand():
    # Two pixels, two channels (NHWC): x = [[3, 5], [-4, 6]], weight OHWI [2, -1], bias 3 at
    # fp 4. acc = [3·2 - 5, -4·2 - 6] = [1, -14]; shift_bias 1 adds 3 << 1: num = [7, -8];
    # shift_cut 2 with the leaky relu: 7·256 / 2^10 = 1.75 -> 2, -8·26 / 2^10 = -0.203 -> 0.
    y = run_op(CONV_1x1, {"x": [[[[3, 5], [-4, 6]]]], "w": [[[[2, -1]]]], "b": [3]},
               "tensor<1x1x2x2xi8>;tensor<1x1x1x2xi8>;tensor<1xi8>", "tensor<1x1x2x1xi8>")
    assert y.tolist() == [[[[2], [0]]]]


def test_conv_2x2_window_by_hand():
    # x (H×W, one channel) = 1..9, weight [[1, 2], [3, 4]]: the four windows sum to 37, 47, 67,
    # 77; shift_cut = 2 + 1 - 1 = 2 rounds half up: 9.25 -> 9, 11.75 -> 12, 16.75 -> 17,
    # 19.25 -> 19.
    op = ('"dpu.conv2d_fix"(%x, %w) {kernel = [2, 2], input_fp = 2, weight_fp = 1, '
          'output_fp = 1, shift_cut = 2} : (tensor<1x3x3x1xi8>, tensor<1x2x2x1xi8>) -> '
          'tensor<1x2x2x1xi8>')
    x = np.arange(1, 10).reshape(1, 3, 3, 1)
    w = np.array([[1, 2], [3, 4]]).reshape(1, 2, 2, 1)
    y = run_op(op, {"x": x, "w": w}, "tensor<1x3x3x1xi8>;tensor<1x2x2x1xi8>",
               "tensor<1x2x2x1xi8>")
    assert y[0, :, :, 0].tolist() == [[9, 12], [17, 19]]


@pytest.mark.parametrize("kind, nonlinear, shifts, expected", [
    # add: a at fp 2, b at fp 4, out at fp 3: shift_read [0, 2], shift_write -1.
    # (5 << 2) + ((7 << 2) >> 2) = 27 -> 27 / 2^1 = 13.5 -> 14 (1.25 + 0.4375 = 1.6875 = 13.5/8);
    # (-3 << 2) + ((1 << 2) >> 2) = -11 -> -5.5 -> -5 (half toward +inf).
    ("add", "none", "shift_read = [0, 2], shift_write = -1", [14, -5]),
    ("add", "relu", "shift_read = [0, 2], shift_write = -1", [14, 0]),
    # mul: shift_write = 2 + 4 - 3 = 3: 35 / 8 = 4.375 -> 4, -3 / 8 -> 0.
    ("mul", "none", "shift_read = [0, 0], shift_write = 3", [4, 0]),
    ("mul", "leaky_relu", "shift_read = [0, 0], shift_write = 3", [4, 0]),
])
def test_eltwise_by_hand(kind, nonlinear, shifts, expected):
    t = "tensor<1x1x1x2xi8>"
    op = (f'"dpu.eltwise_fix"(%a, %b) {{type = "{kind}", nonlinear = "{nonlinear}", '
          f'input_fps = [2, 4], output_fp = 3, {shifts}}} : ({t}, {t}) -> {t}')
    y = run_op(op, {"a": [[[[5, -3]]]], "b": [[[[7, 1]]]]}, f"{t};{t}", t)
    assert y.ravel().tolist() == expected


def test_pool_and_upsample_by_hand():
    t = "tensor<1x2x2x2xi8>"
    x = np.array([[[[1, -8], [3, -4]], [[-5, -2], [7, -6]]]])  # NHWC: channel 0 = [[1, 3], [-5, 7]]
    op = (f'"dpu.pool_fix"(%x) {{type = "max", kernel = [2, 2], fix_point = 0}} : ({t}) -> '
          f'tensor<1x1x1x2xi8>')
    assert run_op(op, {"x": x}, t, "tensor<1x1x1x2xi8>").ravel().tolist() == [7, -2]
    # avg 2×2: the sums 6 and -20 times 1 / 2^2: 1.5 -> 2, -5.
    op = (f'"dpu.pool_fix"(%x) {{type = "avg", kernel = [2, 2], fix_point = 0, multi_factor = 1, '
          f'shift_factor = 2}} : ({t}) -> tensor<1x1x1x2xi8>')
    assert run_op(op, {"x": x}, t, "tensor<1x1x1x2xi8>").ravel().tolist() == [2, -5]
    op = f'"dpu.upsample_fix"(%x) {{scale = [1, 2], fix_point = 0}} : ({t}) -> tensor<1x2x4x2xi8>'
    y = run_op(op, {"x": x}, t, "tensor<1x2x4x2xi8>")
    assert y[0, 0, :, 0].tolist() == [1, 1, 3, 3]


# -- evaluate: the quant op's integers, in NHWC ----------------------------------------------------


def _random_int8(rng, shape):
    return rng.integers(-128, 128, shape).astype(np.int8)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("nonlinear", K.ACTIVATIONS)
def test_convolutions_compute_the_quant_kernels_in_nhwc(seed, nonlinear):
    rng = np.random.default_rng(seed)
    x = _random_int8(rng, (2, 3, 7, 6))  # NCHW
    h = 3 if nonlinear in ("hard_sigmoid", "hard_swish") else None
    o = 7 if nonlinear in ("hard_sigmoid", "hard_swish") else 3
    window = dict(strides=(2, 1), pads=(1, 0, 2, 1), dilations=(1, 2))
    fps = dict(input_fp=4, weight_fp=6, bias_fp=5, output_fp=o, hsigmoid_in=h)
    cut = 4 + 6 - (h if h is not None else o)
    b = _random_int8(rng, (3,))
    cases = [
        (Conv2dFixOp, _random_int8(rng, (3, 3, 3, 2)), lambda w: w.transpose(0, 2, 3, 1), 1),
        (DepthwiseConv2dFixOp, _random_int8(rng, (3, 1, 3, 2)), lambda w: w.transpose(1, 2, 3, 0),
         3),
    ]
    for cls, w, ohwi, group in cases:
        acc = K.conv2d_acc(x, w, window["strides"], window["pads"], window["dilations"], group)
        num, shift = K.add_bias(acc, b, 4 + 6 - 5, cut)
        expected = K.finish(num, shift, nonlinear, o, h)
        got = _evaluate(cls, to_nhwc_array(x), ohwi(w), b, window, fps, nonlinear)
        assert np.array_equal(to_nchw_array(got), expected)
    wt = _random_int8(rng, (3, 2, 2, 3))  # ONNX ConvTranspose (C, M, kh, kw)
    acc = K.conv_transpose2d_acc(x, wt, (2, 2), (1, 0, 0, 1), (1, 1), 1, (0, 0))
    num, shift = K.add_bias(acc, b[:2], 4 + 6 - 5, cut)
    expected = K.finish(num, shift, nonlinear, o, h)
    got = _evaluate(TransposedConv2dFixOp, to_nhwc_array(x), wt.transpose(1, 2, 3, 0), b[:2],
                    dict(strides=(2, 2), pads=(1, 0, 0, 1), dilations=(1, 1)), fps, nonlinear)
    assert np.array_equal(to_nchw_array(got), expected)


def _evaluate(cls, x, w, b, window, fps, nonlinear):
    """``cls``'s evaluate on NHWC ``x``, weight ``w`` and bias ``b``."""
    i, wf, bf, o, h = (fps[k] for k in ("input_fp", "weight_fp", "bias_fp", "output_fp",
                                        "hsigmoid_in"))
    attributes = {"kernel": ints_attr(w.shape[1:3]), "stride": ints_attr(window["strides"]),
                  "pad": ints_attr(window["pads"]), "dilation": ints_attr(window["dilations"]),
                  "nonlinear": A.StringAttr(nonlinear), "input_fp": A.IntegerAttr(i),
                  "weight_fp": A.IntegerAttr(wf), "bias_fp": A.IntegerAttr(bf),
                  "output_fp": A.IntegerAttr(o),
                  "shift_cut": A.IntegerAttr(i + wf - (h if h is not None else o)),
                  "shift_bias": A.IntegerAttr(i + wf - bf)}
    if h is not None:
        attributes["hsigmoid_in"] = A.IntegerAttr(h)
    op = Operation.create(cls.name, [], [], attributes=attributes)
    return op.evaluate(x, w, b)[0]


# -- the verifier ----------------------------------------------------------------------------------


def _conv_module(attributes: str) -> str:
    return f"""func.func @main(%x: tensor<1x2x1x2xi8>, %w: tensor<1x1x1x2xi8>, %b: tensor<1xi8>) -> tensor<1x2x1x1xi8> {{
  %y = "dpu.conv2d_fix"(%x, %w, %b) {{kernel = [1, 1], {attributes}}} : (tensor<1x2x1x2xi8>, tensor<1x1x1x2xi8>, tensor<1xi8>) -> tensor<1x2x1x1xi8>
  "func.return"(%y) : (tensor<1x2x1x1xi8>) -> ()
}}
"""


def _eltwise_module(attributes: str) -> str:
    t = "tensor<1x2x2x3xi8>"
    return f"""func.func @main(%a: {t}, %b: {t}) -> {t} {{
  %y = "dpu.eltwise_fix"(%a, %b) {{{attributes}}} : ({t}, {t}) -> {t}
  "func.return"(%y) : ({t}) -> ()
}}
"""


@pytest.mark.parametrize("text, message", [
    (_conv_module("input_fp = 2, weight_fp = 3, bias_fp = 4, output_fp = -12, shift_cut = 17, "
                  "shift_bias = 1"),
     "shift_cut = input_fp + weight_fp - output_fp = 17 is outside the DPU's range [0, 16]"),
    (_conv_module("input_fp = 2, weight_fp = 3, bias_fp = 4, output_fp = 3, shift_cut = 3, "
                  "shift_bias = 1"),
     "shift_cut = 3 does not match its fix points: input_fp + weight_fp - output_fp = 2"),
    (_conv_module("input_fp = 2, weight_fp = 3, bias_fp = 22, output_fp = 3, shift_cut = 2, "
                  "shift_bias = -17"),
     "shift_bias = input_fp + weight_fp - bias_fp = -17 is outside the DPU's range [-14, 16]"),
    (_conv_module("input_fp = 2, weight_fp = 3, bias_fp = 4, output_fp = 3, shift_cut = 2"),
     "needs 'shift_bias' = input_fp + weight_fp - bias_fp = 1"),
    (_conv_module("input_fp = 2, weight_fp = 3, bias_fp = 4, output_fp = 3, shift_cut = 2, "
                  "shift_bias = 1, shift_hswish = 0"),
     "has 'shift_hswish', which its fix points and nonlinear do not use"),
    (_conv_module('nonlinear = "hard_sigmoid", input_fp = 2, weight_fp = 3, bias_fp = 4, '
                  'output_fp = 6, hsigmoid_in = 2, shift_cut = 3, shift_bias = 1, '
                  'shift_hsigmoid = 10'),
     "hard_sigmoid needs output_fp >= 7, but output_fp = 6"),
    (_eltwise_module('type = "add", input_fps = [0, 16], output_fp = 0, shift_read = [0, 16], '
                     'shift_write = 0'),
     "shift_read #1 = input_fps[k] - min(input_fps) = 16 is outside the DPU's range [0, 15]"),
    (_eltwise_module('type = "add", input_fps = [3, 4], output_fp = -13, shift_read = [0, 1], '
                     'shift_write = 16'),
     "shift_write = min(input_fps) - output_fp = 16 is outside the DPU's range [-15, 15]"),
    (_eltwise_module('type = "mul", input_fps = [3, 4], output_fp = 5, shift_read = [0, 1], '
                     'shift_write = 2'),
     "shift_read = [0, 1] does not match its fix points: 0 (mul) = [0, 0]"),
])
def test_shift_errors(text, message):
    with pytest.raises(XirError) as e:
        verify(parse(text, filename="m.xir"))
    op = "dpu.conv2d_fix" if "conv2d_fix" in text else "dpu.eltwise_fix"
    assert str(e.value) == f"m.xir:2:3: error: '{op}' op {message}"


def test_hsigmoid_shift_mismatch_is_reported_with_its_formula():
    text = _conv_module('nonlinear = "hard_sigmoid", input_fp = 2, weight_fp = 3, bias_fp = 4, '
                        'output_fp = 8, hsigmoid_in = 2, shift_cut = 3, shift_bias = 1, '
                        'shift_hsigmoid = 7')
    with pytest.raises(XirError) as e:
        verify(parse(text, filename="m.xir"))
    assert str(e.value) == ("m.xir:2:3: error: 'dpu.conv2d_fix' op shift_hsigmoid = 7 does not "
                            "match its fix points: 14 + hsigmoid_in - output_fp = 8")


def test_avg_pool_factor_must_be_the_hardware_one():
    text = """func.func @main(%x: tensor<1x3x3x1xi8>) -> tensor<1x1x1x1xi8> {
  %y = "dpu.pool_fix"(%x) {type = "avg", kernel = [3, 3], fix_point = 0, multi_factor = 1, shift_factor = 3} : (tensor<1x3x3x1xi8>) -> tensor<1x1x1x1xi8>
  "func.return"(%y) : (tensor<1x1x1x1xi8>) -> ()
}
"""
    with pytest.raises(XirError) as e:
        verify(parse(text, filename="m.xir"))
    assert str(e.value) == ("m.xir:2:3: error: 'dpu.pool_fix' op multi_factor = 1 does not "
                            "match its fix points: the multiplier of 1/(3x3) = 7")


def test_a_fix_point_read_differently_than_written_is_an_error():
    text = """func.func @main(%x: tensor<1x2x2x3xi8>) -> tensor<1x3x2x2xi8> {
  %y = "dpu.to_nchw"(%x) {fix_point = 2} : (tensor<1x2x2x3xi8>) -> tensor<1x3x2x2xi8>
  %z = "dpu.to_nhwc"(%y) {fix_point = 3} : (tensor<1x3x2x2xi8>) -> tensor<1x2x2x3xi8>
  %r = "dpu.to_nchw"(%z) {fix_point = 3} : (tensor<1x2x2x3xi8>) -> tensor<1x3x2x2xi8>
  "func.return"(%r) : (tensor<1x3x2x2xi8>) -> ()
}
"""
    with pytest.raises(XirError) as e:
        verify(parse(text, filename="m.xir"))
    assert str(e.value) == ("m.xir:3:3: error: 'dpu.to_nhwc' op reads operand #0 at fix point 3, "
                            "but 'dpu.to_nchw' writes it at fix point 2")


def test_a_wrong_result_shape_is_an_error():
    with pytest.raises(XirError) as e:
        verify(parse(_conv_module("input_fp = 2, weight_fp = 3, bias_fp = 4, output_fp = 3, "
                                  "shift_cut = 2, shift_bias = 1")
                     .replace("-> tensor<1x2x1x1xi8>\n", "-> tensor<1x1x2x1xi8>\n", 1)
                     .replace("tensor<1x2x1x1xi8>", "tensor<1x1x2x1xi8>"), filename="m.xir"))
    assert "result #0 has type 'tensor<1x1x2x1xi8>', but its operands and attributes imply " \
           "'tensor<1x2x1x1xi8>'" in str(e.value)


# -- folds and the round trip --------------------------------------------------------------------

ROUND_TRIP = """builtin.module {
  func.func @main(%x: tensor<1x3x4x4xi8>) -> tensor<1x5xi8> {
    %0 = "dpu.to_nhwc"(%x) {fix_point = 4} : (tensor<1x3x4x4xi8>) -> tensor<1x4x4x3xi8>
    %w = "quant.constant"() {value = dense<1> : tensor<2x3x3x3xi8>, fix_point = 6} : () -> tensor<2x3x3x3xi8>
    %b = "quant.constant"() {value = dense<[1, -2]> : tensor<2xi8>, fix_point = 7} : () -> tensor<2xi8>
    %1 = "dpu.conv2d_fix"(%0, %w, %b) {kernel = [3, 3], stride = [1, 1], dilation = [1, 1], pad = [1, 1, 1, 1], nonlinear = "hard_swish", input_fp = 4, weight_fp = 6, bias_fp = 7, output_fp = 4, hsigmoid_in = 3, shift_cut = 7, shift_bias = 3, shift_hsigmoid = 10, shift_hswish = 6} : (tensor<1x4x4x3xi8>, tensor<2x3x3x3xi8>, tensor<2xi8>) -> tensor<1x4x4x2xi8> loc("conv1")
    %dw = "quant.constant"() {value = dense<2> : tensor<1x3x3x2xi8>, fix_point = 1} : () -> tensor<1x3x3x2xi8>
    %2 = "dpu.depthwise_conv2d_fix"(%1, %dw) {kernel = [3, 3], stride = [2, 2], pad = [1, 1, 0, 0], nonlinear = "relu6", input_fp = 4, weight_fp = 1, output_fp = 4, shift_cut = 1} : (tensor<1x4x4x2xi8>, tensor<1x3x3x2xi8>) -> tensor<1x2x2x2xi8>
    %tw = "quant.constant"() {value = dense<-1> : tensor<2x2x2x2xi8>, fix_point = 2} : () -> tensor<2x2x2x2xi8>
    %3 = "dpu.transposed_conv2d_fix"(%2, %tw) {kernel = [2, 2], stride = [2, 2], nonlinear = "relu", input_fp = 4, weight_fp = 2, output_fp = 4, shift_cut = 2} : (tensor<1x2x2x2xi8>, tensor<2x2x2x2xi8>) -> tensor<1x4x4x2xi8>
    %4 = "dpu.eltwise_fix"(%1, %3) {type = "add", nonlinear = "relu", input_fps = [4, 4], output_fp = 4, shift_read = [0, 0], shift_write = 0} : (tensor<1x4x4x2xi8>, tensor<1x4x4x2xi8>) -> tensor<1x4x4x2xi8>
    %5 = "dpu.pool_fix"(%4) {type = "max", kernel = [2, 2], stride = [2, 2], pad_mode = "CEIL", fix_point = 4} : (tensor<1x4x4x2xi8>) -> tensor<1x2x2x2xi8>
    %6 = "dpu.upsample_fix"(%5) {scale = [2, 2], fix_point = 4} : (tensor<1x2x2x2xi8>) -> tensor<1x4x4x2xi8>
    %7 = "dpu.concat"(%6, %4) {axis = 3, fix_point = 4} : (tensor<1x4x4x2xi8>, tensor<1x4x4x2xi8>) -> tensor<1x4x4x4xi8>
    %8 = "dpu.pool_fix"(%7) {type = "avg", kernel = [4, 4], stride = [4, 4], fix_point = 4, multi_factor = 1, shift_factor = 4} : (tensor<1x4x4x4xi8>) -> tensor<1x1x1x4xi8>
    %fw = "quant.constant"() {value = dense<3> : tensor<5x1x1x4xi8>, fix_point = 5} : () -> tensor<5x1x1x4xi8>
    %9 = "dpu.conv2d_fix"(%8, %fw) {kernel = [1, 1], input_fp = 4, weight_fp = 5, output_fp = 2, shift_cut = 7} : (tensor<1x1x1x4xi8>, tensor<5x1x1x4xi8>) -> tensor<1x1x1x5xi8>
    %10 = "dpu.reshape"(%9) {shape = [1, 5], fix_point = 2} : (tensor<1x1x1x5xi8>) -> tensor<1x5xi8>
    "func.return"(%10) : (tensor<1x5xi8>) -> ()
  }
}
"""


def test_every_op_prints_and_parses_back_and_runs():
    module = parse(ROUND_TRIP)
    verify(module)
    assert print_ir(module) == ROUND_TRIP
    generic = print_ir(module, generic=True)
    assert print_ir(parse(generic), generic=True) == generic
    x = np.random.default_rng(0).integers(-128, 128, (1, 3, 4, 4)).astype(np.int8)
    (y,) = run_module(module, {"x": x})
    assert y.shape == (1, 5) and y.dtype == np.int8


FOLDS = """builtin.module {
  func.func @main(%x: tensor<1x3x2x2xi8>, %v: tensor<1x2x2x3xi8>) -> (tensor<1x3x2x2xi8>, tensor<1x2x2x3xi8>, tensor<1x3xi8>) {
    %0 = "dpu.to_nhwc"(%x) {fix_point = 1} : (tensor<1x3x2x2xi8>) -> tensor<1x2x2x3xi8>
    %1 = "dpu.to_nchw"(%0) {fix_point = 1} : (tensor<1x2x2x3xi8>) -> tensor<1x3x2x2xi8>
    %2 = "dpu.to_nchw"(%v) {fix_point = 1} : (tensor<1x2x2x3xi8>) -> tensor<1x3x2x2xi8>
    %3 = "dpu.to_nhwc"(%2) {fix_point = 1} : (tensor<1x3x2x2xi8>) -> tensor<1x2x2x3xi8>
    %4 = "dpu.reshape"(%v) {shape = [1, 12], fix_point = 1} : (tensor<1x2x2x3xi8>) -> tensor<1x12xi8>
    %5 = "dpu.reshape"(%4) {shape = [1, 2, 2, 3], fix_point = 1} : (tensor<1x12xi8>) -> tensor<1x2x2x3xi8>
    %6 = "dpu.pool_fix"(%5) {type = "max", kernel = [2, 2], fix_point = 1} : (tensor<1x2x2x3xi8>) -> tensor<1x1x1x3xi8>
    %7 = "dpu.reshape"(%6) {shape = [1, 3], fix_point = 1} : (tensor<1x1x1x3xi8>) -> tensor<1x3xi8>
    "func.return"(%1, %3, %7) : (tensor<1x3x2x2xi8>, tensor<1x2x2x3xi8>, tensor<1x3xi8>) -> ()
  }
}
"""


def test_inverse_layout_pairs_and_reshape_chains_fold_away():
    module = parse(FOLDS)
    verify(module)
    Canonicalize().run(module)
    verify(module)
    names = [op.name for op in module.walk()]
    assert "dpu.to_nhwc" not in names and "dpu.to_nchw" not in names
    assert names.count("dpu.reshape") == 1  # %7; %4 and %5 fold into %v
    ret = [op for op in module.walk() if op.name == "func.return"][0]
    args = module.regions[0].blocks[0].ops.__iter__().__next__().regions[0].blocks[0].args
    assert ret.operands[0] is args[0] and ret.operands[1] is args[1]
