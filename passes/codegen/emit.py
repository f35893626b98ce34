"""Instruction emission: a whole DPU subgraph turned into one ``dpuisa`` instruction stream
(:func:`emit_function` → :class:`Emission`: the items, a layer table, the program op and the
encoded words), op by op through the emitter table :func:`item_emitters`; and the emitter of
convolutions: one ``dpu.conv2d_fix`` op (or ``dpu.depthwise_conv2d_fix``, on the ISA1 ALU:
ALUINIT / ALU with exec_type dwconv, or ISA0's dwconv engine: DWINIT / DPTWISE, MISC queue),
its :class:`~.tiling.TilePlan` and the subgraph's :class:`~.ddr_layout.Layout`, turned into
LOAD, CONVINIT, CONV, SAVE instructions with dependency flags.

Per tile (docs/codegen.md, "Emitting a convolution", has the field-by-field rules):

- LOAD queue: the weights and bias of the channel tile (first tile of a channel tile only),
  then one LOAD per input row of the strip (halo included), NHWC rows into the tile's input
  buffer by the bank contract (a channel-augmented conv, :mod:`.augment`: one kw·C-byte
  window per output column);
- CONV queue: a CONVINIT at the start of each channel tile, then one CONV per output row ×
  pixel group (PP output columns) × OCP block of output channels;
- SAVE queue: one SAVE per output row of the strip (the tile's real channels).

A horizontal dilation, which no CONV field holds, is lowered here: input rows are stored phase
by phase (columns ≡ rho mod dilation_w together) and each CONV computes one output pixel.

Tokens (VTA's scheme, ping/pong): LOAD → CONV once per tile (the tile's data is in); CONV →
SAVE once per tile (the strip is computed); SAVE → CONV before a tile reuses an output buffer;
CONV → LOAD before a tile's loads overwrite an input (or weight) buffer still being read. Every
token signalled is awaited, so the program's tokens balance. Between two ops, the tokens of
:mod:`.overlap` (tiled ops) or one SAVE → LOAD token (:func:`emit_function`).
"""

from __future__ import annotations

import attrs
import numpy as np

from xir.dialects.dpuisa import isa
from xir.dialects.dpuisa.encoding import encode_items
from xir.dialects.dpuisa.ops import make_instruction, make_program

from .augment import augmented_plan
from .ddr_layout import REG_IDS, CONST, DATA
from .tiling import KINDS as TILED
from .tiling import ceil_div, depthwise_engine, layer_label, plan_op

LOAD_BIT, SAVE_BIT = (1 << isa.QUEUES.index(q) for q in ("LOAD", "SAVE"))

DWCONV = isa.ALUINIT.field("exec_type").choices.index("dwconv")

#: What differs between a convolution (conv engine) and a depthwise one (the ISA1 ALU): the
#: init and compute mnemonics, and whether output channels are tiled apart from input channels.
KINDS = {"dpu.conv2d_fix": ("CONVINIT", "CONV"),
         "dpu.depthwise_conv2d_fix": ("ALUINIT", "ALU")}

#: The quant dialect's activation names as the act_type codes of isa.ACT_TYPES.
ACT_CODES = {"none": "none", "relu": "relu", "relu6": "relu_six", "leaky_relu": "leaky_relu",
             "hard_sigmoid": "hsigmoid", "hard_swish": "hswish"}


def _check(op, mnemonic: str, values: dict) -> dict:
    spec = isa.BY_MNEMONIC[mnemonic]
    for name, value in values.items():
        problem = spec.field(name).problem(value)
        if problem is not None:
            raise op.error(f"'{layer_label(op)}': cannot emit {mnemonic}: {problem}")
    return values


class _Stream:
    """Instructions per queue in program order, as field dicts (flags added as tokens are
    decided)."""

    def __init__(self, op):
        self.op = op
        self.items: list[list] = []  # [mnemonic, values]

    def add(self, mnemonic: str, **values) -> list:
        item = [mnemonic, _check(self.op, mnemonic, values)]
        self.items.append(item)
        return item


def _flag(item: list, field: str, bit: int) -> None:
    item[1][field] = item[1].get(field, 0) | bit


