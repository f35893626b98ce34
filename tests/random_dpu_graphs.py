"""A seeded generator of small random DPU subgraphs (``func.func`` of ``dpu.*`` ops), for the
whole-subgraph bit-exactness tests of the simulator (tests/test_sim_random_graphs.py).

:func:`random_graph` builds the text of a module with one function — chains and DAGs of
``dpu.conv2d_fix`` (kernels 1–16 on small maps, strides 1–4, pads, dilations, channel counts
that are no multiple of ICP, every nonlinear, with and without bias),
``dpu.depthwise_conv2d_fix``, ``dpu.pool_fix`` (max, avg; FLOOR and CEIL), ``dpu.eltwise_fix`` (add, mul;
residual-style joins), channel ``dpu.concat`` (of branches, of function arguments, of the same
value twice, of concats), ``dpu.upsample_fix`` and ``dpu.reshape`` (byte-keeping and
byte-moving) — with consistent fix points: each op reads at its producer's fix point, and
every shift comes from the dialect's own formulas (:func:`~xir.dialects.dpu.nn.accumulator_shifts`,
:func:`~xir.dialects.dpu.nn.eltwise_shifts`, :func:`~xir.dialects.quant.kernels.avg_pool_factor`).

:func:`make_case` parses and verifies it and computes the expected outputs with the runner's
reference executor (the dpu dialect's integer ``evaluate`` of every op), never with the
simulator.
"""

from __future__ import annotations

import attrs
import numpy as np

from xir.backend.runner import ReferenceExecutor
from xir.dialects.dpu.nn import accumulator_shifts, eltwise_shifts
from xir.dialects.quant.kernels import avg_pool_factor, window_out_size
from xir.parser import parse
from xir.verifier import verify

ACTS = ("none", "relu", "relu6", "leaky_relu", "hard_sigmoid", "hard_swish")
ALL_KINDS = ("conv", "depthwise", "pool", "eltwise", "concat", "upsample", "reshape")


def dense(a) -> str:
    """A ``dense<…>`` literal of integer array ``a``."""
    return f"dense<{np.asarray(a).tolist()}>".replace("\n", "")


def ttype(shape) -> str:
    """``tensor<…xi8>`` of ``shape``."""
    return "tensor<" + "x".join(str(d) for d in shape) + "xi8>"


def _attrs(d: dict) -> str:
    def show(v):
        if isinstance(v, str):
            return f'"{v}"'
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(str(int(x)) for x in v) + "]"
        return str(int(v))
    return ", ".join(f"{k} = {show(v)}" for k, v in d.items())


@attrs.define
class Tensor:
    """A value of the function being built: its SSA name, NHWC shape and fix point."""

    name: str
    shape: tuple
    fp: int


