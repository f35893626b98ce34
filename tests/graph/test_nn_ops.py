"""The graph dialect's neural-network ops against onnxruntime.

Each case builds one op from IR text, verifies it, runs its numpy semantics and the matching
single ONNX node, and compares values (relative error) and shapes; the op's shape inference must
give onnxruntime's output shape. Verifier tests pin the exact diagnostics.
"""

from __future__ import annotations

import numpy as np
import pytest
from ort_reference import relative_error, run_node

from xir import types as T
from xir.attributes import IntegerAttr
from xir.diagnostics import XirError
from xir.dialects.graph.base import ints_attr
from xir.dialects.graph.nn import NN_OPS
from xir.parser import parse
from xir.verifier import verify

TOLERANCE = 1e-4
ERRORS: list[float] = []  # every relative error seen (read by the report)


# -- helpers -------------------------------------------------------------------------------------


def tensor_type(shape) -> str:
    return "tensor<" + "".join(f"{d}x" for d in shape) + "f32>"


def attr_text(value) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(map(str, value)) + "]"
    if isinstance(value, float):
        return f"{value:.8e} : f32"  # MLIR float literals need a dot
    return str(value)


def op_text(op: str, operand_shapes, result_shape, attrs: dict) -> str:
    """A function holding one ``op`` on its arguments, returning its result."""
    args = ", ".join(f"%a{i}: {tensor_type(s)}" for i, s in enumerate(operand_shapes))
    operands = ", ".join(f"%a{i}" for i in range(len(operand_shapes)))
    types = ", ".join(tensor_type(s) for s in operand_shapes)
    dictionary = ", ".join(f"{k} = {attr_text(v)}" for k, v in attrs.items())
    dictionary = f" {{{dictionary}}}" if attrs else ""
    result = tensor_type(result_shape)
    return (f"func.func @f({args}) -> {result} {{\n"
            f"  %y = \"graph.{op}\"({operands}){dictionary} : ({types}) -> {result}\n"
            f"  \"func.return\"(%y) : ({result}) -> ()\n"
            f"}}\n")


def build(op: str, operand_shapes, result_shape, attrs: dict):
    """The verified op parsed from text."""
    module = parse(op_text(op, operand_shapes, result_shape, attrs))
    verify(module)
    return next(o for o in module.walk() if o.name == f"graph.{op}")


def check(op: str, inputs, attrs: dict, onnx_op: str, onnx_attrs: dict | None = None,
          initializers: dict | None = None, opset: int = 17):
    """Our op and onnxruntime agree on the output's shape and values."""
    (expected,) = run_node(onnx_op, inputs, onnx_attrs if onnx_attrs is not None else attrs,
                           opset=opset, initializers=initializers)
    ours_op = build(op, [x.shape for x in inputs], expected.shape, attrs)
    inferred = type(ours_op).infer_result_types([T.TensorType(x.shape, T.f32) for x in inputs],
                                                ours_op.all_attributes())
    assert inferred == [T.TensorType(expected.shape, T.f32)]
    (ours,) = ours_op.evaluate(*inputs)
    assert ours.shape == expected.shape and ours.dtype == np.float32
    error = relative_error(ours, expected)
    ERRORS.append(error)
    assert error <= TOLERANCE, error


def rand(seed: int, *shapes, low=-1.0, high=1.0):
    rng = np.random.default_rng(seed)
    return [rng.uniform(low, high, s).astype(np.float32) for s in shapes]


# -- convolution ---------------------------------------------------------------------------------

CONV_CASES = [  # input, weight, bias?, attributes
    ((1, 3, 8, 8), (4, 3, 3, 3), False, {}),
    ((2, 3, 9, 7), (5, 3, 3, 3), True, {"strides": [2, 2], "pads": [1, 1, 1, 1]}),
    ((1, 2, 10, 9), (3, 2, 3, 2), True, {"dilations": [2, 2], "pads": [0, 1, 2, 0]}),
    ((2, 4, 7, 9), (6, 2, 3, 2), False, {"strides": [2, 1], "group": 2}),
    ((1, 6, 7, 7), (6, 1, 3, 3), True, {"pads": [1, 1, 1, 1], "group": 6}),  # depthwise
    ((1, 6, 9, 8), (12, 1, 3, 3), False, {"strides": [2, 2], "pads": [1, 0, 1, 1], "group": 6}),
    ((1, 5, 6, 6), (7, 5, 1, 1), True, {}),
    ((1, 2, 11, 13), (2, 2, 2, 3), False, {"strides": [3, 2], "dilations": [1, 2], "pads": [2, 0, 0, 3]}),
]


