"""The data-movement units: :class:`LoadEngine` (LOAD, DDR → banks) and :class:`SaveEngine`
(SAVE, banks → DDR), and :class:`BankMap`, which finds the bank group of a bank id and checks
that the instruction's engine may use it.

Both follow the bank contract of docs/simulator.md (written once, in
:meth:`~.memory.BankGroupMemory.slots`). A LOAD moves ``length`` pixels of ``channel`` bytes,
pixel k from DDR byte ``reg[reg_id] + ddr_addr + k * jump_read``, after ``pad_start`` zero
pixels and before ``pad_end`` more; a SAVE moves ``length`` pixels back, pixel k to
``reg[reg_id] + ddr_addr + k * jump_write`` (no pads). Every access is checked before anything
moves, so a faulting instruction changes nothing.
"""

from __future__ import annotations

import numpy as np

from .memory import BankGroupMemory, DdrMemory, Instr
from .movekernels import FIELDS, move_run


def group_map(target) -> str:
    """``VB0 0-7, VB1 8-15, …``: the target's groups and their bank ids."""
    parts = []
    for g in target.bank_groups:
        ids = g.bank_ids
        parts.append(f"{g.name} {ids.start}" if len(ids) == 1 else
                     f"{g.name} {ids.start}-{ids.stop - 1}")
    return ", ".join(parts)


class BankMap:
    """Every bank group of a target, as :class:`BankGroupMemory`, by name (``groups``);
    ``geometry_table[k]``: group k's (base_id, bank_num, bank_depth, bank_width), for the
    batch kernels."""

    def __init__(self, target):
        self.target = target
        self.groups = {g.name: BankGroupMemory(g) for g in target.bank_groups}
        self._tables: dict = {}  # (engine, engine_bank) -> bank id -> group index
        self.geometry_table = np.array([(m.group.base_id, m.group.bank_num, m.group.bank_depth,
                                         m.group.bank_width) for m in self.groups.values()],
                                       np.int64)

    def __getitem__(self, name: str) -> BankGroupMemory:
        return self.groups[name]

    def flats(self) -> tuple:
        """Every group's :meth:`~.memory.BankGroupMemory.flat` uint8 view, in order (made
        once, again only if a group's array was replaced)."""
        key = tuple(id(m.data) for m in self.groups.values())
        if getattr(self, "_flats_key", None) != key:
            self._flats, self._flats_key = tuple(m.flat() for m in self.groups.values()), key
        return self._flats

    def resolve(self, ins: Instr, id_field: str, engine: str | None,
                engine_bank: str | None) -> BankGroupMemory:
        """The group holding bank ``ins[id_field]``; a fault if no group does, or if
        ``engine_bank`` (an attribute of the target's ``engine``, as in the instruction table)
        does not list it. ``engine_bank`` None: any group (LOAD writes weights and bias too).
        Kept in ``ins.memo``."""
        key = ("group", id_field, engine, engine_bank)
        name = ins.memo.get(key)
        if name is not None:
            return self.groups[name]
        bank_id = ins[id_field]
        group = next((m for m in self.groups.values() if bank_id in m.group.bank_ids), None)
        if group is None:
            raise ins.fault(id_field, f"is not a bank of {self.target.name} "
                            f"({group_map(self.target)})")
        if engine_bank is not None:
            allowed = getattr(getattr(self.target, engine), engine_bank)
            allowed = (allowed,) if isinstance(allowed, str) else tuple(allowed)
            if group.name not in allowed:
                raise ins.fault(id_field, f"is in bank group {group.name}, but the {engine} "
                                f"engine's {engine_bank.replace('_', ' ')} is "
                                f"{' or '.join(allowed)}")
        ins.memo[key] = group.name
        return group

    def group_index(self, bank_ids: np.ndarray, engine: str | None = None,
                    engine_bank: str | None = None) -> np.ndarray:
        """:meth:`resolve` for many bank ids at once: each one's group as an index into
        ``list(groups)``, -1 where :meth:`resolve` would fault."""
        table = self._tables.get((engine, engine_bank))
        if table is None:
            allowed = None
            if engine_bank is not None:
                allowed = getattr(getattr(self.target, engine), engine_bank)
                allowed = (allowed,) if isinstance(allowed, str) else tuple(allowed)
            table = np.full(1 << 8, -1, np.int64)
            for k, m in enumerate(self.groups.values()):
                if allowed is None or m.name in allowed:
                    table[list(m.group.bank_ids)] = k
            self._tables[engine, engine_bank] = table
        return np.where((bank_ids >= 0) & (bank_ids < len(table)),
                        table[np.clip(bank_ids, 0, len(table) - 1)], -1)

    def reset(self) -> None:
        """Every bank back to zeros."""
        for m in self.groups.values():
            m.data[...] = 0


