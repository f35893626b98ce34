"""The DPU's fused compute ops, NHWC int8: convolutions (with bias and nonlinear), pooling and
eltwise.

Each op's arithmetic is the quant op's it comes from (``docs/quant.md``): the accumulators of
:func:`~xir.dialects.quant.kernels.conv2d_acc` and friends, the bias aligned by
:func:`~xir.dialects.quant.kernels.add_bias`, and the end of every op,
:func:`~xir.dialects.quant.kernels.finish` (so any nonlinear the quant dialect knows works
here), computed on NCHW views of the NHWC operands; only the shift amounts come from the
op's own shift attributes, which the verifier ties to its fix points.
"""

from __future__ import annotations

from xir import attributes as A
from xir import types as T
from xir.dialects.graph import nn as graph_nn
from xir.dialects.graph.base import ShapeError, check_weighted_operands, ints_attr
from xir.dialects.quant import kernels as K
from xir.dialects.quant.base import (I8, SHIFT_CUT, SHIFT_HSIGMOID, SHIFT_HSWISH, SHIFT_READ,
                                     SHIFT_WRITE, FixPoint, shift_bias_range)
from xir.dialects.quant.nn import (HSIGMOID_IN_ACTIVATIONS, NonNegative, Positive,
                                   verify_hard_sigmoid, verify_hard_swish, verify_relu6)
from xir.dialects.quant.tensor import EltwiseActivation
from xir.opdef import ArrayOf, IntegerAttrC, StringOf, attr, operand, result, var_operand
from xir.traits import Pure

from .base import DpuOp, check_rank, nchw_type, nhwc_type, to_nchw_array, to_nhwc_array

Nonlinear = StringOf(*K.ACTIVATIONS)
NONE = A.StringAttr("none")
Pair = ArrayOf(Positive, 2)
Pads = ArrayOf(NonNegative, 4)
ShiftPair = ArrayOf(IntegerAttrC, 2)


# -- convolutions --------------------------------------------------------------------------------


def accumulator_shifts(i: int, w: int, b: int | None, o: int, h: int | None,
                       nonlinear: str) -> dict:
    """``{name: (formula, value, DPU range)}``: the shifts of a convolution reading at fix
    points i (input), w (weight), b (bias, None without one), writing at o, with ``nonlinear``
    (h = hsigmoid_in for a hard sigmoid or hard swish). The fuse pass writes these values; the
    verifier checks them."""
    fused = nonlinear in HSIGMOID_IN_ACTIVATIONS
    cut = i + w - (h if fused else o)
    shifts = {"shift_cut": (f"input_fp + weight_fp - {'hsigmoid_in' if fused else 'output_fp'}",
                            cut, SHIFT_CUT)}
    if b is not None:
        shifts["shift_bias"] = ("input_fp + weight_fp - bias_fp", i + w - b,
                                shift_bias_range(cut))
    if nonlinear == "hard_sigmoid":
        shifts["shift_hsigmoid"] = ("14 + hsigmoid_in - output_fp", K.shift_hsigmoid(h, o),
                                    SHIFT_HSIGMOID)
    elif nonlinear == "hard_swish":
        shifts["shift_hsigmoid"] = ("14 + hsigmoid_in - 7",
                                    K.shift_hsigmoid(h, K.HSWISH_HSIGMOID_FP), SHIFT_HSIGMOID)
        shifts["shift_hswish"] = ("hsigmoid_in + 7 - output_fp", K.shift_hswish(h, o),
                                  SHIFT_HSWISH)
    return shifts


def eltwise_shifts(kind: str, input_fps, output_fp: int) -> dict:
    """``{name: (formula, value, DPU range)}``: shift_read (one per input) and shift_write of an
    eltwise ``kind`` (add, mul) reading at ``input_fps`` and writing at ``output_fp``."""
    if kind == "add":
        low = min(input_fps)
        return {"shift_read": ("input_fps[k] - min(input_fps)",
                               tuple(f - low for f in input_fps), SHIFT_READ),
                "shift_write": ("min(input_fps) - output_fp", low - output_fp, SHIFT_WRITE)}
    return {"shift_read": ("0 (mul)", (0,) * len(input_fps), None),
            "shift_write": ("sum(input_fps) - output_fp", sum(input_fps) - output_fp,
                            SHIFT_WRITE)}