@pytest.mark.parametrize("seed, case", list(enumerate(CONV_CASES)))
def test_conv2d(seed, case):
    x_shape, w_shape, with_bias, attrs = case
    shapes = [x_shape, w_shape] + ([(w_shape[0],)] if with_bias else [])
    check("conv2d", rand(seed, *shapes), attrs, "Conv")


CONV_TRANSPOSE_CASES = [
    ((1, 3, 5, 5), (3, 4, 3, 3), False, {}),
    ((1, 3, 5, 4), (3, 2, 3, 3), True, {"strides": [2, 2], "pads": [1, 1, 1, 1], "output_padding": [1, 1]}),
    ((2, 4, 4, 5), (4, 3, 3, 2), True, {"group": 2, "strides": [2, 1]}),
    ((1, 2, 4, 4), (2, 3, 3, 3), False, {"dilations": [2, 1], "pads": [0, 1, 2, 0], "strides": [3, 2]}),
    ((1, 4, 3, 3), (4, 1, 4, 4), False, {"group": 4, "strides": [2, 2], "pads": [1, 1, 1, 1]}),
]


@pytest.mark.parametrize("seed, case", list(enumerate(CONV_TRANSPOSE_CASES)))
def test_conv_transpose2d(seed, case):
    x_shape, w_shape, with_bias, attrs = case
    m = w_shape[1] * attrs.get("group", 1)
    shapes = [x_shape, w_shape] + ([(m,)] if with_bias else [])
    check("conv_transpose2d", rand(seed, *shapes), attrs, "ConvTranspose")


# -- pooling -------------------------------------------------------------------------------------

POOL_CASES = [  # input, attributes
    ((1, 2, 8, 8), {"kernel_shape": [2, 2], "strides": [2, 2]}),
    ((2, 3, 7, 9), {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
    ((2, 3, 7, 9), {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "ceil_mode": 1}),
    ((1, 2, 8, 8), {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}),
    ((1, 2, 5, 6), {"kernel_shape": [2, 2], "strides": [2, 2], "pads": [1, 1, 1, 1], "ceil_mode": 1}),
    ((1, 1, 9, 7), {"kernel_shape": [3, 2], "strides": [2, 1], "pads": [1, 0, 0, 1], "ceil_mode": 1}),
    ((1, 2, 6, 7), {"kernel_shape": [3, 3], "pads": [2, 0, 1, 2]}),
]


DILATED_POOL_CASES = [
    ((1, 2, 9, 9), {"kernel_shape": [3, 3], "dilations": [2, 2]}),
    ((1, 2, 10, 8), {"kernel_shape": [2, 3], "strides": [2, 2], "dilations": [3, 1], "pads": [1, 1, 0, 1]}),
    ((1, 1, 9, 8), {"kernel_shape": [2, 2], "strides": [2, 2], "dilations": [2, 2], "ceil_mode": 1}),
    ((1, 1, 8, 7), {"kernel_shape": [3, 2], "strides": [3, 2], "dilations": [2, 3], "pads": [1, 1, 1, 1],
                    "ceil_mode": 1}),
]


@pytest.mark.parametrize("seed, case", list(enumerate(POOL_CASES + DILATED_POOL_CASES)))
def test_max_pool2d(seed, case):
    x_shape, attrs = case
    check("max_pool2d", rand(seed, x_shape), attrs, "MaxPool")


@pytest.mark.parametrize("count_include_pad", [0, 1])
@pytest.mark.parametrize("seed, case", list(enumerate(POOL_CASES)))
def test_avg_pool2d(seed, case, count_include_pad):
    x_shape, attrs = case
    check("avg_pool2d", rand(seed, x_shape), {**attrs, "count_include_pad": count_include_pad},
          "AveragePool")


@pytest.mark.parametrize("shape", [(1, 3, 4, 4), (2, 5, 7, 3), (1, 1, 1, 1)])
def test_global_avg_pool(shape):
    check("global_avg_pool", rand(1, shape), {}, "GlobalAveragePool")


# -- normalization -------------------------------------------------------------------------------


@pytest.mark.parametrize("shape, epsilon", [((2, 3, 4, 5), 1e-5), ((4, 6), 1e-3), ((1, 8, 3, 3), 0.1)])
def test_batch_norm(shape, epsilon):
    c = shape[1]
    x, scale, bias, mean = rand(2, shape, (c,), (c,), (c,))
    (var,) = rand(3, (c,), low=0.5, high=2.0)
    check("batch_norm", [x, scale, bias, mean, var], {"epsilon": epsilon}, "BatchNormalization")


@pytest.mark.parametrize("shape, attrs", [
    ((1, 5, 3, 3), {"size": 3}),
    ((2, 7, 4, 2), {"size": 5, "alpha": 0.01, "beta": 0.5, "bias": 2.0}),
    ((1, 6, 2, 3), {"size": 1, "alpha": 0.1, "beta": 0.75, "bias": 1.0}),  # ORT takes odd sizes only
    ((1, 3, 2, 2), {"size": 7, "alpha": 0.5}),
])
def test_lrn(shape, attrs):
    check("lrn", rand(4, shape, low=-3, high=3), attrs, "LRN")


@pytest.mark.parametrize("shape, axis", [((3, 10), -1), ((2, 3, 4), 1), ((2, 3, 4, 5), 0),
                                         ((2, 3, 4, 5), -2)])
def test_softmax(shape, axis):
    check("softmax", rand(5, shape, low=-5, high=5), {"axis": axis}, "Softmax", opset=13)


# -- activations ---------------------------------------------------------------------------------

ACTIVATIONS = [  # our op, attributes, ONNX op, ONNX attributes, ONNX constant inputs
    ("relu", {}, "Relu", {}, None),
    ("clip", {"min": 0.0, "max": 6.0}, "Clip", {}, {"lo": np.float32(0), "hi": np.float32(6)}),
    ("clip", {"min": -1.5}, "Clip", {}, {"lo": np.float32(-1.5)}),
    ("clip", {"max": 0.25}, "Clip", {}, {"lo": np.float32(-np.finfo(np.float32).max),
                                          "hi": np.float32(0.25)}),
    ("leaky_relu", {}, "LeakyRelu", {}, None),
    ("leaky_relu", {"alpha": 0.2}, "LeakyRelu", {"alpha": 0.2}, None),
    ("hard_sigmoid", {}, "HardSigmoid", {}, None),
    ("hard_sigmoid", {"alpha": 0.3, "beta": 0.4}, "HardSigmoid", {"alpha": 0.3, "beta": 0.4}, None),
    ("hard_swish", {}, "HardSwish", {}, None),
    ("sigmoid", {}, "Sigmoid", {}, None),
    ("tanh", {}, "Tanh", {}, None),
]


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (7,)])
@pytest.mark.parametrize("op, attrs, onnx_op, onnx_attrs, constants", ACTIVATIONS,
                         ids=[f"{a[0]}{i}" for i, a in enumerate(ACTIVATIONS)])
