"""Neural-network ops of the graph dialect: convolution, pooling, normalization, activations.

Tensors are NCHW float32. Attribute names and meanings follow ONNX, in snake_case; pads are
``[top, left, bottom, right]`` (ONNX order), and a kernel's shape is implied by its weight.
numpy kernels live in :mod:`.nn_kernels`.
"""

from __future__ import annotations

import numpy as np

from xir import attributes as A
from xir import types as T
from xir.opdef import (ArrayOf, IntegerAttrOf, OfClass, TensorOf, attr, operand, result,
                       var_operand)
from xir.traits import Pure, SameOperandsAndResultType

from . import nn_kernels as K
from .base import GraphOp, ShapeError, check_weighted_operands, float_attr, ints_attr, tensor_of

F32 = TensorOf(T.f32)
FloatAttrC = OfClass((A.FloatAttr,), "float attribute")
Positive = IntegerAttrOf(1, None)
NonNegative = IntegerAttrOf(0, None)
Flag = IntegerAttrOf(0, 1)
DYN = T.DYNAMIC


class NNOp(GraphOp):
    """A neural-network op of the graph dialect (reads its attributes through ``param``)."""


NCHW = "(N, C, H, W)"


def _dims(t: T.TensorType, what: str, layout: str) -> list:
    """The shape of ``t`` with dynamic dims as None, checking its rank against ``layout``."""
    shape, rank = list(t.shape), layout.count(",") + 1
    if len(shape) != rank:
        raise ShapeError(f"{what} must have rank {rank} {layout}, but has rank {len(shape)}")
    return [None if d == DYN else d for d in shape]


def _check_bias(bias: T.TensorType, channels) -> None:
    """A bias holds one value per output channel."""
    shape = tuple(bias.shape)
    if len(shape) != 1 or (DYN not in (shape[0], channels) and shape[0] != channels):
        raise ShapeError(f"bias has shape {shape} but the weight has {channels} output channels")


def _spatial(size, kernel, stride, begin, end, dilation=1, ceil_mode=False, axis="height"):
    """One output spatial size (None if the input size is dynamic); ShapeError if no window fits."""
    if size is None:
        return None
    span = dilation * (kernel - 1) + 1
    if size + begin + end < span:
        raise ShapeError(f"input {axis} {size} padded by {begin}+{end} is smaller than the "
                         f"{'dilated ' if dilation > 1 else ''}kernel {axis} {span}")
    return K.window_out_size(size, kernel, stride, begin, end, dilation, ceil_mode)


# -- convolution ---------------------------------------------------------------------------------


class _ConvolutionOp(NNOp):
    """What both convolutions declare: input, weight, optional bias, strides, pads (top, left,
    bottom, right), dilations and group."""

    input = operand(F32)
    weight = operand(F32)
    bias = var_operand(F32, doc="zero or one bias of shape (M)")
    output = result(F32)
    strides = attr(ArrayOf(Positive, 2), default=ints_attr([1, 1]))
    pads = attr(ArrayOf(NonNegative, 4), default=ints_attr([0, 0, 0, 0]))
    dilations = attr(ArrayOf(Positive, 2), default=ints_attr([1, 1]))
    group = attr(Positive, default=A.IntegerAttr(1))
    traits = (Pure(),)

    _check_operand_count = staticmethod(check_weighted_operands)


class Conv2dOp(_ConvolutionOp):
    """2-D convolution (cross-correlation), as ONNX Conv: ``input`` (N, C, H, W) with ``weight``
    (M, C/group, KH, KW) and an optional ``bias`` (M), giving (N, M, OH, OW) where
    OH = (H + top + bottom - dilation·(KH-1) - 1) / stride + 1, rounded down."""

    name = "graph.conv2d"

    @classmethod
    def infer_result_types(cls, operand_types, attributes):
        cls._check_operand_count(operand_types)
        n, c, h, w = _dims(operand_types[0], "input", NCHW)
        m, cg, kh, kw = _dims(operand_types[1], "weight", "(M, C/group, KH, KW)")
        p = cls.params(attributes)
        (sh, sw), (top, left, bottom, right), (dh, dw) = p["strides"], p["pads"], p["dilations"]
        group = p["group"]
        if kh is None or kw is None or cg is None:
            raise ShapeError("weight must have static channel and kernel dims")
        if c is not None and c != cg * group:
            raise ShapeError(f"input has {c} channels but the weight expects {cg * group} (groups={group})")
        if m is not None and m % group:
            raise ShapeError(f"weight has {m} output channels, which group={group} does not divide")
        if len(operand_types) == 3:
            _check_bias(operand_types[2], DYN if m is None else m)
        oh = _spatial(h, kh, sh, top, bottom, dh, axis="height")
        ow = _spatial(w, kw, sw, left, right, dw, axis="width")
        return [tensor_of([n, m, oh, ow])]

    def evaluate(self, x, w, b=None):
        p = self.param
        return [K.conv2d(x, w, b, p["strides"], p["pads"], p["dilations"], p["group"])]