class _ConvFixOp(DpuOp):
    """What the three convolutions share: NHWC int8 input, int8 weights, an optional int8 bias
    (one per output channel), the window attributes, a fused ``nonlinear`` (any activation of
    ``quant.conv2d``), the fix points, and the shifts:

    - ``shift_cut`` = input_fp + weight_fp - output_fp (``hsigmoid_in`` for output_fp with a
      hard sigmoid or hard swish), in [0, 16];
    - ``shift_bias`` = input_fp + weight_fp - bias_fp, in [min(0, shift_cut - 16), 16];
    - ``shift_hsigmoid`` = 14 + hsigmoid_in - output_fp (hard sigmoid) or 14 + hsigmoid_in - 7
      (hard swish), in [0, 31]; ``shift_hswish`` = hsigmoid_in + 7 - output_fp, in [0, 15].

    out = finish(add_bias(acc, bias, shift_bias, shift_cut), nonlinear), as ``quant.conv2d``.
    """

    input = operand(I8, doc="NHWC feature map")
    weight = operand(I8)
    bias = var_operand(I8, doc="zero or one bias (int8, at bias_fp)")
    output = result(I8)
    kernel = attr(Pair, doc="[kh, kw]")
    stride = attr(Pair, default=ints_attr([1, 1]), doc="[sh, sw]")
    dilation = attr(Pair, default=ints_attr([1, 1]), doc="[dh, dw]")
    pad = attr(Pads, default=ints_attr([0, 0, 0, 0]), doc="[top, left, bottom, right]")
    nonlinear = attr(Nonlinear, default=NONE)
    input_fp = attr(FixPoint)
    weight_fp = attr(FixPoint)
    bias_fp = attr(FixPoint, optional=True)
    output_fp = attr(FixPoint)
    hsigmoid_in = attr(FixPoint, optional=True)
    shift_cut = attr(IntegerAttrC)
    shift_bias = attr(IntegerAttrC, optional=True)
    shift_hsigmoid = attr(IntegerAttrC, optional=True)
    shift_hswish = attr(IntegerAttrC, optional=True)
    traits = (Pure(),)
    shift_names = ("shift_cut", "shift_bias", "shift_hsigmoid", "shift_hswish")

    def operand_fix_points(self) -> list:
        p = self.param
        return [p["input_fp"], p["weight_fp"], p["bias_fp"]]

    def output_fix_point(self) -> int:
        return self.param["output_fp"]

    def expected_shifts(self) -> dict:
        p = self.param
        act, h, o = p["nonlinear"], p["hsigmoid_in"], p["output_fp"]
        fused = act in HSIGMOID_IN_ACTIVATIONS
        if fused and h is None:
            raise self.error(f"has a {act} nonlinear but no 'hsigmoid_in'")
        if not fused and h is not None:
            raise self.error(f"has 'hsigmoid_in' but its nonlinear is {act}")
        if (p["bias_fp"] is None) != (len(self.bias) == 0):
            raise self.error("has a bias but no 'bias_fp'" if self.bias else
                             "has 'bias_fp' but no bias")
        if act == "hard_sigmoid":
            verify_hard_sigmoid(self, h, o)
        elif act == "hard_swish":
            verify_hard_swish(self, h, o)
        elif act == "relu6":
            verify_relu6(self, o)
        return accumulator_shifts(p["input_fp"], p["weight_fp"], p["bias_fp"], o, h, act)

    # The NCHW op whose shape rule this op shares, and how the weight maps to its layout.
    nchw_op = graph_nn.Conv2dOp

    @classmethod
    def nchw_weight_type(cls, w: T.TensorType, x: T.TensorType) -> T.TensorType:
        """The weight's type in the NCHW op's layout."""
        return nchw_type(w)

    @classmethod
    def nchw_attributes(cls, p: dict, x: T.TensorType) -> dict:
        """The NCHW op's attributes for window attributes ``p``."""
        return {"strides": ints_attr(p["stride"]), "pads": ints_attr(p["pad"]),
                "dilations": ints_attr(p["dilation"])}

    @classmethod
    def infer_result_types(cls, operand_types, attributes):
        check_weighted_operands(operand_types)
        x, w = operand_types[:2]
        check_rank(x, 4, "input (N, H, W, C)")
        check_rank(w, 4, "weight")
        p = cls.params(attributes)
        if p["kernel"] is not None and tuple(p["kernel"]) != tuple(w.shape[1:3]):
            raise ShapeError(f"kernel {list(p['kernel'])} does not match the weight's "
                             f"{list(w.shape[1:3])}")
        types = [nchw_type(x, T.f32), cls.nchw_weight_type(w, x)] + \
            [T.TensorType(t.shape, T.f32) for t in operand_types[2:]]
        (out,) = cls.nchw_op.infer_result_types(types, cls.nchw_attributes(p, x))
        return [nhwc_type(out, T.i8)]

    def accumulate(self, x, w):
        """The int64 accumulators (NCHW) of NHWC input ``x`` and weight ``w``."""
        raise NotImplementedError

    def evaluate(self, x, w, b=None):
        p = self.param
        num, shift = K.add_bias(self.accumulate(x, w), b, p["shift_bias"] or 0, p["shift_cut"])
        out = K.finish(num, shift, p["nonlinear"], p["output_fp"], p["hsigmoid_in"])
        return [to_nhwc_array(out)]


