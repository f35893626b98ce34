"""The cycle model: when each instruction of a DPU stream starts and ends on a target, and the
report ``xir profile`` prints (docs/cycles.md).

Four queues (LOAD, SAVE, CONV, MISC) run their instructions in program order. An instruction
starts at the latest of: its queue's previous instruction leaving the engine, the arrival of
each token its ``dpdon`` flags (one from the FIFO of each flagged queue towards its own, in
FIFO order; a token carries the end time of the instruction that signalled it), and the front
end having fetched it. It occupies its engine for its cost (:mod:`.costs`) and ends
``latency`` cycles later; its ``dpdby`` flags then put one token, stamped with that end, into
the FIFO towards each flagged queue. The token rules are the simulator's (:mod:`.machine`): a
program whose heads all wait on empty FIFOs is a deadlock, reported as one line naming the
stuck heads.

LOAD (DDR reads) and SAVE (DDR writes) stream at the same time, each at its AXI channels'
rate, but their sum is capped by the memory (``CostModel.ddr_rates``): a transfer that starts
while the other direction streams gets what that one leaves until it finishes.

Among the heads that can start, the one that can start earliest is scheduled first (ties: the
earliest in the program), so start times are committed in time order and the memory's
bandwidth is granted first come, first served.

    report = estimate(items, target, layers, clock_mhz=281)
    print(report.table()); report.as_json(); timeline_svg(report, "t.svg")
"""

from __future__ import annotations

import io
from collections import deque
from typing import Iterable

import attrs
import numpy as np

from xir.diagnostics import XirError
from xir.dialects.dpuisa import isa

from .costs import CostModel, instruction_costs, shared_transfer

QUEUES = isa.QUEUES
DDR = "DDR"  # the data ports: cycles in which a LOAD or a SAVE occupies its engine
_MOVES = (QUEUES.index("LOAD"), QUEUES.index("SAVE"))
_QUEUE_OF = {m: QUEUES.index(i.queue) if i.queue else -1 for m, i in isa.BY_MNEMONIC.items()}
_WORDS = {m: i.words for m, i in isa.BY_MNEMONIC.items()}
_SOURCES = [[s for s in range(len(QUEUES)) if mask >> s & 1] for mask in range(16)]


@attrs.frozen
class LayerCycles:
    """One layer's share of a run: instructions [first, stop), ``start`` / ``end`` cycles (its
    first instruction's start, its last's end), ``busy`` cycles per queue, ``macs`` and the
    MAC-array utilization over its span (None for a layer of no MACs: pool, eltwise, moves)."""

    name: str
    kind: str
    first: int
    stop: int
    start: int
    end: int
    busy: dict
    macs: int
    utilization: float | None

    @property
    def cycles(self) -> int:
        """Cycles from its first start to its last end."""
        return self.end - self.start


