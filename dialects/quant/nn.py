"""Quantized neural-network ops: convolutions and dense with fused activations, pooling and
standalone activations, in NCHW with int8 tensors.

Shapes follow the graph ops of the same name (their shape rules are reused); the arithmetic is
the DPU's (see :mod:`.kernels` and ``docs/quant.md``).
"""

from __future__ import annotations

from xir import attributes as A
from xir import types as T
from xir.dialects.graph import nn as graph_nn
from xir.dialects.graph.base import ShapeError, check_weighted_operands, ints_attr, tensor_of
from xir.opdef import ArrayOf, IntegerAttrOf, attr, operand, result, var_operand
from xir.traits import Pure, SameOperandsAndResultType

from . import kernels as K
from .base import (HSIGMOID_OUTPUT_FP_MIN, I8, PRELU_SLOPE_FP, RELU6_OUTPUT_FP_MIN, SHIFT_CUT,
                   SHIFT_HSIGMOID, SHIFT_HSWISH, SHIFT_WRITE, Activation, FixPoint, QuantOp,
                   SameFixPointOp, shift_bias_range)

Positive = IntegerAttrOf(1, None)
NonNegative = IntegerAttrOf(0, None)
Flag = IntegerAttrOf(0, 1)
NONE = A.StringAttr("none")
HSIGMOID_IN_ACTIVATIONS = ("hard_sigmoid", "hard_swish")  # those that round at hsigmoid_in


# -- convolutions and dense ----------------------------------------------------------------------


class _AccumulatingOp(QuantOp):
    """What conv, transposed conv and dense share: int8 input, weight and optional bias, their
    fix points, the output fix point and a fused activation, and the DPU's rules on them:

    - shift_cut = input_fp + weight_fp - output_fp in [0, 16] (with a hard sigmoid or a hard
      swish, the accumulator is first written at ``hsigmoid_in``, which replaces output_fp);
    - shift_bias = input_fp + weight_fp - bias_fp in [min(0, shift_cut - 16), 16];
    - out = finish(acc + bias aligned by shift_bias, shift_cut, activation), as
      :func:`.kernels.add_bias` and :func:`.kernels.finish` define them.
    """

    input = operand(I8)
    weight = operand(I8)
    bias = var_operand(I8, doc="zero or one bias (int8, at bias_fp)")
    output = result(I8)
    input_fp = attr(FixPoint)
    weight_fp = attr(FixPoint)
    bias_fp = attr(FixPoint, optional=True)
    output_fp = attr(FixPoint)
    activation = attr(Activation, default=NONE)
    hsigmoid_in = attr(FixPoint, optional=True,
                       doc="fix point of the hard sigmoid's (or hard swish's) input")
    traits = (Pure(),)

    def operand_fix_points(self) -> list:
        p = self.param
        return [p["input_fp"], p["weight_fp"], p["bias_fp"]]

    def output_fix_point(self) -> int:
        return self.param["output_fp"]

    @property
    def shift_cut(self) -> int:
        """input_fp + weight_fp - output_fp (hsigmoid_in in place of output_fp for a fused hard
        sigmoid or hard swish): the right shift from accumulator to result."""
        p = self.param
        fused = p["activation"] in HSIGMOID_IN_ACTIVATIONS
        target = p["hsigmoid_in"] if fused else p["output_fp"]
        return p["input_fp"] + p["weight_fp"] - target

    @property
    def shift_bias(self) -> int | None:
        """input_fp + weight_fp - bias_fp: the left shift aligning the bias to the accumulator."""
        p = self.param
        return None if p["bias_fp"] is None else p["input_fp"] + p["weight_fp"] - p["bias_fp"]

    def verify_fix_points(self) -> None:
        p = self.param
        if p["activation"] in HSIGMOID_IN_ACTIVATIONS:
            verify = verify_hard_sigmoid if p["activation"] == "hard_sigmoid" else \
                verify_hard_swish
            verify(self, p["hsigmoid_in"], p["output_fp"])
            cut = "input_fp + weight_fp - hsigmoid_in"
        else:
            if p["hsigmoid_in"] is not None:
                raise self.error("has 'hsigmoid_in' but its activation is not hard_sigmoid")
            cut = "input_fp + weight_fp - output_fp"
        self.check_shift("shift_cut", cut, self.shift_cut, SHIFT_CUT)
        if p["activation"] == "relu6":
            verify_relu6(self, p["output_fp"])
        has_bias = len(self.bias) == 1
        if has_bias and p["bias_fp"] is None:
            raise self.error("has a bias but no 'bias_fp'")
        if not has_bias and p["bias_fp"] is not None:
            raise self.error("has 'bias_fp' but no bias")
        if has_bias:
            self.check_shift("shift_bias", "input_fp + weight_fp - bias_fp", self.shift_bias,
                             shift_bias_range(self.shift_cut))

    def accumulate(self, x, w):
        """The int64 accumulators Σ x·w of input ``x`` and weight ``w`` (each op's own product)."""
        raise NotImplementedError

    def evaluate(self, x, w, b=None):
        return [self._finish(self.accumulate(x, w), b)]

    def _finish(self, acc, bias):
        """The int8 result of accumulators ``acc`` (the DPU's end of a conv)."""
        p = self.param
        num, shift = K.add_bias(acc, bias, self.shift_bias or 0, self.shift_cut)
        return K.finish(num, shift, p["activation"], p["output_fp"], p["hsigmoid_in"])


