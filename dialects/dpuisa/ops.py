"""The dpuisa ops: one op per DPU instruction, its fields integer attributes, and
``dpuisa.program``, the region that holds a stream of them in order.

Each instruction op class is made from its table in :mod:`.isa` (``LoadOp`` from ``isa.LOAD``
…): a subclass of :class:`InstructionOp` with its name, the table, and one required integer
attribute per field, documented from the table, so no field list is written here. The
verifier checks every field against its width (and an enumerated field against its codes),
the dependency flags against the instruction's queue, and, when the program names a target,
every bank access against the target's bank groups: the bank id belongs to a group, the group
is one the instruction's engine uses, and the address (and, for LOAD and SAVE, the whole
access, pixel by pixel as the bank contract of docs/simulator.md places them) lies within the
group's depth. The program's verifier walks the stream in order and checks each compute
instruction's whole accesses (input rows, weights, bias, output pixels) with the last INIT
of its engine before it (:mod:`.extents`), as the simulator's engines make them.

The target comes from the nearest ``dpuisa.program`` with a ``target`` attribute, or else from
the nearest enclosing op with a ``dpuisa.target`` attribute (a module can name it once); with
neither, bank accesses are not checked. See docs/dpuisa.md.
"""

from __future__ import annotations

import functools

from xir import attributes as A
from xir.diagnostics import XirError
from xir.ir import Block, Operation, Region
from xir.opdef import IntegerAttrC, StringAttrC, attr, region
from xir.traits import HasParent, IsolatedFromAbove, NoTerminator, SingleBlock

from . import extents, isa

TARGET_ATTR = "dpuisa.target"


@functools.lru_cache(maxsize=None)
def _load_target(name: str):
    from xir.backend.targets import load_target

    return load_target(name)


def _target_name(op: Operation) -> str | None:
    node = op
    while node is not None:
        if isinstance(node, ProgramOp) and node.target is not None:
            return node.target.value
        found = node.attributes.get(TARGET_ATTR)
        if isinstance(found, A.StringAttr):
            return found.value
        node = node.parent_op
    return None


def program_target(op: Operation):
    """The :class:`~xir.backend.targets.Target` that ``op``'s program names (None if none);
    an XirError at ``op`` if the name is not a known target."""
    name = _target_name(op)
    if name is None:
        return None
    try:
        return _load_target(name)
    except XirError as e:
        raise op.error(f"names an unknown target: {e.diagnostic.message}") from None


def flags_text(value: int) -> str:
    """A dependency-flag field as the listing writes it: ``0b0100``."""
    return f"0b{value:04b}"


def _group_map(target) -> str:
    parts = []
    for g in target.bank_groups:
        ids = g.bank_ids
        span = f"{ids.start}" if len(ids) == 1 else f"{ids.start}-{ids.stop - 1}"
        parts.append(f"{g.name} {span}")
    return ", ".join(parts)


