"""dpu.pool_fix and dpu.eltwise_fix compiled to dpuisa programs (passes/codegen/emit_pool.py,
emit_eltwise.py) and run by the simulator (the ALU's pooling on ISA1, the pool engine on ISA0
and ISA2, the eltwise engine everywhere): the output read back from DDR equals the op's
evaluate, bit for bit, in program order and in random queue orders, on full and shrunk banks."""

from __future__ import annotations

import numpy as np
import pytest

from xir.backend.sim.machine import Machine
from xir.backend.targets import load_target
from xir.diagnostics import XirError
from xir.dialects.dpuisa import decode, encode, make_instruction, make_program
from xir.dialects.quant.kernels import avg_pool_factor
from xir.parser import parse
from xir.passes.codegen import plan_layout, plan_op
from xir.passes.codegen.emit_eltwise import eltwise_items
from xir.passes.codegen.emit_pool import pool_items
from xir.verifier import verify

from test_codegen_conv import ddr_image, module_text, read_tensor, shrunk, the_func, ttype

ISA1 = ("DPUCZDX8G_ISA1_B512", "DPUCZDX8G_ISA1_B1152", "DPUCZDX8G_ISA1_B4096")
POOL_ENGINE = ("DPUCZDX8G_ISA0_B4096", "DPUCAHX8H_ISA2")
TARGETS = {name: load_target(name) for name in ISA1 + POOL_ENGINE}
EMITTERS = {"dpu.pool_fix": pool_items, "dpu.eltwise_fix": eltwise_items}
SEEDS = (None, 1, 2, 3)


