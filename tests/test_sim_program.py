"""Running one stream on many images: a machine.Plan (decoded and scheduled once) on fresh and
reset machines; the batch paths whose work a plan keeps (ELEW, depthwise ALU) against the
per-instruction engines; and DpuProgram.run on a batch (one plan per program, target and queue
order; one machine reset between images), every image's result the same as alone and as the
dpu dialect's integer executor."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from test_sim_machine import (ACT_CODES, B4096, assert_batched_equals_per_instruction, message,
                              nhwc_program, per_instruction, program, random_banks)
from xir.backend.compiler import compile_model
from xir.backend.runner import ReferenceExecutor
from xir.backend.sim.machine import Machine
from xir.backend.targets import load_target
from xir.diagnostics import XirError
from xir.dialects.dpuisa import encode, isa
from xir.dialects.dpuisa import make_instruction as mi
from xir.frontends.onnx import import_onnx
from xir.symbols import SymbolTable

DIGITS = Path(__file__).resolve().parent.parent / "examples" / "digits"
TARGET = "DPUCZDX8G_ISA1_B512"


@pytest.fixture(scope="module")
def subgraph():
    """(function, program) of digits_dwsep's DPU subgraph on B512 (depthwise ALU, pooling,
    convs)."""
    data = np.load(DIGITS / "digits.npz")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = compile_model(import_onnx(str(DIGITS / "digits_dwsep.onnx")), TARGET,
                               {"input": data["x_train"][:50].astype(np.float32) / 16})
    (name, program), = result.programs.items()
    return SymbolTable(result.module).lookup(name), program


def test_a_batch_plans_once_and_equals_each_image_alone(subgraph):
    func, program = subgraph
    rng = np.random.default_rng(11)
    args = [rng.integers(-128, 128, (4, *a.type.shape[1:])).astype(np.int8)
            for a in func.regions[0].blocks[0].args]
    expected = ReferenceExecutor(func)(args)
    got, counters = program.run(args)
    assert all(np.array_equal(g, e) for g, e in zip(got, expected))
    assert len(program._plans) == 1
    plan = next(iter(program._plans.values()))
    for i in (3, 0):  # alone, and after another image: nothing of one image leaks into the next
        alone, alone_counters = program.run([a[i:i + 1] for a in args])
        assert all(np.array_equal(a[0], g[i]) for a, g in zip(alone, got))
        assert alone_counters.as_dict() == counters.as_dict()
    assert next(iter(program._plans.values())) is plan and len(program._plans) == 1
    seeded, _ = program.run([a[::-1] for a in args], seed=7)  # a second plan, for seed 7
    assert all(np.array_equal(s, g[::-1]) for s, g in zip(seeded, got))
    assert set(program._plans) == {(TARGET, None), (TARGET, 7)}


def test_a_plan_runs_on_many_machines_as_the_stream_does():
    """One plan (decoded and scheduled once) run on fresh machines and on a reset one gives
    what running the encoded stream gives each time; a plan is for one target and seed."""
    rng = np.random.default_rng(5)
    x = rng.integers(0, 256, (6, 5, 24), dtype=np.uint8)
    prog, _ = nhwc_program(rng, load_target(B4096), 6, 5, 24, 0, 1024)
    stream = encode(prog)
    plan = Machine(B4096).plan(stream, seed=4)
    reused = Machine(B4096, 64)
    for k in range(3):
        ddr = np.zeros(4096, np.uint8)
        ddr[:x.size] = (x + k).ravel()
        fresh = Machine(B4096, ddr.tobytes())
        ref = fresh.run(stream, {1: 0}, seed=4)
        reused.reset(ddr)
        for m in (Machine(B4096, ddr), reused):
            assert m.run(plan, {1: 0}).as_dict() == ref.as_dict()
            assert np.array_equal(m.ddr.data, fresh.ddr.data)
            assert all(np.array_equal(a.data, b.data) for a, b in
                       zip(m.banks.groups.values(), fresh.banks.groups.values()))
    with pytest.raises(XirError) as e:
        Machine("DPUCZDX8G_ISA1_B512", 4096).run(plan, {1: 0})
    assert message(e) == "the plan is for DPUCZDX8G_ISA1_B4096, the machine is DPUCZDX8G_ISA1_B512"
    with pytest.raises(XirError) as e:
        Machine(B4096, 4096).run(plan, {1: 0}, seed=5)
    assert message(e) == "the plan was scheduled with seed 4, not 5"


def elew_run(rng, count: int, hazard: bool):
    """ELEWINIT and ``count`` random ELEWs (banks, addresses, lengths varying; with ``hazard``
    outputs on the words inputs are read from), then END."""
    add = int(rng.integers(0, 2)) == 0
    groups = int(rng.integers(1, 3))  # B4096: CP 16, a 16-byte word per group
    ops = [mi("ELEWINIT", elew_type=isa.ELEW_TYPES.index("add" if add else "mult"),
              act_type=ACT_CODES[int(rng.integers(0, 3))],
              shift_write=int(rng.integers(-2, 8)),
              shift_read_0=int(rng.integers(0, 4)) if add else 0,
              shift_read_1=int(rng.integers(0, 4)) if add else 0,
              jump_read_0=groups + int(rng.integers(0, 3)),
              jump_read_1=groups + int(rng.integers(0, 3)),
              jump_write=groups + int(rng.integers(0, 3)))]
    for k in range(count):
        other = int(rng.integers(0, 8)) == 0  # now and then input 1 from VB1: not batched
        ops.append(mi("ELEW", length=int(rng.integers(1, 20)), channel_group=groups,
                      bank_id_in_0=int(rng.integers(0, 8)), bank_addr_in_0=int(rng.integers(0, 300)),
                      bank_id_in_1=int(rng.integers(8, 16) if other else rng.integers(0, 8)),
                      bank_addr_in_1=int(rng.integers(0, 300)),
                      bank_id_out=int(rng.integers(0, 8) if hazard else rng.integers(8, 16)),
                      bank_addr_out=int(rng.integers(0, 300)) if hazard else 1000 + 16 * k))
    return program(*ops, target=None)


@pytest.mark.parametrize("seed", range(8))
def test_an_elew_batch_equals_its_elew_instructions_one_by_one(seed):
    """Runs of random ELEWs (odd seeds: outputs where later ELEWs read): banks and counters
    equal to the per-instruction engine's."""
    prog = elew_run(np.random.default_rng(seed), 30, hazard=bool(seed % 2))
    assert_batched_equals_per_instruction(prog, seed)