class _Mover:
    """What the load and save engines share: the banks, the DDR, the registers, the counters."""

    mnemonic = ""

    def __init__(self, banks: BankMap, ddr: DdrMemory):
        self.banks = banks
        self.ddr = ddr

    def _register(self, ins: Instr, registers: dict) -> int:
        base = registers.get(ins["reg_id"])
        if base is None:
            given = ", ".join(str(r) for r in sorted(registers)) or "none"
            raise ins.fault("reg_id", f"names a DDR base register this run did not set "
                            f"(set: {given})")
        return base

    def _group(self, ins: Instr) -> BankGroupMemory:
        (access,) = ins.spec.banks
        return self.banks.resolve(ins, access.id_field, ins.spec.engine, access.engine_bank)

    def execute_batch(self, run, registers: dict, counters) -> None:
        """A run of LOADs or SAVEs: screened and moved in order by one kernel call
        (:func:`.movekernels.move_run`) up to an instruction that might fault, which goes
        through :meth:`execute` (raising its fault, or running it), and so on
        (docs/simulator.md)."""
        save = self.mnemonic == "SAVE"
        f = run.memo.get("move")  # fields alone: a plan keeps it for every image
        if f is None:
            f = run.fields(FIELDS if not save else FIELDS[:8])
            if save:
                f = np.concatenate([f, np.zeros((len(f), 2), np.int64)], axis=1)
            run.memo["move"] = f
        table = getattr(self, "_group_table", None)
        if table is None:
            (access,) = run.spec.banks
            table = self._group_table = self.banks.group_index(np.arange(256), run.spec.engine,
                                                               access.engine_bank)
        regs = np.full(8, -1, np.int64)
        for r, base in registers.items():
            regs[r] = base
        mems = list(self.banks.groups.values())
        flats = self.banks.flats()
        per_group = np.zeros((len(mems), 2), np.int64)
        per_reg = np.zeros((9, 2), np.int64)
        at = 0
        while at < len(f):
            stop = at + move_run(flats, self.banks.geometry_table, self.ddr.data, f[at:], save,
                                 table, regs, per_group, per_reg)
            if stop < len(f):
                self.execute(run.instr(stop), registers, counters)
            at = stop + 1
        banks = counters.bank_read if save else counters.bank_written
        for k in np.flatnonzero(per_group[:, 0]).tolist():
            banks[mems[k].name] = banks.get(mems[k].name, 0) + int(per_group[k, 1])
        ddr = counters.saved if save else counters.loaded
        for r in np.flatnonzero(per_reg[:8, 0]).tolist():
            ddr[r] = ddr.get(r, 0) + int(per_reg[r, 1])
        counters.pad_bytes += int(per_reg[8, 1])


class LoadEngine(_Mover):
    """The load engine: runs LOAD, DDR → one bank group."""

    mnemonic = "LOAD"

    def execute(self, ins: Instr, registers: dict, counters) -> None:
        """Check every address of ``ins``, then move its pixels (pads as zeros) and count."""
        group = self._group(ins)
        length, channel = ins["length"], ins["channel"]
        pixels = ins["pad_start"] + length + ins["pad_end"]
        bank, word = group.slots(ins, pixels, "jump_write", ("pad_start", "length", "pad_end"))
        moves = length > 0 and channel > 0
        data = np.zeros((pixels, channel), np.uint8)
        if moves:
            base = self._register(ins, registers)
            where = self.ddr.addresses(ins, base, length, "jump_read")
            data[ins["pad_start"]:ins["pad_start"] + length] = self.ddr.data[where]
        if word.size:
            group.write(bank, word, data)
        width = word.shape[1] * group.group.bank_width  # bank bytes a pixel takes
        counters.count_load(ins["reg_id"], length * channel if moves else 0, group.name,
                            pixels * width, (pixels - length) * width)


class SaveEngine(_Mover):
    """The save engine: runs SAVE, one bank group → DDR."""

    mnemonic = "SAVE"

    def execute(self, ins: Instr, registers: dict, counters) -> None:
        """Check every address of ``ins``, then move its pixels and count."""
        group = self._group(ins)
        length, channel = ins["length"], ins["channel"]
        bank, word = group.slots(ins, length, "jump_read", ("length",))
        moves = length > 0 and channel > 0
        if moves:
            if length > 1 and ins["jump_write"] < channel:
                raise ins.fault("jump_write", f"is less than channel = {channel}: the saved "
                                f"pixels would overlap in DDR")
            base = self._register(ins, registers)
            where = self.ddr.addresses(ins, base, length, "jump_write")
            self.ddr.data[where] = group.read(bank, word, channel)
        counters.count_save(ins["reg_id"], length * channel if moves else 0, group.name,
                            word.size * group.group.bank_width)