class InstructionOp(Operation):
    """Base of the instruction ops: a subclass sets ``name`` and ``spec`` (its
    :class:`~.isa.Instruction`), and gets one required integer attribute per field."""

    spec: isa.Instruction | None = None

    def __init_subclass__(cls, **kwargs):
        spec = cls.__dict__.get("spec")
        if spec is not None:
            for f in spec.fields:
                setattr(cls, f.name, attr(IntegerAttrC, doc=f.doc))
        super().__init_subclass__(**kwargs)

    def field_values(self) -> dict[str, int]:
        """``{field: value}`` in table order (fields that are missing or not integers skipped)."""
        out = {}
        for f in self.spec.fields:
            value = self.attributes.get(f.name)
            if isinstance(value, A.IntegerAttr):
                out[f.name] = value.value
        return out

    def verify_(self):
        values = self.field_values()
        self._verify_fields(values)
        target = program_target(self)
        if target is not None:
            self._verify_banks(target, values)

    def bank_groups(self, target, values: dict) -> dict | None:
        """``{bank id field: bank group}`` of this instruction with field ``values`` on
        ``target``, or None if some field is missing or the op's own bank check rejects it
        (a bank outside the engine's groups, an address past the depth)."""
        if len(values) != len(self.spec.fields):
            return None
        try:
            return self._verify_banks(target, values)
        except XirError:
            return None

    def _verify_fields(self, values: dict) -> None:
        spec = self.spec
        for f in spec.fields:
            problem = f.problem(values[f.name])
            if problem is not None:
                raise self.error(problem)
        for flag in ("dpdon", "dpdby"):
            value = values[flag]
            if spec.queue is None and value:
                raise self.error(f"{flag} = {flags_text(value)}: END runs on no queue, its "
                                 f"flags must be 0")
            if spec.queue is not None and value >> isa.QUEUES.index(spec.queue) & 1:
                raise self.error(f"{flag} = {flags_text(value)} names {spec.queue}, the queue "
                                 f"{spec.mnemonic} itself runs on")

    def _verify_banks(self, target, values: dict) -> dict:
        spec = self.spec
        groups = {}
        engine = getattr(target, spec.engine) if spec.engine else None
        if spec.engine and engine is None:
            raise self.error(f"needs a {spec.engine} engine, which {target.name} does not have")
        for access in spec.banks:
            bank_id = values[access.id_field]
            group = next((g for g in target.bank_groups if bank_id in g.bank_ids), None)
            if group is None:
                raise self.error(f"{access.id_field} = {bank_id} is not a bank of {target.name} "
                                 f"({_group_map(target)})")
            if access.engine_bank is not None:
                allowed = getattr(engine, access.engine_bank)
                allowed = (allowed,) if isinstance(allowed, str) else tuple(allowed)
                if group.name not in allowed:
                    raise self.error(
                        f"{access.id_field} = {bank_id} is in bank group {group.name}, but the "
                        f"{spec.engine} engine's {access.engine_bank.replace('_', ' ')} is "
                        f"{' or '.join(allowed)}")
            self._verify_extent(access, group, values)
            groups[access.id_field] = group
        return groups

    def _verify_extent(self, access: isa.BankAccess, group, values: dict) -> None:
        addr = values[access.addr_field]
        depth = (f"bank group {group.name}'s depth {group.bank_depth} "
                 f"(words 0-{group.bank_depth - 1})")
        if addr >= group.bank_depth:
            raise self.error(f"{access.addr_field} = {addr} is beyond {depth}")
        if not access.rows:
            return  # compute instructions: the extent depends on their INIT (the simulator's)
        # LOAD / SAVE, the bank contract (docs/simulator.md): pixel p of the run sits in ring
        # slot q = (bank_id - base_id) + p of the group, bank base_id + q mod bank_num, words
        # bank_addr + (q div bank_num) * jump + j for j < ceil(channel / bank_width).
        pixels = sum(values[r] for r in access.rows)
        words = -(-values[access.size] // group.bank_width)
        if pixels == 0 or words == 0:
            return
        turns = (values[access.id_field] - group.base_id + pixels - 1) // group.bank_num
        jump = values[access.jump]
        if turns and jump < words:
            raise self.error(
                f"{access.jump} = {jump} is less than the {words} words a pixel of "
                f"{access.size} = {values[access.size]} bytes takes in bank group {group.name} "
                f"({group.bank_width}-byte words): pixels sharing a bank would overlap")
        last = addr + turns * jump + words - 1
        if last < group.bank_depth:
            return
        shape = ", ".join(f"{n} = {values[n]}"
                          for n in (access.id_field, *access.rows, access.jump, access.size))
        raise self.error(f"{access.addr_field} = {addr} with {shape} reaches word {last}, "
                         f"beyond {depth}")


def _instruction_op(spec: isa.Instruction) -> type:
    """The op class of ``spec`` (named like ``LoadOp``), documented from the table."""
    title = spec.mnemonic.capitalize() + "Op"
    doc = f"{spec.mnemonic} (opcode {spec.opcode:#x}, {spec.words} words): {spec.doc}"
    return type(title, (InstructionOp,), {"name": spec.op_name, "spec": spec, "__doc__": doc,
                                          "__module__": __name__,
                                          "traits": (HasParent("dpuisa.program"),)})


#: One op class per instruction, in the order of :data:`.isa.INSTRUCTIONS`.
INSTRUCTION_OPS: tuple[type, ...] = tuple(_instruction_op(spec) for spec in isa.INSTRUCTIONS)
OP_OF: dict[str, type] = {cls.spec.mnemonic: cls for cls in INSTRUCTION_OPS}
(LoadOp, SaveOp, ConvinitOp, ConvOp, PoolinitOp, PoolOp, AluinitOp, AluOp, DwinitOp, DptwiseOp,
 ElewinitOp, ElewOp, EndOp) = INSTRUCTION_OPS


class ProgramOp(Operation):
    """A DPU instruction stream: one block of instruction ops in program order, ending in END.

    ``target`` (optional) names the DPU target whose bank groups the instructions use. The
    verifier also checks the dependency tokens balance: for every pair of queues, the tokens
    one queue signals the other (dpdby) equal the tokens the other waits on (dpdon)."""

    name = "dpuisa.program"
    body = region(doc="the instructions, in order")
    target = attr(StringAttrC, optional=True, doc="target name or fingerprint")
    traits = (NoTerminator(), SingleBlock(), IsolatedFromAbove())

    @property
    def instructions(self) -> list[Operation]:
        """The ops of the body, in order."""
        return list(self.body.ops)

    def verify_(self):
        target = program_target(self)
        ops = self.instructions
        for op in ops:
            if not isinstance(op, InstructionOp):
                raise op.error("is not a DPU instruction; 'dpuisa.program' holds instructions only")
        ends = [i for i, op in enumerate(ops) if isinstance(op, EndOp)]
        if ends != [len(ops) - 1]:
            raise self.error("must end with exactly one END" if len(ends) <= 1 else
                             f"has {len(ends)} END instructions; only the last may be END")
        values = [op.field_values() for op in ops]
        self._verify_tokens(ops, values)
        if target is not None:
            self._verify_compute_extents(ops, values, target)

    def _verify_tokens(self, ops, all_values: list) -> None:
        signalled: dict[tuple[str, str], int] = {}
        awaited: dict[tuple[str, str], int] = {}
        for op, values in zip(ops, all_values):
            queue = op.spec.queue
            if queue is None:
                continue
            for bit, other in enumerate(isa.QUEUES):
                if other == queue:
                    continue  # a flag on its own queue: the instruction's verifier names it
                if values.get("dpdby", 0) >> bit & 1:
                    signalled[queue, other] = signalled.get((queue, other), 0) + 1
                if values.get("dpdon", 0) >> bit & 1:
                    awaited[other, queue] = awaited.get((other, queue), 0) + 1
        for pair in sorted(set(signalled) | set(awaited), key=lambda p: (
                isa.QUEUES.index(p[0]), isa.QUEUES.index(p[1]))):
            sent, taken = signalled.get(pair, 0), awaited.get(pair, 0)
            if sent != taken:
                raise self.error(f"dependency tokens {pair[0]} -> {pair[1]} do not balance: "
                                 f"{sent} signalled (dpdby), {taken} awaited (dpdon)")

    def _verify_compute_extents(self, ops, all_values: list, target) -> None:
        # Each compute instruction reads the last INIT of its engine before it (INIT and
        # compute share one queue, so program order is the engines' order). Instructions the
        # op's own verifier rejects are skipped: it names their problem. Bank ids repeat from
        # instruction to instruction, so their groups are looked up once per combination (the
        # addresses, which the lookup also checks, are checked again for each).
        inits: dict = {}
        known: dict = {}
        word = 0
        for n, (op, values) in enumerate(zip(ops, all_values)):
            spec = op.spec
            start, word = word, word + spec.words
            if spec.mnemonic in _INITS:
                inits[spec.engine] = values if len(values) == len(spec.fields) else None
                continue
            init = inits.get(spec.engine) if spec.mnemonic in extents.INIT_OF else None
            if init is None or len(values) != len(spec.fields):
                continue
            ids = (spec.mnemonic, *(values[a.id_field] for a in spec.banks))
            groups = known.get(ids) or op.bank_groups(target, values)
            if groups is not None:
                known[ids] = groups
            if groups is None or any(values[a.addr_field] >= groups[a.id_field].bank_depth
                                     for a in spec.banks):
                continue
            try:
                fault = extents.first_fault(
                    extents.compute_extents(spec.mnemonic, init, values, target, groups))
            except extents.ExtentProblem as e:
                fault = e.field, e.text
            if fault is not None:
                name, text = fault
                raise op.error(f"instruction {n} ({spec.mnemonic} at word {start}): field "
                               f"'{name}' = {values[name]} {text}")


_INITS = frozenset(extents.INIT_OF.values())


def make_instruction(mnemonic: str, location=None, **values: int) -> InstructionOp:
    """The op of instruction ``mnemonic`` with field ``values`` (unnamed fields are 0);
    XirError for an unknown mnemonic or field."""
    spec = isa.BY_MNEMONIC.get(mnemonic.upper())
    if spec is None:
        raise XirError(f"unknown DPU instruction '{mnemonic}'")
    names = {f.name for f in spec.fields}
    unknown = sorted(set(values) - names)
    if unknown:
        raise XirError(f"{spec.mnemonic} has no field '{unknown[0]}'")
    attributes = {f.name: A.IntegerAttr(int(values.get(f.name, 0))) for f in spec.fields}
    return _new(OP_OF[spec.mnemonic], attributes=attributes, location=location)


def _new(cls, **kwargs) -> Operation:
    """An op of class ``cls`` (whether or not the dialect is registered yet)."""
    op = Operation.__new__(cls)
    Operation.__init__(op, cls.name, **kwargs)
    return op


def make_program(instructions, target: str | None = None, location=None) -> ProgramOp:
    """A ``dpuisa.program`` holding ``instructions`` (ops, moved into it) in order."""
    block = Block()
    for op in instructions:
        block.append(op.detach() if op.parent is not None else op)
    attributes = {} if target is None else {"target": A.StringAttr(target)}
    return _new(ProgramOp, attributes=attributes, regions=[Region([block])], location=location)
