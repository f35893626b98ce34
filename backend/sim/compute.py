"""The compute engines: :class:`ConvInitEngine` (CONVINIT) and :class:`ConvEngine` (CONV), and
the ALU's depthwise convolution (:class:`AluInitEngine`, :class:`AluEngine`: ALUINIT / ALU with
exec_type dwconv, the same fields read the same way, ``depthwise_conv_tile`` instead), which
read their tiles out of the banks by the bank contract of docs/simulator.md, call
:func:`.engines.conv_tile` (the arithmetic is written there, not here) and write the output
pixels back by the same contract.

The meaning of each CONVINIT and CONV field is in docs/simulator.md ("The conv engine"). In
short, one CONV computes ``length`` output pixels of one output row × OCP output channels:
``kernel_h - pad_top - pad_bottom`` input rows from ``bank_addr_in``, ``jump_read`` words
apart (so the row jump carries a vertical dilation), each a run of
``(length - 1) · stride_w + kernel_w - pad_left - pad_right`` pixels of ``channel_group`` ·
ICP bytes from ring slot ``bank_id_in``; the weights of one OCP block from
``bank_addr_weights`` (kh · kw · channel_group blocks of OCP pixels of ICP bytes, as LOAD
put the packed weights there); OCP bias bytes from ``bank_addr_bias``; output pixels from ring
slot ``bank_id_out``, ``jump_write`` words apart in a bank.

:meth:`ConvEngine.execute` is the reference, one CONV at a time; the machine hands the conv
engine whole runs of CONVs (:meth:`ConvEngine.execute_batch`, :mod:`.convbatch`), which give
the same banks, faults and counters.
"""

from __future__ import annotations

import attrs
import numpy as np

from xir.diagnostics import XirError
from xir.dialects.dpuisa import isa
from xir.dialects.quant import fixed

from . import convbatch
from .datamove import BankMap
from .engines import conv_tile, depthwise_conv_tile
from .memory import BankGroupMemory, Instr
from .table import run_batched

#: act_type code → the quant dialect's activation code (fixed.ACTIVATIONS).
_ACTS = {"none": fixed.NONE, "relu": fixed.RELU, "relu_six": fixed.RELU6,
         "leaky_relu": fixed.LEAKY_RELU, "hsigmoid": fixed.HARD_SIGMOID,
         "hswish": fixed.HARD_SWISH}


def ring_slots(ins: Instr, group: BankGroupMemory, id_field: str, addr_field: str,
               pixels: int, words: int, jump: int, addr: int | None = None,
               what: str = "") -> tuple[np.ndarray, np.ndarray]:
    """(bank index, word address) arrays (pixels × words) of a run of ``pixels`` pixels of
    ``words`` words from ring slot ``ins[id_field]`` and word ``addr`` (default
    ``ins[addr_field]``), pixels sharing a bank ``jump`` words apart: the bank contract of
    :meth:`~.memory.BankGroupMemory.slots`, for the fields of a compute instruction. Faults
    name ``addr_field`` (or ``id_field``). Kept in ``ins.memo`` (the fields decide it): an
    instruction a plan runs again (the next image) skips the work."""
    g = group.group
    addr = ins[addr_field] if addr is None else addr
    key = ("slots", g.name, id_field, pixels, words, jump, addr)
    hit = ins.memo.get(key)
    if hit is not None:
        return hit
    depth = f"bank group {g.name}'s depth {g.bank_depth} (words 0-{g.bank_depth - 1})"
    q = ins[id_field] - g.base_id + np.arange(pixels, dtype=np.int64)
    turn = q // g.bank_num
    if pixels and words and turn[-1] > 0 and jump < words:
        raise ins.fault(addr_field, f"{what}: pixels {jump} word(s) apart in a bank overlap "
                        f"(a pixel takes {words} word(s) of bank group {g.name})")
    word = addr + turn[:, None] * jump + np.arange(words, dtype=np.int64)[None, :]
    if word.size and (word.max() >= g.bank_depth or addr < 0):
        raise ins.fault(addr_field, f"{what}: {pixels} pixel(s) of {words} word(s), {jump} "
                        f"word(s) apart in a bank, reach word {int(word.max())}, which "
                        f"exceeds {depth}")
    bank = np.broadcast_to((q % g.bank_num)[:, None], word.shape)
    word.flags.writeable = False
    ins.memo[key] = bank, word
    return bank, word


@attrs.define
class Tile:
    """What one CONV (or depthwise ALU) reads and writes (:meth:`ConvEngine.locate`): its
    shape, bank groups, the (bank, word) arrays of each input row, of the weights, the bias
    and the output, the nonlinear and the counter bytes."""

    rows: int
    n_in: int
    length: int
    channels: int
    pads: tuple
    vin: BankGroupMemory
    vout: BankGroupMemory
    wgrp: BankGroupMemory
    bgrp: BankGroupMemory
    inputs: list = attrs.Factory(list)
    weights: tuple = ()
    bias: tuple = ()
    output: tuple = ()
    blocks: int = 0
    out_channels: int = 0
    act: tuple = ()
    counts: list = attrs.Factory(list)