class Conv2dFixOp(_ConvFixOp):
    """The DPU's convolution (group 1): weight OHWI (M, KH, KW, C), bias (M)."""

    name = "dpu.conv2d_fix"

    def accumulate(self, x, w):
        p = self.param
        return K.conv2d_acc(to_nchw_array(x), to_nchw_array(w), p["stride"], p["pad"],
                            p["dilation"], 1)


class DepthwiseConv2dFixOp(_ConvFixOp):
    """The DPU's depthwise convolution (channel multiplier 1): weight (1, KH, KW, C), as Vitis
    XIR's depthwise-conv2d [channel_multiplier, kh, kw, in_channels]; bias (C)."""

    name = "dpu.depthwise_conv2d_fix"

    @classmethod
    def nchw_weight_type(cls, w, x):
        if w.shape[0] != 1:
            raise ShapeError(f"weight must be (1, KH, KW, C), but is {w}")
        return T.TensorType((w.shape[3], 1, w.shape[1], w.shape[2]), T.f32)

    @classmethod
    def nchw_attributes(cls, p, x):
        return {**super().nchw_attributes(p, x), "group": A.IntegerAttr(x.shape[3])}

    def accumulate(self, x, w):
        p = self.param
        channels = x.shape[3]
        return K.conv2d_acc(to_nchw_array(x), w.transpose(3, 0, 1, 2), p["stride"], p["pad"],
                            p["dilation"], channels)


class TransposedConv2dFixOp(_ConvFixOp):
    """The DPU's transposed convolution (group 1, no output padding): weight OHWI
    (M, KH, KW, C); ``pad`` as ONNX ConvTranspose's pads (cropped from the full output)."""

    name = "dpu.transposed_conv2d_fix"
    nchw_op = graph_nn.ConvTranspose2dOp

    @classmethod
    def nchw_weight_type(cls, w, x):
        return T.TensorType((w.shape[3], w.shape[0], w.shape[1], w.shape[2]), T.f32)

    def accumulate(self, x, w):
        p = self.param
        return K.conv_transpose2d_acc(to_nchw_array(x), w.transpose(3, 0, 1, 2), p["stride"],
                                      p["pad"], p["dilation"], 1, (0, 0))


# -- pooling -------------------------------------------------------------------------------------


