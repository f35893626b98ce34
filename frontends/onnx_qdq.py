"""Quant dialect → ONNX QDQ: a quantized module as a float ONNX graph that onnxruntime runs.

:func:`export_qdq` writes every int8 tensor of ``@main`` (q at fix point fp) as a
QuantizeLinear/DequantizeLinear pair with scale 2^-fp (float32) and zero point int8 0; its
consumers read the dequantized float, which is q · 2^-fp exactly. Int8 weights become int8
initializers behind a DequantizeLinear at the fix point their consumer reads them at; a bias
becomes the int32 ``bias << shift_bias`` at the accumulator's scale 2^-(input_fp + weight_fp)
(ONNX's QDQ bias form) when shift_bias >= 0, else its int8 values behind a DequantizeLinear.
Each quant op becomes its float ONNX op, its fused activation a separate node before the output
QuantizeLinear; graph-dialect ops left in the module go through :mod:`.onnx_export`.

Where the export computes exactly what the quant dialect does (docs/quant.md):

- int8 × int8 products and their sums are exact in float32 while |Σ| < 2^24 LSBs of the
  accumulator (always below 1024 terms per output; in practice far beyond);
- the DPU's average-pool multiplier m / 2^s ≠ 1 / (kh · kw) is an AveragePool (padding counted)
  followed by a Mul by m · kh · kw / 2^s; ceil-mode windows are padded explicitly first;
- the eltwise add's floor when an input is read with shift_read > 2 is Mul, Floor, Mul; the
  fused hard sigmoid's rounding at ``hsigmoid_in`` (not clamped) is Mul, Add 0.5, Floor, Mul;
- the hard swish's inner hard sigmoid, rounded and clamped to int8 at fix point 7, is
  HardSigmoid, then Mul, Add 0.5, Floor, Mul and Min 127/128, then a Mul by x; its float32
  arithmetic is exact while hsigmoid_in <= 10 (the hard sigmoid's too);
- PReLU is PRelu of the dequantized input and int8 slopes.

What differs is the rounding at ties: QuantizeLinear rounds half to even, the DPU half toward +∞
(DPU_ROUND) and ``quant.quantize`` half away from zero (STD_ROUND). Each rounded value that is
exactly halfway between two integers may come out one LSB apart in onnxruntime: lower for a
DPU_ROUND tie x + 1/2 with x = floor even, one LSB closer to zero for a STD_ROUND tie ±(x + 1/2)
with x even; every other value is bit-identical. A one-LSB
difference in one layer then propagates through the layers after it like any small input change
(on the digits CNNs: up to 6 LSBs on a logit, the class unchanged on 99.6-100 % of the test
images). ``export_qdq(..., dpu_rounding=True)``, the default, adds half a grid step before each
rounding QuantizeLinear so that ties cannot occur, and onnxruntime then matches the executor bit
for bit; ``dpu_rounding=False`` gives the plain QDQ pattern.
"""

from __future__ import annotations

import numpy as np

from xir import types as T
from xir.attributes import location_name
from xir.diagnostics import XirError
from xir.dialects.graph.constants import identifier
from xir.dialects.graph.nn_kernels import _ceil_pads
from xir.dialects.quant import kernels as K

from .onnx_export import (EXPORTERS, export_graph_op, export_inputs, export_return,
                          main_function, make_model, new_exporter, run_exporter)

LEAKY_ALPHA = K.LEAKY_NUMERATOR / (1 << K.LEAKY_SHIFT)  # 26 / 256, exact in float32
HSIGMOID_ALPHA = K.HSIGMOID_NUMERATOR / (1 << K.HSIGMOID_SHIFT)  # 2731 / 2^14
HSIGMOID_BETA = 3 * K.HSIGMOID_NUMERATOR / (1 << K.HSIGMOID_SHIFT)