class ConvState:
    """What CONVINIT sets and CONV reads: the CONVINIT's field values (None before one)."""

    def __init__(self):
        self.init: Instr | None = None


class _Compute:
    def __init__(self, banks: BankMap, state: ConvState):
        self.banks = banks
        self.state = state
        self.engine = banks.target.conv


class ConvInitEngine(_Compute):
    """CONVINIT: keeps the shifts, nonlinear, window and jumps for the CONVs after it."""

    mnemonic = "CONVINIT"

    def execute(self, ins: Instr, registers: dict, counters) -> None:
        """Check the window fields and keep ``ins``."""
        for name in ("kernel_h", "kernel_w", "stride_w"):
            if ins[name] == 0:
                raise ins.fault(name, "must be at least 1")
        self.state.init = ins


def nonlinear_of(init: Instr) -> tuple:
    """The nonlinear tuple of :func:`.engines.nonlinear` from CONVINIT's fields: relu_six's
    bound from shift_hsigmoid = output_fp + 1, hsigmoid's hsigmoid_in from shift_hsigmoid and
    output_fp = shift_hswish, hswish's hsigmoid_in = shift_hsigmoid - 7 (docs/simulator.md)."""
    act = isa.ACT_TYPES[init["act_type"]]
    if act not in _ACTS:
        raise init.fault("act_type", f"({act}) is not a nonlinear the conv engine runs")
    code, sh, sw = _ACTS[act], init["shift_hsigmoid"], init["shift_hswish"]
    if code == fixed.RELU6:
        return code, fixed.relu6_bound(sh - 1), 0, 0, 0
    if code == fixed.HARD_SIGMOID:
        return code, 0, sh - 14 + sw, sh, 0
    if code == fixed.HARD_SWISH:
        return code, 0, sh - 7, sh, sw
    return code, 0, 0, 0, 0


