"""Instruction emission for pooling (``dpu.pool_fix``): on ISA1 targets the ALU (ALUINIT / ALU
with exec_type max_pool or avg_pool), on ISA0 and ISA2 the pool engine (POOLINIT / POOL), both
on the MISC queue, tile by tile from the op's :class:`~.tiling.TilePlan` (docs/codegen.md,
"Emitting pooling and eltwise").

Per tile: one LOAD per input row of the strip (the tile's channels, halo included), an init at
the start of each channel tile, one compute instruction per output row (``length`` = the whole
row, cut at the field's limit), one SAVE per output row; the tokens are the convolution's
(:func:`.emit._tokens`). :func:`row_loads`, :func:`row_saves` and :func:`row_segments` are
shared with the eltwise emitter.
"""

from __future__ import annotations

from xir.dialects.dpuisa import isa
from xir.dialects.quant.kernels import avg_pool_factor

from .ddr_layout import DATA, REG_IDS
from .emit import _Stream, tiled_items
from .tiling import ceil_div, layer_label, plan_op

MISC_BIT = 1 << isa.QUEUES.index("MISC")


def row_segments(width: int, mnemonic: str) -> list[tuple[int, int]]:
    """The output columns [w0, w1) of one row, cut so that each fits ``mnemonic``'s length."""
    most = isa.BY_MNEMONIC[mnemonic].field("length").high
    return [(w0, min(w0 + most, width)) for w0 in range(0, width, most)]


def row_loads(stream: _Stream, tensor, access, rows: tuple, channels: tuple, width: int,
              group) -> list:
    """LOADs of input rows ``rows`` = [r0, r1) of DDR ``tensor`` (a TensorLayout),
    channels [c0, c0 + ``width``) (``width`` a whole number of CP groups; capped at the
    tensor's padded channels), into buffer ``access`` of bank ``group`` by the tiler's layout:
    row r at ``access.address + (r - r0) · row words``, pixel w in slot w mod bank_num."""
    (r0, r1), c0 = rows, channels[0]
    w = tensor.shape[2]
    words = ceil_div(width, group.bank_width)
    row_words = ceil_div(w, group.bank_num) * words
    return [stream.add("LOAD", bank_id=group.base_id,
                       bank_addr=access.address + (r - r0) * row_words, length=w,
                       channel=min(width, tensor.padded_channels - c0),
                       jump_read=tensor.pixel_bytes, jump_write=words, reg_id=REG_IDS[DATA],
                       ddr_addr=tensor.address(0, r, 0, c0))
            for r in range(r0, r1)]


def row_saves(stream: _Stream, tensor, tile, width: int, group) -> list:
    """SAVEs of ``tile``'s output rows (its real channels) from its output buffer in bank
    ``group`` (``width`` channels a pixel there) to DDR ``tensor``."""
    (o0, o1), (c0, c1) = tile.out_rows, tile.out_channels
    w = tensor.shape[2]
    words = ceil_div(width, group.bank_width)
    row_words = ceil_div(w, group.bank_num) * words
    return [stream.add("SAVE", bank_id=group.base_id,
                       bank_addr=tile.output.address + (oy - o0) * row_words, length=w,
                       channel=c1 - c0, jump_read=words, jump_write=tensor.pixel_bytes,
                       reg_id=REG_IDS[DATA], ddr_addr=tensor.address(0, oy, 0, c0))
            for oy in range(o0, o1)]


def _factors(op, plan) -> tuple[int, int]:
    """(multi_factor, shift_factor) of an average (0, 0 for a max); on the pool engine, which
    has no field for them, they must be the hardware table's (avg_pool_factor)."""
    p = op.param
    if p["type"] != "avg":
        return 0, 0
    m, s = p["multi_factor"], p["shift_factor"]
    table = avg_pool_factor(*plan.layer.kernel)
    if plan.engine != "alu" and (m, s) != table:
        raise op.error(f"'{layer_label(op)}': multi_factor / shift_factor = {m} / {s} is not "
                       f"the pool engine's factor {table[0]} / {table[1]} for a "
                       f"{plan.layer.kernel[0]}x{plan.layer.kernel[1]} kernel (POOLINIT has "
                       f"no field for it)")
    return m, s


