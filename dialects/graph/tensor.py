"""Tensor and elementwise ops of the graph dialect: constants, broadcasting arithmetic, matrix
products and data movement (reshape, transpose, concat, split, slice, pad, ...).

Every op is f32 in and f32 out; integer shape parameters (ONNX's shape, starts, pads, axes inputs)
are attributes, so shapes are known statically. Attribute names are ONNX's, in snake_case.
"""

from __future__ import annotations

import numpy as np

from xir import attributes as A
from xir import types as T
from xir.opdef import (AnyTensor, ArrayOf, DenseC, IntegerAttrC, IntegerAttrOf, OfClass, StringOf,
                       TensorOf, attr, operand, result, var_operand, var_result)
from xir.traits import Commutative, ConstantLike, Pure, SameOperandsAndResultType

from . import tensor_kernels as K
from .base import GraphOp, ShapeError, get_float, get_int, get_ints, get_str, tensor_of

f32 = T.f32
F32Tensor = TensorOf(f32)
IntArray = ArrayOf(IntegerAttrC)
FloatAttrC = OfClass((A.FloatAttr,), "float attribute")
DYNAMIC = T.DYNAMIC


def _text(shape) -> str:
    return str(tensor_of(shape))


def _axis(axis: int, rank: int, shape, what: str = "axis", extra: int = 0) -> int:
    """``axis`` normalized against ``rank + extra`` (ShapeError naming the tensor if out of range)."""
    normalized = K.normalize_axis(axis, rank + extra)
    if normalized is None:
        raise ShapeError(f"{what} {axis} is out of range for {_text(shape)} "
                         f"(expects [{-(rank + extra)}, {rank + extra - 1}])")
    return normalized


# -- constants ----------------------------------------------------------------------------------


class ConstantOp(GraphOp):
    """A constant tensor held in the ``value`` attribute (inline dense or a named resource).
    Graph ops take f32 constants; other element types feed ``graph.onnx`` ops."""

    name = "graph.constant"
    output = result(AnyTensor)
    value = attr(DenseC)
    traits = (Pure(), ConstantLike())

    @classmethod
    def infer_result_types(cls, operand_types, attributes):
        return [attributes["value"].type]

    def evaluate(self):
        return [np.asarray(self.all_attributes()["value"].to_numpy())]


class IdentityOp(GraphOp):
    """Its input, unchanged."""

    name = "graph.identity"
    input = operand(F32Tensor)
    output = result(F32Tensor)
    traits = (Pure(), SameOperandsAndResultType())

    @classmethod
    def infer_result_types(cls, operand_types, attributes):
        return [operand_types[0]]

    def evaluate(self, x):
        return [x]


# -- elementwise arithmetic ---------------------------------------------------------------------


class _Broadcasting(GraphOp):
    """Shared rule of the binary elementwise ops: numpy (multidirectional) broadcasting."""

    lhs = operand(F32Tensor)
    rhs = operand(F32Tensor)
    output = result(F32Tensor)
    traits = (Pure(),)
    ufunc = None

    @classmethod
    def infer_result_types(cls, operand_types, attributes):
        lhs, rhs = operand_types
        shape = K.broadcast_dims(lhs.shape, rhs.shape)
        if shape is None:
            raise ShapeError(f"cannot broadcast {lhs} with {rhs}")
        return [tensor_of(shape)]

    def evaluate(self, lhs, rhs):
        return [np.asarray(type(self).ufunc(lhs, rhs), dtype=np.float32)]


class AddOp(_Broadcasting):
    """``lhs + rhs``, elementwise with broadcasting."""

    name = "graph.add"
    traits = (Commutative(),)
    ufunc = np.add


class SubOp(_Broadcasting):
    """``lhs - rhs``, elementwise with broadcasting."""

    name = "graph.sub"
    ufunc = np.subtract


class MulOp(_Broadcasting):
    """``lhs * rhs``, elementwise with broadcasting."""

    name = "graph.mul"
    traits = (Commutative(),)
    ufunc = np.multiply


