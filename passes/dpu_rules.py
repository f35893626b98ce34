"""Can the DPU run this op? One rule per graph op, read from the target description.

:func:`check` looks at one op alone (its attributes, shapes and constant operands) against a
:class:`~xir.backend.targets.Target` and returns a :class:`Verdict`: the kind of DPU op it would
be, the engine that would run it, and every reason it cannot (empty: it can). Rules that
depend on neighbours (fusion, layout ops at subgraph boundaries) are in :mod:`.fusion` and
:mod:`.inspect`. The limits are those of reference/dpu.md §2; every reason names the node, the
value and the allowed range, and the fix where there is one.
"""

from __future__ import annotations

import math

import attrs

from xir import types as T
from xir.attributes import location_name
from xir.ir import OpResult

LEAKY_ALPHA = 26 / 256  # the only leaky-relu slope the DPU computes (0.1015625)
CHANNEL_BANKS = 256  # ic <= 256 * ICP, oc <= 256 * OCP
ALWAYS_CPU = {
    "graph.softmax": "softmax", "graph.sigmoid": "sigmoid", "graph.tanh": "tanh",
    "graph.sub": "sub", "graph.div": "div", "graph.transpose": "transpose (permute)",
    "graph.slice": "strided slice", "graph.split": "split", "graph.lrn": "LRN",
}
LAYOUT_OPS = {"graph.reshape", "graph.flatten", "graph.squeeze", "graph.unsqueeze", "graph.identity"}
CONV_KINDS = ("conv", "dwconv", "conv_transpose", "fc")


@attrs.frozen
class Verdict:
    """What one op would be on the DPU: its ``kind`` (``conv``, ``dwconv``, ``pool``,
    ``eltwise``, ``activation``, ``layout``, ``cpu``, ...), the engine that would run it (for
    the activations it can fuse), why it cannot run there (``reasons``) and remarks (``notes``)."""

    kind: str
    engine: object = None
    reasons: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def on_dpu(self) -> bool:
        """Whether nothing keeps it off the DPU."""
        return not self.reasons

    @property
    def nonlinear(self) -> tuple[str, ...]:
        """The activations its engine applies on the way out."""
        return tuple(getattr(self.engine, "nonlinear", ()) or ())


def node_name(op) -> str:
    """The name reports give ``op``: its ONNX node's (its location), else its value's or op's."""
    name = location_name(op.location)
    if name:
        return name
    if op.results and op.results[0].name_hint:
        return op.results[0].name_hint
    return op.name


def producer(value):
    """The op that defines ``value`` (None for a block argument)."""
    return value.owner if isinstance(value, OpResult) else None


def is_constant(value) -> bool:
    """Whether ``value`` is made by a ``graph.constant``."""
    owner = producer(value)
    return owner is not None and owner.name == "graph.constant"


def constant_array(value, dtype=None):
    """The contents of a value made by a constant op (``graph.constant``, ``quant.constant``),
    as a numpy array (converted to ``dtype`` if given)."""
    import numpy as np

    return np.asarray(producer(value).all_attributes()["value"].to_numpy(), dtype)


def shape_of(value) -> tuple:
    """The static shape of a tensor value (dynamic dims as None)."""
    return tuple(None if d == T.DYNAMIC else d for d in value.type.shape)


class _Rule:
    """The reasons gathered while checking one op."""

    def __init__(self, op, target):
        self.op, self.target, self.name = op, target, node_name(op)
        self.p = op.param if hasattr(op, "param") else {}
        self.reasons: list[str] = []
        self.notes: list[str] = []

    def fail(self, message: str, fix: str | None = None) -> None:
        text = f"{self.name}: {message}"
        self.reasons.append(f"{text}; {fix}" if fix else text)

    def in_range(self, what: str, values, allowed, shown=None) -> None:
        """``'kernel'(17 x 17) is not in DPU supported range([1, 16])`` unless all of
        ``values`` are in RangeSet ``allowed``."""
        if allowed is not None and not all(allowed.contains(int(v)) for v in values):
            shown = shown or " x ".join(str(v) for v in values)
            self.fail(f"'{what}'({shown}) is not in DPU supported range({allowed.describe()})")

    def verdict(self, kind: str, engine=None) -> Verdict:
        return Verdict(kind, engine, tuple(self.reasons), tuple(self.notes))


