"""Tiling: each DPU compute op cut into tiles whose data fit the target's on-chip banks.

A bank group is ``bank_num`` banks of ``bank_depth`` words, each ``bank_width`` bytes. The tiler
counts in **lines**: a line is one word address in every bank of a group (``bank_num`` ×
``bank_width`` bytes); a buffer is a run of lines ``[address, address + lines)`` used in all the
group's banks at once. How data fills lines (docs/codegen.md):

- feature map strip (rows × width × channels) in an image group: pixel w of a row in bank
  ``w mod bank_num`` (so PP neighbouring pixels are read in one cycle), each pixel
  ``ceil(channels / bank_width)`` words: ``rows · ceil(width / bank_num) · ceil(ch / bank_width)``
  lines;
- conv weights: one OCP × ICP block per kernel position and input-channel group
  (:func:`~.ddr_layout.pack_weights`):
  ``kh · kw · ceil(C / ICP) · ceil(OCP · ICP / line bytes)`` lines per output-channel block;
- depthwise weights: ``kh · kw · ceil(CP / line bytes)`` lines per channel block of CP;
- bias: ``ceil(OCP / line bytes)`` lines per output-channel block (int8).

A :class:`TilePlan` loops over channel tiles (outer: a tile of output channels, multiples of
OCP, whose weights stay in the bank while all its row strips run) and row strips (inner: output
rows with the input rows their windows reach, halo included). ``buffers`` input strips and
``buffers`` output strips are alive at once (ping/pong with 2), so the load of strip k+1 and
the save of strip k-1 overlap the compute of strip k; weights are double-buffered too when the
layer needs more than one channel tile (and, with double buffering, weights over half their
bank are cut into channel tiles so: see plan_tiles). Bank addresses come from a bump allocator
per group, reset for every op (:func:`relocated` moves a plan's buffers). A layer whose one output row (of one channel block) does not fit is an
XirError naming the op and the bank group.
"""

from __future__ import annotations

import attrs

from xir.attributes import location_name
from xir.diagnostics import XirError

CONV_OPS = ("dpu.conv2d_fix", "dpu.transposed_conv2d_fix")
DEPTHWISE_OPS = ("dpu.depthwise_conv2d_fix",)
POOL_OPS = ("dpu.pool_fix",)
ELTWISE_OPS = ("dpu.eltwise_fix",)
KINDS = {"dpu.conv2d_fix": "conv", "dpu.depthwise_conv2d_fix": "depthwise",
         "dpu.pool_fix": "pool", "dpu.eltwise_fix": "eltwise"}