def activation_fields(op) -> dict:
    """CONVINIT's act_type, shift_hsigmoid and shift_hswish for ``op``'s nonlinear. Fields the
    ISA lacks ride in fields the nonlinear leaves unused (docs/codegen.md): relu_six's bound
    6 · 2^output_fp as shift_hsigmoid = output_fp + 1; hsigmoid's output_fp as shift_hswish."""
    p = op.param
    act = p["nonlinear"] or "none"
    if act not in ACT_CODES:
        raise op.error(f"'{layer_label(op)}': nonlinear {act} has no act_type code")
    out = {"act_type": isa.ACT_TYPES.index(ACT_CODES[act]), "shift_hsigmoid": 0,
           "shift_hswish": 0}
    if act == "relu6":
        out["shift_hsigmoid"] = min(p["output_fp"], 8) + 1  # 6 << 8 clamps like any larger fp
    elif act == "hard_sigmoid":
        out["shift_hsigmoid"] = p["shift_hsigmoid"]
        out["shift_hswish"] = p["output_fp"]
    elif act == "hard_swish":
        out["shift_hsigmoid"], out["shift_hswish"] = p["shift_hsigmoid"], p["shift_hswish"]
    return out


def emit_conv(op, layout, target, buffers: int = 2, plan=None) -> list:
    """The instruction ops (LOAD … SAVE, no END) of ``dpu.conv2d_fix`` (or
    ``dpu.depthwise_conv2d_fix``) ``op`` on ``target``
    with DDR ``layout`` (its input, weights, bias and output placed by
    :func:`~.ddr_layout.plan_layout`). XirError at the op for what the ISA cannot express."""
    return [make_instruction(m, **values) for m, values in _conv_items(op, layout, target,
                                                                         buffers, plan)]