class _QdqExporter:
    """The state of one QDQ export on top of the graph exporter's: quant constants waiting for
    their consumers' fix points, and the int8 (QuantizeLinear) name of every int8 value."""

    def __init__(self, ex):
        self.ex = ex
        self.constants: dict[int, np.ndarray] = {}  # id(value) -> integers of a quant.constant
        self.constant_names: dict[int, str] = {}
        self.ints: dict[int, str] = {}  # id(int8 value) -> its QuantizeLinear output
        self.shared: dict[tuple, str] = {}  # scales, zero points and dequantized constants

    # -- names and shared initializers --

    def tmp(self, suffix: str) -> str:
        """A fresh tensor name for an intermediate of the op being exported."""
        base = self.ex.node_name or "t"
        return self.ex.unique(f"{base}_{suffix}", suffix)

    def _shared_init(self, key: tuple, array: np.ndarray, base: str) -> str:
        if key not in self.shared:
            name = self.ex.unique(base, base)
            self.ex.inits.append(self.ex.onnx.numpy_helper.from_array(array, name))
            self.shared[key] = name
        return self.shared[key]

    def scalar(self, value: float) -> str:
        """A float32 scalar initializer (shared)."""
        return self._shared_init(("f32", float(value)), np.array(value, np.float32),
                                 f"const_{float(value):g}".replace("-", "m").replace(".", "_"))

    def scale(self, fp: int) -> str:
        """The scale 2^-fp as a float32 scalar initializer (shared)."""
        return self._shared_init(("scale", fp), np.array(np.ldexp(1.0, -fp), np.float32),
                                 f"scale_fp{fp}".replace("-", "m"))

    def zero_point(self, dtype) -> str:
        """A zero zero-point of ``dtype`` (int8 or int32; shared)."""
        dtype = np.dtype(dtype)
        return self._shared_init(("zp", dtype.str), np.array(0, dtype), f"zero_point_{dtype}")

    def dequantized(self, integers: np.ndarray, fp: int, base: str, key) -> str:
        """The float name of integer initializer ``integers`` behind a DequantizeLinear at
        ``fp`` (one per constant and fix point)."""
        full = ("dq", key, fp, np.dtype(integers.dtype).str)
        if full not in self.shared:
            init = self.ex.unique(base, base)
            self.ex.inits.append(self.ex.onnx.numpy_helper.from_array(integers, init))
            out = self.ex.unique(f"{base}_dq", base)
            self.ex.node("DequantizeLinear", [init, self.scale(fp),
                                              self.zero_point(integers.dtype)], [out])
            self.shared[full] = out
        return self.shared[full]

    # -- operands and results --

    def read(self, op, index: int) -> str:
        """The float name of operand ``index`` of ``op``, a constant dequantized at the fix
        point ``op`` reads it at."""
        value = op.operands[index]
        if id(value) not in self.constants:
            return self.ex.name_of(value)
        fps = op.operand_fix_points() if hasattr(op, "operand_fix_points") else []
        fp = fps[index] if index < len(fps) else None
        own = value.owner.param["fix_point"]
        fp = own if fp is None else fp
        if fp is None:
            raise self.ex.error("reads a quant.constant that has no fix point")
        return self.dequantized(self.constants[id(value)], fp, self.constant_names[id(value)],
                                id(value))

    def bias(self, op) -> str:
        """The float name of the bias of a conv or dense ``op``: int32 ``b << shift_bias`` at
        the accumulator's scale when shift_bias >= 0 (exact), else the int8 values at bias_fp."""
        value = op.operands[2]
        if id(value) not in self.constants or op.shift_bias < 0:
            return self.read(op, 2)
        accumulator_fp = op.param["input_fp"] + op.param["weight_fp"]
        integers = self.constants[id(value)].astype(np.int32) << op.shift_bias
        return self.dequantized(integers, accumulator_fp, self.constant_names[id(value)],
                                id(value))

    def quantize(self, result, x: str, fp: int) -> None:
        """Write float ``x`` as int8 ``result`` at ``fp``: QuantizeLinear then
        DequantizeLinear; consumers read the dequantized float."""
        hint = result.name_hint and identifier(result.name_hint)
        base = hint or self.ex.node_name or "q"
        q = self.ex.unique(f"{base}_q", "q")
        self.ex.node("QuantizeLinear", [x, self.scale(fp), self.zero_point(np.int8)], [q])
        out = self.ex.define(result, hint, f"{self.ex.node_name or 't'}_out")
        self.ex.node("DequantizeLinear", [q, self.scale(fp), self.zero_point(np.int8)], [out])
        self.ints[id(result)] = q

    def int8_input(self, arg) -> None:
        """An int8 argument: its graph input stays int8, and its consumers read it through a
        DequantizeLinear at the fix point they read it at (exact)."""
        q = self.ex.name_of(arg)
        out = self.ex.define(arg, f"{q}_float", "input_float")
        fp = read_fix_point(arg)
        self.ex.node("DequantizeLinear", [q, self.scale(fp), self.zero_point(np.int8)], [out])
        self.ints[id(arg)] = q

    def name_of(self, value) -> str:
        """A returned value's name: an int8 one is returned as int8 (its QuantizeLinear)."""
        return self.ints.get(id(value)) or self.ex.name_of(value)

    # -- float helpers --

    def binary(self, op_type: str, x: str, value: float, suffix: str) -> str:
        out = self.tmp(suffix)
        self.ex.node(op_type, [x, self.scalar(value)], [out])
        return out

    def unary(self, op_type: str, x: str, suffix: str, **attrs) -> str:
        out = self.tmp(suffix)
        self.ex.node(op_type, [x], [out], **attrs)
        return out

    def floor_at(self, x: str, fp: int, half: bool) -> str:
        """floor(x · 2^fp (+ 1/2)) · 2^-fp in float ops: the DPU's floor shift, or its
        DPU_ROUND with ``half``; exact for power-of-two scales."""
        y = self.binary("Mul", x, np.ldexp(1.0, fp), "scaled")
        if half:
            y = self.binary("Add", y, 0.5, "half")
        return self.binary("Mul", self.unary("Floor", y, "floor"), np.ldexp(1.0, -fp), "floored")

    def activation(self, x: str, activation: str, hsigmoid_in: int | None = None) -> str:
        """``x`` after a fused or standalone activation (float nodes)."""
        if activation == "none":
            return x
        if activation == "relu":
            return self.unary("Relu", x, "relu")
        if activation == "relu6":
            out = self.tmp("relu6")
            self.ex.node("Clip", [x, self.scalar(0.0), self.scalar(6.0)], [out])
            return out
        if activation == "leaky_relu":
            return self.unary("LeakyRelu", x, "leaky", alpha=LEAKY_ALPHA)
        if activation in ("hard_sigmoid", "hard_swish"):
            if hsigmoid_in is not None:  # the fused one rounds (without clamping) first
                x = self.floor_at(x, hsigmoid_in, half=True)
            hsigmoid = self.unary("HardSigmoid", x, "hsigmoid", alpha=HSIGMOID_ALPHA,
                                  beta=HSIGMOID_BETA)
            if activation == "hard_sigmoid":
                return hsigmoid
            # hard swish: the hard sigmoid as int8 at fix point 7 (DPU_ROUND, clamped), times x
            fp = K.HSWISH_HSIGMOID_FP
            rounded = self.floor_at(hsigmoid, fp, half=True)
            clamped = self.binary("Min", rounded, np.ldexp(float(K.INT8_MAX), -fp), "clamped")
            out = self.tmp("hswish")
            self.ex.node("Mul", [x, clamped], [out])
            return out
        raise self.ex.error(f"unknown activation '{activation}'")


