"""CONV runs in batches: what :meth:`.compute.ConvEngine.execute_batch` does with many CONVs
after one CONVINIT (docs/simulator.md, "How the machine runs a stream fast").

1. :class:`Screen` the run in one Numba pass for anything the per-instruction checks might
   reject (a superset); a suspect CONV goes through :meth:`~.compute.ConvEngine.execute`,
   which raises its fault or runs it, and the batch goes on after it.
2. Gather the im2col rows of every distinct input (CONVs of different OCP blocks read the same
   input: once) straight from the bank array (:func:`.convkernels.gather_cols`).
3. One exact float32 GEMM (:func:`.engines.gemm_parts`) of those rows by the weight blocks the
   run uses side by side (:class:`WeightCache`) when every input meets every block (the usual
   case), else one per block.
4. The integer finish (:func:`.engines._conv_finish` over the whole product, or
   :func:`.convkernels.finish_scatter` CONV by CONV when a weight block meets two biases) and
   the scatter into the output banks, CONV by CONV in order.

A run whose CONVs might write bank words that CONVs of the same run read runs per
instruction, and so does a channel-group count whose inputs sit in two bank groups.
"""

from __future__ import annotations

import math

import numpy as np

from .convkernels import (SCREEN_FIELDS, distinct_keys, finish_scatter, gather_cols,
                          scatter_rows, screen_conv, weight_blocks)
from .engines import _conv_finish, gemm_chunks, gemm_parts

ROLES = ("in", "out", "weights", "bias")