class PoolFixOp(DpuOp):
    """The DPU's pooling, NHWC, at one fix point: ``type`` max (integers compared, padding never
    wins) or avg (each window's sum, padding counted as zeros, times ``multi_factor`` /
    2^``shift_factor`` standing for 1 / (kh · kw), as
    :func:`~xir.dialects.quant.kernels.avg_pool_factor` gives them, rounded once). ``pad_mode`` CEIL lets the last window hang over the edge (ONNX ceil_mode)."""

    name = "dpu.pool_fix"
    input = operand(I8, doc="NHWC feature map")
    output = result(I8)
    type = attr(StringOf("max", "avg"))
    kernel = attr(Pair, doc="[kh, kw]")
    stride = attr(Pair, default=ints_attr([1, 1]), doc="[sh, sw]")
    pad = attr(Pads, default=ints_attr([0, 0, 0, 0]), doc="[top, left, bottom, right]")
    pad_mode = attr(StringOf("FLOOR", "CEIL"), default=A.StringAttr("FLOOR"))
    fix_point = attr(FixPoint)
    multi_factor = attr(IntegerAttrC, optional=True, doc="avg: the multiplier m of m / 2^s")
    shift_factor = attr(IntegerAttrC, optional=True, doc="avg: the shift s of m / 2^s")
    traits = (Pure(),)
    shift_names = ("multi_factor", "shift_factor")

    def operand_fix_points(self) -> list:
        return [self.param["fix_point"]]

    def output_fix_point(self) -> int:
        return self.param["fix_point"]

    @classmethod
    def infer_result_types(cls, operand_types, attributes):
        (x,) = operand_types
        check_rank(x, 4, "input (N, H, W, C)")
        p = cls.params(attributes)
        nchw = {"kernel_shape": ints_attr(p["kernel"]), "strides": ints_attr(p["stride"]),
                "pads": ints_attr(p["pad"]),
                "ceil_mode": A.IntegerAttr(int(p["pad_mode"] == "CEIL"))}
        (out,) = graph_nn.MaxPool2dOp.infer_result_types([nchw_type(x, T.f32)], nchw)
        return [nhwc_type(out, T.i8)]

    def expected_shifts(self) -> dict:
        p = self.param
        if p["type"] != "avg":
            return {}
        m, s = K.avg_pool_factor(*p["kernel"])
        kernel = "x".join(map(str, p["kernel"]))
        return {"multi_factor": (f"the multiplier of 1/({kernel})", m, None),
                "shift_factor": (f"the shift of 1/({kernel})", s, None)}

    def evaluate(self, x):
        p = self.param
        ceil = p["pad_mode"] == "CEIL"
        pool = K.avg_pool2d if p["type"] == "avg" else K.max_pool2d
        return [to_nhwc_array(pool(to_nchw_array(x), p["kernel"], p["stride"], p["pad"], ceil))]


# -- eltwise -------------------------------------------------------------------------------------


class EltwiseFixOp(DpuOp):
    """The DPU's eltwise engine on two NHWC int8 feature maps (numpy broadcasting), ``type`` add
    or mul, with a fused ``nonlinear`` (none, relu, leaky_relu), as ``quant.add`` /
    ``quant.mul``:

    - add: ``shift_read`` #k = input_fps[k] - min(input_fps) in [0, 15],
      ``shift_write`` = min(input_fps) - output_fp in [-15, 15];
    - mul: ``shift_read`` = [0, 0], ``shift_write`` = sum(input_fps) - output_fp in [-15, 15].
    """

    name = "dpu.eltwise_fix"
    inputs = var_operand(I8)
    output = result(I8)
    type = attr(StringOf("add", "mul"))
    nonlinear = attr(EltwiseActivation, default=NONE)
    input_fps = attr(ArrayOf(FixPoint, 2))
    output_fp = attr(FixPoint)
    shift_read = attr(ShiftPair)
    shift_write = attr(IntegerAttrC)
    traits = (Pure(),)
    shift_names = ("shift_read", "shift_write")

    def operand_fix_points(self) -> list:
        return list(self.param["input_fps"])

    def output_fix_point(self) -> int:
        return self.param["output_fp"]

    @classmethod
    def infer_result_types(cls, operand_types, attributes):
        if len(operand_types) != 2:
            raise ShapeError(f"expects two inputs, but got {len(operand_types)}")
        for t in operand_types:
            check_rank(t, 4, "each input (N, H, W, C)")
        return [T.TensorType(t.shape, T.i8) for t in graph_nn_add_types(operand_types)]

    def expected_shifts(self) -> dict:
        p = self.param
        return eltwise_shifts(p["type"], p["input_fps"], p["output_fp"])

    def evaluate(self, a, b):
        p = self.param
        if p["type"] == "add":
            return [K.eltwise_add((a, b), p["shift_read"], p["shift_write"], p["nonlinear"])]
        return [K.eltwise_mul((a, b), p["shift_write"], p["nonlinear"])]


def graph_nn_add_types(operand_types):
    """The broadcast result type of two tensors (``graph.add``'s shape rule)."""
    from xir.dialects.graph import tensor as graph_tensor

    return graph_tensor.AddOp.infer_result_types([T.TensorType(t.shape, T.f32)
                                                  for t in operand_types], {})


NN_OPS = [Conv2dFixOp, DepthwiseConv2dFixOp, TransposedConv2dFixOp, PoolFixOp, EltwiseFixOp]
