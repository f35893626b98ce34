"""The ALU of ISA1 targets: ALUINIT and ALU. ``exec_type`` dwconv is a depthwise convolution
read and computed as the conv engine's CONV reads its fields (:mod:`.compute`), with
:func:`.engines.depthwise_conv_tile`; pooling and the other exec types come next
(docs/simulator.md)."""

from __future__ import annotations

from xir.dialects.dpuisa import isa

from .compute import ConvEngine, ConvInitEngine, ConvState
from .datamove import BankMap
from .memory import Instr


class AluInitEngine(ConvInitEngine):
    """ALUINIT: as CONVINIT, for the ALU; only ``exec_type`` dwconv is simulated yet."""

    mnemonic = "ALUINIT"

    def execute(self, ins: Instr, registers: dict, counters) -> None:
        """Check the operation and keep ``ins``."""
        kind = isa.ALUINIT.field("exec_type").choices[ins["exec_type"]]
        if kind != "dwconv":
            raise ins.fault("exec_type", f"({kind}) is not simulated yet (dwconv is)")
        super().execute(ins, registers, counters)


class AluEngine(ConvEngine):
    """ALU with ``exec_type`` dwconv: a depthwise convolution of ``length`` output pixels ×
    ``channel_group`` · CP channels (docs/simulator.md)."""

    mnemonic = "ALU"
    depthwise = True

    def parallel(self) -> tuple[int, int]:
        cp = self.engine.channel_parallel
        return cp, cp


def alu_engines(banks: BankMap) -> tuple:
    """The ALUINIT and ALU engines of one machine (depthwise convolution), sharing their
    state; none on a target without an ALU."""
    if banks.target.alu is None:
        return ()
    state = ConvState()
    init, alu = AluInitEngine(banks, state), AluEngine(banks, state)
    init.engine = alu.engine = banks.target.alu
    return init, alu