def verify_relu6(op: QuantOp, output_fp: int) -> None:
    """relu6 clamps at 6 · 2^output_fp, which must be an integer."""
    if output_fp < RELU6_OUTPUT_FP_MIN:
        raise op.error(f"relu6 needs output_fp >= {RELU6_OUTPUT_FP_MIN} (6 · 2^fp must be an "
                       f"integer), but output_fp = {output_fp}")


def verify_hard_sigmoid(op: QuantOp, hsigmoid_in: int | None, output_fp: int) -> None:
    """The DPU's hard sigmoid: a ``hsigmoid_in`` fix point, output_fp >= 7, and
    shift_hsigmoid = 14 + hsigmoid_in - output_fp in [0, 31]."""
    if hsigmoid_in is None:
        raise op.error("has a hard_sigmoid activation but no 'hsigmoid_in'")
    if output_fp < HSIGMOID_OUTPUT_FP_MIN:
        raise op.error(f"hard_sigmoid needs output_fp >= {HSIGMOID_OUTPUT_FP_MIN}, but "
                       f"output_fp = {output_fp}")
    op.check_shift("shift_hsigmoid", "14 + hsigmoid_in - output_fp",
                   K.shift_hsigmoid(hsigmoid_in, output_fp), SHIFT_HSIGMOID)


def verify_hard_swish(op: QuantOp, hsigmoid_in: int | None, output_fp: int) -> None:
    """The DPU's hard swish: a ``hsigmoid_in`` fix point, its inner hard sigmoid written at fix
    point 7 (shift_hsigmoid = 14 + hsigmoid_in - 7 in [0, 31]), and
    shift_hswish = hsigmoid_in + 7 - output_fp in [0, 15]."""
    if hsigmoid_in is None:
        raise op.error("has a hard_swish activation but no 'hsigmoid_in'")
    op.check_shift("shift_hsigmoid", "14 + hsigmoid_in - 7",
                   K.shift_hsigmoid(hsigmoid_in, K.HSWISH_HSIGMOID_FP), SHIFT_HSIGMOID)
    op.check_shift("shift_hswish", "hsigmoid_in + 7 - output_fp",
                   K.shift_hswish(hsigmoid_in, output_fp), SHIFT_HSWISH)


class Conv2dOp(_AccumulatingOp):
    """2-D convolution as ``graph.conv2d`` (weight (M, C/group, KH, KW); depthwise when group
    = C = M), computed as the DPU does: int8 × int8 summed in int64, bias aligned by shift_bias,
    then activation, shift_cut with DPU rounding, and the int8 clamp."""

    name = "quant.conv2d"
    float_op = graph_nn.Conv2dOp
    strides = attr(ArrayOf(Positive, 2), default=ints_attr([1, 1]))
    pads = attr(ArrayOf(NonNegative, 4), default=ints_attr([0, 0, 0, 0]))
    dilations = attr(ArrayOf(Positive, 2), default=ints_attr([1, 1]))
    group = attr(Positive, default=A.IntegerAttr(1))

    def accumulate(self, x, w):
        """The int64 accumulators Σ x·w (before bias, shift and activation)."""
        p = self.param
        return K.conv2d_acc(x, w, p["strides"], p["pads"], p["dilations"], p["group"])


class ConvTranspose2dOp(_AccumulatingOp):
    """2-D transposed convolution as ``graph.conv_transpose2d`` (weight (C, M/group, KH, KW)),
    with the same fixed-point arithmetic as ``quant.conv2d``."""

    name = "quant.conv_transpose2d"
    float_op = graph_nn.ConvTranspose2dOp
    strides = attr(ArrayOf(Positive, 2), default=ints_attr([1, 1]))
    pads = attr(ArrayOf(NonNegative, 4), default=ints_attr([0, 0, 0, 0]))
    dilations = attr(ArrayOf(Positive, 2), default=ints_attr([1, 1]))
    group = attr(Positive, default=A.IntegerAttr(1))
    output_padding = attr(ArrayOf(NonNegative, 2), default=ints_attr([0, 0]))

    def accumulate(self, x, w):
        """The int64 accumulators Σ x·w (before bias, shift and activation)."""
        p = self.param
        return K.conv_transpose2d_acc(x, w, p["strides"], p["pads"], p["dilations"], p["group"],
                                      p["output_padding"])