def pool_items(op, layout, target, buffers: int = 2, plan=None) -> list:
    """The [mnemonic, field values] items of ``dpu.pool_fix`` ``op`` (no END) on ``target``
    with DDR ``layout``: LOAD, ALUINIT / ALU (ISA1) or POOLINIT / POOL (pool engine), SAVE,
    with their tokens. XirError at the op for what the instructions cannot express."""
    if op.name != "dpu.pool_fix":
        raise op.error("is not a pooling (dpu.pool_fix)")
    plan = plan or plan_op(op, target, buffers)
    on_alu = plan.engine == "alu"
    init_mnemonic, mnemonic = ("ALUINIT", "ALU") if on_alu else ("POOLINIT", "POOL")
    layer, p = plan.layer, op.param
    (h_in, w_in, _), (_, w_out, _) = layer.inputs[0], layer.output
    (kh, kw), (sh, sw) = layer.kernel, layer.stride
    pad_t, pad_l = layer.pad[0], layer.pad[1]
    cp = plan.output_parallel
    multi, shift = _factors(op, plan)
    x_t, y_t = layout.of(op.operands[0]), layout.of(op.results[0])
    vin = target.bank_group(plan.tiles[0].inputs[0].group)
    vout = target.bank_group(plan.tiles[0].output.group)
    if on_alu:  # pooling reads no weights or bias: the fields point at their groups' word 0
        alu = target.alu
        unused = {"bank_id_weights": target.bank_group(alu.weight_bank).base_id,
                  "bank_id_bias": target.bank_group(alu.bias_bank).base_id}
        kind = {"exec_type": isa.ALUINIT.field("exec_type").choices.index(f"{p['type']}_pool")}
    else:
        unused = {}
        kind = {"pool_type": isa.POOLINIT.field("pool_type").choices.index(p["type"])}
    s = _Stream(op)
    loads, computes, saves = [], [], []
    for tile in plan.tiles:
        c0, c1 = tile.out_channels
        width = ceil_div(c1 - c0, cp) * cp
        words_in = ceil_div(width, vin.bank_width)
        row_in = ceil_div(w_in, vin.bank_num) * words_in
        words_out = ceil_div(width, vout.bank_width)
        row_out = ceil_div(w_out, vout.bank_num) * words_out
        (r0, _), = tile.in_rows
        tc = []
        if tile.index == 0 or tile.channel_tile != plan.tiles[tile.index - 1].channel_tile:
            extra = ({"multi_factor": multi, "shift_factor": shift} if on_alu else
                     {"shift_cut": 0})
            tc.append(s.add(init_mnemonic, **kind, **extra, kernel_h=kh, kernel_w=kw,
                            stride_h=sh, stride_w=sw, jump_read=row_in, jump_write=words_out))
        for oy in range(*tile.out_rows):
            top = oy * sh - pad_t  # input row of kernel row 0
            taps = [ky for ky in range(kh) if 0 <= top + ky < h_in]
            t_pad = taps[0] if taps else kh
            b_pad = kh - 1 - taps[-1] if taps else 0
            first = top + t_pad if taps else r0
            for w0, w1 in row_segments(w_out, mnemonic):
                left = w0 * sw - pad_l  # input column of the first window's first tap
                last = (w1 - 1) * sw - pad_l + kw - 1
                x0 = max(left, 0)
                tc.append(s.add(
                    mnemonic, **unused, pad_left=max(0, -left), pad_top=t_pad,
                    pad_right=max(0, last - (w_in - 1)), pad_bottom=b_pad,
                    bank_id_in=vin.base_id + x0 % vin.bank_num,
                    bank_addr_in=tile.inputs[0].address + (first - r0) * row_in
                    + x0 // vin.bank_num * words_in,
                    bank_id_out=vout.base_id + w0 % vout.bank_num,
                    bank_addr_out=tile.output.address + (oy - tile.out_rows[0]) * row_out
                    + w0 // vout.bank_num * words_out,
                    length=w1 - w0, channel_group=width // cp))
        loads.append(row_loads(s, x_t, tile.inputs[0], tile.in_rows[0], tile.in_channels,
                               width, vin))
        computes.append(tc)
        saves.append(row_saves(s, y_t, tile, width, vout))
    return tiled_items(plan, loads, computes, saves, s, MISC_BIT)
