"""The dpuisa verifier's static bank-extent check of compute instructions
(dialects/dpuisa/extents.py), against the simulator: programs the codegen emits for random
convolutions, depthwise convolutions, poolings and eltwise ops verify; moving one compute
instruction's bank address to the last word its access still fits keeps the program verified
and running, one word further makes the simulator fault and the verifier reject it with the
simulator's own message (same instruction, same field)."""

from __future__ import annotations

import numpy as np
import pytest

from xir.backend.sim.machine import Machine
from xir.backend.targets import load_target
from xir.diagnostics import XirError
from xir.dialects.dpuisa import extents, make_instruction, make_program
from xir.parser import parse
from xir.passes.codegen import plan_layout
from xir.passes.codegen.emit import KINDS, emit_conv
from xir.passes.codegen.emit_eltwise import eltwise_items
from xir.passes.codegen.emit_pool import pool_items
from xir.verifier import verify

from test_codegen_conv import conv_module, ddr_image, random_case, the_func
from test_codegen_pool_eltwise import eltwise_module, pool_module, random_eltwise, random_pool

ISA1 = ("DPUCZDX8G_ISA1_B512", "DPUCZDX8G_ISA1_B4096")
ISA0, ISA2 = "DPUCZDX8G_ISA0_B4096", "DPUCAHX8H_ISA2"
TARGETS = {name: load_target(name) for name in (*ISA1, ISA0, ISA2)}
#: kind → the targets that run it (depthwise: the ISA1 ALU and ISA0's dwconv engine)
KIND_TARGETS = {"conv": (*ISA1, ISA0), "depthwise": (*ISA1, ISA0), "pool": (*ISA1, ISA0, ISA2),
                "eltwise": (*ISA1, ISA0, ISA2)}
DWINIT_ACTS = ("none", "relu", "leaky_relu")  # the nonlinears DWINIT's fields express
CASES = [(kind, name, case) for kind, names in KIND_TARGETS.items() for name in names
         for case in range(5)]


def emitted(kind: str, target, rng):
    """(items, func, layout): the [mnemonic, fields] items (END included) of one random op of
    ``kind`` emitted for ``target``."""
    if kind in ("conv", "depthwise"):
        shape = random_case(rng)
        if kind == "depthwise":
            shape["cout"] = shape["cin"]
            if target.dwconv is not None and shape["act"] not in DWINIT_ACTS:
                shape["act"] = DWINIT_ACTS[int(rng.integers(len(DWINIT_ACTS)))]
        func = the_func(parse(conv_module(rng, **shape, depthwise=kind == "depthwise")))
        layout = plan_layout(func, target)
        (op,) = [o for o in func.walk() if o.name in KINDS]
        items = [[i.spec.mnemonic, i.field_values()] for i in emit_conv(op, layout, target)]
    else:
        text = (pool_module(**random_pool(rng)) if kind == "pool" else
                eltwise_module(**random_eltwise(rng, target)))
        func = the_func(parse(text))
        layout = plan_layout(func, target)
        (op,) = [o for o in func.walk() if o.name in ("dpu.pool_fix", "dpu.eltwise_fix")]
        emitter = pool_items if kind == "pool" else eltwise_items
        items = emitter(op, layout, target)
    return items + [["END", {}]], func, layout


def program_of(items, target):
    return make_program([make_instruction(m, **v) for m, v in items], target=target.name)


def accesses(items, target) -> list[tuple[int, extents.Extent]]:
    """(instruction index, access) of every compute instruction's non-empty accesses, from
    the extents module's walk (the INIT of each engine kept in program order)."""
    out, inits = [], {}
    for n, (mnemonic, values) in enumerate(items):
        if mnemonic in extents.INIT_OF.values():
            inits[mnemonic] = values
        elif mnemonic in extents.INIT_OF:
            groups = {f: g for f in values if f.startswith("bank_id")
                      for g in target.bank_groups if values[f] in g.bank_ids}
            init = inits[extents.INIT_OF[mnemonic]]
            out += [(n, e) for e in extents.compute_extents(mnemonic, init, values, target,
                                                            groups) if not e.empty]
    return out


def sim_error(program, target, layout, func) -> str | None:
    """The simulator's fault running ``program`` on a DDR image of ``func``'s layout (zero
    input), without its ``error:`` prefix, or None when it runs to the end."""
    x = np.zeros(layout.of(func.regions[0].blocks[0].args[0]).shape, np.int8)
    ddr, base = ddr_image(layout, layout.of(func.regions[0].blocks[0].args[0]), x)
    try:
        Machine(target, ddr.tobytes()).run(program, registers={0: 0, 1: base})
    except XirError as e:
        return str(e).removeprefix("error: ")
    return None


def verifier_error(program) -> str | None:
    try:
        verify(program)
    except XirError as e:
        return str(e)
    return None


