"""The depthwise-convolution engine of ISA0 targets: DWINIT and DPTWISE (docs/simulator.md,
"The dwconv engine"). They read their fields as the ISA1 ALU's depthwise convolution
(ALUINIT / ALU with exec_type dwconv, :mod:`.alu`) does, with the dwconv engine's CP and bank
groups: DWINIT holds CONVINIT's shifts, nonlinear, window and jumps (no hard sigmoid or relu6
fields, so its nonlinear is none, relu or leaky_relu); a DPTWISE computes ``length`` output
pixels × ``channel_group`` · CP channels with :func:`.engines.depthwise_conv_tile`."""

from __future__ import annotations

from .compute import ConvInitEngine, DepthwiseConvEngine, engine_pair
from .datamove import BankMap
from .memory import Instr
from .pool import choice

#: The nonlinears DWINIT's fields can express (relu_six's bound and the hard sigmoid's fix
#: points have no field there).
ACTIVATIONS = ("none", "relu", "leaky_relu")


class DwInitEngine(ConvInitEngine):
    """DWINIT: keeps the shifts, nonlinear, window and jumps for the DPTWISEs after it."""

    mnemonic = "DWINIT"

    def execute(self, ins: Instr, registers: dict, counters) -> None:
        """Check the nonlinear and window and keep ``ins`` (with the hard sigmoid shifts the
        conv engine's nonlinear reader expects, 0)."""
        act = choice(ins, "act_type")
        if act not in ACTIVATIONS:
            raise ins.fault("act_type", f"({act}) is not simulated on the dwconv engine "
                                        f"({', '.join(ACTIVATIONS)} are)")
        values = {**ins.values, "shift_hsigmoid": 0, "shift_hswish": 0}
        super().execute(Instr(ins.index, ins.word, ins.spec, values), registers, counters)


class DptwiseEngine(DepthwiseConvEngine):
    """DPTWISE: a depthwise convolution of ``length`` output pixels × ``channel_group`` · CP
    channels (the ALU's dwconv, on the dwconv engine)."""

    mnemonic = "DPTWISE"
    def execute(self, ins: Instr, registers: dict, counters) -> None:
        """Run the depthwise convolution (the conv engine's reader, depthwise)."""
        if self.state.init is None:
            raise ins.fault(None, "comes before any DWINIT: the dwconv engine has no window")
        super().execute(ins, registers, counters)


def dwconv_engines(banks: BankMap) -> tuple:
    """The DWINIT and DPTWISE engines of one machine, sharing their state; none on a target
    without a dwconv engine."""
    return engine_pair(banks, DwInitEngine, DptwiseEngine, banks.target.dwconv)