@attrs.define
class CycleReport:
    """What :func:`estimate` found. Per instruction (numpy arrays in program order):
    ``mnemonics``, ``queue`` (index into ``QUEUES``, -1 for END), ``start``, ``busy_end``
    (leaves its engine), ``end`` (result usable), ``layer`` (index into ``layers``, -1 if
    none). Totals: ``cycles``, ``busy`` cycles per queue and of the data ports (``DDR``:
    cycles in which a LOAD or a SAVE is busy), ``bytes_loaded`` / ``bytes_saved`` (DDR),
    ``macs`` (sum over ``layers``), ``ddr_cap`` (bytes a cycle the memory sustains, reads and
    writes together) and ``ddr_throttled`` (cycles LOADs and SAVEs lasted beyond their own
    channels' rate because the other direction held the memory's bandwidth)."""

    target: str
    clock_mhz: float
    peak_macs_per_cycle: int
    cycles: int
    mnemonics: list
    queue: np.ndarray
    start: np.ndarray
    busy_end: np.ndarray
    end: np.ndarray
    layer: np.ndarray
    busy: dict
    bytes_loaded: int
    bytes_saved: int
    layers: list
    macs: int | None
    ddr_cap: float = float("inf")
    ddr_throttled: int = 0

    @property
    def latency_ms(self) -> float:
        """The run's length in milliseconds at ``clock_mhz``."""
        return self.cycles / (self.clock_mhz * 1e3)

    @property
    def fps(self) -> float:
        """Runs per second, back to back (1000 / latency_ms)."""
        return 1e3 / self.latency_ms if self.cycles else float("inf")

    @property
    def mac_utilization(self) -> float | None:
        """MACs / (cycles · peak MACs per cycle); None without a layer table."""
        return _utilization(self.macs, self.cycles, self.peak_macs_per_cycle)

    def busy_share(self, unit: str) -> float:
        """Busy cycles of queue or port ``unit`` over the run's cycles."""
        return self.busy[unit] / self.cycles if self.cycles else 0.0

    def as_json(self) -> dict:
        """The report as a JSON-ready dict (totals, units, bytes, layers)."""
        counts = {q: int(np.count_nonzero(self.queue == k)) for k, q in enumerate(QUEUES)}
        units = {u: {"busy_cycles": int(c), "busy_share": round(self.busy_share(u), 4),
                     **({"instructions": counts[u]} if u in counts else {})}
                 for u, c in self.busy.items()}
        return {"target": self.target, "clock_mhz": self.clock_mhz, "cycles": int(self.cycles),
                "latency_ms": self.latency_ms, "fps": self.fps if self.cycles else None,
                "mac_utilization": self.mac_utilization, "macs": self.macs,
                "peak_macs_per_cycle": self.peak_macs_per_cycle,
                "instructions": len(self.mnemonics), "engines": units,
                "bytes": {"loaded": self.bytes_loaded, "saved": self.bytes_saved},
                "ddr": {"cap_bytes_per_cycle": self.ddr_cap if self.ddr_cap < float("inf")
                        else None, "throttled_cycles": int(self.ddr_throttled)},
                "layers": [{"name": lay.name, "kind": lay.kind, "first": lay.first,
                            "stop": lay.stop, "start": lay.start, "cycles": lay.cycles,
                            "macs": lay.macs, "utilization": lay.utilization,
                            "busy": dict(lay.busy)} for lay in self.layers]}

    def rich_table(self):
        """The per-layer table as a rich ``Table`` (a row per layer, then the total)."""
        from rich.table import Table
        us = 1.0 / self.clock_mhz
        table = Table(title=f"{self.target} at {self.clock_mhz:g} MHz: {self.cycles} cycles, "
                            f"{self.latency_ms:.3f} ms, {self.fps:.1f} fps")
        for col in ("layer", "kind", "cycles", "µs", "MMACs", "MAC util", "CONV busy",
                    "MISC busy", "DDR busy"):
            table.add_column(col, justify="left" if col in ("layer", "kind") else "right")

        def pct(x):
            return "-" if x is None else f"{100 * x:.1f} %"

        for lay in self.layers:
            span = max(lay.cycles, 1)
            table.add_row(lay.name, lay.kind, str(lay.cycles), f"{lay.cycles * us:.1f}",
                          f"{lay.macs / 1e6:.2f}", pct(lay.utilization),
                          *(pct(lay.busy[u] / span) for u in ("CONV", "MISC", DDR)))
        table.add_row("total", "", str(self.cycles), f"{self.cycles * us:.1f}",
                      "-" if self.macs is None else f"{self.macs / 1e6:.2f}",
                      pct(self.mac_utilization),
                      *(pct(self.busy_share(u)) for u in ("CONV", "MISC", DDR)), style="bold")
        return table

    def table(self, width: int = 110) -> str:
        """The per-layer table as plain text (rendered by rich, no colour)."""
        from rich.console import Console
        out = io.StringIO()
        Console(file=out, width=width, color_system=None, legacy_windows=False).print(
            self.rich_table())
        return out.getvalue()


def _utilization(macs, cycles, peak) -> float | None:
    if macs is None:
        return None
    return macs / (cycles * peak) if cycles else 0.0


# -- input -----------------------------------------------------------------------------------------


def program_items(program) -> list:
    """[mnemonic, field dict] items of a decoded ``dpuisa`` program (a ``dpuisa.program`` op,
    or its instruction ops: anything with ``.spec.mnemonic`` and ``.field_values()``)."""
    ops = getattr(program, "instructions", program)
    return [[op.spec.mnemonic, op.field_values()] for op in ops]


def _attr(record, name: str):
    return record[name] if isinstance(record, dict) else getattr(record, name)


def _columns(stream) -> tuple[list, list]:
    """(mnemonics, field dicts) of a stream of items or instruction ops."""
    stream = list(getattr(stream, "instructions", stream))
    if stream and hasattr(stream[0], "spec"):
        stream = program_items(stream)
    mnemonics = [m for m, _ in stream]
    for i, m in enumerate(mnemonics):
        if m not in isa.BY_MNEMONIC:
            raise XirError(f"instruction {i}: unknown mnemonic {m!r} (known: "
                           f"{', '.join(isa.BY_MNEMONIC)})")
    return mnemonics, [f or {} for _, f in stream]


# -- scheduling ------------------------------------------------------------------------------------


