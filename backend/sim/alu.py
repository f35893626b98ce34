"""The ALU of ISA1 targets: ALUINIT and ALU. ``exec_type`` dwconv is a depthwise convolution
read and computed as the conv engine's CONV reads its fields (:mod:`.compute`), with
:func:`.engines.depthwise_conv_tile`; max_pool and avg_pool are pooling, read as the pool
engine's POOL (:func:`.pool.pool_row`), the average's factor from ALUINIT's multi_factor and
shift_factor. The other exec types are not simulated (docs/simulator.md)."""

from __future__ import annotations

from . import dwbatch
from .compute import ConvInitEngine, DepthwiseConvEngine, engine_pair
from .datamove import BankMap
from .memory import Instr
from .pool import choice, pool_row

#: exec_type → the pooling kind it computes.
POOLS = {"max_pool": "max", "avg_pool": "avg"}


class AluInitEngine(ConvInitEngine):
    """ALUINIT: as CONVINIT, for the ALU; exec_type dwconv, max_pool and avg_pool are
    simulated."""

    mnemonic = "ALUINIT"

    def execute(self, ins: Instr, registers: dict, counters) -> None:
        """Check the operation and keep ``ins``."""
        kind = choice(ins, "exec_type")
        if kind != "dwconv" and kind not in POOLS:
            raise ins.fault("exec_type", f"({kind}) is not simulated (dwconv, max_pool and "
                                         f"avg_pool are)")
        if kind in POOLS and ins["act_type"]:
            raise ins.fault("act_type", f"is set: the ALU's {kind} fuses no nonlinear here")
        super().execute(ins, registers, counters)


class AluEngine(DepthwiseConvEngine):
    """ALU: ``length`` output pixels × ``channel_group`` · CP channels of the operation
    ALUINIT set: a depthwise convolution, or a max or average pooling (its weight and bias
    fields unread)."""

    mnemonic = "ALU"
    def execute_batch(self, run, registers: dict, counters) -> None:
        """A run of ALUs: dwconv in batches once the run ran clean instruction by instruction
        (:mod:`.dwbatch`, the layout kept in ``run.memo``); pooling instruction by
        instruction."""
        init = self.state.init
        if init is None or choice(init, "exec_type") != "dwconv":
            for k in range(len(run)):
                self.execute(run.instr(k), registers, counters)
            return
        key = ("dwconv", tuple(init.values.items()))
        layout = run.memo.get(key)
        if layout is None or layout.hazard:
            for k in range(len(run)):
                self.execute(run.instr(k), registers, counters)
            if layout is None:  # it ran clean: the next time (image) goes in batches
                run.memo[key] = dwbatch.DwLayout(self, run)
            return
        dwbatch.execute(self, layout, init, counters)

    def execute(self, ins: Instr, registers: dict, counters) -> None:
        """Run the ALUINIT's operation on one row segment."""
        init = self.state.init
        kind = POOLS.get(choice(init, "exec_type")) if init is not None else None
        if kind is None:
            super().execute(ins, registers, counters)
            return
        factors = (init["multi_factor"], init["shift_factor"]) if kind == "avg" else (1, 0)
        pool_row(ins, self.banks, counters, kind, (init["kernel_h"], init["kernel_w"]),
                 init["stride_w"], (init["jump_read"], init["jump_write"]), factors,
                 self.engine.channel_parallel)


def alu_engines(banks: BankMap) -> tuple:
    """The ALUINIT and ALU engines of one machine, sharing their state; none on a target
    without an ALU."""
    return engine_pair(banks, AluInitEngine, AluEngine, banks.target.alu)
