"""The DPU's data movement, NHWC int8 at one fix point: concat, nearest upsampling, reshape, and
the two host boundary ops that change layout, ``dpu.to_nhwc`` and ``dpu.to_nchw``.

None of them computes: each keeps its input's fix point (``fix_point``). The boundary ops are the
host's glue around DPU regions; ``to_nhwc(to_nchw(x))`` and ``to_nchw(to_nhwc(x))`` fold to x,
so after the fuse pass (and under ``canonicalize``) only the boundary conversions remain.
"""

from __future__ import annotations

import numpy as np

from xir import attributes as A
from xir import types as T
from xir.dialects.graph.base import ShapeError
from xir.dialects.quant import kernels as K
from xir.dialects.quant.base import I8, FixPoint
from xir.dialects.quant.nn import Positive
from xir.ir import OpResult
from xir.opdef import ArrayOf, IntegerAttrC, StringOf, attr, operand, result, var_operand
from xir.traits import Pure

from .base import (NCHW_TO_NHWC, NHWC_TO_NCHW, SameFixPointDpuOp, check_rank, nchw_type,
                   nhwc_type, to_nchw_array, to_nhwc_array)


class ConcatOp(SameFixPointDpuOp):
    """The inputs joined along ``axis`` of NHWC (3: channels), every input at ``fix_point`` (the
    DPU writes each input into one buffer, without shifting)."""

    name = "dpu.concat"
    inputs = var_operand(I8)
    output = result(I8)
    axis = attr(IntegerAttrC, doc="an NHWC axis, 3 for channels")
    fix_point = attr(FixPoint)
    traits = (Pure(),)

    @classmethod
    def infer_result_types(cls, operand_types, attributes):
        if not operand_types:
            raise ShapeError("expects at least one input")
        for t in operand_types:
            check_rank(t, 4, "each input (N, H, W, C)")
        axis = cls.params(attributes)["axis"]
        if not 0 <= axis < 4:
            raise ShapeError(f"axis {axis} is not an axis of a rank-4 tensor")
        first = operand_types[0].shape
        shape = list(first)
        for t in operand_types[1:]:
            if any(a != b for k, (a, b) in enumerate(zip(first, t.shape)) if k != axis):
                raise ShapeError(f"inputs {operand_types[0]} and {t} differ outside axis {axis}")
            shape[axis] = T.DYNAMIC if T.DYNAMIC in (shape[axis], t.shape[axis]) else \
                shape[axis] + t.shape[axis]
        return [T.TensorType(tuple(shape), T.i8)]

    def evaluate(self, *inputs):
        return [np.concatenate(inputs, axis=self.param["axis"])]


class UpsampleFixOp(SameFixPointDpuOp):
    """Nearest-neighbour upsampling of NHWC by integer ``scale`` [sh, sw] (``quant.resize``):
    out[n, i, j, c] = x[n, i // sh, j // sw, c]."""

    name = "dpu.upsample_fix"
    input = operand(I8, doc="NHWC feature map")
    output = result(I8)
    scale = attr(ArrayOf(Positive, 2), doc="[sh, sw]")
    mode = attr(StringOf("NEAREST"), default=A.StringAttr("NEAREST"))
    fix_point = attr(FixPoint)
    traits = (Pure(),)

    @classmethod
    def infer_result_types(cls, operand_types, attributes):
        (x,) = operand_types
        check_rank(x, 4, "input (N, H, W, C)")
        sh, sw = cls.params(attributes)["scale"]
        n, h, w, c = x.shape
        grow = (lambda d, s: d if d == T.DYNAMIC else d * s)
        return [T.TensorType((n, grow(h, sh), grow(w, sw), c), T.i8)]

    def evaluate(self, x):
        return [to_nhwc_array(K.resize_nearest(to_nchw_array(x), *self.param["scale"]))]


class ReshapeOp(SameFixPointDpuOp):
    """The input's elements, in row-major order, in the shape ``shape`` (the result's; its
    first entry, the batch, may be -1: the input's batch): a reshape inside a DPU region,
    e.g. N×1×1×C ↔ N×C, where NHWC and NCHW orders agree."""

    name = "dpu.reshape"
    input = operand(I8)
    output = result(I8)
    shape = attr(ArrayOf(IntegerAttrC))
    fix_point = attr(FixPoint)
    traits = (Pure(),)

    @classmethod
    def infer_result_types(cls, operand_types, attributes):
        (x,) = operand_types
        shape = tuple(cls.params(attributes)["shape"])
        if not shape or any(d < 0 for d in shape[1:]):
            raise ShapeError(f"shape {list(shape)} must be static but for the batch")
        if T.DYNAMIC not in x.shape[1:] and int(np.prod(x.shape[1:])) != int(np.prod(shape[1:])):
            raise ShapeError(f"cannot reshape {x} into {list(shape)}")
        return [T.TensorType(tuple(x.shape[:1]) + shape[1:], T.i8)]

    def evaluate(self, x):
        return [x.reshape((x.shape[0],) + tuple(self.param["shape"])[1:])]

    def fold(self):
        """reshape(reshape(x)) is one reshape of x, and a reshape to x's own type is x."""
        inner = _producer(self.input)
        if isinstance(inner, ReshapeOp):
            self.set_operand(0, inner.input)
            return [self.output]
        if self.input.type == self.output.type:
            return [self.input]
        return None


class ToNhwcOp(SameFixPointDpuOp):
    """Host glue: an NCHW int8 tensor as NHWC (pure data movement, fix point kept)."""

    name = "dpu.to_nhwc"
    input = operand(I8, doc="NCHW")
    output = result(I8, doc="NHWC")
    fix_point = attr(FixPoint)
    traits = (Pure(),)

    @classmethod
    def infer_result_types(cls, operand_types, attributes):
        return [nhwc_type(operand_types[0])]

    def evaluate(self, x):
        return [np.ascontiguousarray(np.transpose(x, NCHW_TO_NHWC))]

    def fold(self):
        """to_nhwc(to_nchw(x)) is x."""
        inner = _producer(self.input)
        return [inner.input] if isinstance(inner, ToNchwOp) else None


class ToNchwOp(SameFixPointDpuOp):
    """Host glue: an NHWC int8 tensor as NCHW (pure data movement, fix point kept)."""

    name = "dpu.to_nchw"
    input = operand(I8, doc="NHWC")
    output = result(I8, doc="NCHW")
    fix_point = attr(FixPoint)
    traits = (Pure(),)

    @classmethod
    def infer_result_types(cls, operand_types, attributes):
        return [nchw_type(operand_types[0])]

    def evaluate(self, x):
        return [np.ascontiguousarray(np.transpose(x, NHWC_TO_NCHW))]

    def fold(self):
        """to_nchw(to_nhwc(x)) is x."""
        inner = _producer(self.input)
        return [inner.input] if isinstance(inner, ToNhwcOp) else None


def _producer(value):
    return value.owner if isinstance(value, OpResult) else None


TENSOR_OPS = [ConcatOp, UpsampleFixOp, ReshapeOp, ToNhwcOp, ToNchwOp]