# -- one exporter per quant op: (state, op) -> the float name of the result before its QDQ ------


def _accumulating(graph_op: str, **extra):
    """quant.conv2d, quant.conv_transpose2d and quant.dense: their float op on the dequantized
    operands, the bias at the accumulator's scale, then the fused activation."""
    def export(s: _QdqExporter, op) -> str:
        ins = [s.read(op, 0), s.read(op, 1)] + ([s.bias(op)] if len(op.operands) == 3 else [])
        out = s.tmp("acc")
        if graph_op == "Gemm":
            s.ex.node("Gemm", ins, [out], transB=1)
        else:
            run_exporter(s.ex, op, EXPORTERS[graph_op], ins, [out])
        p = op.param
        fused_in = p["hsigmoid_in"] if p["activation"] in ("hard_sigmoid", "hard_swish") else None
        return s.activation(out, p["activation"], fused_in)
    return export


def _reused(graph_op: str):
    """An op whose graph-dialect exporter applies unchanged to the dequantized operands."""
    def export(s: _QdqExporter, op) -> str:
        out = s.tmp("f")
        run_exporter(s.ex, op, EXPORTERS[graph_op], [s.read(op, i) for i in
                                                     range(len(op.operands))], [out])
        return out
    return export


def _avg_pool(s: _QdqExporter, op) -> str:
    p = op.param
    kh, kw = p["kernel_shape"]
    x, pads = s.read(op, 0), list(p["pads"])
    if p["ceil_mode"]:
        # the DPU divides a window overhanging the input by the kernel size too: pad explicitly
        shape = op.operands[0].type.shape
        oh, ow = op.results[0].type.shape[2:]
        top, left, bottom, right = _ceil_pads(shape, (kh, kw), p["strides"], pads, oh, ow)
        padded = s.tmp("padded")
        s.ex.node("Pad", [x, s.ex.ints_init([0, 0, top, left, 0, 0, bottom, right], "pads")],
                  [padded])
        x, pads = padded, [0, 0, 0, 0]
    out = s.tmp("avg")
    s.ex.node("AveragePool", [x], [out], kernel_shape=[kh, kw], strides=list(p["strides"]),
              pads=pads, count_include_pad=1)
    return _pool_factor(s, out, kh, kw)