def test_activation(op, attrs, onnx_op, onnx_attrs, constants, shape):
    check(op, rand(6, shape, low=-8, high=8), attrs, onnx_op, onnx_attrs, initializers=constants)


@pytest.mark.parametrize("shape, slope", [((2, 3, 4, 4), (3, 1, 1)), ((2, 3, 4, 4), (1,)),
                                          ((2, 3, 4, 4), (2, 3, 4, 4)), ((5, 6), (6,))])
def test_prelu(shape, slope):
    check("prelu", rand(7, shape, slope), {}, "PRelu")


# -- shape inference with unknown dims ------------------------------------------------------------

D = T.DYNAMIC


@pytest.mark.parametrize("op, operands, attrs, expected", [
    ("conv2d", [(D, 3, 8, D), (4, 3, 3, 3)], {"strides": [2, 2]}, (D, 4, 3, D)),
    ("conv_transpose2d", [(D, 3, D, 5), (3, 2, 3, 3)], {"group": 1}, (D, 2, D, 7)),
    ("max_pool2d", [(D, 3, 7, 7)], {"kernel_shape": [3, 3], "ceil_mode": 1, "strides": [2, 2]}, (D, 3, 3, 3)),
    ("global_avg_pool", [(D, 3, D, D)], {}, (D, 3, 1, 1)),
    ("batch_norm", [(D, 3, D, D), (3,), (3,), (3,), (3,)], {}, (D, 3, D, D)),
])
def test_infer_dynamic(op, operands, attrs, expected):
    """Unknown dims stay unknown where they flow, and are checked where they are known."""
    op_class = next(c for c in NN_OPS if c.name == f"graph.{op}")
    attributes = {k: ints_attr(v) if isinstance(v, list) else IntegerAttr(v) for k, v in attrs.items()}
    inferred = op_class.infer_result_types([T.TensorType(s, T.f32) for s in operands], attributes)
    assert inferred == [T.TensorType(expected, T.f32)]


# -- verifier diagnostics ------------------------------------------------------------------------


def diagnostic(op, operand_shapes, result_shape, attrs=None) -> str:
    with pytest.raises(XirError) as info:
        verify(parse(op_text(op, operand_shapes, result_shape, attrs or {}), filename="bad.xir"))
    return str(info.value)


