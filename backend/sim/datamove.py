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


def group_map(target) -> str:
    """``VB0 0-7, VB1 8-15, …``: the target's groups and their bank ids."""
    parts = []
    for g in target.bank_groups:
        ids = g.bank_ids
        parts.append(f"{g.name} {ids.start}" if len(ids) == 1 else
                     f"{g.name} {ids.start}-{ids.stop - 1}")
    return ", ".join(parts)


class BankMap:
    """Every bank group of a target, as :class:`BankGroupMemory`, by name (``groups``)."""

    def __init__(self, target):
        self.target = target
        self.groups = {g.name: BankGroupMemory(g) for g in target.bank_groups}

    def __getitem__(self, name: str) -> BankGroupMemory:
        return self.groups[name]

    def resolve(self, ins: Instr, id_field: str, engine: str | None,
                engine_bank: str | None) -> BankGroupMemory:
        """The group holding bank ``ins[id_field]``; a fault if no group does, or if
        ``engine_bank`` (an attribute of the target's ``engine``, as in the instruction table)
        does not list it. ``engine_bank`` None: any group (LOAD writes weights and bias too)."""
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
        return group

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
