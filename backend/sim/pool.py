"""The pool engine (ISA0, ISA2): POOLINIT and POOL, and :func:`pool_row`, the pooling both it
and the ISA1 ALU (exec_type max_pool / avg_pool, :mod:`.alu`) run (docs/simulator.md, "The pool
engine" and "The ALU: pooling").

A pooling instruction reads its fields as a CONV does (:mod:`.compute`): ``length`` output
pixels of one output row, all ``channel_group`` · CP channels; ``kernel_h - pad_top -
pad_bottom`` input rows from ``bank_addr_in``, ``jump_read`` words apart, each a run of
``(length - 1) · stride_w + kernel_w - pad_left - pad_right`` pixels from ring slot
``bank_id_in``; output pixels from ring slot ``bank_id_out``, ``jump_write`` words apart in a
bank. The arithmetic is :func:`.engines.pool_tile`'s. POOLINIT has no field for the average's
multiplier: the engine takes the hardware's table,
:func:`~xir.dialects.quant.kernels.avg_pool_factor` of the kernel.
"""

from __future__ import annotations

import numpy as np

from xir.dialects.quant.kernels import avg_pool_factor

from .compute import ConvState, ring_slots
from .datamove import BankMap
from .engines import pool_tile
from .memory import BankGroupMemory, Instr


def choice(ins: Instr, name: str) -> str:
    """The name of enumerated field ``name``'s code in ``ins``; a fault for a code the field
    does not define."""
    choices = ins.spec.field(name).choices
    if ins[name] >= len(choices):
        raise ins.fault(name, f"is not a code of {name} "
                        f"({', '.join(f'{k} {c}' for k, c in enumerate(choices))})")
    return choices[ins[name]]


def add_bytes(table: dict, name: str, n: int) -> None:
    """Add ``n`` bytes to counter ``table`` (bank_read or bank_written) under ``name``."""
    table[name] = table.get(name, 0) + n


def read_rows(ins: Instr, group: BankGroupMemory, rows: int, pixels: int, channels: int,
              jump_read: int) -> np.ndarray:
    """The int8 tile (rows × pixels × channels) a window instruction reads: row k a run of
    ``pixels`` pixels from ring slot ``bank_id_in``, word ``bank_addr_in + k · jump_read``, a
    bank's pixels one pixel's words apart."""
    words = group.words_per_pixel(channels)
    x = np.empty((rows, pixels, channels), np.int8)
    for k in range(rows):
        bank, word = ring_slots(ins, group, "bank_id_in", "bank_addr_in", pixels, words, words,
                                ins["bank_addr_in"] + k * jump_read,
                                f"input row {k} (jump_read = {jump_read})")
        x[k] = group.read(bank, word, channels).view(np.int8)
    return x


def write_pixels(ins: Instr, group: BankGroupMemory, out: np.ndarray, jump_write: int,
                 id_field: str = "bank_id_out", addr_field: str = "bank_addr_out") -> int:
    """Store ``out`` (pixels × channels, int8) from ring slot ``ins[id_field]``, word
    ``ins[addr_field]``, a bank's pixels ``jump_write`` words apart; returns the bank bytes
    written."""
    pixels, channels = out.shape
    words = group.words_per_pixel(channels)
    bank, word = ring_slots(ins, group, id_field, addr_field, pixels, words, jump_write,
                            what=f"output (jump_write = {jump_write})")
    group.write(bank, word, np.ascontiguousarray(out).view(np.uint8))
    return pixels * words * group.group.bank_width


