"""The lowering behind :func:`xir.passes.quantize.quantize_module`: graph-dialect ops rewritten
into quant-dialect ops, in program order, with legal fix points.

:class:`Lowering` walks one function: each op the DPU runs becomes its quant op (its fused
activation with it), each other op stays float between ``quant.dequantize`` and
``quant.quantize``, and the float ops nothing reads any more are erased. Fix points come from
calibration, tied across concat, pooling and data movement (:meth:`Lowering._plan`), and are
made legal by :mod:`.quant_legalize`; where a consumer must read a tensor at a fix point its
producer did not write, :meth:`Lowering.requantize` inserts an identity op. See
``docs/quantize.md``.
"""

from __future__ import annotations

import numpy as np

from xir import attributes as A
from xir import types as T
from xir.dialects.graph.base import ints_attr
from xir.dialects.graph.constants import constant_attr
from xir.dialects.quant import kernels as K
from xir.dialects.quant.nn import NN_OPS
from xir.dialects.quant.tensor import TENSOR_OPS
from xir.ir import Operation

from . import fixpoint
from . import quant_legalize as L
from .dpu_rules import constant_array, is_constant, node_name, producer
from .fusion import sole_user
from .quant_activations import (ACCUMULATOR_ACTIVATIONS, ELTWISE_ACTIVATIONS, activation_kind,
                                fused_activation, is_f32, swish_pattern)
from .quant_report import LayerReport

_OWN = object()  # emit's default location: that of the op being lowered
DEVICE = "xir.device"  # the inspect pass's discardable attribute: DPU or CPU
BOUNDARY = ("quant.quantize", "quant.dequantize")  # host glue: no device of their own
QUANT_OPS = {cls.name: cls for cls in [*NN_OPS, *TENSOR_OPS]}
LAYOUT = ("graph.reshape", "graph.flatten", "graph.squeeze", "graph.unsqueeze", "graph.identity",
          "graph.pad", "graph.resize")
POOLS = ("graph.max_pool2d", "graph.avg_pool2d", "graph.global_avg_pool", "graph.reduce_mean")


# -- fix points of constants ---------------------------------------------------------------------


def constant_fp(array: np.ndarray, method: str) -> int:
    """The fix point of a weight or bias: non-overflow, or diffs (min-MSE with STD_ROUND; the
    percentile method uses diffs too)."""
    array = np.asarray(array, np.float64).reshape(-1)
    if array.size == 0:
        return fixpoint.EMPTY_FP
    if method == "nonoverflow":
        return fixpoint.nonoverflow_fp(float(array.min()), float(array.max()))
    return fixpoint.diffs_fp(array.astype(np.float32), half_up=False)


def quantize_constant(array: np.ndarray, fp: int) -> np.ndarray:
    """int8 ``clamp(STD_ROUND(x · 2^fp))``."""
    return K.fix(np.asarray(array, np.float64), fp, 8, K.STD_ROUND).astype(np.int8)


# -- the lowering --------------------------------------------------------------------------------


class _UnionFind:
    def __init__(self):
        self.parent: dict = {}

    def find(self, x):
        self.parent.setdefault(x, x)
        while self.parent[x] is not x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a, b):
        ra, rb = self.find(a), self.find(b)
        if ra is not rb:
            self.parent[rb] = ra


