"""ONNX → graph dialect: one converter per ONNX op type.

A converter takes the importer, the node, its attributes (Python values) and its inputs (numpy
arrays for known constants, IR values otherwise, None for omitted optional inputs) and returns
one entry per node output. :data:`FOLDERS` compute shape-like ops with numpy when all their
inputs are constants; :data:`CONVERTERS` build graph ops.
"""

from __future__ import annotations

import numpy as np

from xir import attributes as A
from xir import types as T
from xir.dialects.graph.base import float_attr, ints_attr

DYN = T.DYNAMIC


def _int(v) -> A.IntegerAttr:
    return A.IntegerAttr(int(v))


def _str(v) -> A.StringAttr:
    return A.StringAttr(v)


def _ints(ctx, x, what, allow_holes=False) -> list[int]:
    if not allow_holes and source_dims(ctx, x) is not None:
        raise ctx.unsupported(f"{what} depends on a dynamic dimension")
    return [int(v) for v in np.asarray(ctx.const(x, what)).reshape(-1)]


# -- constant folding ----------------------------------------------------------------------------


def _onnx_cast(ctx, to: int):
    return ctx.onnx.helper.tensor_dtype_to_np_dtype(to)


def _slice_np(data, starts, ends, axes, steps):
    index = [slice(None)] * data.ndim
    for s, e, a, st in zip(starts, ends, axes, steps):
        index[a] = slice(s, e, st)
    return data[tuple(index)]


def _slice_params(ctx, attrs, ins):
    """(starts, ends, axes, steps) of a Slice from attributes (opset < 10) or inputs."""
    if ctx.opset < 10:
        starts, ends = list(attrs["starts"]), list(attrs["ends"])
        axes = list(attrs.get("axes", range(len(starts))))
        steps = [1] * len(starts)
    else:
        starts, ends = _ints(ctx, ins[1], "starts"), _ints(ctx, ins[2], "ends")
        axes = _ints(ctx, ins[3], "axes") if len(ins) > 3 and ins[3] is not None else list(range(len(starts)))
        steps = _ints(ctx, ins[4], "steps") if len(ins) > 4 and ins[4] is not None else [1] * len(starts)
    # ONNX uses ±INT64_MAX-ish sentinels; clamp so numpy and the attribute printer stay sane
    clamp = lambda v: max(min(v, 2**31 - 1), -(2**31))  # noqa: E731
    return [clamp(v) for v in starts], [clamp(v) for v in ends], axes, steps


def _axes_of(ctx, attrs, ins, index=1, since=13):
    """The ``axes`` of Squeeze/Unsqueeze/Reduce*: an attribute before opset ``since``, else an
    optional input."""
    if ctx.opset < since:
        return list(attrs["axes"]) if "axes" in attrs else None
    if len(ins) > index and ins[index] is not None:
        return _ints(ctx, ins[index], "axes")
    return None


def _unsqueeze_shape(shape, axes):
    rank = len(shape) + len(axes)
    axes = {a + rank if a < 0 else a for a in axes}
    dims = iter(shape)
    return tuple(1 if i in axes else next(dims) for i in range(rank))


def _fold_reshape(ctx, attrs, ins):
    data = ins[0]
    target = list(attrs["shape"]) if ctx.opset < 5 else _ints(ctx, ins[1], "shape")
    if not attrs.get("allowzero", 0):
        target = [data.shape[i] if d == 0 else d for i, d in enumerate(target)]
    return [data.reshape(target)]


def _fold_int_div(a, b):
    if a.dtype.kind in "iu" and b.dtype.kind in "iu":
        return np.trunc(a / b).astype(np.result_type(a, b))
    return np.divide(a, b)


def _fold_shape(ctx, attrs, ins):
    shape = np.array(ins[0].shape, dtype=np.int64)
    return [shape[attrs.get("start", 0):attrs.get("end", None)]]