class DivOp(_Broadcasting):
    """``lhs / rhs``, elementwise with broadcasting (IEEE: x/0 is ±inf or nan)."""

    name = "graph.div"
    ufunc = np.divide


# -- matrix products ----------------------------------------------------------------------------


class MatMulOp(GraphOp):
    """Matrix product with numpy ``matmul`` semantics: 1-D operands are promoted to a row (lhs) or
    column (rhs) and the promoted dimension dropped; leading batch dimensions broadcast."""

    name = "graph.matmul"
    lhs = operand(F32Tensor)
    rhs = operand(F32Tensor)
    output = result(F32Tensor)
    traits = (Pure(),)

    @classmethod
    def infer_result_types(cls, operand_types, attributes):
        lhs, rhs = operand_types
        if lhs.rank == 0 or rhs.rank == 0:
            raise ShapeError(f"cannot multiply {lhs} by {rhs}: operands must have rank at least 1")
        a = (1, *lhs.shape) if lhs.rank == 1 else lhs.shape
        b = (*rhs.shape, 1) if rhs.rank == 1 else rhs.shape
        if DYNAMIC not in (a[-1], b[-2]) and a[-1] != b[-2]:
            raise ShapeError(f"cannot multiply {lhs} by {rhs}: contracted dimensions "
                             f"{a[-1]} and {b[-2]} differ")
        batch = K.broadcast_dims(a[:-2], b[:-2])
        if batch is None:
            raise ShapeError(f"cannot multiply {lhs} by {rhs}: batch dimensions do not broadcast")
        shape = (*batch, *([a[-2]] if lhs.rank > 1 else []), *([b[-1]] if rhs.rank > 1 else []))
        return [tensor_of(shape)]

    def evaluate(self, lhs, rhs):
        return [np.asarray(np.matmul(lhs, rhs), dtype=np.float32)]


class GemmOp(GraphOp):
    """``alpha * A' @ B' + beta * C`` with ``A'`` = A or Aᵀ (``trans_a``), ``B'`` likewise, for
    2-D A and B; the optional C broadcasts to the M×N product."""

    name = "graph.gemm"
    a = operand(F32Tensor)
    b = operand(F32Tensor)
    c = var_operand(F32Tensor, doc="the optional addend C (zero or one operand)")
    output = result(F32Tensor)
    alpha = attr(FloatAttrC, default=A.FloatAttr(1.0, f32))
    beta = attr(FloatAttrC, default=A.FloatAttr(1.0, f32))
    trans_a = attr(IntegerAttrOf(0, 1), default=A.IntegerAttr(0))
    trans_b = attr(IntegerAttrOf(0, 1), default=A.IntegerAttr(0))
    traits = (Pure(),)

    @classmethod
    def infer_result_types(cls, operand_types, attributes):
        a, b, *c = operand_types
        if len(c) > 1:
            raise ShapeError(f"expects at most one addend C, but got {len(c)}")
        if a.rank != 2 or b.rank != 2:
            raise ShapeError(f"expects 2-D A and B, but got {a} and {b}")
        m, k = a.shape[::-1] if get_int(attributes, "trans_a", 0) else a.shape
        k2, n = b.shape[::-1] if get_int(attributes, "trans_b", 0) else b.shape
        if DYNAMIC not in (k, k2) and k != k2:
            raise ShapeError(f"cannot multiply {a} by {b} (trans_a = "
                             f"{get_int(attributes, 'trans_a', 0)}, trans_b = "
                             f"{get_int(attributes, 'trans_b', 0)}): contracted dimensions "
                             f"{k} and {k2} differ")
        if c and not K.broadcasts_to(c[0].shape, (m, n)):
            raise ShapeError(f"cannot broadcast C {c[0]} to the product {_text((m, n))}")
        return [tensor_of((m, n))]

    def evaluate(self, a, b, c=None):
        attrs = self.all_attributes()
        a = a.T if get_int(attrs, "trans_a", 0) else a
        b = b.T if get_int(attrs, "trans_b", 0) else b
        y = np.float32(get_float(attrs, "alpha", 1.0)) * (a @ b)
        if c is not None:
            y = y + np.float32(get_float(attrs, "beta", 1.0)) * c
        return [y.astype(np.float32)]


