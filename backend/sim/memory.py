"""The simulator's memories: one :class:`BankGroupMemory` per bank group of the target, the
:class:`DdrMemory` byte array, and :class:`Instr`, one decoded instruction as the units see it.

The bank contract (docs/simulator.md) is written here once, in :meth:`BankGroupMemory.slots`:
a LOAD or SAVE moves a run of pixels, each ``ceil(channel / bank_width)`` words; pixel p of the
run sits in ring slot ``q = (bank_id - base_id) + p`` of its group, in bank
``base_id + q mod bank_num``, words ``bank_addr + (q div bank_num) * jump + j``. Every access is
bounds-checked against the arrays themselves, and a fault is an XirError naming the instruction,
its place in the stream and the field: ``instruction 3 (LOAD at word 12): field 'bank_addr' …``.
"""

from __future__ import annotations

from typing import Mapping

import attrs
import numpy as np

from xir.diagnostics import XirError
from xir.dialects.dpuisa import isa


@attrs.frozen
class Instr:
    """One instruction of a program as the machine runs it: its ``index`` in the stream, the
    ``word`` it starts at, its table ``spec`` and its field ``values``; ``memo`` what engines
    derive from the fields alone (see :func:`~.compute.ring_slots`)."""

    index: int
    word: int
    spec: isa.Instruction
    values: Mapping[str, int] = attrs.field(eq=False)
    # what engines work out from the fields alone (bank addresses), kept with a machine.Plan's
    # table so that later images of a batch skip it
    memo: dict = attrs.field(factory=dict, eq=False, repr=False)

    @property
    def mnemonic(self) -> str:
        """``LOAD``, ``SAVE`` …"""
        return self.spec.mnemonic

    @property
    def where(self) -> str:
        """``instruction 3 (LOAD at word 12)``."""
        return f"instruction {self.index} ({self.mnemonic} at word {self.word})"

    def __getitem__(self, name: str) -> int:
        return self.values[name]

    def fault(self, field: str | None, text: str) -> XirError:
        """The one-line error of this instruction: ``… : field 'bank_addr' = 2048 text``."""
        if field is None:
            return XirError(f"{self.where}: {text}")
        return XirError(f"{self.where}: field '{field}' = {self.values[field]} {text}")


class BankGroupMemory:
    """The banks of one :class:`~xir.backend.targets.BankGroup`: ``data[bank, word, byte]``, a
    numpy uint8 array of ``bank_num`` × ``bank_depth`` × ``bank_width``, zero at reset."""

    def __init__(self, group):
        self.group = group
        self.data = np.zeros((group.bank_num, group.bank_depth, group.bank_width), np.uint8)

    @property
    def name(self) -> str:
        """The group's name (``VB0``)."""
        return self.group.name

    def flat(self, dtype=np.uint8) -> np.ndarray:
        """``data`` viewed as (bank, word · byte) of ``dtype`` (uint8 or int8): a pixel's
        bytes, which fill consecutive words of one bank, are one stretch of a row (the batch
        kernels' view)."""
        g = self.group
        return self.data.reshape(g.bank_num, g.bank_depth * g.bank_width).view(dtype)

    def words_per_pixel(self, channel: int) -> int:
        """Words one pixel of ``channel`` bytes takes: ``ceil(channel / bank_width)``."""
        return -(-channel // self.group.bank_width)

    def slots(self, ins: Instr, pixels: int, jump_field: str, shape: tuple[str, ...]):
        """(bank index, word address) arrays of shape (pixels, words per pixel) for a run of
        ``pixels`` pixels of ``ins['channel']`` bytes from ``ins['bank_id']`` /
        ``ins['bank_addr']``, pixels sharing a bank ``ins[jump_field]`` words apart (the bank
        contract); a fault naming the field when the run overlaps itself or leaves the banks.
        ``shape`` names the fields that set the run, for the message."""
        g = self.group
        addr, jump = ins["bank_addr"], ins[jump_field]
        depth = f"bank group {g.name}'s depth {g.bank_depth} (words 0-{g.bank_depth - 1})"
        if addr >= g.bank_depth:
            raise ins.fault("bank_addr", f"exceeds {depth}")
        words = self.words_per_pixel(ins["channel"])
        q = ins["bank_id"] - g.base_id + np.arange(pixels, dtype=np.int64)
        turn = q // g.bank_num
        if pixels and words and turn[-1] > 0 and jump < words:
            raise ins.fault(jump_field, f"is less than the {words} words a pixel of channel = "
                            f"{ins['channel']} bytes takes in bank group {g.name} "
                            f"({g.bank_width}-byte words): pixels sharing a bank would overlap")
        word = addr + turn[:, None] * jump + np.arange(words, dtype=np.int64)[None, :]
        if word.size and word.max() >= g.bank_depth:
            fields = ", ".join(f"{n} = {ins[n]}" for n in ("bank_id", *shape, jump_field,
                                                           "channel"))
            raise ins.fault("bank_addr", f"with {fields} reaches word {int(word.max())}, which "
                            f"exceeds {depth}")
        bank = np.broadcast_to((q % g.bank_num)[:, None], word.shape)
        return bank, word

    def write(self, bank: np.ndarray, word: np.ndarray, pixels: np.ndarray) -> None:
        """Store ``pixels`` (P × channel bytes) at the :meth:`slots` positions, each pixel's last
        word padded with zeros."""
        p, words = word.shape
        lane = np.zeros((p, words * self.group.bank_width), np.uint8)
        lane[:, :pixels.shape[1]] = pixels
        self.data[bank, word] = lane.reshape(p, words, self.group.bank_width)

    def read(self, bank: np.ndarray, word: np.ndarray, channel: int) -> np.ndarray:
        """The first ``channel`` bytes of each pixel at the :meth:`slots` positions (P ×
        channel)."""
        p, words = word.shape
        return self.data[bank, word].reshape(p, words * self.group.bank_width)[:, :channel]


class DdrMemory:
    """The DDR as one byte array (``data``, numpy uint8), addressed from 0: a copy of the bytes
    or uint8 array given, or zeros of the size given."""

    def __init__(self, size_or_bytes):
        if isinstance(size_or_bytes, (int, np.integer)):
            self.data = np.zeros(int(size_or_bytes), np.uint8)
        elif isinstance(size_or_bytes, np.ndarray):
            self.data = np.array(size_or_bytes.reshape(-1).view(np.uint8))  # a copy
        else:
            self.data = np.frombuffer(bytes(size_or_bytes), np.uint8).copy()

    @property
    def size(self) -> int:
        """Bytes in the DDR."""
        return len(self.data)

    def addresses(self, ins: Instr, base: int, count: int, jump_field: str) -> np.ndarray:
        """The byte addresses (count × channel) of ``count`` pixels of ``ins['channel']`` bytes
        from ``base + ins['ddr_addr']``, ``ins[jump_field]`` bytes apart; a fault naming
        ``ddr_addr`` when one is past the end."""
        start = base + ins["ddr_addr"]
        k = np.arange(count, dtype=np.int64)[:, None] * ins[jump_field]
        where = start + k + np.arange(ins["channel"], dtype=np.int64)[None, :]
        if where.size and where.max() >= self.size:
            raise ins.fault("ddr_addr", f"with reg {ins['reg_id']} = {base:#x}, length = "
                            f"{count}, {jump_field} = {ins[jump_field]}, channel = "
                            f"{ins['channel']} reaches DDR byte {int(where.max())}, which "
                            f"exceeds the DDR's {self.size} bytes")
        return where
