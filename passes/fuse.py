"""fuse (pass): quant dialect → dpu dialect, by pattern rules declared as data.

Each quant op that a rule matches (and that does not carry ``xir.device = "CPU"``, the
inspector's verdict) becomes its dpu op in NHWC, absorbing what the rule lets it absorb: a zero
``quant.pad`` before a convolution or an average pool, a standalone ``quant.relu`` or
``quant.relu6`` after an op whose quant lowering did not fuse one, a ``quant.flatten`` before a
dense. Feature maps enter through ``dpu.to_nhwc`` and leave through ``dpu.to_nchw``; a pair that
meets cancels, so only the boundary conversions between dpu and quant ops remain. 2-D tensors
(dense) cross as ``dpu.reshape`` N×K ↔ N×1×1×K, which chains fold away. Everything else stays
a quant op (it runs on the CPU). Layer order is respected because rules only look at single
ops and their immediate, sole neighbours: conv → bn → relu is one quant.conv2d after fold-bn
and quantization, hence one dpu.conv2d_fix; conv → relu → bn leaves the bn as its own
depthwise conv.

Every rule is exact: the fused module computes the quant module's integers bit for bit (an
absorption that would round twice where the fused op rounds once is not made). See
``docs/dpu.md``.
"""

from __future__ import annotations

from typing import Callable

import attrs
import numpy as np

from xir import attributes as A
from xir import types as T
from xir.dialects.dpu import nn as dnn
from xir.dialects.dpu import tensor as dten
from xir.dialects.graph.base import ints_attr
from xir.dialects.graph.constants import constant_attr
from xir.dialects.quant import kernels as K
from xir.dialects.quant.base import QuantOp
from xir.dialects.quant.tensor import ConstantOp
from xir.ir import Operation
from xir.pass_manager import Pass, register_pass

from .dpu_rules import constant_array, node_name, producer
from .fusion import sole_user

DEVICE_ATTR = "xir.device"
NCHW_AXIS_IN_NHWC = {0: 0, 1: 3, 2: 1, 3: 2}
EMITTED = {cls.name: cls for cls in [*dnn.NN_OPS, *dten.TENSOR_OPS, ConstantOp]}


@attrs.frozen
class Rule:
    """One fusion rule: the quant ops it ``matches``, the condition (``when``), the neighbours
    it ``absorbs``, the dpu ops it ``becomes``, and ``build(fuser, op)``, which rewrites ``op``
    and returns True, or returns False and changes nothing."""

    name: str
    matches: tuple
    when: str
    absorbs: str
    becomes: str
    build: Callable = attrs.field(repr=False)


HOST_OPS = ("quant.constant", "quant.quantize", "quant.dequantize")  # never a device's own


def on_cpu(op) -> bool:
    """Whether the inspector put ``op`` on the CPU (discardable attribute xir.device = "CPU")."""
    device = op.attributes.get(DEVICE_ATTR)
    return isinstance(device, A.StringAttr) and device.value.upper() == "CPU"


def fix_point_of(value) -> int | None:
    """The fix point ``value`` is written at (None if its producer does not say)."""
    owner = producer(value)
    return owner.output_fix_point() if isinstance(owner, QuantOp) else None


def static(shape) -> bool:
    """Whether every dim but the batch is known."""
    return shape is not None and T.DYNAMIC not in tuple(shape)[1:]


def rank(value) -> int:
    shape = value.type.shape
    return -1 if shape is None else len(shape)