class ConvTranspose2dOp(_ConvolutionOp):
    """2-D transposed convolution, as ONNX ConvTranspose: ``input`` (N, C, H, W) with ``weight``
    (C, M/group, KH, KW) and an optional ``bias`` (M), giving (N, M, OH, OW) where
    OH = stride·(H-1) + output_padding + dilation·(KH-1) + 1 - top - bottom."""

    name = "graph.conv_transpose2d"
    output_padding = attr(ArrayOf(NonNegative, 2), default=ints_attr([0, 0]))

    @classmethod
    def infer_result_types(cls, operand_types, attributes):
        cls._check_operand_count(operand_types)
        n, c, h, w = _dims(operand_types[0], "input", NCHW)
        wc, mg, kh, kw = _dims(operand_types[1], "weight", "(C, M/group, KH, KW)")
        p = cls.params(attributes)
        (sh, sw), (top, left, bottom, right), (dh, dw) = p["strides"], p["pads"], p["dilations"]
        (oph, opw), group = p["output_padding"], p["group"]
        if None in (wc, mg, kh, kw):
            raise ShapeError("weight must have static dims")
        if c is not None and c != wc:
            raise ShapeError(f"input has {c} channels but the weight expects {wc} (groups={group})")
        if wc % group:
            raise ShapeError(f"weight has {wc} input channels, which group={group} does not divide")
        if oph >= max(sh, dh) or opw >= max(sw, dw):
            raise ShapeError(f"output_padding ({oph}, {opw}) must be smaller than the stride or the "
                             f"dilation on each axis")
        m = mg * group
        if len(operand_types) == 3:
            _check_bias(operand_types[2], m)

        def size(x, k, s, d, op, b, e, axis):
            if x is None:
                return None
            out = s * (x - 1) + op + d * (k - 1) + 1 - b - e
            if out < 1:
                raise ShapeError(f"output {axis} would be {out}: pads {b}+{e} remove the whole output")
            return out

        return [tensor_of([n, m, size(h, kh, sh, dh, oph, top, bottom, "height"),
                           size(w, kw, sw, dw, opw, left, right, "width")])]

    def evaluate(self, x, w, b=None):
        p = self.param
        return [K.conv_transpose2d(x, w, b, p["strides"], p["pads"], p["dilations"], p["group"],
                                   p["output_padding"])]


# -- pooling -------------------------------------------------------------------------------------


class _Pool2dOp(NNOp):
    """What max and average pooling share: shape inference and reading the window attributes
    (each op declares its own operands and attributes: an op's definition is its class body)."""

    @classmethod
    def infer_result_types(cls, operand_types, attributes):
        n, c, h, w = _dims(operand_types[0], "input", NCHW)
        p = cls.params(attributes)
        if p["kernel_shape"] is None:
            raise ShapeError("requires attribute 'kernel_shape'")
        (kh, kw), (sh, sw), (top, left, bottom, right) = p["kernel_shape"], p["strides"], p["pads"]
        ceil_mode, (dh, dw) = bool(p["ceil_mode"]), p.get("dilations", (1, 1))
        if top >= kh or bottom >= kh or left >= kw or right >= kw:
            raise ShapeError(f"pads ({top}, {left}, {bottom}, {right}) must be smaller than the "
                             f"kernel ({kh}, {kw})")
        return [tensor_of([n, c, _spatial(h, kh, sh, top, bottom, dh, ceil_mode, "height"),
                           _spatial(w, kw, sw, left, right, dw, ceil_mode, "width")])]

    def _window(self):
        p = self.param
        return p["kernel_shape"], p["strides"], p["pads"], bool(p["ceil_mode"])