# -- convolutions ---------------------------------------------------------------------------------


def _conv(rule: _Rule, extra_pads=(0, 0, 0, 0)) -> Verdict:
    op, t, p = rule.op, rule.target, rule.p
    _, ic, _, _ = shape_of(op.operands[0])
    oc, _, kh, kw = shape_of(op.operands[1])
    group = p["group"]
    if not is_constant(op.operands[1]):
        rule.fail("its weights are computed at run time; DPU convolutions need constant weights")
    if group != 1 and group == ic and oc == ic:
        return _depthwise(rule, kh, kw, extra_pads)
    if group != 1:
        if group == ic:
            rule.fail(f"depthwise convolution with channel multiplier {oc // ic} is not supported")
        else:
            rule.fail(f"'group'({group}) is not supported: a DPU convolution has group 1 or is "
                      f"depthwise (group = input channels = output channels; here {ic} in, "
                      f"{oc} out)")
    engine = t.conv
    rule.in_range("kernel", (kw, kh), engine.kernel)
    rule.in_range("stride", p["strides"][::-1], engine.stride)
    _pads_within_kernel(rule, _add_pads(p["pads"], extra_pads), (kh, kw), p["dilations"])
    _channels(rule, ic, oc)
    _weight_bank(rule, kh * kw, ic)
    return rule.verdict("conv", engine)


def _add_pads(pads, extra) -> tuple:
    return tuple(a + b for a, b in zip(pads, extra))


def _pads_within_kernel(rule: _Rule, pads, kernel, dilations) -> None:
    """A pad may be at most ``(kernel - 1) * dilation`` on each side (pads are t, l, b, r)."""
    limits = [(kernel[0] - 1) * dilations[0], (kernel[1] - 1) * dilations[1]] * 2
    if any(pad > limit for pad, limit in zip(pads, limits)):
        shown = ", ".join(str(v) for v in pads)
        rule.fail(f"'pad'({shown}) is not in DPU supported range([0, {min(limits)}]): a pad may be "
                  "at most (kernel - 1) * dilation")


def _channels(rule: _Rule, ic, oc) -> None:
    conv = rule.target.conv
    for what, value, parallel in (("input_channel", ic, conv.input_channel_parallel),
                                  ("output_channel", oc, conv.output_channel_parallel)):
        if value is not None and value > CHANNEL_BANKS * parallel:
            rule.fail(f"'{what}'({value}) is not in DPU supported range([1, "
                      f"{CHANNEL_BANKS * parallel}])")


def _weight_bank(rule: _Rule, kernel_area: int, ic) -> None:
    """``kh · kw · ceil(ic / ICP)`` rows of one output channel's weights must fit a bank."""
    conv = rule.target.conv
    depth = rule.target.bank_group(conv.weight_bank).bank_depth
    rows = kernel_area * math.ceil((ic or 1) / conv.input_channel_parallel)
    if rows > depth:
        rule.fail(f"'weights'({rows} rows: kernel {kernel_area} x ceil({ic} / "
                  f"{conv.input_channel_parallel})) do not fit weight bank {conv.weight_bank} "
                  f"({depth} rows)")


def depthwise_engine(target):
    """The engine that runs depthwise convolutions: the ALU (ISA1, ISA3) or a dwconv engine."""
    if target.alu is not None and "dwconv" in target.alu.alu_type:
        return target.alu
    return target.dwconv


def _depthwise(rule: _Rule, kh, kw, extra_pads=(0, 0, 0, 0)) -> Verdict:
    engine, p = depthwise_engine(rule.target), rule.p
    if engine is None:
        rule.fail(f"{rule.target.name} has no depthwise engine (no ALU or dwconv engine)")
        return rule.verdict("dwconv")
    rule.in_range("kernel", (kw, kh), engine.kernel)
    rule.in_range("stride", p["strides"][::-1], engine.stride)
    _engine_pads(rule, engine, _add_pads(p["pads"], extra_pads), (kh, kw), p["dilations"])
    return rule.verdict("dwconv", engine)