def dwconv_run(rng, count: int, hazard: bool):
    """ALUINIT (dwconv) and ``count`` random ALUs (pads — some taking every input row —,
    lengths, channel groups, weights and bias addresses varying, so that they fall in several groups of one shape; with ``hazard``
    outputs on the words inputs are read from), then END."""
    kh, kw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    ops = [mi("ALUINIT", exec_type=isa.ALUINIT.field("exec_type").choices.index("dwconv"),
              kernel_h=kh, kernel_w=kw, stride_h=1, stride_w=int(rng.integers(1, 3)),
              jump_read=int(rng.integers(1, 40)), jump_write=2 + int(rng.integers(0, 2)),
              shift_cut=int(rng.integers(0, 12)), shift_bias=int(rng.integers(-4, 5)),
              act_type=ACT_CODES[int(rng.integers(0, 3))])]
    for k in range(count):
        top = int(rng.integers(0, kh))
        ops.append(mi("ALU", pad_top=top, pad_bottom=int(rng.integers(0, kh - top + 1)),
                      pad_left=int(rng.integers(0, kw)),
                      pad_right=int(rng.integers(0, kw)), length=int(rng.integers(1, 12)),
                      channel_group=int(rng.integers(1, 3)),
                      bank_id_in=int(rng.integers(0, 8)), bank_addr_in=int(rng.integers(0, 200)),
                      bank_id_out=int(rng.integers(0, 8) if hazard else rng.integers(8, 16)),
                      bank_addr_out=int(rng.integers(0, 200)) if hazard else 1000 + 12 * k,
                      bank_id_weights=32, bank_addr_weights=int(rng.integers(0, 2)) * 18,
                      bank_id_bias=33, bank_addr_bias=int(rng.integers(0, 2)) * 2))
    return program(*ops, target=None)


@pytest.mark.parametrize("seed", range(6))
def test_a_dwconv_batch_equals_its_alu_instructions_one_by_one(seed):
    """A plan's run of depthwise ALUs goes instruction by instruction the first time and in
    batches the next (odd seeds: outputs where later ALUs read, never batched): banks and
    counters equal to the per-instruction engine's both times."""
    prog = dwconv_run(np.random.default_rng(seed), 30, hazard=bool(seed % 2))
    ref = per_instruction(random_banks(Machine(B4096, 64), seed))
    ref_counts = ref.run(prog, {}).as_dict()
    plan = Machine(B4096).plan(prog)
    for _ in range(2):
        m = random_banks(Machine(B4096, 64), seed)
        assert m.run(plan, {}).as_dict() == ref_counts and ref_counts["bank_written"]
        assert all(np.array_equal(a.data, b.data) for a, b in
                   zip(m.banks.groups.values(), ref.banks.groups.values()))
    (layout,) = [v for _, run in plan.runs() for v in run.memo.values()]
    assert layout.hazard == bool(seed % 2) and len(layout.groups) > 1
