"""Numba kernels of whole runs of LOADs and SAVEs (:mod:`.datamove`): a screen finding the
instructions the per-instruction checks might reject, and the moves between the DDR and the
bank groups by the bank contract of docs/simulator.md (pixel p of a run in ring slot
``bank_id - base_id + p``, its words ``bank_addr + (slot div bank_num) · jump`` on).

Banks come in as ``flats``, a tuple of every group's (bank, word · byte) uint8 view: a pixel's
bytes are one stretch of a bank's row from byte ``word · bank_width``. ``geometry`` holds each
group's (base_id, bank_num, bank_depth, bank_width)."""

from __future__ import annotations

import numba
import numpy as np

U = np.uint64  # byte offsets as unsigned: Numba then drops its negative-index wraparound
#               test, and the byte loops vectorize (4-10x faster on 16-byte pixels)


@numba.njit(cache=True, nogil=True, inline="always")
def copy_bytes(dst, row, at, src, start, count):
    """dst[row, at + k] = src[start + k] for k < count (offsets unsigned)."""
    for k in range(U(count)):
        dst[row, U(at) + k] = src[U(start) + k]


@numba.njit(cache=True, nogil=True, inline="always")
def zero_bytes(dst, row, at, count):
    """dst[row, at + k] = 0 for k < count."""
    for k in range(U(count)):
        dst[row, U(at) + k] = 0

#: the fields the kernels read, in the order of their ``f`` argument
FIELDS = ("bank_id", "bank_addr", "length", "channel", "jump_read", "jump_write", "reg_id",
          "ddr_addr", "pad_start", "pad_end")


@numba.njit(cache=True, nogil=True, inline="always")
def _screen_one(f, i, save, table, geometry, registers, ddr_size):
    """LOAD (``save`` False) or SAVE ``i`` (the columns ``f`` of :data:`FIELDS`; a SAVE's pad
    columns are zeros): (whether its checks might fail, its group — ``table`` maps bank ids to
    group indices, -1: not allowed —, DDR start byte, DDR bytes moved, bank bytes, pad bytes).
    ``registers``: the 8 bases, -1 where unset."""
    bank_id, addr, length, channel = f[i, 0], f[i, 1], f[i, 2], f[i, 3]
    jump_read, jump_write, reg_id, ddr_addr = f[i, 4], f[i, 5], f[i, 6], f[i, 7]
    pixels = f[i, 8] + length + f[i, 9]
    jump, ddr_jump = (jump_read, jump_write) if save else (jump_write, jump_read)
    g = table[bank_id] if 0 <= bank_id < table.shape[0] else -1
    bad = g < 0
    gg = max(g, 0)
    base_id, bank_num, depth, width = (geometry[gg, 0], geometry[gg, 1], geometry[gg, 2],
                                       geometry[gg, 3])
    words = (channel + width - 1) // width
    turn = (bank_id - base_id + max(pixels - 1, 0)) // bank_num
    if addr >= depth or addr < 0:
        bad = True
    if pixels > 0 and words > 0 and (
            (turn > 0 and jump < words) or addr + turn * jump + words - 1 >= depth):
        bad = True
    moves = length > 0 and channel > 0
    base = registers[reg_id] if 0 <= reg_id < 8 else -1
    start = base + ddr_addr
    if moves and (base < 0 or start + (length - 1) * ddr_jump + channel - 1 >= ddr_size
                  or (save and length > 1 and jump_write < channel)):
        bad = True
    return (bad, g, start, length * channel if moves else 0, pixels * words * width,
            (pixels - length) * words * width)


@numba.njit(cache=True, nogil=True)
def move_run(flats, geometry, ddr, f, save, table, registers, groups, regs):
    """LOADs or SAVEs ``f`` in order, each screened first (:func:`_screen_one`), up to the
    first that might fault, whose index it returns (``len(f)``: all ran). Counters:
    ``groups[k]`` (instructions, bank bytes) of group k, ``regs[r]`` (instructions, DDR bytes)
    of register r, ``regs[8, 1]`` the pad bytes."""
    for i in range(f.shape[0]):
        bad, g, start, moved, bank_bytes, pad_bytes = _screen_one(
            f, i, save, table, geometry, registers, ddr.shape[0])
        if bad:
            return i
        for k in range(len(flats)):  # a tuple of arrays: reached by a literal index only
            if k == g:
                if save:
                    _save_one(flats[k], geometry[g, 0], geometry[g, 3], ddr, f, i, start)
                else:
                    _load_one(flats[k], geometry[g, 0], geometry[g, 3], ddr, f, i, start)
        groups[g, 0] += 1
        groups[g, 1] += bank_bytes
        regs[f[i, 6], 0] += 1
        regs[f[i, 6], 1] += moved
        regs[8, 1] += pad_bytes
    return f.shape[0]


@numba.njit(cache=True, nogil=True, inline="always")
def _load_one(flat, base_id, width, ddr, f, i, start):
    # bank by bank (pixels r, r + nb, … share bank r's rows, jump_write words apart): a
    # pixel-order loop would write nb rows 2^k bytes apart in turn, which share cache sets
    nb = flat.shape[0]
    bank_id, addr, length, channel = f[i, 0], f[i, 1], f[i, 2], f[i, 3]
    jump_read, jump_write, pad_start = f[i, 4], f[i, 5], f[i, 8]
    pixels = pad_start + length + f[i, 9]
    span = (channel + width - 1) // width * width
    q0 = bank_id - base_id
    for r in range(min(nb, pixels)):
        bank = (q0 + r) % nb
        at = (addr + (q0 + r) // nb * jump_write) * width
        for p in range(r, pixels, nb):
            if pad_start <= p < pad_start + length:
                copy_bytes(flat, bank, at, ddr, start + (p - pad_start) * jump_read, channel)
                zero_bytes(flat, bank, at + channel, span - channel)
            else:
                zero_bytes(flat, bank, at, span)
            at += jump_write * width


@numba.njit(cache=True, nogil=True, inline="always")
def _save_one(flat, base_id, width, ddr, f, i, start):
    nb = flat.shape[0]  # bank by bank, as _load_one
    bank_id, addr, length, channel, jump_read, jump_write = (f[i, 0], f[i, 1], f[i, 2],
                                                             f[i, 3], f[i, 4], f[i, 5])
    if length == 0 or channel == 0:
        return
    q0 = bank_id - base_id
    for r in range(min(nb, length)):
        bank = (q0 + r) % nb
        at = (addr + (q0 + r) // nb * jump_read) * width
        for k in range(r, length, nb):
            dst = U(start + k * jump_write)
            for byte in range(U(channel)):
                ddr[dst + byte] = flat[bank, U(at) + byte]
            at += jump_read * width