def _read_many(mem, bank_id: np.ndarray, addr: np.ndarray, channel: int,
               pixels: int = 1) -> np.ndarray:
    """The first ``channel`` bytes of ``pixels`` pixels from each (ring slot, word), a bank's
    pixels one pixel's words apart (the bank contract; checked before): (runs, pixels,
    channel) uint8, or (runs, channel) for one pixel."""
    g = mem.group
    words = mem.words_per_pixel(channel)
    q = (bank_id - g.base_id)[:, None] + np.arange(pixels)[None, :]
    word = (addr[:, None] + (q // g.bank_num) * words)[..., None] + np.arange(words)
    bank = np.broadcast_to((q % g.bank_num)[..., None], word.shape)
    raw = mem.data[bank, word].reshape(len(bank_id), pixels, -1)[..., :channel]
    return raw[:, 0] if pixels == 1 else raw


class WeightCache:
    """The GEMM weight matrices of recent batches: the OCP blocks a batch uses side by side
    as one (K, blocks · OCP) float32 matrix, K over the input channels that have a non-zero
    weight (a zero weight adds an exact 0, so dropping it changes no bit; it drops the
    channel padding of a 3-channel first layer). An entry is reused while the weight group's
    bytes are those it was built from: each batch compares the group with a snapshot of it
    (any writer of the banks, LOAD or another engine, thus invalidates), and a change starts
    a new epoch; entries of an older epoch are rebuilt."""

    KEEP = 4  # entries kept (a big layer's matrix is megabytes)

    def __init__(self):
        self.entries: dict = {}
        self.snapshots: dict = {}
        self.epochs: dict = {}

    def epoch(self, mem) -> int:
        """The epoch of ``mem``'s contents: a new one whenever they differ from the last
        call's."""
        old = self.snapshots.get(mem.name)
        if old is None or not np.array_equal(old, mem.data):
            self.snapshots[mem.name] = mem.data.copy()
            self.epochs[mem.name] = self.epochs.get(mem.name, 0) + 1
        return self.epochs[mem.name]

    def matrix(self, mem, bank_id: np.ndarray, addr: np.ndarray, kh: int, kw: int, groups: int,
               icp: int, ocp: int) -> tuple[np.ndarray, np.ndarray]:
        """(matrix, channels kept) of the OCP blocks at (``bank_id``, ``addr``), in order."""
        epoch = self.epoch(mem)
        key = (mem.name, bank_id.tobytes(), addr.tobytes(), kh, kw, groups, icp, ocp)
        hit = self.entries.pop(key, None)
        if hit is None or hit[0] != epoch:
            taps, blocks = kh * kw, len(bank_id)
            matrix = np.empty((blocks * ocp, taps * groups * icp), np.float32)
            used = np.zeros(groups * icp, np.uint8)
            weight_blocks(mem.flat(), mem.group.bank_width, mem.group.base_id,
                          mem.words_per_pixel(icp), bank_id, addr, taps, groups, icp, ocp,
                          matrix, used)
            keep = np.flatnonzero(used)
            if len(keep) < groups * icp:
                matrix = np.ascontiguousarray(
                    matrix.reshape(blocks * ocp, taps, groups * icp)[:, :, keep]
                    .reshape(blocks * ocp, -1))
            matrix = matrix.T  # (K, blocks · OCP), a transposed view: BLAS takes it as is
            hit = (epoch, matrix, keep)
        self.entries[key] = hit
        while len(self.entries) > self.KEEP:
            self.entries.pop(next(iter(self.entries)))
        return hit[1], hit[2]


class Scratch:
    """Reused work arrays (im2col rows, GEMM parts, finished pixels): a fresh array of
    megabytes per batch costs its page faults every time."""

    def __init__(self):
        self.arrays: dict = {}

    def get(self, name: str, shape: tuple, dtype) -> np.ndarray:
        """An uninitialized array of ``shape``, a view of the buffer called ``name``."""
        size = math.prod(shape)
        buf = self.arrays.get(name)
        if buf is None or buf.size < size or buf.dtype != dtype:
            buf = self.arrays[name] = np.empty(max(size, 1), dtype)
        return buf[:size].reshape(shape)


class Screen:
    """What :func:`.convkernels.screen_conv` finds out about a run of CONVs: per CONV
    ``suspect``, per role (:data:`ROLES`) ``group`` index, ``low`` / ``high`` bank word and
    bank bytes ``size``; ``rows``, ``n_in``; ``keys`` (input, weights, bias)."""

    def __init__(self, engine, run, init):
        banks, spec = engine.banks, run.spec
        self.icp, self.ocp = engine.parallel()
        tables = getattr(engine, "_group_tables", None)
        if tables is None:
            access = {a.id_field: a for a in spec.banks}
            tables = engine._group_tables = np.stack([
                banks.group_index(np.arange(256), spec.engine,
                                  access[f"bank_id_{r}"].engine_bank) for r in ROLES])
        f = run.fields(SCREEN_FIELDS)
        n = len(f)
        self.f = f
        self.layouts: dict = {}  # (lo, hi) -> Layout
        self._hazard = None
        self.suspect = np.empty(n, np.bool_)
        self.group, self.low, self.high, self.size = (np.empty((n, 4), np.int64)
                                                      for _ in range(4))
        self.rows, self.n_in = np.empty(n, np.int64), np.empty(n, np.int64)
        self.keys = np.empty((n, 3), np.int64)
        screen_conv(f, init["kernel_h"], init["kernel_w"], init["stride_w"], init["jump_read"],
                    init["jump_write"], self.icp, self.ocp, tables, banks.geometry_table,
                    self.suspect, self.group, self.low, self.high, self.rows, self.n_in,
                    self.size, self.keys)

    def hazard(self) -> bool:
        """Whether a CONV might write bank words a CONV of the run reads (then the run goes
        per instruction): the span of output words meets an input span in the same group."""
        if self._hazard is None:
            self._hazard = self._spans_meet()
        return self._hazard

    def _spans_meet(self) -> bool:
        g, low, high = self.group, self.low, self.high
        lo_out, hi_out = low[:, 1].min(), high[:, 1].max()
        for role in (0, 2, 3):
            same = g[:, role] == g[:, 1]
            if same.any() and not (high[same, role].max() < lo_out or
                                   low[same, role].min() > hi_out):
                return True
        return False


def _spans(offset: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """offset[i] + 0 … lens[i] - 1 for every i, concatenated."""
    starts = np.repeat(offset - np.concatenate([[0], np.cumsum(lens)[:-1]]), lens)
    return starts + np.arange(int(lens.sum()))


def _distinct(keys: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per column of ``keys``: (where each distinct value first appears, in that order; each
    row's distinct number)."""
    first = np.empty(keys.shape, np.int64)
    number = np.empty(keys.shape, np.int64)
    counts = distinct_keys(np.ascontiguousarray(keys), first, number)
    return [(first[:c, j], number[:, j]) for j, c in enumerate(counts.tolist())]


class Layout:
    """What a batch of CONVs ``lo`` … ``hi`` - 1 of a screened run does that the fields alone
    decide (kept on the :class:`Screen`, which a plan keeps for every image): ``ok`` False when
    inputs of one channel-group count sit in two bank groups; per channel-group count a
    ``step`` (its CONVs, distinct inputs and weight blocks, bank groups, whether every input
    meets every block); each CONV's GEMM ``row`` and ``out_col``; the bias reads; the
    finish's bias block per GEMM column block (``blocks``, None: CONV by CONV); the output
    stretches (``cuts``) and the counters' bytes."""

    def __init__(self, sc: Screen, lo: int, hi: int, mems: list):
        ocp = sc.ocp
        f, gi = sc.f[lo:hi], sc.group[lo:hi]
        self.col = col = {name: f[:, k] for k, name in enumerate(SCREEN_FIELDS)}
        self.length, groups = col["length"], col["channel_group"]
        self.rows, self.n_in = sc.rows[lo:hi], sc.n_in[lo:hi]
        (ifirst, iu), (wfirst, wu), (bfirst, bu) = _distinct(sc.keys[lo:hi])
        n = hi - lo
        self.row, self.out_col = np.zeros(n, np.int64), np.zeros(n, np.int64)
        self.steps, self.ok = [], True
        one = groups.min() == groups.max()  # the usual run: one channel-group count
        rows_done, widths = 0, []
        for g in [int(groups[0])] if one else np.unique(groups).tolist():
            if one:  # every CONV; the distinct numbers are already 0 … count - 1
                sel, us, ws = slice(None), np.arange(len(ifirst)), np.arange(len(wfirst))
            else:
                sel = np.flatnonzero(groups == g)
                us, ws = np.unique(iu[sel]), np.unique(wu[sel])
            first = ifirst[us]  # a CONV reading each distinct input
            gin = gi[first, 0]
            wf = wfirst[ws]
            if (gin != gin[0]).any() or (gi[wf, 2] != gi[wf[0], 2]).any():
                self.ok = False
                return
            lens = self.length[first]
            offset = np.zeros(len(lens), np.int64)
            np.cumsum(lens[:-1], out=offset[1:])
            upos, wpos = (iu, wu) if one else (np.searchsorted(us, iu[sel]),
                                              np.searchsorted(ws, wu[sel]))
            pairs = np.zeros(len(us) * len(ws), np.bool_)
            pairs[upos * len(ws) + wpos] = True
            step = {"g": g, "first": first, "mem": int(gin[0]), "lens": lens, "offset": offset,
                    "wmem": int(gi[wf[0], 2]), "wf": wf, "full": bool(pairs.all())}
            if step["full"]:  # every input meets every block: one GEMM, blocks side by side
                self.row[sel] = rows_done + offset[upos]
                self.out_col[sel] = wpos * ocp
                rows_done += int(lens.sum())
                widths.append(len(ws) * ocp)
            else:  # one GEMM per block, over the rows of the CONVs using it
                mine_len = self.length[sel]
                conv_rows = np.concatenate([[0], np.cumsum(mine_len)[:-1]]).astype(np.int64)
                step["blocks"] = []
                for j in range(len(ws)):
                    mine = np.flatnonzero(wpos == j)
                    step["blocks"].append((_spans(offset[upos[mine]], mine_len[mine]),
                                           _spans(conv_rows[mine], mine_len[mine])))
                step["rows"] = int(mine_len.sum())
                self.row[sel] = rows_done + conv_rows
                rows_done += step["rows"]
                widths.append(ocp)
            self.steps.append(step)
        self.width = max(widths)
        # each CONV's bias: one gather per bias group
        self.bu = bu
        bias_group = gi[bfirst, 3]
        self.bias_reads = []
        for k in [int(bias_group[0])] if (bias_group == bias_group[0]).all() else \
                np.unique(bias_group).tolist():
            at = bias_group == k
            self.bias_reads.append((k, at, col["bank_id_bias"][bfirst[at]],
                                    col["bank_addr_bias"][bfirst[at]]))
        self.distinct_bias = len(bfirst)
        # the finish: one call over the whole GEMM when each of its columns has one bias (a
        # column block is one weight block, whose CONVs use one bias), else CONV by CONV
        self.blocks = None
        if self.width % ocp == 0:
            blocks = np.full(self.width // ocp, -1, np.int64)
            blocks[self.out_col // ocp] = bu
            if (blocks[self.out_col // ocp] == bu).all() and (blocks >= 0).all():
                self.blocks = blocks
        self.gout = gi[:, 1]
        self.cuts = [0, *(np.flatnonzero(np.diff(self.gout)) + 1).tolist(), n]
        # counters, as execute adds them
        size = sc.size[lo:hi]
        low, high, total = gi.min(axis=0), gi.max(axis=0), size.sum(axis=0)
        self.counts = []
        for role, what in zip(range(4), ("bank_read", "bank_written", "bank_read", "bank_read")):
            if low[role] == high[role]:  # the usual: one group per role
                self.counts.append((what, mems[int(low[role])].name, int(total[role])))
                continue
            for k in np.unique(gi[:, role]).tolist():
                self.counts.append((what, mems[k].name, int(size[gi[:, role] == k, role].sum())))


def execute(engine, sc: Screen, lo: int, hi: int, init, act, counters, cache: WeightCache,
            scratch: Scratch) -> bool:
    """Run CONVs ``lo`` … ``hi`` - 1 of the run ``sc`` screened (none suspect) as one batch;
    False (nothing done) when inputs of one channel-group count sit in two bank groups."""
    mems = list(engine.banks.groups.values())
    lay = sc.layouts.get((lo, hi))
    if lay is None:
        lay = sc.layouts[lo, hi] = Layout(sc, lo, hi, mems)
    if not lay.ok:
        return False
    icp, ocp = sc.icp, sc.ocp
    kh, kw, sw = init["kernel_h"], init["kernel_w"], init["stride_w"]
    col, length = lay.col, lay.length
    parts_all = []
    for step in lay.steps:
        g, first, mem = step["g"], step["first"], mems[step["mem"]]
        wf = step["wf"]
        weights, chan = cache.matrix(mems[step["wmem"]], col["bank_id_weights"][wf],
                                     col["bank_addr_weights"][wf], kh, kw, g, icp, ocp)
        lens, offset = step["lens"], step["offset"]
        cols = scratch.get("cols", (int(lens.sum()), kh * kw * len(chan)), np.float32)
        gather_cols(mem.flat(np.int8), mem.group.bank_width, mem.group.base_id, kh, kw, sw,
                    init["jump_read"], mem.words_per_pixel(g * icp), chan,
                    col["bank_id_in"][first], col["bank_addr_in"][first], col["pad_top"][first],
                    col["pad_left"][first], lay.rows[first], lay.n_in[first], lens, offset, cols)
        if step["full"]:
            parts = gemm_parts(cols, weights, scratch.get(
                "parts", (gemm_chunks(weights.shape[0]), len(cols), weights.shape[1]),
                np.float32) if len(parts_all) == 0 else None)
        else:
            parts = None
            for j, (src, dst) in enumerate(step["blocks"]):
                got = gemm_parts(cols[src], weights[:, j * ocp:(j + 1) * ocp])
                if parts is None:
                    parts = np.empty((got.shape[0], step["rows"], ocp), np.float32)
                parts[:, dst] = got
        parts_all.append(parts)
    if len(parts_all) == 1:
        parts = parts_all[0]
    else:  # channel groups of different K: one array (zero chunks add nothing)
        parts = np.zeros((max(p.shape[0] for p in parts_all), sum(p.shape[1] for p in parts_all),
                          lay.width), np.float32)
        at = 0
        for p in parts_all:
            parts[:p.shape[0], at:at + p.shape[1], :p.shape[2]] = p
            at += p.shape[1]
    distinct = np.empty((lay.distinct_bias, ocp), np.uint8)
    for k, at, ids, addrs in lay.bias_reads:
        distinct[at] = _read_many(mems[k], ids, addrs, ocp)
    bias = distinct.view(np.int8)
    finished = None
    if lay.blocks is not None:
        finished = scratch.get("finished", parts.shape[1:], np.int8)
        _conv_finish(parts, bias[lay.blocks].reshape(-1), init["shift_bias"], init["shift_cut"],
                     *act, finished)
    row, out_col, bu, cuts = lay.row, lay.out_col, lay.bu, lay.cuts
    for a, b in zip(cuts[:-1], cuts[1:]):  # in order, one call per stretch of one group
        out = mems[int(lay.gout[a])]
        where = (out.flat(np.int8), out.group.bank_width, out.group.base_id,
                 col["bank_id_out"][a:b], col["bank_addr_out"][a:b], init["jump_write"],
                 out.words_per_pixel(ocp))
        if finished is not None:
            scatter_rows(finished, row[a:b], out_col[a:b], length[a:b], ocp, *where)
        else:
            finish_scatter(parts, row[a:b], out_col[a:b], length[a:b], bias[bu[a:b]],
                           init["shift_bias"], init["shift_cut"], *act, *where)
    for what, name, n in lay.counts:
        table = getattr(counters, what)
        table[name] = table.get(name, 0) + n
    return True
