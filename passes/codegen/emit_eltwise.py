"""Instruction emission for element-wise ops (``dpu.eltwise_fix``): ELEWINIT / ELEW on the
eltwise engine (MISC queue), tile by tile from the op's :class:`~.tiling.TilePlan`
(docs/codegen.md, "Emitting pooling and eltwise").

Per tile: one LOAD per row of each input (the tile's channels), an ELEWINIT at the start of
each channel tile, one ELEW per output row (both inputs and the output at the same row and
column), one SAVE per output row; the tokens are the convolution's (:func:`.emit._tokens`).
Inputs of different shapes (broadcasting) are not emitted.
"""

from __future__ import annotations

from xir.dialects.dpuisa import isa

from .emit import _Stream, tiled_items, activation_fields
from .emit_pool import MISC_BIT, row_loads, row_saves, row_segments
from .tiling import ceil_div, layer_label, plan_op

ELEW_TYPES = {"add": "add", "mul": "mult"}  # the dpu dialect's type → ELEWINIT's elew_type


def eltwise_items(op, layout, target, buffers: int = 2, plan=None) -> list:
    """The [mnemonic, field values] items of ``dpu.eltwise_fix`` ``op`` (no END) on ``target``
    with DDR ``layout``: LOAD (both inputs), ELEWINIT / ELEW, SAVE, with their tokens.
    XirError at the op for broadcasting, an operation the target's eltwise engine lacks, or
    shifts the fields cannot hold."""
    if op.name != "dpu.eltwise_fix":
        raise op.error("is not an element-wise op (dpu.eltwise_fix)")
    p = op.param
    shapes = [tuple(v.type.shape) for v in op.operands]
    if len(shapes) != 2 or shapes[0] != shapes[1]:
        raise op.error(f"'{layer_label(op)}': eltwise with broadcasting (inputs "
                       f"{' and '.join('x'.join(map(str, s)) for s in shapes)}) is not "
                       f"emitted: the eltwise engine needs equal shapes")
    elew_type = ELEW_TYPES[p["type"]]
    if elew_type not in target.eltwise.elew_type:
        raise op.error(f"'{layer_label(op)}': the eltwise engine of {target.name} has no "
                       f"{elew_type} (it has {', '.join(target.eltwise.elew_type)})")
    plan = plan or plan_op(op, target, buffers)
    cp = plan.output_parallel
    (_, w, _) = plan.layer.output
    x_ts = [layout.of(v) for v in op.operands]
    y_t = layout.of(op.results[0])
    vin = target.bank_group(plan.tiles[0].inputs[0].group)
    vout = target.bank_group(plan.tiles[0].output.group)
    read = list(p["shift_read"]) if p["type"] == "add" else [0, 0]
    init = {"elew_type": isa.ELEWINIT.field("elew_type").choices.index(elew_type),
            "act_type": activation_fields(op)["act_type"], "shift_write": p["shift_write"],
            "shift_read_0": read[0], "shift_read_1": read[1]}
    s = _Stream(op)
    loads, computes, saves = [], [], []
    for tile in plan.tiles:
        c0, c1 = tile.out_channels
        width = ceil_div(c1 - c0, cp) * cp
        words_in, words_out = ceil_div(width, vin.bank_width), ceil_div(width, vout.bank_width)
        row_in = ceil_div(w, vin.bank_num) * words_in
        row_out = ceil_div(w, vout.bank_num) * words_out
        tc = []
        if tile.index == 0 or tile.channel_tile != plan.tiles[tile.index - 1].channel_tile:
            tc.append(s.add("ELEWINIT", **init, jump_read_0=words_in, jump_read_1=words_in,
                            jump_write=words_out))
        o0 = tile.out_rows[0]
        for oy in range(*tile.out_rows):
            for w0, w1 in row_segments(w, "ELEW"):
                at_in = (oy - o0) * row_in + w0 // vin.bank_num * words_in
                tc.append(s.add(
                    "ELEW", bank_id_out=vout.base_id + w0 % vout.bank_num,
                    bank_addr_out=tile.output.address + (oy - o0) * row_out
                    + w0 // vout.bank_num * words_out,
                    bank_id_in_0=vin.base_id + w0 % vin.bank_num,
                    bank_addr_in_0=tile.inputs[0].address + at_in,
                    bank_id_in_1=vin.base_id + w0 % vin.bank_num,
                    bank_addr_in_1=tile.inputs[1].address + at_in,
                    length=w1 - w0, channel_group=width // cp))
        loads.append([item for x_t, access, rows in zip(x_ts, tile.inputs, tile.in_rows)
                      for item in row_loads(s, x_t, access, rows, tile.in_channels, width,
                                            vin)])
        computes.append(tc)
        saves.append(row_saves(s, y_t, tile, width, vout))
    return tiled_items(plan, loads, computes, saves, s, MISC_BIT)
