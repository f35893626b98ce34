"""Overlap of consecutive tiled ops: the tokens that let an op's LOADs (and so its compute) start
while the op before it still computes and saves, and the bank placement that leaves them
little to wait for (docs/codegen.md, "Emitting a whole subgraph").

When op B's first LOAD runs, every LOAD of the op A before it has run (one LOAD queue), and so
has everything of the ops before A (B's predecessor's last SAVE token is taken by A's LOADs,
below). What of A may still run: its computes of the tiles its own LOADs did not wait for
(``done`` onwards) and its SAVEs. B must therefore wait, by tokens from A:

- before a LOAD (or B's compute, gated by its tile's last LOAD) writes bank lines A's tile t
  reads in its compute (input, weight, bias buffers): for t's compute (compute → LOAD token
  from t's last compute instruction);
- before it writes lines A's tile t writes (its output buffer): for t's SAVEs (SAVE → LOAD
  token from t's last SAVE);
- before a LOAD reads DDR bytes A's tile t SAVEs: for t's SAVEs (same token).

A token from tile t covers the tiles before it (each queue runs in order; a tile's SAVE
follows its compute), so B takes one token each time what it needs grows, and A's signalling
tiles are exactly those. B's last LOAD waits (an empty LOAD, when it has not yet) for A's last
SAVE, which is what makes "everything before A has run" true for the op after B. When A and B
compute on the same queue, B's own compute → LOAD tokens come from tiles after all of A's, so
from B's first such token on no compute token of A is needed (and none may be taken after it:
the FIFO is shared).
"""

from __future__ import annotations

import numpy as np

from .ddr_layout import CONST, REG_IDS
from .emit import LOAD_BIT, SAVE_BIT
from .tiling import relocated


class _Buffers:
    """A plan's bank buffers as arrays, for vectorised overlap tests: per buffer its group,
    lines [lo, hi), tile, and whether the tile's compute writes it (output) or reads it."""

    def __init__(self, plan):
        rows = []
        for t in plan.tiles:
            for tag, a in t.accesses():
                if a.lines > 0:
                    rows.append((a.group, a.address, a.end, t.index, tag == "out"))
        self.group = np.array([r[0] for r in rows], dtype=object)
        self.lo, self.hi, self.tile = (np.array([r[k] for r in rows], np.int64)
                                       for k in range(1, 4))
        self.written = np.array([r[4] for r in rows], bool)

    def need(self, accesses) -> tuple[int, int]:
        """(compute, save) progress of this plan's op that writing ``accesses`` (BankAccess)
        needs: 1 + the last tile whose compute reads, or whose output is, one of their lines."""
        need_c = need_s = 0
        for a in accesses:
            if a is None or a.lines <= 0:
                continue
            hit = (self.group == a.group) & (self.lo < a.end) & (a.address < self.hi)
            if hit.any():
                reads, writes = hit & ~self.written, hit & self.written
                if reads.any():
                    need_c = max(need_c, int(self.tile[reads].max()) + 1)
                if writes.any():
                    need_s = max(need_s, int(self.tile[writes].max()) + 1)
        return need_c, need_s


def _tile_needs(prev, plan) -> list[tuple]:
    """Per tile of ``plan`` (the next op): the (compute, save) progress of ``prev`` that its
    weight LOADs, its row LOADs and its compute need for the banks."""
    bufs = _Buffers(prev.plan)
    return [(bufs.need([t.weights, t.bias]), bufs.need(t.inputs), bufs.need([t.output]))
            for t in plan.tiles]


def place(prev, plan, target):
    """``plan`` relocated (weights at the bottom or the top of their banks, image slots
    rotated) so that its first tiles wait least for ``prev`` (a :class:`~.emit.TileItems`)."""
    best, best_cost = plan, None
    for top in ((False, True) if plan.tiles[0].weights is not None else (False,)):
        for shift in range(plan.buffers):
            cand = relocated(plan, target, top, shift) if (top or shift) else plan
            needs = _tile_needs(prev, cand)[:plan.buffers + 1]
            cost = sum(max(c, s) for tile in needs for c, s in tile)
            if best_cost is None or cost < best_cost:
                best, best_cost = cand, cost
    return best