class MaxPool2dOp(_Pool2dOp):
    """The maximum of each window, as ONNX MaxPool (padding never wins); windows may be
    dilated."""

    name = "graph.max_pool2d"
    input = operand(F32)
    output = result(F32)
    kernel_shape = attr(ArrayOf(Positive, 2))
    strides = attr(ArrayOf(Positive, 2), default=ints_attr([1, 1]))
    pads = attr(ArrayOf(NonNegative, 4), default=ints_attr([0, 0, 0, 0]))
    dilations = attr(ArrayOf(Positive, 2), default=ints_attr([1, 1]))
    ceil_mode = attr(Flag, default=A.IntegerAttr(0))
    traits = (Pure(),)

    def evaluate(self, x):
        return [K.max_pool2d(x, *self._window(), self.param["dilations"])]


class AvgPool2dOp(_Pool2dOp):
    """The mean of each window, as ONNX AveragePool; padding counts towards the divisor only
    when ``count_include_pad`` is 1."""

    name = "graph.avg_pool2d"
    input = operand(F32)
    output = result(F32)
    kernel_shape = attr(ArrayOf(Positive, 2))
    strides = attr(ArrayOf(Positive, 2), default=ints_attr([1, 1]))
    pads = attr(ArrayOf(NonNegative, 4), default=ints_attr([0, 0, 0, 0]))
    ceil_mode = attr(Flag, default=A.IntegerAttr(0))
    count_include_pad = attr(Flag, default=A.IntegerAttr(0))
    traits = (Pure(),)

    def evaluate(self, x):
        return [K.avg_pool2d(x, *self._window(), bool(self.param["count_include_pad"]))]


class GlobalAvgPoolOp(NNOp):
    """The mean over all of H and W: (N, C, H, W) -> (N, C, 1, 1)."""

    name = "graph.global_avg_pool"
    input = operand(F32)
    output = result(F32)
    traits = (Pure(),)

    @classmethod
    def infer_result_types(cls, operand_types, attributes):
        n, c, _, _ = _dims(operand_types[0], "input", NCHW)
        return [tensor_of([n, c, 1, 1])]

    def evaluate(self, x):
        return [x.mean(axis=(2, 3), keepdims=True, dtype=np.float64).astype(np.float32)]


# -- normalization -------------------------------------------------------------------------------


class BatchNormOp(NNOp):
    """Inference-mode batch normalization, as ONNX BatchNormalization:
    ``(x - mean) / sqrt(var + epsilon) * scale + bias`` per channel (axis 1)."""

    name = "graph.batch_norm"
    input = operand(F32)
    scale = operand(F32)
    bias = operand(F32)
    mean = operand(F32)
    var = operand(F32)
    output = result(F32)
    epsilon = attr(FloatAttrC, default=float_attr(1e-5))
    traits = (Pure(),)

    @classmethod
    def infer_result_types(cls, operand_types, attributes):
        x = operand_types[0]
        if x.rank < 2:
            raise ShapeError(f"input must have a channel axis (rank >= 2), but has rank {x.rank}")
        c = x.shape[1]
        for what, t in zip(("scale", "bias", "mean", "var"), operand_types[1:]):
            if t.rank != 1 or (DYN not in (c, t.shape[0]) and t.shape[0] != c):
                raise ShapeError(f"{what} has shape {tuple(t.shape)} but the input has {c} channels")
        return [x]

    def evaluate(self, x, scale, bias, mean, var):
        return [K.batch_norm(x, scale, bias, mean, var, self.param["epsilon"])]


class LrnOp(NNOp):
    """Local response normalization across channels, as ONNX LRN:
    ``y = x / (bias + alpha/size · Σ x²)^beta``, the sum over ``size`` neighbouring channels."""

    name = "graph.lrn"
    input = operand(F32)
    output = result(F32)
    size = attr(Positive)
    alpha = attr(FloatAttrC, default=float_attr(1e-4))
    beta = attr(FloatAttrC, default=float_attr(0.75))
    bias = attr(FloatAttrC, default=float_attr(1.0))
    traits = (Pure(), SameOperandsAndResultType())

    @classmethod
    def infer_result_types(cls, operand_types, attributes):
        _dims(operand_types[0], "input", NCHW)
        return [operand_types[0]]

    def evaluate(self, x):
        p = self.param
        return [K.lrn(x, p["size"], p["alpha"], p["beta"], p["bias"])]