FOLDERS = {
    "Shape": _fold_shape,
    "Size": lambda ctx, attrs, ins: [np.array(ins[0].size, dtype=np.int64)],
    "Gather": lambda ctx, attrs, ins: [np.take(ins[0], ins[1], axis=attrs.get("axis", 0))],
    "Concat": lambda ctx, attrs, ins: [np.concatenate([x for x in ins if x is not None],
                                                      axis=attrs["axis"])],
    "Unsqueeze": lambda ctx, attrs, ins: [ins[0].reshape(_unsqueeze_shape(ins[0].shape, _axes_of(ctx, attrs, ins)))],
    "Squeeze": lambda ctx, attrs, ins: [np.squeeze(ins[0], axis=None if _axes_of(ctx, attrs, ins) is None
                                                   else tuple(_axes_of(ctx, attrs, ins)))],
    "Cast": lambda ctx, attrs, ins: [ins[0].astype(_onnx_cast(ctx, attrs["to"]))],
    "Reshape": _fold_reshape,
    "Slice": lambda ctx, attrs, ins: [_slice_np(ins[0], *_slice_params(ctx, attrs, ins))],
    "Transpose": lambda ctx, attrs, ins: [np.transpose(ins[0], attrs.get("perm"))],
    "Add": lambda ctx, attrs, ins: [np.add(ins[0], ins[1])],
    "Sub": lambda ctx, attrs, ins: [np.subtract(ins[0], ins[1])],
    "Mul": lambda ctx, attrs, ins: [np.multiply(ins[0], ins[1])],
    "Div": lambda ctx, attrs, ins: [_fold_int_div(ins[0], ins[1])],
    "Identity": lambda ctx, attrs, ins: [ins[0]],
}


def _constant(ctx, node, attrs, ins):
    for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
        if key in attrs:
            value = attrs[key]
            if key == "value":
                return [np.asarray(value)]
            dtype = np.float32 if "float" in key else np.int64
            return [np.asarray(value, dtype=dtype)]
    raise ctx.unsupported(f"has none of the supported value attributes ({', '.join(attrs) or 'none'})")


def _constant_of_shape(ctx, node, attrs, ins):
    shape = _ints(ctx, ins[0], "shape")
    value = attrs.get("value", np.zeros(1, dtype=np.float32))
    return [np.full(shape, np.asarray(value).reshape(-1)[0], dtype=np.asarray(value).dtype)]


# -- helpers for converters ----------------------------------------------------------------------