def _conv_items(op, layout, target, buffers: int = 2, plan=None) -> list:
    """:func:`emit_conv`'s instructions as [mnemonic, field values] items."""
    if op.name not in KINDS:
        raise op.error("is not emitted yet (only dpu.conv2d_fix and dpu.depthwise_conv2d_fix "
                       "are)")
    init_mnemonic, mnemonic = KINDS[op.name]
    depthwise = op.name == "dpu.depthwise_conv2d_fix"
    plan, wide = augmented_plan(op, layout, target, buffers, plan)
    plan = plan or plan_op(op, target, buffers)
    dwconv_engine = depthwise and plan.engine == "dwconv"
    if dwconv_engine:  # ISA0: the dwconv engine's DWINIT / DPTWISE, same fields as the ALU's
        init_mnemonic, mnemonic = "DWINIT", "DPTWISE"
    elif depthwise and plan.engine != "alu":
        raise op.error(f"'{layer_label(op)}': depthwise convolution on the {plan.engine} "
                       f"engine is not emitted yet (the ALU's and the dwconv engine's are)")
    engine = depthwise_engine(target) if depthwise else target.conv
    layer = plan.layer
    p = op.param
    (h_in, w_in, c_in), (_, w_out, _) = layer.inputs[0], layer.output
    kh, kw = layer.kernel
    sh, sw = layer.stride
    dh, dw = layer.dilation
    pad_t, pad_l, _, _ = layer.pad
    icp, ocp = plan.input_parallel, plan.output_parallel
    x_t, w_t, y_t = layout.of(op.operands[0]), layout.of(op.operands[1]), layout.of(op.results[0])
    b_t = layout.of(op.operands[2]) if len(op.operands) > 2 else None
    vin = target.bank_group(plan.tiles[0].inputs[0].group)
    vout = target.bank_group(plan.tiles[0].output.group)
    wgrp, bgrp = target.bank_group(engine.weight_bank), target.bank_group(engine.bias_bank)
    if ocp % vout.bank_width:
        raise op.error(f"'{layer_label(op)}': OCP {ocp} is not a multiple of bank group "
                       f"{vout.name}'s {vout.bank_width}-byte words")
    groups = ceil_div(c_in, icp)
    words_w = ceil_div(icp, wgrp.bank_width)
    words_b = ceil_div(ocp, bgrp.bank_width)
    if depthwise:  # one CP group's weights: kh · kw pixels of CP bytes
        weight_lines = kh * kw * ceil_div(ocp, wgrp.bank_num * wgrp.bank_width)
        pixels_per_block = kh * kw
    else:  # one OCP block's weights: kh · kw · groups OCP × ICP blocks
        weight_lines = kh * kw * groups * ceil_div(icp * ocp, wgrp.bank_num * wgrp.bank_width)
        pixels_per_block = kh * kw * groups * ocp
    if pixels_per_block % wgrp.bank_num or \
            pixels_per_block // wgrp.bank_num * words_w != weight_lines:
        raise op.error(f"'{layer_label(op)}': the weight packing does not fill {wgrp.name} lines")
    shifts = {"shift_cut": p["shift_cut"], "shift_bias": p["shift_bias"] or 0}
    act = activation_fields(op)
    if dwconv_engine:  # DWINIT has act_type only: a nonlinear needing more cannot be emitted
        extra = [k for k in ("shift_hsigmoid", "shift_hswish") if act.pop(k)]
        if extra:
            raise op.error(f"'{layer_label(op)}': nonlinear {p['nonlinear']} needs "
                           f"{extra[0]}, which DWINIT does not have")
    reg_const, reg_data = REG_IDS[CONST], REG_IDS[DATA]
    max_len = isa.LOAD.field("length").high // wgrp.bank_num * wgrp.bank_num

    # A row is stored phase by phase (docs/codegen.md): the columns ≡ rho (mod dw) from slot
    # phases[rho][0]; with dw = 1, the row in order. A dilated window's taps are then
    # consecutive slots, and a CONV computes one output pixel (the ISA has no dilation_w).
    phases, start = [], 0
    for rho in range(min(dw, w_in)):
        n = ceil_div(w_in - rho, dw)
        phases.append((start, n))
        start += n
    pixel_groups = plan.pixel_groups if dw == 1 else tuple((x, x + 1) for x in range(w_out))
    jump_in, column0 = dw * x_t.pixel_bytes, 0
    if wide is not None:  # channel augmentation (augment.py): slot x = output column x's window
        jump_in, column0 = wide.stride_w * x_t.pixel_bytes, -wide.pad_left
    loads, convs, saves = [], [], []  # per tile: the items of each queue
    s = _Stream(op)
    for tile in plan.tiles:
        tl, tc, ts = [], [], []
        c0, c1 = tile.out_channels
        width = ceil_div(c1 - c0, ocp) * ocp
        nblk = width // ocp
        c_in_padded = width if depthwise else groups * icp  # bytes of an input pixel
        words_in = ceil_div(c_in_padded, vin.bank_width)
        row_in = ceil_div(w_in, vin.bank_num) * words_in
        words_out = width // vout.bank_width
        row_out = ceil_div(w_out, vout.bank_num) * words_out
        if tile.load_weights:
            off, size = plan.weight_slice(tile)
            pixels = size // icp
            for start in range(0, pixels, max_len):
                n = min(max_len, pixels - start)
                tl.append(s.add("LOAD", bank_id=wgrp.base_id, bank_addr=tile.weights.address
                                + start // wgrp.bank_num * words_w, length=n, channel=icp,
                                jump_read=icp, jump_write=words_w, reg_id=reg_const,
                                ddr_addr=w_t.offset + off + start * icp))
            if b_t is not None:
                boff, bsize = plan.bias_slice(tile)
                tl.append(s.add("LOAD", bank_id=bgrp.base_id, bank_addr=tile.bias.address,
                                length=bsize // ocp, channel=ocp, jump_read=ocp,
                                jump_write=words_b, reg_id=reg_const,
                                ddr_addr=b_t.offset + boff))
            else:  # no bias: zero pixels, written as LOAD pads (15 at most per LOAD)
                for start in range(0, nblk, 15):
                    tl.append(s.add("LOAD", bank_id=bgrp.base_id,
                                    bank_addr=tile.bias.address + start * words_b,
                                    pad_start=min(15, nblk - start), channel=ocp,
                                    jump_write=words_b, reg_id=reg_const))
        (r0, r1), = tile.in_rows
        for r in range(r0, r1):
            for rho, (start, n) in enumerate(phases):
                tl.append(s.add("LOAD", bank_id=vin.base_id + start % vin.bank_num,
                                bank_addr=tile.inputs[0].address + (r - r0) * row_in
                                + start // vin.bank_num * words_in,
                                length=n, channel=wide.load_channels if wide else c_in_padded,
                                jump_read=jump_in, jump_write=words_in, reg_id=reg_data,
                                ddr_addr=x_t.address(0, r, column0 + rho,
                                                     tile.in_channels[0])))
        if tile.load_weights:
            extra = {"exec_type": DWCONV} if depthwise and not dwconv_engine else {}
            tc.append(s.add(init_mnemonic, **shifts, **act, **extra, kernel_h=kh, kernel_w=kw,
                            stride_h=sh, stride_w=sw, jump_read=dh * row_in,
                            jump_write=words_out))
        for oy in range(*tile.out_rows):
            top = oy * sh - pad_t  # input row of kernel row 0
            taps = [ky for ky in range(kh) if 0 <= top + ky * dh < h_in]
            t_pad = taps[0] if taps else kh
            b_pad = kh - 1 - taps[-1] if taps else 0
            first = top + t_pad * dh if taps else r0
            for w0, w1 in pixel_groups:
                left = w0 * sw - pad_l  # input column of the first window's first tap
                if dw == 1:
                    last = (w1 - 1) * sw - pad_l + kw - 1
                    l_pad, r_pad = max(0, -left), max(0, last - (w_in - 1))
                    x0 = max(left, 0)
                else:  # one output pixel: its real taps are consecutive in one phase
                    real = [kx for kx in range(kw) if 0 <= left + kx * dw < w_in]
                    l_pad = real[0] if real else kw
                    r_pad = kw - 1 - real[-1] if real else 0
                    x0 = left + real[0] * dw if real else 0
                slot = phases[x0 % dw][0] + x0 // dw
                for b in range(1 if depthwise else nblk):  # the ALU: all CP groups at once
                    tc.append(s.add(
                        mnemonic, pad_left=l_pad, pad_top=t_pad, pad_right=r_pad, pad_bottom=b_pad,
                        bank_id_in=vin.base_id + slot % vin.bank_num,
                        bank_addr_in=tile.inputs[0].address + (first - r0) * row_in
                        + slot // vin.bank_num * words_in,
                        bank_id_out=vout.base_id + w0 % vout.bank_num,
                        bank_addr_out=tile.output.address + (oy - tile.out_rows[0]) * row_out
                        + w0 // vout.bank_num * words_out + b * ocp // vout.bank_width,
                        length=w1 - w0,
                        bank_id_weights=wgrp.base_id,
                        bank_addr_weights=tile.weights.address + b * weight_lines,
                        channel_group=nblk if depthwise else groups,
                        bank_id_bias=bgrp.base_id,
                        bank_addr_bias=tile.bias.address + b * words_b))
        for oy in range(*tile.out_rows):
            ts.append(s.add("SAVE", bank_id=vout.base_id,
                            bank_addr=tile.output.address + (oy - tile.out_rows[0]) * row_out,
                            length=w_out, channel=c1 - c0, jump_read=words_out,
                            jump_write=y_t.pixel_bytes, reg_id=reg_data,
                            ddr_addr=y_t.address(0, oy, 0, c0)))
        loads.append(tl)
        convs.append(tc)
        saves.append(ts)
    queue = isa.BY_MNEMONIC[mnemonic].queue
    return tiled_items(plan, loads, convs, saves, s, 1 << isa.QUEUES.index(queue))


