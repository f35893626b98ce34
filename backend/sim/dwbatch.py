"""Depthwise ALU runs in batches: what :meth:`.alu.AluEngine.execute_batch` does with many
ALUs (exec_type dwconv) after one ALUINIT (docs/simulator.md, "How the machine runs a stream
fast").

A run's first execution goes instruction by instruction (:meth:`~.compute.ConvEngine.execute`:
its faults exactly, and every instruction's addresses, which depend on the fields alone, kept
on it). After it ran clean, a :class:`DwLayout` of the run is made from those addresses
(:meth:`~.compute.ConvEngine.locate`) and kept on the run, which a plan keeps for every image:
instructions of one shape (window, pads, length, channels, bank groups) reading the same
weights and bias form a group, computed by one :func:`.engines.depthwise_conv_tile` with the
groups' tiles side by side along the channels (a depthwise convolution never mixes channels),
their inputs gathered and outputs scattered by Numba loops over byte offsets. A run in which an
instruction writes a bank word a later one reads, or two write one word, or an output meets
the weights or bias, stays instruction by instruction.
"""

from __future__ import annotations

import numpy as np

from .elewbatch import gather_pixels, scatter_pixels
from .engines import depthwise_conv_tile


def _offsets(group, bank: np.ndarray, word: np.ndarray) -> np.ndarray:
    """The flat byte offset of each pixel's first word in ``group``'s data."""
    g = group.group
    return (bank[:, 0] * g.bank_depth + word[:, 0]) * g.bank_width


def _words(group, bank: np.ndarray, word: np.ndarray) -> np.ndarray:
    """Every (bank, word) as one number, for the hazard check."""
    return (np.asarray(bank) * group.group.bank_depth + word).reshape(-1)


class DwLayout:
    """The groups of a run of depthwise ALUs that ran clean once (see the module docstring):
    ``hazard``, and per group its instructions' input and output pixel offsets, the shared
    weights and bias addresses, and the counter bytes of the whole run."""

    def __init__(self, engine, run):
        tiles = [engine.locate(run.instr(k)) for k in range(len(run))]
        tiles = [t for t in tiles if t is not None]  # a CONV of no pixels does nothing
        self.hazard = self._hazard(tiles)
        groups: dict = {}
        for t in tiles:
            key = (t.rows, t.n_in, t.length, t.channels, t.pads, t.vin.name, t.vout.name,
                   t.wgrp.name, t.bgrp.name, t.weights[0].tobytes(), t.weights[1].tobytes(),
                   t.bias[0].tobytes(), t.bias[1].tobytes())
            groups.setdefault(key, []).append(t)
        self.groups = []
        for members in groups.values():
            t = members[0]
            self.groups.append({
                "tile": t, "count": len(members),
                "inputs": np.array([_offsets(t.vin, *r) for m in members for r in m.inputs],
                                   np.int64).reshape(-1),  # none when the pads take every row
                "outputs": np.concatenate([_offsets(t.vout, *m.output) for m in members])})
        self.counts: dict = {}
        for t in tiles:
            for what, name, n in t.counts:
                self.counts[what, name] = self.counts.get((what, name), 0) + n

    @staticmethod
    def _hazard(tiles) -> bool:
        written: dict = {}  # group name -> word numbers written so far
        for t in tiles:
            reads = [(t.vin, b, w) for b, w in t.inputs] + [(t.wgrp, *t.weights),
                                                           (t.bgrp, *t.bias)]
            for group, bank, word in reads:
                seen = written.get(group.name)
                if seen is not None and np.isin(_words(group, bank, word), seen).any():
                    return True
            out = _words(t.vout, *t.output)
            seen = written.get(t.vout.name)
            if seen is not None and np.isin(out, seen).any():
                return True
            written[t.vout.name] = out if seen is None else np.concatenate([seen, out])
        return False


def execute(engine, layout: DwLayout, init, counters) -> None:
    """Run the run of ``layout`` as its groups, one depthwise tile each."""
    cp = engine.parallel()[0]
    kh, kw, sw = init["kernel_h"], init["kernel_w"], init["stride_w"]
    banks = engine.banks  # this machine's: a layout's tiles name the first machine's groups
    for group in layout.groups:
        t, k = group["tile"], group["count"]
        vin, vout, wgrp, bgrp = (banks[m.name] for m in (t.vin, t.vout, t.wgrp, t.bgrp))
        c = t.channels
        x = np.empty((len(group["inputs"]), c), np.uint8)
        gather_pixels(vin.data.reshape(-1), group["inputs"], x)
        # (instructions, rows, pixels, C) -> (rows, pixels, instructions · C)
        x = x.reshape(k, t.rows, t.n_in, c).transpose(1, 2, 0, 3).reshape(t.rows, t.n_in, k * c)
        w = wgrp.read(*t.weights, cp).view(np.int8)
        w = w.reshape(c // cp, kh, kw, cp).transpose(1, 2, 0, 3).reshape(kh, kw, c)
        bias = bgrp.read(*t.bias, cp).view(np.int8).reshape(c)
        out = depthwise_conv_tile(x.view(np.int8), np.ascontiguousarray(np.tile(w, (1, 1, k))),
                                  np.tile(bias, k), stride=(1, sw), pad=t.pads,
                                  shift_bias=init["shift_bias"], shift_cut=init["shift_cut"],
                                  act=t.act)
        out = out.reshape(t.length, k, c).transpose(1, 0, 2).reshape(k * t.length, c)
        width = vout.words_per_pixel(c) * vout.group.bank_width
        scatter_pixels(vout.data.reshape(-1), group["outputs"], width,
                       np.ascontiguousarray(out).view(np.uint8))
    for (what, name), n in layout.counts.items():
        table = getattr(counters, what)
        table[name] = table.get(name, 0) + n
