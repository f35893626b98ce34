"""The DPU machine: the hardware units an instruction stream runs on, the dispatcher that feeds
them, and the counters a run returns (docs/simulator.md).

Units, one class each: the bank groups (:class:`~.memory.BankGroupMemory`, one per group of the
target, its ``bank_num`` × ``bank_depth`` × ``bank_width`` bytes), the DDR
(:class:`~.memory.DdrMemory`), the four instruction queues (:class:`InstructionQueue`: LOAD,
SAVE, CONV, MISC), a dependency-token FIFO per ordered pair of queues (:class:`TokenFifo`, as
VTA's), and the engines that execute instructions (:class:`~.datamove.LoadEngine`,
:class:`~.datamove.SaveEngine`, and the conv and ALU engines of :mod:`.compute`; pooling and
eltwise come next).

:class:`Machine` takes a program (a ``dpuisa.program``, its instruction ops, or the encoded
stream as bytes or words), dispatches its instructions in order into the queues by kind, and
runs them. A queue may step when its head's ``dpdon`` tokens are all there: the head takes one
token from each flagged FIFO, executes, then puts one token into the FIFO towards each queue its
``dpdby`` flags. By default the ready head earliest in the program steps (``seed=None``); with a
seed, a ready queue chosen at random does, as VTA's simulator does to prove a token program
race-free: a correctly synchronised program gives the same DDR, banks and counters in every
order. When no queue can step but instructions remain, the run stops with a deadlock error
naming each blocked head and the tokens it waits for. END runs once every queue has drained,
and requires every FIFO to be empty.

Speed (docs/simulator.md, "How the machine runs a stream fast"): the program is decoded once
into columns (:class:`~.table.Table`), its order computed from the tokens alone
(:func:`~.schedule.schedule`), and the order executed in runs of one mnemonic, by an engine's
``execute_batch`` where it has one (LOAD, SAVE, CONV, ELEW, ALU), else instruction by
instruction. :meth:`Machine.plan` does the decoding and scheduling once, as a :class:`Plan`
that :meth:`Machine.run` runs again on any machine of the target (a batch of images).
"""

from __future__ import annotations

import time
from collections import deque
from typing import Mapping, Sequence

import attrs
import numpy as np

from xir.diagnostics import XirError
from xir.dialects.dpuisa import isa
from xir.dialects.dpuisa.encoding import decode_words
from xir.dialects.dpuisa.ops import ProgramOp, program_target

from .datamove import BankMap, LoadEngine, SaveEngine
from .memory import DdrMemory, Instr
from .schedule import schedule
from .table import Run, Table

QUEUES = isa.QUEUES
REGISTERS = 8  # DDR base registers: reg_id is 3 bits
DEFAULT_REGIONS = {0: "CONST", 1: "DATA"}  # passes/codegen/ddr_layout.py's REG_IDS


def _pair(src: str, dst: str) -> str:
    return f"{src}->{dst}"