def _auto_pads(ctx, attrs, in_shape, kernel, strides, dilations):
    """[top, left, bottom, right] for ``pads`` or ``auto_pad`` (SAME_UPPER, SAME_LOWER, VALID)."""
    auto = attrs.get("auto_pad", "NOTSET")
    if auto in ("NOTSET", ""):
        pads = list(attrs.get("pads", [0, 0, 0, 0]))
        if len(pads) != 4:
            raise ctx.error(f"expects 4 pads for a 2-D window, got {len(pads)}")
        return pads
    if auto == "VALID":
        return [0, 0, 0, 0]
    begin, end = [], []
    for size, k, s, d in zip(in_shape[2:], kernel, strides, dilations):
        if size == DYN:
            raise ctx.unsupported(f"auto_pad {auto} needs a static spatial size")
        out = -(-size // s)
        total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
        small, large = total // 2, total - total // 2
        begin.append(small if auto == "SAME_UPPER" else large)
        end.append(large if auto == "SAME_UPPER" else small)
    return begin + end


def _check_2d(ctx, x, what="input"):
    if len(ctx.shape(x)) != 4:
        raise ctx.unsupported(f"only 2-D (NCHW) {what}s are supported, got rank {len(ctx.shape(x))}")


def _conv(ctx, node, attrs, ins):
    x, w = ins[0], ins[1]
    _check_2d(ctx, x)
    kernel = ctx.shape(w)[2:]
    strides = attrs.get("strides", [1, 1])
    dilations = attrs.get("dilations", [1, 1])
    pads = _auto_pads(ctx, attrs, ctx.shape(x), kernel, strides, dilations)
    operands = [x, w] + ([ins[2]] if len(ins) > 2 and ins[2] is not None else [])
    return [ctx.emit1("graph.conv2d", operands, {
        "strides": ints_attr(strides), "pads": ints_attr(pads), "dilations": ints_attr(dilations),
        "group": _int(attrs.get("group", 1))})]


def _conv_transpose(ctx, node, attrs, ins):
    x, w = ins[0], ins[1]
    _check_2d(ctx, x)
    if "output_shape" in attrs or attrs.get("auto_pad", "NOTSET") not in ("NOTSET", ""):
        raise ctx.unsupported("output_shape and auto_pad are not supported; give explicit pads")
    operands = [x, w] + ([ins[2]] if len(ins) > 2 and ins[2] is not None else [])
    return [ctx.emit1("graph.conv_transpose2d", operands, {
        "strides": ints_attr(attrs.get("strides", [1, 1])),
        "pads": ints_attr(attrs.get("pads", [0, 0, 0, 0])),
        "dilations": ints_attr(attrs.get("dilations", [1, 1])),
        "output_padding": ints_attr(attrs.get("output_padding", [0, 0])),
        "group": _int(attrs.get("group", 1))})]


def _pool(op_name):
    def convert(ctx, node, attrs, ins):
        x = ins[0]
        _check_2d(ctx, x)
        if len(node.output) > 1 and node.output[1]:
            raise ctx.unsupported("the Indices output is not supported")
        kernel = attrs["kernel_shape"]
        strides = attrs.get("strides", [1, 1])
        dilations = attrs.get("dilations", [1, 1])
        pads = _auto_pads(ctx, attrs, ctx.shape(x), kernel, strides, dilations)
        a = {"kernel_shape": ints_attr(kernel), "strides": ints_attr(strides),
             "pads": ints_attr(pads), "ceil_mode": _int(attrs.get("ceil_mode", 0))}
        if op_name == "graph.max_pool2d":
            a["dilations"] = ints_attr(dilations)
        else:
            if list(dilations) != [1, 1]:
                raise ctx.unsupported("dilated average pooling is not supported")
            a["count_include_pad"] = _int(attrs.get("count_include_pad", 0))
        return [ctx.emit1(op_name, [x], a)]
    return convert


def _global_max_pool(ctx, node, attrs, ins):
    _check_2d(ctx, ins[0])
    h, w = ctx.shape(ins[0])[2:]
    if DYN in (h, w):
        raise ctx.unsupported("needs a static spatial size")
    return [ctx.emit1("graph.max_pool2d", [ins[0]], {"kernel_shape": ints_attr([h, w])})]


def _batch_norm(ctx, node, attrs, ins):
    # training-mode outputs (running mean, variance, ...) are left undefined
    if attrs.get("spatial", 1) != 1:
        raise ctx.unsupported("spatial = 0 (per-element statistics) is not supported")
    return [ctx.emit1("graph.batch_norm", ins[:5], {"epsilon": float_attr(attrs.get("epsilon", 1e-5))})]


def _gemm(ctx, node, attrs, ins):
    operands = [ins[0], ins[1]] + ([ins[2]] if len(ins) > 2 and ins[2] is not None else [])
    return [ctx.emit1("graph.gemm", operands, {
        "alpha": float_attr(attrs.get("alpha", 1.0)), "beta": float_attr(attrs.get("beta", 1.0)),
        "trans_a": _int(attrs.get("transA", 0)), "trans_b": _int(attrs.get("transB", 0))})]


def _binary(op_name):
    def convert(ctx, node, attrs, ins):
        a, b = ins
        if attrs.get("broadcast") and "axis" in attrs and ctx.opset < 7:
            # legacy broadcasting: B's dims align with A's starting at ``axis``
            rank_a, rank_b = len(ctx.shape(a)), len(ctx.shape(b))
            axis = attrs["axis"] % rank_a if rank_a else 0
            trailing = rank_a - axis - rank_b
            if trailing > 0:
                new_shape = list(ctx.shape(b)) + [1] * trailing
                b = ctx.const(b, "legacy-broadcast B").reshape(new_shape)
        return [ctx.emit1(op_name, [a, b])]
    return convert


def _sum(ctx, node, attrs, ins):
    acc = ins[0]
    if len(ins) == 1:
        return [ctx.value(acc)]
    for x in ins[1:]:
        acc = ctx.emit1("graph.add", [acc, x])
    return [acc]


def _reshape(ctx, node, attrs, ins):
    allowzero = attrs.get("allowzero", 0)
    target = list(attrs["shape"]) if ctx.opset < 5 else reshape_target(ctx, ins[0], ins[1], allowzero)
    return [ctx.emit1("graph.reshape", [ins[0]], {"shape": ints_attr(target),
                                                  "allowzero": _int(attrs.get("allowzero", 0))})]


def _transpose(ctx, node, attrs, ins):
    a = {"perm": ints_attr(attrs["perm"])} if "perm" in attrs else {}
    return [ctx.emit1("graph.transpose", [ins[0]], a)]


def _concat(ctx, node, attrs, ins):
    return [ctx.emit1("graph.concat", [x for x in ins if x is not None], {"axis": _int(attrs["axis"])})]


def _flatten(ctx, node, attrs, ins):
    return [ctx.emit1("graph.flatten", [ins[0]], {"axis": _int(attrs.get("axis", 1))})]


def _softmax(ctx, node, attrs, ins):
    x = ins[0]
    shape = ctx.shape(x)
    rank = len(shape)
    if ctx.opset >= 13:
        return [ctx.emit1("graph.softmax", [x], {"axis": _int(attrs.get("axis", -1))})]
    # opset < 13: the input is coerced to 2-D at ``axis`` and normalized over the second dim
    axis = attrs.get("axis", 1)
    axis = axis + rank if axis < 0 else axis
    if axis == rank - 1:
        return [ctx.emit1("graph.softmax", [x], {"axis": _int(-1)})]
    if list(shape).count(DYN) > 1:
        raise ctx.unsupported(f"opset-{ctx.opset} softmax over a non-last axis needs at most one dynamic dim")
    flat = ctx.emit1("graph.flatten", [x], {"axis": _int(axis)})
    y = ctx.emit1("graph.softmax", [flat], {"axis": _int(1)})
    target = [-1 if d == DYN else d for d in shape]
    return [ctx.emit1("graph.reshape", [y], {"shape": ints_attr(target)})]


def _lrn(ctx, node, attrs, ins):
    return [ctx.emit1("graph.lrn", [ins[0]], {
        "size": _int(attrs["size"]), "alpha": float_attr(attrs.get("alpha", 1e-4)),
        "beta": float_attr(attrs.get("beta", 0.75)), "bias": float_attr(attrs.get("bias", 1.0))})]


def _clip(ctx, node, attrs, ins):
    if ctx.opset < 11:
        lo, hi = attrs.get("min"), attrs.get("max")
    else:
        lo = float(ctx.const(ins[1], "min")) if len(ins) > 1 and ins[1] is not None else None
        hi = float(ctx.const(ins[2], "max")) if len(ins) > 2 and ins[2] is not None else None
    a = {}
    if lo is not None:
        a["min"] = float_attr(lo)
    if hi is not None:
        a["max"] = float_attr(hi)
    return [ctx.emit1("graph.clip", [ins[0]], a)]


def _activation(op_name, **defaults):
    def convert(ctx, node, attrs, ins):
        a = {k: float_attr(attrs.get(k, v)) for k, v in defaults.items()}
        return [ctx.emit1(op_name, [ins[0]], a)]
    return convert


def _prelu(ctx, node, attrs, ins):
    x, slope = ins[:2]
    rank = len(ctx.shape(x))
    if (ctx.opset < 7 and ctx.is_const(slope) and slope.ndim == 1 and slope.size > 1
            and rank > 2 and ctx.shape(x)[1] == slope.size):
        # before opset 7 a 1-D slope is per channel (axis 1), not broadcast from the right
        slope = slope.reshape((slope.size,) + (1,) * (rank - 2))
    return [ctx.emit1("graph.prelu", [x, slope])]


def _pad(ctx, node, attrs, ins):
    x = ins[0]
    rank = len(ctx.shape(x))
    mode = attrs.get("mode", "constant")
    if ctx.opset < 11:
        pads, value = list(attrs.get("pads", attrs.get("paddings"))), attrs.get("value", 0.0)
    else:
        pads = _ints(ctx, ins[1], "pads")
        value = float(np.asarray(ctx.const(ins[2], "constant_value")).reshape(-1)[0]) \
            if len(ins) > 2 and ins[2] is not None else 0.0
        if len(ins) > 3 and ins[3] is not None:
            axes = [a % rank for a in _ints(ctx, ins[3], "axes")]
            if len(pads) != 2 * len(axes):
                raise ctx.error(f"expects {2 * len(axes)} pads for {len(axes)} axes, got {len(pads)}")
            full = [0] * (2 * rank)
            for i, a in enumerate(axes):
                full[a], full[rank + a] = pads[i], pads[len(axes) + i]
            pads = full
    if mode not in ("constant", "reflect", "edge"):
        raise ctx.unsupported(f"pad mode '{mode}' is not supported")
    return [ctx.emit1("graph.pad", [x], {"pads": ints_attr(pads), "mode": _str(mode),
                                         "value": float_attr(value)})]


def _split(ctx, node, attrs, ins):
    axis = attrs.get("axis", 0)
    if ctx.opset < 13:
        split = attrs.get("split")
        if split is None and len(ins) > 1 and ins[1] is not None:
            split = _ints(ctx, ins[1], "split")
    else:
        split = _ints(ctx, ins[1], "split") if len(ins) > 1 and ins[1] is not None else None
    a = {"axis": _int(axis)}
    if split is not None:
        a["split"] = ints_attr(split)
    else:
        a["num_outputs"] = _int(attrs.get("num_outputs", len(node.output)))
    return ctx.emit("graph.split", [ins[0]], a)


def _slice(ctx, node, attrs, ins):
    starts, ends, axes, steps = _slice_params(ctx, attrs, ins)
    return [ctx.emit1("graph.slice", [ins[0]], {
        "starts": ints_attr(starts), "ends": ints_attr(ends), "axes": ints_attr(axes),
        "steps": ints_attr(steps)})]


def _squeeze(ctx, node, attrs, ins):
    axes = _axes_of(ctx, attrs, ins)
    return [ctx.emit1("graph.squeeze", [ins[0]], {} if axes is None else {"axes": ints_attr(axes)})]


def _unsqueeze(ctx, node, attrs, ins):
    axes = _axes_of(ctx, attrs, ins)
    return [ctx.emit1("graph.unsqueeze", [ins[0]], {"axes": ints_attr(axes)})]


def _reduce_mean(ctx, node, attrs, ins):
    axes = _axes_of(ctx, attrs, ins, since=18)
    if axes == [] and attrs.get("noop_with_empty_axes", 0):
        return [ins[0]]
    a = {"keepdims": _int(attrs.get("keepdims", 1))}
    if axes:
        a["axes"] = ints_attr(axes)
    return [ctx.emit1("graph.reduce_mean", [ins[0]], a)]


def _upsample(ctx, node, attrs, ins):
    """Upsample (opsets 7-9) and Resize-10: asymmetric coordinates, nearest rounds down."""
    mode = attrs.get("mode", "nearest")
    if mode not in ("nearest", "linear", "bilinear"):
        raise ctx.unsupported(f"mode '{mode}' is not supported")
    scales = attrs["scales"] if "scales" in attrs else np.asarray(ctx.const(ins[1], "scales")).reshape(-1)
    return [ctx.emit1("graph.resize", [ins[0]], {
        "mode": _str("nearest" if mode == "nearest" else "linear"),
        "coordinate_transformation_mode": _str("asymmetric"), "nearest_mode": _str("floor"),
        "scales": A.ArrayAttr(tuple(float_attr(v) for v in scales))})]


def _resize(ctx, node, attrs, ins):
    if ctx.opset < 11:
        return _upsample(ctx, node, attrs, ins)
    mode = attrs.get("mode", "nearest")
    if mode not in ("nearest", "linear"):
        raise ctx.unsupported(f"resize mode '{mode}' is not supported")
    if attrs.get("antialias", 0) or attrs.get("axes") is not None:
        raise ctx.unsupported("antialias and axes are not supported")
    ctm = attrs.get("coordinate_transformation_mode", "half_pixel")
    if ctm not in ("half_pixel", "asymmetric", "align_corners", "pytorch_half_pixel"):
        raise ctx.unsupported(f"coordinate_transformation_mode '{ctm}' is not supported")
    a = {"mode": _str(mode), "coordinate_transformation_mode": _str(ctm),
         "nearest_mode": _str(attrs.get("nearest_mode", "round_prefer_floor"))}
    scales = ins[2] if len(ins) > 2 else None
    sizes = ins[3] if len(ins) > 3 else None
    if sizes is not None and ctx.const(sizes, "sizes").size:
        a["sizes"] = ints_attr(_ints(ctx, sizes, "sizes"))
    elif scales is not None and ctx.const(scales, "scales").size:
        a["scales"] = A.ArrayAttr(tuple(float_attr(s) for s in np.asarray(scales).reshape(-1)))
    else:
        raise ctx.unsupported("needs constant scales or sizes")
    return [ctx.emit1("graph.resize", [ins[0]], a)]


def _alias(ctx, node, attrs, ins):
    # Dropout's optional mask output is left undefined: a node that uses it fails to import
    return [ins[0]]


def _cast(ctx, node, attrs, ins):
    if attrs["to"] != ctx.onnx.TensorProto.FLOAT:
        raise ctx.unsupported("casting a run-time tensor to a non-float type is not supported")
    return [ins[0]]


CONVERTERS = {
    "Constant": _constant,
    "ConstantOfShape": _constant_of_shape,
    "Identity": _alias,
    "Dropout": _alias,
    "Cast": _cast,
    "Conv": _conv,
    "ConvTranspose": _conv_transpose,
    "MaxPool": _pool("graph.max_pool2d"),
    "AveragePool": _pool("graph.avg_pool2d"),
    "GlobalAveragePool": lambda ctx, node, attrs, ins: [ctx.emit1("graph.global_avg_pool", ins[:1])],
    "GlobalMaxPool": _global_max_pool,
    "BatchNormalization": _batch_norm,
    "Gemm": _gemm,
    "MatMul": lambda ctx, node, attrs, ins: [ctx.emit1("graph.matmul", ins)],
    "Add": _binary("graph.add"),
    "Sub": _binary("graph.sub"),
    "Mul": _binary("graph.mul"),
    "Div": _binary("graph.div"),
    "Sum": _sum,
    "Reshape": _reshape,
    "Transpose": _transpose,
    "Concat": _concat,
    "Flatten": _flatten,
    "Softmax": _softmax,
    "LRN": _lrn,
    "Clip": _clip,
    "Relu": _activation("graph.relu"),
    "Sigmoid": _activation("graph.sigmoid"),
    "Tanh": _activation("graph.tanh"),
    "HardSwish": _activation("graph.hard_swish"),
    "LeakyRelu": _activation("graph.leaky_relu", alpha=0.01),
    "HardSigmoid": _activation("graph.hard_sigmoid", alpha=0.2, beta=0.5),
    "PRelu": _prelu,
    "Pad": _pad,
    "Split": _split,
    "Slice": _slice,
    "Squeeze": _squeeze,
    "Unsqueeze": _unsqueeze,
    "ReduceMean": _reduce_mean,
    "Resize": _resize,
    "Upsample": _upsample,
}


# -- shapes with dynamic dimensions --------------------------------------------------------------
#
# The Shape of a tensor with a dynamic (batch) dimension is a constant with a hole: a placeholder
# value plus, per element, the index of the source dimension it stands for (-1 for known ones).
# Data-movement folders (Gather, Concat, Unsqueeze, ...) carry those indices along by running on
# them too; Reshape turns a hole back into 0 ("copy the input dimension") or -1. Arithmetic on a
# hole is refused.

_CARRY_DIMS = {"Gather": (0,), "Unsqueeze": (0,), "Squeeze": (0,), "Slice": (0,), "Cast": (0,),
               "Reshape": (0,), "Identity": (0,), "Concat": None}


def source_dims(ctx, x):
    """The source-dimension indices of a constant with holes (None for an ordinary constant)."""
    entry = ctx.symbolic.get(id(x)) if ctx.is_const(x) else None
    return entry[1] if entry is not None and entry[0] is x else None


def _fold(ctx, node, attrs, ins):
    op = node.op_type
    holes = [source_dims(ctx, x) if x is not None else None for x in ins]
    values = [np.asarray(v) for v in FOLDERS[op](ctx, attrs, ins)]
    if all(h is None for h in holes):
        return values
    carried = _CARRY_DIMS.get(op, ())
    if op not in _CARRY_DIMS or any(h is not None and carried is not None and i not in carried
                                   for i, h in enumerate(holes)):
        raise ctx.unsupported("computes with a dynamic dimension (only Shape → Gather/Concat/"
                        "Unsqueeze/... → Reshape chains are supported on dynamic shapes)")
    dims_ins = list(ins)
    for i, (x, h) in enumerate(zip(ins, holes)):
        if carried is None or i in carried:
            dims_ins[i] = h if h is not None else (None if x is None else np.full(x.shape, -1, np.int64))
    dims = np.asarray(FOLDERS[op](ctx, attrs, dims_ins)[0]).astype(np.int64)
    if (dims >= 0).any():
        ctx.symbolic[id(values[0])] = (values[0], dims)
    return values


def _shape_of_dynamic(ctx, attrs, x):
    shape = ctx.shape(x)
    value = _fold_shape(ctx, attrs, [np.empty([1 if d == DYN else d for d in shape], np.uint8)])[0]
    dims = np.array([i if d == DYN else -1 for i, d in enumerate(shape)], np.int64)
    dims = dims[attrs.get("start", 0):attrs.get("end", None)]
    if (dims >= 0).any():
        ctx.symbolic[id(value)] = (value, dims)
    return [value]


def reshape_target(ctx, x, shape_input, allowzero) -> list[int]:
    """Reshape's target shape; a hole (a dynamic input dimension) becomes 0 where it copies the
    same input dimension, else -1 if that is the only unknown."""
    target = _ints(ctx, shape_input, "shape", allow_holes=True)
    holes = source_dims(ctx, shape_input)
    if holes is None:
        return target
    holes = [int(h) for h in holes.reshape(-1)]
    for i, h in enumerate(holes):
        if h < 0:
            continue
        if h == i and not allowzero:
            target[i] = 0
        elif -1 not in target and sum(1 for g in holes if g >= 0) == 1:
            target[i] = -1
        else:
            raise ctx.unsupported("cannot express this shape, which depends on a dynamic dimension")
    return target


def convert(ctx, node, attrs: dict, ins: list) -> list:
    """The values (IR values or numpy constants) of ``node``'s outputs."""
    op = node.op_type
    if op in FOLDERS and ins and all(x is None or ctx.is_const(x) for x in ins) and ins[0] is not None:
        try:
            return _fold(ctx, node, attrs, ins)
        except (ValueError, IndexError, KeyError, TypeError) as e:
            raise ctx.error(f"cannot fold constant inputs: {e}") from None
    if op == "Shape":
        return _shape_of_dynamic(ctx, attrs, ins[0])
    if op == "Size" and DYN not in ctx.shape(ins[0]):
        return [np.array(int(np.prod(ctx.shape(ins[0]))), dtype=np.int64)]
    converter = CONVERTERS.get(op)
    if converter is None:
        raise ctx.unsupported(f"no graph op for ONNX op '{op}'")
    return converter(ctx, node, attrs, ins)
