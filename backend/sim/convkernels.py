"""Numba kernels of the conv engine's batches (:mod:`.convbatch`): the im2col rows of many
CONVs gathered straight from the bank array, and the integer finish of many CONVs scattered
into the output banks. The arithmetic is :mod:`.engines`' (the same chunked float32 GEMM, the
same :func:`xir.dialects.quant.fixed.finish`).

Banks come in as ``flat``: a group's (bank, word, byte) array viewed as (bank, word · byte)
int8, so that a pixel's bytes, which fill consecutive words of one bank, are one contiguous
stretch from byte ``word · bank_width``."""

from __future__ import annotations

import numpy as np

from xir.dialects.quant import fixed

from .engines import _jit

U = np.uint64  # unsigned offsets in the byte loops: no wraparound test, they vectorize


@_jit
def gather_cols(flat, width, base_id, kh, kw, sw, jump_read, words_in, chan, bank_id,
                bank_addr, pad_top, pad_left, rows, n_in, length, offset, cols):
    """cols[offset[u] + ox, (ky · kw + kx) · len(chan) + j]: byte ``chan[j]`` of the input
    pixel under kernel tap (ky, kx) of output pixel ox of CONV input u (its rows of ``n_in``
    pixels from ring slot ``bank_id`` at ``bank_addr``, ``jump_read`` words apart; zeros where
    the window hangs over the pads), as float32. ``chan`` lists the channels kept (all, or
    those whose weights are not all zero)."""
    nb = flat.shape[0]
    channels = len(chan)
    full = channels == 0 or chan[channels - 1] == channels - 1  # chan is sorted
    most = 0
    for u in range(len(n_in)):
        most = max(most, n_in[u])
    bank_of = np.empty(most, np.int64)  # per input pixel of a row: its bank and word offset
    word_of = np.empty(most, np.int64)
    for u in range(len(bank_id)):
        for ix in range(n_in[u]):
            q = bank_id[u] - base_id + ix
            bank_of[ix], word_of[ix] = q % nb, (q // nb) * words_in
        for ox in range(length[u]):
            row = offset[u] + ox
            for ky in range(kh):
                iy = ky - pad_top[u]
                inside = 0 <= iy < rows[u]
                line = bank_addr[u] + iy * jump_read
                for kx in range(kw):
                    ix = ox * sw - pad_left[u] + kx
                    base = U((ky * kw + kx) * channels)
                    if inside and 0 <= ix < n_in[u]:
                        bank = bank_of[ix]
                        at = U((line + word_of[ix]) * width)
                        if full:
                            for c in range(U(channels)):
                                cols[row, base + c] = flat[bank, at + c]
                        else:
                            for c in range(U(channels)):
                                cols[row, base + c] = flat[bank, at + U(chan[c])]
                    else:
                        for c in range(U(channels)):
                            cols[row, base + c] = 0.0


@_jit
def finish_scatter(parts, row, col, length, bias, shift_bias, shift_cut, code, relu6_max,
                   hsigmoid_in, shift_hsigmoid, shift_hswish, flat, width, base_id, bank_id,
                   bank_addr, jump_write, words_out):
    """For CONV i in order: its ``length[i]`` pixels × OCP channels, the chunk sums of
    ``parts[:, row[i] + p, col[i] + m]`` finished with ``bias[i]`` as ``engines._conv_finish``
    does, written from ring slot ``bank_id[i]`` at ``bank_addr[i]``, a bank's pixels
    ``jump_write`` words apart (word tails zero)."""
    nb = flat.shape[0]
    ocp = bias.shape[1]
    shift = fixed.bias_shift(shift_bias, shift_cut)
    acc = np.empty(ocp, dtype=np.int64)
    lane = np.zeros(words_out * width, dtype=np.int8)
    for i in range(len(length)):
        c0 = U(col[i])
        q = bank_id[i] - base_id
        bank, turn = q % nb, q // nb  # then slot by slot, no division
        for p in range(length[i]):
            r = row[i] + p
            # engines._conv_finish's loops for one pixel (unsigned offsets: they vectorize)
            for m in range(U(ocp)):
                acc[m] = np.int64(parts[0, r, c0 + m])
            for k in range(1, parts.shape[0]):
                for m in range(U(ocp)):
                    acc[m] += np.int64(parts[k, r, c0 + m])
            for m in range(U(ocp)):
                num = fixed.bias_numerator(acc[m], np.int64(bias[i, m]), shift_bias)
                lane[m] = fixed.finish(num, shift, code, relu6_max, hsigmoid_in,
                                       shift_hsigmoid, shift_hswish, fixed.round_shift_dpu)
            at = U((bank_addr[i] + turn * jump_write) * width)
            for j in range(U(words_out * width)):
                flat[bank, at + j] = lane[j]
            bank += 1
            if bank == nb:
                bank, turn = 0, turn + 1


#: the CONV fields :func:`screen_conv` reads, in the order of its ``fields`` argument
SCREEN_FIELDS = ("pad_top", "pad_left", "pad_bottom", "pad_right", "length", "channel_group",
                 "bank_id_in", "bank_addr_in", "bank_id_out", "bank_addr_out", "bank_id_weights",
                 "bank_addr_weights", "bank_id_bias", "bank_addr_bias")


@_jit
def screen_conv(f, kh, kw, sw, jump_read, jump_write, icp, ocp, tables, geometry, suspect,
                group, low, high, rows, n_in, size, keys):
    """Per CONV (the columns ``f`` of :data:`SCREEN_FIELDS`): ``suspect`` if the
    per-instruction checks might reject it; per role (in, out, weights, bias) its group
    (``tables[role]`` maps a bank id to a group index, -1: not allowed), the lowest and
    highest bank word it touches, the bank bytes it reads or writes (``size``); its real input
    rows and pixels per row; ``keys``: what makes its input, weights and bias distinct."""
    for i in range(f.shape[0]):
        pt, pl, pb, pr = f[i, 0], f[i, 1], f[i, 2], f[i, 3]
        length, groups = f[i, 4], f[i, 5]
        rows[i] = kh - pt - pb
        n_in[i] = (length - 1) * sw + kw - pl - pr
        bad = length <= 0 or rows[i] <= 0 or n_in[i] <= 0
        for j in range(f.shape[1]):  # the keys below pack the fields by their widths
            if f[i, j] < 0 or f[i, j] >= (16 if j < 4 else 4096 if j == 4 else 512 if j == 5
                                          else 64 if j % 2 == 0 else 16384):
                bad = True
        for role in range(4):
            bank_id, addr = f[i, 6 + 2 * role], f[i, 7 + 2 * role]
            g = tables[role, bank_id] if 0 <= bank_id < tables.shape[1] else -1
            group[i, role] = g
            if g < 0:
                bad = True
                g = 0
            base_id, bank_num, depth, width = (geometry[g, 0], geometry[g, 1], geometry[g, 2],
                                               geometry[g, 3])
            if role == 0:
                pixels, words = n_in[i], (groups * icp + width - 1) // width
                jump = words
            elif role == 1:
                pixels, words, jump = length, (ocp + width - 1) // width, jump_write
            elif role == 2:
                pixels, words = kh * kw * groups * ocp, (icp + width - 1) // width
                jump = words
            else:
                pixels, words = 1, (ocp + width - 1) // width
                jump = words
            turn = (bank_id - base_id + max(pixels - 1, 0)) // bank_num
            top = addr + turn * jump + words - 1
            if role == 0:
                top += max(rows[i] - 1, 0) * jump_read
            if top >= depth or (turn > 0 and jump < words):
                bad = True
            low[i, role], high[i, role] = addr, top
            size[i, role] = pixels * words * width * (max(rows[i], 0) if role == 0 else 1)
        suspect[i] = bad
        keys[i, 0] = (((f[i, 6] * 16384 + f[i, 7]) * 65536 + ((pt * 16 + pb) * 16 + pl) * 16
                       + pr) * 4096 + length) * 512 + groups
        keys[i, 1] = (f[i, 10] * 16384 + f[i, 11]) * 512 + groups
        keys[i, 2] = f[i, 12] * 16384 + f[i, 13]


@_jit
def scatter_rows(out, row, col, length, ocp, flat, width, base_id, bank_id, bank_addr,
                 jump_write, words_out):
    """For CONV i in order: its finished pixels ``out[row[i] + p, col[i]:col[i] + ocp]``
    written from ring slot ``bank_id[i]`` at ``bank_addr[i]``, a bank's pixels ``jump_write``
    words apart (word tails zero)."""
    nb = flat.shape[0]
    for i in range(len(length)):
        q = bank_id[i] - base_id
        bank, turn = q % nb, q // nb  # then slot by slot, no division
        c0 = U(col[i])
        for p in range(length[i]):
            at = U((bank_addr[i] + turn * jump_write) * width)
            r = row[i] + p
            for m in range(U(ocp)):
                flat[bank, at + m] = out[r, c0 + m]
            for j in range(U(ocp), U(words_out * width)):
                flat[bank, at + j] = 0
            bank += 1
            if bank == nb:
                bank, turn = 0, turn + 1


@_jit
def weight_blocks(flat, width, base_id, words, bank_id, bank_addr, taps, groups, icp, ocp,
                  matrix, used):
    """The OCP weight blocks b at (``bank_id[b]``, ``bank_addr[b]``): ``taps`` · ``groups`` ·
    OCP pixels of ICP bytes each (pack_weights order: tap, input group, output channel), a
    bank's pixels ``words`` words apart, as the transposed GEMM matrix ``matrix[b · OCP + m,
    (t · groups + g) · ICP + c]`` (float32); ``used[g · ICP + c]`` ORs the bytes of input
    channel g · ICP + c (non-zero: a non-zero weight). Read bank by bank, as the LOAD kernel
    writes, with no division per pixel."""
    nb = flat.shape[0]
    pixels = taps * groups * ocp
    for b in range(len(bank_id)):
        q0 = bank_id[b] - base_id
        for r in range(min(nb, pixels)):
            bank = (q0 + r) % nb
            at = (bank_addr[b] + (q0 + r) // nb * words) * width
            tg, m = r // ocp, r % ocp  # pixel p = tg · OCP + m, tg = t · groups + g
            g = tg % groups
            for _ in range(r, pixels, nb):
                row = b * ocp + m
                base, seen = U(tg * icp), U(g * icp)
                for c in range(U(icp)):
                    v = flat[bank, U(at) + c]
                    matrix[row, base + c] = np.int8(v)
                    used[seen + c] |= v
                at += words * width
                m += nb
                while m >= ocp:
                    m -= ocp
                    tg += 1
                    g += 1
                    if g == groups:
                        g = 0


@_jit
def distinct_keys(keys, first, number):
    """For each column j of ``keys``: ``number[i, j]`` numbers the distinct values in order
    of first appearance, ``first[k, j]`` is where value k first appears (an open-addressing
    hash table, so linear time); returns the count of distinct values per column."""
    n, cols = keys.shape
    counts = np.zeros(cols, np.int64)
    size, bits = 1, 0
    while size < 2 * n + 2:
        size *= 2
        bits += 1
    slot_key = np.empty(size, np.int64)
    slot_num = np.empty(size, np.int64)
    for j in range(cols):
        slot_num[:] = -1
        for i in range(n):
            k = keys[i, j]
            # Fibonacci hashing: the top bits of k · 2^64/φ, which every bit of k reaches
            h = np.int64((U(k) * U(0x9E3779B97F4A7C15)) >> U(64 - bits)) if bits else 0
            while slot_num[h] >= 0 and slot_key[h] != k:
                h = (h + 1) & (size - 1)
            if slot_num[h] < 0:
                slot_key[h] = k
                slot_num[h] = counts[j]
                first[counts[j], j] = i
                counts[j] += 1
            number[i, j] = slot_num[h]
    return counts