class DenseOp(_AccumulatingOp):
    """A fully connected layer: ``input`` (N, K) times ``weight`` (M, K) transposed, plus an
    optional ``bias`` (M), giving (N, M); the DPU runs it as a 1x1 convolution, with the same
    fixed-point arithmetic as ``quant.conv2d``."""

    name = "quant.dense"

    @classmethod
    def infer_result_types(cls, operand_types, attributes):
        check_weighted_operands(operand_types)
        x, w = operand_types[:2]
        if x.rank != 2 or w.rank != 2:
            raise ShapeError(f"expects a 2-D input (N, K) and a 2-D weight (M, K), but got "
                             f"{x} and {w}")
        (n, k), (m, k2) = x.shape, w.shape
        if T.DYNAMIC not in (k, k2) and k != k2:
            raise ShapeError(f"input has {k} features but the weight expects {k2}")
        if len(operand_types) == 3 and tuple(operand_types[2].shape) not in ((m,), (T.DYNAMIC,)):
            raise ShapeError(f"bias has shape {tuple(operand_types[2].shape)} but the weight "
                             f"has {m} outputs")
        return [tensor_of([n, m], T.i8)]

    def accumulate(self, x, w):
        """The int64 accumulators Σ x·w (before bias, shift and activation)."""
        return K.dense_acc(x, w)


# -- pooling -------------------------------------------------------------------------------------


class MaxPool2dOp(SameFixPointOp):
    """The maximum of each window, as ``graph.max_pool2d``; integers compare as their values
    do, so the result keeps the input's ``fix_point`` and nothing rounds."""

    name = "quant.max_pool2d"
    float_op = graph_nn.MaxPool2dOp
    input = operand(I8)
    output = result(I8)
    kernel_shape = attr(ArrayOf(Positive, 2))
    strides = attr(ArrayOf(Positive, 2), default=ints_attr([1, 1]))
    pads = attr(ArrayOf(NonNegative, 4), default=ints_attr([0, 0, 0, 0]))
    dilations = attr(ArrayOf(Positive, 2), default=ints_attr([1, 1]))
    ceil_mode = attr(Flag, default=A.IntegerAttr(0))
    fix_point = attr(FixPoint)
    traits = (Pure(),)

    def evaluate(self, x):
        p = self.param
        return [K.max_pool2d(x, p["kernel_shape"], p["strides"], p["pads"], bool(p["ceil_mode"]),
                             p["dilations"])]


class AvgPool2dOp(SameFixPointOp):
    """The DPU's average pool: each window's sum (padding counts as zeros: the divisor is
    always the kernel size) times the hardware multiplier m / 2^s for 1 / (KH · KW), rounded
    with DPU_ROUND (:func:`.kernels.avg_pool_factor`); the result keeps the input's
    ``fix_point``."""

    name = "quant.avg_pool2d"
    float_op = graph_nn.AvgPool2dOp
    input = operand(I8)
    output = result(I8)
    kernel_shape = attr(ArrayOf(Positive, 2))
    strides = attr(ArrayOf(Positive, 2), default=ints_attr([1, 1]))
    pads = attr(ArrayOf(NonNegative, 4), default=ints_attr([0, 0, 0, 0]))
    ceil_mode = attr(Flag, default=A.IntegerAttr(0))
    fix_point = attr(FixPoint)
    traits = (Pure(),)

    def evaluate(self, x):
        p = self.param
        return [K.avg_pool2d(x, p["kernel_shape"], p["strides"], p["pads"], bool(p["ceil_mode"]))]


class GlobalAvgPoolOp(SameFixPointOp):
    """``quant.avg_pool2d`` over all of H and W: (N, C, H, W) -> (N, C, 1, 1)."""

    name = "quant.global_avg_pool"
    float_op = graph_nn.GlobalAvgPoolOp
    input = operand(I8)
    output = result(I8)
    fix_point = attr(FixPoint)
    traits = (Pure(),)

    def evaluate(self, x):
        kernel = tuple(x.shape[2:])
        return [K.avg_pool2d(x, kernel, kernel, (0, 0, 0, 0), False)]


# -- activations ---------------------------------------------------------------------------------