@pytest.mark.parametrize("kind, target_name, case", CASES)
def test_moved_bank_address_is_rejected_exactly_when_the_simulator_faults(kind, target_name,
                                                                          case):
    """Emitted programs verify; an access moved to end on the group's last word verifies and
    runs; moved 1 to span words further (its address still within the depth, so only the
    whole access passes it), the simulator faults and the verifier names the same
    instruction and field, with the simulator's text. (An op whose accesses are all one word
    long moves one to the depth: the op's own address check names the field.)"""
    target = TARGETS[target_name]
    rng = np.random.default_rng(1000 * case + 7 * len(kind) + len(target_name))
    items, func, layout = emitted(kind, target, rng)
    assert verifier_error(program_of(items, target)) is None
    found = accesses(items, target)
    spanning = [(n, e) for n, e in found if e.last() > e.addr] or found
    fields = sorted({(items[n][0], e.addr_field) for n, e in spanning})  # each field alike
    field = fields[int(rng.integers(len(fields)))]
    spanning = [(n, e) for n, e in spanning if (items[n][0], e.addr_field) == field]
    n, access = spanning[int(rng.integers(len(spanning)))]
    depth, span = access.group.bank_depth, access.last() - access.addr
    fits = depth - 1 - span
    moved = [[m, dict(v)] for m, v in items]
    moved[n][1][access.addr_field] = fits
    program = program_of(moved, target)
    assert verifier_error(program) is None
    assert sim_error(program, target, layout, func) is None
    moved[n][1][access.addr_field] = fits + 1 + int(rng.integers(max(span, 1)))
    program = program_of(moved, target)
    fault = sim_error(program, target, layout, func)
    assert fault is not None and fault.startswith(f"instruction {n} ({items[n][0]} at word ")
    assert f": field '{access.addr_field}' = " in fault
    message = verifier_error(program)
    if span:
        assert message is not None and fault in message, (fault, message)
    else:
        assert message is not None and f"'dpuisa.{items[n][0].lower()}' op " \
            f"{access.addr_field} = {depth} is beyond" in message, message


def one_conv(init: dict, conv: dict, target="DPUCZDX8G_ISA1_B4096", mnemonic="CONV"):
    init_mnemonic = extents.INIT_OF[mnemonic]
    return make_program([make_instruction(init_mnemonic, **init),
                         make_instruction(mnemonic, **conv), make_instruction("END")],
                        target=target)


CONV_INIT = dict(kernel_h=3, kernel_w=3, stride_h=1, stride_w=1, jump_read=1, jump_write=1)
CONV_FIELDS = dict(bank_id_out=8, bank_id_weights=16, bank_id_bias=33, length=4,
                   channel_group=1, pad_left=1, pad_right=1)


@pytest.mark.parametrize("init, fields, mnemonic", [
    # an input row past the depth (the docs' example), a later row than the first
    ({**CONV_INIT, "jump_read": 2047}, CONV_FIELDS, "CONV"),
    ({**CONV_INIT, "jump_read": 1000}, {**CONV_FIELDS, "bank_addr_in": 100}, "CONV"),
    # output pixels closer than their words overlap (64 channels: 4 words a pixel)
    ({**CONV_INIT, "jump_write": 1}, {**CONV_FIELDS, "length": 12}, "ALU"),
    # weights: 9 blocks of OCP pixels from word 2040 of CONVW
    (CONV_INIT, {**CONV_FIELDS, "bank_addr_weights": 2040}, "CONV"),
    # pads leaving fewer than 0 rows or pixels
    (CONV_INIT, {**CONV_FIELDS, "pad_top": 2, "pad_bottom": 2}, "CONV"),
    ({**CONV_INIT, "kernel_w": 1}, {**CONV_FIELDS, "length": 1, "pad_left": 2}, "CONV"),
])
def test_hand_written_faults_match_the_simulator(init, fields, mnemonic):
    """The verifier's message contains the simulator's fault for the same program."""
    if mnemonic == "ALU":
        fields = {**fields, "bank_id_weights": 32, "channel_group": 4}
    program = one_conv(init, fields, mnemonic=mnemonic)
    machine = Machine("DPUCZDX8G_ISA1_B4096", 64)
    with pytest.raises(XirError) as sim:
        machine.run(program.instructions, registers={0: 0, 1: 0})
    fault = str(sim.value).removeprefix("error: ")
    assert fault.startswith("instruction 1 (")
    with pytest.raises(XirError) as e:
        verify(program)
    assert fault in str(e.value)


def test_compute_before_its_init_is_left_to_the_simulator():
    """No INIT, no window: the verifier checks only the fields and banks (the simulator
    faults: 'comes before any CONVINIT')."""
    verify(make_program([make_instruction("CONV", **CONV_FIELDS), make_instruction("END")],
                        target="DPUCZDX8G_ISA1_B4096"))


def test_the_last_init_of_the_engine_counts():
    """A second CONVINIT with a longer row jump makes the same CONV reach past the depth; an
    ELEWINIT in between (another engine) changes nothing."""
    ops = [make_instruction("CONVINIT", **CONV_INIT),
           make_instruction("CONV", **{**CONV_FIELDS, "bank_addr_in": 2000}),
           make_instruction("ELEWINIT", jump_read_0=5000),
           make_instruction("CONVINIT", **{**CONV_INIT, "jump_read": 30}),
           make_instruction("CONV", **{**CONV_FIELDS, "bank_addr_in": 2000}),
           make_instruction("END")]
    with pytest.raises(XirError) as e:
        verify(make_program(ops, target="DPUCZDX8G_ISA1_B4096"))
    assert "instruction 4 (CONV at word 16): field 'bank_addr_in' = 2000 input row 2" in \
        str(e.value)