def ceil_div(a: int, b: int) -> int:
    """⌈a / b⌉ for positive b."""
    return -(-a // b)


def round_up(a: int, b: int) -> int:
    """a rounded up to a multiple of b."""
    return ceil_div(a, b) * b


def depthwise_engine(target):
    """The engine running depthwise convolutions: the dwconv engine (ISA0) or the ALU."""
    engine = target.dwconv or target.alu
    if engine is None:
        raise XirError(f"target {target.name} has no engine for depthwise convolution")
    return engine


def pool_engine(target):
    """The engine running pooling: the pool engine (ISA0, ISA2) or the ALU (ISA1)."""
    engine = target.pool or target.alu
    if engine is None:
        raise XirError(f"target {target.name} has no engine for pooling")
    return engine


def layer_label(op) -> str:
    """The name diagnostics give ``op``: its source layer (location), else its result's name."""
    name = location_name(op.location)
    if name:
        return name
    return (op.results[0].name_hint if op.results else None) or op.name


# -- data ------------------------------------------------------------------------------------------


@attrs.frozen
class LayerShape:
    """What the tiler needs of one op, as plain data. ``kind``: conv, depthwise, pool, eltwise;
    ``inputs``: (H, W, C) of each feature-map input (two for eltwise); ``output``: (H, W, C);
    window attributes in the dpu dialect's order (``pad`` = [top, left, bottom, right])."""

    kind: str
    name: str
    inputs: tuple
    output: tuple
    kernel: tuple = (1, 1)
    stride: tuple = (1, 1)
    dilation: tuple = (1, 1)
    pad: tuple = (0, 0, 0, 0)

    def input_rows(self, o0: int, o1: int) -> tuple[int, int, int, int]:
        """(r0, r1, pad_top, pad_bottom) for output rows [o0, o1): input rows [r0, r1) are
        the rows the windows span, clipped to the input; pad_top / pad_bottom the zero rows the
        first / last window hangs over the edges."""
        h = self.inputs[0][0]
        first = o0 * self.stride[0] - self.pad[0]
        last = (o1 - 1) * self.stride[0] - self.pad[0] + (self.kernel[0] - 1) * self.dilation[0]
        r0, r1 = min(max(first, 0), h), max(min(last + 1, h), 0)
        return r0, max(r0, r1), max(0, -first), max(0, last - (h - 1))

    def input_rows_bound(self, rows: int) -> int:
        """The most input rows ``rows`` output rows can need."""
        extent = (rows - 1) * self.stride[0] + (self.kernel[0] - 1) * self.dilation[0] + 1
        return min(self.inputs[0][0], extent)


@attrs.frozen
class BankAccess:
    """A buffer in one bank group: lines ``[address, address + lines)`` of each bank in
    ``bank_ids``; ``slot`` is its ping/pong index."""

    group: str
    bank_ids: tuple
    address: int
    lines: int
    slot: int = 0

    @property
    def end(self) -> int:
        """One past the last line."""
        return self.address + self.lines

    def overlaps(self, other: BankAccess) -> bool:
        """Whether the two buffers share a line of one bank."""
        return self.group == other.group and self.address < other.end and \
            other.address < self.end and self.lines > 0 and other.lines > 0


@attrs.frozen
class Tile:
    """One step of an op: compute output rows ``out_rows`` = [o0, o1) and output channels
    ``out_channels`` = [c0, c1) from input rows ``in_rows`` (one [r0, r1) per input, halo
    included) and input channels ``in_channels``; ``pad_top`` / ``pad_bottom`` zero rows sit
    above / below the loaded rows (left and right pads are the layer's). ``channel_groups``:
    the input-channel groups (ICP) the conv engine sums over, or the CP groups a channel-wise
    engine walks. Buffers: ``inputs`` (one per input), ``output``, and ``weights`` / ``bias``
    (None without); ``load_weights`` is set on the first tile of each channel tile."""

    index: int
    channel_tile: int
    out_rows: tuple
    out_channels: tuple
    in_rows: tuple
    in_channels: tuple
    pad_top: int
    pad_bottom: int
    channel_groups: int
    inputs: tuple
    output: BankAccess
    weights: BankAccess | None = None
    bias: BankAccess | None = None
    load_weights: bool = False

    def accesses(self) -> list[tuple[str, BankAccess]]:
        """Every buffer of the tile with a tag naming its data."""
        tagged = [(f"in{k}", a) for k, a in enumerate(self.inputs)] + [("out", self.output)]
        if self.weights is not None:
            tagged.append((f"w{self.channel_tile}", self.weights))
        if self.bias is not None:
            tagged.append((f"b{self.channel_tile}", self.bias))
        return tagged


@attrs.frozen
class TilePlan:
    """The tiles of one op, in execution order (channel tiles outer, row strips inner).
    ``strip_rows``: output rows per strip (the last may be shorter); ``channel_tile``: output
    channels per channel tile (a multiple of ``output_parallel``); ``pixel_groups``: the output
    columns [w0, w1) the engine computes together (PP at a time); ``buffers``: strips alive at
    once per group (1 when double buffering did not fit); ``weight_buffers`` likewise for
    weights."""

    layer: LayerShape
    target: str
    engine: str
    input_parallel: int
    output_parallel: int
    pixel_parallel: int
    buffers: int
    weight_buffers: int
    strip_rows: int
    channel_tile: int
    pixel_groups: tuple
    tiles: tuple

    @property
    def strips(self) -> int:
        """Row strips per channel tile."""
        return ceil_div(self.layer.output[0], self.strip_rows)

    def weight_slice(self, tile: Tile) -> tuple[int, int]:
        """(offset, size) of ``tile``'s weights inside the op's packed weights (the bytes of
        :func:`~.ddr_layout.pack_weights` or ``pack_depthwise_weights``): whole OCP (CP) blocks,
        so one LOAD moves them."""
        kh, kw = self.layer.kernel
        block = kh * kw * self.input_parallel * self.output_parallel
        if self.layer.kind == "conv":
            block *= ceil_div(self.layer.inputs[0][2], self.input_parallel)
        elif self.layer.kind == "depthwise":
            block = kh * kw * self.output_parallel
        else:
            return 0, 0
        c0, c1 = tile.out_channels
        return c0 // self.output_parallel * block, ceil_div(c1 - c0, self.output_parallel) * block

    def bias_slice(self, tile: Tile) -> tuple[int, int]:
        """(offset, size) of ``tile``'s bias inside the op's packed bias (:func:`pack_bias`)."""
        if self.layer.kind not in ("conv", "depthwise"):
            return 0, 0
        c0, c1 = tile.out_channels
        return c0, round_up(c1 - c0, self.output_parallel)

    def summary(self) -> str:
        """One line about the plan."""
        h, w, c = self.layer.output
        return (f"{self.layer.name} ({self.layer.kind}, {self.engine}): {len(self.tiles)} tiles = "
                f"{ceil_div(c, self.channel_tile)} channel tiles of {self.channel_tile} × "
                f"{self.strips} strips of {self.strip_rows} rows; {len(self.pixel_groups)} pixel "
                f"groups of {self.pixel_parallel}; {self.buffers} buffers")


# -- planning --------------------------------------------------------------------------------------


def _fm_lines(group, rows: int, width: int, channels: int) -> int:
    return rows * ceil_div(width, group.bank_num) * ceil_div(channels, group.bank_width)


def _line_bytes(group) -> int:
    return group.bank_num * group.bank_width


class _Engine:
    """The parts of an engine the tiler reads, and the bank groups it picked."""

    def __init__(self, layer: LayerShape, target):
        kind = layer.kind
        if kind == "conv":
            e = target.conv
            self.icp, self.ocp = e.input_channel_parallel, e.output_channel_parallel
            self.name = "conv"
        else:
            e = {"depthwise": depthwise_engine, "pool": pool_engine,
                 "eltwise": lambda t: t.eltwise}[kind](target)
            self.icp = self.ocp = e.channel_parallel
            self.name = {"depthwise": "dwconv" if target.dwconv else "alu",
                         "pool": "pool" if target.pool else "alu"}.get(kind, kind)
        self.pp = e.pixel_parallel
        self.coupled = kind != "conv"  # input and output channels tiled together
        self.input = target.bank_group(e.input_bank[0])
        outs = [n for n in e.output_bank if n != self.input.name]
        self.output = target.bank_group(outs[0] if outs else e.output_bank[0])
        has_weights = kind in ("conv", "depthwise")
        self.weight = target.bank_group(e.weight_bank) if has_weights else None
        self.bias = target.bank_group(e.bias_bank) if has_weights else None
        c_in = layer.inputs[0][2]
        self.in_groups = ceil_div(c_in, self.icp)
        kh, kw = layer.kernel
        if kind == "conv":
            self.weight_lines = kh * kw * self.in_groups * ceil_div(
                self.icp * self.ocp, _line_bytes(self.weight))
        elif kind == "depthwise":
            self.weight_lines = kh * kw * ceil_div(self.ocp, _line_bytes(self.weight))
        else:
            self.weight_lines = 0
        self.bias_lines = ceil_div(self.ocp, _line_bytes(self.bias)) if self.bias else 0


def _fail(layer, target, group, need: int, what: str, op):
    message = (f"cannot tile '{layer.name}' for {target.name}: {what} needs {need} lines of "
               f"bank group {group.name}, which has {group.bank_depth}")
    raise (op.error(message) if op is not None else XirError(message))


def plan_tiles(layer: LayerShape, target, buffers: int = 2, op=None) -> TilePlan:
    """The :class:`TilePlan` of ``layer`` on ``target`` with ``buffers`` strips alive at once per
    bank group (2: double buffering; falls back to 1 where 2 do not fit). The largest channel
    tile that fits, except, with double buffering, one tile whose weights take over half the
    weight bank (double-buffered channel tiles instead, when they fit). XirError (at ``op``, if
    given) naming the layer and the bank group when one output row of one channel block, or the
    weights of one block, do not fit."""
    if buffers < 1:
        raise XirError(f"buffers must be at least 1, got {buffers}")
    eng = _Engine(layer, target)
    ho, wo, co = layer.output
    blocks = ceil_div(co, eng.ocp)
    c_in_padded = eng.in_groups * eng.icp
    same = eng.input is eng.output or eng.input.name == eng.output.name

    def image_fit(rows: int, m: int, nbuf: int) -> tuple[bool, object, int]:
        ch_in = m * eng.icp if eng.coupled else c_in_padded
        rows_in = layer.input_rows_bound(rows) if layer.kind != "eltwise" else rows
        need_in = sum(_fm_lines(eng.input, rows_in, w, ch_in) for (_, w, _) in layer.inputs)
        need_out = _fm_lines(eng.output, rows, wo, m * eng.ocp)
        if same:
            need = nbuf * (need_in + need_out)
            return need <= eng.input.bank_depth, eng.input, need
        if nbuf * need_in > eng.input.bank_depth:
            return False, eng.input, nbuf * need_in
        return nbuf * need_out <= eng.output.bank_depth, eng.output, nbuf * need_out

    def max_rows(m: int, nbuf: int) -> int:
        lo, hi = 0, ho  # the largest fitting row count, by bisection (fit is monotone)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if image_fit(mid, m, nbuf)[0] else (lo, mid - 1)
        return lo

    if eng.weight is not None and eng.weight_lines > eng.weight.bank_depth:
        _fail(layer, target, eng.weight, eng.weight_lines, "the weights of one channel block", op)
    def candidates():
        # First without one channel tile whose weights take over half the weight bank: its
        # weights could load only after the previous op's compute; double-buffered channel
        # tiles load the first tile's while it computes and the next ones behind their own.
        for nbuf, whole in dict.fromkeys(((buffers, False), (buffers, True), (1, True))):
            for m in range(blocks, 0, -1):
                big = eng.weight is not None and 2 * m * eng.weight_lines > \
                    eng.weight.bank_depth
                if whole or not (nbuf > 1 and m == blocks > 1 and big):
                    yield nbuf, m

    choice = None
    for nbuf, m in candidates():
        wbuf = 1 if m == blocks else nbuf
        if eng.weight is not None and (wbuf * m * eng.weight_lines > eng.weight.bank_depth
                                       or wbuf * m * eng.bias_lines > eng.bias.bank_depth):
            continue
        rows = max_rows(m, nbuf)
        if rows:
            choice = (nbuf, wbuf, m, rows)
            break
    if choice is None:
        _, group, need = image_fit(1, 1, 1)
        _fail(layer, target, group, need, "one output row of one channel block", op)
    nbuf, wbuf, m, rows = choice
    return _build(layer, target, eng, nbuf, wbuf, m, rows)


def relocated(plan: TilePlan, target, weights_top: bool = False,
              slot_shift: int = 0) -> TilePlan:
    """``plan`` with the same tiles at other bank addresses: the weight and bias slots
    counted down from the top of their banks (``weights_top``), and tile k in image slot
    (k + ``slot_shift``) mod ``buffers``. The emitter picks these so that an op's buffers
    miss the lines its predecessor still uses (docs/codegen.md, "Emitting a whole
    subgraph")."""
    return _build(plan.layer, target, _Engine(plan.layer, target), plan.buffers,
                  plan.weight_buffers, plan.channel_tile // plan.output_parallel,
                  plan.strip_rows, weights_top, slot_shift)


def _build(layer, target, eng, nbuf, wbuf, m, rows, weights_top=False,
           slot_shift=0) -> TilePlan:
    ho, wo, co = layer.output
    c_in_padded = eng.in_groups * eng.icp
    tile_channels = m * eng.ocp
    same = eng.input.name == eng.output.name
    rows_in = layer.input_rows_bound(rows) if layer.kind != "eltwise" else rows
    ch_in_slot = tile_channels if eng.coupled else c_in_padded
    in_slot = [_fm_lines(eng.input, rows_in, w, ch_in_slot) for (_, w, _) in layer.inputs]
    out_slot = _fm_lines(eng.output, rows, wo, tile_channels)
    in_size = sum(in_slot)
    out_base = nbuf * in_size if same else 0
    strips = [(o, min(o + rows, ho)) for o in range(0, ho, rows)]
    tiles = []
    for ct, c0 in enumerate(range(0, co, tile_channels)):
        c1 = min(c0 + tile_channels, co)
        width = round_up(c1 - c0, eng.ocp)  # channels the engine writes (padded)
        weights = bias = None
        if eng.weight is not None:
            nblk = width // eng.ocp
            slot = ct % wbuf
            at = wbuf - 1 - slot if weights_top else slot  # slots counted from the top
            w_base = eng.weight.bank_depth - wbuf * m * eng.weight_lines if weights_top else 0
            b_base = eng.bias.bank_depth - wbuf * m * eng.bias_lines if weights_top else 0
            weights = BankAccess(eng.weight.name, tuple(eng.weight.bank_ids),
                                 w_base + at * m * eng.weight_lines, nblk * eng.weight_lines,
                                 slot)
            bias = BankAccess(eng.bias.name, tuple(eng.bias.bank_ids),
                              b_base + at * m * eng.bias_lines, nblk * eng.bias_lines, slot)
        for s, (o0, o1) in enumerate(strips):
            k = len(tiles)
            slot = (k + slot_shift) % nbuf
            if layer.kind == "eltwise":
                ranges = [(o0, o1, 0, 0)] * len(layer.inputs)
            else:
                ranges = [layer.input_rows(o0, o1)]
            in_channels = (c0, c1) if eng.coupled else (0, layer.inputs[0][2])
            ch_loaded = width if eng.coupled else c_in_padded
            inputs, address = [], slot * in_size
            for (r0, r1, _, _), (_, w, _), size in zip(ranges, layer.inputs, in_slot):
                lines = _fm_lines(eng.input, r1 - r0, w, ch_loaded)
                inputs.append(BankAccess(eng.input.name, tuple(eng.input.bank_ids), address,
                                         lines, slot))
                address += size
            output = BankAccess(eng.output.name, tuple(eng.output.bank_ids),
                                out_base + slot * out_slot,
                                _fm_lines(eng.output, o1 - o0, wo, width), slot)
            tiles.append(Tile(
                k, ct, (o0, o1), (c0, c1), tuple((r0, r1) for r0, r1, _, _ in ranges),
                in_channels, ranges[0][2], ranges[0][3],
                eng.in_groups if not eng.coupled else width // eng.icp,
                tuple(inputs), output, weights, bias, load_weights=s == 0 and weights is not None))
    pixel_groups = tuple((w, min(w + eng.pp, wo)) for w in range(0, wo, eng.pp))
    return TilePlan(layer, target.name, eng.name, eng.icp, eng.ocp, eng.pp, nbuf, wbuf, rows,
                    tile_channels, pixel_groups, tuple(tiles))


# -- from IR ---------------------------------------------------------------------------------------


def _hwc(type_) -> tuple[int, int, int]:
    shape = [max(int(d), 1) for d in type_.shape]
    if len(shape) != 4:
        raise XirError(f"expected an NHWC feature map, got {type_}")
    return tuple(shape[1:])


def layer_shape(op) -> LayerShape:
    """The :class:`LayerShape` of a ``dpu.conv2d_fix``, ``dpu.depthwise_conv2d_fix``,
    ``dpu.pool_fix`` or ``dpu.eltwise_fix`` op (batch 1: a batch is tiled image by image). A
    pool in CEIL mode gets the extra bottom / right pad its last window hangs over."""
    kind = KINDS.get(op.name)
    if kind is None:
        raise op.error("is not tiled (only conv2d_fix, depthwise_conv2d_fix, pool_fix and "
                       "eltwise_fix are)")
    name = layer_label(op)
    out = _hwc(op.results[0].type)
    p = op.param
    if kind == "eltwise":
        inputs = tuple(_hwc(v.type) for v in op.operands)
        if any(shape != out for shape in inputs):
            raise op.error(f"'{name}': eltwise with broadcasting is not tiled yet")
        return LayerShape(kind, name, inputs, out)
    dilation = tuple(p.get("dilation") or (1, 1))
    inp, pad = _hwc(op.operands[0].type), list(p["pad"])
    if kind == "pool" and p["pad_mode"] == "CEIL":  # the last window may hang over the edge
        for k, side in enumerate((2, 3)):
            extent = (out[k] - 1) * p["stride"][k] + p["kernel"][k]
            pad[side] += max(0, extent - (inp[k] + pad[k] + pad[side]))
    return LayerShape(kind, name, (inp,), out, tuple(p["kernel"]), tuple(p["stride"]), dilation,
                      tuple(pad))


def plan_op(op, target, buffers: int = 2) -> TilePlan | None:
    """The tile plan of one dpu op; None for an op that moves no data through an engine
    (constants, reshape, return). Concat, upsample and transposed conv: XirError (not yet)."""
    if op.name in KINDS:
        return plan_tiles(layer_shape(op), target, buffers, op)
    if op.name.endswith(".constant") or op.name in ("dpu.reshape", "func.return"):
        return None
    raise op.error(f"'{layer_label(op)}': code generation does not tile this op yet")


def plan_function(func, target, buffers: int = 2) -> list[TilePlan]:
    """The tile plans of a DPU subgraph's compute ops, in op order."""
    plans = []
    for op in func.regions[0].blocks[0].ops:
        plan = plan_op(op, target, buffers)
        if plan is not None:
            plans.append(plan)
    return plans