class _ActivationOp(QuantOp):
    """A standalone activation from ``input_fp`` to ``output_fp``; the result has the input's
    shape. relu, relu6 and leaky relu compute finish(q, input_fp - output_fp, activation),
    with input_fp - output_fp in [-15, 15]."""

    input = operand(I8)
    output = result(I8)
    input_fp = attr(FixPoint)
    output_fp = attr(FixPoint)
    traits = (Pure(), SameOperandsAndResultType())
    activation = ""  # the kernels' name for it

    @classmethod
    def infer_result_types(cls, operand_types, attributes):
        return [operand_types[0]]

    def operand_fix_points(self) -> list:
        return [self.param["input_fp"]]

    def output_fix_point(self) -> int:
        return self.param["output_fp"]

    def verify_fix_points(self) -> None:
        p = self.param
        self.check_shift("shift", "input_fp - output_fp", p["input_fp"] - p["output_fp"],
                         SHIFT_WRITE)

    def evaluate(self, x):
        p = self.param
        return [K.finish(x, p["input_fp"] - p["output_fp"], self.activation, p["output_fp"])]


class ReluOp(_ActivationOp):
    """``max(x, 0)``."""

    name = "quant.relu"
    activation = "relu"


class Relu6Op(_ActivationOp):
    """``min(max(x, 0), 6)``: the result clamped to [0, 6 · 2^output_fp]."""

    name = "quant.relu6"
    activation = "relu6"

    def verify_fix_points(self) -> None:
        super().verify_fix_points()
        verify_relu6(self, self.param["output_fp"])


class LeakyReluOp(_ActivationOp):
    """The DPU's leaky relu, slope 26/256 = 0.1015625 on negative values:
    round_shift(q · (26 if q < 0 else 256), input_fp - output_fp + 8)."""

    name = "quant.leaky_relu"
    activation = "leaky_relu"


class HardSigmoidOp(_ActivationOp):
    """The DPU's hard sigmoid relu6(x + 3) · 2731 / 2^14 (:func:`.kernels.hard_sigmoid`), with
    ``input_fp`` as hsigmoid_in: output_fp >= 7 and 14 + input_fp - output_fp in [0, 31]."""

    name = "quant.hard_sigmoid"
    activation = "hard_sigmoid"

    def verify_fix_points(self) -> None:
        p = self.param
        verify_hard_sigmoid(self, p["input_fp"], p["output_fp"])

    def evaluate(self, x):
        p = self.param
        return [K.hard_sigmoid(x, p["input_fp"], p["output_fp"])]


class HardSwishOp(_ActivationOp):
    """The DPU's hard swish x · hsigmoid(x) (:func:`.kernels.hard_swish`), with ``input_fp`` as
    hsigmoid_in: 14 + input_fp - 7 in [0, 31] and input_fp + 7 - output_fp in [0, 15]."""

    name = "quant.hard_swish"
    activation = "hard_swish"

    def verify_fix_points(self) -> None:
        p = self.param
        verify_hard_swish(self, p["input_fp"], p["output_fp"])

    def evaluate(self, x):
        p = self.param
        return [K.hard_swish(x, p["input_fp"], p["output_fp"])]


class PReluOp(QuantOp):
    """PReLU: ``x`` where positive, else ``slope · x``, with int8 slopes (one per channel,
    shape (C, 1, 1), or one for all; numpy broadcasting as ``graph.prelu``) at ``slope_fp``:
    clamp(round_shift(x < 0 ? x · slope : x << slope_fp, input_fp + slope_fp - output_fp))
    (:func:`.kernels.prelu`), with input_fp - output_fp in [-15, 15] and slope_fp in [0, 15].
    It runs on its own (the ALU), not fused into a convolution: see ``docs/quant.md``."""

    name = "quant.prelu"
    float_op = graph_nn.PReluOp
    input = operand(I8)
    slope = operand(I8)
    output = result(I8)
    input_fp = attr(FixPoint)
    slope_fp = attr(FixPoint)
    output_fp = attr(FixPoint)
    traits = (Pure(),)

    def operand_fix_points(self) -> list:
        p = self.param
        return [p["input_fp"], p["slope_fp"]]

    def output_fix_point(self) -> int:
        return self.param["output_fp"]

    @property
    def shift(self) -> int:
        """input_fp + slope_fp - output_fp: the right shift from x · slope to the result."""
        p = self.param
        return p["input_fp"] + p["slope_fp"] - p["output_fp"]

    def verify_fix_points(self) -> None:
        p = self.param
        self.check_shift("shift", "input_fp - output_fp", p["input_fp"] - p["output_fp"],
                         SHIFT_WRITE)
        self.check_shift("slope_fp", "slope_fp", p["slope_fp"], PRELU_SLOPE_FP)

    def evaluate(self, x, slope):
        return [K.prelu(x, slope, self.shift, self.param["slope_fp"])]


NN_OPS = [Conv2dOp, ConvTranspose2dOp, DenseOp, MaxPool2dOp, AvgPool2dOp, GlobalAvgPoolOp,
          ReluOp, Relu6Op, LeakyReluOp, HardSigmoidOp, HardSwishOp, PReluOp]