# -- reshaping ----------------------------------------------------------------------------------


class FlattenOp(GraphOp):
    """The 2-D tensor (product of dims before ``axis``, product of dims from ``axis`` on);
    ``axis`` is in [-rank, rank], a negative one counting from the end."""

    name = "graph.flatten"
    input = operand(F32Tensor)
    output = result(F32Tensor)
    axis = attr(IntegerAttrC, default=A.IntegerAttr(1))
    traits = (Pure(),)

    @classmethod
    def infer_result_types(cls, operand_types, attributes):
        shape = operand_types[0].shape
        axis = get_int(attributes, "axis", 1)
        if not -len(shape) <= axis <= len(shape):
            raise ShapeError(f"axis {axis} is out of range for {_text(shape)} "
                             f"(expects [{-len(shape)}, {len(shape)}])")
        axis = axis + len(shape) if axis < 0 else axis
        return [tensor_of((K.product(shape[:axis]), K.product(shape[axis:])))]

    def evaluate(self, x):
        return [x.reshape(self.output.type.shape)]


def _reshaped(shape: tuple, target: tuple, allowzero: int) -> tuple:
    """ONNX Reshape's ``shape`` rules: 0 copies the input dim (unless ``allowzero``), one -1 is
    inferred from the element count."""
    if target.count(-1) > 1:
        raise ShapeError(f"shape [{', '.join(map(str, target))}] has more than one -1")
    if any(d < -1 for d in target):
        raise ShapeError(f"shape [{', '.join(map(str, target))}] has a negative dimension other than -1")
    if allowzero and 0 in target and -1 in target:
        raise ShapeError(f"shape [{', '.join(map(str, target))}] has both 0 and -1, "
                         f"which allowzero = 1 forbids")
    out = []
    for i, d in enumerate(target):
        if d == 0 and not allowzero:
            if i >= len(shape):
                raise ShapeError(f"shape [{', '.join(map(str, target))}] copies dimension {i} "
                                 f"of {_text(shape)}, which has rank {len(shape)}")
            d = shape[i]
        out.append(d)
    infer_at = target.index(-1) if -1 in target else None
    # Dimensions copied through by a 0 cancel between input and output: they may be dynamic
    # (a batch) without hiding the size of the -1 dimension.
    copied = {i for i, d in enumerate(target) if d == 0 and not allowzero}
    total = K.product([d for i, d in enumerate(shape) if i not in copied])
    known = K.product([d for i, d in enumerate(out) if i not in copied and i != infer_at])
    if infer_at is not None:
        if DYNAMIC in (total, known):
            out[infer_at] = DYNAMIC
            return tuple(out)
        if known == 0 or total % known:
            raise ShapeError(f"cannot reshape {_text(shape)} to [{', '.join(map(str, target))}]: "
                             f"{_elements(total, copied, shape)} do not divide into {known}")
        out[infer_at] = total // known
    elif DYNAMIC not in (total, known) and total != known:
        raise ShapeError(f"cannot reshape {_text(shape)} ({_elements(total, copied, shape)}) to "
                         f"[{', '.join(map(str, target))}] ({_elements(known, copied, shape)})")
    return tuple(out)


def _elements(count: int, copied: set, shape: tuple) -> str:
    """How many elements ``count`` is, saying so when it leaves out dynamic copied dimensions."""
    if any(shape[i] == DYNAMIC for i in copied):
        return f"{count} elements besides the copied dimensions"
    return f"{count * K.product([shape[i] for i in copied])} elements"