@pytest.mark.parametrize("op, operands, result, attrs, message", [
    ("conv2d", [(1, 3, 8, 8), (4, 3, 3, 3)], (1, 4, 7, 7), {},
     "result #0 has type 'tensor<1x4x7x7xf32>', but its operands and attributes imply "
     "'tensor<1x4x6x6xf32>'"),
    ("conv2d", [(1, 3, 8, 8), (4, 4, 3, 3)], (1, 4, 6, 6), {},
     "input has 3 channels but the weight expects 4 (groups=1)"),
    ("conv2d", [(1, 4, 8, 8), (6, 1, 3, 3)], (1, 6, 6, 6), {"group": 4},
     "weight has 6 output channels, which group=4 does not divide"),
    ("conv2d", [(1, 3, 8, 8), (4, 3, 3, 3), (5,)], (1, 4, 6, 6), {},
     "bias has shape (5,) but the weight has 4 output channels"),
    ("conv2d", [(1, 3, 4, 4), (4, 3, 3, 3)], (1, 4, 1, 1), {"dilations": [2, 2]},
     "input height 4 padded by 0+0 is smaller than the dilated kernel height 5"),
    ("conv2d", [(3, 8, 8), (4, 3, 3, 3)], (1, 4, 6, 6), {},
     "input must have rank 4 (N, C, H, W), but has rank 3"),
    ("conv_transpose2d", [(1, 3, 5, 5), (4, 2, 3, 3)], (1, 2, 7, 7), {},
     "input has 3 channels but the weight expects 4 (groups=1)"),
    ("conv_transpose2d", [(1, 3, 5, 5), (3, 2, 3, 3)], (1, 2, 12, 12),
     {"strides": [2, 2], "output_padding": [2, 0]},
     "output_padding (2, 0) must be smaller than the stride or the dilation on each axis"),
    ("max_pool2d", [(1, 3, 8, 8)], (1, 3, 4, 4), {"kernel_shape": [2, 2], "pads": [2, 0, 0, 0]},
     "pads (2, 0, 0, 0) must be smaller than the kernel (2, 2)"),
    ("avg_pool2d", [(1, 3, 8, 8)], (1, 3, 4, 4), {"kernel_shape": [3, 3], "strides": [2, 2]},
     "result #0 has type 'tensor<1x3x4x4xf32>', but its operands and attributes imply "
     "'tensor<1x3x3x3xf32>'"),
    ("batch_norm", [(1, 3, 4, 4), (3,), (3,), (4,), (3,)], (1, 3, 4, 4), {},
     "mean has shape (4,) but the input has 3 channels"),
    ("softmax", [(2, 3)], (2, 3), {"axis": 2}, "axis 2 is out of range for an input of rank 2"),
    ("prelu", [(2, 3, 4, 4)], (2, 3, 4, 4), {}, None),
    ("prelu", [(2, 3, 4, 4), (4, 1, 1)], (2, 3, 4, 4), {},
     "slope of shape (4, 1, 1) does not broadcast to the input's shape (2, 3, 4, 4)"),
    ("relu", [(2, 3)], (3, 2), {}, "requires the same type for all operands and results"),
    ("conv2d", [(1, 3, 8, 8), (4, 3, 3), (4,)], (1, 4, 6, 6), {},
     "weight must have rank 4 (M, C/group, KH, KW), but has rank 3"),
    ("conv_transpose2d", [(1, 4, 5, 5), (4, 3, 3, 3), (3,)], (1, 6, 7, 7), {"group": 2},
     "bias has shape (3,) but the weight has 6 output channels"),
    ("conv2d", [(1, 3, 8, 8), (4, 3, 3, 3), (4,), (4,)], (1, 4, 6, 6), {},
     "expects input, weight and at most one bias, but got 4 operands"),
    ("max_pool2d", [(1, 3, 8, 8)], (1, 3, 8, 8), {}, "requires attribute 'kernel_shape'"),
    ("lrn", [(1, 3, 8, 8)], (1, 3, 8, 8), {"size": 3, "alpha": 1},
     "attribute 'alpha' must be float attribute, but got 1"),
])
def test_verifier_rejects(op, operands, result, attrs, message):
    text = diagnostic(op, operands, result, attrs)
    if message is None:  # wrong operand count: the structural verifier's own words
        assert text.startswith(f"bad.xir:2:3: error: 'graph.{op}' op"), text
    else:
        assert text == f"bad.xir:2:3: error: 'graph.{op}' op {message}"
