"""A static race check of an instruction stream, independent of the emitter: which
instructions are ordered by the queues and tokens (vector clocks over the token matching the
simulator makes: the k-th ``dpdon`` of FIFO s → d takes the k-th ``dpdby`` token of it), and
whether every two instructions of different queues touching the same bank words or DDR bytes,
one of them writing, are ordered. A stream that passes gives the same banks and DDR in every
queue order (what tests/test_sim_random_graphs.py samples with random orders).

Accesses: LOAD writes its bank run (pads included) and reads ``length`` pixels of DDR; SAVE
reads its bank run and writes DDR; a compute instruction's accesses are
:func:`~xir.dialects.dpuisa.extents.compute_extents` (the output written, the rest read).
Each bank access is taken as the word interval [first word, last word] of its group (all
banks of the group), which can only over-report.
"""

from __future__ import annotations

import numpy as np

from xir.dialects.dpuisa import isa
from xir.dialects.dpuisa.extents import INIT_OF, compute_extents

QUEUES = isa.QUEUES


def _full(mnemonic: str, values: dict) -> dict:
    return {f.name: 0 for f in isa.BY_MNEMONIC[mnemonic].fields} | values


def _group(target, bank_id: int):
    return next(g for g in target.bank_groups if bank_id in g.bank_ids)