class ReshapeOp(GraphOp):
    """The input's elements in row-major order, in the shape ``shape`` (ONNX rules: 0 copies the
    input dimension unless ``allowzero`` = 1, and one -1 is inferred)."""

    name = "graph.reshape"
    input = operand(F32Tensor)
    output = result(F32Tensor)
    shape = attr(IntArray)
    allowzero = attr(IntegerAttrOf(0, 1), default=A.IntegerAttr(0))
    traits = (Pure(),)

    @classmethod
    def infer_result_types(cls, operand_types, attributes):
        return [tensor_of(_reshaped(operand_types[0].shape, get_ints(attributes, "shape"),
                                    get_int(attributes, "allowzero", 0)))]

    def evaluate(self, x):
        attrs = self.all_attributes()
        return [x.reshape(_reshaped(x.shape, get_ints(attrs, "shape"), get_int(attrs, "allowzero", 0)))]


class TransposeOp(GraphOp):
    """The input with its dimensions permuted: output dim i is input dim ``perm[i]`` (reversed
    when ``perm`` is absent)."""

    name = "graph.transpose"
    input = operand(F32Tensor)
    output = result(F32Tensor)
    perm = attr(IntArray, optional=True)
    traits = (Pure(),)

    @staticmethod
    def _perm(shape, attributes) -> tuple:
        perm = get_ints(attributes, "perm", tuple(reversed(range(len(shape)))))
        if sorted(perm) != list(range(len(shape))):
            raise ShapeError(f"perm [{', '.join(map(str, perm))}] is not a permutation of the "
                             f"dimensions of {_text(shape)}")
        return perm

    @classmethod
    def infer_result_types(cls, operand_types, attributes):
        shape = operand_types[0].shape
        return [tensor_of([shape[p] for p in cls._perm(shape, attributes)])]

    def evaluate(self, x):
        return [np.transpose(x, self._perm(x.shape, self.all_attributes()))]


class SqueezeOp(GraphOp):
    """The input without the size-1 dimensions ``axes`` (every size-1 dimension if absent)."""

    name = "graph.squeeze"
    input = operand(F32Tensor)
    output = result(F32Tensor)
    axes = attr(IntArray, optional=True)
    traits = (Pure(),)

    @staticmethod
    def _shape(shape, attributes) -> tuple:
        axes = get_ints(attributes, "axes")
        if axes is None:
            return tuple(d for d in shape if d != 1)
        axes = {_axis(a, len(shape), shape) for a in axes}
        for a in sorted(axes):
            if shape[a] not in (1, DYNAMIC):
                raise ShapeError(f"cannot squeeze axis {a} of {_text(shape)}: its size is {shape[a]}, not 1")
        return tuple(d for i, d in enumerate(shape) if i not in axes)

    @classmethod
    def infer_result_types(cls, operand_types, attributes):
        return [tensor_of(cls._shape(operand_types[0].shape, attributes))]

    def evaluate(self, x):
        return [x.reshape(self._shape(x.shape, self.all_attributes()))]


class UnsqueezeOp(GraphOp):
    """The input with size-1 dimensions inserted at ``axes`` (indices into the output)."""

    name = "graph.unsqueeze"
    input = operand(F32Tensor)
    output = result(F32Tensor)
    axes = attr(IntArray)
    traits = (Pure(),)

    @staticmethod
    def _shape(shape, attributes) -> tuple:
        axes = get_ints(attributes, "axes")
        rank = len(shape) + len(axes)
        normalized = [_axis(a, len(shape), shape, extra=len(axes)) for a in axes]
        if len(set(normalized)) != len(normalized):
            raise ShapeError(f"axes [{', '.join(map(str, axes))}] repeat an axis")
        dims = iter(shape)
        return tuple(1 if i in normalized else next(dims) for i in range(rank))

    @classmethod
    def infer_result_types(cls, operand_types, attributes):
        return [tensor_of(cls._shape(operand_types[0].shape, attributes))]

    def evaluate(self, x):
        return [x.reshape(self._shape(x.shape, self.all_attributes()))]


