"""The cycle model's costs: how long each instruction occupies its engine and how long after
that its result is usable, from the target description and the instruction's fields
(docs/cycles.md argues every constant of :class:`CostModel`).

Costs are computed per mnemonic on whole arrays (one numpy expression per kind), so a stream
of 150k instructions is costed in milliseconds; :mod:`.cycles` schedules them.
"""

from __future__ import annotations

import math

import attrs
import numpy as np

from xir.diagnostics import XirError
from xir.dialects.dpuisa import isa

#: The compute instructions, the init instruction whose window they use, and the target
#: attribute of their engine.
INIT_OF = {"CONV": "CONVINIT", "ALU": "ALUINIT", "POOL": "POOLINIT", "DPTWISE": "DWINIT"}
DATA_MOVES = ("LOAD", "SAVE")


@attrs.frozen
class CostModel:
    """The model's constants (docs/cycles.md, "Assumptions", gives the reasoning for each).

    ``compute_latency``: cycles from a compute instruction's last MAC-array (or ALU) step to its
    result in the banks (the pipeline depth; overlapped with the next instruction of the same
    engine, paid by whoever waits on a token). ``ddr_latency``: cycles from a LOAD's or SAVE's
    last beat to its data being usable (read round trip, write response); likewise overlapped.
    ``move_issue``: cycles a LOAD or SAVE occupies its engine and the DDR port besides its
    bytes (address generation, one per instruction word). ``pad_pixels_per_cycle``: zero pixels
    a LOAD writes into the banks per cycle. ``elew_reads``: bank reads per ELEW step (its two
    inputs share one bank group). ``fetch_words_per_cycle``: instruction words the front end
    fetches per cycle (None: unlimited). The peak of the memory behind the DPU's data ports,
    reads and writes together, is the target's ``ddr_peak_gbytes_per_s`` (None: no cap beyond
    the ports); ``ddr_efficiency`` is the share of it sustained on the DPU's mixed traffic
    (:meth:`ddr_rates`)."""

    compute_latency: int = 12
    ddr_latency: int = 100
    move_issue: int = 5
    pad_pixels_per_cycle: int = 1
    elew_reads: int = 2
    fetch_words_per_cycle: float | None = 1.0
    ddr_efficiency: float = 0.75

    def ddr_cap(self, target, clock_mhz: float) -> float:
        """Bytes per DPU cycle the memory sustains, reads and writes together, at a DPU clock
        of ``clock_mhz`` (the memory has its own clock: a faster DPU gets fewer bytes a
        cycle); infinite when ``target`` states no memory peak."""
        peak = getattr(target, "ddr_peak_gbytes_per_s", None)
        if peak is None:
            return math.inf
        return peak * self.ddr_efficiency * 1e3 / clock_mhz

    def ddr_rates(self, target, clock_mhz: float) -> tuple[float, float]:
        """(alone, beside): bytes per cycle a LOAD (SAVE) moves while no SAVE (LOAD) streams,
        and while one does. Reads and writes have their own AXI channels, each
        ``target.ddr_bytes_per_cycle`` wide; the memory's :meth:`ddr_cap` bounds their sum."""
        port = float(target.ddr_bytes_per_cycle)
        cap = self.ddr_cap(target, clock_mhz)
        alone = min(port, cap)
        return alone, max(min(port, cap - alone), 0.0)