def _engine_pads(rule: _Rule, engine, pads, kernel, dilations=(1, 1)) -> None:
    """Pads against the engine's per-side ranges where it states them (the ALU), else the
    ``(kernel - 1) * dilation`` rule."""
    limit = getattr(engine, "pad", None)
    if limit is None:
        _pads_within_kernel(rule, pads, kernel, dilations)
        return
    top, left, bottom, right = pads
    for side, value, allowed in (("left", left, limit.left), ("top", top, limit.top),
                                 ("right", right, limit.right), ("bottom", bottom, limit.bottom)):
        rule.in_range(f"pad_{side}", (value,), allowed)


def _conv_transpose(rule: _Rule) -> Verdict:
    op, t, p = rule.op, rule.target, rule.p
    _, ic, _, _ = shape_of(op.operands[0])
    _, oc_per_group, kh, kw = shape_of(op.operands[1])
    if not is_constant(op.operands[1]):
        rule.fail("its weights are computed at run time; DPU convolutions need constant weights")
    if any(p["output_padding"]):
        rule.fail(f"DPU does not support output_padding ({', '.join(map(str, p['output_padding']))})",
                  "use padding that makes output_padding 0")
    if p["group"] != 1:
        rule.fail(f"'group'({p['group']}) is not supported for transposed convolution")
    sh, sw = p["strides"]
    rule.in_range("kernel / stride", (math.ceil(kw / sw), math.ceil(kh / sh)), t.conv.kernel)
    _channels(rule, ic, oc_per_group * p["group"])
    _weight_bank(rule, math.ceil(kh / sh) * math.ceil(kw / sw), ic)
    return rule.verdict("conv_transpose", t.conv)


def _fully_connected(rule: _Rule) -> Verdict:
    op, p = rule.op, rule.p
    lhs, rhs = op.operands[0], op.operands[1]
    if not is_constant(rhs):
        operands = "its left operand is constant and its right one" if is_constant(lhs) else \
            "both operands are"
        rule.fail(f"{operands} computed at run time; DPU runs a matrix product as a "
                  "convolution with constant weights (the right operand)")
    if op.name == "graph.gemm" and p["trans_a"]:
        rule.fail("'trans_a'(1) is not supported: the activation must not be transposed")
    if len(shape_of(lhs)) != 2 or len(shape_of(rhs)) != 2:
        rule.fail(f"a matrix product of {shape_of(lhs)} by {shape_of(rhs)} is not 2-D")
        return rule.verdict("fc", rule.target.conv)
    k, n = shape_of(rhs)[::-1] if op.name == "graph.gemm" and p["trans_b"] else shape_of(rhs)
    _channels(rule, k, n)
    _weight_bank(rule, 1, k)
    return rule.verdict("fc", rule.target.conv)


# -- pooling ----------------------------------------------------------------------------------------


def pool_engine(target, pool: str):
    """The engine that runs ``max`` or ``avg`` pooling: a pool engine, else the ALU."""
    if target.pool is not None and pool in target.pool.pool_type:
        return target.pool
    if target.alu is not None and f"{pool}_pool" in target.alu.alu_type:
        return target.alu
    return None


def _pool_limits(engine, pool: str):
    """(kernel range, stride range) of ``engine`` for ``pool``."""
    if hasattr(engine, "pool_type"):
        return getattr(engine, f"{pool}_kernel"), getattr(engine, f"{pool}_stride")
    return engine.kernel, engine.stride


def _pool(rule: _Rule, pool: str, kernel, strides, pads, extra_pads=(0, 0, 0, 0)) -> Verdict:
    engine = pool_engine(rule.target, pool)
    if engine is None:
        rule.fail(f"{rule.target.name} has no engine for {pool} pooling")
        return rule.verdict("pool")
    kernel_range, stride_range = _pool_limits(engine, pool)
    kh, kw = kernel
    rule.in_range("kernel", (kw, kh), kernel_range)
    rule.in_range("stride", strides[::-1], stride_range)
    _engine_pads(rule, engine, _add_pads(pads, extra_pads), kernel)
    if pool == "avg" and kh * kw & (kh * kw - 1):
        rule.notes.append(f"{rule.name}: average over {kh} x {kw} multiplies by the DPU's "
                          f"factor for 1/{kh * kw} (a fraction m / 2^s), not exactly 1/{kh * kw}")
    return rule.verdict("pool", engine)