# -- joining and cutting ------------------------------------------------------------------------


class ConcatOp(GraphOp):
    """The inputs joined along ``axis``; all other dimensions must agree."""

    name = "graph.concat"
    inputs = var_operand(F32Tensor)
    output = result(F32Tensor)
    axis = attr(IntegerAttrC)
    traits = (Pure(),)

    @classmethod
    def infer_result_types(cls, operand_types, attributes):
        if not operand_types:
            raise ShapeError("expects at least one input")
        first = operand_types[0]
        axis = _axis(get_int(attributes, "axis"), first.rank, first.shape)
        total = 0
        for t in operand_types:
            if t.rank != first.rank:
                raise ShapeError(f"cannot concatenate {first} with {t}: their ranks differ")
            if any(
                    i != axis and DYNAMIC not in (x, y) and x != y
                    for i, (x, y) in enumerate(zip(t.shape, first.shape))):
                raise ShapeError(f"cannot concatenate {first} with {t} along axis {axis}: "
                                 f"the other dimensions differ")
            total = DYNAMIC if DYNAMIC in (total, t.shape[axis]) else total + t.shape[axis]
        return [tensor_of((*first.shape[:axis], total, *first.shape[axis + 1:]))]

    def evaluate(self, *inputs):
        axis = get_int(self.all_attributes(), "axis")
        return [np.concatenate(inputs, axis=axis)]


class SplitOp(GraphOp):
    """The input cut along ``axis`` into pieces of sizes ``split``, or into ``num_outputs``
    equal pieces (of ceil(dim / num_outputs), the last one smaller)."""

    name = "graph.split"
    input = operand(F32Tensor)
    outputs = var_result(F32Tensor)
    axis = attr(IntegerAttrC, default=A.IntegerAttr(0))
    split = attr(IntArray, optional=True)
    num_outputs = attr(IntegerAttrC, optional=True)
    traits = (Pure(),)

    @staticmethod
    def _sizes(shape, attributes) -> tuple[int, list[int]]:
        axis = _axis(get_int(attributes, "axis", 0), len(shape), shape)
        dim = shape[axis]
        sizes = get_ints(attributes, "split")
        count = get_int(attributes, "num_outputs")
        if (sizes is None) == (count is None):
            raise ShapeError("expects exactly one of 'split' and 'num_outputs'")
        if sizes is None:
            if count < 1:
                raise ShapeError(f"num_outputs must be at least 1, but got {count}")
            if dim == DYNAMIC:
                return axis, [DYNAMIC] * count
            if count > dim:
                raise ShapeError(f"cannot split axis {axis} of {_text(shape)} into {count} pieces")
            return axis, K.split_sizes(dim, count)
        if any(s < 0 for s in sizes) or dim != DYNAMIC and sum(sizes) != dim:
            raise ShapeError(f"split [{', '.join(map(str, sizes))}] does not add up to dimension "
                             f"{axis} of {_text(shape)}")
        return axis, list(sizes)

    @classmethod
    def infer_result_types(cls, operand_types, attributes):
        shape = operand_types[0].shape
        axis, sizes = cls._sizes(shape, attributes)
        return [tensor_of((*shape[:axis], s, *shape[axis + 1:])) for s in sizes]

    def evaluate(self, x):
        axis, sizes = self._sizes(x.shape, self.all_attributes())
        return np.split(x, np.cumsum(sizes)[:-1], axis=axis)