class TileItems(list):
    """A tiled op's items in program order (the list), with the per-tile structure
    :func:`emit_function` chains consecutive ops by (:mod:`.overlap`): ``plan``; ``loads``,
    ``computes``, ``saves``: per tile, its items of each queue (the same item lists);
    ``compute_bit``: the flag of its compute queue; ``progress``: per tile, how many first
    tiles are computed once its LOADs have run (the op's own compute → LOAD tokens; ``done``,
    the last of them: those tiles' last compute signals LOAD)."""

    def __init__(self, plan, loads, computes, saves, compute_bit: int, progress: list):
        super().__init__()
        self.plan, self.loads, self.computes, self.saves = plan, loads, computes, saves
        self.compute_bit, self.progress = compute_bit, progress
        self.done = progress[-1] if progress else 0
        self.refresh()

    def refresh(self) -> None:
        """Rebuild the list from the per-tile lists (after items were inserted there)."""
        self[:] = [item for k in range(len(self.loads))
                   for item in self.loads[k] + self.computes[k] + self.saves[k]]


def tiled_items(plan, loads, computes, saves, stream, compute_bit: int) -> TileItems:
    """The tiles' items with their tokens (:func:`_tokens`) as a :class:`TileItems`."""
    progress = _tokens(plan, loads, computes, saves, stream, compute_bit)
    return TileItems(plan, loads, computes, saves, compute_bit, progress)