def _global_avg_pool(s: _QdqExporter, op) -> str:
    out = s.tmp("avg")
    s.ex.node("GlobalAveragePool", [s.read(op, 0)], [out])
    return _pool_factor(s, out, *op.operands[0].type.shape[2:])


def _pool_factor(s: _QdqExporter, x: str, kh: int, kw: int) -> str:
    """x (a mean over kh · kw) times m · kh · kw / 2^s: the DPU's sum · m / 2^s."""
    m, shift = K.avg_pool_factor(kh, kw)
    ratio = np.ldexp(float(m * kh * kw), -shift)
    return x if ratio == 1.0 else s.binary("Mul", x, ratio, "dpu_avg")


def _add(s: _QdqExporter, op) -> str:
    fps = op.param["input_fps"]
    low = min(fps)
    ins = [s.read(op, i) for i in range(2)]
    # the DPU reads an input with 2 guard bits then shifts right (floor) by shift_read
    ins = [s.floor_at(x, low + 2, half=False) if fp - low > 2 else x for x, fp in zip(ins, fps)]
    out = s.tmp("sum")
    s.ex.node("Add", ins, [out])
    return s.activation(out, op.param["activation"])


def _mul(s: _QdqExporter, op) -> str:
    out = s.tmp("product")
    s.ex.node("Mul", [s.read(op, 0), s.read(op, 1)], [out])
    return s.activation(out, op.param["activation"])


def _standalone(s: _QdqExporter, op) -> str:
    return s.activation(s.read(op, 0), op.activation)


def _prelu(s: _QdqExporter, op) -> str:
    out = s.tmp("prelu")
    s.ex.node("PRelu", [s.read(op, 0), s.read(op, 1)], [out])
    return out