def _max_pool(rule: _Rule, extra_pads=(0, 0, 0, 0)) -> Verdict:
    p = rule.p
    if any(d != 1 for d in p["dilations"]):
        rule.fail(f"'dilation'({' x '.join(map(str, p['dilations']))}) is not supported for pooling")
    return _pool(rule, "max", p["kernel_shape"], p["strides"], p["pads"], extra_pads)


def _avg_pool(rule: _Rule, extra_pads=(0, 0, 0, 0)) -> Verdict:
    p = rule.p
    # only the pool's own pads: the zeros of a fused Pad op are data, which every window counts
    if any(p["pads"]) and not p["count_include_pad"]:
        rule.fail("DPU average pooling divides by the whole window, padding included",
                  "set count_include_pad = 1")
    return _pool(rule, "avg", p["kernel_shape"], p["strides"], p["pads"], extra_pads)


def _global_pool(rule: _Rule) -> Verdict:
    _, _, h, w = shape_of(rule.op.operands[0])
    if h is None or w is None:
        rule.fail("global pooling over a dynamic height or width")
        return rule.verdict("pool")
    return _pool(rule, "avg", (h, w), (1, 1), (0, 0, 0, 0))


def _reduce_mean(rule: _Rule) -> Verdict:
    shape = shape_of(rule.op.operands[0])
    axes = sorted(a % len(shape) for a in (rule.p["axes"] or range(len(shape))))
    if len(shape) == 4 and axes == [2, 3] and rule.p["keepdims"]:
        return _global_pool(rule)
    rule.fail(f"reduce_mean over axes {axes} is not a pooling: only the mean over H and W "
              "(keepdims) runs on DPU, as average pooling")
    return rule.verdict("cpu")


# -- element-wise, concat, resize, pad --------------------------------------------------------------


def channel_constant(op):
    """For ``add``/``mul`` of a 4-D feature map and a constant holding one value per channel (or
    one in all), that feature map; else None. Such an op is a per-channel affine, like a batch
    norm: it folds into a preceding convolution, or runs as a depthwise convolution."""
    if op.name not in ("graph.add", "graph.mul"):
        return None
    lhs, rhs = op.operands
    if is_constant(lhs) == is_constant(rhs):
        return None
    x, c = (rhs, lhs) if is_constant(lhs) else (lhs, rhs)
    shape, cshape = shape_of(x), shape_of(c)
    if len(shape) != 4 or shape_of(op.results[0]) != shape:
        return None
    channels = [d for d in cshape if d != 1]
    per_channel = len(cshape) >= 3 and cshape[-1] == cshape[-2] == 1 and channels in ([], [shape[1]])
    return x if per_channel or not channels else None


def _eltwise(rule: _Rule) -> Verdict:
    op, engine = rule.op, rule.target.eltwise
    if channel_constant(op) is not None:
        return _affine(rule, "a per-channel " + ("scale" if op.name == "graph.mul" else "shift"))
    kind = {"graph.add": "add", "graph.mul": "mult"}[op.name]
    if kind not in engine.elew_type:
        rule.fail(f"'{kind}' is not an eltwise type of {rule.target.name} "
                  f"(supported: {', '.join(engine.elew_type)})")
    if any(is_constant(v) for v in op.operands):
        rule.fail(f"{kind} with a constant operand: the eltwise engine combines two feature maps",
                  "fold the constant into the preceding convolution's weights or bias")
    elif shape_of(op.operands[0]) != shape_of(op.operands[1]):
        rule.fail(f"inputs of shapes {shape_of(op.operands[0])} and {shape_of(op.operands[1])} "
                  "differ: DPU eltwise needs equal shapes (no broadcasting)")
    return rule.verdict("eltwise", engine)


def _concat(rule: _Rule) -> Verdict:
    rank = len(shape_of(rule.op.results[0]))
    axis = rule.p["axis"] % rank
    if rank != 4 or axis != 1:
        rule.fail(f"'axis'({rule.p['axis']}) is not supported: DPU concatenates 4-D feature maps "
                  "along channels (axis 1)")
    return rule.verdict("concat")