class SliceOp(GraphOp):
    """ONNX Slice with constant parameters: for each of ``axes`` (all, by default), the elements
    from ``starts`` to ``ends`` (exclusive) by ``steps`` (1 by default); negative indices count
    from the end and bounds are clamped to the axis."""

    name = "graph.slice"
    input = operand(F32Tensor)
    output = result(F32Tensor)
    starts = attr(IntArray)
    ends = attr(IntArray)
    axes = attr(IntArray, optional=True)
    steps = attr(IntArray, optional=True)
    traits = (Pure(),)

    @staticmethod
    def _params(shape, attributes):
        starts, ends = get_ints(attributes, "starts"), get_ints(attributes, "ends")
        axes = get_ints(attributes, "axes", range(len(starts)))
        steps = get_ints(attributes, "steps", [1] * len(starts))
        if not len(starts) == len(ends) == len(axes) == len(steps):
            raise ShapeError(f"starts, ends, axes and steps have different lengths "
                             f"({len(starts)}, {len(ends)}, {len(axes)}, {len(steps)})")
        normalized = [_axis(a, len(shape), shape) for a in axes]
        if len(set(normalized)) != len(normalized):
            raise ShapeError(f"axes [{', '.join(map(str, axes))}] repeat an axis")
        axes = normalized
        if 0 in steps:
            raise ShapeError("steps must not be 0")
        return starts, ends, axes, steps

    @classmethod
    def infer_result_types(cls, operand_types, attributes):
        shape = list(operand_types[0].shape)
        for start, end, axis, step in zip(*cls._params(shape, attributes)):
            if shape[axis] != DYNAMIC:
                shape[axis] = K.slice_bounds(shape[axis], start, end, step)[2]
        return [tensor_of(shape)]

    def evaluate(self, x):
        return [K.slice_array(x, *self._params(x.shape, self.all_attributes()))]


class PadOp(GraphOp):
    """The input padded by ``pads`` = [begin_0, ..., begin_n, end_0, ..., end_n] (negative pads
    crop), filled with ``value`` (``mode`` = constant), the mirror image without the edge
    (reflect) or the edge repeated (edge)."""

    name = "graph.pad"
    input = operand(F32Tensor)
    output = result(F32Tensor)
    pads = attr(IntArray)
    mode = attr(StringOf("constant", "reflect", "edge"), default=A.StringAttr("constant"))
    value = attr(FloatAttrC, default=A.FloatAttr(0.0, f32))
    traits = (Pure(),)

    @classmethod
    def infer_result_types(cls, operand_types, attributes):
        shape = operand_types[0].shape
        pads = get_ints(attributes, "pads")
        mode = get_str(attributes, "mode", "constant")
        if len(pads) != 2 * len(shape):
            raise ShapeError(f"expects {2 * len(shape)} pads for {_text(shape)}, but got {len(pads)}")
        out = []
        for d, begin, end in zip(shape, pads[:len(shape)], pads[len(shape):]):
            if d == DYNAMIC:
                out.append(d)
                continue
            if mode != "constant" and max(begin, end) > 0 and d == 0:
                raise ShapeError(f"cannot pad an empty dimension of {_text(shape)} in {mode} mode")
            if mode == "reflect" and max(begin, end) >= d:
                raise ShapeError(f"reflect pads [{begin}, {end}] must be smaller than the "
                                 f"dimension {d} of {_text(shape)}")
            if d + begin + end < 0:
                raise ShapeError(f"pads [{begin}, {end}] crop more than the dimension {d} of {_text(shape)}")
            out.append(d + begin + end)
        return [tensor_of(out)]

    def evaluate(self, x):
        attrs = self.all_attributes()
        return [K.pad_array(x, get_ints(attrs, "pads"), get_str(attrs, "mode", "constant"),
                            get_float(attrs, "value", 0.0))]


# -- reductions and resampling ------------------------------------------------------------------