class GraphBuilder:
    """The lines of one function, op by op (each method appends an op and returns its
    result :class:`Tensor`)."""

    def __init__(self, rng: np.random.Generator, isa0: bool = False):
        self.rng = rng
        self.isa0 = isa0  # only what ISA0 expresses: DWINIT's nonlinears, eltwise add
        self.lines: list[str] = []
        self.args: list[Tensor] = []
        self.values: list[Tensor] = []
        self.count = 0

    def _int(self, low: int, high: int) -> int:
        return int(self.rng.integers(low, high + 1))

    def _new(self, shape, fp) -> Tensor:
        self.count += 1
        t = Tensor(f"v{self.count}", tuple(int(d) for d in shape), int(fp))
        self.values.append(t)
        return t

    def arg(self, shape, fp) -> Tensor:
        """A new function argument."""
        t = Tensor(f"x{len(self.args)}", tuple(shape), fp)
        self.args.append(t)
        self.values.append(t)
        return t

    def _emit(self, out: Tensor, op: str, operands, attributes: dict) -> Tensor:
        types = ", ".join(ttype(t.shape) for t in operands)
        names = ", ".join(f"%{t.name}" for t in operands)
        self.lines.append(f'%{out.name} = "{op}"({names}) {{{_attrs(attributes)}}} : '
                          f'({types}) -> {ttype(out.shape)}')
        return out

    def _const(self, name: str, value, fp: int) -> Tensor:
        shape = np.shape(value)
        self.lines.append(f'%{name} = "quant.constant"() {{value = {dense(value)} : '
                          f'{ttype(shape)}, fix_point = {fp}}} : () -> {ttype(shape)}')
        return Tensor(name, shape, fp)

    def window(self, h: int, w: int, big: bool = False):
        """A random (kernel, stride, dilation, pad) valid on an h × w map."""
        rng = self.rng
        if big and rng.random() < 0.3:
            kh, kw = self._int(1, 16), self._int(1, 16)
        else:
            kh, kw = self._int(1, 5), self._int(1, 5)
        dh = self._int(1, 3) if rng.random() < 0.2 and kh > 1 else 1
        dw = self._int(1, 3) if rng.random() < 0.2 and kw > 1 else 1
        sh, sw = self._int(1, 4), self._int(1, 4)
        pad = []
        for size, k, d in ((h, kh, dh), (w, kw, dw)):
            span = d * (k - 1) + 1
            need = max(0, span - size)  # pads the window needs to fit at least once
            limit = min(k - 1, 15)
            if need > 2 * limit:
                return None
            a = self._int(max(0, need - limit), limit) if rng.random() < 0.7 or need else 0
            b = self._int(max(0, need - a), limit)
            pad.append((a, b))
        return (kh, kw), (sh, sw), (dh, dw), [pad[0][0], pad[1][0], pad[0][1], pad[1][1]]

    def conv(self, x: Tensor, cout: int | None = None, depthwise: bool = False,
             out_fp: int | None = None, same: bool = False) -> Tensor | None:
        """A conv (or depthwise conv) of ``x``; ``same``: 3×3 or 1×1, stride 1, the input's
        map size; ``out_fp``: write at that fix point."""
        rng = self.rng
        _, h, w, c = x.shape
        if same:
            k = 3 if rng.random() < 0.5 else 1
            win = ((k, k), (1, 1), (1, 1), [k // 2] * 4)
        else:
            win = self.window(h, w, big=not depthwise)
            if win is None:
                return None
        kernel, stride, dilation, pad = win
        cout = c if depthwise else (cout or self._int(1, 40))
        acts = ("none", "relu", "leaky_relu", "relu6") if out_fp is not None else ACTS
        if depthwise and self.isa0:
            acts = ("none", "relu", "leaky_relu")
        act = acts[self._int(0, len(acts) - 1)]
        i = x.fp
        hsig = None
        if act == "hard_sigmoid":
            o, hsig = self._int(7, 8), self._int(1, 4)
        elif act == "hard_swish":
            o = self._int(1, 5)
            hsig = self._int(o, o + 3)
        else:
            o = self._int(0, 5) if out_fp is None else out_fp
        cut_fp = hsig if hsig is not None else o
        wfp = self._int(max(4, cut_fp - i), max(7, cut_fp - i))  # shift_cut in [0, 16]
        wfp = min(wfp, cut_fp - i + 16)
        bias = rng.random() < 0.8
        cut = i + wfp - cut_fp  # shift_bias may go below 0 down to shift_cut - 16 only
        b = self._int(i + wfp - 5, i + wfp + min(2, 16 - cut)) if bias else None
        oh = (h + pad[0] + pad[2] - dilation[0] * (kernel[0] - 1) - 1) // stride[0] + 1
        ow = (w + pad[1] + pad[3] - dilation[1] * (kernel[1] - 1) - 1) // stride[1] + 1
        out = self._new((1, oh, ow, cout), o)
        wshape = (1, *kernel, c) if depthwise else (cout, *kernel, c)
        operands = [x, self._const(f"{out.name}_w", rng.integers(-128, 128, wshape), wfp)]
        if bias:
            operands.append(self._const(f"{out.name}_b", rng.integers(-128, 128, cout), b))
        at = {"kernel": kernel, "stride": stride, "dilation": dilation, "pad": pad,
              "nonlinear": act, "input_fp": i, "weight_fp": wfp}
        if bias:
            at["bias_fp"] = b
        at["output_fp"] = o
        if hsig is not None:
            at["hsigmoid_in"] = hsig
        at.update({k: v[1] for k, v in accumulator_shifts(i, wfp, b, o, hsig, act).items()})
        name = "dpu.depthwise_conv2d_fix" if depthwise else "dpu.conv2d_fix"
        return self._emit(out, name, operands, at)

    def pool(self, x: Tensor) -> Tensor | None:
        """A max or avg pool of ``x`` (kernel ≤ 4, FLOOR or CEIL mode)."""
        _, h, w, c = x.shape
        kind = "max" if self.rng.random() < 0.5 else "avg"
        kh, kw = self._int(1, min(4, h)), self._int(1, min(4, w))
        if kh * kw == 1:
            kind = "max"
        sh, sw = self._int(1, 3), self._int(1, 3)
        pad = [self._int(0, min(kh - 1, 1)), self._int(0, min(kw - 1, 1)),
               self._int(0, min(kh - 1, 1)), self._int(0, min(kw - 1, 1))]
        ceil = self.rng.random() < 0.25
        oh = window_out_size(h, kh, sh, pad[0], pad[2], 1, ceil)
        ow = window_out_size(w, kw, sw, pad[1], pad[3], 1, ceil)
        if oh < 1 or ow < 1:
            return None
        out = self._new((1, oh, ow, c), x.fp)
        at = {"type": kind, "kernel": (kh, kw), "stride": (sh, sw), "pad": pad,
              "pad_mode": "CEIL" if ceil else "FLOOR", "fix_point": x.fp}
        if kind == "avg":
            at["multi_factor"], at["shift_factor"] = avg_pool_factor(kh, kw)
        return self._emit(out, "dpu.pool_fix", [x], at)

    def eltwise(self, a: Tensor, b: Tensor) -> Tensor:
        """``a`` + ``b`` or ``a`` · ``b`` (same shapes)."""
        kind = "add" if self.rng.random() < 0.7 or self.isa0 else "mul"
        fps = (a.fp, b.fp)
        base = min(fps) if kind == "add" else sum(fps)
        o = self._int(max(0, base - 15), min(7, base + 15))  # shift_write in [-15, 15]
        act = ("none", "relu", "leaky_relu")[self._int(0, 2)]
        out = self._new(a.shape, o)
        shifts = eltwise_shifts(kind, fps, o)
        return self._emit(out, "dpu.eltwise_fix", [a, b], {
            "type": kind, "nonlinear": act, "input_fps": fps, "output_fp": o,
            "shift_read": shifts["shift_read"][1], "shift_write": shifts["shift_write"][1]})

    def concat(self, inputs) -> Tensor:
        """The channel concat of ``inputs`` (same map size and fix point)."""
        first = inputs[0]
        out = self._new((*first.shape[:3], sum(t.shape[3] for t in inputs)), first.fp)
        return self._emit(out, "dpu.concat", inputs, {"axis": 3, "fix_point": first.fp})

    def upsample(self, x: Tensor) -> Tensor:
        """Nearest upsampling of ``x`` by [1–3, 1–3]."""
        sh, sw = self._int(1, 3), self._int(1, 3)
        _, h, w, c = x.shape
        out = self._new((1, h * sh, w * sw, c), x.fp)
        return self._emit(out, "dpu.upsample_fix", [x], {"scale": (sh, sw), "fix_point": x.fp})

    def reshape(self, x: Tensor, shape) -> Tensor:
        """``x`` reshaped to ``shape``."""
        out = self._new(shape, x.fp)
        return self._emit(out, "dpu.reshape", [x], {"shape": shape, "fix_point": x.fp})


def _step(g: GraphBuilder, kinds) -> None:
    """One random op (or a small pattern of ops) on the values built so far."""
    rng = g.rng
    maps = [t for t in g.values if len(t.shape) == 4]
    x = maps[-1] if rng.random() < 0.6 else maps[g._int(0, len(maps) - 1)]
    kind = kinds[g._int(0, len(kinds) - 1)]
    if kind == "conv":
        g.conv(x)
    elif kind == "depthwise":
        g.conv(x, depthwise=True)
    elif kind == "pool":
        g.pool(x)
    elif kind == "upsample" and x.shape[1] * x.shape[2] <= 36:
        g.upsample(x)
    elif kind == "eltwise":  # a residual join: x and a same-size branch of it
        branch = g.conv(x, cout=x.shape[3], same=True)
        a, b = (x, branch) if rng.random() < 0.5 else (branch, x)
        g.eltwise(a, b)
    elif kind == "concat":
        parts = [x]
        for _ in range(g._int(1, 2)):
            r = rng.random()
            if r < 0.15:
                parts.append(x)  # the same value twice: copied
            elif r < 0.3:
                parts.append(g.arg(x.shape[:3] + (g._int(1, 20),), x.fp))  # an argument: copied
            else:
                parts.append(g.conv(x, out_fp=x.fp, same=True))
        if rng.random() < 0.5:
            rng.shuffle(parts)
        out = g.concat(parts)
        if rng.random() < 0.3:  # a concat of the concat
            g.concat([g.conv(x, out_fp=x.fp, same=True), out])
    elif kind == "reshape":
        _, h, w, c = x.shape
        r = rng.random()
        if h * w == 1 or r < 0.25:  # N×1×1×C ↔ N×C (or the same shape): no byte moves
            flat = g.reshape(x, (1, h * w * c)) if h * w == 1 else g.reshape(x, x.shape)
            if len(flat.shape) == 2:
                g.reshape(flat, (1, 1, 1, c))
        elif r < 0.6:
            g.reshape(x, (1, h * w, 1, c))  # same channels, other rows
        else:
            g.reshape(x, (1, h, 1, w * c))  # other channels


def random_graph(rng: np.random.Generator, kinds=ALL_KINDS, max_ops: int = 5,
                 isa0: bool = False) -> str:
    """The text of a module with one random DPU function ``@f`` of up to ``max_ops`` op
    patterns of ``kinds`` (a subset of :data:`ALL_KINDS`), returning its last value and,
    sometimes, another one; ``isa0``: only what ISA0 targets express."""
    g = GraphBuilder(rng, isa0)
    g.arg((1, g._int(1, 10), g._int(1, 10), g._int(1, 24)), g._int(1, 6))
    for _ in range(g._int(1, max_ops)):
        _step(g, kinds)
    if not any('"dpu.' in line and "reshape" not in line for line in g.lines):
        g.conv(g.values[-1], same=True)  # at least one instruction besides END
    results = [g.values[-1]]
    inner = [t for t in g.values[:-1] if t not in g.args]
    if inner and rng.random() < 0.3:
        results.append(inner[g._int(0, len(inner) - 1)])
    if results[-1] in g.args or results[0] in g.args:
        results = [r for r in results if r not in g.args] or [g.conv(g.args[0], same=True)]
    args = ", ".join(f"%{t.name}: {ttype(t.shape)}" for t in g.args)
    outs = ", ".join(ttype(t.shape) for t in results)
    ret = (f'"func.return"({", ".join("%" + t.name for t in results)}) : ({outs}) -> ()')
    body = "\n    ".join(g.lines + [ret])
    return (f"builtin.module {{\n  func.func @f({args}) -> ({outs}) {{\n    {body}\n  }}\n}}")


@attrs.frozen
class Case:
    """A random function, its inputs and the reference executor's outputs."""

    text: str
    func: object
    inputs: list
    expected: list


def make_case(seed: int, kinds=ALL_KINDS, max_ops: int = 5, isa0: bool = False) -> Case:
    """Random graph number ``seed`` (parsed, verified; ``isa0`` as :func:`random_graph`) with
    random int8 inputs and its expected outputs
    (:class:`~xir.backend.runner.ReferenceExecutor`)."""
    rng = np.random.default_rng(seed)
    text = random_graph(rng, kinds, max_ops, isa0)
    module = parse(text)
    verify(module)
    func = next(op for op in module.walk() if op.name == "func.func")
    inputs = [rng.integers(-128, 128, tuple(a.type.shape)).astype(np.int8)
              for a in func.regions[0].blocks[0].args]
    return Case(text, func, inputs, ReferenceExecutor(func)(inputs))