def estimate(stream, target, layers: Iterable | None = None, clock_mhz: float | None = None,
             model: CostModel = CostModel()) -> CycleReport:
    """The cycle report of instruction ``stream`` (``[mnemonic, fields]`` items in program
    order, END optional; a decoded program; or an ``Emission`` of passes/codegen/emit.py,
    whose layers are the default) on ``target``, at ``clock_mhz`` (default: the target's).
    ``layers``: records (dicts or objects) with ``name``, ``kind``, ``first``, ``stop`` (an
    instruction range of ``stream``) and ``macs``. The clock also sets the DDR bytes a cycle
    (the memory runs on its own clock). XirError for a deadlock, a flag on an instruction's own
    queue, tokens left over, or an instruction the target cannot run."""
    if hasattr(stream, "items") and hasattr(stream, "layers"):
        layers = stream.layers if layers is None else layers
        stream = stream.items
    mnemonics, fields = _columns(stream)
    n = len(mnemonics)
    queue = np.array([_QUEUE_OF[m] for m in mnemonics], dtype=np.int64)
    dpdon = [f.get("dpdon", 0) for f in fields]
    dpdby = [f.get("dpdby", 0) for f in fields]
    for i, q in enumerate(queue.tolist()):
        if q >= 0 and (dpdon[i] | dpdby[i]) >> q & 1:
            flag = "dpdon" if dpdon[i] >> q & 1 else "dpdby"
            raise XirError(f"instruction {i} ({mnemonics[i]}): {flag} flags its own queue "
                           f"{QUEUES[q]}")
    clock = float(clock_mhz or target.clock_mhz)
    occupancy, latency, ddr_bytes, transfer = instruction_costs(mnemonics, fields, target,
                                                                model, clock)
    words = np.array([_WORDS[m] for m in mnemonics], dtype=np.float64)
    rate = model.fetch_words_per_cycle
    fetched = np.ceil(np.cumsum(words) / rate).astype(np.int64) if rate else np.zeros(n, np.int64)
    word_of = np.cumsum(words) - words

    def where(i: int) -> str:
        return f"instruction {i} ({mnemonics[i]} at word {int(word_of[i])})"

    moves = _DdrShare(ddr_bytes.tolist(), transfer.tolist(), model.move_issue,
                      *model.ddr_rates(target, clock))
    start, busy_end = _schedule(queue.tolist(), dpdon, dpdby, occupancy.tolist(),
                                latency.tolist(), fetched.tolist(), where, moves)
    start, busy_end = np.asarray(start, dtype=np.int64), np.asarray(busy_end, dtype=np.int64)
    occupancy = busy_end - start
    end = busy_end + latency
    is_end = queue < 0
    cycles = int(end[~is_end].max()) if (~is_end).any() else 0
    start[is_end] = end[is_end] = busy_end[is_end] = cycles
    busy = {q: int(occupancy[queue == k].sum()) for k, q in enumerate(QUEUES)}
    busy[DDR] = _moving(queue, start, busy_end)
    loaded = int(ddr_bytes[queue == QUEUES.index("LOAD")].sum())
    saved = int(ddr_bytes.sum()) - loaded
    peak = target.peak_ops_per_cycle // 2
    layer_of, table = _layer_table(layers or (), queue, start, busy_end, end, cycles, peak)
    macs = sum(lay.macs for lay in table) if table else None
    return CycleReport(target.name, clock, peak, cycles, mnemonics, queue, start, busy_end,
                       end, layer_of, busy, loaded, saved, table, macs,
                       model.ddr_cap(target, clock), moves.throttled)


def _moving(queue, start, busy_end) -> int:
    """Cycles in which a LOAD or a SAVE (of these instructions) occupies its engine: the
    length of the union of their [start, busy_end) intervals."""
    sel = np.isin(queue, _MOVES)
    if not sel.any():
        return 0
    order = np.argsort(start[sel], kind="stable")
    s, e = start[sel][order], busy_end[sel][order]
    reach = np.concatenate(([s[0]], np.maximum.accumulate(e)[:-1]))
    return int(np.clip(e - np.maximum(s, reach), 0, None).sum())


def _layer_table(layers, queue, start, busy_end, end, cycles, peak):
    """(the layer index of every instruction, -1 for none; [LayerCycles])."""
    n = len(queue)
    is_end = queue < 0
    layer_of = np.full(n, -1, dtype=np.int64)
    table = []
    for k, rec in enumerate(layers):
        first, stop = int(_attr(rec, "first")), int(_attr(rec, "stop"))
        if not 0 <= first < stop <= n:
            raise XirError(f"layer {_attr(rec, 'name')!r}: instruction range [{first}, {stop}) "
                           f"is not inside the stream's {n} instructions")
        layer_of[first:stop] = k
        sl = slice(first, stop)
        real = ~is_end[sl]
        s0 = int(start[sl][real].min()) if real.any() else cycles
        e0 = int(end[sl][real].max()) if real.any() else cycles
        qs, occ = queue[sl], busy_end[sl] - start[sl]
        busy = {q: int(occ[qs == j].sum()) for j, q in enumerate(QUEUES)}
        busy[DDR] = _moving(qs, start[sl], busy_end[sl])
        macs = int(_attr(rec, "macs") or 0)
        table.append(LayerCycles(str(_attr(rec, "name")), str(_attr(rec, "kind")), first, stop,
                                 s0, e0, busy, macs,
                                 _utilization(macs or None, e0 - s0, peak)))
    return layer_of, table