def _resize(rule: _Rule) -> Verdict:
    p, shape = rule.p, shape_of(rule.op.operands[0])
    out = shape_of(rule.op.results[0])
    scales = [o / i if i and o else None for i, o in zip(shape, out)]
    if len(shape) != 4 or scales[0] != 1 or scales[1] != 1:
        rule.fail("only the height and width of a 4-D feature map can be resized on DPU")
        return rule.verdict("resize")
    h, w = scales[2], scales[3]
    integer = h is not None and w is not None and h == int(h) and w == int(w) and h >= 1 and w >= 1
    if p["mode"] == "nearest":
        if not integer:
            rule.fail(f"nearest resize by {h} x {w} is not an integer scale",
                      "use an integer scale")
    elif p["coordinate_transformation_mode"] not in ("half_pixel", "pytorch_half_pixel"):
        rule.fail(f"bilinear resize with coordinate_transformation_mode "
                  f"'{p['coordinate_transformation_mode']}' is not supported (align_corners must "
                  "be false: half_pixel)", "use nearest resize")
    elif not (integer and h == w and h in (2, 4)):
        rule.fail(f"bilinear resize by {h} x {w} is not supported (scale 2 or 4 only)",
                  "use nearest resize")
    else:
        rule.notes.append(f"{rule.name}: bilinear resize runs as a transposed depthwise convolution")
    return rule.verdict("resize")


def _pad(rule: _Rule) -> Verdict:
    p = rule.p
    if p["mode"] != "constant" or p["value"] != 0:
        what = f"mode '{p['mode']}'" if p["mode"] != "constant" else f"value {p['value']}"
        rule.fail(f"pad {what} is not supported (constant zero padding only)",
                  "use constant zero padding")
    return rule.verdict("pad")


# -- activations and batch norm ---------------------------------------------------------------------


def nonlinear_type(op) -> str | None:
    """The target schema's nonlinear type that activation ``op`` is (None if it is none)."""
    if op.name == "graph.relu":
        return "relu"
    if op.name == "graph.clip":
        lo, hi = op.param["min"], op.param["max"]
        if lo == 0 and hi is None:
            return "relu"
        if lo == 0 and hi == 6:
            return "relu_six"
        return None
    return {"graph.leaky_relu": "leaky_relu", "graph.prelu": "prelu",
            "graph.hard_sigmoid": "hsigmoid", "graph.hard_swish": "hswish"}.get(op.name)


ACTIVATION_OPS = {"graph.relu", "graph.clip", "graph.leaky_relu", "graph.prelu",
                  "graph.hard_sigmoid", "graph.hard_swish"}


def _activation(rule: _Rule) -> Verdict:
    """An activation's own limits; whether it fuses is :mod:`.fusion`'s question."""
    op, p = rule.op, rule.p
    kind = nonlinear_type(op)
    if op.name == "graph.clip" and kind is None:
        rule.fail(f"clip({p['min']}, {p['max']}) is neither relu nor relu6 (clip(0, 6))")
    elif kind == "leaky_relu" and p["alpha"] != LEAKY_ALPHA:
        rule.fail(f"Its alpha is {p['alpha']:g}, but DPU only supports {LEAKY_ALPHA}",
                  "set alpha to 26/256")
    elif kind == "hsigmoid" and (abs(p["alpha"] - 1 / 6) > 1e-6 or p["beta"] != 0.5):
        rule.fail(f"hard_sigmoid with alpha {p['alpha']:g} and beta {p['beta']:g} is not "
                  "relu6(x + 3) / 6, the one the DPU computes",
                  "use alpha = 1/6, beta = 0.5 (PyTorch's Hardsigmoid)")
    return rule.verdict("activation")


def standalone_activation(op, target, verdict: Verdict) -> Verdict:
    """Where an activation that fused into nothing runs: the ALU runs prelu, leaky relu and
    hard sigmoid on their own; anything else needs an op to fuse into."""
    rule = _Rule(op, target)
    rule.reasons, rule.notes = list(verdict.reasons), list(verdict.notes)
    kind = nonlinear_type(op)
    alu_kinds = {"prelu": "prelu", "leaky_relu": "leaky_relu", "hsigmoid": "hsigmoid"}
    if kind in alu_kinds and target.alu is not None and alu_kinds[kind] in target.alu.alu_type:
        rule.notes.append(f"{rule.name}: runs on its own on the ALU")
        return rule.verdict("activation", target.alu)
    if not rule.reasons:
        what = {"relu_six": "relu6", "hsigmoid": "hard_sigmoid", "hswish": "hard_swish"}.get(
            kind, kind or op.name.split(".")[1])
        rule.fail(f"{what} has no op to fuse into on {target.name} (it fuses after a "
                  "convolution, pooling or eltwise op whose engine supports it)",
                  "place it right after a convolution")
    return rule.verdict("activation")


