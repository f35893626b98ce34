"""ELEW runs in batches: what :meth:`.elew.ElewEngine.execute_batch` does with many ELEWs after
one ELEWINIT (docs/simulator.md, "How the machine runs a stream fast").

:class:`ElewScreen` works out, from the fields alone (so a plan keeps it for every image of a
batch): which ELEWs the per-instruction engine might reject (a superset of its faults: a bank
outside the eltwise engine's groups, a run that overlaps itself or leaves the banks; and, to
keep a batch simple, a zero length, a channel-group count or a bank group other than the run's
most common), the bank bytes every other one reads and writes, and whether one of them reads
words an earlier one of the run writes or two write one word (then the run goes instruction by
instruction). A batch is two gathers, one :func:`.engines.eltwise_tile` over all its pixels
and one scatter (Numba loops over the pixels' byte offsets), with the bytes and counters
:meth:`~.elew.ElewEngine.execute` gives one by one; a suspect ELEW runs through
:meth:`~.elew.ElewEngine.execute` between batches.
"""

from __future__ import annotations

import numba
import numpy as np

from .pool import add_bytes, choice

ROLES = ("in_0", "in_1", "out")


def _mode(values: np.ndarray) -> int:
    """The most common of ``values`` (integers >= 0)."""
    return int(np.argmax(np.bincount(values)))


class ElewScreen:
    """The screen of a run of ELEWs under ELEWINIT ``init`` (see the module docstring):
    ``suspect`` per ELEW, ``hazard`` for the run, per role (:data:`ROLES`) the group index
    ``group`` and the flat byte offset of each pixel ``at`` (pixels of the run's ELEWs in
    order, ELEW k's from ``first[k]``) and ``lane`` (the bytes a pixel's words take);
    ``channels``."""

    def __init__(self, engine, run, init):
        banks = engine.banks
        mems = list(banks.groups.values())
        cp = banks.target.eltwise.channel_parallel
        access = {a.id_field: a for a in run.spec.banks}
        n = len(run)
        length, cg = run["length"], run["channel_group"]
        common = int(_mode(cg))
        self.suspect = (length == 0) | (cg != common)
        self.channels = common * cp
        self.group, self.at, self.lane = {}, {}, {}
        self.first = np.zeros(n + 1, np.int64)
        np.cumsum(length, out=self.first[1:])
        pixel_of = np.repeat(np.arange(n), length)
        p = np.arange(int(self.first[-1])) - self.first[pixel_of]
        keys = {}
        for role in ROLES:
            ids, addr = run[f"bank_id_{role}"], run[f"bank_addr_{role}"]
            jump = init[f"jump_read_{role[-1]}" if role != "out" else "jump_write"]
            gi = banks.group_index(ids, "eltwise", access[f"bank_id_{role}"].engine_bank)
            if (gi < 0).all():
                self.suspect[:] = True
                self.hazard = False
                return
            g = int(_mode(gi[gi >= 0]))
            self.suspect |= gi != g
            geo = mems[g].group
            words = mems[g].words_per_pixel(self.channels)
            last = (ids - geo.base_id + np.maximum(length, 1) - 1) // geo.bank_num
            self.suspect |= ((last > 0) & (jump < words)) | \
                (addr + last * jump + words - 1 >= geo.bank_depth)
            q = ids[pixel_of] - geo.base_id + p
            word = addr[pixel_of] + q // geo.bank_num * jump
            bank = q % geo.bank_num
            self.group[role] = g
            self.lane[role] = words * geo.bank_width
            self.at[role] = (bank * geo.bank_depth + word) * geo.bank_width
            keys[role] = ((bank * geo.bank_depth + word)[:, None] + np.arange(words), words)
        self.hazard = self._hazard(keys, pixel_of, n, mems)

    def _hazard(self, keys, pixel_of, n, mems) -> bool:
        """Whether a (non-suspect) ELEW reads a word an earlier one writes, or two write one."""
        ok = ~self.suspect[pixel_of]
        out, words = keys["out"]
        out = out[ok]
        writer = np.broadcast_to(pixel_of[ok][:, None], out.shape)
        if len(np.unique(out)) < out.size:
            return True
        g = mems[self.group["out"]].group
        first = np.full(g.bank_num * g.bank_depth, n, np.int64)
        first[out.reshape(-1)] = writer.reshape(-1)
        for role in ROLES[:2]:
            if self.group[role] != self.group["out"]:
                continue
            read = keys[role][0][ok]
            if (first[read] < pixel_of[ok][:, None]).any():
                return True
        return False


@numba.njit(cache=True, nogil=True)
def gather_pixels(flat, at, out):
    """``out[p] = flat[at[p]:at[p] + channels]`` for every pixel p (uint8)."""
    c = out.shape[1]
    for p in range(len(at)):
        s = at[p]
        for k in range(c):
            out[p, k] = flat[s + k]


@numba.njit(cache=True, nogil=True)
def scatter_pixels(flat, at, width, pixels):
    """``flat[at[p]:at[p] + width] = pixels[p]`` padded with zeros to ``width`` bytes (a
    pixel's words), for every pixel p in order."""
    c = pixels.shape[1]
    for p in range(len(at)):
        s = at[p]
        for k in range(c):
            flat[s + k] = pixels[p, k]
        for k in range(c, width):
            flat[s + k] = 0


def execute(engine, sc: ElewScreen, lo: int, hi: int, init, counters) -> None:
    """Run ELEWs ``lo`` … ``hi`` - 1 of the run ``sc`` screened (none suspect) as one batch."""
    from .elew import ACTIVATIONS, KINDS
    from .engines import eltwise_tile, nonlinear

    mems = list(engine.banks.groups.values())
    a, b = sc.first[lo], sc.first[hi]
    c = sc.channels
    tiles = []
    for role in ROLES[:2]:
        mem = mems[sc.group[role]]
        tile = np.empty((b - a, c), np.uint8)
        gather_pixels(mem.data.reshape(-1), sc.at[role][a:b], tile)
        tiles.append(tile.view(np.int8))
        add_bytes(counters.bank_read, mem.name, int(b - a) * sc.lane[role])
    out = eltwise_tile(tiles[0], tiles[1], KINDS[choice(init, "elew_type")],
                       (init["shift_read_0"], init["shift_read_1"]), init["shift_write"],
                       nonlinear(ACTIVATIONS[choice(init, "act_type")]))
    mem = mems[sc.group["out"]]
    scatter_pixels(mem.data.reshape(-1), sc.at["out"][a:b], sc.lane["out"], out.view(np.uint8))
    add_bytes(counters.bank_written, mem.name, int(b - a) * sc.lane["out"])