class Fuser:
    """Applies :data:`RULES` to one block, in program order."""

    def __init__(self, module, block):
        self.module, self.block = module, block
        self.anchor = None  # new ops go before it
        self.nhwc_of: dict = {}  # an NCHW value -> its to_nhwc
        self.maybe_dead: list = []
        self.fused: dict = {}  # rule name -> how many times it applied

    # -- building blocks ---------------------------------------------------------------------

    def emit(self, name: str, operands, attributes: dict, like=None):
        """Insert dpu op (or quant.constant) ``name`` before the op being fused; its result."""
        attributes = {k: _attr(v) for k, v in attributes.items() if v is not None}
        types = EMITTED[name].infer_result_types([v.type for v in operands], attributes)
        op = Operation.create(name, list(operands), types, attributes=attributes,
                              location=self.anchor.location)
        if like is not None and like.name_hint:
            op.results[0].name_hint = like.name_hint
        self.block.insert_before(op, self.anchor)
        return op.results[0]

    def nhwc(self, value):
        """NCHW feature map ``value`` as NHWC (reusing a to_nhwc, or undoing a to_nchw)."""
        owner = producer(value)
        if isinstance(owner, dten.ToNchwOp):
            return owner.input
        if value not in self.nhwc_of:
            self.nhwc_of[value] = self.emit("dpu.to_nhwc", [value],
                                            {"fix_point": fix_point_of(value)})
        return self.nhwc_of[value]

    def nchw(self, value, like):
        """NHWC ``value`` handed back to quant ops as NCHW."""
        owner = producer(value)
        if isinstance(owner, dten.ToNhwcOp):
            return owner.input
        return self.emit("dpu.to_nchw", [value], {"fix_point": owner.output_fix_point()}, like)

    def reshape(self, value, shape, like=None):
        """``value`` in ``shape`` (batch first, kept): a dpu.reshape, chains folded."""
        while isinstance(producer(value), dten.ReshapeOp):
            value = value.owner.input
        target = (value.type.shape[0], *shape[1:])
        if tuple(value.type.shape) == target:
            return value
        batch = -1 if target[0] == T.DYNAMIC else target[0]
        return self.emit("dpu.reshape", [value], {"shape": ints_attr([batch, *target[1:]]),
                                                  "fix_point": fix_point_of(value)}, like)

    def weight(self, value, transform, suffix: str):
        """A new quant.constant holding ``transform`` of constant ``value`` (same fix point)."""
        owner = producer(value)
        array = transform(constant_array(value))
        attrs_ = {"value": constant_attr(self.module, np.ascontiguousarray(array),
                                         f"{node_name(self.anchor)}_{suffix}"),
                  "fix_point": owner.param["fix_point"]}
        return self.emit("quant.constant", [], attrs_)

    def replace(self, old_ops, old_value, new_value) -> None:
        """``new_value`` takes the place of ``old_value``; ``old_ops`` (the matched and absorbed
        quant ops) are erased, their operands' producers checked for death at the end."""
        old_value.replace_all_uses_with(new_value)
        for op in old_ops:
            self.maybe_dead.extend(producer(v) for v in op.operands)
            op.erase()

    # -- absorption ----------------------------------------------------------------------------

    def leading_pad(self, op, kernel, dilation):
        """The zero quant.pad before ``op`` that it can absorb, and the pads it then has:
        (input, pads, [pad op]) — the pad's input and the summed pads — or (op's input, its own
        pads, []). A pad is absorbed when ``op`` is its only user, it pads H and W only, and
        the sum stays within the window ((k - 1) · dilation per side, as the DPU requires)."""
        x, pads = op.operands[0], tuple(op.param["pads"])
        pad = producer(x)
        if pad is None or pad.name != "quant.pad" or on_cpu(pad) or sole_user(x) is not op:
            return x, pads, []
        p = pad.param["pads"]
        if len(p) != 8 or any(p[:2]) or any(p[4:6]):
            return x, pads, []
        total = tuple(a + b for a, b in zip(pads, (p[2], p[3], p[6], p[7])))
        limits = [(kernel[k % 2] - 1) * dilation[k % 2] for k in range(4)]
        if any(t > lim for t, lim in zip(total, limits)):
            return x, pads, []
        return pad.operands[0], total, [pad]

    def trailing_activation(self, op, activation: str, output_fp: int):
        """(activation, [absorbed op]) with the standalone relu or relu6 that is the only user of
        ``op``'s result absorbed, when ``op`` has no activation and the relu reads and writes at
        ``op``'s output fix point (then one rounding equals two); else (activation, [])."""
        user = sole_user(op.results[0])
        if activation != "none" or user is None or on_cpu(user) or \
                user.name not in ("quant.relu", "quant.relu6"):
            return activation, []
        p = user.param
        if p["input_fp"] != output_fp or p["output_fp"] != output_fp:
            return activation, []
        return user.name.split(".")[1], [user]

    # -- the walk ------------------------------------------------------------------------------

    def run(self) -> None:
        by_name: dict = {}
        for rule in RULES:
            for name in rule.matches:
                by_name.setdefault(name, []).append(rule)
        for op in list(self.block.ops):
            if op.parent is None or on_cpu(op):  # erased as absorbed, or the CPU's
                continue
            for rule in by_name.get(op.name, ()):
                self.anchor = op
                if rule.build(self, op):
                    self.fused[rule.name] = self.fused.get(rule.name, 0) + 1
                    break
        self._erase_dead()
        self._demote_leftovers()

    def _demote_leftovers(self) -> None:
        """A quant compute op the inspector put on the DPU that no rule turned into a dpu op
        (a standalone activation, say) runs on the CPU: its mark says so, for the partition."""
        for op in self.block.ops:
            device = op.attributes.get(DEVICE_ATTR)
            if (op.name.startswith("quant.") and op.name not in HOST_OPS
                    and isinstance(device, A.StringAttr) and device.value.upper() == "DPU"):
                op.attributes[DEVICE_ATTR] = A.StringAttr("CPU")

    def _erase_dead(self) -> None:
        """Erase what fusion left unused: boundary ops, replaced constants, pads, flattens."""
        handles = set()
        for op in list(self.block.ops_reversed()):
            if op.name in ("dpu.to_nhwc", "dpu.to_nchw", "dpu.reshape") and \
                    not op.results[0].uses:
                self.maybe_dead.extend(producer(v) for v in op.operands)
                op.erase()
        while self.maybe_dead:
            op = self.maybe_dead.pop()
            if op is None or op.parent is None or any(r.uses for r in op.results) or \
                    not (op.name.startswith("quant.") or op.name.startswith("dpu.")) or \
                    op.name in ("quant.quantize", "quant.dequantize"):
                continue
            value = op.attributes.get("value")
            if isinstance(value, A.DenseResourceAttr):
                handles.add(value.handle.name)
            self.maybe_dead.extend(producer(v) for v in op.operands)
            op.erase()
        if handles:
            used = {v.handle.name for o in self.module.walk() for v in o.attributes.values()
                    if isinstance(v, A.DenseResourceAttr)}
            for name in handles - used:
                self.module.resources.pop(name, None)