class ConvEngine(_Compute):
    """CONV: one output row segment of ``length`` pixels × OCP channels."""

    mnemonic = "CONV"
    depthwise = False

    def __init__(self, banks: BankMap, state: ConvState):
        super().__init__(banks, state)
        self.weights = convbatch.WeightCache()
        self.scratch = convbatch.Scratch()

    def execute_batch(self, run, registers: dict, counters) -> None:
        """A run of CONVs after one CONVINIT, as one batch (:mod:`.convbatch`): the same
        banks, faults and counters as :meth:`execute` one by one. Subclasses (the depthwise
        ALU) and runs a batch cannot take go instruction by instruction."""
        single = lambda ins: self.execute(ins, registers, counters)  # noqa: E731
        init = self.state.init
        if init is None or self.depthwise or type(self).execute is not ConvEngine.execute:
            return run_batched(run, np.ones(len(run), bool), None, single)
        try:
            act = nonlinear_of(init)
        except XirError:
            return run_batched(run, np.ones(len(run), bool), None, single)
        key = ("conv", tuple(init.values.items()))
        sc = run.memo.get(key)  # fields alone: a plan keeps it for every image
        if sc is None:
            sc = run.memo[key] = convbatch.Screen(self, run, init)
        if sc.hazard():
            return run_batched(run, np.ones(len(run), bool), None, single)

        def batch(part):
            lo = part.offset
            if not convbatch.execute(self, sc, lo, lo + len(part), init, act, counters,
                                     self.weights, self.scratch):
                run_batched(part, np.ones(len(part), bool), None, single)

        run_batched(run, sc.suspect, batch, single)

    def parallel(self) -> tuple[int, int]:
        """(ICP, OCP): the input channels of a channel group, the output channels written."""
        return self.engine.input_channel_parallel, self.engine.output_channel_parallel

    def _group(self, ins: Instr, access: isa.BankAccess) -> BankGroupMemory:
        return self.banks.resolve(ins, access.id_field, ins.spec.engine, access.engine_bank)

    def locate(self, ins: Instr) -> Tile | None:
        """Where ``ins`` reads and writes, every field checked on the way (its faults, in
        :meth:`execute`'s order: window, groups, input rows, weights, bias, nonlinear,
        output); None for a CONV of no pixels."""
        init = self.state.init
        if init is None:
            raise ins.fault(None, "comes before any CONVINIT: the conv engine has no window")
        icp, ocp = self.parallel()
        kh, kw, sw = init["kernel_h"], init["kernel_w"], init["stride_w"]
        length, groups = ins["length"], ins["channel_group"]
        pt, pl, pb, pr = (ins[f"pad_{s}"] for s in ("top", "left", "bottom", "right"))
        rows = kh - pt - pb
        if rows < 0:
            raise ins.fault("pad_top", f"with pad_bottom = {pb} leaves {rows} of the "
                            f"kernel_h = {kh} rows")
        if length == 0:
            return None
        n_in = (length - 1) * sw + kw - pl - pr
        if n_in < 0:
            raise ins.fault("pad_left", f"with pad_right = {pr} leaves {n_in} input pixels")
        by_field = {a.id_field: a for a in ins.spec.banks}
        t = Tile(rows=rows, n_in=n_in, length=length, channels=groups * icp,
                 pads=(pt, pl, pb, pr), vin=self._group(ins, by_field["bank_id_in"]),
                 vout=self._group(ins, by_field["bank_id_out"]),
                 wgrp=self._group(ins, by_field["bank_id_weights"]),
                 bgrp=self._group(ins, by_field["bank_id_bias"]))
        words_in = t.vin.words_per_pixel(t.channels)
        t.inputs = [ring_slots(ins, t.vin, "bank_id_in", "bank_addr_in", n_in, words_in,
                               words_in, ins["bank_addr_in"] + k * init["jump_read"],
                               f"input row {k} (jump_read = {init['jump_read']})")
                    for k in range(rows)]
        # weights: conv, kh · kw · groups OCP × ICP blocks (pack_weights); depthwise, per CP
        # group kh · kw pixels of CP bytes (pack_depthwise_weights)
        t.blocks = groups * kh * kw if self.depthwise else kh * kw * groups * ocp
        words_w = t.wgrp.words_per_pixel(icp)
        t.weights = ring_slots(ins, t.wgrp, "bank_id_weights", "bank_addr_weights", t.blocks,
                               words_w, words_w, what="weights")
        t.out_channels = t.channels if self.depthwise else ocp
        words_b = t.bgrp.words_per_pixel(ocp)
        t.bias = ring_slots(ins, t.bgrp, "bank_id_bias", "bank_addr_bias",
                            groups if self.depthwise else 1, words_b, words_b, what="bias")
        t.act = nonlinear_of(init)
        words_out = t.vout.words_per_pixel(t.out_channels)
        t.output = ring_slots(ins, t.vout, "bank_id_out", "bank_addr_out", length, words_out,
                              init["jump_write"], what=f"output (jump_write = "
                                                       f"{init['jump_write']})")
        t.counts = [("bank_read", t.vin.name, rows * n_in * words_in * t.vin.group.bank_width),
                    ("bank_read", t.wgrp.name, t.blocks * words_w * t.wgrp.group.bank_width),
                    ("bank_read", t.bgrp.name, words_b * t.bgrp.group.bank_width),
                    ("bank_written", t.vout.name, length * words_out * t.vout.group.bank_width)]
        return t

    def execute(self, ins: Instr, registers: dict, counters) -> None:
        """Read the input rows, weights and bias, run :func:`conv_tile`, write the pixels."""
        t = self.locate(ins)
        if t is None:
            return
        init = self.state.init
        icp, ocp = self.parallel()
        kh, kw, sw = init["kernel_h"], init["kernel_w"], init["stride_w"]
        groups = ins["channel_group"]
        x = np.empty((t.rows, t.n_in, t.channels), np.int8)
        for k, (bank, word) in enumerate(t.inputs):
            x[k] = t.vin.read(bank, word, t.channels).view(np.int8)
        w = t.wgrp.read(*t.weights, icp).view(np.int8)
        bias = t.bgrp.read(*t.bias, ocp).view(np.int8).reshape(t.out_channels)
        common = dict(stride=(1, sw), pad=t.pads, shift_bias=init["shift_bias"],
                      shift_cut=init["shift_cut"], act=t.act)
        if self.depthwise:
            w = w.reshape(groups, kh, kw, icp).transpose(1, 2, 0, 3).reshape(kh, kw, t.channels)
            out = depthwise_conv_tile(x, np.ascontiguousarray(w), bias, **common)
        else:
            w = w.reshape(kh, kw, groups, ocp, icp).transpose(3, 0, 1, 2, 4)
            out = conv_tile(x, np.ascontiguousarray(w.reshape(ocp, kh, kw, t.channels)), bias,
                            **common)
        t.vout.write(*t.output, out.reshape(t.length, t.out_channels).view(np.uint8))
        for what, name, n in t.counts:
            table = getattr(counters, what)
            table[name] = table.get(name, 0) + n


class DepthwiseConvEngine(ConvEngine):
    """A channel-wise engine's depthwise convolution (the ALU's dwconv, ISA0's DPTWISE): the
    conv engine's reader and fields, ``channel_group`` groups of CP channels in and out."""

    depthwise = True

    def parallel(self) -> tuple[int, int]:
        """(CP, CP): a channel group in and out."""
        cp = self.engine.channel_parallel
        return cp, cp


def engine_pair(banks: BankMap, init_class, compute_class, engine) -> tuple:
    """An init engine and its compute engine for target engine ``engine`` (none when the
    target lacks it), sharing one :class:`ConvState`."""
    if engine is None:
        return ()
    state = ConvState()
    init, compute = init_class(banks, state), compute_class(banks, state)
    init.engine = compute.engine = engine
    return init, compute


def conv_engines(banks: BankMap) -> tuple:
    """The CONVINIT and CONV engines of one machine, sharing their state."""
    return engine_pair(banks, ConvInitEngine, ConvEngine, banks.target.conv)