@attrs.define
class _DdrShare:
    """The memory's bandwidth between the LOAD and the SAVE queue, granted first come, first
    served: per instruction its DDR ``nbytes`` and ``transfer`` cycles alone (``issue``
    cycles after its start); ``alone`` / ``beside`` bytes a cycle (``CostModel.ddr_rates``).
    ``data_end[q]``: when queue q's last transfer moves its last byte."""

    nbytes: list
    transfer: list
    issue: int
    alone: float
    beside: float
    data_end: dict = attrs.Factory(lambda: dict.fromkeys(_MOVES, 0))
    throttled: int = 0

    def extra(self, i: int, q: int, t: int) -> int:
        """Cycles LOAD or SAVE ``i`` of queue ``q``, starting at ``t``, lasts beyond its
        occupancy alone. The other queue's last transfer started no later and, every transfer
        of ``q`` before ``i`` having ended by ``t``, streams at the ``alone`` rate until its
        ``data_end``; ``i`` gets ``beside`` until then."""
        first = t + self.issue
        other = self.data_end[_MOVES[1] if q == _MOVES[0] else _MOVES[0]]
        cycles = shared_transfer(self.nbytes[i], other - first, self.alone, self.beside) \
            if self.nbytes[i] else 0
        self.data_end[q] = first + cycles
        extra = max(cycles - self.transfer[i], 0)
        self.throttled += extra
        return extra


def _schedule(queue, dpdon, dpdby, occupancy, latency, fetched, where, moves: _DdrShare):
    """Start and busy-end cycle of every instruction (plain lists; END gets 0, 0).
    ``where(i)`` names instruction i in errors, as the simulator does; ``moves`` stretches
    LOADs and SAVEs that share the memory's bandwidth."""
    nq = len(QUEUES)
    n = len(queue)
    order = [[i for i in range(n) if queue[i] == q] for q in range(nq)]
    queue_free = [0] * nq
    fifo = [[deque() for _ in range(nq)] for _ in range(nq)]  # fifo[src][dst]: end times
    head = [0] * nq
    start, busy_end = [0] * n, [0] * n
    remaining = n - sum(1 for q in queue if q < 0)
    while remaining:
        best_t = best_i = best_q = -1
        for q in range(nq):
            if head[q] == len(order[q]):
                continue
            i = order[q][head[q]]
            t = max(queue_free[q], fetched[i])
            for s in _SOURCES[dpdon[i]]:
                f = fifo[s][q]
                if not f:
                    break
                if f[0] > t:
                    t = f[0]
            else:
                if best_i < 0 or t < best_t or (t == best_t and i < best_i):
                    best_t, best_i, best_q = t, i, q
        if best_i < 0:
            _deadlock(order, head, dpdon, fifo, where, remaining)
        i, q, t = best_i, best_q, best_t
        for s in _SOURCES[dpdon[i]]:
            fifo[s][q].popleft()
        done = t + occupancy[i]
        if q in moves.data_end:
            done += moves.extra(i, q, t)
        start[i], busy_end[i] = t, done
        queue_free[q] = done
        head[q] += 1
        remaining -= 1
        for d in _SOURCES[dpdby[i]]:  # a token carries the signaller's end (result usable)
            fifo[q][d].append(done + latency[i])
    _leftover(fifo)
    return start, busy_end


def _deadlock(order, head, dpdon, fifo, where, remaining):
    """Raise the simulator's deadlock error (backend/sim/machine.py) for the stuck heads."""
    waits = []
    for q, name in enumerate(QUEUES):
        if head[q] == len(order[q]):
            continue
        i = order[q][head[q]]
        tokens = " and ".join(f"a token from {QUEUES[s]} (FIFO {QUEUES[s]}->{name} is empty)"
                              for s in _SOURCES[dpdon[i]] if not fifo[s][q])
        waits.append(f"{name} waits at {where(i)} for {tokens}")
    raise XirError(f"dependency deadlock: no queue can step and {remaining} instruction"
                   f"{'s' if remaining != 1 else ''} remain: " + "; ".join(waits))


def _leftover(fifo):
    """XirError if tokens are left in a FIFO after the last instruction."""
    left = [f"{QUEUES[s]}->{QUEUES[d]} ({len(f)})" for s, row in enumerate(fifo)
            for d, f in enumerate(row) if f]
    if left:
        raise XirError("tokens left in FIFO " + ", ".join(left) + " after the last "
                       "instruction: the program signals more than it awaits")