def _batch_norm(rule: _Rule) -> Verdict:
    if not all(is_constant(v) for v in rule.op.operands[1:]):
        rule.fail("its statistics are computed at run time")
    return _affine(rule, "a BatchNorm")


def _affine(rule: _Rule, what: str) -> Verdict:
    """A per-channel affine (batch norm, constant scale or shift) that folds into nothing runs
    as a depthwise convolution."""
    engine = depthwise_engine(rule.target)
    if engine is None:
        rule.fail(f"{what} that does not follow a convolution would run as a depthwise "
                  f"convolution, and {rule.target.name} has no depthwise engine")
    else:
        rule.notes.append(f"{rule.name}: runs as a depthwise convolution")
    return rule.verdict("affine", engine)


# -- the table ----------------------------------------------------------------------------------------


def _always_cpu(rule: _Rule) -> Verdict:
    what = ALWAYS_CPU[rule.op.name]
    rule.fail(f"{what} runs on the CPU on {rule.target.name} (no DPU engine computes it)")
    return rule.verdict("cpu")


def _kept_onnx(rule: _Rule) -> Verdict:
    rule.fail(f"ONNX op '{rule.op.op_type.value}' has no graph op, so no DPU op")
    return rule.verdict("cpu")


RULES = {
    "graph.conv2d": _conv,
    "graph.conv_transpose2d": _conv_transpose,
    "graph.gemm": _fully_connected,
    "graph.matmul": _fully_connected,
    "graph.max_pool2d": _max_pool,
    "graph.avg_pool2d": _avg_pool,
    "graph.global_avg_pool": _global_pool,
    "graph.reduce_mean": _reduce_mean,
    "graph.add": _eltwise,
    "graph.mul": _eltwise,
    "graph.concat": _concat,
    "graph.resize": _resize,
    "graph.pad": _pad,
    "graph.batch_norm": _batch_norm,
    "graph.onnx": _kept_onnx,
    **{name: _activation for name in ACTIVATION_OPS},
    **{name: _always_cpu for name in ALWAYS_CPU},
}
FUSED_PADDING = {"graph.conv2d": _conv, "graph.max_pool2d": _max_pool,
                 "graph.avg_pool2d": _avg_pool}


def check(op, target, extra_pads=None) -> Verdict:
    """The verdict on ``op`` alone against ``target``; ``extra_pads`` (t, l, b, r) are those of
    a zero pad fused into it (convolution, pooling)."""
    rule = _Rule(op, target)
    if op.name in LAYOUT_OPS:
        return rule.verdict("layout")
    handler = RULES.get(op.name)
    if handler is None:
        rule.fail(f"'{op.name}' has no DPU rule")
        return rule.verdict("cpu")
    if extra_pads is not None and op.name in FUSED_PADDING:
        return FUSED_PADDING[op.name](rule, extra_pads)
    return handler(rule)


def macs(op) -> int:
    """Multiply-accumulates of one run of ``op`` (0 for ops that are not products)."""
    out = shape_of(op.results[0]) if op.results else ()
    if None in out:
        return 0
    if op.name == "graph.conv2d":
        _, icg, kh, kw = shape_of(op.operands[1])
        return math.prod(out) * icg * kh * kw
    if op.name == "graph.conv_transpose2d":
        _, ocg, kh, kw = shape_of(op.operands[1])
        return math.prod(d for d in shape_of(op.operands[0]) if d) * ocg * kh * kw
    if op.name in ("graph.gemm", "graph.matmul"):
        lhs = shape_of(op.operands[0])
        k = lhs[0] if op.name == "graph.gemm" and op.param["trans_a"] else lhs[-1]
        return math.prod(out) * (k or 0)
    return 0