class ReduceMeanOp(GraphOp):
    """The mean over ``axes`` (all, if absent), keeping them as size 1 when ``keepdims`` = 1."""

    name = "graph.reduce_mean"
    input = operand(F32Tensor)
    output = result(F32Tensor)
    axes = attr(IntArray, optional=True)
    keepdims = attr(IntegerAttrOf(0, 1), default=A.IntegerAttr(1))
    traits = (Pure(),)

    @staticmethod
    def _axes(shape, attributes) -> tuple:
        axes = get_ints(attributes, "axes", range(len(shape)))
        normalized = tuple(sorted({_axis(a, len(shape), shape) for a in axes}))
        if len(normalized) != len(axes):
            raise ShapeError(f"axes [{', '.join(map(str, axes))}] repeat an axis")
        return normalized

    @classmethod
    def infer_result_types(cls, operand_types, attributes):
        shape = operand_types[0].shape
        axes = cls._axes(shape, attributes)
        keep = get_int(attributes, "keepdims", 1)
        return [tensor_of([1 if i in axes else d for i, d in enumerate(shape) if keep or i not in axes])]

    def evaluate(self, x):
        attrs = self.all_attributes()
        keep = bool(get_int(attrs, "keepdims", 1))
        mean = np.mean(x, axis=self._axes(x.shape, attrs), keepdims=keep, dtype=np.float64)
        return [np.asarray(mean, dtype=np.float32)]


class ResizeOp(GraphOp):
    """ONNX Resize with constant ``scales`` (float per dim) or ``sizes``: nearest or (multi)linear
    interpolation, with ONNX's ``coordinate_transformation_mode`` and ``nearest_mode``."""

    name = "graph.resize"
    input = operand(F32Tensor)
    output = result(F32Tensor)
    scales = attr(ArrayOf(FloatAttrC), optional=True)
    sizes = attr(IntArray, optional=True)
    mode = attr(StringOf("nearest", "linear"), default=A.StringAttr("nearest"))
    coordinate_transformation_mode = attr(
        StringOf("half_pixel", "asymmetric", "align_corners", "pytorch_half_pixel"),
        default=A.StringAttr("half_pixel"))
    nearest_mode = attr(StringOf("round_prefer_floor", "round_prefer_ceil", "floor", "ceil"),
                        default=A.StringAttr("round_prefer_floor"))
    traits = (Pure(),)

    @staticmethod
    def _plan(shape, attributes) -> tuple[list, list]:
        scales, sizes = attributes.get("scales"), get_ints(attributes, "sizes")
        if (scales is None) == (sizes is None):
            raise ShapeError("expects exactly one of 'scales' and 'sizes'")
        if scales is not None:
            scales = [float(np.float32(s.value)) for s in scales]
            if len(scales) != len(shape) or any(s <= 0 for s in scales):
                raise ShapeError(f"expects {len(shape)} positive scales for {_text(shape)}, "
                                 f"but got {len(scales)}")
            sizes = [d if d == DYNAMIC else int(np.floor(d * np.float32(s)))
                     for d, s in zip(shape, scales)]
            return sizes, scales
        if len(sizes) != len(shape) or any(s <= 0 for s in sizes):
            raise ShapeError(f"expects {len(shape)} positive sizes for {_text(shape)}, but got {len(sizes)}")
        return list(sizes), [s / d if d not in (0, DYNAMIC) else 1.0 for s, d in zip(sizes, shape)]

    @classmethod
    def infer_result_types(cls, operand_types, attributes):
        return [tensor_of(cls._plan(operand_types[0].shape, attributes)[0])]

    def evaluate(self, x):
        attrs = self.all_attributes()
        sizes, scales = self._plan(x.shape, attrs)
        return [K.resize_array(x, sizes, scales, get_str(attrs, "mode", "nearest"),
                               get_str(attrs, "coordinate_transformation_mode", "half_pixel"),
                               get_str(attrs, "nearest_mode", "round_prefer_floor"))]


TENSOR_OPS = [
    ConstantOp, IdentityOp, AddOp, SubOp, MulOp, DivOp, MatMulOp, GemmOp, FlattenOp, ReshapeOp,
    TransposeOp, SqueezeOp, UnsqueezeOp, ConcatOp, SplitOp, SliceOp, PadOp, ReduceMeanOp, ResizeOp,
]