def _move_run(target, f: dict, jump: str) -> tuple | None:
    """(group, lo, hi) of a LOAD's / SAVE's bank words, or None when it moves nothing."""
    pixels = f["length"] + f.get("pad_start", 0) + f.get("pad_end", 0)
    if pixels == 0 or f["channel"] == 0:
        return None
    g = _group(target, f["bank_id"])
    words = -(-f["channel"] // g.bank_width)
    turns = (f["bank_id"] - g.base_id + pixels - 1) // g.bank_num
    return g.name, f["bank_addr"], f["bank_addr"] + turns * f[jump] + words


def accesses(items: list, target, ddr_read=None) -> list[list[tuple]]:
    """Per item: its accesses as (resource, lo, hi, writes); resource is a bank group name or
    ("DDR", reg_id); DDR pixel by pixel. ``ddr_read(item, reg_id, address, channel)``: how
    many of the bytes LOAD ``item`` reads there matter (default: all)."""
    out, inits = [], {}
    for i, (mnemonic, values) in enumerate(items):
        f = _full(mnemonic, values)
        acc = []
        if mnemonic in ("LOAD", "SAVE"):
            load = mnemonic == "LOAD"
            run = _move_run(target, f, "jump_write" if load else "jump_read")
            if run is not None:
                acc.append((*run, load))
            jump = f["jump_read" if load else "jump_write"]
            for p in range(f["length"] if f["channel"] else 0):  # pixel by pixel
                lo = f["ddr_addr"] + p * jump
                n = f["channel"] if ddr_read is None or not load else \
                    ddr_read(i, f["reg_id"], lo, f["channel"])
                if n > 0:
                    acc.append((("DDR", f["reg_id"]), lo, lo + n, not load))
        elif mnemonic in INIT_OF.values():
            inits[mnemonic] = f
        elif mnemonic in INIT_OF:
            groups = {name: _group(target, v) for name, v in f.items()
                      if name.startswith("bank_id")}
            for e in compute_extents(mnemonic, inits[INIT_OF[mnemonic]], f, target, groups):
                if not e.empty:
                    acc.append((e.group.name, e.addr, e.last() + 1, e.id_field == "bank_id_out"))
        out.append(acc)
    return out


def clocks(items: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(queue, position in its queue, vector clock) per item: clock[i][q] = how many
    instructions of queue q have finished before item i starts (END: queue −1)."""
    n = len(items)
    queue = np.full(n, -1)
    pos = np.zeros(n, np.int64)
    counts = [0] * len(QUEUES)
    for i, (m, _) in enumerate(items):
        if m == "END":
            continue
        q = QUEUES.index(isa.BY_MNEMONIC[m].queue)
        queue[i], pos[i] = q, counts[q]
        counts[q] += 1
    # token matching: the k-th consumer of FIFO (s, d) waits for the k-th signaller
    signallers: dict = {}
    for i, (m, f) in enumerate(items):
        if queue[i] >= 0:
            for d in range(len(QUEUES)):
                if f.get("dpdby", 0) >> d & 1:
                    signallers.setdefault((queue[i], d), []).append(i)
    taken: dict = {}
    waits = [[] for _ in range(n)]
    for i, (m, f) in enumerate(items):
        if queue[i] >= 0:
            for s in range(len(QUEUES)):
                if f.get("dpdon", 0) >> s & 1:
                    k = taken.get((s, queue[i]), 0)
                    taken[s, queue[i]] = k + 1
                    waits[i].append(signallers[s, queue[i]][k])
    clock = np.zeros((n, len(QUEUES)), np.int64)
    heads = {q: [i for i in range(n) if queue[i] == q] for q in range(len(QUEUES))}
    ptr = dict.fromkeys(heads, 0)
    finished = np.zeros(n, bool)
    last = dict.fromkeys(heads, None)
    remaining = sum(len(v) for v in heads.values())
    while remaining:
        stepped = False
        for q, order in heads.items():
            while ptr[q] < len(order) and all(finished[w] for w in waits[order[ptr[q]]]):
                i = order[ptr[q]]
                c = clock[last[q]].copy() if last[q] is not None else np.zeros(len(QUEUES), np.int64)
                if last[q] is not None:
                    c[q] = pos[last[q]] + 1
                for w in waits[i]:
                    c = np.maximum(c, clock[w])
                    c[queue[w]] = max(c[queue[w]], pos[w] + 1)
                clock[i] = c
                finished[i], last[q] = True, i
                ptr[q] += 1
                remaining -= 1
                stepped = True
        if not stepped:
            raise AssertionError("deadlock")
    return queue, pos, clock


def first_race(items: list, target, ddr_read=None) -> tuple[int, int] | None:
    """The first pair (i, j), i < j, of items of different queues with conflicting accesses
    that no queue order or token chain orders; None when the stream is race-free.
    ``ddr_read``: as for :func:`accesses`."""
    queue, pos, clock = clocks(items)
    acc = accesses(items, target, ddr_read)
    rows = [(i, r, lo, hi, w) for i, a in enumerate(acc) for r, lo, hi, w in a]
    if not rows:
        return None
    res = {r for _, r, _, _, _ in rows}
    rid = {r: k for k, r in enumerate(sorted(res, key=str))}
    idx = np.array([r[0] for r in rows])
    rr = np.array([rid[r[1]] for r in rows])
    lo, hi = np.array([r[2] for r in rows]), np.array([r[3] for r in rows])
    wr = np.array([r[4] for r in rows])
    q, p = queue[idx], pos[idx]
    for k in range(len(rows)):
        i = idx[k]
        hit = (idx > i) & (rr == rr[k]) & (lo < hi[k]) & (lo[k] < hi) & (wr | wr[k]) \
            & (q != q[k])
        if not hit.any():
            continue
        js = idx[hit]
        # ordered: i finished before j started, or j before i
        before = clock[js, q[k]] >= p[k] + 1
        after = clock[i, queue[js]] >= pos[js] + 1
        bad = ~(before | after)
        if bad.any():
            return int(i), int(js[bad][0])
    return None


def operand_reads(func, layout, emission):
    """A ``ddr_read`` for :func:`first_race`: a LOAD of a layer reads, of the bytes at an
    address, those up to the last real channel of the op's operand there (a reader of a
    concat's view loads whole padded pixels, past the view's channels, into its neighbour's:
    bytes the engines ignore, docs/codegen.md)."""
    from xir.passes.codegen.tiling import layer_label

    operands = {}
    for op in func.regions[0].blocks[0].ops:
        if op.results and op.operands:
            operands.setdefault(layer_label(op), [layout.of(v) for v in op.operands
                                                  if layout.of(v).region == "DATA"])
    owner = {}
    for record in emission.layers:
        for i in range(record.first, record.stop):
            owner[i] = operands.get(record.name, [])

    def ddr_read(i: int, reg_id: int, address: int, channel: int) -> int:
        best = None
        for t in owner.get(i, []):
            if t.reg_id != reg_id or not t.offset <= address < t.offset + t.size:
                continue
            c = (address - t.offset - t.channel_offset) % t.pixel_bytes
            if c < t.shape[-1]:
                best = max(best or 0, min(channel, t.shape[-1] - c))
        return channel if best is None else best
    return ddr_read
