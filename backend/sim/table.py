"""A program as the fast machine reads it: decoded once into numpy columns (one int64 array per
mnemonic, a column per field of :mod:`xir.dialects.dpuisa.isa`'s table), with an
:class:`~.memory.Instr` built only where one is needed (a per-instruction engine, a fault
message). :class:`Run` is a stretch of consecutive instructions of one mnemonic in execution
order, as a batch engine receives it (docs/simulator.md, "How the machine runs a stream
fast")."""

from __future__ import annotations

from typing import Sequence

import numba
import numpy as np

from xir.diagnostics import XirError
from xir.dialects.dpuisa import isa
from xir.dialects.dpuisa.encoding import decode_columns

from .memory import Instr

#: queue number of each mnemonic (END: -1), in isa.QUEUES order
QUEUE_OF = {spec.mnemonic: (-1 if spec.queue is None else isa.QUEUES.index(spec.queue))
            for spec in isa.INSTRUCTIONS}


def _is_stream(program) -> bool:
    if isinstance(program, (bytes, bytearray, memoryview, np.ndarray)):
        return True
    return isinstance(program, Sequence) and all(isinstance(w, (int, np.integer))
                                                 for w in program)


@numba.njit(cache=True, nogil=True)
def _scan(step):
    """The first word of each instruction (``step[i]``: the words an instruction starting at
    word i has, 0 for an unknown opcode; the scan stops after one) and where it stopped."""
    starts = np.empty(len(step), np.int64)
    n, i = 0, 0
    while i < len(step):
        starts[n] = i
        n += 1
        if step[i] == 0:
            break
        i += step[i]
    return starts[:n], i


def _scan_words(step):
    return _scan(np.ascontiguousarray(step, np.int64))


class Table:
    """Every instruction of a program: ``starts`` (word index), ``kind`` (index into ``specs``),
    ``row`` (its row in ``columns[mnemonic]``), and per mnemonic the field columns."""

    def __init__(self, starts, specs, kind, columns):
        self.starts = np.asarray(starts, np.int64)
        self.specs = list(specs)
        self.kind = np.asarray(kind, np.int64)
        self.columns = columns
        self.row = np.zeros(len(self.kind), np.int64)
        for k in range(len(self.specs)):
            at = np.flatnonzero(self.kind == k)
            self.row[at] = np.arange(len(at))
        self._names = [{f.name: j for j, f in enumerate(s.fields)} for s in self.specs]
        self._instrs: dict[int, Instr] = {}

    @classmethod
    def of(cls, program) -> "Table":
        """The table of a ``dpuisa.program``, its instruction ops, or an encoded stream (bytes
        or 32-bit words, decoded bit for bit and not verified)."""
        if _is_stream(program):
            data = program.tolist() if isinstance(program, np.ndarray) else (
                bytes(program) if isinstance(program, memoryview) else program)
            starts, opcodes, columns = decode_columns(data, _scan_words)
            specs = [s for s in isa.INSTRUCTIONS if s.mnemonic in columns]
            code = np.full(16, -1, np.int64)
            for k, s in enumerate(specs):
                code[s.opcode] = k
            return cls(starts, specs, code[opcodes], columns)
        ops = getattr(program, "instructions", program)
        specs, kind, starts, rows, word = [], [], [], {}, 0
        for n, op in enumerate(ops):
            spec = getattr(op, "spec", None)
            if spec is None:
                raise XirError(f"instruction {n}: '{op.name}' is not a DPU instruction")
            if spec not in specs:
                specs.append(spec)
            kind.append(specs.index(spec))
            starts.append(word)
            values = op.field_values()
            rows.setdefault(spec.mnemonic, []).append([values[f.name] for f in spec.fields])
            word += spec.words
        columns = {m: np.asarray(r, np.int64).reshape(len(r), -1) for m, r in rows.items()}
        return cls(starts, specs, kind, columns)

    def __len__(self) -> int:
        return len(self.kind)

    def mnemonics(self) -> list[str]:
        """The mnemonic of each instruction."""
        names = [s.mnemonic for s in self.specs]
        return [names[k] for k in self.kind.tolist()]

    def header(self, name: str) -> np.ndarray:
        """A field every instruction has (``dpdon``, ``dpdby``), for all, in order."""
        out = np.zeros(len(self.kind), np.int64)
        for k, s in enumerate(self.specs):
            at = self.kind == k
            out[at] = self.columns[s.mnemonic][self.row[at], self._names[k][name]]
        return out

    def queues(self) -> np.ndarray:
        """Each instruction's queue number (isa.QUEUES order; END -1)."""
        return np.asarray([QUEUE_OF[s.mnemonic] for s in self.specs] or [0], np.int64)[self.kind]

    def instr(self, n: int) -> Instr:
        """Instruction ``n`` as an :class:`Instr` (built once)."""
        ins = self._instrs.get(n)
        if ins is None:
            k = int(self.kind[n])
            spec = self.specs[k]
            row = self.columns[spec.mnemonic][self.row[n]].tolist()
            ins = Instr(n, int(self.starts[n]), spec, dict(zip(self._names[k], row)))
            self._instrs[n] = ins
        return ins

    def field(self, mnemonic: str, name: str, indices: np.ndarray) -> np.ndarray:
        """Field ``name`` of the ``mnemonic`` instructions ``indices``."""
        k = next(k for k, s in enumerate(self.specs) if s.mnemonic == mnemonic)
        return self.columns[mnemonic][self.row[indices], self._names[k][name]]