def _ceil_div(a, b):
    return -(-a // b)


def _column(fields: list, name: str) -> np.ndarray:
    return np.fromiter((f.get(name, 0) for f in fields), dtype=np.int64, count=len(fields))


def _engine(target, mnemonic: str):
    name = isa.BY_MNEMONIC[mnemonic].engine
    engine = getattr(target, name, None)
    if engine is None:
        raise XirError(f"{mnemonic} needs the {name} engine, which {target.name} does not have")
    return engine


def instruction_costs(mnemonics: list, fields: list, target, model: CostModel,
                      clock_mhz: float | None = None):
    """(occupancy, latency, ddr_bytes, transfer) arrays, one entry per instruction: the
    cycles it keeps its engine busy, the cycles after that until its result is usable, the
    DDR bytes it moves (LOAD: read, SAVE: written) and, of its occupancy, the cycles its
    bytes take at the ``alone`` rate of :meth:`CostModel.ddr_rates` (at ``clock_mhz``,
    default the target's; the scheduler stretches them with :func:`shared_transfer` while
    the other direction streams). Compute instructions take their window from the last init
    of their kind before them (XirError naming the instruction when there is none)."""
    n = len(mnemonics)
    occupancy = np.zeros(n, dtype=np.int64)
    latency = np.zeros(n, dtype=np.int64)
    ddr_bytes = np.zeros(n, dtype=np.int64)
    transfer = np.zeros(n, dtype=np.int64)
    alone, _ = model.ddr_rates(target, clock_mhz or target.clock_mhz)
    names = np.asarray(mnemonics, dtype=object)
    where = {m: np.flatnonzero(names == m) for m in set(mnemonics)}
    for mnemonic, idx in where.items():
        spec = isa.BY_MNEMONIC.get(mnemonic)
        if spec is None:
            raise XirError(f"instruction {int(idx[0])}: unknown mnemonic {mnemonic!r}")
        rows = [fields[i] for i in idx]
        if mnemonic in DATA_MOVES:
            moved = _column(rows, "length") * _column(rows, "channel")
            ddr_bytes[idx] = moved
            transfer[idx] = np.ceil(moved / alone).astype(np.int64)
            pads = _column(rows, "pad_start") + _column(rows, "pad_end") if mnemonic == "LOAD" \
                else 0
            occupancy[idx] = model.move_issue + transfer[idx] + \
                _ceil_div(pads, model.pad_pixels_per_cycle)
            latency[idx] = model.ddr_latency
        elif mnemonic in INIT_OF:
            occupancy[idx] = _window_steps(mnemonic, idx, rows, where, fields, target)
            latency[idx] = model.compute_latency
        elif mnemonic == "ELEW":
            pp = _engine(target, mnemonic).pixel_parallel
            occupancy[idx] = model.elew_reads * _ceil_div(_column(rows, "length"), pp) * \
                np.maximum(_column(rows, "channel_group"), 1)
            latency[idx] = model.compute_latency
        else:  # the inits and END: one cycle per instruction word to decode and latch
            occupancy[idx] = spec.words if spec.queue is not None else 0
    return np.maximum(occupancy, np.where(names == "END", 0, 1)), latency, ddr_bytes, transfer


def shared_transfer(nbytes: int, window: int, alone: float, beside: float) -> int:
    """Cycles to move ``nbytes`` when the other direction keeps streaming for the first
    ``window`` cycles of the transfer: ``beside`` bytes a cycle meanwhile, ``alone`` after."""
    if window <= 0 or not nbytes:
        return math.ceil(nbytes / alone)
    if beside > 0 and nbytes <= beside * window:
        return math.ceil(nbytes / beside)
    return window + math.ceil((nbytes - beside * window) / alone)


def _window_steps(mnemonic, idx, rows, where, fields, target) -> np.ndarray:
    """Engine steps of compute instructions ``idx``: kernel_h · kernel_w (of the last init
    before each) · channel groups · pixel groups of the engine's PP."""
    engine = _engine(target, mnemonic)
    pp = engine.pixel_parallel
    inits = where.get(INIT_OF[mnemonic], np.zeros(0, dtype=np.int64))
    last = np.searchsorted(inits, idx) - 1
    if len(idx) and last[0] < 0:
        raise XirError(f"instruction {int(idx[0])} ({mnemonic}): no {INIT_OF[mnemonic]} before "
                       f"it sets its kernel")
    init_rows = [fields[i] for i in inits]
    kernel = (_column(init_rows, "kernel_h") * _column(init_rows, "kernel_w"))[last]
    groups = np.maximum(_column(rows, "channel_group"), 1)
    return np.maximum(kernel, 1) * groups * _ceil_div(_column(rows, "length"), pp)