def out_size(size, k, s, pad_begin, pad_end, ceil):
    span = size + pad_begin + pad_end - k
    n = (-(-span // s) if ceil else span // s) + 1
    if ceil and (n - 1) * s >= size + pad_begin:  # ONNX: the last window starts inside
        n -= 1
    return n


def pool_module(h, w, c, kind, kernel, stride, pad, ceil, fp):
    """The text of a module with one dpu.pool_fix."""
    (kh, kw), (sh, sw) = kernel, stride
    out = ttype((1, out_size(h, kh, sh, pad[0], pad[2], ceil),
                 out_size(w, kw, sw, pad[1], pad[3], ceil), c))
    attrs_ = {"type": f'"{kind}"', "kernel": list(kernel), "stride": list(stride),
              "pad": list(pad), "pad_mode": '"CEIL"' if ceil else '"FLOOR"', "fix_point": fp}
    if kind == "avg":
        attrs_["multi_factor"], attrs_["shift_factor"] = avg_pool_factor(kh, kw)
    text = ", ".join(f"{k} = {v}" for k, v in attrs_.items())
    line = f'%y = "dpu.pool_fix"(%x) {{{text}}} : ({ttype((1, h, w, c))}) -> {out}'
    return module_text([line], ttype((1, h, w, c)), "%y", out)


def eltwise_module(shapes, kind, act, fps, out_fp):
    """The text of a module with one dpu.eltwise_fix of inputs %x and %x1, whose shifts follow
    from the fix points."""
    if kind == "add":
        read, write = [f - min(fps) for f in fps], min(fps) - out_fp
    else:
        read, write = [0, 0], sum(fps) - out_fp
    out = ttype(np.broadcast_shapes(*shapes))
    a, b = (ttype(s) for s in shapes)
    line = (f'%y = "dpu.eltwise_fix"(%x, %x1) {{type = "{kind}", nonlinear = "{act}", '
            f'input_fps = {list(fps)}, output_fp = {out_fp}, shift_read = {read}, '
            f'shift_write = {write}}} : ({a}, {b}) -> {out}')
    return module_text([line], f"{a}, %x1: {b}", "%y", out)


def run_op(func, target, inputs, seeds=SEEDS, buffers=2):
    """Emit the only compute op of ``func`` alone (its items + END), check the program
    (verifier, encoding round trip) and run it on the function's inputs ``inputs`` in each
    queue order of ``seeds``; returns (program, [outputs per seed], expected)."""
    (op,) = [o for o in func.walk() if o.name in EMITTERS]
    layout = plan_layout(func, target)
    items = EMITTERS[op.name](op, layout, target, buffers)
    program = make_program([make_instruction(m, **v) for m, v in items] +
                           [make_instruction("END")], target=target.name)
    verify(program)
    data = encode(program)
    for a, b in zip(decode(data), program.instructions):
        assert a.spec is b.spec and a.field_values() == b.field_values()
    args = func.regions[0].blocks[0].args
    ddr, base = ddr_image(layout, layout.of(args[0]), inputs[0])
    for arg, x in zip(args[1:], inputs[1:]):  # the other inputs, from their own image
        t = layout.of(arg)
        other, _ = ddr_image(layout, t, x)
        span = slice(base + t.offset, base + t.offset + t.shape[1] * t.row_bytes)
        ddr[span] = other[span]
    expected = op.evaluate(*inputs)[0]
    outputs = []
    for seed in seeds:
        machine = Machine(target, ddr.tobytes())
        counters = machine.run(data, registers={0: 0, 1: base}, seed=seed)
        assert counters.instructions["MISC"] == sum(1 for i in program.instructions
                                                    if i.spec.queue == "MISC")
        outputs.append(read_tensor(machine, base, layout.of(op.results[0])))
    return program, outputs, expected


def smallest_banks(func, target):
    """``target`` with VB0 and VB1 cut to the smallest of a few depths on which the op still
    tiles double-buffered (so strips or channel tiles alternate ping/pong), else ``target``."""
    op = next(o for o in func.walk() if o.name in EMITTERS)
    for depth in (6, 12, 24, 48, 96, 192):
        small = shrunk(target, VB0=depth, VB1=depth)
        try:
            if plan_op(op, small).buffers == 2:
                return small
        except XirError:
            pass
    return target


def random_pool(rng, kernels=8):
    kh, kw = (int(k) for k in rng.integers(1, kernels + 1, 2))
    sh, sw = (int(s) for s in rng.integers(1, 5, 2))
    pad = [int(rng.integers(0, k)) if rng.random() < 0.6 else 0 for k in (kh, kw, kh, kw)]
    h = int(rng.integers(max(1, kh - pad[0] - pad[2]), 16))
    w = int(rng.integers(max(1, kw - pad[1] - pad[3]), 20))
    return dict(h=h, w=w, c=int(rng.integers(1, 41)), kind=("max", "avg")[int(rng.integers(2))],
                kernel=(kh, kw), stride=(sh, sw), pad=pad, ceil=bool(rng.random() < 0.3),
                fp=int(rng.integers(0, 8)))


def check_pool(target, shape, rng, small):
    func = the_func(parse(pool_module(**shape)))
    verify(func)
    if small:
        target = smallest_banks(func, target)
    x = rng.integers(-128, 128, (1, shape["h"], shape["w"], shape["c"])).astype(np.int8)
    program, outputs, expected = run_op(func, target, [x])
    for got in outputs:
        assert np.array_equal(got, expected), shape
    return program


@pytest.mark.parametrize("target_name", ISA1)
@pytest.mark.parametrize("case", range(12))
def test_random_pooling_on_the_alu_is_bit_exact(target_name, case):
    """max / avg, kernels 1-8, strides 1-4, pads, CEIL mode, any channel count: ALUINIT / ALU
    (exec_type max_pool / avg_pool); every other case on shrunk banks."""
    rng = np.random.default_rng(100 * case + len(target_name))
    program = check_pool(TARGETS[target_name], random_pool(rng), rng, small=case % 2)
    assert {i.spec.mnemonic for i in program.instructions} >= {"ALUINIT", "ALU"}


@pytest.mark.parametrize("target_name", POOL_ENGINE)
@pytest.mark.parametrize("case", range(10))
def test_random_pooling_on_the_pool_engine_is_bit_exact(target_name, case):
    """The same on ISA0 and ISA2's pool engine (POOLINIT / POOL, the average's factor from
    the kernel)."""
    rng = np.random.default_rng(7000 + 100 * case + len(target_name))
    program = check_pool(TARGETS[target_name], random_pool(rng), rng, small=case % 2)
    assert {i.spec.mnemonic for i in program.instructions} >= {"POOLINIT", "POOL"}


@pytest.mark.parametrize("target_name", ISA1)
@pytest.mark.parametrize("shape", [
    dict(h=7, w=7, c=37, kind="avg", kernel=(7, 7), stride=(1, 1), pad=[0] * 4, ceil=False, fp=3),
    dict(h=14, w=14, c=20, kind="avg", kernel=(14, 14), stride=(1, 1), pad=[0] * 4, ceil=False,
         fp=5),
    dict(h=12, w=10, c=9, kind="max", kernel=(12, 10), stride=(1, 1), pad=[0] * 4, ceil=False,
         fp=2),
    dict(h=23, w=21, c=13, kind="avg", kernel=(11, 9), stride=(3, 4), pad=[2, 3, 5, 6],
         ceil=True, fp=4),
], ids=["global7", "global14", "max12x10", "avg11x9"])
def test_large_and_global_pooling_on_the_alu(target_name, shape):
    """Global pooling and kernels past 8 (the ALU's 9-bit kernel fields), on full and shrunk
    banks."""
    for small in (False, True):
        rng = np.random.default_rng(len(target_name) + small)
        check_pool(TARGETS[target_name], shape, rng, small)


def random_eltwise(rng, target):
    kinds = [k for k, e in (("add", "add"), ("mul", "mult")) if e in target.eltwise.elew_type]
    kind = kinds[int(rng.integers(len(kinds)))]
    fps = [int(f) for f in rng.integers(0, 8, 2)]
    if rng.random() < 0.3:
        fps[1] = fps[0]
    low, high = (min(fps) - 15, min(fps) + 15) if kind == "add" else (sum(fps) - 15, sum(fps))
    shape = (1, int(rng.integers(1, 12)), int(rng.integers(1, 20)), int(rng.integers(1, 41)))
    return dict(shapes=(shape, shape), kind=kind, act=("none", "relu", "leaky_relu")[
        int(rng.integers(3))], fps=fps, out_fp=int(rng.integers(max(low, 0), min(high, 8) + 1)))


@pytest.mark.parametrize("target_name", ISA1 + POOL_ENGINE)
@pytest.mark.parametrize("case", range(8))
def test_random_eltwise_is_bit_exact(target_name, case):
    """add (inputs at different fix points) and mul (where the engine has it), nonlinears none,
    relu, leaky_relu; ELEWINIT / ELEW; every other case on shrunk banks."""
    target = TARGETS[target_name]
    rng = np.random.default_rng(300 * case + len(target_name))
    spec = random_eltwise(rng, target)
    func = the_func(parse(eltwise_module(**spec)))
    verify(func)
    if case % 2:
        target = smallest_banks(func, target)
    a, b = (rng.integers(-128, 128, s).astype(np.int8) for s in spec["shapes"])
    program, outputs, expected = run_op(func, target, [a, b])
    assert {i.spec.mnemonic for i in program.instructions} >= {"ELEWINIT", "ELEW"}
    for got in outputs:
        assert np.array_equal(got, expected), spec


def test_shrunk_banks_split_pooling_into_strips_and_channel_tiles():
    """A pooling tiled into several strips and channel tiles with ping/pong, run in 10 random
    queue orders, with one buffer too."""
    target = shrunk(TARGETS["DPUCZDX8G_ISA1_B512"], VB0=24, VB1=24)
    shape = dict(h=13, w=9, c=27, kind="avg", kernel=(3, 3), stride=(2, 2), pad=[1, 1, 1, 1],
                 ceil=True, fp=3)
    func = the_func(parse(pool_module(**shape)))
    plan = plan_op(next(o for o in func.walk() if o.name == "dpu.pool_fix"), target)
    assert plan.strips >= 2 and plan.channel_tile < 27 and plan.buffers == 2
    x = np.random.default_rng(0).integers(-128, 128, (1, 13, 9, 27)).astype(np.int8)
    for buffers in (2, 1):
        _, outputs, expected = run_op(func, target, [x], (None, *range(10)), buffers)
        assert all(np.array_equal(got, expected) for got in outputs)


def test_an_alu_exec_type_not_simulated_is_a_fault():
    ops = [make_instruction("ALUINIT", exec_type=1, kernel_h=1, kernel_w=1, stride_h=1,
                            stride_w=1), make_instruction("END")]
    with pytest.raises(XirError, match=r"^error: instruction 0 \(ALUINIT at word 0\): field "
                                       r"'exec_type' = 1 \(prelu\) is not simulated"):
        Machine(TARGETS["DPUCZDX8G_ISA1_B4096"], 64).run(ops)


def test_a_pool_kernel_too_big_for_poolinit_is_an_error():
    shape = dict(h=16, w=16, c=8, kind="max", kernel=(16, 16), stride=(1, 1), pad=[0] * 4,
                 ceil=False, fp=0)
    func = the_func(parse(pool_module(**shape)))
    with pytest.raises(XirError, match=r"cannot emit POOLINIT: kernel_h = 16 does not fit its "
                                       r"4 bits"):
        run_op(func, TARGETS["DPUCZDX8G_ISA0_B4096"], [np.zeros((1, 16, 16, 8), np.int8)])


def test_a_pool_engine_average_needs_the_tables_factor():
    text = pool_module(h=6, w=6, c=8, kind="avg", kernel=(3, 3), stride=(1, 1), pad=[0] * 4,
                       ceil=False, fp=0).replace("multi_factor = 7", "multi_factor = 9")
    func = the_func(parse(text))
    with pytest.raises(XirError, match=r"multi_factor / shift_factor = 9 / 6 is not the pool "
                                       r"engine's factor 7 / 6 for a 3x3 kernel"):
        run_op(func, TARGETS["DPUCAHX8H_ISA2"], [np.zeros((1, 6, 6, 8), np.int8)])


def test_eltwise_with_broadcasting_is_an_error():
    func = the_func(parse(eltwise_module(((1, 4, 4, 8), (1, 1, 1, 8)), "add", "none", [2, 2],
                                         2)))
    with pytest.raises(XirError, match=r"eltwise with broadcasting \(inputs 1x4x4x8 and "
                                       r"1x1x1x8\) is not emitted"):
        run_op(func, TARGETS["DPUCZDX8G_ISA1_B4096"], [np.zeros((1, 4, 4, 8), np.int8)] * 2)


def test_eltwise_mul_on_an_add_only_engine_is_an_error():
    func = the_func(parse(eltwise_module(((1, 2, 2, 8),) * 2, "mul", "none", [2, 2], 4)))
    with pytest.raises(XirError, match=r"the eltwise engine of DPUCAHX8H_ISA2 has no mult"):
        run_op(func, TARGETS["DPUCAHX8H_ISA2"], [np.zeros((1, 2, 2, 8), np.int8)] * 2)


@pytest.mark.parametrize("case", range(6))
def test_isa0_dwconv_engine_runs_the_alus_depthwise_program(case):
    """DWINIT / DPTWISE (ISA0's dwconv engine) read their fields as ALUINIT / ALU's dwconv:
    the ALU program emitted for ISA1 B4096 (the same banks and CP), its ALUINIT and ALUs
    renamed, runs bit-exact on DPUCZDX8G_ISA0_B4096 (emitting DPTWISE itself is emit.py's)."""
    from test_codegen_conv import conv_module, random_case

    from xir.passes.codegen.emit import emit_conv

    isa1, isa0 = TARGETS["DPUCZDX8G_ISA1_B4096"], TARGETS["DPUCZDX8G_ISA0_B4096"]
    rng = np.random.default_rng(900 + case)
    shape = random_case(rng)
    shape.update(cout=shape["cin"], dilation=(1, 1), act=("none", "relu", "leaky_relu")[case % 3])
    func = the_func(parse(conv_module(rng, **shape, depthwise=True)))
    (op,) = [o for o in func.walk() if o.name == "dpu.depthwise_conv2d_fix"]
    layout = plan_layout(func, isa1)
    init_fields = {f.name for f in make_instruction("DWINIT").spec.fields}
    ops = []
    for ins in emit_conv(op, layout, isa1):
        m, v = ins.spec.mnemonic, ins.field_values()
        if m == "ALUINIT":
            m, v = "DWINIT", {k: x for k, x in v.items() if k in init_fields}
        ops.append(make_instruction("DPTWISE" if m == "ALU" else m, **v))
    program = make_program(ops + [make_instruction("END")], target=isa0.name)
    verify(program)
    consts = {o.results[0]: np.asarray(o.evaluate()[0]) for o in func.walk()
              if o.name == "quant.constant"}
    x = rng.integers(-128, 128, (1, shape["h"], shape["w"], shape["cin"])).astype(np.int8)
    expected = op.evaluate(x, *[consts[v] for v in op.operands[1:]])[0]
    ddr, base = ddr_image(layout, layout.of(op.operands[0]), x)
    for seed in SEEDS:
        machine = Machine(isa0, ddr.tobytes())
        machine.run(encode(program), registers={0: 0, 1: base}, seed=seed)
        assert np.array_equal(read_tensor(machine, base, layout.of(op.results[0])), expected)