class Run:
    """Consecutive instructions of one mnemonic in execution order: ``indices`` into the
    program, their fields by name (``run['length']``, an int64 array), and each one as an
    :class:`Instr` (:meth:`instr`, for per-instruction checks and fault messages)."""

    def __init__(self, table: Table, mnemonic: str, indices: np.ndarray):
        self.table, self.mnemonic, self.indices = table, mnemonic, indices
        self.spec = isa.BY_MNEMONIC[mnemonic]
        self.offset = 0  # where it starts in the run it is a part of
        self._cache: dict[str, np.ndarray] = {}
        # what an engine works out from the run's fields alone (kept with a machine.Plan)
        self.memo: dict = {}

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, name: str) -> np.ndarray:
        col = self._cache.get(name)
        if col is None:
            col = self._cache[name] = self.table.field(self.mnemonic, name, self.indices)
        return col

    def fields(self, names) -> np.ndarray:
        """Fields ``names`` of every instruction of the run, as an (instructions × names)
        int64 array."""
        spec_k = next(k for k, s in enumerate(self.table.specs) if s.mnemonic == self.mnemonic)
        cols = [self.table._names[spec_k][n] for n in names]
        return np.ascontiguousarray(
            self.table.columns[self.mnemonic][self.table.row[self.indices]][:, cols])

    def instr(self, k: int) -> Instr:
        """The ``k``-th instruction of the run."""
        return self.table.instr(int(self.indices[k]))

    def part(self, lo: int, hi: int) -> "Run":
        """Instructions ``lo`` … ``hi`` - 1 of the run."""
        part = Run(self.table, self.mnemonic, self.indices[lo:hi])
        part._cache = {k: v[lo:hi] for k, v in self._cache.items()}
        part.offset = self.offset + lo
        return part


def run_batched(run: Run, suspect: np.ndarray, batch, single) -> None:
    """Run ``run`` by ``batch(part)`` over stretches of instructions not ``suspect`` and
    ``single(instr)`` for each suspect one, in order: a suspect instruction (one that may
    fault) goes through the per-instruction engine, which raises the fault or runs it."""
    bad = np.flatnonzero(suspect).tolist()
    lo = 0
    for b in bad + [len(run)]:
        if b > lo:
            batch(run.part(lo, b))
        if b < len(run):
            single(run.instr(b))
        lo = b + 1