@attrs.define
class Counters:
    """What a run did, per unit (order-independent: equal for every queue order of a
    race-free program).

    ``instructions``: instructions run per queue; ``loaded`` / ``saved``: DDR bytes LOAD read /
    SAVE wrote per base register (``regions`` names the registers: CONST, DATA);
    ``bank_written`` / ``bank_read``: bank bytes written (pads and word tails included) / read
    per bank group; ``pad_bytes``: zero bytes LOAD wrote as pads; ``tokens``: tokens passed per
    FIFO, ``"LOAD->CONV"``."""

    instructions: dict = attrs.field(factory=lambda: {q: 0 for q in QUEUES})
    loaded: dict = attrs.field(factory=dict)
    saved: dict = attrs.field(factory=dict)
    bank_written: dict = attrs.field(factory=dict)
    bank_read: dict = attrs.field(factory=dict)
    pad_bytes: int = 0
    tokens: dict = attrs.field(factory=lambda: {_pair(s, d): 0 for s in QUEUES for d in QUEUES
                                                if s != d})
    regions: dict = attrs.field(factory=lambda: dict(DEFAULT_REGIONS))

    def count_load(self, reg_id: int, ddr_bytes: int, group: str, bank_bytes: int,
                   pad_bytes: int = 0) -> None:
        """Add one LOAD's bytes."""
        self.loaded[reg_id] = self.loaded.get(reg_id, 0) + ddr_bytes
        self.bank_written[group] = self.bank_written.get(group, 0) + bank_bytes
        self.pad_bytes += pad_bytes

    def count_save(self, reg_id: int, ddr_bytes: int, group: str, bank_bytes: int) -> None:
        """Add one SAVE's bytes."""
        self.saved[reg_id] = self.saved.get(reg_id, 0) + ddr_bytes
        self.bank_read[group] = self.bank_read.get(group, 0) + bank_bytes

    def _region(self, table: dict, region) -> int:
        if region is None:
            return sum(table.values())
        if isinstance(region, str):
            regs = [r for r, name in self.regions.items() if name == region]
            if not regs:
                raise XirError(f"no base register is named {region!r} "
                               f"(named: {', '.join(sorted(self.regions.values()))})")
            return sum(table.get(r, 0) for r in regs)
        return table.get(region, 0)

    def bytes_loaded(self, region: str | int | None = None) -> int:
        """DDR bytes loaded from ``region`` (a name such as ``"CONST"``, a reg_id, or None:
        all)."""
        return self._region(self.loaded, region)

    def bytes_saved(self, region: str | int | None = None) -> int:
        """DDR bytes saved to ``region`` (as :meth:`bytes_loaded`)."""
        return self._region(self.saved, region)

    @property
    def tokens_passed(self) -> int:
        """Tokens passed through all FIFOs."""
        return sum(self.tokens.values())

    def as_dict(self) -> dict:
        """The counters as a JSON-ready dict (register keys as region names where known)."""
        def named(table):
            return {self.regions.get(r, f"reg{r}"): v for r, v in sorted(table.items())}
        return {"instructions": dict(self.instructions), "loaded": named(self.loaded),
                "saved": named(self.saved), "bank_written": dict(sorted(self.bank_written.items())),
                "bank_read": dict(sorted(self.bank_read.items())), "pad_bytes": self.pad_bytes,
                "tokens": {k: v for k, v in self.tokens.items() if v}}

    def summary(self) -> str:
        """One line: instructions per queue, bytes loaded and saved, tokens."""
        d = self.as_dict()
        ins = ", ".join(f"{q} {n}" for q, n in d["instructions"].items())
        io = lambda t: ", ".join(f"{k} {v}" for k, v in t.items()) or "0"  # noqa: E731
        return (f"instructions: {ins}; loaded: {io(d['loaded'])} bytes; saved: "
                f"{io(d['saved'])} bytes; tokens: {self.tokens_passed}")


@attrs.define(eq=False)
class Plan:
    """A program decoded, checked and scheduled for machines of one target
    (:meth:`Machine.plan`): its :class:`~.table.Table`, each instruction's ``queue``, the
    ``order`` they run in (short of the queued ones: a deadlock), the FIFO counts left and
    the tokens ``passed`` per FIFO, and the runs of one mnemonic the machine hands its engines
    (made once: an engine may keep what it works out about a run on it, as long as that
    depends on the instructions' fields alone)."""

    target: str
    seed: int | None
    table: Table
    queue: np.ndarray
    order: np.ndarray
    fifo: np.ndarray
    passed: np.ndarray
    _runs: list | None = None

    def runs(self) -> list:
        """``(spec, Run)`` per stretch of the order of one mnemonic, in order."""
        if self._runs is None:
            kind = self.table.kind[self.order]
            cuts = np.flatnonzero(np.diff(kind)) + 1
            bounds = [0, *cuts.tolist(), len(self.order)] if len(self.order) else [0]
            self._runs = []
            for lo, hi in zip(bounds[:-1], bounds[1:]):
                spec = self.table.specs[int(kind[lo])]
                self._runs.append((spec, Run(self.table, spec.mnemonic, self.order[lo:hi])))
        return self._runs