class Lowering:
    """Rewrites one function of the graph dialect into the quant dialect, in place."""

    def __init__(self, module, func, calibration, float_of: dict, method: str, report):
        self.module, self.func, self.block = module, func, func.regions[0].blocks[0]
        self.calibration, self.float_of, self.method = calibration, float_of, method
        self.report = report
        self.q: dict = {}  # float value -> its int8 value
        self.deq: dict = {}  # float value -> its dequantized float value
        self.kept: set = set()  # float ops that stay
        self.absorbed: dict = {}  # fused activation op -> its anchor
        self.layers: list = []  # (LayerReport, float value, quant value)
        self.before = None  # ops are inserted before this op
        self.planned: dict = {}
        self._plan()

    # -- fix points before legalization ---------------------------------------------------------

    def stats_fp(self, value) -> int:
        """The calibrated fix point of float ``value`` (a constant: its own; unseen: 7)."""
        if is_constant(value):
            return constant_fp(constant_array(value, np.float64), self.method)
        stats = self.calibration.stats.get(self.float_of.get(value))
        return stats.fix_point(self.method) if stats is not None else fixpoint.EMPTY_FP

    def _forced_fp(self, value) -> int | None:
        """The fix point a rule imposes on ``value`` (relu6, hard sigmoid outputs)."""
        owner = producer(value)
        kind = activation_kind(owner) if owner is not None else None
        if kind == "relu6":
            return L.RELU6_FP
        if kind == "hard_sigmoid":
            return max(self.stats_fp(value), 7)
        return None

    def _plan(self) -> None:
        """The fix point each float value should be written at: its calibrated one, shared
        across the ties of concat, pooling and data movement (the smallest of the tie)."""
        ties = _UnionFind()
        for op in self.block.ops:
            if not op.results or not is_f32(op.results[0]):
                continue
            if op.name == "graph.concat" or op.name in POOLS or op.name in LAYOUT:
                for v in op.operands:
                    if is_f32(v) and not is_constant(v):
                        ties.union(op.results[0], v)
        members: dict = {}
        for value in list(ties.parent):
            members.setdefault(ties.find(value), []).append(value)
        for group in members.values():
            forced = [f for f in map(self._forced_fp, group) if f is not None]
            fp = forced[0] if forced else min(self.stats_fp(v) for v in group)
            for v in group:
                self.planned[v] = fp

    def planned_fp(self, value) -> int:
        fp = self.planned.get(value)
        if fp is None:
            fp = self._forced_fp(value)
        return self.stats_fp(value) if fp is None else fp

    # -- emitting ---------------------------------------------------------------------------------

    def emit(self, name: str, operands, attributes: dict, location=_OWN, hint=None):
        """Insert quant op ``name`` before the op being lowered (with its location unless told
        otherwise); returns its result."""
        attrs_ = {k: _attr(v) for k, v in attributes.items() if v is not None}
        types = QUANT_OPS[name].infer_result_types([v.type for v in operands], attrs_)
        op = Operation.create(name, list(operands), types, attributes=attrs_,
                              location=self.before.location if location is _OWN else location)
        device = self.before.attributes.get(DEVICE) if location is _OWN else None
        if device is not None and name not in BOUNDARY:  # the inspector's decision follows
            op.attributes[DEVICE] = device  # the layer's compute ops (fuse reads it)
        if hint:
            op.results[0].name_hint = hint
        self.block.insert_before(op, self.before)
        return op.results[0]

    @staticmethod
    def fp_of(qvalue) -> int:
        return producer(qvalue).output_fix_point()

    def quant(self, value, fp: int | None = None):
        """The int8 version of float ``value``, at ``fp`` if given (requantized if need be)."""
        current = self.q.get(value)
        if current is None:
            fp = self.planned_fp(value) if fp is None else fp
            if is_constant(value):
                current = self.emit("quant.constant", [], {
                    "value": constant_attr(self.module,
                                           quantize_constant(constant_array(value, np.float64), fp),
                                           f"{node_name(producer(value))}_q"),
                    "fix_point": fp}, location=producer(value).location)
            else:
                owner = producer(value)  # None: a model input, quantized with STD_ROUND
                mode = K.STD_ROUND if owner is None else K.DPU_ROUND
                current = self.emit("quant.quantize", [value],
                                    {"fix_point": fp, "round_mode": A.StringAttr(mode)},
                                    location=None if owner is None else owner.location,
                                    hint=f"{value.name_hint or 'x'}_q")
            self.q[value] = current
            return current
        if fp is None or self.fp_of(current) == fp:
            return current
        return self.requantize(value, current, fp)

    def requantize(self, value, current, fp: int):
        """``current`` (int8 at its fix point i) rewritten at fix point ``fp``."""
        i = self.fp_of(current)
        shape = current.type.shape
        k = max(0, min(6, fp - i))  # identity weight 2^k at fix point k: shift_cut = i + k - fp
        cut = i + k - fp
        what = f"{value.name_hint or 'value'} from fix point {i} to {fp}"
        if 0 <= cut <= 16 and len(shape) in (2, 4) and shape[1] != T.DYNAMIC:
            channels = shape[1]
            if len(shape) == 4:
                weight = np.full((channels, 1, 1, 1), 1 << k, np.int8)
                name, extra = "quant.conv2d", {"group": channels}
            else:
                weight = (np.eye(channels) * (1 << k)).astype(np.int8)
                name, extra = "quant.dense", {}
            w = self.emit("quant.constant", [], {
                "value": constant_attr(self.module, weight, "requantize_w"), "fix_point": k})
            self.report.requantized.append(f"{what} (identity {name})")
            return self.emit(name, [current, w], {"input_fp": i, "weight_fp": k, "output_fp": fp,
                                                  **extra})
        self.report.requantized.append(f"{what} (float round trip)")
        back = self.emit("quant.dequantize", [current], {"fix_point": i})
        return self.emit("quant.quantize", [back], {"fix_point": fp,
                                                    "round_mode": A.StringAttr(K.DPU_ROUND)})

    def as_float(self, value):
        """Float ``value`` as the kept float ops see it (dequantized if its producer is
        lowered)."""
        owner = producer(value)
        if owner is None or owner in self.kept or owner.name == "graph.constant" or \
                value not in self.q:
            return value
        if value not in self.deq:
            current = self.q[value]
            self.deq[value] = self.emit("quant.dequantize", [current],
                                        {"fix_point": self.fp_of(current)},
                                        hint=f"{value.name_hint or 'x'}_dq")
        return self.deq[value]

    # -- the walk ---------------------------------------------------------------------------------

    def run(self) -> None:
        for op in list(self.block.ops):
            self.before = op
            if op is self.block.last_op and not op.results:  # func.return
                op.set_operands([self._output(v) for v in op.operands])
                break
            if op.name == "graph.constant":
                continue
            if op in self.absorbed:
                continue
            if not self.lower(op):
                self.keep(op)
        self._erase_float()

    def _output(self, value):
        """A returned value, dequantized under its float name (``xir run`` names outputs so)."""
        result = self.as_float(value)
        if result is not value and value.name_hint:
            self.q[value].name_hint = f"{value.name_hint}_q"
            result.name_hint = value.name_hint
        return result

    def keep(self, op) -> None:
        self.kept.add(op)
        self.report.float_ops.append(node_name(op))
        op.set_operands([self.as_float(v) for v in op.operands])

    def lower(self, op) -> bool:
        """Lower ``op``; False if it stays float."""
        if not op.results or not is_f32(op.results[0]) or \
                not all(is_f32(v) for v in op.operands):
            return False
        name = op.name
        if name in ("graph.conv2d", "graph.conv_transpose2d"):
            return self.lower_conv(op)
        if name in ("graph.gemm", "graph.matmul"):
            return self.lower_dense(op)
        if name in POOLS:
            return self.lower_pool(op)
        if name in ("graph.add", "graph.mul"):
            return self.lower_eltwise(op)
        if name == "graph.concat":
            return self.lower_concat(op)
        if name in LAYOUT:
            return self.lower_layout(op)
        if name == "graph.prelu":
            return self.lower_prelu(op)
        if activation_kind(op) is not None:
            return self.lower_activation(op)
        return False

    def _record(self, layer: LayerReport, float_value, qvalue) -> None:
        self.q[float_value] = qvalue
        self.layers.append((layer, float_value, qvalue))
        self.report.layers.append(layer)

    # -- convolutions and dense -------------------------------------------------------------------

    def lower_conv(self, op) -> bool:
        operands = op.operands
        if len(operands) < 2 or not all(is_constant(v) for v in operands[1:]):
            return False
        attributes = {k: op.attributes[k] for k in ("strides", "pads", "dilations", "group",
                                                    "output_padding") if k in op.attributes}
        bias = constant_array(operands[2], np.float64) if len(operands) > 2 else None
        return self._accumulate(op, "quant." + op.name.split(".")[1],
                                constant_array(operands[1], np.float64), bias,
                                attributes)

    def lower_dense(self, op) -> bool:
        x, w = op.operands[0], op.operands[1]
        if len(x.type.shape) != 2 or not is_constant(w) or len(w.type.shape) != 2:
            return False
        weight = constant_array(w, np.float64)
        bias = None
        if op.name == "graph.gemm":
            p = op.param
            if p["trans_a"]:
                return False
            weight = (weight if p["trans_b"] else weight.T) * p["alpha"]
            if len(op.operands) > 2:
                if not is_constant(op.operands[2]):
                    return False
                c = constant_array(op.operands[2], np.float64) * p["beta"]
                if c.size not in (1, weight.shape[0]) or (c.ndim == 2 and c.shape[0] != 1):
                    return False
                bias = np.broadcast_to(c.reshape(-1), (weight.shape[0],)).copy()
        else:
            weight = weight.T
        tail = None
        if bias is None:  # MatMul + Add of a constant vector: the bias of a dense
            tail = sole_user(op.results[0])
            bias = _bias_of(tail, op.results[0], weight.shape[0])
            tail = tail if bias is not None else None
        return self._accumulate(op, "quant.dense", weight, bias, {}, tail)

    def _accumulate(self, op, name: str, weight, bias, attributes, tail=None) -> bool:
        """Lower ``op`` (and ``tail``, an op adding its bias) with its fused activation."""
        last = tail or op
        act = fused_activation(last, ACCUMULATOR_ACTIVATIONS)
        kind = activation_kind(act) if act is not None else "none"
        absorbed = [tail, act]
        swish = swish_pattern(last.results[0]) if act is None else None
        if swish is not None:  # x · hard_sigmoid(x): a hard swish
            kind, act = "hard_swish", swish[1]
            absorbed = [tail, *swish]
        out = (act or last).results[0]
        x = self.quant(op.operands[0])
        i = self.fp_of(x)
        w = constant_fp(weight, self.method)
        b = b_limit = None
        if bias is not None:
            b = constant_fp(bias, self.method)
            b_limit = fixpoint.nonoverflow_fp(float(bias.min()), float(bias.max()))
        o = self.planned_fp(out)
        h = None
        if kind == "hard_sigmoid":
            h, o = L.hard_sigmoid_fps(self.stats_fp(last.results[0]), o)
            w, b, h = L.accumulate(i, w, b, h, b_limit)
            h, o = L.hard_sigmoid_fps(h, o)
        elif kind == "hard_swish":
            h, o = L.hard_swish_fps(self.stats_fp(last.results[0]), o)
            w, b, h = L.accumulate(i, w, b, h, b_limit)
            h, o = L.hard_swish_fps(h, o)
        else:
            if kind == "relu6":
                o = L.RELU6_FP
            w, b, o = L.accumulate(i, w, b, o, b_limit)
        layer_name = node_name(op)
        wq = self.emit("quant.constant", [], {
            "value": constant_attr(self.module, quantize_constant(weight, w), f"{layer_name}_qw"),
            "fix_point": w})
        operands = [x, wq]
        if bias is not None:
            operands.append(self.emit("quant.constant", [], {
                "value": constant_attr(self.module, quantize_constant(bias, b),
                                       f"{layer_name}_qb"),
                "fix_point": b}))
        result = self.emit(name, operands, {
            **attributes, "input_fp": i, "weight_fp": w, "bias_fp": b, "output_fp": o,
            "activation": A.StringAttr(kind), "hsigmoid_in": h}, hint=out.name_hint)
        cut = i + w - (h if h is not None else o)
        shifts = {"shift_cut": cut}
        if b is not None:
            shifts["shift_bias"] = i + w - b
        shifts.update(_hsigmoid_shifts(kind, h, o))
        for absorbed_op in absorbed:
            if absorbed_op is not None:
                self.absorbed[absorbed_op] = op
        self._record(LayerReport(layer_name, name, [i], o, w, b, kind, shifts), out, result)
        return True

    # -- pooling, eltwise, concat, data movement, activations -----------------------------------

    def lower_pool(self, op) -> bool:
        p = op.param
        x = op.operands[0]
        if op.name == "graph.reduce_mean":
            axes = sorted(a % 4 for a in (p["axes"] or ())) if len(x.type.shape) == 4 else None
            if axes != [2, 3] or not p["keepdims"]:
                return False
            name, attributes = "quant.global_avg_pool", {}
        elif op.name == "graph.global_avg_pool":
            name, attributes = "quant.global_avg_pool", {}
        elif op.name == "graph.max_pool2d":
            name = "quant.max_pool2d"
            attributes = {k: op.attributes[k] for k in ("kernel_shape", "strides", "pads",
                                                        "dilations", "ceil_mode")
                          if k in op.attributes}
        else:
            if any(p["pads"]) and not p["count_include_pad"]:
                return False  # the DPU always divides by the whole window
            name = "quant.avg_pool2d"
            attributes = {k: op.attributes[k] for k in ("kernel_shape", "strides", "pads",
                                                        "ceil_mode") if k in op.attributes}
        qx = self.quant(x)
        fp = self.fp_of(qx)
        result = self.emit(name, [qx], {**attributes, "fix_point": fp},
                           hint=op.results[0].name_hint)
        self._record(LayerReport(node_name(op), name, [fp], fp), op.results[0], result)
        return True

    def lower_eltwise(self, op) -> bool:
        a, b = op.operands
        if is_constant(a) or is_constant(b):
            return False  # the eltwise engine combines two feature maps
        is_add = op.name == "graph.add"
        act = fused_activation(op, ELTWISE_ACTIVATIONS) if is_add else None
        kind = activation_kind(act) if act is not None else "none"
        out = (act or op).results[0]
        qa, qb = self.quant(a), self.quant(b)
        fa, fb = self.fp_of(qa), self.fp_of(qb)
        if is_add and abs(fa - fb) > L.MAX_SHIFT_READ:  # shift_read: bring the finer one down
            if fa > fb:
                qa, fa = self.quant(a, fb + L.MAX_SHIFT_READ), fb + L.MAX_SHIFT_READ
            else:
                qb, fb = self.quant(b, fa + L.MAX_SHIFT_READ), fa + L.MAX_SHIFT_READ
        o = self.planned_fp(out)
        o = L.add_output((fa, fb), o) if is_add else L.mul_output((fa, fb), o)
        name = "quant.add" if is_add else "quant.mul"
        result = self.emit(name, [qa, qb], {"input_fps": ints_attr([fa, fb]), "output_fp": o,
                                            "activation": A.StringAttr(kind)},
                           hint=out.name_hint)
        low = min(fa, fb)
        shifts = ({"shift_read": [fa - low, fb - low], "shift_write": low - o} if is_add
                  else {"shift_write": fa + fb - o})
        if act is not None:
            self.absorbed[act] = op
        self._record(LayerReport(node_name(op), name, [fa, fb], o, activation=kind,
                                 shifts=shifts), out, result)
        return True

    def lower_concat(self, op) -> bool:
        fp = self.planned_fp(op.results[0])
        inputs = [self.quant(v, fp) for v in op.operands]
        result = self.emit("quant.concat", inputs, {
            "axis": op.attributes["axis"], "input_fps": ints_attr([fp] * len(inputs)),
            "output_fp": fp}, hint=op.results[0].name_hint)
        self._record(LayerReport(node_name(op), "quant.concat", [fp] * len(inputs), fp),
                     op.results[0], result)
        return True

    def lower_layout(self, op) -> bool:
        x, out = op.operands[0], op.results[0]
        p = op.param
        if op.name == "graph.identity":
            self.q[out] = self.quant(x)
            return True
        if op.name == "graph.pad":
            if p["mode"] != "constant" or p["value"] != 0:
                return False
            name, attributes = "quant.pad", {"pads": op.attributes["pads"]}
        elif op.name == "graph.resize":
            scales = _integer_nearest_scales(op)
            if scales is None:
                return False
            name, attributes = "quant.resize", {"scales": ints_attr(scales)}
        elif op.name == "graph.flatten":
            name, attributes = "quant.flatten", {"axis": A.IntegerAttr(p["axis"])}
        elif op.name == "graph.reshape":
            name, attributes = "quant.reshape", {"shape": op.attributes["shape"],
                                                 "allowzero": A.IntegerAttr(p["allowzero"])}
        else:  # squeeze, unsqueeze: a reshape to the result's shape
            shape = out.type.shape
            if sum(d == T.DYNAMIC for d in shape) > 1:
                return False
            name = "quant.reshape"
            attributes = {"shape": ints_attr([-1 if d == T.DYNAMIC else d for d in shape])}
        qx = self.quant(x)
        fp = self.fp_of(qx)
        self.q[out] = self.emit(name, [qx], {**attributes, "fix_point": fp},
                                hint=out.name_hint)
        return True

    def lower_activation(self, op) -> bool:
        kind, x, out = activation_kind(op), op.operands[0], op.results[0]
        swish = swish_pattern(x) if kind == "hard_sigmoid" else None
        if swish is not None:  # x · hard_sigmoid(x): a hard swish
            kind, out = "hard_swish", swish[1].results[0]
            self.absorbed[swish[1]] = op
        qx = self.quant(x)
        i = self.fp_of(qx)
        if kind == "hard_swish":
            h, o = L.hard_swish_fps(i, self.planned_fp(out))
            qx, i = (qx, i) if h == i else (self.quant(x, h), h)
        else:
            o = L.activation_output(kind, i, self.planned_fp(out))
        name = "quant." + kind
        result = self.emit(name, [qx], {"input_fp": i, "output_fp": o}, hint=out.name_hint)
        shift = _hsigmoid_shifts(kind, i, o) or {"shift": i - o}
        self._record(LayerReport(node_name(op), name, [i], o, activation=kind, shifts=shift),
                     out, result)
        return True

    def lower_prelu(self, op) -> bool:
        """graph.prelu with constant slopes, one per channel (axis 1) or one for all: a
        standalone quant.prelu (the DPU applies it on its own, not fused into a conv)."""
        x, slope, out = op.operands[0], op.operands[1], op.results[0]
        shape = x.type.shape
        if not is_constant(slope) or len(shape) < 2:
            return False
        slopes = constant_array(slope, np.float64)
        aligned = (1,) * (len(shape) - slopes.ndim) + slopes.shape  # as it broadcasts to x
        if slopes.size != 1 and aligned != (1, shape[1]) + (1,) * (len(shape) - 2):
            return False  # the DPU's slopes vary along channels only
        qx = self.quant(x)
        i = self.fp_of(qx)
        a = L.prelu_slope_fp(constant_fp(slopes, self.method))
        o = L.activation_output("prelu", i, self.planned_fp(out))
        qa = self.emit("quant.constant", [], {
            "value": constant_attr(self.module, quantize_constant(slopes, a),
                                   f"{node_name(op)}_qslope"),
            "fix_point": a})
        result = self.emit("quant.prelu", [qx, qa], {"input_fp": i, "slope_fp": a,
                                                     "output_fp": o}, hint=out.name_hint)
        self._record(LayerReport(node_name(op), "quant.prelu", [i], o, weight_fp=a,
                                 activation="prelu", shifts={"shift": i + a - o}), out, result)
        return True

    # -- cleaning up ------------------------------------------------------------------------------

    def _erase_float(self) -> None:
        """Erase the float ops nothing reads any more, then the resources nothing names."""
        for op in list(self.block.ops_reversed()):
            if op.name.startswith("graph.") and not any(r.uses for r in op.results):
                op.erase()
        used = set()
        for op in self.module.walk():
            for value in op.attributes.values():
                if isinstance(value, A.DenseResourceAttr):
                    used.add(value.handle.name)
        for name in list(self.module.resources):
            if name not in used:
                del self.module.resources[name]