class _Saves:
    """The DDR pixels ``prev``'s SAVEs write (DATA register), as arrays: per SAVE its first
    byte, pixels, pixel stride, bytes a pixel, and tile."""

    def __init__(self, prev):
        rows = [(f["ddr_addr"], max(f.get("length", 0), 1), f.get("jump_write", 0),
                 f.get("channel", 0), t)
                for t, saves in enumerate(prev.saves) for _, f in saves if "ddr_addr" in f]
        self.lo, self.n, self.jump, self.ch, self.tile = (
            np.array([r[k] for r in rows], np.int64) for k in range(5))
        self.hi = self.lo + (self.n - 1) * self.jump + self.ch

    def need(self, lo: int, n: int, jump: int, ch: int) -> int:
        """1 + the last tile whose SAVEs write a byte of the ``n`` pixels of ``ch`` bytes,
        ``jump`` apart, from ``lo``; 0 if none. Both sides strided alike (one tensor's pixels):
        exact per pixel (the channel windows must meet modulo the stride), else by extent."""
        hi = lo + (n - 1) * jump + ch
        hit = (self.lo < hi) & (lo < self.hi)
        if not hit.any():
            return 0
        stride = np.where(self.n > 1, self.jump, jump)
        alike = (stride > 0) & ((self.n == 1) | (n == 1) | (self.jump == jump)) & \
            (self.ch <= stride) & (ch <= stride)
        gap = (self.lo - lo) % np.maximum(stride, 1)  # their window's start in ours, mod stride
        meet = (gap < ch) | (stride - gap < self.ch)
        hit &= ~alike | meet
        return int(self.tile[hit].max()) + 1 if hit.any() else 0


def chain_tiled(prev, nxt) -> None:
    """Chain tiled op ``nxt`` after tiled op ``prev`` (both :class:`~.emit.TileItems`) by the
    tokens of the module docstring: flags on both ops' items, empty LOADs added to ``nxt``
    where needed (its list is rebuilt)."""
    n_prev = len(prev.plan.tiles)
    same_queue = prev.compute_bit == nxt.compute_bit
    needs = _tile_needs(prev, nxt.plan)
    saves = _Saves(prev)
    const = REG_IDS[CONST]
    done_c, done_s = prev.done, 0  # prev's tiles known computed / saved
    c_signal, s_signal = [], []  # prev's tiles that signal LOAD
    for j, loads in enumerate(nxt.loads):
        if done_s >= n_prev:
            break
        (w_c, w_s), (i_c, i_s), (o_c, o_s) = needs[j]
        if not loads and (o_c > done_c or o_s > done_s):  # gate this tile's compute by a LOAD
            loads.append(["LOAD", {"dpdby": nxt.compute_bit}])
            nxt.computes[j][0][1]["dpdon"] = nxt.computes[j][0][1].get("dpdon", 0) | LOAD_BIT
        for k, (_, f) in enumerate(loads):
            own = f.get("dpdon", 0) & nxt.compute_bit
            if same_queue and own:  # its own token comes after all of prev's computes
                done_c = n_prev
            need_c = need_s = 0
            if "bank_id" not in f:
                pass
            elif f.get("reg_id") == const:
                need_c, need_s = w_c, w_s
            else:
                need_c = i_c
                need_s = max(i_s, saves.need(f.get("ddr_addr", 0), max(f.get("length", 0), 1),
                                             f.get("jump_read", 0), f.get("channel", 0)))
            if k == len(loads) - 1:  # the LOAD the tile's compute waits for
                need_c, need_s = max(need_c, o_c), max(need_s, o_s)
            if need_s > done_s:
                f["dpdon"] = f.get("dpdon", 0) | SAVE_BIT
                s_signal.append(need_s - 1)
                done_s = need_s
                done_c = max(done_c, done_s)
            if need_c > done_c:
                f["dpdon"] = f.get("dpdon", 0) | prev.compute_bit
                c_signal.append(need_c - 1)
                done_c = need_c
    if done_s < n_prev:  # the op after nxt may rely on prev being finished
        nxt.loads[-1].append(["LOAD", {"dpdon": SAVE_BIT}])
        s_signal.append(n_prev - 1)
    for t in c_signal:
        f = prev.computes[t][-1][1]
        f["dpdby"] = f.get("dpdby", 0) | LOAD_BIT
    for t in s_signal:
        f = prev.saves[t][-1][1]
        f["dpdby"] = f.get("dpdby", 0) | LOAD_BIT
    nxt.refresh()

