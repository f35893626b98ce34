"""Quantized tensor ops: constants, the float boundary (quantize, dequantize, fix), eltwise add
and multiply, and data movement (concat, reshape, flatten, pad, resize).
"""

from __future__ import annotations

import numpy as np

from xir import attributes as A
from xir import types as T
from xir.dialects.graph import tensor as graph_tensor
from xir.dialects.graph.base import ShapeError, tensor_of
from xir.dialects.graph.tensor_kernels import pad_array
from xir.opdef import (ArrayOf, DenseC, IntegerAttrC, IntegerAttrOf, StringOf, TensorOf, attr,
                       operand, result, var_operand)
from xir.traits import ConstantLike, Pure

from . import kernels as K
from .base import F32, I8, SHIFT_READ, SHIFT_WRITE, FixPoint, QuantOp, RoundMode, SameFixPointOp

EltwiseActivation = StringOf("none", "relu", "leaky_relu")
NONE = A.StringAttr("none")


def _same_shape(element: T.Type):
    """A shape rule: the result is the (single) operand's shape with ``element`` elements."""
    @classmethod
    def infer_result_types(cls, operand_types, attributes):
        return [T.TensorType(operand_types[0].shape, element)]
    return infer_result_types


# -- constants and the float boundary ------------------------------------------------------------


class ConstantOp(QuantOp):
    """An int8 (weights, biases) or int32 tensor held in ``value`` (inline dense or a named
    resource), as ``graph.constant``; ``fix_point``, when given, is the fix point its consumers
    must read it at."""

    name = "quant.constant"
    output = result(TensorOf(T.i8, T.i32))
    value = attr(DenseC)
    fix_point = attr(FixPoint, optional=True)
    traits = (Pure(), ConstantLike())

    @classmethod
    def infer_result_types(cls, operand_types, attributes):
        return [attributes["value"].type]

    def output_fix_point(self) -> int | None:
        return self.param["fix_point"]

    def evaluate(self):
        return [np.asarray(self.all_attributes()["value"].to_numpy())]


class QuantizeOp(QuantOp):
    """float32 to int8: clamp(round(x · 2^fix_point), -128, 127), ties by ``round_mode``
    (STD_ROUND, the rule for a model's input, unless told otherwise)."""

    name = "quant.quantize"
    input = operand(F32)
    output = result(I8)
    fix_point = attr(FixPoint)
    round_mode = attr(RoundMode, default=A.StringAttr(K.STD_ROUND))
    traits = (Pure(),)
    infer_result_types = _same_shape(T.i8)

    def output_fix_point(self) -> int:
        return self.param["fix_point"]

    def evaluate(self, x):
        p = self.param
        return [K.fix(x, p["fix_point"], 8, p["round_mode"]).astype(np.int8)]


class DequantizeOp(QuantOp):
    """int8 to float32: q · 2^-fix_point (exact)."""

    name = "quant.dequantize"
    input = operand(I8)
    output = result(F32)
    fix_point = attr(FixPoint)
    traits = (Pure(),)
    infer_result_types = _same_shape(T.f32)

    def operand_fix_points(self) -> list:
        return [self.param["fix_point"]]

    def evaluate(self, q):
        return [K.to_float(q, self.param["fix_point"])]


class FixOp(QuantOp):
    """Fake quantization, float32 to float32: clamp(round(x · 2^fp), -2^(b-1), 2^(b-1) - 1) ·
    2^-fp with b = ``bit_width``, ties by ``round_mode``: what float-domain simulation of the
    DPU and ONNX QuantizeLinear/DequantizeLinear pairs compute."""

    name = "quant.fix"
    input = operand(F32)
    output = result(F32)
    fix_point = attr(FixPoint)
    bit_width = attr(IntegerAttrOf(2, 16), default=A.IntegerAttr(8))
    round_mode = attr(RoundMode, default=A.StringAttr(K.DPU_ROUND))
    traits = (Pure(),)
    infer_result_types = _same_shape(T.f32)

    def evaluate(self, x):
        p = self.param
        q = K.fix(x, p["fix_point"], p["bit_width"], p["round_mode"])
        return [np.ldexp(q.astype(np.float64), -p["fix_point"]).astype(np.float32)]


# -- eltwise -------------------------------------------------------------------------------------


class _EltwiseOp(QuantOp):
    """What eltwise add and multiply share: two int8 operands with numpy broadcasting, read at
    ``input_fps``, written at ``output_fp``, with an optional fused relu or leaky relu."""

    float_op = graph_tensor.AddOp
    lhs = operand(I8)
    rhs = operand(I8)
    output = result(I8)
    input_fps = attr(ArrayOf(FixPoint, 2))
    output_fp = attr(FixPoint)
    activation = attr(EltwiseActivation, default=NONE)
    traits = (Pure(),)  # not Commutative: input_fps follow the operand order

    def operand_fix_points(self) -> list:
        return list(self.param["input_fps"])

    def output_fix_point(self) -> int:
        return self.param["output_fp"]