def _tokens(plan, loads, convs, saves, stream, compute_bit: int) -> list:
    """Set the dependency flags of the tiles' instructions (the module docstring's scheme);
    ``compute_bit`` is the flag of the compute queue (CONV, or MISC for the ALU). Returns, per
    tile, how many first tiles are computed once its LOADs have run."""
    n, nbuf, wbuf = len(plan.tiles), plan.buffers, plan.weight_buffers
    last_of_ct: dict[int, int] = {}
    for t in plan.tiles:
        last_of_ct[t.channel_tile] = t.index
    # Which tiles' CONVs must be done before tile k's loads: the tile that used its input
    # buffer, and, for a weight load, the last tile of the channel tile that used the weights.
    done_before = []
    for t in plan.tiles:
        need = t.index - nbuf
        if t.load_weights and t.channel_tile >= wbuf:
            need = max(need, last_of_ct[t.channel_tile - wbuf])
        done_before.append(need + 1)  # tiles 0 .. need done
    consumed, progress = 0, []
    for k in range(n):
        want = max(consumed, done_before[k])
        progress.append(want)
        while len(loads[k]) < want - consumed:  # more tokens than LOADs: empty LOADs wait
            loads[k].insert(0, stream.add("LOAD"))
        for item in loads[k][:want - consumed]:
            _flag(item, "dpdon", compute_bit)
        consumed = want
    for k in range(consumed):
        _flag(convs[k][-1], "dpdby", LOAD_BIT)
    for k in range(n):
        if loads[k]:
            _flag(loads[k][-1], "dpdby", compute_bit)
            _flag(convs[k][0], "dpdon", LOAD_BIT)
        _flag(convs[k][-1], "dpdby", SAVE_BIT)
        _flag(saves[k][0], "dpdon", compute_bit)
        if k + nbuf < n:  # tile k + nbuf reuses this output buffer
            _flag(saves[k][-1], "dpdby", compute_bit)
            _flag(convs[k + nbuf][0], "dpdon", SAVE_BIT)
    return progress


# -- a whole subgraph ------------------------------------------------------------------------------


@attrs.frozen
class LayerRecord:
    """The instructions of one op of a subgraph: ``items[first:stop]`` of its
    :class:`Emission`. ``name``: :func:`~.tiling.layer_label`; ``kind``: conv, depthwise,
    pool, eltwise (compute ops) or concat, upsample, reshape (data movement that emits
    instructions); ``engine``: the engine that computes it (conv, alu, dwconv, pool, eltwise;
    ``datamove`` for LOAD / SAVE only); ``macs``: its multiply-accumulates (conv:
    oh·ow·co·kh·kw·ci; depthwise: oh·ow·c·kh·kw; others 0)."""

    name: str
    kind: str
    engine: str
    first: int
    stop: int
    macs: int = 0


@attrs.frozen
class Emission:
    """A subgraph's instruction stream: ``items`` ([mnemonic, field values], END last) and its
    ``layers`` (:class:`LayerRecord`, in program order), for ``target`` (its name)."""

    target: str
    items: list = attrs.field(repr=lambda v: f"<{len(v)} instructions>")
    layers: tuple = ()

    def program(self):
        """The ``dpuisa.program`` op of the stream."""
        return make_program([make_instruction(m, **values) for m, values in self.items],
                            target=self.target)

    def words(self) -> np.ndarray:
        """The encoded stream (uint32 words, as :func:`~xir.dialects.dpuisa.encode` writes
        them), packed straight from the items (:func:`~xir.dialects.dpuisa.encoding.encode_items`);
        XirError naming the instruction and the field if a value does not fit, or the item names
        no field of its instruction."""
        return encode_items(self.items)


#: Ops that need no instruction of their own (constants are in the CONST image).
SILENT = ("func.return",)
MOVE_KINDS = {"dpu.concat": "concat", "dpu.upsample_fix": "upsample", "dpu.reshape": "reshape"}