def _attr(value):
    if isinstance(value, A.Attribute):
        return value
    if isinstance(value, (bool, int, np.integer)):
        return A.IntegerAttr(int(value))
    if isinstance(value, str):
        return A.StringAttr(value)
    if isinstance(value, (tuple, list)):
        return ints_attr(value)
    raise TypeError(f"no attribute for {value!r}")


# -- the rules -----------------------------------------------------------------------------------


def _accumulator_attributes(p: dict, nonlinear: str) -> dict:
    """The fix points and shifts of a dpu convolution from quant op parameters ``p``."""
    fps = {k: p[k] for k in ("input_fp", "weight_fp", "bias_fp", "output_fp", "hsigmoid_in")}
    shifts = dnn.accumulator_shifts(*fps.values(), nonlinear)
    return {"nonlinear": nonlinear, **fps, **{k: v for k, (_, v, _) in shifts.items()}}


def _is_weight(value) -> bool:
    owner = producer(value)
    return owner is not None and owner.name == "quant.constant" and \
        owner.param["fix_point"] is not None


def _conv_like(f: Fuser, op, name: str, weight, window: dict, x_nhwc, absorbed_before) -> bool:
    """Emit dpu convolution ``name`` for quant op ``op`` (input already NHWC)."""
    p = op.param
    nonlinear, after = f.trailing_activation(op, p["activation"], p["output_fp"])
    attributes = {**window, **_accumulator_attributes(p, nonlinear)}
    out = (after[-1] if after else op).results[0]
    y = f.emit(name, [x_nhwc, weight, *op.operands[2:]], attributes, out)
    f.replace([*after[::-1], op, *absorbed_before], out, f.nchw(y, out))
    return True