class TokenFifo:
    """The dependency-token FIFO from queue ``src`` to queue ``dst`` (VTA's): tokens carry no
    data, so it is a count. ``passed`` counts every token ever pushed."""

    def __init__(self, src: str, dst: str):
        self.src, self.dst = src, dst
        self.count = 0
        self.passed = 0

    @property
    def name(self) -> str:
        """``LOAD->CONV``."""
        return _pair(self.src, self.dst)

    def push(self) -> None:
        """One token in (the producer's ``dpdby``)."""
        self.count += 1
        self.passed += 1

    def pop(self) -> None:
        """One token out (the consumer's ``dpdon``); only when there is one."""
        assert self.count > 0, self.name
        self.count -= 1


class InstructionQueue:
    """One of the four queues: its instructions in program order; only the head may run."""

    def __init__(self, name: str):
        self.name = name
        self.bit = QUEUES.index(name)
        self.pending: deque[Instr] = deque()

    @property
    def head(self) -> Instr | None:
        """The next instruction, or None when the queue has drained."""
        return self.pending[0] if self.pending else None

    def waits_on(self, fifos: dict) -> list[str]:
        """The queues whose token the head lacks (empty: it may run)."""
        head = self.head
        return [q for bit, q in enumerate(QUEUES)
                if head["dpdon"] >> bit & 1 and fifos[q, self.name].count == 0]


def _registers(registers) -> dict[int, int]:
    if registers is None:
        return {}
    items = registers.items() if isinstance(registers, Mapping) else enumerate(registers)
    out = {}
    for reg, base in items:
        if not (isinstance(reg, int) and 0 <= reg < REGISTERS):
            raise XirError(f"DDR base register {reg!r} does not exist (reg_id 0-{REGISTERS - 1})")
        if base is None:
            continue
        if not (isinstance(base, int) and base >= 0):
            raise XirError(f"DDR base register {reg} = {base!r}: a base is a byte address >= 0")
        out[reg] = int(base)
    return out


def program_instructions(program) -> list[Instr]:
    """The instructions of a ``dpuisa.program``, a list of its instruction ops, or an encoded
    stream (bytes or 32-bit words, decoded bit for bit and not verified: the machine checks
    what it runs), each with its index and word offset."""
    if isinstance(program, (bytes, bytearray, memoryview)) or (
            isinstance(program, Sequence) and all(isinstance(w, (int, np.integer))
                                                   for w in program)):
        data = bytes(program) if isinstance(program, memoryview) else (
            program if isinstance(program, (bytes, bytearray)) else [int(w) for w in program])
        return [Instr(n, word, spec, values)
                for n, (word, spec, values) in enumerate(decode_words(data))]
    ops = getattr(program, "instructions", program)
    out, word = [], 0
    for n, op in enumerate(ops):
        spec = getattr(op, "spec", None)
        if spec is None:
            raise XirError(f"instruction {n}: '{op.name}' is not a DPU instruction")
        out.append(Instr(n, word, spec, op.field_values()))
        word += spec.words
    return out


def engine_factories() -> list:
    """The functions building a machine's compute engines from its :class:`~.datamove.BankMap`
    (each returns the engines of one unit, none where the target lacks the unit)."""
    from .alu import alu_engines
    from .compute import conv_engines
    from .dwconv import dwconv_engines
    from .elew import elew_engines
    from .pool import pool_engines

    return [conv_engines, alu_engines, dwconv_engines, pool_engines, elew_engines]