def pool_row(ins: Instr, banks: BankMap, counters, kind: str, kernel: tuple, stride_w: int,
             jumps: tuple, factors: tuple, cp: int) -> None:
    """Run one pooling instruction ``ins`` (POOL or ALU): ``kind`` max or avg over ``kernel``
    (kh, kw) with horizontal stride ``stride_w``, row ``jumps`` (jump_read, jump_write) and the
    average's ``factors`` (multi_factor, shift_factor); CP = ``cp`` channels a group."""
    kh, kw = kernel
    length, channels = ins["length"], ins["channel_group"] * cp
    pt, pl, pb, pr = (ins[f"pad_{s}"] for s in ("top", "left", "bottom", "right"))
    rows = kh - pt - pb
    if rows < 0:
        raise ins.fault("pad_top", f"with pad_bottom = {pb} leaves {rows} of the "
                        f"kernel_h = {kh} rows")
    n_in = (length - 1) * stride_w + kw - pl - pr
    if length and n_in < 0:
        raise ins.fault("pad_left", f"with pad_right = {pr} leaves {n_in} input pixels")
    engine = ins.spec.engine
    by_field = {a.id_field: a for a in ins.spec.banks}
    vin = banks.resolve(ins, "bank_id_in", engine, by_field["bank_id_in"].engine_bank)
    vout = banks.resolve(ins, "bank_id_out", engine, by_field["bank_id_out"].engine_bank)
    if length == 0:
        return
    x = read_rows(ins, vin, rows, n_in, channels, jumps[0])
    out = pool_tile(x, kind, kernel, (1, stride_w), (pt, pl, pb, pr), *factors)
    written = write_pixels(ins, vout, out.reshape(length, channels), jumps[1])
    add_bytes(counters.bank_read, vin.name,
              rows * n_in * vin.words_per_pixel(channels) * vin.group.bank_width)
    add_bytes(counters.bank_written, vout.name, written)


class PoolInitEngine:
    """POOLINIT: keeps the pooling kind, window and jumps for the POOLs after it."""

    mnemonic = "POOLINIT"

    def __init__(self, banks: BankMap, state: ConvState):
        self.banks, self.state = banks, state

    def execute(self, ins: Instr, registers: dict, counters) -> None:
        """Check the kind and window and keep ``ins``."""
        kind = choice(ins, "pool_type")
        if kind not in ("max", "avg"):
            raise ins.fault("pool_type", f"({kind}) is not simulated (max and avg are)")
        if kind not in self.banks.target.pool.pool_type:
            raise ins.fault("pool_type", f"({kind}) is not a pooling of {self.banks.target.name}"
                            f"'s pool engine")
        for name in ("kernel_h", "kernel_w", "stride_w"):
            if ins[name] == 0:
                raise ins.fault(name, "must be at least 1")
        if ins["shift_cut"]:
            raise ins.fault("shift_cut", "is not simulated: a pooling keeps its fix point "
                            "(shift_cut 0)")
        self.state.init = ins


class PoolEngine:
    """POOL: ``length`` output pixels of one row × ``channel_group`` · CP channels, the max or
    the average (the table's factor for the kernel) of each window."""

    mnemonic = "POOL"

    def __init__(self, banks: BankMap, state: ConvState):
        self.banks, self.state = banks, state

    def execute(self, ins: Instr, registers: dict, counters) -> None:
        """Pool one row segment (:func:`pool_row`)."""
        init = self.state.init
        if init is None:
            raise ins.fault(None, "comes before any POOLINIT: the pool engine has no window")
        kind = choice(init, "pool_type")
        kernel = (init["kernel_h"], init["kernel_w"])
        factors = avg_pool_factor(*kernel) if kind == "avg" else (1, 0)
        pool_row(ins, self.banks, counters, kind, kernel, init["stride_w"],
                 (init["jump_read"], init["jump_write"]), factors,
                 self.banks.target.pool.channel_parallel)


def pool_engines(banks: BankMap) -> tuple:
    """The POOLINIT and POOL engines of one machine, sharing their state; none on a target
    without a pool engine (ISA1 pools on its ALU)."""
    if banks.target.pool is None:
        return ()
    state = ConvState()
    return PoolInitEngine(banks, state), PoolEngine(banks, state)