def _fuse_conv2d(f: Fuser, op, depthwise: bool) -> bool:
    """quant.conv2d on an NCHW feature map: group 1, or depthwise (group = C = M)."""
    p = op.param
    x, w = op.operands[:2]
    if rank(x) != 4 or not _is_weight(w) or fix_point_of(x) is None:
        return False
    m, cg, kh, kw = w.type.shape
    if depthwise and p["group"] == x.type.shape[1] == m and cg == 1 and m > 1:
        name, transform = "dpu.depthwise_conv2d_fix", (lambda a: a.transpose(1, 2, 3, 0))
    elif not depthwise and p["group"] == 1:
        name, transform = "dpu.conv2d_fix", (lambda a: a.transpose(0, 2, 3, 1))
    else:
        return False  # other groupings: the CPU
    source, pads, before = f.leading_pad(op, (kh, kw), p["dilations"])
    if before and fix_point_of(source) is None:
        source, pads, before = x, tuple(p["pads"]), []
    window = {"kernel": [kh, kw], "stride": p["strides"], "dilation": p["dilations"],
              "pad": pads}
    return _conv_like(f, op, name, f.weight(w, transform, "dpu_w"), window, f.nhwc(source),
                      before)


def fuse_conv(f: Fuser, op) -> bool:
    """quant.conv2d with group 1."""
    return _fuse_conv2d(f, op, depthwise=False)


def fuse_depthwise(f: Fuser, op) -> bool:
    """quant.conv2d with group = C = M (one filter per channel)."""
    return _fuse_conv2d(f, op, depthwise=True)


def fuse_conv_transpose(f: Fuser, op) -> bool:
    """quant.conv_transpose2d, group 1, no output padding."""
    p = op.param
    x, w = op.operands[:2]
    if rank(x) != 4 or not _is_weight(w) or p["group"] != 1 or any(p["output_padding"]) or \
            fix_point_of(x) is None:
        return False
    weight = f.weight(w, lambda a: a.transpose(1, 2, 3, 0), "dpu_w")  # (C, M, kh, kw) -> OHWI
    window = {"kernel": list(w.type.shape[2:]), "stride": p["strides"],
              "dilation": p["dilations"], "pad": p["pads"]}
    return _conv_like(f, op, "dpu.transposed_conv2d_fix", weight, window, f.nhwc(x), [])


def _flattened_map(x):
    """(flatten op, its 4-D input) if 2-D ``x`` is a flatten or reshape of an N×C×H×W map in
    NCHW order, else None."""
    owner = producer(x)
    if owner is None or owner.name not in ("quant.flatten", "quant.reshape") or on_cpu(owner):
        return None
    source = owner.operands[0]
    shape = source.type.shape
    if rank(source) != 4 or not static(shape) or fix_point_of(source) is None:
        return None
    if x.type.shape[0] != shape[0] or x.type.shape[1] != int(np.prod(shape[1:])):
        return None
    return owner, source


def fuse_dense(f: Fuser, op) -> bool:
    """quant.dense: a flatten of a 4-D map → conv2d_fix with the full spatial kernel; a 2-D
    input → conv2d_fix 1×1 on N×1×1×K; both reshaped back to N×M."""
    x, w = op.operands[:2]
    if rank(x) != 2 or not _is_weight(w) or not static(x.type.shape):
        return False
    m, k = w.type.shape
    flat = _flattened_map(x)
    if flat is not None:
        _, source = flat
        _, c, h, wd = source.type.shape
        x_nhwc = f.nhwc(source)
        weight = f.weight(w, lambda a: a.reshape(m, c, h, wd).transpose(0, 2, 3, 1), "dpu_w")
        kernel = [h, wd]
    else:
        if fix_point_of(x) is None:
            return False
        x_nhwc = f.reshape(x, (x.type.shape[0], 1, 1, k))
        weight = f.weight(w, lambda a: a.reshape(m, 1, 1, k), "dpu_w")
        kernel = [1, 1]
    p = op.param
    nonlinear, after = f.trailing_activation(op, p["activation"], p["output_fp"])
    out = (after[-1] if after else op).results[0]
    y = f.emit("dpu.conv2d_fix", [x_nhwc, weight, *op.operands[2:]],
               {"kernel": kernel, **_accumulator_attributes(p, nonlinear)})
    f.replace([*after[::-1], op], out, f.reshape(y, out.type.shape, out))
    return True