class Machine:
    """A DPU of ``target`` (a :class:`~xir.backend.targets.Target` or a name): its bank groups
    (``banks``), its DDR (``ddr``: a copy of ``ddr``, bytes or a uint8 array, or a size in
    bytes), its queues, token FIFOs and engines. Banks and DDR keep their contents from one
    :meth:`run` to the next (:meth:`reset` starts afresh).
    ``times``: set it to a dict to have each run add the seconds spent per mnemonic."""

    def __init__(self, target, ddr=0):
        if isinstance(target, str):
            from xir.backend.targets import load_target

            target = load_target(target)
        self.target = target
        self.times: dict | None = None
        self.banks = BankMap(target)
        self.ddr = DdrMemory(ddr)
        self.engines = {e.mnemonic: e for e in (LoadEngine(self.banks, self.ddr),
                                                SaveEngine(self.banks, self.ddr))}
        self.engines.update({e.mnemonic: e for factory in engine_factories()
                             for e in factory(self.banks)})

    def reset(self, ddr=0) -> None:
        """The machine as a new one whose DDR starts as ``ddr`` (bytes, a uint8 array or a size):
        banks zero, no CONVINIT (or ALUINIT, POOLINIT, ELEWINIT) seen; what the engines keep
        that depends on the target alone, or is checked against the banks before each use
        (the conv engine's weight matrices), stays, so that a batch of runs pays for it once."""
        self.banks.reset()
        self.ddr.data = DdrMemory(ddr).data
        for engine in self.engines.values():
            state = getattr(engine, "state", None)
            if state is not None:
                state.init = None

    def bank(self, name: str):
        """The :class:`~.memory.BankGroupMemory` of the group called ``name``."""
        return self.banks[name]

    def _check_target(self, program) -> None:
        if isinstance(program, ProgramOp):
            named = program_target(program)
            if named is not None and named.name != self.target.name:
                raise XirError(f"the program is for {named.name}, the machine is "
                               f"{self.target.name}")

    def _check_instruction(self, ins: Instr, last: int) -> None:
        """The dispatcher's checks of one instruction (``last``: the index of END)."""
        if ins.spec.queue is None and ins.index != last:
            return
        for flag in ("dpdon", "dpdby"):
            if ins.spec.queue is None and ins[flag]:
                raise ins.fault(flag, "is set: END runs on no queue, its flags must be 0")
            if ins.spec.queue is not None and ins[flag] >> QUEUES.index(ins.spec.queue) & 1:
                raise ins.fault(flag, f"names {ins.spec.queue}, the queue {ins.mnemonic} "
                                      f"itself runs on")
        if ins.spec.queue is not None and ins.mnemonic not in self.engines:
            raise ins.fault(None, f"{ins.mnemonic} is not simulated yet: the machine runs "
                                  f"{', '.join(self.engines)}; the {ins.spec.engine} "
                                  f"engine ({ins.spec.queue} queue) comes next")

    def dispatch(self, instructions: list[Instr]) -> dict[str, InstructionQueue]:
        """The queues holding ``instructions`` in order, by kind; XirError for a program with no
        END or something after it, a flag on the instruction's own queue or on END, or an
        instruction no engine of the machine runs yet."""
        queues = {q: InstructionQueue(q) for q in QUEUES}
        end = next((ins for ins in instructions if ins.spec.queue is None), None)
        if end is None:
            raise XirError("the program has no END")
        if end.index != len(instructions) - 1:
            raise instructions[end.index + 1].fault(None, "comes after END, which ends the "
                                                          "program")
        for ins in instructions:
            self._check_instruction(ins, end.index)
            if ins.spec.queue is not None:
                queues[ins.spec.queue].pending.append(ins)
        return queues

    def _check_table(self, table: Table) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`dispatch`'s checks over a whole :class:`~.table.Table` at once (the first
        offending instruction raises through :meth:`_check_instruction`); returns each
        instruction's queue number, dpdon and dpdby."""
        queue, dpdon, dpdby = table.queues(), table.header("dpdon"), table.header("dpdby")
        ends = np.flatnonzero(queue < 0)
        if not len(ends):
            raise XirError("the program has no END")
        if ends[0] != len(table) - 1:
            raise table.instr(int(ends[0]) + 1).fault(None, "comes after END, which ends the "
                                                            "program")
        own = np.where(queue >= 0, 1 << np.maximum(queue, 0), 0)
        runnable = np.array([s.queue is None or s.mnemonic in self.engines
                             for s in table.specs] or [True])[table.kind]
        bad = np.where(queue < 0, (dpdon | dpdby) != 0, ((dpdon | dpdby) & own) != 0) | ~runnable
        for n in np.flatnonzero(bad)[:1].tolist():
            self._check_instruction(table.instr(n), int(ends[0]))
        return queue, dpdon, dpdby

    def plan(self, program, seed: int | None = None) -> "Plan":
        """``program`` (as :meth:`run` takes it) made ready to run: decoded, checked and
        scheduled once (``seed`` as :meth:`run`'s). Pass the :class:`Plan` to :meth:`run` of
        any machine of the same target to run it again without decoding or scheduling (a
        batch of images). XirError on what the dispatcher rejects (see :meth:`dispatch`)."""
        self._check_target(program)
        table = Table.of(program)
        queue, dpdon, dpdby = self._check_table(table)
        order, fifo, passed = schedule(queue, dpdon, dpdby, seed)
        return Plan(self.target.name, seed, table, queue, order, fifo, passed)

    def run(self, program, registers=None, seed: int | None = None,
            regions: Mapping[int, str] | None = None) -> Counters:
        """Run ``program`` (a ``dpuisa.program``, its ops, encoded bytes or words, or a
        :class:`Plan` of :meth:`plan`) to its END and return its :class:`Counters`.
        ``registers``: the DDR base registers, ``{reg_id: byte address}`` or a sequence (by
        convention reg 0 CONST, reg 1 DATA, named by ``regions``). ``seed``: None runs the
        ready head earliest in the program each step; an integer picks a ready queue at random
        (seeded); a plan carries its own (``seed`` must then be None or the plan's). XirError on
        a fault (naming the instruction, its word and the field), on a deadlock, or on tokens
        left at END.

        The order comes from the tokens alone (:func:`.schedule.schedule`); it is executed in
        runs of consecutive instructions of one mnemonic, by an engine's ``execute_batch``
        where it has one, else instruction by instruction (docs/simulator.md)."""
        if isinstance(program, Plan):
            plan = program
            if plan.target != self.target.name:
                raise XirError(f"the plan is for {plan.target}, the machine is "
                               f"{self.target.name}")
            if seed is not None and seed != plan.seed:
                raise XirError(f"the plan was scheduled with seed {plan.seed}, not {seed}")
        else:
            plan = self.plan(program, seed)
        regs = _registers(registers)
        counters = Counters()
        if regions is not None:
            counters.regions = dict(regions)
        table, queue, order, fifo = plan.table, plan.queue, plan.order, plan.fifo
        self._execute(plan, regs, counters)
        if len(order) < int((queue >= 0).sum()):
            raise self._stuck(table, order, queue, fifo)
        left = [f"{_pair(s, d)} {fifo[i, j]}" for i, s in enumerate(QUEUES)
                for j, d in enumerate(QUEUES) if fifo[i, j]]
        if left:
            raise XirError(f"END with tokens left in their FIFOs ({', '.join(left)}): the program "
                           f"signals more tokens (dpdby) than it awaits (dpdon)")
        for i, s in enumerate(QUEUES):
            for j, d in enumerate(QUEUES):
                if s != d:
                    counters.tokens[_pair(s, d)] = int(plan.passed[i, j])
        return counters

    def _execute(self, plan: "Plan", regs: dict, counters: Counters) -> None:
        times = self.times
        for spec, run in plan.runs():
            start = time.perf_counter() if times is not None else 0.0
            engine = self.engines[spec.mnemonic]
            batch = getattr(engine, "execute_batch", None)
            if batch is not None:
                batch(run, regs, counters)
            else:
                for n in run.indices.tolist():
                    engine.execute(plan.table.instr(n), regs, counters)
            counters.instructions[spec.queue] += len(run)
            if times is not None:
                times[spec.mnemonic] = times.get(spec.mnemonic, 0.0) + time.perf_counter() - start

    def _stuck(self, table: Table, order: np.ndarray, queue: np.ndarray,
               fifo: np.ndarray) -> XirError:
        """The deadlock error of the state the schedule stopped in."""
        ran = np.zeros(len(table), bool)
        ran[order] = True
        queues, fifos = [], {}
        for i, s in enumerate(QUEUES):
            for j, d in enumerate(QUEUES):
                if s != d:
                    fifos[s, d] = TokenFifo(s, d)
                    fifos[s, d].count = int(fifo[i, j])
        for q, name in enumerate(QUEUES):
            left = np.flatnonzero((queue == q) & ~ran)
            if len(left):
                iq = InstructionQueue(name)
                iq.pending.extend(table.instr(n) for n in left.tolist())
                queues.append(iq)
        return self._deadlock(queues, fifos)

    @staticmethod
    def _deadlock(live: list[InstructionQueue], fifos: dict) -> XirError:
        remaining = sum(len(q.pending) for q in live)
        parts = []
        for q in live:
            waits = q.waits_on(fifos)
            tokens = " and ".join(f"a token from {w} (FIFO {_pair(w, q.name)} is empty)"
                                  for w in waits)
            parts.append(f"{q.name} waits at {q.head.where} for {tokens}")
        return XirError(f"dependency deadlock: no queue can step and {remaining} instruction"
                        f"{'s' if remaining != 1 else ''} remain: {'; '.join(parts)}")