def item_emitters() -> dict:
    """op name → ``emitter(op, layout, target, buffers, plan) -> [mnemonic, fields] items``
    (no END): the one place that says which emitter handles which op."""
    from .emit_eltwise import eltwise_items
    from .emit_move import concat_items, reshape_items, upsample_items
    from .emit_pool import pool_items

    return {"dpu.conv2d_fix": _conv_items, "dpu.depthwise_conv2d_fix": _conv_items,
            "dpu.pool_fix": pool_items, "dpu.eltwise_fix": eltwise_items,
            "dpu.concat": concat_items, "dpu.upsample_fix": upsample_items,
            "dpu.reshape": reshape_items}


def macs(op) -> int:
    """The multiply-accumulates of ``op`` (convolutions; 0 for every other op)."""
    if op.name not in KINDS:
        return 0
    _, oh, ow, co = (max(int(d), 1) for d in op.results[0].type.shape)
    _, kh, kw, ci = (int(d) for d in op.operands[1].type.shape)
    if op.name == "dpu.depthwise_conv2d_fix":
        return oh * ow * co * kh * kw
    return oh * ow * co * kh * kw * ci


def emit_function(func, layout, target, buffers: int = 2, overlap: bool = True) -> Emission:
    """The instruction stream of DPU subgraph ``func`` (a ``func.func`` of ``dpu.*`` ops and
    ``quant.constant`` weights) with DDR ``layout`` (:func:`~.ddr_layout.plan_layout`) on
    ``target``. Two consecutive tiled ops (conv, depthwise, pool, eltwise) overlap: the
    second one's buffers are placed away from the lines the first still uses and its LOADs
    wait, by tokens, only for what they overwrite or read (:mod:`.overlap`); otherwise (a
    copy on either side, or ``overlap`` False) an op's first LOAD waits, by a SAVE → LOAD
    token, for the previous op's last SAVE (which transitively waits for everything before).
    Ops that move no byte (concat inputs laid out in place, reshapes that keep the bytes)
    emit nothing. XirError at the first op no emitter handles, naming the layer."""
    from .overlap import chain_tiled, place

    emitters = item_emitters()
    items: list = []
    layers: list = []
    prev = None  # the last op that emitted instructions
    for op in func.regions[0].blocks[0].ops:
        if op.name.endswith(".constant") or op.name in SILENT:
            continue
        emitter = emitters.get(op.name)
        if emitter is None:
            raise op.error(f"'{layer_label(op)}': {op.name} is not emitted (code generation "
                           f"handles {', '.join(sorted(emitters))})")
        plan = augmented_plan(op, layout, target, buffers)[0]  # a channel-augmented conv's
        plan = plan or (plan_op(op, target, buffers) if op.name in TILED else None)
        if overlap and plan is not None and isinstance(prev, TileItems):
            plan = place(prev, plan, target)
        part = emitter(op, layout, target, buffers, plan)
        if not part:
            continue
        if overlap and isinstance(part, TileItems) and isinstance(prev, TileItems):
            chain_tiled(prev, part)
        else:
            _chain(items, part)
        prev = part
        kind = TILED.get(op.name) or MOVE_KINDS[op.name]
        layers.append(LayerRecord(layer_label(op), kind, plan.engine if plan else "datamove",
                                  len(items), len(items) + len(part), macs(op)))
        items += part
    items.append(["END", {}])
    return Emission(target.name, items, tuple(layers))


def _chain(items: list, part: list) -> None:
    """The SAVE → LOAD token from ``items``' last SAVE to ``part``'s first LOAD (an empty LOAD
    put first when ``part`` has none)."""
    last = next((i for i in reversed(items) if i[0] == "SAVE"), None)
    if last is None:
        return
    if last[1].get("dpdby", 0) & LOAD_BIT:  # already signals a LOAD: an empty SAVE signals
        last = ["SAVE", {}]
        items.append(last)
    _flag(last, "dpdby", LOAD_BIT)
    first = next((i for i in part if i[0] == "LOAD"), None)
    if first is None or first[1].get("dpdon", 0) & SAVE_BIT:
        first = ["LOAD", {}]
        part.insert(0, first)
    _flag(first, "dpdon", SAVE_BIT)


def emit_program(func, layout, target, buffers: int = 2):
    """The ``dpuisa.program`` of DPU subgraph ``func``: :func:`emit_function`'s
    :meth:`Emission.program`."""
    return emit_function(func, layout, target, buffers).program()
