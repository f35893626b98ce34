"""The eltwise engine: ELEWINIT and ELEW (docs/simulator.md, "The eltwise engine").

ELEWINIT sets the operation (``elew_type`` add or mult), the nonlinear (``act_type``: none,
relu, leaky_relu), the shifts (``shift_read_0`` / ``shift_read_1`` for add, ``shift_write``)
and the jumps: a bank's pixels of input 0, input 1 and the output are ``jump_read_0``,
``jump_read_1`` and ``jump_write`` words apart. An ELEW computes ``length`` pixels ×
``channel_group`` · CP channels: input k a run of pixels from ring slot ``bank_id_in_k``, word
``bank_addr_in_k``, the output from ``bank_id_out`` / ``bank_addr_out``, by the bank contract;
the arithmetic is :func:`.engines.eltwise_tile`'s. The machine hands the engine whole runs of
ELEWs (:meth:`ElewEngine.execute_batch`, :mod:`.elewbatch`).
"""

from __future__ import annotations

import numpy as np

from . import elewbatch
from .compute import ConvState, ring_slots
from .datamove import BankMap
from .engines import eltwise_tile, nonlinear
from .memory import Instr
from .pool import add_bytes, choice, write_pixels
from .table import run_batched

#: act_type → the quant dialect's activation, for the nonlinears an eltwise fuses.
ACTIVATIONS = {"none": "none", "relu": "relu", "leaky_relu": "leaky_relu"}
KINDS = {"add": "add", "mult": "mul"}  # elew_type → eltwise_tile's kind


class ElewInitEngine:
    """ELEWINIT: keeps the operation, nonlinear, shifts and jumps for the ELEWs after it."""

    mnemonic = "ELEWINIT"

    def __init__(self, banks: BankMap, state: ConvState):
        self.banks, self.state = banks, state

    def execute(self, ins: Instr, registers: dict, counters) -> None:
        """Check the operation and nonlinear and keep ``ins``."""
        kind = choice(ins, "elew_type")
        engine = self.banks.target.eltwise
        if kind not in engine.elew_type:
            raise ins.fault("elew_type", f"({kind}) is not an operation of "
                            f"{self.banks.target.name}'s eltwise engine "
                            f"({', '.join(engine.elew_type)})")
        act = choice(ins, "act_type")
        if act not in ACTIVATIONS:
            raise ins.fault("act_type", f"({act}) is not a nonlinear the eltwise engine runs "
                            f"({', '.join(ACTIVATIONS)})")
        self.state.init = ins


class ElewEngine:
    """ELEW: ``length`` pixels × ``channel_group`` · CP channels of two inputs combined."""

    mnemonic = "ELEW"

    def __init__(self, banks: BankMap, state: ConvState):
        self.banks, self.state = banks, state

    def execute_batch(self, run, registers: dict, counters) -> None:
        """A run of ELEWs after one ELEWINIT, in batches (:mod:`.elewbatch`): the same banks,
        faults and counters as :meth:`execute` one by one. The screen is kept on the run
        (``run.memo``), which a plan keeps for every image."""
        single = lambda ins: self.execute(ins, registers, counters)  # noqa: E731
        init = self.state.init
        if init is None:
            return run_batched(run, np.ones(len(run), bool), None, single)
        key = ("elew", tuple(init.values.items()))
        sc = run.memo.get(key)
        if sc is None:
            sc = run.memo[key] = elewbatch.ElewScreen(self, run, init)
        if sc.hazard or sc.suspect.all():
            return run_batched(run, np.ones(len(run), bool), None, single)

        def batch(part):
            elewbatch.execute(self, sc, part.offset, part.offset + len(part), init, counters)

        run_batched(run, sc.suspect, batch, single)

    def execute(self, ins: Instr, registers: dict, counters) -> None:
        """Read both inputs, run :func:`eltwise_tile`, write the output pixels."""
        init = self.state.init
        if init is None:
            raise ins.fault(None, "comes before any ELEWINIT: the eltwise engine has no "
                                  "operation")
        engine = self.banks.target.eltwise
        length, channels = ins["length"], ins["channel_group"] * engine.channel_parallel
        groups = {a.id_field: self.banks.resolve(ins, a.id_field, "eltwise", a.engine_bank)
                  for a in ins.spec.banks}
        if length == 0:
            return
        tiles = []
        for k in (0, 1):
            group, jump = groups[f"bank_id_in_{k}"], init[f"jump_read_{k}"]
            words = group.words_per_pixel(channels)
            bank, word = ring_slots(ins, group, f"bank_id_in_{k}", f"bank_addr_in_{k}", length,
                                    words, jump, what=f"input {k} (jump_read_{k} = {jump})")
            tiles.append(group.read(bank, word, channels).view(np.int8))
            add_bytes(counters.bank_read, group.name, length * words * group.group.bank_width)
        act = nonlinear(ACTIVATIONS[choice(init, "act_type")])
        out = eltwise_tile(tiles[0], tiles[1], KINDS[choice(init, "elew_type")],
                           (init["shift_read_0"], init["shift_read_1"]), init["shift_write"],
                           act)
        vout = groups["bank_id_out"]
        add_bytes(counters.bank_written, vout.name,
               write_pixels(ins, vout, out, init["jump_write"]))


def elew_engines(banks: BankMap) -> tuple:
    """The ELEWINIT and ELEW engines of one machine, sharing their state."""
    if banks.target.eltwise is None:
        return ()
    state = ConvState()
    return ElewInitEngine(banks, state), ElewEngine(banks, state)