def simulate(program, target, ddr, registers=None, seed: int | None = None):
    """Run ``program`` on a fresh :class:`Machine` of ``target`` whose DDR starts as ``ddr``
    (bytes, or a size); returns ``(machine, counters)``."""
    machine = Machine(target, ddr)
    return machine, machine.run(program, registers, seed)


def warm_up(target: str = "DPUCZDX8G_ISA1_B4096") -> None:
    """Compile (or load from Numba's cache) every kernel a run uses: the engines', the
    decoder's, the schedule's and the batch kernels', on a tiny program (LOAD, CONVINIT,
    CONVs, ELEWINIT, ELEW, SAVE)."""
    from xir.dialects.dpuisa import encode, make_instruction, make_program

    from . import engines

    engines.warm_up()

    def load():
        return make_instruction("LOAD", bank_id=0, bank_addr=0, length=2, channel=16,
                                jump_read=16, jump_write=1, reg_id=0, ddr_addr=0)

    program = make_program([
        load(),
        make_instruction("CONVINIT", kernel_h=1, kernel_w=1, stride_h=1, stride_w=1,
                         jump_read=1, jump_write=1),
        make_instruction("CONV", bank_id_in=0, bank_id_out=8, length=2, bank_id_weights=16,
                         channel_group=1, bank_id_bias=33),
        load(),  # a second run of CONVs: one weight block with two biases (per-CONV finish)
        make_instruction("CONV", bank_id_in=0, bank_id_out=8, length=2, bank_id_weights=16,
                         channel_group=1, bank_id_bias=33),
        make_instruction("CONV", bank_id_in=0, bank_id_out=8, bank_addr_out=1, length=2,
                         bank_id_weights=16, channel_group=1, bank_id_bias=33,
                         bank_addr_bias=1),
        make_instruction("ELEWINIT", jump_read_0=1, jump_read_1=1, jump_write=1),
        make_instruction("ELEW", bank_id_out=8, bank_id_in_0=0, bank_id_in_1=0, length=2,
                         channel_group=1),
        make_instruction("SAVE", bank_id=8, length=2, channel=16, jump_read=1, jump_write=16,
                         reg_id=0, ddr_addr=64),
        make_instruction("END")])
    Machine(target, 256).run(encode(program), {0: 0})