class SoftmaxOp(NNOp):
    """``exp(x) / Σ exp(x)`` along ``axis`` alone, as ONNX Softmax from opset 13."""

    name = "graph.softmax"
    input = operand(F32)
    output = result(F32)
    axis = attr(IntegerAttrOf(), default=A.IntegerAttr(-1))
    traits = (Pure(), SameOperandsAndResultType())

    @classmethod
    def infer_result_types(cls, operand_types, attributes):
        rank, axis = operand_types[0].rank, cls.params(attributes)["axis"]
        if not -rank <= axis < rank:
            raise ShapeError(f"axis {axis} is out of range for an input of rank {rank}")
        return [operand_types[0]]

    def evaluate(self, x):
        return [K.softmax(x, self.param["axis"])]


# -- activations ---------------------------------------------------------------------------------


class _ActivationOp(NNOp):
    """An elementwise function of one tensor; the result has the input's type. Each op adds its
    attributes and defines ``apply``."""

    input = operand(F32)
    output = result(F32)
    traits = (Pure(), SameOperandsAndResultType())

    @classmethod
    def infer_result_types(cls, operand_types, attributes):
        return [operand_types[0]]

    def evaluate(self, x):
        return [np.asarray(self.apply(x, self.param), dtype=np.float32)]

    @staticmethod
    def apply(x, p: dict):
        """The function on an array, given the attribute values ``p``."""
        raise NotImplementedError


class ReluOp(_ActivationOp):
    """``max(x, 0)``."""

    name = "graph.relu"

    @staticmethod
    def apply(x, p):
        return np.maximum(x, 0)


class ClipOp(_ActivationOp):
    """``min(max(x, min), max)``; either bound may be absent (relu6 is clip 0..6)."""

    name = "graph.clip"
    min = attr(FloatAttrC, optional=True)
    max = attr(FloatAttrC, optional=True)

    @staticmethod
    def apply(x, p):
        return np.clip(x, -np.inf if p["min"] is None else p["min"], np.inf if p["max"] is None else p["max"])


class LeakyReluOp(_ActivationOp):
    """``x`` where positive, else ``alpha · x``."""

    name = "graph.leaky_relu"
    alpha = attr(FloatAttrC, default=float_attr(0.01))

    @staticmethod
    def apply(x, p):
        return np.where(x >= 0, x, np.float32(p["alpha"]) * x)


class HardSigmoidOp(_ActivationOp):
    """``max(0, min(1, alpha · x + beta))``."""

    name = "graph.hard_sigmoid"
    alpha = attr(FloatAttrC, default=float_attr(0.2))
    beta = attr(FloatAttrC, default=float_attr(0.5))

    @staticmethod
    def apply(x, p):
        return np.clip(np.float32(p["alpha"]) * x + np.float32(p["beta"]), 0, 1)


class HardSwishOp(_ActivationOp):
    """``x · max(0, min(1, x/6 + 1/2))``."""

    name = "graph.hard_swish"

    @staticmethod
    def apply(x, p):
        return x * np.clip(x / np.float32(6) + np.float32(0.5), 0, 1)


class SigmoidOp(_ActivationOp):
    """``1 / (1 + exp(-x))``."""

    name = "graph.sigmoid"

    @staticmethod
    def apply(x, p):
        return 1 / (1 + np.exp(-x.astype(np.float64)))


class TanhOp(_ActivationOp):
    """The hyperbolic tangent."""

    name = "graph.tanh"

    @staticmethod
    def apply(x, p):
        return np.tanh(x)


class PReluOp(NNOp):
    """``x`` where positive, else ``slope · x``; ``slope`` broadcasts to ``x`` (numpy rules,
    one way), as ONNX PRelu."""

    name = "graph.prelu"
    input = operand(F32)
    slope = operand(F32)
    output = result(F32)
    traits = (Pure(),)

    @classmethod
    def infer_result_types(cls, operand_types, attributes):
        x, slope = operand_types
        if slope.rank > x.rank or any(
                s not in (1, d) and DYN not in (s, d)
                for s, d in zip(reversed(slope.shape), reversed(x.shape))):
            raise ShapeError(f"slope of shape {tuple(slope.shape)} does not broadcast to the "
                             f"input's shape {tuple(x.shape)}")
        return [x]

    def evaluate(self, x, slope):
        return [np.where(x >= 0, x, slope * x).astype(np.float32)]


NN_OPS = [
    Conv2dOp, ConvTranspose2dOp, MaxPool2dOp, AvgPool2dOp, GlobalAvgPoolOp, BatchNormOp, LrnOp,
    SoftmaxOp, ReluOp, ClipOp, LeakyReluOp, PReluOp, HardSigmoidOp, HardSwishOp, SigmoidOp, TanhOp,
]