def fuse_pool(f: Fuser, op) -> bool:
    """quant.max_pool2d (dilation 1), quant.avg_pool2d (absorbing a zero pad), and
    quant.global_avg_pool (kernel = stride = H×W)."""
    x = op.operands[0]
    if rank(x) != 4 or fix_point_of(x) is None:
        return False
    p = op.param
    before, source = [], x
    if op.name == "quant.global_avg_pool":
        if not static(x.type.shape):
            return False
        kind, kernel = "avg", list(x.type.shape[2:])
        window = {"kernel": kernel, "stride": kernel}
    else:
        if tuple(p.get("dilations") or (1, 1)) != (1, 1):
            return False
        kind, pads = ("max" if op.name == "quant.max_pool2d" else "avg"), tuple(p["pads"])
        if kind == "avg" and not p["ceil_mode"]:  # zeros count in an average, not in a max
            source, pads, before = f.leading_pad(op, p["kernel_shape"], (1, 1))
        window = {"kernel": p["kernel_shape"], "stride": p["strides"], "pad": pads,
                  "pad_mode": "CEIL" if p["ceil_mode"] else "FLOOR"}
    factors = {}
    if kind == "avg":
        factors = dict(zip(("multi_factor", "shift_factor"), K.avg_pool_factor(*window["kernel"])))
    out = op.results[0]
    y = f.emit("dpu.pool_fix", [f.nhwc(source)], {"type": kind, **window, **factors,
                                                  "fix_point": p["fix_point"]}, out)
    f.replace([op, *before], out, f.nchw(y, out))
    return True


def fuse_eltwise(f: Fuser, op) -> bool:
    """quant.add / quant.mul of two 4-D feature maps, with its activation."""
    a, b = op.operands
    if rank(a) != 4 or rank(b) != 4 or fix_point_of(a) is None or fix_point_of(b) is None:
        return False
    p = op.param
    kind = "add" if op.name == "quant.add" else "mul"
    nonlinear, after = f.trailing_activation(op, p["activation"], p["output_fp"])
    fps, o = p["input_fps"], p["output_fp"]
    shifts = {k: v for k, (_, v, _) in dnn.eltwise_shifts(kind, fps, o).items()}
    out = (after[-1] if after else op).results[0]
    y = f.emit("dpu.eltwise_fix", [f.nhwc(a), f.nhwc(b)],
               {"type": kind, "nonlinear": nonlinear, "input_fps": fps, "output_fp": o,
                **shifts}, out)
    f.replace([*after[::-1], op], out, f.nchw(y, out))
    return True


def fuse_concat(f: Fuser, op) -> bool:
    """quant.concat of 4-D feature maps (the axis moves to its NHWC place)."""
    inputs = op.operands
    if not inputs or any(rank(v) != 4 or fix_point_of(v) is None for v in inputs):
        return False
    out = op.results[0]
    axis = NCHW_AXIS_IN_NHWC[op.param["axis"] % 4]
    y = f.emit("dpu.concat", [f.nhwc(v) for v in inputs],
               {"axis": axis, "fix_point": op.param["output_fp"]}, out)
    f.replace([op], out, f.nchw(y, out))
    return True


def fuse_resize(f: Fuser, op) -> bool:
    """quant.resize (nearest, integer scales)."""
    x = op.operands[0]
    if rank(x) != 4 or fix_point_of(x) is None:
        return False
    out = op.results[0]
    y = f.emit("dpu.upsample_fix", [f.nhwc(x)],
               {"scale": op.param["scales"], "fix_point": op.param["fix_point"]}, out)
    f.replace([op], out, f.nchw(y, out))
    return True


