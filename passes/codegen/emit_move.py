"""Instruction emission for the DPU's data movement: ``dpu.concat``, ``dpu.upsample_fix`` and
``dpu.reshape``, as LOAD → bank → SAVE rows (docs/codegen.md, "Emitting a whole subgraph").

Most of the time these ops move nothing: a channel concat's inputs are laid out inside its
tensor (:func:`~.ddr_layout.concat_views`), so their producers' SAVEs already wrote the
concat, and a reshape that keeps the bytes is an alias. What is left is copied:

- a concat input that cannot be a view (a function argument, an input of two concats, a
  function output…): each row LOADed into a bank buffer and SAVEd at its channel offset of the
  concat;
- nearest upsampling by [sh, sw]: each input row LOADed once and SAVEd sh · sw times, at
  output row r · sh + a and column phase b, DDR ``jump_write`` = sw pixels;
- a reshape that changes the bytes: runs of elements contiguous on both sides, one LOAD and
  one SAVE each (whole pixel runs when the channel count is kept).

Rows go through ``buffers`` bank buffers (ping/pong with 2) of the save engine's first bank
group: LOAD → SAVE once per chunk of rows, SAVE → LOAD before a chunk reuses a buffer.
"""

from __future__ import annotations

import attrs

from .ddr_layout import DATA, REG_IDS, nhwc_shape
from .emit import LOAD_BIT, SAVE_BIT, _flag, _Stream
from .tiling import ceil_div, layer_label


@attrs.frozen
class Transfer:
    """``length`` pixels of ``channel`` bytes read from DATA offset ``src``, ``src_jump``
    bytes apart, and written to each (offset, jump) of ``dests``."""

    length: int
    channel: int
    src: int
    src_jump: int
    dests: tuple


def _storage(t) -> str:
    return t.alias_of or t.name


def in_place(src, dst, channel: int = 0) -> bool:
    """Whether DATA tensor ``src`` already sits at channel ``channel`` of ``dst`` (same bytes)."""
    return _storage(src) == _storage(dst) and src.channel_offset == dst.channel_offset + channel \
        and src.pixel_bytes == dst.pixel_bytes and src.shape[:3] == dst.shape[:3]


def concat_items(op, layout, target, buffers: int = 2, plan=None) -> list:
    """The items of channel concat ``op``: nothing for its inputs laid out in place, a row copy
    for the others."""
    if op.param["axis"] != 3:
        raise op.error(f"'{layer_label(op)}': concat along axis {op.param['axis']} is not "
                       f"emitted (channels, axis 3, is)")
    out = layout.of(op.results[0])
    transfers, offset = [], 0
    for v in op.operands:
        t = layout.of(v)
        if not in_place(t, out, offset):
            n, h, w, c = t.shape
            transfers += [Transfer(w, c, t.address(b, r), t.pixel_bytes,
                                   ((out.address(b, r, 0, offset), out.pixel_bytes),))
                          for b in range(n) for r in range(h)]
        offset += t.channels
    return move_items(op, transfers, target, buffers)


def upsample_items(op, layout, target, buffers: int = 2, plan=None) -> list:
    """The items of nearest upsampling ``op``: each input row loaded once, saved sh · sw
    times."""
    if op.param["mode"] != "NEAREST":
        raise op.error(f"'{layer_label(op)}': upsampling mode {op.param['mode']} is not emitted")
    x, y = layout.of(op.operands[0]), layout.of(op.results[0])
    sh, sw = op.param["scale"]
    n, h, w, c = x.shape
    transfers = [Transfer(w, c, x.address(b, r), x.pixel_bytes,
                          tuple((y.address(b, r * sh + i, j), sw * y.pixel_bytes)
                                for i in range(sh) for j in range(sw)))
                 for b in range(n) for r in range(h)]
    return move_items(op, transfers, target, buffers)


def reshape_items(op, layout, target, buffers: int = 2, plan=None) -> list:
    """The items of ``dpu.reshape`` ``op``: nothing when the result aliases the input's bytes;
    else the elements copied in row-major order, run by run."""
    x, y = layout.of(op.operands[0]), layout.of(op.results[0])
    if in_place(x, y):
        return []
    n, h, w, c = x.shape
    _, h2, w2, c2 = nhwc_shape(op.results[0].type)
    transfers = []
    for b in range(n):
        e, total = 0, h * w * c
        while e < total:
            p, ch, q, ch2 = e // c, e % c, e // c2, e % c2
            if c == c2:  # whole pixels, as many as stay in one row on both sides
                length = min(w - p % w, w2 - q % w2)
                transfers.append(Transfer(length, c, x.address(b, p // w, p % w),
                                          x.pixel_bytes,
                                          ((y.address(b, q // w2, q % w2), y.pixel_bytes),)))
                e += length * c
            else:
                run = min(c - ch, c2 - ch2)
                transfers.append(Transfer(1, run, x.address(b, p // w, p % w, ch), run,
                                          ((y.address(b, q // w2, q % w2, ch2), run),)))
                e += run
    return move_items(op, transfers, target, buffers)


def move_items(op, transfers: list, target, buffers: int = 2) -> list:
    """The LOAD / SAVE items of ``transfers`` through ``buffers`` bank buffers of the save
    engine's first bank group (the module docstring's scheme); XirError at ``op`` if one
    transfer does not fit a buffer."""
    if not transfers:
        return []
    group = target.bank_group(target.save.input_bank[0])
    nbuf = max(1, buffers)
    capacity = group.bank_depth // nbuf
    reg = REG_IDS[DATA]
    chunks: list[list] = [[]]
    used = 0
    for t in transfers:
        lines = ceil_div(t.length, group.bank_num) * ceil_div(t.channel, group.bank_width)
        if lines > capacity:
            raise op.error(f"'{layer_label(op)}': {t.length} pixels of {t.channel} bytes need "
                           f"{lines} lines of bank group {group.name}, which has {capacity} "
                           f"per buffer")
        if used + lines > capacity:
            chunks.append([])
            used = 0
        chunks[-1].append((t, used))
        used += lines
    s = _Stream(op)
    loads, saves = [], []
    for k, chunk in enumerate(chunks):
        base = (k % nbuf) * capacity
        tl, ts = [], []
        for t, at in chunk:
            words = ceil_div(t.channel, group.bank_width)
            tl.append(s.add("LOAD", bank_id=group.base_id, bank_addr=base + at, length=t.length,
                            channel=t.channel, jump_read=t.src_jump, jump_write=words,
                            reg_id=reg, ddr_addr=t.src))
            for dst, jump in t.dests:
                ts.append(s.add("SAVE", bank_id=group.base_id, bank_addr=base + at,
                                length=t.length, channel=t.channel, jump_read=words,
                                jump_write=jump if t.length > 1 else t.channel, reg_id=reg,
                                ddr_addr=dst))
        loads.append(tl)
        saves.append(ts)
    for k in range(len(chunks)):
        _flag(loads[k][-1], "dpdby", SAVE_BIT)
        _flag(saves[k][0], "dpdon", LOAD_BIT)
        if k + nbuf < len(chunks):  # chunk k + nbuf reuses this buffer
            _flag(saves[k][-1], "dpdby", LOAD_BIT)
            _flag(loads[k + nbuf][0], "dpdon", SAVE_BIT)
    return [item for k in range(len(chunks)) for item in loads[k] + saves[k]]