def _resize(s: _QdqExporter, op) -> str:
    sh, sw = op.param["scales"]
    out = s.tmp("resized")
    scales = s.ex.init(np.array([1, 1, sh, sw], np.float32), "scales")
    s.ex.node("Resize", [s.read(op, 0), "", scales], [out], mode="nearest",
              coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    return out


def _transpose(s: _QdqExporter, op, perm) -> str:
    out = s.tmp("transposed")
    s.ex.node("Transpose", [s.read(op, 0)], [out], perm=list(perm))
    return out


QUANT_EXPORTERS = {
    "quant.conv2d": _accumulating("graph.conv2d"),
    "quant.conv_transpose2d": _accumulating("graph.conv_transpose2d"),
    "quant.dense": _accumulating("Gemm"),
    "quant.max_pool2d": _reused("graph.max_pool2d"),
    "quant.avg_pool2d": _avg_pool,
    "quant.global_avg_pool": _global_avg_pool,
    "quant.relu": _standalone,
    "quant.relu6": _standalone,
    "quant.leaky_relu": _standalone,
    "quant.hard_sigmoid": _standalone,
    "quant.hard_swish": _standalone,
    "quant.prelu": _prelu,
    "quant.add": _add,
    "quant.mul": _mul,
    "quant.concat": _reused("graph.concat"),
    "quant.reshape": _reused("graph.reshape"),
    "quant.flatten": _reused("graph.flatten"),
    "quant.pad": _reused("graph.pad"),
    "quant.resize": _resize,
    # the dpu dialect's layout changes at the DPU's boundaries (a CPU subgraph may hold them)
    "dpu.to_nhwc": lambda s, op: _transpose(s, op, (0, 2, 3, 1)),
    "dpu.to_nchw": lambda s, op: _transpose(s, op, (0, 3, 1, 2)),
}


def _boundary_op(s: _QdqExporter, op) -> bool:
    """quant.constant, quant.quantize, quant.dequantize and quant.fix; False for other ops."""
    ex = s.ex
    if op.name == "quant.constant":
        value = op.results[0]
        s.constants[id(value)] = np.ascontiguousarray(op.all_attributes()["value"].to_numpy())
        s.constant_names[id(value)] = identifier(ex.node_name or value.name_hint or "const")
    elif op.name == "quant.quantize":
        s.quantize(op.results[0], s.read(op, 0), op.param["fix_point"])
    elif op.name == "quant.dequantize":
        out = ex.define(op.results[0], op.results[0].name_hint and
                        identifier(op.results[0].name_hint), f"{ex.node_name or 't'}_float")
        ex.node("Identity", [s.read(op, 0)], [out])
    elif op.name == "quant.fix":
        if op.param["bit_width"] != 8:
            raise ex.error(f"cannot export a {op.param['bit_width']}-bit 'quant.fix' as QDQ "
                           "(int8 only)")
        s.quantize(op.results[0], s.read(op, 0), op.param["fix_point"])
        del s.ints[id(op.results[0])]  # a float value: returned as float
    else:
        return False
    return True


_ACCUMULATING = ("quant.conv2d", "quant.conv_transpose2d", "quant.dense")
_STANDALONE = ("quant.relu", "quant.relu6", "quant.leaky_relu")


def rounding_grid(op) -> int | None:
    """The fix point g such that ``op``'s exact result before its output rounding is a
    multiple of 2^-g (None for an op that does not round)."""
    p = op.param
    activation = p.get("activation", "none")
    if op.name in _ACCUMULATING:
        if activation == "hard_sigmoid":
            return K.HSIGMOID_SHIFT + p["hsigmoid_in"]
        if activation == "hard_swish":
            return p["hsigmoid_in"] + K.HSWISH_HSIGMOID_FP
        grid = p["input_fp"] + p["weight_fp"]
        grid = grid if p["bias_fp"] is None else max(grid, p["bias_fp"])
    elif op.name in ("quant.avg_pool2d", "quant.global_avg_pool"):
        kernel = p["kernel_shape"] if "kernel_shape" in p else op.operands[0].type.shape[2:]
        return p["fix_point"] + K.avg_pool_factor(*kernel)[1]
    elif op.name == "quant.add":
        grid = min(p["input_fps"]) + 2  # the DPU's 2 guard bits
    elif op.name == "quant.mul":
        grid = sum(p["input_fps"])
    elif op.name in _STANDALONE:
        grid, activation = p["input_fp"], op.activation
    elif op.name == "quant.hard_sigmoid":
        return K.HSIGMOID_SHIFT + p["input_fp"]
    elif op.name == "quant.hard_swish":
        return p["input_fp"] + K.HSWISH_HSIGMOID_FP
    elif op.name == "quant.prelu":
        return p["input_fp"] + p["slope_fp"]
    else:
        return None
    return grid + K.LEAKY_SHIFT if activation == "leaky_relu" else grid


def read_fix_point(value) -> int:
    """The fix point at which the quant ops using int8 ``value`` read it (0 if none says);
    XirError if they read it at several."""
    fps = set()
    for user in value.users:
        reads = user.operand_fix_points() if hasattr(user, "operand_fix_points") else []
        fps.update(fp for v, fp in zip(user.operands, reads) if v is value and fp is not None)
    if len(fps) > 1:
        raise XirError(f"the int8 input '%{value.name_hint or value.index}' is read at several "
                       f"fix points ({', '.join(map(str, sorted(fps)))}), which one "
                       "DequantizeLinear cannot give")
    return fps.pop() if fps else 0


def export_qdq(module, opset: int = 17, dpu_rounding: bool = True):
    """Export a quant-dialect module (its ``func.func @main``; graph-dialect ops may remain) as
    an ONNX QDQ ``onnx.ModelProto`` that ``onnx.checker`` accepts and onnxruntime runs.

    Every int8 tensor at fix point fp is a QuantizeLinear/DequantizeLinear pair with scale
    2^-fp and zero point int8 0; see the module docstring for what is exact and what differs
    (ties round half to even in QuantizeLinear). With ``dpu_rounding`` (the default), each op
    that rounds
    adds half a step of its exact result's grid 2^-g (:func:`rounding_grid`) before its output
    QuantizeLinear: no value is then a tie, and half to even of x + 2^-(g+1) is the DPU's
    half-up of x, so onnxruntime reproduces the executor bit for bit while the value fits
    float32 (not the input ``quant.quantize``: STD_ROUND of an arbitrary float stays
    half to even at ties). An int8 argument is an int8 graph input, dequantized at the fix
    point its consumers read it at. Raises :class:`~xir.diagnostics.XirError` for an op with no export.
    """
    func = main_function(module)
    ex = new_exporter(opset)
    state = _QdqExporter(ex)
    inputs = export_inputs(ex, func)
    for arg in func.regions[0].entry.args:
        if isinstance(arg.type, T.TensorType) and arg.type.element_type == T.i8:
            state.int8_input(arg)  # an int8 input (a CPU subgraph fed by the DPU, say)
    outputs = []
    for op in func.regions[0].entry.ops:
        ex.node_name = location_name(op.location)
        if ex.node_name is None and op.results and op.results[0].name_hint:
            ex.node_name = identifier(op.results[0].name_hint)
        if op.name == "func.return":
            outputs = export_return(ex, op, inputs, state.name_of)
            break
        if _boundary_op(state, op):
            continue
        exporter = QUANT_EXPORTERS.get(op.name)
        if exporter is None:
            if op.name.startswith("quant."):
                raise ex.error(f"cannot export '{op.name}' to ONNX QDQ")
            export_graph_op(ex, op)
            continue
        y, fp = exporter(state, op), op.output_fix_point()
        grid = rounding_grid(op) if dpu_rounding else None
        if grid is not None and grid > fp:
            y = state.binary("Add", y, np.ldexp(1.0, -grid - 1), "dpu_round")
        state.quantize(op.results[0], y, fp)
    return make_model(ex, inputs, outputs)