def _layout_trivial(shape) -> bool:
    """Whether a rank-2, or a rank-4 tensor with C = 1 or H·W = 1, has the same element order in
    NCHW and NHWC."""
    if len(shape) == 2:
        return True
    return len(shape) == 4 and (shape[1] == 1 or shape[2] * shape[3] == 1)


def fuse_reshape(f: Fuser, op) -> bool:
    """quant.reshape / quant.flatten between ranks 2 and 4 where NHWC and NCHW orders agree."""
    x, out = op.operands[0], op.results[0]
    si, so = x.type.shape, out.type.shape
    if si is None or so is None or not (static(si) and static(so)) or si[0] != so[0] or \
            not (_layout_trivial(si) and _layout_trivial(so)) or fix_point_of(x) is None:
        return False
    source = f.nhwc(x) if len(si) == 4 else x
    target = (so[0], so[2], so[3], so[1]) if len(so) == 4 else tuple(so)
    y = f.reshape(source, target, out)
    f.replace([op], out, f.nchw(y, out) if len(so) == 4 else y)
    return True


RULES = (
    Rule("conv", ("quant.conv2d",), "group 1", "a zero quant.pad before (into pad); a "
         "quant.relu/relu6 after, at its output fix point", "dpu.conv2d_fix", fuse_conv),
    Rule("depthwise", ("quant.conv2d",), "group = C = M", "as conv",
         "dpu.depthwise_conv2d_fix", fuse_depthwise),
    Rule("transposed-conv", ("quant.conv_transpose2d",), "group 1, output_padding 0",
         "a relu/relu6 after, as conv", "dpu.transposed_conv2d_fix", fuse_conv_transpose),
    Rule("dense", ("quant.dense",), "input a flatten/reshape of N×C×H×W, or 2-D",
         "the flatten (kernel H×W, weights (M, C·H·W) → OHWI); a relu/relu6 after",
         "dpu.conv2d_fix + dpu.reshape", fuse_dense),
    Rule("pool", ("quant.max_pool2d", "quant.avg_pool2d", "quant.global_avg_pool"),
         "dilation 1", "avg (floor mode): a zero quant.pad before", "dpu.pool_fix", fuse_pool),
    Rule("eltwise", ("quant.add", "quant.mul"), "two 4-D feature maps",
         "a quant.relu/relu6 after, at its output fix point", "dpu.eltwise_fix", fuse_eltwise),
    Rule("concat", ("quant.concat",), "4-D inputs", "-", "dpu.concat", fuse_concat),
    Rule("upsample", ("quant.resize",), "nearest, integer scales", "-", "dpu.upsample_fix",
         fuse_resize),
    Rule("reshape", ("quant.reshape", "quant.flatten"), "ranks 2/4, C = 1 or H·W = 1 "
         "(same order in NCHW and NHWC)", "-", "dpu.reshape", fuse_reshape),
)


def rules_table() -> str:
    """The rules as text, two lines each (``xir-opt --help`` shows it under the pass)."""
    lines = []
    for r in RULES:
        lines.append(f"{r.name:<16}{', '.join(r.matches)} -> {r.becomes}")
        lines.append(f"{'':<16}when {r.when}; absorbs: {r.absorbs}")
    return "\n".join(lines)


def fuse_module(module) -> dict:
    """Fuse every function of ``module`` in place; returns how often each rule applied."""
    counts: dict = {}
    for func in [op for op in module.walk() if op.name == "func.func"]:
        for region in func.regions:
            for block in region.blocks:
                fuser = Fuser(module, block)
                fuser.run()
                for name, n in fuser.fused.items():
                    counts[name] = counts.get(name, 0) + n
    return counts


@register_pass
@attrs.frozen
class Fuse(Pass):
    """Fuse quant ops into DPU ops in NHWC (quant → dpu dialect), rule by rule."""

    name = "fuse"
    help_details = "rules (an op marked xir.device = \"CPU\" stays a quant op):\n" + rules_table()

    def run(self, module: Operation) -> None:
        """Fuse ``module`` in place."""
        fuse_module(module)