class AddOp(_EltwiseOp):
    """The DPU's eltwise add. With fa, fb the input fix points and fo the output's:
    shift_read_k = f_k - min(fa, fb) in [0, 15] aligns the inputs (right shifts, floor, after 2
    guard bits), shift_write = min(fa, fb) - fo in [-15, 15] writes the sum:
    out = finish(((a << 2) >> shift_read_a) + ((b << 2) >> shift_read_b), shift_write + 2)."""

    name = "quant.add"

    def verify_fix_points(self) -> None:
        fps, fo = self.param["input_fps"], self.param["output_fp"]
        for k, fp in enumerate(fps):
            self.check_shift(f"shift_read #{k}", "input_fps[k] - min(input_fps)", fp - min(fps),
                             SHIFT_READ)
        self.check_shift("shift_write", "min(input_fps) - output_fp", min(fps) - fo, SHIFT_WRITE)

    def evaluate(self, a, b):
        fps, fo = self.param["input_fps"], self.param["output_fp"]
        low = min(fps)
        return [K.eltwise_add((a, b), [fp - low for fp in fps], low - fo, self.param["activation"])]


class MulOp(_EltwiseOp):
    """The DPU's eltwise multiply: out = finish(a · b, shift_write) with
    shift_write = fa + fb - fo in [-15, 15]."""

    name = "quant.mul"

    def verify_fix_points(self) -> None:
        fps, fo = self.param["input_fps"], self.param["output_fp"]
        self.check_shift("shift_write", "sum(input_fps) - output_fp", sum(fps) - fo, SHIFT_WRITE)

    def evaluate(self, a, b):
        fps, fo = self.param["input_fps"], self.param["output_fp"]
        return [K.eltwise_mul((a, b), sum(fps) - fo, self.param["activation"])]


# -- data movement -------------------------------------------------------------------------------


class ConcatOp(QuantOp):
    """The inputs joined along ``axis``, as ``graph.concat``. The DPU concatenates by writing
    each input into one buffer, so every input must already be at the output's fix point."""

    name = "quant.concat"
    float_op = graph_tensor.ConcatOp
    inputs = var_operand(I8)
    output = result(I8)
    axis = attr(IntegerAttrC)
    input_fps = attr(ArrayOf(FixPoint))
    output_fp = attr(FixPoint)
    traits = (Pure(),)

    def operand_fix_points(self) -> list:
        return list(self.param["input_fps"])

    def output_fix_point(self) -> int:
        return self.param["output_fp"]

    def verify_fix_points(self) -> None:
        fps, fo = self.param["input_fps"], self.param["output_fp"]
        if len(fps) != len(self.inputs):
            raise self.error(f"has {len(self.inputs)} inputs but {len(fps)} input_fps")
        for k, fp in enumerate(fps):
            if fp != fo:
                raise self.error(f"input #{k} has fix point {fp}, but concat needs every input "
                                 f"at the output's fix point {fo}")

    def evaluate(self, *inputs):
        return [np.concatenate(inputs, axis=self.param["axis"])]


class ReshapeOp(SameFixPointOp):
    """The input's elements in the shape ``shape`` (``graph.reshape``'s rules)."""

    name = "quant.reshape"
    float_op = graph_tensor.ReshapeOp
    input = operand(I8)
    output = result(I8)
    shape = attr(ArrayOf(IntegerAttrC))
    allowzero = attr(IntegerAttrOf(0, 1), default=A.IntegerAttr(0))
    fix_point = attr(FixPoint)
    traits = (Pure(),)

    def evaluate(self, x):
        return graph_tensor.ReshapeOp.evaluate(self, x)


class FlattenOp(SameFixPointOp):
    """The input as a 2-D tensor split at ``axis`` (``graph.flatten``'s rules)."""

    name = "quant.flatten"
    float_op = graph_tensor.FlattenOp
    input = operand(I8)
    output = result(I8)
    axis = attr(IntegerAttrC, default=A.IntegerAttr(1))
    fix_point = attr(FixPoint)
    traits = (Pure(),)

    def evaluate(self, x):
        return [x.reshape(self.output.type.shape)]


class PadOp(SameFixPointOp):
    """The input padded with zeros by ``pads`` = [begin_0, ..., end_0, ...] (``graph.pad``'s
    rules, constant mode)."""

    name = "quant.pad"
    float_op = graph_tensor.PadOp
    input = operand(I8)
    output = result(I8)
    pads = attr(ArrayOf(IntegerAttrC))
    fix_point = attr(FixPoint)
    traits = (Pure(),)

    def evaluate(self, x):
        return [pad_array(x, self.param["pads"], "constant", 0).astype(np.int8)]


class ResizeOp(SameFixPointOp):
    """Nearest-neighbour upsampling of NCHW by integer ``scales`` [SH, SW]:
    out[n, c, i, j] = x[n, c, i // SH, j // SW] (ONNX nearest with integer scales)."""

    name = "quant.resize"
    input = operand(I8)
    output = result(I8)
    scales = attr(ArrayOf(IntegerAttrOf(1, None), 2))
    fix_point = attr(FixPoint)
    traits = (Pure(),)

    @classmethod
    def infer_result_types(cls, operand_types, attributes):
        x = operand_types[0]
        if x.rank != 4:
            raise ShapeError(f"input must have rank 4 (N, C, H, W), but has rank {x.rank}")
        sh, sw = cls.params(attributes)["scales"]
        n, c, h, w = x.shape
        scale = (lambda d, s: d if d == T.DYNAMIC else d * s)
        return [tensor_of([n, c, scale(h, sh), scale(w, sw)], T.i8)]

    def evaluate(self, x):
        return [K.resize_nearest(x, *self.param["scales"])]


TENSOR_OPS = [ConstantOp, QuantizeOp, DequantizeOp, FixOp, AddOp, MulOp, ConcatOp, ReshapeOp,
              FlattenOp, PadOp, ResizeOp]