def _hsigmoid_shifts(kind: str, h: int | None, o: int) -> dict:
    """The shifts of a hard sigmoid or hard swish reading at ``h`` and writing at ``o``."""
    if kind == "hard_sigmoid":
        return {"shift_hsigmoid": K.shift_hsigmoid(h, o)}
    if kind == "hard_swish":
        return {"shift_hsigmoid": K.shift_hsigmoid(h, K.HSWISH_HSIGMOID_FP),
                "shift_hswish": K.shift_hswish(h, o)}
    return {}


def _bias_of(op, x, channels: int):
    """The bias vector if ``op`` adds a constant of ``channels`` values (or one) to ``x``."""
    if op is None or op.name != "graph.add" or x not in op.operands:
        return None
    other = op.operands[1] if op.operands[0] is x else op.operands[0]
    if other is x or not is_constant(other) or op.results[0].type.shape != x.type.shape:
        return None
    c = constant_array(other, np.float64)
    if c.size not in (1, channels) or (c.ndim >= 1 and c.shape[-1] != c.size):
        return None
    return np.broadcast_to(c.reshape(-1), (channels,)).copy()


def _attr(value):
    """A Python value as an attribute (attributes pass through)."""
    if isinstance(value, bool):
        return A.IntegerAttr(int(value))
    if isinstance(value, (int, np.integer)):
        return A.IntegerAttr(int(value))
    if isinstance(value, str):
        return A.StringAttr(value)
    return value


def _integer_nearest_scales(op):
    """[SH, SW] if resize ``op`` is a nearest upsampling of H and W by integers that picks
    x[i // S] (checked on a probe), else None."""
    if op.param["mode"] != "nearest":
        return None
    x, out = op.operands[0].type.shape, op.results[0].type.shape
    if len(x) != 4 or T.DYNAMIC in (*x[1:], *out[1:]) or tuple(x[1:2]) != tuple(out[1:2]):
        return None
    if out[2] % x[2] or out[3] % x[3]:
        return None
    scales = [out[2] // x[2], out[3] // x[3]]
    probe = np.arange(x[1] * x[2] * x[3], dtype=np.float32).reshape(1, *x[1:])
    try:
        (got,) = op.evaluate(probe)
    except Exception:  # noqa: BLE001 - a resize the float executor cannot probe stays float
        return None
    expected = K.resize_nearest(probe, *scales)
    return scales if np.array_equal(np.asarray(got), expected) else None
